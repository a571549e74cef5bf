/* port_bond.c - the bond port provider (see port_bond.h for the model).
 *
 * Created by ext/bond.pxi (BondPort); run by engine.c and pipeline.c
 * through the ops vtable with dp->lock held.  The control plane changes
 * modes, flags and buckets with single atomic stores and talks to the fast
 * path through two single-producer/single-consumer rings; nothing here
 * allocates after vdp_bond_new.
 *
 * The member choice hashes the frame as it leaves (vdp_pkt offsets set by
 * the parser and kept right by every rewrite), so it reflects set-field and
 * push/pop actions and costs a few loads and multiplies: no re-parse.  The
 * hashing core (mix: a 64x64->128 multiply folded to 64 bits) is our own;
 * like the select-group hash (group.c) it orders each address/port pair
 * (min, max) so both directions of a conversation pick the same member. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "port_bond.h"
#include "port_afpacket.h"       /* vdp_ifport: the bond has a name too */

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

#define LD(x)     __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define ST(x, v)  __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* A member whose fd reports an error with nothing to read leaves the epoll
 * set for this long (else the bond's fd would stay readable forever, e.g. a
 * TAP whose device is gone), as engine.c does for plain ports. */
#define BOND_MUTE_NS   100000000ull
/* Empty rx_bursts in a row before the bond looks for such members. */
#define BOND_IDLE_SCAN 64

typedef struct bond_slot {
    uint32_t member;
    uint32_t len;
    uint8_t  data[VDP_BOND_FRAME_MAX];
} bond_slot;

typedef struct bond_member {
    vdp_port *port;
    uint8_t   collecting;            /* atomic: set by the control plane */
    uint8_t   distributing;          /* atomic */
    vdp_bond_member_counters c;
    vdp_port_stats folded;           /* member error counters already in the bond's */
} bond_member;

typedef struct bond_ctr { uint64_t packets, bytes; } bond_ctr;

typedef struct vdp_bond {
    vdp_ifport head;                 /* first: vdp_port + name */
    int       n;
    int       mode;                  /* atomic: VDP_BOND_* */
    /* engine side */
    uint32_t  rr;                    /* member the next rx_burst starts with */
    uint32_t  touched;               /* members read since the last rx_release */
    uint32_t  idle;                  /* empty rx_bursts in a row */
    uint32_t  erred;                 /* members seen with an fd error last scan */
    uint32_t  muted;                 /* members taken out of the epoll set */
    uint64_t  mute_until[VDP_BOND_MAX_MEMBERS];
    int       slow_efd;
    uint8_t   bucket[VDP_BOND_BUCKETS];      /* atomic bytes: member or NONE */
    bond_member m[VDP_BOND_MAX_MEMBERS];
    vdp_bond_counters c;
    bond_ctr  bst[VDP_BOND_BUCKETS];         /* tx per bucket (engine) */
    bond_ctr  bbase[VDP_BOND_BUCKETS];       /* reset baseline (control) */
    /* rings: head written by the producer, tail by the consumer */
    uint32_t  slow_head, slow_tail;          /* engine -> control */
    uint32_t  ctl_head, ctl_tail;            /* control -> engine */
    bond_slot slow[VDP_BOND_SLOW_SLOTS];
    bond_slot ctl[VDP_BOND_CTL_SLOTS];
} vdp_bond;

