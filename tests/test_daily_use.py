"""The ten minutes after the first two commands, as the README's "Daily use" section tells them: why a rebuild
happens, `.python-version`, switching back to a build the other slot holds, a ve changed by hand, a forgotten
`make freeze`, a dotted VE such as `.venv`, upgrading one package, and the messages on the way.
"""

import os
import subprocess
import sys

import pytest

from conftest import (
    TIMEOUT, assert_ok, assert_one_error, built, copy_checkout, describe, make_env, python_or_skip, run_make,
    up_to_date, ve_python,
)
from bootstrap_tools import lockfile
from conftest import REPO
from index_helpers import Index

slow = pytest.mark.slow
THIS_PYTHON = "%d.%d" % sys.version_info[:2]


def building_line(result):
    lines = [line for line in result.stdout.splitlines() if line.startswith(("==> building", "==> switched"))]
    assert len(lines) == 1, describe(result)
    return lines[0]


@pytest.fixture(scope="module")
def daily(tmp_path_factory):
    """One checkout lived in by the scenarios below, in order of a normal day."""
    return copy_checkout(tmp_path_factory.mktemp("daily") / "checkout")


@slow
def test_every_rebuild_says_why(daily):
    assert building_line(run_make(daily, "ve")) == "==> building ve: there is no ve yet"
    with open(daily / "requirements.txt", "a") as handle:
        handle.write("# a comment\n")
    assert building_line(run_make(daily, "ve")) == "==> building ve: requirements.txt changed"
    assert building_line(run_make(daily, "ve", "FORCE=1")) == "==> building ve: FORCE=1"


@slow
def test_another_python_and_back_is_a_switch_and_python_version_is_followed(daily):
    other = python_or_skip("3.12" if THIS_PYTHON != "3.12" else "3.13")
    version = "3.12" if THIS_PYTHON != "3.12" else "3.13"
    assert_ok(run_make(daily, "ve"))
    result = run_make(daily, "ve", f"PYTHON={other}")
    assert f"interpreter {THIS_PYTHON}." in building_line(result) and f"-> {version}." in building_line(result)
    back = assert_ok(run_make(daily, "ve"))
    assert building_line(back).startswith("==> switched ve to "), describe(back)
    assert "nothing rebuilt" in back.stdout
    assert "==> creating" not in back.stdout

    # .python-version (pyenv's and uv's file) is what a plain `make ve` follows; PYTHON= still wins.
    (daily / ".python-version").write_text(f"{version}\n")
    try:
        followed = assert_ok(run_make(daily, "ve"))
        assert "switched ve to" in followed.stdout, describe(followed)
        assert ve_python(daily, "import sys; print('%d.%d' % sys.version_info[:2])").stdout.strip() == version
        up_to_date(run_make(daily, "ve"))
        explicit = assert_ok(run_make(daily, "ve", "PYTHON=" + sys.executable))
        assert "switched ve to" in explicit.stdout, describe(explicit)
    finally:
        (daily / ".python-version").unlink()
    up_to_date(run_make(daily, "ve"))


