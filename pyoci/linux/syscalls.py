"""Linux constants and syscall numbers: what the kernel headers say, with no code to run.

Why a module of its own: the runtime's parent process only plans, and planning needs these
names (mount flags, clone flags, RESOLVE_*) but never a syscall `os` lacks. The ctypes
wrappers that make those calls live in `pyoci.linux.sysbind`, which imports ctypes (~1.3 ms,
~1 MiB of RSS): a caller imports it explicitly, inside the function that runs in a child, and
stage 1 imports it first thing, while still in the host's mount namespace (an import after the
pivot would read the container's files). Constants carry their kernel-header names so the man
pages check them.
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

# Raw syscall numbers (asm/unistd.h) of the calls glibc 2.36 does not wrap, by name. Those
# added since Linux 5.1 share one number on every architecture; the older ones do not, and
# pyoci knows them for x86_64 and aarch64 only: on another machine a call needing one fails
# naming it (`syscall_nr`), never with the x86_64 number (some other syscall there).
_NR_COMMON = {
    "open_tree": 428,
    "move_mount": 429,
    "clone3": 435,
    "close_range": 436,
    "openat2": 437,
    "mount_setattr": 442,
}
_NR_BY_MACHINE = {
    "x86_64": {
        "rt_sigaction": 13,
        "rt_sigprocmask": 14,
        "pivot_root": 155,
        "set_mempolicy": 238,
        "ioprio_set": 251,
        "sched_setattr": 314,
        "seccomp": 317,
        "bpf": 321,
    },
    "aarch64": {
        "ioprio_set": 30,
        "pivot_root": 41,
        "rt_sigaction": 134,
        "rt_sigprocmask": 135,
        "set_mempolicy": 237,
        "sched_setattr": 274,
        "seccomp": 277,
        "bpf": 280,
    },
}
MACHINE = os.uname().machine
SYSCALL_NR = {**_NR_COMMON, **_NR_BY_MACHINE.get(MACHINE, {})}
SECCOMP_SET_MODE_FILTER = 1

# A syscall this kernel lacks (ENOSYS) is reported with the version that added it.
MIN_KERNEL = {
    "openat2": "Linux 5.6",
    "mount_setattr": "Linux 5.12",
    "open_tree": "Linux 5.2",
    "move_mount": "Linux 5.2",
    "close_range": "Linux 5.9",
    "bpf": "Linux 3.18, CONFIG_BPF_SYSCALL",
    "clone3": "Linux 5.3",
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

PR_SET_DUMPABLE = 4
PROC_SUPER_MAGIC = 0x9FA0
PROC_ROOT_INO = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def syscall_nr(name: str) -> int:
    """The number of syscall `name` on this machine; OSError(ENOSYS) naming it if unknown."""
    try:
        return SYSCALL_NR[name]
    except KeyError:
        known = " and ".join(_NR_BY_MACHINE)
        raise OSError(
            38, f"{name}: pyoci knows its syscall number on {known}, not on {MACHINE}"
        ) from None
