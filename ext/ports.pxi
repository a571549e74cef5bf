# ports.pxi - kernel-interface port providers and the engine thread.
#
#   AfPacketPort(ifname)          port_afpacket.c: TPACKET_V3 RX / V2 TX rings
#   TapPort(name, create=True)    port_tap.c: a TAP device (created or attached)
#   engine_start(dp) / engine_stop(dp) / engine_poll(dp, timeout_ms)
#                                 engine.c: the burst loop, GIL released
#   port_recv / port_send / port_bridge
#                                 test and bench hooks that drive ports
#                                 without a Datapath
#
# A port must be detached from its Datapath before close(): the engine only
# touches attached ports (under dp->lock), so after detach_port() a close is
# safe even while the engine runs.
from libc.errno cimport errno
from libc.string cimport memset
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from posix.time cimport clock_gettime, timespec, CLOCK_MONOTONIC

import atexit as _atexit
import os as _os
import threading as _threading

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    enum: POLLIN
    int poll(pollfd *fds, unsigned long nfds, int timeout)

cdef extern from "port_afpacket.h" nogil:
    ctypedef struct vdp_afp_opts:
        uint32_t rx_block_size
        uint32_t rx_block_nr
        uint32_t rx_block_tov_ms
        uint32_t tx_frame_nr
        int tx_mode
        int no_vnet
        int no_qdisc_bypass
    vdp_port *vdp_afp_open(const char *ifname, const vdp_afp_opts *opts, char *err, size_t errlen)
    int vdp_afp_is(const vdp_port *p)
    int vdp_afp_tx_mode(const vdp_port *p)
    enum: VDP_AFP_TX_AUTO
    enum: VDP_AFP_TX_RING
    enum: VDP_AFP_TX_MMSG
    void vdp_afp_update_stats(vdp_port *p)
    const char *vdp_port_ifname(const vdp_port *p)
    int vdp_port_set_link_up(vdp_port *p, int up)
    int vdp_netdev_is_up(const char *ifname)

cdef extern from "port_tap.h" nogil:
    vdp_port *vdp_tap_open(const char *name, int create, char *err, size_t errlen)
    int vdp_tap_is(const vdp_port *p)
    int vdp_tap_created(const vdp_port *p)

# cdefs.pxi keeps vdp_port_ops opaque: call the ops through these.
cdef extern from *:
    """
    #include "vdp_types.h"
    static inline int vdp_pops_rx_burst(vdp_port *p, vdp_pkt *k, int max) { return p->ops->rx_burst(p, k, max); }
    static inline void vdp_pops_rx_release(vdp_port *p) { p->ops->rx_release(p); }
    static inline int vdp_pops_tx(vdp_port *p, const vdp_pkt *k) { return p->ops->tx(p, k); }
    static inline void vdp_pops_tx_flush(vdp_port *p) { p->ops->tx_flush(p); }
    static inline void vdp_pops_close(vdp_port *p) { p->ops->close(p); }
    """
    int vdp_pops_rx_burst(vdp_port *p, vdp_pkt *k, int max) nogil
    void vdp_pops_rx_release(vdp_port *p) nogil
    int vdp_pops_tx(vdp_port *p, const vdp_pkt *k) nogil
    void vdp_pops_tx_flush(vdp_port *p) nogil
    void vdp_pops_close(vdp_port *p) nogil

cdef extern from "engine.h" nogil:
    int vdp_engine_poll(vdp_dp *dp, int timeout_ms)
    void vdp_engine_flush(vdp_dp *dp)
    void vdp_engine_run(vdp_dp *dp, int *stop)


