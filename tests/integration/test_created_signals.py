"""A container waiting in `created` ends on SIGTERM (as runc's waiting init does): tools send
TERM first and would otherwise wait for their KILL timeout."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP"])
def test_term_stops_a_created_container(pyoci, bundle, new_id, sig):
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    assert pyoci.state(cid)["status"] == "created"
    assert pyoci("kill", cid, sig).returncode == 0
    assert pyoci.wait_status(cid, "stopped")["status"] == "stopped"
    assert pyoci("delete", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_term_does_not_reach_a_running_pid1_without_handler(pyoci, bundle, new_id):
    # After start the program is PID 1 with default dispositions: the kernel drops TERM, as
    # with runc; KILL always works.
    cid = new_id()
    assert pyoci.run(bundle(["sleep", "100"]), cid, "--detach").returncode == 0
    assert pyoci("kill", cid, "TERM").returncode == 0
    assert pyoci.state(cid)["status"] == "running"
    assert pyoci("kill", cid, "KILL").returncode == 0
    assert pyoci.wait_status(cid, "stopped")["status"] == "stopped"
    pyoci("delete", cid)
