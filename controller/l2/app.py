"""The `l2` os-ken app: a thin adapter around controller/l2/logic.py.

Run it (alone, or next to other apps in one process):

    python -m controller.launcher controller.l2.app --ofp-tcp-listen-port 6653 \\
        [--config /etc/vdp/controller.toml]     # or $VDP_CONTROLLER_CONFIG

Each handler is one call into the datapath's `L2Switch` (logic.py) and
sends the messages it returns; `now` is time.monotonic().  The [l2]
section of the --config file (controller/l2/config.py) says which ports
carry which VLANs; without it every port is an access port of VLAN 1.

  EventOFPSwitchFeatures      -> L2Switch.switch_up (fixed flows, PORT_DESC request)
  EventOFPPortDescStatsReply  -> L2Switch.port_desc
  EventOFPPortStatus          -> L2Switch.port_status
  EventOFPPacketIn            -> L2Switch.packet_in (only this app's packet-ins act)
  EventOFPFlowRemoved         -> L2Switch.flow_removed
  EventOFPStateChange (dead)  -> L2Switch.switch_down

For the spanning tree app (how apps reach each other)
-----------------------------------------------------
The STP app finds this one by name through os-ken's service registry and
lets the manager load it as a dependency, instead of `_CONTEXTS` (a
context instance is a second L2App next to the one loaded from the
command line, and os-ken asserts on the duplicate name):

    from os_ken.base import app_manager
    from controller.l2.app import L2App, find_l2_app
    app_manager.require_app("controller.l2.app")      # at module level

    class StpApp(app_manager.OSKenApp):
        def start(self):
            super().start()
            self.l2 = find_l2_app()              # the running L2App (or None)
            self.l2.forwarding_default = False   # ports block until STP says so

    then, from the STP handlers (dpid: datapath id; now: time.monotonic()):
        self.l2.set_port_forwarding(dpid, port, allowed, learning=False)
        self.l2.flush(dpid, ports=None)          # topology change: [ports] or all
        self.l2.set_ageing(dpid, seconds_or_None)
        self.l2.logic(dpid)                      # the L2Switch itself, for reading

These methods send what the logic returns on the datapath's connection
(nothing while it is disconnected; the states are kept and applied on the
next connect).  They may be called before the switch is seen: a port's
state is remembered.  Handlers of different apps run in different green
threads of one OS thread, so the calls need no lock.  Map Actions from
controller/stp: PortChange.forwarding -> allowed, PortChange.learning ->
learning, Actions.flush -> flush(ports), Actions.ageing -> set_ageing.
The l2 pipeline keeps table `table` (default 0) priorities below 4000 and
drops 01:80:c2:00:00:0X itself: put the BPDU -> CONTROLLER flow above it
with a cookie of your own.
"""
from __future__ import annotations

import os
import time

from oslo_config.cfg import DuplicateOptError
from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER,
                                       set_ev_cls)
from os_ken.ofproto import ofproto_v1_3

from controller.config import ConfigError, load_config, register_cli_option, registered_sections
from controller.l2 import config as l2config
from controller.l2.logic import L2Switch

APP_NAME = "L2App"
# Sections of sibling apps a shared config file may hold even when they are
# not loaded in this process.
SIBLING_SECTIONS = ("stp", "vrrp", "vlink", "controller")

CONF = cfg.CONF
try:
    register_cli_option()               # --config FILE, shared by the apps
except DuplicateOptError:
    pass                                # built differently by another app: read the same way


def config_path():
    """--config FILE, else $VDP_CONTROLLER_CONFIG, else None (defaults)."""
    try:
        v = CONF.config
    except (cfg.NoSuchOptError, AttributeError):
        v = None
    return v or os.environ.get("VDP_CONTROLLER_CONFIG") or None


def load_l2_config(path: str | None) -> l2config.L2Config:
    """The [l2] section of `path` (defaults when path is None or the
    section is absent).  Raises ConfigError."""
    if not path:
        return l2config.L2Config()
    # Only [l2] is ours to check; sections of other apps (loaded here or
    # not) are theirs.  Anything else is refused (a misspelt [l2]).
    others = set(SIBLING_SECTIONS) | set(registered_sections())
    others.discard(l2config.SECTION)
    sections = load_config(path, {l2config.SECTION: l2config.validate}, ignore=tuple(sorted(others)))
    return sections.get(l2config.SECTION) or l2config.L2Config()


