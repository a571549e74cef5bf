"""Spanning tree machines (controller/stp): simulated networks of Bridge
objects joined by fake links, with warped (simulated) time.

Times asserted here are protocol (simulated) seconds, not wall clock."""
import random

import pytest

from controller.stp import bpdu as B
from controller.stp.common import (OFPPC_NO_FWD, OFPPC_NO_PACKET_IN, OFPPC_NO_RECV,
                                   PORT_CONFIG_MASK, port_config)
from controller.stp.logic import Bridge
from controller.stp.sim import Network

MODES = ("stp", "rstp")


def mac(i):
    return f"00:00:00:00:00:{i:02x}"


def ring(mode, n=3, speed=1000, **kw):
    """Bridges B1..Bn (B1 has the lowest id), port 1 -> next, port 2 -> previous."""
    net = Network()
    names = [f"B{i}" for i in range(1, n + 1)]
    for i, name in enumerate(names, 1):
        br = Bridge(mac(i), mode=mode, name=name, **kw)
        br.add_port(1, speed_mbps=speed)
        br.add_port(2, speed_mbps=speed)
        net.add(name, br)
    for i, name in enumerate(names):
        net.link(name, 1, names[(i + 1) % n], 2)
    return net


def settle(mode):
    """Protocol time after which a fresh topology has converged."""
    return 35.0 if mode == "stp" else 10.0


def non_forwarding(net):
    return sorted((n, p) for n, br in net.bridges.items() for p in br.ports
                  if br.ports[p].link_up and net.state(n, p) != "forwarding")


def check_adapter_view(net):
    """What the adapter was told (last PortChange) matches status()."""
    for name, br in net.bridges.items():
        st = br.status()
        for no, ps in st["ports"].items():
            pc = net.view[(name, no)]
            assert (pc.state, pc.role) == (ps["state"], ps["role"]), (name, no)
            assert pc.config == port_config(ps["state"], ps["role"])
            assert pc.mask == PORT_CONFIG_MASK


# ------------------------------------------------------------------ convergence

@pytest.mark.parametrize("mode", MODES)
def test_ring_converges_one_blocked_port(mode):
    net = ring(mode)
    net.run(settle(mode))
    # exactly one port is not forwarding: on the B2-B3 link, at B3 (higher id)
    assert non_forwarding(net) == [("B3", 2)]
    assert net.role("B3", 2) == "alternate"
    assert net.active_topology_is_tree()
    roots = {br.status()["root_id"] for br in net.bridges.values()}
    assert roots == {B.bridge_id_str(B.make_bridge_id(32768, mac(1)))}
    s1 = net.bridges["B1"].status()
    assert s1["is_root"] and s1["root_port"] is None and s1["root_path_cost"] == 0
    s3 = net.bridges["B3"].status()
    assert s3["root_port"] == 1 and s3["ports"][2]["role"] == "alternate"
    assert s3["ports"][2]["designated_bridge"] == net.bridges["B2"].status()["bridge_id"]
    check_adapter_view(net)
    # the blocked port's OpenFlow view: NO_FWD only (it must still hear BPDUs)
    assert net.view[("B3", 2)].config == OFPPC_NO_FWD


@pytest.mark.parametrize("mode", MODES)
def test_root_is_lowest_priority_then_mac(mode):
    net = Network()
    prios = {"X": 32768, "Y": 4096, "Z": 4096}
    macs = {"X": mac(1), "Y": mac(9), "Z": mac(5)}
    for n in "XYZ":
        br = Bridge(macs[n], priority=prios[n], mode=mode)
        br.add_port(1)
        br.add_port(2)
        net.add(n, br)
    net.link("X", 1, "Y", 2)
    net.link("Y", 1, "Z", 2)
    net.link("Z", 1, "X", 2)
    net.run(settle(mode))
    want = B.bridge_id_str(B.make_bridge_id(4096, mac(5)))
    assert {br.status()["root_id"] for br in net.bridges.values()} == {want}
    assert net.bridges["Z"].status()["is_root"]
    assert len(non_forwarding(net)) == 1 and net.active_topology_is_tree()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_mesh_is_a_tree_and_survives_failures(mode, seed):
    rnd = random.Random(seed)
    net = Network()
    n = 6
    names = [f"N{i}" for i in range(n)]
    nports = {x: 0 for x in names}
    edges = set()
    for i in range(1, n):
        edges.add((rnd.randrange(i), i))
    while len(edges) < n + 3:
        a, b = rnd.sample(range(n), 2)
        edges.add((min(a, b), max(a, b)))
    for i, x in enumerate(names):
        net.add(x, Bridge(mac(i + 1), priority=rnd.choice([4096, 32768, 61440]), mode=mode))
    for a, b in sorted(edges):
        na, nb = names[a], names[b]
        nports[na] += 1
        nports[nb] += 1
        net.bridges[na].add_port(nports[na], speed_mbps=rnd.choice([100, 1000, 10000]))
        net.bridges[nb].add_port(nports[nb], speed_mbps=rnd.choice([100, 1000, 10000]))
        net.link(na, nports[na], nb, nports[nb])
    net.run(settle(mode) * 2)
    assert net.active_topology_is_tree()
    assert len({br.status()["root_id"] for br in net.bridges.values()}) == 1
    check_adapter_view(net)
    links = sorted({tuple(sorted(k)) for k in
                    (frozenset((a, b)) for a, b in net.links.items())}, key=str)
    for _ in range(3):
        a, b = rnd.choice(links)
        net.set_link(*a, False)
        net.run_for(70.0)
        assert net.active_topology_is_tree()
        net.set_link(*a, True)
        net.run_for(70.0)
        assert net.active_topology_is_tree()
        check_adapter_view(net)


