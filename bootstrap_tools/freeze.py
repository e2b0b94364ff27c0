"""`make freeze` and `make freeze-upgrade`: re-lock requirements.in and make requirements/ hold exactly its pins.

freeze-upgrade also moves every pin to the newest allowed, refreshes the seed wheel in virtualenv_support/ and
regenerates virtualenv.py from the newest virtualenv. The new state is built aside in .bootstrap/freeze/ and
verified before anything in the tree changes: a failed compile or download leaves requirements.txt,
requirements/, virtualenv_support/ and virtualenv.py exactly as they were, and nothing is pruned.

Trust on first use: a version already in the lock keeps the bytes it was locked with. When the index now
serves other bytes for an artifact requirements/ holds (its sha256 is no longer among the version's hashes),
freeze stops with one ERROR naming the file and both hashes, unless --accept-changed-hashes says the change
is known and wanted; new hashes beside the old ones, dropped hashes and accepted changes are all reported.
"""

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from bootstrap_build import journal, processes
from bootstrap_tools import (
    cooldown, lockfile, pins_file, platforms, report, requirements_in, sdists, seeds, supply, switch, targets,
    virtualenv_py as virtualenv_script,
)
from bootstrap_tools import inputs_digest, parallel
from bootstrap_tools.pythons import interpreter_for
from bootstrap_tools.run import ToolError, fail, hermetic_env, index_args, index_name, run_step
from bootstrap_tools.wheels import is_artifact_of, names_pin

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS_IN = ROOT / "requirements.in"
LOCK = ROOT / "requirements.txt"
# The dev set (optional): requirements-dev.in, locked into requirements-dev.txt with the runtime lock's pins held.
DEV_IN = ROOT / "requirements-dev.in"
DEV_LOCK = ROOT / "requirements-dev.txt"
WHEELHOUSE = ROOT / "requirements"
BUILD = ROOT / ".bootstrap"
REPORT = BUILD / "freeze-report.txt"


def step(message):
    print(f"==> {message}", flush=True)


