"""`make ve` and `make clean` never delete or damage what is not their own, and never leave a wrong state behind.

Scenarios from fault injection on fresh checkouts: a VE that names the checkout, a user's venv or file at VE, a
checkout reached through a symlink, moved or copied, with spaces in its path, signals to bootstrap alone or to its
group, files left by `sudo make ve`, a trailing slash in VE, steering variables exported by the environment, and
advice that must work. The data-loss cases compare every file of the checkout (and of the user's directory) before
and after.
"""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (
    TIMEOUT, artifact, assert_one_error, assert_ok, assert_ve_works, built, copy_checkout, default_signals, describe,
    diff_digests, make_argv, make_env, run_make, sha256_file, tree_digest, up_to_date, ve_python,
)

slow = pytest.mark.slow


def checkout_files(checkout):
    """Every file of the checkout except the ve and its slots: what a refused or failed build must not touch."""
    return {path: digest for path, digest in tree_digest(checkout).items()
            if not path.split(os.sep)[0].startswith((".ve", "ve"))}


# --- VE values that would destroy the checkout or a user's files --------------------------------------------------


@pytest.mark.parametrize("value", ["", ".", "..", "requirements", "virtualenv_support/ve", ".git", "README.md"])
def test_a_ve_that_names_the_checkout_its_inputs_or_a_file_is_refused_and_nothing_changes(checkout, value):
    before = checkout_files(checkout.parent)
    assert_one_error(run_make(checkout, "ve", f"VE={value}"), "VE")
    assert diff_digests(before, checkout_files(checkout.parent)) == []
    assert not (checkout / "ve").exists()


def test_an_exported_empty_ve_is_ignored_not_obeyed(checkout):
    """Exported steering variables are ignored with one line (an empty VE once replaced the whole checkout)."""
    env = make_env(VE="", PYTHON="/no/such/python", FORCE="1")
    artifact(checkout, "pluggy").unlink()  # stop before any build: only the choice of variables matters here
    result = run_make(checkout, "ve", env=env)
    for name in ("VE", "PYTHON", "FORCE"):
        assert f"ignoring {name}=" in result.stdout, describe(result)
    assert_one_error(result, "pluggy")  # the default python3 ran, for the default VE
    assert (checkout / ".git").exists() or not (Path(checkout) / ".git").exists()
    assert (checkout / "bootstrap.py").is_file()


@slow
def test_a_users_venv_at_ve_is_moved_aside_never_deleted_and_clean_leaves_it(checkout):
    mine = checkout / "myenv"
    subprocess.run([shutil.which("python3"), "-m", "venv", "--without-pip", str(mine)], check=True)
    (mine / "NOTES.txt").write_text("my notes\n")
    before = tree_digest(mine)
    result = run_make(checkout, "ve", "VE=myenv")
    built(result)
    assert "myenv.moved-aside" in result.stdout, describe(result)
    assert diff_digests(before, tree_digest(checkout / "myenv.moved-aside")) == []
    assert os.readlink(mine) == ".myenv-a"
    assert_ve_works(checkout, "myenv")

    # Tab completion gives `myenv/`: clean must not empty the live slot through the link, nor touch the user's venv.
    cleaned = assert_ok(run_make(checkout, "clean", "VE=myenv/"))
    assert not any(os.path.lexists(checkout / name) for name in ("myenv", ".myenv-a")), describe(cleaned)
    assert diff_digests(before, tree_digest(checkout / "myenv.moved-aside")) == []
    assert (checkout / "bootstrap.py").is_file() and (checkout / "requirements").is_dir()


# --- where the checkout is: symlinked, moved, copied, spaces ------------------------------------------------------


