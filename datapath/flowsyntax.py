"""ovs-ofctl flow, group and meter syntax <-> datapath.model, both ways.

Who uses it: `vdp ctl` (add-flow, del-flows, dump-flows...), the config
loader (flows/groups/meters in TOML) and anything that prints flows.

    parse_flow("table=0,priority=100,in_port=1,actions=output:2") -> FlowSpec
    parse_flow_filter("in_port=1,out_port=2")   -> FlowFilter (del/dump-flows)
    parse_group("group_id=1,type=select,bucket=output:1,bucket=output:2")
    parse_meter("meter=1,kbps,burst,bands=type=drop,rate=1000,burst_size=100")
    format_flow(spec or FlowStats), format_match, format_instructions,
    format_group, format_buckets, format_meter

The printers write what the parsers read, so parse_X(format_X(x)) == x.
(One deliberate loss: Output.max_len is only printed for CONTROLLER, as
ovs-ofctl does, because it means nothing for other ports.)

Field names: the ovs names (dl_src, nw_dst, tp_src, nd_target, tun_id...)
and the OXM names of datapath.model (eth_src, ipv4_dst, tcp_src...) are both
accepted.  A few ovs names depend on the rest of the match, as in ovs-ofctl:
nw_src/nw_dst/nw_proto mean arp_spa/arp_tpa/arp_op under `arp`/`rarp`;
tp_src/tp_dst mean tcp/udp/sctp ports (or ICMP type/code) according to
ip_proto; icmp_type/icmp_code are ICMPv6 under ip_proto 58.  vlan_vid takes
the raw OXM value (0x1000 = a tag is present); dl_vlan=N means "tagged with
VID N" and dl_vlan=0xffff "untagged"; nw_tos is the TOS byte (ip_dscp << 2).

Every error is a FlowSyntaxError whose message names the bad token and its
1-based column, e.g. "bad value 'x1' for field 'in_port' at column 12".
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field as dc_field
from typing import Mapping, Optional

from . import model as M
from .model import (FIELD_BITS, FIELD_ID, MASKABLE, SETTABLE, Match, FlowSpec, FlowStats,
                    GroupSpec, Bucket, MeterSpec, Band)

__all__ = [
    "FlowSyntaxError", "FlowFilter",
    "parse_flow", "parse_flow_filter", "parse_match", "parse_instructions", "parse_actions",
    "parse_group", "parse_group_id", "parse_meter", "parse_meter_id",
    "format_flow", "format_match", "format_instructions", "format_actions", "format_action",
    "format_group", "format_buckets", "format_meter", "format_port", "format_field_value",
]


class FlowSyntaxError(ValueError):
    """A flow/group/meter text that cannot be parsed.

    .reason: what is wrong, .token: the offending text, .column: 1-based
    position of the token in the text given to the parser (None if the
    problem has no single place, e.g. a missing 'actions=')."""

    def __init__(self, reason, column=None, token=None, hint=None):
        self.reason = reason
        self.column = column
        self.token = token
        self.hint = hint
        msg = reason if column is None else f"{reason} at column {column}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


@dataclass
class FlowFilter:
    """The flow selector of del-flows / dump-flows (loose unless strict)."""
    table_id: int = M.OFPTT_ALL
    match: Match = dc_field(default_factory=Match)
    priority: Optional[int] = None
    cookie: int = 0
    cookie_mask: int = 0
    out_port: int = M.OFPP_ANY
    out_group: int = M.OFPG_ANY


# --------------------------------------------------------------------------
# value kinds

_MAC, _IPV4, _IPV6, _INT, _PORT = range(5)
_KIND = {name: _INT for name in FIELD_ID}
_KIND.update({n: _MAC for n in ("eth_dst", "eth_src", "arp_sha", "arp_tha",
                                 "ipv6_nd_sll", "ipv6_nd_tll")})
_KIND.update({n: _IPV4 for n in ("ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa")})
_KIND.update({n: _IPV6 for n in ("ipv6_src", "ipv6_dst", "ipv6_nd_target")})
_KIND.update({n: _PORT for n in ("in_port", "in_phy_port")})
# Integer fields printed in hex (their values are bit patterns, not counts).
_HEX = {"metadata", "eth_type", "vlan_vid", "tunnel_id", "pbb_isid", "ipv6_flabel", "ipv6_exthdr"}

_U64 = (1 << 64) - 1
_U32 = (1 << 32) - 1

# Reserved port numbers by name, and the names printed for them.
_PORT_WORDS = {
    "in_port": M.OFPP_IN_PORT, "table": M.OFPP_TABLE, "normal": M.OFPP_NORMAL,
    "flood": M.OFPP_FLOOD, "all": M.OFPP_ALL, "controller": M.OFPP_CONTROLLER,
    "local": M.OFPP_LOCAL, "any": M.OFPP_ANY, "none": M.OFPP_ANY,
}
_PORT_NAMES = {M.OFPP_IN_PORT: "IN_PORT", M.OFPP_TABLE: "TABLE", M.OFPP_NORMAL: "NORMAL",
               M.OFPP_FLOOD: "FLOOD", M.OFPP_ALL: "ALL", M.OFPP_CONTROLLER: "CONTROLLER",
               M.OFPP_LOCAL: "LOCAL", M.OFPP_ANY: "ANY"}

_INT_RE = re.compile(r"(?:0[xX][0-9a-fA-F]+|[0-9]+)\Z")
_MAC_RE = re.compile(r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2}){5}\Z")


def _int(text):
    """Decimal or 0x-hex; raises ValueError otherwise."""
    text = text.strip()
    if not _INT_RE.match(text):
        raise ValueError(text)
    return int(text, 16) if text[:2] in ("0x", "0X") else int(text, 10)


def _mac(text):
    if not _MAC_RE.match(text):
        raise ValueError(text)
    return int("".join(p.zfill(2) for p in text.split(":")), 16)


def _ipv4(text):
    return int(ipaddress.IPv4Address(text))


def _ipv6(text):
    return int(ipaddress.IPv6Address(text))


def _prefix_mask(nbits, width):
    return ((1 << width) - 1) ^ ((1 << (width - nbits)) - 1)


def _fmt_mac(v):
    h = f"{v:012x}"
    return ":".join(h[i:i + 2] for i in range(0, 12, 2))


def _prefix_len(mask, width):
    """The prefix length of a CIDR mask, or None if it is not one."""
    inv = ((1 << width) - 1) ^ mask
    if inv & (inv + 1):
        return None
    return width - inv.bit_length()


def format_port(port):
    """A port number as ovs-ofctl prints it (reserved ports by name)."""
    return _PORT_NAMES.get(port, str(port))


# --------------------------------------------------------------------------
# field names

# Names that map to one model field with the value taken as-is.
_PLAIN = {name: name for name in FIELD_ID}
_PLAIN.update({
    "dl_src": "eth_src", "dl_dst": "eth_dst", "dl_type": "eth_type",
    "dl_vlan_pcp": "vlan_pcp", "nw_ecn": "ip_ecn", "ip_src": "ipv4_src", "ip_dst": "ipv4_dst",
    "ipv6_label": "ipv6_flabel", "nd_target": "ipv6_nd_target", "nd_sll": "ipv6_nd_sll",
    "nd_tll": "ipv6_nd_tll", "tun_id": "tunnel_id",
})
# Names whose meaning depends on the rest of the match (resolved at the end).
_CONTEXT = {"nw_src", "nw_dst", "nw_proto", "tp_src", "tp_dst", "icmp_type", "icmp_code"}
# Names with a value transformation (handled in _special_field).
_SPECIAL = {"dl_vlan", "vlan_tci", "nw_tos"}

_ARP_TYPES = (0x0806, 0x8035)
_L4_BY_PROTO = {6: ("tcp_src", "tcp_dst"), 17: ("udp_src", "udp_dst"),
                132: ("sctp_src", "sctp_dst"), 1: ("icmpv4_type", "icmpv4_code"),
                58: ("icmpv6_type", "icmpv6_code")}

# Protocol shorthands: name -> fields they set, in order.
_SHORTHANDS = {
    "ip": (("eth_type", 0x0800),), "ipv4": (("eth_type", 0x0800),),
    "ipv6": (("eth_type", 0x86DD),),
    "arp": (("eth_type", 0x0806),), "rarp": (("eth_type", 0x8035),),
    "mpls": (("eth_type", 0x8847),), "mplsm": (("eth_type", 0x8848),),
    "tcp": (("eth_type", 0x0800), ("ip_proto", 6)),
    "udp": (("eth_type", 0x0800), ("ip_proto", 17)),
    "sctp": (("eth_type", 0x0800), ("ip_proto", 132)),
    "icmp": (("eth_type", 0x0800), ("ip_proto", 1)),
    "tcp6": (("eth_type", 0x86DD), ("ip_proto", 6)),
    "udp6": (("eth_type", 0x86DD), ("ip_proto", 17)),
    "sctp6": (("eth_type", 0x86DD), ("ip_proto", 132)),
    "icmp6": (("eth_type", 0x86DD), ("ip_proto", 58)),
}
_SHORT_ETH = {0x0800: "ip", 0x86DD: "ipv6", 0x0806: "arp", 0x8035: "rarp",
              0x8847: "mpls", 0x8848: "mplsm"}
_SHORT_PROTO = {(0x0800, 6): "tcp", (0x0800, 17): "udp", (0x0800, 132): "sctp",
                (0x0800, 1): "icmp", (0x86DD, 6): "tcp6", (0x86DD, 17): "udp6",
                (0x86DD, 132): "sctp6", (0x86DD, 58): "icmp6"}

_FLOW_FLAGS = {"send_flow_rem": M.OFPFF_SEND_FLOW_REM, "check_overlap": M.OFPFF_CHECK_OVERLAP,
               "reset_counts": M.OFPFF_RESET_COUNTS, "no_packet_counts": M.OFPFF_NO_PKT_COUNTS,
               "no_byte_counts": M.OFPFF_NO_BYT_COUNTS}
# Keys ovs-ofctl prints in dump-flows that a flow given back to it may carry.
_IGNORED_KEYS = {"duration", "n_packets", "n_bytes", "idle_age", "hard_age"}


# --------------------------------------------------------------------------
# tokenizing

def _split_top(text, off, seps):
    """Splits text at characters in seps outside parentheses.

    Returns [(token, column0)] with surrounding whitespace stripped and
    empty tokens dropped; column0 is the 0-based offset of the token in the
    caller's text (off is where `text` starts there)."""
    toks, stack, start = [], [], 0
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            if not stack:
                raise FlowSyntaxError("unbalanced ')'", off + i + 1, ")")
            stack.pop()
        elif ch in seps and not stack:
            toks.append((start, i))
            start = i + 1
    if stack:
        raise FlowSyntaxError("unbalanced '('", off + stack[0] + 1, "(")
    toks.append((start, len(text)))
    out = []
    for a, b in toks:
        tok = text[a:b]
        stripped = tok.strip()
        if stripped:
            out.append((stripped, off + a + (len(tok) - len(tok.lstrip()))))
    return out


