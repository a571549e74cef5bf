/* meter.c - meter table and per-band token buckets (see meter.h).
 *
 * Token units are chosen so that refilling is one multiplication with no
 * division on the packet path: a band of rate R fills R tokens per
 * nanosecond, i.e.
 *   kbps:  1 token = 1e-6 bit        (R kbit/s = R*1e3 bit / 1e9 ns)
 *   pktps: 1 token = 1e-9 packet     (R pkt/s  = R pkt / 1e9 ns)
 * so a packet costs len*8*1e6 tokens (kbps) or 1e9 tokens (pktps). */
#include <stdlib.h>
#include <string.h>
#include "meter.h"

#define TOK_PER_BIT    1000000ull          /* kbps units */
#define TOK_PER_PKT    1000000000ull       /* pktps units */
#define DEFAULT_MS     100ull              /* default bucket: 100 ms of rate */
#define MIN_KBPS_BYTES 1600ull             /* default bucket floor (kbps) */

static int is_pktps(uint16_t flags)
{
    return (flags & VDP_MF_PKTPS) != 0;
}

static uint64_t band_capacity(uint16_t flags, const vdp_meter_band_cfg *c)
{
    uint64_t cap;
    if (is_pktps(flags)) {
        if ((flags & VDP_MF_BURST) && c->burst_size)
            return (uint64_t)c->burst_size * TOK_PER_PKT;
        cap = (uint64_t)c->rate * DEFAULT_MS * 1000000ull;   /* rate tok/ns * 100 ms */
        return cap < TOK_PER_PKT ? TOK_PER_PKT : cap;
    }
    if ((flags & VDP_MF_BURST) && c->burst_size)
        return (uint64_t)c->burst_size * 1000ull * TOK_PER_BIT;
    cap = (uint64_t)c->rate * DEFAULT_MS * 1000000ull;
    return cap < MIN_KBPS_BYTES * 8 * TOK_PER_BIT ? MIN_KBPS_BYTES * 8 * TOK_PER_BIT : cap;
}

int vdp_meter_configure(vdp_meter *m, uint16_t flags, const vdp_meter_band_cfg *bands,
                        uint16_t n_bands)
{
    if (n_bands > VDP_METER_MAX_BANDS)
        return -1;
    m->flags = flags;
    m->n_bands = n_bands;
    memset(m->bands, 0, sizeof m->bands);
    for (uint16_t i = 0; i < n_bands; i++) {
        m->bands[i].cfg = bands[i];
        m->bands[i].capacity = band_capacity(flags, &bands[i]);
        m->bands[i].tokens = m->bands[i].capacity;
    }
    return 0;
}

vdp_meter *vdp_meter_new(uint32_t id, uint16_t flags, const vdp_meter_band_cfg *bands,
                         uint16_t n_bands, uint64_t now_ns)
{
    if (n_bands > VDP_METER_MAX_BANDS)
        return NULL;
    vdp_meter *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->id = id;
    m->created_ns = now_ns;
    vdp_meter_configure(m, flags, bands, n_bands);
    return m;
}

void vdp_meter_free(vdp_meter *m)
{
    free(m);
}

static inline void refill(vdp_meter_band *b, uint64_t dt)
{
    uint64_t rate = b->cfg.rate;
    if (!rate || b->tokens >= b->capacity)
        return;
    uint64_t room = b->capacity - b->tokens;
    if (dt > room / rate)
        b->tokens = b->capacity;
    else
        b->tokens += rate * dt;        /* <= room: no overflow */
}

