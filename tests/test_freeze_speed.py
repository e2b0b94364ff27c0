"""`make freeze` doing nothing twice (issue 29): one HTTP cache for every pair, artifacts at hand never downloaded
again, pairs resolved side by side with the same lock, requirements/ and report as one after another."""

import difflib
import hashlib
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import (
    REPO, assert_ok, assert_one_error, built, clear_build_area, copy_checkout, describe, diff_digests, run_make,
    tree_digest,
)
from index_helpers import build_wheel
from bootstrap_tools import freeze as freeze_tool, lockfile, parallel, targets, uploads
from bootstrap_tools.run import ToolError, run

THIS_PYTHON = "%d.%d" % sys.version_info[:2]
PLATFORMS = "linux-x86_64 linux-aarch64 macos-arm64"


# --- one HTTP cache, pip-tools' cache per pair, nothing at hand downloaded --------------------------------------


def test_pip_compile_and_pip_download_share_one_http_cache_and_keep_pip_tools_cache_per_pair(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(targets, "run", lambda argv, **kwargs: seen.append([str(arg) for arg in argv]) or "")
    shared = tmp_path / "cache dir" / "pip"
    env = {"PIP_CACHE_DIR": str(shared)}
    targets.compile_one(tmp_path, sys.executable, THIS_PYTHON, tmp_path, env, False, "", {})
    argv = seen[-1]
    pip_args = argv[argv.index("--pip-args") + 1]
    assert pip_args.endswith(f" --cache-dir '{shared}'"), pip_args  # pip's HTTP cache: the shared one
    assert argv[argv.index("--cache-dir") + 1] == str(tmp_path / ".bootstrap" / "cache" / f"pip-tools-{THIS_PYTHON}")

    digest = hashlib.sha256(b"wheel").hexdigest()
    pin = lockfile.parse_line(f"alpha==1.0 --hash=sha256:{digest}")

    def fake_download(argv, **kwargs):
        seen.append([str(arg) for arg in argv])
        dest = Path(argv[argv.index("--dest") + 1])
        dest.mkdir(parents=True, exist_ok=True)
        (dest / "alpha-1.0-py3-none-any.whl").write_bytes(b"wheel")
        return ""
    monkeypatch.setattr(targets, "run", fake_download)
    targets.download_batch(THIS_PYTHON, [pin], tmp_path / "downloads", env, "")
    assert seen[-1][seen[-1].index("--cache-dir") + 1] == str(shared), seen[-1]


def test_an_artifact_at_hand_with_a_locked_hash_is_never_downloaded(tmp_path, monkeypatch):
    wheel = build_wheel(tmp_path / "requirements", "alpha", "1.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    pin = lockfile.parse_line(f"alpha==1.0 --hash=sha256:{digest}")

    def refuse(*args, **kwargs):
        raise AssertionError("downloaded an artifact requirements/ holds")
    monkeypatch.setattr(targets, "download_batch", refuse)
    chosen = targets.fetch_for_targets([pin], ["3.10", "3.13"], {wheel: digest}, tmp_path / "downloads", {}, "",
                                       jobs=2)
    assert chosen == {pin: [wheel]}


# --- downloads batched: one `pip download` per pair, the choice of one per artifact ------------------------------


def bytes_sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fake_index(directory):
    """Wheels as an index serves them: alpha pure (and a binary wheel pip must not prefer), beta one per Python and
    platform, gamma abi3 per platform. {(name, version): [wheel paths]}."""
    wheels = {("alpha", "1.0"): ["py3-none-any", "cp310-cp310-manylinux_2_17_x86_64"],
              ("beta", "1.0"): [f"cp3{minor}-cp3{minor}-{platform}" for minor in (10, 11)
                                for platform in ("manylinux_2_17_x86_64", "macosx_11_0_arm64")],
              ("gamma", "1.0"): ["cp39-abi3-manylinux_2_17_x86_64", "cp39-abi3-macosx_11_0_arm64"]}
    return {key: [build_wheel(directory, *key, tag=tag) for tag in tags] for key, tags in wheels.items()}


def fake_pip_download(index, calls):
    """`pip download -r FILE --dest DIR` through as_platform.py, as pip chooses: per requirement, of the files with
    an allowed hash, the one whose tag the spec ranks first."""
    import json

    def run_(argv, **kwargs):
        argv = [str(arg) for arg in argv]
        ranks = {tag: rank for rank, tag in enumerate(json.loads(Path(argv[3]).read_text())["tags"])}
        dest = Path(argv[argv.index("--dest") + 1])
        dest.mkdir(parents=True, exist_ok=True)
        names = []
        for line in Path(argv[argv.index("-r") + 1]).read_text().splitlines():
            pin = lockfile.parse_line(line)
            files = [path for path in index[(pin.name, pin.version)] if bytes_sha256(path) in pin.hashes
                     and path.name[:-4].split("-", 2)[2] in ranks]
            best = min(files, key=lambda path: ranks[path.name[:-4].split("-", 2)[2]])
            shutil.copyfile(best, dest / best.name)
            names.append(best.name)
        calls.append((argv[argv.index("--python-version") + 1], dest.name, names))
        return ""
    return run_


@pytest.mark.parametrize("jobs", [1, 3])
def test_downloads_are_one_pip_download_per_pair_choosing_pure_wheels_first_and_nothing_twice(
        tmp_path, monkeypatch, capsys, jobs):
    from bootstrap_tools import platforms

    index = fake_index(tmp_path / "index")
    pins = [lockfile.parse_line(f"{name}=={version} " + " ".join(f"--hash=sha256:{bytes_sha256(path)}"
                                                                 for path in paths))
            for (name, version), paths in index.items()]
    pairs = platforms.pairs(Path(__file__).resolve().parent.parent, ["3.10", "3.11"], ["linux-x86_64", "macos-arm64"])
    calls = []
    monkeypatch.setattr(targets, "run", fake_pip_download(index, calls))
    hashed = []
    monkeypatch.setattr(lockfile, "sha256", lambda path: hashed.append(path) or bytes_sha256(path))
    monkeypatch.setattr(freeze_tool, "DIGESTS", {})
    candidates = {}
    chosen = targets.fetch_for_targets(pins, pairs, candidates, tmp_path / "downloads", {}, "", jobs=jobs,
                                       digest=freeze_tool.artifact_digest)
    names = {pin.name: sorted(path.name for path in paths) for pin, paths in chosen.items()}
    assert names == {"alpha": ["alpha-1.0-py3-none-any.whl"],
                     "beta": sorted(path.name for path in index[("beta", "1.0")]),
                     "gamma": sorted(path.name for path in index[("gamma", "1.0")])}
    # One run per pair: the first pair fetches all three; the others only what it cannot share.
    assert sorted(calls) == sorted([
        ("3.10", "linux-x86_64-3.10", ["alpha-1.0-py3-none-any.whl", "beta-1.0-cp310-cp310-manylinux_2_17_x86_64.whl",
                                       "gamma-1.0-cp39-abi3-manylinux_2_17_x86_64.whl"]),
        ("3.10", "macos-arm64-3.10", ["beta-1.0-cp310-cp310-macosx_11_0_arm64.whl",
                                      "gamma-1.0-cp39-abi3-macosx_11_0_arm64.whl"]),
        ("3.11", "linux-x86_64-3.11", ["beta-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"]),
        ("3.11", "macos-arm64-3.11", ["beta-1.0-cp311-cp311-macosx_11_0_arm64.whl"])]), calls
    assert set(candidates) == {path for paths in chosen.values() for path in paths}
    assert sorted(hashed) == sorted(set(hashed)), hashed  # each artifact read once (the freeze's memo)
    out = capsys.readouterr().out
    phases = [line for line in out.splitlines() if line.startswith("==> downloading ")]
    side_by_side = ", 3 at a time (FREEZE_JOBS)" if jobs > 1 else ""
    assert phases == ["==> downloading 3 artifact(s) for 1 pair",
                      f"==> downloading 4 artifact(s) for 3 pairs{side_by_side}"], out
    assert out.count("==> downloaded ") == 4, out


def test_a_failed_download_side_by_side_names_the_first_pair_in_order_that_failed(tmp_path, monkeypatch, capsys):
    from bootstrap_tools import platforms

    index = fake_index(tmp_path / "index")
    pins = [lockfile.parse_line(f"{name}=={version} " + " ".join(f"--hash=sha256:{bytes_sha256(path)}"
                                                                 for path in paths))
            for (name, version), paths in index.items()]
    pairs = platforms.pairs(Path(__file__).resolve().parent.parent, ["3.10", "3.11"], ["linux-x86_64", "macos-arm64"])
    download = fake_pip_download(index, [])

    def flaky(argv, **kwargs):
        dest = Path(str(argv[argv.index("--dest") + 1])).name
        if dest in ("macos-arm64-3.10", "macos-arm64-3.11"):
            time.sleep(0.3 if dest.endswith("3.10") else 0)  # the later pair fails first
            raise ToolError("command failed", output=f"ERROR: HTTP error 404 while getting beta for {dest}\n")
        return download(argv, **kwargs)
    monkeypatch.setattr(targets, "run", flaky)
    with pytest.raises(ToolError) as failed:
        targets.fetch_for_targets(pins, pairs, {}, tmp_path / "downloads", {}, "", jobs=3)
    message = str(failed.value)
    assert message.startswith("pip download of beta==1.0, gamma==1.0 for Python 3.10 on macos-arm64 failed: HTTP "
                              "error 404 while getting beta for macos-arm64-3.10; "), message
    assert "\n" not in message
    out = capsys.readouterr().out
    assert "downloaded beta==1.0 for Python 3.11 on macos-arm64" not in out, out


def test_the_download_spec_ranks_the_pure_tags_first_then_the_pairs_own_in_its_order(tmp_path):
    from bootstrap_tools import platforms

    pair = platforms.pairs(Path(__file__).resolve().parent.parent, ["3.11"], ["macos-arm64"])[0]
    spec = targets.download_spec(pair, tmp_path / "missing")
    pure = [tag for tag in spec["tags"] if tag.startswith("py") and tag.endswith("-none-any")]
    assert spec["tags"][:len(pure)] == pure and pure[:2] == ["py311-none-any", "py3-none-any"], spec["tags"][:5]
    assert spec["tags"][len(pure):] == [str(tag) for tag in pair.tags() if str(tag) not in pure]
    assert spec["environment"] == pair.descriptor["environment"]


# --- side by side, shown in order ------------------------------------------------------------------------------


def test_jobs_side_by_side_show_their_output_in_order_and_stop_at_the_first_failure_in_order(capsys):
    def work(item):
        time.sleep(0.05 * (3 - item))  # the later ones finish first
        print(f"==> job {item}")
        print(f"job {item} on stderr", file=sys.stderr)
        return item * 10

    assert list(parallel.in_order(range(4), work, 3)) == [(0, 0), (1, 10), (2, 20), (3, 30)]
    out, err = capsys.readouterr()
    assert out == "".join(f"==> job {item}\n" for item in range(4))
    assert err == "".join(f"job {item} on stderr\n" for item in range(4))

    started = []
    lock = threading.Lock()

    def failing(item):
        with lock:
            started.append(item)
        print(f"==> job {item}")
        if item in (0, 1, 2):
            time.sleep({0: 0.3, 1: 0.5, 2: 0}[item])
        if item in (1, 2):  # 2 fails first, 1 is the first in order to fail
            raise ToolError(f"job {item} failed")
        return item

    with pytest.raises(ToolError, match="job 1 failed"):
        list(parallel.in_order(range(6), failing, 3))
    out, _ = capsys.readouterr()
    assert out == "==> job 0\n==> job 1\n"  # nothing of the jobs after the failing one
    assert sorted(started) == [0, 1, 2]  # none started after job 2 failed

    def slow_child(item):
        if item == 0:
            time.sleep(0.2)
            raise ToolError("job 0 failed")
        run([sys.executable, "-c", "import time; time.sleep(60)"])  # terminated when job 0 fails

    begun = time.monotonic()
    with pytest.raises(ToolError, match="job 0 failed"):
        list(parallel.in_order(range(2), slow_child, 2))
    assert time.monotonic() - begun < 20


# --- the same lock, requirements/ and report for any number of jobs --------------------------------------------


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    from test_freeze import make_index

    root = tmp_path_factory.mktemp("freeze-speed")
    path = copy_checkout(root / "checkout")
    index = make_index(root / "index")
    (path / "requirements.in").write_text((path / "requirements.in").read_text() + "alpha\n")
    for name in ("requirements-dev.in", "requirements-dev.txt"):  # the dev set would double every pip-compile run
        (path / name).unlink()
    built(run_make(path, "ve"))
    pristine = root / "pristine"
    shutil.copytree(path, pristine, symlinks=True, ignore=lambda directory, names: (
        [name for name in names if name in LOCAL] if directory == str(path) else []))
    return path, pristine, index


LOCAL = ("ve", ".ve-a", ".ve-b", ".ve.lock", ".bootstrap", "build")


def restore(path, pristine):
    for entry in path.iterdir():
        if entry.name in LOCAL:
            continue
        shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    shutil.copytree(pristine, path, symlinks=True, dirs_exist_ok=True)
    clear_build_area(path)


def freeze(path, index, jobs, *more):
    return run_make(path, "freeze", f"INDEX_URL={index.url}", f"TARGET_PYTHONS={THIS_PYTHON}",
                    f"TARGET_PLATFORMS={PLATFORMS}", f"FREEZE_JOBS={jobs}", "COOLDOWN_DAYS=0", *more)  # no clock


def source(path):
    return {name: digest for name, digest in tree_digest(path).items()
            if name.split("/", 1)[0] not in LOCAL and "__pycache__" not in name}


def outcome(path):
    return source(path), (path / ".bootstrap" / "freeze-report.txt").read_text(encoding="utf-8")


@pytest.mark.slow
def test_a_multi_pair_freeze_side_by_side_makes_the_same_tree_and_report_as_one_after_another(checkout):
    path, pristine, index = checkout
    restore(path, pristine)
    sequential = assert_ok(freeze(path, index, 1))
    assert "at a time" not in sequential.stdout, describe(sequential)
    expected = outcome(path)
    restore(path, pristine)
    side_by_side = assert_ok(freeze(path, index, 3))
    assert "==> pip-compile for 3 targets, 3 at a time (FREEZE_JOBS)" in side_by_side.stdout, describe(side_by_side)
    tree, report = outcome(path)
    assert diff_digests(expected[0], tree) == []
    assert report == expected[1], "".join(difflib.unified_diff(expected[1].splitlines(True), report.splitlines(True)))
    # The pairs' lines in the pairs' order, as one after another.
    lines = [line for line in side_by_side.stdout.splitlines() if line.startswith("==> pip-compile for Python")]
    assert lines == [line for line in sequential.stdout.splitlines() if line.startswith("==> pip-compile for Python")]
    assert "alpha==1.0" in (path / "requirements.txt").read_text()


@pytest.mark.slow
def test_a_side_by_side_freeze_stops_at_the_first_pair_that_cannot_resolve(checkout):
    path, pristine, index = checkout
    restore(path, pristine)
    (path / "requirements.in").write_text((path / "requirements.in").read_text() + "nosuchthing\n")
    before = source(path)
    result = freeze(path, index, 3)
    error = assert_one_error(result, "pip-compile for Python", "nosuchthing", "Nothing was changed")
    first = f"pip-compile for Python {THIS_PYTHON}"
    assert f"{first} on {PLATFORMS.split()[0]} failed" in error, error
    lines = [line for line in result.stdout.splitlines() if line.startswith("==> pip-compile for Python")]
    # Only the first pair's output (its retry from an sdist included); the others' is never shown.
    assert lines and {line.split(" (")[0] for line in lines} == {f"==> {first} on {PLATFORMS.split()[0]}"}, \
        describe(result)
    assert diff_digests(before, source(path)) == []


def test_pip_compile_takes_a_files_sha256_from_the_index_link_and_downloads_only_a_link_without_one(
        tools_python, tmp_path):
    """pip-tools hashes a file by downloading it unless the index answers its JSON API: every platform's wheels of
    every pinned version, most of a first freeze's time. Under as_platform.py it takes the link's own sha256 (the
    hash pip checks a download against); a link that carries none is still downloaded and hashed."""
    wheel = build_wheel(tmp_path / "files", "alpha", "1.0")
    script = tmp_path / "probe.py"
    script.write_text(f"""
import importlib.util
from pip._internal.models.link import Link
from piptools.repositories.pypi import PyPIRepository

downloaded = []
def hash_by_download(self, link):
    downloaded.append(link.filename)
    return "sha256:from-download"
PyPIRepository._get_file_hash = hash_by_download  # stands for pip-tools' own, which as_platform wraps
spec = importlib.util.spec_from_file_location("as_platform", {str(REPO / "bootstrap_tools" / "as_platform.py")!r})
as_platform = importlib.util.module_from_spec(spec)
spec.loader.exec_module(as_platform)
as_platform.use_index_hashes()
print(PyPIRepository._get_file_hash(None, Link("https://index.invalid/alpha-1.0-py3-none-any.whl#sha256={'ab' * 32}")))
print(PyPIRepository._get_file_hash(None, Link({wheel.as_uri()!r})))
print(downloaded)
""")
    output = run([tools_python, "-I", script]).splitlines()
    assert output == [f"sha256:{'ab' * 32}", "sha256:from-download", "['alpha-1.0-py3-none-any.whl']"], output


def test_the_record_asks_the_index_about_every_new_project_at_once_and_each_only_once(monkeypatch):
    """requirements-provenance.json of a first freeze asks the index about every project (upload times): side by side
    (uploads.Uploads.ask_all), and never twice for one project in a run."""
    asked, started = [], threading.Barrier(2, timeout=10)

    def ask(self, name):
        asked.append(name)
        if len(asked) <= 2:
            started.wait()  # two questions under way at once, or the barrier breaks
        return iter([{"filename": f"{name}-1.0-py3-none-any.whl", "version": "1.0", "sha256": name,
                      "upload-time": None, "size": 1, "yanked": False}])

    monkeypatch.setattr(uploads.Uploads, "_ask", ask)
    index = uploads.Uploads("https://index.invalid/simple/")
    index.ask_all(["Alpha", "beta", "alpha", "gamma"])
    assert sorted(asked) == ["alpha", "beta", "gamma"]
    assert index.of_file("ALPHA", "alpha")["filename"] == "alpha-1.0-py3-none-any.whl"
    index.ask_all(["beta", "delta"])  # one new project: asked when needed, as files() would
    assert sorted(asked) == ["alpha", "beta", "gamma"] and index.files("delta") and asked[-1] == "delta"
