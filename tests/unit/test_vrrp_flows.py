"""The VRRP app's datapath logic (controller/vrrp/flows.py), no switch
process and no os-ken event loop.

Two levels:
- the messages VrrpDatapath builds (os-ken OF1.3 parser objects, checked
  field by field and serialized), the frames it builds (checked by scapy
  and by packet.py's own parsers), neighbour resolution and its timers with
  warped time;
- a simulated network: VrrpDatapath instances drive real vdp Datapaths
  (DummyPorts) through the switch Agent in-process (datapath/ofp/agent.py:
  every message is serialized by os-ken and decoded by vdp's codec, every
  PACKET_IN / PORT_STATUS parsed by os-ken), joined by in-memory segments
  to test hosts.  Time is warped: the loop jumps to the next deadline.
  This checks the whole router: ARP for the gateway, routing with MAC
  rewrite and TTL decrement, next-hop resolution, failover on link loss,
  preemption on return, and stop with priority-0 adverts.
"""
import ipaddress
import struct

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import ICMPv6EchoRequest, ICMPv6ND_NS, IPv6
from scapy.layers.l2 import ARP, Dot1Q, Ether

from controller.config import load_config
from controller.vrrp import config as vconfig
from controller.vrrp import flows as F
from controller.vrrp import logic
from controller.vrrp import packet as pk


class StubDP:
    ofproto = ofp
    ofproto_parser = parser
    id = 1


DP = StubDP()

R1_TOML = """
[vrrp]
[[vrrp.datapath]]
dpid = 1
name = "r1"
  [[vrrp.datapath.interface]]
  name = "lan"
  port = 1
  address = ["10.1.0.2/24", "fe80::2/64"]
  [[vrrp.datapath.interface]]
  name = "wan"
  port = 2
  address = "10.2.0.2/24"
  [[vrrp.datapath.router]]
  interface = "lan"
  vrid = 1
  priority = {p1}
  vips = "10.1.0.1"
  interval = 1
  tracks = {{ wan = 0 }}
  [[vrrp.datapath.router]]
  interface = "wan"
  vrid = 2
  priority = {p1}
  vips = "10.2.0.1"
  interval = 1
  tracks = {{ lan = 0 }}
  [[vrrp.datapath.route]]
  prefix = "10.3.0.0/16"
  via = "10.2.0.254"
"""

R2_TOML = """
[[vrrp.datapath]]
dpid = 2
name = "r2"
  [[vrrp.datapath.interface]]
  name = "lan"
  port = 1
  address = "10.1.0.3/24"
  [[vrrp.datapath.interface]]
  name = "wan"
  port = 2
  address = "10.2.0.3/24"
  [[vrrp.datapath.router]]
  interface = "lan"
  vrid = 1
  priority = {p2}
  vips = "10.1.0.1"
  interval = 1
  tracks = {{ wan = 0 }}
  [[vrrp.datapath.router]]
  interface = "wan"
  vrid = 2
  priority = {p2}
  vips = "10.2.0.1"
  interval = 1
  tracks = {{ lan = 0 }}
"""


def pair_config(p1=200, p2=100):
    text = R1_TOML.format(p1=p1) + R2_TOML.format(p2=p2)
    return load_config("pair.toml", {"vrrp": vconfig.validate}, text=text)["vrrp"]


def r1(p1=200):
    return F.VrrpDatapath(pair_config(p1).datapaths[1])


PORTS = {1: F.PortInfo("02:00:00:00:01:01", True, "lan"),
         2: F.PortInfo("02:00:00:00:01:02", True, "wan")}


def flowmods(msgs, table=None, command=None):
    return [m for m in msgs if isinstance(m, parser.OFPFlowMod)
            and (table is None or m.table_id == table)
            and (command is None or m.command == command)]


def packet_outs(msgs):
    return [m for m in msgs if isinstance(m, parser.OFPPacketOut)]


def actions_of(fm):
    acts = []
    for i in fm.instructions:
        if isinstance(i, parser.OFPInstructionActions):
            acts += i.actions
    return acts


def serialize_all(msgs):
    for m in msgs:
        m.set_xid(1)
        m.serialize()
        assert len(m.buf) >= 8


# ---------------------------------------------------------------- cookies

def test_cookie_fields_and_foreign_cookies():
    c = F.cookie(F.K_GATE, 7, 6, 200)
    assert F.cookie_kind(c) == F.K_GATE and F.cookie_iface(c) == 7
    assert (c >> 32) & 0xFF == 6 and (c >> 24) & 0xFF == 200
    assert F.cookie_kind(0) is None and F.cookie_kind(0x1234) is None
    assert F.cookie_kind(None) is None


def test_route_priority_longest_prefix_and_connected_first():
    assert F.route_priority(32, True) > F.route_priority(32) > F.route_priority(24, True) \
        > F.route_priority(24) > F.route_priority(0)


# ---------------------------------------------------------------- connect

