"""datapath.ofp (the switch-side OpenFlow 1.3 codec) against os-ken as the oracle.

Controller -> switch messages are built and serialized by os-ken, decoded by
datapath.ofp and compared field by field with the datapath.model values they
were built from.  Switch -> controller messages are encoded by datapath.ofp,
parsed by os-ken and converted back to model values for the comparison.
Every malformed case checks the exact (error type, code).  os-ken is only
imported here, never by datapath.ofp.
"""
import ipaddress
import struct
from pathlib import Path

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from datapath import model as M
from datapath import ofp as O
from datapath.ofp import consts as C
from datapath.ofp import actions as A
from datapath.ofp import multipart as MP
from datapath.ofp import oxm as X
import oskwire
from oskwire import DP, osk_parse

XID = 0x1234ABCD


def osk_bytes(msg, xid=XID):
    return oskwire.osk_bytes(msg, xid)


def roundtrip_in(osk_msg, xid=XID):
    """os-ken message -> bytes -> datapath.ofp.decode; encoding the decoded
    message gives back os-ken's bytes exactly."""
    raw = osk_bytes(osk_msg, xid)
    msg = O.decode(raw)
    assert msg.xid == xid
    assert O.encode(msg) == raw
    return msg


def roundtrip_out(msg):
    raw = O.encode(msg)
    p = osk_parse(raw)
    assert p.xid == msg.xid and p.version == 4 and p.msg_len == len(raw)
    return p


# ---- model <-> os-ken user values ---------------------------------------------------

MAC_FIELDS = {"eth_dst", "eth_src", "arp_sha", "arp_tha", "ipv6_nd_sll", "ipv6_nd_tll"}
IP4_FIELDS = {"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa"}
IP6_FIELDS = {"ipv6_src", "ipv6_dst", "ipv6_nd_target"}


def to_user(name, v):
    if name in MAC_FIELDS:
        return ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))
    if name in IP4_FIELDS:
        return str(ipaddress.IPv4Address(v))
    if name in IP6_FIELDS:
        return str(ipaddress.IPv6Address(v))
    return v


def from_user(name, v):
    if name in MAC_FIELDS:
        return int(v.replace(":", ""), 16)
    if name in IP4_FIELDS:
        return int(ipaddress.IPv4Address(v))
    if name in IP6_FIELDS:
        return int(ipaddress.IPv6Address(v))
    return v


def osk_match(match):
    fields = []
    for k, (v, m) in match.fields.items():
        fields.append((k, to_user(k, v) if m is None else (to_user(k, v), to_user(k, m))))
    return parser.OFPMatch(_ordered_fields=fields)


def from_osk_match(om):
    m = M.Match()
    for k, uv in om.items():
        if isinstance(uv, tuple):
            m.fields[k] = (from_user(k, uv[0]), from_user(k, uv[1]))
        else:
            m.fields[k] = (from_user(k, uv), None)
    return m


_NOARG = {M.CopyTtlOut: parser.OFPActionCopyTtlOut, M.CopyTtlIn: parser.OFPActionCopyTtlIn,
          M.DecMplsTtl: parser.OFPActionDecMplsTtl, M.PopVlan: parser.OFPActionPopVlan,
          M.DecNwTtl: parser.OFPActionDecNwTtl, M.PopPbb: parser.OFPActionPopPbb}
_ETH = {M.PushVlan: parser.OFPActionPushVlan, M.PushMpls: parser.OFPActionPushMpls,
        M.PopMpls: parser.OFPActionPopMpls, M.PushPbb: parser.OFPActionPushPbb}


def osk_action(a):
    t = type(a)
    if t is M.Output:
        return parser.OFPActionOutput(a.port, a.max_len)
    if t is M.SetField:
        return parser.OFPActionSetField(**{a.field: to_user(a.field, a.value)})
    if t in _NOARG:
        return _NOARG[t]()
    if t in _ETH:
        return _ETH[t](a.ethertype)
    if t is M.SetMplsTtl:
        return parser.OFPActionSetMplsTtl(a.ttl)
    if t is M.SetNwTtl:
        return parser.OFPActionSetNwTtl(a.ttl)
    if t is M.Group:
        return parser.OFPActionGroup(a.group_id)
    if t is M.SetQueue:
        return parser.OFPActionSetQueue(a.queue_id)
    if t is O.ExperimenterAction:
        return parser.OFPActionExperimenterUnknown(a.experimenter, a.data)
    raise TypeError(a)


def from_osk_action(a):
    n = type(a).__name__
    for mt, ot in _NOARG.items():
        if type(a) is ot:
            return mt()
    for mt, ot in _ETH.items():
        if type(a) is ot:
            return mt(a.ethertype)
    return {
        "OFPActionOutput": lambda: M.Output(a.port, a.max_len),
        "OFPActionSetField": lambda: M.SetField(a.key, from_user(a.key, a.value)),
        "OFPActionSetMplsTtl": lambda: M.SetMplsTtl(a.mpls_ttl),
        "OFPActionSetNwTtl": lambda: M.SetNwTtl(a.nw_ttl),
        "OFPActionGroup": lambda: M.Group(a.group_id),
        "OFPActionSetQueue": lambda: M.SetQueue(a.queue_id),
        "OFPActionExperimenterUnknown": lambda: O.ExperimenterAction(a.experimenter, bytes(a.data)),
    }[n]()


def osk_inst(i):
    t = type(i)
    if t is M.GotoTable:
        return parser.OFPInstructionGotoTable(i.table_id)
    if t is M.WriteMetadata:
        return parser.OFPInstructionWriteMetadata(i.metadata, i.mask)
    if t is M.ApplyActions:
        return parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [osk_action(a) for a in i.actions])
    if t is M.WriteActions:
        return parser.OFPInstructionActions(ofp.OFPIT_WRITE_ACTIONS, [osk_action(a) for a in i.actions])
    if t is M.ClearActions:
        return parser.OFPInstructionActions(ofp.OFPIT_CLEAR_ACTIONS, [])
    if t is M.Meter:
        return parser.OFPInstructionMeter(i.meter_id)
    raise TypeError(i)


def from_osk_inst(i):
    if isinstance(i, parser.OFPInstructionGotoTable):
        return M.GotoTable(i.table_id)
    if isinstance(i, parser.OFPInstructionWriteMetadata):
        return M.WriteMetadata(i.metadata, i.metadata_mask)
    if isinstance(i, parser.OFPInstructionMeter):
        return M.Meter(i.meter_id)
    acts = tuple(from_osk_action(a) for a in i.actions)
    return {ofp.OFPIT_APPLY_ACTIONS: lambda: M.ApplyActions(acts),
            ofp.OFPIT_WRITE_ACTIONS: lambda: M.WriteActions(acts),
            ofp.OFPIT_CLEAR_ACTIONS: lambda: M.ClearActions()}[i.type]()


def osk_bucket(b):
    return parser.OFPBucket(b.weight, b.watch_port, b.watch_group, [osk_action(a) for a in b.actions])


def from_osk_bucket(b):
    return M.Bucket(tuple(from_osk_action(a) for a in b.actions), b.weight, b.watch_port, b.watch_group)


def osk_band(b):
    if isinstance(b, O.ExperimenterBand):
        return parser.OFPMeterBandExperimenter(b.rate, b.burst_size, b.experimenter)
    if b.type == ofp.OFPMBT_DROP:
        return parser.OFPMeterBandDrop(b.rate, b.burst_size)
    return parser.OFPMeterBandDscpRemark(b.rate, b.burst_size, b.prec_level)


def from_osk_band(b):
    if isinstance(b, parser.OFPMeterBandExperimenter):
        return O.ExperimenterBand(b.rate, b.burst_size, b.experimenter)
    if isinstance(b, parser.OFPMeterBandDscpRemark):
        return M.Band(ofp.OFPMBT_DSCP_REMARK, b.rate, b.burst_size, b.prec_level)
    return M.Band(ofp.OFPMBT_DROP, b.rate, b.burst_size)


# ---- sample data ---------------------------------------------------------------------

def _full(name):
    return (1 << X.FIELD_INFO[name][2]) - 1


# A value per field, inside its width (vlan_vid with OFPVID_PRESENT).
VALUES = {
    "in_port": 7, "in_phy_port": 3, "metadata": 0x0123456789ABCDEF, "eth_dst": 0x0A1B2C3D4E5F,
    "eth_src": 0x020000000001, "eth_type": 0x0800, "vlan_vid": 0x1000 | 0x123, "vlan_pcp": 5,
    "ip_dscp": 46, "ip_ecn": 2, "ip_proto": 6, "ipv4_src": 0x0A000001, "ipv4_dst": 0xC0A80A14,
    "tcp_src": 1234, "tcp_dst": 80, "udp_src": 53, "udp_dst": 5353, "sctp_src": 3868,
    "sctp_dst": 2905, "icmpv4_type": 8, "icmpv4_code": 0, "arp_op": 1, "arp_spa": 0x0A000002,
    "arp_tpa": 0x0A000003, "arp_sha": 0x020000000002, "arp_tha": 0x020000000003,
    "ipv6_src": 0x20010DB8000000000000000000000001, "ipv6_dst": 0xFE800000000000000000000000000002,
    "ipv6_flabel": 0xABCDE, "icmpv6_type": 135, "icmpv6_code": 0,
    "ipv6_nd_target": 0x20010DB8000000000000000000000099, "ipv6_nd_sll": 0x020000000004,
    "ipv6_nd_tll": 0x020000000005, "mpls_label": 0xFFFFE, "mpls_tc": 5, "mpls_bos": 1,
    "pbb_isid": 0xABCDEF, "tunnel_id": 0xFEDCBA9876543210, "ipv6_exthdr": 0x1FF,
}
# A mask per maskable field, not all ones; the masked value is VALUES & MASKS.
MASKS = {
    "metadata": 0xFFFFFFFF00000000, "eth_dst": 0xFFFFFF000000, "eth_src": 0x00FFFFFFFFFF,
    "vlan_vid": 0x1F00, "ipv4_src": 0xFFFFFF00, "ipv4_dst": 0xFFFF00FF, "arp_spa": 0xFFFFFF00,
    "arp_tpa": 0xFFFF00FF, "arp_sha": 0xFFFF00FFFFFF, "arp_tha": 0xFFFFFFFFFF00,
    "ipv6_src": 0xFFFFFFFFFFFFFFFF0000000000000000, "ipv6_dst": 0xFFFF << 112,
    "ipv6_flabel": 0xFFFF0, "pbb_isid": 0xFFFF00, "tunnel_id": 0xFFFFFFFF00000000,
    "ipv6_exthdr": 0x0F0,
}
assert set(MASKS) == M.MASKABLE
ALL_FIELDS = [name for name, *_ in M.FIELDS]
FIELD_CASES = [(n, False) for n in ALL_FIELDS] + [(n, True) for n in ALL_FIELDS if n in M.MASKABLE]


