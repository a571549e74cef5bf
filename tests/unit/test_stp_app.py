"""The stp app's adapter (controller/stp/app.py DatapathStp) and its config
section (controller/stp/config.py), without a network or os-ken's event loop.

Fake datapaths record the os-ken messages the adapter sends and interpret
the few it uses (flow add/delete in table 0, PORT_MOD, PACKET_OUT) the way a
switch does: a PACKET_OUT goes onto a simulated link unless the output port
has NO_FWD; the peer looks the frame up in its flow table (trap ->
packet-in, drop flow / NO_RECV -> dropped).  Time is simulated and warped
from timer to timer, so these tests check what the adapter does, never how
fast."""
import json
import textwrap

import pytest

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.config import ConfigError, load_config
from controller.stp import app as A
from controller.stp import bpdu as B
from controller.stp import config as C
from controller.stp.common import OFPPC_NO_FWD, OFPPC_NO_PACKET_IN, OFPPC_NO_RECV

STP_MAC = B.mac_str(B.STP_GROUP_MAC)


# ------------------------------------------------------------------ fakes

class FakeL2:
    """Stands for the l2 app (controller/l2/app.py L2App): its spanning
    tree API, for one datapath."""

    def __init__(self, dpid):
        self.dpid = dpid
        self.forwarding = {}
        self.learning = {}
        self.calls = []
        self.flushes = []
        self.ageing = "unset"

    def set_port_forwarding(self, dpid, port, allowed, learning=False):
        assert dpid == self.dpid
        self.forwarding[port] = allowed
        self.learning[port] = learning
        self.calls.append((port, allowed, learning))

    def flush(self, dpid, ports=None):
        assert dpid == self.dpid
        self.flushes.append(ports)

    def set_ageing(self, dpid, seconds):
        assert dpid == self.dpid
        self.ageing = seconds


class FakeSwitch:
    """A datapath as the adapter sees it (id, ofproto, parser, send_msg),
    keeping the state those messages build."""

    def __init__(self, net, name, dpid, nports, speed_kbps=10_000_000, local=True):
        self.net = net
        self.name = name
        self.id = dpid
        self.ofproto = ofp
        self.ofproto_parser = parser
        self.sent = []
        self.flows = {}             # (priority, match key) -> (cookie, action)
        self.config = {}            # port -> config bits
        self.link = {}              # port -> up
        self.ports = {}
        for no in range(1, nports + 1):
            self.ports[no] = parser.OFPPort(no, f"02:00:00:{dpid & 0xff:02x}:00:{no:02x}",
                                            f"{name}-p{no}".encode(), 0, 0, 0, 0, 0, 0,
                                            speed_kbps, speed_kbps)
            self.link[no] = True
            self.config[no] = 0
        if local:
            self.ports[ofp.OFPP_LOCAL] = parser.OFPPort(
                ofp.OFPP_LOCAL, f"0a:00:00:00:00:{dpid & 0xff:02x}", name.encode(),
                0, 0, 0, 0, 0, 0, 0, 0)
        self.l2 = FakeL2(dpid)
        self.stp = None
        self.dropped = 0

    # -- the adapter side
    def send_msg(self, msg):
        self.sent.append(msg)
        if isinstance(msg, parser.OFPFlowMod):
            self._flow_mod(msg)
        elif isinstance(msg, parser.OFPPortMod):
            assert msg.hw_addr == self.ports[msg.port_no].hw_addr
            c = self.config[msg.port_no]
            self.config[msg.port_no] = (c & ~msg.mask) | (msg.config & msg.mask)
        elif isinstance(msg, parser.OFPPacketOut):
            assert msg.in_port == ofp.OFPP_CONTROLLER
            (act,) = msg.actions
            if self.config[act.port] & OFPPC_NO_FWD or not self.link[act.port]:
                self.dropped += 1
                return
            self.net.wire(self, act.port, bytes(msg.data))
        else:
            raise AssertionError(f"unexpected message {msg}")

    @staticmethod
    def _key(match):
        d = dict(match.items())
        return tuple(sorted(d.items()))

    def _flow_mod(self, m):
        assert m.table_id == 0
        key = (m.priority, self._key(m.match))
        if m.command == ofp.OFPFC_ADD:
            assert m.cookie == A.STP_COOKIE
            action = "drop"
            for ins in m.instructions:
                for a in ins.actions:
                    assert a.port == ofp.OFPP_CONTROLLER and a.max_len == ofp.OFPCML_NO_BUFFER
                    action = "controller"
            self.flows[key] = (m.cookie, action)
        elif m.command == ofp.OFPFC_DELETE_STRICT:
            assert m.cookie_mask == A.COOKIE_MASK
            if self.flows.get(key, (None,))[0] == m.cookie:
                del self.flows[key]
        elif m.command == ofp.OFPFC_DELETE:
            assert m.cookie_mask == A.COOKIE_MASK and not self._key(m.match)
            self.flows = {k: v for k, v in self.flows.items() if v[0] != m.cookie}
        else:
            raise AssertionError(f"unexpected flow mod command {m.command}")

    def lookup(self, in_port, frame):
        """The action of the best flow for frame arriving on in_port."""
        best = None
        for (prio, key), (_, action) in self.flows.items():
            d = dict(key)
            if "in_port" in d and d["in_port"] != in_port:
                continue
            if "eth_dst" in d and d["eth_dst"] != B.mac_str(frame[:6]):
                continue
            if best is None or prio > best[0]:
                best = (prio, action)
        return best[1] if best else "miss"

    # -- the wire side
    def receive(self, port, frame, now):
        if not self.link[port] or self.config[port] & OFPPC_NO_RECV:
            self.dropped += 1
            return
        if self.lookup(port, frame) != "controller":
            self.dropped += 1
            return
        assert not self.config[port] & OFPPC_NO_PACKET_IN
        assert self.stp.packet_in(port, frame, now)

    def drop_flow_ports(self):
        return sorted(dict(k)["in_port"] for (prio, k) in self.flows
                      if prio == A.DROP_PRIORITY)

    def port_desc(self):
        return list(self.ports.values())


