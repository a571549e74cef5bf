"""The controller's config loader (controller/config.py) and the [vrrp]
section schema (controller/vrrp/config.py): every refusal names the file,
the line and the key."""
import ipaddress
import textwrap

import pytest

from controller import config as C
from controller.config import ConfigError, KeyLines, load_config
from controller.vrrp import config as V


def lines_of(text):
    return KeyLines(textwrap.dedent(text)).lines


# ---------------------------------------------------------------- key lines

def test_keylines_tables_arrays_of_tables_and_nesting():
    kl = lines_of("""\
        top = 1
        [a]
        x = 2
        [[a.list]]
        y = 3
        [[a.list.sub]]
        z = 4
        [[a.list]]
        y = 5
        [[a.list.sub]]
        z = 6
        [[a.list.sub]]
        z = 7
        [b."quoted key".c]
        d.e = 8
        """)
    assert kl[("top",)] == 1
    assert kl[("a",)] == 2 and kl[("a", "x")] == 3
    assert kl[("a", "list", 0)] == 4 and kl[("a", "list", 0, "y")] == 5
    assert kl[("a", "list", 0, "sub", 0, "z")] == 7
    assert kl[("a", "list", 1, "y")] == 9
    assert kl[("a", "list", 1, "sub", 0, "z")] == 11
    assert kl[("a", "list", 1, "sub", 1, "z")] == 13
    assert kl[("b", "quoted key", "c", "d", "e")] == 15


def test_keylines_inline_tables_arrays_strings_and_comments():
    kl = lines_of("""\
        # a comment [not = "a table"]
        s = "has ] and # and \\" inside"
        lit = 'C:\\path[1]'
        multi = \"\"\"
        line [x] = 1
        \"\"\"
        arr = [
          "one",   # comment, with ] bracket
          { k = 1, j = [2, 3] },

          [4, 5],
        ]
        after = true
        t = { a = { b = 1 } }
        """)
    assert kl[("s",)] == 2 and kl[("lit",)] == 3 and kl[("multi",)] == 4
    assert kl[("arr", 0)] == 8 and kl[("arr", 1)] == 9 and kl[("arr", 1, "k")] == 9
    assert kl[("arr", 1, "j", 1)] == 9 and kl[("arr", 2)] == 11 and kl[("arr", 2, 1)] == 11
    assert kl[("after",)] == 13
    assert kl[("t", "a", "b")] == 14
    # nothing recorded for the fake keys inside strings and comments
    assert ("not",) not in kl and ("line",) not in kl


def test_keylines_line_of_missing_key_is_its_table():
    kl = KeyLines("[x]\n\n[[y]]\na = 1\n")
    assert kl.line(("y", 0, "missing")) == 3
    assert kl.line(("nowhere",)) is None


def test_path_str():
    assert C.path_str(("vrrp", "datapath", 0, "router", 2, "vips", 1)) == \
        "vrrp.datapath[0].router[2].vips[1]"
    assert C.path_str(("a", "b c")) == 'a."b c"'


# ---------------------------------------------------------------- the loader

def check_tables(node):
    node.only("n", "name", "on", "mode", "items", "sub")
    return {"n": node.int("n", 1, lo=1, hi=10), "name": node.str("name", "x"),
            "on": node.bool("on", False), "mode": node.str("mode", "a", choices=("a", "b")),
            "items": [n.convert(str) for n in node.child("items").elements(single=True)]
            if "items" in node else []}


SECTIONS = {"demo": check_tables}


def refused(text, sections=SECTIONS, **kw):
    with pytest.raises(ConfigError) as ei:
        load_config("ctl.toml", sections, text=textwrap.dedent(text), **kw)
    return str(ei.value)


def test_load_config_values_and_absent_sections():
    out = load_config("ctl.toml", {**SECTIONS, "other": check_tables},
                      text="[demo]\nn = 3\nitems = 'one'\n")
    assert out == {"demo": {"n": 3, "name": "x", "on": False, "mode": "a", "items": ["one"]},
                   "other": None}


