/* port_afpacket.c - vdp_port over AF_PACKET sockets with mmap rings.
 *
 * Opened by ext/ports.pxi (AfPacketPort); run by engine.c through the ops
 * vtable.  One port = two sockets (three with the TX ring):
 *   RX  TPACKET_V3 ring, bound with ETH_P_ALL, promiscuous,
 *       PACKET_IGNORE_OUTGOING (our own transmissions never come back),
 *       PACKET_VNET_HDR (a virtio_net_hdr before every frame: checksum and
 *       GSO state of the skb).  rx_burst hands out pointers into user-owned
 *       blocks; rx_release gives fully consumed blocks back to the kernel.
 *   TX  two modes, both bound with protocol 0 (so they receive nothing),
 *       PACKET_QDISC_BYPASS, PACKET_VNET_HDR:
 *       ring: a TPACKET_V2 TX ring (PACKET_LOSS) on its own socket; tx
 *         copies a frame into the next free slot, tx_flush kicks the kernel
 *         once.  The kernel sends slots zero-copy (page frags).
 *       mmsg: tx copies the frame into a preallocated batch buffer,
 *         tx_flush sends the batch with one sendmmsg on the BIG socket.
 *       Measured on veth (64-byte UDP, kernel 6.18, a busy 2-core box):
 *       both cost ~2.2-2.5 us of CPU per forwarded frame, equal within the
 *       noise.  Where the time goes differs: veth must copy the ring's
 *       zero-copy pages into fresh pages (skb_copy_ubufs) when a frame
 *       crosses into another namespace, sendmmsg copies into a small linear
 *       skb.  A NIC DMAs straight from the ring pages, so the ring is the
 *       default (VDP_AFP_TX_AUTO); mmsg stays selectable.
 *  BIG  a ring-less socket (PACKET_VNET_HDR, protocol 0): frames bigger
 *       than a slot (GSO super-frames, up to 64 KB) go out with one sendmsg
 *       each, after the queued frames so the port's order holds.  (Not the
 *       ring socket: once a socket has a TX ring, every sendmsg on it just
 *       flushes the ring and ignores its iov.)
 *
 * Why vnet headers: over veth (and from TAP), TCP arrives as GSO super-frames
 * larger than the MTU with a partial checksum.  Handing the header back on
 * TX lets the kernel (or the next device) segment and checksum them, so a
 * 64 KB TSO frame costs us one copy and one system call, and 64-byte frames
 * pay only a 10-byte header write.
 *
 * Why we re-insert VLAN tags: the kernel strips the outer 802.1Q/802.1ad tag
 * before packet sockets see the frame (always, in software if the NIC did
 * not) and reports it in tpacket3_hdr.hv1.  The pipeline must see the frame
 * as it was on the wire, so the tag goes back in, in place, using the free
 * bytes in front of the frame in the ring block. */
#define _GNU_SOURCE               /* sendmmsg */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <linux/virtio_net.h>

#include "port_afpacket.h"

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

#define AFP_DEF_RX_BLOCK_SIZE (1u << 17)   /* 128 KiB: holds a 64 KB GSO frame */
#define AFP_DEF_RX_BLOCK_NR   32u          /* 4 MiB ring: ~24k 64-byte frames */
#define AFP_DEF_RX_TOV_MS     1u           /* latency bound for sparse traffic */
#define AFP_DEF_TX_FRAME_NR   512u
#define AFP_TX_HDR  (TPACKET2_HDRLEN - sizeof(struct sockaddr_ll))
#define VNET_LEN    ((uint32_t)sizeof(struct virtio_net_hdr))

