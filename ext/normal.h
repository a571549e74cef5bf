/* normal.h - the OFPP_NORMAL action: a VLAN-aware MAC learning switch.
 *
 * Called by pipeline.c's vdp_exec when a program outputs to NORMAL (with
 * dp->lock held, inside a burst) and by the control plane (pipeline.pxi) to
 * flush, age and dump.  NORMAL is an op of the cached program, evaluated at
 * exec time, so learning never needs a generation bump: a cached program
 * that says "NORMAL" always consults the current table.
 *
 * The table maps (vlan, mac) -> port with a last-seen time; entries older
 * than the aging time are ignored and reclaimed; the table has a fixed
 * capacity (preallocated pool, no malloc per packet) and evicts the least
 * recently seen entry when full. */
#ifndef VDP_NORMAL_H
#define VDP_NORMAL_H

#include <stdint.h>
#include "vdp_dp.h"

#define VDP_NORMAL_DEFAULT_MAX   8192
#define VDP_NORMAL_DEFAULT_AGING 300      /* seconds */

typedef struct vdp_normal vdp_normal;

vdp_normal *vdp_normal_new(uint32_t max_entries, uint32_t aging_s);
void vdp_normal_free(vdp_normal *n);
void vdp_normal_set_aging(vdp_normal *n, uint32_t aging_s);
uint32_t vdp_normal_aging(const vdp_normal *n);
uint32_t vdp_normal_max(const vdp_normal *n);

/* Learn the source, then forward: known unicast to its port (never back to
 * the ingress port), anything else flooded (vdp_dp_output to FLOOD). */
void vdp_normal_forward(vdp_normal *n, vdp_dp *dp, vdp_pkt *pkt,
                        const vdp_key *key, uint64_t now_ns);

/* Returns 0 if the entry existed on that port, 1 new, 2 moved, -1 not
 * learned (multicast source). */
int vdp_normal_learn(vdp_normal *n, uint16_t vlan, const uint8_t mac[6],
                     uint32_t port, uint64_t now_ns);
/* Port learned for (vlan, mac), 0 when unknown or aged out. */
uint32_t vdp_normal_lookup(vdp_normal *n, uint16_t vlan, const uint8_t mac[6],
                           uint64_t now_ns);
void vdp_normal_flush(vdp_normal *n);
void vdp_normal_flush_port(vdp_normal *n, uint32_t port);
/* Drop entries older than the aging time; returns how many. */
uint32_t vdp_normal_expire(vdp_normal *n, uint64_t now_ns);
uint32_t vdp_normal_count(const vdp_normal *n);
uint64_t vdp_normal_evictions(const vdp_normal *n);

/* Dump: walks live entries in most-recently-seen order.  *cursor starts at
 * 0; returns 0 when done, 1 with the entry filled in. */
int vdp_normal_next(vdp_normal *n, uint32_t *cursor, uint16_t *vlan,
                    uint8_t mac[6], uint32_t *port, uint64_t *seen_ns);

#endif
