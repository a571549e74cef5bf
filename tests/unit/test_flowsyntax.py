"""ovs-ofctl flow/group/meter syntax <-> datapath.model (datapath/flowsyntax.py)."""
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st, HealthCheck

from datapath import flowsyntax as fs
from datapath import model as M
from datapath.flowsyntax import FlowSyntaxError, parse_flow, parse_group, parse_meter
from datapath.model import (Match, FlowSpec, FlowStats, GroupSpec, Bucket, MeterSpec, Band,
                            Output, SetField, ApplyActions, WriteActions, ClearActions,
                            GotoTable, WriteMetadata, Meter)


def mac(s):
    return int(s.replace(":", ""), 16)


def ip4(s):
    return int(ipaddress.IPv4Address(s))


def ip6(s):
    return int(ipaddress.IPv6Address(s))


def fields(text):
    return fs.parse_match(text).fields


def apply(text, match=""):
    """The actions of a flow 'MATCH,actions=TEXT' (one ApplyActions)."""
    spec = parse_flow(f"{match},actions={text}" if match else f"actions={text}")
    assert len(spec.instructions) == 1 and type(spec.instructions[0]) is ApplyActions
    return spec.instructions[0].actions


# ---------------------------------------------------------------- the example

def test_brief_example():
    spec = parse_flow("table=0,priority=100,cookie=0x1/-1,idle_timeout=10,hard_timeout=0,"
                      "send_flow_rem,check_overlap,in_port=1,dl_type=0x0800,nw_dst=10.0.0.0/8,"
                      "actions=set_field:02:00:00:00:00:02->eth_dst,output:2")
    assert spec == FlowSpec(
        table_id=0, priority=100, cookie=1, idle_timeout=10, hard_timeout=0,
        flags=M.OFPFF_SEND_FLOW_REM | M.OFPFF_CHECK_OVERLAP,
        match=Match({"in_port": (1, None), "eth_type": (0x0800, None),
                     "ipv4_dst": (ip4("10.0.0.0"), 0xFF000000)}),
        instructions=(ApplyActions((SetField("eth_dst", mac("02:00:00:00:00:02")),
                                    Output(2))),))
    assert list(spec.match.fields) == ["in_port", "eth_type", "ipv4_dst"]
    assert parse_flow(fs.format_flow(spec)) == spec


def test_defaults():
    spec = parse_flow("actions=drop")
    assert spec == FlowSpec()
    assert spec.priority == 0x8000 and spec.instructions == ()


def test_flags_all():
    spec = parse_flow("send_flow_rem,check_overlap,reset_counts,no_packet_counts,"
                      "no_byte_counts,actions=drop")
    assert spec.flags == 0x1F


def test_whitespace_separators_and_dump_keys_ignored():
    line = (" cookie=0x5, duration=1.234s, table=2, n_packets=3, n_bytes=294, "
            "idle_age=4, priority=100,in_port=1 actions=output:2")
    spec = parse_flow(line)
    assert (spec.cookie, spec.table_id, spec.priority) == (5, 2, 100)
    assert spec.match.fields == {"in_port": (1, None)}
    assert spec.instructions == (ApplyActions((Output(2),)),)


# ---------------------------------------------------------------- match fields

