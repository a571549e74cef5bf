"""The unix control socket of `vdp run`, and its client (`vdp ctl`).

Server side (datapath/daemon.py runs it in its asyncio loop): CtlServer
listens on a unix socket (mode 0600, removed at close) and hands each
request to Commands, which executes it against the Datapath and returns
either ovs-ofctl-like text or the --json shapes documented in docs/cli.md.
Client side (datapath/cli.py): request() sends one request and returns the
result or raises CtlError with the daemon's message.

Wire format: one JSON object per line each way.
    request:  {"cmd": "dump-flows", "args": {"filter": "in_port=1"}, "json": false}
    response: {"ok": true, "result": <text or JSON value>}
              {"ok": false, "error": "bad value 'x1' for field 'in_port' at column 9"}
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import stat
import time
from dataclasses import dataclass, field

from . import flowsyntax as fs
from . import model as M

log = logging.getLogger("vdp.ctl")

MAX_LINE = 64 << 20          # one request line (add-flows sends all its flows at once)


class CtlError(Exception):
    """A ctl request failed; the message is for the user."""


class CtlUsageError(CtlError):
    """Bad `vdp ctl` arguments (exit status 2, like argparse errors)."""


# ---------------------------------------------------------------- commands
# name -> (min args, max args or None, what the args are)
COMMANDS = {
    "show": (0, 0, ""),
    "dump-flows": (0, None, "[FLOW-FILTER]"),
    "dump-ports": (0, 0, ""),
    "dump-tables": (0, 0, ""),
    "dump-groups": (0, 0, ""),
    "dump-meters": (0, 0, ""),
    "add-flow": (1, None, "FLOW"),
    "add-flows": (1, 1, "FILE"),
    "del-flows": (0, None, "[FLOW-FILTER]"),
    "add-group": (1, None, "GROUP"),
    "del-groups": (0, 1, "[group_id=N]"),
    "add-meter": (1, None, "METER"),
    "del-meters": (0, 1, "[meter=N]"),
    "lacp/show": (0, 1, "[BOND]"),
    "bond/show": (0, 1, "[BOND]"),
}


def client_args(cmd, words, strict=False, stdin=None):
    """Turns `vdp ctl CMD WORDS...` into the request's args dict.

    Several words are joined (flows accept spaces as separators, so
    `add-flow in_port=1 actions=output:2` works).  add-flows reads FILE
    ('-' = stdin) here, on the client, and sends its lines."""
    if cmd not in COMMANDS:
        raise CtlUsageError(f"unknown command {cmd!r} (known: {', '.join(COMMANDS)})")
    lo, hi, what = COMMANDS[cmd]
    if len(words) < lo:
        raise CtlUsageError(f"{cmd}: missing {what}")
    if hi is not None and len(words) > hi:
        extra = words[hi:]
        raise CtlUsageError(f"{cmd}: unexpected argument {extra[0]!r}"
                            + (f" (usage: {cmd} {what})" if what else f" ({cmd} takes none)"))
    if strict and cmd != "del-flows":
        raise CtlUsageError(f"--strict applies to del-flows only, not {cmd}")
    text = " ".join(words)
    if cmd in ("dump-flows", "del-flows"):
        args = {"filter": text or None}
        if cmd == "del-flows":
            args["strict"] = bool(strict)
        return args
    if cmd == "add-flow":
        return {"flow": text}
    if cmd == "add-group":
        return {"group": ",".join(words)}
    if cmd == "add-meter":
        return {"meter": ",".join(words)}
    if cmd == "del-groups":
        return {"group": text or None}
    if cmd == "del-meters":
        return {"meter": text or None}
    if cmd in ("lacp/show", "bond/show"):
        return {"bond": text or None}
    if cmd == "add-flows":
        path = words[0]
        try:
            if path == "-":
                import sys
                content = (stdin or sys.stdin).read()
            else:
                with open(path, encoding="utf-8") as f:
                    content = f.read()
        except OSError as e:
            raise CtlError(f"add-flows: cannot read {path}: {e.strerror or e}") from None
        lines = [[n, line.strip()] for n, line in enumerate(content.splitlines(), 1)
                 if line.strip() and not line.lstrip().startswith("#")]
        return {"flows": lines, "source": "stdin" if path == "-" else path}
    return {}


@dataclass
class SwitchState:
    """What the daemon knows about the switch beyond the Datapath itself.
    The daemon updates link_up/config as the link monitor reports."""
    name: str = "vdp0"
    dpid: int = 0
    fail_mode: str = "standalone"
    n_tables: int = 254
    controllers: list = field(default_factory=list)     # strings
    listen: list = field(default_factory=list)          # strings
    link_up: dict = field(default_factory=dict)         # ofport -> bool
    config: dict = field(default_factory=dict)          # ofport -> OFPPC bits
    upcalls_dropped: int = 0
    agent: object = None          # datapath.ofp.agent.Agent once OpenFlow is up
    bonds: dict = field(default_factory=dict)           # name -> datapath.bond.BondController


_PPC = ((1 << 0, "PORT_DOWN"), (1 << 2, "NO_RECV"), (1 << 5, "NO_FWD"), (1 << 6, "NO_PACKET_IN"))
_STAT_KEYS = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped",
              "rx_errors", "tx_errors", "rx_malformed")


def _mac(b):
    if isinstance(b, int):
        b = b.to_bytes(6, "big")
    return ":".join(f"{x:02x}" for x in bytes(b or b"\0" * 6))


def _config_words(cfg):
    words = [n for bit, n in _PPC if cfg & bit]
    return " ".join(words) if words else "0"


class Commands:
    """Executes ctl requests against a Datapath (the facade API)."""

    def __init__(self, dp, state: SwitchState):
        self.dp = dp
        self.state = state

    # -- helpers
    def _ports(self):
        return sorted(self.dp.ports().items())

    def _port_names(self):
        return {getattr(p, "name", None): n for n, p in self.dp.ports().items()}

    def _port_status(self, ofport, port):
        """(link up, OFPPC config bits): the datapath's view when it has
        one (Datapath.port_link/port_config), else the port's, else ours."""
        pl = getattr(self.dp, "port_link", None)
        pc = getattr(self.dp, "port_config", None)
        if callable(pl) and callable(pc):
            return bool(pl(ofport)), int(pc(ofport))
        up = getattr(port, "link_up", None)
        if callable(up):
            up = up()
        if up is None:
            up = self.state.link_up.get(ofport, True)
        cfg = getattr(port, "config", None)
        if callable(cfg):
            cfg = cfg()
        if cfg is None:
            cfg = self.state.config.get(ofport, 0)
        return bool(up), int(cfg)

    def execute(self, cmd, args=None, as_json=False):
        """Runs one command; returns text or a JSON value; raises CtlError."""
        args = args or {}
        fn = getattr(self, "cmd_" + str(cmd).replace("-", "_").replace("/", "_"), None)
        if fn is None or cmd not in COMMANDS:
            raise CtlError(f"unknown command {cmd!r}")
        try:
            return fn(args, as_json)
        except CtlError:
            raise
        except fs.FlowSyntaxError as e:
            raise CtlError(f"{cmd}: {e}") from None
        except Exception as e:            # the datapath refused: say so, keep serving
            log.debug("%s failed", cmd, exc_info=True)
            raise CtlError(f"{cmd}: {_dp_error(e)}") from None

    # -- commands
    def cmd_show(self, args, as_json):
        st = self.state
        ports = []
        for n, p in self._ports():
            up, cfg = self._port_status(n, p)
            ports.append({"port": n, "name": p.name, "hw_addr": _mac(getattr(p, "hw_addr", None)),
                          "link_up": up, "config": cfg})
        # Sessions that finished the OpenFlow handshake; service connections
        # (ovs-ofctl on the passive listener) do not count as controllers.
        conns = [s for s in st.agent.connected() if not s.service] if st.agent else []
        roles = {1: "equal", 2: "master", 3: "slave"}
        connections = [{"peer": s.name, "role": roles.get(s.role, str(s.role))} for s in conns]
        if as_json:
            return {"name": st.name, "dpid": f"{st.dpid:016x}", "fail_mode": st.fail_mode,
                    "n_tables": st.n_tables, "controllers": list(st.controllers),
                    "controller_connected": bool(conns), "connections": connections,
                    "upcalls_dropped": st.upcalls_dropped, "ports": ports}
        lines = [f"{st.name}: dpid:{st.dpid:016x}",
                 f"fail_mode: {st.fail_mode}, n_tables: {st.n_tables}",
                 "controllers: " + (", ".join(st.controllers) or "none")
                 + (f"; listen: {', '.join(st.listen)}" if st.listen else ""),
                 "connected: " + (", ".join(f"{c['peer']} ({c['role']})" for c in connections)
                                  or "no")]
        for p in ports:
            lines += [f" {p['port']}({p['name']}): addr:{p['hw_addr']}",
                      f"     config:     {_config_words(p['config'])}",
                      f"     state:      {'LINK_UP' if p['link_up'] else 'LINK_DOWN'}"]
        return "\n".join(lines) + "\n"

    def _filter(self, text):
        return fs.parse_flow_filter(text or "", port_names=self._port_names())

    def cmd_dump_flows(self, args, as_json):
        f = self._filter(args.get("filter"))
        flows = self.dp.flows(table_id=f.table_id, match=f.match if f.match.fields else None,
                              out_port=f.out_port, out_group=f.out_group,
                              cookie=f.cookie, cookie_mask=f.cookie_mask)
        if f.priority is not None:
            flows = [s for s in flows if s.spec.priority == f.priority]
        flows = sorted(flows, key=lambda s: (s.spec.table_id, -s.spec.priority))
        if as_json:
            return [{"table": s.spec.table_id, "priority": s.spec.priority,
                     "cookie": s.spec.cookie, "match": fs.format_match(s.spec.match),
                     "actions": fs.format_instructions(s.spec.instructions),
                     "n_packets": s.packet_count, "n_bytes": s.byte_count,
                     "duration": round(s.duration_ns / 1e9, 3),
                     "idle_timeout": s.spec.idle_timeout, "hard_timeout": s.spec.hard_timeout}
                    for s in flows]
        return "".join(fs.format_flow(s) + "\n" for s in flows)

    def cmd_dump_ports(self, args, as_json):
        stats = self.dp.port_stats()
        out = []
        for n, p in self._ports():
            s = stats.get(n, {})
            row = {"port": n, "name": p.name}
            row.update({k: int(s.get(k, 0)) for k in _STAT_KEYS})
            out.append(row)
        if as_json:
            return out
        lines = []
        for r in out:
            head = f"  port {r['port']}({r['name']}): "
            lines.append(f"{head}rx pkts={r['rx_packets']}, bytes={r['rx_bytes']}, "
                         f"drop={r['rx_dropped']}, errs={r['rx_errors']}, "
                         f"malformed={r['rx_malformed']}")
            lines.append(f"{' ' * len(head)}tx pkts={r['tx_packets']}, bytes={r['tx_bytes']}, "
                         f"drop={r['tx_dropped']}, errs={r['tx_errors']}")
        return "".join(line + "\n" for line in lines)

    def cmd_dump_tables(self, args, as_json):
        rows = [{"table_id": int(t["table_id"]), "active_count": int(t["active_count"]),
                 "lookup_count": int(t["lookup_count"]), "matched_count": int(t["matched_count"])}
                for t in self.dp.table_stats()]
        if as_json:
            return rows
        return "".join(f"  table {r['table_id']}: active={r['active_count']}, "
                       f"lookup={r['lookup_count']}, matched={r['matched_count']}\n"
                       for r in rows if r["table_id"] == 0 or r["active_count"]
                       or r["lookup_count"])

    def cmd_dump_groups(self, args, as_json):
        groups = sorted(self.dp.groups(), key=lambda gs: gs[0].group_id)
        if not as_json:
            return "".join(fs.format_group(g) + "\n" for g, _ in groups)
        out = []
        for g, st in groups:
            st = st or {}
            bstats = [_pkt_bytes(b) for b in st.get("bucket_stats", ())]
            row = {"group_id": g.group_id,
                   "type": M.GROUP_TYPE_NAMES.get(g.type, str(g.type)),
                   "buckets": fs.format_buckets(g.buckets, g.type),
                   "packet_count": int(st.get("packet_count", 0)),
                   "byte_count": int(st.get("byte_count", 0)),
                   "bucket_stats": bstats}
            if "ref_count" in st:
                row["ref_count"] = int(st["ref_count"])
            if "duration_ns" in st:
                row["duration"] = round(st["duration_ns"] / 1e9, 3)
            out.append(row)
        return out

    def cmd_dump_meters(self, args, as_json):
        meters = sorted(self.dp.meters(), key=lambda ms: ms[0].meter_id)
        if not as_json:
            return "".join(fs.format_meter(m) + "\n" for m, _ in meters)
        out = []
        for m, st in meters:
            st = st or {}
            row = {"meter_id": m.meter_id, "meter": fs.format_meter(m)}
            for k in ("flow_count", "packet_in_count", "byte_in_count"):
                if k in st:
                    row[k] = int(st[k])
            if "duration_ns" in st:
                row["duration"] = round(st["duration_ns"] / 1e9, 3)
            if "band_stats" in st:
                row["band_stats"] = [
                    {k: int(v) for k, v in b.items()} if isinstance(b, dict) else
                    dict(zip(("packet_band_count", "byte_band_count"), map(int, tuple(b)[:2])))
                    for b in st["band_stats"]]
            out.append(row)
        return out

    def cmd_add_flow(self, args, as_json):
        spec = fs.parse_flow(args.get("flow") or "", port_names=self._port_names())
        self.dp.flow_add(spec)
        return None

    def cmd_add_flows(self, args, as_json):
        source = args.get("source", "flows")
        names = self._port_names()
        specs = []
        for lineno, text in args.get("flows", []):
            try:
                specs.append((lineno, fs.parse_flow(text, port_names=names)))
            except fs.FlowSyntaxError as e:
                raise CtlError(f"add-flows: {source}:{lineno}: {e}") from None
        for i, (lineno, spec) in enumerate(specs):
            try:
                self.dp.flow_add(spec)
            except Exception as e:
                raise CtlError(f"add-flows: {source}:{lineno}: {_dp_error(e)} "
                               f"({i} flow(s) before it were added)") from None
        return {"added": len(specs)} if as_json else None

    def cmd_del_flows(self, args, as_json):
        text = args.get("filter")
        strict = bool(args.get("strict"))
        if text:
            f = self._filter(text)
        else:
            f = fs.FlowFilter()
        prio = f.priority
        if strict and prio is None:
            prio = 0x8000
        removed = self.dp.flow_delete(table_id=f.table_id,
                                      match=f.match if (f.match.fields or strict) else None,
                                      priority=prio if strict else None, strict=strict,
                                      out_port=f.out_port, out_group=f.out_group,
                                      cookie=f.cookie, cookie_mask=f.cookie_mask)
        n = len(removed) if removed is not None else 0
        return {"deleted": n} if as_json else None

    def cmd_add_group(self, args, as_json):
        g = fs.parse_group(args.get("group") or "", port_names=self._port_names())
        self.dp.group_add(g)
        return None

    def cmd_del_groups(self, args, as_json):
        gid = fs.parse_group_id(args.get("group"))
        if gid == M.OFPG_ALL:
            ids = [g.group_id for g, _ in self.dp.groups()]
        else:
            ids = [gid]
        for i in ids:
            self.dp.group_delete(i)
        return {"deleted": len(ids)} if as_json else None

    def cmd_add_meter(self, args, as_json):
        self.dp.meter_add(fs.parse_meter(args.get("meter") or ""))
        return None

    def cmd_del_meters(self, args, as_json):
        mid = fs.parse_meter_id(args.get("meter"))
        ids = [m.meter_id for m, _ in self.dp.meters()] if mid == 0xFFFFFFFF else [mid]
        for i in ids:
            self.dp.meter_delete(i)
        return {"deleted": len(ids)} if as_json else None

    # -- bonds (`ovs-appctl lacp/show` and `bond/show` look-alikes)
    def _bonds(self, args, cmd):
        bonds = dict(getattr(self.state, "bonds", None) or {})
        want = args.get("bond")
        if want:
            if want not in bonds:
                known = ", ".join(bonds) or "none configured"
                raise CtlError(f"{cmd}: no bond named {want!r} (bonds: {known})")
            return [bonds[want]]
        return list(bonds.values())

    def cmd_lacp_show(self, args, as_json):
        sts = [b.lacp_status() for b in self._bonds(args, "lacp/show")]
        if as_json:
            return sts
        return "".join(format_lacp_show(st) for st in sts)

    def cmd_bond_show(self, args, as_json):
        now = time.monotonic()
        sts = [b.status(now) for b in self._bonds(args, "bond/show")]
        if as_json:
            return sts
        return "".join(format_bond_show(st) for st in sts)


