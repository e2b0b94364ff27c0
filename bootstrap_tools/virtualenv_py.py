"""Generate the repository's single-file `virtualenv.py` from hashed, pinned wheels.

    python bootstrap_tools/virtualenv_py.py lock    # bootstrap_tools/virtualenv.in per Python -> virtualenv.txt
    python bootstrap_tools/virtualenv_py.py build   # fetch + verify those wheels -> virtualenv.py

`virtualenv.py` is to virtualenv what get-pip.py is to pip: one text file, runnable by every
supported CPython, carrying virtualenv and its dependencies as a base64 zip. Each Python gets the
wheels its own resolution picked (filelock and platformdirs differ below 3.11), selected at run time.
"""

import argparse
import base64
import csv
import hashlib
import io
import json
import re
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

if __package__ in (None, ""):
    # Run as `python bootstrap_tools/virtualenv_py.py`: make `bootstrap_tools.run` importable from the repo root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bootstrap_tools.lockfile import hashed_line, sha256 as file_sha256  # noqa: E402
from bootstrap_tools.pythons import find_python, marker_applies, marker_for, require_pythons  # noqa: E402,F401
from bootstrap_tools import cooldown  # noqa: E402
from bootstrap_tools.run import ToolError, fail, hermetic_env, index_args, run  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
INPUT = REPO / "bootstrap_tools" / "virtualenv.in"
LOCK = REPO / "bootstrap_tools" / "virtualenv.txt"
OUTPUT = REPO / "virtualenv.py"
CACHE = REPO / ".bootstrap" / "cache" / "virtualenv-wheels"
DEFAULT_PYTHONS = "3.10 3.11 3.12 3.13"
LOCK_COMMAND = "python bootstrap_tools/virtualenv_py.py lock"
BUILD_COMMAND = "python bootstrap_tools/virtualenv_py.py build"

MANIFEST = "manifest.json"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
ZIP_LEVEL = 9
FILE_MODE = 0o644
UNIX = 3  # ZipInfo.create_system for Unix, fixed so the archive does not depend on the build OS

# Our bootstrap always creates envs with --no-seed and installs pip from its own hashed wheel, so
# virtualenv's bundled seed wheels and the SBOMs are dead weight. embed/__init__.py stays: it is the
# bundle-version table that `--version` and the seeders' lookups import.
EMBED_DIR = PurePosixPath("virtualenv/seed/wheels/embed")
STRIP_NOTE = (
    "Without them --version and --no-seed work on Python 3.10-3.13 and default seeding fails",
    "(FileNotFoundError for the bundled pip wheel): use --no-seed, or `build --keep-embedded`",
    "to keep them (measured when this was introduced: 1.7 MB stripped against 9.4 MB kept).",
)


# ---------------------------------------------------------------- lock

def resolve(python, index_url, home, pip_wheel=None):
    """Resolve bootstrap_tools/virtualenv.in under `python`: {name: (version, sha256, filename)}.

    pip_wheel: a pip wheel to run there instead of that Python's own pip (which may predate options we pass,
    such as the cooling-off's --uploaded-prior-to); pip runs from a wheel file as from a directory."""
    report = home / "report.json"
    pip = [pip_wheel / "pip"] if pip_wheel else ["-m", "pip"]
    argv = [python, "-I", *pip, "--isolated", "install", "--dry-run", "--ignore-installed",
            "--only-binary=:all:", "--quiet", "--report", report, "-r", INPUT]
    run(argv + index_args(index_url), env=hermetic_env(home))
    return {canonicalize_name(item["metadata"]["name"]): pinned_wheel(item)
            for item in json.loads(report.read_text())["install"]}


def pinned_wheel(item):
    info = item["download_info"]
    archive = info.get("archive_info")
    filename = info["url"].rsplit("/", 1)[-1]
    if archive is None or not filename.endswith(".whl"):
        raise ToolError(f"{item['metadata']['name']} resolved to {filename}, not a wheel from the index")
    require_pure(filename)
    # pip < 23 reports only "hash": "sha256=..."; newer pips add the "hashes" mapping.
    sha256 = archive.get("hashes", {}).get("sha256") or archive.get("hash", "").partition("sha256=")[2]
    if not sha256:
        raise ToolError(f"pip reported no sha256 for {filename}")
    return item["metadata"]["version"], sha256, filename


