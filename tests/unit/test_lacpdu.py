"""datapath.lacpdu: LACPDU / Marker PDU codec against os-ken and scapy, strict
validation (one error class per problem) and a fuzzed decoder.

- Every field round-trips both ways against os_ken.lib.packet.slow.lacp and
  scapy.contrib.lacp (LACP, MarkerProtocol; os-ken has no Marker codec),
  and the bytes are identical.
- Truncated, wrong subtype, wrong version, bad TLV type/length, bad
  Ethernet wrapping each raise their own PduError subclass.
- ~100k random and mutated buffers: decode() raises nothing but PduError.
"""
import random

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from datapath import lacpdu as P

os_ken_slow = pytest.importorskip("os_ken.lib.packet.slow")
scapy_lacp = pytest.importorskip("scapy.contrib.lacp")
from scapy.contrib.slowprot import SlowProtocol  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

u16 = st.integers(0, 0xffff)
u8 = st.integers(0, 0xff)
macs = st.binary(min_size=6, max_size=6)
infos = st.builds(P.PortInfo, u16, macs, u16, u16, u16, u8)
lacpdus = st.builds(P.Lacpdu, infos, infos, u16)
markers = st.builds(P.MarkerPdu, st.sampled_from([P.MARKER_INFO, P.MARKER_RESPONSE]), u16, macs,
                    st.integers(0, 0xffffffff))
RT = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BITS = ("activity", "timeout", "aggregation", "synchronization", "collecting", "distributing",
        "defaulted", "expired")


def sample_lacpdu():
    return P.Lacpdu(P.PortInfo(0x8000, bytes.fromhex("020000000001"), 7, 0x80, 3, 0x3d),
                    P.PortInfo(0xfffe, bytes.fromhex("aa0000000002"), 9, 0xff, 0x1234, 0x0f), 5)


def sample_marker():
    return P.MarkerPdu(P.MARKER_INFO, 4, bytes.fromhex("020000000001"), 0xdeadbeef)


# ------------------------------------------------------------------ os-ken
def to_osken(pdu):
    kw = {}
    for side, info in (("actor", pdu.actor), ("partner", pdu.partner)):
        kw[f"{side}_system_priority"] = info.system_priority
        kw[f"{side}_system"] = P.mac_str(info.system)
        kw[f"{side}_key"] = info.key
        kw[f"{side}_port_priority"] = info.port_priority
        kw[f"{side}_port"] = info.port
        for i, b in enumerate(BITS):
            kw[f"{side}_state_{b}"] = (info.state >> i) & 1
    return os_ken_slow.lacp(collector_max_delay=pdu.collector_max_delay, **kw)


def from_osken(o):
    infos = []
    for side in ("actor", "partner"):
        state = sum(getattr(o, f"{side}_state_{b}") << i for i, b in enumerate(BITS))
        infos.append(P.PortInfo(getattr(o, f"{side}_system_priority"),
                                P.mac_bytes(getattr(o, f"{side}_system")), getattr(o, f"{side}_key"),
                                getattr(o, f"{side}_port_priority"), getattr(o, f"{side}_port"), state))
    return P.Lacpdu(infos[0], infos[1], o.collector_max_delay)


@RT
@given(lacpdus)
def test_osken_roundtrip_both_ways(pdu):
    ours = P.encode(pdu)
    assert len(ours) == P.PDU_LEN
    theirs = to_osken(pdu).serialize(None, None)
    assert bytes(theirs) == ours
    parsed, _, rest = os_ken_slow.lacp.parser(ours)
    assert from_osken(parsed) == pdu and rest == b""
    assert P.decode(bytes(theirs)) == pdu
    assert P.decode(ours) == pdu


def test_osken_slow_dispatch_sees_lacp():
    parsed, _, _ = os_ken_slow.slow.parser(P.encode(sample_lacpdu()))
    assert isinstance(parsed, os_ken_slow.lacp)
    assert from_osken(parsed) == sample_lacpdu()


# ------------------------------------------------------------------ scapy
def to_scapy(pdu):
    if isinstance(pdu, P.MarkerPdu):
        return SlowProtocol(subtype=2) / scapy_lacp.MarkerProtocol(
            marker_type=pdu.type, requester_port=pdu.requester_port,
            requester_system=P.mac_str(pdu.requester_system),
            requester_transaction_id=pdu.transaction_id)
    kw = {}
    for side, info in (("actor", pdu.actor), ("partner", pdu.partner)):
        kw.update({f"{side}_system_priority": info.system_priority, f"{side}_system": P.mac_str(info.system),
                   f"{side}_key": info.key, f"{side}_port_priority": info.port_priority,
                   f"{side}_port_number": info.port, f"{side}_state": info.state})
    return SlowProtocol(subtype=1) / scapy_lacp.LACP(collector_max_delay=pdu.collector_max_delay, **kw)