@slow
def test_a_ve_changed_by_hand_is_noticed_verified_and_rebuilt(daily):
    assert_ok(run_make(daily, "ve"))
    assert_ok(run_make(daily, "verify"))
    pip = subprocess.run([str(daily / "ve" / "bin" / "python"), "-m", "pip", "uninstall", "-y", "-q", "pygments"],
                         env=make_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert pip.returncode == 0, describe(pip)
    site = next((daily / "ve").glob("lib/python3.*/site-packages"))
    (site / "pluggy" / "__init__.py").write_text("# edited by hand\n")
    verified = run_make(daily, "verify")
    assert_one_error(verified, "differs from its build in 2 place(s)")
    assert "-pygments-" in verified.stdout and "pluggy/__init__.py was changed" in verified.stdout, describe(verified)
    rebuilt = run_make(daily, "ve")
    assert "packages were installed or removed inside it by hand (-pygments-" in building_line(rebuilt)
    assert_ok(run_make(daily, "verify"))
    assert ve_python(daily, "import pygments").returncode == 0


@slow
def test_a_forgotten_freeze_is_pointed_out_without_a_rebuild(daily):
    built(run_make(daily, "ve", "FORCE=1"))
    requirements_in = daily / "requirements.in"
    text = requirements_in.read_text()
    requirements_in.write_text(text + "requests\n")
    try:
        result = run_make(daily, "ve")
        up_to_date(result)
        assert "WARNING: requirements.in changed since requirements.txt was made" in result.stderr, describe(result)
        check = run_make(daily, "check")
        assert_one_error(check, "problem(s)")
        assert "`requests` but the lock pins nothing for any target" in check.stdout, describe(check)
    finally:
        requirements_in.write_text(text)
    assert "WARNING" not in run_make(daily, "ve").stderr


@slow
def test_a_dotted_ve_name_works_and_stays_out_of_git_and_flake8(tmp_path):
    checkout = copy_checkout(tmp_path / "dotted")
    commit = ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "x"]
    for args in (["init", "-q"], ["add", "-A"], commit):
        subprocess.run(["git", "-C", str(checkout), *args], check=True, capture_output=True)
    built(run_make(checkout, "ve", "VE=.venv"))
    assert os.readlink(checkout / ".venv") == ".venv-a"
    assert not any(name.startswith("..") for name in os.listdir(checkout))
    status = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain"], capture_output=True, text=True)
    assert status.stdout == "", status.stdout
    # The convention's `make test` runs flake8 over the tree: the slots must not be read.
    tested = run_make(checkout, "test", "VE=.venv", "PYTEST_ARGS=--co -q tests/test_bootstrap_unit.py")
    assert_ok(tested)


@slow
def test_upgrading_one_package_moves_only_it(tmp_path):
    index = Index(tmp_path / "index")
    for wheel in sorted((REPO / "requirements").glob("*.whl")):
        index.add_file(wheel)
    index.add("alpha", "1.0")
    index.add("beta", "1.0")
    checkout = copy_checkout(tmp_path / "checkout")
    requirements_in = checkout / "requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "alpha\nbeta\n")
    freeze = ("freeze", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS_PYTHON}")
    frozen = assert_ok(run_make(checkout, *freeze))
    assert f"against {index.url}" in frozen.stdout, describe(frozen)
    index.add("alpha", "2.0")
    index.add("beta", "2.0")
    seeds = {path.name: path.read_bytes() for path in (checkout / "virtualenv_support").iterdir()}
    virtualenv_py = (checkout / "virtualenv.py").read_bytes()
    upgraded = assert_ok(run_make(checkout, "freeze-upgrade", "PACKAGES=alpha", f"INDEX_URL={index.url}",
                                  f"TARGET_PYTHONS={THIS_PYTHON}"))
    assert "upgrading alpha and what they need" in upgraded.stdout, describe(upgraded)
    pins = {pin.name: pin.version for pin in lockfile.parse((checkout / "requirements.txt").read_text())[0]}
    assert (pins["alpha"], pins["beta"]) == ("2.0", "1.0")
    assert {path.name: path.read_bytes() for path in (checkout / "virtualenv_support").iterdir()} == seeds
    assert (checkout / "virtualenv.py").read_bytes() == virtualenv_py


def test_freeze_names_an_unreachable_index_and_a_missing_target_python_first(checkout):
    built(run_make(checkout, "ve"))
    missing = run_make(checkout, "freeze", "TARGET_PYTHONS=3.11 3.99")
    assert_one_error(missing, "no CPython 3.99 found here", "TARGET_PYTHONS")
    assert "pip-compile for Python" not in missing.stdout, describe(missing)
    unreachable = run_make(checkout, "freeze", "INDEX_URL=http://127.0.0.1:9/simple/",
                           f"TARGET_PYTHONS={THIS_PYTHON}")
    assert_one_error(unreachable, "the index (http://127.0.0.1:9/simple/) cannot be reached")