class Net:
    """Fake switches with DatapathStp adapters, joined by links; warped time."""

    def __init__(self, cfg=None):
        self.now = 100.0
        self.sw = {}
        self.links = {}
        self.q = []
        self.cfg = cfg or C.DEFAULT

    def add(self, name, dpid, nports, **kw):
        s = FakeSwitch(self, name, dpid, nports, **kw)
        dc = self.cfg.for_dpid(dpid)
        s.stp = A.DatapathStp(s, dc, l2=s.l2)
        self.sw[name] = s
        return s

    def connect_all(self):
        for s in self.sw.values():
            s.stp.connected()
            s.stp.port_desc_part(s.port_desc(), False, self.now)
        self.drain()

    def cable(self, a, pa, b, pb):
        self.links[(a, pa)] = (b, pb)
        self.links[(b, pb)] = (a, pa)

    def wire(self, sw, port, frame):
        peer = self.links.get((sw.name, port))
        if peer is not None:
            self.q.append((peer, frame))

    def drain(self):
        n = 0
        while self.q:
            (name, port), frame = self.q.pop(0)
            self.sw[name].receive(port, frame, self.now)
            n += 1
            assert n < 100000, "BPDU storm"

    def run(self, seconds):
        end = self.now + seconds
        while True:
            wakes = [w for w in (s.stp.next_wakeup() for s in self.sw.values()) if w is not None]
            t = min(wakes) if wakes else end
            if t > end:
                break
            self.now = max(self.now, t)
            for s in self.sw.values():
                w = s.stp.next_wakeup()
                if w is not None and w <= self.now:
                    s.stp.tick(self.now)
            self.drain()
        self.now = end
        for s in self.sw.values():
            s.stp.tick(self.now)
        self.drain()

    def set_link(self, a, pa, up):
        """Both ends of a cable lose/regain carrier: PORT_STATUS to both."""
        for name, port in ((a, pa), self.links[(a, pa)]):
            s = self.sw[name]
            s.link[port] = up
            old = s.ports[port]
            s.ports[port] = old._replace(state=0 if up else ofp.OFPPS_LINK_DOWN)
            s.stp.port_status("modify", s.ports[port], self.now)
        self.drain()


def ring(cfg=None, hosts=True):
    """s1..s3; port 1 a host (no peer), port 2 -> next switch's port 3."""
    net = Net(cfg)
    for i in (1, 2, 3):
        net.add(f"s{i}", i, 3)
    for i in (1, 2, 3):
        net.cable(f"s{i}", 2, f"s{i % 3 + 1}", 3)
    return net


def ring_ports(net):
    return [(n, p) for n in net.sw for p in (2, 3)]


def blocked(net):
    """Ring ports (both ends up) the adapter keeps from forwarding."""
    out = []
    for name, p in ring_ports(net):
        s = net.sw[name]
        if s.link[p] and p in s.drop_flow_ports():
            out.append((name, p))
    return out


