"""The `vdp` command line (datapath/cli.py): argument errors and forms."""
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from datapath import cli
from datapath import daemon

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VDP_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


@pytest.fixture
def captured_run(monkeypatch):
    """Replaces daemon.run: records the Config `vdp run` would start."""
    got = {}

    def fake_run(cfg, verbose=0, **kw):
        got["cfg"] = cfg
        got["verbose"] = verbose
        return 0
    monkeypatch.setattr(daemon, "run", fake_run)
    return got


def usage_error(capsys, argv):
    with pytest.raises(SystemExit) as ei:
        cli.main(argv)
    assert ei.value.code == 2
    return capsys.readouterr().err


# ---------------------------------------------------------------- top level

def test_no_command(capsys):
    assert cli.main([]) == 2
    assert "usage: vdp run" in capsys.readouterr().err


def test_help(capsys):
    assert cli.main(["--help"]) == 0
    assert "vdp ctl" in capsys.readouterr().out


def test_unknown_command(capsys):
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err


# ---------------------------------------------------------------- vdp run

@pytest.mark.parametrize("argv, words", [
    (["--port", "a", "--dpid", "xyz"], ["--dpid", "xyz"]),
    (["--port", "a", "--dpid", "0x1ffffffffffffffff"], ["--dpid", "0x1ffffffffffffffff"]),
    (["--port", "a", "--fail-mode", "open"], ["--fail-mode", "open"]),
    (["--port", "a/b"], ["--port", "a/b"]),
    (["--port", "tap:"], ["--port", "tap:"]),
    (["--port", "a", "--controller", "tcp:nohost:6653"], ["--controller", "nohost"]),
    (["--port", "a", "--controller", "udp:1.2.3.4:1"], ["--controller", "udp:1.2.3.4:1"]),
    (["--port", "a", "--listen", "ptcp:99999"], ["--listen", "99999"]),
    (["--port", "a", "--name", "a/b"], ["--name", "a/b"]),
    (["--port", "a", "--bogus"], ["--bogus"]),
    (["--port"], ["--port", "expected one argument"]),
])
def test_run_bad_flags(capsys, captured_run, argv, words):
    err = usage_error(capsys, ["run"] + argv)
    for w in words:
        assert w in err, err
    assert "cfg" not in captured_run


def test_run_needs_a_port(capsys, captured_run):
    assert cli.main(["run"]) == 2
    assert "no ports" in capsys.readouterr().err


def test_run_duplicate_port_flag(capsys, captured_run):
    assert cli.main(["run", "--port", "a", "--port", "a"]) == 2
    err = capsys.readouterr().err
    assert "--port" in err and "'a' given twice" in err


def test_run_bad_config_file(tmp_path, capsys, captured_run):
    p = tmp_path / "c.toml"
    p.write_text('ports = ["a"]\nfail_mode = "open"\n')
    assert cli.main(["run", "--config", str(p)]) == 2
    err = capsys.readouterr().err
    assert "fail_mode" in err and "line 2" in err and "'open'" in err


def test_run_missing_config_file(tmp_path, capsys, captured_run):
    assert cli.main(["run", "--config", str(tmp_path / "nope.toml"), "--port", "a"]) == 2
    assert "cannot read config" in capsys.readouterr().err


@pytest.mark.parametrize("text, dpid", [
    ("1", 1), ("0x1f", 31), ("0000000000000001", 1), ("0000000000000010", 16),
    ("00:00:00:00:00:00:00:02", 2), ("123456789", 123456789),
])
def test_run_dpid_forms(captured_run, text, dpid):
    assert cli.main(["run", "--port", "veth0", "--dpid", text]) == 0
    assert captured_run["cfg"].dpid == dpid


def test_run_builds_config(captured_run, run_dir):
    rc = cli.main(["run", "--name", "s1", "--port", "veth0", "--port", "tap:t0",
                   "--controller", "tcp:127.0.0.1:6653", "--listen", "ptcp:6634",
                   "--fail-mode", "secure", "-v"])
    assert rc == 0
    cfg = captured_run["cfg"]
    assert cfg.name == "s1"
    assert cfg.ctl == str(run_dir / "s1.ctl")
    assert [(p.name, p.type, p.ofport) for p in cfg.ports] == [("veth0", "afpacket", 1),
                                                               ("t0", "tap", 2)]
    assert [str(c) for c in cfg.controllers] == ["tcp:127.0.0.1:6653"]
    assert [str(x) for x in cfg.listen] == ["ptcp:6634:127.0.0.1"]
    assert cfg.fail_mode == "secure"
    assert captured_run["verbose"] == 1


