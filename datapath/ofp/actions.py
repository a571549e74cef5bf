"""OpenFlow 1.3 actions, instructions, group buckets and meter bands <-> datapath.model.

Actions decode to the model's NamedTuples (Output, SetField, PushVlan, ...),
instructions to GotoTable/WriteMetadata/ApplyActions/WriteActions/
ClearActions/Meter, buckets to model.Bucket and bands to model.Band.
Experimenter actions, instructions and bands stay opaque
(ExperimenterAction, ExperimenterInstruction, ExperimenterBand) and encode
back to the same bytes; the pipeline supports none, so the agent answers
BAD_EXPERIMENTER for them.

Only what is wrong on the wire, whatever the switch's state, is rejected
here (lengths, unknown types, values outside the field, reserved ports and
groups that can never be a destination).  Checks that need the switch
(does the port/group/meter/table exist) belong to the agent.

Called by messages.py (packet-out, flow-mod, group-mod, meter-mod) and
multipart.py (flow stats, group desc, meter config).
"""
from __future__ import annotations

import struct
from typing import NamedTuple

from datapath import model as M

from . import consts as C
from .codec import OFPError, U32, need, pad8, unpack
from .oxm import decode_set_field, encode_oxm

_TL = struct.Struct("!HH")                # type, len of every action/instruction


class ExperimenterAction(NamedTuple):
    experimenter: int
    data: bytes = b""      # everything after the experimenter id, padding included


class ExperimenterInstruction(NamedTuple):
    experimenter: int
    data: bytes = b""


class ExperimenterBand(NamedTuple):
    rate: int
    burst_size: int
    experimenter: int
    data: bytes = b""

    @property
    def type(self):
        return C.OFPMBT_EXPERIMENTER


# ---- actions ---------------------------------------------------------------

def _bad_action(code, reason):
    return OFPError(C.OFPET_BAD_ACTION, code, reason=reason)


_VALID_RESERVED_OUT = {C.OFPP_IN_PORT, C.OFPP_TABLE, C.OFPP_NORMAL, C.OFPP_FLOOD,
                       C.OFPP_ALL, C.OFPP_CONTROLLER, C.OFPP_LOCAL}


def _exact(alen, want, name):
    if alen != want:
        raise _bad_action(C.OFPBAC_BAD_LEN, f"{name} of length {alen} (want {want})")


def _output(buf, off, alen):
    _exact(alen, 16, "output")
    port, max_len = struct.unpack_from("!IH", buf, off + 4)
    if port > C.OFPP_MAX and port not in _VALID_RESERVED_OUT:
        raise _bad_action(C.OFPBAC_BAD_OUT_PORT, f"output to port {port:#x}")
    return M.Output(port, max_len)


def _no_arg(cls, name):
    def dec(buf, off, alen):
        _exact(alen, 8, name)
        return cls()
    return dec


def _ttl(cls, name):
    def dec(buf, off, alen):
        _exact(alen, 8, name)
        return cls(buf[off + 4])
    return dec


def _ethertype(cls, name, allowed):
    def dec(buf, off, alen):
        _exact(alen, 8, name)
        (et,) = struct.unpack_from("!H", buf, off + 4)
        if allowed and et not in allowed:
            raise _bad_action(C.OFPBAC_BAD_ARGUMENT, f"{name} ethertype {et:#06x}")
        return cls(et)
    return dec


def _set_queue(buf, off, alen):
    _exact(alen, 8, "set_queue")
    return M.SetQueue(U32.unpack_from(buf, off + 4)[0])


def _group(buf, off, alen):
    _exact(alen, 8, "group")
    (gid,) = U32.unpack_from(buf, off + 4)
    if gid > C.OFPG_MAX:
        raise _bad_action(C.OFPBAC_BAD_OUT_GROUP, f"group action to {gid:#x}")
    return M.Group(gid)


def _set_field(buf, off, alen):
    field, value = decode_set_field(buf, off + 4, off + alen)
    return M.SetField(field, value)


