"""`make adopt DEST=...` as a maintainer of an existing project meets it, against a local index in tmp_path.

Three fixture projects (each a git work tree): a Flask-style app with a pinned requirements.txt, its own Makefile
with `test` and `clean`, and a `tools/` folder of its own; a library with only a pyproject.toml and a dependency
group; a bare project with no Makefile. Each is adopted once per module; a fresh clone of it must then build its ve
offline and pass `make check`, and its own targets must run unchanged. Nothing here needs the network.
"""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    REPO, TIMEOUT, assert_one_error, assert_ok, built, describe, diff_digests, make_env, restored, run_make,
    tracked_files, tree_digest, unshare_or_skip,
)
from index_helpers import Index
from bootstrap_tools import adopt as adopt_module
from bootstrap_tools import lockfile

slow = pytest.mark.slow
THIS_PYTHON = "%d.%d" % sys.version_info[:2]
TOOLS = "bootstrap_tools"


def git(directory, *args):
    return subprocess.run(["git", "-C", str(directory), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout


def make_project(path, files):
    path.mkdir(parents=True)
    for name, text in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "the project before adoption")
    return path


FLASK_MAKEFILE = """\
.PHONY: test clean run serve deps
test:
\t@echo "own test ran"
clean:
\t@echo "own clean ran"
run:
\t@echo "own run ran"
serve:
\tpython app.py
deps:
\tpip install -r requirements.txt
"""

PROJECTS = {
    "app": {
        "requirements.txt": "# the app's pins\nalpha==1.0\nbeta==1.0\n-e .\n",
        "Makefile": FLASK_MAKEFILE,
        "tools/deploy.sh": "echo deploying\n",
        "app.py": "print('app')\n",
    },
    "lib": {
        "pyproject.toml": ('[project]\nname = "lib"\nversion = "0.1"\ndependencies = ["alpha"]\n\n'
                           '[dependency-groups]\ndev = ["gamma"]\n'),
        # A src layout, never installed into the ve: the convention's make test must import it all the same.
        "src/lib/__init__.py": "VALUE = 1\n",
        "spec/test_lib.py": "import lib\n\n\ndef test_lib_imports_from_src():\n    assert lib.VALUE == 1\n",
    },
    "bare": {
        "README.txt": "a project with nothing but this file\n",
    },
    # pip-tools needs click>=8: with the convention's tools in the project's own resolution, this could not adopt.
    "clicky": {
        "requirements.in": "click==7.1.2\n",
        "Makefile": ".PHONY: test\ntest:\n\t@echo own test ran\n",
    },
}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    """This repository's wheels (pytest, flake8 and theirs) plus alpha 1.0 and 2.0, beta, gamma, click 7.1.2."""
    index = Index(tmp_path_factory.mktemp("adopt-index"))
    for wheel in sorted((REPO / "requirements").glob("*.whl")):
        index.add_file(wheel)
    index.add("alpha", "1.0")
    index.add("alpha", "2.0")
    index.add("beta", "1.0")
    index.add("gamma", "1.0", requires=["alpha"])  # lib's dev group meets its runtime pin: the dev lock holds it
    index.add("click", "7.1.2")
    return index


def adopt(dest, index, *args, env=None):
    return run_make(REPO, "adopt", f"DEST={dest}", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS_PYTHON}", *args,
                    env=env)


@pytest.fixture(scope="module")
def adopted(tmp_path_factory, index):
    """{name: (project path, adopt result)}: each fixture project adopted once and committed."""
    root = tmp_path_factory.mktemp("adopted")
    projects = {}
    for name, files in PROJECTS.items():
        path = make_project(root / name, files)
        extra = ["ADOPT_ARGS=--group dev"] if name == "lib" else []
        result = adopt(path, index, *extra)
        assert_ok(result)
        git(path, "add", "-A")
        git(path, "commit", "-q", "-m", "adopt")
        projects[name] = path, result
    return projects


def older_version(relative):
    """The bytes of `relative` as the convention shipped it a few commits ago (this repository's own history)."""
    commits = subprocess.run(["git", "-C", str(REPO), "log", "--format=%H", "--", relative], capture_output=True,
                             text=True).stdout.split()
    for commit in commits[1:]:
        data = subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{relative}"], capture_output=True).stdout
        if data and data != (REPO / relative).read_bytes():
            return data
    pytest.skip(f"this clone holds no earlier version of {relative} (a shallow clone?)")


def fresh_clone(path, tmp_path):
    clone = tmp_path / f"clone-of-{path.name}"
    subprocess.run(["git", "clone", "-q", str(path), str(clone)], check=True)
    return clone


