"""Which Python a build runs on: finding an installed CPython X.Y (pyenv's versions, then PATH), and the refusal of
an interpreter the lock was not made for."""

import os
import sys

from bootstrap_build.messages import error


def python_key(version):
    """"3.10" -> (3, 10), so Python versions sort as versions."""
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def candidates(version):
    """Paths that may be a CPython `version` (X.Y), best first: pyenv's versions (PYENV_ROOT, else ~/.pyenv),
    newest patch first, then `pythonX.Y` on PATH unless it is a pyenv shim (a shim may refuse to run)."""
    import glob
    import shutil

    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")),
                   key=lambda path: [int(part) if part.isdigit() else -1
                                     for part in path.split(os.sep)[-3].split(".")], reverse=True)
    on_path = shutil.which(f"python{version}")
    if on_path and f"{os.sep}shims{os.sep}" not in on_path:
        found.append(on_path)
    return [path for path in found if os.access(path, os.X_OK)]


def find_python(version):
    """The first of candidates(version), or None: enough for an error message's advice (nothing is run)."""
    return next(iter(candidates(version)), None)


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
          f"{use}; or add {running} to the targets (the freeze runs in the tools' env, not in a ve): `make freeze "
          f"TARGET_PYTHONS=\"{' '.join(sorted(targets + [running], key=python_key))}\"`.")
