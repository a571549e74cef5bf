"""The VRRP app's datapath logic without I/O: VRRP Actions -> OpenFlow.

Who uses it: controller/vrrp/app.py (the os-ken adapter) keeps one
`VrrpDatapath` per configured datapath and calls its entry points with
`now` (seconds, monotonic); each returns an `Out` (OpenFlow messages to send
in order, VRRP transitions to log).  Messages are os-ken OF1.3 parser
objects built for the `dp` given to connect() (an os-ken Datapath, or any
object with .ofproto / .ofproto_parser: tests use a stub).  Nothing here
reads a clock, sleeps or touches a socket.

What one datapath becomes (tables T_IN = config `table`, T_ROUTE = +1,
T_OUT = +2; every flow carries a cookie 0x5652.. tagged by kind, see
`cookie()`):

  T_IN  (ingress)
    40000  punts -> CONTROLLER per router interface (in_port [+ VLAN]):
           VRRP (IP proto 112 to 224.0.0.18 / ff02::12), ARP requests for
           the virtual and own addresses, ARP replies to our own address,
           Neighbor Solicitations for virtual/own IPv6 addresses, Neighbor
           Advertisements to our own addresses.
    30000  IP to a virtual address (eth_dst = virtual MAC): CONTROLLER when
           accept mode / address owner (we answer echo requests), else drop;
           IP to an own address -> CONTROLLER (echo replies).
    20000  eth_dst = virtual MAC (while Master) or the interface's own MAC,
           IPv4/IPv6 -> [pop VLAN] goto T_ROUTE.  The virtual-MAC flows are
           the FlowChange "install"/"remove" of logic.py.
        0  table-miss: drop (config table_miss: drop | controller | none).
  T_ROUTE (longest prefix first: priority 1000 + 2*prefixlen (+1 connected))
    host /32 (/128) flows for resolved neighbours on connected subnets,
    static routes whose next hop is resolved:
           set eth_dst = next hop MAC, dec_nw_ttl, metadata = egress
           interface index, goto T_OUT;
    connected subnets -> CONTROLLER: we resolve (ARP / NS), install the
           host flow and forward the waiting packets by PACKET_OUT.
  T_OUT (egress, per interface and family)
    metadata = interface -> set eth_src (the virtual MAC of a virtual
           router we are Master of on that interface, else the interface's
           own MAC), [push VLAN], output port (IN_PORT when it is the
           ingress port).

Frames from the state machine (adverts, gratuitous ARP / unsolicited NA,
ARP / NA answers) leave by PACKET_OUT on their interface's port.  PORT_STATUS
link changes feed the routers' "port:N" tracks.
"""
from __future__ import annotations

import ipaddress
import logging
import struct
from dataclasses import dataclass, field

from controller.vrrp import logic
from controller.vrrp import packet as pk
from controller.vrrp.config import DatapathConfig, Interface

log = logging.getLogger("vdp.vrrp.app")

# cookies: 16-bit app tag, 8-bit kind, 8-bit family, 8-bit VRID, 24-bit interface
COOKIE_APP = 0x5652 << 48
COOKIE_APP_MASK = 0xFFFF << 48
COOKIE_ALL = (1 << 64) - 1
K_PUNT, K_GATE, K_LOCAL, K_ROUTE, K_RESOLVE, K_HOST, K_EGRESS, K_MISS = range(1, 9)

P_PUNT = 40000
P_ACCEPT = 30000
P_GATE = 20000
P_ROUTE_BASE = 1000
P_EGRESS = 100
P_HAIRPIN = 200

OFPVID_PRESENT = 0x1000
ETH_TYPE = {4: pk.ETH_P_IP, 6: pk.ETH_P_IPV6}

# neighbour resolution
REQUEST_INTERVAL = 1.0      # s between ARP/NS retries
MAX_TRIES = 3               # on-demand resolution gives up after this many
REACHABLE = 30.0            # s a learned MAC is trusted without a new answer
STATIC_REFRESH = 30.0       # s between refreshes of static next hops
HOST_IDLE = 60              # s idle timeout of host flows
PENDING_MAX = 8             # packets kept per unresolved neighbour

ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY = 8, 0
ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY = 128, 129


def cookie(kind, iface=0, family=0, vrid=0):
    return COOKIE_APP | (kind << 40) | ((family & 0xFF) << 32) | ((vrid & 0xFF) << 24) \
        | (iface & 0xFFFFFF)


def cookie_kind(c):
    """The kind of one of our cookies, or None for someone else's."""
    if c is None or (c & COOKIE_APP_MASK) != COOKIE_APP:
        return None
    return (c >> 40) & 0xFF


def cookie_iface(c):
    return c & 0xFFFFFF


def route_priority(prefixlen, connected=False):
    return P_ROUTE_BASE + 2 * prefixlen + (1 if connected else 0)


@dataclass
class PortInfo:
    hw_addr: str                 # "02:..:.."
    link_up: bool
    name: str = ""


