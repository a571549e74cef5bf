"""OpenFlow over TLS end to end: `vdp run --ssl-key/--ssl-cert/--ssl-ca` with
`--listen pssl:` (Open vSwitch's ovs-ofctl as the client) and `--controller
ssl:` (an os-ken controller, and a small Python TLS controller that also
checks fail-open when it goes away).

Throwaway certificates are made with openssl in the test's temp dir: one CA
signs the switch, the controllers and the ovs-ofctl client; a second,
unrelated CA signs a rogue client and a rogue controller that must be
refused.  Hosts h1 10.0.0.1 and h2 10.0.0.2 sit in namespaces named vdpt-*
(removed by the topo fixture even on failure).  TCP ports 16810-16829.
"""
import inspect
import shutil
import socket
import ssl
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from topo import in_ns, ping, run, wait_for

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]

PSSL_PORT = 16810
OSKEN_PORT = 16811
PY_CTL_PORT = 16812
ROGUE_PORT = 16813


def _openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("vdpt-pki")

    def ca(name):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-subj", f"/CN={name}", "-keyout", d / f"{name}.key", "-out", d / f"{name}.crt")

    def signed(name, by):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", d / f"{name}.key", "-out", d / f"{name}.csr")
        _openssl("x509", "-req", "-in", d / f"{name}.csr", "-CA", d / f"{by}.crt",
                 "-CAkey", d / f"{by}.key", "-CAcreateserial", "-days", "2",
                 "-out", d / f"{name}.crt")
    ca("ca")
    ca("rogueca")
    for name in ("switch", "controller", "client"):
        signed(name, "ca")
    for name in ("rogueclient", "roguectl"):
        signed(name, "rogueca")
    return d


def _tls_flags(pki):
    return ["--ssl-key", pki / "switch.key", "--ssl-cert", pki / "switch.crt",
            "--ssl-ca", pki / "ca.crt"]


def _port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _need_port(port):
    if not _port_free(port):
        pytest.skip(f"TCP port {port} is in use")


def _agent_has_fail_open():
    from datapath.ofp import agent
    return "controllers_configured" in inspect.getsource(agent)


# ---------------------------------------------------------------- pssl + ovs-ofctl

def _ofctl(pki, cmd, *args, key="client", ca="ca", proto="ssl", check=True):
    argv = ["ovs-ofctl", "-O", "OpenFlow13", "--private-key", pki / f"{key}.key",
            "--certificate", pki / f"{key}.crt", "--ca-cert", pki / f"{ca}.crt",
            "-t", "10", cmd, f"{proto}:127.0.0.1:{PSSL_PORT}", *args]
    p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} failed ({p.returncode}): {p.stderr}")
    return p


@pytest.mark.skipif(shutil.which("ovs-ofctl") is None, reason="needs ovs-ofctl")
def test_pssl_listener_with_ovs_ofctl(topo, pki):
    _need_port(PSSL_PORT)
    h1 = topo.add_host("h1", "10.0.0.1/24")
    h2 = topo.add_host("h2", "10.0.0.2/24")
    d = topo.start_vdp([h1, h2], fail_mode="secure",
                       extra=["--dpid", "0xc5", "--listen", f"pssl:{PSSL_PORT}:127.0.0.1",
                              *_tls_flags(pki)])
    wait_for(lambda: _ofctl(pki, "show", check=False).returncode == 0, timeout=15,
             what="vdp pssl listener")
    show = _ofctl(pki, "show").stdout
    assert "dpid:00000000000000c5" in show and "n_tables:254" in show
    assert f"1({h1.port}): addr:" in show and f"2({h2.port}): addr:" in show
    # flows over TLS reach the forwarding path
    assert ping(h1, h2.ip, 2) == 0
    _ofctl(pki, "add-flow", "priority=10,in_port=1,actions=output:2")
    _ofctl(pki, "add-flow", "priority=10,in_port=2,actions=output:1")
    assert ping(h1, h2.ip, 3) == 3
    flows = _ofctl(pki, "dump-flows").stdout
    assert "in_port=1 actions=output:2" in flows and "in_port=2 actions=output:1" in flows
    # a client whose certificate another CA signed is refused ...
    p = _ofctl(pki, "show", key="rogueclient", ca="ca", check=False)
    assert p.returncode != 0 and "dpid:" not in p.stdout
    # ... and so is one that does not trust our CA, and plain TCP
    p = _ofctl(pki, "show", key="client", ca="rogueca", check=False)
    assert p.returncode != 0 and "dpid:" not in p.stdout
    p = _ofctl(pki, "show", proto="tcp", check=False)
    assert p.returncode != 0 and "dpid:" not in p.stdout
    # the listener is still fine
    assert "dpid:00000000000000c5" in _ofctl(pki, "show").stdout
    assert d.alive()


