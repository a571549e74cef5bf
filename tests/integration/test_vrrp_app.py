"""The `vrrp` controller app driving real `vdp run` datapaths (root, netns).

(1) A VRRP pair: two vdp datapaths r1, r2, each with its own app instance
    (controller.launcher controller.vrrp.app), in front of host subnet
    10.1.0.0/24 (VIP 10.1.0.1, VRID 1) with the far subnet 10.2.0.0/24
    behind them (VIP 10.2.0.1, VRID 2, tracking the lan port so both sides
    move together).  Host ha pings hb through the virtual routers; the
    master's lan link is cut (or its controller killed), the backup takes
    over, pings resume; with preempt, r1 takes mastership back on return.

        ha ---[lan bridge]--- r1.1 / r2.1     r1.2 / r2.2 ---[wan bridge]--- hb

(2) keepalived interop, VRRP v2 (with a password) and v3: a vdp datapath +
    app and keepalived on one segment, same VRID; the higher priority is
    Master in both views (our status socket, keepalived's notify script),
    failover works both ways, and a host's ping to the VIP is answered by
    whichever is Master.

Names: namespaces vdpt-vr*-<tag>-*, links vdpt-vr<tag>-*; everything is in
the Topo registry and removed even on failure.  OpenFlow ports 16830-16849.
No timing assertions: waits are generous readiness polls; the failover
times are measured by bench/vrrp_failover.py.
"""
from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from topo import REPO, in_ns, ping, run, vdp_env, wait_for  # noqa: E402
# the building blocks live in vrrp_topo.py (shared with test_vrrp_ovs.py);
# VrrpPair is re-exported here for bench/vrrp_failover.py
from vrrp_topo import (WAIT, Controller, Net, VrrpPair, dump_on_failure,  # noqa: E402,F401
                       pings_through)

OFP_PORTS = iter(range(16830, 16850))


def next_port():
    return next(OFP_PORTS)


# --------------------------------------------------------------------------
# (1) the VRRP pair

@pytest.fixture
def pair(topo, request):
    p = VrrpPair(topo, ofp_ports=(next_port(), next_port()))
    try:
        yield p
    finally:
        dump_on_failure(request, p.ctl.values())


def test_vrrp_pair_failover_on_link_loss_and_preempt(pair):
    pair.start()
    pair.wait_masters(1)
    st = pair.ctl[2].router("lan", 1)
    assert st["master"] == "10.1.0.2" and st["master_priority"] == 200
    # the status view's command-line client
    out = run([sys.executable, "-m", "controller.vrrp.app", "status", "--socket",
               pair.ctl[1].sock], env=vdp_env(), cwd=str(REPO)).stdout
    assert "datapath 0000000000000001 (r1): connected" in out, out
    assert re.search(r"vrid 1 ipv4 v3: Master +priority 200", out), out
    got, via1 = pings_through(pair, 1)
    assert got >= 4, f"{got}/5 pings through r1"
    assert via1 >= got                   # the echo requests left through r1's wan port
    # ha resolved its gateway to the virtual MAC
    neigh = run(in_ns(pair.ha, ["ip", "neigh", "show", "10.1.0.1"])).stdout
    assert "00:00:5e:00:01:01" in neigh, neigh

    # r1's lan link goes down: r2 takes both VRIDs, pings resume through r2
    pair.link(1, "l", False)
    pair.wait_masters(2, other_state="Initialize")
    got, via2 = pings_through(pair, 2)
    assert got >= 4, f"{got}/5 pings through r2 after failover"
    assert via2 >= got
    r1lan = pair.ctl[1].router("lan", 1)
    assert r1lan["state"] == "Initialize" and r1lan["fault"] == ["port:1"]

    # back: r1 (priority 200, preempt) takes mastership back
    pair.link(1, "l", True)
    pair.wait_masters(1)
    got, via1 = pings_through(pair, 1)
    assert got >= 4, f"{got}/5 pings through r1 after preemption"
    assert via1 >= got
    trans = pair.ctl[1].router("lan", 1)["transitions"]
    assert trans >= 4         # Backup, Master, Initialize, Backup, Master
    assert "Backup -> Master" in pair.ctl[2].log_text()