def _flow_tokens(text):
    """The key[=value] items of a flow, and the actions text if any.

    Items are separated by commas or white space; everything after
    `actions=` is the action list.  Returns ([(key, value|None, kcol0,
    vcol0)], actions_text|None, actions_col0)."""
    items = []
    i, n = 0, len(text)
    while i < n:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            break
        kstart = i
        while i < n and not (text[i].isspace() or text[i] in ",="):
            i += 1
        key = text[kstart:i]
        if i < n and text[i] == "=":
            i += 1
            if key.lower() == "actions":
                return items, text[i:], i
            vstart, depth = i, 0
            while i < n and (depth or not (text[i].isspace() or text[i] == ",")):
                if text[i] == "(":
                    depth += 1
                elif text[i] == ")":
                    depth = max(0, depth - 1)
                i += 1
            items.append((key, text[vstart:i], kstart, vstart))
        else:
            items.append((key, None, kstart, kstart))
    return items, None, n


# --------------------------------------------------------------------------
# field values

def _bad(token, fname, col0, hint=None):
    return FlowSyntaxError(f"bad value {token!r} for field {fname!r}", col0 + 1, token, hint)


def _parse_port(raw, col0, what, port_names, allow_any=True):
    """A port: number, reserved name (NORMAL, LOCAL...) or port name."""
    s = raw.strip()
    try:
        v = _int(s)
    except ValueError:
        v = _PORT_WORDS.get(s.lower())
        if v is None and port_names and s in port_names:
            v = port_names[s]
        if v is None:
            raise _bad(raw, what, col0, "expected a port number, a port name or one of "
                       "IN_PORT, TABLE, NORMAL, FLOOD, ALL, CONTROLLER, LOCAL") from None
    if v > _U32 or (v == M.OFPP_ANY and not allow_any):
        raise _bad(raw, what, col0, "port number out of range")
    return v


def _parse_value(name, raw, col0, alias, port_names=None, maskable=True):
    """Parses `raw` (value or value/mask) for model field `name`.

    Returns (value, mask|None); checks width and maskability."""
    kind = _KIND[name]
    width = FIELD_BITS[name]
    full = (1 << width) - 1
    if "/" in raw:
        vtxt, mtxt = raw.split("/", 1)
        mcol0 = col0 + len(vtxt) + 1
    else:
        vtxt, mtxt, mcol0 = raw, None, col0
    if mtxt is not None and (not maskable or name not in MASKABLE):
        raise FlowSyntaxError(f"field {alias!r} cannot be masked", mcol0 + 1, mtxt)
    if kind == _PORT:
        return _parse_port(vtxt, col0, alias, port_names), None
    try:
        if kind == _MAC:
            value = _mac(vtxt)
            mask = None if mtxt is None else _mac(mtxt)
        elif kind in (_IPV4, _IPV6):
            conv = _ipv4 if kind == _IPV4 else _ipv6
            value = conv(vtxt)
            mask = None
            if mtxt is not None:
                if mtxt.isdigit():
                    plen = int(mtxt)
                    if plen > width:
                        raise _bad(raw, alias, col0, f"prefix length {plen} > {width}")
                    mask = _prefix_mask(plen, width)
                else:
                    mask = conv(mtxt)
        else:
            value = _int(vtxt)
            mask = None if mtxt is None else _int(mtxt)
    except FlowSyntaxError:
        raise
    except ValueError:
        hint = {_MAC: "expected a MAC address like 02:00:00:00:00:01",
                _IPV4: "expected an IPv4 address[/prefix or /mask]",
                _IPV6: "expected an IPv6 address[/prefix or /mask]",
                _INT: "expected a decimal or 0x-hex number[/mask]"}[kind]
        raise _bad(raw, alias, col0, hint) from None
    if value > full:
        raise _bad(raw, alias, col0, f"does not fit in {width} bits")
    if mask is not None and mask > full:
        raise _bad(mtxt, alias, mcol0, f"mask does not fit in {width} bits")
    return value, mask


