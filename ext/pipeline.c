/* pipeline.c - the OpenFlow 1.3 pipeline of one datapath (see pipeline.h).
 *
 * Sections: lifecycle and ports; flow entries; the upcall ring; output to
 * ports (reserved ports included); vdp_exec (runs a program); translation
 * (walks the tables on a cache miss and composes one program); the per-burst
 * entry point; packet-out; timeouts.
 *
 * Callers: engine.c (vdp_dp_process_burst, lock held), normal.c
 * (vdp_dp_output), the Cython facade (everything else, lock held). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "pipeline.h"
#include "vdp_parse.h"
#include "normal.h"
#include "actions.h"
#include "csum.h"
#include "group.h"
#include "meter.h"

/* ====================================================== lifecycle, ports */

uint64_t vdp_dp_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void vdp_dp_bump(vdp_dp *dp) { dp->generation++; }
void vdp_dp_lock(vdp_dp *dp) { pthread_mutex_lock(&dp->lock); }
void vdp_dp_unlock(vdp_dp *dp) { pthread_mutex_unlock(&dp->lock); }
/* 0 when taken; the control plane tries this before releasing the GIL to
 * wait (releasing and retaking the GIL costs more than an uncontended lock). */
int vdp_dp_trylock(vdp_dp *dp) { return pthread_mutex_trylock(&dp->lock); }

static int builder_reserve(vdp_builder *b, uint32_t extra)
{
    uint32_t want = b->n + extra;
    vdp_op *ops;
    if (want <= b->cap)
        return 0;
    if (want > VDP_MAX_PROG_OPS) {
        b->overflow = 1;
        return -1;
    }
    want = want < 64 ? 64 : want * 2;
    if (want > VDP_MAX_PROG_OPS)
        want = VDP_MAX_PROG_OPS;
    /* ops are stored after a vdp_prog header so a NOCACHE program runs
     * straight from the builder */
    ops = realloc(b->ops ? (void *)((char *)b->ops - sizeof(vdp_prog)) : NULL,
                  sizeof(vdp_prog) + want * sizeof(vdp_op));
    if (!ops) {
        b->overflow = 1;
        return -1;
    }
    b->ops = (vdp_op *)((char *)ops + sizeof(vdp_prog));
    b->cap = want;
    return 0;
}

static vdp_prog *builder_prog(vdp_builder *b)
{
    vdp_prog *p = (vdp_prog *)((char *)b->ops - sizeof(vdp_prog));
    p->n = b->n;
    p->flags = b->flags;
    return p;
}

vdp_dp *vdp_dp_new(uint32_t n_tables)
{
    vdp_dp *dp;
    uint32_t i;
    if (n_tables == 0 || n_tables > VDP_MAX_TABLES)
        return NULL;
    dp = calloc(1, sizeof *dp);
    if (!dp)
        return NULL;
    pthread_mutex_init(&dp->lock, NULL);
    dp->uc_fd = -1;
    dp->n_tables = n_tables;
    dp->generation = 1;
    dp->tables = calloc(n_tables, sizeof *dp->tables);
    if (!dp->tables)
        goto fail;
    for (i = 0; i < n_tables; i++)
        if (!(dp->tables[i].cls = vdp_cls_new()))
            goto fail;
    if (!(dp->emc = vdp_emc_new(VDP_EMC_ENTRIES)))
        goto fail;
    if (!(dp->normal = vdp_normal_new(VDP_NORMAL_DEFAULT_MAX, VDP_NORMAL_DEFAULT_AGING)))
        goto fail;
    if (!(dp->groups = vdp_group_table_new()))
        goto fail;
    if (!(dp->meters = vdp_meter_table_new()))
        goto fail;
    if (!(dp->uc = calloc(VDP_UPCALL_SLOTS, sizeof *dp->uc)))
        goto fail;
    for (i = 0; i < VDP_UPCALL_SLOTS; i++) {
        if (!(dp->uc[i].data = malloc(VDP_UPCALL_INLINE)))
            goto fail;
        dp->uc[i].cap = VDP_UPCALL_INLINE;
    }
    dp->uc_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (dp->uc_fd < 0)
        goto fail;
    for (i = 0; i <= VDP_EXEC_MAX_DEPTH; i++)
        if (!(dp->scratch[i] = malloc(VDP_SCRATCH_SIZE)))
            goto fail;
    if (!(dp->xlate_buf = malloc(VDP_SCRATCH_SIZE)))
        goto fail;
    if (builder_reserve(&dp->b, 64) < 0)
        goto fail;
    return dp;
fail:
    vdp_dp_free(dp);
    return NULL;
}

static void flow_free_progs(vdp_flow *f)
{
    free(f->apply);
    free(f->write);
    f->apply = f->write = NULL;
}

void vdp_flow_free(vdp_flow *f)
{
    if (!f)
        return;
    flow_free_progs(f);
    free(f);
}

vdp_flow *vdp_flow_new(void)
{
    vdp_flow *f = calloc(1, sizeof *f);
    if (f)
        f->goto_table = VDP_NO_TABLE;
    return f;
}

void vdp_dp_free(vdp_dp *dp)
{
    uint32_t i;
    vdp_flow *f, *next;
    if (!dp)
        return;
    for (f = dp->flows_head; f; f = next) {
        next = f->next;
        vdp_flow_free(f);
    }
    if (dp->tables)
        for (i = 0; i < dp->n_tables; i++)
            vdp_cls_free(dp->tables[i].cls);
    free(dp->tables);
    if (dp->emc)
        vdp_emc_free(dp->emc);
    vdp_normal_free(dp->normal);
    if (dp->groups)
        vdp_group_table_free(dp->groups);
    if (dp->meters)
        vdp_meter_table_free(dp->meters);
    if (dp->uc) {
        for (i = 0; i < VDP_UPCALL_SLOTS; i++)
            free(dp->uc[i].data);
        free(dp->uc);
    }
    if (dp->uc_fd >= 0)
        close(dp->uc_fd);
    for (i = 0; i <= VDP_EXEC_MAX_DEPTH; i++)
        free(dp->scratch[i]);
    free(dp->xlate_buf);
    if (dp->b.ops)
        free((char *)dp->b.ops - sizeof(vdp_prog));
    pthread_mutex_destroy(&dp->lock);
    free(dp);
}

