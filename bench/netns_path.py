"""The measured path of bench/pps.py: namespaces, veths, counters, cleanup.

    vdptb-gen netns             root netns (the switch)            vdptb-sink netns
    vdptb-g0  <--- veth --->  vdptb-s1 (port 1)
                              vdptb-s2 (port 2)  <--- veth --->  vdptb-k0
                              vdptb-s3 (port 3)  <--- veth --->  vdptb-k1   (2 sinks only)

The forwarder under test owns vdptb-s1..s3 in the root namespace.  trafgen
writes into vdptb-g0; what comes out is counted on the sink veths.  Frames
carry a destination MAC that is not the sink's, so the sink's stack drops
them at the first look (PACKET_OTHERHOST) and spends next to nothing on them.

Everything created is named vdptb-*; `cleanup()` removes all of it and is
safe to call when nothing exists (it also clears leftovers of a run that was
killed).  Used by bench/pps.py only.
"""
from __future__ import annotations

import json
import os
import subprocess
import time

GEN_NS = "vdptb-gen"
SINK_NS = "vdptb-sink"
GEN_IF = "vdptb-g0"
IN_IF = "vdptb-s1"
OUT_IFS = ("vdptb-s2", "vdptb-s3")
SINK_IFS = ("vdptb-k0", "vdptb-k1")
PREFIX = "vdptb-"


def sh(*args, check=True, timeout=60, capture=True):
    """Run a command; return its stdout (text)."""
    r = subprocess.run(list(args), check=False, timeout=timeout, text=True,
                       stdout=subprocess.PIPE if capture else None,
                       stderr=subprocess.PIPE if capture else None)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {r.returncode}: {(r.stderr or '').strip()}")
    return r.stdout or ""


def _netns_list():
    out = sh("ip", "-j", "netns", "list", check=False)
    try:
        return [n["name"] for n in json.loads(out or "[]")]
    except ValueError:
        return []


def _root_links():
    out = sh("ip", "-j", "link", "show", check=False)
    try:
        return [link["ifname"] for link in json.loads(out or "[]")]
    except ValueError:
        return []


def cleanup():
    """Remove every vdptb-* namespace and root-namespace link."""
    for ns in _netns_list():
        if ns.startswith(PREFIX):
            sh("ip", "netns", "del", ns, check=False)
    for name in _root_links():
        if name.startswith(PREFIX):
            sh("ip", "link", "del", name, check=False)


def _quiet(ifname, ns=None):
    """Bring a link up with IPv6 off, so the only frames on the path are ours."""
    pre = ["ip", "netns", "exec", ns] if ns else []
    sh(*pre, "sysctl", "-qw", f"net.ipv6.conf.{ifname}.disable_ipv6=1", check=False)
    sh(*(["ip", "-n", ns] if ns else ["ip"]), "link", "set", ifname, "up")


def create(n_sinks=2):
    """Build the path with n_sinks egress veths (1 or 2).  Idempotent: clears
    leftovers first."""
    cleanup()
    sh("ip", "netns", "add", GEN_NS)
    sh("ip", "netns", "add", SINK_NS)
    for ns in (GEN_NS, SINK_NS):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           check=False)
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1",
           check=False)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "link", "add", IN_IF, "type", "veth", "peer", "name", GEN_IF, "netns", GEN_NS)
    _quiet(IN_IF)
    _quiet(GEN_IF, GEN_NS)
    for out_if, sink_if in list(zip(OUT_IFS, SINK_IFS))[:n_sinks]:
        sh("ip", "link", "add", out_if, "type", "veth", "peer", "name", sink_if,
           "netns", SINK_NS)
        _quiet(out_if)
        _quiet(sink_if, SINK_NS)
    # Let link-up settle (carrier, and any frames the stack sends at up time).
    time.sleep(0.2)


# ---- counters ------------------------------------------------------------
def _sys_stat(ifname, name):
    with open(f"/sys/class/net/{ifname}/statistics/{name}") as f:
        return int(f.read())


