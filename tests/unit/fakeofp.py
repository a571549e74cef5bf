"""A fake OpenFlow 1.3 switch for controller unit tests (Faucet's habit).

Who uses it: tests/unit/test_l2_logic.py (and any controller app test that
wants to check end-to-end forwarding decisions without a datapath).  It
interprets the os-ken messages an app returns, just enough for them:

  FLOW_MOD      ADD (replaces an identical match+priority; FLOW_REMOVED
                reason DELETE for the old one with removed_on_replace), DELETE and
                DELETE_STRICT with cookie/cookie_mask, out_port, table ALL;
                MODIFY/MODIFY_STRICT (instructions only).  Every FLOW_MOD
                is serialized and parsed back with os-ken first, so a
                message os-ken cannot encode fails the test.
  matches       in_port, eth_dst, eth_src, eth_type, vlan_vid (with masks;
                vlan_vid 0x0000 = untagged, 0x1000|vid = tagged vid).
  instructions  apply-actions, goto-table (forward only).
  actions       output (a port, IN_PORT, CONTROLLER; FLOOD/ALL are refused:
                an app that must respect spanning tree may not use them),
                push_vlan, pop_vlan, set_field vlan_vid.
  PACKET_OUT    actions as above, in_port as given.
  timeouts      expire(now): idle and hard timeouts, FLOW_REMOVED (as
                os-ken parses it from the wire) for flows with SEND_FLOW_REM;
                deletes with SEND_FLOW_REM give reason DELETE too.

receive(in_port, frame, now) runs a frame through the tables and returns
what came out: frames per port and PACKET_INs (os-ken OFPPacketIn parsed
from wire bytes, so apps see what os-ken would hand them).  Output to the
ingress port is dropped, as OpenFlow says (only IN_PORT sends back).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from types import SimpleNamespace

from os_ken.ofproto import ofproto_parser as ofpp
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

MATCH_FIELDS = ("in_port", "eth_dst", "eth_src", "eth_type", "vlan_vid")
VLAN_TPIDS = (0x8100, 0x88A8)


def fake_datapath(dpid=1):
    """What os-ken message constructors need of a datapath."""
    return SimpleNamespace(id=dpid, ofproto=ofp, ofproto_parser=parser)


def mac_int(v):
    if isinstance(v, int):
        return v
    return int(str(v).replace(":", ""), 16)


def _encode(msg):
    if msg.xid is None:
        msg.set_xid(1)
    msg.serialize()


def roundtrip(msg):
    """Serialize an os-ken message and parse it back with os-ken."""
    _encode(msg)
    buf = bytes(msg.buf)
    return ofpp.msg(msg.datapath, *ofpp.header(buf), buf)


@dataclass
class Flow:
    table_id: int
    priority: int
    match: dict                   # name -> (value, mask|None), ints
    instructions: list
    cookie: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    flags: int = 0
    installed: float = 0.0
    last_used: float = 0.0
    n_packets: int = 0
    os_match: object = None       # the os-ken OFPMatch as parsed

    def actions(self):
        out = []
        for inst in self.instructions:
            out += list(getattr(inst, "actions", []) or [])
        return out

    def outputs(self):
        return [a.port for a in self.actions() if isinstance(a, parser.OFPActionOutput)]

    def goto(self):
        for inst in self.instructions:
            if isinstance(inst, parser.OFPInstructionGotoTable):
                return inst.table_id
        return None


def _norm_match(m) -> dict:
    out = {}
    for name, value in m.items():
        if name not in MATCH_FIELDS:
            raise AssertionError(f"fakeofp: match field {name} not supported")
        mask = None
        if isinstance(value, tuple):
            value, mask = value
        conv = mac_int if name.startswith("eth_") and name != "eth_type" else int
        out[name] = (conv(value), None if mask is None else conv(mask))
    return out


def frame_fields(frame: bytes, in_port: int) -> dict:
    f = {"in_port": in_port, "eth_dst": int.from_bytes(frame[0:6], "big"),
         "eth_src": int.from_bytes(frame[6:12], "big")}
    et = int.from_bytes(frame[12:14], "big")
    if et in VLAN_TPIDS:
        f["vlan_vid"] = 0x1000 | (int.from_bytes(frame[14:16], "big") & 0x0FFF)
        f["eth_type"] = int.from_bytes(frame[16:18], "big")
    else:
        f["vlan_vid"] = 0
        f["eth_type"] = et
    return f


def _matches(flow_match: dict, fields: dict) -> bool:
    for name, (value, mask) in flow_match.items():
        v = fields.get(name)
        if v is None:
            return False
        if mask is None:
            if v != value:
                return False
        elif (v & mask) != (value & mask):
            return False
    return True


def _covers(flow_match: dict, del_match: dict) -> bool:
    """Non-strict delete: the flow is at least as specific as del_match."""
    for name, (value, mask) in del_match.items():
        if name not in flow_match:
            return False
        fv, fm = flow_match[name]
        full = (1 << 48) - 1 if name.startswith("eth_") and name != "eth_type" else 0xFFFFFFFF
        dm = full if mask is None else mask
        fm = full if fm is None else fm
        if (fm & dm) != dm or (fv & dm) != (value & dm):
            return False
    return True


@dataclass
class Result:
    outputs: list = field(default_factory=list)      # [(port, frame bytes)]
    packet_ins: list = field(default_factory=list)   # [os-ken OFPPacketIn]
    dropped_hairpin: int = 0
    flows: list = field(default_factory=list)        # flows that matched, in order

    def ports(self):
        return sorted(p for p, _ in self.outputs)

    def frame_to(self, port):
        frames = [f for p, f in self.outputs if p == port]
        assert len(frames) == 1, f"{len(frames)} frames to port {port}"
        return frames[0]


class FakeSwitch:
    def __init__(self, ports=(), dpid=1, removed_on_replace=False):
        self.dp = fake_datapath(dpid)
        # Some switches report a flow replaced by an identical ADD as
        # removed (reason DELETE); apps must cope with either habit.
        self.removed_on_replace = removed_on_replace
        self.flows: list[Flow] = []
        self.ports = {p: True for p in ports}          # port -> link up
        self.events = []                                 # FLOW_REMOVED from deletes
        self.other = []                                  # other messages received
        self.packet_outs = []

    # ------------------------------------------------------------ messages
    def apply(self, msgs, now: float = 0.0):
        """Takes what an app sends; returns FLOW_REMOVED caused by deletes
        (also queued in self.events) and outputs of PACKET_OUTs."""
        removed = []
        outs = []
        for m in msgs:
            if isinstance(m, parser.OFPFlowMod):
                removed += self._flow_mod(roundtrip(m), now)
            elif isinstance(m, parser.OFPPacketOut):
                _encode(m)             # must encode
                r = Result()
                self._run_actions(m.actions, bytearray(m.data), m.in_port, None, r, now)
                self.packet_outs.append(m)
                outs.append(r)
            else:
                _encode(m)
                self.other.append(m)
        self.events += removed
        return removed

    def _flow_mod(self, fm, now):
        cmd = fm.command
        match = _norm_match(fm.match)
        if cmd == ofp.OFPFC_ADD:
            assert fm.table_id < ofp.OFPTT_MAX, "ADD needs a real table"
            for inst in fm.instructions:
                if isinstance(inst, parser.OFPInstructionGotoTable):
                    assert inst.table_id > fm.table_id, "goto must go forward"
                elif not isinstance(inst, parser.OFPInstructionActions) or \
                        inst.type != ofp.OFPIT_APPLY_ACTIONS:
                    raise AssertionError(f"fakeofp: instruction {inst} not supported")
            same = [f for f in self.flows if f.table_id == fm.table_id and
                    f.priority == fm.priority and f.match == match]
            self.flows = [f for f in self.flows if f not in same]
            gone = [self._removed(f, ofp.OFPRR_DELETE, now) for f in same
                    if self.removed_on_replace and f.flags & ofp.OFPFF_SEND_FLOW_REM]
            self.flows.append(Flow(fm.table_id, fm.priority, match, list(fm.instructions),
                                   fm.cookie, fm.idle_timeout, fm.hard_timeout, fm.flags,
                                   now, now, 0, fm.match))
            return gone
        strict = cmd in (ofp.OFPFC_DELETE_STRICT, ofp.OFPFC_MODIFY_STRICT)
        sel = []
        for f in self.flows:
            if fm.table_id != ofp.OFPTT_ALL and f.table_id != fm.table_id:
                continue
            if (f.cookie & fm.cookie_mask) != (fm.cookie & fm.cookie_mask):
                continue
            if strict:
                if f.priority != fm.priority or f.match != match:
                    continue
            elif not _covers(f.match, match):
                continue
            if cmd in (ofp.OFPFC_DELETE, ofp.OFPFC_DELETE_STRICT) and \
                    fm.out_port != ofp.OFPP_ANY and fm.out_port not in f.outputs():
                continue
            sel.append(f)
        if cmd in (ofp.OFPFC_MODIFY, ofp.OFPFC_MODIFY_STRICT):
            for f in sel:
                f.instructions = list(fm.instructions)
            return []
        self.flows = [f for f in self.flows if f not in sel]
        return [self._removed(f, ofp.OFPRR_DELETE, now) for f in sel
                if f.flags & ofp.OFPFF_SEND_FLOW_REM]

    def _removed(self, f: Flow, reason: int, now: float):
        """A FLOW_REMOVED as os-ken parses it off the wire."""
        dur = max(0.0, now - f.installed)
        body = struct.pack("!QHBBIIHHQQ", f.cookie, f.priority, reason, f.table_id,
                           int(dur), int((dur % 1) * 1e9), f.idle_timeout, f.hard_timeout,
                           f.n_packets, 0)
        mbuf = bytearray()
        f.os_match.serialize(mbuf, 0)
        return self._parse(ofp.OFPT_FLOW_REMOVED, body + bytes(mbuf))

    def _parse(self, msg_type, body):
        n = 8 + len(body)
        buf = struct.pack("!BBHI", ofp.OFP_VERSION, msg_type, n, 0) + body
        return ofpp.msg(self.dp, ofp.OFP_VERSION, msg_type, n, 0, buf)

    # ------------------------------------------------------------ time
    def expire(self, now: float):
        """Removes flows past their idle/hard timeout; returns FLOW_REMOVEDs."""
        out = []
        keep = []
        for f in self.flows:
            reason = None
            if f.hard_timeout and now - f.installed >= f.hard_timeout:
                reason = ofp.OFPRR_HARD_TIMEOUT
            elif f.idle_timeout and now - f.last_used >= f.idle_timeout:
                reason = ofp.OFPRR_IDLE_TIMEOUT
            if reason is None:
                keep.append(f)
            elif f.flags & ofp.OFPFF_SEND_FLOW_REM:
                out.append(self._removed(f, reason, now))
        self.flows = keep
        return out

    # ------------------------------------------------------------ packets
    def lookup(self, table_id: int, fields: dict):
        best = None
        for f in self.flows:
            if f.table_id == table_id and _matches(f.match, fields):
                if best is None or f.priority > best.priority:
                    best = f
        return best

    def receive(self, in_port: int, frame: bytes, now: float = 0.0) -> Result:
        """Runs frame (arriving on in_port) through the pipeline."""
        assert in_port in self.ports, f"no port {in_port}"
        r = Result()
        if not self.ports[in_port]:
            return r
        pkt = bytearray(frame)
        table = 0
        while True:
            f = self.lookup(table, frame_fields(pkt, in_port))
            if f is None:
                break
            f.last_used = now
            f.n_packets += 1
            r.flows.append(f)
            for inst in f.instructions:
                if isinstance(inst, parser.OFPInstructionActions):
                    pkt = self._run_actions(inst.actions, pkt, in_port, f, r, now)
            nxt = f.goto()
            if nxt is None:
                break
            table = nxt
        return r

    def _run_actions(self, actions, pkt, in_port, flow, r, now):
        for a in actions:
            if isinstance(a, parser.OFPActionOutput):
                self._output(a, pkt, in_port, flow, r)
            elif isinstance(a, parser.OFPActionPushVlan):
                tci = pkt[14:16] if int.from_bytes(pkt[12:14], "big") in VLAN_TPIDS else b"\0\0"
                pkt = pkt[:12] + a.ethertype.to_bytes(2, "big") + tci + pkt[12:]
            elif isinstance(a, parser.OFPActionPopVlan):
                assert int.from_bytes(pkt[12:14], "big") in VLAN_TPIDS, "pop_vlan on untagged frame"
                pkt = pkt[:12] + pkt[16:]
            elif isinstance(a, parser.OFPActionSetField) and a.key == "vlan_vid":
                assert int.from_bytes(pkt[12:14], "big") in VLAN_TPIDS, "set vlan_vid on untagged frame"
                tci = int.from_bytes(pkt[14:16], "big")
                tci = (tci & 0xF000) | (a.value & 0x0FFF)
                pkt = pkt[:14] + tci.to_bytes(2, "big") + pkt[16:]
            else:
                raise AssertionError(f"fakeofp: action {a} not supported")
        return pkt

    def _output(self, a, pkt, in_port, flow, r):
        port = a.port
        if port in (ofp.OFPP_FLOOD, ofp.OFPP_ALL):
            raise AssertionError("output to FLOOD/ALL: floods must list their ports")
        if port == ofp.OFPP_CONTROLLER:
            reason = ofp.OFPR_NO_MATCH if (flow is not None and flow.priority == 0
                                           and not flow.match) else ofp.OFPR_ACTION
            data = bytes(pkt)
            if a.max_len != ofp.OFPCML_NO_BUFFER:
                data = data[:a.max_len]
            mbuf = bytearray()
            parser.OFPMatch(in_port=in_port).serialize(mbuf, 0)
            body = struct.pack("!IHBBQ", ofp.OFP_NO_BUFFER, len(pkt), reason,
                               flow.table_id if flow else 0,
                               flow.cookie if flow else 0xFFFFFFFFFFFFFFFF)
            body += bytes(mbuf) + b"\0\0" + data
            r.packet_ins.append(self._parse(ofp.OFPT_PACKET_IN, body))
            return
        if port == ofp.OFPP_IN_PORT:
            port = in_port
        elif port == in_port:
            r.dropped_hairpin += 1
            return
        if self.ports.get(port):
            r.outputs.append((port, bytes(pkt)))

    # ------------------------------------------------------------ views
    def table(self, table_id):
        return sorted((f for f in self.flows if f.table_id == table_id),
                      key=lambda f: -f.priority)
