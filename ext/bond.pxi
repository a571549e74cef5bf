# bond.pxi - BondPort: one OpenFlow port over N member ports, the member
# chosen per packet by a hash of the frame (ext/port_bond.c).
#
# Included by ext/_fastpath.pyx after ports.pxi (uses its vdp_pops_* op
# wrappers).  Who calls it: the daemon's bond code and the LACP glue
# (datapath/), tests, benches.  A BondPort is attached to a Datapath like
# any Port; its members are NOT attached themselves: the bond owns them
# (keeps the Port objects alive, closes them in close()).
#
# Concurrency with a running engine: nothing here takes dp->lock.  Mode,
# member flags and bucket entries are single relaxed atomic stores that the
# fast path reads per packet; the slow ring (slow_rx) and the control tx
# queue (send_on_member, sent by the bond's tx_flush, i.e. the engine's
# next pass or Datapath flush) are single-producer/single-consumer rings;
# counters are read with relaxed loads.  See port_bond.h.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset
from libc.stdlib cimport calloc, free
from cpython.bytes cimport PyBytes_FromStringAndSize
from posix.mman cimport mmap, munmap, mprotect, PROT_READ, PROT_WRITE, PROT_NONE, MAP_PRIVATE, MAP_ANONYMOUS, MAP_FAILED
from posix.unistd cimport sysconf, _SC_PAGESIZE

cdef extern from "port_bond.h" nogil:
    enum: VDP_BOND_MAX_MEMBERS
    enum: VDP_BOND_BUCKETS
    enum: VDP_BOND_SLOW_SLOTS
    enum: VDP_BOND_CTL_SLOTS
    enum: VDP_BOND_FRAME_MAX
    enum: VDP_BOND_L2
    enum: VDP_BOND_L3
    enum: VDP_BOND_L4
    enum: VDP_BOND_SLB
    ctypedef struct vdp_bond_counters:
        uint64_t slow_rx
        uint64_t slow_dropped
        uint64_t not_collecting_dropped
        uint64_t no_member_dropped
        uint64_t fallback_tx
        uint64_t ctl_tx
        uint64_t ctl_dropped
    ctypedef struct vdp_bond_member_counters:
        uint64_t not_collecting_dropped
        uint64_t slow_rx
        uint64_t slow_dropped
        uint64_t ctl_tx
        uint64_t ctl_dropped
        uint64_t fallback_tx
    vdp_port *vdp_bond_new(const char *name, vdp_port **members, int n, int mode,
                           char *err, size_t errlen)
    void vdp_bond_free(vdp_port *p)
    int vdp_bond_is(const vdp_port *p)
    int vdp_bond_n_members(const vdp_port *p)
    int vdp_bond_set_mode(vdp_port *p, int mode)
    int vdp_bond_mode(const vdp_port *p)
    int vdp_bond_set_member(vdp_port *p, int i, int collecting, int distributing)
    int vdp_bond_member_flags(const vdp_port *p, int i, int *collecting, int *distributing)
    int vdp_bond_set_bucket(vdp_port *p, int bucket, int member)
    int vdp_bond_bucket(const vdp_port *p, int bucket)
    void vdp_bond_bucket_stats(const vdp_port *p, uint64_t *packets, uint64_t *bytes)
    void vdp_bond_reset_bucket_stats(vdp_port *p)
    void vdp_bond_counters_get(const vdp_port *p, vdp_bond_counters *out)
    int vdp_bond_member_counters_get(const vdp_port *p, int i, vdp_bond_member_counters *out)
    int vdp_bond_slow_fd(const vdp_port *p)
    void vdp_bond_slow_begin(vdp_port *p)
    int vdp_bond_slow_peek(vdp_port *p, int *member, const uint8_t **data, uint32_t *len)
    void vdp_bond_slow_pop(vdp_port *p)
    void vdp_bond_slow_end(vdp_port *p)
    int vdp_bond_send_on_member(vdp_port *p, int i, const uint8_t *data, uint32_t len)
    uint32_t vdp_bond_hash(const vdp_pkt *pkt, int mode)
    int vdp_bond_select(const vdp_port *p, const vdp_pkt *pkt)

