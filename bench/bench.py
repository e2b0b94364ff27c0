"""`make bench`: time `make ve` against the naive pip recipe and uv, on the same lock, wheelhouse and interpreter.

Usage (inside ./ve, as `make bench` runs it):
    python bench/bench.py [run] [--rounds N] [--cases fresh,noop,repin,scale] [--python python3]
    python bench/bench.py profile [--rounds N] [--sets own,scale]   where `make ve`'s time goes, and what
                                                                  candidate optimizations of bootstrap.py buy
    python bench/bench.py lock                                    regenerate bench/uv.txt (needs the index)

Contenders alternate A B C A B C ... so that drift (page cache, other load) spreads over all of them:
  make ve    this project's bootstrap, `make ve PYTHON=<python>` in a copy of the tree under build/bench/
  naive pip  `python -m venv` then that venv's pip: `pip install --no-index --find-links requirements/ -r ...`
  uv         `uv venv` then `uv pip sync --offline --no-index --find-links requirements/ --require-hashes
             --compile-bytecode`, with an empty cache directory each round
Every command runs with bootstrap_tools.run.hermetic_env (fresh HOME, no PIP_*/UV_*/PYTHON* variables, pip config
files skipped), so this machine's own pip config cannot steer any contender.

Cases: fresh (the project's own lock, from nothing), noop (everything already built), repin (rebuild after one
pin changed, as after a small `make freeze`: uv's peer is its warm re-sync), scale (the reference set of
bench/requirements.in, about 70 pins). Network is used only on the first run: to install uv from
bench/uv.txt into build/bench/uv-env/ and to lock and download the reference set into build/bench/scale/.
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bootstrap_tools.lockfile import sha256  # noqa: E402
from bootstrap_tools.run import ToolError, fail, hermetic_env, run  # noqa: E402

BENCH = ROOT / "bench"
WORK = ROOT / "build" / "bench"
UV_VERSION = "0.13.9"
UV_LOCK = BENCH / "uv.txt"
REFERENCE_IN = BENCH / "requirements.in"
SCALE = WORK / "scale"
LOCK_COMMAND = "python bench/bench.py lock"
# make passes these down to child makes; the contenders' `make ve` must not see the outer `make bench`.
MAKE_VARIABLES = ("MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES")
STEP_PREFIX = "==> "


def say(message):
    print(message, flush=True)


def main(argv):
    args = parse_args(argv)
    try:
        if args.command == "lock":
            lock_uv()
            return 0
        python = real_python(args.python)
        if args.command == "profile":
            return profile(args, python)
        return bench(args, python)
    except ToolError as exc:
        fail(str(exc))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=("run", "profile", "lock"))
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (default 5)")
    parser.add_argument("--cases", default="fresh,noop,repin,scale",
                        help="comma-separated: fresh, noop, repin, scale")
    parser.add_argument("--sets", default="own,scale", help="profile: which lock sets to profile (own, scale)")
    parser.add_argument("--python", default="python3", help="interpreter for every contender (default python3)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


# ---------------------------------------------------------------------------------------------------------
# Environment, trees and the peers (uv, the reference set)


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


def pip_compile(source, output, env, extra=()):
    argv = [sys.executable, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--allow-unsafe",
            "--strip-extras", "--no-header", "--no-emit-index-url", "--no-emit-find-links",
            "--no-emit-trusted-host", "--no-emit-options", "--cache-dir", WORK / "cache" / "pip-tools",
            "--pip-args", "--isolated", *extra, "--output-file", output, source]
    run(argv, cwd=source.parent, env=env)


def lock_uv():
    """bench/uv.txt: uv pinned and hashed, generated here so that it says what made it."""
    staging = fresh_dir(WORK / "lock-uv")
    env = hermetic_env(staging / "home", {"PIP_CACHE_DIR": str(WORK / "cache" / "pip")})
    source = staging / "uv.in"
    source.write_text(f"uv=={UV_VERSION}\n")
    say(f"==> locking uv=={UV_VERSION} with pip-compile into {UV_LOCK.relative_to(ROOT)}")
    pip_compile(source, staging / "uv.txt", env, ["--no-annotate"])
    header = (f"# Generated by `{LOCK_COMMAND}` (pip-compile --generate-hashes of uv=={UV_VERSION}); do not edit.\n"
              "# uv is a peer in `make bench`, installed into build/bench/uv-env/, never a dependency.\n")
    UV_LOCK.write_text(header + (staging / "uv.txt").read_text())
    shutil.rmtree(staging)


def ensure_uv(python):
    """uv from bench/uv.txt in its own environment under build/bench/ (the index is needed only once)."""
    env_dir = WORK / "uv-env"
    uv = env_dir / "bin" / "uv"
    stamp = env_dir / "bench-stamp.txt"
    key = sha256(UV_LOCK) + " " + python
    if not (uv.exists() and stamp.exists() and stamp.read_text().strip() == key):
        say(f"==> installing uv from {UV_LOCK.relative_to(ROOT)} into {env_dir.relative_to(ROOT)} (needs the index)")
        remove(env_dir)
        env = hermetic_env(fresh_dir(WORK / "home"), {"PIP_CACHE_DIR": str(WORK / "cache" / "pip")})
        run([python, "-I", "-m", "venv", "--without-pip", env_dir], env=env)
        run([sys.executable, "-m", "pip", "--python", env_dir / "bin" / "python", "install", "--isolated",
             "--no-deps", "--require-hashes", "--only-binary=:all:", "--quiet", "-r", UV_LOCK], env=env)
        stamp.write_text(key + "\n")
    version = run([uv, "--version"]).split()
    if version[:2] != ["uv", UV_VERSION]:
        raise ToolError(f"{uv} reports {' '.join(version)}, expected uv {UV_VERSION}; delete {env_dir} and retry.")
    return uv


def ensure_scale(python):
    """The reference set locked (pip-compile --generate-hashes) and its wheels downloaded once, outside git."""
    lock, wheels, stamp = SCALE / "requirements.txt", SCALE / "wheels", SCALE / "input-stamp.txt"
    target = run([python, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).strip()
    key = f"{sha256(REFERENCE_IN)} {target}"
    if lock.exists() and stamp.exists() and stamp.read_text().strip() == key and wheels.is_dir():
        return lock, wheels
    staging = fresh_dir(SCALE / "staging")
    env = hermetic_env(staging / "home", {"PIP_CACHE_DIR": str(WORK / "cache" / "pip")})
    say(f"==> locking {REFERENCE_IN.relative_to(ROOT)} with pip-compile (needs the index, once)")
    source = staging / "requirements.in"
    shutil.copyfile(REFERENCE_IN, source)
    pip_compile(source, staging / "requirements.txt", env)
    # The two header lines bootstrap.py and bootstrap_tools/check.py read (see bootstrap_tools/lockfile.HEADER).
    text = (f"# Generated by `python bench/bench.py` (pip-compile) from bench/requirements.in; do not edit.\n"
            f"# targets: {target}\n") + (staging / "requirements.txt").read_text()
    (staging / "locked.txt").write_text(text)
    say("==> downloading the reference set's wheels (needs the index, once)")
    run([python, "-I", "-m", "venv", "--without-pip", staging / "venv"], env=env)
    run([sys.executable, "-m", "pip", "--python", staging / "venv" / "bin" / "python", "download", "--isolated",
         "--no-deps", "--only-binary=:all:", "--require-hashes", "--quiet", "--dest", staging / "wheels",
         "-r", staging / "locked.txt"], env=env)
    remove(wheels)
    os.replace(staging / "wheels", wheels)
    os.replace(staging / "locked.txt", lock)
    shutil.rmtree(staging)
    stamp.write_text(key + "\n")
    return lock, wheels


REPIN = "pygments"  # a leaf of the own lock (nothing pins against its version), with many modules to install


def ensure_repin(python):
    """(lock A, lock B): the own lock, and the same with REPIN moved to its previous release, as a small
    `make freeze` would; the older wheel is downloaded once (needs the index) into build/bench/repin/."""
    work = WORK / "repin"
    lock_a = (ROOT / "requirements.txt").read_text()
    current = next(line.split("==")[1].split()[0] for line in lock_a.splitlines() if line.startswith(f"{REPIN}=="))
    stamp = work / "input-stamp.txt"
    if not (stamp.exists() and stamp.read_text().strip() == current and list(work.glob("wheels/*.whl"))):
        staging = fresh_dir(work / "staging")
        env = hermetic_env(staging / "home", {"PIP_CACHE_DIR": str(WORK / "cache" / "pip")})
        say(f"==> downloading the release of {REPIN} before {current} (needs the index, once)")
        run([python, "-I", "-m", "venv", "--without-pip", staging / "venv"], env=env)
        run([sys.executable, "-m", "pip", "--python", staging / "venv" / "bin" / "python", "download", "--isolated",
             "--no-deps", "--only-binary=:all:", "--quiet", "--dest", staging / "wheels", f"{REPIN}<{current}"],
            env=env)
        remove(work / "wheels")
        os.replace(staging / "wheels", work / "wheels")
        shutil.rmtree(staging)
        stamp.write_text(current + "\n")
    wheel = next((work / "wheels").glob("*.whl"))
    version = wheel.name.split("-")[1]
    lines, out, skipping = lock_a.splitlines(keepends=True), [], False
    for line in lines:
        if line.startswith(f"{REPIN}=="):
            out.append(f"{REPIN}=={version} \\\n    --hash=sha256:{sha256(wheel)}\n")
            skipping = True
            continue
        if skipping and line.startswith("    --hash"):
            continue
        skipping = False
        out.append(line)
    return lock_a, "".join(out), wheel


def run_repin(python, uv, count):
    """Rebuild after one pin changed: each round moves REPIN to the other version (and a comment, so the other
    slot never already holds the build); uv's peer is its warm re-sync (same venv, cache kept), pip's is
    `pip install -r` in its existing venv."""
    lock_a, lock_b, wheel = ensure_repin(python)
    work = WORK / "repin"
    say("==> copying the project to build/bench/repin/tree")
    tree = copy_tree(work / "tree")
    shutil.copyfile(wheel, tree / "requirements" / wheel.name)
    lock = tree / "requirements.txt"
    state = {"round": 0}

    def next_lock(env):
        state["round"] += 1
        text = lock_b if state["round"] % 2 else lock_a
        lock.write_text(text + f"# bench round {state['round']}\n")

    say("==> case repin: building each contender once on the original lock (untimed)")
    env = contender_env(fresh_dir(WORK / "home"))
    lock.write_text(lock_a)
    run(["make", "ve", f"PYTHON={python}"], cwd=tree, env=env)
    remove(work / "naive-venv")
    for argv in naive_commands(tree, python, work / "naive-venv", fresh=True):
        run(argv, cwd=tree, env=env)
    remove(work / "uv-venv")
    remove(work / "uv-cache")
    for argv in uv_commands(uv, python, work / "uv-venv", work / "uv-cache", fresh=True):
        run(argv, cwd=tree, env=env)
    ours_ = Contender("make ve", [["make", "ve", f"PYTHON={python}"]], tree, prepare=next_lock)
    naive_ = Contender("naive pip", naive_commands(tree, python, work / "naive-venv", fresh=False), tree)
    uv_ = Contender("uv", uv_commands(uv, python, work / "uv-venv", work / "uv-cache", fresh=False), tree)
    say(f"==> case repin: {count} rounds, {REPIN} moved between {wheel.name.split('-')[1]} and the lock's version")
    rounds([ours_, naive_, uv_], count, "repin")
    note = (f"each round moves {REPIN} to the other version (make ve rebuilds the whole ve; uv re-syncs its venv "
            "with its cache kept; naive pip upgrades in place)")
    return "repin", [ours_, naive_, uv_], note


def count_pins(lock):
    return sum(1 for line in Path(lock).read_text().splitlines() if "==" in line and not line.startswith("#"))


def wheelhouse_bytes(directory):
    return sum(path.stat().st_size for path in Path(directory).iterdir())


# ---------------------------------------------------------------------------------------------------------
# Contenders and rounds


class Contender:
    """Something timed: `prepare` (untimed) then `commands` run one after the other (timed)."""

    def __init__(self, name, commands, cwd, prepare=None, compared=True):
        self.name, self.commands, self.cwd, self.prepare, self.compared = name, commands, cwd, prepare, compared
        self.times = []


def make_clean(tree, env):
    run(["make", "clean"], cwd=tree, env=env)


def ours(tree, python, fresh):
    prepare = (lambda env: make_clean(tree, env)) if fresh else None
    return Contender("make ve", [["make", "ve", f"PYTHON={python}"]], tree, prepare)


def naive_commands(tree, python, venv, fresh):
    install = [venv / "bin" / "pip", "install", "--no-index", "--find-links", "requirements/",
               "-r", "requirements.txt"]
    return ([[python, "-m", "venv", venv]] if fresh else []) + [install]


def naive(tree, python, venv, fresh):
    prepare = (lambda env: remove(venv)) if fresh else None
    return Contender("naive pip", naive_commands(tree, python, venv, fresh), tree, prepare)


def uv_commands(uv, python, venv, cache, fresh):
    sync = [uv, "pip", "sync", "--no-config", "--python", venv / "bin" / "python", "--offline", "--no-index",
            "--find-links", "requirements/", "--require-hashes", "--compile-bytecode", "--cache-dir", cache,
            "requirements.txt"]
    return ([[uv, "venv", "--no-config", "--python", python, venv]] if fresh else []) + [sync]


def uv_contender(tree, uv, python, venv, cache, fresh):
    def prepare(env):
        remove(cache)
        if fresh:
            remove(venv)
    return Contender("uv", uv_commands(uv, python, venv, cache, fresh), tree, prepare)


def time_once(contender, env):
    if contender.prepare:
        contender.prepare(env)
    started = time.perf_counter()
    for argv in contender.commands:
        run(argv, cwd=contender.cwd, env=env)
    return time.perf_counter() - started


def rounds(contenders, count, label):
    """A B C A B C ...: every contender once per round, in the same order."""
    for number in range(1, count + 1):
        for contender in contenders:
            env = contender_env(fresh_dir(WORK / "home"))
            seconds = time_once(contender, env)
            contender.times.append(seconds)
        say(f"    {label} round {number}/{count}: " + "  ".join(f"{c.name} {c.times[-1]:.3f} s" for c in contenders)
            + f"  [load {os.getloadavg()[0]:.2f}]")


def bench(args, python):
    cases = [case.strip() for case in args.cases.split(",") if case.strip()]
    unknown = set(cases) - {"fresh", "noop", "repin", "scale"}
    if unknown:
        raise ToolError(f"unknown case(s) {', '.join(sorted(unknown))}; choose among fresh, noop, repin, scale.")
    WORK.mkdir(parents=True, exist_ok=True)
    say(f"==> {load_note()}")
    uv = ensure_uv(python)
    results = []
    if "fresh" in cases or "noop" in cases:
        say("==> copying the project to build/bench/own/tree")
        tree = copy_tree(WORK / "own" / "tree")
        if "fresh" in cases:
            results.append(run_case("fresh", tree, python, uv, WORK / "own", args.rounds, fresh=True))
        if "noop" in cases:
            results.append(run_noop(tree, python, uv, WORK / "own", args.rounds))
    if "repin" in cases:
        results.append(run_repin(python, uv, args.rounds))
    if "scale" in cases:
        lock, wheels = ensure_scale(python)
        say(f"==> copying the project with the reference set ({count_pins(lock)} pins, "
            f"{wheelhouse_bytes(wheels) / 1e6:.0f} MB of wheels) to build/bench/scale/tree")
        tree = copy_tree(SCALE / "tree", lock=lock, wheels=wheels)
        results.append(run_case("scale", tree, python, uv, SCALE, args.rounds, fresh=True))
    report = render(results, python, uv)
    (WORK / "results.txt").write_text(report)
    say("")
    say(report.rstrip())
    say(f"(also in {(WORK / 'results.txt').relative_to(ROOT)})")
    return 0


def run_case(case, tree, python, uv, work, count, fresh):
    contenders = [ours(tree, python, fresh), naive(tree, python, work / "naive-venv", fresh),
                  uv_contender(tree, uv, python, work / "uv-venv", work / "uv-cache", fresh)]
    say(f"==> case {case}: {count} rounds of {', '.join(c.name for c in contenders)} "
        f"({count_pins(tree / 'requirements.txt')} pins)")
    rounds(contenders, count, case)
    return case, contenders, ""


def run_noop(tree, python, uv, work, count):
    """Everything already built: each contender's second run. Built once first (untimed)."""
    say("==> case noop: building each contender once (untimed)")
    env = contender_env(fresh_dir(WORK / "home"))
    run(["make", "ve", f"PYTHON={python}"], cwd=tree, env=env)
    remove(work / "naive-venv")
    for argv in naive_commands(tree, python, work / "naive-venv", fresh=True):
        run(argv, cwd=tree, env=env)
    remove(work / "uv-venv")
    for argv in uv_commands(uv, python, work / "uv-venv", work / "uv-cache", fresh=True):
        run(argv, cwd=tree, env=env)
    contenders = [
        ours(tree, python, fresh=False),
        naive(tree, python, work / "naive-venv", fresh=False),
        uv_contender(tree, uv, python, work / "uv-venv", work / "uv-cache", fresh=False),
        Contender(f"{Path(python).name} -I -S bootstrap.py (real path)", [[python, "-I", "-S", "bootstrap.py"]],
                  tree, compared=False),
        Contender("python3 -I -S bootstrap.py (python3 from PATH)", [["python3", "-I", "-S", "bootstrap.py"]],
                  tree, compared=False),
        Contender("make ve (PYTHON=python3 from PATH)", [["make", "ve"]], tree, compared=False),
        Contender(f"{Path(python).name} -I -S -c pass (interpreter start)", [[python, "-I", "-S", "-c", "pass"]],
                  tree, compared=False),
    ]
    say(f"==> case noop: {count} rounds")
    rounds(contenders, count, "noop")
    which = shutil.which("python3") or "python3"
    note = (f"python3 on PATH is {which}" + (" (a pyenv shim: a shell script that starts pyenv, "
                                             "~100 ms before Python itself starts)" if "shims" in which else ""))
    return "noop", contenders, note


