"""`make check`: offline, fast consistency check of everything the bootstrap trusts; lists every problem.

Checked: each lock line is pinned with hashes; each pin has an artifact in requirements/ with its name,
version and a sha256 the lock allows, whose wheel tags and Requires-Python fit every target (pip's rules);
requirements/ holds nothing else (a stray is told apart from the artifact it copies, and the advice never
deletes a file a pin needs); requirements.pins and requirements.in agree with the lock; virtualenv_support/
matches SHA256SUMS, its pip wheel is the lock's pip (name, version, hash) and fits every target; and
virtualenv.py is exactly what bootstrap_tools/virtualenv_py.py renders from bootstrap_tools/virtualenv.txt's
pins and the wheels in its own payload (header, launcher and payload).
"""

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bootstrap_build import checks, journal
from bootstrap_tools import (
    declared, lockfile, pins_file, platforms, provenance, pylock, requirements_in, sdists, switch, unify, virtualenv_py,
)
from bootstrap_tools.seeds import read_sums
from bootstrap_tools.run import ToolError, hermetic_env, run
from bootstrap_tools.wheels import is_artifact_of, name_version, names_pin, unfit_reason

ROOT = Path(__file__).resolve().parent.parent
FREEZE = "run `make freeze`"
RESTORE = "restore it with `git checkout -- {path}` or run `make freeze`"
LFS_POINTER = " is a Git LFS pointer, not the file"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default=str(ROOT), help="the checkout to check (default: this one)")
    # The Makefile's settings (bootstrap.mk passes them): the lock's header must say the same. Not given: not
    # compared (the lock is checked against itself).
    parser.add_argument("--targets", type=str.split, help="TARGET_PYTHONS")
    parser.add_argument("--platforms", type=str.split, help="TARGET_PLATFORMS")
    parser.add_argument("--glibc-floor", help="GLIBC_FLOOR")
    return parser.parse_args(argv)


def main(argv):
    started = time.monotonic()
    args = parse_args(argv)
    root = Path(args.root)
    # A switch a killed `make freeze` left is completed first (and says so); the switch lock keeps a running one
    # from moving files while they are checked.
    try:
        with journal.settled_inputs(str(root)):
            problems = find_problems(root, args)
    except KeyboardInterrupt:
        print("ERROR: make check was interrupted; run it again (it completes an interrupted switch first).",
              file=sys.stderr)
        return 1
    for problem in problems:
        print(f"  - {problem}")
    for warning in unify.direct_split_warnings(root):
        print(f"WARNING: {warning}")
    drift, notes = declared.warnings(root)  # pyproject.toml and requirements.in naming different packages
    print("".join(f"WARNING: {warning}\n" for warning in drift) + "".join(f"==> {note}\n" for note in notes), end="")
    seconds = time.monotonic() - started
    if problems and all(problem.endswith(LFS_POINTER) for problem in problems):
        print(f"ERROR: {lfs_summary(root, len(problems))}", file=sys.stderr)
        return 1
    if problems:
        print(f"ERROR: make check found {len(problems)} problem(s), listed above with the command that fixes each.",
              file=sys.stderr)
        return 1
    print(f"==> check: lock, requirements/, virtualenv_support/ and virtualenv.py agree{checked_targets(root)} "
          f"({seconds:.2f} s)")
    return 0


def checked_targets(root):
    """` for Python 3.10 3.11 on linux-x86_64 macos-arm64 (4 pairs)` when the lock declares platforms, else ``."""
    try:
        text = (root / "requirements.txt").read_text(encoding="utf-8")
        names = lockfile.platforms(text)
        return f" for {platforms.describe_targets(platforms.pairs(root, lockfile.targets(text), names))}" if names \
            else ""
    except (OSError, UnicodeDecodeError, ToolError):
        return ""


