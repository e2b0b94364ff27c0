"""The freeze report: what changed in the pins and in the checked-in artifacts, short enough for a commit message."""

from packaging.version import Version

from bootstrap_tools import lockfile, platforms, unify

MANAGED = ("requirements", "virtualenv_support", "virtualenv.py", "requirements-build.txt", "requirements-built.json")


def snapshot(root):
    """{relative path: (size, sha256)} of every file the freeze targets manage."""
    files = {}
    for name in MANAGED:
        top = root / name
        paths = [top] if top.is_file() else sorted(p for p in top.glob("*") if p.is_file()) if top.is_dir() else []
        for path in paths:
            files[path.relative_to(root).as_posix()] = (path.stat().st_size, lockfile.sha256(path))
    return files


def versions_by_target(lock_text, targets):
    """{target: {name: version}} of the pins whose markers hold there (target None: every pin)."""
    pins, _ = lockfile.parse(lock_text)
    # With declared platforms, a pin counts for a Python when it holds there on any of them.
    descriptors = {pair.platform: pair.descriptor for pair in platforms.lock_targets(lock_text)
                   if isinstance(pair, platforms.Pair)}

    def holds(pin, target):
        if target is None or not descriptors:
            return target is None or pin.applies_to(target)
        return any(pin.applies_to(platforms.Pair(descriptor, target)) for descriptor in descriptors.values())
    return {target: {pin.name: pin.version for pin in pins if holds(pin, target)} for target in targets}


def pin_changes(before_lock, after_lock):
    """[(label, text)]: one line per package change, with the targets it holds for when not all of them."""
    old_targets, new_targets = lockfile.targets(before_lock), lockfile.targets(after_lock)
    # Pins move only for the targets the new lock has: a dropped target upgrades nothing; what only it needed
    # is listed as removed for it.
    targets = sorted(new_targets or old_targets, key=Version) or [None]
    dropped = sorted(set(old_targets) - set(new_targets), key=Version) if new_targets else []
    old, new = versions_by_target(before_lock, targets + dropped), versions_by_target(after_lock, targets)
    changes = {}
    for target in targets:
        for name in old[target].keys() | new[target].keys():
            was, now = old[target].get(name), new[target].get(name)
            if was != now:
                changes.setdefault((name, was, now), []).append(target)
    still_pinned = set().union(*(new[target] for target in targets))
    for target in dropped:
        for name, was in old[target].items():
            if name not in still_pinned:
                changes.setdefault((name, was, None), []).append(target)
    lines = []
    if old_targets and new_targets and old_targets != new_targets:
        lines.append(("targets", f"{' '.join(old_targets)} -> {' '.join(new_targets)}"))
    for (name, was, now), where in sorted(changes.items(), key=lambda item: (item[0][0], item[1])):
        if was and now:
            label, text = ("upgraded" if Version(now) > Version(was) else "downgraded"), f"{name} {was} -> {now}"
        else:
            label, text = ("added", f"{name} {now}") if now else ("removed", f"{name} {was}")
        if where != targets:
            text += f" (Python {' '.join(sorted(where, key=Version))})"
        if set(where) <= set(dropped):
            text = text[:-1] + ", a dropped target)" if text.endswith(")") else text
        lines.append((label, text))
    order = ["targets", "upgraded", "downgraded", "added", "removed"]
    return sorted(lines, key=lambda line: order.index(line[0]))


def render(before_lock, after_lock, before_files, after_files, hash_lines=(), source_lines=(), note=None,
           splits=None, dev=None):
    """The report; `hash_lines` [(label, text)] are the hash changes of versions already locked (freeze's
    trust on first use), shown only when there are any; `source_lines` [(label, text)] the packages built
    from sdists (bootstrap_tools/sdists.py), likewise; `note` says what it compares with when that is not the
    tree as this run found it; `splits` {name: [why]} says why a package still has more than one version across
    targets (None: RESOLUTION=newest, which does not try); `dev` (dev lock before, after) adds the dev set's
    changes, when the project has one."""
    lines = [f"({note})"] if note else []
    lines.append("Pins (requirements.txt):")
    changes = pin_changes(before_lock, after_lock)
    lines += [f"  {label + ':':10} {text}" for label, text in changes] or ["  no change"]
    if dev is not None:
        lines.append("Pins (requirements-dev.txt, the dev set; runtime pins it shares are held as locked above):")
        lines += [f"  {label + ':':10} {text}" for label, text in pin_changes(*dev)] or ["  no change"]
    # Every split, changed or not: a reviewer must see each package that runs another version elsewhere.
    split = unify.split_lines(after_lock, splits)
    if split:
        lines.append("More than one version across targets (no single version fits them all):"
                     if splits is not None else "More than one version across targets (RESOLUTION=newest):")
        lines += [f"  {line}" for line in split]
    if hash_lines:
        lines.append("Hashes of versions already locked:")
        lines += [f"  {label + ':':10} {text}" for label, text in hash_lines]
    if source_lines:
        lines.append("Built from source (requirements-build.txt, requirements-built.json):")
        lines += [f"  {label + ':':10} {text}" for label, text in source_lines]
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
    lines.append(f"  net change in repository bytes: {net:+,} (files in requirements/, virtualenv_support/ and "
                 f"virtualenv.py: {len(before_files)} -> {len(after_files)})")
    return "\n".join(lines) + "\n"