def test_run_flags_override_config(tmp_path, captured_run):
    p = tmp_path / "c.toml"
    p.write_text('name = "file"\nports = ["a", "b"]\nfail_mode = "secure"\n')
    assert cli.main(["run", "--config", str(p), "--name", "flag", "--ctl", "/tmp/z.ctl"]) == 0
    cfg = captured_run["cfg"]
    assert (cfg.name, cfg.ctl, cfg.fail_mode) == ("flag", "/tmp/z.ctl", "secure")
    assert [p.name for p in cfg.ports] == ["a", "b"]


def test_run_exit_status_is_daemons(monkeypatch):
    monkeypatch.setattr(daemon, "run", lambda cfg, verbose=0, **kw: 1)
    assert cli.main(["run", "--port", "a"]) == 1


# ---------------------------------------------------------------- vdp run: TLS

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and a switch key + certificate it signed (openssl)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("pki")

    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca",
            "-keyout", d / "ca.key", "-out", d / "ca.crt")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=sw", "-keyout", d / "sw.key",
            "-out", d / "sw.csr")
    openssl("x509", "-req", "-in", d / "sw.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
            "-CAcreateserial", "-days", "2", "-out", d / "sw.crt")
    return {p.name: str(p) for p in d.iterdir()}


def test_run_tls_flags(captured_run, pki):
    rc = cli.main(["run", "--port", "a", "--controller", "ssl:127.0.0.1:6653",
                   "--listen", "pssl:6634", "--ssl-key", pki["sw.key"],
                   "--ssl-cert", pki["sw.crt"], "--ssl-ca", pki["ca.crt"]])
    assert rc == 0
    cfg = captured_run["cfg"]
    assert cfg.tls() == {"key": pki["sw.key"], "cert": pki["sw.crt"], "ca": pki["ca.crt"]}
    assert [str(c) for c in cfg.controllers] == ["ssl:127.0.0.1:6653"]
    assert [str(x) for x in cfg.listen] == ["pssl:6634:127.0.0.1"]


def test_run_tls_flags_override_the_config_file(captured_run, pki, tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(f'ports = ["a"]\nlisten = "pssl:6634"\nssl_key = "{pki["sw.key"]}"\n'
                 f'ssl_cert = "{pki["sw.crt"]}"\nssl_ca = "/nowhere/ca.crt"\n')
    assert cli.main(["run", "--config", str(p), "--ssl-ca", pki["ca.crt"]]) == 0
    assert captured_run["cfg"].ssl_ca == pki["ca.crt"]


def test_run_tls_target_without_files(capsys, captured_run, pki):
    assert cli.main(["run", "--port", "a", "--listen", "pssl:6634",
                     "--ssl-key", pki["sw.key"], "--ssl-cert", pki["sw.crt"]]) == 2
    err = capsys.readouterr().err
    assert "vdp run: error: --listen: pssl:6634:127.0.0.1 needs" in err
    assert "missing --ssl-ca (ssl_ca)" in err and "--ssl-key (" not in err
    assert "cfg" not in captured_run


def test_run_tls_bad_file(capsys, captured_run, pki, tmp_path):
    assert cli.main(["run", "--port", "a", "--controller", "ssl:127.0.0.1:1",
                     "--ssl-key", str(tmp_path / "gone.key"), "--ssl-cert", pki["sw.crt"],
                     "--ssl-ca", pki["ca.crt"]]) == 2
    err = capsys.readouterr().err
    assert "vdp run: error: --ssl-key: private key " in err and "gone.key: no such file" in err
    assert cli.main(["run", "--port", "a", "--ssl-key", pki["sw.key"],
                     "--ssl-cert", pki["ca.crt"], "--ssl-ca", pki["ca.crt"]]) == 2
    err = capsys.readouterr().err
    assert "--ssl-key: " in err and "not the PEM private key of" in err
    assert "cfg" not in captured_run


def test_run_help_lists_tls_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    for flag in ("--ssl-key FILE", "--ssl-cert FILE", "--ssl-ca FILE"):
        assert flag in out
    assert cli.main(["--help"]) == 0
    assert "--ssl-key FILE --ssl-cert FILE --ssl-ca FILE" in capsys.readouterr().out


# ---------------------------------------------------------------- vdp ctl

def ctl(argv):
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main_ctl(argv, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv, words", [
    (["frobnicate"], ["invalid choice", "frobnicate"]),
    ([], ["CMD"]),
    (["--bogus", "show"], ["--bogus"]),
])
def test_ctl_argparse_errors(capsys, argv, words):
    err = usage_error(capsys, ["ctl"] + argv)
    for w in words:
        assert w in err, err