def prereqs(name):
    """(field, value) pairs that satisfy name's prerequisites, outermost first."""
    chain = []
    req = X.PREREQUISITES.get(name)
    while req:
        dep, allowed = req
        if allowed == "present":
            v = 0x1001
        elif allowed is None:
            v = VALUES[dep]
        elif name == "ipv6_nd_tll" and dep == "icmpv6_type":
            v = 136
        else:
            v = allowed[0]
        chain.insert(0, (dep, v))
        name, req = dep, X.PREREQUISITES.get(dep)
    return chain


def match_for(name, masked):
    m = M.Match()
    for dep, v in prereqs(name):
        m.fields[dep] = (v, None)
    v = VALUES[name]
    if name == "icmpv6_type" or (name in ("ip_proto", "eth_type")):
        v = m.fields.get(name, (v, None))[0]
    if masked:
        m.fields[name] = (v & MASKS[name], MASKS[name])
    else:
        m.fields[name] = (v, None)
    return m


def full_match():
    """Many fields at once, some masked, in a non-canonical (but prerequisite-respecting) order."""
    m = M.Match()
    m.fields["eth_type"] = (0x0800, None)
    m.fields["in_port"] = (1, None)
    m.fields["ip_proto"] = (17, None)
    m.fields["udp_dst"] = (4789, None)
    m.fields["ipv4_dst"] = (0x0A000000, 0xFF000000)
    m.fields["metadata"] = (0x10, 0xF0)
    m.fields["eth_src"] = (0x020000000000, 0xFFFFFF000000)
    m.fields["vlan_vid"] = (0x1000, 0x1000)
    m.fields["vlan_pcp"] = (3, None)
    return m


def all_actions():
    return (
        M.Output(1), M.Output(ofp.OFPP_CONTROLLER, 128), M.Output(ofp.OFPP_IN_PORT, 0),
        M.CopyTtlOut(), M.CopyTtlIn(), M.SetMplsTtl(64), M.DecMplsTtl(), M.PushVlan(0x8100),
        M.PushVlan(0x88A8), M.PopVlan(), M.PushMpls(0x8847), M.PushMpls(0x8848),
        M.PopMpls(0x0800), M.SetQueue(3), M.Group(42), M.SetNwTtl(9), M.DecNwTtl(),
        M.PushPbb(0x88E7), M.PopPbb(),
        M.SetField("eth_dst", 0x0A0B0C0D0E0F), M.SetField("vlan_vid", 0x1005),
        M.SetField("ipv6_src", VALUES["ipv6_src"]),
    )


def set_field_actions():
    return tuple(M.SetField(n, VALUES[n]) for n in ALL_FIELDS if n in M.SETTABLE)


def all_instructions():
    return (M.Meter(7), M.ApplyActions(all_actions()), M.ClearActions(),
            M.WriteActions((M.Output(2), M.Group(1), M.SetQueue(1))),
            M.WriteMetadata(0xAB, 0xFF), M.GotoTable(9))


def sample_groups():
    return [
        M.GroupSpec(1, M.OFPGT_ALL, (M.Bucket((M.Output(1),)), M.Bucket((M.Output(2), M.PopVlan()))),),
        M.GroupSpec(2, M.OFPGT_SELECT, (M.Bucket((M.Output(1),), weight=3),
                                        M.Bucket((M.SetField("eth_dst", 1), M.Output(2)), weight=7))),
        M.GroupSpec(3, M.OFPGT_INDIRECT, (M.Bucket((M.Group(1),)),)),
        M.GroupSpec(4, M.OFPGT_FF, (M.Bucket((M.Output(1),), watch_port=1),
                                    M.Bucket((M.Output(2),), watch_group=2))),
        M.GroupSpec(5, M.OFPGT_ALL, ()),
    ]


def sample_meters():
    return [
        M.MeterSpec(1, M.OFPMF_KBPS, (M.Band(M.OFPMBT_DROP, 1000, 0),)),
        M.MeterSpec(2, M.OFPMF_PKTPS | M.OFPMF_BURST | M.OFPMF_STATS,
                    (M.Band(M.OFPMBT_DSCP_REMARK, 100, 10, 1), M.Band(M.OFPMBT_DROP, 1000, 100))),
        M.MeterSpec(3, M.OFPMF_KBPS, (O.ExperimenterBand(5, 6, 0x00FFEEDD),)),
        M.MeterSpec(ofp.OFPM_CONTROLLER, M.OFPMF_PKTPS, ()),
    ]


# ---- constants ---------------------------------------------------------------------------

def test_constants_match_os_ken():
    # os-ken still uses the pre-IANA port 6633; the 1.3.5 spec says 6653.
    skip = {"OFP_TCP_PORT"}
    checked = 0
    for name in dir(C):
        if name.isupper() and name not in skip and hasattr(ofp, name):
            assert getattr(C, name) == getattr(ofp, name), name
            checked += 1
    assert checked > 250
    assert C.OFP_TCP_PORT == 6653


# ---- symmetric messages ------------------------------------------------------------------

def test_hello_from_controller_with_bitmap():
    # os-ken cannot serialize hello elements: build the bitmap by hand, let
    # os-ken parse it as the reference.
    raw = bytes.fromhex("04000010" "00000005" "0001" "0008" "00000052")  # versions 1, 4, 6
    h = O.decode(raw)
    assert h.xid == 5 and h.version == 4 and h.versions == {1, 4, 6}
    assert set(osk_parse(raw).elements[0].versions) == {1, 4, 6}
    assert O.negotiate_version(h) == 4
    assert O.negotiate_version(h, supported=(1, 4, 6)) == 6


def test_hello_bare_and_other_versions():
    h = roundtrip_in(parser.OFPHello(DP))
    assert h.versions is None and h.version == 4 and O.negotiate_version(h) == 4
    # An OpenFlow 1.0 hello: any version decodes (negotiation), body ignored.
    h10 = O.decode(bytes.fromhex("0100000c00000009deadbeef"))
    assert h10.version == 1 and h10.versions is None and O.negotiate_version(h10) is None
    # A 1.5 hello without a bitmap negotiates down to 1.3.
    h15 = O.decode(bytes.fromhex("0600000800000001"))
    assert O.negotiate_version(h15) == 4
    # A bitmap with no common version.
    hb = O.decode(bytes.fromhex("0500001000000001" "0001000800000020"))
    assert hb.versions == {5} and O.negotiate_version(hb) is None


def test_hello_unknown_element_kept_and_missing_final_pad_tolerated():
    raw = bytes.fromhex("04000018" "00000001" "0007000601020000" "00010008") + bytes.fromhex("00000010")
    h = O.decode(raw)
    assert h.elements == ((7, b"\x01\x02"),) and h.versions == {4}
    raw2 = bytes.fromhex("0400000e" "00000001" "000700060102")  # element not padded at the end
    assert O.decode(raw2).elements == ((7, b"\x01\x02"),)


def test_hello_encode_parsed_by_os_ken():
    p = roundtrip_out(O.Hello(77))
    assert p.elements[0].versions == [4]
    raw = O.encode(O.Hello(1, versions=frozenset({1, 3, 4, 5})))
    assert O.decode(raw).versions == {1, 3, 4, 5}
    assert sorted(osk_parse(raw).elements[0].versions) == [1, 3, 4, 5]


def test_error_both_directions():
    m = roundtrip_in(parser.OFPErrorMsg(DP, ofp.OFPET_BAD_MATCH, ofp.OFPBMC_BAD_PREREQ, b"abc"))
    assert (m.type, m.code, m.data, m.experimenter) == (4, 9, b"abc", None)
    e = parser.OFPErrorMsg(DP, ofp.OFPET_EXPERIMENTER, data=b"xyz", exp_type=2600,
                           experimenter=C.ONF_EXPERIMENTER_ID)
    m = roundtrip_in(e)
    assert (m.type, m.code, m.experimenter, m.data) == (0xFFFF, 2600, C.ONF_EXPERIMENTER_ID, b"xyz")

    p = roundtrip_out(O.ErrorMsg(3, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_TYPE, bytes(range(100))))
    assert (p.type, p.code) == (1, 1)
    assert p.data == bytes(range(64))      # at most 64 bytes of the request
    p = roundtrip_out(O.ErrorMsg(4, ofp.OFPET_EXPERIMENTER, 2600, b"q", C.ONF_EXPERIMENTER_ID))
    assert (p.type, p.exp_type, p.experimenter, p.data) == (0xFFFF, 2600, C.ONF_EXPERIMENTER_ID, b"q")


def test_echo_and_experimenter_both_directions():
    assert roundtrip_in(parser.OFPEchoRequest(DP, b"ping")).data == b"ping"
    assert roundtrip_in(parser.OFPEchoReply(DP, b"pong")) == O.EchoReply(XID, b"pong")
    assert roundtrip_in(parser.OFPEchoRequest(DP)) == O.EchoRequest(XID, b"")
    assert roundtrip_out(O.EchoReply(9, b"data")).data == b"data"
    assert roundtrip_out(O.EchoRequest(9, b"d2")).data == b"d2"
    m = roundtrip_in(parser.OFPExperimenter(DP, 0x2320, 17, b"12345678"))
    assert m == O.Experimenter(XID, 0x2320, 17, b"12345678")
    p = roundtrip_out(O.Experimenter(2, 0xABCDEF, 3, b"hi"))
    assert (p.experimenter, p.exp_type, p.data) == (0xABCDEF, 3, b"hi")


# ---- controller -> switch ---------------------------------------------------------------

@pytest.mark.parametrize("cls,mine", [
    (parser.OFPFeaturesRequest, O.FeaturesRequest), (parser.OFPGetConfigRequest, O.GetConfigRequest),
    (parser.OFPBarrierRequest, O.BarrierRequest), (parser.OFPGetAsyncRequest, O.GetAsyncRequest)])
