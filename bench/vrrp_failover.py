"""VRRP failover time of the `vrrp` app on vdp datapaths (root, netns).

    python bench/vrrp_failover.py                       # 100 ms and 1 s v3 adverts, link cut
    python bench/vrrp_failover.py --intervals 0.1 --trials 10 --cause link,kill
    python bench/vrrp_failover.py --json

The topology is the one of tests/integration/test_vrrp_app.py (VrrpPair): host
ha -- lan bridge -- r1/r2 (vdp run + one app instance each) -- wan bridge --
host hb, VRID 1 (lan) and VRID 2 (wan, tracking the lan port).  r1 has
priority 200, r2 100.

A probe in ha sends a UDP datagram to an echo server in hb every --period
seconds (seq, send time) and records when each echo comes back: traffic
crosses both virtual routers (ha -> VIP 10.1.0.1 -> hb, hb -> VIP 10.2.0.1 ->
ha).  Once echoes flow through r1, the bench cuts r1's lan link (`ip link
set <r1 lan veth> down`, cause "link") or SIGKILLs r1's controller (cause
"kill": no priority-0 advert, the datapath keeps its flows), and reports,
with t0 = the moment just before the cut (CLOCK_MONOTONIC, shared by every
process on the machine):

  first_echo   time from t0 to the first echo after the outage (the
               largest gap between echo arrivals that ends after t0): the
               figure of merit, "traffic flowing via the backup"
  outage       that gap (last echo before it to first echo after it)
  lost         probes missing in it (sequence numbers)
  r2_master    when r2's lan (wan) router became Master (the app's status:
               its last_transition time, same clock), minus t0
  r1_down      when r1's lan router left service (PORT_STATUS link down)
  mdi          r2's Master_Down_Interval (3 * interval + skew)

With cause "kill" no outage is expected: r1's datapath keeps its flows and
goes on routing what reaches it while r2 takes over; the figures are the
largest echo gap and the probes lost.

Then the link comes back (or r1's controller restarts), r1 preempts, and the
next trial starts.  Figures go to stdout; nothing here asserts a time.
Requires a vdp build on PYTHONPATH (scripts/devbuild.sh NAME) and root.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import struct
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO))

PROBE_PORT = 9779
BENCH_OFP_PORTS = (16846, 16847)      # in the VRRP range 16830-16849, apart from the tests


# --------------------------------------------------------------------------
# probe and echo (run inside the host namespaces: `python bench/vrrp_failover.py probe ...`)

def echo_server(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    print("ready", flush=True)
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(data, addr)


def probe(dst, port, period, out_path):
    """Sends (seq, t_send) every period; records (seq, t_send, t_recv) of
    each echo; writes them to out_path on SIGTERM."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setblocking(False)
    got = []
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    seq = 0
    nxt = time.monotonic()
    print("ready", flush=True)
    while not stop:
        now = time.monotonic()
        if now >= nxt:
            try:
                s.sendto(struct.pack("!Qd", seq, now), (dst, port))
            except OSError:
                pass            # e.g. no ARP answer yet: keep probing
            seq += 1
            nxt += period
            if nxt < now:
                nxt = now + period
        try:
            while True:
                data = s.recv(64)
                if len(data) >= 16:
                    q, ts = struct.unpack_from("!Qd", data)
                    got.append((q, ts, time.monotonic()))
        except BlockingIOError:
            pass
        time.sleep(min(period / 4, 0.001))
    with open(out_path, "w") as f:
        json.dump({"sent": seq, "echoes": got}, f)


# --------------------------------------------------------------------------
# the measurement

def analyse(echoes, t0):
    """(resume, outage, lost): the echoes' largest arrival gap that ends
    after t0 is the outage; resume = its end - t0; lost = probes missing
    in it (by sequence number)."""
    echoes = sorted(echoes, key=lambda e: e[2])
    best = None
    for a, b in zip(echoes, echoes[1:]):
        if b[2] >= t0 and (best is None or b[2] - a[2] > best[1][2] - best[0][2]):
            best = (a, b)
    if best is None:
        return None, None, None
    a, b = best
    got = {e[0] for e in echoes}
    lost = sum(1 for q in range(a[0] + 1, b[0]) if q not in got)
    return b[2] - t0, b[2] - a[2], lost


