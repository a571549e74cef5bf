"""The run configuration of `vdp run`: TOML file and/or command-line flags.

Who uses it: datapath/cli.py (builds a Config from flags and --config) and
datapath/daemon.py (runs it).  A config is validated whole before anything
is touched; any problem refuses all of it with a ConfigError naming the key
(and, for a file, the line) that is wrong.

TOML keys (the flags of `vdp run` carry the same names):

    name = "vdp0"                     # --name; the ctl socket is /run/vdp/NAME.ctl
    dpid = "0000000000000001"         # --dpid; decimal, 0x-hex or 16 hex digits
    fail_mode = "standalone"          # --fail-mode standalone|secure
    ctl = "/run/vdp/vdp0.ctl"         # --ctl
    controllers = ["tcp:127.0.0.1:6653"]   # --controller (repeatable)
    listen = ["ptcp:6634"]            # --listen (repeatable); a string is fine too
    ssl_key = "/etc/vdp/switch.key"   # --ssl-key: our private key (PEM)
    ssl_cert = "/etc/vdp/switch.crt"  # --ssl-cert: our certificate (PEM)
    ssl_ca = "/etc/vdp/ca.crt"        # --ssl-ca: CA certificate(s) peers must chain to
    ports = ["veth0", "tap:tap0", {name = "veth1", type = "afpacket", ofport = 7}]
    flows = ["in_port=1,actions=output:2"]       # ovs-ofctl syntax
    groups = ["group_id=1,type=all,bucket=output:1"]
    meters = ["meter=1,kbps,bands=type=drop,rate=1000"]

Ports may also be [[ports]] tables.  Flags given on the command line
replace the file's value for that key (--port replaces the whole port list).

Bonds (link aggregation, datapath/bond.py): ONE OpenFlow port over several
interfaces.  `--bond NAME=IF1,IF2[,IF3...]` on the command line, numbered
with the --port ports in the order given; in a file, [[bond]] tables
(numbered after the `ports` list unless they give ofport) or tables of the
`ports` list with type = "bond" (numbered in place):

    [[bond]]
    name = "bond0"
    members = ["eth1", "eth2", {name = "eth3", port_priority = 100, port_id = 3}]
    mode = "balance-l4"        # --bond-mode: active-backup (default), balance-l2,
                               #   balance-l3, balance-l4 (= balance-tcp), balance-slb
    lacp = "active"            # --lacp active|passive|off (default off)
    lacp_time = "fast"         # --lacp-time fast|slow (default slow)
    lacp_system_priority = 65534   # --lacp-system-priority
    lacp_system_id = "02:00:00:00:00:01"   # --lacp-system-id (default: first member's MAC)
    lacp_key = 1               # --lacp-key (default: the bond's OpenFlow port number)
    lacp_port_priority = 32768 # --lacp-port-priority: members' default
    lacp_fallback = false      # --lacp-fallback: active-backup when LACP finds no partner
    rebalance_interval = 10    # --bond-rebalance-interval: seconds, 0 = never
    ofport = 5

The same keys at the top level of the file (mode as bond_mode,
rebalance_interval as bond_rebalance_interval) are defaults for every bond;
a bond table's own value wins over them, and a flag wins over both (it
applies to every bond).  Giving --port or --bond replaces the file's ports
AND its bonds.  A bond alone is a valid set of ports.  Member names are
interfaces (or tap:NAME); a member may belong to one bond only and may not
also be a port.

TLS (as Open vSwitch's --private-key/--certificate/--ca-cert): an ssl: or
pssl: target needs all three files; both sides present a certificate and
each verifies the other's against its CA (mutual authentication; host names
are not checked: switches and controllers are addressed by IP).  Each file
given must exist and be readable, the certificates must be PEM certificates
and the key must be the (unencrypted) private key of ssl_cert, whether or
not a TLS target uses them.  Relative paths in a config file are relative
to the file's directory; relative flag values to the working directory.
"""
from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from . import bond as bondmod
from . import flowsyntax
from .flowsyntax import FlowSyntaxError
from .model import OFPP_MAX

__all__ = ["ConfigError", "Config", "PortConfig", "ControllerTarget", "ListenTarget",
           "load_config", "parse_dpid", "format_dpid", "parse_port_arg", "parse_bond_arg", "parse_controller",
           "parse_listen", "parse_fail_mode", "default_run_dir", "default_ctl_path"]

