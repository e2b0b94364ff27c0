"""Helpers shared by the bootstrap tests: copy the tracked tree, run make, find Pythons, hash trees, build wheels.

End-to-end tests work on a copy of the checkout in tmp_path and run the real `make` targets there, as a user
would. Nothing here needs the network; fixture wheels are made with zipfile.
"""

import base64
import contextlib
import functools
import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from bootstrap_build import pythons
from bootstrap_tools import lockfile

REPO = Path(__file__).resolve().parent.parent
# Variables a surrounding `make test` passes down; a nested `make ve` must not inherit FORCE=1, PYTHON=... from them.
MAKE_VARIABLES = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "GNUMAKEFLAGS", "MAKE_TERMOUT", "MAKE_TERMERR")
# A hang is a failure, not a wait forever: far above a build's ~10 s.
TIMEOUT = 900
SUMMARY_PREFIX = "==> done: "


@functools.lru_cache(maxsize=None)
def tracked_files():
    """Files a clone would have (tracked, plus new files not ignored), without builds and their leftovers."""
    try:
        output = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=REPO, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot list the tracked files with git: {exc}")
    names = []
    for raw in output.split(b"\0"):
        name = os.fsdecode(raw)
        top = name.split("/", 1)[0]
        if not name or top in ("ve", "build", ".bootstrap", "ve.switching") or top.startswith(".ve"):
            continue
        if os.path.lexists(REPO / name):  # deleted in the work tree but still in the index
            names.append(name)
    return tuple(sorted(names))


def copy_checkout(dest):
    """Copy the tracked tree to `dest` (created) and return it as a Path."""
    dest = Path(dest)
    for name in tracked_files():
        source, target = REPO / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)
    return dest


# The maintainer tools' env (bootstrap.py --tools) in a checkout's build area: valid only where it was built, and
# kept by the fixtures that put a checkout back at its place, so each test does not build it again.
TOOLS_ENV = ("tools", ".tools-a", ".tools-b", ".tools.lock")


@pytest.fixture(scope="session")
def tools_python():
    """This checkout's tools env, where pip-tools and cyclonedx-python-lib live (never in ./ve, which runs these
    tests, so no test imports them): `make test` builds it before pytest, so this is a no-op unless pytest was run
    by hand."""
    assert_ok(run_make(REPO, "bootstrap-tools"))
    return REPO / ".bootstrap" / "tools" / "bin" / "python"


def build_area_leftovers(directory, names):
    """For shutil.copytree's `ignore`: everything in a build area (.bootstrap/) but the tools' env."""
    return [name for name in names if name not in TOOLS_ENV] if os.path.basename(directory) == ".bootstrap" else []


def clear_build_area(checkout):
    """Remove what the last run left in checkout's build area, the tools' env excepted."""
    area = Path(checkout) / ".bootstrap"
    for name in build_area_leftovers(str(area), os.listdir(area)) if area.is_dir() else []:
        path = area / name
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


@contextlib.contextmanager
def restored(*paths):
    """Let a test break files (change or delete them); put back their exact bytes afterwards."""
    saved = {Path(path): Path(path).read_bytes() if os.path.lexists(path) else None for path in paths}
    try:
        yield
    finally:
        for path, data in saved.items():
            if data is None:
                if os.path.lexists(path):
                    path.unlink()
            else:
                path.write_bytes(data)


@pytest.fixture(scope="module")
def built_checkout(tmp_path_factory):
    """One checkout with a finished ve per module, shared by its failure stories (each restores what it breaks)."""
    checkout = copy_checkout(tmp_path_factory.mktemp("built") / "checkout")
    built(run_make(checkout, "ve"))
    return checkout


@pytest.fixture
def checkout(tmp_path):
    """A fresh copy of the checkout, never built."""
    return copy_checkout(tmp_path / "checkout")


def make_env(**extra):
    """The test's own environment (hostile pip config of this machine included) minus make's variables."""
    env = {key: value for key, value in os.environ.items() if key not in MAKE_VARIABLES}
    env.update(extra)
    return env


def default_signals():
    """preexec_fn: the signals a test sends act as at a terminal, even when `make test` itself runs in the
    background (a shell without job control starts it with SIGINT ignored, and children inherit that)."""
    import signal

    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


# This repository's Makefile declares three platforms; a scenario freezes for this machine's platform alone unless
# it names TARGET_PLATFORMS (every declared platform multiplies a freeze's pip-compile runs; test_platforms.py
# covers them).
FREEZING = ("freeze", "freeze-upgrade", "bootstrap-freeze", "bootstrap-freeze-upgrade")


