"""The bridge address store (pyoci.netstore) and the network plan's checks that need no root
(pyoci.linux.network): leases, their release, stale leases, concurrent leasing, flag and
annotation parsing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyoci.errors import PyociError
from pyoci.linux import network
from pyoci.netstore import Store

KEY = "1:2/pyoci0"


def _network(root: Path, *ids: str) -> None:
    for cid in ids:
        (root / cid).mkdir(exist_ok=True)  # a container's state directory
    with Store(str(root)) as store:
        store.add_network(
            KEY, {"bridge": "pyoci0", "subnet": "10.89.0.0/29", "bridgeAddress": "10.89.0.1"}
        )


def test_leases_take_the_lowest_free_address_but_the_bridges(tmp_path: Path) -> None:
    _network(tmp_path, "a", "b", "c")
    with Store(str(tmp_path)) as store:
        assert store.lease(KEY, "a", "vp1") == "10.89.0.2"
        assert store.lease(KEY, "b", "vp2") == "10.89.0.3"
    with Store(str(tmp_path)) as store:  # written, and read back
        assert store.release(KEY, "10.89.0.2", "a") is False
        assert store.lease(KEY, "c", "vp3") == "10.89.0.2"
        assert set(store.network(KEY)["leases"]) == {"10.89.0.2", "10.89.0.3"}


def test_a_fixed_address_in_use_or_the_bridges_is_refused(tmp_path: Path) -> None:
    _network(tmp_path, "a", "b")
    field = "annotations.org.pyoci.net.address"
    with Store(str(tmp_path)) as store:
        store.lease(KEY, "a", "vp1", "10.89.0.5", field)
    with Store(str(tmp_path)) as store:
        with pytest.raises(PyociError, match=r"10\.89\.0\.5 is in use \(container 'a'\)"):
            store.lease(KEY, "b", "vp2", "10.89.0.5", field)
        with pytest.raises(PyociError, match="the bridge's own address"):
            store.lease(KEY, "b", "vp2", "10.89.0.1", field)


def test_a_full_subnet_says_so(tmp_path: Path) -> None:
    ids = [f"c{i}" for i in range(6)]
    _network(tmp_path, *ids)
    with Store(str(tmp_path)) as store:
        for cid in ids[:5]:  # /29: .2 to .6
            store.lease(KEY, cid, "vp")
        with pytest.raises(PyociError, match=r"--net: no free address left in 10\.89\.0\.0/29"):
            store.lease(KEY, ids[5], "vp", field="--net")


def test_release_says_when_the_last_lease_went_and_stale_leases_are_dropped(
    tmp_path: Path,
) -> None:
    _network(tmp_path, "a", "gone")
    with Store(str(tmp_path)) as store:
        store.lease(KEY, "a", "vp1")
        store.lease(KEY, "gone", "vp2")
    (tmp_path / "gone").rmdir()  # a create killed half-way: no state directory
    with Store(str(tmp_path)) as store:
        store.drop_stale()
        assert list(store.network(KEY)["leases"]) == ["10.89.0.2"]
        assert store.release(KEY, "10.89.0.2", "someone-else") is False  # not theirs
        assert store.release(KEY, "10.89.0.2", "a") is True


def test_an_exception_in_the_block_writes_nothing(tmp_path: Path) -> None:
    _network(tmp_path, "a")
    with pytest.raises(RuntimeError), Store(str(tmp_path)) as store:
        store.lease(KEY, "a", "vp1")
        raise RuntimeError
    with Store(str(tmp_path)) as store:
        assert store.network(KEY)["leases"] == {}


def test_concurrent_leases_never_collide(tmp_path: Path) -> None:
    ids = [f"c{i}" for i in range(12)]
    _network(tmp_path, *ids)
    with Store(str(tmp_path)) as store:
        store.network(KEY)["subnet"] = "10.89.0.0/24"
        store.touch()
    children = []
    for cid in ids:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                with Store(str(tmp_path)) as store:
                    store.lease(KEY, cid, "vp")
            except BaseException:  # noqa: BLE001
                code = 1
            os._exit(code)
        children.append(pid)
    for pid in children:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    with Store(str(tmp_path)) as store:
        leases = store.network(KEY)["leases"]
    assert len(leases) == len(ids)
    assert sorted(lease["id"] for lease in leases.values()) == sorted(ids)


# --- the plan's parsing --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "annotations, net, expected",
    [
        ({}, None, (None, "")),
        ({}, "bridge", ("pyoci0", "--net")),
        ({}, "bridge:br7", ("br7", "--net")),
        ({"org.pyoci.net.bridge": "br1"}, "bridge:br7", ("br7", "--net")),
        ({"org.pyoci.net.bridge": "br1"}, "none", (None, "--net")),
        ({"org.pyoci.net.bridge": ""}, None, ("pyoci0", "annotations.org.pyoci.net.bridge")),
        ({"org.pyoci.net.bridge": "br1"}, None, ("br1", "annotations.org.pyoci.net.bridge")),
    ],
)
def test_bridge_choice(annotations, net, expected) -> None:
    assert network._bridge_choice(annotations, net) == expected


@pytest.mark.parametrize(
    "annotations, net, message",
    [
        ({}, "wifi", "--net: expected bridge, bridge:NAME or none, not 'wifi'"),
        ({}, "bridge:", "--net: expected bridge, bridge:NAME or none"),
        ({}, "bridge:a/b", "--net: 'a/b' is not a valid network device name"),
        ({}, "bridge:sixteen-chars-xx", "is not a valid network device name"),
        ({"org.pyoci.net.adress": "x"}, None, "annotations.org.pyoci.net.adress: unknown"),
        (
            {"org.pyoci.net.address": "10.0.0.2"},
            None,
            "annotations.org.pyoci.net.address: needs annotations.org.pyoci.net.bridge",
        ),
    ],
)
def test_bridge_choice_errors_name_the_flag_or_field(annotations, net, message) -> None:
    with pytest.raises(PyociError) as err:
        network._bridge_choice(annotations, net)
    assert message in err.value.msg


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"eth0": {"name": "a%db%d"}}, "linux.netDevices.eth0.name: 'a%db%d' is not a valid"),
        ({"eth0": {"name": "x0"}, "eth1": {"name": "x0"}}, "x0 is also the name of"),
        ({"eth0": {"name": "lo"}}, "linux.netDevices.eth0.name: lo exists in every"),
        ({"eth0": "x"}, "linux.netDevices.eth0: must be an object"),
        (["eth0"], "linux.netDevices: must be an object"),
    ],
)
def test_net_devices_entries_are_checked(raw, message) -> None:
    with pytest.raises(PyociError) as err:
        network._plan_devices(raw)
    assert message in err.value.msg


def test_net_devices_templates_and_defaults() -> None:
    devices = network._plan_devices({"eth0": {}, "eth1": {"name": "net%d"}, "eth2": {}})
    assert [(d.host_name, d.target, d.template) for d in devices] == [
        ("eth0", "eth0", False),
        ("eth1", "net%d", True),
        ("eth2", "eth2", False),
    ]