# ------------------------------------------------------------------ failures

def test_rstp_alternate_takes_over_at_once():
    net = ring("rstp")
    net.run(10)
    # B3: root port 1 (to B1), alternate port 2 (to B2); cut B3-B1
    assert net.role("B3", 1) == "root" and net.role("B3", 2) == "alternate"
    t0 = net.now
    net.set_link("B3", 1, False)
    # no protocol time has passed: the alternate is already the forwarding root port
    assert net.now == t0
    assert net.role("B3", 2) == "root" and net.state("B3", 2) == "forwarding"
    assert net.active_topology_is_tree()
    check_adapter_view(net)
    # and it stays so
    net.run_for(30)
    assert net.state("B3", 2) == "forwarding" and net.active_topology_is_tree()


def test_rstp_indirect_failure_reconverges_within_a_second():
    """Cut B1-B2: B2 loses its root port and has no alternate; B3's
    alternate toward B2 must become designated and bring B2 back by
    proposal/agreement, not by timers."""
    net = ring("rstp")
    net.run(10)
    assert net.role("B2", 2) == "root"
    net.set_link("B1", 1, False)
    net.run_for(1.0)
    assert net.active_topology_is_tree()
    assert net.role("B2", 1) == "root" and net.state("B2", 1) == "forwarding"
    assert net.role("B3", 2) == "designated" and net.state("B3", 2) == "forwarding"
    assert net.bridges["B2"].status()["root_id"] == net.bridges["B1"].status()["bridge_id"]
    check_adapter_view(net)


def test_stp_direct_failure_takes_two_forward_delays():
    net = ring("stp")
    net.run(35)
    net.set_link("B3", 1, False)           # B3's root port
    assert net.role("B3", 2) == "root"     # the blocked port becomes root port at once...
    net.run_for(29.0)
    assert net.state("B3", 2) != "forwarding"   # ...but forwards only after 2 x forward delay
    net.run_for(2.0)
    assert net.state("B3", 2) == "forwarding" and net.active_topology_is_tree()


def test_stp_indirect_failure_takes_max_age_plus_two_forward_delays():
    net = ring("stp")
    net.run(35)
    t0 = net.now
    net.set_link("B1", 1, False)           # B2's root port; B3 holds B2's old info
    net.run(t0 + 20.0 + 2 * 15.0 - 2.0)
    assert not net.active_topology_is_tree()
    assert net.state("B3", 2) != "forwarding" or net.state("B2", 1) != "forwarding"
    net.run(t0 + 20.0 + 2 * 15.0 + 2.0)
    assert net.active_topology_is_tree()
    assert net.role("B2", 1) == "root"
    assert {br.status()["root_id"] for br in net.bridges.values()} == {
        net.bridges["B1"].status()["bridge_id"]}


@pytest.mark.parametrize("mode", MODES)
def test_link_restored(mode):
    net = ring(mode)
    net.run(settle(mode))
    before = non_forwarding(net)
    net.set_link("B3", 2, False)
    net.run_for(settle(mode) * 2)
    net.set_link("B3", 2, True)
    net.run_for(settle(mode) * 2)
    assert non_forwarding(net) == before
    check_adapter_view(net)


# ------------------------------------------------------------------ RSTP specifics

def chain(mode, n=2, **portkw):
    net = Network()
    for i in range(1, n + 1):
        br = Bridge(mac(i), mode=mode)
        br.add_port(1, **portkw)
        br.add_port(2, **portkw)
        net.add(f"B{i}", br)
    for i in range(1, n):
        net.link(f"B{i}", 1, f"B{i + 1}", 2)
    return net


