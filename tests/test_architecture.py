"""The shape the convention promises a reader: bootstrap.py a short entry point, the build of `make ve` in small
standard-library modules (none imports anything else), and no import cycle anywhere in the repository's code."""

import ast
import sys
from pathlib import Path

from conftest import REPO

BUILD = REPO / "bootstrap_build"
# Three scripts run in other interpreters import what the build checked first: the seed pip's own `packaging`
# (hash-checked with the seed: the very rules pip applies) and virtualenv (from virtualenv.py's hash-checked
# payload). Nothing else outside the standard library is imported by anything `make ve` runs.
CHECKED_FIRST = {"fits_here.py": "pip._vendor.packaging", "dependency_check.py": "pip._vendor.packaging",
                 "run_virtualenv.py": "virtualenv"}


def imports(path):
    """[(module name, level, imported names)] of every import statement in the file, in functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level, tuple(alias.name for alias in node.names)))
    return found


def test_what_make_ve_runs_imports_the_standard_library_only():
    outside = []
    for path in [REPO / "bootstrap.py", *sorted(BUILD.glob("*.py"))]:
        for name, level, _ in imports(path):
            top = name.split(".")[0]
            if level or top in sys.stdlib_module_names or top == "bootstrap_build":
                continue
            if path.name in CHECKED_FIRST and (name + ".").startswith(CHECKED_FIRST[path.name] + "."):
                continue
            outside.append(f"{path.relative_to(REPO)}: {name}")
    assert outside == []


def test_bootstrap_py_is_a_short_entry_point_and_the_build_modules_are_small():
    sizes = {path.relative_to(REPO): len(path.read_text(encoding="utf-8").splitlines())
             for path in [REPO / "bootstrap.py", *BUILD.glob("*.py")]}
    assert sizes[Path("bootstrap.py")] <= 250, sizes
    assert {str(path): size for path, size in sizes.items() if size > 400} == {}


def python_files():
    """{module name: path} of the repository's own Python code (what a clone has, builds left out)."""
    files = {"bootstrap": REPO / "bootstrap.py"}
    for folder in ("bootstrap_build", "bootstrap_tools", "bench", "tests"):
        for path in sorted((REPO / folder).glob("*.py")):
            files[f"{folder}.{path.stem}"] = path
    return files


def edges(name, path, files):
    """The repository modules that module `name` imports (a test's `import conftest` is tests.conftest)."""
    folder = name.rpartition(".")[0]
    found = set()
    for module, level, names in imports(path):
        if level:
            module = f"{folder}.{module}".rstrip(".")
        candidates = [module, f"{folder}.{module}"] + [f"{base}.{alias}" for base in (module, f"{folder}.{module}")
                                                       for alias in names]
        found.update(candidate for candidate in candidates if candidate in files and candidate != name)
    return found


def test_no_import_cycle_in_the_repository():
    files = python_files()
    graph = {name: edges(name, path, files) for name, path in files.items()}
    cycles, state = [], {}

    def visit(name, trail):
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycles.append(" -> ".join(trail[trail.index(other):] + [other]))
            elif other not in state:
                visit(other, trail + [other])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_build_never_imports_the_entry_point_or_the_maintainer_tools():
    wrong = [f"{path.name}: {module}" for path in sorted(BUILD.glob("*.py")) for module, _, _ in imports(path)
             if module.split(".")[0] in ("bootstrap", "bootstrap_tools")]
    assert wrong == []
