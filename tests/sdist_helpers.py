"""Sdists made by the tests, and the small PEP 517 backend one of them builds with (issue 9).

- `pyproj`: setuptools with a pyproject.toml;
- `legacy`: a plain setup.py and no pyproject.toml (pip's legacy default: setuptools>=40.8.0);
- `dynamic`: built by `dynback`, a tiny backend (a wheel in the index) whose get_requires_for_build_wheel asks
  for `dynextra` (another wheel), which build_wheel then imports, so a build without it fails;
- `cext`: a C extension (gcc), so its wheels are per interpreter;
- `broken`: a C extension whose C does not compile (its metadata does: the failure is in the build).
"""

import io
import tarfile
import textwrap
from pathlib import Path

from index_helpers import build_wheel, metadata_text

SETUPTOOLS_PYPROJECT = '[build-system]\nrequires = ["setuptools>=40.8.0"]\nbuild-backend = "setuptools.build_meta"\n'

DYNBACK = textwrap.dedent('''
    """A PEP 517 backend for the tests: asks for dynextra dynamically, then needs it to build."""
    import base64, hashlib, os, zipfile

    def get_requires_for_build_wheel(config_settings=None):
        return ["dynextra>=1.0"]

    def _record(data):
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
        import dynextra  # only there when the frontend installed what get_requires_for_build_wheel asked for
        name, version = open("NAME").read().split()
        dist_info = f"{name}-{version}.dist-info"
        members = {
            f"{name}.py": f"VERSION = {version!r}\\nBUILT_WITH = {dynextra.MARK!r}\\n".encode(),
            f"{dist_info}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n".encode(),
            f"{dist_info}/WHEEL": (b"Wheel-Version: 1.0\\nGenerator: dynback\\nRoot-Is-Purelib: true\\n"
                                   b"Tag: py3-none-any\\n"),
        }
        record = "".join(f"{member},{_record(data)},{len(data)}\\n" for member, data in members.items())
        members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\\n").encode()
        filename = f"{name}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as archive:
            for member, data in members.items():
                archive.writestr(zipfile.ZipInfo(member, (1980, 1, 1, 0, 0, 0)), data)
        return filename
''')

SPEED_C = textwrap.dedent('''
    #define PY_SSIZE_T_CLEAN
    #include <Python.h>
    static PyObject *add(PyObject *self, PyObject *args) {
        long a, b;
        if (!PyArg_ParseTuple(args, "ll", &a, &b)) return NULL;
        return PyLong_FromLong(a + b);
    }
    static PyMethodDef methods[] = {{"add", add, METH_VARARGS, "a + b"}, {NULL, NULL, 0, NULL}};
    static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speed", NULL, -1, methods};
    PyMODINIT_FUNC PyInit__speed(void) { return PyModule_Create(&module); }
''')


def make_sdist(directory, name, version, files):
    """`name-version.tar.gz` holding `files` ({path: text}) and PKG-INFO under `name-version/`, fixed mtimes."""
    base = f"{name}-{version}"
    files = {"PKG-INFO": metadata_text(name, version), **files}
    path = Path(directory) / f"{base}.tar.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for member, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"{base}/{member}")
            info.size, info.mtime = len(data), 315532800
            archive.addfile(info, io.BytesIO(data))
    return path


def setup_py(name, version, ext=False):
    extension = (f", ext_modules=[Extension('{name}._speed', ['speed.c'])], packages=['{name}']" if ext
                 else f", py_modules=['{name}']")
    return (f"from setuptools import setup{', Extension' if ext else ''}\n"
            f"setup(name='{name}', version='{version}'{extension})\n")


def fixture_sdists(directory):
    """{name: path} of the five sdists."""
    made = {
        "pyproj": make_sdist(directory, "pyproj", "1.0", {
            "pyproject.toml": SETUPTOOLS_PYPROJECT, "setup.py": setup_py("pyproj", "1.0"),
            "pyproj.py": "KIND = 'pyproject'\n"}),
        "legacy": make_sdist(directory, "legacy", "1.0", {
            "setup.py": setup_py("legacy", "1.0"), "legacy.py": "KIND = 'legacy'\n"}),
        "dynamic": make_sdist(directory, "dynamic", "1.0", {
            "pyproject.toml": '[build-system]\nrequires = ["dynback"]\nbuild-backend = "dynback"\n',
            "NAME": "dynamic 1.0\n"}),
        "cext": make_sdist(directory, "cext", "1.0", {
            "pyproject.toml": SETUPTOOLS_PYPROJECT, "setup.py": setup_py("cext", "1.0", ext=True),
            "cext/__init__.py": "from cext._speed import add\n", "speed.c": SPEED_C}),
        "broken": make_sdist(directory, "broken", "1.0", {
            "pyproject.toml": SETUPTOOLS_PYPROJECT, "setup.py": setup_py("broken", "1.0", ext=True),
            "broken/__init__.py": "", "speed.c": "this is not C;\n"}),
    }
    return made


def setuptools_wheels():
    """setuptools, the build backend of most fixture sdists: the project's lock no longer pins it (the convention's
    tools do), so an index for these scenarios serves the tools' own wheel."""
    return sorted((Path(__file__).resolve().parent.parent / "bootstrap_tools" / "wheels").glob("setuptools-*.whl"))


def drop_dev_set(checkout):
    """Leave a copy of the checkout with its runtime set only (these scenarios never use pytest or flake8): each
    freeze then resolves one set, and `make ve` installs that one."""
    for name in ("requirements-dev.in", "requirements-dev.txt"):
        (Path(checkout) / name).unlink()
    return checkout


def backend_wheels(directory):
    """The wheels of dynback (the backend) and dynextra (what it asks for dynamically)."""
    return [
        _wheel_with_module(directory, "dynback", "1.0", "dynback.py", DYNBACK),
        _wheel_with_module(directory, "dynextra", "1.0", "dynextra.py", "MARK = 'dynextra 1.0'\n"),
    ]


def _wheel_with_module(directory, name, version, module, text):
    """index_helpers.build_wheel with its package replaced by one top-level module file."""
    import base64
    import hashlib
    import zipfile

    plain = build_wheel(Path(directory) / "plain", name, version)
    with zipfile.ZipFile(plain) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()
                   if not info.filename.startswith(f"{name}/") and not info.filename.endswith("RECORD")}
    members[module] = text.encode()
    dist_info = f"{name}-{version}.dist-info"

    def digest(data):
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    record = "".join(f"{member},{digest(data)},{len(data)}\n" for member, data in members.items())
    members[f"{dist_info}/RECORD"] = (record + f"{dist_info}/RECORD,,\n").encode()
    path = Path(directory) / plain.name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in sorted(members.items()):
            archive.writestr(zipfile.ZipInfo(member, (1980, 1, 1, 0, 0, 0)), data)
    return path
