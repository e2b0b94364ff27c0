"""`make freeze`, `make freeze-upgrade` and `make check` as a maintainer meets them, against an index in tmp_path.

The index (tests/index_helpers.py) serves tiny wheels made here (alpha 1.0, beta 1.0 and 1.1 which needs gamma,
gamma 1.0; alpha 2.0 when a test publishes it) beside this project's own wheels from requirements/, so the copy
can still build its ./ve, and virtualenv's wheels, rebuilt once per session from the files virtualenv.py carries
in its own payload (for the virtualenv.py step of freeze-upgrade, which therefore runs on every clean clone).
One checkout is built and frozen once per module (`base`: requirements.in is the project's plus `alpha`); each
test starts from its own copy of it (tree and ve, so `make ve` there is a no-op) and its own index.
Nothing here needs the network except the test marked `network`.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import (
    REPO, assert_one_error, assert_ok, build_area_leftovers, built, copy_checkout, describe, make_env, run_make,
    sha256_file, tree_digest, diff_digests, up_to_date,
)
from index_helpers import Index, build_sdist, build_wheel, rebuild_with_version, wheels_from_virtualenv_py
from bootstrap_tools import check, lockfile, report, virtualenv_py

slow = pytest.mark.slow

# The files a freeze may change; a failed one must leave every byte of them as it was.
MANAGED = ("requirements.txt", "requirements-dev.txt", "requirements.pins", "requirements", "virtualenv_support",
           "virtualenv.py", "bootstrap_tools/virtualenv.txt")
NOT_SOURCE = ("ve", ".ve-a", ".ve-b", ".ve.lock", ".ve.tmp", "ve.switching", "build", ".bootstrap", "__pycache__")


# --- the package index and the project copy ------------------------------------------------------------------


@pytest.fixture(scope="session")
def payload_wheels(tmp_path_factory):
    """virtualenv's wheels, rebuilt from virtualenv.py's own payload: what freeze-upgrade's virtualenv step needs."""
    return tuple(wheels_from_virtualenv_py(REPO / "virtualenv.py", tmp_path_factory.mktemp("payload-wheels")))


def make_index(root, virtualenv_wheels=(), metadata=False):
    """An index with the project's wheels, `virtualenv_wheels` and the fixture packages (no alpha 2.0)."""
    index = Index(root, metadata=metadata)
    for wheel in sorted((REPO / "requirements").glob("*.whl")):
        index.add_file(wheel)
    for wheel in virtualenv_wheels:
        index.add_file(wheel)  # packaging and typing-extensions: the project's own wheel is served already
    index.add("alpha", "1.0")
    index.add("beta", "1.0")
    index.add("beta", "1.1", requires=["gamma>=1.0"])
    index.add("gamma", "1.0")
    return index


def source_digest(checkout):
    """tree_digest of the checkout minus the ve, its slots and build/: what `git status` would compare."""
    return {path: digest for path, digest in tree_digest(checkout).items()
            if path.split(os.sep, 1)[0] not in NOT_SOURCE}


def managed_digest(checkout):
    digests = source_digest(checkout)
    return {path: digest for path, digest in digests.items()
            if any(path == name or path.startswith(name + os.sep) for name in MANAGED)}


THIS_PYTHON = "%d.%d" % sys.version_info[:2]
# The fixture index's virtualenv wheels are rebuilt from virtualenv.py's payload: the same files in other zip bytes
# than bootstrap_tools/virtualenv.txt pins, which trust on first use stops unless told (tested on its own below).
PAYLOAD_BYTES = "ACCEPT_CHANGED_HASHES=1"


