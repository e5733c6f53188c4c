"""`pyoci features`: what this runtime supports, as runtime-spec features.md describes it.

Built from the same tables the runtime uses (mount options, namespaces, capabilities, seccomp
names), plus what is detected on this host (cgroup layout, seccomp library).
"""

from __future__ import annotations

import os

from pyoci import OCI_VERSION


def features() -> dict:
    from pyoci import rules
    from pyoci.linux import cgroups, mounts, network
    from pyoci.spec import CAPABILITIES, HOOK_NAMES, NAMESPACE_TYPES

    layout = cgroups.layout()
    options = sorted(
        {
            *mounts.FLAG_OPTIONS,
            *mounts.PROPAGATION_OPTIONS,
            *mounts.RECURSIVE_OPTIONS,
            *mounts.EXTENSION_OPTIONS,
        }  # fmt: skip
    )
    out = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_NAMES),
        "mountOptions": options,
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": list(CAPABILITIES),
            "cgroup": {
                "v1": layout in ("legacy", "hybrid"),
                "v2": layout in ("unified", "hybrid"),
                "systemd": True,
                "systemdUser": False,
                "rdma": False,
            },
            "seccomp": _seccomp(),
            # Whether pyoci applies them, not whether the host has them (features-linux.md):
            # a profile or label in config.json is refused (pyoci.rules).
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "memoryPolicy": {"modes": list(rules.MPOL_MODES), "flags": list(rules.MPOL_FLAGS)},
            "intelRdt": {"enabled": False, "schemata": False, "monitoring": False},
            "mountExtensions": {"idmap": {"enabled": True}},
            "netDevices": {"enabled": True},  # pyoci.linux.network
        },
        "annotations": {
            "org.opencontainers.runc.checkpoint.enabled": "false",
            "org.pyoci.init": "true: run pyoci's minimal init as PID 1",
            **network.ANNOTATION_HELP,
        },
    }
    return out


def _seccomp() -> dict:
    try:
        from pyoci.linux import seccomp
    except (ImportError, OSError):
        return {"enabled": False}
    return {
        "enabled": True,
        "actions": list(seccomp.ACTION_NAMES),
        "operators": list(seccomp.OPS),
        "archs": list(seccomp.ARCHES),
        "knownFlags": list(seccomp.FLAGS),
        "supportedFlags": list(seccomp.FLAGS),
        "libseccomp": os.path.basename("libseccomp.so.2"),
    }
