"""The l2 app's logic (controller/l2/logic.py) and config schema
(controller/l2/config.py), without a switch: frames built with os-ken's
packet library run through a fake OpenFlow switch (fakeofp.py) that holds
the flows the logic returned; its PACKET_INs and FLOW_REMOVEDs (os-ken
objects parsed from wire bytes) go back to the logic.  Time is warped."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from os_ken.lib.packet import arp, ethernet, packet, vlan  # noqa: E402
from os_ken.ofproto import ofproto_v1_3 as ofp  # noqa: E402
from os_ken.ofproto import ofproto_v1_3_parser as parser  # noqa: E402

from controller.config import ConfigError, load_config  # noqa: E402
from controller.l2 import config as C  # noqa: E402
from controller.l2 import logic as L  # noqa: E402
from fakeofp import FakeSwitch, roundtrip  # noqa: E402

BCAST = "ff:ff:ff:ff:ff:ff"


def mac(n):
    return f"02:00:00:00:00:{n:02x}"


def frame(src, dst=BCAST, vid=None, payload=b"vdp-l2-test-payload-pad-to-min-size-xx"):
    """An Ethernet frame (802.1Q tagged when vid) built with os-ken."""
    p = packet.Packet()
    if vid is None:
        p.add_protocol(ethernet.ethernet(dst=dst, src=src, ethertype=0x0806))
    else:
        p.add_protocol(ethernet.ethernet(dst=dst, src=src, ethertype=0x8100))
        p.add_protocol(vlan.vlan(vid=vid, ethertype=0x0806))
    p.add_protocol(arp.arp(src_mac=src, dst_mac="00:00:00:00:00:00"))
    p.add_protocol(payload)
    p.serialize()
    return bytes(p.data)


def tag_of(data):
    """VLAN id of a frame (os-ken decode), None when untagged."""
    pkt = packet.Packet(data)
    v = pkt.get_protocol(vlan.vlan)
    return None if v is None else v.vid


def ofport(no, up=True):
    return parser.OFPPort(no, b"\x02\0\0\0\0" + bytes([no & 0xFF]), f"p{no}".encode(),
                          0, 0 if up else ofp.OFPPS_LINK_DOWN, 0, 0, 0, 0, 0, 0)


class Harness:
    """FakeSwitch + L2Switch wired together; every message passes both ways."""

    def __init__(self, ports=(1, 2, 3, 4), config=None, forwarding_default=True, now=0.0,
                 removed_on_replace=False):
        self.sw = FakeSwitch(ports, removed_on_replace=removed_on_replace)
        self.l2 = L.L2Switch(config, forwarding_default)
        self.sent = []
        self.now = now
        self.apply(self.l2.switch_up(self.sw.dp, now))
        self.apply(self.l2.port_desc([ofport(p) for p in ports], now))

    def apply(self, msgs):
        self.sent += msgs
        removed = self.sw.apply(msgs, self.now)
        for m in removed:                 # FLOW_REMOVED (reason DELETE) of our own deletes
            assert m.reason == ofp.OFPRR_DELETE
            self.apply(self.l2.flow_removed(m, self.now))
        return msgs

    def send(self, port, data, now=None):
        """A frame arrives on port; packet-ins go to the logic (whose
        answer is applied).  Returns the fake switch's Result."""
        if now is not None:
            self.now = now
        r = self.sw.receive(port, data, self.now)
        r.replies = []
        for pi in r.packet_ins:
            r.replies += self.apply(self.l2.packet_in(pi, self.now))
        return r

    def tick(self, now):
        """Time passes: expired flows' FLOW_REMOVEDs go to the logic."""
        self.now = now
        out = []
        for m in self.sw.expire(now):
            out.append(m)
            self.apply(self.l2.flow_removed(m, now))
        return out

    def learned_src(self):
        return sorted((f.match["in_port"][0], f.match["vlan_vid"][0] & 0xFFF,
                       f.match["eth_src"][0]) for f in self.sw.table(1)
                      if L.cookie_kind(f.cookie) == L.K_LEARNED)

    def learned_dst(self):
        return sorted((f.match["vlan_vid"][0] & 0xFFF, f.match["eth_dst"][0], tuple(f.outputs()))
                      for f in self.sw.table(2) if L.cookie_kind(f.cookie) == L.K_LEARNED)


def m_int(m):
    return int(m.replace(":", ""), 16)


def vlan_config(**kw):
    """Ports 1,2 access VLAN 10; 3 access VLAN 20; 4 trunk 10,20 native 30;
    5 access 30; 6 not listed (default VLAN 1)."""
    ports = {1: C.PortConfig(1, "access", 10), 2: C.PortConfig(2, "access", 10),
             3: C.PortConfig(3, "access", 20),
             4: C.PortConfig(4, "trunk", 30, frozenset({10, 20})),
             5: C.PortConfig(5, "access", 30)}
    return C.DatapathConfig(dpid=1, ports=ports, **kw)


