"""A package index in a directory, for the freeze tests: tiny wheels made with zipfile, PEP 503 pages, file:// URLs.

pip and pip-compile read `--index-url file:///.../simple/`: for each project they fetch `simple/<name>/index.html`
and follow its links. Links carry `#sha256=` like a real index's. Optionally an index also serves what lets
pip-compile lock without reading a wheel: PEP 658 metadata beside each wheel and pip-tools' JSON API
(`<name>/json` with the digests), so a test can delete a wheel after it was locked and before it is downloaded.
"""

import base64
import csv
import email.parser
import hashlib
import html
import io
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

from packaging.utils import canonicalize_name, parse_sdist_filename, parse_wheel_filename

from bootstrap_tools import virtualenv_py

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


def write_wheel(path, members):
    """Write {archive name: bytes} as a wheel at `path`, in a fixed order with a fixed date (same bytes each time)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in sorted(members, key=lambda name: (name.split("/", 1)[0].endswith(".dist-info"), name)):
            archive.writestr(zipfile.ZipInfo(member, ZIP_DATE), members[member])
    return path


def wheel_tag(wheel_text):
    """The compressed tag of a WHEEL file's `Tag:` lines (py2.py3-none-any), for a pure wheel's file name."""
    tags = [line.split(":", 1)[1].strip() for line in wheel_text.splitlines() if line.startswith("Tag:")]
    interpreters = sorted({tag.split("-")[0] for tag in tags})
    abis, platforms = {tag.split("-")[1] for tag in tags}, {tag.split("-")[2] for tag in tags}
    return f"{'.'.join(interpreters)}-{'.'.join(sorted(abis))}-{'.'.join(sorted(platforms))}"


def wheels_from_virtualenv_py(script, dest):
    """Rebuild as wheel files the wheels virtualenv.py carries unpacked in its payload; return their paths.

    Same files, and zeros of the recorded size for what `build` stripped, so `virtualenv_py build` from these
    gives the same payload and header text; the wheel files themselves, and so their sha256, are new.
    """
    entries = virtualenv_py.payload_entries(virtualenv_py.decoded_payload(Path(script).read_text())[1])
    directories = sorted({name.split("/", 1)[0] for name in entries if "/" in name})
    paths = []
    for directory in directories:
        members = {name.split("/", 1)[1]: data for name, data in entries.items() if name.startswith(directory + "/")}
        dist_info = next(name.split("/")[0] for name in members if name.endswith(".dist-info/WHEEL"))
        # What `build` stripped (its RECORD still lists it): zeros of the recorded size, stripped again.
        for row in csv.reader(io.StringIO(members[f"{dist_info}/RECORD"].decode())):
            if len(row) >= 3 and row[0] not in members and row[2].isdigit() and virtualenv_py.is_dead_weight(row[0]):
                members[row[0]] = bytes(int(row[2]))
        metadata = email.parser.HeaderParser().parsestr(members[f"{dist_info}/METADATA"].decode())
        module = canonicalize_name(metadata["Name"]).replace("-", "_")
        tag = wheel_tag(members[f"{dist_info}/WHEEL"].decode())
        paths.append(write_wheel(Path(dest) / f"{module}-{metadata['Version']}-{tag}.whl", members))
    return paths


def rebuild_with_version(wheel, dest, version):
    """A copy of a real pure wheel (pip's, say) that says it is `version`: dist-info, METADATA and RECORD follow."""
    with zipfile.ZipFile(wheel) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist() if not info.is_dir()}
    old_dist_info = next(name.split("/")[0] for name in members if name.endswith(".dist-info/METADATA"))
    name, old_version = old_dist_info[:-len(".dist-info")].rsplit("-", 1)
    new_dist_info = f"{name}-{version}.dist-info"
    renamed = {}
    for member, data in members.items():
        if member.startswith(old_dist_info + "/"):
            member = new_dist_info + member[len(old_dist_info):]
        if member == f"{new_dist_info}/METADATA":
            data = data.replace(f"\nVersion: {old_version}\n".encode(), f"\nVersion: {version}\n".encode(), 1)
        renamed[member] = data
    rows = [[member, _record_hash(data), str(len(data))] for member, data in renamed.items()
            if member != f"{new_dist_info}/RECORD"]
    record = io.StringIO()
    csv.writer(record, lineterminator="\n").writerows(rows + [[f"{new_dist_info}/RECORD", "", ""]])
    renamed[f"{new_dist_info}/RECORD"] = record.getvalue().encode()
    tag = Path(wheel).name.split("-", 2)[2]
    return write_wheel(Path(dest) / f"{name}-{version}-{tag}", renamed)


def build_sdist(directory, name, version, setup_py):
    """A source distribution `name-version.tar.gz` whose setup.py is `setup_py` (PEP 517 via setuptools)."""
    base = f"{canonicalize_name(name).replace('-', '_')}-{version}"
    files = {
        "setup.py": setup_py,
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n',
        "PKG-INFO": metadata_text(name, version),
    }
    path = Path(directory) / f"{base}.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for member, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{member}")
            info.size, info.mtime = len(data), 315532800
            archive.addfile(info, io.BytesIO(data))
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
        for path in sorted(self.files.glob("*.whl")) + sorted(self.files.glob("*.tar.gz")):
            parse = parse_wheel_filename if path.name.endswith(".whl") else parse_sdist_filename
            name = canonicalize_name(parse(path.name)[0])
            projects.setdefault(name, []).append(path)
        for name, paths in projects.items():
            page = self.simple / name
            page.mkdir(parents=True, exist_ok=True)
            links, releases = [], {}
            for path in paths:
                digest = sha256_bytes(path.read_bytes())
                href = f"{path.as_uri()}#sha256={digest}"
                attributes = f'href="{html.escape(href)}"'
                if self.metadata and path.name.endswith(".whl"):
                    core = wheel_core_metadata(path)
                    Path(f"{path}.metadata").write_bytes(core)
                    attributes += f' data-dist-info-metadata="sha256={sha256_bytes(core)}"'
                    attributes += f' data-core-metadata="sha256={sha256_bytes(core)}"'
                links.append(f'<a {attributes}>{html.escape(path.name)}</a><br/>')
                wheel = path.name.endswith(".whl")
                version = str((parse_wheel_filename if wheel else parse_sdist_filename)(path.name)[1])
                releases.setdefault(version, []).append(
                    {"url": href, "filename": path.name, "packagetype": "bdist_wheel" if wheel else "sdist",
                     "digests": {"sha256": digest}})
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
