"""Multipart request reassembly (datapath/ofp/reassembly.py), against
requests built and serialized by os-ken's parser classes."""
import struct

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from datapath import ofp as O
from datapath.ofp import consts as C
from datapath.ofp import messages as MSG
from datapath.ofp.reassembly import HELD, PASS, Reassembler
from oskwire import DP, osk_bytes, osk_parse

MORE = ofp.OFPMPF_REQ_MORE

# 40 OXM fields os-ken knows by name: long property lists make big tables
FIELDS = ["in_port", "in_phy_port", "metadata", "eth_dst", "eth_src", "eth_type", "vlan_vid",
          "vlan_pcp", "ip_dscp", "ip_ecn", "ip_proto", "ipv4_src", "ipv4_dst", "tcp_src",
          "tcp_dst", "udp_src", "udp_dst", "sctp_src", "sctp_dst", "icmpv4_type",
          "icmpv4_code", "arp_op", "arp_spa", "arp_tpa", "arp_sha", "arp_tha", "ipv6_src",
          "ipv6_dst", "ipv6_flabel", "icmpv6_type", "icmpv6_code", "ipv6_nd_target",
          "ipv6_nd_sll", "ipv6_nd_tll", "mpls_label", "mpls_tc", "mpls_bos", "pbb_isid",
          "tunnel_id", "ipv6_exthdr"]


def table(tid, n_fields=len(FIELDS)):
    P = parser
    oxm = [P.OFPOxmId(n, hasmask=False) for n in FIELDS[:n_fields]]
    props = [P.OFPTableFeaturePropInstructions(type_=ofp.OFPTFPT_INSTRUCTIONS, instruction_ids=[
                 P.OFPInstructionId(t) for t in (1, 2, 3, 4, 5, 6)]),
             P.OFPTableFeaturePropNextTables(type_=ofp.OFPTFPT_NEXT_TABLES,
                                             table_ids=list(range(tid + 1, 254))),
             P.OFPTableFeaturePropActions(type_=ofp.OFPTFPT_APPLY_ACTIONS,
                                          action_ids=[P.OFPActionId(a) for a in (0, 17, 25)])]
    props += [P.OFPTableFeaturePropOxm(type_=t, oxm_ids=oxm) for t in (8, 10, 12, 13, 14, 15)]
    return P.OFPTableFeaturesStats(tid, b"t%d" % tid, 0xFF, 0xF0, 3, 1000, props)


def tf_parts(xid, tables, per_part):
    """A TABLE_FEATURES request for `tables`, per_part tables per message,
    REQ_MORE on all but the last, serialized by os-ken."""
    chunks = [tables[i:i + per_part] for i in range(0, len(tables), per_part)] or [[]]
    return [osk_bytes(parser.OFPTableFeaturesStatsRequest(
        DP, MORE if i < len(chunks) - 1 else 0, chunk), xid) for i, chunk in enumerate(chunks)]


def feed_all(r, raws):
    return [r.feed(raw) for raw in raws]


def one_error(out, code, xid):
    assert not out.passthrough and out.request is None
    (err,) = out.errors
    assert (err.type, err.code, err.xid) == (ofp.OFPET_BAD_REQUEST, code, xid)
    # and os-ken reads the error message we would send
    m = osk_parse(err.encode())
    assert (m.type, m.code, m.xid) == (ofp.OFPET_BAD_REQUEST, code, xid)
    return err


# ---------------------------------------------------------------- pass through

def test_single_requests_and_other_messages_pass_through():
    r = Reassembler()
    assert r.feed(osk_bytes(parser.OFPDescStatsRequest(DP, 0), 1)) is PASS
    assert r.feed(osk_bytes(parser.OFPFlowStatsRequest(DP, 0), 2)) is PASS
    assert r.feed(b"".join(tf_parts(3, [table(0)], 1))) is PASS
    assert r.feed(osk_bytes(parser.OFPEchoRequest(DP, b"hi"), 4)) is PASS
    assert r.feed(osk_bytes(parser.OFPBarrierRequest(DP), 5)) is PASS
    assert r.pending == 0 and r.buffered == 0


def test_malformed_or_foreign_messages_are_left_to_the_decoder():
    r = Reassembler()
    raw = osk_bytes(parser.OFPDescStatsRequest(DP, MORE), 1)
    assert r.feed(raw[:12]) is PASS                           # too short for a multipart
    assert r.feed(bytes([1]) + raw[1:]) is PASS               # OpenFlow 1.0
    bad_len = raw[:2] + struct.pack("!H", len(raw) + 4) + raw[4:]
    assert r.feed(bad_len) is PASS                            # header length lies
    assert r.pending == 0


