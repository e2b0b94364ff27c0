"""Call one PEP 517 hook of an sdist's build backend: `python -I hook_runner.py HOOK BACKEND SOURCE ANSWER [PATH...]`.

Run by `make freeze` (bootstrap_tools/sdists.py, call_hook) under the Python of a throwaway build environment that
holds exactly the build lock's pins: sdists.py copies this file into the freeze's staging directory and runs that
copy by path. So it stands alone: standard library only, nothing of bootstrap_tools, no packaging, no pip (the
build environment has none of them). It imports the backend (BACKEND is `module` or `module:object.attribute`,
PATH... the sdist's backend-path entries, relative to SOURCE) and calls one hook from SOURCE, the unpacked sdist:

  requires  get_requires_for_build_wheel, with the backend's distribution and version (or "in-tree")
  build     build_wheel into a `wheel` directory beside ANSWER

The answer goes to the file ANSWER as JSON, never to stdout, where backends print freely.
"""

import importlib
import json
import os
import sys


def load_backend(backend_spec, source, backend_path):
    sys.path[:0] = [os.path.join(source, path) for path in backend_path]
    module_name, _, attributes = backend_spec.partition(":")
    backend = importlib.import_module(module_name.strip())
    for attribute in filter(None, attributes.strip().split(".")):
        backend = getattr(backend, attribute)
    return module_name.strip(), backend


def main(argv):
    hook, backend_spec, source, answer = argv[:4]
    module_name, backend = load_backend(backend_spec, source, argv[4:])
    if hook == "requires":
        get = getattr(backend, "get_requires_for_build_wheel", None)
        result = {"requires": list(get(None)) if get else []}
        from importlib import metadata

        top = module_name.split(".")[0]
        dists = metadata.packages_distributions().get(top, [])
        result["backend_dist"] = f"{dists[0]} {metadata.version(dists[0])}" if dists else "in-tree"
    else:
        out = os.path.join(os.path.dirname(answer), "wheel")
        os.makedirs(out, exist_ok=True)
        result = {"wheel": os.path.join(out, backend.build_wheel(out, None))}
    with open(answer, "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1:])
