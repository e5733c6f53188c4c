"""ctypes wrappers for the syscalls Python's `os` module lacks: the only module that calls libc.

Why here, and why this shape: namespaces, mounts, BPF and the scheduler have no stdlib binding
in Python 3.11, so they go through libc (or raw `syscall(2)` where glibc has no wrapper).
Callers pass `str`/`int`/`bytes` and get an `OSError(errno, strerror, path)` on failure, never
a raw return code. Importing this module loads ctypes (~1.3 ms): callers import it inside the
functions that run in a child (`from pyoci.linux import sysbind`), and stage 1 imports it
first, on the host (see pyoci.linux.syscalls). Prototypes are set once at import.
"""

from __future__ import annotations

import ctypes
import os
import struct

from pyoci.linux.syscalls import (
    BPF_OBJ_GET_INFO_BY_FD,
    BPF_PROG_ATTACH,
    BPF_PROG_DETACH,
    BPF_PROG_GET_FD_BY_ID,
    BPF_PROG_LOAD,
    BPF_PROG_QUERY,
    CLONE_INTO_CGROUP,
    MIN_KERNEL,
    MOVE_MOUNT_F_EMPTY_PATH,
    MOVE_MOUNT_T_EMPTY_PATH,
    PR_SET_NAME,
    SECCOMP_SET_MODE_FILTER,
    SIGCHLD,
    syscall_nr,
)

_libc = ctypes.CDLL(None, use_errno=True)

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
_libc.personality.argtypes = [_c_ulong]
_libc.personality.restype = _c_int
_libc.syscall.restype = ctypes.c_long
# The same syscall(2) called with the GIL held (PyDLL): what a fork must be, as os.fork is.
_syscall_gil = ctypes.PyDLL(None, use_errno=True).syscall
_syscall_gil.restype = ctypes.c_long
_pyapi = ctypes.pythonapi
for _name in ("PyOS_BeforeFork", "PyOS_AfterFork_Parent", "PyOS_AfterFork_Child"):
    getattr(_pyapi, _name).argtypes = []
    getattr(_pyapi, _name).restype = None


# struct open_how (linux/openat2.h) and struct mount_attr (linux/mount.h): all __u64, so
# packed with struct rather than declared as ctypes.Structure classes (~0.1 ms each to build,
# paid at every container start).
def _u64s(*values: int) -> ctypes.Array:
    raw = struct.pack(f"<{len(values)}Q", *values)
    return ctypes.create_string_buffer(raw, len(raw))


def _fs(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _check(ret: int, path: str | None = None, name: str | None = None) -> int:
    """Raise OSError for a -1 return, naming the syscall when the kernel lacks it."""
    if ret == -1:
        err = ctypes.get_errno()
        if err == 38 and name in MIN_KERNEL:  # ENOSYS
            raise OSError(err, f"{name} ({MIN_KERNEL[name]}) is not available on this kernel", path)
        raise OSError(err, os.strerror(err), path)
    return ret


def _syscall(name: str, *args: object, path: str | None = None) -> int:
    """syscall(2) of `name` (see syscalls.syscall_nr: unknown on this machine → OSError)."""
    return _check(_libc.syscall(ctypes.c_long(syscall_nr(name)), *args), path, name)


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
    _syscall("pivot_root", _fs(new_root), _fs(put_old), path=new_root)


def setdomainname(name: str) -> None:
    """setdomainname(2) (Python has sethostname but not this)."""
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)))