# ================================================================ pipeline

def test_switch_up_installs_fixed_pipeline_and_asks_for_ports():
    sw = FakeSwitch([1])
    l2 = L.L2Switch()
    msgs = l2.switch_up(sw.dp, 0.0)
    assert isinstance(msgs[-1], parser.OFPPortDescStatsRequest)
    first = roundtrip(msgs[0])
    # it cleans up only its own flows from an earlier run, in every table
    assert first.command == ofp.OFPFC_DELETE and first.table_id == ofp.OFPTT_ALL
    assert first.cookie_mask == L.COOKIE_APP_MASK and first.cookie == L.COOKIE_APP
    for m in msgs[1:-1]:
        d = roundtrip(m)
        assert d.command == ofp.OFPFC_ADD
        assert L.cookie_kind(d.cookie) in (L.K_STATIC, L.K_LEARN_MISS)
        assert d.priority <= L.PRIO_TOP
    sw.apply(msgs)
    # table 1 miss: copy to the controller (whole frame) and go on to table 2
    miss = [f for f in sw.table(1) if f.priority == 0][0]
    out = [a for a in miss.actions() if isinstance(a, parser.OFPActionOutput)][0]
    assert out.port == ofp.OFPP_CONTROLLER and out.max_len == ofp.OFPCML_NO_BUFFER
    assert miss.goto() == 2


def test_other_apps_flows_survive_switch_up():
    sw = FakeSwitch([1])
    other = parser.OFPFlowMod(sw.dp, cookie=0x5354, table_id=0, priority=0xFFFF,
                              match=parser.OFPMatch(eth_dst="01:80:c2:00:00:00"),
                              instructions=[])
    sw.apply([other])
    l2 = L.L2Switch()
    sw.apply(l2.switch_up(sw.dp, 0.0))
    assert any(f.cookie == 0x5354 for f in sw.flows)


def test_configured_first_table():
    h = Harness(config=C.DatapathConfig(table=5))
    tables = {f.table_id for f in h.sw.flows}
    assert tables == {5, 6, 7}
    # the fake switch starts at table 0: nothing of ours there
    r = h.send(1, frame(mac(1)))
    assert r.outputs == [] and r.packet_ins == []


# ================================================================ learning

def test_learn_then_unicast():
    h = Harness()
    r = h.send(1, frame(mac(1)))
    assert r.ports() == [2, 3, 4]                 # flooded, not back to 1 ...
    assert r.dropped_hairpin == 0                 # ... not even to be dropped there
    for f in h.sw.table(2):
        if L.cookie_kind(f.cookie) == L.K_FLOOD:
            assert f.match["in_port"][0] not in f.outputs()
    assert all(tag_of(f) is None for _, f in r.outputs)
    assert len(r.packet_ins) == 1 and r.packet_ins[0].table_id == 1
    assert h.learned_src() == [(1, 1, m_int(mac(1)))]
    assert h.learned_dst() == [(1, m_int(mac(1)), (1,))]
    # the reply goes to port 1 only, untagged, and teaches mac(2)
    r = h.send(2, frame(mac(2), mac(1)))
    assert r.ports() == [1] and tag_of(r.frame_to(1)) is None
    assert len(r.packet_ins) == 1
    # now both are known: no more packet-ins, straight delivery
    r = h.send(1, frame(mac(1), mac(2)))
    assert r.ports() == [2] and r.packet_ins == []
    # no packet-out: the switch forwards the first frame itself
    assert not any(isinstance(m, parser.OFPPacketOut) for m in h.sent)


def test_learned_flows_shape():
    h = Harness(config=C.DatapathConfig(idle_timeout=100))
    h.send(1, frame(mac(1)))
    src = [f for f in h.sw.table(1) if L.cookie_kind(f.cookie) == L.K_LEARNED][0]
    dst = [f for f in h.sw.table(2) if L.cookie_kind(f.cookie) == L.K_LEARNED][0]
    assert src.cookie == dst.cookie
    assert src.idle_timeout == 100 and dst.idle_timeout == 110   # dst outlives src
    assert src.flags & ofp.OFPFF_SEND_FLOW_REM and dst.flags & ofp.OFPFF_SEND_FLOW_REM
    assert src.hard_timeout == 0 and dst.hard_timeout == 0


