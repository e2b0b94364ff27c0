"""Build ./ve from this checkout alone: no network, nothing ambient, every artifact hash-checked.

Usage: python3 -I -S bootstrap.py [--ve PATH] [--force]   (normally through `make ve`)

The environment lives in one of two slot directories beside it, `.ve-a` and `.ve-b`, and `ve` is a
symlink to the current one. A virtualenv embeds its absolute path, so it cannot be built elsewhere and
moved: a rebuild goes into the other slot, at its final path, and only a finished, checked build is
switched in by atomically replacing the symlink. A failed, interrupted or killed run leaves `ve`
pointing at the previous build; the next run wipes the half-built slot and starts over.
"""

import fcntl
import hashlib
import os
import sys
import time

# Modules only a build needs (subprocess, shutil, tempfile, zipfile...) are imported in the functions that
# use them: the no-op path (nothing changed) must stay well under 0.1 s, and they would take half of that.

ROOT = os.path.dirname(os.path.abspath(__file__))
LOCK = os.path.join(ROOT, "requirements.txt")
WHEELHOUSE = os.path.join(ROOT, "requirements")
VIRTUALENV_PY = os.path.join(ROOT, "virtualenv.py")
SEEDS = os.path.join(ROOT, "virtualenv_support")
SEED_SUMS = os.path.join(SEEDS, "SHA256SUMS")
STAMP = "bootstrap-stamp.txt"
SLOTS = ("a", "b")
# Fixed, so nothing a build runs can stamp the time into what it writes (under it, py_compile and pip
# default to hash-based .pyc files); with checked-hash compilation, rebuilds are byte-identical.
SOURCE_DATE_EPOCH = "315532800"
AMBIENT_PREFIXES = ("PIP_", "VIRTUALENV_", "UV_", "PYTHON", "CONDA_", "PIPENV_", "PDM_", "POETRY_", "XDG_")
AMBIENT_NAMES = ("VIRTUAL_ENV", "__PYVENV_LAUNCHER__", "SETUPTOOLS_USE_DISTUTILS", "DISTUTILS_DEBUG")


class Pin:
    """One locked requirement: `name==version`, its marker (kept verbatim for pip) and allowed sha256s."""

    def __init__(self, name, version, hashes, line):
        self.name, self.version, self.hashes, self.line = name, version, hashes, line

    def __str__(self):
        return f"{self.name}=={self.version}"


def error(message):
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def step(message):
    print(f"==> {message}", flush=True)


def main(argv):
    args = parse_args(argv)
    started = time.monotonic()
    ve = os.path.abspath(args.ve)
    key = input_key()
    try:
        # Checked before locking too, so a read-only checkout with a current ve is still a no-op.
        if not args.force and current_key(ve) == key:
            return report_up_to_date(args.ve)
        with exclusive_lock(ve):
            if not args.force and current_key(ve) == key:  # built meanwhile by a concurrent `make ve`
                return report_up_to_date(args.ve)
            count = build(ve, key)
    except KeyboardInterrupt:
        error(f"interrupted; {args.ve} still holds the previous build (if any). Run `make ve` again.")
    seconds = time.monotonic() - started
    step(f"done: {args.ve} ready, Python {python_version()} ({sys.executable}), "
         f"{count} packages installed, {seconds:.1f} s")
    return 0


def report_up_to_date(ve):
    print(f"{ve} is up to date (make ve FORCE=1 rebuilds it)")
    return 0


class Args:
    ve = os.path.join(ROOT, "ve")
    force = False


def parse_args(argv):
    """Hand-parsed: two options do not pay for importing argparse on the no-op path."""
    args, rest = Args(), list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--force":
            args.force = True
        elif arg == "--ve" and rest:
            args.ve = rest.pop(0)
        elif arg in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        else:
            error(f"unknown argument {arg!r}. Usage: python3 bootstrap.py [--ve PATH] [--force]")
    return args


def python_version():
    return ".".join(map(str, sys.version_info[:3]))


def slot_path(ve, slot):
    return os.path.join(os.path.dirname(ve), f".{os.path.basename(ve)}-{slot}")


def exclusive_lock(ve):
    """Serialize builds of one ve: a second `make ve` waits, then finds the first one's result."""
    path = os.path.join(os.path.dirname(ve), f".{os.path.basename(ve)}.lock")
    try:
        os.makedirs(os.path.dirname(ve), exist_ok=True)
        handle = open(path, "a")
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