@dataclass
class Out:
    """What an entry point asks the adapter to do: send `msgs` in order,
    log `transitions` ((interface name, logic.Transition) pairs)."""
    msgs: list = field(default_factory=list)
    transitions: list = field(default_factory=list)

    def extend(self, other):
        self.msgs += other.msgs
        self.transitions += other.transitions
        return self


@dataclass
class Neighbor:
    iface: int
    ip: object
    mac: str | None = None
    learned_at: float | None = None
    static: bool = False         # a static route's next hop: resolved proactively
    host_flow: str | None = None  # MAC in the installed host flow
    static_flow: str | None = None  # MAC in the installed static route flows
    tries: int = 0
    next_try: float | None = None
    pending: list = field(default_factory=list)   # (in_port, frame) waiting for the MAC
    failed: int = 0

    def fresh(self, now):
        return self.mac is not None and self.learned_at is not None and \
            now - self.learned_at < REACHABLE


# --------------------------------------------------------------------------
# frames the adapter itself builds (the state machine builds the VRRP ones)

def mac_bytes(mac):
    return pk.mac_bytes(mac)


def _eth(dst, src, ethertype, vlan=None):
    hdr = mac_bytes(dst) + mac_bytes(src)
    if vlan is not None:
        hdr += struct.pack("!HH", pk.ETH_P_8021Q, vlan & 0xFFF)
    return hdr + struct.pack("!H", ethertype)


def arp_request(src_mac, src_ip, target, vlan=None):
    """Broadcast ARP request from (src_mac, src_ip) for target."""
    return _eth(pk.BROADCAST_MAC, src_mac, pk.ETH_P_ARP, vlan) + struct.pack(
        "!HHBBH6s4s6s4s", 1, pk.ETH_P_IP, 6, 4, 1, mac_bytes(src_mac), pk.ip(src_ip).packed,
        b"\0" * 6, pk.ip(target).packed)


def neighbor_solicit(src_mac, src_ip, target, vlan=None):
    """Multicast Neighbor Solicitation for target (to its solicited-node
    group) with our source link-layer address."""
    group, gmac = pk.solicited_node(target)
    icmp = bytearray(struct.pack("!BBHI16sBB6s", pk.ND_NS, 0, 0, 0, pk.ip(target).packed,
                                 pk.ND_OPT_SLLA, 1, mac_bytes(src_mac)))
    struct.pack_into("!H", icmp, 2, pk.l4_checksum(pk.IPPROTO_ICMPV6, src_ip, group, icmp))
    return (_eth(gmac, src_mac, pk.ETH_P_IPV6, vlan)
            + pk.ipv6_header(src_ip, group, pk.IPPROTO_ICMPV6, len(icmp), 255) + bytes(icmp))


def parse_arp(frame, l3=None):
    """(op, sender MAC str, sender IP, target IP) of an Ethernet/IPv4 ARP
    frame, or None."""
    l3 = l3 or pk.parse_l2(frame)
    if l3.ethertype != pk.ETH_P_ARP or len(frame) < l3.off + 28:
        return None
    htype, ptype, hlen, plen, op, sha, spa, _tha, tpa = struct.unpack_from(
        "!HHBBH6s4s6s4s", frame, l3.off)
    if (htype, ptype, hlen, plen) != (1, pk.ETH_P_IP, 6, 4):
        return None
    return op, pk.mac_str(sha), ipaddress.IPv4Address(spa), ipaddress.IPv4Address(tpa)


def parse_na(l3):
    """(target, MAC str) of a Neighbor Advertisement (l3 = parsed IPv6 with
    hop limit 255 and a good checksum), the MAC from its target link-layer
    option or else the Ethernet source; None if not a valid NA."""
    icmp = l3.l4
    if l3.ttl != 255 or len(icmp) < 24 or icmp[0] != pk.ND_NA or icmp[1] != 0:
        return None
    if pk.l4_checksum(pk.IPPROTO_ICMPV6, l3.src, l3.dst, icmp) != 0:
        return None
    target = ipaddress.IPv6Address(bytes(icmp[8:24]))
    mac = None
    off = 24
    while off + 2 <= len(icmp):
        otype, olen = icmp[off], icmp[off + 1]
        if olen == 0 or off + olen * 8 > len(icmp):
            return None
        if otype == pk.ND_OPT_TLLA and olen == 1:
            mac = pk.mac_str(icmp[off + 2:off + 8])
        off += olen * 8
    return target, mac or pk.mac_str(l3.eth_src)