def _experimenter(buf, off, alen):
    (exp,) = U32.unpack_from(buf, off + 4)
    return ExperimenterAction(exp, bytes(buf[off + 8:off + alen]))


_ACTION_DECODERS = {
    C.OFPAT_OUTPUT: _output,
    C.OFPAT_COPY_TTL_OUT: _no_arg(M.CopyTtlOut, "copy_ttl_out"),
    C.OFPAT_COPY_TTL_IN: _no_arg(M.CopyTtlIn, "copy_ttl_in"),
    C.OFPAT_SET_MPLS_TTL: _ttl(M.SetMplsTtl, "set_mpls_ttl"),
    C.OFPAT_DEC_MPLS_TTL: _no_arg(M.DecMplsTtl, "dec_mpls_ttl"),
    C.OFPAT_PUSH_VLAN: _ethertype(M.PushVlan, "push_vlan", (0x8100, 0x88A8)),
    C.OFPAT_POP_VLAN: _no_arg(M.PopVlan, "pop_vlan"),
    C.OFPAT_PUSH_MPLS: _ethertype(M.PushMpls, "push_mpls", (0x8847, 0x8848)),
    C.OFPAT_POP_MPLS: _ethertype(M.PopMpls, "pop_mpls", None),
    C.OFPAT_SET_QUEUE: _set_queue,
    C.OFPAT_GROUP: _group,
    C.OFPAT_SET_NW_TTL: _ttl(M.SetNwTtl, "set_nw_ttl"),
    C.OFPAT_DEC_NW_TTL: _no_arg(M.DecNwTtl, "dec_nw_ttl"),
    C.OFPAT_SET_FIELD: _set_field,
    C.OFPAT_PUSH_PBB: _ethertype(M.PushPbb, "push_pbb", (0x88E7,)),
    C.OFPAT_POP_PBB: _no_arg(M.PopPbb, "pop_pbb"),
    C.OFPAT_EXPERIMENTER: _experimenter,
}


def decode_actions(buf, off, end):
    """The action list in buf[off:end] -> tuple of model actions."""
    actions = []
    while off < end:
        atype, alen = unpack(_TL, buf, off, end, C.OFPET_BAD_ACTION, C.OFPBAC_BAD_LEN)
        dec = _ACTION_DECODERS.get(atype)
        if dec is None:
            raise _bad_action(C.OFPBAC_BAD_TYPE, f"action type {atype}")
        if alen < 8 or alen % 8:
            raise _bad_action(C.OFPBAC_BAD_LEN, f"action length {alen}")
        need(off, alen, end, C.OFPET_BAD_ACTION, C.OFPBAC_BAD_LEN, "action past its list")
        actions.append(dec(buf, off, alen))
        off += alen
    return tuple(actions)


def _hdr8(atype):
    return struct.pack("!HH4x", atype, 8)


_NO_ARG_TYPES = {M.CopyTtlOut: C.OFPAT_COPY_TTL_OUT, M.CopyTtlIn: C.OFPAT_COPY_TTL_IN,
                 M.DecMplsTtl: C.OFPAT_DEC_MPLS_TTL, M.PopVlan: C.OFPAT_POP_VLAN,
                 M.DecNwTtl: C.OFPAT_DEC_NW_TTL, M.PopPbb: C.OFPAT_POP_PBB}
_ETHERTYPE_TYPES = {M.PushVlan: C.OFPAT_PUSH_VLAN, M.PushMpls: C.OFPAT_PUSH_MPLS,
                    M.PopMpls: C.OFPAT_POP_MPLS, M.PushPbb: C.OFPAT_PUSH_PBB}


