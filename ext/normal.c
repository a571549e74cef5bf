/* normal.c - the OFPP_NORMAL action: VLAN-aware MAC learning switch.
 * See normal.h.  Called by pipeline.c (vdp_exec) inside bursts and by the
 * control plane through pipeline.pxi, always with dp->lock held.
 *
 * Storage: a pool of `max` entries allocated once, a power-of-two bucket
 * array of chained indices, and an LRU list (most recently seen at the head)
 * so a full table evicts its stalest entry in O(1). */
#include <stdlib.h>
#include <string.h>
#include "normal.h"

#define NIL 0xffffffffu

typedef struct mac_entry {
    uint8_t  mac[6];
    uint16_t vlan;
    uint32_t port;          /* 0 = free */
    uint32_t hnext;         /* bucket chain / free list */
    uint32_t prev, next;    /* LRU list */
    uint64_t seen_ns;
} mac_entry;

struct vdp_normal {
    mac_entry *pool;
    uint32_t  *buckets;
    uint32_t   max, mask;
    uint32_t   count;
    uint32_t   free_head;
    uint32_t   lru_head, lru_tail;
    uint64_t   aging_ns;
    uint64_t   evictions;
};

static uint32_t mac_hash(uint16_t vlan, const uint8_t mac[6])
{
    uint64_t x = ((uint64_t)mac[0] << 40) | ((uint64_t)mac[1] << 32) |
                 ((uint64_t)mac[2] << 24) | ((uint64_t)mac[3] << 16) |
                 ((uint64_t)mac[4] << 8) | mac[5];
    x ^= (uint64_t)vlan << 48;
    x *= 0x9e3779b97f4a7c15ULL;
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    return (uint32_t)(x >> 32);
}

vdp_normal *vdp_normal_new(uint32_t max_entries, uint32_t aging_s)
{
    vdp_normal *n = calloc(1, sizeof *n);
    uint32_t nb = 16;
    if (!n)
        return NULL;
    if (max_entries == 0)
        max_entries = VDP_NORMAL_DEFAULT_MAX;
    while (nb < max_entries && nb < (1u << 30))
        nb <<= 1;
    n->pool = calloc(max_entries, sizeof *n->pool);
    n->buckets = malloc(nb * sizeof *n->buckets);
    if (!n->pool || !n->buckets) {
        free(n->pool);
        free(n->buckets);
        free(n);
        return NULL;
    }
    n->max = max_entries;
    n->mask = nb - 1;
    vdp_normal_set_aging(n, aging_s);
    vdp_normal_flush(n);
    return n;
}

void vdp_normal_free(vdp_normal *n)
{
    if (!n)
        return;
    free(n->pool);
    free(n->buckets);
    free(n);
}

void vdp_normal_set_aging(vdp_normal *n, uint32_t aging_s)
{
    n->aging_ns = (uint64_t)(aging_s ? aging_s : VDP_NORMAL_DEFAULT_AGING) * 1000000000ULL;
}

uint32_t vdp_normal_aging(const vdp_normal *n) { return (uint32_t)(n->aging_ns / 1000000000ULL); }
uint32_t vdp_normal_max(const vdp_normal *n) { return n->max; }
uint32_t vdp_normal_count(const vdp_normal *n) { return n->count; }
uint64_t vdp_normal_evictions(const vdp_normal *n) { return n->evictions; }

void vdp_normal_flush(vdp_normal *n)
{
    uint32_t i;
    for (i = 0; i <= n->mask; i++)
        n->buckets[i] = NIL;
    for (i = 0; i < n->max; i++) {
        n->pool[i].port = 0;
        n->pool[i].hnext = i + 1 < n->max ? i + 1 : NIL;
    }
    n->free_head = 0;
    n->lru_head = n->lru_tail = NIL;
    n->count = 0;
}

static void lru_unlink(vdp_normal *n, uint32_t i)
{
    mac_entry *e = &n->pool[i];
    if (e->prev != NIL) n->pool[e->prev].next = e->next; else n->lru_head = e->next;
    if (e->next != NIL) n->pool[e->next].prev = e->prev; else n->lru_tail = e->prev;
}

static void lru_push_head(vdp_normal *n, uint32_t i)
{
    mac_entry *e = &n->pool[i];
    e->prev = NIL;
    e->next = n->lru_head;
    if (n->lru_head != NIL) n->pool[n->lru_head].prev = i; else n->lru_tail = i;
    n->lru_head = i;
}

/* Unlink entry i from its bucket chain, the LRU list, and free it. */
static void entry_remove(vdp_normal *n, uint32_t i)
{
    mac_entry *e = &n->pool[i];
    uint32_t *pp = &n->buckets[mac_hash(e->vlan, e->mac) & n->mask];
    while (*pp != NIL && *pp != i)
        pp = &n->pool[*pp].hnext;
    if (*pp == i)
        *pp = e->hnext;
    lru_unlink(n, i);
    e->port = 0;
    e->hnext = n->free_head;
    n->free_head = i;
    n->count--;
}

