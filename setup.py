"""Builds vdp: the Cython/C fast path (ext/) and the Python packages.

`python setup.py build_ext --inplace` builds ext/_fastpath*.so next to the
sources; `pip install -e .` also installs the `vdp` command.  Set
VDP_ANNOTATE=1 to get Cython's HTML annotation of the .pyx, VDP_DEBUG=1 for
-O0 -g with assertions.
"""
import glob
import os

from setuptools import Extension, find_packages, setup

try:
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover - Cython is a build requirement
    raise SystemExit("Cython is required to build vdp: pip install cython")

debug = os.environ.get("VDP_DEBUG") == "1"
cflags = ["-O0", "-g", "-UNDEBUG"] if debug else ["-O3", "-g", "-DNDEBUG"]
cflags += ["-std=gnu11", "-Wall", "-Wno-unused-function", "-fno-strict-aliasing"]

c_sources = sorted(glob.glob("ext/*.c"))
c_sources = [s for s in c_sources if not s.endswith("_fastpath.c")]

extensions = [
    Extension(
        "ext._fastpath",
        sources=["ext/_fastpath.pyx"] + c_sources,
        include_dirs=["ext"],
        depends=glob.glob("ext/*.h") + glob.glob("ext/*.pxi") + glob.glob("ext/*.pxd"),
        extra_compile_args=cflags,
        extra_link_args=["-lpthread"],
    )
]

setup(
    name="vdp",
    version="0.1.0",
    description="A software-defined data plane for Linux with an OpenFlow 1.3 pipeline",
    packages=find_packages(include=["ext", "datapath", "datapath.*", "controller", "controller.*"]),
    ext_modules=cythonize(
        extensions,
        language_level=3,
        annotate=os.environ.get("VDP_ANNOTATE") == "1",
        compiler_directives={"boundscheck": False, "wraparound": False,
                             "cdivision": True, "embedsignature": True},
    ),
    install_requires=["os-ken", "scapy", "pyroute2"],
    entry_points={"console_scripts": ["vdp = datapath.cli:main"]},
    python_requires=">=3.9",
)
