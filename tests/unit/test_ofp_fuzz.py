"""Fuzzing datapath.ofp's decoder.

- Truncated, bit-flipped, overwritten, spliced and random messages (built
  from a corpus of valid controller->switch messages: our own encodings plus
  the ofsoftswitch13/Open vSwitch/os-ken vectors shipped with os-ken) never
  make decode() raise anything but OFPError, and never hang (each decode
  runs under a 2 s alarm).  The switch test tool's 1435 flow/group/meter
  mods are in the corpus too.
- The structure decoders never read past the end they are given: decoding
  buf[:n] and buf[:n] + garbage with the same end gives the same result (or
  the same error).
- Random valid flows, groups, meters, matches and table features round-trip
  through encode/decode unchanged.
"""
import random
import signal
import struct
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from datapath import model as M
from datapath import ofp as O
from datapath.ofp import actions as A
from datapath.ofp import consts as C
from datapath.ofp import multipart as MP
from datapath.ofp import oxm as X

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUNDTRIP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Hang(Exception):
    pass


@contextmanager
def alarm(seconds=2):
    def on_alarm(signum, frame):
        raise Hang("decoder did not return")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def decode_ok(raw):
    """decode(raw) must return a message or raise OFPError, nothing else."""
    with alarm():
        try:
            return O.decode(raw)
        except O.OFPError as e:
            assert isinstance(e.type, int) and isinstance(e.code, int)
            assert len(e.data) <= 64 and e.data == bytes(raw[:64])
            if len(raw) >= 8:
                assert e.xid == struct.unpack_from("!I", raw, 4)[0]
            e.encode()                       # always encodable
            return e


def patch_len(raw):
    raw = bytearray(raw)
    if len(raw) >= 4:
        struct.pack_into("!H", raw, 2, len(raw) & 0xFFFF)
    return bytes(raw)


# ---- the corpus --------------------------------------------------------------------

def _match():
    m = M.Match()
    for k, v in (("in_port", (1, None)), ("eth_type", (0x86DD, None)), ("ip_proto", (58, None)),
                 ("icmpv6_type", (135, None)), ("ipv6_nd_target", (1 << 100, None)),
                 ("ipv6_src", (0x2001 << 112, 0xFFFF << 112)), ("metadata", (1, 1)),
                 ("vlan_vid", (0x1005, None)), ("vlan_pcp", (2, None)),
                 (O.OxmExp(0xFFFF, 42, C.ONF_EXPERIMENTER_ID), (b"\0\x10", b"\0\xff"))):
        m.fields[k] = v
    return m


def _actions():
    return (M.Output(1), M.Output(C.OFPP_CONTROLLER, 128), M.CopyTtlOut(), M.CopyTtlIn(),
            M.SetMplsTtl(3), M.DecMplsTtl(), M.PushVlan(), M.PopVlan(), M.PushMpls(), M.PopMpls(0x800),
            M.SetQueue(1), M.Group(2), M.SetNwTtl(4), M.DecNwTtl(), M.PushPbb(), M.PopPbb(),
            M.SetField("ipv6_dst", 5), M.SetField("vlan_vid", 0x1001), M.SetField("eth_src", 9),
            O.ExperimenterAction(0x2320, b"\0\x01\0\0\0\0\0\0"))


def _table_features():
    props = (O.TFInstructions(0, (1, 3, 4, O.RawId(0xFFFF, b"\0\0\0\x01"))), O.TFNextTables(2, (1, 2)),
             O.TFActions(6, (0, 25)), O.TFOxm(8, (O.OxmId.of("eth_dst", True), O.OxmId.of("in_port"),
                                                 O.OxmId(0xFFFF, 3, False, 6, 0xABCD))),
             O.TFExperimenter(0xFFFE, 1, 2, b"\0\0\0\x07"))
    return (O.TableFeatures(0, "t0", 1, 2, 3, 4, props), O.TableFeatures(1, "t1"))


