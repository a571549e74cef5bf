/* classifier.c - tuple-space-search classifier (see classifier.h).
 *
 * Structure:
 *   vdp_cls          subtables sorted by max_rank (best first), plus a hash
 *                    table mask -> subtable used by insert/find_exact.
 *   subtable         one per distinct mask: the mask and the list of key words
 *                    it touches, an open-addressing (linear probing) table
 *                    from masked value to the list of rules sharing that value
 *                    (sorted best rank first), and a max-heap of all its rules
 *                    by rank, whose top gives the subtable's max_rank.
 *
 * The rank of a rule packs (priority, earliest insertion) into one u64 so all
 * comparisons are a single integer compare and no two rules tie.  The heap
 * lets removal of a subtable's best rule find the next best in O(log n)
 * instead of rescanning the subtable.
 *
 * Hash slots are two parallel arrays: 32-bit hashes (0 = empty slot; a real
 * hash of 0 is stored as 1) scanned during probing, and head-rule pointers
 * read only on a hash hit.  Deletion uses backward shifting, so there are no
 * tombstones; the table grows past 1/2 load so misses probe ~2 slots.
 */
#include <stdlib.h>
#include <string.h>
#include "classifier.h"
#include "vdp_parse.h"

#define SLOTS_MIN      4u       /* per subtable; grows past 1/2 load */
#define MASKTAB_MIN    16u      /* mask -> subtable table; grows at 1/2 load */
#define HASH_BASIS     0x5bd1e995u

typedef struct vdp_cls_subtable {
    uint64_t  max_rank;          /* rank of heap[0]; lookup reads this first */
    uint32_t  slot_mask;         /* n_slots - 1 */
    uint32_t  n_values;          /* occupied slots */
    uint32_t *hashes;            /* [n_slots], 0 = empty */
    vdp_cls_rule **heads;        /* [n_slots], best-ranked rule of each value */
    uint8_t   nwords;            /* key words the mask touches */
    uint8_t   words[VDP_KEY_WORDS];
    uint32_t  pos;               /* index in cls->subs */
    uint32_t  mhash;             /* hash of the mask (mask table) */
    uint32_t  n_rules;
    uint32_t  heap_cap;
    vdp_cls_rule **heap;         /* max-heap by rank, n_rules entries */
    vdp_key   mask;
} vdp_cls_subtable;

struct vdp_cls {
    vdp_cls_subtable **subs;     /* sorted by max_rank, best first */
    uint32_t n_subs, subs_cap;
    vdp_cls_subtable **mt;       /* mask table, open addressing, NULL = empty */
    uint32_t mt_mask, mt_n;
    uint32_t n_rules;
    uint32_t next_seq;
};

/* ------------------------------------------------------------ helpers */

static inline uint64_t rank_of(const vdp_cls_rule *r)
{
    /* Higher priority first; among equals, the smaller seq (older) first. */
    return ((uint64_t)(uint32_t)r->priority << 32) | (uint32_t)~r->seq;
}

static inline uint32_t nz_hash(uint32_t h)
{
    return h ? h : 1;
}

static inline uint32_t st_hash(const vdp_cls_subtable *st, const vdp_key *k)
{
    return nz_hash(vdp_key_hash_words(k, &st->mask, st->words, st->nwords, HASH_BASIS));
}

/* (key & mask) == value over the subtable's words; value is pre-masked. */
static inline int st_match(const vdp_cls_subtable *st, const vdp_key *key,
                           const vdp_key *value)
{
    uint64_t diff = 0;
    for (int i = 0; i < st->nwords; i++) {
        unsigned w = st->words[i];
        diff |= (key->w[w] & st->mask.w[w]) ^ value->w[w];
    }
    return diff == 0;
}

/* Hash of a whole mask, for the mask table (control path only). */
static uint32_t mask_hash(const vdp_key *m)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int i = 0; i < VDP_KEY_WORDS; i++) {
        h ^= m->w[i] * 0xff51afd7ed558ccdULL;
        h = ((h << 29) | (h >> 35)) * 0xc4ceb9fe1a85ec53ULL;
    }
    h ^= h >> 33;
    return (uint32_t)h;
}

