"""VRRP on the wire: advertisements, gratuitous ARP / NA, ARP and ND answers.

I/O-free byte codecs used by controller/vrrp/logic.py (the state machine)
and, through it, by the os-ken adapter (controller/vrrp/app.py). Nothing
here keeps state; every function takes bytes or values and returns bytes or
values.

Advertisement formats
- Version 3 (RFC 5798, IPv4 and IPv6): 8-byte header (version/type, VRID,
  priority, address count, 4 reserved bits + 12-bit Max Advert Interval in
  centiseconds, checksum) followed by the addresses. The checksum covers an
  IP pseudo-header (source, destination, length, protocol 112) and the
  message, as RFC 5798 5.2.8 says, for IPv6 and for IPv4. RFC 9568 later
  dropped the pseudo-header for IPv4; keepalived 2.2.7 (our interop peer),
  os-ken and scapy all include it, so we send it by default; the sender
  option `v3_checksum_as_v2=True` (keepalived's knob of the same name) sends
  the message-only sum instead. The decoder accepts either form for v3 over
  IPv4 and says which one it saw in `Advert.checksum_style`.
- Version 2 (RFC 3768, IPv4 only): 8-byte header (version/type, VRID,
  priority, count, auth type, Advert Interval in seconds, checksum), the
  addresses, then 8 bytes of authentication data (a zero-padded text
  password for auth type 1). The checksum covers the VRRP message only.

Frames: Ethernet source = virtual MAC 00:00:5e:00:01:VRID (IPv4) or
00:00:5e:00:02:VRID (IPv6), destination 01:00:5e:00:00:12 / 33:33:00:00:00:12,
optional 802.1Q tag, IP TTL / hop limit 255, DSCP CS6 (TOS 0xc0), protocol 112,
to 224.0.0.18 / ff02::12.

Decoding (`decode_frame`) performs the packet-intrinsic receive checks of
RFC 5798 7.1 / RFC 3768 7.1 and raises `VrrpError(reason)` with one reason
per rule (see REASONS); checks that need the router's configuration (VRID,
version, addresses, auth, interval) live in logic.py. A frame that is not
VRRP at all (other ethertype / IP protocol) raises `NotVrrp`, which is not an
error. Decoding never reads past the buffer and raises nothing else.

Interop notes, checked by tests/unit/test_vrrp_packet.py against
os_ken.lib.packet.vrrp and scapy.layers.vrrp:
- os-ken `vrrp.create_packet()` for IPv6 sets the IPv6 payload length to
  40 + len(VRRP) instead of len(VRRP) (its ipv6 class only computes the
  length when it is 0), so its IPv6 advertisement frames are too long by 40
  bytes in the header: we reject them ('length'), as keepalived would.
- os-ken's v3 parser divides by the address count (ZeroDivisionError on a
  count of 0) and guesses the family from the message length; its
  `create(..., max_adver_int=None)` raises TypeError; v2 auth data is two
  32-bit ints and `is_valid()` refuses any auth type but 0; the v3 reserved
  bits are silently masked. Its v3 checksum includes the IPv4 pseudo-header,
  like ours.
- scapy's VRRPv3 also includes the IPv4 pseudo-header; its VRRP (v2) sums
  the message only. Both agree with ours byte for byte.
"""
import hmac
import ipaddress
import struct
from dataclasses import dataclass, replace

ETH_P_IP = 0x0800
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
ETH_P_8021Q = 0x8100
ETH_P_8021AD = 0x88A8
_VLAN_TPIDS = (ETH_P_8021Q, ETH_P_8021AD, 0x9100)

IPPROTO_VRRP = 112
IPPROTO_ICMPV6 = 58
VRRP_TTL = 255
VRRP_TYPE_ADVERT = 1
TOS_INTERNETWORK_CONTROL = 0xC0

V4_GROUP = ipaddress.IPv4Address("224.0.0.18")
V6_GROUP = ipaddress.IPv6Address("ff02::12")
V4_GROUP_MAC = bytes.fromhex("01005e000012")
V6_GROUP_MAC = bytes.fromhex("333300000012")
BROADCAST_MAC = b"\xff" * 6
V6_ALL_NODES = ipaddress.IPv6Address("ff02::1")
V6_ALL_NODES_MAC = bytes.fromhex("333300000001")