def find_problems(root, settings=None):
    """Every problem, one line each with its fix; `settings` (targets, platforms, glibc_floor: the Makefile's,
    each None when not given) are compared with the lock's header."""
    lock_path = root / "requirements.txt"
    if not lock_path.exists():
        return [f"requirements.txt is missing: {FREEZE}"]
    pointers = lfs_pointer_problems(root)
    if pointers:  # every artifact check would fail on the pointers; the one fix is fetching the real files
        return pointers
    text, problem = requirements_in.decoded(lock_path.read_bytes(), "requirements.txt")
    if problem:
        return [f"{problem}, or restore it with `git checkout -- requirements.txt` (never edit the lock)"]
    pins, bad_lines = lockfile.parse(text)
    problems = [f"requirements.txt line `{bad.line.partition(' --hash')[0]}` {bad.message}: {FREEZE} "
                "(never edit the lock)" for bad in bad_lines]
    if not bad_lines:
        problems += pip_reader_problems(lock_path, pins)
    targets = lockfile.targets(text)
    if not targets:
        problems.append(f"requirements.txt has no `# targets:` header line: {FREEZE}")
    # With declared platforms (`# platforms:`), every (platform, Python) pair is checked with its descriptor.
    try:
        pairs = platforms.pairs(root, targets, lockfile.platforms(text))
    except ToolError as exc:
        problems.append(str(exc))
        pairs = targets
    problems += platform_problems(root, text, settings)
    dev_pins, dev_problems, dev_bad = dev_set(root, pins, pairs)
    problems += dev_problems
    requirements_in_pins = pins
    pins = pins + [pin for pin in dev_pins if pin not in pins]  # every artifact kept, as the freeze keeps them
    # The build lock's artifacts (backends for the sdists built from source) belong in requirements/ too.
    problems += artifact_problems(root, pins + sdists.build_pins_of(root), pairs, names_of(bad_lines + dev_bad))
    problems += sdists.check_problems(root, pins, targets)
    problems += pins_file_problems(root, pins)
    problems += requirements_in_problems(root, requirements_in_pins, targets or ["3"])
    if dev_pins:
        problems += requirements_in_problems(root, pins, targets or ["3"], "requirements-dev.in")
    problems += seed_problems(root, pins, targets)
    problems += virtualenv_py_problems(root)
    problems += pip_check_problems(root)
    # Both are derived from the files checked above: while those have problems, their fix (`make freeze`, a
    # restore) rewrites or restores these too, and one broken wheel should not read as three problems.
    return problems or supply_chain_problems(root)


def dev_set(root, pins, pairs):
    """(the dev lock's pins, problems, its bad lines): requirements-dev.txt read like the lock, present exactly when
    requirements-dev.in is, and agreeing with the runtime lock on every pin the two share, for every target."""
    source, lock = root / "requirements-dev.in", root / "requirements-dev.txt"
    if not lock.exists():
        return [], ([f"requirements-dev.in has no lock (requirements-dev.txt is missing): {FREEZE}"]
                    if source.exists() else []), []
    if not source.exists():
        return [], ["requirements-dev.txt is there without requirements-dev.in (the dev set was removed): run "
                    "`make freeze` to drop it (or restore requirements-dev.in)"], []
    text, problem = requirements_in.decoded(lock.read_bytes(), "requirements-dev.txt")
    if problem:
        return [], [f"{problem}, or restore it with `git checkout -- requirements-dev.txt` (never edit the lock)"], []
    dev_pins, bad_lines = lockfile.parse(text)
    problems = [f"requirements-dev.txt line `{bad.line.partition(' --hash')[0]}` {bad.message}: {FREEZE} "
                "(never edit the lock)" for bad in bad_lines]
    if not bad_lines:
        problems += pip_reader_problems(lock, dev_pins)
    for target in pairs:
        runtime = {pin.name: pin.version for pin in pins if pin.applies_to(target)}
        for pin in dev_pins:
            if pin.name in runtime and runtime[pin.name] != pin.version and pin.applies_to(target):
                problems.append(f"requirements-dev.txt pins {pin} where requirements.txt pins {pin.name}=="
                                f"{runtime[pin.name]} (Python {target}): the dev set must hold the runtime pins: "
                                f"{FREEZE}")
    return dev_pins, sorted(set(problems), key=problems.index), bad_lines


