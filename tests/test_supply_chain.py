"""Supply chain: the cooling-off's cutoff, the provenance record and pylock.toml as `make check` sees them, pylock.toml
installed offline, the runtime and dev sets in pylock.toml and the SBOMs, and `make sbom`.

The freeze scenarios of the cooling-off (an HTTP index with upload times) are in tests/test_index_faults.py, on
the frozen base it shares with tests/test_freeze.py.
"""

import datetime
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from bootstrap_tools import check, cooldown, lockfile, platforms, provenance, pylock, sbom
from conftest import REPO, TIMEOUT, assert_ok, assert_one_error, describe, make_env, run_make, unshare_or_skip
from index_helpers import build_wheel

slow = pytest.mark.slow
THIS_PYTHON = "%d.%d" % sys.version_info[:2]


# --- the cooling-off's cutoff ------------------------------------------------------------------------------------


def test_the_cutoff_is_fixed_once_and_reaches_pip_and_pip_compile_alike():
    now = datetime.datetime(2026, 11, 29, 10, 30, 15, 123, tzinfo=datetime.timezone.utc)
    assert cooldown.cutoff_for(7, now) == "2026-11-22T10:30:15Z"
    assert cooldown.cutoff_for(0, now) is None
    from bootstrap_tools.run import index_args
    try:
        cooldown.fix("2026-11-22T10:30:15Z")
        assert index_args("") == ["--uploaded-prior-to", "2026-11-22T10:30:15Z"]
        assert index_args("http://x/simple/")[:2] == ["--index-url", "http://x/simple/"]
        message = cooldown.missing_upload_times_message(
            "ERROR: Index https://user:secret@x/simple/a/ does not provide upload-time metadata.")
        assert "COOLDOWN_DAYS=0" in message and "https://x/simple/a/" in message and "secret" not in message
    finally:
        cooldown.fix(None)
    assert index_args("") == []
    # Locked files uploaded after the cutoff reach pip-compile from a directory; the cutoff itself never moves.
    try:
        assert cooldown.keep(Path("/kept")) and cooldown.kept_args() == ["--find-links", "/kept"]
    finally:
        cooldown.keep(None)
    assert cooldown.kept_args() == []


def test_cooldown_days_from_the_environment_is_ignored_with_a_notice(checkout):
    result = run_make(checkout, "help", env=make_env(COOLDOWN_DAYS="0"))
    assert result.returncode == 0, describe(result)
    assert "ignoring COOLDOWN_DAYS=0 from the environment" in result.stdout, describe(result)


# --- provenance and pylock.toml as make check sees them ----------------------------------------------------------


def test_the_committed_record_and_pylock_agree_with_the_files(checkout):
    assert check.find_problems(checkout) == []


def test_make_check_names_a_hand_edited_or_stale_record(checkout):
    path = checkout / provenance.RECORD
    text = path.read_text(encoding="utf-8")
    data = json.loads(text)
    data["artifacts"][0]["upload-time"] = "2000-01-01T00:00:00Z"  # edited by hand: its own sha256 no longer fits
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    problems = check.find_problems(checkout)
    assert len(problems) == 1 and "edited by hand" in problems[0] and "make freeze" in problems[0], problems

    stale = [entry for entry in json.loads(text)["artifacts"] if not entry["path"].startswith("virtualenv_support/")]
    path.write_text(provenance.render(stale), encoding="utf-8")  # well-formed, but a file is missing from it
    problems = check.find_problems(checkout)
    assert len(problems) == 1 and "has no entry for virtualenv_support/pip-" in problems[0], problems


def test_make_check_names_a_pylock_out_of_step(checkout):
    path = checkout / pylock.NAME
    path.write_text(path.read_text(encoding="utf-8").replace('version = "', 'version = "0', 1), encoding="utf-8")
    result = run_make(checkout, "check")
    assert_one_error(result, "1 problem")
    assert "pylock.toml is out of step with requirements.txt" in result.stdout, describe(result)


