/* port_bond.h - the bond port provider: ONE vdp_port (one OpenFlow port)
 * over up to VDP_BOND_MAX_MEMBERS member ports (AF_PACKET, TAP or dummy
 * ports that are not attached to the datapath themselves).  Each frame the
 * pipeline sends to the bond goes out ONE member, chosen per packet by a
 * hash of the frame through a 256-entry bucket table; frames received on
 * any member come in as frames of the bond.
 *
 * Callers: engine.c and pipeline.c through the vdp_port ops vtable (burst
 * I/O, with dp->lock held); ext/bond.pxi (BondPort) for creation and for
 * everything the control plane (LACP machines, bucket assignment, SLB
 * rebalancing, bond/show) does.
 *
 * Fast path (ops):
 *   rx_burst  takes frames from the members, round robin over the starting
 *             member, filling up to max across members.  Slow Protocols
 *             frames (ethertype 0x8809 to 01:80:c2:00:00:02: LACPDUs,
 *             Marker PDUs) are copied into the slow ring for the control
 *             plane and never returned; frames from a member that is not
 *             collecting are dropped and counted.
 *   tx        hash -> bucket -> member -> member tx.  A bucket whose member
 *             is unset or not distributing falls back to a distributing
 *             member picked by the same hash (counted: fallback_tx); no
 *             distributing member at all -> -1 (the pipeline counts the
 *             bond's tx_dropped; no_member_dropped here).
 *   tx_flush  sends the frames queued by vdp_bond_send_on_member, then
 *             flushes every member.
 *   fd        an epoll fd holding the members' fds (the engine's poll()
 *             wakes for any member), or -1 when some member has no fd
 *             (dummy members: the engine then tries the bond every pass).
 *
 * Stats: the bond's vdp_port stats are the sum of its members' plus its
 * own drops.  The pipeline counts what it exchanges with the bond; the bond
 * adds what it keeps from the pipeline (diverted slow frames, frames of
 * non-collecting members, LACPDUs sent on members) and folds in the error
 * counters the member providers keep themselves (kernel drops, tx errors).
 * Each member's own vdp_port stats count its rx/tx as the bond drives it.
 *
 * Concurrency (control plane vs. the engine, which holds dp->lock):
 *   - mode, member flags and bucket entries are single relaxed atomic
 *     stores read by the fast path with relaxed loads: no lock.  A
 *     set_buckets of many entries lands entry by entry; every entry is
 *     valid at every moment, and the fallback above covers a bucket that
 *     still names a member whose distributing flag was just cleared.
 *   - the slow ring (engine -> control) and the control tx queue
 *     (control -> engine, drained in tx_flush) are single-producer /
 *     single-consumer rings with acquire/release indexes: no lock.  One
 *     control thread at a time (the GIL serialises the BondPort methods).
 *   - counters are written only by the fast path; readers use relaxed
 *     loads.  Resetting the bucket statistics records a baseline (no write
 *     to a counter the engine increments).
 * No allocation after vdp_bond_new: rings and tables are part of the bond.
 */
#ifndef VDP_PORT_BOND_H
#define VDP_PORT_BOND_H

#include <stddef.h>
#include <stdint.h>
#include "vdp_types.h"

#define VDP_BOND_MAX_MEMBERS 16
#define VDP_BOND_BUCKETS     256      /* power of two: bucket = hash & 255 */
#define VDP_BOND_NONE        0xff     /* bucket with no member */
#define VDP_BOND_SLOW_SLOTS  64       /* slow ring capacity (frames) */
#define VDP_BOND_CTL_SLOTS   32       /* send_on_member queue capacity */
#define VDP_BOND_FRAME_MAX   1536     /* largest slow / control frame kept */

/* Hash modes. */
#define VDP_BOND_L2  0    /* MAC pair + outer VLAN id (symmetric) */
#define VDP_BOND_L3  1    /* IPv4/IPv6 address pair (symmetric); L2 for non-IP */
#define VDP_BOND_L4  2    /* L3 + ip proto + TCP/UDP/SCTP port pair (symmetric);
                           * L3 for fragments and protocols without ports */
#define VDP_BOND_SLB 3    /* source MAC + outer VLAN id (OVS balance-slb) */