@pytest.mark.parametrize("text, where, msg", [
    ("[demo]\nn = 11\n", "line 2: demo.n", "expected an integer 1..10, got 11"),
    ("[demo]\nn = true\n", "line 2: demo.n", "expected an integer, got a boolean"),
    ("[demo]\nn = 1.5\n", "line 2: demo.n", "expected an integer, got a number"),
    ("[demo]\n\non = 1\n", "line 3: demo.on", "expected a boolean, got an integer"),
    ("[demo]\nmode = 'c'\n", "line 2: demo.mode", "expected one of 'a', 'b', got 'c'"),
    ("[demo]\nitems = ['a',\n  7]\n", "line 3: demo.items[1]", "expected a string"),
    ("[demo]\nnn = 1\n", "line 2: demo.nn", "unknown key 'nn'"),
    ("x = 1\n[demo]\n", "line 1: x", "unknown section [x] (known: demo)"),
    ("demo = 3\n", "line 1: demo", "expected a table ([demo])"),
])
def test_load_config_refusals_name_file_line_and_key(text, where, msg):
    err = refused(text)
    assert err.startswith(f"ctl.toml: {where}: "), err
    assert msg in err


def test_load_config_syntax_errors_and_files(tmp_path):
    err = refused("[demo\n")
    assert err.startswith("ctl.toml: ") and "line 1" in err
    with pytest.raises(ConfigError, match="cannot read config .*nope.toml"):
        load_config(str(tmp_path / "nope.toml"), SECTIONS)
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"[demo]\nname = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(bad), SECTIONS)
    good = tmp_path / "good.toml"
    good.write_text("[demo]\nname = 'file'\n")
    assert load_config(str(good), SECTIONS)["demo"]["name"] == "file"
    with pytest.raises(ConfigError, match="missing section \\[other\\]"):
        load_config(str(good), {**SECTIONS, "other": check_tables}, required=("other",))


def test_load_config_ignore_and_registry():
    assert load_config("c", SECTIONS, text="[demo]\n[stp]\nanything = 1\n",
                       ignore=("stp",))["demo"]["n"] == 1
    assert "unknown section [stp] (known: demo, l2)" in refused("[stp]\n", ignore=("l2",))

    def v(node):
        return "ok"
    C.register_section("vdpt_test_section", v)
    C.register_section("vdpt_test_section", v)           # same validator: fine
    with pytest.raises(ValueError, match="registered twice"):
        C.register_section("vdpt_test_section", lambda n: None)
    assert C.registered_sections()["vdpt_test_section"] is v
    assert "vrrp" in C.registered_sections()              # controller.vrrp.config imported
    # default sections = the registered ones; `ignore` wins over a registered
    # validator (each app validates only its own section of a shared file)
    text = "[vdpt_test_section]\n[vrrp]\nwhatever = 1\n"
    got = load_config("c", text=text, ignore=("vrrp",))
    assert got["vdpt_test_section"] == "ok" and "vrrp" not in got
    with pytest.raises(ConfigError, match="vrrp.whatever: unknown key"):
        load_config("c", text=text)
    assert set(C.APP_SECTIONS) >= {"l2", "stp", "vrrp"}


# ---------------------------------------------------------------- value parsers

@pytest.mark.parametrize("text, value", [
    (1, 1), ("10", 10), ("0x1f", 31), ("000000000000001f", 31),
    ("00:00:00:00:00:00:00:1f", 31), ((1 << 64) - 1, (1 << 64) - 1)])
def test_parse_dpid(text, value):
    assert C.parse_dpid(text) == value


@pytest.mark.parametrize("bad", [True, -1, 1 << 64, "one", "0x", 1.5])
def test_parse_dpid_refuses(bad):
    with pytest.raises(ValueError):
        C.parse_dpid(bad)


