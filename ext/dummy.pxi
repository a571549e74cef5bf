# dummy.pxi - DummyPort: the in-memory port provider (ext/port_dummy.c).
#
# Included by ext/_fastpath.pyx after pipeline.pxi (which declares the C
# functions, from pipeline.h).  Unit tests and engine-only benchmarks attach
# DummyPorts to a Datapath, inject() frames, run the pipeline
# (Datapath.run_dummy / poll_once) and take_tx() what came out.

cdef class DummyPort(Port):
    """An in-memory port: inject(frame) queues a frame for rx, take_tx()
    returns the frames transmitted.  ifindex 0, fd -1, mtu 1500 (settable),
    a locally administered hw_addr derived from the name.  offload_ok (False
    by default) tells the Datapath whether the port takes partial-checksum
    frames as they are (True) or needs them completed before tx (False)."""
    cdef public bint offload_ok

    def __cinit__(self, name="dummy", *args, **kwargs):
        cdef bytes h
        self.c = vdp_dummy_new()
        if self.c == NULL:
            raise MemoryError()
        self.name = str(name)
        h = (<str>self.name).encode()
        # stable per name: 02:xx:xx:xx:xx:xx
        hv = _pl_zlib.crc32(h) & 0xffffffffff
        self.c.hw_addr[0] = 0x02
        for i in range(5):
            self.c.hw_addr[1 + i] = (hv >> (8 * (4 - i))) & 0xff

    def __dealloc__(self):
        if self.c != NULL:
            vdp_dummy_free(self.c)
            self.c = NULL

    def __repr__(self):
        return f"DummyPort({self.name!r})"

    @property
    def ifindex(self):
        return self.c.ifindex

    @property
    def fd(self):
        return self.c.fd

    @property
    def mtu(self):
        return self.c.mtu

    @mtu.setter
    def mtu(self, value):
        self.c.mtu = value

    @property
    def hw_addr(self):
        return PyBytes_FromStringAndSize(<const char *>self.c.hw_addr, 6)

    @hw_addr.setter
    def hw_addr(self, bytes value):
        if len(value) != 6:
            raise ValueError("hw_addr is 6 bytes")
        memcpy(self.c.hw_addr, <const char *>value, 6)

    @property
    def link_up(self):
        return bool(self.c.link_up)

    def inject(self, frame, csum_partial=False):
        """Queue one frame for rx.  csum_partial=True: the frame must carry a
        correct TCP/UDP checksum over IPv4/IPv6; it is handed over as a veth
        would with checksum offload (pseudo-header sum in the field,
        csum_start/csum_offset set, csum_partial flag)."""
        cdef const unsigned char[:] mv = memoryview(frame).cast("B")
        cdef const uint8_t *p = &mv[0] if mv.shape[0] else <const uint8_t *>b""
        if vdp_dummy_inject(self.c, p, mv.shape[0], 1 if csum_partial else 0) < 0:
            if csum_partial:
                raise ValueError("csum_partial needs a TCP/UDP frame over IPv4/IPv6")
            raise MemoryError()

    def take_tx(self):
        """Frames transmitted since the last call, oldest first."""
        return [f for f, _ in self.take_tx_meta()]

    def take_tx_meta(self):
        """Like take_tx, as (frame, csum_partial) pairs."""
        cdef const uint8_t *data
        cdef uint32_t n
        cdef int partial
        cdef void *h
        out = []
        while True:
            h = vdp_dummy_tx_pop(self.c, &data, &n, &partial)
            if h == NULL:
                break
            out.append((PyBytes_FromStringAndSize(<const char *>data, n), bool(partial)))
            vdp_dummy_frame_free(h)
        return out

    @property
    def rx_pending(self):
        return vdp_dummy_rx_pending(self.c)

    @property
    def tx_count(self):
        """Frames tx accepted so far (kept or, for a sink, discarded)."""
        return vdp_dummy_tx_count(self.c)

    def set_sink(self, bint sink=True):
        """A sink counts transmitted frames without keeping them."""
        vdp_dummy_set_sink(self.c, sink)

    def set_tx_limit(self, uint64_t n):
        """Frames kept for take_tx before tx refuses (counted tx_dropped)."""
        vdp_dummy_set_tx_limit(self.c, n)

    def set_replay(self, bytes frame, uint64_t count):
        """Hand out `frame` `count` times on rx without allocating
        (cache-hit benchmarks)."""
        if vdp_dummy_set_replay(self.c, <const uint8_t *><const char *>frame,
                                len(frame), count) < 0:
            raise MemoryError()

    def close(self):
        """Drop queued frames (the port object stays usable)."""
        vdp_dummy_close(self.c)
