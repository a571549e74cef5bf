"""Shared pieces of the vdp demo (scripts/demo.py and its parts
scripts/demo_stp.py, scripts/demo_vrrp.py).

  Report      step lines ([ok  ] / [FAIL]), section headings, echoed commands;
              one Report collects the results of every part for the summary
  DemoTopo    a tests/integration/topo.py Topo whose names all start with
              vdpt-demo-: namespaces vdpt-demo-<part>-<host>, interfaces
              vdpt-demo-<x><kind><n>, temp dir /tmp/vdpt-demo-<part>-*
  Controller  one `python -m controller.launcher APP...` process, with its
              JSON status socket (the stp and vrrp apps answer the same way)
  Probe       a UDP echo probe between two namespaces (scripts/demo_probe.py)
              that measures how long traffic stopped around a failure

Nothing here asserts a time: outages are measured and printed, never
judged (the machine may be busy).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from topo import (Topo, in_ns, netns_list, netns_pids, run,  # noqa: E402
                  tail, vdp_env, wait_for)

# OpenFlow listen ports of the demo's controllers (unique to the demo).
CONTROLLER_PORTS = range(16930, 16950)

# Readiness polls: generous, the machine may be busy.
WAIT = 60.0


class StepFailed(Exception):
    """A step failed so that the rest of its part cannot go on."""


class Report:
    """Prints headings, commands and step results; keeps the results."""

    def __init__(self):
        self.results = []          # (part, step, ok, detail)
        self.part = "base"

    def heading(self, text):
        print(f"\n{'=' * 72}\n  {text}\n{'=' * 72}", flush=True)

    def show_cmd(self, args, background=False):
        print(f"$ {shlex.join(str(a) for a in args)}{' &' if background else ''}", flush=True)

    def say(self, text=""):
        print(text, flush=True)

    def record(self, step, ok, detail=""):
        self.results.append((self.part, step, ok, detail))
        mark = "ok  " if ok else "FAIL"
        print(f"  [{mark}] {step}{': ' + detail if detail else ''}", flush=True)
        return ok

    def failed(self):
        return [r for r in self.results if not r[2]]


# --------------------------------------------------------------------------
# topology with vdpt-demo-* names

class DemoTopo(Topo):
    """A Topo for one demo part: namespaces vdpt-demo-<part>-<host>,
    interfaces vdpt-demo-<short><kind><n> (15 characters at most)."""

    def __init__(self, part, short):
        super().__init__(f"demo-{part}", unique=False)
        self.prefix = f"vdpt-demo-{short}"
        self.controllers = []

    def ifname(self, kind, n=None):
        if n is None:
            self._n += 1
            n = self._n
        name = f"{self.prefix}{kind}{n}"
        assert len(name) <= 15, name
        return name

    def link_name(self, short):
        name = f"{self.prefix}{short}"
        assert len(name) <= 15, name
        return name

    def reclaim(self):
        """Removes what a run of this part killed outright left behind
        (namespaces vdpt-demo-<part>-*, links with our prefix), unless a
        namespace of ours still has processes: then another run of the
        demo is going on and we stop."""
        ours = [ns for ns in netns_list() if ns.startswith(f"vdpt-{self.test}-")]
        busy = [ns for ns in ours if netns_pids(ns)]
        if busy:
            raise StepFailed(f"namespaces {busy} are in use: is another demo running?")
        for ns in ours:
            run(["ip", "netns", "del", ns], check=False)
        for name in self._our_links():
            run(["ip", "link", "del", name], check=False)

    def _our_links(self):
        out = run(["ip", "-o", "link", "show"], check=False).stdout
        names = {m.group(1) for m in re.finditer(r"^\d+: ([^:@\s]+)", out, re.M)}
        return sorted(n for n in names if n.startswith(self.prefix))

    def leftovers(self):
        left = [ns for ns in self.netns if ns in netns_list()]
        left += self._our_links()
        left += [f"pid {d.pid}" for d in self.daemons if d.proc.poll() is None]
        return left


def sysfs_counter(ifname, counter="rx_packets", ns=None):
    p = run(in_ns(ns, ["cat", f"/sys/class/net/{ifname}/statistics/{counter}"]), check=False)
    return int(p.stdout) if p.returncode == 0 and p.stdout.strip() else 0


def free_port(used=()):
    """A TCP port of CONTROLLER_PORTS nobody listens on (and not in used)."""
    for p in CONTROLLER_PORTS:
        if p in used:
            continue
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise StepFailed(f"no free TCP port in {CONTROLLER_PORTS.start}-{CONTROLLER_PORTS.stop - 1}")


def query_status(path, timeout=5.0):
    """The JSON document an app's status socket answers (stp and vrrp apps)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(b"status\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    return json.loads(b"".join(chunks))