def test_unknown_unicast_floods_and_hairpin_is_dropped():
    h = Harness()
    h.send(1, frame(mac(1)))
    h.send(1, frame(mac(5)))                      # two hosts behind port 1 (a hub)
    r = h.send(1, frame(mac(5), mac(1)))
    assert r.outputs == [] and r.dropped_hairpin == 1
    r = h.send(1, frame(mac(5), mac(9)))          # unknown destination
    assert r.ports() == [2, 3, 4]


def test_multicast_source_is_never_learned():
    h = Harness()
    r = h.send(1, frame("01:00:5e:00:00:01"))
    assert r.outputs == [] and r.packet_ins == []
    assert h.l2.macs == {}


def test_link_local_frames_are_not_flooded():
    h = Harness()
    for dst in ("01:80:c2:00:00:00", "01:80:c2:00:00:02", "01:80:c2:00:00:0e"):
        r = h.send(1, frame(mac(1), dst))
        assert r.outputs == [] and r.packet_ins == []
    r = h.send(1, frame(mac(1), "01:80:c2:00:00:10"))     # not link-local
    assert r.ports() == [2, 3, 4]


def test_packet_in_from_another_app_is_ignored():
    h = Harness()
    pi = parser.OFPPacketIn(h.sw.dp, ofp.OFP_NO_BUFFER, 60, ofp.OFPR_ACTION, 0, 0x5354,
                            parser.OFPMatch(in_port=1), frame(mac(1), "01:80:c2:00:00:00"))
    assert h.l2.packet_in(pi, 0.0) == []
    pi = parser.OFPPacketIn(h.sw.dp, ofp.OFP_NO_BUFFER, 60, ofp.OFPR_ACTION, 1,
                            L.make_cookie(L.K_LEARN_MISS), parser.OFPMatch(in_port=1), b"\x01\x02")
    assert h.l2.packet_in(pi, 0.0) == []          # runt: nothing to learn
    assert h.l2.macs == {}


def test_lost_flows_are_reinstalled_but_not_on_every_packet_in():
    h = Harness()
    h.send(1, frame(mac(1)), now=0.0)
    # the switch loses our flows (e.g. someone ran del-flows)
    h.sw.flows = [f for f in h.sw.flows if L.cookie_kind(f.cookie) != L.K_LEARNED]
    r = h.send(1, frame(mac(1)), now=0.5)
    assert len(r.packet_ins) == 1 and r.replies == []       # within REFRESH_S: in flight?
    r = h.send(1, frame(mac(1)), now=2.0)
    assert len(r.replies) == 2
    assert h.learned_src() == [(1, 1, m_int(mac(1)))]


# ================================================================ VLANs

def test_flood_stays_in_vlan_with_tagging_per_port():
    h = Harness(ports=(1, 2, 3, 4, 5, 6), config=vlan_config())
    r = h.send(1, frame(mac(1)))                  # VLAN 10 from an access port
    assert r.ports() == [2, 4]
    assert tag_of(r.frame_to(2)) is None and tag_of(r.frame_to(4)) == 10
    r = h.send(3, frame(mac(3)))                  # VLAN 20
    assert r.ports() == [4] and tag_of(r.frame_to(4)) == 20
    r = h.send(4, frame(mac(4), vid=20))          # tagged 20 on the trunk
    assert r.ports() == [3] and tag_of(r.frame_to(3)) is None
    r = h.send(4, frame(mac(4)))                  # untagged on the trunk: native 30
    assert r.ports() == [5] and tag_of(r.frame_to(5)) is None
    r = h.send(6, frame(mac(6)))                  # unlisted port: VLAN 1, alone
    assert r.outputs == [] and len(r.packet_ins) == 1
    # every frame keeps its payload through push/pop
    r = h.send(5, frame(mac(5)))
    assert r.ports() == [4]
    assert packet.Packet(r.frame_to(4)).get_protocol(arp.arp).src_mac == mac(5)


def test_vlans_isolate_and_unicast_crosses_trunk():
    h = Harness(ports=(1, 2, 3, 4, 5), config=vlan_config())
    h.send(1, frame(mac(1)))                      # mac(1) in VLAN 10 on port 1
    r = h.send(3, frame(mac(3), mac(1)))          # VLAN 20 host to it: not reachable
    assert 1 not in r.ports() and r.ports() == [4]
    assert tag_of(r.frame_to(4)) == 20
    r = h.send(4, frame(mac(4), mac(1), vid=10))  # VLAN 10 via trunk: delivered untagged
    assert r.ports() == [1] and tag_of(r.frame_to(1)) is None
    r = h.send(1, frame(mac(1), mac(4)))          # and back, tagged on the trunk
    assert r.ports() == [4] and tag_of(r.frame_to(4)) == 10


