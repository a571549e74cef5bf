"""Spanning tree BPDUs on the wire: encode and strictly decode.

Who calls this: controller/stp/logic.py (the I/O-free bridge machines) builds
and parses every BPDU through this module; the os-ken adapter never needs to
look inside a BPDU (it hands the raw packet-in bytes to `Bridge.rx_bpdu` and
packet-outs the frames the bridge returns), but tests and tools may.

What a BPDU frame looks like (IEEE 802.1D-2004 clause 9, 802.2 LLC):

    +--------------------+--------------+----------------------+---------+
    | dst 01:80:c2:00:00:00 | src (port MAC) | 802.3 length (<=1500) |
    +--------------------+--------------+----------------------+---------+
    | LLC: DSAP 0x42, SSAP 0x42, control 0x03 (UI)                       |
    +--------------------------------------------------------------------+
    | BPDU: protocol id 0x0000 | version | type | ... (4, 35 or 36 octets) |
    +--------------------------------------------------------------------+
    | padding to the 60-octet minimum frame (not counted in the length)   |

BPDU types (octet 4):
  0x00 Configuration BPDU (802.1D STP), 35 octets
  0x80 Topology Change Notification BPDU, 4 octets
  0x02 RST BPDU (802.1w RSTP, protocol version 2; version 3 = MSTP is read as
       RST, as 802.1D-2004 9.3.4 says), 36 octets (the last one is
       "Version 1 Length", 0)

Flags (octet 5):  0x01 TC, 0x02 proposal, 0x0c port role (0 unknown,
1 alternate/backup, 2 root, 3 designated), 0x10 learning, 0x20 forwarding,
0x40 agreement, 0x80 TC acknowledgment.  Configuration BPDUs only define TC
and TCA; the other bits are reserved there.

Identifiers are kept as plain integers: a bridge id is the 64-bit value
(priority + system id extension in the top 16 bits, MAC in the low 48), a
port id the 16-bit value (priority in the top 4 bits, port number in the low
12).  Timers are in seconds as floats; on the wire they are 16-bit counts of
1/256 s, so a decoded value is always an exact multiple of 1/256 and encoding
rounds to the nearest 1/256.

Validation (`decode_frame` / `decode_bpdu`) raises `BpduError` whose
`.reason` is one of:
  'truncated'        fewer octets than the header/BPDU type needs
  'not-stp'          not an 802.3/LLC frame to the STP group address
                     (Ethernet II ethertype, VLAN tag, other SAPs, other dst)
  'bad-length'       the 802.3 length field is too small for the LLC header
  'bad-protocol-id'  protocol identifier is not 0
  'bad-version'      type 0x02 (RST) with protocol version < 2
  'unknown-type'     any other BPDU type
Octets after a complete BPDU (MSTP extensions, vendor padding) are ignored,
as 9.3.4 says ("at least 35 octets" etc.).  Semantic checks (message age not
below max age, our own BPDU looped back) belong to the bridge, not here.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

STP_GROUP_MAC = b"\x01\x80\xc2\x00\x00\x00"
LLC_STP = b"\x42\x42\x03"          # DSAP, SSAP, control (UI)

PROTOCOL_ID = 0
TYPE_CONFIG = 0x00
TYPE_TCN = 0x80
TYPE_RST = 0x02
VERSION_STP = 0
VERSION_RSTP = 2

CONFIG_LEN = 35
TCN_LEN = 4
RST_LEN = 36
MIN_FRAME_LEN = 60                  # without FCS

FLAG_TC = 0x01
FLAG_PROPOSAL = 0x02
FLAG_ROLE_MASK = 0x0C
FLAG_ROLE_SHIFT = 2
FLAG_LEARNING = 0x10
FLAG_FORWARDING = 0x20
FLAG_AGREEMENT = 0x40
FLAG_TCA = 0x80

ROLE_UNKNOWN = 0
ROLE_ALT_BACKUP = 1
ROLE_ROOT = 2
ROLE_DESIGNATED = 3
ROLE_NAMES = {ROLE_UNKNOWN: "unknown", ROLE_ALT_BACKUP: "alternate/backup",
              ROLE_ROOT: "root", ROLE_DESIGNATED: "designated"}

_BODY = struct.Struct("!HBBBQIQHHHHH")   # config BPDU, 35 octets
_HDR = struct.Struct("!HBB")
_MAX_TIMER = 0xFFFF / 256.0

REASONS = ("truncated", "not-stp", "bad-length", "bad-protocol-id", "bad-version",
           "unknown-type")


class BpduError(ValueError):
    """A frame that is not a valid BPDU; `.reason` says which rule failed."""

    def __init__(self, reason: str, message: str):
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class Bpdu:
    """One decoded BPDU.  TCN BPDUs carry only `type` (and `version`)."""
    type: int
    version: int = VERSION_STP
    flags: int = 0
    root_id: int = 0
    root_path_cost: int = 0
    bridge_id: int = 0
    port_id: int = 0
    message_age: float = 0.0
    max_age: float = 20.0
    hello_time: float = 2.0
    forward_delay: float = 15.0
    version1_length: int = 0

    # ---- constructors
    @classmethod
    def config(cls, **kw) -> "Bpdu":
        return cls(type=TYPE_CONFIG, version=VERSION_STP, **kw)

    @classmethod
    def tcn(cls) -> "Bpdu":
        return cls(type=TYPE_TCN, version=VERSION_STP)

    @classmethod
    def rst(cls, role: int = ROLE_DESIGNATED, flags: int = 0, **kw) -> "Bpdu":
        flags = (flags & ~FLAG_ROLE_MASK) | ((role & 3) << FLAG_ROLE_SHIFT)
        return cls(type=TYPE_RST, version=VERSION_RSTP, flags=flags, **kw)

    # ---- flag views
    @property
    def is_config(self) -> bool:
        return self.type == TYPE_CONFIG

    @property
    def is_tcn(self) -> bool:
        return self.type == TYPE_TCN

    @property
    def is_rst(self) -> bool:
        return self.type == TYPE_RST

    @property
    def tc(self) -> bool:
        return bool(self.flags & FLAG_TC)

    @property
    def tca(self) -> bool:
        return bool(self.flags & FLAG_TCA)

    @property
    def proposal(self) -> bool:
        return self.is_rst and bool(self.flags & FLAG_PROPOSAL)

    @property
    def agreement(self) -> bool:
        return self.is_rst and bool(self.flags & FLAG_AGREEMENT)

    @property
    def learning(self) -> bool:
        return self.is_rst and bool(self.flags & FLAG_LEARNING)

    @property
    def forwarding(self) -> bool:
        return self.is_rst and bool(self.flags & FLAG_FORWARDING)

    @property
    def role(self) -> int:
        """Port role conveyed: RST BPDUs carry it in the flags; a
        Configuration BPDU always speaks for a designated port; TCNs carry
        none (ROLE_UNKNOWN)."""
        if self.is_config:
            return ROLE_DESIGNATED
        if self.is_rst:
            return (self.flags & FLAG_ROLE_MASK) >> FLAG_ROLE_SHIFT
        return ROLE_UNKNOWN


# ------------------------------------------------------------------ identifiers

def make_bridge_id(priority: int, mac, sys_id_ext: int = 0) -> int:
    """64-bit bridge identifier from a 16-bit priority (+ 12-bit system id
    extension, added to it as 802.1D-2004 9.2.5 says) and a MAC."""
    if not 0 <= priority <= 0xFFFF:
        raise ValueError(f"bridge priority {priority} out of range 0..65535")
    if not 0 <= sys_id_ext <= 0xFFF:
        raise ValueError(f"system id extension {sys_id_ext} out of range 0..4095")
    return (((priority + sys_id_ext) & 0xFFFF) << 48) | mac_to_int(mac)


def split_bridge_id(bridge_id: int) -> tuple[int, int]:
    """(16-bit priority field, 48-bit MAC int)."""
    return bridge_id >> 48, bridge_id & 0xFFFFFFFFFFFF


def make_port_id(priority: int, number: int) -> int:
    """16-bit port identifier (802.1D-2004 9.2.7): 4-bit priority (given as
    0..240 in steps of 16) and a 12-bit port number 1..4095."""
    if not 0 <= priority <= 240 or priority % 16:
        raise ValueError(f"port priority {priority} must be 0..240 in steps of 16")
    if not 1 <= number <= 0xFFF:
        raise ValueError(f"port number {number} must be 1..4095")
    return (priority << 8) | number


def bridge_id_str(bridge_id: int) -> str:
    """The usual text form 'pppp.aabbccddeeff' (OVS, Linux bridge)."""
    prio, mac = split_bridge_id(bridge_id)
    return f"{prio:04x}.{mac:012x}"


def mac_to_int(mac) -> int:
    if isinstance(mac, int):
        if not 0 <= mac < 1 << 48:
            raise ValueError(f"MAC {mac:#x} out of range")
        return mac
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise ValueError(f"MAC must be 6 octets, got {len(mac)}")
        return int.from_bytes(mac, "big")
    if isinstance(mac, str):
        parts = mac.replace("-", ":").split(":")
        if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
            raise ValueError(f"bad MAC text {mac!r}")
        return int.from_bytes(bytes(int(p, 16) for p in parts), "big")
    raise TypeError(f"MAC must be int, bytes or str, not {type(mac).__name__}")


def mac_to_bytes(mac) -> bytes:
    return mac_to_int(mac).to_bytes(6, "big")


def mac_str(mac) -> str:
    return ":".join(f"{b:02x}" for b in mac_to_bytes(mac))


# ------------------------------------------------------------------ encoding

def _timer(value: float, name: str) -> int:
    if not 0 <= value <= _MAX_TIMER:
        raise ValueError(f"{name} {value} out of range 0..{_MAX_TIMER:.3f} s")
    return int(round(value * 256))


def encode_bpdu(b: Bpdu) -> bytes:
    """The BPDU octets (4, 35 or 36), without LLC or Ethernet header."""
    if not 0 <= b.version <= 0xFF:
        raise ValueError(f"protocol version {b.version} out of range")
    if b.type == TYPE_TCN:
        return _HDR.pack(PROTOCOL_ID, b.version, TYPE_TCN)
    if b.type not in (TYPE_CONFIG, TYPE_RST):
        raise ValueError(f"unknown BPDU type {b.type:#x}")
    if b.type == TYPE_RST and b.version < VERSION_RSTP:
        raise ValueError("an RST BPDU needs protocol version >= 2")
    for name, val, top in (("flags", b.flags, 0xFF), ("root_id", b.root_id, (1 << 64) - 1),
                           ("root_path_cost", b.root_path_cost, 0xFFFFFFFF),
                           ("bridge_id", b.bridge_id, (1 << 64) - 1),
                           ("port_id", b.port_id, 0xFFFF),
                           ("version1_length", b.version1_length, 0xFF)):
        if not 0 <= val <= top:
            raise ValueError(f"{name} {val} out of range")
    body = _BODY.pack(PROTOCOL_ID, b.version, b.type, b.flags, b.root_id, b.root_path_cost,
                      b.bridge_id, b.port_id, _timer(b.message_age, "message_age"),
                      _timer(b.max_age, "max_age"), _timer(b.hello_time, "hello_time"),
                      _timer(b.forward_delay, "forward_delay"))
    if b.type == TYPE_RST:
        body += bytes((b.version1_length,))
    return body


def encode_frame(b: Bpdu, src_mac, pad: bool = True) -> bytes:
    """A complete 802.3 frame to 01:80:c2:00:00:00 carrying `b`, padded to
    the 60-octet minimum unless pad=False."""
    payload = LLC_STP + encode_bpdu(b)
    frame = STP_GROUP_MAC + mac_to_bytes(src_mac) + struct.pack("!H", len(payload)) + payload
    if pad and len(frame) < MIN_FRAME_LEN:
        frame += bytes(MIN_FRAME_LEN - len(frame))
    return frame


# ------------------------------------------------------------------ decoding

def decode_bpdu(data: bytes) -> Bpdu:
    """Decode the BPDU octets (after the LLC header); strict, see module doc."""
    data = bytes(data)
    if len(data) < TCN_LEN:
        raise BpduError("truncated", f"{len(data)} octets, a BPDU has at least {TCN_LEN}")
    proto, version, btype = _HDR.unpack_from(data)
    if proto != PROTOCOL_ID:
        raise BpduError("bad-protocol-id", f"protocol identifier {proto:#06x}, expected 0")
    if btype == TYPE_TCN:
        return Bpdu(type=TYPE_TCN, version=version)
    if btype == TYPE_CONFIG:
        need = CONFIG_LEN
    elif btype == TYPE_RST:
        if version < VERSION_RSTP:
            raise BpduError("bad-version", f"RST BPDU with protocol version {version} (< 2)")
        need = RST_LEN
    else:
        raise BpduError("unknown-type", f"BPDU type {btype:#04x}")
    if len(data) < need:
        raise BpduError("truncated", f"{len(data)} octets, BPDU type {btype:#04x} needs {need}")
    (_, _, _, flags, root_id, cost, bridge_id, port_id, age, max_age, hello,
     fwd) = _BODY.unpack_from(data)
    return Bpdu(type=btype, version=version, flags=flags, root_id=root_id,
                root_path_cost=cost, bridge_id=bridge_id, port_id=port_id,
                message_age=age / 256.0, max_age=max_age / 256.0, hello_time=hello / 256.0,
                forward_delay=fwd / 256.0,
                version1_length=data[35] if btype == TYPE_RST else 0)


def decode_frame(frame: bytes) -> Bpdu:
    """Decode a whole Ethernet frame (as a packet-in carries it)."""
    frame = bytes(frame)
    if len(frame) < 14:
        raise BpduError("truncated", f"{len(frame)} octets, shorter than an Ethernet header")
    if frame[:6] != STP_GROUP_MAC:
        raise BpduError("not-stp", f"destination {mac_str(frame[:6])} is not the STP group address")
    (length,) = struct.unpack_from("!H", frame, 12)
    if length > 1500:
        raise BpduError("not-stp", f"ethertype {length:#06x}: not an 802.3 length field")
    if length < len(LLC_STP):
        raise BpduError("bad-length", f"802.3 length {length} is shorter than the LLC header")
    if len(frame) < 14 + length:
        raise BpduError("truncated", f"802.3 length {length} but only {len(frame) - 14} octets follow")
    if frame[14:17] != LLC_STP:
        raise BpduError("not-stp", f"LLC {frame[14:17].hex()} is not 42 42 03")
    return decode_bpdu(frame[17:14 + length])


def frame_src(frame: bytes) -> bytes:
    """The source MAC of a frame (6 octets), for logs."""
    return bytes(frame[6:12])