# openat2(2): with RESOLVE_IN_ROOT/RESOLVE_BENEATH the kernel answers EAGAIN when a rename or a
# mount anywhere on the host raced a ".." step of the walk ("the caller may choose to retry").
# Containers are created side by side, so that race is ordinary; libpathrs and
# filepath-securejoin retry a bounded number of times, as here.
_OPENAT2_TRIES = 32


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): open `path` relative to `dirfd` with RESOLVE_* path-walk restrictions."""
    how = _u64s(flags | os.O_CLOEXEC, mode, resolve)
    args = (_c_int(dirfd), _fs(path), how, ctypes.c_size_t(len(how)))
    for _ in range(_OPENAT2_TRIES - 1):
        try:
            return _syscall("openat2", *args, path=path)
        except BlockingIOError:  # EAGAIN: a concurrent rename or mount, walk again
            continue
    return _syscall("openat2", *args, path=path)


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
    attr = _u64s(attr_set, attr_clr, propagation, userns_fd)
    _syscall(
        "mount_setattr",
        _c_int(dirfd),
        _fs(path),
        ctypes.c_uint(flags),
        attr,
        ctypes.c_size_t(len(attr)),
        path=path,
    )


def open_tree(dirfd: int, path: str, flags: int) -> int:
    """open_tree(2): a detached copy (OPEN_TREE_CLONE) of a mount tree, as an fd."""
    return _syscall("open_tree", _c_int(dirfd), _fs(path), ctypes.c_uint(flags), path=path)


def move_mount(from_fd: int, to_fd: int) -> None:
    """move_mount(2) of a detached tree fd onto the directory `to_fd` refers to (both by fd:
    a /proc/self/fd path would not be followed without MOVE_MOUNT_T_SYMLINKS)."""
    _syscall(
        "move_mount",
        _c_int(from_fd),
        b"",
        _c_int(to_fd),
        b"",
        ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
    )


def reset_signals() -> None:
    """Every signal back to SIG_DFL and none blocked, with raw syscalls: ignored signals
    survive execve, and glibc's wrappers refuse its reserved 32 and 33, which a caller (a
    CI runner, a shell) may well have ignored."""
    default = _u64s(0, 0, 0, 0)  # the kernel's struct sigaction: handler, flags, restorer, mask
    sigaction = ctypes.c_long(syscall_nr("rt_sigaction"))
    for sig in range(1, 65):
        if sig in (9, 19):  # SIGKILL, SIGSTOP
            continue
        _libc.syscall(sigaction, _c_int(sig), default, None, ctypes.c_size_t(8))
    sig_setmask = 2
    empty = _u64s(0)
    _libc.syscall(
        ctypes.c_long(syscall_nr("rt_sigprocmask")),
        _c_int(sig_setmask),
        empty,
        None,
        ctypes.c_size_t(8),
    )


def seccomp_load(program: bytes, flags: int) -> None:
    """seccomp(SECCOMP_SET_MODE_FILTER) of a compiled program (struct sock_filter[]), as
    libseccomp's load does, from a cached copy (pyoci.linux.seccompcache)."""
    buf = ctypes.create_string_buffer(program, len(program))
    fprog = ctypes.create_string_buffer(
        struct.pack("<H6xQ", len(program) // 8, ctypes.addressof(buf)), 16
    )
    _syscall("seccomp", ctypes.c_uint(SECCOMP_SET_MODE_FILTER), ctypes.c_uint(flags), fprog)


def fstatfs_type(fd: int) -> int:
    """f_type of fstatfs(2) (e.g. PROC_SUPER_MAGIC): which filesystem an fd really is on."""
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes; f_type comes first
    _check(_libc.fstatfs(_c_int(fd), buf))
    return struct.unpack_from("<q", buf.raw, 0)[0]


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    """close_range(2); with CLOSE_RANGE_CLOEXEC marks instead of closing."""
    _syscall("close_range", ctypes.c_uint(first), ctypes.c_uint(last), ctypes.c_uint(flags))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """prctl(2) for the options python-prctl lacks (ambient caps) or that must stay cheap."""
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5))


def set_process_name(name: str) -> None:
    """PR_SET_NAME, so `ps` shows the stage (`pyoci:[2:INIT]`), as runc and youki do."""
    buf = ctypes.create_string_buffer(name.encode()[:15])
    _check(_libc.prctl(PR_SET_NAME, ctypes.cast(buf, _c_void_p).value or 0, 0, 0, 0))


def personality(persona: int) -> None:
    """personality(2): set the execution domain (LINUX32 makes `uname -m` say i686)."""
    _check(_libc.personality(persona))


def ioprio_set(which: int, who: int, ioprio: int) -> None:
    """ioprio_set(2); glibc has no wrapper."""
    _syscall("ioprio_set", _c_int(which), _c_int(who), _c_int(ioprio))


