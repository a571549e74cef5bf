"""Fuzz: over a million random and mutated frames through the whole
pipeline (C loop, ext._fastpath.fuzz_pipeline) with a rule set exercising
every instruction, group type, meter, NORMAL, controller and rewrite path.
No crash (each frame ends right before a PROT_NONE page, so a read past a
frame faults), and every frame accounted for:
rx == forwarded + dropped + malformed + upcalled + rx_dropped."""
from scapy.contrib.mpls import MPLS
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6ND_NS, ICMPv6NDOptSrcLLAddr, IPv6, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.layers.sctp import SCTP

from datapath.fastpath import Datapath, DummyPort
from datapath.model import (
    OFPGT_ALL, OFPGT_FF, OFPGT_INDIRECT, OFPGT_SELECT, OFPMBT_DROP, OFPMBT_DSCP_REMARK,
    OFPMF_PKTPS, OFPMF_KBPS, OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL,
    OFPP_NORMAL, ApplyActions, Band, Bucket, ClearActions, CopyTtlIn, CopyTtlOut, DecMplsTtl,
    DecNwTtl, FlowSpec, GotoTable, Group, GroupSpec, Match, Meter, MeterSpec, Output, PopMpls,
    PopPbb, PopVlan, PushMpls, PushPbb, PushVlan, SetField, SetMplsTtl, SetNwTtl, SetQueue,
    WriteActions, WriteMetadata)
from ext import _fastpath as fp

N_FRAMES = 1_000_000


def corpus():
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c = [
        e / IP(src="10.0.0.1", dst="10.0.0.2", ttl=2) / UDP(sport=1, dport=53) / (b"q" * 20),
        e / IP(src="10.0.0.3", dst="10.0.0.2") / TCP(sport=1000, dport=80, flags="S"),
        e / IP(src="10.0.0.1", dst="10.9.0.1", ttl=1) / ICMP() / b"ping",
        e / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=0) / UDP() / (b"f" * 40),
        e / IP(src="10.0.0.5", dst="10.0.0.6", options=b"\x01\x01\x01\x00") / TCP(),
        e / IP(dst="10.0.0.9") / SCTP(sport=5, dport=6),
        e / Dot1Q(vlan=10) / IP(src="10.1.0.1", dst="10.1.0.2") / UDP(dport=5000),
        e / Dot1AD(vlan=20) / Dot1Q(vlan=30) / IP() / TCP(dport=22),
        e / ARP(op=1, psrc="10.0.0.1", pdst="10.0.0.2"),
        e / IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=1) / UDP(dport=53),
        e / IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop() /
        IPv6ExtHdrFragment() / TCP(dport=443),
        Ether(src="02:00:00:00:00:03", dst="33:33:ff:00:00:02") / IPv6(dst="ff02::1:ff00:2") /
        ICMPv6ND_NS(tgt="2001:db8::2") / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:03"),
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x8847) /
        MPLS(label=100, s=0, ttl=5) / MPLS(label=200, s=1, ttl=2) / IP(dst="10.2.0.1") / UDP(),
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x8847) /
        MPLS(label=300, s=1, ttl=1) / IP(dst="10.3.0.1") / TCP(),
        Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x88e7) /
        (b"\x00\x00\x01\x00" + bytes(Ether(src="02:00:00:00:00:07", dst="02:00:00:00:00:08") /
                                     IP(dst="10.4.0.1") / UDP())),
        Ether(src="02:00:00:00:00:09", dst="ff:ff:ff:ff:ff:ff") / IP(dst="255.255.255.255") /
        UDP(sport=68, dport=67) / (b"d" * 200),
        e / IP(dst="10.0.0.2") / UDP() / (b"J" * 3000),
    ]
    return [bytes(f) for f in c]