AUTH_NONE = 0
AUTH_PASSWORD = 1          # RFC 3768 says "reserved" (RFC 2338 simple text); keepalived's PASS
AUTH_DATA_LEN = 8
V3_INTERVAL_MAX = 0xFFF    # centiseconds
V2_INTERVAL_MAX = 0xFF     # seconds

ND_NS = 135
ND_NA = 136
ND_OPT_SLLA = 1
ND_OPT_TLLA = 2
NA_FLAG_ROUTER = 0x80000000
NA_FLAG_SOLICITED = 0x40000000
NA_FLAG_OVERRIDE = 0x20000000

# Why an advertisement was dropped: each reason is a counter name
# (`rx_err_<reason>` in VirtualRouter.status()["counters"]).
REASONS = {
    "ip_header": "bad IP header (version, header length, fragment, IPv4 header checksum)",
    "length": "truncated, or the IP payload is not exactly one VRRP message for its address count",
    "ttl": "IPv4 TTL / IPv6 hop limit is not 255",
    "version": "VRRP version is neither 2 (IPv4) nor 3, or not the router's version",
    "checksum": "VRRP checksum does not verify",
    "type": "VRRP type is not 1 (advertisement)",
    "dst": "destination is not 224.0.0.18 / ff02::12",
    "vrid": "no virtual router with this VRID (and family) on the segment",
    "addr_count_zero": "address count is 0 (RFC 5798 5.2.5)",
    "addr_list": "address count / addresses differ from ours and the sender is not the owner",
    "auth_type": "v2 auth type differs from ours",
    "auth": "v2 authentication data (password) differs from ours",
    "interval": "v2 advert interval differs from ours, or a v3 interval of 0",
    "own": "our own advertisement (source is our primary address)",
    "owner": "we are the address owner and ignore adverts (owner_ignore_adverts)",
}


class NotVrrp(ValueError):
    """The frame is not a VRRP advertisement (not an error)."""


class VrrpError(ValueError):
    """A VRRP advertisement failed a receive check.

    reason: one of REASONS; vrid/version/family: what could be read before
    the failure (None when unknown), so the dispatcher can charge the
    counter to the right virtual router."""

    def __init__(self, reason, msg="", vrid=None, version=None, family=None):
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {msg}" if msg else reason)
        self.reason = reason
        self.vrid = vrid
        self.version = version
        self.family = family


# ---------------------------------------------------------------- helpers

def vmac(vrid, family=4):
    """Virtual router MAC as 6 bytes (RFC 5798 7.3)."""
    if not 1 <= vrid <= 255:
        raise ValueError(f"VRID {vrid} out of range 1-255")
    return bytes((0, 0, 0x5E, 0, 1 if family == 4 else 2, vrid))


def mac_str(mac):
    return ":".join(f"{b:02x}" for b in mac)


def mac_bytes(mac):
    if isinstance(mac, (bytes, bytearray)):
        if len(mac) != 6:
            raise ValueError(f"MAC must be 6 bytes, got {len(mac)}")
        return bytes(mac)
    if isinstance(mac, int):
        return mac.to_bytes(6, "big")
    b = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    if len(b) != 6:
        raise ValueError(f"bad MAC {mac!r}")
    return b


