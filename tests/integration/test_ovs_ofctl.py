"""vdp's OpenFlow agent end to end: Open vSwitch's own client, `ovs-ofctl -O
OpenFlow13`, against `vdp run --listen ptcp:PORT:127.0.0.1` on two veth
ports (hosts h1 10.0.0.1 and h2 10.0.0.2 in namespaces named vdpt-*, all
removed by the topo fixture even on failure).

The switch runs in fail mode secure, so traffic only passes where the flows
installed over OpenFlow say: ping between the hosts is the check that each
command reached the forwarding path.

The last test turns the roles around: `vdp run --controller tcp:...`
connects to a small os-ken learning app (written to the test's temp dir),
which learns from PACKET_INs, floods with PACKET_OUT and installs flows; the
controller is then restarted and the switch must reconnect by itself.
"""
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from topo import ping, wait_for

pytestmark = pytest.mark.skipif(shutil.which("ovs-ofctl") is None,
                                reason="needs ovs-ofctl (Debian openvswitch-common)")


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class OfCtl:
    def __init__(self, port):
        self.target = f"tcp:127.0.0.1:{port}"

    def run(self, *args, check=True):
        cmd = ["ovs-ofctl", "-O", "OpenFlow13", args[0], self.target] + [str(a) for a in args[1:]]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr}")
        return p if not check else p.stdout


def _start(topo, dpid="0x00000000000000c1"):
    h1 = topo.add_host("h1", "10.0.0.1/24")
    h2 = topo.add_host("h2", "10.0.0.2/24")
    port = _free_port()
    d = topo.start_vdp([h1, h2], fail_mode="secure",
                       extra=["--dpid", dpid, "--listen", f"ptcp:{port}:127.0.0.1"])
    of = OfCtl(port)
    wait_for(lambda: of.run("show", check=False).returncode == 0, timeout=15,
             what="vdp OpenFlow listener")
    return h1, h2, d, of


def _flows(text):
    """dump-flows text -> [(priority, match, actions, n_packets)]."""
    out = []
    for line in text.splitlines():
        m = re.search(r"n_packets=(\d+).* priority=(\d+),?(\S*) actions=(\S+)", line)
        if m:
            out.append((int(m.group(2)), m.group(3), m.group(4), int(m.group(1))))
    return sorted(out)


def test_show_flows_ports_tables(topo):
    h1, h2, d, of = _start(topo)
    show = of.run("show")
    assert "dpid:00000000000000c1" in show
    assert "n_tables:254" in show
    assert f"1({h1.port}): addr:" in show and f"2({h2.port}): addr:" in show
    assert "FLOW_STATS TABLE_STATS PORT_STATS GROUP_STATS" in show
    assert "frags=normal miss_send_len=128" in show
    # secure mode, no flows: nothing passes
    assert _flows(of.run("dump-flows")) == []
    assert ping(h1, h2.ip, 2) == 0
    of.run("add-flow", "priority=10,in_port=1,actions=output:2")
    of.run("add-flow", "priority=10,in_port=2,actions=output:1")
    assert ping(h1, h2.ip, 3) == 3
    flows = _flows(of.run("dump-flows"))
    assert [(p, m, a) for p, m, a, _ in flows] == [(10, "in_port=1", "output:2"),
                                                  (10, "in_port=2", "output:1")]
    assert all(n >= 3 for *_, n in flows)
    # mod-flows: h1's traffic now goes nowhere
    of.run("mod-flows", "in_port=1,actions=drop")
    assert [a for _, m, a, _ in _flows(of.run("dump-flows")) if m == "in_port=1"] == ["drop"]
    assert ping(h1, h2.ip, 2) == 0
    of.run("mod-flows", "in_port=1,actions=output:2")
    assert ping(h1, h2.ip, 2) == 2
    # port counters
    ports = of.run("dump-ports")
    m = re.search(r"port\s+1: rx pkts=(\d+), bytes=(\d+)", ports)
    assert m and int(m.group(1)) >= 5
    assert re.search(r"port\s+2: rx pkts=\d+", ports)
    desc = of.run("dump-ports-desc")
    assert f"1({h1.port})" in desc and "state:      LIVE" in desc
    tables = of.run("dump-tables")
    assert re.search(r"table 0:\s+active=2, lookup=\d+, matched=\d+", tables)
    assert "tables 2...253: ditto" in tables
    tf = of.run("dump-table-features")
    assert 'table 0 ("table0")' in tf and "next tables: 1-253" in tf
    assert "goto_table" in tf and "apply_actions" in tf
    # del-flows: everything gone, traffic stops
    of.run("del-flows")
    assert _flows(of.run("dump-flows")) == []
    assert ping(h1, h2.ip, 2) == 0
    assert d.alive()


