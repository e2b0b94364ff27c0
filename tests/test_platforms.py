"""Declared platforms (issue 10): one lock and one wheelhouse for Linux x86_64, Linux aarch64 and macOS arm64,
resolved and checked from this one machine, against an index in tmp_path.

The index serves this project's own wheels (the ve and the Python 3.12 tool environment need them) and:

- binpkg 1.0: binary wheels only, one per (platform, Python) pair (manylinux x86_64 and aarch64, macOS arm64;
  cp311 and cp312), tags faked in the file names and WHEEL files; it needs `macdep` on macOS only
  (`sys_platform == "darwin"`);
- toolkit 1.0, pure, needs `armdep` on aarch64 only (`platform_machine == "aarch64"`);
- purelib 1.0, pure.

One checkout, its dev set dropped (the scenarios are about the runtime lock), is frozen once for the three
platforms and Python 3.11 and 3.12 (six pip-compile runs), checked, built here, then frozen again for this platform
alone; the scenarios read what each step left. Nothing here needs the network.
"""

import json
import subprocess

import pytest

from conftest import (
    REPO, _unshare_works, assert_ok, assert_pip_check_clean, built, copy_checkout, describe, make_env, restored,
    run_make, sha256_file, ve_python,
)
from index_helpers import Index, build_wheel
from bootstrap_tools import lockfile, platforms, report, targets, unify
from bootstrap_tools.pythons import find_python
from bootstrap_tools.run import ToolError

from packaging import tags
from packaging.markers import default_environment
from packaging.utils import canonicalize_name

slow = pytest.mark.slow

PYTHONS = ("3.11", "3.12")
DECLARED = ("linux-x86_64", "linux-aarch64", "macos-arm64")
WHEEL_PLATFORMS = {"linux-x86_64": "manylinux_2_17_x86_64", "linux-aarch64": "manylinux_2_17_aarch64",
                   "macos-arm64": "macosx_11_0_arm64"}
HERE = platforms.this_platform()


class Frozen:
    def __init__(self, path, steps):
        self.path, self.steps = path, steps

    def pins(self, step):
        pins, problems = lockfile.parse(self.steps[step]["lock"])
        assert problems == [], problems
        return {pin.name: pin for pin in pins}


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    root = tmp_path_factory.mktemp("platforms")
    if find_python("3.12", root / "home") is None:
        pytest.skip("needs CPython 3.12 here (python3.12 on PATH or under `pyenv root`)")
    if HERE != "linux-x86_64":
        pytest.skip(f"the scenario is written for a linux-x86_64 machine, not {HERE}")
    index = Index(root / "index")
    for wheel in sorted((REPO / "requirements").glob("*.whl")):
        index.add_file(wheel)
    made = root / "made"
    for name, version, requires in (("macdep", "1.0", ()), ("armdep", "1.0", ()), ("purelib", "1.0", ()),
                                    ("toolkit", "1.0", ['armdep ; platform_machine == "aarch64"'])):
        index.add_file(build_wheel(made, name, version, requires=requires))
    for python in PYTHONS:
        interpreter = "cp" + python.replace(".", "")
        for platform_tag in WHEEL_PLATFORMS.values():
            index.add_file(build_wheel(made, "binpkg", "1.0", requires=['macdep ; sys_platform == "darwin"'],
                                       tag=f"{interpreter}-{interpreter}-{platform_tag}"))
    path = copy_checkout(root / "checkout")
    requirements_in = path / "requirements.in"
    requirements_in.write_text(requirements_in.read_text() + "binpkg\ntoolkit\npurelib\n")
    for name in ("requirements-dev.in", "requirements-dev.txt"):  # the dev set would double every pip-compile run
        (path / name).unlink()
    steps = {}

    def freeze(step, *declared):
        result = assert_ok(run_make(path, "freeze", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={' '.join(PYTHONS)}",
                                    f"TARGET_PLATFORMS={' '.join(declared)}"))
        steps[step] = {"result": result, "lock": (path / "requirements.txt").read_text(),
                       "report": (path / ".bootstrap" / "freeze-report.txt").read_text(),
                       "artifacts": {p.name: sha256_file(p) for p in (path / "requirements").iterdir()}}

    built(run_make(path, "ve"))
    freeze("three", *DECLARED)
    steps["three"]["check"] = run_make(path, "check")
    mac_wheel = path / "requirements" / "binpkg-1.0-cp312-cp312-macosx_11_0_arm64.whl"
    with restored(mac_wheel):
        mac_wheel.unlink()
        steps["three"]["missing mac wheel"] = run_make(path, "check")
    steps["three"]["ve"] = run_make(path, "ve")
    installed = ve_python(path, "import importlib.metadata as m, json; print(json.dumps(sorted("
                                "d.metadata['Name'] for d in m.distributions())))")
    steps["three"]["installed"] = json.loads(installed.stdout)
    steps["three"]["build"] = ve_python(path, "import binpkg; print(binpkg.BUILD)").stdout.strip()
    assert_pip_check_clean(path)
    steps["three"]["wheelhouse"] = root / "wheelhouse-three"
    copy = steps["three"]["wheelhouse"]
    copy.mkdir()
    for artifact in (path / "requirements").iterdir():
        (copy / artifact.name).write_bytes(artifact.read_bytes())
    freeze("here")
    return Frozen(path, steps)


