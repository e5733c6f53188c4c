"""The compiled-filter cache (pyoci/linux/seccompcache.py): a profile compiled once is loaded
again without libseccomp, the cached program is exactly libseccomp's, and the cache is not
used when it is not safe."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

from test_imports import traced

PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64"],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}
PROBE = "mkdir /tmp/x 2>&1 | grep -c 'not permitted'; echo probe-ran"


def _bundle(bundle, nnp: bool):
    def patch(config: dict) -> None:
        config["linux"]["seccomp"] = PROFILE
        config["process"]["noNewPrivileges"] = nnp
        config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})

    return bundle(PROBE, patch=patch)


def _cache_files(root: Path) -> list[Path]:
    directory = root / ".seccomp-cache"
    return (
        sorted(p for p in directory.iterdir() if not p.name.startswith("."))
        if directory.exists()
        else []
    )


def test_second_create_loads_the_cached_program_without_libseccomp(pyoci, bundle, new_id, tmp_path):
    for nnp in (True, False):  # pyoci-exec loads it, or Python through seccomp(2)
        shutil.rmtree(pyoci.root / ".seccomp-cache", ignore_errors=True)  # cold again
        b = _bundle(bundle, nnp)
        first, events = traced(pyoci, tmp_path, "run", "--bundle", str(b.path), new_id())
        assert first.returncode == 0, first.stderr
        assert first.stdout.split() == ["1", "probe-ran"]  # mkdir refused: the filter is on
        assert any(m == "pyseccomp" for _, _, m in events), "cold: compiled with libseccomp"
        second, events = traced(pyoci, tmp_path, "run", "--bundle", str(b.path), new_id())
        assert second.returncode == 0, second.stderr
        assert second.stdout.split() == ["1", "probe-ran"]
        assert not any(m == "pyseccomp" for _, _, m in events), "warm: no libseccomp at all"
    directory = pyoci.root / ".seccomp-cache"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = _cache_files(pyoci.root)
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    pyoci.assert_nothing_left()


def test_cached_program_is_libseccomps_own(tmp_path):
    from pyoci.linux import seccompcache
    from pyoci.linux.seccomp import SeccompPlan

    podman = Path("/usr/share/containers/seccomp.json")
    profiles = [PROFILE]
    if podman.exists():
        profiles.append(json.loads(podman.read_text()))
    for profile in profiles:
        compiled = seccompcache.compiled(profile, str(tmp_path))
        assert compiled.program == SeccompPlan(profile).export_bytes()
        again = seccompcache.compiled(profile, str(tmp_path))  # from the file now
        assert again.program == compiled.program


def test_an_unsafe_or_torn_cache_is_not_used(tmp_path):
    from pyoci.linux import seccompcache

    key = seccompcache.key(PROFILE)
    program = seccompcache.compiled(PROFILE, str(tmp_path)).program
    path = tmp_path / ".seccomp-cache" / key
    assert seccompcache.load(str(tmp_path), key) == program
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # torn: hash mismatch
    assert seccompcache.load(str(tmp_path), key) is None
    path.write_bytes(data)
    os.chmod(tmp_path / ".seccomp-cache", 0o755)  # open to others: not ours to trust
    assert seccompcache.load(str(tmp_path), key) is None
    os.chmod(tmp_path / ".seccomp-cache", 0o700)
    os.chown(path, 12345, 12345)  # another user's file
    assert seccompcache.load(str(tmp_path), key) is None


def test_cache_is_bounded(tmp_path, monkeypatch):
    from pyoci.linux import seccompcache

    monkeypatch.setattr(seccompcache, "MAX_ENTRIES", 3)
    for errno in range(1, 7):
        profile = dict(PROFILE, defaultErrnoRet=errno)
        seccompcache.compiled(profile, str(tmp_path))
    assert len(_cache_files(tmp_path)) == 3