_BOND_MODES = {
    "l2": VDP_BOND_L2, "l3": VDP_BOND_L3, "l4": VDP_BOND_L4, "slb": VDP_BOND_SLB,
    "balance-l2": VDP_BOND_L2, "balance-l3": VDP_BOND_L3, "balance-l4": VDP_BOND_L4,
    "balance-tcp": VDP_BOND_L4, "balance-slb": VDP_BOND_SLB,
}
_BOND_MODE_NAMES = {VDP_BOND_L2: "l2", VDP_BOND_L3: "l3", VDP_BOND_L4: "l4",
                    VDP_BOND_SLB: "slb"}
BOND_BUCKETS = VDP_BOND_BUCKETS
BOND_MAX_MEMBERS = VDP_BOND_MAX_MEMBERS
BOND_FRAME_MAX = VDP_BOND_FRAME_MAX


cdef int _bond_mode(object mode) except -1:
    m = _BOND_MODES.get(str(mode).lower()) if mode is not None else None
    if m is None:
        raise ValueError("bond mode must be one of %s, not %r"
                         % (", ".join(_BOND_MODES), mode))
    return m


cdef int _bond_parse(object frame, vdp_pkt *pkt, vdp_key *key) except -1:
    """Point pkt at frame's bytes (the caller keeps `frame` alive) and fill
    its header offsets with the pipeline's parser."""
    cdef const unsigned char[:] mv = memoryview(frame).cast("B")
    memset(pkt, 0, sizeof(vdp_pkt))
    pkt.data = <uint8_t *>&mv[0] if mv.shape[0] else <uint8_t *><const char *>b""
    pkt.len = <uint32_t>mv.shape[0]
    vdp_parse(pkt, key)
    return 0


