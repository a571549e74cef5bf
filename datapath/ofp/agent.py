"""The OpenFlow 1.3 switch agent: what each message means for the Datapath.

Who uses it: datapath/daemon.py creates one Agent per `vdp run` and feeds it
the datapath's events (upcalls, flow expiry, link changes);
datapath/ofp/channel.py opens one Session per OpenFlow connection and hands it
the bytes it receives.  Tests drive Sessions directly (no sockets needed).

No I/O here.  A Session gets two callables: send(bytes) and close(); time is
passed in (`now`, monotonic seconds) or read from the Agent's clock, so tests
can warp it.  Every Datapath call is synchronous under the datapath lock, so a
message's effect is in the forwarding path when its handler returns; that is
what makes BARRIER_REPLY (sent in order, after everything before it) correct.

Pieces:
  Agent     switch-wide state: the Datapath, dpid, packet buffer pool,
            controller generation_id, the sessions; async events out
            (PACKET_IN, FLOW_REMOVED, PORT_STATUS); fail mode (standalone:
            Datapath.fail_standalone only while no controller is connected).
  Session   one connection: HELLO negotiation (1.3 only), echo keepalive,
            role, async masks, miss_send_len, and a handler per message.
  BufferPool  frames kept for buffer_id references from PACKET_IN.

Choices (documented here because controllers can observe them):
  - Connections accepted on a passive listener (`--listen ptcp:`) are
    service connections, as in Open vSwitch: they get every message and
    async event, but do not count as "a controller" for fail mode (an
    `ovs-ofctl dump-flows` does not turn standalone switching off).
  - TABLE_FEATURES with a body (a request to reconfigure the tables) is
    refused with TABLE_FEATURES_FAILED/EPERM: the tables' capabilities are
    fixed; an empty request gets the real capabilities of all 254 tables.
  - SET_CONFIG fragment handling: only OFPC_FRAG_NORMAL exists, other frag
    modes are accepted and reported back as NORMAL (what OVS does for
    REASM).  miss_send_len is per connection.
  - The INVALID_TTL packet-in is enabled in the Datapath while some
    connection's async mask (master/equal half, or slave half for slaves)
    asks for it.
  - METER_MOD/GROUP_MOD delete of an id that does not exist is not an error.
"""
from __future__ import annotations

import logging
import struct
import time

from datapath import model as M

from . import consts as C
from . import messages as MSG
from . import multipart as MP
from .actions import ExperimenterAction, ExperimenterBand, ExperimenterInstruction
from .codec import Framer, OFPError
from .oxm import opaque_fields
from .portdesc import describe
from .reassembly import Reassembler

log = logging.getLogger("vdp.ofp")

SW_VERSION = "vdp 0.1.0"
N_BUFFERS = 256                  # power of two (see BufferPool)
ECHO_INTERVAL = 5.0              # seconds of silence before an echo request
ECHO_PROBES = 3                  # unanswered echo requests before disconnecting
ASYNC_BACKLOG_LIMIT = 4 << 20    # bytes queued to a peer past which packet-ins are dropped
TABLE_MAX_ENTRIES = 1 << 20
# PACKET_OUTs whose header and action bytes repeat one already handled skip
# decoding them again (see Session._packet_out_repeat); this many kept.
PACKET_OUT_CACHE = 256

# Default async configuration (OpenFlow 1.3.5 section 7.3.10 / Open vSwitch):
# (master/equal mask, slave mask) for packet-in, port-status, flow-removed.
DEFAULT_PACKET_IN_MASK = ((1 << C.OFPR_NO_MATCH) | (1 << C.OFPR_ACTION), 0)
DEFAULT_PORT_STATUS_MASK = (0x7, 0x7)
DEFAULT_FLOW_REMOVED_MASK = (0xF, 0)

# Messages a slave may not send (OFPBRC_IS_SLAVE).
_MODIFYING = (MSG.PacketOut, MSG.FlowMod, MSG.GroupMod, MSG.PortMod, MSG.TableMod,
              MSG.MeterMod)

_SUPPORTED_PORT_CONFIG = (C.OFPPC_PORT_DOWN | C.OFPPC_NO_RECV | C.OFPPC_NO_FWD
                          | C.OFPPC_NO_PACKET_IN)

_ACTION_TYPES = (C.OFPAT_OUTPUT, C.OFPAT_COPY_TTL_OUT, C.OFPAT_COPY_TTL_IN, C.OFPAT_SET_MPLS_TTL,
                 C.OFPAT_DEC_MPLS_TTL, C.OFPAT_PUSH_VLAN, C.OFPAT_POP_VLAN, C.OFPAT_PUSH_MPLS,
                 C.OFPAT_POP_MPLS, C.OFPAT_SET_QUEUE, C.OFPAT_GROUP, C.OFPAT_SET_NW_TTL,
                 C.OFPAT_DEC_NW_TTL, C.OFPAT_SET_FIELD, C.OFPAT_PUSH_PBB, C.OFPAT_POP_PBB)
_ACTION_BITMAP = sum(1 << a for a in _ACTION_TYPES)


class BufferPool:
    """Frames kept for PACKET_IN buffer_ids: a ring of n slots (n a power of
    two).  Ids count up, so id % n is the slot and an id whose slot has been
    reused since is recognised as gone (BUFFER_UNKNOWN); an id already used
    once is BUFFER_EMPTY.  OFP_NO_BUFFER is never handed out."""

    def __init__(self, n=N_BUFFERS):
        assert n > 0 and n & (n - 1) == 0
        self.n = n
        self.slots = [None] * n       # (id, data, in_port) or (id, None, None) once used
        self.counter = 0

    def put(self, data, in_port):
        bid = self.counter
        self.counter = (self.counter + 1) & 0xFFFFFFFF
        if bid == C.OFP_NO_BUFFER:
            bid, self.counter = 0, 1
        self.slots[bid % self.n] = (bid, data, in_port)
        return bid

    def take(self, bid):
        """(data, in_port) of buffer bid, which is then used up; OFPError
        BAD_REQUEST/BUFFER_UNKNOWN or BUFFER_EMPTY otherwise."""
        e = self.slots[bid % self.n]
        if e is None or e[0] != bid:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BUFFER_UNKNOWN,
                           reason=f"buffer {bid:#x} unknown")
        if e[1] is None:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BUFFER_EMPTY,
                           reason=f"buffer {bid:#x} already used")
        self.slots[bid % self.n] = (bid, None, None)
        return e[1], e[2]


