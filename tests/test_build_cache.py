"""The build area's caches (.bootstrap/cache/: virtualenv.py's unpacked tree, the compiled seed pip) and the check
of what a build installed: a damaged or half-written cache entry is found and built again, a cache hit builds the
same bytes as a cold build, `make clean` removes the caches, and a missing or extra distribution is one ERROR."""

import json
import os
import shutil
from pathlib import Path

import pytest

import bootstrap
from conftest import (
    assert_ok, assert_pip_check_clean, assert_ve_works, built, diff_digests, run_make, tree_digest,
)

slow = pytest.mark.slow


# --- cache entries, in-process ------------------------------------------------------------------------------------


@pytest.fixture
def entry(tmp_path, monkeypatch):
    """A sound cache entry of kind `seed` under a fake checkout's .bootstrap/cache/."""
    monkeypatch.setattr(bootstrap, "ROOT", str(tmp_path))
    monkeypatch.setattr(bootstrap, "CACHE", str(tmp_path / ".bootstrap" / "cache"))
    tree = tmp_path / "scratch" / "tree"
    (tree / "pkg" / "__pycache__").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("VALUE = 1\n")
    (tree / "pkg" / "__pycache__" / "__init__.pyc").write_bytes(b"\0" * 32)
    path = Path(bootstrap.keep_entry("seed", "d" * 64, str(tree)))
    assert path == Path(bootstrap.entry_path("seed", "d" * 64)) and not tree.exists()
    return path


def test_a_sound_entry_is_used_and_copied_file_by_file(entry, tmp_path):
    assert bootstrap.valid_entry("seed", "d" * 64) == str(entry)
    target = tmp_path / "site"
    assert bootstrap.entry_problem(str(entry), copy_to=str(target)) is None
    assert (target / "pkg" / "__init__.py").read_text() == "VALUE = 1\n"
    assert not (target / bootstrap.MANIFEST).exists()


@pytest.mark.parametrize("damage", ["changed", "truncated", "missing", "extra", "no-manifest", "bad-manifest"])
def test_a_damaged_or_half_written_entry_is_never_used_and_is_removed(entry, capsys, damage):
    source = entry / "pkg" / "__init__.py"
    if damage == "changed":
        source.write_text("VALUE = 2\n")
    elif damage == "truncated":
        source.write_text("")
    elif damage == "missing":
        source.unlink()
    elif damage == "extra":
        (entry / "pkg" / "planted.py").write_text("import os\n")
    elif damage == "no-manifest":  # as a copy stopped half-way would leave it
        (entry / bootstrap.MANIFEST).unlink()
    else:
        (entry / bootstrap.MANIFEST).write_text("not a manifest\n")
    assert bootstrap.entry_problem(str(entry)) is not None
    assert bootstrap.valid_entry("seed", "d" * 64) is None
    assert not entry.exists()
    assert "is damaged" in capsys.readouterr().out


def test_a_key_names_the_interpreter_and_the_content(tmp_path, monkeypatch):
    first = bootstrap.entry_path("seed", "a" * 64)
    assert bootstrap.entry_path("seed", "b" * 64) != first
    assert bootstrap.entry_path("virtualenv", "a" * 64) != first
    monkeypatch.setattr(bootstrap.sys, "version", bootstrap.sys.version + " (another build)")
    assert bootstrap.entry_path("seed", "a" * 64) != first
    assert first.startswith(os.path.join(bootstrap.ROOT, ".bootstrap", "cache") + os.sep)


# --- the check of what was installed, in-process ------------------------------------------------------------------


def fake_slot(tmp_path, installed, reported):
    """A slot whose site-packages holds `installed` ({name: version}) and pip's report listing `reported`."""
    slot = tmp_path / "slot"
    site = Path(bootstrap.site_packages(str(slot)))
    for name, version in installed.items():
        dist = site / f"{name}-{version}.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
        (dist / "RECORD").write_text("")
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"install": [{"metadata": {"name": name, "version": version}}
                                              for name, version in reported.items()]}))
    return str(slot), str(report)


def pins(**versions):
    return [bootstrap.Pin(name, version, {"0" * 64}) for name, version in versions.items()]


