# cython: language_level=3
"""The one Cython facade over vdp's C fast path.

Each area of the fast path keeps its Python-visible part in its own .pxi,
included here so everything links into one extension module (ext._fastpath).
datapath/fastpath.py is the only importer.
"""
include "cdefs.pxi"
include "parse.pxi"
include "classifier.pxi"
include "actions.pxi"
include "pipeline.pxi"
include "ports.pxi"
