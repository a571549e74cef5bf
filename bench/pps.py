#!/usr/bin/env python3
"""Packet-rate harness: vdp against a C ring forwarder and Open vSwitch.

    python bench/pps.py [--scenarios 1flow,10k,group] [--forwarders ring,ovs,vdp]
                        [--rounds 3] [--duration 3] [--warmup 1] [--json]

One invocation measures every forwarder on the same path (see
bench/netns_path.py): trafgen in netns vdptb-gen pinned to CPU 0 sends
64-byte UDP frames into veth vdptb-g0; the forwarder under test, pinned to
CPU 1, owns vdptb-s1 (OpenFlow port 1), vdptb-s2 (port 2) and, for the group
scenario, vdptb-s3 (port 3); frames are counted as rx_packets of the sink
veths in netns vdptb-sink over a fixed window after a warmup.

Forwarders:
  ring  bench/ringfwd.c (TPACKET_V3 RX ring, TPACKET_V2 TX ring, qdisc
        bypass, no classifier; --ring-tx mmsg: sendmmsg instead of the TX
        ring): the ceiling reference of this path.
  ovs   Open vSwitch userspace (netdev) datapath, bridge vdptbovs, the same
        flows through ovs-ofctl -O OpenFlow13, ovs-vswitchd pinned to CPU 1.
  vdp   `vdp run --fail-mode secure` + `vdp ctl add-flows` (--vdp-mode cli),
        or the fast-path facade in a subprocess (--vdp-mode facade,
        bench/vdp_facade.py); `auto` takes the CLI when datapath.cli and
        datapath.fastpath import, else the facade.

Scenarios:
  1flow  in_port=1,actions=output:2; one 5-tuple.
  10k    10,000 rules over 10 masks (all output:2); 1,000 active 5-tuples.
  group  in_port=1,actions=group:1, select group over ports 2 and 3;
         the same 1,000 5-tuples; reports the total and the split.

Rounds alternate the forwarders (the machine is shared and noisy) and the
table shows the best round of each.  Every run also reports the generator's
rate, the loss, the CPU the generator and the forwarder used and how much
CPU other processes took during the window ("noise"), so a low figure can be
told apart from a busy machine.  --prio nice (default) raises the scheduler
weight of the generator, the forwarder and ksoftirqd for the run.
Everything created is named vdptb-* (plus the OVS bridge vdptbovs) and
removed at the end, also on failure, Ctrl-C or SIGTERM.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import netns_path as npath  # noqa: E402

GEN_CPU = 0
SWITCH_CPU = 1
FRAME_LEN = 64                  # bytes handed to the veth (no FCS on a veth)
OVS_BRIDGE = "vdptbovs"
VDP_CTL = "/tmp/vdptb-vdp.ctl"
RING_BIN = "/tmp/vdptb-ringfwd"

# Issue targets: scenario -> {baseline: minimum vdp/baseline ratio}.
TARGETS = {"1flow": {"ring": 0.9, "ovs": 1.8}, "10k": {"ring": 0.8, "ovs": 1.6}}


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---- traffic ---------------------------------------------------------------
# One frame: eth 02:00:00:00:00:01 -> 02:00:00:00:00:02 (not the sink's MAC),
# IPv4 10.1.0.1 -> 10.2.0.D, UDP 4096+S -> 5001, zero UDP checksum, padded to
# FRAME_LEN.  Multi-flow: trafgen's runtime byte counters step D over 1..8
# and S over 0..124 together on every frame; 8 and 125 are coprime, so the
# pair cycles through all 8*125 = 1000 combinations (Chinese remainder
# theorem).  The IPv4 checksum is recomputed per frame (csumip).
SRC_MAC, DST_MAC = 0x020000000001, 0x020000000002
SRC_IP = (10, 1, 0, 1)
DST_NET = (10, 2, 0)
N_DST, N_SPORT = 8, 125
SPORT_BASE, DPORT = 4096, 5001


def trafgen_config(multi):
    ip_len = FRAME_LEN - 14
    udp_len = ip_len - 20
    pad = FRAME_LEN - 42
    mac = lambda v: ",".join(f"0x{b:02x}" for b in v.to_bytes(6, "big"))  # noqa: E731
    dst_last = f"dinc(1,{N_DST},1)" if multi else "1"
    sport_lo = f"dinc(0,{N_SPORT - 1},1)" if multi else "0"
    return (
        "/* bench/pps.py: 64-byte UDP, %s */\n{\n"
        "  %s, %s, 0x08,0x00,\n"
        "  0x45,0x00, c16(%d), 0x00,0x00, 0x00,0x00, 64, 17, csumip(14, 33),\n"
        "  %d,%d,%d,%d,  %d,%d,%d,%s,\n"
        "  0x%02x, %s, c16(%d), c16(%d), 0x00,0x00,\n"
        "  fill(0x00, %d)\n}\n"
    ) % ("1000 flows" if multi else "one flow", mac(DST_MAC), mac(SRC_MAC), ip_len,
         *SRC_IP, *DST_NET, dst_last, SPORT_BASE >> 8, sport_lo, DPORT, udp_len, pad)


# ---- rules -------------------------------------------------------------------
# A rule: {"priority": int, "match": [(model field, value, mask|None)],
#          "actions": [("output", port) | ("group", id)]}.
# Rendered to ovs-ofctl text for OVS and `vdp ctl`, to JSON for the facade.
def ip4(a, b, c, d):
    return (a << 24) | (b << 16) | (c << 8) | d


def plen_mask(n):
    return ((1 << 32) - 1) ^ ((1 << (32 - n)) - 1)


def _rule(prio, match, port=2):
    return {"priority": prio, "match": match, "actions": [("output", port)]}


def rules_10k(seed=7):
    """10,000 rules over 10 distinct masks.  Every family holds a few rules
    that the active 5-tuples hit (each frame matches rules in several
    families), the rest match nothing; priorities are shuffled so no mask
    is searched first by construction.  All forward to port 2."""
    rnd = random.Random(seed)
    prio = lambda: rnd.randint(1, 30000)  # noqa: E731
    src = ip4(*SRC_IP)
    dsts = [ip4(*DST_NET, d) for d in range(1, N_DST + 1)]
    sports = [SPORT_BASE + s for s in range(N_SPORT)]
    eth_ip = ("eth_type", 0x0800, None)
    udp = [eth_ip, ("ip_proto", 17, None)]
    fam = []

    # 1. nw_dst/32 (1500): 4 active destinations + 1496 others in 10.3/16.
    m = [[eth_ip, ("ipv4_dst", d, None)] for d in dsts[:4]]
    m += [[eth_ip, ("ipv4_dst", ip4(10, 3, i >> 8, i & 255), None)] for i in range(1496)]
    fam.append(m)
    # 2. nw_dst/24 (1000): 10.2.0.0/24 + 999 other /24s.
    mask24 = plen_mask(24)
    m = [[eth_ip, ("ipv4_dst", ip4(*DST_NET, 0), mask24)]]
    m += [[eth_ip, ("ipv4_dst", ip4(10, 4 + (i >> 8), i & 255, 0), mask24)] for i in range(999)]
    fam.append(m)
    # 3. nw_src + nw_dst (1500): 4 active pairs + others.
    m = [[eth_ip, ("ipv4_src", src, None), ("ipv4_dst", d, None)] for d in dsts[4:]]
    m += [[eth_ip, ("ipv4_src", ip4(10, 1, 1, i % 250), None),
           ("ipv4_dst", ip4(10, 9, i >> 8, i & 255), None)] for i in range(1496)]
    fam.append(m)
    # 4. udp_dst (1000): 5001 + 999 other ports.
    m = [udp + [("udp_dst", DPORT, None)]]
    m += [udp + [("udp_dst", 6000 + i, None)] for i in range(999)]
    fam.append(m)
    # 5. in_port + eth_dst (1000): the frames' destination MAC + 999 others.
    m = [[("in_port", 1, None), ("eth_dst", DST_MAC, None)]]
    m += [[("in_port", 1, None), ("eth_dst", 0x020000010000 + i, None)] for i in range(999)]
    fam.append(m)
    # 6. udp_src (1500): the 125 active source ports + 1375 others.
    m = [udp + [("udp_src", p, None)] for p in sports]
    m += [udp + [("udp_src", 20000 + i, None)] for i in range(1375)]
    fam.append(m)
    # 7. nw_src/16 (500): 10.1.0.0/16 + 499 others.
    mask16 = plen_mask(16)
    m = [[eth_ip, ("ipv4_src", ip4(10, 1, 0, 0), mask16)]]
    m += [[eth_ip, ("ipv4_src", ip4(11 + (i >> 8), i & 255, 0, 0), mask16)] for i in range(499)]
    fam.append(m)
    # 8. nw_dst + udp_dst (1000): the 8 active destinations on 5001 + others.
    m = [udp + [("ipv4_dst", d, None), ("udp_dst", DPORT, None)] for d in dsts]
    m += [udp + [("ipv4_dst", dsts[i % N_DST], None), ("udp_dst", 7000 + i, None)]
          for i in range(992)]
    fam.append(m)
    # 9. nw_src + udp_src (999): the 125 active (src, sport) + others.
    m = [udp + [("ipv4_src", src, None), ("udp_src", p, None)] for p in sports]
    m += [udp + [("ipv4_src", ip4(10, 1, 2, i & 255), None), ("udp_src", 30000 + i, None)]
          for i in range(874)]
    fam.append(m)

    rules = [_rule(prio(), match) for f in fam for match in f]
    # 10. the table's floor: anything else in_port=1 goes to port 2 too.
    rules.append(_rule(0, [("in_port", 1, None)]))
    assert len(rules) == 10000, len(rules)
    return rules


def scenario_rules(name):
    """(rules, groups, number of switch ports) of a scenario."""
    if name == "1flow":
        return [_rule(0x8000, [("in_port", 1, None)])], [], 2
    if name == "10k":
        return rules_10k(), [], 2
    if name == "group":
        return ([{"priority": 0x8000, "match": [("in_port", 1, None)],
                  "actions": [("group", 1)]}],
                [{"group_id": 1, "outputs": [2, 3]}], 3)
    raise ValueError(name)


def _fmt_ip(v, mask):
    s = ".".join(str((v >> sh) & 255) for sh in (24, 16, 8, 0))
    if mask is None:
        return s
    return f"{s}/{bin(mask).count('1')}"


def _fmt_mac(v):
    return ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))


OFCTL_NAMES = {"in_port": "in_port", "eth_dst": "dl_dst", "ipv4_src": "nw_src",
               "ipv4_dst": "nw_dst", "udp_src": "tp_src", "udp_dst": "tp_dst"}


def rule_text(r):
    """One rule in ovs-ofctl flow syntax (OVS and `vdp ctl add-flows`)."""
    fields = {f: (v, m) for f, v, m in r["match"]}
    parts = [f"priority={r['priority']}"]
    if fields.get("ip_proto", (None,))[0] == 17:
        parts.append("udp")
    elif "eth_type" in fields:
        parts.append("ip")
    for f, v, m in r["match"]:
        if f in ("eth_type", "ip_proto"):
            continue
        name = OFCTL_NAMES[f]
        if f.startswith("ipv4"):
            parts.append(f"{name}={_fmt_ip(v, m)}")
        elif f.startswith("eth"):
            parts.append(f"{name}={_fmt_mac(v)}")
        else:
            parts.append(f"{name}={v}")
    acts = ",".join(f"output:{a}" if k == "output" else f"group:{a}" for k, a in r["actions"])
    return ",".join(parts) + f",actions={acts}"


def group_text(g):
    return f"group_id={g['group_id']},type=select," + ",".join(
        f"bucket=output:{p}" for p in g["outputs"])


# ---- processes ---------------------------------------------------------------
# --prio: how the generator and the forwarder under test are favoured over
# whatever else runs on the machine (it is shared).  "nice": nice -20, so a
# nice-0 competitor gets ~1% of the core; "rt": SCHED_FIFO 5 (the kernel's RT
# throttling still leaves others 5%); "none": as started.
PRIO = "nice"
RT_PRIO = 5


def prio_prefix():
    if PRIO == "nice":
        return ["nice", "-n", "-20"]
    if PRIO == "rt":
        return ["chrt", "-f", str(RT_PRIO)]
    return []


def pinned(cpu, argv):
    return prio_prefix() + ["taskset", "-c", str(cpu)] + list(argv)


def autogroup_nice(pid, nice=None):
    """Read (and with `nice`, set) the nice value of pid's scheduler autogroup.

    With kernel.sched_autogroup_enabled=1 (the case here) CFS first shares a
    core between sessions, then between the tasks of a session: `nice -20`
    alone only ranks a task inside its own session.  Our children run in
    sessions of their own (start_new_session), so raising their autogroup
    touches nothing else.  Returns the previous value, None if unsupported."""
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            old = int(f.read().split()[-1])
        if nice is not None:
            with open(f"/proc/{pid}/autogroup", "w") as f:
                f.write(str(nice))
        return old
    except (OSError, ValueError, IndexError):
        return None


def favour(proc):
    """Apply --prio nice to a child started in its own session."""
    if PRIO == "nice" and proc is not None:
        autogroup_nice(proc.pid, -20)


class SoftirqThreads:
    """ksoftirqd/0 and /1 carry the path's packet processing whenever the
    kernel defers softirqs; left at nice 0 beside a nice -20 forwarder they
    would starve and the backlog would drop.  Give them the same class for the
    run and restore what they had."""

    def __init__(self):
        self.saved = {}

    def raise_(self):
        if PRIO == "none":
            return
        names = {f"ksoftirqd/{GEN_CPU}", f"ksoftirqd/{SWITCH_CPU}"}
        for pid, (comm, _, _) in npath.proc_times().items():
            if comm in names:
                try:
                    self.saved[pid] = (os.sched_getscheduler(pid), os.sched_getparam(pid),
                                       os.getpriority(os.PRIO_PROCESS, pid))
                    if PRIO == "nice":
                        os.setpriority(os.PRIO_PROCESS, pid, -20)
                    else:
                        os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(RT_PRIO))
                except OSError:
                    pass

    def restore(self):
        for pid, (policy, param, nice) in self.saved.items():
            try:
                os.sched_setscheduler(pid, policy, param)
                os.setpriority(os.PRIO_PROCESS, pid, nice)
            except OSError:
                pass
        self.saved = {}


def child_env():
    env = dict(os.environ)
    pp = env.get("PYTHONPATH", "")
    if REPO not in pp.split(":"):
        env["PYTHONPATH"] = f"{pp}:{REPO}" if pp else REPO
    return env


def wait_line(proc, want, timeout):
    """Read proc's stdout until a line starting with `want`; False on exit/timeout."""
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), False)
    buf = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            chunk = proc.stdout.read()    # None: nothing yet (non-blocking)
        except (BlockingIOError, TypeError):
            chunk = None
        if chunk:
            buf += chunk
            if any(line.startswith(want) for line in buf.splitlines()):
                os.set_blocking(proc.stdout.fileno(), True)
                return True
        time.sleep(0.02)
    return False