def installed(python):
    """{name: (version, RECORD)} of an environment: every installed file and its hash, without the scripts (their
    shebangs name the environment), INSTALLER and REQUESTED (who installed and who asked, not what: bootstrap.py
    installs pip itself, as the seed).
    .pyc files are left out: which ones exist depends on what ran there since."""
    code = ("import importlib.metadata as m, json\n"
            "def kept(line):\n"
            "    return not line.startswith('../') and '__pycache__' not in line and not any(\n"
            "        f'.dist-info/{name},' in line for name in ('INSTALLER', 'REQUESTED'))\n"
            "print(json.dumps({d.metadata['Name'].lower(): [d.version, sorted(filter(kept, (d.read_text('RECORD')\n"
            "      or '').splitlines()))] for d in m.distributions()}))")
    result = subprocess.run([str(python), "-I", "-c", code], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


@slow
def test_pylock_installs_offline_exactly_what_requirements_txt_installs(built_checkout, tmp_path):  # noqa: F811
    """pylock.toml's default group is requirements.txt's runtime set (this repository's pins nothing); with
    `--group dev` it installs exactly what `make ve` installs (both sets), file for file."""
    unshare_or_skip("-n")
    prefix = ("unshare", "-n")
    seed = next((built_checkout / "virtualenv_support").glob("pip-*.whl"))
    runtime, _ = lockfile.parse((built_checkout / "requirements.txt").read_text(encoding="utf-8"))
    runtime_set = {canonicalize_name(pin.name): pin.version for pin in runtime if pin.applies_to(THIS_PYTHON)}
    ve = installed(built_checkout / "ve" / "bin" / "python")
    assert set(ve) > set(runtime_set)  # the dev set is there to be told apart
    for groups in ((), ("dev",)):
        env = tmp_path / f"from-pylock-{'-'.join(groups) or 'runtime'}"
        subprocess.run([sys.executable, "-I", built_checkout / "virtualenv.py", "--no-seed", "--no-download",
                        "--no-periodic-update", env], check=True, capture_output=True)
        result = subprocess.run([*prefix, env / "bin" / "python", "-I", seed / "pip", "install", "--isolated",
                                 "--no-index", "--no-cache-dir", "--no-compile", "-r", built_checkout / "pylock.toml",
                                 *[f"--group=pylock.toml:{group}" for group in groups]],
                                cwd=built_checkout, capture_output=True, text=True, env=make_env())
        assert result.returncode == 0, result.stdout + result.stderr
        if groups:
            assert installed(env / "bin" / "python") == ve
        else:
            assert {name: version for name, (version, _) in installed(env / "bin" / "python").items()} == runtime_set


# --- the runtime and dev sets: a project with a dev lock, built by hand ------------------------------------------

LOCK_HEADER = "# Generated by `make freeze` (bootstrap_tools/freeze.py) from requirements.in; do not edit.\n"
DEV_LOCK_HEADER = ("# Generated by `make freeze` (bootstrap_tools/freeze.py) from requirements-dev.in, constrained by "
                   "requirements.txt; do not edit.\n")
RUNTIME_SET = {"app-lib": "1.0", "shared": "2.0"}
# compat: the runtime set pins it below this Python only, the dev set everywhere (one entry, a widened marker).
DEV_SET = {"compat": "1.0", "devdep": "4.0", "devtool": "3.0", "shared": "2.0"}


def write_lock(path, header, pins):
    """A hashed lock of (requirement, wheel) in requirements.txt's layout."""
    path.write_text(header + f"# targets: {THIS_PYTHON}\n\n" + "".join(
        lockfile.lock_entry(requirement, [lockfile.sha256(wheel)]) for requirement, wheel in pins), encoding="utf-8")


@pytest.fixture(scope="module")
def dev_project(tmp_path_factory):
    """A project with a runtime lock, a dev lock constrained by it (`shared` in both, at one version) and
    pylock.toml rendered from both; nothing in it comes from a freeze."""
    root = tmp_path_factory.mktemp("dev-set") / "shop-checkout"
    wheels = root / "requirements"
    made = {name: build_wheel(wheels, name, version, requires=requires) for name, version, requires in [
        ("app-lib", "1.0", ["shared"]), ("shared", "2.0", []), ("compat", "1.0", []),
        ("devtool", "3.0", ["shared", "devdep"]), ("devdep", "4.0", [])]}
    (root / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "1.2"\n', encoding="utf-8")
    (root / "requirements.in").write_text("app-lib\n", encoding="utf-8")
    (root / "requirements-dev.in").write_text("devtool\n", encoding="utf-8")
    write_lock(root / "requirements.txt", LOCK_HEADER, [
        ("app-lib==1.0", made["app-lib"]), (f'compat==1.0 ; python_version < "{THIS_PYTHON}"', made["compat"]),
        ("shared==2.0", made["shared"])])
    write_lock(root / pylock.DEV_LOCK, DEV_LOCK_HEADER, [
        ("compat==1.0", made["compat"]), ('devdep==4.0 ; python_version >= "3.8"', made["devdep"]),
        ("devtool==3.0", made["devtool"]), ("shared==2.0", made["shared"])])
    (root / pylock.NAME).write_text(pylock.render(root, (root / "requirements.txt").read_text(encoding="utf-8"),
                                                  pylock.dev_lock_text(root)), encoding="utf-8")
    return root


def test_pylock_carries_the_dev_set_as_a_dependency_group(dev_project, tmp_path):
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    data = tomllib.loads((dev_project / pylock.NAME).read_text(encoding="utf-8"))
    assert (data["dependency-groups"], data["default-groups"]) == (["dev"], ["runtime"])
    entries = {(entry["name"], entry["version"]): entry.get("marker") for entry in data["packages"]}
    assert entries == {
        ("app-lib", "1.0"): None, ("shared", "2.0"): None,  # the runtime set: unconditional, as without a dev lock
        ("compat", "1.0"): f'(python_version < "{THIS_PYTHON}") or ("dev" in dependency_groups)',
        ("devdep", "4.0"): '"dev" in dependency_groups and (python_version >= "3.8")',
        ("devtool", "3.0"): '"dev" in dependency_groups'}
    assert all(len(entry["wheels"]) == 1 for entry in data["packages"])
    assert pylock.check_problems(dev_project) == []
    # make check re-renders it from both locks: a dev lock gone (or changed) leaves pylock.toml out of step.
    copy = shutil.copytree(dev_project, tmp_path / "copy")
    (copy / pylock.DEV_LOCK).unlink()
    problems = pylock.check_problems(copy)
    assert len(problems) == 1 and "out of step with requirements.txt" in problems[0], problems


def uv_or_none():
    """uv from PATH, else the one `make bench` installs as its peer; None without either."""
    found = shutil.which("uv")
    bench = REPO / "build" / "bench" / "uv-env" / "bin" / "uv"
    return found or (str(bench) if bench.exists() else None)


@pytest.mark.parametrize("installer", ["pip", "uv"])
def test_pylock_installs_the_runtime_group_alone_or_with_dev_offline(dev_project, tmp_path, installer):
    uv = uv_or_none()
    if installer == "uv" and uv is None:
        pytest.skip("uv is not installed (neither on PATH nor as `make bench`'s build/bench/uv-env)")
    seed = next((REPO / "virtualenv_support").glob("pip-*.whl"))
    for groups, expected in (((), RUNTIME_SET), (("dev",), {**RUNTIME_SET, **DEV_SET})):
        env = tmp_path / f"env-{'-'.join(groups) or 'runtime'}"
        subprocess.run([sys.executable, "-I", "-m", "venv", "--without-pip", env], check=True, capture_output=True)
        python = env / "bin" / "python"
        if installer == "pip":  # the seed pip (26.3): `-r pylock.toml` is the default groups, --group adds one
            command = [python, "-I", seed / "pip", "install", "--isolated", "--no-index", "--no-cache-dir",
                       "--no-compile", "--disable-pip-version-check", "-r", pylock.NAME,
                       *[f"--group={pylock.NAME}:{group}" for group in groups]]
        else:
            command = [uv, "pip", "install", "--no-config", "--offline", "--no-index", "--no-cache", "--python",
                       python, "-r", pylock.NAME, *[f"--group={group}" for group in groups]]
        result = subprocess.run(command, cwd=dev_project, capture_output=True, text=True, env=make_env())
        assert result.returncode == 0, result.stdout + result.stderr
        assert {name: version for name, (version, _) in installed(python).items()} == expected, groups


# --- the SBOM ----------------------------------------------------------------------------------------------------


def in_tools_env(tools_python, code, *args):
    """Run `code` in the tools env with this checkout's bootstrap_tools importable; its stdout."""
    result = subprocess.run([str(tools_python), "-I", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r})\n{code}",
                             *map(str, args)], capture_output=True, text=True, env=make_env(), timeout=TIMEOUT)
    assert result.returncode == 0, describe(result)
    return result.stdout