def test_bodyless_requests(cls, mine):
    assert roundtrip_in(cls(DP)) == mine(XID)


def test_set_config_table_mod_role_async_queue():
    assert roundtrip_in(parser.OFPSetConfig(DP, ofp.OFPC_FRAG_REASM, 0xFFE5)) == O.SetConfig(XID, 2, 0xFFE5)
    assert roundtrip_in(parser.OFPTableMod(DP, 7, 3)) == O.TableMod(XID, 7, 3)
    assert roundtrip_in(parser.OFPRoleRequest(DP, ofp.OFPCR_ROLE_MASTER, 2**64 - 2)) == \
        O.RoleRequest(XID, 2, 2**64 - 2)
    assert roundtrip_in(parser.OFPSetAsync(DP, [1, 2], [3, 4], [5, 0xFFFFFFFF])) == \
        O.SetAsync(XID, (1, 2), (3, 4), (5, 0xFFFFFFFF))
    assert roundtrip_in(parser.OFPQueueGetConfigRequest(DP, 3)) == O.QueueGetConfigRequest(XID, 3)
    assert roundtrip_in(parser.OFPQueueGetConfigRequest(DP, ofp.OFPP_ANY)).port == ofp.OFPP_ANY


def test_port_mod():
    m = roundtrip_in(parser.OFPPortMod(DP, 5, "02:00:00:aa:bb:cc", ofp.OFPPC_PORT_DOWN,
                                       ofp.OFPPC_PORT_DOWN | ofp.OFPPC_NO_FWD, ofp.OFPPF_1GB_FD))
    assert m == O.PortMod(XID, 5, 0x020000AABBCC, 1, 0x21, ofp.OFPPF_1GB_FD)


def test_packet_out_actions_data_and_buffer():
    acts = all_actions() + (O.ExperimenterAction(0x2320, b"\x00\x01" + b"\0" * 6),)
    m = roundtrip_in(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, ofp.OFPP_CONTROLLER,
                                         [osk_action(a) for a in acts], b"\xff" * 60))
    assert m == O.PacketOut(XID, ofp.OFP_NO_BUFFER, ofp.OFPP_CONTROLLER, acts, b"\xff" * 60)
    m = roundtrip_in(parser.OFPPacketOut(DP, 77, 3, [parser.OFPActionOutput(ofp.OFPP_TABLE)], None))
    assert m == O.PacketOut(XID, 77, 3, (M.Output(ofp.OFPP_TABLE, ofp.OFPCML_MAX),), b"")


@pytest.mark.parametrize("command", [ofp.OFPFC_ADD, ofp.OFPFC_MODIFY, ofp.OFPFC_MODIFY_STRICT,
                                     ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT])
def test_flow_mod_every_command_and_header_field(command):
    table = ofp.OFPTT_ALL if command >= ofp.OFPFC_DELETE else 3
    match = full_match()
    fm = parser.OFPFlowMod(DP, cookie=0xDEADBEEF00000001, cookie_mask=0xFFFF, table_id=table,
                           command=command, idle_timeout=10, hard_timeout=300, priority=0x1234,
                           buffer_id=0x55, out_port=4, out_group=9, flags=0x1F,
                           match=osk_match(match),
                           instructions=[osk_inst(i) for i in all_instructions()])
    m = roundtrip_in(fm)
    assert isinstance(m, O.FlowMod)
    assert (m.command, m.cookie_mask, m.buffer_id, m.out_port, m.out_group) == (command, 0xFFFF, 0x55, 4, 9)
    assert m.spec == M.FlowSpec(table, 0x1234, match, all_instructions(), 0xDEADBEEF00000001, 10, 300, 0x1F)
    assert list(m.spec.match.fields) == list(match.fields)      # wire order kept


def test_flow_mod_empty_match_and_no_instructions():
    m = roundtrip_in(parser.OFPFlowMod(DP, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY))
    assert m.spec == M.FlowSpec() and m.spec.match.fields == {} and m.spec.instructions == ()


@pytest.mark.parametrize("name,masked", FIELD_CASES)
def test_every_oxm_field_decoded(name, masked):
    match = match_for(name, masked)
    m = roundtrip_in(parser.OFPFlowMod(DP, match=osk_match(match)))
    assert m.spec.match == match and list(m.spec.match.fields) == list(match.fields)


@pytest.mark.parametrize("name,masked", FIELD_CASES)
def test_every_oxm_field_encoded(name, masked):
    match = match_for(name, masked)
    p = roundtrip_out(O.PacketIn(8, match=match, data=b"x" * 14))
    assert from_osk_match(p.match) == match
    assert [k for k, _ in p.match.items()] == list(match.fields)


def test_full_masks_are_kept_not_normalized():
    match = M.Match({"eth_dst": (0x0A0B0C0D0E0F, 0xFFFFFFFFFFFF), "metadata": (5, 2**64 - 1)})
    m = roundtrip_in(parser.OFPFlowMod(DP, match=osk_match(match)))
    assert m.spec.match.fields == match.fields


def test_every_action_decoded_and_encoded():
    acts = all_actions() + set_field_actions()
    m = roundtrip_in(parser.OFPFlowMod(DP, instructions=[
        parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [osk_action(a) for a in acts])]))
    assert m.spec.instructions == (M.ApplyActions(acts),)
    stats = M.FlowStats(M.FlowSpec(instructions=(M.WriteActions(acts),)), 1, 2, 3)
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_FLOW, 0, [stats]))
    assert tuple(from_osk_action(a) for a in p.body[0].instructions[0].actions) == acts


def test_every_set_field_decoded():
    for a in set_field_actions():
        m = roundtrip_in(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, 1, [osk_action(a)], b""))
        assert m.actions == (a,)


def test_experimenter_action_and_instruction_opaque_roundtrip():
    ea = O.ExperimenterAction(0x2320, bytes(range(16)))
    m = roundtrip_in(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, 1, [osk_action(ea)], b""))
    assert m.actions == (ea,)
    assert A.encode_actions(m.actions) == A.encode_actions((ea,))
    ei = O.ExperimenterInstruction(0xABCDEF, b"12345678")
    raw = A.encode_instructions((ei, M.GotoTable(1)))
    assert A.decode_instructions(raw, 0, len(raw)) == (ei, M.GotoTable(1))


def test_every_instruction_decoded_and_encoded():
    insts = all_instructions()
    for i in insts:
        m = roundtrip_in(parser.OFPFlowMod(DP, instructions=[osk_inst(i)]))
        assert m.spec.instructions == (i,)
    spec = M.FlowSpec(5, 77, full_match(), insts, 0xC0FFEE, 5, 6, M.OFPFF_SEND_FLOW_REM)
    p = roundtrip_out(O.MultipartReply(2, ofp.OFPMP_FLOW, 0, [M.FlowStats(spec, 10, 20, 3_500_000_000)]))
    fs = p.body[0]
    assert (fs.table_id, fs.priority, fs.cookie, fs.idle_timeout, fs.hard_timeout, fs.flags) == \
        (5, 77, 0xC0FFEE, 5, 6, 1)
    assert (fs.packet_count, fs.byte_count, fs.duration_sec, fs.duration_nsec) == (10, 20, 3, 500_000_000)
    assert from_osk_match(fs.match) == spec.match
    assert tuple(from_osk_inst(i) for i in fs.instructions) == insts


@pytest.mark.parametrize("command", [ofp.OFPGC_ADD, ofp.OFPGC_MODIFY, ofp.OFPGC_DELETE])
def test_group_mod_every_type(command):
    for g in sample_groups():
        m = roundtrip_in(parser.OFPGroupMod(DP, command, g.type, g.group_id,
                                            [osk_bucket(b) for b in g.buckets]))
        assert m == O.GroupMod(XID, command, g)
    m = roundtrip_in(parser.OFPGroupMod(DP, ofp.OFPGC_DELETE, 0, ofp.OFPG_ALL))
    assert m.spec.group_id == ofp.OFPG_ALL


@pytest.mark.parametrize("command", [ofp.OFPMC_ADD, ofp.OFPMC_MODIFY, ofp.OFPMC_DELETE])
def test_meter_mod_every_band(command):
    for ms in sample_meters():
        m = roundtrip_in(parser.OFPMeterMod(DP, command, ms.flags, ms.meter_id,
                                            [osk_band(b) for b in ms.bands]))
        assert m == O.MeterMod(XID, command, ms)
    m = roundtrip_in(parser.OFPMeterMod(DP, ofp.OFPMC_DELETE, 0, ofp.OFPM_ALL))
    assert m.spec == M.MeterSpec(ofp.OFPM_ALL, 0, ())


# ---- multipart requests -------------------------------------------------------------------

@pytest.mark.parametrize("cls,mp_type", [
    (parser.OFPDescStatsRequest, ofp.OFPMP_DESC), (parser.OFPTableStatsRequest, ofp.OFPMP_TABLE),
    (parser.OFPGroupDescStatsRequest, ofp.OFPMP_GROUP_DESC),
    (parser.OFPGroupFeaturesStatsRequest, ofp.OFPMP_GROUP_FEATURES),
    (parser.OFPMeterFeaturesStatsRequest, ofp.OFPMP_METER_FEATURES),
    (parser.OFPPortDescStatsRequest, ofp.OFPMP_PORT_DESC)])
def test_multipart_requests_without_body(cls, mp_type):
    assert roundtrip_in(cls(DP, 0)) == O.MultipartRequest(XID, mp_type, 0, None)


@pytest.mark.parametrize("cls,mp_type", [(parser.OFPFlowStatsRequest, ofp.OFPMP_FLOW),
                                         (parser.OFPAggregateStatsRequest, ofp.OFPMP_AGGREGATE)])
def test_flow_and_aggregate_requests(cls, mp_type):
    match = full_match()
    m = roundtrip_in(cls(DP, ofp.OFPMPF_REQ_MORE, 4, 7, 8, 0xAA, 0xFF, osk_match(match)))
    assert m == O.MultipartRequest(XID, mp_type, 1, O.FlowStatsRequest(4, 7, 8, 0xAA, 0xFF, match))
    m = roundtrip_in(cls(DP, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0, parser.OFPMatch()))
    assert m.body == O.FlowStatsRequest(match=M.Match())