cdef class BondPort(Port):
    """A bond: one OpenFlow port over 1..16 member Ports (AfPacketPort,
    TapPort or DummyPort objects that are not attached to a Datapath).

    BondPort(name, members, mode="l4")
      mode: "l2" (MACs + VLAN), "l3" (IP addresses; L2 for non-IP), "l4"
      (addresses + proto + TCP/UDP/SCTP ports; L3 for fragments and
      portless protocols), "slb" (source MAC + VLAN, as OVS balance-slb);
      "balance-l2/l3/l4/tcp/slb" are accepted as aliases.  l2/l3/l4 are
      symmetric: both directions of a flow pick the same member.
    Starts with every member collecting and distributing and bucket i on
    member i % n.  The control plane then drives set_member/set_buckets
    (each a lock-free atomic store; safe beside a running engine) and sets
    the bond's OpenFlow link state with Datapath.set_port_link (up while
    some member distributes).

    fd is an epoll fd over the members' fds (the engine wakes for any), or
    -1 when some member has none (DummyPort members: the engine then tries
    the bond every pass).  offload_ok is true when every member's is.
    Frames received on members: Slow Protocols frames (LACP, Marker) go
    to slow_rx() (wakeup: slow_fd()), never to the pipeline; frames of a
    member that is not collecting are dropped and counted.
    Stats (Datapath.port_stats of the bond) are the sum of the members'
    rx/tx plus the bond's own drops; member_stats(i) gives one member's."""
    cdef tuple _members
    cdef public bint offload_ok

    def __cinit__(self, name, members, mode="l4", *args, **kwargs):
        cdef vdp_port *arr[VDP_BOND_MAX_MEMBERS]
        cdef char err[256]
        cdef Port m
        cdef int i, cm
        ms = tuple(members)
        if not 1 <= len(ms) <= VDP_BOND_MAX_MEMBERS:
            raise ValueError("a bond has 1..%d members, not %d" % (VDP_BOND_MAX_MEMBERS, len(ms)))
        for i in range(len(ms)):
            x = ms[i]
            if not isinstance(x, Port):
                raise TypeError("bond member %d is not a Port: %r" % (i, x))
            if isinstance(x, BondPort):
                raise ValueError("bond member %d is a bond" % i)
            m = x
            if m.c == NULL:
                raise ValueError("bond member %d (%r) is closed" % (i, m.name))
            for y in ms[:i]:
                if y is x:
                    raise ValueError("bond member %d (%r) is given twice" % (i, m.name))
            arr[i] = m.c
        cm = _bond_mode(mode)
        cdef bytes bname = str(name).encode()
        err[0] = 0
        self.c = vdp_bond_new(bname, arr, len(ms), cm, err, sizeof(err))
        if self.c == NULL:
            raise ValueError(err.decode(errors="replace"))
        self.name = str(name)
        self._members = ms
        self.offload_ok = all(bool(getattr(x, "offload_ok", False)) for x in ms)

    def __dealloc__(self):
        # members are still referenced here (self._members is cleared after
        # __dealloc__), and the C bond never closes them
        if self.c != NULL:
            vdp_bond_free(self.c)
            self.c = NULL

    cdef vdp_port *_b(self) except NULL:
        if self.c == NULL:
            raise ValueError("bond %r is closed" % (self.name,))
        return self.c

    cdef int _idx(self, int idx) except -1:
        if idx < 0 or idx >= len(self._members):
            raise IndexError("bond %r has no member %d" % (self.name, idx))
        return idx

    def __repr__(self):
        return "<BondPort %s [%s] %s%s>" % (
            self.name, ", ".join(str(m.name) for m in self._members),
            _BOND_MODE_NAMES.get(vdp_bond_mode(self.c), "?") if self.c != NULL else "",
            " closed" if self.c == NULL else "")

    # ------------------------------------------------------------ port basics
    @property
    def members(self):
        """The member Port objects, in index order."""
        return list(self._members)

    @property
    def n_members(self):
        return len(self._members)

    @property
    def ifindex(self):
        return 0

    @property
    def fd(self):
        return -1 if self.c == NULL else self.c.fd

    @property
    def mtu(self):
        return self._b().mtu

    @property
    def hw_addr(self):
        return PyBytes_FromStringAndSize(<const char *>self._b().hw_addr, 6)

    @hw_addr.setter
    def hw_addr(self, bytes value):
        if len(value) != 6:
            raise ValueError("hw_addr is 6 bytes")
        memcpy(self._b().hw_addr, <const char *>value, 6)

    @property
    def link_up(self):
        """The bond's OpenFlow link state (Datapath.set_port_link sets it)."""
        return bool(self._b().link_up)

    @property
    def closed(self):
        return self.c == NULL

    @property
    def distributing(self):
        """True when some member distributes (the bond can carry traffic)."""
        cdef int c, d, i
        for i in range(len(self._members)):
            vdp_bond_member_flags(self._b(), i, &c, &d)
            if d:
                return True
        return False

    def close(self):
        """Free the bond and close its members.  Detach it first."""
        if self.c != NULL:
            vdp_bond_free(self.c)
            self.c = NULL
            for m in self._members:
                m.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def stats(self):
        """The bond's own port counters (what Datapath.port_stats shows)."""
        s = self._b().stats
        return dict(rx_packets=s.rx_packets, tx_packets=s.tx_packets,
                    rx_bytes=s.rx_bytes, tx_bytes=s.tx_bytes,
                    rx_dropped=s.rx_dropped, tx_dropped=s.tx_dropped,
                    rx_errors=s.rx_errors, tx_errors=s.tx_errors,
                    rx_malformed=s.rx_malformed)

    # ------------------------------------------------------------ control
    @property
    def mode(self):
        return _BOND_MODE_NAMES[vdp_bond_mode(self._b())]

    def set_mode(self, mode):
        """Change the hash mode (atomic store; flows may change member)."""
        vdp_bond_set_mode(self._b(), _bond_mode(mode))

    def set_member(self, int idx, bint collecting, bint distributing):
        """Set member idx's flags (atomic stores).  A member that stops
        distributing keeps its buckets until set_buckets moves them; until
        then their frames go to other distributing members by hash
        (counters()['fallback_tx'])."""
        self._idx(idx)
        vdp_bond_set_member(self._b(), idx, collecting, distributing)

    def member_flags(self, int idx):
        """(collecting, distributing) of member idx."""
        cdef int c, d
        self._idx(idx)
        vdp_bond_member_flags(self._b(), idx, &c, &d)
        return bool(c), bool(d)

    def set_buckets(self, buckets):
        """Assign the 256 buckets: a sequence of member indexes, -1 (or
        None) for none.  Validated whole first, then stored entry by entry
        (each an atomic store): entries that do not change are not touched,
        so flows in them never move."""
        cdef vdp_port *p = self._b()
        cdef int i, n = len(self._members)
        vals = [(-1 if v is None else int(v)) for v in buckets]
        if len(vals) != VDP_BOND_BUCKETS:
            raise ValueError("set_buckets takes %d entries, not %d" % (VDP_BOND_BUCKETS, len(vals)))
        for i in range(VDP_BOND_BUCKETS):
            if not -1 <= vals[i] < n:
                raise ValueError("bucket %d: no member %d (bond has %d)" % (i, vals[i], n))
        for i in range(VDP_BOND_BUCKETS):
            if vdp_bond_bucket(p, i) != vals[i]:
                vdp_bond_set_bucket(p, i, vals[i])

    def buckets(self):
        """The 256 bucket owners (member index, -1 for none)."""
        cdef vdp_port *p = self._b()
        return [vdp_bond_bucket(p, i) for i in range(VDP_BOND_BUCKETS)]

    def bucket_stats(self):
        """[(packets, bytes)] sent per bucket since the last reset (the load
        balance-slb rebalancing measures)."""
        cdef uint64_t pk[VDP_BOND_BUCKETS]
        cdef uint64_t by[VDP_BOND_BUCKETS]
        vdp_bond_bucket_stats(self._b(), pk, by)
        return [(pk[i], by[i]) for i in range(VDP_BOND_BUCKETS)]

    def reset_bucket_stats(self):
        vdp_bond_reset_bucket_stats(self._b())

    def member_stats(self, int idx):
        """One member's counters: its port stats as the bond drives it
        (rx_* include slow and dropped frames; tx_* include LACPDUs sent),
        the bond's per-member counters, its flags and its bucket count."""
        cdef vdp_bond_member_counters mc
        cdef Port m
        cdef int c, d
        cdef vdp_port *p = self._b()
        self._idx(idx)
        m = self._members[idx]
        s = m.c.stats
        vdp_bond_member_counters_get(p, idx, &mc)
        vdp_bond_member_flags(p, idx, &c, &d)
        nb = 0
        for i in range(VDP_BOND_BUCKETS):
            if vdp_bond_bucket(p, i) == idx:
                nb += 1
        return dict(name=m.name,
                    rx_packets=s.rx_packets, tx_packets=s.tx_packets,
                    rx_bytes=s.rx_bytes, tx_bytes=s.tx_bytes,
                    rx_dropped=s.rx_dropped, tx_dropped=s.tx_dropped,
                    rx_errors=s.rx_errors, tx_errors=s.tx_errors,
                    not_collecting_dropped=mc.not_collecting_dropped,
                    slow_rx=mc.slow_rx, slow_dropped=mc.slow_dropped,
                    slow_tx=mc.ctl_tx, slow_tx_dropped=mc.ctl_dropped,
                    fallback_tx=mc.fallback_tx,
                    collecting=bool(c), distributing=bool(d), buckets=nb)

    def counters(self):
        """Bond totals: slow_rx, slow_dropped, not_collecting_dropped,
        no_member_dropped, fallback_tx, slow_tx (send_on_member frames
        sent), slow_tx_dropped (refused by the member)."""
        cdef vdp_bond_counters c
        vdp_bond_counters_get(self._b(), &c)
        return dict(slow_rx=c.slow_rx, slow_dropped=c.slow_dropped,
                    not_collecting_dropped=c.not_collecting_dropped,
                    no_member_dropped=c.no_member_dropped,
                    fallback_tx=c.fallback_tx,
                    slow_tx=c.ctl_tx, slow_tx_dropped=c.ctl_dropped)

    # ------------------------------------------------------------ slow protocols
    def slow_fd(self):
        """An eventfd, readable while slow frames wait for slow_rx()."""
        return vdp_bond_slow_fd(self._b())

    def slow_rx(self, int max=64):
        """Up to max received Slow Protocols frames, oldest first, as
        [(member_idx, frame bytes)]."""
        cdef vdp_port *p = self._b()
        cdef int mi
        cdef const uint8_t *data
        cdef uint32_t n
        out = []
        vdp_bond_slow_begin(p)
        while len(out) < max and vdp_bond_slow_peek(p, &mi, &data, &n) == 0:
            out.append((mi, PyBytes_FromStringAndSize(<const char *>data, n)))
            vdp_bond_slow_pop(p)
        vdp_bond_slow_end(p)
        return out

    def send_on_member(self, int idx, frame):
        """Queue frame (bytes, e.g. an LACPDU) to go out on member idx as
        is, bypassing the buckets.  It leaves with the bond's next tx_flush:
        the engine's next pass (at most VDP_ENGINE_SLEEP_MS when idle;
        engine_flush(dp) for at once), or flush() for a bond no engine
        runs.  Returns False when the queue (32 frames) is full."""
        cdef bytes f = bytes(frame)
        self._idx(idx)
        if len(f) > VDP_BOND_FRAME_MAX:
            raise ValueError("frame longer than %d bytes" % VDP_BOND_FRAME_MAX)
        return vdp_bond_send_on_member(self._b(), idx, <const uint8_t *><const char *>f,
                                       <uint32_t>len(f)) == 0

    def flush(self):
        """tx_flush the bond now (sends queued send_on_member frames and
        flushes the members).  Only for a bond no engine is running: the
        engine flushes attached ports itself, under dp->lock."""
        vdp_pops_tx_flush(self._b())

    # ------------------------------------------------------------ test hooks
    def hash_frame(self, frame, mode=None):
        """The flow hash of frame (parsed as the pipeline would) in the
        bond's mode (or `mode`); its bucket is hash & 255."""
        cdef vdp_pkt pkt
        cdef vdp_key key
        cdef int m = vdp_bond_mode(self._b()) if mode is None else _bond_mode(mode)
        _bond_parse(frame, &pkt, &key)
        return vdp_bond_hash(&pkt, m)

    def select_member(self, frame):
        """The member index frame would leave on now (-1: none)."""
        cdef vdp_pkt pkt
        cdef vdp_key key
        _bond_parse(frame, &pkt, &key)
        return vdp_bond_select(self._b(), &pkt)


