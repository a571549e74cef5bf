# actions.pxi - model actions -> vdp_op, and the C declarations of the
# rewrite (actions.h), checksum (csum.h), group (group.h) and meter (meter.h)
# modules for the .pxi files included after this one (pipeline.pxi uses them:
# do not redeclare).  Also the Python test hooks of those modules:
# apply_actions / apply_actions_ex, complete_checksum, crc32c, remark_dscp,
# dscp_raise, MeterTester, GroupTester.  Nothing here runs per packet.
#
# Model classes (datapath/model.py) are recognised by class name: ext/
# imports nothing of ours.
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset
from cpython.bytes cimport PyBytes_FromStringAndSize

cdef extern from "actions.h" nogil:
    enum:
        VDP_ACT_OK
        VDP_ACT_INVALID_TTL
        VDP_ACT_SKIP
        VDP_ACT_NOROOM
    int vdp_pkt_make_writable(vdp_pkt *pkt, uint8_t *buf, uint32_t bufsize)
    int vdp_apply_rewrite(vdp_pkt *pkt, const vdp_op *op, uint8_t *scratch, uint32_t scratch_size)
    int vdp_op_is_rewrite(uint8_t type)
    int vdp_remark_dscp(vdp_pkt *pkt, uint8_t prec_level, uint8_t *scratch, uint32_t scratch_size)
    uint8_t vdp_dscp_raise(uint8_t dscp, uint8_t prec_level)
    uint8_t *vdp_op_val(vdp_op *op)

cdef extern from "csum.h" nogil:
    int vdp_csum_complete(vdp_pkt *pkt)
    int vdp_csum_complete_buf(const vdp_pkt *pkt, uint8_t *frame)
    uint32_t vdp_crc32c(const void *data, size_t len)
    void vdp_crc32c_use_hw(int on)
    uint16_t vdp_csum(const void *data, size_t len)

# Op types (vdp_types.h), private names so pipeline.pxi may declare its own.
cdef extern from "vdp_types.h" nogil:
    enum:
        _A_OP_OUTPUT "VDP_OP_OUTPUT"
        _A_OP_SET_FIELD "VDP_OP_SET_FIELD"
        _A_OP_PUSH_VLAN "VDP_OP_PUSH_VLAN"
        _A_OP_POP_VLAN "VDP_OP_POP_VLAN"
        _A_OP_PUSH_MPLS "VDP_OP_PUSH_MPLS"
        _A_OP_POP_MPLS "VDP_OP_POP_MPLS"
        _A_OP_PUSH_PBB "VDP_OP_PUSH_PBB"
        _A_OP_POP_PBB "VDP_OP_POP_PBB"
        _A_OP_SET_MPLS_TTL "VDP_OP_SET_MPLS_TTL"
        _A_OP_DEC_MPLS_TTL "VDP_OP_DEC_MPLS_TTL"
        _A_OP_SET_NW_TTL "VDP_OP_SET_NW_TTL"
        _A_OP_DEC_NW_TTL "VDP_OP_DEC_NW_TTL"
        _A_OP_COPY_TTL_OUT "VDP_OP_COPY_TTL_OUT"
        _A_OP_COPY_TTL_IN "VDP_OP_COPY_TTL_IN"
        _A_OP_SET_QUEUE "VDP_OP_SET_QUEUE"
        _A_OP_GROUP "VDP_OP_GROUP"
        _A_OP_METER "VDP_OP_METER"

