# classifier.pxi - test and bench hooks for the tuple-space classifier
# (classifier.c) and the exact-match cache (emc.c).  Included by
# ext/_fastpath.pyx after cdefs.pxi/parse.pxi.  The pipeline uses the C API
# directly; nothing here is on the packet path.
#
# Keys are raw: a list/tuple of 19 ints (the vdp_key words) or 152 bytes (the
# struct's memory), so these hooks do not depend on field conversion code.
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcpy, memset

cdef extern from "classifier.h" nogil:
    ctypedef struct vdp_cls_rule:
        vdp_key value
        int32_t priority
    ctypedef struct vdp_cls:
        pass
    vdp_cls *vdp_cls_new()
    void vdp_cls_free(vdp_cls *cls)
    int vdp_cls_insert(vdp_cls *cls, vdp_cls_rule *rule, const vdp_key *mask)
    void vdp_cls_remove(vdp_cls *cls, vdp_cls_rule *rule)
    void vdp_cls_replace(vdp_cls *cls, vdp_cls_rule *old, vdp_cls_rule *rule)
    vdp_cls_rule *vdp_cls_lookup(const vdp_cls *cls, const vdp_key *key)
    vdp_cls_rule *vdp_cls_find_exact(const vdp_cls *cls, const vdp_key *value,
                                     const vdp_key *mask, int priority)
    const vdp_key *vdp_cls_rule_mask(const vdp_cls_rule *rule)
    uint32_t vdp_cls_count(const vdp_cls *cls)
    uint32_t vdp_cls_n_subtables(const vdp_cls *cls)
    int vdp_cls_foreach(vdp_cls *cls, int (*cb)(vdp_cls_rule *, void *) noexcept nogil, void *arg)
    int vdp_cls_foreach_loose(vdp_cls *cls, const vdp_key *fvalue, const vdp_key *fmask,
                              int (*cb)(vdp_cls_rule *, void *) noexcept nogil, void *arg)
    void vdp_cls_set_next_seq(vdp_cls *cls, uint32_t seq)

cdef extern from "emc.h" nogil:
    ctypedef struct vdp_emc:
        pass
    vdp_emc *vdp_emc_new(uint32_t n_entries)
    void vdp_emc_free(vdp_emc *emc)
    vdp_prog *vdp_emc_lookup(vdp_emc *emc, const vdp_key *key, uint32_t hash, uint64_t generation)
    void vdp_emc_insert(vdp_emc *emc, const vdp_key *key, uint32_t hash, uint64_t generation,
                        vdp_prog *prog)
    void vdp_emc_clear(vdp_emc *emc)
    uint32_t vdp_emc_capacity(const vdp_emc *emc)
    uint32_t vdp_emc_used(const vdp_emc *emc)

from posix.time cimport clock_gettime, timespec

cdef extern from "<time.h>" nogil:
    enum: CLOCK_THREAD_CPUTIME_ID

cdef extern from "<string.h>" nogil:
    int memcmp(const void *a, const void *b, size_t n)
    int __builtin_popcountll(unsigned long long x)

# Small C helpers for the hooks (prefixed: all .pxi share one C file).
cdef extern from *:
    """
    #include <malloc.h>
    /* glibc heap bytes in use: small-chunk arena + mmap'd blocks. */
    static size_t vdp_clspxi_heap_in_use(void)
    {
        struct mallinfo2 mi = mallinfo2();
        return mi.uordblks + mi.hblkhd;
    }
    /* Bench fields: key word, bits, presence bit (shaped like OF matches). */
    static const uint64_t vdp_clspxi_fields[11][3] = {
        {3, 0xffffffffULL, 1ULL << 0},               /* in_port */
        {4, 0xffffffffffffULL, 1ULL << 3},           /* eth_dst */
        {5, 0xffffffffffffULL, 1ULL << 4},           /* eth_src */
        {4, 0xffffULL << 48, 1ULL << 5},             /* eth_type */
        {5, 0x1fffULL << 48, 1ULL << 6},             /* vlan_vid */
        {8, 0xffULL << 24, 1ULL << 10},              /* ip_proto */
        {6, 0xffffffffULL, 1ULL << 11},              /* ipv4_src (prefixed) */
        {6, 0xffffffffULL << 32, 1ULL << 12},        /* ipv4_dst (prefixed) */
        {7, 0xffffULL, 1ULL << 13},                  /* tcp_src */
        {7, 0xffffULL << 16, 1ULL << 14},            /* tcp_dst */
        {1, 0xffffffffffffffffULL, 1ULL << 2},       /* metadata */
    };
    """
    size_t vdp_clspxi_heap_in_use() nogil
    const uint64_t vdp_clspxi_fields[11][3]

