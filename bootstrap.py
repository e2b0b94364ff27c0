"""Build ./ve from this checkout alone: no network, nothing ambient, every artifact hash-checked.

Usage: python3 -I -S bootstrap.py [--ve PATH] [--force]   (normally through `make ve`)

The environment lives in one of two slot directories beside it, `.ve-a` and `.ve-b`, and `ve` is a
symlink to the current one. A virtualenv embeds its absolute path, so it cannot be built elsewhere and
moved: a rebuild goes into the other slot, at its final path, and only a finished, checked build is
switched in by atomically replacing the symlink. A failed, interrupted or killed run leaves `ve`
pointing at the previous build; the next run wipes the half-built slot and starts over.

Nothing that is not ours is ever deleted: a slot carries a marker file from its first moment, and anything found
where a slot or `ve` belongs without one (a venv made by hand, a user's file) is moved aside, never removed.
"""

import fcntl
import hashlib
import os
import sys
import time

# Modules only a build needs (subprocess, shutil, zipfile...) are imported in the functions that
# use them: the no-op path (nothing changed) must stay well under 0.1 s, and they would take half of that.

ROOT = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(ROOT, "requirements.txt")
WHEELHOUSE = os.path.join(ROOT, "requirements")
VIRTUALENV_PY = os.path.join(ROOT, "virtualenv.py")
SEEDS = os.path.join(ROOT, "virtualenv_support")
SEED_SUMS = os.path.join(SEEDS, "SHA256SUMS")
STAMP = "bootstrap-stamp.txt"
# Written into a slot before anything else: the proof that the directory is ours to wipe.
MARKER = ".bootstrap-slot"
MARKER_TEXT = "made by bootstrap.py (make ve); deleted and rebuilt by it\n"
SLOTS = ("a", "b")
# Fixed, so nothing a build runs can stamp the time into what it writes (under it, py_compile and pip
# default to hash-based .pyc files); with checked-hash compilation, rebuilds are byte-identical.
SOURCE_DATE_EPOCH = "315532800"
AMBIENT_PREFIXES = ("PIP_", "VIRTUALENV_", "UV_", "PYTHON", "CONDA_", "PIPENV_", "PDM_", "POETRY_", "XDG_")
AMBIENT_NAMES = ("VIRTUAL_ENV", "__PYVENV_LAUNCHER__", "SETUPTOOLS_USE_DISTUTILS", "DISTUTILS_DEBUG")


class Pin:
    """One locked requirement: `name==version`, its extras and marker, and the sha256s it allows."""

    def __init__(self, name, version, hashes, marker="", extras=""):
        self.name, self.version, self.hashes, self.marker, self.extras = name, version, hashes, marker, extras

    def __str__(self):
        return f"{self.name}=={self.version}"

    @property
    def line(self):
        """The requirement as pip gets it, rebuilt from the parsed fields (never the lock's own text)."""
        return f"{self.name}{self.extras}=={self.version}" + (f" ; {self.marker}" if self.marker else "")


def error(message):
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def step(message):
    print(f"==> {message}", flush=True)


def main(argv):
    args = parse_args(argv)
    started = time.monotonic()
    ve = resolve_ve(args.ve)
    if args.clean:
        return clean(ve, args.ve)
    if args.check:
        return check_inputs()
    key = input_key(ve)
    try:
        # Checked before locking too, so a read-only checkout with a current ve is still a no-op.
        if not args.force and current_key(ve) == key:
            return report_up_to_date(args.ve)
        stop_on_signals()
        with exclusive_lock(ve):
            if not args.force and current_key(ve) == key:  # built meanwhile by a concurrent `make ve`
                return report_up_to_date(args.ve)
            count = build(ve, key, args.one_slot)
    except KeyboardInterrupt:
        error(f"interrupted; {describe_ve(ve, args.ve)}. Run `make ve` again.")
    except PermissionError as exc:
        error(permission_message(exc, ve))
    except OSError as exc:  # a read-only or full file system, a path that is not a directory
        if exc.errno in NO_SPACE_ERRNOS:
            error(disk_full_message(ve))
        where = exc.filename or ve
        error(f"cannot write {where}: {exc.strerror}. Make {os.path.dirname(where)} writable or pick another VE=...")
    seconds = time.monotonic() - started
    step(f"done: {args.ve} ready, Python {python_version()} ({sys.executable}), "
         f"{count} packages installed, {seconds:.1f} s")
    return 0


def report_up_to_date(ve):
    print(f"{ve} is up to date (make ve FORCE=1 rebuilds it)")
    return 0


class Args:
    ve = os.path.join(ROOT, "ve")
    force = clean = check = one_slot = False


def parse_args(argv):
    """Hand-parsed: a few options do not pay for importing argparse on the no-op path."""
    args, rest = Args(), list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("--force", "--clean", "--check"):
            setattr(args, arg[2:], True)
        elif arg == "--one-slot":
            args.one_slot = True
        elif arg == "--ve" and rest:
            args.ve = rest.pop(0)
        elif arg in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        else:
            error(f"unknown argument {arg!r}. Usage: python3 bootstrap.py [--ve PATH] [--force] [--one-slot] "
                  "[--clean | --check]")
    return args


