"""The `l2` controller app (controller/l2) driving real switches.

1. A vdp switch (`vdp run --controller tcp:127.0.0.1:P --fail-mode secure`)
   with four hosts: h1, h2 access VLAN 10, h3 access VLAN 20, h4 on a trunk
   carrying VLANs 10 and 20 tagged (its VLAN interfaces are TAPs joined to
   its port by topo.py's tagging adapter: this kernel has no 802.1Q).
   Pings within a VLAN pass (access<->access, access<->trunk, both VLANs),
   pings between VLANs do not, and the learned flows show in
   `vdp ctl dump-flows`.  The app learns its ports from a [l2] config file.
2. The same app driving an Open vSwitch userspace bridge (datapath_type
   netdev, OpenFlow 1.3, fail_mode secure) with three hosts and no config:
   every port is an access port of VLAN 1 and pings pass.

The app runs as `python -m controller.launcher controller.l2.app` on
127.0.0.1, a port from 16850-16869 (this file's range).  Namespaces are
vdpt-l2-*, the OVS bridge vdptb-l2<tag>; everything is removed by the topo
fixture, the bridge by this file (only ours: never `mn -c`).
"""
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from topo import REPO, need_ovs, ping, run, vdp_env, wait_for

PORT_RANGE = range(16850, 16870)

CONFIG = """
[l2]
idle_timeout = 120

[[l2.datapath]]
dpid = "0x00000000000000e2"
  [[l2.datapath.port]]
  port = [1, 2]
  vlan = 10
  [[l2.datapath.port]]
  port = 3
  vlan = 20
  [[l2.datapath.port]]
  port = 4
  mode = "trunk"
  vlans = [10, 20]
"""


def _listening(port):
    s = socket.socket()
    try:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()


def _free_port():
    for port in PORT_RANGE:
        if _listening(port):
            continue
        s = socket.socket()
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    pytest.skip(f"no free TCP port in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")


def start_l2_app(topo, config_text=None):
    """Starts the l2 app (registered with the topo: killed at cleanup);
    returns (process, port, log path)."""
    port = _free_port()
    args = [sys.executable, "-m", "controller.launcher", "controller.l2.app",
            "--ofp-tcp-listen-port", port, "--ofp-listen-host", "127.0.0.1", "--verbose"]
    if config_text is not None:
        cfg = Path(topo.tmpdir) / "controller.toml"
        cfg.write_text(config_text)
        args += ["--config", cfg]
    p = topo.popen(args, name="l2app", env=vdp_env(), cwd=str(REPO))
    wait_for(lambda: p.poll() is not None or _listening(port), timeout=60,
             what="l2 app listening")
    assert p.poll() is None, Path(p.vdpt_stderr).read_text()[-3000:]
    return p, port, Path(p.vdpt_stderr)


def _app_log(log):
    return log.read_text(errors="replace")[-4000:]


def _flows(d):
    return d.ctl_cmd("dump-flows")


def test_vlans_on_vdp(topo):
    app, port, log = start_l2_app(topo, CONFIG)
    h1 = topo.add_host("h1", "10.0.0.1/24")
    h2 = topo.add_host("h2", "10.0.0.2/24")
    h3 = topo.add_host("h3", "10.0.0.3/24")       # VLAN 20, same subnet: isolation test
    h4 = topo.add_host("h4")                      # trunk: VLAN interfaces only
    h3.ip_cmd("addr", "add", "10.0.20.3/24", "dev", h3.ifname)
    d = topo.start_vdp([h1, h2, h3, h4], fail_mode="secure",
                       extra=["--dpid", "0xe2", "--controller", f"tcp:127.0.0.1:{port}"])
    topo.add_vlan(h4, 10, "10.0.0.4/24")
    topo.add_vlan(h4, 20, "10.0.20.4/24")

    # the app has seen the ports: one flood flow per (VLAN, member port)
    def flood_ready():
        fl = [f for f in _flows(d) if f["table"] == 2 and f["priority"] == 100]
        return len(fl) == 5 and fl
    try:
        wait_for(flood_ready, timeout=30, what="l2 pipeline installed")
    except TimeoutError:
        pytest.fail(f"no pipeline; flows: {_flows(d)}\napp log:\n{_app_log(log)}")

    # same VLAN: access <-> access, access <-> trunk (VLAN 10 and VLAN 20)
    assert ping(h1, h2.ip, 3, wait=5) >= 2, _app_log(log)
    assert ping(h1, "10.0.0.4", 3, wait=5) >= 2, _app_log(log)
    assert ping(h2, "10.0.0.4", 3, wait=5) >= 2
    assert ping(h3, "10.0.20.4", 3, wait=5) >= 2
    # different VLANs: h3 shares the subnet of VLAN 10 but not the VLAN
    assert ping(h1, h3.ip, 2, wait=2) == 0
    assert ping(h3, h2.ip, 2, wait=2) == 0

    flows = _flows(d)
    src = [f for f in flows if f["table"] == 1 and f["priority"] == 1000]
    dst = [f for f in flows if f["table"] == 2 and f["priority"] == 1000]
    for h in (h1, h2):
        mac = h.mac
        assert any(f"dl_src={mac}" in f["match"] or f"eth_src={mac}" in f["match"]
                   for f in src), (mac, src)
        got = [f for f in dst if mac in f["match"]]
        assert got and got[0]["idle_timeout"] == 132, (mac, dst)     # 120 + 120/10
        assert "pop_vlan" in got[0]["actions"].lower() or "strip_vlan" in got[0]["actions"].lower()
    assert all(f["idle_timeout"] == 120 for f in src)
    # h3's MAC was learned in VLAN 20 only
    h3_src = [f for f in src if h3.mac in f["match"]]
    assert h3_src and all("4116" in f["match"] or "vlan_vid=20" in f["match"]
                          or "dl_vlan=20" in f["match"] for f in h3_src), h3_src
    assert d.alive() and app.poll() is None


