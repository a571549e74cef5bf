"""IEEE 802.1AX LACP: the protocol machines of one bond, without I/O.

Who uses it: the bond code (datapath/bond.py, later) and the daemon, which
feed it received Slow Protocols frames, link changes and the clock, send
the frames it returns on the member ports, and give the fast path's bucket
table to the members it says are distributing.  `vdp ctl lacp/show` prints
status().  Tests drive it with warped time (tests/unit/test_lacp.py).

Nothing here sleeps, reads a clock or touches a socket: every entry point
takes `now` (seconds, float, monotonic; a `now` smaller than the last one
is treated as the last one) and returns the frames to send.

API (for the bond / daemon author)
----------------------------------
    b = Bond("bond0", system_mac, mode="active"|"passive"|"off",
             rate="fast"|"slow", system_priority=65534, key=1,
             fallback=False)
    b.add_member(member, port_id=None, port_priority=32768, mac=None, name=None)
        `member` is any hashable handle (the daemon uses the member's
        ofport or name).  Members start with their link DOWN: call link().
        port_id defaults to the lowest unused number >= 1; mac (the frames'
        source address) defaults to the system MAC.
    b.remove_member(member, now) -> [(member, frame)]
    b.link(member, up, now)      -> [(member, frame)]   carrier/admin change
    b.rx(member, frame, now)     -> [(member, frame)]   a whole Ethernet frame
        with ethertype 0x8809 (LACPDU or Marker PDU; anything else is
        counted as an error of its kind and dropped).  Marker Information
        is answered at once (the response is in the returned list).
    b.tick(now)                  -> [(member, frame)]   timers: call at
        next_deadline() or periodically (every 100 ms is plenty).
    b.next_deadline()            -> float | None  earliest time tick() has work
    b.send_marker(member, now)   -> (transaction_id, [(member, frame)])
    b.marker_answered(member, transaction_id) -> bool
    b.configure(now, mode=, rate=, system_priority=, system_mac=, key=,
                fallback=)       -> [(member, frame)]   runtime change
    b.set_member(member, now, port_priority=, port_id=) -> [(member, frame)]
    b.distributing_members()     -> [member, ...] in add order: the members
        the fast path may send on (bucket owners).
    b.collecting_members() / b.is_collecting(member): frames received on
        other members must be dropped (coupled control: collecting ==
        distributing).
    b.generation  int, +1 whenever the distributing set changes (so the
        bond can rebuild its bucket table only when needed).
    b.negotiated  True when some member has a real LACP partner selected.
    b.fallback_active  True when fallback active-backup is in use.
    b.events()    -> [str]  state-change log lines since the last call
        (also logged to the "vdp.lacp" logger at INFO).
    b.counters()  -> dict   bond totals (see COUNTERS and errors by kind).
    b.status()    -> dict   JSON-ready view for `vdp ctl lacp/show`.
Every frame returned is a complete Ethernet frame (dst 01:80:c2:00:00:02,
src = the member's mac, ethertype 0x8809, 110 octets of PDU).

Modes
-----
  active   LACP_Activity active: transmits periodically even with no partner.
  passive  transmits only once it hears an active partner; passive against
           passive never transmits, so never aggregates (802.1AX).
  off      no LACP at all: nothing sent, LACPDUs received are counted in
           rx_ignored; distributing_members() is every member whose link is
           up (a static aggregation; the bond mode decides how to use them,
           e.g. active-backup picks one).
  rate fast: our Actor LACP_Timeout is short: the partner sends every 1 s
           and we declare it gone 3 s after its last PDU.  slow: 30 s / 90 s.

Fallback (fallback=True, LACP modes only)
-----------------------------------------
When no member that is up has a real partner (none has heard a LACPDU
from another system since it was last DEFAULTED; a looped-back member
counts neither as a partner nor as a candidate), the bond falls back to
active-backup: distributing_members() is ONE member, the up member with
the best (port_priority, port_id), kept while its link stays up.
Fallback starts only once some member has actually timed out into
DEFAULTED (a link coming up sits 3 s in EXPIRED first), so a bond whose
partner answers promptly never flaps through fallback; once started it
lasts while nobody has a partner (a member whose link flaps does not end
it).  The LACP machines keep running and transmitting meanwhile; as soon
as any member hears a partner the fallback ends at once (that member then
needs the usual 2 s wait to aggregate).  With fallback=False (the default,
as in 802.1AX and OVS) a bond without a partner carries no traffic.

Selection: one aggregator per bond
----------------------------------
The bond has a single aggregator.  Members whose partner information is
current (CURRENT, or EXPIRED but not yet DEFAULTED) are grouped by LAG ID:
(partner system priority, partner system, partner key), or per-port when
the partner says the link is Individual.  The aggregator takes the group
with the most members; on a tie it keeps the group it already has, then
the lowest partner id.  Members of other groups stay UNSELECTED (mux
DETACHED, not distributing): a member cabled to another system, or whose
partner changed its key, leaves the aggregation.  A member whose partner
system is our own system MAC is looped back (cabled to this bond or
another bond of this switch): never selected, counted, logged.

The machines (802.1AX-2008 clause 5.4, names as in the standard)
----------------------------------------------------------------
Per member: Receive (INITIALIZE, PORT_DISABLED, EXPIRED, LACP_DISABLED,
DEFAULTED, CURRENT; current_while timer), Periodic Transmission
(NO_PERIODIC, FAST_PERIODIC, SLOW_PERIODIC, PERIODIC_TX), Mux with coupled
control (DETACHED, WAITING, ATTACHED, COLLECTING_DISTRIBUTING; wait_while =
Aggregate_Wait_Time 2 s), Transmit (NTT; at most 3 LACPDUs in any
Fast_Periodic_Time), actor and partner Churn Detection (60 s), and the
Selection Logic above.  Each entry point first runs the timers up to `now`,
applies its event, then re-evaluates all machines until nothing changes,
then transmits.
Defaults: Partner_Admin = system 00:00:00:00:00:00, key 0, port 0, state
Aggregation + LACP_Timeout short (so an active port with no partner probes
every second, and a passive partner appearing later is found within 1 s).
"""
from __future__ import annotations