def python_version():
    return ".".join(map(str, sys.version_info[:3]))


def resolve_ve(value):
    """The absolute path of `ve` (its directory resolved, `ve` itself not: it is our symlink), or refuse it.

    VE must name a path of its own: never the checkout, one of its parents or one of its inputs, where a
    rebuild would replace them by a symlink; never an existing file.
    """
    if not value.strip():
        error("VE is empty, and a ve cannot replace the checkout itself. Leave VE unset (it defaults to `ve`) "
              "or pass a path of its own, such as `make ve VE=ve`.")
    path = os.path.abspath(value)  # also drops a trailing slash, so `ve/` never reaches through the link
    name = os.path.basename(path)
    ve = os.path.join(os.path.realpath(os.path.dirname(path)), name)
    root = os.path.realpath(ROOT)
    protected = [os.path.join(root, name) for name in (".git", "requirements", "virtualenv_support", "bootstrap_tools")]
    if ve == root or root.startswith(ve + os.sep):
        error(f"VE={value} is the checkout or a directory that contains it; a build would replace it. "
              "Pass a path of its own, such as `make ve VE=ve`.")
    if any(ve == inside or ve.startswith(inside + os.sep) for inside in protected):
        error(f"VE={value} lies inside the checkout's own inputs ({os.path.relpath(ve, root)}). "
              "Pass a path of its own, such as `make ve VE=ve`.")
    if os.path.lexists(ve) and not os.path.islink(ve) and not os.path.isdir(ve):
        error(f"VE={value} is an existing file, which a build would replace. Move it away or pass another VE=...")
    if ":" in ve:
        # virtualenv refuses it, and it would split PATH in bin/activate.
        error(f"the ve path {ve} contains ':', which virtualenv cannot use (it separates PATH entries). "
              "Move the checkout to a path without ':', or pass VE=<a path without ':'>.")
    return ve


def slot_path(ve, slot):
    return os.path.join(os.path.dirname(ve), f".{os.path.basename(ve)}-{slot}")


def scratch_path(ve):
    """Private HOME, TMPDIR and app-data of a build, beside the ve: a killed build's leftovers are found again."""
    return os.path.join(os.path.dirname(ve), f".{os.path.basename(ve)}.tmp")


def lock_path(ve):
    return os.path.join(os.path.dirname(ve), f".{os.path.basename(ve)}.lock")


def exclusive_lock(ve):
    """Serialize builds of one ve: a second `make ve` waits, then finds the first one's result."""
    path = lock_path(ve)
    try:
        os.makedirs(os.path.dirname(ve), exist_ok=True)
        # flock needs no write access: a lock file left by another user (sudo make ve) still serves.
        handle = open(path, "r") if os.path.exists(path) else open(path, "a")
    except PermissionError as exc:
        error(permission_message(exc, ve))
    except OSError as exc:
        error(f"cannot write {path}: {exc.strerror}. Make {os.path.dirname(ve)} writable or pick another VE=...")
    return LockedFile(handle)


class LockedFile:
    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        fcntl.flock(self.handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc_info):
        self.handle.close()  # closing releases the lock, also when the process is killed