FIELD_CASES = [
    ("in_port=7", {"in_port": (7, None)}),
    ("in_port=LOCAL", {"in_port": (M.OFPP_LOCAL, None)}),
    ("in_port=controller", {"in_port": (M.OFPP_CONTROLLER, None)}),
    ("in_phy_port=3", {"in_phy_port": (3, None)}),
    ("metadata=0x12/0xff", {"metadata": (0x12, 0xFF)}),
    ("metadata=5", {"metadata": (5, None)}),
    ("dl_src=02:00:00:00:00:01", {"eth_src": (mac("02:00:00:00:00:01"), None)}),
    ("eth_src=2:0:0:0:0:1", {"eth_src": (mac("02:00:00:00:00:01"), None)}),
    ("dl_dst=01:00:00:00:00:00/01:00:00:00:00:00",
     {"eth_dst": (mac("01:00:00:00:00:00"), mac("01:00:00:00:00:00"))}),
    ("eth_dst=aa:bb:cc:dd:ee:ff", {"eth_dst": (0xAABBCCDDEEFF, None)}),
    ("dl_type=0x88cc", {"eth_type": (0x88CC, None)}),
    ("eth_type=2048", {"eth_type": (0x0800, None)}),
    ("dl_vlan=5", {"vlan_vid": (0x1005, None)}),
    ("dl_vlan=0xffff", {"vlan_vid": (0, None)}),
    ("vlan_vid=4196", {"vlan_vid": (4196, None)}),
    ("vlan_vid=0x1000/0x1000", {"vlan_vid": (0x1000, 0x1000)}),
    ("vlan_vid=0", {"vlan_vid": (0, None)}),
    ("vlan_tci=0", {"vlan_vid": (0, None)}),
    ("vlan_tci=0x1000/0x1000", {"vlan_vid": (0x1000, 0x1000)}),
    ("vlan_tci=0x1005/0x1fff", {"vlan_vid": (0x1005, None)}),
    ("vlan_tci=0xb005", {"vlan_vid": (0x1005, None), "vlan_pcp": (5, None)}),
    ("dl_vlan_pcp=3", {"vlan_pcp": (3, None)}),
    ("vlan_pcp=7", {"vlan_pcp": (7, None)}),
    ("ip,nw_tos=0x20", {"eth_type": (0x0800, None), "ip_dscp": (8, None)}),
    ("ip,ip_dscp=46", {"eth_type": (0x0800, None), "ip_dscp": (46, None)}),
    ("ip,nw_ecn=3", {"eth_type": (0x0800, None), "ip_ecn": (3, None)}),
    ("ip,ip_ecn=1", {"eth_type": (0x0800, None), "ip_ecn": (1, None)}),
    ("ip,nw_proto=47", {"eth_type": (0x0800, None), "ip_proto": (47, None)}),
    ("ip,ip_proto=47", {"eth_type": (0x0800, None), "ip_proto": (47, None)}),
    ("ip,nw_src=10.1.2.3", {"eth_type": (0x0800, None), "ipv4_src": (ip4("10.1.2.3"), None)}),
    ("ip,ip_src=10.0.0.0/255.255.0.0",
     {"eth_type": (0x0800, None), "ipv4_src": (ip4("10.0.0.0"), 0xFFFF0000)}),
    ("ip,ipv4_src=10.0.0.1/32", {"eth_type": (0x0800, None), "ipv4_src": (ip4("10.0.0.1"), None)}),
    ("ip,nw_dst=10.9.9.9/8", {"eth_type": (0x0800, None), "ipv4_dst": (ip4("10.0.0.0"), 0xFF000000)}),
    ("ip,ipv4_dst=1.2.3.4/255.0.255.0",
     {"eth_type": (0x0800, None), "ipv4_dst": (ip4("1.0.3.0"), 0xFF00FF00)}),
    ("tcp,tp_src=80", {"eth_type": (0x0800, None), "ip_proto": (6, None), "tcp_src": (80, None)}),
    ("tcp,tcp_dst=443", {"eth_type": (0x0800, None), "ip_proto": (6, None), "tcp_dst": (443, None)}),
    ("udp,tp_dst=53", {"eth_type": (0x0800, None), "ip_proto": (17, None), "udp_dst": (53, None)}),
    ("udp,udp_src=68", {"eth_type": (0x0800, None), "ip_proto": (17, None), "udp_src": (68, None)}),
    ("sctp,tp_src=9", {"eth_type": (0x0800, None), "ip_proto": (132, None), "sctp_src": (9, None)}),
    ("sctp,sctp_dst=10", {"eth_type": (0x0800, None), "ip_proto": (132, None),
                          "sctp_dst": (10, None)}),
    ("icmp,icmp_type=8,icmp_code=0", {"eth_type": (0x0800, None), "ip_proto": (1, None),
                                      "icmpv4_type": (8, None), "icmpv4_code": (0, None)}),
    ("icmp,tp_src=3,tp_dst=1", {"eth_type": (0x0800, None), "ip_proto": (1, None),
                                "icmpv4_type": (3, None), "icmpv4_code": (1, None)}),
    ("icmp6,icmp_type=135", {"eth_type": (0x86DD, None), "ip_proto": (58, None),
                             "icmpv6_type": (135, None)}),
    ("icmp6,icmpv6_type=136,icmpv6_code=0", {"eth_type": (0x86DD, None), "ip_proto": (58, None),
                                             "icmpv6_type": (136, None),
                                             "icmpv6_code": (0, None)}),
    ("arp,arp_op=2", {"eth_type": (0x0806, None), "arp_op": (2, None)}),
    ("arp,nw_proto=1", {"eth_type": (0x0806, None), "arp_op": (1, None)}),
    ("arp,nw_src=10.0.0.1", {"eth_type": (0x0806, None), "arp_spa": (ip4("10.0.0.1"), None)}),
    ("arp,nw_dst=10.0.0.0/24", {"eth_type": (0x0806, None),
                                "arp_tpa": (ip4("10.0.0.0"), 0xFFFFFF00)}),
    ("arp,arp_spa=1.1.1.1", {"eth_type": (0x0806, None), "arp_spa": (ip4("1.1.1.1"), None)}),
    ("arp,arp_tpa=1.1.1.0/24", {"eth_type": (0x0806, None), "arp_tpa": (ip4("1.1.1.0"), 0xFFFFFF00)}),
    ("arp,arp_sha=02:00:00:00:00:01", {"eth_type": (0x0806, None),
                                       "arp_sha": (mac("02:00:00:00:00:01"), None)}),
    ("arp,arp_tha=02:00:00:00:00:00/ff:ff:ff:00:00:00",
     {"eth_type": (0x0806, None), "arp_tha": (mac("02:00:00:00:00:00"), mac("ff:ff:ff:00:00:00"))}),
    ("rarp", {"eth_type": (0x8035, None)}),
    ("ipv6,ipv6_src=2001:db8::1", {"eth_type": (0x86DD, None), "ipv6_src": (ip6("2001:db8::1"), None)}),
    ("ipv6,ipv6_dst=2001:db8::/32", {"eth_type": (0x86DD, None),
                                     "ipv6_dst": (ip6("2001:db8::"), ((1 << 32) - 1) << 96)}),
    ("ipv6,ipv6_src=::1/::ffff", {"eth_type": (0x86DD, None), "ipv6_src": (1, 0xFFFF)}),
    ("ipv6,ipv6_label=0x12345", {"eth_type": (0x86DD, None), "ipv6_flabel": (0x12345, None)}),
    ("ipv6,ipv6_flabel=0x5/0xff", {"eth_type": (0x86DD, None), "ipv6_flabel": (5, 0xFF)}),
    ("icmp6,icmp_type=135,nd_target=fe80::1", {
        "eth_type": (0x86DD, None), "ip_proto": (58, None), "icmpv6_type": (135, None),
        "ipv6_nd_target": (ip6("fe80::1"), None)}),
    ("icmp6,icmp_type=135,nd_sll=02:00:00:00:00:01", {
        "eth_type": (0x86DD, None), "ip_proto": (58, None), "icmpv6_type": (135, None),
        "ipv6_nd_sll": (mac("02:00:00:00:00:01"), None)}),
    ("icmp6,icmp_type=136,nd_tll=02:00:00:00:00:02", {
        "eth_type": (0x86DD, None), "ip_proto": (58, None), "icmpv6_type": (136, None),
        "ipv6_nd_tll": (mac("02:00:00:00:00:02"), None)}),
    ("ipv6,ipv6_nd_target=::2", {"eth_type": (0x86DD, None), "ipv6_nd_target": (2, None)}),
    ("mpls,mpls_label=100,mpls_tc=3,mpls_bos=1", {
        "eth_type": (0x8847, None), "mpls_label": (100, None), "mpls_tc": (3, None),
        "mpls_bos": (1, None)}),
    ("mplsm", {"eth_type": (0x8848, None)}),
    ("dl_type=0x88e7,pbb_isid=0x123456", {"eth_type": (0x88E7, None), "pbb_isid": (0x123456, None)}),
    ("pbb_isid=0x100/0xf00", {"pbb_isid": (0x100, 0xF00)}),
    ("tun_id=0x1234", {"tunnel_id": (0x1234, None)}),
    ("tunnel_id=5/0xff", {"tunnel_id": (5, 0xFF)}),
    ("ipv6,ipv6_exthdr=0x4/0x4", {"eth_type": (0x86DD, None), "ipv6_exthdr": (4, 4)}),
    ("tcp6,tp_dst=22", {"eth_type": (0x86DD, None), "ip_proto": (6, None), "tcp_dst": (22, None)}),
    ("udp6", {"eth_type": (0x86DD, None), "ip_proto": (17, None)}),
    ("sctp6", {"eth_type": (0x86DD, None), "ip_proto": (132, None)}),
    ("tp_dst=80,tcp", {"tcp_dst": (80, None), "eth_type": (0x0800, None), "ip_proto": (6, None)}),
    ("ip,nw_src=10.0.0.0/0", {"eth_type": (0x0800, None)}),       # zero mask: no field
]


