"""PACKET_OUT repeats skip the decoder (datapath/ofp/agent.py,
Session._packet_out_repeat) without changing any answer: a real Datapath
with DummyPorts, requests encoded by os-ken, replies parsed by os-ken."""
import struct

import pytest

fastpath = pytest.importorskip("datapath.fastpath")

from os_ken.ofproto import ofproto_v1_3 as ofp  # noqa: E402
from os_ken.ofproto import ofproto_v1_3_parser as parser  # noqa: E402

from datapath.ofp import agent as A  # noqa: E402
from datapath.ofp import messages as MSG  # noqa: E402
from oskwire import DP, osk_bytes, osk_parse  # noqa: E402


def frame(n):
    return bytes.fromhex("020000000002" "020000000001" "88b5") + bytes([n]) * 50


def packet_out(xid, data, port=2, in_port=ofp.OFPP_CONTROLLER, actions=None):
    return osk_bytes(parser.OFPPacketOut(DP, buffer_id=ofp.OFP_NO_BUFFER, in_port=in_port,
                                         actions=actions or [parser.OFPActionOutput(port)],
                                         data=data), xid)


parse = osk_parse


@pytest.fixture
def rig(monkeypatch):
    dp = fastpath.Datapath()
    ports = {n: fastpath.DummyPort(f"p{n}") for n in (1, 2, 3)}
    for n, p in ports.items():
        dp.attach_port(n, p)
    ag = A.Agent(dp, dpid=1, fail_mode="secure")
    wire = []
    s = ag.open_session(wire.append, lambda *a: None, name="t")
    s.data_received(struct.pack("!BBHI", 4, ofp.OFPT_HELLO, 8, 1))
    wire.clear()
    decoded = []
    real = MSG.decode

    def counting(raw, *a, **kw):
        decoded.append(raw[1])
        return real(raw, *a, **kw)
    monkeypatch.setattr(MSG, "decode", counting)

    class Rig:
        pass
    r = Rig()
    r.dp, r.ports, r.agent, r.s, r.wire, r.decoded = dp, ports, ag, s, wire, decoded

    def errors():
        out = [parse(w) for w in r.wire]
        r.wire.clear()
        return [(m.type, m.code, m.xid) for m in out if m.msg_type == ofp.OFPT_ERROR]
    r.errors = errors
    return r


def test_repeats_reach_the_port_without_decoding(rig):
    rig.s.data_received(b"".join(packet_out(10 + i, frame(i)) for i in range(5)))
    assert rig.ports[2].take_tx() == [frame(i) for i in range(5)]
    assert rig.decoded.count(ofp.OFPT_PACKET_OUT) == 1      # only the first
    assert rig.errors() == []


def test_other_actions_are_decoded_and_obeyed(rig):
    rig.s.data_received(packet_out(10, frame(1), port=2) + packet_out(11, frame(2), port=3)
                        + packet_out(12, frame(3), port=2) + packet_out(13, frame(4), port=3))
    assert rig.ports[2].take_tx() == [frame(1), frame(3)]
    assert rig.ports[3].take_tx() == [frame(2), frame(4)]
    assert rig.decoded.count(ofp.OFPT_PACKET_OUT) == 2


def test_in_port_gone_since_gets_bad_port(rig):
    rig.s.data_received(packet_out(10, frame(1), in_port=3))
    assert rig.ports[2].take_tx() == [frame(1)]
    rig.dp.detach_port(3)
    rig.s.data_received(packet_out(11, frame(2), in_port=3))
    assert rig.errors() == [(ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_PORT, 11)]
    assert rig.ports[2].take_tx() == []


def test_repeat_without_a_frame_gets_bad_packet(rig):
    rig.s.data_received(packet_out(10, frame(1)))
    raw = packet_out(11, frame(1))
    empty = raw[:24 + 16]                        # the header and the one action only
    empty = empty[:2] + struct.pack("!H", len(empty)) + empty[4:]
    rig.s.data_received(empty)
    assert rig.errors() == [(ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_PACKET, 11)]


def test_repeat_from_a_slave_is_refused(rig):
    rig.s.data_received(packet_out(10, frame(1)))
    role = parser.OFPRoleRequest(DP, ofp.OFPCR_ROLE_SLAVE, 1)
    role.set_xid(20)
    role.serialize()
    rig.s.data_received(bytes(role.buf))
    rig.wire.clear()
    rig.s.data_received(packet_out(11, frame(2)))
    assert rig.errors() == [(ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE, 11)]
    assert rig.ports[2].take_tx() == [frame(1)]


def test_repeat_with_another_version_is_refused(rig):
    rig.s.data_received(packet_out(10, frame(1)))
    raw = packet_out(11, frame(2))
    rig.s.data_received(bytes([5]) + raw[1:])
    errs = rig.errors()
    assert len(errs) == 1 and errs[0][0] == ofp.OFPET_BAD_REQUEST
    assert rig.ports[2].take_tx() == [frame(1)]


def test_remembered_actions_are_bounded(rig):
    n = A.PACKET_OUT_CACHE + 10
    rig.s.data_received(b"".join(packet_out(100 + i, frame(1), in_port=ofp.OFPP_CONTROLLER,
                                            actions=[parser.OFPActionOutput(2, max_len=i + 1)])
                                 for i in range(n)))
    assert len(rig.s._po_seen) <= A.PACKET_OUT_CACHE
    assert len(rig.ports[2].take_tx()) == n
