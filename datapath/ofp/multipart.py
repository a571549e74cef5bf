"""OpenFlow 1.3 multipart bodies, table features, port descriptions and queue configs.

Requests (controller -> switch) decode with decode_request_body(type, ...):
FLOW and AGGREGATE -> FlowStatsRequest, PORT_STATS -> PortStatsRequest,
QUEUE -> QueueStatsRequest, GROUP -> GroupStatsRequest, METER and
METER_CONFIG -> MeterStatsRequest, TABLE_FEATURES -> tuple of TableFeatures
(empty: "tell me"; not empty: "set these"), EXPERIMENTER ->
ExperimenterMultipart; the other types carry no body (None).

Replies (switch -> controller) encode with encode_reply_entry(type, entry):
DESC Desc, FLOW model.FlowStats, AGGREGATE AggregateStats, TABLE TableStats,
PORT_STATS PortStats, QUEUE QueueStats, GROUP GroupStats, GROUP_DESC
model.GroupSpec, GROUP_FEATURES GroupFeatures, METER MeterStats,
METER_CONFIG model.MeterSpec, METER_FEATURES MeterFeatures, TABLE_FEATURES
TableFeatures, PORT_DESC PortDesc, EXPERIMENTER ExperimenterMultipart.
messages.encode_multipart_reply() packs lists of entries into as many
messages as 64 KiB allows.

Called by messages.py.
"""
from __future__ import annotations

import struct
from typing import NamedTuple, Optional

from datapath import model as M

from . import consts as C
from .actions import encode_bands, encode_buckets, encode_instructions
from .codec import OFPError, U32, fixed_str, need, pad8, read_str, unpack
from .oxm import FIELD_BY_ID, FIELD_INFO, decode_match, encode_match, oxm_header

# ---- request bodies ----------------------------------------------------------


class FlowStatsRequest(NamedTuple):      # OFPMP_FLOW and OFPMP_AGGREGATE
    table_id: int = C.OFPTT_ALL
    out_port: int = C.OFPP_ANY
    out_group: int = C.OFPG_ANY
    cookie: int = 0
    cookie_mask: int = 0
    match: M.Match = None


class PortStatsRequest(NamedTuple):
    port_no: int = C.OFPP_ANY


class QueueStatsRequest(NamedTuple):
    port_no: int = C.OFPP_ANY
    queue_id: int = C.OFPQ_ALL


class GroupStatsRequest(NamedTuple):
    group_id: int = C.OFPG_ALL


class MeterStatsRequest(NamedTuple):     # OFPMP_METER and OFPMP_METER_CONFIG
    meter_id: int = C.OFPM_ALL


class ExperimenterMultipart(NamedTuple):  # request and reply body of OFPMP_EXPERIMENTER
    experimenter: int
    exp_type: int
    data: bytes = b""


# ---- reply bodies --------------------------------------------------------------

class Desc(NamedTuple):
    mfr_desc: str = ""
    hw_desc: str = ""
    sw_desc: str = ""
    serial_num: str = ""
    dp_desc: str = ""


class AggregateStats(NamedTuple):
    packet_count: int
    byte_count: int
    flow_count: int


class TableStats(NamedTuple):
    table_id: int
    active_count: int
    lookup_count: int
    matched_count: int


class PortStats(NamedTuple):
    port_no: int
    rx_packets: int = 0
    tx_packets: int = 0
    rx_bytes: int = 0
    tx_bytes: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0
    rx_errors: int = 0
    tx_errors: int = 0
    rx_frame_err: int = 0
    rx_over_err: int = 0
    rx_crc_err: int = 0
    collisions: int = 0
    duration_sec: int = 0
    duration_nsec: int = 0


class QueueStats(NamedTuple):
    port_no: int
    queue_id: int
    tx_bytes: int = 0
    tx_packets: int = 0
    tx_errors: int = 0
    duration_sec: int = 0
    duration_nsec: int = 0


class GroupStats(NamedTuple):
    group_id: int
    ref_count: int = 0
    packet_count: int = 0
    byte_count: int = 0
    duration_sec: int = 0
    duration_nsec: int = 0
    bucket_stats: tuple = ()             # ((packet_count, byte_count), ...) per bucket


class GroupFeatures(NamedTuple):
    types: int
    capabilities: int
    max_groups: tuple = (0, 0, 0, 0)     # per group type: all, select, indirect, ff
    actions: tuple = (0, 0, 0, 0)        # bitmaps of OFPAT_* per group type