def main(argv):
    args = parse_args(argv)
    processes.stop_on_signals()  # SIGTERM and SIGHUP unwind like Ctrl-C: staged files removed, one ERROR line
    started = time.monotonic()
    what = "make freeze-upgrade" if args.upgrade or args.upgrade_package else "make freeze"
    switched = False  # once the switch is done, an error or interrupt must not say that nothing changed
    try:
        with switch.freeze_lock(ROOT, what):
            # A switch a killed freeze left is completed first; the report then compares with the tree before it.
            switch.settle(ROOT)
            before_lock, before_files, old_hash_lines, note = switch.baseline(ROOT)
            # The dev lock's side of that baseline: after an interrupted switch, the dev lock before it.
            report_dev = switch.baseline_dev(ROOT)
            check_preconditions(args)
            check_retarget(args, before_lock)
            check_packages(args.upgrade_package, before_lock)
            # The targets of the lock: each Python, or each (platform, Python) pair when platforms are declared.
            args.pairs = platforms.pairs(ROOT, args.targets, args.platforms)
            if no_change(args, before_lock, note, started):
                return 0
            staging = fresh_dir(BUILD / "freeze")
            start_cooldown(args, before_lock, staging)
            env = hermetic_env(staging / "home", {"PIP_CACHE_DIR": str(BUILD / "cache" / "pip")})
            previous_text = LOCK.read_text(encoding="utf-8") if LOCK.exists() else ""
            before_dev = DEV_LOCK.read_text(encoding="utf-8") if DEV_LOCK.exists() else ""
            no_binary = set()  # names with no wheel, resolved from sdists (bootstrap_tools/sdists.py)
            lock_text, splits = compile_lock(staging, env, args, previous_text, no_binary)
            if dev_unaffected(args, previous_text, before_dev, lock_text, no_binary):
                dev_text = before_dev
            else:
                # A first dev lock starts from the runtime lock it was split from: what moves to the dev set keeps
                # its pin.
                dev_text = compile_dev(staging, env, args, before_dev or previous_text, lock_text, no_binary)
            pins = both_sets(lock_text, dev_text)
            previous_pins = sdists.without_built_hashes(ROOT, both_sets(previous_text, before_dev, strict=False))
            hash_lines = trust_on_first_use(previous_pins, pins, args.accept_changed_hashes)
            built = sdists.prepare(ROOT, pins, no_binary, args.targets, staging, env, args.index_url,
                                   args.upgrade or tuple(args.upgrade_package))
            hash_lines += trust_on_first_use(sdists.build_pins_of(ROOT), built.build_pins, args.accept_changed_hashes)
            lock_text = sdists.add_hashes(lock_text, built.hashes)
            dev_text = dev_text and sdists.add_hashes(dev_text, built.hashes)
            pins = both_sets(lock_text, dev_text)
            staged = fetch(pins, staging, env, args, built.candidates())
            built.add_to(staged, pins)
            verify(pins, staged, args.pairs)
            if built.build_pins:
                verify(built.build_pins, staged, args.targets)
            lock_text = inputs_digest.stamp(ROOT, args, lock_text, linux_floor(args), dev_text)
            seed = virtualenv_py = None
            if args.upgrade:
                seed = stage_seed(pins, staged, staging, env, args.index_url)
                virtualenv_py = stage_virtualenv_py(staging, env, args.index_url, seed)
                hash_lines += trust_tools_on_first_use(seed, virtualenv_py[0], args.accept_changed_hashes)
            hash_lines = old_hash_lines + hash_lines
            # The build lock and manifest switch with the lock: a kill leaves the three of one freeze, or none.
            apply(staging, lock_text, pins, staged, seed, virtualenv_py, (before_lock, before_files, report_dev),
                  hash_lines, sdists.switch_moves(ROOT, built, staging), dev_text)
            switched = True
            # `make adopt`'s first freeze compares with the project's pins before it, not the lock it started from.
            report_lock, report_files = (baseline(args.report_baseline) if args.report_baseline
                                         else (before_lock, before_files))
            report_dev = before_dev if args.report_baseline else report_dev
            text = report.render(report_lock, lock_text, report_files, report.snapshot(ROOT), hash_lines,
                                 built.report, note, splits,
                                 dev=(report_dev, dev_text) if dev_text or report_dev else None)
            text += "".join(f"{line}\n" for line in platforms_report(pins, args.pairs, linux_floor(args)))
            text += supply.after_freeze(ROOT, lock_text, report_lock, args.index_url, args.index_name,
                                        args.upgrade or tuple(args.upgrade_package), write_file)
            REPORT.write_text(text, encoding="utf-8")
            switch.forget_baseline(ROOT)
            shutil.rmtree(staging)
    except ToolError as exc:
        if switched:
            fail(f"{exc} {AFTER_SWITCH}")
        fail(f"{exc} Nothing was changed: the lock, requirements/, virtualenv_support/ and virtualenv.py "
             "are as they were.")
    except switch.Incomplete as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        if journal.switch_pending(str(ROOT)):
            fail(f"`{what}` was interrupted during its switch. Run `make check` (or make freeze, make ve): it "
                 f"completes the switch from {journal.SWITCH_JOURNAL}, and the next freeze reports against the "
                 "tree before it.")
        if switched:
            fail(f"`{what}` was interrupted after its switch. {AFTER_SWITCH}")
        fail(f"`{what}` was interrupted before its switch. Nothing was changed: run it again.")
    step(f"done: {len(pins)} pins, {len(set().union(*staged.values()))} artifacts, {time.monotonic() - started:.1f} s "
         f"(report also in {REPORT.relative_to(ROOT)})")
    print(text, end="")
    return 0


def no_change(args, lock_text, note, started):
    """`make freeze` when nothing it resolves from changed since the lock was made (the lock's `# inputs sha256:`,
    bootstrap_tools/inputs_digest.py): the tree is checked against the lock, and no pair is resolved again."""
    why, text = inputs_digest.unchanged(ROOT, args, lock_text, linux_floor(args), note)
    if text is None:
        if not (args.upgrade or args.upgrade_package):
            step(f"resolving every target: {why} since the lock was made" if why == "inputs changed"
                 else f"resolving every target: {why}")
        return False
    dev = inputs_digest.dev_lock_text(ROOT)
    pins = both_sets(lock_text, dev, strict=False)
    files = sorted(path for path in WHEELHOUSE.glob("*") if path.is_file() and not path.name.startswith("."))
    step(f"inputs unchanged since the lock was made (its `{inputs_digest.LINE}` line: requirements.in"
         f"{', requirements-dev.in and its lock' if dev is not None else ''}, CONSTRAINTS, TARGET_PYTHONS, "
         "TARGET_PLATFORMS and their descriptors, GLIBC_FLOOR, RESOLUTION, INDEX_NAME, the lock): resolution "
         f"skipped; {len(files)} artifacts verified against the lock")
    text += "".join(f"{line}\n" for line in platforms_report(pins, args.pairs, linux_floor(args)))
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text, encoding="utf-8")
    step(f"done: no change: {len(pins)} pins, {len(files)} artifacts, {time.monotonic() - started:.1f} s "
         f"(report also in {REPORT.relative_to(ROOT)})")
    print(text, end="")
    return True


