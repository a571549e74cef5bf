"""Tuple-space classifier (ext/classifier.c) against a brute-force model.

The model keeps every rule as (value, mask, priority, insertion order) with
the 19 key words packed into one Python int, and answers a lookup by scanning
all rules: highest priority wins, ties go to the rule inserted first.  The C
classifier is driven through ClassifierTester (ext/classifier.pxi), which
takes raw 19-word keys.
"""
import os
import random
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ext import _fastpath as fp

NW = 19
ALL = (1 << 64) - 1


def pack(words):
    n = 0
    for i, w in enumerate(words):
        n |= w << (64 * i)
    return n


def unpack(n):
    return [(n >> (64 * i)) & ALL for i in range(NW)]


def words(**kw):
    """A key from {"w3": x, ...}; other words 0."""
    w = [0] * NW
    for k, v in kw.items():
        w[int(k[1:])] = v
    return w


class Model:
    """Brute force: every rule scanned on every lookup."""

    def __init__(self):
        self.rules = {}        # id -> [value, mask, priority, seq]
        self.seq = 0

    def add(self, rid, value, mask, prio):
        m = pack(mask)
        self.rules[rid] = [pack(value) & m, m, prio, self.seq]
        self.seq += 1

    def remove(self, rid):
        del self.rules[rid]

    def replace(self, old, new):
        self.rules[new] = self.rules.pop(old)

    def lookup(self, key):
        k = pack(key)
        best, best_rank = None, None
        for rid, (v, m, p, s) in self.rules.items():
            if k & m == v:
                rank = (p, -s)
                if best is None or rank > best_rank:
                    best, best_rank = rid, rank
        return best

    def find_exact(self, value, mask, prio):
        m = pack(mask)
        v = pack(value) & m
        hits = [(s, rid) for rid, (rv, rm, p, s) in self.rules.items()
                if rm == m and rv == v and p == prio]
        return min(hits)[1] if hits else None

    def loose(self, fvalue, fmask):
        fm = pack(fmask)
        fv = pack(fvalue) & fm
        return {rid for rid, (v, m, p, s) in self.rules.items()
                if m & fm == fm and v & fm == fv}

    def n_masks(self):
        return len({m for v, m, p, s in self.rules.values()})


def check_all(cls, model, keys=()):
    assert cls.count() == len(model.rules)
    assert cls.n_subtables() == model.n_masks()
    assert sorted(cls.ids()) == sorted(model.rules)
    for rid, (v, m, p, s) in model.rules.items():
        assert cls.value(rid) == unpack(v)
        assert cls.mask(rid) == unpack(m)
        assert cls.priority(rid) == p
        assert cls.find_exact(unpack(v), unpack(m), p) == model.find_exact(unpack(v), unpack(m), p)
    for k in keys:
        assert cls.lookup(k) == model.lookup(k), k


# ------------------------------------------------------------------ hypothesis
# A tiny key space (3 bits in 4 words) so random rules overlap a lot, and few
# priorities so ties are common.
WORDS = (0, 3, 6, 7)
small = st.integers(0, 7)
small_key = st.builds(lambda a, b, c, d: words(w0=a, w3=b, w6=c, w7=d), small, small, small, small)
small_prio = st.sampled_from([0, 1, 2, 3, 65535])

op = st.one_of(
    st.tuples(st.just("add"), small_key, small_key, small_prio),
    st.tuples(st.just("remove"), st.integers(0, 10 ** 6)),
    st.tuples(st.just("replace"), st.integers(0, 10 ** 6)),
    st.tuples(st.just("lookup"), small_key),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(op, max_size=80))