@slow
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_a_clone_of_an_adopted_project_bootstraps_offline_and_passes_check(adopted, tmp_path, name):
    unshare_or_skip("-n")
    path, result = adopted[name]
    assert "Next steps:" in result.stdout and "git add" in result.stdout, describe(result)
    clone = fresh_clone(path, tmp_path)
    built(run_make(clone, "ve", prefix=["unshare", "-n"]))
    # The settings given to adopt stay with the project: its later freezes and checks use them.
    assert f"TARGET_PYTHONS := {THIS_PYTHON}\n" in (clone / "Makefile").read_text()
    checked = subprocess.run(["unshare", "-n", "make", "--no-print-directory", "check"], cwd=clone, env=make_env(),
                             capture_output=True, text=True, timeout=TIMEOUT)
    assert_ok(checked)
    assert (clone / TOOLS / "freeze.py").is_file()
    for absent in ("tests", "bench", "docs"):
        assert not (clone / absent).exists(), f"adopt copied this repository's {absent}/"
    pins = {pin.name: pin.version for pin in lockfile.parse((clone / "requirements.txt").read_text())[0]}
    dev_lock = clone / "requirements-dev.txt"
    dev = {pin.name: pin.version for pin in lockfile.parse(dev_lock.read_text())[0]} if dev_lock.exists() else {}
    # The convention's tools have their own lock and env: none of them is in the project's resolution or its ve.
    assert not {"pip-tools", "click", "build", "cyclonedx-python-lib"} & (set(pins) | set(dev)) or name == "clicky"
    if name == "app":
        assert pins["alpha"] == "1.0", "the app's exact pin moved on the first freeze"
        assert not dev, "the app runs its own tests: no pytest for the convention's make test"
    if name == "lib":
        assert pins == {"alpha": "2.0"}, pins
        assert "gamma" in dev and "pytest" in dev and dev["alpha"] == "2.0", dev
        assert "gamma" not in (clone / "requirements.in").read_text()
    if name == "clicky":
        assert pins == {"click": "7.1.2"} and not dev, (pins, dev)
    installed = subprocess.run([str(clone / "ve" / "bin" / "python"), "-c", "import importlib.metadata as m; "
                                "print(sorted(d.metadata['Name'] for d in m.distributions()))"],
                               env=make_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert "pip-tools" not in installed.stdout and "cyclonedx" not in installed.stdout, describe(installed)
    tools = subprocess.run([str(clone / ".bootstrap" / "tools" / "bin" / "python"), "-c", "import piptools, click; "
                            "print(click.__version__)"], env=make_env(), capture_output=True, text=True,
                           timeout=TIMEOUT)
    assert tools.returncode == 0 and not tools.stdout.startswith("7."), describe(tools)
    # Day one, offline in the fresh clone: the convention's targets, and the project's own make test (the
    # convention's where the project has none).
    for target in ("sbom", "verify") + (("test",) if name in ("app", "lib") else ()):
        result = assert_ok(run_make(clone, target, prefix=["unshare", "-n"]))
        assert "ERROR" not in result.stdout + result.stderr, describe(result)
    documents = sorted((clone / ".bootstrap" / "sbom").glob("*.cdx.json"))
    # A dev SBOM where there is a dev set: lib's group, and bare's pytest and flake8 for the convention's make test.
    assert documents and bool([path for path in documents if "-dev" in path.name]) == bool(dev), documents
    assert bool(dev) == (name in ("bare", "lib")), dev


@slow
def test_the_projects_own_targets_and_files_are_kept(adopted):
    path, result = adopted["app"]
    for target in ("test", "clean", "run"):
        own = assert_ok(run_make(path, target))
        assert f"own {target} ran" in own.stdout, describe(own)
        assert "warning" not in own.stderr.lower(), describe(own)
    assert (path / "tools" / "deploy.sh").read_text() == "echo deploying\n"
    assert_ok(run_make(path, "bootstrap-clean"))
    built(run_make(path, "ve"))
    requirements_in = (path / "requirements.in").read_text()
    assert "alpha\n" in requirements_in and "beta\n" in requirements_in and "-e" not in requirements_in
    assert "left out of requirements.in: `-e .`" in result.stdout, describe(result)
    gitignore = (path / ".gitignore").read_text().splitlines()
    assert "/ve" in gitignore and "/.ve-a/" in gitignore


@slow
def test_adopting_again_changes_only_the_conventions_files(adopted):
    path, _ = adopted["bare"]
    before = tree_digest(path / ".git")
    result = assert_ok(adopt(path, Index(path.parent / "no-index")))
    assert "No file changed" in result.stdout, describe(result)
    assert "version" in result.stdout
    (path / "bootstrap.mk").write_bytes(older_version("bootstrap.mk"))
    (path / TOOLS / "check.py").write_bytes(older_version(f"{TOOLS}/check.py"))
    git(path, "commit", "-q", "-am", "an older convention, as it was shipped")
    result = assert_ok(adopt(path, Index(path.parent / "no-index")))
    assert "bootstrap.mk version" in result.stdout and "->" in result.stdout, describe(result)
    assert "kept" not in result.stdout, describe(result)
    assert "~ bootstrap.mk" in result.stdout and f"{TOOLS}/" in result.stdout, describe(result)
    changed = git(path, "status", "--porcelain").split()
    assert set(changed) - {"M"} == {"bootstrap.mk", f"{TOOLS}/check.py"}, changed
    assert before != {}


@slow
def test_an_adopted_project_upgrades_its_own_pins(adopted, index, tmp_path):
    path, _ = adopted["app"]
    clone = fresh_clone(path, tmp_path)
    built(run_make(clone, "ve"))
    requirements_in = clone / "requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "gamma\n")
    assert_ok(run_make(clone, "freeze", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS_PYTHON}"))
    pins = {pin.name: pin.version for pin in lockfile.parse((clone / "requirements.txt").read_text())[0]}
    assert pins["gamma"] == "1.0" and pins["alpha"] == "1.0", "freeze keeps pins"
    assert_ok(run_make(clone, "check"))


def test_a_dirty_tree_or_a_non_git_directory_is_refused(tmp_path, index):
    dirty = make_project(tmp_path / "dirty", {"a.txt": "a\n"})
    (dirty / "a.txt").write_text("changed\n")
    assert_one_error(adopt(dirty, index), "uncommitted changes", "--force")
    plain = tmp_path / "plain"
    plain.mkdir()
    assert_one_error(adopt(plain, index), "not the top of a git work tree")
    assert sorted(path.name for path in dirty.iterdir()) == [".git", "a.txt"]


def test_the_projects_own_files_where_the_convention_goes_are_never_overwritten(tmp_path, index):
    project = make_project(tmp_path / "taken", {"bootstrap.py": "# the project's own bootstrap\n",
                                                "requirements/base.txt": "alpha\n"})
    before = tree_digest(project)
    assert_one_error(adopt(project, index), "bootstrap.py", "requirements/ (base.txt)", "Nothing was changed")
    assert diff_digests(before, tree_digest(project)) == []


@slow
def test_conflicting_pins_fail_the_adoption_and_leave_the_project_as_it_was(tmp_path, index):
    index.add("delta", "1.0", requires=["alpha>=2"])
    project = make_project(tmp_path / "conflict", {"requirements.txt": "alpha==1.0\ndelta==1.0\n",
                                                   "Makefile": "all:\n\t@echo own\n"})
    before = tree_digest(project)
    result = adopt(project, index)
    assert_one_error(result, "first `make freeze`", "put back")
    assert "alpha" in result.stderr, describe(result)
    assert diff_digests(before, tree_digest(project)) == []
    assert git(project, "status", "--porcelain", "--ignored") == ""


# --- issue 30: adopt never writes through a link, never overwrites or deletes what is the project's ------------------


@pytest.mark.parametrize("case", ["requirements-link", "wheels-only", "makefile-link", "gitignore-link",
                                  "own-build-area", "own-pylock", "own-provenance", "own-pins", "own-ve"])
def test_links_and_the_projects_own_files_under_the_conventions_names_are_collisions(tmp_path, index, case):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "foreign-1.0-py3-none-any.whl").write_bytes(b"foreign")
    (outside / "Makefile.common").write_text("all:\n\t@echo shared\n")
    files = {"app.py": "print('app')\n", "requirements.txt": "alpha==1.0\n"}
    files.update({
        "wheels-only": {"requirements/alpha-1.0-py3-none-any.whl": "mine"},
        "own-build-area": {".bootstrap/setup.sh": "echo setting up\n"},
        "own-pylock": {"pylock.toml": "lock-version = '1.0'\n"},
        "own-provenance": {"requirements-provenance.json": "{}\n"},
        "own-pins": {"requirements.pins": "alpha==1.0\n"},
        "own-ve": {"ve/pyvenv.cfg": "home = /usr/bin\n"},
    }.get(case, {}))
    project = make_project(tmp_path / "project", files)
    link = {"requirements-link": ("requirements", "../outside"),
            "makefile-link": ("Makefile", "../outside/Makefile.common"),
            "gitignore-link": (".gitignore", "../outside/Makefile.common")}.get(case)
    if link:
        (project / link[0]).symlink_to(link[1])
        git(project, "add", "-A")
        git(project, "commit", "-q", "-m", "a link")
    before, outside_before = tree_digest(project), tree_digest(outside)
    expected = {"requirements-link": "requirements (a symlink)", "wheels-only": "requirements/ (1 wheel(s))",
                "makefile-link": "Makefile (a symlink", "gitignore-link": ".gitignore (a symlink",
                "own-build-area": ".bootstrap/", "own-pylock": "pylock.toml", "own-provenance":
                "requirements-provenance.json", "own-pins": "requirements.pins", "own-ve": "ve/"}[case]
    assert_one_error(adopt(project, index), expected, "Nothing was changed")
    assert diff_digests(before, tree_digest(project)) == []
    assert diff_digests(outside_before, tree_digest(outside)) == []


@slow
def test_an_upgrade_keeps_edited_files_the_projects_own_and_the_state_its_freeze_upgrade_moved(adopted):
    path, _ = adopted["lib"]
    old_mk = older_version("bootstrap.mk")
    (path / "bootstrap.mk").write_bytes(old_mk)
    (path / "bootstrap.py").write_text((REPO / "bootstrap.py").read_text() + "# a local fix\n")
    (path / TOOLS / "mine.py").write_text("# the project's own tool\n")
    state = {"virtualenv.py": b"# moved forward by the project's freeze-upgrade\n",
             "virtualenv_support/SHA256SUMS": b"0" * 64 + b"  pip-99.0-py3-none-any.whl\n"}
    for relative, data in state.items():
        (path / relative).write_bytes((path / relative).read_bytes() + data)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "an older convention, a local fix, a tool, a newer seed")
    result = assert_ok(adopt(path, Index(path.parent / "no-index")))
    assert (path / "bootstrap.mk").read_bytes() == (REPO / "bootstrap.mk").read_bytes(), describe(result)
    assert (path / "bootstrap.py").read_text().endswith("# a local fix\n")
    assert "kept bootstrap.py: edited by hand" in result.stdout, describe(result)
    assert (path / TOOLS / "mine.py").exists()
    for relative, data in state.items():
        assert (path / relative).read_bytes().endswith(data), relative
    forced = assert_ok(adopt(path, Index(path.parent / "no-index"), "FORCE=1"))
    assert (path / "bootstrap.py").read_bytes() == (REPO / "bootstrap.py").read_bytes(), describe(forced)
    assert (path / "bootstrap.py.edited").read_text().endswith("# a local fix\n")
    assert (path / TOOLS / "mine.py").exists()
    for relative, data in state.items():
        assert (path / relative).read_bytes().endswith(data), relative
    (path / "bootstrap.py.edited").unlink()
    git(path, "reset", "-q", "--hard", "HEAD~1")  # the module's other scenarios see the adopted project again


