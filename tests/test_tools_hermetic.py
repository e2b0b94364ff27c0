"""What the maintainer tools run: only pinned, verified code, and every interpreter with -I.

- a throwaway environment for another target (bootstrap_tools/targets.py tool_python) runs the tools' pip only after
  checking it against bootstrap_tools/wheels/SHA256SUMS and the tools lock, and installs pip-tools and its
  dependencies from bootstrap_tools/wheels/ by the tools lock's hashes, never from an index;
- bootstrap_tools/virtualenv_py.py runs each base interpreter's own pip with -I, so nothing in the working directory
  (a `pip/` package, say) is imported instead.
"""

import shutil
import sys
import zipfile

import pytest

from conftest import REPO, python_or_skip, sha256_file
from index_helpers import build_wheel
from bootstrap_tools import lockfile, targets, virtualenv_py
from bootstrap_tools.run import ToolError, hermetic_env, run

THIS = "%d.%d" % sys.version_info[:2]
OTHER = "3.10" if THIS != "3.10" else "3.12"
slow = pytest.mark.slow


def lock_pins(root):
    pins, problems = lockfile.parse((root / "bootstrap_tools" / "tools.txt").read_text())
    assert problems == []
    return pins


def planting_pip(directory, version, marker):
    """A `pip` wheel whose __main__ writes `marker`: proof that it was run."""
    wheel = build_wheel(directory, "pip", version, content="planted")
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("pip/__main__.py", f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    return wheel


def test_a_throwaway_env_never_runs_a_seed_the_lock_does_not_allow(checkout, tmp_path):
    base = python_or_skip(OTHER)
    assert base
    marker = tmp_path / "seed-ran"
    seeds = checkout / "bootstrap_tools" / "wheels"
    seed = next(seeds.glob("pip-*.whl"))
    fake = planting_pip(tmp_path / "made", seed.name.split("-")[1], marker)
    seed.unlink()
    shutil.copyfile(fake, seeds / fake.name)
    (seeds / "SHA256SUMS").write_text(f"{sha256_file(seeds / fake.name)}  {fake.name}\n")  # consistent, still wrong

    with pytest.raises(ToolError) as raised:
        targets.tool_python(checkout, OTHER, tmp_path / "staging", hermetic_env(tmp_path / "home"))
    assert "refusing to run the seed pip" in str(raised.value) and "tools.txt" in str(raised.value)
    assert not marker.exists()


def test_a_throwaway_env_never_runs_a_seed_that_sha256sums_does_not_record(checkout, tmp_path):
    python_or_skip(OTHER)
    seed = next((checkout / "bootstrap_tools" / "wheels").glob("pip-*.whl"))
    (checkout / "bootstrap_tools" / "wheels" / "SHA256SUMS").write_text(f"{'0' * 64}  {seed.name}\n")
    with pytest.raises(ToolError, match="does not match bootstrap_tools/wheels/SHA256SUMS"):
        targets.tool_python(checkout, OTHER, tmp_path / "staging", hermetic_env(tmp_path / "home"))


def test_pip_tools_for_another_target_is_the_locks_closure_for_that_target():
    pins = lock_pins(REPO)
    chosen = targets.tool_pins(REPO, "3.10", pins)
    names = {pin.name for pin in chosen}
    assert {"pip-tools", "pip", "build", "click", "packaging", "pyproject-hooks", "setuptools", "wheel",
            "tomli"} <= names, names
    assert not names & {"cyclonedx-python-lib", "sortedcontainers"}, names  # only what pip-tools needs
    assert all(pin in pins and pin.applies_to("3.10") for pin in chosen)
    assert "tomli" not in {pin.name for pin in targets.tool_pins(REPO, "3.12", pins)}


def test_pip_tools_missing_from_the_lock_for_a_target_is_an_error_not_an_index_download(tmp_path):
    pins = [pin for pin in lock_pins(REPO) if pin.name != "click"]
    with pytest.raises(ToolError, match="tools.txt pins no click for Python 3.12.*never from the index"):
        targets.tool_pins(REPO, "3.12", pins)


@slow
def test_a_throwaway_env_gets_pip_tools_offline_from_the_tools_wheels(checkout, tmp_path):
    python_or_skip(OTHER)
    env = hermetic_env(tmp_path / "home", {"PIP_INDEX_URL": "http://127.0.0.1:9/never"})  # scrubbed anyway
    python = targets.tool_python(checkout, OTHER, tmp_path / "staging", env)
    assert "pip-compile" in run([python, "-I", "-m", "piptools", "compile", "--help"], env=env)


def test_virtualenv_py_runs_base_interpreters_pip_isolated_from_the_working_directory(tmp_path, monkeypatch):
    base = python_or_skip(OTHER)
    marker = tmp_path / "cwd-pip-ran"
    planted = tmp_path / "cwd" / "pip"
    planted.mkdir(parents=True)
    (planted / "__init__.py").write_text("")
    (planted / "__main__.py").write_text(f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n")
    empty = tmp_path / "empty-index"
    empty.mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    (tmp_path / "home").mkdir()
    with pytest.raises(ToolError):
        virtualenv_py.resolve(base, empty.as_uri() + "/", tmp_path / "home")
    assert not marker.exists(), "the base interpreter imported ./pip from the working directory"
