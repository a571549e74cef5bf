#!/usr/bin/env python3
"""vdp demo, in three parts (`--only base|stp|vrrp` runs one of them).

base (steps 1-7): four hosts in network namespaces on one `vdp run` switch.

  h1, h2, h3   veth pairs (vdpt-demo-h1..h3, 10.0.0.1-3)
  h4           a TAP port created by vdp, moved into vdpt-demo-h4 (10.0.0.4)

  Shows: pings between all hosts through a standalone (MAC-learning)
  switch, an iperf3 TCP transfer h1 -> h2 with veth offloads on, `vdp ctl
  dump-flows` and `dump-ports`, then secure mode with explicit flows (`vdp
  ctl add-flow`) and a short packet-rate measurement (trafgen 64-byte UDP
  from h1, counted at h2's interface).

stp (steps 8-12, scripts/demo_stp.py): a ring of three vdp switches under
  the l2 + stp controller apps (RSTP): one port blocked (NO_FWD), pings, no
  broadcast storm, a ring link cut and the tree re-converging, with the
  measured outage.

vrrp (steps 13-17, scripts/demo_vrrp.py): two vdp datapaths as a VRRP pair
  (the vrrp app, 100 ms v3 adverts) routing a host to a far subnet; the
  master's link is cut, the backup takes over (measured outage), the link
  comes back and the master preempts.

Run as root after `make build` (`make demo` does both).  Everything it
creates (named vdpt-demo-*) is removed at the end of each part, also on
failure or Ctrl-C.  Exits non-zero if any step failed.
"""
import argparse
import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_common import Report, StepFailed  # noqa: E402  (puts tests/integration on sys.path)
from topo import (CmdError, DaemonError, Topo, in_ns, ping,  # noqa: E402
                  vdp_cmd, vdp_ctl)

TRAFGEN_SECONDS = 3
IPERF_SECONDS = 3
PARTS = ("base", "stp", "vrrp")


