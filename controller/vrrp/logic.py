"""The VRRP state machine (RFC 5798 v3, RFC 3768 v2), I/O-free.

One `VirtualRouter` per (segment, family, VRID); one `RouterSet` per segment
(a datapath port, optionally one VLAN on it) dispatches received frames to
its routers by (family, VRID). Nothing here reads a clock or touches a
socket: every entry point takes `now` (seconds, float, monotonic) and
returns an `Actions`. Tests warp time by passing whatever `now` they like.

Contract for the os-ken adapter (controller/vrrp/app.py)
- Build a RouterSet per (dpid, port[, vlan]) from config and add a
  VirtualRouter per virtual router; call `start(now)`.
- Punt to the controller (packet-in) on that port: VRRP (IP proto 112 to
  224.0.0.18 / ff02::12), ARP requests, and ICMPv6 Neighbor Solicitations
  to the solicited-node groups of the virtual addresses
  (`packet.solicited_node(vip)`). Hand each frame to
  `routerset.rx_frame(frame, now)`.
- Keep one timer: sleep until `routerset.next_deadline()` (None = nothing
  scheduled) and then call `routerset.tick(now)`. Call again after any
  entry point: deadlines move when adverts arrive.
- Interface / object tracking: `router.track(name, up, now)` for names
  configured with `tracks={name: weight}` (or `add_track`). Weight > 0
  lowers the priority by that much while `name` is down; weight 0 makes the
  router leave service (Initialize, priority-0 advert if it was Master)
  while `name` is down. Tracking the router's own port with weight 0 is the
  natural "interface down" behaviour.
- Apply every returned `Actions` in this order:
  1. `flows`: FlowChange("install", ...) when the router becomes Master:
     accept frames to the virtual MAC (`vmac`) and route them, answer ARP /
     ND for `vips` (frames punted as above), and if `accept` deliver
     packets addressed to the VIPs to the controller/host (RFC 5798 Accept
     Mode; the address owner always accepts). FlowChange("remove", ...) when
     it leaves Master: delete exactly those flows (cookie per vrid/family is
     a good key). Install before sending the gratuitous ARPs below so the
     traffic they attract is already routed.
  2. `frames`: whole Ethernet frames to packet-out on the RouterSet's port
     (adverts, gratuitous ARP / unsolicited NA, ARP / NA replies).
  3. `transitions`: log them (the router also logs through logging
     'vdp.vrrp').
- Status view: `router.status()` / `routerset.status()` (plain dicts,
  JSON-able).

Protocol summary (RFC 5798 section 6 wording: Master = "Active")
- Initialize --start--> Master if the effective priority is 255 (owner),
  else Backup with Master_Down_Timer = Master_Down_Interval.
- Skew_Time: v3 ((256 - Priority) * Master_Adver_Interval) / 256; v2
  (256 - Priority) / 256 s. Master_Down_Interval = 3 * interval + Skew_Time
  (v3: the master's learned interval; v2: ours, which must equal the
  master's). Times are computed in integer microseconds, truncated, the way
  keepalived does, so deadlines are exact and reproducible.
- Backup: advert priority 0 -> Master_Down_Timer = Skew_Time (fast
  takeover); advert priority >= ours or preempt off -> learn the master (v3:
  and its interval) and restart Master_Down_Timer; lower priority with
  preempt on -> discard (so the timer expires and we take over). With
  preempt_delay D > 0, lower-priority adverts are still honoured for D
  seconds after the first one arrives, then preemption proceeds. The
  address owner always preempts (RFC 5798 6.1 Preempt_Mode note).
  Master_Down_Timer expiry -> Master.
- Master: send an advert every interval; advert priority 0 -> send one at
  once; higher priority, or equal priority from a larger primary address ->
  Backup; else discard. shutdown -> priority-0 advert, Initialize.
- Owner receiving adverts: processed normally (RFC 9568 erratum 8298, and
  keepalived's default), so two misconfigured owners still elect one;
  `owner_ignore_adverts=True` gives the RFC 5798 text (discard, counted
  'owner').
- An advert whose address list differs from ours is counted; it is dropped
  (rx_err_addr_list) unless its sender is the owner (priority 255), in
  which case it is logged, counted in rx_addr_list_mismatch_owner, and used
  (RFC 3768 7.1 / RFC 5798 7.1).
- A priority change from tracking while Master is advertised at once.
"""
import ipaddress
import logging
from dataclasses import dataclass, field

