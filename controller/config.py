"""The controller's configuration file: one TOML file, one section per app.

Who uses it: every controller app (controller/vrrp/app.py now; stp and l2
later) through `load_config(path, sections)`, with the validators the apps
register.  The file is refused whole on the first problem, with a
ConfigError naming the file, the line and the key that is wrong, e.g.

    /etc/vdp/controller.toml: line 14: vrrp.datapath[0].router[1].priority:
    expected an integer 1..255, got 300

tomllib gives no positions, so `KeyLines` scans the text once more (a small
TOML-shaped tokenizer that relies on tomllib having accepted the syntax) and
records the line of every key, array element and table header by its path
in the parsed data: ("vrrp", "datapath", 0, "router", 1, "priority").

Validators
    A section validator is `fn(node: Node) -> value` (typically a frozen
    dataclass).  `Node` wraps a value of the parsed file with its path and
    gives typed getters (`node.int("priority", 100, lo=1, hi=255)`, ...)
    that raise a located ConfigError themselves; `node.error(msg)` makes
    one for anything else.  `node.only(...)` refuses unknown keys, so a
    misspelt key is an error, not a silently ignored setting.

Sections
    Apps register their sections at import time (`register_section`) and
    the shared `--config FILE` os-ken option (`register_cli_option`);
    `load_config(path)` then validates every registered section present in
    the file and refuses sections nobody registered (a misspelt [vrrp] is
    an error too).  Sections absent from the file are returned as None
    unless listed in `required`.

Also here: value parsers shared by the apps' schemas (dpid, MAC, IP address,
interface address, network), which raise ValueError with a readable message.
"""
from __future__ import annotations

import ipaddress
import re
import tomllib
from typing import Any, Callable