def cfg_from(text):
    return load_config("t.toml", {"stp": C.validate}, text=textwrap.dedent(text))["stp"]


FAST_STP = """
    [stp]
    mode = "stp"
    hello_time = 1
    max_age = 6
    forward_delay = 4
"""


# ------------------------------------------------------------------ connect

def test_connect_installs_trap_and_quarantine_first():
    net = Net()
    s = net.add("s1", 1, 2)
    s.stp.connected()
    fm = [m for m in s.sent if isinstance(m, parser.OFPFlowMod)]
    assert fm[0].command == ofp.OFPFC_DELETE and fm[0].cookie == A.STP_COOKIE
    assert fm[0].cookie_mask == A.COOKIE_MASK and fm[0].table_id == 0
    assert s.flows[(A.TRAP_PRIORITY, (("eth_dst", STP_MAC),))][1] == "controller"
    # nothing but BPDUs gets anywhere until the ports are known
    assert s.lookup(1, b"\xff" * 6 + b"\0" * 54) == "drop"
    assert s.lookup(1, B.STP_GROUP_MAC + b"\0" * 54) == "controller"
    assert s.stp.next_wakeup() is None


def test_port_list_gives_every_port_a_drop_flow_then_lifts_quarantine():
    net = Net()
    s = net.add("s1", 1, 3)
    s.stp.connected()
    s.stp.port_desc_part(s.port_desc()[:2], True, net.now)       # multipart: wait
    assert s.stp.bridge is None
    s.stp.port_desc_part(s.port_desc()[2:], False, net.now)
    assert sorted(s.stp.bridge.ports) == [1, 2, 3]                # LOCAL left out
    assert (A.QUARANTINE_PRIORITY, ()) not in s.flows
    # RSTP: no peer yet, so all ports still discard (edge detection takes time)
    assert s.drop_flow_ports() == [1, 2, 3]
    assert s.l2.forwarding == {1: False, 2: False, 3: False}
    assert s.l2.learning == {1: False, 2: False, 3: False}
    # the LOCAL port's address is the bridge address
    assert s.stp.bridge.status()["bridge_id"] == "8000.0a0000000001"
    # lone bridge: ports become designated, then forward (auto edge / timers)
    net.run(40)
    assert s.drop_flow_ports() == []
    assert s.l2.forwarding == {1: True, 2: True, 3: True}
    assert all(c == 0 for c in s.config.values())


def test_bridge_mac_falls_back_to_dpid_and_config_mac_wins():
    net = Net()
    s = net.add("s1", 0x00000000aabbccddee, 1, local=False)
    s.stp.connected()
    s.stp.port_desc_part(s.port_desc(), False, net.now)
    assert s.stp.bridge.status()["mac"] == "00:aa:bb:cc:dd:ee"
    cfg = cfg_from("""
        [stp]
        [[stp.datapath]]
        dpid = 5
        mac = "02:11:22:33:44:55"
        priority = 4096
    """)
    net = Net(cfg)
    s = net.add("s5", 5, 1)
    s.stp.connected()
    s.stp.port_desc_part(s.port_desc(), False, net.now)
    assert s.stp.bridge.status()["bridge_id"] == "1000.021122334455"


def test_path_cost_from_curr_speed():
    net = Net()
    s = net.add("s1", 1, 1, speed_kbps=1_000_000)            # 1 Gb/s
    s.stp.connected()
    s.stp.port_desc_part(s.port_desc(), False, net.now)
    assert s.stp.bridge.status()["ports"][1]["cost"] == 20000  # RSTP long cost
    s.stp.port_status("modify", s.ports[1]._replace(curr_speed=10_000_000), net.now)
    assert s.stp.bridge.status()["ports"][1]["cost"] == 2000
    net = Net(cfg_from(FAST_STP))
    s = net.add("s1", 1, 1, speed_kbps=10_000_000)
    s.stp.connected()
    s.stp.port_desc_part(s.port_desc(), False, net.now)
    assert s.stp.bridge.status()["ports"][1]["cost"] == 2      # 802.1D-1998 short cost


# ------------------------------------------------------------------ rings

@pytest.mark.parametrize("text,settle", [("[stp]\n", 10), (FAST_STP, 20)],
                         ids=["rstp", "stp"])
