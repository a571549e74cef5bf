"""Vocabulary shared by the spanning tree machines and their adapter.

Who uses this: controller/stp/logic.py (Bridge facade), rstp.py and stp.py
(the two protocol engines) fill an `Actions`; the os-ken adapter reads it.
Nothing here does I/O.

Roles:  'root', 'designated', 'alternate', 'backup', 'disabled'
States: 802.1D (mode 'stp'):  'disabled', 'blocking', 'listening', 'learning', 'forwarding'
        802.1w (mode 'rstp'): 'disabled', 'discarding', 'learning', 'forwarding'
        ('disabled' = the port does not take part: link down, or shut by BPDU
        guard.  RSTP proper calls that "discarding with role disabled".)

How a port's (state, role) maps onto OpenFlow 1.3 (`port_config`):
the adapter sends OFPT_PORT_MOD with config=`PortChange.config` under
mask=`PORT_CONFIG_MASK` (NO_RECV | NO_FWD | NO_PACKET_IN), and keeps these
flows (all in table 0):

  * always, top priority:      eth_dst=01:80:c2:00:00:00 -> output:CONTROLLER
                               (max_len NO_BUFFER): every BPDU reaches the app.
  * state not 'forwarding' and not 'learning', just below it:
                               in_port=P -> drop (no instructions)
  * state 'learning':          in_port=P -> learn only (the l2 app records the
                               source MAC but forwards nothing from P)
  * a port that is not 'forwarding' must not be an output of any flow or
    flood: the l2 app floods to `Bridge.forwarding_ports()` explicitly.

  state/role                         config bits (under PORT_CONFIG_MASK)
  ---------------------------------  -----------------------------------
  'disabled' (any role)              NO_RECV | NO_FWD | NO_PACKET_IN
  role 'alternate' / 'backup'        NO_FWD
  root/designated, any other state   0

Why not NO_FWD on every non-forwarding port: on vdp (ext/pipeline.c
out_port) and on Open vSwitch, NO_FWD also drops PACKET_OUTs to the port, and
a designated port must send BPDUs (proposals, hellos) while it is still
discarding/listening/learning, a root port must send agreements and TCNs.
Alternate/backup ports only ever send RSTP agreements; losing those only
makes the peer's designated port wait 2 x forwardDelay (RSTP: 2 x hello)
on a link that carries no data anyway.  Why never NO_PACKET_IN on a live
port: vdp (ext/pipeline.c upcall_push) suppresses *every* packet-in from a
port with NO_PACKET_IN, BPDUs included, and a blocked port must keep hearing
BPDUs (os-ken's stplib relies on OVS's narrower reading of that bit).  NO_RECV
would drop BPDUs too, so it is only used for 'disabled'.

Order of work for the adapter, per Actions: 1) apply `ports` (PORT_MOD then
flows), 2) `flush` learned MACs, 3) send `tx` frames as PACKET_OUT
(in_port=CONTROLLER, actions=[output:port]).  Applying port changes first
matters when an alternate port (NO_FWD) becomes root and must send an
agreement in the same step.
"""
from __future__ import annotations

from dataclasses import dataclass, field

ROOT = "root"
DESIGNATED = "designated"
ALTERNATE = "alternate"
BACKUP = "backup"
DISABLED = "disabled"
ROLES = (ROOT, DESIGNATED, ALTERNATE, BACKUP, DISABLED)

BLOCKING = "blocking"
LISTENING = "listening"
LEARNING = "learning"
FORWARDING = "forwarding"
DISCARDING = "discarding"
STP_STATES = (DISABLED, BLOCKING, LISTENING, LEARNING, FORWARDING)
RSTP_STATES = (DISABLED, DISCARDING, LEARNING, FORWARDING)