def test_parse_mac_ip_interface_network():
    assert C.parse_mac("02-AA-00-00-00-01") == "02:aa:00:00:00:01"
    assert C.format_mac(b"\x02\0\0\0\0\x01") == "02:00:00:00:00:01"
    for bad in ("02:aa", "zz:00:00:00:00:00", "0200.0000.0001"):
        with pytest.raises(ValueError, match="bad MAC"):
            C.parse_mac(bad)
    assert C.parse_ip(" 10.0.0.1 ") == ipaddress.ip_address("10.0.0.1")
    with pytest.raises(ValueError, match="bad IP address"):
        C.parse_ip("10.0.0.1/24")
    assert C.parse_interface("10.0.0.1/24").network == ipaddress.ip_network("10.0.0.0/24")
    with pytest.raises(ValueError, match="ADDRESS/PREFIXLEN"):
        C.parse_interface("10.0.0.1")
    assert C.parse_network("default") == ipaddress.ip_network("0.0.0.0/0")
    with pytest.raises(ValueError, match="host bits set"):
        C.parse_network("10.0.0.1/24")


# ---------------------------------------------------------------- [vrrp]

BASE = """\
[vrrp]
status_socket = "/tmp/vdpt-vrrp.sock"

[[vrrp.datapath]]
dpid = "0000000000000001"

  [[vrrp.datapath.interface]]
  name = "lan"
  port = 1
  address = ["10.1.0.2/24", "fe80::2/64", "2001:db8:1::2/64"]

  [[vrrp.datapath.interface]]
  name = "wan"
  port = 2
  vlan = 20
  address = "10.2.0.2/24"
  mac = "02:00:00:00:02:02"

  [[vrrp.datapath.router]]
  interface = "lan"
  vrid = 1
  priority = 200
  vips = ["10.1.0.1", "10.1.0.254"]
  interval = 0.1
  preempt_delay = 2
  tracks = { wan = 50, "port:7" = 0 }

  [[vrrp.datapath.router]]
  interface = "lan"
  vrid = 1
  vips = "fe80::1"

  [[vrrp.datapath.router]]
  interface = "wan"
  vrid = 9
  version = 2
  vips = "10.2.0.2"
  auth = "secret"
  accept = true

  [[vrrp.datapath.route]]
  prefix = "default"
  via = "10.2.0.254"
"""


def vload(text):
    return load_config("vrrp.toml", {"vrrp": V.validate}, text=text)["vrrp"]


def test_vrrp_section_normalized():
    cfg = vload(BASE)
    assert cfg.status_socket == "/tmp/vdpt-vrrp.sock"
    dp = cfg.datapaths[1]
    assert (dp.name, dp.table, dp.table_miss) == ("dp1", 0, "drop")
    lan, wan = dp.interfaces
    assert (lan.index, lan.port, lan.vlan, lan.mac) == (1, 1, None, None)
    assert lan.subnets() == (ipaddress.ip_network("10.1.0.0/24"),
                             ipaddress.ip_network("2001:db8:1::/64"))
    assert (wan.vlan, wan.mac) == (20, "02:00:00:00:02:02")
    v4, v6, owner = dp.routers
    assert (v4.version, v4.family, v4.priority, v4.interval, v4.preempt_delay) == \
        (3, 4, 200, 0.1, 2.0)
    assert v4.primary_ip == ipaddress.ip_address("10.1.0.2")
    assert dict(v4.tracks) == {"port:1": 0, "port:2": 50, "port:7": 0}
    assert (v6.family, v6.priority, v6.interval) == (6, 100, 1.0)
    assert v6.primary_ip == ipaddress.ip_address("fe80::2")     # the link-local one
    assert (owner.version, owner.priority, owner.auth, owner.accept) == (2, 255, "secret", True)
    [rt] = dp.routes
    assert (str(rt.prefix), str(rt.via), rt.interface) == ("0.0.0.0/0", "10.2.0.254", "wan")
    vr = owner.virtual_router(wan.vlan)
    assert vr.is_owner and vr.vlan == 20 and vr.auth_type == 1


def edit(old, new, text=BASE):
    assert old in text, old
    return text.replace(old, new, 1)


def line_no(text, needle, nth=1):
    n = 0
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            n += 1
            if n == nth:
                return i
    raise AssertionError(needle)


