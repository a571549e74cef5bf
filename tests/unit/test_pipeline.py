"""OpenFlow 1.3 pipeline semantics of ext/pipeline.c through the facade,
with dummy ports and scapy frames (no root, no engine)."""
import os
import select
import time

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.contrib.mpls import MPLS
from scapy.packet import Raw

from datapath.fastpath import Datapath, DummyPort, FlowError
from datapath.model import (
    OFPFF_CHECK_OVERLAP, OFPFF_RESET_COUNTS, OFPGT_ALL, OFPGT_FF, OFPGT_INDIRECT,
    OFPGT_SELECT, OFPMBT_DROP, OFPMBT_DSCP_REMARK, OFPMF_KBPS, OFPMF_PKTPS, OFPMF_BURST,
    OFPP_ALL, OFPP_ANY, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL,
    OFPP_TABLE, ApplyActions, Band, Bucket, ClearActions, DecNwTtl, FlowSpec, GotoTable,
    Group, GroupSpec, Match, Meter, MeterSpec, Output, PopMpls, PopVlan, PushVlan, SetField,
    SetNwTtl, WriteActions, WriteMetadata,
)

OFPPC_PORT_DOWN, OFPPC_NO_RECV, OFPPC_NO_FWD, OFPPC_NO_PACKET_IN = 1, 4, 32, 64
MAC1, MAC2, MAC3 = "00:00:00:00:00:01", "00:00:00:00:00:02", "00:00:00:00:00:03"


# ---------------------------------------------------------------- helpers
class Env:
    def __init__(self, n_ports=4, n_tables=8):
        self.dp = Datapath(n_tables)
        self.ports = {}
        for i in range(1, n_ports + 1):
            self.ports[i] = DummyPort(f"p{i}")
            self.dp.attach_port(i, self.ports[i])

    def send(self, in_port, frame, now=None, count=1):
        for _ in range(count):
            self.ports[in_port].inject(bytes(frame))
        return self.dp.run_dummy(now=now)

    def out(self):
        """{port: [frames]} for ports that transmitted."""
        res = {}
        for i, p in self.ports.items():
            tx = p.take_tx()
            if tx:
                res[i] = tx
        return res

    def outports(self):
        return sorted(self.out())

    def add(self, match=None, insns=(), table=0, prio=0x8000, **kw):
        m = Match()
        for k, v in (match or {}).items():
            if isinstance(v, tuple):
                m.set(k, v[0], v[1])
            else:
                m.set(k, v)
        spec = FlowSpec(table_id=table, priority=prio, match=m, instructions=tuple(insns), **kw)
        self.dp.flow_add(spec)
        return spec


def apply(*acts):
    return ApplyActions(tuple(acts))


def write(*acts):
    return WriteActions(tuple(acts))


def udp(src="10.0.0.1", dst="10.0.0.2", sport=1000, dport=2000, **kw):
    return Ether(src=kw.pop("esrc", MAC1), dst=kw.pop("edst", MAC2)) / \
        IP(src=src, dst=dst, ttl=kw.pop("ttl", 64), tos=kw.pop("tos", 0)) / \
        UDP(sport=sport, dport=dport) / Raw(b"x" * kw.pop("plen", 18))


def tcp(src="10.0.0.1", dst="10.0.0.2", sport=1000, dport=80):
    return Ether(src=MAC1, dst=MAC2) / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport) / \
        Raw(b"hello")


def mac(s):
    return int(s.replace(":", ""), 16)


def ip4(s):
    return int.from_bytes(bytes(int(x) for x in s.split(".")), "big")


@pytest.fixture
def env():
    return Env()


# ---------------------------------------------------------------- basics
def test_output_and_counters(env):
    env.add({"in_port": 1}, [apply(Output(2))], cookie=0x77)
    f = udp()
    env.send(1, f)
    out = env.out()
    assert out == {2: [bytes(f)]}
    (st,) = env.dp.flows()
    assert (st.packet_count, st.byte_count) == (1, len(f))
    assert st.spec.cookie == 0x77
    ps = env.dp.port_stats()
    assert ps[1]["rx_packets"] == 1 and ps[1]["rx_bytes"] == len(f)
    assert ps[2]["tx_packets"] == 1 and ps[2]["tx_bytes"] == len(f)
    ts = env.dp.table_stats()
    assert ts[0] == dict(table_id=0, active_count=1, lookup_count=1, matched_count=1)
    # the second packet is a cache hit and still counts everywhere
    env.send(1, f)
    assert env.outports() == [2]
    assert env.dp.flows()[0].packet_count == 2
    assert env.dp.table_stats()[0]["matched_count"] == 2
    assert env.dp.stats()["hits"] == 1


def test_table_miss_without_entry_drops(env):
    env.add({"in_port": 3}, [apply(Output(2))])
    env.send(1, udp())
    assert env.out() == {}
    ts = env.dp.table_stats()[0]
    assert ts["lookup_count"] == 1 and ts["matched_count"] == 0
    assert env.dp.upcalls() == []
    assert env.dp.stats()["dropped"] == 1


