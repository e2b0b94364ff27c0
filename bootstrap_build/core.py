"""What `make ve` does beyond the no-op of bootstrap.py: read and check the inputs, build into a slot, check what
was installed, switch, clean and verify. Standard library only. bootstrap.py loads it only when a build (or clean,
check, verify) is needed, by compiling this tracked source itself (bootstrap.from_source), so no bytecode decides
what runs. (One module for now: issue 25 splits it by job.)"""

import fcntl
import hashlib
import os
import sys
import time

import bootstrap
from bootstrap import (  # the entry point's paths and the checks the no-op shares
    BUILD_LOCK, DELETING, LOCK, MARKER, MARKER_TEXT, ROOT, SEEDS, SEED_SUMS, SLOTS, STAMP, SWITCH_JOURNAL,
    VIRTUALENV_PY, WHEELHOUSE, built_site_packages, drift, error, file_sha256, find_python, finished,
    installed_dists, is_our_link, is_ours, leftovers, list_files, lock_path, looks_whole, our_slot, python_version,
    read_stamp, scratch_path, slot_path, slot_paths, step, switch_pending,
)

# Fixed, so nothing a build runs can stamp the time into what it writes (under it, py_compile and pip
# default to hash-based .pyc files); with checked-hash compilation, rebuilds are byte-identical.
SOURCE_DATE_EPOCH = "315532800"
AMBIENT_PREFIXES = ("PIP_", "VIRTUALENV_", "UV_", "PYTHON", "CONDA_", "PIPENV_", "PDM_", "POETRY_", "XDG_")
# The process's umask, read by build() (reading it means setting it): the modes a cold build gives its files.
UMASK = [0o022]
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


def locked_build(args, ve, started):
    """`make ve` past the no-op: under the ve's lock and with the inputs settled, switch to the other slot when it
    holds this build, else build; one ERROR line for what can go wrong on the way."""
    try:
        stop_on_signals()
        with exclusive_lock(ve), settled_inputs():
            inputs = bootstrap.read_inputs(ve)  # again: a switch completed meanwhile changes the inputs
            key = bootstrap.digest_of(inputs)
            if not args.force and bootstrap.is_current(ve, key):  # built meanwhile by a concurrent `make ve`
                return bootstrap.report_up_to_date(args.ve)
            reason = rebuild_reason(ve, inputs, args.force)
            ready = None if args.force else finished_slot(ve, key)
            if ready:
                remove_leftovers(ve)
                switch(ve, ready)
                step(f"switched {args.ve} to {os.path.basename(ready)}, which already holds the build for "
                     f"these inputs ({reason}); nothing rebuilt")
                return 0
            check_interpreter(read_targets())
            step(f"building {args.ve}: {reason}")
            count, pins = build(ve, key, inputs, args.one_slot)
    except KeyboardInterrupt:
        error(f"interrupted; {describe_ve(ve, args.ve)}. Run `make ve` again.")
    except PermissionError as exc:
        error(permission_message(exc, ve))
    except BrokenPipeError:
        error(f"the output was closed (piped into `head`?), so the build stopped; {describe_ve(ve, args.ve)}.")
    except OSError as exc:  # a read-only or full file system, a path that is not a directory
        if exc.errno in NO_SPACE_ERRNOS:
            error(disk_full_message(ve))
        where = exc.filename or ve
        error(f"cannot write {where}: {exc.strerror}. Make {os.path.dirname(where)} writable or pick another VE=...")
    seconds = time.monotonic() - started
    step(f"done: {args.ve} ready, Python {python_version()} ({sys.executable}), {count} packages installed "
         f"(of the lock's {pins} pins, those for this Python), {seconds:.1f} s")
    return 0


def tidy(ve):
    """The no-op removes leftovers too (a killed run's scratch, a half-built slot), unless a build of this ve is
    running: what is beside the ve then is that build's, and the lock says so without waiting."""
    if leftovers(ve):
        stop_on_signals()
        lock = exclusive_lock(ve, wait=False)
        if lock:
            with lock:
                remove_leftovers(ve)


