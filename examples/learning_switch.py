"""An OpenFlow 1.3 L2 learning switch as an os-ken app: the controller for
the Mininet examples (examples/mininet_linear.py, docs/mininet.md) and
tests/integration/test_mininet.py.  os-ken 4.x ships no such sample app.

Run it (it listens on 127.0.0.1:6653 unless told otherwise):

    python3 examples/learning_switch.py --ofp-tcp-listen-port 6653 --ofp-listen-host 127.0.0.1

or load it with the launcher next to other apps (examples/ on PYTHONPATH):

    PYTHONPATH=examples:. python3 -m controller.launcher learning_switch --ofp-tcp-listen-port 6653

What it does, per switch: a table-miss flow (priority 0) sends every
unknown packet to the controller whole (no buffering); each packet-in
teaches it source MAC -> in_port; a packet to a known MAC gets a flow
(priority 10: in_port, eth_src, eth_dst -> output, idle timeout 60 s) and
is sent on, an unknown or broadcast destination is flooded.
"""
if __name__ == "__main__":
    # Before anything of os-ken is imported: the launcher picks os-ken's
    # hub (eventlet) and then loads this file again as a module.
    import os
    import sys
    _here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:0] = [_here, os.path.dirname(_here)]
    try:
        from controller.launcher import main as _launch
    except ImportError:            # a tree without the launcher: the bare minimum
        os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")
        from os_ken.lib import hub
        hub.patch(thread=False)
        from os_ken import cfg, flags, log  # noqa: F401  (flags registers options)
        from os_ken.base import app_manager
        from os_ken.controller import controller  # noqa: F401  (--ofp-* options)

        def _launch(args):
            cfg.CONF(args=args[1:], project="os_ken", default_config_files=[])
            log.init_log()
            mgr = app_manager.AppManager.get_instance()
            mgr.load_apps(args[:1])
            hub.joinall(mgr.instantiate_apps(**mgr.create_contexts()))
            return 0
    sys.exit(_launch(["learning_switch"] + sys.argv[1:]))

from os_ken.base import app_manager  # noqa: E402
from os_ken.controller import ofp_event  # noqa: E402
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls  # noqa: E402
from os_ken.lib.packet import ethernet, packet  # noqa: E402
from os_ken.ofproto import ofproto_v1_3  # noqa: E402

FLOW_PRIORITY = 10
IDLE_TIMEOUT = 60


class LearningSwitch13(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.mac_to_port = {}          # dpid -> {mac: port}

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev):
        dp = ev.msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        self.mac_to_port[dp.id] = {}
        to_controller = [parser.OFPActionOutput(ofp.OFPP_CONTROLLER, ofp.OFPCML_NO_BUFFER)]
        self._add_flow(dp, 0, parser.OFPMatch(), to_controller, idle_timeout=0)
        self.logger.info("switch %016x connected: table-miss flow installed", dp.id)

    @staticmethod
    def _add_flow(dp, priority, match, actions, idle_timeout=IDLE_TIMEOUT):
        ofp, parser = dp.ofproto, dp.ofproto_parser
        inst = [parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions)]
        dp.send_msg(parser.OFPFlowMod(datapath=dp, priority=priority, match=match,
                                      instructions=inst, idle_timeout=idle_timeout))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        ofp, parser = dp.ofproto, dp.ofproto_parser
        in_port = msg.match["in_port"]
        eth = packet.Packet(msg.data).get_protocol(ethernet.ethernet)
        if eth is None:
            return
        table = self.mac_to_port.setdefault(dp.id, {})
        table[eth.src] = in_port
        out_port = table.get(eth.dst, ofp.OFPP_FLOOD)
        actions = [parser.OFPActionOutput(out_port)]
        if out_port != ofp.OFPP_FLOOD:
            match = parser.OFPMatch(in_port=in_port, eth_src=eth.src, eth_dst=eth.dst)
            self._add_flow(dp, FLOW_PRIORITY, match, actions)
        data = msg.data if msg.buffer_id == ofp.OFP_NO_BUFFER else None
        dp.send_msg(parser.OFPPacketOut(datapath=dp, buffer_id=msg.buffer_id, in_port=in_port,
                                        actions=actions, data=data))