DEFAULT_NAME = "vdp0"
DEFAULT_FAIL_MODE = "standalone"
FAIL_MODES = ("standalone", "secure")
OFP_TCP_PORT = 6653
# bond settings: top-level key (and flag) -> key of a bond table
BOND_DEFAULT_KEYS = {"bond_mode": "mode", "lacp": "lacp", "lacp_time": "lacp_time",
                     "lacp_system_priority": "lacp_system_priority",
                     "lacp_system_id": "lacp_system_id", "lacp_key": "lacp_key",
                     "lacp_port_priority": "lacp_port_priority",
                     "lacp_fallback": "lacp_fallback",
                     "bond_rebalance_interval": "rebalance_interval"}
BOND_TABLE_KEYS = ("name", "type", "members", "ofport", "mode", "lacp", "lacp_time",
                   "lacp_system_priority", "lacp_system_id", "lacp_key", "lacp_port_priority",
                   "lacp_fallback", "rebalance_interval")
KEYS = ("name", "dpid", "fail_mode", "ctl", "controllers", "listen", "ports",
        "flows", "groups", "meters", "ssl_key", "ssl_cert", "ssl_ca", "bond") \
    + tuple(BOND_DEFAULT_KEYS)
TLS_KEYS = ("ssl_key", "ssl_cert", "ssl_ca")
# The command-line flag that sets each key (for error messages).
FLAG_OF = {"name": "--name", "dpid": "--dpid", "fail_mode": "--fail-mode", "ctl": "--ctl",
           "controllers": "--controller", "listen": "--listen", "ports": "--port",
           "ssl_key": "--ssl-key", "ssl_cert": "--ssl-cert", "ssl_ca": "--ssl-ca",
           "bond": "--bond", "bond_mode": "--bond-mode", "lacp": "--lacp",
           "lacp_time": "--lacp-time", "lacp_system_priority": "--lacp-system-priority",
           "lacp_system_id": "--lacp-system-id", "lacp_key": "--lacp-key",
           "lacp_port_priority": "--lacp-port-priority", "lacp_fallback": "--lacp-fallback",
           "bond_rebalance_interval": "--bond-rebalance-interval"}
PORT_TYPES = ("afpacket", "tap")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key."""


class ControllerTarget(NamedTuple):
    proto: str        # "tcp" or "ssl"
    host: str
    port: int

    def __str__(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.proto}:{h}:{self.port}"


class ListenTarget(NamedTuple):
    proto: str        # "ptcp" or "pssl"
    port: int
    host: str = "127.0.0.1"   # passive listeners bind loopback unless told

    def __str__(self):
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.proto}:{self.port}:{h}"


@dataclass
class PortConfig:
    name: str
    type: str = "afpacket"          # "afpacket" | "tap" | "bond"
    ofport: Optional[int] = None    # assigned 1, 2, 3... in order when not given
    members: list = field(default_factory=list)     # bond: [PortConfig] (afpacket/tap)
    bond: Optional[object] = None   # bond: datapath.bond.BondSettings (validated)

    def __str__(self):
        if self.type == "bond":
            return f"{self.name}=" + ",".join(str(m) for m in self.members)
        return f"tap:{self.name}" if self.type == "tap" else self.name

    def interfaces(self):
        """The kernel interfaces (PortConfigs) behind this port."""
        return list(self.members) if self.type == "bond" else [self]


@dataclass
class Config:
    name: str = DEFAULT_NAME
    dpid: Optional[int] = None      # None: derived from the ports' addresses at start
    fail_mode: str = DEFAULT_FAIL_MODE
    ctl: str = ""                   # "" -> default_ctl_path(name)
    controllers: list = field(default_factory=list)    # [ControllerTarget]
    listen: list = field(default_factory=list)         # [ListenTarget]
    ports: list = field(default_factory=list)          # [PortConfig], ofport set
    flows: list = field(default_factory=list)          # [FlowSpec]
    groups: list = field(default_factory=list)         # [GroupSpec]
    meters: list = field(default_factory=list)         # [MeterSpec]
    flow_texts: list = field(default_factory=list)     # the flows as written
    ssl_key: Optional[str] = None   # TLS files (absolute paths), see the module doc
    ssl_cert: Optional[str] = None
    ssl_ca: Optional[str] = None
    source: Optional[str] = None                        # the TOML file, if any

    def tls(self):
        """The TLS files as datapath/ofp/channel.py's Channels takes them."""
        return {"key": self.ssl_key, "cert": self.ssl_cert, "ca": self.ssl_ca}

    def uses_tls(self):
        return (any(c.proto == "ssl" for c in self.controllers)
                or any(x.proto == "pssl" for x in self.listen))

    def port_names(self):
        return {p.name: p.ofport for p in self.ports}

    def bonds(self):
        return [p for p in self.ports if p.type == "bond"]

    def interfaces(self):
        """Every kernel interface used (plain ports and bond members)."""
        return [i for p in self.ports for i in p.interfaces()]


