"""The flow-mod fast path: matches kept as OXM bytes, compiled instructions
reused per instructions tuple.

With datapath.fastpath loaded, a FLOW_MOD whose OXM TLVs ext's checker
(ext._fastpath.oxm_check) accepts decodes to an oxm.WireMatch, which
Datapath.flow_add converts to its C key straight from the bytes and keeps as
the flow's match.  Here: the checker accepts only what the general decoder
accepts (with the prerequisites), the bytes give the same key and the same
fields as the general path, a WireMatch behaves as a Match, flows added
that way dump and delete as usual, and the per-instructions cache of
flow_add never skips a check that depends on the table or the datapath.
"""
import random
import struct

import pytest

from datapath import fastpath as FP
from datapath import model as M
from datapath.ofp import OFPError
from datapath.ofp import consts as C
from datapath.ofp import messages as MSG
from datapath.ofp import oxm as X

_fp = FP._fp


def oxm_bytes(fields):
    return X.encode_oxm_fields(M.Match(fields))


def general_flow_match(oxm):
    """What the general decoder (prerequisites on) makes of the TLVs: the
    fields, or (type, code) of its error."""
    raw = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
    raw += b"\0" * ((-len(raw)) % 8)
    try:
        m, _, basic = X.decode_match_basic(raw, 0, len(raw), True)
    except OFPError as e:
        return (e.type, e.code)
    return dict(m.fields) if basic else "opaque"


TCP = {"in_port": (1, None), "eth_type": (0x0800, None), "ip_proto": (6, None),
       "ipv4_src": (0x0A000001, None), "ipv4_dst": (0x0B000000, 0xFFFFFF00),
       "tcp_src": (1024, None), "tcp_dst": (80, None)}

_VALUES = {
    "in_port": [1, 7, 0xFFFFFFFE], "in_phy_port": [1], "metadata": [0, 0x1234, 1 << 63],
    "eth_dst": [0x0000_5E00_0101, 0xFFFF_FFFF_FFFF], "eth_src": [0x02_00_00_00_00_01],
    "eth_type": [0x0800, 0x86DD, 0x0806, 0x8847, 0x88E7, 0x1234],
    "vlan_vid": [0x1000 | 5, 0x1000, 0, 5, 0x1FFF], "vlan_pcp": [3, 7],
    "ip_dscp": [46, 63], "ip_ecn": [1, 3], "ip_proto": [6, 17, 132, 1, 58, 99],
    "ipv4_src": [0x0A000001, 0xC0A80000], "ipv4_dst": [0x0B000000],
    "tcp_src": [80], "tcp_dst": [443], "udp_src": [53], "udp_dst": [67],
    "sctp_src": [1], "sctp_dst": [2], "icmpv4_type": [8], "icmpv4_code": [0],
    "arp_op": [1, 2], "arp_spa": [0x0A000001], "arp_tpa": [0x0A000002],
    "arp_sha": [0x02_00_00_00_00_02], "arp_tha": [0x02_00_00_00_00_03],
    "ipv6_src": [1 << 127 | 1, 0x2001_0db8 << 96], "ipv6_dst": [0x2001_0db8 << 96 | 5],
    "ipv6_flabel": [0x12345, 0xFFFFF], "icmpv6_type": [135, 136, 128],
    "icmpv6_code": [0], "ipv6_nd_target": [0xFE80 << 112 | 1],
    "ipv6_nd_sll": [0x02_00_00_00_00_04], "ipv6_nd_tll": [0x02_00_00_00_00_05],
    "mpls_label": [5, 0xFFFFF], "mpls_tc": [3], "mpls_bos": [1], "pbb_isid": [0xABCDEF],
    "tunnel_id": [1, 1 << 63], "ipv6_exthdr": [0x1FF, 1],
}
_NAMES = list(_VALUES)


