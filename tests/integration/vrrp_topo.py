"""Building blocks of the VRRP integration tests: the VRRP pair topology
and the `vrrp` app process, whatever switches the pair is made of.

Who uses it: tests/integration/test_vrrp_app.py (the pair on vdp datapaths,
keepalived interop), tests/integration/test_vrrp_ovs.py (the same pair on
Open vSwitch netdev bridges), bench/vrrp_failover.py (through
test_vrrp_app's re-export of VrrpPair).

    ha ---[lan bridge]--- r1.1 / r2.1     r1.2 / r2.2 ---[wan bridge]--- hb

Host subnet 10.1.0.0/24 (VIP 10.1.0.1, VRID 1), far subnet 10.2.0.0/24 (VIP
10.2.0.1, VRID 2, tracking the lan port so both sides move together); r1
priority 200, r2 100, preempt on.  The lan and wan segments are Linux
bridges in their own namespaces; each router port is a veth whose root
namespace end is handed to the switch as OpenFlow port 1 (lan) or 2 (wan).
VrrpPair.start_switch() makes router n's switch (a `vdp run` here; a
subclass may make another kind) and tx_packets() reads its port counters.

Names: links vdpt-<prefix><tag>-*; namespaces come from the Topo (topo.py),
which removes everything even on failure.
"""
from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from topo import REPO, in_ns, ping, run, vdp_env, wait_for  # noqa: E402

WAIT = 30.0              # readiness polls (the machine may be busy)


def status_client():
    from controller.vrrp.app import query_status
    return query_status


class Net:
    """Namespaces, bridges and veths of one test, registered in a Topo."""

    def __init__(self, topo, prefix="vr"):
        self.topo = topo
        self.tag = topo.tag
        self.prefix = prefix
        self.bridges = {}

    def link_name(self, short):
        name = f"vdpt-{self.prefix}{self.tag}-{short}"
        assert len(name) <= 15, name
        return name

    def ns(self, name):
        return self.topo.add_netns(name)

    def bridge(self, name):
        """A namespace holding a Linux bridge (no STP, no multicast
        snooping: VRRP and ND multicast are flooded)."""
        ns = self.ns(name)
        run(in_ns(ns, ["ip", "link", "add", "br0", "type", "bridge", "stp_state", "0",
                       "mcast_snooping", "0", "forward_delay", "0"]))
        run(in_ns(ns, ["ip", "link", "set", "br0", "up"]))
        self.bridges[name] = ns
        return ns

    def wire(self, short, bridge_ns, host_ns=None, cidr=None, mac=None):
        """A veth from bridge `bridge_ns` to host_ns (None: root namespace,
        for a vdp port).  Returns the far end's name."""
        a, b = self.topo.add_veth(self.link_name(short), self.link_name(short + "b"))
        run(["ip", "link", "set", b, "netns", bridge_ns])
        run(in_ns(bridge_ns, ["ip", "link", "set", b, "master", "br0"]))
        run(in_ns(bridge_ns, ["ip", "link", "set", b, "up"]))
        if mac:
            run(["ip", "link", "set", a, "address", mac])
        if host_ns is not None:
            run(["ip", "link", "set", a, "netns", host_ns])
            if cidr:
                run(in_ns(host_ns, ["ip", "addr", "add", cidr, "dev", a]))
            run(in_ns(host_ns, ["ip", "link", "set", a, "up"]))
        else:
            run(["ip", "link", "set", a, "up"])
        return a


LOG_INI = """\
[loggers]
keys = root, app
[handlers]
keys = stderr
[formatters]
keys = plain
[logger_root]
level = INFO
handlers = stderr
[logger_app]
level = {level}
qualname = vdp.vrrp.app
handlers =
[handler_stderr]
class = StreamHandler
args = (sys.stderr,)
formatter = plain
[formatter_plain]
format = %(asctime)s.%(msecs)03d %(name)s %(message)s
datefmt = %H:%M:%S
"""