def default_run_dir():
    """Where ctl sockets and port locks live ($VDP_RUN_DIR, else /run/vdp)."""
    return os.environ.get("VDP_RUN_DIR") or "/run/vdp"


def default_ctl_path(name):
    return os.path.join(default_run_dir(), f"{name}.ctl")


# --------------------------------------------------------------------------
# single values (also used as argparse types by cli.py: they raise ValueError)

_HEX16 = re.compile(r"[0-9a-fA-F]{16}\Z")
_COLON_DPID = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){7}\Z")


def parse_dpid(value):
    """A datapath id: int, decimal text, 0x-hex, exactly 16 hex digits (as
    Mininet passes them, e.g. 0000000000000001 = 1) or 8 colon-separated
    hex bytes.  Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"bad dpid {value!r}")
    if isinstance(value, int):
        v = value
    elif isinstance(value, str):
        s = value.strip()
        if _HEX16.match(s):
            v = int(s, 16)
        elif _COLON_DPID.match(s):
            v = int(s.replace(":", ""), 16)
        elif re.fullmatch(r"0[xX][0-9a-fA-F]{1,16}", s):
            v = int(s, 16)
        elif re.fullmatch(r"[0-9]+", s):
            v = int(s)
        else:
            raise ValueError(f"bad dpid {value!r} (expected decimal, 0x-hex or 16 hex digits)")
    else:
        raise ValueError(f"bad dpid {value!r} (expected a number or a string)")
    if not 0 <= v < (1 << 64):
        raise ValueError(f"bad dpid {value!r} (does not fit in 64 bits)")
    return v


def format_dpid(dpid):
    return f"{dpid:016x}"


_IFNAME = re.compile(r"[^\s/:]{1,15}\Z")


def check_ifname(name):
    if not isinstance(name, str) or not _IFNAME.match(name) or name in (".", ".."):
        raise ValueError(f"bad interface name {name!r} (1-15 characters, no '/', ':' or spaces)")
    return name


def parse_port_arg(text):
    """'IFNAME', 'afpacket:IFNAME' or 'tap:NAME' -> PortConfig."""
    if not isinstance(text, str):
        raise ValueError(f"bad port {text!r} (expected IFNAME or tap:NAME)")
    kind, sep, name = text.partition(":")
    if sep:
        if kind not in PORT_TYPES:
            raise ValueError(f"bad port {text!r} (expected IFNAME, afpacket:IFNAME or tap:NAME)")
        check_ifname(name)
        return PortConfig(name=name, type=kind)
    check_ifname(text)
    return PortConfig(name=text)


def parse_bond_arg(text):
    """'NAME=IF1,IF2[,IF3...]' (members IF or tap:NAME) -> a bond table
    {"type": "bond", "name": NAME, "members": [...]} (settings come from
    the --bond-mode/--lacp... flags).  Raises ValueError."""
    if not isinstance(text, str) or "=" not in text:
        raise ValueError(f"bad bond {text!r} (expected NAME=IF1,IF2[,...])")
    name, _, rest = text.partition("=")
    try:
        check_ifname(name)
    except ValueError:
        raise ValueError(f"bad bond name {name!r} in {text!r} (1-15 characters, no '/', ':' "
                         "or spaces)") from None
    members = [m for m in rest.split(",")]
    if not rest or any(not m for m in members):
        raise ValueError(f"bad bond {text!r} (expected NAME=IF1,IF2[,...]: an empty member)")
    for m in members:
        parse_port_arg(m)
    return {"type": "bond", "name": name, "members": members}


def _check_ip(host, whole):
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise ValueError(f"bad address {host!r} in {whole!r} (expected an IPv4 or IPv6 "
                         "address)") from None


def _check_tcp_port(text, whole):
    if not re.fullmatch(r"[0-9]{1,5}", text or "") or not 0 < int(text) < 65536:
        raise ValueError(f"bad TCP port {text!r} in {whole!r} (expected 1..65535)")
    return int(text)


def parse_controller(text):
    """'tcp:IP[:PORT]' or 'ssl:IP[:PORT]' (IPv6 as [ADDR]) -> ControllerTarget."""
    if not isinstance(text, str):
        raise ValueError(f"bad controller {text!r} (expected tcp:IP:PORT or ssl:IP:PORT)")
    proto, sep, rest = text.partition(":")
    if proto not in ("tcp", "ssl") or not sep or not rest:
        raise ValueError(f"bad controller {text!r} (expected tcp:IP:PORT or ssl:IP:PORT)")
    if rest.startswith("["):
        host, close, tail = rest[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise ValueError(f"bad controller {text!r} (IPv6 as tcp:[ADDR]:PORT)")
        port = tail[1:] if tail else None
    else:
        host, _, port = rest.partition(":")
        port = port or None
    host = _check_ip(host, text)
    port = OFP_TCP_PORT if port is None else _check_tcp_port(port, text)
    return ControllerTarget(proto, host, port)


def parse_listen(text):
    """'ptcp:[PORT][:IP]' or 'pssl:[PORT][:IP]' -> ListenTarget."""
    if not isinstance(text, str):
        raise ValueError(f"bad listen target {text!r} (expected ptcp:PORT[:IP])")
    proto, sep, rest = text.partition(":")
    if proto not in ("ptcp", "pssl") or not sep and rest:
        raise ValueError(f"bad listen target {text!r} (expected ptcp:PORT[:IP] or pssl:PORT[:IP])")
    port_txt, _, host = rest.partition(":")
    port = OFP_TCP_PORT if not port_txt else _check_tcp_port(port_txt, text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    host = _check_ip(host, text) if host else "127.0.0.1"
    return ListenTarget(proto, port, host)


def parse_fail_mode(text):
    if text not in FAIL_MODES:
        raise ValueError(f"bad fail mode {text!r} (expected standalone or secure)")
    return text


_BRNAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\Z")


def check_name(text):
    if not isinstance(text, str) or not _BRNAME.match(text):
        raise ValueError(f"bad name {text!r} (letters, digits, '_', '.', '-'; at most 64)")
    return text


# --------------------------------------------------------------------------
# the whole configuration

class _Where:
    """Says where a key's value came from, for error messages."""

    def __init__(self, path, text, from_flags):
        self.path = path
        self.lines = text.splitlines() if text else []
        self.from_flags = from_flags

    def _line(self, key, index=None, value=None):
        """Best effort: the line of key (its index-th [[key]] table), or of
        the quoted value at or after it."""
        if not self.lines:
            return None
        base = None
        if index is not None:
            header = re.compile(rf"^\s*\[\[\s*{re.escape(key)}\s*\]\]")
            hits = [n for n, line in enumerate(self.lines, 1) if header.match(line)]
            if index < len(hits):
                base = hits[index]
        if base is None:
            plain = re.compile(rf"^\s*{re.escape(key)}\s*=")
            base = next((n for n, line in enumerate(self.lines, 1) if plain.match(line)), None)
        if isinstance(value, str) and value:
            for n in range(base or 1, len(self.lines) + 1):
                line = self.lines[n - 1]
                if f'"{value}"' in line or f"'{value}'" in line:
                    return n
        return base

    def error(self, key, msg, index=None, value=None, flag=None):
        label = key if index is None else f"{key}[{index}]"
        if key in self.from_flags:
            return ConfigError(f"{flag or FLAG_OF.get(key, key)}: {msg}")
        line = self._line(key, index, value)
        where = f"{self.path}: line {line}" if line else f"{self.path}"
        return ConfigError(f"{where}: {label}: {msg}")


