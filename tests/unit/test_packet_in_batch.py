"""The batched PACKET_IN path: Datapath.upcall_tuples() -> Agent.handle_upcall_tuples()
-> one write per connection per batch (datapath/ofp/agent.py, messages.py,
ext/pipeline.pxi).

The one-step encoder is checked byte for byte against the message classes,
and every PACKET_IN written is split by its header length and parsed by
os-ken, so the batch is also a valid byte stream of whole messages."""
import struct

import pytest

fastpath = pytest.importorskip("datapath.fastpath")

from os_ken.ofproto import ofproto_v1_3 as ofp  # noqa: E402

from datapath import model as M  # noqa: E402
from datapath.ofp import agent as A  # noqa: E402
from datapath.ofp import consts as C  # noqa: E402
from datapath.ofp import messages as MSG  # noqa: E402
from oskwire import osk_parse  # noqa: E402

ALL1 = 0xFFFFFFFFFFFFFFFF


def frame(n=300, tag=0):
    """An Ethernet/IPv4/UDP frame of n bytes the parser accepts."""
    ip_len = n - 14
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 1, 0, 64, 17, 0,
                     bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    udp = struct.pack("!HHHH", 1000 + tag, 2000, ip_len - 20, 0)
    body = ip + udp + bytes((i + tag) & 0xFF for i in range(ip_len - 28))
    return bytes.fromhex("020000000002020000000001") + b"\x08\x00" + body


def split(raws):
    """Each write -> its messages (by header length), parsed by os-ken."""
    out = []
    for raw in raws:
        off = 0
        while off < len(raw):
            n = struct.unpack_from("!H", raw, off + 2)[0]
            assert n >= 8 and off + n <= len(raw)
            out.append(osk_parse(raw[off:off + n]))
            off += n
    return out


class Sw:
    def __init__(self, n_ports=2):
        self.dp = fastpath.Datapath(8)
        self.ports = {}
        for i in range(1, n_ports + 1):
            self.ports[i] = fastpath.DummyPort(f"p{i}")
            self.dp.attach_port(i, self.ports[i])
        self.agent = A.Agent(self.dp, dpid=1, fail_mode="secure")

    def session(self, role=None):
        wire = []
        s = self.agent.open_session(wire.append, lambda: None, name="t")
        s.data_received(MSG.encode(MSG.Hello(1, frozenset({4}))))
        assert s.ready
        wire.clear()
        if role is not None:
            s.role = role
        return s, wire

    def miss_to_controller(self, max_len, cookie=0x77, md=None):
        """Table-miss entry to CONTROLLER in table 0, or with md: table 0
        writes metadata and goes to table 1, whose table-miss entry does."""
        table = 0
        if md is not None:
            self.dp.flow_add(M.FlowSpec(table_id=0, priority=0, match=M.Match(), instructions=(
                M.WriteMetadata(md, ALL1), M.GotoTable(1))))
            table = 1
        self.dp.flow_add(M.FlowSpec(table_id=table, priority=0, match=M.Match(), cookie=cookie,
                                    instructions=(M.ApplyActions(
                                        (M.Output(C.OFPP_CONTROLLER, max_len),)),)))

    def send(self, port, frames):
        for f in frames:
            self.ports[port].inject(f)
        self.dp.run_dummy()