def layout_before(change, path):
    """The commit before the one that `change`s (A: added, D: deleted) `path` in this repository's history."""
    commits = subprocess.run(["git", "-C", str(REPO), "log", "--format=%H", f"--diff-filter={change}", "--", path],
                             capture_output=True, text=True).stdout.split()
    if not commits:
        pytest.skip(f"this clone's history does not hold the commit that changed {path} (a shallow clone?)")
    return commits[-1] + "^"


def convention_at(commit):
    """{relative path: bytes} of the convention's code at `commit` (the state files, which a project's
    freeze-upgrade moves, left out)."""
    names = subprocess.run(["git", "-C", str(REPO), "ls-tree", "-r", "--name-only", commit, "--", "bootstrap.mk",
                            "bootstrap.py", "bootstrap_build", TOOLS], capture_output=True, text=True,
                           check=True).stdout.split()
    return {name: subprocess.run(["git", "-C", str(REPO), "show", f"{commit}:{name}"], capture_output=True,
                                 check=True).stdout
            for name in names if name not in (f"{TOOLS}/virtualenv.txt", f"{TOOLS}/virtualenv.in")}


@slow
@pytest.mark.parametrize("layout", ["version 4: one bootstrap.py", "version 5: bootstrap_build/core.py"])
def test_a_project_adopted_at_an_older_layout_upgrades_and_builds_offline(adopted, tmp_path, layout):
    unshare_or_skip("-n")
    commit = (layout_before("A", "bootstrap_build/__init__.py") if layout.startswith("version 4")
              else layout_before("D", "bootstrap_build/core.py"))
    old = convention_at(commit)
    project = fresh_clone(adopted["bare"][0], tmp_path)
    for folder in ("bootstrap_build", TOOLS):
        for path in (project / folder).rglob("*.py") if (project / folder).exists() else ():
            path.unlink()
    for relative, data in old.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_bytes(data)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", f"the convention as adopted at {layout}")
    result = assert_ok(adopt(project, Index(tmp_path / "no-index")))
    assert "kept" not in result.stdout, describe(result)
    ours = [name for name in tracked_files() if name.split("/")[0] in ("bootstrap.mk", "bootstrap.py",
                                                                       "bootstrap_build", TOOLS)
            and name not in (f"{TOOLS}/virtualenv.txt", f"{TOOLS}/virtualenv.in")]
    for relative in ours:
        assert (project / relative).read_bytes() == (REPO / relative).read_bytes(), relative
    gone = sorted(set(old) - set(ours))
    assert not any((project / relative).exists() for relative in gone), gone
    assert all(relative in result.stdout for relative in gone), describe(result)
    assert ("bootstrap_build/core.py" in gone) == ("core.py" in layout)
    built(run_make(project, "ve", prefix=["unshare", "-n"]))
    assert_ok(run_make(project, "check", prefix=["unshare", "-n"]))


