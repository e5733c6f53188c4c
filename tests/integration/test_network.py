"""Networking: linux.netDevices (runtime-spec 1.3.0), bridge networking (`--net`, the
org.pyoci.net.* annotations), `ip netns` interplay, and what bad input leaves behind.

Every test first makes a network namespace of its own (`ip netns add`) and runs pyoci under
`ip netns exec` in it, so no bridge, veth or packet touches the machine's interfaces: traffic
goes only between the test's containers, the test namespace and loopback. The teardown
force-deletes the test's containers, checks that no veth, bridge or lease is left, and removes
the namespace.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import BUSYBOX_ROOTFS
from helpers import give_rootfs_to, one_line_error

pytestmark = pytest.mark.skipif(shutil.which("ip") is None, reason="iproute2's `ip` is missing")

BUSYBOX = str(BUSYBOX_ROOTFS / "bin" / "busybox")  # static: runs in the test namespace too
CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]  # ping


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


class NetNamespace:
    """A network namespace made by `ip netns add` for one test."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.path = f"/run/netns/{name}"

    def __call__(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", self.name, *argv, check=check)

    def links(self) -> list[str]:
        out = sh("ip", "-n", self.name, "-o", "link", "show").stdout
        return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines()]

    def addresses(self, dev: str) -> str:
        return sh("ip", "-n", self.name, "-o", "addr", "show", "dev", dev).stdout

    def ping(self, address: str) -> subprocess.CompletedProcess:
        return self(BUSYBOX, "ping", "-c", "1", "-W", "3", address, check=False)

    def add_dummy(self, name: str) -> None:
        """A dummy device, or an ifb one where the kernel has no dummy driver (this VM's):
        both are plain virtual devices with no peer."""
        if self("ip", "link", "add", name, "type", "dummy", check=False).returncode != 0:
            self("ip", "link", "add", name, "type", "ifb")


def _leases(root: Path) -> dict:
    path = root / ".net" / "leases.json"
    return json.loads(path.read_text())["networks"] if path.exists() else {}


def _cgroup_dirs(cid: str) -> list[str]:
    """The container's default cgroup directories (/pyoci/<id>) in every hierarchy: under
    `ip netns exec` pyoci must find the host's hierarchies again to remove them."""
    return [str(p) for p in Path("/sys/fs/cgroup").glob(f"**/pyoci/{cid}") if p.is_dir()]


def _network_state(root: Path, cid: str) -> dict:
    return json.loads((root / cid / "state.json").read_text())["network"]


@pytest.fixture
def netns(pyoci):
    """The test's network namespace; `pyoci(...)` now runs under `ip netns exec` in it."""
    ns = NetNamespace(f"pyt-{uuid.uuid4().hex[:8]}")
    sh("ip", "netns", "add", ns.name)
    host_argv = pyoci.argv
    pyoci.argv = lambda args, global_args=(): [  # type: ignore[method-assign]
        "ip", "netns", "exec", ns.name, *host_argv(args, global_args),
    ]  # fmt: skip
    pyoci.host_argv = host_argv
    try:
        yield ns
        for entry in pyoci.state_entries():
            pyoci("delete", "--force", entry)
        left = [n for n in ns.links() if n.startswith("vp") or n == "pyoci0"]
        assert not left, f"left in the test namespace: {left}"
        assert _leases(pyoci.root) == {}, f"leases left: {_leases(pyoci.root)}"
    finally:
        for entry in pyoci.state_entries():
            pyoci("delete", "--force", entry)
        del pyoci.argv  # back to the class's
        sh("ip", "netns", "del", ns.name, check=False)


def _bundle(bundle, args, annotations=None, linux=None, **kw):
    def patch(config: dict) -> None:
        for key in ("bounding", "effective", "permitted"):
            config["process"]["capabilities"][key] = list(CAPS)
        config.setdefault("annotations", {}).update(annotations or {})
        config["linux"].update(linux or {})

    return bundle(args, patch=patch, **kw)


def _ready(pyoci, bundle, cid: str, *extra: str, annotations=None, linux=None) -> None:
    b = _bundle(bundle, ["sleep", "300"], annotations, linux)
    pyoci.create_ok(b, cid, *extra)
    started = pyoci("start", cid)
    assert started.returncode == 0, started.stderr