class MeterStats(NamedTuple):
    meter_id: int
    flow_count: int = 0
    packet_in_count: int = 0
    byte_in_count: int = 0
    duration_sec: int = 0
    duration_nsec: int = 0
    band_stats: tuple = ()               # ((packet_band_count, byte_band_count), ...)


class MeterFeatures(NamedTuple):
    max_meter: int
    band_types: int
    capabilities: int
    max_bands: int
    max_color: int


class PortDesc(NamedTuple):
    """struct ofp_port (PORT_STATUS, PORT_DESC).  hw_addr: 48-bit int or 6 bytes."""
    port_no: int
    hw_addr: object = 0
    name: str = ""
    config: int = 0
    state: int = 0
    curr: int = 0
    advertised: int = 0
    supported: int = 0
    peer: int = 0
    curr_speed: int = 0
    max_speed: int = 0


_PORT = struct.Struct("!I4x6s2x16sIIIIIIII")


def mac_bytes(hw):
    return hw.to_bytes(6, "big") if isinstance(hw, int) else bytes(hw)


def encode_port(p):
    return _PORT.pack(p.port_no, mac_bytes(p.hw_addr), fixed_str(p.name, C.OFP_MAX_PORT_NAME_LEN),
                      p.config, p.state, p.curr, p.advertised, p.supported, p.peer,
                      p.curr_speed, p.max_speed)


# ---- queue configuration (QUEUE_GET_CONFIG_REPLY) ---------------------------

class QueueMinRate(NamedTuple):
    rate: int                            # 1/10 of a percent; > 1000 means disabled


class QueueMaxRate(NamedTuple):
    rate: int


class QueueExperimenter(NamedTuple):
    experimenter: int
    data: bytes = b""


class PacketQueue(NamedTuple):
    queue_id: int
    port: int
    properties: tuple = ()


def encode_queue_prop(p):
    if isinstance(p, (QueueMinRate, QueueMaxRate)):
        prop = C.OFPQT_MIN_RATE if isinstance(p, QueueMinRate) else C.OFPQT_MAX_RATE
        return struct.pack("!HH4xH6x", prop, 16, p.rate)
    data = p.data + b"\0" * (pad8(len(p.data)) - len(p.data))
    return struct.pack("!HH4xI4x", C.OFPQT_EXPERIMENTER, 16 + len(data), p.experimenter) + data


def encode_packet_queue(q):
    props = b"".join(encode_queue_prop(p) for p in q.properties)
    return struct.pack("!IIH6x", q.queue_id, q.port, 16 + len(props)) + props


# ---- table features ------------------------------------------------------------

class OxmId(NamedTuple):
    """An OXM header in a table-features property (no value).

    For OFPTFPT_MATCH / OFPTFPT_WILDCARDS hasmask says the field may be
    masked.  length is kept as received (implementations disagree on it:
    os-ken sends 0); OxmId.of() uses the payload length, doubled if masked."""
    oxm_class: int
    field: int
    hasmask: bool = False
    length: int = 0
    experimenter: Optional[int] = None

    @classmethod
    def of(cls, name, hasmask=False):
        fid, size, _, _, _ = FIELD_INFO[name]
        return cls(C.OFPXMC_OPENFLOW_BASIC, fid, hasmask, size * (2 if hasmask else 1))

    @property
    def name(self):
        if self.oxm_class == C.OFPXMC_OPENFLOW_BASIC:
            return FIELD_BY_ID.get(self.field)
        return None


class RawId(NamedTuple):
    """An instruction or action id longer than the 4-byte (type, len) form,
    i.e. an experimenter one: type plus the bytes after the header."""
    type: int
    data: bytes = b""


class TFInstructions(NamedTuple):        # OFPTFPT_INSTRUCTIONS(_MISS)
    type: int
    ids: tuple = ()                      # OFPIT_* ints, or RawId


class TFNextTables(NamedTuple):          # OFPTFPT_NEXT_TABLES(_MISS)
    type: int
    table_ids: tuple = ()


class TFActions(NamedTuple):             # OFPTFPT_{WRITE,APPLY}_ACTIONS(_MISS)
    type: int
    ids: tuple = ()                      # OFPAT_* ints, or RawId


class TFOxm(NamedTuple):                 # MATCH, WILDCARDS, {WRITE,APPLY}_SETFIELD(_MISS)
    type: int
    oxm_ids: tuple = ()                  # OxmId


class TFExperimenter(NamedTuple):        # OFPTFPT_EXPERIMENTER(_MISS)
    type: int
    experimenter: int
    exp_type: int
    data: bytes = b""