def ip(addr):
    """ipaddress object from str/bytes/int/ipaddress."""
    if isinstance(addr, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return addr
    return ipaddress.ip_address(addr)


def solicited_node(addr):
    """(solicited-node multicast address, its MAC) for an IPv6 address: the
    adapter matches Neighbor Solicitations for a virtual address on these."""
    low = ip(addr).packed[13:]
    group = ipaddress.IPv6Address(b"\xff\x02" + b"\0" * 9 + b"\x01\xff" + low)
    return group, b"\x33\x33\xff" + low


def inet_checksum(data, start=0):
    """RFC 1071 one's complement sum, complemented. `start` is a partial
    (uncomplemented) sum to continue from."""
    if len(data) & 1:
        data = bytes(data) + b"\0"
    s = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _pseudo_sum(src, dst, proto, length):
    src, dst = ip(src), ip(dst)
    if src.version == 4:
        hdr = src.packed + dst.packed + struct.pack("!BBH", 0, proto, length)
    else:
        hdr = src.packed + dst.packed + struct.pack("!I3xB", length, proto)
    return sum(struct.unpack(f"!{len(hdr) // 2}H", hdr))


def l4_checksum(proto, src, dst, data):
    """Checksum of `data` (checksum field zeroed) under an IP pseudo-header."""
    return inet_checksum(data, _pseudo_sum(src, dst, proto, len(data)))


# ------------------------------------------------------------ advertisement

@dataclass(frozen=True)
class Advert:
    """One VRRP advertisement, decoded or to be encoded.

    interval is in wire units: centiseconds for v3, seconds for v2
    (`interval_us` gives microseconds for both). addrs is a tuple of
    ipaddress objects. The IP / Ethernet fields are filled by decode_frame
    (None when the advert did not come from a frame)."""
    version: int
    vrid: int
    priority: int
    interval: int
    addrs: tuple
    type: int = VRRP_TYPE_ADVERT
    rsvd: int = 0                       # v3: 4 reserved bits (ignored on receipt)
    auth_type: int = AUTH_NONE          # v2 only
    auth_data: bytes = b"\0" * AUTH_DATA_LEN   # v2 only
    checksum: int = None
    family: int = 4
    src: object = None                  # sender's primary address (IP source)
    dst: object = None
    ttl: int = None
    eth_src: bytes = None
    vlan: int = None                    # outer VLAN id, None if untagged
    checksum_style: str = None          # 'pseudo' | 'message' (v3 IPv4 only) | 'v2'

    @property
    def interval_us(self):
        return self.interval * (10_000 if self.version == 3 else 1_000_000)

    @property
    def interval_seconds(self):
        return self.interval_us / 1e6


def _addr_len(family):
    return 4 if family == 4 else 16


def password_bytes(password):
    """v2 simple text password -> the 8 auth data bytes (zero padded)."""
    if password is None:
        return b"\0" * AUTH_DATA_LEN
    b = password.encode() if isinstance(password, str) else bytes(password)
    if len(b) > AUTH_DATA_LEN:
        raise ValueError(f"VRRP v2 password longer than {AUTH_DATA_LEN} bytes")
    return b.ljust(AUTH_DATA_LEN, b"\0")


def encode(adv, src=None, dst=None, v3_checksum_as_v2=False, checksum=None):
    """The VRRP message of `adv` with its checksum.

    v3 needs src (and dst, default the group) for the pseudo-header;
    `checksum` forces a checksum value (tests of bad checksums)."""
    family = adv.family
    if adv.version not in (2, 3) or (adv.version == 2 and family != 4):
        raise ValueError(f"cannot encode VRRP version {adv.version} over IPv{family}")
    addrs = [ip(a) for a in adv.addrs]
    if any(a.version != family for a in addrs):
        raise ValueError(f"address family mismatch in {adv.addrs}")
    if not 0 <= len(addrs) <= 255:
        raise ValueError("at most 255 addresses")
    if adv.version == 3:
        if not 0 <= adv.interval <= V3_INTERVAL_MAX:
            raise ValueError(f"v3 interval {adv.interval} cs out of range 0-4095")
        word = ((adv.rsvd & 0xF) << 12) | adv.interval
        hdr = struct.pack("!BBBBHH", 0x30 | adv.type, adv.vrid, adv.priority, len(addrs), word, 0)
        tail = b""
    else:
        if not 0 <= adv.interval <= V2_INTERVAL_MAX:
            raise ValueError(f"v2 interval {adv.interval} s out of range 0-255")
        hdr = struct.pack("!BBBBBBH", 0x20 | adv.type, adv.vrid, adv.priority, len(addrs),
                          adv.auth_type, adv.interval, 0)
        tail = bytes(adv.auth_data).ljust(AUTH_DATA_LEN, b"\0")[:AUTH_DATA_LEN]
    msg = bytearray(hdr + b"".join(a.packed for a in addrs) + tail)
    if checksum is None:
        if adv.version == 2 or v3_checksum_as_v2 and family == 4:
            checksum = inet_checksum(msg)
        else:
            if src is None:
                raise ValueError("VRRP v3 checksum needs the IP source address")
            dst = dst if dst is not None else (V4_GROUP if family == 4 else V6_GROUP)
            checksum = l4_checksum(IPPROTO_VRRP, src, dst, msg)
    struct.pack_into("!H", msg, 6, checksum)
    return bytes(msg)


def _eth_header(dst, src, ethertype, vlan=None, pcp=0):
    if vlan is None:
        return dst + src + struct.pack("!H", ethertype)
    if not 0 <= vlan <= 4095:
        raise ValueError(f"VLAN id {vlan} out of range")
    return dst + src + struct.pack("!HHH", ETH_P_8021Q, (pcp << 13) | vlan, ethertype)


def ipv4_header(src, dst, proto, payload_len, ttl=64, tos=0, ident=0):
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + payload_len, ident, 0,
                                ttl, proto, 0, ip(src).packed, ip(dst).packed))
    struct.pack_into("!H", hdr, 10, inet_checksum(hdr))
    return bytes(hdr)


