"""TOML files (pyproject.toml) as the tools read them: tomllib, or tomli on Python 3.10 (the tools' lock pins it
there), one reader for adopt, check, sbom and the sdists' build systems."""

from bootstrap_tools.run import ToolError


def load(path, shown, advice):
    """The document at `path` as a dict; one ToolError `<shown> is not valid TOML (<why>)<advice>` otherwise."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ToolError(f"{shown} is not valid TOML ({exc}){advice}") from None
