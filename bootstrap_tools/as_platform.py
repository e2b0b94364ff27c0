"""Run pip-compile or pip as if on another platform: `python -I as_platform.py SPEC.json MODULE ARGS...`.

pip-compile and pip decide two things from the machine they run on: which markers hold (pip's vendored
`packaging.markers.default_environment`) and which wheels fit (the tags of pip's `TargetPython`). Passing
`--platform` to pip changes only the second, and pip-compile's finder ignores even that. This wrapper, run under
the target Python (its tools env), replaces both with what SPEC.json gives (a declared
platform's marker environment and its tag list for this Python), then runs MODULE (`piptools` or `pip`) as its
command line would (pip-compile taking the index's hashes, use_index_hashes). A marker that asks for a variable
SPEC lacks is written to SPEC's `missing` file and fails: the freeze then names it, rather than let pip evaluate it
against this machine.

A plain target Python runs through it too, with SPEC's `this_machine` set: the tags and the other variables stay
this machine's, and only the Python half is SPEC's (X.Y.0, see targets.launcher).

Standard library and pip only: it runs inside the tool environment, with no import of bootstrap_tools.
"""

import json
import os
import runpy
import sys


def strict_environment(values, missing_file):
    """A dict that records a missing marker variable (pip may catch the KeyError; the file still says it)."""

    class StrictEnvironment(dict):
        def __getitem__(self, key):
            if not dict.__contains__(self, key):
                with open(missing_file, "a", encoding="utf-8") as handle:
                    handle.write(f"{key}\n")
            return dict.__getitem__(self, key)

    return StrictEnvironment(values)


def patch(spec):
    from pip._internal.models.target_python import TargetPython
    from pip._vendor.packaging import markers
    from pip._vendor.packaging.tags import Tag

    running = markers.default_environment()
    environment = dict(running) if spec.get("this_machine") else {}
    environment.update(spec["environment"])
    # The Python half is this interpreter's own (it is the target Python), unless SPEC names it: the freeze names
    # X.Y.0 (targets.launcher), and a dry install for another Python with --python-version names that one.
    for key in ("python_version", "python_full_version", "implementation_version"):
        environment.setdefault(key, running[key])

    def default_environment():
        return strict_environment(environment, spec["missing"])

    markers.default_environment = default_environment
    try:  # pip-tools or a build hook may evaluate markers with the standalone `packaging` too
        import packaging.markers
    except ImportError:
        pass
    else:
        packaging.markers.default_environment = default_environment
    if "tags" not in spec:  # this machine's own, as pip finds them
        return
    tags = [Tag(*text.split("-")) for text in spec["tags"]]
    # Made once, as pip's own TargetPython caches them: pip asks for the set for every link it evaluates (about
    # 130,000 in a first freeze of a 70-pin set), and building a set of some 700 tags each time was half of
    # pip-compile's time.
    unsorted = set(tags)

    def get_sorted_tags(self):
        return tags

    def get_unsorted_tags(self):
        return unsorted

    TargetPython.get_sorted_tags = get_sorted_tags
    TargetPython.get_unsorted_tags = get_unsorted_tags


def use_index_hashes():
    """pip-compile --generate-hashes: each file's sha256 as the index's link gives it (PEP 503's `#sha256=`, the
    hash pip checks every download against), instead of downloading every file of every pinned version (every
    platform's wheels) to hash it, which pip-tools does unless the index also answers its JSON API. The hashes are
    the index's word either way, as they are from that API; every artifact the freeze keeps is then downloaded and
    checked against them (freeze.verify). A link without a sha256 is still downloaded and hashed."""
    try:
        from piptools.repositories.pypi import PyPIRepository
    except ImportError:
        return
    hash_by_download = PyPIRepository._get_file_hash

    def file_hash(self, link):
        if link.hash_name == "sha256" and link.hash:
            return f"sha256:{link.hash}"
        return hash_by_download(self, link)

    PyPIRepository._get_file_hash = file_hash


def main():
    # Run as a file, its own directory (bootstrap_tools/) heads sys.path: none of our modules may shadow one of
    # pip's, pip-tools' or the standard library's.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    spec_path, module, *args = sys.argv[1:]
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    patch(spec)
    if module == "piptools":
        use_index_hashes()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