AFTER_SWITCH = ("The switch was done: the new requirements.txt, requirements.pins, requirements/, virtualenv_support/ "
                "and virtualenv.py are in place, but what follows it (the build lock of sdists, the report, the "
                "supply-chain records) may be missing. Run `make check`: it names what is missing; `make freeze` "
                "writes it again.")


def check_packages(names, lock_text):
    """PACKAGES must name packages the lock pins, checked before any resolution: a typo would otherwise re-lock
    everything and report no change."""
    import difflib

    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    locked = sorted({pin.name for pin in lockfile.parse(lock_text)[0]})
    for name in names:
        try:
            requirement = Requirement(name)
        except InvalidRequirement:
            requirement = None
        if requirement is None or requirement.url:
            raise ToolError(f"PACKAGES=\"{' '.join(names)}\" holds `{name}`, which is not a package name. Name the "
                            "packages to upgrade, e.g. `make freeze-upgrade PACKAGES=\"django celery\"`.")
        if str(requirement) != requirement.name:
            raise ToolError(f"PACKAGES takes package names, not requirements: `{name}`. Use "
                            f"`make freeze-upgrade PACKAGES={requirement.name}` (it takes the newest release "
                            "requirements.in allows); to pin a version, write it in requirements.in and run "
                            "`make freeze`.")
        if canonicalize_name(requirement.name) not in locked:
            close = difflib.get_close_matches(canonicalize_name(requirement.name), locked, n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ToolError(f"PACKAGES names `{name}`, which requirements.txt does not pin, so an upgrade could not "
                            f"move it.{hint} To add a package, write it in requirements.in and run `make freeze`.")


def check_retarget(args, lock_text):
    """A freeze keeps the lock's targets and platforms unless the change is asked for (RETARGET=1): a setting lost
    on the way (a Makefile without the line adopt wrote, another shell) must not widen or narrow the lock."""
    if args.retarget or not lock_text:
        return
    changed = []
    for setting, wanted, locked in (("TARGET_PYTHONS", args.targets, lockfile.targets(lock_text)),
                                    ("TARGET_PLATFORMS", args.platforms, lockfile.platforms(lock_text))):
        header = "targets" if setting == "TARGET_PYTHONS" else "platforms"
        if setting == "TARGET_PYTHONS" and not locked:
            return  # a lock from before the header, or not ours: nothing to keep
        if list(wanted) != list(locked):
            changed.append(f"{setting}=\"{' '.join(wanted)}\" while the lock's `# {header}:` line says "
                           f"\"{' '.join(locked)}\"")
    if changed:
        raise ToolError(f"{'; '.join(changed)}: this freeze would change what the lock fits. Keep the lock's: set "
                        "them so in the Makefile (before `include bootstrap.mk`); or change it on purpose: "
                        "`make freeze RETARGET=1` (the report shows the change).")


def check_preconditions(args):
    """What the convention refuses before any work: unsupported requirements.in lines, a wheelhouse holding
    other things than files, and targets without the Python the tools run on."""
    problems = requirements_in.problems(REQUIREMENTS_IN)
    if problems:
        if len(problems) > 1:
            print("".join(f"  - {problem}\n" for problem in problems), end="", file=sys.stderr)
        raise ToolError(problems[0] + (f" ({len(problems) - 1} more, listed above.)" if len(problems) > 1 else ""))
    for path in switch.irregular_entries(WHEELHOUSE):
        raise ToolError(f"{path.relative_to(ROOT)} is a {switch.kind(path)}; requirements/ holds only the lock's "
                        "artifacts (files): move it out of requirements/ and run `make freeze` again.")
    for setting, names in (("TARGET_PYTHONS", args.targets), ("TARGET_PLATFORMS", args.platforms)):
        twice = platforms.duplicates(names)
        if twice:
            raise ToolError(f"{setting}=\"{' '.join(names)}\" names {' '.join(twice)} more than once, and a lock "
                            f"counts each name once: name each once in {setting} (the Makefile, or the command line).")
    platforms.glibc_floor(args.glibc_floor)
    # A hand-edited descriptor would lock for a platform that is not the one its name says.
    for problem in platforms.descriptor_problems(ROOT, args.platforms, args.glibc_floor):
        raise ToolError(f"{problem}.")


def start_cooldown(args, before_lock, staging):
    """Fix this run's cooling-off cutoff once, so every step that picks versions (pip-compile of the lock and of
    the build lock, the seed pip, virtualenv.py's pins) agrees on it: always now minus COOLDOWN_DAYS.

    A version the lock already holds whose files were uploaded after the cutoff (locked with COOLDOWN_DAYS=0, or
    before the cooling-off existed) must not move back because of it: its files in requirements/ are offered to
    pip-compile from a directory (cooldown.keep), which keeps the pin as it keeps every other. The cutoff itself
    never moves, so nothing else uploaded after it is taken.
    """
    cutoff = cooldown.fix(cooldown.cutoff_for(args.cooldown_days))
    cooldown.keep(None)
    if not cutoff:
        return None
    step(f"cooling-off: only releases uploaded at least {args.cooldown_days} day(s) ago, before {cutoff} "
         "(COOLDOWN_DAYS)")
    pins = lockfile.parse(before_lock)[0] + sdists.build_pins_of(ROOT)
    newer = supply.locked_after(ROOT, pins, args.index_url, cutoff)
    if newer:
        kept = fresh_dir(staging / "kept")
        for path, _, _ in newer:
            try:
                os.link(path, kept / path.name)
            except OSError:
                shutil.copyfile(path, kept / path.name)
        cooldown.keep(kept)
        held = sorted({f"{pin.name} {pin.version}" for _, pin, _ in newer})
        step(f"cooling-off: the lock holds {len(newer)} file(s) uploaded after the cutoff ({', '.join(held)}): "
             "offered to pip-compile from requirements/, so those pins stay; the cutoff does not move")
    return cutoff


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upgrade", action="store_true", help="upgrade every pin to the newest allowed")
    parser.add_argument("--retarget", action="store_true",
                        help="let TARGET_PYTHONS and TARGET_PLATFORMS differ from the lock's header (RETARGET=1)")
    parser.add_argument("--index-url", default="", help="package index to use (default: pip's own default)")
    parser.add_argument("--targets", default="3.10 3.11 3.12 3.13", type=str.split,
                        help="the Python versions (X.Y) the lock must fit, space-separated")
    parser.add_argument("--platforms", default="", type=str.split,
                        help="the declared platforms (descriptors in platforms/), space-separated; empty: this one")
    parser.add_argument("--resolution", choices=targets.unify.STRATEGIES, default="fewest",
                        help="fewest: one version of each package for every target where one fits (default); "
                             "newest: each target its own newest")
    parser.add_argument("--constraint", default="", help="a constraints file pip-compile must satisfy")
    parser.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                        help="upgrade only this package and what it needs (repeatable); the seed and virtualenv.py "
                             "stay as they are")
    parser.add_argument("--cooldown-days", type=cooldown.days_arg, default=7, metavar="DAYS",
                        help="take only releases uploaded at least DAYS days ago (0: no cooling-off)")
    parser.add_argument("--glibc-floor", default=platforms.DEFAULT_GLIBC_FLOOR, metavar="X.Y",
                        help="the oldest glibc of every declared Linux platform's hosts (GLIBC_FLOOR)")
    parser.add_argument("--index-name", default="",
                        help="the index's name in requirements-provenance.json (default: `default` for pip's own)")
    parser.add_argument("--accept-changed-hashes", action="store_true",
                        help="accept other bytes for a version already in the lock (reported); never by default")
    parser.add_argument("--report-baseline", default="", metavar="LOCK",
                        help="compare the report's pins with this lock, and its artifacts with none (make adopt: the "
                             "project's pins before it), instead of with the lock and files this freeze replaces")
    parser.add_argument("--jobs", type=int, default=parallel.default_jobs(), metavar="N",
                        help="resolve up to N (platform, Python) pairs at once (FREEZE_JOBS; default: the cores, at "
                             f"most {parallel.MAX_JOBS}; 1: one after another); the lock is the same for any N")
    return parser.parse_args(argv)