class Controller:
    """One `python -m controller.launcher APP... --config FILE` process."""

    def __init__(self, topo, name, apps, config_text, status_option=None):
        self.topo = topo
        self.name = name
        self.apps = list(apps)
        self.config = Path(topo.tmpdir) / f"{name}.toml"
        self.config.write_text(config_text)
        self.sock = str(Path(topo.tmpdir) / f"{name}.sock")
        self.status_option = status_option      # e.g. --vrrp-status-socket
        self.port = None
        self.proc = None

    def command(self):
        cmd = [sys.executable, "-m", "controller.launcher"] + self.apps + [
            "--ofp-tcp-listen-port", str(self.port), "--ofp-listen-host", "127.0.0.1",
            "--config", str(self.config)]
        if self.status_option:
            cmd += [self.status_option, self.sock]
        return cmd

    def start(self, report, used_ports=()):
        """launch() then wait_ready()."""
        self.launch(report, used_ports)
        return self.wait_ready()

    def launch(self, report, used_ports=()):
        """Starts the process (echoing its command line) without waiting."""
        self.port = free_port(used_ports)
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        cmd = self.command()
        report.show_cmd(["python"] + cmd[1:], background=True)
        self.proc = self.topo.popen(cmd, name=f"controller-{self.name}", env=vdp_env(),
                                    cwd=str(REPO))
        self.topo.controllers.append(self)
        return self

    def wait_ready(self):
        """Waits until the app answers on its status socket."""
        wait_for(self._ready, timeout=WAIT, interval=0.2,
                 what=f"controller {self.name}: status socket {self.sock}")
        return self

    def _ready(self):
        if self.proc.poll() is not None:
            raise StepFailed(f"controller {self.name} exited with status "
                             f"{self.proc.returncode}:\n{tail(self.log_text(), 30)}")
        try:
            return self.status()
        except (OSError, ValueError):
            return None

    def status(self):
        return query_status(self.sock)

    def show_status(self, report, module):
        """Runs and echoes `python -m MODULE status --socket SOCK`."""
        cmd = [sys.executable, "-m", module, "status", "--socket", self.sock]
        report.show_cmd(["python"] + cmd[1:])
        p = run(cmd, check=False, env=vdp_env(), cwd=str(REPO), timeout=60)
        text = (p.stdout if p.returncode == 0 else p.stdout + p.stderr).rstrip()
        if text:
            report.say(text)
        return p.returncode == 0

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_text(self):
        try:
            return Path(self.proc.vdpt_stderr).read_text(errors="replace")
        except (OSError, TypeError, AttributeError):
            return ""


# --------------------------------------------------------------------------
# the outage probe

PROBE_SCRIPT = str(Path(__file__).resolve().parent / "demo_probe.py")
PROBE_PORT = 47930


class Probe:
    """UDP datagrams every `period` s from namespace `src` to an echo
    server in `dst` (at dst_ip), echoed back; records when each echo
    returns.  outage(t0) = the longest silence between echoes that ends
    after t0 (a failure at t0): how long traffic stopped."""

    def __init__(self, topo, name, src, dst, dst_ip, period=0.01):
        self.topo = topo
        self.name = name
        self.period = period
        self.out = Path(topo.tmpdir) / f"probe-{name}.json"
        self.live = Path(topo.tmpdir) / f"probe-{name}.live"
        self.echo = topo.popen(in_ns(dst, [sys.executable, PROBE_SCRIPT, "echo", PROBE_PORT]),
                               name=f"echo-{name}")
        self._wait_ready(self.echo, "echo server")
        self.proc = topo.popen(in_ns(src, [sys.executable, PROBE_SCRIPT, "probe", dst_ip,
                                           PROBE_PORT, period, self.out, self.live]),
                               name=f"probe-{name}")
        self._wait_ready(self.proc, "probe")

    @staticmethod
    def _wait_ready(proc, what):
        def ready():
            if proc.poll() is not None:
                raise StepFailed(f"{what} exited: {Path(proc.vdpt_stderr).read_text()[-500:]}")
            return "ready" in Path(proc.vdpt_stdout).read_text()
        wait_for(ready, timeout=WAIT, interval=0.1, what=what)

    def echoes_since(self, t):
        """Echoes that came back after monotonic time t (from the live file
        the probe rewrites about every 50 ms: the last arrival times)."""
        try:
            times = [float(x) for x in self.live.read_text().split()]
        except (OSError, ValueError):
            return 0
        return sum(1 for x in times if x > t)

    def wait_flowing(self, timeout=WAIT, n=20):
        """Waits until echoes come back steadily (ARP resolved, MACs learned)."""
        t = time.monotonic()
        wait_for(lambda: self.echoes_since(t) >= n, timeout=timeout, interval=0.1,
                 what=f"echoes of probe {self.name}")

    def wait_resumed(self, t0, timeout=WAIT, span=1.0):
        """Waits until echoes come back again after t0: at least half of
        those sent in `span` s."""
        need = max(5, int(span / self.period / 2))
        wait_for(lambda: self.echoes_since(t0) >= need, timeout=timeout, interval=0.1,
                 what=f"probe {self.name}: traffic after the failure")

    def stop(self):
        """Stops the probe; returns its echoes [(seq, t_sent, t_back)]."""
        for p in (self.proc, self.echo):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in (self.proc, self.echo):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        try:
            data = json.loads(self.out.read_text())
        except (OSError, ValueError):
            return [], 0
        return [tuple(e) for e in data["echoes"]], data["sent"]

    @staticmethod
    def outage(echoes, t0):
        """(silence, lost, back): the longest gap between echo arrivals
        ending after t0, the probes missing in it, and when the first echo
        after it came back (seconds after t0).  None when nothing came
        back after t0."""
        echoes = sorted(echoes, key=lambda e: e[2])
        best = None
        for a, b in zip(echoes, echoes[1:]):
            if b[2] >= t0 and (best is None or b[2] - a[2] > best[1][2] - best[0][2]):
                best = (a, b)
        if best is None:
            return None
        a, b = best
        got = {e[0] for e in echoes}
        lost = sum(1 for q in range(a[0] + 1, b[0]) if q not in got)
        return b[2] - a[2], lost, b[2] - t0


def ms(seconds):
    return f"{seconds * 1000:.0f} ms"
