"""A package index in a directory, for the freeze tests: tiny wheels made with zipfile, PEP 503 pages, file:// URLs.

pip and pip-compile read `--index-url file:///.../simple/`: for each project they fetch `simple/<name>/index.html`
and follow its links. Links carry `#sha256=` like a real index's. Optionally an index also serves what lets
pip-compile lock without reading a wheel: PEP 658 metadata beside each wheel and pip-tools' JSON API
(`<name>/json` with the digests), so a test can delete a wheel after it was locked and before it is downloaded.
"""

import base64
import hashlib
import html
import json
import os
import shutil
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def sha256_bytes(data):
    return hashlib.sha256(data).hexdigest()


def _record_hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def metadata_text(name, version, requires=(), requires_python=">=3.8"):
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}", f"Requires-Python: {requires_python}"]
    lines += [f"Requires-Dist: {requirement}" for requirement in requires]
    return "\n".join(lines) + "\n"


def build_wheel(directory, name, version, requires=(), content="", tag="py3-none-any", requires_python=">=3.8"):
    """A tiny wheel of `name` `version` (any tag) depending on `requires`; `content` varies its bytes.

    Its module says NAME, VERSION, CONTENT and BUILD (the wheel's tag), so a test can tell which wheel got installed.
    """
    module = canonicalize_name(name).replace("-", "_")
    dist_info = f"{module}-{version}.dist-info"
    purelib = "true" if tag.endswith("-none-any") else "false"
    members = {
        f"{module}/__init__.py": (f"NAME = {name!r}\nVERSION = {version!r}\nCONTENT = {content!r}\n"
                                  f"BUILD = {tag!r}\n").encode(),
        f"{dist_info}/METADATA": metadata_text(name, version, requires, requires_python).encode(),
        f"{dist_info}/WHEEL": (f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: {purelib}\n"
                               f"Tag: {tag}\n").encode(),
    }
    record = [f"{member},{_record_hash(data)},{len(data)}" for member, data in members.items()]
    members[f"{dist_info}/RECORD"] = ("\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n").encode()
    path = Path(directory) / f"{module}-{version}-{tag}.whl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(zipfile.ZipInfo(member, ZIP_DATE), data)
    return path


def wheel_core_metadata(path):
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        return archive.read(name)


class Index:
    """A PEP 503 index in `root`: wheels in root/files, pages in root/simple; `url` is what INDEX_URL takes.

    `metadata=True` also serves PEP 658 metadata and pip-tools' JSON API, so locking never opens a wheel.
    """

    def __init__(self, root, metadata=False):
        self.root = Path(root)
        self.files = self.root / "files"
        self.simple = self.root / "simple"
        self.metadata = metadata
        self.files.mkdir(parents=True, exist_ok=True)
        self.simple.mkdir(parents=True, exist_ok=True)
        self.url = self.simple.as_uri() + "/"

    def add_file(self, source):
        """Serve a copy of the wheel `source` (a hard link where the file system allows)."""
        target = self.files / Path(source).name
        if not target.exists():
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
        self.write_pages()
        return target

    def add(self, name, version, requires=(), content=""):
        """Make a tiny wheel and serve it; return its path in the index."""
        path = build_wheel(self.files, name, version, requires, content)
        self.write_pages()
        return path

    def wheel(self, name, version):
        module = canonicalize_name(name).replace("-", "_")
        return self.files / f"{module}-{version}-py3-none-any.whl"

    def write_pages(self):
        """(Re)write every page from the files present; a link whose file is later deleted stays (a lost file)."""
        projects = {}
        for path in sorted(self.files.glob("*.whl")):
            name = canonicalize_name(parse_wheel_filename(path.name)[0])
            projects.setdefault(name, []).append(path)
        for name, paths in projects.items():
            page = self.simple / name
            page.mkdir(parents=True, exist_ok=True)
            links, releases = [], {}
            for path in paths:
                digest = sha256_bytes(path.read_bytes())
                href = f"{path.as_uri()}#sha256={digest}"
                attributes = f'href="{html.escape(href)}"'
                if self.metadata:
                    core = wheel_core_metadata(path)
                    Path(f"{path}.metadata").write_bytes(core)
                    attributes += f' data-dist-info-metadata="sha256={sha256_bytes(core)}"'
                    attributes += f' data-core-metadata="sha256={sha256_bytes(core)}"'
                links.append(f'<a {attributes}>{html.escape(path.name)}</a><br/>')
                version = str(parse_wheel_filename(path.name)[1])
                releases.setdefault(version, []).append(
                    {"url": href, "filename": path.name, "packagetype": "bdist_wheel", "digests": {"sha256": digest}})
            (page / "index.html").write_text(
                f"<!DOCTYPE html>\n<html><body>\n{''.join(line + chr(10) for line in links)}</body></html>\n")
            if self.metadata:
                api = self.root / name
                api.mkdir(exist_ok=True)
                (api / "json").write_text(json.dumps({"info": {"name": name}, "releases": releases}))
        (self.simple / "index.html").write_text(
            "<!DOCTYPE html>\n<html><body>\n"
            + "".join(f'<a href="{name}/">{name}</a><br/>\n' for name in sorted(projects))
            + "</body></html>\n")