def test_table_miss_entry_controller_no_match(env):
    env.add({}, [apply(Output(OFPP_CONTROLLER, 128))], prio=0, cookie=0xabc)
    f = udp()
    env.send(1, f)
    (u,) = env.dp.upcalls()
    assert u.reason == 0 and u.table_id == 0 and u.cookie == 0xabc
    assert u.in_port == 1 and u.data == bytes(f) and u.total_len == len(f)
    # a priority-0 flow that matches something is not the table-miss entry
    env.dp.flow_delete()
    env.add({"in_port": 1}, [apply(Output(OFPP_CONTROLLER))], prio=0, cookie=5)
    env.send(1, f)
    (u,) = env.dp.upcalls()
    assert u.reason == 1 and u.cookie == 5


def test_controller_reason_action_table_and_metadata(env):
    env.add({}, [WriteMetadata(0x1234, 0xffff), GotoTable(3)])
    env.add({}, [apply(Output(OFPP_CONTROLLER))], table=3, cookie=0x99)
    env.send(2, udp())
    (u,) = env.dp.upcalls()
    assert (u.reason, u.table_id, u.cookie, u.metadata, u.in_port) == (1, 3, 0x99, 0x1234, 2)


def test_upcall_fd_and_no_packet_in(env):
    env.add({}, [apply(Output(OFPP_CONTROLLER))])
    fd = env.dp.upcall_fd()
    assert select.select([fd], [], [], 0)[0] == []
    env.send(1, udp())
    assert select.select([fd], [], [], 0)[0] == [fd]
    assert len(env.dp.upcalls()) == 1
    assert select.select([fd], [], [], 0)[0] == []
    env.dp.set_port_config(1, OFPPC_NO_PACKET_IN, OFPPC_NO_PACKET_IN)
    env.send(1, udp())
    assert env.dp.upcalls() == []


def test_upcall_ring_full_counts_lost(env):
    env.add({}, [apply(Output(OFPP_CONTROLLER))])
    n = 1100
    for i in range(n):
        env.ports[1].inject(bytes(udp(sport=i)))
    env.dp.run_dummy()
    got = []
    while True:
        batch = env.dp.upcalls(max=500)
        if not batch:
            break
        got += batch
    st = env.dp.stats()
    assert len(got) + st["upcall_lost"] == n
    assert st["upcall_lost"] > 0
    assert [u.data for u in got[:3]] == [bytes(udp(sport=i)) for i in range(3)]


def test_priorities(env):
    env.add({"eth_type": 0x800}, [apply(Output(2))], prio=10)
    env.add({"eth_type": 0x800, "ip_proto": 17}, [apply(Output(3))], prio=20)
    env.add({}, [apply(Output(4))], prio=30)
    env.send(1, udp())
    assert env.outports() == [4]
    env.dp.flow_delete(match=Match(), priority=30, strict=True)
    env.send(1, udp())
    assert env.outports() == [3]
    env.send(1, tcp())
    assert env.outports() == [2]


# ---------------------------------------------------------------- masks
def _frame_for(field):
    if field in ("arp_spa", "arp_tpa", "arp_sha", "arp_tha"):
        return Ether(src=MAC1, dst=MAC2) / ARP(op=1, hwsrc="02:11:22:33:44:55", psrc="10.1.2.3",
                                               hwdst="02:66:77:88:99:aa", pdst="10.9.8.7")
    if field in ("ipv6_src", "ipv6_dst", "ipv6_flabel", "ipv6_exthdr"):
        return Ether(src=MAC1, dst=MAC2) / IPv6(src="2001:db8::1:2", dst="2001:db8::abcd",
                                                fl=0x12345) / IPv6ExtHdrHopByHop() / \
            UDP(sport=1, dport=2)
    if field == "vlan_vid":
        return Ether(src=MAC1, dst=MAC2) / Dot1Q(vlan=0x123) / IP(src="1.2.3.4") / UDP()
    if field == "pbb_isid":
        return Ether(src=MAC1, dst=MAC2, type=0x88e7) / Raw(bytes([0, 0x12, 0x34, 0x56]) +
                                                            bytes(Ether(src=MAC3, dst=MAC1)) +
                                                            b"\x00" * 20)
    return Ether(src="02:ab:cd:ef:01:23", dst="0e:12:34:56:78:9a") / \
        IP(src="172.16.5.4", dst="192.168.77.66") / UDP()


PREREQ = {
    "ipv4_src": {"eth_type": 0x800}, "ipv4_dst": {"eth_type": 0x800},
    "arp_spa": {"eth_type": 0x806}, "arp_tpa": {"eth_type": 0x806},
    "arp_sha": {"eth_type": 0x806}, "arp_tha": {"eth_type": 0x806},
    "ipv6_src": {"eth_type": 0x86dd}, "ipv6_dst": {"eth_type": 0x86dd},
    "ipv6_flabel": {"eth_type": 0x86dd}, "ipv6_exthdr": {"eth_type": 0x86dd},
    "pbb_isid": {"eth_type": 0x88e7},
}
MASKABLE = ["eth_dst", "eth_src", "vlan_vid", "ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa",
            "arp_sha", "arp_tha", "ipv6_src", "ipv6_dst", "ipv6_flabel", "pbb_isid",
            "ipv6_exthdr"]


