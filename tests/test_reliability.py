"""The faults of docs/reliability.md that no other test file tries: a damaged virtualenv.py, Git LFS pointers and a
real Git LFS clone, a full disk, interpreters that cannot run or lack ensurepip, and hostile environments.

Each test runs the real make targets on a copy of the checkout, as a user would, and checks what the catalogue
promises: one ERROR line with cause and fix, and which ve and which files are there afterwards.
"""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bootstrap_tools import adopt

from conftest import (
    REPO, TIMEOUT, assert_ok, assert_one_error, assert_pip_check_clean, assert_ve_works, built, copy_checkout, describe,
    make_argv, make_env, restored, run_make, sha256_file, unshare_or_skip, ve_state,
)

slow = pytest.mark.slow


def no_slots(checkout):
    return [name for name in (".ve-a", ".ve-b", ".ve.tmp") if os.path.lexists(Path(checkout) / name)]


# --- a damaged virtualenv.py -------------------------------------------------------------------------------------


def flip_payload_byte(path):
    data = bytearray(path.read_bytes())
    start = data.index(b'PAYLOAD = b"""\n') + len(b'PAYLOAD = b"""\n')
    position = start + 1000
    data[position] = ord("A") if data[position] != ord("A") else ord("B")
    path.write_bytes(bytes(data))


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) * 2 // 3])


@pytest.mark.parametrize("damage", [flip_payload_byte, truncate], ids=["payload-byte", "truncated"])
def test_a_damaged_virtualenv_py_is_refused_before_it_runs(built_checkout, damage):
    checkout = built_checkout
    before = ve_state(checkout)
    script = checkout / "virtualenv.py"
    with restored(script):
        damage(script)
        result = run_make(checkout, "ve", "FORCE=1")
        assert_one_error(result, "virtualenv.py is damaged", "git checkout -- virtualenv.py")
        assert "SyntaxError" not in result.stdout + result.stderr, describe(result)
    assert ve_state(checkout) == before
    assert_ve_works(checkout)


def test_a_damaged_virtualenv_py_run_by_hand_says_so_before_running_anything(tmp_path):
    script = tmp_path / "virtualenv.py"
    shutil.copyfile(REPO / "virtualenv.py", script)
    flip_payload_byte(script)
    result = subprocess.run([sys.executable, "-I", str(script), "--no-seed", str(tmp_path / "env")], env=make_env(),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert_one_error(result, "is damaged", "does not match the sha256 in its header", "git checkout -- virtualenv.py")
    assert not (tmp_path / "env").exists()


# --- Git LFS -----------------------------------------------------------------------------------------------------


def lfs_pointer(path):
    """The pointer file Git LFS leaves in a clone made without it (spec v1: version, oid, size)."""
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256_file(path)}\n"
            f"size {path.stat().st_size}\n").encode()


