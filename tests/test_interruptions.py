"""`make ve` and `make clean` interrupted at exact moments: nothing half-deleted passes for a build, the lock is
never unlinked, leftovers never pile up, programs run through the slot's real path, modes never leak from the
caches, and an interpreter too old for bootstrap.py gets one ERROR line (docs/reliability.md, rows 81-88).

Signals land at the Nth `unlinkat` of a run with `strace -e inject=...` (a Debian package; skipped without it):
a test hook that lives here, none in bootstrap.py.
"""

import fcntl
import glob
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bootstrap_build import clean, layout, slots, state
from conftest import (
    TIMEOUT, assert_ok, assert_one_error, built, copy_checkout, default_signals, describe,
    make_argv, make_env, pinned_version, python_or_skip, run_make, run_make_read_only, up_to_date, ve_python,
)

slow = pytest.mark.slow


def strace_or_skip():
    if not shutil.which("strace"):
        pytest.skip("needs strace (the Debian package) to land a signal at an exact deletion")
    probe = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=unlinkat", "true"],
                           capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"strace cannot trace here: {probe.stderr.decode(errors='replace').strip()}")


def signalled_at_unlink(checkout, signame, number, *args):
    """Run `make ARGS` with `signame` delivered to whichever process does the `number`th unlinkat."""
    prefix = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=unlinkat",
              "-e", f"inject=unlinkat:signal={signame}:when={number}"]
    return subprocess.run([*prefix, *make_argv(*args)], cwd=checkout, env=make_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, errors="replace", timeout=TIMEOUT,
                          preexec_fn=default_signals)


def beside_ve(checkout):
    """Every name of make ve's beside the checkout's ve (the link, slots, lock, scratch and any leftover)."""
    return sorted(name for name in os.listdir(checkout) if name == "ve" or name.startswith((".ve", "ve.")))


def beside_tools(checkout):
    """Every name of the tools env's in the build area (its link .bootstrap/tools, slots, lock, any leftover)."""
    area = checkout / ".bootstrap"
    return sorted(name for name in os.listdir(area) if name == "tools" or name.startswith(".tools"))


def assert_sound_ve(checkout):
    """The ve make ve calls current is a real, whole build: its own prefix, the lock's pytest, flake8 imports,
    every file matches its RECORD."""
    result = ve_python(checkout, "import sys, flake8, pytest; assert sys.prefix != sys.base_prefix, sys.prefix; "
                                 "print(pytest.__version__)")
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip() == pinned_version(checkout, "pytest"), describe(result)
    assert_ok(run_make(checkout, "verify"))


# --- 1, 3, 6: signals at exact deletions -----------------------------------------------------------------------------


@slow
@pytest.mark.parametrize("command,signame,number", [
    (("ve", "ONE_SLOT=1", "FORCE=1"), "TERM", 5),
    (("ve", "ONE_SLOT=1", "FORCE=1"), "KILL", 400),
    (("ve", "FORCE=1"), "INT", 40),
    (("clean",), "KILL", 5),
    (("clean",), "INT", 300),
    (("clean",), "TERM", 1500),
])
def test_a_signal_at_an_exact_deletion_never_leaves_a_half_deleted_slot_that_passes_for_a_build(
        tmp_path, command, signame, number):
    strace_or_skip()
    checkout = copy_checkout(tmp_path / "checkout")
    built(run_make(checkout, "ve"))
    result = signalled_at_unlink(checkout, signame, number, *command)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, describe(result)
    if signame != "KILL" and result.returncode != 0:
        assert_one_error(result, "interrupted")
        if command[0] == "clean":
            assert "Run `make clean` again" in result.stderr, describe(result)
    # The next run never calls a half-deleted slot current: it rebuilds, or switches to a whole build.
    again = run_make(checkout, "ve")
    assert_ok(again)
    assert_sound_ve(checkout)
    # ... and leaves nothing behind: the link, one or two slots, the lock.
    assert set(beside_ve(checkout)) <= {"ve", ".ve-a", ".ve-b", ".ve.lock"}, describe(again)
    cleaned = run_make(checkout, "clean")
    assert_ok(cleaned)
    assert beside_ve(checkout) == [".ve.lock"], describe(cleaned)