def test_port_queue_group_meter_requests():
    assert roundtrip_in(parser.OFPPortStatsRequest(DP, 0, 3)).body == O.PortStatsRequest(3)
    assert roundtrip_in(parser.OFPPortStatsRequest(DP)).body == O.PortStatsRequest(ofp.OFPP_ANY)
    assert roundtrip_in(parser.OFPQueueStatsRequest(DP, 0, 2, 5)).body == O.QueueStatsRequest(2, 5)
    assert roundtrip_in(parser.OFPGroupStatsRequest(DP, 0, 6)).body == O.GroupStatsRequest(6)
    m = roundtrip_in(parser.OFPMeterStatsRequest(DP, 0, 9))
    assert (m.type, m.body) == (ofp.OFPMP_METER, O.MeterStatsRequest(9))
    m = roundtrip_in(parser.OFPMeterConfigStatsRequest(DP))
    assert (m.type, m.body) == (ofp.OFPMP_METER_CONFIG, O.MeterStatsRequest(ofp.OFPM_ALL))


def test_experimenter_multipart_request():
    m = roundtrip_in(parser.OFPExperimenterStatsRequest(DP, 0, 0xABCD, 5, b"payload!"))
    assert m.body == O.ExperimenterMultipart(0xABCD, 5, b"payload!")


def osk_table_features():
    P = parser
    props = [
        P.OFPTableFeaturePropInstructions(type_=ofp.OFPTFPT_INSTRUCTIONS, instruction_ids=[
            P.OFPInstructionId(t) for t in (1, 2, 3, 4, 5, 6)]),
        P.OFPTableFeaturePropInstructions(type_=ofp.OFPTFPT_INSTRUCTIONS_MISS,
                                          instruction_ids=[P.OFPInstructionId(4)]),
        P.OFPTableFeaturePropNextTables(type_=ofp.OFPTFPT_NEXT_TABLES, table_ids=[1, 2, 3, 254]),
        P.OFPTableFeaturePropNextTables(type_=ofp.OFPTFPT_NEXT_TABLES_MISS, table_ids=[]),
    ] + [P.OFPTableFeaturePropActions(type_=t, action_ids=[P.OFPActionId(a) for a in (0, 17, 25)])
         for t in (4, 5, 6, 7)] + [
        P.OFPTableFeaturePropOxm(type_=t, oxm_ids=[P.OFPOxmId("eth_dst", hasmask=True),
                                                   P.OFPOxmId("in_port"), P.OFPOxmId("ipv6_exthdr")])
        for t in (8, 10, 12, 13, 14, 15)] + [
        P.OFPTableFeaturePropExperimenter(type_=ofp.OFPTFPT_EXPERIMENTER, experimenter=0xAB,
                                          exp_type=3, data=[1, 2]),
        P.OFPTableFeaturePropExperimenter(type_=ofp.OFPTFPT_EXPERIMENTER_MISS, experimenter=0xCD,
                                          exp_type=4, data=[]),
    ]
    return [P.OFPTableFeaturesStats(0, b"classifier", 0xFF, 0xF0, 3, 1000, props),
            P.OFPTableFeaturesStats(1, b"", 0, 0, 0, 0, [])]


def expected_table_features():
    def oxm_ids():
        # os-ken sends oxm_length 0 in table-feature OXM ids.
        return tuple(O.OxmId(0x8000, X.FIELD_INFO[n][0], mk, 0) for n, mk in
                     (("eth_dst", True), ("in_port", False), ("ipv6_exthdr", False)))
    props = (O.TFInstructions(0, (1, 2, 3, 4, 5, 6)), O.TFInstructions(1, (4,)),
             O.TFNextTables(2, (1, 2, 3, 254)), O.TFNextTables(3, ()))
    props += tuple(O.TFActions(t, (0, 17, 25)) for t in (4, 5, 6, 7))
    props += tuple(O.TFOxm(t, oxm_ids()) for t in (8, 10, 12, 13, 14, 15))
    props += (O.TFExperimenter(0xFFFE, 0xAB, 3, b"\0\0\0\x01\0\0\0\x02"),
              O.TFExperimenter(0xFFFF, 0xCD, 4, b""))
    return (O.TableFeatures(0, "classifier", 0xFF, 0xF0, 3, 1000, props), O.TableFeatures(1))


def test_table_features_request_every_property():
    m = roundtrip_in(parser.OFPTableFeaturesStatsRequest(DP, 0, osk_table_features()))
    assert m.type == ofp.OFPMP_TABLE_FEATURES and m.body == expected_table_features()
    assert roundtrip_in(parser.OFPTableFeaturesStatsRequest(DP, 0)).body == ()


# ---- switch -> controller ------------------------------------------------------------------

def test_features_get_config_barrier_role_async_replies():
    p = roundtrip_out(O.FeaturesReply(1, 0x0000AABBCCDDEEFF, 256, 254, 0, 0x4F))
    assert (p.datapath_id, p.n_buffers, p.n_tables, p.auxiliary_id, p.capabilities) == \
        (0x0000AABBCCDDEEFF, 256, 254, 0, 0x4F)
    p = roundtrip_out(O.GetConfigReply(2, ofp.OFPC_FRAG_DROP, 0xFFFF))
    assert (p.flags, p.miss_send_len) == (1, 0xFFFF)
    assert type(roundtrip_out(O.BarrierReply(3))) is parser.OFPBarrierReply
    p = roundtrip_out(O.RoleReply(4, ofp.OFPCR_ROLE_SLAVE, 12345))
    assert (p.role, p.generation_id) == (3, 12345)
    p = roundtrip_out(O.GetAsyncReply(5, (1, 2), (3, 4), (5, 6)))
    assert (p.packet_in_mask, p.port_status_mask, p.flow_removed_mask) == ([1, 2], [3, 4], [5, 6])


def test_packet_in():
    match = M.Match({"in_port": (3, None), "metadata": (0x77, None), "tunnel_id": (5, None)})
    p = roundtrip_out(O.PacketIn(9, 0x42, 1500, ofp.OFPR_ACTION, 4, 0xFEED, match, b"\xaa" * 128))
    assert (p.buffer_id, p.total_len, p.reason, p.table_id, p.cookie) == (0x42, 1500, 1, 4, 0xFEED)
    assert from_osk_match(p.match) == match and p.data == b"\xaa" * 128
    p = roundtrip_out(O.PacketIn(9, data=b"abc"))
    assert p.total_len == 3 and p.data == b"abc" and p.match.items() == []


def test_flow_removed():
    spec = M.FlowSpec(2, 100, full_match(), (), 0xABC, 30, 60, 1)
    fr = O.FlowRemoved.from_stats(M.FlowStats(spec, 7, 700, 61_000_000_123), ofp.OFPRR_HARD_TIMEOUT, xid=3)
    p = roundtrip_out(fr)
    assert (p.cookie, p.priority, p.reason, p.table_id, p.duration_sec, p.duration_nsec,
            p.idle_timeout, p.hard_timeout, p.packet_count, p.byte_count) == \
        (0xABC, 100, 1, 2, 61, 123, 30, 60, 7, 700)
    assert from_osk_match(p.match) == spec.match


def sample_port(no=1):
    return O.PortDesc(no, 0x0200000000AB, f"veth{no}", ofp.OFPPC_NO_PACKET_IN, ofp.OFPPS_LIVE,
                      ofp.OFPPF_10GB_FD | ofp.OFPPF_COPPER, ofp.OFPPF_1GB_FD, ofp.OFPPF_10GB_FD, 0,
                      10_000_000, 10_000_000)


def osk_port_tuple(p):
    return (p.port_no, int(p.hw_addr.replace(":", ""), 16), p.name.decode(), p.config, p.state,
            p.curr, p.advertised, p.supported, p.peer, p.curr_speed, p.max_speed)


def test_port_status():
    for reason in (ofp.OFPPR_ADD, ofp.OFPPR_DELETE, ofp.OFPPR_MODIFY):
        p = roundtrip_out(O.PortStatus(1, reason, sample_port(3)))
        assert p.reason == reason and osk_port_tuple(p.desc) == tuple(sample_port(3))
    # hw_addr as bytes works too (ports give bytes).
    p = roundtrip_out(O.PortStatus(1, 0, sample_port(3)._replace(hw_addr=b"\x02\0\0\0\0\xab")))
    assert p.desc.hw_addr == "02:00:00:00:00:ab"


def test_queue_get_config_reply():
    queues = (O.PacketQueue(1, 3, (O.QueueMinRate(100), O.QueueMaxRate(900))),
              O.PacketQueue(2, 3, (O.QueueExperimenter(0xAB, b"\x01\x02\x03\x04\x05\x06\x07\x08"),)),
              O.PacketQueue(3, 3, ()))
    p = roundtrip_out(O.QueueGetConfigReply(6, 3, queues))
    assert p.port == 3 and [(q.queue_id, q.port) for q in p.queues] == [(1, 3), (2, 3), (3, 3)]
    props = p.queues[0].properties
    assert [(type(x).__name__, x.rate) for x in props] == [("OFPQueuePropMinRate", 100),
                                                          ("OFPQueuePropMaxRate", 900)]
    e = p.queues[1].properties[0]
    assert e.experimenter == 0xAB and e.data == [1, 2, 3, 4, 5, 6, 7, 8]
    assert p.queues[2].properties == []


def test_multipart_reply_desc_aggregate_features():
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_DESC, 0,
                                       O.Desc("vdp", "hw", "sw 1.0", "sn", "dp 0")))
    assert p.body == (b"vdp", b"hw", b"sw 1.0", b"sn", b"dp 0")
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_AGGREGATE, 0, O.AggregateStats(5, 600, 7)))
    assert tuple(p.body) == (5, 600, 7)
    gf = O.GroupFeatures(0xF, 0x5, (10, 20, 30, 40), (1, 2, 3, 4))
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_GROUP_FEATURES, 0, gf))
    assert (p.body.types, p.body.capabilities, p.body.max_groups, p.body.actions) == \
        (0xF, 5, [10, 20, 30, 40], [1, 2, 3, 4])
    mf = O.MeterFeatures(1000, 6, 0xF, 2, 0)
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_METER_FEATURES, 0, mf))
    # os-ken registers METER_FEATURES as an array body (the spec: one struct).
    assert tuple(p.body[0]) == tuple(mf) and len(p.body) == 1
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_EXPERIMENTER, 0, O.ExperimenterMultipart(7, 8, b"zz")))
    assert (p.body.experimenter, p.body.exp_type, p.body.data) == (7, 8, b"zz")