def ipv6_header(src, dst, nh, payload_len, hop_limit=64, tclass=0):
    return struct.pack("!IHBB16s16s", (6 << 28) | (tclass << 20), payload_len, nh, hop_limit,
                       ip(src).packed, ip(dst).packed)


def advert_frame(adv, src, vlan=None, v3_checksum_as_v2=False, ttl=VRRP_TTL, checksum=None,
                 eth_src=None):
    """A whole Ethernet frame carrying `adv` from primary address `src`.

    ttl/checksum/eth_src are overridable for tests of the receive checks."""
    src = ip(src)
    family = adv.family
    if src.version != family:
        raise ValueError(f"source {src} is not IPv{family}")
    group = V4_GROUP if family == 4 else V6_GROUP
    msg = encode(adv, src, group, v3_checksum_as_v2, checksum)
    if family == 4:
        eth = _eth_header(V4_GROUP_MAC, eth_src or vmac(adv.vrid, 4), ETH_P_IP, vlan)
        iph = ipv4_header(src, group, IPPROTO_VRRP, len(msg), ttl, TOS_INTERNETWORK_CONTROL)
    else:
        eth = _eth_header(V6_GROUP_MAC, eth_src or vmac(adv.vrid, 6), ETH_P_IPV6, vlan)
        iph = ipv6_header(src, group, IPPROTO_VRRP, len(msg), ttl, TOS_INTERNETWORK_CONTROL)
    return eth + iph + msg


# ------------------------------------------------------------- frame parse

@dataclass
class L3:
    """Where the network layer of a frame is (parse_l2 / parse_ip)."""
    eth_dst: bytes
    eth_src: bytes
    vlans: tuple          # ((tpid, tci), ...) outermost first
    ethertype: int
    off: int              # offset of the L3 header
    family: int = None    # 4 / 6 once parse_ip ran
    proto: int = None
    src: object = None
    dst: object = None
    ttl: int = None
    l4: bytes = None      # the IP payload, trimmed to the IP length

    @property
    def vlan(self):
        return self.vlans[0][1] & 0xFFF if self.vlans else None


def parse_l2(frame):
    """Ethernet + up to two VLAN tags. Raises NotVrrp if too short."""
    if len(frame) < 14:
        raise NotVrrp("shorter than an Ethernet header")
    off = 12
    vlans = []
    (etype,) = struct.unpack_from("!H", frame, off)
    while etype in _VLAN_TPIDS and len(vlans) < 2:
        if len(frame) < off + 6:
            raise NotVrrp("truncated VLAN tag")
        (tci, etype2) = struct.unpack_from("!HH", frame, off + 2)
        vlans.append((etype, tci))
        etype = etype2
        off += 4
    return L3(bytes(frame[0:6]), bytes(frame[6:12]), tuple(vlans), etype, off + 2)