cdef class _IfPort(Port):
    """What AF_PACKET and TAP ports share: a kernel interface."""

    def __dealloc__(self):
        if self.c is not NULL:
            vdp_pops_close(self.c)
            self.c = NULL

    cdef vdp_port *_port(self) except NULL:
        if self.c is NULL:
            raise ValueError("port %r is closed" % (self.name,))
        return self.c

    @property
    def ifindex(self):
        return self._port().ifindex

    @property
    def mtu(self):
        return self._port().mtu

    @property
    def hw_addr(self):
        return PyBytes_FromStringAndSize(<char *>self._port().hw_addr, 6)

    @property
    def fd(self):
        """The fd the engine polls (-1 once closed)."""
        return -1 if self.c is NULL else self.c.fd

    @property
    def closed(self):
        return self.c is NULL

    @property
    def link_up(self):
        return bool(self._port().link_up)

    @property
    def offload_ok(self):
        """True: tx() takes partial-checksum and GSO frames as they are (the
        kernel finishes them), so the pipeline need not complete them."""
        return True

    def set_link_up(self, bint up):
        """Set the interface administratively up/down (and p->link_up)."""
        cdef vdp_port *p = self._port()
        if vdp_port_set_link_up(p, up) < 0:
            raise OSError(errno, "%s: set link %s: %s" % (
                self.name, "up" if up else "down", _os.strerror(errno)))

    def stats(self, refresh=False):
        """The port's counters.  refresh=True first folds in the kernel's
        drop counter; only do that while no engine runs the port."""
        cdef vdp_port *p = self._port()
        if refresh:
            vdp_afp_update_stats(p)
        s = p.stats
        return dict(rx_packets=s.rx_packets, tx_packets=s.tx_packets,
                    rx_bytes=s.rx_bytes, tx_bytes=s.tx_bytes,
                    rx_dropped=s.rx_dropped, tx_dropped=s.tx_dropped,
                    rx_errors=s.rx_errors, tx_errors=s.tx_errors,
                    rx_malformed=s.rx_malformed)

    def close(self):
        """Unmap rings, close fds (a TAP we created disappears).  Detach
        from the Datapath first."""
        if self.c is not NULL:
            vdp_pops_close(self.c)
            self.c = NULL

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "<%s %s%s>" % (type(self).__name__, self.name,
                              " closed" if self.c is NULL else "")


_TX_MODES = {"auto": VDP_AFP_TX_AUTO, "ring": VDP_AFP_TX_RING, "mmsg": VDP_AFP_TX_MMSG}


cdef class AfPacketPort(_IfPort):
    """A port on a Linux interface (veth, NIC) through AF_PACKET: RX by a
    TPACKET_V3 ring, TX by a TPACKET_V2 ring or sendmmsg batches.

    rx_block_size/rx_block_nr/tx_frame_nr: ring sizes (0 = defaults);
    tx_mode: "auto" (= "ring", the TPACKET_V2 TX ring) or "mmsg" (a copy
    buffer sent with one sendmmsg per burst; on veth both cost the same,
    see port_afpacket.c); vnet=False turns off offload metadata
    (measurement only: GSO frames then cannot be forwarded)."""

    def __cinit__(self, ifname, *, rx_block_size=0, rx_block_nr=0,
                  tx_frame_nr=0, rx_block_tov_ms=0, tx_mode="auto",
                  vnet=True, qdisc_bypass=True):
        cdef vdp_afp_opts o
        if tx_mode not in _TX_MODES:
            raise ValueError("tx_mode must be one of %s" % ", ".join(_TX_MODES))
        cdef char err[256]
        cdef bytes b = ifname.encode() if isinstance(ifname, str) else bytes(ifname)
        cdef const char *cname = b
        memset(&o, 0, sizeof(o))
        o.rx_block_size = rx_block_size
        o.rx_block_nr = rx_block_nr
        o.tx_frame_nr = tx_frame_nr
        o.rx_block_tov_ms = rx_block_tov_ms
        o.tx_mode = _TX_MODES[tx_mode]
        o.no_vnet = not vnet
        o.no_qdisc_bypass = not qdisc_bypass
        err[0] = 0
        with nogil:
            self.c = vdp_afp_open(cname, &o, err, sizeof(err))
        if self.c is NULL:
            raise OSError(errno, err.decode(errors="replace"))
        self.name = b.decode()

    @property
    def tx_mode(self):
        """"ring" or "mmsg": how this port transmits."""
        return "ring" if vdp_afp_tx_mode(self._port()) == VDP_AFP_TX_RING else "mmsg"


cdef class TapPort(_IfPort):
    """A TAP device as a port: created (and removed again on close) when it
    does not exist and create is true, else attached (and left in place)."""

    def __cinit__(self, name, create=True):
        cdef char err[256]
        cdef bytes b = name.encode() if isinstance(name, str) else bytes(name)
        cdef const char *cname = b
        cdef int cr = 1 if create else 0
        err[0] = 0
        with nogil:
            self.c = vdp_tap_open(cname, cr, err, sizeof(err))
        if self.c is NULL:
            raise OSError(errno, err.decode(errors="replace"))
        self.name = b.decode()

    @property
    def created(self):
        """True when this port created the device (close() removes it)."""
        return bool(vdp_tap_created(self._port()))


# ------------------------------------------------------------ test/bench hooks

cdef uint64_t _mono_ns() nogil:
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return <uint64_t>ts.tv_sec * 1000000000ULL + <uint64_t>ts.tv_nsec


