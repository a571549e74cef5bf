/* group.h - OpenFlow groups: storage, the select bucket table, liveness and
 * bucket choice.  No I/O and no packet execution: pipeline.c (vdp_exec)
 * runs the chosen buckets' programs and counts; the control plane
 * (pipeline.pxi) builds groups and calls add/modify/delete under dp->lock.
 *
 * Select groups use a 256-slot table filled by bucket weight (largest
 * remainder) and indexed by a symmetric hash of the flow key
 * (vdp_select_hash), OVS bond.c style: when a bucket's watch port goes down
 * only that bucket's slots move to the live buckets, and they come back
 * when it recovers, so established flows keep their bucket.
 */
#ifndef VDP_GROUP_H
#define VDP_GROUP_H

#include <stdint.h>
#include <stddef.h>
#include "vdp_types.h"
#include "vdp_dp.h"          /* typedef struct vdp_group vdp_group */

/* Group types (ofp_group_type). */
#define VDP_GT_ALL       0
#define VDP_GT_SELECT    1
#define VDP_GT_INDIRECT  2
#define VDP_GT_FF        3

#define VDP_OFPG_ANY     0xffffffffu
#define VDP_SELECT_SLOTS 256          /* select table size (power of 2) */

typedef struct vdp_bucket {
    uint16_t  weight;
    uint32_t  watch_port;             /* VDP_OFPP_ANY = none */
    uint32_t  watch_group;            /* VDP_OFPG_ANY = none */
    vdp_prog *prog;                   /* owned by the group (free()d with it) */
    uint64_t  packet_count;           /* counted by the pipeline */
    uint64_t  byte_count;
} vdp_bucket;

struct vdp_group {
    uint32_t    id;
    uint8_t     type;                 /* VDP_GT_* */
    uint8_t     live_any;             /* select: at least one live slot */
    uint16_t    n_buckets;
    vdp_bucket *buckets;              /* n_buckets entries (malloc'd) */
    /* select: slot -> bucket index, from weights over all buckets (base)
     * and after removing dead buckets (live, what select uses) */
    uint16_t    base_table[VDP_SELECT_SLOTS];
    uint16_t    live_table[VDP_SELECT_SLOTS];
    uint64_t    packet_count;         /* counted by the pipeline */
    uint64_t    byte_count;
    uint32_t    ref_count;            /* flows whose programs point here */
    uint64_t    created_ns;           /* for duration in stats */
};

/* New group with n_buckets zeroed buckets (watch_port/group = ANY, weight
 * 0, prog NULL): fill them, then call vdp_group_rebuild (or add it to a
 * table, which does).  NULL on allocation failure. */
vdp_group *vdp_group_new(uint32_t id, uint8_t type, uint16_t n_buckets, uint64_t now_ns);
/* Free a group not in a table, its buckets and their programs. */
void vdp_group_free(vdp_group *g);

/* Refill the select tables.  port_live(ctx, port) says whether a watched
 * port is usable (NULL = every port live).  A select bucket is live when its
 * watch_port is ANY or live.  Weights: a bucket of weight 0 gets no slot,
 * unless every bucket has weight 0, in which case all count as 1 (ovs-ofctl
 * defaults select weights to 1; a group built without weights still
 * spreads).  No-op for other group types. */
void vdp_group_rebuild(vdp_group *g, int (*port_live)(void *, uint32_t), void *ctx);

/* Symmetric flow hash for select groups (and bonds): the same value for
 * both directions of a conversation.  Mixes the MAC pair, VLAN, ethertype,
 * the IPv4/ARP or IPv6 address pair, ip_proto and the TCP/UDP/SCTP port
 * pair, each pair order-independent (min, max); absent fields (presence
 * bits in key->present) contribute nothing, so non-IP frames hash on L2. */
uint32_t vdp_select_hash(const vdp_key *key);

/* Select group: a live bucket index for this key, or -1 when none is live. */
int vdp_group_select(const vdp_group *g, const vdp_key *key);
/* Same from a precomputed vdp_select_hash value. */
int vdp_group_select_hash(const vdp_group *g, uint32_t hash);

/* Fast failover: the first bucket whose watch_port (if not ANY) and
 * watch_group (if not ANY) are live, or -1.  A NULL callback means live. */
int vdp_group_ff_choose(const vdp_group *g, int (*port_live)(void *, uint32_t),
                        int (*group_live)(void *, uint32_t), void *ctx);

/* ---------------------------------------------------------------- table */
typedef struct vdp_group_table vdp_group_table;

vdp_group_table *vdp_group_table_new(void);
/* Frees the table and every group in it. */
void vdp_group_table_free(vdp_group_table *t);
vdp_group *vdp_group_find(const vdp_group_table *t, uint32_t id);
/* Insert g (rebuilding its select table with every port live; call
 * vdp_group_rebuild afterwards with real liveness).  -1 if the id exists. */
int vdp_group_table_add(vdp_group_table *t, vdp_group *g);
/* Replace the type and buckets of group `g->id` by those of g, keeping the
 * existing struct (so programs holding its address stay valid) and its
 * group counters, ref_count and created_ns; bucket counters start at 0.
 * Old bucket programs are freed; g's shell is freed.  Returns the group in
 * the table, or NULL (g untouched) when no such group exists. */
vdp_group *vdp_group_table_modify(vdp_group_table *t, vdp_group *g);
/* Unlink group `id` and return it (the caller frees it with vdp_group_free
 * once nothing points at it), or NULL. */
vdp_group *vdp_group_table_remove(vdp_group_table *t, uint32_t id);
/* Number of groups, and up to `max` of them sorted by id into out[]. */
size_t vdp_group_table_count(const vdp_group_table *t);
size_t vdp_group_table_list(const vdp_group_table *t, vdp_group **out, size_t max);
/* Rebuild every select group (port state changed). */
void vdp_group_table_rebuild(vdp_group_table *t, int (*port_live)(void *, uint32_t), void *ctx);

#endif