def test_connect_replaces_our_flows_and_installs_pipeline():
    vd = r1()
    out = vd.connect(DP, PORTS, 100.0)
    serialize_all(out.msgs)
    first = out.msgs[0]
    assert isinstance(first, parser.OFPFlowMod) and first.command == ofp.OFPFC_DELETE
    assert first.table_id == ofp.OFPTT_ALL
    assert (first.cookie, first.cookie_mask) == (F.COOKIE_APP, F.COOKIE_APP_MASK)
    adds = flowmods(out.msgs, command=ofp.OFPFC_ADD)
    assert all(F.cookie_kind(m.cookie) is not None for m in adds)
    # table-miss drops in all three tables
    misses = [m for m in adds if m.priority == 0]
    assert sorted(m.table_id for m in misses) == [0, 1, 2]
    assert all(m.instructions == [] for m in misses)
    # punts: VRRP, ARP for VIP and own address, ARP replies to us, per port
    punts = [dict(m.match.items()) for m in adds if m.priority == F.P_PUNT]
    assert {"in_port": 1, "eth_type": 0x0800, "ip_proto": 112,
            "ipv4_dst": "224.0.0.18"} in punts
    assert {"in_port": 1, "eth_type": 0x0806, "arp_op": 1, "arp_tpa": "10.1.0.1"} in punts
    assert {"in_port": 1, "eth_type": 0x0806, "arp_op": 1, "arp_tpa": "10.1.0.2"} in punts
    assert {"in_port": 1, "eth_type": 0x0806, "arp_op": 2, "arp_tpa": "10.1.0.2"} in punts
    assert {"in_port": 2, "eth_type": 0x0806, "arp_op": 1, "arp_tpa": "10.2.0.1"} in punts
    # no IPv6 router: no VRRPv6 punt, but NS for the own link-local address
    assert not any(p.get("ipv6_dst") == "ff02::12" for p in punts)
    assert {"in_port": 1, "eth_type": 0x86DD, "ip_proto": 58, "icmpv6_type": 135,
            "ipv6_nd_target": "fe80::2"} in punts
    for m in adds:
        if m.priority == F.P_PUNT:
            [a] = actions_of(m)
            assert a.port == ofp.OFPP_CONTROLLER and a.max_len == ofp.OFPCML_NO_BUFFER
    # connected subnets punt to us for resolution in the route table
    res = [m for m in adds if F.cookie_kind(m.cookie) == F.K_RESOLVE]
    assert sorted(dict(m.match.items())["ipv4_dst"] for m in res) == [
        ("10.1.0.0", "255.255.255.0"), ("10.2.0.0", "255.255.255.0")]
    assert all(m.table_id == 1 and m.priority == F.route_priority(24, True) for m in res)
    # egress: own MAC while nobody is Master
    eg = [m for m in adds if m.table_id == 2 and m.priority == F.P_EGRESS
          and dict(m.match.items())["eth_type"] == 0x0800]
    assert len(eg) == 2
    for m in eg:
        idx = dict(m.match.items())["metadata"]
        acts = actions_of(m)
        assert acts[0].key == "eth_src" and acts[0].value == PORTS[idx].hw_addr
        assert acts[-1].port == idx
    hair = [m for m in adds if m.table_id == 2 and m.priority == F.P_HAIRPIN]
    assert all(actions_of(m)[-1].port == ofp.OFPP_IN_PORT for m in hair)
    # the routers started as Backup, and the static next hop is being resolved
    assert [t.new for _, t in out.transitions] == ["Backup", "Backup"]
    [po] = packet_outs(out.msgs)
    arp = Ether(po.data)
    assert arp[ARP].op == 1 and arp[ARP].pdst == "10.2.0.254" and arp[ARP].psrc == "10.2.0.2"
    assert arp.src == PORTS[2].hw_addr and arp.dst == "ff:ff:ff:ff:ff:ff"
    assert po.actions[0].port == 2


def test_becoming_master_installs_gate_before_garp_and_switches_egress_mac():
    vd = r1()
    vd.connect(DP, PORTS, 100.0)
    lan = vd.segments[1].get(1)
    out = vd.tick(lan.next_deadline())
    # both routers' timers expire together (same priority and interval)
    assert [(i, t.new) for i, t in out.transitions] == [("lan", "Master"), ("wan", "Master")]
    # per interface: its flows first, then its frames (advert, gratuitous ARP)
    lan_flows = [i for i, m in enumerate(out.msgs) if isinstance(m, parser.OFPFlowMod)
                 and F.cookie_iface(m.cookie) == 1]
    lan_frames = [i for i, m in enumerate(out.msgs) if isinstance(m, parser.OFPPacketOut)
                  and m.actions[0].port == 1]
    assert lan_flows and len(lan_frames) == 2 and max(lan_flows) < min(lan_frames)
    gates = [m for m in flowmods(out.msgs, 0) if F.cookie_kind(m.cookie) == F.K_GATE
             and F.cookie_iface(m.cookie) == 1]
    gate = next(m for m in gates if m.priority == F.P_GATE)
    assert dict(gate.match.items()) == {"in_port": 1, "eth_dst": "00:00:5e:00:01:01",
                                        "eth_type": 0x0800}
    assert [type(i) for i in gate.instructions] == [parser.OFPInstructionGotoTable]
    assert gate.instructions[0].table_id == 1
    vip = next(m for m in gates if m.priority == F.P_ACCEPT)
    assert dict(vip.match.items())["ipv4_dst"] == "10.1.0.1"
    assert vip.instructions == []                 # no accept mode: drop
    eg = [m for m in flowmods(out.msgs, 2) if dict(m.match.items())["metadata"] == 1]
    assert eg and all(actions_of(m)[0].value == "00:00:5e:00:01:01" for m in eg)
    frames = [Ether(out.msgs[i].data) for i in lan_frames]
    assert frames[0].src == "00:00:5e:00:01:01" and frames[0][IP].proto == 112
    assert frames[1][ARP].op == 1 and frames[1][ARP].psrc == frames[1][ARP].pdst == "10.1.0.1"
    serialize_all(out.msgs)

    # leaving Master (tracked wan port down): gate deleted by exact cookie,
    # priority-0 advert, egress back to the own MAC
    out = vd.port_status(2, False, None, lan.next_deadline() - 0.5)
    dels = [m for m in flowmods(out.msgs, 0, ofp.OFPFC_DELETE) if F.cookie_iface(m.cookie) == 1]
    assert [(m.cookie, m.cookie_mask) for m in dels] == [(gate.cookie, F.COOKIE_ALL)]
    advert = pk.decode_frame(next(p for p in packet_outs(out.msgs)
                                  if p.actions[0].port == 1).data)
    assert advert.priority == 0 and advert.vrid == 1
    eg = [m for m in flowmods(out.msgs, 2) if dict(m.match.items())["metadata"] == 1]
    assert eg and all(actions_of(m)[0].value == PORTS[1].hw_addr for m in eg)
    assert lan.state == logic.INITIALIZE