def from_scapy(pkt):
    if scapy_lacp.MarkerProtocol in pkt:
        m = pkt[scapy_lacp.MarkerProtocol]
        assert m.version == 1 and m.marker_length == 16
        assert (m.terminator_type, m.terminator_length) == (0, 0)
        return P.MarkerPdu(m.marker_type, m.requester_port, P.mac_bytes(m.requester_system),
                           m.requester_transaction_id)
    L = pkt[scapy_lacp.LACP]
    assert L.version == 1
    assert (L.actor_type, L.actor_length, L.partner_type, L.partner_length) == (1, 20, 2, 20)
    assert (L.collector_type, L.collector_length, L.terminator_type, L.terminator_length) == (3, 16, 0, 0)
    infos = [P.PortInfo(getattr(L, f"{s}_system_priority"), P.mac_bytes(getattr(L, f"{s}_system")),
                        getattr(L, f"{s}_key"), getattr(L, f"{s}_port_priority"),
                        getattr(L, f"{s}_port_number"), getattr(L, f"{s}_state"))
             for s in ("actor", "partner")]
    return P.Lacpdu(infos[0], infos[1], L.collector_max_delay)


@RT
@given(st.one_of(lacpdus, markers))
def test_scapy_roundtrip_both_ways(pdu):
    ours = P.encode(pdu)
    assert len(ours) == P.PDU_LEN
    theirs = bytes(to_scapy(pdu))
    assert theirs == ours
    assert from_scapy(SlowProtocol(ours)) == pdu
    assert P.decode(theirs) == pdu


@RT
@given(st.one_of(lacpdus, markers), macs)
def test_scapy_ethernet_frame(pdu, src):
    src = bytes([src[0] & 0xfe]) + src[1:]
    f = P.frame(src, P.encode(pdu))
    e = Ether(f)
    assert e.dst == "01:80:c2:00:00:02" and e.src == P.mac_str(src) and e.type == 0x8809
    assert from_scapy(e) == pdu
    s, payload = P.unframe(bytes(Ether(dst="01:80:c2:00:00:02", src=P.mac_str(src)) / to_scapy(pdu)))
    assert s == src and P.decode(payload) == pdu


def test_marker_response_keeps_requester_fields():
    m = sample_marker()
    r = m.response()
    assert r.type == P.MARKER_RESPONSE
    assert (r.requester_port, r.requester_system, r.transaction_id) == (4, m.requester_system, 0xdeadbeef)
    pkt = SlowProtocol(P.encode(r))
    assert pkt[scapy_lacp.MarkerProtocol].marker_type == 2


def test_state_names_match_ovs_words():
    assert P.state_names(0) == []
    assert P.state_names(0xff) == ["activity", "timeout", "aggregation", "synchronized", "collecting",
                                   "distributing", "defaulted", "expired"]
    assert P.state_names(P.SYNC | P.ACTIVITY) == ["activity", "synchronized"]


# ------------------------------------------------------------------ strict validation
def test_truncated_at_every_length():
    for good in (P.encode(sample_lacpdu()), P.encode(sample_marker())):
        for n in range(len(good)):
            with pytest.raises(P.TruncatedError) as ei:
                P.decode(good[:n])
            assert ei.value.kind == "truncated"


def test_trailing_bytes_and_reserved_octets_are_ignored():
    good = P.encode(sample_lacpdu())
    assert P.decode(good + b"\xff" * 40) == sample_lacpdu()         # padding/FCS after the PDU
    b = bytearray(good)
    for off in list(range(19, 22)) + list(range(39, 42)) + list(range(46, 58)) + list(range(60, 110)):
        b[off] = 0xa5                                                # reserved octets
    assert P.decode(bytes(b)) == sample_lacpdu()
    m = bytearray(P.encode(sample_marker()))
    m[16] = m[17] = 0xff
    m[60] = 0x11
    assert P.decode(bytes(m)) == sample_marker()
    assert P.decode(memoryview(good)) == sample_lacpdu()
    assert P.decode(bytearray(good)) == sample_lacpdu()


@pytest.mark.parametrize("subtype", [0, 3, 4, 10, 0xff])
def test_wrong_subtype(subtype):
    b = bytearray(P.encode(sample_lacpdu()))
    b[0] = subtype
    with pytest.raises(P.SubtypeError):
        P.decode(bytes(b))
    with pytest.raises(P.SubtypeError):
        P.decode_lacpdu(P.encode(sample_marker()))
    with pytest.raises(P.SubtypeError):
        P.decode_marker(P.encode(sample_lacpdu()))


@pytest.mark.parametrize("version", [0, 2, 0xff])
def test_wrong_version(version):
    for good in (P.encode(sample_lacpdu()), P.encode(sample_marker())):
        b = bytearray(good)
        b[1] = version
        with pytest.raises(P.VersionError) as ei:
            P.decode(bytes(b))
        assert ei.value.kind == "version"


@pytest.mark.parametrize("off,value", [
    (2, 2), (2, 0), (3, 19), (3, 21),          # actor TLV type / length
    (22, 1), (22, 3), (23, 0), (23, 20 + 1),   # partner TLV
    (42, 0), (42, 4), (43, 15), (43, 20),      # collector TLV
    (58, 1), (58, 3), (59, 1), (59, 50),       # terminator
])
def test_bad_lacpdu_tlv(off, value):
    b = bytearray(P.encode(sample_lacpdu()))
    b[off] = value
    with pytest.raises(P.TlvError) as ei:
        P.decode(bytes(b))
    assert ei.value.kind == "tlv"