def stop_proc(proc, sig=signal.SIGINT, timeout=10, group=False):
    """Signal a child we started and collect its stdout; kill it if it lingers.
    group=True: the child was started in its own session (start_new_session)
    and the signal goes to its whole process group, i.e. to the processes it
    forked too (trafgen forks its sender)."""
    if proc is None:
        return ""

    def send(s):
        try:
            if group:
                os.killpg(proc.pid, s)
            elif proc.poll() is None:
                proc.send_signal(s)
        except (ProcessLookupError, PermissionError):
            pass

    if proc.poll() is None or group:
        send(sig)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        send(signal.SIGKILL)
        out, _ = proc.communicate()
    except ValueError:  # stdout already consumed/closed
        proc.wait()
        out = ""
    return out or ""


class Generator:
    """trafgen in the generator namespace, pinned to GEN_CPU."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.proc = None
        self.logf = None

    def start(self, multi):
        cfg = os.path.join(self.workdir, "multi.cfg" if multi else "single.cfg")
        if not os.path.exists(cfg):
            with open(cfg, "w") as f:
                f.write(trafgen_config(multi))
        self.logf = open(os.path.join(self.workdir, "trafgen.log"), "w+")
        # --no-sock-mem: /proc/sys/net/core is read-only inside a netns here;
        # -Q: leave IRQ affinity alone (veths have none anyway).
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", npath.GEN_NS] +
            pinned(GEN_CPU, ["trafgen", "-i", cfg, "-o", npath.GEN_IF, "-P", "1",
                             "--no-sock-mem", "-Q"]),
            stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)
        favour(self.proc)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is not None:
            # trafgen's parent forks the process that sends: signal the group.
            stop_proc(self.proc, group=True)
            # The group must be gone, not only the parent.
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
        text = ""
        if self.logf:
            self.logf.seek(0)
            text = self.logf.read()
            self.logf.close()
            self.logf = None
        return text


# ---- forwarders ----------------------------------------------------------------
class Forwarder:
    name = "?"
    label = "?"

    def prepare(self, workdir):
        """Once per harness run; raise RuntimeError if unavailable."""
        self.workdir = workdir

    def start(self, scenario):
        """Set up for a scenario (ports, rules) and forward, pinned to SWITCH_CPU."""

    def pids(self):
        return set()

    def stop(self):
        """Stop forwarding and detach from the ports; return extra stats."""
        return {}

    def finish(self):
        """Once at the end (also after failures)."""


def write_rules(workdir, scenario):
    scenario_rules_cached(scenario)
    rules, groups, n_ports = _RULES_CACHE[scenario]
    flows_txt = os.path.join(workdir, f"{scenario}.flows")
    if not os.path.exists(flows_txt):
        with open(flows_txt, "w") as f:
            f.writelines(rule_text(r) + "\n" for r in rules)
        with open(os.path.join(workdir, f"{scenario}.json"), "w") as f:
            json.dump({"flows": rules, "groups": groups}, f)
    return (flows_txt, os.path.join(workdir, f"{scenario}.json"),
            [group_text(g) for g in groups], n_ports)


class Ring(Forwarder):
    name = "ring"
    label = "ring (C TPACKET_V3/V2)"

    def __init__(self, tx="ring"):
        self.tx = tx
        self.proc = None
        if tx == "mmsg":
            self.label = "ring (C V3 RX, sendmmsg)"

    def prepare(self, workdir):
        super().prepare(workdir)
        src = os.path.join(HERE, "ringfwd.c")
        npath.sh("gcc", "-O2", "-Wall", "-o", RING_BIN, src)

    def start(self, scenario):
        _, _, _, n_ports = scenario_rules_cached(scenario)
        argv = [RING_BIN, "-i", npath.IN_IF] + (["-m"] if self.tx == "mmsg" else [])
        for out_if in npath.OUT_IFS[:n_ports - 1]:
            argv += ["-o", out_if]
        self.proc = subprocess.Popen(pinned(SWITCH_CPU, argv), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        favour(self.proc)
        if not wait_line(self.proc, "ringfwd ready", 5):
            out = stop_proc(self.proc, group=True)
            self.proc = None
            raise RuntimeError(f"ringfwd did not start: {out.strip()}")

    def pids(self):
        return {self.proc.pid} if self.proc else set()

    def stop(self):
        out = stop_proc(self.proc, group=True)
        self.proc = None
        for line in out.splitlines():
            if line.startswith("ringfwd rx="):
                return {k: int(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
        return {}

    def finish(self):
        if self.proc is not None:
            self.stop()


_RULES_CACHE = {}


def scenario_rules_cached(scenario):
    if scenario not in _RULES_CACHE:
        _RULES_CACHE[scenario] = scenario_rules(scenario)
    rules, groups, n_ports = _RULES_CACHE[scenario]
    return rules, groups, None, n_ports


class Ovs(Forwarder):
    """Open vSwitch userspace datapath.  Veth ports of a netdev bridge are not
    PMD ports: ovs-vswitchd's main thread polls them, so pmd-cpu-mask alone
    does not move that work; pin="taskset" pins every ovs-vswitchd thread
    (including threads created while the bridge is set up) to SWITCH_CPU."""
    name = "ovs"
    label = "OVS 3.1 netdev"

    def __init__(self, pin="taskset"):
        self.pin = pin
        self.started_ovs = False
        self.pid = None
        self.saved_affinity = {}
        self.saved_autogroup = None
        self.saved_pmd_mask = None
        self.pmd_mask_set = False
        self.bridge_up = False

    def prepare(self, workdir):
        super().prepare(workdir)
        for tool in ("ovs-vsctl", "ovs-ofctl"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} not installed")
        if subprocess.run(["ovs-vsctl", "--timeout=3", "show"], capture_output=True).returncode:
            log("  starting Open vSwitch (ovs-ctl start)")
            npath.sh("/usr/share/openvswitch/scripts/ovs-ctl", "start", "--system-id=random",
                     "--no-monitor", timeout=60)
            self.started_ovs = True
        # A bridge of ours left by a killed run is ours to delete; others are not.
        npath.sh("ovs-vsctl", "--timeout=10", "--if-exists", "del-br", OVS_BRIDGE)
        if self.pin in ("pmd-mask", "both"):
            cur = npath.sh("ovs-vsctl", "--timeout=5", "--if-exists", "get", "Open_vSwitch",
                           ".", "other_config:pmd-cpu-mask", check=False).strip()
            self.saved_pmd_mask = cur or None
            npath.sh("ovs-vsctl", "--timeout=5", "set", "Open_vSwitch", ".",
                     f"other_config:pmd-cpu-mask=0x{1 << SWITCH_CPU:x}")
            self.pmd_mask_set = True
        self._record_affinity()

    def _vswitchd_pid(self):
        with open("/var/run/openvswitch/ovs-vswitchd.pid") as f:
            return int(f.read().strip())

    def _record_affinity(self):
        """Remember each ovs-vswitchd thread's CPU affinity before the harness
        touches it; _unpin() gives these back (threads born later get the
        main thread's)."""
        self.pid = self._vswitchd_pid()
        self.saved_affinity = {}
        self.saved_sched = {}
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            tid = int(tid)
            try:
                self.saved_affinity[tid] = os.sched_getaffinity(tid)
                self.saved_sched[tid] = (os.sched_getscheduler(tid), os.sched_getparam(tid),
                                         os.getpriority(os.PRIO_PROCESS, tid))
            except OSError:
                pass

    def _set_prio(self, tid):
        if PRIO == "nice":
            os.setpriority(os.PRIO_PROCESS, tid, -20)
        elif PRIO == "rt":
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(RT_PRIO))

    def _restore_prio(self, tid):
        if PRIO == "none":
            return
        policy, param, nice = self.saved_sched.get(
            tid, self.saved_sched.get(self.pid, (os.SCHED_OTHER, os.sched_param(0), 0)))
        os.sched_setscheduler(tid, policy, param)
        os.setpriority(os.PRIO_PROCESS, tid, nice)

    def _pin(self):
        """Pin every thread of ovs-vswitchd to SWITCH_CPU (per --ovs-pin) and
        give it the generator's priority class (per --prio)."""
        if self._vswitchd_pid() != self.pid:     # restarted by someone meanwhile
            self._record_affinity()
        self.touched = True
        if PRIO == "nice" and self.saved_autogroup is None:
            self.saved_autogroup = autogroup_nice(self.pid, -20)
        for tid in os.listdir(f"/proc/{self.pid}/task"):
            try:
                if self.pin in ("taskset", "both"):
                    os.sched_setaffinity(int(tid), {SWITCH_CPU})
                self._set_prio(int(tid))
            except OSError:
                pass  # thread exited meanwhile

    def _unpin(self):
        """Give every thread its recorded affinity and priority back."""
        if not getattr(self, "touched", False) or self.pid is None:
            return
        default = self.saved_affinity.get(self.pid, set(range(os.cpu_count())))
        # Twice: a thread may be born from a still-pinned one while we walk.
        for _ in range(2):
            try:
                tids = [int(t) for t in os.listdir(f"/proc/{self.pid}/task")]
            except OSError:
                return
            for tid in tids:
                try:
                    if self.pin in ("taskset", "both"):
                        os.sched_setaffinity(tid, self.saved_affinity.get(tid, default))
                    self._restore_prio(tid)
                except OSError:
                    pass
            time.sleep(0.1)
        if self.saved_autogroup is not None:
            autogroup_nice(self.pid, self.saved_autogroup)
            self.saved_autogroup = None
        self.touched = False

    def start(self, scenario):
        flows, _, groups, n_ports = write_rules(self.workdir, scenario)
        self._pin()   # before the bridge exists, so its new threads inherit it
        vs = ["ovs-vsctl", "--timeout=20"]
        cmd = vs + ["add-br", OVS_BRIDGE, "--", "set", "bridge", OVS_BRIDGE,
                    "datapath_type=netdev", "fail-mode=secure",
                    "protocols=OpenFlow13", "other-config:disable-in-band=true"]
        for i, ifname in enumerate([npath.IN_IF] + list(npath.OUT_IFS[:n_ports - 1]), 1):
            cmd += ["--", "add-port", OVS_BRIDGE, ifname, "--", "set", "Interface", ifname,
                    f"ofport_request={i}"]
        npath.sh(*cmd)
        self.bridge_up = True
        of = ["ovs-ofctl", "-O", "OpenFlow13"]
        deadline = time.monotonic() + 20      # the bridge's OpenFlow socket may lag
        while subprocess.run(of + ["show", OVS_BRIDGE], capture_output=True).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError(f"ovs-ofctl show {OVS_BRIDGE}: no answer in 20 s")
            time.sleep(0.2)
        npath.sh(*of, "del-flows", OVS_BRIDGE)
        for g in groups:
            npath.sh(*of, "add-group", OVS_BRIDGE, g)
        npath.sh(*of, "add-flows", OVS_BRIDGE, flows, timeout=300)
        self._pin()   # and catch any thread created meanwhile

    def pids(self):
        return {self.pid} if self.pid else set()

    def stop(self):
        extra = {}
        if self.bridge_up:
            try:
                out = npath.sh("ovs-appctl", "--timeout=5", "dpctl/show", "-s", check=False)
                extra["dpctl_lost"] = sum(int(tok.split(":")[1]) for line in out.splitlines()
                                          for tok in line.split() if tok.startswith("lost:"))
                out = npath.sh("ovs-appctl", "--timeout=5", "dpif-netdev/pmd-stats-show",
                               check=False)
                for line in out.splitlines():
                    line = line.strip()
                    for key in ("emc hits", "smc hits", "simple match hits", "megaflow hits",
                                "miss with success upcall"):
                        if line.startswith(key + ":"):
                            extra[key.replace(" ", "_")] = int(line.split(":")[1].split()[0])
            except (RuntimeError, ValueError, IndexError):
                pass
            npath.sh("ovs-vsctl", "--timeout=20", "--if-exists", "del-br", OVS_BRIDGE,
                     check=False)
            self.bridge_up = False
        self._unpin()
        return extra

    def finish(self):
        if self.bridge_up:
            npath.sh("ovs-vsctl", "--timeout=20", "--if-exists", "del-br", OVS_BRIDGE,
                     check=False)
            self.bridge_up = False
        self._unpin()
        if self.pmd_mask_set:
            if self.saved_pmd_mask:
                npath.sh("ovs-vsctl", "--timeout=5", "set", "Open_vSwitch", ".",
                         f"other_config:pmd-cpu-mask={self.saved_pmd_mask}", check=False)
            else:
                npath.sh("ovs-vsctl", "--timeout=5", "remove", "Open_vSwitch", ".",
                         "other_config", "pmd-cpu-mask", check=False)
            self.pmd_mask_set = False
        if self.started_ovs:
            others = npath.sh("ovs-vsctl", "--timeout=5", "list-br", check=False).split()
            if others:
                log(f"  leaving Open vSwitch running (bridges: {' '.join(others)})")
            else:
                npath.sh("/usr/share/openvswitch/scripts/ovs-ctl", "stop", check=False,
                         timeout=60)
            self.started_ovs = False