static const vdp_port_ops bond_ops;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------- hash */
static inline uint64_t mix(uint64_t h, uint64_t v)
{
    __uint128_t m = (__uint128_t)(h ^ v) * 0x9fb21c651e98df25ull;
    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

static inline uint32_t fin(uint64_t h)
{
    h = mix(h, 0xd6e8feb86659fd93ull);
    return (uint32_t)(h ^ (h >> 32));
}

static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t rd48(const uint8_t *p) { return (uint64_t)rd16(p) << 32 | rd32(p + 2); }
static inline uint64_t be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

#define SEED_L2  0x243f6a8885a308d3ull
#define SEED_SLB 0x13198a2e03707344ull
#define SEED_V4  0xa4093822299f31d0ull
#define SEED_V6  0x082efa98ec4e6c89ull

/* Outer VLAN id (with bit 12 set, so VID 0 differs from untagged), 0 when
 * untagged.  The outermost tag always sits right after the MACs. */
static inline uint64_t outer_vid(const uint8_t *d, uint32_t len)
{
    if (len < 16)
        return 0;
    uint16_t t = rd16(d + 12);
    if (t == 0x8100 || t == 0x88a8 || t == 0x9100)
        return 0x1000u | (rd16(d + 14) & 0x0fffu);
    return 0;
}

/* Mix in ip proto and the TCP/UDP/SCTP port pair when the frame has them. */
static inline uint64_t mix_ports(const vdp_pkt *pkt, uint32_t l3, uint8_t proto, uint64_t h)
{
    uint32_t l4 = pkt->l4_off;
    if (proto != 6 && proto != 17 && proto != 132)
        return h;
    if (l4 == VDP_NOOFF || l4 <= l3 || l4 + 4 > pkt->len)
        return h;
    uint16_t x = rd16(pkt->data + l4), y = rd16(pkt->data + l4 + 2);
    uint32_t pp = x < y ? (uint32_t)x << 16 | y : (uint32_t)y << 16 | x;
    return mix(h, (uint64_t)proto << 32 | pp);
}

/* Transport protocol of an IPv6 frame whose L4 header the parser found at
 * l4_off: the next-header value that leads there.  -1 when there is none,
 * when the chain does not lead exactly to l4_off, and for any fragment
 * (a frame with a fragment header that has an offset or more-fragments):
 * all fragments of a datagram then hash alike (L3). */
static int v6_proto(const vdp_pkt *pkt, uint32_t l3)
{
    const uint8_t *d = pkt->data;
    uint32_t len = pkt->len, l4 = pkt->l4_off, o = l3 + 40;
    uint8_t nxt = d[l3 + 6];
    if (l4 == VDP_NOOFF || l4 < o || l4 > len)
        return -1;
    for (int steps = 0; steps < 32; steps++) {
        if (o == l4) {
            switch (nxt) {
            case 0: case 43: case 44: case 51: case 60:
                return -1;           /* an extension header where L4 should be */
            default:
                return nxt;
            }
        }
        if (o + 8 > l4)
            return -1;
        switch (nxt) {
        case 44:                     /* fragment */
            if (rd16(d + o + 2) & 0xfff9)
                return -1;
            nxt = d[o];
            o += 8;
            break;
        case 51:                     /* authentication header */
            nxt = d[o];
            o += ((uint32_t)d[o + 1] + 2) * 4;
            break;
        case 0: case 43: case 60:    /* hop-by-hop, routing, destination */
            nxt = d[o];
            o += ((uint32_t)d[o + 1] + 1) * 8;
            break;
        default:
            return -1;
        }
    }
    return -1;
}

/* L3 (l4 = 0) or L4 hash of an IPv4/IPv6 frame into *out; 0 when the frame
 * is not IP (or its IP header is not all there). */
static int ip_hash(const vdp_pkt *pkt, int l4, uint64_t *out)
{
    const uint8_t *d = pkt->data;
    uint32_t len = pkt->len, et = pkt->ethtype_off, l3 = pkt->l3_off;
    if (et == VDP_NOOFF || l3 == VDP_NOOFF || et + 2 > len || l3 < et + 2)
        return 0;
    uint16_t type = rd16(d + et);
    if (type == 0x0800) {
        if (l3 + 20 > len || (d[l3] >> 4) != 4)
            return 0;
        const uint8_t *ip = d + l3;
        uint32_t s = rd32(ip + 12), t = rd32(ip + 16);
        uint64_t h = mix(SEED_V4, s < t ? (uint64_t)s << 32 | t : (uint64_t)t << 32 | s);
        if (l4 && !(rd16(ip + 6) & 0x3fff))         /* MF or offset: a fragment */
            h = mix_ports(pkt, l3, ip[9], h);
        *out = h;
        return 1;
    }
    if (type == 0x86dd) {
        if (l3 + 40 > len || (d[l3] >> 4) != 6)
            return 0;
        const uint8_t *ip = d + l3;
        /* order the addresses as 128-bit numbers: two 64-bit compares */
        uint64_t s0 = be64(ip + 8), s1 = be64(ip + 16);
        uint64_t t0 = be64(ip + 24), t1 = be64(ip + 32);
        int s_first = s0 < t0 || (s0 == t0 && s1 <= t1);
        uint64_t h = mix(SEED_V6, s_first ? s0 : t0);
        h = mix(h, s_first ? s1 : t1);
        h = mix(h, s_first ? t0 : s0);
        h = mix(h, s_first ? t1 : s1);
        if (l4) {
            int proto = v6_proto(pkt, l3);
            if (proto >= 0)
                h = mix_ports(pkt, l3, (uint8_t)proto, h);
        }
        *out = h;
        return 1;
    }
    return 0;
}

uint32_t vdp_bond_hash(const vdp_pkt *pkt, int mode)
{
    const uint8_t *d = pkt->data;
    uint32_t len = pkt->len;
    uint64_t h;
    if (unlikely(len < 12 || !d))
        return 0;
    if (mode == VDP_BOND_SLB)
        return fin(mix(SEED_SLB, rd48(d + 6) | outer_vid(d, len) << 48));
    if (mode != VDP_BOND_L2 && ip_hash(pkt, mode == VDP_BOND_L4, &h))
        return fin(h);
    uint64_t vid = outer_vid(d, len);
    uint64_t a = rd48(d), b = rd48(d + 6);
    h = mix(SEED_L2, a < b ? a : b);
    h = mix(h, (a < b ? b : a) | vid << 48);
    return fin(h);
}

/* ---------------------------------------------------------------- choice */
/* A distributing member for a frame whose bucket names none (unset, or a
 * member that just stopped distributing): spread by the hash over the
 * distributing members.  -1 when there are none.  Rare path. */
static int fallback(const vdp_bond *b, uint32_t h)
{
    int ok[VDP_BOND_MAX_MEMBERS], k = 0;
    for (int i = 0; i < b->n; i++)
        if (LD(b->m[i].distributing))
            ok[k++] = i;
    return k ? ok[(h >> 8) % (uint32_t)k] : -1;
}

/* Member for hash h, and whether the bucket had to be overridden. */
static inline int choose(const vdp_bond *b, uint32_t h, int *fell_back)
{
    int i = LD(b->bucket[h & (VDP_BOND_BUCKETS - 1)]);
    *fell_back = 0;
    if (likely(i < b->n && LD(b->m[i].distributing)))
        return i;
    *fell_back = 1;
    return fallback(b, h);
}

int vdp_bond_select(const vdp_port *p, const vdp_pkt *pkt)
{
    const vdp_bond *b = (const vdp_bond *)p;
    int fb;
    return choose(b, vdp_bond_hash(pkt, LD(b->mode)), &fb);
}

/* ---------------------------------------------------------------- stats */
/* Add what the member's provider counted itself since the last fold (and
 * what the bond counted on the member for frames the pipeline never
 * handled) to the bond's own stats. */
static void fold(vdp_bond *b, int i)
{
    vdp_port_stats *s = &b->head.port.stats;
    vdp_port_stats *f = &b->m[i].folded;
    const vdp_port_stats *ms = &b->m[i].port->stats;
#define FOLD(x) if (ms->x != f->x) { s->x += ms->x - f->x; f->x = ms->x; }
    FOLD(rx_dropped)
    FOLD(rx_errors)
    FOLD(tx_dropped)
    FOLD(tx_errors)
#undef FOLD
}

/* ---------------------------------------------------------------- RX */
static inline int is_slow(const vdp_pkt *k)
{
    const uint8_t *d = k->data;
    if (d[0] != 0x01 || d[1] != 0x80 || d[2] != 0xc2 || d[3] || d[4] || d[5] != 0x02)
        return 0;
    uint16_t t = rd16(d + 12);
    if (t == 0x8809)
        return 1;
    /* Slow Protocols frames are never tagged; a tagged one still must not
     * reach the pipeline: the LACP machine counts it as an error. */
    return (t == 0x8100 || t == 0x88a8) && k->len >= 18 && rd16(d + 16) == 0x8809;
}

/* Copy a slow frame into the ring; 0, or -1 when it cannot be kept. */
static int slow_push(vdp_bond *b, int i, const vdp_pkt *k)
{
    uint32_t head = b->slow_head;
    uint32_t tail = __atomic_load_n(&b->slow_tail, __ATOMIC_ACQUIRE);
    if (head - tail >= VDP_BOND_SLOW_SLOTS || k->len > VDP_BOND_FRAME_MAX)
        return -1;
    bond_slot *s = &b->slow[head % VDP_BOND_SLOW_SLOTS];
    s->member = (uint32_t)i;
    s->len = k->len;
    memcpy(s->data, k->data, k->len);
    __atomic_store_n(&b->slow_head, head + 1, __ATOMIC_RELEASE);
    return 0;
}

/* Give muted members back to the epoll set once their time is up.  Called
 * from tx_flush, which the engine runs every pass (also after a poll()
 * timeout), so it happens even while the bond's fd stays quiet. */
static void unmute(vdp_bond *b)
{
    uint64_t now = mono_ns();
    for (int i = 0; i < b->n; i++) {
        if (!(b->muted & (1u << i)) || b->mute_until[i] > now)
            continue;
        struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
        if (epoll_ctl(b->head.port.fd, EPOLL_CTL_ADD, b->m[i].port->fd, &ev) == 0 ||
            errno == EEXIST)
            b->muted &= ~(1u << i);
        else
            b->mute_until[i] = now + BOND_MUTE_NS;   /* fd gone: try later */
    }
}

/* After a run of empty bursts: find members whose fd signals an error with
 * nothing to read.  The first time, clear the socket's pending error (an
 * AF_PACKET socket reports ENETDOWN once after a link flap); if the member
 * still signals one at the next scan (a TAP whose device is gone), take it
 * out of the epoll set for BOND_MUTE_NS. */
static void scan_errors(vdp_bond *b)
{
    int ep = b->head.port.fd;
    struct epoll_event evs[VDP_BOND_MAX_MEMBERS];
    uint32_t seen = 0;
    int r = epoll_wait(ep, evs, VDP_BOND_MAX_MEMBERS, 0);
    for (int k = 0; k < r; k++) {
        uint32_t i = evs[k].data.u32;
        if (i >= (uint32_t)b->n || !(evs[k].events & (EPOLLERR | EPOLLHUP)))
            continue;
        int fd = b->m[i].port->fd, e;
        socklen_t el = sizeof e;
        seen |= 1u << i;
        if (b->erred & (1u << i)) {
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            b->muted |= 1u << i;
            b->mute_until[i] = mono_ns() + BOND_MUTE_NS;
        } else {
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);   /* ENOTSOCK on a TAP */
        }
    }
    b->erred = seen & ~b->muted;
}