@pytest.mark.parametrize("off,value", [(2, 0), (2, 3), (3, 15), (3, 20), (18, 1), (19, 2)])
def test_bad_marker_tlv(off, value):
    b = bytearray(P.encode(sample_marker()))
    b[off] = value
    with pytest.raises(P.TlvError):
        P.decode(bytes(b))


def test_frame_errors():
    payload = P.encode(sample_lacpdu())
    src = bytes.fromhex("020000000001")
    good = P.frame(src, payload)
    assert P.unframe(good) == (src, payload)
    for dst in (P.NEAREST_CUSTOMER_BRIDGE_MAC, P.NEAREST_NON_TPMR_BRIDGE_MAC):
        assert P.unframe(P.frame(src, payload, dst))[1] == payload
    with pytest.raises(P.FrameError):                       # wrong ethertype
        P.unframe(good[:12] + b"\x08\x00" + good[14:])
    with pytest.raises(P.FrameError):                       # VLAN tagged
        P.unframe(good[:12] + b"\x81\x00\x00\x05\x88\x09" + good[14:])
    with pytest.raises(P.FrameError):                       # unicast destination
        P.unframe(src + good[6:])
    for n in range(14):
        with pytest.raises(P.TruncatedError):
            P.unframe(good[:n])


def test_encode_refuses_out_of_range_fields():
    with pytest.raises(ValueError):
        P.encode(P.Lacpdu(P.PortInfo(port=0x10000), P.PortInfo()))
    with pytest.raises(ValueError):
        P.encode(P.Lacpdu(P.PortInfo(state=256), P.PortInfo()))
    with pytest.raises(ValueError):
        P.encode(P.Lacpdu(P.PortInfo(system=b"\x00" * 5), P.PortInfo()))
    with pytest.raises(ValueError):
        P.encode(P.MarkerPdu(3, 1, b"\x00" * 6, 1))
    with pytest.raises(ValueError):
        P.encode(P.MarkerPdu(1, 1, b"\x00" * 6, 1 << 32))
    with pytest.raises(TypeError):
        P.encode(b"not a pdu")


def test_mac_spellings():
    b = bytes.fromhex("0a0b0c0d0e0f")
    assert P.mac_bytes("0a:0b:0c:0d:0e:0f") == b == P.mac_bytes("0a-0b-0c-0d-0e-0f")
    assert P.mac_bytes(0x0a0b0c0d0e0f) == b == P.mac_bytes(b)
    for bad in ("0a:0b", "zz:0b:0c:0d:0e:0f", 1 << 48, b"\x00" * 7):
        with pytest.raises(ValueError):
            P.mac_bytes(bad)


# ------------------------------------------------------------------ fuzz
def _mutations(rng, corpus, n):
    for _ in range(n):
        r = rng.random()
        if r < 0.25:                                        # random bytes, random length
            yield bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 130)))
        elif r < 0.35:                                      # random tail after a valid header
            hdr = bytes([rng.choice((1, 2)), 1])
            yield hdr + bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 128)))
        else:
            b = bytearray(rng.choice(corpus))
            for _ in range(rng.randrange(1, 6)):
                k = rng.random()
                if k < 0.4 and b:
                    b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
                elif k < 0.7 and b:
                    b[rng.randrange(len(b))] = rng.choice((0, 1, 2, 3, 16, 20, 0xff, rng.getrandbits(8)))
                elif k < 0.85:
                    del b[rng.randrange(len(b) + 1):]
                else:
                    b += bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 20)))
            yield bytes(b)


def test_fuzz_decoder_100k():
    rng = random.Random(0x1ac9)
    corpus = [P.encode(sample_lacpdu()), P.encode(sample_marker()),
              P.encode(sample_marker().response()), P.encode(P.Lacpdu(P.PortInfo(), P.PortInfo()))]
    kinds = dict.fromkeys(P.ERROR_KINDS, 0)
    ok = 0
    for buf in _mutations(rng, corpus, 100_000):
        try:
            pdu = P.decode(buf)
        except P.PduError as e:
            kinds[e.kind] += 1
            assert type(e) is not P.PduError            # always a specific subclass
            continue
        ok += 1
        assert isinstance(pdu, (P.Lacpdu, P.MarkerPdu))
        # what decoded re-encodes to the same fields (reserved octets aside)
        assert P.decode(P.encode(pdu)) == pdu
    # the fuzzer reached every validation branch, and some mutants stayed valid
    assert ok > 1000
    assert all(kinds[k] > 100 for k in ("truncated", "subtype", "version", "tlv")), kinds


def test_fuzz_frames():
    rng = random.Random(7)
    good = P.frame(bytes.fromhex("020000000001"), P.encode(sample_lacpdu()))
    for buf in _mutations(rng, [good], 20_000):
        try:
            _, payload = P.unframe(buf)
            P.decode(payload)
        except P.PduError:
            pass


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=140))
def test_hypothesis_decoder_only_raises_pdu_error(buf):
    try:
        P.decode(buf)
    except P.PduError:
        pass
