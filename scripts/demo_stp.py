"""Spanning tree part of the vdp demo (scripts/demo.py --only stp).

Three `vdp run` switches s1, s2, s3 cabled in a ring of veth pairs, one
host each, under one controller process running the `l2` and `stp` apps
(RSTP, point-to-point ring links, the host ports edge ports):

                 h1 10.0.8.1
                  |
                  1
          +---3- s1 -2---+
          |              |
          2              3
    h3 -1 s3 -3-------2- s2 -1 h2
    10.0.8.3                10.0.8.2

Port 1 of each switch is its host, port 2 goes to the next switch, port 3
to the previous one.  Shows the tree the apps computed (exactly one ring
port blocked, NO_FWD on it in the switch's own port view), pings between
all hosts, that a broadcast does not circulate, and what happens when a
forwarding ring link is cut: the blocked port takes over, pings resume,
and the outage is measured with a UDP echo probe (every 10 ms).

Names: namespaces vdpt-demo-stp-h1..h3, interfaces vdpt-demo-s*, controller
OpenFlow port from 16930-16949; all removed at the end.
"""
from __future__ import annotations

import sys
import time

from demo_common import (WAIT, Controller, DemoTopo, Probe, StepFailed, ms,
                         sysfs_counter)
from topo import DaemonError, ping, run, vdp_ctl, wait_for

SUBNET = "10.0.8"
DIAGRAM = """\
                 h1 10.0.8.1
                  |
                  1
          +---3- s1 -2---+
          |              |
          2              3
    h3 -1 s3 -3-------2- s2 -1 h2
    10.0.8.3                10.0.8.2
"""
PORT_NAMES = {1: "host", 2: "next", 3: "prev"}
HELLO, MAX_AGE, FWD_DELAY = 2, 6, 4
CONVERGE = 60.0          # how long to look for a settled tree (busy machine)