def sched_setattr(pid: int, attr: bytes, flags: int = 0) -> None:
    """sched_setattr(2) of a packed struct sched_attr (see pyoci.linux.sched); no wrapper."""
    buf = ctypes.create_string_buffer(attr, len(attr))
    _syscall("sched_setattr", _c_int(pid), buf, ctypes.c_uint(flags))


def set_mempolicy(mode: int, nodemask: bytes, maxnode: int) -> None:
    """set_mempolicy(2) for the calling thread; an empty `nodemask` passes NULL."""
    mask = ctypes.create_string_buffer(nodemask, len(nodemask)) if nodemask else None
    _syscall("set_mempolicy", _c_int(mode), mask, _c_ulong(maxnode))


# --- bpf(2): union bpf_attr is filled by offset (linux/bpf.h), the rest left zero ------------
_BPF_ATTR_SIZE = 128
# Offset of `name` in struct bpf_prog_info: type, id, tag[8], jited/xlated lengths and
# pointers, load_time, created_by_uid, nr_map_ids, map_ids, then name[16] (Linux 4.15).
_BPF_PROG_INFO_NAME = 64


def _bpf(cmd: int, attr: ctypes.Array) -> int:
    return _syscall("bpf", _c_int(cmd), attr, ctypes.c_uint(_BPF_ATTR_SIZE))


def bpf_prog_load(prog_type: int, insns: bytes, name: str = "", license: str = "Apache") -> int:
    """BPF_PROG_LOAD: a CLOEXEC fd of the verified program. A rejected program is loaded
    once more with the verifier's log on (not the first time: a log too small for a valid
    program fails the load with ENOSPC), and that log is the OSError's message."""
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<IIQQ", attr, 0, prog_type, len(insns) // 8, ctypes.addressof(code),
                     ctypes.addressof(lic))  # fmt: skip
    struct.pack_into("16s", attr, 48, name.encode()[:15])  # prog_name
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


def bpf_prog_name(prog_fd: int) -> str:
    """The name a program was loaded with (BPF_OBJ_GET_INFO_BY_FD: bpf_prog_info.name)."""
    info = ctypes.create_string_buffer(_BPF_PROG_INFO_NAME + 16)
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<IIQ", attr, 0, prog_fd, len(info), ctypes.addressof(info))
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    raw = info.raw[_BPF_PROG_INFO_NAME : _BPF_PROG_INFO_NAME + 16]
    return raw.split(b"\0", 1)[0].decode(errors="replace")


def bpf_prog_get_fd_by_id(prog_id: int) -> int:
    attr = ctypes.create_string_buffer(_BPF_ATTR_SIZE)
    struct.pack_into("<I", attr, 0, prog_id)
    return _bpf(BPF_PROG_GET_FD_BY_ID, attr)


def fork_into_cgroup(cgroup_fd: int) -> int:
    """os.fork(), but the child is born in the cgroup2 directory `cgroup_fd`
    (clone3 with CLONE_INTO_CGROUP, Linux 5.7): no migration, so none of its costs (see
    pyoci.linux.cgroupjoin). Python's own fork bookkeeping is done through the C API made for
    forks that do not go through os.fork (PyOS_BeforeFork / PyOS_AfterFork_*).

    Only from a single-threaded process, as every pyoci stage is: the raw syscall skips
    glibc's fork handling (atfork handlers, malloc locks, the thread id glibc caches), which
    only matters when another thread could hold those."""
    import _thread

    if _thread._count():
        raise RuntimeError("fork_into_cgroup: the process has other threads")
    args = struct.pack("<11Q", CLONE_INTO_CGROUP, 0, 0, 0, SIGCHLD, 0, 0, 0, 0, 0, cgroup_fd)
    buf = ctypes.create_string_buffer(args, len(args))
    nr = syscall_nr("clone3")
    _pyapi.PyOS_BeforeFork()
    pid = _syscall_gil(ctypes.c_long(nr), buf, ctypes.c_size_t(len(args)))
    if pid == 0:
        _pyapi.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    _pyapi.PyOS_AfterFork_Parent()
    if pid < 0:
        if err == 38:
            raise OSError(err, f"clone3 ({MIN_KERNEL['clone3']}) is not available on this kernel")
        raise OSError(err, os.strerror(err))
    return pid
