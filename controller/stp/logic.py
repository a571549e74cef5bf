"""Spanning tree bridge, I/O-free: one `Bridge` per datapath.

Who calls this: the os-ken adapter (controller/stp/app.py, to be written)
and the unit tests.  The adapter turns OpenFlow events into calls and the
returned `Actions` into OpenFlow messages; this module never sleeps, never
reads a clock and does no I/O.  Time is the `now` argument (seconds, any
monotonic origin, e.g. time.monotonic()); every call takes it and first
runs the protocol up to `now`, firing timers in order even if `now` jumped
far ahead (tests warp time this way).

Two protocols behind one API, chosen by `mode`:
  'rstp'  IEEE 802.1D-2004 clause 17 (802.1w RSTP), in rstp.py: roles root /
          designated / alternate / backup / disabled, states discarding /
          learning / forwarding, proposal/agreement on point-to-point links,
          edge ports (configured and automatic), topology change by TC flag
          with immediate flush, and per-port fallback to 802.1D BPDUs when a
          legacy bridge is heard (migrate time 3 s; `mcheck` retries RSTP).
  'stp'   IEEE 802.1D (1998) STP, in stp.py: blocking / listening /
          learning / forwarding, TCN/TCA, TC flag with short ageing.

Adapter contract
----------------
    br = Bridge(mac, priority=32768, mode='rstp', hello_time=2, max_age=20,
                forward_delay=15)
    br.add_port(no, speed_mbps=10000, cost=None, priority=128, edge=False,
                p2p=True, bpdu_guard=False, root_guard=False, mac=port_hw_addr)
    acts = br.port_link(no, up, now)        # port status / PORT_DESC
    acts = br.rx_bpdu(no, frame, now)       # packet-in to 01:80:c2:00:00:00
    acts = br.tick(now)                     # a timer, e.g. every 0.1-1 s, or
                                            # at br.next_wakeup()
A new port starts disabled (link down) until `port_link(no, True, now)`.
Every call returns an `Actions` (common.py): apply `ports` (PORT_MOD with
PortChange.config under PortChange.mask, plus the flows described in
common.py), then `flush` (delete learned-MAC flows of those ports), then send
`tx` frames as PACKET_OUT to their port; log `events`; if `ageing` is not
None use it as the idle timeout of newly learned MACs.  The first call after
add_port reports the new port in `ports` (state 'disabled' while down).
For flooding, use `forwarding_ports()` (never OFPP_FLOOD blindly).
`status()` is the data behind a `stp/show` view.

Configuration while running: set_priority, set_port_priority,
set_port_cost, set_port_speed, set_port_edge, set_timers, mcheck,
clear_guard, remove_port: each takes `now` and returns Actions.

Guards: bpdu_guard=True shuts the port (state 'disabled', OpenFlow config
NO_RECV|NO_FWD|NO_PACKET_IN) on the first valid BPDU it receives, until
`clear_guard(no, now)`; meant for edge ports facing hosts.  root_guard=True
never lets the port become root port: a superior BPDU on it makes it
'alternate' and discarding/blocking (status 'root-inconsistent') until that
information stops arriving and ages out.

Bad input: a frame that does not decode (bpdu.BpduError) is counted in the
port's rx_malformed (and the bridge's) and ignored, with an event naming the
reason.  Valid BPDUs that 802.1D says to drop (a Configuration BPDU whose
message age is not below its max age, our own BPDU looped back to the port
that sent it, RST BPDUs reaching an 'stp' bridge, BPDUs on a disabled port)
are counted in rx_ignored.
"""
from __future__ import annotations

from . import bpdu as B
from .bpdu import BpduError
from .common import (FORWARDING, LEARNING, PORT_CONFIG_MASK, Actions, PortChange,
                     path_cost, port_config)
from .rstp import RstpEngine
from .stp import StpEngine

MODES = ("rstp", "stp")


class Port:
    """Configuration and counters of one bridge port (engine state in .sm)."""

    def __init__(self, bridge, no, speed_mbps, cost, priority, edge, auto_edge, p2p,
                 bpdu_guard, root_guard, mac):
        self.bridge = bridge
        self.no = no
        self.speed_mbps = speed_mbps
        self.admin_cost = cost
        self.priority = priority
        self.admin_edge = bool(edge)
        self.auto_edge = bool(auto_edge)
        self.p2p = bool(p2p)
        self.bpdu_guard = bool(bpdu_guard)
        self.root_guard = bool(root_guard)
        self.mac = B.mac_to_int(mac if mac is not None else bridge.mac)
        self.link_up = False
        self.guard_tripped = None        # 'bpdu-guard' while shut by the guard
        self.stats = dict(rx_bpdus=0, tx_bpdus=0, rx_malformed=0, rx_ignored=0,
                          guard_trips=0)
        self.sm = None

    @property
    def cost(self) -> int:
        if self.admin_cost is not None:
            return self.admin_cost
        return path_cost(self.speed_mbps, self.bridge.cost_method)

    @property
    def port_id(self) -> int:
        return B.make_port_id(self.priority, self.no)

    @property
    def enabled(self) -> bool:
        return self.link_up and self.guard_tripped is None


