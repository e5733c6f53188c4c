"""Command handlers: turn parsed flags into calls of the public API and format the output.

Each handler is `(globals, options, args, log) -> exit code`; the parsers (`__main__` and
`cli`) call them the same way. No lifecycle rule lives here: that is `container.py`'s job.
(No `os` nor `__future__` import: see `pyoci.entry`.)
"""

import sys

from pyoci.errors import PyociError


def _root(g: dict) -> str:
    from pyoci.state import default_root

    root = g.get("root")
    if not root:
        return default_root()
    if root[0] == "/" and "//" not in root and "/." not in root and root[-1] != "/":
        return root  # already what abspath would return: no need to load os
    import os

    return os.path.abspath(root)


def _print_json(value: object) -> None:
    from pyoci import jsonfast

    sys.stdout.write(jsonfast.dumps(value, indent=2) + "\n")


def create_options(g: dict, o: dict):
    """The flags of `create` and `run` as the library's CreateOptions: built here, once."""
    from pyoci.options import CreateOptions

    return CreateOptions(
        bundle=o["bundle"],
        pid_file=o["pid_file"],
        no_pivot=o["no_pivot"],
        preserve_fds=o["preserve_fds"],
        use_init=o["init"],
        console_socket=o["console_socket"],
        systemd_cgroup=g["systemd_cgroup"],
        net=o["net"],
    )


