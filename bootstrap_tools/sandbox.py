"""The sandbox of a freeze-time sdist build (sdists.py runs each PEP 517 hook through it).

On Linux, where `unshare` can make namespaces (root, or unprivileged user namespaces with `-r`), a hook runs in
a new network namespace (only a loopback that is down: nothing is reachable, not even this machine's own
services) and a new mount namespace in which the checkout is a read-only bind mount and only the build's own
directory (a fresh copy of the sdist under .bootstrap/freeze/) is writable again. A build that reaches out or
writes into the checkout fails there, and freeze stops with one ERROR naming the package.

What it does not do: the rest of the file system is as writable as for the user who runs `make freeze` (/tmp,
the home directory), processes are not isolated, and CPU and memory are not limited. Where no namespace can be
made (macOS, a kernel or container that forbids them), the hooks run without it, and freeze says so once.
"""

import os
import shutil
import subprocess

# Run by `sh` inside the new namespaces: the checkout read-only, the build's directory writable on top of it (a
# bind mount inherits the read-only flag of the mount it comes from, hence the explicit rw remount; `cd` again so
# the working directory is looked up through the new mounts).
# Exit 97 (before exec) means the mounts failed; the probe catches that before any build runs.
MOUNTS = ('root=$1; area=$2; shift 2; '
          'mount --bind "$root" "$root" && mount -o remount,bind,ro "$root" "$root" '
          '&& mount --bind "$area" "$area" && mount -o remount,bind,rw "$area" "$area" && cd "$PWD" || exit 97; '
          'exec "$@"')
VARIANTS = (("unshare", "--net", "--mount"), ("unshare", "--map-root-user", "--net", "--mount"))
_chosen = {}


def prefix(root, area):
    """The argv prefix that runs a command in the sandbox for `area` (a directory inside `root`), or [] (said
    once per run) where this machine cannot make one."""
    root, area = os.path.realpath(root), os.path.realpath(area)
    if "variant" not in _chosen:
        _chosen["variant"] = probe(root, area)
        if _chosen["variant"] is None:
            print("==> the sdist builds run without a sandbox here (`unshare` cannot make a network and mount "
                  "namespace on this machine): a build could reach the network and write into the checkout "
                  "(README: Dependencies published only as sdists)", flush=True)
    variant = _chosen["variant"]
    return [] if variant is None else [*variant, "sh", "-c", MOUNTS, "sandbox", root, area]


def probe(root, area):
    """The first unshare variant that can make the sandbox here, or None."""
    if not shutil.which("unshare") or not shutil.which("mount"):
        return None
    for variant in VARIANTS:
        try:
            result = subprocess.run([*variant, "sh", "-c", MOUNTS, "sandbox", root, area, "true"],
                                    stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            continue
        if result.returncode == 0:
            return variant
    return None


def private_env(env, area):
    """`env` with HOME, TMPDIR and the XDG dirs inside the build's own directory (the staging area's are not
    writable in the sandbox)."""
    home = os.path.join(area, "home")
    tmp = os.path.join(home, "tmp")
    os.makedirs(tmp, exist_ok=True)
    return dict(env, HOME=home, TMPDIR=tmp, XDG_CACHE_HOME=os.path.join(home, "cache"),
                XDG_CONFIG_HOME=os.path.join(home, "config"), XDG_DATA_HOME=os.path.join(home, "data"))