def baseline(path):
    """(lock text, files) the report compares with: the lock at `path` (the pins a project had before `make adopt`),
    and no file (requirements/ and the seed were not the project's before)."""
    return Path(path).read_text(encoding="utf-8"), {}


def fresh_dir(path):
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def compile_lock(staging, env, args, previous_text, no_binary=None, source=REQUIREMENTS_IN, fixed=()):
    """pip-compile `source` under each target Python, keeping the current pins unless upgrading; merge into one
    lock. `fixed`: constraint files that always hold (the runtime pins, for the dev set).

    Returns (lock text, splits): splits as targets.compile_all gives them, for the report."""
    missing = [target for target in args.targets
               if interpreter_for(target, staging / "home") is None]
    if missing:
        raise ToolError(f"no CPython {' '.join(missing)} found here (python3.X on PATH or under pyenv), and the lock "
                        "must fit every target: install it, or drop it from TARGET_PYTHONS.")
    upgrade = args.upgrade or tuple(args.upgrade_package)
    floor = linux_floor(args)
    on = f" on {' '.join(args.platforms)}" if args.platforms else ""
    on += f" (Linux: glibc {floor} and newer, GLIBC_FLOOR)" if floor else ""
    step(f"locking {source.name} with pip-compile for Python {' '.join(args.targets)}{on}, against "
         f"{index_name(args.index_url)}"
         + (" (upgrading every pin)" if args.upgrade else f" (upgrading {' '.join(upgrade)} and what they need)"
            if upgrade else ""))
    lock_pins = lockfile.parse(previous_text)[0]
    # Pins are kept only for the targets they were resolved for: seeding a new target with another
    # Python's pins turns them into constraints that pip-compile satisfies with ancient releases.
    known = set(lockfile.targets(previous_text))
    previous = {target: [pin for pin in lock_pins if pin.applies_to(target)]
                for target in args.pairs if platforms.python_of(target) in known}
    constraints = [constraint_argument(args.constraint)] if args.constraint else []
    offered = {}
    if no_binary is not None and not args.upgrade:  # an upgrade asks again: a new release may have wheels
        # A kept sdist's metadata comes from requirements/ (hash-checked), never from running what the index
        # serves now; a name being upgraded is resolved anew from the index, as on first use.
        locked = sdists.known_names(ROOT, lock_pins)
        moving = {canonicalize_name(name) for name in args.upgrade_package}
        no_binary |= locked & moving
        offered = sdists.offer_locked(ROOT, lock_pins, locked - moving, staging)
    body, splits = targets.compile_all(ROOT, args.pairs, staging, env, upgrade, args.index_url, previous,
                                       constraints, no_binary, args.resolution, jobs=args.jobs,
                                       source=source.name, fixed=[str(path) for path in fixed])
    # The held runtime pins are a file in the build area: the dev lock's header names requirements.txt instead.
    body = without_machine_constraints(body, constraints + [str(path) for path in fixed])
    if offered:
        # pip-compile hashed the metadata-only wheel; the lock keeps the sdist's hashes it had.
        body = sdists.add_hashes(body, offered, replace=True)
        no_binary |= {name for name, _ in offered}
    header = (lockfile.DEV_HEADER if fixed else lockfile.HEADER).format(
        targets=" ".join(args.targets), requirements_in=lockfile.sha256(source))
    if args.platforms:
        header += f"# platforms: {' '.join(args.platforms)}\n"
    if floor:
        header += f"{lockfile.GLIBC_FLOOR_LINE} {floor}\n"
    return header + body, splits