def _python_ok(code):
    r = subprocess.run([sys.executable, "-c", code], env=child_env(), capture_output=True,
                       text=True, timeout=60)
    return r.returncode == 0, (r.stderr.strip().splitlines() or [""])[-1]


class VdpCli(Forwarder):
    """`vdp run` pinned to SWITCH_CPU, programmed with `vdp ctl`."""
    name = "vdp"
    label = "vdp (vdp run)"

    def __init__(self, cmd=None):
        self.cmd = cmd
        self.proc = None
        self.logf = None

    def prepare(self, workdir):
        super().prepare(workdir)
        if self.cmd:
            self.base = shlex.split(self.cmd)
        elif shutil.which("vdp"):
            self.base = [shutil.which("vdp")]
        else:
            ok, err = _python_ok("import datapath.cli")
            if not ok:
                raise RuntimeError(f"no `vdp` command and datapath.cli does not import: {err}")
            self.base = [sys.executable, "-m", "datapath.cli"]
        if not self.cmd:
            # `vdp run` imports the fast path only when it starts: check it here
            # so auto mode reports the real blocker instead of failing each run.
            ok, err = _python_ok("import datapath.fastpath")
            if not ok:
                raise RuntimeError(f"datapath.fastpath does not import: {err}")

    def ctl(self, *args, timeout=120):
        return subprocess.run(self.base + ["ctl", "--ctl", VDP_CTL] + list(args),
                              env=child_env(), capture_output=True, text=True, timeout=timeout)

    def start(self, scenario):
        flows, _, groups, n_ports = write_rules(self.workdir, scenario)
        argv = self.base + ["run", "--name", "vdptb", "--fail-mode", "secure",
                            "--ctl", VDP_CTL]
        for ifname in [npath.IN_IF] + list(npath.OUT_IFS[:n_ports - 1]):
            argv += ["--port", ifname]
        if os.path.exists(VDP_CTL):
            os.unlink(VDP_CTL)
        self.logf = open(os.path.join(self.workdir, "vdp.log"), "a+")
        self.proc = subprocess.Popen(pinned(SWITCH_CPU, argv), env=child_env(),
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        favour(self.proc)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vdp run exited {self.proc.returncode}: {self._tail()}")
            if os.path.exists(VDP_CTL) and self.ctl("show", timeout=10).returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"vdp ctl show did not answer in 30 s: {self._tail()}")
            time.sleep(0.2)
        for g in groups:
            r = self.ctl("add-group", g)
            if r.returncode:
                raise RuntimeError(f"vdp ctl add-group: {r.stderr.strip()}")
        r = self.ctl("add-flows", flows)
        if r.returncode:
            raise RuntimeError(f"vdp ctl add-flows: {r.stderr.strip()}")

    def _tail(self):
        if not self.logf:
            return ""
        self.logf.flush()
        self.logf.seek(0)
        return " | ".join(self.logf.read().strip().splitlines()[-5:])

    def pids(self):
        return npath.children_of(self.proc.pid) if self.proc else set()

    def stop(self):
        extra = {}
        if self.proc is not None and self.proc.poll() is None:
            r = self.ctl("--json", "dump-ports", timeout=10)
            if r.returncode == 0:
                try:
                    extra["ports"] = {p["port"]: {k: p[k] for k in ("rx_packets", "tx_packets",
                                                                   "rx_dropped", "tx_dropped")}
                                      for p in json.loads(r.stdout)}
                except (ValueError, KeyError, TypeError):
                    pass
        stop_proc(self.proc, signal.SIGTERM, timeout=15, group=True)
        self.proc = None
        if self.logf:
            self.logf.close()
            self.logf = None
        return extra

    def finish(self):
        if self.proc is not None:
            self.stop()
        if os.path.exists(VDP_CTL):
            os.unlink(VDP_CTL)