def bond_hash(frame, mode="l4"):
    """The bond flow hash of frame in `mode` (no BondPort needed)."""
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef int m = _bond_mode(mode)
    _bond_parse(frame, &pkt, &key)
    return vdp_bond_hash(&pkt, m)


# ------------------------------------------------------------ bench / fuzz hooks

cdef extern from *:
    """
    #include <time.h>
    static double vdp_bondpxi_cpu_ns(void)
    {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return ts.tv_sec * 1e9 + ts.tv_nsec;
    }
    """
    double vdp_bondpxi_cpu_ns() nogil


def bond_bench(BondPort bond not None, frames, long n, what="tx"):
    """Thread CPU ns per frame, over `frames` (parsed once, used round
    robin, all kept in memory): what="hash" the hash alone, "select" hash +
    bucket + member choice, "tx" the bond's whole tx (hash, choice, member
    tx, counters: make the members sinks).  Bench hook."""
    cdef vdp_port *p = bond._b()
    cdef int nf = len(frames), i, mode = vdp_bond_mode(p)
    cdef int w = {"hash": 0, "select": 1, "tx": 2}[what]
    cdef vdp_pkt *pkts
    cdef vdp_key key
    cdef long k
    cdef uint64_t acc = 0
    cdef double t0, t1
    if nf == 0 or n <= 0:
        raise ValueError("need frames and n > 0")
    keep = [bytes(f) for f in frames]
    pkts = <vdp_pkt *>calloc(nf, sizeof(vdp_pkt))
    if pkts == NULL:
        raise MemoryError()
    try:
        for i in range(nf):
            _bond_parse(keep[i], &pkts[i], &key)
        with nogil:
            t0 = vdp_bondpxi_cpu_ns()
            i = 0
            for k in range(n):
                if w == 0:
                    acc += vdp_bond_hash(&pkts[i], mode)
                elif w == 1:
                    acc += <uint64_t>vdp_bond_select(p, &pkts[i])
                else:
                    acc += <uint64_t>vdp_pops_tx(p, &pkts[i])
                i += 1
                if i == nf:
                    i = 0
            t1 = vdp_bondpxi_cpu_ns()
    finally:
        free(pkts)
    return (t1 - t0) / n