def find_l2_app():
    """The running L2App instance, None if it is not loaded."""
    return app_manager.lookup_service_brick(APP_NAME)


class L2App(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        path = config_path()
        try:
            self.l2config = load_l2_config(path)
        except ConfigError as e:
            self.logger.error("l2: %s", e)
            raise
        self.switches: dict[int, L2Switch] = {}     # dpid -> logic, kept across reconnects
        self.datapaths = {}                          # dpid -> connected os-ken Datapath
        self.forwarding_default = True
        self.clock = time.monotonic

    # ------------------------------------------------------------ plumbing
    def logic(self, dpid: int, create: bool = False) -> L2Switch | None:
        sw = self.switches.get(dpid)
        if sw is None and create:
            sw = L2Switch(self.l2config.for_dpid(dpid), self.forwarding_default)
            self.switches[dpid] = sw
        return sw

    def _send(self, dpid, msgs):
        dp = self.datapaths.get(dpid)
        if dp is None:
            return
        for m in msgs:
            dp.send_msg(m)

    # ------------------------------------------------------------ OpenFlow events
    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _switch_features(self, ev):
        dp = ev.msg.datapath
        self.datapaths[dp.id] = dp
        sw = self.logic(dp.id, create=True)
        self.logger.info("l2: switch %016x connected (%s)", dp.id, sw.config.label)
        self._send(dp.id, sw.switch_up(dp, self.clock()))

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_desc(self, ev):
        dp = ev.msg.datapath
        sw = self.switches.get(dp.id)
        if sw is not None and self.datapaths.get(dp.id) is dp:
            self._send(dp.id, sw.port_desc(ev.msg.body, self.clock()))

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        dp = ev.msg.datapath
        sw = self.switches.get(dp.id)
        if sw is not None and self.datapaths.get(dp.id) is dp:
            self._send(dp.id, sw.port_status(ev.msg, self.clock()))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        dp = ev.msg.datapath
        sw = self.switches.get(dp.id)
        if sw is not None and self.datapaths.get(dp.id) is dp:
            self._send(dp.id, sw.packet_in(ev.msg, self.clock()))

    @set_ev_cls(ofp_event.EventOFPFlowRemoved, MAIN_DISPATCHER)
    def _flow_removed(self, ev):
        dp = ev.msg.datapath
        sw = self.switches.get(dp.id)
        if sw is not None and self.datapaths.get(dp.id) is dp:
            self._send(dp.id, sw.flow_removed(ev.msg, self.clock()))

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _state_change(self, ev):
        dp = ev.datapath
        if dp.id is not None and self.datapaths.get(dp.id) is dp:
            del self.datapaths[dp.id]
            self.switches[dp.id].switch_down()
            self.logger.info("l2: switch %016x disconnected", dp.id)

    # ------------------------------------------------------------ API for other apps
    def set_port_forwarding(self, dpid: int, port: int, allowed: bool, learning: bool = False):
        sw = self.logic(dpid, create=True)
        self._send(dpid, sw.set_port_forwarding(port, allowed, self.clock(), learning=learning))

    def flush(self, dpid: int, ports=None):
        sw = self.logic(dpid)
        if sw is not None:
            self._send(dpid, sw.flush(ports, self.clock()))

    def set_ageing(self, dpid: int, seconds: float | None):
        sw = self.logic(dpid, create=True)
        self._send(dpid, sw.set_ageing(seconds, self.clock()))

    def reload_config(self, path: str | None = None):
        """Re-reads the config file (a bad one raises ConfigError and
        changes nothing) and applies only the differences per datapath."""
        new = load_l2_config(path if path is not None else config_path())
        self.l2config = new
        now = self.clock()
        for dpid, sw in self.switches.items():
            self._send(dpid, sw.reconfigure(new.for_dpid(dpid), now))

    def status(self) -> dict:
        now = self.clock()
        return {f"{dpid:016x}": sw.status(now) for dpid, sw in sorted(self.switches.items())}