__all__ = ["ConfigError", "Node", "KeyLines", "load_config", "register_section",
           "registered_sections", "register_cli_option", "APP_SECTIONS", "parse_dpid", "format_dpid", "parse_mac", "format_mac",
           "parse_ip", "parse_interface", "parse_network", "path_str"]


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says where."""


# --------------------------------------------------------------------------
# where each key is: a second, position-keeping pass over the TOML text

_BARE = re.compile(r"[A-Za-z0-9_-]+")


class KeyLines:
    """{path: line} for every key, table header and array element of a TOML
    document that tomllib accepted.  `line(path)` answers for the longest
    recorded prefix of path (so an error about a missing key points at its
    table)."""

    def __init__(self, text: str):
        self.text = text
        self.lines: dict[tuple, int] = {}
        self._pos = 0
        self._line = 1
        self._aot: dict[tuple, int] = {}
        try:
            self._document()
        except (IndexError, ValueError):
            pass        # best effort: tomllib is the judge of syntax

    def line(self, path) -> int | None:
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    # -- low level
    def _peek(self, n=1):
        return self.text[self._pos:self._pos + n]

    def _advance(self, n=1):
        chunk = self.text[self._pos:self._pos + n]
        self._line += chunk.count("\n")
        self._pos += n

    def _skip_ws(self, newlines=False):
        """Skips blanks (and newlines and comments if newlines)."""
        while self._pos < len(self.text):
            c = self.text[self._pos]
            if c in " \t\r" or (newlines and c == "\n"):
                self._advance()
            elif c == "#" and newlines:
                self._skip_comment()
            else:
                return

    def _skip_comment(self):
        end = self.text.find("\n", self._pos)
        self._pos = len(self.text) if end < 0 else end

    def _string(self):
        """A string token at pos; returns its value (escapes roughly kept)."""
        t = self.text
        for q in ('"""', "'''"):
            if t.startswith(q, self._pos):
                end = self._pos + 3
                while True:
                    end = t.index(q, end)
                    if q == '"""' and _escaped(t, end):
                        end += 1
                        continue
                    break
                while t.startswith(q[0], end + 3):   # up to two quotes belong to the body
                    end += 1
                s = t[self._pos + 3:end]
                self._advance(end + 3 - self._pos)
                return s
        q = t[self._pos]
        end = self._pos + 1
        while True:
            end = t.index(q, end)
            if q == '"' and _escaped(t, end):
                end += 1
                continue
            break
        s = t[self._pos + 1:end]
        if q == '"':
            s = s.encode("latin-1", "backslashreplace").decode("unicode_escape", "replace") \
                if "\\" in s else s
        self._advance(end + 1 - self._pos)
        return s

    def _key(self):
        """A (dotted) key; returns its parts."""
        parts = []
        while True:
            self._skip_ws()
            c = self._peek()
            if c in ('"', "'"):
                parts.append(self._string())
            else:
                m = _BARE.match(self.text, self._pos)
                if not m:
                    raise ValueError("no key")
                parts.append(m.group())
                self._advance(m.end() - self._pos)
            self._skip_ws()
            if self._peek() == ".":
                self._advance()
                continue
            return parts

    # -- structure
    def _resolve(self, parts):
        """A header's key parts -> the data path (array-of-tables entries
        get their current index)."""
        path = ()
        for p in parts:
            path += (p,)
            if path in self._aot:
                path += (self._aot[path] - 1,)
        return path

    def _document(self):
        table = ()
        while True:
            self._skip_ws(newlines=True)
            if self._pos >= len(self.text):
                return
            line = self._line
            if self._peek(2) == "[[":
                self._advance(2)
                parts = self._key()
                self._advance(2)            # ]]
                parent = self._resolve(parts[:-1])
                full = parent + (parts[-1],)
                self._aot[full] = self._aot.get(full, 0) + 1
                self.lines.setdefault(full, line)
                table = full + (self._aot[full] - 1,)
                self.lines[table] = line
            elif self._peek() == "[":
                self._advance()
                parts = self._key()
                self._advance()             # ]
                table = self._resolve(parts)
                self.lines.setdefault(table, line)
            else:
                self._keyval(table)
            self._skip_ws()
            if self._peek() == "#":
                self._skip_comment()

    def _keyval(self, table):
        line = self._line
        parts = self._key()
        path = table
        for p in parts:
            path += (p,)
            self.lines.setdefault(path, line)
        self._skip_ws()
        self._advance()                     # =
        self._skip_ws()
        self._value(path)

    def _value(self, path):
        self.lines.setdefault(path, self._line)
        c = self._peek()
        if c == "[":
            self._advance()
            i = 0
            while True:
                self._skip_ws(newlines=True)
                if self._peek() == "]":
                    self._advance()
                    return
                self._value(path + (i,))
                i += 1
                self._skip_ws(newlines=True)
                if self._peek() == ",":
                    self._advance()
        elif c == "{":
            self._advance()
            while True:
                self._skip_ws(newlines=True)
                if self._peek() == "}":
                    self._advance()
                    return
                self._keyval(path)
                self._skip_ws(newlines=True)
                if self._peek() == ",":
                    self._advance()
        elif c in ('"', "'"):
            self._string()
        else:
            # number, boolean, date/time: up to a delimiter
            m = re.compile(r"[^,\]}\n#]*").match(self.text, self._pos)
            self._advance(len(m.group().rstrip()))


def _escaped(text, i):
    """True if text[i] is preceded by an odd number of backslashes."""
    n = 0
    while i - n - 1 >= 0 and text[i - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def path_str(path) -> str:
    """("vrrp", "datapath", 0, "vips", 1) -> "vrrp.datapath[0].vips[1]"."""
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            p = p if _BARE.fullmatch(p) else f'"{p}"'
            out += f".{p}" if out else p
    return out


# --------------------------------------------------------------------------
# typed access with located errors

_REQUIRED = object()

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean",
               list: "a list", dict: "a table"}


def _type_name(v):
    if isinstance(v, bool):
        return "a boolean"
    for t, name in _TYPE_NAMES.items():
        if isinstance(v, t):
            return name
    return type(v).__name__


class Source:
    """The file being validated: its name and key lines."""

    def __init__(self, path: str, text: str | None):
        self.path = path
        self.keylines = KeyLines(text) if text else None

    def error(self, path, msg) -> ConfigError:
        line = self.keylines.line(path) if self.keylines else None
        where = f"{self.path}: line {line}" if line else self.path
        label = path_str(path)
        return ConfigError(f"{where}: {label}: {msg}" if label else f"{where}: {msg}")


