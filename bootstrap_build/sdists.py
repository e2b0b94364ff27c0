"""A build from source, offline: the pins no prebuilt wheel in requirements/ fits here are built by pip from their
sdists, with build backends from requirements/ pinned and hashed by the build lock (requirements-build.txt)."""

import os

from bootstrap_build import checks, layout, lockfile, processes
from bootstrap_build.messages import error, show_output, step

FITS_HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fits_here.py")


def needs_source(slot, env, pins):
    """The pins this Python must build from their sdists: no prebuilt wheel in requirements/ fits here."""
    import json

    wheels = checks.sdist_wheels(pins)
    if not wheels:
        return []
    query = {pin.line: [os.path.basename(path) for path in paths] for pin, paths in wheels.items()}
    lines = json.loads(processes.run([layout.python_in(slot), "-I", "-S", "-B", FITS_HERE, layout.site_packages(slot),
                                      json.dumps(query)], env, "checking wheel tags"))
    return [pin for pin in wheels if pin.line in lines]


def source_args(source, scratch):
    """pip's options to build `source` from sdists, offline, with the build lock as a hashed build constraint.

    --no-binary after --only-binary=:all: narrows it to these names; every other pin stays wheels only, and
    pip's build isolation installs the backends from requirements/ only, each with the build lock's hash.
    """
    if not source:
        return []
    with open(layout.BUILD_LOCK, encoding="utf-8-sig") as handle:
        build_pins, _ = lockfile.parse_lock(handle.read())
    constraints = os.path.join(scratch, "requirements-build.txt")
    with open(constraints, "w", encoding="utf-8") as handle:
        handle.writelines(f"{pin.hashed_line}\n" for pin in build_pins)  # from the parsed fields, like the lock
    names = ", ".join(f"{pin.name} {pin.version}" for pin in source)
    step(f"building from source, offline: {names} (no prebuilt wheel in requirements/ fits this Python and "
         "platform; their sdists are built with the backends pinned in requirements-build.txt)")
    return ["--no-binary=" + ",".join(pin.name for pin in source), "--build-constraint", constraints]


def source_build(source):
    """run(), for a pip install that builds `source`: a failed build ends in one ERROR naming the package."""
    import re

    def runner(argv, env, what):
        returncode, stdout = processes.spawn(argv, env)
        if returncode == 0:
            return stdout
        show_output(stdout)
        failed = re.findall(r"Failed to build '?([A-Za-z0-9._-]+)", stdout)
        named = [pin for pin in source if failed and lockfile.canonical_name(failed[-1]) == pin.name] or source
        # The build's own last words: the lines before pip's last "[end of output]", else pip's last lines.
        lines = [line.strip() for line in stdout.splitlines() if line.strip()]
        ends = [number for number, line in enumerate(lines) if line == "[end of output]"]
        last = lines[max(0, ends[-1] - 3):ends[-1]] if ends else lines[-3:]
        error(f"building {' or '.join(f'{pin.name} {pin.version}' for pin in named)} from its sdist failed "
              f"(no prebuilt wheel fits this Python and platform): {' | '.join(last) or 'no output'}. Fix: install "
              "what the build needs (a C compiler, a C library's headers) and run `make ve` again, or run "
              "`make freeze` on this platform to store a prebuilt wheel. The previous ve is untouched.")
    return runner