def format_field_value(name, value, mask=None):
    """A model field value (and mask) as text."""
    kind = _KIND[name]
    width = FIELD_BITS[name]
    if kind == _PORT:
        return format_port(value)
    if kind == _MAC:
        s = _fmt_mac(value)
        return s if mask is None else f"{s}/{_fmt_mac(mask)}"
    if kind in (_IPV4, _IPV6):
        cls = ipaddress.IPv4Address if kind == _IPV4 else ipaddress.IPv6Address
        s = str(cls(value))
        if mask is None:
            return s
        plen = _prefix_len(mask, width)
        return f"{s}/{plen}" if plen is not None else f"{s}/{cls(mask)}"
    if name in _HEX:
        digits = {"eth_type": 4, "vlan_vid": 4}.get(name, 0)
        s = f"0x{value:0{digits}x}"
        return s if mask is None else f"{s}/0x{mask:0{digits}x}"
    return str(value) if mask is None else f"{value}/0x{mask:x}"


# --------------------------------------------------------------------------
# matches

class _MatchBuilder:
    """Collects match items in order; context-dependent names are resolved
    once the whole match is known (so 'tp_dst=80,tcp' works too)."""

    def __init__(self, port_names):
        self.port_names = port_names
        self.slots = []          # [(kind, payload, col0, token)]

    def shorthand(self, word, col0):
        for name, v in _SHORTHANDS[word]:
            self.slots.append(("set", (name, v, None, word), col0, word))

    def add(self, key, raw, kcol0, vcol0):
        """Adds key=raw; returns False if key is not a match field."""
        token = f"{key}={raw}"
        if key in _PLAIN:
            name = _PLAIN[key]
            v, m = _parse_value(name, raw, vcol0, key, self.port_names)
            self.slots.append(("set", (name, v, m, key), vcol0, raw))
        elif key in _CONTEXT:
            self.slots.append(("ctx", (key, raw, kcol0), vcol0, token))
        elif key in _SPECIAL:
            for name, v, m in _special_field(key, raw, vcol0):
                self.slots.append(("set", (name, v, m, key), vcol0, raw))
        else:
            return False
        return True

    def _exact(self, name):
        for kind, p, _, _ in self.slots:
            if kind == "set" and p[0] == name and p[2] is None:
                return p[1]
        return None

    def build(self):
        eth = self._exact("eth_type")
        is_arp = eth in _ARP_TYPES
        # nw_* first: nw_proto may supply the ip_proto that tp_* needs.
        for i, (kind, p, col0, tok) in enumerate(self.slots):
            if kind == "ctx" and p[0].startswith("nw_"):
                key, raw, _ = p
                name = {"nw_src": ("ipv4_src", "arp_spa"), "nw_dst": ("ipv4_dst", "arp_tpa"),
                        "nw_proto": ("ip_proto", "arp_op")}[key][is_arp]
                v, m = _parse_value(name, raw, col0, key, self.port_names)
                self.slots[i] = ("set", (name, v, m, key), col0, raw)
        proto = self._exact("ip_proto")
        for i, (kind, p, col0, tok) in enumerate(self.slots):
            if kind != "ctx":
                continue
            key, raw, kcol0 = p
            if key.startswith("icmp_"):
                name = ("icmpv6_" if _icmp_is_v6(eth, proto) else "icmpv4_") + key[5:]
            else:
                names = _L4_BY_PROTO.get(proto)
                if names is None:
                    raise FlowSyntaxError(
                        f"field {key!r} needs the IP protocol", kcol0 + 1, tok,
                        "say tcp, udp, sctp, icmp or icmp6 first, or use tcp_src/udp_dst/...")
                name = names[0] if key == "tp_src" else names[1]
            v, m = _parse_value(name, raw, col0, key, self.port_names)
            self.slots[i] = ("set", (name, v, m, key), col0, raw)
        match = Match()
        for kind, (name, v, m, alias), col0, tok in self.slots:
            if m == 0:
                continue                # a zero mask matches anything: no field
            if m is not None:
                v &= m
                if m == (1 << FIELD_BITS[name]) - 1:
                    m = None
            old = match.fields.get(name)
            if old is not None and old != (v, m):
                raise FlowSyntaxError(f"field {alias!r} conflicts with an earlier value for "
                                      f"{name!r}", col0 + 1, tok)
            match.set(name, v, m)
        return match


def _special_field(key, raw, col0):
    """dl_vlan, vlan_tci, nw_tos -> [(model name, value, mask)]."""
    if key == "dl_vlan":
        try:
            v = _int(raw)
        except ValueError:
            raise _bad(raw, key, col0, "expected a VLAN id 0..4095 or 0xffff (untagged)") from None
        if v == 0xFFFF:
            return [("vlan_vid", 0, None)]
        if v > 0xFFF:
            raise _bad(raw, key, col0, "expected a VLAN id 0..4095 or 0xffff (untagged)")
        return [("vlan_vid", v | M.OFPVID_PRESENT, None)]
    if key == "nw_tos":
        try:
            v = _int(raw)
        except ValueError:
            raise _bad(raw, key, col0, "expected the TOS byte, a multiple of 4 up to 252") from None
        if v > 0xFF or v & 3:
            raise _bad(raw, key, col0, "expected the TOS byte, a multiple of 4 up to 252; "
                       "use nw_ecn for the ECN bits")
        return [("ip_dscp", v >> 2, None)]
    # vlan_tci=TCI[/MASK]: 802.1Q TCI with the CFI bit meaning "tagged".
    try:
        vtxt, _, mtxt = raw.partition("/")
        v = _int(vtxt)
        m = _int(mtxt) if mtxt else 0xFFFF
    except ValueError:
        raise _bad(raw, key, col0, "expected TCI[/MASK]") from None
    if v > 0xFFFF or m > 0xFFFF:
        raise _bad(raw, key, col0, "does not fit in 16 bits")
    out = []
    if m & 0x1000 and not v & 0x1000:
        return [("vlan_vid", 0, None)]                      # untagged
    vid_mask = m & 0x1FFF
    if vid_mask:
        out.append(("vlan_vid", v & vid_mask, None if vid_mask == 0x1FFF else vid_mask))
    pcp_mask = m >> 13
    if pcp_mask == 7:
        out.append(("vlan_pcp", v >> 13, None))
    elif pcp_mask:
        raise _bad(raw, key, col0, "the PCP bits must be fully masked or not at all")
    return out


def _icmp_is_v6(eth, proto):
    """Whether ovs' icmp_type/icmp_code mean the ICMPv6 fields here."""
    return proto == 58 or (proto is None and eth == 0x86DD)


def _match_context(match):
    f = match.fields
    eth = f.get("eth_type", (None, 1))
    proto = f.get("ip_proto", (None, 1))
    return (eth[0] if eth[1] is None else None, proto[0] if proto[1] is None else None)


def format_match(match):
    """A Match as ovs-ofctl match text (fields in the match's order)."""
    eth, proto = _match_context(match)
    items = list(match.fields.items())
    out = []
    i = 0
    while i < len(items):
        name, (v, m) = items[i]
        if name == "eth_type" and m is None:
            if i + 1 < len(items):
                nname, (nv, nm) = items[i + 1]
                short = _SHORT_PROTO.get((v, nv)) if nname == "ip_proto" and nm is None else None
                if short:
                    out.append(short)
                    i += 2
                    continue
            if v in _SHORT_ETH:
                out.append(_SHORT_ETH[v])
                i += 1
                continue
        out.append(_format_match_field(name, v, m, eth, proto))
        i += 1
    return ",".join(out)