def own_corpus():
    spec = M.FlowSpec(1, 100, _match(), (M.Meter(1), M.ApplyActions(_actions()), M.ClearActions(),
                                          M.WriteActions((M.Output(2),)), M.WriteMetadata(1, 3),
                                          M.GotoTable(2), O.ExperimenterInstruction(7, b"12345678")),
                      5, 6, 7, 1)
    spec_ok = M.FlowSpec(0, 1, M.Match({"eth_type": (0x800, None), "ip_proto": (6, None),
                                        "tcp_dst": (80, None)}),
                         (M.ApplyActions((M.Output(1),)),))
    groups = [M.GroupSpec(1, M.OFPGT_SELECT, (M.Bucket((M.Output(1),), 1), M.Bucket((M.Output(2),), 2))),
              M.GroupSpec(2, M.OFPGT_FF, (M.Bucket((M.Output(1),), watch_port=1),))]
    meters = [M.MeterSpec(1, 1, (M.Band(1, 10, 1), M.Band(2, 20, 2, 1),
                                 O.ExperimenterBand(1, 2, 3, b"x" * 8)))]
    fsr = O.FlowStatsRequest(1, 2, 3, 4, 5, _match())
    msgs = [
        O.Hello(1), O.Hello(2, versions=frozenset({1, 4, 33})), O.ErrorMsg(3, 1, 2, b"abc"),
        O.ErrorMsg(4, 0xFFFF, 2600, b"d", C.ONF_EXPERIMENTER_ID), O.EchoRequest(5, b"e" * 9),
        O.EchoReply(6), O.Experimenter(7, 1, 2, b"xyz"), O.FeaturesRequest(8), O.GetConfigRequest(9),
        O.SetConfig(10, 1, 200), O.PacketOut(11, actions=_actions(), data=b"\xff" * 64),
        O.FlowMod(12, C.OFPFC_DELETE, spec, 0xF, out_port=3), O.FlowMod(13, C.OFPFC_ADD, spec_ok),
        O.PortMod(16, 1, 2, 3, 4, 5), O.TableMod(17, 1, 3), O.BarrierRequest(18),
        O.QueueGetConfigRequest(19, 1), O.RoleRequest(20, 2, 3), O.GetAsyncRequest(21),
        O.SetAsync(22, (1, 2), (3, 4), (5, 6)),
    ]
    msgs += [O.GroupMod(30 + i, C.OFPGC_ADD, g) for i, g in enumerate(groups)]
    msgs += [O.MeterMod(40, C.OFPMC_ADD, m) for m in meters]
    for t, body in ((C.OFPMP_DESC, None), (C.OFPMP_FLOW, fsr), (C.OFPMP_AGGREGATE, fsr),
                    (C.OFPMP_TABLE, None), (C.OFPMP_PORT_STATS, O.PortStatsRequest(1)),
                    (C.OFPMP_QUEUE, O.QueueStatsRequest(1, 2)), (C.OFPMP_GROUP, O.GroupStatsRequest(1)),
                    (C.OFPMP_GROUP_DESC, None), (C.OFPMP_GROUP_FEATURES, None),
                    (C.OFPMP_METER, O.MeterStatsRequest(1)), (C.OFPMP_METER_CONFIG, O.MeterStatsRequest(2)),
                    (C.OFPMP_METER_FEATURES, None), (C.OFPMP_TABLE_FEATURES, _table_features()),
                    (C.OFPMP_PORT_DESC, None), (C.OFPMP_EXPERIMENTER, O.ExperimenterMultipart(1, 2, b"q"))):
        msgs.append(O.MultipartRequest(50 + t % 100, t, 0, body))
    return [O.encode(m) for m in msgs]


def vector_corpus():
    from os_ken.ofproto import ofproto_parser
    d = Path(ofproto_parser.__file__).resolve().parents[1] / "tests" / "packet_data" / "of13"
    out = []
    for f in sorted(d.glob("*.packet")):
        raw = f.read_bytes()
        if len(raw) >= 8 and int.from_bytes(raw[2:4], "big") == len(raw):
            out.append(raw)
    return out


def switch_tool_corpus():
    """The flow/group/meter mods of the os-ken switch test tool (deduplicated)."""
    import json
    from os_ken.ofproto import ofproto_parser, ofproto_v1_3, ofproto_v1_3_parser

    class StubDatapath:
        ofproto, ofproto_parser, id = ofproto_v1_3, ofproto_v1_3_parser, 1
    d = Path(ofproto_parser.__file__).resolve().parents[1] / "tests" / "switch" / "of13"
    out = set()
    for f in sorted(d.rglob("*.json")):
        for test in json.loads(f.read_text()):
            for mod in test["prerequisite"] if isinstance(test, dict) else ():
                msg = ofproto_parser.ofp_msg_from_jsondict(StubDatapath, mod)
                msg.serialize()
                out.add(bytes(msg.buf))
    return sorted(out)


