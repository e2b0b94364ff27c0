"""Target Pythons: find their interpreters here, and write the markers that select among them."""

import sys

from packaging.markers import Marker
from packaging.version import Version

from bootstrap_build import pythons as build_pythons
from bootstrap_tools.run import ToolError, hermetic_env, run


def python_minor(python):
    """A target Python's "X.Y" (or "X.Y.Z") as the tuple (X, Y), comparable with sys.version_info[:2]."""
    return tuple(int(part) for part in python.split(".")[:2])


def running_target():
    """The X.Y of the Python running the tools (./ve's)."""
    return "%d.%d" % sys.version_info[:2]


def interpreter_for(target, home):
    """The Python to run for target X.Y: this one when it is that version, else find_python's (None: none here)."""
    return sys.executable if target == running_target() else find_python(target, home)


def find_python(version, home):
    """The path of a working CPython `version` (e.g. "3.10"), or None: the build's candidates (pyenv's versions,
    then PATH), each asked for its version, because a candidate can exist and still refuse to run."""
    env = hermetic_env(home)
    probe = "import sys; print(sys.implementation.name, '%d.%d' % sys.version_info[:2])"
    for candidate in build_pythons.candidates(version):
        try:
            answer = run([candidate, "-I", "-c", probe], env=env).split()
        except ToolError:
            continue
        if answer == ["cpython", version]:
            return candidate
    return None


def require_pythons(versions, home):
    pythons = {}
    for version in versions:
        path = find_python(version, home)
        if path is None:
            raise ToolError(f"no CPython {version} found (python{version} on PATH or under pyenv): install it "
                            f"or drop it from --pythons")
        pythons[version] = path
    return pythons


def marker_for(used, targets):
    """The simplest python_version marker true for exactly `used` among `targets` (None: all of them)."""
    targets = sorted(targets, key=Version)
    used = sorted(used, key=Version)
    if used == targets:
        return None
    first, last = targets.index(used[0]), targets.index(used[-1])
    if used == targets[first:last + 1]:
        parts = []
        if first > 0:
            parts.append(f'python_version >= "{used[0]}"')
        if last < len(targets) - 1:
            parts.append(f'python_version < "{targets[last + 1]}"')
        text = " and ".join(parts)
    else:
        text = " or ".join(f'python_version == "{python}"' for python in used)
    chosen = [python for python in targets if marker_applies(Marker(text), python)]
    if chosen != used:
        raise ToolError(f"internal error: marker {text!r} selects {chosen}, wanted {used}")
    return text


def marker_applies(marker, python):
    return marker.evaluate({"python_version": python, "python_full_version": f"{python}.0"})