def _format_match_field(name, v, m, eth, proto):
    val = format_field_value(name, v, m)
    is_arp = eth in _ARP_TYPES
    if name == "vlan_vid":
        if m is None and v & M.OFPVID_PRESENT:
            return f"dl_vlan={v & 0xFFF}"
        if m is None and v == 0:
            return "vlan_tci=0x0000"
        return f"vlan_vid={val}"
    if name == "ip_dscp":
        return f"nw_tos={v << 2}"
    if name in ("ipv4_src", "ipv4_dst"):
        return f"{'ip' if is_arp else 'nw'}_{name[5:]}={val}"
    if name == "ip_proto":
        return f"{'ip_proto' if is_arp else 'nw_proto'}={val}"
    l4 = _L4_BY_PROTO.get(proto)
    if name[:4] in ("tcp_", "udp_", "sctp") and l4 and name in l4:
        return f"tp_{name.split('_')[1]}={val}"
    if name in ("icmpv4_type", "icmpv4_code"):
        return f"{'icmpv4' if _icmp_is_v6(eth, proto) else 'icmp'}_{name[7:]}={val}"
    ovs = {"eth_src": "dl_src", "eth_dst": "dl_dst", "eth_type": "dl_type",
           "vlan_pcp": "dl_vlan_pcp", "ip_ecn": "nw_ecn", "ipv6_flabel": "ipv6_label",
           "ipv6_nd_target": "nd_target", "ipv6_nd_sll": "nd_sll", "ipv6_nd_tll": "nd_tll",
           "tunnel_id": "tun_id"}.get(name, name)
    return f"{ovs}={val}"


# --------------------------------------------------------------------------
# actions and instructions

_DROP = object()
_INSTRUCTION_TYPES = (M.GotoTable, M.WriteMetadata, M.ApplyActions, M.WriteActions,
                      M.ClearActions, M.Meter)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class _ActionContext:
    def __init__(self, match, port_names):
        self.eth, self.proto = _match_context(match) if match is not None else (None, None)
        self.port_names = port_names


def _set_field_target(fname, fcol0, ctx, token):
    """A set_field/mod_* destination name -> (model name, value transform).
    Errors point at (fcol0, token)."""
    key = fname.lower()
    ident = lambda v: v  # noqa: E731
    if key in _PLAIN:
        return _PLAIN[key], ident
    if key == "dl_vlan":
        return "vlan_vid", lambda v: v | M.OFPVID_PRESENT
    if key == "nw_tos":
        return "ip_dscp", lambda v: v >> 2
    if key in ("nw_src", "nw_dst", "nw_proto"):
        is_arp = ctx.eth in _ARP_TYPES
        return {"nw_src": ("ipv4_src", "arp_spa"), "nw_dst": ("ipv4_dst", "arp_tpa"),
                "nw_proto": ("ip_proto", "arp_op")}[key][is_arp], ident
    if key in ("tp_src", "tp_dst"):
        names = _L4_BY_PROTO.get(ctx.proto)
        if names is None:
            raise FlowSyntaxError(f"{key!r} needs the flow to match the IP protocol", fcol0 + 1,
                                  token, "use tcp_src/udp_dst/... or match tcp/udp/sctp")
        return names[0 if key == "tp_src" else 1], ident
    if key in ("icmp_type", "icmp_code"):
        return ("icmpv6_" if _icmp_is_v6(ctx.eth, ctx.proto) else "icmpv4_") + key[5:], ident
    raise FlowSyntaxError(f"unknown field {fname!r}", fcol0 + 1, token)


def _set_field(vtxt, vcol0, fname, fcol0, ctx, token, shown=None):
    """set_field:VTXT->FNAME (or mod_X:VTXT, with token/fcol0 the whole action)."""
    name, xform = _set_field_target(fname, fcol0, ctx, token)
    shown = shown or fname
    if name not in SETTABLE:
        raise FlowSyntaxError(f"field {shown!r} cannot be set", fcol0 + 1, token)
    if "/" in vtxt:
        raise FlowSyntaxError("set_field takes no mask in OpenFlow 1.3", vcol0 + 1, vtxt)
    limits = {"dl_vlan": 0xFFF, "nw_tos": 0xFC}
    if fname.lower() in limits:
        try:
            v = _int(vtxt)
        except ValueError:
            raise _bad(vtxt, shown, vcol0) from None
        if v > limits[fname.lower()] or (fname.lower() == "nw_tos" and v & 3):
            raise _bad(vtxt, shown, vcol0, "out of range")
        return M.SetField(name, xform(v))
    v, _ = _parse_value(name, vtxt, vcol0, shown, ctx.port_names, maskable=False)
    return M.SetField(name, xform(v))


def _arg_int(arg, acol0, what, tok, lo=0, hi=_U32):
    if arg is None:
        raise FlowSyntaxError(f"{what!r} needs an argument", acol0 - len(what) + 1, tok)
    try:
        v = _int(arg)
    except ValueError:
        raise FlowSyntaxError(f"bad argument {arg!r} for {what!r}", acol0 + 1, arg) from None
    if not lo <= v <= hi:
        raise FlowSyntaxError(f"bad argument {arg!r} for {what!r}", acol0 + 1, arg,
                              f"expected {lo}..{hi}")
    return v


def _kv_args(arg, acol0, what, tok, allowed):
    """Parses 'k=v,k=v' (the inside of controller(...)/output(...))."""
    out = {}
    for item, c0 in _split_top(arg, acol0, ","):
        k, sep, v = item.partition("=")
        k = k.strip().lower()
        if not sep or k not in allowed:
            raise FlowSyntaxError(f"bad argument {item!r} for {what!r}", c0 + 1, item,
                                  "expected " + ", ".join(f"{a}=..." for a in allowed))
        vcol0 = c0 + item.index("=") + 1 + (len(v) - len(v.lstrip()))
        out[k] = (v.strip(), vcol0)
    return out


def _parse_action(tok, col0, ctx, where):
    """One action or instruction token -> model object (or _DROP)."""
    text = tok
    if _INT_RE.match(text) or (ctx.port_names and text in ctx.port_names
                               and text.lower() not in _ACTION_NAMES):
        return M.Output(_parse_port(text, col0, "output", ctx.port_names, allow_any=False))
    m = _NAME_RE.match(text)
    if not m:
        raise FlowSyntaxError(f"unknown action {tok!r}", col0 + 1, tok)
    name = m.group(0).lower()
    rest = text[m.end():]
    arg, acol0, paren = None, col0 + m.end(), False
    if rest:
        if rest[0] in ":=":
            arg, acol0 = rest[1:], col0 + m.end() + 1
        elif rest[0] == "(" and rest.endswith(")"):
            arg, acol0, paren = rest[1:-1], col0 + m.end() + 1, True
        else:
            raise FlowSyntaxError(f"unknown action {tok!r}", col0 + 1, tok)
    handler = _ACTIONS.get(name)
    if handler is None:
        raise FlowSyntaxError(f"unknown action {tok!r}", col0 + 1, tok)
    obj = handler(name, arg, acol0, paren, ctx, tok, where, col0)
    if isinstance(obj, _INSTRUCTION_TYPES) and where != "top":
        inside = {"write": "write_actions", "apply": "apply_actions",
                  "bucket": "a group bucket"}[where]
        raise FlowSyntaxError(f"instruction {name!r} is not allowed inside {inside}",
                              col0 + 1, tok)
    return obj