def exclusive_lock(ve, wait=True):
    """Serialize builds and cleans of one ve: a second `make ve` waits, then finds the first one's result.

    The lock file is never unlinked (a waiter would hold a lock on a file nobody else sees); should it be replaced
    anyway, the holder notices that the file it locked is no longer the one at the path and locks again.
    wait=False: None when someone else holds it."""
    path = lock_path(ve)
    while True:
        try:
            os.makedirs(os.path.dirname(ve), exist_ok=True)
            # flock needs no write access: a lock file left by another user (sudo make ve) still serves.
            handle = open(path, "r") if os.path.exists(path) else open(path, "a")
        except PermissionError as exc:
            error(permission_message(exc, ve))
        except OSError as exc:
            error(f"cannot write {path}: {exc.strerror}. Make {os.path.dirname(ve)} writable or pick another VE=...")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                handle.close()
                return None
            step(f"waiting for {os.path.basename(path)}: another `make ve` or `make clean` of this ve is running")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            here = os.stat(path)
        except FileNotFoundError:
            here = None
        mine = os.fstat(handle.fileno())
        if here and (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
            return LockedFile(handle)
        handle.close()


class LockedFile:
    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
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
    for path in [ve, lock_path(ve), f"{ve}.switching"] + slot_paths(ve) + leftovers(ve):
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


def finished_slot(ve, key):
    """The other slot, if it holds our finished, unchanged build for `key` (after `make ve PYTHON=...` and back)."""
    current = os.path.realpath(ve) if os.path.islink(ve) else None
    for slot in (slot_path(ve, slot) for slot in SLOTS):
        stamp = read_stamp(slot) if finished(slot) and os.path.realpath(slot) != current else None
        if stamp and stamp["key"] == key and not drift(slot, stamp):
            return slot
    return None


def rebuild_reason(ve, inputs, force):
    """Why `ve` is (re)built, in words: the first line a user reads when `make ve` does more than nothing."""
    if force:
        return "FORCE=1"
    if not os.path.lexists(ve):
        return "there is no ve yet"
    stamp = read_stamp(ve) if our_slot(ve) and looks_whole(ve) else None
    if stamp is None:
        return "it holds no finished build of make ve"
    if not stamp["inputs"]:
        return "it was built by an older bootstrap.py"
    reasons = []
    for label, value in inputs:
        was = stamp["inputs"].get(label)
        if was == value:
            continue
        if label == "python":
            reasons.append(f"interpreter {' '.join((was or '?').split()[:2])} -> {' '.join(value.split()[:2])}")
        elif label == "ve":
            reasons.append(f"the checkout was moved or copied (the ve was built at {was})")
        elif was is None:
            reasons.append(f"{label} added")
        elif value == "missing":
            reasons.append(f"{label} removed")
        else:
            reasons.append(f"{label} changed")
    reasons += [f"{label} removed" for label in stamp["inputs"] if label not in dict(inputs)]
    changed = drift(ve, stamp)
    if changed:
        reasons.append(f"packages were installed or removed inside it by hand ({changed}); add what you need to "
                       "requirements.in and run `make freeze` instead")
    return "; ".join(reasons) or "its build did not finish"


def verify(ve, name):
    """`make verify`: every installed file against its RECORD hash and mode, every .pyc against what compiling its
    verified source gives, and the distributions against the build's."""
    import base64
    import csv

    slot = our_slot(ve)
    stamp = read_stamp(slot) if slot and finished(slot) else None
    if stamp is None:
        error(f"{name} holds no finished build of make ve to verify. Run `make ve` first.")
    site = built_site_packages(slot)
    problems, checked, sources, listed = [], 0, {}, set()
    # A build gives every file 666 or 777 less its umask (the stamp records it; older stamps do not).
    modes = {0o666 & ~stamp["umask"], 0o777 & ~stamp["umask"]} if stamp["umask"] is not None else None
    changed = drift(slot, stamp)
    if changed:
        problems.append(f"distributions installed or removed by hand since the build: {changed}")
    for dist in installed_dists(slot):
        try:
            with open(os.path.join(site, dist, "RECORD"), encoding="utf-8", newline="") as handle:
                rows = list(csv.reader(handle))
        except OSError as exc:
            problems.append(f"{dist}/RECORD cannot be read: {exc.strerror}")
            continue
        for row in rows:
            if len(row) < 2 or not row[1].startswith("sha256="):
                continue
            path = os.path.normpath(os.path.join(site, row[0]))
            listed.add(path)
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                problems.append(f"{os.path.relpath(path, slot)} is missing (listed by {dist})")
                continue
            checked += 1
            actual = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            if actual != row[1][len("sha256="):]:
                problems.append(f"{os.path.relpath(path, slot)} was changed (its RECORD in {dist} says otherwise)")
                continue
            sources[path] = data
            if modes and os.stat(path).st_mode & 0o777 not in modes:
                problems.append(f"{os.path.relpath(path, slot)} has mode {os.stat(path).st_mode & 0o777:o}, which no "
                                f"build under its umask {stamp['umask']:03o} gives")
    compiled, bytecode_problems = verify_bytecode(site, sources, listed)
    problems += [f"{os.path.relpath(path, slot)} {problem}" for path, problem in bytecode_problems]
    for problem in problems:
        print(f"  - {problem}")
    if problems:
        error(f"{name} differs from its build in {len(problems)} place(s), listed above. Never change the ve by "
              "hand: `make ve FORCE=1` rebuilds it from the lock.")
    step(f"verify: {checked} files of {len(installed_dists(slot))} distributions in {name} match their RECORD, and "
         f"{compiled} .pyc files what compiling their source gives")
    return 0


def verify_bytecode(site, sources, listed):
    """(how many .pyc match, [(path, problem)]): every .pyc under site that no RECORD lists (a build writes them:
    pip runs with --no-compile) must be the checked-hash bytecode of its verified source, as the compile workers
    make it (the seed's named by its place in site-packages, the others by their path): the same header, and a
    code object equal to the one compiling gives (equal code, constants, names, line table). Not the bytes
    themselves: marshal marks objects shared by reference counts, which depend on what else the process holds."""
    import marshal
    from importlib.util import MAGIC_NUMBER, source_from_cache, source_hash

    matched, problems = 0, []
    for directory, _, names in os.walk(site):
        if os.path.basename(directory) != "__pycache__":
            continue
        for name in sorted(names):
            pyc = os.path.join(directory, name)
            if pyc in sources or not name.endswith(".pyc"):
                continue  # a .pyc a wheel ships is in its RECORD, checked by hash
            try:
                source = source_from_cache(pyc)
            except ValueError:
                problems.append((pyc, "is bytecode of no module"))
                continue
            if source not in sources:
                if source not in listed:  # a changed or missing source is named already
                    problems.append((pyc, "is bytecode whose source no RECORD lists"))
                continue
            with open(pyc, "rb") as handle:
                data = handle.read()
            try:
                code = compile(sources[source], source, "exec", dont_inherit=True)
                found = marshal.loads(data[16:])
            except (SyntaxError, ValueError, EOFError, TypeError):
                code = found = None
            if data[:16] == MAGIC_NUMBER + b"\3\0\0\0" + source_hash(sources[source]) and code and code == found:
                matched += 1
            else:
                problems.append((pyc, "is not what compiling its source gives (changed after the build)"))
    return matched, problems


def describe_ve(ve, name):
    """What `ve` really points at now, for the message after an interrupted build."""
    slot = our_slot(ve)
    if slot and finished(slot):
        return f"{name} still points at the previous finished build ({os.path.basename(slot)})"
    if os.path.lexists(ve):
        return f"{name} is as it was before this run (no finished build of make ve)"
    return f"there is no {name} yet"


def build(ve, key, inputs, one_slot=False):
    """Build into the free slot and switch `ve` to it; return (packages installed, pins in the lock)."""
    UMASK[0] = os.umask(0o022)  # reading it means setting it: put back at once
    os.umask(UMASK[0])
    pins, seed, problems = verify_inputs()
    if problems:
        more = len(problems) - 1
        error(problems[0] + (f" ({more} more problem(s): `make check` lists them all.)" if more else ""))
    remove_leftovers(ve)
    if one_slot:
        drop_builds(ve)
    scratch = fresh_dir(scratch_path(ve))
    remover = set_aside_old_build(ve, scratch)
    try:
        slot = pick_slot(ve)
        env = hermetic_env(scratch)
        # The seed unpacked and compiled, and the wheels' modules compiled, while virtualenv runs.
        seed_tree = SeedTree(seed, scratch)
        with CompilePool(scratch, env) as pool:
            pool.start(slot, seed_tree, pins)
            create_env(slot, scratch, env)
            pool.ve_made()
            report, dependencies = install(slot, seed_tree, pins, scratch, env, pool)
        check_env(slot, pins, report, dependencies)
    finally:
        if remover:
            remover.join()
        remove(scratch)
    write_stamp(slot, key, inputs)
    switch(ve, slot)
    exclude_from_git(ve)
    return len(installed_dists(slot)), len(pins)


def verify_inputs():
    """(pins, seed wheel, problems): everything a build trusts, checked before anything is touched."""
    pins, problems = read_lock()
    pointers = lfs_pointer_problems()
    if pointers:  # every hash check would fail on the pointers; the one fix is fetching the real files
        return pins, None, problems + pointers
    seed, seed_problems = check_seed(pins)
    problems += seed_problems + virtualenv_py_problems() + check_artifacts(pins) + source_problems(pins)
    return pins, seed, problems


def check_inputs():
    """`make check` without a ve: list every problem bootstrap.py can see, with the fix for each."""
    with settled_inputs():
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

    It reads lines as pip does (logical_lines), then accepts exactly what pip-compile writes for a hashed lock:
    `name[extras]==version [; marker]` followed by `--hash=sha256:<hex>` options. Anything else is refused: option
    lines (`-r`, `--find-links`, `--index-url`...), URL or path requirements, unpinned versions, markers outside
    PEP 508's grammar, `$` (pip fills `${VAR}` in from the environment), and comments ending in a backslash (a
    reviewer and pip read those differently). What pip is handed is then rebuilt from the parsed fields alone.
    """
    import re

    pins, bad = [], []
    for raw in text.splitlines():
        if re.search(COMMENT, raw) and raw.endswith("\\"):
            bad.append((raw.strip(), "is a comment that ends in a backslash (a reader may take the next line for "
                                     "part of the comment; pip does not, or does, depending on what precedes it)"))
    for _, _, line in logical_lines(text):
        parsed = (line, "holds `$`, which pip replaces from the environment (`${VAR}`)") if "$" in line \
            else parse_pin(line)
        (bad if isinstance(parsed, tuple) else pins).append(parsed)
    return pins, bad


# A comment, as pip's requirement file reader finds one: `#` at the start of a line or after white space.
COMMENT = r"(^|\s+)#.*$"


def logical_lines(text):
    """(first line number, last line number, line) of each logical line of a requirements file, read in pip 26.3's
    order (req_file.py): first continuations are joined (a line ending in `\\` goes on into the next, with the
    backslashes at both of its ends removed and nothing put between; a line whose first non-blank character is `#`
    never goes on, even ending in `\\`), then comments are removed, then white space at both ends, and empty lines
    are dropped. The one reader of the lock and of requirements.in, for bootstrap.py and every tool; `${VAR}` is
    left as it is (pip would expand it): callers refuse it."""
    import re

    joined, pending, first = [], [], None
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        comment_line = re.match(COMMENT, line)
        if line.endswith("\\") and not comment_line:
            first = first if pending else number
            pending.append(line.strip("\\"))
            continue
        line = " " + line if comment_line else line  # so that the comment is still found once joined
        joined.append((first if pending else number, number, "".join(pending) + line))
        pending = []
    if pending:
        joined.append((first, len(lines), "".join(pending)))
    for first, last, line in joined:
        line = re.sub(COMMENT, "", line).strip()
        if line:
            yield first, last, line


def parse_pin(line):
    """One logical lock line -> Pin, or (line without its hashes, reason)."""
    import re

    split = re.search(r"\s--", line)
    requirement, options = (line[:split.start()], line[split.start():]) if split else (line, "")
    shown = requirement.strip()
    if shown.startswith("-"):
        return line, "is an option, not a pin (a lock holds only `name==version` lines with hashes)"
    hashes = set()
    for option in options.split():
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
    marker = marker_text(marker) if semicolon else ""
    if semicolon and marker is None:
        return shown, "has a marker outside PEP 508's grammar"
    if not hashes:
        return shown, "has no --hash=sha256"
    name, extras, version = match.groups()
    extras = "[" + ",".join(part.strip() for part in extras[1:-1].split(",") if part.strip()) + "]" if extras else ""
    return Pin(canonical_name(name), version, hashes, marker, extras)


MARKER_VARIABLES = ("python_version", "python_full_version", "os_name", "sys_platform", "platform_release",
                    "platform_system", "platform_version", "platform_machine", "platform_python_implementation",
                    "implementation_name", "implementation_version", "extra", "extras", "dependency_groups")


MARKER_OPERATORS = ("===", "==", "!=", "<=", ">=", "~=", "<", ">", "in", "not in")


def marker_text(marker):
    """The marker with white space outside its quoted strings made single (inside them it is part of the value),
    or None when it is not a PEP 508 marker: `value op value` comparisons of marker variables and quoted strings,
    joined by `and`/`or`, in parentheses where wanted. A strict subset of what `packaging` accepts."""
    import re

    tokens = re.findall(r"\s*(\(|\)|===|==|!=|<=|>=|~=|<|>|not\s+in\b|[A-Za-z_][A-Za-z0-9_.]*|\"[^\"]*\"|'[^']*'|\S)",
                        marker)
    tokens = [" ".join(token.split()) for token in tokens]  # `not  in` is the operator `not in`
    position = 0

    def take(*wanted):
        nonlocal position
        if position < len(tokens) and tokens[position] in wanted:
            position += 1
            return True
        return False

    def value():
        nonlocal position
        if position < len(tokens) and (tokens[position] in MARKER_VARIABLES or tokens[position][:1] in "\"'"):
            position += 1
            return True
        return False

    def expression():
        while True:
            if take("("):
                if not expression() or not take(")"):
                    return False
            elif not (value() and any(take(op) for op in MARKER_OPERATORS) and value()):
                return False
            if not (take("and") or take("or")):
                return True

    if not tokens or not expression() or position != len(tokens):
        return None
    parts = re.split(r"(\"[^\"]*\"|'[^']*')", marker.strip())
    return "".join(part if index % 2 else re.sub(r"\s+", " ", part) for index, part in enumerate(parts))


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
    if targets is None or running in targets:
        return
    found = [(version, find_python(version)) for version in targets]
    found = [f"{version} ({path})" for version, path in found if path]
    use = (f"Found here: {', '.join(found)}; run `make ve PYTHON=<one of those paths>`" if found else
           f"No Python {' or '.join(targets)} was found here (PATH, pyenv): install one, then run "
           f"`make ve PYTHON=<its path>`")
    if sys.version_info < (3, 10):
        error(f"Python {running} ({sys.executable}) is too old for this convention (virtualenv.py and pip need "
              f"3.10 or newer) and not a target of requirements.txt (targets: {' '.join(targets)}). {use}.")
    error(f"Python {running} ({sys.executable}) is not a target of requirements.txt (targets: {' '.join(targets)}). "
          f"{use}; or add {running} to the targets with a ve that runs: `make freeze PYTHON=<path of a Python "
          f"{targets[-1]}> "
          f"TARGET_PYTHONS=\"{' '.join(sorted(targets + [running], key=release_key))}\"`.")


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
    by_pin = artifacts_by_pin()
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


def artifacts_by_pin():
    """{(name, release): [its files in requirements/]}, by file name as pip finds them."""
    by_pin = {}
    for path in list_files(WHEELHOUSE):
        key = artifact_pin(os.path.basename(path))
        if key and os.path.isfile(path):
            by_pin.setdefault(key, []).append(path)
    return by_pin


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


# (sha256 of virtualenv.py, its decoded payload), once virtualenv_py_problems found them sound.
VERIFIED_PAYLOAD = []


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
    opening = b'\nPAYLOAD = b"""\n'
    at = data.find(opening)  # find(), not a regular expression: it would scan the 1.7 MB payload (18 ms)
    start = at + len(opening)
    end = data.find(b'"""\n', start)
    if not recorded or at < 0 or end < 0:
        return [f"virtualenv.py is damaged: its header has no payload sha256, or its payload is cut short "
                f"(truncated?). {fix}"]
    try:
        payload = base64.b64decode(data[start:end])
        actual = hashlib.sha256(payload).hexdigest()
    except (binascii.Error, ValueError):
        actual = "(not valid base64)"
    if actual != recorded.group(1).decode():
        return [f"virtualenv.py is damaged: its payload does not match the sha256 in its header (expected "
                f"{recorded.group(1).decode()}, got {actual}). {fix}"]
    VERIFIED_PAYLOAD[:] = [hashlib.sha256(data).hexdigest(), payload]
    try:  # the code around the payload (its lines kept blank, for the line numbers); the payload has its sha256
        compile(data[:start] + b"\n" * data.count(b"\n", start, end) + data[end:], VIRTUALENV_PY, "exec",
                dont_inherit=True)
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
    for path in slot_paths(ve):
        if path != current and is_ours(path):
            discard(path)
    for path in leftovers(ve):
        discard(path)
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
    for path in slot_paths(ve):
        if is_ours(path):
            step(f"removing {os.path.basename(path)} first (ONE_SLOT: room for one build only)")
            discard(path)