# ---------------------------------------------------------------- reassembly

def test_table_features_request_over_three_messages():
    tables = [table(t) for t in range(6)]
    parts = tf_parts(7, tables, 2)
    assert len(parts) == 3
    r = Reassembler()
    outs = feed_all(r, parts)
    assert outs[:2] == [HELD, HELD]
    assert r.pending == 0 and r.buffered == 0
    out = outs[2]
    assert not out.passthrough and out.errors == ()
    req = out.request
    assert isinstance(req, MSG.MultipartRequest)
    assert (req.xid, req.type, req.flags) == (7, ofp.OFPMP_TABLE_FEATURES, 0)
    assert out.raw == parts[0]
    # the same tables in one message decode to the same body
    whole = O.decode(tf_parts(7, tables, 6)[0])
    assert req.body == whole.body and len(req.body) == 6
    assert [t.table_id for t in req.body] == list(range(6))


def test_request_bigger_than_one_message():
    tables = [table(t) for t in range(254)]
    parts = tf_parts(9, tables, 20)
    assert all(len(p) < 65536 for p in parts)
    assert sum(len(p) - 16 for p in parts) > 3 * 65536       # needs several messages
    r = Reassembler()
    outs = feed_all(r, parts)
    assert all(o is HELD for o in outs[:-1])
    req = outs[-1].request
    assert [t.table_id for t in req.body] == list(range(254))
    assert req.body[100].name == "t100"
    assert len(req.body[100].properties) == 9


def test_items_split_across_parts_are_joined():
    # The spec wants whole items per part; joining bytes accepts both.
    raw = tf_parts(11, [table(0), table(1)], 2)[0]
    body = raw[16:]
    cut = 100                                                 # inside table 0
    hdr = raw[:16]

    def part(flags, b):
        return hdr[:2] + struct.pack("!H", 16 + len(b)) + hdr[4:8] + \
            struct.pack("!HH4x", ofp.OFPMP_TABLE_FEATURES, flags) + b
    r = Reassembler()
    assert r.feed(part(MORE, body[:cut])) is HELD
    out = r.feed(part(0, body[cut:]))
    assert out.request.body == O.decode(raw).body


def test_empty_final_part_and_body_less_types():
    r = Reassembler()
    # a TABLE_FEATURES "tell me" request sent as two empty parts
    assert r.feed(osk_bytes(parser.OFPTableFeaturesStatsRequest(DP, MORE), 3)) is HELD
    out = r.feed(osk_bytes(parser.OFPTableFeaturesStatsRequest(DP, 0), 3))
    assert (out.request.type, out.request.body) == (ofp.OFPMP_TABLE_FEATURES, ())
    # DESC (no body) with REQ_MORE: one DESC request
    assert r.feed(osk_bytes(parser.OFPDescStatsRequest(DP, MORE), 4)) is HELD
    out = r.feed(osk_bytes(parser.OFPDescStatsRequest(DP, 0), 4))
    assert (out.request.xid, out.request.type, out.request.body) == (4, ofp.OFPMP_DESC, None)
    # a flow stats request whose body comes in the last part
    assert r.feed(osk_bytes(parser.OFPPortDescStatsRequest(DP, MORE), 5)) is HELD
    assert r.pending == 1
    flow_req = osk_bytes(parser.OFPFlowStatsRequest(DP, MORE, table_id=3,
                                                    match=parser.OFPMatch(in_port=2)), 6)
    empty_last = osk_bytes(parser.OFPFlowStatsRequest(DP, 0), 6)[:16]
    empty_last = empty_last[:2] + struct.pack("!H", 16) + empty_last[4:]
    assert r.feed(flow_req) is HELD
    out = r.feed(empty_last)
    assert out.request.body.table_id == 3
    assert out.request.body.match.fields == {"in_port": (2, None)}


def test_interleaved_sequences_with_distinct_xids():
    # "Messages from a multipart request may be interleaved with other
    # OpenFlow message types, including other multipart requests, but must
    # have distinct transaction ids" (1.3.5, 7.3.5).
    a = tf_parts(21, [table(t, 5) for t in range(4)], 2)
    b = tf_parts(22, [table(t, 7) for t in range(10, 16)], 3)
    r = Reassembler()
    assert r.feed(a[0]) is HELD
    assert r.feed(b[0]) is HELD
    assert r.feed(osk_bytes(parser.OFPEchoRequest(DP, b""), 23)) is PASS
    assert r.feed(osk_bytes(parser.OFPPortDescStatsRequest(DP, 0), 24)) is PASS
    assert r.pending == 2
    ra = r.feed(a[1]).request
    rb = r.feed(b[1]).request
    assert (ra.xid, [t.table_id for t in ra.body]) == (21, [0, 1, 2, 3])
    assert (rb.xid, [t.table_id for t in rb.body]) == (22, list(range(10, 16)))
    assert r.pending == 0 and r.buffered == 0


