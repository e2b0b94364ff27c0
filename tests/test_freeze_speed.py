"""`make freeze` doing nothing twice (issue 29): one HTTP cache for every pair, artifacts at hand never downloaded
again, pairs resolved side by side with the same lock, requirements/ and report as one after another."""

import hashlib
import sys
from pathlib import Path

from index_helpers import build_wheel
from bootstrap_tools import lockfile, targets

THIS_PYTHON = "%d.%d" % sys.version_info[:2]


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
    targets.download(pin, THIS_PYTHON, tmp_path / "downloads", env, "")
    assert seen[-1][seen[-1].index("--cache-dir") + 1] == str(shared), seen[-1]


def test_an_artifact_at_hand_with_a_locked_hash_is_never_downloaded(tmp_path, monkeypatch):
    wheel = build_wheel(tmp_path / "requirements", "alpha", "1.0")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    pin = lockfile.parse_line(f"alpha==1.0 --hash=sha256:{digest}")

    def refuse(*args, **kwargs):
        raise AssertionError("downloaded an artifact requirements/ holds")
    monkeypatch.setattr(targets, "download", refuse)
    chosen = targets.fetch_for_targets([pin], ["3.10", "3.13"], {wheel: digest}, tmp_path / "downloads", {}, "")
    assert chosen == {pin: [wheel]}