@pytest.mark.parametrize("field", MASKABLE)
def test_mask_every_maskable_field(field):
    from datapath.model import FIELD_BITS
    from ext._fastpath import parse_frame
    frame = bytes(_frame_for(field))
    value = parse_frame(frame)[0][field]
    bits = FIELD_BITS[field]
    # mask: every other bit of the low half, plus the top bit
    mask = sum(1 << b for b in range(0, bits, 2)) | (1 << (bits - 1))
    if field == "vlan_vid":
        mask |= 0x1000
    inside = next(b for b in range(bits) if mask >> b & 1 and not (field == "vlan_vid" and b == 12))
    outside = next(b for b in range(bits) if not mask >> b & 1)
    for fv, expect in ((value, True), (value ^ (1 << outside), True),
                       (value ^ (1 << inside), False)):
        e = Env(n_ports=2)
        e.add(dict(PREREQ.get(field, {}), **{field: (fv & mask, mask)}), [apply(Output(2))])
        e.send(1, frame)
        assert (e.outports() == [2]) is expect, (field, hex(fv), hex(mask), expect)


def test_mask_metadata_and_tunnel_id(env):
    env.add({}, [WriteMetadata(0xf0f0_0000_0000_1234), apply(SetField("tunnel_id", 0xabcd)),
                 GotoTable(1)])
    env.add({"metadata": (0x1030, 0xf0f0), "tunnel_id": (0xab00, 0xff00)},
            [apply(Output(2))], table=1)
    env.send(1, udp())
    assert env.outports() == [2]
    env.dp.flow_delete(table_id=1)
    env.add({"metadata": (0x2000, 0xf000)}, [apply(Output(3))], table=1)
    env.add({"metadata": (0xf0f0 << 48, 0xffff << 48)}, [apply(Output(4))], table=1, prio=1)
    env.send(1, udp())
    assert env.outports() == [4]


def test_vlan_vid_present_and_none(env):
    env.add({"vlan_vid": (0x1000, 0x1000)}, [apply(Output(2))])
    env.add({"vlan_vid": 0}, [apply(Output(3))])
    env.send(1, Ether() / Dot1Q(vlan=5) / IP() / UDP())
    assert env.outports() == [2]
    env.send(1, udp())
    assert env.outports() == [3]


# ---------------------------------------------------------------- instructions
def test_goto_chain_and_metadata(env):
    env.add({"in_port": 1}, [WriteMetadata(0x5, 0xf), GotoTable(2)])
    env.add({"metadata": 5}, [WriteMetadata(0x50, 0xf0), GotoTable(5)], table=2)
    env.add({"metadata": 0x55}, [apply(Output(4))], table=5)
    env.send(1, udp())
    assert env.outports() == [4]
    ts = env.dp.table_stats()
    assert [ts[i]["matched_count"] for i in (0, 1, 2, 5)] == [1, 0, 1, 1]
    assert ts[1]["lookup_count"] == 0


def test_miss_in_later_table_drops_action_set(env):
    env.add({}, [write(Output(2)), GotoTable(1)])
    env.add({"in_port": 9}, [apply(Output(3))], table=1)
    env.send(1, udp())
    assert env.out() == {}
    ts = env.dp.table_stats()
    assert ts[1]["lookup_count"] == 1 and ts[1]["matched_count"] == 0


def test_apply_vs_write(env):
    # apply: immediate, visible to later outputs; write: at the end
    env.add({}, [apply(Output(2), SetField("ipv4_dst", ip4("9.9.9.9")), Output(3)),
                 write(SetField("ipv4_src", ip4("8.8.8.8")), Output(4))])
    env.send(1, udp())
    out = env.out()
    assert Ether(out[2][0])[IP].dst == "10.0.0.2"
    assert Ether(out[3][0])[IP].dst == "9.9.9.9" and Ether(out[3][0])[IP].src == "10.0.0.1"
    p4 = Ether(out[4][0])
    assert (p4[IP].src, p4[IP].dst) == ("8.8.8.8", "9.9.9.9")


def test_apply_rewrite_visible_to_later_tables(env):
    env.add({}, [apply(SetField("ipv4_dst", ip4("1.1.1.1"))), GotoTable(1)])
    env.add({"eth_type": 0x800, "ipv4_dst": ip4("1.1.1.1")}, [apply(Output(3))], table=1)
    env.add({}, [apply(Output(4))], table=1, prio=0)
    env.send(1, udp())
    assert env.outports() == [3]