@pytest.mark.parametrize("text, expected", FIELD_CASES)
def test_match_field(text, expected):
    got = fields(text)
    assert got == expected
    assert list(got) == list(expected)          # order is kept
    # and back: format, parse, same match
    m = Match(got)
    assert fs.parse_match(fs.format_match(m)) == m


def test_every_model_field_is_reachable():
    seen = set()
    for text, expected in FIELD_CASES:
        seen |= set(expected)
    assert seen == set(M.FIELD_ID)


def test_masked_value_is_anded():
    assert fields("metadata=0xff/0x0f") == {"metadata": (0x0F, 0x0F)}
    assert fields("metadata=0xff/0xffffffffffffffff") == {"metadata": (0xFF, None)}


def test_duplicate_same_value_is_fine_conflict_is_not():
    assert fields("ip,tcp") == {"eth_type": (0x0800, None), "ip_proto": (6, None)}
    with pytest.raises(FlowSyntaxError, match="conflicts"):
        fs.parse_match("ip,ipv6")


def test_port_names_resolve():
    names = {"veth0": 1, "tap0": 2}
    spec = parse_flow("in_port=veth0,actions=output:tap0,tap0", port_names=names)
    assert spec.match.fields == {"in_port": (1, None)}
    assert spec.instructions == (ApplyActions((Output(2), Output(2))),)


# ---------------------------------------------------------------- actions

