"""The cgroup-v2 device filter without a kernel: v1's rule semantics (pyoci.linux.devicefilter's
emulator) and the BPF it compiles to, run here by a small interpreter of the instructions the
compiler emits. Whether the emulator agrees with the kernel's own v1 controller, and the program
with the kernel's verifier and hook, is tests/integration/test_cgroups.py's job."""

from __future__ import annotations

import random
import struct

import pytest

from pyoci.linux import devicefilter as df

B, C = df.DEVCG_DEV_BLOCK, df.DEVCG_DEV_CHAR
M, R, W = df.DEVCG_ACC_MKNOD, df.DEVCG_ACC_READ, df.DEVCG_ACC_WRITE


def run_program(code: bytes, dev_type: int, major: int, minor: int, access: int) -> int:
    """Execute the program on one bpf_cgroup_dev_ctx; only the opcodes the compiler emits are
    known, anything else fails the test."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs = [0] * 11
    regs[1] = "ctx"
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    pc = 0
    for _ in range(10_000):
        op, r, off, imm = insns[pc]
        dst, src = r & 0xF, r >> 4
        u32 = imm & 0xFFFFFFFF
        pc += 1
        if op == 0x61:
            assert regs[src] == "ctx" and off in (0, 4, 8), (pc, off)
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == 0x54:
            regs[dst] = (regs[dst] & u32) & 0xFFFFFFFF
        elif op == 0x74:
            regs[dst] = (regs[dst] & 0xFFFFFFFF) >> imm
        elif op == 0xBF:
            regs[dst] = regs[src]
        elif op == 0xB7:
            regs[dst] = imm
        elif op in (0x56, 0x16):
            equal = regs[dst] & 0xFFFFFFFF == u32
            if equal == (op == 0x16):
                pc += off
        elif op == 0x95:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x} at {pc - 1}")
    raise AssertionError("program did not exit")


def rule(allow: bool, kind: str = "a", major=None, minor=None, access: str = "rwm") -> dict:
    return {"allow": allow, "type": kind, "major": major, "minor": minor, "access": access}


# --- the emulator: v1's documented behaviour ---------------------------------------------------
def test_no_rules_allows_everything():
    state = df.emulate([])
    assert state.default_allow and not state.exceptions
    assert state.allows(C, 1, 3, R | W | M)


def test_deny_all_then_allow_one():
    state = df.emulate([rule(False), rule(True, "c", 1, 3, "rw")])
    assert state.allows(C, 1, 3, R | W)
    assert not state.allows(C, 1, 3, M)
    assert not state.allows(C, 1, 5, R)
    assert not state.allows(B, 1, 3, R)


def test_access_of_one_key_merges():
    state = df.emulate([rule(False), rule(True, "c", 240, 0, "r"), rule(True, "c", 240, 0, "w")])
    assert state.exceptions == {(C, 240, 0): R | W}
    assert state.allows(C, 240, 0, R | W)


def test_exceptions_of_different_keys_do_not_combine():
    """r from 240:0 and w from 240:* do not make an O_RDWR open of 240:0 allowed."""
    state = df.emulate([rule(False), rule(True, "c", 240, 0, "r"), rule(True, "c", 240, None, "w")])
    assert state.allows(C, 240, 0, R) and state.allows(C, 240, 0, W)
    assert not state.allows(C, 240, 0, R | W)


def test_a_rule_agreeing_with_the_default_removes_access_of_the_same_key_only():
    state = df.emulate(
        [rule(False), rule(True, "c", 240, None, "rw"), rule(False, "c", 240, 0, "w")]
    )
    assert state.allows(C, 240, 0, W), "240:0 is not the key 240:* was allowed under"
    state = df.emulate([rule(False), rule(True, "c", 240, 0, "rwm"), rule(False, "c", 240, 0, "w")])
    assert state.exceptions == {(C, 240, 0): R | M}
    assert not state.allows(C, 240, 0, W) and state.allows(C, 240, 0, R)


def test_only_type_a_resets_and_default_allow_denies_on_any_shared_bit():
    state = df.emulate([rule(True), rule(False, "c", 1, 3, "w"), rule(False, "b", None, None)])
    assert state.default_allow
    assert state.exceptions == {(C, 1, 3): W, (B, None, None): R | W | M}
    assert not state.allows(C, 1, 3, R | W)  # shares w
    assert state.allows(C, 1, 3, R)
    assert not state.allows(B, 8, 0, R)
    state = df.emulate([rule(False), rule(True, "c", 1, 3), rule(True, "a", 5, 5, "r")])
    assert state.default_allow and not state.exceptions, "type a ignores numbers and access"


def test_access_letters():
    assert df.access_bits("") == df.ACC_ALL
    assert df.access_bits(None) == df.ACC_ALL
    assert df.access_bits("rm") == R | M


# --- the program agrees with the emulator ---------------------------------------------------------
PROBES = [
    (t, major, minor, acc)
    for t in (B, C)
    for major in (1, 5, 240, 4095)  # majors are 12 bits, minors 20
    for minor in (0, 3, 2**20 - 1)
    for acc in (0, M, R, W, R | W, R | W | M)  # 0: access(2) with F_OK asks with no bit
]


def check_program(rules: list[dict]) -> None:
    state = df.emulate(rules)
    code = df.program(state)
    for probe in PROBES:
        got = run_program(code, *probe)
        assert got == int(state.allows(*probe)), (rules, probe, got)


@pytest.mark.parametrize(
    "rules",
    [
        [],
        [rule(False)],
        [rule(False), rule(True, "c", 1, 3, "rw"), rule(True, "b", 240, None, "m")],
        [rule(True), rule(False, "c", None, 3, "r"), rule(False, "b", 5, 0, "rwm")],
        [rule(False), rule(True, "c", 4095, 2**20 - 1, "w")],
        [rule(False), rule(True, "c", 2**32 - 1, -1, "w")],  # both wildcards, as v1 reads them
    ],
)
def test_program_matches_the_emulator(rules):
    check_program(rules)


def test_program_matches_the_emulator_on_random_rule_lists():
    rng = random.Random(20261201)
    numbers = [None, -1, 1, 5, 240, 4095, 2**32 - 1]
    for _ in range(300):
        rules = []
        for _ in range(rng.randint(0, 7)):
            kind = rng.choice("abcc")
            access = "".join(x for x in "rwm" if rng.random() < 0.5)
            rules.append(
                rule(rng.random() < 0.5, kind, rng.choice(numbers), rng.choice(numbers), access)
            )
        check_program(rules)


def test_program_shape():
    """Eight-byte instructions; the last one exits; no jump leaves the program."""
    state = df.emulate([rule(False), rule(True, "c", 1, 3, "r"), rule(True, "c", 1, 5)])
    code = df.program(state)
    assert len(code) % 8 == 0
    insns = [struct.unpack_from("<BBhi", code, i) for i in range(0, len(code), 8)]
    assert insns[-1][0] == 0x95
    for pc, (op, _, off, _) in enumerate(insns):
        if op in (0x56, 0x16):
            assert 0 < pc + 1 + off < len(insns)
