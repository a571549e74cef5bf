"""The engine (ext/engine.c) moving real traffic between AF_PACKET and TAP
ports through a Datapath: two namespace hosts, flows in_port=1 -> output:2
and back, ping and TCP across, engine thread start/stop, one-pass polling,
ports detached under a running engine, clean shutdown.

Names start with "vdpt"; namespaces and interfaces are removed in fixture
teardown even when a test fails.  Root only: the module is skipped otherwise.
"""
import hashlib
import json
import os
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: creates network namespaces, veth and TAP devices")

if os.geteuid() == 0:
    from ext import _fastpath as F
    from datapath.model import ApplyActions, FlowSpec, Match, Output

_seq = iter(range(1000))


def uniq(tag):
    name = "vdpt%d%s%d" % (os.getpid() % 1000, tag, next(_seq))
    assert len(name) <= 15, name
    return name


def sh(cmd, check=True, timeout=60):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode:
        raise RuntimeError("%s: %s" % (cmd, r.stderr.strip()))
    return r


# In-namespace TCP endpoints: the server prints [bytes, sha256] received.
TCP_TOOL = r'''
import hashlib, json, socket, sys
if sys.argv[1] == "serve":
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("0.0.0.0", int(sys.argv[2])))
    ls.listen(1)
    print("ready", flush=True)
    ls.settimeout(30)
    c, _ = ls.accept()
    h, n = hashlib.sha256(), 0
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        h.update(d)
        n += len(d)
    print(json.dumps([n, h.hexdigest()]), flush=True)
else:
    data = hashlib.sha256(b"engine").digest() * (int(sys.argv[4]) // 32)
    c = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=20)
    c.sendall(data)
    c.close()
    print(json.dumps([len(data), hashlib.sha256(data).hexdigest()]), flush=True)
'''


class Net:
    """Hosts in namespaces, each behind a veth (or TAP) whose switch end is
    in the root namespace; everything removed by destroy()."""

    def __init__(self):
        self.netns, self.links = [], []

    def host(self, ip, tap=False, mtu=None):
        """A namespace with `ip`; returns (ns, switch-side ifname, ns ifname)."""
        ns = uniq("n")
        sh("ip netns add %s" % ns)
        self.netns.append(ns)
        sh("ip netns exec %s sysctl -qw net.ipv6.conf.all.disable_ipv6=1 "
           "net.ipv6.conf.default.disable_ipv6=1" % ns)
        sh("ip -n %s link set lo up" % ns)
        if tap:
            return ns, None, None
        sw, inner = uniq("s"), uniq("i")
        sh("ip link add %s type veth peer name %s netns %s" % (sw, inner, ns))
        self.links.append(sw)
        sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % sw)
        sh("ip link set %s up" % sw)
        self.config_host(ns, inner, ip)
        return ns, sw, inner

    @staticmethod
    def config_host(ns, ifname, ip):
        sh("ip -n %s link set %s up" % (ns, ifname))
        sh("ip -n %s addr add %s/24 dev %s" % (ns, ip, ifname))

    def destroy(self):
        for l in self.links:
            sh("ip link del %s" % l, check=False)
        for ns in self.netns:
            sh("ip netns del %s" % ns, check=False)


@pytest.fixture
def net():
    n = Net()
    yield n
    n.destroy()


class Switch:
    """A Datapath with ports 1..n and flows in_port=i -> output:j."""

    def __init__(self, ports):
        self.dp = F.Datapath()
        self.ports = {}
        for no, p in enumerate(ports, 1):
            self.dp.attach_port(no, p)
            self.ports[no] = p

    def cross(self, a, b):
        for i, o in ((a, b), (b, a)):
            self.dp.flow_add(FlowSpec(priority=100, match=Match().set("in_port", i),
                                      instructions=(ApplyActions((Output(o),)),)))

    def shutdown(self):
        F.engine_stop(self.dp)
        for no in list(self.ports):
            self.dp.detach_port(no)
            self.ports.pop(no).close()