def _type_name(v):
    return {str: "a string", int: "an integer", list: "a list", dict: "a table",
            bool: "a boolean", float: "a number"}.get(type(v), type(v).__name__)


def load_config(path=None, overrides=None, text=None):
    """Builds and validates a Config.

    path: a TOML file (or text= its contents, with path used in messages);
    overrides: {key: value} from command-line flags (None values ignored),
    replacing the file's value for that key.  Raises ConfigError."""
    data = {}
    if path is not None and text is None:
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text ({e})") from None
    if text is not None:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{path or 'config'}: {e}") from None
    where = _Where(path or "config", text, set())
    for key in data:
        if key not in KEYS:
            raise where.error(key, f"unknown key {key!r} (known: {', '.join(KEYS)})")
    merged = dict(data)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in KEYS:
            raise ConfigError(f"unknown setting {key!r}")
        merged[key] = value
        where.from_flags.add(key)

    cfg = Config(source=path)

    def one(key, conv, types=(str,)):
        if key not in merged:
            return None
        v = merged[key]
        if isinstance(v, bool) or not isinstance(v, types):
            want = " or ".join(_type_name(t()) for t in types)
            raise where.error(key, f"expected {want}, got {_type_name(v)}")
        try:
            return conv(v)
        except ValueError as e:
            raise where.error(key, str(e), value=v if isinstance(v, str) else None) from None

    def strings(key, allow_single=False):
        if key not in merged:
            return []
        v = merged[key]
        if allow_single and isinstance(v, str):
            v = [v]
        if not isinstance(v, list):
            raise where.error(key, f"expected a list of strings, got {_type_name(v)}")
        for i, item in enumerate(v):
            if not isinstance(item, str):
                raise where.error(key, f"expected a string, got {_type_name(item)}", index=i)
        return v

    cfg.name = one("name", check_name) or DEFAULT_NAME
    cfg.dpid = one("dpid", parse_dpid, types=(int, str))
    cfg.fail_mode = one("fail_mode", parse_fail_mode) or DEFAULT_FAIL_MODE
    ctl = one("ctl", _check_path)
    cfg.ctl = ctl or default_ctl_path(cfg.name)

    for i, t in enumerate(strings("controllers")):
        try:
            cfg.controllers.append(parse_controller(t))
        except ValueError as e:
            raise where.error("controllers", str(e), index=i, value=t) from None
    for i, t in enumerate(strings("listen", allow_single=True)):
        try:
            cfg.listen.append(parse_listen(t))
        except ValueError as e:
            raise where.error("listen", str(e), index=i, value=t) from None
        if str(cfg.listen[-1]) in map(str, cfg.listen[:-1]):
            raise where.error("listen", f"{t!r} given twice", index=i, value=t)

    base = os.path.dirname(os.path.abspath(path)) if path else None
    for key in TLS_KEYS:
        v = one(key, _check_file_path)
        if v is not None:
            # a relative path in the file is relative to the file
            if key not in where.from_flags and base is not None:
                v = os.path.join(base, v)
            setattr(cfg, key, os.path.abspath(v))
    _check_tls(cfg, where, merged)

    _check_bond_defaults(merged, where)
    if "ports" in where.from_flags:
        merged.pop("bond", None)                 # --port/--bond replace the file's bonds too
    cfg.ports = _ports(merged.get("ports", []), where, merged)

    names = cfg.port_names()
    for i, t in enumerate(strings("flows")):
        try:
            cfg.flows.append(flowsyntax.parse_flow(t, port_names=names))
        except FlowSyntaxError as e:
            raise where.error("flows", str(e), index=i, value=t) from None
        cfg.flow_texts.append(t)
    seen = set()
    for i, t in enumerate(strings("groups")):
        try:
            g = flowsyntax.parse_group(t, port_names=names)
        except FlowSyntaxError as e:
            raise where.error("groups", str(e), index=i, value=t) from None
        if g.group_id in seen:
            raise where.error("groups", f"group_id {g.group_id} given twice", index=i, value=t)
        seen.add(g.group_id)
        cfg.groups.append(g)
    seen = set()
    for i, t in enumerate(strings("meters")):
        try:
            m = flowsyntax.parse_meter(t)
        except FlowSyntaxError as e:
            raise where.error("meters", str(e), index=i, value=t) from None
        if m.meter_id in seen:
            raise where.error("meters", f"meter {m.meter_id} given twice", index=i, value=t)
        seen.add(m.meter_id)
        cfg.meters.append(m)
    return cfg


