"""Thin ctypes wrappers for the Linux syscalls Python's `os` module lacks.

Why here, and why this shape: namespaces, mounts and pidfds have no stdlib binding in Python
3.11, so they go through libc (or raw `syscall(2)` where glibc has no wrapper). Prototypes are
set once at import; constants carry their kernel-header names so the man pages check them;
callers pass `str` and get an `OSError(errno, strerror, path)` on failure, never a raw return
code. Import cost: ctypes (~3 ms), paid only by commands that touch the kernel.
"""

from __future__ import annotations

import ctypes
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)

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
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6  # attach type
BPF_F_ALLOW_MULTI = 1 << 1

_c_char_p = ctypes.c_char_p
_c_int = ctypes.c_int
_c_ulong = ctypes.c_ulong
_c_void_p = ctypes.c_void_p

_libc.mount.argtypes = [_c_char_p, _c_char_p, _c_char_p, _c_ulong, _c_void_p]
_libc.mount.restype = _c_int
_libc.umount2.argtypes = [_c_char_p, _c_int]
_libc.umount2.restype = _c_int
_libc.unshare.argtypes = [_c_int]
_libc.unshare.restype = _c_int
_libc.setns.argtypes = [_c_int, _c_int]
_libc.setns.restype = _c_int
_libc.setdomainname.argtypes = [_c_char_p, ctypes.c_size_t]
_libc.setdomainname.restype = _c_int
_libc.prctl.argtypes = [_c_int, _c_ulong, _c_ulong, _c_ulong, _c_ulong]
_libc.prctl.restype = _c_int
_libc.syscall.restype = ctypes.c_long
# The same syscall(2) called with the GIL held (PyDLL): what a fork must be, as os.fork is.
_syscall_gil = ctypes.PyDLL(None, use_errno=True).syscall
_syscall_gil.restype = ctypes.c_long
_pyapi = ctypes.pythonapi
for _name in ("PyOS_BeforeFork", "PyOS_AfterFork_Parent", "PyOS_AfterFork_Child"):
    getattr(_pyapi, _name).argtypes = []
    getattr(_pyapi, _name).restype = None


class OpenHow(ctypes.Structure):
    """struct open_how (linux/openat2.h)."""

    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class MountAttr(ctypes.Structure):
    """struct mount_attr (linux/mount.h)."""

    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _fs(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _check(ret: int, path: str | None = None, nr: int | None = None) -> int:
    """Raise OSError for a -1 return, naming the syscall when the kernel lacks it."""
    if ret == -1:
        err = ctypes.get_errno()
        if err == 38 and nr in _MIN_KERNEL:  # ENOSYS
            raise OSError(err, f"{_MIN_KERNEL[nr]} is not available on this kernel", path)
        raise OSError(err, os.strerror(err), path)
    return ret


def _syscall(nr: int, *args: object, path: str | None = None) -> int:
    return _check(_libc.syscall(ctypes.c_long(nr), *args), path, nr)


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None
) -> None:
    """mount(2)."""
    _check(_libc.mount(_fs(source), _fs(target), _fs(fstype), flags, _fs(data)), target)


def umount2(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    _check(_libc.umount2(_fs(target), flags), target)


def unshare(flags: int) -> None:
    """unshare(2)."""
    _check(_libc.unshare(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """setns(2): join the namespace `fd` refers to (nstype 0 = any type)."""
    _check(_libc.setns(fd, nstype))


def pivot_root(new_root: str, put_old: str) -> None:
    """pivot_root(2); glibc has no wrapper."""
    _syscall(NR_PIVOT_ROOT, _fs(new_root), _fs(put_old), path=new_root)


def setdomainname(name: str) -> None:
    """setdomainname(2) (Python has sethostname but not this)."""
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)))


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open `path` relative to `dirfd` with RESOLVE_* path-walk restrictions."""
    how = OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _syscall(
        NR_OPENAT2,
        _c_int(dirfd),
        _fs(path),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
        path=path,
    )


def mount_setattr(
    dirfd: int,
    path: str,
    flags: int,
    attr_set: int = 0,
    attr_clr: int = 0,
    propagation: int = 0,
    userns_fd: int = 0,
) -> None:
    """mount_setattr(2): change mount attributes, recursively with AT_RECURSIVE."""
    attr = MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _syscall(
        NR_MOUNT_SETATTR,
        _c_int(dirfd),
        _fs(path),
        ctypes.c_uint(flags),
        ctypes.byref(attr),
        ctypes.c_size_t(ctypes.sizeof(attr)),
        path=path,
    )


def open_tree(dirfd: int, path: str, flags: int) -> int:
    """open_tree(2): a detached copy (OPEN_TREE_CLONE) of a mount tree, as an fd."""
    return _syscall(NR_OPEN_TREE, _c_int(dirfd), _fs(path), ctypes.c_uint(flags), path=path)


def move_mount(from_fd: int, to_fd: int) -> None:
    """move_mount(2) of a detached tree fd onto the directory `to_fd` refers to (both by fd:
    a /proc/self/fd path would not be followed without MOVE_MOUNT_T_SYMLINKS)."""
    _syscall(
        NR_MOVE_MOUNT,
        _c_int(from_fd),
        b"",
        _c_int(to_fd),
        b"",
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
    )


def pidfd_open(pid: int) -> int:
    """pidfd_open(2): an fd that polls readable when `pid` exits (child or not)."""
    return _syscall(NR_PIDFD_OPEN, _c_int(pid), ctypes.c_uint(0))


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    """pidfd_send_signal(2): signal without the pid-reuse race of kill(2)."""
    _syscall(NR_PIDFD_SEND_SIGNAL, _c_int(pidfd), _c_int(sig), None, ctypes.c_uint(0))


NR_RT_SIGACTION = {"x86_64": 13, "aarch64": 134}.get(_MACHINE, 13)
NR_RT_SIGPROCMASK = {"x86_64": 14, "aarch64": 135}.get(_MACHINE, 14)


class KernelSigaction(ctypes.Structure):
    """struct sigaction as the rt_sigaction syscall takes it (x86_64/aarch64 layout)."""

    _fields_ = [
        ("handler", ctypes.c_ulong),
        ("flags", ctypes.c_ulong),
        ("restorer", ctypes.c_ulong),
        ("mask", ctypes.c_uint64),
    ]


def reset_signals() -> None:
    """Every signal back to SIG_DFL and none blocked, with raw syscalls: ignored signals
    survive execve, and glibc's wrappers refuse its reserved 32 and 33, which a caller (a
    CI runner, a shell) may well have ignored."""
    default = KernelSigaction(0, 0, 0, 0)
    for sig in range(1, 65):
        if sig in (9, 19):  # SIGKILL, SIGSTOP
            continue
        _libc.syscall(ctypes.c_long(NR_RT_SIGACTION), _c_int(sig), ctypes.byref(default), None,
                      ctypes.c_size_t(8))  # fmt: skip
    empty = ctypes.c_uint64(0)
    _libc.syscall(
        ctypes.c_long(NR_RT_SIGPROCMASK), _c_int(2), ctypes.byref(empty), None, ctypes.c_size_t(8)
    )  # fmt: skip  (2 = SIG_SETMASK)


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """close_range(2); with CLOSE_RANGE_CLOEXEC marks instead of closing."""
    _syscall(NR_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags))


PR_SET_DUMPABLE = 4
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36
PR_SET_PDEATHSIG = 1
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2) for the options python-prctl lacks (ambient caps) or that must stay cheap."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5))


def set_process_name(name: str) -> None:
    """PR_SET_NAME, so `ps` shows the stage (`pyoci:[2:INIT]`), as runc and youki do."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _check(_libc.prctl(PR_SET_NAME, ctypes.cast(buf, _c_void_p).value or 0, 0, 0, 0))


