"""Spanning tree re-convergence after a ring link failure, measured.

    python bench/stp_convergence.py                      # RSTP x5 cuts, 802.1D x2 cuts
    python bench/stp_convergence.py --modes rstp --cuts 10
    python bench/stp_convergence.py --modes stp --timers default --cuts 1
    python bench/stp_convergence.py --json out.json

What it builds (as tests/integration/test_stp_ring.py does, reusing its ring
code): three `vdp run` daemons in a ring of veth pairs, each with a host,
under one controller process running the `l2` and `stp` apps.  Once the
ring has settled (one port blocked), for each cut:

  1. pick a ring link whose two ends forward, and the hosts of its two
     switches (their traffic crosses exactly that link);
  2. a UDP probe sends a sequence-numbered datagram every --interval
     seconds (default 10 ms) from one host to the other, which records the
     arrival time of each (both use CLOCK_MONOTONIC, shared by namespaces);
  3. `ip link set <ring end> down` at t0;
  4. the figure: the outage, the longest silence at the receiving host
     around the cut (last datagram before it to the first one through the
     formerly blocked port), and the datagrams lost (x interval = traffic
     time lost);
  5. the link comes back up and the ring settles again before the next cut.

Timers: --timers test (default: hello 2 s, max age 6 s, forward delay 4 s,
the integration tests' values) or --timers default (802.1D's 2/20/15 s).
RSTP re-converges on a link-down without any timer; 802.1D needs its
listening + learning states (2 x forward delay), plus max age when
information has to age out first.

The probe resolution is the send interval; everything runs on a busy
2-core machine, so read the spread, not one figure.  Root needed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(1, str(REPO))

import test_stp_ring as T  # noqa: E402
from topo import run, tail, wait_for  # noqa: E402

PROBE = r"""
import socket, struct, sys, time
role, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if role == "rx":
    s.bind(("0.0.0.0", port))
    s.settimeout(0.5)
    out = open(sys.argv[3], "w", buffering=1)
    print("ready", flush=True)
    while True:
        try:
            data = s.recv(64)
        except socket.timeout:
            continue
        now = time.monotonic()
        seq, sent = struct.unpack("!Qd", data[:16])
        out.write(f"{seq} {sent:.6f} {now:.6f}\n")
else:
    dst, interval = sys.argv[3], float(sys.argv[4])
    seq = 0
    nxt = time.monotonic()
    while True:
        now = time.monotonic()
        try:
            s.sendto(struct.pack("!Qd", seq, now), (dst, port))
        except OSError:
            pass
        seq += 1
        nxt += interval
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
        else:
            nxt = time.monotonic()