class Project:
    """A copy of the checkout plus the index its freezes use."""

    def __init__(self, path, index):
        self.path, self.index = Path(path), index

    def make(self, *args, env=None):
        return run_make(self.path, *args, env=env)

    # One target (this Python) keeps these scenarios quick; tests/test_targets.py covers several.
    def freeze(self, *args, env=None):
        return self.make("freeze", f"INDEX_URL={self.index.url}", f"TARGET_PYTHONS={THIS_PYTHON}", *args, env=env)

    def freeze_upgrade(self, *args, env=None):
        return self.make("freeze-upgrade", f"INDEX_URL={self.index.url}", f"TARGET_PYTHONS={THIS_PYTHON}", *args,
                         env=env)

    def read(self, name):
        return (self.path / name).read_text(encoding="utf-8")

    def requirements_in(self, add=(), remove=()):
        lines = [line for line in self.read("requirements.in").splitlines() if line.strip() not in remove]
        (self.path / "requirements.in").write_text("\n".join(lines + list(add)) + "\n")

    def pins(self):
        """{name: pin} of both sets: the dev set's (pytest, pip...) and the runtime set's, which wins."""
        pins = {}
        for name in ("requirements-dev.txt", "requirements.txt"):
            if (self.path / name).exists():
                found, problems = lockfile.parse(self.read(name))
                assert not problems, problems
                pins.update((pin.name, pin) for pin in found)
        return pins

    def artifacts(self):
        return sorted(path.name for path in (self.path / "requirements").iterdir())

    def report_file(self):
        return self.read(".bootstrap/freeze-report.txt")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A checkout whose requirements.in adds `alpha`, frozen against the fixture index and with its ve built.

    Returns (where it was built, a snapshot of it with its ve): a ve is valid only where it was built, so each
    test gets the snapshot back at that same place, where `make ve` is a no-op, instead of a rebuild elsewhere.
    """
    root = tmp_path_factory.mktemp("freeze-base")
    project = Project(copy_checkout(root / "checkout"), make_index(root / "index"))
    project.requirements_in(add=["alpha"])
    built(project.make("ve"))
    assert_ok(project.freeze())
    assert project.pins()["alpha"].version == "1.0"
    built(project.make("ve"))
    snapshot = root / "snapshot"
    shutil.copytree(project.path, snapshot, symlinks=True,
                    ignore=lambda directory, names: LEFTOVERS if directory == str(project.path)
                    else build_area_leftovers(directory, names))
    return project.path, snapshot


LEFTOVERS = ("build", ".ve.lock", ".ve.tmp")


@pytest.fixture
def project(base, tmp_path, payload_wheels):
    """`base` as it was after its freeze, back at the place its ve was built, and a fresh index."""
    path, snapshot = base
    shutil.rmtree(path)
    shutil.copytree(snapshot, path, symlinks=True)
    project = Project(path, make_index(tmp_path / "index", payload_wheels))
    up_to_date(project.make("ve"))
    return project


def report_lines(result, project):
    """The report as printed, checked to be the same as .bootstrap/freeze-report.txt."""
    text = project.report_file()
    assert text in result.stdout, describe(result)
    return text.splitlines()


def artifact_line(lines, sign, path):
    """The report's line for an added (+), removed (-) or changed (~) artifact; asserts it gives a size."""
    found = [line for line in lines if line.startswith(f"  {sign} {path} (")]
    assert len(found) == 1, lines
    assert re.search(r"\([\d,]+( -> [\d,]+)? bytes\)$", found[0]), found[0]
    return found[0]


def size_text(path):
    return f"{os.path.getsize(path):,} bytes"


# --- make freeze ---------------------------------------------------------------------------------------------


@slow
def test_freeze_after_adding_a_requirement_locks_fetches_and_reports_it(project):
    project.requirements_in(add=["beta"])
    result = assert_ok(project.freeze())

    pins = project.pins()
    assert (pins["beta"].version, pins["gamma"].version, pins["alpha"].version) == ("1.1", "1.0", "1.0")
    beta, gamma = project.path / "requirements" / "beta-1.1-py3-none-any.whl", project.index.wheel("gamma", "1.0")
    assert pins["beta"].hashes == {sha256_file(project.index.wheel("beta", "1.1"))}
    assert pins["gamma"].hashes == {sha256_file(gamma)}
    assert sha256_file(beta) == sha256_file(project.index.wheel("beta", "1.1"))
    assert "beta-1.1-py3-none-any.whl" in project.artifacts() and "gamma-1.0-py3-none-any.whl" in project.artifacts()
    pins_text = project.read("requirements.pins")
    assert "beta==1.1\n" in pins_text and "gamma==1.0\n" in pins_text and "--hash" not in pins_text
    names = [line.split("==")[0] for line in pins_text.splitlines()[1:]]
    assert names == sorted(names)

    lines = report_lines(result, project)
    assert "  added:     beta 1.1" in lines and "  added:     gamma 1.0" in lines
    assert not any(line.startswith(("  upgraded:", "  removed:")) for line in lines), lines
    assert artifact_line(lines, "+", "requirements/beta-1.1-py3-none-any.whl").endswith(f"({size_text(beta)})")
    artifact_line(lines, "+", "requirements/gamma-1.0-py3-none-any.whl")
    net = os.path.getsize(beta) + os.path.getsize(gamma)
    assert f"  net change in repository bytes: +{net:,} (" in project.report_file()

    # The new lock builds a ve (beta importable) and passes the check.
    assert_ok(project.make("ve"))
    result = assert_ok(project.make("check"))
    assert "==> check:" in result.stdout, describe(result)
    imported = subprocess.run([str(project.path / "ve" / "bin" / "python"), "-I", "-c", "import beta, gamma"],
                              capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr


@slow
def test_freeze_after_removing_a_requirement_prunes_its_artifact(project):
    alpha = project.path / "requirements" / "alpha-1.0-py3-none-any.whl"
    size = size_text(alpha)
    project.requirements_in(remove=["alpha"])
    result = assert_ok(project.freeze())

    assert "alpha" not in project.pins()
    assert not alpha.exists()
    assert "alpha" not in project.read("requirements.pins")
    lines = report_lines(result, project)
    assert "  removed:   alpha 1.0" in lines
    assert artifact_line(lines, "-", "requirements/alpha-1.0-py3-none-any.whl").endswith(f"({size})")
    assert f"  net change in repository bytes: -{size.split()[0]} (" in project.report_file()
    assert_ok(project.make("check"))


def resolve_again(project):
    """Make the lock's inputs digest differ, so that the next freeze resolves in full (as after any edit of its
    inputs) instead of saying `no change` without asking the index; it writes the right digest back."""
    lock = project.path / "requirements.txt"
    lock.write_text(re.sub(r"(?m)^# inputs sha256: .*$", "# inputs sha256: " + "0" * 64, lock.read_text()))


def without_inputs_line(text):
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("# inputs sha256:"))


