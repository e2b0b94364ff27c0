"""`make bench`: time `make ve` against the naive pip recipe and uv, on the same lock, wheelhouse and interpreter.

Usage (inside ./ve, as `make bench` runs it):
    python bench/bench.py [run] [--rounds N] [--cases fresh,noop,repin,scale] [--python python3]
    python bench/bench.py profile [--rounds N] [--sets own,scale]   where `make ve`'s time goes (profiling.py)
    python bench/bench.py lock                                    regenerate bench/uv.txt (needs the index)
    python bench/bench.py freeze [--rounds N] [--cases nochange,add,scale]   `make freeze` against uv's lock
                                                                  (needs the index; freeze_cases.py)

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
import sys
import time
from pathlib import Path

from workspace import (
    ROOT, WORK, contender_env, copy_tree, count_pins, fresh_dir, load_note, make_clean, real_python, remove, say,
    timing_row, wheelhouse_bytes,
)
from peers import REPIN, SCALE, ensure_repin, ensure_scale, ensure_uv, lock_uv
from profiling import profile
from bootstrap_tools.run import ToolError, fail, run


def main(argv):
    args = parse_args(argv)
    try:
        if args.command == "lock":
            lock_uv()
            return 0
        python = real_python(args.python)
        if args.command == "freeze":
            from freeze_cases import run_freeze
            return run_freeze(args, ensure_uv(python))
        if args.command == "profile":
            return profile(args, python)
        return bench(args, python)
    except ToolError as exc:
        fail(str(exc))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=("run", "profile", "lock", "freeze"))
    parser.add_argument("--rounds", type=int, default=5, help="rounds per case (default 5)")
    parser.add_argument("--cases", default=None,
                        help="comma-separated: fresh, noop, repin, scale (default: all); for freeze: nochange, add, "
                             "scale (default: all)")
    parser.add_argument("--sets", default="own,scale", help="profile: which lock sets to profile (own, scale)")
    parser.add_argument("--python", default="python3", help="interpreter for every contender (default python3)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


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


class Contender:
    """Something timed: `prepare` (untimed) then `commands` run one after the other (timed)."""

    def __init__(self, name, commands, cwd, prepare=None, compared=True):
        self.name, self.commands, self.cwd, self.prepare, self.compared = name, commands, cwd, prepare, compared
        self.times = []


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
    cases = [case.strip() for case in (args.cases or "fresh,noop,repin,scale").split(",") if case.strip()]
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


def render(results, python, uv):
    lines = [f"interpreter: {python} (Python {platform.python_version()}); uv: {uv}",
             f"at the end: {load_note()}", ""]
    lines.append(f"{'case':<6} {'contender':<48} {'min s':>8} {'median s':>9} {'max s':>8}  per round (s)")
    machine = []
    for case, contenders, note in results:
        lines += [timing_row(case, 6, contender, 48) for contender in contenders]
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
