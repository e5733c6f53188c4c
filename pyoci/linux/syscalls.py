"""Linux constants, and (on first use) thin ctypes wrappers for the syscalls `os` lacks.

Why here, and why this shape: namespaces, mounts and pidfds have no stdlib binding in Python
3.11, so they go through libc (or raw `syscall(2)` where glibc has no wrapper). Constants carry
their kernel-header names so the man pages check them; callers pass `str` and get an
`OSError(errno, strerror, path)` on failure, never a raw return code.

Import cost: this module is constants only. The wrappers live in `pyoci.linux.sysbind`, which
imports ctypes (~1.3 ms, ~1 MiB of RSS) and is loaded the first time a wrapper is looked up
here (`sc.mount`, ...) or by `bind()`. So the runtime's parent process, which only plans,
never pays for it: its forked stage 1 does, first thing, while still in the host's mount
namespace (an import after the pivot would read the container's files).
"""

from __future__ import annotations

import os

# --- clone/unshare flags (linux/sched.h) -------------------------------------------------------
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# --- mount(2) flags (linux/mount.h) -----------------------------------------------------------
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_I_VERSION = 1 << 23
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2

# --- openat2(2) (linux/openat2.h) --------------------------------------------------------------
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# --- mount_setattr(2), open_tree(2), move_mount(2) ---------------------------------------------
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_NOEXEC = 0x00000008
MOUNT_ATTR__ATIME = 0x00000070
MOUNT_ATTR_RELATIME = 0x00000000
MOUNT_ATTR_NOATIME = 0x00000010
MOUNT_ATTR_STRICTATIME = 0x00000020
MOUNT_ATTR_NODIRATIME = 0x00000080
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000
AT_RECURSIVE = 0x8000
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MOVE_MOUNT_T_EMPTY_PATH = 0x00000040

CLOSE_RANGE_CLOEXEC = 1 << 2

# Raw syscall numbers for calls glibc 2.36 does not wrap. The newer ones share one number
# across architectures; pivot_root does not.
_MACHINE = os.uname().machine
NR_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(_MACHINE, 155)
NR_PIDFD_SEND_SIGNAL = 424
NR_OPEN_TREE = 428
NR_MOVE_MOUNT = 429
NR_PIDFD_OPEN = 434
NR_CLOSE_RANGE = 436
NR_OPENAT2 = 437
NR_MOUNT_SETATTR = 442
NR_BPF = {"x86_64": 321, "aarch64": 280}.get(_MACHINE, 321)
NR_CLONE3 = 435
NR_SECCOMP = {"x86_64": 317, "aarch64": 277}.get(_MACHINE, 317)
SECCOMP_SET_MODE_FILTER = 1

_MIN_KERNEL = {
    NR_OPENAT2: "openat2 (Linux 5.6)",
    NR_MOUNT_SETATTR: "mount_setattr (Linux 5.12)",
    NR_OPEN_TREE: "open_tree (Linux 5.2)",
    NR_MOVE_MOUNT: "move_mount (Linux 5.2)",
    NR_PIDFD_OPEN: "pidfd_open (Linux 5.3)",
    NR_PIDFD_SEND_SIGNAL: "pidfd_send_signal (Linux 5.1)",
    NR_CLOSE_RANGE: "close_range (Linux 5.9)",
    NR_BPF: "bpf (Linux 3.18, CONFIG_BPF_SYSCALL)",
    NR_CLONE3: "clone3 (Linux 5.3)",
}

CLONE_INTO_CGROUP = 0x200000000
SIGCHLD = 17

# --- bpf(2) (linux/bpf.h) ----------------------------------------------------------------------
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 1 << 1

NR_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}.get(_MACHINE, 13)
NR_RT_SIGPROCMASK = {"x86_64": 14, "aarch64": 135}.get(_MACHINE, 14)
PR_SET_DUMPABLE = 4
PROC_SUPER_MAGIC = 0x9FA0
PROC_ROOT_INO = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def bind() -> None:
    """Load the wrappers now (stage 1 does, before it changes any namespace)."""
    from pyoci.linux import sysbind  # noqa: F401


def __getattr__(name: str) -> object:
    """`sc.mount` and the other wrappers: resolved from sysbind on first use, then cached."""
    if name.startswith("__"):
        raise AttributeError(name)
    from pyoci.linux import sysbind

    try:
        value = getattr(sysbind, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value