vdp_port *vdp_dp_port(vdp_dp *dp, uint32_t ofport)
{
    if (ofport < VDP_MAX_PORTS)
        return dp->ports[ofport].port;
    if (ofport == VDP_OFPP_LOCAL)
        return dp->local;
    return NULL;
}

uint32_t vdp_dp_max_port(vdp_dp *dp) { return dp->max_port; }

static int port_offload_ok(vdp_dp *dp, uint32_t ofport)
{
    if (ofport < VDP_MAX_PORTS)
        return dp->ports[ofport].offload_ok;
    return ofport == VDP_OFPP_LOCAL ? dp->local_offload_ok : 0;
}

static void rebuild_port_list(vdp_dp *dp)
{
    uint32_t i, n = 0;
    dp->max_port = 0;
    for (i = 1; i < VDP_MAX_PORTS; i++)
        if (dp->ports[i].port) {
            dp->port_list[n++] = i;
            dp->max_port = i;
        }
    dp->n_port_list = n;
}

int vdp_dp_attach(vdp_dp *dp, uint32_t ofport, vdp_port *port, int offload_ok)
{
    if (!port)
        return -1;
    if (ofport == VDP_OFPP_LOCAL) {
        if (dp->local)
            return -1;
        dp->local = port;
        dp->local_offload_ok = !!offload_ok;
    } else {
        if (ofport == 0 || ofport >= VDP_MAX_PORTS || dp->ports[ofport].port)
            return -1;
        dp->ports[ofport].port = port;
        dp->ports[ofport].offload_ok = !!offload_ok;
        rebuild_port_list(dp);
    }
    port->ofport = ofport;
    vdp_dp_groups_rebuild(dp);
    vdp_dp_bump(dp);
    return 0;
}

vdp_port *vdp_dp_detach(vdp_dp *dp, uint32_t ofport)
{
    vdp_port *p = vdp_dp_port(dp, ofport);
    if (!p)
        return NULL;
    if (ofport == VDP_OFPP_LOCAL) {
        dp->local = NULL;
    } else {
        dp->ports[ofport].port = NULL;
        dp->ports[ofport].offload_ok = 0;
        rebuild_port_list(dp);
    }
    vdp_normal_flush_port(dp->normal, ofport);
    vdp_dp_groups_rebuild(dp);
    vdp_dp_bump(dp);
    return p;
}

int vdp_dp_set_offload(vdp_dp *dp, uint32_t ofport, int offload_ok)
{
    if (!vdp_dp_port(dp, ofport))
        return -1;
    if (ofport == VDP_OFPP_LOCAL)
        dp->local_offload_ok = !!offload_ok;
    else
        dp->ports[ofport].offload_ok = !!offload_ok;
    return 0;
}

int vdp_dp_set_link(vdp_dp *dp, uint32_t ofport, int up)
{
    vdp_port *p = vdp_dp_port(dp, ofport);
    if (!p)
        return -1;
    p->link_up = !!up;
    vdp_dp_groups_rebuild(dp);
    vdp_dp_bump(dp);
    return 0;
}

int vdp_dp_set_config(vdp_dp *dp, uint32_t ofport, uint32_t config, uint32_t mask)
{
    vdp_port *p = vdp_dp_port(dp, ofport);
    if (!p)
        return -1;
    p->config = (p->config & ~mask) | (config & mask);
    vdp_dp_groups_rebuild(dp);
    vdp_dp_bump(dp);
    return 0;
}

int vdp_dp_port_live(vdp_dp *dp, uint32_t ofport)
{
    vdp_port *p = vdp_dp_port(dp, ofport);
    return p && p->link_up && !(p->config & VDP_OFPPC_PORT_DOWN);
}

/* ============================================================ flow entries */

const vdp_key *vdp_flow_mask(const vdp_flow *f)
{
    return vdp_cls_rule_mask(&f->rule);
}

static int mask_is_empty(const vdp_key *m)
{
    int i;
    for (i = 0; i < VDP_KEY_WORDS; i++)
        if (m->w[i])
            return 0;
    return 1;
}

static void list_append(vdp_dp *dp, vdp_flow *f)
{
    f->next = NULL;
    f->prev = dp->flows_tail;
    if (dp->flows_tail) dp->flows_tail->next = f; else dp->flows_head = f;
    dp->flows_tail = f;
    dp->n_flows++;
}

static void list_unlink(vdp_dp *dp, vdp_flow *f)
{
    if (f->prev) f->prev->next = f->next; else dp->flows_head = f->next;
    if (f->next) f->next->prev = f->prev; else dp->flows_tail = f->prev;
    f->prev = f->next = NULL;
    dp->n_flows--;
}

int vdp_dp_flow_insert(vdp_dp *dp, vdp_flow *f, const vdp_key *mask, vdp_flow **replaced)
{
    vdp_table *t;
    vdp_flow *old;
    int i;
    *replaced = NULL;
    if (f->table_id >= dp->n_tables)
        return -1;
    t = &dp->tables[f->table_id];
    for (i = 0; i < VDP_KEY_WORDS; i++)
        f->rule.value.w[i] &= mask->w[i];
    old = (vdp_flow *)vdp_cls_find_exact(t->cls, &f->rule.value, mask, f->rule.priority);
    if (old) {
        /* Swap in place: allocates nothing, so it cannot fail and the entry
         * keeps its rank among equal priorities. */
        vdp_cls_replace(t->cls, &old->rule, &f->rule);
    } else if (vdp_cls_insert(t->cls, &f->rule, mask) < 0) {
        return -1;
    }
    if (old) {
        /* OF1.3 6.4: an identical add replaces the entry; counters carry
         * over unless OFPFF_RESET_COUNTS. */
        if (!(f->flags & VDP_FF_RESET_COUNTS)) {
            f->packets = old->packets;
            f->bytes = old->bytes;
        }
        list_unlink(dp, old);
        t->active--;
        *replaced = old;
    }
    if (f->rule.priority == 0 && mask_is_empty(mask))
        f->flags |= VDP_FF_TABLE_MISS;
    else
        f->flags &= ~VDP_FF_TABLE_MISS;
    if (!f->install_ns)
        f->install_ns = vdp_dp_now_ns();
    f->used_ns = f->install_ns;
    list_append(dp, f);
    t->active++;
    vdp_dp_bump(dp);
    return 0;
}

