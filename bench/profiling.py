"""`python bench/bench.py profile`: where `make ve`'s time goes, measured from outside (bootstrap.py and the tools
it runs, started as programs; nothing of bootstrap.py or bootstrap_build/ is imported or patched).

- bootstrap.py's steps, from the time each of its `==>` lines arrives, fresh and forced;
- virtualenv.py run as a script, and the parts of its launcher;
- pip installing the lock into an empty venv, from the seed wheel or from an unpacked, precompiled copy of it, with
  and without compiling (make ve installs from the precompiled copy with --no-compile while its own workers compile).
"""

import shutil
import statistics
import subprocess
import time
import zipfile

from workspace import (
    ROOT, WORK, contender_env, copy_tree, count_pins, fresh_dir, load_note, make_clean, remove, say, stopwatch,
    wheelhouse_bytes,
)
from peers import ensure_scale
from bootstrap_tools.run import ToolError, run

STEP_PREFIX = "==> "


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
                        ("building from source", "sdists built offline (no wheel fits this Python)"),
                        ("checking", "check installed vs lock and Requires-Dist, stamp, switch"),
                        ("done", "summary, exit")):
        if label.startswith(word):
            return short
    return "verify inputs (lock, seed, wheelhouse hashes), pick slot"


def profile_steps(tree, python, count, emit):
    for title, warm in (("fresh, after make clean", False), ("rebuild (--force), previous build in place", True)):
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
    table(emit, "virtualenv.py", list(rows.items()))


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
        "from wheel, compile (pip's default)": (wheel, True, False),
        "from wheel, --no-compile": (wheel, False, False),
        "from wheel, --no-compile, then compileall -j0": (wheel, False, True),
        "from unpacked precompiled pip, compile": (unpacked, True, False),
        "from unpacked precompiled pip, --no-compile + compileall": (unpacked, False, True),  # nearest to make ve
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
    table(emit, "pip install of the lock into an empty venv", list(rows.items()))
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
