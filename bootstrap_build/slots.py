"""Changing what is beside the ve, under its lock: a fresh slot carrying our marker, the switch of the `ve` link,
deletions that no interruption can leave half-done, leftovers removed, and one ERROR line when the disk is full or
a path belongs to someone else. Nothing that is not ours (marker, stamp or a name only we give) is ever deleted."""

import fcntl
import os

from bootstrap_build import layout, processes, state
from bootstrap_build.messages import error, mb, step


def tidy(ve):
    """The no-op removes leftovers too (a killed run's scratch, a half-built slot), unless a build of this ve is
    running: what is beside the ve then is that build's, and the lock says so without waiting."""
    if state.leftovers(ve):
        processes.stop_on_signals()
        lock = exclusive_lock(ve, wait=False)
        if lock:
            with lock:
                remove_leftovers(ve)


def exclusive_lock(ve, wait=True):
    """Serialize builds and cleans of one ve: a second `make ve` waits, then finds the first one's result.

    The lock file is never unlinked (a waiter would hold a lock on a file nobody else sees); should it be replaced
    anyway, the holder notices that the file it locked is no longer the one at the path and locks again.
    wait=False: None when someone else holds it."""
    path = layout.lock_path(ve)
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
    for path in [ve, layout.lock_path(ve), f"{ve}.switching"] + layout.slot_paths(ve) + state.leftovers(ve):
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


def disk_full_message(ve):
    """Remove every slot of ours that `ve` does not point at (the half-built one), then say where and how much.

    The disk is then as it was before the build, and the message gives the space a build needs: the size of the
    current build when there is one, else an estimate from the wheels.
    """
    import shutil

    current = state.our_slot(ve)
    for path in layout.slot_paths(ve):
        if path != current and state.is_ours(path):
            discard(path)
    for path in state.leftovers(ve):
        discard(path)
    where = os.path.dirname(ve)
    free = shutil.disk_usage(where).free
    needed = tree_bytes(current) if current else 4 * tree_bytes(layout.WHEELHOUSE) + 30 * 10**6
    keep = (f"{os.path.basename(ve)} still points at the previous build ({os.path.basename(current)}), which stays. "
            if current else "")
    return (f"the disk is full: no space left on the file system of {where} ({mb(free)} free now, after removing "
            f"the half-built slot). A build needs about {mb(needed)} there, besides the previous build. {keep}"
            f"Free some space, or build without keeping the previous build: `make ve ONE_SLOT=1` (or `make clean` "
            f"first), then `make ve` again.")


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
    for path in layout.slot_paths(ve):
        if state.is_ours(path):
            step(f"removing {os.path.basename(path)} first (ONE_SLOT: room for one build only)")
            discard(path)


def set_aside_old_build(ve, scratch):
    """Move our build in the slot about to be rebuilt into the scratch dir (one rename) and delete it there in a
    thread, while the new build runs; return the thread to join, or None. Killed meanwhile, the next run's
    scratch cleanup deletes the rest."""
    import shutil
    import threading

    free = layout.other_slot(ve)
    if not state.is_ours(free):
        return None
    aside = os.path.join(scratch, "old-build")
    os.rename(free, aside)
    remover = threading.Thread(target=shutil.rmtree, args=(aside,), kwargs={"ignore_errors": True}, daemon=True)
    remover.start()
    return remover


def pick_slot(ve):
    """The slot `ve` does not resolve to, emptied: ours is wiped, anything else there is moved aside."""
    return fresh_dir(layout.other_slot(ve))


def remove_leftovers(ve):
    """Remove every leftover (see leftovers), and say what and how much; the caller holds the ve's lock."""
    found = state.leftovers(ve)
    if not found:
        return
    freed = sum(tree_bytes(path) for path in found)
    for path in found:
        discard(path)
    step(f"removed what an interrupted run left ({', '.join(map(os.path.basename, found))}): {mb(freed)} freed")


def discard(path):
    """Delete a directory of ours so that no interruption can leave part of it under its own name (where a
    half-deleted slot could pass for a build): one rename to a leftover name first, then the deletion."""
    if layout.DELETING not in os.path.basename(path):
        number = 1
        while os.path.lexists(f"{path}{layout.DELETING}{os.getpid()}-{number}"):
            number += 1
        os.rename(path, f"{path}{layout.DELETING}{os.getpid()}-{number}")
        path = f"{path}{layout.DELETING}{os.getpid()}-{number}"
    remove(path)


def fresh_dir(path):
    """An empty directory of ours at `path` (a slot, the scratch dir), carrying our marker from its first moment:
    a previous one of ours is wiped, anything else there is moved aside."""
    if state.is_ours(path):
        discard(path)
    elif os.path.lexists(path):
        move_aside(path)
    os.mkdir(path)
    with open(os.path.join(path, layout.MARKER), "w") as handle:
        handle.write(layout.MARKER_TEXT)
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


def exclude_from_git(ve):
    """Keep the ve, its slots, lock and scratch out of `git status`, whatever VE is called (.venv included):
    .git/info/exclude is git's own place for a checkout's local ignores, never committed."""
    root = os.path.realpath(layout.ROOT)
    exclude = os.path.join(root, ".git", "info", "exclude")
    if not ve.startswith(root + os.sep) or not os.path.isdir(os.path.dirname(exclude)):
        return
    names = ([ve, f"{ve}.switching", layout.lock_path(ve), layout.scratch_path(ve) + "*"] + layout.slot_paths(ve)
             + [path + layout.DELETING + "*" for path in layout.slot_paths(ve)])
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
    if os.path.lexists(ve) and not state.is_our_link(ve):
        # A directory made by hand or by an older tool, or a link of the user's: kept, never replaced.
        move_aside(ve)
    os.replace(link, ve)