def compile_dev(staging, env, args, previous_dev, lock_text, no_binary):
    """The dev set's lock text (requirements-dev.in, with every runtime pin held as a constraint for every pair),
    or None when the project has no dev set. Like pip-tools' layered files: the dev lock repeats the runtime pins
    it needs, at the same versions, so each file installs on its own and the two together agree."""
    if not DEV_IN.exists():
        return None
    held = staging / "runtime-pins.txt"  # name==version ; marker: what the runtime lock holds, without hashes
    held.write_text("".join(f"{pin.line}\n" for pin in lockfile.parse(lock_text)[0]), encoding="utf-8")
    text, _ = compile_lock(staging, env, args, previous_dev, no_binary, source=DEV_IN, fixed=[held])
    return text


def dev_unaffected(args, previous_text, before_dev, lock_text, no_binary):
    """Whether the dev set would resolve as it did (its lock is kept, and said so): not an upgrade, its own inputs
    unchanged since the lock was made (inputs_digest.dev_inputs_unchanged), and no runtime pin that moved (added,
    removed, another version or marker) or that is now resolved from its sdist is a name of the dev lock. A runtime
    pin the dev set never reaches is a constraint pip-compile never consults: holding another one changes nothing."""
    if args.upgrade or args.upgrade_package or not before_dev:
        return False
    if not inputs_digest.dev_inputs_unchanged(ROOT, args, previous_text, linux_floor(args)):
        return False
    old, new = ({(canonicalize_name(pin.name), pin.version, pin.marker) for pin in lockfile.parse(text)[0]}
                for text in (previous_text, lock_text))
    moved = {name for name, _, _ in old ^ new} | {canonicalize_name(name) for name in no_binary}
    dev_names = {canonicalize_name(pin.name) for pin in lockfile.parse(before_dev)[0]}
    if moved & dev_names:
        return False
    step(f"{DEV_LOCK.name} kept: requirements-dev.in and the dev set's other inputs are unchanged, and none of the "
         f"{len(moved)} runtime pin(s) that moved is one it holds")
    return True


