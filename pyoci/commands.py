"""The one table of pyoci's commands and flags, read by both command-line parsers.

Why two parsers over one table: pyoci starts for every container operation and click costs
~25 ms to import, about what runc takes for a whole `run`. `pyoci.entry` parses argv from this
table without importing click; when argv asks for help or is malformed it hands over to
`pyoci.cli`, which builds click commands from the same table, so every flag is defined once
and click gives the help text and usage errors. Both call a row's handler through
`run_handler`, here so that neither parser imports the other. (No `__future__` import: see
`pyoci.entry`.)
"""

import sys


class Opt:
    """A flag: `names` as typed (`--bundle`, `-b`), `kind` flag|str|int|choice|multi."""

    __slots__ = ("names", "dest", "kind", "default", "help", "choices", "metavar")

    def __init__(
        self,
        *names: str,
        dest: str | None = None,
        kind: str = "str",
        default: object = None,
        help: str = "",
        choices: tuple[str, ...] = (),
        metavar: str | None = None,
    ) -> None:
        self.names = names
        self.dest = dest or names[0].lstrip("-").replace("-", "_")
        self.kind = kind
        self.default = (
            default
            if default is not None
            else (False if kind == "flag" else [] if kind == "multi" else None)
        )
        self.help = help
        self.choices = choices
        self.metavar = metavar


class Cmd:
    """A command: positional `args` as (name, required); `rest` takes every remaining token
    after the required ones verbatim (`exec ID CMD ARGS...`)."""

    __slots__ = ("name", "help", "handler", "args", "opts", "rest")

    def __init__(
        self,
        name: str,
        help: str,
        handler: str,
        args: tuple[tuple[str, bool], ...] = (),
        opts: tuple[Opt, ...] = (),
        rest: str | None = None,
    ) -> None:
        self.name = name
        self.help = help
        self.handler = handler
        self.args = args
        self.opts = opts
        self.rest = rest


GLOBAL_OPTS = (
    Opt(
        "--root",
        help="state directory (default /run/pyoci, or $XDG_RUNTIME_DIR/pyoci rootless)",
        metavar="DIR",
    ),
    Opt("--log", help="append log lines to FILE instead of stderr only", metavar="FILE"),
    Opt(
        "--log-format",
        kind="choice",
        choices=("text", "json"),
        default="text",
        help="log line format",
    ),
    Opt("--debug", kind="flag", help="debug log lines, and a traceback on internal errors"),
    Opt("--systemd-cgroup", kind="flag", help="linux.cgroupsPath is slice:prefix:name"),
    Opt("--rootless", default="auto", help="rootless mode: true, false or auto", metavar="MODE"),
    Opt(
        "--criu",
        help="accepted for runc compatibility (checkpointing is not supported)",
        metavar="PATH",
    ),
)

_BUNDLE = Opt(
    "--bundle",
    "-b",
    default=".",
    help="path to the bundle (default: current directory)",
    metavar="DIR",
)
_PID_FILE = Opt(
    "--pid-file", help="write the container's pid (no trailing newline) to FILE", metavar="FILE"
)
_NO_PIVOT = Opt(
    "--no-pivot", kind="flag", help="MS_MOVE + chroot instead of pivot_root (ramfs roots)"
)
_CONSOLE = Opt("--console-socket", help="unix socket to send the pty master to", metavar="PATH")
_PRESERVE = Opt(
    "--preserve-fds", kind="int", default=0, help="pass N fds beyond stdio (3..3+N-1)", metavar="N"
)
_NO_KEYRING = Opt("--no-new-keyring", kind="flag", help="accepted for runc compatibility")
_PIDFD_SOCKET = Opt("--pidfd-socket", help="accepted for runc compatibility", metavar="PATH")
_INIT = Opt("--init", kind="flag", help="run pyoci's minimal init as PID 1 (signals, zombies)")
_NET = Opt(
    "--net",
    help="bridge networking: bridge (pyoci0, 10.89.0.0/24), bridge:NAME, or none",
    metavar="MODE",
)
_ID = (("container-id", True),)
# what `create` takes, and `run` too (it is create + start)
_CREATE_OPTS = (
    _BUNDLE,
    _PID_FILE,
    _CONSOLE,
    _NO_PIVOT,
    _NO_KEYRING,
    _PRESERVE,
    _PIDFD_SOCKET,
    _INIT,
    _NET,
)

