"""Where things are: the checkout's inputs, and the names `make ve` gives what it makes beside the ve."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(ROOT, "requirements.txt")
# The dev set's lock (pytest, flake8...: requirements-dev.in), installed beside the runtime set unless GROUPS says
# runtime only (a deploy host); None in the tools' env, which has no dev set.
DEV_LOCK = os.path.join(ROOT, "requirements-dev.txt")
GROUPS = ("runtime", "dev")
REQUIREMENTS_IN = os.path.join(ROOT, "requirements.in")
WHEELHOUSE = os.path.join(ROOT, "requirements")
VIRTUALENV_PY = os.path.join(ROOT, "virtualenv.py")
SEEDS = os.path.join(ROOT, "virtualenv_support")
SEED_SUMS = os.path.join(SEEDS, "SHA256SUMS")
BUILD_CODE = os.path.dirname(os.path.abspath(__file__))  # what a build runs besides bootstrap.py
# The build lock of the pins built from sdists (bootstrap_tools/sdists.py); only a build from source reads it.
BUILD_LOCK = os.path.join(ROOT, "requirements-build.txt")
# The convention's build area (staging, caches, reports, the freeze's journal and locks).
BUILD_AREA = os.path.join(ROOT, ".bootstrap")
# `make freeze`'s journal: while it exists, a switch of the inputs is under way (see journal.py).
SWITCH_JOURNAL = os.path.join(".bootstrap", "switch-journal.json")

STAMP = "bootstrap-stamp.txt"
# Written into a slot before anything else: the proof that the directory is ours to wipe.
MARKER = ".bootstrap-slot"
MARKER_TEXT = "made by bootstrap.py (make ve); deleted and rebuilt by it\n"
SLOTS = ("a", "b")
WHOLE_PYTHON = os.path.join("bin", "python")
# Leftovers carry names only make ve gives: `.ve.tmp` (the scratch), `.ve-a.deleting-<pid>-<n>` (a slot or the
# scratch renamed away to be deleted), `.ve.tmp.moved-aside*` (scratch that older versions set aside).
DELETING = ".deleting-"


# The convention's own maintainer tools (pip-tools, packaging, cyclonedx): locked apart from the project, in
# bootstrap_tools/tools.txt with their wheels (and the pip that seeds them) in bootstrap_tools/wheels/, built by the
# same code as the ve, into TOOLS_VE (`bootstrap.py --tools`, run by every maintainer target).
TOOLS_LOCK = os.path.join(ROOT, "bootstrap_tools", "tools.txt")
TOOLS_IN = os.path.join(ROOT, "bootstrap_tools", "tools.in")
TOOLS_WHEELS = os.path.join(ROOT, "bootstrap_tools", "wheels")
TOOLS_VE = os.path.join(BUILD_AREA, "tools")


def use_tools():
    """Point the build at the tools' lock, wheels and seed instead of the project's: the one switch of --tools."""
    global LOCK, DEV_LOCK, REQUIREMENTS_IN, WHEELHOUSE, SEEDS, SEED_SUMS, BUILD_LOCK
    LOCK, DEV_LOCK, REQUIREMENTS_IN, WHEELHOUSE = TOOLS_LOCK, None, TOOLS_IN, TOOLS_WHEELS
    SEEDS, SEED_SUMS = TOOLS_WHEELS, os.path.join(TOOLS_WHEELS, "SHA256SUMS")
    BUILD_LOCK = os.path.join(TOOLS_WHEELS, "no-build-lock")  # pure-Python wheels only: nothing built from source


def dev_lock():
    """The dev lock's path when this build installs the dev set (selected, and the project has one), else None."""
    return DEV_LOCK if DEV_LOCK and "dev" in GROUPS and os.path.exists(DEV_LOCK) else None


def switch_pending(root=None):
    """A `make freeze` switch is under way or was interrupted (journal.py completes it). Here, not in journal.py:
    the no-op asks this, and should not compile the journal's code to do so."""
    return os.path.exists(os.path.join(root or ROOT, SWITCH_JOURNAL))


def beside(ve, suffix):
    """A hidden name beside the ve: `.ve-a` for `ve`, and `.venv-a` (not `..venv-a`) for `.venv`."""
    name = os.path.basename(ve)
    return os.path.join(os.path.dirname(ve), "." + (name[1:] if name.startswith(".") and name != "." else name)
                        + suffix)


def slot_path(ve, slot):
    return beside(ve, f"-{slot}")


def slot_paths(ve):
    return [slot_path(ve, slot) for slot in SLOTS]


def other_slot(ve):
    """The slot `ve` does not resolve to: where the next build goes."""
    current = os.path.realpath(ve) if os.path.islink(ve) else None
    return next(path for path in slot_paths(ve) if os.path.realpath(path) != current)


def scratch_path(ve):
    """Private HOME, TMPDIR and app-data of a build, beside the ve: a killed build's leftovers are found again."""
    return beside(ve, ".tmp")


def lock_path(ve):
    return beside(ve, ".lock")


def list_files(directory):
    """The entries of directory, sorted, hidden ones left out ([] when it cannot be listed)."""
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, name) for name in names if not name.startswith(".")]


def site_packages(slot):
    """site-packages of a ve built at `slot` for the running Python."""
    return os.path.join(slot, "lib", "python%d.%d" % sys.version_info[:2], "site-packages")


def python_in(slot):
    return os.path.join(slot, "bin", "python")
