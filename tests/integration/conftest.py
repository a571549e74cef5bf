"""Fixtures for integration tests: a `topo` per test (see topo.py) that is
torn down even when the test fails, printing the daemons' logs on failure."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from topo import Topo  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"vdpt_rep_{rep.when}", rep)


@pytest.fixture
def topo(request):
    t = Topo(request.node.name)
    try:
        yield t
    finally:
        rep = getattr(request.node, "vdpt_rep_call", None)
        if t.daemons and (rep is None or rep.failed):
            print(f"\n=== vdp daemon logs ({t.tmpdir}) ===\n{t.daemon_logs()}")
        t.cleanup()
