"""Dependencies published only as sdists (issue 9): wheels built at freeze from a hashed build lock, offline fallback.

The index serves this project's wheels and the tools' setuptools (the backend of three sdists), the `dynback` backend
and `dynextra` (what it asks for dynamically) as wheels, and four sdists made here (tests/sdist_helpers.py):
pyproj (setuptools, pyproject.toml), legacy (setup.py only), dynamic (dynback) and cext (a C extension).
One checkout is frozen once per module for this Python and one other target (about two minutes); the scenarios
work on copies of it. Nothing here needs the network; `make ve` runs under `unshare -n` where that works.
"""

import json
import re
import shutil
import sys
from pathlib import Path

import pytest

from conftest import (
    _find_python, _unshare_works, assert_one_error, assert_ok, built, copy_checkout, describe, diff_digests,
    make_env, run_make, sha256_file, tree_digest, ve_python, ve_state,
)
from index_helpers import Index
from sdist_helpers import backend_wheels, drop_dev_set, fixture_sdists, setuptools_wheels
from bootstrap_tools import check, lockfile, sdists, targets

slow = pytest.mark.slow

THIS = "%d.%d" % sys.version_info[:2]
# One other target where a test needs two (the C extension gets one wheel per target): the nearest one here.
OTHER = next((version for version in ("3.12", "3.11", "3.13", "3.10") if version != THIS and _find_python(version)),
             None)
SOURCE_ONLY = ("pyproj", "legacy", "dynamic", "cext")
# __pycache__/: bootstrap.py's own bytecode, which make ve keeps (git-ignored), like the ve itself.
NOT_SOURCE = ("ve", ".ve-a", ".ve-b", ".ve.lock", ".ve.tmp", "build", ".bootstrap", "__pycache__")
OFFLINE = ("unshare", "-n") if _unshare_works("-n") else ()


class Frozen:
    def __init__(self, path, index, made, result):
        self.path, self.index, self.made, self.result = path, index, made, result

    def make(self, *args, env=None, offline=False):
        return run_make(self.path, *args, env=env, prefix=OFFLINE if offline else ())

    def freeze(self, *args):
        return self.make("freeze", f"INDEX_URL={self.index.url}", f"TARGET_PYTHONS={THIS} {OTHER}", *args)

    def read(self, name):
        return (self.path / name).read_text(encoding="utf-8")

    def pins(self):
        pins, problems = lockfile.parse(self.read("requirements.txt"))
        assert problems == []
        return {pin.name: pin for pin in pins}

    def artifacts(self):
        return sorted(path.name for path in (self.path / "requirements").iterdir())

    def manifest(self):
        return json.loads(self.read(sdists.MANIFEST))["wheels"]


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    if OTHER is None:
        pytest.skip(f"no CPython besides {THIS} here (python3.X on PATH or under pyenv): these scenarios need two")
    if not shutil.which("gcc") and not shutil.which("cc"):
        pytest.skip("no C compiler here (gcc or cc): the C extension sdist cannot be built")
    root = tmp_path_factory.mktemp("sdists")
    index = Index(root / "index")
    for wheel in sorted((Path(__file__).parent.parent / "requirements").glob("*.whl")):
        index.add_file(wheel)
    made = fixture_sdists(root / "made")
    for name in SOURCE_ONLY:
        index.add_file(made[name])
    for wheel in backend_wheels(root / "made") + setuptools_wheels():
        index.add_file(wheel)
    path = drop_dev_set(copy_checkout(root / "checkout"))
    (path / "requirements.in").write_text((path / "requirements.in").read_text() + "\n".join(SOURCE_ONLY) + "\n")
    project = Frozen(path, index, made, None)
    built(project.make("ve"))
    project.result = assert_ok(project.freeze())
    return project


def copy_of(frozen, dest):
    """The frozen tree without its ve and build area (what a fresh clone holds), as a Frozen."""
    def ignore(directory, names):
        return [name for name in names if name in NOT_SOURCE] if directory == str(frozen.path) else []
    shutil.copytree(frozen.path, dest, symlinks=True, ignore=ignore)
    return Frozen(Path(dest), frozen.index, frozen.made, None)