def encode_action(a):
    t = type(a)
    if t is M.Output:
        return struct.pack("!HHIH6x", C.OFPAT_OUTPUT, 16, a.port, a.max_len)
    if t is M.SetField:
        oxm = encode_oxm(a.field, a.value)
        n = pad8(4 + len(oxm))
        return struct.pack("!HH", C.OFPAT_SET_FIELD, n) + oxm + b"\0" * (n - 4 - len(oxm))
    if t in _NO_ARG_TYPES:
        return _hdr8(_NO_ARG_TYPES[t])
    if t in _ETHERTYPE_TYPES:
        return struct.pack("!HHH2x", _ETHERTYPE_TYPES[t], 8, a.ethertype)
    if t is M.SetMplsTtl:
        return struct.pack("!HHB3x", C.OFPAT_SET_MPLS_TTL, 8, a.ttl)
    if t is M.SetNwTtl:
        return struct.pack("!HHB3x", C.OFPAT_SET_NW_TTL, 8, a.ttl)
    if t is M.SetQueue:
        return struct.pack("!HHI", C.OFPAT_SET_QUEUE, 8, a.queue_id)
    if t is M.Group:
        return struct.pack("!HHI", C.OFPAT_GROUP, 8, a.group_id)
    if t is ExperimenterAction:
        data = a.data + b"\0" * (pad8(len(a.data)) - len(a.data))
        return struct.pack("!HHI", C.OFPAT_EXPERIMENTER, 8 + len(data), a.experimenter) + data
    raise TypeError(f"not an action: {a!r}")


def encode_actions(actions):
    return b"".join(encode_action(a) for a in actions)


# ---- instructions ----------------------------------------------------------

def _bad_inst(code, reason):
    return OFPError(C.OFPET_BAD_INSTRUCTION, code, reason=reason)


_INST_TYPES = {C.OFPIT_GOTO_TABLE, C.OFPIT_WRITE_METADATA, C.OFPIT_WRITE_ACTIONS,
               C.OFPIT_APPLY_ACTIONS, C.OFPIT_CLEAR_ACTIONS, C.OFPIT_METER,
               C.OFPIT_EXPERIMENTER}
_INST_FIXED_LEN = {C.OFPIT_GOTO_TABLE: 8, C.OFPIT_WRITE_METADATA: 24,
                   C.OFPIT_CLEAR_ACTIONS: 8, C.OFPIT_METER: 8}


# Flow-mods from one controller mostly repeat a few instruction lists
# (output:2, goto_table:1, ...): the decoded tuple (immutable all the way
# down: NamedTuples, tuples, ints, bytes) is kept per raw bytes and shared,
# with whether it holds any experimenter instruction or action.  Only lists
# that decoded without error are kept; the cache is emptied when it reaches
# _INST_CACHE_MAX entries.
_INST_CACHE = {}
_INST_CACHE_MAX = 4096
_INST_CACHE_MAX_BYTES = 512          # longer lists are decoded every time


def decode_instructions(buf, off, end):
    """The instruction list in buf[off:end] -> tuple of model instructions
    (see _decode_instructions)."""
    return decode_instructions_basic(buf, off, end)[0]


def decode_instructions_basic(buf, off, end):
    """(instructions, basic): basic is True when no instruction or action in
    the list is an experimenter one (what a switch must refuse or handle)."""
    if end - off > _INST_CACHE_MAX_BYTES:
        insts = _decode_instructions(buf, off, end)
        return insts, _basic(insts)
    raw = buf[off:end]
    if type(raw) is not bytes:
        raw = bytes(raw)
    hit = _INST_CACHE.get(raw)
    if hit is None:
        insts = _decode_instructions(buf, off, end)
        if len(_INST_CACHE) >= _INST_CACHE_MAX:
            _INST_CACHE.clear()
        hit = _INST_CACHE[raw] = (insts, _basic(insts))
    return hit


def _basic(insts):
    for i in insts:
        if isinstance(i, ExperimenterInstruction):
            return False
        if isinstance(i, (M.ApplyActions, M.WriteActions)):
            for a in i.actions:
                if isinstance(a, ExperimenterAction):
                    return False
    return True