def echo_reply(frame, l3, src_mac):
    """The ICMP / ICMPv6 echo reply to an echo request frame (l3 parsed by
    pk.parse_ip), from src_mac back to the sender; None if not a request."""
    data = l3.l4
    if l3.family == 4:
        if l3.proto != 1 or len(data) < 8 or data[0] != ICMP_ECHO_REQUEST or \
                pk.inet_checksum(data) != 0:
            return None
        icmp = bytearray(data)
        icmp[0], icmp[2:4] = ICMP_ECHO_REPLY, b"\0\0"
        struct.pack_into("!H", icmp, 2, pk.inet_checksum(icmp))
        iph = pk.ipv4_header(l3.dst, l3.src, 1, len(icmp), 64)
        etype = pk.ETH_P_IP
    else:
        if l3.proto != pk.IPPROTO_ICMPV6 or len(data) < 8 or data[0] != ICMPV6_ECHO_REQUEST \
                or pk.l4_checksum(pk.IPPROTO_ICMPV6, l3.src, l3.dst, data) != 0:
            return None
        icmp = bytearray(data)
        icmp[0], icmp[2:4] = ICMPV6_ECHO_REPLY, b"\0\0"
        struct.pack_into("!H", icmp, 2, pk.l4_checksum(pk.IPPROTO_ICMPV6, l3.dst, l3.src, icmp))
        iph = pk.ipv6_header(l3.dst, l3.src, pk.IPPROTO_ICMPV6, len(icmp), 64)
        etype = pk.ETH_P_IPV6
    return _eth(l3.eth_src, src_mac, etype, l3.vlan) + iph + bytes(icmp)


def strip_vlan(frame):
    """The frame without its outer 802.1Q tag (unchanged if untagged)."""
    if len(frame) >= 18 and struct.unpack_from("!H", frame, 12)[0] in (pk.ETH_P_8021Q,
                                                                      pk.ETH_P_8021AD):
        return frame[:12] + frame[16:]
    return frame


# --------------------------------------------------------------------------
# OpenFlow message builders (os-ken parser objects)

class OF:
    """Builds os-ken OF1.3 messages for one datapath."""

    def __init__(self, dp):
        self.dp = dp
        self.o = dp.ofproto
        self.p = dp.ofproto_parser

    def match(self, **fields):
        return self.p.OFPMatch(**fields)

    def apply(self, *actions):
        return self.p.OFPInstructionActions(self.o.OFPIT_APPLY_ACTIONS, list(actions))

    def goto(self, table):
        return self.p.OFPInstructionGotoTable(table)

    def metadata(self, value):
        return self.p.OFPInstructionWriteMetadata(value, COOKIE_ALL)

    def output(self, port):
        return self.p.OFPActionOutput(port, self.o.OFPCML_NO_BUFFER if
                                      port == self.o.OFPP_CONTROLLER else 0)

    def controller(self):
        return self.apply(self.output(self.o.OFPP_CONTROLLER))

    def set_field(self, **kw):
        return self.p.OFPActionSetField(**kw)

    def add(self, table, priority, match, inst, ck, idle=0):
        return self.p.OFPFlowMod(self.dp, cookie=ck, cookie_mask=0, table_id=table,
                                 command=self.o.OFPFC_ADD, idle_timeout=idle, hard_timeout=0,
                                 priority=priority, buffer_id=self.o.OFP_NO_BUFFER,
                                 out_port=self.o.OFPP_ANY, out_group=self.o.OFPG_ANY,
                                 flags=0, match=match, instructions=list(inst))

    def delete(self, table, ck=COOKIE_APP, mask=COOKIE_APP_MASK, match=None, strict=False,
               priority=0):
        cmd = self.o.OFPFC_DELETE_STRICT if strict else self.o.OFPFC_DELETE
        return self.p.OFPFlowMod(self.dp, cookie=ck, cookie_mask=mask, table_id=table,
                                 command=cmd, idle_timeout=0, hard_timeout=0,
                                 priority=priority, buffer_id=self.o.OFP_NO_BUFFER,
                                 out_port=self.o.OFPP_ANY, out_group=self.o.OFPG_ANY, flags=0,
                                 match=match if match is not None else self.p.OFPMatch(),
                                 instructions=[])

    def packet_out(self, port, data, actions=None, in_port=None):
        acts = actions if actions is not None else [self.output(port)]
        return self.p.OFPPacketOut(self.dp, buffer_id=self.o.OFP_NO_BUFFER,
                                   in_port=self.o.OFPP_CONTROLLER if in_port is None else in_port,
                                   actions=acts, data=bytes(data))


def _ip_match_field(family):
    return "ipv4_dst" if family == 4 else "ipv6_dst"


# --------------------------------------------------------------------------