def test_push_vlan_then_match_vid(env):
    env.add({}, [apply(PushVlan(0x8100), SetField("vlan_vid", 0x1000 | 42)), GotoTable(1)])
    env.add({"vlan_vid": 0x1000 | 42}, [apply(Output(2))], table=1)
    env.send(1, udp())
    out = env.out()
    assert Ether(out[2][0])[Dot1Q].vlan == 42


def test_clear_actions(env):
    env.add({}, [write(Output(2)), GotoTable(1)])
    env.add({}, [ClearActions(), write(Output(3))], table=1)
    env.send(1, udp())
    assert env.outports() == [3]


def test_write_actions_replace_same_type(env):
    env.add({}, [write(Output(2), SetField("ipv4_dst", ip4("5.5.5.5"))), GotoTable(1)])
    env.add({}, [write(Output(3))], table=1)
    env.send(1, udp())
    out = env.out()
    assert list(out) == [3]
    assert Ether(out[3][0])[IP].dst == "5.5.5.5"


def test_action_set_order(env):
    # written "backwards": output first, then set_field, then push_vlan;
    # the action set runs push-vlan, set-field, output.
    env.add({}, [write(Output(2), SetField("vlan_vid", 0x1000 | 7), PushVlan(0x8100))])
    env.send(1, udp())
    out = env.out()
    p = Ether(out[2][0])
    assert p[Dot1Q].vlan == 7
    # dec ttl before set ttl would be overridden: set-field group (set_nw_ttl)
    # runs after dec ttl
    env.dp.flow_delete()
    env.add({}, [write(SetNwTtl(9), DecNwTtl(), Output(2))])
    env.send(1, udp(ttl=64))
    assert Ether(env.out()[2][0])[IP].ttl == 9


def test_action_set_group_wins_over_output(env):
    env.dp.group_add(GroupSpec(1, OFPGT_INDIRECT, (Bucket(actions=(Output(4),)),)))
    env.add({}, [write(Output(2), Group(1))])
    env.send(1, udp())
    assert env.outports() == [4]


def test_pop_mpls_is_not_cached_wrongly(env):
    env.add({"eth_type": 0x8847}, [apply(PopMpls(0x0800)), GotoTable(1)])
    env.add({"eth_type": 0x800, "ipv4_dst": ip4("1.1.1.1")}, [apply(Output(2))], table=1)
    env.add({"eth_type": 0x800, "ipv4_dst": ip4("2.2.2.2")}, [apply(Output(3))], table=1)

    def mpls(dst):
        return Ether(src=MAC1, dst=MAC2, type=0x8847) / MPLS(label=100, s=1, ttl=9) / \
            IP(src="10.0.0.1", dst=dst) / UDP()
    env.send(1, mpls("1.1.1.1"))
    assert env.outports() == [2]
    env.send(1, mpls("2.2.2.2"))      # same key before the pop
    assert env.outports() == [3]
    assert env.dp.stats()["nocache"] == 2


def test_invalid_ttl(env):
    env.add({}, [apply(DecNwTtl(), Output(2))])
    env.send(1, udp(ttl=1))
    assert env.out() == {}
    assert env.dp.upcalls() == []
    env.send(1, udp(ttl=5))
    assert Ether(env.out()[2][0])[IP].ttl == 4
    env.dp.invalid_ttl_to_controller = True
    env.send(1, udp(ttl=1))
    assert env.out() == {}
    (u,) = env.dp.upcalls()
    assert u.reason == 2 and u.table_id == 0


# ---------------------------------------------------------------- timeouts
def test_hard_and_idle_timeouts():
    e = Env()
    t0 = time.monotonic()
    e.add({"in_port": 1}, [apply(Output(2))], hard_timeout=10, cookie=1)
    e.add({"in_port": 2}, [apply(Output(1))], idle_timeout=5, cookie=2)
    e.add({"in_port": 3}, [apply(Output(1))], cookie=3)
    assert e.dp.expire(t0 + 1) == []
    e.send(2, udp(), now=t0 + 4)          # refreshes the idle flow
    assert sorted(e.out()) == [1]
    assert e.dp.expire(t0 + 8) == []
    got = e.dp.expire(t0 + 9.5)
    assert [(s.spec.cookie, r) for s, r in got] == [(2, 0)]
    assert got[0][0].packet_count == 1
    got = e.dp.expire(t0 + 11)
    assert [(s.spec.cookie, r) for s, r in got] == [(1, 1)]
    assert [s.spec.cookie for s in e.dp.flows()] == [3]
    # the expired flow no longer forwards (cache invalidated)
    e.send(2, udp())
    assert e.out() == {}


# ---------------------------------------------------------------- ports
def test_in_port_flood_all(env):
    env.add({"in_port": 1}, [apply(Output(1))])
    env.send(1, udp())
    assert env.out() == {}                # output to the ingress port: dropped
    env.dp.flow_delete()
    env.add({"in_port": 1}, [apply(Output(OFPP_IN_PORT))])
    env.send(1, udp())
    assert env.outports() == [1]
    env.dp.flow_delete()
    env.add({}, [apply(Output(OFPP_FLOOD))])
    env.send(2, udp())
    assert env.outports() == [1, 3, 4]
    env.dp.flow_delete()
    env.add({}, [apply(Output(OFPP_ALL))])
    env.send(3, udp())
    assert env.outports() == [1, 2, 4]


