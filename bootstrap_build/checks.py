"""The input checks, before a build touches anything: the lock's artifacts, the seed, virtualenv.py's payload, what a
build from source needs, and Git LFS pointers. Each problem says what is wrong and how to fix it."""

import hashlib
import os

from bootstrap_build import journal, layout, lockfile
from bootstrap_build.inputs import file_sha256
from bootstrap_build.lockfile import normal_version
from bootstrap_build.messages import error


class Inputs:
    """What a build trusts, checked: the pins, the seed wheel (path, sha256), virtualenv.py's decoded payload."""

    def __init__(self, pins, seed, payload, problems):
        self.pins, self.seed, self.payload, self.problems = pins, seed, payload, problems


def verify_inputs():
    """Everything a build trusts, checked before anything is touched (Inputs; its problems empty when sound)."""
    pins, problems = lockfile.read_lock()
    pointers = lfs_pointer_problems()
    if pointers:  # every hash check would fail on the pointers; the one fix is fetching the real files
        return Inputs(pins, None, None, problems + pointers)
    seed, seed_problems = check_seed(pins)
    payload, payload_problems = virtualenv_payload()
    problems += seed_problems + payload_problems + check_artifacts(pins) + source_problems(pins)
    return Inputs(pins, seed, payload, problems)


def check_inputs():
    """`make check` without a ve: list every problem bootstrap.py can see, with the fix for each."""
    with journal.settled_inputs():
        problems = verify_inputs().problems
    if problems and problems[-1:] == lfs_pointer_problems():
        error(problems[-1])  # nothing else can be checked until the files are there
    for problem in problems:
        print(f"  - {problem}")
    if problems:
        error(f"found {len(problems)} problem(s) in the lock, requirements/ or virtualenv_support/, listed above "
              "with the fix for each.")
    return 0


def check_seed(pins):
    """((path, sha256) of the verified pip wheel that seeds the ve, or None; problems).

    The seed is the lock's pip: when the lock pins pip, the seed's recorded sha256 must be one of its hashes, so a
    swapped seed cannot hide behind a SHA256SUMS changed to match it.
    """
    restore = "Restore it with `git checkout -- virtualenv_support`."
    problems = []
    if not os.path.isfile(layout.VIRTUALENV_PY):
        problems.append(f"{layout.VIRTUALENV_PY} is missing. Restore it with `git checkout -- virtualenv.py`.")
    recorded, _ = read_sums(layout.SEED_SUMS)
    if recorded is None:
        return None, problems + [f"{layout.SEED_SUMS} is missing. {restore}"]
    wheels = [name for name in recorded if name.startswith("pip-") and name.endswith(".whl")]
    if len(wheels) != 1:
        return None, problems + [f"{layout.SEED_SUMS} must record exactly one pip wheel (found {len(wheels)}). "
                                 f"{restore}"]
    path = os.path.join(layout.SEEDS, wheels[0])
    if not os.path.isfile(path):
        return None, problems + [f"seed wheel {path} is missing. {restore}"]
    digest = recorded[wheels[0]]
    locked = [pin for pin in pins if pin.name == "pip"]
    if locked and not any(digest in pin.hashes for pin in locked):
        seeds = os.path.relpath(layout.SEEDS, layout.ROOT)
        locks = " or ".join(os.path.relpath(lock, layout.ROOT) for lock in (layout.LOCK, layout.dev_lock()) if lock)
        return None, problems + [
            f"{seeds}/{wheels[0]} is not the lock's pip: its recorded sha256 {digest} is not a hash of "
            f"{' or '.join(map(str, locked))} in {locks}. Restore them with `git checkout -- {seeds} "
            f"{locks.replace(' or ', ' ')}`."]
    mismatch = verify_file(path, {digest}, f"{os.path.relpath(layout.SEED_SUMS, layout.ROOT)}",
                           f"restore it with `git checkout -- {os.path.relpath(layout.SEEDS, layout.ROOT)}`")
    return (None, problems + [mismatch]) if mismatch else ((path, digest), problems)