from controller.vrrp import packet as pk

log = logging.getLogger("vdp.vrrp")

INITIALIZE = "Initialize"
BACKUP = "Backup"
MASTER = "Master"

OWNER_PRIORITY = 255
LOG_INTERVAL = 10.0      # seconds between repeated log lines of one kind


@dataclass(frozen=True)
class Transition:
    vrid: int
    family: int
    old: str
    new: str
    reason: str
    at: float


@dataclass(frozen=True)
class FlowChange:
    """What the adapter programs on the datapath for a virtual router.

    op "install" (became Master) or "remove" (left Master). vmac as
    "00:00:5e:00:01:07", vips as strings, accept = deliver traffic to the
    VIPs locally (accept mode or owner)."""
    op: str
    vrid: int
    family: int
    vmac: str
    vips: tuple
    accept: bool
    vlan: int = None


@dataclass
class Actions:
    """What an entry point asks the adapter to do (see module header)."""
    frames: list = field(default_factory=list)
    transitions: list = field(default_factory=list)
    flows: list = field(default_factory=list)

    def extend(self, other):
        self.frames += other.frames
        self.transitions += other.transitions
        self.flows += other.flows
        return self

    def __bool__(self):
        return bool(self.frames or self.transitions or self.flows)


# Counter names (all start at 0 and appear in status()).
TX_COUNTERS = ("tx_adverts", "tx_priority_zero", "tx_garp", "tx_unsolicited_na",
               "tx_arp_reply", "tx_na_reply")
RX_COUNTERS = ("rx_adverts", "rx_priority_zero", "rx_lower_priority_discarded",
               "rx_ignored_initialize", "rx_addr_list_mismatch_owner", "rx_v3_checksum_as_v2")
ERR_COUNTERS = tuple("rx_err_" + r for r in pk.REASONS)


def _new_counters():
    return {name: 0 for name in TX_COUNTERS + RX_COUNTERS + ERR_COUNTERS}


class _RateLog:
    def __init__(self):
        self._last = {}

    def __call__(self, now, key, level, msg, *args):
        last = self._last.get(key)
        if last is None or now - last >= LOG_INTERVAL or now < last:
            self._last[key] = now
            log.log(level, msg, *args)


def _interval_wire(version, seconds):
    """Configured interval (seconds) -> wire units, refusing inexact values."""
    unit = 100 if version == 3 else 1
    wire = round(seconds * unit)
    if abs(wire - seconds * unit) > 1e-6:
        what = "a multiple of 0.01 s" if version == 3 else "whole seconds"
        raise ValueError(f"VRRP v{version} advert interval must be {what}, got {seconds}")
    top = pk.V3_INTERVAL_MAX if version == 3 else pk.V2_INTERVAL_MAX
    if not 1 <= wire <= top:
        raise ValueError(f"VRRP v{version} advert interval {seconds} s out of range")
    return wire