def stop_on_signals():
    """SIGTERM and SIGHUP (a CI cancel, a closed terminal, `timeout`) unwind like Ctrl-C: children are stopped
    and scratch removed before the lock is released."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def permission_message(exc, ve):
    """Name the owner of what we cannot change (often root, after a `sudo make ve`) and the command that fixes it."""
    import pwd
    import shlex

    def owner(uid):
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return str(uid)

    me = owner(os.geteuid())
    foreign = {}
    for path in [ve, lock_path(ve), scratch_path(ve), f"{ve}.switching"] + [slot_path(ve, slot) for slot in SLOTS]:
        try:
            uid = os.lstat(path).st_uid
        except OSError:
            continue
        if uid != os.geteuid():
            foreign[path] = owner(uid)
    if foreign:
        return (f"{', '.join(map(os.path.basename, foreign))} belong to {' and '.join(sorted(set(foreign.values())))}"
                f", not to {me} (left by a `sudo make ve`?), so they cannot be replaced. Fix: "
                f"`sudo chown -R {me} {' '.join(map(shlex.quote, foreign))}`, then run the command again.")
    path = exc.filename or ve
    return (f"cannot change {path}: {exc.strerror}. Make {os.path.dirname(path)} writable for {me} "
            "or pick another VE=...")


def input_key(ve):
    """A digest of everything that decides what ends up in the ve: content, never mtimes.

    The ve's own resolved path is part of it: a virtualenv embeds its path, so a moved or copied checkout
    rebuilds instead of running the tools of the place it came from.
    """
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\0{os.path.realpath(sys.executable)}\0{ve}\0".encode())
    for path in [LOCK, os.path.abspath(__file__), VIRTUALENV_PY] + list_files(SEEDS):
        digest.update(os.path.relpath(path, ROOT).encode() + b"\0")
        content = "dir" if os.path.isdir(path) else file_sha256(path, missing=b"missing")
        digest.update(content.encode() + b"\0")
    return digest.hexdigest()


def list_files(directory):
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names if not name.startswith(".")]


def file_sha256(path, missing=None):
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        if missing is None:
            raise
        return missing.decode()
    return digest.hexdigest()


def our_slot(ve):
    """The slot `ve` points at, if `ve` is our symlink to one of our slots; else None."""
    if not os.path.islink(ve):
        return None
    target = os.path.realpath(ve)
    for slot in (slot_path(ve, slot) for slot in SLOTS):
        if os.path.realpath(slot) == target and is_ours(slot):
            return slot
    return None


def is_ours(slot):
    """A real directory carrying the marker we write first (or, from builds before the marker, our stamp)."""
    return (os.path.isdir(slot) and not os.path.islink(slot)
            and (os.path.isfile(os.path.join(slot, MARKER)) or os.path.isfile(os.path.join(slot, STAMP))))


def current_key(ve):
    """The input key of the build `ve` points at, or None if there is no finished build of ours."""
    try:
        if os.path.basename(os.readlink(ve)) not in {os.path.basename(slot_path(ve, s)) for s in SLOTS}:
            return None
        with open(os.path.join(ve, STAMP)) as handle:
            return handle.read().strip()
    except OSError:
        return None


def describe_ve(ve, name):
    """What `ve` really points at now, for the message after an interrupted build."""
    slot = our_slot(ve)
    if slot and os.path.isfile(os.path.join(slot, STAMP)):
        return f"{name} still points at the previous finished build ({os.path.basename(slot)})"
    if os.path.lexists(ve):
        return f"{name} is as it was before this run (no finished build of make ve)"
    return f"there is no {name} yet"


def build(ve, key, one_slot=False):
    pins, seed, problems = verify_inputs()
    check_interpreter(read_targets())
    if problems:
        more = len(problems) - 1
        error(problems[0] + (f" ({more} more problem(s): `make check` lists them all.)" if more else ""))
    if one_slot:
        drop_builds(ve)
    slot = pick_slot(ve)
    scratch = fresh_dir(scratch_path(ve))
    try:
        env = hermetic_env(scratch)
        create_env(slot, scratch, env)
        install(slot, seed, pins, scratch, env)
        check_env(slot, env)
    finally:
        remove(scratch)
    write_stamp(slot, key)
    switch(ve, slot)
    return count_installed(slot)


def verify_inputs():
    """(pins, seed wheel, problems): everything a build trusts, checked before anything is touched."""
    pins, problems = read_lock()
    pointers = lfs_pointer_problems()
    if pointers:  # every hash check would fail on the pointers; the one fix is fetching the real files
        return pins, None, problems + pointers
    seed, seed_problems = check_seed(pins)
    return pins, seed, problems + seed_problems + virtualenv_py_problems() + check_artifacts(pins)


def check_inputs():
    """`make check` without a ve: list every problem bootstrap.py can see, with the fix for each."""
    _, _, problems = verify_inputs()
    if problems and problems[-1:] == lfs_pointer_problems():
        error(problems[-1])  # nothing else can be checked until the files are there
    for problem in problems:
        print(f"  - {problem}")
    if problems:
        error(f"found {len(problems)} problem(s) in the lock, requirements/ or virtualenv_support/, listed above "
              "with the fix for each.")
    return 0


def read_lock():
    """(pins, problems): requirements.txt read strictly; each problem says what is wrong and how to fix it."""
    try:
        with open(LOCK, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return [], [f"cannot read {LOCK}: {exc.strerror}. Restore it with `git checkout -- requirements.txt`."]
    try:
        text = data.decode("utf-8-sig")  # -sig: a BOM left by an editor is not part of line 1
    except UnicodeDecodeError as exc:
        return [], [f"requirements.txt is not UTF-8 text (byte {exc.start}). "
                    "Restore it with `git checkout -- requirements.txt`."]
    pins, bad = parse_lock(text)
    restore = "The lock is generated by `make freeze`: restore it with `git checkout -- requirements.txt`."
    problems = [f"requirements.txt line `{line}` {reason}. {restore}" for line, reason in bad]
    if not pins and not problems:
        problems.append("requirements.txt pins nothing. Run `make freeze` to lock requirements.in.")
    return pins, problems


def parse_lock(text):
    """(pins, [(line, reason)]): the one reader of lock files, used by bootstrap.py and every maintainer tool.

    It accepts exactly what pip-compile writes for a hashed lock: `name[extras]==version [; marker]` followed by
    `--hash=sha256:<hex>` options, with backslash continuations and comments. Anything else is refused: option
    lines (`-r`, `--find-links`, `--index-url`...), URL or path requirements, unpinned versions, markers that are
    not plain marker expressions, and comments ending in a backslash (which pip and a naive reader join
    differently). What pip is handed is then rebuilt from the parsed fields alone.
    """
    pins, bad = [], []
    for line in lock_lines(text):
        parsed = line if isinstance(line, tuple) else parse_pin(line)
        (bad if isinstance(parsed, tuple) else pins).append(parsed)
    return pins, bad


def lock_lines(text):
    """Logical lines, continuations joined and comments dropped as pip does; a comment ending in `\\` is refused."""
    import re

    comment = re.compile(r"(^|\s)#.*$")
    pending = []
    for raw in text.splitlines():
        code = comment.sub("", raw)
        if code != raw and raw.rstrip().endswith("\\"):
            yield raw.strip(), "is a comment that ends in a backslash (pip would not join it with the next line)"
            continue
        code = code.rstrip()
        pending.append(code[:-1] if code.endswith("\\") else code)
        if not code.endswith("\\"):
            line, pending = " ".join(" ".join(pending).split()), []
            if line:
                yield line
    if pending and " ".join(pending).strip():
        yield " ".join(" ".join(pending).split())


def parse_pin(line):
    """One logical lock line -> Pin, or (line without its hashes, reason)."""
    import re

    requirement, dashes, options = line.partition(" --")
    shown = requirement.strip()
    if shown.startswith("-"):
        return line, "is an option, not a pin (a lock holds only `name==version` lines with hashes)"
    hashes = set()
    for option in (dashes.strip() + options).split():
        match = re.fullmatch(r"--hash=sha256:([0-9a-fA-F]{64})", option)
        if not match:
            return shown, f"has the option `{option}`; only --hash=sha256:<64 hex digits> is allowed"
        hashes.add(match.group(1).lower())
    spec, semicolon, marker = requirement.partition(";")
    match = re.fullmatch(r"\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(\[[A-Za-z0-9._,\s-]*\])?"
                         r"\s*==\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)\s*", spec)
    if not match:
        if "@" in spec or "://" in spec or "/" in spec:
            return shown, "is a URL or path requirement, not a pin from requirements/"
        return shown, "is not pinned with =="
    if semicolon and not plain_marker(marker):
        return shown, "has a marker that is not a plain marker expression"
    if not hashes:
        return shown, "has no --hash=sha256"
    name, extras, version = match.groups()
    extras = "[" + ",".join(part.strip() for part in extras[1:-1].split(",") if part.strip()) + "]" if extras else ""
    return Pin(canonical_name(name), version, hashes, " ".join(marker.split()), extras)


def plain_marker(marker):
    """Whether `marker` is made only of PEP 508 marker tokens (names, operators, quoted strings, parentheses)."""
    import re

    token = re.compile(r"\s*(?:\(|\)|===|==|!=|<=|>=|~=|<|>|[A-Za-z_][A-Za-z0-9_.]*|\"[^\"]*\"|'[^']*')")
    position, marker = 0, marker.rstrip()
    while position < len(marker):
        match = token.match(marker, position)
        if not match:
            return False
        position = match.end()
    return bool(marker.strip())


def canonical_name(name):
    """PEP 503 normalization (runs of -, _ and . become one -), done without `packaging` on purpose."""
    result, previous_separator = [], False
    for char in name.strip().lower():
        separator = char in "-_."
        if not (separator and previous_separator):
            result.append("-" if separator else char)
        previous_separator = separator
    return "".join(result)


def read_targets():
    """The Python versions the lock was made for, from its `# targets:` header line."""
    try:
        with open(LOCK, encoding="utf-8-sig") as handle:
            for line in handle:
                if line.startswith("# targets:"):
                    return line.split(":", 1)[1].split()
    except (OSError, UnicodeDecodeError):
        pass
    return None


def check_interpreter(targets):
    running = "%d.%d" % sys.version_info[:2]
    if targets is not None and running not in targets:
        error(f"Python {running} ({sys.executable}) is not a target of requirements.txt "
              f"(targets: {' '.join(targets)}). Run `make ve PYTHON=<path of a Python {targets[-1]}>`, "
              "or add the version to TARGET_PYTHONS and run `make freeze`.")


def check_seed(pins):
    """((path, sha256) of the verified pip wheel that seeds the ve, or None; problems).

    The seed is the lock's pip: when the lock pins pip, the seed's recorded sha256 must be one of its hashes, so a
    swapped seed cannot hide behind a SHA256SUMS changed to match it.
    """
    restore = "Restore it with `git checkout -- virtualenv_support`."
    problems = []
    if not os.path.isfile(VIRTUALENV_PY):
        problems.append(f"{VIRTUALENV_PY} is missing. Restore it with `git checkout -- virtualenv.py`.")
    recorded = read_seed_sums()
    if recorded is None:
        return None, problems + [f"{SEED_SUMS} is missing. {restore}"]
    wheels = [name for name in recorded if name.startswith("pip-") and name.endswith(".whl")]
    if len(wheels) != 1:
        return None, problems + [f"{SEED_SUMS} must record exactly one pip wheel (found {len(wheels)}). {restore}"]
    path = os.path.join(SEEDS, wheels[0])
    if not os.path.isfile(path):
        return None, problems + [f"seed wheel {path} is missing. {restore}"]
    digest = recorded[wheels[0]]
    locked = [pin for pin in pins if pin.name == "pip"]
    if locked and not any(digest in pin.hashes for pin in locked):
        return None, problems + [
            f"virtualenv_support/{wheels[0]} is not the lock's pip: its recorded sha256 {digest} is not a hash of "
            f"{' or '.join(map(str, locked))} in requirements.txt. Restore both with "
            "`git checkout -- virtualenv_support requirements.txt`."]
    mismatch = verify_file(path, {digest}, "virtualenv_support/SHA256SUMS",
                           "restore it with `git checkout -- virtualenv_support`")
    return (None, problems + [mismatch]) if mismatch else ((path, digest), problems)


def read_seed_sums():
    """{file name: sha256} from SHA256SUMS (hex in either case, as `sha256sum -c` accepts), or None if missing."""
    try:
        with open(SEED_SUMS, encoding="utf-8-sig") as handle:
            lines = [line.split() for line in handle if line.strip() and not line.startswith("#")]
    except OSError:
        return None
    return {fields[1].lstrip("*"): fields[0].lower() for fields in lines if len(fields) == 2}


def verify_file(path, expected, source, fix):
    """None if path's sha256 is one of `expected`, else the problem, with both hashes."""
    actual = file_sha256(path)
    if actual in expected:
        return None
    return (f"{os.path.relpath(path, ROOT)} does not match {source}: expected sha256 "
            f"{' or '.join(sorted(expected))}, got {actual}. The file was changed or corrupted: {fix}.")