class TableFeatures(NamedTuple):
    table_id: int
    name: str = ""
    metadata_match: int = 0
    metadata_write: int = 0
    config: int = 0
    max_entries: int = 0
    properties: tuple = ()


_TF_INST = {C.OFPTFPT_INSTRUCTIONS, C.OFPTFPT_INSTRUCTIONS_MISS}
_TF_NEXT = {C.OFPTFPT_NEXT_TABLES, C.OFPTFPT_NEXT_TABLES_MISS}
_TF_ACT = {C.OFPTFPT_WRITE_ACTIONS, C.OFPTFPT_WRITE_ACTIONS_MISS,
           C.OFPTFPT_APPLY_ACTIONS, C.OFPTFPT_APPLY_ACTIONS_MISS}
_TF_OXM = {C.OFPTFPT_MATCH, C.OFPTFPT_WILDCARDS, C.OFPTFPT_WRITE_SETFIELD,
           C.OFPTFPT_WRITE_SETFIELD_MISS, C.OFPTFPT_APPLY_SETFIELD, C.OFPTFPT_APPLY_SETFIELD_MISS}
_TF_EXP = {C.OFPTFPT_EXPERIMENTER, C.OFPTFPT_EXPERIMENTER_MISS}

_TL = struct.Struct("!HH")
_II = struct.Struct("!II")
_TABLE_FEATURES = struct.Struct("!HB5x32sQQII")


def _tf_bad(code, reason):
    return OFPError(C.OFPET_TABLE_FEATURES_FAILED, code, reason=reason)


def _decode_ids(buf, off, end):
    ids = []
    while off < end:
        t, n = unpack(_TL, buf, off, end, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN)
        if n < 4:
            raise _tf_bad(C.OFPTFFC_BAD_LEN, f"id of length {n}")
        need(off, n, end, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN, "id past its property")
        ids.append(t if n == 4 else RawId(t, bytes(buf[off + 4:off + n])))
        off += n
    return tuple(ids)


def _decode_oxm_ids(buf, off, end):
    ids = []
    while off < end:
        (h,) = unpack(U32, buf, off, end, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN)
        cls = h >> 16
        exp = None
        if cls == C.OFPXMC_EXPERIMENTER:
            (exp,) = unpack(U32, buf, off + 4, end, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN)
            off += 4
        ids.append(OxmId(cls, (h >> 9) & 0x7F, bool(h & 0x100), h & 0xFF, exp))
        off += 4
    return tuple(ids)


def decode_table_feature_prop(buf, off, end):
    """One ofp_table_feature_prop_* at buf[off:] -> (property, offset after padding)."""
    ptype, plen = unpack(_TL, buf, off, end, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN)
    if plen < 4:
        raise _tf_bad(C.OFPTFFC_BAD_LEN, f"property of length {plen}")
    need(off, pad8(plen), end, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN, "property past its table")
    body, pend = off + 4, off + plen
    if ptype in _TF_INST:
        prop = TFInstructions(ptype, _decode_ids(buf, body, pend))
    elif ptype in _TF_NEXT:
        prop = TFNextTables(ptype, tuple(buf[body:pend]))
    elif ptype in _TF_ACT:
        prop = TFActions(ptype, _decode_ids(buf, body, pend))
    elif ptype in _TF_OXM:
        prop = TFOxm(ptype, _decode_oxm_ids(buf, body, pend))
    elif ptype in _TF_EXP:
        exp, exp_type = unpack(_II, buf, body, pend, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN)
        prop = TFExperimenter(ptype, exp, exp_type, bytes(buf[body + 8:pend]))
    else:
        raise _tf_bad(C.OFPTFFC_BAD_TYPE, f"table feature property type {ptype}")
    return prop, off + pad8(plen)


def decode_table_features(buf, off, end):
    """ofp_table_features at buf[off:] -> (TableFeatures, offset after it)."""
    (length, table_id, name, md_match, md_write, config, max_entries) = unpack(
        _TABLE_FEATURES, buf, off, end, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN)
    if length < _TABLE_FEATURES.size or length % 8:
        raise _tf_bad(C.OFPTFFC_BAD_LEN, f"table features of length {length}")
    need(off, length, end, C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_BAD_LEN,
         "table features past the message")
    props = []
    p, pend = off + _TABLE_FEATURES.size, off + length
    while p < pend:
        prop, p = decode_table_feature_prop(buf, p, pend)
        props.append(prop)
    return TableFeatures(table_id, read_str(name), md_match, md_write, config, max_entries,
                         tuple(props)), off + length