def test_rstp_proposal_agreement_forwards_without_timers():
    net = chain("rstp", 4)
    # every link came up at t=0 and no time has passed: all forwarding already
    assert net.now == 0.0
    for i in range(1, 4):
        assert net.state(f"B{i}", 1) == "forwarding"
        assert net.state(f"B{i + 1}", 2) == "forwarding"
    # the handshake happened on the wire: a proposal and an agreement
    props = [s for s in net.sent if s[3].is_rst and s[3].proposal]
    agrees = [s for s in net.sent if s[3].is_rst and s[3].agreement and s[3].role == B.ROLE_ROOT]
    assert props and agrees


def test_rstp_shared_link_waits_without_agreement():
    """No agreement on a non point-to-point link: the designated port waits
    out fdWhile (MaxAge, set when the port left DISABLED_PORT), then learns
    and forwards after forwardDelay each (= hello time while RSTP BPDUs are
    in use).  The root port side still forwards at once."""
    net = chain("rstp", 2, p2p=False, auto_edge=False)
    assert net.state("B1", 1) == "discarding"
    assert net.state("B2", 2) == "forwarding"
    net.run(19.5)
    assert net.state("B1", 1) == "discarding"
    net.run(21.0)
    assert net.state("B1", 1) == "learning"
    net.run(22.5)
    assert net.state("B1", 1) == "forwarding"
    # the same link point-to-point: at once
    net2 = chain("rstp", 2, auto_edge=False)
    assert net2.state("B1", 1) == "forwarding"


def test_stp_chain_needs_two_forward_delays():
    net = chain("stp", 2)
    net.run(14.0)
    assert net.state("B1", 1) == "listening"
    net.run(16.0)
    assert net.state("B1", 1) == "learning"
    net.run(29.0)
    assert net.state("B1", 1) == "learning"
    net.run(31.0)
    assert net.state("B1", 1) == "forwarding" and net.state("B2", 2) == "forwarding"


@pytest.mark.parametrize("mode", MODES)
def test_edge_port_forwards_at_once_and_loses_edge_on_bpdu(mode):
    net = Network()
    br = Bridge(mac(5), mode=mode)
    br.add_port(1, edge=True)
    net.add("S", br)
    net.port_up("S", 1)
    assert net.state("S", 1) == "forwarding"
    assert br.status()["ports"][1]["edge"] is True
    assert not any("topology change" in e[2] for e in net.events)
    # a better bridge appears behind the "host" port
    other = B.Bpdu.rst(root_id=B.make_bridge_id(4096, mac(1)), bridge_id=B.make_bridge_id(4096, mac(1)),
                       port_id=0x8001, flags=0) if mode == "rstp" else B.Bpdu.config(
        root_id=B.make_bridge_id(4096, mac(1)), bridge_id=B.make_bridge_id(4096, mac(1)),
        port_id=0x8001)
    net.inject("S", 1, B.encode_frame(other, mac(1)))
    assert br.status()["ports"][1]["edge"] is False
    assert net.role("S", 1) == "root"
    assert br.status()["root_id"] == B.bridge_id_str(B.make_bridge_id(4096, mac(1)))


def test_rstp_auto_edge():
    net = Network()
    br = Bridge(mac(5), mode="rstp")
    br.add_port(1)                   # not configured edge, auto_edge on by default
    br.add_port(2, auto_edge=False)
    net.add("S", br)
    net.port_up("S", 1)
    net.port_up("S", 2)
    assert net.state("S", 1) == "discarding"
    net.run(3.5)
    assert br.status()["ports"][1]["edge"] is True
    assert br.status()["ports"][2]["edge"] is False
    assert net.state("S", 1) == "forwarding"       # edge: forwarding at once
    net.run(19.5)
    assert net.state("S", 2) == "discarding"       # no edge, no agreement: timers
    net.run(25)
    assert net.state("S", 2) == "forwarding"