@slow
def test_freeze_on_a_frozen_tree_and_twice_in_a_row_changes_nothing(project):
    before = source_digest(project.path)
    # With its inputs digest made to differ, the freeze resolves in full; it writes every byte back as it was (the
    # index's URL, another for each test's index here, is no input: kept pins take nothing new from an index).
    resolve_again(project)
    result = assert_ok(project.freeze())
    assert "==> resolving every target: inputs changed since the lock was made" in result.stdout, describe(result)
    assert diff_digests(before, source_digest(project.path)) == []
    lines = report_lines(result, project)
    assert lines[:2] == ["Pins (requirements.txt):", "  no change"], lines
    assert "Artifacts:" in lines and lines[lines.index("Artifacts:") + 1] == "  no change", lines

    project.requirements_in(add=["beta"])
    assert_ok(project.freeze())
    first = source_digest(project.path)
    assert_ok(project.freeze())
    assert diff_digests(first, source_digest(project.path)) == []


@slow
def test_freeze_with_inputs_unchanged_skips_resolution_and_an_edit_resolves_again(project):
    assert_ok(project.freeze())
    first = source_digest(project.path)
    result = assert_ok(project.freeze())
    skipped = [line for line in result.stdout.splitlines() if "resolution skipped" in line]
    assert len(skipped) == 1 and skipped[0].startswith("==> inputs unchanged since the lock was made"), describe(result)
    assert "pip-compile" not in result.stdout and "==> downloading" not in result.stdout, describe(result)
    assert "==> done: no change:" in result.stdout, describe(result)
    lines = report_lines(result, project)
    assert lines[:2] == ["Pins (requirements.txt):", "  no change"], lines
    assert diff_digests(first, source_digest(project.path)) == []
    assert_ok(project.make("check"))

    # An edit of requirements.in (a comment: the pins cannot move) or of the lock changes the digest: resolved.
    project.requirements_in(add=["# a comment"])
    result = assert_ok(project.freeze())
    assert "==> resolving every target: inputs changed" in result.stdout, describe(result)
    assert "==> pip-compile for Python" in result.stdout, describe(result)
    lock = project.path / "requirements.txt"
    lock.write_text(lock.read_text(encoding="utf-8").replace("# via", "#  via", 1), encoding="utf-8")
    result = assert_ok(project.freeze())
    assert "==> pip-compile for Python" in result.stdout, describe(result)
    assert "#  via" not in project.read("requirements.txt")
    assert "resolution skipped" in assert_ok(project.freeze()).stdout


# --- make freeze-upgrade -------------------------------------------------------------------------------------


