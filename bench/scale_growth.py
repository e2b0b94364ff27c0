"""Repository growth of a large wheelhouse over a year of monthly `make freeze-upgrade`, with and without Git LFS.

    python bench/scale_growth.py [--months 12] [--work build/scale-growth] [--seed 1]

Simulated, offline: the wheelhouse is modelled on the benchmark's scale set (bench/requirements.in: 72 wheels,
96 MB), as synthetic wheels of realistic size (real zip files whose members are random bytes, so they compress as
little as real wheels do). Each month a package releases a new version with the probability its cadence gives; a
new version keeps some members byte for byte (unchanged files compress to the same bytes, which git's delta
compression can reuse) and replaces the rest. What changes in requirements/ is exactly what a freeze-upgrade
commits: the old wheel removed, the new one added.

Measured with real git and git-lfs: the size of the repository (after `git gc`), of a full clone, of a
`git clone --depth 1`, and with Git LFS the LFS store on the server and what a deploy host fetches.
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

MB = 10**6
# The largest wheels of the scale set (cp311, manylinux x86_64, as locked for docs/benchmarks.md), approximate
# sizes; `binary` is the share of bytes in compiled extensions, rebuilt whole by every release.
LARGE = [
    # name, MB, share of binary bytes, releases per month
    ("numpy", 18.0, 0.8, 0.5),
    ("botocore", 13.0, 0.0, 1.0),
    ("pandas", 12.5, 0.7, 0.4),
    ("django", 8.3, 0.0, 0.9),
    ("lxml", 5.0, 0.9, 0.3),
    ("pillow", 4.5, 0.8, 0.3),
    ("cryptography", 4.2, 0.9, 0.5),
    ("psycopg-binary", 3.3, 0.9, 0.3),
    ("sqlalchemy", 3.2, 0.5, 0.6),
    ("pydantic-core", 2.0, 0.9, 0.6),
]
SMALL_COUNT, TOTAL = 62, 96 * MB
SMALL_CADENCE = 0.35  # a typical small dependency: a release every three months or so
CHANGED_SOURCE = 0.2  # share of a release's pure-Python members that change


def packages(rng):
    """[(name, size, binary share, monthly release probability)]: the large ten and 62 small ones to 96 MB."""
    rest = TOTAL - sum(size for _, size, _, _ in LARGE) * MB
    weights = [rng.lognormvariate(0, 1.2) for _ in range(SMALL_COUNT)]
    small = [(f"pkg{number:02d}", rest * weight / sum(weights) / MB, 0.0, SMALL_CADENCE)
             for number, weight in enumerate(weights)]
    return [(name, size * MB, binary, cadence) for name, size, binary, cadence in LARGE + small]


class Package:
    """One project's wheel: members of random bytes; a release replaces the binaries and a share of the rest."""

    def __init__(self, name, size, binary, cadence, rng):
        self.name, self.cadence, self.rng, self.version = name, cadence, rng, 1
        count = max(4, min(60, int(size // 200_000)))
        self.members = {}
        for number in range(count):
            kind = "so" if number < count * binary else "py"
            self.members[f"{name.replace('-', '_')}/m{number:03d}.{kind}"] = rng.randbytes(int(size / count))

    def release(self):
        self.version += 1
        for member in self.members:
            if member.endswith(".so") or self.rng.random() < CHANGED_SOURCE:
                self.members[member] = self.rng.randbytes(len(self.members[member]))

    def filename(self):
        return f"{self.name.replace('-', '_')}-{self.version}.0-py3-none-any.whl"

    def write(self, directory):
        path = directory / self.filename()
        # Every release's metadata names its version, so no two versions of a wheel are the same bytes.
        metadata = f"Metadata-Version: 2.1\nName: {self.name}\nVersion: {self.version}.0\n".encode()
        members = {**self.members, f"{self.name.replace('-', '_')}-{self.version}.0.dist-info/METADATA": metadata}
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for member, data in sorted(members.items()):
                archive.writestr(zipfile.ZipInfo(member, (1980, 1, 1, 0, 0, 0)), data)
        return path


def git(directory, *args, env=None):
    return subprocess.run(["git", *args], cwd=directory, env=env, check=True, capture_output=True,
                          text=True).stdout


def du(path):
    """Bytes on disk under path (what `du` reports)."""
    total = 0
    for directory, _, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(directory, name)).st_blocks * 512
    return total


def simulate(work, months, seed, lfs, env):
    rng = random.Random(seed)
    repo = work / ("lfs" if lfs else "plain") / "repo"
    shutil.rmtree(repo.parent, ignore_errors=True)
    wheelhouse = repo / "requirements"
    wheelhouse.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main", env=env)
    if lfs:
        git(repo, "lfs", "install", "--local", env=env)
        (repo / ".gitattributes").write_text("requirements/** filter=lfs diff=lfs merge=lfs -text\n")
    items = [Package(*spec, rng) for spec in packages(rng)]
    for package in items:
        package.write(wheelhouse)
    git(repo, "add", "-A", env=env)
    git(repo, "commit", "-q", "-m", "month 0", env=env)
    monthly = []
    for month in range(1, months + 1):
        moved = [package for package in items if rng.random() < package.cadence]
        added = 0
        for package in moved:
            (wheelhouse / package.filename()).unlink()
            package.release()
            added += package.write(wheelhouse).stat().st_size
        git(repo, "add", "-A", env=env)
        git(repo, "commit", "-q", "-m", f"month {month}", env=env)
        monthly.append({"month": month, "pins_moved": len(moved), "bytes_added": added})
    git(repo, "gc", "-q", "--prune=now", env=env)
    wheel_bytes = sum(path.stat().st_size for path in wheelhouse.iterdir())
    result = {"lfs": lfs, "packages": len(items), "wheelhouse_bytes": wheel_bytes, "months": monthly,
              "git_objects_bytes": du(repo / ".git" / "objects"),
              "lfs_store_bytes": du(repo / ".git" / "lfs" / "objects") if lfs else 0}
    # The server: a bare repository that receives a push, as a hosting does (with LFS, every month's objects).
    origin = repo.parent / "origin.git"
    git(repo.parent, "init", "-q", "--bare", "-b", "main", str(origin), env=env)
    git(repo, "push", "-q", origin.as_uri(), "main", env=env)
    git(origin, "gc", "-q", "--aggressive", "--prune=now", env=env)
    result["server_git_bytes"] = du(origin / "objects")
    result["server_lfs_bytes"] = du(origin / "lfs" / "objects") if lfs else 0
    for depth in (None, 1):
        clone = repo.parent / f"clone-{depth or 'full'}"
        started = time.monotonic()
        git(repo.parent, "clone", "-q", *(["--depth", str(depth)] if depth else []), origin.as_uri(), str(clone),
            env=env)
        seconds = time.monotonic() - started
        key = f"clone_{'depth1' if depth else 'full'}"
        result[key + "_git_bytes"] = du(clone / ".git" / "objects")
        result[key + "_lfs_bytes"] = du(clone / ".git" / "lfs" / "objects") if lfs else 0
        result[key + "_seconds"] = round(seconds, 2)
    return result


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", type=Path, default=Path("build/scale-growth"))
    args = parser.parse_args(argv)
    home = args.work.resolve() / "home"
    home.mkdir(parents=True, exist_ok=True)
    # A private git config: user.name for the commits, and git-lfs's filters installed there, not in the user's.
    env = {**os.environ, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "sim",
           "GIT_AUTHOR_EMAIL": "sim@example.invalid", "GIT_COMMITTER_NAME": "sim",
           "GIT_COMMITTER_EMAIL": "sim@example.invalid"}
    subprocess.run(["git", "lfs", "install", "--skip-repo"], env=env, check=True, capture_output=True)
    for lfs in (False, True):
        started = time.monotonic()
        result = simulate(args.work.resolve(), args.months, args.seed, lfs, env)
        result["simulation_seconds"] = round(time.monotonic() - started)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
