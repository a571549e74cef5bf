"""The `vrrp` controller app: os-ken adapter around controller/vrrp/flows.py.

Run it (one process can drive several datapaths; see the [vrrp] section in
controller/vrrp/config.py):

    python -m controller.launcher controller.vrrp.app --config vrrp.toml \
        --ofp-tcp-listen-port 6653 [--vrrp-status-socket /run/vdp/vrrp.sock]
    python -m controller.vrrp.app status [--socket PATH] [--json]

What the adapter does (the logic lives in flows.VrrpDatapath / logic.py):
- a datapath reaching MAIN (features + port descriptions, os-ken's
  ofp_handler fetched them) -> VrrpDatapath.connect(): our old flows are
  deleted, punts / routing / egress flows installed, tracks set from the
  ports' link state, the routers started;
- PACKET_IN -> VrrpDatapath.packet_in; PORT_STATUS -> port_status (link
  tracking); the datapath going away -> disconnect (routers to Initialize);
- one green thread sleeps until the earliest next_deadline() of all
  datapaths (woken early when an event moves it) and calls tick();
- every Out: messages sent in order, transitions logged ('vdp.vrrp.app');
- app stop (SIGTERM to the launcher): priority-0 adverts so the backups take
  over at once, then our flows are deleted.

Status view: a unix stream socket (default /run/vdp/vrrp.sock; config
`status_socket` or --vrrp-status-socket; "" disables it).  A client
connects, optionally sends one line ("status\\n"), and reads one JSON
document, then EOF:
    {"app": "vrrp", "pid": N, "time": monotonic,
     "datapaths": [VrrpDatapath.status(), ...]}
where each datapath lists its interfaces, and per interface the routers'
logic.VirtualRouter.status() (state, priority, master, transitions,
counters...).  `query_status(path)` / `format_status(doc)` below are the
client side for a `vdp ctl`-style command.
"""
import json
import logging
import os
import socket
import sys
import time

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                       set_ev_cls)
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3

from controller.config import APP_SECTIONS, ConfigError, load_config, register_cli_option
from controller.vrrp import config as vconfig
from controller.vrrp.flows import PortInfo, VrrpDatapath

LOG = logging.getLogger("vdp.vrrp.app")

DEFAULT_STATUS_SOCKET = "/run/vdp/vrrp.sock"
MAX_SLEEP = 1.0          # the timer thread looks around at least this often

register_cli_option()                   # --config FILE, shared by the apps
cfg.CONF.register_cli_opts([
    cfg.StrOpt("vrrp-status-socket", default=None,
               help="unix socket answering the VRRP status as JSON "
                    f"(default: config status_socket, else {DEFAULT_STATUS_SOCKET}; "
                    "'' disables it)"),
])


def _port_info(port, ofp):
    name = port.name.decode(errors="replace") if isinstance(port.name, bytes) else port.name
    up = not (port.state & ofp.OFPPS_LINK_DOWN) and not (port.config & ofp.OFPPC_PORT_DOWN)
    return PortInfo(port.hw_addr, up, name)


class VrrpApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        path = cfg.CONF.config
        try:
            if not path:
                raise ConfigError("the vrrp app needs --config FILE with a [vrrp] section")
            conf = load_config(path, {vconfig.SECTION: vconfig.validate},
                               required=(vconfig.SECTION,),
                               ignore=[s for s in APP_SECTIONS if s != vconfig.SECTION]
                               )[vconfig.SECTION]
        except ConfigError as e:
            LOG.error("vrrp: %s", e)        # (os-ken logs to stderr unless told otherwise)
            raise SystemExit(2) from None
        self.conf = conf
        self.dps = {dpid: VrrpDatapath(dc) for dpid, dc in conf.datapaths.items()}
        self.switches = {}              # dpid -> os-ken Datapath (connected, in MAIN)
        self.wake = hub.Event()
        self.running = True
        self.server = None
        self.server_thread = None
        sock = cfg.CONF.vrrp_status_socket
        if sock is None:
            sock = conf.status_socket or DEFAULT_STATUS_SOCKET
        self.status_socket = sock or None
        LOG.info("vrrp: %d datapath(s) configured from %s: %s", len(self.dps), path,
                 ", ".join(f"{d.cfg.name} ({dpid:016x})" for dpid, d in self.dps.items()))

    # ------------------------------------------------------------ lifecycle

    def start(self):
        t = super().start()
        self.threads.append(hub.spawn(self._timer))
        if self.status_socket:
            self._start_status_server()
        return t

    def stop(self):
        self.running = False
        now = time.monotonic()
        sent = False
        for dpid, vd in self.dps.items():
            dp = self.switches.get(dpid)
            out = vd.close(now)
            self._log(vd, out)
            if dp is not None:
                for m in out.msgs:
                    dp.send_msg(m)
                sent = True
        if sent:
            hub.sleep(0.3)          # let the send loops flush the priority-0 adverts
        self.wake.set()
        if self.server_thread is not None:
            hub.kill(self.server_thread)
        if self.status_socket and self.server is not None:
            try:
                os.unlink(self.status_socket)
            except OSError:
                pass
        super().stop()

    # ------------------------------------------------------------ plumbing

    def _do(self, vd, out):
        """Sends an Out's messages to vd's switch, logs its transitions,
        wakes the timer (deadlines may have moved)."""
        dp = self.switches.get(vd.cfg.dpid)
        if dp is not None:
            for m in out.msgs:
                dp.send_msg(m)
        self._log(vd, out)
        self.wake.set()

    def _log(self, vd, out):
        # logic.py logs every transition at INFO already ('vdp.vrrp')
        for iface, t in out.transitions:
            LOG.debug("VRRP %s %s vr%d/ipv%d: %s -> %s (%s)", vd.cfg.name, iface, t.vrid,
                     t.family, t.old, t.new, t.reason)

    def _timer(self):
        while self.running:
            now = time.monotonic()
            for vd in self.dps.values():
                d = vd.next_deadline()
                if d is not None and d <= now:
                    try:
                        self._do(vd, vd.tick(now))
                    except Exception:
                        LOG.exception("vrrp: tick on %s failed", vd.cfg.name)
            ds = [d for d in (vd.next_deadline() for vd in self.dps.values()) if d is not None]
            wait = MAX_SLEEP if not ds else min(MAX_SLEEP, max(0.0, min(ds) - time.monotonic()))
            self.wake.clear()
            if wait > 0:
                self.wake.wait(timeout=wait)

    # ------------------------------------------------------------ OpenFlow events

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev):
        dp = ev.datapath
        vd = self.dps.get(dp.id)
        if vd is None:
            if ev.state == MAIN_DISPATCHER and dp.id is not None:
                LOG.info("vrrp: datapath %016x is not in the [vrrp] config: left alone", dp.id)
            return
        now = time.monotonic()
        if ev.state == MAIN_DISPATCHER:
            if self.switches.get(dp.id) is dp:
                return          # the same connection announced twice: already set up
            ports = {no: _port_info(p, dp.ofproto) for no, p in dp.ports.items()
                     if no <= dp.ofproto.OFPP_MAX}
            self.switches[dp.id] = dp
            LOG.info("vrrp: datapath %s (%016x) connected, ports %s", vd.cfg.name, dp.id,
                     sorted(ports))
            self._do(vd, vd.connect(dp, ports, now))
        elif self.switches.get(dp.id) is dp:
            LOG.info("vrrp: datapath %s (%016x) disconnected", vd.cfg.name, dp.id)
            del self.switches[dp.id]
            self._do(vd, vd.disconnect(now))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        vd = self.dps.get(msg.datapath.id)
        in_port = msg.match.get("in_port")
        if vd is not None and in_port is not None and \
                self.switches.get(msg.datapath.id) is msg.datapath:
            self._do(vd, vd.packet_in(in_port, bytes(msg.data), msg.table_id, msg.cookie,
                                      time.monotonic()))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        msg = ev.msg
        dp = msg.datapath
        vd = self.dps.get(dp.id)
        if vd is None or self.switches.get(dp.id) is not dp:
            return
        info = _port_info(msg.desc, dp.ofproto)
        up = info.link_up and msg.reason != dp.ofproto.OFPPR_DELETE
        self._do(vd, vd.port_status(msg.desc.port_no, up, info.hw_addr, time.monotonic()))

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        msg = ev.msg
        vd = self.dps.get(msg.datapath.id)
        if vd is not None:
            LOG.warning("vrrp: %s: OFPT_ERROR type %d code %d for xid %d", vd.cfg.name,
                        msg.type, msg.code, msg.xid)

    # ------------------------------------------------------------ status view

    def status(self):
        return {"app": "vrrp", "pid": os.getpid(), "time": time.monotonic(),
                "datapaths": [vd.status() for vd in self.dps.values()]}

    def _start_status_server(self):
        path = self.status_socket
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            if os.path.exists(path):
                probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    probe.connect(path)
                    LOG.error("vrrp: status socket %s is in use by another process: "
                              "no status view", path)
                    probe.close()
                    return
                except OSError:
                    os.unlink(path)         # stale
                finally:
                    probe.close()
            self.server = hub.StreamServer((os.path.abspath(path),), self._serve_status)
        except OSError as e:
            LOG.error("vrrp: cannot listen on status socket %s: %s", path, e)
            return
        LOG.info("vrrp: status on unix socket %s", path)
        self.server_thread = hub.spawn(self.server.serve_forever)

    def _serve_status(self, sock, addr):
        try:
            sock.settimeout(0.5)
            try:
                sock.recv(256)              # optional request line; ignored
            except (socket.timeout, OSError):
                pass
            sock.sendall(json.dumps(self.status()).encode() + b"\n")
        except OSError:
            pass
        finally:
            try:
                sock.close()
            except OSError:
                pass


