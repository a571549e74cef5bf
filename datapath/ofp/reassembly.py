"""Reassembly of multipart requests split over several OFPT_MULTIPART_REQUEST
messages (OFPMPF_REQ_MORE), one Reassembler per OpenFlow connection.

Who uses it: datapath/ofp/agent.py (Session.handle_raw feeds it every whole
message before decoding; see the hook in the Session).  Pure: no I/O, no
clock; tests drive it with bytes built by os-ken's parser classes.

A request bigger than one message (64 KiB) is sent as a sequence: every part
but the last carries OFPMPF_REQ_MORE, all parts carry the same xid and type,
and the receiver joins the bodies (OpenFlow 1.3.5, 7.3.5).  In practice the
big one is a TABLE_FEATURES request that sets the tables (our own full
capabilities take ~400 KB for 254 tables).  What the spec says, and what we
do:

  - "Messages from a multipart request may be interleaved with other
    OpenFlow message types, including other multipart requests, but must
    have distinct transaction ids if multiple unanswered multipart requests
    are in flight simultaneously": other messages pass through untouched,
    and several sequences may be open at once, one per xid (at most
    max_sequences).
  - "If a request spans multiple messages and grows to a size that the
    switch is unable to buffer, the switch should respond with an error
    message of type OFPET_BAD_REQUEST and code
    OFPBRC_MULTIPART_BUFFER_OVERFLOW": past max_bytes buffered on the
    connection (all open sequences together), or past max_sequences open
    sequences, the part that does not fit is answered with that error.
  - A part whose xid belongs to an open sequence but whose type differs
    breaks that sequence: OFPBRC_BAD_MULTIPART.  So does a REQ_MORE part of
    a type that OpenFlow 1.3 does not define (no point buffering it).
  - Bodies are joined as bytes and decoded once, so an item split across two
    parts is accepted (the spec expects whole items per part; tolerating
    both costs nothing).  A body that does not decode gets the error the
    codec gives (BAD_LEN, TABLE_FEATURES_FAILED...) once, for the whole
    request.

Every error carries the sequence's xid and the first 64 bytes of the
message it is about (the offending part; for a body that does not decode,
the first part).  After an error the rest of that sequence (parts with the
same xid and type, up to and including its last part) is swallowed
silently: the request has had its one answer.  A single request (no
REQ_MORE, no open sequence with its xid) is not touched at all: the
caller decodes and handles it as before.  There is no timeout (OpenFlow
1.3 has no error for it): an abandoned sequence holds its bytes until the
connection closes, within max_bytes.

    r = Reassembler()
    out = r.feed(raw)            # raw: one whole message, any type
    if out.passthrough:          # not reassembly business: decode raw as usual
        ...
    else:
        for err in out.errors:   # OFPErrors, xid and data set: send each
            ...
        if out.request is not None:
            # messages.MultipartRequest (flags without REQ_MORE, body
            # decoded): handle it like a decoded message; out.raw is what
            # an error about it quotes (its first part)
            ...
"""
from __future__ import annotations

import struct
from collections import OrderedDict
from typing import NamedTuple, Optional

from . import consts as C
from . import messages as MSG
from .codec import OFPError
from .multipart import decode_request_body

__all__ = ["Reassembler", "Outcome", "PASS", "HELD", "MAX_BYTES", "MAX_SEQUENCES"]

MAX_BYTES = 4 << 20          # bodies buffered per connection, all sequences together
MAX_SEQUENCES = 16           # open sequences per connection
MAX_FINISHED = 64            # remembered failed sequences whose tail is still coming

_MP_HEADER = struct.Struct("!BBHIHH4x")      # ofp_header + type, flags, pad
# Every multipart type OpenFlow 1.3 defines (DESC .. PORT_DESC, EXPERIMENTER).
_KNOWN_TYPES = frozenset(range(C.OFPMP_PORT_DESC + 1)) | {C.OFPMP_EXPERIMENTER}


class Outcome(NamedTuple):
    """What to do with one fed message (see the module doc)."""
    passthrough: bool                 # not ours: decode and handle the message as usual
    request: Optional[MSG.MultipartRequest] = None   # a whole request, ready to handle
    raw: bytes = b""                  # the bytes errors about `request` quote (first part)
    errors: tuple = ()                # OFPErrors to send, in order (xid, data set)


PASS = Outcome(True)
HELD = Outcome(False)                 # buffered or swallowed: nothing to send


class _Sequence:
    __slots__ = ("mp_type", "first", "bodies", "size")

    def __init__(self, mp_type, first):
        self.mp_type = mp_type
        self.first = first            # the first part, whole (for error data)
        self.bodies = []
        self.size = 0


