"""`make sbom`: a CycloneDX JSON SBOM of what ships (the runtime set), one document per target, offline.

A target is a Python of the lock, or with declared platforms (`# platforms:`) a (platform, Python) pair, whose
descriptor (platforms/<name>.json) gives the markers and the wheel tags. For each target of requirements.txt: one
component per pin whose marker holds there (what `make ve` installs there, the seed pip included as the lock's
pip), with its package URL, version, the sha256 of the artifact(s) in requirements/ that fit there (the sdist
where it builds at `make ve`), and the license its wheel's metadata declares
(License-Expression, else License, else its license classifiers, as written); dependency edges from each
wheel's Requires-Dist evaluated for that Python, between the lock's own pins. The root component is the project
(pyproject.toml's [project] name and version, else the checkout directory's name) and depends on requirements.in's
requirements. With a dev lock (requirements-dev.txt), a second document per target (`-dev` in its file name)
lists the dev set the same way, its root component `<project>-dev` depending on requirements-dev.in's
requirements: the runtime documents never list a dev tool. Built with cyclonedx-python-lib. Deterministic for a
given lock and requirements/: no timestamp, and the serial number is a UUID derived from the document's content.
"""

import argparse
import dataclasses
import hashlib
import json
import sys
import time
import uuid
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from bootstrap_tools import lockfile, platforms, requirements_in, toml_file
from bootstrap_tools.run import ToolError, fail
from bootstrap_tools.wheels import artifact_metadata, full_version, is_artifact_of, is_sdist, unfit_reason

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / ".bootstrap" / "sbom"
SERIAL_NAMESPACE = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")  # RFC 4122's URL namespace


@dataclasses.dataclass(frozen=True)
class DocumentSet:
    """One set of documents: its lock, the input naming the root component's direct requirements, the root
    component (name, version or None), and what the file names add."""
    lock: str
    wanted: str
    name: str
    version: "str | None"
    suffix: str

    def description(self, target):
        if self.suffix:
            return f"the dev set: what {self.lock} pins for Python {target}, beside the runtime set"
        return f"what ships: the runtime set, {self.lock}, as `make ve GROUPS=runtime` installs it on Python {target}"


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="directory for the documents")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        written = write_all(ROOT, args.output)
    except ToolError as exc:
        fail(str(exc))
    for path, count in written:
        print(f"==> {path}: {count} components")
    print(f"==> done: {len(written)} SBOM(s) (CycloneDX JSON), {time.monotonic() - started:.1f} s")
    return 0


def project(root):
    """(name, version or None) of the project: pyproject.toml's [project] (a dynamic version is None), else the
    checkout directory's name."""
    path = root / "pyproject.toml"
    data = {}
    if path.exists():
        data = toml_file.load(path, "pyproject.toml", ", and the SBOM's root component takes the project's name "
                              "from it: fix the file.")
    table = data.get("project")
    if isinstance(table, dict) and isinstance(table.get("name"), str) and table["name"].strip():
        version = table.get("version")
        return table["name"].strip(), version if isinstance(version, str) else None
    return root.resolve().name, None


def document_sets(root):
    """The runtime set, and the dev set when the project has a dev lock."""
    name, version = project(root)
    sets = [DocumentSet("requirements.txt", "requirements.in", name, version, "")]
    if (root / "requirements-dev.txt").exists():
        sets.append(DocumentSet("requirements-dev.txt", "requirements-dev.in", f"{name}-dev", version, "-dev"))
    return sets


def write_all(root, output):
    written = []
    files = None
    for kind in document_sets(root):
        lock_text = (root / kind.lock).read_text(encoding="utf-8")
        pins, problems = lockfile.parse(lock_text)
        if problems:
            raise ToolError(f"{kind.lock} line `{problems[0].line}` {problems[0].message}: run `make check`.")
        output.mkdir(parents=True, exist_ok=True)
        files = artifact_digests(root) if files is None else files  # once for every target: a wheelhouse is large
        for target in platforms.lock_targets(lock_text, root):
            text, count = render(root, pins, target, files, kind)
            path = output / file_name(target, kind.suffix)
            partial = path.with_name(f".{path.name}.part")
            partial.write_text(text, encoding="utf-8")
            partial.replace(path)
            written.append((path, count))
    return written


def file_name(target, suffix=""):
    """`sbom-python3.12.cdx.json`, or `sbom-python3.12-macos-arm64.cdx.json` for a (platform, Python) pair;
    `suffix` (`-dev`) before `.cdx.json`."""
    if isinstance(target, platforms.Pair):
        return f"sbom-python{target.python}-{target.platform}{suffix}.cdx.json"
    return f"sbom-python{target}{suffix}.cdx.json"


