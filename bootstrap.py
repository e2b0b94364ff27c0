"""Build ./ve from this checkout alone: no network, nothing ambient, every artifact hash-checked.

Usage: python3 -I -S bootstrap.py [--ve PATH] [--force] [--one-slot]   (normally through `make ve`)
       python3 -I -S bootstrap.py [--ve PATH] --clean | --check | --verify  (make clean, make check, make verify)

The environment lives in one of two slot directories beside it, `.ve-a` and `.ve-b`, and `ve` is a
symlink to the current one. A virtualenv embeds its absolute path, so it cannot be built elsewhere and
moved: a rebuild goes into the other slot, at its final path, and only a finished, checked build is
switched in by atomically replacing the symlink. A failed, interrupted or killed run leaves `ve`
pointing at the previous build; the next run wipes the half-built slot and starts over.

Nothing that is not ours is ever deleted: a slot carries a marker file from its first moment, and anything found
where a slot or `ve` belongs without one (a venv made by hand, a user's file) is moved aside, never removed.

This file is what the no-op needs (arguments, the ve's path, the input key, the current-build check); everything
else is in bootstrap_build/, imported only when a build, clean, check or verify is needed.
"""

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
BUILD_CODE = os.path.join(ROOT, "bootstrap_build")  # what a build runs besides this file
# The build lock of the pins built from sdists (bootstrap_tools/sdists.py); only a fallback build reads it.
BUILD_LOCK = os.path.join(ROOT, "requirements-build.txt")
STAMP = "bootstrap-stamp.txt"
# Written into a slot before anything else: the proof that the directory is ours to wipe.
MARKER = ".bootstrap-slot"
MARKER_TEXT = "made by bootstrap.py (make ve); deleted and rebuilt by it\n"
SLOTS = ("a", "b")


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
        return core().clean(ve, args.ve)
    if args.check:
        return core().check_inputs()
    if args.follow_python_version:
        follow_python_version(argv)
    if args.verify:
        return core().verify(ve, args.ve)
    inputs = read_inputs(ve)
    key = digest_of(inputs)
    if not args.freezing:
        warn_if_requirements_in_changed()
    try:
        # Checked before locking too, so a read-only checkout with a current ve is still a no-op.
        if not args.force and is_current(ve, key) and not switch_pending():
            if leftovers(ve):
                core().tidy(ve)
            return report_up_to_date(args.ve)
    except KeyboardInterrupt:
        error(f"interrupted; {args.ve} is as it was. Run `make ve` again.")
    return core().locked_build(args, ve, started)


def core():
    """The build's module, loaded only when more than the no-op is needed, from its tracked source (never from
    bytecode: a .pyc beside it is hidden from git, and the maintainer tools' imports write them)."""
    if "bootstrap_build.core" not in sys.modules:
        sys.modules.setdefault("bootstrap", sys.modules[__name__])  # run as a script, this file is __main__
        from_source("bootstrap_build.core", os.path.join(BUILD_CODE, "core.py"))
    return sys.modules["bootstrap_build.core"]


def from_source(name, path):
    """Import module `name` by compiling the file at `path` (what bootstrap.mk's launcher does for this file)."""
    import types

    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    with open(path, "rb") as handle:
        code = compile(handle.read(), path, "exec", dont_inherit=True)
    exec(code, module.__dict__)
    return module


def report_up_to_date(ve):
    print(f"{ve} is up to date (make ve FORCE=1 rebuilds it)")
    return 0


class Args:
    ve = os.path.join(ROOT, "ve")
    # --freezing: `make freeze` runs us first; telling it to run `make freeze` would be noise.
    force = clean = check = verify = follow_python_version = freezing = one_slot = False


def parse_args(argv):
    """Hand-parsed: a few options do not pay for importing argparse on the no-op path."""
    args, rest = Args(), list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("--force", "--clean", "--check", "--verify", "--follow-python-version", "--freezing",
                   "--one-slot"):
            setattr(args, arg[2:].replace("-", "_"), True)
        elif arg == "--ve" and rest:
            args.ve = rest.pop(0)
        elif arg in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        else:
            error(f"unknown argument {arg!r}. Usage: python3 bootstrap.py [--ve PATH] [--force] [--one-slot] "
                  "[--clean | --check | --verify] [--follow-python-version]")
    return args


def python_version():
    return ".".join(map(str, sys.version_info[:3]))


