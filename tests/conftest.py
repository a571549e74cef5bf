"""Shared pytest setup for vdp's tests.

- Tests under tests/integration/ get the `integration` marker automatically;
  integration tests are skipped, with the reason, when this process cannot
  create network namespaces, veth pairs and TAP devices (not root, no
  iproute2, no /dev/net/tun).
- sys.path starts with the PYTHONPATH entries, then the repository: a
  private build (scripts/devbuild.sh, PYTHONPATH=/tmp/vdp-NAME/lib:...)
  wins over an in-place build in ext/ even under `python -m pytest` (which
  puts the current directory first), and plain `pytest` finds the packages.
"""
import os
import shutil
import sys
from pathlib import Path

REPO = str(Path(__file__).resolve().parents[1])
_first = [os.path.abspath(p) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
_first += [REPO] if REPO not in _first else []
sys.path[:] = _first + [p for p in sys.path if os.path.abspath(p or ".") not in _first]

import pytest  # noqa: E402

INTEGRATION_DIR = Path(__file__).resolve().parent / "integration"


def integration_unavailable():
    """Why integration tests cannot run here, or None if they can."""
    if os.geteuid() != 0:
        return "integration tests need root (network namespaces, veth, TAP): run as root, e.g. `sudo make test`"
    if shutil.which("ip") is None:
        return "integration tests need iproute2 (`ip`): run `make deps`"
    if not os.path.exists("/dev/net/tun"):
        return "integration tests need /dev/net/tun for TAP ports"
    return None


def pytest_collection_modifyitems(config, items):
    reason = integration_unavailable()
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
        if reason and item.get_closest_marker("integration"):
            item.add_marker(pytest.mark.skip(reason=reason))
