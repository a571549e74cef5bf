"""IEEE 802.1D (1998, clause 8) Spanning Tree Protocol engine, I/O-free.

Who calls this: controller/stp/logic.py's Bridge (mode='stp') owns one
`StpEngine`; nothing else should.  This is the classic protocol the Linux
bridge (`stp_state 1`) and Open vSwitch's `stp_enable` speak: Configuration
and TCN BPDUs only, port states blocking -> listening -> learning ->
forwarding on forward-delay timers, information aged out by message age,
topology changes by TCN to the root, acknowledged by TCA, and announced by
the root with the TC flag for max-age + forward-delay, during which bridges
age learned MACs with the short (forward delay) ageing time.

Shape: the procedures of 802.1D-1998 8.6-8.8 (supersedes, record, root
selection, designated port selection, port state selection, topology change
detection/acknowledgement, the seven timers) as methods.  Timers hold
seconds remaining (None = stopped); the message age timer holds the age of
the port's information and its expiry age.  RST BPDUs are ignored, as an
802.1D-1998 bridge does (8.4, 9.3.4): an RSTP neighbour then falls back to
802.1D on that link when it hears our Configuration BPDUs.

Extensions (not in 1998, named so the adapter can rely on them):
edge ports ("portfast": a designated edge port goes straight to forwarding
without a topology change, and stops being edge on its first BPDU), root
guard (a guarded port is never root port; superior information on it
blocks it), and the transmitted message age is the root port's message age
timer plus 1/256 s (as OVS and Linux do).
"""
from __future__ import annotations

from . import bpdu as B
from .common import (ALTERNATE, BACKUP, BLOCKING, DESIGNATED, DISABLED, FORWARDING, LEARNING,
                     LISTENING, ROOT)

EPS = 1e-9
HOLD_TIME = 1.0
MESSAGE_AGE_INCREMENT = 1.0 / 256


class StpPort:
    def __init__(self, port, engine):
        self.port = port
        self.state = DISABLED
        b = engine.bid
        self.pid = port.port_id             # the port id our BPDUs carry
        self.designated_root = b
        self.designated_cost = 0
        self.designated_bridge = b
        self.designated_port = self.pid
        self.topology_change_ack = False
        self.config_pending = False
        self.oper_edge = port.admin_edge
        self.age = None               # message age timer value, None = stopped
        self.age_limit = 0.0          # the age at which the information expires
        self.fwd_timer = None
        self.hold_timer = None
        self.root_inconsistent = False