# --- issue 30, items 6-16: indexes and hashes honoured, the convention's own freeze, every requirement form, ---------
# --- interruptions, worktrees, ignore rules, settings ----------------------------------------------------------------


@pytest.mark.parametrize("case", ["extra-index", "find-links", "missing-include", "poetry", "dynamic",
                                  "lowercase-makefile", "recipeprefix", "requirements-in-editable", "index-mismatch"])
def test_what_adopt_cannot_honour_is_one_error_before_anything_changes(tmp_path, index, case):
    files = {
        "extra-index": {"requirements.txt": "--extra-index-url https://example.invalid/simple\nalpha==1.0\n"},
        "find-links": {"requirements.txt": "-f ./wheels\nalpha==1.0\n"},
        "missing-include": {"requirements.txt": "-rbase.txt\n"},
        "poetry": {"pyproject.toml": '[tool.poetry]\nname = "p"\n[tool.poetry.dependencies]\nalpha = "^1.0"\n'},
        "dynamic": {"pyproject.toml": '[project]\nname = "p"\nversion = "1"\ndynamic = ["dependencies"]\n'},
        "lowercase-makefile": {"makefile": "all:\n\t@echo own\n", "requirements.txt": "alpha==1.0\n"},
        "recipeprefix": {"Makefile": ".RECIPEPREFIX := >\nall:\n> @echo own\n", "requirements.txt": "alpha\n"},
        "requirements-in-editable": {"requirements.in": "\ufeffalpha\n-e .\n"},
        "index-mismatch": {"requirements.txt": "--index-url https://example.invalid/simple\nalpha==1.0\n"},
    }[case]
    project = make_project(tmp_path / "project", files)
    before = tree_digest(project)
    expected = {"extra-index": "--extra-index-url", "find-links": "-f ./wheels", "missing-include": "base.txt",
                "poetry": "[tool.poetry.dependencies]", "dynamic": "dynamic", "lowercase-makefile": "`makefile`",
                "recipeprefix": ".RECIPEPREFIX", "requirements-in-editable": "editable",
                "index-mismatch": "example.invalid"}[case]
    assert_one_error(adopt(project, index), expected, "Nothing was changed")
    assert diff_digests(before, tree_digest(project)) == []
    assert git(project, "status", "--porcelain", "--ignored") == ""


