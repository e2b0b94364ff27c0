"""Build ./ve from this checkout alone: no network, nothing ambient, every artifact hash-checked.

Usage: python3 -I -S bootstrap.py [--ve PATH] [--force] [--one-slot] [--plain] [--groups runtime]  (make ve)
       python3 -I -S bootstrap.py [--ve PATH] --clean | --check | --verify  (make clean, make check, make verify)
       python3 -I -S bootstrap.py --tools [--clean]  (the maintainer tools' env, .bootstrap/tools: make freeze...)

The environment lives in one of two slot directories beside it, `.ve-a` and `.ve-b`, and `ve` is a
symlink to the current one. A virtualenv embeds its absolute path, so it cannot be built elsewhere and
moved: a rebuild goes into the other slot, at its final path, and only a finished, checked build is
switched in by atomically replacing the symlink. A failed, interrupted or killed run leaves `ve`
pointing at the previous build; the next run wipes the half-built slot and starts over.

Nothing that is not ours is ever deleted: a slot carries a marker file from its first moment, and anything found
where a slot or `ve` belongs without one (a venv made by hand, a user's file) is moved aside, never removed.

This file is the entry point and the no-op (nothing changed: one key compared with the current build's stamp). The
build is in bootstrap_build/ (docs/architecture.md names each module's job), standard library only, compiled from
its tracked source by this file, never imported from bytecode.
"""

import os
import sys
import time

ROOT = os.path.dirname(os.path.abspath(__file__))
PACKAGE = "bootstrap_build"


