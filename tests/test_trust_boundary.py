"""Nothing `make ve` runs, trusts or deletes comes from an unverified place (issue 24; docs/reliability.md rows
89-): the freeze journal is data checked against a closed list, never instructions followed."""

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

from bootstrap_build import installed, journal, lockfile
from conftest import assert_one_error, built, describe, run_make


def write_journal(root, moves):
    (root / ".bootstrap").mkdir(exist_ok=True)
    (root / journal.SWITCH_JOURNAL).write_text(json.dumps({"moves": moves}))


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "checkout"
    (root / "requirements").mkdir(parents=True)
    (root / "requirements" / "alpha-1.0-py3-none-any.whl").write_bytes(b"old")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("mine\n")
    return root, outside


def staged_put(root, path, data):
    parent, name = os.path.split(path)
    staged = f"{parent}/.{name}{journal.STAGED_SUFFIX}".lstrip("/")
    (root / staged).write_bytes(data)
    return {"staged": staged, "path": path, "sha256": hashlib.sha256(data).hexdigest()}


@pytest.mark.parametrize("name", ["absolute", "dot-dot", "not-a-freeze-file", "symlink-out", "staged-elsewhere"])
def test_a_journal_naming_anything_but_a_freezes_files_is_refused_whole_and_touches_nothing(tree, name, capsys):
    root, outside = tree
    good = staged_put(root, "requirements/beta-1.0-py3-none-any.whl", b"new")
    bad = {
        "absolute": {"path": str(outside / "precious.txt")},
        "dot-dot": {"path": "requirements/../../outside/precious.txt"},
        "not-a-freeze-file": {"path": "Makefile"},
        "symlink-out": {"path": "virtualenv_support/precious.txt"},
        "staged-elsewhere": {"staged": "../outside/precious.txt", "path": "requirements.txt", "sha256": "0" * 64},
    }[name]
    if name == "symlink-out":
        os.symlink(outside, root / "virtualenv_support")
    (root / "Makefile").write_text("all:\n")
    write_journal(root, [good, bad])
    with pytest.raises(SystemExit):
        journal.complete_switch(str(root))
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and "is not the journal of a `make freeze`" in err and err.count("\n") == 1, err
    assert (outside / "precious.txt").read_text() == "mine\n"
    assert (root / "Makefile").exists()
    assert not (root / "requirements" / "beta-1.0-py3-none-any.whl").exists()  # not even the sound move was done
    assert (root / journal.SWITCH_JOURNAL).exists()


def test_a_sound_journal_is_completed(tree):
    root, _ = tree
    write_journal(root, [staged_put(root, "requirements/beta-1.0-py3-none-any.whl", b"new"),
                         {"path": "requirements/alpha-1.0-py3-none-any.whl"}])
    assert journal.complete_switch(str(root), resumed=False) == 2
    assert sorted(os.listdir(root / "requirements")) == ["beta-1.0-py3-none-any.whl"]


def test_make_ve_with_a_hostile_journal_deletes_nothing_outside(built_checkout, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    write_journal(built_checkout, [{"path": str(victim)}])
    try:
        result = run_make(built_checkout, "ve", "FORCE=1")
        assert_one_error(result, "is not the journal of a `make freeze`")
        assert victim.read_text() == "keep me\n"
    finally:
        (built_checkout / journal.SWITCH_JOURNAL).unlink()
    built(run_make(built_checkout, "ve", "FORCE=1"))


# --- the dependency check honours extras ---------------------------------------------------------------------------


def fake_dist(site, name, version, requires=()):
    dist = site / f"{name}-{version}.dist-info"
    dist.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {line}" for line in requires]
    (dist / "METADATA").write_text("\n".join(lines) + "\n\n")


MISSING = 'alpha 1.0 requires beta; extra == "web", which is not installed'


@pytest.mark.parametrize("pins,gamma_requires,expected", [
    ([lockfile.Pin("alpha", "1.0", set())], [], []),
    ([lockfile.Pin("alpha", "1.0", set(), extras="[web]")], [], [MISSING]),
    ([], ["alpha[web]"], [MISSING]),  # asked for by another distribution's requirement
])
def test_the_dependency_check_honours_the_extras_the_lock_and_its_requirements_ask_for(
        tmp_path, monkeypatch, pins, gamma_requires, expected):
    site = tmp_path / "slot" / "lib" / ("python%d.%d" % sys.version_info[:2]) / "site-packages"
    real_site = next(path for path in map(os.path.realpath, sys.path)
                     if path.endswith("site-packages") and os.path.isdir(os.path.join(path, "pip")))
    site.mkdir(parents=True)
    (site / "pip").symlink_to(os.path.join(real_site, "pip"))
    (tmp_path / "slot" / "bin").mkdir()
    (tmp_path / "slot" / "bin" / "python").symlink_to(sys.executable)
    fake_dist(site, "alpha", "1.0", ['beta; extra == "web"'])
    fake_dist(site, "gamma", "1.0", gamma_requires)
    check = installed.start_dependency_check(str(tmp_path / "slot"), dict(os.environ), pins)
    output, _ = check.communicate()
    assert output.splitlines() == expected + ["checked"], output


# --- no bytecode decides what make ve runs -----------------------------------------------------------------------


def planted_pyc(source):
    """A checked-hash .pyc that claims `source`'s hash in its header but holds other code."""
    import importlib.util
    import marshal

    code = compile("import sys; print('PLANTED'); sys.exit(0)\n", "planted", "exec")
    pyc = Path(importlib.util.cache_from_source(str(source)))
    pyc.parent.mkdir(exist_ok=True)
    pyc.write_bytes(importlib.util.MAGIC_NUMBER + b"\3\0\0\0" + importlib.util.source_hash(source.read_bytes())
                    + marshal.dumps(code))
    return pyc


def test_bytecode_beside_bootstrap_py_or_its_build_never_runs(built_checkout):
    planted = [planted_pyc(path) for path in [built_checkout / "bootstrap.py",
                                              *sorted((built_checkout / "bootstrap_build").glob("*.py"))]]
    try:
        for args in (("ve",), ("ve", "FORCE=1"), ("verify",)):
            result = run_make(built_checkout, *args)
            assert result.returncode == 0 and "PLANTED" not in result.stdout + result.stderr, describe(result)
    finally:
        for pyc in planted:
            pyc.unlink()
