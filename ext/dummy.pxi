# dummy.pxi - owned by its area; see ext/_fastpath.pyx