def _no_arg(fn):
    def h(name, arg, acol0, paren, ctx, tok, where, col0):
        if arg is not None and arg.strip():
            raise FlowSyntaxError(f"{name!r} takes no argument", col0 + 1, tok)
        return fn()
    return h


def _a_output(name, arg, acol0, paren, ctx, tok, where, col0):
    if arg is None:
        raise FlowSyntaxError("'output' needs a port", col0 + 1, tok)
    if paren:
        kv = _kv_args(arg, acol0, "output", tok, ("port", "max_len"))
        if "port" not in kv:
            raise FlowSyntaxError("'output(...)' needs port=", col0 + 1, tok)
        port = _parse_port(kv["port"][0], kv["port"][1], "output", ctx.port_names, False)
        if "max_len" in kv:
            ml = _arg_int(kv["max_len"][0], kv["max_len"][1], "max_len", tok, 0, 0xFFFF)
            return M.Output(port, ml)
        return M.Output(port)
    return M.Output(_parse_port(arg, acol0, "output", ctx.port_names, allow_any=False))


def _a_reserved(name, arg, acol0, paren, ctx, tok, where, col0):
    port = _PORT_WORDS[name]
    if name == "controller" and arg is not None and arg.strip():
        if paren:
            kv = _kv_args(arg, acol0, "controller", tok, ("max_len",))
            if "max_len" in kv:
                return M.Output(port, _arg_int(kv["max_len"][0], kv["max_len"][1],
                                               "max_len", tok, 0, 0xFFFF))
            return M.Output(port)
        return M.Output(port, _arg_int(arg, acol0, "controller", tok, 0, 0xFFFF))
    if arg is not None and arg.strip():
        raise FlowSyntaxError(f"{name!r} takes no argument", col0 + 1, tok)
    return M.Output(port)


def _a_drop(name, arg, acol0, paren, ctx, tok, where, col0):
    if arg is not None and arg.strip():
        raise FlowSyntaxError("'drop' takes no argument", col0 + 1, tok)
    return _DROP


def _a_set_field(name, arg, acol0, paren, ctx, tok, where, col0):
    if arg is None or "->" not in arg:
        raise FlowSyntaxError("'set_field' needs VALUE->FIELD", col0 + 1, tok)
    vtxt, fname = arg.rsplit("->", 1)
    fcol0 = acol0 + len(vtxt) + 2 + (len(fname) - len(fname.lstrip()))
    return _set_field(vtxt.strip(), acol0 + (len(vtxt) - len(vtxt.lstrip())), fname.strip(),
                      fcol0, ctx, fname.strip())


_MOD_TARGETS = {"mod_dl_src": "eth_src", "mod_dl_dst": "eth_dst", "mod_nw_src": "nw_src",
                "mod_nw_dst": "nw_dst", "mod_tp_src": "tp_src", "mod_tp_dst": "tp_dst",
                "mod_vlan_vid": "dl_vlan", "mod_vlan_pcp": "vlan_pcp", "mod_nw_tos": "nw_tos",
                "mod_nw_ecn": "ip_ecn"}


def _a_mod(name, arg, acol0, paren, ctx, tok, where, col0):
    if arg is None:
        raise FlowSyntaxError(f"{name!r} needs a value", col0 + 1, tok)
    return _set_field(arg.strip(), acol0, _MOD_TARGETS[name], col0, ctx, tok, shown=name)


def _ethertype_action(cls, default=None):
    def h(name, arg, acol0, paren, ctx, tok, where, col0):
        if arg is None or not arg.strip():
            if default is None:
                raise FlowSyntaxError(f"{name!r} needs an ethertype", col0 + 1, tok)
            return cls(default)
        return cls(_arg_int(arg, acol0, name, tok, 0, 0xFFFF))
    return h


def _int_action(cls, lo, hi):
    def h(name, arg, acol0, paren, ctx, tok, where, col0):
        return cls(_arg_int(arg, acol0, name, tok, lo, hi))
    return h


def _a_write_metadata(name, arg, acol0, paren, ctx, tok, where, col0):
    if arg is None:
        raise FlowSyntaxError("'write_metadata' needs VALUE[/MASK]", col0 + 1, tok)
    vtxt, sep, mtxt = arg.partition("/")
    v = _arg_int(vtxt, acol0, name, tok, 0, _U64)
    if not sep:
        return M.WriteMetadata(v)
    mk = _arg_int(mtxt, acol0 + len(vtxt) + 1, name, tok, 0, _U64)
    return M.WriteMetadata(v & mk, mk)


def _a_action_list(cls, inner):
    def h(name, arg, acol0, paren, ctx, tok, where, col0):
        if not paren:
            raise FlowSyntaxError(f"{name!r} needs (ACTIONS)", col0 + 1, tok)
        return cls(tuple(_parse_action_seq(arg, acol0, ctx, inner)))
    return h


_ACTIONS = {
    "output": _a_output, "drop": _a_drop,
    "in_port": _a_reserved, "table": _a_reserved, "normal": _a_reserved, "flood": _a_reserved,
    "all": _a_reserved, "controller": _a_reserved, "local": _a_reserved,
    "set_field": _a_set_field,
    "push_vlan": _ethertype_action(M.PushVlan, 0x8100),
    "pop_vlan": _no_arg(M.PopVlan), "strip_vlan": _no_arg(M.PopVlan),
    "push_mpls": _ethertype_action(M.PushMpls, 0x8847),
    "pop_mpls": _ethertype_action(M.PopMpls),
    "push_pbb": _ethertype_action(M.PushPbb, 0x88E7),
    "pop_pbb": _no_arg(M.PopPbb),
    "set_mpls_ttl": _int_action(M.SetMplsTtl, 0, 255),
    "dec_mpls_ttl": _no_arg(M.DecMplsTtl),
    "set_nw_ttl": _int_action(M.SetNwTtl, 0, 255), "mod_nw_ttl": _int_action(M.SetNwTtl, 0, 255),
    "dec_ttl": _no_arg(M.DecNwTtl), "dec_nw_ttl": _no_arg(M.DecNwTtl),
    "copy_ttl_out": _no_arg(M.CopyTtlOut), "copy_ttl_in": _no_arg(M.CopyTtlIn),
    "group": _int_action(M.Group, 0, 0xFFFFFF00),
    "set_queue": _int_action(M.SetQueue, 0, _U32),
    # instructions
    "meter": _int_action(M.Meter, 1, 0xFFFF0000),
    "goto_table": _int_action(M.GotoTable, 0, 254),
    "write_metadata": _a_write_metadata,
    "write_actions": _a_action_list(M.WriteActions, "write"),
    "apply_actions": _a_action_list(M.ApplyActions, "apply"),
    "clear_actions": _no_arg(M.ClearActions),
}
_ACTIONS.update({k: _a_mod for k in _MOD_TARGETS})
_ACTION_NAMES = set(_ACTIONS)


def _parse_action_seq(text, off, ctx, where):
    """A list of actions (no instructions) -> [action]; 'drop' alone -> []."""
    out, drop_at = [], None
    toks = _split_top(text, off, ",")
    for tok, c0 in toks:
        a = _parse_action(tok, c0, ctx, where)
        if a is _DROP:
            drop_at = (tok, c0)
        else:
            out.append(a)
    if drop_at and len(toks) > 1:
        raise FlowSyntaxError("'drop' cannot be combined with other actions",
                              drop_at[1] + 1, drop_at[0])
    return out