def target_environment(target):
    """The marker environment of a target, for the Requires-Dist edges. A pair's descriptor wins; what it lacks
    (platform_release, platform_version: no lock marker may use them, platforms.evaluate refuses) is this machine's,
    which only a dependency edge between two pins already selected could ever read."""
    if isinstance(target, platforms.Pair):
        return dict(default_environment(), **target.environment(), extra="")
    return dict(default_environment(), python_version=target, python_full_version=full_version(target), extra="")


def artifact_digests(root):
    return {path: lockfile.sha256(path) for path in sorted((root / "requirements").glob("*")) if path.is_file()}


def installed_pins(root, pins, target, files=None):
    """[(pin, [fitting artifact paths], wheel to read the metadata from)] of the pins `make ve` installs on
    `target`; files: {path: sha256} of requirements/, when the caller has them."""
    files = artifact_digests(root) if files is None else files
    chosen = []
    for pin in sorted(pins, key=lambda pin: pin.name):
        if not pin.applies_to(target):
            continue
        ours = [path for path, digest in files.items() if is_artifact_of(path.name, digest, pin)]
        fitting = [path for path in ours if not is_sdist(path.name) and unfit_reason(path, target) is None]
        if not fitting:  # on a declared platform an sdist fits: it builds at `make ve` there, offline
            fitting = [path for path in ours if is_sdist(path.name) and platforms.unfit(path, target) is None]
        if not fitting:
            raise ToolError(f"requirements/ has no artifact of {pin} for Python {target}: run `make check`.")
        # The metadata: a fitting wheel's, else (an sdist that builds there) the wheel freeze built here from it.
        wheels = [path for path in fitting + ours if not is_sdist(path.name)]
        chosen.append((pin, fitting, wheels[0] if wheels else None))
    return chosen


def declared_licenses(metadata):
    """The licenses as the metadata declares them: [("expression", text)], [("license", License's text)] or
    [("name", a license classifier's last part), ...]."""
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return [("expression", expression)]
    text = (metadata.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 100:
        return [("license", text)]
    return [("name", classifier.split(" :: ")[-1]) for classifier in metadata.get_all("Classifier") or []
            if classifier.startswith("License :: ") and classifier.count(" :: ") >= 2]


def dependencies(metadata, names, environment):
    """The lock's names among the wheel's Requires-Dist that hold in `environment`."""
    found = set()
    for line in metadata.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(str(line))
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate(environment):
            name = canonicalize_name(requirement.name)
            if name in names:
                found.add(name)
    return sorted(found)


def render(root, pins, target, files=None, kind=None):
    """(the CycloneDX 1.6 JSON text of `kind`'s pins, the runtime set by default, for `target`, how many
    components)."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.model.license import DisjunctiveLicense, LicenseExpression
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    environment = target_environment(target)
    chosen = installed_pins(root, pins, target, files)
    names = {pin.name for pin, _, _ in chosen}
    kind = kind or document_sets(root)[0]
    bom = Bom()
    # A name never clashes with a component's ref (`name==version`).
    root_component = Component(type=ComponentType.APPLICATION, name=kind.name, version=kind.version,
                               bom_ref=kind.name, description=kind.description(target))
    bom.metadata.component = root_component
    bom.metadata.timestamp = None  # reproducible: the same lock gives the same bytes
    components, edges = {}, {}
    for pin, paths, source in chosen:
        metadata = artifact_metadata(source or paths[0])
        # An SPDX id or expression in License becomes one (the factory's choice), anything else stays a name.
        licenses = [LicenseExpression(text) if kind == "expression" else LicenseFactory().make_from_string(text)
                    if kind == "license" else DisjunctiveLicense(name=text)
                    for kind, text in declared_licenses(metadata)]
        component = Component(
            type=ComponentType.LIBRARY, name=metadata.get("Name") or pin.name, version=pin.version,
            bom_ref=f"{pin.name}=={pin.version}", purl=PackageURL(type="pypi", name=pin.name, version=pin.version),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=lockfile.sha256(path)) for path in paths],
            licenses=licenses)
        components[pin.name] = component
        edges[pin.name] = dependencies(metadata, names, environment)
        bom.components.add(component)
    for name, needed in edges.items():
        bom.register_dependency(components[name], [components[other] for other in needed])
    wanted, _ = requirements_in.read(root / kind.wanted)  # none without the file (the dev set may have none)
    direct = sorted({canonicalize_name(requirement.name) for _, _, requirement in wanted} & set(components))
    bom.register_dependency(root_component, [components[name] for name in direct])
    bom.serial_number = uuid.UUID(int=0)
    draft = JsonV1Dot6(bom).output_as_string(indent=1)
    # The serial number names this content: a UUID (v5) of the document with a zero serial, so equal locks agree.
    bom.serial_number = uuid.uuid5(SERIAL_NAMESPACE, "sbom:" + hashlib.sha256(draft.encode()).hexdigest())
    text = JsonV1Dot6(bom).output_as_string(indent=1)
    return json.dumps(json.loads(text), indent=1, sort_keys=True) + "\n", len(components)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