class Controller:
    """One `controller.launcher controller.vrrp.app` process."""

    def __init__(self, topo, name, config_text, port):
        self.topo = topo
        self.name = name
        self.port = port
        self.config = Path(topo.tmpdir) / f"{name}.toml"
        self.config.write_text(config_text)
        self.sock = str(Path(topo.tmpdir) / f"{name}.sock")
        self.proc = None
        self.log = None
        self.verbose = False

    def start(self, verbose=False):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        # timestamps in the log (os-ken's default format has none)
        logconf = Path(self.topo.tmpdir) / f"{self.name}-log.ini"
        logconf.write_text(LOG_INI.format(level="DEBUG" if verbose else "INFO"))
        self.verbose = verbose
        cmd = [sys.executable, "-m", "controller.launcher", "controller.vrrp.app",
               "--config", str(self.config), "--ofp-tcp-listen-port", str(self.port),
               "--ofp-listen-host", "127.0.0.1", "--vrrp-status-socket", self.sock,
               "--log-config-file", str(logconf)]
        self.proc = self.topo.popen(cmd, name=f"ctl-{self.name}", env=vdp_env(),
                                    cwd=str(REPO))
        self.log = self.proc.vdpt_stderr
        wait_for(lambda: self._ready(), timeout=WAIT, what=f"controller {self.name} status")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"controller {self.name} exited {self.proc.returncode}:\n"
                               + self.log_text()[-3000:])
        try:
            return self.status()
        except OSError:
            return None

    def status(self):
        return status_client()(self.sock, timeout=5)

    def router(self, iface, vrid, family=4):
        """status() of one virtual router ("iface" = interface name)."""
        for dp in self.status()["datapaths"]:
            for i in dp["interfaces"]:
                if i["name"] == iface:
                    for r in i["routers"]:
                        if r["vrid"] == vrid and r["family"] == family:
                            return r
        raise KeyError((iface, vrid))

    def connected(self):
        return all(dp["connected"] for dp in self.status()["datapaths"])

    def wait_state(self, iface, vrid, state, timeout=WAIT):
        wait_for(lambda: self.router(iface, vrid)["state"] == state, timeout=timeout,
                 interval=0.1, what=f"{self.name} {iface} vrid {vrid} {state} "
                 f"(now {self.router(iface, vrid)['state']})")

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log_text(self):
        try:
            return Path(self.log).read_text(errors="replace")
        except (OSError, TypeError):
            return ""


def pair_config(dpid, n, priority, interval, version=3):
    """The [vrrp] config of router n (1 or 2) of the pair."""
    return textwrap.dedent(f"""\
        [[vrrp.datapath]]
        dpid = {dpid}
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
          version = {version}
          priority = {priority}
          vips = "10.1.0.1"
          interval = {interval}
          tracks = {{ wan = 0 }}
          [[vrrp.datapath.router]]
          interface = "wan"
          vrid = 2
          version = {version}
          priority = {priority}
          vips = "10.2.0.1"
          interval = {interval}
          tracks = {{ lan = 0 }}
        """)


