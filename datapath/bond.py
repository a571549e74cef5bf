"""The bond control plane: one BondController per bond port of `vdp run`.

Who uses it: datapath/daemon.py (one controller per configured bond, driven
from its asyncio loop), datapath/ctl.py (`vdp ctl bond/show`, `lacp/show`
print status() / lacp_status()), tests (tests/unit/test_bond_control.py
drive it with DummyPort members and warped time).

A bond is ONE OpenFlow port (ext BondPort: the fast path picks a member per
packet, hash -> 256 buckets -> member).  The controller owns that BondPort
and the bond's LACP machines (datapath/lacp.py Bond, I/O-free) and joins
them:

  slow frames   BondPort.slow_fd() readable -> poll(now): slow_rx() ->
                lacp.rx() -> the frames it returns go out with
                send_on_member() (+ flush, so they leave at once)
  timers        tick(now) at next_deadline(): lacp.tick() and, every
                rebalance_interval, the load measurement/rebalancing
  member links  link(member, up, now) from the netlink link monitor
  after each    the distributing set -> BondPort.set_member(collecting,
                distributing) per member, the 256 buckets, and the bond's
                OpenFlow link state (on_link(up, why): the daemon's port
                link path, which sets Datapath.set_port_link and sends
                PORT_STATUS)

Nothing here reads a clock: every entry point takes `now` (monotonic
seconds).  attach(loop)/detach() add the asyncio glue (a reader on
slow_fd, a timer at next_deadline) for the daemon.

Bond modes (--bond-mode; OVS names in brackets)
  active-backup   all buckets on ONE member (the active one); when it stops
                  distributing the next distributing member (in member
                  order, after the failed one) takes over; no preemption
                  when it comes back.  Without LACP (or in LACP fallback)
                  only the active member collects: frames arriving on the
                  backups are dropped (as OVS and Linux bonding do).
  balance-l2      hash of the MAC pair + outer VLAN        (symmetric)
  balance-l3      hash of the IP address pair              (symmetric)
  balance-l4      hash of the 5-tuple [balance-tcp]        (symmetric)
  balance-slb     hash of source MAC + VLAN [balance-slb]
  The balance modes rebalance by measured load every rebalance_interval
  seconds (default 10, as OVS; 0 = never): the heaviest suitable buckets
  move from the most to the least loaded member while that narrows a gap
  bigger than max(100 kB, 1/32 of the lighter member's load).  Loads decay
  by half each interval (OVS habit) so old traffic fades.

LACP (--lacp active|passive|off, --lacp-time fast|slow, system priority,
system id (default: the first member's MAC), key (default: the bond's
OpenFlow port number), per-member port priority / port id, fallback):
  - negotiated: the members LACP puts in COLLECTING_DISTRIBUTING collect
    and distribute (coupled control); in active-backup only the active one
    of them transmits.
  - off: a static aggregation: a member distributes while its link is up.
  - fallback (lacp_fallback=True): when no member has a partner the bond
    runs active-backup on one member (lacp.py decides which).
  - no partner and no fallback: nothing distributes, the bond is down.

Bucket assignment (assign_buckets, pure, tested on its own):
  - the first distributing members get the even spread (bucket i -> the
    i-th member modulo the count, so every member gets 256/n);
  - a member that stops distributing gives its buckets to the others at
    once (each to the member with the fewest buckets); every other bucket
    stays where it is, so flows on surviving members do not move;
  - a member that starts distributing again takes back a fair share
    (256/n) moving as few buckets as possible: the members above their
    share give it first the buckets it had before it left (its flows come
    home), then those the even spread would give it.
"""
from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from typing import Optional

from . import lacp as L
from .lacpdu import mac_bytes, mac_str

log = logging.getLogger("vdp.bond")

N_BUCKETS = 256
BOND_MODES = ("active-backup", "balance-l2", "balance-l3", "balance-l4", "balance-slb")
MODE_ALIASES = {"balance-tcp": "balance-l4"}
HASH_OF = {"active-backup": "l4", "balance-l2": "l2", "balance-l3": "l3",
           "balance-l4": "l4", "balance-slb": "slb"}