# OpenFlow 1.3 ofp_port_config bits
OFPPC_PORT_DOWN = 1 << 0
OFPPC_NO_RECV = 1 << 2
OFPPC_NO_FWD = 1 << 5
OFPPC_NO_PACKET_IN = 1 << 6
PORT_CONFIG_MASK = OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN


def port_config(state: str, role: str) -> int:
    """OpenFlow port config bits (under PORT_CONFIG_MASK) for a port in
    `state` with `role`; see the module docstring for why."""
    if state == DISABLED:
        return OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN
    if role in (ALTERNATE, BACKUP):
        return OFPPC_NO_FWD
    return 0


# ------------------------------------------------------------------ path costs

# 802.1D-2004 Table 17-3 (recommended, "long" 32-bit costs): 20 Tb/s / speed
LONG_COST_MAX = 200_000_000
# 802.1D-1998 Table 8-5 (recommended, "short" 16-bit costs)
_SHORT_COSTS = ((10_000, 2), (1_000, 4), (100, 19), (16, 62), (10, 100), (4, 250))
UNKNOWN_SPEED_MBPS = 10     # what Linux's bridge assumes when a port cannot say


def path_cost(speed_mbps: float | None, method: str = "long") -> int:
    """Recommended port path cost for a link speed in Mb/s.

    method 'long' (802.1D-2004, RSTP default): 20,000,000 / Mb/s, within
    1..200,000,000 (10 Mb/s -> 2,000,000, 1 Gb/s -> 20,000, 10 Gb/s -> 2,000).
    method 'short' (802.1D-1998, STP default): 10 Mb/s -> 100, 100 Mb/s -> 19,
    1 Gb/s -> 4, 10 Gb/s and faster -> 2.
    An unknown speed (None or 0) counts as 10 Mb/s.
    """
    if method not in ("long", "short"):
        raise ValueError(f"cost method must be 'long' or 'short', not {method!r}")
    if not speed_mbps or speed_mbps <= 0:
        speed_mbps = UNKNOWN_SPEED_MBPS
    if method == "long":
        return int(max(1, min(LONG_COST_MAX, round(20_000_000 / speed_mbps))))
    for floor, cost in _SHORT_COSTS:
        if speed_mbps >= floor:
            return cost
    return 250


# ------------------------------------------------------------------ results

@dataclass
class PortChange:
    """The new spanning tree view of one port, after it changed."""
    port: int
    state: str
    role: str
    config: int                 # OpenFlow config bits, under PORT_CONFIG_MASK
    mask: int = PORT_CONFIG_MASK

    @property
    def forwarding(self) -> bool:
        return self.state == FORWARDING

    @property
    def learning(self) -> bool:
        """True when the port learns source MACs (learning or forwarding)."""
        return self.state in (LEARNING, FORWARDING)


@dataclass
class Actions:
    """What one call into a Bridge asks the adapter to do (see module doc
    for the order).

    tx      [(port_no, frame_bytes)] BPDUs to PACKET_OUT, in order
    ports   {port_no: PortChange} ports whose state or role changed during the
            call (final values only)
    flush   sorted port numbers whose learned MACs must be forgotten now
            (topology change)
    ageing  new MAC ageing time in seconds when it changed (802.1D short
            ageing: forward delay while the topology change flag is set,
            the configured ageing time after), else None
    events  human-readable log lines (root changes, role changes, guards,
            protocol migration, topology changes, malformed BPDUs)
    """
    tx: list = field(default_factory=list)
    ports: dict = field(default_factory=dict)
    flush: list = field(default_factory=list)
    ageing: float | None = None
    events: list = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.tx or self.ports or self.flush or self.ageing is not None or self.events)

    def merge(self, other: "Actions") -> "Actions":
        """Fold a later Actions into this one (later port views win)."""
        self.tx.extend(other.tx)
        self.ports.update(other.ports)
        self.flush = sorted(set(self.flush) | set(other.flush))
        if other.ageing is not None:
            self.ageing = other.ageing
        self.events.extend(other.events)
        return self
