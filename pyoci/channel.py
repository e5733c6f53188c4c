"""The sync channel of `create` and `exec`: the messages between the parent P, stage 1 (C1)
and the container's init (C2), and how a child's failure crosses it.

Separate from the stages so both sides read one table: the parent (`pyoci.creator`,
`pyoci.execute`) and the children (`pyoci.stage1`, `pyoci.init`) import the names from here,
and nothing else (no plan, no kernel work) comes with them.

```
 P (pyoci create)                     C1 "pyoci:[1:C1]"              C2 "pyoci:[2:INIT]"
 ─────────────────                    ─────────────────              ─────────────────
 plan everything, open ns paths
 fork ───────────────────────────────▶ load ctypes
 make the cgroup, limits ── GO ──────▶ join the v1 cgroups
                                      (cgroup2 too if a user or a joined
                                      cgroup ns follows)
                                      join/create user ns
 ◀────────────── USERNS_READY ──────── (only for a new user ns)
 write uid_map/gid_map ── MAPPED ────▶
                                      setns paths, unshare the rest
                                      fork into the cgroup2 dir ────▶ (PID 1 of the new pid ns)
                                                                     new cgroup ns
 ◀──────────────── PID <n> ─────────── exit(0)
                                                                     rootfs, mounts, /dev
 ◀───────────────────────────────── HOOKS ─ (when hooks or the network need the init's pid)
 network, createRuntime ── HOOKS_DONE <state> ──────────────────────▶ createContainer,
                                                                     pivot_root, masked/ro paths,
                                                                     hostname, sysctl, rlimits,
                                                                     look up args[0]
 ◀───────────────────────────────── READY (or ERROR {"error","errno"}) ─
 pid file, state.json, exit 0                                        open exec.fifo (blocks until
                                                                     `start`), user, caps, exec
```
The messages travel over one SOCK_SEQPACKET socketpair (message boundaries for free). `exec`
uses PID and ERROR only; a successful execve closes its end (CLOEXEC), which is how its parent
knows the process started.
"""

from __future__ import annotations

import _socket as socket  # `socket` imports enum: ~3 ms per command

from pyoci import faults, jsonfast
from pyoci.errors import PyociError

USERNS_READY = b"USERNS_READY"  # C1 → P: in a new user namespace, map it
MAPPED = b"MAPPED"  # P → C1: uid_map and gid_map are written
HOOKS = b"HOOKS"  # C2 → P: run prestart/createRuntime now; P answers HOOKS_DONE <state json>
HOOKS_DONE = b"HOOKS_DONE"
GO = b"GO"  # P → C1: the cgroup exists, with its limits; + a cgroup2 device program, if any
PID = b"PID"  # C1 → P: PID <host pid of the init (or of the exec'd process)>
READY = b"READY"  # C2 → P: everything that can fail has succeeded
ERROR = b"ERROR"  # either child → P: ERROR {"error": msg, "errno": n}; P → C2: stop


def send_error(sock: socket.socket, err: BaseException) -> None:
    """Report `err` to the parent as one ERROR message (best effort: the child exits next)."""
    if isinstance(err, PyociError):
        msg, errno = err.msg, err.errno
    elif isinstance(err, OSError):
        msg = f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
        errno = err.errno or 0
    else:
        msg, errno = f"internal error: {type(err).__name__}: {err}", 0
    try:
        faults.point("child:ERROR")  # fail: the message is lost, as if the socket broke
        sock.send(ERROR + b" " + jsonfast.dumps({"error": msg, "errno": errno}).encode())
    except (OSError, PyociError):
        pass


def raise_child_error(message: bytes) -> None:
    """The parent's side of `send_error`: the child's failure, as the parent's own."""
    data = jsonfast.loads(message[len(ERROR) + 1 :])
    raise PyociError(data.get("error", "unknown error"), data.get("errno", 0))
