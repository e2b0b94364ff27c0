"""The freeze report: what changed in the pins and in the checked-in artifacts, short enough for a commit message."""

from packaging.version import Version

from tools import lockfile

MANAGED = ("requirements", "virtualenv_support", "virtualenv.py")


def snapshot(root):
    """{relative path: (size, sha256)} of every file the freeze targets manage."""
    files = {}
    for name in MANAGED:
        top = root / name
        paths = [top] if top.is_file() else sorted(p for p in top.glob("*") if p.is_file()) if top.is_dir() else []
        for path in paths:
            files[path.relative_to(root).as_posix()] = (path.stat().st_size, lockfile.sha256(path))
    return files


def pin_versions(lock_text):
    pins, _ = lockfile.parse(lock_text)
    versions = {}
    for pin in pins:
        versions.setdefault(pin.name, set()).add(pin.version)
    return {name: ", ".join(sorted(found, key=Version)) for name, found in versions.items()}


def render(before_lock, after_lock, before_files, after_files):
    old, new = pin_versions(before_lock), pin_versions(after_lock)
    lines = ["Pins (requirements.txt):"]
    upgraded = [f"{name} {old[name]} -> {new[name]}" for name in sorted(old.keys() & new.keys())
                if old[name] != new[name]]
    added = [f"{name} {new[name]}" for name in sorted(new.keys() - old.keys())]
    removed = [f"{name} {old[name]}" for name in sorted(old.keys() - new.keys())]
    for label, entries in (("upgraded", upgraded), ("added", added), ("removed", removed)):
        lines += [f"  {label + ':':10} {entry}" for entry in entries]
    if not (upgraded or added or removed):
        lines.append("  no change")
    lines.append("Artifacts:")
    changed = False
    for path in sorted(before_files.keys() | after_files.keys()):
        was, now = before_files.get(path), after_files.get(path)
        if was == now:
            continue
        changed = True
        if was is None:
            lines.append(f"  + {path} ({now[0]:,} bytes)")
        elif now is None:
            lines.append(f"  - {path} ({was[0]:,} bytes)")
        else:
            lines.append(f"  ~ {path} ({was[0]:,} -> {now[0]:,} bytes)")
    if not changed:
        lines.append("  no change")
    net = sum(size for size, _ in after_files.values()) - sum(size for size, _ in before_files.values())
    lines.append(f"  net change in repository bytes: {net:+,} ({len(before_files)} -> {len(after_files)} files)")
    return "\n".join(lines) + "\n"
