# parse.pxi - flow key <-> Python ints, and the parser's test/bench/fuzz hooks.
#
# Included by ext/_fastpath.pyx after cdefs.pxi.  Later .pxi files use:
#   key_set_field(k, field, value)  model int -> key storage (+ presence bit)
#   key_set_mask(m, field, mask)    mask (None = exact) -> mask storage (+ bit)
#   key_get_field(k, field)         key storage -> model int
# Python-visible hooks (tests and bench only, never the packet path):
#   parse_frame, reparse_frame, parse_frame_words, key_words_from_fields,
#   key_fields_from_words, field_table, bench_parse, fuzz_parse, key_hash_py,
#   key_hash_words_py, bench_key_hash.
from libc.string cimport memcpy, memset, memcmp
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC
from posix.mman cimport mmap, munmap, mprotect, PROT_READ, PROT_WRITE, PROT_NONE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FAILED
from posix.unistd cimport sysconf, _SC_PAGESIZE
from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Malloc, PyMem_Free

cdef extern from "vdp_parse.h" nogil:
    uint32_t vdp_key_hash_words(const vdp_key *k, const vdp_key *mask,
                                const uint8_t *words, int nwords, uint32_t basis)
    const uint64_t VDP_ALWAYS_PRESENT


# ------------------------------------------------------------ conversions
cdef inline const vdp_field_info *_field_info(int field) except NULL:
    if field < 0 or field >= VDP_F_COUNT:
        raise ValueError(f"bad field id {field}")
    return &vdp_fields[field]


cdef int _store(vdp_key *k, const vdp_field_info *fi, object value) except -1:
    cdef uint8_t *dst = (<uint8_t *>k) + fi.offset
    cdef bytes b
    cdef uint64_t v
    if fi.is_bytes:
        b = value.to_bytes(fi.size, "big")
        memcpy(dst, <const char *>b, fi.size)
        return 0
    v = value
    if fi.size == 1:
        (<uint8_t *>dst)[0] = <uint8_t>v
    elif fi.size == 2:
        (<uint16_t *>dst)[0] = <uint16_t>v
    elif fi.size == 4:
        (<uint32_t *>dst)[0] = <uint32_t>v
    else:
        (<uint64_t *>dst)[0] = v
    return 0


cdef int key_set_field(vdp_key *k, int field, object value) except -1:
    """Store a model value (Python int: MAC 48-bit, IPv6 128-bit, others
    plain; vlan_vid with OFPVID_PRESENT) into k's storage for `field`, and set
    the field's presence bit.  Raises ValueError when it does not fit."""
    cdef const vdp_field_info *fi = _field_info(field)
    value = value.__index__()
    if value < 0 or (value >> fi.nbits) != 0:
        raise ValueError(f"value {value:#x} does not fit field "
                         f"{fi.name.decode()} ({fi.nbits} bits)")
    _store(k, fi, value)
    k.present |= (<uint64_t>1) << field
    return 0


cdef int key_set_mask(vdp_key *m, int field, object mask) except -1:
    """Store a field's mask into a mask key (same storage format as values):
    None means exact match (all nbits set).  Sets the presence bit in the
    mask so a rule only matches frames that carry the field."""
    cdef const vdp_field_info *fi = _field_info(field)
    cdef object one = 1
    full = (one << fi.nbits) - 1          # Python ints: nbits may be 128
    if mask is None:
        mask = full
    else:
        mask = mask.__index__()
        if mask < 0 or (mask >> fi.nbits) != 0:
            raise ValueError(f"mask {mask:#x} does not fit field "
                             f"{fi.name.decode()} ({fi.nbits} bits)")
        if mask != full and not fi.maskable:
            raise ValueError(f"field {fi.name.decode()} cannot be masked")
    _store(m, fi, mask)
    m.present |= (<uint64_t>1) << field
    return 0