def test_idle_expiry_on_vdp(topo):
    """Learned flows idle out on the switch; its FLOW_REMOVEDs make the app
    forget the MACs (both flows of each go) and traffic relearns them."""
    app, port, log = start_l2_app(topo, "[l2]\nidle_timeout = 5\n")
    h1 = topo.add_host("h1", "10.0.2.1/24")
    h2 = topo.add_host("h2", "10.0.2.2/24")
    d = topo.start_vdp([h1, h2], fail_mode="secure",
                       extra=["--dpid", "0xe4", "--controller", f"tcp:127.0.0.1:{port}"])

    def learned():
        return [f for f in _flows(d) if f["priority"] == 1000 and f["table"] in (1, 2)]
    wait_for(lambda: len([f for f in _flows(d) if f["priority"] == 100]) == 2, timeout=30,
             what="l2 pipeline installed")
    assert ping(h1, h2.ip, 2, wait=5) >= 1, _app_log(log)
    assert len(learned()) == 4, learned()          # src + dst flow for each host
    try:
        wait_for(lambda: not learned(), timeout=45, what="learned flows to expire")
    except TimeoutError:
        pytest.fail(f"still there: {learned()}\napp log:\n{_app_log(log)}")
    # the app heard of it (FLOW_REMOVED) and forgot both hosts
    for h in (h1, h2):
        pat = re.compile(rf"{h.mac} VLAN 1 on port \d+ expired")
        wait_for(lambda: pat.search(log.read_text()), timeout=10, what=f"{h.name} forgotten")
    assert ping(h1, h2.ip, 2, wait=5) >= 1
    assert len(learned()) == 4
    assert app.poll() is None


# ---------------------------------------------------------------- Open vSwitch

@pytest.fixture
def ovs_bridge(topo):
    """Name for this test's bridge; the bridge (only it) is deleted after."""
    need_ovs()
    br = f"vdptb-l2{topo.tag}"
    yield br
    run(["ovs-vsctl", "--timeout=20", "--if-exists", "del-br", br], check=False, timeout=60)


def test_ovs_netdev_bridge(topo, ovs_bridge):
    app, port, log = start_l2_app(topo)
    hosts = [topo.add_host(f"h{n}", f"10.0.1.{n}/24") for n in (1, 2, 3)]
    br = ovs_bridge
    cmd = ["ovs-vsctl", "--timeout=30", "add-br", br,
           "--", "set", "bridge", br, "datapath_type=netdev", "protocols=OpenFlow13",
           "fail_mode=secure", "other-config:datapath-id=00000000000000e3",
           "other-config:disable-in-band=true"]
    for n, h in enumerate(hosts, 1):
        cmd += ["--", "add-port", br, h.port, "--", "set", "interface", h.port,
                f"ofport_request={n}"]
    run(cmd, timeout=60)
    run(["ovs-vsctl", "--timeout=20", "set-controller", br, f"tcp:127.0.0.1:{port}"])

    def flows():
        return subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", br],
                              capture_output=True, text=True, timeout=30).stdout

    try:
        wait_for(lambda: flows().count("priority=100,") == 3, timeout=60,
                 what="l2 pipeline on the OVS bridge")
    except TimeoutError:
        pytest.fail(f"flows:\n{flows()}\napp log:\n{_app_log(log)}")
    h1, h2, h3 = hosts
    assert ping(h1, h2.ip, 3, wait=5) >= 2, _app_log(log)
    assert ping(h2, h3.ip, 3, wait=5) >= 2
    assert ping(h3, h1.ip, 3, wait=5) >= 2
    text = flows()
    for h in hosts:
        assert f"dl_src={h.mac}" in text, text
        assert f"dl_dst={h.mac}" in text, text
    assert app.poll() is None