def check_artifacts(pins):
    """Problems: each pin needs a file in requirements/ with its name, its version and a sha256 the lock allows.

    Matching by name and version as well as by hash, as pip selects: a renamed copy or a backup with the same bytes
    (`x.whl.orig`) is not the pin's artifact.
    """
    by_pin = {}
    for path in list_files(WHEELHOUSE):
        key = artifact_pin(os.path.basename(path))
        if key and os.path.isfile(path):
            by_pin.setdefault(key, []).append(path)
    problems = []
    for pin in pins:
        candidates = by_pin.get((pin.name, release(pin.version)), [])
        mismatches = [verify_file(path, pin.hashes, f"the hashes of {pin} in requirements.txt",
                                  f"restore it with `git checkout -- requirements/{os.path.basename(path)}`")
                      for path in candidates]
        if candidates and all(mismatches):
            problems += mismatches
        elif not candidates:
            problems.append(f"requirements/ has no artifact for {pin} (pinned in requirements.txt). Restore it with "
                            "`git checkout -- requirements/`; if git has no copy, run `make freeze` (needs the index).")
    return problems


def artifact_pin(filename):
    """(name, version) of a wheel (`name-version[-build]-py-abi-platform.whl`) or sdist file name, else None."""
    if filename.endswith(".whl"):
        parts = filename[:-len(".whl")].split("-")
        return (canonical_name(parts[0]), release(parts[1])) if len(parts) in (5, 6) else None
    for suffix in (".tar.gz", ".zip"):
        if filename.endswith(suffix):
            name, dash, version = filename[:-len(suffix)].rpartition("-")
            return (canonical_name(name), release(version)) if dash and name else None
    return None