def port_recv(Port port, int timeout_ms=1000, int max=VDP_BURST):
    """Wait up to timeout_ms for frames on port and return them (at most
    max) as dicts: data (bytes), csum_partial, csum_start, csum_offset,
    gso_type, gso_size.  Counts rx_packets/rx_bytes as the pipeline would.
    Test hook: not for a port the engine runs."""
    cdef vdp_port *p = port.c
    cdef vdp_pkt pkts[VDP_BURST]
    cdef pollfd pfd
    cdef int n = 0, i, left = timeout_ms
    cdef uint64_t t0
    if p is NULL:
        raise ValueError("port is closed")
    if max > VDP_BURST:
        max = VDP_BURST
    memset(pkts, 0, sizeof(pkts))
    t0 = _mono_ns()
    with nogil:
        while True:
            n = vdp_pops_rx_burst(p, pkts, max)
            if n != 0 or left <= 0:
                break
            if p.fd >= 0:
                pfd.fd = p.fd
                pfd.events = POLLIN
                pfd.revents = 0
                poll(&pfd, 1, left if left < 10 else 10)
            left = timeout_ms - <int>((_mono_ns() - t0) // 1000000)
    if n < 0:
        raise OSError(errno, "rx_burst failed")
    out = []
    for i in range(n):
        p.stats.rx_packets += 1
        p.stats.rx_bytes += pkts[i].len
        out.append(dict(data=PyBytes_FromStringAndSize(<char *>pkts[i].data, pkts[i].len),
                        csum_partial=bool(pkts[i].csum_partial),
                        csum_start=pkts[i].csum_start, csum_offset=pkts[i].csum_offset,
                        gso_type=pkts[i].gso_type, gso_size=pkts[i].gso_size))
    vdp_pops_rx_release(p)
    return out


def port_send(Port port, frames, bint flush=True, bint csum_partial=False,
              int csum_start=0, int csum_offset=0, int gso_type=0, int gso_size=0):
    """Queue frames (bytes, or a list of bytes) on port with the given
    offload metadata, then tx_flush unless flush=False.  Returns how many
    the port accepted; counts tx_packets/tx_bytes/tx_dropped as the
    pipeline would.  Test hook: not for a port the engine runs."""
    cdef vdp_port *p = port.c
    cdef vdp_pkt pkt
    cdef vdp_key key
    cdef bytes f
    cdef int ok = 0
    if p is NULL:
        raise ValueError("port is closed")
    if isinstance(frames, (bytes, bytearray, memoryview)):
        frames = [frames]
    for fr in frames:
        f = bytes(fr)
        memset(&pkt, 0, sizeof(pkt))
        pkt.data = <uint8_t *>PyBytes_AS_STRING(f)
        pkt.len = <uint32_t>PyBytes_GET_SIZE(f)
        vdp_parse(&pkt, &key)             # offsets, as the pipeline has them
        pkt.csum_partial = csum_partial
        pkt.csum_start = csum_start
        pkt.csum_offset = csum_offset
        pkt.gso_type = gso_type
        pkt.gso_size = gso_size
        if vdp_pops_tx(p, &pkt) == 0:
            ok += 1
            p.stats.tx_packets += 1
            p.stats.tx_bytes += pkt.len
        else:
            p.stats.tx_dropped += 1
    if flush:
        vdp_pops_tx_flush(p)
    return ok


def port_flush(Port port):
    """tx_flush the port (test hook)."""
    if port.c is NULL:
        raise ValueError("port is closed")
    vdp_pops_tx_flush(port.c)


ctypedef struct _bridge_stats:
    uint64_t fwd[2]
    uint64_t gso, csum_partial, max_len


cdef int _bridge_dir(vdp_port *a, vdp_port *b, vdp_pkt *pkts, _bridge_stats *st,
                     int d) noexcept nogil:
    cdef int n = vdp_pops_rx_burst(a, pkts, VDP_BURST)
    cdef int i
    for i in range(n):
        if pkts[i].gso_type:
            st.gso += 1
        if pkts[i].csum_partial:
            st.csum_partial += 1
        if pkts[i].len > st.max_len:
            st.max_len = pkts[i].len
        if vdp_pops_tx(b, &pkts[i]) == 0:
            st.fwd[d] += 1
    vdp_pops_rx_release(a)
    return n if n > 0 else 0


def port_bridge(Port a, Port b, double seconds, int idle_exit_ms=0):
    """Forward frames both ways between two ports with the GIL released, a
    ring-to-ring loop without the pipeline (bench and test hook: the I/O
    ceiling of the providers).  Runs for `seconds`, or until no frame came
    for idle_exit_ms once the first did.  Returns a dict: a_to_b, b_to_a
    (frames accepted by tx), gso / csum_partial (frames seen with that
    metadata), max_len."""
    cdef vdp_port *pa = a.c
    cdef vdp_port *pb = b.c
    cdef vdp_pkt pkts[VDP_BURST]
    cdef pollfd pfd[2]
    cdef _bridge_stats st
    cdef uint64_t end, now, last = 0
    cdef uint64_t idle_ns = <uint64_t>idle_exit_ms * 1000000ULL
    cdef int n, idle = 0
    if pa is NULL or pb is NULL:
        raise ValueError("port is closed")
    memset(pkts, 0, sizeof(pkts))
    memset(&st, 0, sizeof(st))
    end = _mono_ns() + <uint64_t>(seconds * 1e9)
    with nogil:
        while True:
            now = _mono_ns()
            if now >= end or (idle_ns and last and now - last >= idle_ns):
                break
            n = _bridge_dir(pa, pb, pkts, &st, 0) + _bridge_dir(pb, pa, pkts, &st, 1)
            vdp_pops_tx_flush(pa)
            vdp_pops_tx_flush(pb)
            if n:
                idle = 0
                last = now
                continue
            idle += 1
            if idle < 64:
                continue
            pfd[0].fd = pa.fd
            pfd[0].events = POLLIN
            pfd[0].revents = 0
            pfd[1].fd = pb.fd
            pfd[1].events = POLLIN
            pfd[1].revents = 0
            poll(pfd, 2, 10)
    return dict(a_to_b=st.fwd[0], b_to_a=st.fwd[1], gso=st.gso,
                csum_partial=st.csum_partial, max_len=st.max_len)


# ------------------------------------------------------------ engine

cdef class _Engine:
    """One engine thread per Datapath: its stop flag and thread."""
    cdef int stop
    cdef object dp
    cdef object thread

    def run(self):
        cdef Datapath dp = self.dp
        cdef vdp_dp *c = dp.c
        with nogil:
            vdp_engine_run(c, &self.stop)


_engines = {}          # id(dp) -> _Engine
_engines_lock = _threading.Lock()


def engine_start(Datapath dp not None):
    """Start the engine thread for dp (runs bursts with the GIL released).
    RuntimeError if one already runs."""
    cdef _Engine e
    if dp.c is NULL:
        raise ValueError("datapath is closed")
    with _engines_lock:
        if id(dp) in _engines:
            raise RuntimeError("engine already running for this datapath")
        e = _Engine()
        e.stop = 0
        e.dp = dp
        e.thread = _threading.Thread(target=e.run, name="vdp-engine", daemon=True)
        _engines[id(dp)] = e
    e.thread.start()


def engine_stop(Datapath dp not None):
    """Stop dp's engine thread and wait for it (at most one poll timeout,
    VDP_ENGINE_SLEEP_MS).  Returns False when none was running."""
    cdef _Engine e
    with _engines_lock:
        e = _engines.pop(id(dp), None)
    if e is None:
        return False
    e.stop = 1
    e.thread.join()
    return True


def engine_running(Datapath dp not None):
    return id(dp) in _engines


def engine_poll(Datapath dp not None, int timeout_ms=0):
    """One engine pass in the caller's thread (GIL released): poll the
    ports up to timeout_ms, one burst per ready port, flush.  Returns the
    frames received.  Safe beside a running engine thread (both take
    dp->lock per pass)."""
    cdef int n
    cdef vdp_dp *c = dp.c
    if c is NULL:
        raise ValueError("datapath is closed")
    with nogil:
        n = vdp_engine_poll(c, timeout_ms)
    if n < 0:
        raise OSError(errno, "engine poll: %s" % _os.strerror(errno))
    return n


def engine_flush(Datapath dp not None):
    """tx_flush every port of dp now (GIL released).  Call after queueing
    frames from the control plane (packet_out): AF_PACKET ports send on
    flush, and an idle engine flushes only every VDP_ENGINE_SLEEP_MS."""
    cdef vdp_dp *c = dp.c
    if c is NULL:
        raise ValueError("datapath is closed")
    with nogil:
        vdp_engine_flush(c)


def _stop_all_engines():
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for e in engines:
        (<_Engine>e).stop = 1
        e.thread.join()

_atexit.register(_stop_all_engines)