@pytest.fixture
def clone(frozen, tmp_path):
    return copy_of(frozen, tmp_path / "clone")


def source_digest(path):
    return {name: digest for name, digest in tree_digest(path).items() if name.split("/", 1)[0] not in NOT_SOURCE}


def wheel_of(project, name, tag):
    matches = [artifact for artifact in project.artifacts() if artifact.startswith(f"{name}-1.0-") and tag in artifact]
    assert len(matches) == 1, project.artifacts()
    return project.path / "requirements" / matches[0]


# --- make freeze ---------------------------------------------------------------------------------------------


@slow
def test_freeze_builds_stores_and_traces_a_fitting_wheel_for_every_target(frozen):
    pins, artifacts, entries = frozen.pins(), frozen.artifacts(), frozen.manifest()
    # setuptools is no pin of the project's: the build lock pins it (checked below).
    build_versions = {pin.name: pin.version for pin in lockfile.parse(frozen.read(sdists.BUILD_LOCK))[0]}
    for name in SOURCE_ONLY:
        sdist = frozen.path / "requirements" / f"{name}-1.0.tar.gz"
        assert sha256_file(sdist) == sha256_file(frozen.made[name])  # the index's sdist, hash-checked
        wheels = [entry for entry in entries if entry["wheel"].startswith(f"{name}-1.0-")]
        assert wheels, entries
        # The pin allows the sdist and each built wheel, nothing else.
        assert pins[name].hashes == {sha256_file(sdist)} | {entry["sha256"] for entry in wheels}
        for entry in wheels:
            assert entry["wheel"] in artifacts and sha256_file(frozen.path / "requirements" / entry["wheel"]) == \
                entry["sha256"]
            assert entry["sdist"] == sdist.name and entry["sdist_sha256"] == sha256_file(sdist)
            assert entry["python"].startswith(entry["target"] + ".")
            setuptools = f"setuptools=={build_versions['setuptools']}"
            assert entry["build_requires"] == ["dynback==1.0", "dynextra==1.0", setuptools]
    # The C extension: one wheel per target; the pure ones: one wheel fits both.
    assert sorted(entry["target"] for entry in entries if entry["wheel"].startswith("cext-")) == sorted([THIS, OTHER])
    for version in (THIS, OTHER):
        tag = "cp" + version.replace(".", "")
        assert wheel_of(frozen, "cext", f"-{tag}-{tag}-").exists()
    for name in ("pyproj", "legacy", "dynamic"):
        assert len([entry for entry in entries if entry["wheel"].startswith(f"{name}-")]) == 1
        assert wheel_of(frozen, name, "py3-none-any")
    backends = {entry["wheel"].split("-")[0]: (entry["backend"], entry["backend_dist"]) for entry in entries}
    assert backends["legacy"][0] == sdists.LEGACY_BACKEND  # no pyproject.toml: setuptools' legacy default
    assert backends["dynamic"] == ("dynback", "dynback 1.0")
    assert [entry["dynamic_requires"] for entry in entries if entry["wheel"].startswith("dynamic-")] == \
        [["dynextra>=1.0"]]

    # The build lock: the declared backends plus what dynback asked for, pinned and hashed, artifacts stored.
    build_text = frozen.read(sdists.BUILD_LOCK)
    build_pins, problems = lockfile.parse(build_text)
    assert problems == [] and {pin.name for pin in build_pins} == {"dynback", "dynextra", "setuptools"}
    assert lockfile.targets(build_text) == [THIS, OTHER]
    assert "dynback-1.0-py3-none-any.whl" in artifacts and "dynextra-1.0-py3-none-any.whl" in artifacts

    # The report: what was built from source, with what, how big and how long.
    out = frozen.result.stdout
    assert "Built from source (requirements-build.txt, requirements-built.json):" in out, describe(frozen.result)
    assert "  built:     dynamic 1.0 from dynamic-1.0.tar.gz with dynback (dynback 1.0): dynamic-1.0-py3-none-any.whl" \
        in out
    assert " bytes, built in " in out and "wheel(s) built in" in out
    assert_ok(frozen.make("check"))