def platform_problems(root, text, settings):
    """The lock's header against the Makefile's settings, the declared descriptors against what `make platforms`
    makes of them, and the Linux wheels against the lock's glibc floor."""
    problems = []
    header = {"TARGET_PYTHONS": ("targets", lockfile.targets(text)),
              "TARGET_PLATFORMS": ("platforms", lockfile.platforms(text))}
    for setting, (key, named) in header.items():
        twice = platforms.duplicates(named)
        if twice:
            problems.append(f"requirements.txt's `# {key}:` line names {' '.join(twice)} more than once: name each "
                            f"once in {setting} and {FREEZE}")
        wanted = getattr(settings, key, None)
        # A lock without its `# targets:` line is reported as such above.
        if wanted is not None and wanted != named and (named or key == "platforms"):
            problems.append(f"requirements.txt was locked for {setting}=\"{' '.join(named)}\" (its `# {key}:` line) "
                            f"but {setting} is \"{' '.join(wanted)}\" here (the Makefile's, or the command line's): "
                            f"{FREEZE} to lock for it, or set {setting} to the lock's")
    floor = lockfile.glibc_floor(text)
    wanted_floor = getattr(settings, "glibc_floor", None)
    for value in filter(None, (floor, wanted_floor)):
        try:
            platforms.glibc_floor(value)
        except ToolError as exc:
            return problems + [str(exc).rstrip(".")]
    linux = False
    for name in lockfile.platforms(text):
        try:
            linux = linux or platforms.is_linux(platforms.load(root, name))
        except ToolError:
            pass  # a missing or unreadable descriptor is reported with the pairs
    if linux and not floor:
        problems.append(f"requirements.txt declares a Linux platform but states no glibc floor (`# glibc floor:`, "
                        f"from GLIBC_FLOOR; locked before the floor existed?): {FREEZE}")
    elif linux and wanted_floor and wanted_floor != floor:
        problems.append(f"requirements.txt was locked for GLIBC_FLOOR={floor} (its `# glibc floor:` line) but "
                        f"GLIBC_FLOOR is {wanted_floor} here (the Makefile's, or the command line's): run `make "
                        "platforms`, then `make freeze`, or set GLIBC_FLOOR to the lock's")
    names = lockfile.platforms(text) + list(getattr(settings, "platforms", None) or [])
    problems += platforms.descriptor_problems(root, names, wanted_floor or floor or platforms.DEFAULT_GLIBC_FLOOR)
    if linux and floor:
        problems += platforms.wheels_above_floor(root / "requirements", floor)
    return problems


def supply_chain_problems(root):
    """The provenance record and pylock.toml agree with the files (bootstrap_tools/provenance.py, pylock.py).

    pylock.toml takes its upload times from the record: while the record is wrong, only the record is named."""
    return provenance.check_problems(root) or pylock.check_problems(root)


def pip_reader_problems(path, pins):
    """The lock read by pip's own parser (the one `make ve`'s pip runs) gives the pins the convention's reader gave:
    a divergence between the two readers is caught on every check, not on a deploy host."""
    try:
        from pip._internal.req.req_file import parse_requirements
    except ImportError:
        return []  # a ve without pip: make ve never builds one
    try:  # a local file is read without a session (pip needs one for URLs only)
        theirs = [(Requirement(parsed.requirement), parsed.options or {})
                  for parsed in parse_requirements(str(path), session=None)]
    except Exception as exc:  # pip's own errors: any of them means pip cannot read what the convention accepted
        return [f"pip cannot read {path.name} ({str(exc).splitlines()[0]}): {FREEZE}"]
    pip_reads = sorted((canonicalize_name(req.name), str(req.specifier), str(req.marker or ""), sorted(req.extras),
                        sorted(options.get("hashes", {}).get("sha256", []))) for req, options in theirs)
    we_read = sorted((pin.name, str(Requirement(pin.line).specifier), str(Requirement(pin.line).marker or ""),
                      sorted(Requirement(pin.line).extras), sorted(pin.hashes)) for pin in pins)
    if pip_reads != we_read:
        differ = sorted(set(map(str, pip_reads)) ^ set(map(str, we_read)))
        return [f"pip reads {path.name} otherwise than the convention's reader ({differ[0]}): {FREEZE}"]
    return []