cdef extern from "group.h" nogil:
    enum:
        VDP_GT_ALL
        VDP_GT_SELECT
        VDP_GT_INDIRECT
        VDP_GT_FF
        VDP_SELECT_SLOTS
    ctypedef struct vdp_bucket:
        uint16_t weight
        uint32_t watch_port
        uint32_t watch_group
        vdp_prog *prog
        uint64_t packet_count
        uint64_t byte_count
    ctypedef struct vdp_group:
        uint32_t id
        uint8_t type
        uint8_t live_any
        uint16_t n_buckets
        vdp_bucket *buckets
        uint16_t base_table[256]
        uint16_t live_table[256]
        uint64_t packet_count
        uint64_t byte_count
        uint32_t ref_count
        uint64_t created_ns
    ctypedef struct vdp_group_table:
        pass
    vdp_group *vdp_group_new(uint32_t id, uint8_t type, uint16_t n_buckets, uint64_t now_ns)
    void vdp_group_free(vdp_group *g)
    void vdp_group_rebuild(vdp_group *g, int (*port_live)(void *, uint32_t) noexcept, void *ctx)
    uint32_t vdp_select_hash(const vdp_key *key)
    int vdp_group_select(const vdp_group *g, const vdp_key *key)
    int vdp_group_select_hash(const vdp_group *g, uint32_t hash)
    int vdp_group_ff_choose(const vdp_group *g, int (*port_live)(void *, uint32_t) noexcept,
                            int (*group_live)(void *, uint32_t) noexcept, void *ctx)
    vdp_group_table *vdp_group_table_new()
    void vdp_group_table_free(vdp_group_table *t)
    vdp_group *vdp_group_find(const vdp_group_table *t, uint32_t id)
    int vdp_group_table_add(vdp_group_table *t, vdp_group *g)
    vdp_group *vdp_group_table_modify(vdp_group_table *t, vdp_group *g)
    vdp_group *vdp_group_table_remove(vdp_group_table *t, uint32_t id)
    size_t vdp_group_table_count(const vdp_group_table *t)
    size_t vdp_group_table_list(const vdp_group_table *t, vdp_group **out, size_t max)
    void vdp_group_table_rebuild(vdp_group_table *t, int (*port_live)(void *, uint32_t) noexcept,
                                 void *ctx)

cdef extern from "meter.h" nogil:
    enum:
        VDP_MF_KBPS
        VDP_MF_PKTPS
        VDP_MF_BURST
        VDP_MF_STATS
        VDP_MBT_DROP
        VDP_MBT_DSCP_REMARK
        VDP_METER_PASS
        VDP_METER_DROP
        VDP_METER_REMARK
        VDP_METER_MAX_BANDS
    ctypedef struct vdp_meter_band_cfg:
        uint8_t type
        uint8_t prec_level
        uint32_t rate
        uint32_t burst_size
    ctypedef struct vdp_meter_band:
        vdp_meter_band_cfg cfg
        uint64_t capacity
        uint64_t tokens
        uint64_t packet_count
        uint64_t byte_count
    ctypedef struct vdp_meter:
        uint32_t id
        uint16_t flags
        uint16_t n_bands
        uint64_t created_ns
        uint64_t packet_in_count
        uint64_t byte_in_count
        uint32_t ref_count
        vdp_meter_band bands[16]
    ctypedef struct vdp_meter_table:
        pass
    vdp_meter *vdp_meter_new(uint32_t id, uint16_t flags, const vdp_meter_band_cfg *bands,
                             uint16_t n_bands, uint64_t now_ns)
    void vdp_meter_free(vdp_meter *m)
    int vdp_meter_configure(vdp_meter *m, uint16_t flags, const vdp_meter_band_cfg *bands,
                            uint16_t n_bands)
    int vdp_meter_apply(vdp_meter *m, uint64_t now_ns, uint32_t pkt_len, uint8_t *remark_prec)
    uint64_t vdp_meter_duration_ns(const vdp_meter *m, uint64_t now_ns)
    vdp_meter_table *vdp_meter_table_new()
    void vdp_meter_table_free(vdp_meter_table *t)
    vdp_meter *vdp_meter_find(const vdp_meter_table *t, uint32_t id)
    int vdp_meter_table_add(vdp_meter_table *t, vdp_meter *m)
    vdp_meter *vdp_meter_table_remove(vdp_meter_table *t, uint32_t id)
    size_t vdp_meter_table_count(const vdp_meter_table *t)
    size_t vdp_meter_table_list(const vdp_meter_table *t, vdp_meter **out, size_t max)