def test_no_fwd_port_down_link_down_no_recv(env):
    env.add({}, [apply(Output(OFPP_FLOOD))])
    env.dp.set_port_config(2, OFPPC_NO_FWD, OFPPC_NO_FWD)
    env.dp.set_port_config(3, OFPPC_PORT_DOWN, OFPPC_PORT_DOWN)
    env.send(1, udp())
    assert env.outports() == [4]
    env.dp.set_port_link(4, False)
    env.send(1, udp())
    assert env.outports() == []
    env.dp.set_port_link(4, True)
    env.dp.set_port_config(2, 0, OFPPC_NO_FWD)
    env.send(1, udp())
    assert env.outports() == [2, 4]
    env.dp.set_port_config(1, OFPPC_NO_RECV, OFPPC_NO_RECV)
    env.send(1, udp())
    assert env.outports() == []
    assert env.dp.port_stats()[1]["rx_dropped"] == 1
    env.dp.set_port_config(3, 0, OFPPC_PORT_DOWN)
    env.send(3, udp())
    assert env.outports() == [1, 2, 4]    # port 1 has NO_RECV, not NO_FWD


def test_local_port(env):
    local = DummyPort("local")
    env.dp.attach_port(OFPP_LOCAL, local)
    env.add({"in_port": 1}, [apply(Output(OFPP_LOCAL))])
    env.add({"in_port": OFPP_LOCAL}, [apply(Output(2))])
    env.send(1, udp())
    assert len(local.take_tx()) == 1
    local.inject(bytes(udp()))
    env.dp.run_dummy()
    assert env.outports() == [2]


def test_malformed_counted_and_dropped(env):
    env.add({}, [apply(Output(2))])
    env.send(1, b"\x00" * 10)
    eth_ip_trunc = bytes(udp())[:20]
    env.send(1, eth_ip_trunc)
    assert env.out() == {}
    assert env.dp.port_stats()[1]["rx_malformed"] == 2
    assert env.dp.stats()["malformed"] == 2


def test_csum_partial_completed_unless_offload(env):
    from scapy.all import raw
    # port 3 takes offload metadata: gets the frame as it came; port 2 does
    # not: the pipeline finishes the checksum (in place: later outputs see
    # the finished frame)
    env.add({"in_port": 1}, [apply(Output(3), Output(2), Output(4))])
    env.dp.set_port_offload(3, True)
    f = bytes(tcp())
    env.ports[1].inject(f, csum_partial=True)
    env.dp.run_dummy()
    p2 = env.ports[2].take_tx_meta()
    p3 = env.ports[3].take_tx_meta()
    assert p2 == [(f, False)]             # finished checksum, identical bytes
    assert p3[0][1] is True and p3[0][0] != f
    assert raw(p3[0][0])[:34] == f[:34]
    assert env.ports[4].take_tx_meta() == [(f, False)]


# ---------------------------------------------------------------- groups
def test_group_all_each_bucket_own_copy(env):
    env.dp.group_add(GroupSpec(1, OFPGT_ALL, (
        Bucket(actions=(SetField("eth_dst", mac(MAC3)), Output(2))),
        Bucket(actions=(Output(3),)),
    )))
    env.add({}, [apply(Group(1), Output(4))])
    f = udp()
    env.send(1, f)
    out = env.out()
    assert Ether(out[2][0]).dst == MAC3
    assert out[3] == [bytes(f)] and out[4] == [bytes(f)]
    (g, st) = env.dp.groups()[0]
    assert g.group_id == 1 and st["packet_count"] == 1 and st["ref_count"] == 1
    assert [b["packet_count"] for b in st["bucket_stats"]] == [1, 1]


def test_group_indirect_and_chained(env):
    env.dp.group_add(GroupSpec(2, OFPGT_INDIRECT, (Bucket(actions=(Output(3),)),)))
    env.dp.group_add(GroupSpec(1, OFPGT_ALL, (Bucket(actions=(Group(2),)),
                                              Bucket(actions=(Output(4),)))))
    env.add({}, [apply(Group(1))])
    env.send(1, udp())
    assert env.outports() == [3, 4]
    with pytest.raises(FlowError) as ei:
        env.dp.group_modify(GroupSpec(2, OFPGT_INDIRECT, (Bucket(actions=(Group(1),)),)))
    assert (ei.value.type, ei.value.code) == (6, 7)
    env.send(1, udp())
    assert env.outports() == [3, 4]