def load_note():
    """The 1-minute load average: above ~0.5 on an idle machine, something else competes for the cores."""
    load = os.getloadavg()[0]
    warning = " (WARNING: other work is running; absolute times are inflated, the ratios less so)" if load > 0.5 else ""
    return f"load average {load:.2f} on {os.cpu_count()} CPUs{warning}"


def render(results, python, uv):
    lines = [f"interpreter: {python} (Python {platform.python_version()}); uv: {uv}",
             f"at the end: {load_note()}", ""]
    lines.append(f"{'case':<6} {'contender':<48} {'min s':>8} {'median s':>9} {'max s':>8}  per round (s)")
    machine = []
    for case, contenders, note in results:
        for contender in contenders:
            times = contender.times
            lines.append(f"{case:<6} {contender.name:<48} {min(times):8.3f} {statistics.median(times):9.3f} "
                         f"{max(times):8.3f}  " + " ".join(f"{t:.3f}" for t in times))
        ours_, naive_, uv_ = contenders[:3]
        vs_uv = [a / b for a, b in zip(ours_.times, uv_.times)]
        vs_naive = [a / b for a, b in zip(ours_.times, naive_.times)]
        median = statistics.median(ours_.times)
        ratio_uv = median / statistics.median(uv_.times)
        ratio_naive = median / statistics.median(naive_.times)
        lines.append(f"{case:<6} {'ratio make ve / uv, per round':<48} {min(vs_uv):8.2f} "
                     f"{statistics.median(vs_uv):9.2f} {max(vs_uv):8.2f}  " + " ".join(f"{r:.2f}" for r in vs_uv))
        lines.append(f"{case:<6} {'ratio make ve / naive pip, per round':<48} {min(vs_naive):8.2f} "
                     f"{statistics.median(vs_naive):9.2f} {max(vs_naive):8.2f}  "
                     + " ".join(f"{r:.2f}" for r in vs_naive))
        if note:
            lines.append(f"{case:<6} note: {note}")
        lines.append("")
        machine.append(f"case={case} median_s={median:.3f} ratio_vs_uv={ratio_uv:.2f} "
                       f"ratio_vs_naive={ratio_naive:.2f} rounds={len(ours_.times)} "
                       f"uv_median_s={statistics.median(uv_.times):.3f} "
                       f"naive_median_s={statistics.median(naive_.times):.3f}")
    lines.append("ratios on the machine-readable lines are median(make ve) / median(peer)")
    return "\n".join(lines + machine) + "\n"