static inline int key_equal(const vdp_key *a, const vdp_key *b)
{
    uint64_t diff = 0;
    for (int i = 0; i < VDP_KEY_WORDS; i++)
        diff |= a->w[i] ^ b->w[i];
    return diff == 0;
}

/* ------------------------------------------------------------ heap */

static inline void heap_set(vdp_cls_subtable *st, uint32_t i, vdp_cls_rule *r)
{
    st->heap[i] = r;
    r->heap_idx = i;
}

static void heap_sift_up(vdp_cls_subtable *st, uint32_t i)
{
    vdp_cls_rule *r = st->heap[i];
    uint64_t rk = rank_of(r);
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (rank_of(st->heap[p]) >= rk)
            break;
        heap_set(st, i, st->heap[p]);
        i = p;
    }
    heap_set(st, i, r);
}

static void heap_sift_down(vdp_cls_subtable *st, uint32_t i)
{
    uint32_t n = st->n_rules;
    vdp_cls_rule *r = st->heap[i];
    uint64_t rk = rank_of(r);
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && rank_of(st->heap[c + 1]) > rank_of(st->heap[c]))
            c++;
        if (rank_of(st->heap[c]) <= rk)
            break;
        heap_set(st, i, st->heap[c]);
        i = c;
    }
    heap_set(st, i, r);
}

/* ------------------------------------------------------------ value table */

/* The slot holding value `v` (pre-masked, hash h), or -1. */
static int64_t slot_find(const vdp_cls_subtable *st, const vdp_key *v, uint32_t h)
{
    uint32_t m = st->slot_mask;
    for (uint32_t i = h & m;; i = (i + 1) & m) {
        uint32_t sh = st->hashes[i];
        if (sh == 0)
            return -1;
        if (sh == h && st_match(st, v, &st->heads[i]->value))
            return i;
    }
}

static void slot_place(uint32_t *hashes, vdp_cls_rule **heads, uint32_t m,
                       uint32_t h, vdp_cls_rule *head)
{
    uint32_t i = h & m;
    while (hashes[i])
        i = (i + 1) & m;
    hashes[i] = h;
    heads[i] = head;
}

/* Replaces the slot arrays with n_slots slots (power of two, > n_values). */
static int slots_resize(vdp_cls_subtable *st, uint32_t n_slots)
{
    /* One block: heads (8-aligned) then hashes. */
    void *blk = calloc(n_slots, sizeof(vdp_cls_rule *) + sizeof(uint32_t));
    if (!blk)
        return -1;
    vdp_cls_rule **heads = blk;
    uint32_t *hashes = (uint32_t *)(heads + n_slots);
    if (st->heads) {
        for (uint32_t i = 0; i <= st->slot_mask; i++)
            if (st->hashes[i])
                slot_place(hashes, heads, n_slots - 1, st->hashes[i], st->heads[i]);
        free(st->heads);
    }
    st->heads = heads;
    st->hashes = hashes;
    st->slot_mask = n_slots - 1;
    return 0;
}

/* Empties slot i, shifting later members of its probe run back so lookups
 * never meet a hole before their entry. */
static void slot_delete(vdp_cls_subtable *st, uint32_t i)
{
    uint32_t m = st->slot_mask;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m;
        uint32_t h = st->hashes[j];
        if (h == 0)
            break;
        uint32_t home = h & m;
        /* Entry j may move to hole i iff its home is not in (i, j] cyclically. */
        int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        st->hashes[i] = h;
        st->heads[i] = st->heads[j];
        i = j;
    }
    st->hashes[i] = 0;
    st->heads[i] = NULL;
    st->n_values--;
}

/* ------------------------------------------------------------ subtable order */

static void subs_swap(vdp_cls *cls, uint32_t a, uint32_t b)
{
    vdp_cls_subtable *t = cls->subs[a];
    cls->subs[a] = cls->subs[b];
    cls->subs[b] = t;
    cls->subs[a]->pos = a;
    cls->subs[b]->pos = b;
}

