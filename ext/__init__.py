"""vdp's fast path: C and Cython.  Only datapath/fastpath.py imports this."""
