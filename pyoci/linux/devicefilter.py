"""linux.resources.devices for cgroup v2: the v1 rule list compiled to a BPF device program.

cgroup v2 has no devices.allow/deny files; the kernel asks a `BPF_PROG_TYPE_CGROUP_DEVICE`
program attached to the cgroup instead (runc and crun do the same). The rule list keeps v1's
meaning, so one config.json behaves alike on both: `emulate` replays the rules exactly as the
v1 controller does (security/device_cgroup.c), and `program` turns the result into BPF.

v1's model, which `emulate` mirrors: a default (allow or deny) plus a list of exceptions keyed
by (type, major, minor). A rule of type `a` resets: clears the exceptions and sets the default
(its numbers and access are ignored, as the kernel ignores them). A rule that goes against the
default adds an exception, OR-ing its access into one of the same key; a rule that agrees with
the default removes its access from the exception of the same key. A request is then allowed,
with a default deny, when one exception covers *all* its access bits; with a default allow,
unless one exception shares *any* bit with it. Exceptions of different keys never combine.
"""

from __future__ import annotations

import os
import struct

# linux/bpf.h: bpf_cgroup_dev_ctx.access_type = (access << 16) | type.
DEVCG_DEV_BLOCK = 1
DEVCG_DEV_CHAR = 2
DEVCG_ACC_MKNOD = 1
DEVCG_ACC_READ = 2
DEVCG_ACC_WRITE = 4
ACC_ALL = DEVCG_ACC_MKNOD | DEVCG_ACC_READ | DEVCG_ACC_WRITE

_TYPES = {"b": DEVCG_DEV_BLOCK, "c": DEVCG_DEV_CHAR}
_ACCESS = {"m": DEVCG_ACC_MKNOD, "r": DEVCG_ACC_READ, "w": DEVCG_ACC_WRITE}
WILDCARD = None  # major or minor `*`


def access_bits(access: str | None) -> int:
    """`rwm` letters → DEVCG_ACC_* bits (empty or unset: all, as the spec's default)."""
    bits = 0
    for letter in access or "rwm":
        bits |= _ACCESS[letter]
    return bits


def _number(value: int | None) -> int | None:
    """-1 (the spec's "all") and ~0 (what v1 stores for `*`, and so reads a written 4294967295
    as) are the wildcard."""
    return WILDCARD if value is None or value in (-1, 2**32 - 1) else value


class DeviceRules:
    """The effective v1 state: the default and the exceptions, in the order first added."""

    def __init__(self, default_allow: bool = True) -> None:
        self.default_allow = default_allow
        self.exceptions: dict[tuple[int, int | None, int | None], int] = {}

    def apply(self, rule: dict) -> None:
        """One linux.resources.devices entry, as a write to devices.allow/deny would be."""
        allow = bool(rule.get("allow"))
        kind = rule.get("type") or "a"
        if kind == "a":
            self.default_allow = allow
            self.exceptions.clear()
            return
        key = (_TYPES[kind], _number(rule.get("major")), _number(rule.get("minor")))
        bits = access_bits(rule.get("access"))
        if allow == self.default_allow:
            remaining = self.exceptions.get(key, 0) & ~bits
            if remaining:
                self.exceptions[key] = remaining
            else:
                self.exceptions.pop(key, None)
        else:
            self.exceptions[key] = self.exceptions.get(key, 0) | bits

    def allows(self, dev_type: int, major: int, minor: int, access: int) -> bool:
        """The kernel's answer for one request (a reference for the BPF program's)."""
        for (t, maj, mnr), bits in self.exceptions.items():
            if t != dev_type or maj not in (WILDCARD, major) or mnr not in (WILDCARD, minor):
                continue
            if self.default_allow and access & bits:
                return False
            if not self.default_allow and not access & ~bits:
                return True
        return self.default_allow


def emulate(rules: list[dict], default_allow: bool = True) -> DeviceRules:
    state = DeviceRules(default_allow)
    for rule in rules:
        state.apply(rule)
    return state


# --- the BPF program ---------------------------------------------------------------------------
# Opcodes (linux/bpf_common.h, linux/bpf.h) of the few instructions the program needs.
_LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
_ALU32_AND_K = 0x54  # dst &= imm (32-bit)
_ALU32_RSH_K = 0x74  # dst >>= imm (32-bit)
_ALU64_MOV_X = 0xBF  # dst = src
_ALU64_MOV_K = 0xB7  # dst = imm
_JMP32_JNE_K = 0x56  # if (u32)dst != imm goto +off
_JMP32_JEQ_K = 0x16  # if (u32)dst == imm goto +off
_JMP_EXIT = 0x95