@slow
def test_freeze_keeps_pins_and_freeze_upgrade_moves_them_with_a_readable_report(project, tmp_path, payload_wheels):
    # Offline on every clean clone: virtualenv's wheels come from virtualenv.py's payload, and a newer pip
    # (the real one, saying it is 26.3.1 or so) is published so that the seed moves too.
    old, new = project.index.wheel("alpha", "1.0"), project.index.add("alpha", "2.0", content="two")
    old_pip = project.pins()["pip"]
    new_pip_version = old_pip.version + ".1"
    new_pip = project.index.add_file(rebuild_with_version(
        project.path / "requirements" / f"pip-{old_pip.version}-py3-none-any.whl", tmp_path / "made",
        new_pip_version))
    old_payload = virtualenv_py.decoded_payload(project.read("virtualenv.py"))[1]
    assert_ok(project.freeze())
    assert project.pins()["alpha"].version == "1.0" and project.pins()["pip"].version == old_pip.version
    assert (project.path / "requirements" / old.name).exists()

    result = assert_ok(project.freeze_upgrade(PAYLOAD_BYTES))
    assert "==> regenerating virtualenv.py" in result.stdout, describe(result)
    assert project.pins()["alpha"].version == "2.0"
    assert "alpha==2.0\n" in project.read("requirements.pins")
    assert new.name in project.artifacts() and old.name not in project.artifacts()
    lines = report_lines(result, project)
    assert "  upgraded:  alpha 1.0 -> 2.0" in lines, lines
    assert f"  upgraded:  pip {old_pip.version} -> {new_pip_version}" in lines, lines
    assert artifact_line(lines, "+", f"requirements/{new.name}").endswith(f"({size_text(new)})")
    assert artifact_line(lines, "-", f"requirements/{old.name}").endswith(f"({size_text(old)})")

    # The seed is the new pip, the lock's own artifact, recorded in SHA256SUMS.
    seeds = sorted(path.name for path in (project.path / "virtualenv_support").iterdir())
    assert seeds == ["SHA256SUMS", new_pip.name], seeds
    assert sha256_file(project.path / "virtualenv_support" / new_pip.name) == sha256_file(new_pip)
    assert sha256_file(new_pip) in project.pins()["pip"].hashes
    artifact_line(lines, "+", f"virtualenv_support/{new_pip.name}")

    # virtualenv.py was regenerated from the index's virtualenv wheels: bootstrap_tools/virtualenv.txt pins their
    # hashes, the payload carries the same files as before, and check proves the file authentic.
    locked = project.read("bootstrap_tools/virtualenv.txt")
    for wheel in project.index.files.glob("*.whl"):
        name = wheel.name.split("-")[0].replace("_", "-")
        if f"\n{name}=={wheel.name.split('-')[1]}" in locked and name not in ("packaging", "typing-extensions"):
            assert sha256_file(wheel) in locked, wheel.name
    assert virtualenv_py.decoded_payload(project.read("virtualenv.py"))[1] == old_payload
    # Other bytes for virtualenv.py's locked versions, accepted, are reported like the lock's own.
    virtualenv = next(wheel for wheel in payload_wheels if wheel.name.startswith("virtualenv-"))
    version = virtualenv.name.split("-")[1]
    assert any(line.startswith(f"  CHANGED:   virtualenv {version} bootstrap_tools/virtualenv.txt sha256:")
               and line.endswith(f" -> sha256:{sha256_file(virtualenv)} (accepted: --accept-changed-hashes)")
               for line in lines), lines
    assert_ok(project.make("check"))
    # And the new seed builds the ve.
    built(project.make("ve"))
    assert_ok(project.make("check"))


@slow
def test_freeze_upgrade_failing_at_the_virtualenv_step_changes_nothing(project, tmp_path):
    # An index without virtualenv's wheels: the lock and the downloads succeed, regenerating virtualenv.py fails.
    project.index = make_index(tmp_path / "index-without-virtualenv")
    project.index.add("alpha", "2.0", content="two")
    before = managed_digest(project.path)
    result = project.freeze_upgrade()
    assert_one_error(result, "locking virtualenv (bootstrap_tools.virtualenv_py lock) failed", "Nothing was changed")
    steps = [line for line in result.stdout.splitlines() if line.startswith("==> ")]
    assert steps[-2:] == ["==> refreshing the seed wheel for virtualenv_support/",
                          "==> regenerating virtualenv.py from the newest virtualenv"], describe(result)
    assert any(line.startswith("==> downloaded ") and "alpha==2.0" in line for line in steps), describe(result)
    assert diff_digests(before, managed_digest(project.path)) == []


@slow
def test_other_bytes_for_virtualenv_py_s_locked_wheels_stop_freeze_upgrade(project):
    # The index serves virtualenv.py's locked versions with other bytes (the payload wheels, rebuilt here): no
    # new version anywhere, so without trust on first use the report would say "Pins: no change", ~ virtualenv.py.
    before = managed_digest(project.path)
    result = project.freeze_upgrade()
    assert_one_error(result, "other bytes for", "bootstrap_tools/virtualenv.txt", "in virtualenv.py's pins",
                     "make freeze-upgrade ACCEPT_CHANGED_HASHES=1", "Nothing was changed")
    assert diff_digests(before, managed_digest(project.path)) == []


# --- failures change nothing ---------------------------------------------------------------------------------


@slow
def test_index_losing_a_file_after_locking_changes_nothing_and_prunes_nothing(project, tmp_path):
    # The index serves metadata and hashes apart from the wheels (PEP 658, JSON API): locking never opens a wheel,
    # so the lock succeeds and only the download finds the file gone.
    project.index = make_index(tmp_path / "index-with-metadata", metadata=True)
    project.index.wheel("gamma", "1.0").unlink()
    project.requirements_in(add=["beta"], remove=["alpha"])
    before = managed_digest(project.path)
    result = project.freeze()
    error = assert_one_error(result, "download", "make freeze", "Nothing was changed")
    assert "gamma" in error
    assert "==> downloading" in result.stdout, describe(result)  # it failed after locking, not while locking
    assert diff_digests(before, managed_digest(project.path)) == []
    assert (project.path / "requirements" / "alpha-1.0-py3-none-any.whl").exists()


