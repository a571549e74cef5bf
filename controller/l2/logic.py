"""VLAN-aware learning switch for one datapath, I/O-free.

Who calls this: controller/l2/app.py (the os-ken adapter) turns OpenFlow
events into calls here and sends the OpenFlow 1.3 messages each call returns
(os-ken `ofproto_v1_3_parser` objects built on the datapath given to
`switch_up`); a spanning tree app calls `set_port_forwarding` and `flush`;
tests/unit/test_l2_logic.py drives it with os-ken-built messages and runs
the returned flows in a fake switch (tests/unit/fakeofp.py).  Nothing here
sleeps, reads a clock or does I/O: time is the `now` argument (seconds, any
monotonic origin).

The pipeline (three tables from `config.table`, T = that first table):

  T   ingress / VLAN admission
        3000  eth_dst=01:80:c2:00:00:0X (link-local: BPDU, LACP, LLDP) -> drop
        2000  in_port=P -> drop             P not forwarding (spanning tree)
              in_port=P -> CONTROLLER       P learning: learn, forward nothing
        1000  in_port=P, no tag -> push_vlan, set vlan_vid=V, goto T+1
                                             (access VLAN V / trunk native V)
        1000  in_port=P, vlan_vid=V -> goto T+1   (V tagged on trunk P)
           0  -> drop                       (other VLANs, tags on access ports)
  T+1 eth_src: is the source known on this port?
        2000  eth_src multicast -> drop     (never a valid source)
        1000  in_port=P, vlan_vid=V, eth_src=M -> goto T+2   (learned; idle t)
        1000  in_port=P, vlan_vid=V, eth_src=M -> goto T+2   (MAC limit hit:
                                             not learned, hard timeout 10 s)
           0  -> CONTROLLER (whole frame) + goto T+2
  T+2 eth_dst
        1000  vlan_vid=V, eth_dst=M -> [pop_vlan] output:P   (learned; idle t+)
         100  vlan_vid=V, in_port=P -> output tagged members, pop_vlan, output
                                        untagged members (flood, P excluded)
           0  -> drop

Inside tables T+1 and T+2 every frame carries its VLAN tag (pushed at
ingress for untagged ports), so one flood flow per (VLAN, in_port) reaches
tagged and untagged members alike.  Flood lists are explicit outputs over
the ports that are present, link up and *forwarding* (never OFPP_FLOOD),
and never include the ingress port; they are regenerated (only the flows
that change) whenever membership changes: port add/delete/link, spanning
tree state, configuration.

Learning is Faucet's: a frame whose (port, VLAN, source) has no flow in
T+1 is copied to the controller and goes on to T+2 in the switch, so the
controller never sends packet-outs.  A packet-in teaches (VLAN, MAC) ->
port and installs a src flow (T+1, idle timeout t) and a dst flow (T+2,
idle timeout t + t/10), both with SEND_FLOW_REM and the same cookie (a
fresh one whenever they are (re)installed, so FLOW_REMOVEDs of replaced
flows are recognisably stale).
When either flow is removed (idle/hard timeout, or deleted by someone
else) the FLOW_REMOVED makes the logic forget the MAC and delete the other
flow, so a host that goes quiet is forgotten whole and relearned on its
next frame.  A MAC heard on another port (host moved) misses in T+1 there:
the old flows are deleted and new ones installed.

Cookies: every flow of this app carries 0x4c32 ("L2") in the top 16 bits
(COOKIE_APP) and a kind in the next 8 bits; other apps' flows are never
touched (deletes use the cookie mask), and only packet-ins from this app's
flows are handled.  Priorities in table T stay below 4000: a spanning tree
app puts its BPDU -> CONTROLLER flow above (e.g. 0xffff).  Port blocking is
done here (the 2000 flows), driven by `set_port_forwarding`.

Spanning tree API (the STP app, via app.py):
  set_port_forwarding(port, allowed, now, learning=False) -> msgs
      allowed: the port forwards (STP 'forwarding'); else learning=True
      ('learning' state) records source MACs without forwarding anything
      from or to the port; else the port is discarding.  Leaving
      forwarding flushes the port's MACs; entering it installs the MACs
      learned meanwhile.  The state is kept for ports not (yet) seen.
  flush(ports=None, now) -> msgs      forget MACs (of those ports, or all)
  set_ageing(seconds|None, now) -> msgs   802.1D short ageing (None: back
      to the configured idle timeout); learned flows are reinstalled with it.
  forwarding_default (constructor): the state of ports never set (True
      without STP; an STP app starts with False so nothing forwards before
      the protocol has spoken).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from controller.l2.config import DatapathConfig, PortConfig

LOG = logging.getLogger("controller.l2")

# -------------------------------------------------------------- cookies
COOKIE_APP = 0x4C32 << 48
COOKIE_APP_MASK = 0xFFFF << 48
KIND_SHIFT = 40
SERIAL_MASK = (1 << KIND_SHIFT) - 1
KIND_MASK = COOKIE_APP_MASK | (0xFF << KIND_SHIFT)
ALL_ONES = (1 << 64) - 1

K_STATIC = 0x01        # table-miss and fixed flows
K_PORT = 0x02          # VLAN admission of one port (serial: port number)
K_BLOCK = 0x03         # spanning tree block / learn-only of one port (serial: port)
K_LEARN_MISS = 0x04    # the T+1 miss flow: its packet-ins are learning requests
K_FLOOD = 0x05         # flood flows of one VLAN (serial: VLAN id)
K_LEARNED = 0x10       # a learned MAC (serial: per-entry generation)
K_NOLEARN = 0x11       # MAC limit reached: pass without learning
LEARNED_MASK = COOKIE_APP_MASK | (0xF0 << KIND_SHIFT)   # K_LEARNED and K_NOLEARN


def make_cookie(kind: int, serial: int = 0) -> int:
    return COOKIE_APP | (kind << KIND_SHIFT) | (serial & SERIAL_MASK)


def cookie_kind(cookie: int) -> int | None:
    """The kind of one of our cookies, None for anybody else's."""
    if cookie is None or (cookie & COOKIE_APP_MASK) != COOKIE_APP:
        return None
    return (cookie >> KIND_SHIFT) & 0xFF