LACP_MODES = L.MODES
LACP_TIMES = L.RATES
DEFAULT_MODE = "active-backup"          # OVS's default bond_mode
DEFAULT_LACP = "off"                    # OVS's default lacp
DEFAULT_LACP_TIME = "slow"              # OVS's default lacp-time
DEFAULT_SYSTEM_PRIORITY = 65534
DEFAULT_PORT_PRIORITY = 32768
DEFAULT_REBALANCE_INTERVAL = 10.0
REBALANCE_MIN_BYTES = 100_000           # a gap smaller than this is not worth moving flows
MAX_MEMBERS = 16                        # ext/port_bond.h VDP_BOND_MAX_MEMBERS
EVENT_HISTORY = 64


class BondError(ValueError):
    """A bad bond setting; the message is for the user."""


def normalize_mode(mode):
    """The canonical bond mode name, or BondError."""
    m = str(mode).strip().lower()
    m = MODE_ALIASES.get(m, m)
    if m not in BOND_MODES:
        raise BondError(f"bond mode must be one of {', '.join(BOND_MODES)} "
                        f"(or balance-tcp), not {mode!r}")
    return m


@dataclass
class MemberSettings:
    name: str
    port_priority: int = DEFAULT_PORT_PRIORITY
    port_id: Optional[int] = None           # LACP port number (default: 1, 2, ... in order)


@dataclass
class BondSettings:
    """One bond as configured (config.py builds these from flags/TOML)."""
    name: str
    members: list = field(default_factory=list)        # [MemberSettings] (str accepted)
    mode: str = DEFAULT_MODE
    lacp: str = DEFAULT_LACP
    lacp_time: str = DEFAULT_LACP_TIME
    system_priority: int = DEFAULT_SYSTEM_PRIORITY
    system_id: Optional[str] = None        # MAC; default: the first member's
    key: Optional[int] = None              # default: the bond's OpenFlow port number
    fallback: bool = False                 # lacp fallback to active-backup (OVS lacp-fallback-ab)
    rebalance_interval: float = DEFAULT_REBALANCE_INTERVAL

    def __post_init__(self):
        self.members = [m if isinstance(m, MemberSettings) else MemberSettings(str(m))
                        for m in self.members]

    def member_names(self):
        return [m.name for m in self.members]

    def validate(self):
        """Normalises and checks every field; raises BondError naming the bad one."""
        if not self.name or not isinstance(self.name, str) or len(self.name) > 15 \
                or "/" in self.name or any(c.isspace() for c in self.name):
            raise BondError(f"bad bond name {self.name!r} (1-15 characters, no spaces or '/')")
        where = f"bond {self.name}"
        if not self.members:
            raise BondError(f"{where}: no members")
        if len(self.members) > MAX_MEMBERS:
            raise BondError(f"{where}: {len(self.members)} members, at most {MAX_MEMBERS}")
        seen = set()
        ids = set()
        for m in self.members:
            if not m.name or not isinstance(m.name, str):
                raise BondError(f"{where}: bad member name {m.name!r}")
            if m.name in seen:
                raise BondError(f"{where}: member {m.name} given twice")
            seen.add(m.name)
            if not _u16(m.port_priority):
                raise BondError(f"{where}: member {m.name}: port priority must be 0..65535, "
                                f"not {m.port_priority!r}")
            if m.port_id is not None:
                if not _u16(m.port_id) or m.port_id == 0:
                    raise BondError(f"{where}: member {m.name}: port id must be 1..65535, "
                                    f"not {m.port_id!r}")
                if m.port_id in ids:
                    raise BondError(f"{where}: member {m.name}: port id {m.port_id} used twice")
                ids.add(m.port_id)
        try:
            self.mode = normalize_mode(self.mode)
        except BondError as e:
            raise BondError(f"{where}: {e}") from None
        if self.lacp not in LACP_MODES:
            raise BondError(f"{where}: lacp must be one of {', '.join(LACP_MODES)}, "
                            f"not {self.lacp!r}")
        if self.lacp_time not in LACP_TIMES:
            raise BondError(f"{where}: lacp-time must be fast or slow, not {self.lacp_time!r}")
        if not _u16(self.system_priority):
            raise BondError(f"{where}: lacp system priority must be 0..65535, "
                            f"not {self.system_priority!r}")
        if self.key is not None and (not _u16(self.key) or self.key == 0):
            raise BondError(f"{where}: lacp key must be 1..65535, not {self.key!r}")
        if self.system_id is not None:
            try:
                b = mac_bytes(self.system_id)
            except (TypeError, ValueError) as e:
                raise BondError(f"{where}: lacp system id: {e}") from None
            if b == b"\0" * 6 or b[0] & 1:
                raise BondError(f"{where}: lacp system id must be a non-zero unicast MAC, "
                                f"not {mac_str(b)}")
            self.system_id = mac_str(b)
        if not isinstance(self.fallback, bool):
            raise BondError(f"{where}: lacp fallback must be true or false, not {self.fallback!r}")
        try:
            ri = float(self.rebalance_interval)
        except (TypeError, ValueError):
            ri = -1.0
        if not 0 <= ri <= 86400:
            raise BondError(f"{where}: rebalance interval must be 0..86400 seconds, "
                            f"not {self.rebalance_interval!r}")
        self.rebalance_interval = ri
        return self