def test_the_installed_distributions_are_the_locks_pins(tmp_path):
    slot, report = fake_slot(tmp_path, {"pip": "26.3", "alpha": "1.0"}, {"alpha": "1.0"})
    assert bootstrap.installed_problems(slot, pins(pip="26.3", alpha="1.0"), report) == []


@pytest.mark.parametrize("installed,expected", [
    ({"pip": "26.3"}, "alpha 1.0 is missing"),
    ({"pip": "26.3", "alpha": "1.0", "planted": "6.6"}, "planted 6.6 is installed, but is not one of the lock's"),
    ({"pip": "26.3", "alpha": "0.9"}, "alpha 0.9 is installed where 1.0 was expected"),
])
def test_a_missing_extra_or_other_version_is_one_error(tmp_path, capsys, installed, expected):
    slot, report = fake_slot(tmp_path, installed, {"alpha": "1.0"})
    with pytest.raises(SystemExit):
        bootstrap.check_env(slot, pins(pip="26.3", alpha="1.0"), report, "checked\n")
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and expected in errors[0], errors


def test_a_distribution_without_record_is_named(tmp_path):
    slot, report = fake_slot(tmp_path, {"pip": "26.3", "alpha": "1.0"}, {"alpha": "1.0"})
    os.unlink(Path(bootstrap.site_packages(slot)) / "alpha-1.0.dist-info" / "RECORD")
    assert bootstrap.installed_problems(slot, pins(pip="26.3", alpha="1.0"), report) == [
        "alpha-1.0.dist-info has no RECORD"]


# --- scenarios ------------------------------------------------------------------------------------------------------


def cache_entries(checkout, kind):
    return sorted((Path(checkout) / ".bootstrap" / "cache" / kind).glob("*"))


def without_builds(checkout):
    """The checkout with its caches but no build: the next `make ve` builds .ve-a again, from the caches."""
    for name in ("ve", ".ve-a", ".ve-b"):
        path = Path(checkout) / name
        if path.is_symlink():
            path.unlink()
        elif path.exists():
            shutil.rmtree(path)
    return checkout


@slow
def test_a_cache_hit_builds_the_same_bytes_and_a_damaged_entry_is_rebuilt_then_clean_removes_the_caches(checkout):
    built(run_make(checkout, "ve"))  # cold: fills the caches
    cold = tree_digest(checkout / ".ve-a")
    assert len(cache_entries(checkout, "seed")) == 1 and len(cache_entries(checkout, "virtualenv")) == 1
    built(run_make(without_builds(checkout), "ve"))  # .ve-a again, from the caches
    assert diff_digests(cold, tree_digest(checkout / ".ve-a")) == []
    seed_entry = cache_entries(checkout, "seed")[0]
    (seed_entry / "pip" / "__init__.py").write_text("raise SystemExit('planted')\n")
    (cache_entries(checkout, "virtualenv")[0] / bootstrap.MANIFEST).unlink()
    rebuilt = run_make(without_builds(checkout), "ve")
    built(rebuilt)
    assert rebuilt.stdout.count("is damaged") == 2, rebuilt.stdout
    assert os.readlink(checkout / "ve") == ".ve-a"
    assert diff_digests(cold, tree_digest(checkout / ".ve-a")) == []
    assert_ve_works(checkout)
    assert_pip_check_clean(checkout)
    assert "planted" not in (seed_entry / "pip" / "__init__.py").read_text()
    built(run_make(without_builds(checkout), "ve"))  # and once more, from the repaired caches
    assert diff_digests(cold, tree_digest(checkout / ".ve-a")) == []
    # FORCE=1 takes nothing from the caches (a damaged entry is not even looked at) and makes them again.
    (cache_entries(checkout, "seed")[0] / "pip" / "__init__.py").write_text("raise SystemExit('planted')\n")
    forced = run_make(checkout, "ve", "FORCE=1")
    built(forced)
    assert "nothing is taken from the build caches" in forced.stdout and "is damaged" not in forced.stdout
    assert "planted" not in (cache_entries(checkout, "seed")[0] / "pip" / "__init__.py").read_text()
    built(run_make(checkout, "ve", "FORCE=1"))
    assert diff_digests(cold, tree_digest(checkout / ".ve-a")) == []
    cleaned = run_make(checkout, "clean")
    assert_ok(cleaned)
    assert ".bootstrap/cache" in cleaned.stdout
    assert not (checkout / ".bootstrap" / "cache").exists()
