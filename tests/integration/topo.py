"""Throwaway network topologies for vdp's integration tests and demo.

A Topo is a registry: every network namespace, link, TAP host, background
process and `vdp run` daemon it creates is recorded before it is created,
and Topo.cleanup() removes all of them, in an order that works even when a
test failed half way (daemons and processes first, then namespaces, then
links left in the root namespace).  Nothing here depends on pytest, so
scripts/demo.py uses it too.

Names: namespaces are ``vdpt-<test>-<tag>-<host>`` (``vdpt-<test>-<host>``
with unique=False, as the demo does); interfaces are ``vdpt<tag><kind><n>``
(at most 15 characters).  <tag> is random per Topo, so two runs of the same
test at once (two people on one machine) never fight over a name.  Addresses (10.x, 192.168.x)
only ever live inside the namespaces created here.

Typical use::

    topo = Topo("fwd")
    h1 = topo.add_host("h1", "10.0.0.1/24")          # veth; switch side h1.port
    h2 = topo.add_host("h2", "10.0.0.2/24", tap=True) # TAP created by vdp
    d = topo.start_vdp([h1, h2], fail_mode="standalone")
    assert ping(h1, h2.ip, 3) == 3
    vdp_ctl(d.ctl, "dump-ports")
    topo.cleanup()
"""
from __future__ import annotations

import json as _json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# How long to wait for a freshly started daemon to answer on its ctl socket
# (it imports os-ken and builds its pipeline first).
DAEMON_START_TIMEOUT = 45.0


class CmdError(RuntimeError):
    """A command run by the topology failed."""

    def __init__(self, cmd, proc):
        self.cmd = cmd
        self.returncode = proc.returncode
        self.stdout = proc.stdout or ""
        self.stderr = proc.stderr or ""
        super().__init__(
            f"command failed (exit {proc.returncode}): {shlex.join(cmd)}\n"
            f"stdout: {self.stdout.strip()[-2000:]}\nstderr: {self.stderr.strip()[-2000:]}")


class CtlError(CmdError):
    """`vdp ctl` exited non-zero."""


class DaemonError(RuntimeError):
    """`vdp run` died or never answered on its ctl socket."""


# --------------------------------------------------------------------------
# plain helpers

def run(cmd, check=True, timeout=60, input=None, env=None, cwd=None):
    """Runs cmd (a list), returns the CompletedProcess (text mode)."""
    cmd = [str(c) for c in cmd]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       input=input, env=env, cwd=cwd,
                       stdin=None if input is not None else subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise CmdError(cmd, p)
    return p


def ns_of(ns):
    """Accepts a Host or a namespace name; returns the namespace name."""
    return ns.ns if isinstance(ns, Host) else str(ns)


def in_ns(ns, cmd):
    """The command line that runs cmd inside namespace ns (None: root)."""
    if ns is None:
        return [str(c) for c in cmd]
    return ["ip", "netns", "exec", ns_of(ns)] + [str(c) for c in cmd]