def test_foreign_tags_are_dropped():
    h = Harness(ports=(1, 2, 3, 4, 5), config=vlan_config())
    r = h.send(1, frame(mac(1), vid=10))          # tagged frame on an access port
    assert r.outputs == [] and r.packet_ins == []
    r = h.send(4, frame(mac(4), vid=99))          # VLAN not carried by the trunk
    assert r.outputs == [] and r.packet_ins == []
    r = h.send(4, frame(mac(4), vid=30))          # the native VLAN is untagged only
    assert r.outputs == [] and r.packet_ins == []


def test_trunk_without_native_drops_untagged():
    cfg = C.DatapathConfig(ports={1: C.PortConfig(1, "trunk", None, frozenset({10})),
                                  2: C.PortConfig(2, "access", 10)})
    h = Harness(ports=(1, 2), config=cfg)
    assert h.send(1, frame(mac(1))).outputs == []
    assert h.send(1, frame(mac(1), vid=10)).ports() == [2]


def test_same_mac_in_two_vlans_is_two_entries():
    h = Harness(ports=(1, 2, 3, 4, 5), config=vlan_config())
    h.send(1, frame(mac(7)))                      # VLAN 10, port 1
    h.send(3, frame(mac(7)))                      # VLAN 20, port 3: not a move
    assert h.l2.counters["moves"] == 0
    assert set(h.l2.macs) == {(10, mac(7)), (20, mac(7))}
    r = h.send(4, frame(mac(8), mac(7), vid=20))
    assert r.ports() == [3]
    r = h.send(4, frame(mac(8), mac(7), vid=10))
    assert r.ports() == [1]


def test_disabled_and_default_vlan_zero_ports_are_left_alone():
    cfg = C.DatapathConfig(default_vlan=0, ports={1: C.PortConfig(1, "access", 5),
                                                  2: C.PortConfig(2, "access", 5),
                                                  3: C.PortConfig(3, "disabled", None)})
    h = Harness(ports=(1, 2, 3, 4), config=cfg)
    assert h.send(1, frame(mac(1))).ports() == [2]
    for p in (3, 4):
        r = h.send(p, frame(mac(p)))
        assert r.outputs == [] and r.packet_ins == []


# ================================================================ moves and expiry

def test_mac_move_replaces_old_flows():
    h = Harness()
    h.send(1, frame(mac(1)))
    h.send(2, frame(mac(2), mac(1)))
    r = h.send(3, frame(mac(1), mac(2)), now=1.0)          # mac(1) now on port 3
    assert len(r.packet_ins) == 1 and r.ports() == [2]
    assert h.l2.counters["moves"] == 1
    assert (1, 1, m_int(mac(1))) not in h.learned_src()
    assert (3, 1, m_int(mac(1))) in h.learned_src()
    r = h.send(2, frame(mac(2), mac(1)), now=1.5)
    assert r.ports() == [3]
    # the old location sending again is a move back, not a loop of packet-ins
    r = h.send(1, frame(mac(1), mac(2)), now=2.0)
    assert len(r.packet_ins) == 1
    assert h.send(2, frame(mac(2), mac(1)), now=2.1).ports() == [1]
    assert h.l2.counters["moves"] == 2


def test_idle_expiry_of_a_silent_host_forgets_it_whole():
    h = Harness(config=C.DatapathConfig(idle_timeout=10))
    h.send(1, frame(mac(1)), now=0.0)
    h.send(2, frame(mac(2), mac(1)), now=0.0)
    # mac(1) keeps receiving (dst flow hit) but never sends: src flow idles out
    for t in (3.0, 6.0, 9.0):
        assert h.send(2, frame(mac(2), mac(1)), now=t).ports() == [1]
        h.tick(t)
    removed = h.tick(10.5)
    assert [(m.table_id, m.reason) for m in removed] == [(1, ofp.OFPRR_IDLE_TIMEOUT)]
    assert (1, mac(1)) not in h.l2.macs
    # ... and its dst flow went with it: traffic to it floods again
    assert all(d[1] != m_int(mac(1)) for d in h.learned_dst())
    assert h.send(2, frame(mac(2), mac(1)), now=11.0).ports() == [1, 3, 4]
    # its next frame teaches it again
    r = h.send(1, frame(mac(1), mac(2)), now=12.0)
    assert len(r.packet_ins) == 1 and (1, mac(1)) in h.l2.macs


