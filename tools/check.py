"""`make check`: offline, fast consistency check of everything the bootstrap trusts; lists every problem.

Checked: each lock line is pinned with hashes; each pin has an artifact in requirements/ whose sha256 the
lock allows and whose wheel tags and Requires-Python fit every target; requirements/ holds nothing else;
requirements.pins and requirements.in agree with the lock; virtualenv_support/ matches SHA256SUMS; and
virtualenv.py's payload matches the sha256 in its header.
"""

import re
import sys
import time
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from tools import lockfile, pins_file, virtualenv_py
from tools.wheels import unfit_reason

ROOT = Path(__file__).resolve().parent.parent
FREEZE = "run `make freeze`"
RESTORE = "restore it with `git checkout -- {path}` or run `make freeze`"


def main(argv):
    started = time.monotonic()
    root = Path(argv[0]) if argv else ROOT
    problems = find_problems(root)
    for problem in problems:
        print(f"  - {problem}")
    seconds = time.monotonic() - started
    if problems:
        print(f"ERROR: make check found {len(problems)} problem(s), listed above with the command that fixes each.",
              file=sys.stderr)
        return 1
    print(f"==> check: lock, requirements/, virtualenv_support/ and virtualenv.py agree ({seconds:.2f} s)")
    return 0


def find_problems(root):
    lock_path = root / "requirements.txt"
    if not lock_path.exists():
        return [f"requirements.txt is missing: {FREEZE}"]
    text = lock_path.read_text(encoding="utf-8")
    pins, bad_lines = lockfile.parse(text)
    problems = [f"requirements.txt line `{bad.line.partition(' --hash')[0]}` {bad.message}: {FREEZE} "
                "(never edit the lock)" for bad in bad_lines]
    targets = lockfile.targets(text)
    if not targets:
        problems.append(f"requirements.txt has no `# targets:` header line: {FREEZE}")
    problems += artifact_problems(root, pins, targets, names_of(bad_lines))
    problems += pins_file_problems(root, pins)
    problems += requirements_in_problems(root, pins, targets or ["3"])
    problems += seed_problems(root)
    problems += virtualenv_py_problems(root)
    return problems


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
    try:
        return canonicalize_name(parse_wheel_filename(filename)[0])
    except InvalidWheelFilename:
        return None


def artifact_problems(root, pins, targets, bad_names=frozenset()):
    wheelhouse = root / "requirements"
    files = {path.name: lockfile.sha256(path) for path in sorted(wheelhouse.glob("*")) if path.is_file()}
    by_hash = {digest: name for name, digest in files.items()}
    problems, referenced = [], set()
    for pin in pins:
        matches = sorted(by_hash[digest] for digest in pin.hashes if digest in by_hash)
        if not matches:
            same_name = [name for name in files if name_matches(name, pin)]
            if same_name:
                problems.append(f"requirements/{same_name[0]} does not match any hash of {pin} (tampered or "
                                f"corrupted; got {files[same_name[0]]}): "
                                + RESTORE.format(path=f"requirements/{same_name[0]}"))
                referenced.update(same_name)
            else:
                problems.append(f"requirements/ has no artifact for {pin}{for_targets(pin, targets)}: "
                                f"{FREEZE} to fetch it")
            continue
        referenced.update(matches)
        for target in filter(pin.applies_to, targets):
            reasons = [unfit_reason(wheelhouse / name, target) for name in matches]
            if all(reasons):
                problems.append(f"{pin}: no artifact in requirements/ fits Python {target} ({reasons[0]}): "
                                f"{FREEZE}, or drop {target} from TARGET_PYTHONS")
    for name in sorted(set(files) - referenced):
        if artifact_name(name) in bad_names:
            continue  # its lock line is reported as broken; fixing that line decides whether it stays
        problems.append(f"requirements/{name} is not referenced by requirements.txt: {FREEZE} to prune it "
                        f"(or `git rm requirements/{name}`)")
    return problems


def for_targets(pin, targets):
    """` (Python 3.10)`: the targets a pin with a marker is for; empty for a pin every target installs."""
    where = [target for target in targets if pin.applies_to(target)]
    return f" (Python {' '.join(where)})" if pin.marker and where else ""


def name_matches(filename, pin):
    """Whether an artifact's file name starts with the pin's normalized name and version."""
    prefix = f"{canonicalize_name(pin.name)}-{pin.version}-".replace("-", "_")
    return filename.replace("-", "_").lower().startswith(prefix)


def pins_file_problems(root, pins):
    path = root / pins_file.NAME
    expected = pins_file.render(pins)
    if not path.exists() or path.read_text(encoding="utf-8") != expected:
        return [f"{pins_file.NAME} does not list the lock's pins: {FREEZE}"]
    return []


def requirements_in_problems(root, pins, targets):
    """Each requirement of requirements.in must be satisfied by a pin (someone edited it and forgot to freeze)."""
    path = root / "requirements.in"
    if not path.exists():
        return ["requirements.in is missing: restore it with `git checkout -- requirements.in`"]
    problems = []
    for line in lockfile.logical_lines(path.read_text(encoding="utf-8")):
        if line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as exc:
            problems.append(f"requirements.in line `{line}` is not a requirement ({exc}): fix the line")
            continue
        name = canonicalize_name(requirement.name)
        for target in targets:
            if requirement.marker and not requirement.marker.evaluate(
                    {"python_version": target, "python_full_version": f"{target}.0"}):
                continue
            pinned = [pin.version for pin in pins if pin.name == name and pin.applies_to(target)]
            if not pinned or not requirement.specifier.contains(pinned[0], prereleases=True):
                problems.append(f"requirements.in asks for `{line}` but the lock pins "
                                f"{name + '==' + pinned[0] if pinned else 'nothing'} for Python {target}: {FREEZE}")
                break
    return problems


def seed_problems(root):
    seeds = root / "virtualenv_support"
    sums_path = seeds / "SHA256SUMS"
    fix = "restore it with `git checkout -- virtualenv_support` or run `make freeze-upgrade`"
    if not sums_path.exists():
        return [f"virtualenv_support/SHA256SUMS is missing: {fix}"]
    recorded, problems = {}, []
    for line in sums_path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            fields = line.split()
            if len(fields) != 2 or not re.fullmatch(r"[0-9a-f]{64}", fields[0]):
                problems.append(f"virtualenv_support/SHA256SUMS line `{line.strip()}` is not `SHA256  FILE`: {fix}")
                continue
            digest, name = fields
            recorded[name.lstrip("*")] = digest
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
    return problems


def virtualenv_py_problems(root):
    path = root / "virtualenv.py"
    fix = "restore it with `git checkout -- virtualenv.py` or regenerate it with `make freeze-upgrade`"
    if not path.exists():
        return [f"virtualenv.py is missing: {fix}"]
    mismatch = virtualenv_py.payload_mismatch(path.read_text(encoding="utf-8"))
    return [f"virtualenv.py: {mismatch} (was it edited?): {fix}"] if mismatch else []


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