def test_ring_blocks_exactly_one_port_and_reconverges(text, settle):
    net = ring(cfg_from(text))
    net.connect_all()
    net.run(settle)
    bl = blocked(net)
    assert len(bl) == 1, bl
    (name, port) = bl[0]
    s = net.sw[name]
    assert s.config[port] == OFPPC_NO_FWD                     # alternate
    assert s.l2.forwarding[port] is False
    # every other ring port and every host port forwards, and l2 knows it
    for n, sw in net.sw.items():
        for p in (1, 2, 3):
            if (n, p) != (name, port):
                assert p not in sw.drop_flow_ports() and sw.l2.forwarding[p], (n, p)
                assert sw.config[p] == 0
    # the root (lowest bridge id: LOCAL MACs 0a:..:01) has no blocked port
    roots = {sw.stp.bridge.status()["root_id"] for sw in net.sw.values()}
    assert roots == {"8000.0a0000000001"}
    assert name != "s1"
    # cut a forwarding ring link of the root: the blocked port must take over
    net.set_link("s1", 2, False)
    net.run(settle)
    assert blocked(net) == []
    assert net.sw[name].l2.forwarding[port] is True
    assert net.sw[name].config[port] == 0
    # the cut ports are disabled: every bit set, and a drop flow
    for n, p in (("s1", 2), net.links[("s1", 2)]):
        assert net.sw[n].config[p] == OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN
        assert p in net.sw[n].drop_flow_ports()
    # the topology change reached the l2 logic as MAC flushes
    assert any(sw.l2.flushes for sw in net.sw.values())
    # heal: one port blocked again
    net.set_link("s1", 2, True)
    net.run(settle)
    assert len(blocked(net)) == 1


def test_stp_short_ageing_reaches_l2():
    net = ring(cfg_from(FAST_STP))
    net.connect_all()
    net.run(20)
    net.set_link("s1", 2, False)
    net.run(1)
    # 802.1D: during a topology change learned MACs age in forward_delay
    assert any(sw.l2.ageing == 4.0 for sw in net.sw.values())
    text = A.format_status({"datapaths": [sw.stp.status() for sw in net.sw.values()]})
    assert "short MAC ageing 4s" in text
    net.run(30)
    # then back to the l2 app's own configured ageing
    assert all(sw.l2.ageing in (None, "unset") for sw in net.sw.values())
    assert any(sw.l2.ageing is None for sw in net.sw.values())


def test_alternate_port_keeps_hearing_bpdus():
    """NO_FWD on the alternate port must not cut its BPDU input (never
    NO_PACKET_IN or NO_RECV on a live port), else it would forward after
    max age and loop."""
    net = ring()
    net.connect_all()
    net.run(60)
    [(name, port)] = blocked(net)
    st = net.sw[name].stp.bridge.status()["ports"][port]
    assert st["role"] == "alternate" and st["stats"]["rx_bpdus"] > 10


def test_alternate_port_agreement_gets_through_no_fwd():
    """An alternate port answers a proposal with an agreement; NO_FWD would
    drop that PACKET_OUT, and the peer's designated port would then turn
    (auto) edge on a bridge-to-bridge link.  The adapter lifts NO_FWD
    around the frame and restores it."""
    net = ring()
    net.connect_all()
    net.run(30)
    [(name, port)] = blocked(net)
    s = net.sw[name]
    assert s.config[port] == OFPPC_NO_FWD               # restored after each BPDU
    assert s.stp.bridge.status()["ports"][port]["stats"]["tx_bpdus"] > 0
    peer_name, peer_port = net.links[(name, port)]
    peer = net.sw[peer_name].stp.bridge.status()["ports"][peer_port]
    assert peer["role"] == "designated" and peer["state"] == "forwarding"
    assert peer["edge"] is False
    for n, sw in net.sw.items():
        for p in (2, 3):
            assert sw.stp.bridge.status()["ports"][p]["edge"] is False, (n, p)


# ------------------------------------------------------------------ l2 hand-off

@pytest.mark.parametrize("with_l2", [True, False])
def test_learning_state_is_learn_only_with_l2_else_dropped(with_l2):
    """802.1D: listening (dropped, l2 told discarding), then learning: with
    the l2 app the port loses our drop flow (l2's learn-only flow takes
    the frames) and l2 is told learning; without it the port stays dropped."""
    net = Net(cfg_from(FAST_STP))
    s = net.add("s1", 1, 1)
    if not with_l2:
        s.stp.l2 = None
    s.stp.connected()
    s.stp.port_desc_part(s.port_desc(), False, net.now)
    net.run(1)
    assert s.stp.bridge.port_state(1) == "listening"
    assert 1 in s.drop_flow_ports()
    net.run(4)                                  # forward delay 4 s
    assert s.stp.bridge.port_state(1) == "learning"
    assert (1 in s.drop_flow_ports()) is not with_l2
    assert s.config[1] == 0                     # designated: no config bit
    if with_l2:
        assert s.l2.calls[-1] == (1, False, True)
    net.run(4)
    assert s.stp.bridge.port_state(1) == "forwarding"
    assert 1 not in s.drop_flow_ports()
    if with_l2:
        assert s.l2.calls[-1] == (1, True, True)