ACTION_CASES = [
    ("output:2", Output(2)),
    ("2", Output(2)),
    ("0x10", Output(16)),
    ("output(port=3,max_len=100)", Output(3, 100)),
    ("in_port", Output(M.OFPP_IN_PORT)),
    ("IN_PORT", Output(M.OFPP_IN_PORT)),
    ("output:in_port", Output(M.OFPP_IN_PORT)),
    ("normal", Output(M.OFPP_NORMAL)),
    ("NORMAL", Output(M.OFPP_NORMAL)),
    ("flood", Output(M.OFPP_FLOOD)),
    ("all", Output(M.OFPP_ALL)),
    ("local", Output(M.OFPP_LOCAL)),
    ("table", Output(M.OFPP_TABLE)),
    ("controller", Output(M.OFPP_CONTROLLER)),
    ("controller:128", Output(M.OFPP_CONTROLLER, 128)),
    ("CONTROLLER:65535", Output(M.OFPP_CONTROLLER, 65535)),
    ("controller(max_len=64)", Output(M.OFPP_CONTROLLER, 64)),
    ("set_field:02:00:00:00:00:02->eth_dst", SetField("eth_dst", mac("02:00:00:00:00:02"))),
    ("set_field:02:00:00:00:00:03->dl_src", SetField("eth_src", mac("02:00:00:00:00:03"))),
    ("set_field:4196->vlan_vid", SetField("vlan_vid", 4196)),
    ("set_field:10.0.0.1->ip_dst", SetField("ipv4_dst", ip4("10.0.0.1"))),
    ("set_field:10.0.0.1->nw_src", SetField("ipv4_src", ip4("10.0.0.1"))),
    ("set_field:2001:db8::1->ipv6_src", SetField("ipv6_src", ip6("2001:db8::1"))),
    ("set_field:80->tcp_dst", SetField("tcp_dst", 80)),
    ("set_field:5->mpls_label", SetField("mpls_label", 5)),
    ("set_field:0x20->nw_tos", SetField("ip_dscp", 8)),
    ("set_field:7->dl_vlan", SetField("vlan_vid", 0x1007)),
    ("set_field:0x99->tun_id", SetField("tunnel_id", 0x99)),
    ("mod_dl_src:02:00:00:00:00:01", SetField("eth_src", mac("02:00:00:00:00:01"))),
    ("mod_dl_dst:02:00:00:00:00:02", SetField("eth_dst", mac("02:00:00:00:00:02"))),
    ("mod_nw_src:1.2.3.4", SetField("ipv4_src", ip4("1.2.3.4"))),
    ("mod_nw_dst:1.2.3.5", SetField("ipv4_dst", ip4("1.2.3.5"))),
    ("mod_vlan_vid:100", SetField("vlan_vid", 0x1064)),
    ("mod_vlan_pcp:5", SetField("vlan_pcp", 5)),
    ("mod_nw_tos:0x10", SetField("ip_dscp", 4)),
    ("mod_nw_ecn:2", SetField("ip_ecn", 2)),
    ("push_vlan:0x8100", M.PushVlan(0x8100)),
    ("push_vlan:0x88a8", M.PushVlan(0x88A8)),
    ("pop_vlan", M.PopVlan()),
    ("strip_vlan", M.PopVlan()),
    ("push_mpls:0x8847", M.PushMpls(0x8847)),
    ("push_mpls:0x8848", M.PushMpls(0x8848)),
    ("pop_mpls:0x0800", M.PopMpls(0x0800)),
    ("push_pbb:0x88e7", M.PushPbb(0x88E7)),
    ("pop_pbb", M.PopPbb()),
    ("set_mpls_ttl:64", M.SetMplsTtl(64)),
    ("dec_mpls_ttl", M.DecMplsTtl()),
    ("set_nw_ttl:9", M.SetNwTtl(9)),
    ("mod_nw_ttl:10", M.SetNwTtl(10)),
    ("dec_ttl", M.DecNwTtl()),
    ("copy_ttl_out", M.CopyTtlOut()),
    ("copy_ttl_in", M.CopyTtlIn()),
    ("group:7", M.Group(7)),
    ("set_queue:3", M.SetQueue(3)),
]


@pytest.mark.parametrize("text, expected", ACTION_CASES)
def test_action(text, expected):
    assert apply(text) == (expected,)
    # printed form parses back to the same action
    printed = fs.format_action(expected)
    if expected.__class__ is Output and expected.port != M.OFPP_CONTROLLER:
        # max_len means nothing for other ports: not printed (as ovs-ofctl)
        expected = Output(expected.port)
    assert apply(printed) == (expected,)


def test_mod_tp_resolved_by_protocol():
    assert apply("mod_tp_src:1000", "tcp") == (SetField("tcp_src", 1000),)
    assert apply("mod_tp_dst:53", "udp") == (SetField("udp_dst", 53),)
    assert apply("mod_tp_dst:9", "sctp") == (SetField("sctp_dst", 9),)
    assert apply("set_field:7->tp_dst", "udp") == (SetField("udp_dst", 7),)
    assert apply("set_field:1.1.1.1->nw_src", "arp") == (SetField("arp_spa", ip4("1.1.1.1")),)
    assert apply("set_field:3->icmp_type", "icmp6") == (SetField("icmpv6_type", 3),)
    assert apply("set_field:3->icmp_type", "icmp") == (SetField("icmpv4_type", 3),)


def test_action_list_and_spaces():
    assert apply("output:1, output:2 ,  output:3") == (Output(1), Output(2), Output(3))


def test_drop_and_empty():
    assert parse_flow("actions=drop").instructions == ()
    assert parse_flow("actions=").instructions == ()
    assert fs.format_instructions(()) == "drop"


# ---------------------------------------------------------------- instructions

def test_instructions_all():
    spec = parse_flow("actions=meter:3,output:1,clear_actions,write_actions(group:2,output:5),"
                      "write_metadata:0x10/0xf0,goto_table:4")
    assert spec.instructions == (
        Meter(3), ApplyActions((Output(1),)), ClearActions(),
        WriteActions((M.Group(2), Output(5))), WriteMetadata(0x10, 0xF0), GotoTable(4))
    assert parse_flow(fs.format_flow(spec)) == spec


def test_explicit_apply_actions_and_order():
    spec = parse_flow("actions=goto_table:1,apply_actions(output:1,output:2)")
    assert spec.instructions == (GotoTable(1), ApplyActions((Output(1), Output(2))))
    assert fs.format_instructions(spec.instructions) == "goto_table:1,output:1,output:2"
    assert parse_flow("actions=apply_actions()").instructions == (ApplyActions(()),)
    assert fs.format_instructions((ApplyActions(()),)) == "apply_actions()"
    assert parse_flow("actions=write_actions()").instructions == (WriteActions(()),)


def test_bare_actions_gather_into_one_apply():
    spec = parse_flow("actions=output:1,goto_table:2,output:3")
    assert spec.instructions == (ApplyActions((Output(1), Output(3))), GotoTable(2))