# ------------------------------------------------------------ compilation
cdef dict _act_field_ids = {vdp_fields[i].name.decode(): i for i in range(VDP_F_COUNT)}

# push ethertypes OpenFlow 1.3 allows (OFPBAC_BAD_ARGUMENT otherwise)
cdef frozenset _act_vlan_types = frozenset((0x8100, 0x88a8))
cdef frozenset _act_mpls_types = frozenset((0x8847, 0x8848))


cdef inline uint32_t _act_u32(object v, str what) except? 0xffffffff:
    v = v.__index__()
    if v < 0 or v > 0xffffffff:
        raise ValueError(f"{what} {v} out of range")
    return v


cdef inline uint16_t _act_u16(object v, str what) except? 0xffff:
    v = v.__index__()
    if v < 0 or v > 0xffff:
        raise ValueError(f"{what} {v:#x} out of range")
    return v


cdef inline uint8_t _act_u8(object v, str what) except? 0xff:
    v = v.__index__()
    if v < 0 or v > 0xff:
        raise ValueError(f"{what} {v} out of range")
    return v


cdef int compile_action(object action, vdp_op *op) except -1:
    """Fill *op from one model action (datapath/model.py), or the Meter
    instruction.  Output/Group/Meter get arg (port, group id, meter id) and
    ptr NULL: the pipeline resolves pointers.  Raises ValueError for a bad
    argument (unknown or unsettable field, value too wide, push ethertype
    OpenFlow does not allow) and TypeError for something that is not an
    action."""
    cdef vdp_key k
    cdef int fid
    cdef str name = type(action).__name__
    memset(op, 0, sizeof(vdp_op))
    if name == "Output":
        op.type = _A_OP_OUTPUT
        op.arg = _act_u32(action.port, "output port")
        ml = action.max_len.__index__()
        op.arg16 = 0xffff if ml < 0 or ml > 0xffff else ml
    elif name == "SetField":
        fid = _act_field_ids.get(action.field, -1)
        if fid < 0:
            raise ValueError(f"unknown field {action.field!r}")
        if not vdp_fields[fid].settable:
            raise ValueError(f"field {action.field} is not settable")
        memset(&k, 0, sizeof(k))
        key_set_field(&k, fid, action.value)
        op.type = _A_OP_SET_FIELD
        op.field = fid
        memcpy(vdp_op_val(op), (<uint8_t *>&k) + vdp_fields[fid].offset, vdp_fields[fid].size)
    elif name == "PushVlan":
        op.type = _A_OP_PUSH_VLAN
        op.arg16 = _act_u16(action.ethertype, "push_vlan ethertype")
        if op.arg16 not in _act_vlan_types:
            raise ValueError(f"push_vlan ethertype {op.arg16:#06x} not 0x8100/0x88a8")
    elif name == "PopVlan":
        op.type = _A_OP_POP_VLAN
    elif name == "PushMpls":
        op.type = _A_OP_PUSH_MPLS
        op.arg16 = _act_u16(action.ethertype, "push_mpls ethertype")
        if op.arg16 not in _act_mpls_types:
            raise ValueError(f"push_mpls ethertype {op.arg16:#06x} not 0x8847/0x8848")
    elif name == "PopMpls":
        op.type = _A_OP_POP_MPLS
        op.arg16 = _act_u16(action.ethertype, "pop_mpls ethertype")
    elif name == "PushPbb":
        op.type = _A_OP_PUSH_PBB
        op.arg16 = _act_u16(action.ethertype, "push_pbb ethertype")
        if op.arg16 != 0x88e7:
            raise ValueError(f"push_pbb ethertype {op.arg16:#06x} not 0x88e7")
    elif name == "PopPbb":
        op.type = _A_OP_POP_PBB
    elif name == "SetMplsTtl":
        op.type = _A_OP_SET_MPLS_TTL
        op.arg = _act_u8(action.ttl, "mpls ttl")
    elif name == "DecMplsTtl":
        op.type = _A_OP_DEC_MPLS_TTL
    elif name == "SetNwTtl":
        op.type = _A_OP_SET_NW_TTL
        op.arg = _act_u8(action.ttl, "nw ttl")
    elif name == "DecNwTtl":
        op.type = _A_OP_DEC_NW_TTL
    elif name == "CopyTtlOut":
        op.type = _A_OP_COPY_TTL_OUT
    elif name == "CopyTtlIn":
        op.type = _A_OP_COPY_TTL_IN
    elif name == "Group":
        op.type = _A_OP_GROUP
        op.arg = _act_u32(action.group_id, "group id")
    elif name == "SetQueue":
        op.type = _A_OP_SET_QUEUE
        op.arg = _act_u32(action.queue_id, "queue id")
    elif name == "Meter":
        op.type = _A_OP_METER
        op.arg = _act_u32(action.meter_id, "meter id")
    else:
        raise TypeError(f"not an action: {action!r}")
    return 0


