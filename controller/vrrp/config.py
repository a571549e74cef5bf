"""The [vrrp] section of the controller config (controller/config.py).

Who uses it: controller/vrrp/app.py (loads the file), controller/vrrp/flows.py
(builds the per-datapath router from a `DatapathConfig`).  Everything is
checked on load; a problem refuses the whole file with the line and key.

    [vrrp]
    status_socket = "/run/vdp/vrrp.sock"   # optional: JSON status (see app.py)

    [[vrrp.datapath]]
    dpid = 1                    # as `vdp run --dpid` takes it
    name = "r1"                 # optional label (logs, status)
    table = 0                   # first of the 3 tables used (ingress, route, egress)
    table_miss = "drop"         # ingress table-miss: "drop" | "controller" | "none"

      [[vrrp.datapath.interface]]        # a router interface: a port (or a VLAN on it)
      name = "lan"                        # default "port<N>" / "port<N>.<VLAN>"
      port = 1
      vlan = 10                           # optional: 802.1Q VLAN id on that port
      address = ["10.1.0.2/24", "fe80::2/64"]   # its own addresses (connected subnets)
      mac = "02:00:00:00:01:02"           # optional: default the port's hardware address

      [[vrrp.datapath.router]]           # a virtual router on an interface
      interface = "lan"
      vrid = 1
      version = 3                         # 3 (default) or 2 (IPv4 only)
      family = 4                          # optional: from the virtual addresses
      priority = 200                      # 1..254; 255 only for the address owner
      vips = ["10.1.0.1"]
      primary_ip = "10.1.0.2"             # default: the interface's address of that
                                          # family (IPv6: its link-local address)
      interval = 1.0                      # seconds; v3 multiples of 0.01, v2 whole seconds
      preempt = true
      preempt_delay = 0                   # seconds
      accept = false                      # answer/deliver traffic to the VIPs (RFC 5798 accept)
      auth = "secret"                     # v2 only: simple text password (<= 8 bytes)
      tracks = { wan = 0, "port:3" = 20 } # interface name or port:N -> weight
                                          # (0: leave service while down; >0: lower priority)
      v3_checksum_as_v2 = false           # keepalived's knob of the same name

      [[vrrp.datapath.route]]            # static routes (connected subnets are implicit)
      prefix = "10.3.0.0/16"              # or "default"
      via = "10.2.0.254"                  # on-link next hop
      interface = "wan"                   # optional: default the interface whose subnet has `via`

Each router also tracks its own interface's port with weight 0 (interface
down = out of service), as logic.py suggests.  Track names inside the
running app are "port:N" (PORT_STATUS link state of OpenFlow port N).
"""
from __future__ import annotations

from dataclasses import dataclass

from controller.config import (Node, parse_dpid, parse_interface, parse_ip, parse_mac,
                               parse_network, register_section)
from controller.vrrp import logic
from controller.vrrp import packet as pk

SECTION = "vrrp"
OFPP_MAX = 0xFFFFFF00
TABLES_USED = 3
TABLE_MISS = ("drop", "controller", "none")


@dataclass(frozen=True)
class Interface:
    index: int                  # 1-based, stable: the order in the file
    name: str
    port: int
    vlan: int | None
    addresses: tuple            # ipaddress.IPv4Interface / IPv6Interface
    mac: str | None             # None: the port's hardware address

    @property
    def track_name(self):
        return port_track(self.port)

    def addresses_of(self, family):
        return tuple(a for a in self.addresses if a.version == family)

    def subnets(self, family=None):
        """Connected subnets (IPv6 link-local ones excluded)."""
        return tuple(a.network for a in self.addresses
                     if (family is None or a.version == family)
                     and not (a.version == 6 and a.ip.is_link_local))

    def source_for(self, dst):
        """Our address to use towards on-link `dst` (same subnet first)."""
        same = [a for a in self.addresses if a.version == dst.version and dst in a.network]
        if same:
            return same[0].ip
        fam = self.addresses_of(dst.version)
        return fam[0].ip if fam else None