def test_group_ff_failover(env):
    env.dp.group_add(GroupSpec(1, OFPGT_FF, (
        Bucket(actions=(Output(2),), watch_port=2),
        Bucket(actions=(Output(3),), watch_port=3),
    )))
    env.add({}, [apply(Group(1))])
    env.send(1, udp())
    assert env.outports() == [2]
    env.dp.set_port_link(2, False)
    env.send(1, udp())
    assert env.outports() == [3]
    env.dp.set_port_link(3, False)
    env.send(1, udp())
    assert env.outports() == []
    env.dp.set_port_link(2, True)
    env.send(1, udp())
    assert env.outports() == [2]


def test_group_ff_watch_group(env):
    env.dp.group_add(GroupSpec(5, OFPGT_FF, (Bucket(actions=(Output(4),), watch_port=4),)))
    env.dp.group_add(GroupSpec(1, OFPGT_FF, (
        Bucket(actions=(Output(2),), watch_group=5),
        Bucket(actions=(Output(3),), watch_port=3),
    )))
    env.add({}, [apply(Group(1))])
    env.send(1, udp())
    assert env.outports() == [2]
    env.dp.set_port_config(4, OFPPC_PORT_DOWN, OFPPC_PORT_DOWN)
    env.send(1, udp())
    assert env.outports() == [3]


def test_group_select_spread(env):
    env.dp.group_add(GroupSpec(1, OFPGT_SELECT, (
        Bucket(actions=(Output(2),), weight=1),
        Bucket(actions=(Output(3),), weight=1),
        Bucket(actions=(Output(4),), weight=2),
    )))
    env.add({}, [apply(Group(1))])
    for i in range(400):
        env.ports[1].inject(bytes(udp(src=f"10.{i // 200}.{i % 200}.1", sport=1000 + i)))
    env.dp.run_dummy()
    counts = {p: len(v) for p, v in env.out().items()}
    assert sum(counts.values()) == 400
    assert set(counts) == {2, 3, 4}
    assert counts[4] > counts[2] and counts[4] > counts[3]
    assert min(counts.values()) > 40
    # the same flow always picks the same bucket
    for _ in range(3):
        env.send(1, udp(src="10.0.7.1", sport=1007))
    assert len(env.out()) == 1


def test_group_delete_removes_flows(env):
    env.dp.group_add(GroupSpec(1, OFPGT_ALL, (Bucket(actions=(Output(2),)),)))
    env.add({"in_port": 1}, [apply(Group(1))])
    env.add({"in_port": 2}, [apply(Output(1))])
    removed = env.dp.group_delete(1)
    assert len(removed) == 1
    assert [s.spec.match for s in env.dp.flows()] == [Match().set("in_port", 2)]
    env.send(1, udp())
    assert env.out() == {}
    with pytest.raises(FlowError) as ei:
        env.add({}, [apply(Group(1))])
    assert (ei.value.type, ei.value.code) == (2, 9)


# ---------------------------------------------------------------- meters
def test_meter_drop_pktps_with_warped_time(env):
    env.dp.meter_add(MeterSpec(1, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DROP, 10, 5),)))
    env.add({}, [Meter(1), apply(Output(2))])
    t0 = 1000.0
    for i in range(50):
        env.ports[1].inject(bytes(udp(sport=i)))
    env.dp.run_dummy(now=t0)
    first = len(env.out().get(2, []))
    assert 1 <= first <= 10
    for i in range(50):
        env.ports[1].inject(bytes(udp(sport=i)))
    env.dp.run_dummy(now=t0 + 1.0)            # one second later: ~10 more tokens
    second = len(env.out().get(2, []))
    assert 5 <= second <= 15
    (m, st) = env.dp.meters()[0]
    assert st["packet_in_count"] == 100 and st["flow_count"] == 1
    assert st["band_stats"][0]["packet_band_count"] == 100 - first - second


def test_meter_dscp_remark(env):
    env.dp.meter_add(MeterSpec(1, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DSCP_REMARK, 1, 1, 1),)))
    env.add({}, [Meter(1), apply(Output(2))])
    af21 = 18 << 2
    for _ in range(3):
        env.ports[1].inject(bytes(udp(tos=af21)))
    env.dp.run_dummy(now=50.0)
    tos = [Ether(f)[IP].tos >> 2 for f in env.out()[2]]
    assert tos[0] == 18 and tos[1:] == [20, 20]


def test_meter_delete_removes_flows_and_unknown_meter(env):
    env.dp.meter_add(MeterSpec(3, OFPMF_KBPS, (Band(OFPMBT_DROP, 1000),)))
    env.add({}, [Meter(3), apply(Output(2))])
    assert len(env.dp.meter_delete(3)) == 1
    assert env.dp.flows() == []
    with pytest.raises(FlowError) as ei:
        env.add({}, [Meter(3), apply(Output(2))])
    assert (ei.value.type, ei.value.code) == (12, 3)


