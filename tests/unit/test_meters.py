"""Meters (ext/meter.c) through MeterTester with warped time, and the
DSCP_REMARK band's rewrite (vdp_remark_dscp in ext/actions.c)."""
import pytest

pytest.importorskip("ext._fastpath")
from ext import _fastpath as fp  # noqa: E402
from scapy.all import IP, TCP, Ether, IPv6  # noqa: E402

from datapath.model import (  # noqa: E402
    OFPMBT_DROP, OFPMBT_DSCP_REMARK, OFPMF_BURST, OFPMF_KBPS, OFPMF_PKTPS, OFPMF_STATS, Band,
    MeterSpec)

S = 1_000_000_000          # ns per second


def offer(m, pps, seconds, length=100, start=0):
    """Offer packets at a constant rate; count the verdicts."""
    res = {"pass": 0, "drop": 0, "remark": 0}
    n = int(pps * seconds)
    gap = S // pps
    for i in range(n):
        r = m.offer(start + i * gap, length)
        res[r if isinstance(r, str) else r[0]] += 1
    return res


# ---------------------------------------------------------------- rates
def test_pktps_drop_rate():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS, (Band(OFPMBT_DROP, 100),)))
    r = offer(m, 200, 10)
    # 100 pkt/s for 10 s plus the initial bucket (100 ms of rate = 10 packets)
    assert abs(r["pass"] - (1000 + 10)) <= 2, r
    assert r["pass"] + r["drop"] == 2000


def test_pktps_under_rate_all_pass():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS, (Band(OFPMBT_DROP, 1000),)))
    assert offer(m, 500, 5) == {"pass": 2500, "drop": 0, "remark": 0}


def test_kbps_drop_rate():
    # 1000 kbit/s; 1250-byte packets are 10 kbit -> 100 packets/s conform
    m = fp.MeterTester(MeterSpec(1, OFPMF_KBPS, (Band(OFPMBT_DROP, 1000),)))
    r = offer(m, 300, 10, length=1250)
    assert abs(r["pass"] - (1000 + 10)) <= 2, r


def test_kbps_counts_bytes_not_packets():
    m = fp.MeterTester(MeterSpec(1, OFPMF_KBPS, (Band(OFPMBT_DROP, 1000),)))
    small = offer(m, 300, 10, length=125)       # 1 kbit each: 300 kbit/s < rate
    assert small["drop"] == 0


def test_low_kbps_rate_still_passes_whole_frames():
    m = fp.MeterTester(MeterSpec(1, OFPMF_KBPS, (Band(OFPMBT_DROP, 8),)))   # 8 kbit/s
    assert m.offer(0, 1500) == "pass"              # default bucket >= one frame
    assert m.offer(1000, 1500) == "drop"
    assert m.offer(2 * S, 1500) == "pass"          # 1.5 s refills 12 kbit


# ---------------------------------------------------------------- burst
def test_burst_size_pktps():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DROP, 10, burst_size=50),)))
    verdicts = [m.offer(0, 64) for _ in range(80)]        # 80 packets at one instant
    assert verdicts.count("pass") == 50
    more = [m.offer(S, 64) for _ in range(20)]            # 1 s later: 10 tokens
    assert more.count("pass") == 10


def test_burst_size_kbps():
    # 80 kbit bucket: ten 1000-byte (8 kbit) packets back to back
    m = fp.MeterTester(MeterSpec(1, OFPMF_KBPS | OFPMF_BURST, (Band(OFPMBT_DROP, 8, burst_size=80),)))
    verdicts = [m.offer(0, 1000) for _ in range(15)]
    assert verdicts.count("pass") == 10


def test_burst_ignored_without_flag():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS, (Band(OFPMBT_DROP, 100, burst_size=1000),)))
    verdicts = [m.offer(0, 64) for _ in range(50)]
    assert verdicts.count("pass") == 10                   # 100 ms of 100 pkt/s