# A test "flow entry": the rule first (container cast), then the test's id.
cdef struct _cls_trule:
    vdp_cls_rule r
    int64_t id

cdef struct _cls_idbuf:
    int64_t *ids
    uint32_t n
    uint32_t cap


cdef int _cls_key_from(object o, vdp_key *k) except -1:
    cdef const unsigned char[:] view
    cdef int i
    if isinstance(o, (bytes, bytearray)):
        if len(o) != sizeof(vdp_key):
            raise ValueError("a raw key is %d bytes, got %d" % (sizeof(vdp_key), len(o)))
        view = bytes(o)
        memcpy(k, &view[0], sizeof(vdp_key))
        return 0
    words = list(o)
    if len(words) != VDP_KEY_WORDS:
        raise ValueError("a raw key is %d words, got %d" % (VDP_KEY_WORDS, len(words)))
    for i in range(VDP_KEY_WORDS):
        k.w[i] = <uint64_t>words[i]
    return 0


cdef list _cls_key_to(const vdp_key *k):
    return [k.w[i] for i in range(VDP_KEY_WORDS)]


cdef int _cls_collect(vdp_cls_rule *r, void *arg) noexcept nogil:
    cdef _cls_idbuf *b = <_cls_idbuf *>arg
    if b.n < b.cap:
        b.ids[b.n] = (<_cls_trule *>r).id
        b.n += 1
    return 0


cdef inline uint64_t _cls_rand(uint64_t *s) noexcept nogil:
    # xorshift64*: deterministic per seed, cheap enough to run inside benches.
    s[0] ^= s[0] >> 12
    s[0] ^= s[0] << 25
    s[0] ^= s[0] >> 27
    return s[0] * 2685821657736338717ULL


cdef inline double _cls_now() noexcept nogil:
    # CPU time of this thread: other load on the machine (other builds and
    # tests share 2 cores) inflates it far less than wall-clock time.
    cdef timespec ts
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9


cdef inline size_t _cls_heap_in_use() noexcept nogil:
    return vdp_clspxi_heap_in_use()


cdef int _cls_collect_stop(vdp_cls_rule *r, void *arg) noexcept nogil:
    # Like _cls_collect, but returns nonzero (stop) once the buffer is full.
    cdef _cls_idbuf *b = <_cls_idbuf *>arg
    if b.n >= b.cap:
        return 1
    b.ids[b.n] = (<_cls_trule *>r).id
    b.n += 1
    return 1 if b.n >= b.cap else 0