"""

PROBE_PORT = 47000


def read_rx(path):
    rows = []
    try:
        text = Path(path).read_text()
    except OSError:
        return rows
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            rows.append((int(parts[0]), float(parts[1]), float(parts[2])))
    return rows


def one_cut(ring, views, interval, limit, log, which=0):
    """Cuts a forwarding link (the `which`-th, cyclically) while a probe
    crosses it; returns a result dict."""
    topo = ring.topo
    fwd = [(a, ea, b, eb) for a, ea, b, eb in ring.links
           if views[a.name][ea][0] == "forwarding" and views[b.name][eb][0] == "forwarding"]
    if not fwd:
        raise RuntimeError(f"no forwarding ring link in {views}")
    a, ea, b, eb = fwd[which % len(fwd)]
    if which // len(fwd) % 2:
        a, ea, b, eb = b, eb, a, ea         # the other direction, the other end cut
    src, dst = a.host, b.host
    probe = Path(topo.tmpdir) / "probe.py"
    probe.write_text(PROBE)
    rxfile = Path(topo.tmpdir) / f"rx-{time.monotonic_ns()}.txt"
    rx = src.topo.popen(T.in_ns(dst.ns, [sys.executable, probe, "rx", PROBE_PORT, rxfile]),
                        name="probe-rx")
    wait_for(lambda: "ready" in Path(rx.vdpt_stdout).read_text(), timeout=15,
             what="probe receiver")
    tx = topo.popen(T.in_ns(src.ns, [sys.executable, probe, "tx", PROBE_PORT, dst.ip, interval]),
                    name="probe-tx")
    try:
        # the probe must be flowing before the cut (ARP, learned MACs)
        wait_for(lambda: len(read_rx(rxfile)) > int(1.0 / interval), timeout=30,
                 what="probe traffic before the cut")
        time.sleep(0.5)
        t0 = time.monotonic()
        run(T.in_ns(a.end_ns, ["ip", "link", "set", a.ends[ea], "down"]))
        t_cmd = time.monotonic() - t0

        def back():
            rows = read_rx(rxfile)
            after = [r for r in rows if r[1] > t0]
            return after and (after[-1][2] - after[0][2]) > 1.0
        try:
            wait_for(back, timeout=limit, interval=0.2, what="traffic after the cut")
            ok = True
        except TimeoutError:
            ok = False
    finally:
        for p in (tx, rx):
            p.terminate()
            p.wait(timeout=5)
    rows = sorted(read_rx(rxfile), key=lambda r: r[2])
    res = dict(link=f"{a.name}.{ea}-{b.name}.{eb}", flow=f"{src.name}->{dst.name}",
               interval_s=interval, ip_link_down_s=round(t_cmd, 4), recovered=ok)
    # the outage: the longest silence at the receiver around the cut
    window = [r[2] for r in rows if r[2] >= t0 - 0.2]
    if ok and len(window) >= 2:
        gaps = [(window[k + 1] - window[k], window[k]) for k in range(len(window) - 1)]
        gap, start = max(gaps)
        got = {r[0] for r in rows}
        # from the datagram after the last one that arrived before the cut
        start = max((r[0] for r in rows if r[2] <= t0), default=-1) + 1
        sent = max(r[0] for r in rows) + 1
        lost = sum(1 for q in range(start, sent) if q not in got)
        res.update(outage_s=round(gap, 4), outage_started_after_cut_s=round(start - t0, 4),
                   lost=lost, lost_time_s=round(lost * interval, 4), received=len(rows),
                   sent=sent)
    log(f"  cut {res['link']} (probe {res['flow']}): " +
        (f"longest silence {res['outage_s'] * 1000:.0f} ms, {res['lost']} datagrams lost "
         f"(= {res['lost_time_s'] * 1000:.0f} ms of traffic)"
         if "outage_s" in res else "no recovery within the limit"))
    # heal and let the ring settle before the next cut
    run(T.in_ns(a.end_ns, ["ip", "link", "set", a.ends[ea], "up"]))
    return res


def bench_mode(mode, cuts, interval, timers, log):
    if timers == "default":
        T.HELLO, T.MAX_AGE, T.FWD_DELAY = 2, 20, 15
        T.CONVERGE_TIMEOUT.update(stp=120, rstp=60)
    else:
        T.HELLO, T.MAX_AGE, T.FWD_DELAY = 2, 6, 4
    limit = 30 if mode == "rstp" else 4 * T.FWD_DELAY + 2 * T.MAX_AGE + 10
    topo = T.StTopo(f"st-bench-{mode}")
    topo.ovs_bridges, topo.controllers = [], []
    results = []
    try:
        ring = T.Ring(topo, [T.VdpMember] * 3, mode)
        log(f"{mode}: building the ring (timers hello {T.HELLO} max age {T.MAX_AGE} "
            f"forward delay {T.FWD_DELAY})")
        ring.build()
        views = ring.wait_settled(1, f"{mode} ring convergence")
        log(f"{mode}: settled; blocked {ring.blocked(views)}")
        for i in range(cuts):
            results.append(one_cut(ring, views, interval, limit, log, which=i))
            views = ring.wait_settled(1, f"{mode} ring settling after heal")
            time.sleep(1.0)
            views = ring.wait_settled(1, f"{mode} ring settling after heal")
    except Exception:
        for c in topo.controllers:
            log(tail(Path(c.vdpt_stderr).read_text(errors="replace"), 80))
        raise
    finally:
        topo.cleanup()
    return results


def summary(results):
    vals = [r["outage_s"] for r in results if "outage_s" in r]
    if not vals:
        return dict(n=0, failed=len(results))
    lost = [r["lost_time_s"] for r in results if "lost_time_s" in r]
    return dict(n=len(vals), failed=len(results) - len(vals),
                min_s=round(min(vals), 4), median_s=round(statistics.median(vals), 4),
                max_s=round(max(vals), 4), lost_time_median_s=round(statistics.median(lost), 4))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default="rstp,stp")
    ap.add_argument("--cuts", type=int, default=None,
                    help="cuts per mode (default: 5 for rstp, 2 for stp)")
    ap.add_argument("--interval", type=float, default=0.01, help="probe send interval (s)")
    ap.add_argument("--timers", choices=["test", "default"], default="test")
    ap.add_argument("--json", help="write all results to this file")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("stp_convergence: needs root (network namespaces)")
    out = {}

    def log(msg):
        print(msg, flush=True)
    for mode in a.modes.split(","):
        cuts = a.cuts or (5 if mode == "rstp" else 2)
        res = bench_mode(mode, cuts, a.interval, a.timers, log)
        out[mode] = dict(timers=a.timers, hello=T.HELLO, max_age=T.MAX_AGE,
                         forward_delay=T.FWD_DELAY, summary=summary(res), runs=res)
    print()
    print("outage = longest silence at the receiving host around the cut "
          f"(probe every {a.interval * 1000:g} ms)")
    print(f"{'mode':<6} {'hello/maxage/fwd':<18} {'cuts':>4} {'min':>8} {'median':>8} "
          f"{'max':>8}  lost traffic (median)")
    for mode, r in out.items():
        s = r["summary"]
        tm = f"{r['hello']}/{r['max_age']}/{r['forward_delay']} s"
        if s["n"]:
            print(f"{mode:<6} {tm:<18} {s['n']:>4} {s['min_s']:>7.3f}s {s['median_s']:>7.3f}s "
                  f"{s['max_s']:>7.3f}s  {s['lost_time_median_s']:.3f}s"
                  + (f"  ({s['failed']} cut(s) did not recover)" if s["failed"] else ""))
        else:
            print(f"{mode:<6} {tm:<22} no recovery measured")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