def _u16(v):
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xffff


# ---------------------------------------------------------------- buckets (pure)

def spread_buckets(members, n=N_BUCKETS):
    """The even spread: bucket i -> members[i % len(members)] (-1 without members)."""
    if not members:
        return [-1] * n
    return [members[i % len(members)] for i in range(n)]


def assign_buckets(table, dist, home=None, load=None):
    """The bucket table for distributing members `dist` (member ids in
    order), starting from `table` (old owners; -1 or a non-distributing
    member = no owner).

    home[b]: the member bucket b belongs to when everyone is up (who gets it
    back when it returns); load[b]: measured load (orphans are handed out
    heaviest first).  Only buckets without a distributing owner move, plus,
    when a member joins (owns nothing yet), the fewest buckets needed to
    give it its fair share.  Returns the new table (a new list)."""
    n_b = len(table)
    if not dist:
        return [-1] * n_b
    home = home if home is not None else [-1] * n_b
    load = load if load is not None else [0] * n_b
    order = {m: i for i, m in enumerate(dist)}
    new = list(table)
    counts = dict.fromkeys(dist, 0)
    for o in new:
        if o in counts:
            counts[o] += 1
    pool = [b for b, o in enumerate(new) if o not in counts]
    newcomers = {m for m in dist if counts[m] == 0}
    target = None
    if newcomers:
        base, extra = divmod(n_b, len(dist))
        # the +1s go to the members holding most now: fewer moves
        ranked = sorted(dist, key=lambda m: (-counts[m], order[m]))
        target = {m: base + (1 if i < extra else 0) for i, m in enumerate(ranked)}
        for m in dist:
            over = counts[m] - target[m]
            if over <= 0:
                continue
            mine = [b for b, o in enumerate(new) if o == m]
            # give first what a newcomer owned before, then buckets whose
            # home member is away, then the rest by lightest load (fewest
            # flows disturbed), in bucket order
            mine.sort(key=lambda b: (home[b] not in newcomers, home[b] in counts, load[b], b))
            for b in mine[:over]:
                new[b] = -1
                pool.append(b)
            counts[m] -= over
    pool.sort(key=lambda b: (-load[b], b))
    if target is not None:
        left = []
        for b in pool:                      # home buckets go home when there is room
            h = home[b]
            if h in counts and counts[h] < target[h]:
                new[b] = h
                counts[h] += 1
            else:
                left.append(b)
        for b in left:
            m = max(dist, key=lambda m: (target[m] - counts[m], -order[m]))
            new[b] = m
            counts[m] += 1
    else:
        mload = dict.fromkeys(dist, 0)
        for b, o in enumerate(new):
            if o in mload:
                mload[o] += load[b]
        for b in pool:
            m = min(dist, key=lambda m: (counts[m], mload[m], order[m]))
            new[b] = m
            counts[m] += 1
            mload[m] += load[b]
    return new


