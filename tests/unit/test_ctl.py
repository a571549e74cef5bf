"""The control socket (datapath/ctl.py) end to end: a CtlServer on a temp
unix socket over a fake Datapath (the facade API, in pure Python), driven
through `vdp ctl` (cli.main_ctl); and the daemon (datapath/daemon.py) run
over the same fake fast path."""
import asyncio
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from datapath import cli, ctl as ctlmod, daemon, model as M
from datapath.config import load_config
from datapath.flowsyntax import parse_flow
from datapath.model import FlowStats

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


# ---------------------------------------------------------------- the fake

class FlowError(Exception):
    def __init__(self, type, code, message=""):
        super().__init__(type, code, message)
        self.type, self.code, self.message = type, code, message

    def __str__(self):
        return f"{self.message} (OpenFlow error type {self.type} code {self.code})"


class FakePort:
    """Stands in for AfPacketPort/TapPort/DummyPort."""
    instances = []

    def __init__(self, name, create=True):
        if name.startswith("missing"):
            raise OSError(19, "No such device")
        self.name = name
        self.ifindex = 0
        self.mtu = 1500
        self.hw_addr = bytes([2, 0, 0, 0, 0, len(FakePort.instances) + 1])
        self.fd = -1
        self.closed = False
        self.created = create
        FakePort.instances.append(self)

    def close(self):
        self.closed = True


def _covers(filter_match, match):
    """Loose match: match is at least as specific as filter_match and agrees."""
    for name, (fv, fm) in filter_match.fields.items():
        if name not in match.fields:
            return False
        v, m = match.fields[name]
        full = (1 << M.FIELD_BITS[name]) - 1
        fm = full if fm is None else fm
        m = full if m is None else m
        if (m & fm) != fm or (v & fm) != fv:
            return False
    return True


def _outputs(spec):
    for ins in spec.instructions:
        for a in getattr(ins, "actions", ()):
            yield a


class FakeDatapath:
    """The facade API of datapath/fastpath.py, in Python, no packets."""

    def __init__(self, n_tables=254):
        self.n_tables = n_tables
        self._ports = {}
        self._flows = []          # [spec, packets, bytes, t0]
        self._groups = {}
        self._meters = {}
        self.link = {}
        self.config = {}
        self.running = False
        self.upcall_queue = []
        self.expired = []
        self.fail_standalone = False

    # ports
    def attach_port(self, ofport, port):
        if ofport in self._ports:
            raise ValueError(f"port {ofport} in use")
        self._ports[ofport] = port

    def detach_port(self, ofport):
        self._ports.pop(ofport)

    def ports(self):
        return dict(self._ports)

    def set_port_link(self, ofport, up):
        self.link[ofport] = up

    def set_port_config(self, ofport, config, mask):
        self.config[ofport] = (self.config.get(ofport, 0) & ~mask) | (config & mask)

    def port_link(self, ofport):
        return self.link.get(ofport, True)

    def port_config(self, ofport):
        return self.config.get(ofport, 0)

    def port_stats(self):
        return {n: dict(rx_packets=10 * n, tx_packets=20 * n, rx_bytes=100 * n, tx_bytes=200 * n,
                        rx_dropped=1, tx_dropped=2, rx_errors=3, tx_errors=4, rx_malformed=5)
                for n in self._ports}

    # flows
    def flow_add(self, spec):
        if spec.table_id >= self.n_tables:
            raise FlowError(5, 9, "bad table id")
        for a in _outputs(spec):
            if type(a) is M.Group and a.group_id not in self._groups:
                raise FlowError(2, 9, f"group {a.group_id} does not exist")
        for f in self._flows:
            s = f[0]
            if (s.table_id, s.priority, s.match) == (spec.table_id, spec.priority, spec.match):
                f[0] = spec
                return
        self._flows.append([spec, 3, 294, time.monotonic()])

    def flow_modify(self, spec, strict=False):
        raise NotImplementedError

    def _select(self, table_id, match, priority, strict, out_port, out_group, cookie, cookie_mask):
        for f in self._flows:
            s = f[0]
            if table_id != M.OFPTT_ALL and s.table_id != table_id:
                continue
            if (s.cookie & cookie_mask) != cookie:
                continue
            if strict:
                if s.match != (match or M.Match()) or s.priority != priority:
                    continue
            elif match is not None and not _covers(match, s.match):
                continue
            if out_port != M.OFPP_ANY and not any(
                    type(a) is M.Output and a.port == out_port for a in _outputs(s)):
                continue
            if out_group != M.OFPG_ANY and not any(
                    type(a) is M.Group and a.group_id == out_group for a in _outputs(s)):
                continue
            yield f

    def _stats(self, f):
        return FlowStats(f[0], f[1], f[2], 1_500_000_000)

    def flow_delete(self, table_id=0xFF, match=None, priority=None, strict=False,
                    out_port=M.OFPP_ANY, out_group=M.OFPG_ANY, cookie=0, cookie_mask=0):
        gone = list(self._select(table_id, match, priority, strict, out_port, out_group,
                                 cookie, cookie_mask))
        self._flows = [f for f in self._flows if f not in gone]
        return [self._stats(f) for f in gone]

    def flows(self, table_id=0xFF, match=None, out_port=M.OFPP_ANY, out_group=M.OFPG_ANY,
              cookie=0, cookie_mask=0):
        return [self._stats(f) for f in self._select(table_id, match, None, False, out_port,
                                                     out_group, cookie, cookie_mask)]

    def expire(self, now):
        out, self.expired = self.expired, []
        return out

    def table_stats(self):
        return [dict(table_id=t, active_count=sum(1 for f in self._flows if f[0].table_id == t),
                     lookup_count=7 if t == 0 else 0, matched_count=5 if t == 0 else 0)
                for t in range(self.n_tables)]

    # groups, meters
    def group_add(self, g):
        if g.group_id in self._groups:
            raise FlowError(6, 0, "group exists")
        self._groups[g.group_id] = g

    def group_modify(self, g):
        self._groups[g.group_id] = g

    def group_delete(self, group_id):
        self._groups.pop(group_id, None)

    def groups(self):
        return [(g, {"packet_count": 11, "byte_count": 1100,
                     "bucket_stats": [{"packet_count": 5, "byte_count": 500}] * len(g.buckets)})
                for g in self._groups.values()]

    def meter_add(self, m):
        self._meters[m.meter_id] = m

    def meter_modify(self, m):
        self._meters[m.meter_id] = m

    def meter_delete(self, meter_id):
        self._meters.pop(meter_id, None)

    def meters(self):
        return [(m, {"flow_count": 0, "duration_ns": 2_000_000_000,
                     "band_stats": [{"packet_band_count": 1, "byte_band_count": 2}] * len(m.bands)})
                for m in self._meters.values()]

    # upcalls, engine
    def packet_out(self, data, in_port, actions):
        pass

    def upcalls(self, max=64):
        out, self.upcall_queue = self.upcall_queue[:max], self.upcall_queue[max:]
        return out

    def upcall_fd(self):
        raise NotImplementedError        # the daemon falls back to polling

    def start(self):
        self.running = True

    def stop(self):
        self.running = False