/* Restores the best-first order after st->max_rank changed. */
static void subs_reposition(vdp_cls *cls, vdp_cls_subtable *st)
{
    while (st->pos > 0 && cls->subs[st->pos - 1]->max_rank < st->max_rank)
        subs_swap(cls, st->pos - 1, st->pos);
    while (st->pos + 1 < cls->n_subs && cls->subs[st->pos + 1]->max_rank > st->max_rank)
        subs_swap(cls, st->pos, st->pos + 1);
}

/* ------------------------------------------------------------ mask table */

static vdp_cls_subtable *mt_find(const vdp_cls *cls, const vdp_key *mask, uint32_t mh)
{
    uint32_t m = cls->mt_mask;
    for (uint32_t i = mh & m;; i = (i + 1) & m) {
        vdp_cls_subtable *st = cls->mt[i];
        if (!st)
            return NULL;
        if (st->mhash == mh && key_equal(&st->mask, mask))
            return st;
    }
}

static void mt_place(vdp_cls_subtable **mt, uint32_t m, vdp_cls_subtable *st)
{
    uint32_t i = st->mhash & m;
    while (mt[i])
        i = (i + 1) & m;
    mt[i] = st;
}

static int mt_resize(vdp_cls *cls, uint32_t n)
{
    vdp_cls_subtable **mt = calloc(n, sizeof *mt);
    if (!mt)
        return -1;
    for (uint32_t i = 0; i <= cls->mt_mask; i++)
        if (cls->mt[i])
            mt_place(mt, n - 1, cls->mt[i]);
    free(cls->mt);
    cls->mt = mt;
    cls->mt_mask = n - 1;
    return 0;
}

static void mt_delete(vdp_cls *cls, vdp_cls_subtable *st)
{
    uint32_t m = cls->mt_mask;
    uint32_t i = st->mhash & m;
    while (cls->mt[i] != st)
        i = (i + 1) & m;
    uint32_t j = i;
    for (;;) {
        j = (j + 1) & m;
        vdp_cls_subtable *o = cls->mt[j];
        if (!o)
            break;
        uint32_t home = o->mhash & m;
        int stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays)
            continue;
        cls->mt[i] = o;
        i = j;
    }
    cls->mt[i] = NULL;
    cls->mt_n--;
}

/* ------------------------------------------------------------ subtables */

static void st_free(vdp_cls_subtable *st)
{
    free(st->heads);
    free(st->heap);
    free(st);
}

/* A new empty subtable for `mask`, registered in the mask table and the
 * subtable array (at the end; max_rank 0 sorts last).  NULL on ENOMEM with
 * nothing changed. */
static vdp_cls_subtable *st_create(vdp_cls *cls, const vdp_key *mask, uint32_t mh)
{
    if ((cls->mt_n + 1) * 2 > cls->mt_mask + 1 && mt_resize(cls, (cls->mt_mask + 1) * 2))
        return NULL;
    if (cls->n_subs == cls->subs_cap) {
        uint32_t cap = cls->subs_cap ? cls->subs_cap * 2 : 8;
        vdp_cls_subtable **s = realloc(cls->subs, cap * sizeof *s);
        if (!s)
            return NULL;
        cls->subs = s;
        cls->subs_cap = cap;
    }
    vdp_cls_subtable *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->mask = *mask;
    st->mhash = mh;
    for (int i = 0; i < VDP_KEY_WORDS; i++)
        if (mask->w[i])
            st->words[st->nwords++] = (uint8_t)i;
    if (slots_resize(st, SLOTS_MIN)) {
        free(st);
        return NULL;
    }
    st->pos = cls->n_subs;
    cls->subs[cls->n_subs++] = st;
    mt_place(cls->mt, cls->mt_mask, st);
    cls->mt_n++;
    return st;
}

static void st_destroy(vdp_cls *cls, vdp_cls_subtable *st)
{
    mt_delete(cls, st);
    for (uint32_t i = st->pos; i + 1 < cls->n_subs; i++) {
        cls->subs[i] = cls->subs[i + 1];
        cls->subs[i]->pos = i;
    }
    cls->n_subs--;
    st_free(st);
}

/* ------------------------------------------------------------ renumbering */

static int cmp_seq(const void *a, const void *b)
{
    uint32_t x = (*(vdp_cls_rule *const *)a)->seq, y = (*(vdp_cls_rule *const *)b)->seq;
    return x < y ? -1 : x > y;
}

