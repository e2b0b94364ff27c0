"""A compile worker: run by the build's interpreter (`python -I -S compile_worker.py PLAN`), never imported, so it
uses the standard library only and nothing beside it.

Every .pyc it writes is py_compile's checked-hash bytecode (the source's hash in the header, no time), so whichever
worker, and whichever path (fast or plain), writes a file, the bytes are the same.

The plain path (plain.py) runs one worker once pip is done: the seed's and virtualenv's files (`"files"` in the
plan), then every module a RECORD lists but the seed's (`"present"`). The
fast path (fast.py) starts one worker per core before virtualenv runs: a job is a wheel checked against the lock's
sha256 in the worker itself, from the bytes it then reads; its chunks are claimed in one log under a lock, so each
is done once, and marked done there. The seed's job unpacks it too, into the scratch dir (it runs beside
virtualenv, and pip waits for it); the other jobs write only bytecode, into site-packages once virtualenv has made
it, while pip installs the very same files. Then each distribution pip installed that no job covered (a pin with a
marker or several artifacts, one built from its sdist, a module two wheels carry) is compiled once its RECORD
appears (pip writes it last, atomically).
"""

import csv
import fcntl
import gc
import hashlib
import io
import json
import marshal
import os
import sys
import time
import warnings
import zipfile
from importlib.util import MAGIC_NUMBER, cache_from_source, source_hash

PARENT = os.getppid()


def alive():
    """Exit when bootstrap.py is gone (kill -9 leaves it no chance to stop us): nothing is waiting for our work."""
    if os.getppid() != PARENT:
        sys.exit(1)


def wait_for(path):
    while not os.path.exists(path):
        alive()
        time.sleep(0.005)


def write(path, data, new=False):
    """Into a tree of our own made just now (`new`), or into site-packages: a new file renamed over the old, never
    written through a hard link."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if new:
        with open(path, "wb") as handle:
            handle.write(data)
        return
    with open(f"{path}.{os.getpid()}", "wb") as handle:
        handle.write(data)
    os.replace(f"{path}.{os.getpid()}", path)


def compile_source(path, source, dfile, new=False):
    try:
        code = compile(source, dfile, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return  # as compileall and pip do: a file that does not compile is left to fail at import
    write(cache_from_source(path), MAGIC_NUMBER + b"\3\0\0\0" + source_hash(source) + marshal.dumps(code), new)


def compile_files(files):
    """[(path, name it is compiled under)]: installed files, compiled from what is on disk."""
    for path, dfile in files:
        with open(path, "rb") as handle:
            compile_source(path, handle.read(), dfile)


class Claims:
    """The workers' shared log: the first worker to append a name, under the log's lock, has that piece of work."""

    def __init__(self, path):
        self.log, self.logged, self.offset = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND), set(), 0

    def claim(self, name):
        fcntl.flock(self.log, fcntl.LOCK_EX)
        try:
            while data := os.pread(self.log, 1 << 16, self.offset):
                self.offset += len(data)
                self.logged.update(data.decode().splitlines())
            if name in self.logged:
                return False
            self.offset += os.write(self.log, f"{name}\n".encode())
            self.logged.add(name)
            return True
        finally:
            fcntl.flock(self.log, fcntl.LOCK_UN)


class Worker:
    def __init__(self, plan):
        self.site, self.made, self.done = plan["site"], plan.get("made"), plan.get("done")
        self.claims = Claims(plan["claims"]) if "claims" in plan else None

    def ve_made(self):
        """Once virtualenv is done: its own modules (listed by bootstrap.py before pip ran), by one worker."""
        wait_for(self.made)
        if self.claims.claim("made"):
            with open(self.made, encoding="utf-8") as handle:
                compile_files((path, path) for path in handle.read().split("\n")[:-1])

    def do_jobs(self, jobs):
        opened = None
        for job in jobs:
            for number, members in enumerate(job["chunks"]):
                if not self.claims.claim(f"{job['name']}.{number}"):
                    continue
                if opened is None or opened[0] != job["path"]:
                    with open(job["path"], "rb") as handle:
                        data = handle.read()
                    if hashlib.sha256(data).hexdigest() not in job["sha256"]:
                        sys.exit(f"changed: {job['path']}")
                    opened = job["path"], zipfile.ZipFile(io.BytesIO(data))
                if job["root"] == self.site:
                    self.ve_made()
                for member, place in members:
                    path = os.path.join(job["root"], place)
                    source = opened[1].read(member)
                    if job["unpack"]:
                        write(path, source, new=True)
                    if place.endswith(".py"):
                        # The seed is compiled in the scratch dir under its place in site-packages.
                        compile_source(path, source, place if job["unpack"] else path, new=job["unpack"])
                self.claims.claim(f"done {job['name']}.{number}")

    def record_sources(self, dist, precompiled=()):
        with open(os.path.join(self.site, dist, "RECORD"), encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
        paths = sorted({os.path.normpath(os.path.join(self.site, row[0])) for row in rows
                        if row and row[0].endswith(".py")})
        return [path for path in paths if path.startswith(self.site + os.sep) and path not in precompiled]

    def follow_pip(self, seen, precompiled):
        """Compile each distribution pip installs once its RECORD appears, until pip is done."""
        while True:
            finished = os.path.exists(self.done)
            found = [name for name in sorted(os.listdir(self.site)) if name.endswith(".dist-info")
                     and name not in seen and os.path.exists(os.path.join(self.site, name, "RECORD"))]
            for dist in found:
                seen.add(dist)
                paths = self.record_sources(dist, precompiled)
                for number in range(0, len(paths), 40):
                    if self.claims.claim(f"record {dist}.{number}"):
                        compile_files((path, path) for path in paths[number:number + 40])
            if finished and not found:
                break
            if not found:
                alive()
                time.sleep(0.02)


def main(plan_path):
    warnings.simplefilter("ignore")  # as pip compiles: a SyntaxWarning per odd escape would only fill our pipe
    gc.disable()  # a short run that frees what it makes: the collector's passes would be wasted time
    wait_for(plan_path)  # started while bootstrap.py makes the plan
    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    if "files" in plan:  # the plain path: pip is done; these files, then every RECORD's but the seed's
        compile_files(plan["files"])
        worker = Worker(plan)
        for dist in sorted(name for name in os.listdir(worker.site) if name.endswith(".dist-info")):
            if dist not in plan["present"]:
                compile_files((path, path) for path in worker.record_sources(dist))
        return
    try:
        os.nice(plan["nice"])  # pip and virtualenv, on the critical path, come first
    except (AttributeError, OSError):
        pass
    worker = Worker(plan)
    worker.do_jobs(plan["jobs"])  # the seed's, planned first
    wait_for(plan["more"])  # the wheels', planned while the seed's ran
    with open(plan["more"], encoding="utf-8") as handle:
        more = json.load(handle)
    worker.do_jobs(more)
    worker.ve_made()
    precompiled = {os.path.join(worker.site, place) for job in more for members in job["chunks"]
                   for _, place in members}
    worker.follow_pip(set(plan["present"]), precompiled)


if __name__ == "__main__":
    main(sys.argv[1])