def _parse_instruction_seq(text, off, ctx):
    """A top-level action list -> instructions tuple.

    Plain actions form one ApplyActions placed where the first of them is;
    instructions keep their order; each instruction type at most once."""
    toks = _split_top(text, off, ",")
    instrs, bare, bare_at, seen, drop_at = [], [], None, {}, None
    for tok, c0 in toks:
        a = _parse_action(tok, c0, ctx, "top")
        if a is _DROP:
            drop_at = (tok, c0)
            continue
        if isinstance(a, _INSTRUCTION_TYPES):
            t = type(a)
            if t in seen or (t is M.ApplyActions and bare_at is not None):
                raise FlowSyntaxError(f"instruction {tok.split('(')[0].split(':')[0]!r} "
                                      "given twice", c0 + 1, tok)
            seen[t] = c0
            instrs.append(a)
        else:
            if M.ApplyActions in seen:
                raise FlowSyntaxError("plain actions cannot be combined with apply_actions(...)",
                                      c0 + 1, tok)
            if bare_at is None:
                bare_at = len(instrs)
                instrs.append(None)
            bare.append(a)
    if drop_at and len(toks) > 1:
        raise FlowSyntaxError("'drop' cannot be combined with other actions",
                              drop_at[1] + 1, drop_at[0])
    if bare_at is not None:
        instrs[bare_at] = M.ApplyActions(tuple(bare))
    return tuple(instrs)


def parse_instructions(text, match=None, port_names=None, _off=0):
    """The text after 'actions=' -> tuple of instructions.

    `match` gives the context for tp_src/tp_dst/mod_tp_* resolution."""
    return _parse_instruction_seq(text, _off, _ActionContext(match, port_names))


def parse_actions(text, match=None, port_names=None):
    """A plain action list (as in a bucket or write_actions) -> tuple."""
    return tuple(_parse_action_seq(text, 0, _ActionContext(match, port_names), "apply"))


def format_action(a):
    """One model action as ovs-ofctl text."""
    t = type(a)
    if t is M.Output:
        if a.port == M.OFPP_CONTROLLER:
            return f"CONTROLLER:{a.max_len}"
        if a.port in _PORT_NAMES and a.port != M.OFPP_ANY:
            return _PORT_NAMES[a.port]
        return f"output:{format_port(a.port)}"
    if t is M.SetField:
        return f"set_field:{format_field_value(a.field, a.value)}->{a.field}"
    if t is M.PushVlan:
        return f"push_vlan:0x{a.ethertype:04x}"
    if t is M.PopVlan:
        return "pop_vlan"
    if t is M.PushMpls:
        return f"push_mpls:0x{a.ethertype:04x}"
    if t is M.PopMpls:
        return f"pop_mpls:0x{a.ethertype:04x}"
    if t is M.PushPbb:
        return f"push_pbb:0x{a.ethertype:04x}"
    if t is M.PopPbb:
        return "pop_pbb"
    if t is M.SetMplsTtl:
        return f"set_mpls_ttl:{a.ttl}"
    if t is M.DecMplsTtl:
        return "dec_mpls_ttl"
    if t is M.SetNwTtl:
        return f"mod_nw_ttl:{a.ttl}"
    if t is M.DecNwTtl:
        return "dec_ttl"
    if t is M.CopyTtlOut:
        return "copy_ttl_out"
    if t is M.CopyTtlIn:
        return "copy_ttl_in"
    if t is M.Group:
        return f"group:{a.group_id}"
    if t is M.SetQueue:
        return f"set_queue:{a.queue_id}"
    raise TypeError(f"not an action: {a!r}")


def format_actions(actions):
    """A plain action list; the empty list prints as 'drop'."""
    return ",".join(format_action(a) for a in actions) or "drop"


def format_instructions(instructions):
    """Instructions as the text after 'actions=' ('drop' when empty)."""
    n_apply = sum(1 for i in instructions if type(i) is M.ApplyActions)
    out = []
    for ins in instructions:
        t = type(ins)
        if t is M.ApplyActions:
            inner = ",".join(format_action(a) for a in ins.actions)
            out.append(inner if (inner and n_apply == 1) else f"apply_actions({inner})")
        elif t is M.WriteActions:
            out.append(f"write_actions({','.join(format_action(a) for a in ins.actions)})")
        elif t is M.ClearActions:
            out.append("clear_actions")
        elif t is M.GotoTable:
            out.append(f"goto_table:{ins.table_id}")
        elif t is M.Meter:
            out.append(f"meter:{ins.meter_id}")
        elif t is M.WriteMetadata:
            if ins.mask == _U64:
                out.append(f"write_metadata:0x{ins.metadata:x}")
            else:
                out.append(f"write_metadata:0x{ins.metadata:x}/0x{ins.mask:x}")
        else:
            raise TypeError(f"not an instruction: {ins!r}")
    return ",".join(out) or "drop"


# --------------------------------------------------------------------------
# flows

def _num(key, raw, vcol0, lo, hi, what=None):
    try:
        v = _int(raw)
    except ValueError:
        raise _bad(raw, key, vcol0, what or "expected a number") from None
    if not lo <= v <= hi:
        raise _bad(raw, key, vcol0, f"expected {lo}..{hi}")
    return v


def _cookie(raw, vcol0):
    vtxt, sep, mtxt = raw.partition("/")
    v = _num("cookie", vtxt, vcol0, 0, _U64)
    if not sep:
        return v, None
    if mtxt.strip() == "-1":
        return v, _U64
    return v, _num("cookie", mtxt, vcol0 + len(vtxt) + 1, 0, _U64)


def _parse_flow_common(text, port_names, mode):
    items, actions_text, acol0 = _flow_tokens(text)
    spec = FlowSpec()
    flt = FlowFilter()
    mb = _MatchBuilder(port_names)
    for key, raw, kcol0, vcol0 in items:
        lkey = key.lower()
        tok = key if raw is None else f"{key}={raw}"
        if raw is None:
            if lkey in _SHORTHANDS:
                mb.shorthand(lkey, kcol0)
            elif lkey in _FLOW_FLAGS and mode == "add":
                spec.flags |= _FLOW_FLAGS[lkey]
            elif lkey in _FLOW_FLAGS:
                raise FlowSyntaxError(f"flag {key!r} is not allowed in a flow filter",
                                      kcol0 + 1, key)
            elif lkey in _PLAIN or lkey in _CONTEXT or lkey in _SPECIAL or lkey in (
                    "table", "priority", "cookie", "idle_timeout", "hard_timeout"):
                raise FlowSyntaxError(f"field {key!r} needs a value", kcol0 + 1, key,
                                      f"write {key}=VALUE")
            else:
                raise FlowSyntaxError(f"unknown field or keyword {key!r}", kcol0 + 1, key)
            continue
        if lkey == "table":
            if mode == "filter" and raw.strip().lower() == "all":
                flt.table_id = M.OFPTT_ALL
            else:
                t = _num(key, raw, vcol0, 0, 254 if mode == "add" else 255)
                spec.table_id = flt.table_id = t
        elif lkey == "priority":
            spec.priority = flt.priority = _num(key, raw, vcol0, 0, 0xFFFF)
        elif lkey == "cookie":
            v, m = _cookie(raw, vcol0)
            if mode == "add":
                if m not in (None, _U64):
                    raise FlowSyntaxError("a cookie mask is only allowed in flow filters "
                                          "(del-flows, dump-flows)", vcol0 + 1, raw)
                spec.cookie = v
            else:
                flt.cookie_mask = _U64 if m is None else m
                flt.cookie = v & flt.cookie_mask
        elif lkey in ("idle_timeout", "hard_timeout"):
            if mode != "add":
                raise FlowSyntaxError(f"{key!r} is not allowed in a flow filter", kcol0 + 1, tok)
            setattr(spec, lkey, _num(key, raw, vcol0, 0, 0xFFFF))
        elif lkey in ("out_port", "out_group"):
            if mode == "add":
                raise FlowSyntaxError(f"{key!r} is only allowed in flow filters "
                                      "(del-flows, dump-flows)", kcol0 + 1, tok)
            if lkey == "out_port":
                flt.out_port = _parse_port(raw, vcol0, key, port_names)
            else:
                flt.out_group = (M.OFPG_ANY if raw.strip().lower() == "any"
                                 else _num(key, raw, vcol0, 0, _U32))
        elif lkey in _IGNORED_KEYS:
            pass            # dump-flows output fed back in
        elif lkey == "importance":
            raise FlowSyntaxError("'importance' is OpenFlow 1.4, not supported", kcol0 + 1, tok)
        elif not mb.add(lkey, raw, kcol0, vcol0):
            raise FlowSyntaxError(f"unknown field {key!r}", kcol0 + 1, key)
    match = mb.build()
    spec.match = flt.match = match
    if mode == "add":
        if actions_text is None:
            raise FlowSyntaxError("missing 'actions='", None, None,
                                  "end the flow with actions=..., e.g. actions=drop")
        spec.instructions = parse_instructions(actions_text, match, port_names, _off=acol0)
        return spec
    if actions_text is not None:
        raise FlowSyntaxError("'actions=' is not allowed in a flow filter", acol0 - 7, "actions")
    return flt