def pip_check_problems(root):
    """`pip check` of root's ve when it holds pip (the dev set's, say): `make ve` checks the same requirements
    without starting pip; this is pip's own word on them. The tools run in their own env, never in the ve."""
    python = Path(root) / "ve" / "bin" / "python"
    if not list((Path(root) / "ve" / "lib").glob("python*/site-packages/pip/__main__.py")):
        return []
    try:
        with tempfile.TemporaryDirectory(prefix="make-check-") as home:
            run([python, "-I", "-m", "pip", "check", "--isolated", "--disable-pip-version-check"],
                env=hermetic_env(home))
    except ToolError as exc:
        found = [line.strip() for line in (exc.output or "").splitlines() if line.strip()]
        return [f"pip check in the ve: {line}: the lock is incomplete, run `make freeze` (then `make ve`)"
                for line in found or [str(exc)]]
    return []


def lfs_pointer_problems(root):
    """One problem per Git LFS pointer found where a wheel belongs, each with the command that fetches the files."""
    pointers = checks.lfs_pointers((root / "requirements", root / "virtualenv_support"))
    return [f"{Path(path).relative_to(root)}{LFS_POINTER}" for path in pointers]


def lfs_summary(root, count):
    """The ERROR line when pointers stand where files belong: what is needed and the command that fetches them."""
    return (f"make check found {count} Git LFS pointer(s) where files belong (listed above): this clone was made "
            f"without Git LFS. Git LFS is needed: install it (`git lfs version` must work, e.g. `apt-get install "
            f"git-lfs`), then fetch the files with `cd {shlex.quote(str(root))} && git lfs install --local && "
            "git lfs pull`.")


def names_of(bad_lines):
    """The project names of the lock lines that are not valid pins (their artifacts are not strays)."""
    names = set()
    for bad in bad_lines:
        try:
            names.add(canonicalize_name(Requirement(bad.line.partition(" --")[0]).name))
        except InvalidRequirement:
            pass
    return names


def artifact_name(filename):
    parsed = name_version(filename)
    return parsed and parsed[0]


def tracked_names(root, directory):
    """The names git tracks in root/directory, or an empty set when root is not a git work tree."""
    try:
        output = run(["git", "ls-files", "-z", "--", directory], cwd=root)
    except ToolError:
        return set()
    return {name.rpartition("/")[2] for name in output.split("\0") if name}


def remove_advice(path, tracked):
    """The command that deletes `path`: `git rm` for a tracked file, plain `rm` for an untracked one."""
    return f"git rm -- {shlex.quote(path)}" if tracked else f"rm {shlex.quote(path)}"


