"""The codec's fast paths give exactly what the general decoders give.

datapath/ofp keeps three caches for controllers that install many similar
flows: a compiled decoder per OXM layout (oxm._LAYOUTS, with and without the
prerequisite checks), the decoded instruction lists by their bytes
(actions._INST_CACHE) and the prerequisite checks per set of field names
(oxm._PREREQ_PLANS).  Here each is checked against the general path: same
result on valid input, the same (error type, code) on invalid input that
reuses a layout the cache has learned, and the Framer's offset-based
splitting.  Every test starts from empty caches.
"""
import random
import struct

import pytest

from datapath import model as M
from datapath import ofp as O
from datapath.ofp import actions as A
from datapath.ofp import consts as C
from datapath.ofp import oxm as X


@pytest.fixture(autouse=True)
def empty_caches(monkeypatch):
    monkeypatch.setattr(X, "_LAYOUTS", {})
    monkeypatch.setattr(X, "_n_layouts", 0)
    monkeypatch.setattr(X, "_PREREQ_PLANS", {})
    monkeypatch.setattr(A, "_INST_CACHE", {})


def _match(*items):
    m = M.Match()
    for name, value, mask in items:
        m.fields[name] = (value, mask)
    return m


def general(raw):
    """What the general decoder makes of an encoded match (or its error)."""
    _, length = struct.unpack_from("!HH", raw)
    try:
        return X.decode_oxm_fields(raw, 4, length)
    except O.OFPError as e:
        return (e.type, e.code)


def fast(raw, prerequisites=False):
    try:
        m, end = X.decode_match(raw, 0, len(raw), prerequisites)
        assert end == len(raw)
        return m.fields
    except O.OFPError as e:
        return (e.type, e.code)


def _used_fast_path(monkeypatch):
    """Make the general decoder fail loudly: a decode that still works was
    served by a compiled layout."""
    def boom(*a):
        raise AssertionError("general decoder called")
    monkeypatch.setattr(X, "decode_oxm_fields", boom)


# Layouts with every value width (1, 2, 3, 4, 6, 8, 16 bytes), masks, and
# the fields whose value is narrower than its bytes.
LAYOUTS = [
    _match(("in_port", 1, None), ("eth_type", 0x0800, None), ("ip_proto", 6, None),
           ("ipv4_src", 0x0A000001, None), ("ipv4_dst", 0x0B000000, 0xFF000000),
           ("tcp_src", 1024, None), ("tcp_dst", 80, None)),
    _match(("eth_dst", 0x0200000000FF, None), ("eth_src", 0x020000000000, 0xFFFFFF000000),
           ("vlan_vid", 0x1005, None), ("vlan_pcp", 5, None), ("metadata", 7, 0xFF)),
    _match(("eth_type", 0x86DD, None), ("ipv6_src", 0x2001 << 112, 0xFFFF << 112),
           ("ipv6_flabel", 0x12345, 0xFFFFF), ("ip_proto", 58, None), ("icmpv6_type", 135, None),
           ("ipv6_nd_target", (1 << 127) | 5, None), ("ipv6_exthdr", 0x10, 0x1FF)),
    _match(("eth_type", 0x88E7, None), ("pbb_isid", 0xABCD00, 0xFFFF00),
           ("tunnel_id", 1 << 63, None)),
    _match(("eth_type", 0x8847, None), ("mpls_label", 0xFFFFF, None), ("mpls_tc", 7, None),
           ("mpls_bos", 1, None)),
    _match(("vlan_vid", 0x1000, 0x1000),),
    _match(("ip_dscp", 63, None), ("ip_ecn", 3, None), ("eth_type", 0x0800, None)),
]


@pytest.mark.parametrize("match", LAYOUTS, ids=lambda m: "-".join(m.fields))
def test_learned_layout_decodes_like_the_general_decoder(match, monkeypatch):
    raw = X.encode_match(match)
    assert fast(raw) == match.fields                  # general path, learns the layout
    assert X._n_layouts == 1
    again = fast(raw)
    assert again == match.fields and list(again) == list(match.fields)   # order kept
    _used_fast_path(monkeypatch)
    assert fast(raw) == match.fields
    # Other valid values of the same layout: still the fast path.
    other = M.Match({k: (v & ~1 & (m if m is not None else -1), m)
                     for k, (v, m) in match.fields.items()})
    assert fast(X.encode_match(other)) == other.fields