import collections
import logging
from dataclasses import replace

from . import lacpdu as P
from .lacpdu import (ACTIVITY, AGGREGATION, COLLECTING, DEFAULTED, DISTRIBUTING, EXPIRED, SYNC,
                     TIMEOUT, PortInfo, mac_bytes, mac_str)

log = logging.getLogger("vdp.lacp")

# 802.1AX timer constants, seconds
FAST_PERIODIC_TIME = 1.0
SLOW_PERIODIC_TIME = 30.0
SHORT_TIMEOUT_TIME = 3.0
LONG_TIMEOUT_TIME = 90.0
CHURN_DETECTION_TIME = 60.0
AGGREGATE_WAIT_TIME = 2.0
TX_LIMIT = 3                     # LACPDUs per FAST_PERIODIC_TIME
MARKER_RESPONSE_LIMIT = 5        # marker responses per second per member (Slow Protocols allow 10 frames/s)
ERROR_LOG_INTERVAL = 1.0         # at most one event line per member and error kind per second

# Receive machine
RX_INITIALIZE, RX_PORT_DISABLED, RX_EXPIRED = "INITIALIZE", "PORT_DISABLED", "EXPIRED"
RX_LACP_DISABLED, RX_DEFAULTED, RX_CURRENT = "LACP_DISABLED", "DEFAULTED", "CURRENT"
# Periodic Transmission machine
NO_PERIODIC, FAST_PERIODIC, SLOW_PERIODIC, PERIODIC_TX = "NO_PERIODIC", "FAST_PERIODIC", "SLOW_PERIODIC", "PERIODIC_TX"
# Mux machine
DETACHED, WAITING, ATTACHED, COLLECTING_DISTRIBUTING = "DETACHED", "WAITING", "ATTACHED", "COLLECTING_DISTRIBUTING"
# Selected
UNSELECTED, SELECTED, STANDBY = "UNSELECTED", "SELECTED", "STANDBY"
# Churn Detection machines
CHURN_MONITOR, NO_CHURN, CHURN = "CHURN_MONITOR", "NO_CHURN", "CHURN"

MODES = ("active", "passive", "off")
RATES = ("fast", "slow")
COUNTERS = ("lacpdus_rx", "lacpdus_tx", "markers_rx", "marker_responses_tx", "markers_tx",
            "marker_responses_rx", "marker_responses_dropped", "rx_ignored", "loopback",
            "rx_errors")

ZERO_MAC = b"\x00" * 6
PARTNER_ADMIN = PortInfo(0, ZERO_MAC, 0, 0, 0, AGGREGATION | TIMEOUT)
_NTT_BITS = ACTIVITY | TIMEOUT | SYNC | AGGREGATION
_MAX_PASSES = 50


class LacpError(ValueError):
    """Bad configuration or an unknown member (a caller error, not a bad PDU)."""