typedef struct afp_port {
    vdp_ifport head;          /* first: the vdp_port handed out + name */
    int      tx_fd;
    int      big_fd;          /* ring-less socket for frames no slot holds */
    int      vnet;            /* PACKET_VNET_HDR on both sockets */

    /* RX ring (TPACKET_V3) */
    uint8_t *rx_map;
    size_t   rx_map_len;
    uint32_t rx_block_size, rx_block_nr;
    uint32_t rx_blk;          /* block being read (or next to look at) */
    uint32_t rx_left;         /* frames left in rx_blk; 0 = block not open */
    uint8_t *rx_next;         /* next frame in rx_blk */
    uint32_t rx_rel_first;    /* blocks consumed, waiting for rx_release */
    uint32_t rx_rel_n;
    uint32_t rx_losing;       /* a released block reported kernel drops */

    /* TX ring (TPACKET_V2) */
    uint8_t *tx_map;
    size_t   tx_map_len;
    uint32_t tx_frame_size, tx_frame_nr;
    uint32_t tx_cur;
    uint32_t tx_pending;      /* slots marked SEND_REQUEST since the last kick */
    uint32_t tx_slot_max;     /* largest frame (without vnet header) a slot holds */

    /* TX by sendmmsg (tx_mode VDP_AFP_TX_MMSG) */
    int      tx_mode;
    uint8_t *mm_buf;          /* mm_cap slots of mm_slot bytes */
    size_t   mm_buf_len;
    uint32_t mm_slot, mm_n, mm_cap;
    struct mmsghdr *mm_msg;
    struct iovec   *mm_iov;
} afp_port;

static const vdp_port_ops afp_ops;
_Static_assert(sizeof(((vdp_ifport *)0)->ifname) == IFNAMSIZ, "ifname size");

/* ---------------------------------------------------------------- netdev */
static int ifreq_ioctl(const char *ifname, unsigned long req, struct ifreq *ifr)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    if (!ifname || strlen(ifname) >= IFNAMSIZ) {
        close(s);
        errno = EINVAL;
        return -1;
    }
    strncpy(ifr->ifr_name, ifname, IFNAMSIZ - 1);
    ifr->ifr_name[IFNAMSIZ - 1] = 0;
    int r = ioctl(s, req, ifr);
    int e = errno;
    close(s);
    errno = e;
    return r;
}

int vdp_netdev_ifindex(const char *ifname)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_ioctl(ifname, SIOCGIFINDEX, &ifr) < 0)
        return -1;
    return ifr.ifr_ifindex;
}

int vdp_netdev_mtu(const char *ifname)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_ioctl(ifname, SIOCGIFMTU, &ifr) < 0)
        return -1;
    return ifr.ifr_mtu;
}

int vdp_netdev_hwaddr(const char *ifname, uint8_t mac[6])
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_ioctl(ifname, SIOCGIFHWADDR, &ifr) < 0)
        return -1;
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    return 0;
}

int vdp_netdev_is_up(const char *ifname)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_ioctl(ifname, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    return (ifr.ifr_flags & IFF_UP) != 0;
}

int vdp_netdev_set_up(const char *ifname, int up)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    if (ifreq_ioctl(ifname, SIOCGIFFLAGS, &ifr) < 0)
        return -1;
    short want = up ? (ifr.ifr_flags | IFF_UP) : (ifr.ifr_flags & ~IFF_UP);
    if (want == ifr.ifr_flags)
        return 0;
    ifr.ifr_flags = want;
    return ifreq_ioctl(ifname, SIOCSIFFLAGS, &ifr);
}

/* ---------------------------------------------------------------- vnet */
/* L4 protocol of the frame's IP header, 0 when unknown. */
static int pkt_l4_proto(const vdp_pkt *pkt, uint32_t l4)
{
    uint32_t l3 = pkt->l3_off;
    if (l3 == VDP_NOOFF || l3 + 20 > pkt->len)
        return 0;
    const uint8_t *ip = pkt->data + l3;
    if ((ip[0] >> 4) == 4)
        return ip[9];
    if ((ip[0] >> 4) == 6 && l3 + 40 <= pkt->len && l4 == l3 + 40u)
        return ip[6];
    return 0;
}