@slow
def test_a_checkout_reached_through_a_symlink_rebuilds_into_the_other_slot(checkout, tmp_path):
    link = tmp_path / "current"
    os.symlink(checkout, link)
    built(run_make(link, "ve"))
    assert os.readlink(checkout / "ve") == ".ve-a"
    built(run_make(link, "ve", "FORCE=1", f"VE={link}/ve"))
    assert os.readlink(checkout / "ve") == ".ve-b", "the rebuild must not wipe the slot ve points at"
    assert_ve_works(checkout)
    tools = ve_python(checkout, "import pytest, flake8")
    assert tools.returncode == 0, describe(tools)


@slow
def test_a_moved_or_copied_checkout_rebuilds_and_never_runs_the_originals_tools(checkout, tmp_path):
    built(run_make(checkout, "ve"))
    moved = tmp_path / "moved"
    checkout.rename(moved)
    built(run_make(moved, "ve"))
    copied = tmp_path / "copied"
    shutil.copytree(moved, copied, symlinks=True)
    built(run_make(copied, "ve"))
    for place in (moved, copied):
        pip = subprocess.run([str(place / "ve" / "bin" / "pip"), "--version"], env=make_env(),
                             capture_output=True, text=True, timeout=TIMEOUT)
        assert pip.returncode == 0, describe(pip)
        assert f"{place}/.ve-" in pip.stdout, describe(pip)


@pytest.mark.parametrize("where", ["a:b"])
def test_a_colon_in_the_path_gets_one_clear_error(tmp_path, where):
    checkout = copy_checkout(tmp_path / where / "checkout")
    result = run_make(checkout, "ve")
    assert_one_error(result, "':'", "Move the checkout")
    assert not (checkout / "ve").exists()


# --- signals: children die with bootstrap, nothing is left in TMPDIR -----------------------------------------------


def start_build(checkout, env):
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(make_argv("ve", "FORCE=1"), cwd=checkout, env=env, stdin=subprocess.DEVNULL,
                               stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                               preexec_fn=default_signals)
    return process, log


def bootstrap_pid(process):
    """The pid of bootstrap.py under `make` (make runs it through sh, or directly)."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                stat = Path(f"/proc/{pid}/stat").read_text()
                # bootstrap.mk compiles it (`-c '... bootstrap.main(sys.argv[1:]) ...'`); make's `sh -c` carries
                # the same text, so the interpreter, not the shell, is the one.
                imported = any(b"bootstrap.main(" in arg for arg in cmdline) and b"python" in cmdline[0]
                script = b"bootstrap.py" in cmdline and b"-c" not in cmdline
                if os.getpgid(int(pid)) == process.pid and (imported or script):
                    if not stat.split(") ", 1)[1].startswith("Z"):
                        return int(pid)
        time.sleep(0.02)
    pytest.fail("bootstrap.py did not start")


def wait_until_pip_installs(slot, log, process):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        log.seek(0)
        if "==> installing" in log.read() and any(slot.glob("lib/python3.*/site-packages/pluggy*")):
            return
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"make ended before pip ran:\n{log.read()}")
        time.sleep(0.02)
    pytest.fail("pip never started")


def wait_for_group_to_end(pgid):
    """After make is gone, bootstrap may still be unwinding (stopping children, removing scratch): wait for it."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        alive = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                stat = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].split()
                if int(stat[2]) == pgid and stat[0] != "Z":
                    alive.append(pid)
        if not alive:
            return
        time.sleep(0.05)
    pytest.fail(f"processes of the build still run a minute after the signal: {alive}")