class StpPart:
    title = "spanning tree"

    def __init__(self, report):
        self.r = report
        self.topo = DemoTopo("stp", "s")
        self.ctl = None
        self.daemons = {}         # switch n -> Daemon
        self.hosts = {}           # switch n -> Host
        self.links = []           # (switch a, port a, switch b, port b, ifname a, ifname b)

    # ------------------------------------------------------------------ views
    def status(self):
        return self.ctl.status()

    def all_ready(self):
        try:
            return len([d for d in self.status()["datapaths"] if d.get("ready")]) == 3
        except (OSError, ValueError):
            return False

    def tree(self, expect_blocked, down=()):
        """The status once it has settled: every switch ready, one root,
        no port in a transitional state, exactly expect_blocked live ring
        ports not forwarding, and the ports in `down` ((switch, port))
        seen down.  Returns (status by switch n, blocked [(n, port)]) or None."""
        try:
            st = self.status()
        except (OSError, ValueError):
            return None
        dps = {int(d["dpid"], 16): d for d in st.get("datapaths", [])}
        if sorted(dps) != [1, 2, 3] or not all(d.get("ready") for d in dps.values()):
            return None
        if len({d["root_id"] for d in dps.values()}) != 1:
            return None
        blocked = []
        for n, d in dps.items():
            for no in (1, 2, 3):
                p = d["ports"].get(str(no))
                if p is None:
                    return None
                if (n, no) in down:
                    if p["link_up"]:
                        return None
                    continue
                if not p["link_up"] or p["state"] in ("listening", "learning"):
                    return None
                if p["state"] != "forwarding":
                    if no == 1:
                        return None          # host ports are edge ports: forwarding
                    blocked.append((n, no))
        if len(blocked) != expect_blocked:
            return None
        return dps, blocked

    def wait_tree(self, expect_blocked, what, down=()):
        try:
            return wait_for(lambda: self.tree(expect_blocked, down), timeout=CONVERGE,
                            interval=0.1, what=what)
        except TimeoutError as e:
            self.r.record(what, False, str(e))
            self.ctl.show_status(self.r, "controller.stp.app")
            raise StepFailed(what) from None

    def port_config(self, n):
        """{port: OFPPC config bits} as switch n itself reports them."""
        show = vdp_ctl(self.daemons[n].ctl, "show")
        return {int(p["port"]): int(p["config"]) for p in show["ports"]}

    # ------------------------------------------------------------------ steps
    def build(self):
        r, t = self.r, self.topo
        r.heading("8. Spanning tree: a ring of 3 vdp switches under the l2 + stp apps (RSTP)")
        t.reclaim()
        for n in (1, 2, 3):
            self.hosts[n] = t.add_host(f"h{n}", f"{SUBNET}.{n}/24")
        for n in (1, 2, 3):
            m = n % 3 + 1
            a, b = t.add_veth(t.ifname("a", n), t.ifname("b", m))
            for ifn in (a, b):
                run(["ip", "link", "set", ifn, "up"])
            self.links.append((n, 2, m, 3, a, b))
        r.say(DIAGRAM.rstrip())
        r.say("  ring links (veth pairs):")
        for n, pa, m, pb, a, b in self.links:
            r.say(f"    s{n} port {pa} ({a}) <-> s{m} port {pb} ({b})")

        conf = [f"[stp]", f'mode = "rstp"', f"hello_time = {HELLO}", f"max_age = {MAX_AGE}",
                f"forward_delay = {FWD_DELAY}"]
        for n in (1, 2, 3):
            conf += ["[[stp.datapath]]", f"dpid = {n}", f'name = "s{n}"',
                     "  [[stp.datapath.port]]", "  port = 1", "  edge = true"]
        self.ctl = Controller(t, "stp", ["controller.l2.app", "controller.stp.app"],
                              "\n".join(conf) + "\n", status_option="--stp-status-socket")
        r.say(f"\n  controller config {self.ctl.config}:")
        r.say("    " + self.ctl.config.read_text().rstrip().replace("\n", "\n    "))
        try:
            self.ctl.start(r)
        except (StepFailed, TimeoutError) as e:
            r.record("controller (l2 + stp apps)", False, str(e))
            raise StepFailed(str(e)) from None
        r.record("controller (l2 + stp apps)", True,
                 f"pid {self.ctl.proc.pid}, OpenFlow tcp:127.0.0.1:{self.ctl.port}")

        pending = []
        for n in (1, 2, 3):
            nxt = next(a for x, _, _, _, a, _ in self.links if x == n)
            prv = next(b for _, _, y, _, _, b in self.links if y == n)
            extra = ["--dpid", n, "--controller", f"tcp:127.0.0.1:{self.ctl.port}"]
            args, _ = t.vdp_args([self.hosts[n], nxt, prv], fail_mode="secure",
                                 name=f"vdpt-demo-s{n}", extra=extra)
            r.show_cmd(["vdp"] + args, background=True)
            d = t.spawn_vdp([self.hosts[n], nxt, prv], fail_mode="secure",
                            name=f"vdpt-demo-s{n}", extra=extra)
            self.daemons[n] = d
            pending.append(d)
        try:
            for d in pending:
                t.wait_ready(d)
            wait_for(self.all_ready, timeout=WAIT, interval=0.2,
                     what="3 switches connected to the controller")
        except (DaemonError, TimeoutError) as e:
            r.record("3 vdp switches connected", False, str(e))
            raise StepFailed(str(e)) from None
        r.record("3 vdp switches connected", True,
                 ", ".join(f"s{n} pid {d.pid}" for n, d in self.daemons.items()))

    def show_tree(self):
        r = self.r
        r.heading("9. The spanning tree: one ring port blocked")
        dps, blocked = self.wait_tree(1, "ring converged with one port blocked")
        self.ctl.show_status(r, "controller.stp.app")
        root = next(d for d in dps.values() if d["is_root"])
        (bn, bp), = blocked
        bport = dps[bn]["ports"][str(bp)]
        r.record("one root, exactly one blocked port", True,
                 f"root {root['name']} ({root['root_id']}); blocked s{bn} port {bp} "
                 f"({PORT_NAMES[bp]}): {bport['role']}, {bport['state']}")
        self.blocked = (bn, bp)

        # the datapath's own view: NO_FWD on the blocked port only
        def config_ok():
            cfg = {n: self.port_config(n) for n in (1, 2, 3)}
            ok = all((bits & 0x20) == (0x20 if (n, no) == (bn, bp) else 0)
                     for n, ports in cfg.items() for no, bits in ports.items())
            return cfg if ok else None
        try:
            wait_for(config_ok, timeout=10, interval=0.2, what="NO_FWD on the blocked port")
            ok = True
        except TimeoutError:
            ok = False
        r.say("")
        d = self.daemons[bn]
        r.show_cmd(["vdp", "ctl", "--ctl", d.ctl, "show"])
        r.say(vdp_ctl(d.ctl, "show", json=False).rstrip())
        if ok:
            r.record(f"NO_FWD on s{bn} port {bp} in `vdp ctl show`, no other port", True)
        else:
            cfg = {n: self.port_config(n) for n in (1, 2, 3)}
            r.record("NO_FWD on the blocked port only", False, f"port config bits {cfg}")

    def ping_all(self, label):
        ok_all = True
        hs = [self.hosts[n] for n in (1, 2, 3)]
        for i, a in enumerate(hs):
            for b in hs[i + 1:]:
                # the first packets wait for ARP and MAC learning
                try:
                    wait_for(lambda: ping(a, b.ip, 1, wait=1) == 1 or ping(b, a.ip, 1, wait=1) == 1,
                             timeout=30, interval=0.2, what=f"{a.name} <-> {b.name}")
                except TimeoutError:
                    pass
                got = ping(a, b.ip, 3)
                ok_all &= got == 3
                self.r.say(f"  {a.name} -> {b.name} ({b.ip}): {got}/3 replies"
                           f"{'' if got == 3 else '   <-- unexpected'}")
        return self.r.record(label, ok_all)

    def no_storm(self):
        r = self.r
        r.heading("11. No broadcast storm: a broadcast crosses the ring once")
        h1 = self.hosts[1]
        others = [self.hosts[2], self.hosts[3]]
        ends = [(a, f"s{n} port {pa}") for n, pa, _, _, a, _ in self.links] + \
               [(b, f"s{m} port {pb}") for _, _, m, pb, _, b in self.links]
        before = {ifn: sysfs_counter(ifn) for ifn, _ in ends}
        hbefore = {h.name: h.stat("rx_packets") for h in others}
        send = [sys.executable, "-c",
                "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
                "s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); "
                f"[s.sendto(b'vdp-demo', ('{SUBNET}.255', 7001)) for _ in range(3)]"]
        r.say(f"  h1 sends 3 UDP broadcasts to {SUBNET}.255 (ff:ff:ff:ff:ff:ff); "
              "frames received on each ring interface, 3 s later:")
        h1.run(send)
        t0 = time.monotonic()
        try:
            wait_for(lambda: all(h.stat("rx_packets") - hbefore[h.name] >= 3 for h in others),
                     timeout=10, interval=0.1, what="the broadcasts at h2 and h3")
        except TimeoutError:
            pass
        # a loop would multiply the frames without end: look for 3 s
        time.sleep(max(0.0, 3.0 - (time.monotonic() - t0)))
        delta = {ifn: sysfs_counter(ifn) - before[ifn] for ifn, _ in ends}
        hdelta = {h.name: h.stat("rx_packets") - hbefore[h.name] for h in others}
        for ifn, what in ends:
            r.say(f"    {ifn:<15} ({what})  rx {delta[ifn]:>4} frames")
        for h in others:
            r.say(f"    {h.name} ({h.ifname})       rx {hdelta[h.name]:>4} frames")
        bounded = max(delta.values()) < 60 and max(hdelta.values()) < 30
        reached = min(hdelta.values()) >= 3
        r.record("no storm: ring counters bounded", bounded,
                 f"at most {max(delta.values())} frames per ring interface in 3 s "
                 "(BPDUs included)")
        r.record("the broadcasts reached every host", reached,
                 ", ".join(f"{k} {v}" for k, v in hdelta.items()))

    def cut_link(self):
        r = self.r
        r.heading("12. Cut a forwarding ring link: RSTP re-converges, pings resume")
        dps, _ = self.wait_tree(1, "ring settled before the cut")
        fwd = [lk for lk in self.links
               if dps[lk[0]]["ports"][str(lk[1])]["state"] == "forwarding"
               and dps[lk[2]]["ports"][str(lk[3])]["state"] == "forwarding"]
        n, pa, m, pb, a, b = fwd[0]
        src, dst = self.hosts[n], self.hosts[m]
        r.say(f"  UDP echo probe {src.name} -> {dst.name} every 10 ms (its traffic crosses "
              f"s{n}-s{m})")
        probe = Probe(self.topo, "stp", src.ns, dst.ns, dst.ip, period=0.01)
        try:
            probe.wait_flowing()
            cmd = ["ip", "link", "set", a, "down"]
            r.show_cmd(cmd)
            t0 = time.monotonic()
            run(cmd)
            what = f"tree re-converged without s{n}-s{m}"
            dps, blocked = self.wait_tree(0, what, down=((n, pa), (m, pb)))
            probe.wait_resumed(t0)
        except TimeoutError as e:
            probe.stop()
            r.record("traffic resumed after the cut", False, str(e))
            raise StepFailed(str(e)) from None
        echoes, sent = probe.stop()
        bn, bp = self.blocked
        newp = dps[bn]["ports"][str(bp)]
        r.record(what, True, f"s{bn} port {bp} (was blocked) now {newp['role']}, "
                 f"{newp['state']}; no port blocked")
        self.ctl.show_status(r, "controller.stp.app")
        cfg = self.port_config(bn)
        r.record(f"NO_FWD lifted on s{bn} port {bp}", not cfg[bp] & 0x20,
                 f"config bits {cfg[bp]:#x}")
        res = Probe.outage(echoes, t0)
        if res is None:
            r.record("outage measured", False, "no echo after the cut")
        else:
            gap, lost, back = res
            r.say(f"  probe: {len(echoes)}/{sent} echoes; longest silence {ms(gap)} "
                  f"({lost} datagrams lost), traffic back {ms(back)} after `ip link set down`")
            r.record("traffic outage", True, f"{ms(gap)} without echoes, {lost} datagrams lost")
        self.ping_all("ping all pairs after the cut")

        # heal: the ring closes again and one port blocks again
        cmd = ["ip", "link", "set", a, "up"]
        r.say("")
        r.show_cmd(cmd)
        run(cmd)
        dps, blocked = self.wait_tree(1, "link restored: one port blocked again")
        (bn, bp), = blocked
        p = dps[bn]["ports"][str(bp)]
        r.record("link restored: one port blocked again", True,
                 f"s{bn} port {bp}: {p['role']}, {p['state']}")

    def run(self):
        self.build()
        self.show_tree()
        self.r.heading("10. Ping between all hosts across the ring")
        self.ping_all("ping all pairs (ring, one port blocked)")
        self.no_storm()
        self.cut_link()

    def logs(self):
        out = [self.topo.daemon_logs()] if self.topo.daemons else []
        if self.ctl is not None and self.ctl.proc is not None:
            out.append(f"--- controller (status {self.ctl.proc.poll()})\n"
                       + "\n".join(self.ctl.log_text().splitlines()[-80:]))
        return "\n".join(out)
