/* port_dummy.c - DummyPort: an in-memory port provider (vdp_port_ops).
 *
 * Used by every unit test and by the engine-only benchmarks: frames are
 * queued with vdp_dummy_inject() (Python: DummyPort.inject) and handed to the
 * pipeline by rx_burst; transmitted frames are copied into a tx queue that
 * DummyPort.take_tx() drains.  A "sink" dummy only counts what it transmits
 * (fuzz runs push millions of frames) and "replay" mode hands out one frame
 * N times without any allocation (cache-hit benchmarks).
 *
 * The port keeps no statistics itself: pipeline.c counts rx/tx on vdp_port
 * stats for every provider.  Declared for Cython in ext/dummy.pxi. */
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <arpa/inet.h>
#include "pipeline.h"

typedef struct dummy_frame {
    struct dummy_frame *next;
    uint32_t len;
    uint8_t  csum_partial;
    uint16_t csum_start, csum_offset;
    uint8_t  data[];
} dummy_frame;

typedef struct dummy_q {
    dummy_frame *head, *tail;
    uint64_t count;
} dummy_q;

typedef struct vdp_dummy {
    vdp_port  port;          /* first: vdp_port* <-> vdp_dummy* */
    pthread_mutex_t mu;      /* queues: the engine thread and Python both touch them */
    dummy_q   rxq;
    dummy_q   handed;        /* given out by the last rx_burst, freed on release */
    dummy_q   txq;
    uint64_t  tx_limit;      /* frames kept in txq before tx refuses */
    uint64_t  tx_count;      /* frames accepted by tx (sink or kept) */
    int       sink;
    uint8_t  *replay;        /* replay mode: one frame handed out replay_left times */
    uint32_t  replay_len;
    uint64_t  replay_left;
} vdp_dummy;

static void q_push(dummy_q *q, dummy_frame *f)
{
    f->next = NULL;
    if (q->tail) q->tail->next = f; else q->head = f;
    q->tail = f;
    q->count++;
}

static dummy_frame *q_pop(dummy_q *q)
{
    dummy_frame *f = q->head;
    if (!f)
        return NULL;
    q->head = f->next;
    if (!q->head)
        q->tail = NULL;
    q->count--;
    return f;
}

static void q_clear(dummy_q *q)
{
    dummy_frame *f;
    while ((f = q_pop(q)))
        free(f);
}

static int dummy_rx_burst(vdp_port *p, vdp_pkt *pkts, int max)
{
    vdp_dummy *d = (vdp_dummy *)p;
    int n = 0;
    pthread_mutex_lock(&d->mu);
    while (n < max && d->replay_left) {
        vdp_pkt *pk = &pkts[n++];
        memset(pk, 0, sizeof *pk);
        pk->data = d->replay;
        pk->len = d->replay_len;
        d->replay_left--;
    }
    while (n < max) {
        dummy_frame *f = q_pop(&d->rxq);
        vdp_pkt *pk;
        if (!f)
            break;
        q_push(&d->handed, f);
        pk = &pkts[n++];
        memset(pk, 0, sizeof *pk);
        pk->data = f->data;
        pk->len = f->len;
        pk->csum_partial = f->csum_partial;
        pk->csum_start = f->csum_start;
        pk->csum_offset = f->csum_offset;
    }
    pthread_mutex_unlock(&d->mu);
    return n;
}

static void dummy_rx_release(vdp_port *p)
{
    vdp_dummy *d = (vdp_dummy *)p;
    pthread_mutex_lock(&d->mu);
    q_clear(&d->handed);
    pthread_mutex_unlock(&d->mu);
}

static int dummy_tx(vdp_port *p, const vdp_pkt *pkt)
{
    vdp_dummy *d = (vdp_dummy *)p;
    dummy_frame *f;
    if (d->sink) {
        d->tx_count++;
        return 0;
    }
    if (d->txq.count >= d->tx_limit)
        return -1;
    f = malloc(sizeof *f + pkt->len);
    if (!f)
        return -1;
    pthread_mutex_lock(&d->mu);
    f->len = pkt->len;
    f->csum_partial = pkt->csum_partial;
    f->csum_start = pkt->csum_start;
    f->csum_offset = pkt->csum_offset;
    memcpy(f->data, pkt->data, pkt->len);
    q_push(&d->txq, f);
    d->tx_count++;
    pthread_mutex_unlock(&d->mu);
    return 0;
}

static void dummy_tx_flush(vdp_port *p) { (void)p; }

static void dummy_close(vdp_port *p)
{
    vdp_dummy *d = (vdp_dummy *)p;
    pthread_mutex_lock(&d->mu);
    q_clear(&d->rxq);
    q_clear(&d->handed);
    q_clear(&d->txq);
    free(d->replay);
    d->replay = NULL;
    d->replay_left = 0;
    pthread_mutex_unlock(&d->mu);
}

const vdp_port_ops vdp_dummy_ops = {
    .rx_burst = dummy_rx_burst,
    .rx_release = dummy_rx_release,
    .tx = dummy_tx,
    .tx_flush = dummy_tx_flush,
    .close = dummy_close,
};

vdp_port *vdp_dummy_new(void)
{
    vdp_dummy *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    pthread_mutex_init(&d->mu, NULL);
    d->port.fd = -1;
    d->port.mtu = 1500;
    d->port.link_up = 1;
    d->port.ops = &vdp_dummy_ops;
    d->port.impl = d;
    d->tx_limit = 1u << 20;
    return &d->port;
}