def test_multipart_reply_arrays():
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_TABLE, ofp.OFPMPF_REPLY_MORE,
                                       [O.TableStats(i, i, 2 * i, i) for i in range(3)]))
    assert p.flags == 1 and [tuple(t) for t in p.body] == [(i, i, 2 * i, i) for i in range(3)]
    ps = [O.PortStats(*range(1, 16)), O.PortStats(2, duration_sec=5, duration_nsec=6)]
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_PORT_STATS, 0, ps))
    assert [tuple(x) for x in p.body] == [tuple(x) for x in ps]
    qs = [O.QueueStats(1, 2, 3, 4, 5, 6, 7)]
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_QUEUE, 0, qs))
    assert [tuple(x) for x in p.body] == [tuple(x) for x in qs]
    gs = [O.GroupStats(1, 2, 3, 4, 5, 6, ((7, 8), (9, 10))), O.GroupStats(2)]
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_GROUP, 0, gs))
    got = [(g.group_id, g.ref_count, g.packet_count, g.byte_count, g.duration_sec, g.duration_nsec,
            tuple((b.packet_count, b.byte_count) for b in g.bucket_stats)) for g in p.body]
    assert got == [tuple(x) for x in gs]
    ms = [O.MeterStats(1, 2, 3, 4, 5, 6, ((7, 8),)), O.MeterStats(9)]
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_METER, 0, ms))
    got = [(m.meter_id, m.flow_count, m.packet_in_count, m.byte_in_count, m.duration_sec,
            m.duration_nsec, tuple((b.packet_band_count, b.byte_band_count) for b in m.band_stats))
           for m in p.body]
    assert got == [tuple(x) for x in ms]
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_PORT_DESC, 0, [sample_port(1), sample_port(2)]))
    assert [osk_port_tuple(x) for x in p.body] == [tuple(sample_port(1)), tuple(sample_port(2))]


def test_multipart_reply_group_desc_and_meter_config():
    groups = sample_groups()
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_GROUP_DESC, 0, groups))
    got = [M.GroupSpec(g.group_id, g.type, tuple(from_osk_bucket(b) for b in g.buckets)) for g in p.body]
    assert got == groups
    meters = sample_meters()
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_METER_CONFIG, 0, meters))
    got = [M.MeterSpec(m.meter_id, m.flags, tuple(from_osk_band(b) for b in m.bands)) for m in p.body]
    assert got == meters


def test_multipart_reply_table_features_every_property():
    tables = list(expected_table_features())
    # A reply also carries experimenter ids and well-formed OXM id lengths.
    tables[1] = tables[1]._replace(properties=(
        O.TFInstructions(0, (1, O.RawId(0xFFFF, b"\0\0\x23\x20"))),
        O.TFOxm(8, (O.OxmId.of("ipv4_src", True), O.OxmId.of("tcp_dst")))))
    p = roundtrip_out(O.MultipartReply(1, ofp.OFPMP_TABLE_FEATURES, 0, tables))
    assert [t.table_id for t in p.body] == [0, 1]
    t0 = p.body[0]
    assert (t0.name, t0.metadata_match, t0.metadata_write, t0.config, t0.max_entries) == \
        (b"classifier", 0xFF, 0xF0, 3, 1000)
    props = t0.properties
    assert [x.type for x in props] == [x.type for x in tables[0].properties]
    assert [i.type for i in props[0].instruction_ids] == [1, 2, 3, 4, 5, 6]
    assert props[2].table_ids == [1, 2, 3, 254]
    assert [i.type for i in props[4].action_ids] == [0, 17, 25]
    assert [(o.type, o.hasmask) for o in props[8].oxm_ids] == \
        [("eth_dst", 1), ("in_port", 0), ("ipv6_exthdr", 0)]
    assert (props[14].experimenter, props[14].exp_type, props[14].data) == (0xAB, 3, [1, 2])
    t1 = p.body[1].properties
    assert [(i.type, i.len) for i in t1[0].instruction_ids] == [(1, 4), (0xFFFF, 8)]
    assert [(o.type, o.hasmask, o.length) for o in t1[1].oxm_ids] == [("ipv4_src", 1, 8), ("tcp_dst", 0, 2)]
    # and our own decoder reads back what we wrote
    raw = MP.encode_request_body(ofp.OFPMP_TABLE_FEATURES, tables)
    assert MP.decode_request_body(ofp.OFPMP_TABLE_FEATURES, raw, 0, len(raw)) == tuple(tables)


def test_multipart_reply_split_into_more_messages():
    flows = [M.FlowStats(M.FlowSpec(priority=i, match=full_match(),
                                    instructions=(M.ApplyActions(all_actions()),)), i, i, i)
             for i in range(400)]
    msgs = O.encode_multipart_reply(77, ofp.OFPMP_FLOW, flows)
    assert len(msgs) > 1
    seen = []
    for i, raw in enumerate(msgs):
        assert len(raw) <= 0xFFFF
        p = osk_parse(raw)
        assert p.xid == 77 and p.flags == (1 if i < len(msgs) - 1 else 0)
        seen += [fs.priority for fs in p.body]
    assert seen == list(range(400))
    one = O.encode_multipart_reply(1, ofp.OFPMP_TABLE, [])
    assert len(one) == 1 and osk_parse(one[0]).body == []
    assert len(O.encode_multipart_reply(1, ofp.OFPMP_DESC, O.Desc())) == 1


# ---- byte-exact round trips of messages other implementations wrote -----------------------

PACKET_DATA = Path(ofproto_parser.__file__).resolve().parents[1] / "tests" / "packet_data" / "of13"
C2S = {0, 1, 2, 3, 4, 5, 7, 9, 13, 14, 15, 16, 17, 18, 20, 22, 24, 26, 28, 29}


def packet_files():
    out = []
    for f in sorted(PACKET_DATA.glob("*.packet")):
        raw = f.read_bytes()
        if len(raw) >= 8 and raw[1] in C2S and int.from_bytes(raw[2:4], "big") == len(raw):
            out.append(f)
    return out


# Parser test vectors that are not valid requests (a switch must refuse them).
PACKET_DATA_INVALID = {
    # push_pbb with ethertype 0x1234 (only 0x88e7 is allowed)
    "4-2-ofp_flow_mod.packet": (C.OFPET_BAD_ACTION, C.OFPBAC_BAD_ARGUMENT),
    # every field at once: vlan_vid 999 without OFPVID_PRESENT, ARP with IPv4 fields...
    "4-60-ofp_flow_mod.packet": (C.OFPET_BAD_MATCH, C.OFPBMC_BAD_VALUE),
}


@pytest.mark.parametrize("path", packet_files(), ids=lambda p: p.name)
def test_decode_reencode_packet_data_is_byte_exact(path):
    """ofsoftswitch13, Open vSwitch (ovs-ofctl, with Nicira actions and NXM
    fields kept opaque) and os-ken wrote these; decode + encode gives back
    the same bytes."""
    raw = path.read_bytes()
    if path.name in PACKET_DATA_INVALID:
        with pytest.raises(O.OFPError) as e:
            O.decode(raw)
        assert (e.value.type, e.value.code) == PACKET_DATA_INVALID[path.name]
        return
    msg = O.decode(raw)
    assert O.encode(msg) == raw


def test_packet_data_corpus_is_broad():
    types = {p.read_bytes()[1] for p in packet_files()}
    assert {0, 1, 2, 3, 4, 5, 7, 9, 13, 14, 15, 16, 17, 18, 20, 22, 24, 26, 28, 29} <= types


# ---- the os-ken switch test tool's messages ------------------------------------------------

SWITCH_TOOL_DIR = Path(ofproto_parser.__file__).resolve().parents[1] / "tests" / "switch" / "of13"


def switch_tool_messages():
    """Every flow/group/meter mod the switch test tool installs on the target
    (the "prerequisite" blocks of its 144 OpenFlow 1.3 test files)."""
    import json
    out = []
    for f in sorted(SWITCH_TOOL_DIR.rglob("*.json")):
        for test in json.loads(f.read_text()):
            if isinstance(test, dict):
                for mod in test["prerequisite"]:
                    msg = ofproto_parser.ofp_msg_from_jsondict(DP, mod)
                    msg.serialize()
                    out.append((f.name, bytes(msg.buf)))
    return out


def test_switch_test_tool_messages_all_decode_byte_exact():
    msgs = switch_tool_messages()
    assert len(msgs) > 1000
    kinds = set()
    for name, raw in msgs:
        m = O.decode(raw)
        kinds.add(type(m))
        assert O.encode(m) == raw, name
    assert kinds == {O.FlowMod, O.GroupMod, O.MeterMod}
    # and its housekeeping: delete everything, by cookie, meters and groups
    for mod in (parser.OFPFlowMod(DP, cookie=1, cookie_mask=2**64 - 1, table_id=ofp.OFPTT_ALL,
                                  command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY),
                parser.OFPMeterMod(DP, command=ofp.OFPMC_DELETE, flags=0, meter_id=ofp.OFPM_ALL),
                parser.OFPGroupMod(DP, command=ofp.OFPGC_DELETE, type_=0, group_id=ofp.OFPG_ALL)):
        roundtrip_in(mod)


# ---- experimenter / non-basic OXMs stay opaque ------------------------------------------

def test_opaque_oxm_roundtrip():
    m = M.Match()
    m.fields["eth_type"] = (0x0800, None)
    m.fields[O.OxmExp(0xFFFF, 42, 0x4F4E4600)] = (b"\x00\x10", b"\x00\xff")   # ONF tcp_flags
    m.fields[O.OxmExp(0x0001, 33, None)] = (b"\0\0\0\x05", None)               # NXM_NX_REG0
    raw = X.encode_match(m)
    got, end = X.decode_match(raw, 0, len(raw))
    assert end == len(raw) and got == m and list(got.fields) == list(m.fields)
    assert O.opaque_fields(got) == [O.OxmExp(0xFFFF, 42, 0x4F4E4600), O.OxmExp(1, 33, None)]
    om = parser.OFPMatch.parser(raw, 0)      # os-ken reads the same TLVs
    assert om["tcp_flags"] == (0x10, 0xFF)
    # set-field on an experimenter field
    a = M.SetField(O.OxmExp(0xFFFF, 42, 0x4F4E4600), b"\x00\x02")
    raw = A.encode_actions((a,))
    assert A.decode_actions(raw, 0, len(raw)) == (a,)
    assert parser.OFPAction.parser(raw, 0).value == 2