def _peek_vrrp(frame, off, proto, family):
    """What an IP error can still tell about the VRRP header behind it (so
    the error is charged to the right virtual router)."""
    if proto == IPPROTO_VRRP and off + 2 <= len(frame):
        return dict(vrid=frame[off + 1], version=frame[off] >> 4, family=family)
    return dict(family=family)


def parse_ip(frame, l3=None):
    """IPv4/IPv6 header of a frame (no IPv6 extension headers: VRRP and ND
    never carry them). Raises NotVrrp if not IP, VrrpError for a bad header."""
    l3 = l3 or parse_l2(frame)
    off = l3.off
    avail = len(frame) - off
    if l3.ethertype == ETH_P_IP:
        if avail < 20:
            raise VrrpError("length", "truncated IPv4 header", family=4)
        vihl, _tos, tot, _id, frag, ttl, proto, _ck = struct.unpack_from("!BBHHHBBH", frame, off)
        ihl = (vihl & 0xF) * 4
        info = _peek_vrrp(frame, off + max(ihl, 20), proto, 4)
        if vihl >> 4 != 4 or ihl < 20:
            raise VrrpError("ip_header", "IPv4 version/header length", **info)
        if ihl > avail or tot > avail or tot < ihl:
            raise VrrpError("length", f"IPv4 total length {tot} vs {avail} bytes", **info)
        if inet_checksum(frame[off:off + ihl]) != 0:
            raise VrrpError("ip_header", "IPv4 header checksum", **info)
        if frag & 0x3FFF:
            raise VrrpError("ip_header", "fragment", **info)
        l3.family, l3.proto, l3.ttl = 4, proto, ttl
        l3.src = ipaddress.IPv4Address(bytes(frame[off + 12:off + 16]))
        l3.dst = ipaddress.IPv4Address(bytes(frame[off + 16:off + 20]))
        l3.l4 = bytes(frame[off + ihl:off + tot])
        return l3
    if l3.ethertype == ETH_P_IPV6:
        if avail < 40:
            raise VrrpError("length", "truncated IPv6 header", family=6)
        vtf, plen, nh, hlim = struct.unpack_from("!IHBB", frame, off)
        info = _peek_vrrp(frame, off + 40, nh, 6)
        if vtf >> 28 != 6:
            raise VrrpError("ip_header", "IPv6 version", **info)
        if plen > avail - 40:
            raise VrrpError("length", f"IPv6 payload length {plen} vs {avail - 40} bytes", **info)
        l3.family, l3.proto, l3.ttl = 6, nh, hlim
        l3.src = ipaddress.IPv6Address(bytes(frame[off + 8:off + 24]))
        l3.dst = ipaddress.IPv6Address(bytes(frame[off + 24:off + 40]))
        l3.l4 = bytes(frame[off + 40:off + 40 + plen])
        return l3
    raise NotVrrp(f"ethertype {l3.ethertype:#06x}")


