"""Nothing a build runs or installs comes from the build area: bytecode is made by each build from verified bytes,
never taken from a cache, `make verify` checks every .pyc against a compile of its verified source, and a missing or
extra distribution is one ERROR."""

import json
import marshal
import os
import sys
from pathlib import Path

import pytest

from bootstrap_build import installed, layout, lockfile
from conftest import (
    assert_ok, assert_pip_check_clean, assert_ve_works, built, diff_digests, run_make, tree_digest,
)

slow = pytest.mark.slow


# --- the check of what was installed, in-process ------------------------------------------------------------------


def fake_slot(tmp_path, present, reported):
    """A slot whose site-packages holds `present` ({name: version}) and pip's report listing `reported`."""
    slot = tmp_path / "slot"
    site = Path(layout.site_packages(str(slot)))
    for name, version in present.items():
        dist = site / f"{name}-{version}.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
        (dist / "RECORD").write_text("")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"install": [{"metadata": {"name": name, "version": version}}
                                              for name, version in reported.items()]}))
    return str(slot), str(report)


def pins(**versions):
    return [lockfile.Pin(name, version, {"0" * 64}) for name, version in versions.items()]


def test_the_installed_distributions_are_the_locks_pins(tmp_path):
    slot, report = fake_slot(tmp_path, {"pip": "26.3", "alpha": "1.0"}, {"alpha": "1.0"})
    assert installed.installed_problems(slot, pins(pip="26.3", alpha="1.0"), report) == []


@pytest.mark.parametrize("present,expected", [
    ({"pip": "26.3"}, "alpha 1.0 is missing"),
    ({"pip": "26.3", "alpha": "1.0", "planted": "6.6"}, "planted 6.6 is installed, but is not one of the lock's"),
    ({"pip": "26.3", "alpha": "0.9"}, "alpha 0.9 is installed where 1.0 was expected"),
])
def test_a_missing_extra_or_other_version_is_one_error(tmp_path, capsys, present, expected):
    slot, report = fake_slot(tmp_path, present, {"alpha": "1.0"})
    with pytest.raises(SystemExit):
        installed.check_env(slot, pins(pip="26.3", alpha="1.0"), report, "checked\n")
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and expected in errors[0], errors


def test_a_distribution_without_record_is_named(tmp_path):
    slot, report = fake_slot(tmp_path, {"pip": "26.3", "alpha": "1.0"}, {"alpha": "1.0"})
    os.unlink(Path(layout.site_packages(slot)) / "alpha-1.0.dist-info" / "RECORD")
    assert installed.installed_problems(slot, pins(pip="26.3", alpha="1.0"), report) == [
        "alpha-1.0.dist-info has no RECORD"]


# --- scenarios ------------------------------------------------------------------------------------------------------


@slow
def test_nothing_in_the_build_area_reaches_a_build_and_verify_names_changed_bytecode(checkout):
    built(run_make(checkout, "ve"))
    cold = tree_digest(checkout / ".ve-a")
    # What caches of older versions held, planted where they lived: never read.
    for kind in ("seed", "virtualenv"):
        planted = checkout / ".bootstrap" / "cache" / kind / ("0" * 32) / "pip"
        planted.mkdir(parents=True)
        (planted / "__init__.py").write_text("raise SystemExit('planted')\n")
    built(run_make(checkout, "ve", "FORCE=1"))
    built(run_make(checkout, "ve", "FORCE=1"))  # .ve-a again, at the path of the cold build
    assert diff_digests(cold, tree_digest(checkout / ".ve-a")) == []
    assert_ve_works(checkout)
    assert_pip_check_clean(checkout)
    # A .pyc whose header keeps its source's hash but whose code was changed, and one with no source: named.
    site = next((checkout / ".ve-a" / "lib").glob("python*/site-packages"))
    pyc = next((site / "pip" / "__pycache__").glob("__init__.*.pyc"))
    data = pyc.read_bytes()
    pyc.write_bytes(data[:16] + marshal.dumps(compile("raise SystemExit('planted')\n", str(pyc), "exec")))
    (site / "__pycache__").mkdir(exist_ok=True)
    (site / "__pycache__" / f"planted.{sys.implementation.cache_tag}.pyc").write_bytes(data)
    result = run_make(checkout, "verify")
    assert result.returncode != 0, result.stdout
    assert "pip/__pycache__/__init__" in result.stdout and "is not what compiling its source gives" in result.stdout
    assert "planted" in result.stdout and "whose source no RECORD lists" in result.stdout
    pyc.write_bytes(data)
    (site / "__pycache__" / f"planted.{sys.implementation.cache_tag}.pyc").unlink()
    assert_ok(run_make(checkout, "verify"))
    cleaned = run_make(checkout, "clean")
    assert_ok(cleaned)
    assert ".bootstrap/cache" in cleaned.stdout
    assert not (checkout / ".bootstrap" / "cache").exists()
