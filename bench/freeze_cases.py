"""`python bench/bench.py freeze`: `make freeze` timed against uv's lock of the same requirements.in, in the same run.

Opt-in (plain `make bench` stays offline once its peers are fetched): every case needs the package index (pip's
default, and uv's). Contenders alternate as in bench.py, in a copy of the project under build/bench/freeze/:
  make freeze     the project's `make freeze` (TARGET_PYTHONS and TARGET_PLATFORMS of its Makefile)
  uv cold         `uv pip compile --universal --generate-hashes requirements.in`, an empty cache each round
  uv warm         the same with its cache kept (warmed once, untimed)
  naive pip-tools the naive pip-tools recipe, per target ((platform, Python) pair of the lock): one `pip-compile
                  --generate-hashes` (under the pair's Python, with pip-tools as its wheels ship it) and one `pip
                  download -r` of its output (--platform and --python-version of the pair), with its own cache and wheel
                  directories kept between rounds, as make freeze's, except in the scale case (from nothing)
Cases:
  nochange  `make freeze` with nothing changed on this repository (primed once, untimed: the lock then records
            its inputs digest, as after any freeze)
  add       one package (ADDED) added to requirements.in; the tree is put back (untimed) before each round, the
            freeze's HTTP cache kept, as for a maintainer
  scale     the first freeze of the bench's scale set (bench/requirements.in, added to the project's own
            requirements.in) for the repository's targets: each round starts from the project's lock with
            .bootstrap/ removed (no cache of any kind)
"""

import shlex
import shutil
import statistics
import sys

from workspace import (
    ROOT, WORK, contender_env, copy_tree, count_pins, fresh_dir, load_note, remove, say, timing_row,
)
from peers import REFERENCE_IN
from bootstrap_tools import lockfile, platforms, targets
from bootstrap_tools.run import ToolError, run

CASES = ("nochange", "add", "scale")
ADDED = "six"  # small, pure Python, not in the project's lock
# What a freeze writes in the tree: put back before each round of the cases that change it.
FROZEN = ("requirements.in", "requirements.txt", "requirements-dev.txt", "requirements.pins", "requirements",
          "requirements-provenance.json", "pylock.toml", "requirements-build.txt", "requirements-built.json")


class Contender:
    """Something timed: `prepare` (untimed), then each of `commands` (argv lists), one after the other."""

    def __init__(self, name, commands, prepare=None):
        self.name, self.commands, self.prepare, self.times = name, commands, prepare, []


def oldest_target(tree):
    text = (tree / "requirements.txt").read_text()
    targets = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("# targets:")), [])
    return min(targets, key=lambda version: tuple(map(int, version.split(".")))) if targets else "3.10"


def uv_contenders(uv, tree, work):
    def compile_argv(cache):
        return [uv, "pip", "compile", "--no-config", "--universal", "--generate-hashes", "--quiet",
                "--python-version", oldest_target(tree), "--cache-dir", cache, "-o", work / "uv-lock.txt",
                *sources(tree)]
    cold = Contender("uv pip compile --universal (cold cache)", [compile_argv(work / "uv-cold")],
                     prepare=lambda env: remove(work / "uv-cold"))
    warm = Contender("uv pip compile --universal (warm cache)", [compile_argv(work / "uv-warm")])
    return cold, warm


def sources(tree):
    """What make freeze locks: requirements.in, and the dev set's requirements-dev.in when there is one (the peers
    resolve the two together; make freeze locks the dev set with the runtime pins held)."""
    return [tree / name for name in ("requirements.in", "requirements-dev.in") if (tree / name).exists()]


def naive_commands(tree, naive):
    """The naive pip-tools recipe for the targets of the tree's lock: per (platform, Python) pair (or Python), one
    `pip-compile --generate-hashes` into naive/<pair>.txt and one `pip download -r` of it into naive/<pair>/."""
    text = (tree / "requirements.txt").read_text()
    commands, pythons = [], {}
    for target in platforms.pairs(tree, lockfile.targets(text) or [oldest_target(tree)], lockfile.platforms(text)):
        name = target.slug() if isinstance(target, platforms.Pair) else target
        output = naive / f"{name}.txt"
        # pip-compile resolves for the interpreter it runs under: one env with pip-tools per target Python, made
        # once and untimed (the convention's own tools envs, from the tools' wheels, kept apart from the tree's
        # build area, which the scale case removes), as a maintainer has them.
        version = platforms.python_of(target)
        if version not in pythons and version == "%d.%d" % sys.version_info[:2]:
            pythons[version] = tree / ".bootstrap" / "tools" / "bin" / "python"
        elif version not in pythons:
            (naive / "envs" / "home").mkdir(parents=True, exist_ok=True)
            home = contender_env(naive / "envs" / "home")
            pythons[version] = targets.tool_python(tree, version, naive / "envs", home, envs=naive / "envs")
        python = pythons[version]
        commands.append([python, "-m", "piptools", "compile", "--quiet", "--generate-hashes", "--allow-unsafe",
                         "--cache-dir", naive / "cache" / "pip-tools", "--pip-args",
                         f"--only-binary=:all: --cache-dir {shlex.quote(str(naive / 'cache' / 'pip'))}",
                         "--output-file", output, *sources(tree)])
        where = []
        if isinstance(target, platforms.Pair):
            where = [arg for platform in dict.fromkeys(tag.platform for tag in target.tags() if tag.platform != "any")
                     for arg in ("--platform", platform)]
        commands.append([python, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--python-version",
                         platforms.python_of(target), *where, "--cache-dir", naive / "cache" / "pip",
                         "--dest", naive / name, "-r", output])
    return commands


