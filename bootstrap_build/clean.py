"""`make clean`: the ve link, its slots and leftovers, and the build area's caches and staging, if they are ours."""

import fcntl
import os

from bootstrap_build import journal, layout, processes, slots, state
from bootstrap_build.messages import error, mb


# What the convention's targets write into the build area, which `make clean` removes; a project's own files there
# and the lock files (someone may be waiting on them) stay.
BUILD_AREA_NAMES = ("cache", "freeze", "seeds", "sbom", "freeze-report.txt", "switch-done.json",
                    "adopt-constraints.txt")


def clean(ve, name, others=()):
    """`make clean`: remove the ve link, its slots, leftovers and the build area's caches and staging, if they are
    ours; never through the link. Waits for a running `make ve`, refuses while a `make freeze` runs.

    others: more ves of ours to remove the same way (the tools envs of other Pythons, python_tools_envs)."""
    import contextlib
    import glob

    processes.stop_on_signals()
    removed, kept, freed = [], [], 0
    try:
        # A pending switch is finished first: its files are in .bootstrap.
        with contextlib.ExitStack() as held:
            for each in [ve, *others]:
                held.enter_context(slots.exclusive_lock(each))
            held.enter_context(journal.settled_inputs())
            freezing = freeze_holder()
            if freezing:
                error(f"a `make freeze` is running in this checkout ({freezing}), and `make clean` would remove its "
                      "staging; nothing was removed. Run `make clean` again once it has finished.")
            for each in [ve, *others]:
                freed += remove_ve(each, removed, kept)
            for path in journal.stale_staged():  # an interrupted freeze's, never switched (ours by name)
                os.unlink(path)
                removed.append(path)
            for path in [os.path.join(layout.BUILD_AREA, name) for name in BUILD_AREA_NAMES]:
                # Nothing but the convention writes these; a symlink is unlinked, not followed.
                if os.path.lexists(path):
                    freed += slots.tree_bytes(path) if os.path.isdir(path) and not os.path.islink(path) else 0
                    slots.remove(path)
                    removed.append(path)
            for pyc in glob.glob(os.path.join(layout.ROOT, "__pycache__", "bootstrap.*.pyc")):  # our own bytecode
                os.unlink(pyc)
    except KeyboardInterrupt:
        error(f"interrupted; {clean_left(ve)}. Run `make clean` again to finish.")
    except PermissionError as exc:
        error(slots.permission_message(exc, ve))
    except OSError as exc:
        error(f"cannot remove {exc.filename or ve}: {exc.strerror}, so `make clean` stopped; {clean_left(ve)}. Make "
              f"{os.path.dirname(exc.filename or ve)} writable, then run `make clean` again.")
    names = [os.path.relpath(path, layout.ROOT) if path.startswith(layout.ROOT + os.sep) else path for path in removed]
    print(f"removed {', '.join(names) + f' ({mb(freed)} freed)' if names else 'nothing (no build of make ve here)'}")
    if kept:
        print(f"kept {', '.join(map(os.path.basename, kept))}: not made by make ve (delete it yourself if you no "
              "longer need it)")
    return 0


def remove_ve(ve, removed, kept):
    """Remove one ve's link (if ours), its slots of ours and its leftovers; return the bytes freed."""
    freed = 0
    for path in [ve, f"{ve}.switching"]:
        if os.path.lexists(path):
            (removed if state.is_our_link(path) else kept).append(path)
            if state.is_our_link(path):
                os.unlink(path)
    ours = [path for path in layout.slot_paths(ve) if state.is_ours(path)]
    kept += [path for path in layout.slot_paths(ve) if os.path.lexists(path) and path not in ours]
    for path in ours + [path for path in state.leftovers(ve) if path not in ours]:
        freed += slots.tree_bytes(path)
        slots.discard(path)
        removed.append(path)
    return freed


def python_tools_envs():
    """The tools envs a freeze built for its other target Pythons (bootstrap_tools/targets.py tool_python):
    .bootstrap/tools-X.Y, found by their link, their slots or their lock file (an interrupted build's)."""
    import re

    try:
        names = os.listdir(layout.BUILD_AREA)
    except OSError:
        return []
    found = {match.group(1) for match in map(re.compile(r"\.?tools-(\d+\.\d+)(?:-[ab]|\.lock)?").fullmatch, names)
             if match}
    return [os.path.join(layout.BUILD_AREA, f"tools-{version}") for version in sorted(found)]


def clean_left(ve):
    """What an interrupted or failed `make clean` left, for its ERROR line."""
    left = [path for path in [ve] + layout.slot_paths(ve) if os.path.lexists(path)] + state.leftovers(ve)
    left += [path for path in (os.path.join(layout.BUILD_AREA, name) for name in BUILD_AREA_NAMES)
             if os.path.lexists(path)]
    names = sorted({os.path.relpath(path, os.path.dirname(ve)) for path in left})
    return f"still there: {', '.join(names)}" if names else "nothing of make ve is left"


def freeze_holder():
    """Who holds the checkout's freeze lock (.bootstrap/freeze.lock) now, or None."""
    path = os.path.join(layout.BUILD_AREA, "freeze.lock")
    try:
        handle = open(path)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "it holds .bootstrap/freeze.lock"
    return None