# ---------------------------------------------------------------------------------------------------------
# Profile: where `make ve`'s time goes, and what candidate changes to bootstrap.py would buy


PATCH_NO_COMPILE = (
    '"--no-input", "--quiet", "-r", requirements]',
    '"--no-input", "--quiet", "--no-compile", "-r", requirements]',
)
PATCH_COMPILEALL = (
    '    run(argv, env, "pip install")\n',
    '    run(argv, env, "pip install")\n'
    '    site = os.path.join(slot, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")\n'
    '    run([python_in(slot), "-I", "-m", "compileall", "-j0", "--invalidation-mode", "checked-hash", "-q",\n'
    '         site], env, "compileall")\n',
)
PATCH_UNPACKED_PIP = (
    '    verify_file(runner, {file_sha256(seed)}, "the verified seed wheel", "retry")\n',
    '    verify_file(runner, {file_sha256(seed)}, "the verified seed wheel", "retry")\n'
    '    import zipfile\n'
    '    unpacked = os.path.join(scratch, "pip-unpacked")\n'
    '    with zipfile.ZipFile(runner) as archive:\n'
    '        archive.extractall(unpacked, [n for n in archive.namelist() if n.startswith("pip/")])\n'
    '    run([sys.executable, "-I", "-m", "compileall", "-j0", "-q", os.path.join(unpacked, "pip")],\n'
    '        env, "compile pip")\n'
    '    runner = unpacked\n',
)
# (1) as patched first: the ve's python processes .pth files at start-up, and setuptools' distutils-precedence.pth
# imports _distutils_hack, writing a timestamp .pyc that compileall then keeps. -S and -f avoid that.
PATCH_COMPILEALL_S = (PATCH_COMPILEALL[0], PATCH_COMPILEALL[1].replace('"-I", "-m", "compileall", "-j0"',
                                                                       '"-I", "-S", "-m", "compileall", "-f", "-j0"'))