CORPUS = own_corpus() + vector_corpus() + switch_tool_corpus()


def test_corpus_is_valid_and_wide():
    decoded = [decode_ok(r) for r in own_corpus()]
    assert not any(isinstance(d, O.OFPError) for d in decoded)
    types = {r[1] for r in CORPUS}
    assert {0, 1, 2, 3, 4, 5, 7, 9, 13, 14, 15, 16, 17, 18, 20, 22, 24, 26, 28, 29} <= types


# ---- exhaustive small mutations ------------------------------------------------------------

@pytest.mark.parametrize("idx", range(len(own_corpus())))
def test_every_truncation(idx):
    raw = own_corpus()[idx]
    for n in range(len(raw)):
        decode_ok(raw[:n])                 # header length now lies
        decode_ok(patch_len(raw[:n]))      # header length agrees: reaches the body decoders


@pytest.mark.parametrize("idx", range(len(own_corpus())))
def test_every_single_bit_flip(idx):
    raw = own_corpus()[idx]
    for i in range(len(raw)):
        for bit in range(8):
            b = bytearray(raw)
            b[i] ^= 1 << bit
            decode_ok(bytes(b))


@pytest.mark.parametrize("idx", range(len(own_corpus())))
def test_every_byte_set_to_edge_values(idx):
    raw = own_corpus()[idx]
    for i in range(8, len(raw)):
        for v in (0x00, 0x01, 0x04, 0x07, 0x08, 0x7F, 0x80, 0xFE, 0xFF):
            b = bytearray(raw)
            b[i] = v
            decode_ok(bytes(b))


# ---- random mutations (hypothesis) ---------------------------------------------------------

@st.composite
def mutated(draw):
    raw = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "u16", "cut", "insert", "delete"]))
        if not raw:
            break
        i = draw(st.integers(0, len(raw) - 1))
        if op == "flip":
            raw[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            raw[i] = draw(st.integers(0, 255))
        elif op == "u16" and i + 2 <= len(raw):
            # length fields are 16-bit: plant interesting ones
            v = draw(st.sampled_from([0, 1, 3, 4, 7, 8, 12, 15, 16, 17, 24, 0x7FFF, 0xFFFF, len(raw) - i]))
            struct.pack_into("!H", raw, i, v & 0xFFFF)
        elif op == "cut":
            del raw[i:]
        elif op == "insert":
            raw[i:i] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete":
            del raw[i:i + draw(st.integers(1, 16))]
    if draw(st.booleans()):
        raw = bytearray(patch_len(raw))
    return bytes(raw)


@FUZZ
@given(mutated())
def test_mutated_messages_only_raise_ofperror(raw):
    decode_ok(raw)


@FUZZ
@given(st.integers(0, 255), st.sampled_from([4, 4, 4, 1, 5]), st.binary(max_size=300))
def test_random_bodies_only_raise_ofperror(mtype, version, body):
    decode_ok(struct.pack("!BBHI", version, mtype, 8 + len(body), 1) + body)


@FUZZ
@given(st.sampled_from(sorted({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0xFFFF, 14, 99})),
       st.binary(max_size=200))
def test_random_multipart_bodies_only_raise_ofperror(mp_type, body):
    decode_ok(patch_len(struct.pack("!BBHIHH4x", 4, C.OFPT_MULTIPART_REQUEST, 0, 1, mp_type, 0) + body))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(CORPUS), min_size=1, max_size=8), st.lists(st.integers(1, 300), max_size=20))
def test_framer_any_chunking(msgs, cuts):
    stream = b"".join(msgs)
    fr, out, pos = O.Framer(), [], 0
    for c in cuts + [len(stream)]:
        fr.feed(stream[pos:pos + c])
        pos += c
        out += list(fr)
    fr.feed(stream[pos:])
    out += list(fr)
    assert out == msgs


# ---- bounded reads: structure decoders never look past `end` -------------------------------

def same_outcome(decoder, buf, end, garbage):
    def run(b):
        with alarm():
            try:
                return ("ok", decoder(b, 0, end))
            except O.OFPError as e:
                return ("err", e.type, e.code)
    assert run(buf[:end]) == run(buf[:end] + garbage)


