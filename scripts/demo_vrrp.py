"""VRRP part of the vdp demo (scripts/demo.py --only vrrp).

Two `vdp run` datapaths r1 and r2, each programmed by its own `vrrp` app
process, route between a host subnet and a far subnet as one virtual
router (VRRP v3, adverts every 100 ms, r1 priority 200, r2 100, preempt):

    ha 10.1.0.10 --[lan]--+-- r1 port 1 (10.1.0.2)   r1 port 2 (10.2.0.2) --+--[wan]-- hb 10.2.0.10
    gw 10.1.0.1           +-- r2 port 1 (10.1.0.3)   r2 port 2 (10.2.0.3) --+          gw 10.2.0.1

VRID 1 owns 10.1.0.1 on the lan side, VRID 2 owns 10.2.0.1 on the wan
side; each tracks the other side's port, so one router is Master of both.
The lan and wan segments are Linux bridges in namespaces of their own.
Shows the routers' status, ha pinging hb through the Master, the Master's
lan link cut (the Backup takes over; the outage is measured with a UDP
echo probe every 10 ms), and the link restored (r1 preempts).

Names: namespaces vdpt-demo-vrrp-*, interfaces vdpt-demo-v*, controller
OpenFlow ports from 16930-16949; all removed at the end.
"""
from __future__ import annotations

import textwrap
import time

from demo_common import (WAIT, Controller, DemoTopo, Probe, StepFailed, ms)
from topo import DaemonError, in_ns, ping, run, vdp_ctl, wait_for

INTERVAL = 0.1            # advert interval (s), v3
PRIORITY = {1: 200, 2: 100}
DIAGRAM = __doc__.split("\n\n")[2]
ROUTERS = (("lan", 1, "10.1.0.1"), ("wan", 2, "10.2.0.1"))
VMAC = "00:00:5e:00:01:01"


def router_config(n):
    return textwrap.dedent(f"""\
        [[vrrp.datapath]]
        dpid = {n}
        name = "r{n}"
          [[vrrp.datapath.interface]]
          name = "lan"
          port = 1
          address = "10.1.0.{n + 1}/24"
          [[vrrp.datapath.interface]]
          name = "wan"
          port = 2
          address = "10.2.0.{n + 1}/24"
          [[vrrp.datapath.router]]
          interface = "lan"
          vrid = 1
          version = 3
          priority = {PRIORITY[n]}
          vips = "10.1.0.1"
          interval = {INTERVAL}
          preempt = true
          tracks = {{ wan = 0 }}
          [[vrrp.datapath.router]]
          interface = "wan"
          vrid = 2
          version = 3
          priority = {PRIORITY[n]}
          vips = "10.2.0.1"
          interval = {INTERVAL}
          preempt = true
          tracks = {{ lan = 0 }}
        """)