cdef class ClassifierTester:
    """A vdp_cls with rules allocated in C, addressed by integer ids."""
    cdef vdp_cls *c
    cdef dict rules          # id -> address of the _cls_trule
    cdef int64_t next_id

    def __cinit__(self):
        self.c = vdp_cls_new()
        if self.c == NULL:
            raise MemoryError()
        self.rules = {}
        self.next_id = 1

    def __dealloc__(self):
        if self.c != NULL:
            vdp_cls_free(self.c)
        for addr in self.rules.values():
            free(<void *><size_t>addr)

    cdef _cls_trule *_rule(self, int64_t rid) except NULL:
        addr = self.rules.get(rid)
        if addr is None:
            raise KeyError(rid)
        return <_cls_trule *><size_t>addr

    def add(self, value, mask, int priority):
        """Insert a rule; returns its id.  value need not be masked."""
        cdef vdp_key m
        _cls_key_from(mask, &m)
        if not 0 <= priority <= 65535:
            raise ValueError("priority out of range")
        cdef _cls_trule *t = <_cls_trule *>calloc(1, sizeof(_cls_trule))
        if t == NULL:
            raise MemoryError()
        try:
            _cls_key_from(value, &t.r.value)
        except BaseException:
            free(t)
            raise
        t.r.priority = priority
        t.id = self.next_id
        if vdp_cls_insert(self.c, &t.r, &m) != 0:
            free(t)
            raise MemoryError()
        self.next_id += 1
        self.rules[t.id] = <size_t>t
        return t.id

    def remove(self, int64_t rid):
        cdef _cls_trule *t = self._rule(rid)
        vdp_cls_remove(self.c, &t.r)
        del self.rules[rid]
        free(t)

    def replace(self, int64_t old_id):
        """vdp_cls_replace: a new rule takes old_id's place; returns its id."""
        cdef _cls_trule *old = self._rule(old_id)
        cdef _cls_trule *t = <_cls_trule *>calloc(1, sizeof(_cls_trule))
        if t == NULL:
            raise MemoryError()
        t.id = self.next_id
        vdp_cls_replace(self.c, &old.r, &t.r)
        self.next_id += 1
        self.rules[t.id] = <size_t>t
        del self.rules[old_id]
        free(old)
        return t.id

    def lookup(self, key):
        """Id of the best matching rule, or None."""
        cdef vdp_key k
        _cls_key_from(key, &k)
        cdef vdp_cls_rule *r = vdp_cls_lookup(self.c, &k)
        return None if r == NULL else (<_cls_trule *>r).id

    def find_exact(self, value, mask, int priority):
        cdef vdp_key v, m
        _cls_key_from(value, &v)
        _cls_key_from(mask, &m)
        cdef vdp_cls_rule *r = vdp_cls_find_exact(self.c, &v, &m, priority)
        return None if r == NULL else (<_cls_trule *>r).id

    def value(self, int64_t rid):
        """The stored (masked) value words of a rule."""
        return _cls_key_to(&self._rule(rid).r.value)

    def mask(self, int64_t rid):
        cdef const vdp_key *m = vdp_cls_rule_mask(&self._rule(rid).r)
        return None if m == NULL else _cls_key_to(m)

    def priority(self, int64_t rid):
        return self._rule(rid).r.priority

    def count(self):
        return vdp_cls_count(self.c)

    def n_subtables(self):
        return vdp_cls_n_subtables(self.c)

    def ids(self, stop_after=None):
        """Ids of all rules via vdp_cls_foreach (stop_after: callback limit)."""
        cdef _cls_idbuf b
        b.cap = vdp_cls_count(self.c) if stop_after is None else min(<uint32_t>stop_after, vdp_cls_count(self.c))
        b.n = 0
        b.ids = <int64_t *>malloc((b.cap + 1) * sizeof(int64_t))
        if b.ids == NULL:
            raise MemoryError()
        try:
            vdp_cls_foreach(self.c, _cls_collect_stop if stop_after is not None else _cls_collect, &b)
            return [b.ids[i] for i in range(b.n)]
        finally:
            free(b.ids)

    def loose(self, fvalue, fmask):
        """Ids selected by vdp_cls_foreach_loose (OpenFlow non-strict)."""
        cdef vdp_key v, m
        _cls_key_from(fvalue, &v)
        _cls_key_from(fmask, &m)
        cdef _cls_idbuf b
        b.cap = vdp_cls_count(self.c)
        b.n = 0
        b.ids = <int64_t *>malloc((b.cap + 1) * sizeof(int64_t))
        if b.ids == NULL:
            raise MemoryError()
        try:
            vdp_cls_foreach_loose(self.c, &v, &m, _cls_collect, &b)
            return [b.ids[i] for i in range(b.n)]
        finally:
            free(b.ids)

    def set_next_seq(self, uint32_t seq):
        vdp_cls_set_next_seq(self.c, seq)