def _encode_id(i):
    if isinstance(i, RawId):
        return _TL.pack(i.type, 4 + len(i.data)) + i.data
    return _TL.pack(i, 4)


def _encode_oxm_id(o):
    b = U32.pack(oxm_header(o.oxm_class, o.field, o.hasmask, o.length))
    return b + (U32.pack(o.experimenter) if o.experimenter is not None else b"")


def encode_table_feature_prop(p):
    if isinstance(p, (TFInstructions, TFActions)):
        body = b"".join(_encode_id(i) for i in p.ids)
    elif isinstance(p, TFNextTables):
        body = bytes(p.table_ids)
    elif isinstance(p, TFOxm):
        body = b"".join(_encode_oxm_id(o) for o in p.oxm_ids)
    elif isinstance(p, TFExperimenter):
        body = struct.pack("!II", p.experimenter, p.exp_type) + p.data
    else:
        raise TypeError(f"not a table feature property: {p!r}")
    n = 4 + len(body)
    return _TL.pack(p.type, n) + body + b"\0" * (pad8(n) - n)


def encode_table_features(t):
    props = b"".join(encode_table_feature_prop(p) for p in t.properties)
    return _TABLE_FEATURES.pack(_TABLE_FEATURES.size + len(props), t.table_id,
                                fixed_str(t.name, C.OFP_MAX_TABLE_NAME_LEN), t.metadata_match,
                                t.metadata_write, t.config, t.max_entries) + props


# ---- requests: decode ------------------------------------------------------------

_FLOW_REQ = struct.Struct("!B3xII4xQQ")
_EMPTY_BODY = {C.OFPMP_DESC, C.OFPMP_TABLE, C.OFPMP_GROUP_DESC, C.OFPMP_GROUP_FEATURES,
               C.OFPMP_METER_FEATURES, C.OFPMP_PORT_DESC}


def _fixed(st, buf, off, end):
    if end - off != st.size:
        raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN,
                       reason=f"multipart body of {end - off} bytes (want {st.size})")
    return st.unpack_from(buf, off)


_PORT_REQ = struct.Struct("!I4x")
_QUEUE_REQ = struct.Struct("!II")


def decode_request_body(mp_type, buf, off, end):
    """The body of a multipart request of type mp_type in buf[off:end]."""
    if mp_type in _EMPTY_BODY:
        if end != off:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN,
                           reason=f"multipart type {mp_type} takes no body")
        return None
    if mp_type in (C.OFPMP_FLOW, C.OFPMP_AGGREGATE):
        table_id, out_port, out_group, cookie, cookie_mask = unpack(
            _FLOW_REQ, buf, off, end, C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN)
        match, moff = decode_match(buf, off + _FLOW_REQ.size, end)
        if moff != end:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN, reason="bytes after the match")
        return FlowStatsRequest(table_id, out_port, out_group, cookie, cookie_mask, match)
    if mp_type == C.OFPMP_PORT_STATS:
        return PortStatsRequest(*_fixed(_PORT_REQ, buf, off, end))
    if mp_type == C.OFPMP_QUEUE:
        return QueueStatsRequest(*_fixed(_QUEUE_REQ, buf, off, end))
    if mp_type == C.OFPMP_GROUP:
        return GroupStatsRequest(*_fixed(_PORT_REQ, buf, off, end))
    if mp_type in (C.OFPMP_METER, C.OFPMP_METER_CONFIG):
        return MeterStatsRequest(*_fixed(_PORT_REQ, buf, off, end))
    if mp_type == C.OFPMP_TABLE_FEATURES:
        tables = []
        while off < end:
            t, off = decode_table_features(buf, off, end)
            tables.append(t)
        return tuple(tables)
    if mp_type == C.OFPMP_EXPERIMENTER:
        exp, exp_type = unpack(_II, buf, off, end, C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN)
        return ExperimenterMultipart(exp, exp_type, bytes(buf[off + 8:end]))
    raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_MULTIPART, reason=f"multipart type {mp_type}")


