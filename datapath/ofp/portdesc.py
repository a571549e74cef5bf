"""struct ofp_port for the switch agent: a Datapath port as OpenFlow describes it.

Who calls it: datapath/ofp/agent.py (FEATURES/PORT_DESC/PORT_STATUS).

config comes from the Datapath (Datapath.port_config: the PORT_MOD bits),
state from its link view (Datapath.port_link): LINK_DOWN when the carrier is
down, LIVE when the port can forward (link up and not PORT_DOWN; fast-failover
groups watch the same thing).  Speeds: a kernel interface's
/sys/class/net/IF/speed (Mb/s; veth and TAP report 10000), mapped onto the
ofp_port_features bit of that rate; ports without one (DummyPort, unknown
speed) report 0 (no features) as OVS does for them.
"""
from __future__ import annotations

from . import consts as C
from .multipart import PortDesc

# Mb/s -> full-duplex ofp_port_features bit
_SPEED_BITS = {10: C.OFPPF_10MB_FD, 100: C.OFPPF_100MB_FD, 1000: C.OFPPF_1GB_FD,
               10000: C.OFPPF_10GB_FD, 40000: C.OFPPF_40GB_FD, 100000: C.OFPPF_100GB_FD,
               1000000: C.OFPPF_1TB_FD}


def link_speed_mbps(port):
    """The kernel's idea of the interface's speed in Mb/s, or 0."""
    name = getattr(port, "name", None)
    if not name or not getattr(port, "ifindex", 0):
        return 0
    try:
        with open(f"/sys/class/net/{name}/speed") as f:
            v = int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0
    return v if v > 0 else 0


def port_features(mbps):
    """(curr feature bits, curr_speed in kb/s) for a speed in Mb/s."""
    if mbps <= 0:
        return 0, 0
    bit = _SPEED_BITS.get(mbps, C.OFPPF_OTHER)
    return bit | C.OFPPF_COPPER, mbps * 1000


def _hw(port):
    hw = getattr(port, "hw_addr", b"") or b""
    hw = bytes(hw) if not isinstance(hw, int) else hw.to_bytes(6, "big")
    return hw if len(hw) == 6 else b"\0" * 6


def port_state(link_up, config):
    state = 0
    if not link_up:
        state |= C.OFPPS_LINK_DOWN
    if link_up and not config & C.OFPPC_PORT_DOWN:
        state |= C.OFPPS_LIVE
    return state


def describe(dp, ofport, port, speed_cache=None):
    """PortDesc of port `ofport` (a Port attached to dp)."""
    try:
        config = int(dp.port_config(ofport))
    except Exception:
        config = 0
    try:
        link_up = bool(dp.port_link(ofport))
    except Exception:
        link_up = True
    if speed_cache is not None and ofport in speed_cache:
        mbps = speed_cache[ofport]
    else:
        mbps = link_speed_mbps(port)
        if speed_cache is not None:
            speed_cache[ofport] = mbps
    curr, speed = port_features(mbps)
    return PortDesc(port_no=ofport, hw_addr=_hw(port), name=str(getattr(port, "name", ""))[:15],
                    config=config, state=port_state(link_up, config), curr=curr,
                    advertised=0, supported=curr, peer=0, curr_speed=speed, max_speed=speed)