cdef class EmcTester:
    """A vdp_emc whose programs are tagged with an int (stored in prog.n)."""
    cdef vdp_emc *c

    def __cinit__(self, uint32_t n_entries):
        self.c = vdp_emc_new(n_entries)
        if self.c == NULL:
            raise MemoryError()

    def __dealloc__(self):
        if self.c != NULL:
            vdp_emc_free(self.c)

    def insert(self, key, uint32_t hash, uint64_t generation, uint32_t tag):
        cdef vdp_key k
        _cls_key_from(key, &k)
        cdef vdp_prog *p = <vdp_prog *>malloc(sizeof(vdp_prog))
        if p == NULL:
            raise MemoryError()
        p.n = tag
        p.flags = 0
        vdp_emc_insert(self.c, &k, hash, generation, p)

    def lookup(self, key, uint32_t hash, uint64_t generation):
        cdef vdp_key k
        _cls_key_from(key, &k)
        cdef vdp_prog *p = vdp_emc_lookup(self.c, &k, hash, generation)
        return None if p == NULL else p.n

    def clear(self):
        vdp_emc_clear(self.c)

    def capacity(self):
        return vdp_emc_capacity(self.c)

    def used(self):
        return vdp_emc_used(self.c)


# ------------------------------------------------------------------ benches
# Bench masks are distinct combinations of vdp_clspxi_fields, each with the
# fields' presence bits in w0.
cdef int _cls_make_masks(vdp_key *masks, int n_masks, uint64_t *s) except -1:
    """n_masks distinct masks of 1-4 fields (>= 32 bits), IPv4 prefixes /8-/32."""
    cdef int i, j, f, nf, plen, nbits, tries = 0
    cdef uint64_t bits
    i = 0
    while i < n_masks:
        tries += 1
        if tries > 100000:
            raise ValueError("cannot make %d distinct masks" % n_masks)
        memset(&masks[i], 0, sizeof(vdp_key))
        nf = 1 + <int>(_cls_rand(s) % 4)
        for j in range(nf):
            f = <int>(_cls_rand(s) % 11)
            bits = vdp_clspxi_fields[f][1]
            if f == 6 or f == 7:       # ipv4 prefix /8../32 (big end = high bits of the u32)
                plen = 8 + <int>(_cls_rand(s) % 25)
                bits = ((0xffffffffULL << (32 - plen)) & 0xffffffffULL) << (0 if f == 6 else 32)
            masks[i].w[<int>vdp_clspxi_fields[f][0]] |= bits
            masks[i].w[0] |= vdp_clspxi_fields[f][2]
        # Keep masks with >= 32 significant bits, so random keys miss.
        nbits = 0
        for j in range(1, VDP_KEY_WORDS):
            nbits += __builtin_popcountll(masks[i].w[j])
        if nbits < 32:
            continue
        for j in range(i):
            if memcmp(&masks[j], &masks[i], sizeof(vdp_key)) == 0:
                break
        else:
            i += 1
    return 0


cdef _cls_trule *_cls_make_rules(vdp_key *masks, int n_masks, int n_rules, uint64_t *s) except NULL:
    """n_rules random rules (one calloc block), spread round-robin over masks."""
    cdef _cls_trule *rules = <_cls_trule *>calloc(n_rules if n_rules > 0 else 1, sizeof(_cls_trule))
    cdef int i, w
    if rules == NULL:
        raise MemoryError()
    for i in range(n_rules):
        for w in range(VDP_KEY_WORDS):
            rules[i].r.value.w[w] = _cls_rand(s) & masks[i % n_masks].w[w]
        rules[i].r.value.w[0] = masks[i % n_masks].w[0]
        rules[i].r.priority = <int32_t>(_cls_rand(s) % 1000)
        rules[i].id = i
    return rules