def _mutations(match):
    """Same layout, values that the general decoder may reject."""
    for name, (value, mask) in match.fields.items():
        fid, size, bits, _, _ = X.FIELD_INFO[name]
        top = (1 << (8 * size)) - 1
        cands = [top, 0, 1 << (bits - 1), (1 << bits) - 1, value ^ 1]
        if bits < 8 * size:
            cands.append(1 << bits)                    # one bit too wide
        for v in cands:
            f = dict(match.fields)
            f[name] = (v & top, mask)
            yield M.Match(f)
            if mask is not None:
                for mk in (0, top, 1 << bits if bits < 8 * size else 0, mask >> 1):
                    f = dict(match.fields)
                    f[name] = (v & top, mk & top)
                    yield M.Match(f)


@pytest.mark.parametrize("match", LAYOUTS, ids=lambda m: "-".join(m.fields))
def test_fast_path_rejects_what_the_general_decoder_rejects(match):
    X.decode_match(X.encode_match(match), 0, 10_000)     # learn the layout
    n_err = 0
    for bad in _mutations(match):
        raw = X.encode_match(bad)
        want = general(raw)
        assert fast(raw) == want, bad
        n_err += isinstance(want, tuple)
    assert n_err, "no mutation was invalid: the test checks nothing"


def test_vlan_vid_without_present_bit_is_rejected_on_the_fast_path():
    ok = _match(("vlan_vid", 0x1005, None))
    X.decode_match(X.encode_match(ok), 0, 100)
    raw = X.encode_match(_match(("vlan_vid", 0x0005, None)))
    assert fast(raw) == (C.OFPET_BAD_MATCH, C.OFPBMC_BAD_VALUE)
    raw = X.encode_match(_match(("vlan_vid", 0x0000, None)))    # "no tag": fine
    assert fast(raw) == {"vlan_vid": (0, None)}


def _prereq_error(match):
    try:
        X.check_prerequisites(match)
        return None
    except O.OFPError as e:
        return (e.type, e.code)


PREREQ_CASES = [
    # (valid match teaching the layout, same layout with other values)
    (_match(("eth_type", 0x0800, None), ("ipv4_src", 1, None)),
     _match(("eth_type", 0x86DD, None), ("ipv4_src", 1, None))),
    (_match(("eth_type", 0x0800, None), ("ip_proto", 6, None), ("tcp_dst", 80, None)),
     _match(("eth_type", 0x0800, None), ("ip_proto", 17, None), ("tcp_dst", 80, None))),
    (_match(("eth_type", 0x86DD, None), ("ip_proto", 6, None), ("tcp_dst", 80, None)),
     _match(("eth_type", 0x0806, None), ("ip_proto", 6, None), ("tcp_dst", 80, None))),
    (_match(("vlan_vid", 0x1001, None), ("vlan_pcp", 1, None)),
     _match(("vlan_vid", 0x0000, None), ("vlan_pcp", 1, None))),
    (_match(("vlan_vid", 0x1000, 0x1000), ("vlan_pcp", 1, None)),
     _match(("vlan_vid", 0x0000, 0x1000), ("vlan_pcp", 1, None))),
    (_match(("eth_type", 0x86DD, None), ("ip_proto", 58, None), ("icmpv6_type", 135, None),
            ("ipv6_nd_sll", 5, None)),
     _match(("eth_type", 0x86DD, None), ("ip_proto", 58, None), ("icmpv6_type", 136, None),
            ("ipv6_nd_sll", 5, None))),
]


@pytest.mark.parametrize("good,bad", PREREQ_CASES)
def test_prerequisites_on_the_fast_path(good, bad, monkeypatch):
    assert fast(X.encode_match(good), True) == good.fields
    assert fast(X.encode_match(good), True) == good.fields
    want = _prereq_error(bad)
    assert want == (C.OFPET_BAD_MATCH, C.OFPBMC_BAD_PREREQ)
    assert fast(X.encode_match(bad), True) == want
    assert fast(X.encode_match(bad), False) == bad.fields     # filters need not meet them
    # the cached plan agrees with the full walk both ways
    assert _prereq_error(good) is None and _prereq_error(bad) == want


