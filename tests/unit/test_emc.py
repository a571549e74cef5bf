"""Exact-match cache (ext/emc.c) through EmcTester (ext/classifier.pxi).

Programs are tagged with an int; the tests choose the hash themselves so they
can put several keys in one 4-way set.  With capacity C there are C/4 sets
and a hash's set is hash % (C/4).
"""
import os
import subprocess
import sys

import pytest

from ext import _fastpath as fp

NW = 19


def key(i, j=0):
    k = [0] * NW
    k[1] = i
    k[18] = j
    return k


def test_capacity_is_rounded_to_a_power_of_two():
    assert fp.EmcTester(16).capacity() == 16
    assert fp.EmcTester(5).capacity() == 8
    assert fp.EmcTester(1).capacity() == 4
    assert fp.EmcTester(0).capacity() == 4


def test_hit_and_miss():
    emc = fp.EmcTester(64)
    assert emc.lookup(key(1), 11, 1) is None
    emc.insert(key(1), 11, 1, 100)
    assert emc.lookup(key(1), 11, 1) == 100
    assert emc.lookup(key(1), 12, 1) is None            # other hash
    assert emc.lookup(key(2), 11, 1) is None            # same hash, other key
    assert emc.lookup(key(1, 1), 11, 1) is None         # differs in the last word
    k = key(1)
    k[0] = 1 << 63
    assert emc.lookup(k, 11, 1) is None                 # differs in the first word
    assert emc.used() == 1


def test_bytes_keys():
    emc = fp.EmcTester(16)
    raw = b"".join(w.to_bytes(8, sys.byteorder) for w in key(7, 9))
    emc.insert(raw, 5, 0, 1)
    assert emc.lookup(key(7, 9), 5, 0) == 1


def test_generation_invalidates():
    emc = fp.EmcTester(64)
    emc.insert(key(1), 11, 1, 100)
    assert emc.lookup(key(1), 11, 2) is None            # newer generation: stale
    emc.insert(key(1), 11, 2, 200)                      # refreshed in place
    assert emc.lookup(key(1), 11, 2) == 200
    assert emc.lookup(key(1), 11, 1) is None
    assert emc.used() == 1


def test_same_key_replaces_in_place():
    emc = fp.EmcTester(16)
    for tag in range(10):
        emc.insert(key(3), 8, 1, tag)
    assert emc.lookup(key(3), 8, 1) == 9
    assert emc.used() == 1


def test_full_set_evicts_oldest():
    emc = fp.EmcTester(16)                              # 4 sets of 4 ways
    # Different hashes, same set (hash % 4 == 1).
    hashes = [1, 5, 9, 13, 17]
    for i, h in enumerate(hashes[:4]):
        emc.insert(key(i), h, 1, i)
    for i, h in enumerate(hashes[:4]):
        assert emc.lookup(key(i), h, 1) == i
    emc.insert(key(4), hashes[4], 1, 4)                 # set full: oldest (0) goes
    assert emc.lookup(key(0), hashes[0], 1) is None
    for i in range(1, 5):
        assert emc.lookup(key(i), hashes[i], 1) == i
    emc.insert(key(5), 21, 1, 5)                        # next oldest (1) goes
    assert emc.lookup(key(1), hashes[1], 1) is None
    assert emc.lookup(key(5), 21, 1) == 5
    # Other sets untouched.
    emc.insert(key(9), 2, 1, 9)
    assert emc.lookup(key(9), 2, 1) == 9 and emc.used() == 5


def test_stale_ways_are_replaced_before_current_ones():
    emc = fp.EmcTester(4)                               # one set of 4 ways
    # Keys 0 and 1 are current (generation 2) and the OLDEST entries; keys 2
    # and 3 are newer but stale (generation 1).  New keys must take the stale
    # ways, not the oldest ones.
    emc.insert(key(0), 0, 2, 0)
    emc.insert(key(1), 0, 2, 1)
    emc.insert(key(2), 0, 1, 2)
    emc.insert(key(3), 0, 1, 3)
    emc.insert(key(10), 0, 2, 10)
    emc.insert(key(11), 0, 2, 11)
    assert [emc.lookup(key(i), 0, 2) for i in (0, 1, 10, 11)] == [0, 1, 10, 11]
    assert emc.lookup(key(2), 0, 1) is None and emc.lookup(key(3), 0, 1) is None
    assert emc.used() == 4


def test_clear():
    emc = fp.EmcTester(32)
    for i in range(20):
        emc.insert(key(i), i, 1, i)
    assert emc.used() > 0
    emc.clear()
    assert emc.used() == 0
    assert all(emc.lookup(key(i), i, 1) is None for i in range(20))
    emc.insert(key(1), 1, 1, 1)                         # usable after clear
    assert emc.lookup(key(1), 1, 1) == 1


def test_many_keys_hits_are_always_right():
    emc = fp.EmcTester(256)
    stored = {}
    for i in range(2000):
        h = (i * 2654435761) & 0xFFFFFFFF
        emc.insert(key(i), h, 1, i)
        stored[i] = h
    hits = 0
    for i, h in stored.items():
        got = emc.lookup(key(i), h, 1)
        assert got in (None, i)
        hits += got is not None
    assert hits == emc.used() == 256


@pytest.mark.parametrize("n_entries,n_keys", [(4, 50), (1024, 3000), (4096, 500)])
def test_ownership_churn_in_c(n_entries, n_keys):
    hits, _ = fp.emc_churn(n_entries, 100000, n_keys, 3)
    assert hits > 0


def test_ownership_no_leak_no_double_free():
    """Churn (replacements, stale ways, clear, free) in C, repeatedly, in a
    process with glibc's tcache off so freed memory is really counted free:
    the heap must come back exactly; a double free would abort the child."""
    code = ("from ext import _fastpath as f\n"
            "for i in range(20):\n"
            "    hits, delta = f.emc_churn(256, 20000, 700, i)\n"
            "    assert delta == 0, delta\n"
            "for i in range(200):\n"
            "    e = f.EmcTester(8)\n"
            "    for j in range(50):\n"
            "        e.insert([j % 11] * 19, j % 3, j // 20, j)\n"
            "    if i % 2: e.clear()\n"
            "    del e\n"
            "print('ok')\n")
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.tcache_count=0")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ok"]
