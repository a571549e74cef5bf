"""os-ken app `stp`: spanning tree (802.1D STP / 802.1w RSTP) on OpenFlow 1.3 datapaths.

    python -m controller.launcher controller.l2.app controller.stp.app \\
        --ofp-tcp-listen-port 6653 [--config ctl.toml] [--stp-status-socket PATH]
    python -m controller.stp.app status [--socket PATH] [--json]   # the status view

Who uses this: the launcher (`vdp controller ... stp`).  The l2 app
(controller/l2/app.py) reads nothing from here: this app finds it in
os-ken's service registry at start, tells it to keep ports blocked until
spanning tree has spoken (forwarding_default = False), and pushes port
states (forwarding / learning / discarding), MAC flushes and the 802.1D
short ageing into it.  The protocol is in logic.Bridge
(I/O-free); this module only turns OpenFlow events into Bridge calls and
the returned Actions into OpenFlow messages, as common.py describes:

  * on connect, table 0: the BPDU trap (eth_dst=01:80:c2:00:00:00 ->
    CONTROLLER, priority 65535) and a quarantine flow (match all -> drop,
    priority QUARANTINE_PRIORITY) that keeps the datapath silent until the
    port list is known and every port has its own drop flow;
  * per spanning-tree port not forwarding: in_port=P -> drop (priority
    DROP_PRIORITY) plus PORT_MOD with PortChange.config (NO_FWD on
    alternate/backup ports, NO_RECV|NO_FWD|NO_PACKET_IN on disabled ones);
    a 'learning' port has no drop flow of ours when the l2 app runs (its
    own in_port=P -> CONTROLLER flow learns without forwarding), else one;
  * BPDUs arrive as packet-ins and leave as PACKET_OUT(in_port=CONTROLLER);
    a BPDU for a port with NO_FWD (an alternate port's RSTP agreement) is
    sent between two PORT_MODs that lift and restore the bit, since NO_FWD
    drops PACKET_OUTs too (see _apply);
  * PORT_DESC / PORT_STATUS give ports, link state (LINK_DOWN, PORT_DOWN)
    and speed (curr_speed, for path costs);
  * a green thread wakes at the earliest Bridge.next_wakeup().

All flows carry cookie STP_COOKIE so a reconnect can wipe exactly ours.

`DatapathStp` (one per datapath) holds all of this and knows nothing of
os-ken's event system: it is driven by plain method calls with `now` and
sends through `dp.send_msg`, so tests/unit/test_stp_app.py runs it against
fake datapaths joined by simulated links.

Config: section [stp] of the controller's TOML file (controller/stp/config.py)
given by --config FILE (controller.config.register_cli_option: one option
shared by the apps); without it every datapath runs RSTP with the defaults.
Status view, the same mechanism as the vrrp app's: a unix stream
socket (--stp-status-socket, else [stp] status_socket, else
/run/vdp/stp.sock; '' disables it); a client connects, optionally sends one
line ("status\\n"), and reads one JSON document, then EOF:
    {"app": "stp", "pid": N, "time": monotonic,
     "datapaths": [Bridge.status() + dpid, name, ready, stp_off_ports,
                   openflow counters; ports keyed by port number text]}
`query_status` / `format_status` below are the client side
(`python -m controller.stp.app status` prints it).
"""
from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time

from controller.stp import bpdu as B
from controller.stp import config as stp_config
from controller.stp.common import OFPPC_NO_FWD, PORT_CONFIG_MASK, Actions
from controller.stp.logic import Bridge

LOG = logging.getLogger("controller.stp")

STP_COOKIE = 0x5354500000000001           # "STP" + 1
COOKIE_MASK = 0xFFFFFFFFFFFFFFFF
TRAP_PRIORITY = 65535
DROP_PRIORITY = 65534
QUARANTINE_PRIORITY = 65533
TABLE = 0
MAX_PORT = 0xFFF                          # 12-bit port numbers in a port id
OFPP_MAX = 0xFFFFFF00
OFPP_LOCAL = 0xFFFFFFFE