def wait_for(pred, timeout=10.0, interval=0.1, what="condition"):
    """Polls pred() until it returns something truthy; returns that value.

    Used only to wait for readiness (a socket answering, a link state
    propagating), never to assert how fast something is."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def link_exists(ifname, ns=None):
    return run(in_ns(ns, ["ip", "link", "show", "dev", ifname]), check=False).returncode == 0


def netns_list():
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def netns_pids(ns):
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(x) for x in out.split() if x.isdigit()]


def ping(ns, ip, count=3, interval=0.2, wait=3, timeout=None):
    """Pings ip from namespace ns (Host or name); returns replies received.
    Waits up to `wait` s past the last probe for replies (generous: the machine
    may be busy; this checks reachability, not latency)."""
    # -w: stop when `count` replies came or at the deadline (with -W alone,
    # ping gives up on late replies after twice the RTT seen so far).
    deadline = int(count * interval + wait + 0.999)
    cmd = in_ns(ns, ["ping", "-n", "-q", "-c", count, "-i", interval, "-w", deadline, ip])
    timeout = timeout or (deadline + 10)
    p = run(cmd, check=False, timeout=timeout)
    m = re.search(r"(\d+) (?:packets )?received", p.stdout)
    if m is None:
        if p.returncode in (0, 1):
            raise CmdError(cmd, p)
        return 0          # e.g. "Network is unreachable": nothing came back
    return int(m.group(1))


def vdp_cmd():
    """How to invoke the `vdp` CLI: $VDP_CMD, else this Python's
    `-m datapath.cli` (which follows PYTHONPATH, so a private build from
    scripts/devbuild.sh is used when PYTHONPATH names it)."""
    if os.environ.get("VDP_CMD"):
        return shlex.split(os.environ["VDP_CMD"])
    return [sys.executable, "-m", "datapath.cli"]


def vdp_env():
    """Environment for vdp subprocesses: PYTHONPATH as given (a private
    build first), then the repository."""
    env = dict(os.environ)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO) not in parts:
        parts.append(str(REPO))
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def vdp_ctl(ctl_path, *args, json=True, check=True, timeout=20):
    """Runs `vdp ctl --ctl PATH [--json] ARGS...`.

    With check (default) a non-zero exit raises CtlError, and the result is
    the parsed JSON (json=True; None when nothing was printed) or stdout
    text.  With check=False the CompletedProcess is returned as is."""
    cmd = vdp_cmd() + ["ctl", "--ctl", str(ctl_path)] + (["--json"] if json else [])
    cmd += [str(a) for a in args]
    # Run from a neutral directory: `python -m` puts the cwd first on
    # sys.path, which would let an in-place build shadow PYTHONPATH.
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                       env=vdp_env(), cwd=tempfile.gettempdir(), stdin=subprocess.DEVNULL)
    if not check:
        return p
    if p.returncode != 0:
        raise CtlError(cmd, p)
    if not json:
        return p.stdout
    return _json.loads(p.stdout) if p.stdout.strip() else None


def port_stats(ctl_path):
    """dump-ports as {port number: stats dict}."""
    return {int(p["port"]): p for p in vdp_ctl(ctl_path, "dump-ports")}


def wait_port_stats(ctl_path, pred, timeout=10.0):
    """port_stats() once pred(stats) holds, or the last reading after
    timeout (the caller's assertions then show what was seen).  Counters
    move after the frames are sent: the daemon forwards asynchronously."""
    last = {}

    def check():
        nonlocal last
        last = port_stats(ctl_path)
        return pred(last)
    try:
        wait_for(check, timeout=timeout, interval=0.2, what="port counters")
    except TimeoutError:
        pass
    return last


def sanitize(name, maxlen=24):
    """A test name made fit for a namespace name."""
    s = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    s = re.sub(r"^test-?", "", s) or "t"
    return s[:maxlen].strip("-") or "t"


# --------------------------------------------------------------------------
# the topology

class Host:
    """A network namespace with one interface (veth end or TAP) on the switch."""

    def __init__(self, topo, name, ns, ifname, ip=None, port=None, tap=None):
        self.topo = topo
        self.name = name          # short name, e.g. "h1"
        self.ns = ns              # namespace name, vdpt-<test>-h1
        self.ifname = ifname      # the host's interface inside ns
        self.cidr = ip            # "10.0.0.1/24" or None
        self.ip = ip.split("/")[0] if ip else None
        self.port = port          # switch-side interface name (veth), or None
        self.tap = tap            # TAP name when the host sits on a vdp TAP port
        self.placed = tap is None  # a TAP host is placed once its TAP is moved in

    def __repr__(self):
        return f"Host({self.name}, ns={self.ns}, if={self.ifname}, ip={self.ip})"

    @property
    def vdp_port(self):
        """How this host's port is named on the `vdp run` command line."""
        return f"tap:{self.tap}" if self.tap else self.port

    def cmd(self, cmd):
        return in_ns(self.ns, cmd)

    def run(self, cmd, check=True, timeout=60, input=None):
        if isinstance(cmd, str):
            cmd = shlex.split(cmd)
        return run(self.cmd(cmd), check=check, timeout=timeout, input=input)

    def popen(self, cmd, name=None, **kw):
        """Starts a background process in the namespace (killed by cleanup).
        stdout/stderr go to files in the topology's temp dir unless given."""
        if isinstance(cmd, str):
            cmd = shlex.split(cmd)
        return self.topo.popen(self.cmd(cmd), name=name or f"{self.name}-{Path(str(cmd[0])).name}", **kw)

    @property
    def mac(self):
        return self.run(["cat", f"/sys/class/net/{self.ifname}/address"]).stdout.strip()

    def stat(self, counter, ifname=None):
        """An interface counter (rx_packets, tx_bytes...) seen in the namespace."""
        ifname = ifname or self.ifname
        return int(self.run(["cat", f"/sys/class/net/{ifname}/statistics/{counter}"]).stdout)

    def ip_cmd(self, *args, check=True):
        return self.run(["ip"] + [str(a) for a in args], check=check)

    def set_link(self, up, ifname=None):
        self.ip_cmd("link", "set", "dev", ifname or self.ifname, "up" if up else "down")

    def offloads(self, ifname=None):
        """`ethtool -k` as {feature: on?}."""
        out = self.run(["ethtool", "-k", ifname or self.ifname]).stdout
        feats = {}
        for line in out.splitlines()[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                feats[k.strip()] = v.strip().startswith("on")
        return feats

    def wait_listening(self, port, proto="tcp", timeout=10):
        flag = "-ltn" if proto == "tcp" else "-lun"
        wait_for(lambda: self.run(["ss", "-H", flag, f"sport = :{port}"], check=False).stdout.strip(),
                 timeout=timeout, what=f"{proto} port {port} listening in {self.ns}")

    def sniff(self, bpf, ifname=None):
        """Starts tcpdump in the namespace; returns a Capture (call .stop())."""
        return Capture(self, bpf, ifname or self.ifname)

    def send_udp(self, dst_mac, dst_ip, sports, dport=9, payload=b"vdp-test", src_ip=None):
        """Sends one UDP frame per source port with scapy, from inside the
        namespace (Ethernet addresses given, so no ARP is needed)."""
        script = (
            "import sys, logging\n"
            "logging.getLogger('scapy.runtime').setLevel(logging.ERROR)\n"
            "from scapy.all import Ether, IP, UDP, Raw, sendp\n"
            "a = sys.argv\n"
            "ports = [int(x) for x in a[6].split(',')]\n"
            "frames = [Ether(src=a[2], dst=a[3]) / IP(src=a[4], dst=a[5]) /"
            " UDP(sport=p, dport=int(a[7])) / Raw(bytes.fromhex(a[8])) for p in ports]\n"
            "sendp(frames, iface=a[1], verbose=0)\n"
            "print(len(frames))\n")
        src_ip = src_ip or self.ip
        args = [sys.executable, "-c", script, self.ifname, self.mac, dst_mac, src_ip, dst_ip,
                ",".join(str(p) for p in sports), dport, payload.hex()]
        out = self.run(args, timeout=120).stdout.strip()
        return int(out.splitlines()[-1])


class Capture:
    """tcpdump running in a namespace; stop() returns packets captured."""

    def __init__(self, host, bpf, ifname):
        self.host = host
        self.pcap = Path(host.topo.tmpdir) / f"{host.name}-{ifname}-{len(host.topo.procs)}.pcap"
        self.proc = host.popen(["tcpdump", "-i", ifname, "-n", "-U", "-w", str(self.pcap)] + shlex.split(bpf),
                               name=f"{host.name}-tcpdump")
        errfile = self.proc.vdpt_stderr

        def ready():
            if self.proc.poll() is not None:
                raise CmdError(self.proc.args, subprocess.CompletedProcess(
                    self.proc.args, self.proc.returncode, "", Path(errfile).read_text()))
            return "listening on" in Path(errfile).read_text()
        wait_for(ready, timeout=10, what=f"tcpdump ready in {host.ns}")
        self.count = None

    def stop(self, settle=0.5):
        """Stops tcpdump; returns the number of packets it captured.  Waits
        `settle` seconds first so frames still in flight get counted."""
        if self.count is None:
            time.sleep(settle)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            err = Path(self.proc.vdpt_stderr).read_text()
            m = re.search(r"(\d+) packets? captured", err)
            if m is None:
                raise RuntimeError(f"tcpdump printed no capture count: {err[-500:]}")
            self.count = int(m.group(1))
        return self.count


class Daemon:
    """A `vdp run` process started by a Topo."""

    def __init__(self, proc, ctl, log, args):
        self.proc = proc
        self.ctl = ctl
        self.log = log
        self.args = args

    @property
    def pid(self):
        return self.proc.pid

    def ctl_cmd(self, *args, **kw):
        return vdp_ctl(self.ctl, *args, **kw)

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        try:
            return Path(self.log).read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals the daemon and waits; SIGKILL if it does not exit in time.
        Returns its exit status (negative: killed by that signal)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Topo:
    """Registry of everything a test creates; cleanup() removes it all."""

    def __init__(self, test, tmpdir=None, unique=True):
        self.test = sanitize(test)
        self.tag = os.urandom(2).hex()
        self.unique = unique
        self.tmpdir = tmpdir or tempfile.mkdtemp(prefix=f"vdpt-{self.test}-")
        self.keep_tmp = tmpdir is not None
        self.netns = []       # namespace names, in creation order
        self.links = []       # interfaces created in the root namespace
        self.procs = []       # background processes
        self.daemons = []
        self.hosts = {}
        self._n = 0
        self._cleaned = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()

    # names ---------------------------------------------------------------
    def ns_name(self, host):
        if self.unique:
            return f"vdpt-{self.test}-{self.tag}-{host}"
        return f"vdpt-{self.test}-{host}"

    def ifname(self, kind, n=None):
        """vdpt<tag><kind><n>: unique per Topo, at most 15 characters."""
        if n is None:
            self._n += 1
            n = self._n
        name = f"vdpt{self.tag}{kind}{n}"
        assert len(name) <= 15, name
        return name

    # creation ------------------------------------------------------------
    def add_netns(self, host):
        ns = self.ns_name(host)
        if ns in netns_list():
            # Left over by a run that was killed outright: reclaim it only
            # when nothing lives in it (so a concurrent run is left alone).
            if netns_pids(ns):
                raise RuntimeError(f"netns {ns} exists and has processes: another run is using it")
            run(["ip", "netns", "del", ns], check=False)
        self.netns.append(ns)
        run(["ip", "netns", "add", ns])
        # No IPv6 in test hosts: router solicitations and MLD reports would
        # add stray frames to counters and captures.
        for conf in ("all", "default"):
            run(in_ns(ns, ["sysctl", "-q", "-w", f"net.ipv6.conf.{conf}.disable_ipv6=1"]), check=False)
        run(in_ns(ns, ["ip", "link", "set", "lo", "up"]))
        return ns

    def add_veth(self, a, b):
        """A veth pair a<->b in the root namespace (registered, not up)."""
        self.links.append(a)
        run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
        self.links.append(b)
        for name in (a, b):
            _disable_ipv6(name)
        return a, b

    def add_host(self, name, ip=None, tap=False, mac=None):
        """A host namespace with one interface that vdp will use as a port.

        veth (default): the pair vdpt<tag>s<n> (switch side, root namespace,
        up) <-> vdpt<tag>h<n> (moved into the host).  tap=True: the host's
        interface is the TAP that `vdp run --port tap:NAME` creates; it is
        moved into the host namespace and configured by start_vdp() once the
        daemon is up."""
        n = len(self.hosts) + 1
        ns = self.add_netns(name)
        if tap:
            host = Host(self, name, ns, self.ifname("t", n), ip=ip, tap=self.ifname("t", n))
            # A fixed MAC: when vdp restarts it makes a new TAP, and the other
            # hosts' ARP caches must stay right.
            host.tap_mac = mac or f"02:76:64:{self.tag[:2]}:{self.tag[2:]}:{n:02x}"
            self.links.append(host.tap)   # vdp should remove it; we make sure
        else:
            sw, hi = self.add_veth(self.ifname("s", n), self.ifname("h", n))
            run(["ip", "link", "set", hi, "netns", ns])
            self.links.remove(hi)         # lives and dies with the namespace now
            host = Host(self, name, ns, hi, ip=ip, port=sw)
            if mac:
                host.ip_cmd("link", "set", "dev", hi, "address", mac)
            run(["ip", "link", "set", sw, "up"])
            self._configure(host)
        self.hosts[name] = host
        return host

    def _configure(self, host):
        if host.cidr:
            host.ip_cmd("addr", "add", host.cidr, "dev", host.ifname)
        host.set_link(True)
        host.placed = True

    def place_tap(self, host):
        """Moves the TAP vdp created into the host namespace, configures it."""
        wait_for(lambda: link_exists(host.tap), timeout=10, what=f"TAP {host.tap} created by vdp")
        run(["ip", "link", "set", host.tap, "netns", host.ns])
        host.ip_cmd("link", "set", "dev", host.tap, "address", host.tap_mac)
        self._configure(host)

    def add_vlan(self, host, vid, ip):
        """Gives the host a VLAN interface: IP traffic on it leaves the
        host's port tagged with vid, and tagged frames for vid come back
        untagged.  Returns the interface name.

        The test kernel has no 802.1Q support (no `ip link add ... type
        vlan`, no VLAN-filtering bridge), so the VLAN interface is a TAP in
        the host namespace joined to the host's port by a small tagging
        process (vlan_adapter below)."""
        vif = self.ifname("v", vid)
        proc = host.popen([sys.executable, str(Path(__file__).resolve()), "vlan-adapter",
                           host.ifname, vif, vid], name=f"{host.name}-vlan{vid}")
        wait_for(lambda: proc.poll() is not None or "ready" in Path(proc.vdpt_stdout).read_text(),
                 timeout=15, what=f"VLAN adapter {vif} in {host.ns}")
        if proc.poll() is not None:
            raise RuntimeError(f"VLAN adapter died: {Path(proc.vdpt_stderr).read_text()[-1000:]}")
        host.ip_cmd("addr", "add", ip, "dev", vif)
        host.ip_cmd("link", "set", vif, "up")
        return vif

    def popen(self, cmd, name="proc", stdout=None, stderr=None, **kw):
        """Starts a registered background process; output to temp files."""
        cmd = [str(c) for c in cmd]
        base = Path(self.tmpdir) / f"{name}-{len(self.procs)}"
        out = open(f"{base}.out", "w") if stdout is None else stdout
        err = open(f"{base}.err", "w") if stderr is None else stderr
        try:
            p = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, **kw)
        finally:
            if stdout is None:
                out.close()
            if stderr is None:
                err.close()
        p.vdpt_stdout = f"{base}.out" if stdout is None else None
        p.vdpt_stderr = f"{base}.err" if stderr is None else None
        self.procs.append(p)
        return p

    # the daemon ------------------------------------------------------------
    def vdp_args(self, ports, fail_mode="standalone", name=None, ctl=None, extra=()):
        ports = [p.vdp_port if isinstance(p, Host) else str(p) for p in ports]
        name = name or f"vdpt{self.tag}"
        ctl = ctl or str(Path(self.tmpdir) / f"{name}-{len(self.daemons)}.ctl")
        args = ["run", "--name", name, "--ctl", ctl]
        if fail_mode:
            args += ["--fail-mode", fail_mode]
        for p in ports:
            args += ["--port", p]
        return args + [str(e) for e in extra], ctl

    def spawn_vdp(self, ports, fail_mode="standalone", name=None, ctl=None, extra=(), cpus=None):
        """Starts `vdp run` (registered) without waiting for it; cpus="1"
        pins it (taskset)."""
        args, ctl = self.vdp_args(ports, fail_mode, name, ctl, extra)
        log = str(Path(self.tmpdir) / f"vdp-{len(self.daemons)}.log")
        pin = ["taskset", "-c", str(cpus)] if cpus is not None else []
        with open(log, "w") as logf:
            proc = subprocess.Popen(pin + vdp_cmd() + args, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=vdp_env(),
                                    cwd=self.tmpdir, start_new_session=True)
        d = Daemon(proc, ctl, log, args)
        self.daemons.append(d)
        return d

    def start_vdp(self, ports, fail_mode="standalone", name=None, ctl=None, extra=(),
                  timeout=DAEMON_START_TIMEOUT, cpus=None):
        """Starts `vdp run` on ports (Hosts or interface names, numbered 1, 2,
        ... in order), waits until its ctl socket answers `show`, then places
        TAP hosts into their namespaces.  Returns the Daemon."""
        d = self.spawn_vdp(ports, fail_mode, name, ctl, extra, cpus)
        self.wait_ready(d, timeout)
        for p in ports:
            if isinstance(p, Host) and p.tap:
                if link_exists(p.tap, p.ns):
                    # left from an earlier daemon (if it made the TAP persistent)
                    run(in_ns(p.ns, ["ip", "link", "del", p.tap]), check=False)
                self.place_tap(p)
        return d

    def wait_ready(self, d, timeout=DAEMON_START_TIMEOUT):
        def ready():
            if d.proc.poll() is not None:
                raise DaemonError(f"vdp run exited with status {d.proc.returncode} before "
                                  f"answering on {d.ctl}; log:\n{tail(d.log_text())}")
            if not os.path.exists(d.ctl):
                return False
            return vdp_ctl(d.ctl, "show", check=False, timeout=10).returncode == 0
        try:
            wait_for(ready, timeout=timeout, interval=0.2, what=f"vdp ctl socket {d.ctl}")
        except TimeoutError as e:
            raise DaemonError(f"{e}; log:\n{tail(d.log_text())}") from None

    def stop_vdp(self, d, sig=signal.SIGTERM, timeout=15):
        rc = d.stop(sig, timeout)
        for h in self.hosts.values():
            if h.tap:
                h.placed = False
        return rc

    # teardown ------------------------------------------------------------
    def daemon_logs(self):
        return "\n".join(f"--- {' '.join(d.args)} (pid {d.pid}, status {d.proc.returncode})\n"
                         f"{tail(d.log_text(), 60)}" for d in self.daemons)

    def cleanup(self):
        """Removes everything this Topo created.  Safe to call twice; raises
        RuntimeError at the end if something could not be removed."""
        if self._cleaned:
            return
        self._cleaned = True
        problems = []
        for d in self.daemons:
            try:
                d.stop(signal.SIGTERM, timeout=10)
            except Exception as e:          # keep going: the rest must go too
                problems.append(f"daemon {d.pid}: {e}")
        for p in self.procs:
            try:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(timeout=5)
            except Exception as e:
                problems.append(f"process {p.pid}: {e}")
        for ns in reversed(self.netns):
            # Anything still running in our namespace is ours (started
            # through it); a namespace with a process in it would outlive
            # `ip netns del`.
            for pid in netns_pids(ns):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if ns in netns_list():
                p = run(["ip", "netns", "del", ns], check=False)
                if p.returncode != 0:
                    problems.append(f"netns {ns}: {p.stderr.strip()}")
        for ifname in reversed(self.links):
            if link_exists(ifname):
                run(["ip", "link", "del", ifname], check=False)
        # Deleting a namespace destroys its veth ends (and so their peers)
        # asynchronously: give the kernel a moment before checking.
        try:
            wait_for(lambda: not self.leftovers(), timeout=5, what="teardown")
        except TimeoutError:
            problems.append(f"left behind: {self.leftovers()}")
        if not self.keep_tmp and not os.environ.get("VDPT_KEEP_TMP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)
        if problems:
            raise RuntimeError("topology cleanup incomplete: " + "; ".join(problems))

    def leftovers(self):
        """Names this Topo created that still exist."""
        left = [ns for ns in self.netns if ns in netns_list()]
        out = run(["ip", "-o", "link", "show"], check=False).stdout
        names = {m.group(1) for m in re.finditer(r"^\d+: ([^:@\s]+)", out, re.M)}
        prefix = f"vdpt{self.tag}"
        left += sorted(n for n in names if n.startswith(prefix))
        left += [f"pid {d.pid}" for d in self.daemons if d.proc.poll() is None]
        return left


def _disable_ipv6(ifname):
    try:
        with open(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass   # no IPv6 in this kernel: nothing to silence


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def vlan_adapter(ifname, tapname, vid):
    """Bridges TAP tapname (untagged) to ifname (tagged vid); runs until
    killed.  Started by Topo.add_vlan inside the host's namespace.

    Received frames may carry their tag inline or, more often, stripped by
    the kernel into PACKET_AUXDATA (rx VLAN offload): both are handled."""
    import fcntl
    import select
    import socket
    import struct
    TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000
    SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID = 263, 8, 0x10
    PACKET_OUTGOING, ETH_P_ALL = 4, 0x0003
    tap = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", tapname.encode(), IFF_TAP | IFF_NO_PI))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((ifname, 0))
    sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
    tag = struct.pack("!HH", 0x8100, vid & 0xFFF)
    print("ready", flush=True)
    while True:
        readable, _, _ = select.select([tap, sock], [], [])
        if tap in readable:
            frame = os.read(tap, 65536)
            if len(frame) >= 14:
                sock.send(frame[:12] + tag + frame[12:])
        if sock in readable:
            data, anc, _, addr = sock.recvmsg(65536, socket.CMSG_SPACE(20))
            if addr[2] == PACKET_OUTGOING or len(data) < 14:
                continue
            tci = None
            for level, kind, cdata in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(cdata) >= 20:
                    status, _, _, _, _, vtci, _ = struct.unpack("IIIHHHH", cdata[:20])
                    if status & TP_STATUS_VLAN_VALID:
                        tci = vtci
            if tci is None and data[12:14] == b"\x81\x00" and len(data) >= 18:
                tci = int.from_bytes(data[14:16], "big")
                data = data[:12] + data[16:]
            if tci is not None and (tci & 0xFFF) == vid:
                os.write(tap, data)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "vlan-adapter":
        vlan_adapter(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit("usage: topo.py vlan-adapter IFNAME TAPNAME VID")


# ---------------------------------------------------------------- Open vSwitch
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


class OvsUnavailable(RuntimeError):
    """Open vSwitch cannot be used: .missing when it is not installed (or
    cannot be started for lack of ovs-ctl), else it failed to start."""

    def __init__(self, why, missing):
        super().__init__(why)
        self.missing = missing


def ensure_ovs():
    """ovs-vswitchd answering, started with ovs-ctl if it is not running;
    raises OvsUnavailable otherwise.  Used by the tests that drive OVS
    (through need_ovs) and by the conformance runner."""
    if shutil.which("ovs-vsctl") is None:
        raise OvsUnavailable("Open vSwitch is not installed (Debian openvswitch-switch)", True)
    if run(["ovs-vsctl", "--timeout=5", "show"], check=False).returncode == 0:
        return
    if not os.path.exists(OVS_CTL):
        raise OvsUnavailable(f"Open vSwitch is not running and {OVS_CTL} is missing", True)
    run([OVS_CTL, "start", "--system-id=random", "--no-monitor"], check=False, timeout=120)
    if run(["ovs-vsctl", "--timeout=10", "show"], check=False).returncode != 0:
        raise OvsUnavailable("Open vSwitch did not start (ovs-ctl start)", False)


def need_ovs():
    """ensure_ovs() for a test: skipped when OVS is missing, failed when it
    is installed but will not start."""
    import pytest
    try:
        ensure_ovs()
    except OvsUnavailable as e:
        (pytest.skip if e.missing else pytest.fail)(str(e))
