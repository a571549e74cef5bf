/* group.c - group storage, select bucket tables, liveness and bucket
 * choice (see group.h).  Control-plane functions allocate; the per-packet
 * functions (vdp_select_hash, vdp_group_select, vdp_group_ff_choose) do not. */
#include <stdlib.h>
#include <string.h>
#include "group.h"
#include "idmap.h"

/* ------------------------------------------------------------ groups */
vdp_group *vdp_group_new(uint32_t id, uint8_t type, uint16_t n_buckets, uint64_t now_ns)
{
    vdp_group *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    if (n_buckets) {
        g->buckets = calloc(n_buckets, sizeof *g->buckets);
        if (!g->buckets) {
            free(g);
            return NULL;
        }
    }
    g->id = id;
    g->type = type;
    g->n_buckets = n_buckets;
    g->created_ns = now_ns;
    for (uint16_t i = 0; i < n_buckets; i++) {
        g->buckets[i].watch_port = VDP_OFPP_ANY;
        g->buckets[i].watch_group = VDP_OFPG_ANY;
    }
    return g;
}

static void free_buckets(vdp_bucket *b, uint16_t n)
{
    for (uint16_t i = 0; i < n; i++)
        free(b[i].prog);
    free(b);
}

void vdp_group_free(vdp_group *g)
{
    if (!g)
        return;
    free_buckets(g->buckets, g->n_buckets);
    free(g);
}

/* ------------------------------------------------------------ select table */
/* Largest-remainder apportionment of VDP_SELECT_SLOTS slots to the buckets
 * with eligible[i] set, by weight.  quota[] receives slot counts; returns
 * the number of slots handed out (0 when no eligible weight). */
static int apportion(const vdp_group *g, const uint8_t *eligible, int all_zero, uint32_t *quota)
{
    uint64_t total = 0;
    for (uint16_t i = 0; i < g->n_buckets; i++) {
        quota[i] = 0;
        if (eligible[i])
            total += all_zero ? 1 : g->buckets[i].weight;
    }
    if (!total)
        return 0;
    uint32_t given = 0;
    for (uint16_t i = 0; i < g->n_buckets; i++) {
        if (!eligible[i])
            continue;
        uint64_t w = all_zero ? 1 : g->buckets[i].weight;
        quota[i] = (uint32_t)(w * VDP_SELECT_SLOTS / total);
        given += quota[i];
    }
    /* the remaining slots go to the largest remainders (ties: lower index) */
    while (given < VDP_SELECT_SLOTS) {
        int best = -1;
        uint64_t best_rem = 0;
        for (uint16_t i = 0; i < g->n_buckets; i++) {
            if (!eligible[i])
                continue;
            uint64_t w = all_zero ? 1 : g->buckets[i].weight;
            /* remainder of this bucket, minus what it already got extra */
            uint64_t exact = w * VDP_SELECT_SLOTS;          /* quota*total + rem */
            uint64_t have = (uint64_t)quota[i] * total;
            if (exact <= have)
                continue;
            uint64_t rem = exact - have;
            if (best < 0 || rem > best_rem) {
                best = i;
                best_rem = rem;
            }
        }
        if (best < 0)
            break;
        quota[best]++;
        given++;
    }
    return (int)given;
}

