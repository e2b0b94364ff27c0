"""Which pins no prebuilt wheel fits here: run by the new ve's Python (`python -I -B fits_here.py SITE QUERY`),
never imported, with the seed pip's own `packaging`, so the tags and markers are the ones pip itself will use.

QUERY is JSON, {requirement line: [its wheel file names]}; prints the JSON list of the lines whose marker holds here
and none of whose wheels has a tag this interpreter supports."""

import json
import sys


def main(site, query):
    sys.path.insert(0, site)
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.tags import sys_tags
    from pip._vendor.packaging.utils import parse_wheel_filename

    here, out = set(sys_tags()), []
    for line, wheels in json.loads(query).items():
        marker = Requirement(line).marker
        if (marker is None or marker.evaluate()) and not any(set(parse_wheel_filename(w)[3]) & here for w in wheels):
            out.append(line)
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:3])