def set_aside_old_build(ve, scratch):
    """Move our build in the slot about to be rebuilt into the scratch dir (one rename) and delete it there in a
    thread, while the new build runs; return the thread to join, or None. Killed meanwhile, the next run's
    scratch cleanup deletes the rest."""
    import shutil
    import threading

    current = os.path.realpath(ve) if os.path.islink(ve) else None
    free = next(path for path in (slot_path(ve, slot) for slot in SLOTS) if os.path.realpath(path) != current)
    if not is_ours(free):
        return None
    aside = os.path.join(scratch, "old-build")
    os.rename(free, aside)
    remover = threading.Thread(target=shutil.rmtree, args=(aside,), kwargs={"ignore_errors": True}, daemon=True)
    remover.start()
    return remover


def pick_slot(ve):
    """The slot `ve` does not resolve to, emptied: ours is wiped, anything else there is moved aside."""
    current = os.path.realpath(ve) if os.path.islink(ve) else None
    free = next(path for path in (slot_path(ve, slot) for slot in SLOTS) if os.path.realpath(path) != current)
    return fresh_dir(free)


def remove_leftovers(ve):
    """Remove every leftover (see leftovers), and say what and how much; the caller holds the ve's lock."""
    found = leftovers(ve)
    if not found:
        return
    freed = sum(tree_bytes(path) for path in found)
    for path in found:
        discard(path)
    step(f"removed what an interrupted run left ({', '.join(map(os.path.basename, found))}): {mb(freed)} freed")


def discard(path):
    """Delete a directory of ours so that no interruption can leave part of it under its own name (where a
    half-deleted slot could pass for a build): one rename to a leftover name first, then the deletion."""
    if DELETING not in os.path.basename(path):
        number = 1
        while os.path.lexists(f"{path}{DELETING}{os.getpid()}-{number}"):
            number += 1
        os.rename(path, f"{path}{DELETING}{os.getpid()}-{number}")
        path = f"{path}{DELETING}{os.getpid()}-{number}"
    remove(path)


