"""The OpenFlow switch agent (datapath/ofp/agent.py, channel.py) against a
real Datapath with DummyPorts, driven by a scripted in-process controller.

Requests are built and serialized by os-ken's OF1.3 parser classes (the
vdp codec only where os-ken cannot: HELLO with a version bitmap, raw
malformed bytes); every reply is parsed by os-ken, so both ends of the wire
format are checked by an independent implementation.  Time is injected
(FakeClock) for keepalive and expiry.  The last tests run the asyncio
channels over loopback (passive listener, active connection with
reconnect, TLS).
"""
import asyncio
import os
import socket
import ssl
import struct
import subprocess
import shutil
import time

import pytest

fastpath = pytest.importorskip("datapath.fastpath")

from os_ken.ofproto import ofproto_v1_3 as ofp  # noqa: E402
from os_ken.ofproto import ofproto_v1_3_parser as parser  # noqa: E402
from scapy.all import Ether, IP, UDP  # noqa: E402

from datapath import ofp as O  # noqa: E402
from datapath.config import ControllerTarget, ListenTarget  # noqa: E402
from datapath.ofp import agent as A  # noqa: E402
from datapath.ofp import channel as CH  # noqa: E402
from datapath.ofp import consts as C  # noqa: E402
from oskwire import DP, osk_bytes, osk_parse  # noqa: E402

DPID = 0x00000000000000A1


class FakeClock:
    def __init__(self, t=1000.0):
        self.t = t

    def __call__(self):
        return self.t


class Peer:
    """A scripted controller on one Session: send() os-ken messages (or raw
    bytes), recv() the switch's answers parsed by os-ken."""

    def __init__(self, agent, service=False, handshake=True):
        self.agent = agent
        self.wire = []
        self.closed = False
        self.session = agent.open_session(self.wire.append, self._close, name="peer",
                                          service=service)
        self.xid = 100
        if handshake:
            hello = self.recv()
            assert len(hello) == 1 and hello[0].msg_type == ofp.OFPT_HELLO
            self.send_raw(O.encode(O.Hello(1, frozenset({4}))))
            assert self.session.ready

    def _close(self):
        self.closed = True

    def send_raw(self, raw):
        self.session.data_received(raw)

    def send(self, *msgs):
        """Serialize and send msgs in one write; returns their xids."""
        xids, raws = [], []
        for m in msgs:
            self.xid += 1
            xids.append(self.xid)
            raws.append(osk_bytes(m, self.xid))
        self.send_raw(b"".join(raws))
        return xids[0] if len(xids) == 1 else xids

    def recv_raw(self):
        out, self.wire[:] = list(self.wire), []
        return out

    def recv(self):
        return [osk_parse(r) for r in self.recv_raw()]

    def request(self, msg):
        """Send one request, return its (single) reply."""
        xid = self.send(msg)
        replies = self.recv()
        assert len(replies) == 1, replies
        assert replies[0].xid == xid
        return replies[0]

    def multipart(self, msg):
        """All parts of a multipart reply, checked: same xid, REPLY_MORE on
        every part but the last."""
        xid = self.send(msg)
        parts = self.recv()
        assert parts and all(p.xid == xid for p in parts), parts
        assert all(p.msg_type == ofp.OFPT_MULTIPART_REPLY for p in parts), parts
        assert [p.flags & ofp.OFPMPF_REPLY_MORE for p in parts] == \
            [1] * (len(parts) - 1) + [0]
        return parts

    def expect_error(self, msg_or_raw, etype, code):
        raw = msg_or_raw if isinstance(msg_or_raw, bytes) else None
        if raw is None:
            self.xid += 1
            raw = osk_bytes(msg_or_raw, self.xid)
        xid = struct.unpack_from("!I", raw, 4)[0]
        self.send_raw(raw)
        replies = self.recv()
        assert len(replies) == 1, replies
        e = replies[0]
        assert e.msg_type == ofp.OFPT_ERROR, e
        assert (e.type, e.code) == (etype, code), (e.type, e.code)
        assert e.xid == xid
        assert bytes(e.data) == raw[:64]          # the offending request echoed
        assert not self.closed
        return e

    def alive(self):
        """The channel still answers."""
        r = self.request(parser.OFPEchoRequest(DP, b"ok?"))
        return r.msg_type == ofp.OFPT_ECHO_REPLY and r.data == b"ok?"


# ------------------------------------------------------------------ fixtures

@pytest.fixture
def sw():
    """A Datapath with DummyPorts p1, p2, p3 at 1, 2, 3 and its Agent."""
    dp = fastpath.Datapath()
    ports = {n: fastpath.DummyPort(f"p{n}") for n in (1, 2, 3)}
    for n, p in ports.items():
        dp.attach_port(n, p)
    clock = FakeClock()
    agent = A.Agent(dp, dpid=DPID, name="sw-test", fail_mode="standalone", clock=clock)

    class S:
        pass
    s = S()
    s.dp, s.ports, s.agent, s.clock = dp, ports, agent, clock
    return s


@pytest.fixture
def ctl(sw):
    return Peer(sw.agent)


def udp(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", payload=64, sport=1000):
    return bytes(Ether(src=src, dst=dst) / IP(src="10.0.0.1", dst="10.0.0.2")
                 / UDP(sport=sport, dport=2000) / (b"x" * payload))


def mac_int(s):
    return int(s.replace(":", ""), 16)


def out(port, max_len=ofp.OFPCML_NO_BUFFER):
    return parser.OFPActionOutput(port, max_len)


def apply(*actions):
    return [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, list(actions))]


def flow_mod(command=ofp.OFPFC_ADD, table_id=0, priority=0x8000, match=None, inst=None,
             cookie=0, cookie_mask=0, idle=0, hard=0, flags=0, buffer_id=ofp.OFP_NO_BUFFER,
             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY):
    return parser.OFPFlowMod(DP, cookie, cookie_mask, table_id, command, idle, hard, priority,
                             buffer_id, out_port, out_group, flags,
                             match if match is not None else parser.OFPMatch(),
                             inst if inst is not None else [])


def flow_stats(peer, table_id=ofp.OFPTT_ALL, match=None, out_port=ofp.OFPP_ANY,
               out_group=ofp.OFPG_ANY, cookie=0, cookie_mask=0):
    parts = peer.multipart(parser.OFPFlowStatsRequest(
        DP, 0, table_id, out_port, out_group, cookie, cookie_mask,
        match if match is not None else parser.OFPMatch()))
    return [f for p in parts for f in p.body]


def forward(sw, port, frame):
    """Inject frame on DummyPort `port`, run the pipeline, return what each
    port sent: {ofport: [frames]}."""
    sw.ports[port].inject(frame)
    sw.dp.run_dummy()
    return {n: p.take_tx() for n, p in sw.ports.items()}


def deliver_upcalls(sw):
    ups = sw.dp.upcalls()
    sw.agent.handle_upcalls(ups)
    return ups


# ------------------------------------------------------------------ handshake

def test_hello_first_then_features(sw):
    peer = Peer(sw.agent, handshake=False)
    raw = peer.recv_raw()
    assert len(raw) == 1
    hello = O.decode(raw[0])                      # our HELLO carries the 1.3 bitmap
    assert isinstance(hello, O.Hello) and hello.version == 4
    assert hello.versions == frozenset({4})
    peer.send_raw(O.encode(O.Hello(7, frozenset({1, 4, 5}))))
    assert peer.session.ready and peer.recv_raw() == []
    f = peer.request(parser.OFPFeaturesRequest(DP))
    assert f.msg_type == ofp.OFPT_FEATURES_REPLY
    assert f.datapath_id == DPID
    assert f.n_tables == 254 and f.n_buffers == A.N_BUFFERS and f.auxiliary_id == 0
    assert f.capabilities == (ofp.OFPC_FLOW_STATS | ofp.OFPC_TABLE_STATS
                              | ofp.OFPC_PORT_STATS | ofp.OFPC_GROUP_STATS)


@pytest.mark.parametrize("hello", [
    O.Hello(1, frozenset({1, 2}), version=2),              # bitmap without 1.3
    O.Hello(1, None, version=1),                           # plain 1.0 hello
])
def test_hello_incompatible_fails_and_closes(sw, hello):
    peer = Peer(sw.agent, handshake=False)
    peer.recv_raw()
    peer.send_raw(O.encode(hello))
    [e] = peer.recv()
    assert e.msg_type == ofp.OFPT_ERROR
    assert (e.type, e.code) == (ofp.OFPET_HELLO_FAILED, ofp.OFPHFC_INCOMPATIBLE)
    assert b"1.3" in bytes(e.data)
    assert peer.closed and not peer.session.ready
    assert peer.session not in sw.agent.sessions