def _check_file_path(p):
    if not p or "\0" in p:
        raise ValueError(f"bad path {p!r}")
    return p


def _no_password(*_):
    raise _Encrypted()


class _Encrypted(Exception):
    pass


def _check_tls(cfg, where, merged):
    """The TLS files: readable, PEM certificates, a key matching the
    certificate; all three present when an ssl:/pssl: target needs them."""
    import ssl
    for key in TLS_KEYS:
        path = getattr(cfg, key)
        if path is None:
            continue
        what = {"ssl_key": "private key", "ssl_cert": "certificate",
                "ssl_ca": "CA certificate"}[key]
        if not os.path.exists(path):
            raise where.error(key, f"{what} {path}: no such file", value=None)
        if not os.path.isfile(path):
            raise where.error(key, f"{what} {path}: not a regular file")
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as e:
            raise where.error(key, f"{what} {path}: cannot read: {e.strerror or e}") from None
    for key in ("ssl_cert", "ssl_ca"):
        path = getattr(cfg, key)
        if path is None:
            continue
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=path)
        except (ssl.SSLError, ValueError) as e:
            raise where.error(key, f"{path}: not a PEM certificate ({_ssl_reason(e)})") from None
    if cfg.ssl_key is not None and cfg.ssl_cert is not None:
        try:
            ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(
                cfg.ssl_cert, cfg.ssl_key, password=_no_password)
        except _Encrypted:
            raise where.error("ssl_key", f"{cfg.ssl_key}: the private key is encrypted "
                              "(give an unencrypted PEM key)") from None
        except ssl.SSLError as e:
            raise where.error("ssl_key", f"{cfg.ssl_key}: not the PEM private key of "
                              f"{cfg.ssl_cert} ({_ssl_reason(e)})") from None
    missing = [k for k in TLS_KEYS if getattr(cfg, k) is None]
    if not missing:
        return
    names = ", ".join(f"{FLAG_OF[k]} ({k})" for k in missing)
    for key, targets, proto in (("controllers", cfg.controllers, "ssl"),
                                ("listen", cfg.listen, "pssl")):
        texts = merged.get(key)
        texts = [texts] if isinstance(texts, str) else texts
        for i, t in enumerate(targets):
            if t.proto == proto:
                raise where.error(key, f"{t} needs a private key, a certificate and a CA "
                                  f"certificate: missing {names}", index=i, value=texts[i])


