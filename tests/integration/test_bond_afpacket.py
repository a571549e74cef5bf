"""BondPort over real AF_PACKET members: a Datapath whose port 1 is a bond
of two veths and port 2 a plain veth, the engine thread running.

    test sockets          vdp (root namespace)
    vdpt-bnd-s1 <-veth-> vdpt-bnd-s0   port 2
    vdpt-bnd-a1 <-veth-> vdpt-bnd-a0   port 1 = bond(a0, b0)
    vdpt-bnd-b1 <-veth-> vdpt-bnd-b0

Frames of many flows sent into s1 must come out of a1 and b1, spread over
both, each on the member select_member() names, none lost; frames sent
into a1/b1 all come out of s1; an LACPDU sent into a1 reaches slow_rx()
and not s1; member a0 going down and up again stops neither b0 nor,
once back, a0 itself.  The peer ends stay in the root namespace (raw
sockets of this process); their IPv6 is off and frames carry a marker, so
kernel chatter is ignored.  Links are named vdpt-bnd-* and removed even on failure.
Root only."""
import os
import select
import socket
import subprocess
import threading
import time

import pytest

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: creates veth pairs")

if os.geteuid() == 0:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    from datapath.fastpath import AfPacketPort, BondPort, Datapath
    from datapath.model import ApplyActions, FlowSpec, Match, Output

PAIRS = ("s", "a", "b")
MAGIC = b"vdpt-bond-it"
ETH_P_ALL = 3


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode:
        raise RuntimeError("%s: %s" % (cmd, r.stderr.strip()))
    return r


def _cleanup():
    for p in PAIRS:
        sh("ip link del vdpt-bnd-%s0" % p, check=False)


@pytest.fixture
def veths():
    _cleanup()
    try:
        for p in PAIRS:
            a, b = "vdpt-bnd-%s0" % p, "vdpt-bnd-%s1" % p
            sh("ip link add %s type veth peer name %s" % (a, b))
            for ifn in (a, b):
                sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % ifn, check=False)
                sh("ip link set %s up" % ifn)
        yield
    finally:
        _cleanup()


class Sniffer:
    """Raw socket on an interface, collecting frames that carry MAGIC."""

    def __init__(self, ifname):
        self.s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.s.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)     # SO_RCVBUFFORCE
        self.s.bind((ifname, 0))
        self.frames = []
        self.stop = False
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stop:
            r, _, _ = select.select([self.s], [], [], 0.05)
            if not r:
                continue
            data, addr = self.s.recvfrom(65536)
            if addr[2] != socket.PACKET_OUTGOING and MAGIC in data:
                self.frames.append(data)

    def wait(self, n, timeout=20.0):
        end = time.monotonic() + timeout
        while len(self.frames) < n and time.monotonic() < end:
            time.sleep(0.02)
        return self.frames

    def close(self):
        self.stop = True
        self.t.join()
        self.s.close()


def sender(ifname):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.bind((ifname, 0))
    return s


def frames(n, tag):
    out = []
    for i in range(n):
        out.append(bytes(
            Ether(src="02:00:00:%02x:%02x:01" % (i >> 8, i & 0xff), dst="02:00:00:00:ff:02") /
            IP(src="10.%d.%d.1" % (i >> 8, i & 0xff), dst="10.200.0.2") /
            UDP(sport=1024 + i, dport=5000 + i % 97) /
            Raw(MAGIC + tag + b"%06d" % i)))
    return out


def send_paced(sock, fs):
    for k, f in enumerate(fs):
        sock.send(f)
        if k % 64 == 63:
            time.sleep(0.002)      # let the engine and the sniffers keep up