def test_hello_without_bitmap_newer_version_negotiates_13(sw):
    peer = Peer(sw.agent, handshake=False)
    peer.recv_raw()
    peer.send_raw(O.encode(O.Hello(1, None, version=5)))
    assert peer.session.ready and not peer.closed
    assert peer.alive()


def test_echo_config_and_bad_messages_keep_channel(ctl):
    r = ctl.request(parser.OFPEchoRequest(DP, b"\x01\x02payload"))
    assert r.msg_type == ofp.OFPT_ECHO_REPLY and r.data == b"\x01\x02payload"
    c = ctl.request(parser.OFPGetConfigRequest(DP))
    assert (c.flags, c.miss_send_len) == (ofp.OFPC_FRAG_NORMAL, 128)
    assert ctl.send(parser.OFPSetConfig(DP, ofp.OFPC_FRAG_NORMAL, 1500)) and ctl.recv() == []
    c = ctl.request(parser.OFPGetConfigRequest(DP))
    assert (c.flags, c.miss_send_len) == (ofp.OFPC_FRAG_NORMAL, 1500)
    # unknown message type, bad version, truncated body, experimenter
    ctl.expect_error(struct.pack("!BBHI", 4, 99, 8, 5), ofp.OFPET_BAD_REQUEST,
                     ofp.OFPBRC_BAD_TYPE)
    ctl.expect_error(struct.pack("!BBHI", 3, ofp.OFPT_FEATURES_REQUEST, 8, 6),
                     ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_VERSION)
    ctl.expect_error(struct.pack("!BBHI", 4, ofp.OFPT_SET_CONFIG, 10, 7) + b"\0\0",
                     ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_LEN)
    ctl.expect_error(parser.OFPExperimenter(DP, 0x2320, 1, b"abcd"),
                     ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_EXPERIMENTER)
    assert ctl.alive()


def test_broken_framing_closes_after_error(ctl):
    ctl.send_raw(struct.pack("!BBHI", 4, ofp.OFPT_ECHO_REQUEST, 4, 9))
    [e] = ctl.recv()
    assert (e.type, e.code) == (ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_LEN) and e.xid == 9
    assert ctl.closed


def test_messages_split_across_reads(ctl):
    raw = osk_bytes(parser.OFPEchoRequest(DP, b"split"), 77) + \
        osk_bytes(parser.OFPBarrierRequest(DP), 78)
    for i in range(len(raw)):
        ctl.send_raw(raw[i:i + 1])
    rs = ctl.recv()
    assert [(r.msg_type, r.xid) for r in rs] == [(ofp.OFPT_ECHO_REPLY, 77),
                                                (ofp.OFPT_BARRIER_REPLY, 78)]


# ------------------------------------------------------------------ flow mods

def test_flow_add_comes_back_identical(ctl):
    match = parser.OFPMatch(in_port=1, eth_type=0x0800, ipv4_dst=("10.0.0.0", "255.255.255.0"),
                            ip_proto=17, udp_dst=53)
    inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [
                parser.OFPActionSetField(eth_dst="02:00:00:00:00:09"), out(2)]),
            parser.OFPInstructionGotoTable(3)]
    ctl.send(flow_mod(priority=321, match=match, inst=inst, cookie=0xC0FFEE, idle=50,
                      hard=70, flags=ofp.OFPFF_SEND_FLOW_REM))
    assert ctl.recv() == []
    [f] = flow_stats(ctl)
    assert (f.table_id, f.priority, f.cookie, f.idle_timeout, f.hard_timeout, f.flags) == \
        (0, 321, 0xC0FFEE, 50, 70, ofp.OFPFF_SEND_FLOW_REM)
    assert str(f.match) == str(match)             # same fields, same order
    assert str(f.instructions) == str(inst)
    assert (f.packet_count, f.byte_count) == (0, 0)


def test_flow_forwarding_counters_and_add_replaces(sw, ctl):
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(2))))
    frame = udp()
    assert forward(sw, 1, frame)[2] == [frame]
    [f] = flow_stats(ctl)
    assert (f.packet_count, f.byte_count) == (1, len(frame))
    # the same match and priority again: replaced (instructions now output:3)
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(3)), cookie=7))
    assert ctl.recv() == []
    [f] = flow_stats(ctl)
    assert f.cookie == 7 and f.instructions[0].actions[0].port == 3
    tx = forward(sw, 1, frame)
    assert tx[3] == [frame] and tx[2] == []


def test_flow_add_check_overlap(ctl):
    ctl.send(flow_mod(priority=10, match=parser.OFPMatch(in_port=1), inst=apply(out(2))))
    ctl.expect_error(flow_mod(priority=10, match=parser.OFPMatch(eth_type=0x0800),
                              inst=apply(out(3)), flags=ofp.OFPFF_CHECK_OVERLAP),
                     ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_OVERLAP)
    # another priority does not overlap
    ctl.send(flow_mod(priority=11, match=parser.OFPMatch(eth_type=0x0800), inst=apply(out(3)),
                      flags=ofp.OFPFF_CHECK_OVERLAP))
    assert ctl.recv() == []
    assert len(flow_stats(ctl)) == 2


def test_flow_modify_keeps_counters_strict_and_reset(sw, ctl):
    ctl.send(flow_mod(priority=5, match=parser.OFPMatch(in_port=1), inst=apply(out(2)), cookie=1),
             flow_mod(priority=6, match=parser.OFPMatch(in_port=1, eth_type=0x0800),
                      inst=apply(out(2)), cookie=2))
    frame = udp()
    forward(sw, 1, frame)                         # hits the priority-6 flow
    # modify_strict on (in_port=1, prio 5): only that one changes
    ctl.send(flow_mod(ofp.OFPFC_MODIFY_STRICT, priority=5, match=parser.OFPMatch(in_port=1),
                      inst=apply(out(3)), cookie=99))
    fl = {f.priority: f for f in flow_stats(ctl)}
    assert fl[5].instructions[0].actions[0].port == 3 and fl[5].cookie == 1   # cookie kept
    assert fl[6].instructions[0].actions[0].port == 2
    # non-strict modify matching in_port=1 changes both, counters stay
    ctl.send(flow_mod(ofp.OFPFC_MODIFY, match=parser.OFPMatch(in_port=1), inst=apply(out(1))))
    fl = {f.priority: f for f in flow_stats(ctl)}
    assert [fl[p].instructions[0].actions[0].port for p in (5, 6)] == [1, 1]
    assert fl[6].packet_count == 1
    # RESET_COUNTS clears them
    ctl.send(flow_mod(ofp.OFPFC_MODIFY_STRICT, priority=6,
                      match=parser.OFPMatch(in_port=1, eth_type=0x0800), inst=apply(out(2)),
                      flags=ofp.OFPFF_RESET_COUNTS))
    fl = {f.priority: f for f in flow_stats(ctl)}
    assert fl[6].packet_count == 0
    # modify of nothing adds nothing (1.3)
    ctl.send(flow_mod(ofp.OFPFC_MODIFY, match=parser.OFPMatch(in_port=3), inst=apply(out(1))))
    assert ctl.recv() == [] and len(flow_stats(ctl)) == 2


def test_flow_modify_with_cookie_mask(ctl):
    for i, cookie in enumerate((0x10, 0x11, 0x20)):
        ctl.send(flow_mod(priority=100 + i, match=parser.OFPMatch(in_port=i + 1),
                          inst=apply(out(1)), cookie=cookie))
    ctl.send(flow_mod(ofp.OFPFC_MODIFY, cookie=0x10, cookie_mask=0xF0, inst=apply(out(3))))
    assert ctl.recv() == []
    fl = {f.cookie: f.instructions[0].actions[0].port for f in flow_stats(ctl)}
    assert fl == {0x10: 3, 0x11: 3, 0x20: 1}