def test_rstp_falls_back_to_stp_next_to_a_legacy_bridge():
    net = Network()
    r = Bridge(mac(1), mode="rstp")           # lower id: root
    s = Bridge(mac(2), mode="stp")
    for br in (r, s):
        br.add_port(1)
    r.add_port(2)
    r2 = Bridge(mac(3), mode="rstp")
    r2.add_port(1)
    net.add("R", r)
    net.add("S", s)
    net.add("R2", r2)
    net.link("R", 1, "S", 1)
    net.link("R", 2, "R2", 1)
    net.run(10)
    st = r.status()
    assert st["ports"][1]["protocol"] == "stp"
    assert st["ports"][2]["protocol"] == "rstp"
    assert any("legacy 802.1D bridge detected" in e[2] for e in net.events)
    recent = [x for x in net.sent if x[0] > 5.0]
    assert {x[3].type for x in recent if x[1] == "R" and x[2] == 1} == {B.TYPE_CONFIG}
    assert {x[3].type for x in recent if x[1] == "R" and x[2] == 2} == {B.TYPE_RST}
    net.run(40)
    assert s.status()["root_id"] == r.status()["bridge_id"]
    assert net.state("R", 1) == "forwarding" and net.state("S", 1) == "forwarding"
    assert net.role("S", 1) == "root"
    # the legacy bridge goes away, an RSTP bridge takes its place; mcheck returns to RSTP
    net.set_link("R", 1, False)
    del net.links[("R", 1)], net.links[("S", 1)]
    r3 = Bridge(mac(4), mode="rstp")
    r3.add_port(1)
    net.add("R3", r3)
    net.link("R", 1, "R3", 1)
    net.call("R", "mcheck", 1)
    net.run_for(5)
    assert r.status()["ports"][1]["protocol"] == "rstp"
    assert net.state("R", 1) == "forwarding" and net.state("R3", 1) == "forwarding"


def test_mixed_ring_stp_and_rstp():
    net = Network()
    for i, mode in ((1, "rstp"), (2, "stp"), (3, "rstp")):
        br = Bridge(mac(i), mode=mode)
        br.add_port(1)
        br.add_port(2)
        net.add(f"B{i}", br)
    net.link("B1", 1, "B2", 2)
    net.link("B2", 1, "B3", 2)
    net.link("B3", 1, "B1", 2)
    net.run(60)
    assert len(non_forwarding(net)) == 1 and net.active_topology_is_tree()
    assert len({br.status()["root_id"] for br in net.bridges.values()}) == 1


def test_rstp_backup_port_on_a_self_loop():
    net = Network()
    br = Bridge(mac(1), mode="rstp")
    br.add_port(1)
    br.add_port(2)
    net.add("S", br)
    net.link("S", 1, "S", 2)
    net.run(10)
    roles = {net.role("S", 1), net.role("S", 2)}
    assert roles == {"designated", "backup"}
    backup = 1 if net.role("S", 1) == "backup" else 2
    assert backup == 2                        # the higher port id backs up
    assert net.state("S", backup) == "discarding"


def test_stp_self_loop_blocks_one_port():
    net = Network()
    br = Bridge(mac(1), mode="stp")
    br.add_port(1)
    br.add_port(2)
    net.add("S", br)
    net.link("S", 1, "S", 2)
    net.run(40)
    assert net.state("S", 1) == "forwarding" and net.state("S", 2) == "blocking"
    assert net.role("S", 2) == "backup"


# ------------------------------------------------------------------ topology change

def test_rstp_tc_propagates_and_flushes():
    net = chain("rstp", 3)
    net.run(20)
    net.flushes.clear()
    t0 = net.now
    # a new bridge appears behind B3 port 1 (a non-edge port): TC at B3
    d = Bridge(mac(9), mode="rstp")
    d.add_port(2)
    net.add("D", d)
    net.link("B3", 1, "D", 2)
    assert net.state("B3", 1) == "forwarding"
    flushed = {(name, p) for t, name, ports in net.flushes if t == t0 for p in ports}
    # B3 detects (port 1 went forwarding): flushes its other port, not port 1
    assert ("B3", 2) in flushed and ("B3", 1) not in flushed
    # B2 hears the TC on port 1: flushes port 2, keeps port 1
    assert ("B2", 2) in flushed and ("B2", 1) not in flushed
    # B1 (root, TC on port 1) has nothing else to flush but still takes it in
    assert ("B1", 1) not in flushed
    tc_sent = [x for x in net.sent if x[0] == t0 and x[3].tc]
    assert {x[1] for x in tc_sent} >= {"B3", "B2"}
    assert net.bridges["B1"].status()["topology_change_count"] >= 1


def test_rstp_edge_ports_do_not_cause_or_take_flushes():
    net = chain("rstp", 2)
    net.bridges["B1"].add_port(3, edge=True)
    net.run(20)
    net.flushes.clear()
    net.port_up("B1", 3)
    assert net.state("B1", 3) == "forwarding"
    assert net.flushes == []                  # an edge port going up is no topology change
    # a TC from elsewhere does not flush the edge port's MACs
    net.set_link("B1", 1, False)
    net.set_link("B1", 1, True)
    flushed = {(n, p) for _, n, ports in net.flushes for p in ports}
    assert ("B1", 3) not in flushed


