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
#include "idmap.h"

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
/* The table itself is an id map (idmap.c, shared with the group table). */
struct vdp_meter_table {
    vdp_idmap map;
};

vdp_meter_table *vdp_meter_table_new(void)
{
    vdp_meter_table *t = calloc(1, sizeof *t);
    if (t && vdp_idmap_init(&t->map) < 0) {
        free(t);
        return NULL;
    }
    return t;
}

static void free_meter_val(void *m)
{
    vdp_meter_free(m);
}

void vdp_meter_table_free(vdp_meter_table *t)
{
    if (!t)
        return;
    vdp_idmap_destroy(&t->map, free_meter_val);
    free(t);
}

vdp_meter *vdp_meter_find(const vdp_meter_table *t, uint32_t id)
{
    return vdp_idmap_get(&t->map, id);
}

int vdp_meter_table_add(vdp_meter_table *t, vdp_meter *m)
{
    return vdp_idmap_put(&t->map, m->id, m);
}

vdp_meter *vdp_meter_table_remove(vdp_meter_table *t, uint32_t id)
{
    return vdp_idmap_del(&t->map, id);
}

size_t vdp_meter_table_count(const vdp_meter_table *t)
{
    return t->map.count;
}

size_t vdp_meter_table_list(const vdp_meter_table *t, vdp_meter **out, size_t max)
{
    return vdp_idmap_values(&t->map, (void **)out, max);
}