@slow
def test_offline_make_ve_on_each_target_installs_the_prebuilt_wheels_without_building(clone):
    for version in (THIS, OTHER):
        result = clone.make("ve", f"PYTHON={_find_python(version)}", offline=True)
        built(result)
        assert "building from source" not in result.stdout, describe(result)
        imported = ve_python(clone.path, "import cext, dynamic, legacy, pyproj, sys; "
                                         "print(cext.add(2, 3), dynamic.BUILT_WITH, legacy.KIND, pyproj.KIND)")
        assert imported.stdout.split() == ["5", "dynextra", "1.0", "legacy", "pyproject"], describe(imported)
    assert_ok(clone.make("check"))


@slow
def test_freeze_twice_in_a_row_changes_nothing(clone):
    before = source_digest(clone.path)
    built(clone.make("ve"))
    # Another inputs digest: the freeze resolves in full (with the right one it would skip resolution), and writes
    # the lock back as it was.
    lock = clone.path / "requirements.txt"
    lock.write_text(re.sub(r"(?m)^# inputs sha256: .*$", "# inputs sha256: " + "0" * 64, lock.read_text()))
    result = assert_ok(clone.freeze())
    assert diff_digests(before, source_digest(clone.path)) == []
    assert "building a wheel" not in result.stdout and "kept)" in result.stdout, describe(result)


@slow
def test_broken_sdist_fails_the_freeze_with_one_error_and_the_tree_untouched(clone, frozen):
    clone.index.add_file(frozen.made["broken"])
    built(clone.make("ve"))
    (clone.path / "requirements.in").write_text(clone.read("requirements.in") + "broken\n")
    before = source_digest(clone.path)
    result = clone.freeze()
    error = assert_one_error(result, "broken==1.0", "broken-1.0.tar.gz", "make freeze", "Nothing was changed")
    assert "error" in error.lower() and "|" in error  # the build's last lines
    assert diff_digests(before, source_digest(clone.path)) == []


# --- make ve: the offline fallback ----------------------------------------------------------------------------


@slow
def test_make_ve_builds_a_removed_wheel_offline_from_its_sdist_and_says_so(clone):
    tag = "cp" + THIS.replace(".", "")
    wheel_of(clone, "cext", f"-{tag}-").unlink()
    wheel_of(clone, "dynamic", "py3-none-any").unlink()
    result = clone.make("ve", offline=True)
    built(result)
    lines = [line for line in result.stdout.splitlines() if line.startswith("==> building from source")]
    assert len(lines) == 1 and "cext 1.0, dynamic 1.0" in lines[0] and "requirements-build.txt" in lines[0], \
        describe(result)
    imported = ve_python(clone.path, "import cext, dynamic; print(cext.add(40, 2), dynamic.BUILT_WITH)")
    assert imported.stdout.split() == ["42", "dynextra", "1.0"], describe(imported)


@slow
def test_make_ve_refuses_a_tampered_backend_or_sdist_and_keeps_the_previous_ve(clone):
    built(clone.make("ve"))
    before = ve_state(clone.path)
    wheel_of(clone, "dynamic", "py3-none-any").unlink()
    backend = clone.path / "requirements" / "dynback-1.0-py3-none-any.whl"
    good = backend.read_bytes()
    backend.write_bytes(good + b"\0")
    result = clone.make("ve", "FORCE=1", offline=True)
    assert_one_error(result, "requirements/dynback-1.0-py3-none-any.whl", "requirements-build.txt", "git checkout")
    assert ve_state(clone.path) == before
    backend.write_bytes(good)
    sdist = clone.path / "requirements" / "dynamic-1.0.tar.gz"
    sdist.write_bytes(sdist.read_bytes() + b"\0")
    result = clone.make("ve", "FORCE=1", offline=True)
    assert_one_error(result, "dynamic-1.0.tar.gz", "git checkout")
    assert ve_state(clone.path) == before


@slow
def test_a_failing_build_at_make_ve_names_the_package_and_keeps_the_previous_ve(clone):
    built(clone.make("ve"))
    before = ve_state(clone.path)
    tag = "cp" + THIS.replace(".", "")
    wheel_of(clone, "cext", f"-{tag}-").unlink()
    env = make_env(CC="false-compiler-that-does-not-exist")  # setuptools compiles with $CC
    result = clone.make("ve", "FORCE=1", env=env, offline=True)
    assert_one_error(result, "building cext 1.0 from its sdist failed", "Fix:", "previous ve is untouched")
    assert ve_state(clone.path) == before