def _s64(x):
    x &= 0xFFFFFFFFFFFFFFFF
    return x - (1 << 64) if x >> 63 else x


def _sec_nsec(ns):
    ns = max(0, int(ns))
    return ns // 1_000_000_000, ns % 1_000_000_000


def _check_actions(actions):
    for a in actions:
        if isinstance(a, ExperimenterAction):
            raise OFPError(C.OFPET_BAD_ACTION, C.OFPBAC_BAD_EXPERIMENTER,
                           reason=f"experimenter action {a.experimenter:#x}")


def _check_flow_spec(spec):
    """What the codec leaves to the switch: opaque (non-basic) OXMs and
    experimenter instructions/actions, which this datapath supports none of."""
    if opaque_fields(spec.match):
        raise OFPError(C.OFPET_BAD_MATCH, C.OFPBMC_BAD_FIELD, reason="non-basic OXM field")
    for ins in spec.instructions:
        if isinstance(ins, ExperimenterInstruction):
            raise OFPError(C.OFPET_BAD_INSTRUCTION, C.OFPBIC_BAD_EXPERIMENTER,
                           reason=f"experimenter instruction {ins.experimenter:#x}")
        if isinstance(ins, (M.ApplyActions, M.WriteActions)):
            _check_actions(ins.actions)


def build_table_features(n_tables):
    """The real capabilities of each table, as TABLE_FEATURES entries."""
    all_fields = [name for name, _, _, _ in M.FIELDS]
    match_ids = tuple(MP.OxmId.of(n, n in M.MASKABLE) for n in all_fields)
    wildcard_ids = tuple(MP.OxmId.of(n) for n in all_fields)
    set_ids = tuple(MP.OxmId.of(n) for n in all_fields if n in M.SETTABLE)
    actions = tuple(_ACTION_TYPES)
    out = []
    for t in range(n_tables):
        insts = [C.OFPIT_GOTO_TABLE, C.OFPIT_WRITE_METADATA, C.OFPIT_WRITE_ACTIONS,
                 C.OFPIT_APPLY_ACTIONS, C.OFPIT_CLEAR_ACTIONS, C.OFPIT_METER]
        if t == n_tables - 1:
            insts.remove(C.OFPIT_GOTO_TABLE)
        nxt = tuple(range(t + 1, n_tables))
        props = []
        for miss in (0, 1):
            props.append(MP.TFInstructions(C.OFPTFPT_INSTRUCTIONS + miss, tuple(insts)))
            props.append(MP.TFNextTables(C.OFPTFPT_NEXT_TABLES + miss, nxt))
            props.append(MP.TFActions(C.OFPTFPT_WRITE_ACTIONS + miss, actions))
            props.append(MP.TFActions(C.OFPTFPT_APPLY_ACTIONS + miss, actions))
        props.append(MP.TFOxm(C.OFPTFPT_MATCH, match_ids))
        props.append(MP.TFOxm(C.OFPTFPT_WILDCARDS, wildcard_ids))
        for miss in (0, 1):
            props.append(MP.TFOxm(C.OFPTFPT_WRITE_SETFIELD + miss, set_ids))
            props.append(MP.TFOxm(C.OFPTFPT_APPLY_SETFIELD + miss, set_ids))
        out.append(MP.TableFeatures(t, f"table{t}", 0xFFFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF,
                                    0, TABLE_MAX_ENTRIES, tuple(props)))
    return out