static uint32_t entry_find(vdp_normal *n, uint16_t vlan, const uint8_t mac[6], uint32_t h)
{
    uint32_t i = n->buckets[h & n->mask];
    while (i != NIL) {
        mac_entry *e = &n->pool[i];
        if (e->vlan == vlan && memcmp(e->mac, mac, 6) == 0)
            return i;
        i = e->hnext;
    }
    return NIL;
}

static int aged(const vdp_normal *n, const mac_entry *e, uint64_t now_ns)
{
    return now_ns > e->seen_ns && now_ns - e->seen_ns > n->aging_ns;
}

int vdp_normal_learn(vdp_normal *n, uint16_t vlan, const uint8_t mac[6],
                     uint32_t port, uint64_t now_ns)
{
    uint32_t h, i;
    mac_entry *e;
    if ((mac[0] & 1) || port == 0 || (port > VDP_OFPP_MAX && port != VDP_OFPP_LOCAL))
        return -1;                       /* multicast source, or no real port */
    h = mac_hash(vlan, mac);
    i = entry_find(n, vlan, mac, h);
    if (i != NIL) {
        int moved;
        e = &n->pool[i];
        moved = e->port != port;
        e->port = port;
        e->seen_ns = now_ns;
        if (n->lru_head != i) {
            lru_unlink(n, i);
            lru_push_head(n, i);
        }
        return moved ? 2 : 0;
    }
    if (n->free_head == NIL) {
        /* Full: the least recently seen entry makes room. */
        entry_remove(n, n->lru_tail);
        n->evictions++;
    }
    i = n->free_head;
    e = &n->pool[i];
    n->free_head = e->hnext;
    memcpy(e->mac, mac, 6);
    e->vlan = vlan;
    e->port = port;
    e->seen_ns = now_ns;
    e->hnext = n->buckets[h & n->mask];
    n->buckets[h & n->mask] = i;
    lru_push_head(n, i);
    n->count++;
    return 1;
}

uint32_t vdp_normal_lookup(vdp_normal *n, uint16_t vlan, const uint8_t mac[6],
                           uint64_t now_ns)
{
    uint32_t i = entry_find(n, vlan, mac, mac_hash(vlan, mac));
    if (i == NIL)
        return 0;
    if (aged(n, &n->pool[i], now_ns)) {
        entry_remove(n, i);
        return 0;
    }
    return n->pool[i].port;
}

void vdp_normal_flush_port(vdp_normal *n, uint32_t port)
{
    uint32_t i = n->lru_head;
    while (i != NIL) {
        uint32_t next = n->pool[i].next;
        if (n->pool[i].port == port)
            entry_remove(n, i);
        i = next;
    }
}

uint32_t vdp_normal_expire(vdp_normal *n, uint64_t now_ns)
{
    uint32_t removed = 0;
    /* The LRU tail is the oldest: stop at the first live entry. */
    while (n->lru_tail != NIL && aged(n, &n->pool[n->lru_tail], now_ns)) {
        entry_remove(n, n->lru_tail);
        removed++;
    }
    return removed;
}

int vdp_normal_next(vdp_normal *n, uint32_t *cursor, uint16_t *vlan,
                    uint8_t mac[6], uint32_t *port, uint64_t *seen_ns)
{
    /* cursor: 0 = start at the head, else index+1 of the next entry. */
    uint32_t i;
    mac_entry *e;
    if (*cursor == NIL)
        return 0;
    i = *cursor == 0 ? n->lru_head : *cursor - 1;
    if (i == NIL || i >= n->max || n->pool[i].port == 0)
        return 0;
    e = &n->pool[i];
    *vlan = e->vlan;
    memcpy(mac, e->mac, 6);
    *port = e->port;
    *seen_ns = e->seen_ns;
    *cursor = e->next == NIL ? NIL : e->next + 1;
    return 1;
}

void vdp_normal_forward(vdp_normal *n, vdp_dp *dp, vdp_pkt *pkt,
                        const vdp_key *key, uint64_t now_ns)
{
    uint16_t vlan = (key->vlan_vid & VDP_VID_PRESENT) ? (key->vlan_vid & 0xfff) : 0;
    uint32_t out;

    vdp_normal_learn(n, vlan, key->eth_src, pkt->in_port, now_ns);
    if (key->eth_dst[0] & 1) {
        vdp_dp_output(dp, pkt, key, VDP_OFPP_FLOOD, 0);
        return;
    }
    out = vdp_normal_lookup(n, vlan, key->eth_dst, now_ns);
    if (out == 0) {
        vdp_dp_output(dp, pkt, key, VDP_OFPP_FLOOD, 0);
        return;
    }
    if (out == pkt->in_port)
        return;                          /* destination is behind the ingress port */
    vdp_dp_output(dp, pkt, key, out, 0);
}