def _yn(v):
    return "true" if v else "false"


def _info_lines(who, info):
    return [f"  {who} sys_id: {info['system']}",
            f"  {who} sys_priority: {info['system_priority']}",
            f"  {who} port_id: {info['port']}",
            f"  {who} port_priority: {info['port_priority']}",
            f"  {who} key: {info['key']}",
            f"  {who} state: {' '.join(info.get('state_names') or []) or 'none'}"]


def format_lacp_show(st):
    """One bond's lacp/show text (lacp.Bond.status() + BondController extras)."""
    lines = [f"---- {st['name']} ----"]
    if not st.get("lacp"):
        lines.append("  status: off (LACP disabled: static aggregation)")
    else:
        lines.append(f"  status: {st['mode']}"
                     + (" negotiated" if st.get("negotiated") else ""))
    lines += [f"  sys_id: {st['system']}",
              f"  sys_priority: {st['system_priority']}",
              f"  aggregation key: {st['key']}",
              f"  lacp_time: {st['rate']}",
              f"  lacp_fallback_ab: {_yn(st.get('fallback'))}"
              + (f" (active on {st['fallback_member']})" if st.get("fallback_active") else "")]
    p = st.get("partner")
    lines.append("  partner: " + (f"{p['system_priority']},{p['system']} key {p['key']}"
                                  if p else "none"))
    lines.append("  distributing: " + (", ".join(str(x) for x in st.get("distributing") or [])
                                       or "none"))
    c = st.get("counters") or {}
    errs = c.get("errors") or {}
    lines.append(f"  lacpdus: rx {c.get('lacpdus_rx', 0)} tx {c.get('lacpdus_tx', 0)}"
                 f" errors {c.get('rx_errors', 0)}"
                 + (" (" + ", ".join(f"{k} {v}" for k, v in errs.items() if v) + ")"
                    if any(errs.values()) else "")
                 + f" ignored {c.get('rx_ignored', 0)} loopback {c.get('loopback', 0)};"
                 f" markers rx {c.get('markers_rx', 0)} responses tx "
                 f"{c.get('marker_responses_tx', 0)}")
    for m in st.get("members", []):
        rx = (m.get("receive") or "").lower()
        rx_word = {"current": "current", "expired": "expired", "defaulted": "defaulted"}.get(
            rx, rx.replace("_", " "))
        att = "attached" if m.get("mux") in ("ATTACHED", "COLLECTING_DISTRIBUTING") else "detached"
        lines += ["", f"member: {m.get('name', m['member'])}: {rx_word} {att}"
                  + (" looped" if m.get("looped") else "")
                  + (" (fallback)" if m.get("fallback") else ""),
                  f"  port_id: {m['port_id']}",
                  f"  port_priority: {m['port_priority']}",
                  f"  link: {'up' if m.get('link_up') else 'down'}",
                  f"  may_enable: {_yn(m.get('distributing'))}",
                  f"  machines: receive {m.get('receive')}, mux {m.get('mux')}, "
                  f"selected {m.get('selected')}, periodic {m.get('periodic')}, "
                  f"churn actor {m.get('actor_churn')} partner {m.get('partner_churn')}"]
        mc = m.get("counters") or {}
        lines.append(f"  lacpdus: rx {mc.get('lacpdus_rx', 0)} tx {mc.get('lacpdus_tx', 0)}"
                     f" errors {mc.get('rx_errors', 0)}")
        lines.append("")
        lines += _info_lines("actor", m["actor"])
        lines.append("")
        lines += _info_lines("partner", m["partner"])
    return "\n".join(lines) + "\n"