@slow
def test_unknown_requirement_fails_with_one_error_naming_it(project):
    project.requirements_in(add=["no-such-package"])
    before = managed_digest(project.path)
    result = project.freeze()
    assert_one_error(result, "no-such-package", "requirements.in", "Nothing was changed")
    assert diff_digests(before, managed_digest(project.path)) == []


# --- trust on first use: a locked version keeps its bytes -----------------------------------------------------


def republish(index, tmp_path, name, version, **wheel):
    """Serve other bytes under the same file name for `name` `version`; return the new file's sha256."""
    made = build_wheel(tmp_path / "republished", name, version, **wheel)
    target = index.files / made.name
    target.unlink()
    shutil.copyfile(made, target)
    index.write_pages()
    return sha256_file(target)


@slow
def test_freeze_refuses_other_bytes_for_a_locked_version_naming_file_and_both_hashes(project, tmp_path):
    artifact = project.path / "requirements" / "alpha-1.0-py3-none-any.whl"
    old_hash = sha256_file(artifact)
    new_hash = republish(project.index, tmp_path, "alpha", "1.0", content="re-uploaded")
    resolve_again(project)
    before = managed_digest(project.path)
    result = project.freeze()
    assert_one_error(result, "alpha==1.0", "requirements/alpha-1.0-py3-none-any.whl", old_hash, new_hash,
                     "ACCEPT_CHANGED_HASHES=1", "Nothing was changed")
    assert diff_digests(before, managed_digest(project.path)) == []


@slow
def test_freeze_accepts_changed_bytes_only_when_told_and_reports_them(project, tmp_path):
    artifact = project.path / "requirements" / "alpha-1.0-py3-none-any.whl"
    old_hash = sha256_file(artifact)
    new_hash = republish(project.index, tmp_path, "alpha", "1.0", content="re-uploaded")
    resolve_again(project)
    result = project.freeze("ACCEPT_CHANGED_HASHES=1")
    assert_ok(result)
    assert project.pins()["alpha"].hashes == {new_hash}
    assert sha256_file(artifact) == new_hash
    lines = report_lines(result, project)
    assert (f"  CHANGED:   alpha 1.0 requirements/alpha-1.0-py3-none-any.whl sha256:{old_hash} -> sha256:{new_hash} "
            "(accepted: --accept-changed-hashes)") in lines, lines
    artifact_line(lines, "~", "requirements/alpha-1.0-py3-none-any.whl")
    assert_ok(project.make("check"))


@slow
def test_freeze_reports_new_hashes_beside_the_locked_ones(project, tmp_path):
    old_hash = sha256_file(project.path / "requirements" / "alpha-1.0-py3-none-any.whl")
    extra = project.index.add_file(build_wheel(tmp_path / "extra", "alpha", "1.0", tag="py2.py3-none-any",
                                               content="another file of 1.0"))
    resolve_again(project)
    result = assert_ok(project.freeze())
    assert project.pins()["alpha"].hashes == {old_hash, sha256_file(extra)}
    assert "alpha-1.0-py3-none-any.whl" in project.artifacts()  # the locked file is kept, nothing downloaded
    assert extra.name not in project.artifacts()
    lines = report_lines(result, project)
    assert f"  new hash:  alpha 1.0 sha256:{sha256_file(extra)}" in lines, lines


# --- what freeze runs: nothing unpinned -------------------------------------------------------------------------


@slow
def test_freeze_never_runs_the_setup_py_of_an_sdist_whose_project_has_a_wheel(project, tmp_path):
    # Resolution is wheels only; only a name with no wheel at all is resolved from its sdist (tests/test_sdists.py).
    planted = tmp_path / "setup-py-ran"
    project.index.add_file(build_sdist(tmp_path / "sdists", "withwheel", "1.0",
                                       f"import pathlib\npathlib.Path({str(planted)!r}).write_text('ran')\n"
                                       "from setuptools import setup\nsetup(name='withwheel', version='1.0')\n"))
    project.index.add("withwheel", "1.0")
    project.requirements_in(add=["withwheel"])
    result = assert_ok(project.freeze())
    assert not planted.exists(), "pip-compile ran the sdist's setup.py"
    assert "withwheel-1.0-py3-none-any.whl" in project.artifacts(), describe(result)
    assert not [name for name in project.artifacts() if name.endswith(".tar.gz")]
    assert not (project.path / "requirements-build.txt").exists()


@slow
def test_freeze_reuses_an_artifact_only_under_its_own_name(project):
    wheelhouse = project.path / "requirements"
    pluggy = next(wheelhouse.glob("pluggy-*.whl"))
    digest = sha256_file(pluggy)
    pluggy.rename(wheelhouse / "zzz-9.9-py3-none-any.whl")  # pluggy's bytes under another project's name
    result = assert_ok(project.freeze())
    assert re.search(r"^==> downloaded (.*, )?pluggy==", result.stdout, re.M), describe(result)
    assert sha256_file(pluggy) == digest
    assert not (wheelhouse / "zzz-9.9-py3-none-any.whl").exists()
    assert_ok(project.make("check"))