cdef vdp_prog *compile_prog(object actions) except NULL:
    """malloc'd vdp_prog holding the actions compiled in the given order
    (free() it; a group takes ownership of its buckets' programs)."""
    cdef list acts = list(actions)
    cdef Py_ssize_t n = len(acts), i
    cdef vdp_prog *p = <vdp_prog *>calloc(1, sizeof(vdp_prog) + n * sizeof(vdp_op))
    if p == NULL:
        raise MemoryError()
    try:
        for i in range(n):
            compile_action(acts[i], &p.ops[i])
    except BaseException:
        free(p)
        raise
    p.n = <uint32_t>n
    return p


# ------------------------------------------------------------ groups/meters
cdef int _act_port_live_set(void *ctx, uint32_t port) noexcept nogil:
    # ctx: a Python set of live port numbers (GroupTester)
    with gil:
        try:
            return 1 if port in <object>ctx else 0
        except BaseException:
            return 0


cdef vdp_group *group_from_spec(object spec, uint64_t now_ns) except NULL:
    """A new vdp_group from a model GroupSpec, bucket programs compiled
    (owned by the group).  Select table built with every port live: call
    vdp_group_rebuild with real liveness after.  Raises ValueError."""
    cdef list buckets = list(spec.buckets)
    cdef int t = spec.type
    cdef Py_ssize_t i
    cdef vdp_group *g
    if t < VDP_GT_ALL or t > VDP_GT_FF:
        raise ValueError(f"bad group type {t}")
    if len(buckets) > 0xffff:
        raise ValueError("too many buckets")
    if t == VDP_GT_INDIRECT and len(buckets) != 1:
        raise ValueError("an indirect group has exactly one bucket")
    g = vdp_group_new(_act_u32(spec.group_id, "group id"), t, len(buckets), now_ns)
    if g == NULL:
        raise MemoryError()
    try:
        for i in range(len(buckets)):
            b = buckets[i]
            g.buckets[i].weight = _act_u16(b.weight, "bucket weight")
            g.buckets[i].watch_port = _act_u32(b.watch_port, "watch_port")
            g.buckets[i].watch_group = _act_u32(b.watch_group, "watch_group")
            g.buckets[i].prog = compile_prog(b.actions)
    except BaseException:
        vdp_group_free(g)
        raise
    vdp_group_rebuild(g, NULL, NULL)
    return g


cdef int meter_bands_from_spec(object spec, vdp_meter_band_cfg *out) except -1:
    """Fill out[] (VDP_METER_MAX_BANDS entries) from a model MeterSpec;
    returns the band count.  Raises ValueError."""
    cdef list bands = list(spec.bands)
    cdef Py_ssize_t i
    if len(bands) > VDP_METER_MAX_BANDS:
        raise ValueError(f"at most {VDP_METER_MAX_BANDS} bands")
    for i in range(len(bands)):
        b = bands[i]
        if b.type != VDP_MBT_DROP and b.type != VDP_MBT_DSCP_REMARK:
            raise ValueError(f"bad meter band type {b.type}")
        out[i].type = b.type
        out[i].rate = _act_u32(b.rate, "band rate")
        out[i].burst_size = _act_u32(b.burst_size, "band burst_size")
        out[i].prec_level = _act_u8(b.prec_level, "prec_level")
    return len(bands)