def test_a_stamped_slot_without_pyvenv_cfg_bin_python_or_marker_is_never_current(tmp_path):
    """The check itself, for slots an older bootstrap.py left half-deleted (its rmtree reached pyvenv.cfg before
    the stamp)."""
    ve = str(tmp_path / "ve")
    slot = tmp_path / ".ve-a"
    (slot / "bin").mkdir(parents=True)
    (slot / "bin" / "python").symlink_to(sys.executable)
    (slot / "pyvenv.cfg").write_text("home = x\n")
    (slot / layout.MARKER).write_text(layout.MARKER_TEXT)
    (slot / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (slot / layout.STAMP).write_text("KEY\ndists\n")
    os.symlink(".ve-a", ve)
    assert state.is_current(ve, "KEY")
    for name in ("pyvenv.cfg", layout.MARKER, "bin/python"):
        moved = slot / name
        moved.rename(tmp_path / "held")
        assert not state.is_current(ve, "KEY"), name
        assert not state.finished(str(slot)), name
        assert state.leftovers(ve) == [str(slot)]  # ours (marker or stamp), and no build
        (tmp_path / "held").rename(moved)


@slow
def test_leftovers_of_killed_runs_are_removed_by_the_next_no_op_and_by_make_clean(tmp_path):
    checkout = copy_checkout(tmp_path / "checkout")
    built(run_make(checkout, "ve"))
    assert_ok(run_make(checkout, "bootstrap-tools"))
    # What kill -9 and older versions left: a scratch without its marker, scratch they moved aside, a slot renamed
    # away to be deleted, and a half-built slot; the tools env's build (the same code) leaves the same beside it.
    for ve in (checkout / "ve", checkout / ".bootstrap" / "tools"):
        for suffix in (".tmp", ".tmp.moved-aside", ".tmp.moved-aside-2", "-a.deleting-999-1"):
            name = layout.beside(str(ve), suffix)
            os.makedirs(os.path.join(name, "lib"))
            Path(name, "lib", "big").write_bytes(os.urandom(3 * 10**6))
        os.mkdir(layout.beside(str(ve), "-b"))
        Path(layout.beside(str(ve), "-b"), layout.MARKER).write_text(layout.MARKER_TEXT)
    result = run_make(checkout, "ve")
    assert_ok(result)
    assert "up to date" in result.stdout, describe(result)
    assert "removed what an interrupted run left" in result.stdout and "MB freed" in result.stdout, describe(result)
    assert beside_ve(checkout) == [".ve-a", ".ve.lock", "ve"], describe(result)
    assert_sound_ve(checkout)
    # The tools env's no-op (every maintainer target runs it) removes its own.
    result = run_make(checkout, "bootstrap-tools")
    assert_ok(result)
    assert "removed what an interrupted run left" in result.stdout and "MB freed" in result.stdout, describe(result)
    assert beside_tools(checkout) == [".tools-a", ".tools.lock", "tools"], describe(result)
    # make clean removes them as well, with what it freed, and the tools env with the ve.
    (checkout / ".ve.tmp.moved-aside-3").mkdir()
    (checkout / ".bootstrap" / ".tools.tmp.moved-aside-3").mkdir()
    cleaned = run_make(checkout, "clean")
    assert_ok(cleaned)
    assert "MB freed" in cleaned.stdout and "removed .bootstrap/tools" in cleaned.stdout, describe(cleaned)
    assert beside_ve(checkout) == [".ve.lock"], describe(cleaned)
    assert beside_tools(checkout) == [".tools.lock"], describe(cleaned)
    # A user's venv moved aside from a slot's place is theirs: never a leftover.
    (checkout / ".ve-a.moved-aside").mkdir()
    assert_ok(run_make(checkout, "clean"))
    assert (checkout / ".ve-a.moved-aside").is_dir()


def test_a_no_op_leaves_a_running_builds_scratch_alone(tmp_path):
    ve = str(tmp_path / "ve")
    scratch = tmp_path / ".ve.tmp"
    scratch.mkdir()
    with slots.exclusive_lock(ve):  # another `make ve` of this ve is building
        slots.tidy(ve)
    assert scratch.is_dir()
    slots.tidy(ve)
    assert not scratch.exists()


# --- 2: the lock --------------------------------------------------------------------------------------------------


def test_the_holder_of_a_replaced_lock_file_locks_the_one_at_the_path(tmp_path):
    ve = str(tmp_path / "ve")
    path = layout.lock_path(ve)
    first = open(path, "a")
    fcntl.flock(first, fcntl.LOCK_EX)
    got = []
    waiter = threading.Thread(target=lambda: got.append(slots.exclusive_lock(ve)))
    waiter.start()
    time.sleep(0.3)
    os.unlink(path)  # what `make clean` did before
    Path(path).write_text("")
    first.close()
    waiter.join(timeout=30)
    assert got, "exclusive_lock never returned"
    locked = os.fstat(got[0].handle.fileno())
    assert (locked.st_dev, locked.st_ino) == (os.stat(path).st_dev, os.stat(path).st_ino)
    got[0].handle.close()


@slow
def test_make_clean_waits_for_a_running_build_and_never_unlinks_the_lock(tmp_path):
    checkout = copy_checkout(tmp_path / "checkout")
    log = open(tmp_path / "build.log", "w+")
    build = subprocess.Popen(make_argv("ve"), cwd=checkout, env=make_env(), stdin=subprocess.DEVNULL, stdout=log,
                             stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not (checkout / ".ve.tmp").exists() and build.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        inode = os.stat(checkout / ".ve.lock").st_ino
        cleaned = run_make(checkout, "clean")
        assert build.wait(timeout=TIMEOUT) == 0
    finally:
        if build.poll() is None:
            build.kill()
    log.seek(0)
    assert "waiting for .ve.lock" in cleaned.stdout, describe(cleaned)
    assert_ok(cleaned)
    assert "==> done: ve ready" in log.read()
    assert os.stat(checkout / ".ve.lock").st_ino == inode
    assert beside_ve(checkout) == [".ve.lock"], describe(cleaned)


def test_make_clean_refuses_while_a_freeze_runs_and_removes_nothing(checkout):
    (checkout / ".bootstrap" / "cache").mkdir(parents=True)
    with open(checkout / ".bootstrap" / "freeze.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write("`make freeze` (pid 4242, started today)\n")
        handle.flush()
        result = run_make(checkout, "clean")
    assert_one_error(result, "`make freeze` is running", "pid 4242", "nothing was removed")
    assert (checkout / ".bootstrap" / "cache").is_dir()


@slow
def test_make_clean_of_a_read_only_checkout_is_one_error_naming_what_is_left(built_checkout):
    result = run_make_read_only(built_checkout, "clean")
    assert_one_error(result, "Read-only file system", "still there:", ".ve-a", "make clean")
    up_to_date(run_make(built_checkout, "ve"))


# --- 4: programs run through the slot's real path --------------------------------------------------------------------


@slow
def test_make_targets_run_tools_as_the_slots_python_never_through_the_link(built_checkout):
    """The project's tools run in the ve's slot, the maintainer tools in the tools env's slot: each by its real
    path, resolved when the recipe starts (so built first here: `make -n` builds nothing)."""
    assert_ok(run_make(built_checkout, "bootstrap-tools"))
    slot = os.path.realpath(built_checkout / "ve")
    tools_slot = os.path.realpath(built_checkout / ".bootstrap" / "tools")
    assert os.path.basename(tools_slot) in (".tools-a", ".tools-b"), tools_slot
    result = run_make(built_checkout, "-n", "bootstrap-test", "bootstrap-sbom")
    assert_ok(result)
    lines = result.stdout.splitlines()
    in_ve = [line for line in lines if "-m pytest" in line or "-m flake8" in line]
    maintainer = [line for line in lines if "-m bootstrap_tools" in line]
    assert len(in_ve) == 2 and all(f'"{slot}/bin/python" -E -s' in line for line in in_ve), describe(result)
    assert len(maintainer) == 2 and all(f'"{tools_slot}/bin/python" -E -s' in line for line in maintainer), \
        describe(result)


# --- 5: modes never leak from the caches -----------------------------------------------------------------------------


def modes(slot):
    found = {}
    for path in glob.glob(os.path.join(slot, "lib", "python*", "site-packages", "**"), recursive=True):
        if os.path.isfile(path) and not os.path.islink(path):
            found[path] = stat.S_IMODE(os.stat(path).st_mode)
    return found


def run_with_umask(checkout, umask, *args):
    return subprocess.run(["sh", "-c", f'umask {umask} && exec "$@"', "sh", *make_argv(*args)], cwd=checkout,
                          env=make_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT)


@slow
def test_modes_follow_the_umask_of_each_build_and_verify_names_a_changed_mode(tmp_path):
    checkout = copy_checkout(tmp_path / "checkout")
    built(run_with_umask(checkout, "077", "ve"))
    assert set(modes(os.path.realpath(checkout / "ve")).values()) <= {0o600, 0o700}
    built(run_with_umask(checkout, "022", "ve", "FORCE=1"))
    found = modes(os.path.realpath(checkout / "ve"))
    assert found and set(found.values()) <= {0o644, 0o755}, sorted(
        f"{oct(mode)} {path}" for path, mode in found.items() if mode not in (0o644, 0o755))[:5]
    # A mode changed by hand in the ve is named by make verify, and never reaches a rebuild.
    pip_init = Path(glob.glob(str(checkout / "ve" / "lib" / "python*" / "site-packages" / "pip" / "__init__.py"))[0])
    pip_init.chmod(0o600)
    result = run_make(checkout, "verify")
    assert_one_error(result)
    assert "pip/__init__.py has mode 600" in result.stdout, describe(result)
    for _ in range(2):
        built(run_make(checkout, "ve", "FORCE=1"))
        assert set(modes(os.path.realpath(checkout / "ve")).values()) <= {0o644, 0o755}


# --- 8: an interpreter too old for bootstrap.py -----------------------------------------------------------------------


def old_python_or_skip(version):
    root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip() if shutil.which(
        "pyenv") else os.environ.get("PYENV_ROOT", "")
    candidates = sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}")))
    candidates += [shutil.which(f"python{version}")] if shutil.which(f"python{version}") else []
    for candidate in candidates:
        if subprocess.run([candidate, "-E", "-c", ""], capture_output=True).returncode == 0:
            return candidate
    pytest.skip(f"no working Python {version} here (looked in `pyenv root`/versions and on PATH)")


@pytest.mark.parametrize("version", ["2.7", "3.9"])
def test_an_interpreter_too_old_for_bootstrap_py_gets_one_error_line_only(checkout, version):
    python = old_python_or_skip(version)
    result = run_make(checkout, "ve", f"PYTHON={python}")
    line = assert_one_error(result, f"is Python {version}", "needs CPython 3.10 or newer", "make ve PYTHON=")
    others = [other for other in result.stderr.splitlines() if other != line and not other.startswith("make")]
    assert others == [], describe(result)
    assert not (checkout / "ve").exists()


def test_ctrl_c_in_make_clean_is_one_error_line(tmp_path, monkeypatch, capsys):
    """In-process: the deletion raises KeyboardInterrupt (what SIGINT does) half-way."""
    ve = tmp_path / "ve"
    for name in (".ve-a", ".ve-b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / layout.MARKER).write_text(layout.MARKER_TEXT)
    ve.symlink_to(".ve-a")
    monkeypatch.setattr(layout, "ROOT", str(tmp_path))
    monkeypatch.setattr(layout, "BUILD_AREA", str(tmp_path / ".bootstrap"))
    calls = []

    def interrupted(path):
        calls.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(slots, "discard", interrupted)
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGHUP)
    try:
        with pytest.raises(SystemExit) as exit_info:
            clean.clean(str(ve), "ve")
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGHUP, handlers[1])
    assert exit_info.value.code == 1 and calls
    err = capsys.readouterr().err
    assert err.startswith("ERROR: interrupted; still there: .ve-a, .ve-b.") and err.count("\n") == 1, err


def test_make_clean_removes_the_tools_envs_of_other_pythons(tmp_path):
    """A freeze keeps another target Python's tools env (.bootstrap/tools-X.Y, bootstrap_tools/targets.py
    tool_python) between freezes; `make clean` removes it with the tools env, and a file of the user's stays."""
    other = "3.10" if "%d.%d" % sys.version_info[:2] != "3.10" else "3.12"
    base = python_or_skip(other)
    checkout = copy_checkout(tmp_path / "checkout")
    build = subprocess.run([base, "-I", "-S", "-B", "bootstrap.py", "--tools", "--ve", f".bootstrap/tools-{other}"],
                           cwd=checkout, env=make_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert build.returncode == 0 and (checkout / ".bootstrap" / f"tools-{other}" / "bin" / "python").exists(), \
        describe(build)
    (checkout / ".bootstrap" / "tools-notes.txt").write_text("mine\n")
    result = assert_ok(run_make(checkout, "clean"))
    assert f".bootstrap/tools-{other}" in result.stdout, describe(result)
    left = sorted(os.listdir(checkout / ".bootstrap"))
    # Its lock file stays, as the tools env's does: a lock file is never unlinked (slots.exclusive_lock).
    assert [name for name in left if other in name] == [f".tools-{other}.lock"] and "tools-notes.txt" in left, left
