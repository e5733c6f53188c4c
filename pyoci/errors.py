"""The one exception type pyoci raises, and how an error reaches the user.

Every failure a user can cause or meet is a `PyociError` carrying the message the user sees
(naming the field, flag or id, and the reason). The CLI prints it once; nothing below the CLI
logs it. Child-side errors cross the sync socket as ``{"error": msg, "errno": n}`` and are
rebuilt here in the parent, so they are reported exactly once too.
"""


class PyociError(Exception):
    """A user-facing error: `msg` is the whole sentence, `errno` the OS error if any."""

    def __init__(self, msg: str, errno: int = 0) -> None:
        super().__init__(msg)
        self.msg = msg
        self.errno = errno

    def __str__(self) -> str:
        return self.msg

    def wrap(self, context: str) -> "PyociError":
        """Prepend context (`mounts[2]: ...`), keeping the errno."""
        return PyociError(f"{context}: {self.msg}", self.errno)


def does_not_exist(container_id: str) -> PyociError:
    """The exact words podman and containerd match on to treat a container as gone."""
    return PyociError(f'container "{container_id}" does not exist')