def require_pure(filename):
    """Refuse anything but a pure-Python py3 wheel: the file must run on every CPython unchanged."""
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise ToolError(f"{filename}: not a wheel file name ({exc})") from None
    pure = all(tag.abi == "none" and tag.platform == "any" for tag in tags)
    if not pure or not any(tag.interpreter.startswith("py3") for tag in tags):
        raise ToolError(f"{filename} is not a pure-Python py3-none-any wheel: virtualenv.py can only carry those")


def merge_resolutions(resolutions):
    """{python: {name: pin}} -> {(name, version, sha256): [pythons]}, one hash per (name, version)."""
    merged = {}
    hashes = {}
    for python, pins in resolutions.items():
        for name, (version, sha256, filename) in pins.items():
            known = hashes.setdefault((name, version), sha256)
            if known != sha256:
                raise ToolError(f"{name} {version} resolved to two files ({known} vs {sha256}); refusing to guess")
            merged.setdefault((name, version, sha256), []).append(python)
    return merged


def render_lock(merged, targets):
    lines = [
        f"# Generated by `{LOCK_COMMAND}` from bootstrap_tools/virtualenv.in; do not edit.",
        f"# pythons: {' '.join(targets)}",
    ]
    for (name, version, sha256), used in sorted(merged.items(), key=lambda item: (item[0][0], Version(item[0][1]))):
        marker = marker_for(used, targets)
        requirement = f"{name}=={version}" + (f" ; {marker}" if marker else "")
        lines.append(hashed_line(requirement, [sha256]))
    return "\n".join(lines) + "\n"


def lock(args):
    targets = args.pythons
    with tempfile.TemporaryDirectory(prefix="virtualenv-py-lock-") as home:
        pythons = require_pythons(targets, home)
        resolutions = {}
        for version, python in pythons.items():
            print(f"resolving {INPUT.relative_to(REPO)} with {python} ({version})")
            resolutions[version] = resolve(python, args.index_url, Path(home), args.pip)
    args.lock_file.write_text(render_lock(merge_resolutions(resolutions), targets))
    print(f"wrote {args.lock_file}")


# ---------------------------------------------------------------- build: read lock, fetch, verify

class Pin:
    """One line of bootstrap_tools/virtualenv.txt."""

    def __init__(self, name, version, sha256, marker):
        self.name, self.version, self.sha256, self.marker = name, version, sha256, marker

    @property
    def key(self):
        return f"{self.name}-{self.version}"

    def applies_to(self, python):
        return self.marker is None or marker_applies(self.marker, python)


def read_lock(path):
    """(target pythons, [Pin]) from a lock file written by `lock`."""
    if not path.is_file():
        raise ToolError(f"{path} is missing: run `{LOCK_COMMAND}` first")
    targets, pins = None, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("# pythons:"):
            targets = line.partition(":")[2].split()
        elif line.strip() and not line.startswith("#"):
            pins.append(parse_pin(line, f"{path}:{number}"))
    if not targets or not pins:
        raise ToolError(f"{path} has no '# pythons:' line or no pins: regenerate it with `{LOCK_COMMAND}`")
    return sorted(targets, key=Version), pins