class VdpFacade(Forwarder):
    """The fast path driven through datapath.fastpath in a child process
    (bench/vdp_facade.py), pinned to SWITCH_CPU: for before `vdp run` exists."""
    name = "vdp"
    label = "vdp (facade)"

    def __init__(self):
        self.proc = None

    def prepare(self, workdir):
        super().prepare(workdir)
        ok, err = _python_ok("from datapath.fastpath import Datapath, AfPacketPort")
        if not ok:
            raise RuntimeError(f"datapath.fastpath does not import: {err}")

    def start(self, scenario):
        _, rules_json, _, n_ports = write_rules(self.workdir, scenario)
        argv = [sys.executable, os.path.join(HERE, "vdp_facade.py"), "--rules", rules_json]
        for ifname in [npath.IN_IF] + list(npath.OUT_IFS[:n_ports - 1]):
            argv += ["--port", ifname]
        self.proc = subprocess.Popen(pinned(SWITCH_CPU, argv), env=child_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        favour(self.proc)
        if not wait_line(self.proc, "ready", 60):
            out = stop_proc(self.proc, group=True)
            self.proc = None
            raise RuntimeError("vdp facade did not start: " +
                               " | ".join(out.strip().splitlines()[-5:]))

    def pids(self):
        return {self.proc.pid} if self.proc else set()

    def stop(self):
        out = stop_proc(self.proc, signal.SIGTERM, timeout=15, group=True)
        self.proc = None
        for line in out.splitlines():
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    pass
        return {}

    def finish(self):
        if self.proc is not None:
            self.stop()


# ---- one measurement -------------------------------------------------------------
def wait_quiet(args):
    """With --quiet-wait, hold the next run until other processes use less
    than --quiet-threshold percent of a core (sampled over 0.5 s), for at most
    --quiet-wait seconds.  Returns the last noise sample."""
    deadline = time.monotonic() + args.quiet_wait
    while True:
        a, t0 = npath.proc_times(), time.monotonic()
        time.sleep(0.5)
        noise, top = npath.noise_report(a, npath.proc_times(), time.monotonic() - t0, set())
        if noise < args.quiet_threshold or time.monotonic() >= deadline:
            return noise, top


def measure(fwd, scenario, gen, args):
    _, _, _, n_ports = scenario_rules_cached(scenario)
    n_sinks = n_ports - 1
    res = {"scenario": scenario, "forwarder": fwd.name, "label": fwd.label}
    t_setup = time.monotonic()
    try:
        fwd.start(scenario)
        res["setup_s"] = round(time.monotonic() - t_setup, 2)
        gen.start(multi=scenario != "1flow")
        time.sleep(args.warmup)
        if not gen.alive():
            raise RuntimeError("trafgen exited: " + gen.stop().strip()[-300:])
        a = npath.snapshot(n_sinks)
        time.sleep(args.duration)
        b = npath.snapshot(n_sinks)
        if not gen.alive():
            raise RuntimeError("trafgen exited during the window: " + gen.stop().strip()[-300:])
        fwd_pids = fwd.pids()
        gen_pids = npath.children_of(gen.proc.pid)
        ours = fwd_pids | gen_pids
    except Exception as e:  # noqa: BLE001 - report and go on with the next run
        res["error"] = str(e)
        gen.stop()
        try:
            fwd.stop()
        except Exception as e2:  # noqa: BLE001
            res["error"] += f"; stop: {e2}"
        return res
    gen.stop()
    res["extra"] = fwd.stop()

    dt = b["t"] - a["t"]
    per_sink = {}
    for sink_if in npath.SINK_IFS[:n_sinks]:
        d = b["sink"][sink_if]["rx_packets"] - a["sink"][sink_if]["rx_packets"]
        per_sink[sink_if] = d / dt
        db = b["sink"][sink_if]["rx_bytes"] - a["sink"][sink_if]["rx_bytes"]
        if d and round(db / d) != FRAME_LEN:
            res.setdefault("warnings", []).append(f"{sink_if}: mean frame {db / d:.1f} B")
    pps = sum(per_sink.values())
    gen_pps = (b["root"][npath.IN_IF]["rx_packets"] - a["root"][npath.IN_IF]["rx_packets"]) / dt
    egress_drop = round(sum(b["root"][o]["tx_dropped"] - a["root"][o]["tx_dropped"]
                            for o in npath.OUT_IFS[:n_sinks]))
    res.update({
        "pps": round(pps),
        "per_sink_pps": {k: round(v) for k, v in per_sink.items()},
        "gen_pps": round(gen_pps),
        "loss_pct": round(100.0 * (gen_pps - pps) / gen_pps, 1) if gen_pps else None,
        "egress_drops": egress_drop,
        "window_s": round(dt, 3),
        "cpu_busy_pct": npath.cpu_report(a["cpu"], b["cpu"]),
    })
    dtp = b["t_procs"] - a["t_procs"]
    res["noise_pct"], res["noise_top"] = npath.noise_report(a["procs"], b["procs"], dtp, ours)
    res["fwd_cpu_pct"] = npath.cpu_of(a["procs"], b["procs"], dtp, fwd_pids)
    res["gen_cpu_pct"] = npath.cpu_of(a["procs"], b["procs"], dtp, gen_pids)
    # CPU the forwarder spent per forwarded frame: comparable even when the
    # generator, not the forwarder, set the rate.
    res["fwd_ns_per_pkt"] = round(res["fwd_cpu_pct"] * 1e7 / pps) if pps else None
    return res


# ---- report -------------------------------------------------------------------
def summarize(runs, scenarios, forwarders):
    best = {}
    for r in runs:
        if "pps" not in r:
            continue
        k = (r["scenario"], r["forwarder"])
        if k not in best or r["pps"] > best[k]["pps"]:
            best[k] = r
    rows = []
    for s in scenarios:
        ring = best.get((s, "ring"))
        ovs = best.get((s, "ovs"))
        for f in forwarders:
            r = best.get((s, f))
            row = {"scenario": s, "forwarder": f}
            if r is None:
                errs = [x.get("error") for x in runs
                        if x["scenario"] == s and x["forwarder"] == f and "error" in x]
                row["error"] = errs[-1] if errs else "not run"
                rows.append(row)
                continue
            row.update({k: r[k] for k in ("pps", "gen_pps", "loss_pct", "cpu_busy_pct",
                                          "gen_cpu_pct", "fwd_cpu_pct", "fwd_ns_per_pkt",
                                          "noise_pct",
                                          "noise_top", "per_sink_pps")})
            row["rounds_pps"] = [x["pps"] for x in runs
                                 if x["scenario"] == s and x["forwarder"] == f and "pps" in x]
            row["x_ring"] = round(r["pps"] / ring["pps"], 2) if ring and ring["pps"] else None
            row["x_ovs"] = round(r["pps"] / ovs["pps"], 2) if ovs and ovs["pps"] else None
            if f == "vdp" and s in TARGETS:
                t = TARGETS[s]
                # met: None when the baseline was not measured in this run.
                row["targets"] = {b: {"min": t[b], "met": None if row[f"x_{b}"] is None
                                      else row[f"x_{b}"] >= t[b]} for b in t}
            rows.append(row)
    return rows


def print_table(rows, args, labels):
    print(f"\nvdp pps bench: {args.rounds} round(s), {args.warmup:g} s warmup + "
          f"{args.duration:g} s window, trafgen on CPU {GEN_CPU}, switch on CPU {SWITCH_CPU}, "
          f"{FRAME_LEN}-byte UDP; best round shown")
    hdr = (f"{'scenario':<8} {'forwarder':<24} {'pps':>9} {'x ring':>7} {'x OVS':>7} "
           f"{'gen pps':>9} {'loss%':>6} {'gen/fwd cpu%':>12} {'ns/pkt':>6} {'noise%':>6}  notes")
    print(hdr)
    print("-" * len(hdr))
    for r in rows:
        name = labels.get(r["forwarder"], r["forwarder"])
        if "error" in r:
            print(f"{r['scenario']:<8} {name:<24} {'-':>9}  {r['error'][:110]}")
            continue
        fx = lambda v: f"{v:.2f}" if v is not None else "-"  # noqa: E731
        notes = []
        if len(r["per_sink_pps"]) > 1:
            tot = sum(r["per_sink_pps"].values()) or 1
            notes.append("split " + "/".join(f"{100 * v / tot:.0f}%"
                                              for v in r["per_sink_pps"].values()))
        if "targets" in r:
            notes.append("targets: " + ", ".join(
                f"{b}>={t['min']}" + {True: " met", False: " MISSED", None: " n/a"}[t["met"]]
                for b, t in r["targets"].items()))
        notes.append("rounds " + ",".join(f"{p / 1000:.0f}k" for p in r["rounds_pps"]))
        print(f"{r['scenario']:<8} {name:<24} {r['pps']:>9,} {fx(r['x_ring']):>7} "
              f"{fx(r['x_ovs']):>7} {r['gen_pps']:>9,} {r['loss_pct']:>6} "
              f"{r['gen_cpu_pct']:>6.0f}/{r['fwd_cpu_pct']:<5.0f} "
              f"{r.get('fwd_ns_per_pkt') or 0:>6} {r['noise_pct']:>6.0f}  "
              f"{'; '.join(notes)}")
    print("\nx ring / x OVS: this forwarder's pps over the ring's / OVS's best.  gen pps: frames "
          "the generator delivered to port 1;\nloss%: of those, not counted at the sink(s).  "
          "gen/fwd cpu%: CPU (percent of one core) used by trafgen / by the forwarder's\n"
          "processes (below ~100 the forwarder kept up and the generator set the rate).\n"
          "ns/pkt: the forwarder's CPU time per forwarded frame.  noise%: CPU other processes "
          "used.")


# ---- main -------------------------------------------------------------------------
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenarios", default="1flow,10k,group",
                    help="comma list of 1flow, 10k, group (default: all)")
    ap.add_argument("--forwarders", default="ring,ovs,vdp",
                    help="comma list of ring, ovs, vdp (default: all; an unavailable "
                         "forwarder is reported and skipped)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=3.0, help="counting window, s")
    ap.add_argument("--warmup", type=float, default=1.0, help="traffic before the window, s")
    ap.add_argument("--vdp-mode", choices=("auto", "cli", "facade"), default="auto")
    ap.add_argument("--vdp-cmd", help="command for vdp (default: `vdp` on PATH, else "
                                      "python -m datapath.cli)")
    ap.add_argument("--ovs-pin", choices=("taskset", "pmd-mask", "both", "none"),
                    default="taskset",
                    help="how OVS is held to the switch core (default: taskset every "
                         "ovs-vswitchd thread; 'none' is unfair, for reference)")
    ap.add_argument("--ring-tx", choices=("ring", "mmsg"), default="ring",
                    help="the ring forwarder's transmit side: TPACKET_V2 TX ring with "
                         "qdisc bypass (default) or sendmmsg")
    ap.add_argument("--prio", choices=("nice", "rt", "none"), default="nice",
                    help="favour the generator and the forwarder over other processes: "
                         "nice -20 (default), SCHED_FIFO, or not at all")
    ap.add_argument("--quiet-wait", type=float, default=0.0, metavar="S",
                    help="before each run wait up to S seconds for the machine to be quiet "
                         "(other processes under --quiet-threshold; default 0: do not wait)")
    ap.add_argument("--quiet-threshold", type=float, default=10.0, metavar="PCT",
                    help="percent of one core other processes may use (default 10)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--cleanup", action="store_true",
                    help="only remove leftovers of a killed run and exit")
    args = ap.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.forwarders = [f for f in args.forwarders.split(",") if f]
    for s in args.scenarios:
        if s not in ("1flow", "10k", "group"):
            ap.error(f"unknown scenario {s!r}")
    for f in args.forwarders:
        if f not in ("ring", "ovs", "vdp"):
            ap.error(f"unknown forwarder {f!r}")
    return args


def make_vdp(args):
    if args.vdp_mode == "facade":
        return [VdpFacade()]
    if args.vdp_mode == "cli":
        return [VdpCli(args.vdp_cmd)]
    return [VdpCli(args.vdp_cmd), VdpFacade()]   # auto: first that prepares


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    global PRIO
    args = parse_args(argv)
    PRIO = args.prio
    if os.geteuid() != 0:
        sys.exit("pps.py needs root (netns, veth, AF_PACKET, OVS)")
    if os.cpu_count() < 2:
        sys.exit("pps.py needs two CPUs (generator and switch)")
    if args.cleanup:
        npath.cleanup()
        subprocess.run(["ovs-vsctl", "--timeout=5", "--if-exists", "del-br", OVS_BRIDGE],
                       capture_output=True)
        return 0
    if not shutil.which("trafgen"):
        sys.exit("trafgen not found (Debian package netsniff-ng)")
    # Explicitly: a shell starting us in the background leaves SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGHUP, _sigterm)

    workdir = tempfile.mkdtemp(prefix="vdptb-")
    fwds = []
    unavailable = {}
    runs = []
    gen = Generator(workdir)
    softirq = SoftirqThreads()
    t_start = time.monotonic()
    try:
        softirq.raise_()
        for name in args.forwarders:
            cands = {"ring": lambda: [Ring(args.ring_tx)], "ovs": lambda: [Ovs(args.ovs_pin)],
                     "vdp": lambda: make_vdp(args)}[name]()
            errs = []
            for fwd in cands:
                try:
                    fwd.prepare(workdir)
                    fwds.append(fwd)
                    break
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    errs.append(f"{fwd.label}: {e}")
                    fwd.finish()
            else:
                unavailable[name] = "; ".join(errs)
                log(f"  {name} unavailable: {unavailable[name]}")
        n_sinks = max(scenario_rules_cached(s)[3] for s in args.scenarios) - 1
        npath.create(n_sinks)
        for rnd in range(1, args.rounds + 1):
            for s in args.scenarios:
                order = fwds if rnd % 2 else list(reversed(fwds))
                for fwd in order:
                    if args.quiet_wait > 0:
                        noise, top = wait_quiet(args)
                        if noise >= args.quiet_threshold:
                            log(f"  still busy ({noise:.0f}%: {' '.join(top)}); measuring anyway")
                    r = measure(fwd, s, gen, args)
                    r["round"] = rnd
                    runs.append(r)
                    if "error" in r:
                        log(f"  round {rnd} {s:<6} {fwd.name:<5} ERROR {r['error']}")
                    else:
                        log(f"  round {rnd} {s:<6} {fwd.name:<5} {r['pps']:>9,} pps  "
                            f"gen {r['gen_pps']:>9,}  loss {r['loss_pct']}%  "
                            f"cpu gen/fwd {r['gen_cpu_pct']:.0f}/{r['fwd_cpu_pct']:.0f}%  "
                            f"{r['fwd_ns_per_pkt']} ns/pkt  "
                            f"noise {r['noise_pct']:.0f}% {' '.join(r['noise_top'])}")
                    time.sleep(0.3)
    except KeyboardInterrupt:
        log("  interrupted: cleaning up")
        raise SystemExit(130)
    finally:
        gen.stop()
        softirq.restore()
        for fwd in fwds:
            try:
                fwd.finish()
            except Exception as e:  # noqa: BLE001 - keep cleaning
                log(f"  cleanup of {fwd.name}: {e}")
        npath.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
        if os.path.exists(RING_BIN):
            os.unlink(RING_BIN)

    names = [f.name for f in fwds] + [n for n in unavailable if n not in {f.name for f in fwds}]
    rows = summarize(runs, args.scenarios, names)
    for row in rows:
        if row["forwarder"] in unavailable:
            row["error"] = "unavailable: " + unavailable[row["forwarder"]]
    labels = {f.name: f.label for f in fwds}
    if args.json:
        json.dump({"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                   "kernel": os.uname().release, "frame_len": FRAME_LEN,
                   "args": {k: v for k, v in vars(args).items() if k != "json"},
                   "labels": labels, "elapsed_s": round(time.monotonic() - t_start, 1),
                   "summary": rows, "runs": runs}, sys.stdout, indent=1)
        print()
    else:
        print_table(rows, args, labels)
        log(f"(elapsed {time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