def make_argv(*args):
    """`make ARGS`; a freeze also gets TARGET_PLATFORMS= and RETARGET=1 unless it names them: the scenarios freeze
    copies of this checkout (locked for 3.10-3.13 on three platforms) for the targets they need, and the refusal
    of a silent retarget is tested on its own (test_freeze.py)."""
    if any(arg in FREEZING for arg in args):
        for default in ("TARGET_PLATFORMS=", "RETARGET=1"):
            if not any(str(arg).startswith(default.split("=")[0] + "=") for arg in args):
                args = (*args, default)
    return ["make", "--no-print-directory", *args]


# `make check` compares the lock's header with TARGET_PYTHONS, TARGET_PLATFORMS and GLIBC_FLOOR. A scenario locks
# with settings on the command line (this machine's Python and platform), not in its copy's Makefile, so its
# checks are given the settings its lock names, as a project's Makefile would; test_platform_settings.py checks the
# comparison itself.
CHECKING = ("check", "test", "bootstrap-check", "bootstrap-test")
HEADER_SETTINGS = (("TARGET_PYTHONS", "# targets:"), ("TARGET_PLATFORMS", "# platforms:"),
                   ("GLIBC_FLOOR", "# glibc floor:"))


def lock_settings(directory, args):
    """The settings `directory`'s lock was made with, for a `make check` (or test) ARGS that names none of them."""
    lock = Path(directory) / "requirements.txt"
    if not any(arg in CHECKING for arg in args) or any(arg.split("=")[0] in dict(HEADER_SETTINGS) for arg in args):
        return ()
    try:
        header = [line for line in lock.read_text(encoding="utf-8", errors="replace").splitlines()
                  if line.startswith("#")]
    except OSError:
        return ()
    found = []
    for name, prefix in HEADER_SETTINGS:
        values = [line[len(prefix):].strip() for line in header if line.startswith(prefix)]
        if values or name == "TARGET_PLATFORMS":
            found.append(f"{name}={values[0] if values else ''}")
    return tuple(found)


def run_make(directory, *args, env=None, prefix=()):
    """Run `make ARGS` in `directory` like a user would; `prefix` wraps it (e.g. `unshare -n`)."""
    args = (*args, *lock_settings(directory, args))
    return subprocess.run([*prefix, *make_argv(*args)], cwd=directory, env=make_env() if env is None else env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                          timeout=TIMEOUT)


def describe(result):
    return f"exit {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"


def assert_ok(result):
    assert result.returncode == 0, describe(result)
    assert "Traceback" not in result.stdout + result.stderr, describe(result)
    assert "ERROR" not in result.stderr, describe(result)
    return result


def built(result):
    """Assert that `make ve` succeeded by building (not as a no-op); return its summary line."""
    assert_ok(result)
    summary = [line for line in result.stdout.splitlines() if line.startswith(SUMMARY_PREFIX)]
    assert len(summary) == 1, describe(result)
    assert "up to date" not in result.stdout, describe(result)
    return summary[0]


def up_to_date(result):
    assert_ok(result)
    assert "up to date" in result.stdout, describe(result)
    assert "==>" not in result.stdout, describe(result)


