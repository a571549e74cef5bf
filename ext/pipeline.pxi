# pipeline.pxi - class Datapath: the facade over pipeline.c (tables, flows,
# groups, meters, ports, upcalls, NORMAL), plus the C-level loops the unit
# tests, fuzz tests and benchmarks drive (dummy ports, no engine).
#
# Included by ext/_fastpath.pyx after actions.pxi (uses key_set_field from
# parse.pxi, for values and masks, and compile_action from actions.pxi).
# datapath/fastpath.py subclasses Datapath (start/stop/poll_once) and binds
# the model classes with bind_model(datapath.model): ext/ imports nothing of
# ours, so FlowStats/FlowSpec/Match/GroupSpec/... are built through that.
#
# Every method takes dp->lock (without the GIL) for as long as it touches C
# state, so it is safe beside a running engine thread.
#
# Python-side memory: each C flow entry holds references (vdp_flow.user) to
# its match and the instructions tuple flow_add was given, so flows()
# returns the match in the order it was given.  The match is kept as the
# OXM bytes when it came from the OpenFlow decoder as such (oxm.WireMatch:
# one small object the cyclic GC never walks, turned back into a Match by
# flows()), else as the Match object given (no copy: do not mutate a Match
# after handing it to flow_add).  Instructions tuples are shared between
# flows by the decoder, and flow_add reuses what it compiled for one
# (_PlInsnTpl).
import collections as _pl_collections
import zlib as _pl_zlib
from libc.stdlib cimport malloc, calloc, free, realloc
from libc.string cimport memcpy, memset
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.ref cimport Py_INCREF, Py_XDECREF, PyObject

cdef extern from "vdp_types.h" nogil:
    enum:
        _PL_OP_OUTPUT "VDP_OP_OUTPUT"
        _PL_OP_GROUP "VDP_OP_GROUP"
        _PL_OP_METER "VDP_OP_METER"

# group.h / meter.h / actions.h / csum.h are declared by actions.pxi.

cdef extern from "normal.h" nogil:
    ctypedef struct vdp_normal:
        pass
    void vdp_normal_set_aging(vdp_normal *n, uint32_t aging_s)
    uint32_t vdp_normal_aging(const vdp_normal *n)
    uint32_t vdp_normal_max(const vdp_normal *n)
    int vdp_normal_learn(vdp_normal *n, uint16_t vlan, const uint8_t *mac, uint32_t port, uint64_t now_ns)
    uint32_t vdp_normal_lookup(vdp_normal *n, uint16_t vlan, const uint8_t *mac, uint64_t now_ns)
    void vdp_normal_flush(vdp_normal *n)
    uint32_t vdp_normal_expire(vdp_normal *n, uint64_t now_ns)
    uint32_t vdp_normal_count(const vdp_normal *n)
    uint64_t vdp_normal_evictions(const vdp_normal *n)
    int vdp_normal_next(vdp_normal *n, uint32_t *cursor, uint16_t *vlan, uint8_t *mac,
                        uint32_t *port, uint64_t *seen_ns)
    vdp_normal *vdp_normal_new(uint32_t max_entries, uint32_t aging_s)
    void vdp_normal_free(vdp_normal *n)

cdef extern from "pipeline.h" nogil:
    enum: VDP_NO_TABLE
    enum: VDP_FAIL_OFF
    enum: VDP_FAIL_MISS_NORMAL
    enum: VDP_FAIL_OPEN
    enum: VDP_INSN_METER
    enum: VDP_INSN_APPLY
    enum: VDP_INSN_CLEAR
    enum: VDP_INSN_WRITE
    enum: VDP_INSN_WRITE_MD
    enum: VDP_INSN_GOTO
    enum: VDP_FF_TABLE_MISS
    enum: VDP_UPCALL_SLOTS
    ctypedef struct vdp_flow:
        vdp_cls_rule rule
        vdp_flow *prev
        vdp_flow *next
        uint64_t cookie
        uint64_t packets
        uint64_t bytes
        uint64_t install_ns
        uint64_t used_ns
        uint64_t md_value
        uint64_t md_mask
        vdp_prog *apply
        vdp_prog *write
        void *user[2]
        uint32_t meter_id
        uint16_t idle_timeout
        uint16_t hard_timeout
        uint16_t flags
        uint8_t table_id
        uint8_t goto_table
        uint8_t insn
    ctypedef struct vdp_table:
        vdp_cls *cls
        uint64_t lookup
        uint64_t matched
        uint32_t active
    ctypedef struct vdp_upcall:
        uint8_t *data
        uint32_t len
        uint32_t total_len
        uint32_t in_port
        uint8_t reason
        uint8_t table_id
        uint16_t max_len
        uint64_t cookie
        uint64_t metadata
    ctypedef struct vdp_dp_stats:
        uint64_t rx, malformed, rx_dropped, forwarded, upcalled, dropped
        uint64_t hits, misses, nocache, upcall_lost, invalid_ttl, prog_too_long
    # the full view of struct vdp_dp (cdefs.pxi declares it opaque)
    ctypedef struct _pl_dp "vdp_dp":
        uint64_t generation
        uint32_t n_tables
        vdp_table *tables
        vdp_flow *flows_head
        uint32_t n_flows
        vdp_normal *normal
        void *groups
        void *meters
        vdp_emc *emc
        uint32_t uc_count
        int uc_fd
        uint8_t fail_standalone
        uint8_t ttl_to_controller
        vdp_dp_stats stats

    vdp_dp *vdp_dp_new(uint32_t n_tables)
    void vdp_dp_free(vdp_dp *dp)
    uint64_t vdp_dp_now_ns()
    void vdp_dp_bump(vdp_dp *dp)
    int vdp_dp_trylock(vdp_dp *dp)
    int vdp_dp_attach(vdp_dp *dp, uint32_t ofport, vdp_port *port, int offload_ok)
    vdp_port *vdp_dp_detach(vdp_dp *dp, uint32_t ofport)
    int vdp_dp_set_offload(vdp_dp *dp, uint32_t ofport, int offload_ok)
    int vdp_dp_set_link(vdp_dp *dp, uint32_t ofport, int up)
    int vdp_dp_set_config(vdp_dp *dp, uint32_t ofport, uint32_t config, uint32_t mask)
    int vdp_dp_port_live(vdp_dp *dp, uint32_t ofport)
    vdp_flow *vdp_flow_new()
    void vdp_flow_free(vdp_flow *f)
    int vdp_dp_flow_insert(vdp_dp *dp, vdp_flow *f, const vdp_key *mask, vdp_flow **replaced)
    void vdp_dp_flow_remove(vdp_dp *dp, vdp_flow *f)
    const vdp_key *vdp_flow_mask(const vdp_flow *f)
    int vdp_dp_flow_overlaps(vdp_dp *dp, const vdp_flow *f, const vdp_key *mask)
    int vdp_flow_has_group(const vdp_flow *f, uint32_t group)
    int vdp_dp_expire(vdp_dp *dp, uint64_t now_ns, vdp_flow **out, uint8_t *reasons, int max)
    int vdp_dp_select(vdp_dp *dp, uint8_t table_id, const vdp_key *v, const vdp_key *m,
                      int strict, int priority, uint32_t out_port, uint32_t out_group,
                      uint64_t cookie, uint64_t cookie_mask, vdp_flow **out, int max)
    void vdp_dp_process_one(vdp_dp *dp, vdp_pkt *pkt, uint64_t now_ns)
    int vdp_dp_packet_out(vdp_dp *dp, const uint8_t *data, uint32_t len,
                          uint32_t in_port, const vdp_prog *prog, uint64_t now_ns)
    int vdp_dp_upcall_peek(vdp_dp *dp, vdp_upcall **out)
    void vdp_dp_upcall_pop(vdp_dp *dp)
    void vdp_dp_upcall_signal(vdp_dp *dp)
    vdp_group *vdp_dp_group(vdp_dp *dp, uint32_t group_id)
    vdp_meter *vdp_dp_meter(vdp_dp *dp, uint32_t meter_id)
    int vdp_dp_group_add(vdp_dp *dp, vdp_group *g)
    vdp_group *vdp_dp_group_modify(vdp_dp *dp, vdp_group *g)
    int vdp_dp_group_delete(vdp_dp *dp, uint32_t group_id)
    size_t vdp_dp_group_list(vdp_dp *dp, vdp_group **out, size_t max)
    int vdp_dp_group_chain_loops(vdp_dp *dp, uint32_t group_id)

    const vdp_port_ops vdp_dummy_ops
    vdp_port *vdp_dummy_new()
    void vdp_dummy_free(vdp_port *p)
    void vdp_dummy_close(vdp_port *p)
    int vdp_dummy_is(const vdp_port *p)
    int vdp_dummy_inject(vdp_port *p, const uint8_t *data, uint32_t len, int csum_partial)
    uint64_t vdp_dummy_rx_pending(vdp_port *p)
    void *vdp_dummy_tx_pop(vdp_port *p, const uint8_t **data, uint32_t *len, int *csum_partial)
    void vdp_dummy_frame_free(void *frame)
    void vdp_dummy_set_sink(vdp_port *p, int sink)
    void vdp_dummy_set_tx_limit(vdp_port *p, uint64_t n)
    uint64_t vdp_dummy_tx_count(vdp_port *p)
    int vdp_dummy_set_replay(vdp_port *p, const uint8_t *data, uint32_t len, uint64_t count)
    int vdp_dp_poll_ports(vdp_dp *dp, vdp_port **ports, int n_ports, vdp_pkt *pkts, uint64_t now_ns)
    int vdp_dp_meter_add(vdp_dp *dp, vdp_meter *m)
    int vdp_dp_meter_delete(vdp_dp *dp, uint32_t meter_id)