class Member:
    """One member port's machine state (read it through Bond.status())."""

    def __init__(self, handle, name, port_id, port_priority, mac):
        self.handle, self.name = handle, name
        self.port_id, self.port_priority, self.mac = port_id, port_priority, mac
        self.port_enabled = False
        self.partner = PARTNER_ADMIN            # Partner_Oper_*
        # dynamic Actor_Oper_Port_State bits (the static ones come from the bond config)
        self.sync = self.collecting = self.distributing = False
        self.defaulted, self.expired = True, False
        self.selected = UNSELECTED
        self.lag = None                         # LAG ID it was selected for
        self.rx_state = self.mux = self.periodic = None
        self.actor_churn = self.partner_churn = CHURN_MONITOR
        self.current_while = self.periodic_timer = self.wait_while = None
        self.actor_churn_timer = self.partner_churn_timer = None
        self.ready_n = False
        self.ntt = False
        self.port_moved = False
        self.looped = False
        self.tx_times = collections.deque()
        self.marker_times = collections.deque()
        self.markers_pending = {}               # transaction id -> time sent
        self.markers_answered = set()
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.errors = dict.fromkeys(P.ERROR_KINDS, 0)
        self.err_logged = {}                    # kind -> last time logged


def _rate_ok(times, now, limit, window=1.0):
    while times and times[0] <= now - window:
        times.popleft()
    return len(times) < limit