# ofp_port_config / ofp_port_state bits
OFPPC_PORT_DOWN = 1 << 0
OFPPS_LINK_DOWN = 1 << 0

DEFAULT_STATUS_SOCKET = "/run/vdp/stp.sock"
MAX_SLEEP = 1.0          # ticker: the longest nap
MIN_SLEEP = 0.005


def _mac_str(hw) -> str:
    if isinstance(hw, str):
        return hw.lower()
    return B.mac_str(bytes(hw))


def _name_str(name) -> str:
    if isinstance(name, (bytes, bytearray)):
        return bytes(name).split(b"\0", 1)[0].decode("utf-8", "replace")
    return str(name)


class PortInfo:
    """What a datapath says about one of its ports (from OFPPort)."""

    __slots__ = ("no", "hw_addr", "name", "link_up", "speed_mbps")

    def __init__(self, no, hw_addr, name, link_up, speed_mbps):
        self.no = no
        self.hw_addr = hw_addr
        self.name = name
        self.link_up = link_up
        self.speed_mbps = speed_mbps

    @classmethod
    def from_ofp(cls, p) -> "PortInfo":
        up = not (p.state & OFPPS_LINK_DOWN) and not (p.config & OFPPC_PORT_DOWN)
        speed = (p.curr_speed or 0) / 1000.0          # kb/s -> Mb/s
        return cls(p.port_no, _mac_str(p.hw_addr), _name_str(p.name), up, speed or None)