static int bond_rx_burst(vdp_port *p, vdp_pkt *pkts, int max)
{
    vdp_bond *b = (vdp_bond *)p;
    int n = 0, slow = 0, nm = b->n;
    int start = (int)b->rr;
    b->rr = start + 1 >= nm ? 0 : (uint32_t)start + 1;

    for (int k = 0; k < nm && n < max; k++) {
        int i = start + k < nm ? start + k : start + k - nm;
        bond_member *bm = &b->m[i];
        vdp_port *m = bm->port;
        int got = m->ops->rx_burst(m, pkts + n, max - n);
        b->touched |= 1u << i;
        if (got <= 0) {
            if (got < 0)
                m->stats.rx_errors++;
            continue;
        }
        int coll = LD(bm->collecting);
        int w = n;
        for (int j = n; j < n + got; j++) {
            vdp_pkt *pk = &pkts[j];
            m->stats.rx_packets++;
            m->stats.rx_bytes += pk->len;
            if (unlikely(pk->len >= 14 && pk->data[0] == 0x01 && is_slow(pk))) {
                /* never to the pipeline, which would count it: count it
                 * in the bond's stats here (sum of the members) */
                p->stats.rx_packets++;
                p->stats.rx_bytes += pk->len;
                if (slow_push(b, i, pk) == 0) {
                    slow++;
                    bm->c.slow_rx++;
                    b->c.slow_rx++;
                } else {
                    bm->c.slow_dropped++;
                    b->c.slow_dropped++;
                    m->stats.rx_dropped++;
                }
                continue;
            }
            if (unlikely(!coll)) {
                p->stats.rx_packets++;
                p->stats.rx_bytes += pk->len;
                bm->c.not_collecting_dropped++;
                b->c.not_collecting_dropped++;
                m->stats.rx_dropped++;
                continue;
            }
            if (w != j)
                pkts[w] = *pk;
            w++;
        }
        n = w;
    }

    if (slow) {
        uint64_t one = 1;
        if (write(b->slow_efd, &one, sizeof one) < 0) {
            /* counter saturated: still readable */
        }
    }
    if (p->fd >= 0) {
        b->idle = n || slow ? 0 : b->idle + 1;
        if (unlikely(b->idle >= BOND_IDLE_SCAN)) {
            scan_errors(b);
            b->idle = 0;
        }
    }
    return n;
}