def test_flow_delete_filters_and_flow_removed(ctl):
    ctl.send(
        flow_mod(priority=1, match=parser.OFPMatch(in_port=1), inst=apply(out(2)), cookie=0x100,
                 flags=ofp.OFPFF_SEND_FLOW_REM),
        flow_mod(priority=2, match=parser.OFPMatch(in_port=1), inst=apply(out(3)), cookie=0x200,
                 flags=ofp.OFPFF_SEND_FLOW_REM),
        flow_mod(table_id=1, priority=3, match=parser.OFPMatch(in_port=2), inst=apply(out(3)),
                 cookie=0x101),
        flow_mod(table_id=2, priority=4, match=parser.OFPMatch(in_port=2, eth_type=0x0806),
                 inst=apply(out(1)), cookie=0x300, flags=ofp.OFPFF_SEND_FLOW_REM))
    assert ctl.recv() == []
    # out_port filter: only the flow outputting to 3 in table 0
    ctl.send(flow_mod(ofp.OFPFC_DELETE, table_id=0, out_port=3))
    [rem] = ctl.recv()
    assert rem.msg_type == ofp.OFPT_FLOW_REMOVED and rem.reason == ofp.OFPRR_DELETE
    assert (rem.cookie, rem.priority, rem.table_id) == (0x200, 2, 0)
    assert rem.match["in_port"] == 1
    # cookie mask across all tables: 0x100 and 0x101 go; only 0x100 asked for FLOW_REMOVED
    ctl.send(flow_mod(ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL, cookie=0x100, cookie_mask=0xF00))
    [rem] = ctl.recv()
    assert rem.cookie == 0x100
    assert [f.cookie for f in flow_stats(ctl)] == [0x300]
    # delete_strict needs the exact match and priority
    ctl.send(flow_mod(ofp.OFPFC_DELETE_STRICT, table_id=2, priority=4,
                      match=parser.OFPMatch(in_port=2)))
    assert ctl.recv() == [] and len(flow_stats(ctl)) == 1
    ctl.send(flow_mod(ofp.OFPFC_DELETE_STRICT, table_id=2, priority=4,
                      match=parser.OFPMatch(in_port=2, eth_type=0x0806)))
    [rem] = ctl.recv()
    assert rem.cookie == 0x300 and flow_stats(ctl) == []


def test_flow_delete_by_out_group(ctl):
    ctl.send(parser.OFPGroupMod(DP, ofp.OFPGC_ADD, ofp.OFPGT_ALL, 5,
                                [parser.OFPBucket(actions=[out(2)])]))
    ctl.send(flow_mod(priority=1, match=parser.OFPMatch(in_port=1),
                      inst=apply(parser.OFPActionGroup(5))),
             flow_mod(priority=2, match=parser.OFPMatch(in_port=2), inst=apply(out(1))))
    ctl.send(flow_mod(ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL, out_group=5))
    assert [f.priority for f in flow_stats(ctl)] == [2]


@pytest.mark.parametrize("mod,etype,code", [
    (flow_mod(table_id=254, inst=apply(out(1))), ofp.OFPET_FLOW_MOD_FAILED,
     ofp.OFPFMFC_BAD_TABLE_ID),
    (flow_mod(table_id=5, inst=[parser.OFPInstructionGotoTable(2)]),
     ofp.OFPET_BAD_INSTRUCTION, ofp.OFPBIC_BAD_TABLE_ID),
    (flow_mod(inst=apply(parser.OFPActionGroup(77))), ofp.OFPET_BAD_ACTION,
     ofp.OFPBAC_BAD_OUT_GROUP),
    (flow_mod(inst=[parser.OFPInstructionMeter(9)]), ofp.OFPET_METER_MOD_FAILED,
     ofp.OFPMMFC_UNKNOWN_METER),
    (flow_mod(match=parser.OFPMatch(tcp_dst=80), inst=apply(out(1))), ofp.OFPET_BAD_MATCH,
     ofp.OFPBMC_BAD_PREREQ),
    (flow_mod(inst=apply(out(0))), ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_PORT),
    (flow_mod(command=9), ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_BAD_COMMAND),
    (flow_mod(ofp.OFPFC_MODIFY, table_id=254, inst=apply(out(1))),
     ofp.OFPET_FLOW_MOD_FAILED, ofp.OFPFMFC_BAD_TABLE_ID),
    (flow_mod(inst=[parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, [
        parser.NXActionRegLoad(ofs_nbits=0, dst="reg0", value=1)])]),
     ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_EXPERIMENTER),
])
def test_flow_mod_errors(ctl, mod, etype, code):
    ctl.expect_error(mod, etype, code)
    assert flow_stats(ctl) == [] and ctl.alive()


def test_flow_mod_non_basic_oxm_is_bad_field(ctl):
    raw = bytearray(osk_bytes(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(2))), 3))
    # turn the in_port OXM (class 0x8000) into an NXM_1 one: same length, unknown class
    off = 48 + 4
    assert raw[off:off + 2] == b"\x80\x00"
    raw[off:off + 2] = b"\x00\x01"
    ctl.expect_error(bytes(raw), ofp.OFPET_BAD_MATCH, ofp.OFPBMC_BAD_FIELD)


def test_flow_expiry_sends_flow_removed(sw, ctl):
    ctl.send(flow_mod(priority=9, match=parser.OFPMatch(in_port=2), inst=apply(out(1)),
                      hard=1, flags=ofp.OFPFF_SEND_FLOW_REM, cookie=0xAB),
             flow_mod(priority=8, match=parser.OFPMatch(in_port=3), inst=apply(out(1)),
                      idle=1))
    assert sw.agent.expire(time.monotonic()) == []
    removed = sw.agent.expire(time.monotonic() + 3)
    assert sorted(r for _, r in removed) == [C.OFPRR_IDLE_TIMEOUT, C.OFPRR_HARD_TIMEOUT]
    [rem] = ctl.recv()                            # only the flow that asked
    assert rem.msg_type == ofp.OFPT_FLOW_REMOVED
    assert (rem.reason, rem.cookie, rem.priority, rem.hard_timeout) == \
        (ofp.OFPRR_HARD_TIMEOUT, 0xAB, 9, 1)
    assert flow_stats(ctl) == []


# ------------------------------------------------------------------ barrier

def test_barrier_replies_in_order_after_flow_is_live(sw, ctl):
    frame = udp()
    mods = [flow_mod(priority=p, match=parser.OFPMatch(in_port=1, udp_src=1000 + p,
                                                       eth_type=0x0800, ip_proto=17),
                     inst=apply(out(2))) for p in range(1, 4)]
    xids = ctl.send(parser.OFPEchoRequest(DP, b"a"), *mods, parser.OFPBarrierRequest(DP),
                    parser.OFPEchoRequest(DP, b"b"))
    rs = ctl.recv()
    assert [(r.msg_type, r.xid) for r in rs] == [
        (ofp.OFPT_ECHO_REPLY, xids[0]), (ofp.OFPT_BARRIER_REPLY, xids[4]),
        (ofp.OFPT_ECHO_REPLY, xids[5])]
    # by the barrier reply the flows forward
    assert forward(sw, 1, udp(sport=1002))[2] == [udp(sport=1002)]
    assert frame


def test_error_then_barrier_order(ctl):
    xids = ctl.send(flow_mod(table_id=254, inst=apply(out(1))), parser.OFPBarrierRequest(DP))
    rs = ctl.recv()
    assert [(r.msg_type, r.xid) for r in rs] == [(ofp.OFPT_ERROR, xids[0]),
                                                (ofp.OFPT_BARRIER_REPLY, xids[1])]


# ------------------------------------------------------------------ packet-in / out

def test_packet_in_from_table_miss_whole_frame(sw, ctl):
    ctl.send(flow_mod(priority=0, inst=apply(out(ofp.OFPP_CONTROLLER))))
    frame = udp(payload=300)
    forward(sw, 2, frame)
    assert deliver_upcalls(sw)
    [pi] = ctl.recv()
    assert pi.msg_type == ofp.OFPT_PACKET_IN
    assert pi.reason == ofp.OFPR_NO_MATCH and pi.table_id == 0
    assert pi.buffer_id == ofp.OFP_NO_BUFFER and pi.total_len == len(frame)
    assert pi.data == frame
    assert pi.match["in_port"] == 2 and "metadata" not in pi.match


def test_packet_in_action_with_metadata_and_cookie(sw, ctl):
    ctl.send(flow_mod(priority=1, match=parser.OFPMatch(in_port=1),
                      inst=[parser.OFPInstructionWriteMetadata(0x55, 0xFF),
                            parser.OFPInstructionGotoTable(4)]),
             flow_mod(table_id=4, priority=7, cookie=0x77,
                      inst=apply(out(ofp.OFPP_CONTROLLER))))
    forward(sw, 1, udp())
    deliver_upcalls(sw)
    [pi] = ctl.recv()
    assert pi.reason == ofp.OFPR_ACTION and pi.table_id == 4 and pi.cookie == 0x77
    assert pi.match["in_port"] == 1 and pi.match["metadata"] == 0x55


class _Up:
    """An upcall carrying max_len (what the facade's Upcall may carry)."""

    def __init__(self, data, in_port, max_len, reason=0, table_id=0, cookie=0, metadata=0):
        self.data, self.in_port, self.max_len = data, in_port, max_len
        self.reason, self.table_id, self.cookie, self.metadata = reason, table_id, cookie, metadata
        self.total_len = len(data)