/* The 32-bit insertion counter is about to wrap: give the rules seq 0..n-1
 * in their current order.  Relative ranks do not change, so heaps, value
 * lists and subtable order stay valid; only cached max_rank values move. */
static int renumber(vdp_cls *cls)
{
    vdp_cls_rule **all = malloc((cls->n_rules ? cls->n_rules : 1) * sizeof *all);
    if (!all)
        return -1;
    uint32_t n = 0;
    for (uint32_t s = 0; s < cls->n_subs; s++) {
        vdp_cls_subtable *st = cls->subs[s];
        for (uint32_t i = 0; i < st->n_rules; i++)
            all[n++] = st->heap[i];
    }
    qsort(all, n, sizeof *all, cmp_seq);
    for (uint32_t i = 0; i < n; i++)
        all[i]->seq = i;
    free(all);
    cls->next_seq = n;
    for (uint32_t s = 0; s < cls->n_subs; s++)
        cls->subs[s]->max_rank = rank_of(cls->subs[s]->heap[0]);
    return 0;
}

/* ------------------------------------------------------------ API */

vdp_cls *vdp_cls_new(void)
{
    vdp_cls *cls = calloc(1, sizeof *cls);
    if (!cls)
        return NULL;
    cls->mt = calloc(MASKTAB_MIN, sizeof *cls->mt);
    if (!cls->mt) {
        free(cls);
        return NULL;
    }
    cls->mt_mask = MASKTAB_MIN - 1;
    return cls;
}

void vdp_cls_free(vdp_cls *cls)
{
    if (!cls)
        return;
    for (uint32_t i = 0; i < cls->n_subs; i++)
        st_free(cls->subs[i]);
    free(cls->subs);
    free(cls->mt);
    free(cls);
}

int vdp_cls_insert(vdp_cls *cls, vdp_cls_rule *rule, const vdp_key *mask)
{
    for (int i = 0; i < VDP_KEY_WORDS; i++)
        rule->value.w[i] &= mask->w[i];
    if (cls->next_seq == UINT32_MAX && renumber(cls))
        return -1;

    uint32_t mh = mask_hash(mask);
    vdp_cls_subtable *st = mt_find(cls, mask, mh);
    int created = 0;
    if (!st) {
        st = st_create(cls, mask, mh);
        if (!st)
            return -1;
        created = 1;
    }

    /* Reserve everything before changing anything, so ENOMEM leaves the
     * classifier as it was. */
    if (st->n_rules == st->heap_cap) {
        uint32_t cap = st->heap_cap ? st->heap_cap * 2 : 1;
        vdp_cls_rule **h = realloc(st->heap, cap * sizeof *h);
        if (!h)
            goto enomem;
        st->heap = h;
        st->heap_cap = cap;
    }
    uint32_t hash = st_hash(st, &rule->value);
    int64_t slot = slot_find(st, &rule->value, hash);
    if (slot < 0 && (st->n_values + 1) * 2 > (st->slot_mask + 1)) {
        if (slots_resize(st, (st->slot_mask + 1) * 2))
            goto enomem;
    }

    rule->seq = cls->next_seq++;
    rule->hash = hash;
    rule->st = st;
    uint64_t rk = rank_of(rule);
    if (slot < 0) {
        rule->next = NULL;
        slot_place(st->hashes, st->heads, st->slot_mask, hash, rule);
        st->n_values++;
    } else {
        vdp_cls_rule **pp = &st->heads[slot];
        while (*pp && rank_of(*pp) > rk)
            pp = &(*pp)->next;
        rule->next = *pp;
        *pp = rule;
    }

    heap_set(st, st->n_rules++, rule);
    heap_sift_up(st, rule->heap_idx);
    if (st->heap[0] == rule) {
        st->max_rank = rk;
        subs_reposition(cls, st);
    }
    cls->n_rules++;
    return 0;

enomem:
    if (created)
        st_destroy(cls, st);
    return -1;
}