void vdp_pkt_to_vnet(const vdp_pkt *pkt, struct virtio_net_hdr *vh)
{
    memset(vh, 0, sizeof *vh);
    if (!pkt->csum_partial && !pkt->gso_type)
        return;
    /* Same rule as vdp_csum_complete (csum.h): csum_start/csum_offset when
     * the receiving port reported them (rewrites shift csum_start), else
     * the parser's l4_off and the protocol's checksum position. */
    uint32_t start = pkt->csum_start, off = pkt->csum_offset;
    if (start == 0) {
        start = pkt->l4_off != VDP_NOOFF ? pkt->l4_off : 0;
        off = 0;
    }
    if (off == 0) {
        int proto = pkt_l4_proto(pkt, start);
        if (proto == 6)
            off = 16;
        else if (proto == 17 || proto == 136)
            off = 6;
        else if (proto == 58)
            off = 2;
    }
    if (start == 0 || off == 0 || start + off + 2 > pkt->len)
        return;                         /* cannot describe it: send as is */
    vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    vh->csum_start = (uint16_t)start;
    vh->csum_offset = (uint16_t)off;
    uint32_t hdr_len = start + off + 2;
    if (off == 16 && start + 13 <= pkt->len)        /* TCP: whole header */
        hdr_len = start + ((pkt->data[start + 12] >> 4) * 4u);
    else if (off == 6)
        hdr_len = start + 8;
    if (hdr_len > pkt->len)
        hdr_len = pkt->len;
    if (pkt->gso_type) {
        vh->gso_type = pkt->gso_type;
        vh->gso_size = pkt->gso_size;
        vh->hdr_len = (uint16_t)hdr_len;
    }
}

void vdp_vnet_to_pkt(const struct virtio_net_hdr *vh, vdp_pkt *pkt)
{
    if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
        pkt->csum_partial = 1;
        pkt->csum_start = vh->csum_start;
        pkt->csum_offset = vh->csum_offset;
    } else {
        pkt->csum_partial = 0;
        pkt->csum_start = 0;
        pkt->csum_offset = 0;
    }
    if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE) {
        pkt->gso_type = vh->gso_type;
        pkt->gso_size = vh->gso_size;
    } else {
        pkt->gso_type = 0;
        pkt->gso_size = 0;
    }
}

/* ---------------------------------------------------------------- RX */
static inline struct tpacket_block_desc *rx_block(afp_port *a, uint32_t i)
{
    return (struct tpacket_block_desc *)(a->rx_map + (size_t)i * a->rx_block_size);
}

/* Put a stripped outer VLAN tag back in front of the ethertype.  The 12 MAC
 * bytes move 4 bytes down into the gap the kernel leaves between the
 * tpacket3_hdr (+ sockaddr_ll, + the vnet header we already read) and the
 * frame. */
static inline uint8_t *rx_reinsert_vlan(const struct tpacket3_hdr *h, uint8_t *d,
                                        uint32_t status)
{
    if ((size_t)(d - (const uint8_t *)h) < sizeof(*h) + 4)
        return NULL;                    /* no room: never with kernel layouts */
    uint16_t tpid = (status & TP_STATUS_VLAN_TPID_VALID) && h->hv1.tp_vlan_tpid
                    ? h->hv1.tp_vlan_tpid : ETH_P_8021Q;
    uint16_t tci = (uint16_t)h->hv1.tp_vlan_tci;
    memmove(d - 4, d, 12);
    d -= 4;
    d[12] = tpid >> 8;
    d[13] = tpid & 0xff;
    d[14] = tci >> 8;
    d[15] = tci & 0xff;
    return d;
}