def create(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    Container.create(_root(g), args[0], create_options(g, o), log)
    return 0


def start(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    Container.load(_root(g), args[0]).start()
    return 0


def run(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci import runner

    return runner.run(
        _root(g), args[0], create_options(g, o), detach=o["detach"], keep=o["keep"], log=log
    )


def exec_options(o: dict):
    """The flags of `exec` as the library's ExecOptions: built here, once."""
    from pyoci.options import ExecOptions

    return ExecOptions(
        process_file=o["process"],
        detach=o["detach"],
        pid_file=o["pid_file"],
        preserve_fds=o["preserve_fds"],
        console_socket=o["console_socket"],
        tty=o["tty"],
        cwd=o["cwd"],
        env=o["env"],
        user=o["user"],
        caps=o["cap"],
        no_new_privs=o["no_new_privs"],
        apparmor=o["apparmor"],
        process_label=o["process_label"],
        cgroup=o["cgroup"],
    )


def exec_(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    return Container.load(_root(g), args[0]).exec(args[1:], exec_options(o))


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

    container.delete(_root(g), args[0], o["force"], log)
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


def pause(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    Container.load(_root(g), args[0]).pause()
    return 0


def resume(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    Container.load(_root(g), args[0]).resume()
    return 0


def ps(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.container import Container

    pids = Container.load(_root(g), args[0]).pids()
    if o["format"] == "json":
        from pyoci import jsonfast

        sys.stdout.write(jsonfast.dumps(pids) + "\n")
        return 0
    import subprocess

    # Like runc: `ps` with the given arguments (default -ef), keeping the container's lines.
    result = subprocess.run(["ps", *(args[1:] or ["-ef"])], capture_output=True, text=True)
    if result.returncode != 0:
        raise PyociError(f"ps: {result.stderr.strip()}")
    lines = result.stdout.splitlines()
    header, rows = lines[0], lines[1:]
    try:
        column = header.split().index("PID")
    except ValueError:
        raise PyociError("ps: the output has no PID column") from None
    wanted = set(pids)
    sys.stdout.write(header + "\n")
    for row in rows:
        fields = row.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            sys.stdout.write(row + "\n")
    return 0


def _duration(text: str) -> float:
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0))
    for suffix, factor in units:
        if text.endswith(suffix) and text[: -len(suffix)].replace(".", "", 1).isdigit():
            return float(text[: -len(suffix)]) * factor
    if text.replace(".", "", 1).isdigit():
        return float(text)
    raise PyociError(f"--interval: {text!r} is not a duration (e.g. 5s, 500ms)")


def events(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci import jsonfast
    from pyoci.container import Container

    interval = _duration(o["interval"])
    if interval <= 0:
        raise PyociError("--interval: must be positive")

    def emit(event: dict) -> None:
        sys.stdout.write(jsonfast.dumps(event) + "\n")
        sys.stdout.flush()

    Container.load(_root(g), args[0]).events(interval, o["stats"], emit)
    return 0


def _bytes(flag: str, text: str) -> int:
    """runc's sizes (go-units RAMInBytes): 1024, 64k, 64m, 1g, 64MiB, 1.5g; -1 for no limit."""
    value = text.strip().lower()
    if value == "-1":
        return -1
    value = value.removesuffix("b").removesuffix("i")
    factor = 1
    if value and value[-1] in "kmgtp":
        factor = 1024 ** ("kmgtp".index(value[-1]) + 1)
        value = value[:-1]
    try:
        number = float(value.strip())
    except ValueError:
        number = -1.0
    if number < 0:
        raise PyociError(f"{flag}: {text!r} is not a size (e.g. 64m, 1g, or -1)")
    return int(number * factor)


# update's flags → linux.resources (runc's update.go): (option, section, key, size?).
_UPDATE_FLAGS = (
    ("memory", "memory", "limit", True),
    ("memory_reservation", "memory", "reservation", True),
    ("memory_swap", "memory", "swap", True),
    ("cpu_share", "cpu", "shares", False),
    ("cpu_quota", "cpu", "quota", False),
    ("cpu_period", "cpu", "period", False),
    ("cpu_burst", "cpu", "burst", False),
    ("cpu_rt_period", "cpu", "realtimePeriod", False),
    ("cpu_rt_runtime", "cpu", "realtimeRuntime", False),
    ("cpu_idle", "cpu", "idle", False),
    ("cpuset_cpus", "cpu", "cpus", False),
    ("cpuset_mems", "cpu", "mems", False),
    ("pids_limit", "pids", "limit", False),
    ("blkio_weight", "blockIO", "weight", False),
)


def _resources_from_flags(o: dict, log) -> dict:
    resources: dict = {}
    for option, section, key, size in _UPDATE_FLAGS:
        value = o.get(option)
        if value is None or value == "":  # runc ignores an empty value too
            continue
        if size:
            value = _bytes("--" + option.replace("_", "-"), value)
        resources.setdefault(section, {})[key] = value
    for option in ("kernel_memory", "kernel_memory_tcp"):
        if o.get(option):
            log.warning(f"--{option.replace('_', '-')}: kernel memory limits are ignored")
    if o.get("l3_cache_schema") or o.get("mem_bw_schema"):
        from pyoci.linux.resources import check_intel_rdt

        check_intel_rdt(bool(o.get("l3_cache_schema")), bool(o.get("mem_bw_schema")))
    return resources


def update(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci import jsonfast
    from pyoci.container import Container

    if o["resources"]:
        try:
            if o["resources"] == "-":
                text = sys.stdin.read()
            else:
                with open(o["resources"]) as f:
                    text = f.read()
            resources = jsonfast.loads(text)
        except OSError as err:
            raise PyociError(f"--resources: {o['resources']}: {err.strerror.lower()}") from None
        except ValueError as err:
            raise PyociError(f"--resources: invalid JSON: {err}") from None
        if not isinstance(resources, dict):
            raise PyociError("--resources: must be a JSON object (linux.resources)")
        from pyoci import shapes

        shapes.check_resources(resources, "resources")
    else:
        resources = _resources_from_flags(o, log)
    memory = resources.get("memory")
    if isinstance(memory, dict) and memory.get("limit") == -1 and memory.get("swap") is None:
        # As runc: "no memory limit" alone means no memory+swap limit either (v1 would refuse
        # a memory limit above the memory+swap one).
        resources["memory"] = {**memory, "swap": -1}
    Container.load(_root(g), args[0]).update(resources, log)
    return 0


def features(g: dict, o: dict, args: list[str], log) -> int:
    from pyoci.features import features as build

    _print_json(build())
    return 0