# ------------------------------------------------------------ constants
# ofp_error_type / codes (OpenFlow 1.3.5) used by FlowError.
OFPET_BAD_REQUEST = 1
OFPET_BAD_ACTION = 2
OFPET_BAD_INSTRUCTION = 3
OFPET_BAD_MATCH = 4
OFPET_FLOW_MOD_FAILED = 5
OFPET_GROUP_MOD_FAILED = 6
OFPET_PORT_MOD_FAILED = 7
OFPET_METER_MOD_FAILED = 12
OFPBAC_BAD_TYPE = 0
OFPBAC_BAD_OUT_PORT = 4
OFPBAC_BAD_ARGUMENT = 5
OFPBAC_BAD_OUT_GROUP = 9
OFPBAC_BAD_SET_TYPE = 13
OFPBAC_BAD_SET_ARGUMENT = 15
OFPBIC_UNKNOWN_INST = 0
OFPBIC_UNSUP_INST = 1
OFPBIC_BAD_TABLE_ID = 2
OFPBMC_BAD_FIELD = 6
OFPBMC_BAD_VALUE = 7
OFPBMC_BAD_MASK = 8
OFPBMC_BAD_PREREQ = 9
OFPBMC_DUP_FIELD = 10
OFPFMFC_UNKNOWN = 0
OFPFMFC_TABLE_FULL = 1
OFPFMFC_BAD_TABLE_ID = 2
OFPFMFC_OVERLAP = 3
OFPFMFC_BAD_TIMEOUT = 5
OFPFMFC_BAD_COMMAND = 6
OFPGMFC_GROUP_EXISTS = 0
OFPGMFC_INVALID_GROUP = 1
OFPGMFC_WEIGHT_UNSUPPORTED = 2
OFPGMFC_OUT_OF_GROUPS = 3
OFPGMFC_LOOP = 7
OFPGMFC_UNKNOWN_GROUP = 8
OFPGMFC_BAD_TYPE = 10
OFPGMFC_BAD_BUCKET = 12
OFPGMFC_BAD_WATCH = 13
OFPPMFC_BAD_PORT = 0
OFPMMFC_UNKNOWN = 0
OFPMMFC_METER_EXISTS = 1
OFPMMFC_INVALID_METER = 2
OFPMMFC_UNKNOWN_METER = 3
OFPMMFC_BAD_FLAGS = 5
OFPMMFC_BAD_RATE = 6
OFPMMFC_BAD_BAND = 8

# Flow-removed reasons returned by expire() and the delete paths.
OFPRR_IDLE_TIMEOUT = 0
OFPRR_HARD_TIMEOUT = 1
OFPRR_DELETE = 2
OFPRR_GROUP_DELETE = 3
OFPRR_METER_DELETE = 4

cdef uint32_t _PL_OFPP_MAX = 0xffffff00
cdef uint32_t _PL_OFPP_IN_PORT = 0xfffffff8
cdef uint32_t _PL_OFPP_TABLE = 0xfffffff9
cdef uint32_t _PL_OFPP_NORMAL = 0xfffffffa
cdef uint32_t _PL_OFPP_FLOOD = 0xfffffffb
cdef uint32_t _PL_OFPP_ALL = 0xfffffffc
cdef uint32_t _PL_OFPP_CONTROLLER = 0xfffffffd
cdef uint32_t _PL_OFPP_LOCAL = 0xfffffffe
cdef uint32_t _PL_OFPP_ANY = 0xffffffff
cdef uint32_t _PL_OFPG_MAX = 0xffffff00
cdef uint32_t _PL_OFPG_ANY = 0xffffffff


class FlowError(Exception):
    """A refused flow/group/meter/port change, with the OpenFlow error
    type and code (ofp_error_type, per-type code) the agent would send."""

    def __init__(self, type, code, message=""):
        super().__init__(type, code, message)
        self.type = type
        self.code = code
        self.message = message

    def __str__(self):
        return f"{self.message} (OpenFlow error type {self.type} code {self.code})"


Upcall = _pl_collections.namedtuple(
    "Upcall", "data in_port reason table_id cookie metadata total_len max_len",
    defaults=(0xffff,))
Upcall.__doc__ = ("A frame queued for the controller: the whole frame (data, "
                  "total_len = its length; max_len truncation is the agent's), "
                  "in_port, reason (0 no match, 1 action, 2 invalid ttl), "
                  "table_id, cookie (0xffffffffffffffff when not from a flow), metadata, "
                  "max_len (the CONTROLLER output's max_len; 0xffff = OFPCML_NO_BUFFER).")

# The model module (datapath/model.py), bound by datapath/fastpath.py.
_pl_model = None


def bind_model(module):
    """Give ext the model classes (FlowSpec, FlowStats, Match, GroupSpec,
    Bucket, MeterSpec, Band) it returns; datapath/fastpath.py calls this."""
    global _pl_model
    _pl_model = module


cdef object _pl_m():
    if _pl_model is None:
        raise RuntimeError("ext._fastpath: bind_model(datapath.model) first "
                           "(datapath/fastpath.py does it)")
    return _pl_model


# model action class -> 1 Output, 2 Group, 0 other (by class name: no import)
cdef dict _PL_KIND = {}


cdef inline int _pl_kind(object a):
    cls = type(a)
    k = _PL_KIND.get(cls)
    if k is None:
        n = cls.__name__
        k = 1 if n == "Output" else 2 if n == "Group" else 0
        _PL_KIND[cls] = k
    return k


cdef dict _PL_INSN_BIT = {"GotoTable": 1, "WriteMetadata": 2, "ApplyActions": 4,
                         "WriteActions": 8, "ClearActions": 16, "Meter": 32}

# field name -> VDP_F_* id, from the C field table
cdef dict _PL_FIELD_ID = {}
for _pl_i in range(VDP_F_COUNT):
    _PL_FIELD_ID[vdp_fields[_pl_i].name.decode()] = _pl_i

# OpenFlow 1.3 match prerequisites (7.2.3.8), checked with C ints: et /
# proto / icmp6 are the exact eth_type / ip_proto / icmpv6_type of the match
# (-1 when absent or masked).
cdef inline bint _pl_is_ip(int et) noexcept:
    return et == 0x0800 or et == 0x86dd


cdef bint _pl_prereq_ok(int fid, int et, int proto, int icmp6, bint vlan_tagged,
                        bint has_in_port) noexcept:
    if fid == 1:                                  # in_phy_port
        return has_in_port
    if fid == 7:                                  # vlan_pcp
        return vlan_tagged
    if fid == 8 or fid == 9 or fid == 10:         # ip_dscp, ip_ecn, ip_proto
        return _pl_is_ip(et)
    if fid == 11 or fid == 12:                    # ipv4_src/dst
        return et == 0x0800
    if fid == 13 or fid == 14:                    # tcp
        return _pl_is_ip(et) and proto == 6
    if fid == 15 or fid == 16:                    # udp
        return _pl_is_ip(et) and proto == 17
    if fid == 17 or fid == 18:                    # sctp
        return _pl_is_ip(et) and proto == 132
    if fid == 19 or fid == 20:                    # icmpv4
        return et == 0x0800 and proto == 1
    if 21 <= fid <= 25:                           # arp_*
        return et == 0x0806
    if fid == 26 or fid == 27 or fid == 28 or fid == 39:   # ipv6_*, ipv6_exthdr
        return et == 0x86dd
    if fid == 29 or fid == 30:                    # icmpv6
        return et == 0x86dd and proto == 58
    if fid == 31:                                 # nd_target
        return et == 0x86dd and proto == 58 and (icmp6 == 135 or icmp6 == 136)
    if fid == 32:                                 # nd_sll
        return et == 0x86dd and proto == 58 and icmp6 == 135
    if fid == 33:                                 # nd_tll
        return et == 0x86dd and proto == 58 and icmp6 == 136
    if 34 <= fid <= 36:                           # mpls_*
        return et == 0x8847 or et == 0x8848
    if fid == 37:                                 # pbb_isid
        return et == 0x88e7
    return True


cdef dict _pl_match_fields(object match):
    if match is None:
        return {}
    if isinstance(match, dict):
        return match
    return match.fields


cdef int _pl_match_to_key(object match, vdp_key *v, vdp_key *m, bint check) except -1:
    """Model Match (or dict name -> (value, mask)) -> value/mask keys.
    check: enforce OpenFlow prerequisites (flow-mods, not filters)."""
    cdef dict fields = _pl_match_fields(match)
    cdef int i, fid, et = -1, proto = -1, icmp6 = -1
    cdef uint64_t seen = 0
    cdef bint tagged = False
    memset(v, 0, sizeof(vdp_key))
    memset(m, 0, sizeof(vdp_key))
    for name, vm in fields.items():
        fid = _PL_FIELD_ID.get(name, -1)
        if fid < 0:
            raise FlowError(OFPET_BAD_MATCH, OFPBMC_BAD_FIELD, f"unknown match field {name!r}")
        value, mask = vm
        # masks are stored with key_set_field (same storage format): the
        # mask rules (maskable, width) are checked here
        full = (<object>1 << vdp_fields[fid].nbits) - 1
        exact = mask is None
        if exact:
            mask = full
        elif not isinstance(mask, int) or mask < 0 or mask > full:
            raise FlowError(OFPET_BAD_MATCH, OFPBMC_BAD_MASK, f"{name}: bad mask {mask!r}")
        elif mask != full and not vdp_fields[fid].maskable:
            raise FlowError(OFPET_BAD_MATCH, OFPBMC_BAD_MASK, f"field {name} cannot be masked")
        key_set_field(m, fid, mask)
        try:
            key_set_field(v, fid, value)
        except (ValueError, TypeError, AttributeError, OverflowError) as e:
            raise FlowError(OFPET_BAD_MATCH, OFPBMC_BAD_VALUE, f"{name}: {e}")
        if fid == 6:
            tagged = (value & mask & 0x1000) != 0
        seen |= (<uint64_t>1) << fid
        if exact or mask == full:
            if fid == 5:
                et = value
            elif fid == 10:
                proto = value
            elif fid == 29:
                icmp6 = value
    if check:
        for fid in range(VDP_F_COUNT):
            if (seen >> fid) & 1 and not _pl_prereq_ok(fid, et, proto, icmp6, tagged,
                                                      seen & 1):
                raise FlowError(OFPET_BAD_MATCH, OFPBMC_BAD_PREREQ,
                                f"match field {vdp_fields[fid].name.decode()} lacks its prerequisite")
    for i in range(VDP_KEY_WORDS):
        v.w[i] &= m.w[i]
    return 0


