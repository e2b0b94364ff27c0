"""Supply chain: the cooling-off of `make freeze*`, the provenance record, pylock.toml (and the SBOM).

The cooling-off needs an index over HTTP that says when each file was uploaded (tests/supply_helpers.py, on
127.0.0.1); the freeze scenarios reuse tests/test_freeze.py's frozen base, one copy per test.
"""

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from bootstrap_tools import check, cooldown, lockfile, provenance, pylock
from conftest import assert_ok, assert_one_error, describe, diff_digests, make_env, run_make, unshare_or_skip
from supply_helpers import HttpIndex, days_ago
from test_freeze import THIS_PYTHON, base, managed_digest, payload_wheels, project  # noqa: F401

slow = pytest.mark.slow


def day(text):
    return text[:10]


@pytest.fixture
def http_index(project):  # noqa: F811
    """Serves the project's index over HTTP: every file uploaded 30 days ago unless the test says otherwise."""
    served = []

    def start(**kwargs):
        served.append(HttpIndex(project.index.files, **kwargs))
        return served[-1]

    yield start
    for index in served:
        index.close()


def freeze(project, target, index, *args):  # noqa: F811
    return project.make(target, f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS_PYTHON}", *args)


def record_entries(project):  # noqa: F811
    return {entry["path"]: entry for entry in json.loads(project.read(provenance.RECORD))["artifacts"]}


# --- the cooling-off ---------------------------------------------------------------------------------------------


def test_the_cutoff_is_fixed_once_and_reaches_pip_and_pip_compile_alike():
    now = datetime.datetime(2026, 11, 29, 10, 30, 15, 123, tzinfo=datetime.timezone.utc)
    assert cooldown.cutoff_for(7, now) == "2026-11-22T10:30:15Z"
    assert cooldown.cutoff_for(0, now) is None
    assert cooldown.just_after("2026-11-23T21:44:09.5Z") == "2026-11-23T21:44:10Z"
    from bootstrap_tools.run import index_args
    try:
        cooldown.fix("2026-11-22T10:30:15Z")
        assert index_args("") == ["--uploaded-prior-to", "2026-11-22T10:30:15Z"]
        assert index_args("http://x/simple/")[:2] == ["--index-url", "http://x/simple/"]
    finally:
        cooldown.fix(None)
    assert index_args("") == []


def test_cooldown_days_from_the_environment_is_ignored_with_a_notice(checkout):
    result = run_make(checkout, "help", env=make_env(COOLDOWN_DAYS="0"))
    assert result.returncode == 0, describe(result)
    assert "ignoring COOLDOWN_DAYS=0 from the environment" in result.stdout, describe(result)


@slow
def test_freeze_upgrade_holds_back_yesterdays_release_and_records_where_files_came_from(project,  # noqa: F811
                                                                                        http_index):
    project.index.add("alpha", "2.0")
    beta_time, yesterday = days_ago(20), days_ago(1)
    index = http_index(times={"alpha-2.0-py3-none-any.whl": yesterday, "beta-1.1-py3-none-any.whl": beta_time})
    project.requirements_in(add=["beta"])
    result = assert_ok(freeze(project, "freeze-upgrade", index, "INDEX_NAME=fixture"))
    pins = project.pins()
    # alpha 2.0 is the newest, but uploaded yesterday: the cooling-off (7 days by default) takes the one before.
    assert (pins["alpha"].version, pins["beta"].version) == ("1.0", "1.1")
    text = project.report_file()
    assert text in result.stdout
    assert f"  held back: alpha 2.0 (uploaded {day(yesterday)}" in text, text
    assert f"  uploaded:  beta 1.1 on {day(beta_time)}" in text, text

    entries = record_entries(project)
    beta = entries["requirements/beta-1.1-py3-none-any.whl"]
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert (beta["index"], beta["upload-time"], beta["fetched"]) == ("fixture", beta_time, today), beta
    assert beta["size"] == os.path.getsize(project.path / "requirements" / "beta-1.1-py3-none-any.whl")
    assert not any("127.0.0.1" in line for line in project.read(provenance.RECORD).splitlines())
    assert f"upload-time = {beta_time}" in project.read(pylock.NAME)
    assert_ok(project.make("check"))

    # A freeze that changes nothing keeps both files byte for byte: no date churn.
    record, lock = project.read(provenance.RECORD), project.read(pylock.NAME)
    result = assert_ok(freeze(project, "freeze", index, "INDEX_NAME=fixture"))
    assert "Pins (requirements.txt):\n  no change" in result.stdout, describe(result)
    assert (project.read(provenance.RECORD), project.read(pylock.NAME)) == (record, lock)