void vdp_dp_flow_remove(vdp_dp *dp, vdp_flow *f)
{
    vdp_table *t = &dp->tables[f->table_id];
    vdp_cls_remove(t->cls, &f->rule);
    list_unlink(dp, f);
    t->active--;
    vdp_dp_bump(dp);
}

struct overlap_arg {
    const vdp_flow *f;
    const vdp_key *mask;
};

static int overlap_cb(vdp_cls_rule *r, void *arg)
{
    struct overlap_arg *a = arg;
    const vdp_key *m2 = vdp_cls_rule_mask(r);
    int i;
    if (r == &a->f->rule || r->priority != a->f->rule.priority)
        return 0;
    for (i = 0; i < VDP_KEY_WORDS; i++)
        if ((a->f->rule.value.w[i] ^ r->value.w[i]) & a->mask->w[i] & m2->w[i])
            return 0;
    return 1;
}

int vdp_dp_flow_overlaps(vdp_dp *dp, const vdp_flow *f, const vdp_key *mask)
{
    struct overlap_arg a = { f, mask };
    if (f->table_id >= dp->n_tables)
        return 0;
    return vdp_cls_foreach(dp->tables[f->table_id].cls, overlap_cb, &a);
}

static int prog_has(const vdp_prog *p, uint8_t type, uint32_t arg)
{
    uint32_t i;
    if (!p)
        return 0;
    for (i = 0; i < p->n; i++)
        if (p->ops[i].type == type && p->ops[i].arg == arg)
            return 1;
    return 0;
}

int vdp_flow_has_output(const vdp_flow *f, uint32_t port)
{
    if (port == VDP_OFPP_ANY)
        return 1;
    return prog_has(f->apply, VDP_OP_OUTPUT, port) || prog_has(f->write, VDP_OP_OUTPUT, port);
}

int vdp_flow_has_group(const vdp_flow *f, uint32_t group)
{
    if (group == VDP_OFPP_ANY)          /* OFPG_ANY has the same value */
        return 1;
    return prog_has(f->apply, VDP_OP_GROUP, group) || prog_has(f->write, VDP_OP_GROUP, group);
}

int vdp_flow_covers(const vdp_flow *f, const vdp_key *v, const vdp_key *m)
{
    const vdp_key *fm = vdp_flow_mask(f);
    int i;
    for (i = 0; i < VDP_KEY_WORDS; i++) {
        if ((fm->w[i] & m->w[i]) != m->w[i])
            return 0;
        if ((f->rule.value.w[i] ^ v->w[i]) & m->w[i])
            return 0;
    }
    return 1;
}

int vdp_flow_same_match(const vdp_flow *f, const vdp_key *v, const vdp_key *m, int priority)
{
    const vdp_key *fm = vdp_flow_mask(f);
    int i;
    if (f->rule.priority != priority)
        return 0;
    for (i = 0; i < VDP_KEY_WORDS; i++)
        if (fm->w[i] != m->w[i] || ((f->rule.value.w[i] ^ v->w[i]) & m->w[i]))
            return 0;
    return 1;
}

int vdp_dp_expire(vdp_dp *dp, uint64_t now_ns, vdp_flow **out, uint8_t *reasons, int max)
{
    vdp_flow *f, *next;
    int n = 0;
    for (f = dp->flows_head; f && n < max; f = next) {
        int reason = -1;
        next = f->next;
        if (!f->idle_timeout && !f->hard_timeout)
            continue;
        if (f->hard_timeout && now_ns >= f->install_ns &&
            now_ns - f->install_ns >= (uint64_t)f->hard_timeout * 1000000000ULL)
            reason = VDP_RR_HARD_TIMEOUT;
        else if (f->idle_timeout && now_ns >= f->used_ns &&
                 now_ns - f->used_ns >= (uint64_t)f->idle_timeout * 1000000000ULL)
            reason = VDP_RR_IDLE_TIMEOUT;
        if (reason < 0)
            continue;
        vdp_dp_flow_remove(dp, f);
        out[n] = f;
        reasons[n] = (uint8_t)reason;
        n++;
    }
    return n;
}

/* Flows selected by an OpenFlow flow-stats / flow-mod filter, install
 * order.  table_id 0xff = all tables.  strict: same mask, value, priority.
 * Returns how many were stored in out (<= max). */
int vdp_dp_select(vdp_dp *dp, uint8_t table_id, const vdp_key *v, const vdp_key *m,
                  int strict, int priority, uint32_t out_port, uint32_t out_group,
                  uint64_t cookie, uint64_t cookie_mask, vdp_flow **out, int max)
{
    vdp_flow *f;
    int n = 0;
    for (f = dp->flows_head; f && n < max; f = f->next) {
        if (table_id != 0xff && f->table_id != table_id)
            continue;
        if ((f->cookie & cookie_mask) != (cookie & cookie_mask))
            continue;
        if (strict ? !vdp_flow_same_match(f, v, m, priority) : !vdp_flow_covers(f, v, m))
            continue;
        if (!vdp_flow_has_output(f, out_port) || !vdp_flow_has_group(f, out_group))
            continue;
        out[n++] = f;
    }
    return n;
}

/* ============================================================ upcall ring */