# --- bridges -------------------------------------------------------------------------------------
def test_two_containers_on_a_bridge_reach_each_other_and_the_namespace(
    pyoci, bundle, new_id, netns
):
    a, b = new_id("a"), new_id("b")
    _ready(pyoci, bundle, a, "--net", "bridge")
    _ready(pyoci, bundle, b, "--net", "bridge")
    addr_a = _network_state(pyoci.root, a)["address"].split("/")[0]
    addr_b = _network_state(pyoci.root, b)["address"].split("/")[0]
    assert addr_a != addr_b and addr_a.startswith("10.89.0.") and addr_b.startswith("10.89.0.")
    assert _cgroup_dirs(a), "not in the host's cgroups"

    for src, dst in ((a, addr_b), (b, addr_a)):
        result = pyoci("exec", src, "ping", "-c", "1", "-W", "3", dst)
        assert result.returncode == 0, result.stdout + result.stderr
    assert netns.ping(addr_a).returncode == 0, "the test namespace cannot reach the container"

    inside = pyoci("exec", a, "sh", "-c", "ip -o -4 addr show eth0; ip route; ip -o link show lo")
    assert f"inet {addr_a}/24" in inside.stdout
    assert "default via 10.89.0.1 dev eth0" in inside.stdout
    assert ",UP," in inside.stdout.splitlines()[-1], "lo is not up"

    # Made in the test namespace (pyoci ran under `ip netns exec`), never in the host's.
    veth = _network_state(pyoci.root, a)["veth"]
    assert "pyoci0" in netns.links() and veth in netns.links()
    assert sh("ip", "link", "show", veth, check=False).returncode != 0

    pyoci("delete", "--force", a)
    assert veth not in netns.links()
    assert list(_leases(pyoci.root).values())[0]["leases"].keys() == {addr_b}
    assert "pyoci0" in netns.links(), "the bridge went while a container still uses it"
    pyoci("delete", "--force", b)
    assert "pyoci0" not in netns.links(), "the bridge outlived its last container"
    assert _leases(pyoci.root) == {}
    assert _cgroup_dirs(a) == [] and _cgroup_dirs(b) == []


def test_annotations_choose_bridge_address_gateway_and_mtu(pyoci, bundle, new_id, netns):
    annotations = {
        "org.pyoci.net.bridge": "pytbr0",
        "org.pyoci.net.address": "10.77.5.9/24",
        "org.pyoci.net.mtu": "1400",
    }
    args = "ip -o -4 addr show eth0; ip route; cat /sys/class/net/eth0/mtu"
    b = _bundle(bundle, args, annotations)
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert "inet 10.77.5.9/24" in result.stdout
    assert "default via 10.77.5.1 dev eth0" in result.stdout
    assert result.stdout.splitlines()[-1] == "1400"
    assert "pytbr0" not in netns.links()  # removed with its last container (pyoci made it)


def test_an_existing_bridge_keeps_its_address_and_stays(pyoci, bundle, new_id, netns):
    netns("ip", "link", "add", "userbr", "type", "bridge")
    netns("ip", "addr", "add", "192.168.77.1/24", "dev", "userbr")
    netns("ip", "link", "set", "userbr", "up")
    b = _bundle(bundle, "ip -o -4 addr show eth0; ip route")
    result = pyoci.run(b, new_id(), "--net", "bridge:userbr")
    assert result.returncode == 0, result.stderr
    assert "inet 192.168.77.2/24" in result.stdout
    assert "default via 192.168.77.1" in result.stdout
    assert "userbr" in netns.links() and "192.168.77.1/24" in netns.addresses("userbr")


def test_a_bridge_for_a_container_with_a_user_namespace(pyoci, bundle, new_id, netns):
    """The namespace belongs to the container's user namespace; the runtime still configures
    it from the host side."""

    def userns(config: dict) -> None:
        config["linux"]["namespaces"].append({"type": "user"})
        mapping = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        config["linux"]["uidMappings"] = config["linux"]["gidMappings"] = mapping
        config["mounts"] = [
            m for m in config["mounts"] if m["destination"] not in ("/sys", "/sys/fs/cgroup")
        ]

    # A private rootfs owned by the mapped root: a CI clone sits in a 0700 temp dir that
    # the mapped root could not search.
    b = bundle("ip -o -4 addr show eth0; ip route", patch=userns, private=True)
    give_rootfs_to(b, 100000)
    result = pyoci.run(b, new_id(), "--net", "bridge")
    assert result.returncode == 0, result.stderr
    assert "inet 10.89.0.2/24" in result.stdout and "default via 10.89.0.1" in result.stdout