class Demo:
    """The base part: four hosts on one switch."""
    title = "one switch, four hosts"

    def __init__(self, report):
        self.r = report
        self.topo = Topo("demo", unique=False)     # namespaces vdpt-demo-h1..h4

    # --- output helpers ---------------------------------------------------
    def heading(self, text):
        self.r.heading(text)

    def show_cmd(self, args):
        self.r.show_cmd(args)

    def record(self, step, ok, detail=""):
        return self.r.record(step, ok, detail)

    def logs(self):
        return self.topo.daemon_logs() if self.topo.daemons else ""

    def ctl(self, d, *args):
        """Runs and echoes a `vdp ctl` command (text output)."""
        self.show_cmd(["vdp", "ctl", "--ctl", d.ctl] + list(args))
        out = vdp_ctl(d.ctl, *args, json=False)
        if out.strip():
            print(out.rstrip(), flush=True)
        return out

    # --- steps ------------------------------------------------------------
    def build_topology(self):
        self.heading("1. Topology: 4 hosts in network namespaces")
        t = self.topo
        self.hosts = [t.add_host(f"h{i}", f"10.0.0.{i}/24") for i in (1, 2, 3)]
        self.hosts.append(t.add_host("h4", "10.0.0.4/24", tap=True))
        print(f"  {'host':5} {'namespace':16} {'interface':12} {'address':10} vdp port")
        for n, h in enumerate(self.hosts, 1):
            kind = f"TAP {h.tap} (created by vdp)" if h.tap else f"veth {h.port}"
            print(f"  {h.name:5} {h.ns:16} {h.ifname:12} {h.ip:10} {n}: {kind}")

    def start(self, fail_mode, cpus=None):
        args, _ = self.topo.vdp_args(self.hosts, fail_mode=fail_mode)
        self.show_cmd((["taskset", "-c", cpus] if cpus else []) + ["vdp"] + args)
        try:
            d = self.topo.start_vdp(self.hosts, fail_mode=fail_mode, cpus=cpus)
        except (DaemonError, TimeoutError, CmdError) as e:
            self.record(f"vdp run --fail-mode {fail_mode}", False, str(e))
            raise StepFailed(str(e)) from None
        self.record(f"vdp run --fail-mode {fail_mode}", True, f"pid {d.pid}, ctl {d.ctl}")
        self.ctl(d, "show")
        return d

    def ping_all(self, label, expect=True):
        ok_all = True
        for i, a in enumerate(self.hosts):
            for b in self.hosts[i + 1:]:
                got = ping(a, b.ip, 3)
                ok = (got == 3) if expect else (got == 0)
                ok_all &= ok
                print(f"  {a.name} -> {b.name} ({b.ip}): {got}/3 replies"
                      f"{'' if ok else '   <-- unexpected'}", flush=True)
        self.record(label, ok_all)
        return ok_all

    def iperf(self):
        h1, h2 = self.hosts[0], self.hosts[1]
        self.heading(f"4. TCP: iperf3 {h1.name} -> {h2.name} for {IPERF_SECONDS} s "
                     "(veth TSO/checksum offload left on)")
        feats = h1.offloads()
        print("  h1 offloads: " + ", ".join(
            f"{k}={'on' if feats.get(k) else 'off'}"
            for k in ("tx-checksumming", "tcp-segmentation-offload", "generic-segmentation-offload")))
        h2.popen(["iperf3", "-s", "-1", "-B", h2.ip], name="iperf3-server")
        h2.wait_listening(5201)
        cmd = ["iperf3", "-c", h2.ip, "-t", IPERF_SECONDS, "-J", "--connect-timeout", "5000"]
        self.show_cmd(in_ns(h1, cmd))
        p = h1.run(cmd, check=False, timeout=IPERF_SECONDS + 60)
        try:
            res = json.loads(p.stdout)
        except ValueError:
            res = {}
        if p.returncode != 0 or "end" not in res:
            err = res.get("error") or (p.stderr.strip() or p.stdout.strip())[-300:]
            return self.record("iperf3 TCP transfer", False, err)
        recv = res["end"]["sum_received"]
        sent = res["end"].get("sum_sent", {})
        gbps = recv["bits_per_second"] / 1e9
        print(f"  received {recv['bytes'] / 1e6:.1f} MB in {recv['seconds']:.1f} s = {gbps:.2f} Gbit/s"
              f" (sender retransmits: {sent.get('retransmits', '?')})")
        return self.record("iperf3 TCP transfer", recv["bytes"] > 0, f"{gbps:.2f} Gbit/s")

    def secure_flows(self, d):
        """Explicit L2 forwarding: unicast by destination MAC, broadcast
        from each port to all the others."""
        macs = [h.mac for h in self.hosts]
        flows = [f"priority=100,dl_dst={mac},actions=output:{n}" for n, mac in enumerate(macs, 1)]
        ports = range(1, len(self.hosts) + 1)
        for n in ports:
            outs = ",".join(f"output:{m}" for m in ports if m != n)
            flows.append(f"priority=50,in_port={n},dl_dst=ff:ff:ff:ff:ff:ff,actions={outs}")
        for flow in flows:
            self.ctl(d, "add-flow", flow)
        n = len(vdp_ctl(d.ctl, "dump-flows"))
        self.record("flows installed", n == len(flows), f"{n} flows")

    def packet_rate(self, d):
        h1, h2 = self.hosts[0], self.hosts[1]
        self.heading(f"7. Packet rate: trafgen 64-byte UDP {h1.name} -> {h2.name} "
                     f"for ~{TRAFGEN_SECONDS} s")
        # 60 bytes on the wire before the FCS (64 with it).  The destination
        # IP is on h2's subnet but not h2's own, so h2 counts the frames on
        # its interface and drops them quietly (no ICMP replies back).
        conf = Path(self.topo.tmpdir) / "udp64.cfg"
        conf.write_text(
            "{\n"
            f"  eth(da={h2.mac}, sa={h1.mac}, type=0x0800),\n"
            f"  ipv4(saddr={h1.ip}, daddr=10.0.0.222, ttl=64, proto=17),\n"
            "  udp(sport=5000, dport=9),\n"
            "  fill(0x00, 18),\n"
            "}\n")
        # One generator process pinned to core 0 (FACTS: trafgen on core 0,
        # the switch on the other); leave global sysctls and IRQ affinity alone.
        cmd = ["taskset", "-c", "0", "timeout", "-s", "INT", TRAFGEN_SECONDS,
               "trafgen", "--dev", h1.ifname, "--conf", conf, "--cpus", "1",
               "--no-sock-mem", "--notouch-irq", "--no-cpu-stats"]
        self.show_cmd(in_ns(h1, cmd))
        load = os.getloadavg()[0]
        print(f"  load average {load:.1f} on {os.cpu_count()} CPUs"
              + ("  (busy machine: expect low, noisy numbers)" if load > 1.5 else ""))
        before_port = {p["port"]: p for p in vdp_ctl(d.ctl, "dump-ports")}
        tx0, rx0 = h1.stat("tx_packets"), h2.stat("rx_packets")
        t0 = time.monotonic()
        p = h1.run(cmd, check=False, timeout=TRAFGEN_SECONDS + 30)
        elapsed = time.monotonic() - t0
        time.sleep(0.5)                       # let frames in flight arrive
        tx1, rx1 = h1.stat("tx_packets"), h2.stat("rx_packets")
        after_port = {p["port"]: p for p in vdp_ctl(d.ctl, "dump-ports")}
        if p.returncode not in (0, 124, 130):     # timeout's INT ends it
            return self.record("trafgen", False, (p.stderr or p.stdout).strip()[-300:])
        sent, got = tx1 - tx0, rx1 - rx0
        print(f"  generator sent     {sent:>12,d} frames ({sent / elapsed:>10,.0f} pps)")
        print(f"  h2 received        {got:>12,d} frames ({got / elapsed:>10,.0f} pps)   <- forwarded rate")
        for port, what in ((1, "rx"), (2, "tx")):
            b, a = before_port.get(port, {}), after_port.get(port, {})
            delta = a.get(f"{what}_packets", 0) - b.get(f"{what}_packets", 0)
            drops = a.get(f"{what}_dropped", 0) - b.get(f"{what}_dropped", 0)
            print(f"  vdp port {port} {what}     {delta:>12,d} frames, {drops:,d} dropped")
        loss = max(0.0, 100.0 * (sent - got) / sent) if sent else 0.0
        print(f"  window {elapsed:.2f} s; {loss:.1f}% of generated frames not delivered"
              + (" (the generator sends faster than the switch forwards)" if loss > 1 else ""))
        self.pps = got / elapsed
        return self.record("packet rate h1 -> h2", got > 0, f"{self.pps:,.0f} pps forwarded")

    # --- the whole demo ---------------------------------------------------
    def run(self):
        self.build_topology()

        self.heading("2. vdp run, standalone fail mode: a MAC-learning switch (NORMAL)")
        d = self.start("standalone")

        self.heading("3. Ping between all hosts (no flows: learning switch)")
        self.ping_all("ping all pairs (standalone)")

        self.iperf()

        self.heading("5. What the switch saw: vdp ctl dump-flows / dump-ports")
        self.ctl(d, "dump-flows")
        self.ctl(d, "dump-ports")

        self.heading("6. Secure fail mode: nothing moves without flows")
        print("  restarting vdp with --fail-mode secure, pinned to CPU 1 "
              "(the packet-rate step runs the generator on CPU 0)")
        self.topo.stop_vdp(d)
        d = self.start("secure", cpus="1" if (os.cpu_count() or 1) > 1 else None)
        got = ping(self.hosts[0], self.hosts[1].ip, 2)
        self.record("no flows: h1 -> h2 blocked", got == 0, f"{got}/2 replies")
        self.secure_flows(d)
        self.ping_all("ping all pairs (secure, explicit flows)")
        self.ctl(d, "dump-flows")

        self.packet_rate(d)
        self.ctl(d, "dump-ports")