static void upcall_push(vdp_dp *dp, const vdp_pkt *pkt, uint8_t reason, uint8_t table_id,
                        uint64_t cookie, uint64_t metadata, uint16_t max_len)
{
    vdp_upcall *u;
    vdp_port *in = vdp_dp_port(dp, pkt->in_port);
    if (in && (in->config & VDP_OFPPC_NO_PACKET_IN))
        return;
    dp->pkt_uc++;
    if (dp->uc_count == VDP_UPCALL_SLOTS) {
        dp->stats.upcall_lost++;
        return;
    }
    u = &dp->uc[(dp->uc_head + dp->uc_count) % VDP_UPCALL_SLOTS];
    if (pkt->len > u->cap) {
        /* rare (jumbo/GSO frame to the controller): grow this slot */
        uint8_t *d = realloc(u->data, pkt->len);
        if (!d) {
            dp->stats.upcall_lost++;
            return;
        }
        u->data = d;
        u->cap = pkt->len;
    }
    memcpy(u->data, pkt->data, pkt->len);
    u->len = u->total_len = pkt->len;
    u->in_port = pkt->in_port;
    u->reason = reason;
    u->table_id = table_id;
    u->cookie = cookie;
    u->metadata = metadata;
    u->max_len = max_len;
    if (pkt->csum_partial) {
        /* the controller gets finished checksums */
        vdp_pkt tmp = *pkt;
        vdp_csum_complete_buf(&tmp, u->data);
    }
    dp->uc_count++;
    dp->uc_pending_signal = 1;
}

int vdp_dp_upcall_peek(vdp_dp *dp, vdp_upcall **out)
{
    if (!dp->uc_count)
        return -1;
    *out = &dp->uc[dp->uc_head];
    return 0;
}

void vdp_dp_upcall_pop(vdp_dp *dp)
{
    uint64_t v;
    if (!dp->uc_count)
        return;
    dp->uc_head = (dp->uc_head + 1) % VDP_UPCALL_SLOTS;
    dp->uc_count--;
    if (!dp->uc_count && read(dp->uc_fd, &v, sizeof v) < 0) {
        /* EAGAIN: nothing signalled yet */
    }
}

void vdp_dp_upcall_signal(vdp_dp *dp)
{
    uint64_t one = 1;
    if (!dp->uc_pending_signal)
        return;
    dp->uc_pending_signal = 0;
    if (write(dp->uc_fd, &one, sizeof one) < 0) {
        /* counter saturated: still readable */
    }
}

/* ============================================================ output */

/* Hand pkt to one port's tx.  `allow_in`: the OpenFlow IN_PORT case. */
static void out_port(vdp_dp *dp, vdp_pkt *pkt, uint32_t ofport, int allow_in)
{
    vdp_port *p = vdp_dp_port(dp, ofport);
    if (!p || (!allow_in && ofport == pkt->in_port))
        return;
    if (!p->link_up || (p->config & (VDP_OFPPC_PORT_DOWN | VDP_OFPPC_NO_FWD)))
        return;
    if ((pkt->csum_partial || pkt->gso_type) && !port_offload_ok(dp, ofport)) {
        /* the port cannot take offload metadata: finish the checksum here
         * (in this depth's scratch buffer; the finished checksum stays
         * valid for whatever the program does next) */
        if (vdp_pkt_make_writable(pkt, dp->scratch[dp->depth], VDP_SCRATCH_SIZE) < 0 ||
            vdp_csum_complete(pkt) < 0) {
            p->stats.tx_dropped++;
            return;
        }
    }
    if (p->ops->tx(p, pkt) == 0) {
        p->stats.tx_packets++;
        p->stats.tx_bytes += pkt->len;
        dp->pkt_tx++;
    } else {
        p->stats.tx_dropped++;
    }
}

static void out_flood(vdp_dp *dp, vdp_pkt *pkt)
{
    uint32_t i;
    for (i = 0; i < dp->n_port_list; i++)
        out_port(dp, pkt, dp->port_list[i], 0);
    if (dp->local)
        out_port(dp, pkt, VDP_OFPP_LOCAL, 0);
}

void vdp_dp_output(vdp_dp *dp, vdp_pkt *pkt, const vdp_key *key, uint32_t port, uint16_t max_len)
{
    switch (port) {
    case VDP_OFPP_IN_PORT:
        out_port(dp, pkt, pkt->in_port, 1);
        break;
    case VDP_OFPP_FLOOD:
    case VDP_OFPP_ALL:
        out_flood(dp, pkt);
        break;
    case VDP_OFPP_NORMAL:
        vdp_normal_forward(dp->normal, dp, pkt, key, dp->now_ns);
        break;
    case VDP_OFPP_CONTROLLER:
        /* from a group bucket or a packet-out (flow actions carry their own
         * CONTROLLER op): the flow that ran last, if any */
        upcall_push(dp, pkt, VDP_OFPR_ACTION, dp->run_flow ? dp->run_table : 0xff,
                    dp->run_flow ? dp->run_flow->cookie : ~0ULL,
                    key ? key->metadata : 0, max_len);
        break;
    case VDP_OFPP_TABLE:
    case VDP_OFPP_ANY:
        break;                          /* TABLE: handled by vdp_exec (packet-out) */
    default:
        out_port(dp, pkt, port, 0);
        break;
    }
}

/* ============================================================ exec */

/* Resolve group/meter ids: composed programs carry the pointer resolved at
 * translation (valid for this generation), bucket programs only the id. */
vdp_group *vdp_dp_group(vdp_dp *dp, uint32_t group_id)
{
    return vdp_group_find(dp->groups, group_id);
}

vdp_meter *vdp_dp_meter(vdp_dp *dp, uint32_t meter_id)
{
    return vdp_meter_find(dp->meters, meter_id);
}

static void invalid_ttl(vdp_dp *dp, vdp_pkt *pkt, const vdp_flow *cur, uint8_t table)
{
    dp->stats.invalid_ttl++;
    if (dp->ttl_to_controller)
        upcall_push(dp, pkt, VDP_OFPR_INVALID_TTL, table,
                    cur ? cur->cookie : ~0ULL, 0, 0xffff);
}

/* Run prog on a private copy of pkt at depth + 1 (group buckets, TABLE).
 * The copy starts read-only on the caller's bytes and gets its own scratch
 * buffer on its first rewrite, so the caller's packet never changes. */
static int exec_copy(vdp_dp *dp, const vdp_pkt *pkt, const vdp_key *key,
                     const vdp_prog *prog, int depth)
{
    vdp_pkt cp;
    vdp_key k;
    if (depth + 1 > VDP_EXEC_MAX_DEPTH || !prog)
        return 1;
    cp = *pkt;
    cp.rewritten = 0;               /* first rewrite copies into scratch[depth + 1] */
    k = *key;
    return vdp_exec(dp, &cp, &k, prog, depth + 1);
}

