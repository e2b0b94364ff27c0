"""Whether a wheel fits a target Python on this platform: its tags and its Requires-Python, read by `packaging`."""

import email.parser
import zipfile

from packaging import tags
from packaging.specifiers import SpecifierSet
from packaging.utils import InvalidWheelFilename, parse_wheel_filename


def target_tags(target):
    version = tuple(int(part) for part in target.split("."))
    return set(tags.cpython_tags(python_version=version)) | set(tags.compatible_tags(python_version=version))


def unfit_reason(path, target):
    """Why a wheel cannot be installed on Python `target` on this platform, or None if it can."""
    try:
        _, _, _, wheel_tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return "not a wheel (only wheels are supported for now)"
    if not wheel_tags & target_tags(target):
        return f"its tags {', '.join(sorted(map(str, wheel_tags)))} are not supported there"
    try:
        requires_python = wheel_metadata(path).get("Requires-Python")
    except (zipfile.BadZipFile, StopIteration, UnicodeDecodeError) as exc:
        return f"not a valid wheel ({exc.__class__.__name__}: no readable .dist-info/METADATA)"
    if requires_python and not SpecifierSet(requires_python).contains(target, prereleases=True):
        return f"it requires Python {requires_python}"
    return None


def wheel_metadata(path):
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        return email.parser.HeaderParser().parsestr(archive.read(name).decode("utf-8"))