cdef object key_get_field(const vdp_key *k, int field):
    """The model value (Python int) of `field` in k's storage."""
    cdef const vdp_field_info *fi
    cdef const uint8_t *src
    if field < 0 or field >= VDP_F_COUNT:
        raise ValueError(f"bad field id {field}")
    fi = &vdp_fields[field]
    src = (<const uint8_t *>k) + fi.offset
    if fi.is_bytes:
        return int.from_bytes(PyBytes_FromStringAndSize(<const char *>src, fi.size), "big")
    if fi.size == 1:
        return (<const uint8_t *>src)[0]
    if fi.size == 2:
        return (<const uint16_t *>src)[0]
    if fi.size == 4:
        return (<const uint32_t *>src)[0]
    return (<const uint64_t *>src)[0]


# ------------------------------------------------------------ test hooks
cdef inline object _off(uint16_t v):
    return None if v == VDP_NOOFF else v


cdef tuple _parse_result(int rc, vdp_pkt *pkt, vdp_key *key):
    cdef int f
    if (rc != 0) != (pkt.malformed != 0):
        raise RuntimeError(f"vdp_parse returned {rc} but malformed={pkt.malformed}")
    fields = {}
    for f in range(VDP_F_COUNT):
        if key.present & ((<uint64_t>1) << f):
            fields[vdp_fields[f].name.decode()] = key_get_field(key, f)
    offsets = {
        "vlan_off": _off(pkt.vlan_off), "pbb_off": _off(pkt.pbb_off),
        "mpls_off": _off(pkt.mpls_off), "l3_off": _off(pkt.l3_off),
        "l4_off": _off(pkt.l4_off), "nd_sll_off": _off(pkt.nd_sll_off),
        "nd_tll_off": _off(pkt.nd_tll_off), "ethtype_off": _off(pkt.ethtype_off),
        "n_vlan": pkt.n_vlan,
    }
    return fields, offsets, bool(pkt.malformed)


def parse_frame(bytes frame, uint32_t in_port=1):
    """Parse one frame with vdp_parse: (fields, offsets, malformed).
    fields maps model field names to ints for every field present in the
    frame; offsets maps vdp_pkt offset names to ints (None when absent)."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef int rc
    memset(&pkt, 0, sizeof(pkt))
    memset(&key, 0xa5, sizeof(key))      # vdp_parse must clear what it does not set
    pkt.data = <uint8_t *><const char *>frame
    pkt.len = len(frame)
    pkt.in_port = in_port
    rc = vdp_parse(&pkt, &key)
    return _parse_result(rc, &pkt, &key)


def reparse_frame(bytes frame, uint32_t in_port=1, uint64_t metadata=0,
                  uint64_t tunnel_id=0):
    """vdp_reparse on a key that already holds in_port/metadata/tunnel_id
    and garbage elsewhere; same result shape as parse_frame."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef int rc
    memset(&pkt, 0, sizeof(pkt))
    memset(&key, 0x5a, sizeof(key))
    key.in_port = in_port
    key.in_phy_port = in_port
    key.metadata = metadata
    key.tunnel_id = tunnel_id
    pkt.data = <uint8_t *><const char *>frame
    pkt.len = len(frame)
    pkt.in_port = 0xdead                  # reparse keeps the key's in_port
    rc = vdp_reparse(&pkt, &key)
    return _parse_result(rc, &pkt, &key)


