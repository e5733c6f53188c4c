"""`create` and `validate` share one rule set (pyoci.rules): the same config gets the same
verdict from both. The configs include `runc spec`'s default, captured at test time, which
pyoci once refused while `validate` called it valid."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pyoci import rules
from pyoci.errors import PyociError
from pyoci.spec import CAPABILITIES, Spec
from pyoci.validate import validate_config

BUSYBOX = json.loads(
    (Path(__file__).resolve().parents[2] / "bundles" / "busybox" / "config.json").read_text()
)


def _with(path: str, value: object):
    def patch(config: dict) -> None:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return patch


def _joined_net(config: dict) -> None:
    for ns in config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/proc/self/ns/net"
    config["linux"]["sysctl"] = {"net.core.somaxconn": "256"}


def _no_uts(config: dict) -> None:
    config["linux"]["namespaces"] = [
        ns for ns in config["linux"]["namespaces"] if ns["type"] != "uts"
    ]


def _joined_uts(config: dict) -> None:
    for ns in config["linux"]["namespaces"]:
        if ns["type"] == "uts":
            ns["path"] = "/proc/self/ns/uts"


CASES = {
    "busybox": (lambda c: None, True),
    "vm.swappiness": (_with("linux.sysctl", {"vm.swappiness": "10"}), False),
    "net sysctl, joined netns": (_joined_net, True),
    "ipc sysctl": (_with("linux.sysctl", {"kernel.shmmax": "1024"}), True),
    "hostname without uts": (_no_uts, False),
    "hostname in a joined uts": (_joined_uts, True),
    "hostname and its sysctl": (_with("linux.sysctl", {"kernel.hostname": "x"}), False),
    "ambient not inheritable": (
        _with(
            "process.capabilities",
            {"bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"]},
        ),
        True,
    ),
}


def _verdicts(config: dict, tmp_path: Path) -> tuple[bool, bool]:
    try:
        Spec(copy.deepcopy(config), str(tmp_path))
        created = True
    except PyociError:
        created = False
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    config = copy.deepcopy(config)
    config["root"]["path"] = str(tmp_path / "rootfs")
    return created, validate_config(config, tmp_path) == []


@pytest.mark.parametrize("name", list(CASES))
def test_create_and_validate_agree(name: str, tmp_path: Path) -> None:
    patch, valid = CASES[name]
    config = copy.deepcopy(BUSYBOX)
    patch(config)
    assert _verdicts(config, tmp_path) == (valid, valid)


def test_runc_spec_default_is_accepted_by_both(tmp_path: Path) -> None:
    if shutil.which("runc") is None:
        pytest.skip("runc is not installed: no `runc spec` to capture")
    subprocess.run(["runc", "spec"], cwd=tmp_path, check=True)
    config = json.loads((tmp_path / "config.json").read_text())
    assert _verdicts(config, tmp_path) == (True, True)
    spec = Spec(config, str(tmp_path))
    # Its ambient caps are not inheritable: dropped with a warning each, not refused.
    assert spec.process.warnings
    assert spec.process.capabilities["ambient"] == []


@pytest.mark.parametrize(
    "key, namespace",
    [("net.ipv4.ip_forward", "network"), ("kernel.sem", "ipc"), ("fs.mqueue.msg_max", "ipc"),
     ("kernel.domainname", "uts"), ("vm.swappiness", None), ("kernel.pid_max", None)],
)  # fmt: skip
def test_sysctl_namespace(key: str, namespace: str | None) -> None:
    assert rules.sysctl_namespace(key) == namespace


def test_ambient_warnings_name_the_capability() -> None:
    kill = CAPABILITIES.index("CAP_KILL")
    chown = CAPABILITIES.index("CAP_CHOWN")
    caps = {"permitted": [kill, chown], "inheritable": [kill], "ambient": [kill, chown]}
    warnings = rules.ambient_warnings(caps, tuple(CAPABILITIES))
    assert len(warnings) == 1 and "CAP_CHOWN" in warnings[0]


def test_dotted_paths() -> None:
    assert rules.dotted(("mounts", 3, "destination")) == "mounts[3].destination"
    assert rules.dotted(("linux", "sysctl", "vm.swappiness")) == "linux.sysctl.vm.swappiness"
    # F10: a key that would not read back dotted is quoted, by create and validate alike
    assert rules.dotted(("annotations", "")) == 'annotations[""]'
    assert rules.dotted(("annotations", "a: b")) == 'annotations["a: b"]'
    assert rules.dotted(("annotations", "a..b")) == 'annotations["a..b"]'
    assert rules.dotted(("annotations", 'q"é')) == 'annotations["q\\"\\u00e9"]'
    assert rules.dotted(("linux", "resources", "unified", "memory.max")) == (
        "linux.resources.unified.memory.max"
    )
    assert rules.dotted(()) == ""
