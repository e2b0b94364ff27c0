"""`make ve` as a user meets it: each test copies the checkout into tmp_path and runs the real make targets there.

Whole-environment builds are marked slow (they still run in `make test`). The failure stories share one built
checkout per module (`built_checkout`): each of them changes an input, checks that `make ve` refuses with one clear
ERROR line while the previous ve stays exactly as it was, and restores the input, so they stay independent.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from bootstrap_tools import lockfile

from conftest import (
    SUMMARY_PREFIX, TIMEOUT, artifact, assert_one_error, assert_ok, assert_pip_check_clean, assert_ve_works, built,
    copy_checkout, default_signals, describe, diff_digests, leftovers, make_argv, make_env, make_wheel,
    pinned_version, pinning_lock, python_or_skip, restored, run_make, run_make_read_only, sha256_file, tree_digest,
    unshare_or_skip, up_to_date,
    ve_python, ve_state,
)

slow = pytest.mark.slow


def lock_targets(checkout):
    for line in (Path(checkout) / "requirements.txt").read_text().splitlines():
        if line.startswith("# targets:"):
            return line.split(":", 1)[1].split()
    raise AssertionError("requirements.txt has no `# targets:` line")


def wait_for(condition, process, what):
    """Poll until condition() holds; fail (not hang) if the process ends first or after TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"`make` ended (exit {process.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


# --- help ---------------------------------------------------------------------------------------------------


def test_make_alone_prints_help_listing_the_targets(checkout):
    result = assert_ok(run_make(checkout))
    for target in ("ve", "test", "clean"):
        assert re.search(rf"^\s+make {target}\s+\S", result.stdout, re.MULTILINE), describe(result)
    assert not (checkout / "ve").exists()


# --- building ------------------------------------------------------------------------------------------------


@slow
def test_fresh_build_with_no_network_at_all(checkout):
    unshare_or_skip("-n")
    result = run_make(checkout, "ve", prefix=["unshare", "-n"])
    summary = built(result)
    assert os.readlink(checkout / "ve") == ".ve-a"
    assert re.fullmatch(r"==> done: ve ready, Python \d+\.\d+\.\d+ \(/.+\), \d+ packages installed "
                        r"\(of the lock's \d+ pins, those for this Python\), [\d.]+ s",
                        summary), summary
    steps = [line for line in result.stdout.splitlines() if line.startswith("==> ")]
    assert len(steps) >= 3, describe(result)  # one per step (create, install, check) and the summary
    assert_ve_works(checkout)
    tools = ve_python(checkout, "import pytest, flake8, sys; print(sys.prefix)")
    assert tools.returncode == 0, describe(tools)
    assert Path(tools.stdout.strip()).resolve() == (checkout / ".ve-a").resolve()
    # The maintainer tools live in their own env (.bootstrap/tools), never in the project's ve.
    apart = ve_python(checkout, "import piptools")
    assert apart.returncode != 0 and "No module named 'piptools'" in apart.stderr, describe(apart)
    assert not leftovers(checkout)


@slow
def test_unchanged_inputs_are_a_no_op_and_force_rebuilds_into_the_other_slot(checkout):
    built(run_make(checkout, "ve"))
    first = ve_state(checkout)
    up_to_date(run_make(checkout, "ve"))
    assert ve_state(checkout) == first
    assert not (checkout / ".ve-b").exists()

    # Touching every input without changing its content is still a no-op: content decides, not mtimes.
    later = time.time() + 3600
    inputs = [checkout / name for name in ("requirements.txt", "bootstrap.py", "virtualenv.py", "Makefile",
                                           "bootstrap.mk")]
    inputs += list((checkout / "virtualenv_support").iterdir()) + list((checkout / "requirements").iterdir())
    for path in inputs:
        os.utime(path, (later, later))
    up_to_date(run_make(checkout, "ve"))
    assert ve_state(checkout) == first

    built(run_make(checkout, "ve", "FORCE=1"))
    assert os.readlink(checkout / "ve") == ".ve-b"
    assert_ve_works(checkout)
    assert (checkout / ".ve-a" / "bootstrap-stamp.txt").exists(), "the previous slot is kept until the next build"
    up_to_date(run_make(checkout, "ve"))
    assert not leftovers(checkout)


