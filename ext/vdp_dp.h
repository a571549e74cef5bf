/* vdp_dp.h - the datapath object the fast path runs on: ports, tables,
 * groups, meters, cache, NORMAL state, upcall ring.  Owned by pipeline.c;
 * engine.c, actions.c, group.c, meter.c and normal.c reach it through the
 * fields and functions declared here.
 *
 * Threading: the engine thread runs bursts with the GIL released while
 * holding dp->lock; the control plane (Python) takes dp->lock for every
 * change.  So changes land at burst boundaries and the per-packet path takes
 * no lock.  Any table/group/meter/port change bumps dp->generation, which
 * invalidates every cached program. */
#ifndef VDP_DP_H
#define VDP_DP_H

#include <pthread.h>
#include "vdp_types.h"

typedef struct vdp_dp vdp_dp;
typedef struct vdp_flow vdp_flow;
typedef struct vdp_group vdp_group;
typedef struct vdp_meter vdp_meter;

/* pipeline.c: the per-burst entry point called by engine.c (lock held). */
void vdp_dp_process_burst(vdp_dp *dp, vdp_pkt *pkts, int n, uint64_t now_ns);
/* pipeline.c: output to a port number, reserved ports included. */
void vdp_dp_output(vdp_dp *dp, vdp_pkt *pkt, const vdp_key *key, uint32_t port, uint16_t max_len);
/* pipeline.c: port by OpenFlow number, NULL when absent. */
vdp_port *vdp_dp_port(vdp_dp *dp, uint32_t ofport);
/* pipeline.c: lock for control-plane changes and engine bursts. */
void vdp_dp_lock(vdp_dp *dp);
void vdp_dp_unlock(vdp_dp *dp);



/* Added for engine.c: highest OpenFlow port number attached (ports are
 * found with vdp_dp_port(dp, 1..max)), and the LOCAL port if any. */
uint32_t vdp_dp_max_port(vdp_dp *dp);
#endif
