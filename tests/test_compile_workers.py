"""The compile workers of a build: they compile each wheel pip is bound to install straight from its bytes, checked
against the lock first, while virtualenv and pip run; what they cannot plan for is compiled once pip has put it in
place. Every module of a fresh ve has checked-hash bytecode made from the very source pip installed."""

import csv
import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

from bootstrap_build import fast, layout, lockfile
from conftest import built, make_wheel, run_make

slow = pytest.mark.slow


def pin(name, version, *paths, marker=""):
    return lockfile.Pin(name, version, {hashlib.sha256(Path(path).read_bytes()).hexdigest() for path in paths},
                        marker)


@pytest.fixture
def wheelhouse(tmp_path, monkeypatch):
    house = tmp_path / "requirements"
    house.mkdir()
    monkeypatch.setattr(layout, "WHEELHOUSE", str(house))
    return house


def test_only_the_wheels_pip_is_bound_to_install_are_planned_each_module_once(wheelhouse):
    alpha = make_wheel(wheelhouse / "alpha-1.0-py3-none-any.whl", "alpha", "1.0", {
        "alpha/__init__.py": b"A = 1\n",
        "alpha/shared.py": b"S = 'alpha'\n",
        "alpha-1.0.data/purelib/alpha_extra.py": b"E = 1\n",
        "alpha-1.0.data/scripts/alpha-tool.py": b"print('not in site-packages')\n",
    })
    # A .pyc the wheel ships at the place ours would go: left alone, never written over.
    with_pyc = make_wheel(wheelhouse / "gamma-1.0-py3-none-any.whl", "gamma", "1.0", {
        "gamma.py": b"G = 1\n", importlib.util.cache_from_source("gamma.py"): b"shipped",
    })
    beta = make_wheel(wheelhouse / "beta-2.0-py3-none-any.whl", "beta", "2.0", {
        "beta.py": b"B = 2\n", "alpha/shared.py": b"S = 'beta'\n",  # the same module as alpha's: whose wins?
    })
    marked = make_wheel(wheelhouse / "delta-1.0-py3-none-any.whl", "delta", "1.0", {"delta.py": b"D = 1\n"})
    two = make_wheel(wheelhouse / "eps-1.0-py3-none-any.whl", "eps", "1.0", {"eps.py": b"E = 1\n"})
    make_wheel(wheelhouse / "eps-1.0-py2-none-any.whl", "eps", "1.0", {"eps.py": b"E = 2\n"})
    pins = [pin("alpha", "1.0", alpha), pin("beta", "2.0", beta), pin("gamma", "1.0", with_pyc),
            pin("delta", "1.0", marked, marker='sys_platform == "win32"'), pin("eps", "1.0", two)]
    jobs = fast.wheel_jobs(pins, "/site", taken=["pip/__init__.py"])
    planned = {job["name"]: sorted(place for chunk in job["chunks"] for _, place in chunk) for job in jobs}
    assert planned == {
        # alpha/shared.py is in two wheels: compiled after pip has installed both, from what pip left in place.
        "alpha-1.0.dist-info": ["alpha/__init__.py", "alpha_extra.py"],
        "beta-2.0.dist-info": ["beta.py"],
    }
    assert all(job["root"] == "/site" and not job["unpack"] for job in jobs)
    assert jobs[0]["sha256"] == sorted(pins[0].hashes)


def test_a_wheel_too_big_to_hold_in_memory_is_compiled_from_what_pip_installs(wheelhouse, monkeypatch):
    small = make_wheel(wheelhouse / "alpha-1.0-py3-none-any.whl", "alpha", "1.0", {"alpha.py": b"A = 1\n"})
    big = make_wheel(wheelhouse / "huge-1.0-py3-none-any.whl", "huge", "1.0", {
        "huge.py": b"H = 1\n", "huge_data.bin": os.urandom(20000)})
    monkeypatch.setattr(fast, "PLANNED_WHEEL_BYTES", (small.stat().st_size + big.stat().st_size) // 2)
    jobs = fast.wheel_jobs([pin("alpha", "1.0", small), pin("huge", "1.0", big)], "/site", taken=[])
    assert [job["name"] for job in jobs] == ["alpha-1.0.dist-info"]


def seeded_site(tmp_path, wheel, recorded):
    """The fast path's seam on its own: workers started for a seed wheel, its files put into a site-packages."""
    site = Path(layout.site_packages(str(tmp_path / "slot")))
    site.mkdir(parents=True)
    (tmp_path / "scratch").mkdir()
    with fast.Compiler((str(wheel), recorded), str(tmp_path / "scratch"), dict(os.environ)) as compiler:
        compiler.start(str(tmp_path / "slot"), [])
        compiler.put_seed(str(site))
    return site


def test_the_workers_unpack_and_compile_the_verified_bytes_of_the_seed(tmp_path):
    wheel = make_wheel(tmp_path / "seedpkg-1.0-py3-none-any.whl", "seedpkg", "1.0", {
        "seedpkg/__init__.py": b"VALUE = 1\n", "seedpkg/broken.py": b"def (:\n", "seedpkg/data.txt": b"data\n",
    })
    site = seeded_site(tmp_path, wheel, hashlib.sha256(wheel.read_bytes()).hexdigest())
    source = (site / "seedpkg" / "__init__.py").read_bytes()
    pyc = Path(importlib.util.cache_from_source(str(site / "seedpkg" / "__init__.py"))).read_bytes()
    assert source == b"VALUE = 1\n" and (site / "seedpkg" / "data.txt").read_bytes() == b"data\n"
    # PEP 552 checked-hash: flags 0b11 and the hash of the very source beside it.
    assert pyc[4:8] == b"\3\0\0\0" and pyc[8:16] == importlib.util.source_hash(source)
    assert not Path(importlib.util.cache_from_source(str(site / "seedpkg" / "broken.py"))).exists()


def test_a_wheel_changed_after_it_was_checked_stops_the_build_and_nothing_is_unpacked(tmp_path, capsys):
    wheel = make_wheel(tmp_path / "seedpkg-1.0-py3-none-any.whl", "seedpkg", "1.0", {"seedpkg/__init__.py": b""})
    with pytest.raises(SystemExit):
        seeded_site(tmp_path, wheel, "0" * 64)  # the sha256 the check before the build saw
    err = capsys.readouterr().err
    assert err.startswith("ERROR: ") and len(err.splitlines()) == 1, err
    assert "seedpkg-1.0-py3-none-any.whl changed during the build" in err and "git checkout --" in err, err
    assert not list((tmp_path / "slot").rglob("seedpkg"))


@slow
def test_every_module_of_a_fresh_ve_has_checked_hash_bytecode_of_the_source_pip_installed(checkout):
    built(run_make(checkout, "ve"))
    site = Path(layout.site_packages(str(checkout / ".ve-a")))
    modules = 0
    for record in site.glob("*.dist-info/RECORD"):
        with open(record, newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle):
                if not row or not row[0].endswith(".py") or row[0].startswith(".."):
                    continue
                source = (site / row[0]).read_bytes()
                try:
                    compile(source, row[0], "exec", dont_inherit=True)
                except SyntaxError:
                    continue  # left to fail at import, as pip and compileall leave it
                pyc = Path(importlib.util.cache_from_source(str(site / row[0]))).read_bytes()
                assert pyc[:4] == importlib.util.MAGIC_NUMBER and pyc[4:8] == b"\3\0\0\0", row[0]
                assert pyc[8:16] == importlib.util.source_hash(source), f"{row[0]}: its .pyc is of another source"
                modules += 1
    assert modules > 1000  # pip, setuptools, pygments, pytest...