def artifact_problems(root, pins, targets, bad_names=frozenset()):
    """Each pin's artifacts are the files with its name, version and an allowed sha256; nothing else belongs."""
    wheelhouse = root / "requirements"
    # Hidden files are never artifacts (no freeze writes one, and none prunes one), but for what a freeze killed
    # while staging left (named below).
    listed = sorted(wheelhouse.iterdir()) if wheelhouse.is_dir() else []
    files = {path.name: lockfile.sha256(path) for path in listed if path.is_file()
             and (not path.name.startswith(".") or path.name.endswith(journal.STAGED_SUFFIX))}
    problems, needed, claimed = [], {}, set()
    for path in switch.irregular_entries(wheelhouse):
        problems.append(f"requirements/{path.name} is a {switch.kind(path)}; requirements/ holds only the lock's "
                        f"artifacts (`make freeze` refuses to run): move it out of requirements/")
    for pin in pins:
        matches = [name for name, digest in files.items() if is_artifact_of(name, digest, pin)]
        if not matches:
            same_name = [name for name in files if names_pin(name, pin)]
            if same_name:
                problems.append(f"requirements/{same_name[0]} does not match any hash of {pin} (tampered or "
                                f"corrupted; got {files[same_name[0]]}): "
                                + RESTORE.format(path=f"requirements/{same_name[0]}"))
                claimed.update(same_name)
            else:
                renamed = [name for name, digest in files.items() if digest in pin.hashes]
                note = (f"; requirements/{renamed[0]} has its bytes under another name" if renamed else "")
                problems.append(f"requirements/ has no artifact for {pin}{for_targets(pin, targets)}{note}: "
                                f"restore it with `git checkout -- requirements/` or {FREEZE} to fetch it")
            continue
        needed.update((name, pin) for name in matches)
        for target in filter(pin.applies_to, targets):
            # On another platform an sdist builds at `make ve`, offline, with the build lock.
            reasons = [platforms.unfit(wheelhouse / name, target) for name in matches]
            if all(reasons):
                drop = (f"{target.platform} from TARGET_PLATFORMS" if isinstance(target, platforms.Pair)
                        else f"{target} from TARGET_PYTHONS")
                problems.append(f"{pin}: no artifact in requirements/ fits Python {target} ({reasons[0]}): "
                                f"{FREEZE}, or drop {drop}")
    strays = sorted(set(files) - set(needed) - claimed)
    tracked = tracked_names(root, "requirements") if strays else set()
    for name in strays:
        if artifact_name(name) in bad_names:
            continue  # its lock line is reported as broken; fixing that line decides whether it stays
        copy_of = sorted(other for other in needed if files[other] == files[name])
        what = (f" (a copy of requirements/{copy_of[0]}, which {needed[copy_of[0]]} needs: keep that one)"
                if copy_of else "")
        if name.startswith(".") and name.endswith(journal.STAGED_SUFFIX):
            problems.append(f"requirements/{name} was staged by a `make freeze` interrupted before its switch and "
                            "is part of no tree: `make clean` or the next `make freeze` removes it")
            continue
        problems.append(f"requirements/{name} is not referenced by the locks{what}: {FREEZE} to prune it "
                        f"(or `{remove_advice(f'requirements/{name}', name in tracked)}`)")
    return problems


def for_targets(pin, targets):
    """` (Python 3.10)`: the targets a pin with a marker is for; empty for a pin every target installs."""
    where = [target for target in targets if pin.applies_to(target)]
    return f" (Python {' '.join(where)})" if pin.marker and where else ""


def pins_file_problems(root, pins):
    path = root / pins_file.NAME
    expected = pins_file.render(pins)
    if not path.exists() or path.read_bytes() != expected.encode("utf-8"):
        return [f"{pins_file.NAME} does not list the lock's pins: {FREEZE}"]
    return []


def requirements_in_problems(root, pins, targets, name="requirements.in"):
    """Each requirement of requirements.in (or the dev set's) must be satisfied by a pin (someone edited it and
    forgot to freeze)."""
    path = root / name
    if not path.exists():
        return [f"{name} is missing: restore it with `git checkout -- {name}`"]
    requirements, problems = requirements_in.read(path)
    for _, line, requirement in requirements:
        name = canonicalize_name(requirement.name)
        unmet = {}  # what the lock pins instead -> the targets where that falls short
        for target in targets:
            if requirement.marker and not requirement.marker.evaluate(
                    {"python_version": target, "python_full_version": f"{target}.0"}):
                continue
            pinned = [pin.version for pin in pins if pin.name == name and pin.applies_to(target)]
            if not pinned or not requirement.specifier.contains(pinned[0], prereleases=True):
                unmet.setdefault(name + "==" + pinned[0] if pinned else "nothing", []).append(target)
        for instead, where in unmet.items():
            scope = "any target" if where == list(targets) else "Python " + " ".join(where)
            problems.append(f"{name} asks for `{line}` but the lock pins {instead} for {scope}: {FREEZE}")
    return problems