def naive_contender(case, tree, work):
    """The naive recipe, primed once (untimed) like make freeze; each round of add and scale starts again from
    that state (scale without its caches), as make freeze's rounds do."""
    naive, saved = work / "naive", work / "naive-saved"
    fresh_dir(naive)
    commands = naive_commands(tree, naive)
    env = contender_env(fresh_dir(work / "home"))
    for argv in commands:
        run(argv, cwd=tree, env=env)
    remove(saved)
    shutil.copytree(naive, saved)

    def prepare(env):
        remove(naive)
        shutil.copytree(saved, naive)
        if case == "scale":
            remove(naive / "cache")
    return Contender("naive pip-tools (compile + download per target)", commands,
                     None if case == "nochange" else prepare)


def snapshot(tree, dest):
    fresh_dir(dest)
    copy_frozen(tree, dest)


def put_back(saved, tree):
    for name in FROZEN:
        remove(tree / name)
    copy_frozen(saved, tree)


def copy_frozen(source, dest):
    """What a freeze changes (FROZEN), copied from the tree `source` into `dest`."""
    for name in FROZEN:
        if (source / name).is_dir():
            shutil.copytree(source / name, dest / name)
        elif (source / name).exists():
            shutil.copy2(source / name, dest / name)


def timed(contender, work):
    import time

    env = contender_env(fresh_dir(work / "home"))
    if contender.prepare:
        contender.prepare(env)
    started = time.perf_counter()
    for argv in contender.commands:
        run(argv, cwd=work / "tree", env=env)
    contender.times.append(time.perf_counter() - started)


def freeze_case(case, uv, count):
    work = WORK / "freeze" / case
    say(f"==> case freeze-{case}: copying the project to {(work / 'tree').relative_to(ROOT)}")
    tree = copy_tree(work / "tree")
    env = contender_env(fresh_dir(work / "home"))
    say(f"==> case freeze-{case}: building its ve and priming its lock with one `make freeze` (untimed, needs the "
        "index)")
    run(["make", "freeze"], cwd=tree, env=env)
    saved = work / "saved"
    snapshot(tree, saved)
    added = {"add": f"{ADDED}\n", "scale": REFERENCE_IN.read_text()}.get(case)

    def prepare(env):
        put_back(saved, tree)
        if case == "scale":
            remove(tree / ".bootstrap")  # a first freeze: no cache of any kind
        with open(tree / "requirements.in", "a") as handle:
            handle.write(added)
    prepare = prepare if added else None
    ours = Contender("make freeze", [["make", "freeze"]], prepare)
    say(f"==> case freeze-{case}: priming the naive pip-tools recipe once (untimed, needs the index)")
    naive = naive_contender(case, tree, work)
    cold, warm = uv_contenders(uv, tree, work)
    if prepare:
        prepare(env)  # uv and the naive recipe lock the same requirements.in as the timed freeze
    for argv in warm.commands:
        run(argv, cwd=tree, env=env)  # warms uv's cache (untimed)
    contenders = [ours, cold, warm, naive]
    say(f"==> case freeze-{case}: {count} rounds of {', '.join(c.name for c in contenders)}")
    for number in range(1, count + 1):
        for contender in contenders:
            timed(contender, work)
        say(f"    freeze-{case} round {number}/{count}: "
            + "  ".join(f"{c.name} {c.times[-1]:.3f} s" for c in contenders))
    pins = count_pins(tree / "requirements.txt")
    return f"freeze-{case}", contenders, f"{pins} pins in the lock after the last round"


def run_freeze(args, uv):
    cases = [case.strip() for case in args.cases.split(",") if case.strip()] if args.cases else list(CASES)
    unknown = set(cases) - set(CASES)
    if unknown:
        raise ToolError(f"unknown freeze case(s) {', '.join(sorted(unknown))}; choose among {', '.join(CASES)}.")
    say(f"==> {load_note()}")
    results = [freeze_case(case, uv, args.rounds) for case in cases]
    lines = [f"uv: {uv}", f"at the end: {load_note()}", "",
             f"{'case':<15} {'contender':<48} {'min s':>8} {'median s':>9} {'max s':>8}  per round (s)"]
    machine = []
    for case, contenders, note in results:
        lines += [timing_row(case, 15, contender, 48) for contender in contenders]
        ours, cold, warm, naive = (statistics.median(c.times) for c in contenders)
        lines.append(f"{case:<15} ratio make freeze / uv cold {ours / cold:.2f}, / uv warm {ours / warm:.2f}, "
                     f"/ naive pip-tools {ours / naive:.2f}  ({note})")
        lines.append("")
        machine.append(f"case={case} median_s={ours:.3f} uv_cold_median_s={cold:.3f} uv_warm_median_s={warm:.3f} "
                       f"naive_median_s={naive:.3f} ratio_vs_uv_cold={ours / cold:.2f} "
                       f"ratio_vs_uv_warm={ours / warm:.2f} ratio_vs_naive={ours / naive:.2f} rounds={args.rounds}")
    report = "\n".join(lines + machine) + "\n"
    (WORK / "freeze-results.txt").write_text(report)
    say("")
    say(report.rstrip())
    say(f"(also in {(WORK / 'freeze-results.txt').relative_to(ROOT)})")
    return 0