class DatapathStp:
    """The spanning tree of one datapath: a logic.Bridge and the OpenFlow
    messages that carry out its Actions.

    dp: an os-ken Datapath (or anything with .id, .ofproto, .ofproto_parser,
    .send_msg).  cfg: config.DatapathConfig.  l2: the l2 app (controller/l2/
    app.py L2App) or None; its spanning tree API takes the dpid and sends
    its own messages (it keeps port states of a datapath it has not met
    yet, so the order in which the two apps see a switch does not matter):
        set_port_forwarding(dpid, port, allowed, learning=False)
        flush(dpid, ports)          set_ageing(dpid, seconds | None)"""

    def __init__(self, dp, cfg, l2=None, log=LOG):
        self.dp = dp
        self.dpid = dp.id
        self.cfg = cfg
        self.ofp = dp.ofproto
        self.parser = dp.ofproto_parser
        self.l2 = l2
        self.log = log
        self.name = cfg.name or f"dp{self.dpid:x}"
        self.bridge = None               # created when the port list arrives
        self.ports: dict[int, PortInfo] = {}     # every port the datapath has
        self.off_ports: set[int] = set()  # ports left out of spanning tree
        self.local_mac = None
        self._desc_acc: list = []
        self._config: dict[int, int] = {}    # port -> config bits we set
        self.counters = dict(packet_in=0, packet_out=0, port_mod=0, flow_mod=0, foreign_bpdu=0)

    # ------------------------------------------------------------------ sending
    def _send(self, msg):
        self.dp.send_msg(msg)

    def _flow(self, command, priority, match, instructions=(), out_port=None):
        ofp, p = self.ofp, self.parser
        delete = command in (ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT)
        msg = p.OFPFlowMod(
            self.dp, cookie=STP_COOKIE, cookie_mask=COOKIE_MASK if delete else 0,
            table_id=TABLE, command=command, idle_timeout=0, hard_timeout=0,
            priority=priority, buffer_id=ofp.OFP_NO_BUFFER,
            out_port=ofp.OFPP_ANY if out_port is None else out_port,
            out_group=ofp.OFPG_ANY, flags=0, match=match, instructions=list(instructions))
        self.counters["flow_mod"] += 1
        self._send(msg)

    def _add_drop(self, port):
        self._flow(self.ofp.OFPFC_ADD, DROP_PRIORITY, self.parser.OFPMatch(in_port=port))

    def _del_drop(self, port):
        self._flow(self.ofp.OFPFC_DELETE_STRICT, DROP_PRIORITY, self.parser.OFPMatch(in_port=port))

    def _port_mod(self, port, config, mask=PORT_CONFIG_MASK, remember=True):
        info = self.ports.get(port)
        if info is None:
            return
        if remember:
            self._config[port] = (self._config.get(port, 0) & ~mask) | (config & mask)
        self.counters["port_mod"] += 1
        self._send(self.parser.OFPPortMod(self.dp, port_no=port, hw_addr=info.hw_addr,
                                          config=config, mask=mask, advertise=0))

    def _packet_out(self, port, frame):
        ofp, p = self.ofp, self.parser
        self.counters["packet_out"] += 1
        self._send(p.OFPPacketOut(self.dp, buffer_id=ofp.OFP_NO_BUFFER,
                                  in_port=ofp.OFPP_CONTROLLER,
                                  actions=[p.OFPActionOutput(port, 0)], data=bytes(frame)))

    # ------------------------------------------------------------------ events in
    def connected(self):
        """The datapath finished the handshake: wipe our old flows, trap
        BPDUs, silence the datapath until ports are known."""
        ofp, p = self.ofp, self.parser
        self._flow(ofp.OFPFC_DELETE, 0, p.OFPMatch())           # only STP_COOKIE flows
        self._flow(ofp.OFPFC_ADD, TRAP_PRIORITY, p.OFPMatch(eth_dst=B.mac_str(B.STP_GROUP_MAC)),
                   [p.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                            [p.OFPActionOutput(ofp.OFPP_CONTROLLER,
                                                               ofp.OFPCML_NO_BUFFER)])])
        self._flow(ofp.OFPFC_ADD, QUARANTINE_PRIORITY, p.OFPMatch())

    def port_desc_part(self, ports, more, now):
        """One PORT_DESC reply part (os_ken OFPPort objects); the list is
        applied when the last part (more=False) arrives."""
        self._desc_acc.extend(ports)
        if more:
            return
        infos = [PortInfo.from_ofp(x) for x in self._desc_acc]
        self._desc_acc = []
        self.port_list(infos, now)

    def port_list(self, infos, now):
        """The complete port list (PortInfo): creates the Bridge the first
        time, then reconciles (new ports, gone ports, link and speed)."""
        first = self.bridge is None
        if first:
            for info in infos:
                if info.no == OFPP_LOCAL:
                    self.local_mac = info.hw_addr
            self.bridge = self._make_bridge()
        acts = Actions()
        seen = set()
        for info in infos:
            if info.no > OFPP_MAX:
                continue
            seen.add(info.no)
            acts.merge(self._port_seen(info, now))
        for no in sorted(set(self.ports) - seen):
            acts.merge(self._port_gone(no, now))
        acts.merge(self.bridge.tick(now))
        self._apply(acts, now)
        if first:
            # every port has its drop flow (or is forwarding) now
            p = self.parser
            self._flow(self.ofp.OFPFC_DELETE_STRICT, QUARANTINE_PRIORITY, p.OFPMatch())
            self.log.info("%s: spanning tree %s on dpid %016x, bridge %s, ports %s%s",
                          self.name, self.bridge.mode, self.dpid,
                          B.bridge_id_str(self.bridge.bridge_id), sorted(self.bridge.ports),
                          f", not under spanning tree: {sorted(self.off_ports)}"
                          if self.off_ports else "")

    def _make_bridge(self):
        mac = self.cfg.mac or self.local_mac
        if not mac or mac == "00:00:00:00:00:00":
            mac = self.dpid & 0xFFFFFFFFFFFF
            if mac == 0:
                mac = 0x020000000000 | (self.dpid >> 16 & 0xFFFFFFFF)
        return Bridge(mac, name=self.name, **self.cfg.bridge_kwargs())

    def _port_seen(self, info, now) -> Actions:
        br = self.bridge
        old = self.ports.get(info.no)
        self.ports[info.no] = info
        if old is None:
            pc = self.cfg.port(info.no)
            if not pc.enabled or info.no > MAX_PORT:
                if info.no > MAX_PORT and pc.enabled:
                    self.log.warning("%s: port %d cannot take part in spanning tree "
                                     "(port numbers above %d do not fit a port id); "
                                     "it forwards unguarded", self.name, info.no, MAX_PORT)
                self.off_ports.add(info.no)
                self._port_mod(info.no, 0)
                self._l2_forwarding(info.no, True)
                return Actions()
            self._add_drop(info.no)          # until the Bridge says otherwise
            br.add_port(info.no, speed_mbps=info.speed_mbps, mac=info.hw_addr,
                        **pc.port_kwargs())
            return br.port_link(info.no, info.link_up, now)
        if info.no in self.off_ports:
            return Actions()
        acts = Actions()
        if (old.speed_mbps != info.speed_mbps and self.cfg.port(info.no).cost is None):
            acts.merge(br.set_port_speed(info.no, info.speed_mbps, now))
        acts.merge(br.port_link(info.no, info.link_up, now))
        return acts

    def _port_gone(self, no, now) -> Actions:
        self.ports.pop(no, None)
        self._config.pop(no, None)
        if no in self.off_ports:
            self.off_ports.discard(no)
            self._l2_forwarding(no, False)
            return Actions()
        acts = self.bridge.remove_port(no, now)
        acts.ports.pop(no, None)
        self._del_drop(no)
        self._l2_forwarding(no, False)
        return acts

    def port_status(self, reason, port, now):
        """PORT_STATUS: reason 'add' | 'modify' | 'delete', port an OFPPort."""
        if self.bridge is None or port.port_no > OFPP_MAX:
            return
        info = PortInfo.from_ofp(port)
        if reason == "delete":
            if info.no in self.ports:
                self._apply(self._port_gone(info.no, now), now)
            return
        self._apply(self._port_seen(info, now), now)

    def packet_in(self, in_port, data, now) -> bool:
        """A packet-in; returns True when it was a BPDU (ours to handle)."""
        if len(data) < 6 or data[:6] != B.STP_GROUP_MAC:
            return False
        self.counters["packet_in"] += 1
        if self.bridge is None or in_port not in self.bridge.ports:
            self.counters["foreign_bpdu"] += 1    # not a spanning tree port: dropped
            return True
        self._apply(self.bridge.rx_bpdu(in_port, bytes(data), now), now)
        return True

    def tick(self, now):
        if self.bridge is not None:
            self._apply(self.bridge.tick(now), now)

    def next_wakeup(self):
        return None if self.bridge is None else self.bridge.next_wakeup()

    # ------------------------------------------------------------------ actions out
    def _apply(self, acts, now):
        """Carries out one Actions in the order common.py asks for."""
        for e in acts.events:
            self.log.info("%s: %s", self.name, e)
        for no, pc in sorted(acts.ports.items()):
            if no not in self.ports:
                continue
            self._port_mod(no, pc.config, pc.mask)
            if pc.forwarding or (pc.learning and self.l2 is not None):
                # 'learning' with the l2 app: its own learn-only flow
                # (in_port=P -> CONTROLLER) must see the frames
                self._del_drop(no)
            else:
                self._add_drop(no)
            self._l2_forwarding(no, pc.forwarding, pc.learning)
        if acts.ageing is not None:
            # back to the normal ageing: the l2 app's own configured value
            normal = acts.ageing == self.bridge.ageing_time
            self._l2_call("set_ageing", self.dpid, None if normal else acts.ageing)
        if acts.flush:
            self._l2_call("flush", self.dpid, list(acts.flush))
        for no, frame in acts.tx:
            if no not in self.ports:
                continue
            if self._config.get(no, 0) & OFPPC_NO_FWD:
                # An alternate/backup port's RSTP agreement: NO_FWD would
                # drop it (vdp and OVS apply NO_FWD to PACKET_OUT too), and
                # the peer's designated port would then wait for its edge
                # delay and wrongly turn edge.  Lift the bit around the one
                # frame; the switch handles the three messages in order and
                # no flow outputs to a non-forwarding port meanwhile.
                self._port_mod(no, 0, OFPPC_NO_FWD, remember=False)
                self._packet_out(no, frame)
                self._port_mod(no, OFPPC_NO_FWD, OFPPC_NO_FWD, remember=False)
            else:
                self._packet_out(no, frame)

    # ------------------------------------------------------------------ the l2 app
    def _l2_forwarding(self, no, allowed, learning=False):
        self._l2_call("set_port_forwarding", self.dpid, no, allowed, learning=learning)

    def _l2_call(self, method, *args, **kw):
        fn = getattr(self.l2, method, None) if self.l2 is not None else None
        if fn is None:
            return
        for msg in fn(*args, **kw) or ():       # an l2 that returns messages
            self._send(msg)

    # ------------------------------------------------------------------ views
    def status(self) -> dict:
        if self.bridge is None:
            return dict(dpid=f"{self.dpid:016x}", name=self.name, ready=False)
        st = self.bridge.status()
        st.update(dpid=f"{self.dpid:016x}", ready=True, stp_off_ports=sorted(self.off_ports),
                  normal_ageing_time=self.bridge.ageing_time,
                  ports={str(no): dict(p, name=self.ports[no].name if no in self.ports else "")
                         for no, p in st["ports"].items()},
                  openflow=dict(self.counters))
        return st