def both_sets(lock_text, dev_text, strict=True):
    """The pins of the runtime lock, then those of the dev lock it does not already hold (same line, same hashes):
    every artifact requirements/ must keep."""
    pins = parse_lock(lock_text) if strict else lockfile.parse(lock_text)[0]
    if dev_text:
        dev = parse_lock(dev_text) if strict else lockfile.parse(dev_text)[0]
        pins = pins + [pin for pin in dev if pin not in pins]
    return pins


def constraint_argument(path):
    """The constraints file as pip-compile (run in the checkout) is given it, and names it in the lock's `# via`
    notes: relative to the checkout when inside it, else its absolute path."""
    resolved = Path(path).resolve()
    return resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(resolved)


def without_machine_constraints(body, constraints):
    """The lock body without the `# via -c <file>` notes of a constraints file outside the checkout or in its build
    area (`make adopt`'s, deleted after it): their path is this machine's, and the lock is committed."""
    drop = {f"-c {path}" for path in constraints
            if Path(path).is_absolute() or (ROOT / path).resolve().is_relative_to(BUILD)}
    if not drop:
        return body
    lines = [line for line in body.splitlines(keepends=True)
             if not (line.lstrip().startswith("#") and line.strip()[1:].strip().removeprefix("via ") in drop)]
    out = []
    for index, line in enumerate(lines):
        following = lines[index + 1:index + 3] + ["", ""]
        if line.strip() == "# via" and following[0].lstrip().startswith("#   ") \
                and not following[1].lstrip().startswith("#   "):
            out.append(line.rstrip("\n") + " " + following[0].strip()[1:].strip() + "\n")  # one entry: one line
            lines[index + 1] = ""
        elif line:
            out.append(line)
    return "".join(out)


def linux_floor(args):
    """The glibc floor the lock states: GLIBC_FLOOR when a declared platform is Linux, else "" (none applies)."""
    return args.glibc_floor if any(platforms.is_linux(pair.descriptor) for pair in args.pairs
                                   if isinstance(pair, platforms.Pair)) else ""


def parse_lock(lock_text):
    pins, problems = lockfile.parse(lock_text)
    if problems:
        raise ToolError(f"pip-compile wrote an unusable line `{problems[0].line}`: {problems[0].message}.")
    return pins


def hashes_by_version(pins):
    """{(name, Version): (a pin of it, {every sha256 the lock allows for it})}."""
    found = {}
    for pin in pins:
        entry = found.setdefault((pin.name, Version(pin.version)), (pin, set()))
        entry[1].update(pin.hashes)
    return found


def trust_on_first_use(previous_pins, pins, accept_changed):
    """Compare the new lock's hashes with the old one's for every version both pin; the report's lines.

    Raises ToolError (one line: file, old and new hashes) when the index no longer serves the bytes of an
    artifact requirements/ holds for an already locked version, unless `accept_changed`.
    """
    old, new = hashes_by_version(previous_pins), hashes_by_version(pins)
    held = {path: artifact_digest(path) for path in sorted(WHEELHOUSE.glob("*")) if path.is_file()}
    lines, changed = [], []
    for key in sorted(old.keys() & new.keys()):
        (pin, old_hashes), (_, new_hashes) = old[key], new[key]
        label = f"{pin.name} {pin.version}"
        ours = {digest: path for path, digest in held.items() if is_artifact_of(path.name, digest, pin)}
        added = sorted(new_hashes - old_hashes)
        for digest in sorted(old_hashes - new_hashes):
            if digest in ours:
                changed.append((label, ours[digest], digest, added))
            else:
                lines.append(("dropped", f"{label} sha256:{digest} (the index no longer offers it; "
                                         "no file in requirements/ has it)"))
        lines += [("new hash", f"{label} sha256:{digest}") for digest in added]
    changed = [(label, path.relative_to(ROOT), "the lock", digest, added) for label, path, digest, added in changed]
    return lines + changed_bytes(changed, accept_changed)


def changed_bytes(changed, accept_changed, upgrade=False):
    """The report's CHANGED lines for [(label, file, where it is pinned, old sha256, [new sha256])].

    Raises ToolError naming the first unless `accept_changed`: other bytes for a version already pinned are
    taken only when the maintainer says so, and then reported."""
    lines = [("CHANGED", f"{label} {path} sha256:{digest} -> {' '.join('sha256:' + h for h in added) or 'nothing'} "
                         "(accepted: --accept-changed-hashes)") for label, path, _, digest, added in changed]
    if changed and not accept_changed:
        label, path, where, digest, added = changed[0]
        more = f" (and {len(changed) - 1} more artifact(s))" if len(changed) > 1 else ""
        target = "make freeze-upgrade" if upgrade else "make freeze"
        raise ToolError(f"the index now serves other bytes for {label.replace(' ', '==')}, already locked: "
                        f"{path} has sha256 {digest} in {where}, the index now offers "
                        f"{' '.join('sha256:' + h for h in added) or 'no file with that hash'}{more}. An artifact "
                        "of a locked version must never change: find out why (a re-uploaded or compromised "
                        f"file?), and only if the new bytes are legitimate run `{target} "
                        "ACCEPT_CHANGED_HASHES=1` (bootstrap_tools.freeze --accept-changed-hashes), which reports it.")
    return lines