def follow_python_version(argv):
    """Without PYTHON on the make command line, `.python-version` (pyenv's and uv's file) picks the interpreter."""
    import re

    try:
        with open(os.path.join(ROOT, ".python-version"), encoding="utf-8") as handle:
            wanted = handle.read().split()
    except OSError:
        return
    match = re.match(r"(?:cpython-)?(\d+)\.(\d+)", wanted[0]) if wanted else None
    if not match or "%d.%d" % sys.version_info[:2] == "%s.%s" % match.groups():
        return
    version = "%s.%s" % match.groups()
    found = find_python(version)
    if found is None:
        error(f".python-version asks for Python {version}, which is not installed here (looked for python{version} "
              "on PATH and under pyenv). Install it, or run `make ve PYTHON=<path of a Python>`.")
    rest = [arg for arg in argv if arg != "--follow-python-version"]
    os.execv(found, [found, "-I", "-S", os.path.abspath(__file__), *rest])


def find_python(version):
    """A CPython `version` (X.Y): pyenv's versions first (their shims may refuse to run), then PATH; or None."""
    import glob
    import shutil

    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")),
                   key=lambda path: [int(part) if part.isdigit() else -1
                                     for part in path.split(os.sep)[-3].split(".")], reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path and f"{os.sep}shims{os.sep}" not in on_path:
        found.append(on_path)
    return next((path for path in found if os.access(path, os.X_OK)), None)


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


def beside(ve, suffix):
    """A hidden name beside the ve: `.ve-a` for `ve`, and `.venv-a` (not `..venv-a`) for `.venv`."""
    name = os.path.basename(ve)
    return os.path.join(os.path.dirname(ve), "." + (name[1:] if name.startswith(".") and name != "." else name)
                        + suffix)


def slot_path(ve, slot):
    return beside(ve, f"-{slot}")


def scratch_path(ve):
    """Private HOME, TMPDIR and app-data of a build, beside the ve: a killed build's leftovers are found again."""
    return beside(ve, ".tmp")


def lock_path(ve):
    return beside(ve, ".lock")


# Leftovers carry names only make ve gives: `.ve.tmp` (the scratch), `.ve-a.deleting-<pid>-<n>` (a slot or the
# scratch renamed away to be deleted), `.ve.tmp.moved-aside*` (scratch that older versions set aside).
DELETING = ".deleting-"


def read_inputs(ve):
    """[(label, value)]: everything that decides what ends up in the ve, by content, never by mtime.

    The ve's own resolved path is among them: a virtualenv embeds its path, so a moved or copied checkout
    rebuilds instead of running the tools of the place it came from.
    """
    inputs = [("python", f"{python_version()} {os.path.realpath(sys.executable)} {' '.join(sys.version.split())}"),
              ("ve", ve)]
    build_code = [path for path in list_files(BUILD_CODE) if path.endswith(".py")]
    for path in [LOCK, os.path.abspath(__file__), *build_code, VIRTUALENV_PY] + build_lock_input() + list_files(SEEDS):
        content = "dir" if os.path.isdir(path) else file_sha256(path, missing=b"missing")
        inputs.append((os.path.relpath(path, ROOT), content))
    return inputs


def digest_of(inputs):
    return hashlib.sha256("".join(f"{label}\0{value}\0" for label, value in inputs).encode()).hexdigest()


def input_key(ve):
    return digest_of(read_inputs(ve))


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