def build(dp):
    def fa(table=0, prio=100, match=None, insns=()):
        m = Match()
        for k, v in (match or {}).items():
            m.set(k, *(v if isinstance(v, tuple) else (v,)))
        dp.flow_add(FlowSpec(table_id=table, priority=prio, match=m, instructions=tuple(insns)))

    def ap(*a):
        return ApplyActions(tuple(a))

    dp.meter_add(MeterSpec(1, OFPMF_PKTPS, (Band(OFPMBT_DROP, 20000),)))
    dp.meter_add(MeterSpec(2, OFPMF_KBPS, (Band(OFPMBT_DSCP_REMARK, 50000, 0, 1),)))
    dp.group_add(GroupSpec(4, OFPGT_INDIRECT, (Bucket(actions=(SetField("eth_src", 0x020000000099),
                                                               Output(3))),)))
    dp.group_add(GroupSpec(1, OFPGT_ALL, (Bucket(actions=(Output(2),)),
                                          Bucket(actions=(PushVlan(0x8100),
                                                          SetField("vlan_vid", 0x1000 | 7),
                                                          Output(3))),
                                          Bucket(actions=(Group(4),)))))
    dp.group_add(GroupSpec(2, OFPGT_SELECT, tuple(Bucket(actions=(Output(p),), weight=p)
                                                  for p in (1, 2, 3, 4))))
    dp.group_add(GroupSpec(3, OFPGT_FF, (Bucket(actions=(Output(4),), watch_port=4),
                                         Bucket(actions=(Output(OFPP_IN_PORT),), watch_group=2))))
    # table 0: classify
    fa(0, 300, {"eth_type": 0x800, "ip_proto": 17, "udp_dst": 53},
       [Meter(1), ap(DecNwTtl(), Output(OFPP_CONTROLLER, 128)), GotoTable(1)])
    fa(0, 290, {"eth_type": 0x800, "ip_proto": 6},
       [ap(SetField("ipv4_dst", 0x0a0a0a0a), SetField("tcp_dst", 8080)),
        WriteMetadata(0x10, 0xff), GotoTable(2)])
    fa(0, 285, {"eth_type": 0x8847, "mpls_bos": 1}, [ap(CopyTtlIn(), PopMpls(0x0800)), GotoTable(3)])
    fa(0, 280, {"eth_type": 0x8847}, [ap(DecMplsTtl(), CopyTtlIn(), PopMpls(0x8847)), GotoTable(3)])
    fa(0, 270, {"eth_type": 0x88e7}, [ap(PopPbb()), GotoTable(1)])
    fa(0, 260, {"vlan_vid": (0x1000, 0x1000)}, [ap(PopVlan()), GotoTable(1)])
    fa(0, 250, {"eth_type": 0x86dd}, [Meter(2), WriteActions((Group(2),)), GotoTable(4)])
    fa(0, 240, {"eth_type": 0x806}, [ap(Output(OFPP_NORMAL))])
    fa(0, 230, {"eth_dst": (0x010000000000, 0x010000000000)}, [ap(Output(OFPP_FLOOD))])
    fa(0, 220, {"eth_type": 0x800, "ipv4_src": (0x0a000000, 0xff000000)},
       [ap(PushMpls(0x8847), SetMplsTtl(9), CopyTtlOut(), Output(2)), ClearActions()])
    fa(0, 0, {}, [ap(Output(OFPP_CONTROLLER, 64))])
    # table 1: after L2 pops / dns
    fa(1, 10, {"eth_type": 0x800}, [WriteActions((Group(1), SetQueue(1))), GotoTable(5)])
    fa(1, 0, {}, [ap(Output(OFPP_ALL))])
    # table 2: tcp, metadata
    fa(2, 10, {"metadata": (0x10, 0xff), "eth_type": 0x800, "ip_proto": 6, "tcp_dst": 8080},
       [ap(PushPbb(0x88e7), Output(4), PopPbb()), WriteActions((Output(1),)), GotoTable(5)])
    # table 3: after pop_mpls (reparsed inner headers)
    fa(3, 20, {"eth_type": 0x8847, "mpls_label": 200}, [ap(SetField("mpls_label", 7),
                                                            SetNwTtl(3), Output(1))])
    fa(3, 10, {"eth_type": 0x800}, [ap(DecNwTtl(), Group(3))])
    # table 4: ipv6
    fa(4, 10, {"eth_type": 0x86dd, "ip_proto": 58}, [ap(Output(OFPP_CONTROLLER)), ClearActions()])
    fa(4, 5, {"eth_type": 0x86dd, "ipv6_src": (0x20010db8 << 96, 0xffffffff << 96)},
       [WriteActions((SetField("ipv6_flabel", 5), Output(OFPP_LOCAL))), GotoTable(5)])
    # table 5: last; misses drop
    fa(5, 10, {"in_port": 1}, [ap(Output(OFPP_IN_PORT))])
    fa(5, 5, {"in_port": 2}, [WriteActions((Output(OFPP_FLOOD),))])