class Node:
    """A value of the parsed file with its path, for validators."""

    def __init__(self, source: Source, value: Any, path: tuple = ()):
        self.source = source
        self.value = value
        self.path = tuple(path)

    def __repr__(self):
        return f"Node({path_str(self.path)!s}={self.value!r})"

    # -- errors
    def error(self, msg, key=None) -> ConfigError:
        """A ConfigError located at this node (or its key `key`)."""
        path = self.path + ((key,) if key is not None else ())
        return self.source.error(path, msg)

    # -- structure
    def is_table(self):
        return isinstance(self.value, dict)

    def __contains__(self, key):
        return isinstance(self.value, dict) and key in self.value

    def child(self, key) -> "Node":
        if isinstance(self.value, dict):
            return Node(self.source, self.value.get(key), self.path + (key,))
        return Node(self.source, self.value[key], self.path + (key,))

    def only(self, *allowed):
        """Refuses keys of this table not in allowed."""
        self.expect(dict)
        for k in self.value:
            if k not in allowed:
                raise self.error(f"unknown key {k!r} (known: {', '.join(allowed)})", k)
        return self

    def expect(self, *types, what=None):
        """Checks this node's own type (bool is never an int here)."""
        v = self.value
        ok = any(isinstance(v, t) and not (isinstance(v, bool) and t is not bool)
                 for t in types)
        if not ok:
            want = what or " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise self.error(f"expected {want}, got {_type_name(v)}")
        return v

    def items(self):
        """(key, Node) pairs of a table."""
        self.expect(dict)
        return [(k, self.child(k)) for k in self.value]

    def elements(self, single=False):
        """Nodes of a list (single: a lone non-list value counts as one)."""
        if single and not isinstance(self.value, list):
            return [self]
        self.expect(list)
        return [self.child(i) for i in range(len(self.value))]

    # -- typed getters: key of this table -> checked value
    def _get(self, key, default):
        if key not in self:
            if default is _REQUIRED:
                raise self.error(f"missing {key!r}")
            return None, default
        return self.child(key), None

    def get(self, key, types, default=_REQUIRED, conv: Callable | None = None, what=None):
        """The value at key (type-checked, then conv(value) where a
        ValueError becomes a located ConfigError)."""
        node, dflt = self._get(key, default)
        if node is None:
            return dflt
        return node.convert(types, conv, what)

    def convert(self, types, conv=None, what=None):
        v = self.expect(*(types if isinstance(types, tuple) else (types,)), what=what)
        if conv is None:
            return v
        try:
            return conv(v)
        except ValueError as e:
            raise self.error(str(e)) from None

    def str(self, key, default=_REQUIRED, conv=None, choices=None):
        v = self.get(key, str, default, conv)
        if choices is not None and key in self and v not in choices:
            raise self.error(f"expected one of {', '.join(map(repr, choices))}, got {v!r}", key)
        return v

    def bool(self, key, default=_REQUIRED):
        return self.get(key, bool, default)

    def int(self, key, default=_REQUIRED, lo=None, hi=None):
        v = self.get(key, int, default)
        if key in self:
            _check_range(self.child(key), v, lo, hi, "an integer")
        return v

    def number(self, key, default=_REQUIRED, lo=None, hi=None):
        v = self.get(key, (int, float), default)
        if key in self:
            _check_range(self.child(key), v, lo, hi, "a number")
            v = float(v)
        return v


def _check_range(node, v, lo, hi, what):
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = (f"{lo}..{hi}" if lo is not None and hi is not None
               else f">= {lo}" if lo is not None else f"<= {hi}")
        raise node.error(f"expected {what} {rng}, got {v}")


# --------------------------------------------------------------------------
# sections and the loader

_SECTIONS: dict[str, Callable[[Node], Any]] = {}


def register_section(name: str, validator: Callable[[Node], Any]):
    """Registers the validator of section [name] (apps call this when
    imported; registering the same validator again is harmless)."""
    old = _SECTIONS.get(name)
    if old is not None and old is not validator:
        raise ValueError(f"config section [{name}] registered twice")
    _SECTIONS[name] = validator


def registered_sections() -> dict:
    return dict(_SECTIONS)


# The sections of the apps shipped in controller/: an app loading the shared
# file passes these as `ignore` (minus its own) so a file written for
# several apps is accepted by each, while a misspelt section is refused.
APP_SECTIONS = ("controller", "l2", "stp", "vrrp", "vlink")

CLI_OPTION = "config"
CLI_HELP = "the controller's TOML config file (one [section] per app)"