# ---- OpenFlow-basic OXM TLVs <-> key/mask, without Python ints ------------
# The flow-mod fast path (see datapath/ofp/oxm.py WireMatch): a decoded
# FLOW_MOD's match arrives as its raw OXM TLVs, already accepted by
# oxm_check() below at decode time.  flow_add converts those bytes straight
# into the value/mask keys and keeps the bytes (one small object that the
# cyclic GC never walks) as the flow's match; flows() turns them back into
# a Match with _pl_oxm_fields().  Anything unusual (another OXM class, an
# unknown field, a bad length, a duplicate, a value outside its width or
# mask, an unmet prerequisite) makes _pl_oxm_to_key() answer -1, and the
# caller takes the general path, which raises the precise error.
cdef uint8_t _PL_OXM_SIZE[64]      # field id -> value bytes on the wire; 0: no fast path
memset(_PL_OXM_SIZE, 0, sizeof(_PL_OXM_SIZE))
for _pl_i in range(VDP_F_COUNT):
    _pl_sz = (vdp_fields[_pl_i].nbits + 7) // 8
    if vdp_fields[_pl_i].name == b"ipv6_flabel" or vdp_fields[_pl_i].name == b"mpls_label":
        _pl_sz = 4                 # 20 bits in 4 bytes (oxm.FIELD_INFO)
    if vdp_fields[_pl_i].is_bytes and vdp_fields[_pl_i].size != _pl_sz:
        _pl_sz = 0
    if not vdp_fields[_pl_i].is_bytes and (vdp_fields[_pl_i].size > 8 or _pl_sz > 8):
        _pl_sz = 0
    _PL_OXM_SIZE[_pl_i] = _pl_sz

# field id -> model name (dict keys of decoded matches)
cdef list _PL_FIELD_NAME = [vdp_fields[_pl_i].name.decode() for _pl_i in range(VDP_F_COUNT)]


cdef inline uint64_t _pl_be(const uint8_t *p, int n) noexcept nogil:
    cdef uint64_t x = 0
    cdef int i
    for i in range(n):
        x = (x << 8) | p[i]
    return x


cdef inline void _pl_put(vdp_key *k, const vdp_field_info *fi, uint64_t x) noexcept nogil:
    cdef uint8_t *dst = (<uint8_t *>k) + fi.offset
    if fi.size == 1:
        (<uint8_t *>dst)[0] = <uint8_t>x
    elif fi.size == 2:
        (<uint16_t *>dst)[0] = <uint16_t>x
    elif fi.size == 4:
        (<uint32_t *>dst)[0] = <uint32_t>x
    else:
        (<uint64_t *>dst)[0] = x


cdef int _pl_oxm_to_key(const uint8_t *p, Py_ssize_t n, vdp_key *v, vdp_key *m,
                        bint check) noexcept:
    """OXM TLVs p[0:n] -> value/mask keys (value masked).  0 when every TLV
    is a well-formed OpenFlow-basic field that oxm.decode_oxm_fields() and
    _check_value() accept, no field repeats and (check) the prerequisites
    hold with exact values, as oxm.check_prerequisites() wants; -1
    otherwise (v/m are then garbage)."""
    cdef Py_ssize_t off = 0
    cdef uint32_t h, fid, hasmask, length, size
    cdef uint64_t seen = 0, val, mk, full
    cdef int et = -1, proto = -1, icmp6 = -1, i
    cdef bint tagged = False
    cdef const vdp_field_info *fi
    cdef const uint8_t *q
    memset(v, 0, sizeof(vdp_key))
    memset(m, 0, sizeof(vdp_key))
    while off < n:
        if n - off < 4:
            return -1
        h = <uint32_t>_pl_be(p + off, 4)
        if (h >> 16) != 0x8000:                      # OFPXMC_OPENFLOW_BASIC only
            return -1
        fid = (h >> 9) & 0x7f
        hasmask = (h >> 8) & 1
        length = h & 0xff
        if fid >= VDP_F_COUNT or (seen >> fid) & 1:
            return -1
        size = _PL_OXM_SIZE[fid]
        if size == 0 or length != (size * 2 if hasmask else size) or off + 4 + length > n:
            return -1
        fi = &vdp_fields[fid]
        if hasmask and not fi.maskable:
            return -1
        q = p + off + 4
        if fi.is_bytes:                              # MACs, IPv6: full-width bytes
            memcpy((<uint8_t *>v) + fi.offset, q, size)
            if hasmask:
                for i in range(<int>size):
                    if q[i] & ~q[size + i]:
                        return -1                    # value bits outside the mask
                memcpy((<uint8_t *>m) + fi.offset, q + size, size)
            else:
                memset((<uint8_t *>m) + fi.offset, 0xff, size)
        else:
            full = 0xffffffffffffffff if fi.nbits >= 64 else ((<uint64_t>1) << fi.nbits) - 1
            val = _pl_be(q, size)
            if val & ~full:
                return -1
            if hasmask:
                mk = _pl_be(q + size, size)
                if (mk & ~full) or (val & ~mk):
                    return -1
            else:
                mk = full
                if fid == 5:
                    et = <int>val
                elif fid == 10:
                    proto = <int>val
                elif fid == 29:
                    icmp6 = <int>val
            if fid == 6:                             # vlan_vid (see oxm._check_value)
                if (mk & 0x1000) and not (val & 0x1000) and (val & 0x0fff):
                    return -1
                tagged = (val & mk & 0x1000) != 0
            _pl_put(v, fi, val)
            _pl_put(m, fi, mk)
        seen |= (<uint64_t>1) << fid
        off += 4 + length
    if check:
        for i in range(VDP_F_COUNT):
            if (seen >> i) & 1 and not _pl_prereq_ok(i, et, proto, icmp6, tagged, seen & 1):
                return -1
    v.present |= seen
    m.present |= seen
    for i in range(VDP_KEY_WORDS):
        v.w[i] &= m.w[i]
    return 0


def oxm_check(bytes oxm):
    """True when the OXM TLVs `oxm` (an ofp_match's fields, no header or
    padding) are OpenFlow-basic fields that decode and check cleanly
    (values, masks, prerequisites) and that flow_add can take as they are:
    the decoder's fast path (datapath/ofp/oxm.py decode_flow_match)."""
    cdef vdp_key v, m
    return _pl_oxm_to_key(<const uint8_t *>oxm, len(oxm), &v, &m, True) == 0


cdef dict _pl_oxm_fields(bytes oxm):
    """Stored OXM TLVs (accepted by _pl_oxm_to_key) -> {name: (value, mask
    or None)} in wire order, as oxm.decode_oxm_fields() gives them."""
    cdef const uint8_t *p = <const uint8_t *>oxm
    cdef Py_ssize_t off = 0, n = len(oxm)
    cdef uint32_t h, fid, size
    cdef dict out = {}
    while off + 4 <= n:
        h = <uint32_t>_pl_be(p + off, 4)
        fid = (h >> 9) & 0x7f
        size = _PL_OXM_SIZE[fid]
        if vdp_fields[fid].is_bytes:
            value = int.from_bytes(oxm[off + 4:off + 4 + size], "big")
            mask = int.from_bytes(oxm[off + 4 + size:off + 4 + 2 * size], "big") \
                if (h >> 8) & 1 else None
        else:
            value = _pl_be(p + off + 4, size)
            mask = _pl_be(p + off + 4 + size, size) if (h >> 8) & 1 else None
        out[_PL_FIELD_NAME[fid]] = (value, mask)
        off += 4 + (h & 0xff)
    return out


def oxm_fields(bytes oxm):
    """_pl_oxm_fields for tests."""
    return _pl_oxm_fields(oxm)


def oxm_key_words(bytes oxm, bint check=True):
    """Test hook: (value words, mask words) from _pl_oxm_to_key, None when
    it refuses the TLVs."""
    cdef vdp_key v, m
    if _pl_oxm_to_key(<const uint8_t *>oxm, len(oxm), &v, &m, check) != 0:
        return None
    return [v.w[i] for i in range(VDP_KEY_WORDS)], [m.w[i] for i in range(VDP_KEY_WORDS)]


def match_key_words(match, bint check=True):
    """Test hook: (value words, mask words) from the general conversion
    (_pl_match_to_key) of a Match or {name: (value, mask)}."""
    cdef vdp_key v, m
    _pl_match_to_key(match, &v, &m, check)
    return [v.w[i] for i in range(VDP_KEY_WORDS)], [m.w[i] for i in range(VDP_KEY_WORDS)]


# The lazily decoded Match class of the flow-mod decoder (oxm.WireMatch),
# bound by datapath/fastpath.py: its .oxm holds the TLVs (None once its
# fields have been materialised: then it is an ordinary Match).
_pl_wire_match = None


def bind_wire_match(cls):
    global _pl_wire_match
    _pl_wire_match = cls


cdef inline object _pl_wire_oxm(object match):
    """The OXM bytes of a WireMatch whose fields were never materialised,
    else None."""
    if match is None or type(match) is not _pl_wire_match:
        return None
    oxm = match.oxm
    return oxm if type(oxm) is bytes else None


cdef inline int _pl_any_key(object match, vdp_key *v, vdp_key *m, bint check) except -1:
    """_pl_match_to_key, straight from the wire bytes when it can."""
    oxm = _pl_wire_oxm(match)
    if oxm is not None and _pl_oxm_to_key(<const uint8_t *><bytes>oxm, len(<bytes>oxm),
                                          v, m, check) == 0:
        return 0
    return _pl_match_to_key(match, v, m, check)


# ---- compiled instructions, per identical instructions tuple ---------------
# The decoder hands out one tuple object per distinct instruction bytes
# (datapath/ofp/actions.py caches them), so flows added with the same
# instructions share it.  What _build_flow makes of such a tuple in a table
# does not depend on the datapath's state unless it names a group or a
# meter, so the result is kept (progs copied per flow) and later adds only
# copy it.  Keyed by the tuple's identity (the template keeps it alive); a
# template serves only the table it was built for (goto_table is checked
# against the table), another table rebuilds and replaces it.
cdef class _PlInsnTpl:
    cdef object insns
    cdef vdp_prog *apply
    cdef vdp_prog *write
    cdef uint64_t md_value
    cdef uint64_t md_mask
    cdef uint8_t goto_table
    cdef uint8_t insn
    cdef int table_id

    def __dealloc__(self):
        free(self.apply)
        free(self.write)
        self.apply = self.write = NULL


cdef Py_ssize_t _PL_INSN_CACHE_MAX = 4096


cdef inline size_t _pl_prog_size(const vdp_prog *p) noexcept nogil:
    return sizeof(vdp_prog) + (p.n if p.n else 1) * sizeof(vdp_op)


cdef vdp_prog *_pl_prog_dup(const vdp_prog *p) noexcept nogil:
    """A malloc'd copy of p (NULL for NULL, or when out of memory: check)."""
    cdef vdp_prog *q
    if p == NULL:
        return NULL
    q = <vdp_prog *>malloc(_pl_prog_size(p))
    if q != NULL:
        memcpy(q, p, _pl_prog_size(p))
    return q


cdef bint _pl_prog_stateless(const vdp_prog *p) noexcept nogil:
    cdef uint32_t i
    if p == NULL:
        return True
    for i in range(p.n):
        if p.ops[i].type == _PL_OP_GROUP or p.ops[i].type == _PL_OP_METER:
            return False
    return True