static void bond_rx_release(vdp_port *p)
{
    vdp_bond *b = (vdp_bond *)p;
    uint32_t t = b->touched;
    b->touched = 0;
    for (int i = 0; t; i++, t >>= 1) {
        if (!(t & 1))
            continue;
        vdp_port *m = b->m[i].port;
        if (m->ops->rx_release)
            m->ops->rx_release(m);
        fold(b, i);
    }
}

/* ---------------------------------------------------------------- TX */
static int bond_tx(vdp_port *p, const vdp_pkt *pkt)
{
    vdp_bond *b = (vdp_bond *)p;
    uint32_t h = vdp_bond_hash(pkt, LD(b->mode));
    int fb;
    int i = choose(b, h, &fb);
    if (unlikely(i < 0)) {
        b->c.no_member_dropped++;
        return -1;
    }
    bond_member *bm = &b->m[i];
    if (unlikely(fb)) {
        b->c.fallback_tx++;
        bm->c.fallback_tx++;
    }
    vdp_port *m = bm->port;
    if (unlikely(m->ops->tx(m, pkt) != 0)) {
        m->stats.tx_dropped++;
        bm->folded.tx_dropped++;     /* the pipeline counts the bond's */
        return -1;
    }
    m->stats.tx_packets++;
    m->stats.tx_bytes += pkt->len;
    bond_ctr *bc = &b->bst[h & (VDP_BOND_BUCKETS - 1)];
    bc->packets++;
    bc->bytes += pkt->len;
    return 0;
}