@slow
def test_freeze_for_three_platforms_writes_the_simplest_marker_for_each_platform_only_pin(frozen):
    lock = frozen.steps["three"]["lock"]
    assert f"# platforms: {' '.join(DECLARED)}\n" in lock and "# targets: 3.11 3.12\n" in lock
    pins = frozen.pins("three")
    assert pins["macdep"].marker == 'sys_platform == "darwin"'
    assert pins["armdep"].marker == 'platform_machine == "aarch64"'
    for name in ("binpkg", "toolkit", "purelib"):
        assert pins[name].marker == "", pins[name].line
    # binpkg's one line holds the hash of each pair's wheel.
    assert len(pins["binpkg"].hashes) == len(PYTHONS) * len(DECLARED)
    report = frozen.steps["three"]["report"].splitlines()
    # A pin only another platform installs is still listed with the pins, for the Pythons it holds for there.
    assert "  added:     macdep 1.0" in report and "  added:     armdep 1.0" in report, report
    heading = report.index("Platforms (TARGET_PLATFORMS):")
    assert report[heading + 1].startswith("  linux-x86_64: no pin of its own; "), report
    assert report[heading + 2].startswith("  linux-aarch64: armdep==1.0; "), report
    assert report[heading + 3].startswith("  macos-arm64: macdep==1.0; "), report
    assert " bytes of artifacts only it needs" in report[heading + 3], report


@slow
def test_freeze_fetches_each_pairs_binary_wheel_and_make_check_verifies_every_pair(frozen):
    artifacts = frozen.steps["three"]["artifacts"]
    for python in PYTHONS:
        interpreter = "cp" + python.replace(".", "")
        for platform_tag in WHEEL_PLATFORMS.values():
            assert f"binpkg-1.0-{interpreter}-{interpreter}-{platform_tag}.whl" in artifacts, sorted(artifacts)
    for name in ("macdep", "armdep", "toolkit", "purelib"):
        assert f"{name}-1.0-py3-none-any.whl" in artifacts, sorted(artifacts)
    assert_ok(frozen.steps["three"]["check"])