# ---------------------------------------------------------------- NORMAL, fail mode
def test_standalone_mode_normal(env):
    env.send(1, udp(esrc=MAC1, edst=MAC2))
    assert env.out() == {}                # secure: dropped
    env.dp.fail_standalone = True
    env.send(1, udp(esrc=MAC1, edst=MAC2))
    assert env.outports() == [2, 3, 4]    # unknown: flooded
    env.send(2, udp(esrc=MAC2, edst=MAC1))
    assert env.outports() == [1]          # learned
    # a table-miss flow takes precedence over standalone NORMAL
    env.add({}, [apply(Output(4))], prio=0)
    env.send(2, udp(esrc=MAC2, edst=MAC1))
    assert env.outports() == [4]


# ---------------------------------------------------------------- cache invalidation
def test_flow_change_visible_to_next_packet(env):
    env.add({"in_port": 1}, [apply(Output(2))])
    f = udp()
    env.send(1, f)
    assert env.outports() == [2]
    env.dp.flow_modify(FlowSpec(match=Match().set("in_port", 1),
                                instructions=(apply(Output(3)),)))
    env.send(1, f)
    assert env.outports() == [3]
    env.add({"in_port": 1, "eth_type": 0x800}, [apply(Output(4))], prio=0x9000)
    env.send(1, f)
    assert env.outports() == [4]
    env.dp.flow_delete(match=Match().set("eth_type", 0x800))
    env.send(1, f)
    assert env.outports() == [3]
    env.dp.flow_delete()
    env.send(1, f)
    assert env.outports() == []


def test_port_change_invalidates(env):
    env.add({}, [apply(Output(2))])
    env.send(1, udp())
    assert env.outports() == [2]
    p5 = DummyPort("p5")
    env.dp.detach_port(2)
    env.send(1, udp())
    assert env.out() == {}
    env.dp.attach_port(2, p5)
    env.send(1, udp())
    assert len(p5.take_tx()) == 1


# ---------------------------------------------------------------- flow-mod semantics
def test_flow_errors(env):
    def err(fn):
        with pytest.raises(FlowError) as ei:
            fn()
        return ei.value.type, ei.value.code
    assert err(lambda: env.add({}, [], table=8)) == (5, 2)
    assert err(lambda: env.add({}, [GotoTable(0)], table=0)) == (3, 2)
    assert err(lambda: env.add({}, [GotoTable(2)], table=3)) == (3, 2)
    assert err(lambda: env.add({}, [GotoTable(8)], table=3)) == (3, 2)
    assert err(lambda: env.add({}, [apply(Group(7))])) == (2, 9)
    assert err(lambda: env.add({}, [Meter(7)])) == (12, 3)
    assert err(lambda: env.add({}, [apply(Output(0))])) == (2, 4)
    assert err(lambda: env.add({}, [apply(Output(OFPP_TABLE))])) == (2, 4)
    assert err(lambda: env.add({}, [apply(Output(OFPP_ANY))])) == (2, 4)
    assert err(lambda: env.add({"tcp_dst": 80}, [])) == (4, 9)
    assert err(lambda: env.add({"eth_type": 0x800, "tcp_dst": 80}, [])) == (4, 9)
    assert err(lambda: env.add({"ipv4_src": 1}, [])) == (4, 9)
    assert err(lambda: env.add({"vlan_pcp": 1}, [])) == (4, 9)
    assert err(lambda: env.dp.flow_add(FlowSpec(match=Match({"bogus": (1, None)})))) == (4, 6)
    assert err(lambda: env.dp.flow_add(FlowSpec(match=Match({"vlan_vid": (0x2000, None)})))) == (4, 7)
    env.add({"eth_type": 0x800}, [], prio=5)
    assert err(lambda: env.add({"in_port": 1}, [], prio=5, flags=OFPFF_CHECK_OVERLAP)) == (5, 3)
    env.add({"in_port": 1}, [], prio=6, flags=OFPFF_CHECK_OVERLAP)       # other priority
    env.add({"eth_type": 0x806}, [], prio=5, flags=OFPFF_CHECK_OVERLAP)  # disjoint
    assert len(env.dp.flows()) == 3       # refused adds left nothing behind


def test_identical_add_replaces_and_keeps_counts(env):
    env.add({"in_port": 1}, [apply(Output(2))], cookie=1)
    env.send(1, udp())
    assert env.outports() == [2]
    env.add({"in_port": 1}, [apply(Output(3))], cookie=2)
    (st,) = env.dp.flows()
    assert st.spec.cookie == 2 and st.packet_count == 1
    env.send(1, udp())
    assert env.outports() == [3]
    env.add({"in_port": 1}, [apply(Output(3))], cookie=3, flags=OFPFF_RESET_COUNTS)
    assert env.dp.flows()[0].packet_count == 0