class VrrpDatapath:
    """The VRRP routers, routes and neighbours of one configured datapath."""

    def __init__(self, cfg: DatapathConfig):
        self.cfg = cfg
        self.t_in, self.t_route, self.t_out = cfg.table, cfg.table + 1, cfg.table + 2
        self.ifaces = {i.index: i for i in cfg.interfaces}
        self.segments = {}               # iface index -> logic.RouterSet
        for i in cfg.interfaces:
            self.segments[i.index] = logic.RouterSet(vlan=i.vlan, name=f"{cfg.name}/{i.name}")
        for r in cfg.routers:
            iface = cfg.interface(r.interface)
            self.segments[iface.index].add(r.virtual_router(iface.vlan, f"{cfg.name} "))
        self.dp = None
        self.of = None
        self.ports = {}                  # port_no -> PortInfo
        self.neighbors = {}              # (iface index, ip) -> Neighbor
        self.egress_src = {}             # (iface index, family) -> MAC installed
        self.connected_at = None
        self.counters = {"packet_in": 0, "packet_in_unknown_port": 0, "packet_in_ignored": 0,
                         "arp_replies_sent": 0, "na_sent": 0, "echo_replies_sent": 0,
                         "forwarded_after_resolve": 0, "resolve_failed": 0,
                         "resolve_no_route": 0, "pending_dropped": 0}
        for rt in cfg.routes:
            iface = cfg.interface(rt.interface)
            self._neighbor(iface.index, rt.via).static = True

    # ------------------------------------------------------------ helpers

    def iface_mac(self, iface: Interface):
        if iface.mac:
            return iface.mac
        p = self.ports.get(iface.port)
        return p.hw_addr if p else None

    def link_up(self, port):
        p = self.ports.get(port)
        return bool(p and p.link_up)

    def _shared_port(self, iface):
        return any(o.port == iface.port and o.index != iface.index for o in self.cfg.interfaces)

    def _in(self, iface, **fields):
        """Match on an interface's ingress: in_port, and the VLAN when it has
        one (untagged: vlan_vid NONE only when VLANs share its port)."""
        m = {"in_port": iface.port}
        if iface.vlan is not None:
            m["vlan_vid"] = OFPVID_PRESENT | iface.vlan
        elif self._shared_port(iface):
            m["vlan_vid"] = 0
        m.update(fields)
        return self.of.match(**m)

    def _neighbor(self, idx, ip):
        key = (idx, ip)
        n = self.neighbors.get(key)
        if n is None:
            n = self.neighbors[key] = Neighbor(idx, ip)
        return n

    def own_ips(self, iface, family=None):
        return [a.ip for a in iface.addresses if family is None or a.version == family]

    def vips(self, idx, family=None):
        return [v for r in self.segments[idx].routers.values()
                if family is None or r.family == family for v in r.vips]

    def families(self, iface):
        fams = {a.version for a in iface.addresses}
        fams |= {r.family for r in self.segments[iface.index].routers.values()}
        return sorted(fams)

    # ---------------------------------------------------------- flows

    def egress_actions(self, iface, family, in_port=None):
        of = self.of
        acts = [of.set_field(eth_src=self._egress_src(iface, family))]
        if iface.vlan is not None:
            acts += [of.p.OFPActionPushVlan(pk.ETH_P_8021Q),
                     of.set_field(vlan_vid=OFPVID_PRESENT | iface.vlan)]
        port = of.o.OFPP_IN_PORT if in_port == iface.port else iface.port
        return acts + [of.output(port)]

    def _egress_src(self, iface, family):
        masters = sorted((r.vrid, r) for r in self.segments[iface.index].routers.values()
                         if r.family == family and r.state == logic.MASTER)
        if masters:
            return pk.mac_str(masters[0][1].vmac)
        return self.iface_mac(iface)

    def egress_flows(self, iface, family, force=False):
        """T_OUT flows of (iface, family) if their source MAC changed."""
        src = self._egress_src(iface, family)
        key = (iface.index, family)
        if src is None or (not force and self.egress_src.get(key) == src):
            return []
        self.egress_src[key] = src
        of = self.of
        ck = cookie(K_EGRESS, iface.index, family)
        m = dict(metadata=iface.index, eth_type=ETH_TYPE[family])
        return [of.add(self.t_out, P_EGRESS, of.match(**m),
                       [of.apply(*self.egress_actions(iface, family))], ck),
                of.add(self.t_out, P_HAIRPIN, of.match(in_port=iface.port, **m),
                       [of.apply(*self.egress_actions(iface, family, iface.port))], ck)]

    def gate_flows(self, fc: logic.FlowChange, iface):
        """The T_IN flows of one virtual router (FlowChange from logic.py)."""
        of = self.of
        ck = cookie(K_GATE, iface.index, fc.family, fc.vrid)
        if fc.op == "remove":
            return [of.delete(self.t_in, ck, COOKIE_ALL)]
        return self._gate(iface, fc.family, fc.vmac, fc.vips, fc.accept, ck)

    def _gate(self, iface, family, mac, dsts, accept, ck):
        of = self.of
        et = ETH_TYPE[family]
        pop = [of.apply(of.p.OFPActionPopVlan())] if iface.vlan is not None else []
        msgs = [of.add(self.t_in, P_GATE, self._in(iface, eth_dst=mac, eth_type=et),
                       pop + [of.goto(self.t_route)], ck)]
        for d in dsts:
            m = self._in(iface, eth_dst=mac, eth_type=et, **{_ip_match_field(family): str(d)})
            msgs.append(of.add(self.t_in, P_ACCEPT, m, [of.controller()] if accept else [], ck))
        return msgs

    def punt_flows(self, iface):
        of = self.of
        ck = cookie(K_PUNT, iface.index)
        msgs = []
        routers = self.segments[iface.index].routers.values()
        fams = {r.family for r in routers}
        if 4 in fams:
            msgs.append(of.add(self.t_in, P_PUNT, self._in(
                iface, eth_type=pk.ETH_P_IP, ip_proto=pk.IPPROTO_VRRP,
                ipv4_dst=str(pk.V4_GROUP)), [of.controller()], ck))
        if 6 in fams:
            msgs.append(of.add(self.t_in, P_PUNT, self._in(
                iface, eth_type=pk.ETH_P_IPV6, ip_proto=pk.IPPROTO_VRRP,
                ipv6_dst=str(pk.V6_GROUP)), [of.controller()], ck))
        v4 = _unique(self.vips(iface.index, 4) + self.own_ips(iface, 4))
        for a in v4:
            msgs.append(of.add(self.t_in, P_PUNT, self._in(
                iface, eth_type=pk.ETH_P_ARP, arp_op=1, arp_tpa=str(a)), [of.controller()], ck))
        for a in self.own_ips(iface, 4):
            msgs.append(of.add(self.t_in, P_PUNT, self._in(
                iface, eth_type=pk.ETH_P_ARP, arp_op=2, arp_tpa=str(a)), [of.controller()], ck))
        v6 = _unique(self.vips(iface.index, 6) + self.own_ips(iface, 6))
        for a in v6:
            msgs.append(of.add(self.t_in, P_PUNT, self._in(
                iface, eth_type=pk.ETH_P_IPV6, ip_proto=pk.IPPROTO_ICMPV6,
                icmpv6_type=pk.ND_NS, ipv6_nd_target=str(a)), [of.controller()], ck))
        for a in self.own_ips(iface, 6):
            msgs.append(of.add(self.t_in, P_PUNT, self._in(
                iface, eth_type=pk.ETH_P_IPV6, ip_proto=pk.IPPROTO_ICMPV6,
                icmpv6_type=pk.ND_NA, ipv6_dst=str(a)), [of.controller()], ck))
        return msgs

    def local_flows(self, iface):
        """Routing for frames to the interface's own MAC; own addresses ->
        CONTROLLER (echo replies)."""
        mac = self.iface_mac(iface)
        if mac is None:
            return []
        msgs = []
        for fam in self.families(iface):
            msgs += self._gate(iface, fam, mac, self.own_ips(iface, fam), True,
                               cookie(K_LOCAL, iface.index, fam))
        return msgs

    def resolve_flows(self, iface):
        of = self.of
        msgs = []
        for net in iface.subnets():
            m = of.match(eth_type=ETH_TYPE[net.version],
                         **{_ip_match_field(net.version): (str(net.network_address),
                                                           str(net.netmask))})
            msgs.append(of.add(self.t_route, route_priority(net.prefixlen, True), m,
                               [of.controller()], cookie(K_RESOLVE, iface.index)))
        return msgs

    def _route_inst(self, iface, mac):
        of = self.of
        return [of.apply(of.set_field(eth_dst=mac), of.p.OFPActionDecNwTtl()),
                of.metadata(iface.index), of.goto(self.t_out)]

    def host_flow(self, n: Neighbor):
        of = self.of
        iface = self.ifaces[n.iface]
        plen = n.ip.max_prefixlen
        m = of.match(eth_type=ETH_TYPE[n.ip.version], **{_ip_match_field(n.ip.version): str(n.ip)})
        n.host_flow = n.mac
        return of.add(self.t_route, route_priority(plen, True) + 1, m,
                      self._route_inst(iface, n.mac), cookie(K_HOST, iface.index), idle=HOST_IDLE)

    def static_flows(self, n: Neighbor):
        """Flows of the static routes whose next hop is n (now resolved)."""
        of = self.of
        iface = self.ifaces[n.iface]
        msgs = []
        for i, rt in enumerate(self.cfg.routes):
            if rt.via != n.ip or self.cfg.interface(rt.interface).index != n.iface:
                continue
            net = rt.prefix
            fields = {"eth_type": ETH_TYPE[net.version]}
            if net.prefixlen:
                fields[_ip_match_field(net.version)] = (str(net.network_address),
                                                        str(net.netmask))
            msgs.append(of.add(self.t_route, route_priority(net.prefixlen), of.match(**fields),
                               self._route_inst(iface, n.mac), cookie(K_ROUTE, i + 1)))
        return msgs

    def miss_flows(self):
        of = self.of
        msgs = []
        if self.cfg.table_miss != "none":
            inst = [of.controller()] if self.cfg.table_miss == "controller" else []
            msgs.append(of.add(self.t_in, 0, of.match(), inst, cookie(K_MISS)))
        for t in (self.t_route, self.t_out):
            msgs.append(of.add(t, 0, of.match(), [], cookie(K_MISS)))
        return msgs

    # ---------------------------------------------------------- applying

    def apply(self, idx, acts: logic.Actions) -> Out:
        """logic.Actions of interface idx's RouterSet -> messages, in the
        order logic.py asks: flows, then frames; transitions to log."""
        out = Out()
        iface = self.ifaces[idx]
        if self.of is not None:
            for fc in acts.flows:
                out.msgs += self.gate_flows(fc, iface)
            if acts.flows or acts.transitions:
                for fam in self.families(iface):
                    out.msgs += self.egress_flows(iface, fam)
            for frame in acts.frames:
                out.msgs.append(self.of.packet_out(iface.port, frame))
        out.transitions += [(iface.name, t) for t in acts.transitions]
        return out

    # ---------------------------------------------------------- entry points

    def connect(self, dp, ports, now) -> Out:
        """A switch connected (after its port descriptions arrived):
        replace our flows, set tracks from link states, start the routers."""
        self.dp, self.of = dp, OF(dp)
        self.ports = dict(ports)
        self.connected_at = now
        self.egress_src.clear()
        for n in self.neighbors.values():
            n.host_flow = n.static_flow = None
            n.pending.clear()
            n.tries, n.next_try = 0, (now if n.static else None)
        of = self.of
        out = Out([of.delete(of.o.OFPTT_ALL)])
        out.msgs += self.miss_flows()
        for iface in self.cfg.interfaces:
            if self.iface_mac(iface) is None:
                log.warning("VRRP %s: interface %s: port %d is not on the switch",
                            self.cfg.name, iface.name, iface.port)
            out.msgs += self.punt_flows(iface)
            out.msgs += self.local_flows(iface)
            out.msgs += self.resolve_flows(iface)
            for fam in self.families(iface):
                out.msgs += self.egress_flows(iface, fam, force=True)
        for idx, rs in self.segments.items():
            for r in rs.routers.values():
                for name in list(r.status()["tracks"]):
                    out.extend(self.apply(idx, r.track(name, self._track_up(name), now)))
            out.extend(self.apply(idx, rs.start(now)))
        out.extend(self._resolve_due(now))
        return out

    def _track_up(self, name):
        if name.startswith("port:"):
            return self.link_up(int(name[5:]))
        return True

    def disconnect(self, now) -> Out:
        """The switch went away: routers leave service (nothing can be sent)."""
        out = Out()
        self.of = self.dp = None
        for idx, rs in self.segments.items():
            out.extend(self.apply(idx, rs.shutdown(now)))
        return out

    def close(self, now) -> Out:
        """The app stops: priority-0 adverts (the backups take over at once),
        then our flows go."""
        out = Out()
        for idx, rs in self.segments.items():
            out.extend(self.apply(idx, rs.shutdown(now)))
        if self.of is not None:
            out.msgs.append(self.of.delete(self.of.o.OFPTT_ALL))
        return out

    def port_status(self, port, link_up, hw_addr, now) -> Out:
        out = Out()
        old = self.ports.get(port)
        self.ports[port] = PortInfo(hw_addr or (old.hw_addr if old else None), bool(link_up),
                                    old.name if old else "")
        if old is None and self.of is not None:
            # a port the switch did not have at connect: its interfaces' flows
            for iface in self.cfg.interfaces:
                if iface.port == port:
                    out.msgs += self.punt_flows(iface) + self.local_flows(iface)
                    for fam in self.families(iface):
                        out.msgs += self.egress_flows(iface, fam, force=True)
        if old is not None and old.link_up == bool(link_up):
            return out
        log.info("VRRP %s: port %d link %s", self.cfg.name, port, "up" if link_up else "down")
        name = f"port:{port}"
        for idx, rs in self.segments.items():
            for r in rs.routers.values():
                if name in r.status()["tracks"]:
                    out.extend(self.apply(idx, r.track(name, bool(link_up), now)))
        if link_up:
            for n in self.neighbors.values():
                if n.static and self.ifaces[n.iface].port == port and n.mac is None:
                    n.tries, n.next_try = 0, now
            out.extend(self._resolve_due(now))
        return out

    def tick(self, now) -> Out:
        out = Out()
        for idx, rs in self.segments.items():
            d = rs.next_deadline()
            if d is not None and d <= now:
                out.extend(self.apply(idx, rs.tick(now)))
        out.extend(self._resolve_due(now))
        return out

    def next_deadline(self):
        ds = [rs.next_deadline() for rs in self.segments.values()]
        if self.of is not None:
            ds += [n.next_try for n in self.neighbors.values()]
        ds = [d for d in ds if d is not None]
        return min(ds) if ds else None

    # ---------------------------------------------------------- packet-in

    def packet_in(self, in_port, data, table_id, ck, now) -> Out:
        self.counters["packet_in"] += 1
        out = Out()
        if self.of is None:
            return out
        kind = cookie_kind(ck)
        try:
            l2 = pk.parse_l2(data)
        except pk.NotVrrp:
            self.counters["packet_in_ignored"] += 1
            return out
        if kind == K_RESOLVE or (table_id == self.t_route and kind is None):
            return self._resolve_punt(in_port, data, now)
        iface = self.cfg.interface_at(in_port, l2.vlan)
        if iface is None:
            self.counters["packet_in_unknown_port"] += 1
            return out
        idx = iface.index
        if l2.ethertype == pk.ETH_P_ARP:
            return self._arp_in(iface, data, l2, now)
        try:
            l3 = pk.parse_ip(data, pk.parse_l2(data))
        except (pk.NotVrrp, pk.VrrpError):
            l3 = None
        if l3 is not None and l3.proto == pk.IPPROTO_ICMPV6 and len(l3.l4) >= 1 and \
                l3.l4[0] in (pk.ND_NS, pk.ND_NA):
            return self._nd_in(iface, data, l3, now)
        if l3 is not None and l3.proto == pk.IPPROTO_VRRP:
            return self.apply(idx, self.segments[idx].rx_frame(data, now))
        if l3 is not None and l3.proto in (1, pk.IPPROTO_ICMPV6):
            return self._local_in(iface, l3, data)
        self.counters["packet_in_ignored"] += 1
        return out

    def _arp_in(self, iface, data, l2, now):
        out = Out()
        arp = parse_arp(data, l2)
        if arp is None:
            self.counters["packet_in_ignored"] += 1
            return out
        op, sha, spa, tpa = arp
        own = self.own_ips(iface, 4)
        if op == 1:
            out.extend(self.apply(iface.index, self.segments[iface.index].rx_frame(data, now)))
            vip_answered = bool(out.msgs)
            if tpa in own and not vip_answered and tpa not in self.vips(iface.index, 4):
                mac = self.iface_mac(iface)
                reply = pk.arp_reply(data, mac, [tpa]) if mac else None
                if reply is not None:
                    out.msgs.append(self.of.packet_out(iface.port, reply))
                    self.counters["arp_replies_sent"] += 1
                if spa != tpa and int(spa):
                    out.extend(self._learned(iface, spa, sha, now, solicited=False))
        elif op == 2 and tpa in own:
            out.extend(self._learned(iface, spa, sha, now, solicited=True))
        return out

    def _nd_in(self, iface, data, l3, now):
        out = Out()
        if l3.l4[0] == pk.ND_NS:
            out.extend(self.apply(iface.index, self.segments[iface.index].rx_frame(data, now)))
            if not out.msgs:
                ns = pk.parse_ns(data)
                own = self.own_ips(iface, 6)
                if ns is not None and ns[0] in own and ns[0] not in self.vips(iface.index, 6):
                    mac = self.iface_mac(iface)
                    reply = pk.na_reply(data, mac, [ns[0]]) if mac else None
                    if reply is not None:
                        out.msgs.append(self.of.packet_out(iface.port, reply))
                        self.counters["na_sent"] += 1
            return out
        na = parse_na(l3)
        if na is not None:
            out.extend(self._learned(iface, na[0], na[1], now, solicited=True))
        return out

    def _local_in(self, iface, l3, data):
        """IP to a virtual (accept mode / owner) or own address: answer echo
        requests, drop the rest (no local stack)."""
        out = Out()
        src = None
        for r in self.segments[iface.index].routers.values():
            if r.family == l3.family and l3.dst in r.vips and r.state == logic.MASTER:
                src = pk.mac_str(r.vmac)
                break
        if src is None and l3.dst in self.own_ips(iface, l3.family):
            src = self.iface_mac(iface)
        reply = echo_reply(data, l3, src) if src else None
        if reply is None:
            self.counters["packet_in_ignored"] += 1
            return out
        self.counters["echo_replies_sent"] += 1
        out.msgs.append(self.of.packet_out(iface.port, reply))
        return out

    # ---------------------------------------------------------- neighbours

    def lookup(self, dst):
        """(egress interface, next hop) for dst: connected subnets, then
        static routes (longest prefix); None if no route."""
        best = None
        for iface in self.cfg.interfaces:
            for net in iface.subnets(dst.version):
                if dst in net and (best is None or net.prefixlen > best[0]):
                    best = (net.prefixlen + 0.5, iface, dst)
        for rt in self.cfg.routes:
            if rt.prefix.version == dst.version and dst in rt.prefix and \
                    (best is None or rt.prefix.prefixlen > best[0]):
                best = (rt.prefix.prefixlen, self.cfg.interface(rt.interface), rt.via)
        return None if best is None else best[1:]

    def _resolve_punt(self, in_port, data, now):
        out = Out()
        frame = strip_vlan(data)
        try:
            l3 = pk.parse_ip(frame)
        except (pk.NotVrrp, pk.VrrpError):
            self.counters["packet_in_ignored"] += 1
            return out
        hop = self.lookup(l3.dst)
        if hop is None:
            self.counters["resolve_no_route"] += 1
            return out
        iface, nh = hop
        n = self._neighbor(iface.index, nh)
        log.debug("VRRP %s: packet to %s waits for %s on %s", self.cfg.name, l3.dst, nh,
                  iface.name)
        if n.fresh(now):
            if n.host_flow != n.mac:
                out.msgs.append(self.host_flow(n))
            out.msgs.append(self._forward(iface, n, in_port, frame))
            return out
        if len(n.pending) >= PENDING_MAX:
            n.pending.pop(0)
            self.counters["pending_dropped"] += 1
        n.pending.append((in_port, frame))
        if n.next_try is None:
            n.tries, n.next_try = 0, now
            out.extend(self._resolve_due(now))
        return out

    def _forward(self, iface, n, in_port, frame):
        of = self.of
        fam = n.ip.version
        acts = [of.set_field(eth_dst=n.mac), of.p.OFPActionDecNwTtl()] + \
            self.egress_actions(iface, fam, in_port)
        self.counters["forwarded_after_resolve"] += 1
        return of.packet_out(None, frame, acts, in_port=in_port)

    def _request(self, n):
        iface = self.ifaces[n.iface]
        mac = self.iface_mac(iface)
        src = iface.source_for(n.ip)
        if mac is None or src is None:
            return None
        if n.ip.version == 4:
            frame = arp_request(mac, src, n.ip, iface.vlan)
        else:
            frame = neighbor_solicit(mac, src, n.ip, iface.vlan)
        return self.of.packet_out(iface.port, frame)

    def _resolve_due(self, now):
        """Sends the ARP / NS requests that are due; gives up on-demand
        resolutions after MAX_TRIES, keeps trying static next hops."""
        out = Out()
        if self.of is None:
            return out
        for n in self.neighbors.values():
            if n.next_try is None or n.next_try > now:
                continue
            if not self.link_up(self.ifaces[n.iface].port):
                n.next_try = None if not n.static else now + REQUEST_INTERVAL * 5
                if n.pending:
                    self.counters["pending_dropped"] += len(n.pending)
                    n.pending.clear()
                continue
            if n.tries >= MAX_TRIES and not n.static:
                self.counters["resolve_failed"] += 1
                self.counters["pending_dropped"] += len(n.pending)
                n.pending.clear()
                n.failed += 1
                n.tries, n.next_try = 0, None
                continue
            msg = self._request(n)
            if msg is not None:
                out.msgs.append(msg)
            n.tries += 1
            if n.static and n.mac is not None and n.tries >= MAX_TRIES:
                n.next_try = now + STATIC_REFRESH        # keep the old MAC, try later
                n.tries = 0
            else:
                n.next_try = now + REQUEST_INTERVAL
        return out

    def _learned(self, iface, ip, mac, now, solicited):
        """An ARP reply / NA (or a request to us) told ip's MAC."""
        out = Out()
        key = (iface.index, ip)
        n = self.neighbors.get(key)
        if n is None:
            if not solicited:
                return out      # do not keep state for every host that asks
            n = self._neighbor(iface.index, ip)
        if not any(ip in s for s in iface.subnets(ip.version)) and \
                not (ip.version == 6 and ip.is_link_local):
            return out
        changed = n.mac != mac
        n.mac, n.learned_at = mac, now
        n.tries = 0
        n.next_try = now + STATIC_REFRESH if n.static else None
        if changed:
            log.info("VRRP %s: %s: neighbour %s is at %s", self.cfg.name, iface.name, ip, mac)
        if n.static and n.static_flow != mac:
            out.msgs += self.static_flows(n)
            n.static_flow = mac
        if n.pending or (n.host_flow is not None and n.host_flow != mac):
            out.msgs.append(self.host_flow(n))
        for in_port, frame in n.pending:
            out.msgs.append(self._forward(iface, n, in_port, frame))
        n.pending.clear()
        return out

    # ---------------------------------------------------------- status

    def status(self):
        ifaces = []
        for iface in self.cfg.interfaces:
            rs = self.segments[iface.index]
            ifaces.append({
                "name": iface.name, "port": iface.port, "vlan": iface.vlan,
                "mac": self.iface_mac(iface), "link_up": self.link_up(iface.port),
                "addresses": [str(a) for a in iface.addresses],
                "counters": dict(rs.counters),
                "routers": [r.status() for r in rs.routers.values()],
            })
        neigh = [{"interface": self.ifaces[n.iface].name, "ip": str(n.ip), "mac": n.mac,
                  "static": n.static, "resolving": n.next_try is not None and n.mac is None,
                  "pending": len(n.pending)}
                 for n in self.neighbors.values()]
        routes = []
        for rt in self.cfg.routes:
            n = self.neighbors.get((self.cfg.interface(rt.interface).index, rt.via))
            routes.append({"prefix": str(rt.prefix), "via": str(rt.via),
                           "interface": rt.interface, "via_mac": n.mac if n else None})
        return {"dpid": f"{self.cfg.dpid:016x}", "name": self.cfg.name,
                "connected": self.of is not None, "tables": [self.t_in, self.t_route, self.t_out],
                "interfaces": ifaces, "routes": routes, "neighbors": neigh,
                "counters": dict(self.counters)}


def _unique(seq):
    out = []
    for x in seq:
        if x not in out:
            out.append(x)
    return out