def trust_tools_on_first_use(seed, virtualenv_lock, accept_changed):
    """Trust on first use for the pinned bytes outside the lock: virtualenv.py's wheels (bootstrap_tools/
    virtualenv.txt) and the seed in virtualenv_support/ (SHA256SUMS). The report's lines, as trust_on_first_use."""
    old_lock = ROOT / "bootstrap_tools" / "virtualenv.txt"
    old, new = {}, {}
    for pins, path in ((old, old_lock), (new, virtualenv_lock)):
        for pin in virtualenv_script.read_lock(path)[1] if path.is_file() else []:
            pins.setdefault((pin.name, Version(pin.version)), (pin, set()))[1].add(pin.sha256)
    changed = []
    for key in sorted(old.keys() & new.keys()):
        (pin, old_hashes), (_, new_hashes) = old[key], new[key]
        for digest in sorted(old_hashes - new_hashes):
            changed.append((f"{pin.name} {pin.version}", "bootstrap_tools/virtualenv.txt", "virtualenv.py's pins",
                            digest, sorted(new_hashes - old_hashes)))
    recorded, _ = seeds.read_sums(seeds.SEEDS / "SHA256SUMS")
    if seed and recorded.get(seed.name) not in (None, lockfile.sha256(seed)):
        label = " ".join(str(part) for part in parse_wheel_filename(seed.name)[:2])
        changed.append((label, f"virtualenv_support/{seed.name}", "virtualenv_support/SHA256SUMS",
                        recorded[seed.name], [lockfile.sha256(seed)]))
    return changed_bytes(changed, accept_changed, upgrade=True)


def fetch(pins, staging, env, args, extra=None):
    """{pin: [artifacts]}: for every target a pin applies to, one verified artifact that fits it.

    Artifacts already in requirements/ (and `extra`, {path: sha256} of wheels built from sdists) are reused
    when their hash fits; the rest are downloaded.
    """
    existing = {path: artifact_digest(path) for path in sorted(WHEELHOUSE.glob("*")) if path.is_file()}
    existing.update(extra or {})
    return targets.fetch_for_targets(pins, args.pairs, existing, staging / "downloads", env, args.index_url,
                                     jobs=args.jobs, digest=artifact_digest)


DIGESTS = {}  # path -> ((size, mtime, inode), sha256): the freeze's memo of what it hashed


def artifact_digest(path):
    """The sha256 of `path`, read once per freeze: trust on first use, fetch and verify each look at every artifact,
    and a large wheel costs its size each time. A file changed since (its size, mtime or inode) is read again."""
    stat = path.stat()
    key = (stat.st_size, stat.st_mtime_ns, stat.st_ino)
    known = DIGESTS.get(path)
    if known is None or known[0] != key:
        known = DIGESTS[path] = (key, lockfile.sha256(path))
    return known[1]


def platforms_report(pins, pairs, floor=""):
    """The report's lines per declared platform: what only it installs, and the bytes only it needs."""
    files = {path: path.stat().st_size for path in sorted(WHEELHOUSE.glob("*")) if path.is_file()}
    digests = {}

    def fits(path, pin, target):
        if path not in digests:
            digests[path] = lockfile.sha256(path)
        return is_artifact_of(path.name, digests[path], pin) and platforms.unfit(path, target) is None
    lines = platforms.report_lines(pins, pairs, files, fits)
    if lines and floor:
        lines.append(f"  glibc floor (GLIBC_FLOOR): {floor}: every Linux wheel in the lock runs on glibc {floor} and "
                     "newer")
    return lines


def verify(pins, staged, target_versions):
    """Each staged artifact matches its pin's hashes; each target a pin applies to has one that fits it."""
    step(f"verifying {sum(map(len, staged.values()))} artifacts for {platforms.describe_targets(target_versions)}")
    for pin in pins:
        for path in staged[pin]:
            if not is_artifact_of(path.name, artifact_digest(path), pin):
                raise ToolError(f"{path.name} is not an artifact of {pin} (its name, version or sha256 differ).")
        for target in filter(pin.applies_to, target_versions):
            reasons = [platforms.unfit(path, target) for path in staged[pin]]
            if all(reasons):
                raise ToolError(f"no artifact of {pin} fits Python {target}"
                                + (f": {reasons[0]}." if reasons else "."))