@slow
def test_changing_the_content_of_an_input_rebuilds(checkout):
    built(run_make(checkout, "ve"))
    old_stamp = (checkout / "ve" / "bootstrap-stamp.txt").read_text()
    with open(checkout / "requirements.txt", "a") as handle:
        handle.write("# a comment changes the content, so the key\n")
    built(run_make(checkout, "ve"))
    assert os.readlink(checkout / "ve") == ".ve-b"
    assert (checkout / "ve" / "bootstrap-stamp.txt").read_text() != old_stamp
    assert_ve_works(checkout)
    up_to_date(run_make(checkout, "ve"))


@slow
def test_a_checkout_path_with_spaces_and_non_ascii_characters(tmp_path):
    checkout = copy_checkout(tmp_path / "my project ü" / "checkout 2")
    built(run_make(checkout, "ve"))
    assert_ve_works(checkout)
    # The maintainer tools' env is built at the same path by the same code.
    assert_ok(run_make(checkout, "bootstrap-tools"))
    # Console scripts carry the path in their shebang: they must run too, pip's (written by bootstrap) included.
    pip_version = "pip%d.%d" % sys.version_info[:2]
    scripts = [checkout / "ve" / "bin" / script for script in ("pytest", "flake8", "pip", "pip3", pip_version)]
    scripts.append(checkout / ".bootstrap" / "tools" / "bin" / "pip-compile")
    for script in scripts:
        result = subprocess.run([str(script), "--version"], env=make_env(),
                                capture_output=True, text=True, timeout=TIMEOUT)
        assert result.returncode == 0, describe(result)


def modes(root):
    """{relative path: permission bits} of everything under root, symlinks not followed."""
    root = os.path.realpath(root)
    return {os.path.relpath(os.path.join(directory, name), root): os.lstat(os.path.join(directory, name)).st_mode
            & 0o7777 for directory, dirnames, filenames in os.walk(root) for name in dirnames + filenames}


@slow
def test_two_builds_at_the_same_path_are_byte_identical_the_second_by_the_plain_path(checkout):
    """The speed machinery (compile workers beside virtualenv and pip) changes no byte: BOOTSTRAP_FAST=0 takes
    the plain path (the seed unpacked, then everything compiled at the end) and gives the same tree, modes too."""
    built(run_make(checkout, "ve"))
    first_link, first, first_modes = os.readlink(checkout / "ve"), tree_digest(checkout / "ve"), modes(checkout / "ve")
    assert_ok(run_make(checkout, "clean"))
    assert not any(os.path.lexists(checkout / name) for name in ("ve", ".ve-a", ".ve-b"))  # the lock stays
    built(run_make(checkout, "ve", "BOOTSTRAP_FAST=0"))
    second_link, second = os.readlink(checkout / "ve"), tree_digest(checkout / "ve")
    assert first_link == second_link
    differences = diff_digests(first, second)
    assert not differences, "the two builds differ:\n" + "\n".join(differences)
    assert first_modes == modes(checkout / "ve")


@slow
@pytest.mark.parametrize("version", ["3.10", "3.12", "3.13"])
def test_make_ve_with_another_target_python(checkout, version):
    python = python_or_skip(version)
    summary = built(run_make(checkout, "ve", f"PYTHON={python}"))
    assert f"Python {version}." in summary
    result = ve_python(checkout, "import sys; print('%d.%d' % sys.version_info[:2])")
    assert result.returncode == 0, describe(result)
    assert result.stdout.strip() == version
    tools = ve_python(checkout, "import pytest, flake8")
    assert tools.returncode == 0, describe(tools)


# --- hostile surroundings --------------------------------------------------------------------------------------