def test_lfs_pointers_in_a_clone_made_without_git_lfs_are_named_by_make_ve_and_make_check(tmp_path):
    checkout = copy_checkout(tmp_path / "checkout")
    for path in sorted((checkout / "requirements").glob("*.whl")) + sorted(
            (checkout / "virtualenv_support").glob("*.whl")):
        path.write_bytes(lfs_pointer(path))
    result = run_make(checkout, "ve")
    assert_one_error(result, "Git LFS pointers", "Git LFS is needed", "git lfs pull")
    assert not no_slots(checkout) and not os.path.lexists(checkout / "ve")
    # Without a ve, make check runs bootstrap.py --check first: the same single line.
    assert_one_error(run_make(checkout, "check"), "Git LFS is needed", "git lfs pull")
    # With a ve (the tools' own check), every pointer is listed and the ERROR line says the same.
    result = subprocess.run([sys.executable, "-E", "-s", "-m", "bootstrap_tools.check", str(checkout)], cwd=REPO,
                            env=make_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert_one_error(result, "Git LFS pointer(s)", "Git LFS is needed", "git lfs pull")
    assert "requirements/pluggy-" in result.stdout and "is a Git LFS pointer" in result.stdout, describe(result)


def git_env(home):
    """git with a private HOME and no system config: `git lfs install` there, never in the user's own config."""
    home.mkdir(parents=True, exist_ok=True)
    return make_env(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.invalid",
                    GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.invalid", GIT_TERMINAL_PROMPT="0")


def git(directory, *args, env):
    result = subprocess.run(["git", *args], cwd=directory, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=TIMEOUT)
    assert result.returncode == 0, describe(result)
    return result.stdout


@slow
def test_a_clone_with_its_wheels_in_git_lfs_bootstraps_offline_after_git_lfs_pull(tmp_path):
    if shutil.which("git-lfs") is None:
        pytest.skip("git-lfs is not installed (Debian package git-lfs; .ci/run installs it where it can)")
    unshare_or_skip("-n")
    env = git_env(tmp_path / "home")
    git(tmp_path, "lfs", "install", "--skip-repo", env=env)  # the one-time setup of each machine that clones
    # A project that adopted the convention earlier, wheels in git ...
    project = copy_checkout(tmp_path / "project")
    git(project, "init", "-q", "-b", "main", env=env)
    git(project, "add", "-A", env=env)
    git(project, "commit", "-q", "-m", "wheels in git", env=env)
    # ... moves them to Git LFS with `make adopt LFS=1` (the upgrade path: only .gitattributes changes).
    result = subprocess.run([sys.executable, "-E", "-s", "-m", "bootstrap_tools.adopt", str(project), "--lfs"],
                            cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert_ok(result)
    assert "git add --renormalize requirements virtualenv_support" in result.stdout, describe(result)
    attributes = (project / ".gitattributes").read_text()
    assert all(line in attributes for line in adopt.LFS_ATTRIBUTES), attributes
    git(project, "add", "--renormalize", "requirements", "virtualenv_support", env=env)
    git(project, "add", ".gitattributes", env=env)
    git(project, "commit", "-q", "-m", "wheels in Git LFS", env=env)
    stored = git(project, "lfs", "ls-files", "--name-only", env=env).split()
    wheels = sorted(f"requirements/{path.name}" for path in (project / "requirements").iterdir()) + sorted(
        f"virtualenv_support/{path.name}" for path in (project / "virtualenv_support").glob("*.whl"))
    assert sorted(stored) == wheels
    # The remote: a bare repository, its LFS store reached through a file:// URL (git-lfs's standalone agent).
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin), env=env)
    git(project, "push", "-q", origin.as_uri(), "main", env=env)
    assert list((origin / "lfs" / "objects").rglob("*")), "git push uploaded no LFS object"

    # A clone without Git LFS's smudge filter gets pointers: make ve says what is needed, creates nothing.
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", origin.as_uri(), str(clone), env={**env, "GIT_LFS_SKIP_SMUDGE": "1"})
    assert (clone / "requirements" / wheels[0].split("/")[1]).stat().st_size < 1024
    assert_one_error(run_make(clone, "ve", env=env), "Git LFS is needed", "git lfs pull")
    assert not no_slots(clone)
    # `git lfs pull` fetches the files; then make ve builds with no network at all.
    git(clone, "lfs", "pull", env=env)
    for name in wheels:
        assert sha256_file(clone / name) == sha256_file(project / name), name
    built(run_make(clone, "ve", env=env, prefix=("unshare", "-n")))
    assert_ve_works(clone)
    assert_pip_check_clean(clone)
    assert_ok(run_make(clone, "check", env=env, prefix=("unshare", "-n")))
    # From that commit on, git itself stores pointers only; the wheels live in the LFS store.
    for name in wheels:
        assert int(git(clone, "cat-file", "-s", f"HEAD:{name}", env=env)) < 1024, name


# --- a full disk -------------------------------------------------------------------------------------------------


class SmallDisk:
    """A tmpfs of `size` MB in a mount namespace of its own, kept alive by a sleeping process.

    Commands run inside it through nsenter; the test reads its files through /proc/PID/root, so nothing is
    mounted where the rest of the machine sees it.
    """

    def __init__(self, size):
        self.mount = Path(tempfile.mkdtemp(prefix="small-disk-"))
        script = 'mount -t tmpfs -o size="$1"m tmpfs "$2" && echo mounted && exec sleep 3600'
        self.process = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                                         str(size), str(self.mount)], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if self.process.stdout.readline().strip() != "mounted":
            self.close()
            pytest.skip("cannot mount a small tmpfs in a mount namespace here (needs root or user namespaces)")

    def path(self, inside):
        """Where a path inside the small disk is seen from here."""
        return Path(f"/proc/{self.process.pid}/root{inside}")

    def free(self):
        stat = os.statvfs(self.path(self.mount))
        return stat.f_bavail * stat.f_frsize

    def make(self, directory, *args):
        argv = ["nsenter", "-t", str(self.process.pid), "-m", "--", "sh", "-c", 'cd "$0" && exec "$@"',
                str(directory), *make_argv(*args)]
        return subprocess.run(argv, env=make_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              errors="replace", timeout=TIMEOUT)

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.mount.rmdir()