def _error(code, xid, raw, reason):
    return OFPError(C.OFPET_BAD_REQUEST, code, raw[:C.OFP_ERROR_DATA_MAX], xid=xid,
                    reason=reason)


class Reassembler:
    """The open multipart request sequences of one connection."""

    def __init__(self, max_bytes=MAX_BYTES, max_sequences=MAX_SEQUENCES):
        self.max_bytes = max_bytes
        self.max_sequences = max_sequences
        self._open = {}               # xid -> _Sequence
        self._failed = OrderedDict()  # xid -> set of types whose tail is swallowed
        self.buffered = 0             # body bytes held by open sequences

    @property
    def pending(self):
        """How many sequences are open (waiting for their last part)."""
        return len(self._open)

    def clear(self):
        self._open.clear()
        self._failed.clear()
        self.buffered = 0

    # ------------------------------------------------------------------ feed
    def feed(self, raw):
        """One whole OpenFlow message (any type) -> Outcome."""
        if len(raw) < _MP_HEADER.size or raw[1] != C.OFPT_MULTIPART_REQUEST \
                or raw[0] != C.OFP_VERSION:
            return PASS
        _, _, length, xid, mp_type, flags = _MP_HEADER.unpack_from(raw)
        if length != len(raw):
            return PASS               # framing problem: the decoder reports it
        more = bool(flags & C.OFPMPF_REQ_MORE)

        failed = self._failed.get(xid)
        if failed is not None:
            if mp_type in failed:     # the tail of a sequence already answered
                if not more:
                    failed.discard(mp_type)
                    if not failed:
                        del self._failed[xid]
                return HELD
            del self._failed[xid]     # another request reusing the xid: a fresh start

        seq = self._open.get(xid)
        if seq is None:
            if not more:
                return PASS           # a single-message request: nothing to do
            return self._start(raw, xid, mp_type)

        if mp_type != seq.mp_type:
            self._drop(xid)
            types = {seq.mp_type} | ({mp_type} if more else set())
            self._fail(xid, types)
            return Outcome(False, errors=(_error(
                C.OFPBRC_BAD_MULTIPART, xid, raw,
                f"multipart type {mp_type} in the middle of a type {seq.mp_type} request "
                f"with xid {xid:#x}"),))
        body = raw[_MP_HEADER.size:]
        if self.buffered + len(body) > self.max_bytes:
            self._drop(xid)
            if more:
                self._fail(xid, {mp_type})
            return Outcome(False, errors=(self._overflow(xid, raw),))
        seq.bodies.append(body)
        seq.size += len(body)
        self.buffered += len(body)
        if more:
            return HELD
        self._drop(xid)
        return self._finish(xid, seq, flags)

    # ------------------------------------------------------------------ steps
    def _start(self, raw, xid, mp_type):
        if mp_type not in _KNOWN_TYPES:
            self._fail(xid, {mp_type})
            return Outcome(False, errors=(_error(
                C.OFPBRC_BAD_MULTIPART, xid, raw, f"multipart type {mp_type}"),))
        body = raw[_MP_HEADER.size:]
        if len(self._open) >= self.max_sequences or \
                self.buffered + len(body) > self.max_bytes:
            self._fail(xid, {mp_type})
            return Outcome(False, errors=(self._overflow(xid, raw),))
        seq = _Sequence(mp_type, bytes(raw))
        seq.bodies.append(body)
        seq.size = len(body)
        self.buffered += len(body)
        self._open[xid] = seq
        return HELD

    def _finish(self, xid, seq, flags):
        body = b"".join(seq.bodies)
        try:
            decoded = decode_request_body(seq.mp_type, body, 0, len(body))
        except OFPError as e:
            e.xid = xid
            if not e.data:
                e.data = seq.first[:C.OFP_ERROR_DATA_MAX]
            return Outcome(False, errors=(e,))
        req = MSG.MultipartRequest(xid, seq.mp_type, flags & ~C.OFPMPF_REQ_MORE, decoded)
        return Outcome(False, request=req, raw=seq.first)

    def _overflow(self, xid, raw):
        return _error(C.OFPBRC_MULTIPART_BUFFER_OVERFLOW, xid, raw,
                      f"multipart request xid {xid:#x} does not fit in "
                      f"{self.max_bytes} bytes / {self.max_sequences} open requests")

    def _drop(self, xid):
        seq = self._open.pop(xid)
        self.buffered -= seq.size

    def _fail(self, xid, types):
        """Remember that the rest of xid's sequence(s) of these types must be
        swallowed (bounded: the oldest is forgotten first)."""
        if not types:
            return
        self._failed[xid] = set(types)
        self._failed.move_to_end(xid)
        while len(self._failed) > MAX_FINISHED:
            self._failed.popitem(last=False)