def fresh_dir(path):
    """An empty directory of ours at `path` (a slot, the scratch dir), carrying our marker from its first moment:
    a previous one of ours is wiped, anything else there is moved aside."""
    if is_ours(path):
        discard(path)
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
    """virtualenv --no-seed from virtualenv.py's verified payload, unpacked into the scratch dir; its app-data is
    the scratch dir's: virtualenv describes the running interpreter in-process and writes nothing there worth
    keeping. No bytecode is written or read: nothing compiled outside this run can steer it."""
    step(f"creating {os.path.relpath(slot, ROOT)} with virtualenv.py for Python {python_version()}")
    _, payload = VERIFIED_PAYLOAD
    tree = os.path.join(scratch, "virtualenv-tree")
    unpack_virtualenv(payload, tree)
    with open(os.path.join(tree, SYS_PATH), encoding="utf-8") as handle:
        dirs = [os.path.join(tree, name) for name in handle.read().split()]
    # The launcher of virtualenv.py, minus what bootstrap.py has done already (version and payload checks), with the
    # garbage collector off: a short run that frees what it makes.
    launch = ("import gc, sys; gc.disable(); end = sys.argv.index('--'); "
              "sys.path[:0], sys.argv = sys.argv[1:end], sys.argv[end:]; "
              "sys.dont_write_bytecode = True; "
              "from virtualenv.__main__ import run_with_catch; run_with_catch(sys.argv[1:])")
    # -S: the interpreter's own site-packages and .pth files (the machine's, not ours) stay out of the run.
    # --no-venv-redirect: virtualenv would otherwise drop a PEP 832 `.venv` file beside a pyproject.toml.
    run([sys.executable, "-I", "-S", "-c", launch, *dirs, "--", "--no-seed", "--no-download", "--no-periodic-update",
         "--no-venv-redirect", "--app-data", os.path.join(scratch, "app-data"), "--python", sys.executable, slot],
        env, "virtualenv")


def unpack_virtualenv(payload, tree):
    """The payload's wheel directories for this Python (the rule of virtualenv.py's launcher), unpacked into tree."""
    import io
    import json
    import zipfile

    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        groups = sorted(manifest, key=release_key)
        dirs = manifest[[group for group in groups if release_key(group) <= sys.version_info[:2]][-1]]
        members = [name for name in archive.namelist() if name.split("/", 1)[0] in dirs]
        if any(map(unsafe_member, members)):
            error("virtualenv.py's payload holds a path outside its own tree. Restore it with "
                  "`git checkout -- virtualenv.py`.")
        archive.extractall(tree, members)
    with open(os.path.join(tree, SYS_PATH), "w", encoding="utf-8") as handle:
        handle.writelines(f"{name}\n" for name in dirs)  # in the launcher's order


SYS_PATH = "sys-path.txt"


class SeedTree:
    """The seed pip unpacked and compiled (checked-hash) by the compile workers in the scratch dir while virtualenv
    runs, from the verified wheel's bytes, then linked into the ve as it is. Made on every build: bytecode is
    never taken from anywhere the build did not just write it."""

    def __init__(self, seed, scratch):
        self.seed = seed
        # `name-version.dist-info`, named as the wheel file is (the wheel format's rule), whatever is in the tree.
        self.dist_info = "-".join(os.path.basename(seed[0]).split("-")[:2]) + ".dist-info"
        self.tree = os.path.join(scratch, "seed-tree")
        self.job = seed_job(seed, self.tree, "seed")

    def copy_into(self, site, pool):
        """Hard-link (where the file system allows, else copy) every file of the tree into site-packages, once
        the workers have written it."""
        import shutil

        pool.wait_for(self.job)
        made = set()
        for directory, _, names in os.walk(self.tree):
            for name in sorted(names):
                path = os.path.join(directory, name)
                place = os.path.join(site, os.path.relpath(path, self.tree))
                if os.path.dirname(place) not in made:
                    os.makedirs(os.path.dirname(place), exist_ok=True)
                    made.add(os.path.dirname(place))
                try:
                    os.link(path, place)
                except OSError:
                    shutil.copyfile(path, place)


def seed_job(seed, tree, name):
    """The workers' job that unpacks and compiles the seed wheel into tree."""
    import zipfile

    path, recorded = seed
    remove(tree)
    remove(f"{tree}.manifest")
    with zipfile.ZipFile(path) as archive:
        names = sorted(name for name in archive.namelist() if not name.endswith("/"))
    if any(unsafe_member(name) or ".data/" in name for name in names):
        error(f"{os.path.basename(path)} is not a plain pure-Python wheel. "
              "Restore virtualenv_support/ with `git checkout virtualenv_support`.")
    # Chunks of about 40 modules, each with the other files that come before the next module.
    chunks, current, modules = [], [], 0
    for member in names:
        current.append([member, member])
        modules += member.endswith(".py")
        if modules == 40:
            chunks.append(current)
            current, modules = [], 0
    chunks += [current] if current else []
    return {"name": name, "path": path, "sha256": [recorded], "root": tree, "unpack": True, "chunks": chunks,
            "manifest": f"{tree}.manifest"}


def unsafe_member(name):
    return name.startswith("/") or ".." in name.split("/") or "\\" in name


# A worker holds the wheel it compiles from in memory (the bytes it checked): a larger one (a machine-learning
# framework's) is compiled from what pip installed instead.
PLANNED_WHEEL_BYTES = 64 * 2**20


def wheel_jobs(pins, site, taken):
    """The workers' jobs for the wheels pip is bound to install, so their modules compile while virtualenv and pip
    run: an unmarked pin with one artifact in requirements/, a wheel of at most PLANNED_WHEEL_BYTES (any other pin
    waits for pip's RECORD). Each .py member is named by its place in site-packages; one that two wheels (or the
    seed, `taken`) carry is left out, and compiled once pip has put the winning copy in place."""
    import collections
    import importlib.util
    import zipfile

    by_pin = artifacts_by_pin()
    planned = []
    for pin in pins:
        paths = by_pin.get((pin.name, release(pin.version)), [])
        if (pin.marker or pin.name == "pip" or len(paths) != 1 or not paths[0].endswith(".whl")
                or os.path.getsize(paths[0]) > PLANNED_WHEEL_BYTES):
            continue
        try:
            with zipfile.ZipFile(paths[0]) as archive:
                names = [name for name in archive.namelist() if not name.endswith("/")]
        except (OSError, zipfile.BadZipFile):
            continue  # pip names what is wrong with it
        if any(map(unsafe_member, names)):
            continue
        places = {name: site_place(name) for name in names}
        shipped = {place for place in places.values() if place and place.endswith(".pyc")}
        modules = {name: place for name, place in places.items() if place and place.endswith(".py")
                   and importlib.util.cache_from_source(place) not in shipped}
        dist_info = next((name.split("/")[0] for name in names if name.split("/")[0].endswith(".dist-info")), None)
        planned.append((pin, paths[0], dist_info, modules))
    counts = collections.Counter(taken)
    for _, _, _, modules in planned:
        counts.update(modules.values())
    jobs = []
    for pin, path, dist_info, modules in planned:
        members = [[name, place] for name, place in sorted(modules.items()) if counts[place] == 1]
        if members:
            # One chunk per wheel but the largest: a worker reads and hashes each wheel it takes a chunk of.
            chunks = [members[start:start + 100] for start in range(0, len(members), 100)]
            jobs.append({"name": dist_info, "path": path, "sha256": sorted(pin.hashes), "root": site,
                         "unpack": False, "chunks": chunks})
    return jobs


def site_place(name):
    """Where pip puts a wheel member, relative to site-packages (None: elsewhere, or not installed)."""
    top, _, rest = name.partition("/")
    if top.endswith(".data"):
        scheme, _, rest = rest.partition("/")
        return rest if scheme in ("purelib", "platlib") and rest else None
    return name


def install(slot, seed_tree, pins, scratch, env, pool):
    """Copy the compiled seed pip into the ve, then let it install the whole lock in one run, compiled meanwhile."""
    step(f"seeding {os.path.basename(seed_tree.seed[0])} from virtualenv_support/")
    install_seed(slot, seed_tree, pool)
    requirements = os.path.join(scratch, "requirements.txt")
    with open(requirements, "w", encoding="utf-8") as handle:
        for pin in pins:
            handle.write(f"{pin.line} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n")
    source = from_source(slot, env, pins)
    step(f"installing requirements.txt ({len(pins)} pins, those for this Python) from requirements/ "
         "(offline, hashes required)")
    report = os.path.join(scratch, "pip-report.json")
    # Installing wheels needs no program from PATH, and pip, building an HTTP User-Agent even offline, runs
    # `rustc --version` and `lsb_release -a` when PATH has them (~0.1 s): PATH is the ve's bin/ alone, unless
    # sdists are built (their build backends may need a compiler).
    (source_build(source) if source else run)(
        [python_in(slot), "-I", "-m", "pip", "install", "--isolated", "--no-index", "--find-links", WHEELHOUSE,
         "--no-deps", "--require-hashes", "--only-binary=:all:", "--no-cache-dir", "--disable-pip-version-check",
         "--no-input", "--quiet", "--no-compile", "--report", report, *source_args(source, scratch),
         "-r", requirements],
        env if source else dict(env, PATH=os.path.join(slot, "bin")), "pip install")
    dependencies = start_dependency_check(slot, env, pins)
    pool.children.append(dependencies)  # runs while the last files compile; stopped with the workers on an error
    pool.finish(but=dependencies)
    output, _ = dependencies.communicate()
    return report, output