def writers_in(path):
    """Processes whose command line names `path` (children still writing into a slot)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if str(path).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
    return found


@slow
@pytest.mark.parametrize("signum,target", [(signal.SIGTERM, "bootstrap alone"), (signal.SIGHUP, "the group")])
def test_a_signal_stops_the_children_and_leaves_nothing_behind(checkout, tmp_path, signum, target):
    built(run_make(checkout, "ve"))
    before = tree_digest(checkout / "ve")
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    process, log = start_build(checkout, make_env(TMPDIR=str(tmpdir)))
    try:
        wait_until_pip_installs(checkout / ".ve-b", log, process)
        if target == "bootstrap alone":
            os.kill(bootstrap_pid(process), signum)
        else:
            os.killpg(process.pid, signum)
        process.wait(timeout=TIMEOUT)
        wait_for_group_to_end(process.pid)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    log.seek(0)
    output = log.read()
    assert process.returncode != 0, output
    assert "Traceback" not in output, output
    assert writers_in(checkout / ".ve-b") == [], "a child of bootstrap still runs in the new slot"
    assert list(tmpdir.iterdir()) == [], "scratch directories were left in TMPDIR"
    assert not (checkout / ".ve.tmp").exists(), output
    assert diff_digests(before, tree_digest(checkout / "ve")) == []
    if target == "bootstrap alone":
        assert "still points at the previous finished build (.ve-a)" in output, output
    built(run_make(checkout, "ve", "FORCE=1"))
    assert_ve_works(checkout)


# --- files left by another user (sudo make ve) ---------------------------------------------------------------------


def as_nobody(directory, *args):
    env = make_env(HOME=str(directory))
    return subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *make_argv(*args)],
                          cwd=directory, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT)


@slow
def test_files_left_by_sudo_make_ve_are_named_with_their_owner_and_the_fix():
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to play both `sudo make ve` and the checkout's owner")
    top = Path(tempfile.mkdtemp(prefix="sudo-make-ve-"))
    try:
        top.chmod(0o755)  # the checkout's owner (nobody) must reach it
        checkout = copy_checkout(top / "checkout")
        subprocess.run(["chown", "-R", "nobody:nogroup", str(checkout)], check=True)
        if as_nobody(checkout, "--version").returncode != 0:
            pytest.skip("nobody cannot run make here")
        built(run_make(checkout, "ve"))  # as root: the `sudo make ve`
        for args in (("ve", "FORCE=1"), ("ve", "FORCE=1"), ("clean",)):
            result = as_nobody(checkout, *args)
            if args == ("ve", "FORCE=1") and result.returncode == 0:
                continue  # the first rebuild goes into the free slot; the next one meets root's slot
            assert_one_error(result, "belong to root, not to nobody", "sudo chown -R nobody")
            assert ".ve-a" in result.stderr
    finally:
        shutil.rmtree(top)


# --- advice that works, inputs that are fine ------------------------------------------------------------------------


@slow
def test_make_check_lists_problems_when_no_ve_can_be_built(checkout):
    wheel = artifact(checkout, "pluggy")
    wheel.unlink()
    seed = next((checkout / "virtualenv_support").glob("pip-*.whl"))
    with open(seed, "ab") as handle:
        handle.write(b"tampered")
    result = run_make(checkout, "check")
    # check runs in the tools' env, never in the ve: the missing artifact, the seed against SHA256SUMS and the
    # seed against the dev lock's hashes for pip.
    assert_one_error(result, "3 problem(s)")
    assert "pluggy" in result.stdout and seed.name in result.stdout, describe(result)
    assert not (checkout / "ve").exists()


@slow
def test_harmless_variations_of_inputs_are_accepted(checkout):
    """A BOM in the lock, uppercase hex in SHA256SUMS (sha256sum -c accepts it), a stray directory among the seeds."""
    lock = checkout / "requirements.txt"
    lock.write_bytes(b"\xef\xbb\xbf" + lock.read_bytes())
    sums = checkout / "virtualenv_support" / "SHA256SUMS"
    sums.write_text("".join(line if line.startswith("#") else line[:64].upper() + line[64:]
                            for line in sums.read_text().splitlines(keepends=True)))
    (checkout / "virtualenv_support" / "stray-dir").mkdir()
    built(run_make(checkout, "ve"))
    up_to_date(run_make(checkout, "ve"))
    assert sha256_file(checkout / "requirements.txt")
