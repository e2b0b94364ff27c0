"""The fast path of the build's bytecode, behind the seam build.py calls (start, ve_made, put_seed, finish): one
compile worker per core (compile_worker.py), started before virtualenv runs, unpacks and compiles the seed pip in
the scratch dir and compiles the lock's wheels straight from their verified bytes while virtualenv and pip run, then
whatever pip installed that no job covered. plain.py gives the same bytes, one step after another."""

import collections
import fcntl
import os
import sys
import time

from bootstrap_build import checks, layout, lockfile, processes
from bootstrap_build.messages import error, show_output

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compile_worker.py")
# A worker holds the wheel it compiles from in memory (the bytes it checked): a larger one (a machine-learning
# framework's) is compiled from what pip installed instead.
PLANNED_WHEEL_BYTES = 64 * 2**20


class Compiler:
    """The compile workers of a build: started by start(), told by ve_made() that site-packages exists and by
    finish() that pip is done; stopped on any error."""

    def __init__(self, seed, scratch, env):
        self.seed, self.scratch, self.env, self.children = seed, scratch, env, []
        self.claims = os.path.join(scratch, "compile-claims.log")
        self.made, self.done = os.path.join(scratch, "ve-made"), os.path.join(scratch, "pip-done")
        self.tree = os.path.join(scratch, "seed-tree")
        self.site = self.seed_job = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        processes.stop_children(self.children)

    def start(self, slot, pins):
        """Start the workers (they wait for their plan), then plan the seed's job (pip waits for it), then the
        wheels' jobs, which the workers take once the seed's are taken."""
        self.site = layout.site_packages(slot)
        plan = os.path.join(self.scratch, "compile-plan.json")
        cores = min(16, max(1, os.cpu_count() or 1))
        self.children += [processes.start([sys.executable, "-I", "-S", "-B", WORKER, plan], self.env)
                          for _ in range(cores)]
        more = os.path.join(self.scratch, "compile-plan-wheels.json")
        self.seed_job = seed_job(self.seed, self.tree)
        write_json(plan, {"jobs": [self.seed_job], "site": self.site, "claims": self.claims, "made": self.made,
                          "done": self.done, "more": more, "nice": 5,
                          "present": [lockfile.wheel_dist_info(self.seed[0])]})
        taken = [place for chunk in self.seed_job["chunks"] for _, place in chunk]
        write_json(more, wheel_jobs(pins, self.site, taken))

    def ve_made(self):
        """virtualenv is done: its own modules (listed now, before pip adds any) are compiled by one worker, and the
        jobs may write into site-packages."""
        write_whole(self.made, "".join(f"{os.path.join(self.site, name)}\n" for name in sorted(os.listdir(self.site))
                                       if name.endswith(".py")))

    def put_seed(self, site):
        """Hard-link (where the file system allows, else copy) every file of the seed's tree, unpacked and compiled
        by the workers, into site-packages."""
        import shutil

        marks = {f"done seed.{number}" for number in range(len(self.seed_job["chunks"]))}
        while not marks <= self.logged():
            for child in self.children:
                if child.poll():
                    self.failed(child)
            time.sleep(0.005)
        made = set()
        for directory, _, names in os.walk(self.tree):
            for name in sorted(names):
                path = os.path.join(directory, name)
                place = os.path.join(site, os.path.relpath(path, self.tree))
                if os.path.dirname(place) not in made:
                    os.makedirs(os.path.dirname(place), exist_ok=True)
                    made.add(os.path.dirname(place))
                try:
                    os.link(path, place)
                except OSError:
                    shutil.copyfile(path, place)

    def finish(self, beside=None):
        """pip is done: wait for the workers. `beside`: another child, stopped with them on an error."""
        if beside:
            self.children.append(beside)
        with open(self.done, "w"):
            pass
        for child in self.children:
            if child is not beside:
                output, _ = child.communicate()
                if child.returncode:
                    self.failed(child, output)
        self.children = [beside] if beside else []

    def logged(self):
        """The names in the workers' log of claims, read under its lock (an append is never seen half-made)."""
        try:
            with open(self.claims, "rb") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                return set(handle.read().decode().splitlines())
        except FileNotFoundError:
            return set()

    def failed(self, child, output=None):
        output = child.communicate()[0] if output is None else output
        if any(text in output for text in processes.NO_SPACE_TEXTS):
            raise OSError(processes.NO_SPACE_ERRNOS[0], processes.NO_SPACE_TEXTS[0])  # main names the disk
        if output.startswith("changed: "):
            path = os.path.relpath(output[len("changed: "):].strip(), layout.ROOT)
            error(f"{path} changed during the build, after it was checked: its sha256 is no longer one the lock "
                  f"allows. Restore it with `git checkout -- {path}` and run `make ve` again (is something else "
                  "writing to this checkout?). The previous ve is untouched.")
        show_output(output)
        error(f"compiling the bytecode of {os.path.relpath(self.site, layout.ROOT)} failed (exit {child.returncode});"
              " see the output above. The previous ve is untouched.")