def _check_timers(hello, max_age, fwd):
    if not 1 <= hello <= 10:
        raise ValueError(f"hello_time {hello} must be 1..10 s")
    if not 6 <= max_age <= 40:
        raise ValueError(f"max_age {max_age} must be 6..40 s")
    if not 4 <= fwd <= 30:
        raise ValueError(f"forward_delay {fwd} must be 4..30 s")
    if not 2 * (fwd - 1) >= max_age >= 2 * (hello + 1):
        raise ValueError(f"timers break 2*(forward_delay-1) >= max_age >= 2*(hello_time+1): "
                         f"hello {hello}, max age {max_age}, forward delay {fwd}")


class Bridge:
    """One spanning tree bridge (one datapath).  See the module docstring."""

    def __init__(self, mac, priority: int = 32768, mode: str = "rstp", *,
                 hello_time: float = 2.0, max_age: float = 20.0, forward_delay: float = 15.0,
                 tx_hold_count: int = 6, migrate_time: float = 3.0, ageing_time: float = 300.0,
                 cost_method: str | None = None, sys_id_ext: int = 0, name: str = ""):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        _check_timers(hello_time, max_age, forward_delay)
        if not 1 <= tx_hold_count <= 10:
            raise ValueError(f"tx_hold_count {tx_hold_count} must be 1..10")
        self.mode = mode
        self.name = name
        self.mac = B.mac_to_int(mac)
        self.sys_id_ext = sys_id_ext
        self._check_priority(priority)
        self.priority = priority
        self.hello_time = float(hello_time)
        self.max_age = float(max_age)
        self.forward_delay = float(forward_delay)
        self.tx_hold_count = tx_hold_count
        self.migrate_time = float(migrate_time)
        self.ageing_time = float(ageing_time)
        if cost_method is None:
            cost_method = "long" if mode == "rstp" else "short"
        path_cost(None, cost_method)                      # validates
        self.cost_method = cost_method
        self.ports: dict[int, Port] = {}
        self.now = None
        self.stats = dict(rx_bpdus=0, tx_bpdus=0, rx_malformed=0, rx_ignored=0)
        self._acts = None
        self._reported: dict[int, tuple] = {}
        self._ageing_now = self.ageing_time
        self.engine = RstpEngine(self) if mode == "rstp" else StpEngine(self)

    # ------------------------------------------------------------------ identity
    def _check_priority(self, priority):
        if not 0 <= priority <= 0xFFFF:
            raise ValueError(f"bridge priority {priority} must be 0..65535")
        if self.mode == "rstp" and priority % 4096:
            raise ValueError(f"RSTP bridge priority {priority} must be a multiple of 4096")
        B.make_bridge_id(priority, self.mac, self.sys_id_ext)

    @property
    def bridge_id(self) -> int:
        return B.make_bridge_id(self.priority, self.mac, self.sys_id_ext)

    # ------------------------------------------------------------------ ports
    def add_port(self, no: int, speed_mbps: float | None = None, cost: int | None = None,
                 priority: int = 128, edge: bool = False, p2p: bool = True,
                 bpdu_guard: bool = False, root_guard: bool = False, auto_edge: bool = True,
                 mac=None) -> Port:
        """Add port `no` (1..4095), link down.  cost=None derives the path
        cost from speed_mbps (see common.path_cost); mac is the source MAC of
        the BPDUs sent on it (default: the bridge MAC)."""
        if no in self.ports:
            raise ValueError(f"port {no} already exists")
        B.make_port_id(priority, no)
        if cost is not None and not 1 <= cost <= 200_000_000:
            raise ValueError(f"path cost {cost} must be 1..200000000")
        port = Port(self, no, speed_mbps, cost, priority, edge, auto_edge, p2p, bpdu_guard,
                    root_guard, mac)
        self.ports[no] = port
        self.engine.add_port(port)
        return port

    def _port(self, no) -> Port:
        try:
            return self.ports[no]
        except KeyError:
            raise KeyError(f"no port {no} on this bridge") from None

    def remove_port(self, no: int, now: float) -> Actions:
        port = self._port(no)

        def go():
            if port.enabled:
                port.link_up = False
                self.engine.set_enabled(port, False)
                self.engine.run()
            del self.ports[no]
            self._reported.pop(no, None)
            self.engine.remove_port(port)
        return self._call(now, go)

    # ------------------------------------------------------------------ events in
    def port_link(self, no: int, up: bool, now: float) -> Actions:
        port = self._port(no)

        def go():
            if port.link_up == bool(up):
                return
            port.link_up = bool(up)
            self._event(f"port {no}: link {'up' if up else 'down'}")
            if port.guard_tripped is None:
                self.engine.set_enabled(port, port.enabled)
        return self._call(now, go)

    def rx_bpdu(self, no: int, frame: bytes, now: float) -> Actions:
        port = self._port(no)

        def go():
            self.stats["rx_bpdus"] += 1
            port.stats["rx_bpdus"] += 1
            try:
                b = B.decode_frame(frame)
            except BpduError as e:
                self.stats["rx_malformed"] += 1
                port.stats["rx_malformed"] += 1
                self._event(f"port {no}: malformed BPDU dropped ({e})")
                return
            if not port.enabled:
                self._ignored(port)
                return
            if port.bpdu_guard:
                port.guard_tripped = "bpdu-guard"
                port.stats["guard_trips"] += 1
                self._event(f"port {no}: BPDU guard: BPDU from "
                            f"{B.mac_str(B.frame_src(frame))}, port disabled")
                self.engine.set_enabled(port, False)
                return
            if not b.is_tcn:
                if b.bridge_id == self.bridge_id and b.port_id == port.port_id:
                    self._ignored(port)            # our own BPDU came back
                    return
                if b.is_config and b.message_age >= b.max_age:
                    self._ignored(port)            # 9.3.4: expired information
                    return
            if not self.engine.rx(port, b):
                self._ignored(port)
        return self._call(now, go)

    def _ignored(self, port):
        self.stats["rx_ignored"] += 1
        port.stats["rx_ignored"] += 1

    def tick(self, now: float) -> Actions:
        return self._call(now, lambda: None)

    # ------------------------------------------------------------------ management
    def set_priority(self, priority: int, now: float) -> Actions:
        self._check_priority(priority)

        def go():
            self.priority = priority
            self.engine.reconfigure()
        return self._call(now, go)

    def set_port_priority(self, no: int, priority: int, now: float) -> Actions:
        port = self._port(no)
        B.make_port_id(priority, no)

        def go():
            port.priority = priority
            self.engine.reconfigure(port)
        return self._call(now, go)

    def set_port_cost(self, no: int, cost: int | None, now: float) -> Actions:
        """cost=None: back to the cost derived from the link speed."""
        port = self._port(no)
        if cost is not None and not 1 <= cost <= 200_000_000:
            raise ValueError(f"path cost {cost} must be 1..200000000")

        def go():
            port.admin_cost = cost
            self.engine.reconfigure(port)
        return self._call(now, go)

    def set_port_speed(self, no: int, speed_mbps: float | None, now: float) -> Actions:
        port = self._port(no)

        def go():
            port.speed_mbps = speed_mbps
            self.engine.reconfigure(port)
        return self._call(now, go)

    def set_port_edge(self, no: int, edge: bool, now: float) -> Actions:
        port = self._port(no)

        def go():
            port.admin_edge = bool(edge)
            self.engine.set_admin_edge(port, bool(edge))
        return self._call(now, go)

    def set_timers(self, hello_time: float | None, max_age: float | None,
                   forward_delay: float | None, now: float) -> Actions:
        """The bridge's own timers (used when it is root); None keeps one."""
        h = self.hello_time if hello_time is None else float(hello_time)
        m = self.max_age if max_age is None else float(max_age)
        f = self.forward_delay if forward_delay is None else float(forward_delay)
        _check_timers(h, m, f)

        def go():
            self.hello_time, self.max_age, self.forward_delay = h, m, f
            self.engine.reconfigure()
        return self._call(now, go)

    def mcheck(self, no: int, now: float) -> Actions:
        """RSTP: try RSTP BPDUs again on this port (after a legacy bridge left)."""
        port = self._port(no)
        return self._call(now, lambda: self.engine.mcheck(port))

    def clear_guard(self, no: int, now: float) -> Actions:
        """Re-enable a port shut by BPDU guard."""
        port = self._port(no)

        def go():
            if port.guard_tripped is not None:
                port.guard_tripped = None
                self._event(f"port {no}: BPDU guard cleared")
                self.engine.set_enabled(port, port.enabled)
        return self._call(now, go)

    # ------------------------------------------------------------------ time
    def next_wakeup(self):
        """Absolute time of the next timer event (None: nothing pending)."""
        if self.now is None:
            return None
        e = self.engine.next_expiry()
        return None if e is None else self.now + e

    def _advance(self, now: float):
        if self.now is None:
            self.now = now
            return
        for _ in range(1_000_000):
            e = self.engine.next_expiry()
            if e is None or self.now + e > now:
                break
            self.engine.advance(e)
            self.now += e
            self.engine.run()
        else:
            raise RuntimeError("timer loop does not progress")
        if now > self.now:
            self.engine.advance(now - self.now)
            self.now = now

    def _call(self, now: float, fn) -> Actions:
        acts = self._acts = Actions()
        try:
            self._advance(float(now))
            self.engine.run()
            fn()
            self.engine.run()
            self._report()
        finally:
            self._acts = None
        acts.flush = sorted(set(acts.flush))
        return acts

    # ------------------------------------------------------------------ engine callbacks
    def _event(self, msg: str):
        if self._acts is not None:
            self._acts.events.append(msg)

    def _send(self, port: Port, b: B.Bpdu):
        frame = B.encode_frame(b, port.mac)
        port.stats["tx_bpdus"] += 1
        self.stats["tx_bpdus"] += 1
        if self._acts is not None:
            self._acts.tx.append((port.no, frame))

    def _flush(self, port: Port):
        if self._acts is not None:
            self._acts.flush.append(port.no)

    def _set_ageing(self, short: float | None, flush: bool = False):
        """802.1D short ageing: `short` while the TC flag is set, else normal."""
        value = self.ageing_time if short is None else short
        if value != self._ageing_now:
            self._ageing_now = value
            if self._acts is not None:
                self._acts.ageing = value
        if flush and self._acts is not None:
            self._acts.flush.extend(p.no for p in self.ports.values() if p.enabled)

    def _report(self):
        for no, port in self.ports.items():
            state, role = self.engine.port_view(port)
            if self._reported.get(no) != (state, role):
                old = self._reported.get(no)
                self._reported[no] = (state, role)
                self._acts.ports[no] = PortChange(no, state, role, port_config(state, role),
                                                  PORT_CONFIG_MASK)
                self._event(f"port {no}: {old[1]}/{old[0]} -> {role}/{state}" if old else
                            f"port {no}: {role}/{state}")

    # ------------------------------------------------------------------ views
    @property
    def ageing(self) -> float:
        """MAC ageing time in force now (short while an 802.1D TC lasts)."""
        return self._ageing_now

    def port_state(self, no: int) -> str:
        return self.engine.port_view(self._port(no))[0]

    def port_role(self, no: int) -> str:
        return self.engine.port_view(self._port(no))[1]

    def forwarding_ports(self) -> list[int]:
        return sorted(no for no, p in self.ports.items() if self.engine.port_view(p)[0] == FORWARDING)

    def learning_ports(self) -> list[int]:
        """Ports whose source MACs may be learned (learning or forwarding)."""
        return sorted(no for no, p in self.ports.items()
                      if self.engine.port_view(p)[0] in (LEARNING, FORWARDING))

    def status(self) -> dict:
        """Data for a `stp/show` view (JSON-friendly)."""
        rv = self.engine.root_view()
        out = dict(
            name=self.name, mode=self.mode,
            bridge_id=B.bridge_id_str(self.bridge_id), priority=self.priority,
            mac=B.mac_str(self.mac),
            root_id=B.bridge_id_str(rv["root_id"]), is_root=rv["root_id"] == self.bridge_id,
            root_port=rv["root_port"], root_path_cost=rv["root_path_cost"],
            hello_time=rv["hello_time"], max_age=rv["max_age"],
            forward_delay=rv["forward_delay"],
            bridge_hello_time=self.hello_time, bridge_max_age=self.max_age,
            bridge_forward_delay=self.forward_delay,
            topology_change=rv["topology_change"],
            topology_change_count=rv["topology_change_count"],
            time_since_topology_change=(None if rv["last_topology_change"] is None or self.now is None
                                        else self.now - rv["last_topology_change"]),
            ageing_time=self._ageing_now,
            stats=dict(self.stats),
            ports={},
        )
        for no, port in sorted(self.ports.items()):
            state, role = self.engine.port_view(port)
            d = self.engine.port_detail(port)
            guard = None
            if port.guard_tripped:
                guard = port.guard_tripped
            elif d.get("root_inconsistent"):
                guard = "root-inconsistent"
            out["ports"][no] = dict(
                port=no, role=role, state=state, cost=port.cost, priority=port.priority,
                port_id=f"{port.port_id:04x}", link_up=port.link_up,
                designated_root=B.bridge_id_str(d["designated_root"]),
                designated_bridge=B.bridge_id_str(d["designated_bridge"]),
                designated_port=f"{d['designated_port']:04x}",
                designated_cost=d["designated_cost"],
                edge=bool(d["edge"]), admin_edge=port.admin_edge, p2p=port.p2p,
                protocol=d["protocol"], bpdu_guard=port.bpdu_guard, root_guard=port.root_guard,
                guard=guard, stats=dict(port.stats),
            )
        return out
