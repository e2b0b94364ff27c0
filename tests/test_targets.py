"""One lock for every target Python (issue 5), as a maintainer and a user meet it, against an index in tmp_path.

The index serves this project's own wheels from requirements/ (so the copy's dev set resolves again for every
target) and wheels made here, whose links carry `data-requires-python` like PyPI's:

- newlib 2.0 needs Python >=3.11; newlib 1.0 supports 3.10 and needs `oldshim` there (and only there);
- fastlib 1.0 has binary wheels only, one for cp310 and one cp311-abi3 (3.11 and later): one per target;
- dualwheel 1.0 has a pure wheel and a cp311-abi3 one: the pure one is preferred and enough for every target.

One checkout (the project's requirements.in plus newlib, fastlib and dualwheel) is frozen once per module for
3.10-3.13 with RESOLUTION=newest (about a minute), each target taking its own newest release as every freeze did
before RESOLUTION=fewest: that its lock is still the one these scenarios describe proves that `newest` reproduces
it. The scenarios share it. A second checkout, its dev set dropped, lives through a short history under the
default RESOLUTION=fewest (section 6). Nothing here needs the network.
"""

import html
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import (
    REPO, _unshare_works, assert_one_error, assert_ok, assert_pip_check_clean, built, copy_checkout, describe,
    run_make, sha256_file, ve_python, ve_state,
)
from index_helpers import Index, build_wheel
from bootstrap_tools import check, lockfile, report, targets, unify
from bootstrap_tools.pythons import find_python, marker_for
from bootstrap_tools.run import ToolError
from bootstrap_tools.wheels import wheel_metadata

slow = pytest.mark.slow

TARGETS = ("3.10", "3.11", "3.12", "3.13")
# This machine's platform tag (linux_x86_64 here): a binary fixture wheel must install here to be useful.
PLATFORM = sysconfig.get_platform().replace("-", "_").replace(".", "_")
CP310 = f"cp310-cp310-{PLATFORM}"
ABI3 = f"cp311-abi3-{PLATFORM}"
OLD = 'python_version < "3.11"'
NEW = 'python_version >= "3.11"'


# --- fixture wheels and the index ----------------------------------------------------------------------------


def fixture_wheel(directory, name, version, tag="py3-none-any", requires_python=">=3.8", requires=()):
    """A tiny wheel of `name` with any tag and Requires-Python; its module says VERSION and BUILD (which wheel)."""
    return build_wheel(directory, name, version, requires=requires, tag=tag, requires_python=requires_python)


class RequiresPythonIndex(Index):
    """tests/index_helpers.Index whose links also carry `data-requires-python` (PEP 503), as PyPI's do."""

    def write_pages(self):
        super().write_pages()
        for page in self.simple.glob("*/index.html"):
            page.write_text(re.sub(r'<a (href="[^"]*")>([^<]+)</a>', self._with_requires_python, page.read_text()))

    def _with_requires_python(self, match):
        requires_python = wheel_metadata(self.files / html.unescape(match.group(2))).get("Requires-Python")
        attribute = f' data-requires-python="{html.escape(requires_python)}"' if requires_python else ""
        return f"<a {match.group(1)}{attribute}>{match.group(2)}</a>"


def make_index(root):
    """The project's wheels plus the fixture packages; returns (index, {label: path of each fixture wheel})."""
    index = RequiresPythonIndex(root / "index")
    for wheel in sorted((REPO / "requirements").glob("*.whl")):
        index.add_file(wheel)
    made = root / "made"
    wheels = {
        "newlib 1.0": fixture_wheel(made, "newlib", "1.0", requires=[f"oldshim ; {OLD}"]),
        "newlib 2.0": fixture_wheel(made, "newlib", "2.0", requires_python=">=3.11"),
        "oldshim 1.0": fixture_wheel(made, "oldshim", "1.0"),
        "fastlib cp310": fixture_wheel(made, "fastlib", "1.0", tag=CP310, requires_python=">=3.10"),
        "fastlib abi3": fixture_wheel(made, "fastlib", "1.0", tag=ABI3, requires_python=">=3.11"),
        "dualwheel pure": fixture_wheel(made, "dualwheel", "1.0"),
        "dualwheel abi3": fixture_wheel(made, "dualwheel", "1.0", tag=ABI3, requires_python=">=3.11"),
    }
    for wheel in wheels.values():
        index.add_file(wheel)
    return index, wheels


# --- the frozen checkout shared by the scenarios -------------------------------------------------------------