def test_write_metadata_forms():
    assert parse_flow("actions=write_metadata:5").instructions == (WriteMetadata(5),)
    assert parse_flow("actions=write_metadata:0xff/0x0f").instructions == (WriteMetadata(0xF, 0xF),)
    assert fs.format_instructions((WriteMetadata(5),)) == "write_metadata:0x5"


def test_nested_write_actions_with_controller():
    spec = parse_flow("actions=write_actions(controller(max_len=10),set_field:1->vlan_pcp)")
    assert spec.instructions == (WriteActions((Output(M.OFPP_CONTROLLER, 10),
                                               SetField("vlan_pcp", 1))),)


# ---------------------------------------------------------------- filters

def test_filter():
    f = fs.parse_flow_filter("table=3,priority=7,cookie=0x10/0xf0,out_port=2,out_group=4,in_port=1")
    assert (f.table_id, f.priority, f.cookie, f.cookie_mask, f.out_port, f.out_group) == \
        (3, 7, 0x10, 0xF0, 2, 4)
    assert f.match.fields == {"in_port": (1, None)}
    f = fs.parse_flow_filter("")
    assert (f.table_id, f.priority, f.cookie_mask, f.out_port, f.out_group) == \
        (M.OFPTT_ALL, None, 0, M.OFPP_ANY, M.OFPG_ANY)
    assert fs.parse_flow_filter("table=all").table_id == M.OFPTT_ALL
    assert fs.parse_flow_filter("cookie=5").cookie_mask == (1 << 64) - 1


# ---------------------------------------------------------------- printing

def test_format_flow_dump_line():
    spec = parse_flow("priority=100,in_port=1,actions=output:2")
    line = fs.format_flow(FlowStats(spec, 3, 294, 1_234_000_000))
    assert line == (" cookie=0x0, duration=1.234s, table=0, n_packets=3, n_bytes=294, "
                    "priority=100,in_port=1 actions=output:2")
    assert parse_flow(line) == spec
    empty = FlowStats(FlowSpec(), 0, 0, 0)
    assert fs.format_flow(empty) == (" cookie=0x0, duration=0.000s, table=0, n_packets=0, "
                                     "n_bytes=0, actions=drop")
    assert parse_flow(fs.format_flow(empty)) == FlowSpec()


def test_format_uses_ovs_names_and_shorthands():
    spec = parse_flow("tcp,in_port=1,dl_src=02:00:00:00:00:01,nw_src=10.0.0.0/8,tp_dst=80,"
                      "dl_vlan=10,actions=NORMAL")
    assert fs.format_match(spec.match) == ("tcp,in_port=1,dl_src=02:00:00:00:00:01,"
                                           "nw_src=10.0.0.0/8,tp_dst=80,dl_vlan=10")
    assert fs.format_instructions(spec.instructions) == "NORMAL"
    assert fs.format_match(fs.parse_match("arp,arp_op=1,nw_src=1.2.3.4")) == \
        "arp,arp_op=1,arp_spa=1.2.3.4"
    assert fs.format_match(fs.parse_match("vlan_tci=0")) == "vlan_tci=0x0000"
    assert fs.format_match(fs.parse_match("ip,nw_tos=32")) == "ip,nw_tos=32"


# ---------------------------------------------------------------- groups

def test_group_forms():
    g = parse_group("group_id=1,type=select,bucket=weight:10,watch_port:2,actions=output:1,"
                    "bucket=weight=20,actions=output:2")
    assert g == GroupSpec(1, M.OFPGT_SELECT, (
        Bucket((Output(1),), weight=10, watch_port=2), Bucket((Output(2),), weight=20)))
    g = parse_group("group_id=2,type=all,bucket=output:1,bucket=output:2,output:3")
    assert g == GroupSpec(2, M.OFPGT_ALL, (Bucket((Output(1),)), Bucket((Output(2), Output(3)))))
    g = parse_group("group_id=3,type=fast_failover,bucket=watch_port:2,output:2,"
                    "bucket=watch_port:3,watch_group:9,output:3")
    assert g == GroupSpec(3, M.OFPGT_FF, (Bucket((Output(2),), watch_port=2),
                                           Bucket((Output(3),), watch_port=3, watch_group=9)))
    assert parse_group("group_id=4,type=ff,bucket=output:1").type == M.OFPGT_FF
    g = parse_group("group_id=5,type=indirect,bucket=actions=set_field:5->vlan_pcp,group:3")
    assert g == GroupSpec(5, M.OFPGT_INDIRECT, (Bucket((SetField("vlan_pcp", 5), M.Group(3))),))
    assert parse_group("group_id=6,type=select,bucket=output:1").buckets[0].weight == 1
    assert parse_group("group_id=7") == GroupSpec(7)
    assert parse_group("group_id=8,bucket=actions=drop").buckets == (Bucket(()),)


def test_group_format():
    g = GroupSpec(1, M.OFPGT_SELECT, (Bucket((Output(1),), weight=10, watch_port=2),
                                      Bucket((Output(2),), weight=1)))
    assert fs.format_group(g) == ("group_id=1,type=select,bucket=weight:10,watch_port:2,"
                                  "actions=output:1,bucket=actions=output:2")
    assert parse_group(fs.format_group(g)) == g


def test_group_selector():
    assert fs.parse_group_id("") == M.OFPG_ALL
    assert fs.parse_group_id("group_id=all") == M.OFPG_ALL
    assert fs.parse_group_id("group_id=5") == 5


# ---------------------------------------------------------------- meters