def test_port_out_of_spanning_tree_is_left_forwarding():
    cfg = cfg_from("""
        [stp]
        [[stp.datapath]]
        dpid = 1
        [[stp.datapath.port]]
        port = 1
        enabled = false
        [[stp.datapath.port]]
        port = 2
        edge = true
        bpdu_guard = true
    """)
    net = Net(cfg)
    s = net.add("s1", 1, 2)
    s.stp.connected()
    s.stp.port_desc_part(s.port_desc(), False, net.now)
    assert 1 not in s.stp.bridge.ports and s.stp.off_ports == {1}
    assert 1 not in s.drop_flow_ports() and s.l2.forwarding[1] is True
    # an edge port forwards at once (RSTP)
    assert s.l2.forwarding[2] is True and 2 not in s.drop_flow_ports()
    # a BPDU on the non-STP port is swallowed, not handled
    other = B.encode_frame(B.Bpdu.config(root_id=1, bridge_id=1, port_id=0x8001),
                           "02:00:00:00:00:99")
    assert s.stp.packet_in(1, other, net.now) is True
    assert s.stp.counters["foreign_bpdu"] == 1
    # BPDU guard on port 2: shut, all bits, drop flow
    s.stp.packet_in(2, other, net.now)
    assert s.config[2] == OFPPC_NO_RECV | OFPPC_NO_FWD | OFPPC_NO_PACKET_IN
    assert 2 in s.drop_flow_ports() and s.l2.forwarding[2] is False
    assert s.stp.status()["ports"]["2"]["guard"] == "bpdu-guard"


def test_non_bpdu_packet_in_is_not_ours():
    net = ring()
    net.connect_all()
    s = net.sw["s1"]
    assert s.stp.packet_in(1, b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\0" * 46,
                           net.now) is False


def test_port_added_and_deleted_at_run_time():
    net = ring()
    net.connect_all()
    net.run(10)
    s = net.sw["s2"]
    new = parser.OFPPort(7, "02:00:00:02:00:07", b"new", 0, 0, 0, 0, 0, 0, 10_000_000, 0)
    s.ports[7], s.link[7], s.config[7] = new, True, 0
    s.stp.port_status("add", new, net.now)
    assert 7 in s.stp.bridge.ports and 7 in s.drop_flow_ports()
    net.run(10)
    assert 7 not in s.drop_flow_ports() and s.l2.forwarding[7] is True
    s.stp.port_status("delete", new, net.now)
    assert 7 not in s.stp.bridge.ports and 7 not in s.drop_flow_ports()
    assert s.l2.forwarding[7] is False
    # a port that vanished from a later PORT_DESC goes as well
    s.stp.port_desc_part([p for no, p in s.ports.items() if no != 1], False, net.now)
    assert 1 not in s.stp.bridge.ports


def test_status_json_and_text():
    net = ring()
    net.connect_all()
    net.run(10)
    doc = {"app": "stp", "datapaths": [s.stp.status() for s in net.sw.values()]}
    doc = json.loads(json.dumps(doc))
    st = doc["datapaths"][0]
    assert st["dpid"] == "0000000000000001" and st["ready"] and st["mode"] == "rstp"
    assert st["ports"]["1"]["name"] == "s1-p1"
    text = A.format_status(doc)
    assert "this bridge is the root" in text
    assert text.count("alternate") == 1


# ------------------------------------------------------------------ config