cdef vdp_meter *meter_from_spec(object spec, uint64_t now_ns) except NULL:
    cdef vdp_meter_band_cfg cfg[16]
    cdef int n = meter_bands_from_spec(spec, cfg)
    cdef vdp_meter *m = vdp_meter_new(_act_u32(spec.meter_id, "meter id"),
                                      _act_u16(spec.flags, "meter flags"), cfg, n, now_ns)
    if m == NULL:
        raise MemoryError()
    return m


cdef dict meter_stats_dict(const vdp_meter *m, uint64_t now_ns):
    cdef int i
    return {
        "packet_in_count": m.packet_in_count,
        "byte_in_count": m.byte_in_count,
        "flow_count": m.ref_count,
        "duration_ns": vdp_meter_duration_ns(m, now_ns),
        "bands": [{"packet_count": m.bands[i].packet_count,
                   "byte_count": m.bands[i].byte_count} for i in range(m.n_bands)],
    }


cdef dict group_stats_dict(const vdp_group *g, uint64_t now_ns):
    cdef int i
    return {
        "packet_count": g.packet_count,
        "byte_count": g.byte_count,
        "ref_count": g.ref_count,
        "duration_ns": now_ns - g.created_ns if now_ns > g.created_ns else 0,
        "bucket_stats": [{"packet_count": g.buckets[i].packet_count,
                          "byte_count": g.buckets[i].byte_count} for i in range(g.n_buckets)],
    }


# ------------------------------------------------------------ test hooks
cdef inline object _act_off(uint16_t v):
    return None if v == VDP_NOOFF else v


def apply_actions_ex(bytes frame, list actions, uint32_t in_port=1, bint csum_partial=False,
                     int gso_type=0, int csum_start=0, int csum_offset=0, scratch_size=None):
    """Parse frame, then run every rewriting op of `actions` (model actions;
    others skipped) in order through vdp_apply_rewrite, the first one copying
    the frame into a scratch buffer.  Returns (frame or None, status, info):
    status 0, or VDP_ACT_SKIP (-1) when some op did not apply (frame still
    returned), VDP_ACT_INVALID_TTL (1) or VDP_ACT_NOROOM (-2) with frame
    None; info: the vdp_pkt offsets and checksum state after the last op."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef vdp_op op
    cdef uint32_t ss
    cdef uint8_t *scratch
    cdef int rc, status = 0
    cdef bytes orig = bytes(frame)
    ss = len(frame) + VDP_HEADROOM + 256 if scratch_size is None else scratch_size
    scratch = <uint8_t *>malloc(ss if ss else 1)
    if scratch == NULL:
        raise MemoryError()
    try:
        memset(&pkt, 0, sizeof(pkt))
        pkt.data = <uint8_t *><const char *>frame     # read-only until a rewrite
        pkt.len = len(frame)
        pkt.in_port = in_port
        vdp_parse(&pkt, &key)
        pkt.csum_partial = csum_partial
        pkt.gso_type = gso_type
        pkt.csum_start = csum_start
        pkt.csum_offset = csum_offset
        for a in actions:
            compile_action(a, &op)
            if not vdp_op_is_rewrite(op.type):
                continue
            rc = vdp_apply_rewrite(&pkt, &op, scratch, ss)
            if rc == VDP_ACT_INVALID_TTL or rc == VDP_ACT_NOROOM:
                status = rc
                break
            if rc == VDP_ACT_SKIP:
                status = rc
        if frame != orig:
            raise AssertionError("a rewrite wrote into the read-only input frame")
        info = {
            "vlan_off": _act_off(pkt.vlan_off), "pbb_off": _act_off(pkt.pbb_off),
            "mpls_off": _act_off(pkt.mpls_off), "l3_off": _act_off(pkt.l3_off),
            "l4_off": _act_off(pkt.l4_off), "nd_sll_off": _act_off(pkt.nd_sll_off),
            "nd_tll_off": _act_off(pkt.nd_tll_off), "ethtype_off": _act_off(pkt.ethtype_off),
            "n_vlan": pkt.n_vlan, "csum_partial": pkt.csum_partial,
            "csum_start": pkt.csum_start, "csum_offset": pkt.csum_offset,
            "rewritten": pkt.rewritten,
            "headroom": (pkt.data - pkt.buf) if pkt.rewritten else None,
        }
        if status == VDP_ACT_INVALID_TTL or status == VDP_ACT_NOROOM:
            return None, status, info
        return PyBytes_FromStringAndSize(<const char *>pkt.data, pkt.len), status, info
    finally:
        free(scratch)


def apply_actions(bytes frame, list actions, uint32_t in_port=1, **kw):
    """apply_actions_ex without the info: (frame or None, status)."""
    out, status, _ = apply_actions_ex(frame, actions, in_port, **kw)
    return out, status


def complete_checksum(bytes frame, int csum_start=0, int csum_offset=0, int gso_type=0):
    """vdp_csum_complete on a parsed copy of frame marked csum_partial:
    (frame, rc)."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef bytearray buf = bytearray(frame)
    cdef uint8_t *p = buf
    memset(&pkt, 0, sizeof(pkt))
    pkt.data = p
    pkt.len = len(buf)
    vdp_parse(&pkt, &key)
    pkt.csum_partial = 1
    pkt.gso_type = gso_type
    pkt.csum_start = csum_start
    pkt.csum_offset = csum_offset
    rc = vdp_csum_complete(&pkt)
    if rc == 0 and pkt.csum_partial:
        raise AssertionError("csum_partial still set after completion")
    return bytes(buf), rc