def rebalance_buckets(table, dist, load, min_bytes=REBALANCE_MIN_BYTES, max_moves=N_BUCKETS):
    """Moves loaded buckets from the most to the least loaded member of
    `dist` while the gap between them is big enough (> max(min_bytes, 1/32
    of the lighter load)) and some bucket of the heavier one would narrow
    it (its load under the gap; the one leaving the smallest gap).
    Returns (new table, [(bucket, from, to)])."""
    new = list(table)
    if len(dist) < 2:
        return new, []
    mload = dict.fromkeys(dist, 0)
    for b, o in enumerate(new):
        if o in mload:
            mload[o] += load[b]
    moves = []
    order = {m: i for i, m in enumerate(dist)}
    while len(moves) < max_moves:
        hi = max(dist, key=lambda m: (mload[m], -order[m]))
        lo = min(dist, key=lambda m: (mload[m], order[m]))
        gap = mload[hi] - mload[lo]
        if gap <= max(min_bytes, mload[lo] >> 5):
            break
        best, best_gap = None, None
        for b, o in enumerate(new):
            if o != hi or not 0 < load[b] < gap:
                continue
            g = abs(gap - 2 * load[b])
            if best is None or g < best_gap:
                best, best_gap = b, g
        if best is None:
            break
        new[best] = lo
        mload[hi] -= load[best]
        mload[lo] += load[best]
        moves.append((best, hi, lo))
    return new, moves


# ---------------------------------------------------------------- the controller