def seed_job(seed, tree):
    """The workers' job that unpacks and compiles the seed wheel into tree, in chunks of about 40 modules, each
    with the other files that come before the next module."""
    import zipfile

    path, recorded = seed
    with zipfile.ZipFile(path) as archive:
        names = sorted(name for name in archive.namelist() if not name.endswith("/"))
    if any(checks.unsafe_member(name) or ".data/" in name for name in names):
        error(f"{os.path.basename(path)} is not a plain pure-Python wheel. "
              "Restore virtualenv_support/ with `git checkout virtualenv_support`.")
    chunks, current, modules = [], [], 0
    for member in names:
        current.append([member, member])
        modules += member.endswith(".py")
        if modules == 40:
            chunks.append(current)
            current, modules = [], 0
    chunks += [current] if current else []
    return {"name": "seed", "path": path, "sha256": [recorded], "root": tree, "unpack": True, "chunks": chunks}


def wheel_jobs(pins, site, taken):
    """The workers' jobs for the wheels pip is bound to install, so their modules compile while virtualenv and pip
    run: an unmarked pin with one artifact in requirements/, a wheel of at most PLANNED_WHEEL_BYTES (any other pin
    waits for pip's RECORD). Each .py member is named by its place in site-packages; one that two wheels (or the
    seed, `taken`) carry is left out, and compiled once pip has put the winning copy in place."""
    import importlib.util
    import zipfile

    by_pin = checks.artifacts_by_pin()
    planned = []
    for pin in pins:
        paths = by_pin.get((pin.name, lockfile.normal_version(pin.version)), [])
        if (pin.marker or pin.name == "pip" or len(paths) != 1 or not paths[0].endswith(".whl")
                or os.path.getsize(paths[0]) > PLANNED_WHEEL_BYTES):
            continue
        try:
            with zipfile.ZipFile(paths[0]) as archive:
                names = [name for name in archive.namelist() if not name.endswith("/")]
        except (OSError, zipfile.BadZipFile):
            continue  # pip names what is wrong with it
        if any(map(checks.unsafe_member, names)):
            continue
        places = {name: site_place(name) for name in names}
        shipped = {place for place in places.values() if place and place.endswith(".pyc")}
        modules = {name: place for name, place in places.items() if place and place.endswith(".py")
                   and importlib.util.cache_from_source(place) not in shipped}
        dist_info = next((name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info")), None)
        planned.append((pin, paths[0], dist_info, modules))
    counts = collections.Counter(taken)
    for _, _, _, modules in planned:
        counts.update(modules.values())
    jobs = []
    for pin, path, dist_info, modules in planned:
        members = [[name, place] for name, place in sorted(modules.items()) if counts[place] == 1]
        if members:
            # One chunk per wheel but the largest: a worker reads and hashes each wheel it takes a chunk of.
            chunks = [members[start:start + 100] for start in range(0, len(members), 100)]
            jobs.append({"name": dist_info, "path": path, "sha256": sorted(pin.hashes), "root": site,
                         "unpack": False, "chunks": chunks})
    return jobs


def site_place(name):
    """Where pip puts a wheel member, relative to site-packages (None: elsewhere, or not installed)."""
    top, _, rest = name.partition("/")
    if top.endswith(".data"):
        scheme, _, rest = rest.partition("/")
        return rest if scheme in ("purelib", "platlib") and rest else None
    return name


def write_json(path, data):
    import json

    return write_whole(path, json.dumps(data))  # dumps: the C encoder; dump() writes piece by piece in Python


def write_whole(path, text):
    """Write text to a file a reader (a worker polling for it) never sees half-written: a new file, renamed."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.rename(path + ".tmp", path)
    return path