def test_owner_and_accept_mode_send_vip_traffic_to_controller_and_answer_pings():
    text = """
[[vrrp.datapath]]
dpid = 9
  [[vrrp.datapath.interface]]
  port = 3
  vlan = 10
  address = ["192.0.2.1/24"]
  [[vrrp.datapath.router]]
  interface = "port3.10"
  vrid = 5
  vips = "192.0.2.1"
"""
    dc = load_config("o.toml", {"vrrp": vconfig.validate}, text=text)["vrrp"].datapaths[9]
    assert dc.routers[0].priority == 255          # the address owner
    vd = F.VrrpDatapath(dc)
    ports = {3: F.PortInfo("02:00:00:00:09:03", True)}
    out = vd.connect(DP, ports, 5.0)
    assert [t.new for _, t in out.transitions] == ["Master"]
    gate = [m for m in flowmods(out.msgs, 0) if F.cookie_kind(m.cookie) == F.K_GATE]
    main = next(m for m in gate if m.priority == F.P_GATE)
    assert dict(main.match.items())["vlan_vid"] == 0x1000 | 10
    assert isinstance(main.instructions[0], parser.OFPInstructionActions)
    assert isinstance(main.instructions[0].actions[0], parser.OFPActionPopVlan)
    acc = next(m for m in gate if m.priority == F.P_ACCEPT)
    assert actions_of(acc)[0].port == ofp.OFPP_CONTROLLER
    eg = next(m for m in flowmods(out.msgs, 2) if m.priority == F.P_EGRESS)
    names = [type(a).__name__ for a in actions_of(eg)]
    assert names == ["OFPActionSetField", "OFPActionPushVlan", "OFPActionSetField",
                     "OFPActionOutput"]
    assert actions_of(eg)[2].value == 0x1000 | 10
    # a ping to the VIP (tagged, as the gate punts it) is answered from the VMAC
    req = bytes(Ether(src="02:aa:00:00:00:01", dst="00:00:5e:00:01:05") / Dot1Q(vlan=10)
                / IP(src="192.0.2.77", dst="192.0.2.1") / ICMP(id=7, seq=3) / b"hello")
    out = vd.packet_in(3, req, 0, acc.cookie, 6.0)
    [po] = packet_outs(out.msgs)
    rep = Ether(po.data)
    assert rep.src == "00:00:5e:00:01:05" and rep.dst == "02:aa:00:00:00:01"
    assert rep[Dot1Q].vlan == 10
    assert rep[IP].src == "192.0.2.1" and rep[IP].dst == "192.0.2.77"
    assert rep[ICMP].type == 0 and rep[ICMP].id == 7 and rep[ICMP].seq == 3
    assert bytes(rep[ICMP].payload) == b"hello"
    chk = rep[IP].chksum, rep[ICMP].chksum
    del rep[IP].chksum, rep[ICMP].chksum
    rep = Ether(bytes(rep))
    assert (rep[IP].chksum, rep[ICMP].chksum) == chk


def test_close_sends_priority_zero_then_deletes_our_flows_and_disconnect_is_silent():
    vd = r1()
    vd.connect(DP, PORTS, 0.0)
    lan = vd.segments[1].get(1)
    vd.tick(lan.next_deadline())
    assert lan.state == logic.MASTER
    out = vd.close(10.0)
    advs = [pk.decode_frame(p.data) for p in packet_outs(out.msgs)]
    assert sorted((a.vrid, a.priority) for a in advs) == [(1, 0), (2, 0)]
    assert isinstance(out.msgs[-1], parser.OFPFlowMod)
    assert out.msgs[-1].command == ofp.OFPFC_DELETE and out.msgs[-1].table_id == ofp.OFPTT_ALL
    vd2 = r1()
    vd2.connect(DP, PORTS, 0.0)
    out = vd2.disconnect(1.0)
    assert out.msgs == [] and {t.new for _, t in out.transitions} == {"Initialize"}
    assert vd2.next_deadline() is None
    # reconnect starts them again
    out = vd2.connect(DP, PORTS, 2.0)
    assert {t.new for _, t in out.transitions} == {"Backup"}


def test_link_down_at_connect_keeps_router_in_initialize():
    vd = r1()
    ports = dict(PORTS)
    ports[1] = F.PortInfo(PORTS[1].hw_addr, False)
    out = vd.connect(DP, ports, 0.0)
    # lan router: own port down; wan router: tracks lan (weight 0)
    assert out.transitions == []
    assert vd.segments[1].get(1).state == logic.INITIALIZE
    out = vd.port_status(1, True, None, 1.0)
    assert sorted(t.new for _, t in out.transitions) == ["Backup", "Backup"]


# ---------------------------------------------------------------- frames