int vdp_meter_apply(vdp_meter *m, uint64_t now_ns, uint32_t pkt_len, uint8_t *remark_prec)
{
    uint64_t dt = 0;
    if (!m->started) {
        m->started = 1;
        m->last_ns = now_ns;
    } else if (now_ns > m->last_ns) {
        dt = now_ns - m->last_ns;
        m->last_ns = now_ns;
    }
    m->packet_in_count++;
    m->byte_in_count += pkt_len;

    uint64_t cost = is_pktps(m->flags) ? TOK_PER_PKT : (uint64_t)pkt_len * 8 * TOK_PER_BIT;
    int chosen = -1;
    for (uint16_t i = 0; i < m->n_bands; i++) {
        vdp_meter_band *b = &m->bands[i];
        refill(b, dt);
        if (b->tokens >= cost)
            b->tokens -= cost;
        else if (chosen < 0 || b->cfg.rate > m->bands[chosen].cfg.rate)
            chosen = i;
    }
    if (chosen < 0)
        return VDP_METER_PASS;
    vdp_meter_band *b = &m->bands[chosen];
    b->packet_count++;
    b->byte_count += pkt_len;
    switch (b->cfg.type) {
    case VDP_MBT_DROP:
        return VDP_METER_DROP;
    case VDP_MBT_DSCP_REMARK:
        if (remark_prec)
            *remark_prec = b->cfg.prec_level;
        return VDP_METER_REMARK;
    default:
        return VDP_METER_PASS;          /* experimenter bands: counted only */
    }
}

/* ------------------------------------------------------------ table */
struct vdp_meter_table {
    vdp_meter **heads;
    uint32_t    mask;
    size_t      count;
};

static inline uint32_t id_hash(uint32_t id)
{
    uint64_t h = id;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return (uint32_t)h;
}

vdp_meter_table *vdp_meter_table_new(void)
{
    vdp_meter_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->mask = 63;
    t->heads = calloc(t->mask + 1, sizeof *t->heads);
    if (!t->heads) {
        free(t);
        return NULL;
    }
    return t;
}

void vdp_meter_table_free(vdp_meter_table *t)
{
    if (!t)
        return;
    for (uint32_t i = 0; i <= t->mask; i++) {
        vdp_meter *m = t->heads[i];
        while (m) {
            vdp_meter *n = m->next;
            vdp_meter_free(m);
            m = n;
        }
    }
    free(t->heads);
    free(t);
}

vdp_meter *vdp_meter_find(const vdp_meter_table *t, uint32_t id)
{
    for (vdp_meter *m = t->heads[id_hash(id) & t->mask]; m; m = m->next)
        if (m->id == id)
            return m;
    return NULL;
}

static void grow(vdp_meter_table *t)
{
    uint32_t nmask = t->mask * 2 + 1;
    vdp_meter **nh = calloc(nmask + 1, sizeof *nh);
    if (!nh)
        return;
    for (uint32_t i = 0; i <= t->mask; i++) {
        vdp_meter *m = t->heads[i];
        while (m) {
            vdp_meter *n = m->next;
            uint32_t h = id_hash(m->id) & nmask;
            m->next = nh[h];
            nh[h] = m;
            m = n;
        }
    }
    free(t->heads);
    t->heads = nh;
    t->mask = nmask;
}

int vdp_meter_table_add(vdp_meter_table *t, vdp_meter *m)
{
    if (vdp_meter_find(t, m->id))
        return -1;
    if (t->count >= (size_t)(t->mask + 1) * 2)
        grow(t);
    uint32_t h = id_hash(m->id) & t->mask;
    m->next = t->heads[h];
    t->heads[h] = m;
    t->count++;
    return 0;
}

vdp_meter *vdp_meter_table_remove(vdp_meter_table *t, uint32_t id)
{
    vdp_meter **pp = &t->heads[id_hash(id) & t->mask];
    for (; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            vdp_meter *m = *pp;
            *pp = m->next;
            m->next = NULL;
            t->count--;
            return m;
        }
    }
    return NULL;
}

size_t vdp_meter_table_count(const vdp_meter_table *t)
{
    return t->count;
}

static int cmp_id(const void *a, const void *b)
{
    uint32_t x = (*(vdp_meter *const *)a)->id, y = (*(vdp_meter *const *)b)->id;
    return x < y ? -1 : x > y;
}

size_t vdp_meter_table_list(const vdp_meter_table *t, vdp_meter **out, size_t max)
{
    size_t n = 0;
    vdp_meter **all = malloc((t->count ? t->count : 1) * sizeof *all);
    if (!all)
        return 0;
    for (uint32_t i = 0; i <= t->mask; i++)
        for (vdp_meter *m = t->heads[i]; m; m = m->next)
            all[n++] = m;
    qsort(all, n, sizeof *all, cmp_id);
    if (n > max)
        n = max;
    memcpy(out, all, n * sizeof *all);
    free(all);
    return n;
}
