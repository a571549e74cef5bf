"""The [stp] section of the controller config (controller/config.py).

Who uses it: controller/stp/app.py (loads the file, builds one
`logic.Bridge` per datapath with `bridge_kwargs()` / `port_kwargs()`).
Everything is checked on load; a problem refuses the whole file with the
line and key that are wrong, e.g.

    ctl.toml: line 9: stp.datapath[0].priority: RSTP bridge priority 1000
    must be a multiple of 4096

    [stp]
    status_socket = "/run/vdp/stp.sock"  # optional: JSON status (see app.py)
    only_listed = false        # true: datapaths without a [[stp.datapath]]
                               # entry are left alone (no spanning tree there)
    # defaults for every datapath (each may be overridden per datapath):
    mode = "rstp"              # "rstp" (802.1w, default) | "stp" (802.1D)
    priority = 32768           # 0..65535 (RSTP: a multiple of 4096)
    hello_time = 2             # 1..10 s
    max_age = 20               # 6..40 s
    forward_delay = 15         # 4..30 s; 2*(forward_delay-1) >= max_age >= 2*(hello_time+1)
    tx_hold_count = 6          # 1..10 BPDUs per second and port
    cost_method = "long"       # "long" (802.1D-2004) | "short" (802.1D-1998);
                               # default: long for rstp, short for stp

    [[stp.datapath]]
    dpid = 1                   # as `vdp run --dpid` takes it
    name = "s1"                # optional label (logs, status)
    enabled = true             # false: no spanning tree on this datapath
    mode = "stp"               # and any of the defaults above
    mac = "02:00:00:00:00:01"  # optional bridge MAC (default: the datapath's
                               # LOCAL port address, else the low 48 bits of dpid)

      [[stp.datapath.port]]
      port = 1                 # OpenFlow port number 1..4095
      enabled = true           # false: the port takes no part in spanning
                               # tree (it is left forwarding: use for ports
                               # that can never close a loop)
      priority = 128           # 0..240 in steps of 16
      cost = 2000              # 1..200000000; default from the link speed
      edge = true              # administratively an edge port (RSTP)
      auto_edge = true         # RSTP: become edge when no BPDU is heard
      p2p = true               # point-to-point link (RSTP rapid transitions)
      bpdu_guard = false       # shut the port on any BPDU (until restart)
      root_guard = false       # never let the port become root port

Datapaths with no entry get the section defaults (unless only_listed).
MAC ageing is the l2 app's setting ([l2]); spanning tree only shortens it
to forward_delay while an 802.1D topology change lasts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from controller.config import Node, parse_dpid, parse_mac, register_section

SECTION = "stp"
MODES = ("rstp", "stp")
COST_METHODS = ("long", "short")
_BRIDGE_KEYS = ("mode", "priority", "hello_time", "max_age", "forward_delay",
                "tx_hold_count", "cost_method")


@dataclass(frozen=True)
class PortConfig:
    port: int
    enabled: bool = True
    priority: int = 128
    cost: int | None = None
    edge: bool = False
    auto_edge: bool = True
    p2p: bool = True
    bpdu_guard: bool = False
    root_guard: bool = False

    def port_kwargs(self) -> dict:
        """Keyword arguments of logic.Bridge.add_port (besides no/speed/mac)."""
        return dict(priority=self.priority, cost=self.cost, edge=self.edge,
                    auto_edge=self.auto_edge, p2p=self.p2p, bpdu_guard=self.bpdu_guard,
                    root_guard=self.root_guard)


@dataclass(frozen=True)
class BridgeSettings:
    mode: str = "rstp"
    priority: int = 32768
    hello_time: float = 2.0
    max_age: float = 20.0
    forward_delay: float = 15.0
    tx_hold_count: int = 6
    cost_method: str | None = None


@dataclass(frozen=True)
class DatapathConfig:
    dpid: int | None                  # None: the defaults for unlisted datapaths
    name: str = ""
    enabled: bool = True
    mac: str | None = None
    bridge: BridgeSettings = field(default_factory=BridgeSettings)
    ports: dict = field(default_factory=dict)       # port number -> PortConfig

    def port(self, no: int) -> PortConfig:
        return self.ports.get(no) or PortConfig(no)

    def bridge_kwargs(self) -> dict:
        """Keyword arguments of logic.Bridge (besides mac and name)."""
        b = self.bridge
        return dict(priority=b.priority, mode=b.mode, hello_time=b.hello_time,
                    max_age=b.max_age, forward_delay=b.forward_delay,
                    tx_hold_count=b.tx_hold_count,
                    cost_method=b.cost_method)


@dataclass(frozen=True)
class StpConfig:
    status_socket: str | None = None
    only_listed: bool = False
    defaults: DatapathConfig = field(default_factory=lambda: DatapathConfig(None))
    datapaths: dict = field(default_factory=dict)   # dpid -> DatapathConfig

    def for_dpid(self, dpid: int) -> DatapathConfig | None:
        """The settings of datapath dpid, or None when spanning tree must
        leave it alone (only_listed and unlisted, or enabled = false)."""
        dc = self.datapaths.get(dpid)
        if dc is None:
            if self.only_listed:
                return None
            dc = DatapathConfig(dpid, name="", enabled=True, mac=None,
                                bridge=self.defaults.bridge, ports={})
        return dc if dc.enabled else None


DEFAULT = StpConfig()


# --------------------------------------------------------------------------
# validation

def validate(node: Node) -> StpConfig:
    node.only("status_socket", "only_listed", "datapath", *_BRIDGE_KEYS)
    sock = node.str("status_socket", None, conv=_check_socket_path)
    only_listed = node.bool("only_listed", False)
    defaults = _bridge_settings(node, BridgeSettings())
    dps = {}
    if "datapath" in node:
        for dn in node.child("datapath").elements():
            dc = _datapath(dn, defaults)
            if dc.dpid in dps:
                raise dn.error(f"datapath {dc.dpid:#x} configured twice", "dpid")
            dps[dc.dpid] = dc
    return StpConfig(status_socket=sock, only_listed=only_listed,
                     defaults=DatapathConfig(None, bridge=defaults), datapaths=dps)


def _check_socket_path(p):
    if not p:
        raise ValueError("empty path")
    if len(p.encode()) > 107:
        raise ValueError(f"path {p!r} too long for a unix socket (at most 107 bytes)")
    return p


def _bridge_settings(n: Node, base: BridgeSettings) -> BridgeSettings:
    """The bridge keys of table n over `base`, each checked, then checked
    together (priority against mode, the timer relation)."""
    mode = n.str("mode", base.mode, choices=MODES)
    priority = n.int("priority", base.priority, lo=0, hi=65535)
    hello = n.number("hello_time", base.hello_time, lo=1, hi=10)
    max_age = n.number("max_age", base.max_age, lo=6, hi=40)
    fwd = n.number("forward_delay", base.forward_delay, lo=4, hi=30)
    hold = n.int("tx_hold_count", base.tx_hold_count, lo=1, hi=10)
    method = n.str("cost_method", base.cost_method, choices=COST_METHODS)
    if mode == "rstp" and priority % 4096:
        key = "priority" if "priority" in n else "mode"
        raise n.error(f"RSTP bridge priority {priority} must be a multiple of 4096 "
                      f"(0, 4096, ..., 61440)", key)
    if not 2 * (fwd - 1) >= max_age >= 2 * (hello + 1):
        key = next((k for k in ("max_age", "forward_delay", "hello_time") if k in n), None)
        raise n.error(f"timers break 2*(forward_delay-1) >= max_age >= 2*(hello_time+1): "
                      f"hello_time {hello:g}, max_age {max_age:g}, forward_delay {fwd:g}", key)
    return BridgeSettings(mode=mode, priority=priority, hello_time=hello, max_age=max_age,
                          forward_delay=fwd, tx_hold_count=hold,
                          cost_method=method)


def _datapath(dn: Node, defaults: BridgeSettings) -> DatapathConfig:
    dn.only("dpid", "name", "enabled", "mac", "port", *_BRIDGE_KEYS)
    dpid = dn.get("dpid", (int, str), conv=parse_dpid, what="a dpid (integer or hex text)")
    name = dn.str("name", "")
    enabled = dn.bool("enabled", True)
    mac = dn.str("mac", None, conv=_bridge_mac)
    bridge = _bridge_settings(dn, defaults)
    ports = {}
    if "port" in dn:
        for pn in dn.child("port").elements():
            pc = _port(pn)
            if pc.port in ports:
                raise pn.error(f"port {pc.port} configured twice", "port")
            ports[pc.port] = pc
    return DatapathConfig(dpid=dpid, name=name, enabled=enabled, mac=mac, bridge=bridge,
                          ports=ports)


def _bridge_mac(text):
    mac = parse_mac(text)
    if int(mac[:2], 16) & 1:
        raise ValueError(f"bridge MAC {text!r} is a multicast address")
    if mac == "00:00:00:00:00:00":
        raise ValueError("bridge MAC must not be all zeros")
    return mac


def _port(pn: Node) -> PortConfig:
    pn.only("port", "enabled", "priority", "cost", "edge", "auto_edge", "p2p", "bpdu_guard",
            "root_guard")
    no = pn.int("port", lo=1, hi=4095)
    prio = pn.int("priority", 128, lo=0, hi=240)
    if prio % 16:
        raise pn.error(f"port priority {prio} must be a multiple of 16 (0, 16, ..., 240)",
                       "priority")
    return PortConfig(port=no, enabled=pn.bool("enabled", True), priority=prio,
                      cost=pn.int("cost", None, lo=1, hi=200_000_000),
                      edge=pn.bool("edge", False), auto_edge=pn.bool("auto_edge", True),
                      p2p=pn.bool("p2p", True), bpdu_guard=pn.bool("bpdu_guard", False),
                      root_guard=pn.bool("root_guard", False))


register_section(SECTION, validate)