def parse_flow(text, port_names: Optional[Mapping[str, int]] = None) -> FlowSpec:
    """An ovs-ofctl add-flow string -> FlowSpec.

    port_names maps port names to numbers, so in_port=eth0 or output:eth1
    work; reserved ports are known by name anyway."""
    return _parse_flow_common(text, port_names, "add")


def parse_flow_filter(text, port_names: Optional[Mapping[str, int]] = None) -> FlowFilter:
    """A del-flows/dump-flows selector -> FlowFilter: match fields plus
    table=, priority= (used by --strict), cookie=V[/M], out_port=, out_group=."""
    return _parse_flow_common(text or "", port_names, "filter")


def parse_match(text, port_names=None) -> Match:
    """Match text alone (shorthands and fields) -> Match."""
    return parse_flow_filter(text, port_names).match


def format_flow(flow, flags=True):
    """A FlowSpec as add-flow text, or a FlowStats as a dump-flows line:

    ' cookie=0x0, duration=1.234s, table=0, n_packets=3, n_bytes=294, priority=100,in_port=1 actions=output:2'

    Both parse back with parse_flow.  Priority 32768 (the default) is left
    out, as ovs-ofctl does."""
    stats = flow if isinstance(flow, FlowStats) else None
    spec = stats.spec if stats else flow
    flag_words = [k for k, b in _FLOW_FLAGS.items() if spec.flags & b] if flags else []
    match_parts = []
    if spec.priority != 0x8000:
        match_parts.append(f"priority={spec.priority}")
    mtxt = format_match(spec.match)
    if mtxt:
        match_parts.append(mtxt)
    actions = format_instructions(spec.instructions)
    if stats is not None:
        head = [f"cookie=0x{spec.cookie:x}", f"duration={stats.duration_ns / 1e9:.3f}s",
                f"table={spec.table_id}", f"n_packets={stats.packet_count}",
                f"n_bytes={stats.byte_count}"]
        if spec.idle_timeout:
            head.append(f"idle_timeout={spec.idle_timeout}")
        if spec.hard_timeout:
            head.append(f"hard_timeout={spec.hard_timeout}")
        head += flag_words
        return " " + ", ".join(head) + ", " + (
            ",".join(match_parts) + " " if match_parts else "") + f"actions={actions}"
    parts = []
    if spec.table_id:
        parts.append(f"table={spec.table_id}")
    if spec.cookie:
        parts.append(f"cookie=0x{spec.cookie:x}")
    if spec.idle_timeout:
        parts.append(f"idle_timeout={spec.idle_timeout}")
    if spec.hard_timeout:
        parts.append(f"hard_timeout={spec.hard_timeout}")
    parts += flag_words + match_parts
    parts.append(f"actions={actions}")
    return ",".join(parts)


# --------------------------------------------------------------------------
# groups

_GROUP_TYPES = {"all": M.OFPGT_ALL, "select": M.OFPGT_SELECT, "indirect": M.OFPGT_INDIRECT,
                "ff": M.OFPGT_FF, "fast_failover": M.OFPGT_FF}


def _default_weight(gtype):
    return 1 if gtype == M.OFPGT_SELECT else 0


def _bucket_param(item, c0):
    """'weight:10' / 'watch_port=2' -> (key, value text, value col0) or None."""
    m = re.match(r"(weight|watch_port|watch_group|bucket_id|actions)\s*[:=]", item, re.I)
    if not m:
        return None
    return m.group(1).lower(), item[m.end():], c0 + m.end()


def parse_group(text, port_names: Optional[Mapping[str, int]] = None,
                require_buckets=False) -> GroupSpec:
    """`group_id=1,type=select,bucket=weight:10,watch_port:2,actions=output:1,bucket=output:2`
    -> GroupSpec.  Bucket items: weight, watch_port, watch_group, then the
    actions (after 'actions=' or directly).  Select buckets weigh 1 unless
    given."""
    ctx = _ActionContext(None, port_names)
    gid, gtype = None, M.OFPGT_ALL
    buckets = []                 # [[params dict, action tokens, in_actions]]
    for tok, c0 in _split_top(text, 0, ","):
        key, sep, val = tok.partition("=")
        lkey = key.strip().lower()
        vcol0 = c0 + len(key) + 1
        if sep and lkey == "group_id" and not buckets:
            gid = _num("group_id", val, vcol0, 0, 0xFFFFFF00)
        elif sep and lkey == "type" and not buckets:
            t = _GROUP_TYPES.get(val.strip().lower())
            if t is None:
                raise _bad(val, "type", vcol0, "expected all, select, indirect or fast_failover")
            gtype = t
        elif sep and lkey == "bucket":
            buckets.append([{}, [], False, c0])
            if val.strip():
                _bucket_item(buckets[-1], val.strip(), vcol0 + (len(val) - len(val.lstrip())),
                             port_names)
        elif buckets:
            _bucket_item(buckets[-1], tok, c0, port_names)
        else:
            raise FlowSyntaxError(f"unknown group field {key.strip()!r}", c0 + 1, tok,
                                  "expected group_id=, type= or bucket=")
    if gid is None:
        raise FlowSyntaxError("missing 'group_id='", None, None)
    out = []
    for params, acts, _, bc0 in buckets:
        seq = []
        drop = None
        for atok, ac0 in acts:
            a = _parse_action(atok, ac0, ctx, "bucket")
            if a is _DROP:
                drop = (atok, ac0)
            else:
                seq.append(a)
        if drop and len(acts) > 1:
            raise FlowSyntaxError("'drop' cannot be combined with other actions",
                                  drop[1] + 1, drop[0])
        weight = params.get("weight", _default_weight(gtype))
        out.append(Bucket(actions=tuple(seq), weight=weight,
                          watch_port=params.get("watch_port", M.OFPP_ANY),
                          watch_group=params.get("watch_group", M.OFPG_ANY)))
    if require_buckets and not out:
        raise FlowSyntaxError("group has no bucket=", None, None)
    return GroupSpec(group_id=gid, type=gtype, buckets=tuple(out))


