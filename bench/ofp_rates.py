#!/usr/bin/env python3
"""OpenFlow channel rates: vdp against Open vSwitch netdev, one client, one run.

    python bench/ofp_rates.py [--switches vdp,ovs] [--tests flowmod,pin,latency]
                              [--flowmods 10000,100000] [--batch 1000] [--rounds 3] [--json]

One invocation measures, for `vdp run` and for an Open vSwitch bridge with
datapath_type=netdev (protocols=OpenFlow13), both connected to the same
OpenFlow 1.3 client written here (plain sockets, messages built by hand with
struct and checked once against os-ken's parser when it is importable):

  flowmod  N distinct FLOW_MOD adds (in_port + TCP 5-tuple matches, one
           apply-actions output:2 each), pre-encoded, sent back to back in
           batches of --batch, each batch closed by a BARRIER_REQUEST; the
           time runs from the first byte sent to the last BARRIER_REPLY.
           Afterwards an AGGREGATE multipart request must report exactly N
           flows and no OFPT_ERROR may have come back, else the row says
           so (lost flows are not counted as speed).
  pin      packet-ins per second: a table-miss flow (priority 0, empty
           match) outputs to CONTROLLER with max_len 128 (the default
           miss_send_len; frames are longer, so vdp buffers and sends 128
           bytes, OVS truncates) or OFPCML_NO_BUFFER (whole frames);
           trafgen in netns vdptr-gen sends --pin-rate frames/s into port 1;
           the client counts the PACKET_INs it receives in the window and
           the harness reads how many frames port 1 received (sent).
  latency  one frame at a time from an AF_PACKET socket in vdptr-gen: time
           until its PACKET_IN arrives (wire -> controller), then the client
           answers with a PACKET_OUT output:1 carrying the frame and times
           until it is back on the wire in vdptr-gen (controller -> wire);
           the sum is the round trip.  Median and p99 over --samples.

Placement: the switch under test pinned to CPU 1 (vdp: every thread of
`vdp run`; OVS: every ovs-vswitchd thread, as bench/pps.py does), the
client (this process) and trafgen on CPU 0.  --prio nice (default) runs the
harness, vdp and trafgen in sessions of their own whose scheduler autogroup
is set to nice -20, and gives ovs-vswitchd the same for the run.

Connections: --connect active (default): the switch connects to the
harness (`vdp run --controller tcp:127.0.0.1:16790`, `ovs-vsctl
set-controller vdptb-ofr tcp:127.0.0.1:16791`); passive: the harness
connects to the switch (`--listen ptcp:16792:127.0.0.1`,
`set-controller vdptb-ofr ptcp:16793:127.0.0.1`).  TCP ports 16790-16793.

Everything created is named vdptr-* (netns vdptr-gen, veths vdptr-s1/-g0 and
vdptr-s2/-g1, /tmp/vdptr-*) plus the OVS bridge vdptb-ofr, and is removed at
the end, also on failure, Ctrl-C or SIGTERM; other OVS bridges are never
touched.  Rounds alternate the order of the switches; the table shows the
best round of each figure and lists every round.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import select
import shlex
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import netns_path as npath  # noqa: E402  (proc/CPU accounting, sh())
import pps  # noqa: E402  (priority helpers, OVS pinning, vdp command lookup)

CLIENT_CPU = 0
SWITCH_CPU = 1
NS = "vdptr-gen"
GEN_IF, IN_IF = "vdptr-g0", "vdptr-s1"        # port 1 (traffic in, packet-out back)
SINK_IF, OUT_IF = "vdptr-g1", "vdptr-s2"      # port 2 (the flows' output)
PREFIX = "vdptr-"
OVS_BRIDGE = "vdptb-ofr"
VDP_NAME = "vdptr"
VDP_CTL = "/tmp/vdptr-vdp.ctl"
TCP_PORTS = {("vdp", "active"): 16790, ("ovs", "active"): 16791,
             ("vdp", "passive"): 16792, ("ovs", "passive"): 16793}
MAGIC = b"vdpOFRT!"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- OpenFlow 1.3 messages, built by hand -------------------------------------
OFP_VERSION = 4
HDR = struct.Struct("!BBHI")
T_HELLO, T_ERROR, T_ECHO_REQUEST, T_ECHO_REPLY = 0, 1, 2, 3
T_FEATURES_REQUEST, T_FEATURES_REPLY, T_SET_CONFIG, T_PACKET_IN = 5, 6, 9, 10
T_PACKET_OUT, T_FLOW_MOD, T_MULTIPART_REQUEST, T_MULTIPART_REPLY = 13, 14, 18, 19
T_BARRIER_REQUEST, T_BARRIER_REPLY, T_SET_ASYNC = 20, 21, 28
OFPP_CONTROLLER, OFPP_ANY, OFPG_ANY, OFP_NO_BUFFER = 0xFFFFFFFD, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF
OFPCML_NO_BUFFER = 0xFFFF
OFPTT_ALL = 0xFF
OFPFC_ADD, OFPFC_DELETE = 0, 3
OFPMP_AGGREGATE = 2
# OXM basic field ids
F_IN_PORT, F_ETH_TYPE, F_IP_PROTO, F_IPV4_SRC, F_IPV4_DST, F_TCP_SRC, F_TCP_DST = \
    0, 5, 10, 11, 12, 13, 14

_FLOW_MOD = struct.Struct("!QQBBHHHIIIH2x")


def ofmsg(mtype, xid, body=b""):
    return HDR.pack(OFP_VERSION, mtype, 8 + len(body), xid & 0xFFFFFFFF) + body


def hello(xid):
    # One version-bitmap element: OpenFlow 1.3 only.
    return ofmsg(T_HELLO, xid, struct.pack("!HHI", 1, 8, 1 << OFP_VERSION))


def oxm(field, size, value):
    return struct.pack("!I", 0x80000000 | (field << 9) | size) + value.to_bytes(size, "big")


def ofp_match(oxms=b""):
    n = 4 + len(oxms)
    return struct.pack("!HH", 1, n) + oxms + b"\0" * ((n + 7) // 8 * 8 - n)


def output_action(port, max_len=OFPCML_NO_BUFFER):
    return struct.pack("!HHIH6x", 0, 16, port, max_len)


def apply_actions(actions):
    return struct.pack("!HH4x", 4, 8 + len(actions)) + actions


def flow_mod(xid, match, instructions=b"", command=OFPFC_ADD, table_id=0, priority=0x8000,
             cookie=0, out_port=OFPP_ANY):
    body = _FLOW_MOD.pack(cookie, 0, table_id, command, 0, 0, priority, OFP_NO_BUFFER,
                          out_port, OFPG_ANY, 0) + match + instructions
    return ofmsg(T_FLOW_MOD, xid, body)


def flow_tuple(i):
    """The i-th distinct 5-tuple: 10.x.y.1 -> 11.a.b.c, TCP sport -> dport;
    every i < 2**24 gives a different (src, dst, sport) combination."""
    src = 0x0A000001 | ((i >> 16) & 0xFF) << 16 | ((i >> 8) & 0xFF) << 8
    dst = 0x0B000000 | (i & 0xFFFFFF)
    return src, dst, 1024 + i % 60000, 80 + (i >> 12) % 16


def flow_mod_add(xid, i, out_port=2):
    src, dst, sport, dport = flow_tuple(i)
    m = ofp_match(oxm(F_IN_PORT, 4, 1) + oxm(F_ETH_TYPE, 2, 0x0800) + oxm(F_IP_PROTO, 1, 6)
                  + oxm(F_IPV4_SRC, 4, src) + oxm(F_IPV4_DST, 4, dst)
                  + oxm(F_TCP_SRC, 2, sport) + oxm(F_TCP_DST, 2, dport))
    return flow_mod(xid, m, apply_actions(output_action(out_port)), priority=1000, cookie=i)


def flow_delete_all(xid):
    return flow_mod(xid, ofp_match(), command=OFPFC_DELETE, table_id=OFPTT_ALL)


def table_miss_to_controller(xid, max_len):
    return flow_mod(xid, ofp_match(), apply_actions(output_action(OFPP_CONTROLLER, max_len)),
                    priority=0)


def barrier(xid):
    return ofmsg(T_BARRIER_REQUEST, xid)


def aggregate_request(xid):
    body = struct.pack("!HH4xB3xII4xQQ", OFPMP_AGGREGATE, 0, OFPTT_ALL, OFPP_ANY, OFPG_ANY,
                       0, 0) + ofp_match()
    return ofmsg(T_MULTIPART_REQUEST, xid, body)


def set_config(xid, miss_send_len=128):
    return ofmsg(T_SET_CONFIG, xid, struct.pack("!HH", 0, miss_send_len))


def set_async(xid):
    # packet-in: NO_MATCH|ACTION for master/equal; port status all; flow removed all.
    return ofmsg(T_SET_ASYNC, xid, struct.pack("!6I", 0x3, 0, 0x7, 0x7, 0xF, 0))


def packet_out(xid, data, port):
    acts = output_action(port)
    return ofmsg(T_PACKET_OUT, xid, struct.pack("!IIH6x", OFP_NO_BUFFER, OFPP_CONTROLLER,
                                                len(acts)) + acts + data)


def packet_in_data(raw):
    """The frame bytes of a PACKET_IN (after its match and 2 pad bytes)."""
    mlen = (raw[26] << 8) | raw[27]
    return raw[24 + (mlen + 7) // 8 * 8 + 2:]


def check_against_os_ken():
    """Parse a sample of our hand-built messages with os-ken (the reference
    OpenFlow library); returns a note, or raises if it disagrees."""
    try:
        from os_ken.ofproto import ofproto_v1_3 as ofp
        from os_ken.ofproto import ofproto_v1_3_parser as parser
    except ImportError:
        return "os-ken not importable: hand-built messages not cross-checked"

    class _Dp:
        ofproto, ofproto_parser, id = ofp, parser, 1

    for i in (0, 1, 4097, 99999):
        raw = flow_mod_add(7, i)
        m = parser.msg_parser(_Dp(), *HDR.unpack_from(raw)[:2], len(raw), 7, raw)
        src, dst, sport, dport = flow_tuple(i)
        want = {"in_port": 1, "eth_type": 0x0800, "ip_proto": 6, "ipv4_src": socket.inet_ntoa(
            src.to_bytes(4, "big")), "ipv4_dst": socket.inet_ntoa(dst.to_bytes(4, "big")),
            "tcp_src": sport, "tcp_dst": dport}
        got = dict(m.match.items())
        assert got == want, (got, want)
        assert m.command == ofp.OFPFC_ADD and m.priority == 1000 and m.cookie == i
        (act,) = m.instructions[0].actions
        assert act.port == 2 and act.max_len == ofp.OFPCML_NO_BUFFER
    raw = table_miss_to_controller(8, 128)
    m = parser.msg_parser(_Dp(), OFP_VERSION, T_FLOW_MOD, len(raw), 8, raw)
    assert m.priority == 0 and not dict(m.match.items())
    assert m.instructions[0].actions[0].port == ofp.OFPP_CONTROLLER
    return "hand-built FLOW_MODs cross-checked with os-ken's parser"


class OFConn:
    """One OpenFlow connection seen from the controller side.

    Input is scanned header by header straight from a bytearray: only the
    types a caller asked to keep are copied out, PACKET_INs are otherwise
    just counted, ECHO_REQUESTs are answered on the spot."""

    def __init__(self, sock):
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.setblocking(False)
        self.buf = bytearray()
        self.rbuf = bytearray(1 << 20)
        self.xid = 1
        self.counts = {}
        self.keep = set()
        self.kept = []
        self.errors = []
        self.dpid = None

    def next_xid(self):
        self.xid += 1
        return self.xid

    def send(self, data):
        mv = memoryview(data)
        while mv:
            try:
                n = self.sock.send(mv)
            except BlockingIOError:
                select.select([], [self.sock], [], 5)
                continue
            mv = mv[n:]

    def _scan(self):
        buf = self.buf
        n = len(buf)
        off = 0
        counts = self.counts
        keep = self.keep
        while n - off >= 8:
            ln = (buf[off + 2] << 8) | buf[off + 3]
            if ln < 8:
                raise RuntimeError("switch sent a message shorter than a header")
            if n - off < ln:
                break
            t = buf[off + 1]
            counts[t] = counts.get(t, 0) + 1
            if t in keep:
                self.kept.append(bytes(buf[off:off + ln]))
            elif t == T_ECHO_REQUEST:
                raw = bytes(buf[off:off + ln])
                self.send(bytes([OFP_VERSION, T_ECHO_REPLY]) + raw[2:])
            elif t == T_ERROR:
                raw = bytes(buf[off:off + ln])
                if len(self.errors) < 20:
                    et, ec = struct.unpack_from("!HH", raw, 8)
                    self.errors.append((HDR.unpack_from(raw)[3], et, ec))
            off += ln
        if off:
            del buf[:off]

    def pump(self, timeout):
        """Wait up to timeout for input, read what is there; False on nothing."""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        self._read()
        return True

    def _read(self):
        got = False
        while True:
            try:
                n = self.sock.recv_into(self.rbuf)
            except BlockingIOError:
                break
            if n == 0:
                if got:
                    break
                raise RuntimeError("switch closed the OpenFlow connection")
            got = True
            self.buf += memoryview(self.rbuf)[:n]
            if n < len(self.rbuf):
                break
        self._scan()

    def pump_for(self, seconds):
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.pump(min(left, 0.05))

    def request(self, data, want_type, xid, timeout=60):
        """Send data and wait for the message of want_type with xid (for
        multipart: every part); returns the raw messages."""
        self.keep.add(want_type)
        self.send(data)
        out = []
        deadline = time.monotonic() + timeout
        while True:
            rest, done = [], False
            for raw in self.kept:
                if not done and raw[1] == want_type and HDR.unpack_from(raw)[3] == xid:
                    out.append(raw)
                    # a multipart reply ends with the part without REPLY_MORE
                    done = want_type != T_MULTIPART_REPLY or not raw[11] & 1
                else:
                    rest.append(raw)
            self.kept = rest
            if done:
                return out
            for x, et, ec in self.errors:
                if x == xid:
                    raise RuntimeError(f"switch answered error type {et} code {ec}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"no reply type {want_type} xid {xid} in {timeout} s")
            self.pump(min(left, 0.5))

    def sync(self, timeout=120):
        x = self.next_xid()
        self.request(barrier(x), T_BARRIER_REPLY, x, timeout)

    def handshake(self, passive):
        self.send(hello(self.next_xid()))
        self.keep.add(T_HELLO)
        deadline = time.monotonic() + 10
        while not any(k[1] == T_HELLO for k in self.kept):
            if time.monotonic() > deadline:
                raise RuntimeError("no HELLO from the switch")
            self.pump(0.5)
        self.kept = [k for k in self.kept if k[1] != T_HELLO]
        x = self.next_xid()
        (rep,) = self.request(ofmsg(T_FEATURES_REQUEST, x), T_FEATURES_REPLY, x, 10)
        self.dpid = struct.unpack_from("!Q", rep, 8)[0]
        self.send(set_config(self.next_xid(), 128))
        if passive:
            # Service connections (what a passive listener accepts) need not
            # get async messages by default: ask for them explicitly.
            self.send(set_async(self.next_xid()))
        self.sync(10)

    def flow_count(self):
        x = self.next_xid()
        parts = self.request(aggregate_request(x), T_MULTIPART_REPLY, x, 300)
        return struct.unpack_from("!QQI", parts[-1], 16)[2]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def parse_ceiling(n=200000, frame_len=256):
    """Messages per second OFConn._scan counts when the bytes are already
    there (the client's ceiling for packet-ins, system calls aside)."""
    pin = ofmsg(T_PACKET_IN, 0, struct.pack("!IHBBQ", OFP_NO_BUFFER, frame_len, 0, 0, 0)
                + ofp_match(oxm(F_IN_PORT, 4, 1)) + b"\0\0" + bytes(frame_len))
    data = pin * n
    c = OFConn.__new__(OFConn)
    c.buf, c.counts, c.keep, c.kept, c.errors = bytearray(), {}, set(), [], []
    t0 = time.thread_time()
    for off in range(0, len(data), 1 << 20):        # as recv would hand it over
        c.buf += data[off:off + (1 << 20)]
        c._scan()
    dt = time.thread_time() - t0
    assert c.counts.get(T_PACKET_IN) == n
    return n / dt if dt > 0 else float("inf")


# ---- the path -----------------------------------------------------------------------
def path_cleanup():
    for ns in npath._netns_list():
        if ns.startswith(PREFIX):
            npath.sh("ip", "netns", "del", ns, check=False)
    for name in npath._root_links():
        if name.startswith(PREFIX):
            npath.sh("ip", "link", "del", name, check=False)
    for f in (VDP_CTL,):
        if os.path.exists(f):
            os.unlink(f)


def path_create():
    path_cleanup()
    npath.sh("ip", "netns", "add", NS)
    for k in ("all", "default"):
        npath.sh("ip", "netns", "exec", NS, "sysctl", "-qw",
                 f"net.ipv6.conf.{k}.disable_ipv6=1", check=False)
    npath.sh("ip", "-n", NS, "link", "set", "lo", "up")
    for sw_if, peer in ((IN_IF, GEN_IF), (OUT_IF, SINK_IF)):
        npath.sh("ip", "link", "add", sw_if, "type", "veth", "peer", "name", peer, "netns", NS)
        npath._quiet(sw_if)
        npath._quiet(peer, NS)
    time.sleep(0.2)


def rx_packets(ifname):
    return npath._sys_stat(ifname, "rx_packets")


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def packet_socket_in_netns(ns, ifname):
    """An AF_PACKET socket bound to ifname inside netns ns (the calling
    thread enters the namespace to create it and comes back)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            s.bind((ifname, 0))
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(home)
        os.close(target)
    return s


def udp_frame(length, seq=0):
    """Ethernet/IPv4/UDP 10.1.0.1:4096 -> 10.2.0.1:5001, payload MAGIC + seq,
    padded to length bytes; destination MAC 02:00:00:00:00:02."""
    ip_len = length - 14
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, ip_len, 0, 0, 64, 17, 0,
                      bytes([10, 1, 0, 1]), bytes([10, 2, 0, 1]))
    s = sum(struct.unpack("!10H", iph))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    iph = iph[:10] + struct.pack("!H", ~s & 0xFFFF) + iph[12:]
    payload = MAGIC + struct.pack("!Q", seq)
    udp = struct.pack("!HHHH", 4096, 5001, ip_len - 20, 0) + payload
    frame = bytes.fromhex("020000000002020000000001") + b"\x08\x00" + iph + udp
    return frame + bytes(length - len(frame))


SEQ_OFF = 14 + 20 + 8 + len(MAGIC)


class Trafgen:
    """trafgen in vdptr-gen pinned to the client's CPU at a fixed rate."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None

    def start(self, frame_len, rate):
        cfg = os.path.join(self.workdir, f"pin{frame_len}.cfg")
        with open(cfg, "w") as f:
            f.write("{\n  " + ", ".join(f"0x{b:02x}" for b in udp_frame(frame_len)) + "\n}\n")
        argv = ["trafgen", "-i", cfg, "-o", GEN_IF, "-P", "1", "--no-sock-mem", "-Q"]
        if rate:
            argv += ["-b", f"{int(rate)}pps"]
        self.logf = open(os.path.join(self.workdir, "trafgen.log"), "w+")
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS] +
                                     pps.pinned(CLIENT_CPU, argv), stdout=self.logf,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        pps.favour(self.proc)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        return npath.children_of(self.proc.pid) if self.proc else set()

    def stop(self):
        if self.proc is None:
            return ""
        pps.stop_proc(self.proc, group=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc = None
        self.logf.seek(0)
        text = self.logf.read()
        self.logf.close()
        return text


# ---- switches -----------------------------------------------------------------------
def listen(port):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(4)
    ls.settimeout(0.5)
    return ls


def accept_or_connect(mode, port, alive, listener=None, timeout=30):
    """active: accept the switch's connection on `listener` (bound to
    127.0.0.1:port before the switch was started, so its first attempt
    succeeds); passive: connect to the switch's listener on 127.0.0.1:port,
    retrying while it starts."""
    deadline = time.monotonic() + timeout
    if mode == "active":
        while True:
            try:
                s, _ = listener.accept()
                s.setblocking(True)
                return s
            except socket.timeout:
                pass
            if not alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the switch did not connect to 127.0.0.1:{port}")
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.connect(("127.0.0.1", port))
            return s
        except OSError:
            s.close()
        if not alive() or time.monotonic() > deadline:
            raise RuntimeError(f"cannot connect to the switch on 127.0.0.1:{port}")
        time.sleep(0.2)


class VdpSwitch:
    name = "vdp"
    label = "vdp (vdp run)"

    def __init__(self, cmd=None):
        self.cmd = cmd
        self.proc = None
        self.logf = None

    def prepare(self, workdir):
        """The tree under test: `python -m datapath.cli` run in this checkout
        (not a `vdp` found on PATH, which may be another install).  Another
        tree: --vdp-cmd "env -C TREE python3 -m datapath.cli"."""
        self.workdir = workdir
        if self.cmd:
            self.base = shlex.split(self.cmd)
            return
        ok, err = pps._python_ok("import datapath.cli, datapath.fastpath")
        if not ok:
            raise RuntimeError(f"datapath.cli/datapath.fastpath do not import: {err}")
        self.base = [sys.executable, "-m", "datapath.cli"]

    def start(self, mode, port):
        argv = self.base + ["run", "--name", VDP_NAME, "--fail-mode", "secure",
                                "--ctl", VDP_CTL, "--port", IN_IF, "--port", OUT_IF]
        argv += (["--controller", f"tcp:127.0.0.1:{port}"] if mode == "active"
                 else ["--listen", f"ptcp:{port}:127.0.0.1"])
        self.command = " ".join(argv)
        self.logf = open(os.path.join(self.workdir, "vdp.log"), "a+")
        ls = listen(port) if mode == "active" else None
        try:
            # The default command runs in this checkout, so `-m datapath.cli`
            # finds its datapath/ first whatever the caller's directory.
            self.proc = subprocess.Popen(pps.pinned(SWITCH_CPU, argv), env=pps.child_env(),
                                         cwd=None if self.cmd else REPO,
                                         stdout=self.logf, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            pps.favour(self.proc)
            try:
                s = accept_or_connect(mode, port, lambda: self.proc.poll() is None, ls)
            except RuntimeError as e:
                raise RuntimeError(f"{e}: {self._tail()}") from None
        except BaseException:
            if ls is not None:
                ls.close()
            raise
        return s, ls

    def _tail(self):
        if not self.logf:
            return ""
        self.logf.flush()
        self.logf.seek(0)
        return " | ".join(self.logf.read().strip().splitlines()[-5:])

    def pids(self):
        return npath.children_of(self.proc.pid) if self.proc else set()

    def stop(self):
        if self.proc is not None:
            pps.stop_proc(self.proc, signal.SIGTERM, timeout=15, group=True)
            self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None

    def finish(self):
        self.stop()


def _plain_child():
    """preexec_fn: every CPU, normal scheduling (undo the harness's own)."""
    os.sched_setaffinity(0, range(os.cpu_count()))
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


class OvsSwitch(pps.Ovs):
    """Open vSwitch 3.1 userspace datapath, bridge vdptb-ofr.  Reuses
    bench/pps.py's handling of ovs-vswitchd's threads (pinned to the switch
    CPU and favoured for the run, given back after)."""
    name = "ovs"
    label = "OVS 3.1 netdev"

    def __init__(self):
        super().__init__(pin="taskset")

    def prepare(self, workdir):
        self.workdir = workdir
        for tool in ("ovs-vsctl", "ovs-ofctl"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} not installed")
        if subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode:
            log("  starting Open vSwitch (ovs-ctl start)")
            # Not with this process's CPU affinity and priority: the daemons
            # may outlive the run and serve others.
            subprocess.run(["/usr/share/openvswitch/scripts/ovs-ctl", "start",
                            "--system-id=random", "--no-monitor"], capture_output=True,
                           timeout=60, check=True, preexec_fn=_plain_child)
            self.started_ovs = True
        npath.sh("ovs-vsctl", "--timeout=10", "--if-exists", "del-br", OVS_BRIDGE)
        self._record_affinity()

    def start(self, mode, port):
        self._pin()
        target = f"tcp:127.0.0.1:{port}" if mode == "active" else f"ptcp:{port}:127.0.0.1"
        cmd = ["ovs-vsctl", "--timeout=20", "add-br", OVS_BRIDGE, "--", "set", "bridge",
               OVS_BRIDGE, "datapath_type=netdev", "fail-mode=secure", "protocols=OpenFlow13",
               "other-config:disable-in-band=true"]
        for i, ifname in enumerate((IN_IF, OUT_IF), 1):
            cmd += ["--", "add-port", OVS_BRIDGE, ifname, "--", "set", "Interface", ifname,
                    f"ofport_request={i}"]
        cmd += ["--", "set-controller", OVS_BRIDGE, target]
        self.command = " ".join(cmd)
        ls = listen(port) if mode == "active" else None
        try:
            npath.sh(*cmd)
            self.bridge_up = True
            self._pin()                # threads the bridge created
            return accept_or_connect(mode, port, lambda: True, ls), ls
        except BaseException:
            if ls is not None:
                ls.close()
            raise

    def pids(self):
        return {self.pid} if self.pid else set()

    def stop(self):
        if self.bridge_up:
            npath.sh("ovs-vsctl", "--timeout=20", "--if-exists", "del-br", OVS_BRIDGE,
                     check=False)
            self.bridge_up = False
        self._unpin()

    def finish(self):
        self.stop()
        if self.started_ovs:
            others = npath.sh("ovs-vsctl", "--timeout=5", "list-br", check=False).split()
            if others:
                log(f"  leaving Open vSwitch running (bridges: {' '.join(others)})")
            else:
                npath.sh("/usr/share/openvswitch/scripts/ovs-ctl", "stop", check=False,
                         timeout=60)
            self.started_ovs = False


# ---- tests --------------------------------------------------------------------------
class Window:
    """CPU accounting over a measurement: the switch's, the client's (this
    thread), other processes' (noise)."""

    def __init__(self, sw_pids, extra_ours=()):
        self.sw_pids = set(sw_pids)
        self.ours = self.sw_pids | set(extra_ours)
        self.p0 = npath.proc_times()
        self.t0 = time.monotonic()
        self.c0 = time.thread_time()

    def close(self, res, extra_ours=()):
        dt = time.monotonic() - self.t0
        cpu = time.thread_time() - self.c0
        p1 = npath.proc_times()
        ours = self.ours | set(extra_ours)
        res["switch_cpu_pct"] = npath.cpu_of(self.p0, p1, dt, self.sw_pids)
        res["client_cpu_pct"] = round(100.0 * cpu / dt, 1) if dt else 0.0
        res["noise_pct"], res["noise_top"] = npath.noise_report(self.p0, p1, dt, ours)
        return res


def test_flowmod(conn, sw, n, batch):
    """n FLOW_MOD adds in batches closed by a barrier; time to the last reply."""
    conn.sync()
    t = time.monotonic()
    conn.send(flow_delete_all(conn.next_xid()))
    conn.sync(300)
    pre_delete_s = time.monotonic() - t
    if conn.flow_count() != 0:
        raise RuntimeError("flows left after delete-all")
    # Pre-encode everything: the timed part only moves bytes.
    parts = []
    n_barriers = 0
    xid = 1_000_000
    for i in range(n):
        parts.append(flow_mod_add(xid + i, i))
        if (i + 1) % batch == 0 or i == n - 1:
            parts.append(barrier(xid + n + n_barriers))
            n_barriers += 1
    data = b"".join(parts)
    del parts
    conn.keep.discard(T_BARRIER_REPLY)     # counted, not copied
    conn.kept = []
    errs0 = len(conn.errors)
    err_count0 = conn.counts.get(T_ERROR, 0)
    got0 = conn.counts.get(T_BARRIER_REPLY, 0)
    want = got0 + n_barriers
    sock = conn.sock
    mv = memoryview(data)
    sent = 0
    win = Window(sw.pids())
    t0 = time.perf_counter()
    last_progress = time.monotonic()
    while conn.counts.get(T_BARRIER_REPLY, 0) < want:
        wl = [sock] if sent < len(data) else []
        r, w, _ = select.select([sock], wl, [], 1.0)
        if w:
            try:
                sent += sock.send(mv[sent:sent + (1 << 18)])
            except BlockingIOError:
                pass
            last_progress = time.monotonic()
        if r:
            conn._read()
            last_progress = time.monotonic()
        if time.monotonic() - last_progress > 60:
            raise RuntimeError(f"no progress for 60 s ({conn.counts.get(T_BARRIER_REPLY, 0) - got0}"
                               f"/{n_barriers} barrier replies)")
    dt = time.perf_counter() - t0
    res = {"n": n, "batch": batch, "bytes": len(data), "seconds": round(dt, 4),
           "rate": round(n / dt)}
    win.close(res)
    res["errors"] = conn.counts.get(T_ERROR, 0) - err_count0
    res["first_errors"] = conn.errors[errs0:errs0 + 5]
    res["flow_count"] = conn.flow_count()
    res["verified"] = res["flow_count"] == n and res["errors"] == 0
    t = time.monotonic()
    conn.send(flow_delete_all(conn.next_xid()))
    conn.sync(300)
    res["delete_all_s"] = round(time.monotonic() - t, 3)
    res["pre_delete_s"] = round(pre_delete_s, 3)
    return res


def test_pin(conn, sw, gen, max_len, frame_len, rate, warmup, duration):
    """Packet-ins per second from a table-miss -> CONTROLLER flow."""
    conn.send(flow_delete_all(conn.next_xid()))
    conn.send(table_miss_to_controller(conn.next_xid(), max_len))
    conn.sync(300)
    gen.start(frame_len, rate)
    try:
        conn.pump_for(warmup)
        if not gen.alive():
            raise RuntimeError("trafgen exited: " + gen.stop().strip()[-300:])
        win = Window(sw.pids(), gen.pids())
        pin0 = conn.counts.get(T_PACKET_IN, 0)
        rx0 = rx_packets(IN_IF)
        t0 = time.monotonic()
        conn.pump_for(duration)
        dt = time.monotonic() - t0
        pin1 = conn.counts.get(T_PACKET_IN, 0)
        rx1 = rx_packets(IN_IF)
        res = {"max_len": max_len, "frame_len": frame_len, "offered_rate": rate}
        win.close(res, gen.pids())
        gen_pids = gen.pids()
        res["gen_cpu_pct"] = npath.cpu_of(win.p0, npath.proc_times(), dt, gen_pids)
        if not gen.alive():
            raise RuntimeError("trafgen exited during the window")
    finally:
        gen.stop()
    conn.pump_for(0.5)                      # drain what is still queued
    conn.send(flow_delete_all(conn.next_xid()))
    conn.sync(60)
    res.update({"window_s": round(dt, 3), "sent_pps": round((rx1 - rx0) / dt),
                "rate": round((pin1 - pin0) / dt)})
    res["received_pct"] = round(100.0 * res["rate"] / res["sent_pps"], 1) if res["sent_pps"] else None
    return res


def test_latency(conn, sw, psock, samples, frame_len, timeout=1.0):
    """wire -> PACKET_IN, PACKET_OUT -> wire and the sum, one frame at a time."""
    conn.send(flow_delete_all(conn.next_xid()))
    conn.send(table_miss_to_controller(conn.next_xid(), OFPCML_NO_BUFFER))
    conn.sync(60)
    conn.keep.add(T_PACKET_IN)
    conn.kept = []
    psock.setblocking(False)
    while True:                             # drop anything old on the packet socket
        try:
            psock.recv(65536)
        except BlockingIOError:
            break
    pin_us, pout_us, rtt_us = [], [], []
    lost_pin = lost_pout = 0
    win = Window(sw.pids())
    sock = conn.sock
    for seq in range(1, samples + 1):
        frame = udp_frame(frame_len, seq)
        key = frame[SEQ_OFF - len(MAGIC):SEQ_OFF + 8]
        t0 = time.perf_counter_ns()
        psock.send(frame)
        t1 = None
        deadline = time.monotonic() + timeout
        while t1 is None:
            for raw in conn.kept:
                if key in packet_in_data(raw):
                    t1 = time.perf_counter_ns()
                    break
            conn.kept.clear()
            if t1 is not None:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([sock], [], [], left)
            if r:
                conn._read()
                for raw in conn.kept:
                    if key in packet_in_data(raw):
                        t1 = time.perf_counter_ns()
                        break
                conn.kept.clear()
        if t1 is None:
            lost_pin += 1
            continue
        conn.send(packet_out(conn.next_xid(), frame, 1))
        t2 = None
        deadline = time.monotonic() + timeout
        while t2 is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([psock], [], [], left)
            if not r:
                continue
            while True:
                try:
                    data, addr = psock.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] != socket.PACKET_OUTGOING and key in data:
                    t2 = time.perf_counter_ns()
                    break
        if t2 is None:
            lost_pout += 1
            continue
        pin_us.append((t1 - t0) / 1000)
        pout_us.append((t2 - t1) / 1000)
        rtt_us.append((t2 - t0) / 1000)
    res = {"samples": samples, "frame_len": frame_len, "lost_packet_in": lost_pin,
           "lost_packet_out": lost_pout}
    win.close(res)
    conn.keep.discard(T_PACKET_IN)
    conn.kept = []
    conn.send(flow_delete_all(conn.next_xid()))
    conn.sync(60)

    def q(v, p):
        if not v:
            return None
        v = sorted(v)
        return round(v[min(len(v) - 1, int(p * len(v)))], 1)
    for name, v in (("pin", pin_us), ("pout", pout_us), ("rtt", rtt_us)):
        res[f"{name}_median_us"] = round(statistics.median(v), 1) if v else None
        res[f"{name}_p99_us"] = q(v, 0.99)
        res[f"{name}_min_us"] = round(min(v), 1) if v else None
    return res


# ---- driving a round ----------------------------------------------------------------
def run_switch(sw, args, gen, rnd):
    """Start sw, run every selected test on one connection, stop sw."""
    port = TCP_PORTS[(sw.name, args.connect)]
    out = []
    base = {"switch": sw.name, "round": rnd}
    listener = None
    conn = None
    try:
        t = time.monotonic()
        s, listener = sw.start(args.connect, port)
        conn = OFConn(s)
        conn.handshake(args.connect == "passive")
        log(f"  round {rnd} {sw.name}: connected (dpid {conn.dpid:#x}) in "
            f"{time.monotonic() - t:.1f} s")
        if "flowmod" in args.tests:
            for n in args.flowmods:
                r = dict(base, test="flowmod", key=f"flowmod:{n}")
                try:
                    r.update(test_flowmod(conn, sw, n, args.batch))
                    log(f"  round {rnd} {sw.name:<3} flowmod {n:>7,}: {r['rate']:>8,}/s "
                        f"({r['seconds']:.2f} s) flows {r['flow_count']:,} errors {r['errors']} "
                        f"cpu switch/client {r['switch_cpu_pct']:.0f}/{r['client_cpu_pct']:.0f}% "
                        f"noise {r['noise_pct']:.0f}% {' '.join(r['noise_top'])}")
                except RuntimeError as e:
                    r["error"] = str(e)
                    log(f"  round {rnd} {sw.name} flowmod {n}: ERROR {e}")
                out.append(r)
        if "pin" in args.tests:
            for max_len in args.pin_max_lens:
                ml = "nobuf" if max_len == OFPCML_NO_BUFFER else str(max_len)
                r = dict(base, test="pin", key=f"pin:{ml}")
                try:
                    r.update(test_pin(conn, sw, gen, max_len, args.pin_frame_len,
                                      args.pin_rate, args.warmup, args.duration))
                    log(f"  round {rnd} {sw.name:<3} pin max_len={ml:<5}: {r['rate']:>8,}/s "
                        f"of {r['sent_pps']:,} sent ({r['received_pct']}%) cpu switch/client/gen "
                        f"{r['switch_cpu_pct']:.0f}/{r['client_cpu_pct']:.0f}/"
                        f"{r['gen_cpu_pct']:.0f}% noise {r['noise_pct']:.0f}% "
                        f"{' '.join(r['noise_top'])}")
                except RuntimeError as e:
                    r["error"] = str(e)
                    log(f"  round {rnd} {sw.name} pin {ml}: ERROR {e}")
                out.append(r)
        if "latency" in args.tests:
            r = dict(base, test="latency", key="latency")
            # Opened only now: a packet socket on the generator's veth would
            # also get a copy of every frame trafgen sends.
            psock = packet_socket_in_netns(NS, GEN_IF)
            try:
                r.update(test_latency(conn, sw, psock, args.samples, args.lat_frame_len))
                log(f"  round {rnd} {sw.name:<3} latency: packet-in {r['pin_median_us']}/"
                    f"{r['pin_p99_us']} us, packet-out {r['pout_median_us']}/{r['pout_p99_us']} us,"
                    f" round trip {r['rtt_median_us']}/{r['rtt_p99_us']} us (median/p99), lost "
                    f"{r['lost_packet_in']}+{r['lost_packet_out']} noise {r['noise_pct']:.0f}%")
            except RuntimeError as e:
                r["error"] = str(e)
                log(f"  round {rnd} {sw.name} latency: ERROR {e}")
            finally:
                psock.close()
            out.append(r)
    except (RuntimeError, OSError) as e:
        out.append(dict(base, test="setup", key="setup", error=str(e)))
        log(f"  round {rnd} {sw.name}: ERROR {e}")
    finally:
        if conn is not None:
            conn.close()
        if listener is not None:
            listener.close()
        sw.stop()
    return out


# ---- report -------------------------------------------------------------------------
def rows_spec(args):
    """(key, field, label, higher_is_better, row command options)."""
    rows = []
    if "flowmod" in args.tests:
        for n in args.flowmods:
            rows.append((f"flowmod:{n}", "rate", f"flow-mods/s, {n:,} adds, barrier every "
                         f"{args.batch:,}", True, f"--tests flowmod --flowmods {n} "
                         f"--batch {args.batch}"))
    if "pin" in args.tests:
        for max_len in args.pin_max_lens:
            ml = "nobuf" if max_len == OFPCML_NO_BUFFER else str(max_len)
            what = "no buffer" if ml == "nobuf" else f"max_len {ml}"
            cmd = (f"--tests pin --pin-max-len {ml} --pin-rate {args.pin_rate} "
                   f"--pin-frame-len {args.pin_frame_len}")
            rows.append((f"pin:{ml}", "rate", f"packet-ins/s, {what}", True, cmd))
            rows.append((f"pin:{ml}", "sent_pps", "  frames sent to port 1 /s", None, cmd))
    if "latency" in args.tests:
        cmd = f"--tests latency --samples {args.samples}"
        for f, label in (("pin", "wire -> PACKET_IN"), ("pout", "PACKET_OUT -> wire"),
                         ("rtt", "round trip")):
            rows.append(("latency", f"{f}_median_us", f"{label} median, us", False, cmd))
            rows.append(("latency", f"{f}_p99_us", f"{label} p99, us", False, cmd))
    return rows


def summarize(runs, args, switches):
    out = []
    for key, fld, label, higher, cmd in rows_spec(args):
        row = {"key": key, "field": fld, "label": label, "higher_is_better": higher,
               "command": f"bench/ofp_rates.py {cmd}", "values": {}, "rounds": {}, "notes": {}}
        for sw in switches:
            rs = [r for r in runs if r["switch"] == sw and r.get("key") == key
                  and r.get(fld) is not None and "error" not in r]
            bad = [r for r in runs if r["switch"] == sw and r.get("key") == key and "error" in r]
            if key.startswith("flowmod"):
                unverified = [r for r in rs if not r["verified"]]
                rs = [r for r in rs if r["verified"]]
                if unverified:
                    row["notes"][sw] = (f"{len(unverified)} round(s) not verified "
                                        f"(flows {unverified[0]['flow_count']}, errors "
                                        f"{unverified[0]['errors']})")
            row["rounds"][sw] = [r[fld] for r in rs]
            if not rs:
                row["values"][sw] = None
                if bad:
                    row["notes"][sw] = bad[-1]["error"]
                continue
            if higher is None:      # informational: the round the headline came from
                pick = max(rs, key=lambda r: r["rate"])
            elif higher:
                pick = max(rs, key=lambda r: r[fld])
            else:
                pick = min(rs, key=lambda r: r[fld])
            row["values"][sw] = pick[fld]
        v, o = row["values"].get("vdp"), row["values"].get("ovs")
        row["ratio"] = round(v / o, 2) if v is not None and o else None
        out.append(row)
    return out


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and v < 1000:
        return f"{v:,.1f}"
    return f"{round(v):,}"


def print_table(rows, args, meta):
    print(f"\nofp_rates: {args.rounds} round(s), best shown; client on CPU {CLIENT_CPU}, switch on "
          f"CPU {SWITCH_CPU}; connection {args.connect} "
          f"({'switch connects to the client' if args.connect == 'active' else 'client connects to the switch'})")
    hdr = f"{'test':<46} {'vdp':>10} {'OVS':>10} {'vdp/OVS':>8}  command"
    print(hdr)
    print("-" * (len(hdr) + 40))
    for r in rows:
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        if r["higher_is_better"] is False and r["ratio"] is not None:
            ratio += "*"
        cmd = r["command"] if r["higher_is_better"] is not None else ""
        print(f"{r['label']:<46} {fmt(r['values'].get('vdp')):>10} "
              f"{fmt(r['values'].get('ovs')):>10} {ratio:>8}  {cmd}")
    print("\n* lower is better (latency); other rows: higher is better.")
    print("rounds:")
    for r in rows:
        if r["higher_is_better"] is None:
            continue
        parts = []
        for sw in ("vdp", "ovs"):
            if sw in r["rounds"]:
                parts.append(f"{sw} " + ",".join(fmt(x) for x in r["rounds"][sw]))
            if sw in r["notes"]:
                parts.append(f"{sw} NOTE: {r['notes'][sw][:150]}")
        print(f"  {r['label'].strip():<44} {'; '.join(parts)}")
    for line in meta:
        print(line)


# ---- main ---------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--switches", default="vdp,ovs", help="comma list of vdp, ovs")
    ap.add_argument("--tests", default="flowmod,pin,latency",
                    help="comma list of flowmod, pin, latency")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--flowmods", default="10000,100000",
                    help="comma list of flow-mod counts (default 10000,100000)")
    ap.add_argument("--batch", type=int, default=1000, help="flow-mods per barrier")
    ap.add_argument("--pin-max-len", default="128,nobuf",
                    help="comma list of the table-miss CONTROLLER action's max_len: "
                         "numbers and/or nobuf (default 128,nobuf)")
    ap.add_argument("--pin-rate", type=int, default=100000,
                    help="frames/s trafgen offers for the packet-in test (0: as fast as it can)")
    ap.add_argument("--pin-frame-len", type=int, default=256)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--duration", type=float, default=3.0, help="packet-in counting window, s")
    ap.add_argument("--samples", type=int, default=1000, help="latency samples")
    ap.add_argument("--lat-frame-len", type=int, default=64)
    ap.add_argument("--connect", choices=("active", "passive"), default="active")
    ap.add_argument("--vdp-cmd", help="command for vdp (default: `vdp` on PATH, else "
                                      "python -m datapath.cli)")
    ap.add_argument("--prio", choices=("nice", "rt", "none"), default="nice")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--cleanup", action="store_true",
                    help="only remove leftovers of a killed run and exit")
    args = ap.parse_args(argv)
    args.switches = [s for s in args.switches.split(",") if s]
    args.tests = [t for t in args.tests.split(",") if t]
    args.flowmods = [int(x) for x in args.flowmods.split(",") if x]
    args.pin_max_lens = [OFPCML_NO_BUFFER if x == "nobuf" else int(x)
                         for x in args.pin_max_len.split(",") if x]
    for s in args.switches:
        if s not in ("vdp", "ovs"):
            ap.error(f"unknown switch {s!r}")
    for t in args.tests:
        if t not in ("flowmod", "pin", "latency"):
            ap.error(f"unknown test {t!r}")
    if args.pin_frame_len < 60 or args.lat_frame_len < SEQ_OFF + 8:
        ap.error("frames too short")
    return args


