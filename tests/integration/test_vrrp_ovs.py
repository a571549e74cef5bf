"""The `vrrp` controller app driving Open vSwitch netdev bridges (root, netns).

The VRRP pair of test_vrrp_app.py (vrrp_topo.VrrpPair) with each router's
switch an Open vSwitch bridge instead of a `vdp run` datapath: the app
talks to its datapath only over OpenFlow 1.3, so the same app must drive
OVS.  Each bridge is datapath_type=netdev (this kernel has no openvswitch
module), protocols=OpenFlow13, fail_mode=secure, its lan / wan veths added
with ofport_request 1 / 2 so the config's port numbers hold, and one
controller: the app instance of that router.

        ha ---[lan bridge]--- r1.1 / r2.1     r1.2 / r2.2 ---[wan bridge]--- hb
                            (OVS vdptb-vo<tag>1 / vdptb-vo<tag>2)

What is checked:
  - r1 (priority 200) becomes Master of VRID 1 (lan) and 2 (wan), r2 Backup
    hearing r1's adverts; the status view (socket and CLI) says so; only the
    master's bridge holds the virtual-MAC gate flows;
  - ha pings hb through the virtual gateway 10.1.0.1 (ARP answered with the
    virtual MAC), the echo requests leave by r1's wan port (OVS's own port
    counters);
  - r1's lan link cut: r2 takes both VRIDs, pings resume through r2; link
    back: r1 preempts, pings go through r1 again;
  - r1's controller killed (SIGKILL, no priority-0 advert; OVS keeps the
    flows, fail_mode=secure): r2 takes over after the master down
    interval; a new controller for r1 replaces the flows and preempts;
  - OVS refused nothing the app sent: no OFPT_ERROR in the app's log and no
    "error reply" for our bridges in ovs-vswitchd's log.

Names: OVS bridges vdptb-vo<tag>N (deleted after the test, even on failure;
no other bridge is touched, and `mn -c` is never run), links
vdpt-vo<tag>-*, namespaces vdpt-vo-<test>-<tag>-*.  OpenFlow ports
16910-16929.  No timing assertions: the waits are generous readiness
polls.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from topo import REPO, Topo, in_ns, need_ovs, run, vdp_env, wait_for  # noqa: E402
from vrrp_topo import (WAIT, Controller, Net, VrrpPair, dump_on_failure,  # noqa: E402
                       pings_through)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, veths, OVS"),
    pytest.mark.skipif(shutil.which("ovs-vsctl") is None,
                       reason="needs Open vSwitch (Debian openvswitch-switch)"),
]

OFP_PORTS = iter(range(16910, 16930))
OVS_LOG = "/var/log/openvswitch/ovs-vswitchd.log"
DPIDS = (0x766F0001, 0x766F0002, 0x766F0003)   # "vo" 1..3: apart from other tests' bridges
VMAC = {1: "00:00:5e:00:01:01", 2: "00:00:5e:00:01:02"}


def next_port():
    return next(OFP_PORTS)


# --------------------------------------------------------------------------
# Open vSwitch

def vsctl(*args):
    return run(["ovs-vsctl", "--timeout=20"] + [str(a) for a in args], timeout=40).stdout


def ofctl(*args):
    return run(["ovs-ofctl", "-O", "OpenFlow13"] + [str(a) for a in args], timeout=40).stdout


def add_bridge(topo, br, dpid, ifnames, ctl_port):
    """An OVS netdev bridge `br` (registered in topo.ovs_bridges before it
    exists) speaking OpenFlow 1.3 only, fail_mode=secure, with ifnames as
    OpenFlow ports 1, 2, ... and one controller tcp:127.0.0.1:ctl_port."""
    assert len(br) <= 15 and br.startswith("vdptb-vo"), br
    topo.ovs_bridges.append(br)
    cmd = ["add-br", br, "--", "set", "bridge", br, "datapath_type=netdev",
           "protocols=OpenFlow13", "fail_mode=secure",
           f"other-config:datapath-id={dpid:016x}", "other-config:disable-in-band=true"]
    for ofport, ifname in enumerate(ifnames, 1):
        cmd += ["--", "add-port", br, ifname,
                "--", "set", "interface", ifname, f"ofport_request={ofport}"]
    # max_backoff: reconnect within a second when a controller restarts
    cmd += ["--", "--id=@c", "create", "controller", f'target="tcp:127.0.0.1:{ctl_port}"',
            "connection-mode=out-of-band", "max_backoff=1000",
            "--", "set", "bridge", br, "controller=@c"]
    vsctl(*cmd)
    for ofport, ifname in enumerate(ifnames, 1):
        got = vsctl("get", "interface", ifname, "ofport").strip()
        assert got == str(ofport), f"{ifname} is OpenFlow port {got}, wanted {ofport}"


class OvsLog:
    """The part of ovs-vswitchd's log written since the test began, lines
    about our bridges only."""

    def __init__(self, bridges):
        self.bridges = bridges          # live list: names are added later
        try:
            self.start = os.path.getsize(OVS_LOG)
        except OSError:
            self.start = None

    def lines(self):
        if self.start is None:
            return []
        try:
            with open(OVS_LOG, "rb") as f:
                f.seek(self.start)
                text = f.read().decode(errors="replace")
        except OSError:
            return []
        return [x for x in text.splitlines() if any(b in x for b in self.bridges)]

    def errors(self):
        """OFPT_ERROR replies OVS sent our controllers (connmgr logs each
        one, rate-limited, as '<bridge><->tcp:..: sending <ERR> error reply
        to <MSG> message')."""
        return [x for x in self.lines() if "error reply" in x]


class OvsVrrpPair(VrrpPair):
    """vrrp_topo.VrrpPair whose routers' switches are OVS netdev bridges."""

    def __init__(self, topo, **kw):
        super().__init__(topo, prefix="vo", dpids=DPIDS[:2],
                         ofp_ports=(next_port(), next_port()), **kw)
        self.bridges = {}

    def start_switch(self, n):
        br = f"vdptb-vo{self.net.tag}{n}"
        add_bridge(self.topo, br, self.dpids[n - 1],
                   [self.ports[(n, "l")], self.ports[(n, "w")]], self.ctl[n].port)
        self.bridges[n] = br
        return br

    def tx_packets(self, n, port):
        """OVS's own tx counter of OpenFlow port `port` of router n."""
        out = ofctl("dump-ports", self.bridges[n], port)
        m = re.search(r"tx pkts=(\d+)", out)
        assert m, out
        return int(m.group(1))

    def flows(self, n):
        return ofctl("dump-flows", self.bridges[n])

    def gates(self, n):
        """The virtual MACs router n's bridge accepts frames for (gate
        flows: eth_dst = virtual MAC -> goto the route table)."""
        macs = set()
        for line in self.flows(n).splitlines():
            m = re.search(r"dl_dst=(00:00:5e:00:01:[0-9a-f]{2})", line)
            if m and "goto_table" in line:
                macs.add(m.group(1))
        return macs


@pytest.fixture
def vo(request):
    """A Topo (namespaces vdpt-vo-*) that also deletes its OVS bridges and,
    on failure, prints its controllers' logs, the bridges' flows and what
    ovs-vswitchd logged about them."""
    need_ovs()
    topo = Topo(f"vo-{request.node.name.removeprefix('test_')}")
    topo.ovs_bridges = []
    topo.controllers = []           # vrrp_topo.Controller
    topo.ovs_log = OvsLog(topo.ovs_bridges)
    try:
        yield topo
    finally:
        rep = getattr(request.node, "vdpt_rep_call", None)
        dump_on_failure(request, topo.controllers)
        if rep is None or rep.failed:
            for br in topo.ovs_bridges:
                r = run(["ovs-ofctl", "-O", "OpenFlow13", "dump-flows", br], check=False)
                print(f"\n=== {br} flows ===\n{r.stdout}{r.stderr}")
            print("\n=== ovs-vswitchd.log (our bridges) ===\n"
                  + "\n".join(topo.ovs_log.lines()[-80:]))
        try:
            for br in topo.ovs_bridges:
                run(["ovs-vsctl", "--timeout=20", "--if-exists", "del-br", br], check=False)
        finally:
            topo.cleanup()


@pytest.fixture
def ovs_pair(vo):
    pair = OvsVrrpPair(vo)
    vo.controllers += pair.ctl.values()
    return pair


def wait_until(pred, what, now):
    """wait_for(pred) whose timeout message also tells now() (the state
    seen last, not the state when the wait began)."""
    try:
        return wait_for(pred, timeout=WAIT, interval=0.2, what=what)
    except TimeoutError as e:
        raise TimeoutError(f"{e}; now: {now()}") from None


def assert_ovs_accepted_all(topo):
    """Nothing the app instances sent was refused by OVS."""
    assert topo.ovs_log.errors() == []
    for c in topo.controllers:
        assert "OFPT_ERROR" not in c.log_text(), c.log_text()[-3000:]


def assert_pings_through(pair, n, when):
    got, via = pings_through(pair, n)
    assert got >= 4, f"{got}/5 pings through r{n} {when}"
    # the echo requests left by router n's wan port (OVS's counter)
    assert via >= got, f"r{n} sent {via} frames on its wan port for {got} replies {when}"


# --------------------------------------------------------------------------

def test_vrrp_ovs_failover_on_link_loss_and_preempt(ovs_pair):
    pair = ovs_pair
    pair.start()
    pair.wait_masters(1)
    st = pair.ctl[2].router("lan", 1)
    assert st["master"] == "10.1.0.2" and st["master_priority"] == 200

    # the status view, through its command-line client
    out = run([sys.executable, "-m", "controller.vrrp.app", "status", "--socket",
               pair.ctl[1].sock], env=vdp_env(), cwd=str(REPO)).stdout
    assert f"datapath {DPIDS[0]:016x} (r1): connected" in out, out
    assert re.search(r"vrid 1 ipv4 v3: Master +priority 200", out), out
    assert re.search(r"vrid 2 ipv4 v3: Master +priority 200", out), out
    out2 = run([sys.executable, "-m", "controller.vrrp.app", "status", "--socket",
                pair.ctl[2].sock], env=vdp_env(), cwd=str(REPO)).stdout
    assert re.search(r"vrid 1 ipv4 v3: Backup +priority 100 .* master 10\.1\.0\.2", out2), out2
    # the status names the ports OVS reported (ofport_request held)
    lan = next(i for i in pair.ctl[1].status()["datapaths"][0]["interfaces"]
               if i["name"] == "lan")
    assert lan["port"] == 1 and lan["link_up"] and lan["mac"] == run(
        ["cat", f"/sys/class/net/{pair.ports[(1, 'l')]}/address"]).stdout.strip()

    # only the master's bridge accepts frames for the virtual MACs
    wait_until(lambda: pair.gates(1) == {VMAC[1], VMAC[2]}, "r1 gate flows",
               lambda: pair.gates(1))
    assert pair.gates(2) == set(), pair.flows(2)

    assert_pings_through(pair, 1, "")
    neigh = run(in_ns(pair.ha, ["ip", "neigh", "show", "10.1.0.1"])).stdout
    assert VMAC[1] in neigh, neigh          # ha's gateway is the virtual MAC

    # r1's lan link goes down: OVS reports it, r2 takes both VRIDs
    pair.link(1, "l", False)
    pair.wait_masters(2, other_state="Initialize")
    r1lan = pair.ctl[1].router("lan", 1)
    assert r1lan["state"] == "Initialize" and r1lan["fault"] == ["port:1"]
    wait_until(lambda: pair.gates(2) == {VMAC[1], VMAC[2]}, "r2 gate flows",
               lambda: pair.gates(2))
    assert_pings_through(pair, 2, "after failover")
    assert pair.gates(1) == set(), pair.flows(1)

    # back: r1 (priority 200, preempt) takes mastership back
    pair.link(1, "l", True)
    pair.wait_masters(1)
    wait_until(lambda: pair.gates(1) == {VMAC[1], VMAC[2]} and pair.gates(2) == set(),
               "gate flows back on r1 only", lambda: (pair.gates(1), pair.gates(2)))
    assert_pings_through(pair, 1, "after preemption")
    assert pair.ctl[1].router("lan", 1)["transitions"] >= 4  # B, M, I, B, M
    assert "Backup -> Master" in pair.ctl[2].log_text()
    assert_ovs_accepted_all(pair.topo)


def test_vrrp_ovs_failover_when_master_controller_dies(ovs_pair):
    pair = ovs_pair
    pair.start()
    pair.wait_masters(1)
    assert_pings_through(pair, 1, "")

    # r1's controller dies without a word; OVS (fail_mode=secure) keeps its
    # flows, but r2 stops hearing adverts and takes over, and its
    # gratuitous ARPs move the virtual MACs to its ports
    pair.ctl[1].stop(signal.SIGKILL)
    pair.wait_masters(2, other_state=None)
    assert_pings_through(pair, 2, "with r1's controller dead")

    # a new controller for r1 (OVS reconnects to it): it replaces the flows
    # left behind and preempts
    pair.ctl[1].start()
    wait_for(pair.ctl[1].connected, timeout=WAIT, what="r1 reconnected")
    pair.wait_masters(1)
    wait_until(lambda: pair.gates(1) == {VMAC[1], VMAC[2]} and pair.gates(2) == set(),
               "gate flows back on r1 only", lambda: (pair.gates(1), pair.gates(2)))
    assert_pings_through(pair, 1, "after r1's controller returned")
    assert_ovs_accepted_all(pair.topo)


# --------------------------------------------------------------------------
# every kind of flow the app makes, on one OVS bridge

ALL_KINDS_CONF = """\
[[vrrp.datapath]]
dpid = {dpid}
name = "r3"
  [[vrrp.datapath.interface]]
  name = "a"
  port = 1
  address = ["10.5.0.2/24", "fd00:5::2/64", "fe80::5:2/64"]
  [[vrrp.datapath.interface]]
  name = "b10"
  port = 2
  vlan = 10
  address = ["10.6.0.2/24", "fd00:6::2/64", "fe80::6:2/64"]
  [[vrrp.datapath.interface]]
  name = "b"
  port = 2
  address = "10.7.0.2/24"
  [[vrrp.datapath.router]]       # IPv4, v3, accept mode
  interface = "a"
  vrid = 1
  priority = 200
  vips = "10.5.0.1"
  interval = 0.1
  accept = true
  [[vrrp.datapath.router]]       # IPv6, v3
  interface = "a"
  vrid = 1
  priority = 200
  vips = ["fe80::1", "fd00:5::1"]
  interval = 0.1
  [[vrrp.datapath.router]]       # IPv4, v2 with a password, on VLAN 10
  interface = "b10"
  vrid = 2
  version = 2
  priority = 150
  vips = "10.6.0.1"
  interval = 1
  auth = "vdpt"
  [[vrrp.datapath.router]]       # IPv6 on VLAN 10, accept mode
  interface = "b10"
  vrid = 2
  priority = 150
  vips = "fd00:6::1"
  interval = 0.1
  accept = true
  [[vrrp.datapath.router]]       # the address owner, untagged beside VLAN 10
  interface = "b"
  vrid = 3
  vips = "10.7.0.2"
  interval = 0.1
  [[vrrp.datapath.route]]
  prefix = "10.50.0.0/16"
  via = "10.7.0.254"
  [[vrrp.datapath.route]]
  prefix = "default"
  via = "10.5.0.254"
  [[vrrp.datapath.route]]
  prefix = "fd00:50::/48"
  via = "fd00:5::254"
"""

ROUTERS = [("a", 1, 4), ("a", 1, 6), ("b10", 2, 4), ("b10", 2, 6), ("b", 3, 4)]


def test_vrrp_ovs_accepts_every_flow_kind(vo):
    """IPv4 and IPv6 routers (v2 and v3), a VLAN interface sharing its port
    with an untagged one, accept mode, an address owner, static routes with
    resolved next hops (ARP and ND): OVS takes every flow the app makes."""
    net = Net(vo, "vo")
    ifs = {}
    for port, short, ns_name, addrs in ((1, "a", "pa", ["10.5.0.254/24", "fd00:5::254/64"]),
                                        (2, "b", "pb", ["10.7.0.254/24"])):
        sw, peer = vo.add_veth(net.link_name(short), net.link_name(short + "p"))
        ns = net.ns(ns_name)
        run(["ip", "link", "set", peer, "netns", ns])
        for conf in ("all", "default", peer):       # the next hops answer ND
            run(in_ns(ns, ["sysctl", "-q", "-w", f"net.ipv6.conf.{conf}.disable_ipv6=0"]))
        for a in addrs:
            run(in_ns(ns, ["ip", "addr", "add", a, "dev", peer] + (["nodad"] if ":" in a
                                                                   else [])))
        run(in_ns(ns, ["ip", "link", "set", peer, "up"]))
        run(["ip", "link", "set", sw, "up"])
        ifs[port] = sw
    ctl = Controller(vo, "r3", ALL_KINDS_CONF.format(dpid=DPIDS[2]), next_port())
    vo.controllers.append(ctl)
    ctl.start()
    br = f"vdptb-vo{vo.tag}3"
    add_bridge(vo, br, DPIDS[2], [ifs[1], ifs[2]], ctl.port)
    wait_for(ctl.connected, timeout=WAIT, what="r3 connected")

    # alone on their segments, every router becomes Master (the owner at once)
    for iface, vrid, fam in ROUTERS:
        wait_until(lambda: ctl.router(iface, vrid, fam)["state"] == "Master",
                   f"{iface} vrid {vrid} ipv{fam} Master",
                   lambda: ctl.router(iface, vrid, fam)["state"])
    # the static routes' next hops resolved (ARP on port 2 untagged, ND on port 1)
    wait_until(lambda: all(r["via_mac"] for r in ctl.status()["datapaths"][0]["routes"]),
               "next hops resolved", lambda: ctl.status()["datapaths"][0]["routes"])

    flows = ofctl("dump-flows", br)

    def has(*parts):
        return any(all(p in line for p in parts) for line in flows.splitlines())

    want = [
        # punts: VRRP v4 / v6, ARP for VIPs, ND for VIPs and own addresses
        ("in_port=1", "nw_dst=224.0.0.18", "nw_proto=112", "CONTROLLER"),
        ("in_port=1", "ipv6_dst=ff02::12", "nw_proto=112", "CONTROLLER"),
        ("in_port=1", "arp_tpa=10.5.0.1", "arp_op=1", "CONTROLLER"),
        ("in_port=1", "icmp_type=135", "nd_target=fd00:5::1", "CONTROLLER"),
        ("in_port=1", "icmp_type=136", "ipv6_dst=fd00:5::2", "CONTROLLER"),
        # the VLAN interface and the untagged one beside it on port 2
        ("in_port=2", "dl_vlan=10", "nw_proto=112", "CONTROLLER"),
        ("in_port=2", "dl_vlan=10", "nd_target=fd00:6::1", "CONTROLLER"),
        ("in_port=2", "vlan_tci=0x0000/0x1fff", "arp_tpa=10.7.0.2", "CONTROLLER"),
        # gates of the Masters: v4 and v6 virtual MACs; VLAN popped
        ("in_port=1", "dl_dst=00:00:5e:00:01:01", "goto_table:1"),
        ("in_port=1", "dl_dst=00:00:5e:00:02:01", "goto_table:1"),
        ("in_port=2", "dl_vlan=10", "dl_dst=00:00:5e:00:01:02", "pop_vlan", "goto_table:1"),
        ("in_port=2", "dl_vlan=10", "dl_dst=00:00:5e:00:02:02", "pop_vlan", "goto_table:1"),
        ("in_port=2", "vlan_tci=0x0000/0x1fff", "dl_dst=00:00:5e:00:01:03", "goto_table:1"),
        # accept mode / owner: the VIP itself to the controller
        ("dl_dst=00:00:5e:00:01:01", "nw_dst=10.5.0.1", "CONTROLLER"),
        ("dl_dst=00:00:5e:00:02:02", "ipv6_dst=fd00:6::1", "CONTROLLER"),
        ("dl_dst=00:00:5e:00:01:03", "nw_dst=10.7.0.2", "CONTROLLER"),
        # routes: connected subnets resolve at the controller; static
        # routes rewrite, decrement the TTL and go to egress
        ("table=1", "nw_dst=10.6.0.0/24", "CONTROLLER"),
        ("table=1", "ipv6_dst=fd00:5::/64", "CONTROLLER"),
        ("table=1", "nw_dst=10.50.0.0/16", "dec_ttl", "write_metadata:0x3", "goto_table:2"),
        ("table=1", "priority=1000,ip ", "dec_ttl", "write_metadata:0x1", "goto_table:2"),
        ("table=1", "ipv6_dst=fd00:50::/48", "dec_ttl", "write_metadata:0x1", "goto_table:2"),
        # egress: the virtual MAC as source, VLAN pushed, hairpin to IN_PORT
        ("table=2", "metadata=0x1", "set_field:00:00:5e:00:01:01->eth_src", "output:1"),
        ("table=2", "metadata=0x1", "set_field:00:00:5e:00:02:01->eth_src", "output:1"),
        ("table=2", "metadata=0x2", "push_vlan:0x8100", "set_field:4106->vlan_vid",
         "output:2"),
        ("table=2", "metadata=0x3", "in_port=2", "IN_PORT"),
    ]
    missing = [w for w in want if not has(*w)]
    assert missing == [], f"missing flows {missing} in\n{flows}"
    assert_ovs_accepted_all(vo)