# Registers: r1 holds the context on entry; the fields are loaded into r2..r5 and r1 reused.
R0, R1, R2, R3, R4, R5 = range(6)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """struct bpf_insn: u8 code, u8 dst:4|src:4, s16 off, s32 imm (imm given as u32)."""
    if imm >= 1 << 31:
        imm -= 1 << 32
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def _exception_block(key: tuple[int, int | None, int | None], bits: int, allow: bool) -> list:
    """Instructions that return `allow` when the request matches this exception, and fall
    through otherwise. Jumps are to the end of the block, filled in once its length is known."""
    dev_type, major, minor = key
    out: list[tuple[int, int, int]] = [(_JMP32_JNE_K, R2, dev_type)]
    if allow and bits != ACC_ALL:
        # default deny: every requested bit must be in the exception.
        out += [(_ALU64_MOV_X, R1, R3), (_ALU32_AND_K, R1, ~bits & ACC_ALL), (_JMP32_JNE_K, R1, 0)]
    elif not allow:
        # default allow: any requested bit in the exception denies. Tested even for rwm: the
        # kernel also asks with no bit at all (access(2) with F_OK), which v1 then allows.
        out += [(_ALU64_MOV_X, R1, R3), (_ALU32_AND_K, R1, bits), (_JMP32_JEQ_K, R1, 0)]
    if major is not WILDCARD:
        out.append((_JMP32_JNE_K, R4, major))
    if minor is not WILDCARD:
        out.append((_JMP32_JNE_K, R5, minor))
    size = len(out) + 2
    block = []
    for i, (code, reg, imm) in enumerate(out):
        if code in (_JMP32_JNE_K, _JMP32_JEQ_K):
            block.append(_insn(code, reg, off=size - i - 1, imm=imm))
        elif code == _ALU64_MOV_X:
            block.append(_insn(code, reg, src=imm))
        else:
            block.append(_insn(code, reg, imm=imm))
    block += [_insn(_ALU64_MOV_K, R0, imm=int(allow)), _insn(_JMP_EXIT)]
    return block


def program(state: DeviceRules) -> bytes:
    """The BPF device program answering as `state.allows` does: 1 allows, 0 denies."""
    insns = [
        _insn(_LDX_MEM_W, R2, R1, 0),  # access_type
        _insn(_ALU32_AND_K, R2, imm=0xFFFF),  # → device type
        _insn(_LDX_MEM_W, R3, R1, 0),
        _insn(_ALU32_RSH_K, R3, imm=16),  # → access
        _insn(_LDX_MEM_W, R4, R1, 4),  # major
        _insn(_LDX_MEM_W, R5, R1, 8),  # minor
    ]
    for key, bits in state.exceptions.items():
        insns += _exception_block(key, bits, allow=not state.default_allow)
    insns += [_insn(_ALU64_MOV_K, R0, imm=int(state.default_allow)), _insn(_JMP_EXIT)]
    return b"".join(insns)


PROGRAM_NAME = "pyoci_devices"  # bpf_prog_info.name: how install() knows its own programs


def install(cgroup_dir: str, code: bytes) -> None:
    """Attach a program made by `program` to a cgroup2 directory, replacing the one pyoci
    attached before (by `create`, or an earlier `update`; programs of others are left alone).
    The new one is attached first, so there is no moment without a filter; while both are
    attached the kernel asks both (and denies what either denies)."""
    from pyoci.linux import sysbind
    from pyoci.linux import syscalls as sc

    fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        previous = sysbind.bpf_prog_query(fd, sc.BPF_CGROUP_DEVICE)
        prog = sysbind.bpf_prog_load(sc.BPF_PROG_TYPE_CGROUP_DEVICE, code, PROGRAM_NAME)
        try:
            sysbind.bpf_prog_attach(fd, prog, sc.BPF_CGROUP_DEVICE, sc.BPF_F_ALLOW_MULTI)
        finally:
            os.close(prog)
        for prog_id in previous:
            try:
                old = sysbind.bpf_prog_get_fd_by_id(prog_id)
            except FileNotFoundError:
                continue  # detached meanwhile
            try:
                if sysbind.bpf_prog_name(old) == PROGRAM_NAME:
                    sysbind.bpf_prog_detach(fd, old, sc.BPF_CGROUP_DEVICE)
            finally:
                os.close(old)
    finally:
        os.close(fd)