# ---------------------------------------------------------------- errors

def test_other_type_with_the_same_xid_is_bad_multipart():
    parts = tf_parts(31, [table(t, 3) for t in range(6)], 2)
    r = Reassembler()
    assert r.feed(parts[0]) is HELD
    intruder = osk_bytes(parser.OFPPortDescStatsRequest(DP, 0), 31)
    err = one_error(r.feed(intruder), C.OFPBRC_BAD_MULTIPART, 31)
    assert err.data == intruder[:64]
    assert r.pending == 0 and r.buffered == 0
    # the broken sequence's tail is swallowed: no second answer, no request
    assert r.feed(parts[1]) is HELD
    assert r.feed(parts[2]) is HELD
    # and the xid is free again afterwards
    assert r.feed(osk_bytes(parser.OFPDescStatsRequest(DP, 0), 31)) is PASS


def test_other_type_with_more_swallows_both_tails():
    tf = tf_parts(32, [table(t, 3) for t in range(4)], 2)
    r = Reassembler()
    assert r.feed(tf[0]) is HELD
    desc_more = osk_bytes(parser.OFPDescStatsRequest(DP, MORE), 32)
    one_error(r.feed(desc_more), C.OFPBRC_BAD_MULTIPART, 32)
    assert r.feed(osk_bytes(parser.OFPDescStatsRequest(DP, 0), 32)) is HELD
    assert r.feed(tf[1]) is HELD
    assert r.feed(osk_bytes(parser.OFPDescStatsRequest(DP, 0), 32)) is PASS


def test_unknown_type_with_more_is_refused_at_once():
    raw = osk_bytes(parser.OFPDescStatsRequest(DP, MORE), 33)
    raw = raw[:8] + struct.pack("!H", 0x7777) + raw[10:]
    r = Reassembler()
    one_error(r.feed(raw), C.OFPBRC_BAD_MULTIPART, 33)
    assert r.pending == 0
    last = raw[:10] + struct.pack("!H", 0) + raw[12:]
    assert r.feed(last) is HELD                                # its tail: swallowed


def test_buffer_overflow():
    parts = tf_parts(41, [table(t) for t in range(12)], 2)
    limit = sum(len(p) - 16 for p in parts[:3])               # three parts fit, not four
    r = Reassembler(max_bytes=limit)
    assert feed_all(r, parts[:3]) == [HELD] * 3
    assert r.buffered == limit
    err = one_error(r.feed(parts[3]), C.OFPBRC_MULTIPART_BUFFER_OVERFLOW, 41)
    assert err.data == parts[3][:64]
    assert r.pending == 0 and r.buffered == 0
    assert feed_all(r, parts[4:]) == [HELD] * 2                 # rest of it swallowed
    # another request fits again
    ok = tf_parts(42, [table(0)], 1)[0]
    small = tf_parts(42, [table(0), table(1)], 1)
    assert r.feed(small[0]) is HELD and r.feed(small[1]).request is not None
    assert r.feed(ok) is PASS


def test_overflow_counts_every_open_sequence():
    a = tf_parts(51, [table(t) for t in range(4)], 2)
    b = tf_parts(52, [table(t) for t in range(4)], 2)
    r = Reassembler(max_bytes=len(a[0]) - 16 + len(b[0]) - 20)
    assert r.feed(a[0]) is HELD
    one_error(r.feed(b[0]), C.OFPBRC_MULTIPART_BUFFER_OVERFLOW, 52)
    assert r.feed(b[1]) is HELD                                # b's tail swallowed
    assert r.feed(a[1]).request is not None                   # a unharmed


def test_too_many_open_sequences():
    r = Reassembler(max_sequences=3)
    firsts = [osk_bytes(parser.OFPTableFeaturesStatsRequest(DP, MORE, [table(0, 2)]), x)
              for x in (61, 62, 63, 64)]
    assert feed_all(r, firsts[:3]) == [HELD] * 3
    one_error(r.feed(firsts[3]), C.OFPBRC_MULTIPART_BUFFER_OVERFLOW, 64)
    assert r.pending == 3