@dataclass(frozen=True)
class Router:
    interface: str
    vrid: int
    version: int
    family: int
    priority: int
    vips: tuple
    primary_ip: object
    interval: float
    preempt: bool
    preempt_delay: float
    accept: bool
    auth: str | None
    tracks: tuple               # ((track name, weight), ...) incl. the own port, weight 0
    v3_checksum_as_v2: bool

    def virtual_router(self, vlan=None, prefix=""):
        """A fresh logic.VirtualRouter for this configuration (prefix: the
        datapath's name, for log lines)."""
        return logic.VirtualRouter(
            self.vrid, self.version, self.family, self.priority, list(self.vips),
            self.primary_ip, self.interval, self.preempt, self.preempt_delay, self.accept,
            auth_type=pk.AUTH_PASSWORD if self.auth else pk.AUTH_NONE, password=self.auth,
            tracks=dict(self.tracks), vlan=vlan, v3_checksum_as_v2=self.v3_checksum_as_v2,
            name=f"{prefix}{self.interface}/vr{self.vrid}/ipv{self.family}")


@dataclass(frozen=True)
class Route:
    prefix: object              # ipaddress network
    via: object                 # ipaddress address (on-link)
    interface: str


@dataclass(frozen=True)
class DatapathConfig:
    dpid: int
    name: str
    table: int
    table_miss: str
    interfaces: tuple
    routers: tuple
    routes: tuple

    def interface(self, name):
        return next((i for i in self.interfaces if i.name == name), None)

    def interface_at(self, port, vlan=None):
        return next((i for i in self.interfaces if i.port == port and i.vlan == vlan), None)


@dataclass(frozen=True)
class VrrpConfig:
    datapaths: dict             # dpid -> DatapathConfig
    status_socket: str | None


def port_track(port):
    return f"port:{port}"


# --------------------------------------------------------------------------

def validate(node: Node) -> VrrpConfig:
    node.only("status_socket", "datapath")
    sock = node.str("status_socket", None, conv=_check_socket_path)
    dps = {}
    if "datapath" in node:
        for dn in node.child("datapath").elements():
            dp = _datapath(dn)
            if dp.dpid in dps:
                raise dn.error(f"dpid {dp.dpid:#x} configured twice", "dpid")
            dps[dp.dpid] = dp
    return VrrpConfig(dps, sock)


def _check_socket_path(p):
    if not p or "\0" in p:
        raise ValueError(f"bad path {p!r}")
    if len(p.encode()) > 107:
        raise ValueError(f"path {p!r} too long for a unix socket (at most 107 bytes)")
    return p


def _datapath(dn: Node) -> DatapathConfig:
    dn.expect(dict)
    dn.only("dpid", "name", "table", "table_miss", "interface", "router", "route")
    dpid = dn.get("dpid", (int, str), conv=parse_dpid)
    name = dn.str("name", f"dp{dpid:x}")
    table = dn.int("table", 0, lo=0, hi=254 - TABLES_USED)
    miss = dn.str("table_miss", "drop", choices=TABLE_MISS)
    ifaces = []
    if "interface" not in dn:
        raise dn.error("no interface (add [[vrrp.datapath.interface]] tables)")
    for i, n in enumerate(dn.child("interface").elements(), 1):
        iface = _interface(n, i)
        for other in ifaces:
            if other.name == iface.name:
                raise n.error(f"interface name {iface.name!r} used twice", "name")
            if (other.port, other.vlan) == (iface.port, iface.vlan):
                what = f"port {iface.port}" + (f" VLAN {iface.vlan}" if iface.vlan else "")
                raise n.error(f"{what} is already interface {other.name!r}", "port")
            for a in iface.subnets():
                if any(a.overlaps(b) for b in other.subnets()):
                    raise n.error(f"subnet {a} overlaps interface {other.name!r}'s", "address")
        ifaces.append(iface)
    by_name = {i.name: i for i in ifaces}
    routers = []
    if "router" in dn:
        for rn in dn.child("router").elements():
            r = _router(rn, by_name)
            for other in routers:
                if (other.interface, other.family, other.vrid) == (r.interface, r.family,
                                                                      r.vrid):
                    raise rn.error(f"VRID {r.vrid} (IPv{r.family}) is already on interface "
                                   f"{r.interface!r}", "vrid")
            routers.append(r)
    routes = []
    if "route" in dn:
        for rn in dn.child("route").elements():
            rt = _route(rn, ifaces, by_name)
            if any(o.prefix == rt.prefix for o in routes):
                raise rn.error(f"route to {rt.prefix} given twice", "prefix")
            routes.append(rt)
    return DatapathConfig(dpid, name, table, miss, tuple(ifaces), tuple(routers), tuple(routes))


