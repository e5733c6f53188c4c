"""The options of `create`/`run` and of `exec`, as two frozen objects.

Separate so the command-line layer (`pyoci.actions`) builds them once from the parsed flags
and the library (`Container.create`, `Container.exec`, `pyoci.creator`, `pyoci.plan`) takes
them whole: no positional list of ten values to keep in step between four signatures, and no
CLI dict below the CLI. Plain classes with `__slots__`, not dataclasses: `dataclasses` imports
`re` and `inspect` (~4 ms), paid by every container operation
(tests/unit/test_import_budget.py).
"""

from __future__ import annotations


class _Frozen:
    """Immutable once built; `replace` makes a changed copy (as dataclasses.replace)."""

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen: use .replace({name}=...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def _set(self, **values: object) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _fields(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}

    def replace(self, **changes: object):
        return type(self)(**{**self._fields(), **changes})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self._fields() == other._fields()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(tuple(self._fields().items()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{type(self).__name__}({inner})"


class CreateOptions(_Frozen):
    """How to create a container (the flags of `create`, and of `run` but --detach/--keep).

    `console_fd`: an fd to send the pty master to, for a caller that relays it itself
    (`run` in the foreground), instead of `console_socket`. `preserve_fds`: fds 3..3+N-1 go
    to the container. `net`: bridge, bridge:NAME or none (pyoci.linux.network)."""

    __slots__ = (
        "bundle",
        "pid_file",
        "no_pivot",
        "preserve_fds",
        "use_init",
        "console_socket",
        "console_fd",
        "systemd_cgroup",
        "net",
    )
    bundle: str
    pid_file: str | None
    no_pivot: bool
    preserve_fds: int
    use_init: bool
    console_socket: str | None
    console_fd: int
    systemd_cgroup: bool
    net: str | None

    def __init__(
        self,
        bundle: str = ".",
        pid_file: str | None = None,
        no_pivot: bool = False,
        preserve_fds: int = 0,
        use_init: bool = False,
        console_socket: str | None = None,
        console_fd: int = -1,
        systemd_cgroup: bool = False,
        net: str | None = None,
    ) -> None:
        self._set(
            bundle=bundle,
            pid_file=pid_file,
            no_pivot=no_pivot,
            preserve_fds=preserve_fds,
            use_init=use_init,
            console_socket=console_socket,
            console_fd=console_fd,
            systemd_cgroup=systemd_cgroup,
            net=net,
        )


class ExecOptions(_Frozen):
    """How to run another process in a container (the flags of `exec`).

    `process_file`: a JSON process object used as given (`--process`); otherwise the
    container's process with the overrides `tty`, `cwd`, `env` (added), `user` (uid[:gid] or
    name[:group]), `caps` (added), `no_new_privs`, `apparmor`, `process_label`. `cgroup`:
    runc's `--cgroup` values, a sub-cgroup of the container's to run in."""

    __slots__ = (
        "process_file",
        "detach",
        "pid_file",
        "preserve_fds",
        "console_socket",
        "tty",
        "cwd",
        "env",
        "user",
        "caps",
        "no_new_privs",
        "apparmor",
        "process_label",
        "cgroup",
    )
    process_file: str | None
    detach: bool
    pid_file: str | None
    preserve_fds: int
    console_socket: str | None
    tty: bool
    cwd: str | None
    env: tuple[str, ...]
    user: str | None
    caps: tuple[str, ...]
    no_new_privs: bool
    apparmor: str | None
    process_label: str | None
    cgroup: tuple[str, ...]

    def __init__(
        self,
        process_file: str | None = None,
        detach: bool = False,
        pid_file: str | None = None,
        preserve_fds: int = 0,
        console_socket: str | None = None,
        tty: bool = False,
        cwd: str | None = None,
        env: tuple[str, ...] | list[str] = (),
        user: str | None = None,
        caps: tuple[str, ...] | list[str] = (),
        no_new_privs: bool = False,
        apparmor: str | None = None,
        process_label: str | None = None,
        cgroup: tuple[str, ...] | list[str] = (),
    ) -> None:
        self._set(
            process_file=process_file,
            detach=detach,
            pid_file=pid_file,
            preserve_fds=preserve_fds,
            console_socket=console_socket,
            tty=tty,
            cwd=cwd,
            env=tuple(env),
            user=user,
            caps=tuple(caps),
            no_new_privs=no_new_privs,
            apparmor=apparmor,
            process_label=process_label,
            cgroup=tuple(cgroup),
        )