def read_stamp(path):
    """{"key", "inputs": {label: value}, "dists": [dist-info names] or None} of a finished build, or None.

    The stamp is the last file a build writes: its key first (all the no-op check needs), then what the key was
    made of (to say why a rebuild happens) and the distributions installed (to notice a ve changed by hand).
    """
    try:
        with open(os.path.join(path, STAMP), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    stamp = {"key": lines[0].strip() if lines else "", "inputs": {}, "dists": None, "umask": None}
    for line in lines[1:]:
        fields = line.split("\t")
        if fields[0] == "input" and len(fields) == 3:
            stamp["inputs"][fields[1]] = fields[2]
        elif fields[0] == "dists":
            stamp["dists"] = fields[1:]
        elif fields[0] == "umask" and len(fields) == 2:
            stamp["umask"] = int(fields[1], 8)
    return stamp


def current_key(ve):
    """The input key of the build `ve` points at, or None if there is no finished build of ours."""
    stamp = read_stamp(ve) if is_our_link(ve) else None
    return stamp["key"] if stamp else None


def installed_dists(path):
    """The dist-info directory names in a ve's site-packages, sorted: what a `pip install` or `uninstall` changes."""
    try:
        return sorted(name for name in os.listdir(built_site_packages(path)) if name.endswith(".dist-info"))
    except OSError:
        return []


def built_site_packages(path):
    """site-packages of the ve at `path`, whichever Python it was built for (lib/ holds one pythonX.Y)."""
    versions = [name for name in os.listdir(os.path.join(path, "lib")) if name.startswith("python")]
    return os.path.join(path, "lib", versions[0] if versions else "python", "site-packages")


def drift(path, stamp):
    """`+added -removed` distributions since the build (empty when none, or when the stamp predates the record)."""
    if stamp is None or stamp["dists"] is None:
        return ""
    now, then = installed_dists(path), stamp["dists"]
    if now == then:
        return ""
    return " ".join([f"+{name[:-10]}" for name in now if name not in then]
                    + [f"-{name[:-10]}" for name in then if name not in now])


def is_our_link(path):
    """A symlink naming one of our slots (its target may be gone): the kind of link only we write."""
    ve = path[:-len(".switching")] if path.endswith(".switching") else path
    try:
        return os.readlink(path) in {os.path.basename(slot_path(ve, slot)) for slot in SLOTS}
    except OSError:
        return False


def is_current(ve, key):
    """`ve` is our finished build for `key`, unchanged by hand: the no-op check (a stamp read, a few stats and one
    listdir)."""
    stamp = read_stamp(ve) if is_our_link(ve) and looks_whole(ve) else None
    return stamp is not None and stamp["key"] == key and not drift(ve, stamp)


def looks_whole(path):
    """The files without which a stamped directory is no ve at all: our marker, pyvenv.cfg (without it
    bin/python is the bare base interpreter) and bin/python. A stamp alone proves nothing: a deletion by an older
    version, interrupted, could leave the stamp behind them."""
    return all(os.path.exists(os.path.join(path, name)) for name in (MARKER, "pyvenv.cfg", WHOLE_PYTHON))


WHOLE_PYTHON = os.path.join("bin", "python")


def finished(path):
    """Our slot holding a finished build (its stamp and the files of looks_whole)."""
    return is_ours(path) and os.path.isfile(os.path.join(path, STAMP)) and looks_whole(path)


def warn_if_requirements_in_changed():
    """One line when requirements.in no longer matches the sha256 the lock records for it (no rebuild for that)."""
    try:
        with open(LOCK, encoding="utf-8-sig") as handle:
            header = [line for line, _ in zip(handle, range(5)) if line.startswith("# requirements.in sha256:")]
    except (OSError, UnicodeDecodeError):
        return
    if header and header[0].split(":", 1)[1].strip() != file_sha256(os.path.join(ROOT, "requirements.in"), b"-"):
        print("WARNING: requirements.in changed since requirements.txt was made; the ve is built from the lock as it "
              "is. Run `make freeze` to lock the change.", file=sys.stderr)


def leftovers(ve):
    """What interrupted or killed runs left beside the ve, all ours by name or marker: the scratch, whatever was
    renamed away to be deleted, and any slot of ours that holds no finished build (half-built or half-deleted)."""
    where = os.path.dirname(ve)
    scratch = os.path.basename(scratch_path(ve))
    prefixes = tuple(os.path.basename(path) + DELETING for path in [scratch_path(ve)] + slot_paths(ve))
    try:
        names = sorted(os.listdir(where))
    except OSError:
        return []
    found = [os.path.join(where, name) for name in names
             if name == scratch or name.startswith(prefixes) or name.startswith(scratch + ".moved-aside")]
    return found + [path for path in slot_paths(ve) if is_ours(path) and not finished(path)]


def slot_paths(ve):
    return [slot_path(ve, slot) for slot in SLOTS]


def build_lock_input():
    """The build lock is an input of the ve (a fallback build uses it) when there is one; [] keeps old keys."""
    return [BUILD_LOCK] if os.path.exists(BUILD_LOCK) else []


# ---------------------------------------------------------------- the switch of `make freeze`
# `make freeze` (bootstrap_tools/switch.py) stages each new file beside its destination, writes this journal, and
# only then renames the staged files into place and deletes what the new lock no longer needs. Whoever finds the
# journal (the next make ve, make check, make freeze or make clean) completes those moves under the switch lock:
# a build holds that lock shared while it reads its inputs, a switch holds it exclusive, so no build ever reads a
# half-switched tree, and a killed switch is finished by the next command instead of being left half-done.

SWITCH_JOURNAL = os.path.join(".bootstrap", "switch-journal.json")


def switch_pending(root=ROOT):
    return os.path.exists(os.path.join(root, SWITCH_JOURNAL))


def __getattr__(name):
    """The build's names (bootstrap_build.core), for the maintainer tools that reach them through this module; only
    looked up when a name is not found here, so the no-op never imports the build."""
    if name.startswith("__"):
        raise AttributeError(name)
    return getattr(core(), name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
