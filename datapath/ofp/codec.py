"""Wire primitives shared by every module of the OpenFlow 1.3 codec.

- OFPError: the exception every decoder raises on malformed input, carrying
  the spec's (ofp_error_type, code) and the offending bytes; `encode()` turns
  it into the OFPT_ERROR the switch agent sends back.
- need()/unpack(): bounded reads.  Every decoder passes the end of the
  structure it is reading (never the end of the buffer), so a length field
  can never make a decoder read into the next structure or past the message.
- Framer: splits a TCP byte stream into whole OpenFlow messages.

Called by datapath/ofp/{oxm,actions,multipart,messages}.py and by the switch
agent's connection loop (Framer, OFPError).
"""
from __future__ import annotations

import struct

from . import consts as C

HEADER = struct.Struct("!BBHI")          # version, type, length, xid
U8 = struct.Struct("!B")
U16 = struct.Struct("!H")
U32 = struct.Struct("!I")
U64 = struct.Struct("!Q")


class OFPError(Exception):
    """Malformed or unacceptable OpenFlow input.

    type/code are the spec's ofp_error_type and its code (for
    OFPET_EXPERIMENTER, code is the exp_type and `experimenter` the id).
    data is the offending request (decode() fills in the message's first 64
    bytes when the raiser left it empty); xid is the request's xid once the
    header could be read, else None.
    """

    def __init__(self, type, code, data=b"", *, xid=None, experimenter=None, reason=""):
        self.type = type
        self.code = code
        self.data = bytes(data)
        self.xid = xid
        self.experimenter = experimenter
        self.reason = reason
        super().__init__(type, code)

    def __str__(self):
        tname = C.ERROR_TYPE_NAMES.get(self.type, str(self.type))
        s = f"{tname} code {self.code}"
        if self.experimenter is not None:
            s += f" experimenter {self.experimenter:#x}"
        return s + (f": {self.reason}" if self.reason else "")

    def encode(self, xid=None, version=C.OFP_VERSION):
        """The OFPT_ERROR message answering the failed request."""
        x = self.xid if xid is None else xid
        data = self.data[:C.OFP_ERROR_DATA_MAX]
        if self.type == C.OFPET_EXPERIMENTER:
            body = struct.pack("!HHI", self.type, self.code, self.experimenter or 0) + data
        else:
            body = struct.pack("!HH", self.type, self.code) + data
        return HEADER.pack(version, C.OFPT_ERROR, C.OFP_HEADER_SIZE + len(body), x or 0) + body


def need(off, size, end, etype, ecode, reason=""):
    """Raise OFPError(etype, ecode) unless [off, off+size) lies before end."""
    if size < 0 or off + size > end:
        raise OFPError(etype, ecode, reason=reason or "truncated")


def unpack(st, buf, off, end, etype, ecode):
    """struct st at buf[off:], bounded by end."""
    if off + st.size > end:
        raise OFPError(etype, ecode, reason="truncated")
    return st.unpack_from(buf, off)


def pad8(n):
    """n rounded up to a multiple of 8 (OpenFlow's structure alignment)."""
    return (n + 7) & ~7


def zeros(n):
    return b"\0" * n


def padded(b):
    """b with zero padding to a multiple of 8 bytes."""
    return b + zeros(pad8(len(b)) - len(b))


def header(version, type, length, xid):
    if length > C.OFP_MAX_MSG_LEN:
        raise ValueError(f"OpenFlow message of {length} bytes exceeds 65535")
    return HEADER.pack(version, type, length, xid & 0xFFFFFFFF)


def fixed_str(s, n):
    """A NUL-padded n-byte string field (desc, port and table names)."""
    b = s.encode("utf-8", "surrogateescape") if isinstance(s, str) else bytes(s)
    return b[:n].ljust(n, b"\0")


def read_str(b):
    """A NUL-padded string field -> str (bytes after the first NUL dropped)."""
    return b.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class Framer:
    """Split a byte stream into OpenFlow messages by their header length.

        framer.feed(data)
        for msg in framer:        # whole messages, in order
            ...

    Iterating raises OFPError(BAD_REQUEST, BAD_LEN) when the next header
    declares a length below 8: framing is lost, so the connection must be
    closed (after sending the error).  Messages before the bad one are
    yielded first.  Once broken, the framer keeps raising.
    """

    def __init__(self):
        self._buf = b""               # received bytes not yet yielded
        self._error = None

    def feed(self, data):
        # bytes, so that each message is one slice (one copy, one object)
        self._buf = self._buf + bytes(data) if self._buf else bytes(data)

    @property
    def pending(self):
        """Bytes received but not yet part of a whole message."""
        return len(self._buf)

    def __iter__(self):
        if self._error is not None:
            raise self._error
        buf = self._buf
        n = len(buf)
        off = 0
        try:
            while True:
                if n - off >= C.OFP_HEADER_SIZE:
                    length = (buf[off + 2] << 8) | buf[off + 3]
                    if length < C.OFP_HEADER_SIZE:
                        xid = int.from_bytes(buf[off + 4:off + 8], "big")
                        self._error = OFPError(C.OFPET_BAD_REQUEST, C.OFPBRC_BAD_LEN,
                                               buf[off:off + C.OFP_ERROR_DATA_MAX], xid=xid,
                                               reason=f"header length {length} < 8")
                        raise self._error
                    if n - off >= length:
                        off += length
                        yield buf[off - length:off]
                        continue
                if self._buf is buf:
                    return
                # fed while the consumer handled a message: go on with that too
                self._buf = self._buf[off:]
                buf = self._buf
                n = len(buf)
                off = 0
        finally:
            # Also when the consumer stops early: what it got is consumed.
            # (feed() only appends, so self._buf still starts with buf.)
            if off:
                self._buf = self._buf[off:]