def read_sums(path):
    """({file name: sha256}, [malformed lines]) of a SHA256SUMS file, hex in either case as `sha256sum -c` accepts
    it; (None, []) when the file is missing. The one reader, for the build and the tools."""
    import re

    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    except OSError:
        return None, []
    recorded, bad = {}, []
    for line in lines:
        fields = line.split()
        if len(fields) == 2 and re.fullmatch(r"[0-9a-fA-F]{64}", fields[0]):
            recorded[fields[1].lstrip("*")] = fields[0].lower()
        else:
            bad.append(line)
    return recorded, bad


def verify_file(path, expected, source, fix):
    """None if path's sha256 is one of `expected`, else the problem, with both hashes."""
    actual = file_sha256(path)
    if actual in expected:
        return None
    return (f"{os.path.relpath(path, layout.ROOT)} does not match {source}: expected sha256 "
            f"{' or '.join(sorted(expected))}, got {actual}. The file was changed or corrupted: {fix}.")


def check_artifacts(pins):
    """Problems: each pin needs a file in requirements/ with its name, its version and a sha256 the lock allows.

    Matching by name and version as well as by hash, as pip selects: a renamed copy or a backup with the same bytes
    (`x.whl.orig`) is not the pin's artifact.
    """
    by_pin = artifacts_by_pin()
    problems = []
    lock, wheelhouse = (os.path.relpath(path, layout.ROOT) for path in (layout.LOCK, layout.WHEELHOUSE))
    for pin in pins:
        candidates = by_pin.get((pin.name, normal_version(pin.version)), [])
        mismatches = [verify_file(path, pin.hashes, f"the hashes of {pin} in {lock}",
                                  f"restore it with `git checkout -- {wheelhouse}/{os.path.basename(path)}`")
                      for path in candidates]
        if candidates and all(mismatches):
            problems += mismatches
        elif not candidates:
            problems.append(f"{wheelhouse}/ has no artifact for {pin} (pinned in {lock}). Restore it with "
                            f"`git checkout -- {wheelhouse}/`; if git has no copy, run `make freeze` (needs the "
                            "index).")
    return problems


def artifacts_by_pin():
    """{(name, release): [its files in requirements/]}, by file name as pip finds them."""
    by_pin = {}
    for path in layout.list_files(layout.WHEELHOUSE):
        key = lockfile.artifact_pin(os.path.basename(path))
        if key and os.path.isfile(path):
            by_pin.setdefault(key, []).append(path)
    return by_pin


def unsafe_member(name):
    return name.startswith("/") or ".." in name.split("/") or "\\" in name


LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\n"


def lfs_pointers(directories=None):
    """The files that are Git LFS pointers (a clone made without Git LFS, or before `git lfs pull`)."""
    found = []
    directories = directories or (layout.WHEELHOUSE, layout.SEEDS)
    for path in (path for directory in directories for path in layout.list_files(directory)):
        try:
            # A pointer is a small text file; reading only its first line keeps this cheap for real wheels.
            with open(path, "rb") as handle:
                if handle.read(len(LFS_POINTER)) == LFS_POINTER:
                    found.append(path)
        except OSError:
            continue
    return found


def lfs_pointer_problems():
    """One problem for all pointer files: their hashes cannot match, and the fix is the same for every one."""
    pointers = lfs_pointers()
    if not pointers:
        return []
    import shlex

    names = ", ".join(os.path.relpath(path, layout.ROOT) for path in pointers[:3])
    names += " ..." if len(pointers) > 3 else ""
    return [f"{len(pointers)} file(s) in requirements/ or virtualenv_support/ are Git LFS pointers, not the files "
            f"({names}): this clone was made without Git LFS. Git LFS is needed: install it (`git lfs version` "
            f"must work; e.g. `apt-get install git-lfs`), then fetch the files with "
            f"`cd {shlex.quote(layout.ROOT)} && git lfs install --local && git lfs pull`."]


