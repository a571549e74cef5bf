"""controller.launcher: loading os-ken apps, options, ending the run.

The launcher monkey-patches the process (eventlet) when imported, so every
test runs it in a subprocess: this pytest process stays unpatched."""
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# A tiny app: registers an option, proves hub.Timeout fires (it would hang
# under os-ken's default native hub), prints, and ends by itself or waits
# for a signal with --vdpt-app-forever.
APP = '''
from os_ken import cfg
from os_ken.base import app_manager
from os_ken.lib import hub

cfg.CONF.register_cli_opts([
    cfg.StrOpt("vdpt-greeting", default="none"),
    cfg.BoolOpt("vdpt-app-forever", default=False),
])


class Greeter(app_manager.OSKenApp):
    def start(self):
        super().start()
        return hub.spawn(self._run)

    def _run(self):
        fired = False
        try:
            with hub.Timeout(0.05):
                hub.Event().wait()
        except hub.Timeout:
            fired = True
        import eventlet.hubs
        print("greeting=%s timeout_fired=%s hub=%s loop=%s" % (
            cfg.CONF.vdpt_greeting, fired, hub.HUB_TYPE,
            type(eventlet.hubs.get_hub()).__module__), flush=True)
        while cfg.CONF.vdpt_app_forever:
            hub.sleep(0.05)

    def close(self):
        print("closed", flush=True)
'''


@pytest.fixture
def appdir(tmp_path):
    (tmp_path / "vdpt_greeter.py").write_text(textwrap.dedent(APP))
    return tmp_path


def launcher_env(extra_path=None, **extra):
    env = dict(os.environ)
    env.pop("OSKEN_HUB_TYPE", None)
    env.pop("EVENTLET_HUB", None)
    env.update(extra)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    parts += [str(REPO)] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def launch(args, extra_path=None, timeout=60, **env):
    return subprocess.run([sys.executable, "-m", "controller.launcher"] + args,
                          capture_output=True, text=True, timeout=timeout,
                          env=launcher_env(extra_path, **env), cwd="/", stdin=subprocess.DEVNULL)


def test_app_runs_with_its_options_and_eventlet_timeouts(appdir):
    p = launch(["vdpt_greeter", "--vdpt-greeting", "hello"], appdir)
    assert p.returncode == 0, p.stderr
    # eventlet with the select() hub: timers precise to the microsecond
    assert "greeting=hello timeout_fired=True hub=eventlet loop=eventlet.hubs.selects" in p.stdout
    # the app finished by itself and was closed
    assert p.stdout.rstrip().endswith("closed")


def test_explicit_eventlet_hub_is_respected(appdir):
    p = launch(["vdpt_greeter"], appdir, EVENTLET_HUB="poll")
    assert p.returncode == 0, p.stderr
    assert "loop=eventlet.hubs.poll" in p.stdout


def test_unknown_app_module_is_refused_by_name():
    p = launch(["vdpt_no_such_app_module"])
    assert p.returncode == 2
    assert "unknown app 'vdpt_no_such_app_module'" in p.stderr


def test_module_without_app_is_refused():
    p = launch(["json"])
    assert p.returncode == 2
    assert "unknown app 'json'" in p.stderr and "defines no os-ken app" in p.stderr


def test_unknown_option_is_refused_naming_it(appdir):
    p = launch(["vdpt_greeter", "--vdpt-no-such-option", "1"], appdir)
    assert p.returncode == 2
    assert "--vdpt-no-such-option" in p.stderr
    assert "greeting=" not in p.stdout      # nothing was started


def test_no_app_prints_usage():
    p = launch([])
    assert p.returncode == 2
    assert "usage:" in p.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_and_closes_apps(appdir, sig):
    proc = subprocess.Popen([sys.executable, "-m", "controller.launcher", "vdpt_greeter",
                             "--vdpt-app-forever"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=launcher_env(appdir), cwd="/", stdin=subprocess.DEVNULL)
    try:
        line = proc.stdout.readline()
        assert "greeting=none" in line, proc.stderr.read() if proc.poll() is not None else line
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "closed" in out


def free_port():
    for port in range(16700, 16750):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free port in 16700-16749")


def test_openflow_listen_options_reach_os_ken():
    """os-ken's own options (--ofp-listen-host, --ofp-tcp-listen-port) are
    honoured: the OpenFlow handler listens there and greets with HELLO."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "controller.launcher",
                             "os_ken.controller.ofp_handler",
                             "--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=launcher_env(), cwd="/", stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read()
                assert time.monotonic() < deadline, "launcher never listened"
                time.sleep(0.1)
        with s:
            hdr = s.recv(8)
        version, msg_type, length, _xid = struct.unpack("!BBHI", hdr)
        assert msg_type == 0 and version >= 1 and length >= 8     # OFPT_HELLO
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
