"""The check of a new build before it is switched in: the ve holds exactly the lock's pins for this Python (pip's
report says which), each with its RECORD, and their requirements are met (dependency_check.py)."""

import os

from bootstrap_build import layout, lockfile, processes, state
from bootstrap_build.lockfile import normal_version
from bootstrap_build.messages import error, show_output, step

DEPENDENCY_CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dependency_check.py")


def start_dependency_check(slot, env, pins):
    """dependency_check.py, started in the new ve (it runs while the last files compile)."""
    asked = [f"{pin.name}{pin.extras}" for pin in pins if pin.extras]
    return processes.start([layout.python_in(slot), "-I", "-S", "-B", DEPENDENCY_CHECK, layout.site_packages(slot),
                            *asked], env)


def check_env(slot, pins, report, dependencies):
    """The ve holds exactly the lock's pins for this Python (pip's report says which), each with its RECORD, and
    their requirements are met: what `pip check` would say, without starting pip again."""
    step("checking the installed distributions against the lock")
    problems = installed_problems(slot, pins, report)
    lines = dependencies.splitlines()
    if lines[-1:] == ["checked"]:
        problems += lines[:-1]
    else:
        show_output(dependencies)
        error("checking the requirements of the installed distributions failed; see the output above. The previous "
              "ve is untouched.")
    if problems:
        # dependency_check.py gives a problem whose fix is not the usual one after a tab.
        first, _, fix = problems[0].partition("\t")
        rest = [problem.partition("\t")[0] for problem in problems[1:]]
        more = f" ({len(rest)} more: {'; '.join(rest)})" if rest else ""
        fix = fix or ("The lock is incomplete or inconsistent: restore it with `git checkout -- requirements.txt`, or "
                      "run `make freeze`.")
        error(f"the new build does not match the lock (checked like pip check): {first}{more}. {fix} The previous ve "
              "is untouched.")


def installed_problems(slot, pins, report):
    """Missing, extra, mis-versioned or RECORD-less distributions in the slot, against pip's report of the lock."""
    import json

    with open(report, encoding="utf-8") as handle:
        reported = {lockfile.canonical_name(item["metadata"]["name"]): item["metadata"]["version"]
                    for item in json.load(handle).get("install", [])}
    expected = dict(reported)
    site = layout.site_packages(slot)
    installed, problems = {}, []
    for dist in state.installed_dists(slot):
        fields = read_metadata(os.path.join(site, dist, "METADATA"))
        name = lockfile.canonical_name(fields.get("Name", dist[:-len(".dist-info")].rpartition("-")[0]))
        installed[name] = fields.get("Version", dist[:-len(".dist-info")].rpartition("-")[2])
        if not os.path.isfile(os.path.join(site, dist, "RECORD")):
            problems.append(f"{dist} has no RECORD")
    if "pip" not in expected and "pip" in installed:
        expected["pip"] = installed["pip"]  # the seed, which the lock's pip (if pinned) left in place
    versions = {}
    for pin in pins:
        versions.setdefault(pin.name, set()).add(normal_version(pin.version))
    for name, version in sorted(expected.items()):
        if name in versions and normal_version(version) not in versions[name]:
            pinned = " or ".join(sorted(versions[name]))
            problems.append(f"{name} {version} was installed, but the lock pins {name} {pinned}")
        elif name not in versions and name != "pip":
            problems.append(f"{name} {version} was installed, but the lock does not pin it")
    for name, version in sorted(expected.items()):
        if name not in installed:
            problems.append(f"{name} {version} is missing")
        elif normal_version(installed[name]) != normal_version(version):
            problems.append(f"{name} {installed[name]} is installed where {version} was expected")
    problems += [f"{name} {version} is installed, but is not one of the lock's pins for this Python"
                 for name, version in sorted(installed.items()) if name not in expected]
    return problems


def read_metadata(path):
    """{"Name": ..., "Version": ...} from a METADATA file's header block (the rest is not needed)."""
    fields = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                key, colon, value = line.partition(":")
                if colon and key in ("Name", "Version") and key not in fields:
                    fields[key] = value.strip()
    except OSError:
        pass
    return fields
