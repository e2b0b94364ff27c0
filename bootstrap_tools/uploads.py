"""When and where each file came from: the index's own answer (PEP 691 JSON, PEP 700 upload-time and size).

pip keeps upload times to itself, so the maintainer tooling asks the index the way pip does: the same index URL
(INDEX_URL, or pip's own default read from pip at run time), the JSON form of the simple API, stdlib urllib.
Only http(s) indexes are asked; a file:// index (the tests') or an index that serves only HTML answers nothing,
and the upload times stay unknown (None). Never fatal: the cooling-off itself is pip's, this is for the record
and the report.
"""

import base64
import datetime
import json
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from packaging.utils import (
    InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename, parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

ACCEPT = "application/vnd.pypi.simple.v1+json"
TIMEOUT = 60


def default_index_url():
    """pip's own default index, read from the pip that runs here (never written into the repository)."""
    from pip._internal.models.index import PyPI
    return PyPI.simple_url


def index_label(index_url, index_name=""):
    """The name the record gives an index: INDEX_NAME when set, `default` for pip's default; never a URL."""
    if index_name:
        return index_name
    return "default" if not index_url else "custom"


class Uploads:
    """The files an index lists per project, asked once per project per run."""

    def __init__(self, index_url):
        self.index_url = index_url or default_index_url()
        self._projects = {}

    def files(self, name):
        """[{filename, version, sha256, upload-time, size, yanked}] for `name`, or [] when the index does not say."""
        name = canonicalize_name(name)
        if name not in self._projects:
            self._projects[name] = list(self._ask(name))
        return self._projects[name]

    def ask_all(self, names, jobs=8):
        """Ask about several projects at once, each still once per run: a first freeze records every file of every
        project, and one question after another costs a round trip each (seconds for a 70-pin lock)."""
        wanted = sorted({canonicalize_name(name) for name in names} - set(self._projects))
        if len(wanted) < 2:
            return
        with ThreadPoolExecutor(max_workers=min(jobs, len(wanted)), thread_name_prefix="uploads") as pool:
            for name, files in zip(wanted, pool.map(lambda name: list(self._ask(name)), wanted)):
                self._projects[name] = files

    def _ask(self, name):
        base = self.index_url.rstrip("/") + "/"
        parts = urllib.parse.urlsplit(base)
        if parts.scheme not in ("http", "https"):
            return
        headers = {"Accept": ACCEPT}
        netloc = parts.netloc
        if "@" in netloc:  # credentials in INDEX_URL: sent as pip sends them, never kept
            userinfo, _, netloc = netloc.rpartition("@")
            token = base64.b64encode(urllib.parse.unquote(userinfo).encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path + f"{name}/", "", ""))
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT) as response:
                if ACCEPT not in response.headers.get("Content-Type", ""):
                    return
                data = json.load(response)
        except (OSError, ValueError, urllib.error.URLError):
            return
        for entry in data.get("files", []):
            filename = entry.get("filename", "")
            version = version_of(filename)
            if version is None:
                continue
            yield {"filename": filename, "version": version, "sha256": (entry.get("hashes") or {}).get("sha256"),
                   "upload-time": entry.get("upload-time"), "size": entry.get("size"),
                   "yanked": bool(entry.get("yanked"))}

    def of_file(self, name, sha256):
        """The index's entry for the file of `name` with this sha256, or None."""
        return next((entry for entry in self.files(name) if entry["sha256"] == sha256), None)

    def released(self, name, version):
        """The earliest upload time (ISO text) of `version`'s files, or None when unknown."""
        times = [entry["upload-time"] for entry in self.files(name)
                 if entry["version"] == version and entry["upload-time"]]
        return min(times, key=parse_time) if times else None

    def held_back(self, name, version, cutoff):
        """[(newer version, its upload time)]: releases after `version` the cutoff kept out (not yanked)."""
        try:
            pinned = Version(version)
        except InvalidVersion:
            return []
        limit = parse_time(cutoff)
        newer = {}
        for entry in self.files(name):
            try:
                candidate = Version(entry["version"])
            except InvalidVersion:
                continue
            if candidate <= pinned or entry["yanked"] or (candidate.is_prerelease and not pinned.is_prerelease):
                continue
            newer.setdefault(candidate, []).append(entry["upload-time"])
        held = []
        for candidate, times in sorted(newer.items()):
            known = [parse_time(moment) for moment in times if moment]
            if known and min(known) >= limit:
                held.append((str(candidate), min(times, key=lambda moment: parse_time(moment) if moment else limit)))
        return held


def version_of(filename):
    try:
        if filename.endswith(".whl"):
            return str(parse_wheel_filename(filename)[1])
        return str(parse_sdist_filename(filename)[1])
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def parse_time(text):
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def day(text):
    """The date part of an upload time, for the report."""
    return parse_time(text).astimezone(datetime.timezone.utc).strftime("%Y-%m-%d") if text else "?"