def _interface(n: Node, index) -> Interface:
    n.expect(dict)
    n.only("name", "port", "vlan", "address", "mac")
    port = n.int("port", lo=1, hi=OFPP_MAX)
    vlan = n.int("vlan", None, lo=1, hi=4094)
    name = n.str("name", f"port{port}" + (f".{vlan}" if vlan else ""))
    if not name or any(c in name for c in " \t"):
        raise n.error(f"bad interface name {name!r}", "name")
    addrs = []
    if "address" not in n:
        raise n.error("missing 'address' (the interface's own ADDRESS/PREFIXLEN, "
                      "one string or a list)")
    for an in n.child("address").elements(single=True):
        a = an.convert(str, parse_interface)
        if a.network.prefixlen == a.max_prefixlen and not (a.version == 6 and
                                                           a.ip.is_link_local):
            raise an.error(f"{a} has no subnet (give the prefix length of the link, "
                           "e.g. /24)")
        if a.ip.is_multicast or a.ip.is_unspecified:
            raise an.error(f"{a.ip} cannot be an interface address")
        if a in addrs:
            raise an.error(f"{a} given twice")
        addrs.append(a)
    if not addrs:
        raise n.error("no address", "address")
    mac = n.str("mac", None, conv=parse_mac)
    if mac is not None and int(mac[:2], 16) & 1:
        raise n.error(f"{mac} is a multicast address", "mac")
    return Interface(index, name, port, vlan, tuple(addrs), mac)


