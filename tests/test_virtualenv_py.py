"""The generated virtualenv.py, and the generator bootstrap_tools/virtualenv_py.py: no network needed."""

import base64
import hashlib
import importlib.util
import io
import json
import os
import re
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import pytest

from bootstrap_build.processes import AMBIENT_NAMES
from bootstrap_tools import virtualenv_py
from bootstrap_tools.run import ToolError, run

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "virtualenv.py"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
# The version virtualenv.py carries, as its lock says (freeze-upgrade moves it).
VIRTUALENV_VERSION = next(pin.version for pin in virtualenv_py.read_lock(virtualenv_py.LOCK)[1]
                          if pin.name == "virtualenv")
SCRUBBED_PREFIXES = ("PIP_", "VIRTUALENV_", "PYTHON", "UV_", "CONDA_")


def scrubbed_env(home):
    """The caller's environment minus anything that steers pip, virtualenv or Python."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(SCRUBBED_PREFIXES) and key not in AMBIENT_NAMES}
    env["HOME"] = str(home)
    return env


@pytest.fixture(scope="module")
def generated():
    """virtualenv.py loaded as a module (not run): its launcher functions and PAYLOAD."""
    spec = importlib.util.spec_from_file_location("generated_virtualenv_py", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def payload(generated):
    return base64.b64decode(generated.PAYLOAD)


def find_python_or_skip(version, tmp_path):
    python = virtualenv_py.find_python(version, tmp_path)
    if python is None:
        pytest.skip(f"no CPython {version} here (python{version} on PATH or under pyenv)")
    return python


# ---------------------------------------------------------------- the real virtualenv.py, per Python

@pytest.mark.parametrize("version", PYTHONS)
def test_version_runs_on_each_python(version, tmp_path):
    python = find_python_or_skip(version, tmp_path)
    output = run([python, SCRIPT, "--version"], env=scrubbed_env(tmp_path))
    assert output.startswith(f"virtualenv {VIRTUALENV_VERSION} ")


@pytest.mark.slow
@pytest.mark.parametrize("version", PYTHONS)
def test_no_seed_env_works_on_each_python(version, tmp_path):
    python = find_python_or_skip(version, tmp_path)
    dest = tmp_path / "env"
    env = scrubbed_env(tmp_path)
    run([python, SCRIPT, "--no-seed", "--no-periodic-update", "--app-data", tmp_path / "app-data", dest], env=env)
    probe = "import sys; print('%d.%d' % sys.version_info[:2], sys.prefix)"
    reported, prefix = run([dest / "bin" / "python", "-c", probe], env=env).split()
    assert reported == version
    assert Path(prefix) == dest


def test_older_python_gets_a_clear_error(generated, monkeypatch):
    fake = SimpleNamespace(version_info=(3, 9, 18), version="3.9.18 (main)", exit=sys.exit)
    monkeypatch.setattr(generated, "sys", fake)
    with pytest.raises(SystemExit, match="needs CPython 3.10 or newer; this is 3.9.18"):
        generated.check_python()


def test_real_older_python_gets_a_clear_error(tmp_path):
    python = find_python_or_skip("3.9", tmp_path)
    with pytest.raises(ToolError, match=r"exit 1\).*\n.*needs CPython 3.10 or newer; this is 3\.9"):
        run([python, SCRIPT, "--version"], env=scrubbed_env(tmp_path))


# ---------------------------------------------------------------- the real virtualenv.py, as a file

def test_header_payload_sha256_matches(payload):
    header = SCRIPT.read_text()
    match = re.search(r"^# Payload:.*\n#   sha256:([0-9a-f]{64})$", header, re.MULTILINE)
    assert match, "no payload sha256 in the header"
    assert hashlib.sha256(payload).hexdigest() == match.group(1)


def test_header_lists_the_locked_wheels():
    _, pins = virtualenv_py.read_lock(virtualenv_py.LOCK)
    header = SCRIPT.read_text().split("\nimport ", 1)[0]
    for pin in pins:
        assert f"#   {pin.name} {pin.version} " in header
        assert f"#     sha256:{pin.sha256}" in header


def test_layout_shebang_short_lines_payload_last():
    lines = SCRIPT.read_text().splitlines()
    assert lines[0] == "#!/usr/bin/env python3"
    start = lines.index('PAYLOAD = b"""')
    end = lines.index('"""', start)
    assert all(len(line) < 100 for line in lines[:start])
    body = lines[start + 1:end]
    assert all(76 <= len(line) <= 100 for line in body[:-1]) and body[-1]
    assert lines[end + 1:] == ["", 'if __name__ == "__main__":', "    main()"]


