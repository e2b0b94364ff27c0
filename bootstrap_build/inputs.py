"""The input key: everything that decides what ends up in the ve, read by content (never by mtime), and hashed."""

import hashlib
import os
import sys

from bootstrap_build import layout


def python_version():
    return ".".join(map(str, sys.version_info[:3]))


def read_inputs(ve, entry):
    """[(label, value)]: the interpreter, the ve's own resolved path (a virtualenv embeds it, so a moved or copied
    checkout rebuilds instead of running the tools of the place it came from), and the sha256 of the lock, of
    `entry` (bootstrap.py) and the build's code, virtualenv.py, the build lock and the seed wheels."""
    inputs = [("python", f"{python_version()} {os.path.realpath(sys.executable)} {' '.join(sys.version.split())}"),
              ("ve", ve)]
    build_code = [path for path in layout.list_files(layout.BUILD_CODE) if path.endswith(".py")]
    build_lock = [layout.BUILD_LOCK] if os.path.exists(layout.BUILD_LOCK) else []  # [] keeps older keys
    dev = layout.dev_lock()
    if dev or (layout.DEV_LOCK and os.path.exists(layout.DEV_LOCK)):  # the sets asked for: switching is a rebuild
        inputs.append(("groups", " ".join(layout.GROUPS)))
    for path in [layout.LOCK, *([dev] if dev else []), entry, *build_code, layout.VIRTUALENV_PY, *build_lock,
                 *layout.list_files(layout.SEEDS)]:
        content = "dir" if os.path.isdir(path) else file_sha256(path, missing=b"missing")
        inputs.append((os.path.relpath(path, layout.ROOT), content))
    return inputs


def digest_of(inputs):
    return hashlib.sha256("".join(f"{label}\0{value}\0" for label, value in inputs).encode()).hexdigest()


def file_sha256(path, missing=None):
    """The file's sha256 (hex); `missing`, decoded, when there is no file and it is given."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        if missing is None:
            raise
        return missing.decode()
    return digest.hexdigest()


def warn_if_requirements_in_changed():
    """One line when requirements.in no longer matches the sha256 the lock records for it (no rebuild for that)."""
    try:
        with open(layout.LOCK, encoding="utf-8-sig") as handle:
            header = [line for line, _ in zip(handle, range(5)) if line.startswith("# requirements.in sha256:")]
    except (OSError, UnicodeDecodeError):
        return
    if header and header[0].split(":", 1)[1].strip() != file_sha256(layout.REQUIREMENTS_IN, b"-"):
        print("WARNING: requirements.in changed since requirements.txt was made; the ve is built from the lock as it "
              "is. Run `make freeze` to lock the change.", file=sys.stderr)