@contextlib.contextmanager
def small_disk(size):
    unshare_or_skip("-m")
    disk = SmallDisk(size)
    try:
        yield disk
    finally:
        disk.close()


TOOLS_ENV_MB = 36  # .bootstrap/tools as bootstrap_tools/tools.txt pins it: about 34 MB on Python 3.11


def checkout_bytes():
    return sum((REPO / name).stat().st_size for name in ("virtualenv.py",)) + sum(
        path.stat().st_size for directory in ("requirements", "virtualenv_support", "bootstrap_tools/wheels")
        for path in (REPO / directory).iterdir())


@slow
def test_a_disk_too_small_for_any_ve_gives_one_error_and_is_left_as_it_was():
    with small_disk(checkout_bytes() // 10**6 + 12) as disk:
        checkout = disk.mount / "checkout"
        copy_checkout(disk.path(checkout))
        free = disk.free()
        result = disk.make(checkout, "ve")
        line = assert_one_error(result, "the disk is full", str(disk.mount), "A build needs about", "ONE_SLOT=1")
        assert "pip install failed" not in result.stderr, describe(result)
        assert not no_slots(disk.path(checkout)), line
        assert disk.free() == free, "the half-built slot was left on the disk"


@slow
def test_a_disk_with_room_for_one_ve_keeps_the_previous_one_then_builds_with_one_slot():
    # Room for the checkout, the tools' env (`make check` runs there) and one ve with its build scratch, not for
    # two ves. The tools' env is built first, so the ves meet the same room whatever its size.
    with small_disk(checkout_bytes() // 10**6 + TOOLS_ENV_MB + 62) as disk:
        checkout = disk.mount / "checkout"
        copy_checkout(disk.path(checkout))
        assert_ok(disk.make(checkout, "bootstrap-tools"))
        result = disk.make(checkout, "ve")
        if result.returncode != 0 and "the disk is full" in result.stderr:
            pytest.fail(f"the small disk is too small even for one ve: {result.stderr}")
        built(result)
        before, free = ve_state(disk.path(checkout)), disk.free()
        result = disk.make(checkout, "ve", "FORCE=1")
        assert_one_error(result, "the disk is full", "still points at the previous build (.ve-a)", "ONE_SLOT=1")
        assert ve_state(disk.path(checkout)) == before
        assert disk.free() == free, "the half-built slot was left on the disk"
        assert not os.path.lexists(disk.path(checkout) / ".ve-b")
        # The way out the message names: build without keeping the previous build.
        result = built(disk.make(checkout, "ve", "FORCE=1", "ONE_SLOT=1"))
        assert [name for name in (".ve-a", ".ve-b") if os.path.lexists(disk.path(checkout) / name)] == [".ve-b"]
        assert os.readlink(disk.path(checkout) / "ve") == ".ve-b"
        check = disk.make(checkout, "check")
        assert_ok(check)


# --- interpreters ------------------------------------------------------------------------------------------------


def failing_pyenv_shim(env):
    """A pyenv shim of a target Python whose version is installed but not selected (`pyenv: python3.X: command not
    found`), the classic trap of PYTHON=python3.X."""
    shims = Path(os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")) / "shims"
    for version in ("3.10", "3.11", "3.12", "3.13"):
        shim = shims / f"python{version}"
        if shim.exists() and subprocess.run([str(shim), "-c", ""], env=env, capture_output=True).returncode != 0:
            return shim
    pytest.skip(f"no pyenv shim in {shims} fails with PYENV_VERSION={env['PYENV_VERSION']}")


@pytest.mark.parametrize("python", ["python3.99", "pyenv-shim"])
def test_a_python_that_cannot_run_gives_one_error_and_the_ve_is_kept(built_checkout, python):
    checkout = built_checkout
    before = ve_state(checkout)
    env = make_env()
    if python == "pyenv-shim":
        # pyenv prints its own lines and exits before any Python starts.
        env["PYENV_VERSION"] = "system"
        python = str(failing_pyenv_shim(env))
    result = run_make(checkout, "ve", f"PYTHON={python}", env=env)
    assert_one_error(result, f"PYTHON={python} cannot run", "make ve PYTHON=")
    assert ve_state(checkout) == before
    assert_ve_works(checkout)


def python_without_ensurepip(directory):
    """A copy of the base interpreter whose standard library lacks ensurepip (as Debian's python3 without
    python3-venv): its binary copied, each stdlib entry but ensurepip linked."""
    base = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    stdlib = subprocess.run([base, "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
                            capture_output=True, text=True, check=True).stdout.strip()
    version = "%d.%d" % sys.version_info[:2]
    (directory / "bin").mkdir(parents=True)
    lib = directory / "lib" / f"python{version}"
    lib.mkdir(parents=True)
    for name in os.listdir(stdlib):
        if name not in ("ensurepip", "site-packages"):
            os.symlink(os.path.join(stdlib, name), lib / name)
    python = directory / "bin" / f"python{version}"
    shutil.copy2(base, python)
    probe = subprocess.run([str(python), "-I", "-c", "import sys, os; print(sys.prefix); import ensurepip"],
                           capture_output=True, text=True)
    if probe.returncode == 0 or "ensurepip" not in probe.stderr or probe.stdout.strip() != str(directory):
        pytest.skip(f"cannot make a Python without ensurepip from {base}: {describe(probe)}")
    return python


@slow
def test_a_python_without_ensurepip_builds_the_ve(tmp_path):
    python = python_without_ensurepip(tmp_path / "python")
    checkout = copy_checkout(tmp_path / "checkout")
    summary = built(run_make(checkout, "ve", f"PYTHON={python}"))
    assert str(python) in summary, summary
    assert_ve_works(checkout)
    assert_pip_check_clean(checkout)


# --- the environment and the file system --------------------------------------------------------------------------


def without(env, *names):
    return {key: value for key, value in env.items() if key not in names}


ENVIRONMENTS = {
    "home-unset": lambda tmp_path: ((), without(make_env(), "HOME")),
    "home-read-only": lambda tmp_path: (read_only_home(tmp_path / "home"), make_env(HOME=str(tmp_path / "home"))),
    "umask-077": lambda tmp_path: (("sh", "-c", 'umask 077 && exec "$@"', "sh"), make_env()),
    # A locale that is not UTF-8 (and, where it is not installed, the C locale it falls back to), with a checkout
    # path that is not ASCII: nothing may decode a path or an output with the locale's codec.
    "latin-1-locale": lambda tmp_path: ((), without(make_env(LANG="de_DE.ISO-8859-1", LC_ALL="de_DE.ISO-8859-1"),
                                                    "LANGUAGE", "PYTHONUTF8", "PYTHONIOENCODING")),
    "c-locale": lambda tmp_path: ((), without(make_env(LC_ALL="C", LANG="C"), "PYTHONUTF8", "PYTHONIOENCODING")),
}


def read_only_home(home):
    """A prefix that runs the command with `home` on a read-only bind mount (root may write anything else)."""
    unshare_or_skip("-m")
    home.mkdir(parents=True, exist_ok=True)
    (home / ".config" / "pip").mkdir(parents=True)
    (home / ".config" / "pip" / "pip.conf").write_text("[global]\nindex-url = http://127.0.0.1:9/never/\n")
    script = f'mount --bind "{home}" "{home}" && mount -o remount,bind,ro "{home}" "{home}" && exec "$@"'
    return ("unshare", "-m", "sh", "-c", script, "sh")


@slow
@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_make_ve_builds_in_a_hostile_environment(tmp_path, name):
    prefix, env = ENVIRONMENTS[name](tmp_path)
    checkout = copy_checkout(tmp_path / "prüfung ✓" / "checkout")
    built(run_make(checkout, "ve", env=env, prefix=prefix))
    assert_ve_works(checkout)
    assert_pip_check_clean(checkout)
    if name == "umask-077":
        # The umask is the user's choice: the ve is theirs alone, and still whole.
        assert (checkout / "ve" / "pyvenv.cfg").stat().st_mode & 0o077 == 0


@slow
def test_a_checkout_path_too_long_for_a_shebang(tmp_path):
    deep = tmp_path / ("d" * 60) / ("e" * 60) / ("f" * 60)
    checkout = copy_checkout(deep / "checkout")
    assert len(str(checkout / ".ve-a" / "bin" / "python")) > 127
    built(run_make(checkout, "ve"))
    assert_ve_works(checkout)
    for script in ("pip", "pytest", "flake8"):
        result = subprocess.run([str(checkout / "ve" / "bin" / script), "--version"], env=make_env(),
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
        assert result.returncode == 0, describe(result)


def test_a_truncated_wheel_is_refused_and_the_previous_ve_kept(built_checkout):
    checkout = built_checkout
    before = ve_state(checkout)
    wheel = sorted((checkout / "requirements").glob("pluggy-*.whl"))[0]
    with restored(wheel):
        truncate(wheel)
        assert_one_error(run_make(checkout, "ve", "FORCE=1"), f"requirements/{wheel.name}", "does not match",
                         f"git checkout -- requirements/{wheel.name}")
    assert ve_state(checkout) == before