# ---------------------------------------------------------------- ssl: to os-ken

OSKEN_APP = r'''
"""An os-ken L2 learning app listening with TLS (--ctl-privkey etc.)."""
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
        print("FEATURES dpid=%x" % dp.id, flush=True)
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
        print("PACKET_IN in_port=%d" % in_port, flush=True)
        acts = [p.OFPActionOutput(outp)]
        if outp != o.OFPP_FLOOD:
            inst = [p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS, acts)]
            dp.send_msg(p.OFPFlowMod(dp, priority=1, instructions=inst,
                                     match=p.OFPMatch(in_port=in_port, eth_dst=eth.dst)))
        data = msg.data if msg.buffer_id == o.OFP_NO_BUFFER else None
        dp.send_msg(p.OFPPacketOut(dp, buffer_id=msg.buffer_id, in_port=in_port, actions=acts,
                                   data=data))


if __name__ == "__main__":
    port, key, crt, ca = sys.argv[1:5]
    cfg.CONF(args=["--ofp-listen-host", "127.0.0.1", "--ofp-ssl-listen-port", port,
                   "--ofp-tcp-listen-port", "0", "--ctl-privkey", key, "--ctl-cert", crt,
                   "--ca-certs", ca], project="os_ken")
    mgr = app_manager.AppManager.get_instance()
    mgr.load_apps([__file__])
    hub.joinall(mgr.instantiate_apps(**mgr.create_contexts()))
'''


def test_ssl_controller_os_ken(topo, pki):
    pytest.importorskip("os_ken")
    _need_port(OSKEN_PORT)
    app = Path(topo.tmpdir) / "l2tls.py"
    app.write_text(OSKEN_APP)
    ctl = topo.popen([sys.executable, app, OSKEN_PORT, pki / "controller.key",
                      pki / "controller.crt", pki / "ca.crt"], name="osken-tls")
    wait_for(lambda: ctl.poll() is not None or not _port_free(OSKEN_PORT), timeout=30,
             what="os-ken listening")
    assert ctl.poll() is None, Path(ctl.vdpt_stderr).read_text()[-2000:]
    h1 = topo.add_host("h1", "10.0.0.1/24")
    h2 = topo.add_host("h2", "10.0.0.2/24")
    d = topo.start_vdp([h1, h2], fail_mode="secure",
                       extra=["--dpid", "0x5c", "--controller", f"ssl:127.0.0.1:{OSKEN_PORT}",
                              *_tls_flags(pki)])
    out = Path(ctl.vdpt_stdout)
    wait_for(lambda: "FEATURES" in out.read_text(), timeout=20, what="switch at os-ken over TLS")
    assert "FEATURES dpid=5c" in out.read_text()
    # PACKET_IN up and PACKET_OUT/FLOW_MOD down, all over TLS: ping works
    assert ping(h1, h2.ip, 3, wait=5) >= 2
    assert "PACKET_IN in_port=1" in out.read_text()
    assert "connected (controller)" in d.log_text()
    assert d.alive()


# ---------------------------------------------------------------- ssl: to a Python controller