/* Send the frames send_on_member queued (engine side of the ctl ring). */
static void ctl_drain(vdp_bond *b)
{
    uint32_t tail = b->ctl_tail;
    uint32_t head = __atomic_load_n(&b->ctl_head, __ATOMIC_ACQUIRE);
    vdp_port *p = &b->head.port;
    for (; tail != head; tail++) {
        bond_slot *s = &b->ctl[tail % VDP_BOND_CTL_SLOTS];
        bond_member *bm = &b->m[s->member];
        vdp_port *m = bm->port;
        vdp_pkt pkt;
        memset(&pkt, 0, sizeof pkt);
        pkt.data = s->data;
        pkt.len = s->len;
        pkt.vlan_off = pkt.pbb_off = pkt.mpls_off = VDP_NOOFF;
        pkt.l3_off = pkt.l4_off = pkt.nd_sll_off = pkt.nd_tll_off = VDP_NOOFF;
        pkt.ethtype_off = s->len >= 14 ? 12 : VDP_NOOFF;
        if (m->ops->tx(m, &pkt) == 0) {
            m->stats.tx_packets++;
            m->stats.tx_bytes += s->len;
            p->stats.tx_packets++;
            p->stats.tx_bytes += s->len;
            bm->c.ctl_tx++;
            b->c.ctl_tx++;
        } else {
            m->stats.tx_dropped++;   /* folded into the bond's below */
            bm->c.ctl_dropped++;
            b->c.ctl_dropped++;
        }
    }
    __atomic_store_n(&b->ctl_tail, tail, __ATOMIC_RELEASE);
}