BAD = [
    # (old, new, needle on the reported line, key, message)
    ('dpid = "0000000000000001"', 'dpid = "one"', 'dpid = "one"', "vrrp.datapath[0].dpid",
     "bad dpid 'one'"),
    ("  port = 1\n", "  port = 0\n", "port = 0", "vrrp.datapath[0].interface[0].port",
     "expected an integer 1..4294967040"),
    ("  vlan = 20", "  vlan = 4095", "vlan = 4095", "vrrp.datapath[0].interface[1].vlan",
     "1..4094"),
    ('"10.2.0.2/24"', '"10.2.0.2"', 'address = "10.2.0.2"',
     "vrrp.datapath[0].interface[1].address", "ADDRESS/PREFIXLEN"),
    ('mac = "02:00:00:00:02:02"', 'mac = "01:00:00:00:02:02"', "mac = ",
     "vrrp.datapath[0].interface[1].mac", "multicast"),
    ('  name = "wan"', '  name = "lan"', ('name = "lan"', 2), "vrrp.datapath[0].interface[1].name",
     "interface name 'lan' used twice"),
    ('"10.2.0.2/24"', '"10.1.0.9/24"', '"10.1.0.9/24"', "vrrp.datapath[0].interface[1].address",
     "overlaps interface 'lan'"),
    ("  priority = 200", "  priority = 256", "priority = 256",
     "vrrp.datapath[0].router[0].priority", "1..255"),
    ("  priority = 200", "  priority = 255", "priority = 255",
     "vrrp.datapath[0].router[0].priority", "priority 255 is for the address owner"),
    ('  vips = "10.2.0.2"\n  auth', '  vips = "10.2.0.2"\n  priority = 100\n  auth',
     "priority = 100", "vrrp.datapath[0].router[2].priority", "must have priority 255"),
    ("  interval = 0.1", "  interval = 0.105", "interval = 0.105",
     "vrrp.datapath[0].router[0].interval", "multiple of 0.01"),
    ("  interval = 0.1", "  interval = 41", "interval = 41",
     "vrrp.datapath[0].router[0].interval", "0.01..40.95"),
    ('  vips = "10.2.0.2"', '  vips = "10.2.0.2"\n  interval = 1.5', "interval = 1.5",
     "vrrp.datapath[0].router[2].interval", "whole seconds"),
    ('  auth = "secret"', '  auth = "muchtoolong"', "auth = ", "vrrp.datapath[0].router[2].auth",
     "longer than 8 bytes"),
    ('  vips = "fe80::1"', '  vips = "fe80::1"\n  auth = "x"', 'auth = "x"',
     "vrrp.datapath[0].router[1].auth", "only in VRRP version 2"),
    ('  vips = "fe80::1"', '  vips = "fe80::1"\n  version = 2', "version = 2",
     "vrrp.datapath[0].router[1].version", "IPv4 only"),
    ('vips = ["10.1.0.1", "10.1.0.254"]', 'vips = ["10.1.0.1", "fe80::9"]', "vips = [",
     "vrrp.datapath[0].router[0].vips", "mixed"),
    ('vips = ["10.1.0.1", "10.1.0.254"]', 'vips = ["10.1.0.1", "10.1.0.1"]', "vips = [",
     "vrrp.datapath[0].router[0].vips[1]", "given twice"),
    ('vips = ["10.1.0.1", "10.1.0.254"]', 'vips = ["224.0.0.18"]', "vips = [",
     "vrrp.datapath[0].router[0].vips[0]", "cannot be a virtual address"),
    ('  interface = "wan"\n  vrid = 9', '  interface = "wlan"\n  vrid = 9', 'interface = "wlan"',
     "vrrp.datapath[0].router[2].interface", "no interface named 'wlan'"),
    ('  vips = "fe80::1"', '  vips = "fe80::1"\n  vrid = 1', "vrid = 1",
     "vrrp.datapath[0].router[1].vrid", None),     # duplicate key: tomllib refuses
    ('  interface = "wan"\n  vrid = 9', '  interface = "lan"\n  vrid = 1', 'interface = "lan"',
     "vrrp.datapath[0].router[2].vrid", None),
    ("tracks = { wan = 50", "tracks = { wan = 255", "tracks = {",
     "vrrp.datapath[0].router[0].tracks.wan", "weight must be 0..254"),
    ("tracks = { wan = 50", "tracks = { dmz = 5", "tracks = {",
     "vrrp.datapath[0].router[0].tracks.dmz", "unknown track 'dmz'"),
    ('  via = "10.2.0.254"', '  via = "10.9.0.254"', 'via = "10.9.0.254"',
     "vrrp.datapath[0].route[0].via", "not on any interface's subnet"),
    ('  prefix = "default"', '  prefix = "10.0.0.0/8x"', "prefix = ",
     "vrrp.datapath[0].route[0].prefix", "bad network"),
    ('  prefix = "default"', '  prefix = "10.1.0.0/24"', "prefix = ",
     "vrrp.datapath[0].route[0].prefix", "connected subnet"),
    ('  via = "10.2.0.254"', '  via = "10.2.0.2"', "via = ",
     "vrrp.datapath[0].route[0].via", "one of our own addresses"),
    ("  accept = true", "  acept = true", "acept = true",
     "vrrp.datapath[0].router[2].acept", "unknown key 'acept'"),
    ('status_socket = "/tmp/vdpt-vrrp.sock"', "status_socket = 5", "status_socket = 5",
     "vrrp.status_socket", "expected a string, got an integer"),
]