def test_idle_expiry_of_dst_side_forgets_a_send_only_host():
    h = Harness(config=C.DatapathConfig(idle_timeout=10))
    h.send(1, frame(mac(1)), now=0.0)
    for t in (4.0, 8.0, 10.5):                   # sends (src flow busy), nobody answers
        h.send(1, frame(mac(1)), now=t)
        h.tick(t)
    removed = h.tick(11.5)                        # dst idle timeout 11 s
    assert [(m.table_id, m.reason) for m in removed] == [(2, ofp.OFPRR_IDLE_TIMEOUT)]
    assert h.l2.macs == {} and h.learned_src() == []
    assert len(h.send(1, frame(mac(1)), now=12.0).packet_ins) == 1


def test_flow_removed_of_stale_or_own_deletes_is_ignored():
    h = Harness()
    h.send(1, frame(mac(1)), now=0.0)
    e = h.l2.macs[(1, mac(1))]
    stale = parser.OFPFlowRemoved(h.sw.dp, e.cookie + 1000, L.PRIO_LEARNED,
                                  ofp.OFPRR_IDLE_TIMEOUT, 1, 0, 0, 0, 0, 0, 0, parser.OFPMatch())
    assert h.l2.flow_removed(stale, 1.0) == []
    other = parser.OFPFlowRemoved(h.sw.dp, 0x1234, 1, ofp.OFPRR_IDLE_TIMEOUT, 1, 0, 0, 0, 0,
                                  0, 0, parser.OFPMatch())
    assert h.l2.flow_removed(other, 1.0) == []
    assert (1, mac(1)) in h.l2.macs
    # a move deletes the old flows (FLOW_REMOVED reason DELETE comes back:
    # Harness.apply feeds it to the logic, which must not forget the new entry)
    h.send(2, frame(mac(1)), now=2.0)
    assert h.l2.macs[(1, mac(1))].port == 2
    assert h.learned_src() == [(2, 1, m_int(mac(1)))]


def test_flow_deleted_by_someone_else_forgets_the_mac():
    h = Harness()
    h.send(1, frame(mac(1)), now=0.0)
    dm = parser.OFPFlowMod(h.sw.dp, table_id=2, command=ofp.OFPFC_DELETE,
                           out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                           match=parser.OFPMatch(eth_dst=mac(1)))
    for m in h.sw.apply([dm], 1.0):
        h.apply(h.l2.flow_removed(m, 1.0))
    assert h.l2.macs == {} and h.learned_src() == []


def test_mac_limit_per_vlan():
    h = Harness(config=C.DatapathConfig(mac_limit=2))
    for n in (1, 2, 3):
        h.send(n, frame(mac(n)), now=0.0)
    assert set(h.l2.macs) == {(1, mac(1)), (1, mac(2))}
    assert h.l2.counters["limited"] == 1
    r = h.send(3, frame(mac(3)), now=1.0)         # not asked again while the pass flow lives
    assert r.packet_ins == [] and r.ports() == [1, 2, 4]
    assert h.send(1, frame(mac(1), mac(3)), now=1.0).ports() == [2, 3, 4]   # floods
    h.tick(L.NOLEARN_HARD_TIMEOUT + 1)
    assert len(h.send(3, frame(mac(3)), now=12.0).packet_ins) == 1


# ================================================================ spanning tree

def test_blocked_port_neither_floods_nor_forwards():
    h = Harness()
    h.send(3, frame(mac(3)), now=0.0)
    msgs = h.apply(h.l2.set_port_forwarding(3, False, 1.0))
    assert msgs
    r = h.send(1, frame(mac(1)), now=1.0)
    assert r.ports() == [2, 4]                    # 3 left out of the flood
    assert h.send(1, frame(mac(1), mac(3)), now=1.1).ports() == [2, 4]   # mac(3) flushed
    r = h.send(3, frame(mac(3), mac(1)), now=1.2)
    assert r.outputs == [] and r.packet_ins == []   # nothing from 3 either
    assert all(3 not in f.outputs() for f in h.sw.flows)
    # back to forwarding: floods reach 3 again
    h.apply(h.l2.set_port_forwarding(3, True, 2.0))
    assert h.send(1, frame(mac(1)), now=2.0).ports() == [2, 3, 4]
    assert h.send(3, frame(mac(3), mac(1)), now=2.1).ports() == [1]


def test_learning_state_learns_without_forwarding():
    h = Harness()
    h.apply(h.l2.set_port_forwarding(3, False, 0.0, learning=True))
    r = h.send(3, frame(mac(3)), now=0.5)
    assert r.outputs == [] and len(r.packet_ins) == 1
    assert h.l2.macs[(1, mac(3))].installed is False
    assert h.send(1, frame(mac(1), mac(3)), now=0.6).ports() == [2, 4]
    # learning -> forwarding: the MAC learned meanwhile is installed at once
    msgs = h.apply(h.l2.set_port_forwarding(3, True, 1.0))
    assert any(isinstance(m, parser.OFPFlowMod) and m.table_id == 2 and
               m.command == ofp.OFPFC_ADD and m.cookie == h.l2.macs[(1, mac(3))].cookie
               for m in msgs)
    assert h.send(1, frame(mac(1), mac(3)), now=1.1).ports() == [3]
    # forwarding -> discarding forgets it
    h.apply(h.l2.set_port_forwarding(3, False, 2.0))
    assert (1, mac(3)) not in h.l2.macs