class FromSource:
    """Finds bootstrap_build's modules and compiles each from its .py file, never from bytecode: a .pyc beside it is
    hidden from git (and the maintainer tools, importing them the usual way, write some), so none decides what
    runs. The standard library is imported as usual."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            return None
        from importlib.machinery import ModuleSpec

        package = name == PACKAGE
        origin = os.path.join(ROOT, *name.split(".")) + (os.sep + "__init__.py" if package else ".py")
        if not os.path.isfile(origin):
            return None
        spec = ModuleSpec(name, cls, origin=origin, is_package=package)
        spec.has_location = True  # sets __file__
        return spec

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        path = module.__spec__.origin
        with open(path, "rb") as handle:
            exec(compile(handle.read(), path, "exec", dont_inherit=True), module.__dict__)


if PACKAGE not in sys.modules:  # the maintainer tools import the package themselves
    sys.meta_path.insert(0, FromSource)
from bootstrap_build import inputs, layout, state  # noqa: E402 (compiled by FromSource, just above)
from bootstrap_build.messages import error  # noqa: E402


def main(argv):
    args = parse_args(argv)
    started = time.monotonic()
    if args.groups is not None:
        names = set(args.groups.replace(",", " ").split()) or set(layout.GROUPS)
        groups = tuple(name for name in layout.GROUPS if name in names)  # in build order, whatever order given
        if names - set(layout.GROUPS) or "runtime" not in names:
            error(f"GROUPS={args.groups} names no set this convention builds: leave GROUPS unset (or \"runtime dev\") "
                  "for requirements.txt and requirements-dev.txt, or GROUPS=runtime for requirements.txt alone.")
        layout.GROUPS = groups
    if args.tools:
        # The same build, from the convention's tools lock and wheels into .bootstrap/tools.
        layout.use_tools()
    ve = resolve_ve(args.ve)
    if args.clean:
        from bootstrap_build import clean
        # The tools env takes with it those a freeze built for its other target Pythons.
        return clean.clean(ve, args.ve, [path for path in clean.python_tools_envs() if args.tools and path != ve])
    if args.check:
        from bootstrap_build import checks
        return checks.check_inputs()
    if args.follow_python_version and not args.tools:
        follow_python_version(argv)
    if args.verify:
        from bootstrap_build import verify
        return verify.verify(ve, args.ve)
    key = input_key(ve)
    if not args.freezing and not args.tools:
        inputs.warn_if_requirements_in_changed()
    try:
        # Checked before locking too, so a read-only checkout with a current ve is still a no-op.
        if not args.force and state.is_current(ve, key) and not layout.switch_pending():
            if state.leftovers(ve):
                from bootstrap_build import slots
                slots.tidy(ve)
            if not args.tools:  # every maintainer target asks; a line each time would be noise
                print(f"{args.ve} is up to date (make ve FORCE=1 rebuilds it)")
            return 0
    except KeyboardInterrupt:
        error(f"interrupted; {args.ve} is as it was. Run `make ve` again.")
    from bootstrap_build import build
    return build.locked_build(args, ve, started, read_inputs, inputs.digest_of)


def read_inputs(ve):
    """Everything that decides what ends up in the ve (bootstrap_build.inputs), this file among them."""
    return inputs.read_inputs(ve, os.path.abspath(__file__))


def input_key(ve):
    return inputs.digest_of(read_inputs(ve))


class Args:
    ve = None  # ./ve, or .bootstrap/tools with --tools
    groups = None  # --groups runtime: the runtime set only (a deploy host), not the dev set
    # --freezing: `make freeze` runs us first; telling it to run `make freeze` would be noise.
    force = clean = check = verify = follow_python_version = freezing = one_slot = plain = tools = False


def parse_args(argv):
    """Hand-parsed: a few options do not pay for importing argparse on the no-op path."""
    args, rest = Args(), list(argv)
    while rest:
        arg = rest.pop(0)
        if arg in ("--force", "--clean", "--check", "--verify", "--follow-python-version", "--freezing",
                   "--one-slot", "--plain", "--tools"):
            setattr(args, arg[2:].replace("-", "_"), True)
        elif arg in ("--ve", "--groups") and rest:
            setattr(args, arg[2:], rest.pop(0))
        elif arg in ("-h", "--help"):
            print(__doc__)
            sys.exit(0)
        else:
            error(f"unknown argument {arg!r}. Usage: python3 bootstrap.py [--ve PATH] [--force] [--one-slot] "
                  "[--plain] [--groups runtime] [--tools] [--clean | --check | --verify] [--follow-python-version]")
    if args.ve is None:
        args.ve = os.path.relpath(layout.TOOLS_VE) if args.tools else os.path.join(ROOT, "ve")
    return args


def follow_python_version(argv):
    """Without PYTHON on the make command line, `.python-version` (pyenv's and uv's file) picks the interpreter."""
    import re

    from bootstrap_build import pythons

    try:
        with open(os.path.join(ROOT, ".python-version"), encoding="utf-8") as handle:
            wanted = handle.read().split()
    except OSError:
        return
    match = re.match(r"(?:cpython-)?(\d+)\.(\d+)", wanted[0]) if wanted else None
    if not match or "%d.%d" % sys.version_info[:2] == "%s.%s" % match.groups():
        return
    version = "%s.%s" % match.groups()
    found = pythons.find_python(version)
    if found is None:
        error(f".python-version asks for Python {version}, which is not installed here (looked for python{version} "
              "on PATH and under pyenv). Install it, or run `make ve PYTHON=<path of a Python>`.")
    rest = [arg for arg in argv if arg != "--follow-python-version"]
    os.execv(found, [found, "-I", "-S", os.path.abspath(__file__), *rest])


def resolve_ve(value):
    """The absolute path of `ve` (its directory resolved, `ve` itself not: it is our symlink), or refuse it.

    VE must name a path of its own: never the checkout, one of its parents or one of its inputs, where a
    rebuild would replace them by a symlink; never an existing file.
    """
    if not value.strip():
        error("VE is empty, and a ve cannot replace the checkout itself. Leave VE unset (it defaults to `ve`) "
              "or pass a path of its own, such as `make ve VE=ve`.")
    path = os.path.abspath(value)  # also drops a trailing slash, so `ve/` never reaches through the link
    name = os.path.basename(path)
    ve = os.path.join(os.path.realpath(os.path.dirname(path)), name)
    root = os.path.realpath(ROOT)
    protected = [os.path.join(root, name)
                 for name in (".git", "requirements", "virtualenv_support", "bootstrap_tools", PACKAGE)]
    if ve == root or root.startswith(ve + os.sep):
        error(f"VE={value} is the checkout or a directory that contains it; a build would replace it. "
              "Pass a path of its own, such as `make ve VE=ve`.")
    if any(ve == inside or ve.startswith(inside + os.sep) for inside in protected):
        error(f"VE={value} lies inside the checkout's own inputs ({os.path.relpath(ve, root)}). "
              "Pass a path of its own, such as `make ve VE=ve`.")
    if os.path.lexists(ve) and not os.path.islink(ve) and not os.path.isdir(ve):
        error(f"VE={value} is an existing file, which a build would replace. Move it away or pass another VE=...")
    if ":" in ve:
        # virtualenv refuses it, and it would split PATH in bin/activate.
        error(f"the ve path {ve} contains ':', which virtualenv cannot use (it separates PATH entries). "
              "Move the checkout to a path without ':', or pass VE=<a path without ':'>.")
    return ve


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