def test_random_ops_match_model(ops):
    cls, model = fp.ClassifierTester(), Model()
    for o in ops:
        if o[0] == "add":
            _, value, mask, prio = o
            rid = cls.add(value, mask, prio)
            model.add(rid, value, mask, prio)
        elif o[0] in ("remove", "replace") and model.rules:
            rid = sorted(model.rules)[o[1] % len(model.rules)]
            if o[0] == "remove":
                cls.remove(rid)
                model.remove(rid)
            else:
                model.replace(rid, cls.replace(rid))
        elif o[0] == "lookup":
            assert cls.lookup(o[1]) == model.lookup(o[1])
    keys = [words(w0=a, w3=b, w6=c, w7=d) for a in (0, 5, 7) for b in range(8)
            for c in (0, 3, 7) for d in (1, 6)]
    check_all(cls, model, keys)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(small_key, small_key, small_prio), max_size=40), small_key, small_key)
def test_loose_selection_matches_model(rules, fvalue, fmask):
    cls, model = fp.ClassifierTester(), Model()
    for value, mask, prio in rules:
        model.add(cls.add(value, mask, prio), value, mask, prio)
    assert sorted(cls.loose(fvalue, fmask)) == sorted(model.loose(fvalue, fmask))
    assert sorted(cls.loose([0] * NW, [0] * NW)) == sorted(model.rules)