def cyclonedx_validator(tools_python):
    """The CycloneDX 1.6 JSON schema as a validator, from the copies cyclonedx-python-lib ships (in the tools
    env), offline.

    fastjsonschema (pure Python) rather than jsonschema, whose `referencing` needs the compiled rpds-py. The
    schema's references to its sibling schemas (SPDX ids, JSF) are served from the same directory.
    """
    import fastjsonschema

    found = in_tools_env(tools_python, "from cyclonedx.schema import _res; print(_res.__file__)")
    directory = Path(found.strip()).parent

    def load(name):
        return json.loads((directory / name).read_text(encoding="utf-8"))

    return fastjsonschema.compile(load("bom-1.6.SNAPSHOT.schema.json"),
                                  handlers={"http": lambda uri: load(uri.split("#")[0].rpartition("/")[2])},
                                  formats={"iri-reference": r".*", "idn-email": r".*"})


@slow
def test_make_sbom_is_schema_valid_deterministic_and_lists_what_make_ve_installs(built_checkout, tools_python):
    import fastjsonschema

    unshare_or_skip("-n")  # offline: the first run has no network at all
    first = assert_ok(run_make(built_checkout, "sbom", "SBOM_DIR=sbom-1", prefix=("unshare", "-n")))
    assert_ok(run_make(built_checkout, "sbom", "SBOM_DIR=sbom-2"))
    # One document per target and set: this repository declares platforms, so per (platform, Python) pair, and it
    # has a dev lock, so a `-dev` document beside each (its runtime documents list nothing: it pins nothing).
    targets = platforms.lock_targets((built_checkout / "requirements.txt").read_text(encoding="utf-8"),
                                     built_checkout)
    assert len(targets) == 12 and all(isinstance(target, platforms.Pair) for target in targets)
    sets = (("requirements.txt", "", built_checkout.name),
            ("requirements-dev.txt", "-dev", f"{built_checkout.name}-dev"))
    names = [sbom.file_name(target, suffix) for _, suffix, _ in sets for target in targets]
    assert sorted(path.name for path in (built_checkout / "sbom-1").iterdir()) == sorted(names), describe(first)
    validate = cyclonedx_validator(tools_python)
    here = {}
    for lock, suffix, root in sets:
        pins, _ = lockfile.parse((built_checkout / lock).read_text(encoding="utf-8"))
        for target in targets:
            name = sbom.file_name(target, suffix)
            data = (built_checkout / "sbom-1" / name).read_bytes()
            assert data == (built_checkout / "sbom-2" / name).read_bytes(), name  # same lock, same bytes
            document = json.loads(data)
            validate(document)
            components = {component["purl"]: component for component in document.get("components", [])}
            assert len(components) == len(document.get("components", []))
            assert sorted(components) == sorted(f"pkg:pypi/{pin.name}@{pin.version}" for pin in pins
                                                if pin.applies_to(target))
            assert all(component["hashes"][0]["alg"] == "SHA-256" for component in components.values())
            assert "timestamp" not in document.get("metadata", {})
            # No [project] in this repository's pyproject.toml: the checkout directory names the root component.
            assert document["metadata"]["component"]["name"] == root
            if suffix:
                edges = {entry["ref"]: entry.get("dependsOn", []) for entry in document["dependencies"]}
                assert "pluggy==" in " ".join(edges[next(ref for ref in edges if ref.startswith("pytest=="))])
            if (target.platform, target.python) == (platforms.this_platform(), THIS_PYTHON):
                here[suffix] = document
    # This machine's two documents together list exactly what `make ve` installed (both sets).
    assert set(here) == {"", "-dev"}
    ve = installed(built_checkout / "ve" / "bin" / "python")
    assert sorted({component["purl"] for document in here.values() for component in document.get("components", [])}
                  ) == sorted(f"pkg:pypi/{canonicalize_name(name)}@{version}" for name, (version, _) in ve.items())
    broken = json.loads(json.dumps(here["-dev"]))
    broken["components"][0]["hashes"][0]["alg"] = "SHA-257"
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate(broken)