# ---- prerequisites ------------------------------------------------------------------------

def _m(**kw):
    m = M.Match()
    for k, v in kw.items():
        m.fields[k] = v if isinstance(v, tuple) else (v, None)
    return m


@pytest.mark.parametrize("name", ALL_FIELDS)
def test_prerequisites_satisfied_by_their_chain(name):
    O.check_prerequisites(match_for(name, False))


@pytest.mark.parametrize("name", [n for n in ALL_FIELDS if n in X.PREREQUISITES])
def test_prerequisite_missing_is_bad_prereq(name):
    m = match_for(name, False)
    dep = X.PREREQUISITES[name][0]
    del m.fields[dep]
    with pytest.raises(O.OFPError) as e:
        O.check_prerequisites(m)
    assert (e.value.type, e.value.code) == (C.OFPET_BAD_MATCH, C.OFPBMC_BAD_PREREQ)


@pytest.mark.parametrize("match", [
    _m(eth_type=0x86DD, ipv4_src=1),                      # ipv4 on an IPv6 flow
    _m(eth_type=0x0806, ip_proto=6),                      # ip_proto needs IP
    _m(eth_type=0x0800, ip_proto=17, tcp_dst=80),         # tcp on UDP
    _m(vlan_vid=0, vlan_pcp=1),                           # vlan_pcp needs a tag
    _m(vlan_pcp=1),
    _m(vlan_vid=(0x0000, 0x1000), vlan_pcp=1),            # "untagged" with a mask
    _m(eth_type=0x86DD, ip_proto=58, icmpv6_type=136, ipv6_nd_sll=1),
    _m(eth_type=0x86DD, ip_proto=58, icmpv6_type=135, ipv6_nd_tll=1),
    _m(eth_type=0x86DD, ip_proto=58, icmpv6_type=128, ipv6_nd_target=1),
    _m(eth_type=0x0800, mpls_label=3),
    _m(eth_type=0x8100, pbb_isid=3),
    _m(eth_type=0x0800, ipv6_exthdr=1),
    _m(in_phy_port=1),
])
def test_prerequisite_wrong_value_is_bad_prereq(match):
    with pytest.raises(O.OFPError) as e:
        O.check_prerequisites(match)
    assert (e.value.type, e.value.code) == (C.OFPET_BAD_MATCH, C.OFPBMC_BAD_PREREQ)


def test_prerequisite_order_only_when_strict():
    m = _m(tcp_dst=80, ip_proto=6, eth_type=0x0800)
    O.check_prerequisites(m)
    with pytest.raises(O.OFPError):
        O.check_prerequisites(m, strict_order=True)
    O.check_prerequisites(_m(eth_type=0x0800, ip_proto=6, tcp_dst=80), strict_order=True)
    O.check_prerequisites(_m(vlan_vid=(0x1000, 0x1000), vlan_pcp=3))
    O.check_prerequisites(_m(eth_type=0x86DD, ip_proto=1, icmpv4_type=3))   # as the spec table says


# ---- framing ------------------------------------------------------------------------------

def test_framer_splits_stream_in_any_chunks():
    msgs = [O.encode(O.EchoRequest(i, b"x" * i)) for i in range(20)] + \
        [osk_bytes(parser.OFPFlowMod(DP, match=osk_match(full_match())))]
    stream = b"".join(msgs)
    for step in (1, 3, 7, 64, len(stream)):
        fr = O.Framer()
        out = []
        for i in range(0, len(stream), step):
            fr.feed(stream[i:i + step])
            out += list(fr)
        assert out == msgs and fr.pending == 0


def test_framer_rejects_length_below_header():
    fr = O.Framer()
    good = O.encode(O.BarrierRequest(1))
    fr.feed(good + bytes.fromhex("0414000400000009") + good)
    it = iter(fr)
    assert next(it) == good
    with pytest.raises(O.OFPError) as e:
        next(it)
    assert (e.value.type, e.value.code, e.value.xid) == (C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN, 9)
    with pytest.raises(O.OFPError):
        list(fr)


# ---- malformed input: exact (type, code) --------------------------------------------------

def raw_msg(mtype, body, version=4, xid=0x55, length=None):
    n = 8 + len(body) if length is None else length
    return struct.pack("!BBHI", version, mtype, n, xid) + body


def oxm(fid, payload, hasmask=0, cls=0x8000):
    return struct.pack("!I", (cls << 16) | (fid << 9) | (hasmask << 8) | len(payload)) + payload


def flow_mod_raw(match_oxms=b"", insts=b"", command=0, table=0, flags=0, mtype=1, mlen=None):
    ml = 4 + len(match_oxms) if mlen is None else mlen
    match = struct.pack("!HH", mtype, ml) + match_oxms
    match += b"\0" * ((-len(match)) % 8)
    fixed = struct.pack("!QQBBHHHIIIH2x", 0, 0, table, command, 0, 0, 1, C.OFP_NO_BUFFER,
                        C.OFPP_ANY, C.OFPG_ANY, flags)
    return raw_msg(C.OFPT_FLOW_MOD, fixed + match + insts)


def apply(actions_raw):
    return struct.pack("!HH4x", C.OFPIT_APPLY_ACTIONS, 8 + len(actions_raw)) + actions_raw


def packet_out_raw(actions_raw, in_port=C.OFPP_CONTROLLER, alen=None, data=b""):
    al = len(actions_raw) if alen is None else alen
    fixed = struct.pack("!IIH6x", C.OFP_NO_BUFFER, in_port, al)
    return raw_msg(C.OFPT_PACKET_OUT, fixed + actions_raw + data)