def test_config_defaults_and_overrides():
    cfg = cfg_from("""
        [stp]
        mode = "stp"
        priority = 36864
        status_socket = "/tmp/x.sock"
        [[stp.datapath]]
        dpid = "00:00:00:00:00:00:00:02"
        name = "s2"
        mode = "rstp"
        priority = 4096
        forward_delay = 12
          [[stp.datapath.port]]
          port = 3
          cost = 100
          priority = 64
          p2p = false
          root_guard = true
        [[stp.datapath]]
        dpid = 3
        enabled = false
    """)
    assert cfg.status_socket == "/tmp/x.sock"
    d1 = cfg.for_dpid(1)
    assert d1.bridge.mode == "stp" and d1.bridge.priority == 36864
    d2 = cfg.for_dpid(2)
    assert d2.name == "s2" and d2.bridge_kwargs()["mode"] == "rstp"
    assert d2.bridge.forward_delay == 12.0 and d2.bridge.priority == 4096
    assert d2.port(3).port_kwargs() == dict(priority=64, cost=100, edge=False, auto_edge=True,
                                            p2p=False, bpdu_guard=False, root_guard=True)
    assert d2.port(4) == C.PortConfig(4)
    assert cfg.for_dpid(3) is None


def test_config_only_listed():
    cfg = cfg_from("""
        [stp]
        only_listed = true
        [[stp.datapath]]
        dpid = 1
    """)
    assert cfg.for_dpid(1) is not None and cfg.for_dpid(2) is None


@pytest.mark.parametrize("body,line,words", [
    ('mode = "mstp"', 2, ["stp.mode", "'rstp'", "'mstp'"]),
    ("priority = 1000", 2, ["stp.priority", "multiple of 4096"]),
    ("hello_time = 0", 2, ["stp.hello_time", "1..10"]),
    ("max_age = 30\nforward_delay = 4", 2, ["stp.max_age", "2*(forward_delay-1)"]),
    ("colour = 1", 2, ["unknown key 'colour'"]),
    ("[[stp.datapath]]\nname = 'x'", 2, ["stp.datapath[0]", "missing 'dpid'"]),
    ("[[stp.datapath]]\ndpid = 'zz'", 3, ["stp.datapath[0].dpid", "bad dpid"]),
    ("[[stp.datapath]]\ndpid = 1\n[[stp.datapath]]\ndpid = '0x1'", 5,
     ["stp.datapath[1].dpid", "configured twice"]),
    ("[[stp.datapath]]\ndpid = 1\nmac = '01:00:00:00:00:01'", 4,
     ["stp.datapath[0].mac", "multicast"]),
    ("[[stp.datapath]]\ndpid = 1\n[[stp.datapath.port]]\nport = 5000", 5,
     ["stp.datapath[0].port[0].port", "1..4095"]),
    ("[[stp.datapath]]\ndpid = 1\n[[stp.datapath.port]]\nport = 1\npriority = 100", 6,
     ["stp.datapath[0].port[0].priority", "multiple of 16"]),
    ("[[stp.datapath]]\ndpid = 1\n[[stp.datapath.port]]\nport = 1\ncost = 0", 6,
     ["stp.datapath[0].port[0].cost", "1..200000000"]),
    ("[[stp.datapath]]\ndpid = 1\n[[stp.datapath.port]]\nport = 1\nedge = 'yes'", 6,
     ["stp.datapath[0].port[0].edge", "a boolean"]),
    ("[[stp.datapath]]\ndpid = 1\n[[stp.datapath.port]]\nport = 1\n[[stp.datapath.port]]\n"
     "port = 1", 7, ["stp.datapath[0].port[1].port", "twice"]),
    ("[[stp.datapath]]\ndpid = 1\nmode = 'rstp'\npriority = 32769", 5,
     ["stp.datapath[0].priority", "4096"]),
])
def test_config_errors_name_line_and_key(body, line, words):
    text = "[stp]\n" + body + "\n"
    with pytest.raises(ConfigError) as ei:
        load_config("ctl.toml", {"stp": C.validate}, text=text)
    msg = str(ei.value)
    assert msg.startswith(f"ctl.toml: line {line}: "), msg
    for w in words:
        assert w in msg, msg


def test_load_stp_config_leaves_other_sections_to_their_apps(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[vrrp]\nwhatever = 1\n[stp]\nmode = "stp"\n')
    assert A.load_stp_config(str(p)).defaults.bridge.mode == "stp"
    p.write_text('[vrrp]\nwhatever = 1\n')
    assert A.load_stp_config(str(p)) is C.DEFAULT
    assert A.load_stp_config(None) is C.DEFAULT
    p.write_text('[stp]\nmode = 3\n')
    with pytest.raises(ConfigError, match="line 2: stp.mode: expected a string"):
        A.load_stp_config(str(p))
    p.write_text('[stpp]\nmode = "stp"\n')
    with pytest.raises(ConfigError, match="unknown section .stpp."):
        A.load_stp_config(str(p))