@slow
def test_make_check_names_platform_python_and_pin_of_a_missing_wheel(frozen):
    result = frozen.steps["three"]["missing mac wheel"]
    assert result.returncode != 0, describe(result)
    problems = [line for line in result.stdout.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1 and problems[0].startswith(
        "  - binpkg==1.0: no artifact in requirements/ fits Python 3.12 on macos-arm64 ("), describe(result)
    assert problems[0].endswith("run `make freeze`, or drop macos-arm64 from TARGET_PLATFORMS"), describe(result)
    assert "ERROR: make check found 1 problem(s)" in result.stderr, describe(result)


@slow
@pytest.mark.parametrize("platform_name", DECLARED)
@pytest.mark.parametrize("python", PYTHONS)
def test_offline_dry_install_per_pair_finds_every_selected_artifact_in_the_wheelhouse(frozen, tmp_path, platform_name,
                                                                                      python):
    lock = tmp_path / "requirements.txt"
    lock.write_text(frozen.steps["three"]["lock"])
    pair = platforms.Pair(platforms.load(frozen.path, platform_name), python)
    spec = tmp_path / "spec.json"
    # pip with the pair's markers and tags (as_platform.py), and --python-version for Requires-Python.
    spec.write_text(json.dumps({**pair.spec(tmp_path / "missing"),
                                "environment": {**pair.descriptor["environment"], "python_version": python,
                                                "python_full_version": f"{python}.0",
                                                "implementation_version": f"{python}.0"}}))
    report = tmp_path / "report.json"
    prefix = ["unshare", "-n"] if _unshare_works("-n") else []
    # The checkout's tools env runs pip (the ve holds only the lock's pins: no pip here).
    tools_python = frozen.path / ".bootstrap" / "tools" / "bin" / "python"
    argv = [*prefix, str(tools_python), "-I", str(REPO / "bootstrap_tools" / "as_platform.py"),
            str(spec), "pip", "install", "--dry-run", "--ignore-installed", "--isolated", "--no-index", "--find-links",
            str(frozen.steps["three"]["wheelhouse"]), "--require-hashes", "--no-deps", "--only-binary=:all:",
            "--python-version", python, "--target", str(tmp_path / "target"), "--report", str(report),
            "--quiet", "-r", str(lock)]
    result = subprocess.run(argv, env=make_env(), capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, describe(result)
    assert not (tmp_path / "missing").exists()
    chosen = {canonicalize_name(item["metadata"]["name"]): item["download_info"]["url"].rsplit("/", 1)[1]
              for item in json.loads(report.read_text())["install"]}
    pins = lockfile.parse(lock.read_text())[0]
    assert sorted(chosen) == sorted(pin.name for pin in pins if pin.applies_to(pair))
    assert ("macdep" in chosen) == (platform_name == "macos-arm64")
    assert ("armdep" in chosen) == (platform_name == "linux-aarch64")
    interpreter = "cp" + python.replace(".", "")
    assert chosen["binpkg"] == f"binpkg-1.0-{interpreter}-{interpreter}-{WHEEL_PLATFORMS[platform_name]}.whl"


@slow
def test_make_ve_here_installs_only_this_platforms_subset(frozen):
    built(frozen.steps["three"]["ve"])
    installed = {name.lower() for name in frozen.steps["three"]["installed"]}
    assert {"binpkg", "toolkit", "purelib"} <= installed
    assert not installed & {"macdep", "armdep"}
    assert frozen.steps["three"]["build"] == "cp311-cp311-manylinux_2_17_x86_64"


@slow
def test_a_freeze_for_this_platform_alone_writes_the_lock_as_before_platforms(frozen):
    lock = frozen.steps["here"]["lock"]
    assert "# platforms:" not in lock and targets.MERGE_NOTE in lock
    assert "sys_platform" not in lock and "platform_machine" not in lock
    pins = frozen.pins("here")
    assert "macdep" not in pins and "armdep" not in pins
    assert pins["binpkg"].marker == "" and pins["binpkg"].hashes == frozen.pins("three")["binpkg"].hashes
    # The pins this platform installs are the same in both locks.
    three = frozen.pins("three")
    here = platforms.Pair(platforms.load(frozen.path, HERE), "3.11")
    assert {str(pin) for pin in three.values() if pin.applies_to(here)} == {str(pin) for pin in pins.values()}
    assert "Platforms (TARGET_PLATFORMS):" not in frozen.steps["here"]["report"]
    # The other platforms' artifacts are pruned.
    assert not [name for name in frozen.steps["here"]["artifacts"] if "macosx" in name or "aarch64" in name]


# --- units: descriptors, markers ------------------------------------------------------------------------------


def test_the_recorded_descriptor_of_this_machine_is_what_packaging_says_it_supports():
    running = "%d.%d" % tuple(__import__("sys").version_info[:2])
    descriptor = platforms.recorded([running, "3.13"])
    assert descriptor["name"] == HERE and descriptor["how"] == "record"
    assert [str(tag) for tag in platforms.expand(descriptor, running)] == [str(tag) for tag in tags.sys_tags()]
    environment = default_environment()
    assert descriptor["environment"] == {key: environment[key] for key in platforms.PLATFORM_VARIABLES}
    # Another Python: pip's own rule for --python-version (cpython_tags + compatible_tags) on this platform list.
    platform_list = list(dict.fromkeys(tags.platform_tags()))
    assert platforms.expand(descriptor, "3.13") == [
        *tags.cpython_tags((3, 13), abis=["cp313"], platforms=platform_list),
        *tags.compatible_tags((3, 13), interpreter="cp313", platforms=platform_list)]


def test_generated_descriptors_follow_known_facts_not_this_machine():
    mac = platforms.generated("macos-arm64", ["3.12"])
    assert mac == platforms.generated("macos-arm64", ["3.12"])
    mac_tags = [str(tag) for tag in platforms.expand(mac, "3.12")]
    assert mac_tags[0] == "cp312-cp312-macosx_14_0_arm64" and "cp312-abi3-macosx_11_0_arm64" in mac_tags
    assert "py3-none-any" in mac_tags and not [tag for tag in mac_tags if "linux" in tag]
    assert mac["environment"]["sys_platform"] == "darwin" and mac["environment"]["platform_machine"] == "arm64"
    arm = [str(tag) for tag in platforms.expand(platforms.generated("linux-aarch64", ["3.12"]), "3.12")]
    assert arm[:3] == ["cp312-cp312-manylinux_2_28_aarch64", "cp312-cp312-manylinux_2_27_aarch64",
                       "cp312-cp312-manylinux_2_26_aarch64"]
    assert "cp312-cp312-manylinux2014_aarch64" in arm and "cp312-cp312-linux_aarch64" in arm
    assert not [tag for tag in arm if "x86_64" in tag or "manylinux_2_16" in tag]
    with pytest.raises(ToolError, match="no known facts for platform 'windows-amd64'.*make platforms RECORD=1"):
        platforms.generated("windows-amd64", ["3.12"])


def descriptors():
    return [platforms.generated(name, ["3.10", "3.11"]) for name in DECLARED]


def all_pairs():
    found = [platforms.Pair(descriptor, python) for python in ("3.10", "3.11") for descriptor in descriptors()]
    for pair in found:
        pair.rank = DECLARED.index(pair.platform)
    return found


@pytest.mark.parametrize(("selected", "expected"), [
    (lambda p: True, None),
    (lambda p: p.platform == "macos-arm64", 'sys_platform == "darwin"'),
    (lambda p: p.platform != "macos-arm64", 'sys_platform == "linux"'),
    (lambda p: p.platform == "linux-aarch64", 'platform_machine == "aarch64"'),
    (lambda p: p.platform != "linux-aarch64", 'platform_machine == "x86_64" or sys_platform == "darwin"'),
    (lambda p: p.python == "3.10", 'python_version < "3.11"'),
    (lambda p: p.platform == "macos-arm64" and p.python == "3.11", 'sys_platform == "darwin" and python_version >= '
                                                                   '"3.11"'),
    (lambda p: p.platform == "linux-aarch64" or (p.platform == "macos-arm64" and p.python == "3.10"),
     'platform_machine == "aarch64" or (sys_platform == "darwin" and python_version < "3.11")'),
])
def test_pair_marker_is_the_simplest_marker_selecting_exactly_those_pairs(selected, expected):
    pairs = all_pairs()
    used = [pair for pair in pairs if selected(pair)]
    assert platforms.pair_marker(used, pairs) == expected
    if expected:
        assert [pair for pair in pairs if platforms.evaluate(expected, pair)] == used


def test_a_marker_needing_a_variable_the_descriptor_lacks_is_an_error_never_a_guess():
    pair = all_pairs()[0]
    with pytest.raises(ToolError, match=r"needs platform_release, which platforms/linux-x86_64\.json does not give"):
        platforms.evaluate('platform_release >= "6"', pair)
    assert platforms.evaluate('os_name == "posix" and python_version == "3.10"', pair)


def test_merge_across_pairs_keeps_shared_lines_plain_and_marks_platform_only_ones():
    pairs = all_pairs()
    line = "{} \\\n    --hash=sha256:{}\n"
    results = {pair: line.format("alpha==1.0", "a" * 64) + (line.format("macdep==1.0", "b" * 64)
                                                            if pair.platform == "macos-arm64" else "")
               for pair in pairs}
    body = targets.merge(results, pairs)
    assert body == (targets.PLATFORMS_MERGE_NOTE + line.format("alpha==1.0", "a" * 64)
                    + line.format('macdep==1.0 ; sys_platform == "darwin"', "b" * 64))


def test_fewest_unifies_across_pairs_and_a_remaining_split_names_its_platforms():
    pairs = all_pairs()
    line = "{} \\\n    --hash=sha256:{}\n"

    def compiled(version):
        return line.format(f"alpha=={version}", ("a" if version == "1.0" else "b") * 64)

    newest = {pair: compiled("2.0" if pair.platform == "macos-arm64" else "1.0") for pair in pairs}
    for mac_takes_old in (True, False):
        def attempt(target, proposal, text):  # Linux can take only 1.0; macOS 1.0 too, or only 2.0
            if target.platform != "macos-arm64":
                return compiled("1.0")
            return compiled(proposal["alpha"] if mac_takes_old else "2.0")

        results, splits = unify.unify(newest, pairs, attempt, lambda target, name, version, cause:
                                      f"{name} {version} does not fit Python {target}", step=lambda text: None)
        lock = ("# targets: 3.10 3.11\n# platforms: " + " ".join(DECLARED) + "\n" + targets.merge(results, pairs))
        if mac_takes_old:
            assert splits == {} and "alpha==1.0 \\\n" in lock and "alpha==2.0" not in lock
        else:
            assert splits == {"alpha": ["alpha 1.0 does not fit Python 3.10 on macos-arm64",
                                        "alpha 2.0 does not fit Python 3.10 on linux-x86_64"]}
            assert 'alpha==1.0 ; sys_platform == "linux" \\\n' in lock
            assert 'alpha==2.0 ; sys_platform == "darwin" \\\n' in lock
            assert unify.splits(lock) == {"alpha": "1.0 (Python 3.10 3.11 on linux-x86_64 linux-aarch64), "
                                                   "2.0 (Python 3.10 3.11 on macos-arm64)"}


def test_a_declared_platform_without_its_descriptor_or_a_python_is_one_clear_error(tmp_path):
    with pytest.raises(ToolError, match=r"platform linux-aarch64 is declared in TARGET_PLATFORMS but "
                                        r"platforms/linux-aarch64\.json, its descriptor, is missing: run `make "
                                        r"platforms`"):
        platforms.pairs(tmp_path, ["3.11"], ["linux-aarch64"])
    platforms.write(tmp_path, platforms.generated("linux-aarch64", ["3.11"]))
    assert [str(pair) for pair in platforms.pairs(tmp_path, ["3.11"], ["linux-aarch64"])] == ["3.11 on linux-aarch64"]
    with pytest.raises(ToolError, match=r"platforms/linux-aarch64\.json has no tags for Python 3\.12: run `make "
                                        r"platforms`"):
        platforms.pairs(tmp_path, ["3.11", "3.12"], ["linux-aarch64"])


def test_the_reports_pin_changes_count_a_pin_for_a_python_when_it_holds_there_on_any_platform():
    head = "# targets: {}\n# platforms: " + " ".join(DECLARED) + "\n"
    line = "{} \\\n    --hash=sha256:{}\n"
    before = head.format("3.10") + line.format("alpha==1.0", "a" * 64)
    after = (head.format("3.10 3.11") + line.format("alpha==1.0", "a" * 64)
             + line.format('macdep==1.0 ; sys_platform == "darwin" and python_version >= "3.11"', "b" * 64))
    assert report.pin_changes(before, after) == [("targets", "3.10 -> 3.10 3.11"),
                                                 ("added", "macdep 1.0 (Python 3.11)")]


def test_an_sdist_only_pin_counts_on_a_foreign_pair_and_its_sbom_reads_the_wheel_built_here(tmp_path):
    """A pin published only as an sdist: freeze builds its wheel for this machine only, and on another declared
    platform it builds at `make ve`, offline. So for a macOS pair the sdist is the fitting artifact, and the SBOM
    reads its metadata from the wheel built here."""
    from bootstrap_tools import sbom, wheels
    from sdist_helpers import make_sdist

    wheelhouse = tmp_path / "requirements"
    wheel = build_wheel(wheelhouse, "cext", "1.0", requires=['purelib ; sys_platform == "darwin"'],
                        tag="cp311-cp311-linux_x86_64")
    sdist = make_sdist(wheelhouse, "cext", "1.0", {"setup.py": ""})
    pins, problems = lockfile.parse(f"cext==1.0 --hash=sha256:{sha256_file(wheel)} "
                                    f"--hash=sha256:{sha256_file(sdist)}\n"
                                    f"purelib==1.0 ; sys_platform == \"darwin\" --hash=sha256:{'0' * 64}\n")
    assert problems == []
    mac = platforms.Pair(platforms.generated("macos-arm64", ["3.11"]), "3.11")
    linux = platforms.Pair(platforms.generated("linux-x86_64", ["3.11"]), "3.11")
    assert platforms.unfit(sdist, mac) is None  # builds at make ve there
    assert platforms.unfit(wheel, mac) is not None  # a Linux wheel
    assert platforms.unfit(wheel, linux) is None
    cext = [pin for pin in pins if pin.name == "cext"]
    (chosen_pin, fitting, source), = sbom.installed_pins(tmp_path, cext, mac)
    assert fitting == [sdist] and source == wheel
    assert sbom.dependencies(wheels.artifact_metadata(source), {"purelib"}, sbom.target_environment(mac)) == ["purelib"]
    assert sbom.dependencies(wheels.artifact_metadata(source), {"purelib"}, sbom.target_environment(linux)) == []
    (_, fitting, _), = sbom.installed_pins(tmp_path, cext, linux)
    assert fitting == [wheel]
    assert wheels.artifact_metadata(sdist)["Name"] == "cext"  # where no wheel of the pin is at hand: its PKG-INFO