def test_groups_meters_mod_port(topo):
    h1, h2, d, of = _start(topo)
    of.run("add-group", "group_id=1,type=all,bucket=output:2")
    of.run("add-flow", "priority=5,in_port=1,actions=group:1")
    of.run("add-flow", "priority=5,in_port=2,actions=output:1")
    assert ping(h1, h2.ip, 3) == 3
    groups = of.run("dump-groups")
    assert "group_id=1,type=all,bucket=actions=output:2" in groups
    gstats = of.run("dump-group-stats")
    m = re.search(r"group_id=1,duration=[\d.]+s,ref_count=1,packet_count=(\d+)", gstats)
    assert m and int(m.group(1)) >= 3
    of.run("add-meter", "meter=1,pktps,bands=type=drop,rate=1000")
    of.run("mod-flows", "in_port=2,actions=meter:1,output:1")
    assert ping(h1, h2.ip, 2) == 2
    meters = of.run("dump-meters")
    assert "meter=1 pktps bands=" in meters and "type=drop rate=1000" in meters
    mstats = of.run("meter-stats")
    m = re.search(r"meter:1 flow_count:1 packet_in_count:(\d+)", mstats)
    assert m and int(m.group(1)) >= 2
    # mod-port no-forward on port 2: h1 cannot reach h2 any more
    of.run("mod-port", "2", "no-forward")
    assert "NO_FWD" in of.run("dump-ports-desc")
    assert ping(h1, h2.ip, 2) == 0
    of.run("mod-port", "2", "forward")
    assert ping(h1, h2.ip, 2) == 2
    # deleting the group removes the flow that used it
    of.run("del-groups", "group_id=1")
    assert [m for _, m, _, _ in _flows(of.run("dump-flows"))] == ["in_port=2"]
    assert ping(h1, h2.ip, 2) == 0
    assert d.alive()


def test_packet_out_and_monitor_packet_in(topo):
    h1, h2, d, of = _start(topo)
    # packet-out: a broadcast UDP frame sent to port 2 arrives at h2 (and one
    # sent to port 1 does not).  Counted by h2's interface: secure mode with
    # no flows, nothing else reaches it (a tcpdump capture here misses the
    # odd frame right after it starts).
    frame = ("ffffffffffff" "020000000001" "0800"
             "4500001c00010000401100000a0000010a000002" "12b512b500080000")
    rx0, rx1 = h2.stat("rx_packets"), h1.stat("rx_packets")
    of.run("packet-out", f"in_port=controller,packet={frame},actions=output:2")
    of.run("packet-out", f"in_port=controller,packet={frame},actions=output:2")
    wait_for(lambda: h2.stat("rx_packets") - rx0 >= 2, timeout=5, what="packet-outs at h2")
    of.run("packet-out", f"in_port=controller,packet={frame},actions=output:1")
    wait_for(lambda: h1.stat("rx_packets") - rx1 >= 1, timeout=5, what="packet-out at h1")
    assert h2.stat("rx_packets") - rx0 == 2
    # monitor: the flow sends h1's frames to the controller as well
    of.run("add-flow", "priority=1,in_port=1,actions=output:2,controller")
    mon = topo.popen(["ovs-ofctl", "-O", "OpenFlow13", "monitor", of.target, "65535"],
                     name="ofctl-monitor")
    out_file, err_file = Path(mon.vdpt_stdout), Path(mon.vdpt_stderr)
    time.sleep(1.0)              # monitor connected and configured (it prints no ready line)
    h1.send_udp("ff:ff:ff:ff:ff:ff", "10.0.0.2", [4242])
    try:
        # ovs-ofctl monitor prints what it receives on stderr
        wait_for(lambda: "OFPT_PACKET_IN" in err_file.read_text() or mon.poll() is not None,
                 timeout=10, what="PACKET_IN printed by ovs-ofctl monitor")
    except TimeoutError:
        pass
    # the host side of port 2 goes down: the switch side loses carrier and
    # the link monitor's event becomes a PORT_STATUS
    h2.set_link(False)
    try:
        wait_for(lambda: "LINK_DOWN" in err_file.read_text() or mon.poll() is not None,
                 timeout=10, what="PORT_STATUS printed by ovs-ofctl monitor")
    except TimeoutError:
        pass
    mon.terminate()
    mon.wait(timeout=10)
    out = out_file.read_text() + err_file.read_text()
    assert "OFPT_PACKET_IN" in out, out
    assert "in_port=1 (via action)" in out
    assert "tp_src=4242" in out and "unbuffered" in out
    status = out[out.index("OFPT_PORT_STATUS"):] if "OFPT_PORT_STATUS" in out else ""
    assert "MOD: 2(" in status and "LINK_DOWN" in status, out
    assert d.alive()