# --- make check ----------------------------------------------------------------------------------------------


@slow
def test_check_covers_the_build_lock_the_manifest_and_each_built_wheels_sdist(clone):
    assert check.find_problems(clone.path) == []
    root = clone.path
    (root / "requirements" / "cext-1.0.tar.gz").unlink()
    backend = root / "requirements" / "dynextra-1.0-py3-none-any.whl"
    backend.write_bytes(backend.read_bytes() + b"\0")
    lock = root / sdists.BUILD_LOCK
    lock.write_text(lock.read_text().replace("dynback==1.0 \\\n", "dynback>=1.0 \\\n"))
    problems = check.find_problems(root)
    for words in (("was built from cext-1.0.tar.gz", "requirements/"),
                  ("requirements/dynextra-1.0-py3-none-any.whl", "does not match"),
                  (sdists.BUILD_LOCK, "dynback>=1.0", "not pinned")):
        assert any(all(word in problem for word in words) for problem in problems), (words, problems)

    (root / sdists.MANIFEST).write_text("{not json")
    assert any(sdists.MANIFEST in problem and "not readable" in problem for problem in check.find_problems(root))
    (root / sdists.MANIFEST).unlink()
    problems = check.find_problems(root)
    assert any(sdists.MANIFEST in problem and "missing" in problem for problem in problems), problems


# --- units ---------------------------------------------------------------------------------------------------


def test_add_hashes_adds_sorted_hashes_to_the_named_pin_only():
    text = ("# header\nalpha==1.0 \\\n    --hash=sha256:" + "b" * 64 + "\n    # via -r requirements.in\n"
            "beta==2.0 ; python_version < \"3.11\" \\\n    --hash=sha256:" + "c" * 64 + "\n")
    out = sdists.add_hashes(text, {("alpha", "1.0"): {"a" * 64}, ("beta", "2.0"): {"d" * 64}})
    assert out == ("# header\nalpha==1.0 \\\n    --hash=sha256:" + "a" * 64 + " \\\n    --hash=sha256:" + "b" * 64
                   + "\n    # via -r requirements.in\nbeta==2.0 ; python_version < \"3.11\" \\\n    --hash=sha256:"
                   + "c" * 64 + " \\\n    --hash=sha256:" + "d" * 64 + "\n")
    assert lockfile.parse(out)[1] == []


def test_build_system_reads_pyproject_or_falls_back_to_the_legacy_default(tmp_path):
    made = fixture_sdists(tmp_path / "made")
    legacy = sdists.extract(made["legacy"], tmp_path / "legacy")
    assert sdists.build_system(legacy, "legacy") == (list(sdists.LEGACY_REQUIRES), sdists.LEGACY_BACKEND, [])
    dynamic = sdists.extract(made["dynamic"], tmp_path / "dynamic")
    assert sdists.build_system(dynamic, "dynamic") == (["dynback"], "dynback", [])


def test_names_without_a_wheel_are_read_from_pip_compiles_failure():
    output = ("ERROR: Could not find a version that satisfies the requirement Old_CSV (from versions: none)\n"
              "ERROR: No matching distribution found for Old_CSV\n")
    with pytest.raises(targets.NoWheel) as raised:
        targets.raise_for_missing_wheels(output, set())
    assert raised.value.names == {"old-csv"}
    targets.raise_for_missing_wheels(output, {"old-csv"})  # already allowed: pip's own error is reported instead
    assert targets.compile_flags(("--pip-args", "--isolated --only-binary=:all:"), {"b", "a"})[-1] == \
        "--isolated --only-binary=:all: --no-binary=a,b"


def test_bootstrap_without_sdists_asks_nothing_more(tmp_path):
    # A wheels-only lock: no build lock input, no tag query, no extra pip options (keys of existing ves unchanged).
    from bootstrap_build import checks, sdists as build_sdists
    assert build_sdists.source_args([], tmp_path) == []
    assert checks.sdist_wheels([]) == {}
