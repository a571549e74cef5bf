"""BPDU codec (controller/stp/bpdu.py): layout, strict validation, and
round trips against os-ken's os_ken.lib.packet.bpdu and scapy's STP layer in
both directions; the decoder is fuzzed with hypothesis."""
import dataclasses
import struct

import pytest
from hypothesis import given, settings, strategies as st

from controller.stp import bpdu as B
from controller.stp.common import path_cost

SRC = "02:00:00:00:00:aa"


def rst_sample(**kw):
    d = dict(role=B.ROLE_DESIGNATED,
             flags=B.FLAG_TC | B.FLAG_PROPOSAL | B.FLAG_LEARNING | B.FLAG_FORWARDING
             | B.FLAG_AGREEMENT,
             root_id=B.make_bridge_id(4096, "00:00:00:00:00:01", 1), root_path_cost=20000,
             bridge_id=B.make_bridge_id(32768, "00:00:00:00:00:02"),
             port_id=B.make_port_id(128, 3), message_age=1.0, max_age=20.0, hello_time=2.0,
             forward_delay=15.0)
    d.update(kw)
    return B.Bpdu.rst(**d)


def config_sample(**kw):
    d = dict(flags=B.FLAG_TC | B.FLAG_TCA,
             root_id=B.make_bridge_id(8192, "00:00:00:00:00:01"), root_path_cost=19,
             bridge_id=B.make_bridge_id(32768, "00:00:00:00:00:02", 5),
             port_id=B.make_port_id(16, 4095), message_age=2.5, max_age=20.0,
             hello_time=2.0, forward_delay=15.0)
    d.update(kw)
    return B.Bpdu.config(**d)


# ------------------------------------------------------------------ layout

def test_config_frame_layout():
    f = B.encode_frame(config_sample(), SRC)
    assert len(f) == 60                               # padded minimum frame
    assert f[:6] == bytes.fromhex("0180c2000000")
    assert f[6:12] == bytes.fromhex("0200000000aa")
    assert struct.unpack("!H", f[12:14])[0] == 3 + 35  # 802.3 length: LLC + BPDU
    assert f[14:17] == b"\x42\x42\x03"
    body = f[17:17 + 35]
    assert body[:4] == b"\x00\x00\x00\x00"             # protocol 0, version 0, type 0
    assert body[4] == 0x81
    assert body[5:13] == bytes.fromhex("2000000000000001")
    assert struct.unpack("!I", body[13:17])[0] == 19
    assert body[17:25] == bytes.fromhex("8005000000000002")
    assert body[25:27] == bytes.fromhex("1fff")
    # timers in 1/256 s
    assert struct.unpack("!HHHH", body[27:35]) == (640, 20 * 256, 2 * 256, 15 * 256)
    assert f[52:] == bytes(8)


def test_rst_and_tcn_layout():
    f = B.encode_frame(rst_sample(), SRC, pad=False)
    assert len(f) == 14 + 3 + 36
    assert struct.unpack("!H", f[12:14])[0] == 39
    assert f[17:21] == b"\x00\x00\x02\x02"
    assert f[21] == 0x7f                               # TC|P|role=3|L|F|A
    assert f[-1] == 0                                  # version 1 length
    t = B.encode_frame(B.Bpdu.tcn(), SRC)
    assert struct.unpack("!H", t[12:14])[0] == 7
    assert t[17:21] == b"\x00\x00\x00\x80"
    assert len(t) == 60


def test_flag_views():
    b = rst_sample()
    assert (b.tc, b.proposal, b.learning, b.forwarding, b.agreement, b.tca) == (
        True, True, True, True, True, False)
    assert b.role == B.ROLE_DESIGNATED
    c = config_sample(flags=B.FLAG_TC | B.FLAG_PROPOSAL)
    assert c.role == B.ROLE_DESIGNATED and c.tc and not c.proposal  # bit 2 is reserved in config
    assert B.Bpdu.tcn().role == B.ROLE_UNKNOWN
    for role in (0, 1, 2, 3):
        assert B.decode_frame(B.encode_frame(rst_sample(role=role), SRC)).role == role


