# cython: language_level=3
"""The one Cython facade over vdp's C fast path.

Each area of the fast path keeps its Python-visible part in its own .pxi,
included here (order matters: later files use earlier ones) so everything
links into one extension module, ext._fastpath.  datapath/fastpath.py is the
only importer.
"""
include "cdefs.pxi"        # shared C types, base Port class
include "parse.pxi"        # key field <-> Python int conversion, parse hooks
include "classifier.pxi"   # classifier/EMC test and bench hooks
include "actions.pxi"      # model action -> vdp_op compilation, rewrite hooks, groups, meters
include "pipeline.pxi"     # Datapath: tables, flows, groups, meters, upcalls
include "dummy.pxi"        # DummyPort: in-memory port for tests and engine benches
include "ports.pxi"        # AfPacketPort, TapPort, engine start/stop/poll
include "bond.pxi"         # BondPort: one OpenFlow port over N members, hashed per packet