# ----------------------------------------------------------------------------
# status view text (used by `show` below and usable by `vdp ctl`)

def format_status(doc: dict) -> str:
    """The JSON status document as `stp/show`-like text."""
    out = []
    for st in doc.get("datapaths", []):
        dpid = st.get("dpid")
        if not st.get("ready"):
            out.append(f"---- {st.get('name')} (dpid {dpid}): waiting for the port list")
            continue
        out.append(f"---- {st['name']} (dpid {dpid}) {st['mode'].upper()}")
        out.append(f"  bridge id  {st['bridge_id']}   hello {st['bridge_hello_time']:g}s "
                   f"max age {st['bridge_max_age']:g}s forward delay "
                   f"{st['bridge_forward_delay']:g}s")
        if st["is_root"]:
            out.append("  root id    this bridge is the root")
        else:
            out.append(f"  root id    {st['root_id']}   root port {st['root_port']} "
                       f"cost {st['root_path_cost']}")
        short = (f", short MAC ageing {st['ageing_time']:g}s"
                 if st["ageing_time"] < st.get("normal_ageing_time", 300) else "")
        out.append(f"  topology change {'yes' if st['topology_change'] else 'no'}, "
                   f"count {st['topology_change_count']}{short}")
        out.append(f"  {'port':>5} {'name':<15} {'role':<10} {'state':<11} {'cost':>9} "
                   f"{'prio':>4} {'proto':<5} flags")
        for no, p in sorted(st["ports"].items(), key=lambda kv: int(kv[0])):
            flags = [f for f, on in (("edge", p["edge"]), ("p2p", p["p2p"]),
                                     ("link-down", not p["link_up"]),
                                     ("bpdu-guard", p["bpdu_guard"]),
                                     ("root-guard", p["root_guard"])) if on]
            if p.get("guard"):
                flags.append(f"[{p['guard']}]")
            out.append(f"  {no:>5} {p.get('name', ''):<15} {p['role']:<10} {p['state']:<11} "
                       f"{p['cost']:>9} {p['priority']:>4} {p['protocol']:<5} {' '.join(flags)}")
        if st.get("stp_off_ports"):
            out.append(f"  not under spanning tree: {st['stp_off_ports']}")
    return "\n".join(out) if out else "no datapath"