cdef inline void _pl_flow_ref(vdp_flow *f, object match, object insns):
    Py_INCREF(match)
    Py_INCREF(insns)
    f.user[0] = <void *>match
    f.user[1] = <void *>insns


cdef inline void _pl_flow_unref(vdp_flow *f):
    Py_XDECREF(<PyObject *>f.user[0])
    Py_XDECREF(<PyObject *>f.user[1])
    f.user[0] = NULL
    f.user[1] = NULL


cdef inline uint64_t _pl_ns(object now) except? 0:
    if now is None:
        return vdp_dp_now_ns()
    return <uint64_t>(int(now * 1000000000))


cdef class Datapath:
    """One OpenFlow 1.3 datapath: up to 254 tables, groups, meters, ports,
    the upcall ring, NORMAL.  See /work/brief.md for the facade API."""
    cdef vdp_dp *c
    cdef dict _ports            # ofport -> Port (keeps the C port alive)
    cdef dict _groups           # group id -> GroupSpec as given
    cdef dict _meters           # meter id -> MeterSpec as given
    cdef vdp_pkt *_burst
    cdef readonly int n_tables
    cdef dict _insn_cache       # id(instructions) -> _PlInsnTpl

    # fail_standalone_mode values (see ext/pipeline.h VDP_FAIL_*)
    FAIL_OFF = VDP_FAIL_OFF                  # the tables decide; misses drop
    FAIL_MISS_NORMAL = VDP_FAIL_MISS_NORMAL  # table-0 miss -> NORMAL
    FAIL_OPEN = VDP_FAIL_OPEN                # every frame -> NORMAL (tables ignored)

    def __cinit__(self, int n_tables=254, *args, **kwargs):
        if n_tables < 1 or n_tables > 254:
            raise ValueError("n_tables must be 1..254")
        self.c = vdp_dp_new(n_tables)
        if self.c == NULL:
            raise MemoryError()
        self._burst = <vdp_pkt *>calloc(VDP_BURST, sizeof(vdp_pkt))
        if self._burst == NULL:
            vdp_dp_free(self.c)
            self.c = NULL
            raise MemoryError()
        self.n_tables = n_tables
        self._ports = {}
        self._groups = {}
        self._meters = {}
        self._insn_cache = {}

    def __dealloc__(self):
        cdef vdp_flow *f
        if self.c != NULL:
            f = self.d().flows_head
            while f != NULL:
                _pl_flow_unref(f)
                f = f.next
            vdp_dp_free(self.c)
            self.c = NULL
        free(self._burst)
        self._burst = NULL

    cdef inline _pl_dp *d(self):
        return <_pl_dp *>self.c

    cdef void _lock(self):
        # Uncontended (the engine is between bursts): no GIL round trip.
        if vdp_dp_trylock(self.c) == 0:
            return
        with nogil:
            vdp_dp_lock(self.c)

    cdef void _unlock(self):
        vdp_dp_unlock(self.c)

    # ------------------------------------------------------------ ports
    def attach_port(self, uint32_t ofport, Port port not None):
        """Attach a port as OpenFlow port `ofport` (1..1023, or OFPP_LOCAL).
        The port's `offload_ok` attribute (default False) says whether its
        tx takes partial-checksum frames as they are."""
        if port.c == NULL:
            raise ValueError("port is closed")
        if not (1 <= ofport < VDP_MAX_PORTS or ofport == _PL_OFPP_LOCAL):
            raise ValueError(f"bad port number {ofport}")
        if ofport in self._ports:
            raise ValueError(f"port {ofport} already attached")
        for p in self._ports.values():
            if p is port:
                raise ValueError("port already attached under another number")
        offload = bool(getattr(port, "offload_ok", False))
        self._lock()
        try:
            rc = vdp_dp_attach(self.c, ofport, port.c, offload)
        finally:
            self._unlock()
        if rc < 0:
            raise ValueError(f"cannot attach port {ofport}")
        self._ports[ofport] = port

    def detach_port(self, uint32_t ofport):
        """Detach (not close) the port; returns it."""
        port = self._ports.get(ofport)
        if port is None:
            raise KeyError(ofport)
        self._lock()
        try:
            vdp_dp_detach(self.c, ofport)
        finally:
            self._unlock()
        del self._ports[ofport]
        return port

    def ports(self):
        return dict(self._ports)

    def set_port_offload(self, uint32_t ofport, bint ok):
        """Whether `ofport`'s tx takes offload metadata (csum_partial/gso)."""
        self._port(ofport)
        self._lock()
        try:
            vdp_dp_set_offload(self.c, ofport, ok)
        finally:
            self._unlock()

    cdef Port _port(self, uint32_t ofport):
        port = self._ports.get(ofport)
        if port is None:
            raise FlowError(OFPET_PORT_MOD_FAILED, OFPPMFC_BAD_PORT, f"no port {ofport}")
        return port

    def set_port_link(self, uint32_t ofport, bint up):
        self._port(ofport)
        self._lock()
        try:
            vdp_dp_set_link(self.c, ofport, up)
        finally:
            self._unlock()

    def set_port_config(self, uint32_t ofport, uint32_t config, uint32_t mask):
        """OFPT_PORT_MOD: config bits (PORT_DOWN 1, NO_RECV 4, NO_FWD 32,
        NO_PACKET_IN 64) under mask."""
        self._port(ofport)
        self._lock()
        try:
            vdp_dp_set_config(self.c, ofport, config, mask)
        finally:
            self._unlock()

    def port_config(self, uint32_t ofport):
        cdef Port p = self._port(ofport)
        return p.c.config

    def port_link(self, uint32_t ofport):
        cdef Port p = self._port(ofport)
        return bool(p.c.link_up)

    def port_stats(self):
        cdef Port p
        out = {}
        self._lock()
        try:
            for ofport, port in self._ports.items():
                p = port
                s = &p.c.stats
                out[ofport] = dict(rx_packets=s.rx_packets, tx_packets=s.tx_packets,
                                   rx_bytes=s.rx_bytes, tx_bytes=s.tx_bytes,
                                   rx_dropped=s.rx_dropped, tx_dropped=s.tx_dropped,
                                   rx_errors=s.rx_errors, tx_errors=s.tx_errors,
                                   rx_malformed=s.rx_malformed)
        finally:
            self._unlock()
        return out

    # ------------------------------------------------------------ config
    @property
    def fail_standalone(self):
        """Is fail mode standalone acting (NORMAL fallback on)?  A bool;
        fail_standalone_mode says how.  Assigning True/False sets
        FAIL_MISS_NORMAL/FAIL_OFF (as before modes existed); assigning one of
        the FAIL_* ints sets that mode."""
        return self.d().fail_standalone != VDP_FAIL_OFF

    @fail_standalone.setter
    def fail_standalone(self, on):
        self.fail_standalone_mode = on

    @property
    def fail_standalone_mode(self):
        """What fail mode standalone does now (ext/pipeline.h VDP_FAIL_*):
        FAIL_OFF (0): a controller is connected, or fail mode secure;
        FAIL_MISS_NORMAL (1): no controller configured: a table-0 miss with
        no table-miss flow goes to NORMAL, installed flows still win;
        FAIL_OPEN (2): controllers configured but none connected: every
        frame goes to NORMAL whatever the tables hold (OVS fail-open).
        Setting it drops every cached result (generation bump)."""
        return int(self.d().fail_standalone)

    @fail_standalone_mode.setter
    def fail_standalone_mode(self, mode):
        cdef int m
        if isinstance(mode, bool):
            m = VDP_FAIL_MISS_NORMAL if mode else VDP_FAIL_OFF
        else:
            m = mode
            if m not in (VDP_FAIL_OFF, VDP_FAIL_MISS_NORMAL, VDP_FAIL_OPEN):
                raise ValueError(f"fail_standalone mode {mode!r} (expected 0, 1 or 2, "
                                 "or a bool)")
        self._lock()
        if self.d().fail_standalone != m:
            self.d().fail_standalone = <uint8_t>m
            vdp_dp_bump(self.c)
        self._unlock()

    @property
    def invalid_ttl_to_controller(self):
        """OFPC_INVALID_TTL_TO_CONTROLLER: a TTL decrement to 0 upcalls with
        reason INVALID_TTL instead of dropping silently (default off)."""
        return bool(self.d().ttl_to_controller)

    @invalid_ttl_to_controller.setter
    def invalid_ttl_to_controller(self, bint on):
        self._lock()
        self.d().ttl_to_controller = on
        vdp_dp_bump(self.c)
        self._unlock()

    @property
    def generation(self):
        return self.d().generation

    @property
    def normal_aging(self):
        """MAC learning aging time of NORMAL, seconds (default 300)."""
        return vdp_normal_aging(self.d().normal)

    @normal_aging.setter
    def normal_aging(self, uint32_t seconds):
        self._lock()
        vdp_normal_set_aging(self.d().normal, seconds)
        self._unlock()

    def normal_set_size(self, uint32_t max_entries, uint32_t aging=0):
        """Replace the MAC table with an empty one of max_entries entries."""
        cdef vdp_normal *n
        cdef vdp_normal *old
        if max_entries < 1:
            raise ValueError("max_entries must be >= 1")
        n = vdp_normal_new(max_entries, aging or vdp_normal_aging(self.d().normal))
        if n == NULL:
            raise MemoryError()
        self._lock()
        old = self.d().normal
        self.d().normal = n
        self._unlock()
        vdp_normal_free(old)

    def mac_table(self, now=None):
        """NORMAL's learned entries: [(vlan, mac int, port, age seconds)],
        most recently seen first (aged entries included until swept)."""
        cdef uint32_t cursor = 0, port
        cdef uint16_t vlan
        cdef uint8_t mac[6]
        cdef uint64_t seen, t = _pl_ns(now)
        out = []
        self._lock()
        try:
            while vdp_normal_next(self.d().normal, &cursor, &vlan, mac, &port, &seen):
                out.append((vlan, int.from_bytes(PyBytes_FromStringAndSize(<char *>mac, 6), "big"),
                            port, (t - seen) / 1e9 if t > seen else 0.0))
        finally:
            self._unlock()
        return out

    def mac_lookup(self, uint16_t vlan, mac, now=None):
        """Port NORMAL learned for (vlan, mac int), or None."""
        cdef bytes b = int(mac).to_bytes(6, "big")
        cdef uint32_t port
        self._lock()
        port = vdp_normal_lookup(self.d().normal, vlan, <const uint8_t *><const char *>b, _pl_ns(now))
        self._unlock()
        return port or None

    def mac_learn(self, uint16_t vlan, mac, uint32_t port, now=None):
        """Teach NORMAL an entry (tests, static entries): 1 new, 2 moved,
        0 refreshed, -1 refused (multicast)."""
        cdef bytes b = int(mac).to_bytes(6, "big")
        self._lock()
        rc = vdp_normal_learn(self.d().normal, vlan, <const uint8_t *><const char *>b, port, _pl_ns(now))
        self._unlock()
        return rc

    def mac_flush(self):
        self._lock()
        vdp_normal_flush(self.d().normal)
        self._unlock()

    def mac_expire(self, now=None):
        """Sweep aged MAC entries; returns how many were removed."""
        self._lock()
        n = vdp_normal_expire(self.d().normal, _pl_ns(now))
        self._unlock()
        return n

    def mac_stats(self):
        n = self.d().normal
        return dict(count=vdp_normal_count(n), max=vdp_normal_max(n),
                    aging=vdp_normal_aging(n), evictions=vdp_normal_evictions(n))

    def stats(self):
        """Datapath-wide counters: rx = malformed + rx_dropped + forwarded +
        upcalled + dropped; cache hits/misses/nocache; upcall_lost..."""
        s = &self.d().stats
        return dict(rx=s.rx, malformed=s.malformed, rx_dropped=s.rx_dropped,
                    forwarded=s.forwarded, upcalled=s.upcalled, dropped=s.dropped,
                    hits=s.hits, misses=s.misses, nocache=s.nocache,
                    upcall_lost=s.upcall_lost, invalid_ttl=s.invalid_ttl,
                    prog_too_long=s.prog_too_long, flows=self.d().n_flows,
                    upcalls_queued=self.d().uc_count,
                    emc_used=vdp_emc_used(self.d().emc),
                    generation=self.d().generation)

    # ------------------------------------------------------------ compile
    cdef int _check_port(self, object a, bint packet_out) except -1:
        port = a.port
        if not isinstance(port, int) or port < 0 or port > 0xffffffff:
            raise FlowError(OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT, f"bad output port {port!r}")
        if 1 <= port < VDP_MAX_PORTS:
            return 0
        if port in (_PL_OFPP_IN_PORT, _PL_OFPP_NORMAL, _PL_OFPP_FLOOD, _PL_OFPP_ALL,
                    _PL_OFPP_CONTROLLER, _PL_OFPP_LOCAL):
            return 0
        if port == _PL_OFPP_TABLE and packet_out:
            return 0
        raise FlowError(OFPET_BAD_ACTION, OFPBAC_BAD_OUT_PORT, f"bad output port {port:#x}")

    cdef vdp_prog *_compile(self, object actions, bint packet_out, bint in_group) except NULL:
        """Model actions -> malloc'd vdp_prog (flow's apply/write list, a
        bucket, a packet-out).  Output/Group are resolved here (port and
        group validation); everything else goes to compile_action."""
        cdef Py_ssize_t n = len(actions), i
        cdef vdp_prog *p = <vdp_prog *>calloc(1, sizeof(vdp_prog) + (n if n else 1) * sizeof(vdp_op))
        cdef vdp_op *op
        cdef vdp_group *g
        if p == NULL:
            raise MemoryError()
        try:
            for i in range(n):
                a = actions[i]
                op = &p.ops[i]
                kind = _pl_kind(a)
                if kind == 1:
                    self._check_port(a, packet_out)
                    op.type = _PL_OP_OUTPUT
                    op.arg = a.port
                    op.arg16 = a.max_len & 0xffff
                elif kind == 2:
                    gid = a.group_id
                    if not isinstance(gid, int) or gid < 0 or gid > _PL_OFPG_MAX or \
                            vdp_dp_group(self.c, gid) == NULL:
                        raise FlowError(OFPET_BAD_ACTION, OFPBAC_BAD_OUT_GROUP,
                                        f"no group {gid!r}")
                    op.type = _PL_OP_GROUP
                    op.arg = gid
                else:
                    try:
                        compile_action(a, op)
                    except FlowError:
                        raise
                    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
                        raise FlowError(OFPET_BAD_ACTION, OFPBAC_BAD_ARGUMENT, f"{a!r}: {e}")
                    if op.type == _PL_OP_METER:
                        raise FlowError(OFPET_BAD_ACTION, OFPBAC_BAD_TYPE, "meter is an instruction")
                p.n += 1
        except BaseException:
            free(p)
            raise
        return p

    cdef int _build_flow(self, object spec, vdp_flow *f) except -1:
        """Instructions of spec -> f (progs, meter, metadata, goto), validated."""
        cdef int table_id = f.table_id
        cdef int seen = 0, bit
        for insn in spec.instructions:
            kind = type(insn).__name__
            bit = _PL_INSN_BIT.get(kind, 0)
            if seen & bit:
                raise FlowError(OFPET_BAD_INSTRUCTION, OFPBIC_UNSUP_INST,
                                f"duplicate instruction {kind}")
            seen |= bit
            if kind == "GotoTable":
                t = insn.table_id
                if not isinstance(t, int) or t <= table_id or t >= self.n_tables:
                    raise FlowError(OFPET_BAD_INSTRUCTION, OFPBIC_BAD_TABLE_ID,
                                    f"goto_table {t!r} from table {table_id}")
                f.goto_table = t
                f.insn |= VDP_INSN_GOTO
            elif kind == "WriteMetadata":
                f.md_value = insn.metadata & 0xffffffffffffffff
                f.md_mask = insn.mask & 0xffffffffffffffff
                f.insn |= VDP_INSN_WRITE_MD
            elif kind == "ApplyActions":
                f.apply = self._compile(insn.actions, False, False)
                f.insn |= VDP_INSN_APPLY
            elif kind == "WriteActions":
                f.write = self._compile(insn.actions, False, False)
                f.insn |= VDP_INSN_WRITE
            elif kind == "ClearActions":
                f.insn |= VDP_INSN_CLEAR
            elif kind == "Meter":
                mid = insn.meter_id
                if not isinstance(mid, int) or mid < 1 or mid > 0xffffffff or \
                        vdp_dp_meter(self.c, mid) == NULL:
                    raise FlowError(OFPET_METER_MOD_FAILED, OFPMMFC_UNKNOWN_METER,
                                    f"no meter {mid!r}")
                f.meter_id = mid
                f.insn |= VDP_INSN_METER
            else:
                raise FlowError(OFPET_BAD_INSTRUCTION, OFPBIC_UNKNOWN_INST,
                                f"unknown instruction {insn!r}")
        return 0

    # ------------------------------------------------------------ flows
    cdef object _stats(self, vdp_flow *f, uint64_t now_ns):
        M = _pl_m()
        # a copy: callers of flows() may change what they get
        um = <object>f.user[0] if f.user[0] != NULL else None
        if type(um) is bytes:           # kept as its OXM TLVs (flow_add's fast path)
            match = M.Match.__new__(M.Match)
            match.fields = _pl_oxm_fields(um)
        else:
            match = M.Match(_pl_match_fields(um))
        insns = <object>f.user[1] if f.user[1] != NULL else ()
        spec = M.FlowSpec(table_id=f.table_id, priority=f.rule.priority, match=match,
                          instructions=insns, cookie=f.cookie,
                          idle_timeout=f.idle_timeout, hard_timeout=f.hard_timeout,
                          flags=f.flags & 0x1f)
        return M.FlowStats(spec=spec, packet_count=f.packets, byte_count=f.bytes,
                           duration_ns=now_ns - f.install_ns if now_ns > f.install_ns else 0)

    def flow_add(self, spec):
        """OFPFC_ADD.  Raises FlowError(type, code, message)."""
        cdef vdp_key v, m
        cdef vdp_flow *f
        cdef vdp_flow *old = NULL
        cdef int table_id = spec.table_id, prio = spec.priority, rc
        cdef int idle = spec.idle_timeout, hard = spec.hard_timeout
        cdef _PlInsnTpl tpl = None
        if table_id < 0 or table_id >= self.n_tables:
            raise FlowError(OFPET_FLOW_MOD_FAILED, OFPFMFC_BAD_TABLE_ID, f"bad table {table_id}")
        if prio < 0 or prio > 0xffff:
            raise FlowError(OFPET_FLOW_MOD_FAILED, OFPFMFC_UNKNOWN, f"bad priority {prio}")
        if not (0 <= idle <= 0xffff and 0 <= hard <= 0xffff):
            raise FlowError(OFPET_FLOW_MOD_FAILED, OFPFMFC_BAD_TIMEOUT, "bad timeout")
        match = spec.match
        # The flow keeps its match as the OXM bytes when it came as such
        # (no per-flow object for the cyclic GC to walk), else the Match
        # object as given (no copy: callers must not mutate it afterwards).
        keep = _pl_wire_oxm(match)
        if keep is None or _pl_oxm_to_key(<const uint8_t *><bytes>keep, len(<bytes>keep),
                                          &v, &m, True) != 0:
            _pl_match_to_key(match, &v, &m, True)
            keep = match
        insns = spec.instructions
        if type(insns) is not tuple:
            insns = tuple(insns)
        key = id(insns)
        t = self._insn_cache.get(key)
        if t is not None and (<_PlInsnTpl>t).insns is insns and \
                (<_PlInsnTpl>t).table_id == table_id:
            tpl = <_PlInsnTpl>t
        f = vdp_flow_new()
        if f == NULL:
            raise MemoryError()
        f.rule.value = v
        f.rule.priority = prio
        f.table_id = table_id
        f.cookie = spec.cookie & 0xffffffffffffffff
        f.idle_timeout = idle
        f.hard_timeout = hard
        f.flags = spec.flags & 0x1f
        if tpl is not None:
            f.insn = tpl.insn
            f.goto_table = tpl.goto_table
            f.md_value = tpl.md_value
            f.md_mask = tpl.md_mask
            f.apply = _pl_prog_dup(tpl.apply)
            f.write = _pl_prog_dup(tpl.write)
            if (f.apply == NULL and tpl.apply != NULL) or (f.write == NULL and tpl.write != NULL):
                vdp_flow_free(f)
                raise MemoryError()
        self._lock()
        try:
            if tpl is None:
                self._build_flow(spec, f)
            if (f.flags & 0x02) and vdp_dp_flow_overlaps(self.c, f, &m):
                raise FlowError(OFPET_FLOW_MOD_FAILED, OFPFMFC_OVERLAP, "overlapping flow")
            rc = vdp_dp_flow_insert(self.c, f, &m, &old)
            if rc < 0:
                raise MemoryError()
        except BaseException:
            self._unlock()
            vdp_flow_free(f)
            raise
        self._unlock()
        if old != NULL:
            _pl_flow_unref(old)
            vdp_flow_free(old)
        _pl_flow_ref(f, keep, insns)
        if tpl is None and insns is spec.instructions and f.meter_id == 0 \
                and _pl_prog_stateless(f.apply) and _pl_prog_stateless(f.write):
            self._remember_insns(key, insns, f)

    cdef _remember_insns(self, object key, object insns, vdp_flow *f):
        """Keep what _build_flow made of insns in this table (see _PlInsnTpl)."""
        cdef _PlInsnTpl tpl = _PlInsnTpl.__new__(_PlInsnTpl)
        tpl.apply = _pl_prog_dup(f.apply)
        tpl.write = _pl_prog_dup(f.write)
        if (tpl.apply == NULL and f.apply != NULL) or (tpl.write == NULL and f.write != NULL):
            return                      # out of memory: just do not cache
        tpl.insns = insns
        tpl.table_id = f.table_id
        tpl.insn = f.insn
        tpl.goto_table = f.goto_table
        tpl.md_value = f.md_value
        tpl.md_mask = f.md_mask
        if len(self._insn_cache) >= _PL_INSN_CACHE_MAX:
            self._insn_cache.clear()
        self._insn_cache[key] = tpl

    cdef list _select(self, int table_id, object match, bint strict, int priority,
                      uint32_t out_port, uint32_t out_group, uint64_t cookie,
                      uint64_t cookie_mask):
        """Flows selected by a filter (lock held)."""
        cdef vdp_key v, m
        cdef int n, cap = self.d().n_flows, i
        cdef vdp_flow **arr
        _pl_any_key(match, &v, &m, False)
        if cap == 0:
            return []
        arr = <vdp_flow **>malloc(cap * sizeof(vdp_flow *))
        if arr == NULL:
            raise MemoryError()
        n = vdp_dp_select(self.c, table_id, &v, &m, strict, priority, out_port, out_group,
                          cookie, cookie_mask, arr, cap)
        out = [<size_t>arr[i] for i in range(n)]
        free(arr)
        return out

    def flow_modify(self, spec, strict=False):
        """OFPFC_MODIFY(_STRICT): replace the instructions of the flows in
        spec.table_id matching spec.match (strict: and priority); cookie,
        timeouts and counters stay (OFPFF_RESET_COUNTS in spec.flags clears
        the counters).  Returns how many flows changed (0: nothing added)."""
        cdef vdp_flow *f
        cdef vdp_flow tmp
        cdef int table_id = spec.table_id
        if table_id < 0 or table_id >= self.n_tables:
            raise FlowError(OFPET_FLOW_MOD_FAILED, OFPFMFC_BAD_TABLE_ID, f"bad table {table_id}")
        insns = tuple(spec.instructions)
        self._lock()
        try:
            # validate once on a scratch entry
            memset(&tmp, 0, sizeof(vdp_flow))
            tmp.table_id = table_id
            tmp.goto_table = VDP_NO_TABLE
            try:
                self._build_flow(spec, &tmp)
            finally:
                free(tmp.apply)
                free(tmp.write)
            sel = self._select(table_id, spec.match, strict, spec.priority,
                               _PL_OFPP_ANY, _PL_OFPG_ANY, 0, 0)
            for addr in sel:
                f = <vdp_flow *><size_t>addr
                free(f.apply)
                free(f.write)
                f.apply = NULL
                f.write = NULL
                f.insn = 0
                f.meter_id = 0
                f.goto_table = VDP_NO_TABLE
                f.md_value = f.md_mask = 0
                self._build_flow(spec, f)       # validated above: cannot fail now
                if spec.flags & 0x04:
                    f.packets = f.bytes = 0
                Py_INCREF(insns)
                Py_XDECREF(<PyObject *>f.user[1])
                f.user[1] = <void *>insns
            if sel:
                vdp_dp_bump(self.c)
        finally:
            self._unlock()
        return len(sel)

    def flow_delete(self, table_id=0xff, match=None, priority=None, strict=False,
                    out_port=0xffffffff, out_group=0xffffffff, cookie=0, cookie_mask=0):
        """OFPFC_DELETE(_STRICT); returns the removed flows' FlowStats."""
        return [st for st, _ in self._delete(table_id, match, priority, strict, out_port,
                                             out_group, cookie, cookie_mask, OFPRR_DELETE)]

    cdef list _delete(self, int table_id, object match, object priority, bint strict,
                      uint32_t out_port, uint32_t out_group, uint64_t cookie,
                      uint64_t cookie_mask, int reason):
        cdef vdp_flow *f
        cdef uint64_t now = vdp_dp_now_ns()
        if table_id != 0xff and (table_id < 0 or table_id >= self.n_tables):
            raise FlowError(OFPET_FLOW_MOD_FAILED, OFPFMFC_BAD_TABLE_ID, f"bad table {table_id}")
        if strict and priority is None:
            priority = 0x8000
        out = []
        self._lock()
        try:
            sel = self._select(table_id, match, strict, priority or 0, out_port, out_group,
                               cookie, cookie_mask)
            for addr in sel:
                f = <vdp_flow *><size_t>addr
                out.append((self._stats(f, now), reason))
                vdp_dp_flow_remove(self.c, f)
                _pl_flow_unref(f)
                vdp_flow_free(f)
        finally:
            self._unlock()
        return out

    def flows(self, table_id=0xff, match=None, out_port=0xffffffff, out_group=0xffffffff,
              cookie=0, cookie_mask=0):
        """Flow stats (non-strict filter), install order."""
        cdef uint64_t now = vdp_dp_now_ns()
        if table_id != 0xff and (table_id < 0 or table_id >= self.n_tables):
            raise FlowError(OFPET_BAD_REQUEST, 0, f"bad table {table_id}")
        self._lock()
        try:
            sel = self._select(table_id, match, False, 0, out_port, out_group, cookie, cookie_mask)
            return [self._stats(<vdp_flow *><size_t>a, now) for a in sel]
        finally:
            self._unlock()

    def flow_count(self):
        return self.d().n_flows

    def expire(self, now):
        """Remove flows whose idle/hard timeout passed at `now` (monotonic
        seconds, time.monotonic()); returns [(FlowStats, reason)] with reason
        OFPRR_IDLE_TIMEOUT (0) or OFPRR_HARD_TIMEOUT (1)."""
        cdef uint64_t t = _pl_ns(now)
        cdef vdp_flow *fl[256]
        cdef uint8_t reasons[256]
        cdef int n, i
        out = []
        self._lock()
        try:
            while True:
                n = vdp_dp_expire(self.c, t, fl, reasons, 256)
                for i in range(n):
                    out.append((self._stats(fl[i], t), reasons[i]))
                    _pl_flow_unref(fl[i])
                    vdp_flow_free(fl[i])
                if n < 256:
                    break
        finally:
            self._unlock()
        return out

    def table_stats(self):
        cdef vdp_table *t
        out = []
        self._lock()
        try:
            for i in range(self.n_tables):
                t = &self.d().tables[i]
                out.append(dict(table_id=i, active_count=t.active,
                                lookup_count=t.lookup, matched_count=t.matched))
        finally:
            self._unlock()
        return out

    # ------------------------------------------------------------ groups
    cdef vdp_group *_build_group(self, object gspec) except NULL:
        cdef vdp_group *g
        cdef vdp_bucket *b
        cdef int i, n
        gid = gspec.group_id
        gtype = gspec.type
        if not isinstance(gid, int) or gid < 0 or gid > _PL_OFPG_MAX:
            raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_INVALID_GROUP, f"bad group id {gid!r}")
        if gtype not in (0, 1, 2, 3):
            raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_BAD_TYPE, f"bad group type {gtype!r}")
        buckets = tuple(gspec.buckets)
        n = len(buckets)
        if gtype == VDP_GT_INDIRECT and n != 1:
            raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_INVALID_GROUP,
                            "an indirect group has exactly one bucket")
        if n > 0xffff:
            raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_BAD_BUCKET, "too many buckets")
        for bk in buckets:
            if gtype != VDP_GT_SELECT and bk.weight:
                raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_WEIGHT_UNSUPPORTED,
                                "weight outside a select group")
            if gtype == VDP_GT_FF and bk.watch_port == _PL_OFPP_ANY and \
                    bk.watch_group == _PL_OFPG_ANY:
                raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_BAD_WATCH,
                                "fast failover bucket without watch port/group")
            for a in bk.actions:
                if type(a).__name__ == "Group" and a.group_id == gid:
                    raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_LOOP, "group chains to itself")
        g = vdp_group_new(gid, gtype, n, vdp_dp_now_ns())
        if g == NULL:
            raise MemoryError()
        try:
            for i in range(n):
                bk = buckets[i]
                b = &g.buckets[i]
                b.weight = bk.weight
                b.watch_port = bk.watch_port
                b.watch_group = bk.watch_group
                b.prog = self._compile(bk.actions, False, True)
        except BaseException:
            vdp_group_free(g)
            raise
        return g

    def group_add(self, gspec):
        cdef vdp_group *g
        self._lock()
        try:
            if vdp_dp_group(self.c, gspec.group_id) != NULL:
                raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_GROUP_EXISTS,
                                f"group {gspec.group_id} exists")
            g = self._build_group(gspec)
            if vdp_dp_group_add(self.c, g) < 0:
                vdp_group_free(g)
                raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_GROUP_EXISTS,
                                f"group {gspec.group_id} exists")
        finally:
            self._unlock()
        self._groups[gspec.group_id] = gspec

    def group_modify(self, gspec):
        cdef vdp_group *g
        self._lock()
        try:
            if vdp_dp_group(self.c, gspec.group_id) == NULL:
                raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_UNKNOWN_GROUP,
                                f"no group {gspec.group_id}")
            g = self._build_group(gspec)
            if vdp_dp_group_modify(self.c, g) == NULL:
                vdp_group_free(g)
                raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_UNKNOWN_GROUP,
                                f"no group {gspec.group_id}")
            if vdp_dp_group_chain_loops(self.c, gspec.group_id):
                # put the old definition back
                old = self._groups[gspec.group_id]
                g = self._build_group(old)
                vdp_dp_group_modify(self.c, g)
                raise FlowError(OFPET_GROUP_MOD_FAILED, OFPGMFC_LOOP, "group chain loops")
        finally:
            self._unlock()
        self._groups[gspec.group_id] = gspec

    def group_delete(self, group_id=0xfffffffc):
        """Delete a group (OFPG_ALL = every group) and the flows that use it
        (OF1.3); returns the removed flows' FlowStats."""
        ids = list(self._groups) if group_id == 0xfffffffc else [group_id]
        removed = []
        for gid in ids:
            if gid not in self._groups:
                continue
            removed += [st for st, _ in self._delete(0xff, None, None, False, _PL_OFPP_ANY,
                                                     gid, 0, 0, OFPRR_GROUP_DELETE)]
            self._lock()
            try:
                vdp_dp_group_delete(self.c, gid)
            finally:
                self._unlock()
            del self._groups[gid]
        return removed

    def groups(self):
        """[(GroupSpec, stats)] with stats = dict(packet_count, byte_count,
        ref_count, duration_ns, bucket_stats=[dict(packet_count, byte_count)])."""
        cdef vdp_group *g
        cdef vdp_flow *f
        cdef uint64_t now = vdp_dp_now_ns()
        out = []
        self._lock()
        try:
            for gid in sorted(self._groups):
                g = vdp_dp_group(self.c, gid)
                if g == NULL:
                    continue
                refs = 0
                f = self.d().flows_head
                while f != NULL:
                    if vdp_flow_has_group(f, gid):
                        refs += 1
                    f = f.next
                st = dict(packet_count=g.packet_count, byte_count=g.byte_count,
                          ref_count=refs, duration_ns=now - g.created_ns,
                          bucket_stats=[dict(packet_count=g.buckets[i].packet_count,
                                             byte_count=g.buckets[i].byte_count)
                                        for i in range(g.n_buckets)])
                out.append((self._groups[gid], st))
        finally:
            self._unlock()
        return out

    # ------------------------------------------------------------ meters
    cdef int _meter_cfg(self, object mspec, vdp_meter_band_cfg *cfg) except -1:
        mid = mspec.meter_id
        flags = mspec.flags
        bands = tuple(mspec.bands)
        if not isinstance(mid, int) or mid < 1 or mid > 0xffff0000:
            raise FlowError(OFPET_METER_MOD_FAILED, OFPMMFC_INVALID_METER, f"bad meter id {mid!r}")
        if flags & ~0xf or (flags & 3) == 0 or (flags & 3) == 3:
            raise FlowError(OFPET_METER_MOD_FAILED, OFPMMFC_BAD_FLAGS, f"bad meter flags {flags!r}")
        if len(bands) > VDP_METER_MAX_BANDS:
            raise FlowError(OFPET_METER_MOD_FAILED, 11, "too many bands")   # OUT_OF_BANDS
        for i, band in enumerate(bands):
            if band.type not in (1, 2):
                raise FlowError(OFPET_METER_MOD_FAILED, OFPMMFC_BAD_BAND, f"bad band type {band.type!r}")
            if not 0 < band.rate <= 0xffffffff:
                raise FlowError(OFPET_METER_MOD_FAILED, OFPMMFC_BAD_RATE, f"bad rate {band.rate!r}")
            if not 0 <= band.burst_size <= 0xffffffff or not 0 <= band.prec_level <= 0xff:
                raise FlowError(OFPET_METER_MOD_FAILED, 9, "bad band value")  # BAD_BAND_VALUE
            cfg[i].type = band.type
            cfg[i].rate = band.rate
            cfg[i].burst_size = band.burst_size
            cfg[i].prec_level = band.prec_level if band.type == 2 else 0
        return len(bands)

    def meter_add(self, mspec):
        cdef vdp_meter_band_cfg cfg[16]
        cdef vdp_meter *m
        cdef int n = self._meter_cfg(mspec, cfg)
        self._lock()
        try:
            if vdp_dp_meter(self.c, mspec.meter_id) != NULL:
                raise FlowError(OFPET_METER_MOD_FAILED, OFPMMFC_METER_EXISTS,
                                f"meter {mspec.meter_id} exists")
            m = vdp_meter_new(mspec.meter_id, mspec.flags, cfg, n, vdp_dp_now_ns())
            if m == NULL:
                raise MemoryError()
            vdp_dp_meter_add(self.c, m)
        finally:
            self._unlock()
        self._meters[mspec.meter_id] = mspec

    def meter_modify(self, mspec):
        cdef vdp_meter_band_cfg cfg[16]
        cdef vdp_meter *m
        cdef int n = self._meter_cfg(mspec, cfg)
        self._lock()
        try:
            m = vdp_dp_meter(self.c, mspec.meter_id)
            if m == NULL:
                raise FlowError(OFPET_METER_MOD_FAILED, OFPMMFC_UNKNOWN_METER,
                                f"no meter {mspec.meter_id}")
            vdp_meter_configure(m, mspec.flags, cfg, n)
            vdp_dp_bump(self.c)
        finally:
            self._unlock()
        self._meters[mspec.meter_id] = mspec

    def meter_delete(self, meter_id=0xffffffff):
        """Delete a meter (OFPM_ALL = every meter) and the flows that use
        it; returns the removed flows' FlowStats."""
        cdef vdp_flow *f
        cdef uint64_t now = vdp_dp_now_ns()
        ids = list(self._meters) if meter_id == 0xffffffff else [meter_id]
        removed = []
        self._lock()
        try:
            for mid in ids:
                if mid not in self._meters:
                    continue
                f = self.d().flows_head
                victims = []
                while f != NULL:
                    if (f.insn & VDP_INSN_METER) and f.meter_id == mid:
                        victims.append(<size_t>f)
                    f = f.next
                for addr in victims:
                    f = <vdp_flow *><size_t>addr
                    removed.append(self._stats(f, now))
                    vdp_dp_flow_remove(self.c, f)
                    _pl_flow_unref(f)
                    vdp_flow_free(f)
                vdp_dp_meter_delete(self.c, mid)
                del self._meters[mid]
        finally:
            self._unlock()
        return removed

    def meters(self):
        """[(MeterSpec, stats)] with stats = dict(flow_count, packet_in_count,
        byte_in_count, duration_ns, band_stats=[dict(packet_band_count,
        byte_band_count)])."""
        cdef vdp_meter *m
        cdef vdp_flow *f
        cdef uint64_t now = vdp_dp_now_ns()
        out = []
        self._lock()
        try:
            for mid in sorted(self._meters):
                m = vdp_dp_meter(self.c, mid)
                if m == NULL:
                    continue
                refs = 0
                f = self.d().flows_head
                while f != NULL:
                    if (f.insn & VDP_INSN_METER) and f.meter_id == mid:
                        refs += 1
                    f = f.next
                st = dict(flow_count=refs, packet_in_count=m.packet_in_count,
                          byte_in_count=m.byte_in_count,
                          duration_ns=now - m.created_ns if now > m.created_ns else 0,
                          band_stats=[dict(packet_band_count=m.bands[i].packet_count,
                                           byte_band_count=m.bands[i].byte_count)
                                      for i in range(m.n_bands)])
                out.append((self._meters[mid], st))
        finally:
            self._unlock()
        return out

    # ------------------------------------------------------------ packets
    def packet_out(self, data, uint32_t in_port, actions):
        """OFPT_PACKET_OUT: run `actions` (apply-actions semantics;
        Output(OFPP_TABLE) runs the pipeline) on a copy of data as if it came
        in on in_port (OFPP_CONTROLLER for none)."""
        cdef bytes frame = bytes(data)
        cdef vdp_prog *prog
        cdef uint32_t flen = len(frame)
        cdef const uint8_t *fp = <const uint8_t *><const char *>frame
        if flen > VDP_MAX_FRAME:
            raise FlowError(OFPET_BAD_REQUEST, 0, "frame too long")
        if not (1 <= in_port < VDP_MAX_PORTS or in_port in (_PL_OFPP_CONTROLLER, _PL_OFPP_LOCAL,
                                                             _PL_OFPP_ANY)):
            raise FlowError(OFPET_BAD_REQUEST, 0, f"bad in_port {in_port:#x}")
        self._lock()
        try:
            prog = self._compile(tuple(actions), True, False)
            with nogil:
                vdp_dp_packet_out(self.c, fp, flen,
                                  in_port, prog, vdp_dp_now_ns())
            free(prog)
        finally:
            self._unlock()

    def process(self, uint32_t in_port, frame, now=None):
        """Run one frame through the pipeline as received on in_port (no
        engine, no port rx): tests."""
        cdef bytes b = bytes(frame)
        cdef vdp_pkt pkt
        cdef uint64_t t = _pl_ns(now)
        memset(&pkt, 0, sizeof(vdp_pkt))
        pkt.data = <uint8_t *><const char *>b
        pkt.len = len(b)
        pkt.in_port = in_port
        self._lock()
        with nogil:
            vdp_dp_process_one(self.c, &pkt, t)
            vdp_dp_upcall_signal(self.c)
        self._unlock()

    cdef int _dummy_ports(self, vdp_port **arr) except -1:
        cdef int n = 0
        cdef Port p
        for port in self._ports.values():
            p = port
            if vdp_dummy_is(p.c):
                arr[n] = p.c
                n += 1
        return n

    def run_dummy_once(self, now=None):
        """One burst from every attached DummyPort through the pipeline,
        then tx_flush: the engine loop in miniature.  Returns frames run."""
        cdef vdp_port *arr[VDP_MAX_PORTS + 1]
        cdef int n = self._dummy_ports(arr), done
        cdef uint64_t t = _pl_ns(now)
        self._lock()
        with nogil:
            done = vdp_dp_poll_ports(self.c, arr, n, self._burst, t)
        self._unlock()
        return done

    def run_dummy(self, now=None, long max_frames=-1):
        """run_dummy_once until every DummyPort's rx queue is empty (or
        max_frames ran).  Returns frames run."""
        cdef vdp_port *arr[VDP_MAX_PORTS + 1]
        cdef int n = self._dummy_ports(arr), done
        cdef long total = 0
        cdef uint64_t t = _pl_ns(now)
        self._lock()
        with nogil:
            while max_frames < 0 or total < max_frames:
                done = vdp_dp_poll_ports(self.c, arr, n, self._burst, t)
                if done <= 0:
                    break
                total += done
        self._unlock()
        return total

    # ------------------------------------------------------------ upcalls
    def upcalls(self, int max=64):
        cdef vdp_upcall *u
        out = []
        self._lock()
        try:
            while len(out) < max and vdp_dp_upcall_peek(self.c, &u) == 0:
                out.append(Upcall(PyBytes_FromStringAndSize(<char *>u.data, u.len), u.in_port,
                                  u.reason, u.table_id, u.cookie, u.metadata, u.total_len,
                                  u.max_len))
                vdp_dp_upcall_pop(self.c)
        finally:
            self._unlock()
        return out

    def upcall_tuples(self, int max=256):
        """upcalls() as plain tuples (data, in_port, reason, table_id, cookie,
        metadata, total_len, max_len), the daemon's packet-in path: no
        namedtuple construction per frame."""
        cdef vdp_upcall *u
        cdef list out = []
        cdef int n = 0
        self._lock()
        try:
            while n < max and vdp_dp_upcall_peek(self.c, &u) == 0:
                out.append((PyBytes_FromStringAndSize(<char *>u.data, u.len), u.in_port,
                            u.reason, u.table_id, u.cookie, u.metadata, u.total_len,
                            u.max_len))
                n += 1
                vdp_dp_upcall_pop(self.c)
        finally:
            self._unlock()
        return out

    def upcall_fd(self):
        """An eventfd, readable while upcalls are queued (upcalls() drains
        it when the ring empties)."""
        return self.d().uc_fd


