"""The process attributes shared by the container's init and `exec`: inherited fds, rlimits,
umask, cwd, HOME, finding args[0], seccomp with the user and capability switch, and the exec
through the sealed helper.

Separate because two different stages set them (`pyoci.init` for the container's process,
`pyoci.execute` for another one in it) and must set them the same way, in the same order.
Everything here runs in a child, after the plan: no import happens in these functions but
what the plans loaded before the fork (`resource` for rlimits).
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError
from pyoci.linux import caps as capslib
from pyoci.linux import exechelper
from pyoci.linux import syscalls as sc
from pyoci.linux.paths import make_in_root


def close_inherited_fds(first: int, keep: set[int]) -> None:
    """Close every fd from `first` up that is not in `keep` (read from the host's /proc, so
    call it before entering the container's mount namespace)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own fd, already gone


def set_rlimits(process) -> None:
    """process.rlimits, as root (a raised hard limit needs CAP_SYS_RESOURCE)."""
    if not process.rlimits:
        return
    import resource  # already loaded by the plan

    for i, rl in enumerate(process.rlimits):
        try:
            resource.setrlimit(rl.resource, (rl.soft, rl.hard))
        except (OSError, ValueError) as err:
            reason = err.strerror.lower() if isinstance(err, OSError) and err.strerror else str(err)
            raise PyociError(
                f"process.rlimits[{i}]: {rl.type} soft {rl.soft} hard {rl.hard}: {reason}"
            ) from None


def enter_cwd_and_find(process, env: dict[str, str]) -> str:
    """umask, the cwd (created if missing, as root), HOME when `env` has none; return args[0]
    resolved along env's PATH. The last steps as root, before the user switch."""
    if process.user.umask is not None:
        os.umask(process.user.umask)
    chdir_in_root(process.cwd)
    exec_path = lookup_executable(process.args[0], env.get("PATH"))
    if "HOME" not in env:
        env["HOME"] = home_of(process.user.uid)
    return exec_path


def load_seccomp_and_drop_privileges(
    seccomp,
    process,
    last_cap: int,
    in_user_ns: bool,
    preserve_fds: int,
    notify_fd: int = -1,
    state=None,
    final_filter: bool = True,
) -> None:
    """Close the fds (marked close-on-exec) before any filter, which may deny close_range;
    without no_new_privs the filter goes before the capability drop (loading needs
    CAP_SYS_ADMIN), as runc orders them; with it, last (`final_filter`), or left to the
    caller to load later. Then the cwd again, as the new user."""
    from pyoci.linux import sysbind  # ctypes: loaded in the child stages only

    sysbind.close_range(3 + preserve_fds, flags=sc.CLOSE_RANGE_CLOEXEC)
    if seccomp is not None and not process.no_new_privileges:
        seccomp.load(notify_fd, state)
    drop_privileges(process, last_cap, in_user_ns)
    if seccomp is not None and process.no_new_privileges and final_filter:
        seccomp.load(notify_fd, state)
    chdir_in_root(process.cwd)  # again: the new user may see the cwd differently


def drop_privileges(process, last_cap: int, in_user_ns: bool) -> None:
    """Bounding set, then user and groups, then the other capability sets and NNP. An absent
    `capabilities` object, or an absent set in it, is empty: podman and docker omit empty
    arrays, so `--cap-drop ALL` arrives as nothing at all."""
    caps = process.capabilities or {}
    capslib.drop_bounding(caps.get("bounding", []), last_cap)
    user = process.user
    setgroups_allowed = not in_user_ns or _setgroups_allowed()
    capslib.switch_user(user.uid, user.gid, user.additional_gids, setgroups_allowed)
    capslib.set_sets(caps, last_cap)
    if process.no_new_privileges:
        capslib.set_no_new_privs()


def exec_program(
    helper_fd: int,
    exec_path: str,
    process,
    env: dict[str, str],
    fifo_fd: int = -1,
    seccomp_program: tuple[int, int] | None = None,
    init: bool = False,
    status_fd: int = -1,
) -> None:
    """Never returns: default signal dispositions (Python ignores SIGPIPE and SIGXFSZ, and
    execve would keep that), then the program through pyoci-exec (never from Python straight
    into a container file: pyoci.linux.exechelper), which waits on `fifo_fd` if given and
    reports on `status_fd` (exec's socket) right before the program's execve."""
    from pyoci.linux import sysbind  # ctypes: loaded in the child stages only

    sysbind.reset_signals()
    exechelper.exec_through(
        helper_fd,
        exec_path,
        process.args,
        env,
        fifo_fd,
        seccomp_program,
        init=init,
        status_fd=status_fd,
    )


def chdir_in_root(cwd: str) -> None:
    """chdir to `cwd` resolved inside the process's root (no magic link such as
    /proc/self/fd/N, no symlink out), created if missing (as runc); then check the kernel
    agrees it is under the root."""
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = make_in_root(root_fd, cwd)
        try:
            os.fchdir(fd)
        finally:
            os.close(fd)
        where = os.getcwd()  # ENOENT when the kernel says "(unreachable)"
    except FileNotFoundError:
        raise PyociError(f"process.cwd: {cwd}: outside the container's root", 2) from None
    except OSError as err:
        raise PyociError(f"process.cwd: {cwd}: {err.strerror.lower()}", err.errno) from None
    finally:
        os.close(root_fd)
    if not where.startswith("/"):
        raise PyociError(f"process.cwd: {cwd}: outside the container's root", 2)


def home_of(uid: int) -> str:
    """HOME for a process.env without one, as runc and crun set it: the directory of `uid`'s
    entry in the container's /etc/passwd, else "/". Read without blocking or following it
    anywhere odd: the file is the image's."""
    try:
        fd = os.open("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if (os.fstat(fd).st_mode & 0o170000) != 0o100000:
            return "/"
        data = os.read(fd, 1 << 20)
    except OSError:
        return "/"
    finally:
        os.close(fd)
    wanted = str(uid)
    for line in data.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2] == wanted:
            return fields[5] or "/"
    return "/"


def lookup_executable(name: str, path_env: str | None) -> str:
    """Find args[0] the way execvp/Go's LookPath do, with the messages docker maps to 127/126."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as err:
            raise PyociError(
                f'exec: "{name}": stat {name}: {err.strerror.lower()}', err.errno
            ) from None
        if not is_executable(st):
            raise PyociError(f'exec: "{name}": permission denied', 13)
        return name
    for directory in (
        path_env or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ).split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if is_executable(st):
            return candidate
    raise PyociError(f'exec: "{name}": executable file not found in $PATH', 2)


def is_executable(st: os.stat_result) -> bool:
    """A regular file with any execute bit (as execvp tries it)."""
    return (st.st_mode & 0o170000) == 0o100000 and bool(st.st_mode & 0o111)


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True