static int afp_rx_burst(vdp_port *p, vdp_pkt *pkts, int max)
{
    afp_port *a = (afp_port *)p;
    int n = 0;
    while (n < max) {
        if (a->rx_left == 0) {
            struct tpacket_block_desc *bd = rx_block(a, a->rx_blk);
            if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE)
                  & TP_STATUS_USER))
                break;
            /* A block only goes on the release list once all its frames
             * are handed out, so an open block is always rx_blk. */
            if (bd->hdr.bh1.block_status & TP_STATUS_LOSING)
                a->rx_losing = 1;
            a->rx_left = bd->hdr.bh1.num_pkts;
            a->rx_next = (uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt;
            if (a->rx_left == 0)
                goto block_done;
        }
        struct tpacket3_hdr *h = (struct tpacket3_hdr *)a->rx_next;
        uint8_t *d = (uint8_t *)h + h->tp_mac;
        uint32_t len = h->tp_snaplen;
        uint32_t status = h->tp_status;
        a->rx_next = (uint8_t *)h + h->tp_next_offset;
        a->rx_left--;

        if (len != h->tp_len || len < ETH_HLEN) {
            /* Truncated to the block size (cannot happen with our sizing)
             * or a runt: never forward a partial frame. */
            p->stats.rx_errors++;
        } else {
            vdp_pkt *k = &pkts[n];
            if (a->vnet) {
                vdp_vnet_to_pkt((const struct virtio_net_hdr *)(d - VNET_LEN), k);
            } else {
                k->csum_partial = (status & TP_STATUS_CSUMNOTREADY) != 0;
                k->gso_type = 0;
                k->gso_size = 0;
                k->csum_start = 0;
                k->csum_offset = 0;
            }
            if (status & TP_STATUS_VLAN_VALID) {
                uint8_t *nd = rx_reinsert_vlan(h, d, status);
                if (nd) {
                    d = nd;
                    len += 4;
                    if (k->csum_partial)
                        k->csum_start += 4;
                }
            }
            k->data = d;
            k->len = len;
            k->in_port = p->ofport;
            k->rewritten = 0;
            k->malformed = 0;
            n++;
        }
        if (a->rx_left)
            continue;
    block_done:
        if (a->rx_rel_n == 0)
            a->rx_rel_first = a->rx_blk;
        a->rx_rel_n++;
        a->rx_blk = (a->rx_blk + 1) % a->rx_block_nr;
        if (a->rx_rel_n == a->rx_block_nr)
            break;                      /* whole ring held: stop */
    }
    return n;
}

static void afp_rx_release(vdp_port *p)
{
    afp_port *a = (afp_port *)p;
    uint32_t i = a->rx_rel_first;
    for (uint32_t k = 0; k < a->rx_rel_n; k++) {
        struct tpacket_block_desc *bd = rx_block(a, i);
        __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL,
                         __ATOMIC_RELEASE);
        i = (i + 1) % a->rx_block_nr;
    }
    a->rx_rel_n = 0;
    if (a->rx_losing) {
        a->rx_losing = 0;
        vdp_afp_update_stats(p);
    }
}

void vdp_afp_update_stats(vdp_port *p)
{
    if (!vdp_afp_is(p) || p->fd < 0)
        return;
    struct tpacket_stats_v3 st;
    socklen_t sl = sizeof st;
    if (getsockopt(p->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) == 0)
        p->stats.rx_dropped += st.tp_drops;
}

/* ---------------------------------------------------------------- TX */
static inline struct tpacket2_hdr *tx_slot(afp_port *a, uint32_t i)
{
    return (struct tpacket2_hdr *)(a->tx_map + (size_t)i * a->tx_frame_size);
}

/* Send the sendmmsg batch.  MSG_DONTWAIT: never sleep in the engine. */
static void mmsg_flush(afp_port *a)
{
    vdp_port *p = &a->head.port;
    uint32_t done = 0;
    while (done < a->mm_n) {
        int r = sendmmsg(a->big_fd, a->mm_msg + done, a->mm_n - done, MSG_DONTWAIT);
        if (r > 0) {
            done += (uint32_t)r;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno != EAGAIN && errno != ENOBUFS) {
            /* this frame failed (e.g. EMSGSIZE); the rest may go */
            p->stats.tx_errors++;
            done++;
            continue;
        }
        /* socket buffer full: the rest of the batch is lost.  tx already
         * said yes to them, so they count here. */
        p->stats.tx_dropped += a->mm_n - done;
        break;
    }
    a->mm_n = 0;
}