def seed_problems(root, pins=(), targets=()):
    seeds = root / "virtualenv_support"
    sums_path = seeds / "SHA256SUMS"
    fix = "restore it with `git checkout -- virtualenv_support` or run `make freeze-upgrade`"
    if not sums_path.exists():
        return [f"virtualenv_support/SHA256SUMS is missing: {fix}"]
    _, problem = requirements_in.decoded(sums_path.read_bytes(), "virtualenv_support/SHA256SUMS")
    if problem:
        return [f"{problem}: {fix}"]
    recorded, bad = read_sums(sums_path)
    problems = [f"virtualenv_support/SHA256SUMS line `{line}` is not `SHA256  FILE`: {fix}" for line in bad]
    for name, digest in sorted(recorded.items()):
        path = seeds / name
        if not path.exists():
            problems.append(f"virtualenv_support/{name} is missing: {fix}")
        elif lockfile.sha256(path) != digest:
            problems.append(f"virtualenv_support/{name} does not match SHA256SUMS (expected {digest}, got "
                            f"{lockfile.sha256(path)}): {fix}")
    for path in sorted(seeds.iterdir()):
        if path.name not in recorded and path.name != "SHA256SUMS":
            problems.append(f"virtualenv_support/{path.name} is not recorded in SHA256SUMS: {fix}")
    wheels = sorted(path for path in seeds.glob("*.whl") if path.is_file() and artifact_name(path.name) == "pip")
    if not wheels:
        return problems + [f"virtualenv_support/ has no pip wheel to seed the ve with: {fix}"]
    for path in wheels:
        problems += seed_lock_problems(path, pins, fix)
        for target in targets:
            reason = unfit_reason(path, target)
            if reason:
                problems.append(f"virtualenv_support/{path.name} cannot seed Python {target} ({reason}): run "
                                f"`make freeze-upgrade`, or drop {target} from TARGET_PYTHONS")
    return problems


def seed_lock_problems(path, pins, fix):
    """When the lock pins pip, the seed must be one of that pin's artifacts: its version and one of its hashes."""
    pip_pins = [pin for pin in pins if pin.name == "pip"]
    if not pip_pins:
        return []
    digest = lockfile.sha256(path)
    if any(is_artifact_of(path.name, digest, pin) for pin in pip_pins):
        return []
    versions = " / ".join(sorted({str(pin) for pin in pip_pins}))
    if not any(names_pin(path.name, pin) for pin in pip_pins):
        return [f"virtualenv_support/{path.name} is not the pip the lock pins ({versions}): run `make freeze-upgrade`"]
    return [f"virtualenv_support/{path.name} is not an artifact of {versions} in the locks: its sha256 "
            f"{digest} is none of the lock's hashes for it (swapped seed, even if SHA256SUMS agrees): {fix}"]


def virtualenv_py_problems(root):
    path = root / "virtualenv.py"
    fix = "restore it with `git checkout -- virtualenv.py bootstrap_tools/virtualenv.txt` or regenerate it with " \
          "`make freeze-upgrade`"
    if not path.exists():
        return [f"virtualenv.py is missing: {fix}"]
    text, problem = requirements_in.decoded(path.read_bytes(), "virtualenv.py")
    lock = root / "bootstrap_tools" / "virtualenv.txt"
    if not problem and lock.exists():
        problem = requirements_in.decoded(lock.read_bytes(), "bootstrap_tools/virtualenv.txt")[1]
    if problem:
        return [f"{problem}, or {fix}"]
    problems = virtualenv_py.authenticity_problems(text, lock)
    return [f"virtualenv.py: {problem} (was it edited?): {fix}" for problem in problems]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