def hostile_surroundings(root, checkout):
    """Config files at every level, variables, a fake pip and user site: all pointing at SHADOW wheels.

    Returns the environment for `make`. The shadow wheels have the file names of real artifacts in requirements/
    (iniconfig, pluggy) but other content, with a marker module; honouring any of this must show.
    """
    home, shadows, index = root / "home", root / "find-links", root / "index" / "simple"
    for name in ("iniconfig", "pluggy"):
        real = artifact(checkout, name)
        version = real.name.split("-")[1]
        shadow = make_wheel(shadows / real.name, name, version, {
            f"{name}/__init__.py": b"SHADOW = True\n", "shadow_marker.py": b"SHADOW = True\n"})
        assert sha256_file(shadow) != sha256_file(real)
        page = index / name / "index.html"
        page.parent.mkdir(parents=True)
        page.write_text(f'<a href="{shadow.as_uri()}#sha256={sha256_file(shadow)}">{shadow.name}</a>\n')
    constraints = root / "constraints.txt"
    constraints.write_text("pytest<0\niniconfig<0\n")  # unsatisfiable if honoured
    pip_conf = (f"[global]\nfind-links = {shadows}\nindex-url = {index.as_uri()}\n"
                f"extra-index-url = {index.as_uri()}\nno-index = false\nrequire-hashes = false\n"
                f"constraint = {constraints}\n[install]\nuser = true\nno-binary = :all:\n")
    for conf in (home / ".config" / "pip" / "pip.conf", home / ".pip" / "pip.conf",
                 root / "xdg" / "pip" / "pip.conf", root / "pip-config-file.conf"):
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(pip_conf)
    virtualenv_ini = (f"[virtualenv]\nsystem_site_packages = true\nextra_search_dir = {shadows}\n"
                      f"app_data = {root / 'app-data-from-ini'}\nseeder = pip\n")
    for ini in (home / ".config" / "virtualenv" / "virtualenv.ini", root / "virtualenv-config-file.ini"):
        ini.parent.mkdir(parents=True, exist_ok=True)
        ini.write_text(virtualenv_ini)
    # A fake pip and a sitecustomize on PYTHONPATH, a shadow iniconfig in the user site: markers if ever run.
    fake_pip = root / "pythonpath" / "pip"
    fake_pip.mkdir(parents=True)
    marker = f"open({str(root / 'RAN')!r} + __name__, 'w').close()\n"
    (fake_pip / "__init__.py").write_text(marker)
    (fake_pip / "__main__.py").write_text(marker + "raise SystemExit(3)\n")
    (root / "pythonpath" / "sitecustomize.py").write_text(marker)
    for minor in range(10, 16):
        site = root / "userbase" / "lib" / f"python3.{minor}" / "site-packages"
        (site / "iniconfig").mkdir(parents=True)
        (site / "iniconfig" / "__init__.py").write_text("SHADOW = True\n")
        (site / "usercustomize.py").write_text(marker)
    return make_env(
        HOME=str(home), XDG_CONFIG_DIRS=str(root / "xdg"), XDG_CACHE_HOME=str(root / "cache"),
        PIP_CONFIG_FILE=str(root / "pip-config-file.conf"), PIP_FIND_LINKS=str(shadows), PIP_INDEX_URL=index.as_uri(),
        PIP_EXTRA_INDEX_URL=index.as_uri(), PIP_NO_INDEX="0", PIP_REQUIRE_HASHES="0", PIP_CONSTRAINT=str(constraints),
        PIP_USER="1", PIP_TARGET=str(root / "target"), PIP_NO_BINARY=":all:", PIP_NO_CACHE_DIR="0",
        PIP_CACHE_DIR=str(root / "pip-cache"),
        VIRTUALENV_SYSTEM_SITE_PACKAGES="1", VIRTUALENV_EXTRA_SEARCH_DIR=str(shadows),
        VIRTUALENV_OVERRIDE_APP_DATA=str(root / "app-data"),
        VIRTUALENV_CONFIG_FILE=str(root / "virtualenv-config-file.ini"),
        VIRTUALENV_SEEDER="pip", UV_INDEX_URL=index.as_uri(), UV_FIND_LINKS=str(shadows),
        PYTHONPATH=str(root / "pythonpath"), PYTHONHOME=str(root / "no-such-python-home"),
        PYTHONUSERBASE=str(root / "userbase"), PYTHONSTARTUP=str(root / "pythonpath" / "sitecustomize.py"),
    )


def site_packages(checkout):
    found = list((checkout / "ve").glob("lib/python3.*/site-packages"))
    assert len(found) == 1, found
    return found[0]


def wheels_for_this_python(checkout):
    """The artifacts in requirements/ of the lock's pins whose markers hold for the running Python."""
    running = "%d.%d" % sys.version_info[:2]
    pins, _ = lockfile.parse((checkout / "requirements.txt").read_text())
    wanted = set().union(*(pin.hashes for pin in pins if pin.applies_to(running)))
    return [path for path in sorted((checkout / "requirements").glob("*.whl")) if lockfile.sha256(path) in wanted]