def test_arp_request_and_neighbor_solicit_frames():
    f = F.arp_request("02:00:00:00:00:01", "10.0.0.1", "10.0.0.9", vlan=4)
    e = Ether(f)
    assert e[Dot1Q].vlan == 4 and e[ARP].op == 1 and e[ARP].pdst == "10.0.0.9"
    assert F.parse_arp(f) == (1, "02:00:00:00:00:01", ipaddress.ip_address("10.0.0.1"),
                              ipaddress.ip_address("10.0.0.9"))
    ns = F.neighbor_solicit("02:00:00:00:00:01", "fe80::1", "2001:db8::9")
    target, _l3 = pk.parse_ns(ns)               # checks hop limit, checksum, options
    assert target == ipaddress.ip_address("2001:db8::9")
    e = Ether(ns)
    assert e.dst == "33:33:ff:00:00:09" and e[IPv6].dst == "ff02::1:ff00:9"
    assert e[ICMPv6ND_NS].tgt == "2001:db8::9"


def test_na_answer_is_learned_and_echo_v6():
    req = bytes(Ether(src="02:00:00:00:00:05", dst="02:00:00:00:00:01")
                / IPv6(src="2001:db8::5", dst="2001:db8::1") / ICMPv6EchoRequest(id=1, seq=2))
    l3 = pk.parse_ip(req)
    rep = Ether(F.echo_reply(req, l3, "02:00:00:00:00:01"))
    assert rep[IPv6].src == "2001:db8::1" and rep[IPv6].dst == "2001:db8::5"
    assert rep[IPv6].payload.type == 129
    cks = rep[IPv6].payload.cksum
    del rep[IPv6].payload.cksum
    assert Ether(bytes(rep))[IPv6].payload.cksum == cks
    # an NA answering a solicitation (made by the same code that answers for VIPs)
    ns = F.neighbor_solicit("02:00:00:00:00:01", "2001:db8::1", "2001:db8::5")
    na = pk.na_reply(ns, "02:00:00:00:00:05", ["2001:db8::5"])
    assert F.parse_na(pk.parse_ip(na)) == (ipaddress.ip_address("2001:db8::5"),
                                           "02:00:00:00:00:05")
    bad = bytearray(na)
    bad[-1] ^= 1
    assert F.parse_na(pk.parse_ip(bytes(bad))) is None


def test_strip_vlan():
    f = bytes(Ether(src="02:00:00:00:00:05", dst="02:00:00:00:00:01") / Dot1Q(vlan=3)
              / IP(dst="1.2.3.4"))
    assert Ether(F.strip_vlan(f)).type == 0x0800
    g = F.strip_vlan(f)
    assert F.strip_vlan(g) == g


# ---------------------------------------------------------------- routing logic

def test_lookup_longest_prefix_connected_wins():
    vd = r1()
    lan, wan = vd.ifaces[1], vd.ifaces[2]
    ip = ipaddress.ip_address
    assert vd.lookup(ip("10.1.0.77")) == (lan, ip("10.1.0.77"))
    assert vd.lookup(ip("10.3.4.5")) == (wan, ip("10.2.0.254"))
    assert vd.lookup(ip("10.4.0.1")) is None


def host_frame(dst="10.2.0.9", ttl=64, src_mac="02:aa:00:00:00:01"):
    return bytes(Ether(src=src_mac, dst="00:00:5e:00:01:01")
                 / IP(src="10.1.0.50", dst=dst, ttl=ttl) / ICMP())


def test_resolution_queues_sends_arp_then_installs_host_flow_and_forwards():
    vd = r1()
    vd.connect(DP, PORTS, 0.0)
    ck = F.cookie(F.K_RESOLVE, 2)
    out = vd.packet_in(1, host_frame(), 1, ck, 1.0)
    # (the static next hop's retry is due too)
    [po] = [p for p in packet_outs(out.msgs) if Ether(p.data)[ARP].pdst == "10.2.0.9"]
    assert po.actions[0].port == 2
    # more packets wait, no new ARP before the retry interval
    out = vd.packet_in(1, host_frame(), 1, ck, 1.2)
    assert out.msgs == []
    # the answer: host flow + the two waiting packets forwarded
    reply = bytes(Ether(src="02:bb:00:00:00:09", dst=PORTS[2].hw_addr)
                  / ARP(op=2, hwsrc="02:bb:00:00:00:09", psrc="10.2.0.9",
                        hwdst=PORTS[2].hw_addr, pdst="10.2.0.2"))
    out = vd.packet_in(2, reply, 0, F.cookie(F.K_PUNT, 2), 1.3)
    [host] = flowmods(out.msgs, 1)
    assert dict(host.match.items()) == {"eth_type": 0x0800, "ipv4_dst": "10.2.0.9"}
    assert host.priority == F.route_priority(32, True) + 1 and host.idle_timeout == F.HOST_IDLE
    acts = actions_of(host)
    assert acts[0].key == "eth_dst" and acts[0].value == "02:bb:00:00:00:09"
    assert isinstance(acts[1], parser.OFPActionDecNwTtl)
    kinds = [type(i) for i in host.instructions]
    assert kinds == [parser.OFPInstructionActions, parser.OFPInstructionWriteMetadata,
                     parser.OFPInstructionGotoTable]
    assert host.instructions[1].metadata == 2 and host.instructions[2].table_id == 2
    fwd = packet_outs(out.msgs)
    assert len(fwd) == 2
    names = [type(a).__name__ for a in fwd[0].actions]
    assert names == ["OFPActionSetField", "OFPActionDecNwTtl", "OFPActionSetField",
                     "OFPActionOutput"]
    assert fwd[0].in_port == 1 and fwd[0].actions[-1].port == 2
    assert vd.counters["forwarded_after_resolve"] == 2
    serialize_all(out.msgs)