def parse_frame_words(bytes frame, uint32_t in_port=1):
    """The 19 key words vdp_parse produces for `frame` (ints)."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    memset(&pkt, 0, sizeof(pkt))
    memset(&key, 0xa5, sizeof(key))      # vdp_parse must clear what it does not set
    pkt.data = <uint8_t *><const char *>frame
    pkt.len = len(frame)
    pkt.in_port = in_port
    vdp_parse(&pkt, &key)
    return [key.w[i] for i in range(VDP_KEY_WORDS)]


def key_words_from_fields(dict fields, dict masks=None):
    """Build a value key (and a mask key) from model field values with
    key_set_field/key_set_mask: returns (value words, mask words).  Fields
    missing from `masks` get an exact mask."""
    cdef vdp_key key, m
    cdef int f
    memset(&key, 0, sizeof(key))
    memset(&m, 0, sizeof(m))
    masks = masks or {}
    for name, value in fields.items():
        f = _field_id(name)
        key_set_field(&key, f, value)
        key_set_mask(&m, f, masks.get(name))
    return ([key.w[i] for i in range(VDP_KEY_WORDS)],
            [m.w[i] for i in range(VDP_KEY_WORDS)])


def key_fields_from_words(words):
    """key_get_field for every field whose presence bit is set in words[0]."""
    cdef vdp_key key
    cdef int f
    if len(words) != VDP_KEY_WORDS:
        raise ValueError("a key is 19 words")
    for f in range(VDP_KEY_WORDS):
        key.w[f] = words[f]
    return {vdp_fields[f].name.decode(): key_get_field(&key, f)
            for f in range(VDP_F_COUNT) if key.present & ((<uint64_t>1) << f)}


def field_table():
    """vdp_fields as tuples (name, offset, size, nbits, maskable, settable,
    is_bytes), in field id order."""
    cdef int f
    return [(vdp_fields[f].name.decode(), vdp_fields[f].offset, vdp_fields[f].size,
             vdp_fields[f].nbits, bool(vdp_fields[f].maskable),
             bool(vdp_fields[f].settable), bool(vdp_fields[f].is_bytes))
            for f in range(VDP_F_COUNT)]


cdef dict _field_ids = None


cdef int _field_id(str name) except -1:
    global _field_ids
    cdef int f
    if _field_ids is None:
        _field_ids = {vdp_fields[f].name.decode(): f for f in range(VDP_F_COUNT)}
    try:
        return _field_ids[name]
    except KeyError:
        raise ValueError(f"unknown field {name!r}") from None


cdef inline double _now_ns() noexcept nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec * 1e9 + ts.tv_nsec


cdef uint64_t _parse_sink = 0   # keeps bench results observable


def bench_parse(bytes frame, long n):
    """Parse `frame` n times in a C loop (GIL released); ns per parse."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef long i
    cdef uint64_t acc = 0
    cdef double t0, t1
    global _parse_sink
    if n <= 0:
        raise ValueError("n must be positive")
    memset(&pkt, 0, sizeof(pkt))
    pkt.data = <uint8_t *><const char *>frame
    pkt.len = len(frame)
    pkt.in_port = 1
    with nogil:
        t0 = _now_ns()
        for i in range(n):
            vdp_parse(&pkt, &key)
            acc += key.present
        t1 = _now_ns()
    _parse_sink = acc
    return (t1 - t0) / n


def key_hash_py(words, uint32_t basis=0):
    """vdp_key_hash of a key given as 19 ints (one per 64-bit word)."""
    cdef vdp_key key
    cdef int i
    if len(words) != VDP_KEY_WORDS:
        raise ValueError("a key is 19 words")
    for i in range(VDP_KEY_WORDS):
        key.w[i] = words[i]
    return vdp_key_hash(&key, basis)


def key_hash_words_py(words, mask, idx, uint32_t basis=0):
    """vdp_key_hash_words(key, mask, idx) with keys given as 19 ints."""
    cdef vdp_key key, m
    cdef uint8_t widx[VDP_KEY_WORDS]
    cdef int i
    if len(words) != VDP_KEY_WORDS or len(mask) != VDP_KEY_WORDS:
        raise ValueError("a key is 19 words")
    if len(idx) > VDP_KEY_WORDS:
        raise ValueError("too many word indices")
    for i in range(VDP_KEY_WORDS):
        key.w[i] = words[i]
        m.w[i] = mask[i]
    for i in range(len(idx)):
        if not 0 <= idx[i] < VDP_KEY_WORDS:
            raise ValueError("word index out of range")
        widx[i] = idx[i]
    return vdp_key_hash_words(&key, &m, widx, len(idx), basis)