def sdist_wheels(pins):
    """{pin: [its wheel files]} for the pins that have an sdist in requirements/ (built at freeze time)."""
    by_pin = artifacts_by_pin()
    found = {}
    for pin in pins:
        paths = by_pin.get((pin.name, release(pin.version)), [])
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
        with open(BUILD_LOCK, encoding="utf-8-sig") as handle:
            build_pins, bad = parse_lock(handle.read())
    except (OSError, UnicodeDecodeError):
        return problems + [f"requirements-build.txt is missing or unreadable, and {next(iter(wheels))} is built "
                           f"from its sdist where no wheel fits. {restore}"]
    problems += [f"requirements-build.txt line `{line}` {reason}. {restore}" for line, reason in bad]
    return problems + [problem.replace("in requirements.txt", "in requirements-build.txt")
                       for problem in check_artifacts(build_pins)]


# Run by the new ve's Python with the seed pip's own `packaging`: the tags and markers pip itself will use.
FITS_HERE = """
import json, sys
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.tags import sys_tags
from pip._vendor.packaging.utils import parse_wheel_filename
here, out = set(sys_tags()), []
for line, wheels in json.loads(sys.argv[1]).items():
    marker = Requirement(line).marker
    if (marker is None or marker.evaluate()) and not any(set(parse_wheel_filename(w)[3]) & here for w in wheels):
        out.append(line)
print(json.dumps(out))
"""


def from_source(slot, env, pins):
    """The pins this Python must build from their sdists: no prebuilt wheel in requirements/ fits here."""
    import json

    wheels = sdist_wheels(pins)
    if not wheels:
        return []
    query = {pin.line: [os.path.basename(path) for path in paths] for pin, paths in wheels.items()}
    lines = json.loads(run([python_in(slot), "-I", "-c", FITS_HERE, json.dumps(query)], env, "checking wheel tags"))
    return [pin for pin in wheels if pin.line in lines]


def source_args(source, scratch):
    """pip's options to build `source` from sdists, offline, with the build lock as a hashed build constraint.

    --no-binary after --only-binary=:all: narrows it to these names; every other pin stays wheels only, and
    pip's build isolation installs the backends from requirements/ only, each with the build lock's hash.
    """
    if not source:
        return []
    with open(BUILD_LOCK, encoding="utf-8-sig") as handle:
        build_pins, _ = parse_lock(handle.read())
    constraints = os.path.join(scratch, "requirements-build.txt")
    with open(constraints, "w", encoding="utf-8") as handle:
        for pin in build_pins:  # rebuilt from the parsed fields, like the lock pip gets
            handle.write(f"{pin.line} " + " ".join(f"--hash=sha256:{h}" for h in sorted(pin.hashes)) + "\n")
    names = ", ".join(f"{pin.name} {pin.version}" for pin in source)
    step(f"building from source, offline: {names} (no prebuilt wheel in requirements/ fits this Python and "
         "platform; their sdists are built with the backends pinned in requirements-build.txt)")
    return ["--no-binary=" + ",".join(pin.name for pin in source), "--build-constraint", constraints]


def source_build(source):
    """run(), for a pip install that builds `source`: a failed build ends in one ERROR naming the package."""
    import re

    def runner(argv, env, what):
        returncode, stdout = spawn(argv, env)
        if returncode == 0:
            return stdout
        print("".join(f"    {line}\n" for line in stdout.rstrip().splitlines()), end="", file=sys.stderr)
        failed = re.findall(r"Failed to build '?([A-Za-z0-9._-]+)", stdout)
        named = [pin for pin in source if failed and canonical_name(failed[-1]) == pin.name] or source
        # The build's own last words: the lines before pip's last "[end of output]", else pip's last lines.
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        ends = [number for number, line in enumerate(lines) if line == "[end of output]"]
        last = lines[max(0, ends[-1] - 3):ends[-1]] if ends else lines[-3:]
        error(f"building {' or '.join(f'{pin.name} {pin.version}' for pin in named)} from its sdist failed "
              f"(no prebuilt wheel fits this Python and platform): {' | '.join(last) or 'no output'}. Fix: install "
              "what the build needs (a C compiler, a C library's headers) and run `make ve` again, or run "
              "`make freeze` on this platform to store a prebuilt wheel. The previous ve is untouched.")
    return runner