class Frozen:
    def __init__(self, path, index, wheels, pythons, result):
        self.path, self.index, self.wheels, self.pythons, self.result = path, index, wheels, pythons, result

    def read(self, name):
        return (self.path / name).read_text(encoding="utf-8")

    def pins(self):
        pins, problems = lockfile.parse(self.read("requirements.txt"))
        assert problems == [], problems
        return pins

    def artifacts(self):
        return sorted(path.name for path in (self.path / "requirements").iterdir())


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """A checkout with newlib, fastlib and dualwheel added to requirements.in, frozen for 3.10-3.13 with
    RESOLUTION=newest (each target its own newest: newlib 1.0 for 3.10, 2.0 for the rest)."""
    root = tmp_path_factory.mktemp("targets")
    pythons = {version: find_python(version, root / "home") for version in TARGETS}
    missing = [version for version, path in pythons.items() if path is None]
    if missing:
        pytest.skip(f"no CPython {' '.join(missing)} here (python3.X on PATH or under `pyenv root`): the lock "
                    "for 3.10-3.13 needs each of them")
    index, wheels = make_index(root)
    path = copy_checkout(root / "checkout")
    requirements_in = path / "requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "newlib\nfastlib\ndualwheel\n")
    built(run_make(path, "ve"))
    result = assert_ok(run_make(path, "freeze", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={' '.join(TARGETS)}",
                                "RESOLUTION=newest"))
    return Frozen(path, index, wheels, pythons, result)


def copy_tree(source, dest):
    """The frozen tree without its ve, ve slots and build/: what a commit of it would hold."""
    def ignore(directory, names):
        if directory != str(source):
            return []
        return [name for name in names if name in ("ve", "build", ".bootstrap") or name.startswith(("ve-", ".ve"))]
    shutil.copytree(source, dest, symlinks=True, ignore=ignore)
    return Path(dest)


# --- 1. make freeze for four targets -------------------------------------------------------------------------


@slow
def test_freeze_for_four_targets_writes_one_lock_whose_markers_pick_each_targets_versions(frozen):
    text = frozen.read("requirements.txt")
    assert lockfile.targets(text) == list(TARGETS)
    assert "# targets: 3.10 3.11 3.12 3.13\n" in text.splitlines(keepends=True)[:3]
    pins = {(pin.name, pin.version): pin for pin in frozen.pins()}

    # Releases that differ by target carry markers that split the targets between them.
    assert pins["newlib", "1.0"].marker == OLD
    assert pins["newlib", "2.0"].marker == NEW
    assert pins["oldshim", "1.0"].marker == OLD
    assert f'newlib==1.0 ; {OLD} \\\n' in text and f'newlib==2.0 ; {NEW} \\\n' in text
    assert f'oldshim==1.0 ; {OLD} \\\n' in text
    # What every target shares stays plain: a binary-only package (one hash per wheel) and the project's pins (its
    # dev set's here: this repository's runtime set pins nothing).
    assert pins["fastlib", "1.0"].marker == "" and pins["dualwheel", "1.0"].marker == ""
    assert "fastlib==1.0 \\\n" in text
    dev_text = frozen.read("requirements-dev.txt")
    assert lockfile.targets(dev_text) == list(TARGETS)
    assert re.search(r"^pytest==[^ ;]+ \\\n", dev_text, re.M), dev_text

    # Every line has the hashes of exactly the files the index serves for that release.
    wheels = frozen.wheels
    assert pins["newlib", "1.0"].hashes == {sha256_file(wheels["newlib 1.0"])}
    assert pins["newlib", "2.0"].hashes == {sha256_file(wheels["newlib 2.0"])}
    assert pins["oldshim", "1.0"].hashes == {sha256_file(wheels["oldshim 1.0"])}
    assert pins["fastlib", "1.0"].hashes == {sha256_file(wheels["fastlib cp310"]), sha256_file(wheels["fastlib abi3"])}
    assert pins["dualwheel", "1.0"].hashes == {sha256_file(wheels["dualwheel pure"]),
                                               sha256_file(wheels["dualwheel abi3"])}
    # pip-compile's annotations are kept under their lines.
    assert re.search(r"^oldshim==1\.0 .*?\n(    --hash=sha256:\w+\n)    # via newlib\n", text, re.M | re.S), text
    # Exactly one version per target: no target is given two newlibs, or none.
    for target in TARGETS:
        names = [pin.name for pin in frozen.pins() if pin.applies_to(target)]
        assert len(names) == len(set(names)), (target, names)
        assert "newlib" in names and ("oldshim" in names) == (target == "3.10"), (target, names)


@slow
def test_freeze_fetches_one_fitting_artifact_per_target_preferring_pure_wheels(frozen):
    artifacts = frozen.artifacts()
    for label in ("newlib 1.0", "newlib 2.0", "oldshim 1.0", "fastlib cp310", "fastlib abi3", "dualwheel pure"):
        path = frozen.wheels[label]
        assert path.name in artifacts, (label, artifacts)
        assert sha256_file(frozen.path / "requirements" / path.name) == sha256_file(path)
    # The pure wheel fits every target, so dualwheel's binary wheel is not stored.
    assert frozen.wheels["dualwheel abi3"].name not in artifacts, artifacts
    for target in ("3.10", "3.11"):  # one `pip download` per target, fastlib's binary wheel in each
        assert re.search(rf"^==> downloaded (.*, )?fastlib==1\.0\b.* for Python {target}: ",
                         frozen.result.stdout, re.M), describe(frozen.result)
    # requirements.pins, the lock without hashes, keeps the markers.
    pins_text = frozen.read("requirements.pins").splitlines()
    for line in (f"newlib==1.0 ; {OLD}", f"newlib==2.0 ; {NEW}", f"oldshim==1.0 ; {OLD}", "fastlib==1.0"):
        assert line in pins_text, pins_text