@slow
def test_freeze_keeps_the_real_wheel_and_prunes_its_backup_copy(project):
    wheelhouse = project.path / "requirements"
    pluggy = next(wheelhouse.glob("pluggy-*.whl"))
    backup = wheelhouse / (pluggy.name + ".orig")
    shutil.copyfile(pluggy, backup)
    before = project.read("requirements.txt")
    result = assert_ok(project.freeze())
    assert "==> downloading" not in result.stdout, describe(result)  # the real wheel is reused, not refetched
    assert pluggy.exists() and not backup.exists()
    assert without_inputs_line(project.read("requirements.txt")) == without_inputs_line(before)
    assert_ok(project.make("check"))


# --- hermetic ------------------------------------------------------------------------------------------------


@slow
def test_ambient_pip_variables_never_reach_the_lock_or_the_downloads(project, tmp_path):
    shadow = Index(tmp_path / "shadow")
    shadow.add("alpha", "9.9", content="shadow")
    shadow.add("beta", "7.0", content="shadow")
    shadow.add("gamma", "1.0", content="shadow")  # same version, other bytes: its hash must not appear
    links = tmp_path / "shadow-links"
    for name, version in (("alpha", "9.9"), ("beta", "7.0"), ("gamma", "1.0")):
        build_wheel(links, name, version, content="find-links")
    env = make_env(
        PIP_INDEX_URL=shadow.url,
        PIP_EXTRA_INDEX_URL=f"{shadow.url} https://maintainer:s3cr3t-token@127.0.0.1:9/simple/",
        PIP_FIND_LINKS=str(links),
        PIP_NO_BINARY="gamma",
    )
    project.requirements_in(add=["beta"])
    result = assert_ok(project.freeze(env=env))

    pins = project.pins()
    assert (pins["alpha"].version, pins["beta"].version, pins["gamma"].version) == ("1.0", "1.1", "1.0")
    assert pins["gamma"].hashes == {sha256_file(project.index.wheel("gamma", "1.0"))}
    for name in ("gamma-1.0-py3-none-any.whl", "beta-1.1-py3-none-any.whl"):
        assert sha256_file(project.path / "requirements" / name) == sha256_file(project.index.files / name)
    for name in ("requirements.txt", "requirements.pins", ".bootstrap/freeze-report.txt"):
        text = project.read(name)
        for leak in ("s3cr3t", "maintainer", "127.0.0.1", "file://", str(tmp_path), "index-url", "find-links"):
            assert leak not in text, f"{leak!r} in {name}:\n{text}"
    assert "s3cr3t" not in result.stdout + result.stderr


# --- make check ----------------------------------------------------------------------------------------------


def lock_without_hashes(text, name):
    """The lock with `name`'s --hash continuation lines removed (a hand edit)."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith(f"{name}=="):
            out.append(line.rstrip(" \\"))
            skipping = True
        elif skipping and line.strip().startswith("--hash"):
            continue
        else:
            skipping = False
            out.append(line)
    return "\n".join(out) + "\n"


def wheel_of(root, name):
    matches = sorted((root / "requirements").glob(f"{name}-*.whl"))
    assert len(matches) == 1, matches
    return matches[0]


def edit_payload(path):
    """Change one character in the middle of virtualenv.py's base64 payload."""
    lines = path.read_text().splitlines(keepends=True)
    start = lines.index('PAYLOAD = b"""\n')
    middle = start + (len(lines) - start) // 2
    line = lines[middle]
    lines[middle] = ("B" if line[0] != "B" else "C") + line[1:]
    path.write_text("".join(lines))


def plant_problems(root):
    """Break the tree in every way check knows; return {problem: (words its line must hold)}."""
    stray = root / "requirements" / "stray-1.0-py3-none-any.whl"
    stray.write_bytes(b"not referenced")
    missing = wheel_of(root, "iniconfig")
    missing.unlink()
    tampered = wheel_of(root, "pluggy")
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    lock = root / "requirements-dev.txt"  # this repository's runtime set is empty: the dev set's lock
    text = lock_without_hashes(lock.read_text(), "execnet")
    text = re.sub(r"^mccabe==", "mccabe>=", text, flags=re.MULTILINE)
    lock.write_text(text)
    seed = next((root / "virtualenv_support").glob("pip-*.whl"))
    seed.write_bytes(seed.read_bytes() + b"\0")
    edit_payload(root / "virtualenv.py")
    return {
        "stray file": (f"requirements/{stray.name}", "not referenced", "make freeze"),
        "missing artifact": ("no artifact for iniconfig==", "make freeze"),
        "tampered artifact": (f"requirements/{tampered.name}", "does not match", "git checkout", "make freeze"),
        "hash-less line": ("execnet==", "no --hash", "make freeze"),
        "unpinned line": ("mccabe>=", "not pinned", "make freeze"),
        "tampered seed": (f"virtualenv_support/{seed.name}", "SHA256SUMS", "make freeze-upgrade"),
        "edited virtualenv.py": ("virtualenv.py", "payload", "make freeze-upgrade"),
    }