def _random_fields(rng):
    """Mostly well-formed field sets, with prerequisites often met."""
    fields = {}
    base = rng.choice([[], [("eth_type", 0x0800)], [("eth_type", 0x86DD)],
                       [("eth_type", 0x0800), ("ip_proto", 6)],
                       [("eth_type", 0x86DD), ("ip_proto", 58)],
                       [("eth_type", 0x86DD), ("ip_proto", 58), ("icmpv6_type", 135)],
                       [("eth_type", 0x0806)], [("vlan_vid", 0x1005)]])
    for name, value in base:
        fields[name] = (value, None)
    for _ in range(rng.randint(0, 4)):
        name = rng.choice(_NAMES)
        value = rng.choice(_VALUES[name])
        bits = M.FIELD_BITS[name]
        mask = None
        if name in M.MASKABLE and rng.random() < 0.4:
            mask = rng.choice([(1 << bits) - 1, rng.getrandbits(bits), 0])
            if rng.random() < 0.8:
                value &= mask
        fields[name] = (value, mask)
    items = list(fields.items())
    rng.shuffle(items)
    return dict(items)


def _mutate(rng, oxm):
    b = bytearray(oxm)
    if not b:
        return bytes(b)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(b))
        b[i] = rng.choice([0, 0xFF, b[i] ^ (1 << rng.randrange(8)), rng.getrandbits(8)])
    if rng.random() < 0.2:
        del b[rng.randrange(len(b)):]
    return bytes(b)


def test_checker_accepts_only_what_the_decoder_accepts_and_agrees():
    rng = random.Random(1234)
    accepted = refused = 0
    for i in range(6000):
        oxm = oxm_bytes(_random_fields(rng))
        if i % 3 == 0:
            oxm = _mutate(rng, oxm)
        want = general_flow_match(oxm)
        if _fp.oxm_check(oxm):
            accepted += 1
            assert isinstance(want, dict), (oxm.hex(), want)
            assert _fp.oxm_fields(oxm) == want
            assert list(_fp.oxm_fields(oxm)) == list(want)        # wire order
            assert _fp.oxm_key_words(oxm) == _fp.match_key_words(M.Match(want))
        else:
            refused += 1
            assert _fp.oxm_key_words(oxm) is None
    assert accepted > 1000 and refused > 500


@pytest.mark.parametrize("fields, why", [
    ({"tcp_dst": (80, None)}, "prerequisite missing"),
    ({"eth_type": (0x0800, None), "ip_proto": (17, None), "tcp_dst": (80, None)}, "wrong proto"),
    ({"vlan_pcp": (3, None), "vlan_vid": (0, None)}, "untagged vlan for pcp"),
    ({"eth_type": (0x0800, None), "ip_proto": (6, None), "ipv4_src": (0x0A000001, 0xFF000000)},
     "value outside mask"),
    ({"vlan_vid": (0x0005, None)}, "vid without OFPVID_PRESENT"),
])
def test_checker_refuses(fields, why):
    oxm = oxm_bytes(fields)
    assert not _fp.oxm_check(oxm), why
    assert not isinstance(general_flow_match(oxm), dict) or why == "vid without OFPVID_PRESENT"


def test_checker_refuses_masked_prerequisite_and_opaque():
    # eth_type is not maskable on the wire: a hand-built masked TLV
    masked_et = struct.pack("!IHH", 0x80000000 | (5 << 9) | (1 << 8) | 4, 0x0800, 0xFFFF)
    assert not _fp.oxm_check(masked_et)
    exp = struct.pack("!II", 0xFFFF0000 | 4, 0x00002320) + b"\1\2\3\4"
    assert not _fp.oxm_check(exp)
    dup = oxm_bytes({"in_port": (1, None)}) * 2
    assert not _fp.oxm_check(dup)
    assert general_flow_match(dup) == (C.OFPET_BAD_MATCH, C.OFPBMC_DUP_FIELD)
    assert _fp.oxm_check(b"")               # the empty match (table-miss flows)


def flow_mod_raw(fields, insts=b"", table_id=0, priority=1000, command=C.OFPFC_ADD, cookie=0):
    match = X.encode_match(M.Match(fields))
    body = struct.pack("!QQBBHHHIIIH2x", cookie, 0, table_id, command, 0, 0, priority,
                       0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0) + match + insts
    return struct.pack("!BBHI", 4, C.OFPT_FLOW_MOD, 8 + len(body), 7) + body


