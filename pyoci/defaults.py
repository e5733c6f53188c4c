"""`pyoci spec`: the default config.json, the same container `runc spec` describes."""

from __future__ import annotations

import os

from pyoci import OCI_VERSION
from pyoci.errors import PyociError

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def default_spec(rootless: bool = False) -> dict:
    """runc's default: sh on a terminal, a few capabilities, the usual /proc, /dev, /sys."""
    config: dict = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            "cwd": "/",
            "capabilities": {name: list(_CAPS) for name in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyoci",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": [
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
            {
                "destination": "/sys/fs/cgroup",
                "type": "cgroup",
                "source": "cgroup",
                "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
            },
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [
                {"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")
            ],
            "maskedPaths": [
                "/proc/acpi",
                "/proc/asound",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/sys/firmware",
                "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        },
    }
    if rootless:
        uid, gid = os.geteuid(), os.getegid()
        linux = config["linux"]
        linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
        # A network namespace of its own (loopback only): the user owns it, so sysfs can be
        # mounted and lo brought up; no cgroups to manage without delegation.
        linux["namespaces"] = [
            {"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup", "user")
        ]
        del linux["resources"]
        # devpts' gid=5 names a group the single mapping does not contain.
        for mount in config["mounts"]:
            if mount["type"] == "devpts":
                mount["options"] = [o for o in mount["options"] if o != "gid=5"]
        config["mounts"] = [m for m in config["mounts"] if m["type"] != "cgroup"]
    return config


def write_default_spec(bundle: str, rootless: bool = False) -> str:
    """Write `<bundle>/config.json`; never overwrite one (as runc refuses to)."""
    import json

    path = os.path.join(bundle, "config.json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise PyociError(f"spec: {path} already exists (remove it first)") from None
    except OSError as err:
        raise PyociError(f"spec: {path}: {err.strerror.lower()}") from None
    with os.fdopen(fd, "w") as f:
        json.dump(default_spec(rootless), f, indent=2)
        f.write("\n")
    return path