# ------------------------------------------------------------------ large sets
def field_masks(rng, n):
    """n distinct masks shaped like OpenFlow matches (presence word + fields)."""
    fields = [(3, 0xFFFF), (4, 0xFFFFFFFFFFFF), (6, 0xFFFFFFFF), (6, 0xFFFF << 32),
              (7, 0xFFFF), (7, 0xFFFF0000), (8, 0xFF << 24), (1, ALL)]
    out = set()
    while len(out) < n:
        m = [0] * NW
        for w, bits in rng.sample(fields, rng.randint(1, 3)):
            m[w] |= bits
            m[0] |= 1 << w
        out.add(tuple(m))
    return [list(m) for m in sorted(out)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_thousands_of_rules_interleaved(seed):
    rng = random.Random(seed)
    masks = field_masks(rng, 16)
    # Values drawn from a small pool per word so many rules share masked
    # values (same-value lists) and lookups hit often.
    pool = [rng.getrandbits(64) for _ in range(6)]

    def rand_value():
        return [rng.choice(pool) for _ in range(NW)]

    cls, model = fp.ClassifierTester(), Model()
    live = []
    for step in range(7000):
        if live and rng.random() < 0.3:
            rid = live.pop(rng.randrange(len(live)))
            cls.remove(rid)
            model.remove(rid)
        else:
            value, mask = rand_value(), rng.choice(masks)
            prio = rng.choice([0, 10, 10, 20, 100, rng.randint(0, 65535)])
            rid = cls.add(value, mask, prio)
            model.add(rid, value, mask, prio)
            live.append(rid)
        if step % 50 == 0:
            for _ in range(5):
                key = rand_value()
                key[0] = ALL                     # every presence bit
                assert cls.lookup(key) == model.lookup(key)
    assert len(live) > 2000
    keys = []
    for _ in range(300):
        k = rand_value()
        k[0] = ALL
        keys.append(k)
    check_all(cls, model, keys)
    # Drain in priority order, best first: each removal changes the
    # subtables' max priority and so their order.
    live.sort(key=lambda r: (-model.rules[r][2], model.rules[r][3]))
    for i, rid in enumerate(live):
        cls.remove(rid)
        model.remove(rid)
        if i % 97 == 0:
            for k in keys[:20]:
                assert cls.lookup(k) == model.lookup(k)
    assert cls.count() == 0 and cls.n_subtables() == 0
    assert cls.lookup(keys[0]) is None


# ------------------------------------------------------------------ behaviour
K = words(w0=0b11, w3=1, w6=2)
MA = words(w0=0b01, w3=ALL)          # subtable A: word 3
MB = words(w0=0b10, w6=ALL)          # subtable B: word 6


def test_empty_and_catch_all():
    cls = fp.ClassifierTester()
    assert cls.lookup(K) is None and cls.count() == 0 and cls.ids() == []
    any_ = cls.add([0] * NW, [0] * NW, 0)
    assert cls.lookup(K) == any_ and cls.lookup([ALL] * NW) == any_
    assert cls.n_subtables() == 1


def test_value_is_masked_in_place_and_keys_may_be_bytes():
    cls = fp.ClassifierTester()
    rid = cls.add(words(w0=ALL, w3=0x1234, w6=99), MA, 5)
    assert cls.value(rid) == words(w0=0b01, w3=0x1234)
    raw = b"".join(w.to_bytes(8, sys.byteorder) for w in words(w0=0b01, w3=0x1234))
    assert len(raw) == 152
    assert cls.lookup(raw) == rid
    assert cls.find_exact(raw, MA, 5) == rid


def test_bad_input_is_refused():
    cls = fp.ClassifierTester()
    with pytest.raises(ValueError):
        cls.add([0] * 18, [0] * NW, 1)
    with pytest.raises(ValueError):
        cls.add(b"\0" * 151, [0] * NW, 1)
    with pytest.raises(ValueError):
        cls.add([0] * NW, [0] * NW, 65536)
    with pytest.raises(KeyError):
        cls.remove(12345)
    assert cls.count() == 0


def test_equal_priority_ties_go_to_first_inserted():
    cls = fp.ClassifierTester()
    masks = [MA, MB, words(w0=0b11, w3=ALL, w6=ALL), words(w0=0b01), [0] * NW]
    # Insert in an order that is not the subtable order.
    ids = [cls.add(K, m, 7) for m in masks]
    for _ in range(3):                       # deterministic, not luck
        assert cls.lookup(K) == ids[0]
    cls.remove(ids[0])
    assert cls.lookup(K) == ids[1]
    again = cls.add(K, MA, 7)                # re-added: now the newest
    assert cls.lookup(K) == ids[1]
    for rid in ids[1:]:
        cls.remove(rid)
    assert cls.lookup(K) == again


def test_equal_value_list_order():
    """Rules with the same mask and masked value differ only in priority."""
    cls = fp.ClassifierTester()
    low = cls.add(K, MA, 1)
    high = cls.add(K, MA, 9)
    mid1 = cls.add(K, MA, 5)
    mid2 = cls.add(K, MA, 5)
    assert cls.n_subtables() == 1
    assert cls.lookup(K) == high
    cls.remove(high)
    assert cls.lookup(K) == mid1
    assert cls.find_exact(K, MA, 5) == mid1
    cls.remove(mid1)
    assert cls.find_exact(K, MA, 5) == mid2
    cls.remove(mid2)
    assert cls.lookup(K) == low


def test_find_exact():
    cls = fp.ClassifierTester()
    a = cls.add(K, MA, 10)
    assert cls.find_exact(K, MA, 10) == a
    assert cls.find_exact(words(w0=0b01, w3=1), MA, 10) == a     # already masked
    assert cls.find_exact(K, MA, 11) is None                     # other priority
    assert cls.find_exact(K, MB, 10) is None                     # other mask
    assert cls.find_exact(words(w0=0b11, w3=2), MA, 10) is None  # other value
    assert cls.find_exact(K, words(w0=0b01, w3=0xFF), 10) is None


def test_removing_last_rule_of_a_subtable():
    cls = fp.ClassifierTester()
    a = cls.add(K, MA, 10)
    b = cls.add(K, MB, 5)
    assert cls.n_subtables() == 2 and cls.lookup(K) == a
    cls.remove(a)
    assert cls.n_subtables() == 1 and cls.lookup(K) == b
    assert cls.find_exact(K, MA, 10) is None
    a2 = cls.add(K, MA, 1)                   # the mask comes back as a new subtable
    assert cls.n_subtables() == 2 and cls.lookup(K) == b
    assert cls.mask(a2) == MA
    cls.remove(b)
    cls.remove(a2)
    assert cls.n_subtables() == 0 and cls.lookup(K) is None


def test_subtable_order_follows_max_priority():
    cls = fp.ClassifierTester()
    a1 = cls.add(K, MA, 10)
    b1 = cls.add(K, MB, 20)
    assert cls.lookup(K) == b1
    cls.remove(b1)                           # B's max drops below A's
    assert cls.lookup(K) == a1
    b2 = cls.add(K, MB, 5)
    assert cls.lookup(K) == a1
    b3 = cls.add(K, MB, 30)                  # B's max rises above A's
    assert cls.lookup(K) == b3
    cls.remove(b3)
    assert cls.lookup(K) == a1
    cls.remove(a1)
    assert cls.lookup(K) == b2


def test_best_rule_of_a_subtable_not_matching_does_not_stop_search():
    cls = fp.ClassifierTester()
    cls.add(words(w0=0b01, w3=99), MA, 100)  # A's best: does not match K
    a_lo = cls.add(K, MA, 1)                 # A also matches K, but low
    b_mid = cls.add(K, MB, 50)               # B ranks below A's best
    assert cls.lookup(K) == b_mid
    cls.remove(b_mid)
    assert cls.lookup(K) == a_lo


def test_replace_keeps_place_and_never_needs_memory():
    cls = fp.ClassifierTester()
    first = cls.add(K, MA, 7)
    second = cls.add(K, MB, 7)
    alone = cls.add(words(w0=0b11, w3=5), words(w0=0b11, w3=ALL, w6=ALL), 3)
    new_first = cls.replace(first)           # inherits first's insertion order
    assert cls.lookup(K) == new_first
    assert cls.value(new_first) == words(w0=0b01, w3=1) and cls.priority(new_first) == 7
    assert cls.find_exact(K, MA, 7) == new_first
    new_alone = cls.replace(alone)           # sole rule of its subtable
    assert cls.n_subtables() == 3 and cls.count() == 3
    assert sorted(cls.ids()) == sorted([new_first, second, new_alone])
    cls.remove(new_first)
    assert cls.lookup(K) == second


def test_foreach_can_stop_early():
    cls = fp.ClassifierTester()
    for i in range(10):
        cls.add(words(w0=1, w3=i), MA, i)
    assert len(cls.ids()) == 10
    assert len(cls.ids(stop_after=3)) == 3


def test_insertion_counter_wrap_keeps_tie_order():
    cls = fp.ClassifierTester()
    model = Model()
    masks = [MA, MB, words(w0=0b11, w3=ALL, w6=ALL), [0] * NW]
    cls.set_next_seq(2 ** 32 - 4)            # wraps (and renumbers) below
    for i in range(12):
        m = masks[i % len(masks)]
        model.add(cls.add(K, m, 7 if i % 3 else 8), K, m, 7 if i % 3 else 8)
    while model.rules:
        assert cls.lookup(K) == model.lookup(K)
        rid = model.lookup(K)
        cls.remove(rid)
        model.remove(rid)
    assert cls.lookup(K) is None


def test_growth_and_shrink_keep_lookups_right():
    cls = fp.ClassifierTester()
    mask = words(w0=1, w6=ALL)
    ids = {i: cls.add(words(w0=1, w6=i), mask, i % 3) for i in range(5000)}
    for i in range(0, 5000, 7):
        assert cls.lookup(words(w0=1, w6=i)) == ids[i]
    for i in range(5000):
        if i % 100:
            cls.remove(ids.pop(i))
    assert cls.count() == 50
    for i in range(0, 5000, 7):
        assert cls.lookup(words(w0=1, w6=i)) == ids.get(i)


# ------------------------------------------------------------------ memory
def test_churn_frees_everything_it_allocates():
    """Insert/remove churn, then free: the heap is back where it started.
    tcache keeps freed chunks counted as in use, so run with it disabled."""
    code = ("from ext import _fastpath as f; "
            "print(f.cls_churn(3000, 60000, 16, 5), f.cls_churn(50, 20000, 40, 6))")
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.tcache_count=0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["0", "0"]


def test_churn_does_not_grow_in_process():
    first = fp.cls_churn(2000, 20000, 16, 7)
    for _ in range(5):
        # a leak of even one byte per insert would show as > 20 kB
        assert fp.cls_churn(2000, 40000, 16, 8) <= max(first, 0) + 16384