class VirtualRouter:
    """One virtual router (RFC 5798 section 6). See the module header."""

    def __init__(self, vrid, version, family, priority, vips, primary_ip, interval=1.0,
                 preempt=True, preempt_delay=0, accept=False, *, auth_type=pk.AUTH_NONE,
                 password=None, tracks=None, vlan=None, v3_checksum_as_v2=False,
                 owner_ignore_adverts=False, name=None):
        if not 1 <= int(vrid) <= 255:
            raise ValueError(f"VRID {vrid} out of range 1-255")
        if version not in (2, 3):
            raise ValueError(f"VRRP version {version} (2 or 3)")
        if family not in (4, 6):
            raise ValueError(f"address family {family} (4 or 6)")
        if version == 2 and family != 4:
            raise ValueError("VRRP version 2 is IPv4 only (RFC 3768)")
        if not 1 <= int(priority) <= 255:
            raise ValueError(f"priority {priority} out of range 1-255")
        self.vrid, self.version, self.family = int(vrid), version, family
        self.priority = int(priority)
        if isinstance(vips, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
            vips = [vips]
        self.vips = tuple(pk.ip(v) for v in vips)
        if not self.vips or len(self.vips) > 255:
            raise ValueError("a virtual router needs 1-255 virtual addresses")
        self.primary_ip = pk.ip(primary_ip)
        for a in self.vips + (self.primary_ip,):
            if a.version != family:
                raise ValueError(f"{a} is not an IPv{family} address")
        if family == 6 and not self.primary_ip.is_link_local:
            # RFC 5798 5.1.2.1: IPv6 adverts come from the interface's link-local address
            log.warning("VRRP vr%d/ipv6: primary address %s is not link-local", self.vrid,
                        self.primary_ip)
        self.interval = interval
        self._adv_wire = _interval_wire(version, interval)
        self._adv_us = self._adv_wire * (10_000 if version == 3 else 1_000_000)
        if preempt_delay < 0:
            raise ValueError("preempt_delay must be >= 0")
        self.preempt, self.preempt_delay, self.accept = bool(preempt), preempt_delay, bool(accept)
        if auth_type not in (pk.AUTH_NONE, pk.AUTH_PASSWORD):
            raise ValueError(f"auth type {auth_type}: only 0 (none) and 1 (simple password)")
        if auth_type != pk.AUTH_NONE and version != 2:
            raise ValueError("authentication exists only in VRRP version 2")
        if auth_type == pk.AUTH_PASSWORD and not password:
            raise ValueError("auth type 1 needs a password")
        self.auth_type = auth_type
        self.auth_data = pk.password_bytes(password if auth_type == pk.AUTH_PASSWORD else None)
        self.vlan = vlan
        self.v3_checksum_as_v2 = v3_checksum_as_v2
        self.owner_ignore_adverts = owner_ignore_adverts
        self.name = name or f"vr{vrid}/ipv{family}"
        self.vmac = pk.vmac(self.vrid, family)
        self._tracks = {}
        for tname, weight in (tracks or {}).items():
            self.add_track(tname, weight)

        self.state = INITIALIZE
        self.enabled = False
        self._master_adv_us = self._adv_us
        self._adver_at = None         # Adver_Timer (Master)
        self._down_at = None          # Master_Down_Timer (Backup)
        self._preempt_since = None    # first lower-priority advert while preempt_delay runs
        self.master_ip = None
        self.master_priority = None
        self.transitions = 0
        self.last_transition = None
        self.counters = _new_counters()
        self._log = _RateLog()

    # ------------------------------------------------------------ derived

    @property
    def effective_priority(self):
        down = [w for w, up in self._tracks.values() if not up]
        if not down:
            return self.priority
        return max(1, min(254, self.priority - sum(down)))

    @property
    def faulted(self):
        """Names of weight-0 tracked objects that are down."""
        return sorted(n for n, (w, up) in self._tracks.items() if w == 0 and not up)

    @property
    def is_owner(self):
        return self.effective_priority == OWNER_PRIORITY

    @property
    def master_adver_interval(self):
        """Master_Adver_Interval in seconds (v3: learned from the master)."""
        return self._master_adv_us / 1e6

    def skew_us(self, priority=None):
        p = self.effective_priority if priority is None else priority
        if self.version == 3:
            return ((256 - p) * self._master_adv_us) // 256
        return ((256 - p) * 1_000_000) // 256

    def master_down_us(self, priority=None):
        base = self._master_adv_us if self.version == 3 else self._adv_us
        return 3 * base + self.skew_us(priority)

    @property
    def skew_time(self):
        return self.skew_us() / 1e6

    @property
    def master_down_interval(self):
        return self.master_down_us() / 1e6

    def next_deadline(self):
        """When tick() has something to do next (None: nothing scheduled)."""
        ts = [t for t in (self._adver_at, self._down_at) if t is not None]
        return min(ts) if ts else None

    # --------------------------------------------------------------- frames

    def advert(self, priority=None):
        p = self.effective_priority if priority is None else priority
        return pk.Advert(self.version, self.vrid, p, self._adv_wire, self.vips,
                         auth_type=self.auth_type, auth_data=self.auth_data, family=self.family)

    def advert_frame(self, priority=None):
        return pk.advert_frame(self.advert(priority), self.primary_ip, self.vlan,
                               self.v3_checksum_as_v2)

    def _send_advert(self, acts, priority=None):
        acts.frames.append(self.advert_frame(priority))
        self.counters["tx_adverts"] += 1
        if priority == 0:
            self.counters["tx_priority_zero"] += 1

    def _announce(self, acts):
        for vip in self.vips:
            if self.family == 4:
                acts.frames.append(pk.gratuitous_arp(self.vmac, vip, self.vlan))
                self.counters["tx_garp"] += 1
            else:
                acts.frames.append(pk.unsolicited_na(self.vmac, vip, self.vlan))
                self.counters["tx_unsolicited_na"] += 1

    def _flow(self, op):
        return FlowChange(op, self.vrid, self.family, pk.mac_str(self.vmac),
                          tuple(str(v) for v in self.vips),
                          self.accept or self.priority == OWNER_PRIORITY, self.vlan)

    # ---------------------------------------------------------- transitions

    def _set_state(self, new, reason, now, acts):
        old = self.state
        self.state = new
        self.transitions += 1
        t = Transition(self.vrid, self.family, old, new, reason, now)
        self.last_transition = t
        acts.transitions.append(t)
        log.info("VRRP %s: %s -> %s (%s)", self.name, old, new, reason)

    def _become_master(self, now, reason, acts):
        was = self.state
        self._down_at = None
        self._preempt_since = None
        self._set_state(MASTER, reason, now, acts)
        if was != MASTER:
            acts.flows.append(self._flow("install"))
        self._send_advert(acts)
        self._announce(acts)
        self._adver_at = now + self._adv_us / 1e6
        self.master_ip = self.primary_ip
        self.master_priority = self.effective_priority

    def _become_backup(self, now, reason, acts):
        was = self.state
        self._adver_at = None
        self._preempt_since = None
        self._set_state(BACKUP, reason, now, acts)
        if was == MASTER:
            acts.flows.append(self._flow("remove"))
        self._down_at = now + self.master_down_us() / 1e6

    def _become_initialize(self, now, reason, acts):
        if self.state == MASTER:
            self._send_advert(acts, 0)
            acts.flows.append(self._flow("remove"))
        self._adver_at = self._down_at = self._preempt_since = None
        self.master_ip = self.master_priority = None
        self._set_state(INITIALIZE, reason, now, acts)

    def _startup(self, now, reason, acts):
        # RFC 5798 6.4.1
        if self.is_owner:
            self._become_master(now, reason + " (address owner)", acts)
        else:
            self._master_adv_us = self._adv_us
            self.master_ip = self.master_priority = None
            self._become_backup(now, reason, acts)

    # -------------------------------------------------------- entry points

    def start(self, now):
        """Startup event (also after shutdown). Stays in Initialize while a
        weight-0 tracked object is down."""
        acts = Actions()
        if self.enabled:
            return acts
        self.enabled = True
        if self.state == INITIALIZE and not self.faulted:
            self._startup(now, "startup", acts)
        return acts

    def shutdown(self, now):
        """Shutdown event: priority-0 advert if Master, then Initialize."""
        acts = Actions()
        self.enabled = False
        if self.state != INITIALIZE:
            self._become_initialize(now, "shutdown", acts)
        return acts

    def tick(self, now):
        """Fire expired timers."""
        acts = Actions()
        if self.state == BACKUP and self._down_at is not None and now >= self._down_at:
            self._become_master(now, "master down timer expired", acts)
        elif self.state == MASTER and self._adver_at is not None and now >= self._adver_at:
            self._send_advert(acts)
            self._adver_at = now + self._adv_us / 1e6
        return acts

    def add_track(self, name, weight=0, up=True):
        """Track `name`: weight > 0 lowers the priority while it is down,
        weight 0 takes the router out of service while it is down."""
        if weight < 0 or weight > 254:
            raise ValueError(f"track weight {weight} out of range 0-254")
        self._tracks[name] = [int(weight), bool(up)]

    def track(self, name, up, now):
        """A tracked interface/object changed state."""
        acts = Actions()
        if name not in self._tracks:
            raise KeyError(f"{self.name}: {name!r} is not tracked")
        old_prio, old_fault = self.effective_priority, self.faulted
        self._tracks[name][1] = bool(up)
        prio, fault = self.effective_priority, self.faulted
        what = f"track {name} {'up' if up else 'down'}"
        if fault and not old_fault:
            if self.state != INITIALIZE:
                self._become_initialize(now, what, acts)
            return acts
        if old_fault and not fault:
            if self.enabled and self.state == INITIALIZE:
                self._startup(now, what, acts)
            return acts
        if prio == old_prio or fault:
            return acts
        log.info("VRRP %s: priority %d -> %d (%s)", self.name, old_prio, prio, what)
        if self.state == MASTER:
            # Tell the backups at once, so a higher-priority one preempts now.
            self._send_advert(acts)
            self._adver_at = now + self._adv_us / 1e6
            self.master_priority = prio
        elif self.state == BACKUP and prio == OWNER_PRIORITY:
            # The address owner always preempts; as at startup, without delay.
            self._become_master(now, what + " (address owner)", acts)
        return acts

    def count_error(self, reason, now, detail=""):
        """Count (and rate-limited log) an advert dropped for `reason`."""
        self.counters["rx_err_" + reason] += 1
        self._log(now, reason, logging.INFO, "VRRP %s: advert dropped: %s %s", self.name,
                  pk.REASONS[reason], detail)

    def rx_advert(self, adv, now):
        """A received advertisement: an Ethernet frame (bytes) or a decoded
        packet.Advert. Runs the receive checks and the state machine."""
        acts = Actions()
        if not isinstance(adv, pk.Advert):
            try:
                adv = pk.decode_frame(adv)
            except pk.NotVrrp:
                return acts
            except pk.VrrpError as e:
                self.count_error(e.reason, now, str(e))
                return acts
        reason = self._check(adv, now)
        if reason:
            self.count_error(reason, now, f"from {adv.src}")
            return acts
        self._process(adv, now, acts)
        return acts

    def _check(self, adv, now):
        """Router-level receive checks; the reason to drop, or None."""
        if adv.family != self.family or adv.vrid != self.vrid:
            return "vrid"
        if adv.version != self.version:
            return "version"
        if adv.src is not None and adv.src == self.primary_ip:
            return "own"
        if not adv.addrs:
            return "addr_count_zero"
        if self.version == 2:
            type_ok, data_ok = pk.auth_ok(adv, self.auth_type, self.auth_data)
            if not type_ok:
                return "auth_type"
            if not data_ok:
                return "auth"
        if sorted(adv.addrs) != sorted(self.vips):
            if adv.priority != OWNER_PRIORITY:
                return "addr_list"
            self.counters["rx_addr_list_mismatch_owner"] += 1
            self._log(now, "addr_owner", logging.WARNING,
                      "VRRP %s: owner %s advertises %s, we have %s", self.name, adv.src,
                      [str(a) for a in adv.addrs], [str(a) for a in self.vips])
        if self.version == 2 and adv.interval != self._adv_wire:
            return "interval"       # RFC 3768 7.1: MUST discard
        if self.version == 3 and adv.interval == 0:
            return "interval"
        if self.owner_ignore_adverts and self.is_owner:
            return "owner"
        return None

    def _process(self, adv, now, acts):
        self.counters["rx_adverts"] += 1
        if adv.checksum_style == "message":
            self.counters["rx_v3_checksum_as_v2"] += 1
        if adv.priority == 0:
            self.counters["rx_priority_zero"] += 1
        if self.state == INITIALIZE:
            self.counters["rx_ignored_initialize"] += 1
            return
        prio = self.effective_priority
        if self.state == BACKUP:
            if adv.priority == 0:
                self._down_at = now + self.skew_us() / 1e6
                return
            preempt = self.preempt or prio == OWNER_PRIORITY
            if not preempt or adv.priority >= prio:
                self._preempt_since = None
            elif self.preempt_delay > 0:
                if self._preempt_since is None:
                    self._preempt_since = now
                if now >= self._preempt_since + self.preempt_delay:
                    self.counters["rx_lower_priority_discarded"] += 1
                    return
            else:
                self.counters["rx_lower_priority_discarded"] += 1
                return
            if self.version == 3:
                self._master_adv_us = adv.interval_us
            self.master_ip, self.master_priority = adv.src, adv.priority
            self._down_at = now + self.master_down_us() / 1e6
            return
        # MASTER
        if adv.priority == 0:
            self._send_advert(acts)
            self._adver_at = now + self._adv_us / 1e6
            return
        src = int(adv.src) if adv.src is not None else 0
        if adv.priority > prio or (adv.priority == prio and src > int(self.primary_ip)):
            if self.version == 3:
                self._master_adv_us = adv.interval_us
            self.master_ip, self.master_priority = adv.src, adv.priority
            why = "higher priority" if adv.priority > prio else "equal priority, larger address"
            self._become_backup(now, f"{why} advert from {adv.src} (priority {adv.priority})",
                                acts)
            return
        self.counters["rx_lower_priority_discarded"] += 1

    def answer(self, frame, now=None):
        """The ARP reply / Neighbor Advertisement for a request frame asking
        for one of our virtual addresses, if we are Master; else None."""
        if self.state != MASTER:
            return None
        if self.family == 4:
            reply = pk.arp_reply(frame, self.vmac, self.vips)
            if reply is not None:
                self.counters["tx_arp_reply"] += 1
        else:
            reply = pk.na_reply(frame, self.vmac, self.vips)
            if reply is not None:
                self.counters["tx_na_reply"] += 1
        return reply

    def rx_frame(self, frame, now):
        """Any frame from the segment: adverts go to rx_advert, ARP requests
        and Neighbor Solicitations are answered when Master."""
        acts = Actions()
        try:
            l3 = pk.parse_l2(frame)
        except pk.NotVrrp:
            return acts
        if l3.ethertype in (pk.ETH_P_IP, pk.ETH_P_IPV6):
            try:
                return self.rx_advert(pk.decode_frame(frame, l3=l3), now)
            except pk.NotVrrp:
                pass
            except pk.VrrpError as e:
                self.count_error(e.reason, now, str(e))
                return acts
        reply = self.answer(frame, now)
        if reply is not None:
            acts.frames.append(reply)
        return acts

    def status(self):
        lt = self.last_transition
        return {
            "name": self.name,
            "vrid": self.vrid,
            "version": self.version,
            "family": self.family,
            "state": self.state,
            "enabled": self.enabled,
            "priority": self.priority,
            "effective_priority": self.effective_priority,
            "owner": self.priority == OWNER_PRIORITY,
            "primary_ip": str(self.primary_ip),
            "vips": [str(v) for v in self.vips],
            "vmac": pk.mac_str(self.vmac),
            "vlan": self.vlan,
            "master": str(self.master_ip) if self.master_ip is not None else None,
            "master_priority": self.master_priority,
            "interval": self._adv_us / 1e6,
            "master_interval": self._master_adv_us / 1e6,
            "skew_time": self.skew_time,
            "master_down_interval": self.master_down_interval,
            "preempt": self.preempt,
            "preempt_delay": self.preempt_delay,
            "accept": self.accept,
            "auth_type": self.auth_type,
            "tracks": {n: {"weight": w, "up": up} for n, (w, up) in self._tracks.items()},
            "fault": self.faulted,
            "next_deadline": self.next_deadline(),
            "transitions": self.transitions,
            "last_transition": None if lt is None else {
                "from": lt.old, "to": lt.new, "reason": lt.reason, "at": lt.at},
            "counters": dict(self.counters),
        }


class RouterSet:
    """The virtual routers of one segment (a port, or one VLAN on a port).

    rx_frame decodes once and dispatches adverts by (family, VRID), ARP
    requests to the IPv4 routers and Neighbor Solicitations to the IPv6
    ones. Adverts for a VRID nobody here has are counted in
    counters["rx_err_vrid"]; decode errors whose VRID is readable are charged
    to that router, others to this set. With `vlan` set, frames whose outer
    VLAN differs are ignored (counted rx_other_vlan)."""

    def __init__(self, vlan=None, name=None):
        self.vlan = vlan
        self.name = name
        self.routers = {}
        self.counters = {"rx_frames": 0, "rx_not_vrrp": 0, "rx_other_vlan": 0,
                         **{"rx_err_" + r: 0 for r in pk.REASONS}}
        self._log = _RateLog()

    def add(self, router):
        key = (router.family, router.vrid)
        if key in self.routers:
            raise ValueError(f"VRID {router.vrid} IPv{router.family} already on this segment")
        if router.vlan != self.vlan:
            raise ValueError(f"router VLAN {router.vlan} differs from the segment's {self.vlan}")
        self.routers[key] = router
        return router

    def remove(self, vrid, family, now):
        """Remove a router (shut down first: priority-0 advert if Master)."""
        r = self.routers.pop((family, vrid))
        return r.shutdown(now)

    def get(self, vrid, family=4):
        return self.routers.get((family, vrid))

    def _all(self, fn):
        acts = Actions()
        for r in list(self.routers.values()):
            acts.extend(fn(r))
        return acts

    def start(self, now):
        return self._all(lambda r: r.start(now))

    def shutdown(self, now):
        return self._all(lambda r: r.shutdown(now))

    def tick(self, now):
        return self._all(lambda r: r.tick(now))

    def next_deadline(self):
        ts = [t for t in (r.next_deadline() for r in self.routers.values()) if t is not None]
        return min(ts) if ts else None

    def rx_frame(self, frame, now):
        acts = Actions()
        self.counters["rx_frames"] += 1
        try:
            l3 = pk.parse_l2(frame)
        except pk.NotVrrp:
            self.counters["rx_not_vrrp"] += 1
            return acts
        if l3.vlan != self.vlan:
            self.counters["rx_other_vlan"] += 1
            return acts
        if l3.ethertype == pk.ETH_P_ARP:
            for (fam, _), r in self.routers.items():
                if fam == 4:
                    reply = r.answer(frame, now)
                    if reply is not None:
                        acts.frames.append(reply)
                        break
            return acts
        try:
            l3 = pk.parse_ip(frame, l3)
        except pk.NotVrrp:
            self.counters["rx_not_vrrp"] += 1
            return acts
        except pk.VrrpError as e:
            self._error(e, now)
            return acts
        if l3.proto == pk.IPPROTO_ICMPV6 and l3.family == 6:
            for (fam, _), r in self.routers.items():
                if fam == 6:
                    reply = r.answer(frame, now)
                    if reply is not None:
                        acts.frames.append(reply)
                        break
            return acts
        try:
            adv = pk.decode_frame(frame, l3=l3)
        except pk.NotVrrp:
            self.counters["rx_not_vrrp"] += 1
            return acts
        except pk.VrrpError as e:
            self._error(e, now)
            return acts
        r = self.routers.get((adv.family, adv.vrid))
        if r is None:
            self.counters["rx_err_vrid"] += 1
            self._log(now, "vrid", logging.INFO, "VRRP %s: advert for unknown VRID %d (IPv%d) "
                      "from %s", self.name or "segment", adv.vrid, adv.family, adv.src)
            return acts
        return r.rx_advert(adv, now)

    def _error(self, e, now):
        r = self.routers.get((e.family, e.vrid)) if e.vrid is not None else None
        if r is not None:
            r.count_error(e.reason, now, str(e))
        else:
            self.counters["rx_err_" + e.reason] += 1
            self._log(now, e.reason, logging.INFO, "VRRP %s: frame dropped: %s",
                      self.name or "segment", e)

    def status(self):
        return {"name": self.name, "vlan": self.vlan, "counters": dict(self.counters),
                "routers": [r.status() for r in self.routers.values()]}