def test_fuzz_million_frames_accounted():
    dp = Datapath(8)
    ports = {i: DummyPort(f"fz{i}") for i in range(1, 6)}
    for i, p in ports.items():
        p.set_sink(True)
        dp.attach_port(i, p)
    local = DummyPort("fzlocal")
    local.set_sink(True)
    dp.attach_port(OFPP_LOCAL, local)
    dp.set_port_config(5, 4, 4)                 # NO_RECV: rx_dropped
    dp.set_port_link(3, False)                  # a down port for flood/ff
    dp.invalid_ttl_to_controller = True
    build(dp)

    done, drained = fp.fuzz_pipeline(dp, corpus(), N_FRAMES, seed=20261127,
                                     in_ports=[1, 2, 3, 4, 5, OFPP_LOCAL])
    assert done == N_FRAMES
    s = dp.stats()
    assert s["rx"] == N_FRAMES
    assert s["rx"] == s["forwarded"] + s["dropped"] + s["malformed"] + s["upcalled"] + \
        s["rx_dropped"]
    ps = dp.port_stats()
    assert sum(p["rx_packets"] for p in ps.values()) == N_FRAMES
    assert sum(p["rx_malformed"] for p in ps.values()) == s["malformed"]
    assert sum(p["rx_dropped"] for p in ps.values()) == s["rx_dropped"] == ps[5]["rx_packets"]
    # every path was exercised
    for k in ("forwarded", "dropped", "malformed", "upcalled", "rx_dropped", "hits", "misses",
              "nocache", "invalid_ttl"):
        assert s[k] > 0, k
    assert drained > 0
    tx_total = sum(p["tx_packets"] for p in ps.values())
    assert tx_total == sum(p.tx_count for p in ports.values()) + local.tx_count
    assert tx_total >= s["forwarded"]
    # flow/table counters agree: table 0 looked up every frame that parsed
    ts = dp.table_stats()
    assert ts[0]["lookup_count"] == N_FRAMES - s["malformed"] - s["rx_dropped"]
    assert sum(f.packet_count for f in dp.flows(table_id=0)) == ts[0]["matched_count"]
    assert all(g["packet_count"] > 0 for _, g in dp.groups())
    assert all(m["band_stats"][0]["packet_band_count"] > 0 for _, m in dp.meters())

    # still sane afterwards: a known frame takes its known path
    ports[1].set_sink(False)
    ports[2].set_sink(False)
    arp = bytes(Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="10.0.0.2"))
    ports[2].inject(arp)
    dp.run_dummy()
    assert ports[1].take_tx() == [arp]


def test_fuzz_random_only_no_rules():
    """Pure noise into an empty pipeline, standalone fail mode (NORMAL)."""
    dp = Datapath(2)
    ports = [DummyPort(f"nz{i}") for i in range(3)]
    for i, p in enumerate(ports, 1):
        p.set_sink(True)
        dp.attach_port(i, p)
    dp.fail_standalone = True
    done, _ = fp.fuzz_pipeline(dp, [], 200_000, seed=3)
    s = dp.stats()
    assert done == 200_000 == s["rx"]
    assert s["rx"] == s["forwarded"] + s["dropped"] + s["malformed"] + s["upcalled"] + \
        s["rx_dropped"]
    assert s["malformed"] > 0 and s["forwarded"] > 0
    assert dp.mac_stats()["count"] <= dp.mac_stats()["max"]