class VrrpPair:
    """The pair in the module docstring; start() brings it all up: the
    two app instances, then the switches (start_switch(), kept in self.dp),
    until both controllers see their datapath connected."""

    def __init__(self, topo, interval=1.0, priorities=(200, 100), version=3, ofp_ports=None,
                 prefix="vr", dpids=(1, 2)):
        """ofp_ports: the two controllers' OpenFlow listen ports (required:
        each test file has its own range); prefix: of the link names;
        dpids: of r1 and r2."""
        if ofp_ports is None:
            raise ValueError("VrrpPair needs ofp_ports (two controller listen ports)")
        self.topo = topo
        self.dpids = tuple(dpids)
        net = self.net = Net(topo, prefix)
        self.ha = net.ns("ha")
        self.hb = net.ns("hb")
        self.lan = net.bridge("lan")
        self.wan = net.bridge("wan")
        net.wire("ha", self.lan, self.ha, "10.1.0.10/24")
        net.wire("hb", self.wan, self.hb, "10.2.0.10/24")
        run(in_ns(self.ha, ["ip", "route", "add", "default", "via", "10.1.0.1"]))
        run(in_ns(self.hb, ["ip", "route", "add", "default", "via", "10.2.0.1"]))
        self.ports = {}            # (router n, "l"|"w") -> root-namespace veth
        for n in (1, 2):
            self.ports[(n, "l")] = net.wire(f"{n}l", self.lan)
            self.ports[(n, "w")] = net.wire(f"{n}w", self.wan)
        self.ctl = {}
        self.dp = {}
        for n in (1, 2):
            self.ctl[n] = Controller(topo, f"r{n}", pair_config(self.dpids[n - 1], n,
                                                                  priorities[n - 1],
                                                                  interval, version),
                                     ofp_ports[n - 1])

    def start(self, verbose=False):
        for n in (1, 2):
            self.ctl[n].start(verbose)
        for n in (1, 2):
            self.dp[n] = self.start_switch(n)
        for n in (1, 2):
            wait_for(self.ctl[n].connected, timeout=WAIT, what=f"r{n} connected")
        return self

    def start_switch(self, n):
        """Router n's switch: lan veth = port 1, wan veth = port 2, dpid
        self.dpids[n - 1], controller ctl[n]; fail mode secure."""
        return self.topo.start_vdp(
            [self.ports[(n, "l")], self.ports[(n, "w")]], fail_mode="secure",
            name=f"vdpt{self.net.tag}r{n}",
            extra=["--dpid", str(self.dpids[n - 1]),
                   "--controller", f"tcp:127.0.0.1:{self.ctl[n].port}"])

    def masters(self):
        """{(vrid): router n} of the routers in state Master now."""
        out = {}
        for n in (1, 2):
            for iface, vrid in (("lan", 1), ("wan", 2)):
                if self.ctl[n].router(iface, vrid)["state"] == "Master":
                    out.setdefault(vrid, []).append(n)
        return out

    def wait_masters(self, n, other_state="Backup", timeout=WAIT):
        """Router n Master of both VRIDs, the other one in other_state
        (None: not asked, e.g. its controller is dead)."""
        other = 3 - n
        for iface, vrid, net in (("lan", 1, 1), ("wan", 2, 2)):
            self.ctl[n].wait_state(iface, vrid, "Master", timeout)
            if other_state is not None:
                self.ctl[other].wait_state(iface, vrid, other_state, timeout)
            if other_state == "Backup":
                # and the backup has heard the master's adverts
                want = f"10.{net}.0.{n + 1}"
                wait_for(lambda: self.ctl[other].router(iface, vrid)["master"] == want,
                         timeout=timeout, interval=0.1, what=f"r{other} hears {want}")

    def link(self, n, side, up):
        run(["ip", "link", "set", self.ports[(n, side)], "up" if up else "down"])

    def tx_packets(self, n, port):
        """Frames router n's switch sent on OpenFlow port `port`."""
        for p in self.dp[n].ctl_cmd("dump-ports"):
            if int(p["port"]) == port:
                return int(p["tx_packets"])
        raise KeyError(port)


def pings_through(pair, n, count=5):
    """Pings ha -> hb; returns (replies, packets router n sent on its wan
    port meanwhile)."""
    before = pair.tx_packets(n, 2)
    got = ping(pair.ha, "10.2.0.10", count=count, interval=0.2, wait=5)
    return got, pair.tx_packets(n, 2) - before


def dump_on_failure(request, ctls):
    rep = getattr(request.node, "vdpt_rep_call", None)
    if rep is None or rep.failed:
        for c in ctls:
            print(f"\n=== controller {c.name} log ===\n{c.log_text()[-6000:]}")