void vdp_cls_remove(vdp_cls *cls, vdp_cls_rule *rule)
{
    vdp_cls_subtable *st = rule->st;
    if (!st)
        return;

    /* Unlink from the value list (and the slot when the list empties). */
    uint32_t m = st->slot_mask;
    uint32_t i = rule->hash & m;
    for (;; i = (i + 1) & m) {
        if (st->hashes[i] == rule->hash && st_match(st, &rule->value, &st->heads[i]->value))
            break;
    }
    vdp_cls_rule **pp = &st->heads[i];
    while (*pp != rule)
        pp = &(*pp)->next;
    *pp = rule->next;
    if (!st->heads[i])
        slot_delete(st, i);

    /* Out of the heap: move the last entry into the hole and restore order. */
    uint32_t h = rule->heap_idx;
    st->n_rules--;
    if (h != st->n_rules) {
        vdp_cls_rule *moved = st->heap[st->n_rules];
        heap_set(st, h, moved);
        heap_sift_up(st, h);
        heap_sift_down(st, moved->heap_idx);
    }
    rule->st = NULL;
    rule->next = NULL;
    cls->n_rules--;

    if (st->n_rules == 0) {
        st_destroy(cls, st);
        return;
    }
    uint64_t top = rank_of(st->heap[0]);
    if (top != st->max_rank) {
        st->max_rank = top;
        subs_reposition(cls, st);
    }
    /* Give memory back after mass deletions; failure just keeps the big one. */
    if (st->slot_mask + 1 > SLOTS_MIN && st->n_values * 8 < st->slot_mask + 1)
        slots_resize(st, (st->slot_mask + 1) / 2);
    if (st->heap_cap > 8 && st->n_rules * 4 < st->heap_cap) {
        vdp_cls_rule **hp = realloc(st->heap, st->heap_cap / 2 * sizeof *hp);
        if (hp) {
            st->heap = hp;
            st->heap_cap /= 2;
        }
    }
}

void vdp_cls_replace(vdp_cls *cls, vdp_cls_rule *old, vdp_cls_rule *rule)
{
    vdp_cls_subtable *st = old->st;
    (void)cls;
    if (!st || rule == old)
        return;
    rule->value = old->value;
    rule->priority = old->priority;
    rule->seq = old->seq;
    rule->hash = old->hash;
    rule->heap_idx = old->heap_idx;
    rule->next = old->next;
    rule->st = st;
    st->heap[old->heap_idx] = rule;

    uint32_t m = st->slot_mask;
    uint32_t i = old->hash & m;
    for (;; i = (i + 1) & m) {
        if (st->hashes[i] == old->hash && st_match(st, &old->value, &st->heads[i]->value))
            break;
    }
    vdp_cls_rule **pp = &st->heads[i];
    while (*pp != old)
        pp = &(*pp)->next;
    *pp = rule;
    old->st = NULL;
    old->next = NULL;
}

/* Subtables are probed in groups: first every hash of the group is computed
 * and its slot prefetched, then the slots are probed.  With large tables the
 * slot reads are cache misses, and this overlaps them instead of paying one
 * memory latency per subtable in turn. */
#define LOOKUP_GROUP 8

vdp_cls_rule *vdp_cls_lookup(const vdp_cls *cls, const vdp_key *key)
{
    vdp_cls_rule *best = NULL;
    uint64_t best_rank = 0;          /* every real rank is >= 1 (seq < 2^32-1) */
    uint32_t hs[LOOKUP_GROUP];
    vdp_cls_subtable *const *subs = cls->subs;
    uint32_t n_subs = cls->n_subs;

    for (uint32_t base = 0; base < n_subs; base += LOOKUP_GROUP) {
        uint32_t g = n_subs - base < LOOKUP_GROUP ? n_subs - base : LOOKUP_GROUP;

        /* Best-first order: once a subtable's best rule ranks below `best`,
         * neither it nor any later subtable can win. */
        for (uint32_t j = 0; j < g; j++) {
            const vdp_cls_subtable *st = subs[base + j];
            if (st->max_rank < best_rank) {
                g = j;
                break;
            }
            uint32_t h = st_hash(st, key);
            hs[j] = h;
            __builtin_prefetch(&st->hashes[h & st->slot_mask]);
            __builtin_prefetch(&st->heads[h & st->slot_mask]);
        }
        for (uint32_t j = 0; j < g; j++) {
            const vdp_cls_subtable *st = subs[base + j];
            if (st->max_rank < best_rank)
                return best;
            uint32_t h = hs[j];
            uint32_t m = st->slot_mask;
            for (uint32_t i = h & m;; i = (i + 1) & m) {
                uint32_t sh = st->hashes[i];
                if (sh == 0)
                    break;
                if (sh == h) {
                    vdp_cls_rule *r = st->heads[i];
                    if (st_match(st, key, &r->value)) {
                        uint64_t rk = rank_of(r);
                        if (rk > best_rank) {
                            best = r;
                            best_rank = rk;
                        }
                        break;
                    }
                }
            }
        }
        if (g < LOOKUP_GROUP && base + g < n_subs)
            break;
    }
    return best;
}

