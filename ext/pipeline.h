/* pipeline.h - the OpenFlow 1.3 pipeline: struct vdp_dp, its tables and
 * flow entries, miss translation, program execution, upcalls, timeouts.
 *
 * Callers: engine.c (vdp_dp_process_burst, with dp->lock held), normal.c,
 * group/meter code through vdp_dp.h, and the Cython facade (pipeline.pxi) for
 * every control-plane change (it takes dp->lock around each).
 *
 * Per packet: parse -> exact-match cache (key + generation) -> on a hit run
 * the cached program; on a miss walk the tables from 0 applying OF1.3
 * instruction semantics and compose ONE program (counting ops included, so
 * flow/table counters keep moving on cache hits), cache it, run it.
 * Any flow/group/meter/port/config change bumps dp->generation, which turns
 * every cached program stale at once. */
#ifndef VDP_PIPELINE_H
#define VDP_PIPELINE_H

#include <stdint.h>
#include <pthread.h>
#include "vdp_dp.h"
#include "classifier.h"
#include "emc.h"

#define VDP_EXEC_MAX_DEPTH  8           /* nested groups / copies */
#define VDP_SCRATCH_SIZE    (VDP_MAX_FRAME + 4 * VDP_HEADROOM)
#define VDP_UPCALL_SLOTS    1024
#define VDP_UPCALL_INLINE   2048        /* per-slot buffer; grown for bigger frames */
#define VDP_EMC_ENTRIES     8192
#define VDP_MAX_PROG_OPS    4096        /* longest composed program */
#define VDP_NO_TABLE        0xff

/* Flow entry flags: OFPFF_* in the low bits as the flow-mod gave them. */
#define VDP_FF_SEND_FLOW_REM 0x01
#define VDP_FF_CHECK_OVERLAP 0x02
#define VDP_FF_RESET_COUNTS  0x04
#define VDP_FF_NO_PKT_COUNTS 0x08
#define VDP_FF_NO_BYT_COUNTS 0x10
#define VDP_FF_TABLE_MISS    0x8000      /* priority 0, all wildcards */

/* Which instructions a flow carries. */
#define VDP_INSN_METER      0x01
#define VDP_INSN_APPLY      0x02
#define VDP_INSN_CLEAR      0x04
#define VDP_INSN_WRITE      0x08
#define VDP_INSN_WRITE_MD   0x10
#define VDP_INSN_GOTO       0x20

/* dp->fail_standalone: what fail mode standalone does right now.  The
 * OpenFlow agent sets it (through the facade, which bumps the generation so
 * cached programs built under the old mode are dropped):
 *   OFF          a controller is connected (or fail mode secure): the
 *                tables alone decide; a table miss with no table-miss flow
 *                drops.
 *   MISS_NORMAL  no controller connected and none configured: a table-0 miss
 *                with no table-miss flow goes to NORMAL; installed flows
 *                (config file, service connections) still win.
 *   OPEN         active controllers configured but none connected (OVS
 *                fail-open): every frame goes to NORMAL whatever the tables
 *                hold, so flows a lost controller left behind (say a
 *                table-miss -> CONTROLLER flow) cannot black-hole the
 *                switch.  No flow or table counter moves meanwhile. */
#define VDP_FAIL_OFF         0
#define VDP_FAIL_MISS_NORMAL 1
#define VDP_FAIL_OPEN        2

/* Flow removed reasons (ofp_flow_removed_reason). */
#define VDP_RR_IDLE_TIMEOUT 0
#define VDP_RR_HARD_TIMEOUT 1
#define VDP_RR_DELETE       2
#define VDP_RR_GROUP_DELETE 3
#define VDP_RR_METER_DELETE 4

/* One installed flow: <= 512 bytes all included (rule 184 + this 120 +
 * the classifier's slots + the compiled action lists; 304-byte malloc). */