def test_buffered_packet_in_then_packet_out_and_flow_mod(sw, ctl):
    frame = udp(payload=200)
    sw.agent.handle_upcalls([_Up(frame, 1, 64)])
    [pi] = ctl.recv()
    assert pi.buffer_id != ofp.OFP_NO_BUFFER
    assert pi.data == frame[:64] and pi.total_len == len(frame)
    # PACKET_OUT of the buffered frame: the whole frame leaves on port 3
    ctl.send(parser.OFPPacketOut(DP, pi.buffer_id, 1, [out(3)], None))
    assert ctl.recv() == []
    sw.dp.run_dummy()
    assert sw.ports[3].take_tx() == [frame]
    # a buffer is used once
    ctl.expect_error(parser.OFPPacketOut(DP, pi.buffer_id, 1, [out(3)], None),
                     ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BUFFER_EMPTY)
    ctl.expect_error(parser.OFPPacketOut(DP, pi.buffer_id + 1000, 1, [out(3)], None),
                     ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BUFFER_UNKNOWN)
    # FLOW_MOD with a buffer_id: the flow is added and the packet runs through it
    sw.agent.handle_upcalls([_Up(frame, 1, 0)])
    [pi] = ctl.recv()
    assert pi.data == b"" and pi.buffer_id != ofp.OFP_NO_BUFFER
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(2)),
                      buffer_id=pi.buffer_id))
    assert ctl.recv() == []
    assert sw.ports[2].take_tx() == [frame]
    assert flow_stats(ctl)[0].packet_count == 1


def test_buffer_pool_is_bounded_and_detects_reuse():
    pool = A.BufferPool(4)
    ids = [pool.put(bytes([i]), 1) for i in range(6)]
    assert len(set(ids)) == 6
    with pytest.raises(O.OFPError) as e:
        pool.take(ids[0])                         # slot reused by ids[4]
    assert e.value.code == C.OFPBRC_BUFFER_UNKNOWN
    assert pool.take(ids[5]) == (bytes([5]), 1)
    pool.counter = 0xFFFFFFFF
    assert pool.put(b"x", 2) != C.OFP_NO_BUFFER


def test_real_upcall_honours_max_len_if_facade_reports_it(sw, ctl):
    ctl.send(flow_mod(priority=0, inst=apply(out(ofp.OFPP_CONTROLLER, 64))))
    frame = udp(payload=300)
    forward(sw, 1, frame)
    ups = deliver_upcalls(sw)
    [pi] = ctl.recv()
    assert pi.total_len == len(frame)
    if hasattr(ups[0], "max_len"):
        assert pi.data == frame[:64] and pi.buffer_id != ofp.OFP_NO_BUFFER
    else:                                          # the facade drops max_len: whole frame
        assert pi.data == frame and pi.buffer_id == ofp.OFP_NO_BUFFER


def test_packet_out_data_table_and_errors(sw, ctl):
    frame = udp()
    ctl.send(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, ofp.OFPP_CONTROLLER, [out(2)], frame))
    assert ctl.recv() == []
    assert sw.ports[2].take_tx() == [frame]
    # OFPP_TABLE runs the pipeline as if the frame came in on in_port 1
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(3))))
    ctl.send(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, 1, [out(ofp.OFPP_TABLE)], frame))
    assert ctl.recv() == []
    assert sw.ports[3].take_tx() == [frame] and sw.ports[2].take_tx() == []
    # FLOOD from port 1 reaches 2 and 3
    ctl.send(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, 1, [out(ofp.OFPP_FLOOD)], frame))
    assert sw.ports[2].take_tx() == [frame] and sw.ports[3].take_tx() == [frame]
    assert sw.ports[1].take_tx() == []
    ctl.expect_error(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, 9, [out(2)], frame),
                     ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_PORT)
    ctl.expect_error(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, 1,
                                         [parser.OFPActionGroup(3)], frame),
                     ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_GROUP)
    ctl.expect_error(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, 1, [out(2)], b""),
                     ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_PACKET)


# ------------------------------------------------------------------ ports

def test_port_desc_and_port_mod(sw, ctl):
    [part] = ctl.multipart(parser.OFPPortDescStatsRequest(DP, 0))
    descs = {p.port_no: p for p in part.body}
    assert sorted(descs) == [1, 2, 3]
    p2 = descs[2]
    assert p2.name == b"p2" and p2.hw_addr == ":".join(
        f"{b:02x}" for b in sw.ports[2].hw_addr)
    assert p2.config == 0 and p2.state == ofp.OFPPS_LIVE
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(2))))
    frame = udp()
    assert forward(sw, 1, frame)[2] == [frame]
    # NO_FWD on port 2: the flow no longer transmits there; PORT_STATUS says so
    ctl.send(parser.OFPPortMod(DP, 2, p2.hw_addr, ofp.OFPPC_NO_FWD, ofp.OFPPC_NO_FWD, 0))
    [st] = ctl.recv()
    assert st.msg_type == ofp.OFPT_PORT_STATUS and st.reason == ofp.OFPPR_MODIFY
    assert st.desc.port_no == 2 and st.desc.config == ofp.OFPPC_NO_FWD
    assert forward(sw, 1, frame)[2] == []
    # PORT_DOWN: not live any more
    ctl.send(parser.OFPPortMod(DP, 2, p2.hw_addr, ofp.OFPPC_PORT_DOWN, ofp.OFPPC_PORT_DOWN, 0))
    [st] = ctl.recv()
    assert st.desc.config == ofp.OFPPC_NO_FWD | ofp.OFPPC_PORT_DOWN
    assert not st.desc.state & ofp.OFPPS_LIVE
    # clear both: forwarding again
    ctl.send(parser.OFPPortMod(DP, 2, p2.hw_addr, 0,
                               ofp.OFPPC_NO_FWD | ofp.OFPPC_PORT_DOWN, 0))
    [st] = ctl.recv()
    assert st.desc.config == 0 and st.desc.state == ofp.OFPPS_LIVE
    assert forward(sw, 1, frame)[2] == [frame]
    # NO_RECV on port 1: nothing it receives is forwarded
    p1 = descs[1]
    ctl.send(parser.OFPPortMod(DP, 1, p1.hw_addr, ofp.OFPPC_NO_RECV, ofp.OFPPC_NO_RECV, 0))
    ctl.recv()
    assert forward(sw, 1, frame)[2] == []
    # errors
    ctl.expect_error(parser.OFPPortMod(DP, 9, p2.hw_addr, 0, ofp.OFPPC_NO_FWD, 0),
                     ofp.OFPET_PORT_MOD_FAILED, ofp.OFPPMFC_BAD_PORT)
    ctl.expect_error(parser.OFPPortMod(DP, 2, "02:00:00:00:00:99", 0, ofp.OFPPC_NO_FWD, 0),
                     ofp.OFPET_PORT_MOD_FAILED, ofp.OFPPMFC_BAD_HW_ADDR)
    ctl.expect_error(parser.OFPPortMod(DP, 2, p2.hw_addr, 0, 1 << 3, 0),
                     ofp.OFPET_PORT_MOD_FAILED, ofp.OFPPMFC_BAD_CONFIG)


def test_no_packet_in_port_config(sw, ctl):
    ctl.send(flow_mod(priority=0, inst=apply(out(ofp.OFPP_CONTROLLER))))
    hw = ":".join(f"{b:02x}" for b in sw.ports[3].hw_addr)
    ctl.send(parser.OFPPortMod(DP, 3, hw, ofp.OFPPC_NO_PACKET_IN, ofp.OFPPC_NO_PACKET_IN, 0))
    ctl.recv()
    forward(sw, 3, udp())
    forward(sw, 2, udp())
    deliver_upcalls(sw)
    pis = ctl.recv()
    assert [p.match["in_port"] for p in pis] == [2]


def test_port_status_on_link_change_add_delete(sw, ctl):
    sw.dp.set_port_link(3, False)
    sw.agent.port_changed(3)
    [st] = ctl.recv()
    assert st.reason == ofp.OFPPR_MODIFY and st.desc.state & ofp.OFPPS_LINK_DOWN
    sw.agent.port_changed(3)                      # nothing changed: nothing sent
    assert ctl.recv() == []
    p4 = fastpath.DummyPort("p4")
    sw.dp.attach_port(4, p4)
    sw.agent.port_added(4)
    [st] = ctl.recv()
    assert st.reason == ofp.OFPPR_ADD and st.desc.port_no == 4 and st.desc.name == b"p4"
    sw.dp.detach_port(4)
    sw.agent.port_deleted(4)
    [st] = ctl.recv()
    assert st.reason == ofp.OFPPR_DELETE and st.desc.port_no == 4