def run_part(report, part_cls):
    """Runs one part; its topology is removed at the end whatever happens.
    Returns 0, 1 (a step failed or the part broke off) or 130 (interrupted:
    the caller stops)."""
    part = part_cls(report)
    status = 0
    n_failed = len(report.failed())
    try:
        part.run()
    except StepFailed as e:
        status = 1
        if len(report.failed()) == n_failed:      # not reported by a step yet
            report.record(f"{report.part} part", False, str(e))
    except KeyboardInterrupt:
        print("\ninterrupted", flush=True)
        status = 130
    except Exception as e:       # report, clean up, go on with the next part
        print(f"\nerror: {type(e).__name__}: {e}", flush=True)
        report.record(f"{report.part} part", False, "aborted")
        status = 1
    finally:
        if status == 1:           # (not on Ctrl-C)
            logs = part.logs()
            if logs:
                print(f"\n--- logs ---\n{logs}")
        print(f"\ncleaning up {report.part} part: namespaces, links and processes ...",
              flush=True)
        try:
            part.topo.cleanup()
        except KeyboardInterrupt:
            # a second Ctrl-C during cleanup: finish it anyway
            part.topo._cleaned = False
            part.topo.cleanup()
            status = 130
        except Exception as e:
            print(f"cleanup: {e}")
            status = status or 1
    return status


def main(argv=None):
    ap = argparse.ArgumentParser(prog="scripts/demo.py", description=__doc__.split("\n")[0])
    ap.add_argument("--only", choices=PARTS, help="run one part: base (one switch), "
                    "stp (spanning tree ring), vrrp (VRRP pair)")
    a = ap.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("demo.py needs root (network namespaces, veth, TAP): sudo make demo")
    # SIGTERM behaves like Ctrl-C: unwind through the cleanup.  SIGINT
    # too, even when started with it ignored (a background job).
    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from demo_stp import StpPart
    from demo_vrrp import VrrpPart
    classes = {"base": Demo, "stp": StpPart, "vrrp": VrrpPart}
    parts = [a.only] if a.only else list(PARTS)
    report = Report()
    print(f"vdp demo (vdp command: {shlex.join(vdp_cmd())})", flush=True)
    status = 0
    t_start = time.monotonic()
    try:
        for name in parts:
            report.part = name
            st = run_part(report, classes[name])
            status = status or st
            if st == 130:
                status = 130
                break
    except KeyboardInterrupt:     # between two parts: nothing is left to clean
        print("\ninterrupted", flush=True)
        status = 130

    report.heading("Summary")
    for part, step, ok, detail in report.results:
        tag = f"{part:<5} " if len(parts) > 1 else ""
        print(f"  [{'ok  ' if ok else 'FAIL'}] {tag}{step}{': ' + detail if detail else ''}")
    failed = report.failed()
    if failed and not status:
        status = 1
    print(f"\n{len(report.results) - len(failed)} steps ok, {len(failed)} failed "
          f"({time.monotonic() - t_start:.0f} s){', interrupted' if status == 130 else ''}")
    return status


if __name__ == "__main__":
    sys.exit(main())