struct vdp_flow {
    vdp_cls_rule rule;               /* first: classifier rule (value, priority) */
    vdp_flow *prev, *next;           /* dp list of every flow, install order */
    uint64_t cookie;
    uint64_t packets, bytes;
    uint64_t install_ns;
    uint64_t used_ns;                /* last packet (burst time), install if none */
    uint64_t md_value, md_mask;      /* write_metadata */
    vdp_prog *apply;                 /* apply-actions, NULL if none */
    vdp_prog *write;                 /* write-actions, NULL if none */
    void    *user[2];                /* the facade's data (its Match and instructions
                                      * objects, referenced by pipeline.pxi) */
    uint32_t meter_id;
    uint16_t idle_timeout, hard_timeout;
    uint16_t flags;                  /* VDP_FF_* */
    uint8_t  table_id;
    uint8_t  goto_table;             /* VDP_NO_TABLE when none */
    uint8_t  insn;                   /* VDP_INSN_* */
};

typedef struct vdp_table {
    vdp_cls *cls;
    uint64_t lookup, matched;
    uint32_t active;
} vdp_table;

/* One dp port slot. offload_ok: the port's tx handles csum_partial/gso_*
 * itself (set by the facade from the port provider), so partial checksums
 * need not be completed before handing it the frame. */
typedef struct vdp_dp_portslot {
    vdp_port *port;
    uint8_t   offload_ok;
} vdp_dp_portslot;

typedef struct vdp_upcall {
    uint8_t *data;
    uint32_t len, cap, total_len;
    uint32_t in_port;
    uint8_t  reason, table_id;
    uint16_t max_len;
    uint64_t cookie, metadata;
} vdp_upcall;

/* Datapath-wide packet accounting: every received frame lands in exactly one
 * of malformed / rx_dropped (port config) / forwarded (>= 1 tx) / upcalled
 * (no tx, >= 1 upcall attempted) / dropped. */
typedef struct vdp_dp_stats {
    uint64_t rx, malformed, rx_dropped, forwarded, upcalled, dropped;
    uint64_t hits, misses, nocache;      /* cache behaviour */
    uint64_t upcall_lost;                /* ring full */
    uint64_t invalid_ttl;
    uint64_t prog_too_long;
} vdp_dp_stats;

/* Program composition buffer (miss path only). */
typedef struct vdp_builder {
    vdp_op  *ops;
    uint32_t n, cap;
    uint32_t flags;
    int      overflow;
} vdp_builder;

struct vdp_normal;

struct vdp_dp {
    pthread_mutex_t lock;
    uint64_t generation;
    uint32_t n_tables;
    vdp_table *tables;
    vdp_flow *flows_head, *flows_tail;
    uint32_t n_flows;

    vdp_dp_portslot ports[VDP_MAX_PORTS];
    vdp_port *local;                 /* attached as OFPP_LOCAL */
    uint8_t   local_offload_ok;
    uint32_t  max_port;
    uint32_t  port_list[VDP_MAX_PORTS];  /* attached ofports, ascending */
    uint32_t  n_port_list;

    vdp_emc *emc;
    struct vdp_group_table *groups;  /* group.c */
    struct vdp_meter_table *meters;
    struct vdp_normal *normal;

    /* upcall ring */
    vdp_upcall *uc;
    uint32_t uc_head, uc_count;
    int      uc_fd;                  /* eventfd, readable while upcalls queued */
    int      uc_pending_signal;

    /* config */
    uint8_t  fail_standalone;        /* VDP_FAIL_* (fail mode standalone, below) */
    uint8_t  ttl_to_controller;      /* invalid TTL -> upcall INVALID_TTL (else drop) */

    /* per-packet bookkeeping */
    uint64_t now_ns;
    int      depth;                  /* exec depth running (scratch[depth] is its buffer) */
    int      live_depth;             /* group liveness recursion guard */
    uint32_t pkt_tx, pkt_uc;         /* tx / upcalls of the packet being run */
    const vdp_flow *run_flow;        /* last flow the running program counted, */
    uint8_t  run_table;              /* and its table: for output:CONTROLLER in
                                      * group buckets (packet-in cookie/table) */

