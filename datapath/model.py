"""The datapath's vocabulary for flows, groups and meters, as plain Python.

Everything that programs the pipeline speaks this: the ovs-ofctl flow syntax
parser (datapath/flowsyntax.py), the control socket (`vdp ctl`), the config
loader and, later, the OpenFlow codec.  The fast-path facade
(datapath/fastpath.py) turns these into the C structures in ext/.

Values are Python ints throughout: MAC addresses as 48-bit ints, IPv4 as
32-bit, IPv6 as 128-bit, vlan_vid with OFPVID_PRESENT (0x1000) as OXM has it.
Field names are the OXM names without the prefix (``eth_dst``, ``tcp_src``,
``ipv6_nd_target``...), listed in FIELDS in OXM id order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Union

# (name, width in bits, maskable, settable) in OXM basic field id order.
FIELDS = (
    ("in_port", 32, False, False),
    ("in_phy_port", 32, False, False),
    ("metadata", 64, True, False),
    ("eth_dst", 48, True, True),
    ("eth_src", 48, True, True),
    ("eth_type", 16, False, True),
    ("vlan_vid", 13, True, True),
    ("vlan_pcp", 3, False, True),
    ("ip_dscp", 6, False, True),
    ("ip_ecn", 2, False, True),
    ("ip_proto", 8, False, True),
    ("ipv4_src", 32, True, True),
    ("ipv4_dst", 32, True, True),
    ("tcp_src", 16, False, True),
    ("tcp_dst", 16, False, True),
    ("udp_src", 16, False, True),
    ("udp_dst", 16, False, True),
    ("sctp_src", 16, False, True),
    ("sctp_dst", 16, False, True),
    ("icmpv4_type", 8, False, True),
    ("icmpv4_code", 8, False, True),
    ("arp_op", 16, False, True),
    ("arp_spa", 32, True, True),
    ("arp_tpa", 32, True, True),
    ("arp_sha", 48, True, True),
    ("arp_tha", 48, True, True),
    ("ipv6_src", 128, True, True),
    ("ipv6_dst", 128, True, True),
    ("ipv6_flabel", 20, True, True),
    ("icmpv6_type", 8, False, True),
    ("icmpv6_code", 8, False, True),
    ("ipv6_nd_target", 128, False, True),
    ("ipv6_nd_sll", 48, False, True),
    ("ipv6_nd_tll", 48, False, True),
    ("mpls_label", 20, False, True),
    ("mpls_tc", 3, False, True),
    ("mpls_bos", 1, False, True),
    ("pbb_isid", 24, True, True),
    ("tunnel_id", 64, True, True),
    ("ipv6_exthdr", 9, True, False),
)
FIELD_ID = {name: i for i, (name, _, _, _) in enumerate(FIELDS)}
FIELD_BITS = {name: bits for name, bits, _, _ in FIELDS}
MASKABLE = {name for name, _, m, _ in FIELDS if m}
SETTABLE = {name for name, _, _, s in FIELDS if s}

OFPVID_PRESENT = 0x1000

# Reserved OpenFlow port numbers.
OFPP_MAX = 0xFFFFFF00
OFPP_IN_PORT = 0xFFFFFFF8
OFPP_TABLE = 0xFFFFFFF9
OFPP_NORMAL = 0xFFFFFFFA
OFPP_FLOOD = 0xFFFFFFFB
OFPP_ALL = 0xFFFFFFFC
OFPP_CONTROLLER = 0xFFFFFFFD
OFPP_LOCAL = 0xFFFFFFFE
OFPP_ANY = 0xFFFFFFFF
OFPG_ANY = 0xFFFFFFFF
OFPG_ALL = 0xFFFFFFFC
OFPCML_NO_BUFFER = 0xFFFF
OFPTT_ALL = 0xFF


class Match:
    """An OpenFlow match: field name -> (value, mask or None), kept in the
    order the fields were given (the switch test tool compares that order)."""

    __slots__ = ("fields",)

    def __init__(self, fields=None):
        self.fields = dict(fields or {})

    def set(self, name, value, mask=None):
        if name not in FIELD_ID:
            raise ValueError(f"unknown match field {name!r}")
        bits = FIELD_BITS[name]
        full = (1 << bits) - 1
        if mask is not None and (mask & full) == full:
            mask = None
        if mask is not None and name not in MASKABLE:
            raise ValueError(f"field {name} cannot be masked")
        value &= full
        if mask is not None:
            value &= mask
        self.fields[name] = (value, mask)
        return self

    def __eq__(self, other):
        return isinstance(other, Match) and self.fields == other.fields

    def __repr__(self):
        return f"Match({self.fields!r})"


# ---- actions -------------------------------------------------------------
class Output(NamedTuple):
    port: int
    max_len: int = OFPCML_NO_BUFFER


class SetField(NamedTuple):
    field: str
    value: int


class PushVlan(NamedTuple):
    ethertype: int = 0x8100


class PopVlan(NamedTuple):
    pass


class PushMpls(NamedTuple):
    ethertype: int = 0x8847


class PopMpls(NamedTuple):
    ethertype: int


class PushPbb(NamedTuple):
    ethertype: int = 0x88E7


class PopPbb(NamedTuple):
    pass


class SetMplsTtl(NamedTuple):
    ttl: int


class DecMplsTtl(NamedTuple):
    pass


class SetNwTtl(NamedTuple):
    ttl: int


class DecNwTtl(NamedTuple):
    pass


class CopyTtlOut(NamedTuple):
    pass


class CopyTtlIn(NamedTuple):
    pass


class Group(NamedTuple):
    group_id: int


class SetQueue(NamedTuple):
    queue_id: int


Action = Union[Output, SetField, PushVlan, PopVlan, PushMpls, PopMpls, PushPbb,
               PopPbb, SetMplsTtl, DecMplsTtl, SetNwTtl, DecNwTtl, CopyTtlOut,
               CopyTtlIn, Group, SetQueue]


# ---- instructions --------------------------------------------------------
class GotoTable(NamedTuple):
    table_id: int


class WriteMetadata(NamedTuple):
    metadata: int
    mask: int = 0xFFFFFFFFFFFFFFFF


class ApplyActions(NamedTuple):
    actions: tuple


class WriteActions(NamedTuple):
    actions: tuple


class ClearActions(NamedTuple):
    pass


class Meter(NamedTuple):
    meter_id: int


Instruction = Union[GotoTable, WriteMetadata, ApplyActions, WriteActions,
                    ClearActions, Meter]


# ---- flows, groups, meters -----------------------------------------------
OFPFF_SEND_FLOW_REM = 1 << 0
OFPFF_CHECK_OVERLAP = 1 << 1
OFPFF_RESET_COUNTS = 1 << 2
OFPFF_NO_PKT_COUNTS = 1 << 3
OFPFF_NO_BYT_COUNTS = 1 << 4


@dataclass
class FlowSpec:
    """One flow entry as a flow-mod describes it."""
    table_id: int = 0
    priority: int = 0x8000
    match: Match = field(default_factory=Match)
    instructions: tuple = ()
    cookie: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    flags: int = 0


@dataclass
class FlowStats:
    """A flow as dumped back from the pipeline."""
    spec: FlowSpec
    packet_count: int
    byte_count: int
    duration_ns: int


OFPGT_ALL, OFPGT_SELECT, OFPGT_INDIRECT, OFPGT_FF = 0, 1, 2, 3
GROUP_TYPE_NAMES = {OFPGT_ALL: "all", OFPGT_SELECT: "select",
                    OFPGT_INDIRECT: "indirect", OFPGT_FF: "fast_failover"}


@dataclass
class Bucket:
    actions: tuple = ()
    weight: int = 0
    watch_port: int = OFPP_ANY
    watch_group: int = OFPG_ANY


@dataclass
class GroupSpec:
    group_id: int
    type: int = OFPGT_ALL
    buckets: tuple = ()


OFPMF_KBPS, OFPMF_PKTPS, OFPMF_BURST, OFPMF_STATS = 1, 2, 4, 8
OFPMBT_DROP, OFPMBT_DSCP_REMARK = 1, 2


@dataclass
class Band:
    type: int            # OFPMBT_DROP or OFPMBT_DSCP_REMARK
    rate: int            # kbps or pktps per the meter's flags
    burst_size: int = 0
    prec_level: int = 0  # dscp_remark only


@dataclass
class MeterSpec:
    meter_id: int
    flags: int = OFPMF_KBPS
    bands: tuple = ()