def test_ports_start_blocked_when_stp_says_so():
    h = Harness(forwarding_default=False)
    r = h.send(1, frame(mac(1)))
    assert r.outputs == [] and r.packet_ins == []
    for p in (1, 2):
        h.apply(h.l2.set_port_forwarding(p, True, 0.0))
    assert h.send(1, frame(mac(1))).ports() == [2]


def test_state_set_before_the_switch_connects_is_kept():
    l2 = L.L2Switch()
    assert l2.set_port_forwarding(2, False, 0.0) == []    # no switch yet
    sw = FakeSwitch([1, 2, 3])
    sw.apply(l2.switch_up(sw.dp, 0.0))
    sw.apply(l2.port_desc([ofport(p) for p in (1, 2, 3)], 0.0))
    assert sw.receive(1, frame(mac(1))).ports() == [3]
    # and survives a reconnect
    sw2 = FakeSwitch([1, 2, 3])
    sw2.apply(l2.switch_up(sw2.dp, 1.0))
    sw2.apply(l2.port_desc([ofport(p) for p in (1, 2, 3)], 1.0))
    assert sw2.receive(1, frame(mac(1))).ports() == [3]


def test_flush_one_port_and_all():
    h = Harness()
    for n in (1, 2, 3):
        h.send(n, frame(mac(n)))
    flood_before = [f for f in h.sw.table(2) if L.cookie_kind(f.cookie) == L.K_FLOOD]
    h.apply(h.l2.flush([2], 1.0))
    assert set(h.l2.macs) == {(1, mac(1)), (1, mac(3))}
    assert [s[0] for s in h.learned_src()] == [1, 3]
    assert [d[2] for d in h.learned_dst()] == [(1,), (3,)]
    h.apply(h.l2.flush(None, 2.0))
    assert h.l2.macs == {} and h.learned_src() == [] and h.learned_dst() == []
    # flooding and the fixed pipeline are untouched
    assert [f for f in h.sw.table(2) if L.cookie_kind(f.cookie) == L.K_FLOOD] == flood_before
    r = h.send(1, frame(mac(1)), now=3.0)
    assert r.ports() == [2, 3, 4] and len(r.packet_ins) == 1


@pytest.mark.parametrize("removed_on_replace", [False, True])
def test_set_ageing_reinstalls_with_short_timeout(removed_on_replace):
    h = Harness(config=C.DatapathConfig(idle_timeout=300), removed_on_replace=removed_on_replace)
    h.send(1, frame(mac(1)), now=0.0)
    h.apply(h.l2.set_ageing(15, 1.0))
    src = [f for f in h.sw.table(1) if L.cookie_kind(f.cookie) == L.K_LEARNED]
    assert [f.idle_timeout for f in src] == [15]
    # a switch reporting the replaced flows as removed does not make us forget
    assert (1, mac(1)) in h.l2.macs and len(h.learned_dst()) == 1
    h.tick(17.0)
    assert h.l2.macs == {}
    assert h.l2.set_ageing(None, 20.0) == []      # nothing learned: nothing to redo
    assert h.l2.idle_timeout == 300


# ================================================================ ports

def test_link_down_flushes_and_leaves_the_flood():
    h = Harness()
    h.send(2, frame(mac(2)))
    h.sw.ports[2] = False
    st = parser.OFPPortStatus(h.sw.dp, ofp.OFPPR_MODIFY, ofport(2, up=False))
    h.apply(h.l2.port_status(st, 1.0))
    assert (1, mac(2)) not in h.l2.macs
    flood = [f for f in h.sw.table(2) if L.cookie_kind(f.cookie) == L.K_FLOOD]
    assert all(2 not in f.outputs() for f in flood)
    assert not any(f.match.get("in_port", (0,))[0] == 2 for f in flood)
    h.sw.ports[2] = True
    h.apply(h.l2.port_status(parser.OFPPortStatus(h.sw.dp, ofp.OFPPR_MODIFY, ofport(2)), 2.0))
    assert h.send(1, frame(mac(1)), now=2.0).ports() == [2, 3, 4]