def bench_cls_miss(int n_rules, int n_masks=16, int n_lookups=200000, uint64_t seed=1):
    """ns per lookup for keys that match no rule (every subtable probed)."""
    cdef uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1
    cdef vdp_key *masks = <vdp_key *>calloc(n_masks, sizeof(vdp_key))
    cdef int NK = 4096
    cdef vdp_key *keys = <vdp_key *>calloc(NK, sizeof(vdp_key))
    cdef _cls_trule *rules = NULL
    cdef vdp_cls *c = vdp_cls_new()
    cdef int i, w
    cdef long hits = 0, tries
    cdef double t0, t1
    try:
        if masks == NULL or keys == NULL or c == NULL:
            raise MemoryError()
        _cls_make_masks(masks, n_masks, &s)
        rules = _cls_make_rules(masks, n_masks, n_rules, &s)
        for i in range(n_rules):
            if vdp_cls_insert(c, &rules[i].r, &masks[i % n_masks]) != 0:
                raise MemoryError()
        i = 0
        tries = 0
        while i < NK:
            tries += 1
            if tries > 100 * NK:
                raise ValueError("cannot find keys that miss")
            for w in range(VDP_KEY_WORDS):
                keys[i].w[w] = _cls_rand(&s)
            keys[i].w[0] = 0xffffffffffULL   # every field present: misses are decided by the hash tables
            if vdp_cls_lookup(c, &keys[i]) == NULL:   # keep only keys that really miss
                i += 1
        with nogil:
            t0 = _cls_now()
            for i in range(n_lookups):
                if vdp_cls_lookup(c, &keys[i & (NK - 1)]) != NULL:
                    hits += 1
            t1 = _cls_now()
        if hits:
            raise AssertionError("miss bench hit %d of %d" % (hits, n_lookups))
        return (t1 - t0) * 1e9 / n_lookups
    finally:
        vdp_cls_free(c)
        free(rules)
        free(keys)
        free(masks)


def bench_cls_hit(int n_rules, int n_masks=16, int n_lookups=200000, uint64_t seed=1):
    """ns per lookup for keys built from installed rules (they all hit)."""
    cdef uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1
    cdef vdp_key *masks = <vdp_key *>calloc(n_masks, sizeof(vdp_key))
    cdef int NK = 4096
    cdef vdp_key *keys = <vdp_key *>calloc(NK, sizeof(vdp_key))
    cdef _cls_trule *rules = NULL
    cdef vdp_cls *c = vdp_cls_new()
    cdef int i, w
    cdef int j
    cdef long misses = 0
    cdef double t0, t1
    try:
        if masks == NULL or keys == NULL or c == NULL or n_rules <= 0:
            raise MemoryError() if n_rules > 0 else ValueError("n_rules must be > 0")
        _cls_make_masks(masks, n_masks, &s)
        rules = _cls_make_rules(masks, n_masks, n_rules, &s)
        for i in range(n_rules):
            if vdp_cls_insert(c, &rules[i].r, &masks[i % n_masks]) != 0:
                raise MemoryError()
        for i in range(NK):
            # an installed rule's value, random bits outside its mask
            j = <int>(_cls_rand(&s) % <uint64_t>n_rules)
            memcpy(&keys[i], &rules[j].r.value, sizeof(vdp_key))
            for w in range(1, VDP_KEY_WORDS):
                keys[i].w[w] |= _cls_rand(&s) & ~masks[j % n_masks].w[w]
        with nogil:
            t0 = _cls_now()
            for i in range(n_lookups):
                if vdp_cls_lookup(c, &keys[i & (NK - 1)]) == NULL:
                    misses += 1
            t1 = _cls_now()
        if misses:
            raise AssertionError("hit bench missed %d" % misses)
        return (t1 - t0) * 1e9 / n_lookups
    finally:
        vdp_cls_free(c)
        free(rules)
        free(keys)
        free(masks)


