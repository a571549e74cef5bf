"""vdp's fast path: C and Cython.  Only datapath/fastpath.py imports this."""
# Lets a private build (scripts/devbuild.sh) supply _fastpath from another
# sys.path entry when ext/ here holds no in-place build.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)