static void bond_tx_flush(vdp_port *p)
{
    vdp_bond *b = (vdp_bond *)p;
    if (unlikely(b->ctl_tail != __atomic_load_n(&b->ctl_head, __ATOMIC_RELAXED)))
        ctl_drain(b);
    if (unlikely(b->muted))
        unmute(b);
    for (int i = 0; i < b->n; i++) {
        vdp_port *m = b->m[i].port;
        if (m->ops->tx_flush)
            m->ops->tx_flush(m);
        fold(b, i);
    }
}

/* ---------------------------------------------------------------- control */
int vdp_bond_send_on_member(vdp_port *p, int i, const uint8_t *data, uint32_t len)
{
    vdp_bond *b = (vdp_bond *)p;
    if (i < 0 || i >= b->n || len > VDP_BOND_FRAME_MAX)
        return -1;
    uint32_t head = b->ctl_head;
    uint32_t tail = __atomic_load_n(&b->ctl_tail, __ATOMIC_ACQUIRE);
    if (head - tail >= VDP_BOND_CTL_SLOTS)
        return -1;
    bond_slot *s = &b->ctl[head % VDP_BOND_CTL_SLOTS];
    s->member = (uint32_t)i;
    s->len = len;
    if (len)
        memcpy(s->data, data, len);
    __atomic_store_n(&b->ctl_head, head + 1, __ATOMIC_RELEASE);
    return 0;
}

int vdp_bond_slow_fd(const vdp_port *p) { return ((const vdp_bond *)p)->slow_efd; }

void vdp_bond_slow_begin(vdp_port *p)
{
    uint64_t v;
    if (read(((vdp_bond *)p)->slow_efd, &v, sizeof v) < 0) {
        /* EAGAIN: nothing signalled */
    }
}

int vdp_bond_slow_peek(vdp_port *p, int *member, const uint8_t **data, uint32_t *len)
{
    vdp_bond *b = (vdp_bond *)p;
    uint32_t tail = b->slow_tail;
    if (tail == __atomic_load_n(&b->slow_head, __ATOMIC_ACQUIRE))
        return -1;
    const bond_slot *s = &b->slow[tail % VDP_BOND_SLOW_SLOTS];
    *member = (int)s->member;
    *data = s->data;
    *len = s->len;
    return 0;
}

void vdp_bond_slow_pop(vdp_port *p)
{
    vdp_bond *b = (vdp_bond *)p;
    if (b->slow_tail != __atomic_load_n(&b->slow_head, __ATOMIC_ACQUIRE))
        __atomic_store_n(&b->slow_tail, b->slow_tail + 1, __ATOMIC_RELEASE);
}