def parse_pin(line, where):
    text, _, sha256 = line.partition(" --hash=sha256:")
    try:
        requirement = Requirement(text)
    except InvalidRequirement as exc:
        raise ToolError(f"{where}: {exc}") from None
    specs = list(requirement.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or len(sha256.strip()) != 64:
        raise ToolError(f"{where}: expected 'name==version [; marker] --hash=sha256:<64 hex>'")
    return Pin(canonicalize_name(requirement.name), specs[0].version, sha256.strip(), requirement.marker)


def select(pins, targets):
    """{python: [Pin]}: the pins whose marker holds for each target python."""
    selection = {}
    for python in targets:
        chosen = [pin for pin in pins if pin.applies_to(python)]
        names = [pin.name for pin in chosen]
        if len(set(names)) != len(names) or "virtualenv" not in names:
            raise ToolError(f"lock file gives Python {python} {sorted(names)}: regenerate it with `{LOCK_COMMAND}`")
        selection[python] = chosen
    return selection


def wheels_named(directory, pin):
    """The wheels in `directory` named like `pin` (any tags, any hash)."""
    found = []
    for path in sorted(directory.glob("*.whl")) if directory.is_dir() else []:
        try:
            name, version, _, _ = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        if name == pin.name and version == Version(pin.version):
            found.append(path)
    return found


def find_wheel(directory, pin):
    """The wheel for `pin` in `directory` whose sha256 matches, or None."""
    return next((path for path in wheels_named(directory, pin) if file_sha256(path) == pin.sha256), None)


def download(pins, cache, index_url):
    """Fetch `pins` by exact version and hash into `cache` with pip (hermetic, no config)."""
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="virtualenv-py-build-") as home:
        requirements = Path(home) / "requirements.txt"
        for batch in distinct_name_batches(pins):
            # No markers: every pin is fetched whatever Python runs this, hence --ignore-requires-python.
            requirements.write_text("".join(hashed_line(f"{pin.name}=={pin.version}", [pin.sha256]) + "\n"
                                            for pin in batch))
            argv = [sys.executable, "-I", "-m", "pip", "--isolated", "download", "--no-deps", "--only-binary=:all:",
                    "--require-hashes", "--ignore-requires-python", "--quiet", "--dest", cache, "-r", requirements]
            run(argv + index_args(index_url), env=hermetic_env(home))


def distinct_name_batches(pins):
    """Split pins so no batch names a project twice: pip treats two versions of one as a conflict."""
    batches = []
    for pin in pins:
        batch = next((batch for batch in batches if pin.name not in {other.name for other in batch}), None)
        if batch is None:
            batch = []
            batches.append(batch)
        batch.append(pin)
    return batches


def fetch(pins, cache, wheels_dir, index_url):
    """{pin.key: verified wheel path}, from --wheels DIR as it is, else the cache, downloading what it lacks."""
    if wheels_dir is None:
        missing = [pin for pin in pins if find_wheel(cache, pin) is None]
        if missing:
            download(missing, cache, index_url)
    source = wheels_dir or cache
    paths = {}
    for pin in pins:
        # A same-named file with another hash is kept so that verify() can name it.
        candidates = wheels_named(source, pin)
        if not candidates:
            raise ToolError(f"no wheel for {pin.key} in {source}")
        path = find_wheel(source, pin) or candidates[0]
        verify(path, pin)
        paths[pin.key] = path
    return paths


def verify(path, pin):
    actual = file_sha256(path)
    if actual != pin.sha256:
        raise ToolError(f"{path}: sha256 mismatch: expected {pin.sha256}, actual {actual}")
    require_pure(path.name)


# ---------------------------------------------------------------- build: the payload zip

def is_embedded_wheel(member):
    """virtualenv's bundled seed wheels (a wheel's member name)."""
    path = PurePosixPath(member)
    return path.parent == EMBED_DIR and path.suffix == ".whl"


def is_dead_weight(member):
    """virtualenv's bundled seed wheels and every wheel's SBOM: unused with `--no-seed` (see STRIP_NOTE)."""
    path = PurePosixPath(member)
    sbom = len(path.parts) > 2 and path.parts[0].endswith(".dist-info") and path.parts[1] == "sboms"
    return is_embedded_wheel(member) or sbom


def wheel_dir_name(path):
    name, version, _, _ = parse_wheel_filename(Path(path).name)
    return f"{name}-{version}"


def read_wheel(path, strip):
    """{member: bytes} of a wheel's files, and the number of bytes stripped."""
    files, stripped = {}, 0
    with zipfile.ZipFile(path) as wheel:
        for info in wheel.infolist():
            if info.is_dir():
                continue
            if strip and is_dead_weight(info.filename):
                stripped += info.file_size
                continue
            files[info.filename] = wheel.read(info)
    return files, stripped