/* Bond-level counters (vdp_bond_counters). */
typedef struct vdp_bond_counters {
    uint64_t slow_rx;                 /* slow frames queued for the control plane */
    uint64_t slow_dropped;            /* slow frames lost: ring full or too long */
    uint64_t not_collecting_dropped;  /* frames of non-collecting members */
    uint64_t no_member_dropped;       /* tx with no distributing member */
    uint64_t fallback_tx;             /* tx whose bucket member was unusable */
    uint64_t ctl_tx;                  /* send_on_member frames sent */
    uint64_t ctl_dropped;             /* send_on_member frames the member refused */
} vdp_bond_counters;

/* Per-member counters the bond keeps beside the member's vdp_port stats. */
typedef struct vdp_bond_member_counters {
    uint64_t not_collecting_dropped;
    uint64_t slow_rx, slow_dropped;
    uint64_t ctl_tx, ctl_dropped;
    uint64_t fallback_tx;             /* frames sent here for another bucket's member */
} vdp_bond_member_counters;

/* Create a bond over n members (1..VDP_BOND_MAX_MEMBERS, distinct, not
 * bonds).  The bond does not own the members (the caller keeps them open
 * for the bond's lifetime and must not use them elsewhere).  Initial state:
 * every member collecting and distributing, bucket i -> member i % n,
 * link_up 1, mtu the smallest member's, hw_addr the first member's.
 * `name` is kept for vdp_port_ifname (up to 15 characters).
 * NULL on failure with a message in err. */
vdp_port *vdp_bond_new(const char *name, vdp_port *const *members, int n, int mode,
                       char *err, size_t errlen);
/* Free the bond (its epoll fd, eventfd, rings); members are left alone.
 * Also reachable as ops->close.  Detach it from the datapath first. */
void vdp_bond_free(vdp_port *p);
int vdp_bond_is(const vdp_port *p);

int vdp_bond_n_members(const vdp_port *p);
vdp_port *vdp_bond_member(const vdp_port *p, int i);

/* Control plane setters: each a relaxed atomic store (see above).  Return
 * 0, or -1 for a bad mode / index. */
int vdp_bond_set_mode(vdp_port *p, int mode);
int vdp_bond_mode(const vdp_port *p);
int vdp_bond_set_member(vdp_port *p, int i, int collecting, int distributing);
int vdp_bond_member_flags(const vdp_port *p, int i, int *collecting, int *distributing);
/* member -1 = none */
int vdp_bond_set_bucket(vdp_port *p, int bucket, int member);
int vdp_bond_bucket(const vdp_port *p, int bucket);

/* Per-bucket tx packets/bytes since the last reset (arrays of
 * VDP_BOND_BUCKETS), and the reset (a baseline; safe beside the engine). */
void vdp_bond_bucket_stats(const vdp_port *p, uint64_t *packets, uint64_t *bytes);
void vdp_bond_reset_bucket_stats(vdp_port *p);

void vdp_bond_counters_get(const vdp_port *p, vdp_bond_counters *out);
int vdp_bond_member_counters_get(const vdp_port *p, int i, vdp_bond_member_counters *out);

/* Slow ring.  slow_fd is an eventfd, readable while frames are queued (the
 * control plane polls it).  vdp_bond_slow_begin consumes the wakeup before
 * a drain; peek/pop read the ring in order; vdp_bond_slow_end re-arms the
 * eventfd if frames are left. */
int vdp_bond_slow_fd(const vdp_port *p);
void vdp_bond_slow_begin(vdp_port *p);
/* 0 and the oldest frame (valid until pop), or -1 when empty. */
int vdp_bond_slow_peek(vdp_port *p, int *member, const uint8_t **data, uint32_t *len);
void vdp_bond_slow_pop(vdp_port *p);
void vdp_bond_slow_end(vdp_port *p);

/* Queue one frame to be sent as-is on member i, bypassing the buckets
 * (LACPDUs, Marker PDUs); tx_flush sends it.  0, or -1 (bad index, frame
 * longer than VDP_BOND_FRAME_MAX, queue full). */
int vdp_bond_send_on_member(vdp_port *p, int i, const uint8_t *data, uint32_t len);

/* The flow hash of a parsed frame (header offsets of pkt) in `mode`.
 * Reads only pkt->data[0..len): offsets that point elsewhere are ignored. */
uint32_t vdp_bond_hash(const vdp_pkt *pkt, int mode);
/* The member a frame would go out on now (no counting), or -1. */
int vdp_bond_select(const vdp_port *p, const vdp_pkt *pkt);

#endif