def _decode_instructions(buf, off, end):
    """The instruction list in buf[off:end] -> tuple of model instructions.

    A repeated instruction type has no OpenFlow 1.3 code; it is reported as
    the ONF extension error (OFPET_EXPERIMENTER, ONFERR_DUP_INSTRUCTION,
    experimenter ONF) as Open vSwitch does for 1.3."""
    insts = []
    seen = set()
    while off < end:
        itype, ilen = unpack(_TL, buf, off, end, C.OFPET_BAD_INSTRUCTION, C.OFPBIC_BAD_LEN)
        if itype not in _INST_TYPES:
            raise _bad_inst(C.OFPBIC_UNKNOWN_INST, f"instruction type {itype}")
        if ilen < 8 or ilen % 8 or _INST_FIXED_LEN.get(itype, ilen) != ilen:
            raise _bad_inst(C.OFPBIC_BAD_LEN, f"instruction {itype} of length {ilen}")
        need(off, ilen, end, C.OFPET_BAD_INSTRUCTION, C.OFPBIC_BAD_LEN, "instruction past its list")
        if itype != C.OFPIT_EXPERIMENTER:
            if itype in seen:
                raise OFPError(C.OFPET_EXPERIMENTER, C.ONFERR_DUP_INSTRUCTION,
                               experimenter=C.ONF_EXPERIMENTER_ID,
                               reason=f"instruction {itype} repeated")
            seen.add(itype)
        if itype == C.OFPIT_GOTO_TABLE:
            table_id = buf[off + 4]
            if table_id > C.OFPTT_MAX:
                raise _bad_inst(C.OFPBIC_BAD_TABLE_ID, f"goto_table {table_id}")
            insts.append(M.GotoTable(table_id))
        elif itype == C.OFPIT_WRITE_METADATA:
            md, mask = struct.unpack_from("!QQ", buf, off + 8)
            insts.append(M.WriteMetadata(md, mask))
        elif itype == C.OFPIT_WRITE_ACTIONS:
            insts.append(M.WriteActions(decode_actions(buf, off + 8, off + ilen)))
        elif itype == C.OFPIT_APPLY_ACTIONS:
            insts.append(M.ApplyActions(decode_actions(buf, off + 8, off + ilen)))
        elif itype == C.OFPIT_CLEAR_ACTIONS:
            insts.append(M.ClearActions())
        elif itype == C.OFPIT_METER:
            insts.append(M.Meter(U32.unpack_from(buf, off + 4)[0]))
        else:
            (exp,) = U32.unpack_from(buf, off + 4)
            insts.append(ExperimenterInstruction(exp, bytes(buf[off + 8:off + ilen])))
        off += ilen
    return tuple(insts)


def encode_instruction(i):
    t = type(i)
    if t is M.GotoTable:
        return struct.pack("!HHB3x", C.OFPIT_GOTO_TABLE, 8, i.table_id)
    if t is M.WriteMetadata:
        return struct.pack("!HH4xQQ", C.OFPIT_WRITE_METADATA, 24, i.metadata, i.mask)
    if t is M.ApplyActions or t is M.WriteActions:
        acts = encode_actions(i.actions)
        itype = C.OFPIT_APPLY_ACTIONS if t is M.ApplyActions else C.OFPIT_WRITE_ACTIONS
        return struct.pack("!HH4x", itype, 8 + len(acts)) + acts
    if t is M.ClearActions:
        return struct.pack("!HH4x", C.OFPIT_CLEAR_ACTIONS, 8)
    if t is M.Meter:
        return struct.pack("!HHI", C.OFPIT_METER, 8, i.meter_id)
    if t is ExperimenterInstruction:
        data = i.data + b"\0" * (pad8(len(i.data)) - len(i.data))
        return struct.pack("!HHI", C.OFPIT_EXPERIMENTER, 8 + len(data), i.experimenter) + data
    raise TypeError(f"not an instruction: {i!r}")