COMMON_MK = """\
.PHONY: freeze
freeze:
\t@touch own-freeze-ran
"""


@slow
def test_a_project_with_its_own_freeze_includes_an_index_line_hashes_and_ignored_wheels(tmp_path, index):
    alpha = hashlib.sha256(index.wheel("alpha", "1.0").read_bytes()).hexdigest()
    project = make_project(tmp_path / "project", {
        "Makefile": "include common.mk\n",  # its `freeze` lives in an included file
        "common.mk": COMMON_MK,
        "requirements.txt": f"--index-url {index.url}\n-rbase.txt\n--requirement=extra.txt\n",
        "base.txt": f"alpha==1.0 --hash=sha256:{alpha}\n",
        "extra.txt": "beta==1.0\n",
        ".gitignore": "*.whl\n",
    })
    result = run_make(REPO, "adopt", f"DEST={project}", f"TARGET_PYTHONS={THIS_PYTHON}", "COOLDOWN_DAYS=0")
    assert_ok(result)
    assert "the first freeze uses the index DEST's requirements name" in result.stdout, describe(result)
    assert not (project / "own-freeze-ran").exists(), "the project's own freeze ran instead of the convention's"
    assert "make bootstrap-freeze" in (project / "Makefile").read_text()  # its own freeze kept, ours renamed
    pins = {pin.name: pin.version for pin in lockfile.parse((project / "requirements.txt").read_text())[0]}
    assert pins["alpha"] == "1.0" and pins["beta"] == "1.0"
    wheels = [path.relative_to(project).as_posix() for path in (project / "requirements").glob("*.whl")]
    check = subprocess.run(["git", "-C", str(project), "check-ignore", "--no-index", *wheels], capture_output=True,
                           text=True)
    assert check.stdout == "", "a wheel the lock needs would stay out of git"
    assert not (project / ".bootstrap-adopting.json").exists()