COMMANDS = (
    Cmd(
        "create",
        "Create a container from a bundle; its process waits for `start`.",
        "pyoci.actions:create",
        _ID,
        _CREATE_OPTS,
    ),
    Cmd("start", "Start the user process of a created container.", "pyoci.actions:start", _ID),
    Cmd(
        "run",
        "Create and start a container; wait for it unless --detach.",
        "pyoci.actions:run",
        _ID,
        (
            *_CREATE_OPTS,
            Opt("--detach", "-d", kind="flag", help="return once the container has started"),
            Opt("--keep", kind="flag", help="do not delete the container after it exits"),
        ),
    ),
    Cmd(
        "exec",
        "Run a process in a running container (CMD [ARG...] or --process FILE).",
        "pyoci.actions:exec_",
        _ID,
        (
            Opt(
                "--process",
                "-p",
                help="a JSON process object (as conmon and containerd send)",
                metavar="FILE",
            ),
            Opt("--detach", "-d", kind="flag", help="return once the process has started"),
            _PID_FILE,
            _CONSOLE,
            Opt("--tty", "-t", kind="flag", help="allocate a pseudo-terminal"),
            Opt("--cwd", help="working directory inside the container", metavar="DIR"),
            Opt(
                "--env",
                "-e",
                kind="multi",
                help="set an environment variable (KEY=VALUE)",
                metavar="KEY=VALUE",
            ),
            Opt(
                "--user",
                "-u",
                help="uid[:gid] or name[:group] from the container's passwd",
                metavar="USER",
            ),
            Opt("--cap", "-c", kind="multi", help="add a capability (CAP_NAME)", metavar="CAP"),
            Opt("--no-new-privs", kind="flag", help="set no_new_privs for the process"),
            _PRESERVE,
            Opt(
                "--additional-gids",
                "-g",
                kind="multi",
                help="accepted for runc compatibility",
                metavar="GID",
            ),
            Opt(
                "--process-label",
                help="accepted for runc compatibility (no SELinux)",
                metavar="LABEL",
            ),
            Opt("--apparmor", help="accepted for runc compatibility (no AppArmor)", metavar="P"),
            Opt(
                "--cgroup",
                kind="multi",
                help="run the process in an existing sub-cgroup of the container's: PATH in "
                "every hierarchy, or CONTROLLER[,CONTROLLER...]:PATH (repeatable)",
                metavar="[CONTROLLER:]PATH",
            ),
        ),
        rest="command",
    ),
    Cmd("pause", "Freeze every process of a running container.", "pyoci.actions:pause", _ID),
    Cmd("resume", "Thaw a paused container.", "pyoci.actions:resume", _ID),
    Cmd(
        "ps",
        "List the processes of a container.",
        "pyoci.actions:ps",
        _ID,
        (
            Opt(
                "--format",
                "-f",
                kind="choice",
                choices=("table", "json"),
                default="table",
                help="table (ps -ef lines) or json (array of host pids)",
            ),
        ),  # fmt: skip
        rest="ps_args",
    ),
    Cmd(
        "events",
        "Print resource usage stats and OOM events of a container, as JSON lines.",
        "pyoci.actions:events",
        _ID,
        (
            Opt("--stats", kind="flag", help="print one stats event and exit"),
            Opt("--interval", default="5s", help="stats interval (e.g. 5s, 500ms)", metavar="D"),
        ),
    ),
    Cmd(
        "update",
        "Change the cgroup resources of a container.",
        "pyoci.actions:update",
        _ID,
        (
            Opt(
                "--resources",
                "-r",
                help="linux.resources JSON from FILE, or - for stdin",
                metavar="FILE",
            ),
            # runc's flags as runc spells them (runc 1.1 `update --help`, plus --cpu-burst and
            # --cpu-idle of later runc); older pyoci spellings stay as aliases.
            Opt("--blkio-weight", kind="int", help="block IO weight (10-1000)", metavar="N"),
            Opt("--cpu-period", kind="int", help="CFS period in microseconds", metavar="N"),
            Opt("--cpu-quota", kind="int", help="CFS quota in microseconds", metavar="N"),
            Opt("--cpu-burst", kind="int", help="CFS burst in microseconds", metavar="N"),
            Opt(
                "--cpu-share",
                "--cpu-shares",
                dest="cpu_share",
                kind="int",
                help="CPU shares (relative weight)",
                metavar="N",
            ),
            Opt("--cpu-rt-period", kind="int", help="realtime period in microseconds", metavar="N"),
            Opt(
                "--cpu-rt-runtime", kind="int", help="realtime runtime in microseconds", metavar="N"
            ),
            Opt(
                "--cpu-idle",
                kind="int",
                help="1: SCHED_IDLE for the cgroup, 0: default",
                metavar="N",
            ),
            Opt("--cpuset-cpus", help="CPUs allowed (0-3, 0,1)", metavar="LIST"),
            Opt("--cpuset-mems", help="memory nodes allowed", metavar="LIST"),
            Opt("--memory", help="memory limit (bytes, or 64m, 1g; -1: none)", metavar="N"),
            Opt("--memory-reservation", help="memory soft limit", metavar="N"),
            Opt("--memory-swap", help="memory + swap limit (-1: none)", metavar="N"),
            Opt(
                "--pids-limit",
                kind="int",
                help="maximum number of tasks (0 is a limit: no fork; -1: none)",
                metavar="N",
            ),
            Opt("--kernel-memory", help="accepted for runc compatibility (ignored)", metavar="N"),
            Opt(
                "--kernel-memory-tcp", help="accepted for runc compatibility (ignored)", metavar="N"
            ),
            Opt(
                "--l3-cache-schema",
                help="Intel RDT/CAT L3 cache schema (not supported)",
                metavar="S",
            ),
            Opt(
                "--mem-bw-schema",
                help="Intel RDT/MBA memory bandwidth schema (not supported)",
                metavar="S",
            ),
        ),  # fmt: skip
    ),
    Cmd(
        "features",
        "Print what this runtime supports (runtime-spec features.md JSON).",
        "pyoci.actions:features",
    ),
    Cmd("state", "Print the state of a container as JSON.", "pyoci.actions:state", _ID),
    Cmd(
        "kill",
        "Send a signal (default SIGTERM) to the container's init.",
        "pyoci.actions:kill",
        (("container-id", True), ("signal", False)),
        (Opt("--all", "-a", kind="flag", help="signal every process of the container"),),
    ),
    Cmd(
        "delete",
        "Delete a stopped container (--force: kill it first).",
        "pyoci.actions:delete",
        _ID,
        (
            Opt(
                "--force",
                "-f",
                kind="flag",
                help="kill a running container; an unknown id is not an error",
            ),
        ),
    ),
    Cmd(
        "list",
        "List containers.",
        "pyoci.actions:list_",
        (),
        (
            Opt(
                "--format",
                "-f",
                kind="choice",
                choices=("table", "json"),
                default="table",
                help="output format",
            ),
            Opt("--quiet", "-q", kind="flag", help="print only the ids"),
        ),
    ),
    Cmd(
        "spec",
        "Write a default config.json into the bundle.",
        "pyoci.actions:spec",
        (),
        (_BUNDLE, Opt("--rootless", kind="flag", help="a config for an unprivileged user")),
    ),
    Cmd(
        "validate",
        "Check a bundle's config.json against the runtime spec; print every problem.",
        "pyoci.actions:validate",
        (),
        (_BUNDLE,),
    ),
)

COMMANDS_BY_NAME = {cmd.name: cmd for cmd in COMMANDS}


def run_handler(g: dict, cmd: Cmd, o: dict, args: list[str]) -> int:
    """Call the command's handler; turn a PyociError into one log line and exit 1."""
    from pyoci.errors import PyociError
    from pyoci.log import Logger

    log = Logger(g.get("log"), g.get("log_format") or "text", bool(g.get("debug")))
    problem = log.check()
    if problem is not None:
        sys.stderr.write(f"pyoci: {problem}\n")
        return 1
    if g.get("rootless") not in (None, "auto", "true", "false"):
        log.error(f"--rootless: must be true, false or auto, not {g['rootless']!r}")
        return 1
    module_name, _, func_name = cmd.handler.partition(":")
    try:
        module = __import__(module_name, fromlist=[func_name])
        return getattr(module, func_name)(g, o, args, log) or 0
    except PyociError as err:
        log.error(err.msg)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception as err:  # noqa: BLE001 - never a traceback unless --debug
        if g.get("debug"):
            import traceback

            traceback.print_exc()
        log.error(f"internal error: {type(err).__name__}: {err}")
        return 1