def test_sbom_documents_the_runtime_set_as_the_project_and_the_dev_set_apart(dev_project, tmp_path, tools_python):
    validate = cyclonedx_validator(tools_python)
    written = [(Path(path), count) for path, count in json.loads(in_tools_env(
        tools_python, "import json; from pathlib import Path; from bootstrap_tools import sbom\n"
        "print(json.dumps([(str(p), n) for p, n in sbom.write_all(Path(sys.argv[1]), Path(sys.argv[2]))]))",
        dev_project, tmp_path / "sbom"))]
    runtime, dev = f"sbom-python{THIS_PYTHON}.cdx.json", f"sbom-python{THIS_PYTHON}-dev.cdx.json"
    assert [(path.name, count) for path, count in written] == [(runtime, 2), (dev, 4)]
    documents = {}
    for path, _ in written:
        documents[path.name] = document = json.loads(path.read_text(encoding="utf-8"))
        validate(document)
    for name, root, wanted, pins in ((runtime, "shop", "app-lib", RUNTIME_SET), (dev, "shop-dev", "devtool", DEV_SET)):
        document = documents[name]
        component = document["metadata"]["component"]
        assert (component["name"], component["version"], component["type"]) == (root, "1.2", "application")
        assert sorted(item["purl"] for item in document["components"]) == sorted(
            f"pkg:pypi/{package}@{version}" for package, version in pins.items())
        edges = {entry["ref"]: entry.get("dependsOn", []) for entry in document["dependencies"]}
        assert edges[component["bom-ref"]] == [f"{wanted}=={pins[wanted]}"]  # what its .in file names
    assert "devtool" not in json.dumps(documents[runtime])

    # Without [project] in pyproject.toml (or without the file), the checkout directory names the project.
    bare = shutil.copytree(dev_project, tmp_path / "bare-checkout")
    (bare / "pyproject.toml").unlink()
    assert sbom.project(bare) == ("bare-checkout", None)
    (bare / "pyproject.toml").write_text("[tool.pytest.ini_options]\n", encoding="utf-8")
    assert sbom.project(bare) == ("bare-checkout", None)