def format_bond_show(st):
    """One bond's bond/show text (BondController.status())."""
    lines = [f"---- {st['name']} ----",
             f"bond_mode: {st['mode']}",
             f"hash: {st['hash']}",
             f"ofport: {st['ofport']}",
             f"bond link: {'up' if st['link_up'] else 'down'}",
             f"lacp_status: {st['lacp_status']}"
             + (f" (lacp {st['lacp']}, lacp_time {st['lacp_time']})" if st["lacp"] != "off"
                else ""),
             f"lacp_fallback_ab: {_yn(st['lacp_fallback'])}"
             + (" (active)" if st.get("fallback_active") else "")]
    if st.get("next_rebalance_ms") is not None:
        lines.append(f"next rebalance: {st['next_rebalance_ms']} ms")
    lines.append(f"active member: {st.get('active_member') or 'none'}")
    c = st.get("counters") or {}
    lines.append(f"dropped: not collecting {c.get('not_collecting_dropped', 0)}, "
                 f"no member {c.get('no_member_dropped', 0)}; fallback tx "
                 f"{c.get('fallback_tx', 0)}; bucket moves {c.get('bucket_moves', 0)} "
                 f"(rebalance {c.get('rebalance_moves', 0)}), failovers {c.get('failovers', 0)}")
    lc = st.get("lacp_counters") or {}
    if st["lacp"] != "off":
        lines.append(f"lacpdus: rx {lc.get('lacpdus_rx', 0)} tx {lc.get('lacpdus_tx', 0)} "
                     f"errors {lc.get('rx_errors', 0)}")
    interval = st.get("load_interval")
    for m in st["members"]:
        state = "enabled" if m["enabled"] else "disabled"
        lines += ["", f"member {m['name']}: {state}"]
        if m.get("active"):
            lines.append("  active member")
        lines += [f"  link: {m['link']}",
                  f"  may_enable: {_yn(m['distributing'])}, collecting: {_yn(m['collecting'])}",
                  f"  lacp: {m['lacp']}",
                  f"  buckets: {m['buckets']}",
                  f"  load: {m['load_bytes'] // 1000} kB"
                  + (f" in the last {interval:.1f} s" if interval else " (not measured yet)"),
                  f"  rx: {m['rx_packets']} pkts {m['rx_bytes']} bytes; "
                  f"tx: {m['tx_packets']} pkts {m['tx_bytes']} bytes",
                  f"  dropped: rx {m['rx_dropped']} tx {m['tx_dropped']} "
                  f"not collecting {m['not_collecting_dropped']}; errors rx {m['rx_errors']} "
                  f"tx {m['tx_errors']}"]
    return "\n".join(lines) + "\n"


