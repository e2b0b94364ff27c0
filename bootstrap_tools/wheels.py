"""Wheels as pip sees them: which artifact is which pin's, and whether it fits a target Python on this platform.

Fitness follows pip's own rules (pip/_internal/utils/compatibility_tags.get_supported and the resolver's
Requires-Python check), so `make check` calls unfit exactly what `pip install` would refuse:

- tags: packaging's cpython_tags for the target's X.Y plus compatible_tags with the target's interpreter
  (`cp310`), which is what gives `cp310-none-any`, `py310-none-any` and `py3-none-any`;
- Requires-Python: tested against the full version of the interpreter that installs (pip uses the running
  Python's X.Y.Z); a value that is not a valid specifier is ignored, as pip ignores it (with a warning).
"""

import email.parser
import functools
import sys
import tarfile
import tempfile
import zipfile

from packaging import tags
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename, parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from bootstrap_tools.pythons import find_python, python_minor, running_target
from bootstrap_tools.run import ToolError, hermetic_env, run


@functools.lru_cache(maxsize=None)
def target_tags(target):
    """The tags pip accepts on CPython `target` (X.Y) on this platform (pip's get_supported for that version)."""
    version = python_minor(target)
    interpreter = "cp" + "".join(map(str, version))
    return frozenset(tags.cpython_tags(python_version=version)) | frozenset(
        tags.compatible_tags(python_version=version, interpreter=interpreter))


@functools.lru_cache(maxsize=None)
def full_version(target):
    """The X.Y.Z pip would test Requires-Python against on target X.Y: that of the Python that installs.

    The running Python's own for its version; for another target, that of its interpreter here (found as
    `make freeze` finds it); X.Y.0, the oldest a host of that target may run, when there is none.
    """
    if target == running_target():
        return "%d.%d.%d" % sys.version_info[:3]
    with tempfile.TemporaryDirectory(prefix="full-version-") as home:
        python = find_python(target, home)
        if python is not None:
            try:
                answer = run([python, "-I", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
                             env=hermetic_env(home)).strip()
                Version(answer)
                return answer
            except (ToolError, InvalidVersion):
                pass
    return f"{target}.0"


def requires_python_reason(requires_python, target):
    """Why Requires-Python `requires_python` refuses target X.Y, or None (also for a malformed value)."""
    if not requires_python:
        return None
    try:
        specifier = SpecifierSet(requires_python)
    except InvalidSpecifier:
        return None  # pip: "Package ... has an invalid Requires-Python", then treats it as absent
    # Usually (>=3.8, <4, !=3.9.*) the answer is the same for every patch release of X.Y: ask no interpreter.
    python = full_version(target) if patch_sensitive(specifier, target) else f"{target}.0"
    if specifier.contains(Version(python), prereleases=True):
        return None
    where = "" if python == f"{target}.0" else f" (the {target} here is {python})"
    return f"it requires Python {requires_python}{where}"


def patch_sensitive(specifier, target):
    """Whether `specifier` names a patch release of target X.Y (>=3.10.5, !=3.11.7), so X.Y.Z decides."""
    for spec in specifier:
        if spec.operator == "===":
            return True
        try:
            version = Version(spec.version.removesuffix(".*"))
        except InvalidVersion:
            return True
        if version.release[:2] == python_minor(target) and any(version.release[2:]):
            return True
    return False


def unfit_reason(path, target):
    """Why the wheel at `path` cannot be installed on Python `target` on this platform, or None if it can.

    `target` may be a platforms.Pair: the tags are then that platform's (its descriptor's), not this machine's."""
    try:
        _, _, _, wheel_tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return "an sdist, not a wheel (freeze builds a wheel from it)" if is_sdist(path.name) else "not a wheel"
    supported = frozenset(target.tags()) if hasattr(target, "tags") else target_tags(target)
    target = getattr(target, "python", target)
    if not wheel_tags & supported:
        return f"its tags {', '.join(sorted(map(str, wheel_tags)))} are not supported there"
    try:
        requires_python = wheel_metadata(path).get("Requires-Python")
    except (OSError, zipfile.BadZipFile, StopIteration, UnicodeDecodeError) as exc:
        return f"not a valid wheel ({exc.__class__.__name__}: no readable .dist-info/METADATA)"
    return requires_python_reason(requires_python and str(requires_python), target)


def wheel_metadata(path):
    """The core metadata (.dist-info/METADATA) of the wheel at `path`, read once per file version."""
    stat = path.stat()
    return _wheel_metadata(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _wheel_metadata(path, size, mtime_ns):
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        return core_metadata(archive.read(name))


def artifact_metadata(path):
    """The core metadata of a wheel (.dist-info/METADATA), or of an sdist (its PKG-INFO, .tar.gz or .zip)."""
    if not is_sdist(path.name):
        return wheel_metadata(path)
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            name = next(n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/PKG-INFO"))
            return core_metadata(archive.read(name))
    with tarfile.open(path) as archive:
        member = next(m for m in archive.getmembers() if m.name.count("/") == 1 and m.name.endswith("/PKG-INFO"))
        return core_metadata(archive.extractfile(member).read())


def core_metadata(data):
    """A core metadata file's bytes (METADATA, PKG-INFO) as its headers: the one reader of that format."""
    return email.parser.HeaderParser().parsestr(data.decode("utf-8"))


def name_version(filename):
    """(canonical name, Version) from a wheel's or an sdist's file name, or None for anything else."""
    try:
        if is_sdist(filename):
            name, version = parse_sdist_filename(filename)
        else:
            name, version, _, _ = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None
    return canonicalize_name(name), version


def is_sdist(filename):
    """Whether `filename` is named like a source distribution (what pip accepts from a wheelhouse: .tar.gz, .zip)."""
    return filename.endswith((".tar.gz", ".zip"))


def is_artifact_of(filename, digest, pin):
    """Whether a file named `filename` with sha256 `digest` is an artifact of `pin`: its name, version and hash."""
    return digest in pin.hashes and names_pin(filename, pin)


def names_pin(filename, pin):
    """Whether `filename` is a wheel or sdist name of the pin's project and version (whatever its hash)."""
    parsed = name_version(filename)
    try:
        return parsed is not None and parsed == (canonicalize_name(pin.name), Version(pin.version))
    except InvalidVersion:
        return False
