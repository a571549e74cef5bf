"""`vdp controller`: the controller apps started through the vdp command.

`python -m datapath.cli controller l2 stp --ofp-tcp-listen-port P` (what
the installed `vdp controller` runs) drives a vdp switch with two hosts:
the switch reports the controller connected, the l2 pipeline and the stp
BPDU trap are installed, hosts ping, and `vdp controller status stp` shows
the bridge.  Port range 16950-16959; names vdpt-vc-*, removed by topo.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from topo import REPO, ping, vdp_env, wait_for
from test_l2_app import _listening

PORTS = range(16950, 16960)


def _port():
    for p in PORTS:
        if not _listening(p):
            return p
    pytest.skip("no free port in 16950-16959")


def test_vdp_controller_runs_l2_and_stp(topo):
    port = _port()
    sock = Path(topo.tmpdir) / "stp.sock"
    app = topo.popen([sys.executable, "-m", "datapath.cli", "controller", "l2", "stp",
                      "--ofp-tcp-listen-port", str(port), "--ofp-listen-host", "127.0.0.1",
                      "--stp-status-socket", str(sock)],
                     name="vdpctl", env=vdp_env(), cwd=str(REPO))
    wait_for(lambda: app.poll() is not None or _listening(port), timeout=60,
             what="controller listening")
    assert app.poll() is None, Path(app.vdpt_stderr).read_text()[-3000:]
    h1 = topo.add_host("h1", "10.0.9.1/24")
    h2 = topo.add_host("h2", "10.0.9.2/24")
    d = topo.start_vdp([h1, h2], fail_mode="secure",
                       extra=["--dpid", "0xc1", "--controller", f"tcp:127.0.0.1:{port}"])
    wait_for(lambda: d.ctl_cmd("show")["controller_connected"], timeout=30,
             what="controller connected")
    # the BPDU trap (stp) and the flood flows (l2) are on the switch
    wait_for(lambda: any("01:80:c2:00:00:00" in f["match"] for f in d.ctl_cmd("dump-flows")),
             timeout=30, what="stp BPDU trap")
    # edge ports with no BPDU heard go forwarding; then hosts reach each other
    wait_for(lambda: ping(h1, h2.ip, 1, wait=1) == 1, timeout=60, what="h1 -> h2 ping")
    out = subprocess.run([sys.executable, "-m", "datapath.cli", "controller", "status", "stp",
                          "--socket", str(sock), "--json"], capture_output=True, text=True,
                         env=vdp_env(), cwd=str(REPO), timeout=30)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [dp["dpid"] for dp in doc["datapaths"]] in (["00000000000000c1"], [0xc1]), doc
    assert app.poll() is None