# ------------------------------------------------------------ test/bench hooks
# C loops over the pipeline for tests/unit/test_fuzz_pipeline.py and
# bench/test_micro_pipeline.py.  Nothing here is used by the daemon.
cdef extern from *:
    """
    #include <malloc.h>
    #include <time.h>
    static size_t vdp_plpxi_heap_in_use(void)
    {
        struct mallinfo2 mi = mallinfo2();
        return mi.uordblks + mi.hblkhd;
    }
    static double vdp_plpxi_cpu_ns(void)
    {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e9 + ts.tv_nsec;
    }
    """
    size_t vdp_plpxi_heap_in_use() nogil
    double vdp_plpxi_cpu_ns() nogil

from posix.mman cimport mmap, munmap, mprotect, PROT_READ, PROT_WRITE, PROT_NONE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FAILED
from posix.unistd cimport sysconf, _SC_PAGESIZE


def dp_heap_in_use():
    """glibc heap bytes in use (mallinfo2 uordblks + hblkhd)."""
    return vdp_plpxi_heap_in_use()


cdef inline uint64_t _pl_rand(uint64_t *s) noexcept nogil:
    cdef uint64_t z
    s[0] += 0x9e3779b97f4a7c15ULL
    z = s[0]
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL
    return z ^ (z >> 31)


