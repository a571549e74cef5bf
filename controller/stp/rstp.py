"""IEEE 802.1D-2004 clause 17 (RSTP, 802.1w) protocol engine, I/O-free.

Who calls this: controller/stp/logic.py's Bridge (mode='rstp') owns one
`RstpEngine` and calls it; nothing else should.  The engine reads the
Bridge's configuration (bridge id, timers, ports) and writes results into
the Bridge's current `Actions` (frames to send, flushes, events).

Shape: the standard's state machines, one method each, over per-port
variables kept in `RstpPort` (names follow the standard, in snake_case):
  PRS port role selection (per bridge)   PRX port receive
  PPM port protocol migration            BDM bridge detection (edge)
  PIM port information                   PRT port role transitions
  PST port state transition              TCM topology change
  PTX port transmit
`run()` steps every machine until none moves (the transmit machine only
once the others are quiet, so one instant sends one consistent BPDU).
Timers hold seconds remaining as floats; `advance(dt)` counts them down and
`next_expiry()` says when the next one reaches zero, so the Bridge can warp
time straight to the next event.  txCount drains by one per elapsed second.

Deliberate refinements over the 2004 text (taken from 802.1Q-2005/2011):
agree/agreed kept only when the new information is better or the same
(betterorsameInfo), allSynced ignores the root port, NOTIFIED_TCN proceeds
to NOTIFIED_TC (so a legacy TCN is acknowledged and propagated), ALTERNATE
uses forwardDelay throughout, the transmitted Hello Time is the bridge's,
and `restricted_role` (root guard) keeps a port from becoming root port.
Received TCN BPDUs set rcvdTcn through setTcFlags (the 2004 rcvInfo has no
case for them).  A TCN is only sent while tcWhile runs.
"""
from __future__ import annotations

from . import bpdu as B
from .common import (ALTERNATE, BACKUP, DESIGNATED, DISABLED, DISCARDING, FORWARDING,
                     LEARNING, ROOT)

MAC_MASK = (1 << 48) - 1
PORTNUM_MASK = 0xFFF
EPS = 1e-9

# infoIs
I_DISABLED, I_AGED, I_MINE, I_RECEIVED = "Disabled", "Aged", "Mine", "Received"
# rcvdInfo
SUPERIOR_DESIGNATED, REPEATED_DESIGNATED, INFERIOR_DESIGNATED, INFERIOR_ROOT_ALTERNATE, OTHER = (
    "SuperiorDesignatedInfo", "RepeatedDesignatedInfo", "InferiorDesignatedInfo",
    "InferiorRootAlternateInfo", "OtherInfo")

_TIMERS = ("edge_delay_while", "fd_while", "hello_when", "mdelay_while", "rb_while",
           "rcvd_info_while", "rr_while", "tc_while")


class Times(tuple):
    """(message_age, max_age, hello_time, forward_delay), seconds."""
    __slots__ = ()

    def __new__(cls, message_age, max_age, hello_time, forward_delay):
        return tuple.__new__(cls, (message_age, max_age, hello_time, forward_delay))

    message_age = property(lambda s: s[0])
    max_age = property(lambda s: s[1])
    hello_time = property(lambda s: s[2])
    forward_delay = property(lambda s: s[3])


def superior(msg, port) -> bool:
    """17.6: msg (4-tuple priority vector) is superior to port: better, or
    sent by the same designated bridge (address) and port (number)."""
    return msg < port or ((msg[2] & MAC_MASK) == (port[2] & MAC_MASK)
                          and (msg[3] & PORTNUM_MASK) == (port[3] & PORTNUM_MASK))


class RstpPort:
    """Per-port RSTP variables and machine states."""

    def __init__(self, port, engine):
        self.port = port
        # machine states (set by begin())
        self.prx = self.ppm = self.bdm = self.ptx = self.pim = self.prt = self.pst = self.tcm = ""
        for t in _TIMERS:
            setattr(self, t, 0.0)
        bt = engine.bridge_times()
        self.agree = self.agreed = self.disputed = self.fdb_flush = False
        self.fdb_dirty = False
        self.forward = self.forwarding = self.learn = self.learning = False
        self.info_is = I_DISABLED
        self.mcheck = self.new_info = self.oper_edge = self.port_enabled = False
        self.proposed = self.proposing = False
        self.rcvd_bpdu = self.rcvd_msg = self.rcvd_rstp = self.rcvd_stp = False
        self.rcvd_tc = self.rcvd_tc_ack = self.rcvd_tcn = False
        self.rcvd_info = OTHER
        self.re_root = self.reselect = self.selected = False
        self.role = self.selected_role = DISABLED
        self.send_rstp = True
        self.sync = self.synced = self.tc_ack = self.tc_prop = False
        self.tx_count = 0
        self.updt_info = False
        own = (engine.br.bridge_id, 0, engine.br.bridge_id, port.port_id)
        self.designated_priority = own
        self.port_priority = own
        self.msg_priority = own
        self.designated_times = bt
        self.port_times = bt
        self.msg_times = bt
        self.rx = None                 # the Bpdu being received
        self.peer_tc = self.tc_rising = False
        self.root_inconsistent = False

    # timer-derived values (17.20)
    @property
    def hello_time(self):
        return self.designated_times.hello_time

    @property
    def fwd_delay(self):
        return self.designated_times.forward_delay

    @property
    def max_age(self):
        return self.designated_times.max_age