/* Liveness callbacks for group.c.  A watched group is live when it has a
 * live bucket; chains are bounded (a group watching itself is dead). */
static int cb_port_live(void *ctx, uint32_t port)
{
    return vdp_dp_port_live(ctx, port);
}

static int cb_group_live(void *ctx, uint32_t group_id)
{
    vdp_dp *dp = ctx;
    const vdp_group *g = vdp_dp_group(dp, group_id);
    int live = 0;
    uint32_t i;
    if (!g || dp->live_depth >= VDP_EXEC_MAX_DEPTH)
        return 0;
    dp->live_depth++;
    if (g->type == VDP_GT_FF) {
        live = vdp_group_ff_choose(g, cb_port_live, cb_group_live, dp) >= 0;
    } else {
        for (i = 0; i < g->n_buckets && !live; i++) {
            const vdp_bucket *b = &g->buckets[i];
            live = (b->watch_port == VDP_OFPP_ANY || vdp_dp_port_live(dp, b->watch_port)) &&
                   (b->watch_group == VDP_OFPG_ANY || cb_group_live(dp, b->watch_group));
        }
    }
    dp->live_depth--;
    return live;
}

void vdp_dp_groups_rebuild(vdp_dp *dp)
{
    vdp_group_table_rebuild(dp->groups, cb_port_live, dp);
}

int vdp_dp_group_add(vdp_dp *dp, vdp_group *g)
{
    if (vdp_group_table_add(dp->groups, g) < 0)
        return -1;
    vdp_group_rebuild(g, cb_port_live, dp);
    vdp_dp_bump(dp);
    return 0;
}

vdp_group *vdp_dp_group_modify(vdp_dp *dp, vdp_group *g)
{
    vdp_group *r = vdp_group_table_modify(dp->groups, g);
    if (r) {
        vdp_group_rebuild(r, cb_port_live, dp);
        vdp_dp_bump(dp);
    }
    return r;
}

int vdp_dp_group_delete(vdp_dp *dp, uint32_t group_id)
{
    vdp_group *g = vdp_group_table_remove(dp->groups, group_id);
    if (!g)
        return -1;
    vdp_group_free(g);              /* cached programs pointing at it are stale now */
    vdp_dp_bump(dp);
    return 0;
}

/* Does following group_id's bucket GROUP actions lead back to it (or
 * deeper than an exec can go)? */
static int chain_reaches(vdp_dp *dp, uint32_t from, uint32_t target, int depth)
{
    const vdp_group *g = vdp_dp_group(dp, from);
    uint32_t i, j;
    if (!g)
        return 0;
    if (depth > VDP_EXEC_MAX_DEPTH)
        return 1;
    for (i = 0; i < g->n_buckets; i++) {
        const vdp_prog *p = g->buckets[i].prog;
        for (j = 0; p && j < p->n; j++) {
            if (p->ops[j].type != VDP_OP_GROUP)
                continue;
            if (p->ops[j].arg == target || chain_reaches(dp, p->ops[j].arg, target, depth + 1))
                return 1;
        }
    }
    return 0;
}

int vdp_dp_group_chain_loops(vdp_dp *dp, uint32_t group_id)
{
    return chain_reaches(dp, group_id, group_id, 0);
}

int vdp_dp_meter_add(vdp_dp *dp, vdp_meter *m)
{
    if (vdp_meter_table_add(dp->meters, m) < 0)
        return -1;
    vdp_dp_bump(dp);
    return 0;
}

int vdp_dp_meter_delete(vdp_dp *dp, uint32_t meter_id)
{
    vdp_meter *m = vdp_meter_table_remove(dp->meters, meter_id);
    if (!m)
        return -1;
    vdp_meter_free(m);
    vdp_dp_bump(dp);
    return 0;
}

static void run_bucket(vdp_dp *dp, vdp_group *g, uint32_t i, const vdp_pkt *pkt,
                       const vdp_key *key, int depth)
{
    vdp_bucket *b = &g->buckets[i];
    b->packet_count++;
    b->byte_count += pkt->len;
    exec_copy(dp, pkt, key, b->prog, depth);
}

static void exec_group(vdp_dp *dp, vdp_pkt *pkt, vdp_key *key, const vdp_op *op, int depth)
{
    vdp_group *g = op->ptr ? op->ptr : vdp_dp_group(dp, op->arg);
    uint32_t i;
    int sel;
    if (!g || depth >= VDP_EXEC_MAX_DEPTH)
        return;
    g->packet_count++;
    g->byte_count += pkt->len;
    switch (g->type) {
    case VDP_GT_ALL:
        for (i = 0; i < g->n_buckets; i++)
            run_bucket(dp, g, i, pkt, key, depth);
        break;
    case VDP_GT_SELECT:
        sel = vdp_group_select(g, key);
        if (sel >= 0)
            run_bucket(dp, g, (uint32_t)sel, pkt, key, depth);
        break;
    case VDP_GT_INDIRECT:
        if (g->n_buckets)
            run_bucket(dp, g, 0, pkt, key, depth);
        break;
    case VDP_GT_FF:
        dp->live_depth = 0;
        sel = vdp_group_ff_choose(g, cb_port_live, cb_group_live, dp);
        if (sel >= 0)
            run_bucket(dp, g, (uint32_t)sel, pkt, key, depth);
        break;
    }
}

/* The key follows the bytes lazily: rewrites only mark it stale and the
 * few consumers that read it (NORMAL, select groups, group copies) re-parse
 * first. */
static inline void key_sync(vdp_pkt *pkt, vdp_key *key, int *stale)
{
    if (*stale) {
        vdp_reparse(pkt, key);
        *stale = 0;
    }
}

static int exec_prog(vdp_dp *dp, vdp_pkt *pkt, vdp_key *key, const vdp_prog *prog, int depth);