def test_modify_strict_and_reset_counts(env):
    env.add({"in_port": 1}, [apply(Output(2))], prio=10)
    env.add({"in_port": 1, "eth_type": 0x800}, [apply(Output(2))], prio=20)
    env.send(1, udp())
    assert env.outports() == [2]
    n = env.dp.flow_modify(FlowSpec(priority=10, match=Match().set("in_port", 1),
                                    instructions=(apply(Output(3)),)), strict=True)
    assert n == 1
    n = env.dp.flow_modify(FlowSpec(match=Match().set("in_port", 1), flags=OFPFF_RESET_COUNTS,
                                    instructions=(apply(Output(4)),)))
    assert n == 2
    assert [s.packet_count for s in env.dp.flows()] == [0, 0]
    env.send(1, udp())
    assert env.outports() == [4]
    assert env.dp.flow_modify(FlowSpec(match=Match().set("in_port", 3))) == 0


def test_flows_filters_and_match_order(env):
    m = Match().set("udp_dst", 53).set("ip_proto", 17).set("eth_type", 0x800)
    env.dp.flow_add(FlowSpec(match=m, instructions=(apply(Output(2)),), cookie=0x10))
    env.add({"in_port": 1}, [write(Output(3))], cookie=0x21, table=2)
    env.add({"in_port": 2}, [apply(Output(OFPP_CONTROLLER))], cookie=0x22)
    fl = env.dp.flows()
    assert list(fl[0].spec.match.fields) == ["udp_dst", "ip_proto", "eth_type"]
    assert fl[0].spec.instructions == (apply(Output(2)),)
    assert [s.spec.cookie for s in env.dp.flows(table_id=2)] == [0x21]
    assert [s.spec.cookie for s in env.dp.flows(out_port=3)] == [0x21]
    assert [s.spec.cookie for s in env.dp.flows(cookie=0x20, cookie_mask=0xf0)] == [0x21, 0x22]
    assert [s.spec.cookie for s in env.dp.flows(match=Match().set("eth_type", 0x800))] == [0x10]
    assert [s.spec.cookie for s in env.dp.flows(match=Match().set("in_port", 2))] == [0x22]
    gone = env.dp.flow_delete(cookie=0x20, cookie_mask=0xf0, out_port=OFPP_CONTROLLER)
    assert [s.spec.cookie for s in gone] == [0x22]
    assert len(env.dp.flows()) == 2


# ---------------------------------------------------------------- packet-out
def test_packet_out(env):
    f = bytes(udp())
    env.dp.packet_out(f, OFPP_CONTROLLER, (Output(2), Output(3)))
    assert env.outports() == [2, 3]
    env.dp.packet_out(f, 1, (Output(OFPP_IN_PORT),))
    assert env.outports() == [1]
    env.add({"in_port": 4}, [apply(Output(3))])
    env.dp.packet_out(f, 4, (SetField("ipv4_dst", ip4("7.7.7.7")), Output(OFPP_TABLE)))
    out = env.out()
    assert list(out) == [3] and Ether(out[3][0])[IP].dst == "7.7.7.7"
    env.dp.packet_out(f, OFPP_CONTROLLER, (Output(OFPP_FLOOD),))
    assert env.outports() == [1, 2, 3, 4]
    with pytest.raises(FlowError):
        env.dp.packet_out(f, 1, (Output(0),))


def test_accounting_sums(env):
    env.add({"udp_dst": 1, "eth_type": 0x800, "ip_proto": 17}, [apply(Output(2))])
    env.add({"udp_dst": 2, "eth_type": 0x800, "ip_proto": 17}, [apply(Output(OFPP_CONTROLLER))])
    env.dp.set_port_config(4, OFPPC_NO_RECV, OFPPC_NO_RECV)
    for d in (1, 2, 3):
        env.send(1, udp(dport=d))
    env.send(1, b"\x01\x02")
    env.send(4, udp())
    s = env.dp.stats()
    assert (s["forwarded"], s["upcalled"], s["dropped"], s["malformed"], s["rx_dropped"]) == \
        (1, 1, 1, 1, 1)
    assert s["rx"] == 5


def test_controller_from_group_bucket_and_packet_out(env):
    env.dp.group_add(GroupSpec(1, OFPGT_ALL, (Bucket(actions=(Output(OFPP_CONTROLLER),)),
                                              Bucket(actions=(Output(2),)))))
    env.add({}, [GotoTable(2)])
    env.add({}, [apply(Group(1))], table=2, cookie=0x5151)
    env.send(3, udp())
    assert env.outports() == [2]
    (u,) = env.dp.upcalls()
    assert (u.reason, u.table_id, u.cookie, u.in_port) == (1, 2, 0x5151, 3)
    env.dp.packet_out(bytes(udp()), OFPP_CONTROLLER, (Output(OFPP_CONTROLLER),))
    (u,) = env.dp.upcalls()
    assert (u.reason, u.table_id, u.cookie, u.in_port) == (1, 0xff, 2**64 - 1, OFPP_CONTROLLER)


def test_upcall_gets_finished_checksum(env):
    env.add({}, [apply(Output(OFPP_CONTROLLER))])
    f = bytes(tcp())
    env.ports[1].inject(f, csum_partial=True)
    env.dp.run_dummy()
    (u,) = env.dp.upcalls()
    assert u.data == f