@pytest.fixture
def switches():
    made = []

    def make(ports):
        s = Switch(ports)
        made.append(s)
        return s
    yield make
    for s in made:
        s.shutdown()


def ping(ns, ip, count=3):
    return sh("ip netns exec %s ping -c %d -i 0.2 -W 1 %s" % (ns, count, ip), check=False)


def tcp_transfer(src_ns, dst_ns, dst_ip, nbytes=8 << 20, port=5101):
    srv = subprocess.Popen(["ip", "netns", "exec", dst_ns, sys.executable, "-c", TCP_TOOL,
                            "serve", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready"
        cli = sh("ip netns exec %s %s -c '%s' send %s %d %d"
                 % (src_ns, sys.executable, TCP_TOOL.replace("'", "'\\''"),
                    dst_ip, port, nbytes), timeout=60)
        out, _ = srv.communicate(timeout=60)
        return json.loads(cli.stdout.strip()), json.loads(out.strip())
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


def socket_inodes():
    """Sockets this process holds open, and the ones it has mapped (rings)."""
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            t = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            continue
        if t.startswith("socket:"):
            fds.add(t)
    maps = {l.split()[-1] for l in open("/proc/self/maps") if "socket:[" in l}
    return fds, maps


def test_ping_and_tcp_through_engine_thread(net, switches):
    h1, s1, _ = net.host("10.199.4.1")
    h2, s2, _ = net.host("10.199.4.2")
    sw = switches([F.AfPacketPort(s1), F.AfPacketPort(s2)])
    sw.cross(1, 2)
    assert ping(h1, "10.199.4.2").returncode != 0, "forwarding before the engine runs"
    F.engine_start(sw.dp)
    assert F.engine_running(sw.dp)
    with pytest.raises(RuntimeError):
        F.engine_start(sw.dp)
    r = ping(h1, "10.199.4.2")
    assert r.returncode == 0, r.stdout
    # TCP with offloads on: TSO super-frames and partial checksums cross
    # the pipeline and arrive as the same byte stream
    sent, got = tcp_transfer(h1, h2, "10.199.4.2")
    assert got == sent
    assert F.engine_stop(sw.dp) is True
    assert not F.engine_running(sw.dp)
    assert F.engine_stop(sw.dp) is False
    st = sw.dp.port_stats()
    for a, b in ((1, 2), (2, 1)):
        assert st[a]["rx_packets"] > 0
        # every frame in on a went out on b (or was counted as dropped)
        assert st[a]["rx_packets"] == st[b]["tx_packets"] + st[b]["tx_dropped"]
    assert st[1]["rx_bytes"] > 8 << 20
    # the engine did the forwarding: stopped, nothing crosses
    assert ping(h1, "10.199.4.2", count=2).returncode != 0


def test_engine_poll_one_pass(net, switches):
    h1, s1, _ = net.host("10.199.5.1")
    h2, s2, _ = net.host("10.199.5.2")
    sw = switches([F.AfPacketPort(s1), F.AfPacketPort(s2)])
    sw.cross(1, 2)
    assert F.engine_poll(sw.dp, 0) == 0
    # h1's ARP request for h2 is forwarded by polling in this thread
    p = subprocess.Popen(["ip", "netns", "exec", h1, "ping", "-c", "1", "-W", "2",
                          "10.199.5.2"], stdout=subprocess.DEVNULL)
    n, end = 0, time.time() + 5
    while n == 0 and time.time() < end:
        n = F.engine_poll(sw.dp, 100)
    p.wait(10)
    assert n >= 1
    st = sw.dp.port_stats()
    assert st[1]["rx_packets"] >= 1 and st[2]["tx_packets"] >= 1


RAW_TOOL = r'''
import json, select, socket, struct, sys, time
if sys.argv[1] == "send":
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((sys.argv[2], 0))
    for h in sys.argv[3:]:
        s.send(bytes.fromhex(h))
else:                                   # recv IF COUNT TIMEOUT
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.setsockopt(263, 8, 1)             # PACKET_AUXDATA: the stripped tag
    s.bind((sys.argv[2], 0))
    want, end, out = int(sys.argv[3]), time.time() + float(sys.argv[4]), []
    print("ready", flush=True)
    while len(out) < want and time.time() < end:
        if not select.select([s], [], [], max(0, end - time.time()))[0]:
            break
        d, anc, _, addr = s.recvmsg(70000, 1024)
        if addr[2] == socket.PACKET_OUTGOING:
            continue
        for lvl, typ, val in anc:
            if lvl == 263 and typ == 8:
                st, _, _, _, _, tci, tpid = struct.unpack_from("IIIHHHH", val)
                if st & (1 << 4):
                    tpid = tpid if st & (1 << 6) and tpid else 0x8100
                    d = d[:12] + struct.pack("!HH", tpid, tci) + d[12:]
        if d[12:14] in (b"\x81\x00", b"\x88\xa8"):
            out.append(d.hex())
    print(json.dumps(out), flush=True)
'''


def test_vlan_tagged_frames_cross_engine(net, switches):
    """Tagged frames (802.1Q, and QinQ with an 802.1ad outer tag) leave h2's
    port exactly as h1 sent them: the kernel strips the outer tag before the
    RX ring sees the frame, the port puts it back for the pipeline."""
    from scapy.all import Ether, Dot1Q, Dot1AD, IP, UDP, raw
    h1, s1, i1 = net.host("10.199.6.1")
    h2, s2, i2 = net.host("10.199.6.2")
    sw = switches([F.AfPacketPort(s1), F.AfPacketPort(s2)])
    sw.cross(1, 2)
    F.engine_start(sw.dp)
    frames = [raw(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / Dot1Q(vlan=42, prio=5)
                  / IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=1, dport=2)),
              raw(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01") / Dot1AD(vlan=100)
                  / Dot1Q(vlan=200) / IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=1, dport=2))]
    rx = subprocess.Popen(["ip", "netns", "exec", h2, sys.executable, "-c", RAW_TOOL,
                           "recv", i2, "2", "5"], stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "ready"
        sh("ip netns exec %s %s -c '%s' send %s %s"
           % (h1, sys.executable, RAW_TOOL.replace("'", "'\\''"), i1,
              " ".join(f.hex() for f in frames)))
        out, _ = rx.communicate(timeout=30)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    assert json.loads(out.strip()) == [f.hex() for f in frames]


def test_tap_and_afpacket_through_engine(net, switches):
    h1, s1, _ = net.host("10.199.8.1")
    h2, _, _ = net.host(None, tap=True)
    tapname = uniq("t")
    tap = F.TapPort(tapname)
    assert tap.created
    sh("ip link set %s netns %s" % (tapname, h2))
    Net.config_host(h2, tapname, "10.199.8.2")
    sw = switches([F.AfPacketPort(s1), tap])
    sw.cross(1, 2)
    F.engine_start(sw.dp)
    r = ping(h1, "10.199.8.2")
    assert r.returncode == 0, r.stdout
    sent, got = tcp_transfer(h2, h1, "10.199.8.1", nbytes=4 << 20, port=5102)
    assert got == sent
    F.engine_stop(sw.dp)
    sw.shutdown()
    assert sh("ip -n %s link show %s" % (h2, tapname), check=False).returncode != 0, \
        "created TAP left behind after close"


def test_detach_and_reattach_under_running_engine(net, switches):
    h1, s1, _ = net.host("10.199.9.1")
    h2, s2, _ = net.host("10.199.9.2")
    sw = switches([F.AfPacketPort(s1), F.AfPacketPort(s2)])
    sw.cross(1, 2)
    F.engine_start(sw.dp)
    assert ping(h1, "10.199.9.2").returncode == 0
    flood = subprocess.Popen(["ip", "netns", "exec", h1, "ping", "-f", "-w", "3", "10.199.9.2"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(20):
            sw.dp.detach_port(2)
            sw.ports.pop(2).close()
            p = F.AfPacketPort(s2)
            sw.dp.attach_port(2, p)
            sw.ports[2] = p
            time.sleep(0.02)
    finally:
        flood.wait(10)
    assert F.engine_running(sw.dp)
    assert ping(h1, "10.199.9.2").returncode == 0


def test_clean_shutdown_closes_everything(net):
    h1, s1, _ = net.host("10.199.10.1")
    h2, s2, _ = net.host("10.199.10.2")
    before_fds, before_maps = socket_inodes()
    sw = Switch([F.AfPacketPort(s1), F.AfPacketPort(s2)])
    sw.cross(1, 2)
    F.engine_start(sw.dp)
    assert ping(h1, "10.199.10.2", count=1).returncode == 0
    during_fds, during_maps = socket_inodes()
    assert len(during_fds - before_fds) >= 4      # RX + TX sockets per port
    assert len(during_maps - before_maps) >= 2    # an RX ring per port
    sw.shutdown()
    assert not F.engine_running(sw.dp)
    after_fds, after_maps = socket_inodes()
    assert not (after_fds & (during_fds - before_fds)), "sockets left open"
    assert not (after_maps & (during_maps - before_maps)), "rings left mapped"


def test_packet_out_is_flushed(net, switches):
    """Frames the control plane queues on an AF_PACKET port (packet-out) go
    out on engine_flush, and an idle running engine sends them on its own."""
    from scapy.all import Ether, IP, UDP, raw
    h1, s1, i1 = net.host("10.199.11.1")
    h2, s2, i2 = net.host("10.199.11.2")
    sw = switches([F.AfPacketPort(s1), F.AfPacketPort(s2)])
    frames = [raw(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
                  / IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=7, dport=n)) for n in (1, 2)]
    rx = subprocess.Popen(["ip", "netns", "exec", h2, sys.executable, "-c", RAW_TOOL.replace(
        'if d[12:14] in (b"\\x81\\x00", b"\\x88\\xa8"):', "if True:"),
        "recv", i2, "2", "5"], stdout=subprocess.PIPE, text=True)
    try:
        assert rx.stdout.readline().strip() == "ready"
        sw.dp.packet_out(frames[0], 0xfffffffd, (Output(2),))     # OFPP_CONTROLLER
        F.engine_flush(sw.dp)
        F.engine_start(sw.dp)
        time.sleep(0.2)                  # let the engine go idle in poll()
        sw.dp.packet_out(frames[1], 0xfffffffd, (Output(2),))
        out, _ = rx.communicate(timeout=30)
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    assert json.loads(out.strip()) == [f.hex() for f in frames]


def test_engine_runs_fdless_ports():
    """DummyPorts (no fd) are read on every pass: engine_poll and the
    engine thread both move their frames."""
    from scapy.all import Ether, IP, UDP, raw
    dp = F.Datapath()
    d1, d2 = F.DummyPort("d1"), F.DummyPort("d2")
    dp.attach_port(1, d1)
    dp.attach_port(2, d2)
    dp.flow_add(FlowSpec(priority=100, match=Match().set("in_port", 1),
                         instructions=(ApplyActions((Output(2),)),)))
    frame = raw(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:01")
                / IP(src="10.1.1.1", dst="10.1.1.2") / UDP(sport=7, dport=9))
    for _ in range(3):
        d1.inject(frame)
    assert F.engine_poll(dp, 1000) == 3
    assert d2.take_tx() == [frame] * 3
    F.engine_start(dp)
    try:
        d1.inject(frame)
        got, end = [], time.time() + 10
        while not got and time.time() < end:
            got = d2.take_tx()
            time.sleep(0.01)
    finally:
        F.engine_stop(dp)
    assert got == [frame]