def _router(n: Node, ifaces) -> Router:
    n.expect(dict)
    n.only("interface", "vrid", "version", "family", "priority", "vips", "primary_ip",
           "interval", "preempt", "preempt_delay", "accept", "auth", "tracks",
           "v3_checksum_as_v2")
    iname = n.str("interface")
    iface = ifaces.get(iname)
    if iface is None:
        raise n.error(f"no interface named {iname!r} (known: {', '.join(ifaces)})",
                      "interface")
    vrid = n.int("vrid", lo=1, hi=255)
    version = n.int("version", 3, lo=2, hi=3)
    vips = []
    if "vips" not in n:
        raise n.error("missing 'vips' (the virtual addresses, one string or a list)")
    for vn in n.child("vips").elements(single=True):
        v = vn.convert(str, parse_ip)
        if v in vips:
            raise vn.error(f"{v} given twice")
        if v.is_multicast or v.is_unspecified or v.is_loopback:
            raise vn.error(f"{v} cannot be a virtual address")
        vips.append(v)
    if not vips:
        raise n.error("no virtual address", "vips")
    if len(vips) > 255:
        raise n.error("at most 255 virtual addresses", "vips")
    fams = {v.version for v in vips}
    if len(fams) > 1:
        raise n.error("IPv4 and IPv6 virtual addresses mixed: use one router per family "
                      "(RFC 5798 5.2.9)", "vips")
    family = n.int("family", fams.pop(), lo=4, hi=6)
    if family not in (4, 6):
        raise n.error(f"family must be 4 or 6, got {family}", "family")
    if any(v.version != family for v in vips):
        raise n.error(f"virtual addresses are not IPv{family}", "vips")
    if version == 2 and family != 4:
        raise n.error("VRRP version 2 is IPv4 only (RFC 3768): use version 3 for IPv6",
                      "version")
    own = {a.ip for a in iface.addresses_of(family)}
    owner = [v for v in vips if v in own]
    priority = n.int("priority", 255 if owner else 100, lo=1, hi=255)
    if owner and priority != 255:
        raise n.error(f"{owner[0]} is an address of interface {iname!r}: this router is the "
                      "address owner and must have priority 255 (RFC 5798 5.2.4)", "priority")
    if priority == 255 and len(owner) != len(vips):
        raise n.error("priority 255 is for the address owner: every virtual address must "
                      f"be an address of interface {iname!r}", "priority")
    if "primary_ip" in n:
        primary = n.get("primary_ip", str, conv=parse_ip)
        if primary.version != family:
            raise n.error(f"{primary} is not an IPv{family} address", "primary_ip")
        if primary not in own:
            raise n.error(f"{primary} is not an address of interface {iname!r}", "primary_ip")
    else:
        cands = [a.ip for a in iface.addresses_of(family)]
        if family == 6:
            cands = [a for a in cands if a.is_link_local]
        if not cands:
            what = ("link-local IPv6 address (fe80::.../64; RFC 5798 5.1.2.1)"
                    if family == 6 else "IPv4 address")
            raise n.error(f"interface {iname!r} has no {what} to send adverts from: add one "
                          "to its 'address' or set 'primary_ip'", "interface")
        primary = cands[0]
    if family == 6 and not primary.is_link_local:
        raise n.error(f"{primary}: IPv6 adverts must come from a link-local address "
                      "(RFC 5798 5.1.2.1)", "primary_ip")
    if version == 3:
        interval = n.number("interval", 1.0, lo=0.01, hi=40.95)
        if abs(round(interval * 100) - interval * 100) > 1e-6:
            raise n.error(f"VRRP v3 interval must be a multiple of 0.01 s, got {interval}",
                          "interval")
    else:
        interval = n.number("interval", 1.0, lo=1, hi=255)
        if interval != int(interval):
            raise n.error(f"VRRP v2 interval is whole seconds, got {interval}", "interval")
    preempt = n.bool("preempt", True)
    preempt_delay = n.number("preempt_delay", 0.0, lo=0, hi=3600)
    accept = n.bool("accept", False)
    auth = None
    if "auth" in n:
        if version != 2:
            raise n.error("authentication exists only in VRRP version 2 (RFC 3768)", "auth")
        auth = n.str("auth")
        if not auth:
            raise n.error("empty password", "auth")
        if len(auth.encode()) > pk.AUTH_DATA_LEN:
            raise n.error(f"password longer than {pk.AUTH_DATA_LEN} bytes", "auth")
    tracks = {port_track(iface.port): 0}
    if "tracks" in n:
        tn = n.child("tracks")
        tn.expect(dict, what="a table {name = weight}")
        for tname, wn in tn.items():
            weight = wn.convert(int)
            if not 0 <= weight <= 254:
                raise wn.error(f"weight must be 0..254, got {weight}")
            if tname in ifaces:
                key = port_track(ifaces[tname].port)
            elif tname.startswith("port:") and tname[5:].isdigit() and \
                    1 <= int(tname[5:]) <= OFPP_MAX:
                key = port_track(int(tname[5:]))
            else:
                raise wn.error(f"unknown track {tname!r} (an interface name or port:N)")
            if key == port_track(iface.port) and weight == 0:
                continue        # the own port is tracked with weight 0 anyway
            tracks[key] = weight
    v2sum = n.bool("v3_checksum_as_v2", False)
    r = Router(iname, vrid, version, family, priority, tuple(vips), primary, interval,
               preempt, preempt_delay, accept, auth, tuple(tracks.items()), v2sum)
    try:
        r.virtual_router(iface.vlan)        # the state machine's own checks
    except ValueError as e:
        raise n.error(str(e)) from None
    return r


def _route(n: Node, ifaces, by_name) -> Route:
    n.expect(dict)
    n.only("prefix", "via", "interface")
    prefix = n.get("prefix", str, conv=parse_network)
    via = n.get("via", str, conv=parse_ip)
    if via.version != prefix.version:
        raise n.error(f"next hop {via} is not IPv{prefix.version}", "via")
    if "interface" in n:
        iname = n.str("interface")
        iface = by_name.get(iname)
        if iface is None:
            raise n.error(f"no interface named {iname!r}", "interface")
        if not (via.version == 6 and via.is_link_local) and \
                not any(via in s for s in iface.subnets(via.version)):
            raise n.error(f"next hop {via} is not on interface {iname!r}'s subnets", "via")
    else:
        on = [i for i in ifaces if any(via in s for s in i.subnets(via.version))]
        if not on:
            raise n.error(f"next hop {via} is not on any interface's subnet (routes need an "
                          "on-link next hop)", "via")
        iface = on[0]
    if any(via == a.ip for i in ifaces for a in i.addresses):
        raise n.error(f"next hop {via} is one of our own addresses", "via")
    for i in ifaces:
        for s in i.subnets(prefix.version):
            if s == prefix:
                raise n.error(f"{prefix} is interface {i.name!r}'s connected subnet", "prefix")
    return Route(prefix, via, iface.name)


register_section(SECTION, validate)