/* Send what tx queued: the batch, or a kick for every SEND_REQUEST ring
 * slot (slots the kernel could not take yet, socket buffer full, stay
 * requested and go with the next kick). */
static void afp_tx_flush(vdp_port *p)
{
    afp_port *a = (afp_port *)p;
    if (a->mm_n)
        mmsg_flush(a);
    if (!a->tx_pending)
        return;
    if (send(a->tx_fd, NULL, 0, MSG_DONTWAIT) < 0) {
        if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR)
            return;                     /* kick again at the next flush */
        p->stats.tx_errors++;
    }
    a->tx_pending = 0;
}

/* One frame by sendmsg: for what no ring slot can hold. */
static int afp_tx_big(afp_port *a, const vdp_pkt *pkt)
{
    vdp_port *p = &a->head.port;
    struct virtio_net_hdr vh;
    struct iovec iov[2];
    int niov = 0;
    if (a->vnet) {
        vdp_pkt_to_vnet(pkt, &vh);
        iov[niov].iov_base = &vh;
        iov[niov++].iov_len = VNET_LEN;
    } else if (pkt->gso_type) {
        return -1;                      /* cannot describe a GSO frame */
    }
    iov[niov].iov_base = pkt->data;
    iov[niov++].iov_len = pkt->len;
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = niov };
    afp_tx_flush(p);                    /* queued frames first: port order */
    if (sendmsg(a->big_fd, &mh, MSG_DONTWAIT) < 0) {
        if (errno != EAGAIN && errno != ENOBUFS)
            p->stats.tx_errors++;       /* e.g. EMSGSIZE: over the MTU */
        return -1;
    }
    return 0;
}

/* Write the vnet header (if any) and the frame at d; returns bytes used. */
static inline uint32_t put_frame(afp_port *a, uint8_t *d, const vdp_pkt *pkt)
{
    uint32_t tl = pkt->len;
    if (a->vnet) {
        if (pkt->csum_partial)
            vdp_pkt_to_vnet(pkt, (struct virtio_net_hdr *)d);
        else
            memset(d, 0, VNET_LEN);
        d += VNET_LEN;
        tl += VNET_LEN;
    }
    memcpy(d, pkt->data, pkt->len);
    return tl;
}

static int afp_tx(vdp_port *p, const vdp_pkt *pkt)
{
    afp_port *a = (afp_port *)p;
    if (pkt->len > a->tx_slot_max || pkt->gso_type)
        return afp_tx_big(a, pkt);
    if (a->tx_mode == VDP_AFP_TX_MMSG) {
        if (a->mm_n == a->mm_cap)
            mmsg_flush(a);
        uint8_t *d = a->mm_buf + (size_t)a->mm_n * a->mm_slot;
        a->mm_iov[a->mm_n].iov_len = put_frame(a, d, pkt);
        a->mm_n++;
        return 0;
    }
    struct tpacket2_hdr *h = tx_slot(a, a->tx_cur);
    uint32_t st = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
    if (st != TP_STATUS_AVAILABLE) {
        if (st & TP_STATUS_WRONG_FORMAT) {
            /* With PACKET_LOSS the kernel skips bad frames; count any
             * that still show up and reuse the slot. */
            p->stats.tx_errors++;
        } else {
            return -1;                  /* ring full: kernel still sending */
        }
    }
    h->tp_len = put_frame(a, (uint8_t *)h + AFP_TX_HDR, pkt);
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    a->tx_cur = a->tx_cur + 1 == a->tx_frame_nr ? 0 : a->tx_cur + 1;
    a->tx_pending++;
    return 0;
}