def decode(msg, family=4, src=None, dst=None, ttl=VRRP_TTL, strict_v3_checksum=False):
    """Decode one VRRP message (the IP payload) and run the packet checks.

    src/dst are the IP addresses (needed to verify a v3 checksum; without
    src the v3 checksum is not verified). Raises VrrpError."""
    n = len(msg)
    vrid = msg[1] if n >= 2 else None
    version = msg[0] >> 4 if n >= 1 else None
    info = dict(vrid=vrid, version=version, family=family)
    if ttl is not None and ttl != VRRP_TTL:
        raise VrrpError("ttl", f"TTL/hop limit {ttl}", **info)
    if n < 8:
        raise VrrpError("length", f"{n} bytes, header is 8", **info)
    if version not in (2, 3) or (version == 2 and family != 4):
        raise VrrpError("version", f"version {version} over IPv{family}", **info)
    count = msg[3]
    expect = 8 + count * _addr_len(family) + (AUTH_DATA_LEN if version == 2 else 0)
    if n != expect:
        raise VrrpError("length", f"{n} bytes, {count} addresses need {expect}", **info)
    (csum,) = struct.unpack_from("!H", msg, 6)
    if version == 2:
        style = "v2"
        ok = inet_checksum(msg) == 0
    elif src is None:
        style, ok = None, True
    else:
        d = dst if dst is not None else (V4_GROUP if family == 4 else V6_GROUP)
        style = "pseudo"
        ok = l4_checksum(IPPROTO_VRRP, src, d, msg) == 0
        if not ok and family == 4 and not strict_v3_checksum:
            style = "message"
            ok = inet_checksum(msg) == 0
    if not ok:
        raise VrrpError("checksum", f"checksum {csum:#06x}", **info)
    if msg[0] & 0xF != VRRP_TYPE_ADVERT:
        raise VrrpError("type", f"type {msg[0] & 0xF}", **info)
    if dst is not None and ip(dst) != (V4_GROUP if family == 4 else V6_GROUP):
        raise VrrpError("dst", f"destination {dst}", **info)
    alen = _addr_len(family)
    cls = ipaddress.IPv4Address if family == 4 else ipaddress.IPv6Address
    addrs = tuple(cls(bytes(msg[8 + i * alen:8 + (i + 1) * alen])) for i in range(count))
    if version == 3:
        (word,) = struct.unpack_from("!H", msg, 4)
        return Advert(3, vrid, msg[2], word & 0xFFF, addrs, rsvd=word >> 12, checksum=csum,
                      family=family, src=ip(src) if src is not None else None,
                      dst=ip(dst) if dst is not None else None, ttl=ttl, checksum_style=style)
    return Advert(2, vrid, msg[2], msg[5], addrs, auth_type=msg[4],
                  auth_data=bytes(msg[-AUTH_DATA_LEN:]), checksum=csum, family=4,
                  src=ip(src) if src is not None else None,
                  dst=ip(dst) if dst is not None else None, ttl=ttl, checksum_style=style)


def decode_frame(frame, strict_v3_checksum=False, l3=None):
    """Decode a VRRP advertisement from an Ethernet frame (optionally VLAN
    tagged). Raises NotVrrp (not VRRP) or VrrpError (failed a check)."""
    l3 = parse_ip(frame, l3)
    if l3.proto != IPPROTO_VRRP:
        raise NotVrrp(f"IP protocol {l3.proto}")
    adv = decode(l3.l4, l3.family, l3.src, l3.dst, l3.ttl, strict_v3_checksum)
    return replace(adv, eth_src=l3.eth_src, vlan=l3.vlan)


# -------------------------------------------------------- ARP / ND frames

def _arp(op, eth_dst, eth_src, sha, spa, tha, tpa, vlan=None):
    return (_eth_header(eth_dst, eth_src, ETH_P_ARP, vlan)
            + struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, op, sha, ip(spa).packed,
                          tha, ip(tpa).packed))


def gratuitous_arp(mac, vip, vlan=None):
    """Gratuitous ARP request announcing `vip` at `mac` (RFC 5798 6.4.1:
    broadcast, sender = target = vip, target hardware address zero)."""
    mac = mac_bytes(mac)
    return _arp(1, BROADCAST_MAC, mac, mac, vip, b"\0" * 6, vip, vlan)


def _na(eth_dst, mac, src, dst, target, flags, vlan=None):
    icmp = bytearray(struct.pack("!BBHI16sBB6s", ND_NA, 0, 0, flags, ip(target).packed,
                                 ND_OPT_TLLA, 1, mac))
    struct.pack_into("!H", icmp, 2, l4_checksum(IPPROTO_ICMPV6, src, dst, icmp))
    return (_eth_header(eth_dst, mac, ETH_P_IPV6, vlan)
            + ipv6_header(src, dst, IPPROTO_ICMPV6, len(icmp), 255) + bytes(icmp))