def crc32c(bytes data, bint hw=True):
    """CRC32c of data (hw=False forces the slicing-by-8 path)."""
    vdp_crc32c_use_hw(1 if hw else 0)
    try:
        return vdp_crc32c(<const char *>data, len(data))
    finally:
        vdp_crc32c_use_hw(1)


def inet_checksum(bytes data):
    """RFC 1071 checksum (complemented) of data."""
    return vdp_csum(<const char *>data, len(data))


def remark_dscp(bytes frame, int prec_level):
    """vdp_remark_dscp on a parsed frame: (frame, rc)."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef uint32_t ss = len(frame) + VDP_HEADROOM
    cdef uint8_t *scratch = <uint8_t *>malloc(ss)
    if scratch == NULL:
        raise MemoryError()
    try:
        memset(&pkt, 0, sizeof(pkt))
        pkt.data = <uint8_t *><const char *>frame
        pkt.len = len(frame)
        vdp_parse(&pkt, &key)
        rc = vdp_remark_dscp(&pkt, prec_level, scratch, ss)
        return PyBytes_FromStringAndSize(<const char *>pkt.data, pkt.len), rc
    finally:
        free(scratch)


def dscp_raise(int dscp, int prec_level):
    return vdp_dscp_raise(dscp, prec_level)


cdef class MeterTester:
    """One vdp_meter built from a model MeterSpec; time is passed in."""
    cdef vdp_meter *m

    def __cinit__(self, spec, uint64_t now_ns=0):
        self.m = meter_from_spec(spec, now_ns)

    def __dealloc__(self):
        if self.m != NULL:
            vdp_meter_free(self.m)

    def offer(self, uint64_t now_ns, uint32_t length):
        """Meter one packet: 'pass', 'drop' or ('remark', prec_level)."""
        cdef uint8_t prec = 0
        cdef int r = vdp_meter_apply(self.m, now_ns, length, &prec)
        if r == VDP_METER_DROP:
            return "drop"
        if r == VDP_METER_REMARK:
            return ("remark", prec)
        return "pass"

    def modify(self, spec):
        cdef vdp_meter_band_cfg cfg[16]
        cdef int n = meter_bands_from_spec(spec, cfg)
        if vdp_meter_configure(self.m, spec.flags, cfg, n) != 0:
            raise ValueError("bad meter")

    def stats(self, uint64_t now_ns=0):
        return meter_stats_dict(self.m, now_ns)

    def capacities(self):
        """Bucket sizes in token units (1e-6 bit for kbps, 1e-9 packet for pktps)."""
        return [self.m.bands[i].capacity for i in range(self.m.n_bands)]


cdef int _act_key_from_fields(vdp_key *k, dict fields) except -1:
    memset(k, 0, sizeof(vdp_key))
    for name, value in fields.items():
        fid = _act_field_ids.get(name, -1)
        if fid < 0:
            raise ValueError(f"unknown field {name!r}")
        key_set_field(k, fid, value)
    return 0


cdef class GroupTester:
    """One vdp_group built from a model GroupSpec (bucket actions compiled)."""
    cdef vdp_group *g
    cdef object live

    def __cinit__(self, spec, live_ports=None):
        self.g = group_from_spec(spec, 0)
        self.set_live(live_ports)

    def __dealloc__(self):
        if self.g != NULL:
            vdp_group_free(self.g)

    def set_live(self, live_ports=None):
        """Rebuild the select table with these ports live (None = all)."""
        self.live = None if live_ports is None else set(live_ports)
        if self.live is None:
            vdp_group_rebuild(self.g, NULL, NULL)
        else:
            vdp_group_rebuild(self.g, _act_port_live_set, <void *>self.live)

    def hash(self, dict fields):
        cdef vdp_key k
        _act_key_from_fields(&k, fields)
        return vdp_select_hash(&k)

    def select(self, dict fields):
        """Bucket index for a key given as {field name: model value}, -1 if none."""
        cdef vdp_key k
        _act_key_from_fields(&k, fields)
        return vdp_group_select(self.g, &k)

    def ff(self, live_ports, live_groups=None):
        """Fast-failover choice with these ports (and groups; None = all) live."""
        ports = set(live_ports)
        if live_groups is None:
            return vdp_group_ff_choose(self.g, _act_port_live_set, NULL, <void *>ports)
        groups = set(live_groups)
        # one ctx for both callbacks: ports and groups never share a callback
        return _act_ff_two(self.g, ports, groups)

    def table(self):
        """The live select table: 256 bucket indices (empty when no live bucket)."""
        if not self.g.live_any:
            return []
        return [self.g.live_table[i] for i in range(VDP_SELECT_SLOTS)]

    def base_table(self):
        return [self.g.base_table[i] for i in range(VDP_SELECT_SLOTS)]

    def counts(self):
        """Slots per bucket in the live table."""
        c = [0] * self.g.n_buckets
        for b in self.table():
            c[b] += 1
        return c

    def prog_lengths(self):
        return [self.g.buckets[i].prog.n for i in range(self.g.n_buckets)]


cdef object _act_ff_groups = None


cdef int _act_group_live_set(void *ctx, uint32_t gid) noexcept nogil:
    with gil:
        try:
            return 1 if gid in _act_ff_groups else 0
        except BaseException:
            return 0


cdef int _act_ff_two(vdp_group *g, object ports, object groups) except -2:
    global _act_ff_groups
    _act_ff_groups = groups
    try:
        return vdp_group_ff_choose(g, _act_port_live_set, _act_group_live_set, <void *>ports)
    finally:
        _act_ff_groups = None


cdef class GroupTableTester:
    """A vdp_group_table driven from model GroupSpecs (tests)."""
    cdef vdp_group_table *t

    def __cinit__(self):
        self.t = vdp_group_table_new()
        if self.t == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self.t != NULL:
            vdp_group_table_free(self.t)

    def add(self, spec, uint64_t now_ns=0):
        """True when added, False when the id exists."""
        cdef vdp_group *g = group_from_spec(spec, now_ns)
        if vdp_group_table_add(self.t, g) != 0:
            vdp_group_free(g)
            return False
        return True

    def modify(self, spec):
        cdef vdp_group *g = group_from_spec(spec, 0)
        if vdp_group_table_modify(self.t, g) == NULL:
            vdp_group_free(g)
            return False
        return True

    def remove(self, uint32_t gid):
        cdef vdp_group *g = vdp_group_table_remove(self.t, gid)
        if g == NULL:
            return False
        vdp_group_free(g)
        return True

    def address(self, uint32_t gid):
        """The group's C address (0 if absent): stable across modify."""
        return <size_t>vdp_group_find(self.t, gid)

    def describe(self, uint32_t gid):
        cdef vdp_group *g = vdp_group_find(self.t, gid)
        if g == NULL:
            return None
        return {"type": g.type, "n_buckets": g.n_buckets,
                "weights": [g.buckets[i].weight for i in range(g.n_buckets)],
                "stats": group_stats_dict(g, 0)}

    def count_packet(self, uint32_t gid, int bucket, uint32_t length):
        """What the pipeline does per packet: count the group and a bucket."""
        cdef vdp_group *g = vdp_group_find(self.t, gid)
        g.packet_count += 1
        g.byte_count += length
        g.buckets[bucket].packet_count += 1
        g.buckets[bucket].byte_count += length

    def ids(self):
        cdef size_t n = vdp_group_table_count(self.t), i
        cdef vdp_group **out = <vdp_group **>malloc((n + 1) * sizeof(vdp_group *))
        if out == NULL:
            raise MemoryError()
        try:
            n = vdp_group_table_list(self.t, out, n)
            return [out[i].id for i in range(n)]
        finally:
            free(out)