def test_port_add_and_delete():
    h = Harness(ports=(1, 2))
    h.sw.ports[3] = True
    h.apply(h.l2.port_status(parser.OFPPortStatus(h.sw.dp, ofp.OFPPR_ADD, ofport(3)), 1.0))
    assert h.send(1, frame(mac(1)), now=1.0).ports() == [2, 3]
    h.send(3, frame(mac(3)), now=1.1)
    h.apply(h.l2.port_status(parser.OFPPortStatus(h.sw.dp, ofp.OFPPR_DELETE, ofport(3)), 2.0))
    assert not any(f.match.get("in_port", (0,))[0] == 3 for f in h.sw.flows)
    assert all(3 not in f.outputs() for f in h.sw.flows)
    assert (1, mac(3)) not in h.l2.macs
    assert h.send(1, frame(mac(1)), now=2.0).ports() == [2]


def test_flood_regeneration_sends_only_changes():
    h = Harness(ports=(1, 2, 3, 4, 5), config=vlan_config())
    before = len(h.sent)
    h.apply(h.l2.set_port_forwarding(3, False, 1.0))  # VLAN 20: ports 3 and 4
    new = [roundtrip(m) for m in h.sent[before:] if isinstance(m, parser.OFPFlowMod)]
    flood = [m for m in new if m.table_id == 2 and m.priority == L.PRIO_FLOOD]
    # VLAN 20 flows change (4's loses port 3, 3's goes); VLAN 10/30 ones are not resent
    assert {(m.command, m.match["in_port"]) for m in flood} == {
        (ofp.OFPFC_ADD, 4), (ofp.OFPFC_DELETE_STRICT, 3)}


def test_local_port_is_ignored():
    h = Harness(ports=(1, 2))
    h.apply(h.l2.port_status(parser.OFPPortStatus(h.sw.dp, ofp.OFPPR_ADD,
                                                  ofport(ofp.OFPP_LOCAL)), 1.0))
    assert ofp.OFPP_LOCAL not in h.l2.ports


def test_reconfigure_moves_a_port_to_another_vlan():
    h = Harness(ports=(1, 2, 3, 4, 5), config=vlan_config())
    h.send(2, frame(mac(2)))
    new = dict(vlan_config().ports)
    new[2] = C.PortConfig(2, "access", 20)
    h.apply(h.l2.reconfigure(C.DatapathConfig(dpid=1, ports=new), 1.0))
    assert (10, mac(2)) not in h.l2.macs
    assert h.send(1, frame(mac(1)), now=1.0).ports() == [4]
    assert h.send(3, frame(mac(3)), now=1.0).ports() == [2, 4]
    h.apply(h.l2.reconfigure(C.DatapathConfig(dpid=1, ports=new, table=10), 2.0))
    assert {f.table_id for f in h.sw.flows} == {10, 11, 12}


def test_status():
    h = Harness(ports=(1, 2, 3, 4, 5), config=vlan_config())
    h.send(4, frame(mac(4), vid=20), now=1.0)
    st = h.l2.status(3.0)
    assert st["macs"] == [dict(vlan=20, mac=mac(4), port=4, age=2.0, installed=True)]
    p4 = [p for p in st["ports"] if p["port"] == 4][0]
    assert p4["mode"] == "trunk" and p4["untagged"] == 30 and p4["tagged"] == [10, 20]


# ================================================================ config schema

def load(text):
    return load_config("l2.toml", {"l2": C.validate}, text=text)["l2"]


def test_config_defaults_without_section():
    assert load_config("x.toml", {"l2": C.validate}, text="")["l2"] is None
    cfg = C.L2Config()
    dc = cfg.for_dpid(7)
    assert dc.port(3) == C.PortConfig(3, "access", 1, frozenset())
    assert dc.idle_timeout == C.DEFAULT_IDLE_TIMEOUT and dc.mac_limit == 0 and dc.table == 0


def test_config_full():
    cfg = load("""
[l2]
idle_timeout = 120
mac_limit = 50
default_vlan = 1

[[l2.datapath]]
dpid = "0x10"
name = "sw1"
idle_timeout = 60
  [[l2.datapath.port]]
  port = [1, 2]
  vlan = 10
  [[l2.datapath.port]]
  port = 4
  mode = "trunk"
  vlans = [10, 20]
  native = 30
  [[l2.datapath.port]]
  port = 5
  mode = "disabled"

[[l2.datapath]]
dpid = 2
default_vlan = 0
""")
    d = cfg.for_dpid(16)
    assert d.name == "sw1" and d.idle_timeout == 60 and d.mac_limit == 50
    assert d.port(1) == C.PortConfig(1, "access", 10, frozenset())
    assert d.port(2).untagged == 10
    assert d.port(4) == C.PortConfig(4, "trunk", 30, frozenset({10, 20}))
    assert d.port(4).vlans == {10, 20, 30}
    assert d.port(5) is None and d.port(9).untagged == 1
    assert cfg.for_dpid(2).port(1) is None
    other = cfg.for_dpid(3)
    assert other.idle_timeout == 120 and other.port(1).untagged == 1