def encode_instructions(insts):
    return b"".join(encode_instruction(i) for i in insts)


# ---- group buckets -----------------------------------------------------------

_BUCKET = struct.Struct("!HHII4x")


def decode_buckets(buf, off, end):
    """ofp_bucket list in buf[off:end] -> tuple of model.Bucket.
    Bucket framing errors are OFPET_GROUP_MOD_FAILED/OFPGMFC_BAD_BUCKET."""
    buckets = []
    while off < end:
        blen, weight, watch_port, watch_group = unpack(
            _BUCKET, buf, off, end, C.OFPET_GROUP_MOD_FAILED, C.OFPGMFC_BAD_BUCKET)
        if blen < _BUCKET.size or blen % 8:
            raise OFPError(C.OFPET_GROUP_MOD_FAILED, C.OFPGMFC_BAD_BUCKET, reason=f"bucket length {blen}")
        need(off, blen, end, C.OFPET_GROUP_MOD_FAILED, C.OFPGMFC_BAD_BUCKET, "bucket past the message")
        actions = decode_actions(buf, off + _BUCKET.size, off + blen)
        buckets.append(M.Bucket(actions, weight, watch_port, watch_group))
        off += blen
    return tuple(buckets)


def encode_bucket(b):
    acts = encode_actions(b.actions)
    return _BUCKET.pack(_BUCKET.size + len(acts), b.weight, b.watch_port, b.watch_group) + acts


def encode_buckets(buckets):
    return b"".join(encode_bucket(b) for b in buckets)


# ---- meter bands ---------------------------------------------------------------

_BAND = struct.Struct("!HHII")            # type, len, rate, burst_size


def decode_bands(buf, off, end):
    """ofp_meter_band list in buf[off:end] -> tuple of model.Band / ExperimenterBand.
    Errors are OFPET_METER_MOD_FAILED/OFPMMFC_BAD_BAND."""
    def bad(reason):
        return OFPError(C.OFPET_METER_MOD_FAILED, C.OFPMMFC_BAD_BAND, reason=reason)
    bands = []
    while off < end:
        btype, blen, rate, burst = unpack(_BAND, buf, off, end, C.OFPET_METER_MOD_FAILED, C.OFPMMFC_BAD_BAND)
        if btype == C.OFPMBT_EXPERIMENTER:
            if blen < 16 or blen % 8:
                raise bad(f"experimenter band of length {blen}")
        elif btype in (C.OFPMBT_DROP, C.OFPMBT_DSCP_REMARK):
            if blen != 16:
                raise bad(f"band {btype} of length {blen}")
        else:
            raise bad(f"band type {btype}")
        need(off, blen, end, C.OFPET_METER_MOD_FAILED, C.OFPMMFC_BAD_BAND, "band past the message")
        if btype == C.OFPMBT_DROP:
            bands.append(M.Band(btype, rate, burst))
        elif btype == C.OFPMBT_DSCP_REMARK:
            bands.append(M.Band(btype, rate, burst, buf[off + 12]))
        else:
            (exp,) = U32.unpack_from(buf, off + 12)
            bands.append(ExperimenterBand(rate, burst, exp, bytes(buf[off + 16:off + blen])))
        off += blen
    return tuple(bands)


def encode_band(b):
    if isinstance(b, ExperimenterBand):
        data = b.data + b"\0" * (pad8(len(b.data)) - len(b.data))
        return _BAND.pack(C.OFPMBT_EXPERIMENTER, 16 + len(data), b.rate, b.burst_size) + \
            U32.pack(b.experimenter) + data
    if b.type == C.OFPMBT_DSCP_REMARK:
        return _BAND.pack(b.type, 16, b.rate, b.burst_size) + struct.pack("!B3x", b.prec_level)
    return _BAND.pack(b.type, 16, b.rate, b.burst_size) + b"\0" * 4


def encode_bands(bands):
    return b"".join(encode_band(b) for b in bands)
