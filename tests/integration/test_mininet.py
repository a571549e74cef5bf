"""vdp as Mininet's switch (datapath/mininet.py): the `mn --custom` command
line against a real OpenFlow controller, the Python API (addSwitch(cls=
VdpSwitch)) with pingAll and TCP iperf, and fail modes without a controller.

The controller is examples/learning_switch.py (an os-ken OF1.3 learning
switch) on 127.0.0.1, ports 16770-16789 (this file's range).

Mininet is the Debian package (for the system Python); datapath.mininet
loads it into this Python when needed, and everything here is skipped when
that is impossible.  Names: the Python API tests use vdpt-prefixed nodes
(vdpts1, vdpth1: interfaces vdpts1-eth1...); the `mn` command line can only
use Mininet's own (s1, h1, s1-eth1), and the test removes them afterwards.
`mn` runs through a wrapper whose failure cleanup stops only this network:
Mininet's own (`mn -c`) would delete every Open vSwitch bridge on the
machine, other tests' included.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

try:
    from datapath import mininet as vmn
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.node import RemoteController
except ImportError as e:                      # no Mininet for this Python nor the system's
    pytest.skip(f"Mininet is not importable: {e}", allow_module_level=True)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LEARNING_APP = REPO / "examples" / "learning_switch.py"
PORT_MN_CLI = 16770          # controller for the `mn` command line test
PORT_API = 16771             # controller for the Python API test
LISTEN_BASE = 16785          # mn --listenport: switches listen on 16785..16788

# The `mn` wrapper: runs /usr/bin/mn itself, but Mininet's cleanup (run by
# mn when it fails or is interrupted) is replaced by stopping this run's
# networks and calling the registered cleanup callbacks (VdpSwitch's).
MN_WRAPPER = r'''
import runpy, sys
import mininet.clean, mininet.net
nets = []
_init = mininet.net.Mininet.__init__
def _record(self, *a, **kw):
    nets.append(self)
    _init(self, *a, **kw)
mininet.net.Mininet.__init__ = _record
def _cleanup_this_run_only():
    for net in nets:
        try:
            net.stop()
        except Exception as e:
            print("net.stop failed: %r" % (e,), file=sys.stderr)
    for callback in list(mininet.clean.Cleanup.callbacks):
        callback()
mininet.clean.cleanup = _cleanup_this_run_only
mininet.clean.Cleanup.cleanup = classmethod(lambda cls: _cleanup_this_run_only())
mn = sys.argv[1]
sys.argv = [mn] + sys.argv[2:]
runpy.run_path(mn, run_name="__main__")
'''


def _need(*tools):
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def _env(run_dir=None):
    env = vmn.vdp_env()
    if run_dir:
        env["VDP_MININET_DIR"] = str(run_dir)
    return env


def _wait_listening(port, proc, log, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"controller exited ({proc.returncode}):\n{Path(log).read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"controller not listening on {port}:\n{Path(log).read_text()[-3000:]}")


@pytest.fixture
def tmp_run_dir():
    d = tempfile.mkdtemp(prefix="vdpt-mn-")
    try:
        yield Path(d)
    finally:
        # Any daemon a test left behind (recorded there by VdpSwitch).
        vmn.cleanup_vdp_daemons(run_dir=d)
        if not os.environ.get("VDPT_KEEP_TMP"):
            shutil.rmtree(d, ignore_errors=True)


def _start_controller(port, log_path):
    try:
        import os_ken  # noqa: F401
    except ImportError:
        pytest.skip("os-ken is not installed")
    log = open(log_path, "w")
    proc = subprocess.Popen([sys.executable, str(LEARNING_APP), "--ofp-tcp-listen-port", str(port),
                             "--ofp-listen-host", "127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=_env(), cwd=tempfile.gettempdir(), start_new_session=True)
    log.close()
    try:
        _wait_listening(port, proc, log_path)
    except Exception:
        _stop(proc)
        raise
    return proc


def _stop(proc, timeout=15):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture
def controller(request, tmp_run_dir):
    """The learning-switch controller on the port the test asks for
    (indirect parametrisation is overkill: tests call it)."""
    procs = []

    def start(port):
        p = _start_controller(port, tmp_run_dir / f"controller-{port}.log")
        procs.append(p)
        return p
    yield start
    for p in procs:
        _stop(p)


def _links():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return {m.group(1) for m in re.finditer(r"^\d+: ([^:@\s]+)", out, re.M)}


def _rate_bits(text):
    """'3.2 Gbits/sec' -> bits per second."""
    m = re.match(r"([\d.]+) ([KMGT]?)bits/sec", text.strip())
    assert m, f"not an iperf rate: {text!r}"
    return float(m.group(1)) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}[m.group(2)]


def _daemon_pids(run_dir):
    pids = {}
    for f in Path(run_dir).glob("*.pid"):
        pids[f.stem] = json.loads(f.read_text())["pid"]
    return pids


def _assert_stopped(switches):
    for sw in switches:
        assert sw.daemon is not None, f"{sw.name} never started vdp"
        assert sw.daemon.poll() is not None, f"{sw.name}: vdp (pid {sw.daemon.pid}) still running"
        assert sw.daemon.returncode == 0, f"{sw.name}: vdp exited {sw.daemon.returncode}:\n{sw.logTail()}"
        assert not os.path.exists(sw.pidPath) and not os.path.exists(sw.ctlPath)


# ---------------------------------------------------------------- mn command line

def test_mn_cli_linear4_pingall_iperf(controller, tmp_run_dir):
    """mn --custom datapath/mininet.py --switch vdp --controller remote,...
    --topo linear,4 --test pingall --test iperf: 0% dropped, a TCP rate."""
    _need("mn", "mnexec", "ping", "iperf", "ss")
    mn = shutil.which("mn")
    with open(mn, "rb") as f:
        shebang = f.readline().decode().strip()
    mn_python = shebang[2:].split()[0] if shebang.startswith("#!") else "/usr/bin/python3"
    controller(PORT_MN_CLI)
    ours = {f"{n}{i}-eth{j}" for n in "sh" for i in range(1, 5) for j in range(0, 4)}
    clash = ours & _links()
    if clash:
        pytest.skip(f"another Mininet network is up here ({sorted(clash)[:3]}...)")
    wrapper = tmp_run_dir / "mn_wrapper.py"
    wrapper.write_text(MN_WRAPPER)
    cmd = [mn_python, str(wrapper), mn, "--custom", str(REPO / "datapath" / "mininet.py"),
           "--switch", "vdp", "--controller", f"remote,ip=127.0.0.1,port={PORT_MN_CLI}",
           "--listenport", str(LISTEN_BASE), "--topo", "linear,4",
           "--test", "pingall", "--test", "iperf"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=_env(tmp_run_dir), cwd=tempfile.gettempdir(),
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        try:
            out, _ = proc.communicate(timeout=180)      # ~25 s normally
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)        # mn cleans up (our wrapper's way)
            try:
                out, _ = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            pytest.fail(f"mn did not finish:\n{out[-6000:]}")
        print("".join(line + "\n" for line in out.splitlines() if "Results" in line))
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(tmp_run_dir.glob("s*.log")))
        assert proc.returncode == 0, f"mn failed ({proc.returncode}):\n{out[-6000:]}\n{logs}"
        assert "*** Results: 0% dropped (12/12 received)" in out, f"{out[-6000:]}\n{logs}"
        m = re.search(r"\*\*\* Results: \['([^']+)', '([^']+)'\]", out)
        assert m, f"no iperf result:\n{out[-6000:]}"
        assert _rate_bits(m.group(1)) > 0 and _rate_bits(m.group(2)) > 0, m.group(0)
        # Every switch was a vdp daemon that reached the controller and stopped cleanly.
        for i in range(1, 5):
            log = (tmp_run_dir / f"s{i}.log").read_text()
            assert f"dpid {i:016x}" in log, log[-2000:]
            assert "connected (controller)" in log, log[-2000:]
            assert log.rstrip().endswith("stopped"), log[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        vmn.cleanup_vdp_daemons(run_dir=tmp_run_dir)
        for name in ours & _links():
            subprocess.run(["ip", "link", "del", name], capture_output=True)
    assert not _daemon_pids(tmp_run_dir), "pid files left behind"
    left = ours & _links()
    assert not left, f"mn left interfaces behind: {sorted(left)}"


# ---------------------------------------------------------------- Python API

def _linear(net, n, **swopts):
    hosts, switches = [], []
    for i in range(1, n + 1):
        sw = net.addSwitch(f"vdpts{i}", cls=vmn.VdpSwitch, **swopts)
        h = net.addHost(f"vdpth{i}")
        net.addLink(h, sw)
        if switches:
            net.addLink(switches[-1], sw)
        hosts.append(h)
        switches.append(sw)
    return hosts, switches


def test_api_remote_controller_pingall_iperf(controller, tmp_run_dir):
    """addSwitch(cls=VdpSwitch) x3 with a remote controller: connected(),
    pingAll 0% loss, TCP iperf end to end with a positive rate."""
    _need("mnexec", "ping", "iperf", "ss")
    controller(PORT_API)
    setLogLevel("info")
    net = Mininet(controller=None, build=False, autoSetMacs=True)
    switches = []
    try:
        net.addController("vdptc0", controller=RemoteController, ip="127.0.0.1", port=PORT_API)
        hosts, switches = _linear(net, 3, runDir=str(tmp_run_dir))
        net.start()
        assert net.waitConnected(timeout=60), [(s.name, s.logTail()) for s in switches]
        for i, sw in enumerate(switches, 1):
            shown = sw.show()
            assert shown["dpid"] == f"{i:016x}"
            assert shown["fail_mode"] == "secure"
            assert [p["name"] for p in shown["ports"]] == [f"vdpts{i}-eth{j}" for j in
                                                           range(1, len(shown["ports"]) + 1)]
        assert net.pingAll() == 0
        server_rate, client_rate = vmn.vdp_iperf(net, [hosts[0], hosts[-1]], seconds=3)
        assert _rate_bits(server_rate) > 0 and _rate_bits(client_rate) > 0
        # The controller, not the switch, did the forwarding decisions.
        flows = switches[0].vdpctl("dump-flows")
        assert "CONTROLLER" in flows and "priority=10" in flows, flows
    finally:
        net.stop()
    _assert_stopped(switches)


def test_api_standalone_without_controller(tmp_run_dir):
    """failMode=standalone, no controller: the switches learn on their own;
    a port number with a gap (port 7) reaches vdp through its config file."""
    _need("mnexec", "ping")
    setLogLevel("info")
    net = Mininet(controller=None, build=False, autoSetMacs=True)
    switches = []
    try:
        hosts, switches = _linear(net, 2, runDir=str(tmp_run_dir), failMode="standalone")
        extra = net.addHost("vdpth9")
        net.addLink(extra, switches[-1], port2=7)
        net.start()
        assert all(sw.connected() for sw in switches)
        ports = {p["port"]: p["name"] for p in switches[-1].show()["ports"]}
        assert ports[7] == "vdpts2-eth7", ports
        assert switches[-1].show()["fail_mode"] == "standalone"
        assert net.pingAll() == 0
    finally:
        net.stop()
    _assert_stopped(switches)


def test_api_secure_without_controller_drops(tmp_run_dir):
    """The default fail mode is secure, as Mininet's OVSSwitch: with no
    controller nothing is forwarded and connected() says so."""
    _need("mnexec", "ping")
    setLogLevel("info")
    net = Mininet(controller=None, build=False, autoSetMacs=True)
    switches = []
    try:
        hosts, switches = _linear(net, 1, runDir=str(tmp_run_dir))
        h2 = net.addHost("vdpth2")
        net.addLink(h2, switches[0])
        net.start()
        assert switches[0].show()["fail_mode"] == "secure"
        assert switches[0].connected() is False
        assert net.ping(hosts + [h2], timeout=1) == 100
    finally:
        net.stop()
    _assert_stopped(switches)