# ------------------------------------------------------------------ round trips (ours)

@pytest.mark.parametrize("b", [config_sample(), rst_sample(), B.Bpdu.tcn(),
                               rst_sample(role=B.ROLE_ROOT, flags=0, message_age=1 / 256),
                               config_sample(flags=0, root_path_cost=0xFFFFFFFF,
                                             root_id=(1 << 64) - 1, bridge_id=0)])
def test_roundtrip_own(b):
    assert B.decode_frame(B.encode_frame(b, SRC)) == b
    assert B.decode_bpdu(B.encode_bpdu(b)) == b


ids = st.integers(0, (1 << 64) - 1)
timers = st.integers(0, 0xFFFF).map(lambda v: v / 256.0)


@st.composite
def any_bpdu(draw):
    kind = draw(st.sampled_from(["config", "rst", "tcn"]))
    if kind == "tcn":
        return B.Bpdu.tcn()
    kw = dict(flags=draw(st.integers(0, 255)), root_id=draw(ids),
              root_path_cost=draw(st.integers(0, 0xFFFFFFFF)), bridge_id=draw(ids),
              port_id=draw(st.integers(0, 0xFFFF)), message_age=draw(timers),
              max_age=draw(timers), hello_time=draw(timers), forward_delay=draw(timers))
    if kind == "config":
        return B.Bpdu.config(**kw)
    return B.Bpdu(type=B.TYPE_RST, version=draw(st.integers(2, 255)),
                  version1_length=draw(st.integers(0, 255)), **kw)


@settings(max_examples=300, deadline=None)
@given(any_bpdu())
def test_roundtrip_property(b):
    assert B.decode_frame(B.encode_frame(b, SRC)) == b


def test_timer_rounding_and_limits():
    b = config_sample(message_age=1.0 / 512 * 3)        # 1.5/256: rounds to 2/256
    assert B.decode_frame(B.encode_frame(b, SRC)).message_age == 2 / 256
    with pytest.raises(ValueError):
        B.encode_bpdu(config_sample(max_age=256.0))
    with pytest.raises(ValueError):
        B.encode_bpdu(config_sample(root_path_cost=1 << 32))
    with pytest.raises(ValueError):
        B.encode_bpdu(B.Bpdu(type=0x55))
    with pytest.raises(ValueError):
        B.encode_bpdu(B.Bpdu(type=B.TYPE_RST, version=1))


# ------------------------------------------------------------------ strict decoding

def frame_with(body: bytes, length=None, dst=B.STP_GROUP_MAC, llc=B.LLC_STP, pad=True):
    payload = llc + body
    ln = len(payload) if length is None else length
    f = dst + bytes.fromhex("0200000000aa") + struct.pack("!H", ln) + payload
    if pad and len(f) < 60:
        f += bytes(60 - len(f))
    return f


def reason(frame):
    with pytest.raises(B.BpduError) as ei:
        B.decode_frame(frame)
    return ei.value.reason


def test_strict_errors():
    good = B.encode_bpdu(config_sample())
    rst = B.encode_bpdu(rst_sample())
    assert reason(b"") == "truncated"
    assert reason(bytes(13)) == "truncated"
    assert reason(frame_with(good, dst=bytes.fromhex("0180c2000002"))) == "not-stp"   # LACP address
    # Ethernet II / VLAN-tagged frames are not BPDUs
    eth2 = B.STP_GROUP_MAC + bytes(6) + b"\x81\x00" + bytes(50)
    assert reason(eth2) == "not-stp"
    assert reason(frame_with(good, llc=b"\xaa\xaa\x03")) == "not-stp"                 # SNAP (PVST+)
    assert reason(frame_with(good, length=2)) == "bad-length"
    assert reason(frame_with(good, length=0)) == "bad-length"
    assert reason(frame_with(good, length=200)) == "truncated"                        # more than present
    assert reason(frame_with(good[:34])) == "truncated"
    assert reason(frame_with(rst[:35])) == "truncated"
    assert reason(frame_with(b"\x00\x00\x00")) == "truncated"
    assert reason(frame_with(b"\x00\x01" + good[2:])) == "bad-protocol-id"
    assert reason(frame_with(good[:3] + b"\x01" + good[4:])) == "unknown-type"
    assert reason(frame_with(b"\x00\x00\x01\x02" + rst[4:])) == "bad-version"
    assert reason(frame_with(b"\x00\x00\x00\x02" + rst[4:])) == "bad-version"
    for r in ("truncated", "not-stp", "bad-length", "bad-protocol-id", "bad-version", "unknown-type"):
        assert r in B.REASONS


