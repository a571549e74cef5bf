#!/usr/bin/env python3
"""Bond benchmarks: packet rate through a bond of 2, failover times.

    python bench/bond_pps.py [--what pps,failover,silent] [--rounds 3]
                             [--duration 3] [--warmup 1] [--json]

The path is bench/pps.py's (bench/netns_path.py), under names of its own
(vdptbm-*, so it can run beside pps.py): trafgen in netns vdptbm-gen on CPU 0
sends 64-byte UDP frames of 1,000 flows (pps.py's multi-flow stream) into
port 1; the switch, on CPU 1, forwards them out of a bond of vdptbm-s2 +
vdptbm-s3 whose peers vdptbm-k0/k1 sit in netns vdptbm-sink, where an LACP
responder (this file, `lacp-peer`: datapath/lacp.py's machines on AF_PACKET
sockets bound to the Slow Protocols ethertype only, so it never sees the
data) is the bond's partner, active with fast timers.  Frames are counted at
k0 + k1.

pps (one run measures all, rounds alternate the order; best round shown):
  vdp bond   `vdp run --port s1 --bond vb=s2,s3 --bond-mode balance-l4 --lacp
             active --lacp-time fast`, flow in_port=1,actions=output:2 (the bond)
  OVS bond   netdev bridge, s1 + bond(s2, s3) lacp=active bond_mode=balance-tcp
             lacp-time=fast, actions=NORMAL (OVS bonds are used through NORMAL;
             the responder keeps the destination MAC learned on the bond)
  vdp plain  `vdp run --port s1 --port s2`, in_port=1,actions=output:2: the
             unbonded rate of the same stream (one sink)
  Issue targets: vdp bond >= 2x OVS bond, and >= 0.9x vdp plain.

failover (vdp, then OVS): trafgen paced at --failover-pps; a capture in the
  sink namespace timestamps every frame (CLOCK_MONOTONIC, the clock of this
  process) per member and flow.  At T0 member s3 is set down (ip link); the
  figures: first frame of a flow that was on s3 arriving on s2 (its flows
  moving) and the time by which every such flow has arrived there.
silent (vdp): the same, but at T0 the responder stops sending LACPDUs on k1
  (the link stays up): fast LACP must notice within 3 s (expiry) and move
  the flows.

Root, two CPUs, trafgen, Open vSwitch.  Everything created is named vdptbm-*
(OVS bridge vdptbmovs) and removed at the end, also on failure or Ctrl-C.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, REPO)

import netns_path as npath  # noqa: E402

# our own names (bench/pps.py uses vdptb-*)
npath.GEN_NS, npath.SINK_NS, npath.GEN_IF = "vdptbm-gen", "vdptbm-sink", "vdptbm-g0"
npath.IN_IF, npath.OUT_IFS = "vdptbm-s1", ("vdptbm-s2", "vdptbm-s3")
npath.SINK_IFS, npath.PREFIX = ("vdptbm-k0", "vdptbm-k1"), "vdptbm-"

import pps  # noqa: E402  (after the names: it reads them at call time)

OVS_BRIDGE = "vdptbmovs"
OVS_BOND = "vdptbmovsb"
VDP_CTL = "/tmp/vdptbm-vdp.ctl"
pps.OVS_BRIDGE = OVS_BRIDGE              # pps.Ovs deletes/creates pps.OVS_BRIDGE: ours, not pps.py's
PEER_MAC = "02:00:00:00:00:02"           # the stream's destination MAC (pps.DST_MAC)
ETH_SLOW = 0x8809


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def in_ns(ns, argv):
    return ["ip", "netns", "exec", ns] + list(argv)


# ---------------------------------------------------------------- the LACP responder
def lacp_peer(ifnames):
    """Runs in the sink namespace: an active, fast LACP partner on ifnames
    (datapath.lacp.Bond), plus a broadcast from PEER_MAC each second so MAC
    learning switches know where the stream's destination is.  SIGUSR1:
    stop sending anything on the last member (silent partner); SIGUSR2:
    speak again.  Prints "ready", then the status on SIGTERM."""
    from datapath.lacp import Bond
    socks = {}
    for i, name in enumerate(ifnames):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_SLOW))
        s.bind((name, ETH_SLOW))
        s.setblocking(False)
        socks[i] = s
    bond = Bond("peer", "02:00:00:00:0b:01", mode="active", rate="fast")
    for i, name in enumerate(ifnames):
        with open(f"/sys/class/net/{name}/address") as f:
            bond.add_member(i, mac=f.read().strip(), name=name)
    silent = set()
    stop = []
    signal.signal(signal.SIGUSR1, lambda *a: silent.add(len(ifnames) - 1))
    signal.signal(signal.SIGUSR2, lambda *a: silent.clear())
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    learn = bytes.fromhex("ffffffffffff") + bytes.fromhex(PEER_MAC.replace(":", "")) + \
        b"\x88\xb5" + b"vdptbm-learn".ljust(46, b"\0")

    def send(frames):
        for i, f in frames:
            if i not in silent:
                try:
                    socks[i].send(f)
                except OSError:
                    pass

    now = time.monotonic()
    for i in socks:
        send(bond.link(i, True, now))
    print("ready", flush=True)
    next_learn = 0.0
    while not stop:
        now = time.monotonic()
        nd = bond.next_deadline()
        timeout = 0.2 if nd is None else max(0.0, min(0.2, nd - now))
        try:
            r, _, _ = select.select(list(socks.values()), [], [], timeout)
        except InterruptedError:
            r = []
        now = time.monotonic()
        for i, s in socks.items():
            if s in r:
                while True:
                    try:
                        data = s.recv(2048)
                    except (BlockingIOError, InterruptedError):
                        break
                    send(bond.rx(i, data, now))
        send(bond.tick(now))
        if now >= next_learn:
            next_learn = now + 1.0
            for i, s in socks.items():
                if i not in silent:
                    try:
                        s.send(learn)
                    except OSError:
                        pass
    st = bond.status()
    print(json.dumps({"distributing": st["distributing"], "counters": st["counters"]}), flush=True)


# ---------------------------------------------------------------- the capture
def capture(ifnames, seconds):
    """Runs in the sink namespace: timestamps (CLOCK_MONOTONIC) every frame
    of the stream on each interface, per flow (UDP source port + IP
    destination); prints JSON {ifname: {flow: [first, last, count, first
    after T0...]}} where the raw per-frame lists are reduced to first/last
    per flow and the sorted arrival times.  Stops after `seconds` or SIGTERM."""
    socks = {}
    for name in ifnames:
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
        s.bind((name, 0x0800))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        s.setblocking(False)
        socks[s] = name
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    rec = {name: [] for name in ifnames}      # (t, flow)
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while not stop and time.monotonic() < end:
        try:
            r, _, _ = select.select(list(socks), [], [], 0.05)
        except InterruptedError:
            continue
        for s in r:
            name = socks[s]
            lst = rec[name]
            while True:
                try:
                    data = s.recv(128)
                except (BlockingIOError, InterruptedError):
                    break
                t = time.monotonic()
                if len(data) >= 42 and data[23] == 17:
                    lst.append((t, (data[33] << 16) | struct.unpack_from("!H", data, 34)[0]))
    json.dump(rec, sys.stdout)
    sys.stdout.flush()


# ---------------------------------------------------------------- switches
class Sw:
    name = "?"
    n_sinks = 2

    def __init__(self, base):
        self.base = base
        self.proc = None
        self.logf = None

    def pids(self):
        return npath.children_of(self.proc.pid) if self.proc else set()


class VdpSw(Sw):
    def __init__(self, base, bond=True, workdir="/tmp"):
        super().__init__(base)
        self.bond = bond
        self.workdir = workdir
        self.name = "vdp-bond" if bond else "vdp-plain"
        self.label = "vdp bond (balance-l4)" if bond else "vdp unbonded"
        self.n_sinks = 2 if bond else 1

    def ctl(self, *args, timeout=60):
        return subprocess.run(self.base + ["ctl", "--ctl", VDP_CTL] + list(args),
                              env=pps.child_env(), capture_output=True, text=True,
                              timeout=timeout)

    def start(self, scenario=None):
        argv = self.base + ["run", "--name", "vdptbm", "--fail-mode", "secure", "--ctl", VDP_CTL,
                            "--port", npath.IN_IF]
        if self.bond:
            argv += ["--bond", f"vb={npath.OUT_IFS[0]},{npath.OUT_IFS[1]}", "--bond-mode",
                     "balance-l4", "--lacp", "active", "--lacp-time", "fast"]
        else:
            argv += ["--port", npath.OUT_IFS[0]]
        if os.path.exists(VDP_CTL):
            os.unlink(VDP_CTL)
        self.logf = open(os.path.join(self.workdir, f"{self.name}.log"), "a+")
        self.proc = subprocess.Popen(pps.pinned(pps.SWITCH_CPU, argv), env=pps.child_env(),
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        pps.favour(self.proc)
        deadline = time.monotonic() + 40
        while not (os.path.exists(VDP_CTL) and self.ctl("show", timeout=10).returncode == 0):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vdp run did not start: {self.tail()}")
            time.sleep(0.2)
        r = self.ctl("add-flow", "in_port=1,actions=output:2")
        if r.returncode:
            raise RuntimeError(f"add-flow: {r.stderr}")
        if self.bond:
            self.wait_negotiated()

    def lacp(self):
        r = self.ctl("--json", "lacp/show", timeout=10)
        return json.loads(r.stdout)[0] if r.returncode == 0 else {}

    def wait_negotiated(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.lacp()
            if st.get("status") == "negotiated" and len(st.get("distributing", [])) == 2:
                return
            time.sleep(0.2)
        raise RuntimeError(f"vdp bond did not negotiate: {self.tail()}")

    def member_up(self, idx):
        r = self.ctl("--json", "bond/show", timeout=10)
        return json.loads(r.stdout)[0]["members"][idx]["enabled"]

    def tail(self):
        if not self.logf:
            return ""
        self.logf.flush()
        self.logf.seek(0)
        return " | ".join(self.logf.read().strip().splitlines()[-6:])

    def stop(self):
        extra = {}
        if self.proc is not None and self.proc.poll() is None and self.bond:
            r = self.ctl("--json", "bond/show", timeout=10)
            if r.returncode == 0:
                st = json.loads(r.stdout)[0]
                extra["members_tx"] = {m["name"]: m["tx_packets"] for m in st["members"]}
        pps.stop_proc(self.proc, signal.SIGTERM, timeout=15, group=True)
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None
        return extra

    def finish(self):
        if self.proc is not None:
            self.stop()


class OvsSw(pps.Ovs):
    """Open vSwitch netdev with s1 + a balance-tcp LACP bond of s2, s3;
    ovs-vswitchd pinned to the switch core (pps.Ovs does the pinning)."""
    name = "ovs-bond"
    label = "OVS 3.1 bond (balance-tcp)"
    n_sinks = 2

    def start(self, scenario=None):
        self._pin()
        vs = ["ovs-vsctl", "--timeout=20"]
        npath.sh(*vs, "--if-exists", "del-br", OVS_BRIDGE)
        npath.sh(*vs, "add-br", OVS_BRIDGE, "--", "set", "bridge", OVS_BRIDGE,
                 "datapath_type=netdev", "other-config:disable-in-band=true",
                 "--", "add-port", OVS_BRIDGE, npath.IN_IF,
                 "--", "set", "Interface", npath.IN_IF, "ofport_request=1")
        npath.sh(*vs, "add-bond", OVS_BRIDGE, OVS_BOND, npath.OUT_IFS[0], npath.OUT_IFS[1],
                 "lacp=active", "bond_mode=balance-tcp", "other_config:lacp-time=fast")
        self.bridge_up = True
        deadline = time.monotonic() + 30
        while True:
            out = npath.sh("ovs-appctl", "lacp/show", OVS_BOND, check=False)
            if "negotiated" in out and out.count("current attached") == 2:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("OVS bond did not negotiate: " + out[-300:])
            time.sleep(0.2)
        # the responder's broadcasts teach NORMAL where PEER_MAC is
        deadline = time.monotonic() + 10
        while PEER_MAC not in npath.sh("ovs-appctl", "fdb/show", OVS_BRIDGE, check=False):
            if time.monotonic() > deadline:
                raise RuntimeError("OVS did not learn the destination MAC on the bond")
            time.sleep(0.2)
        self._pin()

    def stop(self):
        extra = super().stop()
        return extra

    def member_up(self, idx):
        out = npath.sh("ovs-appctl", "bond/show", OVS_BOND, check=False)
        return f"member {npath.OUT_IFS[idx]}: enabled" in out


# ---------------------------------------------------------------- measurements
class Peer:
    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            in_ns(npath.SINK_NS, [sys.executable, os.path.abspath(__file__), "lacp-peer"]
                  + list(npath.SINK_IFS)), env=pps.child_env(), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, start_new_session=True)
        if not pps.wait_line(self.proc, "ready", 30):
            raise RuntimeError("LACP responder did not start: " + pps.stop_proc(self.proc))

    def signal(self, sig):
        os.killpg(self.proc.pid, sig)

    def stop(self):
        out = pps.stop_proc(self.proc, signal.SIGTERM, timeout=10, group=True)
        self.proc = None
        return out


class PacedGen(pps.Generator):
    """trafgen with a gap between frames (-t), for the failover runs."""

    def __init__(self, workdir, gap_us):
        super().__init__(workdir)
        self.gap_us = gap_us

    def start(self, multi=True):
        cfg = os.path.join(self.workdir, "multi.cfg")
        if not os.path.exists(cfg):
            with open(cfg, "w") as f:
                f.write(pps.trafgen_config(True))
        self.logf = open(os.path.join(self.workdir, "trafgen-paced.log"), "w+")
        self.proc = subprocess.Popen(
            in_ns(npath.GEN_NS, pps.pinned(pps.GEN_CPU, [
                "trafgen", "-i", cfg, "-o", npath.GEN_IF, "-P", "1", "--no-sock-mem", "-Q",
                "-t", f"{self.gap_us}us"])),
            stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)


def measure_pps(sw, gen, args):
    # pps.measure counts n_sinks from the scenario: "group" = 2 sinks, "10k" = 1;
    # both send the 1,000-flow stream.  Our start() ignores the scenario's rules.
    scenario = "group" if sw.n_sinks == 2 else "10k"
    r = pps.measure(sw, scenario, gen, args)
    r["forwarder"], r["label"] = sw.name, sw.label
    return r


def failover(sw, gen, kind, args, workdir):
    """Time from T0 (member s3 down, or the partner silent on it) to the
    flows of s3 arriving on s2.  Returns a dict of figures (seconds)."""
    sw.start()
    cap = subprocess.Popen(
        in_ns(npath.SINK_NS, [sys.executable, os.path.abspath(__file__), "capture",
                              str(args.failover_window + 10)] + list(npath.SINK_IFS)),
        env=pps.child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    res = {"switch": sw.name, "kind": kind}
    try:
        if not pps.wait_line(cap, "ready", 30):
            raise RuntimeError("capture did not start")
        gen.start()
        time.sleep(2.0)
        t0 = time.monotonic()
        if kind == "link-down":
            npath.sh("ip", "link", "set", npath.OUT_IFS[1], "down")
        else:
            PEER.signal(signal.SIGUSR1)
        time.sleep(args.failover_window)
        gen.stop()
        time.sleep(0.3)
        out = pps.stop_proc(cap, signal.SIGTERM, timeout=30, group=True)
        cap = None
        rec = json.loads(out[out.index("{"):])
        k0, k1 = rec[npath.SINK_IFS[0]], rec[npath.SINK_IFS[1]]
        moved = {f for t, f in k1 if t0 - 1.0 <= t < t0}
        first = {}
        for t, f in k0:
            if t >= t0 and f in moved and f not in first:
                first[f] = t
        last_k1 = max((t for t, f in k1), default=None)
        res.update({
            "flows_on_member": len(moved),
            "first_moved_s": round(min(first.values()) - t0, 4) if first else None,
            "all_moved_s": round(max(first.values()) - t0, 4)
            if first and len(first) == len(moved) else None,
            "moved_arrived": len(first),
            "last_on_lost_member_s": round(last_k1 - t0, 4) if last_k1 else None,
            "frames_k0": len(k0), "frames_k1": len(k1),
            "rate_pps": round(len([1 for t, f in k0 + k1 if t0 - 1.0 <= t < t0])),
        })
    finally:
        if cap is not None:
            pps.stop_proc(cap, signal.SIGTERM, timeout=10, group=True)
        gen.stop()
        sw.stop()
        if kind == "link-down":
            npath.sh("ip", "link", "set", npath.OUT_IFS[1], "up", check=False)
        else:
            PEER.signal(signal.SIGUSR2)
        time.sleep(1.0)
    return res


PEER = None


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--what", default="pps,failover,silent")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--failover-pps", type=int, default=20000,
                    help="stream rate for the failover runs (the capture is Python)")
    ap.add_argument("--failover-window", type=float, default=6.0)
    ap.add_argument("--failover-rounds", type=int, default=3)
    ap.add_argument("--prio", choices=("nice", "rt", "none"), default="nice")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    args.what = [w for w in args.what.split(",") if w]
    args.quiet_wait = 0.0
    return args


def main(argv=None):
    global PEER
    if len(sys.argv) > 1 and sys.argv[1] == "lacp-peer":
        return lacp_peer(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "capture":
        return capture(sys.argv[3:], float(sys.argv[2]))
    args = parse_args(argv)
    pps.PRIO = args.prio
    if os.geteuid() != 0:
        sys.exit("bond_pps.py needs root")
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, pps._sigterm)
    workdir = tempfile.mkdtemp(prefix="vdptbm-")
    base = [sys.executable, "-m", "datapath.cli"]
    vb, vp = VdpSw(base, True, workdir), VdpSw(base, False, workdir)
    ovs = OvsSw()
    softirq = pps.SoftirqThreads()
    runs, fo = [], []
    t_start = time.monotonic()
    try:
        softirq.raise_()
        ovs.prepare(workdir)
        npath.create(2)
        PEER = Peer(workdir)
        PEER.start()
        gen = pps.Generator(workdir)
        if "pps" in args.what:
            sws = [vb, ovs, vp]
            for rnd in range(1, args.rounds + 1):
                for sw in (sws if rnd % 2 else list(reversed(sws))):
                    r = measure_pps(sw, gen, args)
                    r["round"] = rnd
                    runs.append(r)
                    if "error" in r:
                        log(f"  round {rnd} {sw.name:<10} ERROR {r['error']}")
                    else:
                        log(f"  round {rnd} {sw.name:<10} {r['pps']:>9,} pps  gen "
                            f"{r['gen_pps']:>9,}  split {r['per_sink_pps']}  cpu gen/fwd "
                            f"{r['gen_cpu_pct']:.0f}/{r['fwd_cpu_pct']:.0f}%  noise "
                            f"{r['noise_pct']:.0f}%")
        paced = PacedGen(workdir, max(1, int(1e6 / args.failover_pps)))
        for kind, sws in (("link-down", [vb, ovs]), ("silent", [vb])):
            if (kind == "link-down" and "failover" not in args.what) or \
                    (kind == "silent" and "silent" not in args.what):
                continue
            for rnd in range(args.failover_rounds):
                for sw in sws:
                    try:
                        r = failover(sw, paced, kind, args, workdir)
                    except Exception as e:  # noqa: BLE001 - report, go on
                        r = {"switch": sw.name, "kind": kind, "error": str(e)}
                    fo.append(r)
                    log(f"  {kind:<9} {sw.name:<9} {r}")
    except KeyboardInterrupt:
        log("  interrupted: cleaning up")
        raise SystemExit(130)
    finally:
        for sw in (vb, vp):
            sw.finish()
        try:
            ovs.finish()
        except Exception as e:  # noqa: BLE001
            log(f"  ovs cleanup: {e}")
        if PEER is not None and PEER.proc is not None:
            PEER.stop()
        softirq.restore()
        npath.cleanup()
        npath.sh("ovs-vsctl", "--timeout=10", "--if-exists", "del-br", OVS_BRIDGE, check=False)
        if os.path.exists(VDP_CTL):
            os.unlink(VDP_CTL)

    best = {}
    for r in runs:
        if "pps" in r and r["pps"] > best.get(r["forwarder"], {}).get("pps", -1):
            best[r["forwarder"]] = r
    summary = {}
    for name, r in best.items():
        summary[name] = {"pps": r["pps"], "gen_pps": r["gen_pps"], "loss_pct": r["loss_pct"],
                         "per_sink_pps": r["per_sink_pps"], "fwd_cpu_pct": r["fwd_cpu_pct"],
                         "fwd_ns_per_pkt": r["fwd_ns_per_pkt"], "noise_pct": r["noise_pct"],
                         "rounds": [x["pps"] for x in runs if x["forwarder"] == name
                                    and "pps" in x]}
    if "vdp-bond" in best:
        b = best["vdp-bond"]["pps"]
        if "ovs-bond" in best and best["ovs-bond"]["pps"]:
            summary["vdp-bond"]["x_ovs_bond"] = round(b / best["ovs-bond"]["pps"], 2)
        if "vdp-plain" in best and best["vdp-plain"]["pps"]:
            summary["vdp-bond"]["x_vdp_plain"] = round(b / best["vdp-plain"]["pps"], 2)
    out = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "summary": summary, "failover": fo,
           "elapsed_s": round(time.monotonic() - t_start, 1)}
    if args.json:
        json.dump(dict(out, runs=runs), sys.stdout, indent=1)
        print()
        return 0
    print(f"\nbond bench: 1,000 flows of 64-byte UDP, trafgen CPU {pps.GEN_CPU}, switch CPU "
          f"{pps.SWITCH_CPU}; best of {args.rounds} round(s)")
    for name in ("vdp-bond", "ovs-bond", "vdp-plain"):
        s = summary.get(name)
        if s is None:
            print(f"  {name:<10} -")
            continue
        extra = ""
        if name == "vdp-bond":
            extra = (f"  x OVS bond {s.get('x_ovs_bond', '-')} (target >= 2), x unbonded "
                     f"{s.get('x_vdp_plain', '-')} (target >= 0.9)")
        print(f"  {name:<10} {s['pps']:>9,} pps  split {s['per_sink_pps']}  gen "
              f"{s['gen_pps']:,}  fwd cpu {s['fwd_cpu_pct']:.0f}%  {s['fwd_ns_per_pkt']} ns/pkt"
              f"  noise {s['noise_pct']:.0f}%  rounds {s['rounds']}{extra}")
    for r in fo:
        if "error" in r:
            print(f"  {r['kind']:<9} {r['switch']:<9} ERROR {r['error']}")
        else:
            print(f"  {r['kind']:<9} {r['switch']:<9} first moved flow {r['first_moved_s']} s, "
                  f"all {r['moved_arrived']}/{r['flows_on_member']} moved by {r['all_moved_s']} s"
                  f" (stream {r['rate_pps']} pps)")
    log(f"(elapsed {time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