@slow
def test_freeze_report_shows_what_differs_per_target(frozen):
    report_text = frozen.read(".bootstrap/freeze-report.txt")
    assert report_text in frozen.result.stdout, describe(frozen.result)
    lines = report_text.splitlines()
    for expected in ("  added:     newlib 1.0 (Python 3.10)", "  added:     newlib 2.0 (Python 3.11 3.12 3.13)",
                     "  added:     oldshim 1.0 (Python 3.10)", "  added:     fastlib 1.0",
                     "  added:     dualwheel 1.0"):
        assert expected in lines, f"{expected!r} not in\n{report_text}"
    # RESOLUTION=newest leaves the split as it is, and the report names it, without trying to unify it.
    assert ("  newlib 1.0 (Python 3.10), 2.0 (Python 3.11 3.12 3.13): RESOLUTION=newest: each target takes its "
            "own newest release") in lines, report_text
    assert "one version for every target" not in frozen.result.stdout, describe(frozen.result)
    # The project's own pins were kept for every target: only the new packages changed.
    assert not [line for line in lines if line.startswith(("  upgraded:", "  downgraded:", "  removed:"))], report_text
    for target in TARGETS:
        assert f"==> pip-compile for Python {target}" in frozen.result.stdout, describe(frozen.result)


@slow
def test_make_check_passes_for_every_target(frozen):
    result = assert_ok(run_make(frozen.path, "check"))
    assert "==> check:" in result.stdout, describe(result)


# --- 2. make ve under each target ----------------------------------------------------------------------------

PROBE = """
import importlib.util, json, sys
import dualwheel, fastlib, newlib
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "newlib": newlib.VERSION, "fastlib": fastlib.BUILD,
                  "dualwheel": dualwheel.BUILD, "oldshim": importlib.util.find_spec("oldshim") is not None}))
"""


@slow
@pytest.mark.parametrize("version", TARGETS)
def test_make_ve_under_each_target_offline_installs_that_targets_versions(frozen, version):
    ve = f"ve-{version}"
    offline = ("unshare", "-n") if _unshare_works("-n") else ()
    summary = built(run_make(frozen.path, "ve", f"PYTHON={frozen.pythons[version]}", f"VE={ve}", prefix=offline))
    assert f"Python {version}." in summary, summary
    result = ve_python(frozen.path, PROBE, ve)
    assert result.returncode == 0, describe(result)
    assert json.loads(result.stdout) == {
        "python": version,
        "newlib": "1.0" if version == "3.10" else "2.0",
        "fastlib": CP310 if version == "3.10" else ABI3,
        "dualwheel": "py3-none-any",
        "oldshim": version == "3.10",
    }
    assert_pip_check_clean(frozen.path, ve)


# --- 3. make check names the target an artifact is missing for -----------------------------------------------


@pytest.fixture
def frozen_copy(frozen, tmp_path):
    """A copy of the frozen tree (no ve, no build/) that a test may break."""
    root = copy_tree(frozen.path, tmp_path / "checkout")
    assert check.find_problems(root) == []
    return root