def test_stp_tcn_tca_and_short_ageing():
    net = chain("stp", 3)
    net.run(40)
    # the ports reaching forwarding at t=30 were a topology change too
    assert net.bridges["B3"].ageing == 15.0 and net.ageing["B3"] == 15.0
    net.run(80)
    assert net.bridges["B3"].ageing == 300.0 and net.ageing["B3"] == 300.0
    net.flushes.clear()
    t0 = net.now
    # B3 grows a new port toward a host; when it reaches forwarding B3 sends a TCN
    net.bridges["B3"].add_port(3)
    net.port_up("B3", 3)
    net.run(t0 + 33)            # + hold time (1 s) per hop for the TC flag
    tcns = [x for x in net.sent if x[0] > t0 and x[3].is_tcn]
    assert tcns and tcns[0][1] == "B3" and tcns[0][2] == 2
    # relayed by B2 toward the root
    assert any(x[1] == "B2" and x[2] == 2 for x in tcns)
    # acknowledged
    assert any(x[3].is_config and x[3].tca and x[1] == "B2" and x[2] == 1 for x in net.sent
               if x[0] > t0)
    # the root sets TC; every bridge goes to short ageing (forward delay) and flushes
    assert net.bridges["B1"].status()["topology_change"]
    for name in ("B1", "B2", "B3"):
        assert net.ageing[name] == 15.0
        assert any(n == name for _, n, _ in net.flushes)
    # TCN stops once acknowledged: no TCN from B3 after the first ack
    net.run_for(10)
    assert len([x for x in net.sent if x[3].is_tcn and x[1] == "B3" and x[0] > t0 + 32]) == 0
    # after max age + forward delay the TC flag ends, ageing goes back
    net.run_for(40)
    assert not net.bridges["B1"].status()["topology_change"]
    for name in ("B1", "B2", "B3"):
        assert net.ageing[name] == 300.0
        assert net.bridges[name].ageing == 300.0


# ------------------------------------------------------------------ guards

@pytest.mark.parametrize("mode", MODES)
def test_bpdu_guard(mode):
    net = Network()
    br = Bridge(mac(5), mode=mode)
    br.add_port(1, edge=True, bpdu_guard=True)
    br.add_port(2, edge=True)
    net.add("S", br)
    net.port_up("S", 1)
    net.port_up("S", 2)
    assert net.state("S", 1) == "forwarding"
    rogue = B.encode_frame(B.Bpdu.config(root_id=B.make_bridge_id(0, mac(66)),
                                         bridge_id=B.make_bridge_id(0, mac(66)), port_id=0x8001),
                           mac(66))
    net.inject("S", 1, rogue)
    assert net.state("S", 1) == "disabled"
    pc = net.view[("S", 1)]
    assert pc.config == OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN
    st = br.status()
    assert st["ports"][1]["guard"] == "bpdu-guard" and st["ports"][1]["stats"]["guard_trips"] == 1
    assert st["is_root"]                               # the rogue never won
    assert any("BPDU guard" in e[2] for e in net.events)
    # more BPDUs while shut are ignored; the other port is untouched
    net.inject("S", 1, rogue)
    assert net.state("S", 2) == "forwarding"
    net.run(60)
    assert net.state("S", 1) == "disabled"
    net.call("S", "clear_guard", 1)
    assert net.state("S", 1) == "forwarding"
    assert br.status()["ports"][1]["guard"] is None


@pytest.mark.parametrize("mode", MODES)
def test_root_guard(mode):
    net = chain(mode, 2)
    b2 = net.bridges["B2"]
    b2.add_port(3, root_guard=True)
    net.run(settle(mode))
    # a bridge with a better id plugs into the guarded port
    x = Bridge(mac(0x77), priority=0, mode=mode)
    x.add_port(1)
    net.add("X", x)
    net.link("B2", 3, "X", 1)
    net.run_for(settle(mode))
    st = b2.status()
    assert st["root_id"] == net.bridges["B1"].status()["bridge_id"]   # root unchanged
    assert st["ports"][3]["guard"] == "root-inconsistent"
    assert st["ports"][3]["role"] == "alternate"
    assert net.state("B2", 3) in ("discarding", "blocking")
    assert net.view[("B2", 3)].config == OFPPC_NO_FWD
    assert any("root guard" in e[2] for e in net.events)
    # the superior bridge goes quiet (frames lost): the port recovers
    net.drop.add(("X", 1))
    net.run_for(settle(mode) + 25)
    st = b2.status()
    assert st["ports"][3]["guard"] is None
    assert st["ports"][3]["role"] == "designated" and net.state("B2", 3) == "forwarding"