/* ---------------------------------------------------------------- open/close */
static void afp_close(vdp_port *p)
{
    afp_port *a = (afp_port *)p;
    if (!a)
        return;
    if (p->fd >= 0 && a->rx_map)
        vdp_afp_update_stats(p);
    if (a->rx_map)
        munmap(a->rx_map, a->rx_map_len);
    if (a->tx_map)
        munmap(a->tx_map, a->tx_map_len);
    if (p->fd >= 0)
        close(p->fd);
    if (a->tx_fd >= 0)
        close(a->tx_fd);
    if (a->big_fd >= 0)
        close(a->big_fd);
    if (a->mm_buf)
        munmap(a->mm_buf, a->mm_buf_len);
    free(a->mm_msg);
    free(a->mm_iov);
    a->mm_buf = NULL;
    a->mm_msg = NULL;
    a->mm_iov = NULL;
    a->rx_map = a->tx_map = NULL;
    p->fd = a->tx_fd = a->big_fd = -1;
    free(a);
}

static const vdp_port_ops afp_ops = {
    .rx_burst = afp_rx_burst,
    .rx_release = afp_rx_release,
    .tx = afp_tx,
    .tx_flush = afp_tx_flush,
    .close = afp_close,
};

int vdp_afp_is(const vdp_port *p)
{
    return p && p->ops == &afp_ops;
}

int vdp_afp_tx_mode(const vdp_port *p)
{
    return vdp_afp_is(p) ? ((const afp_port *)p)->tx_mode : -1;
}

int vdp_port_set_link_up(vdp_port *p, int up)
{
    if (vdp_netdev_set_up(vdp_port_ifname(p), up) < 0)
        return -1;
    p->link_up = up != 0;
    return 0;
}

