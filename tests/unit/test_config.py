"""The `vdp run` configuration: TOML + flags (datapath/config.py)."""
import os
import shutil
import subprocess
import textwrap

import pytest

from datapath import config as C
from datapath import model as M
from datapath.config import ConfigError, load_config


@pytest.fixture(autouse=True)
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VDP_RUN_DIR", str(tmp_path / "run"))
    return tmp_path / "run"


def _openssl(*args):
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """Throwaway TLS files: a CA, a switch key+certificate signed by it, a
    second unrelated key, an encrypted key and files that are not PEM."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ca",
             "-keyout", d / "ca.key", "-out", d / "ca.crt")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=sw", "-keyout", d / "sw.key",
             "-out", d / "sw.csr")
    _openssl("x509", "-req", "-in", d / "sw.csr", "-CA", d / "ca.crt", "-CAkey", d / "ca.key",
             "-CAcreateserial", "-days", "2", "-out", d / "sw.crt")
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", d / "other.key")
    _openssl("pkey", "-in", d / "sw.key", "-aes256", "-passout", "pass:secret",
             "-out", d / "enc.key")
    (d / "junk.pem").write_text("not a certificate\n")
    return {p.name: str(p) for p in d.iterdir()}


def toml(tmp_path, text, name="vdp.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def error_of(tmp_path, text, overrides=None):
    with pytest.raises(ConfigError) as ei:
        load_config(toml(tmp_path, text), overrides)
    return str(ei.value)


# ---------------------------------------------------------------- good configs

def test_full_file(tmp_path, run_dir, pki):
    for name in ("ca.crt", "sw.key", "sw.crt"):
        shutil.copy(pki[name], tmp_path / name)
    path = toml(tmp_path, """\
        name = "br1"
        dpid = "0000000000000010"
        fail_mode = "secure"
        ctl = "/tmp/x.ctl"
        controllers = ["tcp:127.0.0.1:6653", "ssl:[::1]:6654", "tcp:10.0.0.1"]
        ssl_key = "sw.key"
        ssl_cert = "sw.crt"
        ssl_ca = "ca.crt"
        listen = "ptcp:6634"
        ports = ["veth0", "tap:tap0", {name = "veth1", type = "afpacket", ofport = 7}, "eth9"]
        flows = ["in_port=veth0,actions=output:tap0", "priority=0,actions=drop"]
        groups = ["group_id=1,type=all,bucket=output:1"]
        meters = ["meter=1,kbps,bands=type=drop,rate=1000"]
        """)
    cfg = load_config(path)
    assert cfg.name == "br1"
    assert cfg.dpid == 16
    assert cfg.fail_mode == "secure"
    assert cfg.ctl == "/tmp/x.ctl"
    assert cfg.controllers == [C.ControllerTarget("tcp", "127.0.0.1", 6653),
                               C.ControllerTarget("ssl", "::1", 6654),
                               C.ControllerTarget("tcp", "10.0.0.1", 6653)]
    assert cfg.listen == [C.ListenTarget("ptcp", 6634, "127.0.0.1")]
    assert [(p.name, p.type, p.ofport) for p in cfg.ports] == [
        ("veth0", "afpacket", 1), ("tap0", "tap", 2), ("veth1", "afpacket", 7),
        ("eth9", "afpacket", 3)]
    assert cfg.flows[0].match.fields == {"in_port": (1, None)}
    assert cfg.flows[0].instructions[0].actions == (M.Output(2),)
    assert cfg.flow_texts[1] == "priority=0,actions=drop"
    assert cfg.groups[0].group_id == 1 and cfg.meters[0].meter_id == 1
    assert cfg.source == path
    # TLS paths in a file are relative to the file
    assert (cfg.ssl_key, cfg.ssl_cert, cfg.ssl_ca) == (
        str(tmp_path / "sw.key"), str(tmp_path / "sw.crt"), str(tmp_path / "ca.crt"))
    assert cfg.tls() == {"key": cfg.ssl_key, "cert": cfg.ssl_cert, "ca": cfg.ssl_ca}
    assert cfg.uses_tls()


def test_port_tables(tmp_path):
    cfg = load_config(toml(tmp_path, """\
        [[ports]]
        name = "a"
        ofport = 2

        [[ports]]
        name = "b"
        type = "tap"

        [[ports]]
        name = "c"
        """))
    assert [(p.name, p.type, p.ofport) for p in cfg.ports] == [
        ("a", "afpacket", 2), ("b", "tap", 1), ("c", "afpacket", 3)]


def test_defaults(run_dir):
    cfg = load_config(None, {"ports": ["veth0"]})
    assert cfg.name == "vdp0"
    assert cfg.dpid is None
    assert cfg.fail_mode == "standalone"
    assert cfg.ctl == str(run_dir / "vdp0.ctl")
    assert cfg.controllers == [] and cfg.listen == [] and cfg.flows == []
    assert cfg.ports[0].ofport == 1


def test_ctl_default_follows_name(run_dir):
    assert load_config(None, {"name": "s1"}).ctl == str(run_dir / "s1.ctl")


def test_flags_override_file(tmp_path):
    path = toml(tmp_path, """\
        name = "fromfile"
        dpid = 5
        fail_mode = "secure"
        ports = ["a", "b"]
        controllers = ["tcp:1.1.1.1:1"]
        """)
    cfg = load_config(path, {"name": "fromflag", "dpid": "0x9", "ports": ["c"],
                             "fail_mode": None, "controllers": ["tcp:2.2.2.2:2"]})
    assert cfg.name == "fromflag"
    assert cfg.dpid == 9
    assert cfg.fail_mode == "secure"            # None = flag not given: file value stays
    assert [p.name for p in cfg.ports] == ["c"]
    assert [str(c) for c in cfg.controllers] == ["tcp:2.2.2.2:2"]


@pytest.mark.parametrize("text, value", [
    (1, 1), ("1", 1), ("42", 42), ("0x10", 16), ("0X1f", 31),
    ("0000000000000001", 1), ("0000000000000010", 16), ("000000000000abcd", 0xABCD),
    ("00:00:00:00:00:00:00:01", 1), ("ffffffffffffffff", 2**64 - 1),
    ("18446744073709551615", 2**64 - 1), (0, 0),
])
def test_dpid_forms(text, value):
    assert C.parse_dpid(text) == value


@pytest.mark.parametrize("text", ["xyz", "-1", "0x", "0x1ffffffffffffffff",
                                  "18446744073709551616", "", "1.5", "00:01", True, 1.5, -3])
def test_dpid_bad(text):
    with pytest.raises(ValueError, match="dpid"):
        C.parse_dpid(text)


@pytest.mark.parametrize("text, target", [
    ("tcp:127.0.0.1:6653", ("tcp", "127.0.0.1", 6653)),
    ("ssl:10.0.0.1:6653", ("ssl", "10.0.0.1", 6653)),
    ("tcp:127.0.0.1", ("tcp", "127.0.0.1", 6653)),
    ("tcp:[::1]:1", ("tcp", "::1", 1)),
    ("tcp:[2001:db8::1]", ("tcp", "2001:db8::1", 6653)),
])
def test_controller_forms(text, target):
    assert tuple(C.parse_controller(text)) == target


@pytest.mark.parametrize("text", ["tcp:", "udp:1.2.3.4:5", "tcp:1.2.3:6653", "tcp:host:6653",
                                  "tcp:1.2.3.4:0", "tcp:1.2.3.4:65536", "tcp:1.2.3.4:x",
                                  "1.2.3.4:6653", "tcp:[::1", "ptcp:6653"])
def test_controller_bad(text):
    with pytest.raises(ValueError, match="controller|address|port"):
        C.parse_controller(text)


@pytest.mark.parametrize("text, target", [
    ("ptcp:6634", ("ptcp", 6634, "127.0.0.1")),
    ("ptcp:6634:127.0.0.1", ("ptcp", 6634, "127.0.0.1")),
    ("pssl:6653", ("pssl", 6653, "127.0.0.1")),
    ("ptcp:", ("ptcp", 6653, "127.0.0.1")),
    ("ptcp:1:[::1]", ("ptcp", 1, "::1")),
])
def test_listen_forms(text, target):
    assert tuple(C.parse_listen(text)) == target


@pytest.mark.parametrize("text", ["tcp:6634", "ptcp:0", "ptcp:70000", "ptcp:x",
                                  "ptcp:6634:nothost", "listen"])
def test_listen_bad(text):
    with pytest.raises(ValueError):
        C.parse_listen(text)


@pytest.mark.parametrize("text, port", [
    ("veth0", C.PortConfig("veth0", "afpacket")),
    ("afpacket:eth1", C.PortConfig("eth1", "afpacket")),
    ("tap:tap0", C.PortConfig("tap0", "tap")),
])
def test_port_arg(text, port):
    assert C.parse_port_arg(text) == port


@pytest.mark.parametrize("text", ["", "tap:", "a/b", "sixteen-chars-xx", "foo:bar", "a b"])
def test_port_arg_bad(text):
    with pytest.raises(ValueError):
        C.parse_port_arg(text)


# ---------------------------------------------------------------- errors

def test_unknown_key_names_key_and_line(tmp_path):
    msg = error_of(tmp_path, 'name = "x"\nbonds = []\n')
    assert "bonds" in msg and "line 2" in msg and "unknown key" in msg


def test_toml_syntax_error_has_line(tmp_path):
    msg = error_of(tmp_path, 'name = "x"\ndpid = \n')
    assert "line 2" in msg and "vdp.toml" in msg


@pytest.mark.parametrize("text, words", [
    ('name = 1', ["name", "expected a string", "line 1"]),
    ('name = "a/b"', ["name", "bad name"]),
    ('dpid = true', ["dpid", "boolean"]),
    ('dpid = "zz"', ["dpid", "bad dpid 'zz'"]),
    ('dpid = 1.5', ["dpid", "expected"]),
    ('fail_mode = "open"', ["fail_mode", "bad fail mode 'open'"]),
    ('ctl = 5', ["ctl", "expected a string"]),
    ('ctl = "/' + "x" * 120 + '"', ["ctl", "too long"]),
    ('controllers = "tcp:1.1.1.1:1"', ["controllers", "expected a list"]),
    ('controllers = [1]', ["controllers[0]", "expected a string"]),
    ('controllers = ["tcp:1.1.1.1:1", "tcp:nohost:1"]', ["controllers[1]", "nohost", "line 1"]),
    ('listen = ["ptcp:0"]', ["listen[0]", "bad TCP port '0'"]),
    ('listen = ["ptcp:1", "ptcp:1"]', ["listen[1]", "given twice"]),
    ('listen = 5', ["listen", "expected a list"]),
    ('ports = "veth0"', ["ports", "expected a list"]),
    ('ports = [5]', ["ports[0]", "expected a string or a table"]),
    ('ports = ["a", "a"]', ["ports[1]", "port 'a' given twice"]),
    ('ports = ["a", "tap:a"]', ["ports[1]", "port 'a' given twice"]),
    ('ports = ["bad/name"]', ["ports[0]", "bad interface name"]),
    ('ports = [{type = "tap"}]', ["ports[0]", "missing 'name'"]),
    ('ports = [{name = "a", kind = "tap"}]', ["ports[0]", "unknown key 'kind'"]),
    ('ports = [{name = "a", type = "xdp"}]', ["ports[0]", "bad type 'xdp'"]),
    ('ports = [{name = "a", ofport = 0}]', ["ports[0]", "bad ofport 0"]),
    ('ports = [{name = "a", ofport = "1"}]', ["ports[0]", "bad ofport '1'"]),
    ('ports = [{name = "a", ofport = 2}, {name = "b", ofport = 2}]', ["ports[1]", "ofport 2"]),
    ('flows = "in_port=1,actions=drop"', ["flows", "expected a list"]),
    ('flows = [3]', ["flows[0]", "expected a string"]),
    ('groups = ["group_id=1,type=all", "group_id=1,type=select"]', ["groups[1]", "given twice"]),
    ('groups = ["group_id=1,type=bogus"]', ["groups[0]", "bad value 'bogus'"]),
    ('meters = ["meter=1,bands=type=drop"]', ["meters[0]", "band has no rate"]),
    ('meters = ["meter=2,bands=type=drop,rate=1", "meter=2,bands=type=drop,rate=2"]',
     ["meters[1]", "meter 2 given twice"]),
])
def test_errors_name_the_key(tmp_path, text, words):
    msg = error_of(tmp_path, text + "\n")
    for w in words:
        assert w in msg, msg


def test_bad_flow_names_index_line_and_token(tmp_path):
    msg = error_of(tmp_path, """\
        ports = ["a", "b"]
        flows = [
            "in_port=1,actions=output:2",
            "in_port=2,actions=output:1",
            "in_port=x1,actions=drop",
        ]
        """)
    assert "flows[2]" in msg
    assert "line 5" in msg
    assert "bad value 'x1' for field 'in_port' at column 9" in msg


def test_port_table_error_points_at_its_header(tmp_path):
    msg = error_of(tmp_path, """\
        [[ports]]
        name = "a"

        [[ports]]
        name = "b"
        type = "xdp"
        """)
    assert "ports[1]" in msg and "line 6" in msg       # type = "xdp" of the 2nd table


def test_port_table_without_value_points_at_header(tmp_path):
    msg = error_of(tmp_path, """\
        [[ports]]
        name = "a"

        [[ports]]
        name = "b"
        ofport = 0
        """)
    assert "ports[1]" in msg and "line 4" in msg


def test_flag_errors_name_the_flag():
    for overrides, words in [
        ({"dpid": "xyz"}, ["--dpid", "xyz"]),
        ({"ports": ["a", "a"]}, ["--port", "'a' given twice"]),
        ({"fail_mode": "x"}, ["--fail-mode", "'x'"]),
        ({"controllers": ["tcp:1.2.3"]}, ["--controller", "1.2.3"]),
        ({"listen": ["ptcp:0"]}, ["--listen", "'0'"]),
        ({"name": "a b"}, ["--name", "'a b'"]),
    ]:
        with pytest.raises(ConfigError) as ei:
            load_config(None, overrides)
        for w in words:
            assert w in str(ei.value), str(ei.value)


def test_flag_values_checked_against_file_flows(tmp_path):
    # flows in the file name ports: --port replacing the ports breaks them
    path = toml(tmp_path, 'ports = ["a"]\nflows = ["in_port=a,actions=drop"]\n')
    assert load_config(path).flows[0].match.fields == {"in_port": (1, None)}
    with pytest.raises(ConfigError, match=r"flows\[0\].*'a'"):
        load_config(path, {"ports": ["b"]})


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "missing.toml"))


def test_not_utf8(tmp_path):
    p = tmp_path / "bin.toml"
    p.write_bytes(b"name = \"\xff\"\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(str(p))


def test_whole_config_refused(tmp_path):
    """One bad key refuses everything (nothing partially applied to return)."""
    with pytest.raises(ConfigError):
        load_config(toml(tmp_path, 'name = "ok"\nports = ["a"]\nfail_mode = "nope"\n'))


# ---------------------------------------------------------------- TLS files

def tls_flags(pki, **kw):
    flags = {"ports": ["a"], "ssl_key": pki["sw.key"], "ssl_cert": pki["sw.crt"],
             "ssl_ca": pki["ca.crt"]}
    flags.update(kw)
    return {k: v for k, v in flags.items() if v is not None}


def flag_error(overrides):
    with pytest.raises(ConfigError) as ei:
        load_config(None, overrides)
    return str(ei.value)


def test_tls_from_flags(pki, tmp_path, monkeypatch):
    cfg = load_config(None, tls_flags(pki, controllers=["ssl:127.0.0.1:6653"],
                                      listen=["pssl:6634"]))
    assert (cfg.ssl_key, cfg.ssl_cert, cfg.ssl_ca) == (pki["sw.key"], pki["sw.crt"],
                                                       pki["ca.crt"])
    assert cfg.uses_tls()
    # relative flag values are relative to the working directory
    monkeypatch.chdir(os.path.dirname(pki["sw.key"]))
    cfg = load_config(None, tls_flags(pki, ssl_key="sw.key", listen=["pssl:6634"]))
    assert cfg.ssl_key == pki["sw.key"]


def test_tls_flags_override_the_file(pki, tmp_path):
    path = toml(tmp_path, """\
        ports = ["a"]
        listen = ["pssl:6634"]
        ssl_key = "/nonexistent/k"
        ssl_cert = "/nonexistent/c"
        ssl_ca = "/nonexistent/ca"
        """)
    cfg = load_config(path, tls_flags(pki))
    assert cfg.ssl_cert == pki["sw.crt"]


def test_tls_files_without_a_tls_target_are_checked_but_fine(pki):
    cfg = load_config(None, tls_flags(pki))
    assert cfg.ssl_ca == pki["ca.crt"] and not cfg.uses_tls()
    assert "--ssl-key" in flag_error(tls_flags(pki, ssl_key=pki["junk.pem"]))


def test_no_tls_target_needs_no_files():
    cfg = load_config(None, {"ports": ["a"], "controllers": ["tcp:127.0.0.1:1"]})
    assert cfg.tls() == {"key": None, "cert": None, "ca": None} and not cfg.uses_tls()


@pytest.mark.parametrize("target, missing", [
    ({"controllers": ["tcp:1.2.3.4:1", "ssl:127.0.0.1:6653"]}, ["ssl_key", "ssl_cert", "ssl_ca"]),
    ({"listen": ["pssl:6634"]}, ["ssl_ca"]),
    ({"listen": ["ptcp:1", "pssl:6634"]}, ["ssl_key"]),
    ({"controllers": ["ssl:127.0.0.1:6653"]}, ["ssl_cert", "ssl_ca"]),
])
def test_tls_target_needs_key_cert_and_ca(pki, target, missing):
    flags = tls_flags(pki, **target)
    for k in missing:
        del flags[k]
    msg = flag_error(flags)
    key = next(iter(target))
    assert msg.startswith(C.FLAG_OF[key] + ": ")             # names the target's flag
    assert ("ssl:" if key == "controllers" else "pssl:") in msg
    for k in ("ssl_key", "ssl_cert", "ssl_ca"):
        assert (C.FLAG_OF[k] in msg) == (k in missing), msg


def test_tls_target_in_a_file_names_its_line(pki, tmp_path):
    msg = error_of(tmp_path, f"""\
        ports = ["a"]
        ssl_key = "{pki['sw.key']}"
        controllers = ["tcp:127.0.0.1:1",
                       "ssl:127.0.0.1:6653"]
        """)
    assert "line 4: controllers[1]: ssl:127.0.0.1:6653 needs" in msg
    assert "--ssl-cert (ssl_cert)" in msg and "--ssl-ca (ssl_ca)" in msg
    assert "--ssl-key" not in msg


@pytest.mark.parametrize("key, file, words", [
    ("ssl_key", "nope.key", ["--ssl-key", "nope.key", "no such file"]),
    ("ssl_cert", "nope.crt", ["--ssl-cert", "no such file"]),
    ("ssl_ca", "nope.ca", ["--ssl-ca", "no such file"]),
    ("ssl_ca", ".", ["--ssl-ca", "not a regular file"]),
    ("ssl_cert", "junk.pem", ["--ssl-cert", "junk.pem", "not a PEM certificate"]),
    ("ssl_ca", "junk.pem", ["--ssl-ca", "not a PEM certificate"]),
    ("ssl_cert", "sw.key", ["--ssl-cert", "not a PEM certificate"]),
    ("ssl_key", "junk.pem", ["--ssl-key", "not the PEM private key of"]),
    ("ssl_key", "other.key", ["--ssl-key", "other.key", "not the PEM private key of",
                              "sw.crt"]),
    ("ssl_key", "enc.key", ["--ssl-key", "encrypted"]),
])
def test_bad_tls_files_from_flags(pki, key, file, words):
    d = os.path.dirname(pki["sw.key"])
    msg = flag_error(tls_flags(pki, listen=["pssl:6634"], **{key: os.path.join(d, file)}))
    assert msg.startswith(words[0] + ": "), msg
    for w in words[1:]:
        assert w in msg, msg


def test_bad_tls_file_in_a_file_names_its_line(pki, tmp_path):
    msg = error_of(tmp_path, f"""\
        ports = ["a"]
        ssl_key = "{pki['sw.key']}"
        ssl_cert = "{pki['sw.crt']}"
        ssl_ca = "{pki['junk.pem']}"
        """)
    assert "vdp.toml: line 4: ssl_ca: " in msg and "not a PEM certificate" in msg
    msg = error_of(tmp_path, """\
        ports = ["a"]
        ssl_key = "missing.key"
        """)
    assert "line 2: ssl_key: private key " in msg and "no such file" in msg
    assert str(tmp_path / "missing.key") in msg            # resolved next to the file


def test_unreadable_tls_file(pki, tmp_path, monkeypatch):
    p = tmp_path / "locked.key"
    shutil.copy(pki["sw.key"], p)
    p.chmod(0)
    if os.geteuid() == 0:                 # root reads it anyway: make open() refuse
        real_open = open

        def refusing_open(path, *a, **kw):
            if str(path) == str(p):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *a, **kw)
        monkeypatch.setattr(C, "open", refusing_open, raising=False)
    msg = flag_error(tls_flags(pki, ssl_key=str(p)))
    assert msg.startswith("--ssl-key: ") and "cannot read: Permission denied" in msg


def test_tls_key_must_be_a_string(tmp_path):
    msg = error_of(tmp_path, """\
        ports = ["a"]
        ssl_ca = 7
        """)
    assert "line 2: ssl_ca: expected a string, got an integer" in msg
    assert "ssl_key" in error_of(tmp_path, 'ssl_keys = "x"\n')      # unknown key lists it


# ---------------------------------------------------------------- bonds

def test_bond_tables(tmp_path):
    cfg = load_config(toml(tmp_path, """\
        ports = ["p1", {type = "bond", name = "inl", members = ["i1", "i2"]}, "p2"]
        lacp = "active"
        lacp_time = "fast"
        bond_mode = "balance-l3"

        [[bond]]
        name = "bond0"
        members = ["e1", "tap:t2", {name = "e3", port_priority = 100, port_id = 9}]
        mode = "balance-slb"
        lacp_key = 4
        lacp_port_priority = 200
        lacp_fallback = true
        rebalance_interval = 2.5

        [[bond]]
        name = "bond1"
        members = ["f1"]
        lacp = "off"
        ofport = 10
        """))
    assert [(p.ofport, p.name, p.type) for p in cfg.ports] == [
        (1, "p1", "afpacket"), (2, "inl", "bond"), (3, "p2", "afpacket"), (4, "bond0", "bond"),
        (10, "bond1", "bond")]
    inl, b0, b1 = cfg.ports[1].bond, cfg.ports[3].bond, cfg.ports[4].bond
    assert (inl.mode, inl.lacp, inl.lacp_time) == ("balance-l3", "active", "fast")
    assert (b0.mode, b0.lacp, b0.lacp_time, b0.key, b0.fallback, b0.rebalance_interval) == (
        "balance-slb", "active", "fast", 4, True, 2.5)
    assert [(m.name, m.port_priority, m.port_id) for m in b0.members] == [
        ("e1", 200, None), ("t2", 200, None), ("e3", 100, 9)]
    assert [(m.name, m.type) for m in cfg.ports[3].members] == [
        ("e1", "afpacket"), ("t2", "tap"), ("e3", "afpacket")]
    assert (b1.lacp, b1.mode) == ("off", "balance-l3")
    assert cfg.port_names()["bond0"] == 4


def test_bond_flags_override_file_and_replace_ports(tmp_path):
    path = toml(tmp_path, """\
        ports = ["p1"]
        [[bond]]
        name = "bond0"
        members = ["e1", "e2"]
        mode = "balance-l2"
        lacp = "passive"
        """)
    cfg = load_config(path, {"lacp": "active", "bond_mode": "active-backup"})
    b = cfg.ports[1].bond
    assert (b.lacp, b.mode) == ("active", "active-backup")
    cfg = load_config(path, {"ports": ["p9"]})
    assert [p.name for p in cfg.ports] == ["p9"], "--port replaces the file's bonds too"


def test_flows_may_name_a_bond(tmp_path):
    cfg = load_config(toml(tmp_path, """\
        ports = ["p1"]
        flows = ["in_port=bond0,actions=output:p1"]
        [[bond]]
        name = "bond0"
        members = ["e1", "e2"]
        """))
    assert cfg.flows[0].match.fields == {"in_port": (2, None)}


@pytest.mark.parametrize("text, words", [
    ('[[bond]]\nname = "b0"\nmembers = ["a", "a"]\n', ["bond[0]", "line 3", "given twice"]),
    ('[[bond]]\nname = "b0"\nmembers = ["a"]\nmode = "rr"\n', ["bond[0]", "bond mode", "'rr'"]),
    ('[[bond]]\nname = "b0"\nmembers = ["a"]\nspeed = 1\n', ["bond[0]", "unknown key 'speed'"]),
    ('[[bond]]\nname = "b0"\nmembers = []\n', ["bond[0]", "non-empty list"]),
    ('[[bond]]\nmembers = ["a"]\n', ["bond[0]", "missing 'name'"]),
    ('[[bond]]\nname = "b0"\nmembers = ["a"]\nlacp_key = "1"\n', ["lacp_key", "integer"]),
    ('[[bond]]\nname = "b0"\nmembers = ["a"]\nlacp_fallback = 1\n', ["lacp_fallback",
                                                                    "boolean"]),
    ('[[bond]]\nname = "b0"\nmembers = [{name = "a", prio = 1}]\n', ["unknown key 'prio'"]),
    ('[[bond]]\nname = "b0"\nmembers = ["a"]\nofport = 0\n', ["bad ofport 0"]),
    ('ports = ["a"]\n[[bond]]\nname = "b0"\nmembers = ["a", "b"]\n',
     ["bond[0]", "member 'a' is already used by a port"]),
    ('[[bond]]\nname = "b0"\nmembers = ["a"]\n[[bond]]\nname = "b1"\nmembers = ["a"]\n',
     ["bond[1]", "line 5", "member 'a' is already used by bond b0"]),
    ('[[bond]]\nname = "b0"\nmembers = ["a"]\n[[bond]]\nname = "b0"\nmembers = ["c"]\n',
     ["bond[1]", "bond 'b0' given twice"]),
    ('[[bond]]\nname = "b0"\nmembers = ["a"]\n[[bond]]\nname = "a"\nmembers = ["c"]\n',
     ["bond[1]", "already used by bond b0"]),
    ('lacp = "on"\nports = ["a"]\n', ["lacp", "line 1", "'on'"]),
    ('bond_mode = 3\nports = ["a"]\n', ["bond_mode", "expected a string"]),
    ('bond = 3\n', ["bond", "[[bond]] tables"]),
    ('ports = [{name = "b0", type = "bond", members = ["a"], mode = "x"}]\n',
     ["ports[0]", "bond mode"]),
])
def test_bond_errors(tmp_path, text, words):
    msg = error_of(tmp_path, text)
    for w in words:
        assert w in msg, msg