def test_meter_forms():
    m = parse_meter("meter=1,kbps,burst,bands=type=drop,rate=1000,burst_size=100")
    assert m == MeterSpec(1, M.OFPMF_KBPS | M.OFPMF_BURST, (Band(M.OFPMBT_DROP, 1000, 100),))
    m = parse_meter("meter=2,pktps,stats,bands=type=dscp_remark,rate=10,prec_level=1,"
                    "type=drop,rate=20")
    assert m == MeterSpec(2, M.OFPMF_PKTPS | M.OFPMF_STATS, (
        Band(M.OFPMBT_DSCP_REMARK, 10, 0, 1), Band(M.OFPMBT_DROP, 20)))
    assert parse_meter("meter=3,bands=type=drop,rate=5").flags == M.OFPMF_KBPS
    assert parse_meter(fs.format_meter(m)) == m
    assert fs.format_meter(MeterSpec(1, M.OFPMF_KBPS, (Band(M.OFPMBT_DROP, 1000),))) == \
        "meter=1,kbps,bands=type=drop,rate=1000"
    assert fs.parse_meter_id("meter=all") == 0xFFFFFFFF
    assert fs.parse_meter_id("meter=4") == 4


# ---------------------------------------------------------------- errors

ERROR_CASES = [
    # (text, substring of the message, column, token)
    ("priority=1,in_port=x1,actions=drop", "bad value 'x1' for field 'in_port'", 20, "x1"),
    ("in_prot=1,actions=drop", "unknown field 'in_prot'", 1, "in_prot"),
    ("ip,nw_src=10.0.0.300,actions=drop", "bad value '10.0.0.300' for field 'nw_src'", 11,
     "10.0.0.300"),
    ("in_port=1,actions=outptu:2", "unknown action 'outptu:2'", 19, "outptu:2"),
    ("in_port=1,actions=output:2,bogus_action", "unknown action 'bogus_action'", 28,
     "bogus_action"),
    ("tcp,tp_dst=99999,actions=drop", "bad value '99999' for field 'tp_dst'", 12, "99999"),
    ("dl_dst=02:00:00:00:00,actions=drop", "bad value '02:00:00:00:00'", 8, "02:00:00:00:00"),
    ("tcp,tcp_dst=80/0xff,actions=drop", "field 'tcp_dst' cannot be masked", 16, "0xff"),
    ("priority=70000,actions=drop", "bad value '70000' for field 'priority'", 10, "70000"),
    ("table=255,actions=drop", "bad value '255' for field 'table'", 7, "255"),
    ("cookie=0x1/0xff,actions=drop", "cookie mask is only allowed", 8, "0x1/0xff"),
    ("idle_timeout=-1,actions=drop", "bad value '-1' for field 'idle_timeout'", 14, "-1"),
    ("actions=set_field:1->in_port", "field 'in_port' cannot be set", 22, "in_port"),
    ("actions=set_field:1/1->tcp_dst", "set_field takes no mask", 19, "1/1"),
    ("actions=set_field:5", "'set_field' needs VALUE->FIELD", 9, "set_field:5"),
    ("actions=set_field:5->bogus", "unknown field 'bogus'", 22, "bogus"),
    ("actions=set_field:x->eth_dst", "bad value 'x' for field 'eth_dst'", 19, "x"),
    ("actions=goto_table:1,goto_table:2", "given twice", 22, "goto_table:2"),
    ("actions=output:1,drop", "'drop' cannot be combined", 18, "drop"),
    ("actions=write_actions(goto_table:1)", "not allowed inside write_actions", 23,
     "goto_table:1"),
    ("actions=apply_actions(meter:1)", "not allowed inside apply_actions", 23, "meter:1"),
    ("actions=write_actions(output:1", "unbalanced '('", 22, "("),
    ("actions=output:1)", "unbalanced ')'", 17, ")"),
    ("actions=mod_tp_dst:80", "'tp_dst' needs the flow to match", 9, "mod_tp_dst:80"),
    ("tp_dst=80,actions=drop", "field 'tp_dst' needs the IP protocol", 1, "tp_dst=80"),
    ("ip,nw_tos=3,actions=drop", "bad value '3' for field 'nw_tos'", 11, "3"),
    ("dl_vlan=5000,actions=drop", "bad value '5000' for field 'dl_vlan'", 9, "5000"),
    ("in_port=1,in_port=2,actions=drop", "conflicts", 19, "2"),
    ("in_port,actions=drop", "field 'in_port' needs a value", 1, "in_port"),
    ("foo,actions=drop", "unknown field or keyword 'foo'", 1, "foo"),
    ("actions=output:ANY", "bad value 'ANY' for field 'output'", 16, "ANY"),
    ("actions=controller:70000", "bad argument '70000' for 'controller'", 20, "70000"),
    ("actions=push_vlan:0x10000", "bad argument '0x10000' for 'push_vlan'", 19, "0x10000"),
    ("actions=pop_mpls", "'pop_mpls' needs an ethertype", 9, "pop_mpls"),
    ("actions=group:x", "bad argument 'x' for 'group'", 15, "x"),
    ("actions=meter:0", "bad argument '0' for 'meter'", 15, "0"),
    ("actions=goto_table", "'goto_table' needs an argument", 9, "goto_table"),
    ("actions=write_metadata:0x1/zz", "bad argument 'zz' for 'write_metadata'", 28, "zz"),
    ("actions=pop_vlan:1", "'pop_vlan' takes no argument", 9, "pop_vlan:1"),
    ("actions=controller(maxlen=5)", "bad argument 'maxlen=5' for 'controller'", 20, "maxlen=5"),
    ("actions=write_actions", "'write_actions' needs (ACTIONS)", 9, "write_actions"),
    ("importance=1,actions=drop", "OpenFlow 1.4", 1, "importance=1"),
    ("out_port=1,actions=drop", "only allowed in flow filters", 1, "out_port=1"),
    ("in_port=1", "missing 'actions='", None, None),
    ("ipv6,ipv6_src=2001:db8::/200,actions=drop", "bad value '2001:db8::/200'", 15,
     "2001:db8::/200"),
    ("metadata=0x1/0x1ffffffffffffffff,actions=drop", "mask does not fit", 14,
     "0x1ffffffffffffffff"),
    ("eth_type=0x10000,actions=drop", "bad value '0x10000' for field 'eth_type'", 10, "0x10000"),
]