@pytest.mark.parametrize("md", [0, 1, 1 << 63])
@pytest.mark.parametrize("n", [0, 1, 128, 1500])
def test_encode_packet_in_matches_message_classes(md, n):
    data = bytes(range(256)) * (n // 256) + bytes(n % 256)
    m = M.Match().set("in_port", 0xFFFFFFFD)
    if md:
        m.set("metadata", md)
    for bid, total, reason, table, cookie in ((5, n + 9, 1, 3, 0x1234),
                                              (C.OFP_NO_BUFFER, n, 0, 0, ALL1)):
        want = MSG.encode(MSG.PacketIn(0, bid, total, reason, table, cookie, m, data))
        assert MSG.encode_packet_in(bid, total, reason, table, cookie, 0xFFFFFFFD, md,
                                    data) == want


def test_encode_packet_in_refuses_oversize():
    with pytest.raises(ValueError):
        MSG.encode_packet_in(C.OFP_NO_BUFFER, 70000, 0, 0, 0, 1, 0, bytes(65535 - 41))
    assert len(MSG.encode_packet_in(C.OFP_NO_BUFFER, 1, 0, 0, 0, 1, 0, bytes(65535 - 42))) == 65535


def test_upcall_tuples_carry_what_upcalls_carry():
    sw = Sw()
    sw.miss_to_controller(128, cookie=0xABC)
    frames = [frame(300, i) for i in range(5)]
    sw.send(1, frames)
    want = sw.dp.upcalls()
    sw.send(1, frames)
    got = sw.dp.upcall_tuples(3) + sw.dp.upcall_tuples(100)
    assert [tuple(u) for u in want] == got
    assert got[0] == (frames[0], 1, 0, 0, 0xABC, 0, 300, 128)
    assert sw.dp.upcall_tuples() == []


def test_batch_is_one_write_with_buffers_and_truncation():
    sw = Sw()
    sw.miss_to_controller(128)
    s, wire = sw.session()
    frames = [frame(300, i) for i in range(40)]
    sw.send(2, frames)
    ups = sw.dp.upcall_tuples(256)
    assert sw.agent.handle_upcall_tuples(ups) == 40
    assert len(wire) == 1                        # one write for the batch
    pins = split(wire)
    assert len(pins) == 40
    bids = [p.buffer_id for p in pins]
    assert len(set(bids)) == 40 and ofp.OFP_NO_BUFFER not in bids
    for f, p in zip(frames, pins):
        assert p.msg_type == ofp.OFPT_PACKET_IN and p.xid == 0
        assert p.data == f[:128] and p.total_len == 300
        assert p.reason == ofp.OFPR_NO_MATCH and p.table_id == 0 and p.cookie == 0x77
        assert p.match["in_port"] == 2 and "metadata" not in p.match
    # every buffer holds the whole frame
    for f, p in zip(frames, pins):
        assert sw.agent.buffers.take(p.buffer_id) == (f, 2)


def test_no_buffer_whole_frames_and_metadata_in_match():
    sw = Sw()
    sw.miss_to_controller(C.OFPCML_NO_BUFFER, md=0xFEED)
    s, wire = sw.session()
    frames = [frame(200 + i, i) for i in range(3)]
    sw.send(1, frames)
    assert sw.agent.handle_upcall_tuples(sw.dp.upcall_tuples()) == 3
    pins = split(wire)
    assert [p.data for p in pins] == frames
    assert all(p.buffer_id == ofp.OFP_NO_BUFFER for p in pins)
    assert all(p.match["metadata"] == 0xFEED and p.match["in_port"] == 1 for p in pins)
    assert all(p.table_id == 1 and p.reason == ofp.OFPR_NO_MATCH for p in pins)


def test_same_bytes_as_per_upcall_path():
    """handle_upcalls (Upcall objects) and handle_upcall_tuples give the same
    messages, buffer ids aside, for objects without max_len and cookie None."""
    class Up:
        def __init__(self, data, **kw):
            self.data, self.in_port, self.reason, self.table_id = data, 3, 1, 0xFF
            self.cookie, self.metadata, self.total_len = None, 9, 0
            self.__dict__.update(kw)

    sw = Sw()
    s, wire = sw.session()
    f = frame(300)
    assert sw.agent.handle_upcalls([Up(f), Up(f, max_len=64), Up(f, reason=0, cookie=5)]) == 3
    assert len(wire) == 3                    # handle_upcalls: one write per message
    pins = split(wire)
    assert pins[0].buffer_id == ofp.OFP_NO_BUFFER and pins[0].data == f   # no max_len: whole
    assert pins[0].cookie == ALL1 and pins[0].table_id == 0 and pins[0].total_len == 300
    assert pins[0].match["metadata"] == 9 and pins[0].match["in_port"] == 3
    assert pins[1].buffer_id != ofp.OFP_NO_BUFFER and pins[1].data == f[:64]
    assert pins[2].reason == 0 and pins[2].cookie == 5


def test_async_masks_roles_and_invalid_ttl_miss_send_len():
    sw = Sw()
    s1, w1 = sw.session()                                 # equal: default mask (no-match, action)
    s2, w2 = sw.session(role=C.OFPCR_ROLE_SLAVE)          # slave: default mask 0
    s3, w3 = sw.session()
    s3.packet_in_mask = (1 << C.OFPR_INVALID_TTL, 0)      # only invalid ttl
    s3.miss_send_len = 20
    f = frame(300)
    ups = [(f, 1, C.OFPR_NO_MATCH, 0, 1, 0, 300, 128),
           (f, 1, C.OFPR_INVALID_TTL, 4, 2, 0, 300, C.OFPCML_NO_BUFFER)]
    assert sw.agent.handle_upcall_tuples(ups) == 2
    assert w2 == []
    [p1] = split(w1)
    assert p1.reason == C.OFPR_NO_MATCH and p1.data == f[:128]
    [p3] = split(w3)
    assert p3.reason == C.OFPR_INVALID_TTL and p3.table_id == 4
    assert p3.data == f[:20] and p3.buffer_id != ofp.OFP_NO_BUFFER   # its miss_send_len
    # a slave whose slave mask asks for no-match gets it
    s2.packet_in_mask = (0, 1 << C.OFPR_NO_MATCH)
    assert sw.agent.handle_upcall_tuples(ups[:1]) == 1
    assert [p.reason for p in split(w2)] == [0]


def test_one_buffer_shared_by_sessions():
    sw = Sw()
    (s1, w1), (s2, w2) = sw.session(), sw.session()
    f = frame(300)
    sw.agent.handle_upcall_tuples([(f, 1, 0, 0, 0, 0, 300, 100)])
    [a], [b] = split(w1), split(w2)
    assert a.buffer_id == b.buffer_id != ofp.OFP_NO_BUFFER


def test_backlog_limit_drops_and_counts(monkeypatch):
    sw = Sw()
    s, wire = sw.session()
    queued = [A.ASYNC_BACKLOG_LIMIT + 1]
    s.backlog = lambda: queued[0]
    f = frame(300)
    ups = [(f, 1, 0, 0, 0, 0, 300, C.OFPCML_NO_BUFFER)] * 4
    assert sw.agent.handle_upcall_tuples(ups) == 0
    assert wire == [] and sw.agent.packet_ins_dropped == 4
    # the batch's own bytes count toward the limit
    monkeypatch.setattr(A, "ASYNC_BACKLOG_LIMIT", 700)
    queued[0] = 0
    assert sw.agent.handle_upcall_tuples(ups) == 3      # 342 bytes each: the 4th is past 700
    assert len(split(wire)) == 3 and sw.agent.packet_ins_dropped == 5


def test_oversize_packet_in_is_dropped_not_fatal():
    sw = Sw()
    s, wire = sw.session()
    big, small = bytes(65535), frame(100)
    ups = [(big, 1, 0, 0, 0, 0, len(big), C.OFPCML_NO_BUFFER),
           (small, 1, 0, 0, 0, 0, 100, C.OFPCML_NO_BUFFER)]
    assert sw.agent.handle_upcall_tuples(ups) == 1
    assert [p.data for p in split(wire)] == [small]
    assert sw.agent.packet_ins_dropped == 1


def test_no_packet_in_port_config_and_no_sessions():
    sw = Sw()
    sw.miss_to_controller(128)
    sw.dp.set_port_config(1, C.OFPPC_NO_PACKET_IN, C.OFPPC_NO_PACKET_IN)
    sw.send(1, [frame(300)])
    assert sw.dp.upcall_tuples() == []
    sw.send(2, [frame(300)])
    ups = sw.dp.upcall_tuples()
    assert len(ups) == 1 and ups[0][1] == 2
    assert sw.agent.handle_upcall_tuples(ups) == 0          # nobody connected