def test_vrrp_pair_failover_when_master_controller_dies(pair):
    pair.start()
    pair.wait_masters(1)
    got, _ = pings_through(pair, 1)
    assert got >= 4
    # r1's controller dies without a word (no priority-0 advert): r2 takes
    # over after the master down interval
    pair.ctl[1].stop(signal.SIGKILL)
    pair.wait_masters(2, other_state=None)
    got, via2 = pings_through(pair, 2)
    assert got >= 4, f"{got}/5 pings through r2 with r1's controller dead"
    assert via2 >= got
    # a new controller for r1: it replaces the flows left behind and preempts
    pair.ctl[1].start()
    wait_for(pair.ctl[1].connected, timeout=WAIT, what="r1 reconnected")
    pair.wait_masters(1)
    got, via1 = pings_through(pair, 1)
    assert got >= 4
    assert via1 >= got


# --------------------------------------------------------------------------
# (2) keepalived interop

KA_CONF = """\
global_defs {{
    router_id vdpt_{tag}
    script_user root
    enable_script_security
    vrrp_version {version}
}}
vrrp_instance vdpt {{
    state BACKUP
    interface {ifname}
    virtual_router_id {vrid}
    priority {priority}
    advert_int {interval}
{auth}    virtual_ipaddress {{
        {vip}/24
    }}
    notify {notify}
}}
"""

VDP_CONF = """\
[[vrrp.datapath]]
dpid = 77
name = "vr"
  [[vrrp.datapath.interface]]
  name = "seg"
  port = 1
  address = "10.9.0.2/24"
  [[vrrp.datapath.router]]
  interface = "seg"
  vrid = {vrid}
  version = {version}
  priority = {priority}
  vips = "{vip}"
  interval = {interval}
  accept = true
{auth}"""


class Keepalived:
    def __init__(self, topo, ns, ifname, version, priority, vrid, vip, interval, password):
        self.topo, self.ns = topo, ns
        d = Path(topo.tmpdir)
        self.state_file = d / "ka.state"
        notify = d / "ka-notify.sh"
        notify.write_text(f'#!/bin/sh\necho "$3 $4" >> {self.state_file}\n')
        notify.chmod(0o755)
        os.chmod(d, 0o755)            # keepalived checks the script's directories
        auth = (f"    authentication {{\n        auth_type PASS\n        auth_pass {password}\n"
                f"    }}\n" if password else "")
        self.conf = d / "keepalived.conf"
        self.conf.write_text(KA_CONF.format(tag=topo.tag, version=version, ifname=ifname,
                                            vrid=vrid, priority=priority, interval=interval,
                                            auth=auth, vip=vip, notify=notify))
        self.pid = d / "ka.pid"
        self.vrrp_pid = d / "ka-vrrp.pid"
        self.proc = None

    def start(self):
        run(in_ns(self.ns, ["keepalived", "-t", "-f", self.conf]))   # config check first
        self.proc = self.topo.popen(in_ns(self.ns, [
            "keepalived", "-n", "-l", "-D", "-P", "-f", self.conf, "-p", self.pid,
            "-r", self.vrrp_pid]), name="keepalived")
        wait_for(lambda: self.proc.poll() is not None or self.state() is not None
                 or self.vrrp_pid.exists(), timeout=WAIT, what="keepalived up")
        assert self.proc.poll() is None, self.log()
        return self

    def state(self):
        """keepalived's own view: the last state its notify script got."""
        try:
            lines = self.state_file.read_text().split("\n")
        except OSError:
            return None
        lines = [x for x in lines if x.strip()]
        return lines[-1].split()[0] if lines else None

    def wait_state(self, state, timeout=WAIT):
        wait_for(lambda: self.state() == state, timeout=timeout, interval=0.1,
                 what=f"keepalived {state} (now {self.state()})")

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)

    def log(self):
        if self.proc is None:
            return ""
        try:
            return (Path(self.proc.vdpt_stdout).read_text(errors="replace")
                    + Path(self.proc.vdpt_stderr).read_text(errors="replace"))
        except (OSError, TypeError):
            return ""


def neigh_mac(ns, ip):
    out = run(in_ns(ns, ["ip", "neigh", "show", ip])).stdout
    m = re.search(r"lladdr ([0-9a-f:]{17})", out)
    return m.group(1) if m else None