def test_resolution_gives_up_after_retries_and_drops_pending():
    vd = r1()
    vd.connect(DP, PORTS, 0.0)
    ck = F.cookie(F.K_RESOLVE, 2)
    vd.packet_in(1, host_frame("10.2.0.99"), 1, ck, 1.0)
    sent = 1
    t = 1.0
    for _ in range(10):
        t += F.REQUEST_INTERVAL
        out = vd.tick(t)
        sent += sum(1 for p in packet_outs(out.msgs)
                    if ARP in Ether(p.data) and Ether(p.data)[ARP].pdst == "10.2.0.99")
    assert sent == F.MAX_TRIES
    assert vd.counters["resolve_failed"] == 1 and vd.counters["pending_dropped"] == 1


def test_static_next_hop_resolves_installs_route_and_keeps_retrying():
    vd = r1()
    out = vd.connect(DP, PORTS, 0.0)
    sent = []
    t = 0.0
    while True:                             # unanswered: retried for ever, 1 s apart
        sent += [t for p in packet_outs(out.msgs)
                 if ARP in Ether(p.data) and Ether(p.data)[ARP].pdst == "10.2.0.254"]
        t = vd.next_deadline()
        if t > 6.5:
            break
        out = vd.tick(t)
    assert sent == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    reply = bytes(Ether(src="02:cc:00:00:00:fe", dst=PORTS[2].hw_addr)
                  / ARP(op=2, hwsrc="02:cc:00:00:00:fe", psrc="10.2.0.254",
                        hwdst=PORTS[2].hw_addr, pdst="10.2.0.2"))
    out = vd.packet_in(2, reply, 0, F.cookie(F.K_PUNT, 2), t + 0.1)
    [rt] = flowmods(out.msgs, 1)
    assert dict(rt.match.items()) == {"eth_type": 0x0800,
                                      "ipv4_dst": ("10.3.0.0", "255.255.0.0")}
    assert rt.priority == F.route_priority(16)
    assert actions_of(rt)[0].value == "02:cc:00:00:00:fe"
    st = vd.status()
    assert st["routes"] == [{"prefix": "10.3.0.0/16", "via": "10.2.0.254", "interface": "wan",
                             "via_mac": "02:cc:00:00:00:fe"}]
    # the same answer again changes nothing
    out = vd.packet_in(2, reply, 0, F.cookie(F.K_PUNT, 2), t + 0.2)
    assert flowmods(out.msgs) == []


def test_arp_for_own_address_answered_and_unknown_port_ignored():
    vd = r1()
    vd.connect(DP, PORTS, 0.0)
    req = bytes(Ether(src="02:aa:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")
                / ARP(op=1, hwsrc="02:aa:00:00:00:01", psrc="10.1.0.50", pdst="10.1.0.2"))
    out = vd.packet_in(1, req, 0, F.cookie(F.K_PUNT, 1), 1.0)
    [po] = packet_outs(out.msgs)
    rep = Ether(po.data)
    assert rep[ARP].op == 2 and rep[ARP].hwsrc == PORTS[1].hw_addr
    assert rep[ARP].psrc == "10.1.0.2" and rep.dst == "02:aa:00:00:00:01"
    # the VIP is answered only by the Master
    req_vip = bytes(Ether(src="02:aa:00:00:00:01", dst="ff:ff:ff:ff:ff:ff")
                    / ARP(op=1, hwsrc="02:aa:00:00:00:01", psrc="10.1.0.50",
                          pdst="10.1.0.1"))
    assert vd.packet_in(1, req_vip, 0, 0, 1.1).msgs == []
    lan = vd.segments[1].get(1)
    vd.tick(lan.next_deadline())
    [po] = packet_outs(vd.packet_in(1, req_vip, 0, 0, 5.0).msgs)
    assert Ether(po.data)[ARP].hwsrc == "00:00:5e:00:01:01"
    assert vd.packet_in(7, req, 0, 0, 5.1).msgs == []
    assert vd.counters["packet_in_unknown_port"] == 1


# ---------------------------------------------------------------- simulated network

fastpath = None


def _fastpath():
    global fastpath
    if fastpath is None:
        fastpath = pytest.importorskip("datapath.fastpath")
    return fastpath


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Switch:
    """A vdp Datapath with DummyPorts, its Agent, and one in-process
    OpenFlow session to a VrrpDatapath."""

    def __init__(self, dpid, nports, clock):
        fp = _fastpath()
        from datapath.ofp import agent as A
        from datapath import ofp as O
        self.dp = fp.Datapath()
        self.ports = {n: fp.DummyPort(f"s{dpid}p{n}") for n in range(1, nports + 1)}
        for n, p in self.ports.items():
            self.dp.attach_port(n, p)
        self.agent = A.Agent(self.dp, dpid=dpid, name=f"s{dpid}", fail_mode="secure",
                             clock=clock)
        self.wire = []
        self.session = self.agent.open_session(self.wire.append, lambda: None, name="vrrp")
        self.wire.clear()
        self.session.data_received(O.encode(O.Hello(1, frozenset({4}))))
        self.xid = 0
        self.errors = []
        self.ctl = None

    def port_infos(self):
        return {n: F.PortInfo(pk.mac_str(p.hw_addr), True, p.name)
                for n, p in self.ports.items()}

    def send(self, msgs):
        for m in msgs:
            self.xid += 1
            m.set_xid(self.xid)
            m.serialize()
            self.session.data_received(bytes(m.buf))

    def recv(self):
        out, self.wire[:] = list(self.wire), []
        msgs = []
        for raw in out:
            version, mtype, mlen, xid = struct.unpack_from("!BBHI", raw)
            msgs.append(parser.msg_parser(DP, version, mtype, mlen, xid, raw))
        return msgs


