"""The one exception type pyoci raises, and how an error reaches the user.

Every failure a user can cause or meet is a `PyociError` carrying the message the user sees
(naming the field, flag or id, and the reason). The CLI prints it once; nothing below the CLI
logs it. Child-side errors cross the sync socket as ``{"error": msg, "errno": n}`` and are
rebuilt here in the parent, so they are reported exactly once too.
"""


def one_line(text: str) -> str:
    """`text` with each unprintable character escaped as JSON writes it (`\\n`, `\\u001b`).

    Errors quote what the config, the command line or a hook gave them; a newline or an
    escape sequence there would split the error (tools read one line) or drive the terminal.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _ESCAPES.get(c) or _escape(c) for c in text)


_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


class PyociError(Exception):
    """A user-facing error: `msg` is the whole sentence, on one line whatever it quotes;
    `errno` the OS error if any."""

    def __init__(self, msg: str, errno: int = 0) -> None:
        msg = one_line(msg)
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