def bench_cls_insert(int n_rules, int n_masks=16, uint64_t seed=1):
    """(seconds to insert n_rules, heap bytes per rule).  Bytes count each
    rule's own allocation (sizeof(vdp_cls_rule) + id, malloc'd one by one as a
    pipeline would) plus everything the classifier allocates, from mallinfo2."""
    cdef uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1
    cdef vdp_key *masks = <vdp_key *>calloc(n_masks, sizeof(vdp_key))
    cdef _cls_trule *tmpl = NULL
    cdef _cls_trule **rules = <_cls_trule **>calloc(n_rules if n_rules > 0 else 1, sizeof(_cls_trule *))
    cdef vdp_cls *c = NULL
    cdef int i, ok = 1
    cdef size_t m0, m1
    cdef double t0, t1
    try:
        if masks == NULL or rules == NULL:
            raise MemoryError()
        _cls_make_masks(masks, n_masks, &s)
        tmpl = _cls_make_rules(masks, n_masks, n_rules, &s)
        with nogil:
            m0 = _cls_heap_in_use()
            c = vdp_cls_new()
            for i in range(n_rules):
                rules[i] = <_cls_trule *>malloc(sizeof(_cls_trule))
                if rules[i] == NULL:
                    ok = 0
                    break
                memcpy(rules[i], &tmpl[i], sizeof(_cls_trule))
            t0 = _cls_now()
            if ok and c != NULL:
                for i in range(n_rules):
                    if vdp_cls_insert(c, &rules[i].r, &masks[i % n_masks]) != 0:
                        ok = 0
                        break
            t1 = _cls_now()
            m1 = _cls_heap_in_use()
        if not ok or c == NULL:
            raise MemoryError()
        if vdp_cls_count(c) != <uint32_t>n_rules:
            raise AssertionError("inserted %d of %d" % (vdp_cls_count(c), n_rules))
        return (t1 - t0, <double>(m1 - m0) / (n_rules if n_rules > 0 else 1))
    finally:
        vdp_cls_free(c)
        if rules != NULL:
            for i in range(n_rules):
                free(rules[i])
        free(rules)
        free(tmpl)
        free(masks)


def cls_rule_size():
    """sizeof(vdp_cls_rule): the part of a flow entry the classifier defines."""
    return sizeof(vdp_cls_rule)


def cls_heap_in_use():
    """glibc heap bytes in use (mallinfo2 uordblks + hblkhd)."""
    return _cls_heap_in_use()


def cls_churn(int n_rules, int n_ops, int n_masks=8, uint64_t seed=1):
    """Ownership check in C: n_ops random inserts/removes over a pool of
    n_rules rules (malloc'd by this hook), then removal of the rest and
    vdp_cls_free.  Returns the heap bytes in use afterwards vs before (0 when
    the classifier frees every subtable and table it allocated)."""
    cdef uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1
    cdef vdp_key *masks = <vdp_key *>calloc(n_masks, sizeof(vdp_key))
    cdef _cls_trule *tmpl = NULL
    cdef _cls_trule **pool = <_cls_trule **>calloc(n_rules if n_rules > 0 else 1, sizeof(_cls_trule *))
    cdef char *inside = <char *>calloc(n_rules if n_rules > 0 else 1, 1)
    cdef vdp_cls *c
    cdef size_t m0 = 0, m1 = 0
    cdef int i, j, ok = 1
    try:
        if masks == NULL or pool == NULL or inside == NULL or n_rules <= 0:
            raise MemoryError() if n_rules > 0 else ValueError("n_rules must be > 0")
        _cls_make_masks(masks, n_masks, &s)
        tmpl = _cls_make_rules(masks, n_masks, n_rules, &s)
        for i in range(n_rules):
            pool[i] = <_cls_trule *>malloc(sizeof(_cls_trule))
            if pool[i] == NULL:
                raise MemoryError()
        with nogil:
            m0 = _cls_heap_in_use()
            c = vdp_cls_new()
            if c == NULL:
                ok = 0
            else:
                for i in range(n_ops):
                    j = <int>(_cls_rand(&s) % <uint64_t>n_rules)
                    if inside[j]:
                        vdp_cls_remove(c, &pool[j].r)
                        inside[j] = 0
                    else:
                        memcpy(pool[j], &tmpl[j], sizeof(_cls_trule))
                        if vdp_cls_insert(c, &pool[j].r, &masks[j % n_masks]) != 0:
                            ok = 0
                            break
                        inside[j] = 1
                for j in range(n_rules):
                    if inside[j]:
                        vdp_cls_remove(c, &pool[j].r)
                        inside[j] = 0
                if vdp_cls_count(c) != 0 or vdp_cls_n_subtables(c) != 0:
                    ok = -1
                vdp_cls_free(c)
            m1 = _cls_heap_in_use()
        if ok == 0:
            raise MemoryError()
        if ok < 0:
            raise AssertionError("classifier not empty after removing every rule")
        return <long>m1 - <long>m0
    finally:
        if pool != NULL:
            for i in range(n_rules):
                free(pool[i])
        free(pool)
        free(inside)
        free(tmpl)
        free(masks)


