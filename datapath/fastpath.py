"""The facade over the C/Cython fast path (ext._fastpath): the only module
of the control plane that imports ext/.

Re-exports the Cython objects (Datapath, the port providers, FlowError,
Upcall) and adds the engine methods to Datapath: start()/stop() run the
burst loop on its own thread with the GIL released, poll_once() runs one
engine pass in the caller's thread (tests).  The engine functions come from
the ports area (ext/ports.pxi): engine_start(dp), engine_stop(dp),
engine_poll(dp, timeout_ms).
"""
from __future__ import annotations

from ext import _fastpath as _fp

from . import model as _model
from .ofp import oxm as _oxm

_fp.bind_model(_model)
# Flow-mod matches the C checker accepts stay OXM bytes (oxm.WireMatch)
# until flow_add turns them into the C key: see ext/pipeline.pxi.
_fp.bind_wire_match(_oxm.WireMatch)
_oxm.use_wire_check(_fp.oxm_check)

FlowError = _fp.FlowError
Upcall = _fp.Upcall
DummyPort = _fp.DummyPort
Port = _fp.Port
AfPacketPort = _fp.AfPacketPort
TapPort = _fp.TapPort
BondPort = _fp.BondPort

__all__ = ["Datapath", "DummyPort", "AfPacketPort", "TapPort", "BondPort", "Port", "FlowError",
           "Upcall"]


class Datapath(_fp.Datapath):
    """An OpenFlow 1.3 datapath (ext._fastpath.Datapath) plus its engine."""

    def start(self):
        """Start the engine thread (burst loop, GIL released)."""
        _fp.engine_start(self)

    def stop(self):
        """Stop the engine thread; returns once it has exited."""
        _fp.engine_stop(self)

    def flush(self):
        """tx_flush every attached port now (frames the control plane
        queued, e.g. LACPDUs from BondPort.send_on_member, leave at once
        instead of with the engine's next pass).  Safe beside a running
        engine (takes the datapath lock)."""
        _fp.engine_flush(self)

    def poll_once(self, timeout_ms=0):
        """One engine pass in this thread: wait up to timeout_ms for frames
        on the attached ports, run what arrived.  Returns frames run."""
        return _fp.engine_poll(self, timeout_ms)