    /* scratch: one frame buffer per exec depth, one for translation */
    uint8_t *scratch[VDP_EXEC_MAX_DEPTH + 1];
    uint8_t *xlate_buf;
    vdp_builder b;

    vdp_dp_stats stats;
};

/* -------- lifecycle */
vdp_dp *vdp_dp_new(uint32_t n_tables);
void vdp_dp_free(vdp_dp *dp);
uint64_t vdp_dp_now_ns(void);              /* CLOCK_MONOTONIC */
void vdp_dp_bump(vdp_dp *dp);              /* generation++ */
int vdp_dp_trylock(vdp_dp *dp);            /* 0: dp->lock taken without waiting */

/* -------- ports (lock held) */
int  vdp_dp_attach(vdp_dp *dp, uint32_t ofport, vdp_port *port, int offload_ok);
vdp_port *vdp_dp_detach(vdp_dp *dp, uint32_t ofport);
int  vdp_dp_set_offload(vdp_dp *dp, uint32_t ofport, int offload_ok);
/* Link state / OpenFlow port config changes (bump, refill select groups). */
int  vdp_dp_set_link(vdp_dp *dp, uint32_t ofport, int up);
int  vdp_dp_set_config(vdp_dp *dp, uint32_t ofport, uint32_t config, uint32_t mask);
/* Liveness for fast-failover watch ports: attached, link up, not PORT_DOWN. */
int  vdp_dp_port_live(vdp_dp *dp, uint32_t ofport);

/* -------- flows (lock held) */
/* A new, not yet inserted flow (calloc'd); value/mask keys are set by the
 * caller via flow->rule.value and the mask passed to vdp_dp_flow_insert. */
vdp_flow *vdp_flow_new(void);
void vdp_flow_free(vdp_flow *f);
/* Installs f in f->table_id under mask; an existing flow with identical
 * match and priority is replaced (and returned through *replaced, already
 * removed and to be freed by the caller).  Returns 0, -1 no memory. */
int  vdp_dp_flow_insert(vdp_dp *dp, vdp_flow *f, const vdp_key *mask,
                        vdp_flow **replaced);
void vdp_dp_flow_remove(vdp_dp *dp, vdp_flow *f);   /* unlinks; caller frees */
const vdp_key *vdp_flow_mask(const vdp_flow *f);
/* Is there another flow in the table with the same priority whose match
 * overlaps (some packet matches both)? */
int  vdp_dp_flow_overlaps(vdp_dp *dp, const vdp_flow *f, const vdp_key *mask);
/* Does f output to port / group (apply or write actions)?  ANY matches all. */
int  vdp_flow_has_output(const vdp_flow *f, uint32_t port);
int  vdp_flow_has_group(const vdp_flow *f, uint32_t group);
/* Non-strict match test: f's match is at least as specific as (v, m). */
int  vdp_flow_covers(const vdp_flow *f, const vdp_key *v, const vdp_key *m);
/* Collect flows whose hard/idle timeout passed at now_ns (removed from the
 * tables, still allocated): returns how many were stored (<= max). */
int  vdp_dp_expire(vdp_dp *dp, uint64_t now_ns, vdp_flow **out, uint8_t *reasons, int max);

/* -------- packets */
/* Run one frame through the pipeline as if received on pkt->in_port
 * (port stats counted when that port is attached). Lock held. */
void vdp_dp_process_one(vdp_dp *dp, vdp_pkt *pkt, uint64_t now_ns);
/* Packet-out: run prog (apply-actions semantics, OUTPUT TABLE allowed) on a
 * copy of data. Lock held. */
int  vdp_dp_packet_out(vdp_dp *dp, const uint8_t *data, uint32_t len,
                       uint32_t in_port, const vdp_prog *prog, uint64_t now_ns);