@pytest.mark.parametrize("text, msg, column, token", ERROR_CASES)
def test_error_names_token_and_column(text, msg, column, token):
    with pytest.raises(FlowSyntaxError) as ei:
        parse_flow(text)
    e = ei.value
    assert msg in str(e)
    assert e.column == column, str(e)
    assert e.token == token
    if column is not None:
        assert f"at column {column}" in str(e)
        assert text[column - 1:].startswith(token), (text, column, token)


FILTER_ERRORS = [
    ("in_port=1,actions=drop", "'actions=' is not allowed in a flow filter", 11),
    ("idle_timeout=5", "not allowed in a flow filter", 1),
    ("send_flow_rem", "not allowed in a flow filter", 1),
    ("out_port=bogus", "bad value 'bogus' for field 'out_port'", 10),
    ("cookie=1/zz", "bad value 'zz' for field 'cookie'", 10),
]


@pytest.mark.parametrize("text, msg, column", FILTER_ERRORS)
def test_filter_errors(text, msg, column):
    with pytest.raises(FlowSyntaxError) as ei:
        fs.parse_flow_filter(text)
    assert msg in str(ei.value)
    assert ei.value.column == column


GROUP_ERRORS = [
    ("type=all,bucket=output:1", "missing 'group_id='", None),
    ("group_id=1,type=foo", "bad value 'foo' for field 'type'", 17),
    ("group_id=x", "bad value 'x' for field 'group_id'", 10),
    ("group_id=1,bucket=weight:x,output:1", "bad value 'x' for field 'weight'", 26),
    ("group_id=1,bucket=output:1,frobnicate", "unknown action 'frobnicate'", 28),
    ("group_id=1,foo=2", "unknown group field 'foo'", 12),
    ("group_id=1,bucket=bucket_id:1,output:1", "OpenFlow 1.5", 19),
    ("group_id=1,bucket=actions=goto_table:1", "not allowed inside a group bucket", 27),
    ("group_id=1,bucket=watch_port:zz,output:1", "bad value 'zz' for field 'watch_port'", 30),
    ("group_id=1,bucket=weight:1,weight:2,output:1", "given twice", 28),
    ("group_id=1,bucket=output:1,drop", "'drop' cannot be combined", 28),
]


@pytest.mark.parametrize("text, msg, column", GROUP_ERRORS)
def test_group_errors(text, msg, column):
    with pytest.raises(FlowSyntaxError) as ei:
        parse_group(text)
    assert msg in str(ei.value)
    assert ei.value.column == column


METER_ERRORS = [
    ("kbps,bands=type=drop,rate=1", "missing 'meter='", None),
    ("meter=1,bands=type=drop", "band has no rate=", 15),
    ("meter=1,bands=type=drop,rate=1,prec_level=2", "only applies to dscp_remark", 32),
    ("meter=1,bands=type=foo,rate=1", "bad value 'foo' for field 'type'", 20),
    ("meter=1,fast,bands=type=drop,rate=1", "unknown meter field 'fast'", 9),
    ("meter=0,bands=type=drop,rate=1", "bad value '0' for field 'meter'", 7),
    ("meter=1,bands=rate=1", "a band must start with type=", 15),
    ("meter=1,bands=type=drop,rate=x", "bad value 'x' for field 'rate'", 30),
    ("meter=1,bands=type=drop,rate=1,color=2", "unknown band field 'color'", 32),
]


@pytest.mark.parametrize("text, msg, column", METER_ERRORS)
def test_meter_errors(text, msg, column):
    with pytest.raises(FlowSyntaxError) as ei:
        parse_meter(text)
    assert msg in str(ei.value)
    assert ei.value.column == column


# ---------------------------------------------------------------- round trips

def _field_value(name):
    bits = M.FIELD_BITS[name]
    full = (1 << bits) - 1
    value = st.integers(0, full)
    if name not in M.MASKABLE:
        return st.tuples(value, st.none())
    mask = st.integers(1, full - 1) if bits > 1 else st.none()
    return st.tuples(value, st.one_of(st.none(), mask))


@st.composite
def matches(draw):
    names = draw(st.lists(st.sampled_from([f[0] for f in M.FIELDS]), unique=True, max_size=8))
    m = Match()
    for name in names:
        v, mk = draw(_field_value(name))
        m.set(name, v, mk)
    return m


_RESERVED_OUT = [M.OFPP_IN_PORT, M.OFPP_TABLE, M.OFPP_NORMAL, M.OFPP_FLOOD, M.OFPP_ALL,
                 M.OFPP_LOCAL]