def encode_request_body(mp_type, body):
    """Inverse of decode_request_body (tests, tools)."""
    if mp_type in _EMPTY_BODY:
        return b""
    if mp_type in (C.OFPMP_FLOW, C.OFPMP_AGGREGATE):
        return _FLOW_REQ.pack(body.table_id, body.out_port, body.out_group, body.cookie,
                              body.cookie_mask) + encode_match(body.match)
    if mp_type == C.OFPMP_PORT_STATS:
        return _PORT_REQ.pack(body.port_no)
    if mp_type == C.OFPMP_QUEUE:
        return _QUEUE_REQ.pack(body.port_no, body.queue_id)
    if mp_type == C.OFPMP_GROUP:
        return _PORT_REQ.pack(body.group_id)
    if mp_type in (C.OFPMP_METER, C.OFPMP_METER_CONFIG):
        return _PORT_REQ.pack(body.meter_id)
    if mp_type == C.OFPMP_TABLE_FEATURES:
        return b"".join(encode_table_features(t) for t in body)
    if mp_type == C.OFPMP_EXPERIMENTER:
        return struct.pack("!II", body.experimenter, body.exp_type) + body.data
    raise ValueError(f"multipart type {mp_type}")


# ---- replies: encode ---------------------------------------------------------------

# Reply types whose body is one structure rather than an array of entries.
SINGLE_BODY = {C.OFPMP_DESC, C.OFPMP_AGGREGATE, C.OFPMP_GROUP_FEATURES,
               C.OFPMP_METER_FEATURES, C.OFPMP_EXPERIMENTER}


def _sec_nsec(ns):
    return ns // 1_000_000_000, ns % 1_000_000_000


def _flow_stats(fs):
    s = fs.spec
    sec, nsec = _sec_nsec(fs.duration_ns)
    tail = encode_match(s.match) + encode_instructions(s.instructions)
    return struct.pack("!HBxIIHHHH4xQQQ", 48 + len(tail), s.table_id, sec, nsec, s.priority,
                       s.idle_timeout, s.hard_timeout, s.flags, s.cookie,
                       fs.packet_count, fs.byte_count) + tail


def _group_stats(g):
    bs = b"".join(struct.pack("!QQ", p, b) for p, b in g.bucket_stats)
    return struct.pack("!H2xII4xQQII", 40 + len(bs), g.group_id, g.ref_count, g.packet_count,
                       g.byte_count, g.duration_sec, g.duration_nsec) + bs


def _group_desc(g):
    bs = encode_buckets(g.buckets)
    return struct.pack("!HBxI", 8 + len(bs), g.type, g.group_id) + bs


def _meter_stats(m):
    bs = b"".join(struct.pack("!QQ", p, b) for p, b in m.band_stats)
    return struct.pack("!IH6xIQQII", m.meter_id, 40 + len(bs), m.flow_count, m.packet_in_count,
                       m.byte_in_count, m.duration_sec, m.duration_nsec) + bs


def _meter_config(m):
    bs = encode_bands(m.bands)
    return struct.pack("!HHI", 8 + len(bs), m.flags, m.meter_id) + bs


def _desc(d):
    L, S = C.DESC_STR_LEN, C.SERIAL_NUM_LEN
    return (fixed_str(d.mfr_desc, L) + fixed_str(d.hw_desc, L) + fixed_str(d.sw_desc, L)
            + fixed_str(d.serial_num, S) + fixed_str(d.dp_desc, L))


_REPLY_ENCODERS = {
    C.OFPMP_DESC: _desc,
    C.OFPMP_FLOW: _flow_stats,
    C.OFPMP_AGGREGATE: lambda a: struct.pack("!QQI4x", a.packet_count, a.byte_count, a.flow_count),
    C.OFPMP_TABLE: lambda t: struct.pack("!B3xIQQ", t.table_id, t.active_count, t.lookup_count,
                                         t.matched_count),
    C.OFPMP_PORT_STATS: lambda p: struct.pack("!I4x12QII", *p),
    C.OFPMP_QUEUE: lambda q: struct.pack("!IIQQQII", *q),
    C.OFPMP_GROUP: _group_stats,
    C.OFPMP_GROUP_DESC: _group_desc,
    C.OFPMP_GROUP_FEATURES: lambda g: struct.pack("!II4I4I", g.types, g.capabilities,
                                                  *g.max_groups, *g.actions),
    C.OFPMP_METER: _meter_stats,
    C.OFPMP_METER_CONFIG: _meter_config,
    C.OFPMP_METER_FEATURES: lambda m: struct.pack("!IIIBB2x", *m),
    C.OFPMP_TABLE_FEATURES: encode_table_features,
    C.OFPMP_PORT_DESC: encode_port,
    C.OFPMP_EXPERIMENTER: lambda e: struct.pack("!II", e.experimenter, e.exp_type) + e.data,
}


def encode_reply_entry(mp_type, entry):
    """One entry (or the single structure) of a multipart reply body."""
    enc = _REPLY_ENCODERS.get(mp_type)
    if enc is None:
        raise ValueError(f"multipart type {mp_type}")
    return enc(entry)