def ping_vip(host, vip):
    """Pings the VIP (fresh ARP first); returns (replies, MAC that answered)."""
    run(in_ns(host, ["ip", "neigh", "flush", "dev", "all"]), check=False)
    got = ping(host, vip, count=3, interval=0.2, wait=5)
    return got, neigh_mac(host, vip)


@pytest.mark.parametrize("version", [2, 3])
def test_vrrp_keepalived_interop(topo, request, version):
    if run(["which", "keepalived"], check=False).returncode != 0:
        pytest.skip("keepalived is not installed")
    vrid, vip = 51, "10.9.0.100"
    vmac = f"00:00:5e:00:01:{vrid:02x}"
    password = "vdpsecr" if version == 2 else None
    net = Net(topo)
    seg = net.bridge("seg")
    ka_ns = net.ns("ka")
    host = net.ns("h")
    ka_mac = "02:6b:61:00:00:03"
    ka_if = net.wire("ka", seg, ka_ns, "10.9.0.3/24", mac=ka_mac)
    net.wire("h", seg, host, "10.9.0.10/24")
    vdp_if = net.wire("vr", seg)
    auth = f'  auth = "{password}"\n' if password else ""

    def vdp_conf(priority):
        return VDP_CONF.format(vrid=vrid, version=version, priority=priority, vip=vip,
                               interval=1, auth=auth)

    ctl = Controller(topo, "vr", vdp_conf(200), next_port())
    ka = Keepalived(topo, ka_ns, ka_if, version, 100, vrid, vip, 1, password)
    try:
        ctl.start()
        topo.start_vdp([vdp_if], fail_mode="secure", name=f"vdpt{net.tag}vr",
                       extra=["--dpid", "77", "--controller", f"tcp:127.0.0.1:{ctl.port}"])
        wait_for(ctl.connected, timeout=WAIT, what="vdp connected")
        ka.start()

        # A: vdp 200 > keepalived 100: vdp Master, keepalived Backup, in both views
        ctl.wait_state("seg", vrid, "Master")
        ka.wait_state("BACKUP")
        before = ctl.router("seg", vrid)["counters"]
        time.sleep(3)                 # several advert intervals: the views stay put
        r = ctl.router("seg", vrid)
        assert r["state"] == "Master" and ka.state() == "BACKUP"
        # keepalived, as backup, stays silent; nothing it sent was refused
        assert r["counters"]["rx_adverts"] == before["rx_adverts"]
        assert r["counters"]["tx_adverts"] > before["tx_adverts"]
        assert sum(v for k, v in r["counters"].items() if k.startswith("rx_err_")) == 0
        got, mac = ping_vip(host, vip)
        assert got >= 2 and mac == vmac, (got, mac)

        # B: the vdp router stops (app SIGTERM: priority-0 advert): keepalived Master
        assert ctl.stop() == 0
        ka.wait_state("MASTER")
        got, mac = ping_vip(host, vip)
        assert got >= 2 and mac == ka_mac, (got, mac)

        # C: vdp back with priority 50 < 100: stays Backup, learns keepalived as master
        ctl.config.write_text(vdp_conf(50))
        ctl.start()
        wait_for(ctl.connected, timeout=WAIT, what="vdp reconnected")
        ctl.wait_state("seg", vrid, "Backup")
        time.sleep(4)                 # more than the master down interval
        r = ctl.router("seg", vrid)
        assert r["state"] == "Backup" and ka.state() == "MASTER"
        assert r["master"] == "10.9.0.3" and r["master_priority"] == 100
        assert r["counters"]["rx_adverts"] >= 3
        assert sum(v for k, v in r["counters"].items() if k.startswith("rx_err_")) == 0

        # D: keepalived stops (priority-0 advert): vdp Master, answers for the VIP
        ka.stop()
        ctl.wait_state("seg", vrid, "Master")
        assert "priority 0" in ctl.log_text() or ctl.router("seg", vrid)["counters"][
            "rx_priority_zero"] >= 1
        got, mac = ping_vip(host, vip)
        assert got >= 2 and mac == vmac, (got, mac)
    finally:
        rep = getattr(request.node, "vdpt_rep_call", None)
        if rep is None or rep.failed:
            print(f"\n=== keepalived log ===\n{ka.log()[-4000:]}")
        dump_on_failure(request, [ctl])
        ka.stop()