class StpEngine:
    def __init__(self, bridge):
        self.br = bridge
        b = self.bid = bridge.bridge_id      # the identifier our BPDUs carry
        self.designated_root = b
        self.root_path_cost = 0
        self.root_port = None         # StpPort
        self.max_age = bridge.max_age
        self.hello_time = bridge.hello_time
        self.forward_delay = bridge.forward_delay
        self.topology_change_detected = False
        self.topology_change = False
        self.tcn_timer = None
        self.tc_timer = None
        self.hello_timer = None
        self.tc_count = 0
        self.last_tc = None
        self._tc_seen = False
        self._root_seen = (b, None)
        self.started = False

    # ------------------------------------------------------------------ helpers
    def ports(self):
        return [p.sm for p in self.br.ports.values()]

    @property
    def bridge_id(self):
        return self.bid

    def root_bridge(self) -> bool:
        return self.designated_root == self.bridge_id

    def designated_port(self, p) -> bool:
        return p.designated_bridge == self.bid and p.designated_port == p.pid

    def designated_for_some_port(self) -> bool:
        return any(p.state != DISABLED and self.designated_port(p) for p in self.ports())

    def _set_state(self, p, state):
        p.state = state

    # ------------------------------------------------------------------ management hooks
    def start(self):
        """8.8.1 initialisation (once, at the first call into the bridge)."""
        self.started = True
        self.designated_root = self.bridge_id
        self.root_path_cost = 0
        self.root_port = None
        self._adopt_bridge_times()
        self.topology_change_detected = False
        self.topology_change = False
        self.tcn_timer = self.tc_timer = None
        self.port_state_selection()
        self.config_bpdu_generation()
        self.hello_timer = self.br.hello_time

    def add_port(self, port):
        port.sm = StpPort(port, self)

    def remove_port(self, port):
        self.configuration_update()
        self.port_state_selection()

    def set_enabled(self, port, enabled: bool):
        p = port.sm
        if not self.started:
            self.start()
        if enabled and p.state == DISABLED:
            self.enable_port(p)
        elif not enabled and p.state != DISABLED:
            self.disable_port(p)

    def reconfigure(self, port=None):
        """Bridge id (priority), port id (priority), path cost or timers
        changed: 8.8.4 set_bridge_priority, 8.8.5 set_port_priority, 8.8.6
        set_path_cost, then the usual selections."""
        was_root = self.root_bridge()
        old, new = self.bid, self.br.bridge_id
        if old != new:
            for p in self.ports():
                if self.designated_port(p):
                    p.designated_bridge = new
            if self.designated_root == old:
                self.designated_root = new
            self.bid = new
        for p in self.ports():
            pid = p.port.port_id
            if p.pid != pid:
                if self.designated_port(p):
                    p.designated_port = pid
                p.pid = pid
                if self.bid == p.designated_bridge and pid < p.designated_port:
                    self.become_designated_port(p)
        if self.root_bridge():
            self._adopt_bridge_times()
        self.configuration_update()
        self.port_state_selection()
        self._became_root_check(was_root)

    def set_admin_edge(self, port, edge: bool):
        p = port.sm
        p.oper_edge = edge
        if edge and p.state in (LISTENING, LEARNING) and self.designated_port(p):
            self._set_state(p, FORWARDING)
            p.fwd_timer = None

    def mcheck(self, port):
        pass                           # no protocol migration in 802.1D-1998

    def rx(self, port, bpdu) -> bool:
        p = port.sm
        if p.state == DISABLED:
            return False
        if bpdu.is_rst:
            return False               # an 802.1D-1998 bridge does not know type 0x02
        if p.oper_edge:
            p.oper_edge = False
            self.br._event(f"port {port.no}: BPDU received, no longer an edge port")
        if bpdu.is_config:
            self.received_config_bpdu(p, bpdu)
        else:
            self.received_tcn_bpdu(p)
        return True

    # ------------------------------------------------------------------ time
    def advance(self, dt: float):
        if dt <= 0:
            return
        for name in ("hello_timer", "tcn_timer", "tc_timer"):
            v = getattr(self, name)
            if v is not None:
                setattr(self, name, max(0.0, v - dt) if v - dt > EPS else 0.0)
        for p in self.ports():
            if p.age is not None:
                p.age += dt
            for name in ("fwd_timer", "hold_timer"):
                v = getattr(p, name)
                if v is not None:
                    setattr(p, name, v - dt if v - dt > EPS else 0.0)

    def next_expiry(self):
        cands = [v for v in (self.hello_timer, self.tcn_timer, self.tc_timer) if v is not None]
        for p in self.ports():
            if p.age is not None:
                cands.append(max(p.age_limit - p.age, 0.0))
            cands += [v for v in (p.fwd_timer, p.hold_timer) if v is not None]
        pos = [v for v in cands if v > 0]
        return min(pos) if pos else None

    def run(self):
        """Fire every expired timer (8.7), repeating until none is due."""
        if not self.started:
            self.start()
        for _ in range(10000):
            fired = False
            if self.hello_timer is not None and self.hello_timer <= 0:
                self.hello_timer_expiry()
                fired = True
            if self.tcn_timer is not None and self.tcn_timer <= 0:
                self.tcn_timer_expiry()
                fired = True
            if self.tc_timer is not None and self.tc_timer <= 0:
                self.topology_change_timer_expiry()
                fired = True
            for p in self.ports():
                if p.age is not None and p.age >= p.age_limit - EPS:
                    self.message_age_timer_expiry(p)
                    fired = True
                if p.fwd_timer is not None and p.fwd_timer <= 0:
                    self.forward_delay_timer_expiry(p)
                    fired = True
                if p.hold_timer is not None and p.hold_timer <= 0:
                    self.hold_timer_expiry(p)
                    fired = True
            if not fired:
                break
        self._note_tc_flag()

    # ------------------------------------------------------------------ 8.6 procedures
    def transmit_config(self, p):
        if p.hold_timer is not None:
            p.config_pending = True
            return
        if self.root_bridge():
            age = 0.0
        else:
            rp = self.root_port
            age = (rp.age if rp is not None and rp.age is not None else 0.0) + MESSAGE_AGE_INCREMENT
        if age < self.max_age:
            flags = (B.FLAG_TC if self.topology_change else 0) | (B.FLAG_TCA if p.topology_change_ack else 0)
            self.br._send(p.port, B.Bpdu.config(
                flags=flags, root_id=self.designated_root, root_path_cost=self.root_path_cost,
                bridge_id=self.bid, port_id=p.pid, message_age=min(age, 255.0),
                max_age=self.max_age, hello_time=self.hello_time,
                forward_delay=self.forward_delay))
            p.topology_change_ack = False
            p.config_pending = False
            p.hold_timer = HOLD_TIME

    def supersedes_port_info(self, p, c) -> bool:
        return (c.root_id < p.designated_root
                or (c.root_id == p.designated_root and c.root_path_cost < p.designated_cost)
                or (c.root_id == p.designated_root and c.root_path_cost == p.designated_cost
                    and c.bridge_id < p.designated_bridge)
                or (c.root_id == p.designated_root and c.root_path_cost == p.designated_cost
                    and c.bridge_id == p.designated_bridge and c.port_id <= p.designated_port))

    def record_config_information(self, p, c):
        p.designated_root = c.root_id
        p.designated_cost = c.root_path_cost
        p.designated_bridge = c.bridge_id
        p.designated_port = c.port_id
        p.age = c.message_age
        p.age_limit = c.max_age

    def record_config_timeout_values(self, c):
        self.max_age = c.max_age
        self.hello_time = max(c.hello_time, 1.0)
        self.forward_delay = c.forward_delay
        self.topology_change = c.tc

    def config_bpdu_generation(self):
        for p in self.ports():
            if self.designated_port(p) and p.state != DISABLED:
                self.transmit_config(p)

    def transmit_tcn(self):
        if self.root_port is not None:
            self.br._send(self.root_port.port, B.Bpdu.tcn())

    def configuration_update(self):
        self.root_selection()
        self.designated_port_selection()

    def _candidate(self, p):
        return (p.designated_root, p.designated_cost + p.port.cost, p.designated_bridge,
                p.designated_port, p.pid)

    def root_selection(self):
        best = None
        for p in self.ports():
            if p.state == DISABLED or self.designated_port(p) or p.port.root_guard:
                continue
            if p.designated_root >= self.bridge_id:
                continue
            if best is None or self._candidate(p) < self._candidate(best):
                best = p
        self.root_port = best
        if best is None:
            self.designated_root = self.bridge_id
            self.root_path_cost = 0
        else:
            self.designated_root = best.designated_root
            self.root_path_cost = best.designated_cost + best.port.cost
        self._update_guards()
        now = (self.designated_root, best.port.no if best else None)
        if now != self._root_seen:
            old, self._root_seen = self._root_seen, now
            if now[0] != old[0]:
                self.br._event(f"root: this bridge {B.bridge_id_str(self.bridge_id)} is now root"
                               if best is None else
                               f"root: {B.bridge_id_str(now[0])} via port {now[1]} "
                               f"(cost {self.root_path_cost})")
            elif best is not None:
                self.br._event(f"root port: now port {now[1]} (cost {self.root_path_cost})")

    def _update_guards(self):
        mine = (self.designated_root, self.root_path_cost)
        for p in self.ports():
            bad = (p.port.root_guard and p.state != DISABLED and not self.designated_port(p)
                   and (p.designated_root, p.designated_cost + p.port.cost) < mine)
            if bad != p.root_inconsistent:
                p.root_inconsistent = bad
                self.br._event(f"port {p.port.no}: root guard: superior BPDU from "
                               f"{B.bridge_id_str(p.designated_bridge)}, port blocked "
                               f"(root-inconsistent)" if bad else
                               f"port {p.port.no}: root guard: port released")

    def designated_port_selection(self):
        for p in self.ports():
            if (self.designated_port(p)
                    or p.designated_root != self.designated_root
                    or self.root_path_cost < p.designated_cost
                    or (self.root_path_cost == p.designated_cost
                        and self.bridge_id < p.designated_bridge)
                    or (self.root_path_cost == p.designated_cost
                        and self.bridge_id == p.designated_bridge
                        and p.pid <= p.designated_port)):
                if p.port.root_guard and p.designated_root < self.designated_root \
                        and p.state != DISABLED and p.age is not None:
                    continue          # guarded: keep the superior information, stay blocked
                self.become_designated_port(p)

    def become_designated_port(self, p):
        p.designated_root = self.designated_root
        p.designated_cost = self.root_path_cost
        p.designated_bridge = self.bid
        p.designated_port = p.pid

    def port_state_selection(self):
        for p in self.ports():
            if p is self.root_port:
                p.config_pending = False
                p.topology_change_ack = False
                self.make_forwarding(p)
            elif self.designated_port(p):
                p.age = None
                self.make_forwarding(p)
            else:
                p.config_pending = False
                p.topology_change_ack = False
                self.make_blocking(p)

    def make_forwarding(self, p):
        if p.state == BLOCKING:
            if p.oper_edge and self.designated_port(p):
                self._set_state(p, FORWARDING)       # edge port: no listening, no TC
                p.fwd_timer = None
            else:
                self._set_state(p, LISTENING)
                p.fwd_timer = self.forward_delay

    def make_blocking(self, p):
        if p.state not in (DISABLED, BLOCKING):
            if p.state in (FORWARDING, LEARNING) and not p.oper_edge:
                self.topology_change_detection(f"port {p.port.no} stopped forwarding")
            self._set_state(p, BLOCKING)
            p.fwd_timer = None

    def topology_change_detection(self, why=""):
        if self.root_bridge():
            if not self.topology_change:
                self._count_tc(f"topology change ({why}): this root bridge sets the TC flag")
            self.topology_change = True
            self.tc_timer = self.br.max_age + self.br.forward_delay
        elif not self.topology_change_detected:
            self._count_tc(f"topology change ({why}): notifying the root")
            self.transmit_tcn()
            self.tcn_timer = self.br.hello_time
        self.topology_change_detected = True

    def _count_tc(self, msg):
        self.tc_count += 1
        self.last_tc = self.br.now
        self.br._event(msg)

    def topology_change_acknowledged(self):
        self.topology_change_detected = False
        self.tcn_timer = None

    def acknowledge_topology_change(self, p):
        p.topology_change_ack = True
        self.transmit_config(p)

    # ------------------------------------------------------------------ 8.7 operation
    def received_config_bpdu(self, p, c):
        was_root = self.root_bridge()
        if self.supersedes_port_info(p, c):
            self.record_config_information(p, c)
            self.configuration_update()
            self.port_state_selection()
            if not self.root_bridge() and was_root:
                self.hello_timer = None
                if self.topology_change_detected:
                    self.tc_timer = None
                    self.transmit_tcn()
                    self.tcn_timer = self.br.hello_time
            if p is self.root_port:
                self.record_config_timeout_values(c)
                self.config_bpdu_generation()
                if c.tca:
                    self.topology_change_acknowledged()
        elif self.designated_port(p):
            self.transmit_config(p)   # reply: tell the sender about the better root

    def received_tcn_bpdu(self, p):
        if self.designated_port(p):
            self.topology_change_detection(f"TCN received on port {p.port.no}")
            self.acknowledge_topology_change(p)

    def hello_timer_expiry(self):
        self.config_bpdu_generation()
        self.hello_timer = self.br.hello_time

    def message_age_timer_expiry(self, p):
        self.br._event(f"port {p.port.no}: information from "
                       f"{B.bridge_id_str(p.designated_bridge)} aged out (max age)")
        was_root = self.root_bridge()
        p.age = None
        self.become_designated_port(p)
        self.configuration_update()
        self.port_state_selection()
        self._became_root_check(was_root)

    def _became_root_check(self, was_root):
        if self.root_bridge() and not was_root:
            self._adopt_bridge_times()
            self.topology_change_detection("became root")
            self.tcn_timer = None
            self.config_bpdu_generation()
            self.hello_timer = self.br.hello_time

    def _adopt_bridge_times(self):
        self.max_age = self.br.max_age
        self.hello_time = self.br.hello_time
        self.forward_delay = self.br.forward_delay

    def forward_delay_timer_expiry(self, p):
        if p.state == LISTENING:
            self._set_state(p, LEARNING)
            p.fwd_timer = self.forward_delay
        elif p.state == LEARNING:
            self._set_state(p, FORWARDING)
            p.fwd_timer = None
            if self.designated_for_some_port() and not p.oper_edge:
                self.topology_change_detection(f"port {p.port.no} now forwarding")
        else:
            p.fwd_timer = None

    def tcn_timer_expiry(self):
        self.transmit_tcn()
        self.tcn_timer = self.br.hello_time

    def topology_change_timer_expiry(self):
        self.topology_change_detected = False
        self.topology_change = False
        self.tc_timer = None

    def hold_timer_expiry(self, p):
        p.hold_timer = None
        if p.config_pending:
            self.transmit_config(p)

    # ------------------------------------------------------------------ 8.8 management
    def initialize_port(self, p):
        self.become_designated_port(p)
        self._set_state(p, BLOCKING)
        p.topology_change_ack = False
        p.config_pending = False
        p.oper_edge = p.port.admin_edge
        p.age = None
        p.fwd_timer = None
        p.hold_timer = None

    def enable_port(self, p):
        self.initialize_port(p)
        self.port_state_selection()
        if self.designated_port(p):
            self.transmit_config(p)   # announce ourselves at once (Linux does too)

    def disable_port(self, p):
        was_root = self.root_bridge()
        stopped = p.state in (FORWARDING, LEARNING) and not p.oper_edge
        self.become_designated_port(p)
        self._set_state(p, DISABLED)
        p.topology_change_ack = False
        p.config_pending = False
        p.age = None
        p.fwd_timer = None
        p.hold_timer = None
        self.br._flush(p.port)
        self.configuration_update()
        self.port_state_selection()
        if stopped:
            # a forwarding link went away: the others must relearn (Linux only
            # flushes the port; OVS and 802.1D-2004 treat it as a change)
            self.topology_change_detection(f"port {p.port.no} went down")
        self._became_root_check(was_root)

    # ------------------------------------------------------------------ views
    def _note_tc_flag(self):
        if self.topology_change != self._tc_seen:
            self._tc_seen = self.topology_change
            if self.topology_change and not self.topology_change_detected:
                self._count_tc("topology change flag received from the root")
            self.br._set_ageing(self.forward_delay if self.topology_change else None,
                                flush=self.topology_change)

    def role_of(self, p):
        if p.state == DISABLED:
            return DISABLED
        if p is self.root_port:
            return ROOT
        if self.designated_port(p):
            return DESIGNATED
        return BACKUP if p.designated_bridge == self.bridge_id else ALTERNATE

    def port_view(self, port):
        p = port.sm
        return p.state, self.role_of(p)

    def root_view(self):
        return dict(root_id=self.designated_root, root_path_cost=self.root_path_cost,
                    root_port=self.root_port.port.no if self.root_port else None,
                    max_age=self.max_age, hello_time=self.hello_time,
                    forward_delay=self.forward_delay, topology_change=self.topology_change,
                    topology_change_count=self.tc_count, last_topology_change=self.last_tc)

    def port_detail(self, port):
        p = port.sm
        return dict(designated_root=p.designated_root, designated_cost=p.designated_cost,
                    designated_bridge=p.designated_bridge, designated_port=p.designated_port,
                    edge=p.oper_edge, protocol="stp", root_inconsistent=p.root_inconsistent,
                    message_age=p.age)