def output(port):
    acts = struct.pack("!HHIH6x", 0, 16, port, 0xFFFF)
    return struct.pack("!HH4x", 4, 8 + len(acts)) + acts


def goto(table):
    return struct.pack("!HHB3x", 1, 8, table)


def test_decoded_flow_mod_match_is_a_wire_match_that_behaves_as_a_match():
    msg = MSG.decode(flow_mod_raw(TCP, output(2)))
    m = msg.spec.match
    assert type(m) is X.WireMatch and isinstance(m, M.Match) and msg.basic
    assert m.oxm is not None
    assert m == M.Match(TCP) and M.Match(TCP) == m
    assert list(m.fields) == list(TCP)
    assert m.oxm is None                      # materialised: an ordinary Match now
    m.set("tcp_dst", 8080)
    assert m.fields["tcp_dst"] == (8080, None)
    assert "tcp_dst" in repr(m)
    import copy
    import pickle
    assert copy.deepcopy(m) == m
    assert pickle.loads(pickle.dumps(m)) == m
    # a refused match takes the general decoder, with its error
    with pytest.raises(OFPError) as e:
        MSG.decode(flow_mod_raw({"tcp_dst": (80, None)}, output(2)))
    assert (e.value.type, e.value.code) == (C.OFPET_BAD_MATCH, C.OFPBMC_BAD_PREREQ)


def test_wire_flows_dump_match_and_delete_like_model_flows():
    dp = FP.Datapath()
    ref = FP.Datapath()
    rng = random.Random(7)
    n = 0
    for i in range(300):
        fields = _random_fields(rng)
        raw = flow_mod_raw(fields, output(2), priority=100 + i % 7, cookie=i)
        try:
            msg = MSG.decode(raw)
        except OFPError:
            continue
        spec = msg.spec
        ref_spec = M.FlowSpec(table_id=0, priority=spec.priority, match=M.Match(fields),
                              instructions=spec.instructions, cookie=i)
        try:
            ref.flow_add(ref_spec)
        except FP.FlowError as e:
            with pytest.raises(FP.FlowError) as e2:
                dp.flow_add(spec)
            assert (e2.value.type, e2.value.code) == (e.type, e.code)
            continue
        dp.flow_add(spec)
        n += 1
    assert n > 50
    assert dp.flow_count() == ref.flow_count()

    def dump(d):
        return [(st.spec.priority, st.spec.cookie, list(st.spec.match.fields.items()),
                 st.spec.instructions) for st in d.flows()]
    assert dump(dp) == dump(ref)
    for st in dp.flows():
        assert type(st.spec.match) is M.Match
    # a filter given as a WireMatch selects as its fields do
    flt = MSG.decode(flow_mod_raw({"eth_type": (0x0800, None)}, command=C.OFPFC_DELETE))
    gone = dp.flow_delete(match=flt.spec.match)
    gone_ref = ref.flow_delete(match=M.Match({"eth_type": (0x0800, None)}))
    assert sorted(s.spec.cookie for s in gone) == sorted(s.spec.cookie for s in gone_ref)
    assert dump(dp) == dump(ref)


def test_identical_add_replaces_and_strict_delete_finds_wire_flow():
    dp = FP.Datapath()
    dp.flow_add(MSG.decode(flow_mod_raw(TCP, output(2), cookie=1)).spec)
    dp.flow_add(MSG.decode(flow_mod_raw(TCP, output(3), cookie=2)).spec)
    (st,) = dp.flows()
    assert st.spec.cookie == 2
    assert st.spec.instructions == (M.ApplyActions((M.Output(3),)),)
    # the same flow given as a model Match is the same flow
    dp.flow_add(M.FlowSpec(priority=1000, match=M.Match(TCP), cookie=3,
                           instructions=(M.ApplyActions((M.Output(4),)),)))
    assert [s.spec.cookie for s in dp.flows()] == [3]
    assert len(dp.flow_delete(match=M.Match(TCP), priority=1000, strict=True)) == 1
    assert dp.flow_count() == 0