class BondController:
    """The control plane of one bond (see the module doc).

    port: the BondPort (members in the order of settings.members).
    ofport: its OpenFlow port number (default key, log lines).
    on_link(up, why): called when the bond's link changes (the daemon's
        port-link path: Datapath.set_port_link + PORT_STATUS); without it
        dp.set_port_link(ofport, up) is called when dp is given.
    flush(): sends queued LACPDUs at once (the facade's Datapath.flush);
        without it they leave with the engine's next pass (<= 10 ms idle).
    """

    def __init__(self, settings: BondSettings, port, *, ofport=None, dp=None, on_link=None,
                 flush=None, now=0.0):
        settings.validate()
        self.s = settings
        self.name = settings.name
        self.port = port
        self.ofport = ofport
        self.dp = dp
        self.on_link = on_link
        self.flush = flush
        self.n = int(port.n_members)
        names = [str(m.name) for m in port.members]
        if len(settings.members) != self.n:
            raise BondError(f"bond {self.name}: {len(settings.members)} members configured, "
                            f"the port has {self.n}")
        self.names = names
        self.mode = settings.mode
        system = settings.system_id or port.hw_addr
        key = settings.key
        if key is None:
            key = ofport if isinstance(ofport, int) and 1 <= ofport <= 0xffff else 1
        try:
            self.lacp = L.Bond(self.name, system, mode=settings.lacp, rate=settings.lacp_time,
                               system_priority=settings.system_priority, key=key,
                               fallback=settings.fallback)
            for i, (ms, p) in enumerate(zip(settings.members, port.members)):
                mac = bytes(p.hw_addr)
                self.lacp.add_member(i, port_id=ms.port_id, port_priority=ms.port_priority,
                                     mac=mac if any(mac) and not mac[0] & 1 else None,
                                     name=names[i])
        except L.LacpError as e:
            raise BondError(f"bond {self.name}: {e}") from None
        self.lacp.events()                          # the add lines are logged already
        port.set_mode(HASH_OF[self.mode])
        # the fast path starts with every member on; nothing is up yet
        self.flags = [(False, False)] * self.n
        for i in range(self.n):
            port.set_member(i, False, False)
        self.table = [-1] * N_BUCKETS
        port.set_buckets(self.table)
        self.home = spread_buckets(list(range(self.n)))
        self.load = [0] * N_BUCKETS                 # decayed bytes per bucket
        self.last_load = [0] * N_BUCKETS            # bytes in the last interval
        self.last_interval = None                   # its length, seconds
        self.tx_members = ()
        self.rx_members = ()
        self.active = None                          # active-backup / fallback member
        self.link_up = None
        self.link_state = [False] * self.n
        self.link_why = [""] * self.n
        self._gen = None
        self._now = float(now)
        self.rebalance_interval = float(settings.rebalance_interval)
        self.next_rebalance = None
        self._last_sample = float(now)
        if self.rebalance_interval > 0:
            self.next_rebalance = float(now) + self.rebalance_interval
        self.counters = {"bucket_moves": 0, "rebalance_moves": 0, "failovers": 0,
                         "slow_tx_queue_full": 0, "rebalances": 0}
        self.events = collections.deque(maxlen=EVENT_HISTORY)
        self._loop = None
        self._timer = None
        self._reader_fd = None
        self._apply(float(now), "start")

    # ------------------------------------------------------------ entry points
    def link(self, member, up, now, why=""):
        """Member link (carrier/admin) change; member = index or interface name."""
        i = self._idx(member)
        up = bool(up)
        now = self._clock(now)
        self.link_why[i] = why or ("up" if up else "down")
        if self.link_state[i] != up:
            self.link_state[i] = up
            self._event(f"member {self.names[i]}: link {'up' if up else 'down'}"
                        + (f" ({why})" if why and why not in ("up", "down") else ""))
        self._send(self.lacp.link(i, up, now))
        self._apply(now, f"{self.names[i]} link {'up' if up else 'down'}")

    def poll(self, now):
        """Drains received Slow Protocols frames into the LACP machines."""
        now = self._clock(now)
        out = []
        while True:
            batch = self.port.slow_rx(64)
            for i, frame in batch:
                out += self.lacp.rx(i, frame, now)
            if len(batch) < 64:
                break
        self._send(out)
        self._apply(now, "lacp")

    def tick(self, now):
        """Timers: LACP, and the load sampling / rebalancing when due."""
        now = self._clock(now)
        self._send(self.lacp.tick(now))
        self._apply(now, "lacp")
        if self.next_rebalance is not None and now >= self.next_rebalance:
            self.rebalance(now)

    def next_deadline(self):
        ds = [d for d in (self.lacp.next_deadline(), self.next_rebalance) if d is not None]
        return min(ds) if ds else None

    def rebalance(self, now):
        """Samples per-bucket load (bytes since the last sample) and, in a
        balance mode with 2+ distributing members, moves buckets from the
        most to the least loaded member when the gap is big enough."""
        now = self._clock(now)
        stats = self.port.bucket_stats()
        self.port.reset_bucket_stats()
        self.last_interval = max(0.0, now - self._last_sample)
        self._last_sample = now
        self.last_load = [int(s[1]) for s in stats]
        self.load = [(ld >> 1) + new for ld, new in zip(self.load, self.last_load)]
        if self.rebalance_interval > 0:
            self.next_rebalance = now + self.rebalance_interval
        self.counters["rebalances"] += 1
        if self.mode == "active-backup" or len(self.tx_members) < 2:
            return []
        new, moves = rebalance_buckets(self.table, list(self.tx_members), self.load)
        if moves:
            for b, _, to in moves:
                self.home[b] = to
            self._set_buckets(new)
            self.counters["rebalance_moves"] += len(moves)
            per = collections.Counter((f, t) for _, f, t in moves)
            self._event("rebalance: " + ", ".join(
                f"{n} bucket(s) {self.names[f]} -> {self.names[t]}" for (f, t), n in sorted(per.items())))
        return moves

    # ------------------------------------------------------------ state -> fast path
    def _apply(self, now, why):
        for line in self.lacp.events():
            self.events.append(line)
        gen = self.lacp.generation
        if gen == self._gen and self.link_up is not None:
            return
        self._gen = gen
        dist = self.lacp.distributing_members()
        negotiated = self.lacp.lacp_enabled and not self.lacp.fallback_active
        single = self.mode == "active-backup" or self.lacp.fallback_active
        if single:
            active = self._choose_active(dist)
            tx = (active,) if active is not None else ()
            rx = tuple(dist) if negotiated else tx
        else:
            if self.active is not None:
                self.active = None
            tx = rx = tuple(dist)
        for i in range(self.n):
            f = (i in rx, i in tx)
            if f != self.flags[i]:
                self.port.set_member(i, f[0], f[1])
                old = self.flags[i]
                self.flags[i] = f
                self._event(f"member {self.names[i]}: {_flag_words(old)} -> {_flag_words(f)}")
        old_tx = self.tx_members
        self.tx_members, self.rx_members = tx, rx
        if single:
            table = [tx[0] if tx else -1] * N_BUCKETS
        else:
            table = assign_buckets(self.table, list(tx), self.home, self.load)
            joined = set(tx) - set(old_tx)
            for b, o in enumerate(table):
                # a bucket a newcomer took from a member that is up (not
                # one whose home member is away) is the newcomer's now
                if o in joined and o != self.home[b] and self.home[b] in tx:
                    self.home[b] = o
        if table != self.table:
            moved = collections.Counter((self.table[b], table[b]) for b in range(N_BUCKETS)
                                        if self.table[b] != table[b])
            self._set_buckets(table)
            self.counters["bucket_moves"] += sum(moved.values())
            self._event("buckets: " + ", ".join(
                f"{n} {self._nm(f)} -> {self._nm(t)}" for (f, t), n in sorted(moved.items()))
                + f" ({why})", logging.DEBUG if not old_tx and not tx else logging.INFO)
        up = bool(tx)
        if up != self.link_up:
            self.link_up = up
            reason = (f"{len(tx)} member(s) distributing" if up
                      else "no member distributing")
            self._event(f"bond link {'up' if up else 'down'}: {reason}")
            self._report_link(up, reason)

    def _choose_active(self, dist):
        if self.active in dist:
            return self.active
        old = self.active
        if not dist:
            if old is not None:
                self._event(f"active member {self.names[old]} lost: no member left")
                self.active = None
            return None
        if old is None:
            new = dist[0]
        else:                                  # the next after the failed one, in member order
            after = [m for m in dist if m > old]
            new = after[0] if after else dist[0]
            self.counters["failovers"] += 1
        self.active = new
        self._event(f"active member: {self._nm(old)} -> {self.names[new]}")
        return new

    def _set_buckets(self, table):
        self.port.set_buckets(table)
        self.table = list(table)

    def _report_link(self, up, why):
        try:
            if self.on_link is not None:
                self.on_link(up, why)
            elif self.dp is not None and self.ofport is not None:
                self.dp.set_port_link(self.ofport, up)
        except Exception:
            log.exception("%s: reporting the bond link failed", self.name)

    def _send(self, frames):
        if not frames:
            return
        for i, f in frames:
            if not self.port.send_on_member(i, f):
                self.counters["slow_tx_queue_full"] += 1
        if self.flush is not None:
            try:
                self.flush()
            except Exception:
                log.exception("%s: flush failed", self.name)

    # ------------------------------------------------------------ asyncio glue
    def attach(self, loop):
        """Drive this controller from an asyncio loop (its time() is the
        monotonic clock): a reader on slow_fd and a timer at next_deadline."""
        self._loop = loop
        self._reader_fd = self.port.slow_fd()
        loop.add_reader(self._reader_fd, self._on_slow)
        self._schedule()

    def detach(self):
        if self._loop is not None:
            if self._reader_fd is not None:
                try:
                    self._loop.remove_reader(self._reader_fd)
                except Exception:
                    pass
            if self._timer is not None:
                self._timer.cancel()
        self._loop = self._timer = self._reader_fd = None

    def link_event(self, member, up, why=""):
        """link() at the loop's time (the daemon's link monitor callback)."""
        self.link(member, up, self._loop.time() if self._loop else self._now, why)
        self._schedule()

    def _on_slow(self):
        try:
            self.poll(self._loop.time())
        except Exception:
            log.exception("%s: LACP receive failed", self.name)
        self._schedule()

    def _on_timer(self):
        self._timer = None
        try:
            self.tick(self._loop.time())
        except Exception:
            log.exception("%s: LACP timers failed", self.name)
        self._schedule()

    def _schedule(self):
        if self._loop is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        now = self._loop.time()
        d = self.next_deadline()
        # wake at least once a second whatever happens (belt and braces)
        at = now + 1.0 if d is None else min(max(d, now), now + 1.0)
        self._timer = self._loop.call_at(at, self._on_timer)

    # ------------------------------------------------------------ views
    def bucket_counts(self):
        c = collections.Counter(self.table)
        return [c.get(i, 0) for i in range(self.n)]

    def member_load(self):
        """Bytes sent per member in the last sampling interval (by bucket)."""
        out = [0] * self.n
        for b, o in enumerate(self.table):
            if 0 <= o < self.n:
                out[o] += self.last_load[b]
        return out

    def lacp_status_word(self):
        if not self.lacp.lacp_enabled:
            return "off"
        if self.lacp.negotiated:
            return "negotiated"
        return "configured"

    def status(self, now=None):
        """JSON-ready view for `vdp ctl bond/show`."""
        counts = self.bucket_counts()
        loads = self.member_load()
        pc = self.port.counters()
        members = []
        for i in range(self.n):
            st = self.port.member_stats(i)
            c, d = self.flags[i]
            members.append({
                "member": i, "name": self.names[i], "link_up": self.link_state[i],
                "link": self.link_why[i] or ("up" if self.link_state[i] else "down"),
                "enabled": d, "collecting": c, "distributing": d,
                "active": self.active == i, "buckets": counts[i], "load_bytes": loads[i],
                "lacp": self._member_lacp_word(i),
                "rx_packets": st["rx_packets"], "tx_packets": st["tx_packets"],
                "rx_bytes": st["rx_bytes"], "tx_bytes": st["tx_bytes"],
                "rx_dropped": st["rx_dropped"], "tx_dropped": st["tx_dropped"],
                "rx_errors": st["rx_errors"], "tx_errors": st["tx_errors"],
                "not_collecting_dropped": st["not_collecting_dropped"],
                "slow_rx": st["slow_rx"], "slow_tx": st["slow_tx"],
                "fallback_tx": st["fallback_tx"],
            })
        nr = None
        if self.next_rebalance is not None and now is not None:
            nr = max(0, int((self.next_rebalance - now) * 1000))
        lc = self.lacp.counters()
        return {
            "name": self.name, "ofport": self.ofport, "mode": self.mode,
            "hash": self.port.mode, "lacp": self.s.lacp, "lacp_time": self.s.lacp_time,
            "lacp_status": self.lacp_status_word(), "lacp_fallback": self.s.fallback,
            "fallback_active": self.lacp.fallback_active, "link_up": bool(self.link_up),
            "active_member": None if self.active is None else self.names[self.active],
            "distributing": [self.names[i] for i in self.tx_members],
            "collecting": [self.names[i] for i in self.rx_members],
            "rebalance_interval": self.rebalance_interval, "next_rebalance_ms": nr,
            "load_interval": self.last_interval,
            "members": members,
            "counters": dict(pc, **self.counters),
            "lacp_counters": {k: v for k, v in lc.items() if k != "errors"},
            "lacp_errors": dict(lc.get("errors", {})),
            "events": list(self.events)[-16:],
        }

    def _member_lacp_word(self, i):
        if not self.lacp.lacp_enabled:
            return "off"
        m = self.lacp.members[i]
        return f"{m.rx_state.lower()} {m.mux.lower()}" + (" looped" if m.looped else "")

    def lacp_status(self):
        """JSON-ready view for `vdp ctl lacp/show` (lacp.Bond.status() plus
        the bond's port, status word and member names)."""
        st = self.lacp.status()
        st["ofport"] = self.ofport
        st["status"] = self.lacp_status_word()
        st["bond_mode"] = self.mode
        for m in st["members"]:
            m["name"] = self.names[m["member"]]
        st["distributing"] = [self.names[i] for i in st["distributing"]]
        if st.get("fallback_member") is not None:
            st["fallback_member"] = self.names[st["fallback_member"]]
        return st

    # ------------------------------------------------------------ helpers
    def _idx(self, member):
        if isinstance(member, int) and not isinstance(member, bool):
            if 0 <= member < self.n:
                return member
        elif member in self.names:
            return self.names.index(member)
        raise BondError(f"bond {self.name}: no member {member!r}")

    def _nm(self, i):
        return "none" if i is None or i < 0 else self.names[i]

    def _clock(self, now):
        now = float(now)
        if now < self._now:
            now = self._now
        self._now = now
        return now

    def _event(self, text, level=logging.INFO):
        line = f"{self.name}: {text}"
        self.events.append(line)
        log.log(level, "%s", line)

    def close(self):
        self.detach()


def _flag_words(f):
    c, d = f
    if c and d:
        return "collecting+distributing"
    if c:
        return "collecting"
    if d:
        return "distributing"
    return "disabled"