def zip_entry(name):
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.create_system = UNIX
    info.external_attr = (0o100000 | FILE_MODE) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_payload(selection, strip=True):
    """The payload zip (bytes) and bytes stripped, for `selection` = {python: [wheel paths]}.

    Each wheel is unpacked once under `<name>-<version>/` however many Pythons use it; manifest.json
    maps each Python to its directories. Sorted entries, a fixed date and modes and one compression
    level make the bytes a function of the wheels alone.
    """
    manifest = {python: sorted(wheel_dir_name(path) for path in paths) for python, paths in selection.items()}
    wheels = {wheel_dir_name(path): path for paths in selection.values() for path in paths}
    entries = {MANIFEST: (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()}
    stripped = 0
    for directory, path in sorted(wheels.items()):
        files, removed = read_wheel(path, strip)
        stripped += removed
        entries.update({f"{directory}/{member}": data for member, data in files.items()})
    return zip_payload(entries), stripped


def payload_entries(payload):
    """The payload zip's bytes -> {archive name: bytes}, the inverse of zip_payload."""
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def zip_payload(entries):
    """{archive name: bytes} -> the payload zip's bytes, the same for the same entries."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            archive.writestr(zip_entry(name), entries[name], compresslevel=ZIP_LEVEL)
    return buffer.getvalue()


# ---------------------------------------------------------------- build: the script

LAUNCHER = '''\
# Launcher: stdlib only, and old syntax so that any Python reaches the version check.
import base64
import binascii
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import zipfile

MIN_PYTHON = {min_python!r}


def check_python():
    if sys.version_info[:2] < MIN_PYTHON:
        here = sys.version.split()[0]
        sys.exit("virtualenv.py needs CPython %d.%d or newer; this is %s" % (MIN_PYTHON + (here,)))


def check_payload():
    """The payload must match the header's sha256: a damaged copy stops before any of it runs."""
    with open(__file__, "rb") as handle:
        head = handle.read(8192).decode("ascii", "replace")
    lines = head.splitlines()
    recorded = [lines[number + 1].split("sha256:")[-1] for number, line in enumerate(lines[:-1])
                if line.startswith("# Payload: ")]
    try:
        actual = hashlib.sha256(base64.b64decode(PAYLOAD)).hexdigest()
    except (binascii.Error, ValueError):
        actual = "(not valid base64)"
    if recorded != [actual]:
        sys.exit("ERROR: %s is damaged: its payload does not match the sha256 in its header "
                 "(expected %s, got %s). Restore it with `git checkout -- virtualenv.py` "
                 "or regenerate it with `make freeze-upgrade`."
                 % (__file__, recorded[0] if recorded else "(no sha256 line)", actual))


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def wheel_dirs(manifest):
    """The directories for this Python: its own group, or the newest group for a newer Python."""
    groups = sorted(manifest, key=version_key)
    return manifest[[group for group in groups if version_key(group) <= sys.version_info[:2]][-1]]


def unpack(archive, dirs, target):
    members = [name for name in archive.namelist() if name.split("/", 1)[0] in dirs]
    archive.extractall(target, members)
    return [os.path.join(target, directory) for directory in dirs]


def main():
    check_python()
    check_payload()
    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(PAYLOAD)))
    dirs = wheel_dirs(json.loads(archive.read("{manifest}")))
    # A real directory, not zipimport: virtualenv runs its own files (e.g. py_info) by path.
    target = tempfile.mkdtemp(prefix="virtualenv-py-")
    try:
        sys.path[:0] = unpack(archive, dirs, target)
        sys.dont_write_bytecode = True  # the tree goes on exit: writing .pyc files is wasted work
        from virtualenv.__main__ import run_with_catch

        run_with_catch(sys.argv[1:])  # exits with virtualenv's own status
    finally:
        shutil.rmtree(target, ignore_errors=True)
'''

TAIL = '''

if __name__ == "__main__":
    main()