void vdp_bond_slow_end(vdp_port *p)
{
    vdp_bond *b = (vdp_bond *)p;
    if (b->slow_tail != __atomic_load_n(&b->slow_head, __ATOMIC_ACQUIRE)) {
        uint64_t one = 1;
        if (write(b->slow_efd, &one, sizeof one) < 0) {
            /* saturated: still readable */
        }
    }
}

int vdp_bond_n_members(const vdp_port *p) { return ((const vdp_bond *)p)->n; }

vdp_port *vdp_bond_member(const vdp_port *p, int i)
{
    const vdp_bond *b = (const vdp_bond *)p;
    return i >= 0 && i < b->n ? b->m[i].port : NULL;
}

int vdp_bond_set_mode(vdp_port *p, int mode)
{
    if (mode < VDP_BOND_L2 || mode > VDP_BOND_SLB)
        return -1;
    ST(((vdp_bond *)p)->mode, mode);
    return 0;
}

int vdp_bond_mode(const vdp_port *p) { return LD(((const vdp_bond *)p)->mode); }

int vdp_bond_set_member(vdp_port *p, int i, int collecting, int distributing)
{
    vdp_bond *b = (vdp_bond *)p;
    if (i < 0 || i >= b->n)
        return -1;
    ST(b->m[i].collecting, (uint8_t)!!collecting);
    ST(b->m[i].distributing, (uint8_t)!!distributing);
    return 0;
}

int vdp_bond_member_flags(const vdp_port *p, int i, int *collecting, int *distributing)
{
    const vdp_bond *b = (const vdp_bond *)p;
    if (i < 0 || i >= b->n)
        return -1;
    *collecting = LD(b->m[i].collecting);
    *distributing = LD(b->m[i].distributing);
    return 0;
}

int vdp_bond_set_bucket(vdp_port *p, int bucket, int member)
{
    vdp_bond *b = (vdp_bond *)p;
    if (bucket < 0 || bucket >= VDP_BOND_BUCKETS || member < -1 || member >= b->n)
        return -1;
    ST(b->bucket[bucket], (uint8_t)(member < 0 ? VDP_BOND_NONE : member));
    return 0;
}

int vdp_bond_bucket(const vdp_port *p, int bucket)
{
    const vdp_bond *b = (const vdp_bond *)p;
    if (bucket < 0 || bucket >= VDP_BOND_BUCKETS)
        return -1;
    int m = LD(b->bucket[bucket]);
    return m < b->n ? m : -1;
}

void vdp_bond_bucket_stats(const vdp_port *p, uint64_t *packets, uint64_t *bytes)
{
    const vdp_bond *b = (const vdp_bond *)p;
    for (int i = 0; i < VDP_BOND_BUCKETS; i++) {
        packets[i] = LD(b->bst[i].packets) - b->bbase[i].packets;
        bytes[i] = LD(b->bst[i].bytes) - b->bbase[i].bytes;
    }
}

void vdp_bond_reset_bucket_stats(vdp_port *p)
{
    vdp_bond *b = (vdp_bond *)p;
    for (int i = 0; i < VDP_BOND_BUCKETS; i++) {
        b->bbase[i].packets = LD(b->bst[i].packets);
        b->bbase[i].bytes = LD(b->bst[i].bytes);
    }
}

void vdp_bond_counters_get(const vdp_port *p, vdp_bond_counters *out)
{
    const vdp_bond *b = (const vdp_bond *)p;
    out->slow_rx = LD(b->c.slow_rx);
    out->slow_dropped = LD(b->c.slow_dropped);
    out->not_collecting_dropped = LD(b->c.not_collecting_dropped);
    out->no_member_dropped = LD(b->c.no_member_dropped);
    out->fallback_tx = LD(b->c.fallback_tx);
    out->ctl_tx = LD(b->c.ctl_tx);
    out->ctl_dropped = LD(b->c.ctl_dropped);
}