void vdp_group_rebuild(vdp_group *g, int (*port_live)(void *, uint32_t), void *ctx)
{
    if (g->type != VDP_GT_SELECT)
        return;
    uint16_t n = g->n_buckets;
    uint8_t *elig = calloc(n ? n : 1, 1);
    uint8_t *live = calloc(n ? n : 1, 1);
    uint32_t *quota = calloc(n ? n : 1, sizeof *quota);
    uint32_t *have = calloc(n ? n : 1, sizeof *have);
    if (!elig || !live || !quota || !have) {
        g->live_any = 0;
        goto out;
    }
    int all_zero = 1;
    for (uint16_t i = 0; i < n; i++)
        if (g->buckets[i].weight)
            all_zero = 0;
    for (uint16_t i = 0; i < n; i++) {
        elig[i] = all_zero || g->buckets[i].weight;
        uint32_t wp = g->buckets[i].watch_port;
        live[i] = elig[i] && (wp == VDP_OFPP_ANY || !port_live || port_live(ctx, wp));
    }

    /* base table: every bucket as if live, contiguous runs per bucket */
    int slots = apportion(g, elig, all_zero, quota);
    uint32_t s = 0;
    for (uint16_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < quota[i]; k++)
            g->base_table[s++] = i;
    for (; s < VDP_SELECT_SLOTS; s++)
        g->base_table[s] = 0;
    if (!slots) {
        g->live_any = 0;
        goto out;
    }

    /* live table: keep every live bucket's slots; hand the dead buckets'
     * slots to live buckets that are below their share of the live weight */
    if (!apportion(g, live, all_zero, quota)) {
        g->live_any = 0;
        goto out;
    }
    for (s = 0; s < VDP_SELECT_SLOTS; s++)
        if (live[g->base_table[s]])
            have[g->base_table[s]]++;
    uint16_t next = 0;
    for (s = 0; s < VDP_SELECT_SLOTS; s++) {
        uint16_t b = g->base_table[s];
        if (live[b]) {
            g->live_table[s] = b;
            continue;
        }
        /* next bucket (cyclically) with a deficit; one always exists since
         * the live quotas sum to the slot count */
        uint16_t tries = 0;
        for (; tries < n; tries++, next = (uint16_t)((next + 1) % n))
            if (live[next] && have[next] < quota[next])
                break;
        if (tries == n)         /* (cannot happen) any live bucket */
            for (next = 0; next < n && !live[next]; next++)
                ;
        g->live_table[s] = next;
        have[next]++;
        next = (uint16_t)((next + 1) % n);
    }
    g->live_any = 1;
out:
    free(elig);
    free(live);
    free(quota);
    free(have);
}

/* ------------------------------------------------------------ hashing */
static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v;
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 31;
    return h;
}