def _ssl_reason(e):
    return getattr(e, "reason", None) or str(e)


def _check_path(p):
    if not p or "\0" in p:
        raise ValueError(f"bad path {p!r}")
    if len(os.fsencode(p)) > 107:
        raise ValueError(f"path {p!r} too long for a unix socket (at most 107 bytes)")
    return p


def _ports(value, where, merged=None):
    merged = merged or {}
    if not isinstance(value, list):
        raise where.error("ports", f"expected a list, got {_type_name(value)}")
    items = [("ports", i, item) for i, item in enumerate(value)]
    tables = merged.get("bond", [])
    if isinstance(tables, dict):
        tables = [tables]
    if not isinstance(tables, list):
        raise where.error("bond", f"expected [[bond]] tables, got {_type_name(tables)}")
    items += [("bond", i, item) for i, item in enumerate(tables)]
    ports = []
    for key, i, item in items:
        if key == "bond":
            if not isinstance(item, dict):
                raise where.error("bond", f"expected a table, got {_type_name(item)}", index=i)
            if item.get("type", "bond") != "bond":
                raise where.error("bond", f"bad type {item.get('type')!r} in a [[bond]] table",
                                  index=i)
            pc = _bond(item, where, key, i, merged)
        elif isinstance(item, str):
            try:
                pc = parse_port_arg(item)
            except ValueError as e:
                raise where.error("ports", str(e), index=i, value=item) from None
        elif isinstance(item, dict) and item.get("type") == "bond":
            pc = _bond(item, where, key, i, merged)
        elif isinstance(item, dict):
            for k in item:
                if k not in ("name", "type", "ofport"):
                    raise where.error("ports", f"unknown key {k!r} (known: name, type, ofport)",
                                      index=i)
            name = item.get("name")
            if name is None:
                raise where.error("ports", "missing 'name'", index=i)
            try:
                check_ifname(name)
            except ValueError as e:
                raise where.error("ports", str(e), index=i, value=name) from None
            ptype = item.get("type", "afpacket")
            if ptype not in PORT_TYPES:
                raise where.error("ports", f"bad type {ptype!r} (expected afpacket, tap or bond)",
                                  index=i, value=ptype if isinstance(ptype, str) else None)
            ofport = item.get("ofport")
            _check_ofport(ofport, where, key, i)
            pc = PortConfig(name=name, type=ptype, ofport=ofport)
        else:
            raise where.error("ports", f"expected a string or a table, got {_type_name(item)}",
                              index=i)
        flag = "--bond" if pc.type == "bond" else None
        val = item if isinstance(item, str) else pc.name
        for other in ports:
            if other.name == pc.name:
                if pc.type == other.type or "bond" not in (pc.type, other.type):
                    what = "bond" if pc.type == "bond" else "port"
                    msg = f"{what} {pc.name!r} given twice"
                else:
                    msg = f"{pc.name!r} is the name of both a port and a bond"
                raise where.error(key, msg, index=i, value=val, flag=flag)
            if pc.ofport is not None and other.ofport == pc.ofport:
                raise where.error(key, f"ofport {pc.ofport} given twice", index=i, flag=flag)
            for a in pc.interfaces():
                for b in other.interfaces():
                    if a.name == b.name:
                        raise where.error(key, _reuse(pc, a.name, other), index=i, value=val,
                                          flag=flag)
                if other.type == "bond" and a.name == other.name:
                    raise where.error(key, f"{a.name!r} is the name of bond {other.name}",
                                      index=i, value=val, flag=flag)
            if pc.type == "bond":
                for b in other.interfaces():
                    if b.name == pc.name:
                        raise where.error(key, f"bond name {pc.name!r} is already used by "
                                          f"{_label(other, b.name)}", index=i, flag=flag)
        ports.append(pc)
    taken = {p.ofport for p in ports if p.ofport is not None}
    nxt = 1
    for p in ports:
        if p.ofport is None:
            while nxt in taken:
                nxt += 1
            p.ofport = nxt
            taken.add(nxt)
    return ports