int vdp_exec(vdp_dp *dp, vdp_pkt *pkt, vdp_key *key, const vdp_prog *prog, int depth)
{
    int saved = dp->depth, rc;
    dp->depth = depth;
    rc = exec_prog(dp, pkt, key, prog, depth);
    dp->depth = saved;
    return rc;
}

static int exec_prog(vdp_dp *dp, vdp_pkt *pkt, vdp_key *key, const vdp_prog *prog, int depth)
{
    const vdp_flow *cur = NULL;     /* flow whose ops are running (COUNT_FLOW) */
    uint8_t cur_table = 0;
    uint32_t i;
    int rc, stale = 0;

    for (i = 0; i < prog->n; i++) {
        const vdp_op *op = &prog->ops[i];
        switch (op->type) {
        case VDP_OP_COUNT_FLOW: {
            vdp_flow *f = op->ptr;
            vdp_table *t = &dp->tables[op->aux];
            f->packets++;
            f->bytes += pkt->len;
            f->used_ns = dp->now_ns;
            t->lookup++;
            t->matched++;
            cur = f;
            cur_table = op->aux;
            dp->run_flow = f;
            dp->run_table = op->aux;
            break;
        }
        case VDP_OP_COUNT_MISS:
            dp->tables[op->aux].lookup++;
            cur = NULL;
            cur_table = op->aux;
            break;
        case VDP_OP_DROP:
            return 1;
        case VDP_OP_OUTPUT:
            if (op->arg == VDP_OFPP_TABLE) {
                /* packet-out only: the whole pipeline on a copy */
                if (depth < VDP_EXEC_MAX_DEPTH) {
                    vdp_pkt cp = *pkt;
                    cp.rewritten = 0;
                    vdp_dp_run(dp, &cp, depth + 1);
                }
            } else {
                if (op->arg == VDP_OFPP_NORMAL)
                    key_sync(pkt, key, &stale);
                vdp_dp_output(dp, pkt, key, op->arg, op->arg16);
            }
            break;
        case VDP_OP_CONTROLLER: {
            const vdp_flow *f = op->ptr;
            upcall_push(dp, pkt, (uint8_t)op->arg, op->aux, f ? f->cookie : ~0ULL,
                        op->val.u64, op->arg16);
            break;
        }
        case VDP_OP_GROUP:
            key_sync(pkt, key, &stale);
            exec_group(dp, pkt, key, op, depth);
            break;
        case VDP_OP_METER: {
            vdp_meter *m = op->ptr ? op->ptr : vdp_dp_meter(dp, op->arg);
            uint8_t prec = 0;
            if (!m)
                break;
            rc = vdp_meter_apply(m, dp->now_ns, pkt->len, &prec);
            if (rc == VDP_METER_DROP)
                return 1;
            if (rc == VDP_METER_REMARK) {
                rc = vdp_remark_dscp(pkt, prec, dp->scratch[depth], VDP_SCRATCH_SIZE);
                if (rc == VDP_ACT_NOROOM)
                    return 1;
                if (rc == VDP_ACT_OK)
                    stale = 1;
            }
            break;
        }
        case VDP_OP_SET_QUEUE:
            break;                  /* recorded only: no queues */
        default:
            rc = vdp_apply_rewrite(pkt, op, dp->scratch[depth], VDP_SCRATCH_SIZE);
            if (rc == VDP_ACT_OK) {
                stale = 1;
            } else if (rc == VDP_ACT_INVALID_TTL) {
                invalid_ttl(dp, pkt, cur, cur_table);
                return 1;
            } else if (rc == VDP_ACT_NOROOM) {
                return 1;
            }
            break;                  /* VDP_ACT_SKIP: op ignored (OVS practice) */
        }
    }
    return 0;
}

/* ============================================================ translation */

/* The action set (OF1.3 5.10): one slot per action type, executed in this
 * order whatever order write-actions gave them in. */
enum {
    AS_COPY_TTL_IN, AS_POP_VLAN, AS_POP_PBB, AS_POP_MPLS, AS_PUSH_MPLS,
    AS_PUSH_PBB, AS_PUSH_VLAN, AS_COPY_TTL_OUT, AS_DEC_MPLS_TTL, AS_DEC_NW_TTL,
    AS_SET_MPLS_TTL, AS_SET_NW_TTL,
    AS_SET_FIELD,                               /* + field id */
    AS_SET_QUEUE = AS_SET_FIELD + VDP_F_COUNT,
    AS_GROUP, AS_OUTPUT, AS_N
};

typedef struct action_set {
    uint64_t present;                           /* bit per slot (AS_N <= 64) */
    vdp_op   op[AS_N];
} action_set;

_Static_assert(AS_N <= 64, "action set slots fit a u64");

static int as_slot(const vdp_op *op)
{
    switch (op->type) {
    case VDP_OP_COPY_TTL_IN:  return AS_COPY_TTL_IN;
    case VDP_OP_POP_VLAN:     return AS_POP_VLAN;
    case VDP_OP_POP_PBB:      return AS_POP_PBB;
    case VDP_OP_POP_MPLS:     return AS_POP_MPLS;
    case VDP_OP_PUSH_MPLS:    return AS_PUSH_MPLS;
    case VDP_OP_PUSH_PBB:     return AS_PUSH_PBB;
    case VDP_OP_PUSH_VLAN:    return AS_PUSH_VLAN;
    case VDP_OP_COPY_TTL_OUT: return AS_COPY_TTL_OUT;
    case VDP_OP_DEC_MPLS_TTL: return AS_DEC_MPLS_TTL;
    case VDP_OP_DEC_NW_TTL:   return AS_DEC_NW_TTL;
    case VDP_OP_SET_MPLS_TTL: return AS_SET_MPLS_TTL;
    case VDP_OP_SET_NW_TTL:   return AS_SET_NW_TTL;
    case VDP_OP_SET_FIELD:    return op->field < VDP_F_COUNT ? AS_SET_FIELD + op->field : -1;
    case VDP_OP_SET_QUEUE:    return AS_SET_QUEUE;
    case VDP_OP_GROUP:        return AS_GROUP;
    case VDP_OP_OUTPUT:       return AS_OUTPUT;
    default:                  return -1;
    }
}