def assert_one_error(result, *needles):
    """A clear failure: non-zero exit, exactly one `ERROR:` line holding every needle, no traceback."""
    assert result.returncode != 0, describe(result)
    assert "Traceback" not in result.stdout + result.stderr, describe(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, describe(result)
    assert "ERROR:" not in result.stdout, describe(result)
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in the ERROR line\n{describe(result)}"
    return errors[0]


def ve_python(checkout, code, ve="ve"):
    """Run `ve/bin/python -I -B -c code` (-B: checking a build must not add .pyc files to it)."""
    return subprocess.run([str(Path(checkout) / ve / "bin" / "python"), "-I", "-B", "-c", code],
                          env=make_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT)


def assert_ve_works(checkout, ve="ve"):
    result = ve_python(checkout, "import sys; print(sys.prefix)", ve)
    assert result.returncode == 0, describe(result)
    return result.stdout.strip()


def sha256_file(path):
    return lockfile.sha256(path)


def tree_digest(root):
    """{relative path: sha256 of a file, or `-> target` of a symlink, or `dir`} for everything under root."""
    root, result = os.path.realpath(root), {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            if os.path.islink(path):
                result[relative] = "-> " + os.readlink(path)
            elif os.path.isdir(path):
                result[relative] = "dir"
            else:
                result[relative] = sha256_file(path)
    return result


def ve_state(checkout, ve="ve"):
    """What must not change when a build fails: where ve points, its stamp, every file of the slot."""
    link = Path(checkout) / ve
    target = os.readlink(link)
    stamp = (link / "bootstrap-stamp.txt").read_text()
    return target, stamp, tree_digest(link)


def diff_digests(first, second):
    """Human-readable differences between two tree_digest maps (empty when identical)."""
    lines = []
    for key in sorted(set(first) | set(second)):
        if first.get(key) != second.get(key):
            lines.append(f"{key}: {first.get(key, '(absent)')} != {second.get(key, '(absent)')}")
    return lines


def leftovers(checkout, ve="ve"):
    return [name for name in (f"{ve}.switching",) if os.path.lexists(Path(checkout) / name)]


@functools.lru_cache(maxsize=None)
def _find_python(version):
    """A CPython X.Y that runs, found where the convention looks (pyenv's versions, then PATH), or None."""
    for candidate in pythons.candidates(version):
        check = subprocess.run([candidate, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if check.returncode == 0 and check.stdout.strip() == version:
            return candidate
    return None


def python_or_skip(version):
    """A working python<version> from pyenv's root or PATH (a pyenv shim that refuses does not count)."""
    found = _find_python(version)
    if found is None:
        pytest.skip(f"no working Python {version} here (looked in `pyenv root`/versions and for python{version} "
                    "on PATH)")
    return found


@functools.lru_cache(maxsize=None)
def _unshare_works(flag):
    try:
        return subprocess.run(["unshare", flag, "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def unshare_or_skip(flag):
    if not _unshare_works(flag):
        pytest.skip(f"`unshare {flag}` does not work here (needs root or user namespaces)")


def run_make_read_only(checkout, *args):
    """`make ARGS` in `checkout` seen through a read-only bind mount of itself (`unshare -m`; skipped without)."""
    unshare_or_skip("-m")
    script = ('dir=$1; shift; mount --bind "$dir" "$dir" && mount -o remount,bind,ro "$dir" "$dir" || exit 97; '
              'exec make --no-print-directory -C "$dir" "$@"')
    result = subprocess.run(["unshare", "-m", "sh", "-c", script, "sh", str(checkout), *args], env=make_env(),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    if result.returncode == 97:
        pytest.skip(f"cannot make a read-only bind mount here: {result.stderr.strip()}")
    return result


def record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_wheel(path, name, version, files):
    """Write a minimal valid wheel at `path` holding `files` ({archive name: bytes}) plus its dist-info."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    members = dict(files)
    members[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
    members[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [f"{member},{record_hash(data)},{len(data)}" for member, data in members.items()]
    members[f"{dist_info}/RECORD"] = ("\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n").encode()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return Path(path)


# A checkout's locks: the runtime set, then the dev set (this repository's runtime set pins nothing).
LOCKS = ("requirements.txt", "requirements-dev.txt")


def pinning_lock(checkout, name):
    """The lock of `checkout` (runtime or dev set) that pins `name`."""
    for lock in LOCKS:
        path = Path(checkout) / lock
        if path.is_file() and any(line.startswith(f"{name}==") for line in path.read_text().splitlines()):
            return path
    raise AssertionError(f"{name} is not pinned in {' or '.join(LOCKS)} of {checkout}")


def pinned_version(checkout, name):
    """The version `name` is pinned to in checkout's locks (so tests do not hard-code versions)."""
    for line in pinning_lock(checkout, name).read_text().splitlines():
        if line.startswith(f"{name}=="):
            return line.split("==", 1)[1].split()[0].split(";")[0]


def artifact(checkout, name):
    """The single wheel of `name` in checkout/requirements/."""
    matches = sorted((Path(checkout) / "requirements").glob(f"{name.replace('-', '_')}-*.whl"))
    assert len(matches) == 1, matches
    return matches[0]


def assert_pip_check_clean(checkout, ve="ve"):
    """`pip check` of a ve: by its own pip, or, in a ve whose locks pin no pip (bootstrap.py removes the seed
    there), by the checkout's tools env's pip pointed at it (`--python`)."""
    python = Path(checkout) / ve / "bin" / "python"
    has_pip = ve_python(checkout, "import importlib.util, sys; sys.exit(not importlib.util.find_spec('pip'))", ve)
    pip = [python, "-I", "-B", "-m", "pip"] if has_pip.returncode == 0 else [
        Path(checkout) / ".bootstrap" / "tools" / "bin" / "python", "-I", "-B", "-m", "pip", "--python", python]
    result = subprocess.run([*map(str, pip), "check", "--isolated", "--disable-pip-version-check"],
                            env=make_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, describe(result)
