"""pyoci.linux.syscalls' syscall numbers: every raw syscall sysbind makes has a number on each
machine pyoci knows, and on any other machine the call fails naming itself (it used to fall
back to the x86_64 number, which elsewhere is some other syscall)."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

from pyoci.linux import syscalls

SYSBIND = Path(syscalls.__file__).with_name("sysbind.py")


def names_sysbind_calls() -> set[str]:
    """The first argument of every _syscall("name", ...) and syscall_nr("name") in sysbind."""
    names = set()
    for node in ast.walk(ast.parse(SYSBIND.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("_syscall", "syscall_nr")
        ):
            arg = node.args[0]
            if isinstance(arg, ast.Name) and arg.id == "name":
                continue  # _syscall's own lookup of the name it was given
            assert isinstance(arg, ast.Constant), f"line {node.lineno}: a syscall by a literal name"
            names.add(arg.value)
    return names


def test_every_raw_syscall_has_a_number_on_every_known_machine() -> None:
    names = names_sysbind_calls()
    assert {"pivot_root", "openat2", "clone3", "set_mempolicy", "sched_setattr"} <= names
    for machine, table in syscalls._NR_BY_MACHINE.items():
        missing = names - set(syscalls._NR_COMMON) - set(table)
        assert not missing, f"{machine}: no number for {sorted(missing)}"
    assert set(syscalls._NR_BY_MACHINE["x86_64"]) == set(syscalls._NR_BY_MACHINE["aarch64"])


def test_this_machine() -> None:
    if os.uname().machine not in syscalls._NR_BY_MACHINE:
        pytest.skip(f"pyoci knows no syscall numbers for {os.uname().machine}")
    expected = {"x86_64": 155, "aarch64": 41}[os.uname().machine]
    assert syscalls.syscall_nr("pivot_root") == expected
    assert syscalls.syscall_nr("openat2") == 437  # one number everywhere


def test_an_unknown_machine_raises_naming_the_syscall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(syscalls, "MACHINE", "riscv64")
    monkeypatch.setattr(syscalls, "SYSCALL_NR", dict(syscalls._NR_COMMON))
    assert syscalls.syscall_nr("openat2") == 437
    with pytest.raises(OSError) as caught:
        syscalls.syscall_nr("pivot_root")
    assert caught.value.errno == 38
    assert caught.value.strerror == (
        "pivot_root: pyoci knows its syscall number on x86_64 and aarch64, not on riscv64"
    )