class Host:
    """A test host on a segment: answers ARP for its address, records the
    rest."""

    def __init__(self, mac, ip):
        self.mac, self.ip = mac, ipaddress.ip_address(ip)
        self.rx = []

    def receive(self, frame):
        e = Ether(frame)
        if ARP in e and e[ARP].op == 1 and e[ARP].pdst == str(self.ip):
            return [bytes(Ether(src=self.mac, dst=e.src)
                          / ARP(op=2, hwsrc=self.mac, psrc=str(self.ip), hwdst=e[ARP].hwsrc,
                                pdst=e[ARP].psrc))]
        if self.ip.version == 6 and ICMPv6ND_NS in e:
            na = pk.na_reply(frame, self.mac, [self.ip], router=False)
            return [na] if na is not None else []
        if e.dst in (self.mac, "ff:ff:ff:ff:ff:ff"):
            self.rx.append(frame)
        return []


class Net:
    """Switches + hosts on hub segments, driven by VrrpDatapaths, warped time."""

    def __init__(self, cfg):
        self.clock = Clock()
        self.switches = {}
        self.ctls = {}
        self.segments = []          # [[endpoint, ...]]; endpoint = (switch, port) | Host
        self.down = set()           # (switch dpid, port) cut from its segment
        self.cfg = cfg
        for dpid, dc in cfg.datapaths.items():
            sw = Switch(dpid, max(i.port for i in dc.interfaces), self.clock)
            self.switches[dpid] = sw
            sw.ctl = F.VrrpDatapath(dc)

    def connect(self):
        for sw in self.switches.values():
            out = sw.ctl.connect(DP, sw.port_infos(), self.clock.t)
            sw.send(out.msgs)
        self.pump()

    def segment(self, *endpoints):
        self.segments.append(list(endpoints))

    def _deliver(self, src, frame):
        for seg in self.segments:
            if src not in seg:
                continue
            for ep in seg:
                if ep is src:
                    continue
                if isinstance(ep, Host):
                    for reply in ep.receive(frame):
                        self._deliver(ep, reply)
                else:
                    sw, port = ep
                    if (sw.agent.dpid, port) not in self.down:
                        sw.ports[port].inject(frame)

    def pump(self, rounds=50):
        """Moves frames and messages until everything is quiet."""
        for _ in range(rounds):
            busy = False
            for sw in self.switches.values():
                sw.dp.run_dummy(now=self.clock.t)
                ups = sw.dp.upcalls()
                if ups:
                    sw.agent.handle_upcalls(ups)
                for m in sw.recv():
                    busy = True
                    if m.msg_type == ofp.OFPT_PACKET_IN:
                        out = sw.ctl.packet_in(m.match["in_port"], bytes(m.data), m.table_id,
                                               m.cookie, self.clock.t)
                        sw.send(out.msgs)
                    elif m.msg_type == ofp.OFPT_PORT_STATUS:
                        st = m.desc.state & ofp.OFPPS_LINK_DOWN
                        out = sw.ctl.port_status(m.desc.port_no, not st, m.desc.hw_addr,
                                                 self.clock.t)
                        sw.send(out.msgs)
                    elif m.msg_type == ofp.OFPT_ERROR:
                        sw.errors.append(m)
                for n, p in sw.ports.items():
                    for frame in p.take_tx():
                        busy = True
                        if (sw.agent.dpid, n) not in self.down:
                            self._deliver((sw, n), frame)
            if not busy:
                return
        raise AssertionError("network did not settle")

    def run_until(self, t):
        """Advances warped time to t, firing every deadline on the way."""
        while True:
            ds = [d for d in (sw.ctl.next_deadline() for sw in self.switches.values())
                  if d is not None]
            nxt = min(ds) if ds else None
            if nxt is None or nxt > t:
                self.clock.t = t
                self.pump()
                return
            self.clock.t = max(self.clock.t, nxt)
            for sw in self.switches.values():
                d = sw.ctl.next_deadline()
                if d is not None and d <= self.clock.t:
                    sw.send(sw.ctl.tick(self.clock.t).msgs)
            self.pump()

    def link(self, dpid, port, up):
        sw = self.switches[dpid]
        if up:
            self.down.discard((dpid, port))
        else:
            self.down.add((dpid, port))
        sw.dp.set_port_link(port, up)
        sw.agent.port_changed(port)
        self.pump()

    def state(self, dpid, iface_idx, vrid, family=4):
        return self.switches[dpid].ctl.segments[iface_idx].get(vrid, family).state


@pytest.fixture
def net():
    _fastpath()
    n = Net(pair_config())
    s1, s2 = n.switches[1], n.switches[2]
    n.ha = Host("02:aa:00:00:00:01", "10.1.0.50")
    n.hb = Host("02:bb:00:00:00:01", "10.2.0.9")
    n.segment((s1, 1), (s2, 1), n.ha)
    n.segment((s1, 2), (s2, 2), n.hb)
    n.connect()
    return n


def ping_frame(net, dst_mac, ttl=64, dst="10.2.0.9", seq=1):
    return bytes(Ether(src=net.ha.mac, dst=dst_mac)
                 / IP(src=str(net.ha.ip), dst=dst, ttl=ttl) / ICMP(seq=seq) / b"vdp")


def send_from_a(net, frame):
    net._deliver(net.ha, frame)
    net.pump()