def test_port_stats(sw, ctl):
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(2))))
    frame = udp()
    forward(sw, 1, frame)
    forward(sw, 1, frame)
    [part] = ctl.multipart(parser.OFPPortStatsRequest(DP, 0, ofp.OFPP_ANY))
    st = {s.port_no: s for s in part.body}
    assert sorted(st) == [1, 2, 3]
    assert (st[1].rx_packets, st[1].rx_bytes) == (2, 2 * len(frame))
    assert (st[2].tx_packets, st[2].tx_bytes) == (2, 2 * len(frame))
    [part] = ctl.multipart(parser.OFPPortStatsRequest(DP, 0, 2))
    assert [s.port_no for s in part.body] == [2]
    ctl.expect_error(parser.OFPPortStatsRequest(DP, 0, 7), ofp.OFPET_BAD_REQUEST,
                     ofp.OFPBRC_BAD_PORT)


# ------------------------------------------------------------------ groups, meters

def test_group_mod_stats_desc_and_delete(sw, ctl):
    buckets = [parser.OFPBucket(actions=[out(2)]), parser.OFPBucket(actions=[out(3)])]
    ctl.send(parser.OFPGroupMod(DP, ofp.OFPGC_ADD, ofp.OFPGT_ALL, 1, buckets))
    assert ctl.recv() == []
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(parser.OFPActionGroup(1)),
                      flags=ofp.OFPFF_SEND_FLOW_REM))
    frame = udp()
    tx = forward(sw, 1, frame)
    assert tx[2] == [frame] and tx[3] == [frame]
    ctl.expect_error(parser.OFPGroupMod(DP, ofp.OFPGC_ADD, ofp.OFPGT_ALL, 1, buckets),
                     ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_GROUP_EXISTS)
    ctl.expect_error(parser.OFPGroupMod(DP, ofp.OFPGC_MODIFY, ofp.OFPGT_ALL, 8, buckets),
                     ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_UNKNOWN_GROUP)
    [part] = ctl.multipart(parser.OFPGroupDescStatsRequest(DP, 0))
    [g] = part.body
    assert (g.group_id, g.type) == (1, ofp.OFPGT_ALL)
    assert str(g.buckets) == str(buckets)
    [part] = ctl.multipart(parser.OFPGroupStatsRequest(DP, 0, ofp.OFPG_ALL))
    [gs] = part.body
    assert (gs.group_id, gs.ref_count, gs.packet_count, gs.byte_count) == (1, 1, 1, len(frame))
    assert [(b.packet_count, b.byte_count) for b in gs.bucket_stats] == [(1, len(frame))] * 2
    # modify to one bucket
    ctl.send(parser.OFPGroupMod(DP, ofp.OFPGC_MODIFY, ofp.OFPGT_INDIRECT, 1,
                                [parser.OFPBucket(actions=[out(3)])]))
    assert ctl.recv() == []
    tx = forward(sw, 1, frame)
    assert tx[2] == [] and tx[3] == [frame]
    [part] = ctl.multipart(parser.OFPGroupFeaturesStatsRequest(DP, 0))
    gf = part.body
    assert gf.types == 0b1111 and gf.capabilities & ofp.OFPGFC_CHAINING
    assert gf.actions[0] & (1 << ofp.OFPAT_OUTPUT)
    # delete: the flow using it goes too, FLOW_REMOVED reason GROUP_DELETE
    ctl.send(parser.OFPGroupMod(DP, ofp.OFPGC_DELETE, 0, 1, []))
    [rem] = ctl.recv()
    assert rem.msg_type == ofp.OFPT_FLOW_REMOVED and rem.reason == ofp.OFPRR_GROUP_DELETE
    [part] = ctl.multipart(parser.OFPGroupDescStatsRequest(DP, 0))
    assert part.body == [] and flow_stats(ctl) == []
    # deleting a group that does not exist is fine
    ctl.send(parser.OFPGroupMod(DP, ofp.OFPGC_DELETE, 0, 42, []))
    assert ctl.recv() == []


def test_meter_mod_config_stats_features(sw, ctl):
    bands = [parser.OFPMeterBandDrop(rate=1000, burst_size=0)]
    ctl.send(parser.OFPMeterMod(DP, ofp.OFPMC_ADD, ofp.OFPMF_KBPS | ofp.OFPMF_STATS, 3, bands))
    assert ctl.recv() == []
    ctl.expect_error(parser.OFPMeterMod(DP, ofp.OFPMC_ADD, ofp.OFPMF_KBPS, 3, bands),
                     ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_METER_EXISTS)
    ctl.expect_error(parser.OFPMeterMod(DP, ofp.OFPMC_MODIFY, ofp.OFPMF_KBPS, 4, bands),
                     ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_UNKNOWN_METER)
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1),
                      inst=[parser.OFPInstructionMeter(3)] + apply(out(2)),
                      flags=ofp.OFPFF_SEND_FLOW_REM))
    frame = udp()
    assert forward(sw, 1, frame)[2] == [frame]
    [part] = ctl.multipart(parser.OFPMeterConfigStatsRequest(DP, 0, ofp.OFPM_ALL))
    [mc] = part.body
    assert (mc.meter_id, mc.flags) == (3, ofp.OFPMF_KBPS | ofp.OFPMF_STATS)
    assert [(b.type, b.rate, b.burst_size) for b in mc.bands] == [(ofp.OFPMBT_DROP, 1000, 0)]
    [part] = ctl.multipart(parser.OFPMeterStatsRequest(DP, 0, 3))
    [ms] = part.body
    assert (ms.meter_id, ms.flow_count, ms.packet_in_count, ms.byte_in_count) == \
        (3, 1, 1, len(frame))
    assert len(ms.band_stats) == 1
    ctl.send(parser.OFPMeterMod(DP, ofp.OFPMC_MODIFY, ofp.OFPMF_PKTPS, 3,
                                [parser.OFPMeterBandDscpRemark(rate=10, burst_size=5,
                                                               prec_level=1)]))
    assert ctl.recv() == []
    [part] = ctl.multipart(parser.OFPMeterConfigStatsRequest(DP, 0, 3))
    [mc] = part.body
    assert mc.flags == ofp.OFPMF_PKTPS
    assert [(b.type, b.rate, b.burst_size, b.prec_level) for b in mc.bands] == \
        [(ofp.OFPMBT_DSCP_REMARK, 10, 5, 1)]
    [part] = ctl.multipart(parser.OFPMeterFeaturesStatsRequest(DP, 0))
    [mf] = part.body
    assert mf.band_types == (1 << ofp.OFPMBT_DROP) | (1 << ofp.OFPMBT_DSCP_REMARK)
    assert mf.max_meter > 0 and mf.max_bands >= 1
    # delete: its flow is removed (FLOW_REMOVED reason DELETE in 1.3)
    ctl.send(parser.OFPMeterMod(DP, ofp.OFPMC_DELETE, 0, 3, []))
    [rem] = ctl.recv()
    assert rem.reason == ofp.OFPRR_DELETE
    [part] = ctl.multipart(parser.OFPMeterConfigStatsRequest(DP, 0, ofp.OFPM_ALL))
    assert part.body == [] and flow_stats(ctl) == []


# ------------------------------------------------------------------ multipart

def test_desc_aggregate_table_queue(sw, ctl):
    [d] = ctl.multipart(parser.OFPDescStatsRequest(DP, 0))
    assert d.body.dp_desc == b"sw-test" and d.body.sw_desc.startswith(b"vdp")
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(2))),
             flow_mod(table_id=3, match=parser.OFPMatch(in_port=2), inst=apply(out(1))))
    forward(sw, 1, udp())
    [a] = ctl.multipart(parser.OFPAggregateStatsRequest(DP, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                                        ofp.OFPG_ANY, 0, 0, parser.OFPMatch()))
    assert (a.body.flow_count, a.body.packet_count) == (2, 1)
    [a] = ctl.multipart(parser.OFPAggregateStatsRequest(DP, 0, 3, ofp.OFPP_ANY,
                                                        ofp.OFPG_ANY, 0, 0, parser.OFPMatch()))
    assert (a.body.flow_count, a.body.packet_count) == (1, 0)
    parts = ctl.multipart(parser.OFPTableStatsRequest(DP, 0))
    tables = [t for p in parts for t in p.body]
    assert [t.table_id for t in tables] == list(range(254))
    assert (tables[0].active_count, tables[0].lookup_count, tables[0].matched_count) == (1, 1, 1)
    assert tables[3].active_count == 1
    [q] = ctl.multipart(parser.OFPQueueStatsRequest(DP, 0, ofp.OFPP_ANY, ofp.OFPQ_ALL))
    assert q.body == []
    ctl.expect_error(parser.OFPQueueStatsRequest(DP, 0, 1, 5), ofp.OFPET_QUEUE_OP_FAILED,
                     ofp.OFPQOFC_BAD_QUEUE)
    r = ctl.request(parser.OFPQueueGetConfigRequest(DP, 1))
    assert r.msg_type == ofp.OFPT_QUEUE_GET_CONFIG_REPLY and r.port == 1 and r.queues == []
    ctl.expect_error(parser.OFPQueueGetConfigRequest(DP, 9), ofp.OFPET_QUEUE_OP_FAILED,
                     ofp.OFPQOFC_BAD_PORT)
    ctl.expect_error(parser.OFPFlowStatsRequest(DP, 0, 254, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0,
                                                parser.OFPMatch()),
                     ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_TABLE_ID)


