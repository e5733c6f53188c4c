"""`run`: create, start, and in the foreground wait for the container, forward it our signals
and delete it.

Its own module because it drives both sides: the new container (`pyoci.launch`) and the
lifecycle of an existing one (`pyoci.container`), neither of which imports the other's
callers.
"""

import posix

from pyoci import launch, reaping
from pyoci import state as statelib
from pyoci.container import Container
from pyoci.errors import PyociError

TYPE_CHECKING = False  # (the typing module costs ~1 ms: not imported at run time)
if TYPE_CHECKING:
    from pyoci.options import CreateOptions


def run(
    root: str,
    container_id: str,
    options: "CreateOptions | None" = None,
    detach: bool = False,
    keep: bool = False,
    log=None,
    **fields,
) -> int:
    """create + start; in the foreground also wait, forward signals, delete, and return the
    container's exit code (128+N when killed by signal N, as a shell reports it). `options`
    (its console_fd is run's own), or its fields as keywords; `keep`: no delete after."""
    from pyoci import spec as speclib
    from pyoci.options import CreateOptions

    options = launch.options_of(CreateOptions, options, fields)
    statelib.check_id(container_id)
    spec = speclib.load(options.bundle)  # once: create takes it as it is
    if not detach:
        import _prctl  # python-prctl's C module: no ctypes in this process (syscalls.py)

        # The init is re-parented to us when stage 1 exits, so we can wait for it.
        _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)
    relay = None
    console_fd = -1
    terminal = spec.process is not None and spec.process.terminal
    if terminal and not detach and not options.console_socket:
        # A terminal with nobody to take the pty: pyoci relays it itself, as runc does.
        import _socket

        relay, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        console_fd = theirs.detach()
    try:
        if console_fd >= 0:
            options = options.replace(console_fd=console_fd)
        container = Container(launch.create(root, container_id, options, log, spec))
    finally:
        if console_fd >= 0:
            posix.close(console_fd)
    if relay is not None:
        from pyoci.linux.console import recv_fd

        master = recv_fd(relay)
        relay.close()
    try:
        container.start()
    except BaseException:
        _force_delete_quietly(container)
        raise
    if detach:
        return 0
    if relay is not None:
        from pyoci.terminal import relay_and_wait

        code = relay_and_wait(master, container.pid)
    else:
        code = reaping.wait_forwarding_signals(container.pid)
    if not keep:
        _force_delete_quietly(container)
    return code


def _force_delete_quietly(container: Container) -> None:
    try:
        container.delete(force=True)
    except PyociError:
        pass