def own_session():
    """Run the rest of the harness in a session of its own (a forked child),
    so its scheduler autogroup can be favoured without touching the
    caller's shell; the parent forwards signals and passes the exit status on."""
    if os.getsid(0) == os.getpid():
        return
    pid = os.fork()
    if pid == 0:
        os.setsid()
        return
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda sig, frame: os.kill(pid, sig))
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            status = 1
            break
    os._exit(os.waitstatus_to_exitcode(status) if status != 1 else 1)


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    args = parse_args(argv)
    pps.PRIO = args.prio
    if os.geteuid() != 0:
        sys.exit("ofp_rates.py needs root (netns, veth, AF_PACKET, OVS)")
    if args.cleanup:
        path_cleanup()
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", OVS_BRIDGE],
                       capture_output=True)
        return 0
    if "pin" in args.tests and not shutil.which("trafgen"):
        sys.exit("trafgen not found (Debian package netsniff-ng)")
    if args.prio != "none":
        own_session()
        pps.autogroup_nice(os.getpid(), -20 if args.prio == "nice" else None)
        if args.prio == "rt":
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(pps.RT_PRIO))
    os.sched_setaffinity(0, {CLIENT_CPU})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)

    meta = []
    meta.append("client: " + check_against_os_ken())
    if "pin" in args.tests:
        meta.append(f"client: counts {parse_ceiling(frame_len=args.pin_frame_len):,.0f} "
                    f"PACKET_INs/s of {args.pin_frame_len}-byte frames on one core when the "
                    f"bytes are there (its ceiling)")
    workdir = tempfile.mkdtemp(prefix=PREFIX)
    switches, unavailable, runs = [], {}, []
    gen = Trafgen(workdir)
    softirq = pps.SoftirqThreads()
    t_start = time.monotonic()
    try:
        softirq.raise_()
        for name in args.switches:
            sw = VdpSwitch(args.vdp_cmd) if name == "vdp" else OvsSwitch()
            try:
                sw.prepare(workdir)
                switches.append(sw)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                unavailable[name] = str(e)
                log(f"  {name} unavailable: {e}")
                sw.finish()
        path_create()
        for rnd in range(1, args.rounds + 1):
            order = switches if rnd % 2 else list(reversed(switches))
            for sw in order:
                runs += run_switch(sw, args, gen, rnd)
                time.sleep(0.3)
    except KeyboardInterrupt:
        log("  interrupted: cleaning up")
        raise SystemExit(130)
    finally:
        gen.stop()
        softirq.restore()
        for sw in switches:
            try:
                sw.finish()
            except Exception as e:  # noqa: BLE001 - keep cleaning
                log(f"  cleanup of {sw.name}: {e}")
        path_cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    names = [s.name for s in switches]
    rows = summarize(runs, args, names + [n for n in unavailable if n not in names])
    for sw in switches:
        meta.append(f"{sw.name}: {getattr(sw, 'command', '')}")
    for n, why in unavailable.items():
        meta.append(f"{n}: unavailable: {why}")
    cpu = {}
    for r in runs:
        if "error" not in r and r["test"] in ("flowmod", "pin"):
            cpu.setdefault((r["key"], r["switch"]), []).append(
                (r["switch_cpu_pct"], r["client_cpu_pct"], r["noise_pct"]))
    for (key, sw), v in sorted(cpu.items()):
        meta.append(f"cpu% {key:<16} {sw:<3} switch/client/noise per round: " +
                    ", ".join(f"{a:.0f}/{b:.0f}/{c:.0f}" for a, b, c in v))
    if args.json:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                   "kernel": os.uname().release,
                   "args": {k: v for k, v in vars(args).items() if k != "json"},
                   "elapsed_s": round(time.monotonic() - t_start, 1), "meta": meta,
                   "summary": rows, "runs": runs}, sys.stdout, indent=1)
        print()
    else:
        print_table(rows, args, meta)
        log(f"(elapsed {time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