vdp_cls_rule *vdp_cls_find_exact(const vdp_cls *cls, const vdp_key *value,
                                 const vdp_key *mask, int priority)
{
    vdp_cls_subtable *st = mt_find(cls, mask, mask_hash(mask));
    if (!st)
        return NULL;
    /* st_hash and st_match mask `value` themselves. */
    int64_t slot = -1;
    uint32_t h = st_hash(st, value);
    uint32_t m = st->slot_mask;
    for (uint32_t i = h & m; st->hashes[i]; i = (i + 1) & m) {
        if (st->hashes[i] == h && st_match(st, value, &st->heads[i]->value)) {
            slot = i;
            break;
        }
    }
    if (slot < 0)
        return NULL;
    for (vdp_cls_rule *r = st->heads[slot]; r; r = r->next) {
        if (r->priority == priority)
            return r;
        if (r->priority < priority)
            break;
    }
    return NULL;
}

const vdp_key *vdp_cls_rule_mask(const vdp_cls_rule *rule)
{
    return rule->st ? &rule->st->mask : NULL;
}

uint32_t vdp_cls_count(const vdp_cls *cls)
{
    return cls->n_rules;
}

uint32_t vdp_cls_n_subtables(const vdp_cls *cls)
{
    return cls->n_subs;
}

static int st_foreach(vdp_cls_subtable *st, const vdp_key *fvalue, const vdp_key *fmask,
                      int (*cb)(vdp_cls_rule *, void *), void *arg)
{
    for (uint32_t i = 0; i <= st->slot_mask; i++) {
        if (!st->hashes[i])
            continue;
        if (fmask) {
            /* All rules of a slot share the value: test it once. */
            const vdp_key *v = &st->heads[i]->value;
            uint64_t diff = 0;
            for (int w = 0; w < VDP_KEY_WORDS; w++)
                diff |= (v->w[w] ^ fvalue->w[w]) & fmask->w[w];
            if (diff)
                continue;
        }
        for (vdp_cls_rule *r = st->heads[i]; r; r = r->next) {
            int rc = cb(r, arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int vdp_cls_foreach(vdp_cls *cls, int (*cb)(vdp_cls_rule *, void *), void *arg)
{
    for (uint32_t s = 0; s < cls->n_subs; s++) {
        int rc = st_foreach(cls->subs[s], NULL, NULL, cb, arg);
        if (rc)
            return rc;
    }
    return 0;
}

int vdp_cls_foreach_loose(vdp_cls *cls, const vdp_key *fvalue, const vdp_key *fmask,
                          int (*cb)(vdp_cls_rule *, void *), void *arg)
{
    for (uint32_t s = 0; s < cls->n_subs; s++) {
        vdp_cls_subtable *st = cls->subs[s];
        uint64_t uncovered = 0;
        for (int w = 0; w < VDP_KEY_WORDS; w++)
            uncovered |= fmask->w[w] & ~st->mask.w[w];
        if (uncovered)
            continue;
        int rc = st_foreach(st, fvalue, fmask, cb, arg);
        if (rc)
            return rc;
    }
    return 0;
}

void vdp_cls_set_next_seq(vdp_cls *cls, uint32_t seq)
{
    if (seq > cls->next_seq)
        cls->next_seq = seq;
}