def test_manifest_covers_each_python(payload):
    archive = zipfile.ZipFile(io.BytesIO(payload))
    manifest = json.loads(archive.read(virtualenv_py.MANIFEST))
    tops = {name.split("/", 1)[0] for name in archive.namelist()}
    assert set(PYTHONS) <= set(manifest)
    for version in PYTHONS:
        assert f"virtualenv-{VIRTUALENV_VERSION}" in manifest[version]
        assert set(manifest[version]) <= tops
    assert not any(virtualenv_py.is_dead_weight(name.split("/", 1)[1]) for name in archive.namelist() if "/" in name)


def test_newer_python_uses_newest_group(generated, monkeypatch):
    manifest = {"3.10": ["old"], "3.11": ["new"]}
    monkeypatch.setattr(generated, "sys", SimpleNamespace(version_info=(3, 14, 0)))
    assert generated.wheel_dirs(manifest) == ["new"]
    monkeypatch.setattr(generated, "sys", SimpleNamespace(version_info=(3, 10, 13)))
    assert generated.wheel_dirs(manifest) == ["old"]


# ---------------------------------------------------------------- the generator, on tiny wheels

def make_wheel(directory, name, version, files):
    """A minimal pure wheel: `files` ({path: text}) plus dist-info METADATA, WHEEL and RECORD."""
    dist_info = f"{name}-{version}.dist-info"
    files = dict(files)
    files[f"{dist_info}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    files[f"{dist_info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{dist_info}/RECORD"] = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
    path = Path(directory) / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in files.items():
            wheel.writestr(member, text)
    return path


@pytest.fixture
def tiny_wheels(tmp_path):
    return {
        "old": make_wheel(tmp_path, "lockish", "1.0", {"lockish.py": "VERSION = 1\n"}),
        "new": make_wheel(tmp_path, "lockish", "2.0", {"lockish.py": "VERSION = 2\n"}),
        "shared": make_wheel(tmp_path, "shared", "0.1", {"shared/__init__.py": "", "shared/big.txt": "x" * 5000}),
    }


def test_payload_is_deterministic(tiny_wheels):
    selection = {"3.10": [tiny_wheels["old"], tiny_wheels["shared"]],
                 "3.11": [tiny_wheels["shared"], tiny_wheels["new"]]}
    first, _ = virtualenv_py.build_payload(selection)
    os.utime(tiny_wheels["shared"], (0, 0))  # file times must not matter
    second, _ = virtualenv_py.build_payload(dict(reversed(selection.items())))
    assert first == second
    for info in zipfile.ZipFile(io.BytesIO(first)).infolist():
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 & 0o777 == 0o644
        assert info.compress_type == zipfile.ZIP_DEFLATED


def test_payload_selects_per_python_and_deduplicates(tiny_wheels):
    selection = {"3.10": [tiny_wheels["old"], tiny_wheels["shared"]],
                 "3.11": [tiny_wheels["new"], tiny_wheels["shared"]]}
    archive = zipfile.ZipFile(io.BytesIO(virtualenv_py.build_payload(selection)[0]))
    manifest = json.loads(archive.read(virtualenv_py.MANIFEST))
    assert manifest == {"3.10": ["lockish-1.0", "shared-0.1"], "3.11": ["lockish-2.0", "shared-0.1"]}
    names = archive.namelist()
    assert names == sorted(names) and len(names) == len(set(names))
    assert archive.read("lockish-1.0/lockish.py") == b"VERSION = 1\n"
    assert archive.read("lockish-2.0/lockish.py") == b"VERSION = 2\n"


def test_payload_strips_seed_wheels_and_sboms_but_keeps_bundle_table(tmp_path):
    wheel = make_wheel(tmp_path, "virtualenv", "1.0", {
        "virtualenv/__init__.py": "",
        "virtualenv/seed/wheels/embed/__init__.py": "BUNDLE_SUPPORT = {}\n",
        "virtualenv/seed/wheels/embed/pip-1.0-py3-none-any.whl": "fake wheel",
        "virtualenv-1.0.dist-info/sboms/virtualenv.cdx.json": "{}",
    })
    payload, stripped = virtualenv_py.build_payload({"3.10": [wheel]})
    names = zipfile.ZipFile(io.BytesIO(payload)).namelist()
    assert "virtualenv-1.0/virtualenv/seed/wheels/embed/__init__.py" in names
    assert not any(name.endswith((".whl", ".cdx.json")) for name in names)
    assert stripped == len("fake wheel") + len("{}")
    kept, none = virtualenv_py.build_payload({"3.10": [wheel]}, strip=False)
    assert none == 0 and len(zipfile.ZipFile(io.BytesIO(kept)).namelist()) == len(names) + 2


def fake_virtualenv(tmp_path):
    """A stand-in `virtualenv` whose entry point prints what it got and exits 3."""
    main = ("import os, sys\n"
            "def run_with_catch(args):\n"
            "    print('args', args, 'from', os.path.dirname(os.path.dirname(__file__)))\n"
            "    raise SystemExit(3)\n")
    return make_wheel(tmp_path, "virtualenv", "9.9", {"virtualenv/__init__.py": "", "virtualenv/__main__.py": main})


def test_rendered_script_runs_entry_point_and_cleans_up(tmp_path):
    payload, _ = virtualenv_py.build_payload({"3.10": [fake_virtualenv(tmp_path)]})
    script = tmp_path / "virtualenv.py"
    # The launcher runs nothing of a payload whose sha256 its header does not give.
    header = f"#!/usr/bin/env python3\n# Payload: the base64 zip\n#   sha256:{hashlib.sha256(payload).hexdigest()}\n"
    script.write_text(virtualenv_py.render_script(header, payload, (3, 10)))
    unpack_root = tmp_path / "tmp"
    unpack_root.mkdir()
    env = scrubbed_env(tmp_path)
    env["TMPDIR"] = str(unpack_root)
    with pytest.raises(ToolError, match=r"exit 3") as failure:
        run([sys.executable, script, "--no-seed", "dest"], env=env)
    assert "args ['--no-seed', 'dest'] from " + str(unpack_root) in str(failure.value)
    assert list(unpack_root.iterdir()) == []


# ---------------------------------------------------------------- the generator: lock file and markers

@pytest.mark.parametrize("used, marker", [
    (["3.10", "3.11", "3.12", "3.13"], None),
    (["3.10"], 'python_version < "3.11"'),
    (["3.11", "3.12", "3.13"], 'python_version >= "3.11"'),
    (["3.11", "3.12"], 'python_version >= "3.11" and python_version < "3.13"'),
    (["3.10", "3.12"], 'python_version == "3.10" or python_version == "3.12"'),
])
def test_marker_for(used, marker):
    assert virtualenv_py.marker_for(used, PYTHONS) == marker


def test_lock_round_trip(tmp_path):
    merged = {
        ("filelock", "3.19.1", "a" * 64): ["3.10"],
        ("filelock", "4.3.1", "b" * 64): ["3.11", "3.12", "3.13"],
        ("virtualenv", VIRTUALENV_VERSION, "c" * 64): PYTHONS,
    }
    lock = tmp_path / "virtualenv.txt"
    lock.write_text(virtualenv_py.render_lock(merged, PYTHONS))
    assert lock.read_text().splitlines()[0].startswith("# Generated by `python bootstrap_tools/virtualenv_py.py lock`")
    targets, pins = virtualenv_py.read_lock(lock)
    assert targets == PYTHONS
    selection = virtualenv_py.select(pins, targets)
    assert [pin.key for pin in selection["3.10"]] == ["filelock-3.19.1", f"virtualenv-{VIRTUALENV_VERSION}"]
    assert [pin.key for pin in selection["3.13"]] == ["filelock-4.3.1", f"virtualenv-{VIRTUALENV_VERSION}"]


def test_wheel_with_wrong_hash_is_refused(tiny_wheels, tmp_path):
    pin = virtualenv_py.Pin("shared", "0.1", "0" * 64, None)
    with pytest.raises(ToolError, match=r"shared-0.1-py3-none-any.whl: sha256 mismatch: expected 0{64}, actual"):
        virtualenv_py.fetch([pin], tmp_path / "unused-cache", tiny_wheels["shared"].parent, None)


def test_non_pure_wheel_is_refused():
    with pytest.raises(ToolError, match="not a pure-Python"):
        virtualenv_py.require_pure("thing-1.0-cp311-cp311-manylinux_2_28_x86_64.whl")