def bench_key_hash(bytes frame, long n):
    """ns per vdp_key_hash of the key parsed from `frame` (C loop)."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef long i
    cdef uint32_t acc = 0
    cdef double t0, t1
    global _parse_sink
    if n <= 0:
        raise ValueError("n must be positive")
    memset(&pkt, 0, sizeof(pkt))
    pkt.data = <uint8_t *><const char *>frame
    pkt.len = len(frame)
    vdp_parse(&pkt, &key)
    with nogil:
        t0 = _now_ns()
        for i in range(n):
            key.w[7] += 1                 # a new key each time (tp ports word)
            acc += vdp_key_hash(&key, acc)
        t1 = _now_ns()
    _parse_sink = acc
    return (t1 - t0) / n


# ------------------------------------------------------------ fuzzing
# Frames are built in a scratch buffer, then copied so their last byte sits
# right before a PROT_NONE page: any read past pkt->len faults.

cdef enum:
    _FZ_SCRATCH = 4096
    _FZ_MAXRAND = 1600

cdef uint16_t[9] _fz_etypes = [0x0800, 0x86dd, 0x0806, 0x8100, 0x88a8,
                               0x9100, 0x8847, 0x8848, 0x88e7]
cdef uint8_t[12] _fz_v6next = [0, 43, 44, 50, 51, 59, 60, 6, 17, 58, 132, 60]
cdef uint8_t[6] _fz_v4proto = [6, 17, 132, 1, 58, 47]
cdef uint8_t[8] _fz_bytes = [0, 0xff, 1, 0x80, 0x7f, 0x45, 0x60, 8]


cdef inline uint64_t _fz_rand(uint64_t *s) noexcept nogil:
    # splitmix64
    cdef uint64_t z
    s[0] += 0x9e3779b97f4a7c15ULL
    z = s[0]
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL
    return z ^ (z >> 31)


cdef inline void _fz_fill(uint8_t *b, uint32_t n, uint64_t *s) noexcept nogil:
    cdef uint32_t i = 0
    cdef uint64_t r
    while i + 8 <= n:
        r = _fz_rand(s)
        memcpy(b + i, &r, 8)
        i += 8
    r = _fz_rand(s)
    while i < n:
        b[i] = <uint8_t>r
        r >>= 8
        i += 1


cdef inline void _fz_put16(uint8_t *b, uint32_t v) noexcept nogil:
    b[0] = <uint8_t>(v >> 8)
    b[1] = <uint8_t>v


cdef uint32_t _fz_structured(uint8_t *b, uint64_t *s) noexcept nogil:
    """A frame with plausible headers and random contents: random tags,
    ethertype from the parser's list, IPv4/IPv6 (+ extension chain)/ARP
    headers with random lengths.  Returns the natural frame length; b holds
    _FZ_SCRATCH random bytes around it."""
    cdef uint32_t off = 12, i, n, hl, start
    cdef uint64_t r = _fz_rand(s)
    cdef uint16_t et
    cdef uint8_t nxt
    _fz_fill(b, 2048, s)
    n = r % 3                                   # 0..2 tags (sometimes 3)
    if (r >> 8) % 16 == 0:
        n = 3
    for i in range(n):
        _fz_put16(b + off, _fz_etypes[3 + (r >> (12 + 2 * i)) % 3])
        off += 4
    et = _fz_etypes[(r >> 20) % 9]
    _fz_put16(b + off, et)
    off += 2
    r = _fz_rand(s)
    if et == 0x0800:
        if r % 4 != 0:
            b[off] = 0x45 if r % 3 else <uint8_t>(0x40 | ((r >> 4) % 16))
        b[off + 9] = _fz_v4proto[(r >> 8) % 6]
        if (r >> 12) % 4 != 0:
            b[off + 6] = b[off + 6] & 0x20     # mostly unfragmented
            b[off + 7] = 0
        hl = (b[off] & 0x0f) * 4
        if (r >> 16) % 4 != 0:
            _fz_put16(b + off + 2, hl + 8 + (r >> 20) % 64)
        return off + hl + 8 + (r >> 20) % 64
    if et == 0x86dd:
        start = off
        if r % 8 != 0:
            b[off] = 0x60 | (b[off] & 0x0f)
        b[off + 6] = _fz_v6next[(r >> 4) % 12]
        nxt = b[off + 6]
        off += 40
        for i in range(8):                    # extension header chain
            if nxt not in (0, 43, 44, 51, 60):
                break
            r = _fz_rand(s)
            b[off] = _fz_v6next[r % 12]
            if nxt == 44:
                hl = 8
                if (r >> 8) % 4 != 0:
                    b[off + 2] = 0
                    b[off + 3] = b[off + 3] & 7  # first fragment mostly
            elif nxt == 51:
                b[off + 1] = (r >> 8) % 6
                hl = (b[off + 1] + 2) * 4
            else:
                b[off + 1] = (r >> 8) % 4
                hl = (b[off + 1] + 1) * 8
            nxt = b[off]
            off += hl
        if nxt == 58:                         # ICMPv6, often ND with options
            r = _fz_rand(s)
            if r % 2:
                b[off] = 135 + r % 2
                b[off + 1] = 0 if (r >> 4) % 4 else 1
                for i in range(3):
                    b[off + 24 + 8 * i] = 1 + (r >> (8 + i)) % 2
                    b[off + 25 + 8 * i] = 1 if (r >> (12 + i)) % 8 else (r >> 16) % 3
                off += 24 + 8 * ((r >> 20) % 4)
        n = off + 8 + _fz_rand(s) % 32
        if _fz_rand(s) % 4 != 0:
            _fz_put16(b + start + 4, n - start - 40)
        return n
    if et == 0x0806:
        if r % 4 != 0:
            memcpy(b + off, b"\x00\x01\x08\x00\x06\x04", 6)
        return off + 28
    return off + 4 + r % 40


cdef inline uint32_t _fz_mutate(uint8_t *b, uint32_t n, uint64_t *s) noexcept nogil:
    """Flip bits / overwrite bytes of b[0..n), mostly in the headers."""
    cdef uint64_t r = _fz_rand(s)
    cdef uint32_t k = 1 + r % 8, i, pos, span
    if n == 0:
        return 0
    for i in range(k):
        r = _fz_rand(s)
        span = n if n < 128 or r % 4 == 0 else 128
        pos = (r >> 8) % span
        if r % 2:
            b[pos] ^= <uint8_t>(1 << ((r >> 40) % 8))
        else:
            b[pos] = _fz_bytes[(r >> 40) % 8] if (r >> 44) % 2 else <uint8_t>(r >> 48)
    return n


def fuzz_parse(list corpus, long n, unsigned int seed=1):
    """Run n random and mutated frames through vdp_parse (and vdp_reparse,
    whose key must equal vdp_parse's) with every frame ending right before a
    PROT_NONE page.  Returns counts: total, malformed, ok (total = malformed +
    ok), and consistency failures: inconsistent (return value vs
    pkt->malformed), bad_offsets (an offset outside the frame), bad_present
    (always-present bits missing), reparse_mismatch."""
    cdef long page = sysconf(_SC_PAGESIZE)
    cdef size_t maplen = 3 * page
    cdef uint8_t *region
    cdef uint8_t *guard
    cdef uint8_t *data
    cdef uint8_t scratch[_FZ_SCRATCH]
    cdef vdp_pkt pkt
    cdef vdp_key key, key2
    cdef uint64_t st = seed * 0x2545f4914f6cdd1dULL + 1
    cdef uint64_t r
    cdef long i, total = 0, nmal = 0, nok = 0, ninc = 0, nbadoff = 0
    cdef long nbadpres = 0, nremis = 0
    cdef int rc, rc2, ncorp = len(corpus), mode, ci, j
    cdef uint32_t flen, clen
    cdef const uint8_t **cptr = NULL
    cdef uint32_t *clens = NULL
    cdef uint16_t offs[8]
    cdef list keep = []

    if n < 0:
        raise ValueError("n must be >= 0")
    for fr in corpus:
        if not isinstance(fr, bytes) or len(fr) > 2 * page or len(fr) > _FZ_SCRATCH - 256:
            raise ValueError("corpus entries must be bytes of at most 3840 bytes")
        keep.append(fr)
    region = <uint8_t *>mmap(NULL, maplen, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if <void *>region == MAP_FAILED:
        raise OSError("mmap failed")
    guard = region + 2 * page
    if mprotect(guard, page, PROT_NONE) != 0:
        munmap(region, maplen)
        raise OSError("mprotect failed")
    cptr = <const uint8_t **>PyMem_Malloc(sizeof(uint8_t *) * (ncorp + 1))
    clens = <uint32_t *>PyMem_Malloc(sizeof(uint32_t) * (ncorp + 1))
    if cptr == NULL or clens == NULL:
        PyMem_Free(cptr)
        PyMem_Free(clens)
        munmap(region, maplen)
        raise MemoryError()
    for ci in range(ncorp):
        cptr[ci] = <const uint8_t *><const char *>keep[ci]
        clens[ci] = len(keep[ci])
    try:
        with nogil:
            for i in range(n):
                r = _fz_rand(&st)
                mode = r % 8
                if ncorp == 0 and (mode >= 1 and mode <= 4 or mode == 7):
                    mode = 0
                if mode == 0:                       # random bytes, random length
                    flen = (r >> 8) % (_FZ_MAXRAND + 1)
                    _fz_fill(scratch, flen, &st)
                elif mode == 5 or mode == 6:        # structured random
                    flen = _fz_structured(scratch, &st)
                    if mode == 6:
                        flen = (r >> 8) % (flen + 1)
                    elif (r >> 8) % 4 == 0:
                        flen = _fz_mutate(scratch, flen, &st)
                else:
                    ci = (r >> 8) % ncorp
                    clen = clens[ci]
                    memcpy(scratch, cptr[ci], clen)
                    flen = clen
                    if mode == 1:                   # truncation
                        flen = (r >> 24) % (clen + 1)
                    elif mode == 2 or mode == 3:    # bit flips / byte sets
                        _fz_mutate(scratch, flen, &st)
                    elif mode == 4:
                        _fz_mutate(scratch, flen, &st)
                        flen = (r >> 24) % (clen + 1)
                    else:                           # extend, then mutate
                        j = (r >> 24) % 65
                        _fz_fill(scratch + clen, j, &st)
                        flen = clen + j
                        _fz_mutate(scratch, flen, &st)
                data = guard - flen
                memcpy(data, scratch, flen)
                memset(&pkt, 0, sizeof(pkt))
                pkt.data = data
                pkt.len = flen
                pkt.in_port = 7
                rc = vdp_parse(&pkt, &key)
                total += 1
                if rc == 0:
                    nok += 1
                else:
                    nmal += 1
                if (rc != 0) != (pkt.malformed != 0) or (rc != 0 and rc != -1):
                    ninc += 1
                offs[0] = pkt.vlan_off
                offs[1] = pkt.pbb_off
                offs[2] = pkt.mpls_off
                offs[3] = pkt.l3_off
                offs[4] = pkt.l4_off
                offs[5] = pkt.nd_sll_off
                offs[6] = pkt.nd_tll_off
                offs[7] = pkt.ethtype_off
                # Offsets point inside the frame; a malformed frame's offset
                # may point at the (missing) header right at the end.
                for j in range(8):
                    if offs[j] != VDP_NOOFF and (offs[j] > flen or
                                                 (offs[j] == flen and rc == 0)):
                        nbadoff += 1
                        break
                if (pkt.nd_sll_off != VDP_NOOFF and <uint32_t>pkt.nd_sll_off + 6 > flen) or \
                   (pkt.nd_tll_off != VDP_NOOFF and <uint32_t>pkt.nd_tll_off + 6 > flen) or \
                   pkt.n_vlan > 2:
                    nbadoff += 1
                if (key.present & VDP_ALWAYS_PRESENT) != VDP_ALWAYS_PRESENT:
                    nbadpres += 1
                memset(&key2, 0x33, sizeof(key2))
                key2.w[1] = 0
                key2.w[2] = 0
                key2.in_port = 7
                key2.in_phy_port = 7
                rc2 = vdp_reparse(&pkt, &key2)
                if rc2 != rc or memcmp(&key, &key2, sizeof(key)) != 0:
                    nremis += 1
    finally:
        PyMem_Free(cptr)
        PyMem_Free(clens)
        munmap(region, maplen)
    return {"total": total, "malformed": nmal, "ok": nok, "inconsistent": ninc,
            "bad_offsets": nbadoff, "bad_present": nbadpres,
            "reparse_mismatch": nremis}