def test_length_field_bounds_the_bpdu():
    """The 802.3 length field, not the frame, decides where the BPDU ends:
    a config BPDU cut short by its length field is truncated even though the
    padding would supply the octets."""
    good = B.encode_bpdu(config_sample())
    f = frame_with(good, length=3 + 20, pad=False)
    assert reason(f) == "truncated"


def test_lenient_where_the_standard_is():
    good = B.encode_bpdu(config_sample())
    # octets after a complete BPDU (vendor padding) are ignored
    assert B.decode_frame(frame_with(good + b"\xff" * 10)) == config_sample()
    # an MSTP BPDU (version 3, longer) reads as an RST BPDU
    mst = b"\x00\x00\x03\x02" + B.encode_bpdu(rst_sample())[4:] + bytes(64)
    b = B.decode_frame(frame_with(mst))
    assert b.is_rst and b.version == 3 and b.root_id == rst_sample().root_id
    # a TCN with trailing octets and any version
    assert B.decode_frame(frame_with(b"\x00\x00\x05\x80" + bytes(30))).is_tcn


@settings(max_examples=800, deadline=None)
@given(st.binary(max_size=120))
def test_fuzz_random_frames(data):
    for frame in (data, B.STP_GROUP_MAC + data, frame_with(data)):
        try:
            b = B.decode_frame(frame)
        except B.BpduError as e:
            assert e.reason in B.REASONS
        else:
            # whatever decodes re-encodes to something that decodes the same
            assert B.decode_frame(B.encode_frame(b, SRC)) == b


@settings(max_examples=300, deadline=None)
@given(any_bpdu(), st.lists(st.tuples(st.integers(0, 59), st.integers(0, 255)), max_size=6),
       st.integers(0, 60))
def test_fuzz_mutated_frames(b, flips, cut):
    f = bytearray(B.encode_frame(b, SRC))
    for pos, val in flips:
        f[pos] = val
    for frame in (bytes(f), bytes(f[:cut])):
        try:
            B.decode_frame(frame)
        except B.BpduError as e:
            assert e.reason in B.REASONS


# ------------------------------------------------------------------ identifiers, costs

def test_identifiers():
    assert B.make_bridge_id(32768, "00:11:22:33:44:55", 10) == 0x800A001122334455
    assert B.split_bridge_id(0x800A001122334455) == (0x800A, 0x001122334455)
    assert B.bridge_id_str(0x800A001122334455) == "800a.001122334455"
    assert B.make_port_id(128, 2) == 0x8002
    assert B.make_port_id(240, 4095) == 0xFFFF
    for bad in ((8, 1), (256, 1), (128, 0), (128, 4096)):
        with pytest.raises(ValueError):
            B.make_port_id(*bad)
    with pytest.raises(ValueError):
        B.make_bridge_id(70000, 1)
    assert B.mac_to_int(b"\x00\x00\x00\x00\x00\x07") == 7 == B.mac_to_int("0:0:0:0:0:7")
    assert B.mac_str(0x0200000000AA) == "02:00:00:00:00:aa"
    with pytest.raises(ValueError):
        B.mac_to_int("00:11:22")


