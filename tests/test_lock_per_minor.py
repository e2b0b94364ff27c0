"""A lock does not depend on the patch release of each target Python that the freezing machine has (issue 28,
item 1): every target is resolved as X.Y.0 (bootstrap_tools/targets.py resolved_as), and `make ve` never advises a
freeze that would write the same lock when a python_full_version marker leaves a requirement unmet.

Two patch releases of one minor version are rarely both installed: a fake interpreter stands for each, this
checkout's tools env (where pip-tools lives; ./ve, which runs the tests, has none) reporting another patch release
(platform.python_version(), where pip's markers read python_full_version). The index (tests/index_helpers.py)
serves `patchy`, which needs `backport` below X.Y.5, as redis 8.0.1 needs async-timeout below 3.11.3. Nothing
here needs the network.
"""

import json
import os
import sys

from pathlib import Path

import pytest

from conftest import REPO
from index_helpers import Index
from bootstrap_build import installed, layout, lockfile
from bootstrap_tools import platforms, targets
from bootstrap_tools.run import hermetic_env

THIS_PYTHON = "%d.%d" % sys.version_info[:2]
BELOW = f'python_full_version < "{THIS_PYTHON}.5"'

FAKE_PYTHON = """#!{python} -I
# The tools env's Python, saying it is {version}: what the launcher runs (`-I -m module`, `-I file`, `-I -c code`).
import platform
import runpy
import sys

platform.python_version = lambda: "{version}"
args = sys.argv[1:]
if args[:1] == ["-I"]:
    args = args[1:]
if args[0] == "-c":
    exec(args[1])
elif args[0] == "-m":
    sys.argv = args[1:]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = args
    runpy.run_path(args[0], run_name="__main__")
"""


def fake_python(directory, version, tools_python):
    path = directory / f"python{version}"
    path.write_text(FAKE_PYTHON.format(python=tools_python, version=version))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    index = Index(tmp_path_factory.mktemp("patch-index"))
    index.add("patchy", "1.0", requires=[f"backport>=1.0; {BELOW}"])
    index.add("backport", "1.0")
    return index


def freeze_with(tmp_path, index, patch, target, monkeypatch, capsys, tools_python):
    """compile_all for `target` as `make freeze` runs it, under a Python saying it is X.Y.`patch`; (lock, output)."""
    root = tmp_path / f"patch-{patch}"
    (root / "staging").mkdir(parents=True)
    (root / "requirements.in").write_text("patchy\n")
    python = fake_python(root, f"{THIS_PYTHON}.{patch}", tools_python)
    monkeypatch.setattr(targets, "tool_python", lambda *args, **kwargs: python)
    body, _ = targets.compile_all(root, [target], root / "staging", hermetic_env(root / "home"), False, index.url,
                                  {}, resolution="newest")
    return body, capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("declared", [False, True], ids=["this-machine", "declared-platform"])
def test_two_patch_releases_of_one_python_freeze_the_same_lock_resolved_as_x_y_0(tmp_path, index, monkeypatch,
                                                                                 capsys, declared, tools_python):
    target = platforms.Pair(platforms.load(REPO, "linux-x86_64"), THIS_PYTHON) if declared else THIS_PYTHON
    old, old_output = freeze_with(tmp_path, index, 1, target, monkeypatch, capsys, tools_python)
    new, new_output = freeze_with(tmp_path, index, 9, target, monkeypatch, capsys, tools_python)
    assert new == old
    # X.Y.0 is below the marker's bound: the backport a host older than X.Y.5 needs is locked for every host.
    assert "\nbackport==1.0 \\\n" in new and "# via patchy" in new, new
    for patch, output in ((1, old_output), (9, new_output)):
        python = tmp_path / f"patch-{patch}" / f"python{THIS_PYTHON}.{patch}"
        assert (f"==> pip-compile for Python {target} ({python}, {THIS_PYTHON}.{patch}, resolved as {THIS_PYTHON}.0)"
                in output.splitlines()), output


# --- make ve: a requirement left out by a python_full_version marker --------------------------------------------


PATCH = sys.version_info[2]


def slot_needing(tmp_path, marker):
    """A slot whose only distribution, alpha 1.0, needs backport under `marker`; backport is not installed."""
    slot = tmp_path / "slot"
    site = Path(layout.site_packages(str(slot)))
    real_site = next(path for path in map(os.path.realpath, sys.path)
                     if path.endswith("site-packages") and os.path.isdir(os.path.join(path, "pip")))
    dist = site / "alpha-1.0.dist-info"
    dist.mkdir(parents=True)
    (site / "pip").symlink_to(os.path.join(real_site, "pip"))  # the seed pip's packaging, as in a new ve
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: alpha\nVersion: 1.0\n"
                                   f"Requires-Dist: backport>=1.0; {marker}\n\n")
    (dist / "RECORD").write_text("")
    (slot / "bin").mkdir()
    (slot / "bin" / "python").symlink_to(sys.executable)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"install": [{"metadata": {"name": "alpha", "version": "1.0"}}]}))
    return str(slot), str(report)


@pytest.mark.parametrize("marker,fix", [
    # Holds on X.Y.0: a freeze now locks backport, so the lock came from an older freeze, on a later patch release.
    (f'python_full_version < "{THIS_PYTHON}.{PATCH + 1}"',
     f"The lock was resolved for another patch release of Python {THIS_PYTHON} than this "
     f"{THIS_PYTHON}.{PATCH}, by an older `make freeze`: run `make freeze` with this convention version, which "
     f"resolves for the whole minor version (as {THIS_PYTHON}.0"),
    # Holds only from a later patch release: every freeze leaves it out, so only requirements.in can lock it.
    pytest.param(f'python_full_version >= "{THIS_PYTHON}.{PATCH}"',
                 f"Its marker holds from a later patch release than {THIS_PYTHON}.0, as which `make freeze` "
                 "resolves the whole minor version, so every freeze leaves it out: add `backport>=1.0` to "
                 "requirements.in",
                 marks=pytest.mark.skipif(PATCH == 0, reason=f"this Python is {THIS_PYTHON}.0")),
], ids=["lock-from-an-older-freeze", "from-a-later-patch-release"])
def test_a_requirement_unmet_by_a_patch_release_marker_never_advises_a_freeze_writing_the_same_lock(
        tmp_path, capsys, marker, fix):
    slot, report = slot_needing(tmp_path, marker)
    pins = [lockfile.Pin("alpha", "1.0", {"0" * 64})]
    output, _ = installed.start_dependency_check(slot, dict(os.environ), pins).communicate()
    with pytest.raises(SystemExit):
        installed.check_env(slot, pins, report, output)
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, errors
    assert f"alpha 1.0 requires backport>=1.0; {marker}, which is not installed. {fix}" in errors[0], errors
    assert "restore it" not in errors[0] and "\t" not in errors[0], errors