def fake_fastpath():
    return types.SimpleNamespace(
        Datapath=FakeDatapath, AfPacketPort=FakePort,
        TapPort=lambda name, create=True: FakePort(name, create=create), FlowError=FlowError)


# ---------------------------------------------------------------- fixtures

class LoopThread:
    """An asyncio loop in a background thread (the daemon's loop stand-in)."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def sock_dir():
    # unix socket paths are short: not under pytest's long tmp_path
    import tempfile
    d = tempfile.mkdtemp(prefix="vdpt-ctl-")
    yield d
    import shutil
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def switch(sock_dir):
    """A CtlServer over a FakeDatapath with ports 1 (p1) and 2 (p2)."""
    dp = FakeDatapath()
    dp.attach_port(1, FakePort("p1"))
    dp.attach_port(2, FakePort("p2"))
    state = ctlmod.SwitchState(name="br0", dpid=1, fail_mode="secure",
                               controllers=["tcp:127.0.0.1:6653"])
    path = os.path.join(sock_dir, "br0.ctl")
    server = ctlmod.CtlServer(path, ctlmod.Commands(dp, state))
    lt = LoopThread()
    lt.run(server.start())
    sw = types.SimpleNamespace(dp=dp, state=state, path=path, server=server, loop=lt)
    yield sw
    lt.run(server.close())
    lt.close()


def vctl(sw, *argv, json_out=False):
    out, err = io.StringIO(), io.StringIO()
    args = ["--ctl", sw.path] + (["--json"] if json_out else []) + list(argv)
    rc = cli.main_ctl(args, stdout=out, stderr=err)
    return rc, out.getvalue(), err.getvalue()


def ok(sw, *argv):
    rc, out, err = vctl(sw, *argv)
    assert rc == 0, err
    return out


def okj(sw, *argv):
    rc, out, err = vctl(sw, *argv, json_out=True)
    assert rc == 0, err
    return json.loads(out) if out.strip() else None


def fail(sw, *argv):
    rc, out, err = vctl(sw, *argv)
    assert rc == 1, (rc, out, err)
    assert out == ""
    return err


# ---------------------------------------------------------------- the socket

def test_socket_mode_0600_and_removed_at_close(sock_dir):
    path = os.path.join(sock_dir, "m.ctl")
    server = ctlmod.CtlServer(path, ctlmod.Commands(FakeDatapath(), ctlmod.SwitchState()))
    lt = LoopThread()
    try:
        lt.run(server.start())
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o600
        lt.run(server.close())
        assert not os.path.exists(path)
    finally:
        lt.close()


def test_second_server_on_live_socket_refused(switch):
    other = ctlmod.CtlServer(switch.path, ctlmod.Commands(FakeDatapath(), ctlmod.SwitchState()))
    with pytest.raises(ctlmod.CtlError, match="served by another running vdp"):
        switch.loop.run(other.start())
    assert okj(switch, "show")["name"] == "br0"      # the first one still serves


def test_stale_socket_is_replaced(sock_dir):
    path = os.path.join(sock_dir, "stale.ctl")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                                         # bound, nobody listening
    ctlmod.check_ctl_free(path)
    assert not os.path.exists(path)


def test_non_socket_path_refused(sock_dir):
    path = os.path.join(sock_dir, "file.ctl")
    Path(path).write_text("x")
    with pytest.raises(ctlmod.CtlError, match="not a socket"):
        ctlmod.check_ctl_free(path)


def raw(sw, payload):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sw.path)
    s.sendall(payload)
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    s.close()
    return json.loads(buf)


def test_bad_requests_get_errors_and_server_survives(switch):
    assert raw(switch, b"not json\n") == {"ok": False, "error": raw(switch, b"not json\n")["error"]}
    assert "bad request" in raw(switch, b"not json\n")["error"]
    assert "bad request" in raw(switch, b'{"args": {}}\n')["error"]
    assert "bad request" in raw(switch, b'{"cmd": "show", "args": 5}\n')["error"]
    r = raw(switch, b'{"cmd": "reboot"}\n')
    assert r["ok"] is False and "unknown command 'reboot'" in r["error"]
    r = raw(switch, b'{"cmd": "show", "json": true}\n')
    assert r["ok"] is True and r["result"]["name"] == "br0"


def test_several_requests_on_one_connection(switch):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(switch.path)
    f = s.makefile("rwb")
    for _ in range(3):
        f.write(b'{"cmd": "dump-tables", "json": true}\n')
        f.flush()
        assert json.loads(f.readline())["ok"] is True
    s.close()


# ---------------------------------------------------------------- show

def test_show_text(switch):
    out = ok(switch, "show")
    assert out.startswith("br0: dpid:0000000000000001\n")
    assert "fail_mode: secure" in out
    assert "controllers: tcp:127.0.0.1:6653" in out
    assert " 1(p1): addr:02:00:00:00:00:" in out and " 2(p2): addr:" in out
    assert "state:      LINK_UP" in out


def test_show_json_shape(switch):
    switch.dp.set_port_link(2, False)
    switch.dp.set_port_config(2, 1, 1)
    show = okj(switch, "show")
    assert {"name", "dpid", "fail_mode", "ports"} <= set(show)
    assert (show["name"], show["dpid"], show["fail_mode"]) == ("br0", "0000000000000001", "secure")
    assert [set(p) for p in show["ports"]] == [{"port", "name", "hw_addr", "link_up", "config"}] * 2
    p1, p2 = show["ports"]
    assert (p1["port"], p1["name"], p1["link_up"], p1["config"]) == (1, "p1", True, 0)
    assert (p2["port"], p2["name"], p2["link_up"], p2["config"]) == (2, "p2", False, 1)
    assert p1["hw_addr"].count(":") == 5
    assert "PORT_DOWN" in ok(switch, "show") and "LINK_DOWN" in ok(switch, "show")


def test_show_reports_connected_controllers(switch):
    """controller_connected counts handshaken controller sessions only:
    a service session (ovs-ofctl on the listener) is not a controller."""
    assert okj(switch, "show")["controller_connected"] is False
    assert "connected: no" in ok(switch, "show")
    sess = [types.SimpleNamespace(name="tcp:127.0.0.1:6653", role=2, service=False),
            types.SimpleNamespace(name="ptcp:6634 <- 127.0.0.1:5000", role=1, service=True)]
    switch.state.agent = types.SimpleNamespace(connected=lambda: sess)
    show = okj(switch, "show")
    assert show["controller_connected"] is True
    assert show["connections"] == [{"peer": "tcp:127.0.0.1:6653", "role": "master"}]
    assert "connected: tcp:127.0.0.1:6653 (master)" in ok(switch, "show")
    sess.pop(0)
    assert okj(switch, "show")["controller_connected"] is False


def test_show_port_state_without_datapath_getters(switch):
    """A datapath without port_link/port_config: the port's own link_up,
    else what the daemon recorded."""
    switch.dp.port_link = None
    switch.dp.port_config = None
    switch.state.link_up[2] = False
    switch.state.config[1] = 32
    ports = okj(switch, "show")["ports"]
    assert [(p["link_up"], p["config"]) for p in ports] == [(True, 32), (False, 0)]
    switch.dp.ports()[1].link_up = False
    assert okj(switch, "show")["ports"][0]["link_up"] is False


# ---------------------------------------------------------------- flows

def test_add_flow_and_dump_text(switch):
    assert ok(switch, "add-flow", "priority=100,in_port=1,actions=output:2") == ""
    out = ok(switch, "dump-flows")
    assert out == (" cookie=0x0, duration=1.500s, table=0, n_packets=3, n_bytes=294, "
                   "priority=100,in_port=1 actions=output:2\n")
    # the dump line is valid add-flow input
    assert parse_flow(out.strip()) == switch.dp._flows[0][0]


def test_add_flow_words_joined(switch):
    ok(switch, "add-flow", "in_port=1", "actions=output:2")
    assert switch.dp._flows[0][0] == parse_flow("in_port=1,actions=output:2")


def test_add_flow_port_names(switch):
    ok(switch, "add-flow", "in_port=p1,actions=output:p2")
    assert switch.dp._flows[0][0] == parse_flow("in_port=1,actions=output:2")


def test_dump_flows_json_shape(switch):
    ok(switch, "add-flow", "table=1,priority=7,cookie=0x42,idle_timeout=10,hard_timeout=20,"
                           "tcp,tp_dst=80,actions=set_field:1->vlan_pcp,goto_table:2")
    ok(switch, "add-flow", "priority=9,actions=drop")
    flows = okj(switch, "dump-flows")
    assert [set(f) for f in flows] == [{"table", "priority", "cookie", "match", "actions",
                                        "n_packets", "n_bytes", "duration", "idle_timeout",
                                        "hard_timeout"}] * 2
    assert [f["table"] for f in flows] == [0, 1]           # sorted by table
    f = flows[1]
    assert (f["priority"], f["cookie"], f["match"], f["actions"]) == (
        7, 0x42, "tcp,tp_dst=80", "set_field:1->vlan_pcp,goto_table:2")
    assert (f["n_packets"], f["n_bytes"], f["duration"]) == (3, 294, 1.5)
    assert (f["idle_timeout"], f["hard_timeout"]) == (10, 20)
    assert flows[0]["match"] == "" and flows[0]["actions"] == "drop"


def test_dump_flows_filter(switch):
    for fl in ("in_port=1,actions=output:2", "in_port=2,actions=output:1",
               "in_port=1,ip,actions=output:2", "table=3,in_port=1,actions=group:1"):
        if "group" in fl:
            ok(switch, "add-group", "group_id=1,type=all,bucket=output:2")
        ok(switch, "add-flow", fl)
    assert len(okj(switch, "dump-flows", "in_port=1")) == 3
    assert len(okj(switch, "dump-flows", "in_port=1,ip")) == 1
    assert len(okj(switch, "dump-flows", "table=3")) == 1
    assert len(okj(switch, "dump-flows", "out_port=1")) == 1
    assert len(okj(switch, "dump-flows", "out_group=1")) == 1
    assert okj(switch, "dump-flows", "in_port=7") == []
    assert ok(switch, "dump-flows", "in_port=7") == ""


def test_add_flow_syntax_error_exit_1_names_token(switch):
    err = fail(switch, "add-flow", "in_port=1,actions=outptu:2")
    assert "outptu" in err and "column 19" in err
    err = fail(switch, "add-flow", "in_prot=1,actions=drop")
    assert "in_prot" in err
    err = fail(switch, "add-flow", "ip,nw_src=10.0.0.300,actions=drop")
    assert "10.0.0.300" in err
    assert switch.dp._flows == []


def test_add_flow_rejected_by_datapath(switch):
    err = fail(switch, "add-flow", "actions=group:5")
    assert "rejected by the datapath: group 5 does not exist (OpenFlow error type 2, code 9)" in err


def test_add_flows_file(switch, tmp_path):
    p = tmp_path / "flows.txt"
    p.write_text("# comment\n\nin_port=1,actions=output:2\n  in_port=2 actions=output:1\n")
    assert ok(switch, "add-flows", str(p)) == ""
    assert len(switch.dp._flows) == 2
    assert okj(switch, "add-flows", str(p)) == {"added": 2}
    assert len(switch.dp._flows) == 2                 # same flows replaced


def test_add_flows_error_names_line_and_adds_nothing(switch, tmp_path):
    p = tmp_path / "flows.txt"
    p.write_text("in_port=1,actions=output:2\n# c\nin_port=2,actions=outptu:1\n")
    err = fail(switch, "add-flows", str(p))
    assert f"{p}:3:" in err and "outptu" in err
    assert switch.dp._flows == []


def test_add_flows_stdin(switch, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("in_port=1,actions=output:2\n"))
    ok(switch, "add-flows", "-")
    assert len(switch.dp._flows) == 1


def test_del_flows_loose_strict_all(switch):
    for fl in ("priority=10,in_port=1,actions=output:2", "priority=20,in_port=1,ip,actions=drop",
               "priority=10,in_port=2,actions=output:1", "priority=5,actions=drop"):
        ok(switch, "add-flow", fl)
    # loose: everything at least as specific as in_port=1
    assert okj(switch, "del-flows", "in_port=1") == {"deleted": 2}
    assert {f["match"] for f in okj(switch, "dump-flows")} == {"in_port=2", ""}
    # strict: exact match and priority only
    assert okj(switch, "--strict", "del-flows", "priority=99,in_port=2") == {"deleted": 0}
    assert ok(switch, "del-flows", "--strict", "priority=10,in_port=2") == ""
    assert [f["match"] for f in okj(switch, "dump-flows")] == [""]
    ok(switch, "add-flow", "in_port=1,actions=drop")
    assert ok(switch, "del-flows") == ""
    assert okj(switch, "dump-flows") == []


def test_del_flows_bad_filter(switch):
    err = fail(switch, "del-flows", "in_port=1,actions=drop")
    assert "not allowed in a flow filter" in err


# ---------------------------------------------------------------- ports, tables

def test_dump_ports(switch):
    out = ok(switch, "dump-ports")
    assert "port 1(p1): rx pkts=10, bytes=100, drop=1, errs=3, malformed=5" in out
    assert "tx pkts=40, bytes=400, drop=2, errs=4" in out
    rows = okj(switch, "dump-ports")
    keys = {"port", "name", "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped",
            "tx_dropped", "rx_errors", "tx_errors", "rx_malformed"}
    assert [set(r) for r in rows] == [keys, keys]
    assert rows[1]["port"] == 2 and rows[1]["name"] == "p2" and rows[1]["tx_bytes"] == 400


def test_dump_tables(switch):
    ok(switch, "add-flow", "actions=drop")
    rows = okj(switch, "dump-tables")
    assert len(rows) == 254
    assert rows[0] == {"table_id": 0, "active_count": 1, "lookup_count": 7, "matched_count": 5}
    assert ok(switch, "dump-tables") == "  table 0: active=1, lookup=7, matched=5\n"


# ---------------------------------------------------------------- groups, meters

def test_groups(switch):
    ok(switch, "add-group", "group_id=1,type=select,bucket=output:1,bucket=weight:5,output:2")
    ok(switch, "add-group", "group_id=2,type=fast_failover",
       "bucket=watch_port:1,output:1", "bucket=watch_port:2,output:2")
    assert ok(switch, "dump-groups") == (
        "group_id=1,type=select,bucket=actions=output:1,bucket=weight:5,actions=output:2\n"
        "group_id=2,type=fast_failover,bucket=watch_port:1,actions=output:1,"
        "bucket=watch_port:2,actions=output:2\n")
    groups = okj(switch, "dump-groups")
    assert [set(g) for g in groups] == [{"group_id", "type", "buckets", "packet_count",
                                         "byte_count", "bucket_stats"}] * 2
    g = groups[0]
    assert (g["group_id"], g["type"], g["packet_count"], g["byte_count"]) == (1, "select", 11, 1100)
    assert g["buckets"] == "bucket=actions=output:1,bucket=weight:5,actions=output:2"
    assert g["bucket_stats"] == [{"packet_count": 5, "byte_count": 500}] * 2
    assert groups[1]["type"] == "fast_failover"

    err = fail(switch, "add-group", "group_id=1,type=all")
    assert "rejected by the datapath" in err and "group exists" in err
    err = fail(switch, "add-group", "group_id=3,type=bogus")
    assert "bad value 'bogus'" in err

    assert okj(switch, "del-groups", "group_id=1") == {"deleted": 1}
    assert [g["group_id"] for g in okj(switch, "dump-groups")] == [2]
    assert ok(switch, "del-groups") == ""
    assert okj(switch, "dump-groups") == []


def test_meters(switch):
    ok(switch, "add-meter", "meter=1,kbps,burst,bands=type=drop,rate=1000,burst_size=100")
    assert ok(switch, "dump-meters") == \
        "meter=1,kbps,burst,bands=type=drop,rate=1000,burst_size=100\n"
    m = okj(switch, "dump-meters")[0]
    assert (m["meter_id"], m["flow_count"], m["duration"]) == (1, 0, 2.0)
    assert m["band_stats"] == [{"packet_band_count": 1, "byte_band_count": 2}]
    assert "band has no rate" in fail(switch, "add-meter", "meter=2,bands=type=drop")
    ok(switch, "del-meters")
    assert okj(switch, "dump-meters") == []


# ---------------------------------------------------------------- the daemon over the fake

@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    d = tmp_path / "run"
    monkeypatch.setenv("VDP_RUN_DIR", str(d))
    return d


def make_cfg(sock_dir, ports, **kw):
    overrides = {"ports": ports, "ctl": os.path.join(sock_dir, kw.pop("ctlname", "d.ctl"))}
    overrides.update(kw)
    return load_config(None, overrides)


class DaemonThread:
    def __init__(self, cfg, fastpath=None):
        self.fp = fastpath or fake_fastpath()
        self.d = daemon.Daemon(cfg, fastpath=self.fp, netlink=False)
        self.d.setup()
        self.loop = asyncio.new_event_loop()
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not os.path.exists(cfg.ctl):
            assert time.monotonic() < deadline and self.thread.is_alive(), self.error
            time.sleep(0.01)

    def _run(self):
        try:
            self.loop.run_until_complete(self.d.serve())
        except BaseException as e:        # surfaced by the test
            self.error = e

    def stop(self):
        self.loop.call_soon_threadsafe(self.d.stop)
        self.thread.join(10)
        self.d.teardown()
        self.loop.close()


def dctl(cfg, *argv):
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main_ctl(["--ctl", cfg.ctl, "--json"] + list(argv), stdout=out, stderr=err)
    assert rc == 0, err.getvalue()
    return json.loads(out.getvalue()) if out.getvalue().strip() else None


def test_daemon_standalone_serves_and_cleans_up(sock_dir, run_dir):
    FakePort.instances.clear()
    cfg = make_cfg(sock_dir, ["veth0", "tap:t0", "veth1"], name="sw1", dpid="0000000000000009")
    dt = DaemonThread(cfg)
    try:
        show = dctl(cfg, "show")
        assert (show["name"], show["dpid"], show["fail_mode"]) == ("sw1", "0000000000000009",
                                                                   "standalone")
        assert [(p["port"], p["name"]) for p in show["ports"]] == [
            (1, "veth0"), (2, "t0"), (3, "veth1")]
        assert dt.d.dp.fail_standalone is True
        assert dctl(cfg, "dump-flows") == []
        assert dt.d.dp.running
        assert sorted(os.listdir(run_dir)) == ["port-t0.lock", "port-veth0.lock",
                                               "port-veth1.lock"]
        assert os.path.exists(cfg.ctl + ".lock")
        # upcalls are drained and counted while no controller exists
        dt.d.dp.upcall_queue.extend([object()] * 70)
        deadline = time.monotonic() + 5
        while dctl(cfg, "show")["upcalls_dropped"] != 70:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # a second daemon on a port this one owns is refused, touching nothing
        other = make_cfg(sock_dir, ["veth9", "veth1"], ctlname="o.ctl")
        d2 = daemon.Daemon(other, fastpath=fake_fastpath(), netlink=False)
        with pytest.raises(daemon.DaemonError, match="port veth1 is already used by another vdp"):
            d2.setup()
        d2.teardown()
        assert not os.path.exists(other.ctl)
        assert os.path.exists(run_dir / "port-veth1.lock")      # still the first one's
        # and so is one on the same ctl socket
        same = make_cfg(sock_dir, ["veth7"])
        d3 = daemon.Daemon(same, fastpath=fake_fastpath(), netlink=False)
        with pytest.raises(daemon.DaemonError, match="served by another running vdp"):
            d3.setup()
        d3.teardown()
        assert dctl(cfg, "show")["name"] == "sw1"
    finally:
        dt.stop()
    assert dt.error is None, dt.error
    assert not dt.d.dp.running
    assert all(p.closed for p in FakePort.instances)
    assert dt.d.dp.ports() == {}
    assert not os.path.exists(cfg.ctl)
    assert not os.path.exists(cfg.ctl + ".lock")
    assert os.listdir(run_dir) == []


def test_daemon_standalone_uses_datapath_mode_not_a_flow(sock_dir, run_dir):
    # Standalone learning is the datapath's fail mode: no flow appears in
    # table 0, so a controller that connects later finds an empty table.
    fp = fake_fastpath()
    cfg = make_cfg(sock_dir, ["a"])
    dt = DaemonThread(cfg, fastpath=fp)
    try:
        assert dctl(cfg, "dump-flows") == []
        assert dt.d.dp.fail_standalone is True
    finally:
        dt.stop()


def test_daemon_secure_installs_config(sock_dir, run_dir, tmp_path):
    p = tmp_path / "c.toml"
    p.write_text(f"""