@slow
def test_other_bytes_for_a_version_the_project_pinned_by_hash_stop_the_adoption(tmp_path, index):
    project = make_project(tmp_path / "project", {"requirements.txt": f"alpha==1.0 --hash=sha256:{'0' * 64}\n"})
    before = tree_digest(project)
    result = adopt(project, index)
    assert_one_error(result, "other bytes for alpha==1.0", "ACCEPT_CHANGED_HASHES=1", "put back")
    assert diff_digests(before, tree_digest(project)) == []
    assert git(project, "status", "--porcelain", "--ignored") == ""


@slow
def test_sigterm_rolls_back_and_a_kill_9_is_undone_by_the_next_adopt(tmp_path, index):
    import signal
    import time

    for how in (signal.SIGTERM, signal.SIGKILL):
        files = {"requirements.txt": "alpha==1.0\n", "Makefile": "all:\n\t@echo own\n"}
        project = make_project(tmp_path / f"project-{how.name}", files)
        before = tree_digest(project)
        argv = ["make", "--no-print-directory", "adopt", f"DEST={project}", f"INDEX_URL={index.url}",
                f"TARGET_PYTHONS={THIS_PYTHON}"]
        log = open(tmp_path / f"{how.name}.log", "w+")
        process = subprocess.Popen(argv, cwd=REPO, env=make_env(), stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and not os.path.lexists(project / ".bootstrap" / "tools"):
            time.sleep(0.05)  # the first freeze built its tools' env in DEST: adopt waits for the freeze
        os.kill(adopter_pid(project), how)
        if how == signal.SIGKILL:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=TIMEOUT)
        log.seek(0)
        output = log.read()
        assert "Traceback" not in output, output
        if how == signal.SIGTERM:
            assert len([line for line in output.splitlines() if line.startswith("ERROR:")]) == 1, output
            assert diff_digests(before, tree_digest(project)) == [], output
            assert git(project, "status", "--porcelain", "--ignored") == ""
        else:
            assert (project / ".bootstrap-adopting.json").exists()
            result = assert_ok(adopt(project, index))
            assert "undoing an interrupted `make adopt`" in result.stdout, describe(result)
            assert (project / "bootstrap.py").exists() and not (project / ".bootstrap-adopting.json").exists()


def adopter_pid(project):
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        args = cmdline.split(b"\0")
        if b"bootstrap_tools.adopt" in args and str(project).encode() in args:  # not the shell make started it in
            return int(pid)
    raise AssertionError("no adopt process")


@slow
def test_a_git_worktree_is_adopted_and_a_failed_adoption_is_put_back_there(tmp_path, index):
    main = make_project(tmp_path / "main", {"requirements.txt": "alpha==1.0\ndelta==1.0\n"})
    worktree = tmp_path / "worktree"
    git(main, "worktree", "add", "-q", str(worktree))
    assert (worktree / ".git").is_file()
    index.add("delta", "1.0", requires=["alpha>=2"])
    before = tree_digest(worktree)
    result = adopt(worktree, index)
    assert_one_error(result, "first `make freeze`", "put back")
    assert "NotADirectoryError" not in result.stdout + result.stderr
    assert diff_digests(before, tree_digest(worktree)) == []


def test_force_for_adopt_never_rebuilds_this_checkouts_ve():
    """FORCE=1 is adopt's (overwrite DEST's edited files): this checkout's envs are not rebuilt for it. adopt runs
    in the tools' env and needs no ve here."""
    result = run_make(REPO, "-n", "adopt", "DEST=/nonexistent", "FORCE=1")
    lines = result.stdout.splitlines()
    tools_line = next(line for line in lines if "--tools" in line)
    assert "--force" not in tools_line, tools_line
    assert not [line for line in lines if "--ve" in line], result.stdout
    assert "--force" in next(line for line in lines if "bootstrap_tools.adopt" in line), result.stdout