@pytest.mark.parametrize("old, new, needle, key, msg", BAD)
def test_vrrp_section_refusals(old, new, needle, key, msg):
    text = edit(old, new)
    with pytest.raises(ConfigError) as ei:
        vload(text)
    err = str(ei.value)
    if msg is None:           # refused already by tomllib or by the VRID check
        assert err.startswith("vrrp.toml: ")
        return
    needle, nth = needle if isinstance(needle, tuple) else (needle, 1)
    assert err.startswith(f"vrrp.toml: line {line_no(text, needle, nth)}: {key}: "), err
    assert msg in err, err


def test_vrrp_duplicate_vrid_on_interface():
    text = edit('  interface = "wan"\n  vrid = 9', '  interface = "lan"\n  vrid = 1\n  priority = 100')
    text = text.replace('  vips = "10.2.0.2"\n  auth = "secret"\n', '  vips = "10.1.0.77"\n')
    err = str(pytest.raises(ConfigError, vload, text).value)
    assert "VRID 1 (IPv4) is already on interface 'lan'" in err
    assert f"line {line_no(text, 'vrid = 1', 3)}:" in err


def test_vrrp_ipv6_needs_link_local_and_dpid_unique():
    text = BASE.replace(', "fe80::2/64"', "")
    err = str(pytest.raises(ConfigError, vload, text).value)
    n = line_no(text, 'interface = "lan"', 2)
    assert f"line {n}: vrrp.datapath[0].router[1].interface: interface 'lan' has no " \
        "link-local IPv6 address" in err
    text = BASE + '\n[[vrrp.datapath]]\ndpid = 1\ninterface = [{ port = 1, address = "10.9.0.1/24" }]\n'
    err = str(pytest.raises(ConfigError, vload, text).value)
    assert "dpid 0x1 configured twice" in err
    assert f"line {line_no(text, 'dpid = 1')}:" in err


def test_vrrp_needs_interfaces_and_minimal_config():
    err = str(pytest.raises(ConfigError, vload, "[[vrrp.datapath]]\ndpid = 3\n").value)
    assert "line 1: vrrp.datapath[0]: no interface" in err
    cfg = vload('[[vrrp.datapath]]\ndpid = 3\ninterface = [{ port = 4, address = "10.0.0.1/8" }]\n'
                'router = [{ interface = "port4", vrid = 7, vips = "10.0.0.100" }]\n')
    r = cfg.datapaths[3].routers[0]
    assert (r.version, r.priority, r.interval, r.preempt, r.accept) == (3, 100, 1.0, True, False)
    assert cfg.status_socket is None and cfg.datapaths[3].name == "dp3"