@pytest.mark.parametrize("argv, words", [
    (["add-flow"], ["add-flow", "missing FLOW"]),
    (["add-flows"], ["add-flows", "missing FILE"]),
    (["add-flows", "a", "b"], ["unexpected argument 'b'"]),
    (["show", "extra"], ["show", "unexpected argument 'extra'"]),
    (["dump-ports", "x"], ["unexpected argument 'x'"]),
    (["del-groups", "group_id=1", "group_id=2"], ["unexpected argument 'group_id=2'"]),
    (["--strict", "dump-flows"], ["--strict", "del-flows"]),
])
def test_ctl_usage_errors_exit_2(argv, words):
    rc, out, err = ctl(argv)
    assert rc == 2
    for w in words:
        assert w in err, err


def test_ctl_no_daemon_exit_1(tmp_path):
    rc, out, err = ctl(["--ctl", str(tmp_path / "none.ctl"), "show"])
    assert rc == 1
    assert "cannot connect" in err and "none.ctl" in err


def test_ctl_default_path_under_run_dir(run_dir):
    rc, out, err = ctl(["show"])
    assert rc == 1 and str(run_dir / "vdp0.ctl") in err


def test_ctl_add_flows_unreadable_file(tmp_path):
    rc, out, err = ctl(["--ctl", str(tmp_path / "x.ctl"), "add-flows", str(tmp_path / "nope")])
    assert rc == 1 and "cannot read" in err


def test_ctl_intermixed_options(tmp_path):
    # options after the command are fine too
    rc, out, err = ctl(["dump-flows", "--ctl", str(tmp_path / "x.ctl"), "--json", "in_port=1"])
    assert rc == 1 and "x.ctl" in err