def _check_bond_defaults(merged, where):
    """The bond settings given at the top level (or as flags), checked on
    their own so the error names that key (or flag)."""
    checks = {
        "bond_mode": (str, lambda v: bondmod.normalize_mode(v)),
        "lacp": (str, lambda v: _one_of(v, bondmod.LACP_MODES, "lacp")),
        "lacp_time": (str, lambda v: _one_of(v, bondmod.LACP_TIMES, "lacp-time")),
        "lacp_system_priority": (int, lambda v: _u16(v, "lacp system priority", 0)),
        "lacp_key": (int, lambda v: _u16(v, "lacp key", 1)),
        "lacp_port_priority": (int, lambda v: _u16(v, "lacp port priority", 0)),
        "lacp_system_id": (str, lambda v: bondmod.BondSettings(
            "b", ["m"], system_id=v).validate()),
        "lacp_fallback": (bool, None),
        "bond_rebalance_interval": ((int, float), lambda v: bondmod.BondSettings(
            "b", ["m"], rebalance_interval=v).validate()),
    }
    for key, (t, check) in checks.items():
        if key not in merged:
            continue
        v = merged[key]
        if (isinstance(v, bool) and t is not bool) or not isinstance(v, t):
            want = _type_name(t() if not isinstance(t, tuple) else 0.0)
            raise where.error(key, f"expected {want}, got {_type_name(v)}")
        if check is not None:
            try:
                check(v)
            except (bondmod.BondError, ValueError) as e:
                msg = str(e).removeprefix("bond b: ")
                raise where.error(key, msg, value=v if isinstance(v, str) else None) from None


def _one_of(v, allowed, what):
    if v not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, not {v!r}")


def _u16(v, what, lo):
    if not lo <= v <= 0xffff:
        raise ValueError(f"{what} must be {lo}..65535, not {v!r}")


def _label(pc, ifname):
    return f"bond {pc.name} (member {ifname})" if pc.type == "bond" else f"port {ifname}"


def _reuse(pc, ifname, other):
    """A clear message for an interface used twice."""
    where = "bond " + other.name if other.type == "bond" else "a port"
    if pc.type == "bond":
        return f"bond {pc.name}: member {ifname!r} is already used by {where}"
    return f"port {ifname!r} is already a member of {where}"


def _check_ofport(ofport, where, key, i):
    if ofport is not None and (not isinstance(ofport, int) or isinstance(ofport, bool)
                               or not 1 <= ofport <= OFPP_MAX):
        raise where.error(key, f"bad ofport {ofport!r} (expected 1..{OFPP_MAX})", index=i)