def register_cli_option():
    """Registers os-ken's --config FILE option (read as cfg.CONF.config once
    the launcher parsed the command line) unless an app imported earlier
    did: every app calls this at import (oslo.config refuses a second,
    differently worded registration of the same name)."""
    from os_ken import cfg
    if CLI_OPTION not in cfg.CONF:
        cfg.CONF.register_cli_opt(cfg.StrOpt(CLI_OPTION, default=None, help=CLI_HELP))


def load_config(path: str | None, sections: dict | None = None, *, text: str | None = None,
                required=(), ignore=()) -> dict:
    """Reads and validates a controller config file.

    path: the TOML file (or text= its contents, path then only names it in
    messages); sections: {name: validator} (default: every registered
    section).  Returns {name: validated value or None when absent}.
    Sections in `ignore` are accepted unvalidated, even when a validator
    is registered for them (an app passes its siblings' sections, e.g.
    APP_SECTIONS, and validates only its own: each app checks its own
    section when it runs); any other top-level key is an error.  Raises
    ConfigError."""
    sections = registered_sections() if sections is None else dict(sections)
    sections = {k: v for k, v in sections.items() if k not in ignore}
    name = path or "config"
    if text is None:
        if path is None:
            raise ConfigError("no config file given")
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not UTF-8 text ({e})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{name}: {e}") from None
    source = Source(name, text)
    root = Node(source, data)
    known = list(sections) + [s for s in ignore if s not in sections]
    for key in data:
        if key not in sections and key not in ignore:
            raise root.error(f"unknown section [{key}] (known: "
                             f"{', '.join(known) or 'none'})", key)
    out = {}
    for sec, validator in sections.items():
        if sec not in data:
            if sec in required:
                raise ConfigError(f"{name}: missing section [{sec}]")
            out[sec] = None
            continue
        node = root.child(sec)
        node.expect(dict, what=f"a table ([{sec}])")
        out[sec] = validator(node)
    return out


# --------------------------------------------------------------------------
# value parsers shared by the apps' schemas (raise ValueError)

_HEX16 = re.compile(r"[0-9a-fA-F]{16}\Z")
_COLON_DPID = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){7}\Z")


def parse_dpid(value) -> int:
    """A datapath id as `vdp run --dpid` takes it: an integer, decimal
    text, 0x-hex, exactly 16 hex digits or 8 colon-separated hex bytes."""
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
        raise ValueError(f"bad dpid {value!r}")
    if not 0 <= v < (1 << 64):
        raise ValueError(f"bad dpid {value!r} (does not fit in 64 bits)")
    return v


def format_dpid(dpid: int) -> str:
    return f"{dpid:016x}"


def parse_mac(text) -> str:
    """'02:00:00:00:00:01' (or '-' separated) -> normalized lower-case text."""
    s = str(text).strip().lower().replace("-", ":")
    if not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", s):
        raise ValueError(f"bad MAC address {text!r} (expected xx:xx:xx:xx:xx:xx)")
    return s


def format_mac(mac) -> str:
    if isinstance(mac, (bytes, bytearray)):
        return ":".join(f"{b:02x}" for b in mac)
    return parse_mac(mac)


def parse_ip(text):
    """An IPv4/IPv6 address (no prefix length)."""
    try:
        return ipaddress.ip_address(str(text).strip())
    except ValueError:
        raise ValueError(f"bad IP address {text!r}") from None


def parse_interface(text):
    """'ADDR/LEN' -> ipaddress interface (address with its subnet)."""
    s = str(text).strip()
    if "/" not in s:
        raise ValueError(f"bad interface address {text!r} (expected ADDRESS/PREFIXLEN, "
                         "e.g. 10.0.0.1/24)")
    try:
        return ipaddress.ip_interface(s)
    except ValueError:
        raise ValueError(f"bad interface address {text!r} (expected ADDRESS/PREFIXLEN)") from None


def parse_network(text):
    """'PREFIX/LEN' (host bits zero) -> ipaddress network; 'default' is
    0.0.0.0/0 and '::/0' stays itself."""
    s = str(text).strip()
    if s == "default":
        s = "0.0.0.0/0"
    try:
        return ipaddress.ip_network(s)
    except ValueError as e:
        raise ValueError(f"bad network {text!r} ({e})") from None