def stage_seed(pins, staged, staging, env, index_url):
    """The seed is the lock's own pip wheel when the lock pins pip (one file, stored once by git)."""
    step("refreshing the seed wheel for virtualenv_support/")
    locked_pip = [path for pin in pins if pin.name == "pip" for path in staged[pin]
                  if names_pin(path.name, pin)]
    if locked_pip:
        return locked_pip[0]
    return seeds.download(staging / "seeds", env, "", index_url)


def stage_virtualenv_py(staging, env, index_url, pip_wheel):
    """Re-lock virtualenv and its dependencies per Python, then build virtualenv.py, all inside staging.

    Each Python resolves with `pip_wheel` (the verified seed pip), not whatever pip it came with."""
    step("regenerating virtualenv.py from the newest virtualenv")
    lock_file, output = staging / "virtualenv.txt", staging / "virtualenv.py"
    # The options belong to each subcommand: `bootstrap_tools.virtualenv_py lock --lock-file ...`, not before it.
    common = ["--lock-file", lock_file, *index_args(index_url)]
    tool = [sys.executable, "-I", ROOT / "bootstrap_tools" / "virtualenv_py.py"]  # -I: no cwd, no user site, no PYTHON*
    fix = "fix the cause and run `make freeze-upgrade` again."
    run_step([*tool, "lock", *common, "--pip", pip_wheel], "locking virtualenv (bootstrap_tools.virtualenv_py lock)",
             fix, cwd=ROOT, env=env)
    run_step([*tool, "build", *common, "--output", output],
             "building virtualenv.py (bootstrap_tools.virtualenv_py build)", fix, cwd=ROOT, env=env)
    return lock_file, output


def write_file(target, text):
    """Replace `target` by `text` so that a reader sees the old file or the new one, never half of one."""
    partial = target.with_name(f".{target.name}.part")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, target)


def apply(staging, lock_text, pins, staged, seed, virtualenv_py, before, hash_lines, build_moves=((), ()),
          dev_text=None):
    """Switch to the new lock, artifacts and seeds: journaled, so the next command completes a killed switch.

    New artifacts first, the seed and virtualenv.py next, the build lock and manifest (`build_moves`, from
    sdists.switch_moves), the lock and its pins after them, and only then the deletions: unreferenced artifacts,
    the old seed, a build lock and manifest no longer needed.
    """
    keep = {path.name for paths in staged.values() for path in paths}
    puts = [(path, Path("requirements") / path.name) for path in sorted({p for ps in staged.values() for p in ps})
            if path.parent != WHEELHOUSE]
    deletes = []
    if seed:
        sums = staging / "SHA256SUMS"
        sums.write_text(seeds.SUMS_HEADER + f"{lockfile.sha256(seed)}  {seed.name}\n", encoding="utf-8")
        puts += [(seed, Path("virtualenv_support") / seed.name), (sums, Path("virtualenv_support") / "SHA256SUMS")]
        deletes += [Path("virtualenv_support") / path.name for path in sorted(seeds.SEEDS.iterdir())
                    if path.name not in (seed.name, "SHA256SUMS") and not path.name.startswith(".")]
    if virtualenv_py:
        puts += [(virtualenv_py[0], Path("bootstrap_tools") / "virtualenv.txt"),
                 (virtualenv_py[1], Path("virtualenv.py"))]
    puts += list(build_moves[0])
    deletes += list(build_moves[1])
    (staging / "requirements.txt").write_text(lock_text, encoding="utf-8")
    (staging / pins_file.NAME).write_text(pins_file.render(pins), encoding="utf-8")
    puts += [(staging / "requirements.txt", Path("requirements.txt")), (staging / pins_file.NAME, Path(pins_file.NAME))]
    if dev_text:
        (staging / DEV_LOCK.name).write_text(dev_text, encoding="utf-8")
        puts.append((staging / DEV_LOCK.name, Path(DEV_LOCK.name)))
    elif DEV_LOCK.exists():  # requirements-dev.in was removed: so is its lock
        deletes.append(Path(DEV_LOCK.name))
    # A hidden file is never an artifact (pip's --find-links skips none, but no freeze writes one): not ours to prune.
    # A first freeze (a project just adopted) has no requirements/ yet: the switch creates it.
    deletes += [Path("requirements") / path.name for path in sorted(WHEELHOUSE.glob("*"))
                if path.name not in keep and not path.name.startswith(".")]
    switch.switch(ROOT, puts, deletes, before, hash_lines)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
