"""A busybox image built offline from the project's rootfs, as a docker-archive tarball
(`docker save` format), which `podman load`, `docker load` and `ctr image import` all read.

No registry is involved: the layer is a tar of bundles/busybox/rootfs, the config is written
here, and the digests are computed, so the same rootfs gives the same image id.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTFS = REPO / "bundles" / "busybox" / "rootfs"
TAG = "localhost/pyoci-busybox:latest"
ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


def rootfs_entries(rootfs: Path) -> list[Path]:
    """Every path under rootfs, sorted, without descending into a mount point (a container
    running on the shared rootfs has /proc, /dev, /sys mounted in it): those stay empty."""
    device = rootfs.stat().st_dev
    found = []
    for top, dirs, files in os.walk(rootfs):
        for name in files:
            found.append(Path(top, name))
        for name in list(dirs):
            path = Path(top, name)
            found.append(path)
            if path.lstat().st_dev != device:
                dirs.remove(name)
    return sorted(found)


def layer_bytes(rootfs: Path) -> bytes:
    """The rootfs as one reproducible layer tar (no mtimes, no owner names)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in rootfs_entries(rootfs):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(rootfs)))
            info.mtime = 0
            info.uname = info.gname = ""
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return buf.getvalue()


def build_busybox_archive(dest: Path, tag: str = TAG) -> Path:
    """Write `dest` (a .tar docker-archive holding `tag`) and return it."""
    if not (ROOTFS / "bin" / "busybox").exists():
        raise FileNotFoundError(f"{ROOTFS}: run `make bundles` first")
    layer = layer_bytes(ROOTFS)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": ARCH.get(os.uname().machine, os.uname().machine),
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Cmd": ["sh"],
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "pyoci tests"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_dir = hashlib.sha256(layer).hexdigest()
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": [f"{layer_dir}/layer.tar"]}]
    name, _, version = tag.rpartition(":")
    repositories = {name: {version: layer_dir}}
    with tarfile.open(dest, "w") as tar:
        for arcname, data in (
            (config_name, config_bytes),
            (f"{layer_dir}/layer.tar", layer),
            (f"{layer_dir}/VERSION", b"1.0"),
            ("manifest.json", json.dumps(manifest).encode()),
            ("repositories", json.dumps(repositories).encode()),
        ):
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return dest