# --- issue 27: the convention's tools leave requirements.in on an upgrade, only where adopt put them ---------------


@pytest.mark.parametrize("case", ["appended-block", "written-by-adopt", "the-projects-own"])
def test_an_upgrade_takes_out_only_the_tools_an_older_adopt_added(tmp_path, case):
    from bootstrap_tools import adopt as adopt_module

    old_header = ("# What this project wants (from pyproject.toml by `make adopt`). Edit it, then `make freeze` locks "
                  "it into\n" + adopt_module.OLD_HEADER_END + "\n")
    text = {
        "appended-block": f"# ours\nrequests\npip-tools>=7\n{adopt_module.OLD_ADDED_BY_ADOPT}\npip-tools\npytest\n",
        "written-by-adopt": old_header + "alpha\npip-tools\npytest\nflake8\n",
        "the-projects-own": "# ours\nalpha\npip-tools\n",
    }[case]
    (tmp_path / "requirements.in").write_text(text)
    dropped = adopt_module.drop_convention_tools(tmp_path)
    after = (tmp_path / "requirements.in").read_text()
    dev = tmp_path / "requirements-dev.in"
    if case == "the-projects-own":
        assert (dropped, after, dev.exists()) == ([], text, False)
        return
    assert "pip-tools\n" not in after.replace("pip-tools>=7\n", "") and "pytest" not in after, after
    assert ("requests\npip-tools>=7\n" in after) if case == "appended-block" else ("alpha\n" in after), after
    assert adopt_module.ADDED_BY_ADOPT in dev.read_text() and "pytest\n" in dev.read_text()
    assert ("flake8\n" in dev.read_text()) == (case == "written-by-adopt")
    assert "pip-tools" in dropped and adopt_module.drop_convention_tools(tmp_path) == []  # once only