def query_status(path=None, timeout=5.0) -> dict:
    """Reads the JSON status document from the app's status socket."""
    path = path or DEFAULT_STATUS_SOCKET
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(b"status\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    return json.loads(b"".join(chunks).decode())


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m controller.stp.app",
                                 description="print the stp app's status view")
    ap.add_argument("command", choices=["status", "show"])
    ap.add_argument("--socket", default=DEFAULT_STATUS_SOCKET)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        doc = query_status(a.socket)
    except (OSError, ValueError) as e:
        print(f"stp status: {a.socket}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=1, sort_keys=True) if a.json else format_status(doc))
    return 0


# ----------------------------------------------------------------------------
# the os-ken app (only imported pieces of os-ken below this line)

if __name__ == "__main__":
    sys.exit(main())

from os_ken import cfg  # noqa: E402
from os_ken.base import app_manager  # noqa: E402
from os_ken.controller import ofp_event  # noqa: E402
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER,  # noqa: E402
                                       MAIN_DISPATCHER, set_ev_cls)
from os_ken.lib import hub  # noqa: E402
from os_ken.ofproto import ofproto_v1_3  # noqa: E402

from controller.config import (APP_SECTIONS, ConfigError, load_config,  # noqa: E402
                               register_cli_option)


register_cli_option()                   # --config FILE, shared by the apps
if "stp_status_socket" not in cfg.CONF:
    cfg.CONF.register_cli_opt(cfg.StrOpt(
        "stp-status-socket", default=None,
        help="unix socket answering the spanning tree status as JSON (default: [stp] "
             f"status_socket, else {DEFAULT_STATUS_SOCKET}; '' disables it)"))