class RstpEngine:
    def __init__(self, bridge):
        self.br = bridge
        self.prs = "INIT_BRIDGE"
        self.root_priority = self.bridge_priority()
        self.root_port_id = 0
        self.root_times = self.bridge_times()
        self.sec_acc = 0.0
        self.tc_count = 0
        self.last_tc = None
        self._root_seen = (self.root_priority[0], None)

    # ---------------------------------------------------------------- bridge values
    def bridge_times(self) -> Times:
        br = self.br
        return Times(0.0, br.max_age, br.hello_time, br.forward_delay)

    def bridge_priority(self):
        b = self.br.bridge_id
        return (b, 0, b, 0, 0)

    def rp(self, port) -> RstpPort:
        return port.sm

    def ports(self):
        return [p.sm for p in self.br.ports.values()]

    @property
    def migrate_time(self):
        return self.br.migrate_time

    # ---------------------------------------------------------------- management hooks
    def add_port(self, port):
        port.sm = RstpPort(port, self)
        self._begin_port(port.sm)

    def remove_port(self, port):
        self.reconfigure()

    def set_enabled(self, port, enabled: bool):
        port.sm.port_enabled = enabled

    def reconfigure(self, port=None):
        """Bridge or port parameters changed (17.13): reselect."""
        if port is None:
            for q in self.ports():
                q.reselect = True
                q.selected = False
        else:
            port.sm.reselect = True
            port.sm.selected = False

    def set_admin_edge(self, port, edge: bool):
        p = port.sm
        if edge and p.bdm != "EDGE":
            self._bdm_enter(p, "EDGE")
            self.br._event(f"port {port.no}: now an edge port (configured)")
        elif not edge and p.bdm == "EDGE" and p.port_enabled:
            self._bdm_enter(p, "NOT_EDGE")

    def mcheck(self, port):
        port.sm.mcheck = True

    def rx(self, port, bpdu):
        p = port.sm
        if bpdu.is_rst and bpdu.role == B.ROLE_UNKNOWN:
            # 9.2.9: an RST BPDU with an unknown role is read as a Configuration BPDU
            bpdu = B.Bpdu.config(flags=bpdu.flags & (B.FLAG_TC | B.FLAG_TCA), root_id=bpdu.root_id,
                                 root_path_cost=bpdu.root_path_cost, bridge_id=bpdu.bridge_id,
                                 port_id=bpdu.port_id, message_age=bpdu.message_age,
                                 max_age=bpdu.max_age, hello_time=bpdu.hello_time,
                                 forward_delay=bpdu.forward_delay)
        if p.rcvd_bpdu or p.rcvd_msg:
            # the previous one is still being digested (cannot happen when run()
            # completes between calls; keep the standard's one-deep buffer)
            return False
        p.rx = bpdu
        p.rcvd_bpdu = True
        if not bpdu.is_tcn:
            # for counting: a change is new when the peer's TC flag rises
            p.tc_rising = bpdu.tc and not p.peer_tc
            p.peer_tc = bpdu.tc
        return True

    # ---------------------------------------------------------------- time
    def advance(self, dt: float):
        if dt <= 0:
            return
        for p in self.ports():
            for t in _TIMERS:
                v = getattr(p, t)
                if v:
                    v -= dt
                    setattr(p, t, v if v > EPS else 0.0)
        self.sec_acc += dt
        while self.sec_acc >= 1.0 - EPS:
            self.sec_acc -= 1.0
            for p in self.ports():
                if p.tx_count:
                    p.tx_count -= 1
        if self.sec_acc < 0:
            self.sec_acc = 0.0

    def next_expiry(self):
        best = None
        held = False
        for p in self.ports():
            for t in _TIMERS:
                v = getattr(p, t)
                if v and (best is None or v < best):
                    best = v
            held = held or p.tx_count > 0
        if held:
            s = max(1.0 - self.sec_acc, EPS)
            best = s if best is None or s < best else best
        return best

    # ---------------------------------------------------------------- begin
    def _begin_port(self, p: RstpPort):
        self._prx_enter(p, "DISCARD")
        self._ppm_enter(p, "CHECKING_RSTP")
        self._bdm_enter(p, "EDGE" if p.port.admin_edge else "NOT_EDGE")
        self._ptx_enter(p, "TRANSMIT_INIT")
        self._pim_enter(p, "DISABLED")
        self._prt_enter(p, "INIT_PORT")
        self._pst_enter(p, "DISCARDING")
        self._tcm_enter(p, "INACTIVE")

    # ---------------------------------------------------------------- run
    def run(self, limit: int = 10000):
        for _ in range(limit):
            moved = False
            for _ in range(limit):
                inner = self._prs()
                for p in self.ports():
                    inner |= self._prx(p)
                    inner |= self._ppm(p)
                    inner |= self._bdm(p)
                    inner |= self._pim(p)
                    inner |= self._prt(p)
                    inner |= self._pst(p)
                    inner |= self._tcm(p)
                if not inner:
                    break
                moved = True
            else:
                raise RuntimeError("RSTP machines do not settle")
            for p in self.ports():
                moved |= self._ptx(p)
            if not moved:
                return
        raise RuntimeError("RSTP machines do not settle")

    # ================================================================ PRS 17.28
    def _prs(self) -> bool:
        if self.prs == "INIT_BRIDGE":
            for p in self.ports():
                p.selected_role = DISABLED
            self._prs_role_selection()
            return True
        if any(p.reselect for p in self.ports()):
            self._prs_role_selection()
            return True
        return False

    def _prs_role_selection(self):
        self.prs = "ROLE_SELECTION"
        for p in self.ports():
            p.reselect = False
        self._updt_roles_tree()
        if not any(p.reselect for p in self.ports()):
            for p in self.ports():
                p.selected = True

    def _updt_roles_tree(self):
        """17.21.25 updtRolesTree()."""
        br = self.br
        own_mac = br.bridge_id & MAC_MASK
        best = self.bridge_priority()
        best_port = None
        guarded = []
        for p in self.ports():
            if p.info_is != I_RECEIVED:
                continue
            if (p.port_priority[2] & MAC_MASK) == own_mac:
                continue            # our own information looped back (backup port)
            pp = p.port_priority
            cand = (pp[0], pp[1] + p.port.cost, pp[2], pp[3], p.port.port_id)
            if p.port.root_guard:
                guarded.append((p, cand))
                continue
            if cand < best:
                best, best_port = cand, p
        self.root_priority = best
        self.root_port_id = best[4]
        if best_port is not None:
            pt = best_port.port_times
            self.root_times = Times(float(round(pt.message_age + 1.0)), pt.max_age, pt.hello_time,
                                    pt.forward_delay)
        else:
            self.root_times = self.bridge_times()
        for p, cand in guarded:
            bad = cand < best
            if bad != p.root_inconsistent:
                p.root_inconsistent = bad
                br._event(f"port {p.port.no}: root guard: superior BPDU from "
                          f"{B.bridge_id_str(p.port_priority[2])}, port blocked (root-inconsistent)"
                          if bad else f"port {p.port.no}: root guard: superior BPDUs gone, port released")
        for p in self.ports():
            if not p.port.root_guard or p.info_is != I_RECEIVED:
                if p.root_inconsistent:
                    p.root_inconsistent = False
                    br._event(f"port {p.port.no}: root guard: port released")
        bt = self.bridge_times()
        dt = Times(self.root_times.message_age, self.root_times.max_age, bt.hello_time,
                   self.root_times.forward_delay)
        for p in self.ports():
            p.designated_priority = (best[0], best[1], br.bridge_id, p.port.port_id)
            p.designated_times = dt
        for p in self.ports():
            if p.info_is == I_DISABLED:
                p.selected_role = DISABLED
            elif p.info_is == I_AGED:
                p.selected_role = DESIGNATED
                p.updt_info = True
            elif p.info_is == I_MINE:
                p.selected_role = DESIGNATED
                if p.port_priority != p.designated_priority or p.port_times != p.designated_times:
                    p.updt_info = True
            else:  # Received
                if p is best_port:
                    p.selected_role = ROOT
                    p.updt_info = False
                elif not (p.designated_priority < p.port_priority):
                    own = (p.port_priority[2] & MAC_MASK) == own_mac
                    p.selected_role = BACKUP if own else ALTERNATE
                    p.updt_info = False
                else:
                    p.selected_role = DESIGNATED
                    p.updt_info = True
        root_now = (best[0], best_port.port.no if best_port else None)
        if root_now != self._root_seen:
            old = self._root_seen
            self._root_seen = root_now
            if root_now[0] != old[0]:
                if best_port is None:
                    br._event(f"root: this bridge {B.bridge_id_str(br.bridge_id)} is now root")
                else:
                    br._event(f"root: {B.bridge_id_str(best[0])} via port {best_port.port.no} "
                              f"(cost {best[1]})")
            elif best_port is not None:
                br._event(f"root port: now port {best_port.port.no} (cost {best[1]})")

    # ================================================================ PRX 17.23
    def _prx_enter(self, p, s):
        p.prx = s
        if s == "DISCARD":
            p.rcvd_bpdu = p.rcvd_rstp = p.rcvd_stp = False
            p.rcvd_msg = False
            p.edge_delay_while = self.migrate_time
        else:  # RECEIVE
            self._updt_bpdu_version(p)
            if p.oper_edge:
                self.br._event(f"port {p.port.no}: BPDU received, no longer an edge port")
            p.oper_edge = p.rcvd_bpdu = False
            p.rcvd_msg = True
            p.edge_delay_while = self.migrate_time

    def _prx(self, p) -> bool:
        if (p.rcvd_bpdu or p.edge_delay_while != self.migrate_time) and not p.port_enabled:
            self._prx_enter(p, "DISCARD")
            return True
        if p.prx == "DISCARD":
            if p.rcvd_bpdu and p.port_enabled:
                self._prx_enter(p, "RECEIVE")
                return True
        elif p.rcvd_bpdu and p.port_enabled and not p.rcvd_msg:
            self._prx_enter(p, "RECEIVE")
            return True
        return False

    def _updt_bpdu_version(self, p):
        if p.rx.is_rst:
            p.rcvd_rstp = True
        else:
            p.rcvd_stp = True

    # ================================================================ PPM 17.24
    def _ppm_enter(self, p, s):
        p.ppm = s
        if s == "CHECKING_RSTP":
            p.mcheck = False
            was = p.send_rstp
            p.send_rstp = True            # rstpVersion (mode 'rstp')
            p.mdelay_while = self.migrate_time
            if not was:
                self.br._event(f"port {p.port.no}: trying RSTP BPDUs again (migration check)")
        elif s == "SELECTING_STP":
            p.send_rstp = False
            p.mdelay_while = self.migrate_time
            self.br._event(f"port {p.port.no}: legacy 802.1D bridge detected, sending 802.1D BPDUs")
        else:  # SENSING
            p.rcvd_rstp = p.rcvd_stp = False

    def _ppm(self, p) -> bool:
        s = p.ppm
        if s == "CHECKING_RSTP":
            if p.mdelay_while != self.migrate_time and not p.port_enabled:
                self._ppm_enter(p, "CHECKING_RSTP")
                return True
            if p.mdelay_while == 0:
                self._ppm_enter(p, "SENSING")
                return True
        elif s == "SELECTING_STP":
            if p.mdelay_while == 0 or not p.port_enabled or p.mcheck:
                self._ppm_enter(p, "SENSING")
                return True
        else:  # SENSING
            if not p.port_enabled or p.mcheck or (not p.send_rstp and p.rcvd_rstp):
                self._ppm_enter(p, "CHECKING_RSTP")
                return True
            if p.send_rstp and p.rcvd_stp:
                self._ppm_enter(p, "SELECTING_STP")
                return True
        return False

    # ================================================================ BDM 17.25
    def _bdm_enter(self, p, s):
        p.bdm = s
        if s == "EDGE":
            if not p.oper_edge and p.port_enabled:
                self.br._event(f"port {p.port.no}: no BPDU heard, now an edge port")
            p.oper_edge = True
        else:
            p.oper_edge = False

    def _bdm(self, p) -> bool:
        adm = p.port.admin_edge
        if p.bdm == "EDGE":
            if (not p.port_enabled and not adm) or not p.oper_edge:
                self._bdm_enter(p, "NOT_EDGE")
                return True
        else:
            if (not p.port_enabled and adm) or (
                    p.edge_delay_while == 0 and p.port.auto_edge and p.send_rstp and p.proposing):
                self._bdm_enter(p, "EDGE")
                return True
        return False

    # ================================================================ PTX 17.26
    def _ptx_enter(self, p, s):
        p.ptx = s
        if s == "TRANSMIT_INIT":
            p.new_info = True
            p.tx_count = 0
            s = "IDLE"
            p.ptx = s
        if s == "TRANSMIT_PERIODIC":
            p.new_info = p.new_info or p.role == DESIGNATED or (p.role == ROOT and p.tc_while != 0)
        elif s == "TRANSMIT_CONFIG":
            p.new_info = False
            self._tx_config(p)
            p.tx_count += 1
            p.tc_ack = False
        elif s == "TRANSMIT_TCN":
            p.new_info = False
            self._tx_tcn(p)
            p.tx_count += 1
        elif s == "TRANSMIT_RSTP":
            p.new_info = False
            self._tx_rstp(p)
            p.tx_count += 1
            p.tc_ack = False
        if s != "IDLE":
            s = "IDLE"               # every transmit state goes back to IDLE (UCT)
            p.ptx = s
        p.hello_when = p.hello_time

    def _ptx(self, p) -> bool:
        if not (p.selected and not p.updt_info and p.port_enabled and p.role != DISABLED):
            return False
        hold = self.br.tx_hold_count
        if p.hello_when == 0:
            self._ptx_enter(p, "TRANSMIT_PERIODIC")
            # the periodic step only raises newInfo; transmit in the same instant
            self._ptx_send(p, hold)
            return True
        return self._ptx_send(p, hold)

    def _ptx_send(self, p, hold) -> bool:
        if not p.new_info or p.tx_count >= hold:
            return False
        if p.send_rstp:
            self._ptx_enter(p, "TRANSMIT_RSTP")
            return True
        if p.role == ROOT and p.tc_while != 0:
            self._ptx_enter(p, "TRANSMIT_TCN")
            return True
        if p.role == DESIGNATED:
            self._ptx_enter(p, "TRANSMIT_CONFIG")
            return True
        return False

    def _fields(self, p):
        pr, t = p.designated_priority, p.designated_times
        return dict(root_id=pr[0], root_path_cost=pr[1], bridge_id=pr[2], port_id=pr[3],
                    message_age=t.message_age, max_age=t.max_age, hello_time=t.hello_time,
                    forward_delay=t.forward_delay)

    def _tx_config(self, p):
        flags = (B.FLAG_TC if p.tc_while != 0 else 0) | (B.FLAG_TCA if p.tc_ack else 0)
        self.br._send(p.port, B.Bpdu.config(flags=flags, **self._fields(p)))

    def _tx_tcn(self, p):
        self.br._send(p.port, B.Bpdu.tcn())

    def _tx_rstp(self, p):
        role = {ROOT: B.ROLE_ROOT, DESIGNATED: B.ROLE_DESIGNATED, ALTERNATE: B.ROLE_ALT_BACKUP,
                BACKUP: B.ROLE_ALT_BACKUP}.get(p.role, B.ROLE_UNKNOWN)
        flags = ((B.FLAG_AGREEMENT if p.agree else 0) | (B.FLAG_PROPOSAL if p.proposing else 0)
                 | (B.FLAG_TC if p.tc_while != 0 else 0) | (B.FLAG_LEARNING if p.learning else 0)
                 | (B.FLAG_FORWARDING if p.forwarding else 0))
        self.br._send(p.port, B.Bpdu.rst(role=role, flags=flags, **self._fields(p)))

    # ================================================================ PIM 17.27
    def _better_or_same(self, p, new_is) -> bool:
        if new_is == I_RECEIVED:
            return p.info_is == I_RECEIVED and p.msg_priority <= p.port_priority
        return p.info_is == I_MINE and p.designated_priority <= p.port_priority

    def _pim_enter(self, p, s):
        p.pim = s
        if s == "DISABLED":
            p.rcvd_msg = False
            p.proposing = p.proposed = p.agree = p.agreed = False
            p.rcvd_info_while = 0.0
            p.info_is = I_DISABLED
            p.reselect = True
            p.selected = False
        elif s == "AGED":
            p.info_is = I_AGED
            p.reselect = True
            p.selected = False
        elif s == "UPDATE":
            p.proposing = p.proposed = False
            p.agreed = p.agreed and self._better_or_same(p, I_MINE)
            p.synced = p.synced and p.agreed
            p.port_priority = p.designated_priority
            p.port_times = p.designated_times
            p.updt_info = False
            p.info_is = I_MINE
            p.new_info = True
            p.pim = "CURRENT"
        elif s == "RECEIVE":
            p.rcvd_info = self._rcv_info(p)
            nxt = {SUPERIOR_DESIGNATED: "SUPERIOR_DESIGNATED",
                   REPEATED_DESIGNATED: "REPEATED_DESIGNATED",
                   INFERIOR_DESIGNATED: "INFERIOR_DESIGNATED",
                   INFERIOR_ROOT_ALTERNATE: "NOT_DESIGNATED", OTHER: "OTHER"}[p.rcvd_info]
            self._pim_enter(p, nxt)
        elif s == "SUPERIOR_DESIGNATED":
            p.agreed = p.proposing = False
            self._record_proposal(p)
            self._set_tc_flags(p)
            p.agree = p.agree and self._better_or_same(p, I_RECEIVED)
            p.port_priority = p.msg_priority                      # recordPriority
            mt = p.msg_times                                       # recordTimes
            p.port_times = Times(mt.message_age, mt.max_age, max(mt.hello_time, 1.0),
                                 mt.forward_delay)
            self._updt_rcvd_info_while(p)
            p.info_is = I_RECEIVED
            p.reselect = True
            p.selected = False
            p.rcvd_msg = False
            p.pim = "CURRENT"
        elif s == "REPEATED_DESIGNATED":
            self._record_proposal(p)
            self._set_tc_flags(p)
            self._updt_rcvd_info_while(p)
            p.rcvd_msg = False
            p.pim = "CURRENT"
        elif s == "INFERIOR_DESIGNATED":
            if p.rx.is_rst and p.rx.learning:                      # recordDispute
                p.disputed = True
                p.agreed = False
            p.rcvd_msg = False
            p.pim = "CURRENT"
        elif s == "NOT_DESIGNATED":
            if p.rx.is_rst and p.rx.agreement and p.port.p2p:      # recordAgreement
                p.agreed = True
                p.proposing = False
            else:
                p.agreed = False
            self._set_tc_flags(p)
            p.rcvd_msg = False
            p.pim = "CURRENT"
        elif s == "OTHER":
            if p.rx is not None and p.rx.is_tcn:
                self._set_tc_flags(p)
            p.rcvd_msg = False
            p.pim = "CURRENT"

    def _pim(self, p) -> bool:
        if not p.port_enabled and p.info_is != I_DISABLED:
            self._pim_enter(p, "DISABLED")
            return True
        s = p.pim
        if s == "DISABLED":
            if p.port_enabled:
                self._pim_enter(p, "AGED")
                return True
            if p.rcvd_msg:
                self._pim_enter(p, "DISABLED")
                return True
        elif s == "AGED":
            if p.selected and p.updt_info:
                self._pim_enter(p, "UPDATE")
                return True
        else:  # CURRENT
            if p.selected and p.updt_info:
                self._pim_enter(p, "UPDATE")
                return True
            if p.info_is == I_RECEIVED and p.rcvd_info_while == 0 and not p.updt_info \
                    and not p.rcvd_msg:
                self.br._event(f"port {p.port.no}: information from "
                               f"{B.bridge_id_str(p.port_priority[2])} aged out")
                self._pim_enter(p, "AGED")
                return True
            if p.rcvd_msg and not p.updt_info:
                self._pim_enter(p, "RECEIVE")
                return True
        return False

    def _rcv_info(self, p) -> str:
        """17.21.8 rcvInfo()."""
        b = p.rx
        if b.is_tcn:
            return OTHER
        p.msg_priority = (b.root_id, b.root_path_cost, b.bridge_id, b.port_id)
        p.msg_times = Times(b.message_age, b.max_age, b.hello_time, b.forward_delay)
        role = b.role
        same = p.msg_priority == p.port_priority
        if role == B.ROLE_DESIGNATED:
            if (not same and superior(p.msg_priority, p.port_priority)) or (
                    same and p.msg_times != p.port_times):
                return SUPERIOR_DESIGNATED
            if same:
                return REPEATED_DESIGNATED
            return INFERIOR_DESIGNATED
        if role in (B.ROLE_ROOT, B.ROLE_ALT_BACKUP) and (same or p.port_priority < p.msg_priority):
            return INFERIOR_ROOT_ALTERNATE
        return OTHER

    def _record_proposal(self, p):
        if p.rx.role == B.ROLE_DESIGNATED and p.rx.proposal:
            p.proposed = True

    def _set_tc_flags(self, p):
        b = p.rx
        if b.is_tcn:
            p.rcvd_tcn = True
        else:
            if b.tc:
                p.rcvd_tc = True
            if b.tca:
                p.rcvd_tc_ack = True

    def _updt_rcvd_info_while(self, p):
        t = p.port_times
        if round(t.message_age + 1.0) <= t.max_age:
            p.rcvd_info_while = 3.0 * t.hello_time
        else:
            p.rcvd_info_while = 0.0

    # ================================================================ PRT 17.29
    def _forward_delay(self, p):
        return p.hello_time if p.send_rstp else p.fwd_delay

    def _edge_delay(self, p):
        return self.migrate_time if p.port.p2p else p.max_age

    def _re_rooted(self, p) -> bool:
        return all(q.rr_while == 0 for q in self.ports() if q is not p)

    def _all_synced(self) -> bool:
        return all(q.selected and q.role == q.selected_role and not q.updt_info
                   and (q.role == ROOT or q.synced) for q in self.ports())

    def _set_role(self, p, role):
        if p.role != role:
            p.role = role

    def _prt_enter(self, p, s):
        p.prt = s
        if s == "INIT_PORT":
            self._set_role(p, DISABLED)
            p.learn = p.forward = False
            p.synced = False
            p.sync = p.re_root = True
            p.rr_while = p.fwd_delay
            p.fd_while = p.max_age
            p.rb_while = 0.0
            s = "DISABLE_PORT"
            p.prt = s
        if s == "DISABLE_PORT":
            self._set_role(p, p.selected_role)
            p.learn = p.forward = False
        elif s == "DISABLED_PORT":
            p.fd_while = p.max_age
            p.synced = True
            p.rr_while = 0.0
            p.sync = p.re_root = False
        elif s == "ROOT_PORT":
            self._set_role(p, ROOT)
            p.rr_while = p.fwd_delay
        elif s == "ROOT_PROPOSED":
            self._set_sync_tree()
            p.proposed = False
            self._prt_enter(p, "ROOT_PORT")
        elif s == "ROOT_AGREED":
            p.proposed = p.sync = False
            p.agree = True
            p.new_info = True
            self._prt_enter(p, "ROOT_PORT")
        elif s == "REROOT":
            for q in self.ports():
                q.re_root = True
            self._prt_enter(p, "ROOT_PORT")
        elif s == "ROOT_FORWARD":
            p.fd_while = 0.0
            p.forward = True
            self._prt_enter(p, "ROOT_PORT")
        elif s == "ROOT_LEARN":
            p.fd_while = self._forward_delay(p)
            p.learn = True
            self._prt_enter(p, "ROOT_PORT")
        elif s == "REROOTED":
            p.re_root = False
            self._prt_enter(p, "ROOT_PORT")
        elif s == "DESIGNATED_PORT":
            self._set_role(p, DESIGNATED)
        elif s == "DESIGNATED_PROPOSE":
            p.proposing = True
            p.edge_delay_while = self._edge_delay(p)
            p.new_info = True
            self._prt_enter(p, "DESIGNATED_PORT")
        elif s == "DESIGNATED_SYNCED":
            p.rr_while = 0.0
            p.synced = True
            p.sync = False
            self._prt_enter(p, "DESIGNATED_PORT")
        elif s == "DESIGNATED_RETIRED":
            p.re_root = False
            self._prt_enter(p, "DESIGNATED_PORT")
        elif s == "DESIGNATED_DISCARD":
            p.learn = p.forward = p.disputed = False
            p.fd_while = self._forward_delay(p)
            self._prt_enter(p, "DESIGNATED_PORT")
        elif s == "DESIGNATED_LEARN":
            p.learn = True
            p.fd_while = self._forward_delay(p)
            self._prt_enter(p, "DESIGNATED_PORT")
        elif s == "DESIGNATED_FORWARD":
            p.forward = True
            p.fd_while = 0.0
            p.agreed = p.send_rstp
            self._prt_enter(p, "DESIGNATED_PORT")
        elif s == "ALTERNATE_PORT":
            p.fd_while = self._forward_delay(p)
            p.synced = True
            p.rr_while = 0.0
            p.sync = p.re_root = False
        elif s == "ALTERNATE_PROPOSED":
            self._set_sync_tree()
            p.proposed = False
            self._prt_enter(p, "ALTERNATE_PORT")
        elif s == "ALTERNATE_AGREED":
            p.proposed = False
            p.agree = True
            p.new_info = True
            self._prt_enter(p, "ALTERNATE_PORT")
        elif s == "BLOCK_PORT":
            self._set_role(p, p.selected_role)
            p.learn = p.forward = False
        elif s == "BACKUP_PORT":
            p.rb_while = 2.0 * p.hello_time
            self._prt_enter(p, "ALTERNATE_PORT")

    def _set_sync_tree(self):
        for q in self.ports():
            q.sync = True

    def _prt(self, p) -> bool:
        ok = p.selected and not p.updt_info
        if not ok:
            return False
        s = p.prt
        # global transitions on a new selected role
        if p.selected_role != p.role:
            target = {DISABLED: "DISABLE_PORT", ROOT: "ROOT_PORT", DESIGNATED: "DESIGNATED_PORT",
                      ALTERNATE: "BLOCK_PORT", BACKUP: "BLOCK_PORT"}[p.selected_role]
            self._prt_enter(p, target)
            return True
        if s == "DISABLE_PORT":
            if not p.learning and not p.forwarding:
                self._prt_enter(p, "DISABLED_PORT")
                return True
        elif s == "DISABLED_PORT":
            if p.fd_while != p.max_age or p.sync or p.re_root or not p.synced:
                self._prt_enter(p, "DISABLED_PORT")
                return True
        elif s == "ROOT_PORT":
            rerooted_ok = p.fd_while == 0 or (self._re_rooted(p) and p.rb_while == 0)
            if p.proposed and not p.agree:
                self._prt_enter(p, "ROOT_PROPOSED")
            elif (self._all_synced() and not p.agree) or (p.proposed and p.agree):
                self._prt_enter(p, "ROOT_AGREED")
            elif not p.forward and not p.re_root:
                self._prt_enter(p, "REROOT")
            elif p.rr_while != p.fwd_delay:
                self._prt_enter(p, "ROOT_PORT")
            elif p.re_root and p.forward:
                self._prt_enter(p, "REROOTED")
            elif rerooted_ok and not p.learn:
                self._prt_enter(p, "ROOT_LEARN")
            elif rerooted_ok and p.learn and not p.forward:
                self._prt_enter(p, "ROOT_FORWARD")
            else:
                return False
            return True
        elif s == "DESIGNATED_PORT":
            go = (p.fd_while == 0 or p.agreed or p.oper_edge) and (p.rr_while == 0 or not p.re_root) \
                and not p.sync
            if ((p.sync and not p.synced) or (p.re_root and p.rr_while != 0) or p.disputed) \
                    and not p.oper_edge and (p.learn or p.forward):
                self._prt_enter(p, "DESIGNATED_DISCARD")
            elif go and not p.learn:
                self._prt_enter(p, "DESIGNATED_LEARN")
            elif go and p.learn and not p.forward:
                self._prt_enter(p, "DESIGNATED_FORWARD")
            elif not p.forward and not p.agreed and not p.proposing and not p.oper_edge:
                self._prt_enter(p, "DESIGNATED_PROPOSE")
            elif (not p.learning and not p.forwarding and not p.synced) or (p.agreed and not p.synced) \
                    or (p.oper_edge and not p.synced) or (p.sync and p.synced):
                self._prt_enter(p, "DESIGNATED_SYNCED")
            elif p.rr_while == 0 and p.re_root:
                self._prt_enter(p, "DESIGNATED_RETIRED")
            else:
                return False
            return True
        elif s == "ALTERNATE_PORT":
            if p.proposed and not p.agree:
                self._prt_enter(p, "ALTERNATE_PROPOSED")
            elif (self._all_synced() and not p.agree) or (p.proposed and p.agree):
                self._prt_enter(p, "ALTERNATE_AGREED")
            elif p.fd_while != self._forward_delay(p) or p.sync or p.re_root or not p.synced:
                self._prt_enter(p, "ALTERNATE_PORT")
            elif p.rb_while != 2.0 * p.hello_time and p.role == BACKUP:
                self._prt_enter(p, "BACKUP_PORT")
            else:
                return False
            return True
        elif s == "BLOCK_PORT":
            if not p.learning and not p.forwarding:
                self._prt_enter(p, "ALTERNATE_PORT")
                return True
        return False

    # ================================================================ PST 17.30
    def _pst_enter(self, p, s):
        p.pst = s
        if s == "DISCARDING":
            p.learning = False
            p.forwarding = False
        elif s == "LEARNING":
            p.learning = True
            p.fdb_dirty = True
        else:
            p.forwarding = True

    def _pst(self, p) -> bool:
        s = p.pst
        if s == "DISCARDING":
            if p.learn:
                self._pst_enter(p, "LEARNING")
                return True
        elif s == "LEARNING":
            if not p.learn:
                self._pst_enter(p, "DISCARDING")
                return True
            if p.forward:
                self._pst_enter(p, "FORWARDING")
                return True
        elif not p.forward:
            self._pst_enter(p, "DISCARDING")
            return True
        return False

    # ================================================================ TCM 17.31
    def _new_tc_while(self, p):
        if p.tc_while == 0:
            if p.send_rstp:
                p.tc_while = self.br.hello_time + 1.0
                p.new_info = True
            else:
                p.tc_while = self.root_times.max_age + self.root_times.forward_delay

    def _set_tc_prop_tree(self, p):
        for q in self.ports():
            if q is not p:
                q.tc_prop = True

    def _flush(self, p):
        # fdbFlush: the adapter flushes at once, so the flag drops straight
        # back; a port that has learned nothing since its last flush is not
        # reported (BEGIN, a port that never left discarding)
        if p.learning or p.fdb_dirty:
            self.br._flush(p.port)
        p.fdb_dirty = p.learning
        p.fdb_flush = False

    def _tcm_enter(self, p, s):
        p.tcm = s
        if s == "INACTIVE":
            self._flush(p)
            p.tc_while = 0.0
            p.tc_ack = False
        elif s == "LEARNING":
            p.rcvd_tc = p.rcvd_tcn = p.rcvd_tc_ack = p.tc_prop = False
        elif s == "DETECTED":
            self._count_tc(f"port {p.port.no}: topology change detected (port now forwarding)")
            self._new_tc_while(p)
            self._set_tc_prop_tree(p)
            p.new_info = True
            p.tcm = "ACTIVE"
        elif s == "ACKNOWLEDGED":
            p.tc_while = 0.0
            p.rcvd_tc_ack = False
            p.tcm = "ACTIVE"
        elif s == "PROPAGATING":
            self._new_tc_while(p)
            self._flush(p)
            p.tc_prop = False
            p.tcm = "ACTIVE"
        elif s == "NOTIFIED_TC":
            if p.rcvd_tc and not p.rcvd_tcn and p.tc_rising:
                p.tc_rising = False
                self._count_tc(f"port {p.port.no}: topology change flag received")
            p.rcvd_tcn = p.rcvd_tc = False
            if p.role == DESIGNATED:
                p.tc_ack = True
                if not p.send_rstp:
                    p.new_info = True   # answer a legacy TCN at once, as 802.1D does
            self._set_tc_prop_tree(p)
            p.tcm = "ACTIVE"
        elif s == "NOTIFIED_TCN":
            self._count_tc(f"port {p.port.no}: topology change notification received")
            self._new_tc_while(p)
            self._tcm_enter(p, "NOTIFIED_TC")

    def _count_tc(self, msg):
        """Count and log a topology change when it starts here (no tcWhile
        running yet), not for every TC-flagged BPDU of the same change."""
        if any(q.tc_while != 0 for q in self.ports()):
            return
        self.tc_count += 1
        self.last_tc = self.br.now
        self.br._event(msg)

    def _tcm(self, p) -> bool:
        s = p.tcm
        rd = p.role in (ROOT, DESIGNATED)
        if s == "INACTIVE":
            if p.learn and not p.fdb_flush:
                self._tcm_enter(p, "LEARNING")
                return True
        elif s == "LEARNING":
            if p.rcvd_tc or p.rcvd_tcn or p.rcvd_tc_ack or p.tc_prop:
                self._tcm_enter(p, "LEARNING")
                return True
            if not rd and not (p.learn or p.learning):
                self._tcm_enter(p, "INACTIVE")
                return True
            if rd and p.forward and not p.oper_edge:
                self._tcm_enter(p, "DETECTED")
                return True
        else:  # ACTIVE
            if not rd or p.oper_edge:
                self._tcm_enter(p, "LEARNING")
                return True
            if p.rcvd_tcn:
                self._tcm_enter(p, "NOTIFIED_TCN")
                return True
            if p.rcvd_tc:
                self._tcm_enter(p, "NOTIFIED_TC")
                return True
            if p.tc_prop and not p.oper_edge:
                self._tcm_enter(p, "PROPAGATING")
                return True
            if p.rcvd_tc_ack:
                self._tcm_enter(p, "ACKNOWLEDGED")
                return True
        return False

    # ---------------------------------------------------------------- views
    def port_view(self, port):
        """(state, role) as the adapter sees them."""
        p = port.sm
        if not port.enabled:
            return DISABLED, DISABLED
        state = FORWARDING if p.forwarding else LEARNING if p.learning else DISCARDING
        role = p.role
        if role == DISABLED:
            state = DISABLED if not p.port_enabled else state
        return state, role

    def root_view(self):
        rp = None
        for p in self.ports():
            if p.role == ROOT:
                rp = p.port.no
        t = self.root_times
        return dict(root_id=self.root_priority[0], root_path_cost=self.root_priority[1],
                    root_port=rp, max_age=t.max_age, hello_time=self.br.hello_time,
                    forward_delay=t.forward_delay,
                    topology_change=any(p.tc_while != 0 for p in self.ports()),
                    topology_change_count=self.tc_count, last_topology_change=self.last_tc)

    def port_detail(self, port):
        p = port.sm
        pp = p.port_priority
        return dict(designated_root=pp[0], designated_cost=pp[1], designated_bridge=pp[2],
                    designated_port=pp[3], edge=p.oper_edge,
                    protocol="rstp" if p.send_rstp else "stp",
                    proposing=p.proposing, agreed=p.agreed,
                    root_inconsistent=p.root_inconsistent, info=p.info_is,
                    tc_while=p.tc_while)

    def ageing(self):
        return None