/* One rx burst from each of ports (in_port = its ofport) through the
 * pipeline, then tx_flush every attached port: the engine loop in
 * miniature for dummy-port tests and benches.  Returns frames run. */
int  vdp_dp_poll_ports(vdp_dp *dp, vdp_port **ports, int n_ports, vdp_pkt *pkts, uint64_t now_ns);
/* Runs prog on pkt/key at depth (0 = the received packet).  Returns 0 when
 * the program ran to its end, 1 when it stopped (drop, meter, bad TTL). */
int  vdp_exec(vdp_dp *dp, vdp_pkt *pkt, vdp_key *key, const vdp_prog *prog, int depth);
/* Compose the program for key (miss path).  Returns a program owned by the
 * caller (malloc'd) or, when *nocache, NULL and the program left in dp->b. */
int  vdp_dp_run(vdp_dp *dp, vdp_pkt *pkt, int depth);
vdp_prog *vdp_dp_translate(vdp_dp *dp, const vdp_pkt *pkt, const vdp_key *key, int *nocache);

/* -------- upcalls */
/* Pops the oldest upcall into *out (data pointer valid until the next
 * queue operation; copy it).  0 ok, -1 empty. */
int  vdp_dp_upcall_peek(vdp_dp *dp, vdp_upcall **out);
void vdp_dp_upcall_pop(vdp_dp *dp);
/* Signals the eventfd if anything was queued since the last signal. */
void vdp_dp_upcall_signal(vdp_dp *dp);

/* -------- groups/meters: resolution hooks used by vdp_exec */
vdp_group *vdp_dp_group(vdp_dp *dp, uint32_t group_id);
vdp_meter *vdp_dp_meter(vdp_dp *dp, uint32_t meter_id);
/* Group/meter table changes (lock held; bump the generation). add: -1 if
 * the id exists.  modify: see vdp_group_table_modify. */
int  vdp_dp_group_add(vdp_dp *dp, vdp_group *g);
vdp_group *vdp_dp_group_modify(vdp_dp *dp, vdp_group *g);
int  vdp_dp_group_delete(vdp_dp *dp, uint32_t group_id);
int  vdp_dp_group_chain_loops(vdp_dp *dp, uint32_t group_id);
int  vdp_dp_meter_add(vdp_dp *dp, vdp_meter *m);
int  vdp_dp_meter_delete(vdp_dp *dp, uint32_t meter_id);
/* Refill every select group's live table (after a port state change). */
void vdp_dp_groups_rebuild(vdp_dp *dp);

/* -------- flow selection (flow-stats / flow-mod filters) */
int  vdp_flow_same_match(const vdp_flow *f, const vdp_key *v, const vdp_key *m, int priority);
int  vdp_dp_select(vdp_dp *dp, uint8_t table_id, const vdp_key *v, const vdp_key *m,
                   int strict, int priority, uint32_t out_port, uint32_t out_group,
                   uint64_t cookie, uint64_t cookie_mask, vdp_flow **out, int max);

/* -------- the dummy port provider (port_dummy.c; Python: dummy.pxi) */
extern const vdp_port_ops vdp_dummy_ops;
vdp_port *vdp_dummy_new(void);
void vdp_dummy_close(vdp_port *p);
void vdp_dummy_free(vdp_port *p);
int  vdp_dummy_is(const vdp_port *p);
int  vdp_dummy_inject(vdp_port *p, const uint8_t *data, uint32_t len, int csum_partial);
uint64_t vdp_dummy_rx_pending(vdp_port *p);
void *vdp_dummy_tx_pop(vdp_port *p, const uint8_t **data, uint32_t *len, int *csum_partial);
void vdp_dummy_frame_free(void *frame);
void vdp_dummy_set_sink(vdp_port *p, int sink);
void vdp_dummy_set_tx_limit(vdp_port *p, uint64_t n);
uint64_t vdp_dummy_tx_count(vdp_port *p);
int  vdp_dummy_set_replay(vdp_port *p, const uint8_t *data, uint32_t len, uint64_t count);

#endif