@slow
def test_an_index_without_upload_times_stops_the_cooling_off_with_one_clear_error(project, http_index):  # noqa: F811
    index = http_index(with_times=False)
    project.requirements_in(add=["beta"])
    before = managed_digest(project.path)
    result = freeze(project, "freeze", index)
    assert_one_error(result, "does not serve", "upload", "COOLDOWN_DAYS=0", "Nothing was changed")
    assert diff_digests(before, managed_digest(project.path)) == []
    # The way on the message names works.
    assert_ok(freeze(project, "freeze", index, "COOLDOWN_DAYS=0"))
    assert project.pins()["beta"].version == "1.1"


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
    unshare_or_skip("-n")
    prefix = ("unshare", "-n")
    env = tmp_path / "from-pylock"
    subprocess.run([sys.executable, "-I", built_checkout / "virtualenv.py", "--no-seed", "--no-download",
                    "--no-periodic-update", env], check=True, capture_output=True)
    seed = next((built_checkout / "virtualenv_support").glob("pip-*.whl"))
    result = subprocess.run([*prefix, env / "bin" / "python", "-I", seed / "pip", "install", "--isolated",
                             "--no-index", "--no-cache-dir", "--no-compile", "-r", built_checkout / "pylock.toml"],
                            cwd=built_checkout, capture_output=True, text=True, env=make_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(env / "bin" / "python") == installed(built_checkout / "ve" / "bin" / "python")


# --- the SBOM ----------------------------------------------------------------------------------------------------


def cyclonedx_validator():
    """The CycloneDX 1.6 JSON schema as a validator, from the copies cyclonedx-python-lib ships, offline.

    fastjsonschema (pure Python) rather than jsonschema, whose `referencing` needs the compiled rpds-py. The
    schema's references to its sibling schemas (SPDX ids, JSF) are served from the same directory.
    """
    import fastjsonschema
    from cyclonedx.schema import _res

    directory = Path(_res.__file__).parent

    def load(name):
        return json.loads((directory / name).read_text(encoding="utf-8"))

    return fastjsonschema.compile(load("bom-1.6.SNAPSHOT.schema.json"),
                                  handlers={"http": lambda uri: load(uri.split("#")[0].rpartition("/")[2])},
                                  formats={"iri-reference": r".*", "idn-email": r".*"})


@slow
def test_make_sbom_is_schema_valid_deterministic_and_lists_what_make_ve_installs(built_checkout):  # noqa: F811
    import fastjsonschema

    unshare_or_skip("-n")  # offline: the first run has no network at all
    first = assert_ok(run_make(built_checkout, "sbom", "SBOM_DIR=sbom-1", prefix=("unshare", "-n")))
    assert_ok(run_make(built_checkout, "sbom", "SBOM_DIR=sbom-2"))
    names = sorted(path.name for path in (built_checkout / "sbom-1").iterdir())
    targets = lockfile.targets((built_checkout / "requirements.txt").read_text(encoding="utf-8"))
    assert names == [f"sbom-python{target}.cdx.json" for target in targets], describe(first)
    validate = cyclonedx_validator()
    pins, _ = lockfile.parse((built_checkout / "requirements.txt").read_text(encoding="utf-8"))
    for name, target in zip(names, targets):
        data = (built_checkout / "sbom-1" / name).read_bytes()
        assert data == (built_checkout / "sbom-2" / name).read_bytes(), name  # same lock, same bytes
        document = json.loads(data)
        validate(document)
        components = {component["purl"]: component for component in document["components"]}
        assert len(components) == len(document["components"])
        assert sorted(components) == sorted(f"pkg:pypi/{pin.name}@{pin.version}" for pin in pins
                                            if pin.applies_to(target))
        assert all(component["hashes"][0]["alg"] == "SHA-256" for component in components.values())
        assert "timestamp" not in document.get("metadata", {})
        edges = {entry["ref"]: entry.get("dependsOn", []) for entry in document["dependencies"]}
        assert "packaging==" in " ".join(edges[next(ref for ref in edges if ref.startswith("build=="))])
    this = json.loads((built_checkout / "sbom-1" / f"sbom-python{THIS_PYTHON}.cdx.json").read_text())
    ve = installed(built_checkout / "ve" / "bin" / "python")
    assert sorted(component["purl"] for component in this["components"]) == sorted(
        f"pkg:pypi/{canonicalize_name(name)}@{version}" for name, (version, _) in ve.items())
    broken = json.loads(json.dumps(this))
    broken["components"][0]["hashes"][0]["alg"] = "SHA-257"
    with pytest.raises(fastjsonschema.JsonSchemaValueException):
        validate(broken)