class TlsController:
    """A scripted OpenFlow 1.3 controller on a TLS listening socket: one
    connection at a time, messages built and parsed by os-ken."""

    def __init__(self, pki, port, key="controller", ca="ca"):
        from os_ken.ofproto import ofproto_v1_3 as ofp
        from os_ken.ofproto import ofproto_v1_3_parser as parser
        self.ofp, self.parser = ofp, parser
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki / f"{key}.crt", pki / f"{key}.key")
        ctx.load_verify_locations(pki / f"{ca}.crt")
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.ctx = ctx
        self.port = port
        self.lsock = None
        self.conn = None
        self.buf = b""
        self.xid = 0
        self.handshake_error = None
        self.listen()

    def listen(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(4)
        self.lsock = s

    def stop_listening(self):
        if self.lsock is not None:
            self.lsock.close()
            self.lsock = None

    def accept(self, timeout=30):
        self.lsock.settimeout(timeout)
        raw, _ = self.lsock.accept()
        raw.settimeout(timeout)
        try:
            self.conn = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            raw.close()
            self.handshake_error = e
            raise
        self.buf = b""
        return self.conn.getpeercert()

    def send(self, msg):
        self.xid += 1
        msg.set_xid(self.xid)
        msg.serialize()
        self.conn.sendall(bytes(msg.buf))
        return self.xid

    def recv(self):
        while True:
            if len(self.buf) >= 8:
                n = struct.unpack_from("!H", self.buf, 2)[0]
                if len(self.buf) >= n:
                    raw, self.buf = self.buf[:n], self.buf[n:]
                    version, mtype, length, xid = struct.unpack_from("!BBHI", raw)
                    return self.parser.msg_parser(self, version, mtype, length, xid, raw)
            data = self.conn.recv(65536)
            if not data:
                raise EOFError("switch closed the connection")
            self.buf += data

    def recv_until(self, pred):
        while True:
            m = self.recv()
            if pred(m):
                return m
            if m.msg_type == self.ofp.OFPT_ECHO_REQUEST:
                self.send(self.parser.OFPEchoReply(self, m.data))

    def handshake(self):
        """HELLO, FEATURES; returns the FEATURES_REPLY."""
        hello = self.recv()
        assert hello.msg_type == self.ofp.OFPT_HELLO
        self.send(self.parser.OFPHello(self))
        self.send(self.parser.OFPFeaturesRequest(self))
        return self.recv_until(lambda m: m.msg_type == self.ofp.OFPT_FEATURES_REPLY)

    def barrier(self):
        xid = self.send(self.parser.OFPBarrierRequest(self))
        self.recv_until(lambda m: m.msg_type == self.ofp.OFPT_BARRIER_REPLY and m.xid == xid)

    def close_conn(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # os-ken's parser wants a datapath object: this one will do
    @property
    def ofproto(self):
        return self.ofp

    @property
    def ofproto_parser(self):
        return self.parser

    id = 0


def _packet_ins(ctl, n, timeout=10):
    got = []
    ctl.conn.settimeout(timeout)
    while len(got) < n:
        m = ctl.recv()
        if m.msg_type == ctl.ofp.OFPT_PACKET_IN:
            got.append(m)
        elif m.msg_type == ctl.ofp.OFPT_ECHO_REQUEST:
            ctl.send(ctl.parser.OFPEchoReply(ctl, m.data))
    return got


def test_ssl_controller_authenticates_and_fail_open_when_it_is_gone(topo, pki):
    pytest.importorskip("os_ken")
    _need_port(PY_CTL_PORT)
    ctl = TlsController(pki, PY_CTL_PORT)
    try:
        h1 = topo.add_host("h1", "10.0.0.1/24")
        h2 = topo.add_host("h2", "10.0.0.2/24")
        d = topo.start_vdp([h1, h2], fail_mode="standalone",
                           extra=["--dpid", "0x77", "--controller",
                                  f"ssl:127.0.0.1:{PY_CTL_PORT}", *_tls_flags(pki)])
        cert = ctl.accept()
        # the switch authenticated with its own certificate, signed by our CA
        assert dict(x[0] for x in cert["subject"])["commonName"] == "switch"
        feats = ctl.handshake()
        assert feats.datapath_id == 0x77
        p, o = ctl.parser, ctl.ofp
        # what a controller leaves behind: every frame -> CONTROLLER
        ctl.send(p.OFPFlowMod(ctl, priority=0, match=p.OFPMatch(), instructions=[
            p.OFPInstructionActions(o.OFPIT_APPLY_ACTIONS,
                                    [p.OFPActionOutput(o.OFPP_CONTROLLER, o.OFPCML_NO_BUFFER)])]))
        ctl.barrier()
        # connected: frames go to the controller (which answers none of them)
        assert ping(h1, h2.ip, 2, wait=2) == 0
        (pin,) = _packet_ins(ctl, 1)
        assert pin.match["in_port"] == 1 and pin.reason == o.OFPR_NO_MATCH
        if not _agent_has_fail_open():
            pytest.skip("the agent has no fail-open mode yet (datapath/ofp/agent.py)")
        # the controller goes away: fail-open overrides the table-miss flow
        # (the agent changes the mode before the disconnection is logged)
        seen = d.log_text().count("disconnected")
        ctl.close_conn()
        ctl.stop_listening()
        wait_for(lambda: d.log_text().count("disconnected") > seen, timeout=15,
                 what="the switch noticing the controller left")
        # h1's ARP entry for h2 failed while the controller swallowed the
        # requests; start afresh so only the switch is under test.
        run(in_ns(h1, ["ip", "neigh", "flush", "all"]), check=False)
        try:
            wait_for(lambda: ping(h1, h2.ip, 1, wait=1) == 1, timeout=20,
                     what="h1 reaching h2 through the fail-open switch")
        except TimeoutError:
            # what the switch and h1 saw, for the report
            print(run(in_ns(h1, ["ip", "neigh", "show"]), check=False).stdout)
            print(d.ctl_cmd("dump-ports"), d.ctl_cmd("show"))
            raise
        assert ping(h1, h2.ip, 3, wait=5) >= 2
        # the flow the controller installed is still there, untouched
        # (ovs-ofctl is not needed: the ctl socket shows it)
        flows = d.ctl_cmd("dump-flows")
        assert [f["priority"] for f in flows] == [0] and "CONTROLLER" in flows[0]["actions"]
        # the controller comes back: its flows decide again
        ctl.listen()
        ctl.accept()
        ctl.handshake()
        ctl.barrier()
        assert ping(h1, h2.ip, 2, wait=2) == 0
        assert _packet_ins(ctl, 1)[0].match["in_port"] == 1
        assert d.alive()
    finally:
        ctl.close_conn()
        ctl.stop_listening()


def test_ssl_controller_with_a_certificate_from_another_ca_is_refused(topo, pki):
    pytest.importorskip("os_ken")
    _need_port(ROGUE_PORT)
    ctl = TlsController(pki, ROGUE_PORT, key="roguectl", ca="ca")
    try:
        h1 = topo.add_host("h1", "10.0.0.1/24")
        d = topo.start_vdp([h1], fail_mode="secure",
                           extra=["--controller", f"ssl:127.0.0.1:{ROGUE_PORT}",
                                  *_tls_flags(pki)])
        # the switch does not trust the controller's certificate: handshake fails
        for _ in range(2):
            with pytest.raises((ssl.SSLError, OSError)):
                ctl.accept()
        wait_for(lambda: "certificate verify failed" in d.log_text(), timeout=15,
                 what="vdp logs the refused certificate")
        assert "connected (controller)" not in d.log_text()
        assert d.alive()
    finally:
        ctl.close_conn()
        ctl.stop_listening()


def test_tls_target_without_files_is_refused_before_starting(topo, pki):
    h1 = topo.add_host("h1", "10.0.0.1/24")
    d = topo.spawn_vdp([h1], extra=["--listen", f"pssl:{PSSL_PORT}:127.0.0.1",
                                    "--ssl-key", pki / "switch.key",
                                    "--ssl-cert", pki / "switch.crt"])
    assert d.proc.wait(timeout=60) == 2
    log = d.log_text()
    assert "--listen: pssl:16810:127.0.0.1 needs" in log and "--ssl-ca (ssl_ca)" in log