# --- bpf(2): union bpf_attr is filled by offset (linux/bpf.h), the rest left zero ------------
_BPF_ATTR_SIZE = 128


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    return _syscall(NR_BPF, _c_int(cmd), attr, ctypes.c_uint(_BPF_ATTR_SIZE))


def bpf_prog_load(prog_type: int, insns: bytes, license: str = "Apache") -> int:
    """BPF_PROG_LOAD: a CLOEXEC fd of the verified program. A rejected program is loaded
    once more with the verifier's log on (not the first time: a log too small for a valid
    program fails the load with ENOSPC), and that log is the OSError's message."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<IIQQ", attr, 0, prog_type, len(insns) // 8, ctypes.addressof(code),
                     ctypes.addressof(lic))  # fmt: skip
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except OSError as err:
        first = err
    log = ctypes.create_string_buffer(1 << 16)
    struct.pack_into("<IIQ", attr, 24, 1, len(log), ctypes.addressof(log))
    try:
        os.close(_bpf(BPF_PROG_LOAD, attr))
    except OSError:
        pass
    detail = "; ".join(log.value.decode(errors="replace").strip().splitlines()[-3:])
    raise OSError(first.errno, f"{first.strerror}: {detail}" if detail else first.strerror)


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int) -> None:
    """BPF_PROG_ATTACH of `prog_fd` to the cgroup directory `target_fd`."""
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<IIII", attr, 0, target_fd, prog_fd, attach_type, flags)
    _bpf(BPF_PROG_ATTACH, attr)


def bpf_prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<III", attr, 0, target_fd, prog_fd, attach_type)
    _bpf(BPF_PROG_DETACH, attr)


def bpf_prog_query(target_fd: int, attach_type: int) -> list[int]:
    """BPF_PROG_QUERY: ids of the programs attached directly to the cgroup `target_fd`."""
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<IIIIQI", attr, 0, target_fd, attach_type, 0, 0, ctypes.addressof(ids), 64)
    _bpf(BPF_PROG_QUERY, attr)
    (count,) = struct.unpack_from("<I", attr, 24)
    return list(ids[:count])


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr)


def fork_into_cgroup(cgroup_fd: int) -> int:
    """os.fork(), but the child is born in the cgroup2 directory `cgroup_fd`
    (clone3 with CLONE_INTO_CGROUP, Linux 5.7): no migration, so none of its costs (see
    pyoci.linux.cgroupjoin). Python's own fork bookkeeping is done through the C API made for
    forks that do not go through os.fork (PyOS_BeforeFork / PyOS_AfterFork_*)."""
    args = struct.pack("<11Q", CLONE_INTO_CGROUP, 0, 0, 0, SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd)
    buf = ctypes.create_string_buffer(args, len(args))
    _pyapi.PyOS_BeforeFork()
    pid = _syscall_gil(ctypes.c_long(NR_CLONE3), buf, ctypes.c_size_t(len(args)))
    if pid == 0:
        _pyapi.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _pyapi.PyOS_AfterFork_Parent()
    if pid < 0:
        if err == 38:
            raise OSError(err, f"{_MIN_KERNEL[NR_CLONE3]} is not available on this kernel")
        raise OSError(err, os.strerror(err))
    return pid