# -------------------------------------------------------------- priorities
PRIO_MISS = 0
PRIO_FLOOD = 100
PRIO_VLAN = 1000
PRIO_LEARNED = 1000
PRIO_BAD_SRC = 2000
PRIO_BLOCK = 2000
PRIO_LINK_LOCAL = 3000
PRIO_TOP = 3999        # the highest priority this app uses

LINK_LOCAL = ("01:80:c2:00:00:00", "ff:ff:ff:ff:ff:f0")
MULTICAST_BIT = ("01:00:00:00:00:00", "01:00:00:00:00:00")

NOLEARN_HARD_TIMEOUT = 10     # s: how long a source over the MAC limit goes unasked
REFRESH_S = 1.0               # a known MAC's packet-in reinstalls its flows at most this often

OFPVID_PRESENT = 0x1000
OFPVID_NONE = 0x0000
ETH_TYPE_8021Q = 0x8100
VLAN_TPIDS = (0x8100, 0x88A8)


def mac_str(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def parse_eth(data: bytes):
    """(dst, src, vid|None) of an Ethernet frame, None if too short."""
    if data is None or len(data) < 14:
        return None
    vid = None
    if int.from_bytes(data[12:14], "big") in VLAN_TPIDS and len(data) >= 18:
        vid = int.from_bytes(data[14:16], "big") & 0x0FFF
    return mac_str(data[0:6]), mac_str(data[6:12]), vid


def is_multicast(mac: str) -> bool:
    return int(mac[0:2], 16) & 1 == 1


@dataclass
class MacEntry:
    vlan: int
    mac: str
    port: int
    cookie: int
    learned_at: float
    installed: bool = False       # its two flows were sent (port forwarding)
    refreshed_at: float = 0.0


@dataclass
class PortInfo:
    no: int
    name: str
    live: bool                    # link up and not administratively down
    config: PortConfig | None     # None: not ours (disabled / default_vlan 0)


class L2Switch:
    """The learning switch of one datapath (see the module docstring)."""

    def __init__(self, config: DatapathConfig | None = None, forwarding_default: bool = True):
        self.config = config or DatapathConfig()
        self.forwarding_default = forwarding_default
        self.dp = None
        self.ofp = None
        self.parser = None
        self.ports: dict[int, PortInfo] = {}
        self.port_state: dict[int, tuple] = {}       # port -> (forwarding, learning), set by STP
        self.macs: dict[tuple, MacEntry] = {}        # (vlan, mac) -> entry
        self.by_cookie: dict[int, MacEntry] = {}
        self.vlan_count: dict[int, int] = {}
        self.flood_installed: dict[tuple, tuple] = {}   # (vlan, in_port) -> action key
        self.blocked: dict[int, bool] = {}           # port -> learning? (block flow installed)
        self.ageing: float | None = None
        self._serial = 0
        self.counters = dict(learned=0, moves=0, expired=0, limited=0, flushed=0)

    # ------------------------------------------------------------ helpers
    @property
    def t_in(self):
        return self.config.table

    @property
    def t_src(self):
        return self.config.table + 1

    @property
    def t_dst(self):
        return self.config.table + 2

    @property
    def idle_timeout(self) -> int:
        t = self.ageing if self.ageing is not None else self.config.idle_timeout
        return max(1, min(int(round(t)), 0xFFFF))

    @property
    def dst_idle_timeout(self) -> int:
        t = self.idle_timeout
        return min(t + max(1, t // 10), 0xFFFF)

    def forwarding(self, port: int) -> bool:
        return self.port_state.get(port, (self.forwarding_default, False))[0]

    def learning(self, port: int) -> bool:
        f, lrn = self.port_state.get(port, (self.forwarding_default, False))
        return f or lrn

    def _ours(self, port: int) -> PortInfo | None:
        p = self.ports.get(port)
        return p if p is not None and p.config is not None else None

    def vlan_members(self, vlan: int) -> list[int]:
        """Ports a flood of `vlan` reaches: ours, link up, forwarding."""
        return sorted(no for no, p in self.ports.items()
                      if p.config is not None and p.live and self.forwarding(no)
                      and p.config.carries(vlan))

    def classify(self, port: int, vid: int | None) -> int | None:
        """The VLAN a frame from `port` with tag `vid` (None: untagged)
        belongs to, None if the port does not admit it.  A frame tagged
        with the port's untagged VLAN counts too: packet-ins from T+1 show
        the tag pushed at ingress."""
        p = self._ours(port)
        if p is None:
            return None
        pc = p.config
        if vid is None or vid == 0:
            return pc.untagged
        return vid if pc.carries(vid) else None

    # ------------------------------------------------------------ message builders
    def _match(self, **kw):
        return self.parser.OFPMatch(**kw)

    def _apply(self, actions):
        return self.parser.OFPInstructionActions(self.ofp.OFPIT_APPLY_ACTIONS, list(actions))

    def _goto(self, table):
        return self.parser.OFPInstructionGotoTable(table)

    def _out(self, port, max_len=0):
        return self.parser.OFPActionOutput(port, max_len)

    def _to_controller(self):
        return self._out(self.ofp.OFPP_CONTROLLER, self.ofp.OFPCML_NO_BUFFER)

    def _add(self, table, priority, match, insts, cookie, idle=0, hard=0, flags=0):
        return self.parser.OFPFlowMod(
            datapath=self.dp, cookie=cookie, table_id=table, command=self.ofp.OFPFC_ADD,
            idle_timeout=idle, hard_timeout=hard, priority=priority,
            buffer_id=self.ofp.OFP_NO_BUFFER, out_port=self.ofp.OFPP_ANY,
            out_group=self.ofp.OFPG_ANY, flags=flags, match=match, instructions=list(insts))

    def _delete(self, table, match=None, cookie=0, cookie_mask=0, out_port=None,
                strict=False, priority=0):
        ofp = self.ofp
        return self.parser.OFPFlowMod(
            datapath=self.dp, cookie=cookie, cookie_mask=cookie_mask, table_id=table,
            command=ofp.OFPFC_DELETE_STRICT if strict else ofp.OFPFC_DELETE,
            priority=priority, buffer_id=ofp.OFP_NO_BUFFER,
            out_port=ofp.OFPP_ANY if out_port is None else out_port,
            out_group=ofp.OFPG_ANY, match=match if match is not None else self._match())

    # ------------------------------------------------------------ the switch
    def switch_up(self, dp, now: float) -> list:
        """The switch (re)connected: forget what it had, install the fixed
        flows and ask for its ports (the reply goes to `port_desc`).
        Spanning tree states and the ageing override survive reconnects."""
        self.dp = dp
        self.ofp = dp.ofproto
        self.parser = dp.ofproto_parser
        self.ports.clear()
        self.macs.clear()
        self.by_cookie.clear()
        self.vlan_count.clear()
        self.flood_installed.clear()
        self.blocked.clear()
        return self._fixed_flows() + [self.parser.OFPPortDescStatsRequest(dp, 0)]

    def switch_down(self):
        """The connection is gone; state waits for the next switch_up."""
        self.dp = None

    def _fixed_flows(self) -> list:
        ofp = self.ofp
        st = make_cookie(K_STATIC)
        return [
            # everything of ours from an earlier run, in every table
            self._delete(ofp.OFPTT_ALL, cookie=COOKIE_APP, cookie_mask=COOKIE_APP_MASK),
            self._add(self.t_in, PRIO_MISS, self._match(), [], st),
            self._add(self.t_in, PRIO_LINK_LOCAL, self._match(eth_dst=LINK_LOCAL), [], st),
            self._add(self.t_src, PRIO_MISS, self._match(),
                      [self._apply([self._to_controller()]), self._goto(self.t_dst)],
                      make_cookie(K_LEARN_MISS)),
            self._add(self.t_src, PRIO_BAD_SRC, self._match(eth_src=MULTICAST_BIT), [], st),
            self._add(self.t_dst, PRIO_MISS, self._match(), [], st),
        ]

    # ------------------------------------------------------------ ports
    @staticmethod
    def _live(ofp, port) -> bool:
        return not (port.config & ofp.OFPPC_PORT_DOWN) and not (port.state & ofp.OFPPS_LINK_DOWN)

    def port_desc(self, ports, now: float) -> list:
        """PORT_DESC reply body (os-ken OFPPort list): the switch's ports."""
        if self.dp is None:
            return []
        msgs = []
        for p in ports:
            msgs += self._port_seen(p.port_no, _name(p), self._live(self.ofp, p))
        return msgs + self._regen_flood()

    def port_status(self, msg, now: float) -> list:
        """PORT_STATUS (os-ken OFPPortStatus): add, delete, modify (link)."""
        if self.dp is None:
            return []
        ofp = self.ofp
        p = msg.desc
        if msg.reason == ofp.OFPPR_DELETE:
            msgs = self._port_gone(p.port_no)
        else:
            msgs = self._port_seen(p.port_no, _name(p), self._live(ofp, p))
        return msgs + self._regen_flood()

    def _port_seen(self, no: int, name: str, live: bool) -> list:
        """A port exists (new or modified); flood lists are left to the caller."""
        if no > self.ofp.OFPP_MAX:
            return []
        old = self.ports.get(no)
        if old is not None:
            was = old.live
            old.live, old.name = live, name
            if was and not live and old.config is not None:
                LOG.info("l2 %s: port %d link down: flushing its MACs", self.config.label, no)
                return self._flush_ports([no])
            return []
        info = PortInfo(no, name, live, self.config.port(no))
        self.ports[no] = info
        if info.config is None:
            return []
        return self._admission_flows(info) + self._block_flow(no)

    def _port_gone(self, no: int) -> list:
        info = self.ports.pop(no, None)
        if info is None or info.config is None:
            return []
        msgs = self._flush_ports([no])
        msgs.append(self._delete(self.t_in, cookie=make_cookie(K_PORT, no), cookie_mask=ALL_ONES))
        if self.blocked.pop(no, None) is not None:
            msgs.append(self._block_delete(no))
        return msgs

    def _admission_flows(self, info: PortInfo) -> list:
        pc = info.config
        ck = make_cookie(K_PORT, info.no)
        msgs = []
        if pc.untagged is not None:
            msgs.append(self._add(
                self.t_in, PRIO_VLAN, self._match(in_port=info.no, vlan_vid=OFPVID_NONE),
                [self._apply([self.parser.OFPActionPushVlan(ETH_TYPE_8021Q),
                              self.parser.OFPActionSetField(vlan_vid=OFPVID_PRESENT | pc.untagged)]),
                 self._goto(self.t_src)], ck))
        for v in sorted(pc.tagged):
            msgs.append(self._add(
                self.t_in, PRIO_VLAN, self._match(in_port=info.no, vlan_vid=OFPVID_PRESENT | v),
                [self._goto(self.t_src)], ck))
        return msgs

    # ------------------------------------------------------------ spanning tree
    def set_port_forwarding(self, port: int, allowed: bool, now: float,
                            learning: bool = False) -> list:
        """Spanning tree state of `port` (see the module docstring)."""
        old_fwd = self.forwarding(port)
        learning = bool(learning or allowed)
        self.port_state[port] = (bool(allowed), learning)
        if self.dp is None or self._ours(port) is None:
            return []
        msgs = self._block_flow(port)
        if not allowed and (old_fwd or not learning):
            msgs += self._flush_ports([port])
        if allowed and not old_fwd:
            for e in list(self.macs.values()):
                if e.port == port and not e.installed:
                    msgs += self._install(e, now)
        return msgs + self._regen_flood()

    def _block_flow(self, port: int) -> list:
        """Make table T's block flow for `port` match its state."""
        if self.forwarding(port):
            if self.blocked.pop(port, None) is not None:
                return [self._block_delete(port)]
            return []
        lrn = self.learning(port)
        if self.blocked.get(port) == lrn:
            return []
        self.blocked[port] = lrn
        insts = [self._apply([self._to_controller()])] if lrn else []
        return [self._add(self.t_in, PRIO_BLOCK, self._match(in_port=port), insts,
                          make_cookie(K_BLOCK, port))]

    def _block_delete(self, port: int):
        return self._delete(self.t_in, self._match(in_port=port), strict=True,
                            priority=PRIO_BLOCK)

    def flush(self, ports=None, now: float = 0.0) -> list:
        """Forget learned MACs of `ports` (all when None) and delete their
        flows: a topology change."""
        if ports is None:
            n = len(self.macs)
            self._forget_all()
            self.counters["flushed"] += n
            if self.dp is None:
                return []
            return [self._delete(self.ofp.OFPTT_ALL, cookie=make_cookie(K_LEARNED),
                                 cookie_mask=LEARNED_MASK)]
        return self._flush_ports(sorted(set(ports)))

    def _flush_ports(self, ports) -> list:
        ports = set(ports)
        for e in [e for e in self.macs.values() if e.port in ports]:
            self._forget(e)
            self.counters["flushed"] += 1
        if self.dp is None:
            return []
        msgs = []
        for p in sorted(ports):
            if p > self.ofp.OFPP_MAX:
                continue
            msgs.append(self._delete(self.t_src, self._match(in_port=p),
                                     cookie=make_cookie(K_LEARNED), cookie_mask=LEARNED_MASK))
            msgs.append(self._delete(self.t_dst, cookie=make_cookie(K_LEARNED),
                                     cookie_mask=LEARNED_MASK, out_port=p))
        return msgs

    def set_ageing(self, seconds: float | None, now: float) -> list:
        """Idle timeout of learned MACs (None: the configured one)."""
        old = self.idle_timeout
        self.ageing = seconds
        if self.idle_timeout == old or self.dp is None:
            return []
        msgs = []
        for e in self.macs.values():
            if e.installed:
                msgs += self._install(e, now)
        return msgs

    # ------------------------------------------------------------ flooding
    def _flood_actions(self, vlan: int, in_port: int, members) -> tuple:
        outs = [m for m in members if m != in_port]
        tagged = [m for m in outs if vlan in self.ports[m].config.tagged]
        untagged = [m for m in outs if self.ports[m].config.untagged == vlan]
        return tuple(tagged), tuple(untagged)

    def _regen_flood(self) -> list:
        """Flood flows as membership says now: ADD what differs, delete
        what is gone."""
        if self.dp is None:
            return []
        vlans = set()
        for p in self.ports.values():
            if p.config is not None:
                vlans |= p.config.vlans
        want = {}
        for v in sorted(vlans):
            members = self.vlan_members(v)
            for m in members:
                want[(v, m)] = self._flood_actions(v, m, members)
        msgs = []
        for key in sorted(self.flood_installed):
            if key not in want:
                v, p = key
                msgs.append(self._delete(self.t_dst, self._match(in_port=p, vlan_vid=OFPVID_PRESENT | v),
                                         strict=True, priority=PRIO_FLOOD))
                del self.flood_installed[key]
        for key in sorted(want):
            if self.flood_installed.get(key) == want[key]:
                continue
            v, p = key
            tagged, untagged = want[key]
            acts = [self._out(t) for t in tagged]
            if untagged:
                acts.append(self.parser.OFPActionPopVlan())
                acts += [self._out(u) for u in untagged]
            msgs.append(self._add(self.t_dst, PRIO_FLOOD,
                                  self._match(in_port=p, vlan_vid=OFPVID_PRESENT | v),
                                  [self._apply(acts)] if acts else [], make_cookie(K_FLOOD, v)))
            self.flood_installed[key] = want[key]
        return msgs

    # ------------------------------------------------------------ learning
    def packet_in(self, msg, now: float) -> list:
        """PACKET_IN (os-ken OFPPacketIn).  Only those from this app's
        learning flows are handled; others (e.g. BPDUs for STP) give []."""
        kind = cookie_kind(getattr(msg, "cookie", None))
        if kind not in (K_LEARN_MISS, K_BLOCK) or self.dp is None:
            return []
        in_port = msg.match.get("in_port")
        eth = parse_eth(msg.data)
        if in_port is None or eth is None:
            return []
        _dst, src, vid = eth
        vlan = self.classify(in_port, vid)
        if vlan is None or not self.learning(in_port):
            return []
        return self.learn(vlan, src, in_port, now)

    def learn(self, vlan: int, mac: str, port: int, now: float) -> list:
        """(vlan, mac) was heard on port."""
        mac = mac.lower()
        if is_multicast(mac) or mac == "00:00:00:00:00:00":
            return []
        msgs = []
        e = self.macs.get((vlan, mac))
        if e is not None:
            if e.port == port:
                if not self.forwarding(port):
                    return []
                if e.installed and now - e.refreshed_at < REFRESH_S:
                    return []
                # its flows were lost (or are still on their way): again
                return self._install(e, now)
            LOG.info("l2 %s: %s (VLAN %d) moved from port %d to port %d",
                     self.config.label, mac, vlan, e.port, port)
            self.counters["moves"] += 1
            msgs += self._forget(e, delete_flows=True)
        limit = self.config.mac_limit
        if limit and self.vlan_count.get(vlan, 0) >= limit:
            self.counters["limited"] += 1
            LOG.debug("l2 %s: VLAN %d at its MAC limit %d: %s not learned",
                      self.config.label, vlan, limit, mac)
            return msgs + [self._add(
                self.t_src, PRIO_LEARNED, self._src_match(vlan, mac, port),
                [self._goto(self.t_dst)], make_cookie(K_NOLEARN), hard=NOLEARN_HARD_TIMEOUT)]
        e = MacEntry(vlan, mac, port, make_cookie(K_LEARNED, 0), now)
        self.macs[(vlan, mac)] = e
        self.vlan_count[vlan] = self.vlan_count.get(vlan, 0) + 1
        self.counters["learned"] += 1
        LOG.debug("l2 %s: learned %s VLAN %d on port %d", self.config.label, mac, vlan, port)
        if self.forwarding(port):
            msgs += self._install(e, now)
        return msgs

    def _src_match(self, vlan, mac, port):
        return self._match(in_port=port, vlan_vid=OFPVID_PRESENT | vlan, eth_src=mac)

    def _dst_match(self, vlan, mac):
        return self._match(vlan_vid=OFPVID_PRESENT | vlan, eth_dst=mac)

    def _install(self, e: MacEntry, now: float) -> list:
        # A fresh cookie each time: a FLOW_REMOVED for the flows being
        # replaced (a switch may send one) is then recognisably stale.
        self.by_cookie.pop(e.cookie, None)
        self._serial += 1
        e.cookie = make_cookie(K_LEARNED, self._serial)
        self.by_cookie[e.cookie] = e
        e.installed = True
        e.refreshed_at = now
        pc = self.ports[e.port].config if e.port in self.ports else None
        acts = [self._out(e.port)]
        if pc is not None and pc.untagged == e.vlan:
            acts.insert(0, self.parser.OFPActionPopVlan())
        flags = self.ofp.OFPFF_SEND_FLOW_REM
        return [
            self._add(self.t_src, PRIO_LEARNED, self._src_match(e.vlan, e.mac, e.port),
                      [self._goto(self.t_dst)], e.cookie, idle=self.idle_timeout, flags=flags),
            self._add(self.t_dst, PRIO_LEARNED, self._dst_match(e.vlan, e.mac),
                      [self._apply(acts)], e.cookie, idle=self.dst_idle_timeout, flags=flags),
        ]

    def _forget(self, e: MacEntry, delete_flows=False, keep=None) -> list:
        """Drop the entry; with delete_flows, delete its flows (keep: the
        table whose flow is already gone)."""
        if self.macs.get((e.vlan, e.mac)) is e:
            del self.macs[(e.vlan, e.mac)]
            self.vlan_count[e.vlan] -= 1
        self.by_cookie.pop(e.cookie, None)
        if not (delete_flows and e.installed and self.dp is not None):
            return []
        msgs = []
        if keep != self.t_src:
            msgs.append(self._delete(self.t_src, self._src_match(e.vlan, e.mac, e.port),
                                     strict=True, priority=PRIO_LEARNED))
        if keep != self.t_dst:
            msgs.append(self._delete(self.t_dst, self._dst_match(e.vlan, e.mac),
                                     strict=True, priority=PRIO_LEARNED))
        return msgs

    def _forget_all(self):
        self.macs.clear()
        self.by_cookie.clear()
        self.vlan_count.clear()

    def flow_removed(self, msg, now: float) -> list:
        """FLOW_REMOVED (os-ken OFPFlowRemoved): one flow of a learned MAC
        is gone (timeout, or deleted by someone else): forget the MAC and
        delete its other flow.  Removals of flows we deleted ourselves
        find no entry (forgotten first) and are ignored."""
        if cookie_kind(msg.cookie) != K_LEARNED:
            return []
        e = self.by_cookie.get(msg.cookie)
        if e is None or msg.table_id not in (self.t_src, self.t_dst):
            return []
        self.counters["expired"] += 1
        LOG.debug("l2 %s: %s VLAN %d on port %d expired (table %d, reason %d)",
                  self.config.label, e.mac, e.vlan, e.port, msg.table_id, msg.reason)
        return self._forget(e, delete_flows=True, keep=msg.table_id)

    # ------------------------------------------------------------ configuration
    def reconfigure(self, config: DatapathConfig, now: float) -> list:
        """Apply a new configuration, touching only what changed: ports
        whose VLANs changed get new admission flows and lose their MACs;
        a new first table or timeout redoes what depends on it."""
        old = self.config
        self.config = config
        if self.dp is None:
            return []
        if config.table != old.table:
            msgs = [self._delete(self.ofp.OFPTT_ALL, cookie=COOKIE_APP, cookie_mask=COOKIE_APP_MASK)]
            ports = [(p.no, p.name, p.live) for p in self.ports.values()]
            msgs += self.switch_up(self.dp, now)[1:-1]
            for no, name, live in ports:
                msgs += self._port_seen(no, name, live)
            return msgs + self._regen_flood()
        msgs = []
        for no, info in sorted(self.ports.items()):
            pc = config.port(no)
            if pc == info.config:
                continue
            msgs += self._flush_ports([no])
            msgs.append(self._delete(self.t_in, cookie=make_cookie(K_PORT, no), cookie_mask=ALL_ONES))
            if self.blocked.pop(no, None) is not None:
                msgs.append(self._block_delete(no))
            info.config = pc
            if pc is not None:
                msgs += self._admission_flows(info) + self._block_flow(no)
        if config.idle_timeout != old.idle_timeout and self.ageing is None:
            for e in self.macs.values():
                if e.installed:
                    msgs += self._install(e, now)
        return msgs + self._regen_flood()

    # ------------------------------------------------------------ status
    def status(self, now: float) -> dict:
        """Data for a status view / logs."""
        return dict(
            ports=[dict(port=no, name=p.name, live=p.live,
                        mode=p.config.mode if p.config else "disabled",
                        untagged=p.config.untagged if p.config else None,
                        tagged=sorted(p.config.tagged) if p.config else [],
                        forwarding=self.forwarding(no), learning=self.learning(no))
                   for no, p in sorted(self.ports.items())],
            macs=[dict(vlan=e.vlan, mac=e.mac, port=e.port, age=now - e.learned_at,
                       installed=e.installed)
                  for e in sorted(self.macs.values(), key=lambda e: (e.vlan, e.mac))],
            idle_timeout=self.idle_timeout,
            counters=dict(self.counters))


def _name(port) -> str:
    n = getattr(port, "name", b"")
    if isinstance(n, bytes):
        n = n.split(b"\0", 1)[0].decode("utf-8", "replace")
    return n