cdef enum:
    _PL_FZ_SLOT = 8192          # bytes of frame room per burst slot (2 pages)
    _PL_FZ_MAXRAND = 1600


cdef uint32_t _pl_fz_frame(uint8_t *b, uint64_t *s, const uint8_t **cp,
                           const uint32_t *cl, int nc) noexcept nogil:
    """One fuzz frame into b (room _PL_FZ_SLOT): random bytes, or a corpus
    frame as is / truncated / mutated / extended."""
    cdef uint64_t r = _pl_rand(s), x
    cdef int mode = r % 10, ci, k, i
    cdef uint32_t n, pos
    if nc == 0 or mode == 0:
        n = (r >> 8) % (_PL_FZ_MAXRAND + 1)
        i = 0
        while i < <int>n:
            x = _pl_rand(s)
            memcpy(b + i, &x, 8 if n - i >= 8 else n - i)
            i += 8
        return n
    ci = (r >> 8) % nc
    n = cl[ci]
    memcpy(b, cp[ci], n)
    if mode <= 4:                        # as is: flows match, the cache hits
        return n
    if mode == 5:                        # truncated
        return (r >> 24) % (n + 1)
    if mode == 6:                        # extended with random bytes
        k = (r >> 24) % 200
        for i in range(k):
            b[n + i] = <uint8_t>_pl_rand(s)
        n += k
    k = 1 + (r >> 40) % 6                # mutations, mostly in the headers
    for i in range(k):
        x = _pl_rand(s)
        pos = (x >> 8) % (n if n < 96 or x % 4 == 0 else 96) if n else 0
        if n == 0:
            break
        if x % 2:
            b[pos] ^= <uint8_t>(1 << ((x >> 32) % 8))
        else:
            b[pos] = <uint8_t>(x >> 40)
    if mode == 8:
        n = (r >> 24) % (n + 1)
    return n