def config_path():
    """--config FILE, or None (defaults)."""
    try:
        return cfg.CONF.config or None
    except (cfg.NoSuchOptError, AttributeError):
        return None


def load_stp_config(path):
    """The [stp] section of path (None or no section: the defaults).  The
    sibling apps' sections (controller.config.APP_SECTIONS) are let through
    unchecked (each app checks its own); any other section is refused.
    Raises ConfigError."""
    if not path:
        return stp_config.DEFAULT
    got = load_config(path, {stp_config.SECTION: stp_config.validate},
                      ignore=[s for s in APP_SECTIONS if s != stp_config.SECTION])
    return got[stp_config.SECTION] or stp_config.DEFAULT


L2_APP_NAME = "L2App"       # controller/l2/app.py, found through os-ken's registry


def find_l2_app():
    """The l2 app running in this process, or None."""
    return app_manager.lookup_service_brick(L2_APP_NAME)


class StpApp(app_manager.OSKenApp):
    """Thin os-ken adapter: events -> DatapathStp, one ticker thread, the
    status socket."""
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        path = config_path()
        try:
            self.config = load_stp_config(path)
        except ConfigError as e:
            LOG.error("stp: %s", e)
            raise SystemExit(f"stp: {e}") from None
        self.dps: dict[int, DatapathStp] = {}
        self.l2 = None
        self.wake = hub.Event()
        self.running = True
        self.server = None
        self.server_thread = None
        sock = cfg.CONF.stp_status_socket
        if sock is None:
            sock = self.config.status_socket or DEFAULT_STATUS_SOCKET
        self.status_socket = sock or None
        LOG.info("stp: config %s; default mode %s%s", path or "(none: defaults)",
                 self.config.defaults.bridge.mode,
                 f"; datapaths configured: {', '.join(f'{d:016x}' for d in self.config.datapaths)}"
                 if self.config.datapaths else "")

    # ------------------------------------------------------------ lifecycle
    def start(self):
        t = super().start()
        # Every app is instantiated before any starts, and the OpenFlow
        # listener (os-ken's ofp_handler) starts after the apps named on
        # the command line: no switch has been seen yet.
        self.l2 = find_l2_app()
        if self.l2 is not None:
            self.l2.forwarding_default = False   # ports block until we say
        else:
            LOG.warning("stp: the l2 app (controller.l2.app) is not loaded: spanning tree "
                        "only blocks ports (PORT_MOD and drop flows), nothing forwards "
                        "unless another app does it")
        self.threads.append(hub.spawn(self._ticker))
        if self.status_socket:
            self._start_status_server()
        return t

    def stop(self):
        self.running = False
        self.wake.set()
        if self.server_thread is not None:
            hub.kill(self.server_thread)
        if self.status_socket and self.server is not None:
            try:
                os.unlink(self.status_socket)
            except OSError:
                pass
        super().stop()

    # ------------------------------------------------------------ time
    @staticmethod
    def now():
        return time.monotonic()

    def _ticker(self):
        """Sleeps until the earliest Bridge timer (woken early by events,
        which may move it), then ticks the bridges that are due."""
        while self.running:
            now = self.now()
            for d in list(self.dps.values()):
                try:
                    w = d.next_wakeup()
                    if w is not None and w <= now + MIN_SLEEP / 2:
                        d.tick(now)
                except Exception:
                    LOG.exception("stp: %s: tick failed", d.name)
            wake = [w for w in (d.next_wakeup() for d in list(self.dps.values())) if w is not None]
            nap = MAX_SLEEP if not wake else min(MAX_SLEEP, max(MIN_SLEEP, min(wake) - self.now()))
            self.wake.clear()
            self.wake.wait(timeout=nap)

    # ------------------------------------------------------------ OpenFlow events
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        dp = ev.msg.datapath
        dc = self.config.for_dpid(dp.id)
        if dc is None:
            LOG.info("stp: datapath %016x: no spanning tree here (config)", dp.id)
            self.dps.pop(dp.id, None)
            return
        d = DatapathStp(dp, dc, l2=self.l2, log=LOG)
        self.dps[dp.id] = d
        LOG.info("stp: %s (%016x) connected", d.name, dp.id)
        d.connected()

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        d = self._dp(ev.msg.datapath)
        if d is not None:
            more = bool(ev.msg.flags & d.ofp.OFPMPF_REPLY_MORE)
            d.port_desc_part(ev.msg.body, more, self.now())
            self.wake.set()

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        msg = ev.msg
        d = self._dp(msg.datapath)
        if d is not None:
            ofp = d.ofp
            reason = {ofp.OFPPR_ADD: "add", ofp.OFPPR_DELETE: "delete"}.get(msg.reason, "modify")
            d.port_status(reason, msg.desc, self.now())
            self.wake.set()

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        d = self._dp(msg.datapath)
        if d is not None and d.packet_in(msg.match.get("in_port"), msg.data, self.now()):
            self.wake.set()

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        msg = ev.msg
        d = self._dp(msg.datapath)
        if d is not None:
            LOG.warning("stp: %s: OFPT_ERROR type %d code %d for xid %d", d.name,
                        msg.type, msg.code, msg.xid)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _dead(self, ev):
        dp = ev.datapath
        d = self.dps.get(dp.id) if dp.id is not None else None
        if d is not None and d.dp is dp:
            del self.dps[dp.id]
            LOG.info("stp: %s (%016x) disconnected", d.name, dp.id)

    def _dp(self, dp):
        d = self.dps.get(dp.id)
        return d if d is not None and d.dp is dp else None

    # ------------------------------------------------------------ status view
    def status(self):
        return {"app": "stp", "pid": os.getpid(), "time": self.now(),
                "datapaths": [d.status() for _, d in sorted(self.dps.items())]}

    def _start_status_server(self):
        path = self.status_socket
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            if os.path.exists(path):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(path)
                    LOG.error("stp: status socket %s is in use by another process: "
                              "no status view", path)
                    return
                except OSError:
                    os.unlink(path)         # stale
                finally:
                    probe.close()
            self.server = hub.StreamServer((os.path.abspath(path),), self._serve_status)
        except OSError as e:
            LOG.error("stp: cannot listen on status socket %s: %s", path, e)
            return
        LOG.info("stp: status on unix socket %s", path)
        self.server_thread = hub.spawn(self.server.serve_forever)

    def _serve_status(self, sock, addr):
        try:
            sock.settimeout(0.5)
            try:
                sock.recv(256)              # optional request line ("status"); ignored
            except (socket.timeout, OSError):
                pass
            sock.sendall(json.dumps(self.status(), default=str).encode() + b"\n")
        except OSError:
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass
