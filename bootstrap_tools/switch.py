"""The switch of `make freeze`: the moment the new lock, artifacts and seeds replace the old ones.

One freeze at a time per checkout: `freeze_lock` (.bootstrap/freeze.lock) is held for a whole run; a second run
says who holds it and waits. The switch itself is all-or-nothing as the next command sees it:

1. preflight, before anything moves: every directory it writes is a writable directory, every path it replaces
   or deletes is a regular file (a directory in requirements/ is refused), and each new file is staged beside its
   destination (`.NAME.switch-new`, fsynced and verified), so a full disk or a read-only directory fails here and
   the staged files are removed: nothing changed;
2. the journal (.bootstrap/switch-journal.json, fsynced, renamed into place) lists every move, with the tree
   before the switch for the report;
3. journal.complete_switch does the moves under the exclusive switch lock: renames (atomic, no space needed)
   and deletes. Whoever finds the journal later (make ve, make check, make freeze, make clean) completes the same
   moves, and the next freeze reports against the tree the journal recorded.
"""

import datetime
import fcntl
import json
import os
import shutil
from pathlib import Path

from bootstrap_build import journal
from bootstrap_tools import lockfile, report
from bootstrap_tools.run import ToolError

STAGED_SUFFIX = journal.STAGED_SUFFIX  # one owner: the journal check reads it
FREEZE_LOCK = Path(".bootstrap") / "freeze.lock"


class Incomplete(Exception):
    """The switch stopped after its journal was written; the next command completes it. One line: cause, fix."""


class freeze_lock:
    """Hold the checkout's freeze lock for a whole run; a second run says who holds it, then waits its turn."""

    def __init__(self, root, what):
        self.path, self.what = Path(root) / FREEZE_LOCK, what

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            holder = self.handle.read().strip() or "another run"
            print(f"==> waiting: {holder} holds this checkout's freeze lock ({FREEZE_LOCK}); one freeze at a time",
                  flush=True)
            fcntl.flock(self.handle, fcntl.LOCK_EX)
            print("==> the other freeze ended; continuing from the tree it left", flush=True)
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"`{self.what}` (pid {os.getpid()}, started {now()})\n")
        self.handle.flush()
        return self

    def __exit__(self, *exc_info):
        self.handle.close()  # releases the lock; a killed run releases it too


def now():
    return datetime.datetime.now().isoformat(timespec="seconds")


def settle(root):
    """Complete a switch a killed or interrupted freeze left (bootstrap.py's code, which says so); then remove
    what a freeze killed while staging, before it wrote its journal, left beside the files it would switch."""
    journal.settled_inputs(str(root)).close()
    stale = journal.stale_staged(str(root))
    for path in stale:
        os.unlink(path)
    if stale:
        print(f"==> removed {len(stale)} file(s) an interrupted `make freeze` staged and never switched "
              f"({', '.join(os.path.relpath(path, root) for path in stale[:3])}{' ...' if len(stale) > 3 else ''})",
              flush=True)


def baseline(root):
    """(lock text, {file: (size, sha256)}, hash lines, note) to report against: the tree before an interrupted
    freeze whose switch was completed since (switch-done.json), else the tree as it is."""
    done = Path(root) / journal.SWITCH_DONE
    if done.exists():
        try:
            data = json.loads(done.read_text(encoding="utf-8"))
            files = {path: tuple(entry) for path, entry in data["before"]["files"].items()}
            note = f"compared with the tree before the interrupted freeze of {data['started']} (its switch completed)"
            return data["before"]["lock"], files, [tuple(line) for line in data["hash_lines"]], note
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: report against the tree as it is
    lock = Path(root) / "requirements.txt"
    text = lock.read_text(encoding="utf-8") if lock.exists() else ""
    return text, report.snapshot(Path(root)), [], None


def baseline_dev(root):
    """The dev lock's text (requirements-dev.txt, "" when absent) to report against, as `baseline` chooses."""
    done = Path(root) / journal.SWITCH_DONE
    if done.exists():
        try:
            text = json.loads(done.read_text(encoding="utf-8"))["before"]["dev_lock"]
            if isinstance(text, str):
                return text
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable, or written before the dev set had a lock: report against the tree as it is
    lock = Path(root) / "requirements-dev.txt"
    return lock.read_text(encoding="utf-8") if lock.exists() else ""


def forget_baseline(root):
    (Path(root) / journal.SWITCH_DONE).unlink(missing_ok=True)


