"""OpenFlow 1.3 conformance: os-ken's switch test tool against vdp (runner.py)."""
