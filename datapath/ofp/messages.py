"""OpenFlow 1.3 messages: one dataclass per message, decode() and encode().

decode(data) takes one whole message (as the Framer yields it) and returns
the dataclass for every message a controller sends a switch (HELLO, ERROR,
ECHO_*, EXPERIMENTER, FEATURES_REQUEST, GET_CONFIG_REQUEST, SET_CONFIG,
PACKET_OUT, FLOW_MOD, GROUP_MOD, PORT_MOD, TABLE_MOD, MULTIPART_REQUEST,
BARRIER_REQUEST, QUEUE_GET_CONFIG_REQUEST, ROLE_REQUEST, GET_ASYNC_REQUEST,
SET_ASYNC, METER_MOD).  Anything malformed raises OFPError with the spec's
error type and code, the request's xid and its first 64 bytes; a message a
switch never receives (PACKET_IN, FEATURES_REPLY, ...) is BAD_TYPE.

encode(msg) turns any of these dataclasses, and the switch's own messages
(FEATURES_REPLY, GET_CONFIG_REPLY, PACKET_IN, FLOW_REMOVED, PORT_STATUS,
MULTIPART_REPLY, BARRIER_REPLY, QUEUE_GET_CONFIG_REPLY, ROLE_REPLY,
GET_ASYNC_REPLY), into bytes.  encode_multipart_reply() splits long replies
into several messages flagged OFPMPF_REPLY_MORE.

FLOW_MOD carries a model.FlowSpec, GROUP_MOD a model.GroupSpec, METER_MOD a
model.MeterSpec: what datapath.fastpath takes.  Called by the switch agent.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import ClassVar, Optional

from datapath import model as M

from . import consts as C
from .actions import (decode_actions, decode_bands, decode_buckets, decode_instructions_basic,
                      encode_actions, encode_bands, encode_buckets, encode_instructions)
from .codec import HEADER, OFPError, header, need, pad8
from .multipart import (SINGLE_BODY, PortDesc, decode_request_body, encode_packet_queue,
                        encode_port, encode_reply_entry, encode_request_body, mac_bytes)
from .oxm import decode_flow_match, encode_match


def _bad_len(reason):
    return OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN, reason=reason)


def _exact(buf, size, name):
    if len(buf) != size:
        raise _bad_len(f"{name} of {len(buf)} bytes (want {size})")


def _at_least(buf, size, name):
    if len(buf) < size:
        raise _bad_len(f"{name} of {len(buf)} bytes (want at least {size})")


# ---- symmetric messages ------------------------------------------------------------

@dataclass
class Hello:
    xid: int = 0
    # Versions from the peer's version bitmap element; None if it sent none
    # (then only the header version says what it speaks).
    versions: Optional[frozenset] = frozenset({C.OFP_VERSION})
    version: int = C.OFP_VERSION          # header version
    elements: tuple = ()                  # other hello elements: ((type, bytes), ...)
    TYPE: ClassVar[int] = C.OFPT_HELLO

    def encode_body(self):
        out = b""
        if self.versions is not None:
            words = [0] * (max(self.versions) // 32 + 1 if self.versions else 1)
            for v in self.versions:
                words[v // 32] |= 1 << (v % 32)
            out += _hello_elem(C.OFPHET_VERSIONBITMAP, struct.pack(f"!{len(words)}I", *words))
        for etype, data in self.elements:
            out += _hello_elem(etype, data)
        return out


def _hello_elem(etype, data):
    n = 4 + len(data)
    return struct.pack("!HH", etype, n) + data + b"\0" * (pad8(n) - n)


def negotiate_version(hello, supported=(C.OFP_VERSION,)):
    """The version to speak with the peer that sent `hello`, or None
    (then the switch answers HELLO_FAILED/INCOMPATIBLE).  With a version
    bitmap: the highest version both support; without: the lower of the two
    header versions, if we support it."""
    sup = set(supported)
    if hello.versions is not None:
        common = sup & set(hello.versions)
        return max(common) if common else None
    v = min(hello.version, max(sup))
    return v if v in sup else None


@dataclass
class ErrorMsg:
    xid: int = 0
    type: int = 0
    code: int = 0                         # exp_type when type is OFPET_EXPERIMENTER
    data: bytes = b""
    experimenter: Optional[int] = None
    TYPE: ClassVar[int] = C.OFPT_ERROR

    def encode_body(self):
        # The failed request is echoed back: its first 64 bytes (ofp_error_msg).
        data = bytes(self.data[:C.OFP_ERROR_DATA_MAX])
        if self.type == C.OFPET_EXPERIMENTER:
            return struct.pack("!HHI", self.type, self.code, self.experimenter or 0) + data
        return struct.pack("!HH", self.type, self.code) + data


@dataclass
class EchoRequest:
    xid: int = 0
    data: bytes = b""
    TYPE: ClassVar[int] = C.OFPT_ECHO_REQUEST

    def encode_body(self):
        return bytes(self.data)


@dataclass
class EchoReply:
    xid: int = 0
    data: bytes = b""
    TYPE: ClassVar[int] = C.OFPT_ECHO_REPLY

    def encode_body(self):
        return bytes(self.data)


@dataclass
class Experimenter:
    xid: int = 0
    experimenter: int = 0
    exp_type: int = 0
    data: bytes = b""
    TYPE: ClassVar[int] = C.OFPT_EXPERIMENTER

    def encode_body(self):
        return struct.pack("!II", self.experimenter, self.exp_type) + bytes(self.data)


# ---- controller -> switch ----------------------------------------------------------

@dataclass
class FeaturesRequest:
    xid: int = 0
    TYPE: ClassVar[int] = C.OFPT_FEATURES_REQUEST

    def encode_body(self):
        return b""


@dataclass
class GetConfigRequest:
    xid: int = 0
    TYPE: ClassVar[int] = C.OFPT_GET_CONFIG_REQUEST

    def encode_body(self):
        return b""


@dataclass
class SetConfig:
    xid: int = 0
    flags: int = C.OFPC_FRAG_NORMAL
    miss_send_len: int = 128
    TYPE: ClassVar[int] = C.OFPT_SET_CONFIG

    def encode_body(self):
        return struct.pack("!HH", self.flags, self.miss_send_len)


@dataclass
class PacketOut:
    xid: int = 0
    buffer_id: int = C.OFP_NO_BUFFER
    in_port: int = C.OFPP_CONTROLLER
    actions: tuple = ()
    data: bytes = b""
    TYPE: ClassVar[int] = C.OFPT_PACKET_OUT

    def encode_body(self):
        acts = encode_actions(self.actions)
        return struct.pack("!IIH6x", self.buffer_id, self.in_port, len(acts)) + acts + bytes(self.data)


@dataclass
class FlowMod:
    """OFPT_FLOW_MOD: the command, the flow (model.FlowSpec: table_id,
    priority, match, instructions, cookie, timeouts, flags) and the fields
    that only select or modify (cookie_mask, buffer_id, out_port, out_group)."""
    xid: int = 0
    command: int = C.OFPFC_ADD
    spec: M.FlowSpec = field(default_factory=M.FlowSpec)
    cookie_mask: int = 0
    buffer_id: int = C.OFP_NO_BUFFER
    out_port: int = C.OFPP_ANY
    out_group: int = C.OFPG_ANY
    # Set by decode(): True when the match has only OpenFlow-basic fields and
    # no instruction or action is an experimenter one, so the switch need not
    # look for those it must refuse.  False (look) for a FlowMod built by hand.
    basic: bool = field(default=False, compare=False, repr=False)
    TYPE: ClassVar[int] = C.OFPT_FLOW_MOD

    def encode_body(self):
        s = self.spec
        return (struct.pack("!QQBBHHHIIIH2x", s.cookie, self.cookie_mask, s.table_id, self.command,
                            s.idle_timeout, s.hard_timeout, s.priority, self.buffer_id,
                            self.out_port, self.out_group, s.flags)
                + encode_match(s.match) + encode_instructions(s.instructions))


@dataclass
class GroupMod:
    xid: int = 0
    command: int = C.OFPGC_ADD
    spec: M.GroupSpec = None
    TYPE: ClassVar[int] = C.OFPT_GROUP_MOD

    def encode_body(self):
        return struct.pack("!HBxI", self.command, self.spec.type, self.spec.group_id) + \
            encode_buckets(self.spec.buckets)


@dataclass
class PortMod:
    xid: int = 0
    port_no: int = 0
    hw_addr: int = 0                      # 48-bit int
    config: int = 0
    mask: int = 0
    advertise: int = 0
    TYPE: ClassVar[int] = C.OFPT_PORT_MOD

    def encode_body(self):
        return struct.pack("!I4x6s2xIII4x", self.port_no, mac_bytes(self.hw_addr), self.config,
                           self.mask, self.advertise)


@dataclass
class TableMod:
    xid: int = 0
    table_id: int = 0
    config: int = 0
    TYPE: ClassVar[int] = C.OFPT_TABLE_MOD

    def encode_body(self):
        return struct.pack("!B3xI", self.table_id, self.config)


@dataclass
class MultipartRequest:
    """body: see datapath.ofp.multipart (None for the body-less types)."""
    xid: int = 0
    type: int = C.OFPMP_DESC
    flags: int = 0
    body: object = None
    TYPE: ClassVar[int] = C.OFPT_MULTIPART_REQUEST

    def encode_body(self):
        return struct.pack("!HH4x", self.type, self.flags) + encode_request_body(self.type, self.body)


@dataclass
class BarrierRequest:
    xid: int = 0
    TYPE: ClassVar[int] = C.OFPT_BARRIER_REQUEST

    def encode_body(self):
        return b""


@dataclass
class QueueGetConfigRequest:
    xid: int = 0
    port: int = C.OFPP_ANY
    TYPE: ClassVar[int] = C.OFPT_QUEUE_GET_CONFIG_REQUEST

    def encode_body(self):
        return struct.pack("!I4x", self.port)


@dataclass
class RoleRequest:
    xid: int = 0
    role: int = C.OFPCR_ROLE_NOCHANGE
    generation_id: int = 0
    TYPE: ClassVar[int] = C.OFPT_ROLE_REQUEST

    def encode_body(self):
        return struct.pack("!I4xQ", self.role, self.generation_id)


@dataclass
class GetAsyncRequest:
    xid: int = 0
    TYPE: ClassVar[int] = C.OFPT_GET_ASYNC_REQUEST

    def encode_body(self):
        return b""


@dataclass
class SetAsync:
    """Each mask is (master/equal, slave): bitmaps of reasons."""
    xid: int = 0
    packet_in_mask: tuple = (0, 0)
    port_status_mask: tuple = (0, 0)
    flow_removed_mask: tuple = (0, 0)
    TYPE: ClassVar[int] = C.OFPT_SET_ASYNC

    def encode_body(self):
        return struct.pack("!6I", *self.packet_in_mask, *self.port_status_mask, *self.flow_removed_mask)


@dataclass
class MeterMod:
    xid: int = 0
    command: int = C.OFPMC_ADD
    spec: M.MeterSpec = None
    TYPE: ClassVar[int] = C.OFPT_METER_MOD

    def encode_body(self):
        return struct.pack("!HHI", self.command, self.spec.flags, self.spec.meter_id) + \
            encode_bands(self.spec.bands)


# ---- switch -> controller (encode only) -------------------------------------------

@dataclass
class FeaturesReply:
    xid: int = 0
    datapath_id: int = 0
    n_buffers: int = 0
    n_tables: int = 254
    auxiliary_id: int = 0
    capabilities: int = 0
    TYPE: ClassVar[int] = C.OFPT_FEATURES_REPLY

    def encode_body(self):
        return struct.pack("!QIBB2xII", self.datapath_id, self.n_buffers, self.n_tables,
                           self.auxiliary_id, self.capabilities, 0)


@dataclass
class GetConfigReply:
    xid: int = 0
    flags: int = C.OFPC_FRAG_NORMAL
    miss_send_len: int = 128
    TYPE: ClassVar[int] = C.OFPT_GET_CONFIG_REPLY

    def encode_body(self):
        return struct.pack("!HH", self.flags, self.miss_send_len)


@dataclass
class PacketIn:
    """total_len None means len(data) (nothing was cut)."""
    xid: int = 0
    buffer_id: int = C.OFP_NO_BUFFER
    total_len: Optional[int] = None
    reason: int = C.OFPR_NO_MATCH
    table_id: int = 0
    cookie: int = 0
    match: M.Match = field(default_factory=M.Match)
    data: bytes = b""
    TYPE: ClassVar[int] = C.OFPT_PACKET_IN

    def encode_body(self, _pack=struct.Struct("!IHBBQ").pack):
        total = len(self.data) if self.total_len is None else self.total_len
        return b"".join((_pack(self.buffer_id, total, self.reason, self.table_id, self.cookie),
                         encode_match(self.match), b"\0\0", self.data))


# PACKET_IN in one step (the agent's packet-in path; see encode_packet_in).
# Header, body, an OXM match of in_port (padded to 16) or in_port+metadata
# (24, no pad), then the 2 pad bytes before the frame.
_PIN_PORT = struct.Struct("!BBHIIHBBQHHII4x2x")
_PIN_PORT_MD = struct.Struct("!BBHIIHBBQHHIIIQ2x")
_OXM_IN_PORT = 0x80000004                 # OFPXMC_OPENFLOW_BASIC, in_port, len 4
_OXM_METADATA = 0x80000408                # OFPXMC_OPENFLOW_BASIC, metadata, len 8


def packet_in_prefix(buffer_id, total_len, reason, table_id, cookie, in_port, metadata, data_len,
                     xid=0, _p=_PIN_PORT.pack, _pm=_PIN_PORT_MD.pack):
    """The bytes of a PACKET_IN before its data_len bytes of frame: the same
    as encode(PacketIn(xid, buffer_id, total_len, reason, table_id, cookie,
    Match in_port [+ metadata when non-zero], data))[:-data_len], without
    building the message objects.  ValueError past 65535 bytes."""
    if metadata:
        n = 50 + data_len
        if n > 0xFFFF:
            raise ValueError(f"message too long ({n} bytes)")
        return _pm(C.OFP_VERSION, C.OFPT_PACKET_IN, n, xid, buffer_id, total_len, reason,
                   table_id, cookie, C.OFPMT_OXM, 24, _OXM_IN_PORT, in_port, _OXM_METADATA,
                   metadata)
    n = 42 + data_len
    if n > 0xFFFF:
        raise ValueError(f"message too long ({n} bytes)")
    return _p(C.OFP_VERSION, C.OFPT_PACKET_IN, n, xid, buffer_id, total_len, reason, table_id,
              cookie, C.OFPMT_OXM, 12, _OXM_IN_PORT, in_port)


def encode_packet_in(buffer_id, total_len, reason, table_id, cookie, in_port, metadata, data,
                     xid=0):
    """One PACKET_IN (match: in_port, and metadata when non-zero) -> bytes."""
    return packet_in_prefix(buffer_id, total_len, reason, table_id, cookie, in_port, metadata,
                            len(data), xid) + data


@dataclass
class FlowRemoved:
    xid: int = 0
    cookie: int = 0
    priority: int = 0
    reason: int = C.OFPRR_IDLE_TIMEOUT
    table_id: int = 0
    duration_sec: int = 0
    duration_nsec: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    packet_count: int = 0
    byte_count: int = 0
    match: M.Match = field(default_factory=M.Match)
    TYPE: ClassVar[int] = C.OFPT_FLOW_REMOVED

    @classmethod
    def from_stats(cls, stats, reason, xid=0):
        """From a model.FlowStats (as Datapath.expire()/flow_delete() return)."""
        s = stats.spec
        return cls(xid, s.cookie, s.priority, reason, s.table_id,
                   stats.duration_ns // 1_000_000_000, stats.duration_ns % 1_000_000_000,
                   s.idle_timeout, s.hard_timeout, stats.packet_count, stats.byte_count, s.match)

    def encode_body(self):
        return struct.pack("!QHBBIIHHQQ", self.cookie, self.priority, self.reason, self.table_id,
                           self.duration_sec, self.duration_nsec, self.idle_timeout,
                           self.hard_timeout, self.packet_count, self.byte_count) + \
            encode_match(self.match)


@dataclass
class PortStatus:
    xid: int = 0
    reason: int = C.OFPPR_ADD
    desc: PortDesc = None
    TYPE: ClassVar[int] = C.OFPT_PORT_STATUS

    def encode_body(self):
        return struct.pack("!B7x", self.reason) + encode_port(self.desc)


@dataclass
class MultipartReply:
    """body: one structure for DESC/AGGREGATE/GROUP_FEATURES/METER_FEATURES/
    EXPERIMENTER, else a list of entries (see datapath.ofp.multipart)."""
    xid: int = 0
    type: int = C.OFPMP_DESC
    flags: int = 0
    body: object = None
    TYPE: ClassVar[int] = C.OFPT_MULTIPART_REPLY

    def encode_body(self):
        if self.type in SINGLE_BODY:
            entries = encode_reply_entry(self.type, self.body)
        else:
            entries = b"".join(encode_reply_entry(self.type, e) for e in self.body)
        return struct.pack("!HH4x", self.type, self.flags) + entries


@dataclass
class BarrierReply:
    xid: int = 0
    TYPE: ClassVar[int] = C.OFPT_BARRIER_REPLY

    def encode_body(self):
        return b""


@dataclass
class QueueGetConfigReply:
    xid: int = 0
    port: int = C.OFPP_ANY
    queues: tuple = ()                    # multipart.PacketQueue
    TYPE: ClassVar[int] = C.OFPT_QUEUE_GET_CONFIG_REPLY

    def encode_body(self):
        return struct.pack("!I4x", self.port) + b"".join(encode_packet_queue(q) for q in self.queues)


@dataclass
class RoleReply:
    xid: int = 0
    role: int = C.OFPCR_ROLE_EQUAL
    generation_id: int = 0
    TYPE: ClassVar[int] = C.OFPT_ROLE_REPLY

    def encode_body(self):
        return struct.pack("!I4xQ", self.role, self.generation_id)


@dataclass
class GetAsyncReply:
    xid: int = 0
    packet_in_mask: tuple = (0, 0)
    port_status_mask: tuple = (0, 0)
    flow_removed_mask: tuple = (0, 0)
    TYPE: ClassVar[int] = C.OFPT_GET_ASYNC_REPLY

    def encode_body(self):
        return struct.pack("!6I", *self.packet_in_mask, *self.port_status_mask, *self.flow_removed_mask)


# ---- encode -------------------------------------------------------------------------

def encode(msg):
    """One message -> bytes (ValueError if longer than 65535)."""
    body = msg.encode_body()
    version = msg.version if isinstance(msg, Hello) else C.OFP_VERSION
    return header(version, msg.TYPE, C.OFP_HEADER_SIZE + len(body), msg.xid) + body


_MP_ROOM = C.OFP_MAX_MSG_LEN - 16         # body bytes in one multipart reply


def encode_multipart_reply(xid, mp_type, body, flags=0):
    """A multipart reply as a list of messages: entries are packed into as few
    messages as fit in 64 KiB, every one but the last flagged
    OFPMPF_REPLY_MORE.  Single-structure types give one message."""
    if mp_type in SINGLE_BODY:
        return [encode(MultipartReply(xid, mp_type, flags, body))]
    chunks, cur, size = [], [], 0
    for e in body:
        b = encode_reply_entry(mp_type, e)
        if len(b) > _MP_ROOM:
            raise ValueError(f"multipart entry of {len(b)} bytes does not fit in a message")
        if size + len(b) > _MP_ROOM:
            chunks.append(cur)
            cur, size = [], 0
        cur.append(b)
        size += len(b)
    chunks.append(cur)
    out = []
    for i, chunk in enumerate(chunks):
        f = flags | (C.OFPMPF_REPLY_MORE if i < len(chunks) - 1 else 0)
        body_bytes = struct.pack("!HH4x", mp_type, f) + b"".join(chunk)
        out.append(header(C.OFP_VERSION, C.OFPT_MULTIPART_REPLY,
                          C.OFP_HEADER_SIZE + len(body_bytes), xid) + body_bytes)
    return out


# ---- decode -------------------------------------------------------------------------

def _hello(buf, xid, version):
    versions, elements = None, []
    off, end = 8, len(buf)
    # Elements exist from OpenFlow 1.3.1 on; an older hello's body is ignored.
    while version >= C.OFP_VERSION and off + 4 <= end:
        etype, elen = struct.unpack_from("!HH", buf, off)
        if elen < 4 or off + elen > end:
            raise _bad_len(f"hello element of length {elen}")
        data = buf[off + 4:off + elen]
        if etype == C.OFPHET_VERSIONBITMAP:
            if len(data) % 4:
                raise _bad_len("version bitmap not a multiple of 32 bits")
            bits = set(versions or ())
            for i in range(len(data) // 4):
                (w,) = struct.unpack_from("!I", data, 4 * i)
                bits.update(32 * i + b for b in range(32) if w >> b & 1)
            versions = frozenset(bits)
        else:
            elements.append((etype, bytes(data)))   # unknown elements are ignored (ofp_hello)
        off += pad8(elen)                           # a missing final pad is tolerated
    return Hello(xid, versions, version, tuple(elements))


def _error(buf, xid):
    _at_least(buf, 12, "error")
    etype, code = struct.unpack_from("!HH", buf, 8)
    if etype == C.OFPET_EXPERIMENTER:
        _at_least(buf, 16, "experimenter error")
        (exp,) = struct.unpack_from("!I", buf, 12)
        return ErrorMsg(xid, etype, code, bytes(buf[16:]), exp)
    return ErrorMsg(xid, etype, code, bytes(buf[12:]))


def _experimenter(buf, xid):
    _at_least(buf, 16, "experimenter")
    exp, exp_type = struct.unpack_from("!II", buf, 8)
    return Experimenter(xid, exp, exp_type, bytes(buf[16:]))


def _empty(cls, name):
    def dec(buf, xid):
        _exact(buf, 8, name)
        return cls(xid)
    return dec


def _set_config(buf, xid):
    _exact(buf, 12, "set_config")
    return SetConfig(xid, *struct.unpack_from("!HH", buf, 8))


_RESERVED_IN_PORTS = {C.OFPP_LOCAL, C.OFPP_CONTROLLER, C.OFPP_ANY}


def _packet_out(buf, xid):
    _at_least(buf, 24, "packet_out")
    buffer_id, in_port, actions_len = struct.unpack_from("!IIH", buf, 8)
    if in_port > C.OFPP_MAX and in_port not in _RESERVED_IN_PORTS:
        raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_PORT, reason=f"packet_out in_port {in_port:#x}")
    need(24, actions_len, len(buf), C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN, "actions past the message")
    actions = decode_actions(buf, 24, 24 + actions_len)
    return PacketOut(xid, buffer_id, in_port, actions, bytes(buf[24 + actions_len:]))


_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")


_OFPFF_BAD = ~C.OFPFF_ALL


def _flow_mod(buf, xid, _unpack=_FLOW_MOD.unpack_from, _FlowSpec=M.FlowSpec,
              _match=decode_flow_match, _insts=decode_instructions_basic):
    # The hot path of a controller installing flows: kept lean on purpose.
    end = len(buf)
    if end < 56:
        raise _bad_len(f"flow_mod of {end} bytes (want at least 56)")
    (cookie, cookie_mask, table_id, command, idle, hard, priority, buffer_id,
     out_port, out_group, flags) = _unpack(buf, 8)
    if command > C.OFPFC_DELETE_STRICT:
        raise OFPError(C.OFPET_FLOW_MOD_FAILED, C.OFPFMFC_BAD_COMMAND, reason=f"command {command}")
    if table_id == C.OFPTT_ALL and command < C.OFPFC_DELETE:
        raise OFPError(C.OFPET_FLOW_MOD_FAILED, C.OFPFMFC_BAD_TABLE_ID,
                       reason="OFPTT_ALL is only for deletes")
    if flags & _OFPFF_BAD:
        raise OFPError(C.OFPET_FLOW_MOD_FAILED, C.OFPFMFC_BAD_FLAGS, reason=f"flags {flags:#x}")
    match, off, basic = _match(buf, 48, end)   # prerequisites checked too
    insts, basic_insts = _insts(buf, off, end)
    spec = _FlowSpec(table_id, priority, match, insts, cookie, idle, hard, flags)
    return FlowMod(xid, command, spec, cookie_mask, buffer_id, out_port, out_group,
                   basic and basic_insts)


def _group_mod(buf, xid):
    _at_least(buf, 16, "group_mod")
    command, gtype, group_id = struct.unpack_from("!HBxI", buf, 8)

    def bad(code, reason):
        return OFPError(C.OFPET_GROUP_MOD_FAILED, code, reason=reason)
    if command > C.OFPGC_DELETE:
        raise bad(C.OFPGMFC_BAD_COMMAND, f"command {command}")
    if command == C.OFPGC_DELETE:
        if group_id > C.OFPG_MAX and group_id != C.OFPG_ALL:
            raise bad(C.OFPGMFC_INVALID_GROUP, f"group {group_id:#x}")
    else:
        if gtype > C.OFPGT_FF:
            raise bad(C.OFPGMFC_BAD_TYPE, f"group type {gtype}")
        if group_id > C.OFPG_MAX:
            raise bad(C.OFPGMFC_INVALID_GROUP, f"group {group_id:#x}")
    buckets = decode_buckets(buf, 16, len(buf))
    if command != C.OFPGC_DELETE and gtype == C.OFPGT_FF:
        for b in buckets:
            if b.watch_port == C.OFPP_ANY and b.watch_group == C.OFPG_ANY:
                raise bad(C.OFPGMFC_BAD_WATCH, "fast-failover bucket watches nothing")
    return GroupMod(xid, command, M.GroupSpec(group_id, gtype, buckets))


def _port_mod(buf, xid):
    _exact(buf, 40, "port_mod")
    port_no, hw, config, mask, advertise = struct.unpack_from("!I4x6s2xIII", buf, 8)
    return PortMod(xid, port_no, int.from_bytes(hw, "big"), config, mask, advertise)


def _table_mod(buf, xid):
    _exact(buf, 16, "table_mod")
    return TableMod(xid, *struct.unpack_from("!B3xI", buf, 8))


def _multipart_request(buf, xid):
    _at_least(buf, 16, "multipart_request")
    mp_type, flags = struct.unpack_from("!HH", buf, 8)
    return MultipartRequest(xid, mp_type, flags, decode_request_body(mp_type, buf, 16, len(buf)))


def _queue_get_config_request(buf, xid):
    _exact(buf, 16, "queue_get_config_request")
    (port,) = struct.unpack_from("!I", buf, 8)
    if port > C.OFPP_MAX and port != C.OFPP_ANY:
        raise OFPError(C.OFPET_QUEUE_OP_FAILED, C.OFPQOFC_BAD_PORT, reason=f"port {port:#x}")
    return QueueGetConfigRequest(xid, port)


def _role_request(buf, xid):
    _exact(buf, 24, "role_request")
    role, gen = struct.unpack_from("!I4xQ", buf, 8)
    if role > C.OFPCR_ROLE_SLAVE:
        raise OFPError(C.OFPET_ROLE_REQUEST_FAILED, C.OFPRRFC_BAD_ROLE, reason=f"role {role}")
    return RoleRequest(xid, role, gen)


def _set_async(buf, xid):
    _exact(buf, 32, "set_async")
    v = struct.unpack_from("!6I", buf, 8)
    return SetAsync(xid, v[0:2], v[2:4], v[4:6])


def _meter_mod(buf, xid):
    _at_least(buf, 16, "meter_mod")
    command, flags, meter_id = struct.unpack_from("!HHI", buf, 8)

    def bad(code, reason):
        return OFPError(C.OFPET_METER_MOD_FAILED, code, reason=reason)
    if command > C.OFPMC_DELETE:
        raise bad(C.OFPMMFC_BAD_COMMAND, f"command {command}")
    valid = (1 <= meter_id <= C.OFPM_MAX or meter_id in (C.OFPM_SLOWPATH, C.OFPM_CONTROLLER)
             or (command == C.OFPMC_DELETE and meter_id == C.OFPM_ALL))
    if not valid:
        raise bad(C.OFPMMFC_INVALID_METER, f"meter {meter_id:#x}")
    if command != C.OFPMC_DELETE:
        if flags & ~C.OFPMF_ALL or (flags & C.OFPMF_KBPS and flags & C.OFPMF_PKTPS):
            raise bad(C.OFPMMFC_BAD_FLAGS, f"flags {flags:#x}")
    bands = decode_bands(buf, 16, len(buf))
    return MeterMod(xid, command, M.MeterSpec(meter_id, flags, bands))


_DECODERS = {
    C.OFPT_ERROR: _error,
    C.OFPT_ECHO_REQUEST: lambda buf, xid: EchoRequest(xid, bytes(buf[8:])),
    C.OFPT_ECHO_REPLY: lambda buf, xid: EchoReply(xid, bytes(buf[8:])),
    C.OFPT_EXPERIMENTER: _experimenter,
    C.OFPT_FEATURES_REQUEST: _empty(FeaturesRequest, "features_request"),
    C.OFPT_GET_CONFIG_REQUEST: _empty(GetConfigRequest, "get_config_request"),
    C.OFPT_SET_CONFIG: _set_config,
    C.OFPT_PACKET_OUT: _packet_out,
    C.OFPT_FLOW_MOD: _flow_mod,
    C.OFPT_GROUP_MOD: _group_mod,
    C.OFPT_PORT_MOD: _port_mod,
    C.OFPT_TABLE_MOD: _table_mod,
    C.OFPT_MULTIPART_REQUEST: _multipart_request,
    C.OFPT_BARRIER_REQUEST: _empty(BarrierRequest, "barrier_request"),
    C.OFPT_QUEUE_GET_CONFIG_REQUEST: _queue_get_config_request,
    C.OFPT_ROLE_REQUEST: _role_request,
    C.OFPT_GET_ASYNC_REQUEST: _empty(GetAsyncRequest, "get_async_request"),
    C.OFPT_SET_ASYNC: _set_async,
    C.OFPT_METER_MOD: _meter_mod,
}


_OFPT_HELLO, _OFP_VERSION = C.OFPT_HELLO, C.OFP_VERSION     # (module globals: a bit faster)


def decode(data, _unpack=HEADER.unpack_from, _decoders=_DECODERS):
    """One whole OpenFlow message -> its dataclass; OFPError if malformed."""
    buf = data if type(data) is bytes else bytes(data)
    if len(buf) < C.OFP_HEADER_SIZE:
        raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN, buf, reason="shorter than a header")
    version, mtype, length, xid = _unpack(buf)
    try:
        if length != len(buf):
            raise _bad_len(f"header length {length}, message of {len(buf)} bytes")
        if mtype == _OFPT_HELLO:             # any version: this is how versions are negotiated
            return _hello(buf, xid, version)
        if version != _OFP_VERSION:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_VERSION, reason=f"version {version}")
        dec = _decoders.get(mtype)
        if dec is None:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_TYPE, reason=f"message type {mtype}")
        return dec(buf, xid)
    except OFPError as e:
        e.xid = xid
        if not e.data:
            e.data = buf[:C.OFP_ERROR_DATA_MAX]
        raise