def site_packages(slot):
    return os.path.join(slot, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")


def install_seed(slot, seed_tree, pool):
    """Install pip by copying its unpacked, compiled pure-Python wheel (files and bytecode), then writing what pip's
    installer adds: scripts, INSTALLER and their RECORD lines. Return RECORD's path.

    pip run from a zipped wheel cannot cache bytecode and compiles its own source on every run; installed this
    way it starts compiled, and installs the lock from there.
    """
    import configparser

    site = site_packages(slot)
    seed_tree.copy_into(site, pool)
    dist_info = seed_tree.dist_info
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
    with open(record, encoding="utf-8") as handle:
        lines[:0] = [handle.read()]
    os.unlink(record)  # a new file, never written in place: it is a hard link into the seed tree
    with open(record, "w", encoding="utf-8") as handle:
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
    os.chmod(path, mode & ~UMASK[0])  # as pip writes its scripts: the mode less the umask
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{os.path.relpath(path, site)},sha256={digest},{len(data)}\n"


# Run by the interpreter of the build (-I -S), one per core, from the start of a build to its end. A job is a wheel
# checked against the lock's sha256 in the worker itself, from the bytes it then reads; its chunks are claimed in
# one log under a lock, so each is done once, and marked done there. The seed's job unpacks it too, into the
# scratch dir (it runs beside virtualenv, and pip waits for it); the other jobs write only bytecode, into
# site-packages once virtualenv has made it, while pip installs the very same files. Then each distribution pip
# installed that no job covered (a pin with a marker or several artifacts, one built from its sdist, a module two
# wheels carry) is compiled once its RECORD appears (pip writes it last, atomically). The bytes are py_compile's
# with checked-hash invalidation, whichever worker makes them.
COMPILE_WORKER = r"""
import csv, fcntl, gc, hashlib, io, json, marshal, os, sys, time, warnings, zipfile
from importlib.util import MAGIC_NUMBER, cache_from_source, source_hash

warnings.simplefilter("ignore")  # as pip compiles: a SyntaxWarning per odd escape would only fill our pipe

parent = os.getppid()


def alive():  # bootstrap.py killed (kill -9 leaves no chance to stop us): nothing is waiting for our work
    if os.getppid() != parent:
        sys.exit(1)


def wait_for(path):
    while not os.path.exists(path):
        alive()
        time.sleep(0.005)

gc.disable()  # a short run that frees what it makes: the collector's passes would be wasted time
wait_for(sys.argv[1])  # started while bootstrap.py makes the plan
with open(sys.argv[1], encoding="utf-8") as handle:
    plan = json.load(handle)
site, claims, made, done = plan["site"], plan["claims"], plan["made"], plan["done"]
try:
    os.nice(plan["nice"])  # pip and virtualenv, on the critical path, come first
except (AttributeError, OSError):
    pass

log, logged, offset = os.open(claims, os.O_RDWR | os.O_CREAT | os.O_APPEND), set(), 0


def claimed(name, extra=None):
    # The first worker to append `name` to the log, under its lock, has it; `extra`: lines for another file.
    global offset
    fcntl.flock(log, fcntl.LOCK_EX)
    try:
        while data := os.pread(log, 1 << 16, offset):
            offset += len(data)
            logged.update(data.decode().splitlines())
        if name in logged:
            return False
        if extra:
            with open(extra[0], "a", encoding="utf-8") as handle:
                handle.writelines(extra[1])
        offset += os.write(log, f"{name}\n".encode())
        logged.add(name)
        return True
    finally:
        fcntl.flock(log, fcntl.LOCK_UN)


def write(path, data, root=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if root:  # into a tree of our own, made just now; returns the line of its MANIFEST
        with open(path, "wb") as handle:
            handle.write(data)
        return f"{hashlib.sha256(data).hexdigest()} {os.path.relpath(path, root)}\n"
    # into site-packages: a new file renamed over the old, never written through a hard link
    with open(f"{path}.{os.getpid()}", "wb") as handle:
        handle.write(data)
    os.replace(f"{path}.{os.getpid()}", path)


def compile_source(path, source, dfile, root=None):
    try:
        code = compile(source, dfile, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return  # as compileall and pip do: a file that does not compile is left to fail at import
    pyc = MAGIC_NUMBER + b"\3\0\0\0" + source_hash(source) + marshal.dumps(code)
    return write(cache_from_source(path), pyc, root)


def compile_files(paths):
    for path in paths:
        with open(path, "rb") as handle:
            compile_source(path, handle.read(), path)


def ve_made():
    wait_for(made)
    if claimed("made"):  # virtualenv's own modules, listed by bootstrap.py before pip ran
        with open(made, encoding="utf-8") as handle:
            compile_files(handle.read().split("\n")[:-1])


def do_jobs(jobs):
    opened = None
    for job in jobs:
        for number, members in enumerate(job["chunks"]):
            if not claimed(f"{job['name']}.{number}"):
                continue
            if opened is None or opened[0] != job["path"]:
                with open(job["path"], "rb") as handle:
                    data = handle.read()
                if hashlib.sha256(data).hexdigest() not in job["sha256"]:
                    sys.exit(f"changed: {job['path']}")
                opened = job["path"], zipfile.ZipFile(io.BytesIO(data))
            if job["root"] == site:
                ve_made()
            root = job["root"] if job["unpack"] else None
            lines = []
            for member, place in members:
                path = os.path.join(job["root"], place)
                source = opened[1].read(member)
                if root:
                    lines.append(write(path, source, root))
                if place.endswith(".py"):
                    lines.append(compile_source(path, source, place if root else path, root))
            lines = [line for line in lines if line]
            claimed(f"done {job['name']}.{number}", (job["manifest"], lines) if root else None)

do_jobs(plan["jobs"])  # the seed's, planned first
if not site:
    sys.exit(0)
wait_for(plan["more"])  # the wheels', planned while the seed's ran
with open(plan["more"], encoding="utf-8") as handle:
    more = json.load(handle)
do_jobs(more)
ve_made()
precompiled = {os.path.join(site, place) for job in more for members in job["chunks"] for _, place in members}


def record_sources(dist):
    with open(os.path.join(site, dist, "RECORD"), encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    paths = sorted({os.path.normpath(os.path.join(site, row[0])) for row in rows if row and row[0].endswith(".py")})
    return [path for path in paths if path.startswith(site + os.sep) and path not in precompiled]

seen = set(plan["present"])
while True:
    finished = os.path.exists(done)
    found = [name for name in sorted(os.listdir(site)) if name.endswith(".dist-info") and name not in seen
             and os.path.exists(os.path.join(site, name, "RECORD"))]
    for dist in found:
        seen.add(dist)
        paths = record_sources(dist)
        for number in range(0, len(paths), 40):
            if claimed(f"record {dist}.{number}"):
                compile_files(paths[number:number + 40])
    if finished and not found:
        break
    if not found:
        alive()
        time.sleep(0.02)
"""


class CompilePool:
    """The compile workers of a build: started before virtualenv, told by ve_made() that site-packages exists and
    by finish() that pip is done; stopped on any error."""

    def __init__(self, scratch, env):
        self.scratch, self.env, self.children = scratch, env, []
        self.claims = os.path.join(scratch, "compile-claims.log")
        self.made, self.done = os.path.join(scratch, "ve-made"), os.path.join(scratch, "pip-done")
        self.site = None

    def __enter__(self):
        return self

    @property
    def cores(self):
        return min(16, max(1, os.cpu_count() or 1))

    def start(self, slot, seed_tree, pins):
        """Start the workers (they wait for their plan), then plan the seed's job (pip waits for it), then the
        wheels' jobs, which the workers take once the seed's are taken."""
        self.site = site_packages(slot)
        plan = os.path.join(self.scratch, "compile-plan.json")
        self.children += [self.spawn(plan) for _ in range(self.cores)]
        more = os.path.join(self.scratch, "compile-plan-wheels.json")
        self.write_plan(plan, [seed_tree.job], self.site, [seed_tree.dist_info], more)
        taken = [place for _, place in (pair for chunk in seed_tree.job["chunks"] for pair in chunk)]
        write_json(more, wheel_jobs(pins, self.site, taken))

    def write_plan(self, path, jobs, site, present, more=None):
        return write_json(path, {"jobs": jobs, "site": site, "present": present, "claims": self.claims,
                                 "made": self.made, "done": self.done, "more": more, "nice": 5})

    def spawn(self, plan):
        import subprocess

        return subprocess.Popen([sys.executable, "-I", "-S", "-c", COMPILE_WORKER, plan], env=self.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def ve_made(self):
        """virtualenv is done: its own modules (listed now, before pip adds any) are compiled by one worker, and the
        jobs may write into site-packages."""
        write_whole(self.made, "".join(f"{os.path.join(self.site, name)}\n" for name in sorted(os.listdir(self.site))
                                       if name.endswith(".py")))

    def wait_for(self, job):
        """Until every chunk of job is done (a worker that failed meanwhile stops the build); the MANIFEST lines of
        what it wrote, for a job that unpacks."""
        marks = {f"done {job['name']}.{number}" for number in range(len(job["chunks"]))}
        while not marks <= self.logged():
            for child in self.children:
                if child.poll():
                    self.failed(child)
            time.sleep(0.005)
        with open(job["manifest"], encoding="utf-8") as handle:
            return handle.readlines()

    def logged(self):
        """The names in the workers' log of claims, read under its lock (an append is never seen half-made)."""
        try:
            with open(self.claims, "rb") as handle:
                fcntl.flock(handle, fcntl.LOCK_SH)
                return set(handle.read().decode().splitlines())
        except FileNotFoundError:
            return set()

    def failed(self, child, stderr=None):
        stderr = child.communicate()[1] if stderr is None else stderr
        if any(text in stderr for text in NO_SPACE_TEXTS):
            raise OSError(NO_SPACE_ERRNOS[0], NO_SPACE_TEXTS[0])  # main names the disk, as for pip's
        if stderr.startswith("changed: "):
            path = os.path.relpath(stderr[len("changed: "):].strip(), ROOT)
            error(f"{path} changed during the build, after it was checked: its sha256 is no longer one the lock "
                  f"allows. Restore it with `git checkout -- {path}` and run `make ve` again (is something else "
                  "writing to this checkout?). The previous ve is untouched.")
        print("".join(f"    {line}\n" for line in stderr.rstrip().splitlines()), end="", file=sys.stderr)
        error(f"compiling the bytecode of {os.path.relpath(self.site, ROOT)} failed (exit {child.returncode}); see "
              "the output above. The previous ve is untouched.")

    def finish(self, but=None):
        """pip is done: wait for the workers (`but`: another child, left alone)."""
        with open(self.done, "w"):
            pass
        for child in self.children:
            if child is not but:
                _, stderr = child.communicate()
                if child.returncode:
                    self.failed(child, stderr)
        self.children = [but] if but else []

    def __exit__(self, *exc_info):
        stop_children(self.children)


def write_json(path, data):
    import json

    return write_whole(path, json.dumps(data))  # dumps: the C encoder; dump() writes piece by piece in Python


def write_whole(path, text):
    """Write text to a file a reader (a worker polling for it) never sees half-written: a new file, renamed."""
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write(text)
    os.rename(path + ".tmp", path)
    return path


def stop_children(children):
    """Stop what is still running (an error or an interrupt left it), so nothing writes after we leave."""
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(timeout=10)
        except BaseException:
            child.kill()
            child.wait()


def python_in(slot):
    return os.path.join(slot, "bin", "python")


# Run by the new ve's Python with the seed pip's own `packaging`, as `pip check` reads them: every Requires-Dist
# of every installed distribution, with the extras the lock's pins (and, in turn, their requirements) ask for, is
# installed, in a version its specifier allows. `pip check` itself costs a pip start-up; `make check` still runs it.
DEPENDENCY_CHECK = r"""
import gc, os, sys
gc.disable()
sys.path.insert(0, sys.argv[1])
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name


def headers(path):  # METADATA's header block (RFC 822: a line starting with white space continues the one before)
    found = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                break
            if line[0] in " \t" and found:
                found[-1][1] += " " + line.strip()
            elif ":" in line:
                found.append(list(map(str.strip, line.split(":", 1))))
    return {"name": next(v for k, v in found if k.lower() == "name"),
            "version": next(v for k, v in found if k.lower() == "version"),
            "requires": [v for k, v in found if k.lower() == "requires-dist"]}

site, metadata, wanted = sys.argv[1], {}, {}
for name in sorted(os.listdir(site)):
    if name.endswith(".dist-info"):
        dist = headers(os.path.join(site, name, "METADATA"))
        metadata[canonicalize_name(dist["name"])] = dist
for pin in sys.argv[2:]:  # `name[extra,...]`: the extras the lock asks for
    requirement = Requirement(pin)
    wanted.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)


def active(name):  # the requirements of `name` that hold here, with every extra asked for, by the lock or a dependent
    for line in metadata[name]["requires"]:
        requirement = Requirement(line)
        extras = [""] + sorted(wanted.get(name, ()))
        if not requirement.marker or any(requirement.marker.evaluate({"extra": extra}) for extra in extras):
            yield requirement

size = -1
while size != sum(map(len, wanted.values())):  # extras asked for by dependencies, until nothing more is asked
    size = sum(map(len, wanted.values()))
    for name in list(metadata):
        for requirement in active(name):
            if requirement.extras:
                wanted.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
for name, dist in sorted(metadata.items()):
    for requirement in active(name):
        found = metadata.get(canonicalize_name(requirement.name))
        if found is None:
            print(f"{dist['name']} {dist['version']} requires {requirement}, which is not installed")
        elif not requirement.specifier.contains(found["version"], prereleases=True):
            print(f"{dist['name']} {dist['version']} requires {requirement}, but {found['name']} {found['version']} "
                  "is installed")
print("checked")  # the last line of a check that ran to its end
"""


def start_dependency_check(slot, env, pins):
    import subprocess

    asked = [f"{pin.name}{pin.extras}" for pin in pins if pin.extras]
    return subprocess.Popen([python_in(slot), "-I", "-S", "-c", DEPENDENCY_CHECK, site_packages(slot), *asked], env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def check_env(slot, pins, report, dependencies):
    """The ve holds exactly the lock's pins for this Python (pip's report says which), each with its RECORD, and
    their requirements are met: what `pip check` would say, without starting pip again."""
    step("checking the installed distributions against the lock")
    problems = installed_problems(slot, pins, report)
    lines = dependencies.splitlines()
    if lines[-1:] == ["checked"]:
        problems += lines[:-1]
    else:
        print("".join(f"    {line}\n" for line in dependencies.rstrip().splitlines()), end="", file=sys.stderr)
        error("checking the requirements of the installed distributions failed; see the output above. The previous "
              "ve is untouched.")
    if problems:
        more = f" ({len(problems) - 1} more: {'; '.join(problems[1:])})" if len(problems) > 1 else ""
        error(f"the new build does not match the lock (checked like pip check): {problems[0]}{more}. The lock is "
              "incomplete or inconsistent: "
              "restore it with `git checkout -- requirements.txt`, or run `make freeze`. The previous ve is untouched.")


def installed_problems(slot, pins, report):
    """Missing, extra, mis-versioned or RECORD-less distributions in the slot, against pip's report of the lock."""
    import json

    with open(report, encoding="utf-8") as handle:
        reported = {canonical_name(item["metadata"]["name"]): item["metadata"]["version"]
                    for item in json.load(handle).get("install", [])}
    expected = dict(reported)
    site = site_packages(slot)
    installed, problems = {}, []
    for dist in installed_dists(slot):
        fields = read_metadata(os.path.join(site, dist, "METADATA"))
        name = canonical_name(fields.get("Name", dist[:-len(".dist-info")].rpartition("-")[0]))
        installed[name] = fields.get("Version", dist[:-len(".dist-info")].rpartition("-")[2])
        if not os.path.isfile(os.path.join(site, dist, "RECORD")):
            problems.append(f"{dist} has no RECORD")
    if "pip" not in expected and "pip" in installed:
        expected["pip"] = installed["pip"]  # the seed, which the lock's pip (if pinned) left in place
    versions = {}
    for pin in pins:
        versions.setdefault(pin.name, set()).add(release(pin.version))
    for name, version in sorted(expected.items()):
        if name in versions and release(version) not in versions[name]:
            pinned = " or ".join(sorted(versions[name]))
            problems.append(f"{name} {version} was installed, but the lock pins {name} {pinned}")
        elif name not in versions and name != "pip":
            problems.append(f"{name} {version} was installed, but the lock does not pin it")
    for name, version in sorted(expected.items()):
        if name not in installed:
            problems.append(f"{name} {version} is missing")
        elif release(installed[name]) != release(version):
            problems.append(f"{name} {installed[name]} is installed where {version} was expected")
    problems += [f"{name} {version} is installed, but is not one of the lock's pins for this Python"
                 for name, version in sorted(installed.items()) if name not in expected]
    return problems


def read_metadata(path):
    """{"Name": ..., "Version": ...} from a METADATA file's header block (the rest is not needed)."""
    fields = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, colon, value = line.partition(":")
                if colon and key in ("Name", "Version") and key not in fields:
                    fields[key] = value.strip()
    except OSError:
        pass
    return fields


def write_stamp(slot, key, inputs):
    """Written last: a slot with a stamp is a finished build (see read_stamp for the format)."""
    lines = [key] + [f"input\t{label}\t{value}" for label, value in inputs]
    lines.append("\t".join(["dists", *installed_dists(slot)]))
    lines.append(f"umask\t{UMASK[0]:04o}")  # what `make verify` checks the files' modes against
    with open(os.path.join(slot, STAMP), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def exclude_from_git(ve):
    """Keep the ve, its slots, lock and scratch out of `git status`, whatever VE is called (.venv included):
    .git/info/exclude is git's own place for a checkout's local ignores, never committed."""
    root = os.path.realpath(ROOT)
    exclude = os.path.join(root, ".git", "info", "exclude")
    if not ve.startswith(root + os.sep) or not os.path.isdir(os.path.dirname(exclude)):
        return
    names = ([ve, f"{ve}.switching", lock_path(ve), scratch_path(ve) + "*"] + slot_paths(ve)
             + [path + DELETING + "*" for path in slot_paths(ve)])
    wanted = ["/" + os.path.relpath(name, root) for name in names] + ["/__pycache__/bootstrap.*.pyc"]
    try:
        with open(exclude, encoding="utf-8") as handle:
            present = set(handle.read().splitlines())
    except (OSError, UnicodeDecodeError):
        present = set()
    missing = [line for line in wanted if line not in present]
    if missing:
        with open(exclude, "a", encoding="utf-8") as handle:
            handle.write("# the ve of `make ve` (bootstrap.py), its slots, lock and scratch, bootstrap.py's bytecode\n"
                         + "".join(f"{line}\n" for line in missing))


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


# What the convention's targets write into the build area, which `make clean` removes; a project's own files there
# and the lock files (someone may be waiting on them) stay.
BUILD_AREA = os.path.join(ROOT, ".bootstrap")
BUILD_AREA_NAMES = ("cache", "freeze", "seeds", "sbom", "freeze-report.txt", "switch-done.json",
                    "adopt-constraints.txt")


def clean(ve, name):
    """`make clean`: remove the ve link, its slots, leftovers and the build area's caches and staging, if they are
    ours; never through the link. Waits for a running `make ve`, refuses while a `make freeze` runs."""
    import glob

    stop_on_signals()
    removed, kept, freed = [], [], 0
    try:
        with exclusive_lock(ve), settled_inputs():  # a pending switch is finished first: its files are in .bootstrap
            freezing = freeze_holder()
            if freezing:
                error(f"a `make freeze` is running in this checkout ({freezing}), and `make clean` would remove its "
                      "staging; nothing was removed. Run `make clean` again once it has finished.")
            for path in [ve, f"{ve}.switching"]:
                if os.path.lexists(path):
                    (removed if is_our_link(path) else kept).append(path)
                    if is_our_link(path):
                        os.unlink(path)
            ours = [path for path in slot_paths(ve) if is_ours(path)]
            kept += [path for path in slot_paths(ve) if os.path.lexists(path) and path not in ours]
            for path in ours + [path for path in leftovers(ve) if path not in ours]:
                freed += tree_bytes(path)
                discard(path)
                removed.append(path)
            for path in [os.path.join(BUILD_AREA, name) for name in BUILD_AREA_NAMES]:
                # Nothing but the convention writes these; a symlink is unlinked, not followed.
                if os.path.lexists(path):
                    freed += tree_bytes(path) if os.path.isdir(path) and not os.path.islink(path) else 0
                    remove(path)
                    removed.append(path)
            for pyc in glob.glob(os.path.join(ROOT, "__pycache__", "bootstrap.*.pyc")):  # our own bytecode
                os.unlink(pyc)
    except KeyboardInterrupt:
        error(f"interrupted; {clean_left(ve)}. Run `make clean` again to finish.")
    except PermissionError as exc:
        error(permission_message(exc, ve))
    except OSError as exc:
        error(f"cannot remove {exc.filename or ve}: {exc.strerror}, so `make clean` stopped; {clean_left(ve)}. Make "
              f"{os.path.dirname(exc.filename or ve)} writable, then run `make clean` again.")
    names = [os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path for path in removed]
    print(f"removed {', '.join(names) + f' ({mb(freed)} freed)' if names else 'nothing (no build of make ve here)'}")
    if kept:
        print(f"kept {', '.join(map(os.path.basename, kept))}: not made by make ve (delete it yourself if you no "
              "longer need it)")
    return 0


def clean_left(ve):
    """What an interrupted or failed `make clean` left, for its ERROR line."""
    left = [path for path in [ve] + slot_paths(ve) if os.path.lexists(path)] + leftovers(ve)
    left += [path for path in (os.path.join(BUILD_AREA, name) for name in BUILD_AREA_NAMES) if os.path.lexists(path)]
    names = sorted({os.path.relpath(path, os.path.dirname(ve)) for path in left})
    return f"still there: {', '.join(names)}" if names else "nothing of make ve is left"


def freeze_holder():
    """Who holds the checkout's freeze lock (.bootstrap/freeze.lock) now, or None."""
    path = os.path.join(BUILD_AREA, "freeze.lock")
    try:
        handle = open(path)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "it holds .bootstrap/freeze.lock"
    return None


def release_key(version):
    """"3.10" -> (3, 10), so targets sort as versions."""
    return tuple(int(part) for part in version.split(".") if part.isdigit())


SWITCH_DONE = os.path.join(".bootstrap", "switch-done.json")
SWITCH_LOCK = os.path.join(".bootstrap", "switch.lock")


def switch_lock(root, shared):
    """The switch lock of checkout `root`, held (shared: reading the inputs; exclusive: switching them)."""
    path = os.path.join(root, SWITCH_LOCK)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle = open(path, "a")
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        step(f"waiting for {SWITCH_LOCK}: a `make freeze` is switching the lock, or a build is reading it")
        fcntl.flock(handle, mode)
    return handle


def settled_inputs(root=ROOT):
    """The shared switch lock, held (close the returned file to release it), after completing a pending switch."""
    while True:
        try:
            handle = switch_lock(root, shared=True)
        except OSError:
            if switch_pending(root):
                raise
            return open(os.devnull)  # a read-only checkout: nobody can be switching it
        if not switch_pending(root):
            return handle
        handle.close()
        with switch_lock(root, shared=False):
            complete_switch(root)


def complete_switch(root=ROOT, resumed=True):
    """Do the journal's moves that are not done yet, under the exclusive switch lock; return how many were left.

    Each move can be repeated: a put renames its staged file (checked against the journal's sha256) over the
    destination, so once done its staged file is gone and the destination has that hash; a delete removes the
    file if it is still there. The journal is then kept as switch-done.json: what the tree was before the switch,
    which the next `make freeze` reports against.
    """
    import json

    journal = os.path.join(root, SWITCH_JOURNAL)
    try:
        with open(journal, encoding="utf-8") as handle:
            moves = json.load(handle)["moves"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError) as exc:
        error(f"cannot read {SWITCH_JOURNAL} ({exc}), the journal of an interrupted `make freeze`. Restore the "
              "tree with `git checkout -- requirements.txt requirements.pins requirements virtualenv_support "
              f"virtualenv.py bootstrap_tools/virtualenv.txt`, delete {SWITCH_JOURNAL} and run `make freeze`.")
    problem = journal_problem(root, moves)
    if problem:
        error(f"{SWITCH_JOURNAL} is not the journal of a `make freeze` ({problem}), so none of it was done. Restore "
              "the tree with `git checkout -- requirements.txt requirements.pins requirements virtualenv_support "
              f"virtualenv.py bootstrap_tools/virtualenv.txt`, delete {SWITCH_JOURNAL} and run `make freeze`.")
    left = 0
    for number, move in enumerate(moves):
        target = os.path.join(root, move["path"])
        if "staged" not in move:
            if os.path.lexists(target):
                os.unlink(target)
                left += 1
            continue
        staged = os.path.join(root, move["staged"])
        if os.path.lexists(staged) and file_sha256(staged) == move["sha256"]:
            os.replace(staged, target)
            left += 1
        elif file_sha256(target, missing=b"missing") != move["sha256"]:
            error(f"cannot complete the interrupted `make freeze` recorded in {SWITCH_JOURNAL}: {move['staged']} "
                  f"is missing or changed and {move['path']} does not have sha256 {move['sha256']}. Restore the "
                  "tree with `git checkout -- .`, delete the journal and run `make freeze` again.")
    os.replace(journal, os.path.join(root, SWITCH_DONE))
    if resumed:
        step(f"completed the switch of an interrupted `make freeze` ({left} of its {len(moves)} file moves were "
             "left); the next `make freeze` reports against the tree before it")
    return left


# The only files a freeze's switch moves: the lock files, virtualenv.py with what it is built from, and the files
# directly in requirements/ and virtualenv_support/. Each is staged beside its destination as `.<name>.staged`.
SWITCHED_FILES = ("requirements.txt", "requirements.pins", "virtualenv.py", "bootstrap_tools/virtualenv.txt",
                  "pylock.toml", "requirements-provenance.json", "requirements-build.txt", "requirements-built.json")


SWITCHED_DIRS = ("requirements", "virtualenv_support")
STAGED_SUFFIX = ".switch-new"


def journal_problem(root, moves):
    """Why the journal's moves are not a freeze's (None when they are): the journal is data we check, never
    instructions we follow, so a path outside the closed list, or one that leads out of the checkout through a
    symlink, refuses the whole journal before anything is touched."""
    if not isinstance(moves, list):
        return "its moves are not a list"
    real_root = os.path.realpath(root)
    for move in moves:
        if not isinstance(move, dict) or not isinstance(move.get("path"), str):
            return f"a move without a path: {move!r}"
        path = move["path"]
        parent, name = os.path.split(path)
        if path not in SWITCHED_FILES and not (parent in SWITCHED_DIRS and name and not name.startswith(".")):
            return f"{path!r} is not a file a freeze moves"
        if os.path.realpath(os.path.join(root, parent)) != os.path.join(real_root, parent).rstrip(os.sep):
            return f"{path!r} leads out of the checkout through a symlink"
        if "staged" in move and (move["staged"] != f"{parent}/.{name}{STAGED_SUFFIX}".lstrip("/")
                                 or not isinstance(move.get("sha256"), str)):
            return f"{move.get('staged')!r} is not where a freeze stages {path}"
    return None