STRUCTURES = {
    "match": (X.decode_match, lambda: X.encode_match(_match())),
    # no padding: the byte after the last OXM is the first one past the match
    "match_aligned": (X.decode_match, lambda: X.encode_match(M.Match(
        {"in_port": (1, None), "eth_type": (0x800, None), "vlan_vid": (0x1001, None)}))),
    "actions": (A.decode_actions, lambda: A.encode_actions(_actions())),
    "instructions": (A.decode_instructions, lambda: A.encode_instructions(
        (M.ApplyActions(_actions()), M.GotoTable(3), M.WriteMetadata(1, 1), M.Meter(2)))),
    "buckets": (A.decode_buckets, lambda: A.encode_buckets(
        (M.Bucket(_actions(), 1, 2, 3), M.Bucket((M.Output(1),))))),
    "bands": (A.decode_bands, lambda: A.encode_bands(
        (M.Band(1, 10, 1), M.Band(2, 20, 2, 1), O.ExperimenterBand(1, 2, 3, b"x" * 8)))),
    "table_features": (lambda b, o, e: MP.decode_request_body(C.OFPMP_TABLE_FEATURES, b, o, e),
                       lambda: MP.encode_request_body(C.OFPMP_TABLE_FEATURES, _table_features())),
}


@FUZZ
@given(st.sampled_from(sorted(STRUCTURES)), st.data(), st.binary(min_size=1, max_size=64))
def test_structure_decoders_never_read_past_end(name, data, garbage):
    decoder, make = STRUCTURES[name]
    buf = bytearray(make())
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(buf) - 1))
        buf[i] = data.draw(st.integers(0, 255))
    end = data.draw(st.integers(0, len(buf)))
    same_outcome(decoder, bytes(buf), end, garbage)


def test_structure_decoders_every_end():
    rnd = random.Random(7)
    for name, (decoder, make) in STRUCTURES.items():
        buf = make()
        for end in range(len(buf) + 1):
            same_outcome(decoder, buf, end, bytes(rnd.randrange(256) for _ in range(32)))
            same_outcome(decoder, buf, end, buf)      # garbage that parses


# ---- random valid values round-trip ----------------------------------------------------------

FIELD_NAMES = [n for n, *_ in M.FIELDS]


@st.composite
def oxm_value(draw, name):
    bits = X.FIELD_INFO[name][2]
    v = draw(st.integers(0, (1 << bits) - 1))
    mask = None
    if name in M.MASKABLE and draw(st.booleans()):
        mask = draw(st.integers(0, (1 << bits) - 1))
        v &= mask
    if name == "vlan_vid":
        m = 0x1FFF if mask is None else mask
        if m & 0x1000 and not v & 0x1000:
            v &= ~0x0FFF
    return v, mask


@st.composite
def matches(draw):
    names = draw(st.lists(st.sampled_from(FIELD_NAMES), unique=True, max_size=12))
    m = M.Match()
    for n in names:
        m.fields[n] = draw(oxm_value(n))
    return m


def settable_value(name):
    return st.integers(0, (1 << X.FIELD_INFO[name][2]) - 1).map(lambda v: M.SetField(name, v))


OUT_PORTS = st.one_of(st.integers(0, C.OFPP_MAX), st.sampled_from(
    [C.OFPP_IN_PORT, C.OFPP_TABLE, C.OFPP_NORMAL, C.OFPP_FLOOD, C.OFPP_ALL, C.OFPP_CONTROLLER, C.OFPP_LOCAL]))
u8, u16, u32 = st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)