# ------------------------------------------------------------------ configuration

@pytest.mark.parametrize("mode", MODES)
def test_priority_change_moves_the_root(mode):
    net = ring(mode)
    net.run(settle(mode))
    net.call("B3", "set_priority", 4096)
    net.run_for(settle(mode) + 25)
    want = net.bridges["B3"].status()["bridge_id"]
    assert {br.status()["root_id"] for br in net.bridges.values()} == {want}
    assert net.bridges["B3"].status()["is_root"]
    assert len(non_forwarding(net)) == 1 and net.active_topology_is_tree()
    # the blocked port is now on the link farthest from B3: B1-B2, at B2 (higher id)
    assert non_forwarding(net) == [("B2", 2)]
    check_adapter_view(net)


@pytest.mark.parametrize("mode", MODES)
def test_port_priority_and_cost_pick_the_port(mode):
    """Two parallel links between B1 (root) and B2: B2 uses the link whose
    designated port id is lower; raising B1's port 1 priority value moves B2
    to the other link; then a path cost change on B2 moves it back."""
    net = Network()
    for i in (1, 2):
        br = Bridge(mac(i), mode=mode)
        br.add_port(1)
        br.add_port(2)
        net.add(f"B{i}", br)
    net.link("B1", 1, "B2", 1)
    net.link("B1", 2, "B2", 2)
    net.run(settle(mode))
    assert net.role("B2", 1) == "root" and net.state("B2", 2) != "forwarding"
    net.call("B1", "set_port_priority", 1, 144)
    net.run_for(settle(mode) + 25)
    assert net.role("B2", 2) == "root" and net.state("B2", 1) != "forwarding"
    assert net.bridges["B1"].status()["ports"][1]["priority"] == 144
    net.call("B2", "set_port_cost", 2, 150_000_000 if mode == "rstp" else 60000)
    net.run_for(settle(mode) + 25)
    assert net.role("B2", 1) == "root" and net.state("B2", 2) != "forwarding"
    assert net.bridges["B2"].status()["ports"][2]["cost"] in (150_000_000, 60000)
    net.call("B2", "set_port_cost", 2, None)
    assert net.bridges["B2"].ports[2].cost == (2_000_000 if mode == "rstp" else 100)


def test_costs_follow_mode_and_speed():
    assert Bridge(mac(1), mode="rstp").add_port(1, speed_mbps=1000).cost == 20000
    assert Bridge(mac(1), mode="stp").add_port(1, speed_mbps=1000).cost == 4
    assert Bridge(mac(1), mode="stp", cost_method="long").add_port(1, speed_mbps=100).cost == 200000
    assert Bridge(mac(1)).add_port(1, speed_mbps=100, cost=7).cost == 7
    br = Bridge(mac(1))
    br.add_port(1, speed_mbps=100)
    br.set_port_speed(1, 10000, 0.0)
    assert br.ports[1].cost == 2000


def test_set_timers_reach_the_wire():
    net = chain("rstp", 3)
    net.run(5)
    net.call("B1", "set_timers", 1.0, 10.0, 6.0)
    net.run_for(5)
    last = [x[3] for x in net.sent if x[1] == "B1" and x[3].is_rst][-1]
    assert (last.hello_time, last.max_age, last.forward_delay) == (1.0, 10.0, 6.0)
    # B2 relays the root's max age / forward delay with its own hello time
    last2 = [x[3] for x in net.sent if x[1] == "B2" and x[2] == 1][-1]
    assert (last2.hello_time, last2.max_age, last2.forward_delay) == (2.0, 10.0, 6.0)
    assert last2.message_age == 1.0
    assert net.bridges["B2"].status()["forward_delay"] == 6.0


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError):
        Bridge(mac(1), mode="mstp")
    with pytest.raises(ValueError):
        Bridge(mac(1), priority=1000)                 # RSTP: steps of 4096
    Bridge(mac(1), priority=1000, mode="stp")         # 802.1D-1998 allows it
    with pytest.raises(ValueError):
        Bridge(mac(1), hello_time=2, max_age=40, forward_delay=15)   # 2*(15-1) < 40
    with pytest.raises(ValueError):
        Bridge(mac(1), forward_delay=3)
    br = Bridge(mac(1))
    br.add_port(1)
    with pytest.raises(ValueError):
        br.add_port(1)
    with pytest.raises(ValueError):
        br.add_port(5000)
    with pytest.raises(ValueError):
        br.add_port(2, priority=100)
    with pytest.raises(ValueError):
        br.add_port(2, cost=0)
    with pytest.raises(KeyError):
        br.port_link(9, True, 0.0)
    with pytest.raises(ValueError):
        br.set_priority(4095, 0.0)