def test_bucket_refill_is_capped():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DROP, 10, burst_size=5),)))
    verdicts = [m.offer(3600 * S, 64) for _ in range(20)]  # an hour idle: still 5
    assert verdicts.count("pass") == 5


# ---------------------------------------------------------------- band choice
def test_highest_exceeded_band_applies():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS | OFPMF_STATS, (
        Band(OFPMBT_DSCP_REMARK, 50, prec_level=1),
        Band(OFPMBT_DROP, 100))))
    r = offer(m, 200, 10)
    # above 100/s: drop band (highest exceeded); 50..100/s: remark; below: pass
    assert abs(r["drop"] - 1000) <= 15, r
    assert abs(r["remark"] - 500) <= 15, r
    assert abs(r["pass"] - 500) <= 15, r
    st = m.stats(10 * S)
    assert [b["packet_count"] for b in st["bands"]] == [r["remark"], r["drop"]]


def test_band_order_does_not_matter():
    specs = [(Band(OFPMBT_DROP, 100), Band(OFPMBT_DSCP_REMARK, 50, prec_level=2)),
             (Band(OFPMBT_DSCP_REMARK, 50, prec_level=2), Band(OFPMBT_DROP, 100))]
    results = [offer(fp.MeterTester(MeterSpec(1, OFPMF_PKTPS, bands)), 200, 5) for bands in specs]
    assert results[0] == results[1]


def test_remark_verdict_carries_prec_level():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DSCP_REMARK, 1, 1, prec_level=2),)))
    assert m.offer(0, 64) == "pass"
    assert m.offer(1, 64) == ("remark", 2)


# ---------------------------------------------------------------- counters
def test_counters_and_duration():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DROP, 1, burst_size=2),)),
                       now_ns=5 * S)
    for i in range(5):
        m.offer(5 * S + i, 100 + i)
    st = m.stats(7 * S + 500)
    assert st["packet_in_count"] == 5
    assert st["byte_in_count"] == 100 + 101 + 102 + 103 + 104
    assert st["bands"] == [{"packet_count": 3, "byte_count": 102 + 103 + 104}]
    assert st["duration_ns"] == 2 * S + 500


def test_modify_resets_bands_keeps_counters():
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DROP, 1, burst_size=1),)))
    assert [m.offer(0, 10) for _ in range(3)] == ["pass", "drop", "drop"]
    m.modify(MeterSpec(1, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DROP, 1, burst_size=3),)))
    assert [m.offer(1, 10) for _ in range(4)] == ["pass", "pass", "pass", "drop"]
    st = m.stats(0)
    assert st["packet_in_count"] == 7 and st["bands"][0]["packet_count"] == 1


def test_bad_meter_spec():
    with pytest.raises(ValueError):
        fp.MeterTester(MeterSpec(1, OFPMF_KBPS, (Band(7, 10),)))
    with pytest.raises(ValueError):
        fp.MeterTester(MeterSpec(1, OFPMF_KBPS, tuple(Band(OFPMBT_DROP, i + 1) for i in range(17))))


# ---------------------------------------------------------------- DSCP remark
@pytest.mark.parametrize("dscp,prec,want", [
    (18, 1, 20),        # AF21 -> AF22 (os-ken 02_DSCP_REMARK)
    (10, 1, 12), (10, 2, 14), (10, 5, 14),     # AF11 -> AF12/AF13, saturates
    (38, 1, 38),        # AF43 already highest
    (0, 1, 0), (46, 1, 46), (48, 1, 48), (8, 1, 8),   # BE, EF, CS6, CS1 untouched
])
def test_dscp_raise(dscp, prec, want):
    assert fp.dscp_raise(dscp, prec) == want


def test_remark_dscp_ipv4():
    fr = bytes(Ether() / IP(src="1.1.1.1", dst="2.2.2.2", tos=(18 << 2) | 1) / TCP())
    out, rc = fp.remark_dscp(fr, 1)
    p = Ether(out)
    assert rc == 0 and p[IP].tos == (20 << 2) | 1
    want = p.copy()
    want[IP].chksum = None
    assert Ether(bytes(want))[IP].chksum == p[IP].chksum
    assert out[34:] == fr[34:]


