"""The plain path of the build's bytecode (`make ve BOOTSTRAP_FAST=0`): the same seam as fast.py, done one step
after another. The seed wheel is unpacked into site-packages from its verified bytes; once pip is done, one
compile worker (compile_worker.py, the fast path's own) compiles the seed, virtualenv's modules and every module a
RECORD lists, so both paths write the same bytes (a test builds both ways and compares the trees)."""

import hashlib
import io
import os
import sys
import zipfile

from bootstrap_build import checks, fast, layout, lockfile, processes
from bootstrap_build.messages import error


class Compiler:
    def __init__(self, seed, scratch, env):
        self.seed, self.scratch, self.env, self.children = seed, scratch, env, []
        self.site, self.files = None, []

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        processes.stop_children(self.children)

    def start(self, slot, pins):
        self.site = layout.site_packages(slot)

    def ve_made(self):
        """virtualenv's own modules, listed before pip adds any (as the fast path lists them)."""
        self.files += [(path, path) for path in (os.path.join(self.site, name) for name in sorted(os.listdir(self.site))
                                                 if name.endswith(".py"))]

    def put_seed(self, site):
        """The seed wheel's files, from the bytes checked against its recorded sha256; its modules are compiled
        under their place in site-packages, as the fast path compiles them in the scratch dir."""
        path, recorded = self.seed
        with open(path, "rb") as handle:
            data = handle.read()
        if hashlib.sha256(data).hexdigest() != recorded:
            error(f"{os.path.basename(path)} changed during the build, after it was checked. Restore it with "
                  "`git checkout -- virtualenv_support` and run `make ve` again. The previous ve is untouched.")
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = sorted(name for name in archive.namelist() if not name.endswith("/"))
            if any(checks.unsafe_member(name) or ".data/" in name for name in names):
                error(f"{os.path.basename(path)} is not a plain pure-Python wheel. "
                      "Restore virtualenv_support/ with `git checkout virtualenv_support`.")
            for name in names:
                place = os.path.join(site, name)
                os.makedirs(os.path.dirname(place), exist_ok=True)
                with open(place, "wb") as handle:
                    handle.write(archive.read(name))
                if name.endswith(".py"):
                    self.files.append((place, name))

    def finish(self, beside=None):
        """pip is done: compile the seed, virtualenv's modules and what every other RECORD lists."""
        if beside:
            self.children.append(beside)
        plan = fast.write_json(os.path.join(self.scratch, "compile-plan.json"), {
            "files": self.files, "site": self.site, "present": [lockfile.wheel_dist_info(self.seed[0])]})
        processes.run([sys.executable, "-I", "-S", "-B", fast.WORKER, plan], self.env, "compiling the bytecode")