def test_concurrent_creates_never_share_an_address(pyoci, bundle, new_id, netns):
    b = _bundle(bundle, ["sleep", "300"])
    ids = [new_id("c") for _ in range(8)]
    procs = [pyoci.popen("create", "--bundle", str(b.path), "--net", "bridge", cid) for cid in ids]
    for proc, _out, err in procs:
        assert proc.wait(timeout=60) == 0, err.read_text()
    addresses = [_network_state(pyoci.root, cid)["address"] for cid in ids]
    assert len(set(addresses)) == len(ids), addresses
    (network,) = _leases(pyoci.root).values()
    assert sorted(network["leases"]) == sorted(a.split("/")[0] for a in addresses)
    veths = {_network_state(pyoci.root, cid)["veth"] for cid in ids}
    assert veths <= set(netns.links())


def test_delete_from_the_hosts_namespace_reaches_the_test_namespace(pyoci, bundle, new_id, netns):
    """state.json names the namespace the veth was made in (/run/netns/NAME): `delete` run
    from anywhere removes it there."""
    cid = new_id()
    _ready(pyoci, bundle, cid, "--net", "bridge")
    veth = _network_state(pyoci.root, cid)["veth"]
    argv = [*pyoci.host_argv(("delete", "--force", cid))]
    result = sh(*argv, check=False)
    assert result.returncode == 0, result.stderr
    assert veth not in netns.links() and "pyoci0" not in netns.links()
    assert _leases(pyoci.root) == {}


# --- linux.netDevices ----------------------------------------------------------------------------
def test_net_devices_move_in_renamed_with_their_addresses_and_up(pyoci, bundle, new_id, netns):
    netns.add_dummy("nd0")
    netns("ip", "addr", "add", "192.0.2.7/24", "dev", "nd0")
    netns("ip", "addr", "add", "2001:db8::7/64", "dev", "nd0", "nodad")
    netns("ip", "link", "add", "nd1", "type", "veth", "peer", "name", "nd1p")
    netns("ip", "addr", "add", "198.51.100.2/24", "dev", "nd1")
    netns("ip", "addr", "add", "198.51.100.1/24", "dev", "nd1p")
    netns("ip", "link", "set", "nd1p", "up")
    cid = new_id()
    devices = {"nd0": {"name": "ctr%d"}, "nd1": {"name": "uplink"}}
    _ready(pyoci, bundle, cid, linux={"netDevices": devices})
    assert "nd0" not in netns.links() and "nd1" not in netns.links()

    links = pyoci("exec", cid, "ip", "-o", "link", "show").stdout
    addrs = pyoci("exec", cid, "ip", "-o", "addr", "show").stdout
    ctr0 = next(line for line in links.splitlines() if ": ctr0:" in line)
    uplink = next(line for line in links.splitlines() if ": uplink@" in line)
    assert ",UP," in ctr0 and ",UP," in uplink, links
    assert "ctr0    inet 192.0.2.7/24" in addrs, addrs
    assert "ctr0    inet6 2001:db8::7/64 scope global" in addrs, addrs
    assert "uplink    inet 198.51.100.2/24" in addrs, addrs
    assert netns.ping("198.51.100.2").returncode == 0, "no traffic through the moved device"

    pyoci("delete", "--force", cid)
    # Never moved back by pyoci (runtime-spec); virtual devices die with the namespace.
    assert "nd0" not in netns.links() and "ctr0" not in netns.links()


def test_a_failed_create_moves_the_devices_back(pyoci, bundle, new_id, netns):
    netns.add_dummy("nd0")
    netns("ip", "addr", "add", "192.0.2.7/24", "dev", "nd0")
    netns("ip", "link", "set", "nd0", "up")
    b = _bundle(bundle, ["/no/such/program"], linux={"netDevices": {"nd0": {"name": "x0"}}})
    result = pyoci.run(b, new_id(), "--net", "bridge")
    assert result.returncode == 1
    assert "no such file" in one_line_error(result.stderr)
    assert "nd0" in netns.links() and "192.0.2.7/24" in netns.addresses("nd0")
    assert "UP" in sh("ip", "-n", netns.name, "link", "show", "nd0").stdout
    pyoci.assert_nothing_left()


