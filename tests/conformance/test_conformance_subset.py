"""The CI share of the OpenFlow 1.3 conformance run (tests/conformance/runner.py).

Runs the 114 cases of os-ken's switch test tool that the Ryu certification
marks "required" (runner.REQUIRED: action OUTPUT, group ALL and the basic
match fields) with vdp as the target switch and a second vdp as the tester
switch, and asserts that every one passes and that the run left nothing
behind.  About 4 minutes, of which the three group ALL cases (30 s of
traffic each) take half.  The whole suite is `make conformance`.
"""
import pytest

from tests.conformance import runner

def test_required_selection_is_the_certifications_114():
    files = runner.select(["required"])
    assert sum(len(f.cases) for f in files) == runner.REQUIRED_COUNT
    # the plain-Ethernet variant only, for the 18 fields with 4 encapsulations
    ip_proto = next(f for f in files if f.rel == "match/10_IP_PROTO_IPv4.json")
    assert all(c.startswith("ethernet/ipv4") for c in ip_proto.cases)
    assert len(ip_proto.cases) == 3


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_required_cases_all_pass():
    lines = []
    res = runner.run_conformance(["required"], tester="vdp", out=lines.append)
    assert res.total == runner.REQUIRED_COUNT
    # the runner checks its own names (veths, bridge, daemons) are all gone
    assert res.cleanup_error is None, res.cleanup_error
    assert res.passed == res.total, "\n".join(lines) + "\n" + res.summary()


# ---------------------------------------------------------------- os-ken's SCTP checksum
def _os_ken_sctp_frame(src_port=12345):
    from os_ken.lib.packet import ethernet, ipv4, packet, sctp
    p = packet.Packet()
    p.add_protocol(ethernet.ethernet(ethertype=0x0800))
    p.add_protocol(ipv4.ipv4(proto=132))
    p.add_protocol(sctp.sctp(src_port=src_port, dst_port=2222, vtag=7, chunks=[
        sctp.chunk_data(tsn=1, payload_data=b"vdp conformance")]))
    p.serialize()
    return bytes(p.data)


def _scapy_says_sctp_checksum_ok(frame):
    from scapy.layers.l2 import Ether
    from scapy.layers.sctp import SCTP
    pkt = Ether(frame)
    got = pkt[SCTP].chksum
    del pkt[SCTP].chksum
    return got == Ether(bytes(pkt))[SCTP].chksum


def test_tool_mends_os_kens_sctp_checksum(monkeypatch):
    from os_ken.lib.packet import sctp
    from tests.conformance import tool
    monkeypatch.setattr(sctp.sctp, "_checksum", sctp.sctp._checksum)   # undone afterwards
    shipped_ok = _scapy_says_sctp_checksum_ok(_os_ken_sctp_frame())
    tool.mend_sctp_checksum()
    for port in (1, 11111, 12345, 65535):
        assert _scapy_says_sctp_checksum_ok(_os_ken_sctp_frame(port)), port
    if shipped_ok:
        pytest.skip("this os-ken computes SCTP checksums right: tool.py's mend is moot")


def test_summary_gives_both_figures():
    files = runner.select(["set_field"])
    rewrites = frozenset(f.description for f in files if runner.SCTP_REWRITE.match(f.rel))
    assert len(rewrites) == 4 and sum(len(f.cases) for f in files
                                      if f.description in rewrites) == 16
    cases = [runner.Case(f.description, c, True) for f in files for c in f.cases]
    cases[0].ok = False
    res = runner.Result("vdp", len(cases), cases, 61.0, sctp_rewrites=rewrites)
    text = res.summary()
    assert text.startswith(f"passed {len(cases) - 1}/{len(cases)}\n")
    assert f"with os-ken as shipped: passed {len(cases) - 17}/{len(cases)}" in text
    assert res.passed_by_mend == 16
    unmended = runner.Result("vdp", len(cases), cases, 61.0, sctp_mended=False,
                             sctp_rewrites=rewrites)
    assert unmended.passed_by_mend == 0 and "cannot pass" in unmended.summary()
