"""OCI hooks: run one hook with the container state on its stdin, bounded by its timeout.

Hooks run in two places: the runtime (prestart, createRuntime, poststart, poststop, from the
parent or the `start`/`delete` command) and the container's init (createContainer before the
pivot, startContainer after `start`). The init must not import anything after the fork, so
this module uses only os-level calls (fork, execve, a pipe, a pidfd) and no `subprocess`.
"""

from __future__ import annotations

import os

from pyoci import faults
from pyoci.errors import PyociError

# config.md: the state's status as each hook sees it.
HOOK_STATUS = {
    "prestart": "creating",  # run during create, like createRuntime
    "createRuntime": "creating",
    "createContainer": "creating",
    "startContainer": "created",
    "poststart": "running",
    "poststop": "stopped",
}


def run_hook(
    name: str, index: int, hook: dict, state_json: bytes, exec_helper_fd: int = -1
) -> None:
    """Run hooks.<name>[index]; a non-zero exit, a signal or a timeout raises PyociError.
    `exec_helper_fd`: in the container's init, the hook is exec'd through the sealed
    pyoci-exec, never straight from the host's interpreter (pyoci.linux.exechelper)."""
    import select

    faults.point(f"hook:{name}:{index}")
    field = f"hooks.{name}[{index}]"
    path = hook["path"]
    args = hook.get("args") or [path]
    # No `env`: the runtime's environment (PATH at least), as runc and crun pass.
    env = dict(os.environ) if hook.get("env") is None else {}
    for item in hook.get("env") or []:
        key, sep, value = item.partition("=")
        if sep:
            env[key] = value
    stdin_r, stdin_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(stdin_w)
            os.dup2(stdin_r, 0)
            if exec_helper_fd >= 0:
                from pyoci.linux.exechelper import helper_argv  # loaded by the init's plan

                os.execve(exec_helper_fd, helper_argv(path, args), env)
            os.execve(path, args, env)
        except OSError as err:
            os.write(2, f"pyoci: {field}: exec {path}: {err.strerror.lower()}\n".encode())
        os._exit(127)
    os.close(stdin_r)
    try:
        os.write(stdin_w, state_json)
    except BrokenPipeError:
        pass  # the hook does not read its stdin: that is its right
    finally:
        os.close(stdin_w)
    timeout = hook.get("timeout")
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(None if timeout is None else timeout * 1000):
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise PyociError(f"{field}: {path} timed out after {timeout}s")
    finally:
        os.close(pidfd)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        raise PyociError(f"{field}: {path} failed: {how}")


def run_hooks(
    name: str,
    hooks: dict,
    state: dict,
    warn_only: bool = False,
    log=None,
    exec_helper_fd: int = -1,
) -> None:
    """Run every hook of `name` in order; `warn_only` (poststart, poststop) logs failures."""
    from pyoci import jsonfast

    entries = hooks.get(name) or []
    if not entries:
        return
    state_json = jsonfast.dumps(dict(state, status=HOOK_STATUS[name])).encode()
    for index, hook in enumerate(entries):
        try:
            run_hook(name, index, hook, state_json, exec_helper_fd)
        except PyociError as err:
            if not warn_only:
                raise
            if log is not None:
                log.warning(err.msg)