def test_sim_election_arp_routing_and_failover(net):
    s1, s2 = net.switches[1], net.switches[2]
    t0 = net.clock.t
    net.run_until(t0 + 5)
    assert net.state(1, 1, 1) == logic.MASTER and net.state(2, 1, 1) == logic.BACKUP
    assert net.state(1, 2, 2) == logic.MASTER and net.state(2, 2, 2) == logic.BACKUP
    assert s2.ctl.segments[1].get(1).master_ip == ipaddress.ip_address("10.1.0.2")
    # host A asks for its gateway: only the master answers, with the virtual MAC
    net.ha.rx.clear()
    send_from_a(net, bytes(Ether(src=net.ha.mac, dst="ff:ff:ff:ff:ff:ff")
                           / ARP(op=1, hwsrc=net.ha.mac, psrc="10.1.0.50", pdst="10.1.0.1")))
    answers = [Ether(f) for f in net.ha.rx if ARP in Ether(f)]
    assert len(answers) == 1 and answers[0][ARP].hwsrc == "00:00:5e:00:01:01"
    # a packet to the far host: resolved (ARP on wan), forwarded by r1 with the
    # far side's virtual MAC as source, host B's MAC as destination, TTL - 1
    net.hb.rx.clear()
    send_from_a(net, ping_frame(net, "00:00:5e:00:01:01", seq=1))
    got = [Ether(f) for f in net.hb.rx if IP in Ether(f)]
    assert len(got) == 1
    assert got[0].src == "00:00:5e:00:01:02" and got[0].dst == net.hb.mac
    assert got[0][IP].ttl == 63 and got[0][ICMP].seq == 1
    chk = got[0][IP].chksum
    del got[0][IP].chksum
    assert Ether(bytes(got[0]))[IP].chksum == chk
    assert s1.ctl.counters["forwarded_after_resolve"] == 1
    # the next one goes through the installed host flow (no packet-in)
    pins = s1.ctl.counters["packet_in"]
    net.hb.rx.clear()
    send_from_a(net, ping_frame(net, "00:00:5e:00:01:01", seq=2))
    assert [Ether(f)[ICMP].seq for f in net.hb.rx] == [2]
    assert s1.ctl.counters["packet_in"] == pins
    # TTL 1 is not forwarded
    net.hb.rx.clear()
    send_from_a(net, ping_frame(net, "00:00:5e:00:01:01", ttl=1, seq=3))
    assert net.hb.rx == []
    # the backup ignores the virtual MAC
    net.hb.rx.clear()
    s2.ports[1].inject(ping_frame(net, "00:00:5e:00:01:01", seq=4))
    net.pump()
    assert net.hb.rx == []
    assert not s1.errors and not s2.errors

    # r1 loses its lan link: its wan router leaves too (tracked, priority 0
    # advert -> r2 takes wan after the skew time), r2 takes lan after the
    # master down interval
    t1 = net.clock.t
    net.link(1, 1, False)
    assert net.state(1, 1, 1) == logic.INITIALIZE and net.state(1, 2, 2) == logic.INITIALIZE
    r2lan = s2.ctl.segments[1].get(1)
    net.run_until(t1 + r2lan.master_down_interval + 0.01)
    assert net.state(2, 1, 1) == logic.MASTER and net.state(2, 2, 2) == logic.MASTER
    r2wan = s2.ctl.segments[2].get(2)
    lt = r2wan.last_transition
    # priority 0 advert -> the skew time, not the master down interval
    assert lt.at - t1 == pytest.approx(r2wan.skew_time)
    assert r2wan.skew_time < r2wan.master_down_interval
    net.hb.rx.clear()
    send_from_a(net, ping_frame(net, "00:00:5e:00:01:01", seq=5))
    got = [Ether(f) for f in net.hb.rx]
    assert len(got) == 1 and got[0][ICMP].seq == 5 and got[0].src == "00:00:5e:00:01:02"
    assert s2.ctl.counters["forwarded_after_resolve"] == 1

    # r1 comes back: preempts (priority 200 > 100) after the master down interval
    t2 = net.clock.t
    net.link(1, 1, True)
    assert net.state(1, 1, 1) == logic.BACKUP
    net.run_until(t2 + 5)
    assert net.state(1, 1, 1) == logic.MASTER and net.state(2, 1, 1) == logic.BACKUP
    assert net.state(1, 2, 2) == logic.MASTER and net.state(2, 2, 2) == logic.BACKUP
    net.hb.rx.clear()
    send_from_a(net, ping_frame(net, "00:00:5e:00:01:01", seq=6))
    assert [Ether(f)[ICMP].seq for f in net.hb.rx] == [6]
    assert not s1.errors and not s2.errors


def test_sim_return_traffic_and_static_route(net):
    s1 = net.switches[1]
    net.run_until(net.clock.t + 5)
    # host B answers through the wan virtual router back to host A
    net.ha.rx.clear()
    frame = bytes(Ether(src=net.hb.mac, dst="00:00:5e:00:01:02")
                  / IP(src="10.2.0.9", dst="10.1.0.50") / ICMP(type=0))
    net._deliver(net.hb, frame)
    net.pump()
    got = [Ether(f) for f in net.ha.rx if IP in Ether(f)]
    assert len(got) == 1 and got[0].src == "00:00:5e:00:01:01" and got[0].dst == net.ha.mac
    # static route 10.3.0.0/16 via 10.2.0.254: a router appears there
    gw = Host("02:cc:00:00:00:fe", "10.2.0.254")
    net.segments[1].append(gw)
    net.run_until(net.clock.t + 2)
    assert s1.ctl.status()["routes"][0]["via_mac"] == gw.mac
    send_from_a(net, ping_frame(net, "00:00:5e:00:01:01", dst="10.3.7.7"))
    got = [Ether(f) for f in gw.rx if IP in Ether(f)]
    assert len(got) == 1 and got[0][IP].dst == "10.3.7.7" and got[0][IP].ttl == 63