@st.composite
def actions(draw):
    kind = draw(st.integers(0, 16))
    if kind == 0:
        return Output(draw(st.one_of(st.integers(0, M.OFPP_MAX), st.sampled_from(_RESERVED_OUT))))
    if kind == 1:
        return Output(M.OFPP_CONTROLLER, draw(st.integers(0, 0xFFFF)))
    if kind == 2:
        name = draw(st.sampled_from(sorted(M.SETTABLE)))
        return SetField(name, draw(st.integers(0, (1 << M.FIELD_BITS[name]) - 1)))
    u16 = st.integers(0, 0xFFFF)
    u8 = st.integers(0, 255)
    return draw(st.sampled_from([
        st.builds(M.PushVlan, u16), st.just(M.PopVlan()), st.builds(M.PushMpls, u16),
        st.builds(M.PopMpls, u16), st.builds(M.PushPbb, u16), st.just(M.PopPbb()),
        st.builds(M.SetMplsTtl, u8), st.just(M.DecMplsTtl()), st.builds(M.SetNwTtl, u8),
        st.just(M.DecNwTtl()), st.just(M.CopyTtlOut()), st.just(M.CopyTtlIn()),
        st.builds(M.Group, st.integers(0, 0xFFFFFF00)),
        st.builds(M.SetQueue, st.integers(0, (1 << 32) - 1)),
    ]).flatmap(lambda s: s))


action_lists = st.lists(actions(), max_size=5).map(tuple)


@st.composite
def instruction_tuples(draw):
    kinds = draw(st.lists(st.sampled_from(["meter", "apply", "clear", "write", "meta", "goto"]),
                          unique=True, max_size=6))
    out = []
    for k in kinds:
        if k == "meter":
            out.append(Meter(draw(st.integers(1, 0xFFFF0000))))
        elif k == "apply":
            out.append(ApplyActions(draw(action_lists)))
        elif k == "clear":
            out.append(ClearActions())
        elif k == "write":
            out.append(WriteActions(draw(action_lists)))
        elif k == "meta":
            mask = draw(st.integers(1, (1 << 64) - 1))
            out.append(WriteMetadata(draw(st.integers(0, (1 << 64) - 1)) & mask, mask))
        else:
            out.append(GotoTable(draw(st.integers(0, 254))))
    return tuple(out)


flow_specs = st.builds(
    FlowSpec, table_id=st.integers(0, 254), priority=st.integers(0, 0xFFFF), match=matches(),
    instructions=instruction_tuples(), cookie=st.integers(0, (1 << 64) - 1),
    idle_timeout=st.integers(0, 0xFFFF), hard_timeout=st.integers(0, 0xFFFF),
    flags=st.integers(0, 0x1F))

_settings = settings(max_examples=200, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])


@_settings
@given(flow_specs)
def test_roundtrip_flowspec(spec):
    text = fs.format_flow(spec)
    assert parse_flow(text) == spec, text


@_settings
@given(flow_specs, st.integers(0, 2**40), st.integers(0, 2**40), st.integers(0, 2**50))
def test_roundtrip_flowstats_line(spec, pkts, nbytes, dur):
    line = fs.format_flow(FlowStats(spec, pkts, nbytes, dur))
    assert parse_flow(line) == spec, line


@_settings
@given(matches())
def test_roundtrip_match(m):
    text = fs.format_match(m)
    assert fs.parse_match(text) == m, text


_watch_ports = st.one_of(st.just(M.OFPP_ANY), st.integers(0, M.OFPP_MAX),
                         st.sampled_from(_RESERVED_OUT + [M.OFPP_CONTROLLER]))
buckets = st.builds(Bucket, actions=action_lists, weight=st.integers(0, 0xFFFF),
                    watch_port=_watch_ports,
                    watch_group=st.one_of(st.just(M.OFPG_ANY), st.integers(0, 0xFFFFFF00)))
group_specs = st.builds(GroupSpec, group_id=st.integers(0, 0xFFFFFF00),
                        type=st.sampled_from([0, 1, 2, 3]),
                        buckets=st.lists(buckets, max_size=4).map(tuple))


@_settings
@given(group_specs)
def test_roundtrip_group(g):
    text = fs.format_group(g)
    assert parse_group(text) == g, text


bands = st.one_of(
    st.builds(Band, type=st.just(M.OFPMBT_DROP), rate=st.integers(0, 2**32 - 1),
              burst_size=st.integers(0, 2**32 - 1)),
    st.builds(Band, type=st.just(M.OFPMBT_DSCP_REMARK), rate=st.integers(0, 2**32 - 1),
              burst_size=st.integers(0, 2**32 - 1), prec_level=st.integers(0, 63)))
meter_specs = st.builds(
    MeterSpec, meter_id=st.integers(1, 0xFFFF0000),
    flags=st.tuples(st.sampled_from([M.OFPMF_KBPS, M.OFPMF_PKTPS]),
                    st.sampled_from([0, M.OFPMF_BURST]),
                    st.sampled_from([0, M.OFPMF_STATS])).map(sum),
    bands=st.lists(bands, max_size=3).map(tuple))


@_settings
@given(meter_specs)
def test_roundtrip_meter(m):
    text = fs.format_meter(m)
    assert parse_meter(text) == m, text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="in_port=actions:,()0123456789abcdefx/->. ", max_size=40))
def test_garbage_raises_only_flowsyntaxerror(text):
    try:
        parse_flow(text)
    except FlowSyntaxError:
        pass