def test_check_passes_on_the_clean_tree(checkout):
    assert check.find_problems(checkout) == []


def test_check_names_every_planted_problem_with_its_fix(checkout):
    expected = plant_problems(checkout)
    problems = check.find_problems(checkout)
    # The artifact of the hash-less line is not called a stray: that line is the problem.
    assert not [problem for problem in problems if "execnet-" in problem], problems
    for what, words in expected.items():
        matching = [problem for problem in problems if all(word in problem for word in words)]
        assert matching, f"{what}: no line with {words} in:\n" + "\n".join(problems)

    # The command line: every problem listed, then one ERROR line; exit 1, no traceback.
    result = subprocess.run([sys.executable, "-E", "-s", "-m", "bootstrap_tools.check", str(checkout)], cwd=REPO,
                            capture_output=True, text=True, env=make_env())
    assert_one_error(result, f"{len(problems)} problem(s)")
    assert [line[4:] for line in result.stdout.splitlines() if line.startswith("  - ")] == problems


def test_check_reports_a_malformed_sha256sums_line_instead_of_crashing(checkout):
    sums = checkout / "virtualenv_support" / "SHA256SUMS"
    sums.write_text(sums.read_text() + "garbage\n")
    problems = check.find_problems(checkout)
    assert any("SHA256SUMS" in problem and "make freeze-upgrade" in problem for problem in problems), problems


@slow
def test_make_check_lists_all_problems_in_requirements(project):
    assert_ok(project.make("check"))
    root = project.path
    (root / "requirements" / "stray-1.0-py3-none-any.whl").write_bytes(b"stray")
    wheel_of(root, "alpha").unlink()
    tampered = wheel_of(root, "pluggy")
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    result = project.make("check")
    assert_one_error(result, "3 problem(s)")
    for words in (("requirements/stray-1.0-py3-none-any.whl", "make freeze"), ("alpha==1.0", "make freeze"),
                  (f"requirements/{tampered.name}", "git checkout")):
        assert any(all(word in line for word in words) for line in result.stdout.splitlines()), describe(result)


# --- the real index ------------------------------------------------------------------------------------------


@pytest.mark.network
@slow
def test_freeze_upgrade_against_the_real_index(checkout):
    built(run_make(checkout, "ve"))
    result = assert_ok(run_make(checkout, "freeze-upgrade"))
    assert "Pins (requirements.txt):" in result.stdout, describe(result)
    assert_ok(run_make(checkout, "check"))


# --- units: the report and the lock parser -------------------------------------------------------------------


def lock_text(*pins):
    return "".join(f"{pin} \\\n    --hash=sha256:{'0' * 64}\n    # via -r requirements.in\n" for pin in pins)


def test_report_lists_upgraded_added_removed_and_sizes():
    before = lock_text("alpha==1.0", "beta==1.0", "delta==3.0")
    after = lock_text("alpha==2.0", "delta==3.0", "gamma==1.0")
    before_files = {"requirements/alpha-1.0-py3-none-any.whl": (1000, "a1"),
                    "requirements/beta-1.0-py3-none-any.whl": (2500, "b1"),
                    "requirements/delta-3.0-py3-none-any.whl": (300, "d3"),
                    "virtualenv.py": (10_000, "v1")}
    after_files = {"requirements/alpha-2.0-py3-none-any.whl": (1200, "a2"),
                   "requirements/delta-3.0-py3-none-any.whl": (300, "d3"),
                   "requirements/gamma-1.0-py3-none-any.whl": (50, "g1"),
                   "virtualenv.py": (12_345, "v2")}
    text = report.render(before, after, before_files, after_files)
    assert text == (
        "Pins (requirements.txt):\n"
        "  upgraded:  alpha 1.0 -> 2.0\n"
        "  added:     gamma 1.0\n"
        "  removed:   beta 1.0\n"
        "Artifacts:\n"
        "  - requirements/alpha-1.0-py3-none-any.whl (1,000 bytes)\n"
        "  + requirements/alpha-2.0-py3-none-any.whl (1,200 bytes)\n"
        "  - requirements/beta-1.0-py3-none-any.whl (2,500 bytes)\n"
        "  + requirements/gamma-1.0-py3-none-any.whl (50 bytes)\n"
        "  ~ virtualenv.py (10,000 -> 12,345 bytes)\n"
        "  net change in repository bytes: +95 (files in requirements/, virtualenv_support/ and virtualenv.py: "
        "4 -> 4)\n"
    )