class VrrpPart:
    title = "VRRP"

    def __init__(self, report):
        self.r = report
        self.topo = DemoTopo("vrrp", "v")
        self.ctl = {}
        self.dp = {}
        self.ports = {}           # (router n, "l" | "w") -> veth handed to vdp

    # ------------------------------------------------------------------ topology
    def bridge(self, name):
        ns = self.topo.add_netns(name)
        run(in_ns(ns, ["ip", "link", "add", "br0", "type", "bridge", "stp_state", "0",
                       "mcast_snooping", "0", "forward_delay", "0"]))
        run(in_ns(ns, ["ip", "link", "set", "br0", "up"]))
        return ns

    def wire(self, short, bridge_ns, host_ns=None, cidr=None):
        """A veth from bridge_ns's br0 to host_ns (None: left in the root
        namespace for vdp).  Returns the end that is not on the bridge."""
        t = self.topo
        a, b = t.add_veth(t.link_name(short), t.link_name(short + "b"))
        run(["ip", "link", "set", b, "netns", bridge_ns])
        t.links.remove(b)                     # lives and dies with the namespace now
        run(in_ns(bridge_ns, ["ip", "link", "set", b, "master", "br0"]))
        run(in_ns(bridge_ns, ["ip", "link", "set", b, "up"]))
        if host_ns is not None:
            run(["ip", "link", "set", a, "netns", host_ns])
            t.links.remove(a)
            run(in_ns(host_ns, ["ip", "addr", "add", cidr, "dev", a]))
            run(in_ns(host_ns, ["ip", "link", "set", a, "up"]))
        else:
            run(["ip", "link", "set", a, "up"])
        return a

    # ------------------------------------------------------------------ views
    def router(self, n, iface, vrid):
        for dp in self.ctl[n].status()["datapaths"]:
            for i in dp["interfaces"]:
                if i["name"] == iface:
                    for rt in i["routers"]:
                        if rt["vrid"] == vrid and rt["family"] == 4:
                            return rt
        raise KeyError((n, iface, vrid))

    def masters_are(self, n, other_state):
        """Router n Master of both VRIDs, the other in other_state (and,
        as Backup, hearing n's adverts)."""
        o = 3 - n
        for iface, vrid, _ in ROUTERS:
            try:
                a, b = self.router(n, iface, vrid), self.router(o, iface, vrid)
            except (OSError, ValueError):
                return False          # a status query failed: look again
            if a["state"] != "Master" or b["state"] != other_state:
                return False
            if other_state == "Backup" and b["master"] != f"10.{vrid}.0.{n + 1}":
                return False
        return True

    def wait_masters(self, n, other_state, what):
        try:
            wait_for(lambda: self.masters_are(n, other_state), timeout=WAIT, interval=0.05,
                     what=what)
        except TimeoutError as e:
            self.r.record(what, False, str(e))
            self.show_status()
            raise StepFailed(what) from None

    def connected(self, n):
        try:
            return all(d["connected"] for d in self.ctl[n].status()["datapaths"])
        except (OSError, ValueError):
            return False

    def show_status(self):
        for n in (1, 2):
            self.ctl[n].show_status(self.r, "controller.vrrp.app")

    def tx_wan(self, n):
        for p in vdp_ctl(self.dp[n].ctl, "dump-ports"):
            if int(p["port"]) == 2:
                return int(p["tx_packets"])
        return 0

    def ping_far(self, label, via):
        """ha -> hb (far subnet) 5 pings; the echo requests must leave
        through router `via`'s wan port."""
        before = self.tx_wan(via)
        self.r.show_cmd(in_ns(self.ha, ["ping", "-c", "5", "-i", "0.2", "10.2.0.10"]))
        got = ping(self.ha, "10.2.0.10", count=5, interval=0.2, wait=5)
        through = self.tx_wan(via) - before
        self.r.say(f"  {got}/5 replies; r{via} sent {through} frames on its wan port meanwhile")
        return self.r.record(label, got >= 4 and through >= got,
                             f"{got}/5 replies, via r{via}")

    # ------------------------------------------------------------------ steps
    def build(self):
        r, t = self.r, self.topo
        r.heading("13. VRRP: two vdp datapaths as one virtual router (v3, 100 ms adverts)")
        t.reclaim()
        self.ha = t.add_netns("ha")
        self.hb = t.add_netns("hb")
        lan = self.bridge("lan")
        wan = self.bridge("wan")
        self.wire("ha", lan, self.ha, "10.1.0.10/24")
        self.wire("hb", wan, self.hb, "10.2.0.10/24")
        run(in_ns(self.ha, ["ip", "route", "add", "default", "via", "10.1.0.1"]))
        run(in_ns(self.hb, ["ip", "route", "add", "default", "via", "10.2.0.1"]))
        for n in (1, 2):
            self.ports[(n, "l")] = self.wire(f"{n}l", lan)
            self.ports[(n, "w")] = self.wire(f"{n}w", wan)
        r.say(DIAGRAM)
        r.say(f"  r1 ports: 1 = {self.ports[(1, 'l')]}, 2 = {self.ports[(1, 'w')]};  "
              f"r2 ports: 1 = {self.ports[(2, 'l')]}, 2 = {self.ports[(2, 'w')]}")
        for n in (1, 2):
            self.ctl[n] = Controller(t, f"r{n}", ["controller.vrrp.app"], router_config(n),
                                     status_option="--vrrp-status-socket")
        r.say(f"\n  r1's controller config {self.ctl[1].config} (r2's: addresses .3, "
              f"priority {PRIORITY[2]}):")
        r.say("    " + self.ctl[1].config.read_text().rstrip().replace("\n", "\n    "))
        used = []
        for n in (1, 2):            # both start at once (each imports os-ken)
            self.ctl[n].launch(r, used_ports=used)
            used.append(self.ctl[n].port)
        for n in (1, 2):
            try:
                self.ctl[n].wait_ready()
            except (StepFailed, TimeoutError) as e:
                r.record(f"r{n} controller (vrrp app)", False, str(e))
                raise StepFailed(str(e)) from None
            r.record(f"r{n} controller (vrrp app)", True,
                     f"pid {self.ctl[n].proc.pid}, OpenFlow tcp:127.0.0.1:{self.ctl[n].port}")
        for n in (1, 2):
            extra = ["--dpid", n, "--controller", f"tcp:127.0.0.1:{self.ctl[n].port}"]
            ports = [self.ports[(n, "l")], self.ports[(n, "w")]]
            args, _ = t.vdp_args(ports, fail_mode="secure", name=f"vdpt-demo-r{n}", extra=extra)
            r.show_cmd(["vdp"] + args, background=True)
            self.dp[n] = t.spawn_vdp(ports, fail_mode="secure", name=f"vdpt-demo-r{n}",
                                     extra=extra)
        try:
            for n in (1, 2):
                t.wait_ready(self.dp[n])
            for n in (1, 2):
                wait_for(lambda n=n: self.connected(n), timeout=WAIT, interval=0.2,
                         what=f"r{n} connected to its controller")
        except (DaemonError, TimeoutError) as e:
            r.record("r1, r2 datapaths connected", False, str(e))
            raise StepFailed(str(e)) from None
        r.record("r1, r2 datapaths connected", True,
                 f"r1 pid {self.dp[1].pid}, r2 pid {self.dp[2].pid}")

    def elected(self):
        r = self.r
        r.heading("14. The election: r1 (priority 200) Master, r2 (100) Backup")
        self.wait_masters(1, "Backup", "r1 Master, r2 Backup")
        self.show_status()
        mdi = self.router(2, "lan", 1)["master_down_interval"]
        r.record("r1 Master of VRID 1 and 2, r2 Backup", True,
                 f"r2 would take over after {ms(mdi)} without adverts")

    def ping_through_master(self):
        r = self.r
        r.heading("15. ha pings the far host hb through the virtual router (gateway 10.1.0.1)")
        self.ping_far("ping ha -> hb (far subnet)", via=1)
        out = run(in_ns(self.ha, ["ip", "neigh", "show", "10.1.0.1"])).stdout.strip()
        r.show_cmd(in_ns(self.ha, ["ip", "neigh", "show", "10.1.0.1"]))
        r.say(out)
        r.record("ha's gateway is the virtual MAC", VMAC in out, VMAC)

    def failover(self):
        r = self.r
        r.heading("16. r1's lan link is cut: r2 becomes Master, traffic resumes")
        r.say("  UDP echo probe ha -> hb every 10 ms (both directions cross the virtual router)")
        probe = Probe(self.topo, "failover", self.ha, self.hb, "10.2.0.10", period=0.01)
        try:
            probe.wait_flowing()
            cmd = ["ip", "link", "set", self.ports[(1, "l")], "down"]
            r.show_cmd(cmd)
            t0 = time.monotonic()
            run(cmd)
            self.wait_masters(2, "Initialize", "r2 Master, r1 out of service")
            probe.wait_resumed(t0)
        except TimeoutError as e:
            probe.stop()
            r.record("traffic resumed through r2", False, str(e))
            raise StepFailed(str(e)) from None
        echoes, sent = probe.stop()
        lt = self.router(2, "lan", 1)["last_transition"]
        became = lt["at"] - t0 if lt and lt["to"] == "Master" else None
        self.show_status()
        r.record("r2 Master of VRID 1 and 2, r1 Initialize (link down)", True,
                 f"r2 Master {ms(became)} after the cut" if became is not None else "")
        self.report_outage(echoes, sent, t0, "failover outage")
        self.ping_far("ping ha -> hb after the failover", via=2)

    def preempt(self):
        r = self.r
        r.heading("17. r1's link comes back: r1 (priority 200, preempt) takes over again")
        probe = Probe(self.topo, "preempt", self.ha, self.hb, "10.2.0.10", period=0.01)
        try:
            probe.wait_flowing()
            cmd = ["ip", "link", "set", self.ports[(1, "l")], "up"]
            r.show_cmd(cmd)
            t0 = time.monotonic()
            run(cmd)
            self.wait_masters(1, "Backup", "r1 Master again, r2 Backup")
            # a few more echoes after the switch back
            t1 = time.monotonic()
            probe.wait_resumed(t1, span=0.5)
        except TimeoutError as e:
            probe.stop()
            r.record("traffic through r1 again", False, str(e))
            raise StepFailed(str(e)) from None
        echoes, sent = probe.stop()
        self.show_status()
        trans = self.router(1, "lan", 1)["transitions"]
        r.record("r1 preempted: Master again, r2 Backup", True,
                 f"r1's VRID 1 went through {trans} transitions")
        self.report_outage(echoes, sent, t0, "preemption outage")
        self.ping_far("ping ha -> hb after preemption", via=1)

    def report_outage(self, echoes, sent, t0, label):
        res = Probe.outage(echoes, t0)
        if res is None:
            self.r.record(label, False, "no echo came back")
            return
        gap, lost, back = res
        self.r.say(f"  probe: {len(echoes)}/{sent} echoes; longest silence {ms(gap)} "
                   f"({lost} datagrams lost)")
        self.r.record(label, True, f"{ms(gap)} without echoes, {lost} datagrams lost")

    def run(self):
        self.build()
        self.elected()
        self.ping_through_master()
        self.failover()
        self.preempt()

    def logs(self):
        out = [self.topo.daemon_logs()] if self.topo.daemons else []
        for n, c in self.ctl.items():
            if c.proc is not None:
                out.append(f"--- controller r{n} (status {c.proc.poll()})\n"
                           + "\n".join(c.log_text().splitlines()[-60:]))
        return "\n".join(out)