def trial(pair, cause, period, settle, log):
    from topo import in_ns, wait_for
    tmp = Path(pair.topo.tmpdir)
    out = tmp / f"probe-{time.monotonic_ns()}.json"
    me = str(Path(__file__).resolve())
    proc = pair.topo.popen(in_ns(pair.ha, [sys.executable, me, "probe", "10.2.0.10",
                                           str(PROBE_PORT), str(period), str(out)]),
                           name="probe")
    wait_for(lambda: "ready" in Path(proc.vdpt_stdout).read_text(), timeout=20,
             what="probe ready")
    time.sleep(settle)                        # echoes flowing through r1
    r2 = pair.ctl[2]
    mdi = r2.router("lan", 1)["master_down_interval"]
    t0 = time.monotonic()
    wall0 = time.time()
    if cause == "link":
        pair.link(1, "l", False)
    else:
        pair.ctl[1].stop(signal.SIGKILL)
    pair.wait_masters(2, other_state=None)
    time.sleep(max(2.0, 3 * mdi))             # traffic settles via r2
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=20)
    data = json.loads(out.read_text())
    echoes = [tuple(e) for e in data["echoes"]]
    first, gap, lost = analyse(echoes, t0)
    def since(ctl, iface, vrid, to):
        lt = ctl.router(iface, vrid)["last_transition"]
        return lt["at"] - t0 if lt and lt["to"] == to and lt["at"] >= t0 else None
    res = {"cause": cause, "first_echo": first, "outage": gap, "lost": lost,
           "r2_master": since(r2, "lan", 1, "Master"),
           "r2_wan_master": since(r2, "wan", 2, "Master"),
           "r1_down": since(pair.ctl[1], "lan", 1, "Initialize") if cause == "link" else None,
           "mdi": mdi, "echoes": len(echoes),
           "t0_wall": time.strftime("%H:%M:%S", time.localtime(wall0)) + f".{int(wall0 * 1000) % 1000:03d}"}
    log(res)
    # restore: r1 back, preempts
    if cause == "link":
        pair.link(1, "l", True)
    else:
        pair.ctl[1].start(pair.ctl[2].verbose)
        wait_for(pair.ctl[1].connected, timeout=30, what="r1 reconnected")
    pair.wait_masters(1)
    time.sleep(1.0)
    return res


def run_interval(interval, causes, trials, period, keep):
    from topo import Topo, in_ns, wait_for
    from test_vrrp_app import VrrpPair
    with Topo(f"vrrp-bench-{str(interval).replace('.', '')}") as topo:
        topo.keep_tmp = keep
        pair = VrrpPair(topo, interval=interval, ofp_ports=BENCH_OFP_PORTS).start(verbose=keep)
        print(f"  (temp dir {topo.tmpdir})" if keep else "", end="", flush=True)
        me = str(Path(__file__).resolve())
        echo = topo.popen(in_ns(pair.hb, [sys.executable, me, "echo", str(PROBE_PORT)]),
                          name="echo")
        wait_for(lambda: "ready" in Path(echo.vdpt_stdout).read_text(), timeout=20,
                 what="echo server ready")
        pair.wait_masters(1)
        results = []
        for cause in causes:
            for i in range(trials):
                def log(r, i=i, cause=cause):
                    print(f"  interval {interval:>4} s  {cause:<4} trial {i + 1}: "
                          f"first echo {fmt(r['first_echo'])}  outage {fmt(r['outage'])}  "
                          f"lost {r['lost']:>4}  r2 Master lan {fmt(r['r2_master'])} "
                          f"wan {fmt(r['r2_wan_master'])}  r1 down {fmt(r['r1_down'])}  "
                          f"(MDI {r['mdi']:.3f} s) at {r['t0_wall']}", flush=True)
                results.append(trial(pair, cause, period, 2.0, log))
        return results


def fmt(v):
    return "   -   " if v is None else f"{v:6.3f} s"


def summary(interval, results):
    lines = []
    for cause in sorted({r["cause"] for r in results}):
        rs = [r for r in results if r["cause"] == cause]
        fe = [r["first_echo"] for r in rs if r["first_echo"] is not None]
        m = [r["r2_master"] for r in rs if r["r2_master"] is not None]
        if cause == "kill":
            # r1's datapath keeps its flows and routes on: no outage is expected
            gaps = [r["outage"] for r in rs if r["outage"] is not None]
            lines.append(
                f"interval {interval} s, kill: largest echo gap max {max(gaps):.3f} s, "
                f"lost {sum(r['lost'] or 0 for r in rs)} probes in {len(rs)} trials "
                f"(r1's datapath keeps routing with its flows); r2 Master after median "
                f"{statistics.median(m):.3f} s; Master_Down_Interval {rs[0]['mdi']:.3f} s")
            continue
        if not fe:
            lines.append(f"interval {interval} s, {cause}: no recovery measured")
            continue
        lines.append(
            f"interval {interval} s, {cause}: first echo via backup median "
            f"{statistics.median(fe):.3f} s (min {min(fe):.3f}, max {max(fe):.3f}, n={len(fe)}); "
            f"r2 Master after median {statistics.median(m):.3f} s; "
            f"Master_Down_Interval {rs[0]['mdi']:.3f} s")
    return lines


def main(argv=None):
    if len(sys.argv) > 1 and sys.argv[1] == "echo":
        return echo_server(int(sys.argv[2]))
    if len(sys.argv) > 1 and sys.argv[1] == "probe":
        return probe(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    ap = argparse.ArgumentParser(prog="bench/vrrp_failover.py")
    ap.add_argument("--intervals", default="0.1,1", help="v3 advert intervals (s)")
    ap.add_argument("--cause", default="link", help="link,kill")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--period", type=float, default=0.002, help="probe period (s)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/vrrp_failover.py needs root (network namespaces)", file=sys.stderr)
        return 2
    allres = {}
    for iv in (float(x) for x in a.intervals.split(",")):
        print(f"VRRP v3, advert interval {iv} s, priorities 200/100, probe every "
              f"{a.period * 1000:.0f} ms", flush=True)
        allres[iv] = run_interval(iv, a.cause.split(","), a.trials, a.period, a.keep)
    print()
    for iv, rs in allres.items():
        for line in summary(iv, rs):
            print(line)
    if a.json:
        print(json.dumps({str(k): v for k, v in allres.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