def unsolicited_na(mac, vip, vlan=None, router=True):
    """Unsolicited Neighbor Advertisement for `vip` at `mac` to all-nodes
    (RFC 5798 6.4.1: Router flag set, Solicited clear, Override set, target
    link-layer address option = mac). The IPv6 source is the VIP itself."""
    mac = mac_bytes(mac)
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    return _na(V6_ALL_NODES_MAC, mac, vip, V6_ALL_NODES, vip, flags, vlan)


def parse_arp_request(frame, l3=None):
    """(sender MAC, sender IP, target IP, vlan) of an ARP request, or None."""
    try:
        l3 = l3 or parse_l2(frame)
    except NotVrrp:
        return None
    if l3.ethertype != ETH_P_ARP or len(frame) < l3.off + 28:
        return None
    htype, ptype, hlen, plen, op, sha, spa, _tha, tpa = struct.unpack_from(
        "!HHBBH6s4s6s4s", frame, l3.off)
    if (htype, ptype, hlen, plen, op) != (1, ETH_P_IP, 6, 4, 1):
        return None
    return sha, ipaddress.IPv4Address(spa), ipaddress.IPv4Address(tpa), l3


def arp_reply(request, mac, vips):
    """The ARP reply for an ARP request frame asking for one of `vips`, from
    `mac` (the virtual MAC); None if the frame is not such a request. The
    reply goes back to the requester with the request's VLAN tag."""
    req = parse_arp_request(request)
    if req is None:
        return None
    sha, spa, tpa, l3 = req
    if tpa not in {ip(v) for v in vips}:
        return None
    if spa == tpa:          # a gratuitous ARP for our address, not a question
        return None
    mac = mac_bytes(mac)
    return _arp(2, l3.eth_src, mac, mac, tpa, sha, spa, l3.vlan)


def parse_ns(frame, l3=None):
    """(target, l3) of a valid Neighbor Solicitation (RFC 4861 7.1.1 checks:
    hop limit 255, ICMPv6 checksum, code 0, length >= 24, target not
    multicast, no source link-layer option from the unspecified address),
    or None."""
    try:
        l3 = parse_ip(frame, l3)
    except (NotVrrp, VrrpError):
        return None
    if l3.family != 6 or l3.proto != IPPROTO_ICMPV6 or l3.ttl != 255:
        return None
    icmp = l3.l4
    if len(icmp) < 24 or icmp[0] != ND_NS or icmp[1] != 0:
        return None
    if l4_checksum(IPPROTO_ICMPV6, l3.src, l3.dst, icmp) != 0:
        return None
    target = ipaddress.IPv6Address(bytes(icmp[8:24]))
    if target.is_multicast:
        return None
    off = 24
    while off + 2 <= len(icmp):
        otype, olen = icmp[off], icmp[off + 1]
        if olen == 0 or off + olen * 8 > len(icmp):
            return None
        if otype == ND_OPT_SLLA and l3.src.is_unspecified:
            return None
        off += olen * 8
    return target, l3


def na_reply(request, mac, vips, router=True):
    """The Neighbor Advertisement answering a Neighbor Solicitation frame
    for one of `vips`, from `mac`; None if the frame is not such a request.
    Solicited + Override (+ Router); to the solicitor, or to all-nodes with
    Solicited clear when the solicitor is the unspecified address (DAD)."""
    ns = parse_ns(request)
    if ns is None:
        return None
    target, l3 = ns
    if target not in {ip(v) for v in vips}:
        return None
    mac = mac_bytes(mac)
    flags = NA_FLAG_OVERRIDE | (NA_FLAG_ROUTER if router else 0)
    if l3.src.is_unspecified:
        return _na(V6_ALL_NODES_MAC, mac, target, V6_ALL_NODES, target, flags, l3.vlan)
    return _na(l3.eth_src, mac, target, l3.src, target, flags | NA_FLAG_SOLICITED, l3.vlan)


def auth_ok(adv, auth_type, auth_data):
    """v2 authentication check: (type matches, data matches)."""
    if adv.auth_type != auth_type:
        return False, False
    if auth_type == AUTH_PASSWORD:
        return True, hmac.compare_digest(bytes(adv.auth_data), bytes(auth_data))
    return True, True