# --- ip netns ------------------------------------------------------------------------------------
def test_a_config_joins_a_namespace_made_by_ip_netns_add(pyoci, bundle, new_id, netns):
    other = NetNamespace(f"pyt-{uuid.uuid4().hex[:8]}")
    sh("ip", "netns", "add", other.name)
    try:
        other("ip", "link", "add", "taken0", "type", "veth", "peer", "name", "taken1")

        def join(config: dict) -> None:
            for ns in config["linux"]["namespaces"]:
                if ns["type"] == "network":
                    ns["path"] = f"/var/run/netns/{other.name}"

        b = bundle("readlink /proc/self/ns/net; ip -o link show", patch=join)
        result = pyoci.run(b, new_id())
        assert result.returncode == 0, result.stderr
        inode = Path(other.path).stat().st_ino
        assert result.stdout.splitlines()[0] == f"net:[{inode}]"
        assert "taken0" in result.stdout

        # A netDevices name that exists in the joined namespace: an error, nothing moved.
        netns.add_dummy("nd0")
        netns("ip", "addr", "add", "192.0.2.7/24", "dev", "nd0")

        def join_and_move(config: dict) -> None:
            join(config)
            config["linux"]["netDevices"] = {"nd0": {"name": "taken0"}}

        b = bundle(["true"], patch=join_and_move)
        result = pyoci.run(b, new_id())
        assert result.returncode == 1
        line = one_line_error(result.stderr)
        assert "linux.netDevices.nd0.name: taken0 already exists" in line
        assert "nd0" in netns.links() and "192.0.2.7/24" in netns.addresses("nd0")
        pyoci.assert_nothing_left()
    finally:
        sh("ip", "netns", "del", other.name, check=False)


# --- bad input -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "extra, annotations, linux, expected",
    [
        (
            ("--net", "bridge"),
            {"org.pyoci.net.address": "10.1.2.3"},
            None,
            "annotations.org.pyoci.net.address: 10.1.2.3 is outside bridge pyoci0's subnet",
        ),
        (
            (),
            {"org.pyoci.net.bridge": "", "org.pyoci.net.address": "10.89.0.9"},
            None,
            "annotations.org.pyoci.net.address: 10.89.0.9 is in use (container 'first-",
        ),
        (
            ("--net", "bridge:notabridge"),
            {},
            None,
            "--net: notabridge exists and is not a bridge",
        ),
        (
            (),
            {},
            {"netDevices": {"nosuch0": {}}},
            "linux.netDevices.nosuch0: no such network device in the runtime's network",
        ),
        (("--net", "wifi"), {}, None, "--net: expected bridge, bridge:NAME or none"),
    ],
    ids=["address-outside-subnet", "address-in-use", "not-a-bridge", "no-such-device", "flag"],
)
def test_bad_input_is_one_line_and_leaves_nothing(
    pyoci, bundle, new_id, netns, extra, annotations, linux, expected
):
    netns("ip", "link", "add", "notabridge", "type", "veth", "peer", "name", "notabridge1")
    first = new_id("first")
    b = _bundle(bundle, ["sleep", "300"], {"org.pyoci.net.address": "10.89.0.9"})
    pyoci.create_ok(b, first, "--net", "bridge")
    before_links = netns.links()
    before_leases = _leases(pyoci.root)

    b = _bundle(bundle, ["true"], annotations, linux)
    result = pyoci.run(b, new_id(), *extra)
    assert result.returncode == 1
    assert expected in one_line_error(result.stderr)
    assert pyoci.state_entries() == [first]
    assert netns.links() == before_links, "a veth or bridge was left"
    assert _leases(pyoci.root) == before_leases, "a lease was left"


def test_networking_needs_a_network_namespace(pyoci, bundle, new_id, netns):
    def no_netns(config: dict) -> None:
        config["linux"]["namespaces"] = [
            ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"
        ]

    b = bundle(["true"], patch=no_netns)
    result = pyoci.run(b, new_id(), "--net", "bridge")
    assert result.returncode == 1
    assert "--net: needs a network namespace in linux.namespaces" in one_line_error(result.stderr)
    pyoci.assert_nothing_left()


def test_features_reports_net_devices(pyoci, netns):
    features = json.loads(pyoci("features").stdout)
    assert features["linux"]["netDevices"] == {"enabled": True}
    assert "org.pyoci.net.bridge" in features["annotations"]