@pytest.mark.parametrize("body,where,what", [
    ("[l2]\nidle_timeout = 0\n", "line 2: l2.idle_timeout", "1..60000"),
    ("[l2]\nbogus = 1\n", "line 2: l2.bogus", "unknown key"),
    ("[l2]\n[[l2.datapath]]\nport = []\n", "l2.datapath[0]", "missing 'dpid'"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 1\nvlan = 4095\n",
     "line 6: l2.datapath[0].port[0].vlan", "1..4094"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 1\nmode = \"trunk\"\n"
     "vlans = [10]\nnative = 10\n", "line 8: l2.datapath[0].port[0].native", "also in 'vlans'"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 1\nvlans = [10]\n",
     "l2.datapath[0].port[0].vlans", "trunk ports"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 1\nmode = \"trunk\"\n",
     "l2.datapath[0].port[0]", "needs 'vlans'"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 1\n"
     "[[l2.datapath.port]]\nport = [2, 1]\n", "line 7: l2.datapath[0].port[1].port",
     "port 1 configured twice"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath]]\ndpid = \"0x1\"\n",
     "line 5: l2.datapath[1].dpid", "configured twice"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 0\n",
     "line 5: l2.datapath[0].port[0].port", "port number"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 1\nmode = \"hybrid\"\n",
     "l2.datapath[0].port[0].mode", "expected one of"),
    ("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 1\nmode = \"trunk\"\n"
     "vlans = [10, 10]\n", "l2.datapath[0].port[0].vlans[1]", "listed twice"),
])
def test_config_errors(body, where, what):
    with pytest.raises(ConfigError) as ei:
        load(body)
    msg = str(ei.value)
    assert msg.startswith("l2.toml: ") and where in msg and what in msg, msg


def test_config_is_registered():
    from controller.config import registered_sections
    assert registered_sections()["l2"] is C.validate


# ================================================================ the adapter

def test_app_api_reaches_the_logic(monkeypatch):
    """L2App with a stand-in datapath: events in, messages out; the STP
    API records states before the switch is seen."""
    from controller.l2 import app as A

    sent = []
    dp = FakeSwitch([1, 2, 3]).dp
    dp.send_msg = sent.append
    a = A.L2App()
    a.clock = lambda: 5.0
    a.set_port_forwarding(1, 3, False)            # before the switch: remembered
    ev = type("Ev", (), {})()
    ev.msg = parser.OFPSwitchFeatures(dp)
    ev.msg.datapath = dp
    a._switch_features(ev)
    assert isinstance(sent[-1], parser.OFPPortDescStatsRequest)
    ev.msg = parser.OFPPortDescStatsReply(dp, body=[ofport(p) for p in (1, 2, 3)])
    ev.msg.datapath = dp
    a._port_desc(ev)
    sw = FakeSwitch([1, 2, 3])
    sw.apply(sent)
    assert sw.receive(1, frame(mac(1))).ports() == [2]
    assert a.logic(1).status(5.0)["ports"][2]["forwarding"] is False
    del sent[:]
    a.flush(1, [2])
    assert sent and all(isinstance(m, parser.OFPFlowMod) for m in sent)
    assert "0000000000000001" in a.status()


def test_app_reload_config(tmp_path, monkeypatch):
    from controller.l2 import app as A

    sent = []
    dp = FakeSwitch([1, 2, 3]).dp
    dp.send_msg = sent.append
    a = A.L2App()
    ev = type("Ev", (), {})()
    ev.msg = parser.OFPSwitchFeatures(dp)
    ev.msg.datapath = dp
    a._switch_features(ev)
    ev.msg = parser.OFPPortDescStatsReply(dp, body=[ofport(p) for p in (1, 2, 3)])
    ev.msg.datapath = dp
    a._port_desc(ev)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[l2]\n[[l2.datapath]]\ndpid = 1\n[[l2.datapath.port]]\nport = 3\nvlan = 7\n"
                   "[vrrp]\nwhatever = 1\n")       # a sibling app's section is left alone
    a.reload_config(str(cfg))
    sw = FakeSwitch([1, 2, 3])
    sw.apply(sent)
    assert sw.receive(1, frame(mac(1))).ports() == [2]
    assert sw.receive(3, frame(mac(3))).ports() == []
    cfg.write_text("[l2]\nidle_timeout = -1\n")
    with pytest.raises(ConfigError):
        a.reload_config(str(cfg))
    assert a.logic(1).config.port(3).untagged == 7

