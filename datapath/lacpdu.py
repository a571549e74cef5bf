"""LACPDU and Marker PDU encode/decode (IEEE 802.1AX, Slow Protocols).

Who uses it: datapath/lacp.py (the LACP protocol machines) and whatever
hands Slow Protocols frames (ethertype 0x8809) to them: the bond code in
the daemon, tests, the interop harness.

What is here:
  - PortInfo: one Actor or Partner Information TLV (system priority, system
    MAC, key, port priority, port number, state bits).
  - Lacpdu (subtype 1) and MarkerPdu (subtype 2, Marker Information or
    Marker Response), plain frozen dataclasses.
  - encode(pdu) -> 110 bytes (subtype .. padding; what follows the
    ethertype), decode(buf) -> Lacpdu | MarkerPdu.
  - frame(src_mac, payload) / unframe(frame): the Ethernet wrapping
    (dst 01:80:c2:00:00:02, ethertype 0x8809).
  - The state bit constants (ACTIVITY .. EXPIRED) and state_names().

Validation is strict and never reads past the buffer: every offset is
checked against len(buf) before it is read.  Anything wrong raises a
subclass of PduError whose `.kind` names the problem, one word, used as
the counter name by the protocol machine:
    "truncated"  shorter than the 110 octets a PDU occupies
    "subtype"    not LACP (1) or Marker (2)  (OAM, OSSP, junk)
    "version"    version number other than 1
    "tlv"        a TLV type or length that is not where/what 802.1AX says
    "frame"      the Ethernet wrapping is wrong (ethertype, destination,
                 a VLAN tag: Slow Protocols frames are never tagged)
Reserved octets are ignored on receipt and sent as zero (802.1AX: "ignored
on receipt").  Octets after the 110 (Ethernet padding, FCS) are ignored.

MAC addresses are 6-byte `bytes` here; mac_bytes() accepts the other
spellings ("aa:bb:cc:dd:ee:ff", a 48-bit int as in datapath/model.py).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

# --- Slow Protocols ------------------------------------------------------
ETH_TYPE_SLOW = 0x8809
SLOW_PROTOCOLS_MAC = b"\x01\x80\xc2\x00\x00\x02"
# 802.1AX-2014 lets LACPDUs go to these group addresses too; we send to the
# Slow Protocols address and accept all three.
NEAREST_CUSTOMER_BRIDGE_MAC = b"\x01\x80\xc2\x00\x00\x00"
NEAREST_NON_TPMR_BRIDGE_MAC = b"\x01\x80\xc2\x00\x00\x03"
LACP_DESTINATIONS = (SLOW_PROTOCOLS_MAC, NEAREST_CUSTOMER_BRIDGE_MAC, NEAREST_NON_TPMR_BRIDGE_MAC)

SUBTYPE_LACP = 1
SUBTYPE_MARKER = 2
VERSION = 1
PDU_LEN = 110                  # both LACPDUs and Marker PDUs, after the ethertype

# LACPDU TLVs
TLV_TERMINATOR = 0
TLV_ACTOR = 1
TLV_PARTNER = 2
TLV_COLLECTOR = 3
INFO_LEN = 20                  # actor/partner TLV length, type+length included
COLLECTOR_LEN = 16

# Marker PDU TLVs
MARKER_INFO = 1
MARKER_RESPONSE = 2
MARKER_LEN = 16

# --- state bits (Actor_State / Partner_State) ----------------------------
ACTIVITY = 0x01        # 1 = active LACP, 0 = passive
TIMEOUT = 0x02         # 1 = short timeout (wants fast periodic), 0 = long
AGGREGATION = 0x04     # 1 = aggregatable, 0 = individual
SYNC = 0x08            # in sync: attached to the right aggregator
COLLECTING = 0x10
DISTRIBUTING = 0x20
DEFAULTED = 0x40       # using default (admin) partner info
EXPIRED = 0x80         # receive machine is in EXPIRED

STATE_BITS = (
    (ACTIVITY, "activity"), (TIMEOUT, "timeout"), (AGGREGATION, "aggregation"),
    (SYNC, "synchronized"), (COLLECTING, "collecting"), (DISTRIBUTING, "distributing"),
    (DEFAULTED, "defaulted"), (EXPIRED, "expired"),
)


def state_names(state):
    """[name, ...] of the bits set in a state octet (ovs-appctl lacp/show words)."""
    return [name for bit, name in STATE_BITS if state & bit]


# --- errors --------------------------------------------------------------
class PduError(ValueError):
    """A Slow Protocols PDU that cannot be accepted.  `.kind` is one word."""
    kind = "malformed"


class TruncatedError(PduError):
    kind = "truncated"


class SubtypeError(PduError):
    kind = "subtype"


class VersionError(PduError):
    kind = "version"


class TlvError(PduError):
    kind = "tlv"


class FrameError(PduError):
    kind = "frame"


ERROR_KINDS = ("truncated", "subtype", "version", "tlv", "frame")


# --- values --------------------------------------------------------------
def mac_bytes(mac):
    """6-byte MAC from bytes, "aa:bb:cc:dd:ee:ff" / "aa-bb-..", or a 48-bit int."""
    if isinstance(mac, (bytes, bytearray, memoryview)):
        b = bytes(mac)
    elif isinstance(mac, int):
        if not 0 <= mac < 1 << 48:
            raise ValueError(f"MAC out of range: {mac:#x}")
        b = mac.to_bytes(6, "big")
    elif isinstance(mac, str):
        parts = mac.replace("-", ":").split(":")
        if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
            raise ValueError(f"bad MAC address {mac!r}")
        try:
            b = bytes(int(p, 16) for p in parts)
        except ValueError:
            raise ValueError(f"bad MAC address {mac!r}") from None
    else:
        raise TypeError(f"MAC must be bytes, str or int, not {type(mac).__name__}")
    if len(b) != 6:
        raise ValueError(f"MAC must be 6 bytes, got {len(b)}")
    return b


def mac_str(mac):
    return ":".join(f"{x:02x}" for x in bytes(mac))


def _check_u(name, v, bits):
    if not isinstance(v, int) or not 0 <= v < 1 << bits:
        raise ValueError(f"{name} must be an int in 0..{(1 << bits) - 1}, got {v!r}")


@dataclass(frozen=True)
class PortInfo:
    """Actor or Partner Information: who a port is and what state it is in."""
    system_priority: int = 0
    system: bytes = b"\x00" * 6
    key: int = 0
    port_priority: int = 0
    port: int = 0
    state: int = 0

    def check(self):
        _check_u("system_priority", self.system_priority, 16)
        if not isinstance(self.system, bytes) or len(self.system) != 6:
            raise ValueError(f"system must be 6 bytes, got {self.system!r}")
        _check_u("key", self.key, 16)
        _check_u("port_priority", self.port_priority, 16)
        _check_u("port", self.port, 16)
        _check_u("state", self.state, 8)

    def same_port(self, other):
        """Equal in everything but the state octet."""
        return (self.system_priority == other.system_priority and self.system == other.system
                and self.key == other.key and self.port_priority == other.port_priority
                and self.port == other.port)

    def as_dict(self):
        return {"system_priority": self.system_priority, "system": mac_str(self.system),
                "key": self.key, "port_priority": self.port_priority, "port": self.port,
                "state": self.state, "state_names": state_names(self.state)}


@dataclass(frozen=True)
class Lacpdu:
    actor: PortInfo
    partner: PortInfo
    collector_max_delay: int = 0       # tens of microseconds


@dataclass(frozen=True)
class MarkerPdu:
    type: int                          # MARKER_INFO or MARKER_RESPONSE
    requester_port: int
    requester_system: bytes
    transaction_id: int

    def response(self):
        """The Marker Response a responder sends back for this Marker Information."""
        return MarkerPdu(MARKER_RESPONSE, self.requester_port, self.requester_system, self.transaction_id)


# --- encoding ------------------------------------------------------------
# Offsets inside the 110 octets (subtype at 0).
_INFO = struct.Struct("!BBH6sHHHB3x")          # one actor/partner TLV, 20 octets
_COLLECTOR = struct.Struct("!BBH12x")          # 16 octets
_MARKER = struct.Struct("!BBH6sI2x")           # 16 octets
_OFF_ACTOR, _OFF_PARTNER, _OFF_COLLECTOR, _OFF_TERM = 2, 22, 42, 58
_OFF_MARKER, _OFF_MARKER_TERM = 2, 18


def encode(pdu):
    """The 110 octets of a Lacpdu or MarkerPdu (subtype first, zero padded)."""
    buf = bytearray(PDU_LEN)
    if isinstance(pdu, Lacpdu):
        for info in (pdu.actor, pdu.partner):
            info.check()
        _check_u("collector_max_delay", pdu.collector_max_delay, 16)
        buf[0], buf[1] = SUBTYPE_LACP, VERSION
        for off, tlv, info in ((_OFF_ACTOR, TLV_ACTOR, pdu.actor), (_OFF_PARTNER, TLV_PARTNER, pdu.partner)):
            _INFO.pack_into(buf, off, tlv, INFO_LEN, info.system_priority, info.system, info.key,
                            info.port_priority, info.port, info.state)
        _COLLECTOR.pack_into(buf, _OFF_COLLECTOR, TLV_COLLECTOR, COLLECTOR_LEN, pdu.collector_max_delay)
        # terminator (type 0, length 0) and the 50 reserved octets are already zero
    elif isinstance(pdu, MarkerPdu):
        if pdu.type not in (MARKER_INFO, MARKER_RESPONSE):
            raise ValueError(f"marker type must be 1 or 2, got {pdu.type!r}")
        _check_u("requester_port", pdu.requester_port, 16)
        _check_u("transaction_id", pdu.transaction_id, 32)
        if not isinstance(pdu.requester_system, bytes) or len(pdu.requester_system) != 6:
            raise ValueError("requester_system must be 6 bytes")
        buf[0], buf[1] = SUBTYPE_MARKER, VERSION
        _MARKER.pack_into(buf, _OFF_MARKER, pdu.type, MARKER_LEN, pdu.requester_port,
                          pdu.requester_system, pdu.transaction_id)
    else:
        raise TypeError(f"cannot encode {type(pdu).__name__}")
    return bytes(buf)


# --- decoding ------------------------------------------------------------
def _header(buf, subtype):
    if len(buf) < 2:
        raise TruncatedError(f"{len(buf)} octets: no subtype/version")
    if buf[0] != subtype:
        raise SubtypeError(f"subtype {buf[0]}, expected {subtype}")
    if buf[1] != VERSION:
        raise VersionError(f"version {buf[1]}, expected {VERSION}")
    if len(buf) < PDU_LEN:
        raise TruncatedError(f"{len(buf)} octets, a PDU is {PDU_LEN}")


def _tlv(buf, off, want_type, want_len, what):
    t, n = buf[off], buf[off + 1]
    if t != want_type or n != want_len:
        raise TlvError(f"{what} TLV at octet {off}: type {t} length {n}, expected type {want_type} length {want_len}")


def decode_lacpdu(buf):
    buf = memoryview(buf).cast("B") if not isinstance(buf, (bytes, bytearray)) else buf
    _header(buf, SUBTYPE_LACP)
    infos = []
    for off, tlv, what in ((_OFF_ACTOR, TLV_ACTOR, "actor"), (_OFF_PARTNER, TLV_PARTNER, "partner")):
        _tlv(buf, off, tlv, INFO_LEN, what)
        _, _, sp, sysmac, key, pp, port, state = _INFO.unpack_from(buf, off)
        infos.append(PortInfo(sp, bytes(sysmac), key, pp, port, state))
    _tlv(buf, _OFF_COLLECTOR, TLV_COLLECTOR, COLLECTOR_LEN, "collector")
    _, _, delay = _COLLECTOR.unpack_from(buf, _OFF_COLLECTOR)
    _tlv(buf, _OFF_TERM, TLV_TERMINATOR, 0, "terminator")
    return Lacpdu(infos[0], infos[1], delay)


def decode_marker(buf):
    buf = memoryview(buf).cast("B") if not isinstance(buf, (bytes, bytearray)) else buf
    _header(buf, SUBTYPE_MARKER)
    t, n = buf[_OFF_MARKER], buf[_OFF_MARKER + 1]
    if t not in (MARKER_INFO, MARKER_RESPONSE) or n != MARKER_LEN:
        raise TlvError(f"marker TLV: type {t} length {n}, expected type 1 or 2 length {MARKER_LEN}")
    _, _, port, sysmac, xid = _MARKER.unpack_from(buf, _OFF_MARKER)
    _tlv(buf, _OFF_MARKER_TERM, TLV_TERMINATOR, 0, "terminator")
    return MarkerPdu(t, port, bytes(sysmac), xid)


def decode(buf):
    """Lacpdu or MarkerPdu from the octets after the ethertype; PduError if bad."""
    if len(buf) < 1:
        raise TruncatedError("empty PDU")
    if buf[0] == SUBTYPE_LACP:
        return decode_lacpdu(buf)
    if buf[0] == SUBTYPE_MARKER:
        return decode_marker(buf)
    raise SubtypeError(f"slow protocols subtype {buf[0]} is neither LACP (1) nor Marker (2)")


# --- Ethernet ------------------------------------------------------------
ETH_HLEN = 14


def frame(src_mac, payload, dst_mac=SLOW_PROTOCOLS_MAC):
    """Ethernet frame carrying a Slow Protocols PDU (payload = encode(pdu))."""
    return bytes(dst_mac) + mac_bytes(src_mac) + ETH_TYPE_SLOW.to_bytes(2, "big") + bytes(payload)


def unframe(data):
    """(src_mac, payload) of a Slow Protocols frame; FrameError if it is not one."""
    if len(data) < ETH_HLEN:
        raise TruncatedError(f"{len(data)} octets: shorter than an Ethernet header")
    etype = int.from_bytes(data[12:14], "big")
    if etype != ETH_TYPE_SLOW:
        raise FrameError(f"ethertype {etype:#06x} is not Slow Protocols (0x8809)")
    if bytes(data[0:6]) not in LACP_DESTINATIONS:
        raise FrameError(f"destination {mac_str(data[0:6])} is not the Slow Protocols address")
    return bytes(data[6:12]), data[ETH_HLEN:]