def test_remark_dscp_ipv6():
    fr = bytes(Ether() / IPv6(src="10::10", dst="20::20", tc=(34 << 2) | 2, fl=0x12345) / TCP())
    out, rc = fp.remark_dscp(fr, 2)
    p = Ether(out)
    assert rc == 0 and p[IPv6].tc == (38 << 2) | 2 and p[IPv6].fl == 0x12345


def test_remark_dscp_non_ip():
    fr = bytes(Ether(type=0x0806) / (b"\0" * 28))
    assert fp.remark_dscp(fr, 1) == (fr, -1)


def test_meter_table():
    t = fp.MeterTableTester()
    for mid in range(1, 300):
        assert t.add(MeterSpec(mid, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DROP, 1, burst_size=1),)))
    assert not t.add(MeterSpec(5, OFPMF_KBPS, ()))
    assert t.ids() == list(range(1, 300))
    assert [t.offer(7, 0, 10) for _ in range(2)] == ["pass", "drop"]
    addr = t.address(7)
    assert t.modify(MeterSpec(7, OFPMF_PKTPS | OFPMF_BURST, (Band(OFPMBT_DROP, 1, burst_size=2),)))
    assert t.address(7) == addr
    assert [t.offer(7, 1, 10) for _ in range(3)] == ["pass", "pass", "drop"]
    assert t.stats(7)["packet_in_count"] == 5
    assert t.remove(7) and not t.remove(7) and t.stats(7) is None
    assert len(t.ids()) == 298


# ---------------------------------------------------------------- the switch test tool's traffic
def offer_ticks(m, pps, seconds, length, tick_ns=10_000_000):
    """Traffic shaped like os-ken's switch test tool sends it: every 10 ms
    tick a burst of pps x 10 ms packets (fractions carried over), all at the
    tick's instant.  Returns {verdict: packets}."""
    res = {"pass": 0, "drop": 0, "remark": 0}
    acc = 0.0
    for tick in range(int(seconds * S // tick_ns)):
        acc += pps * tick_ns / S
        n = int(acc)
        acc -= n
        for _ in range(n):
            r = m.offer(tick * tick_ns, length)
            res[r if isinstance(r, str) else r[0]] += 1
    return res


@pytest.mark.parametrize("rate,pps", [(100, 200), (1000, 2000), (10000, 20000)])
def test_pktps_remark_band_is_exact_on_bursty_input(rate, pps):
    """02_DSCP_REMARK_01_PKTPS_*: twice the band's rate for 30 s; the band
    must remark exactly the excess (the tool allows 10%; we hold 0.5%)."""
    m = fp.MeterTester(MeterSpec(1, OFPMF_PKTPS, (Band(OFPMBT_DSCP_REMARK, rate, prec_level=1),)))
    r = offer_ticks(m, pps, 30, 1500)
    conform = rate * 30 + rate // 10          # plus the initial 100 ms bucket
    assert abs(r["pass"] - conform) <= conform * 0.005, r
    assert r["pass"] + r["remark"] == pps * 30 and r["drop"] == 0


@pytest.mark.parametrize("kbps,pps", [(1000, 175), (10000, 1750), (100000, 17500)])
def test_kbps_drop_band_is_exact_on_bursty_input(kbps, pps):
    """01_DROP_00_KBPS_*: 1500-byte frames at about twice the band's rate;
    what passes is the band's rate in bits (1 kbit = 1000 bits)."""
    m = fp.MeterTester(MeterSpec(1, OFPMF_KBPS, (Band(OFPMBT_DROP, kbps),)))
    r = offer_ticks(m, pps, 30, 1500)
    want_bytes = kbps * 1000 / 8 * 30.1       # 30 s plus the initial 100 ms bucket
    assert abs(r["pass"] * 1500 - want_bytes) <= want_bytes * 0.005, r