def test_bond_spreads_flows_over_both_veths_and_loses_none(veths):
    dp = Datapath(4)
    a = AfPacketPort("vdpt-bnd-a0")
    b = AfPacketPort("vdpt-bnd-b0")
    bond = BondPort("vdptbond", [a, b], mode="l4")
    s0 = AfPacketPort("vdpt-bnd-s0")
    assert bond.fd >= 0 and bond.offload_ok
    dp.attach_port(1, bond)
    dp.attach_port(2, s0)
    for i, o in ((1, 2), (2, 1)):
        dp.flow_add(FlowSpec(priority=10, match=Match().set("in_port", i),
                             instructions=(ApplyActions((Output(o),)),)))
    sniff = {n: Sniffer("vdpt-bnd-%s1" % n) for n in PAIRS}
    dp.start()
    try:
        # ---- into the bond: 2,000 frames of 2,000 flows
        out = frames(2000, b"->bond")
        send_paced(sender("vdpt-bnd-s1"), out)
        got_a = sniff["a"].wait(1)
        end = time.monotonic() + 20
        while len(sniff["a"].frames) + len(sniff["b"].frames) < len(out) and time.monotonic() < end:
            time.sleep(0.05)
        fa, fb = list(sniff["a"].frames), list(sniff["b"].frames)
        assert len(fa) + len(fb) == len(out), (len(fa), len(fb), dp.port_stats())
        assert sorted(fa + fb) == sorted(out)                     # none lost, none twice
        assert 0.35 * len(out) < len(fa) < 0.65 * len(out), (len(fa), len(fb))
        assert all(bond.select_member(f) == 0 for f in fa)
        assert all(bond.select_member(f) == 1 for f in fb)
        assert got_a

        # ---- out of the bond: frames entering either member reach s1
        back = frames(1000, b"<-bond")
        sa, sb = sender("vdpt-bnd-a1"), sender("vdpt-bnd-b1")
        for k, f in enumerate(back):
            (sa if k % 2 else sb).send(f)
            if k % 64 == 63:
                time.sleep(0.002)
        fs = sniff["s"].wait(len(back))
        assert sorted(fs) == sorted(back)

        # ---- an LACPDU into a1: slow_rx, never s1
        pdu = bytes(Ether(src="02:00:00:00:aa:01", dst="01:80:c2:00:00:02", type=0x8809) /
                    Raw(b"\x01\x01" + MAGIC + bytes(96)))
        sa.send(pdu)
        got = []
        end = time.monotonic() + 10
        while not got and time.monotonic() < end:
            select.select([bond.slow_fd()], [], [], 0.2)
            got = bond.slow_rx()
        assert got == [(0, pdu)]
        # ---- and one sent on member b (bypassing the buckets) arrives at b1
        reply = pdu[:6] + b"\x02\x00\x00\x00\xbb\x02" + pdu[12:]
        assert bond.send_on_member(1, reply)
        rb = sniff["b"].wait(len(fb) + 1)
        assert reply in rb and reply not in sniff["a"].frames
        time.sleep(0.2)
        assert pdu not in sniff["s"].frames

        # ---- member a's interface goes down and up again (its socket
        # reports an error on the bond's epoll fd meanwhile): b keeps
        # working throughout, and a works again afterwards
        sh("ip link set vdpt-bnd-a0 down")
        time.sleep(0.3)
        n_s = len(sniff["s"].frames)
        via_b = frames(200, b"flap-b")
        send_paced(sb, via_b)
        assert sorted(sniff["s"].wait(n_s + len(via_b))[n_s:]) == sorted(via_b)
        sh("ip link set vdpt-bnd-a0 up")
        time.sleep(0.3)
        n_s = len(sniff["s"].frames)
        via_a = frames(200, b"flap-a")
        send_paced(sa, via_a)
        assert sorted(sniff["s"].wait(n_s + len(via_a))[n_s:]) == sorted(via_a)
    finally:
        dp.stop()
        for n in PAIRS:
            sniff[n].close()
        dp.detach_port(1)
        dp.detach_port(2)
        st = bond.stats()
        ms = [bond.member_stats(i) for i in range(2)]
        bond.close()
        s0.close()
    assert st["tx_packets"] == sum(m["tx_packets"] for m in ms) == 2001
    assert st["rx_packets"] == sum(m["rx_packets"] for m in ms) >= 1401
    assert ms[0]["slow_rx"] == 1 and ms[1]["slow_tx"] == 1