@pytest.mark.parametrize("mode", MODES)
def test_remove_port(mode):
    net = ring(mode)
    net.run(settle(mode))
    net.set_link("B3", 2, False)
    del net.links[("B3", 2)], net.links[("B2", 1)]
    net.call("B3", "remove_port", 2)
    assert 2 not in net.bridges["B3"].ports
    assert 2 not in net.bridges["B3"].status()["ports"]
    net.run_for(settle(mode) * 2)
    assert net.active_topology_is_tree() and non_forwarding(net) == []


# ------------------------------------------------------------------ bad input

def _frames_garbage():
    good = B.encode_frame(B.Bpdu.config(root_id=1, bridge_id=1, port_id=0x8001), mac(9))
    yield b""
    yield good[:20]
    yield good[:14] + b"\xaa\xaa\x03" + good[17:]
    yield good[:17] + b"\x00\x07" + good[19:]
    yield good[:20] + b"\x33" + good[21:]
    yield good[:12] + b"\x05\xdc" + good[14:]
    yield good[:12] + b"\x08\x00" + good[14:]


@pytest.mark.parametrize("mode", MODES)
def test_malformed_bpdus_are_counted_and_ignored(mode):
    net = ring(mode)
    net.run(settle(mode))
    before = {n: br.status() for n, br in net.bridges.items()}
    sent = len(net.sent)
    frames = list(_frames_garbage())
    for f in frames:
        acts = net.bridges["B2"].rx_bpdu(1, f, net.now)
        assert not acts.tx and not acts.ports and not acts.flush
        assert acts.events and "malformed" in acts.events[0]
    assert len(net.sent) == sent
    st = net.bridges["B2"].status()
    assert st["ports"][1]["stats"]["rx_malformed"] == len(frames)
    assert st["stats"]["rx_malformed"] == len(frames)
    for key in ("root_id", "root_port", "root_path_cost"):
        assert st[key] == before["B2"][key]
    assert [p["state"] for p in st["ports"].values()] == [
        p["state"] for p in before["B2"]["ports"].values()]


@pytest.mark.parametrize("mode", MODES)
def test_ignored_bpdus(mode):
    net = ring(mode)
    net.run(settle(mode))
    br = net.bridges["B2"]
    before = br.status()
    # our own BPDU looped back to the port that sent it
    own = [x[3] for x in net.sent if x[1] == "B2" and x[2] == 1 and not x[3].is_tcn][-1]
    acts = br.rx_bpdu(1, B.encode_frame(own, mac(2)), net.now)
    assert not acts.tx and not acts.ports
    # expired information (message age >= max age), even if it claims a better root
    expired = B.Bpdu.config(root_id=B.make_bridge_id(0, mac(0x50)), bridge_id=B.make_bridge_id(0, mac(0x50)),
                            port_id=0x8001, message_age=20.0, max_age=20.0)
    acts = br.rx_bpdu(2, B.encode_frame(expired, mac(0x50)), net.now)
    assert not acts.ports
    # BPDUs on a port that is down
    br.add_port(7)
    br.rx_bpdu(7, B.encode_frame(expired, mac(0x50)), net.now)
    st = br.status()
    assert st["ports"][1]["stats"]["rx_ignored"] == 1
    assert st["ports"][2]["stats"]["rx_ignored"] == 1
    assert st["ports"][7]["stats"]["rx_ignored"] == 1
    assert st["root_id"] == before["root_id"]


def test_stp_bridge_ignores_rst_bpdus():
    br = Bridge(mac(5), mode="stp")
    br.add_port(1)
    br.port_link(1, True, 0.0)
    better = B.Bpdu.rst(root_id=B.make_bridge_id(0, mac(1)), bridge_id=B.make_bridge_id(0, mac(1)),
                        port_id=0x8001)
    br.rx_bpdu(1, B.encode_frame(better, mac(1)), 0.5)
    st = br.status()
    assert st["is_root"] and st["ports"][1]["stats"]["rx_ignored"] == 1