fail_mode = "secure"
ctl = "{os.path.join(sock_dir, 'c.ctl')}"
ports = ["a", "b"]
meters = ["meter=1,kbps,bands=type=drop,rate=100"]
groups = ["group_id=1,type=all,bucket=output:1,bucket=output:2"]
flows = ["in_port=a,actions=meter:1,group:1", "in_port=b,actions=output:a"]
""")
    cfg = load_config(str(p))
    dt = DaemonThread(cfg)
    try:
        flows = dctl(cfg, "dump-flows")
        assert sorted((f["match"], f["actions"]) for f in flows) == [
            ("in_port=1", "meter:1,group:1"), ("in_port=2", "output:1")]
        assert [g["group_id"] for g in dctl(cfg, "dump-groups")] == [1]
        assert dctl(cfg, "show")["fail_mode"] == "secure"
        assert dt.d.dp.fail_standalone is False
        # dpid derived from the lowest port address when not given
        assert dctl(cfg, "show")["dpid"] == format(
            min(int.from_bytes(pt.hw_addr, "big") for pt in dt.d.ports.values()), "016x")
    finally:
        dt.stop()


def test_daemon_refuses_flow_the_datapath_rejects(sock_dir, run_dir):
    cfg = make_cfg(sock_dir, ["a"], fail_mode="secure")
    cfg.flows.append(parse_flow("actions=group:7"))
    cfg.flow_texts.append("actions=group:7")
    d = daemon.Daemon(cfg, fastpath=fake_fastpath(), netlink=False)
    with pytest.raises(daemon.DaemonError, match=r"flows\[0\] \(actions=group:7\).*group 7"):
        d.setup()
    d.teardown()
    assert os.listdir(run_dir) == []
    assert not os.path.exists(cfg.ctl + ".lock")


def test_daemon_port_open_failure(sock_dir, run_dir):
    FakePort.instances.clear()
    cfg = make_cfg(sock_dir, ["a", "missing0"])
    d = daemon.Daemon(cfg, fastpath=fake_fastpath(), netlink=False)
    with pytest.raises(daemon.DaemonError, match="port missing0: cannot open: no such interface"):
        d.setup()
    d.teardown()
    assert FakePort.instances[0].closed                  # the one opened before is closed
    assert os.listdir(run_dir) == []


def test_link_changes_reach_datapath_and_show(sock_dir, run_dir):
    cfg = make_cfg(sock_dir, ["a", "b"])
    dt = DaemonThread(cfg)
    try:
        dt.loop.call_soon_threadsafe(dt.d._link_changed, 2, False, "no carrier")
        deadline = time.monotonic() + 5
        while dctl(cfg, "show")["ports"][1]["link_up"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert dt.d.dp.link[2] is False
    finally:
        dt.stop()


def test_linktracker_logic():
    from datapath.linkmon import LinkTracker, IFF_UP, IFF_LOWER_UP
    t = LinkTracker()
    t.watch(1, 10, "a")
    t.watch(2, 0, "b")                          # index learnt from the name
    up = IFF_UP | IFF_LOWER_UP
    assert t.update("RTM_NEWLINK", 10, "a", up, initial=True) == [(1, True, "up")]
    assert t.update("RTM_NEWLINK", 10, "a", up) == []                    # no change
    assert t.update("RTM_NEWLINK", 10, "a", IFF_UP) == [(1, False, "no carrier")]
    assert t.update("RTM_NEWLINK", 11, "b", 0, initial=True) == [(2, False, "admin down")]
    assert t.update("RTM_NEWLINK", 11, "b", up) == [(2, True, "up")]
    assert t.update("RTM_NEWLINK", 99, "zz", 0) == []                    # not ours
    assert t.update("RTM_DELLINK", 10, "a", 0) == []                     # already down
    # moving to another netns: the kernel downs it first, then it leaves our sight
    assert t.update("RTM_NEWLINK", 11, "b", 0) == [(2, False, "admin down")]
    assert t.update("RTM_DELLINK", 11, "b", 0, moved=True) == [
        (2, True, "moved to another network namespace (assumed up)")]
    assert t.update("RTM_NEWLINK", 11, "b", 0) == []                     # no longer tracked


def test_vdp_run_sigterm_exit_0_and_cleanup(sock_dir, tmp_path):
    """The real `run()` (signals, logging) in a subprocess over the fake."""
    ctl = os.path.join(sock_dir, "sig.ctl")
    script = (
        "import sys; sys.path[:0] = [%r, %r]\n"
        "import test_ctl\n"
        "from datapath import daemon\n"
        "from datapath.config import load_config\n"
        "cfg = load_config(None, {'ports': ['a', 'tap:t1'], 'ctl': %r, 'name': 'sig'})\n"
        "sys.exit(daemon.run(cfg, fastpath=test_ctl.fake_fastpath(), netlink=False))\n"
    ) % (str(HERE), str(REPO), ctl)
    env = dict(os.environ, VDP_RUN_DIR=str(tmp_path / "run"))
    p = subprocess.Popen([sys.executable, "-c", script], env=env, cwd="/",
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not os.path.exists(ctl):
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        out = io.StringIO()
        assert cli.main_ctl(["--ctl", ctl, "show"], stdout=out, stderr=io.StringIO()) == 0
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert "sig running" in err and "SIGTERM: stopping" in err
    assert not os.path.exists(ctl)
    assert os.listdir(tmp_path / "run") == []


# ---------------------------------------------------------------- the real fast path

@pytest.fixture
def real_switch(sock_dir):
    """A CtlServer over the real Datapath (datapath/fastpath.py) with two
    DummyPorts; skipped when the fast path is not built."""
    fp = pytest.importorskip("datapath.fastpath", exc_type=ImportError)
    dp = fp.Datapath()
    d1, d2 = fp.DummyPort("d1"), fp.DummyPort("d2")
    dp.attach_port(1, d1)
    dp.attach_port(2, d2)
    state = ctlmod.SwitchState(name="real", dpid=7, fail_mode="secure")
    path = os.path.join(sock_dir, "real.ctl")
    server = ctlmod.CtlServer(path, ctlmod.Commands(dp, state))
    lt = LoopThread()
    lt.run(server.start())
    yield types.SimpleNamespace(dp=dp, d1=d1, d2=d2, state=state, path=path)
    lt.run(server.close())
    lt.close()


FRAME = bytes.fromhex("ffffffffffff020000000001" "88b5") + bytes(46)


def test_real_datapath_through_ctl(real_switch):
    sw = real_switch
    ok(sw, "add-flow", "priority=100,in_port=d1,actions=output:d2")
    sw.d1.inject(FRAME)
    sw.dp.run_dummy()
    assert sw.d2.take_tx() == [FRAME]
    flows = okj(sw, "dump-flows")
    assert [(f["priority"], f["match"], f["actions"], f["n_packets"], f["n_bytes"])
            for f in flows] == [(100, "in_port=1", "output:2", 1, len(FRAME))]
    ports = {p["port"]: p for p in okj(sw, "dump-ports")}
    assert ports[1]["rx_packets"] == 1 and ports[2]["tx_packets"] == 1
    assert okj(sw, "dump-tables")[0]["lookup_count"] >= 1
    line = ok(sw, "dump-flows")
    assert "n_packets=1" in line and "priority=100,in_port=1 actions=output:2" in line

    ok(sw, "add-group", "group_id=1,type=fast_failover,bucket=watch_port:2,output:2")
    g = okj(sw, "dump-groups")[0]
    assert (g["group_id"], g["type"], len(g["bucket_stats"])) == (1, "fast_failover", 1)
    err = fail(sw, "add-flow", "actions=group:9")
    assert "rejected by the datapath" in err and "group 9" in err

    show = okj(sw, "show")
    assert [(p["port"], p["name"], p["link_up"]) for p in show["ports"]] == [
        (1, "d1", True), (2, "d2", True)]
    sw.dp.set_port_link(2, False)
    assert okj(sw, "show")["ports"][1]["link_up"] is False

    ok(sw, "add-flow", "priority=5,in_port=1,ip,actions=drop")
    assert okj(sw, "del-flows", "in_port=1,ip") == {"deleted": 1}
    assert okj(sw, "del-flows", "in_port=1") == {"deleted": 1}
    assert okj(sw, "dump-flows") == []


# ---------------------------------------------------------------- bonds: lacp/show, bond/show

@pytest.fixture
def bond_switch(sock_dir):
    """A CtlServer whose switch has two bonds: ab (LACP, negotiated with a
    peer switch through dummy wires, see test_bond_control.Net) and st
    (static active-backup, one member up)."""
    pytest.importorskip("datapath.fastpath", exc_type=ImportError)
    from datapath import bond as B
    from datapath.fastpath import BondPort, DummyPort
    from test_bond_control import Net
    net = Net(2, a=dict(lacp="active", lacp_time="fast", mode="balance-l4"),
              b=dict(lacp="active", lacp_time="fast", mode="balance-l4"))
    net.run(5)
    members = [DummyPort("sm0"), DummyPort("sm1")]
    st_port = BondPort("st", members)
    st = B.BondController(B.BondSettings("st", ["sm0", "sm1"]), st_port, ofport=3)
    st.link(1, True, 0)
    state = ctlmod.SwitchState(name="bsw", dpid=7, fail_mode="secure")
    state.bonds = {"abond": net.A.ctl, "st": st}
    path = os.path.join(sock_dir, "bsw.ctl")
    server = ctlmod.CtlServer(path, ctlmod.Commands(net.A.dp, state))
    lt = LoopThread()
    lt.run(server.start())
    yield types.SimpleNamespace(net=net, st=st, state=state, path=path)
    lt.run(server.close())
    lt.close()


def test_lacp_show_json(bond_switch):
    sw = bond_switch
    res = okj(sw, "lacp/show")
    assert [b["name"] for b in res] == ["abond", "st"]
    ab = res[0]
    assert ab["status"] == "negotiated" and ab["negotiated"] is True
    assert ab["mode"] == "active" and ab["rate"] == "fast"
    assert ab["partner"]["system"] == sw.net.B.ctl.lacp_status()["system"]
    assert [m["name"] for m in ab["members"]] == ["am0", "am1"]
    for m in ab["members"]:
        assert m["mux"] == "COLLECTING_DISTRIBUTING"
        assert "distributing" in m["actor"]["state_names"]
        assert "distributing" in m["partner"]["state_names"]
        assert m["counters"]["lacpdus_rx"] > 0
    assert res[1]["status"] == "off" and res[1]["lacp"] is False
    one = okj(sw, "lacp/show", "abond")
    assert len(one) == 1 and one[0]["name"] == "abond"


def test_lacp_show_text(bond_switch):
    out = ok(bond_switch, "lacp/show", "abond")
    assert out.startswith("---- abond ----\n")
    assert "  status: active negotiated\n" in out
    assert "member: am0: current attached\n" in out and "member: am1: current attached\n" in out
    assert "  actor state: activity timeout aggregation synchronized collecting distributing\n" in out
    assert "  partner state: activity timeout aggregation synchronized collecting distributing\n" in out
    assert "  lacp_time: fast\n" in out
    out = ok(bond_switch, "lacp/show", "st")
    assert "status: off" in out


def test_bond_show_json_and_text(bond_switch):
    sw = bond_switch
    res = okj(sw, "bond/show")
    ab, st = res
    assert ab["mode"] == "balance-l4" and ab["lacp_status"] == "negotiated" and ab["link_up"]
    assert [m["buckets"] for m in ab["members"]] == [128, 128]
    assert all(m["enabled"] and m["collecting"] for m in ab["members"])
    assert ab["next_rebalance_ms"] is not None
    assert st["mode"] == "active-backup" and st["active_member"] == "sm1"
    assert [(m["name"], m["enabled"], m["buckets"], m["link_up"]) for m in st["members"]] == [
        ("sm0", False, 0, False), ("sm1", True, 256, True)]
    text = ok(sw, "bond/show", "st")
    assert text.startswith("---- st ----\nbond_mode: active-backup\n")
    assert "member sm1: enabled\n  active member\n" in text
    assert "member sm0: disabled\n" in text and "  buckets: 256\n" in text
    assert "lacp_status: off" in text
    text = ok(sw, "bond/show")
    assert "---- abond ----" in text and "lacp_status: negotiated (lacp active" in text


def test_bond_commands_errors(bond_switch):
    err = fail(bond_switch, "bond/show", "nope")
    assert "no bond named 'nope'" in err and "abond, st" in err
    err = fail(bond_switch, "lacp/show", "nope")
    assert "no bond named 'nope'" in err
    rc, out, err = vctl(bond_switch, "bond/show", "a", "b")
    assert rc == 2 and "unexpected argument 'b'" in err


def test_bond_commands_without_bonds(switch):
    assert okj(switch, "bond/show") == []
    assert ok(switch, "lacp/show") == ""
    assert "none configured" in fail(switch, "bond/show", "x")