def test_path_costs():
    assert [path_cost(s, "long") for s in (0.1, 1, 10, 100, 1000, 10000, 100000, 1000000,
                                           10000000)] == [
        200_000_000, 20_000_000, 2_000_000, 200_000, 20_000, 2_000, 200, 20, 2]
    assert [path_cost(s, "short") for s in (4, 10, 16, 100, 1000, 10000, 40000)] == [
        250, 100, 62, 19, 4, 2, 2]
    assert path_cost(None, "short") == 100 and path_cost(0, "long") == 2_000_000
    with pytest.raises(ValueError):
        path_cost(10, "medium")


# ------------------------------------------------------------------ os-ken interop

osk = pytest.importorskip("os_ken.lib.packet.bpdu")
from os_ken.lib.packet import ethernet as osk_eth, llc as osk_llc, packet as osk_packet  # noqa: E402


def _mac(v):
    return B.mac_str(v)


def osk_frame(proto, length):
    p = osk_packet.Packet()
    p.add_protocol(osk_eth.ethernet(dst="01:80:c2:00:00:00", src=SRC, ethertype=length))
    p.add_protocol(osk_llc.llc(osk_llc.SAP_BPDU, osk_llc.SAP_BPDU, osk_llc.ControlFormatU(0, 0, 0)))
    p.add_protocol(proto)
    p.serialize()
    return bytes(p.data)


def osk_fields(o):
    return dict(
        flags=o.flags,
        root_id=o.encode_bridge_id(o.root_priority, o.root_system_id_extension, o.root_mac_address),
        root_path_cost=o.root_path_cost,
        bridge_id=o.encode_bridge_id(o.bridge_priority, o.bridge_system_id_extension,
                                     o.bridge_mac_address),
        port_id=o.encode_port_id(o.port_priority, o.port_number),
        message_age=o.message_age, max_age=o.max_age, hello_time=o.hello_time,
        forward_delay=o.forward_delay)


def osk_kwargs(b):
    rp, rm = B.split_bridge_id(b.root_id)
    bp, bm = B.split_bridge_id(b.bridge_id)
    return dict(flags=b.flags, root_priority=rp & 0xF000, root_system_id_extension=rp & 0xFFF,
                root_mac_address=_mac(rm), root_path_cost=b.root_path_cost,
                bridge_priority=bp & 0xF000, bridge_system_id_extension=bp & 0xFFF,
                bridge_mac_address=_mac(bm), port_priority=b.port_id >> 8 & 0xF0,
                port_number=b.port_id & 0xFFF, message_age=b.message_age, max_age=b.max_age,
                hello_time=b.hello_time, forward_delay=b.forward_delay)


def test_oskn_to_ours():
    # os-ken encodes timers as whole seconds (int(t) * 256): use whole seconds
    c = osk.ConfigurationBPDUs(**osk_kwargs(config_sample(message_age=3.0)))
    got = B.decode_frame(osk_frame(c, 38))
    assert got == config_sample(message_age=3.0)
    r = osk.RstBPDUs(**osk_kwargs(rst_sample()))
    got = B.decode_frame(osk_frame(r, 39))
    assert got == rst_sample()
    t = B.decode_frame(osk_frame(osk.TopologyChangeNotificationBPDUs(), 7))
    assert t == B.Bpdu.tcn()


def _osk_parse(frame):
    p = osk_packet.Packet(frame)
    return p.protocols[-1] if not isinstance(p.protocols[-1], (bytes, bytearray)) else p.protocols[-2]


@pytest.mark.parametrize("b", [config_sample(), config_sample(flags=0, message_age=1 / 256),
                               rst_sample(), rst_sample(role=B.ROLE_ALT_BACKUP, flags=B.FLAG_AGREEMENT,
                                                        message_age=7.5)])