@pytest.mark.parametrize("mode", MODES)
def test_fuzzed_bpdus_never_break_the_bridge(mode):
    """Random (often valid) BPDUs and garbage into a converged ring: no
    exception, every frame accounted for, and once the noise stops the
    protocol converges back to a tree."""
    rnd = random.Random(7)
    net = ring(mode)
    net.run(settle(mode))
    for i in range(400):
        kind = rnd.random()
        if kind < 0.3:
            frame = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 70)))
        else:
            b = rnd.choice([B.Bpdu.tcn(), B.Bpdu.config(
                flags=rnd.getrandbits(8), root_id=rnd.getrandbits(64), root_path_cost=rnd.getrandbits(32),
                bridge_id=rnd.getrandbits(64), port_id=rnd.getrandbits(16),
                message_age=rnd.randrange(0, 30), max_age=rnd.randrange(6, 40),
                hello_time=rnd.randrange(0, 10), forward_delay=rnd.randrange(0, 30)),
                B.Bpdu.rst(role=rnd.randrange(4), flags=rnd.getrandbits(8),
                           root_id=rnd.getrandbits(64), root_path_cost=rnd.getrandbits(32),
                           bridge_id=rnd.getrandbits(64), port_id=rnd.getrandbits(16),
                           message_age=rnd.randrange(0, 30) / 4, max_age=rnd.randrange(6, 40),
                           hello_time=rnd.randrange(0, 10), forward_delay=rnd.randrange(0, 30))])
            frame = B.encode_frame(b, mac(0x60))
            if rnd.random() < 0.3:
                frame = frame[:rnd.randrange(len(frame))]
        name = rnd.choice(["B1", "B2", "B3"])
        net.inject(name, rnd.choice([1, 2]), frame)
        if rnd.random() < 0.1:
            net.run_for(rnd.random() * 3)
    total = sum(br.stats["rx_bpdus"] for br in net.bridges.values())
    assert total > 400
    net.run_for(120)
    assert net.active_topology_is_tree() and len(non_forwarding(net)) == 1
    check_adapter_view(net)


# ------------------------------------------------------------------ API details

def test_first_call_reports_new_ports_and_time_is_warped():
    br = Bridge(mac(1), mode="rstp")
    br.add_port(1)
    br.add_port(2)
    acts = br.tick(100.0)
    assert set(acts.ports) == {1, 2}
    assert all(pc.state == "disabled" for pc in acts.ports.values())
    assert br.next_wakeup() is None or br.next_wakeup() >= 100.0
    acts = br.port_link(1, True, 100.0)
    assert acts.ports[1].state == "discarding" and acts.ports[1].role == "designated"
    assert acts.tx and acts.tx[0][0] == 1
    frame = acts.tx[0][1]
    assert frame[:6] == B.STP_GROUP_MAC and frame[6:12] == B.mac_to_bytes(mac(1))
    # a jump of an hour fires every timer in order and leaves a sane bridge
    acts = br.tick(3700.0)
    assert br.port_state(1) == "forwarding"
    assert br.now == 3700.0
    # time going backwards does nothing
    assert not br.tick(10.0).ports
    assert br.now == 3700.0


def test_port_source_mac_and_status_shape():
    br = Bridge(mac(1), mode="rstp", name="dp1")
    br.add_port(3, mac="02:00:00:00:03:03", speed_mbps=10000)
    acts = br.port_link(3, True, 0.0)
    assert acts.tx[0][1][6:12] == bytes.fromhex("020000000303")
    st = br.status()
    assert st["name"] == "dp1" and st["mode"] == "rstp"
    assert st["bridge_id"] == "8000.000000000001" == st["root_id"]
    p = st["ports"][3]
    assert p["port_id"] == "8003" and p["cost"] == 2000 and p["role"] == "designated"
    assert set(p) >= {"state", "designated_bridge", "designated_root", "designated_port",
                      "designated_cost", "edge", "p2p", "protocol", "guard", "stats"}
    assert br.forwarding_ports() == []
    br.tick(10.0)
    assert br.forwarding_ports() == [3] and br.learning_ports() == [3]


def test_actions_merge_and_truth():
    from controller.stp.common import Actions, PortChange
    a = Actions()
    assert not a
    b = Actions(tx=[(1, b"x")], ports={1: PortChange(1, "discarding", "designated", 0)},
                flush=[3, 1], ageing=15.0, events=["e"])
    assert b
    a.merge(b).merge(Actions(ports={1: PortChange(1, "forwarding", "designated", 0)}, flush=[1]))
    assert a.tx == [(1, b"x")] and a.flush == [1, 3] and a.ageing == 15.0
    assert a.ports[1].state == "forwarding" and a.ports[1].forwarding and a.ports[1].learning


def test_port_config_mapping():
    assert port_config("disabled", "disabled") == OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN
    assert port_config("discarding", "alternate") == OFPPC_NO_FWD
    assert port_config("blocking", "backup") == OFPPC_NO_FWD
    # designated/root ports must still send BPDUs: no NO_FWD even while not forwarding
    for state in ("discarding", "listening", "learning", "forwarding"):
        assert port_config(state, "designated") == 0
        assert port_config(state, "root") == 0
    assert PORT_CONFIG_MASK == OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN
