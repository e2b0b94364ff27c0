"""`make bench`'s workspace: build/bench/, the copies of the project it times, and a hermetic environment for
every command it runs (bootstrap_tools.run.hermetic_env, without the outer make's variables)."""

import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bootstrap_tools.run import ToolError, hermetic_env, run  # noqa: E402

BENCH = ROOT / "bench"
WORK = ROOT / "build" / "bench"
# make passes these down to child makes; the contenders' `make ve` must not see the outer `make bench`.
MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")


def say(message):
    print(message, flush=True)


def real_python(name):
    """The real executable behind `name` (python3 may be a pyenv shim that costs ~100 ms per start)."""
    found = shutil.which(name)
    if not found:
        raise ToolError(f"{name} not found on PATH; pass --python /path/to/python3.")
    code = "import os, sys; print(os.path.realpath(sys.executable))"
    return run([found, "-I", "-c", code], env=hermetic_env(fresh_dir(WORK / "home"))).strip()


def contender_env(home):
    env = hermetic_env(home)
    for name in MAKE_VARIABLES:
        env.pop(name, None)
    return env


def fresh_dir(path):
    remove(path)
    path.mkdir(parents=True)
    return path


def remove(path):
    path = Path(path)
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def project_files():
    """The files of the working tree git would take (tracked, and untracked but not ignored)."""
    listing = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT)
    return sorted({name for name in listing.split("\0") if name and (ROOT / name).is_file()})


def copy_tree(dest, lock=None, wheels=None):
    """A copy of the project at `dest`; with lock/wheels, its requirements.txt and requirements/ replaced."""
    fresh_dir(dest)
    for name in project_files():
        if name.startswith("bench/") or name.startswith("tests/"):
            continue
        if wheels is not None and name.startswith("requirements/"):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    if lock is not None:
        shutil.copyfile(lock, dest / "requirements.txt")
    if wheels is not None:
        (dest / "requirements").mkdir()
        for path in sorted(Path(wheels).iterdir()):
            try:
                os.link(path, dest / "requirements" / path.name)
            except OSError:
                shutil.copyfile(path, dest / "requirements" / path.name)
    return dest


def count_pins(lock):
    return sum(1 for line in Path(lock).read_text().splitlines() if "==" in line and not line.startswith("#"))


def wheelhouse_bytes(directory):
    return sum(path.stat().st_size for path in Path(directory).iterdir())


def load_note():
    """The 1-minute load average: above ~0.5 on an idle machine, something else competes for the cores."""
    load = os.getloadavg()[0]
    warning = " (WARNING: other work is running; absolute times are inflated, the ratios less so)" if load > 0.5 else ""
    return f"load average {load:.2f} on {os.cpu_count()} CPUs{warning}"


def make_clean(tree, env):
    run(["make", "clean"], cwd=tree, env=env)


def stopwatch(argv, env, cwd):
    started = time.perf_counter()
    run(argv, env=env, cwd=cwd)
    return time.perf_counter() - started


def timing_row(case, case_width, contender, name_width):
    """One contender's line of a results table: min, median, max and every round, in seconds."""
    import statistics

    times = contender.times
    return (f"{case:<{case_width}} {contender.name:<{name_width}} {min(times):8.3f} {statistics.median(times):9.3f} "
            f"{max(times):8.3f}  " + " ".join(f"{t:.3f}" for t in times))