def _pkt_bytes(b):
    if isinstance(b, dict):
        return {"packet_count": int(b.get("packet_count", 0)),
                "byte_count": int(b.get("byte_count", 0))}
    pkts, nbytes = tuple(b)[:2]
    return {"packet_count": int(pkts), "byte_count": int(nbytes)}


def _dp_error(e):
    """A datapath exception as a message (FlowError carries type/code)."""
    msg = getattr(e, "message", None) or str(e) or type(e).__name__
    t, c = getattr(e, "type", None), getattr(e, "code", None)
    if isinstance(t, int) and isinstance(c, int):
        return f"rejected by the datapath: {msg} (OpenFlow error type {t}, code {c})"
    return f"rejected by the datapath: {msg}"


# ---------------------------------------------------------------- server

def check_ctl_free(path):
    """Refuses (CtlError) when a live daemon serves `path`; removes a stale
    socket left by one that died."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise CtlError(f"control socket path {path} exists and is not a socket")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        try:
            os.unlink(path)
            log.info("removed stale control socket %s", path)
        except FileNotFoundError:
            pass
        return
    except socket.timeout:
        pass                         # something is there but busy: treat as live
    finally:
        s.close()
    raise CtlError(f"control socket {path} is served by another running vdp "
                   "(stop it first, or use another --name/--ctl)")


class CtlServer:
    """Serves Commands on a unix socket inside the running asyncio loop."""

    def __init__(self, path, commands: Commands):
        self.path = path
        self.commands = commands
        self._server = None
        self._ino = None

    async def start(self):
        check_ctl_free(self.path)
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, mode=0o755, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)            # the socket is created 0600
        try:
            sock.bind(self.path)
        except OSError:
            sock.close()
            raise
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._ino = os.stat(self.path).st_ino
        self._server = await asyncio.start_unix_server(self._client, sock=sock, limit=MAX_LINE)
        log.info("control socket %s", self.path)

    async def _client(self, reader, writer):
        try:
            while True:
                try:
                    line = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    await self._send(writer, {"ok": False, "error": "request too long"})
                    break
                if not line:
                    break
                await self._send(writer, self.handle_line(line))
        except (ConnectionError, BrokenPipeError):
            pass
        finally:
            writer.close()

    @staticmethod
    async def _send(writer, obj):
        writer.write(json.dumps(obj).encode() + b"\n")
        await writer.drain()

    def handle_line(self, line):
        """One request line -> response dict (never raises)."""
        try:
            req = json.loads(line)
            if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
                raise ValueError("not an object with a 'cmd'")
            args = req.get("args") or {}
            if not isinstance(args, dict):
                raise ValueError("'args' is not an object")
        except ValueError as e:
            return {"ok": False, "error": f"bad request: {e}"}
        try:
            result = self.commands.execute(req["cmd"], args, bool(req.get("json")))
            return {"ok": True, "result": result}
        except CtlError as e:
            return {"ok": False, "error": str(e)}
        except Exception as e:           # a bug: report it, keep serving
            log.exception("ctl %s failed", req.get("cmd"))
            return {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}

    async def close(self):
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            except (asyncio.TimeoutError, Exception):
                pass
            self._server = None
        self.unlink()

    def unlink(self):
        """Removes the socket file if it is still ours."""
        try:
            if self._ino is not None and os.stat(self.path).st_ino == self._ino:
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        self._ino = None


# ---------------------------------------------------------------- client

def request(path, cmd, args=None, as_json=False, timeout=60.0):
    """Sends one request to the daemon at `path`; returns its result.
    Raises CtlError with a message for the user."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(path)
        except FileNotFoundError:
            raise CtlError(f"cannot connect to {path}: no such socket (is `vdp run` running? "
                           "use --ctl PATH)") from None
        except ConnectionRefusedError:
            raise CtlError(f"cannot connect to {path}: nobody is listening "
                           "(the daemon is gone)") from None
        except PermissionError:
            raise CtlError(f"cannot connect to {path}: permission denied (run as root)") from None
        except OSError as e:
            raise CtlError(f"cannot connect to {path}: {e.strerror or e}") from None
        msg = {"cmd": cmd, "args": args or {}, "json": bool(as_json)}
        s.sendall(json.dumps(msg).encode() + b"\n")
        buf = bytearray()
        while not buf.endswith(b"\n"):
            try:
                chunk = s.recv(1 << 16)
            except socket.timeout:
                raise CtlError(f"no answer from {path} within {timeout:.0f}s") from None
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    if not buf:
        raise CtlError(f"{path}: the daemon closed the connection without answering")
    try:
        resp = json.loads(buf)
    except ValueError:
        raise CtlError(f"{path}: unreadable answer from the daemon") from None
    if not resp.get("ok"):
        raise CtlError(resp.get("error") or "failed")
    return resp.get("result")


def format_result(result, as_json):
    """What the client prints for a result ('' for nothing)."""
    if as_json:
        return "" if result is None else json.dumps(result, indent=2) + "\n"
    if result is None:
        return ""
    if isinstance(result, str):
        return result if not result or result.endswith("\n") else result + "\n"
    return json.dumps(result, indent=2) + "\n"