def test_flow_stats_filters(ctl):
    ctl.send(flow_mod(priority=1, match=parser.OFPMatch(in_port=1), inst=apply(out(2)), cookie=1),
             flow_mod(priority=2, match=parser.OFPMatch(in_port=1, eth_type=0x0806),
                      inst=apply(out(3)), cookie=2),
             flow_mod(table_id=1, priority=3, match=parser.OFPMatch(in_port=2),
                      inst=apply(out(3)), cookie=3))
    cookies = lambda fl: sorted(f.cookie for f in fl)  # noqa: E731
    assert cookies(flow_stats(ctl)) == [1, 2, 3]
    assert cookies(flow_stats(ctl, table_id=1)) == [3]
    assert cookies(flow_stats(ctl, out_port=3)) == [2, 3]
    assert cookies(flow_stats(ctl, cookie=2, cookie_mask=0xFF)) == [2]
    assert cookies(flow_stats(ctl, match=parser.OFPMatch(in_port=1))) == [1, 2]


def test_many_flows_split_into_parts(ctl):
    for i in range(1200):
        ctl.send(flow_mod(priority=i, match=parser.OFPMatch(
            in_port=1, eth_type=0x0800, ipv4_src=f"10.{i >> 8}.{i & 255}.1"),
            inst=apply(out(2), out(3))))
    assert ctl.recv() == []
    parts = ctl.multipart(parser.OFPFlowStatsRequest(DP, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                                     ofp.OFPG_ANY, 0, 0, parser.OFPMatch()))
    assert len(parts) > 1
    assert sorted(f.priority for p in parts for f in p.body) == list(range(1200))


def test_table_features(ctl):
    parts = ctl.multipart(parser.OFPTableFeaturesStatsRequest(DP, 0, []))
    assert len(parts) > 1
    tables = [t for p in parts for t in p.body]
    assert [t.table_id for t in tables] == list(range(254))
    t0 = tables[0]
    props = {p.type: p for p in t0.properties}
    assert set(props) == {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 13, 14, 15}
    insts = {i.type for i in props[ofp.OFPTFPT_INSTRUCTIONS].instruction_ids}
    assert insts == {ofp.OFPIT_GOTO_TABLE, ofp.OFPIT_WRITE_METADATA, ofp.OFPIT_WRITE_ACTIONS,
                     ofp.OFPIT_APPLY_ACTIONS, ofp.OFPIT_CLEAR_ACTIONS, ofp.OFPIT_METER}
    assert props[ofp.OFPTFPT_NEXT_TABLES].table_ids == list(range(1, 254))
    acts = {a.type for a in props[ofp.OFPTFPT_APPLY_ACTIONS].action_ids}
    assert {ofp.OFPAT_OUTPUT, ofp.OFPAT_SET_FIELD, ofp.OFPAT_GROUP, ofp.OFPAT_PUSH_VLAN} <= acts
    match = {(o.type, o.hasmask) for o in props[ofp.OFPTFPT_MATCH].oxm_ids}
    assert ("in_port", False) in match and ("eth_dst", True) in match
    assert len(match) == 40
    last = {p.type: p for p in tables[253].properties}
    assert ofp.OFPIT_GOTO_TABLE not in {
        i.type for i in last[ofp.OFPTFPT_INSTRUCTIONS].instruction_ids}
    assert last[ofp.OFPTFPT_NEXT_TABLES].table_ids == []


def test_table_features_set_refused_table_mod_accepted(ctl):
    req = parser.OFPTableFeaturesStatsRequest(DP, 0, [parser.OFPTableFeaturesStats(
        table_id=0, name=b"t0", metadata_match=0, metadata_write=0, config=0,
        max_entries=10, properties=[])])
    ctl.expect_error(req, ofp.OFPET_TABLE_FEATURES_FAILED, ofp.OFPTFFC_EPERM)
    ctl.send(parser.OFPTableMod(DP, 0, 3))
    assert ctl.recv() == []
    ctl.send(parser.OFPTableMod(DP, ofp.OFPTT_ALL, 0))
    assert ctl.recv() == []
    ctl.expect_error(parser.OFPTableMod(DP, 254, 0), ofp.OFPET_TABLE_MOD_FAILED,
                     ofp.OFPTMFC_BAD_TABLE)


def test_unknown_multipart_type(ctl):
    raw = struct.pack("!BBHIHH4x", 4, ofp.OFPT_MULTIPART_REQUEST, 16, 55, 99, 0)
    ctl.expect_error(raw, ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_MULTIPART)


# ------------------------------------------------------------------ roles, async

def test_roles_generation_and_slave_restrictions(sw):
    a, b = Peer(sw.agent), Peer(sw.agent)
    r = a.request(parser.OFPRoleRequest(DP, ofp.OFPCR_ROLE_NOCHANGE, 0))
    assert r.msg_type == ofp.OFPT_ROLE_REPLY and r.role == ofp.OFPCR_ROLE_EQUAL
    r = a.request(parser.OFPRoleRequest(DP, ofp.OFPCR_ROLE_MASTER, 10))
    assert (r.role, r.generation_id) == (ofp.OFPCR_ROLE_MASTER, 10)
    r = b.request(parser.OFPRoleRequest(DP, ofp.OFPCR_ROLE_MASTER, 11))
    assert r.role == ofp.OFPCR_ROLE_MASTER
    r = a.request(parser.OFPRoleRequest(DP, ofp.OFPCR_ROLE_NOCHANGE, 0))
    assert (r.role, r.generation_id) == (ofp.OFPCR_ROLE_SLAVE, 11)   # demoted
    b.expect_error(parser.OFPRoleRequest(DP, ofp.OFPCR_ROLE_MASTER, 5),
                   ofp.OFPET_ROLE_REQUEST_FAILED, ofp.OFPRRFC_STALE)
    # a slave cannot change the switch, can read it
    a.expect_error(flow_mod(inst=apply(out(1))), ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE)
    a.expect_error(parser.OFPPacketOut(DP, ofp.OFP_NO_BUFFER, ofp.OFPP_CONTROLLER, [out(1)],
                                       udp()), ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE)
    a.expect_error(parser.OFPGroupMod(DP, ofp.OFPGC_ADD, 0, 1, []), ofp.OFPET_BAD_REQUEST,
                   ofp.OFPBRC_IS_SLAVE)
    a.expect_error(parser.OFPMeterMod(DP, ofp.OFPMC_ADD, 1, 1, []), ofp.OFPET_BAD_REQUEST,
                   ofp.OFPBRC_IS_SLAVE)
    a.expect_error(parser.OFPTableMod(DP, 0, 0), ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_IS_SLAVE)
    assert flow_stats(a) == []
    # async defaults by role: packet-ins go to the master only, port status to both
    b.send(flow_mod(priority=0, inst=apply(out(ofp.OFPP_CONTROLLER))))
    forward(sw, 1, udp())
    deliver_upcalls(sw)
    assert [m.msg_type for m in b.recv()] == [ofp.OFPT_PACKET_IN]
    assert a.recv() == []
    sw.dp.set_port_link(2, False)
    sw.agent.port_changed(2)
    assert [m.msg_type for m in a.recv()] == [ofp.OFPT_PORT_STATUS]
    assert [m.msg_type for m in b.recv()] == [ofp.OFPT_PORT_STATUS]
    # back to equal: may modify again
    a.request(parser.OFPRoleRequest(DP, ofp.OFPCR_ROLE_EQUAL, 0))
    a.send(flow_mod(priority=3, inst=apply(out(1))))
    assert a.recv() == [] and len(flow_stats(a)) == 2