def test_ours_to_osken(b):
    o = _osk_parse(B.encode_frame(b, SRC))
    cls = osk.RstBPDUs if b.is_rst else osk.ConfigurationBPDUs
    assert type(o) is cls
    f = osk_fields(o)
    for k, v in f.items():
        assert getattr(b, k) == v, k
    t = _osk_parse(B.encode_frame(B.Bpdu.tcn(), SRC))
    assert type(t) is osk.TopologyChangeNotificationBPDUs


@settings(max_examples=150, deadline=None)
@given(any_bpdu())
def test_ours_to_osken_property(b):
    # os-ken asserts the reserved config flags are 0 and version 1 length is 0
    if b.is_config:
        b = dataclasses.replace(b, flags=b.flags & 0x81)
    if b.is_rst:
        b = dataclasses.replace(b, version=2, version1_length=0)
    # os-ken's Packet() skips an all-zero payload, so call its BPDU parser directly
    o, _, _ = osk.bpdu.parser(B.encode_bpdu(b))
    if b.is_tcn:
        assert type(o) is osk.TopologyChangeNotificationBPDUs
        return
    for k, v in osk_fields(o).items():
        assert getattr(b, k) == v, k


# ------------------------------------------------------------------ scapy interop

scapy_l2 = pytest.importorskip("scapy.layers.l2")
from scapy.all import Raw, raw  # noqa: E402

Dot3, LLC, STP = scapy_l2.Dot3, scapy_l2.LLC, scapy_l2.STP


def scapy_kwargs(b):
    rp, rm = B.split_bridge_id(b.root_id)
    bp, bm = B.split_bridge_id(b.bridge_id)
    return dict(proto=0, version=b.version, bpdutype=b.type, bpduflags=b.flags, rootid=rp,
                rootmac=_mac(rm), pathcost=b.root_path_cost, bridgeid=bp, bridgemac=_mac(bm),
                portid=b.port_id, age=b.message_age, maxage=b.max_age, hellotime=b.hello_time,
                fwddelay=b.forward_delay)


def scapy_fields(s):
    return dict(version=s.version, type=s.bpdutype, flags=s.bpduflags,
                root_id=s.rootid << 48 | B.mac_to_int(s.rootmac), root_path_cost=s.pathcost,
                bridge_id=s.bridgeid << 48 | B.mac_to_int(s.bridgemac), port_id=s.portid,
                message_age=s.age, max_age=s.maxage, hello_time=s.hellotime,
                forward_delay=s.fwddelay)


def test_scapy_to_ours():
    c = config_sample()
    pkt = Dot3(dst="01:80:c2:00:00:00", src=SRC) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / STP(
        **scapy_kwargs(c))
    assert B.decode_frame(raw(pkt)) == c
    r = rst_sample(message_age=3.25)
    pkt = Dot3(dst="01:80:c2:00:00:00", src=SRC) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / STP(
        **scapy_kwargs(r)) / Raw(b"\x00")                 # version 1 length
    assert B.decode_frame(raw(pkt)) == r
    tcn = Dot3(dst="01:80:c2:00:00:00", src=SRC) / LLC(dsap=0x42, ssap=0x42, ctrl=3) / Raw(
        raw(STP(bpdutype=0x80))[:4])
    assert B.decode_frame(raw(tcn)) == B.Bpdu.tcn()


@settings(max_examples=200, deadline=None)
@given(any_bpdu())
def test_ours_to_scapy_property(b):
    frame = B.encode_frame(b, SRC)
    pkt = Dot3(frame)
    assert pkt[Dot3].dst == "01:80:c2:00:00:00" and pkt[Dot3].len == len(B.encode_bpdu(b)) + 3
    assert (pkt[LLC].dsap, pkt[LLC].ssap, pkt[LLC].ctrl) == (0x42, 0x42, 3)
    if b.is_tcn:
        assert raw(pkt[LLC].payload)[:4] == b"\x00\x00\x00\x80"
        return
    got = scapy_fields(pkt[STP])
    for k, v in got.items():
        assert getattr(b, k) == v, k
    if b.is_rst:
        assert raw(pkt[STP].payload)[:1] == bytes((b.version1_length,))