def release(version):
    """A version for comparison, as pip compares them in the cases file names meet: case, and trailing `.0`s."""
    version = version.lower()
    while version.endswith(".0") and version.count(".") > 0:
        version = version[:-2]
    return version


LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\n"


def lfs_pointers(directories=(WHEELHOUSE, SEEDS)):
    """The files that are Git LFS pointers (a clone made without Git LFS, or before `git lfs pull`)."""
    found = []
    for path in (path for directory in directories for path in list_files(directory)):
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

    names = ", ".join(os.path.relpath(path, ROOT) for path in pointers[:3]) + (" ..." if len(pointers) > 3 else "")
    return [f"{len(pointers)} file(s) in requirements/ or virtualenv_support/ are Git LFS pointers, not the files "
            f"({names}): this clone was made without Git LFS. Git LFS is needed: install it (`git lfs version` "
            f"must work; e.g. `apt-get install git-lfs`), then fetch the files with "
            f"`cd {shlex.quote(ROOT)} && git lfs install --local && git lfs pull`."]


def virtualenv_py_problems():
    """virtualenv.py whole, before it runs: a damaged copy would fail inside Python, far from the cause.

    The header records the sha256 of the decoded payload; the payload must match it and the file must compile (a
    truncated file loses its closing quotes, and Python would report a SyntaxError deep inside it).
    """
    import base64
    import binascii
    import re

    fix = ("Restore it with `git checkout -- virtualenv.py` (or regenerate it with `make freeze-upgrade`), then run "
           "`make check`.")
    try:
        with open(VIRTUALENV_PY, "rb") as handle:
            data = handle.read()
    except OSError:
        return []  # a missing file is reported by check_seed
    recorded = re.search(rb"^# Payload: .*\n#\s+sha256:([0-9a-f]{64})$", data, re.MULTILINE)
    encoded = re.search(rb'^PAYLOAD = b"""\n(.*?)"""\n', data, re.MULTILINE | re.DOTALL)
    if not recorded or not encoded:
        return [f"virtualenv.py is damaged: its header has no payload sha256, or its payload is cut short "
                f"(truncated?). {fix}"]
    try:
        actual = hashlib.sha256(base64.b64decode(encoded.group(1))).hexdigest()
    except (binascii.Error, ValueError):
        actual = "(not valid base64)"
    if actual != recorded.group(1).decode():
        return [f"virtualenv.py is damaged: its payload does not match the sha256 in its header (expected "
                f"{recorded.group(1).decode()}, got {actual}). {fix}"]
    try:
        compile(data, VIRTUALENV_PY, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        return [f"virtualenv.py is damaged: Python cannot read it ({exc.__class__.__name__} at line "
                f"{getattr(exc, 'lineno', '?')}). {fix}"]
    return []


# What a full disk or an exhausted quota raises, in this process or in a child's output.
NO_SPACE_ERRNOS = (28, 122)  # ENOSPC, EDQUOT
NO_SPACE_TEXTS = ("No space left on device", "Disk quota exceeded")


def disk_full_message(ve):
    """Remove every slot of ours that `ve` does not point at (the half-built one), then say where and how much.

    The disk is then as it was before the build, and the message gives the space a build needs: the size of the
    current build when there is one, else an estimate from the wheels.
    """
    import shutil

    current = our_slot(ve)
    for path in [slot_path(ve, slot) for slot in SLOTS] + [scratch_path(ve)]:
        if path != current and is_ours(path):
            remove(path)
    where = os.path.dirname(ve)
    free = shutil.disk_usage(where).free
    needed = tree_bytes(current) if current else 4 * tree_bytes(WHEELHOUSE) + 30 * 10**6
    keep = (f"{os.path.basename(ve)} still points at the previous build ({os.path.basename(current)}), which stays. "
            if current else "")
    return (f"the disk is full: no space left on the file system of {where} ({mb(free)} free now, after removing "
            f"the half-built slot). A build needs about {mb(needed)} there, besides the previous build. {keep}"
            f"Free some space, or build without keeping the previous build: `make ve ONE_SLOT=1` (or `make clean` "
            f"first), then `make ve` again.")


def mb(size):
    return f"{size / 10**6:.0f} MB"


def tree_bytes(top):
    """Disk bytes used under `top` (blocks, as df counts them), symlinks not followed."""
    total = 0
    for directory, _, filenames in os.walk(top):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                pass
    return total


def drop_builds(ve):
    """`--one-slot`: remove our builds before building, for a disk with room for one ve only.

    Until the new build is done there is no working ve; a failed build leaves none (the next `make ve` builds one).
    """
    for path in [slot_path(ve, slot) for slot in SLOTS]:
        if is_ours(path):
            step(f"removing {os.path.basename(path)} first (ONE_SLOT: room for one build only)")
            remove(path)


def pick_slot(ve):
    """The slot `ve` does not resolve to, emptied: ours is wiped, anything else there is moved aside."""
    current = os.path.realpath(ve) if os.path.islink(ve) else None
    path = next(path for path in (slot_path(ve, slot) for slot in SLOTS) if os.path.realpath(path) != current)
    if is_ours(path):
        remove(path)
    elif os.path.lexists(path):
        move_aside(path)
    os.mkdir(path)
    with open(os.path.join(path, MARKER), "w") as handle:
        handle.write(MARKER_TEXT)
    return path


def fresh_dir(path):
    """Our scratch directory, emptied of a killed run's leftovers (it carries our marker, like a slot)."""
    if is_ours(path):
        remove(path)
    elif os.path.lexists(path):
        move_aside(path)
    os.mkdir(path)
    with open(os.path.join(path, MARKER), "w") as handle:
        handle.write(MARKER_TEXT)
    return path


def move_aside(path):
    """Keep what is not ours under a name that says so; never delete it. Returns the new path."""
    for number in range(1, 1000):
        aside = f"{path}.moved-aside" + (f"-{number}" if number > 1 else "")
        if not os.path.lexists(aside):
            break
    os.rename(path, aside)
    step(f"{os.path.basename(path)} was not made by make ve: moved it to {aside} (nothing was deleted)")
    return aside


def remove(path):
    import shutil

    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def hermetic_env(scratch):
    """The caller's environment minus everything that steers Python, pip or virtualenv.

    HOME and the XDG dirs point into a private scratch dir, so no user-level config is found;
    PIP_CONFIG_FILE=os.devnull makes pip skip every config file, the global ones included. TMPDIR too: what
    children leave in it when killed is removed with the scratch dir by the next run.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(AMBIENT_PREFIXES) and key not in AMBIENT_NAMES}
    tmp = os.path.join(scratch, "tmp")
    os.makedirs(tmp, exist_ok=True)
    env.update({
        "HOME": scratch,
        "TMPDIR": tmp,
        "XDG_CONFIG_HOME": os.path.join(scratch, "config"),
        "XDG_CACHE_HOME": os.path.join(scratch, "cache"),
        "XDG_DATA_HOME": os.path.join(scratch, "data"),
        "XDG_CONFIG_DIRS": os.path.join(scratch, "etc"),
        "PIP_CONFIG_FILE": os.devnull,
        "VIRTUALENV_CONFIG_FILE": os.devnull,
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "SOURCE_DATE_EPOCH": SOURCE_DATE_EPOCH,
        "LC_ALL": "C.UTF-8",
    })
    return env


def spawn(argv, env, capture=True):
    """Run argv to its end; if we are interrupted meanwhile, stop it first, so nothing writes after we leave."""
    import subprocess

    output = subprocess.PIPE if capture else subprocess.DEVNULL
    child = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=output,
                             stderr=subprocess.STDOUT, text=True, errors="replace")
    try:
        stdout, _ = child.communicate()
    except BaseException:
        child.terminate()
        try:
            child.wait(timeout=10)
        except BaseException:
            child.kill()
            child.wait()
        raise
    return child.returncode, stdout or ""


def run(argv, env, what):
    """Run argv quietly; on failure show the quoted command and its output, then stop."""
    import shlex

    returncode, stdout = spawn(argv, env)
    if returncode != 0 and any(text in stdout for text in NO_SPACE_TEXTS):
        raise OSError(NO_SPACE_ERRNOS[0], NO_SPACE_TEXTS[0])  # main names the disk; the child's output adds nothing
    if returncode != 0:
        # Indented, so the child's own `ERROR:` lines (pip prints some) do not read as more errors of ours.
        print("".join(f"    {line}\n" for line in stdout.rstrip().splitlines()), end="", file=sys.stderr)
        error(f"{what} failed (exit {returncode}): {shlex.join(argv)}. "
              "See the output above; the previous ve is untouched.")
    return stdout


def create_env(slot, scratch, env):
    step(f"creating {os.path.relpath(slot, ROOT)} with virtualenv.py for Python {python_version()}")
    # --no-venv-redirect: virtualenv would otherwise drop a PEP 832 `.venv` file beside a pyproject.toml.
    run([sys.executable, "-I", VIRTUALENV_PY, "--no-seed", "--no-download", "--no-periodic-update",
         "--no-venv-redirect", "--app-data", os.path.join(scratch, "app-data"), "--python", sys.executable, slot],
        env, "virtualenv")


def install(slot, seed, pins, scratch, env):
    """Unpack the verified seed pip into the ve, compile it, then let it install the whole lock in one run."""
    import re
    import shutil

    seed, recorded = seed
    runner = os.path.join(scratch, os.path.basename(seed))
    shutil.copyfile(seed, runner)  # a private copy, checked again: nobody can swap it between check and use
    mismatch = verify_file(runner, {recorded}, "virtualenv_support/SHA256SUMS", "run `make ve` again")
    if mismatch:
        error(mismatch)
    step(f"seeding {os.path.basename(seed)} from virtualenv_support/")
    seed_record = unpack_seed(slot, runner)
    compile_bytecode(slot, env)
    requirements = os.path.join(scratch, "requirements.txt")
    with open(requirements, "w", encoding="utf-8") as handle:
        for pin in pins:
            handle.write(f"{pin.line} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n")
    step(f"installing requirements.txt ({len(pins)} pins, those for this Python) from requirements/ "
         "(offline, hashes required)")
    run([python_in(slot), "-I", "-m", "pip", "install", "--isolated", "--no-index", "--find-links", WHEELHOUSE,
         "--no-deps", "--require-hashes", "--only-binary=:all:", "--no-cache-dir", "--disable-pip-version-check",
         "--no-input", "--quiet", "--no-compile", "-r", requirements], env, "pip install")
    # The seed is compiled already, unless the lock pinned another pip and pip replaced it.
    seed_dir = os.path.join(site_packages(slot), "pip") + os.sep
    compile_bytecode(slot, env, skip=re.escape(seed_dir) if os.path.exists(seed_record) else None)


def site_packages(slot):
    return os.path.join(slot, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")


def unpack_seed(slot, wheel):
    """Install pip by unpacking its pure-Python wheel (files, scripts, INSTALLER, RECORD); return RECORD's path.

    pip run from a zipped wheel cannot cache bytecode and compiles its own source on every run; unpacked into
    the ve it is compiled once, with everything else, and installs the lock from there.
    """
    import configparser
    import zipfile

    site = site_packages(slot)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        if any(name.startswith("/") or ".." in name.split("/") or ".data/" in name for name in names):
            error(f"{os.path.basename(wheel)} is not a plain pure-Python wheel. "
                  "Restore virtualenv_support/ with `git checkout virtualenv_support`.")
        archive.extractall(site)
        dist_info = next(name.split("/")[0] for name in names if name.endswith(".dist-info/RECORD"))
    entry_points = configparser.ConfigParser(interpolation=None)
    entry_points.read(os.path.join(site, dist_info, "entry_points.txt"), encoding="utf-8")
    scripts = dict(entry_points["console_scripts"])
    scripts["pip%d.%d" % sys.version_info[:2]] = scripts["pip"]  # pip adds this one itself when it installs pip
    lines = []
    for name, target in sorted(scripts.items()):
        module, _, function = target.partition(":")
        script = (f"{script_header(python_in(slot))}import sys\nfrom {module} import {function}\n\n"
                  f"if __name__ == \"__main__\":\n    sys.exit({function}())\n")
        lines.append(write_installed(os.path.join(slot, "bin", name), script, site, 0o755))
    lines.append(write_installed(os.path.join(site, dist_info, "INSTALLER"), "bootstrap.py\n", site, 0o644))
    record = os.path.join(site, dist_info, "RECORD")
    with open(record, "a", encoding="utf-8") as handle:
        handle.writelines(lines)
    return record


def script_header(python):
    """A shebang for `python`; through /bin/sh where the kernel cannot take the path (a space, or too long),
    which is also when pip's own installer writes this kind of header."""
    import shlex

    if " " not in python and len(python) <= 127:
        return f"#!{python}\n"
    return "#!/bin/sh\n" + "'''exec' " + shlex.quote(python) + ' "$0" "$@"\n' + "' '''\n"


def write_installed(path, text, site, mode):
    """Write a file the wheel does not carry; return its RECORD line (path relative to site-packages)."""
    import base64

    data = text.encode()
    with open(path, "wb") as handle:
        handle.write(data)
    os.chmod(path, mode)
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{os.path.relpath(path, site)},sha256={digest},{len(data)}\n"


def compile_bytecode(slot, env, skip=None):
    """Compile site-packages on every core, instead of pip's one file at a time (`skip`: a path regex).

    checked-hash .pyc files are the same bytes on every build. -S keeps site (and setuptools' .pth hook)
    from writing a timestamped .pyc of its own first; -f recompiles anything that did. A file that does not
    compile is skipped, as pip skips it, hence no exit status check.
    """
    argv = [python_in(slot), "-I", "-S", "-m", "compileall", "-f", "-qq", "-j0",
            "--invalidation-mode", "checked-hash", *(["-x", skip] if skip else []), site_packages(slot)]
    spawn(argv, env, capture=False)


def python_in(slot):
    return os.path.join(slot, "bin", "python")


def check_env(slot, env):
    step("checking installed requirements (pip check)")
    run([python_in(slot), "-I", "-m", "pip", "check", "--isolated", "--disable-pip-version-check"],
        env, "pip check")


def count_installed(slot):
    """Distributions in the new ve; lock lines whose markers exclude this Python are not among them."""
    lib = os.path.join(slot, "lib")
    return sum(name.endswith(".dist-info") for version in os.listdir(lib)
               for name in os.listdir(os.path.join(lib, version, "site-packages")))


def write_stamp(slot, key):
    with open(os.path.join(slot, STAMP), "w") as handle:
        handle.write(key + "\n")


def switch(ve, slot):
    """Point `ve` at the new slot with one rename, so readers see the old build or the new one, never neither."""
    link = f"{ve}.switching"
    if os.path.islink(link):
        os.unlink(link)  # a symlink left by a run killed mid-switch
    elif os.path.lexists(link):
        move_aside(link)
    os.symlink(os.path.basename(slot), link)
    if os.path.lexists(ve) and not is_our_link(ve):
        # A directory made by hand or by an older tool, or a link of the user's: kept, never replaced.
        move_aside(ve)
    os.replace(link, ve)


def is_our_link(path):
    """A symlink naming one of our slots (its target may be gone): the kind of link only we write."""
    ve = path[:-len(".switching")] if path.endswith(".switching") else path
    try:
        return os.readlink(path) in {os.path.basename(slot_path(ve, slot)) for slot in SLOTS}
    except OSError:
        return False


def clean(ve, name):
    """`make clean`: remove the ve link, its slots, scratch and lock if they are ours; never through the link."""
    removed, kept = [], []
    with exclusive_lock(ve):
        try:
            for path in [ve, f"{ve}.switching"] + [slot_path(ve, slot) for slot in SLOTS] + [scratch_path(ve)]:
                if not os.path.lexists(path):
                    continue
                ours = is_our_link(path) if path in (ve, f"{ve}.switching") else is_ours(path)
                if ours:
                    remove(path)
                    removed.append(os.path.basename(path))
                else:
                    kept.append(os.path.basename(path))
            remove(lock_path(ve))
        except PermissionError as exc:
            error(permission_message(exc, ve))
    print(f"removed {', '.join(removed) or 'nothing (no build of make ve here)'}")
    if kept:
        print(f"kept {', '.join(kept)}: not made by make ve (delete it yourself if you no longer need it)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