def test_a_field_without_its_prerequisite_never_gets_a_checked_decoder():
    m = _match(("ipv4_src", 1, None))                    # no eth_type at all
    raw = X.encode_match(m)
    assert fast(raw) == m.fields
    assert fast(raw, True) == (C.OFPET_BAD_MATCH, C.OFPBMC_BAD_PREREQ)
    assert fast(raw, True) == (C.OFPET_BAD_MATCH, C.OFPBMC_BAD_PREREQ)
    (plain, checked, _), = [e for lst in X._LAYOUTS.values() for e in lst]   # learnt once
    assert plain is not None and checked is None


def test_random_matches_agree(monkeypatch):
    """Random values over random layouts: the cached decoders and the
    general one agree on every input, valid or not."""
    rnd = random.Random(1234)
    names = [n for n, *_ in M.FIELDS]
    checked = 0
    for _ in range(300):
        k = rnd.randint(1, 6)
        picked = rnd.sample(names, k)
        fields = {}
        for n in picked:
            fid, size, bits, maskable, _ = X.FIELD_INFO[n]
            top = (1 << (8 * size)) - 1
            v = rnd.choice([rnd.getrandbits(8 * size), rnd.getrandbits(bits), 0, top])
            mask = None
            if maskable and rnd.random() < 0.4:
                mask = rnd.choice([rnd.getrandbits(bits), (1 << bits) - 1, top,
                                   rnd.getrandbits(8 * size)])
                if rnd.random() < 0.7:
                    v &= mask
            fields[n] = (v & top, mask)
        raw = X.encode_match(M.Match(fields))
        for _ in range(2):                               # 2nd time: learned if valid
            for pre in (False, True):
                want = general(raw)
                if pre and not isinstance(want, tuple):
                    want = _prereq_error(M.Match(want)) or want
                assert fast(raw, pre) == want, fields
                checked += 1
    assert X._n_layouts > 5 and checked == 1200


def test_layout_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(X, "_LAYOUTS_MAX", 3)
    extra = [("metadata", 2, None), ("tunnel_id", 3, None), ("eth_dst", 4, None)]
    for k in range(8):                 # 8 distinct layouts
        m = _match(("in_port", k + 1, None), *[e for i, e in enumerate(extra) if k >> i & 1])
        assert fast(X.encode_match(m)) == m.fields
        assert fast(X.encode_match(m)) == m.fields
    assert X._n_layouts == 3


# ---- instructions ---------------------------------------------------------------

def test_instruction_cache_shares_equal_results():
    insts = (M.ApplyActions((M.Output(2), M.SetField("vlan_vid", 0x1005))), M.GotoTable(3))
    raw = A.encode_instructions(insts)
    a = A.decode_instructions(raw, 0, len(raw))
    b = A.decode_instructions(b"\0" * 8 + raw, 8, 8 + len(raw))
    assert a == insts and b is a
    assert A._decode_instructions(raw, 0, len(raw)) == a


def test_instruction_errors_are_not_cached():
    bad = struct.pack("!HH4x", C.OFPIT_APPLY_ACTIONS, 16) + struct.pack("!HH4x", 99, 8)
    for _ in range(2):
        with pytest.raises(O.OFPError) as e:
            A.decode_instructions(bad, 0, len(bad))
        assert (e.value.type, e.value.code) == (C.OFPET_BAD_ACTION, C.OFPBAC_BAD_TYPE)
    assert not A._INST_CACHE


def test_instruction_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(A, "_INST_CACHE_MAX", 4)
    for t in range(10):
        raw = A.encode_instructions((M.GotoTable(t + 1),))
        assert A.decode_instructions(raw, 0, len(raw)) == (M.GotoTable(t + 1),)
    assert len(A._INST_CACHE) <= 4


def test_flow_mod_through_the_caches_equals_a_fresh_decode(monkeypatch):
    spec = M.FlowSpec(1, 100, LAYOUTS[0], (M.ApplyActions((M.Output(2),)),), cookie=9)
    raw = O.encode(O.FlowMod(7, C.OFPFC_ADD, spec))
    first = O.decode(raw)
    second = O.decode(raw)
    assert first == second and second.spec == spec
    _used_fast_path(monkeypatch)
    assert O.decode(raw).spec == spec


