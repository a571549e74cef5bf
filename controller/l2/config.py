"""The [l2] section of the controller config (controller/config.py).

Who uses it: controller/l2/app.py (loads the file and hands each datapath
its `DatapathConfig`), controller/l2/logic.py (asks `DatapathConfig.port(no)`
what a port carries).  Everything is checked on load; a problem refuses the
whole file with the line and key.  With no [l2] section at all (or no config
file) every port of every datapath is an access port of VLAN 1, so the app
works out of the box as a plain learning switch.

    [l2]
    idle_timeout = 300        # s; learned MACs are forgotten after this much silence
    mac_limit = 0             # per VLAN and datapath; 0 = no limit
    default_vlan = 1          # VLAN of ports not listed (access); 0 = ignore such ports
    table = 0                 # first of the 3 OpenFlow tables used (ingress, eth_src, eth_dst)

    [[l2.datapath]]           # per-datapath settings (any key above may be overridden)
    dpid = 1                  # as `vdp run --dpid` takes it
    name = "sw1"              # optional label (logs)

      [[l2.datapath.port]]
      port = 1                # one port number, or a list: port = [1, 2]
      mode = "access"         # the default
      vlan = 10               # default: default_vlan (or 1 when that is 0)

      [[l2.datapath.port]]
      port = 4
      mode = "trunk"
      vlans = [10, 20]        # carried tagged
      native = 30             # optional: untagged frames belong to this VLAN
                              # (without it, untagged frames are dropped)

      [[l2.datapath.port]]
      port = 5
      mode = "disabled"       # the l2 app leaves the port alone (drops its frames)

VLAN ids are 1..4094.  A native VLAN may not also be listed in `vlans`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from controller.config import Node, parse_dpid, register_section

SECTION = "l2"
OFPP_MAX = 0xFFFFFF00
TABLES_USED = 3
MODES = ("access", "trunk", "disabled")

DEFAULT_IDLE_TIMEOUT = 300
DEFAULT_VLAN = 1
# dst flows live a little longer than src flows (logic.py); keep both in u16
MAX_IDLE_TIMEOUT = 60000


@dataclass(frozen=True)
class PortConfig:
    """What one port carries.

    untagged: the VLAN of untagged frames (access VLAN or trunk native),
    None when untagged frames are dropped; tagged: VLANs carried tagged."""
    port: int
    mode: str = "access"
    untagged: int | None = DEFAULT_VLAN
    tagged: frozenset = frozenset()

    @property
    def vlans(self) -> frozenset:
        """Every VLAN the port is a member of."""
        return self.tagged | ({self.untagged} if self.untagged is not None else set())

    def carries(self, vid: int) -> bool:
        return vid == self.untagged or vid in self.tagged


@dataclass(frozen=True)
class DatapathConfig:
    dpid: int | None = None           # None: the defaults for datapaths not listed
    name: str | None = None
    table: int = 0
    idle_timeout: int = DEFAULT_IDLE_TIMEOUT
    mac_limit: int = 0
    default_vlan: int = DEFAULT_VLAN  # 0: ports not listed are ignored
    ports: dict = field(default_factory=dict)   # {port no: PortConfig}

    def port(self, no: int) -> PortConfig | None:
        """The configuration of port `no` (listed, or the default access
        port), None when the l2 app must ignore the port."""
        pc = self.ports.get(no)
        if pc is not None:
            return None if pc.mode == "disabled" else pc
        if not self.default_vlan:
            return None
        return PortConfig(no, "access", self.default_vlan, frozenset())

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return f"{self.dpid:016x}" if self.dpid is not None else "default"


@dataclass(frozen=True)
class L2Config:
    defaults: DatapathConfig = DatapathConfig()
    datapaths: dict = field(default_factory=dict)   # {dpid: DatapathConfig}

    def for_dpid(self, dpid: int) -> DatapathConfig:
        dc = self.datapaths.get(dpid)
        if dc is not None:
            return dc
        d = self.defaults
        return DatapathConfig(dpid, None, d.table, d.idle_timeout, d.mac_limit,
                              d.default_vlan, {})


# --------------------------------------------------------------------------

_COMMON = ("idle_timeout", "mac_limit", "default_vlan", "table")


def _common(n: Node, base: DatapathConfig | None) -> dict:
    b = base or DatapathConfig()
    return dict(
        table=n.int("table", b.table, lo=0, hi=254 - TABLES_USED),
        idle_timeout=n.int("idle_timeout", b.idle_timeout, lo=1, hi=MAX_IDLE_TIMEOUT),
        mac_limit=n.int("mac_limit", b.mac_limit, lo=0),
        default_vlan=n.int("default_vlan", b.default_vlan, lo=0, hi=4094),
    )


def validate(node: Node) -> L2Config:
    """[l2] -> L2Config (raises a located ConfigError)."""
    node.only(*_COMMON, "datapath")
    defaults = DatapathConfig(**_common(node, None))
    dps = {}
    if "datapath" in node:
        for dn in node.child("datapath").elements():
            dc = _datapath(dn, defaults)
            if dc.dpid in dps:
                raise dn.error(f"dpid {dc.dpid:#x} configured twice", "dpid")
            dps[dc.dpid] = dc
    return L2Config(defaults, dps)


def _datapath(dn: Node, defaults: DatapathConfig) -> DatapathConfig:
    dn.expect(dict)
    dn.only("dpid", "name", *_COMMON, "port")
    dpid = dn.get("dpid", (int, str), conv=parse_dpid)
    name = dn.str("name", None)
    common = _common(dn, defaults)
    ports = {}
    if "port" in dn:
        for pn in dn.child("port").elements():
            for pc in _ports(pn, common["default_vlan"]):
                if pc.port in ports:
                    raise pn.error(f"port {pc.port} configured twice", "port")
                ports[pc.port] = pc
    return DatapathConfig(dpid, name, ports=ports, **common)


def _vid(n: Node) -> int:
    v = n.convert(int)
    if not 1 <= v <= 4094:
        raise n.error(f"expected a VLAN id 1..4094, got {v}")
    return v


def _ports(pn: Node, default_vlan: int) -> list:
    pn.expect(dict)
    pn.only("port", "mode", "vlan", "vlans", "native")
    if "port" not in pn:
        raise pn.error("missing 'port' (a port number or a list of them)")
    numbers = []
    for n in pn.child("port").elements(single=True):
        no = n.convert(int)
        if not 1 <= no <= OFPP_MAX:
            raise n.error(f"expected a port number 1..{OFPP_MAX}, got {no}")
        if no in numbers:
            raise n.error(f"port {no} listed twice")
        numbers.append(no)
    if not numbers:
        raise pn.error("empty port list", "port")
    mode = pn.str("mode", "access", choices=MODES)
    if mode == "access":
        for k in ("vlans", "native"):
            if k in pn:
                raise pn.error(f"{k!r} is for trunk ports (mode = \"trunk\"); an access "
                               "port has one 'vlan'", k)
        vlan = _vid(pn.child("vlan")) if "vlan" in pn else (default_vlan or DEFAULT_VLAN)
        return [PortConfig(no, mode, vlan, frozenset()) for no in numbers]
    if mode == "trunk":
        if "vlan" in pn:
            raise pn.error("'vlan' is for access ports; a trunk port has 'vlans' "
                           "(tagged) and optionally 'native'", "vlan")
        tagged = []
        if "vlans" in pn:
            for vn in pn.child("vlans").elements(single=True):
                v = _vid(vn)
                if v in tagged:
                    raise vn.error(f"VLAN {v} listed twice")
                tagged.append(v)
        native = _vid(pn.child("native")) if "native" in pn else None
        if native is not None and native in tagged:
            raise pn.error(f"native VLAN {native} is also in 'vlans' (a VLAN is either "
                           "tagged or untagged on a port)", "native")
        if not tagged and native is None:
            raise pn.error("a trunk port needs 'vlans' and/or 'native'")
        return [PortConfig(no, mode, native, frozenset(tagged)) for no in numbers]
    for k in ("vlan", "vlans", "native"):
        if k in pn:
            raise pn.error(f"{k!r} makes no sense on a disabled port", k)
    return [PortConfig(no, mode, None, frozenset()) for no in numbers]


register_section(SECTION, validate)
