"""OXM TLVs and ofp_match <-> datapath.model.Match, plus the OF1.3 prerequisite table.

A decoded Match maps each OXM to (value, mask or None) in the order the
fields came on the wire (the switch test tool compares that order when the
flow comes back in FLOW_STATS).  Values are exactly what the wire said: a
mask of all ones stays a mask, so a flow echoes back byte for byte.

OpenFlow-basic fields are keyed by their model name ("eth_dst").  Any other
OXM class (experimenter 0xFFFF, NXM 0/1, ...) is kept opaque under an OxmExp
key with bytes values, so it round-trips; the pipeline supports none of them,
so the agent answers BAD_MATCH/BAD_FIELD for such keys (see opaque_fields()).

Called by actions.py (set-field), multipart.py (flow stats, table features
OXM ids), messages.py (flow-mod, packet-in, flow-removed).
"""
from __future__ import annotations

import struct
from typing import NamedTuple, Optional

from datapath.model import FIELDS, Match

from . import consts as C
from .codec import OFPError, U16, U32, need, pad8, unpack

# name -> (oxm field id, bytes on the wire, value bits, maskable, settable)
FIELD_INFO = {}
FIELD_BY_ID = {}
for _id, (_name, _bits, _maskable, _settable) in enumerate(FIELDS):
    # ipv6_exthdr is 9 bits in 2 bytes, vlan_vid 13 bits in 2, mpls_label 20 in 4,
    # ipv6_flabel 20 in 4, pbb_isid 24 in 3: the wire size is not bits/8.
    _size = {"vlan_vid": 2, "ipv6_flabel": 4, "mpls_label": 4, "ipv6_exthdr": 2}.get(
        _name, (_bits + 7) // 8)
    FIELD_INFO[_name] = (_id, _size, _bits, _maskable, _settable)
    FIELD_BY_ID[_id] = _name


class OxmExp(NamedTuple):
    """Key of an OXM outside the OpenFlow-basic class, kept opaque.

    experimenter is the 32-bit id that follows the header for class 0xFFFF,
    None for other classes.  The match value/mask are bytes (after the
    experimenter id)."""
    oxm_class: int
    field: int
    experimenter: Optional[int] = None


def oxm_header(cls, field, hasmask, length):
    return (cls << 16) | (field << 9) | (int(bool(hasmask)) << 8) | length


# ---- match -----------------------------------------------------------------

def _bad(code, reason):
    return OFPError(C.OFPET_BAD_MATCH, code, reason=reason)


def decode_oxm_fields(buf, off, end):
    """The OXM TLVs in buf[off:end] -> {key: (value, mask|None)} in wire order."""
    fields = {}
    while off < end:
        (h,) = unpack(U32, buf, off, end, C.OFPET_BAD_MATCH, C.OFPBMC_BAD_LEN)
        cls, field, hasmask, length = h >> 16, (h >> 9) & 0x7F, (h >> 8) & 1, h & 0xFF
        pay = off + 4
        need(pay, length, end, C.OFPET_BAD_MATCH, C.OFPBMC_BAD_LEN, "OXM past the match")
        if cls == C.OFPXMC_OPENFLOW_BASIC:
            name = FIELD_BY_ID.get(field)
            if name is None:
                raise _bad(C.OFPBMC_BAD_FIELD, f"unknown OXM field {field}")
            _, size, bits, maskable, _ = FIELD_INFO[name]
            if length != size * (2 if hasmask else 1):
                raise _bad(C.OFPBMC_BAD_LEN, f"{name}: OXM length {length}")
            if hasmask and not maskable:
                raise _bad(C.OFPBMC_BAD_MASK, f"{name} cannot be masked")
            value = int.from_bytes(buf[pay:pay + size], "big")
            mask = int.from_bytes(buf[pay + size:pay + 2 * size], "big") if hasmask else None
            _check_value(name, bits, value, mask)
            key = name
        else:
            exp = None
            body = pay
            if cls == C.OFPXMC_EXPERIMENTER:
                if length < 4:
                    raise _bad(C.OFPBMC_BAD_LEN, "experimenter OXM without experimenter id")
                (exp,) = U32.unpack_from(buf, pay)
                body = pay + 4
            n = pay + length - body
            if hasmask and n % 2:
                raise _bad(C.OFPBMC_BAD_LEN, "masked OXM of odd length")
            half = n // 2 if hasmask else n
            value = bytes(buf[body:body + half])
            mask = bytes(buf[body + half:body + n]) if hasmask else None
            key = OxmExp(cls, field, exp)
        if key in fields:
            raise _bad(C.OFPBMC_DUP_FIELD, f"{key} repeated")
        fields[key] = (value, mask)
        off = pay + length
    return fields


def _check_value(name, bits, value, mask):
    if value >> bits:
        raise _bad(C.OFPBMC_BAD_VALUE, f"{name}: value {value:#x} wider than {bits} bits")
    if mask is not None:
        if mask >> bits:
            raise _bad(C.OFPBMC_BAD_MASK, f"{name}: mask {mask:#x} wider than {bits} bits")
        if value & ~mask:
            # "Flow Match Field Masking": no 1-bit in the value where the mask has a 0-bit.
            raise _bad(C.OFPBMC_BAD_WILDCARDS, f"{name}: value bits outside the mask")
    if name == "vlan_vid":
        # "No tag" (OFPVID_PRESENT matched as 0) together with VID bits can
        # never match a frame.  With OFPVID_PRESENT outside the mask, VID bits
        # alone are fine (the switch test tool matches 0x060/0x0f0).
        m = 0x1FFF if mask is None else mask
        if (m & C.OFPVID_PRESENT) and not (value & C.OFPVID_PRESENT) and (value & 0x0FFF):
            raise _bad(C.OFPBMC_BAD_VALUE, "vlan_vid with a VID but OFPVID_PRESENT matched as 0")


_MATCH_HDR = struct.Struct("!HH")


# ---- the fast path: one compiled decoder per OXM layout --------------------
# A controller installing many flows sends the same sequence of OXM headers
# over and over (say in_port, eth_type, ip_proto, ipv4_src, ipv4_dst,
# tcp_src, tcp_dst) with different values.  Once decode_oxm_fields() has
# accepted a match of some layout, decoders for exactly that layout are
# generated: one struct unpack for headers and values together, a comparison
# of the headers with the layout's, and the checks of _check_value() (and,
# for flow-mods, of check_prerequisites()) as straight-line code.  They
# return None when the headers differ or a check fails; the caller then runs
# the general decoder, which raises the precise error (or learns the new
# layout).  Equal headers at the layout's offsets mean the same fields,
# lengths and masks, since each header's length gives the next offset; so a
# fast decode returns exactly what the general one does.  The generated
# source holds only field names from FIELD_INFO and integers, never bytes
# from the wire.
_LAYOUTS = {}            # match length -> [(decoder, checked decoder|None, key), ...]
_LAYOUTS_MAX = 64        # layouts kept in all; others always take the general path
_LAYOUTS_PER_LEN = 4
_n_layouts = 0
# value bytes -> struct codes of its parts, combined big-endian (high part first)
_PARTS = {1: "B", 2: "H", 3: "BH", 4: "I", 6: "HI", 8: "Q", 16: "QQ"}
_SHIFT = {"B": 8, "H": 16, "I": 32, "Q": 64}


def _compile_layout(fields):
    """Decoders for the layout of `fields` (an accepted decode: basic fields
    only): (plain, checked), each f(buf, off) -> {name: (value, mask)} or
    None; checked also enforces the prerequisites, and is None when this
    set of fields can never meet them."""
    fmt = "!"
    unpacked = []                     # unpack targets, in order
    headers = []
    lines = []                        # value assembly and checks
    items = []
    index = {}
    for i, (name, (_, mask)) in enumerate(fields.items()):
        fid, size, bits, _, _ = FIELD_INFO[name]
        hasmask = mask is not None
        index[name] = (i, hasmask)
        headers.append(oxm_header(C.OFPXMC_OPENFLOW_BASIC, fid, hasmask,
                                  size * (2 if hasmask else 1)))
        fmt += "I"
        unpacked.append(f"h{i}")
        for what in ("v", "m") if hasmask else ("v",):
            parts = _PARTS[size]
            names = [f"{what}{i}_{j}" for j in range(len(parts))]
            fmt += parts
            unpacked += names
            if len(names) == 1:
                expr = names[0]
            else:
                expr = names[0]
                for code, nm in zip(parts[1:], names[1:]):
                    expr = f"({expr} << {_SHIFT[code]} | {nm})"
            lines.append(f"{what}{i} = {expr}")
        if hasmask:
            if bits < size * 8:
                lines.append(f"if m{i} >> {bits}: return None")
            lines.append(f"if v{i} & ~m{i}: return None")
        elif bits < size * 8:
            lines.append(f"if v{i} >> {bits}: return None")
        if name == "vlan_vid":
            m = f"m{i}" if hasmask else "0x1FFF"
            lines.append(f"if ({m} & 0x1000) and not (v{i} & 0x1000) and (v{i} & 0x0FFF): "
                         "return None")
        items.append(f"{name!r}: (v{i}, {f'm{i}' if hasmask else 'None'})")

    prereq = []
    plan = _prereq_plan(tuple(fields))
    for dep, allowed in plan or ():
        j, masked = index[dep]
        if allowed is None:
            continue
        if allowed is _PRESENT:
            cond = f"v{j} & 0x1000" + (f" and m{j} & 0x1000" if masked else "")
            prereq.append(f"if not ({cond}): return None")
        elif masked:
            plan = False                 # a masked prerequisite never qualifies
        else:
            prereq.append(f"if v{j} not in {tuple(allowed)!r}: return None")

    def source(checks):
        return ("def decode(buf, off, _unpack=_unpack, _headers=_headers):\n"
                f"    ({', '.join(unpacked)},) = _unpack(buf, off)\n"
                f"    if ({', '.join(f'h{i}' for i in range(len(headers)))},) != _headers:\n"
                "        return None\n"
                + "".join(f"    {c}\n" for c in lines + checks)
                + f"    return {{{', '.join(items)}}}\n")

    def build(src, what):
        ns = {"_unpack": struct.Struct(fmt).unpack_from, "_headers": tuple(headers)}
        exec(compile(src, f"<oxm layout{what}: {' '.join(fields)}>", "exec"), ns)
        return ns["decode"]
    plain = build(source([]), "")
    checked = build(source(prereq), " +prerequisites") if plan is not False else None
    return plain, checked


def _learn_layout(length, fields):
    global _n_layouts
    if _n_layouts >= _LAYOUTS_MAX or not fields:
        return
    for k in fields:
        if not isinstance(k, str):
            return                  # opaque OXMs: always the general path
    lst = _LAYOUTS.setdefault(length, [])
    key = tuple((k, m is not None) for k, (_, m) in fields.items())
    if len(lst) < _LAYOUTS_PER_LEN and all(e[2] != key for e in lst):
        # (known, but its prerequisites failed: the general path ran again)
        lst.insert(0, _compile_layout(fields) + (key,))
        _n_layouts += 1


_new_match = object.__new__        # Match() without its __init__'s dict copy


def decode_match(buf, off, end, prerequisites=False):
    """ofp_match at buf[off:] (bounded by end) -> (Match, offset after its
    padding).  prerequisites=True also checks them, as check_prerequisites()
    (flow-mods; filters in stats requests need not meet them)."""
    m, padded_end, _ = decode_match_basic(buf, off, end, prerequisites)
    return m, padded_end


def decode_match_basic(buf, off, end, prerequisites=False):
    """decode_match() plus whether every field is an OpenFlow-basic one
    (no OxmExp key: see opaque_fields())."""
    if off + 4 > end:
        raise _bad(C.OFPBMC_BAD_LEN, "truncated")
    mtype, length = _MATCH_HDR.unpack_from(buf, off)
    if mtype != 1:                   # OFPMT_OXM
        raise _bad(C.OFPBMC_BAD_TYPE, f"match type {mtype} (only OFPMT_OXM)")
    if length < 4:
        raise _bad(C.OFPBMC_BAD_LEN, f"match length {length} < 4")
    padded_end = off + ((length + 7) & ~7)
    if padded_end > end:
        raise _bad(C.OFPBMC_BAD_LEN, "match past its container")
    m = _new_match(Match)
    layouts = _LAYOUTS.get(length)
    if layouts is not None:
        for plain, checked, _ in layouts:
            dec = checked if prerequisites else plain
            if dec is not None:
                fields = dec(buf, off + 4)
                if fields is not None:
                    m.fields = fields
                    return m, padded_end, True
    fields = decode_oxm_fields(buf, off + 4, off + length)
    m.fields = fields
    _learn_layout(length, fields)
    if prerequisites:
        check_prerequisites(m)
    return m, padded_end, not opaque_fields(m)



# ---- flow-mods: the match kept as its wire bytes ---------------------------
# With the fast path loaded (datapath/fastpath.py calls use_wire_check()), a
# FLOW_MOD's match whose OXM TLVs the C checker accepts (OpenFlow-basic
# fields only, lengths, values, masks and prerequisites as decode_match_basic
# would check them) is not decoded into Python at all: it becomes a
# WireMatch holding the TLV bytes, which the Datapath converts straight into
# its C key and keeps as the flow's match.  Anyone reading .fields gets
# exactly what decode_oxm_fields() gives (decoded then, once); from then on
# the object is an ordinary Match.
_wire_check = None
_FIELDS_SLOT = Match.__dict__["fields"]


def use_wire_check(check):
    """check(oxm_bytes) -> True when the C checker accepts the TLVs
    (ext._fastpath.oxm_check); None turns the fast path off."""
    global _wire_check
    _wire_check = check


def decode_tlvs(oxm):
    """Accepted OXM TLVs (bytes) -> {name: (value, mask)}: a compiled layout
    when one fits (the match length counts the 4-byte ofp_match header),
    else the general decoder (which then learns the layout)."""
    length = len(oxm) + 4
    layouts = _LAYOUTS.get(length)
    if layouts is not None:
        for plain, _, _ in layouts:
            fields = plain(oxm, 0)
            if fields is not None:
                return fields
    fields = decode_oxm_fields(oxm, 0, len(oxm))
    _learn_layout(length, fields)
    return fields


def _wire_fields(self):
    oxm = self.oxm
    if oxm is not None:
        _FIELDS_SLOT.__set__(self, decode_tlvs(oxm))
        self.oxm = None
    return _FIELDS_SLOT.__get__(self, Match)


def _wire_set_fields(self, fields):
    self.oxm = None
    _FIELDS_SLOT.__set__(self, fields)


class WireMatch(Match):
    """A Match still held as its OXM TLVs (oxm: bytes, no ofp_match header
    or padding); .fields decodes them on first use (then oxm is None)."""

    __slots__ = ("oxm",)
    fields = property(_wire_fields, _wire_set_fields)

    def __reduce__(self):
        return (Match, (self.fields,))


def decode_flow_match(buf, off, end, _new=object.__new__):
    """decode_match_basic(buf, off, end, prerequisites=True) for flow-mods:
    a WireMatch when the fast path's checker accepts the fields."""
    check = _wire_check
    if check is not None and off + 4 <= end:
        mtype, length = _MATCH_HDR.unpack_from(buf, off)
        padded_end = off + ((length + 7) & ~7)
        if mtype == 1 and length >= 4 and padded_end <= end:
            oxm = buf[off + 4:off + length]
            if type(oxm) is not bytes:
                oxm = bytes(oxm)
            if check(oxm):
                m = _new(WireMatch)
                m.oxm = oxm
                return m, padded_end, True
    return decode_match_basic(buf, off, end, True)

def encode_oxm(key, value, mask=None):
    """One OXM TLV."""
    if isinstance(key, str):
        fid, size, _, _, _ = FIELD_INFO[key]
        b = value.to_bytes(size, "big")
        if mask is not None:
            b += mask.to_bytes(size, "big")
        return U32.pack(oxm_header(C.OFPXMC_OPENFLOW_BASIC, fid, mask is not None, len(b))) + b
    b = bytes(value) + (bytes(mask) if mask is not None else b"")
    if key.experimenter is not None:
        b = U32.pack(key.experimenter) + b
    return U32.pack(oxm_header(key.oxm_class, key.field, mask is not None, len(b))) + b


# name -> (header bytes without mask, header bytes with mask, value bytes)
_ENCODE_INFO = {name: (U32.pack(oxm_header(C.OFPXMC_OPENFLOW_BASIC, fid, False, size)),
                       U32.pack(oxm_header(C.OFPXMC_OPENFLOW_BASIC, fid, True, 2 * size)), size)
                for name, (fid, size, _, _, _) in FIELD_INFO.items()}


def encode_oxm_fields(match):
    out = []
    for k, (v, m) in match.fields.items():
        info = _ENCODE_INFO.get(k) if type(k) is str else None
        if info is None:
            out.append(encode_oxm(k, v, m))
        elif m is None:
            out.append(info[0] + v.to_bytes(info[2], "big"))
        else:
            out.append(info[1] + v.to_bytes(info[2], "big") + m.to_bytes(info[2], "big"))
    return b"".join(out)


_MATCH_PAD = [b"\0" * ((8 - n % 8) % 8) for n in range(8)]


def encode_match(match):
    """ofp_match (type OXM) with its padding to 8 bytes."""
    body = encode_oxm_fields(match) if match is not None else b""
    length = 4 + len(body)
    return _MATCH_HDR.pack(C.OFPMT_OXM, length) + body + _MATCH_PAD[length & 7]


def opaque_fields(match):
    """The keys of match that are not OpenFlow-basic fields (OxmExp)."""
    fields = match.fields
    for k in fields:
        if type(k) is not str:
            return [k for k in fields if not isinstance(k, str)]
    return []


# ---- set-field payload ----------------------------------------------------

def decode_set_field(buf, off, end):
    """The OXM inside an OFPAT_SET_FIELD action -> (key, value).

    Errors are the spec's set-field codes: unknown or unsettable field ->
    BAD_SET_TYPE, wrong length -> BAD_SET_LEN, a mask or a value wider than
    the field -> BAD_SET_ARGUMENT (OpenFlow 1.3 set-field carries no mask)."""
    def bad(code, reason):
        return OFPError(C.OFPET_BAD_ACTION, code, reason=reason)
    (h,) = unpack(U32, buf, off, end, C.OFPET_BAD_ACTION, C.OFPBAC_BAD_SET_LEN)
    cls, field, hasmask, length = h >> 16, (h >> 9) & 0x7F, (h >> 8) & 1, h & 0xFF
    pay = off + 4
    need(pay, length, end, C.OFPET_BAD_ACTION, C.OFPBAC_BAD_SET_LEN, "OXM past the action")
    if hasmask:
        raise bad(C.OFPBAC_BAD_SET_ARGUMENT, "set-field OXM with a mask")
    if cls != C.OFPXMC_OPENFLOW_BASIC:
        exp = None
        body = pay
        if cls == C.OFPXMC_EXPERIMENTER:
            if length < 4:
                raise bad(C.OFPBAC_BAD_SET_LEN, "experimenter OXM without experimenter id")
            (exp,) = U32.unpack_from(buf, pay)
            body = pay + 4
        return OxmExp(cls, field, exp), bytes(buf[body:pay + length])
    name = FIELD_BY_ID.get(field)
    if name is None:
        raise bad(C.OFPBAC_BAD_SET_TYPE, f"unknown OXM field {field}")
    _, size, bits, _, settable = FIELD_INFO[name]
    if not settable:
        raise bad(C.OFPBAC_BAD_SET_TYPE, f"{name} is not settable")
    if length != size:
        raise bad(C.OFPBAC_BAD_SET_LEN, f"{name}: OXM length {length}")
    value = int.from_bytes(buf[pay:pay + size], "big")
    if value >> bits:
        raise bad(C.OFPBAC_BAD_SET_ARGUMENT, f"{name}: value {value:#x} wider than {bits} bits")
    return name, value


# ---- prerequisites (the OXM field table of OpenFlow 1.3.5) ---------------

_IP = (0x0800, 0x86DD)
_PRESENT = "present"
PREREQUISITES = {
    "in_phy_port": ("in_port", None),
    "vlan_pcp": ("vlan_vid", _PRESENT),
    "ip_dscp": ("eth_type", _IP),
    "ip_ecn": ("eth_type", _IP),
    "ip_proto": ("eth_type", _IP),
    "ipv4_src": ("eth_type", (0x0800,)),
    "ipv4_dst": ("eth_type", (0x0800,)),
    "tcp_src": ("ip_proto", (6,)),
    "tcp_dst": ("ip_proto", (6,)),
    "udp_src": ("ip_proto", (17,)),
    "udp_dst": ("ip_proto", (17,)),
    "sctp_src": ("ip_proto", (132,)),
    "sctp_dst": ("ip_proto", (132,)),
    "icmpv4_type": ("ip_proto", (1,)),
    "icmpv4_code": ("ip_proto", (1,)),
    "arp_op": ("eth_type", (0x0806,)),
    "arp_spa": ("eth_type", (0x0806,)),
    "arp_tpa": ("eth_type", (0x0806,)),
    "arp_sha": ("eth_type", (0x0806,)),
    "arp_tha": ("eth_type", (0x0806,)),
    "ipv6_src": ("eth_type", (0x86DD,)),
    "ipv6_dst": ("eth_type", (0x86DD,)),
    "ipv6_flabel": ("eth_type", (0x86DD,)),
    "icmpv6_type": ("ip_proto", (58,)),
    "icmpv6_code": ("ip_proto", (58,)),
    "ipv6_nd_target": ("icmpv6_type", (135, 136)),
    "ipv6_nd_sll": ("icmpv6_type", (135,)),
    "ipv6_nd_tll": ("icmpv6_type", (136,)),
    "mpls_label": ("eth_type", (0x8847, 0x8848)),
    "mpls_tc": ("eth_type", (0x8847, 0x8848)),
    "mpls_bos": ("eth_type", (0x8847, 0x8848)),
    "pbb_isid": ("eth_type", (0x88E7,)),
    "ipv6_exthdr": ("eth_type", (0x86DD,)),
}


_PREREQ_PLANS = {}       # tuple of field keys -> ((dep, allowed), ...) or False
_PREREQ_PLANS_MAX = 1024


def _prereq_plan(keys):
    """The distinct (dependency, allowed) checks a match with these field
    keys needs, or False if some dependency is absent (always an error)."""
    plan = []
    for name in keys:
        req = PREREQUISITES.get(name) if isinstance(name, str) else None
        if req is None:
            continue
        if req[0] not in keys:
            return False
        if req not in plan:
            plan.append(req)
    return tuple(plan)


def check_prerequisites(match, strict_order=False):
    """Raise OFPError(BAD_MATCH, BAD_PREREQ) unless every field's prerequisite
    is met (see _check_prerequisites).  The checks a set of fields needs is
    worked out once per combination of field names and cached; only a
    failure (or strict_order) goes through the full walk, which says why."""
    if not strict_order:
        fields = match.fields
        keys = tuple(fields)
        plan = _PREREQ_PLANS.get(keys)
        if plan is None:
            if len(_PREREQ_PLANS) >= _PREREQ_PLANS_MAX:
                _PREREQ_PLANS.clear()
            plan = _PREREQ_PLANS[keys] = _prereq_plan(keys)
        if plan is not False:
            for dep, allowed in plan:
                value, mask = fields[dep]
                if allowed is None:
                    continue
                if allowed is _PRESENT:
                    if not (value & C.OFPVID_PRESENT and (mask is None or mask & C.OFPVID_PRESENT)):
                        break
                elif mask is not None or value not in allowed:
                    break
            else:
                return
    _check_prerequisites(match, strict_order)


def _check_prerequisites(match, strict_order=False):
    """Raise OFPError(BAD_MATCH, BAD_PREREQ) unless every field's prerequisite
    (the prerequisite column of the 1.3.5 OXM field table) is matched with
    an allowed value.

    Each field's direct prerequisite is checked, and that one's own in turn,
    so tcp_dst needs ip_proto=6, which needs eth_type 0x0800 or 0x86dd.
    vlan_pcp needs a vlan_vid that can only match tagged frames (the
    OFPVID_PRESENT bit set in value and mask).  The spec also says a field
    must come after its prerequisites; switches commonly accept any order
    (controllers do not all sort), so that is only enforced with strict_order=True.
    Opaque (non-basic) fields have no prerequisites here.
    """
    fields = match.fields
    position = {k: i for i, k in enumerate(fields)}
    for name in fields:
        req = PREREQUISITES.get(name) if isinstance(name, str) else None
        if req is None:
            continue
        dep, allowed = req
        if dep not in fields:
            raise _bad(C.OFPBMC_BAD_PREREQ, f"{name} needs {dep}")
        value, mask = fields[dep]
        if allowed is _PRESENT:
            ok = bool(value & C.OFPVID_PRESENT) and (mask is None or bool(mask & C.OFPVID_PRESENT))
        elif allowed is None:
            ok = True
        else:
            ok = mask is None and value in allowed
        if not ok:
            raise _bad(C.OFPBMC_BAD_PREREQ, f"{name} needs {dep} in {allowed}, got {value:#x}")
        if strict_order and position[dep] > position[name]:
            raise _bad(C.OFPBMC_BAD_PREREQ, f"{name} comes before its prerequisite {dep}")