def _pl_fuzz_run(Datapath dp, list corpus, long n, uint64_t seed, list in_ports,
                 long drain_every, long bump_every):
    cdef long page = sysconf(_SC_PAGESIZE)
    cdef long slot_span = _PL_FZ_SLOT + page
    cdef size_t maplen = VDP_BURST * slot_span
    cdef uint8_t *region
    cdef vdp_pkt pkts[64]
    cdef uint8_t *scratch = NULL
    cdef uint64_t st = seed * 0x2545f4914f6cdd1dULL + 7
    cdef uint64_t now = 1000000000000ULL
    cdef long done = 0, since_drain = 0, since_bump = 0
    cdef int i, k, nc = len(corpus), nports = len(in_ports)
    cdef uint32_t flen
    cdef const uint8_t **cptr = NULL
    cdef uint32_t *clen = NULL
    cdef uint32_t *ports = NULL
    cdef vdp_upcall *u
    cdef long upcalls_seen = 0
    keep = list(corpus)
    for fr in keep:
        if not isinstance(fr, bytes) or len(fr) > _PL_FZ_SLOT - 256:
            raise ValueError("corpus entries: bytes up to 7936 long")
    if nports == 0:
        raise ValueError("in_ports must not be empty")
    region = <uint8_t *>mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if <void *>region == MAP_FAILED:
        raise MemoryError()
    for i in range(VDP_BURST):
        # each slot's frame ends right before a PROT_NONE page
        mprotect(region + i * slot_span + _PL_FZ_SLOT, page, PROT_NONE)
    cptr = <const uint8_t **>malloc(sizeof(uint8_t *) * (nc + 1))
    clen = <uint32_t *>malloc(sizeof(uint32_t) * (nc + 1))
    ports = <uint32_t *>malloc(sizeof(uint32_t) * nports)
    scratch = <uint8_t *>malloc(_PL_FZ_SLOT + 256)
    try:
        if cptr == NULL or clen == NULL or ports == NULL or scratch == NULL:
            raise MemoryError()
        for i in range(nc):
            cptr[i] = <const uint8_t *><const char *>keep[i]
            clen[i] = len(keep[i])
        for i in range(nports):
            ports[i] = in_ports[i]
        dp._lock()
        with nogil:
            while done < n:
                k = VDP_BURST if n - done >= VDP_BURST else <int>(n - done)
                for i in range(k):
                    flen = _pl_fz_frame(scratch, &st, cptr, clen, nc)
                    memset(&pkts[i], 0, sizeof(vdp_pkt))
                    pkts[i].data = region + i * slot_span + _PL_FZ_SLOT - flen
                    memcpy(pkts[i].data, scratch, flen)
                    pkts[i].len = flen
                    pkts[i].in_port = ports[_pl_rand(&st) % nports]
                vdp_dp_process_burst(dp.c, pkts, k, now)
                now += 50000               # 50 us per burst: meters refill
                done += k
                since_drain += k
                since_bump += k
                if since_drain >= drain_every:
                    while vdp_dp_upcall_peek(dp.c, &u) == 0:
                        upcalls_seen += 1
                        vdp_dp_upcall_pop(dp.c)
                    since_drain = 0
                if bump_every > 0 and since_bump >= bump_every:
                    vdp_dp_bump(dp.c)      # a control-plane change: cache turns stale
                    since_bump = 0
        dp._unlock()
    finally:
        free(cptr)
        free(clen)
        free(ports)
        free(scratch)
        munmap(region, maplen)
    return done, upcalls_seen