def virtualenv_payload():
    """(decoded payload or None, problems): virtualenv.py whole, before it runs: a damaged copy would fail inside
    Python, far from the cause.

    The header records the sha256 of the decoded payload; the payload must match it and the file must compile (a
    truncated file loses its closing quotes, and Python would report a SyntaxError deep inside it).
    """
    import base64
    import binascii
    import re

    fix = ("Restore it with `git checkout -- virtualenv.py` (or regenerate it with `make freeze-upgrade`), then run "
           "`make check`.")
    try:
        with open(layout.VIRTUALENV_PY, "rb") as handle:
            data = handle.read()
    except OSError:
        return None, []  # a missing file is reported by check_seed
    recorded = re.search(rb"^# Payload: .*\n#\s+sha256:([0-9a-f]{64})$", data, re.MULTILINE)
    opening = b'\nPAYLOAD = b"""\n'
    at = data.find(opening)  # find(), not a regular expression: it would scan the 1.7 MB payload (18 ms)
    start = at + len(opening)
    end = data.find(b'"""\n', start)
    if not recorded or at < 0 or end < 0:
        return None, [f"virtualenv.py is damaged: its header has no payload sha256, or its payload is cut short "
                      f"(truncated?). {fix}"]
    try:
        payload = base64.b64decode(data[start:end])
        actual = hashlib.sha256(payload).hexdigest()
    except (binascii.Error, ValueError):
        actual = "(not valid base64)"
    if actual != recorded.group(1).decode():
        return None, [f"virtualenv.py is damaged: its payload does not match the sha256 in its header (expected "
                      f"{recorded.group(1).decode()}, got {actual}). {fix}"]
    try:  # the code around the payload (its lines kept blank, for the line numbers); the payload has its sha256
        compile(data[:start] + b"\n" * data.count(b"\n", start, end) + data[end:], layout.VIRTUALENV_PY, "exec",
                dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return None, [f"virtualenv.py is damaged: Python cannot read it ({exc.__class__.__name__} at line "
                      f"{getattr(exc, 'lineno', '?')}). {fix}"]
    return payload, []


def sdist_wheels(pins):
    """{pin: [its wheel files]} for the pins that have an sdist in requirements/ (built at freeze time)."""
    by_pin = artifacts_by_pin()
    found = {}
    for pin in pins:
        paths = by_pin.get((pin.name, normal_version(pin.version)), [])
        if any(not path.endswith(".whl") for path in paths):
            found[pin] = [path for path in paths if path.endswith(".whl")]
    return found


def source_problems(pins):
    """Problems of what a build from source needs: the build lock and its artifacts, and the prebuilt wheels.

    A tampered prebuilt wheel would otherwise pass beside its good sdist (one allowed artifact per pin is enough
    for check_artifacts), and pip would only stop at its hash.
    """
    wheels = sdist_wheels(pins)
    if not wheels:
        return []
    problems = []
    for pin, paths in wheels.items():
        for path in paths:
            fix = f"restore it with `git checkout -- requirements/{os.path.basename(path)}`"
            problems += filter(None, [verify_file(path, pin.hashes, f"the hashes of {pin} in requirements.txt", fix)])
    restore = "Restore it with `git checkout -- requirements-build.txt`, or run `make freeze`."
    try:
        with open(layout.BUILD_LOCK, encoding="utf-8-sig") as handle:
            build_pins, bad = lockfile.parse_lock(handle.read())
    except (OSError, UnicodeDecodeError):
        return problems + [f"requirements-build.txt is missing or unreadable, and {next(iter(wheels))} is built "
                           f"from its sdist where no wheel fits. {restore}"]
    problems += [f"requirements-build.txt line `{line}` {reason}. {restore}" for line, reason in bad]
    return problems + [problem.replace("in requirements.txt", "in requirements-build.txt")
                       for problem in check_artifacts(build_pins)]