def test_instruction_cache_checks_goto_per_table():
    dp = FP.Datapath(n_tables=4)
    insns = MSG.decode(flow_mod_raw(TCP, goto(2))).spec.instructions
    dp.flow_add(M.FlowSpec(table_id=0, priority=1, match=M.Match(TCP), instructions=insns))
    dp.flow_add(M.FlowSpec(table_id=1, priority=1, match=M.Match(TCP), instructions=insns))
    for t in (2, 3):               # goto 2 from table 2 or 3: refused, cached or not
        with pytest.raises(FP.FlowError) as e:
            dp.flow_add(M.FlowSpec(table_id=t, priority=1, match=M.Match(TCP),
                                   instructions=insns))
        assert e.value.code == C.OFPBIC_BAD_TABLE_ID
    assert dp.flow_count() == 2


def test_instruction_cache_does_not_keep_group_or_meter_checks():
    dp = FP.Datapath()
    dp.group_add(M.GroupSpec(1, M.OFPGT_ALL, (M.Bucket(actions=(M.Output(2),)),)))
    insns = (M.ApplyActions((M.Group(1),)),)
    dp.flow_add(M.FlowSpec(priority=1, match=M.Match({"in_port": (1, None)}),
                           instructions=insns))
    dp.flow_delete()
    dp.group_delete(1)
    with pytest.raises(FP.FlowError) as e:
        dp.flow_add(M.FlowSpec(priority=1, match=M.Match({"in_port": (1, None)}),
                               instructions=insns))
    assert e.value.code == C.OFPBAC_BAD_OUT_GROUP


def test_cached_instructions_forward_like_fresh_ones():
    dp = FP.Datapath()
    p1, p2, p3 = FP.DummyPort("a"), FP.DummyPort("b"), FP.DummyPort("c")
    dp.attach_port(1, p1)
    dp.attach_port(2, p2)
    dp.attach_port(3, p3)
    insns = (M.ApplyActions((M.SetField("eth_dst", 0x020000000099), M.Output(3))),)
    for i in range(5):              # the same tuple: compiled once, copied after
        dp.flow_add(M.FlowSpec(priority=10, match=M.Match({"in_port": (1, None),
                                                            "eth_type": (0x0800 + i, None)}),
                               instructions=insns))
    frame = bytes.fromhex("ffffffffffff020000000001") + struct.pack("!H", 0x0803) + b"\0" * 50
    p1.inject(frame)
    dp.poll_once()
    out = p3.take_tx()
    assert len(out) == 1 and out[0][:6] == bytes.fromhex("020000000099")
    assert p2.take_tx() == []


def test_every_field_maskable_and_width_as_the_codec_says():
    # the checker's accept set rests on ext's field table agreeing with the
    # codec's (widths, maskable): one masked and one unmasked TLV per field
    for name, bits, maskable, _ in M.FIELDS:
        fid, size, _, _, _ = X.FIELD_INFO[name]
        value = 1
        exact = struct.pack("!I", 0x80000000 | (fid << 9) | size) + value.to_bytes(size, "big")
        masked = struct.pack("!I", 0x80000000 | (fid << 9) | 256 | 2 * size) + \
            value.to_bytes(size, "big") + value.to_bytes(size, "big")
        for oxm in (exact, masked):
            got = _fp.oxm_key_words(oxm, False)
            want = general_flow_match(oxm)      # with prerequisites: may refuse
            if got is not None:
                raw = struct.pack("!HH", 1, 4 + len(oxm)) + oxm
                raw += b"\0" * ((-len(raw)) % 8)
                fields, _, _ = X.decode_match_basic(raw, 0, len(raw), False)
                assert got == _fp.match_key_words(fields, False), name
            if oxm is masked and not maskable:
                assert got is None, name
            if _fp.oxm_check(oxm):
                assert isinstance(want, dict), name