def test_set_get_async_filters(sw, ctl):
    r = ctl.request(parser.OFPGetAsyncRequest(DP))
    assert r.packet_in_mask == [3, 0] and r.port_status_mask == [7, 7]
    assert r.flow_removed_mask == [15, 0]
    # no packet-ins for NO_MATCH, no FLOW_REMOVED for DELETE, no PORT_STATUS MODIFY
    ctl.send(parser.OFPSetAsync(DP, [1 << ofp.OFPR_ACTION, 0],
                                [(1 << ofp.OFPPR_ADD) | (1 << ofp.OFPPR_DELETE), 0],
                                [1 << ofp.OFPRR_IDLE_TIMEOUT, 0]))
    assert ctl.recv() == []
    r = ctl.request(parser.OFPGetAsyncRequest(DP))
    assert r.packet_in_mask == [2, 0] and r.port_status_mask == [3, 0]
    ctl.send(flow_mod(priority=0, inst=apply(out(ofp.OFPP_CONTROLLER))),
             flow_mod(priority=5, match=parser.OFPMatch(in_port=2),
                      inst=apply(out(ofp.OFPP_CONTROLLER)), flags=ofp.OFPFF_SEND_FLOW_REM))
    forward(sw, 1, udp())                         # table miss: NO_MATCH, filtered
    forward(sw, 2, udp())                         # action: delivered
    deliver_upcalls(sw)
    pis = ctl.recv()
    assert [(p.reason, p.match["in_port"]) for p in pis] == [(ofp.OFPR_ACTION, 2)]
    ctl.send(flow_mod(ofp.OFPFC_DELETE, table_id=ofp.OFPTT_ALL))
    assert ctl.recv() == []
    sw.dp.set_port_link(1, False)
    sw.agent.port_changed(1)
    assert ctl.recv() == []


def test_invalid_ttl_packet_in_follows_async_mask(sw, ctl):
    assert sw.dp.invalid_ttl_to_controller is False
    ctl.send(parser.OFPSetAsync(DP, [0b111, 0], [7, 7], [15, 0]))
    assert sw.dp.invalid_ttl_to_controller is True
    ctl.send(flow_mod(match=parser.OFPMatch(in_port=1),
                      inst=apply(parser.OFPActionDecNwTtl(), out(2))))
    frame = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                  / IP(src="10.0.0.1", dst="10.0.0.2", ttl=1) / UDP() / b"ttl")
    forward(sw, 1, frame)
    deliver_upcalls(sw)
    [pi] = ctl.recv()
    assert pi.reason == ofp.OFPR_INVALID_TTL
    ctl.session.close()
    assert sw.dp.invalid_ttl_to_controller is False


# ------------------------------------------------------------------ keepalive, fail mode

def test_echo_keepalive_with_injected_time(sw):
    clock = sw.clock
    peer = Peer(sw.agent)
    sw.agent.tick(clock.t + 4.9)
    assert peer.recv_raw() == []
    clock.t += 5
    sw.agent.tick()
    [req] = peer.recv()
    assert req.msg_type == ofp.OFPT_ECHO_REQUEST
    # answering resets the keepalive
    peer.send_raw(O.encode(O.EchoReply(req.xid, req.data)))
    clock.t += 4
    sw.agent.tick()
    assert peer.recv_raw() == []
    # silence: a probe every 5 s, then the connection is dropped
    for i in range(3):
        clock.t += 5
        sw.agent.tick()
        assert [m.msg_type for m in peer.recv()] == [ofp.OFPT_ECHO_REQUEST]
        assert not peer.closed
    clock.t += 5
    sw.agent.tick()
    assert peer.closed and peer.session not in sw.agent.sessions


def test_fail_mode_standalone_toggles_with_controllers(sw):
    dp = sw.dp
    assert dp.fail_standalone is True
    svc = Peer(sw.agent, service=True)            # ovs-ofctl via a listener: not a controller
    assert dp.fail_standalone is True
    c1, c2 = Peer(sw.agent), Peer(sw.agent)
    assert dp.fail_standalone is False
    # with a controller connected a table miss is dropped, not NORMAL-forwarded
    assert forward(sw, 1, udp(dst="ff:ff:ff:ff:ff:ff"))[2] == []
    c1.session.close()
    assert dp.fail_standalone is False
    c2.session.connection_lost()
    assert dp.fail_standalone is True
    frame = udp(dst="ff:ff:ff:ff:ff:ff")
    tx = forward(sw, 1, frame)
    assert tx[2] == [frame] and tx[3] == [frame]  # learning switch again
    svc.session.close()
    assert dp.fail_standalone is True


def test_fail_mode_secure_never_normal():
    dp = fastpath.Datapath()
    p1, p2 = fastpath.DummyPort("s1"), fastpath.DummyPort("s2")
    dp.attach_port(1, p1)
    dp.attach_port(2, p2)
    agent = A.Agent(dp, dpid=1, fail_mode="secure", clock=FakeClock())
    assert dp.fail_standalone is False
    peer = Peer(agent)
    peer.send(flow_mod(match=parser.OFPMatch(in_port=1), inst=apply(out(2))))
    peer.session.close()
    assert dp.fail_standalone is False
    p1.inject(udp())
    p2.inject(udp(dst="ff:ff:ff:ff:ff:ff"))
    dp.run_dummy()
    assert len(p2.take_tx()) == 1 and p1.take_tx() == []   # flows kept, misses dropped
    assert agent.handle_upcalls(dp.upcalls()) == 0


# ------------------------------------------------------------------ channels over loopback

def _recv_msgs(sock, framer, want, timeout=5.0):
    sock.settimeout(timeout)
    got = []
    while len(got) < want:
        for raw in framer:
            got.append(osk_parse(raw))
        if len(got) >= want:
            break
        data = sock.recv(65536)
        if not data:
            break
        framer.feed(data)
    return got


def _run(coro):
    return asyncio.run(coro)


def _dp_agent(fail_mode="standalone"):
    dp = fastpath.Datapath()
    dp.attach_port(1, fastpath.DummyPort("c1"))
    return dp, A.Agent(dp, dpid=0x42, fail_mode=fail_mode)


def test_passive_listener_serves_ofctl_like_client():
    dp, agent = _dp_agent()

    async def main():
        ch = CH.Channels(agent, listen=[ListenTarget("ptcp", 0, "127.0.0.1")])
        await ch.start()
        port = ch.listeners[0].port
        loop = asyncio.get_running_loop()

        def client():
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            fr = O.Framer()
            s.sendall(O.encode(O.Hello(1, frozenset({4}))) +
                      osk_bytes(parser.OFPFeaturesRequest(DP), 2))
            msgs = _recv_msgs(s, fr, 2)
            s.close()
            return msgs
        msgs = await loop.run_in_executor(None, client)
        for _ in range(100):
            if not agent.sessions:
                break
            await asyncio.sleep(0.02)
        left = len(agent.sessions)
        await ch.close()
        return msgs, left
    msgs, left = _run(main())
    assert [m.msg_type for m in msgs] == [ofp.OFPT_HELLO, ofp.OFPT_FEATURES_REPLY]
    assert msgs[1].datapath_id == 0x42
    assert left == 0
    assert dp.fail_standalone is True             # a service connection never changed it


def test_active_channel_connects_and_reconnects_with_backoff():
    dp, agent = _dp_agent()

    async def main():
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        srv.setblocking(False)
        port = srv.getsockname()[1]
        loop = asyncio.get_running_loop()
        ch = CH.Channels(agent, controllers=[ControllerTarget("tcp", "127.0.0.1", port)],
                         min_backoff=0.05, max_backoff=0.2)
        await ch.start()
        seen = []
        for round_ in range(2):
            conn, _ = await asyncio.wait_for(loop.sock_accept(srv), 5)
            conn.setblocking(True)
            msgs = await loop.run_in_executor(None, lambda: _handshake_features(conn))
            seen.append((msgs, dp.fail_standalone))
            conn.close()                          # the controller goes away: we reconnect
            for _ in range(200):
                if dp.fail_standalone:
                    break
                await asyncio.sleep(0.01)
            seen.append(("after-close", dp.fail_standalone))
        active = ch.actives[0]
        await ch.close()
        srv.close()
        return seen, active.connections
    seen, connections = _run(main())
    for msgs, standalone in seen[0::2]:
        assert [m.msg_type for m in msgs] == [ofp.OFPT_HELLO, ofp.OFPT_FEATURES_REPLY]
        assert standalone is False                # a controller: standalone off
    assert [s for _, s in seen[1::2]] == [True, True]
    assert connections == 2


def _handshake_features(conn):
    fr = O.Framer()
    conn.sendall(O.encode(O.Hello(1, frozenset({4}))))
    conn.sendall(osk_bytes(parser.OFPFeaturesRequest(DP), 2))
    return _recv_msgs(conn, fr, 2)