def fuzz_pipeline(Datapath dp not None, list corpus, long n, uint64_t seed=1, in_ports=None,
                  long drain_every=4096, long bump_every=100000):
    """Run n random and mutated frames (from corpus) through dp in bursts,
    each frame ending right before a PROT_NONE page, arriving on ports drawn
    from in_ports (default: every attached port).  Upcalls are drained in C
    every drain_every frames; the generation is bumped every bump_every.
    Returns (frames run, upcalls drained)."""
    if in_ports is None:
        in_ports = sorted(dp.ports())
    return _pl_fuzz_run(dp, corpus, n, seed, list(in_ports), drain_every, bump_every)


def bench_miss(Datapath dp not None, bytes frame, long n, uint32_t in_port=1, uint64_t seed=1):
    """Thread CPU ns per frame through the whole pipeline when every frame is
    an exact-match-cache miss: an IPv4 frame whose addresses and L4 ports
    are randomised each time (the classifier and translation run for each).
    """
    cdef uint8_t *buf
    cdef vdp_pkt pkt
    cdef uint32_t flen = len(frame)
    cdef uint64_t st = seed, r, t = vdp_dp_now_ns()
    cdef long i
    cdef double t0, t1
    if flen < 38 or flen > 2048:
        raise ValueError("an Ethernet/IPv4/L4 frame of 38..2048 bytes")
    buf = <uint8_t *>malloc(flen)
    if buf == NULL:
        raise MemoryError()
    memcpy(buf, <const char *>frame, flen)
    dp._lock()
    with nogil:
        t0 = vdp_plpxi_cpu_ns()
        for i in range(n):
            r = _pl_rand(&st)
            memcpy(buf + 26, &r, 8)          # ipv4 src, dst
            r = _pl_rand(&st)
            memcpy(buf + 34, &r, 4)          # l4 ports (no IP options)
            memset(&pkt, 0, sizeof(vdp_pkt))
            pkt.data = buf
            pkt.len = flen
            pkt.in_port = in_port
            vdp_dp_process_one(dp.c, &pkt, t)
        t1 = vdp_plpxi_cpu_ns()
    dp._unlock()
    free(buf)
    return (t1 - t0) / n if n else 0.0


def bench_dummy(Datapath dp not None, long n):
    """Thread CPU ns per frame of dp.run_dummy() over what the attached
    DummyPorts replay (DummyPort.set_replay): rx burst, parse, cache,
    program, tx, flush, all in one C loop."""
    cdef vdp_port *arr[VDP_MAX_PORTS + 1]
    cdef int np = dp._dummy_ports(arr), got
    cdef long total = 0
    cdef uint64_t t = vdp_dp_now_ns()
    cdef double t0, t1
    dp._lock()
    with nogil:
        t0 = vdp_plpxi_cpu_ns()
        while total < n:
            got = vdp_dp_poll_ports(dp.c, arr, np, dp._burst, t)
            if got <= 0:
                break
            total += got
        t1 = vdp_plpxi_cpu_ns()
    dp._unlock()
    return (t1 - t0) / total if total else 0.0, total