@slow
def test_issue28_make_test_in_an_adopted_src_layout_lints_only_the_project_and_imports_it(adopted):
    """Items 4 and 7: the convention's flake8 leaves its own code out, pytest imports src/ without an install,
    VE_RUN runs a tool in the ve, and `make check` warns when pyproject.toml names what requirements.in does not."""
    path, _ = adopted["lib"]
    tested = assert_ok(run_make(path, "test"))
    assert "./bootstrap.py,./bootstrap_build,./bootstrap_tools" in tested.stdout, describe(tested)
    assert "-o pythonpath=\"src\"" in tested.stdout and "1 passed" in tested.stdout, describe(tested)
    assert "WARNING" not in tested.stdout, describe(tested)
    ran = assert_ok(run_make(path, "--eval", "probe: ; @$(VE_RUN) pytest --version", "probe"))
    assert "pytest 9" in ran.stdout + ran.stderr, describe(ran)
    with restored(path / "pyproject.toml"):
        pyproject = path / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace('["alpha"]', '["alpha", "Struct_Log>=24"]'))
        checked = assert_ok(run_make(path, "check"))
    warnings = [line for line in checked.stdout.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1 and "struct-log ([project].dependencies)" in warnings[0], describe(checked)
    assert "neither requirements.in nor requirements-dev.in names" in warnings[0], describe(checked)


def test_issue28_this_repository_lints_the_conventions_code_and_an_adopted_project_does_not(adopted):
    """Item 4: this repository's Makefile empties BOOTSTRAP_FLAKE8_CONVENTION; an adopted project keeps it."""
    own = assert_ok(run_make(REPO, "-n", "bootstrap-test"))
    flake8 = [line for line in own.stdout.splitlines() if " -m flake8 " in line]
    assert flake8 and "bootstrap_tools" not in flake8[0] and "bootstrap.py" not in flake8[0], describe(own)
    path, _ = adopted["app"]
    theirs = assert_ok(run_make(path, "-n", "bootstrap-test"))
    assert "./bootstrap.py,./bootstrap_build,./bootstrap_tools" in theirs.stdout, describe(theirs)


def test_issue28_every_convention_target_is_short_unless_the_project_has_its_own(adopted):
    """Item 6: verify, sbom and the rest exist under their short names; the project's own keep theirs."""
    for name, own in (("app", {"test", "clean"}), ("lib", set())):
        path, _ = adopted[name]
        shown = assert_ok(run_make(path, "help")).stdout
        for target in adopt_module.TARGETS:
            assert f"make {target if target not in own else 'bootstrap-' + target} " in shown, (name, shown)
        dry = assert_ok(run_make(path, "-n", "verify"))
        assert "--verify" in dry.stdout, describe(dry)
    assert "verify" in adopt_module.TARGETS and "sbom" in adopt_module.TARGETS


def test_issue28_the_readmes_example_is_what_adopt_writes():
    """Item 6: the README's Makefile example is byte for byte what adopt appends for a project with its own test."""
    readme = (REPO / "docs" / "adopt.md").read_text()
    start = readme.index("```make\ntest:\n") + len("```make\n")
    shown = readme[start:readme.index("```", start)]
    assert shown == "test:\n\t@./run-my-tests\n\n" + adopt_module.makefile_block(
        {"test"}, {"TARGET_PYTHONS": "3.11 3.12"})


@slow
def test_issue28_adopted_files_name_no_path_of_the_adopting_machine_and_the_report_compares_with_old_pins(
        adopted, tmp_path_factory):
    """Item 8: no committed file names the adopting machine's temporary paths or this checkout (the first lock's
    `-c .../adopt-constraints.txt` notes are gone); the first freeze's report compares with the project's own pins.
    Item 9: adopt's steps say what they do."""
    machine = [os.fsencode(str(tmp_path_factory.getbasetemp())), os.fsencode(str(REPO))]
    for name in ("app", "lib"):
        path, result = adopted[name]
        for relative in git(path, "ls-files").splitlines():
            data = (path / relative).read_bytes()
            assert not [needle for needle in machine if needle in data], (name, relative)
        assert "-c " not in (path / "requirements.txt").read_text(), name
        pins = result.stdout.split("Pins (requirements.txt), against DEST's pins before adoption:\n", 1)[1]
        pins = pins.split("Changed in ", 1)[0].splitlines()
        # The convention's tools never join the project's pins: the app's exact pins are its lock as they were.
        if name == "app":
            assert pins == ["      no change"], (name, result.stdout)
        else:
            assert pins and all(line.startswith("      added:     ") for line in pins), (name, result.stdout)
            assert "      added:     alpha 2.0" in pins, pins
        for step in ("==> writing requirements.in", "==> wiring DEST's Makefile"):
            assert step in result.stdout, describe(result)


def test_issue28_adopt_lists_the_recipes_that_run_tools_from_path(adopted):
    """Item 5: adopt names each recipe that runs python, pip or a tool of the lock from PATH, with its ve form."""
    _, result = adopted["app"]
    assert "Makefile:9 (serve): `python app.py` -> `$(VE_PYTHON) app.py`" in result.stdout, describe(result)
    assert "Makefile:11 (deps): `pip install -r requirements.txt` -> remove it" in result.stdout, describe(result)
    scripts = adopt_module.console_scripts(REPO / "requirements")
    found = adopt_module.path_tools("test: ve\n\t@pytest -x && DEBUG=1 pip-compile -q\nX := 1\n\tpytest\n", scripts)
    # pip-compile is the convention's tool, in its own env: not one of the lock's scripts any more.
    assert found == [(2, "test", "pytest -x", "$(VE_RUN) pytest -x")], found


def test_issue28_the_lock_keeps_no_constraints_note_of_the_machine_and_the_report_lists_targets_in_order():
    """Item 8: freeze drops the `# via -c` notes of a constraints file outside the checkout or in .bootstrap/;
    the report's targets are in order."""
    from bootstrap_tools import freeze, report

    body = ("a==1 \\\n    --hash=sha256:00\n    # via\n    #   -c /tmp/x/c.txt\n    #   -r requirements.in\n"
            "b==1 \\\n    --hash=sha256:00\n    # via -c /tmp/x/c.txt\n")
    assert freeze.without_machine_constraints(body, ["/tmp/x/c.txt"]) == (
        "a==1 \\\n    --hash=sha256:00\n    # via -r requirements.in\nb==1 \\\n    --hash=sha256:00\n")
    assert freeze.without_machine_constraints(body, ["constraints.txt"]) == body
    entry = lockfile.lock_entry("gone==1.0", {"0" * 64})
    before = "# targets: 3.10 3.11 3.12 3.13\n" + entry
    after = "# targets: 3.11 3.12\n" + lockfile.lock_entry("kept==1.0", {"0" * 64})
    removed = [text for label, text in report.pin_changes(before, after) if label == "removed"]
    assert removed == ["gone 1.0 (Python 3.10 3.11 3.12 3.13)"], removed