# --------------------------------------------------------------------------
# client side of the status view

def query_status(path=DEFAULT_STATUS_SOCKET, timeout=5.0):
    """The status document of the app listening on `path`."""
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
    return json.loads(b"".join(chunks))


def format_status(doc):
    """Human-readable lines of a status document."""
    lines = []
    for dp in doc.get("datapaths", []):
        lines.append(f"datapath {dp['dpid']} ({dp['name']}): "
                     f"{'connected' if dp['connected'] else 'not connected'}")
        for i in dp["interfaces"]:
            vlan = f" vlan {i['vlan']}" if i["vlan"] is not None else ""
            lines.append(f"  {i['name']}: port {i['port']}{vlan} link "
                         f"{'up' if i['link_up'] else 'down'} mac {i['mac']} "
                         f"{' '.join(i['addresses'])}")
            for r in i["routers"]:
                lt = r["last_transition"]
                last = f"{lt['from']}->{lt['to']} ({lt['reason']})" if lt else "-"
                lines.append(
                    f"    vrid {r['vrid']} ipv{r['family']} v{r['version']}: {r['state']:<10} "
                    f"priority {r['priority']} (effective {r['effective_priority']}) "
                    f"vips {','.join(r['vips'])} master {r['master'] or '-'} "
                    f"interval {r['interval']}s transitions {r['transitions']} last {last}")
        for rt in dp["routes"]:
            lines.append(f"  route {rt['prefix']} via {rt['via']} ({rt['interface']}, "
                         f"{rt['via_mac'] or 'unresolved'})")
    return "\n".join(lines)


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(prog="python -m controller.vrrp.app")
    ap.add_argument("command", choices=["status"])
    ap.add_argument("--socket", default=DEFAULT_STATUS_SOCKET)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    try:
        doc = query_status(a.socket)
    except (OSError, ValueError) as e:
        print(f"vrrp status: {a.socket}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=1) if a.json else format_status(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
