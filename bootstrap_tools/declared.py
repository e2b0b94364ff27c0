"""`make check`'s warning when pyproject.toml and requirements.in name different packages.

A project with a pyproject.toml declares its dependencies twice once it adopted the convention: in
`[project].dependencies` (and its `[dependency-groups]`), which its users and build backend read, and in
requirements.in (and requirements-dev.in), which the lock is made from. An edit of one alone is a warning, never a
failure: the lock is still whole. Compared by canonical name (`packaging`), never by version: requirements.in may
narrow what pyproject.toml allows.

What counts: `[project].dependencies` when it is static, and each dependency group of which requirements.in names
at least one package (a group none of whose packages is locked was not asked for: `make adopt --group NAME`); the
other way round, every name of pyproject.toml (extras and every group too) is declared. The tools `make adopt`
added to requirements.in for the convention's own targets are not the project's dependencies.
"""

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bootstrap_tools import requirements_in, toml_file
from bootstrap_tools.run import ToolError

REQUIREMENT_FILES = ("requirements.in", "requirements-dev.in")
CONVENTION_TOOLS = frozenset({"pip-tools", "pytest", "flake8"})


def warnings(root):
    """([warning lines], [notes]): the packages pyproject.toml and the requirement files disagree on."""
    path = root / "pyproject.toml"
    if not path.is_file():
        return [], []
    try:
        data = toml_file.load(path, "pyproject.toml", ", so it was not compared with requirements.in: fix it")
    except ToolError as exc:
        return [str(exc)], []
    project = data.get("project")
    if not isinstance(project, dict) or not isinstance(project.get("dependencies"), list):
        return [], []  # no static dependencies: requirements.in alone says what the project needs
    files = [name for name in REQUIREMENT_FILES if (root / name).is_file()]
    locked = {canonicalize_name(requirement.name)
              for name in files for _, _, requirement in requirements_in.read(root / name)[0]}
    groups = data.get("dependency-groups") if isinstance(data.get("dependency-groups"), dict) else {}
    wanted = {name: "[project].dependencies" for name in names_of(project["dependencies"])}
    for group in groups:
        members = names_of(group_lines(groups, group))
        if members & locked:
            for name in members:
                wanted.setdefault(name, f"dependency group `{group}`")
    extras = project.get("optional-dependencies") if isinstance(project.get("optional-dependencies"), dict) else {}
    declared = set(wanted) | names_of(line for group in groups for line in group_lines(groups, group)) \
        | names_of(line for lines in extras.values() if isinstance(lines, list) for line in lines)
    where = " and ".join(files) or "requirements.in"
    found = []
    missing = sorted(set(wanted) - locked)
    if missing:
        found.append(f"pyproject.toml names {', '.join(f'{name} ({wanted[name]})' for name in missing)}, which "
                     f"{'neither ' + ' nor '.join(files) + ' names' if len(files) > 1 else where + ' does not'}: add "
                     f"{'it' if len(missing) == 1 else 'them'} to {files[0] if files else where} "
                     "and run `make freeze`, or remove it from pyproject.toml (the lock holds what requirements.in "
                     "names)")
    extra = sorted(locked - declared - CONVENTION_TOOLS)
    if extra:
        found.append(f"{where} {'names' if len(files) < 2 else 'name'} {', '.join(extra)}, which pyproject.toml does "
                     "not declare ([project].dependencies, optional-dependencies or a dependency group): add "
                     f"{'it' if len(extra) == 1 else 'them'} there, or remove it from {where} and run `make freeze`")
    return found, []


def names_of(lines):
    names = set()
    for line in lines:
        try:
            names.add(canonicalize_name(Requirement(line).name))
        except (InvalidRequirement, TypeError):
            continue  # not a requirement (a table entry, a typo): adopt and the build backend say so
    return names


def group_lines(groups, group, seen=()):
    """A PEP 735 group's requirement strings, `{include-group = ...}` entries expanded (a cycle stops)."""
    lines = []
    entries = groups.get(group) if isinstance(groups.get(group), list) else []
    for entry in entries:
        if isinstance(entry, str):
            lines.append(entry)
        elif isinstance(entry, dict) and entry.get("include-group") and entry["include-group"] not in seen:
            included = {canonicalize_name(name): name for name in groups}.get(canonicalize_name(entry["include-group"]))
            if included:
                lines += group_lines(groups, included, (*seen, group))
    return lines