VARIANTS = {
    "baseline (bootstrap.py as is)": [],
    "(1) --no-compile + compileall -j0": [PATCH_NO_COMPILE, PATCH_COMPILEALL],
    "(1b) as (1), compileall with -S -f": [PATCH_NO_COMPILE, PATCH_COMPILEALL_S],
    "(2) pip from unpacked, compileall'd seed": [PATCH_UNPACKED_PIP],
    "(1)+(2)": [PATCH_NO_COMPILE, PATCH_COMPILEALL, PATCH_UNPACKED_PIP],
}


def patched_bootstrap(patches):
    text = (ROOT / "bootstrap.py").read_text()
    for old, new in patches:
        if text.count(old) != 1:
            return None
        text = text.replace(old, new)
    return text


def profile(args, python):
    sets = [name.strip() for name in args.sets.split(",") if name.strip()]
    out = []

    def emit(line=""):
        say(line)
        out.append(line)

    emit(f"profile of `make ve` with {python}, {args.rounds} rounds; {load_note()}")
    for name in sets:
        if name == "own":
            lock, wheels = ROOT / "requirements.txt", ROOT / "requirements"
        elif name == "scale":
            lock, wheels = ensure_scale(python)
        else:
            raise ToolError(f"unknown set {name}; choose own or scale.")
        base = WORK / "profile" / name
        tree = copy_tree(base / "tree", lock=lock, wheels=wheels)
        emit("")
        emit(f"## set {name}: {count_pins(lock)} pins, {wheelhouse_bytes(tree / 'requirements') / 1e6:.1f} MB")
        profile_steps(tree, python, args.rounds, emit)
        profile_virtualenv(tree, python, base, args.rounds, emit)
        profile_pip(tree, python, base, args.rounds, emit)
        profile_variants(lock, wheels, python, base, args.rounds, emit)
        if name == "own":
            profile_identity(lock, wheels, python, base, emit)
    (WORK / "profile.txt").write_text("\n".join(out) + "\n")
    say(f"(also in {(WORK / 'profile.txt').relative_to(ROOT)})")
    return 0