def _bond(item, where, key, i, merged):
    """One bond table (a [[bond]] table, a ports entry with type = "bond",
    or what --bond gave) -> PortConfig(type="bond") with its BondSettings."""
    flag = "--bond" if key in where.from_flags else None

    def err(msg, value=None):
        return where.error(key, msg, index=i, value=value, flag=flag)

    for k in item:
        if k not in BOND_TABLE_KEYS:
            raise err(f"unknown key {k!r} in a bond (known: {', '.join(BOND_TABLE_KEYS)})")
    name = item.get("name")
    if name is None:
        raise err("bond: missing 'name'")
    try:
        check_ifname(name)
    except ValueError:
        raise err(f"bad bond name {name!r} (1-15 characters, no '/', ':' or spaces)",
                  value=name if isinstance(name, str) else None) from None
    where_b = f"bond {name}"
    members = item.get("members")
    if not isinstance(members, list) or not members:
        raise err(f"{where_b}: 'members' must be a non-empty list of interfaces")
    # settings: file top-level defaults < the table < flags
    vals = {}
    for top, k in BOND_DEFAULT_KEYS.items():
        if top in merged and top not in where.from_flags:
            vals[k] = merged[top]
    for k in BOND_TABLE_KEYS:
        if k in item and k not in ("name", "type", "members", "ofport"):
            vals[k] = item[k]
    for top, k in BOND_DEFAULT_KEYS.items():
        if top in where.from_flags:
            vals[k] = merged[top]
    types = {"mode": str, "lacp": str, "lacp_time": str, "lacp_system_id": str,
             "lacp_system_priority": int, "lacp_key": int, "lacp_port_priority": int,
             "lacp_fallback": bool, "rebalance_interval": (int, float)}
    for k, v in vals.items():
        t = types[k]
        if (isinstance(v, bool) and t is not bool) or not isinstance(v, t):
            want = _type_name(t() if not isinstance(t, tuple) else 0.0)
            raise err(f"{where_b}: {k}: expected {want}, got {_type_name(v)}")
    port_prio = vals.get("lacp_port_priority", bondmod.DEFAULT_PORT_PRIORITY)
    mpcs, msets = [], []
    for j, m in enumerate(members):
        if isinstance(m, str):
            mname, mprio, mid = m, port_prio, None
        elif isinstance(m, dict):
            for k in m:
                if k not in ("name", "port_priority", "port_id"):
                    raise err(f"{where_b}: members[{j}]: unknown key {k!r} "
                              "(known: name, port_priority, port_id)")
            mname = m.get("name")
            if not isinstance(mname, str):
                raise err(f"{where_b}: members[{j}]: missing 'name'")
            mprio, mid = m.get("port_priority", port_prio), m.get("port_id")
        else:
            raise err(f"{where_b}: members[{j}]: expected a string or a table, "
                      f"got {_type_name(m)}")
        try:
            mpc = parse_port_arg(mname)
        except ValueError as e:
            raise err(f"{where_b}: member {mname!r}: {e}", value=mname) from None
        if any(o.name == mpc.name for o in mpcs):
            raise err(f"{where_b}: member {mpc.name!r} given twice", value=mname)
        if mpc.name == name:
            raise err(f"{where_b}: a member cannot have the bond's name", value=mname)
        mpcs.append(mpc)
        msets.append(bondmod.MemberSettings(mpc.name, port_priority=mprio, port_id=mid))
    settings = bondmod.BondSettings(
        name, msets, mode=vals.get("mode", bondmod.DEFAULT_MODE),
        lacp=vals.get("lacp", bondmod.DEFAULT_LACP),
        lacp_time=vals.get("lacp_time", bondmod.DEFAULT_LACP_TIME),
        system_priority=vals.get("lacp_system_priority", bondmod.DEFAULT_SYSTEM_PRIORITY),
        system_id=vals.get("lacp_system_id"), key=vals.get("lacp_key"),
        fallback=vals.get("lacp_fallback", False),
        rebalance_interval=vals.get("rebalance_interval", bondmod.DEFAULT_REBALANCE_INTERVAL))
    try:
        settings.validate()
    except bondmod.BondError as e:
        raise err(str(e)) from None
    ofport = item.get("ofport")
    _check_ofport(ofport, where, key, i)
    return PortConfig(name=name, type="bond", ofport=ofport, members=mpcs, bond=settings)