def input_key():
    """A digest of everything that decides what ends up in the ve: content, never mtimes."""
    digest = hashlib.sha256()
    digest.update(f"{sys.version}\0{os.path.realpath(sys.executable)}\0".encode())
    for path in [LOCK, os.path.abspath(__file__), VIRTUALENV_PY] + list_files(SEEDS):
        digest.update(os.path.relpath(path, ROOT).encode() + b"\0")
        digest.update(file_sha256(path, missing=b"missing").encode() + b"\0")
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


def current_key(ve):
    """The input key of the build `ve` points at, or None if there is no finished build."""
    try:
        with open(os.path.join(ve, STAMP)) as handle:
            return handle.read().strip()
    except OSError:
        return None


def build(ve, key):
    import tempfile

    pins = read_lock()
    check_interpreter(read_targets())
    seed = check_seed()
    check_artifacts(pins)
    slot = pick_slot(ve)
    with tempfile.TemporaryDirectory(prefix="bootstrap-") as scratch:
        env = hermetic_env(scratch)
        create_env(slot, scratch, env)
        install(slot, seed, pins, scratch, env)
        check_env(slot, env)
    write_stamp(slot, key)
    switch(ve, slot)
    return count_installed(slot)


def read_lock():
    """Parse requirements.txt as pip-compile writes it: one `name==version [; marker]` with --hash options."""
    try:
        with open(LOCK, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        error(f"cannot read {LOCK}: {exc.strerror}. Restore it with `git checkout requirements.txt`.")
    pins = []
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement, _, options = line.partition(" --")
        options = ("--" + options).split() if options else []
        hashes = {option.split(":", 1)[1] for option in options if option.startswith("--hash=sha256:")}
        spec = requirement.split(";", 1)[0].strip()
        name, sep, version = spec.partition("==")
        if not sep or not version.strip() or any(c in version for c in "*,<>!~= "):
            error(f"requirements.txt line `{requirement.strip()}` is not pinned with ==. "
                  "The lock is generated: run `make freeze` instead of editing it.")
        if not hashes:
            error(f"requirements.txt line `{requirement.strip()}` has no --hash=sha256. "
                  "The lock is generated: run `make freeze` instead of editing it.")
        pins.append(Pin(canonical_name(name.split("[", 1)[0]), version.strip(), hashes, requirement.strip()))
    if not pins:
        error("requirements.txt pins nothing. Run `make freeze` to lock requirements.in.")
    return pins


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
    with open(LOCK, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("# targets:"):
                return line.split(":", 1)[1].split()
    return None


def check_interpreter(targets):
    running = "%d.%d" % sys.version_info[:2]
    if targets is not None and running not in targets:
        error(f"Python {running} ({sys.executable}) is not a target of requirements.txt "
              f"(targets: {' '.join(targets)}). Run `make ve PYTHON=<path of a Python {targets[-1]}>`, "
              "or add the version to TARGET_PYTHONS and run `make freeze`.")


def check_seed():
    """Verify the pip wheel that seeds the ve against virtualenv_support/SHA256SUMS; return its path."""
    if not os.path.isfile(VIRTUALENV_PY):
        error(f"{VIRTUALENV_PY} is missing. Restore it with `git checkout virtualenv.py` "
              "(or regenerate it with `make freeze-upgrade`).")
    recorded = read_seed_sums()
    wheels = [name for name in recorded if name.startswith("pip-") and name.endswith(".whl")]
    if len(wheels) != 1:
        error(f"{SEED_SUMS} must record exactly one pip wheel (found {len(wheels)}). "
              "Restore virtualenv_support/ with `git checkout virtualenv_support`.")
    path = os.path.join(SEEDS, wheels[0])
    if not os.path.isfile(path):
        error(f"seed wheel {path} is missing. Restore it with `git checkout virtualenv_support`.")
    verify_file(path, {recorded[wheels[0]]}, "virtualenv_support/SHA256SUMS",
                "restore it with `git checkout virtualenv_support`")
    return path


def read_seed_sums():
    try:
        with open(SEED_SUMS, encoding="utf-8") as handle:
            lines = [line.split() for line in handle if line.strip() and not line.startswith("#")]
    except OSError:
        error(f"{SEED_SUMS} is missing. Restore it with `git checkout virtualenv_support`.")
    return {fields[1].lstrip("*"): fields[0] for fields in lines if len(fields) == 2}


def verify_file(path, expected, source, fix):
    actual = file_sha256(path)
    if actual not in expected:
        error(f"{os.path.relpath(path, ROOT)} does not match {source}: expected sha256 "
              f"{' or '.join(sorted(expected))}, got {actual}. The file was changed or corrupted: {fix}.")


def check_artifacts(pins):
    """Map each pin to a file in requirements/ whose sha256 the lock allows; refuse before pip runs."""
    by_hash, by_pin = {}, {}
    for path in list_files(WHEELHOUSE):
        if os.path.isfile(path):
            by_hash[file_sha256(path)] = path
            by_pin.setdefault(artifact_pin(os.path.basename(path)), []).append(path)
    artifacts = {}
    for pin in pins:
        matches = [by_hash[digest] for digest in sorted(pin.hashes) if digest in by_hash]
        if matches:
            artifacts[pin.name] = matches[0]
            continue
        for path in by_pin.get((pin.name, pin.version), []):
            verify_file(path, pin.hashes, f"the hashes of {pin} in requirements.txt",
                        "restore it with `git checkout requirements/` or fetch it again with `make freeze`")
        error(f"requirements/ has no artifact for {pin} (pinned in requirements.txt). "
              "Restore it with `git checkout requirements/` or fetch it with `make freeze`.")
    return artifacts


def artifact_pin(filename):
    """(name, version) of a wheel file `name-version-tags.whl`; only used to name a tampered file."""
    name, _, rest = filename.partition("-")
    return canonical_name(name), rest.split("-", 1)[0]


def pick_slot(ve):
    """The slot `ve` does not point at: it is wiped and rebuilt at its final path."""
    current = os.path.realpath(ve) if os.path.islink(ve) else None
    path = next(path for path in (slot_path(ve, slot) for slot in SLOTS) if path != current)
    remove(path)
    return path


def remove(path):
    import shutil

    if os.path.islink(path) or os.path.isfile(path):
        os.unlink(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def hermetic_env(scratch):
    """The caller's environment minus everything that steers Python, pip or virtualenv.

    HOME and the XDG dirs point into a private scratch dir, so no user-level config is found;
    PIP_CONFIG_FILE=os.devnull makes pip skip every config file, the global ones included.
    """
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(AMBIENT_PREFIXES) and key not in AMBIENT_NAMES}
    env.update({
        "HOME": scratch,
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


def run(argv, env, what):
    """Run argv quietly; on failure show the quoted command and its output, then stop."""
    import shlex
    import subprocess

    result = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    if result.returncode != 0:
        # Indented, so the child's own `ERROR:` lines (pip prints some) do not read as more errors of ours.
        print("".join(f"    {line}\n" for line in result.stdout.rstrip().splitlines()), end="", file=sys.stderr)
        error(f"{what} failed (exit {result.returncode}): {shlex.join(argv)}. "
              "See the output above; the previous ve is untouched.")
    return result.stdout


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

    runner = os.path.join(scratch, os.path.basename(seed))
    shutil.copyfile(seed, runner)  # a private copy, checked again: nobody can swap it between check and use
    verify_file(runner, {file_sha256(seed)}, "the verified seed wheel", "retry")
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
        script = (f"#!{python_in(slot)}\nimport sys\nfrom {module} import {function}\n\n"
                  f"if __name__ == \"__main__\":\n    sys.exit({function}())\n")
        lines.append(write_installed(os.path.join(slot, "bin", name), script, site, 0o755))
    lines.append(write_installed(os.path.join(site, dist_info, "INSTALLER"), "bootstrap.py\n", site, 0o644))
    record = os.path.join(site, dist_info, "RECORD")
    with open(record, "a", encoding="utf-8") as handle:
        handle.writelines(lines)
    return record


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
    import subprocess

    argv = [python_in(slot), "-I", "-S", "-m", "compileall", "-f", "-qq", "-j0",
            "--invalidation-mode", "checked-hash", *(["-x", skip] if skip else []), site_packages(slot)]
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


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
    remove(link)
    os.symlink(os.path.basename(slot), link)
    if os.path.isdir(ve) and not os.path.islink(ve):
        # A plain directory (made by hand or an older tool) cannot be replaced atomically by a link.
        remove(ve)
    os.replace(link, ve)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