def test_trust_on_first_use_covers_the_seed(tmp_path, monkeypatch):
    from bootstrap_tools import freeze, seeds
    from bootstrap_tools.run import ToolError
    recorded, name = "0" * 64, "pip-26.3-py3-none-any.whl"
    (tmp_path / "virtualenv_support").mkdir()
    (tmp_path / "virtualenv_support" / "SHA256SUMS").write_text(f"{seeds.SUMS_HEADER}{recorded}  {name}\n")
    seed = tmp_path / "staged" / name
    seed.parent.mkdir()
    seed.write_bytes(b"other bytes")
    monkeypatch.setattr(seeds, "SEEDS", tmp_path / "virtualenv_support")
    monkeypatch.setattr(freeze, "ROOT", tmp_path)  # no bootstrap_tools/virtualenv.txt there: only the seed counts
    with pytest.raises(ToolError) as raised:
        freeze.trust_tools_on_first_use(seed, tmp_path / "no-virtualenv.txt", False)
    assert all(part in str(raised.value) for part in (
        "other bytes for pip==26.3",
        f"virtualenv_support/{name} has sha256 {recorded} in virtualenv_support/SHA256SUMS",
        "make freeze-upgrade ACCEPT_CHANGED_HASHES=1")), raised.value
    new = lockfile.sha256(seed)
    assert freeze.trust_tools_on_first_use(seed, tmp_path / "no-virtualenv.txt", True) == [
        ("CHANGED", f"pip 26.3 virtualenv_support/{name} sha256:{recorded} -> sha256:{new} (accepted: "
                    "--accept-changed-hashes)")]
