"""The fast argv parser (pyoci.entry.parse) and the click CLI (pyoci.cli, used for help and
usage errors) read the same command table; fed the same argv they must call the handler with
the same globals, options and arguments. The argv lists are what podman, conmon, containerd
and docker send (shared/cli-contract.md) plus the edge cases where parsers like to differ."""

from __future__ import annotations

import pytest

import pyoci.entry as entry
from pyoci import cli

ARGVS = [
    ["--root", "/r", "--log", "/l", "--log-format", "json", "create", "--bundle", "/b",
     "--pid-file", "/p", "c1"],
    ["--log-format=json", "--log", "/x/oci-log", "create", "--bundle", "/b", "--pid-file", "/p",
     "--console-socket", "/s", "c1"],
    ["--systemd-cgroup", "--root", "/r", "run", "-d", "--bundle", "/b", "c1"],
    ["exec", "--pid-file", "/p", "--process", "/f", "--detach", "c1"],
    ["exec", "--pid-file", "/p", "--process", "/f", "--detach", "--tty", "--console-socket",
     "/s", "c1"],
    ["exec", "c1", "-e", "FOO=1", "sh"],  # after the id: the command's (as runc)
    ["exec", "-e", "FOO=1", "c1", "sh", "-c", "echo $FOO"],
    ["exec", "--tty", "c1", "sh"],
    ["exec", "c1", "--", "ls", "-l"],
    ["kill", "c1", "9"],
    ["kill", "--all", "c1", "KILL"],
    ["kill", "c1"],
    ["delete", "--force", "c1"],
    ["delete", "c1"],
    ["state", "c1"],
    ["start", "c1"],
    ["pause", "c1"],
    ["resume", "c1"],
    ["ps", "--format", "json", "c1"],
    ["update", "--resources", "-", "c1"],
    ["update", "--memory", "64m", "--pids-limit", "50", "c1"],
    ["list", "--format", "json"],
    ["list", "-q"],
    ["spec", "--rootless", "--bundle", "/b"],
    ["--rootless", "false", "state", "c1"],
]  # fmt: skip


def _via_click(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple:
    seen: list[tuple] = []

    def record(g: dict, cmd, o: dict, args: list[str]) -> int:
        seen.append((g, cmd.name, o, args))
        return 0

    monkeypatch.setattr(cli, "run_handler", record)
    assert cli.main(argv) == 0
    assert len(seen) == 1
    return seen[0]


def _normalized(g: dict, name: str, o: dict, args: list[str]) -> tuple:
    def clean(d: dict) -> dict:
        return {k: v for k, v in d.items() if v not in (None, False, [], ())}

    return clean(g), name, clean(o), list(args)


@pytest.mark.parametrize("argv", ARGVS, ids=lambda a: " ".join(a))
def test_both_parsers_agree(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    g, cmd, o, args = entry.parse(list(argv))
    fast = _normalized(g, cmd.name, o, args)
    assert _normalized(*_via_click(list(argv), monkeypatch)) == fast


def test_exec_options_after_the_id_belong_to_the_command() -> None:
    _, _, o, args = entry.parse(["exec", "c1", "-e", "FOO=1", "sh"])
    assert args == ["c1", "-e", "FOO=1", "sh"] and not o.get("env")