class Agent:
    """The switch side of OpenFlow for one Datapath.

    dp: the facade Datapath (or anything with its API); dpid: the datapath
    id; fail_mode: "standalone" or "secure"; clock: monotonic seconds."""

    def __init__(self, dp, dpid=0, name="vdp0", fail_mode="standalone", clock=time.monotonic,
                 n_buffers=N_BUFFERS, echo_interval=ECHO_INTERVAL, echo_probes=ECHO_PROBES):
        self.dp = dp
        self.dpid = dpid
        self.name = name
        self.fail_mode = fail_mode
        self.clock = clock
        self.buffers = BufferPool(n_buffers)
        self.echo_interval = echo_interval
        self.echo_probes = echo_probes
        self.generation_id = None          # last master/slave generation_id seen
        self.sessions = []                 # every open Session (handshake done or not)
        self.n_tables = int(getattr(dp, "n_tables", 254))
        self.packet_ins_dropped = 0        # backlog too long on a connection
        self._port_since = {}              # ofport -> monotonic ns first seen (port stats)
        self._port_descs = {}              # ofport -> last PortDesc sent / known
        self._speeds = {}
        self._table_features = None        # encoded reply parts, built on first request
        for n, p in sorted(self._ports().items()):
            self._port_descs[n] = describe(dp, n, p, self._speeds)
            self._port_since[n] = self._now_ns()
        # How many --controller targets the daemon was given: with some but
        # none connected, fail mode standalone is fail-open (see below).
        self.controllers_configured = 0
        self._update_fail_mode()

    # ----------------------------------------------------------------- sessions
    def open_session(self, send, close, name="", service=False, backlog=None, now=None):
        """A new connection: sends our HELLO right away.  service=True for
        connections accepted on a passive listener (see module doc)."""
        s = Session(self, send, close, name=name, service=service, backlog=backlog,
                    now=self.clock() if now is None else now)
        self.sessions.append(s)
        s.start()
        return s

    def _session_closed(self, s):
        if s in self.sessions:
            self.sessions.remove(s)
        self._update_fail_mode()
        self._update_ttl_upcalls()

    def connected(self):
        """Sessions past the HELLO exchange."""
        return [s for s in self.sessions if s.ready]

    def controllers_connected(self):
        return sum(1 for s in self.sessions if s.ready and not s.service)

    def _update_fail_mode(self):
        """Fail mode standalone, as Open vSwitch does it: a controller
        connected -> the tables decide (FAIL_OFF); controllers configured but
        none connected -> every frame goes to NORMAL whatever the tables hold
        (FAIL_OPEN: flows a lost controller left cannot black-hole the
        switch); none configured -> table-0 misses go to NORMAL and installed
        flows still win (FAIL_MISS_NORMAL).  Service connections (ovs-ofctl
        on a listener) are not controllers.  Fail mode secure: always OFF."""
        if self.fail_mode != "standalone" or not hasattr(self.dp, "fail_standalone"):
            return
        if self.controllers_connected():
            want = 0
        elif self.controllers_configured:
            want = 2
        else:
            want = 1
        if not hasattr(self.dp, "fail_standalone_mode"):      # a datapath without modes
            want = bool(want)
            if bool(self.dp.fail_standalone) != want:
                self.dp.fail_standalone = want
            return
        if self.dp.fail_standalone_mode != want:
            self.dp.fail_standalone_mode = want
            log.info("fail mode standalone: %s", (
                "controller connected, NORMAL fallback off",
                "learning switch on table misses (no controller configured)",
                "fail-open: every frame to NORMAL until a controller connects")[want])

    def _update_ttl_upcalls(self):
        if not hasattr(self.dp, "invalid_ttl_to_controller"):
            return
        bit = 1 << C.OFPR_INVALID_TTL
        want = any(s.async_mask("packet_in") & bit for s in self.connected())
        if bool(self.dp.invalid_ttl_to_controller) != want:
            self.dp.invalid_ttl_to_controller = want

    def tick(self, now=None):
        """Keepalive for every session (call about once a second)."""
        now = self.clock() if now is None else now
        for s in list(self.sessions):
            s.tick(now)

    def close_all(self):
        for s in list(self.sessions):
            s.close("switch stopping")

    # ----------------------------------------------------------------- helpers
    def _now_ns(self):
        return int(self.clock() * 1e9)

    def _ports(self):
        return self.dp.ports()

    def port_desc(self, ofport, port=None):
        port = port if port is not None else self._ports()[ofport]
        return describe(self.dp, ofport, port, self._speeds)

    def _broadcast(self, kind, reason, raw):
        for s in self.connected():
            if s.async_mask(kind) & (1 << reason):
                s.send(raw)

    # ----------------------------------------------------------------- async events
    def handle_upcalls(self, upcalls):
        """PACKET_IN for each Datapath Upcall (or any object with its
        attributes; max_len may be missing, cookie None, total_len 0) to every
        connection whose async mask takes its reason.  Returns how many
        upcalls reached at least one connection."""
        if not upcalls or not self.connected():
            return 0
        return self.handle_upcall_tuples([
            (u.data, u.in_port, u.reason, u.table_id,
             u.cookie if u.cookie is not None else 0xFFFFFFFFFFFFFFFF, u.metadata,
             u.total_len if u.total_len else len(u.data), getattr(u, "max_len", None))
            for u in upcalls], batch=False)

    def handle_upcall_tuples(self, ups, batch=True, _prefix=MSG.packet_in_prefix):
        """handle_upcalls for Datapath.upcall_tuples(): [(data, in_port,
        reason, table_id, cookie, metadata, total_len, max_len)], max_len None
        meaning the Upcall had none.  batch: each connection gets the whole
        batch's PACKET_INs in one write (the daemon); else one write per
        message, as handle_upcalls has always done (callers that take each
        send() for one message).  A connection whose queued bytes (its
        transport backlog plus this batch so far) pass ASYNC_BACKLOG_LIMIT
        drops packet-ins (counted in packet_ins_dropped).  Returns how many
        upcalls reached at least one connection."""
        sessions = self.connected()
        if not sessions:
            return 0
        # per connection: [session, packet-in mask, miss_send_len, parts, queued bytes]
        outs = [[s, s.async_mask("packet_in"), s.miss_send_len, [], s.backlog()]
                for s in sessions]
        buffers = self.buffers
        delivered = dropped = 0
        for data, in_port, reason, table_id, cookie, metadata, total_len, max_len in ups:
            bit = 1 << reason
            bid = None
            sent = False
            if table_id == 0xFF:
                table_id = 0
            n = len(data)
            if not total_len:
                total_len = n
            for o in outs:
                if not o[1] & bit:
                    continue
                if o[4] > ASYNC_BACKLOG_LIMIT:
                    dropped += 1
                    continue
                ml = max_len
                if reason == C.OFPR_INVALID_TTL:
                    # no output action gave a max_len: the connection's miss_send_len (spec)
                    ml = o[2]
                elif ml is None:
                    ml = C.OFPCML_NO_BUFFER      # a facade without Upcall.max_len
                if ml != C.OFPCML_NO_BUFFER and ml < n:
                    if bid is None:
                        bid = buffers.put(data, in_port)
                    try:
                        head = _prefix(bid, total_len, reason, table_id, cookie, in_port,
                                       metadata, ml)
                    except ValueError:
                        dropped += 1
                        continue
                    parts = o[3]
                    parts.append(head)
                    parts.append(data[:ml])
                    o[4] += len(head) + ml
                else:
                    try:
                        head = _prefix(C.OFP_NO_BUFFER, total_len, reason, table_id, cookie,
                                       in_port, metadata, n)
                    except ValueError:
                        # longer than an OpenFlow message can carry
                        dropped += 1
                        continue
                    parts = o[3]
                    parts.append(head)
                    parts.append(data)
                    o[4] += len(head) + n
                sent = True
            delivered += sent
            if not batch:
                for o in outs:
                    if o[3]:
                        o[0].send(b"".join(o[3]))
                        o[3].clear()
                        o[4] = o[0].backlog()
        if dropped:
            self.packet_ins_dropped += dropped
        for o in outs:
            if o[3]:
                o[0].send(b"".join(o[3]))
        return delivered

    def flows_removed(self, removed):
        """FLOW_REMOVED for [(FlowStats, reason)] whose flow asked for it."""
        if not removed:
            return
        for stats, reason in removed:
            if not stats.spec.flags & C.OFPFF_SEND_FLOW_REM:
                continue
            if reason > C.OFPRR_GROUP_DELETE:      # meter delete: 1.4's reason, 1.3 says DELETE
                reason = C.OFPRR_DELETE
            raw = MSG.encode(MSG.FlowRemoved.from_stats(stats, reason))
            self._broadcast("flow_removed", reason, raw)

    def expire(self, now=None):
        """Idle/hard timeouts: Datapath.expire plus FLOW_REMOVED; returns
        the [(FlowStats, reason)] removed."""
        now = self.clock() if now is None else now
        removed = self.dp.expire(now) or []
        self.flows_removed(removed)
        return removed

    def port_status(self, ofport, reason, desc=None):
        if desc is None:
            desc = self.port_desc(ofport)
        raw = MSG.encode(MSG.PortStatus(0, reason, desc))
        self._broadcast("port_status", reason, raw)

    def port_changed(self, ofport):
        """A port's link or config may have changed: PORT_STATUS MODIFY if
        its description did."""
        ports = self._ports()
        if ofport not in ports:
            return
        desc = self.port_desc(ofport, ports[ofport])
        if self._port_descs.get(ofport) != desc:
            self._port_descs[ofport] = desc
            self.port_status(ofport, C.OFPPR_MODIFY, desc)

    def port_added(self, ofport):
        """Call after Datapath.attach_port."""
        desc = self.port_desc(ofport)
        self._port_descs[ofport] = desc
        self._port_since[ofport] = self._now_ns()
        self.port_status(ofport, C.OFPPR_ADD, desc)

    def port_deleted(self, ofport, desc=None):
        """Call after Datapath.detach_port (desc: as it was, if known)."""
        desc = desc or self._port_descs.get(ofport) or MP.PortDesc(ofport)
        self._port_descs.pop(ofport, None)
        self._port_since.pop(ofport, None)
        self._speeds.pop(ofport, None)
        self.port_status(ofport, C.OFPPR_DELETE, desc)

    # ----------------------------------------------------------------- features
    def features(self, xid):
        caps = (C.OFPC_FLOW_STATS | C.OFPC_TABLE_STATS | C.OFPC_PORT_STATS
                | C.OFPC_GROUP_STATS)
        return MSG.FeaturesReply(xid, self.dpid, self.buffers.n, self.n_tables, 0, caps)

    def table_features_reply(self, xid):
        """The encoded reply parts (built once; only the xid changes)."""
        if self._table_features is None:
            self._table_features = MSG.encode_multipart_reply(
                0, C.OFPMP_TABLE_FEATURES, build_table_features(self.n_tables))
        x = struct.pack("!I", xid & 0xFFFFFFFF)
        return [p[:4] + x + p[8:] for p in self._table_features]