def irregular_entries(directory):
    """Entries of `directory` that are not regular files (a directory, a socket...): the switch cannot prune them."""
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir()
                  if not path.name.startswith(".") and (path.is_symlink() or not path.is_file()))


def switch(root, puts, deletes, before, hash_lines):
    """Move `puts` [(source file, destination relative to root)] into place and delete `deletes` [relative paths].

    Raises ToolError (nothing changed) when the preflight fails, Incomplete when a move fails after the journal.
    """
    root = Path(root)
    puts = [(Path(source), Path(dest)) for source, dest in puts if not same_file(Path(source), root / dest)]
    directories = sorted({dest.parent for _, dest in puts} | {Path(path).parent for path in deletes})
    preflight(root, directories, [dest for _, dest in puts], [Path(path) for path in deletes])
    moves, staged = [], []
    try:
        for source, dest in puts:
            target = root / dest.parent / f".{dest.name}{STAGED_SUFFIX}"
            staged.append(target)
            digest = copy_synced(source, target)
            moves.append({"staged": target.relative_to(root).as_posix(), "path": dest.as_posix(), "sha256": digest})
        moves += [{"path": Path(path).as_posix()} for path in deletes]
        problem = journal.journal_problem(str(root), moves)
        if problem:  # the next command would refuse this journal: never write one it cannot complete
            raise ToolError(f"the switch would move what a freeze never moves ({problem}); this is a bug of the "
                            "convention's tools, please report it.")
        write_journal(root, {"started": now(), "moves": moves, "hash_lines": hash_lines,
                             "before": {"lock": before[0], "files": before[1], "dev_lock": before[2]}})
    except BaseException as exc:
        for path in staged:
            path.unlink(missing_ok=True)
        (root / (journal.SWITCH_JOURNAL + ".part")).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise ToolError(f"cannot write {shown(root, exc.filename)}: {exc.strerror} (found before the switch; "
                            "the staged files were removed): free space or make it writable, then run `make freeze` "
                            "again.") from None
        raise
    try:
        with journal.switch_lock(str(root), shared=False):
            journal.complete_switch(str(root), resumed=False)
    except OSError as exc:
        raise Incomplete(f"the switch stopped at {shown(root, exc.filename)}: {exc.strerror}. Fix that, then run "
                         f"`make check` (or make freeze, make ve): it completes the switch from "
                         f"{journal.SWITCH_JOURNAL}.") from None


def shown(root, filename):
    """`filename` relative to the checkout when it is inside it."""
    if not filename:
        return "a file"
    try:
        return Path(filename).relative_to(root).as_posix()
    except ValueError:
        return str(filename)


def same_file(source, target):
    return target.is_file() and not target.is_symlink() and lockfile.sha256(source) == lockfile.sha256(target)


def preflight(root, directories, replaced, deleted):
    """Everything that would stop the moves half-way, checked while nothing has moved: one ToolError."""
    for directory in directories:
        path = root / directory
        if path.exists() and not path.is_dir():
            raise ToolError(f"{directory} is not a directory: move it away and run `make freeze` again.")
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe{STAGED_SUFFIX}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ToolError(f"cannot write in {directory}/: {exc.strerror} (checked before the switch): make it "
                            "writable, then run `make freeze` again.") from None
    for relative in replaced + deleted:
        path = root / relative
        if (path.exists() or path.is_symlink()) and (path.is_symlink() or not path.is_file()):
            raise ToolError(f"{relative} is not a regular file (a directory or a link?), and the switch must "
                            f"replace or remove it: move it out of {relative.parent}/ and run `make freeze` again.")
    for directory in directories:
        for path in irregular_entries(root / directory):
            if directory.as_posix() == "requirements":
                raise ToolError(f"{path.relative_to(root)} is a {kind(path)}; requirements/ holds only the lock's "
                                "artifacts: move it out of requirements/ and run `make freeze` again.")


def kind(path):
    return "symbolic link" if path.is_symlink() else "directory" if path.is_dir() else "special file"


def copy_synced(source, target):
    """Copy source to target, flushed to disk, and return its sha256 (checked equal to the source's)."""
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(1 << 20):
            writer.write(chunk)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copymode(source, target)  # virtualenv.py stays executable
    digest = lockfile.sha256(target)
    if digest != lockfile.sha256(source):
        raise ToolError(f"{target} does not read back as written: check the disk, then run `make freeze` again.")
    return digest


def write_journal(root, record):
    path = root / journal.SWITCH_JOURNAL
    partial = path.with_name(path.name + ".part")
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