cdef inline uint64_t _bd_rand(uint64_t *s) noexcept nogil:
    cdef uint64_t z
    s[0] += 0x9e3779b97f4a7c15ULL
    z = s[0]
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL
    return z ^ (z >> 31)


def bond_fuzz_hash(uint64_t seed, long n):
    """Hash n fuzzed frames in every mode, each placed so its last byte is
    the last before a PROT_NONE page (a read past pkt->len faults).  Frames
    are random bytes steered towards VLAN/IPv4/IPv6/extension headers/L4
    protocols, parsed by the pipeline's parser, then hashed; then hashed
    again with random header offsets (garbage a buggy rewrite could leave).
    Returns an xor of all hashes (deterministic per seed).  Test hook."""
    cdef long page = sysconf(_SC_PAGESIZE), k
    cdef uint8_t *region
    cdef uint8_t *guard
    cdef uint8_t buf[512]
    cdef uint8_t *d
    cdef uint32_t flen, o, i
    cdef uint64_t s = seed, r, acc = 0
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef int mode
    cdef uint16_t et
    cdef uint16_t ets[5]
    cdef uint8_t p4[5]
    cdef uint8_t p6[8]
    ets[:] = [0x0800, 0x86dd, 0x0806, 0x8809, 0x8847]
    p4[:] = [6, 17, 132, 1, 47]
    p6[:] = [6, 17, 44, 0, 60, 43, 51, 58]
    region = <uint8_t *>mmap(NULL, 2 * page, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
    if <void *>region == MAP_FAILED:
        raise MemoryError()
    guard = region + page
    if mprotect(guard, page, PROT_NONE) != 0:
        munmap(region, 2 * page)
        raise OSError("mprotect")
    try:
        with nogil:
            for k in range(n):
                r = _bd_rand(&s)
                flen = <uint32_t>(r % 200)
                i = 0
                while i < flen:
                    r = _bd_rand(&s)
                    memcpy(buf + i, &r, 8)
                    i += 8
                # steer: tags, ethertype, IP version/proto/ext headers
                r = _bd_rand(&s)
                o = 12
                if r & 1 and flen >= 16:
                    buf[12] = 0x81
                    buf[13] = 0
                    o = 16
                et = ets[(r >> 1) % 5]
                if o + 2 <= flen:
                    buf[o] = et >> 8
                    buf[o + 1] = et & 0xff
                if o + 3 <= flen:
                    buf[o + 2] = ((4 if et == 0x0800 else 6) << 4) | (5 if (r >> 4) & 3 else ((r >> 8) & 15))
                if et == 0x0800 and o + 12 <= flen:
                    buf[o + 11] = p4[(r >> 12) % 5]
                    if (r >> 16) & 1 and o + 9 <= flen:
                        buf[o + 8] = 0
                        buf[o + 9] = 0
                if et == 0x86dd and o + 9 <= flen:
                    buf[o + 8] = p6[(r >> 12) % 8]
                d = guard - flen
                memcpy(d, buf, flen)
                memset(&pkt, 0, sizeof(pkt))
                pkt.data = d
                pkt.len = flen
                vdp_parse(&pkt, &key)
                for mode in range(4):
                    acc ^= vdp_bond_hash(&pkt, mode)
                # random offsets, in and out of range
                r = _bd_rand(&s)
                pkt.ethtype_off = <uint16_t>(r % (flen + 8)) if r & 1 else 0xffff
                pkt.l3_off = <uint16_t>((r >> 8) % (flen + 48)) if r & 2 else 0xffff
                pkt.l4_off = <uint16_t>((r >> 24) % (flen + 48)) if r & 4 else 0xffff
                pkt.vlan_off = <uint16_t>((r >> 40) % (flen + 8))
                for mode in range(4):
                    acc ^= vdp_bond_hash(&pkt, mode)
    finally:
        munmap(region, 2 * page)
    return acc
