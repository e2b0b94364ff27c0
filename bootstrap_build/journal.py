"""The completion of `make freeze`'s switch. The freeze (bootstrap_tools/switch.py) stages each new file beside its
destination, writes a journal, and only then renames the staged files into place and deletes what the new lock no
longer needs. Whoever finds the journal (the next make ve, make check, make freeze or make clean) completes those
moves under the switch lock: a build holds that lock shared while it reads its inputs, a switch holds it exclusive,
so no build ever reads a half-switched tree, and a killed switch is finished by the next command instead of being
left half-done. The journal is data, checked against a closed list of paths, never instructions followed blindly."""

import fcntl
import os

from bootstrap_build import layout
from bootstrap_build.inputs import file_sha256
from bootstrap_build.layout import SWITCH_JOURNAL, switch_pending
from bootstrap_build.messages import error, step


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


def settled_inputs(root=None):
    """The shared switch lock, held (close the returned file to release it), after completing a pending switch."""
    root = root or layout.ROOT
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


def complete_switch(root=None, resumed=True):
    """Do the journal's moves that are not done yet, under the exclusive switch lock; return how many were left.

    Each move can be repeated: a put renames its staged file (checked against the journal's sha256) over the
    destination, so once done its staged file is gone and the destination has that hash; a delete removes the
    file if it is still there. The journal is then kept as switch-done.json: what the tree was before the switch,
    which the next `make freeze` reports against.
    """
    import json

    root = root or layout.ROOT
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
SWITCHED_FILES = ("requirements.txt", "requirements-dev.txt", "requirements.pins", "virtualenv.py",
                  "bootstrap_tools/virtualenv.txt",
                  "pylock.toml", "requirements-provenance.json", "requirements-build.txt", "requirements-built.json")


SWITCHED_DIRS = ("requirements", "virtualenv_support")
STAGED_SUFFIX = ".switch-new"


def stale_staged(root=None):
    """The staged files (`.<name>.switch-new`) beside the files a switch moves, when no switch is pending: a freeze
    killed while staging, before its journal, left them; they are part of no tree, and only a freeze makes them."""
    root = root or layout.ROOT
    if switch_pending(root):
        return []
    places = sorted({os.path.dirname(path) for path in SWITCHED_FILES} | set(SWITCHED_DIRS))
    found = []
    for place in places:
        try:
            names = sorted(os.listdir(os.path.join(root, place)))
        except OSError:
            continue
        found += [os.path.join(root, place, name) for name in names
                  if name.startswith(".") and name.endswith(STAGED_SUFFIX)
                  and os.path.isfile(os.path.join(root, place, name))
                  and not os.path.islink(os.path.join(root, place, name))]
    return found


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
