"""A deploy host runs only `make ve`: on a tampered checkout it builds exactly what the lock says, from requirements/
alone, or stops with one ERROR line. Each scenario is a pull request a reviewer might not read closely enough.
"""

import http.server
import threading

import pytest

from conftest import artifact, assert_one_error, assert_ve_works, make_wheel, restored, run_make, sha256_file, ve_state

slow = pytest.mark.slow


@pytest.fixture
def server():
    """A local HTTP server on 127.0.0.1 that records every request it gets (there must be none)."""
    requests = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()


@slow
@pytest.mark.parametrize("crafted", [
    "-r {url}/more.txt?x==1 --hash=sha256:{hash}",
    "--find-links={url}/?a==1 --hash=sha256:{hash}",
    "pluggy @ {url}/pluggy-1.0-py3-none-any.whl?v==1 --hash=sha256:{hash}",
    "pluggy==1.0 --find-links {url}/ --hash=sha256:{hash}",
])
def test_a_crafted_lock_line_never_reaches_the_network(built_checkout, server, crafted):
    url, requests = server
    lock = built_checkout / "requirements.txt"
    before = ve_state(built_checkout)
    with restored(lock):
        line = crafted.format(url=url, hash=sha256_file(artifact(built_checkout, "pluggy")))
        lock.write_text(lock.read_text() + line + "\n")
        assert_one_error(run_make(built_checkout, "ve"), "requirements.txt line", "git checkout -- requirements.txt")
    assert requests == [], "the offline build talked to the network"
    assert ve_state(built_checkout) == before


@slow
def test_a_comment_that_ends_in_a_backslash_is_refused(built_checkout):
    """pip would install the next line; a reader that joined it to the comment would hide it from review."""
    lock = built_checkout / "requirements.txt"
    with restored(lock):
        lock.write_text(lock.read_text() + "# reviewed and harmless \\\n")
        assert_one_error(run_make(built_checkout, "ve"), "backslash")


@slow
def test_a_swapped_seed_with_a_matching_sha256sums_is_refused(built_checkout, tmp_path):
    seeds = built_checkout / "virtualenv_support"
    real = next(seeds.glob("pip-*.whl"))
    sums = seeds / "SHA256SUMS"
    before = ve_state(built_checkout)
    with restored(real, sums):
        evil = make_wheel(tmp_path / real.name, "pip", real.name.split("-")[1], {"pip/__init__.py": b"EVIL = 1\n"})
        real.write_bytes(evil.read_bytes())
        sums.write_text(f"{sha256_file(real)}  {real.name}\n")
        assert_one_error(run_make(built_checkout, "ve"), "is not the lock's pip", sha256_file(real))
    assert ve_state(built_checkout) == before


@slow
def test_a_renamed_wheel_with_the_right_bytes_is_not_the_pins_artifact(built_checkout):
    wheel = artifact(built_checkout, "pluggy")
    renamed = wheel.with_name("zzz-9.9-py3-none-any.whl")
    before = ve_state(built_checkout)
    try:
        wheel.rename(renamed)
        assert_one_error(run_make(built_checkout, "ve", "FORCE=1"), "no artifact for pluggy==")
    finally:
        renamed.rename(wheel)
    assert ve_state(built_checkout) == before
    assert_ve_works(built_checkout)