@slow
def test_hostile_config_and_variables_change_nothing_installed(checkout, tmp_path):
    import zipfile

    hostile = tmp_path / "hostile"
    env = hostile_surroundings(hostile, checkout)
    before = tree_digest(hostile)
    built(run_make(checkout, "ve", env=env))

    config = (checkout / "ve" / "pyvenv.cfg").read_text()
    assert re.search(r"^include-system-site-packages = false$", config, re.MULTILINE), config
    # Every file of every vendored wheel this Python needs is in the ve, byte for byte (pip rewrites only RECORD).
    site = site_packages(checkout)
    for wheel in wheels_for_this_python(checkout):
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                top = member.split("/", 1)[0]
                if member.endswith("/") or top.endswith(".data") or member.endswith(".dist-info/RECORD"):
                    continue
                installed = site / member
                assert installed.is_file(), f"{member} of {wheel.name} is not installed"
                assert sha256_file(installed) == sha256_file_bytes(archive.read(member)), \
                    f"{member} differs from the one in {wheel.name}"
    assert not (site / "shadow_marker.py").exists()
    imported = ve_python(checkout, "import iniconfig, pluggy; print(hasattr(iniconfig, 'SHADOW'), "
                                   "hasattr(pluggy, 'SHADOW'))")
    assert imported.stdout.split() == ["False", "False"], describe(imported)
    # Nothing was written into the hostile places: no marker, target, user site, cache or app-data.
    assert diff_digests(before, tree_digest(hostile)) == []


def sha256_file_bytes(data):
    import hashlib

    return hashlib.sha256(data).hexdigest()


# --- nothing lost: killed and concurrent builds ---------------------------------------------------------------------


def pip_install_runs_in(pgid):
    """Whether a `pip install` process belongs to process group `pgid`."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.getpgid(int(pid)) == pgid:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                if b"pip" in argv and b"install" in argv:
                    return True
    return False


def signal_mid_pip(checkout, signum, new_slot):
    """Start `make ve FORCE=1` in its own process group, send signum to the group while pip installs into new_slot."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(make_argv("ve", "FORCE=1"), cwd=checkout, env=make_env(), stdin=subprocess.DEVNULL,
                                   stdout=stdout, stderr=stderr, text=True, start_new_session=True,
                                   preexec_fn=default_signals)

        def pip_is_installing():
            stdout.seek(0)  # the seed's own dist-info is unpacked before; any other one is pip installing the lock
            return "==> installing" in stdout.read() and any(
                not path.name.startswith("pip-") for path in new_slot.glob("lib/python3.*/site-packages/*.dist-info"))

        try:
            wait_for(pip_is_installing, process, f"pip started installing into {new_slot.name}")
            os.killpg(process.pid, signal.SIGSTOP)  # hold everything still while we look
            assert pip_install_runs_in(process.pid), "the signal would not have reached pip while it installs"
            os.killpg(process.pid, signum)
            os.killpg(process.pid, signal.SIGCONT)
            process.wait(timeout=TIMEOUT)
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        stdout.seek(0)
        stderr.seek(0)
        return subprocess.CompletedProcess(process.args, process.returncode, stdout.read(), stderr.read())


@slow
def test_kill_9_or_ctrl_c_mid_build_keeps_the_old_ve_and_the_next_runs_recover(checkout):
    built(run_make(checkout, "ve"))
    before = ve_state(checkout)
    new_slot = checkout / ".ve-b"

    killed = signal_mid_pip(checkout, signal.SIGKILL, new_slot)
    assert killed.returncode == -signal.SIGKILL, describe(killed)
    assert ve_state(checkout) == before, "the killed build changed the previous ve"
    assert_ve_works(checkout)
    assert not (new_slot / "bootstrap-stamp.txt").exists()

    # Ctrl-C reaches the whole foreground process group: one clear line, the previous ve kept.
    interrupted = signal_mid_pip(checkout, signal.SIGINT, new_slot)
    assert_one_error(interrupted, "interrupted")
    assert ve_state(checkout) == before, "the interrupted build changed the previous ve"
    assert_ve_works(checkout)

    # Inputs did not change, so the next `make ve` is satisfied by the previous build, and removes what the
    # interrupted builds left (the half-built slot, the scratch) ...
    again = assert_ok(run_make(checkout, "ve"))
    assert "up to date" in again.stdout and "removed what an interrupted run left (.ve-b" in again.stdout, again.stdout
    assert sorted(name for name in os.listdir(checkout) if name.startswith(".ve")) == [".ve-a", ".ve.lock"]
    up_to_date(run_make(checkout, "ve"))
    # ... and the next real build finishes.
    built(run_make(checkout, "ve", "FORCE=1"))
    assert os.readlink(checkout / "ve") == ".ve-b"
    assert_ve_works(checkout)
    assert_pip_check_clean(checkout)
    assert not leftovers(checkout)