'''


def render_header(selection, pins, payload, stripped, strip):
    """The comment block: what the file is, how it was made, and exactly what it carries."""
    by_key = {pin.key: pin for pin in pins}
    users = {}
    for python, chosen in selection.items():
        for pin in chosen:
            users.setdefault(pin.key, []).append(python)
    version = next(pin.version for pin in pins if pin.name == "virtualenv")
    lines = [
        "#!/usr/bin/env python3",
        f"# virtualenv.py: virtualenv {version} in one file, for CPython {min(selection, key=Version)}+ "
        "(as get-pip.py is for pip).",
        "# Usage: python virtualenv.py --no-seed DEST   (any virtualenv option; see --help)",
        f"# Generated by `{BUILD_COMMAND}` (make freeze-upgrade); do not edit.",
        "# Inputs: bootstrap_tools/virtualenv.txt (hashed pins) from bootstrap_tools/virtualenv.in.",
        "#",
        "# Wheels, each unpacked at run time for the Pythons listed (a newer Python uses the newest group):",
    ]
    for key in sorted(users, key=lambda key: (by_key[key].name, Version(by_key[key].version))):
        pin = by_key[key]
        lines.append(f"#   {pin.name} {pin.version}  for Python {' '.join(users[key])}")
        lines.append(f"#     sha256:{pin.sha256}")
    lines.append("#")
    lines.append("# Payload: the base64 zip at the end of this file; of the decoded zip,")
    lines.append(f"#   sha256:{hashlib.sha256(payload).hexdigest()}")
    if strip:
        lines.append(f"# Stripped {stripped} bytes: virtualenv's bundled seed wheels (pip, setuptools) and SBOMs.")
        lines.extend(f"# {line}" for line in STRIP_NOTE)
    else:
        lines.append("# Kept: virtualenv's bundled seed wheels and SBOMs (built with --keep-embedded).")
    return "\n".join(lines) + "\n"


def render_script(header, payload, min_python):
    encoded = base64.encodebytes(payload).decode("ascii")  # 76-char lines, each ending in "\n"
    launcher = LAUNCHER.format(min_python=min_python, manifest=MANIFEST)
    return f'{header}\n{launcher}\n\nPAYLOAD = b"""\n{encoded}"""{TAIL}'


def decoded_payload(script_text):
    """(sha256 recorded in the header, the decoded payload bytes) of a generated virtualenv.py.

    Raises ToolError naming what is missing or broken.
    """
    recorded = re.search(r"^# Payload: .*\n#\s+sha256:([0-9a-f]{64})$", script_text, re.MULTILINE)
    encoded = re.search(r'^PAYLOAD = b"""\n(.*?)"""', script_text, re.MULTILINE | re.DOTALL)
    if not recorded or not encoded:
        raise ToolError("it has no payload sha256 in its header or no PAYLOAD")
    try:
        return recorded.group(1), base64.b64decode(encoded.group(1), validate=False)
    except ValueError as exc:
        raise ToolError(f"its payload is not valid base64 ({exc})") from None


def payload_mismatch(script_text):
    """Why a generated virtualenv.py's payload does not match the sha256 in its header, or None if it does."""
    try:
        recorded, payload = decoded_payload(script_text)
    except ToolError as exc:
        return str(exc)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != recorded:
        return f"its payload does not match its header (expected sha256 {recorded}, got {actual})"
    return None


HEADER_WHEEL = re.compile(r"^#   (\S+) (\S+)  for Python [0-9. ]+\n#     sha256:([0-9a-f]{64})$", re.MULTILINE)


def header_wheels(script_text):
    """{(name, version, sha256)} of the wheels a virtualenv.py's header lists."""
    return {match.groups() for match in HEADER_WHEEL.finditer(script_text.partition("\n\n")[0] + "\n")}


def stripped_bytes(entries):
    """What `build` stripped from the wheels now in `entries`: the sizes their RECORDs give the dead weight."""
    total = 0
    for name, data in entries.items():
        if name.count("/") == 2 and name.endswith(".dist-info/RECORD"):
            for row in csv.reader(io.StringIO(data.decode("utf-8"))):
                if len(row) >= 3 and row[2].isdigit() and is_dead_weight(row[0]):
                    total += int(row[2])
    return total


def record_problems(entries, directories):
    """Why the files of each unpacked wheel in `entries` disagree with its own RECORD, as a list.

    Every file must be listed with its sha256, and every listed file present except what `build` strips.
    """
    problems = []
    for directory in sorted(directories):
        records = [name for name in entries
                   if name.startswith(directory + "/") and name.count("/") == 2 and name.endswith(".dist-info/RECORD")]
        if len(records) != 1:
            problems.append(f"its payload's {directory}/ has {len(records)} RECORD files, not one")
            continue
        listed = {}
        for row in csv.reader(io.StringIO(entries[records[0]].decode("utf-8"))):
            if row and len(row) >= 2 and row[1]:
                listed[f"{directory}/{row[0]}"] = row[1]
        present = {name for name in entries if name.startswith(directory + "/")} - set(records)
        for name in sorted(present - set(listed)):
            problems.append(f"its payload's {name} is not in its wheel's RECORD")
        for name, recorded in sorted(listed.items()):
            if name not in entries:
                if not is_dead_weight(name.partition("/")[2]):
                    problems.append(f"its payload lacks {name}, which its wheel's RECORD lists")
            elif record_digest(entries[name]) != recorded:
                problems.append(f"its payload's {name} does not match the sha256 its wheel's RECORD gives it")
    return problems


def record_digest(data):
    """A RECORD hash field: `sha256=` and the urlsafe base64 digest without padding."""
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def render_from_payload(script_text, lock_file):
    """What `build` writes from the wheels inside `script_text`'s own payload and the pins of `lock_file`.

    The payload holds each wheel unpacked, so re-zipping its entries, re-reading what was stripped from the
    RECORDs and rendering header and launcher again needs no network and no cache; an authentic file is
    equal to the result byte for byte. Raises ToolError when the inputs themselves do not fit together.
    """
    targets, pins = read_lock(lock_file)
    selection = select(pins, targets)
    used = sorted({pin.key: pin for chosen in selection.values() for pin in chosen}.values(), key=lambda pin: pin.key)
    _, payload = decoded_payload(script_text)
    try:
        entries = payload_entries(payload)
        manifest = json.loads(entries[MANIFEST])
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ToolError(f"its payload is not a payload zip with {MANIFEST} ({exc})") from None
    wanted = {python: sorted(pin.key for pin in chosen) for python, chosen in selection.items()}
    if manifest != wanted:
        raise ToolError(f"its payload's {MANIFEST} does not give each Python the wheels {lock_file.name} selects "
                        f"for it (payload: {manifest}; lock: {wanted})")
    problems = record_problems(entries, {directory for dirs in manifest.values() for directory in dirs})
    if problems:
        raise ToolError("; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""))
    strip = not any(is_embedded_wheel(name.partition("/")[2]) for name in entries)
    rebuilt = payload if zip_payload(entries) == payload else zip_payload(entries)
    header = render_header(selection, used, rebuilt, stripped_bytes(entries) if strip else 0, strip)
    min_python = tuple(Version(targets[0]).release[:2])
    return render_script(header, rebuilt, min_python)


def authenticity_problems(script_text, lock_file):
    """Why virtualenv.py is not exactly what the generator makes from bootstrap_tools/virtualenv.txt, or [] if it is.

    Checked: the payload matches the sha256 in the header; the wheels the header lists are the lock's pins
    and hashes; and the whole file (header, launcher, payload) equals what `build` renders from the wheels
    in its own payload, so an edited launcher or header line is found too.
    """
    mismatch = payload_mismatch(script_text)
    if mismatch:
        return [mismatch]
    try:
        targets, pins = read_lock(lock_file)
        used = {pin for chosen in select(pins, targets).values() for pin in chosen}
    except ToolError as exc:
        return [f"cannot read {lock_file.name} ({exc})"]
    problems = []
    locked = {(pin.name, pin.version, pin.sha256) for pin in used}
    listed = header_wheels(script_text)
    for name, version, sha256 in sorted(listed - locked):
        problems.append(f"its header lists {name} {version} sha256:{sha256}, which bootstrap_tools/virtualenv.txt "
                        "does not pin")
    for name, version, sha256 in sorted(locked - listed):
        problems.append(f"its header does not list {name} {version} sha256:{sha256}, which "
                        "bootstrap_tools/virtualenv.txt pins")
    try:
        expected = render_from_payload(script_text, lock_file)
    except ToolError as exc:
        return problems + [str(exc)]
    if expected != script_text:
        ours, theirs = script_text.splitlines(), expected.splitlines()
        line = next((number for number, (a, b) in enumerate(zip(ours, theirs), 1) if a != b),
                    min(len(ours), len(theirs)) + 1)
        shown = ours[line - 1][:60] if line <= len(ours) else "(end of file)"
        problems.append(f"line {line} (`{shown}`) differs from what bootstrap_tools/virtualenv_py.py renders from its "
                        "own payload and bootstrap_tools/virtualenv.txt (header or launcher edited)")
    return problems


def build(args):
    targets, pins = read_lock(args.lock_file)
    selection = select(pins, targets)
    used = sorted({pin.key: pin for chosen in selection.values() for pin in chosen}.values(), key=lambda pin: pin.key)
    paths = fetch(used, args.cache, args.wheels, args.index_url)
    payload, stripped = build_payload(
        {python: [paths[pin.key] for pin in chosen] for python, chosen in selection.items()},
        strip=not args.keep_embedded,
    )
    header = render_header(selection, used, payload, stripped, strip=not args.keep_embedded)
    min_python = tuple(Version(targets[0]).release[:2])
    args.output.write_text(render_script(header, payload, min_python), encoding="ascii", newline="\n")
    args.output.chmod(0o755)
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, payload sha256 "
          f"{hashlib.sha256(payload).hexdigest()})")


# ---------------------------------------------------------------- command line

def python_list(text):
    """argparse type for --pythons: "3.10 3.11" -> ["3.10", "3.11"], sorted, each X.Y."""
    try:
        versions = sorted({Version(word) for word in text.split()})
    except InvalidVersion as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not versions or any(len(version.release) != 2 or version.major != 3 for version in versions):
        raise argparse.ArgumentTypeError(f"expected Python versions like {DEFAULT_PYTHONS!r}, got {text!r}")
    return [str(version) for version in versions]


def parse_args(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lock-file", type=Path, default=LOCK,
                        help="hashed pins (default: bootstrap_tools/virtualenv.txt)")
    common.add_argument("--index-url", help="package index for pip (default: pip's own default)")
    common.add_argument(cooldown.OPTION, dest="uploaded_prior_to", default=None, metavar="ISO_DATETIME",
                        help="only releases uploaded before this (make freeze-upgrade's cooling-off)")
    parser = argparse.ArgumentParser(prog="bootstrap_tools/virtualenv_py.py", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    lock_parser = commands.add_parser("lock", parents=[common], help="resolve bootstrap_tools/virtualenv.in per Python")
    lock_parser.add_argument("--pip", type=Path, default=None, metavar="WHEEL",
                             help="run this pip wheel under each Python (default: each Python's own pip)")
    lock_parser.add_argument("--pythons", type=python_list, default=python_list(DEFAULT_PYTHONS),
                             help=f"target Pythons, space-separated (default: {DEFAULT_PYTHONS!r})")
    build_parser = commands.add_parser("build", parents=[common], help="write virtualenv.py from the lock file")
    build_parser.add_argument("--output", type=Path, default=OUTPUT, help="default: virtualenv.py at the repo root")
    build_parser.add_argument("--cache", type=Path, default=CACHE,
                              help="wheel download cache (default: .bootstrap/cache/virtualenv-wheels, git-ignored)")
    build_parser.add_argument("--wheels", type=Path, help="take every wheel from this directory; no download")
    build_parser.add_argument("--keep-embedded", action="store_true",
                              help="keep virtualenv's embedded seed wheels and SBOMs (needed for default seeding)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    command = {"lock": lock, "build": build}[args.command]
    cooldown.fix(args.uploaded_prior_to)
    try:
        command(args)
    except ToolError as exc:
        fail(str(exc))


if __name__ == "__main__":
    main()