def test_errors_keep_the_switch_serving(topo):
    h1, h2, d, of = _start(topo)
    p = of.run("add-flow", "in_port=1,actions=group:9", check=False)
    assert p.returncode != 0 and "OFPBAC_BAD_OUT_GROUP" in p.stderr
    p = of.run("add-flow", "table=254,actions=output:1", check=False)
    assert p.returncode != 0
    p = of.run("add-flow", "priority=1,actions=meter:3,output:2", check=False)
    assert p.returncode != 0 and "OFPMMFC_UNKNOWN_METER" in p.stderr
    p = of.run("mod-port", "7", "no-forward", check=False)
    assert p.returncode != 0
    assert _flows(of.run("dump-flows")) == []
    of.run("add-flow", "priority=2,actions=output:in_port")
    assert len(_flows(of.run("dump-flows"))) == 1
    assert d.alive()


# ---------------------------------------------------------------- an os-ken controller

OSKEN_APP = r'''
"""A minimal os-ken L2 learning app and its launcher (os-ken 4 ships none)."""
import sys
from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.lib.packet import ethernet, packet
from os_ken.ofproto import ofproto_v1_3


class L2(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.macs = {}

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def features(self, ev):
        dp = ev.msg.datapath
        p, o = dp.ofproto_parser, dp.ofproto
        print("FEATURES dpid=%x n_tables=%d" % (dp.id, ev.msg.n_tables), flush=True)
        inst = [p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS,
                                        [p.OFPActionOutput(o.OFPP_CONTROLLER, o.OFPCML_NO_BUFFER)])]
        dp.send_msg(p.OFPFlowMod(dp, priority=0, match=p.OFPMatch(), instructions=inst))

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def packet_in(self, ev):
        msg = ev.msg
        dp = msg.datapath
        p, o = dp.ofproto_parser, dp.ofproto
        in_port = msg.match["in_port"]
        eth = packet.Packet(msg.data).get_protocols(ethernet.ethernet)[0]
        self.macs[eth.src] = in_port
        outp = self.macs.get(eth.dst, o.OFPP_FLOOD)
        print("PACKET_IN in_port=%d -> %d" % (in_port, outp), flush=True)
        acts = [p.OFPActionOutput(outp)]
        if outp != o.OFPP_FLOOD:
            inst = [p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS, acts)]
            dp.send_msg(p.OFPFlowMod(dp, priority=1, instructions=inst,
                                     match=p.OFPMatch(in_port=in_port, eth_dst=eth.dst)))
        data = msg.data if msg.buffer_id == o.OFP_NO_BUFFER else None
        dp.send_msg(p.OFPPacketOut(dp, buffer_id=msg.buffer_id, in_port=in_port, actions=acts,
                                   data=data))


if __name__ == "__main__":
    cfg.CONF(args=["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", sys.argv[1]],
             project="os_ken")
    mgr = app_manager.AppManager.get_instance()
    mgr.load_apps([__file__])
    hub.joinall(mgr.instantiate_apps(**mgr.create_contexts()))
'''


def test_osken_controller_learns_and_switch_reconnects(topo):
    pytest.importorskip("os_ken")
    app = Path(topo.tmpdir) / "l2app.py"
    app.write_text(OSKEN_APP)
    port = _free_port()

    def start_controller(n):
        p = topo.popen([sys.executable, str(app), str(port)], name=f"osken{n}")
        wait_for(lambda: p.poll() is not None or _listening(port), timeout=30,
                 what="os-ken listening")
        assert p.poll() is None, Path(p.vdpt_stderr).read_text()[-2000:]
        return p
    ctl1 = start_controller(1)
    h1 = topo.add_host("h1", "10.0.0.1/24")
    h2 = topo.add_host("h2", "10.0.0.2/24")
    d = topo.start_vdp([h1, h2], fail_mode="secure",
                       extra=["--dpid", "0x2a", "--controller", f"tcp:127.0.0.1:{port}"])
    out1 = Path(ctl1.vdpt_stdout)
    wait_for(lambda: "FEATURES" in out1.read_text(), timeout=15, what="switch at os-ken")
    assert "FEATURES dpid=2a n_tables=254" in out1.read_text()
    # the app floods the first frames, then installs flows: ping works
    assert ping(h1, h2.ip, 3, wait=5) >= 2
    text = out1.read_text()
    assert "PACKET_IN in_port=1 -> 4294967291" in text          # flooded ARP request
    assert re.search(r"PACKET_IN in_port=2 -> 1", text)
    # the controller goes away and comes back: the switch reconnects by itself
    ctl1.terminate()
    ctl1.wait(timeout=10)
    ctl2 = start_controller(2)
    out2 = Path(ctl2.vdpt_stdout)
    wait_for(lambda: "FEATURES" in out2.read_text(), timeout=20, what="switch reconnected")
    assert ping(h1, h2.ip, 3, wait=5) >= 2
    assert d.alive()
    assert "connected (controller)" in d.log_text()


def _listening(port):
    s = socket.socket()
    try:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0
    finally:
        s.close()
