"""Missing capability sets are empty.

`"capabilities": {}`, or no `capabilities` object at all, is what podman and docker send for
`--cap-drop ALL` (they omit empty arrays). The spec says an absent set is empty; a runtime that
reads "absent" as "leave the process as it is" runs the container with every capability the
runtime itself has (CapEff 000001fffeffffff): the opposite of what was asked. Every set the
config leaves out must be empty, for `run`, for `exec` (which inherits the container's process)
and for `exec --process FILE` with a process lacking `capabilities`; a config giving only some
sets gets exactly those (and, for uid 0, what the kernel then grants at execve: compared with
runc side by side, not hard-coded).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from attack import pyoci_bin  # noqa: F401

RUNC = "/usr/sbin/runc"
CAP_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")
SHOW_CAPS = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb):' /proc/self/status; echo caps-shown"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _caps_absent(config: dict) -> None:
    del config["process"]["capabilities"]


def _caps_empty(config: dict) -> None:
    config["process"]["capabilities"] = {}


ABSENT = {"no-capabilities-key": _caps_absent, "empty-object": _caps_empty}


def parse_caps(stdout: str) -> dict[str, int]:
    """CapXxx → mask, from what SHOW_CAPS printed; fails unless the container got that far."""
    assert "caps-shown" in stdout, f"the container never printed its capabilities:\n{stdout}"
    caps = {}
    for line in stdout.splitlines():
        name, sep, value = line.partition(":")
        if sep and name in CAP_FIELDS:
            caps[name] = int(value.strip(), 16)
    assert set(caps) == set(CAP_FIELDS), stdout
    return caps


def assert_all_empty(stdout: str) -> None:
    caps = parse_caps(stdout)
    held = {name: f"{mask:016x}" for name, mask in caps.items() if mask}
    assert not held, f"capabilities were absent from the config, yet the process holds {held}"


@pytest.mark.parametrize("variant", list(ABSENT))
def test_run_without_capabilities_has_none(pyoci, bundle, new_id, variant):
    result = pyoci.run(bundle(SHOW_CAPS, patch=ABSENT[variant]), new_id())
    assert result.returncode == 0, result.stderr
    assert_all_empty(result.stdout)


@pytest.mark.parametrize("variant", list(ABSENT))
def test_exec_inherits_empty_sets(pyoci, bundle, new_id, variant):
    cid = new_id()
    result = pyoci.run(bundle(["sleep", "100"], patch=ABSENT[variant]), cid, "--detach")
    assert result.returncode == 0, result.stderr
    result = pyoci("exec", cid, "sh", "-c", SHOW_CAPS)
    assert result.returncode == 0, result.stderr
    assert_all_empty(result.stdout)
    assert pyoci("delete", "--force", cid).returncode == 0


@pytest.mark.parametrize("variant", list(ABSENT))
def test_exec_process_file_without_capabilities(pyoci, bundle, new_id, tmp_path, variant):
    cid = new_id()
    result = pyoci.run(bundle(["sleep", "100"], patch=ABSENT[variant]), cid, "--detach")
    assert result.returncode == 0, result.stderr
    process_file = tmp_path / "process.json"
    process_file.write_text(
        json.dumps(
            {
                "args": ["sh", "-c", SHOW_CAPS],
                "cwd": "/",
                "env": [PATH_ENV, f"PYOCI_TEST_MARKER={pyoci.marker}"],
                "user": {"uid": 0, "gid": 0},
            }
        )
    )
    result = pyoci("exec", "--process", str(process_file), cid)
    assert result.returncode == 0, result.stderr
    assert_all_empty(result.stdout)
    assert pyoci("delete", "--force", cid).returncode == 0


def test_cap_drop_all_refuses_sys_admin_work(pyoci, bundle, new_id):
    """The attack: a root process in a container whose config asked for no capabilities mounts
    a tmpfs (CAP_SYS_ADMIN). It must be refused."""
    script = (
        "mount -t tmpfs none /mnt; echo mount-rc=$?; "
        "echo mnt-mounts=$(grep -c ' /mnt ' /proc/self/mountinfo)"
    )
    b = bundle(script, private=True, patch=_caps_absent)
    (b.rootfs / "mnt").mkdir(exist_ok=True)
    result = pyoci.run(b, new_id())
    assert "mount-rc=" in result.stdout, f"no token:\n{result.stdout}\n{result.stderr}"
    assert "mount-rc=0" not in result.stdout, "a container with no capabilities mounted a tmpfs"
    assert "mnt-mounts=0" in result.stdout, result.stdout
    assert "permission denied" in result.stderr.lower() or "not permitted" in result.stderr


# --- only some sets given ------------------------------------------------------------------------
CHOWN = 1 << 0
PARTIAL = {
    "bounding-only": {"bounding": ["CAP_CHOWN"]},
    "bounding-and-inheritable": {"bounding": ["CAP_CHOWN"], "inheritable": ["CAP_CHOWN"]},
    "permitted-effective-only": {"permitted": ["CAP_KILL"], "effective": ["CAP_KILL"]},
}


def _runc(state: Path, *args: str, capture: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RUNC, "--root", str(state), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.PIPE if capture else subprocess.DEVNULL,
        text=True,
        timeout=30,
        check=False,
    )


def _runc_reference(bundle_dir: Path, state: Path, cid: str, how: str) -> str:
    """What runc's process prints for the same bundle, by `run` or by `exec`."""
    try:
        if how == "run":
            result = _runc(state, "run", "--bundle", str(bundle_dir), cid)
        else:
            # No pipes: the detached container would hold them open.
            args = ("run", "--detach", "--bundle", str(bundle_dir), cid)
            detached = _runc(state, *args, capture=False)
            assert detached.returncode == 0, "runc run --detach failed"
            result = _runc(state, "exec", cid, "sh", "-c", SHOW_CAPS)
        assert result.returncode == 0, result.stderr
        return result.stdout
    finally:
        _runc(state, "delete", "--force", cid, capture=False)
        shutil.rmtree(state, ignore_errors=True)