static inline uint64_t fmix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline uint64_t load48(const uint8_t *m)
{
    return ((uint64_t)m[0] << 40) | ((uint64_t)m[1] << 32) | ((uint64_t)m[2] << 24) |
           ((uint64_t)m[3] << 16) | ((uint64_t)m[4] << 8) | m[5];
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

uint32_t vdp_select_hash(const vdp_key *k)
{
    uint64_t h = 0x5a17b0c3d1e2f405ull;
    uint64_t a = load48(k->eth_src), b = load48(k->eth_dst);
    h = mix(h, a < b ? a : b);
    h = mix(h, a < b ? b : a);
    h = mix(h, ((uint64_t)k->vlan_vid << 16) | k->eth_type);

    const uint64_t nw = VDP_BIT(VDP_F_IPV4_SRC) | VDP_BIT(VDP_F_IPV4_DST) |
                        VDP_BIT(VDP_F_ARP_SPA) | VDP_BIT(VDP_F_ARP_TPA);
    const uint64_t v6 = VDP_BIT(VDP_F_IPV6_SRC) | VDP_BIT(VDP_F_IPV6_DST);
    const uint64_t tp = VDP_BIT(VDP_F_TCP_SRC) | VDP_BIT(VDP_F_UDP_SRC) | VDP_BIT(VDP_F_SCTP_SRC);
    if (k->present & nw) {
        uint32_t x = k->nw_src, y = k->nw_dst;
        h = mix(h, x < y ? ((uint64_t)x << 32) | y : ((uint64_t)y << 32) | x);
    }
    if (k->present & v6) {
        int c = memcmp(k->ipv6_src, k->ipv6_dst, 16);
        const uint8_t *lo = c <= 0 ? k->ipv6_src : k->ipv6_dst;
        const uint8_t *hi = c <= 0 ? k->ipv6_dst : k->ipv6_src;
        h = mix(h, load64(lo));
        h = mix(h, load64(lo + 8));
        h = mix(h, load64(hi));
        h = mix(h, load64(hi + 8));
    }
    if (k->present & VDP_BIT(VDP_F_IP_PROTO))
        h = mix(h, 0x100u | k->ip_proto);
    if (k->present & tp) {
        uint16_t x = k->tp_src, y = k->tp_dst;
        h = mix(h, x < y ? ((uint32_t)x << 16) | y : ((uint32_t)y << 16) | x);
    }
    h = fmix(h);
    return (uint32_t)(h ^ (h >> 32));
}

int vdp_group_select_hash(const vdp_group *g, uint32_t hash)
{
    if (!g->live_any || !g->n_buckets)
        return -1;
    return g->live_table[hash & (VDP_SELECT_SLOTS - 1)];
}

int vdp_group_select(const vdp_group *g, const vdp_key *key)
{
    if (!g->live_any || !g->n_buckets)
        return -1;
    return vdp_group_select_hash(g, vdp_select_hash(key));
}

int vdp_group_ff_choose(const vdp_group *g, int (*port_live)(void *, uint32_t),
                        int (*group_live)(void *, uint32_t), void *ctx)
{
    for (uint16_t i = 0; i < g->n_buckets; i++) {
        const vdp_bucket *b = &g->buckets[i];
        if (b->watch_port != VDP_OFPP_ANY && port_live && !port_live(ctx, b->watch_port))
            continue;
        if (b->watch_group != VDP_OFPG_ANY && group_live && !group_live(ctx, b->watch_group))
            continue;
        return i;
    }
    return -1;
}

/* ------------------------------------------------------------ table */
/* The table itself is an id map (idmap.c, shared with the meter table). */
struct vdp_group_table {
    vdp_idmap map;
};

vdp_group_table *vdp_group_table_new(void)
{
    vdp_group_table *t = calloc(1, sizeof *t);
    if (t && vdp_idmap_init(&t->map) < 0) {
        free(t);
        return NULL;
    }
    return t;
}

static void free_group_val(void *g)
{
    vdp_group_free(g);
}

void vdp_group_table_free(vdp_group_table *t)
{
    if (!t)
        return;
    vdp_idmap_destroy(&t->map, free_group_val);
    free(t);
}

vdp_group *vdp_group_find(const vdp_group_table *t, uint32_t id)
{
    return vdp_idmap_get(&t->map, id);
}

int vdp_group_table_add(vdp_group_table *t, vdp_group *g)
{
    if (vdp_idmap_put(&t->map, g->id, g) < 0)
        return -1;
    vdp_group_rebuild(g, NULL, NULL);
    return 0;
}

vdp_group *vdp_group_table_modify(vdp_group_table *t, vdp_group *g)
{
    vdp_group *cur = vdp_group_find(t, g->id);
    if (!cur)
        return NULL;
    free_buckets(cur->buckets, cur->n_buckets);
    cur->type = g->type;
    cur->buckets = g->buckets;
    cur->n_buckets = g->n_buckets;
    for (uint16_t i = 0; i < cur->n_buckets; i++)
        cur->buckets[i].packet_count = cur->buckets[i].byte_count = 0;
    free(g);
    vdp_group_rebuild(cur, NULL, NULL);
    return cur;
}

vdp_group *vdp_group_table_remove(vdp_group_table *t, uint32_t id)
{
    return vdp_idmap_del(&t->map, id);
}

size_t vdp_group_table_count(const vdp_group_table *t)
{
    return t->map.count;
}

size_t vdp_group_table_list(const vdp_group_table *t, vdp_group **out, size_t max)
{
    return vdp_idmap_values(&t->map, (void **)out, max);
}

struct rebuild_ctx {
    int (*port_live)(void *, uint32_t);
    void *ctx;
};

static void rebuild_one(void *g, void *arg)
{
    struct rebuild_ctx *rc = arg;
    vdp_group_rebuild(g, rc->port_live, rc->ctx);
}

void vdp_group_table_rebuild(vdp_group_table *t, int (*port_live)(void *, uint32_t), void *ctx)
{
    struct rebuild_ctx rc = { port_live, ctx };
    vdp_idmap_foreach(&t->map, rebuild_one, &rc);
}