def test_python_m_entry_point():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    p = subprocess.run([sys.executable, "-m", "datapath.cli", "run", "--dpid", "bad", "--port", "a"],
                       capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert p.returncode == 2
    assert "--dpid" in p.stderr and "bad" in p.stderr


# ---------------------------------------------------------------- bonds

def test_run_bonds_and_ports_numbered_in_order(captured_run):
    rc = cli.main(["run", "--port", "a", "--bond", "b0=x,y", "--port", "tap:t", "--bond",
                   "b1=u,v,w", "--bond-mode", "balance-tcp", "--lacp", "active",
                   "--lacp-time", "fast", "--lacp-system-priority", "100", "--lacp-key", "7",
                   "--lacp-system-id", "02:00:00:00:00:aa", "--lacp-port-priority", "9",
                   "--lacp-fallback", "--bond-rebalance-interval", "0"])
    assert rc == 0
    cfg = captured_run["cfg"]
    assert [(p.ofport, p.name, p.type) for p in cfg.ports] == [
        (1, "a", "afpacket"), (2, "b0", "bond"), (3, "t", "tap"), (4, "b1", "bond")]
    b = cfg.ports[3].bond
    assert b.member_names() == ["u", "v", "w"]
    assert (b.mode, b.lacp, b.lacp_time, b.system_priority, b.key, b.system_id, b.fallback,
            b.rebalance_interval) == ("balance-l4", "active", "fast", 100, 7,
                                      "02:00:00:00:00:aa", True, 0.0)
    assert [m.port_priority for m in b.members] == [9, 9, 9]
    assert [i.name for i in cfg.interfaces()] == ["a", "x", "y", "t", "u", "v", "w"]


def test_run_bond_alone_is_valid_with_defaults(captured_run):
    assert cli.main(["run", "--bond", "bond0=e1,e2"]) == 0
    cfg = captured_run["cfg"]
    assert [(p.ofport, p.name) for p in cfg.ports] == [(1, "bond0")]
    b = cfg.ports[0].bond
    assert (b.mode, b.lacp, b.lacp_time, b.fallback, b.key) == (
        "active-backup", "off", "slow", False, None)


@pytest.mark.parametrize("argv, words", [
    (["--bond", "b0"], ["--bond", "NAME=IF1,IF2"]),
    (["--bond", "b0=a,,b"], ["--bond", "empty member"]),
    (["--bond", "b/0=a,b"], ["--bond", "bad bond name"]),
    (["--bond", "b0=a,b/c"], ["--bond", "b/c"]),
    (["--bond", "b0=a,b", "--lacp", "on"], ["--lacp", "'on'"]),
    (["--bond", "b0=a,b", "--lacp-time", "medium"], ["--lacp-time"]),
    (["--bond", "b0=a,b", "--lacp-key", "x"], ["--lacp-key"]),
])
def test_run_bad_bond_flags(capsys, captured_run, argv, words):
    err = usage_error(capsys, ["run"] + argv)
    for w in words:
        assert w in err, err
    assert "cfg" not in captured_run


@pytest.mark.parametrize("argv, words", [
    (["--bond", "b0=a,b", "--bond-mode", "round-robin"], ["--bond-mode", "round-robin"]),
    (["--bond", "b0=a,a"], ["--bond", "member 'a' given twice"]),
    (["--bond", "b0=a,b", "--bond", "b1=b,c"], ["--bond", "bond b1", "'b'", "bond b0"]),
    (["--port", "a", "--bond", "b0=a,b"], ["--bond", "'a'", "already used by a port"]),
    (["--bond", "b0=a,b", "--port", "b"], ["--port", "'b'", "member of bond b0"]),
    (["--port", "b0", "--bond", "b0=a,b"], ["'b0'", "both a port and a bond"]),
    (["--bond", "b0=a,b", "--lacp-key", "0"], ["--lacp-key", "1..65535"]),
    (["--bond", "b0=a,b", "--lacp-system-id", "01:00:00:00:00:01"], ["--lacp-system-id",
                                                                     "unicast"]),
    (["--bond", "b0=a,b", "--lacp-port-priority", "70000"], ["--lacp-port-priority"]),
    (["--bond", "b0=" + ",".join(f"e{i}" for i in range(17))], ["--bond", "at most 16"]),
])
def test_run_bond_config_errors_refuse_all(capsys, captured_run, argv, words):
    assert cli.main(["run"] + argv) == 2
    err = capsys.readouterr().err
    for w in words:
        assert w in err, err
    assert "cfg" not in captured_run


def test_run_help_lists_bond_flags(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    out = capsys.readouterr().out
    for f in ("--bond", "--bond-mode", "--lacp", "--lacp-time", "--lacp-system-priority",
              "--lacp-key", "--lacp-port-priority", "--lacp-fallback"):
        assert f in out


def test_vdp_controller_command_lines():
    """`vdp controller` maps app names to os-ken app modules and hands every
    option to the launcher; status goes to the app's status client."""
    py = [sys.executable, "-m"]
    assert cli.controller_argv([]) == py + ["controller.launcher", "controller.l2.app"]
    assert cli.controller_argv(["l2", "stp", "--config", "c.toml", "--ofp-tcp-listen-port",
                                "6653"]) == py + [
        "controller.launcher", "controller.l2.app", "controller.stp.app", "--config", "c.toml",
        "--ofp-tcp-listen-port", "6653"]
    assert cli.controller_argv(["vrrp", "my.app"])[-2:] == ["controller.vrrp.app", "my.app"]
    assert cli.controller_argv(["status", "vrrp", "--json"]) == py + [
        "controller.vrrp.app", "status", "--json"]
    for bad in (["bogus"], ["status"], ["status", "l2"]):
        with pytest.raises(ValueError):
            cli.controller_argv(bad)
    assert cli.main(["controller", "bogus"]) == 2