def sink_rx():
    """rx_packets/rx_bytes/rx_dropped of every sink veth, read inside the sink
    namespace, with the time of the read (midpoint of the call)."""
    t0 = time.monotonic()
    out = sh("ip", "-n", SINK_NS, "-s", "-j", "link", "show")
    t1 = time.monotonic()
    res = {}
    for link in json.loads(out):
        if link["ifname"] in SINK_IFS:
            st = link.get("stats64") or link.get("stats")
            res[link["ifname"]] = {"rx_packets": st["rx"]["packets"],
                                   "rx_bytes": st["rx"]["bytes"],
                                   "rx_dropped": st["rx"]["dropped"]}
    return (t0 + t1) / 2, res


def root_stats(n_sinks):
    """Counters of the switch-side veths (root namespace, read from sysfs):
    rx of the ingress port = what the generator delivered; tx_dropped of the
    egress ports = frames the sink side refused."""
    res = {IN_IF: {"rx_packets": _sys_stat(IN_IF, "rx_packets"),
                   "rx_dropped": _sys_stat(IN_IF, "rx_dropped")}}
    for out_if in OUT_IFS[:n_sinks]:
        res[out_if] = {"tx_packets": _sys_stat(out_if, "tx_packets"),
                       "tx_dropped": _sys_stat(out_if, "tx_dropped")}
    return res


def snapshot(n_sinks):
    """Counters at one instant: the sink's (an `ip -n` call, some ms) with the
    root side's read just before and just after it, averaged, so both refer
    to about the same time."""
    before = root_stats(n_sinks)
    t, sink = sink_rx()
    after = root_stats(n_sinks)
    root = {ifname: {k: (v + after[ifname][k]) / 2 for k, v in st.items()}
            for ifname, st in before.items()}
    return {"t": t, "sink": sink, "root": root, "cpu": cpu_times(), "procs": proc_times(),
            "t_procs": time.monotonic()}


# ---- CPU use, for telling a saturated core from a noisy machine ----------
def cpu_times():
    """{cpu index: (busy jiffies, total jiffies)} from /proc/stat."""
    res = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                parts = line.split()
                vals = [int(v) for v in parts[1:]]
                idle = vals[3] + vals[4]          # idle + iowait
                res[int(parts[0][3:])] = (sum(vals[:8]) - idle, sum(vals[:8]))
    return res


def proc_times():
    """{pid: (comm, ppid, utime+stime ticks)} for every process."""
    res = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rp = s.rfind(")")
        comm = s[s.find("(") + 1:rp]
        fields = s[rp + 2:].split()
        res[int(d)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
    return res


def cpu_report(a, b):
    """Busy percent of each core between two cpu_times()."""
    out = {}
    for cpu in a:
        busy = b[cpu][0] - a[cpu][0]
        tot = b[cpu][1] - a[cpu][1]
        out[cpu] = round(100.0 * busy / tot, 1) if tot else 0.0
    return out


def noise_report(a, b, dt, our_pids):
    """CPU percent (of one core) used during the window by processes that are
    not part of the measurement, and the top three of them.  Kernel threads
    are left out: softirq work done in ksoftirqd belongs to the path."""
    hz = os.sysconf("SC_CLK_TCK")
    total = 0.0
    top = []
    for pid, (comm, ppid, ticks) in b.items():
        if pid in our_pids or pid == 2 or ppid == 2 or pid == os.getpid():
            continue
        before = a.get(pid)
        used = ticks - (before[2] if before else 0)
        if used <= 0:
            continue
        pct = 100.0 * used / hz / dt
        total += pct
        top.append((pct, f"{comm}[{pid}]"))
    top.sort(reverse=True)
    return round(total, 1), [f"{name}:{pct:.0f}%" for pct, name in top[:3]]


def cpu_of(a, b, dt, pids):
    """CPU percent (of one core) the given processes used between two
    proc_times() (threads included; softirq work done inline in their system
    calls is charged to them)."""
    hz = os.sysconf("SC_CLK_TCK")
    used = sum(b[p][2] - (a[p][2] if p in a else 0) for p in pids if p in b)
    return round(100.0 * used / hz / dt, 1)


def children_of(pid):
    """pid and all its descendants (for not counting our own helpers as noise)."""
    procs = proc_times()
    pids = {pid}
    grew = True
    while grew:
        grew = False
        for p, (_, ppid, _) in procs.items():
            if ppid in pids and p not in pids:
                pids.add(p)
                grew = True
    return pids