@slow
def test_check_names_the_one_target_a_binary_wheel_is_missing_for(frozen, frozen_copy):
    (frozen_copy / "requirements" / frozen.wheels["fastlib cp310"].name).unlink()
    problems = check.find_problems(frozen_copy)
    assert len(problems) == 1, problems
    assert "fastlib==1.0" in problems[0] and "Python 3.10" in problems[0] and "make freeze" in problems[0], problems
    assert not any(other in problems[0] for other in ("3.11", "3.12", "3.13")), problems

    result = subprocess.run([sys.executable, "-E", "-s", "-m", "bootstrap_tools.check", str(frozen_copy)], cwd=REPO,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert_one_error(result, "1 problem(s)")
    assert f"  - {problems[0]}" in result.stdout.splitlines(), describe(result)


@slow
@pytest.mark.parametrize("label", ["oldshim 1.0", "newlib 1.0"])
def test_check_names_target_and_pin_of_a_missing_artifact_needed_by_one_target_only(frozen, frozen_copy, label):
    (frozen_copy / "requirements" / frozen.wheels[label].name).unlink()
    problems = check.find_problems(frozen_copy)
    assert len(problems) == 1, problems
    pin = label.replace(" ", "==")
    assert pin in problems[0] and "make freeze" in problems[0], problems
    assert "3.10" in problems[0], problems


@slow
def test_check_accepts_requirements_in_lines_that_differ_per_target(frozen_copy):
    # The lock already holds newlib 1.0 for 3.10 and 2.0 for the rest: exactly what these two lines ask for.
    requirements_in = frozen_copy / "requirements.in"
    requirements_in.write_text(requirements_in.read_text().replace(
        "newlib\n", f"newlib<2 ; {OLD}\nnewlib>=2 ; {NEW}\n"))
    assert check.find_problems(frozen_copy) == []


# --- 4. an interpreter outside TARGET_PYTHONS ----------------------------------------------------------------


@slow
def test_make_ve_with_a_python_outside_the_targets_is_refused_and_the_ve_left_alone(frozen):
    python = find_python("3.9", frozen.path.parent / "home")
    if python is None:
        pytest.skip("no CPython 3.9 here (python3.9 on PATH or under `pyenv root`)")
    before, entries = ve_state(frozen.path), sorted(os.listdir(frozen.path))
    result = run_make(frozen.path, "ve", f"PYTHON={python}")
    # 3.9 cannot even parse bootstrap.py: bootstrap.mk's launcher says so before anything runs.
    assert_one_error(result, "Python 3.9", "needs CPython 3.10 or newer", "`# targets:` line")
    assert "==>" not in result.stdout, describe(result)  # refused before building anything
    assert ve_state(frozen.path) == before
    assert [name for name in os.listdir(frozen.path) if name not in entries and name != ".ve.lock"] == []


# --- 5. units: merging per-target locks, and the markers -----------------------------------------------------


def compiled(*entries):
    """pip-compile output (no header): (requirement, [hash letters], [annotation lines]) per entry."""
    out = []
    for requirement, hashes, annotations in entries:
        out.append(f"{requirement} \\\n" + " \\\n".join(f"    --hash=sha256:{h * 64}" for h in hashes) + "\n")
        out.extend(f"    {line}\n" for line in annotations)
    return "".join(out)


def locked(requirement, hashes, *annotations):
    return (f"{requirement} \\\n" + " \\\n".join(f"    --hash=sha256:{h * 64}" for h in sorted(hashes)) + "\n"
            + "".join(f"    {line}\n" for line in annotations))


def test_merge_keeps_shared_lines_plain_and_marks_the_rest():
    results = {
        "3.10": compiled(("alpha==1.0", "a", ["# via -r requirements.in"]),
                         ("newlib==1.0", "1", ["# via -r requirements.in"]),
                         ("oldshim==1.0", "0", ["# via newlib"])),
        "3.11": compiled(("alpha==1.0", "ab", ["# via -r requirements.in"]),
                         ("newlib==2.0", "2", ["# via -r requirements.in"])),
        "3.12": compiled(("newlib==2.0", "2", ["# via -r requirements.in"]),
                         ("alpha==1.0", "b", ["# via -r requirements.in"])),
        "3.13": compiled(("alpha==1.0", "a", ["# via -r requirements.in"]),
                         ("newlib==2.0", "2", ["# via -r requirements.in"])),
    }
    body = targets.merge(results, list(TARGETS))
    assert body == targets.MERGE_NOTE + (
        locked("alpha==1.0", "ab", "# via -r requirements.in")
        + locked(f"newlib==1.0 ; {OLD}", "1", "# via -r requirements.in")
        + locked(f"newlib==2.0 ; {NEW}", "2", "# via -r requirements.in")
        + locked(f"oldshim==1.0 ; {OLD}", "0", "# via newlib")
    )
    # The merged body parses, and each target gets exactly what pip-compile chose for it.
    pins, problems = lockfile.parse(body)
    assert problems == []
    for target, text in results.items():
        chosen = {str(pin) for pin in lockfile.parse(text)[0]}
        assert {str(pin) for pin in pins if pin.applies_to(target)} == chosen, target


def test_merge_combines_a_requirements_own_marker_with_the_python_one_and_orders_versions_numerically():
    results = {
        "3.10": compiled(('colorama==0.4.6 ; sys_platform == "win32"', "c", ["# via click"]),
                         ("beta==1.9", "9", [])),
        "3.11": compiled(("beta==1.10", "e", [])),
        "3.12": compiled(('colorama==0.4.6 ; sys_platform == "win32"', "c", ["# via click"]),
                         ("beta==1.9", "9", [])),
    }
    body = targets.merge(results, ["3.10", "3.11", "3.12"])
    either = '(python_version == "3.10" or python_version == "3.12")'
    assert body == targets.MERGE_NOTE + (
        locked(f"beta==1.9 ; {either}", "9")
        + locked('beta==1.10 ; python_version >= "3.11" and python_version < "3.12"', "e")
        + locked(f'colorama==0.4.6 ; sys_platform == "win32" and {either}', "c", "# via click")
    )


def test_merge_refuses_an_unusable_line_naming_the_target():
    results = {"3.10": compiled(("alpha==1.0", "a", [])), "3.11": "alpha>=1.0\n"}
    with pytest.raises(ToolError, match=r"pip-compile for Python 3\.11 wrote an unusable line `alpha>=1\.0`"):
        targets.merge(results, ["3.10", "3.11"])


def test_blocks_joins_continuations_and_keeps_each_requirements_annotations():
    text = (
        "#\n# a header comment\n#\n"
        "alpha==1.0 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64 + "\n"
        "    # via\n    #   -r requirements.in\n    #   beta\n"
        "\n"
        "# The following packages are considered to be unsafe in a requirements file:\n"
        'pip==26.3 ; python_version >= "3.10" \\\n    --hash=sha256:' + "c" * 64 + "\n"
        "    # via pip-tools\n"
        "zeta==2.0 --hash=sha256:" + "d" * 64 + "\n"
    )
    assert list(targets.blocks(text)) == [
        (f"alpha==1.0 --hash=sha256:{'a' * 64} --hash=sha256:{'b' * 64}",
         ["    # via", "    #   -r requirements.in", "    #   beta"]),
        (f'pip==26.3 ; python_version >= "3.10" --hash=sha256:{"c" * 64}', ["    # via pip-tools"]),
        (f"zeta==2.0 --hash=sha256:{'d' * 64}", []),
    ]
    assert list(targets.blocks("# only comments\n\n")) == []


@pytest.mark.parametrize(("used", "expected"), [
    (TARGETS, None),
    (("3.13", "3.11", "3.10", "3.12"), None),
    (("3.10",), 'python_version < "3.11"'),
    (("3.11", "3.12", "3.13"), 'python_version >= "3.11"'),
    (("3.13",), 'python_version >= "3.13"'),
    (("3.11", "3.12"), 'python_version >= "3.11" and python_version < "3.13"'),
    (("3.12", "3.10"), 'python_version == "3.10" or python_version == "3.12"'),
])
def test_marker_for_is_the_simplest_marker_selecting_exactly_those_targets(used, expected):
    assert marker_for(list(used), list(TARGETS)) == expected


def test_marker_for_compares_versions_not_strings():
    assert marker_for(["3.10"], ["3.9", "3.10"]) == 'python_version >= "3.10"'
    assert marker_for(["3.9"], ["3.10", "3.9"]) == 'python_version < "3.10"'


def test_report_names_the_targets_a_change_holds_for():
    before = "# targets: 3.10 3.11\n" + locked("alpha==1.0", "a")
    after = ("# targets: 3.10 3.11\n" + locked(f"alpha==1.0 ; {OLD}", "a") + locked(f"alpha==2.0 ; {NEW}", "b")
             + locked(f"tomli==2.5.0 ; {OLD}", "f"))
    assert report.pin_changes(before, after) == [("upgraded", "alpha 1.0 -> 2.0 (Python 3.11)"),
                                                 ("added", "tomli 2.5.0 (Python 3.10)")]


# --- 6. RESOLUTION=fewest: one version of each package for every target, unless none fits them all -----------
#
# One checkout lives through a short history against its own index (about four minutes in all):
#   A. locked for 3.10 and 3.11 while binlib 1.0 is the only binlib (binary wheels for cp310, cp311, cp312);
#   B. binlib 2.0 is published (one cp310-abi3 wheel: 3.10 and later) and 3.12 and 3.13 become targets;
#   C. the same freeze again; D. freeze-upgrade PACKAGES=pylib; E. pylib 2.1 (for 3.10 and later) is published,
#      and freeze-upgrade PACKAGES=pylib again.
# pylib 2.0 needs Python >=3.12 (1.0 supports 3.10 and up); splitlib 1.0 supports only Python <3.12 and 2.0 only
# >=3.12, so no splitlib fits every target.


class Story:
    def __init__(self, path, steps):
        self.path, self.steps = path, steps

    def pins(self, step):
        pins, problems = lockfile.parse(self.steps[step]["lock"])
        assert problems == [], problems
        return {(pin.name, pin.version): pin.marker for pin in pins}

    def report(self, step):
        return self.steps[step]["report"].splitlines()


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    root = tmp_path_factory.mktemp("fewest")
    home = root / "home"
    if [version for version in TARGETS if find_python(version, home) is None]:
        pytest.skip("needs CPython 3.10, 3.11, 3.12 and 3.13 here (python3.X on PATH or under `pyenv root`)")
    index = RequiresPythonIndex(root / "index")
    for wheel in sorted((REPO / "requirements").glob("*.whl")):
        index.add_file(wheel)
    made = root / "made"
    for wheel in (fixture_wheel(made, "pylib", "1.0", requires_python=">=3.10"),
                  fixture_wheel(made, "pylib", "2.0", requires_python=">=3.12"),
                  fixture_wheel(made, "splitlib", "1.0", requires_python=">=3.8,<3.12"),
                  fixture_wheel(made, "splitlib", "2.0", requires_python=">=3.12"),
                  *[fixture_wheel(made, "binlib", "1.0", tag=f"cp3{minor}-cp3{minor}-{PLATFORM}",
                                  requires_python=">=3.10") for minor in (10, 11, 12)]):
        index.add_file(wheel)
    path = copy_checkout(root / "checkout")
    requirements_in = path / "requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "pylib\nbinlib\nsplitlib\n")
    for name in ("requirements-dev.in", "requirements-dev.txt"):  # the story is the runtime lock's: half the runs
        (path / name).unlink()
    steps = {}

    def freeze(step, target="freeze", *args, targets=TARGETS):
        result = assert_ok(run_make(path, target, f"INDEX_URL={index.url}", f"TARGET_PYTHONS={' '.join(targets)}",
                                    *args))
        steps[step] = {"result": result, "lock": (path / "requirements.txt").read_text(),
                       "report": (path / ".bootstrap" / "freeze-report.txt").read_text(),
                       "artifacts": {p.name: sha256_file(p) for p in (path / "requirements").iterdir()}}

    built(run_make(path, "ve"))
    freeze("A", targets=("3.10", "3.11"))
    index.add_file(fixture_wheel(made, "binlib", "2.0", tag=f"cp310-abi3-{PLATFORM}", requires_python=">=3.10"))
    freeze("B")
    steps["B"]["check"] = run_make(path, "check")
    freeze("C")
    freeze("D", "freeze-upgrade", "PACKAGES=pylib")
    index.add_file(fixture_wheel(made, "pylib", "2.1", requires_python=">=3.10"))
    freeze("E", "freeze-upgrade", "PACKAGES=pylib")
    return Story(path, steps)


@slow
def test_fewest_locks_one_version_of_each_package_wherever_one_fits_every_target(story):
    assert story.pins("A")[("binlib", "1.0")] == "" and story.pins("A")[("pylib", "1.0")] == ""
    pins = story.pins("B")
    # pylib: 2.0 needs 3.12, so 3.12 and 3.13 would take it on their own; 1.0 fits all four and is taken.
    assert [key for key in pins if key[0] == "pylib"] == [("pylib", "1.0")] and pins["pylib", "1.0"] == ""
    # binlib: 3.10 and 3.11 kept their 1.0, which has no wheel for 3.13; 2.0, the only one for all, is taken.
    assert [key for key in pins if key[0] == "binlib"] == [("binlib", "2.0")] and pins["binlib", "2.0"] == ""
    # splitlib: no version fits every target, so each keeps the one it can install.
    assert pins["splitlib", "1.0"] == OLD.replace("3.11", "3.12") and pins["splitlib", "2.0"] == NEW.replace(
        "3.11", "3.12")
    stdout = story.steps["B"]["result"].stdout
    # The oldest target's versions come first; binlib 1.0 and both splitlibs are ruled out by asking pip for that
    # version alone under each other target, so one round of pip-compile with the rest is enough.
    rounds = [line for line in stdout.splitlines() if "one version for every target" in line]
    assert rounds == ["==> one version for every target: trying binlib==2.0, pylib==1.0"], stdout
    assert_ok(run_make(story.path, "check"))


@slow
def test_fewest_reports_every_remaining_split_with_versions_targets_and_why(story):
    lines = story.report("B")
    heading = "More than one version across targets (no single version fits them all):"
    assert heading in lines, lines
    listed = lines[lines.index(heading) + 1:lines.index("Artifacts:")]
    assert listed == ["  splitlib 1.0 (Python 3.10 3.11), 2.0 (Python 3.12 3.13): splitlib 1.0 requires Python "
                      ">=3.8,<3.12, not 3.12; splitlib 2.0 requires Python >=3.12, not 3.10"], lines
    assert "  upgraded:  binlib 1.0 -> 2.0" in lines, lines
    # make check passes, and warns about the split of a package requirements.in names.
    check_result = story.steps["B"]["check"]
    assert check_result.returncode == 0, describe(check_result)
    warnings = [line for line in check_result.stdout.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1 and warnings[0].startswith(
        "WARNING: splitlib (named in requirements.in) has more than one version across targets: 1.0 (Python "
        "3.10 3.11), 2.0 (Python 3.12 3.13)"), describe(check_result)


@slow
def test_fewest_freeze_twice_changes_nothing_and_still_names_the_split(story):
    assert story.steps["C"]["lock"] == story.steps["B"]["lock"]
    assert story.steps["C"]["artifacts"] == story.steps["B"]["artifacts"]
    lines = story.report("C")
    assert lines[:2] == ["Pins (requirements.txt):", "  no change"], lines
    # Nothing changed since B (the lock's inputs digest): no pair is resolved again, and the split is still named.
    assert "resolution skipped" in story.steps["C"]["result"].stdout
    assert [line.split(":")[0] for line in lines if line.startswith("  splitlib ")] == [
        line.split(":")[0] for line in story.report("B") if line.startswith("  splitlib ")], lines
    assert "one version for every target" not in story.steps["C"]["result"].stdout


@slow
def test_fewest_freeze_upgrade_moves_a_package_only_to_a_version_that_fits_every_target(story):
    # pylib 2.0 fits only 3.12 and 3.13: the upgrade keeps the one pylib every target can run.
    assert story.steps["D"]["lock"] == story.steps["C"]["lock"], story.steps["D"]["report"]
    # pylib 2.1 fits all four: it moves, for every target at once.
    pins = story.pins("E")
    assert [key for key in pins if key[0] == "pylib"] == [("pylib", "2.1")] and pins["pylib", "2.1"] == ""
    assert "  upgraded:  pylib 1.0 -> 2.1" in story.report("E"), story.report("E")
    assert_ok(run_make(story.path, "check"))


# --- 7. units: the fewest strategy without pip -----------------------------------------------------------------


def fake_compile(installable):
    """attempt() for unify: each target takes a shared version it can install, else its own newest.

    installable: {target: {name: [versions it can install, oldest first]}}.
    """
    calls = []

    def attempt(target, proposal, text):
        calls.append((target, dict(proposal)))
        chosen = dict(unify.versions(text))
        for name, version in proposal.items():
            if name in installable[target]:
                chosen[name] = version if version in installable[target][name] else installable[target][name][-1]
        return compiled(*[(f"{name}=={version}", "a", []) for name, version in sorted(chosen.items())])
    attempt.calls = calls
    return attempt


def newest_of(installable):
    return {target: compiled(*[(f"{name}=={versions[-1]}", "a", []) for name, versions in sorted(wanted.items())])
            for target, wanted in installable.items()}


def test_unify_takes_the_oldest_targets_version_when_it_fits_all_and_leaves_the_rest_alone():
    installable = {"3.10": {"django": ["5.2"], "tomli": ["2.5"]},
                   "3.11": {"django": ["5.2"]},
                   "3.12": {"django": ["5.2", "6.1"]},
                   "3.13": {"django": ["5.2", "6.1"]}}
    attempt = fake_compile(installable)
    results, splits = unify.unify(newest_of(installable), list(TARGETS), attempt, None, step=lambda text: None)
    assert {target: unify.versions(text) for target, text in results.items()} == {
        "3.10": {"django": "5.2", "tomli": "2.5"}, "3.11": {"django": "5.2"}, "3.12": {"django": "5.2"},
        "3.13": {"django": "5.2"}}
    assert splits == {}
    # Targets that already hold the shared version are not compiled again.
    assert attempt.calls == [("3.12", {"django": "5.2"}), ("3.13", {"django": "5.2"})]


def test_unify_moves_to_the_next_candidate_and_keeps_a_split_with_reasons_when_none_fits_all():
    installable = {"3.10": {"binlib": ["1.0", "2.0"], "splitlib": ["1.0"]},
                   "3.11": {"binlib": ["1.0", "2.0"], "splitlib": ["1.0"]},
                   "3.12": {"binlib": ["1.0", "2.0"], "splitlib": ["2.0"]},
                   "3.13": {"binlib": ["2.0"], "splitlib": ["2.0"]}}
    first = newest_of(installable)
    first["3.10"] = first["3.10"].replace("binlib==2.0", "binlib==1.0")  # kept from an earlier lock
    diagnosed = []

    def diagnose(target, name, version, cause):
        diagnosed.append((target, name, version))
        return f"{name} {version} does not fit {target}"

    results, splits = unify.unify(first, list(TARGETS), fake_compile(installable), diagnose,
                                  step=lambda text: None)
    chosen = {target: unify.versions(text) for target, text in results.items()}
    assert {versions["binlib"] for versions in chosen.values()} == {"2.0"}
    assert [chosen[target]["splitlib"] for target in TARGETS] == ["1.0", "1.0", "2.0", "2.0"]
    assert splits == {"splitlib": ["splitlib 1.0 does not fit 3.12", "splitlib 2.0 does not fit 3.10"]}
    # Each ruled-out version is diagnosed once, on the first target that could not take it.
    assert sorted(diagnosed) == [("3.10", "splitlib", "2.0"), ("3.12", "splitlib", "1.0"),
                                 ("3.13", "binlib", "1.0")]


def test_unify_rules_out_what_precheck_excludes_without_a_round_of_pip_compile():
    installable = {"3.10": {"splitlib": ["1.0"]}, "3.11": {"splitlib": ["2.0"]}}
    attempt = fake_compile(installable)

    def precheck(target, name, version):
        return None if version in installable[target][name] else f"{name} {version} requires another Python"

    results, splits = unify.unify(newest_of(installable), ["3.10", "3.11"], attempt, None, step=lambda text: None,
                                  precheck=precheck)
    assert attempt.calls == [] and results == newest_of(installable)
    assert splits == {"splitlib": ["splitlib 1.0 requires another Python", "splitlib 2.0 requires another Python"]}


def test_unify_asks_the_prechecks_of_a_round_in_one_batch_per_target_side_by_side_with_the_same_result():
    """Issue 29: the first candidates' prechecks of a round, one batch per target (one pip process each), the
    batches and the second resolutions run by `each` (side by side in a freeze): the same lock and reasons."""
    installable = {"3.10": {"binlib": ["1.0", "2.0"], "splitlib": ["1.0"], "oldlib": ["1.0"]},
                   "3.11": {"binlib": ["1.0", "2.0"], "splitlib": ["1.0"], "oldlib": ["1.0", "3.0"]},
                   "3.12": {"binlib": ["1.0", "2.0"], "splitlib": ["2.0"], "oldlib": ["3.0"]},
                   "3.13": {"binlib": ["2.0"], "splitlib": ["2.0"], "oldlib": ["3.0"]}}

    def precheck(target, name, version):
        return None if version in installable[target][name] else f"{name} {version} does not install on {target}"

    def diagnose(target, name, version, cause):
        return f"{name} {version} does not fit {target}"

    def run(**extra):
        return unify.unify(newest_of(installable), list(TARGETS), fake_compile(installable), diagnose,
                           step=lambda text: None, precheck=precheck, **extra)

    batches = []

    def precheck_many(target, asks):
        batches.append((target, sorted(asks)))
        return {(name, version): precheck(target, name, version) for name, version in asks}

    def reversed_each(items, work):  # any order of running gives results in the items' order
        done = {item: work(item) for item in reversed(items)}
        return [(item, done[item]) for item in items]

    assert run(precheck_many=precheck_many, each=reversed_each) == run()
    # Round one: each target that chose otherwise is asked about the oldest target's versions, in one batch.
    assert sorted(batches[:3]) == [("3.11", [("oldlib", "1.0")]), ("3.12", [("oldlib", "1.0"), ("splitlib", "1.0")]),
                                   ("3.13", [("oldlib", "1.0"), ("splitlib", "1.0")])], batches
    asked = [(target, ask) for target, asks in batches for ask in asks]
    assert len(asked) == len(set(asked)), "nothing asked twice"


def test_unify_finds_the_culprit_one_at_a_time_when_pip_compile_fails_outright():
    installable = {"3.10": {"alpha": ["1.0"], "beta": ["1.0"]},
                   "3.11": {"alpha": ["1.0", "2.0"], "beta": ["1.0", "2.0"]}}
    compile_ = fake_compile(installable)

    def attempt(target, proposal, text):
        if target == "3.11" and proposal.get("beta") == "1.0":
            raise unify.Unresolvable("Cannot install beta because these package versions have conflicting "
                                     "dependencies")
        return compile_(target, proposal, text)

    results, splits = unify.unify(newest_of(installable), ["3.10", "3.11"], attempt,
                                  lambda target, name, version, cause: f"{name} {version}: {cause}",
                                  step=lambda text: None)
    assert [unify.versions(results[target]) for target in ("3.10", "3.11")] == [
        {"alpha": "1.0", "beta": "1.0"}, {"alpha": "1.0", "beta": "2.0"}]
    assert splits == {"beta": ["beta 1.0: Cannot install beta because these package versions have conflicting "
                               "dependencies", "beta 2.0: None"]}


@pytest.mark.parametrize(("output", "expected"), [
    ("ERROR: Ignored the following versions that require a different python version: 0.9 Requires-Python >=3.7; "
     "2.0 Requires-Python >=3.12\nERROR: Could not find a version that satisfies the requirement x==2.0 (from "
     "versions: 1.0)\n", "x 2.0 requires Python >=3.12, not 3.10"),
    ("ERROR: Could not find a version that satisfies the requirement x==2.0 (from versions: 1.0)\n",
     "x 2.0 has no wheel for Python 3.10"),
    ("", None),
])
def test_reason_from_download_reads_pips_answer(output, expected):
    assert unify.reason_from_download(output, "x", "2.0", "3.10") == expected


def test_split_lines_and_checks_warning_name_versions_targets_and_reasons(tmp_path):
    lock = ("# targets: 3.10 3.11 3.12\n" + locked(f"django==5.2 ; {OLD}", "a")
            + locked(f"django==6.1 ; {NEW}", "b") + locked(f"asgiref==3.8 ; {OLD}", "c")
            + locked(f"asgiref==3.9 ; {NEW}", "d") + locked("sqlparse==0.5", "e"))
    assert unify.split_lines(lock, {"django": ["django 6.1 requires Python >=3.11, not 3.10"]}) == [
        "asgiref 3.8 (Python 3.10), 3.9 (Python 3.11 3.12): no single version was tried",
        "django 5.2 (Python 3.10), 6.1 (Python 3.11 3.12): django 6.1 requires Python >=3.11, not 3.10"]
    assert unify.split_lines(lock)[0].endswith(": " + unify.NEWEST_REASON)
    (tmp_path / "requirements.txt").write_text(lock)
    (tmp_path / "requirements.in").write_text("-c constraints.txt\nDjango>=5\nsqlparse\n")
    assert unify.direct_split_warnings(tmp_path) == [
        "django (named in requirements.in) has more than one version across targets: 5.2 (Python 3.10), 6.1 "
        "(Python 3.11 3.12); the freeze report says why no single version fits them all (RESOLUTION=newest never "
        "tries)"]