def set_field_action(oxm_raw, length=None):
    n = length if length is not None else 8 * ((4 + len(oxm_raw) + 7) // 8)
    return struct.pack("!HH", 25, n) + oxm_raw + b"\0" * (n - 4 - len(oxm_raw))


def group_mod_raw(command=0, gtype=0, gid=1, buckets=b""):
    return raw_msg(C.OFPT_GROUP_MOD, struct.pack("!HBxI", command, gtype, gid) + buckets)


def bucket(actions_raw=b"", weight=0, wp=C.OFPP_ANY, wg=C.OFPG_ANY, blen=None):
    n = 16 + len(actions_raw) if blen is None else blen
    return struct.pack("!HHII4x", n, weight, wp, wg) + actions_raw


def meter_mod_raw(command=0, flags=1, mid=1, bands=b""):
    return raw_msg(C.OFPT_METER_MOD, struct.pack("!HHI", command, flags, mid) + bands)


def mp_req(mp_type, body=b""):
    return raw_msg(C.OFPT_MULTIPART_REQUEST, struct.pack("!HH4x", mp_type, 0) + body)


def tf_entry(props=b"", length=None):
    n = 64 + len(props) if length is None else length
    return struct.pack("!HB5x32sQQII", n, 0, b"t", 0, 0, 0, 0) + props


OUT1 = struct.pack("!HHIH6x", 0, 16, 1, 0xFFFF)
ETH_IP = oxm(5, b"\x08\x00")
BR, BA, BI, BM = C.OFPET_BAD_REQUEST, C.OFPET_BAD_ACTION, C.OFPET_BAD_INSTRUCTION, C.OFPET_BAD_MATCH
FMF, GMF, MMF, TFF = (C.OFPET_FLOW_MOD_FAILED, C.OFPET_GROUP_MOD_FAILED, C.OFPET_METER_MOD_FAILED,
                      C.OFPET_TABLE_FEATURES_FAILED)

MALFORMED = {
    # header
    "short_header": (b"\x04\x02\x00", (BR, C.OFPBRC_BAD_LEN)),
    "length_mismatch": (raw_msg(2, b"abcd", length=20), (BR, C.OFPBRC_BAD_LEN)),
    "bad_version": (raw_msg(C.OFPT_BARRIER_REQUEST, b"", version=3), (BR, C.OFPBRC_BAD_VERSION)),
    "bad_version_1_5": (raw_msg(C.OFPT_FEATURES_REQUEST, b"", version=6), (BR, C.OFPBRC_BAD_VERSION)),
    "unknown_type": (raw_msg(30, b""), (BR, C.OFPBRC_BAD_TYPE)),
    "unknown_type_255": (raw_msg(255, b"xyz"), (BR, C.OFPBRC_BAD_TYPE)),
    "switch_only_type_packet_in": (raw_msg(C.OFPT_PACKET_IN, b"\0" * 24), (BR, C.OFPBRC_BAD_TYPE)),
    "switch_only_type_features_reply": (raw_msg(C.OFPT_FEATURES_REPLY, b"\0" * 24), (BR, C.OFPBRC_BAD_TYPE)),
    # fixed-size messages
    "barrier_with_body": (raw_msg(C.OFPT_BARRIER_REQUEST, b"\0" * 4), (BR, C.OFPBRC_BAD_LEN)),
    "features_request_with_body": (raw_msg(C.OFPT_FEATURES_REQUEST, b"\0" * 8), (BR, C.OFPBRC_BAD_LEN)),
    "set_config_short": (raw_msg(C.OFPT_SET_CONFIG, b"\0\0"), (BR, C.OFPBRC_BAD_LEN)),
    "port_mod_long": (raw_msg(C.OFPT_PORT_MOD, b"\0" * 40), (BR, C.OFPBRC_BAD_LEN)),
    "table_mod_short": (raw_msg(C.OFPT_TABLE_MOD, b"\0" * 4), (BR, C.OFPBRC_BAD_LEN)),
    "role_short": (raw_msg(C.OFPT_ROLE_REQUEST, b"\0" * 8), (BR, C.OFPBRC_BAD_LEN)),
    "set_async_short": (raw_msg(C.OFPT_SET_ASYNC, b"\0" * 20), (BR, C.OFPBRC_BAD_LEN)),
    "error_short": (raw_msg(C.OFPT_ERROR, b"\0\x01"), (BR, C.OFPBRC_BAD_LEN)),
    "experimenter_error_short": (raw_msg(C.OFPT_ERROR, b"\xff\xff\0\0"), (BR, C.OFPBRC_BAD_LEN)),
    "experimenter_short": (raw_msg(C.OFPT_EXPERIMENTER, b"\0" * 4), (BR, C.OFPBRC_BAD_LEN)),
    "flow_mod_short": (raw_msg(C.OFPT_FLOW_MOD, b"\0" * 40), (BR, C.OFPBRC_BAD_LEN)),
    "group_mod_short": (raw_msg(C.OFPT_GROUP_MOD, b"\0" * 4), (BR, C.OFPBRC_BAD_LEN)),
    "meter_mod_short": (raw_msg(C.OFPT_METER_MOD, b"\0" * 4), (BR, C.OFPBRC_BAD_LEN)),
    "packet_out_short": (raw_msg(C.OFPT_PACKET_OUT, b"\0" * 8), (BR, C.OFPBRC_BAD_LEN)),
    "multipart_short": (raw_msg(C.OFPT_MULTIPART_REQUEST, b"\0\0"), (BR, C.OFPBRC_BAD_LEN)),
    "hello_element_too_long": (raw_msg(C.OFPT_HELLO, struct.pack("!HHI", 1, 40, 0x10)),
                               (BR, C.OFPBRC_BAD_LEN)),
    "hello_element_len_2": (raw_msg(C.OFPT_HELLO, struct.pack("!HHI", 1, 2, 0x10)), (BR, C.OFPBRC_BAD_LEN)),
    "hello_bitmap_not_words": (raw_msg(C.OFPT_HELLO, struct.pack("!HH", 1, 6) + b"\0\x10\0\0"),
                               (BR, C.OFPBRC_BAD_LEN)),
    # multipart
    "multipart_unknown_type": (mp_req(14), (BR, C.OFPBRC_BAD_MULTIPART)),
    "multipart_unknown_type_1000": (mp_req(1000), (BR, C.OFPBRC_BAD_MULTIPART)),
    "desc_with_body": (mp_req(C.OFPMP_DESC, b"\0" * 8), (BR, C.OFPBRC_BAD_LEN)),
    "port_stats_short": (mp_req(C.OFPMP_PORT_STATS, b"\0" * 4), (BR, C.OFPBRC_BAD_LEN)),
    "queue_stats_long": (mp_req(C.OFPMP_QUEUE, b"\0" * 16), (BR, C.OFPBRC_BAD_LEN)),
    "flow_stats_short": (mp_req(C.OFPMP_FLOW, b"\0" * 16), (BR, C.OFPBRC_BAD_LEN)),
    "flow_stats_trailing": (mp_req(C.OFPMP_FLOW, struct.pack("!B3xII4xQQ", 0xFF, C.OFPP_ANY, C.OFPG_ANY, 0, 0)
                                   + struct.pack("!HH4x", 1, 4) + b"\0" * 8), (BR, C.OFPBRC_BAD_LEN)),
    "experimenter_mp_short": (mp_req(C.OFPMP_EXPERIMENTER, b"\0" * 4), (BR, C.OFPBRC_BAD_LEN)),
    "table_features_short_entry": (mp_req(C.OFPMP_TABLE_FEATURES, b"\0" * 32), (TFF, C.OFPTFFC_BAD_LEN)),
    "table_features_len_60": (mp_req(C.OFPMP_TABLE_FEATURES, tf_entry(length=60)), (TFF, C.OFPTFFC_BAD_LEN)),
    "table_features_len_past": (mp_req(C.OFPMP_TABLE_FEATURES, tf_entry(length=128)),
                                (TFF, C.OFPTFFC_BAD_LEN)),
    "table_feature_prop_type_9": (mp_req(C.OFPMP_TABLE_FEATURES, tf_entry(struct.pack("!HH4x", 9, 4))),
                                  (TFF, C.OFPTFFC_BAD_TYPE)),
    "table_feature_prop_len_2": (mp_req(C.OFPMP_TABLE_FEATURES, tf_entry(struct.pack("!HH4x", 0, 2))),
                                 (TFF, C.OFPTFFC_BAD_LEN)),
    "table_feature_prop_past": (mp_req(C.OFPMP_TABLE_FEATURES, tf_entry(struct.pack("!HH4x", 0, 12))),
                                (TFF, C.OFPTFFC_BAD_LEN)),
    "table_feature_inst_id_len_0": (mp_req(C.OFPMP_TABLE_FEATURES,
                                           tf_entry(struct.pack("!HHHH", 0, 8, 1, 0))),
                                    (TFF, C.OFPTFFC_BAD_LEN)),
    "table_feature_exp_short": (mp_req(C.OFPMP_TABLE_FEATURES, tf_entry(struct.pack("!HHI", 0xFFFE, 8, 1))),
                                (TFF, C.OFPTFFC_BAD_LEN)),
    # match
    "match_standard_type": (flow_mod_raw(mtype=0), (BM, C.OFPBMC_BAD_TYPE)),
    "match_length_2": (flow_mod_raw(mlen=2), (BM, C.OFPBMC_BAD_LEN)),
    "match_length_past_message": (flow_mod_raw(mlen=200), (BM, C.OFPBMC_BAD_LEN)),
    "oxm_truncated_header": (flow_mod_raw(b"\x80\x00", mlen=6), (BM, C.OFPBMC_BAD_LEN)),
    "oxm_past_match": (flow_mod_raw(struct.pack("!I", 0x80000004) + b"\0\0", mlen=10),
                       (BM, C.OFPBMC_BAD_LEN)),
    "oxm_unknown_field": (flow_mod_raw(oxm(40, b"\0\0")), (BM, C.OFPBMC_BAD_FIELD)),
    "oxm_unknown_field_127": (flow_mod_raw(oxm(127, b"\0")), (BM, C.OFPBMC_BAD_FIELD)),
    "oxm_bad_length": (flow_mod_raw(oxm(0, b"\0\0")), (BM, C.OFPBMC_BAD_LEN)),
    "oxm_masked_bad_length": (flow_mod_raw(oxm(3, b"\0" * 6, hasmask=1)), (BM, C.OFPBMC_BAD_LEN)),
    "oxm_mask_on_unmaskable": (flow_mod_raw(oxm(0, b"\0\0\0\1\xff\xff\xff\xff", hasmask=1)),
                               (BM, C.OFPBMC_BAD_MASK)),
    "oxm_vlan_pcp_8": (flow_mod_raw(oxm(6, b"\x10\x01") + oxm(7, b"\x08")), (BM, C.OFPBMC_BAD_VALUE)),
    "oxm_vlan_vid_wide": (flow_mod_raw(oxm(6, b"\x20\x01")), (BM, C.OFPBMC_BAD_VALUE)),
    "oxm_vlan_vid_without_present": (flow_mod_raw(oxm(6, b"\x00\x05")), (BM, C.OFPBMC_BAD_VALUE)),
    "oxm_ip_dscp_64": (flow_mod_raw(ETH_IP + oxm(8, b"\x40")), (BM, C.OFPBMC_BAD_VALUE)),
    "oxm_mpls_label_wide": (flow_mod_raw(oxm(5, b"\x88\x47") + oxm(34, b"\x00\x10\x00\x00")),
                            (BM, C.OFPBMC_BAD_VALUE)),
    "oxm_vlan_vid_mask_wide": (flow_mod_raw(oxm(6, b"\x10\x00\xff\xff", hasmask=1)), (BM, C.OFPBMC_BAD_MASK)),
    "oxm_value_outside_mask": (flow_mod_raw(ETH_IP + oxm(11, b"\x0a\x00\x00\x01\xff\xff\xff\x00", hasmask=1)),
                               (BM, C.OFPBMC_BAD_WILDCARDS)),
    "oxm_duplicate": (flow_mod_raw(ETH_IP + ETH_IP), (BM, C.OFPBMC_DUP_FIELD)),
    "oxm_experimenter_no_id": (flow_mod_raw(oxm(1, b"\0\0", cls=0xFFFF)), (BM, C.OFPBMC_BAD_LEN)),
    "oxm_prereq_missing": (flow_mod_raw(oxm(14, b"\0\x50")), (BM, C.OFPBMC_BAD_PREREQ)),
    "oxm_prereq_wrong": (flow_mod_raw(ETH_IP + oxm(10, b"\x11") + oxm(14, b"\0\x50")),
                         (BM, C.OFPBMC_BAD_PREREQ)),
    "oxm_vlan_pcp_untagged": (flow_mod_raw(oxm(6, b"\0\0") + oxm(7, b"\x01")), (BM, C.OFPBMC_BAD_PREREQ)),
    # flow mod
    "flow_mod_bad_command": (flow_mod_raw(command=5), (FMF, C.OFPFMFC_BAD_COMMAND)),
    "flow_mod_add_table_all": (flow_mod_raw(table=0xFF), (FMF, C.OFPFMFC_BAD_TABLE_ID)),
    "flow_mod_modify_table_all": (flow_mod_raw(table=0xFF, command=1), (FMF, C.OFPFMFC_BAD_TABLE_ID)),
    "flow_mod_bad_flags": (flow_mod_raw(flags=0x20), (FMF, C.OFPFMFC_BAD_FLAGS)),
    # instructions
    "inst_unknown": (flow_mod_raw(insts=struct.pack("!HH4x", 7, 8)), (BI, C.OFPBIC_UNKNOWN_INST)),
    "inst_truncated": (flow_mod_raw(insts=b"\0\x01"), (BI, C.OFPBIC_BAD_LEN)),
    "inst_goto_len_16": (flow_mod_raw(insts=struct.pack("!HHB3x8x", 1, 16, 1)), (BI, C.OFPBIC_BAD_LEN)),
    "inst_len_not_8": (flow_mod_raw(insts=struct.pack("!HH4x", 4, 12) + b"\0" * 4), (BI, C.OFPBIC_BAD_LEN)),
    "inst_past_message": (flow_mod_raw(insts=struct.pack("!HH4x", 4, 24)), (BI, C.OFPBIC_BAD_LEN)),
    "inst_clear_with_body": (flow_mod_raw(insts=struct.pack("!HH4x", 5, 16) + b"\0" * 8),
                             (BI, C.OFPBIC_BAD_LEN)),
    "inst_write_metadata_short": (flow_mod_raw(insts=struct.pack("!HH4xQ", 2, 16, 1)),
                                  (BI, C.OFPBIC_BAD_LEN)),
    "inst_goto_table_all": (flow_mod_raw(insts=struct.pack("!HHB3x", 1, 8, 255)),
                            (BI, C.OFPBIC_BAD_TABLE_ID)),
    "inst_duplicate": (flow_mod_raw(insts=struct.pack("!HHB3x", 1, 8, 1) * 2),
                       (C.OFPET_EXPERIMENTER, C.ONFERR_DUP_INSTRUCTION)),
    # actions
    "action_unknown_type": (flow_mod_raw(insts=apply(struct.pack("!HH4x", 1, 8))), (BA, C.OFPBAC_BAD_TYPE)),
    "action_len_12": (flow_mod_raw(insts=apply(struct.pack("!HH4x", 18, 12) + b"\0" * 8)),
                      (BA, C.OFPBAC_BAD_LEN)),
    "action_len_0": (packet_out_raw(struct.pack("!HH4x", 18, 0)), (BA, C.OFPBAC_BAD_LEN)),
    "action_truncated": (packet_out_raw(b"\0\0\0\x10"), (BA, C.OFPBAC_BAD_LEN)),
    "action_past_list": (packet_out_raw(OUT1, alen=8, data=b"\0" * 8), (BA, C.OFPBAC_BAD_LEN)),
    "output_len_8": (packet_out_raw(struct.pack("!HHI", 0, 8, 1)), (BA, C.OFPBAC_BAD_LEN)),
    "pop_vlan_len_16": (packet_out_raw(struct.pack("!HH12x", 18, 16)), (BA, C.OFPBAC_BAD_LEN)),
    "output_reserved_hole": (packet_out_raw(struct.pack("!HHIH6x", 0, 16, 0xFFFFFF01, 0)),
                             (BA, C.OFPBAC_BAD_OUT_PORT)),
    "output_any": (packet_out_raw(struct.pack("!HHIH6x", 0, 16, C.OFPP_ANY, 0)), (BA, C.OFPBAC_BAD_OUT_PORT)),
    "group_all": (packet_out_raw(struct.pack("!HHI", 22, 8, C.OFPG_ALL)), (BA, C.OFPBAC_BAD_OUT_GROUP)),
    "push_vlan_ipv4": (packet_out_raw(struct.pack("!HHH2x", 17, 8, 0x0800)), (BA, C.OFPBAC_BAD_ARGUMENT)),
    "push_mpls_vlan": (packet_out_raw(struct.pack("!HHH2x", 19, 8, 0x8100)), (BA, C.OFPBAC_BAD_ARGUMENT)),
    "push_pbb_ipv4": (packet_out_raw(struct.pack("!HHH2x", 26, 8, 0x0800)), (BA, C.OFPBAC_BAD_ARGUMENT)),
    "set_field_in_port": (packet_out_raw(set_field_action(oxm(0, b"\0\0\0\1"))), (BA, C.OFPBAC_BAD_SET_TYPE)),
    "set_field_metadata": (packet_out_raw(set_field_action(oxm(2, b"\0" * 8))), (BA, C.OFPBAC_BAD_SET_TYPE)),
    "set_field_unknown": (packet_out_raw(set_field_action(oxm(45, b"\0\0"))), (BA, C.OFPBAC_BAD_SET_TYPE)),
    "set_field_bad_len": (packet_out_raw(set_field_action(oxm(3, b"\0" * 4))), (BA, C.OFPBAC_BAD_SET_LEN)),
    "set_field_past_action": (packet_out_raw(set_field_action(oxm(3, b"\0" * 6), length=8)),
                              (BA, C.OFPBAC_BAD_SET_LEN)),
    "set_field_masked": (packet_out_raw(set_field_action(oxm(3, b"\0" * 12, hasmask=1))),
                         (BA, C.OFPBAC_BAD_SET_ARGUMENT)),
    "set_field_vlan_pcp_9": (packet_out_raw(set_field_action(oxm(7, b"\x09"))),
                             (BA, C.OFPBAC_BAD_SET_ARGUMENT)),
    # packet out
    "packet_out_actions_past": (packet_out_raw(OUT1, alen=64), (BR, C.OFPBRC_BAD_LEN)),
    "packet_out_in_port_flood": (packet_out_raw(OUT1, in_port=C.OFPP_FLOOD), (BR, C.OFPBRC_BAD_PORT)),
    # group mod
    "group_bad_command": (group_mod_raw(command=3), (GMF, C.OFPGMFC_BAD_COMMAND)),
    "group_bad_type": (group_mod_raw(gtype=4), (GMF, C.OFPGMFC_BAD_TYPE)),
    "group_id_reserved": (group_mod_raw(gid=C.OFPG_ALL), (GMF, C.OFPGMFC_INVALID_GROUP)),
    "group_delete_any": (group_mod_raw(command=2, gid=C.OFPG_ANY), (GMF, C.OFPGMFC_INVALID_GROUP)),
    "bucket_short": (group_mod_raw(buckets=b"\0\x10\0\0"), (GMF, C.OFPGMFC_BAD_BUCKET)),
    "bucket_len_8": (group_mod_raw(buckets=bucket(blen=8) + b"\0" * 8), (GMF, C.OFPGMFC_BAD_BUCKET)),
    "bucket_len_past": (group_mod_raw(buckets=bucket(blen=48)), (GMF, C.OFPGMFC_BAD_BUCKET)),
    "bucket_bad_action": (group_mod_raw(buckets=bucket(struct.pack("!HH4x", 2, 8))), (BA, C.OFPBAC_BAD_TYPE)),
    "ff_bucket_without_watch": (group_mod_raw(gtype=3, buckets=bucket(OUT1)), (GMF, C.OFPGMFC_BAD_WATCH)),
    # meter mod
    "meter_bad_command": (meter_mod_raw(command=3), (MMF, C.OFPMMFC_BAD_COMMAND)),
    "meter_id_0": (meter_mod_raw(mid=0), (MMF, C.OFPMMFC_INVALID_METER)),
    "meter_id_all_on_add": (meter_mod_raw(mid=C.OFPM_ALL), (MMF, C.OFPMMFC_INVALID_METER)),
    "meter_id_reserved_hole": (meter_mod_raw(mid=0xFFFF0001), (MMF, C.OFPMMFC_INVALID_METER)),
    "meter_kbps_and_pktps": (meter_mod_raw(flags=3), (MMF, C.OFPMMFC_BAD_FLAGS)),
    "meter_unknown_flag": (meter_mod_raw(flags=0x11), (MMF, C.OFPMMFC_BAD_FLAGS)),
    "band_unknown_type": (meter_mod_raw(bands=struct.pack("!HHII4x", 3, 16, 1, 0)),
                          (MMF, C.OFPMMFC_BAD_BAND)),
    "band_drop_len_24": (meter_mod_raw(bands=struct.pack("!HHII12x", 1, 24, 1, 0)),
                         (MMF, C.OFPMMFC_BAD_BAND)),
    "band_truncated": (meter_mod_raw(bands=struct.pack("!HH", 1, 16)), (MMF, C.OFPMMFC_BAD_BAND)),
    "band_exp_len_12": (meter_mod_raw(bands=struct.pack("!HHII", 0xFFFF, 12, 1, 0)),
                        (MMF, C.OFPMMFC_BAD_BAND)),
    # role / queue
    "role_4": (raw_msg(C.OFPT_ROLE_REQUEST, struct.pack("!I4xQ", 4, 0)),
               (C.OFPET_ROLE_REQUEST_FAILED, C.OFPRRFC_BAD_ROLE)),
    "queue_config_reserved_port": (raw_msg(C.OFPT_QUEUE_GET_CONFIG_REQUEST,
                                          struct.pack("!I4x", C.OFPP_FLOOD)),
                                   (C.OFPET_QUEUE_OP_FAILED, C.OFPQOFC_BAD_PORT)),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_gives_exact_error(case):
    raw, (etype, code) = MALFORMED[case]
    with pytest.raises(O.OFPError) as info:
        O.decode(raw)
    e = info.value
    assert (e.type, e.code) == (etype, code), str(e)
    assert e.data == raw[:64]
    if len(raw) >= 8:
        assert e.xid == struct.unpack_from("!I", raw, 4)[0]
        # the ERROR the agent sends back, as a controller reads it
        p = osk_parse(e.encode())
        assert p.xid == e.xid and p.data == raw[:64]
        if etype == C.OFPET_EXPERIMENTER:
            assert (p.type, p.exp_type, p.experimenter) == (etype, code, C.ONF_EXPERIMENTER_ID)
        else:
            assert (p.type, p.code) == (etype, code)


def test_malformed_cases_are_otherwise_valid():
    """The builders above make valid messages when nothing is broken."""
    fm = O.decode(flow_mod_raw(ETH_IP + oxm(10, b"\x06") + oxm(14, b"\0\x50"), apply(OUT1)))
    assert fm.spec.match.fields == {"eth_type": (0x800, None), "ip_proto": (6, None), "tcp_dst": (80, None)}
    assert O.decode(packet_out_raw(set_field_action(oxm(3, b"\1" * 6)))).actions == \
        (M.SetField("eth_dst", 0x010101010101),)
    assert O.decode(group_mod_raw(gtype=3, buckets=bucket(OUT1, wp=1))).spec.buckets[0].watch_port == 1
    assert O.decode(group_mod_raw(command=2, gid=C.OFPG_ALL)).spec.group_id == C.OFPG_ALL
    assert O.decode(meter_mod_raw(command=2, flags=3, mid=C.OFPM_ALL)).command == 2
    assert O.decode(meter_mod_raw(bands=struct.pack("!HHIII", 0xFFFF, 16, 1, 0, 7))).spec.bands == \
        (O.ExperimenterBand(1, 0, 7),)
    assert O.decode(mp_req(C.OFPMP_TABLE_FEATURES, tf_entry(struct.pack("!HHHH", 0, 8, 1, 4)))).body[0] \
        .properties == (O.TFInstructions(0, (1,)),)
    qr = raw_msg(C.OFPT_QUEUE_GET_CONFIG_REQUEST, struct.pack("!I4x", C.OFPP_ANY))
    assert O.decode(qr).port == C.OFPP_ANY
    assert O.decode(packet_out_raw(OUT1, in_port=C.OFPP_LOCAL)).in_port == C.OFPP_LOCAL
    # VID bits with OFPVID_PRESENT outside the mask (the switch test tool's VLAN_VID_Mask case)
    assert O.decode(flow_mod_raw(oxm(6, b"\x00\x60\x00\xf0", hasmask=1))).spec.match.fields == \
        {"vlan_vid": (0x060, 0x0F0)}


def test_every_controller_message_type_is_covered():
    """Every type decode() accepts has a test that builds it with os-ken or by hand."""
    from datapath.ofp.messages import _DECODERS
    assert set(_DECODERS) | {C.OFPT_HELLO} == C2S