def emc_churn(uint32_t n_entries, int n_iter, int n_keys, uint64_t seed=1):
    """Ownership check in C: n_iter random lookups/inserts (fresh malloc'd
    program on every miss, generation bumped now and then), verifying every
    hit returns the program made for that key; then frees the cache.
    Returns (hits, heap bytes still in use afterwards vs before)."""
    cdef uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1
    cdef size_t m0, m1
    cdef vdp_emc *e
    cdef vdp_key k
    cdef vdp_prog *p
    cdef uint32_t h, kid
    cdef uint64_t gen = 0
    cdef long hits = 0, bad = 0
    cdef int i, oom = 0
    if n_keys <= 0:
        raise ValueError("n_keys must be > 0")
    with nogil:
        m0 = _cls_heap_in_use()
        e = vdp_emc_new(n_entries)
        if e != NULL:
            memset(&k, 0, sizeof(vdp_key))
            for i in range(n_iter):
                kid = <uint32_t>(_cls_rand(&s) % <uint64_t>n_keys)
                k.w[1] = kid
                k.w[18] = kid * 7
                h = kid * 2654435761u          # a weak hash: lots of set conflicts
                if _cls_rand(&s) % 1000 == 0:
                    gen += 1
                p = vdp_emc_lookup(e, &k, h, gen)
                if p != NULL:
                    hits += 1
                    if p.n != kid or p.flags != <uint32_t>gen:
                        bad += 1
                else:
                    p = <vdp_prog *>malloc(sizeof(vdp_prog))
                    if p == NULL:
                        oom = 1
                        break
                    p.n = kid
                    p.flags = <uint32_t>gen
                    vdp_emc_insert(e, &k, h, gen, p)
                if i == n_iter // 2:
                    vdp_emc_clear(e)
            vdp_emc_free(e)
        m1 = _cls_heap_in_use()
    if e == NULL or oom:
        raise MemoryError()
    if bad:
        raise AssertionError("%d hits returned another key's program" % bad)
    return hits, <long>m1 - <long>m0


def bench_emc_hit(int n_lookups=1000000, int n_keys=1024, uint32_t n_entries=8192):
    """ns per EMC hit, including hashing the key (vdp_key_hash)."""
    cdef vdp_emc *e = vdp_emc_new(n_entries)
    cdef vdp_key *keys = <vdp_key *>calloc(n_keys, sizeof(vdp_key))
    cdef uint64_t s = 12345
    cdef vdp_prog *p
    cdef int i, w, ok = 1
    cdef long misses = 0
    cdef double t0, t1
    try:
        if e == NULL or keys == NULL:
            raise MemoryError()
        for i in range(n_keys):
            for w in range(VDP_KEY_WORDS):
                keys[i].w[w] = _cls_rand(&s)
            p = <vdp_prog *>malloc(sizeof(vdp_prog))
            if p == NULL:
                raise MemoryError()
            p.n = i
            vdp_emc_insert(e, &keys[i], vdp_key_hash(&keys[i], 0), 1, p)
        # Keys evicted by set conflicts would make misses: only count the
        # keys that are cached, and cycle over those.
        with nogil:
            t0 = _cls_now()
            for i in range(n_lookups):
                p = vdp_emc_lookup(e, &keys[i % n_keys], vdp_key_hash(&keys[i % n_keys], 0), 1)
                if p == NULL:
                    misses += 1
            t1 = _cls_now()
        if misses * 10 > n_lookups:
            raise AssertionError("EMC bench missed %d of %d" % (misses, n_lookups))
        return (t1 - t0) * 1e9 / n_lookups
    finally:
        vdp_emc_free(e)
        free(keys)