def test_body_that_does_not_decode_gets_one_error_for_the_request():
    good = tf_parts(71, [table(0, 4), table(1, 4)], 1)
    garbage = good[1][:16] + b"\x00\x08" + b"\x00" * 6           # a table_features of length 8
    garbage = garbage[:2] + struct.pack("!H", len(garbage)) + garbage[4:]
    r = Reassembler()
    assert r.feed(good[0]) is HELD
    out = r.feed(garbage)
    (err,) = out.errors
    assert out.request is None
    # the codec's answer for such a body, as for the same body in one message
    assert err.xid == 71
    assert (err.type, err.code) == (ofp.OFPET_TABLE_FEATURES_FAILED, ofp.OFPTFFC_BAD_LEN)
    single = good[0] + garbage[16:]
    single = single[:2] + struct.pack("!H", len(single)) + single[4:]
    with pytest.raises(O.OFPError) as ei:
        O.decode(single)
    assert (ei.value.type, ei.value.code) == (err.type, err.code)
    assert err.data == good[0][:64]                            # quotes the request's start
    assert r.pending == 0 and r.buffered == 0


def test_clear_forgets_everything():
    r = Reassembler()
    r.feed(tf_parts(81, [table(0), table(1)], 1)[0])
    assert r.pending == 1 and r.buffered > 0
    r.clear()
    assert r.pending == 0 and r.buffered == 0


# ---------------------------------------------------------------- through the agent
# Runs once datapath/ofp/agent.py feeds Session input through a Reassembler
# (Session.reassembly); skipped before that hook exists.

from datapath.ofp import agent as A  # noqa: E402


class _FakeDp:
    n_tables = 254

    def ports(self):
        return {}


def _session():
    wire = []
    agent = A.Agent(_FakeDp(), dpid=1, fail_mode="secure")
    s = agent.open_session(wire.append, lambda: None, name="t")
    s.data_received(O.encode(O.Hello(1, frozenset({4}))))
    if not hasattr(s, "reassembly"):
        pytest.skip("agent.Session has no reassembly hook yet")
    wire.clear()
    return s, wire


def _parsed(wire):
    out = [osk_parse(r) for r in wire]
    wire.clear()
    return out


def test_agent_answers_a_split_table_features_set_once():
    s, wire = _session()
    parts = tf_parts(91, [table(t) for t in range(40)], 10)
    for p in parts[:-1]:
        s.data_received(p)
        assert wire == []                      # nothing until the last part
    s.data_received(parts[-1])
    (err,) = _parsed(wire)
    assert (err.type, err.code, err.xid) == (ofp.OFPET_TABLE_FEATURES_FAILED,
                                             ofp.OFPTFFC_EPERM, 91)
    assert bytes(err.data) == parts[0][:64]


def test_agent_split_query_gets_the_full_reply_and_echo_is_not_held():
    s, wire = _session()
    s.data_received(osk_bytes(parser.OFPTableFeaturesStatsRequest(DP, MORE), 92))
    s.data_received(osk_bytes(parser.OFPEchoRequest(DP, b"ping"), 93))
    (echo,) = _parsed(wire)                   # answered mid-sequence
    assert (echo.msg_type, echo.xid) == (ofp.OFPT_ECHO_REPLY, 93)
    s.data_received(osk_bytes(parser.OFPTableFeaturesStatsRequest(DP, 0), 92))
    replies = _parsed(wire)
    assert all(m.xid == 92 and m.msg_type == ofp.OFPT_MULTIPART_REPLY for m in replies)
    assert sum(len(m.body) for m in replies) == 254


def test_agent_overflow_and_bad_multipart_errors():
    s, wire = _session()
    s.reassembly.max_bytes = 1000
    parts = tf_parts(94, [table(t) for t in range(4)], 1)
    for p in parts:
        s.data_received(p)
    (err,) = _parsed(wire)
    assert (err.type, err.code, err.xid) == (ofp.OFPET_BAD_REQUEST,
                                             ofp.OFPBRC_MULTIPART_BUFFER_OVERFLOW, 94)
    s.data_received(osk_bytes(parser.OFPDescStatsRequest(DP, MORE), 95))
    s.data_received(osk_bytes(parser.OFPPortDescStatsRequest(DP, 0), 95))
    (err,) = _parsed(wire)
    assert (err.type, err.code, err.xid) == (ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_MULTIPART, 95)
    assert not s.closed                        # the channel stays up
    s.data_received(osk_bytes(parser.OFPDescStatsRequest(DP, 0), 96))
    (desc,) = _parsed(wire)
    assert desc.xid == 96