static void as_write(action_set *as, const vdp_prog *p)
{
    uint32_t i;
    for (i = 0; p && i < p->n; i++) {
        int s = as_slot(&p->ops[i]);
        if (s < 0)
            continue;
        as->op[s] = p->ops[i];
        as->present |= 1ULL << s;
    }
}

static vdp_op *emit(vdp_builder *b)
{
    vdp_op *op;
    if (builder_reserve(b, 1) < 0)
        return NULL;
    op = &b->ops[b->n++];
    memset(op, 0, sizeof *op);
    return op;
}

/* Emit one action of flow f (table t) as the composed program will run it.
 * output:CONTROLLER becomes a CONTROLLER op carrying the packet-in reason,
 * table, cookie (via the flow) and the metadata at this point; groups and
 * meters get their pointers resolved for this generation. */
static void emit_action(vdp_dp *dp, vdp_builder *b, const vdp_op *src,
                        const vdp_flow *f, const vdp_key *key)
{
    vdp_op *op;
    if (src->type == VDP_OP_OUTPUT && src->arg == VDP_OFPP_CONTROLLER) {
        if (!(op = emit(b)))
            return;
        op->type = VDP_OP_CONTROLLER;
        op->arg = (f && (f->flags & VDP_FF_TABLE_MISS)) ? VDP_OFPR_NO_MATCH : VDP_OFPR_ACTION;
        op->arg16 = src->arg16;
        op->aux = f ? f->table_id : 0;
        op->val.u64 = key->metadata;
        op->ptr = (void *)f;
        return;
    }
    if (!(op = emit(b)))
        return;
    *op = *src;
    if (op->type == VDP_OP_GROUP)
        op->ptr = vdp_dp_group(dp, op->arg);
}

/* Would later lookups after this rewrite depend on frame bytes that the key
 * does not hold?  Then the composed program cannot be cached. */
static int rewrite_needs_bytes(const vdp_op *op, const vdp_pkt *pkt)
{
    switch (op->type) {
    case VDP_OP_POP_MPLS:
    case VDP_OP_POP_PBB:
        return 1;                   /* reveals headers the key never saw */
    case VDP_OP_POP_VLAN:
        return pkt->n_vlan >= 2;    /* the inner tag is not in the key */
    case VDP_OP_SET_FIELD:
        return op->field == VDP_F_ETH_TYPE || op->field == VDP_F_IP_PROTO ||
               op->field == VDP_F_MPLS_BOS; /* reinterprets the payload */
    default:
        return 0;
    }
}

vdp_prog *vdp_dp_translate(vdp_dp *dp, const vdp_pkt *pkt, const vdp_key *key_in, int *nocache)
{
    vdp_builder *b = &dp->b;
    vdp_key key = *key_in;
    vdp_pkt tp;                     /* scratch copy the apply-actions run on */
    action_set as;
    const vdp_flow *last = NULL;
    uint32_t table = 0;
    uint32_t i;
    vdp_op *op;
    vdp_prog *out;

    b->n = 0;
    b->flags = 0;
    b->overflow = 0;
    as.present = 0;
    tp = *pkt;
    tp.rewritten = 0;               /* first rewrite copies into xlate_buf */

    if (dp->fail_standalone == VDP_FAIL_OPEN) {
        /* fail-open: like OVS's hidden top-priority flow, NORMAL before any
         * table is looked at (see pipeline.h) */
        if ((op = emit(b))) {
            op->type = VDP_OP_OUTPUT;
            op->arg = VDP_OFPP_NORMAL;
        }
        goto done;
    }

    for (;;) {
        vdp_table *t = &dp->tables[table];
        vdp_flow *f = (vdp_flow *)vdp_cls_lookup(t->cls, &key);
        if (!f) {
            /* table miss without a table-miss flow: drop (action set
             * discarded); standalone fail mode makes table 0 a switch */
            if ((op = emit(b))) {
                op->type = VDP_OP_COUNT_MISS;
                op->aux = (uint8_t)table;
            }
            if (table == 0 && dp->fail_standalone == VDP_FAIL_MISS_NORMAL && (op = emit(b))) {
                op->type = VDP_OP_OUTPUT;
                op->arg = VDP_OFPP_NORMAL;
            }
            if ((op = emit(b)))
                op->type = VDP_OP_DROP;
            as.present = 0;
            goto done;
        }
        last = f;
        if ((op = emit(b))) {
            op->type = VDP_OP_COUNT_FLOW;
            op->aux = (uint8_t)table;
            op->ptr = f;
        }
        if ((f->insn & VDP_INSN_METER) && (op = emit(b))) {
            op->type = VDP_OP_METER;
            op->arg = f->meter_id;
            op->ptr = vdp_dp_meter(dp, f->meter_id);
        }
        if (f->apply) {
            int rewrote = 0;
            for (i = 0; i < f->apply->n; i++) {
                const vdp_op *a = &f->apply->ops[i];
                emit_action(dp, b, a, f, &key);
                if (!vdp_op_is_rewrite(a->type))
                    continue;
                if (a->type == VDP_OP_SET_FIELD && a->field == VDP_F_TUNNEL_ID) {
                    key.tunnel_id = a->val.u64;     /* key-only field: no bytes */
                    continue;
                }
                /* later tables match the rewritten headers: rewrite the
                 * scratch copy too (unless nothing follows) */
                if (!(f->insn & VDP_INSN_GOTO))
                    continue;
                if (rewrite_needs_bytes(a, &tp))
                    b->flags |= VDP_PROG_NOCACHE;
                if (vdp_apply_rewrite(&tp, a, dp->xlate_buf, VDP_SCRATCH_SIZE) == VDP_ACT_OK)
                    rewrote = 1;
            }
            if (rewrote)
                vdp_reparse(&tp, &key);     /* keeps metadata, tunnel_id, in_port */
        }
        if (f->insn & VDP_INSN_CLEAR)
            as.present = 0;
        if (f->insn & VDP_INSN_WRITE)
            as_write(&as, f->write);
        if (f->insn & VDP_INSN_WRITE_MD)
            key.metadata = (key.metadata & ~f->md_mask) | (f->md_value & f->md_mask);
        if (!(f->insn & VDP_INSN_GOTO) || f->goto_table <= table ||
            f->goto_table >= dp->n_tables)
            break;
        table = f->goto_table;
    }

    /* End of the pipeline: the action set, in the spec's order; an output
     * is ignored when a group is present. */
    if (as.present & (1ULL << AS_GROUP))
        as.present &= ~(1ULL << AS_OUTPUT);
    for (i = 0; i < AS_N; i++)
        if (as.present & (1ULL << i))
            emit_action(dp, b, &as.op[i], last, &key);

done:
    if (b->overflow) {
        /* absurdly long program: drop rather than run half of it */
        dp->stats.prog_too_long++;
        b->n = 0;
        b->overflow = 0;
        if ((op = emit(b)))
            op->type = VDP_OP_DROP;
    }
    if (b->flags & VDP_PROG_NOCACHE) {
        *nocache = 1;
        return NULL;
    }
    *nocache = 0;
    out = malloc(sizeof(vdp_prog) + b->n * sizeof(vdp_op));
    if (!out) {
        *nocache = 1;               /* run it from the builder, uncached */
        return NULL;
    }
    out->n = b->n;
    out->flags = b->flags;
    memcpy(out->ops, b->ops, b->n * sizeof(vdp_op));
    return out;
}