@pytest.mark.parametrize("how", ["run", "exec"])
@pytest.mark.parametrize("nnp", [True, False], ids=["nnp", "no-nnp"])
@pytest.mark.parametrize("uid", [0, 1000], ids=["root", "uid1000"])
@pytest.mark.parametrize("partial", list(PARTIAL))
def test_only_some_sets_given(pyoci, bundle, new_id, tmp_path, partial, uid, nnp, how):
    """The sets left out are empty; the bounding set is exactly the one given. What uid 0 holds
    after execve (the kernel grants root the bounding set, unless no_new_privs) is compared
    with runc on the same bundle, for `run` and for `exec` (which inherits the process)."""
    sets = PARTIAL[partial]

    def patch(config: dict) -> None:
        config["process"]["capabilities"] = {k: list(v) for k, v in sets.items()}
        config["process"]["user"] = {"uid": uid, "gid": uid}
        config["process"]["noNewPrivileges"] = nnp

    cid = new_id()
    if how == "run":
        b = bundle(SHOW_CAPS, patch=patch)
        result = pyoci.run(b, cid)
    else:
        b = bundle(["sleep", "100"], patch=patch)
        assert pyoci.run(b, cid, "--detach").returncode == 0
        result = pyoci("exec", cid, "sh", "-c", SHOW_CAPS)
        assert pyoci("delete", "--force", cid).returncode == 0
    assert result.returncode == 0, result.stderr
    caps = parse_caps(result.stdout)
    bounding = CHOWN if "bounding" in sets else 0
    assert caps["CapBnd"] == bounding, f"{caps['CapBnd']:x}"
    assert caps["CapAmb"] == 0
    assert caps["CapInh"] == (CHOWN if "inheritable" in sets else 0)
    # Nothing beyond the bounding set can be held after execve, whatever the user.
    assert caps["CapPrm"] & ~bounding == 0 and caps["CapEff"] & ~bounding == 0, caps
    if uid != 0:
        assert caps["CapPrm"] == 0 and caps["CapEff"] == 0, caps  # no file caps on busybox
    if not os.access(RUNC, os.X_OK):
        pytest.skip(f"{RUNC} missing: the uid 0 case is compared with runc")
    reference = parse_caps(_runc_reference(b.path, tmp_path / "runc-state", new_id("runc"), how))
    assert caps == reference, f"{pyoci.binary}: {caps}, runc: {reference}"