def table(emit, title, rows):
    emit(f"{title:<58} {'min s':>8} {'median s':>9} {'max s':>8}")
    for label, times in rows:
        emit(f"  {label:<56} {min(times):8.3f} {statistics.median(times):9.3f} {max(times):8.3f}")


def timed_steps(tree, python, env, extra=()):
    """Run bootstrap.py, timestamping each `==>` line as it arrives: [(step, seconds)]."""
    started = time.perf_counter()
    process = subprocess.Popen([python, "-I", "-S", "bootstrap.py", *extra], cwd=tree, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marks = [("start: lock, key, verify lock/seed/wheelhouse hashes", started)]
    for line in process.stdout:
        if line.startswith(STEP_PREFIX):
            marks.append((line[len(STEP_PREFIX):].strip(), time.perf_counter()))
    if process.wait() != 0:
        raise ToolError(f"bootstrap.py failed in {tree}")
    marks.append(("exit", time.perf_counter()))
    return [(label, end - begin) for (label, begin), (_, end) in zip(marks, marks[1:])]


def short_step(label):
    for word, short in (("creating", "virtualenv (seed pip compiled meanwhile when cold)"),
                        ("seeding", "seed pip into the slot (waits for its compile when cold)"),
                        ("installing", "pip install, compile workers alongside"),
                        ("checking", "check installed vs lock and Requires-Dist, stamp, switch"),
                        ("the cached", "a damaged cache entry rebuilt"), ("done", "summary, exit")):
        if label.startswith(word):
            return short
    return "verify inputs (lock, seed, wheelhouse hashes), pick slot"


def profile_steps(tree, python, count, emit):
    for title, warm in (("fresh, caches cold", False), ("rebuild (--force), caches warm", True)):
        steps, totals = {}, []
        for _ in range(count):
            env = contender_env(fresh_dir(WORK / "home"))
            if not warm:
                make_clean(tree, env)
            measured = timed_steps(tree, python, env, ["--force"] if warm else [])
            for label, seconds in measured:
                steps.setdefault(short_step(label), []).append(seconds)
            totals.append(sum(seconds for _, seconds in measured))
        table(emit, f"bootstrap.py steps ({title}, from its ==> lines)", list(steps.items()) + [("total", totals)])


VIRTUALENV_SPLIT = r"""
import base64, importlib.util, io, json, os, shutil, sys, tempfile, time, zipfile
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("virtualenv_py", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
t1 = time.perf_counter()
raw = base64.b64decode(module.PAYLOAD)
t2 = time.perf_counter()
archive = zipfile.ZipFile(io.BytesIO(raw))
dirs = module.wheel_dirs(json.loads(archive.read("manifest.json")))
target = tempfile.mkdtemp(prefix="virtualenv-py-")
sys.path[:0] = module.unpack(archive, dirs, target)
t3 = time.perf_counter()
sys.dont_write_bytecode = True
from virtualenv.__main__ import run_with_catch  # noqa
t4 = time.perf_counter()
shutil.rmtree(target)
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def profile_virtualenv(tree, python, base, count, emit):
    rows = {name: [] for name in (
        "python -I -c pass (interpreter start)", "virtualenv.py --no-seed (whole run)",
        "  compile+exec the 1.7 MB virtualenv.py file", "  base64-decode the payload",
        "  unzip the wheels to a temp dir", "  import virtualenv (compiled from source, no .pyc)",
        "python -m venv --without-pip (stdlib, for comparison)")}
    dest = base / "venv-probe"
    for _ in range(count):
        env = contender_env(fresh_dir(WORK / "home"))
        rows["python -I -c pass (interpreter start)"].append(stopwatch([python, "-I", "-c", "pass"], env, tree))
        remove(dest)
        rows["virtualenv.py --no-seed (whole run)"].append(stopwatch(
            [python, "-I", "virtualenv.py", "--no-seed", "--no-download", "--no-periodic-update",
             "--no-venv-redirect", "--app-data", WORK / "home" / "app-data", "--python", python, dest], env, tree))
        parts = run([python, "-I", "-c", VIRTUALENV_SPLIT, tree / "virtualenv.py"], env=env, cwd=tree).split()
        for key, value in zip(list(rows)[2:6], parts):
            rows[key].append(float(value))
        remove(dest)
        rows["python -m venv --without-pip (stdlib, for comparison)"].append(
            stopwatch([python, "-I", "-m", "venv", "--without-pip", dest], env, tree))
    table(emit, "virtualenv.py (3)", list(rows.items()))


def stopwatch(argv, env, cwd):
    started = time.perf_counter()
    run(argv, env=env, cwd=cwd)
    return time.perf_counter() - started


def pip_argv(runner, target, tree, compile_):
    return [target / "bin" / "python", "-I", runner / "pip", "install", "--isolated", "--no-index", "--no-deps",
            "--require-hashes", "--only-binary=:all:", "--no-cache-dir", "--disable-pip-version-check",
            "--no-input", "--quiet", *([] if compile_ else ["--no-compile"]), "-r", tree / "requirements.txt",
            "--find-links", tree / "requirements", "--find-links", tree / "virtualenv_support"]


def site_packages(target):
    return next((target / "lib").glob("python*/site-packages"))


def seed_wheel(tree):
    return next((tree / "virtualenv_support").glob("pip-*.whl"))


def unpack_pip(tree, dest, env, python):
    """The seed wheel unpacked and compiled: what running pip from a precompiled copy would cost to make."""
    remove(dest)
    with zipfile.ZipFile(seed_wheel(tree)) as archive:
        # pip/ only: with pip's .dist-info on sys.path, pip would take itself as installed and skip it.
        archive.extractall(dest, [name for name in archive.namelist() if name.startswith("pip/")])
    run([python, "-I", "-m", "compileall", "-j0", "-q", dest / "pip"], env=env)


def profile_pip(tree, python, base, count, emit):
    wheel = base / "pip-wheel" / seed_wheel(tree).name
    fresh_dir(wheel.parent)
    shutil.copyfile(seed_wheel(tree), wheel)
    unpacked = base / "pip-unpacked"
    target = base / "pip-target"
    variants = {
        "from wheel, compile (bootstrap.py today)": (wheel, True, False),
        "from wheel, --no-compile": (wheel, False, False),
        "from wheel, --no-compile, then compileall -j0": (wheel, False, True),
        "from unpacked precompiled pip, compile": (unpacked, True, False),
        "from unpacked precompiled pip, --no-compile + compileall": (unpacked, False, True),
    }
    rows = {name: [] for name in variants}
    rows["  of which compileall -j0 checked-hash of site-packages"] = []
    rows["unzip + compileall -j0 of the seed pip (one-off cost)"] = []
    for _ in range(count):
        env = contender_env(fresh_dir(WORK / "home"))
        rows["unzip + compileall -j0 of the seed pip (one-off cost)"].append(
            stopwatch_call(lambda: unpack_pip(tree, unpacked, env, python)))
        for name, (runner, compile_, compileall) in variants.items():
            remove(target)
            run([python, "-I", "-m", "venv", "--without-pip", target], env=env)
            seconds = stopwatch(pip_argv(runner, target, tree, compile_), env, tree)
            pins_pip = any(line.startswith("pip==") for line in (tree / "requirements.txt").read_text().splitlines())
            if pins_pip and not (site_packages(target) / "pip").is_dir():
                raise ToolError(f"{name}: pip, pinned by the lock, was not installed.")
            if compileall:
                extra = stopwatch([target / "bin" / "python", "-I", "-m", "compileall", "-j0", "--invalidation-mode",
                                   "checked-hash", "-q", site_packages(target)], env, tree)
                if runner == wheel:
                    rows["  of which compileall -j0 checked-hash of site-packages"].append(extra)
                seconds += extra
            rows[name].append(seconds)
    table(emit, "pip install of the lock into an empty venv (1)(2)", list(rows.items()))
    env = contender_env(fresh_dir(WORK / "home"))
    emit("  -X importtime, sum of self times (pip install --no-compile):")
    for label, runner in (("from the wheel (zipimport, compiles pip's source)", wheel),
                          ("from the unpacked precompiled copy", unpacked)):
        remove(target)
        run([python, "-I", "-m", "venv", "--without-pip", target], env=env)
        result = subprocess.run([str(a) for a in [target / "bin" / "python", "-X", "importtime",
                                                  *pip_argv(runner, target, tree, False)[1:]]],
                                env=env, cwd=tree, capture_output=True, text=True)
        total, modules = importtime_sum(result.stderr)
        emit(f"    {label:<56} {total:8.3f} s over {modules} modules")
    cprofile_pip(tree, python, wheel, target, base, env, emit)


def stopwatch_call(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def importtime_sum(stderr):
    total, modules = 0, 0
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            field = line.split(":", 1)[1].split("|")[0].strip()
            if field.isdigit():
                total += int(field)
                modules += 1
    return total / 1e6, modules


CPROFILE = r"""
import cProfile, pstats, runpy, sys
out, wheel = sys.argv[1], sys.argv[2]
sys.argv = ["pip"] + sys.argv[3:]
sys.path.insert(0, wheel)
profiler = cProfile.Profile()
try:
    profiler.runcall(runpy.run_module, "pip", run_name="__main__", alter_sys=True)
except SystemExit:
    pass
profiler.dump_stats(out)
"""

CPROFILE_PARTS = (
    ("pip's own modules compiled by zipimport", "zipimport", "_compile_source"),
    ("resolver (resolve)", "resolver.py", "resolve"),
    ("install_given_reqs (unpack, RECORD, compile)", "__init__.py", "install_given_reqs"),
    ("  of which py_compile of installed files", "py_compile.py", "compile"),
    ("hash checks (check_against_chunks)", "hashes.py", "check_against_chunks"),
)


def cprofile_pip(tree, python, wheel, target, base, env, emit):
    import pstats

    remove(target)
    run([python, "-I", "-m", "venv", "--without-pip", target], env=env)
    out = base / "pip-install.prof"
    argv = pip_argv(wheel, target, tree, True)
    run([target / "bin" / "python", "-I", "-c", CPROFILE, out, wheel, *argv[3:]], env=env, cwd=tree)
    stats = pstats.Stats(str(out)).stats
    total = max(entry[3] for entry in stats.values())
    emit(f"  cProfile of pip install from the wheel (compile on), total {total:.3f} s; cumulative times:")
    for label, filename, function in CPROFILE_PARTS:
        seconds = max([entry[3] for (path, _, name), entry in stats.items()
                       if filename in path and name == function] or [0.0])
        emit(f"    {label:<56} {seconds:8.3f} s")


def profile_variants(lock, wheels, python, base, count, emit):
    trees = {}
    for index, (name, patches) in enumerate(VARIANTS.items()):
        text = patched_bootstrap(patches)
        if text is None:
            emit(f"  {name}: patch does not apply to the current bootstrap.py; skipped")
            continue
        tree = copy_tree(base / f"variant-{index}", lock=lock, wheels=wheels)
        (tree / "bootstrap.py").write_text(text)
        trees[name] = tree
    times = {name: [] for name in trees}
    for _ in range(count):
        for name, tree in trees.items():
            env = contender_env(fresh_dir(WORK / "home"))
            make_clean(tree, env)
            times[name].append(stopwatch(["make", "ve", f"PYTHON={python}"], env, tree))
    table(emit, "make ve, fresh, with bootstrap.py patched (copies only)", list(times.items()))
    baseline = statistics.median(next(iter(times.values())))
    for name, values in list(times.items())[1:]:
        emit(f"  {name:<56} saves {baseline - statistics.median(values):6.3f} s (median)")


def tree_digest(slot):
    files = {}
    for directory, _, names in os.walk(slot):
        for name in names:
            path = Path(directory) / name
            rel = str(path.relative_to(slot))
            files[rel] = "link:" + os.readlink(path) if path.is_symlink() else sha256(path)
    return files


def record_pycs(slot):
    count = 0
    for record in Path(slot).glob("lib/python*/site-packages/*.dist-info/RECORD"):
        count += sum(1 for line in record.read_text().splitlines() if ".pyc," in line)
    return count


IDENTITY_VARIANTS = ("baseline (bootstrap.py as is)", "(1) --no-compile + compileall -j0",
                     "(1b) as (1), compileall with -S -f", "(2) pip from unpacked, compileall'd seed")


def profile_identity(lock, wheels, python, base, emit):
    """Two builds at the same path with SOURCE_DATE_EPOCH: byte-identical? And baseline vs (1)."""
    tree = copy_tree(base / "identity", lock=lock, wheels=wheels)
    original = (tree / "bootstrap.py").read_text()
    digests = {}
    for name in IDENTITY_VARIANTS:
        text = patched_bootstrap(VARIANTS[name])
        if text is None:
            continue
        (tree / "bootstrap.py").write_text(text)
        builds = []
        for _ in range(2):
            env = contender_env(fresh_dir(WORK / "home"))
            make_clean(tree, env)
            run(["make", "ve", f"PYTHON={python}"], cwd=tree, env=env)
            slot = (tree / "ve").resolve()
            builds.append(tree_digest(slot))
            pycs, files = record_pycs(slot), sum(1 for rel in builds[-1] if rel.endswith(".pyc"))
        identical = builds[0] == builds[1]
        differing = sorted(rel for rel in set(builds[0]) | set(builds[1]) if builds[0].get(rel) != builds[1].get(rel))
        emit(f"  {name}: two builds byte-identical: {'yes' if identical else 'NO: ' + ', '.join(differing[:5])}; "
             f"{files} .pyc files, {pycs} listed in RECORD files")
        digests[name] = builds[0]
    (tree / "bootstrap.py").write_text(original)
    if len(digests) >= 2:
        first, second = list(digests.values())[:2]
        differing = sorted(rel for rel in set(first) | set(second) if first.get(rel) != second.get(rel))
        kinds = {}
        for rel in differing:
            kind = "RECORD" if rel.endswith("/RECORD") else ".pyc" if rel.endswith(".pyc") else rel
            kinds[kind] = kinds.get(kind, 0) + 1
        emit("  baseline vs (1), same path: differing files: "
             + (", ".join(f"{kind} x{n}" for kind, n in sorted(kinds.items())) or "none"))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
