# vdp entry points.  Run as root on Debian 12:
#   make demo    install deps, build, run the demo (namespaces, pings, iperf3, pps)
#   make test    install deps, build, run unit + integration tests
#   make bench   install deps, build, run the benchmarks
#   make build   build the fast path in place and install the `vdp` command
#   make deps    install Debian/Python packages, start Open vSwitch
#   make clean   remove build products
# Several people building side by side: scripts/devbuild.sh NAME builds into
# /tmp/vdp-NAME instead (PYTHONPATH=/tmp/vdp-NAME/lib:$PWD).

PYTHON ?= python3
PYTEST = $(PYTHON) -m pytest

# Targets that run vdp use the in-place build of this tree, whatever
# PYTHONPATH the caller had (a private build would otherwise win).
RUN_ENV = PYTHONPATH=$(CURDIR)

.PHONY: all deps build test demo bench clean conformance

# Exit 0 iff `import datapath` (outside the tree, no PYTHONPATH) comes from
# the tree given as argv[1] and the `vdp` command is installed.
define VDP_INSTALLED_HERE
import os, sys, sysconfig
import datapath
root = os.path.dirname(os.path.dirname(os.path.realpath(datapath.__file__)))
script = os.path.join(sysconfig.get_path("scripts"), "vdp")
sys.exit(0 if root == os.path.realpath(sys.argv[1]) and os.path.exists(script) else 1)
endef
export VDP_INSTALLED_HERE

all: build

deps:
	PYTHON=$(PYTHON) scripts/setup-deps.sh

build:
	$(PYTHON) setup.py -q build_ext --inplace
	@# Editable install for the `vdp` console command; skipped when this
	@# tree is already the one installed (the in-place build above is what
	@# it runs, so nothing else needs refreshing).
	@if ! (cd / && env -u PYTHONPATH $(PYTHON) -c "$$VDP_INSTALLED_HERE" "$(CURDIR)") 2>/dev/null; then \
	    echo "$(PYTHON) -m pip install -e . --no-build-isolation --no-deps"; \
	    $(PYTHON) -m pip install -q --disable-pip-version-check --root-user-action=ignore \
	        -e . --no-build-isolation --no-deps; \
	fi
	@command -v pyenv >/dev/null 2>&1 && pyenv rehash || true

# pytest exits 5 when it collected no test: that must fail loudly, not pass.
test: deps build
	@$(RUN_ENV) $(PYTEST) tests -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

demo: deps build
	$(RUN_ENV) $(PYTHON) scripts/demo.py

bench: deps build
	@$(RUN_ENV) $(PYTEST) bench -q --benchmark-only; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make bench: pytest collected no benchmarks" >&2; exit 1; fi; \
	[ $$rc -eq 0 ] || exit $$rc
	$(RUN_ENV) $(PYTHON) bench/pps.py

# os-ken's switch test tool, all 991 OpenFlow 1.3 cases, vdp as the target
# (tests/conformance/runner.py); about 35 minutes.  Prints `passed N/991`.
conformance: deps build
	$(RUN_ENV) $(PYTHON) -m tests.conformance.runner --tester vdp --min 980

clean:
	rm -rf build *.egg-info ext/*.so ext/_fastpath.c ext/*.html \
	    .pytest_cache .benchmarks .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
