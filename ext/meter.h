/* meter.h - OpenFlow 1.3 meters: a table by id, one token bucket per band,
 * band choice and counters.  No I/O: pipeline.c calls vdp_meter_apply for a
 * METER op and drops the frame or remarks it (vdp_remark_dscp, actions.h);
 * the control plane adds/modifies/deletes meters under dp->lock.
 *
 * Buckets.  Each band has its own bucket filled at the band's rate in the
 * meter's unit (kbit/s, or packet/s with VDP_MF_PKTPS); a packet conforms
 * to a band when the band's bucket holds its cost (bits, or one packet),
 * which it then takes.  Every band measures the meter's whole input, so a
 * band is "exceeded" exactly when the input rate is above its rate.  The
 * band applied is the exceeded band with the highest rate (OpenFlow 1.3
 * 5.7.1); no band exceeded = pass.  Buckets start full.
 * Bucket size: the band's burst_size (kbits or packets) when the meter has
 * VDP_MF_BURST and burst_size > 0; otherwise 100 ms worth of the band's
 * rate, but at least one packet (pktps) or 1600 bytes (kbps) so that a low
 * rate still passes whole frames.  Stats echo burst_size as configured.
 * Time is passed in (now_ns, any monotonic clock) so tests can warp it.
 */
#ifndef VDP_METER_H
#define VDP_METER_H

#include <stdint.h>
#include <stddef.h>
#include "vdp_dp.h"          /* typedef struct vdp_meter vdp_meter */

/* Meter flags (ofp_meter_flags) and band types (ofp_meter_band_type). */
#define VDP_MF_KBPS   1u
#define VDP_MF_PKTPS  2u
#define VDP_MF_BURST  4u
#define VDP_MF_STATS  8u
#define VDP_MBT_DROP         1
#define VDP_MBT_DSCP_REMARK  2

/* vdp_meter_apply results. */
#define VDP_METER_PASS    0
#define VDP_METER_DROP    1
#define VDP_METER_REMARK  2

#define VDP_METER_MAX_BANDS 16

typedef struct vdp_meter_band_cfg {
    uint8_t  type;            /* VDP_MBT_* */
    uint8_t  prec_level;      /* DSCP_REMARK */
    uint32_t rate;            /* kbit/s or packet/s */
    uint32_t burst_size;      /* kbits or packets */
} vdp_meter_band_cfg;

typedef struct vdp_meter_band {
    vdp_meter_band_cfg cfg;
    uint64_t capacity;        /* bucket size, token units (see meter.c) */
    uint64_t tokens;
    uint64_t packet_count;    /* packets this band was applied to */
    uint64_t byte_count;
} vdp_meter_band;

struct vdp_meter {
    uint32_t id;
    uint16_t flags;           /* VDP_MF_* */
    uint16_t n_bands;
    uint8_t  started;         /* last_ns valid */
    uint64_t last_ns;         /* last refill */
    uint64_t created_ns;
    uint64_t packet_in_count;
    uint64_t byte_in_count;
    uint32_t ref_count;       /* flows using the meter (flow_count) */
    vdp_meter_band bands[VDP_METER_MAX_BANDS];
};

/* New meter; NULL when n_bands > VDP_METER_MAX_BANDS or no memory. */
vdp_meter *vdp_meter_new(uint32_t id, uint16_t flags, const vdp_meter_band_cfg *bands,
                         uint16_t n_bands, uint64_t now_ns);
void vdp_meter_free(vdp_meter *m);

/* Reconfigure in place (the address stays valid for programs): new flags and
 * bands, buckets full, band counters 0; meter counters, ref_count and
 * created_ns kept.  -1 when n_bands is too large. */
int vdp_meter_configure(vdp_meter *m, uint16_t flags, const vdp_meter_band_cfg *bands,
                        uint16_t n_bands);

/* Meter one packet of pkt_len bytes at now_ns.  Returns VDP_METER_PASS,
 * VDP_METER_DROP, or VDP_METER_REMARK with *remark_prec = the band's
 * prec_level (remark_prec may be NULL).  Counts packet_in/byte_in and the
 * applied band's packet/byte counts. */
int vdp_meter_apply(vdp_meter *m, uint64_t now_ns, uint32_t pkt_len, uint8_t *remark_prec);

/* Time since creation (stats duration). */
static inline uint64_t vdp_meter_duration_ns(const vdp_meter *m, uint64_t now_ns)
{
    return now_ns > m->created_ns ? now_ns - m->created_ns : 0;
}

/* ---------------------------------------------------------------- table */
typedef struct vdp_meter_table vdp_meter_table;

vdp_meter_table *vdp_meter_table_new(void);
void vdp_meter_table_free(vdp_meter_table *t);          /* frees all meters */
vdp_meter *vdp_meter_find(const vdp_meter_table *t, uint32_t id);
int vdp_meter_table_add(vdp_meter_table *t, vdp_meter *m);   /* -1: id exists */
/* Unlink meter `id` and return it (caller frees), or NULL. */
vdp_meter *vdp_meter_table_remove(vdp_meter_table *t, uint32_t id);
size_t vdp_meter_table_count(const vdp_meter_table *t);
/* Up to max meters sorted by id into out[]. */
size_t vdp_meter_table_list(const vdp_meter_table *t, vdp_meter **out, size_t max);

#endif