int vdp_bond_member_counters_get(const vdp_port *p, int i, vdp_bond_member_counters *out)
{
    const vdp_bond *b = (const vdp_bond *)p;
    if (i < 0 || i >= b->n)
        return -1;
    const vdp_bond_member_counters *c = &b->m[i].c;
    out->not_collecting_dropped = LD(c->not_collecting_dropped);
    out->slow_rx = LD(c->slow_rx);
    out->slow_dropped = LD(c->slow_dropped);
    out->ctl_tx = LD(c->ctl_tx);
    out->ctl_dropped = LD(c->ctl_dropped);
    out->fallback_tx = LD(c->fallback_tx);
    return 0;
}

/* ---------------------------------------------------------------- life */
void vdp_bond_free(vdp_port *p)
{
    vdp_bond *b = (vdp_bond *)p;
    if (!b)
        return;
    if (p->fd >= 0)
        close(p->fd);
    if (b->slow_efd >= 0)
        close(b->slow_efd);
    free(b);
}

static const vdp_port_ops bond_ops = {
    .rx_burst = bond_rx_burst,
    .rx_release = bond_rx_release,
    .tx = bond_tx,
    .tx_flush = bond_tx_flush,
    .close = vdp_bond_free,
};

int vdp_bond_is(const vdp_port *p) { return p && p->ops == &bond_ops; }

vdp_port *vdp_bond_new(const char *name, vdp_port *const *members, int n, int mode,
                       char *err, size_t errlen)
{
    if (n < 1 || n > VDP_BOND_MAX_MEMBERS) {
        snprintf(err, errlen, "a bond has 1..%d members, not %d", VDP_BOND_MAX_MEMBERS, n);
        return NULL;
    }
    if (mode < VDP_BOND_L2 || mode > VDP_BOND_SLB) {
        snprintf(err, errlen, "bad bond hash mode %d", mode);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        if (!members[i] || !members[i]->ops) {
            snprintf(err, errlen, "member %d is closed", i);
            return NULL;
        }
        if (vdp_bond_is(members[i])) {
            snprintf(err, errlen, "member %d is a bond", i);
            return NULL;
        }
        for (int j = 0; j < i; j++)
            if (members[j] == members[i]) {
                snprintf(err, errlen, "member %d is given twice", i);
                return NULL;
            }
    }
    vdp_bond *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    vdp_port *p = &b->head.port;
    p->fd = -1;
    b->slow_efd = -1;
    p->ops = &bond_ops;
    p->impl = b;
    p->link_up = 1;
    snprintf(b->head.ifname, sizeof b->head.ifname, "%s", name ? name : "");
    memcpy(p->hw_addr, members[0]->hw_addr, 6);
    b->n = n;
    b->mode = mode;
    int all_fd = 1;
    uint32_t mtu = 0;
    for (int i = 0; i < n; i++) {
        b->m[i].port = members[i];
        b->m[i].collecting = b->m[i].distributing = 1;
        b->m[i].folded = members[i]->stats;   /* history before the bond: not ours */
        if (members[i]->fd < 0)
            all_fd = 0;
        if (members[i]->mtu && (!mtu || members[i]->mtu < mtu))
            mtu = members[i]->mtu;
    }
    p->mtu = mtu ? mtu : 1500;
    for (int k = 0; k < VDP_BOND_BUCKETS; k++)
        b->bucket[k] = (uint8_t)(k % n);

    b->slow_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->slow_efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (all_fd) {
        p->fd = epoll_create1(EPOLL_CLOEXEC);
        if (p->fd < 0) {
            snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
            goto fail;
        }
        for (int i = 0; i < n; i++) {
            struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
            if (epoll_ctl(p->fd, EPOLL_CTL_ADD, members[i]->fd, &ev) < 0) {
                snprintf(err, errlen, "epoll_ctl member %d: %s", i, strerror(errno));
                goto fail;
            }
        }
    }
    return p;
fail:
    {
        int e = errno;
        vdp_bond_free(p);
        errno = e;
    }
    return NULL;
}