def test_flow_mod_prerequisite_error_after_learning():
    ok = M.FlowSpec(0, 1, _match(("eth_type", 0x0800, None), ("ip_proto", 6, None),
                                 ("tcp_dst", 80, None)))
    O.decode(O.encode(O.FlowMod(1, C.OFPFC_ADD, ok)))
    bad = M.FlowSpec(0, 1, _match(("eth_type", 0x0800, None), ("ip_proto", 1, None),
                                  ("tcp_dst", 80, None)))
    with pytest.raises(O.OFPError) as e:
        O.decode(O.encode(O.FlowMod(2, C.OFPFC_ADD, bad)))
    assert (e.value.type, e.value.code, e.value.xid) == (C.OFPET_BAD_MATCH,
                                                          C.OFPBMC_BAD_PREREQ, 2)


# ---- framer ----------------------------------------------------------------------

def _msgs(n):
    return [O.encode(O.EchoRequest(i, b"x" * (i % 5))) for i in range(n)]


def test_framer_any_split():
    msgs = _msgs(20)
    stream = b"".join(msgs)
    for step in (1, 3, 7, 8, 13, 64, len(stream)):
        f = O.Framer()
        got = []
        for off in range(0, len(stream), step):
            f.feed(bytearray(stream[off:off + step]))
            got += list(f)
        assert got == msgs and f.pending == 0
        assert all(type(g) is bytes for g in got)


def test_framer_stop_early_keeps_the_rest():
    msgs = _msgs(5)
    f = O.Framer()
    f.feed(b"".join(msgs) + msgs[0][:3])
    for raw in f:
        assert raw == msgs[0]
        break
    assert f.pending == sum(map(len, msgs[1:])) + 3
    assert list(f) == msgs[1:]
    f.feed(msgs[0][3:])
    assert list(f) == [msgs[0]]


def test_framer_bad_length_after_good_messages():
    msgs = _msgs(2)
    f = O.Framer()
    f.feed(b"".join(msgs) + struct.pack("!BBHI", 4, 0, 4, 77) + b"junk")
    got = []
    with pytest.raises(O.OFPError) as e:
        for raw in f:
            got.append(raw)
    assert got == msgs
    assert (e.value.type, e.value.code, e.value.xid) == (C.OFPET_BAD_REQUEST,
                                                          C.OFPBRC_BAD_LEN, 77)
    with pytest.raises(O.OFPError):
        list(f)


# ---- FlowMod.basic: what the agent may skip looking for ---------------------------

@pytest.mark.parametrize("spec,basic", [
    (M.FlowSpec(0, 1, LAYOUTS[0], (M.ApplyActions((M.Output(2),)),)), True),
    (M.FlowSpec(0, 1, M.Match(), ()), True),
    (M.FlowSpec(0, 1, M.Match({O.OxmExp(0xFFFF, 1, 0x4F4E4600): (b"\1", None)}), ()), False),
    (M.FlowSpec(0, 1, M.Match(), (O.ExperimenterInstruction(0x2320, b"\0" * 8),)), False),
    (M.FlowSpec(0, 1, M.Match(), (M.WriteActions((M.Output(1), O.ExperimenterAction(
        0x2320, b"\0" * 8))),)), False),
    (M.FlowSpec(0, 1, M.Match(), (M.ApplyActions((O.ExperimenterAction(0x2320, b"\0" * 8),)),)),
     False),
])
def test_flow_mod_basic_flag(spec, basic):
    raw = O.encode(O.FlowMod(3, C.OFPFC_ADD, spec))
    for _ in range(3):                                  # general path, then the caches
        msg = O.decode(raw)
        assert msg.basic is basic and msg.spec == spec
    assert O.FlowMod(3).basic is False                  # built by hand: not vouched for


def test_framer_fed_while_iterating():
    """A consumer that feeds more bytes while handling a message (what the
    old bytearray framer allowed) gets those messages in the same loop."""
    msgs = _msgs(6)
    f = O.Framer()
    f.feed(msgs[0] + msgs[1][:5])
    got = []
    for raw in f:
        got.append(raw)
        if len(got) == 1:
            f.feed(msgs[1][5:] + msgs[2])
        elif len(got) == 3:
            f.feed(b"".join(msgs[3:]) + msgs[0][:2])
    assert got == msgs and f.pending == 2