class Bond:
    """The LACP machines of one bond (one aggregator) and its members."""

    def __init__(self, name, system_mac, *, mode="active", rate="fast", system_priority=65534,
                 key=1, fallback=False, event_limit=1000):
        self.name = name
        self.members = {}                       # handle -> Member, insertion = add order
        self._now = 0.0
        self._events = collections.deque(maxlen=event_limit)
        self.generation = 0
        self._dist = ()
        self.lag = None                         # LAG ID of the aggregator's partner
        self.fallback_member = None
        self._xid = 0
        self.totals = dict.fromkeys(COUNTERS, 0)
        self.error_totals = dict.fromkeys(P.ERROR_KINDS, 0)
        self.mode = self.rate = None
        self._set_config(mode=mode, rate=rate, system_priority=system_priority,
                         system_mac=system_mac, key=key, fallback=fallback)

    # ---------------------------------------------------------- configuration
    def _set_config(self, mode=None, rate=None, system_priority=None, system_mac=None, key=None,
                    fallback=None):
        if mode is not None and mode not in MODES:
            raise LacpError(f"lacp mode must be one of {', '.join(MODES)}, not {mode!r}")
        if rate is not None and rate not in RATES:
            raise LacpError(f"lacp rate must be fast or slow, not {rate!r}")
        for what, v in (("system priority", system_priority), ("key", key)):
            if v is not None and (not isinstance(v, int) or not 0 <= v <= 0xffff):
                raise LacpError(f"lacp {what} must be 0..65535, not {v!r}")
        if system_mac is not None:
            try:
                system_mac = mac_bytes(system_mac)
            except (TypeError, ValueError) as e:
                raise LacpError(f"lacp system MAC: {e}") from None
            if system_mac == ZERO_MAC or system_mac[0] & 1:
                raise LacpError(f"lacp system MAC must be a non-zero unicast address, not {mac_str(system_mac)}")
        if mode is not None:
            self.mode = mode
        if rate is not None:
            self.rate = rate
        if system_priority is not None:
            self.system_priority = system_priority
        if system_mac is not None:
            self.system = system_mac
        if key is not None:
            self.key = key
        if fallback is not None:
            self.fallback = bool(fallback)

    @property
    def lacp_enabled(self):
        return self.mode != "off"

    def configure(self, now, *, mode=None, rate=None, system_priority=None, system_mac=None, key=None,
                  fallback=None):
        """Change the bond's settings at run time; returns frames to send."""
        now = self._clock(now)
        out = self._run(now)
        old = (self.mode, self.rate, self.system_priority, self.system, self.key)
        self._set_config(mode=mode, rate=rate, system_priority=system_priority,
                         system_mac=system_mac, key=key, fallback=fallback)
        new = (self.mode, self.rate, self.system_priority, self.system, self.key)
        if old != new:
            self._event(f"configured: mode {self.mode} rate {self.rate} system "
                        f"{self.system_priority},{mac_str(self.system)} key {self.key}")
        if (old[0] == "off") != (new[0] == "off"):
            for m in self.members.values():     # LACP_Enabled changed: BEGIN
                self._begin(m, now)
        elif old[2:] != new[2:]:
            for m in self.members.values():     # our LAG ID changed: reselect
                m.selected = UNSELECTED
                m.ntt = True
        elif old != new:
            for m in self.members.values():     # activity/timeout bits changed
                m.ntt = True
        return out + self._run(now)

    def add_member(self, member, *, port_id=None, port_priority=32768, mac=None, name=None):
        if member in self.members:
            raise LacpError(f"{self.name}: member {member!r} already in the bond")
        used = {m.port_id for m in self.members.values()}
        if port_id is None:
            port_id = next(i for i in range(1, 0x10000) if i not in used)
        if not isinstance(port_id, int) or not 1 <= port_id <= 0xffff or port_id in used:
            raise LacpError(f"{self.name}: port id {port_id!r} must be 1..65535 and unique in the bond")
        if not isinstance(port_priority, int) or not 0 <= port_priority <= 0xffff:
            raise LacpError(f"{self.name}: port priority {port_priority!r} must be 0..65535")
        try:
            mac = self.system if mac is None else mac_bytes(mac)
        except (TypeError, ValueError) as e:
            raise LacpError(f"{self.name}: member MAC: {e}") from None
        m = Member(member, str(member) if name is None else name, port_id, port_priority, mac)
        self.members[member] = m
        self._event(f"member {m.name} added (port {port_id}, priority {port_priority})")
        self._begin(m, self._now)

    def remove_member(self, member, now):
        now = self._clock(now)
        m = self._m(member)
        del self.members[member]
        if self.fallback_member is m:
            self.fallback_member = None
        self._event(f"member {m.name} removed")
        return self._run(now)

    def set_member(self, member, now, *, port_priority=None, port_id=None):
        now = self._clock(now)
        m = self._m(member)
        out = self._run(now)
        if port_id is not None and port_id != m.port_id:
            if (not isinstance(port_id, int) or not 1 <= port_id <= 0xffff
                    or any(o.port_id == port_id for o in self.members.values())):
                raise LacpError(f"{self.name}: port id {port_id!r} must be 1..65535 and unique in the bond")
            m.port_id = port_id
            m.selected, m.ntt = UNSELECTED, True
        if port_priority is not None and port_priority != m.port_priority:
            if not isinstance(port_priority, int) or not 0 <= port_priority <= 0xffff:
                raise LacpError(f"{self.name}: port priority {port_priority!r} must be 0..65535")
            m.port_priority = port_priority
            m.selected, m.ntt = UNSELECTED, True
        return out + self._run(now)

    # ---------------------------------------------------------- entry points
    def link(self, member, up, now):
        """The member's link (carrier and admin state) went up or down."""
        now = self._clock(now)
        m = self._m(member)
        out = self._run(now)
        up = bool(up)
        if m.port_enabled != up:
            m.port_enabled = up
            self._event(f"{m.name}: link {'up' if up else 'down'}")
        return out + self._run(now)

    def tick(self, now):
        """Run the timers up to `now`; returns the frames to send."""
        return self._run(self._clock(now))

    def rx(self, member, data, now):
        """A Slow Protocols frame received on `member`; returns frames to send."""
        now = self._clock(now)
        m = self._m(member)
        out = self._run(now)
        try:
            src, payload = P.unframe(data)
            pdu = P.decode(payload)
        except P.PduError as e:
            self._count(m, "rx_errors")
            m.errors[e.kind] += 1
            self.error_totals[e.kind] += 1
            last = m.err_logged.get(e.kind)
            if last is None or now - last >= ERROR_LOG_INTERVAL:
                m.err_logged[e.kind] = now
                self._event(f"{m.name}: bad slow protocols frame ({e.kind}): {e}", logging.WARNING)
            return out
        if isinstance(pdu, P.MarkerPdu):
            return out + self._rx_marker(m, pdu, now)
        self._count(m, "lacpdus_rx")
        if pdu.actor.system == self.system:
            self._count(m, "loopback")
        if not (self.lacp_enabled and m.port_enabled and m.rx_state in (RX_EXPIRED, RX_DEFAULTED, RX_CURRENT)):
            self._count(m, "rx_ignored")
            return out
        for o in self.members.values():
            if (o is not m and o.rx_state == RX_PORT_DISABLED and o.partner.system == pdu.actor.system
                    and o.partner.port == pdu.actor.port):
                o.port_moved = True
        self._rx_enter(m, RX_CURRENT, now, pdu)
        return out + self._run(now)

    def send_marker(self, member, now):
        """Send a Marker Information PDU on `member`: (transaction_id, frames)."""
        now = self._clock(now)
        m = self._m(member)
        out = self._run(now)
        self._xid = (self._xid + 1) & 0xffffffff
        pdu = P.MarkerPdu(P.MARKER_INFO, m.port_id, self.system, self._xid)
        m.markers_pending[self._xid] = now
        self._count(m, "markers_tx")
        return self._xid, out + [(m.handle, P.frame(m.mac, P.encode(pdu)))]

    def marker_answered(self, member, transaction_id):
        return transaction_id in self._m(member).markers_answered

    # ---------------------------------------------------------- queries
    def distributing_members(self):
        return [m.handle for m in self._distributing()]

    def collecting_members(self):
        return self.distributing_members()     # coupled control

    def is_collecting(self, member):
        m = self.members.get(member)
        return m is not None and m in self._distributing()

    @property
    def negotiated(self):
        return self.lacp_enabled and self.lag is not None

    @property
    def fallback_active(self):
        return self.fallback_member is not None

    def events(self):
        ev = list(self._events)
        self._events.clear()
        return ev

    def counters(self):
        c = dict(self.totals)
        c["errors"] = dict(self.error_totals)
        return c

    def next_deadline(self):
        """The earliest `now` at which tick() has something to do (None: nothing pending)."""
        ds = []
        for m in self.members.values():
            if m.rx_state in (RX_CURRENT, RX_EXPIRED) and m.current_while is not None:
                ds.append(m.current_while)
            if m.periodic in (FAST_PERIODIC, SLOW_PERIODIC) and m.periodic_timer is not None:
                ds.append(m.periodic_timer)
            if m.mux == WAITING and not m.ready_n and m.wait_while is not None:
                ds.append(m.wait_while)
            if m.actor_churn == CHURN_MONITOR and m.actor_churn_timer is not None:
                ds.append(m.actor_churn_timer)
            if m.partner_churn == CHURN_MONITOR and m.partner_churn_timer is not None:
                ds.append(m.partner_churn_timer)
            if m.ntt and self._may_tx(m) and len(m.tx_times) >= TX_LIMIT:
                ds.append(m.tx_times[0] + FAST_PERIODIC_TIME)
        return min(ds) if ds else None

    def actor_info(self, member):
        return self._actor(self._m(member))

    def status(self):
        partner = None
        if self.lag is not None:
            partner = {"system_priority": self.lag[1], "system": mac_str(self.lag[2]), "key": self.lag[3]}
        members = []
        dist = self._distributing()
        for m in self.members.values():
            members.append({
                "member": m.handle, "name": m.name, "port_id": m.port_id,
                "port_priority": m.port_priority, "mac": mac_str(m.mac), "link_up": m.port_enabled,
                "receive": m.rx_state, "periodic": m.periodic, "selected": m.selected, "mux": m.mux,
                "actor_churn": m.actor_churn, "partner_churn": m.partner_churn,
                "looped": m.looped, "collecting": m in dist, "distributing": m in dist,
                "fallback": m is self.fallback_member,
                "actor": self._actor(m).as_dict(), "partner": m.partner.as_dict(),
                "counters": dict(m.counters), "errors": dict(m.errors),
            })
        return {
            "name": self.name, "mode": self.mode, "rate": self.rate, "lacp": self.lacp_enabled,
            "system": mac_str(self.system), "system_priority": self.system_priority, "key": self.key,
            "negotiated": self.negotiated, "fallback": self.fallback,
            "fallback_active": self.fallback_active,
            "fallback_member": None if self.fallback_member is None else self.fallback_member.handle,
            "partner": partner, "distributing": [m.handle for m in dist],
            "generation": self.generation, "counters": self.counters(), "members": members,
        }

    # ---------------------------------------------------------- internals
    def _m(self, member):
        try:
            return self.members[member]
        except KeyError:
            raise LacpError(f"{self.name}: no member {member!r}") from None

    def _clock(self, now):
        now = float(now)
        if now < self._now:
            now = self._now
        self._now = now
        return now

    def _event(self, text, level=logging.INFO):
        line = f"{self.name}: {text}"
        self._events.append(line)
        log.log(level, "%s", line)

    def _count(self, m, what, n=1):
        m.counters[what] += n
        self.totals[what] += n

    def _actor_state(self, m):
        s = AGGREGATION
        if self.mode == "active":
            s |= ACTIVITY
        if self.rate == "fast":
            s |= TIMEOUT
        if m.sync:
            s |= SYNC
        if m.collecting:
            s |= COLLECTING
        if m.distributing:
            s |= DISTRIBUTING
        if m.defaulted:
            s |= DEFAULTED
        if m.expired:
            s |= EXPIRED
        return s

    def _actor(self, m):
        return PortInfo(self.system_priority, self.system, self.key, m.port_priority, m.port_id,
                        self._actor_state(m))

    def _begin(self, m, now):
        """BEGIN for one member: every machine to its initial state."""
        m.ntt = False
        m.tx_times.clear()
        self._rx_enter(m, RX_INITIALIZE, now)
        self._rx_enter(m, RX_PORT_DISABLED, now)
        self._mux_enter(m, DETACHED, now)
        m.periodic, m.periodic_timer = NO_PERIODIC, None
        m.actor_churn, m.actor_churn_timer = CHURN_MONITOR, None
        m.partner_churn, m.partner_churn_timer = CHURN_MONITOR, None

    # -- Receive machine
    def _record_default(self, m):
        m.partner = PARTNER_ADMIN
        m.defaulted = True

    def _rx_enter(self, m, state, now, pdu=None):
        old = m.rx_state
        m.rx_state = state
        if state == RX_INITIALIZE:
            m.selected = UNSELECTED
            self._record_default(m)
            m.expired = False
            m.port_moved = False
        elif state == RX_PORT_DISABLED:
            m.partner = replace(m.partner, state=m.partner.state & ~SYNC)
        elif state == RX_EXPIRED:
            m.partner = replace(m.partner, state=(m.partner.state & ~SYNC) | TIMEOUT)
            m.current_while = now + SHORT_TIMEOUT_TIME
            m.expired = True
        elif state == RX_LACP_DISABLED:
            m.selected = UNSELECTED
            self._record_default(m)
            m.partner = replace(m.partner, state=m.partner.state & ~AGGREGATION)
            m.expired = False
        elif state == RX_DEFAULTED:
            if not self._same_partner(PARTNER_ADMIN, m.partner):     # update_Default_Selected
                m.selected = UNSELECTED
            self._record_default(m)
            m.expired = False
        elif state == RX_CURRENT:
            a = self._actor(m)
            if not self._same_partner(pdu.actor, m.partner):         # update_Selected
                m.selected = UNSELECTED
            if not pdu.partner.same_port(a) or (pdu.partner.state ^ a.state) & _NTT_BITS:
                m.ntt = True                                            # update_NTT
            self._record_pdu(m, pdu, a)
            m.current_while = now + (SHORT_TIMEOUT_TIME if a.state & TIMEOUT else LONG_TIMEOUT_TIME)
            m.expired = False
        if old != state and old is not None:
            self._event(f"{m.name}: receive {old} -> {state}")
        if state in (RX_CURRENT, RX_EXPIRED, RX_DEFAULTED, RX_LACP_DISABLED, RX_INITIALIZE):
            self._check_loop(m)

    @staticmethod
    def _same_partner(a, b):
        return a.same_port(b) and (a.state & AGGREGATION) == (b.state & AGGREGATION)

    def _record_pdu(self, m, pdu, actor):
        old = m.partner
        st = pdu.actor.state
        maintained = bool(st & ACTIVITY) or bool(actor.state & ACTIVITY and pdu.partner.state & ACTIVITY)
        matches = pdu.partner.same_port(actor) and (pdu.partner.state & AGGREGATION) == (actor.state & AGGREGATION)
        sync = maintained and bool(st & SYNC) and (matches or not st & AGGREGATION)
        m.partner = replace(pdu.actor, state=(st | SYNC) if sync else (st & ~SYNC))
        m.defaulted = False
        if not old.same_port(m.partner) and not m.looped:
            p = m.partner
            self._event(f"{m.name}: partner {p.system_priority},{mac_str(p.system)} key {p.key} "
                        f"port {p.port_priority},{p.port}")

    def _check_loop(self, m):
        looped = (not m.defaulted) and m.partner.system == self.system
        if looped != m.looped:
            m.looped = looped
            if looped:
                self._event(f"{m.name}: loopback detected: LACPDUs carry our own system id "
                            f"{mac_str(self.system)} (member cabled to its own switch)", logging.WARNING)
            else:
                self._event(f"{m.name}: loopback cleared")

    def _rx_step(self, m, now):
        s = m.rx_state
        if s == RX_INITIALIZE:
            self._rx_enter(m, RX_PORT_DISABLED, now)
        elif not m.port_enabled and not m.port_moved:
            if s != RX_PORT_DISABLED:
                self._rx_enter(m, RX_PORT_DISABLED, now)
            else:
                return False
        elif s == RX_PORT_DISABLED:
            if m.port_moved:
                self._rx_enter(m, RX_INITIALIZE, now)
            elif m.port_enabled and self.lacp_enabled:
                self._rx_enter(m, RX_EXPIRED, now)
            elif m.port_enabled:
                self._rx_enter(m, RX_LACP_DISABLED, now)
            else:
                return False
        elif s == RX_EXPIRED and now >= m.current_while:
            self._rx_enter(m, RX_DEFAULTED, now)
        elif s == RX_CURRENT and now >= m.current_while:
            self._rx_enter(m, RX_EXPIRED, now)
        elif s == RX_LACP_DISABLED and self.lacp_enabled:
            self._rx_enter(m, RX_PORT_DISABLED, now)
        else:
            return False
        return True

    # -- Selection Logic
    def _lag_of(self, m):
        """The LAG ID (partner part) this member could join, or None."""
        if not (self.lacp_enabled and m.port_enabled and m.rx_state in (RX_CURRENT, RX_EXPIRED)):
            return None
        if m.defaulted or m.looped:
            return None
        p = m.partner
        if p.state & AGGREGATION:
            return ("agg", p.system_priority, p.system, p.key)
        return ("ind", p.system_priority, p.system, p.key, p.port, m.port_id)

    def _select(self, now):
        groups = {}
        lags = {}
        for m in self.members.values():
            lag = lags[m.handle] = self._lag_of(m)
            if lag is not None:
                groups.setdefault(lag, []).append(m)
        chosen = None
        if groups:
            chosen = min(groups, key=lambda g: (-len(groups[g]), g != self.lag, g))
        changed = False
        if chosen != self.lag:
            if chosen is None:
                self._event("aggregator: no partner")
            else:
                self._event(f"aggregator: partner {chosen[1]},{mac_str(chosen[2])} key {chosen[3]}"
                            + (" (individual link)" if chosen[0] == "ind" else "")
                            + f", {len(groups[chosen])} member(s) eligible")
            self.lag = chosen
            changed = True
        busy_other = any(m.mux != DETACHED and m.lag != chosen for m in self.members.values())
        for m in self.members.values():
            eligible = chosen is not None and lags[m.handle] == chosen
            if m.selected != UNSELECTED and not eligible:
                m.selected = UNSELECTED
                changed = True
            elif m.selected == UNSELECTED and eligible and m.mux == DETACHED and not busy_other:
                m.selected = SELECTED
                m.lag = chosen
                changed = True
        return changed

    # -- Mux machine (coupled control)
    def _mux_enter(self, m, state, now):
        old = m.mux
        m.mux = state
        if state == DETACHED:
            m.sync = m.collecting = m.distributing = False
            m.wait_while, m.ready_n = None, False
            m.ntt = True
        elif state == WAITING:
            m.wait_while = now + AGGREGATE_WAIT_TIME
            m.ready_n = False
        elif state == ATTACHED:
            m.sync = True
            m.collecting = m.distributing = False
            m.ntt = True
        elif state == COLLECTING_DISTRIBUTING:
            m.collecting = m.distributing = True
            m.ntt = True
        if old is not None and old != state:
            self._event(f"{m.name}: mux {old} -> {state}")

    def _mux_all(self, now):
        for m in self.members.values():
            if m.mux == WAITING and not m.ready_n and now >= m.wait_while:
                m.ready_n = True
        ready = all(m.ready_n for m in self.members.values() if m.selected == SELECTED and m.mux == WAITING)
        changed = False
        for m in self.members.values():
            s, sel = m.mux, m.selected
            psync = bool(m.partner.state & SYNC)
            if s == DETACHED and sel in (SELECTED, STANDBY):
                self._mux_enter(m, WAITING, now)
            elif s == WAITING and sel == UNSELECTED:
                self._mux_enter(m, DETACHED, now)
            elif s == WAITING and sel == SELECTED and ready:
                self._mux_enter(m, ATTACHED, now)
            elif s == ATTACHED and sel == SELECTED and psync:
                self._mux_enter(m, COLLECTING_DISTRIBUTING, now)
            elif s == ATTACHED and sel in (UNSELECTED, STANDBY):
                self._mux_enter(m, DETACHED, now)
            elif s == COLLECTING_DISTRIBUTING and (sel != SELECTED or not psync):
                self._mux_enter(m, ATTACHED, now)
            else:
                continue
            changed = True
        return changed

    # -- Periodic Transmission machine
    def _periodic_step(self, m, now):
        s = m.periodic
        partner_short = bool(m.partner.state & TIMEOUT)
        if (not self.lacp_enabled or not m.port_enabled
                or (self.mode != "active" and not m.partner.state & ACTIVITY)):
            if s == NO_PERIODIC:
                return False
            m.periodic, m.periodic_timer = NO_PERIODIC, None
        elif s == NO_PERIODIC:
            m.periodic, m.periodic_timer = FAST_PERIODIC, now + FAST_PERIODIC_TIME
        elif s == FAST_PERIODIC and not partner_short:
            m.periodic, m.periodic_timer = SLOW_PERIODIC, now + SLOW_PERIODIC_TIME
        elif s == FAST_PERIODIC and now >= m.periodic_timer:
            m.periodic = PERIODIC_TX
        elif s == SLOW_PERIODIC and (now >= m.periodic_timer or partner_short):
            m.periodic = PERIODIC_TX
        elif s == PERIODIC_TX:
            m.ntt = True
            if partner_short:
                m.periodic, m.periodic_timer = FAST_PERIODIC, now + FAST_PERIODIC_TIME
            else:
                m.periodic, m.periodic_timer = SLOW_PERIODIC, now + SLOW_PERIODIC_TIME
        else:
            return False
        return True

    # -- Churn Detection machines
    def _churn_step(self, m, now):
        changed = False
        for who in ("actor", "partner"):
            st_attr, tm_attr = f"{who}_churn", f"{who}_churn_timer"
            st, timer = getattr(m, st_attr), getattr(m, tm_attr)
            insync = m.sync if who == "actor" else bool(m.partner.state & SYNC)
            new, new_timer = st, timer
            if not (m.port_enabled and self.lacp_enabled):
                new, new_timer = CHURN_MONITOR, None
            elif st == CHURN_MONITOR:
                if timer is None:
                    new_timer = now + CHURN_DETECTION_TIME
                if insync:
                    new = NO_CHURN
                elif new_timer is not None and now >= new_timer:
                    new = CHURN
            elif st == NO_CHURN and not insync:
                new, new_timer = CHURN_MONITOR, now + CHURN_DETECTION_TIME
            elif st == CHURN and insync:
                new = NO_CHURN
            if new != st:
                if new == CHURN:
                    self._event(f"{m.name}: {who} churn detected (not in sync for "
                                f"{CHURN_DETECTION_TIME:g} s)", logging.WARNING)
                elif st == CHURN:
                    self._event(f"{m.name}: {who} churn cleared")
                changed = True
            if new != st or new_timer != timer:
                setattr(m, st_attr, new)
                setattr(m, tm_attr, new_timer)
        return changed

    # -- Transmit machine
    def _may_tx(self, m):
        return self.lacp_enabled and m.port_enabled and m.periodic != NO_PERIODIC

    def _transmit(self, m, now, out):
        if not (m.ntt and self._may_tx(m)):
            return
        if not _rate_ok(m.tx_times, now, TX_LIMIT, FAST_PERIODIC_TIME):
            return                              # NTT stays set; next_deadline() says when
        pdu = P.Lacpdu(self._actor(m), m.partner)
        out.append((m.handle, P.frame(m.mac, P.encode(pdu))))
        m.tx_times.append(now)
        m.ntt = False
        self._count(m, "lacpdus_tx")

    # -- Marker responder
    def _rx_marker(self, m, pdu, now):
        if pdu.type == P.MARKER_RESPONSE:
            self._count(m, "marker_responses_rx")
            if pdu.requester_system == self.system and pdu.transaction_id in m.markers_pending:
                sent = m.markers_pending.pop(pdu.transaction_id)
                m.markers_answered.add(pdu.transaction_id)
                if len(m.markers_answered) > 64:
                    m.markers_answered.discard(min(m.markers_answered))
                self._event(f"{m.name}: marker {pdu.transaction_id} answered after {now - sent:.3f} s")
            return []
        self._count(m, "markers_rx")
        if not m.port_enabled or not _rate_ok(m.marker_times, now, MARKER_RESPONSE_LIMIT):
            self._count(m, "marker_responses_dropped")
            return []
        m.marker_times.append(now)
        self._count(m, "marker_responses_tx")
        return [(m.handle, P.frame(m.mac, P.encode(pdu.response())))]

    # -- Fallback and the distributing set
    def _update_fallback(self):
        fb = None
        if self.lacp_enabled and self.fallback:
            up = [m for m in self.members.values() if m.port_enabled and not m.looped]
            has_partner = any(not m.defaulted for m in up)
            # start only once some member has waited out its timeout (DEFAULTED), so a bond
            # whose partner answers within the first 3 s never flaps through fallback;
            # once started, keep it while nobody has a partner (a member whose link
            # comes back sits in EXPIRED for 3 s and must not end it)
            started = self.fallback_member is not None or any(m.rx_state == RX_DEFAULTED for m in up)
            if up and not has_partner and started:
                fb = self.fallback_member if self.fallback_member in up else \
                    min(up, key=lambda m: (m.port_priority, m.port_id))
        if fb is not self.fallback_member:
            if fb is None:
                self._event("fallback active-backup ended")
            elif self.fallback_member is None:
                self._event(f"no LACP partner on any member: fallback active-backup on {fb.name}")
            else:
                self._event(f"fallback active-backup moves to {fb.name}")
            self.fallback_member = fb

    def _distributing(self):
        if not self.lacp_enabled:
            return [m for m in self.members.values() if m.port_enabled]
        if self.fallback_member is not None:
            return [self.fallback_member]
        return [m for m in self.members.values() if m.mux == COLLECTING_DISTRIBUTING]

    def _run(self, now):
        for _ in range(_MAX_PASSES):
            changed = False
            for m in self.members.values():
                changed |= self._rx_step(m, now)
            changed |= self._select(now)
            changed |= self._mux_all(now)
            for m in self.members.values():
                changed |= self._periodic_step(m, now)
                changed |= self._churn_step(m, now)
            if not changed:
                break
        else:   # pragma: no cover - the machines always settle; say so if they do not
            self._event(f"machines did not settle in {_MAX_PASSES} passes", logging.ERROR)
        self._update_fallback()
        out = []
        for m in self.members.values():
            self._transmit(m, now, out)
        dist = tuple(m.handle for m in self._distributing())
        if dist != self._dist:
            self._dist = dist
            self.generation += 1
            self._event(f"distributing: {', '.join(self.members[h].name for h in dist) or 'none'}")
        return out