def test_report_of_no_change_says_so():
    lock = lock_text("alpha==1.0")
    files = {"requirements/alpha-1.0-py3-none-any.whl": (1000, "a1")}
    assert report.render(lock, lock, files, dict(files)) == (
        "Pins (requirements.txt):\n  no change\nArtifacts:\n  no change\n"
        "  net change in repository bytes: +0 (files in requirements/, virtualenv_support/ and virtualenv.py: 1 -> 1)\n"
    )


def test_report_of_a_first_freeze_lists_everything_added():
    text = report.render("", lock_text("alpha==1.0"), {}, {"requirements/alpha-1.0-py3-none-any.whl": (10, "a")})
    assert "  added:     alpha 1.0\n" in text
    assert "net change in repository bytes: +10 (files in requirements/, virtualenv_support/ and virtualenv.py: " \
           "0 -> 1)" in text


def test_lockfile_parse_reads_pins_and_lists_bad_lines():
    text = (
        "# Generated by `make freeze` (bootstrap_tools/freeze.py) from requirements.in; do not edit.\n"
        "# targets: 3.11 3.12 3.13\n"
        "Alpha_Pkg==1.0 \\\n"
        "    --hash=sha256:" + "a" * 64 + " \\\n"
        "    --hash=sha256:" + "b" * 64 + "\n"
        "    # via -r requirements.in\n"
        "tomli==2.0.1 ; python_version < \"3.11\" \\\n"
        "    --hash=sha256:" + "c" * 64 + "\n"
        "nohash==1.0\n"
        "unpinned>=1.0 --hash=sha256:" + "d" * 64 + "\n"
        "wild==1.* --hash=sha256:" + "e" * 64 + "\n"
        "md5only==1.0 --hash=md5:" + "f" * 32 + "\n"
        "not a requirement!\n"
    )
    pins, problems = lockfile.parse(text)
    assert [(pin.name, pin.version, pin.marker) for pin in pins] == [
        ("alpha-pkg", "1.0", ""), ("tomli", "2.0.1", 'python_version < "3.11"')]
    assert pins[0].hashes == {"a" * 64, "b" * 64}
    assert str(pins[0]) == "alpha-pkg==1.0"
    expected = [("nohash==1.0", "has no --hash=sha256"), ("unpinned>=1.0", "is not pinned with =="),
                ("wild==1.*", "is not pinned with =="), ("md5only==1.0", "has the option `--hash=md5:"),
                ("not", "is not pinned with ==")]
    assert len(problems) == len(expected), problems
    for problem, (line, message) in zip(problems, expected):
        assert problem.line.split()[0] == line and message in problem.message, problem
    assert lockfile.targets(text) == ["3.11", "3.12", "3.13"]
    assert lockfile.targets("alpha==1.0\n") == []


def test_lockfile_parse_reads_this_repositorys_lock():
    text = (REPO / "requirements-dev.txt").read_text()
    pins, problems = lockfile.parse(text)
    assert problems == []
    assert {pin.name for pin in pins} >= {"pip", "packaging", "pytest"}
    assert lockfile.parse((REPO / "requirements.txt").read_text()) == ([], [])  # the standard library alone
    assert all(pin.hashes for pin in pins)


@pytest.mark.parametrize("case", ["same", "other-pythons", "other-platforms", "asked", "no-header"])
def test_a_freeze_keeps_the_locks_targets_and_platforms_unless_retarget_is_asked(case):
    """Issue 28, item 2: a setting lost on the way (another shell, a Makefile without adopt's line) never widens or
    narrows the lock silently: one ERROR naming both, unless RETARGET=1."""
    from types import SimpleNamespace

    from bootstrap_tools import freeze
    from bootstrap_tools.run import ToolError

    lock = "# targets: 3.10 3.11\n# platforms: linux-x86_64\n" if case != "no-header" else "alpha==1\n"
    args = SimpleNamespace(targets=["3.10", "3.11"], platforms=["linux-x86_64"], retarget=case == "asked")
    if case == "other-pythons":
        args.targets = ["3.10", "3.11", "3.12", "3.13"]
    if case in ("other-platforms", "asked"):
        args.platforms = []
    if case in ("other-pythons", "other-platforms"):
        with pytest.raises(ToolError) as raised:
            freeze.check_retarget(args, lock)
        setting = "TARGET_PYTHONS" if case == "other-pythons" else "TARGET_PLATFORMS"
        assert setting in str(raised.value) and "RETARGET=1" in str(raised.value), raised.value
        assert ("3.10 3.11" in str(raised.value)) == (case == "other-pythons")
    else:
        freeze.check_retarget(args, lock)