@slow
def test_two_concurrent_builds_in_one_checkout(checkout):
    processes = [subprocess.Popen(make_argv("ve"), cwd=checkout, env=make_env(), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    for result in results:
        assert_ok(result)
    builds = sum(SUMMARY_PREFIX in result.stdout for result in results)
    no_ops = sum("up to date" in result.stdout for result in results)
    assert (builds, no_ops) == (1, 1), "\n".join(describe(result) for result in results)
    assert os.readlink(checkout / "ve") == ".ve-a"
    assert not (checkout / ".ve-b").exists()
    assert_ve_works(checkout)
    assert_pip_check_clean(checkout)
    assert not leftovers(checkout)


# --- refusals: one ERROR line, the previous ve untouched ----------------------------------------------------------


@slow
def test_tampered_wheel_is_refused_and_the_previous_ve_kept(built_checkout):
    checkout = built_checkout
    before = ve_state(checkout)
    wheel = artifact(checkout, "pluggy")
    expected = sha256_file(wheel)
    with restored(wheel):
        data = bytearray(wheel.read_bytes())
        data[len(data) // 2] ^= 0xFF
        wheel.write_bytes(bytes(data))
        actual = sha256_file(wheel)
        assert_one_error(run_make(checkout, "ve", "FORCE=1"), f"requirements/{wheel.name}", expected, actual)
    assert ve_state(checkout) == before
    assert_ve_works(checkout)


@slow
def test_tampered_seed_wheel_is_refused_and_the_previous_ve_kept(built_checkout):
    checkout = built_checkout
    before = ve_state(checkout)
    seeds = sorted((checkout / "virtualenv_support").glob("pip-*.whl"))
    assert len(seeds) == 1, seeds
    seed = seeds[0]
    expected = sha256_file(seed)
    with restored(seed):
        with open(seed, "ab") as handle:
            handle.write(b"tampered")
        actual = sha256_file(seed)
        # The seeds are an input of the build, so a plain `make ve` notices the change.
        assert_one_error(run_make(checkout, "ve"), f"virtualenv_support/{seed.name}", expected, actual)
    assert ve_state(checkout) == before
    assert_ve_works(checkout)


@slow
def test_missing_wheel_is_named_by_its_pin(built_checkout):
    checkout = built_checkout
    before = ve_state(checkout)
    wheel = artifact(checkout, "iniconfig")
    version = pinned_version(checkout, "iniconfig")
    with restored(wheel):
        wheel.unlink()
        assert_one_error(run_make(checkout, "ve", "FORCE=1"), f"iniconfig=={version}", "requirements/")
    assert ve_state(checkout) == before


def test_missing_wheel_on_a_fresh_checkout_creates_no_ve(checkout):
    artifact(checkout, "pluggy").unlink()
    version = pinned_version(checkout, "pluggy")
    assert_one_error(run_make(checkout, "ve"), f"pluggy=={version}")
    assert not any(os.path.lexists(checkout / name) for name in ("ve", ".ve-a", ".ve-b"))


@slow
def test_interpreter_outside_the_lock_targets_is_refused(built_checkout):
    checkout = built_checkout
    python = python_or_skip("3.12")
    lock = checkout / "requirements.txt"
    with restored(lock):
        text = lock.read_text()
        targets = lock_targets(checkout)
        lock.write_text(text.replace(f"# targets: {' '.join(targets)}", "# targets: 3.10 3.11 3.13"))
        assert lock_targets(checkout) == ["3.10", "3.11", "3.13"]
        before = ve_state(checkout)
        error = assert_one_error(run_make(checkout, "ve", f"PYTHON={python}"), "3.12", "3.10 3.11 3.13")
        assert "Traceback" not in error
        assert ve_state(checkout) == before
    assert_ve_works(checkout)


@slow
def test_missing_virtualenv_py_is_refused(built_checkout):
    checkout = built_checkout
    before = ve_state(checkout)
    with restored(checkout / "virtualenv.py"):
        (checkout / "virtualenv.py").unlink()
        assert_one_error(run_make(checkout, "ve"), "virtualenv.py", "missing")
    assert ve_state(checkout) == before


@slow
def test_missing_seed_wheel_is_refused(built_checkout):
    checkout = built_checkout
    before = ve_state(checkout)
    seed = next((checkout / "virtualenv_support").glob("pip-*.whl"))
    with restored(seed):
        seed.unlink()
        assert_one_error(run_make(checkout, "ve"), seed.name, "missing")
    assert ve_state(checkout) == before


def replace_pin(lock, name, replacement):
    """Replace the whole entry of `name` (its line, hash continuations and `# via` comments) in the lock text."""
    pattern = re.compile(rf"^{re.escape(name)}==[^\n]*\\\n(?:[ \t]+--hash=[^\n]*\n)+(?:[ \t]+#[^\n]*\n)*",
                         re.MULTILINE)
    text, count = pattern.subn(replacement, lock.read_text())
    assert count == 1, f"{name} not found once in {lock}"
    lock.write_text(text)


@slow
def test_unpinned_lock_line_is_refused(built_checkout):
    checkout = built_checkout
    lock = pinning_lock(checkout, "pytest")
    before = ve_state(checkout)
    version = pinned_version(checkout, "pytest")
    with restored(lock):
        text = lock.read_text()
        assert f"\npytest=={version} \\\n" in text
        lock.write_text(text.replace(f"\npytest=={version} \\\n", "\npytest>=9 \\\n"))
        assert_one_error(run_make(checkout, "ve"), "pytest>=9", "==")
    assert ve_state(checkout) == before


@slow
def test_hash_less_lock_line_is_refused(built_checkout):
    checkout = built_checkout
    lock = pinning_lock(checkout, "pytest")
    version = pinned_version(checkout, "pytest")
    before = ve_state(checkout)
    with restored(lock):
        replace_pin(lock, "pytest", f"pytest=={version}\n")
        assert_one_error(run_make(checkout, "ve"), f"pytest=={version}", "--hash")
    assert ve_state(checkout) == before


@slow
def test_lock_missing_a_dependency_fails_pip_check_and_keeps_the_previous_ve(built_checkout):
    checkout = built_checkout
    lock = pinning_lock(checkout, "iniconfig")
    before = ve_state(checkout)
    with restored(lock):
        replace_pin(lock, "iniconfig", "")
        result = run_make(checkout, "ve")
        assert_one_error(result, "pip check", "requires iniconfig")
    assert ve_state(checkout) == before
    assert_ve_works(checkout)


@slow
def test_artifact_pip_cannot_install_gives_one_error_line(built_checkout):
    """A hash-valid artifact pip refuses (a wheel for another Python): pip's own ERROR lines are not a second one."""
    checkout = built_checkout
    lock = checkout / "requirements.txt"
    wheel = checkout / "requirements" / "zzfixture-1.0-py2-none-any.whl"
    before = ve_state(checkout)
    with restored(lock, wheel):
        make_wheel(wheel, "zzfixture", "1.0", {"zzfixture.py": b"VALUE = 1\n"})
        with open(lock, "a") as handle:
            handle.write(f"zzfixture==1.0 \\\n    --hash=sha256:{sha256_file(wheel)}\n")
        result = run_make(checkout, "ve")
        assert_one_error(result, "pip install")
        assert "zzfixture" in result.stderr, describe(result)
    assert ve_state(checkout) == before


@slow
def test_unwritable_ve_directory_is_refused(built_checkout):
    checkout = built_checkout
    before = ve_state(checkout)
    blocker = checkout / "a-regular-file"
    with restored(blocker):
        blocker.write_text("VE=a-regular-file/ve cannot create a directory below this file\n")
        assert_one_error(run_make(checkout, "ve", "VE=a-regular-file/ve"), "cannot write", "a-regular-file")
    assert ve_state(checkout) == before


@slow
def test_read_only_checkout_is_refused(built_checkout):
    checkout = built_checkout
    before = ve_state(checkout)
    result = run_make_read_only(checkout, "ve", "FORCE=1")
    assert_one_error(result, "cannot write", "Read-only file system")
    assert ve_state(checkout) == before
    assert_ve_works(checkout)