class Session:
    """One OpenFlow connection (see module doc).  Feed it bytes with
    data_received(); it answers through send()."""

    def __init__(self, agent, send, close, name="", service=False, backlog=None, now=0.0):
        self.agent = agent
        self.dp = agent.dp
        self._send = send
        self._close = close
        self.name = name
        self.service = service
        self.backlog = backlog or (lambda: 0)
        self.framer = Framer()
        self.ready = False              # HELLO exchanged, version 1.3 agreed
        self.closed = False
        self.role = C.OFPCR_ROLE_EQUAL
        self.packet_in_mask = DEFAULT_PACKET_IN_MASK
        self.port_status_mask = DEFAULT_PORT_STATUS_MASK
        self.flow_removed_mask = DEFAULT_FLOW_REMOVED_MASK
        self.miss_send_len = 128
        self.frag_flags = C.OFPC_FRAG_NORMAL
        self.last_rx = now
        self.last_probe = None
        self.probes = 0
        self.xid = 0xF0000000           # our own requests (echo); far from controllers' xids
        self.rx_msgs = 0
        self.errors_sent = 0
        # multipart requests split over several messages (OFPMPF_REQ_MORE)
        self.reassembly = Reassembler()
        # header+actions bytes of PACKET_OUTs handled -> (in_port, actions)
        self._po_seen = {}

    def __repr__(self):
        return f"<Session {self.name or id(self)} role={self.role} ready={self.ready}>"

    # ----------------------------------------------------------------- plumbing
    def send(self, raw):
        if not self.closed:
            self._send(raw)

    def send_msg(self, msg):
        self.send(MSG.encode(msg))

    def send_error(self, err, raw=None, xid=None):
        """OFPT_ERROR for err (OFPError, or FlowError-like with type/code)."""
        if isinstance(err, OFPError):
            if raw is not None and not err.data:
                err.data = raw[:C.OFP_ERROR_DATA_MAX]
            out = err.encode(xid=xid)
        else:
            out = MSG.encode(MSG.ErrorMsg(xid or 0, int(err.type), int(err.code),
                                          (raw or b"")[:C.OFP_ERROR_DATA_MAX]))
        self.errors_sent += 1
        self.send(out)

    def _next_xid(self):
        self.xid = (self.xid + 1) & 0xFFFFFFFF
        return self.xid

    def start(self):
        self.send_msg(MSG.Hello(0, frozenset({C.OFP_VERSION})))

    def close(self, why=""):
        if self.closed:
            return
        if why:
            log.info("openflow %s: closing: %s", self.name or "connection", why)
        self.closed = True
        was_ready, self.ready = self.ready, False
        self.agent._session_closed(self)
        if was_ready:
            (log.debug if self.service else log.info)(
                "openflow %s: disconnected", self.name or "connection")
        try:
            self._close()
        except Exception:
            log.debug("close failed", exc_info=True)

    def connection_lost(self):
        """The transport went away (peer closed, error)."""
        if not self.closed:
            self.close()

    def async_mask(self, kind):
        masks = {"packet_in": self.packet_in_mask, "port_status": self.port_status_mask,
                 "flow_removed": self.flow_removed_mask}[kind]
        return masks[1] if self.role == C.OFPCR_ROLE_SLAVE else masks[0]

    # ----------------------------------------------------------------- keepalive
    def tick(self, now):
        if self.closed:
            return
        if now - self.last_rx < self.agent.echo_interval:
            return
        if self.last_probe is not None and now - self.last_probe < self.agent.echo_interval:
            return
        if self.probes >= self.agent.echo_probes:
            self.close(f"no answer to {self.probes} echo requests")
            return
        self.probes += 1
        self.last_probe = now
        self.send_msg(MSG.EchoRequest(self._next_xid(), b""))

    # ----------------------------------------------------------------- input
    def data_received(self, data, now=None):
        if self.closed:
            return
        self.last_rx = self.agent.clock() if now is None else now
        self.probes = 0
        self.last_probe = None
        self.framer.feed(data)
        try:
            for raw in self.framer:
                self.handle_raw(raw)
                if self.closed:
                    return
        except OFPError as e:            # framing lost: say why, then hang up
            self.send_error(e)
            self.close(f"bad framing: {e}")

    def handle_raw(self, raw):
        self.rx_msgs += 1
        if (len(raw) >= 24 and raw[1] == C.OFPT_PACKET_OUT and type(raw) is bytes
                and self._packet_out_repeat(raw)):
            return
        if raw[1] == C.OFPT_MULTIPART_REQUEST:
            step = self.reassembly.feed(raw)
            if not step.passthrough:
                if not self.ready:
                    self._become_ready()
                for err in step.errors:
                    self.send_error(err)
                if step.request is not None:
                    self._dispatch_guarded(step.request, step.raw)
                return
        try:
            msg = MSG.decode(raw)
        except OFPError as e:
            if not self.ready and raw[1:2] == bytes([C.OFPT_HELLO]):
                self._hello_failed(f"bad hello: {e}", C.OFPHFC_EPERM)
                return
            if not self.ready and raw[0] != C.OFP_VERSION:
                self._hello_failed(f"version {raw[0]} before hello", C.OFPHFC_INCOMPATIBLE)
                return
            log.debug("openflow %s: %s", self.name, e)
            self.send_error(e, raw)
            if not self.ready:
                self._become_ready()
            return
        if isinstance(msg, MSG.Hello):
            self._on_hello(msg)
            return
        if not self.ready:
            # No HELLO first: a 1.3 message (decode checked the version)
            # stands for one, as lenient switches do.
            self._become_ready()
        self._dispatch_guarded(msg, raw)

    def _dispatch_guarded(self, msg, raw):
        """dispatch(), every failure answered with an OFPT_ERROR quoting raw."""
        try:
            self.dispatch(msg, raw)
        except OFPError as e:
            self.send_error(e, raw, xid=msg.xid)
        except Exception as e:
            ftype, code = getattr(e, "type", None), getattr(e, "code", None)
            if isinstance(ftype, int) and isinstance(code, int) and type(e).__name__ == "FlowError":
                log.debug("openflow %s: refused: %s", self.name, e)
                self.send_error(e, raw, xid=msg.xid)
            elif isinstance(e, MemoryError) and isinstance(msg, MSG.FlowMod):
                self.send_error(OFPError(C.OFPET_FLOW_MOD_FAILED, C.OFPFMFC_TABLE_FULL), raw,
                                xid=msg.xid)
            else:
                log.exception("openflow %s: %s failed", self.name, type(msg).__name__)
                self.send_error(OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_EPERM), raw, xid=msg.xid)

    def _hello_failed(self, why, code):
        text = f"{why}; this switch speaks OpenFlow 1.3 (0x04) only".encode()
        self.send(OFPError(C.OFPET_HELLO_FAILED, code, text).encode(xid=0))
        self.close(why)

    def _on_hello(self, hello):
        if self.ready:
            return                       # a second HELLO changes nothing
        v = MSG.negotiate_version(hello)
        if v != C.OFP_VERSION:
            peer = sorted(hello.versions) if hello.versions is not None else [hello.version]
            self._hello_failed(f"no common version (peer: {peer})", C.OFPHFC_INCOMPATIBLE)
            return
        self._become_ready()

    def _become_ready(self):
        self.ready = True
        # Every ovs-ofctl command is a service connection: keep those quiet.
        (log.debug if self.service else log.info)(
            "openflow %s: connected (%s)", self.name or "connection",
            "service" if self.service else "controller")
        self.agent._update_fail_mode()
        self.agent._update_ttl_upcalls()

    # ----------------------------------------------------------------- dispatch
    def dispatch(self, msg, raw):
        if self.role == C.OFPCR_ROLE_SLAVE and (
                isinstance(msg, _MODIFYING) or (isinstance(msg, MSG.MultipartRequest)
                                                and msg.type == C.OFPMP_TABLE_FEATURES
                                                and msg.body)):
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_IS_SLAVE, reason="slave")
        handler = self._HANDLERS.get(type(msg))
        if handler is None:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_TYPE,
                           reason=f"{type(msg).__name__} not handled")
        handler(self, msg, raw)

    # -- symmetric / session
    def _echo_request(self, msg, raw):
        self.send_msg(MSG.EchoReply(msg.xid, msg.data))

    def _echo_reply(self, msg, raw):
        pass                             # any input already reset the keepalive

    def _error(self, msg, raw):
        log.info("openflow %s: peer sent error type %d code %d", self.name, msg.type, msg.code)

    def _experimenter(self, msg, raw):
        raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_EXPERIMENTER,
                       reason=f"experimenter {msg.experimenter:#x}")

    def _features(self, msg, raw):
        self.send_msg(self.agent.features(msg.xid))

    def _get_config(self, msg, raw):
        self.send_msg(MSG.GetConfigReply(msg.xid, self.frag_flags, self.miss_send_len))

    def _set_config(self, msg, raw):
        # Only FRAG_NORMAL exists here; other frag modes read back as NORMAL.
        self.frag_flags = msg.flags & ~C.OFPC_FRAG_MASK
        self.miss_send_len = msg.miss_send_len

    def _barrier(self, msg, raw):
        # Everything before this message has been applied to the Datapath
        # (synchronous calls under its lock): answer now, in order.
        self.send_msg(MSG.BarrierReply(msg.xid))

    def _role(self, msg, raw):
        agent = self.agent
        role = msg.role
        if role in (C.OFPCR_ROLE_MASTER, C.OFPCR_ROLE_SLAVE):
            if agent.generation_id is not None and \
                    _s64(msg.generation_id - agent.generation_id) < 0:
                raise OFPError(C.OFPET_ROLE_REQUEST_FAILED, C.OFPRRFC_STALE,
                               reason=f"generation_id {msg.generation_id} is stale")
            agent.generation_id = msg.generation_id
        if role != C.OFPCR_ROLE_NOCHANGE:
            if role == C.OFPCR_ROLE_MASTER:
                for s in agent.sessions:
                    if s is not self and s.role == C.OFPCR_ROLE_MASTER:
                        s.role = C.OFPCR_ROLE_SLAVE
            self.role = role
            agent._update_ttl_upcalls()
        self.send_msg(MSG.RoleReply(msg.xid, self.role,
                                    agent.generation_id if agent.generation_id is not None else 0))

    def _get_async(self, msg, raw):
        self.send_msg(MSG.GetAsyncReply(msg.xid, self.packet_in_mask, self.port_status_mask,
                                        self.flow_removed_mask))

    def _set_async(self, msg, raw):
        self.packet_in_mask = tuple(msg.packet_in_mask)
        self.port_status_mask = tuple(msg.port_status_mask)
        self.flow_removed_mask = tuple(msg.flow_removed_mask)
        self.agent._update_ttl_upcalls()

    # -- flows
    def _flow_mod(self, msg, raw):
        spec = msg.spec
        cmd = msg.command
        dp = self.dp
        if cmd in (C.OFPFC_DELETE, C.OFPFC_DELETE_STRICT):
            strict = cmd == C.OFPFC_DELETE_STRICT
            if spec.table_id != C.OFPTT_ALL and spec.table_id >= self.agent.n_tables:
                raise OFPError(C.OFPET_FLOW_MOD_FAILED, C.OFPFMFC_BAD_TABLE_ID,
                               reason=f"table {spec.table_id}")
            if opaque_fields(spec.match):
                raise OFPError(C.OFPET_BAD_MATCH, C.OFPBMC_BAD_FIELD, reason="non-basic OXM")
            removed = dp.flow_delete(table_id=spec.table_id, match=spec.match,
                                     priority=spec.priority if strict else None, strict=strict,
                                     out_port=msg.out_port, out_group=msg.out_group,
                                     cookie=spec.cookie, cookie_mask=msg.cookie_mask)
            self.agent.flows_removed([(st, C.OFPRR_DELETE) for st in removed or ()])
            return
        if not msg.basic:               # the codec saw an opaque OXM or an experimenter
            _check_flow_spec(spec)
        if cmd == C.OFPFC_ADD:
            dp.flow_add(spec)
        else:
            self._flow_modify(spec, cmd == C.OFPFC_MODIFY_STRICT, msg.cookie_mask)
        if msg.buffer_id != C.OFP_NO_BUFFER:
            data, in_port = self.agent.buffers.take(msg.buffer_id)
            dp.packet_out(data, in_port, (M.Output(C.OFPP_TABLE),))

    def _flow_modify(self, spec, strict, cookie_mask):
        dp = self.dp
        if spec.table_id >= self.agent.n_tables:
            raise OFPError(C.OFPET_FLOW_MOD_FAILED, C.OFPFMFC_BAD_TABLE_ID,
                           reason=f"table {spec.table_id}")
        if not cookie_mask:
            return dp.flow_modify(spec, strict=strict)
        # A cookie filter: pick the flows, then modify each one exactly.
        # The new spec keeps each flow's own match/priority (modify never
        # changes those) and carries the request's instructions and flags.
        picked = dp.flows(table_id=spec.table_id, match=spec.match, cookie=spec.cookie,
                          cookie_mask=cookie_mask)
        n = 0
        for st in picked:
            fs = st.spec
            if strict and (fs.priority != spec.priority or fs.match != spec.match):
                continue
            one = M.FlowSpec(table_id=fs.table_id, priority=fs.priority, match=fs.match,
                             instructions=spec.instructions, cookie=fs.cookie,
                             idle_timeout=fs.idle_timeout, hard_timeout=fs.hard_timeout,
                             flags=spec.flags)
            n += dp.flow_modify(one, strict=True)
        return n

    # -- packets
    def _packet_out(self, msg, raw):
        _check_actions(msg.actions)
        in_port = msg.in_port
        if in_port == 0 or (in_port <= C.OFPP_MAX and in_port not in self.agent._ports()):
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_PORT,
                           reason=f"packet_out in_port {in_port}")
        if msg.buffer_id != C.OFP_NO_BUFFER:
            data, _ = self.agent.buffers.take(msg.buffer_id)
        else:
            data = msg.data
            if not data:
                raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_PACKET,
                               reason="packet_out without a packet")
        actions = tuple(msg.actions)
        self.dp.packet_out(data, in_port, actions)
        if msg.buffer_id == C.OFP_NO_BUFFER and type(raw) is bytes:
            # Remember what these header and action bytes decoded to.
            seen = self._po_seen
            if len(seen) >= PACKET_OUT_CACHE:
                seen.clear()
            seen[raw[8:24 + ((raw[16] << 8) | raw[17])]] = (in_port, actions)

    def _packet_out_repeat(self, raw):
        """A PACKET_OUT whose bytes from buffer_id through the actions are
        those of one this session handled before (a controller sending
        frames with the same actions, typically one output): run it with
        the actions decoded then, skipping the decoder, which costs more
        than the rest.  Everything that can differ is checked again (role,
        in_port still a port, a frame present); anything unusual, including
        an error from the Datapath, returns False and the message takes the
        full path, which answers it as usual.  True when it was handled."""
        end = 24 + ((raw[16] << 8) | raw[17])
        if (end >= len(raw) or raw[0] != C.OFP_VERSION or not self.ready
                or self.role == C.OFPCR_ROLE_SLAVE):
            return False
        hit = self._po_seen.get(raw[8:end])
        if hit is None:
            return False
        in_port, actions = hit
        if in_port <= C.OFPP_MAX and in_port not in self.agent._ports():
            return False
        try:
            self.dp.packet_out(raw[end:], in_port, actions)
        except Exception:
            return False
        return True

    # -- ports, tables
    def _port_mod(self, msg, raw):
        ports = self.agent._ports()
        port = ports.get(msg.port_no)
        if port is None:
            raise OFPError(C.OFPET_PORT_MOD_FAILED, C.OFPPMFC_BAD_PORT,
                           reason=f"no port {msg.port_no}")
        hw = self.agent.port_desc(msg.port_no, port).hw_addr
        hw_int = int.from_bytes(hw, "big") if not isinstance(hw, int) else hw
        if hw_int != msg.hw_addr:
            raise OFPError(C.OFPET_PORT_MOD_FAILED, C.OFPPMFC_BAD_HW_ADDR,
                           reason="hw_addr does not match the port's")
        if msg.mask & ~_SUPPORTED_PORT_CONFIG:
            raise OFPError(C.OFPET_PORT_MOD_FAILED, C.OFPPMFC_BAD_CONFIG,
                           reason=f"config bits {msg.mask & ~_SUPPORTED_PORT_CONFIG:#x}")
        if msg.mask:
            self.dp.set_port_config(msg.port_no, msg.config & msg.mask, msg.mask)
        # advertise: nothing to negotiate on these ports; ignored as OVS does.
        self.agent.port_changed(msg.port_no)

    def _table_mod(self, msg, raw):
        if msg.table_id != C.OFPTT_ALL and msg.table_id >= self.agent.n_tables:
            raise OFPError(C.OFPET_TABLE_MOD_FAILED, C.OFPTMFC_BAD_TABLE,
                           reason=f"table {msg.table_id}")
        if msg.config & ~C.OFPTC_DEPRECATED_MASK:
            raise OFPError(C.OFPET_TABLE_MOD_FAILED, C.OFPTMFC_BAD_CONFIG,
                           reason=f"config {msg.config:#x}")
        # OFPTC_DEPRECATED_MASK bits mean nothing in 1.3: accepted, no effect.

    def _queue_get_config(self, msg, raw):
        if msg.port != C.OFPP_ANY and msg.port not in self.agent._ports():
            raise OFPError(C.OFPET_QUEUE_OP_FAILED, C.OFPQOFC_BAD_PORT,
                           reason=f"no port {msg.port}")
        self.send_msg(MSG.QueueGetConfigReply(msg.xid, msg.port, ()))

    # -- groups, meters
    def _group_mod(self, msg, raw):
        g = msg.spec
        dp = self.dp
        if msg.command == C.OFPGC_DELETE:
            removed = dp.group_delete(g.group_id) or []
            self.agent.flows_removed([(st, C.OFPRR_GROUP_DELETE) for st in removed])
            return
        for b in g.buckets:
            _check_actions(b.actions)
        if msg.command == C.OFPGC_ADD:
            dp.group_add(g)
        else:
            dp.group_modify(g)

    def _meter_mod(self, msg, raw):
        m = msg.spec
        dp = self.dp
        if msg.command == C.OFPMC_DELETE:
            removed = dp.meter_delete(m.meter_id) or []
            self.agent.flows_removed([(st, C.OFPRR_DELETE) for st in removed])
            return
        for b in m.bands:
            if isinstance(b, ExperimenterBand):
                raise OFPError(C.OFPET_METER_MOD_FAILED, C.OFPMMFC_BAD_BAND,
                               reason="experimenter band")
        if msg.command == C.OFPMC_ADD:
            dp.meter_add(m)
        else:
            dp.meter_modify(m)

    # -- multipart
    def _multipart(self, msg, raw):
        fn = self._MP.get(msg.type)
        if fn is None:
            if msg.type == C.OFPMP_EXPERIMENTER:
                raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_EXPERIMENTER,
                               reason="experimenter multipart")
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_MULTIPART,
                           reason=f"multipart type {msg.type}")
        body = fn(self, msg)
        if body is None:
            return
        if isinstance(body, list) and body and isinstance(body[0], (bytes, bytearray)):
            for part in body:            # already encoded (table features)
                self.send(part)
            return
        for part in MSG.encode_multipart_reply(msg.xid, msg.type, body):
            self.send(part)

    def _mp_desc(self, msg):
        return MP.Desc("vdp project", "vdp userspace datapath (AF_PACKET/TAP, Cython/C)",
                       SW_VERSION, "None", self.agent.name)

    def _check_table(self, table_id):
        if table_id != C.OFPTT_ALL and table_id >= self.agent.n_tables:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_TABLE_ID, reason=f"table {table_id}")

    def _select_flows(self, req):
        self._check_table(req.table_id)
        if opaque_fields(req.match):
            raise OFPError(C.OFPET_BAD_MATCH, C.OFPBMC_BAD_FIELD, reason="non-basic OXM")
        return self.dp.flows(table_id=req.table_id,
                             match=req.match if req.match.fields else None,
                             out_port=req.out_port, out_group=req.out_group,
                             cookie=req.cookie, cookie_mask=req.cookie_mask)

    def _mp_flow(self, msg):
        return list(self._select_flows(msg.body))

    def _mp_aggregate(self, msg):
        flows = self._select_flows(msg.body)
        return MP.AggregateStats(sum(f.packet_count for f in flows),
                                 sum(f.byte_count for f in flows), len(flows))

    def _mp_table(self, msg):
        return [MP.TableStats(t["table_id"], t["active_count"], t["lookup_count"],
                              t["matched_count"]) for t in self.dp.table_stats()]

    def _mp_port_stats(self, msg):
        port_no = msg.body.port_no
        ports = self.agent._ports()
        if port_no != C.OFPP_ANY and port_no not in ports:
            raise OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_PORT, reason=f"no port {port_no}")
        stats = self.dp.port_stats()
        now = self.agent._now_ns()
        out = []
        for n in sorted(ports):
            if port_no != C.OFPP_ANY and n != port_no:
                continue
            s = stats.get(n, {})
            sec, nsec = _sec_nsec(now - self.agent._port_since.setdefault(n, now))
            out.append(MP.PortStats(n, s.get("rx_packets", 0), s.get("tx_packets", 0),
                                    s.get("rx_bytes", 0), s.get("tx_bytes", 0),
                                    s.get("rx_dropped", 0), s.get("tx_dropped", 0),
                                    s.get("rx_errors", 0), s.get("tx_errors", 0),
                                    s.get("rx_malformed", 0), 0, 0, 0, sec, nsec))
        return out

    def _mp_port_desc(self, msg):
        ports = self.agent._ports()
        return [self.agent.port_desc(n, ports[n]) for n in sorted(ports)]

    def _mp_queue(self, msg):
        req = msg.body
        if req.port_no != C.OFPP_ANY and req.port_no not in self.agent._ports():
            raise OFPError(C.OFPET_QUEUE_OP_FAILED, C.OFPQOFC_BAD_PORT,
                           reason=f"no port {req.port_no}")
        if req.queue_id != C.OFPQ_ALL:
            raise OFPError(C.OFPET_QUEUE_OP_FAILED, C.OFPQOFC_BAD_QUEUE,
                           reason=f"no queue {req.queue_id}")
        return []                        # no queues on these ports

    def _mp_group(self, msg):
        gid = msg.body.group_id
        out = []
        for g, st in self.dp.groups():
            if gid != C.OFPG_ALL and g.group_id != gid:
                continue
            sec, nsec = _sec_nsec(st.get("duration_ns", 0))
            out.append(MP.GroupStats(g.group_id, st.get("ref_count", 0), st.get("packet_count", 0),
                                     st.get("byte_count", 0), sec, nsec,
                                     tuple((b.get("packet_count", 0), b.get("byte_count", 0))
                                           for b in st.get("bucket_stats", ()))))
        return out

    def _mp_group_desc(self, msg):
        return [g for g, _ in self.dp.groups()]

    def _mp_group_features(self, msg):
        types = (1 << C.OFPGT_ALL) | (1 << C.OFPGT_SELECT) | (1 << C.OFPGT_INDIRECT) | \
            (1 << C.OFPGT_FF)
        caps = C.OFPGFC_SELECT_WEIGHT | C.OFPGFC_SELECT_LIVENESS | C.OFPGFC_CHAINING
        return MP.GroupFeatures(types, caps, (C.OFPG_MAX,) * 4, (_ACTION_BITMAP,) * 4)

    def _mp_meter_entries(self, msg):
        mid = msg.body.meter_id
        return [(m, st) for m, st in self.dp.meters() if mid == C.OFPM_ALL or m.meter_id == mid]

    def _mp_meter(self, msg):
        out = []
        for m, st in self._mp_meter_entries(msg):
            sec, nsec = _sec_nsec(st.get("duration_ns", 0))
            out.append(MP.MeterStats(m.meter_id, st.get("flow_count", 0),
                                     st.get("packet_in_count", 0), st.get("byte_in_count", 0),
                                     sec, nsec,
                                     tuple((b.get("packet_band_count", 0),
                                            b.get("byte_band_count", 0))
                                           for b in st.get("band_stats", ()))))
        return out

    def _mp_meter_config(self, msg):
        return [m for m, _ in self._mp_meter_entries(msg)]

    def _mp_meter_features(self, msg):
        return MP.MeterFeatures(C.OFPM_MAX, (1 << C.OFPMBT_DROP) | (1 << C.OFPMBT_DSCP_REMARK),
                                C.OFPMF_KBPS | C.OFPMF_PKTPS | C.OFPMF_BURST | C.OFPMF_STATS,
                                16, 0)

    def _mp_table_features(self, msg):
        if msg.body:
            raise OFPError(C.OFPET_TABLE_FEATURES_FAILED, C.OFPTFFC_EPERM,
                           reason="table capabilities are fixed")
        return self.agent.table_features_reply(msg.xid)

    _MP = {
        C.OFPMP_DESC: _mp_desc,
        C.OFPMP_FLOW: _mp_flow,
        C.OFPMP_AGGREGATE: _mp_aggregate,
        C.OFPMP_TABLE: _mp_table,
        C.OFPMP_PORT_STATS: _mp_port_stats,
        C.OFPMP_QUEUE: _mp_queue,
        C.OFPMP_GROUP: _mp_group,
        C.OFPMP_GROUP_DESC: _mp_group_desc,
        C.OFPMP_GROUP_FEATURES: _mp_group_features,
        C.OFPMP_METER: _mp_meter,
        C.OFPMP_METER_CONFIG: _mp_meter_config,
        C.OFPMP_METER_FEATURES: _mp_meter_features,
        C.OFPMP_TABLE_FEATURES: _mp_table_features,
        C.OFPMP_PORT_DESC: _mp_port_desc,
    }

    _HANDLERS = {
        MSG.EchoRequest: _echo_request,
        MSG.EchoReply: _echo_reply,
        MSG.ErrorMsg: _error,
        MSG.Experimenter: _experimenter,
        MSG.FeaturesRequest: _features,
        MSG.GetConfigRequest: _get_config,
        MSG.SetConfig: _set_config,
        MSG.PacketOut: _packet_out,
        MSG.FlowMod: _flow_mod,
        MSG.GroupMod: _group_mod,
        MSG.PortMod: _port_mod,
        MSG.TableMod: _table_mod,
        MSG.MultipartRequest: _multipart,
        MSG.BarrierRequest: _barrier,
        MSG.QueueGetConfigRequest: _queue_get_config,
        MSG.RoleRequest: _role,
        MSG.GetAsyncRequest: _get_async,
        MSG.SetAsync: _set_async,
        MSG.MeterMod: _meter_mod,
    }