def _bucket_item(b, item, c0, port_names):
    params, acts, in_actions = b[0], b[1], b[2]
    if not in_actions:
        p = _bucket_param(item, c0)
        if p is not None:
            key, val, vcol0 = p
            if key == "actions":
                b[2] = True
                if val.strip():
                    acts.append((val.strip(), vcol0 + (len(val) - len(val.lstrip()))))
                return
            if key == "bucket_id":
                raise FlowSyntaxError("'bucket_id' is OpenFlow 1.5, not supported", c0 + 1, item)
            if key in params:
                raise FlowSyntaxError(f"bucket {key!r} given twice", c0 + 1, item)
            if key == "weight":
                params[key] = _num(key, val, vcol0, 0, 0xFFFF)
            elif key == "watch_port":
                params[key] = _parse_port(val, vcol0, key, port_names)
            else:
                params[key] = (M.OFPG_ANY if val.strip().lower() == "any"
                               else _num(key, val, vcol0, 0, _U32))
            return
        b[2] = True
    acts.append((item, c0))


def format_buckets(buckets, gtype=M.OFPGT_ALL):
    """Buckets as 'bucket=...,bucket=...' (the part after the group type)."""
    out = []
    dw = _default_weight(gtype)
    for b in buckets:
        params = []
        if b.weight != dw:
            params.append(f"weight:{b.weight}")
        if b.watch_port != M.OFPP_ANY:
            params.append(f"watch_port:{format_port(b.watch_port)}")
        if b.watch_group != M.OFPG_ANY:
            params.append(f"watch_group:{b.watch_group}")
        params.append(f"actions={format_actions(b.actions)}")
        out.append("bucket=" + ",".join(params))
    return ",".join(out)


def format_group(group: GroupSpec):
    """A GroupSpec as ovs-ofctl add-group text."""
    tname = M.GROUP_TYPE_NAMES.get(group.type, str(group.type))
    s = f"group_id={group.group_id},type={tname}"
    if group.buckets:
        s += "," + format_buckets(group.buckets, group.type)
    return s


def parse_group_id(text):
    """The del-groups selector: '' / 'group_id=all' -> OFPG_ALL, 'group_id=N' -> N."""
    text = (text or "").strip()
    if not text:
        return M.OFPG_ALL
    key, sep, val = text.partition("=")
    if key.strip().lower() != "group_id" or not sep:
        raise FlowSyntaxError(f"unknown group selector {text!r}", 1, text,
                              "expected group_id=N or group_id=all")
    if val.strip().lower() == "all":
        return M.OFPG_ALL
    return _num("group_id", val, len(key) + 1, 0, 0xFFFFFF00)


# --------------------------------------------------------------------------
# meters

_METER_FLAGS = {"kbps": M.OFPMF_KBPS, "pktps": M.OFPMF_PKTPS, "burst": M.OFPMF_BURST,
                "stats": M.OFPMF_STATS}
_BAND_TYPES = {"drop": M.OFPMBT_DROP, "dscp_remark": M.OFPMBT_DSCP_REMARK}
_OFPM_MAX = 0xFFFF0000
_OFPM_ALL = 0xFFFFFFFF


def parse_meter(text) -> MeterSpec:
    """`meter=1,kbps,burst,stats,bands=type=drop,rate=1000,burst_size=100`
    -> MeterSpec.  Each band starts with type=; kbps is assumed when
    neither kbps nor pktps is given."""
    mid, flags, bands, in_bands = None, 0, [], False
    for tok, c0 in _split_top(text, 0, ", \t"):
        key, sep, val = tok.partition("=")
        lkey = key.strip().lower()
        vcol0 = c0 + len(key) + 1
        if in_bands:
            if lkey == "type" and sep:
                t = _BAND_TYPES.get(val.strip().lower())
                if t is None:
                    raise _bad(val, "type", vcol0, "expected drop or dscp_remark")
                bands.append([t, {}, c0])
                continue
            if not bands:
                raise FlowSyntaxError("a band must start with type=", c0 + 1, tok)
            if lkey not in ("rate", "burst_size", "prec_level") or not sep:
                raise FlowSyntaxError(f"unknown band field {key.strip()!r}", c0 + 1, tok,
                                      "expected type=, rate=, burst_size=, prec_level=")
            if lkey in bands[-1][1]:
                raise FlowSyntaxError(f"band field {lkey!r} given twice", c0 + 1, tok)
            if lkey == "prec_level" and bands[-1][0] != M.OFPMBT_DSCP_REMARK:
                raise FlowSyntaxError("'prec_level' only applies to dscp_remark bands",
                                      c0 + 1, tok)
            hi = 63 if lkey == "prec_level" else _U32
            bands[-1][1][lkey] = _num(lkey, val, vcol0, 0, hi)
        elif lkey == "meter" and sep:
            mid = _num("meter", val, vcol0, 1, _OFPM_MAX)
        elif lkey in _METER_FLAGS and not sep:
            flags |= _METER_FLAGS[lkey]
        elif lkey == "bands" and sep:
            in_bands = True
            if val.strip():
                # the first band's "type=..." shares the token with "bands="
                inner = val.strip()
                k2, s2, v2 = inner.partition("=")
                if k2.strip().lower() != "type" or not s2:
                    raise FlowSyntaxError("a band must start with type=", vcol0 + 1, inner)
                t = _BAND_TYPES.get(v2.strip().lower())
                if t is None:
                    raise _bad(v2, "type", vcol0 + len(k2) + 1, "expected drop or dscp_remark")
                bands.append([t, {}, vcol0])
        else:
            raise FlowSyntaxError(f"unknown meter field {tok!r}", c0 + 1, tok,
                                  "expected meter=N, kbps, pktps, burst, stats, bands=...")
    if mid is None:
        raise FlowSyntaxError("missing 'meter='", None, None)
    if not flags & (M.OFPMF_KBPS | M.OFPMF_PKTPS):
        flags |= M.OFPMF_KBPS
    out = []
    for t, p, c0 in bands:
        if "rate" not in p:
            raise FlowSyntaxError("band has no rate=", c0 + 1, "type")
        out.append(Band(type=t, rate=p["rate"], burst_size=p.get("burst_size", 0),
                        prec_level=p.get("prec_level", 0)))
    return MeterSpec(meter_id=mid, flags=flags, bands=tuple(out))


def parse_meter_id(text):
    """The del-meters selector: '' / 'meter=all' -> OFPM_ALL, 'meter=N' -> N."""
    text = (text or "").strip()
    if not text:
        return _OFPM_ALL
    key, sep, val = text.partition("=")
    if key.strip().lower() != "meter" or not sep:
        raise FlowSyntaxError(f"unknown meter selector {text!r}", 1, text,
                              "expected meter=N or meter=all")
    if val.strip().lower() == "all":
        return _OFPM_ALL
    return _num("meter", val, len(key) + 1, 1, _OFPM_MAX)


def format_meter(meter: MeterSpec):
    """A MeterSpec as ovs-ofctl add-meter text."""
    parts = [f"meter={meter.meter_id}"]
    parts += [k for k, b in _METER_FLAGS.items() if meter.flags & b]
    bands = []
    for b in meter.bands:
        tname = {v: k for k, v in _BAND_TYPES.items()}.get(b.type, str(b.type))
        s = f"type={tname},rate={b.rate}"
        if b.burst_size:
            s += f",burst_size={b.burst_size}"
        if b.type == M.OFPMBT_DSCP_REMARK:
            s += f",prec_level={b.prec_level}"
        bands.append(s)
    if bands:
        parts.append("bands=" + ",".join(bands))
    return ",".join(parts)