def test_sim_stop_hands_over_at_once(net):
    s1, s2 = net.switches[1], net.switches[2]
    net.run_until(net.clock.t + 5)
    assert net.state(1, 1, 1) == logic.MASTER
    t = net.clock.t
    s1.send(s1.ctl.close(t).msgs)
    net.pump()
    r2lan = s2.ctl.segments[1].get(1)
    # priority 0 seen: the backup's timer is the skew time, not 3 s
    assert r2lan.next_deadline() - t == pytest.approx(r2lan.skew_time)
    net.run_until(t + r2lan.skew_time + 0.001)
    assert net.state(2, 1, 1) == logic.MASTER
    assert s1.dp.flows() == []           # our flows are gone from r1


V6_TOML = """
[[vrrp.datapath]]
dpid = 6
name = "r6"
  [[vrrp.datapath.interface]]
  name = "lan"
  port = 1
  address = ["fe80::2/64", "2001:db8:1::2/64"]
  [[vrrp.datapath.interface]]
  name = "wan"
  port = 2
  address = ["fe80::2:2/64", "2001:db8:2::2/64"]
  [[vrrp.datapath.router]]
  interface = "lan"
  vrid = 1
  vips = ["fe80::1", "2001:db8:1::1"]
  interval = 0.5
  accept = true
  [[vrrp.datapath.router]]
  interface = "wan"
  vrid = 2
  vips = ["fe80::2:1", "2001:db8:2::1"]
  interval = 0.5
"""


def test_sim_ipv6_nd_for_the_vip_routing_and_ping_the_vip():
    _fastpath()
    net = Net(load_config("v6.toml", {"vrrp": vconfig.validate}, text=V6_TOML)["vrrp"])
    sw = net.switches[6]
    ha = Host("02:aa:00:00:06:01", "2001:db8:1::50")
    hb = Host("02:bb:00:00:06:01", "2001:db8:2::9")
    net.segment((sw, 1), ha)
    net.segment((sw, 2), hb)
    net.connect()
    net.run_until(net.clock.t + 3)
    assert net.state(6, 1, 1, 6) == logic.MASTER and net.state(6, 2, 2, 6) == logic.MASTER
    vmac = "00:00:5e:00:02:01"
    # ha solicits the VIP: the NA comes from the IPv6 virtual MAC
    ns = F.neighbor_solicit(ha.mac, "2001:db8:1::50", "2001:db8:1::1")
    ha.rx.clear()
    net._deliver(ha, ns)
    net.pump()
    nas = [Ether(f) for f in ha.rx if IPv6 in Ether(f) and Ether(f)[IPv6].nh == 58]
    assert len(nas) == 1
    target, mac = F.parse_na(pk.parse_ip(bytes(nas[0])))
    assert str(target) == "2001:db8:1::1" and mac == vmac
    # routed to hb: NS on wan, hop limit - 1, source the wan virtual MAC
    pkt = bytes(Ether(src=ha.mac, dst=vmac) / IPv6(src="2001:db8:1::50", dst="2001:db8:2::9",
                                                    hlim=9) / ICMPv6EchoRequest(seq=4))
    for seq in (1, 2):
        net._deliver(ha, pkt)
        net.pump()
    got = [Ether(f) for f in hb.rx]
    assert len(got) == 2
    assert got[0].src == "00:00:5e:00:02:02" and got[0].dst == hb.mac
    assert got[0][IPv6].hlim == 8 and got[0][IPv6].dst == "2001:db8:2::9"
    assert sw.ctl.counters["forwarded_after_resolve"] == 1       # the second via the flow
    # accept mode: a ping to the VIP is answered
    ha.rx.clear()
    ping6 = bytes(Ether(src=ha.mac, dst=vmac) / IPv6(src="2001:db8:1::50", dst="2001:db8:1::1")
                  / ICMPv6EchoRequest(id=3, seq=9))
    net._deliver(ha, ping6)
    net.pump()
    [rep] = [Ether(f) for f in ha.rx]
    assert rep.src == vmac and rep[IPv6].src == "2001:db8:1::1"
    assert rep[IPv6].payload.type == 129 and rep[IPv6].payload.seq == 9
    assert not sw.errors


def test_status_client_and_format():
    from controller.vrrp import app
    import json
    import os
    import socket
    import tempfile
    import threading
    vd = r1()
    vd.connect(DP, PORTS, 0.0)
    vd.tick(vd.segments[1].get(1).next_deadline())
    doc = {"app": "vrrp", "datapaths": [vd.status()]}
    json.dumps(doc)                          # JSON-able as the socket sends it
    text = app.format_status(doc)
    assert "datapath 0000000000000001 (r1): connected" in text
    assert "vrid 1 ipv4 v3: Master" in text and "vrid 2 ipv4 v3: Master" in text
    assert "route 10.3.0.0/16 via 10.2.0.254 (wan, unresolved)" in text
    path = os.path.join(tempfile.mkdtemp(prefix="vdpt-vr-"), "s.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        assert c.recv(64) == b"status\n"
        c.sendall(json.dumps(doc).encode() + b"\n")
        c.close()
    t = threading.Thread(target=serve)
    t.start()
    try:
        assert app.query_status(path) == doc
    finally:
        t.join(5)
        srv.close()
        os.unlink(path)
        os.rmdir(os.path.dirname(path))