def test_active_channel_backoff_grows_while_refused():
    dp, agent = _dp_agent()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]                     # bound, not listening: refused

    async def main():
        ch = CH.ActiveChannel(agent, ControllerTarget("tcp", "127.0.0.1", port),
                              min_backoff=0.05, max_backoff=0.2)
        t0 = asyncio.get_running_loop().time()
        ch.start()
        await asyncio.sleep(0.6)
        n = ch.attempts
        await ch.close()
        return n, asyncio.get_running_loop().time() - t0
    n, elapsed = _run(main())
    s.close()
    # 0.05 + 0.1 + 0.2 + 0.2 ... : a handful of attempts, not a busy loop
    assert 2 <= n <= 8, n


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_pssl_listener_with_client_certificates(tmp_path):
    def make(name, ca=None):
        key, crt = tmp_path / f"{name}.key", tmp_path / f"{name}.crt"
        if ca is None:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "2", "-subj", f"/CN={name}", "-keyout", key, "-out", crt],
                           check=True, capture_output=True)
        else:
            csr = tmp_path / f"{name}.csr"
            subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj",
                            f"/CN={name}", "-keyout", key, "-out", csr],
                           check=True, capture_output=True)
            subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0],
                            "-CAcreateserial", "-days", "2", "-out", crt],
                           check=True, capture_output=True)
        return str(key), str(crt)
    ca = make("ca")
    sw_key, sw_crt = make("switch", ca)
    c_key, c_crt = make("ctl", ca)
    dp, agent = _dp_agent()

    async def main():
        ch = CH.Channels(agent, listen=[ListenTarget("pssl", 0, "127.0.0.1")],
                         tls=dict(key=sw_key, cert=sw_crt, ca=ca[1]))
        await ch.start()
        port = ch.listeners[0].port
        loop = asyncio.get_running_loop()

        def client(with_cert):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.load_verify_locations(ca[1])
            if with_cert:
                ctx.load_cert_chain(c_crt, c_key)
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            try:
                s = ctx.wrap_socket(raw)
                s.sendall(O.encode(O.Hello(1, frozenset({4}))) +
                          osk_bytes(parser.OFPFeaturesRequest(DP), 2))
                return _recv_msgs(s, O.Framer(), 2)
            except (ssl.SSLError, OSError) as e:
                return e
            finally:
                raw.close()
        ok = await loop.run_in_executor(None, client, True)
        refused = await loop.run_in_executor(None, client, False)
        await ch.close()
        return ok, refused
    ok, refused = _run(main())
    assert [m.msg_type for m in ok] == [ofp.OFPT_HELLO, ofp.OFPT_FEATURES_REPLY]
    # without a client certificate the handshake (or the first read) fails
    assert isinstance(refused, Exception) or refused == [], refused


def test_pssl_without_certificate_is_a_setup_error():
    dp, agent = _dp_agent()

    async def main():
        ch = CH.Channels(agent, listen=[ListenTarget("pssl", 0, "127.0.0.1")])
        with pytest.raises(CH.ChannelError, match="certificate"):
            await ch.start()
    _run(main())


def test_listen_address_in_use_is_a_setup_error():
    dp, agent = _dp_agent()
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]

    async def main():
        ch = CH.Channels(agent, listen=[ListenTarget("ptcp", port, "127.0.0.1")])
        with pytest.raises(CH.ChannelError, match="cannot listen"):
            await ch.start()
    try:
        _run(main())
    finally:
        s.close()


# ------------------------------------------------------------------ the daemon wiring

class _DaemonThread:
    """`vdp run` (datapath.daemon.Daemon) over a real Datapath whose ports
    are DummyPorts, its asyncio loop in a thread; no root needed."""

    def __init__(self, cfg):
        import threading
        import types
        from datapath import daemon
        self.ports = {}

        def port(name, create=True):
            p = fastpath.DummyPort(name)
            self.ports[name] = p
            return p
        fp = types.SimpleNamespace(Datapath=fastpath.Datapath, AfPacketPort=port,
                                   TapPort=port, FlowError=fastpath.FlowError)
        self.d = daemon.Daemon(cfg, fastpath=fp, netlink=False)
        self.d.setup()
        self.loop = asyncio.new_event_loop()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while self.d.agent is None or (cfg.listen and not self._listening()):
            assert time.monotonic() < deadline and self.thread.is_alive(), self.error
            time.sleep(0.02)

    def _listening(self):
        ch = self.d.channels
        return ch is not None and ch.listeners and ch.listeners[0].port

    def _run(self):
        try:
            self.loop.run_until_complete(self.d.serve())
        except BaseException as e:
            self.error = e

    def stop(self):
        self.loop.call_soon_threadsafe(self.d.stop)
        self.thread.join(10)
        if self.thread.is_alive():
            import faulthandler, sys
            faulthandler.dump_traceback(sys.stderr, all_threads=True)
        self.d.teardown()
        self.loop.close()


@pytest.fixture
def daemon_env(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.setenv("VDP_RUN_DIR", str(tmp_path / "run"))
    d = tempfile.mkdtemp(prefix="vdpt-of-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class _Wire:
    """A blocking OpenFlow peer on a socket, for the daemon tests."""

    def __init__(self, sock):
        self.sock = sock
        self.framer = O.Framer()
        sock.settimeout(10)

    def send(self, msg, xid):
        self.sock.sendall(msg if isinstance(msg, bytes) else osk_bytes(msg, xid))

    def recv_until(self, pred, timeout=10):
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            for raw in self.framer:
                m = osk_parse(raw)
                seen.append(m)
                if pred(m):
                    return m, seen
            data = self.sock.recv(65536)
            assert data, f"connection closed; seen {seen}"
            self.framer.feed(data)
        raise AssertionError(f"not received; seen {seen}")


def test_daemon_listener_packet_in_and_flow_removed(daemon_env):
    from datapath.config import load_config
    port = _free_port()
    cfg = load_config(None, {"ports": ["d1", "d2"], "ctl": os.path.join(daemon_env, "d.ctl"),
                             "dpid": "0x77", "fail_mode": "secure",
                             "listen": [f"ptcp:{port}:127.0.0.1"]})
    dt = _DaemonThread(cfg)
    try:
        w = _Wire(socket.create_connection(("127.0.0.1", port), timeout=5))
        w.send(O.encode(O.Hello(1, frozenset({4}))), 1)
        w.send(parser.OFPFeaturesRequest(DP), 2)
        f, _ = w.recv_until(lambda m: m.msg_type == ofp.OFPT_FEATURES_REPLY)
        assert f.datapath_id == 0x77
        w.send(flow_mod(priority=0, inst=apply(out(ofp.OFPP_CONTROLLER))), 3)
        w.send(flow_mod(priority=9, match=parser.OFPMatch(in_port=2), inst=apply(out(1)),
                        hard=1, flags=ofp.OFPFF_SEND_FLOW_REM, cookie=0x99), 4)
        w.send(parser.OFPBarrierRequest(DP), 5)
        w.recv_until(lambda m: m.msg_type == ofp.OFPT_BARRIER_REPLY and m.xid == 5)
        frame = udp(payload=100)
        dt.d.dp.process(1, frame)                 # a miss: the daemon drains the upcall
        pi, _ = w.recv_until(lambda m: m.msg_type == ofp.OFPT_PACKET_IN)
        assert pi.data == frame and pi.match["in_port"] == 1
        # the daemon's expiry sweep sends FLOW_REMOVED for the hard timeout
        rem, _ = w.recv_until(lambda m: m.msg_type == ofp.OFPT_FLOW_REMOVED)
        assert (rem.cookie, rem.reason) == (0x99, ofp.OFPRR_HARD_TIMEOUT)
        assert dt.d.state.upcalls_dropped == 0
        w.sock.close()
    finally:
        dt.stop()
    assert dt.error is None, dt.error


def test_daemon_controller_connection_turns_standalone_off(daemon_env):
    from datapath.config import load_config
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(2)
    port = srv.getsockname()[1]
    cfg = load_config(None, {"ports": ["e1"], "ctl": os.path.join(daemon_env, "e.ctl"),
                             "fail_mode": "standalone",
                             "controllers": [f"tcp:127.0.0.1:{port}"]})
    dt = _DaemonThread(cfg)
    try:
        srv.settimeout(10)
        conn, _ = srv.accept()
        w = _Wire(conn)
        w.send(O.encode(O.Hello(1, frozenset({4}))), 1)
        w.send(parser.OFPEchoRequest(DP, b"x"), 2)
        w.recv_until(lambda m: m.msg_type == ofp.OFPT_ECHO_REPLY)
        assert dt.d.dp.fail_standalone is False
        conn.close()
        deadline = time.monotonic() + 5
        while not dt.d.dp.fail_standalone:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        # and it comes back (1 s backoff)
        conn, _ = srv.accept()
        conn.close()
    finally:
        dt.stop()
        srv.close()
    assert dt.error is None, dt.error
