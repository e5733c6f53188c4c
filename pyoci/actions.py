"""Command handlers: turn parsed flags into calls of the public API and format the output.

Each handler is `(globals, options, args, log) -> exit code`; the parsers (`__main__` and
`cli`) call them the same way. No lifecycle rule lives here: that is `container.py`'s job.
"""

from __future__ import annotations

import os
import sys


def _root(g: dict) -> str:
    from pyoci.state import default_root

    return os.path.abspath(g["root"]) if g.get("root") else default_root()


def _print_json(value: object) -> None:
    from pyoci import jsonfast

    sys.stdout.write(jsonfast.dumps(value, indent=2) + "\n")


def create(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    Container.create(
        _root(g),
        args[0],
        o["bundle"],
        pid_file=o["pid_file"],
        no_pivot=o["no_pivot"],
        preserve_fds=o["preserve_fds"],
        use_init=o["init"],
        console_socket=o["console_socket"],
        systemd_cgroup=g["systemd_cgroup"],
        log=log,
    )
    return 0


def start(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    Container.load(_root(g), args[0]).start()
    return 0


def run(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci import container

    return container.run(
        _root(g),
        args[0],
        o["bundle"],
        pid_file=o["pid_file"],
        no_pivot=o["no_pivot"],
        detach=o["detach"],
        keep=o["keep"],
        preserve_fds=o["preserve_fds"],
        use_init=o["init"],
        console_socket=o["console_socket"],
        systemd_cgroup=g["systemd_cgroup"],
        log=log,
    )


def exec_(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    container = Container.load(_root(g), args[0])
    return container.exec(args[1:], o, o["process"], o["detach"], o["pid_file"], o["preserve_fds"])


def state(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    _print_json(Container.load(_root(g), args[0]).state())
    return 0


def kill(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    signal = args[1] if len(args) > 1 else "TERM"
    Container.load(_root(g), args[0]).kill(signal, o["all"])
    return 0


def delete(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci import container

    container.delete(_root(g), args[0], o["force"])
    return 0


def list_(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import list_containers

    states = list_containers(_root(g))
    if o["quiet"]:
        for st in states:
            sys.stdout.write(st["id"] + "\n")
    elif o["format"] == "json":
        _print_json(states)
    else:
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [
            (s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"])
            for s in states
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            sys.stdout.write(
                "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                + "\n"
            )
    return 0


def spec(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.defaults import write_default_spec

    write_default_spec(o["bundle"], rootless=o["rootless"])
    return 0


def validate(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.validate import validate_bundle

    problems = validate_bundle(o["bundle"])
    if problems:
        for problem in problems:
            sys.stdout.write(problem + "\n")
        return 1
    sys.stdout.write("OK\n")
    return 0