cdef class MeterTableTester:
    """A vdp_meter_table driven from model MeterSpecs (tests)."""
    cdef vdp_meter_table *t

    def __cinit__(self):
        self.t = vdp_meter_table_new()
        if self.t == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self.t != NULL:
            vdp_meter_table_free(self.t)

    def add(self, spec, uint64_t now_ns=0):
        cdef vdp_meter *m = meter_from_spec(spec, now_ns)
        if vdp_meter_table_add(self.t, m) != 0:
            vdp_meter_free(m)
            return False
        return True

    def modify(self, spec):
        cdef vdp_meter_band_cfg cfg[16]
        cdef int n = meter_bands_from_spec(spec, cfg)
        cdef vdp_meter *m = vdp_meter_find(self.t, spec.meter_id)
        if m == NULL:
            return False
        vdp_meter_configure(m, spec.flags, cfg, n)
        return True

    def remove(self, uint32_t mid):
        cdef vdp_meter *m = vdp_meter_table_remove(self.t, mid)
        if m == NULL:
            return False
        vdp_meter_free(m)
        return True

    def address(self, uint32_t mid):
        return <size_t>vdp_meter_find(self.t, mid)

    def offer(self, uint32_t mid, uint64_t now_ns, uint32_t length):
        cdef uint8_t prec = 0
        cdef vdp_meter *m = vdp_meter_find(self.t, mid)
        if m == NULL:
            raise KeyError(mid)
        r = vdp_meter_apply(m, now_ns, length, &prec)
        return "drop" if r == VDP_METER_DROP else ("remark", prec) if r == VDP_METER_REMARK else "pass"

    def stats(self, uint32_t mid, uint64_t now_ns=0):
        cdef vdp_meter *m = vdp_meter_find(self.t, mid)
        return None if m == NULL else meter_stats_dict(m, now_ns)

    def ids(self):
        cdef size_t n = vdp_meter_table_count(self.t), i
        cdef vdp_meter **out = <vdp_meter **>malloc((n + 1) * sizeof(vdp_meter *))
        if out == NULL:
            raise MemoryError()
        try:
            n = vdp_meter_table_list(self.t, out, n)
            return [out[i].id for i in range(n)]
        finally:
            free(out)