static int setopt(int fd, int opt, int val)
{
    return setsockopt(fd, SOL_PACKET, opt, &val, sizeof val);
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

vdp_port *vdp_afp_open(const char *ifname, const vdp_afp_opts *opts,
                       char *err, size_t errlen)
{
    vdp_afp_opts o = {0};
    if (opts)
        o = *opts;
    if (!o.rx_block_size) o.rx_block_size = AFP_DEF_RX_BLOCK_SIZE;
    if (!o.rx_block_nr) o.rx_block_nr = AFP_DEF_RX_BLOCK_NR;
    if (!o.rx_block_tov_ms) o.rx_block_tov_ms = AFP_DEF_RX_TOV_MS;
    if (!o.tx_frame_nr) o.tx_frame_nr = AFP_DEF_TX_FRAME_NR;

    int e;
    afp_port *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    vdp_port *p = &a->head.port;
    p->fd = a->tx_fd = a->big_fd = -1;
    p->ops = &afp_ops;
    p->impl = a;
    a->vnet = !o.no_vnet;
    if (!ifname || strlen(ifname) >= IFNAMSIZ) {
        errno = EINVAL;
        FAIL("bad interface name");
    }
    strcpy(a->head.ifname, ifname);

    int ifindex = vdp_netdev_ifindex(ifname);
    int mtu = vdp_netdev_mtu(ifname);
    if (ifindex < 0 || mtu < 0)
        FAIL("%s: %s", ifname, strerror(errno));
    p->ifindex = ifindex;
    p->mtu = (uint32_t)mtu;
    if (vdp_netdev_hwaddr(ifname, p->hw_addr) < 0)
        FAIL("%s: hw address: %s", ifname, strerror(errno));
    p->link_up = vdp_netdev_is_up(ifname) == 1;

    /* ---- RX socket: protocol 0 until the ring exists, then bind. */
    p->fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (p->fd < 0)
        FAIL("socket(AF_PACKET): %s", strerror(errno));
    if (setopt(p->fd, PACKET_VERSION, TPACKET_V3) < 0)
        FAIL("PACKET_VERSION v3: %s", strerror(errno));
    if (a->vnet && setopt(p->fd, PACKET_VNET_HDR, 1) < 0)
        FAIL("PACKET_VNET_HDR (rx): %s", strerror(errno));
    /* A block must hold the largest frame: a 64 KB GSO frame, or the MTU. */
    uint32_t need = (uint32_t)mtu + 256 > VDP_MAX_FRAME + 256 ? (uint32_t)mtu + 256
                                                             : VDP_MAX_FRAME + 256;
    while (o.rx_block_size < need)
        o.rx_block_size <<= 1;
    struct tpacket_req3 rq;
    memset(&rq, 0, sizeof rq);
    rq.tp_block_size = o.rx_block_size;
    rq.tp_block_nr = o.rx_block_nr;
    rq.tp_frame_size = 2048;            /* V3 only checks it for sanity */
    rq.tp_frame_nr = (o.rx_block_size / rq.tp_frame_size) * o.rx_block_nr;
    rq.tp_retire_blk_tov = o.rx_block_tov_ms;
    if (setsockopt(p->fd, SOL_PACKET, PACKET_RX_RING, &rq, sizeof rq) < 0)
        FAIL("PACKET_RX_RING: %s", strerror(errno));
    a->rx_block_size = rq.tp_block_size;
    a->rx_block_nr = rq.tp_block_nr;
    a->rx_map_len = (size_t)rq.tp_block_size * rq.tp_block_nr;
    a->rx_map = mmap(NULL, a->rx_map_len, PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_LOCKED, p->fd, 0);
    if (a->rx_map == MAP_FAILED)    /* MAP_LOCKED can fail on rlimits */
        a->rx_map = mmap(NULL, a->rx_map_len, PROT_READ | PROT_WRITE,
                         MAP_SHARED, p->fd, 0);
    if (a->rx_map == MAP_FAILED) {
        a->rx_map = NULL;
        FAIL("mmap rx ring: %s", strerror(errno));
    }
    if (setopt(p->fd, PACKET_IGNORE_OUTGOING, 1) < 0)
        FAIL("PACKET_IGNORE_OUTGOING: %s", strerror(errno));
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = ifindex;
    if (bind(p->fd, (struct sockaddr *)&sll, sizeof sll) < 0)
        FAIL("bind %s: %s", ifname, strerror(errno));
    struct packet_mreq mr;
    memset(&mr, 0, sizeof mr);
    mr.mr_ifindex = ifindex;
    mr.mr_type = PACKET_MR_PROMISC;
    if (setsockopt(p->fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
        FAIL("promiscuous mode on %s: %s", ifname, strerror(errno));

    /* ---- TX: the send-only sockets share this binding. */
    memset(&sll, 0, sizeof sll);
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;               /* send only: no receive hook */
    sll.sll_ifindex = ifindex;
    /* Largest frame a slot / batch entry takes: MTU + Ethernet header +
     * one VLAN tag, what the kernel lets a packet socket send (a QinQ frame
     * of full MTU goes the sendmsg way, which allows the extra tag). */
    a->tx_slot_max = (uint32_t)mtu + ETH_HLEN + 4;
    int sb = 4 << 20;                   /* bursts must not hit the sndbuf */
    a->tx_mode = o.tx_mode == VDP_AFP_TX_MMSG ? VDP_AFP_TX_MMSG : VDP_AFP_TX_RING;

    /* BIG socket (also the mmsg sender): no ring. */
    a->big_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (a->big_fd < 0)
        FAIL("socket(AF_PACKET) tx: %s", strerror(errno));
    if (a->vnet && setopt(a->big_fd, PACKET_VNET_HDR, 1) < 0)
        FAIL("PACKET_VNET_HDR (tx): %s", strerror(errno));
    if (!o.no_qdisc_bypass)
        setopt(a->big_fd, PACKET_QDISC_BYPASS, 1);  /* best effort */
    if (setsockopt(a->big_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb) < 0)
        setsockopt(a->big_fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    if (bind(a->big_fd, (struct sockaddr *)&sll, sizeof sll) < 0)
        FAIL("bind tx %s: %s", ifname, strerror(errno));

    if (a->tx_mode == VDP_AFP_TX_MMSG) {
        a->mm_cap = o.tx_frame_nr;
        a->mm_slot = (VNET_LEN + a->tx_slot_max + 63) & ~63u;
        a->mm_buf_len = (size_t)a->mm_cap * a->mm_slot;
        a->mm_buf = mmap(NULL, a->mm_buf_len, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        a->mm_msg = calloc(a->mm_cap, sizeof *a->mm_msg);
        a->mm_iov = calloc(a->mm_cap, sizeof *a->mm_iov);
        if (a->mm_buf == MAP_FAILED) {
            a->mm_buf = NULL;
            errno = ENOMEM;
        }
        if (!a->mm_buf || !a->mm_msg || !a->mm_iov)
            FAIL("tx batch buffer: %s", strerror(ENOMEM));
        for (uint32_t i = 0; i < a->mm_cap; i++) {
            a->mm_iov[i].iov_base = a->mm_buf + (size_t)i * a->mm_slot;
            a->mm_msg[i].msg_hdr.msg_iov = &a->mm_iov[i];
            a->mm_msg[i].msg_hdr.msg_iovlen = 1;
        }
        return p;
    }

    /* TX ring socket. */
    a->tx_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (a->tx_fd < 0)
        FAIL("socket(AF_PACKET) tx ring: %s", strerror(errno));
    if (setopt(a->tx_fd, PACKET_VERSION, TPACKET_V2) < 0)
        FAIL("PACKET_VERSION v2: %s", strerror(errno));
    if (a->vnet && setopt(a->tx_fd, PACKET_VNET_HDR, 1) < 0)
        FAIL("PACKET_VNET_HDR (tx ring): %s", strerror(errno));
    if (!o.no_qdisc_bypass)
        setopt(a->tx_fd, PACKET_QDISC_BYPASS, 1);
    setopt(a->tx_fd, PACKET_LOSS, 1);
    /* Zero-copy TX keeps slots referenced until the skb is freed. */
    if (setsockopt(a->tx_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sb, sizeof sb) < 0)
        setsockopt(a->tx_fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof sb);
    uint32_t fs = (uint32_t)AFP_TX_HDR + VNET_LEN + a->tx_slot_max;
    uint32_t frame_size = 2048;
    while (frame_size < fs)
        frame_size <<= 1;
    uint32_t block_size = frame_size < 65536 ? 65536 : frame_size;
    struct tpacket_req tq;
    memset(&tq, 0, sizeof tq);
    tq.tp_frame_size = frame_size;
    tq.tp_block_size = block_size;
    tq.tp_block_nr = (o.tx_frame_nr * frame_size + block_size - 1) / block_size;
    tq.tp_frame_nr = tq.tp_block_nr * (block_size / frame_size);
    if (setsockopt(a->tx_fd, SOL_PACKET, PACKET_TX_RING, &tq, sizeof tq) < 0)
        FAIL("PACKET_TX_RING: %s", strerror(errno));
    a->tx_frame_size = frame_size;
    a->tx_frame_nr = tq.tp_frame_nr;
    a->tx_map_len = (size_t)block_size * tq.tp_block_nr;
    a->tx_map = mmap(NULL, a->tx_map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
                     a->tx_fd, 0);
    if (a->tx_map == MAP_FAILED) {
        a->tx_map = NULL;
        FAIL("mmap tx ring: %s", strerror(errno));
    }
    if (bind(a->tx_fd, (struct sockaddr *)&sll, sizeof sll) < 0)
        FAIL("bind tx ring %s: %s", ifname, strerror(errno));
    return p;

fail:
    e = errno;
    afp_close(p);
    errno = e;
    return NULL;
}