/* ============================================================ per packet */

/* Parse, cache lookup, translate on a miss, exec.  pkt->in_port set; no
 * port accounting here.  Returns -1 for a malformed frame. */
int vdp_dp_run(vdp_dp *dp, vdp_pkt *pkt, int depth)
{
    vdp_key key;
    vdp_prog *prog;
    uint32_t hash;
    int nocache;

    if (vdp_parse(pkt, &key) < 0)
        return -1;
    hash = vdp_key_hash(&key, 0);
    prog = vdp_emc_lookup(dp->emc, &key, hash, dp->generation);
    if (prog) {
        dp->stats.hits++;
    } else {
        dp->stats.misses++;
        prog = vdp_dp_translate(dp, pkt, &key, &nocache);
        if (nocache) {
            dp->stats.nocache++;
            prog = builder_prog(&dp->b);
        } else {
            vdp_emc_insert(dp->emc, &key, hash, dp->generation, prog);
        }
    }
    vdp_exec(dp, pkt, &key, prog, depth);
    return 0;
}

void vdp_dp_process_one(vdp_dp *dp, vdp_pkt *pkt, uint64_t now_ns)
{
    vdp_port *in = vdp_dp_port(dp, pkt->in_port);

    dp->now_ns = now_ns;
    dp->stats.rx++;
    if (in) {
        in->stats.rx_packets++;
        in->stats.rx_bytes += pkt->len;
        if (in->config & (VDP_OFPPC_NO_RECV | VDP_OFPPC_PORT_DOWN)) {
            in->stats.rx_dropped++;
            dp->stats.rx_dropped++;
            return;
        }
    }
    dp->pkt_tx = dp->pkt_uc = 0;
    dp->run_flow = NULL;
    if (vdp_dp_run(dp, pkt, 0) < 0) {
        if (in)
            in->stats.rx_malformed++;
        dp->stats.malformed++;
        return;
    }
    if (dp->pkt_tx)
        dp->stats.forwarded++;
    else if (dp->pkt_uc)
        dp->stats.upcalled++;
    else
        dp->stats.dropped++;
}

void vdp_dp_process_burst(vdp_dp *dp, vdp_pkt *pkts, int n, uint64_t now_ns)
{
    int i;
    for (i = 0; i < n; i++)
        vdp_dp_process_one(dp, &pkts[i], now_ns);
    vdp_dp_upcall_signal(dp);
}

int vdp_dp_poll_ports(vdp_dp *dp, vdp_port **ports, int n_ports, vdp_pkt *pkts, uint64_t now_ns)
{
    int i, j, k, total = 0;
    for (i = 0; i < n_ports; i++) {
        vdp_port *p = ports[i];
        k = p->ops->rx_burst(p, pkts, VDP_BURST);
        if (k > 0) {
            for (j = 0; j < k; j++)
                pkts[j].in_port = p->ofport;
            vdp_dp_process_burst(dp, pkts, k, now_ns);
            total += k;
        }
        if (p->ops->rx_release)
            p->ops->rx_release(p);
    }
    for (i = 0; i < (int)dp->n_port_list; i++) {
        vdp_port *p = dp->ports[dp->port_list[i]].port;
        if (p->ops->tx_flush)
            p->ops->tx_flush(p);
    }
    if (dp->local && dp->local->ops->tx_flush)
        dp->local->ops->tx_flush(dp->local);
    return total;
}

int vdp_dp_packet_out(vdp_dp *dp, const uint8_t *data, uint32_t len,
                      uint32_t in_port, const vdp_prog *prog, uint64_t now_ns)
{
    vdp_pkt pkt;
    vdp_key key;
    if (len > VDP_MAX_FRAME)
        return -1;
    memset(&pkt, 0, sizeof pkt);
    pkt.data = (uint8_t *)data;
    pkt.len = len;
    pkt.in_port = in_port;
    dp->now_ns = now_ns;
    dp->run_flow = NULL;
    vdp_parse(&pkt, &key);          /* a malformed frame is still sent as asked */
    vdp_exec(dp, &pkt, &key, prog, 0);
    vdp_dp_upcall_signal(dp);
    /* Kick the TX rings now: an idle engine flushes only when its poll()
     * times out (VDP_ENGINE_SLEEP_MS), which would hold a controller's
     * frame (a BPDU, an ARP reply) for up to that long.  A port with
     * nothing queued returns without a system call. */
    uint32_t max = vdp_dp_max_port(dp);
    if (max >= VDP_MAX_PORTS)
        max = VDP_MAX_PORTS - 1;
    for (uint32_t i = 1; i <= max + 1; i++) {
        vdp_port *p = vdp_dp_port(dp, i <= max ? i : VDP_OFPP_LOCAL);
        if (p && p->ops->tx_flush)
            p->ops->tx_flush(p);
    }
    return 0;
}