ACTION = st.one_of(
    st.builds(M.Output, OUT_PORTS, u16),
    st.sampled_from([M.CopyTtlOut(), M.CopyTtlIn(), M.DecMplsTtl(), M.PopVlan(), M.DecNwTtl(), M.PopPbb()]),
    st.builds(M.SetMplsTtl, u8), st.builds(M.SetNwTtl, u8),
    st.builds(M.PushVlan, st.sampled_from([0x8100, 0x88A8])),
    st.builds(M.PushMpls, st.sampled_from([0x8847, 0x8848])), st.builds(M.PopMpls, u16),
    st.just(M.PushPbb(0x88E7)), st.builds(M.SetQueue, u32), st.builds(M.Group, st.integers(0, C.OFPG_MAX)),
    st.sampled_from(sorted(M.SETTABLE)).flatmap(settable_value),
    st.builds(O.ExperimenterAction, u32,
              st.binary(max_size=5).map(lambda b: b.ljust(8 * ((len(b) + 7) // 8), b"\0"))),
)
ACTIONS = st.lists(ACTION, max_size=6).map(tuple)


@st.composite
def instructions(draw):
    kinds = draw(st.lists(st.sampled_from(["goto", "md", "write", "apply", "clear", "meter"]),
                          unique=True, max_size=6))
    make = {"goto": lambda: M.GotoTable(draw(st.integers(0, C.OFPTT_MAX))),
            "md": lambda: M.WriteMetadata(draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**64 - 1))),
            "write": lambda: M.WriteActions(draw(ACTIONS)), "apply": lambda: M.ApplyActions(draw(ACTIONS)),
            "clear": lambda: M.ClearActions(), "meter": lambda: M.Meter(draw(u32))}
    return tuple(make[k]() for k in kinds)


@ROUNDTRIP
@given(matches(), instructions(), u16, u16, u16, st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1),
       st.integers(0, 0x1F))
def test_random_flow_stats_requests_and_flow_mods_roundtrip(match, insts, idle, hard, prio, cookie, mask,
                                                            flags):
    req = O.MultipartRequest(9, C.OFPMP_FLOW, 0, O.FlowStatsRequest(3, 4, 5, cookie, mask, match))
    got = O.decode(O.encode(req))
    assert got == req and list(got.body.match.fields) == list(match.fields)
    try:
        X.check_prerequisites(match)
    except O.OFPError:
        return
    fm = O.FlowMod(7, C.OFPFC_MODIFY_STRICT, M.FlowSpec(4, prio, match, insts, cookie, idle, hard, flags),
                   mask, 9, 10, 11)
    assert O.decode(O.encode(fm)) == fm


@ROUNDTRIP
@given(st.integers(1, C.OFPG_MAX), st.sampled_from([0, 1, 2]),
       st.lists(st.builds(M.Bucket, ACTIONS, u16, st.integers(0, C.OFPP_MAX), u32), max_size=4))
def test_random_group_mods_roundtrip(gid, gtype, buckets):
    gm = O.GroupMod(1, C.OFPGC_MODIFY, M.GroupSpec(gid, gtype, tuple(buckets)))
    assert O.decode(O.encode(gm)) == gm


BAND = st.one_of(st.builds(M.Band, st.just(1), u32, u32), st.builds(M.Band, st.just(2), u32, u32, u8),
                 st.builds(O.ExperimenterBand, u32, u32, u32, st.just(b"")))


@ROUNDTRIP
@given(st.integers(1, C.OFPM_MAX), st.sampled_from([1, 2, 5, 6, 9, 10, 13, 14]), st.lists(BAND, max_size=4))
def test_random_meter_mods_roundtrip(mid, flags, bands):
    mm = O.MeterMod(1, C.OFPMC_ADD, M.MeterSpec(mid, flags, tuple(bands)))
    assert O.decode(O.encode(mm)) == mm


PROP = st.one_of(
    st.builds(O.TFInstructions, st.sampled_from([0, 1]), st.lists(st.integers(1, 6), max_size=6).map(tuple)),
    st.builds(O.TFNextTables, st.sampled_from([2, 3]), st.lists(u8, max_size=20).map(tuple)),
    st.builds(O.TFActions, st.sampled_from([4, 5, 6, 7]),
              st.lists(st.integers(0, 27), max_size=8).map(tuple)),
    st.builds(O.TFOxm, st.sampled_from([8, 10, 12, 13, 14, 15]),
              st.lists(st.builds(O.OxmId.of, st.sampled_from(FIELD_NAMES), st.booleans()),
                       max_size=8).map(tuple)),
    st.builds(O.TFExperimenter, st.sampled_from([0xFFFE, 0xFFFF]), u32, u32, st.binary(max_size=12)),
)


@ROUNDTRIP
@given(st.lists(st.builds(O.TableFeatures, u8, st.text("abc xyz", max_size=31), st.integers(0, 2**64 - 1),
                          st.integers(0, 2**64 - 1), u32, u32, st.lists(PROP, max_size=5).map(tuple)),
                max_size=3))
def test_random_table_features_roundtrip(tables):
    req = O.MultipartRequest(1, C.OFPMP_TABLE_FEATURES, C.OFPMPF_REQ_MORE, tuple(tables))
    assert O.decode(O.encode(req)) == req