void vdp_dummy_free(vdp_port *p)
{
    if (!p)
        return;
    dummy_close(p);
    pthread_mutex_destroy(&((vdp_dummy *)p)->mu);
    free(p);
}

void vdp_dummy_close(vdp_port *p) { dummy_close(p); }

int vdp_dummy_is(const vdp_port *p) { return p && p->ops == &vdp_dummy_ops; }

/* Where the L4 checksum of an IPv4/IPv6 TCP/UDP frame sits, and its
 * pseudo-header sum: what a kernel hands over for CHECKSUM_PARTIAL. */
static uint32_t sum16(const uint8_t *b, uint32_t n, uint32_t s)
{
    uint32_t i;
    for (i = 0; i + 1 < n; i += 2)
        s += ((uint32_t)b[i] << 8) | b[i + 1];
    if (n & 1)
        s += (uint32_t)b[n - 1] << 8;
    return s;
}

static int make_partial(dummy_frame *f)
{
    uint8_t *d = f->data;
    uint32_t len = f->len, off = 12, l3, l4, l4len, s = 0;
    uint16_t type;
    uint8_t proto;
    if (len < 14)
        return -1;
    type = (uint16_t)(d[off] << 8 | d[off + 1]);
    while ((type == 0x8100 || type == 0x88a8) && off + 6 <= len) {
        off += 4;
        type = (uint16_t)(d[off] << 8 | d[off + 1]);
    }
    l3 = off + 2;
    if (type == 0x0800) {
        uint32_t ihl, tot;
        if (l3 + 20 > len)
            return -1;
        ihl = (d[l3] & 15u) * 4;
        tot = (uint32_t)(d[l3 + 2] << 8 | d[l3 + 3]);
        proto = d[l3 + 9];
        l4 = l3 + ihl;
        if (tot < ihl || l3 + tot > len)
            return -1;
        l4len = tot - ihl;
        s = sum16(d + l3 + 12, 8, 0);
    } else if (type == 0x86dd) {
        if (l3 + 40 > len)
            return -1;
        proto = d[l3 + 6];
        l4 = l3 + 40;
        l4len = (uint32_t)(d[l3 + 4] << 8 | d[l3 + 5]);
        if (l4 + l4len > len)
            return -1;
        s = sum16(d + l3 + 8, 32, 0);
    } else {
        return -1;
    }
    if (proto == 6)
        f->csum_offset = 16;
    else if (proto == 17)
        f->csum_offset = 6;
    else
        return -1;
    if (l4 + f->csum_offset + 2 > len)
        return -1;
    s += proto + l4len;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    f->csum_start = (uint16_t)l4;
    d[l4 + f->csum_offset] = (uint8_t)(s >> 8);
    d[l4 + f->csum_offset + 1] = (uint8_t)s;
    f->csum_partial = 1;
    return 0;
}

/* Queue a frame for rx.  csum_partial: turn the frame's (complete) TCP/UDP
 * checksum into the pseudo-header sum with csum_start/offset set, as veth
 * and TAP deliver offloaded frames.  Returns 0, -1 (no memory, or
 * csum_partial asked of a frame that is not TCP/UDP over IP). */
int vdp_dummy_inject(vdp_port *p, const uint8_t *data, uint32_t len, int csum_partial)
{
    vdp_dummy *d = (vdp_dummy *)p;
    dummy_frame *f = malloc(sizeof *f + len);
    if (!f)
        return -1;
    f->len = len;
    f->csum_partial = 0;
    f->csum_start = f->csum_offset = 0;
    memcpy(f->data, data, len);
    if (csum_partial && make_partial(f) < 0) {
        free(f);
        return -1;
    }
    pthread_mutex_lock(&d->mu);
    q_push(&d->rxq, f);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

uint64_t vdp_dummy_rx_pending(vdp_port *p)
{
    vdp_dummy *d = (vdp_dummy *)p;
    uint64_t n;
    pthread_mutex_lock(&d->mu);
    n = d->rxq.count + d->replay_left;
    pthread_mutex_unlock(&d->mu);
    return n;
}

/* Pop one transmitted frame: returns a handle (free it with
 * vdp_dummy_frame_free) and fills data/len/csum_partial, or NULL when none. */
void *vdp_dummy_tx_pop(vdp_port *p, const uint8_t **data, uint32_t *len, int *csum_partial)
{
    vdp_dummy *d = (vdp_dummy *)p;
    dummy_frame *f;
    pthread_mutex_lock(&d->mu);
    f = q_pop(&d->txq);
    pthread_mutex_unlock(&d->mu);
    if (!f)
        return NULL;
    *data = f->data;
    *len = f->len;
    *csum_partial = f->csum_partial;
    return f;
}

void vdp_dummy_frame_free(void *frame) { free(frame); }

void vdp_dummy_set_sink(vdp_port *p, int sink) { ((vdp_dummy *)p)->sink = sink; }
void vdp_dummy_set_tx_limit(vdp_port *p, uint64_t n) { ((vdp_dummy *)p)->tx_limit = n; }
uint64_t vdp_dummy_tx_count(vdp_port *p) { return ((vdp_dummy *)p)->tx_count; }

int vdp_dummy_set_replay(vdp_port *p, const uint8_t *data, uint32_t len, uint64_t count)
{
    vdp_dummy *d = (vdp_dummy *)p;
    uint8_t *b = malloc(len ? len : 1);
    if (!b)
        return -1;
    memcpy(b, data, len);
    pthread_mutex_lock(&d->mu);
    free(d->replay);
    d->replay = b;
    d->replay_len = len;
    d->replay_left = count;
    pthread_mutex_unlock(&d->mu);
    return 0;
}
