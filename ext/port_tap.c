/* port_tap.c - vdp_port over a TAP device (/dev/net/tun, IFF_TAP).
 *
 * Opened by ext/ports.pxi (TapPort); run by engine.c through the ops vtable.
 * RX: rx_burst does nonblocking read()s into preallocated per-port buffers
 * until EAGAIN or the burst is full; each read returns one frame behind its
 * virtio_net_hdr.  TX: tx writes the frame at once with writev (header +
 * frame), since a TAP has no batched write; tx_flush has nothing to do.
 * Writing at once also means no copy: the frame may still sit in another
 * port's RX ring, which is only released after the burst.
 *
 * The buffers hold the largest GSO frame (VDP_MAX_FRAME); they are mapped
 * lazily, so a port that only sees small frames touches one page per slot. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <linux/if_ether.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>

#include "port_tap.h"
#include "port_afpacket.h"

#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

#define TAP_BURST    VDP_BURST
#define VNET_LEN     ((uint32_t)sizeof(struct virtio_net_hdr))
/* A slot: vnet header then frame.  Slots are 64-byte aligned, so the frame
 * starts at 10 (mod 64) and its IP header at 24: aligned for the parser. */
#define TAP_BUF_SIZE ((VNET_LEN + VDP_MAX_FRAME + 63u) & ~63u)

typedef struct tap_port {
    vdp_ifport head;          /* first: the vdp_port handed out + name */
    int      created;
    uint8_t *bufs;            /* TAP_BURST slots of TAP_BUF_SIZE */
    size_t   bufs_len;
} tap_port;

static const vdp_port_ops tap_ops;

static inline uint8_t *tap_slot(tap_port *t, int i)
{
    return t->bufs + (size_t)i * TAP_BUF_SIZE;
}

static int tap_rx_burst(vdp_port *p, vdp_pkt *pkts, int max)
{
    tap_port *t = (tap_port *)p;
    int n = 0;
    if (max > TAP_BURST)
        max = TAP_BURST;
    while (n < max) {
        uint8_t *b = tap_slot(t, n);
        ssize_t r = read(p->fd, b, VNET_LEN + VDP_MAX_FRAME);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            /* EBADFD/EIO when the device went away under us */
            p->stats.rx_errors++;
            return n ? n : -1;
        }
        if ((size_t)r < VNET_LEN + ETH_HLEN || (size_t)r >= VNET_LEN + VDP_MAX_FRAME) {
            p->stats.rx_errors++;       /* runt, or truncated to our buffer */
            continue;
        }
        vdp_pkt *k = &pkts[n];
        vdp_vnet_to_pkt((const struct virtio_net_hdr *)b, k);
        k->data = b + VNET_LEN;
        k->len = (uint32_t)r - VNET_LEN;
        k->in_port = p->ofport;
        k->rewritten = 0;
        k->malformed = 0;
        n++;
    }
    return n;
}

static void tap_rx_release(vdp_port *p)
{
    (void)p;                           /* slots are reused by the next burst */
}

static int tap_tx(vdp_port *p, const vdp_pkt *pkt)
{
    struct virtio_net_hdr vh;
    vdp_pkt_to_vnet(pkt, &vh);
    struct iovec iov[2] = {
        { .iov_base = &vh, .iov_len = VNET_LEN },
        { .iov_base = pkt->data, .iov_len = pkt->len },
    };
    ssize_t r = writev(p->fd, iov, 2);
    if (r < 0) {
        if (errno != EAGAIN && errno != ENOBUFS)
            p->stats.tx_errors++;
        return -1;                      /* the caller counts tx_dropped */
    }
    return 0;
}

static void tap_tx_flush(vdp_port *p)
{
    (void)p;                           /* tx writes at once */
}

static void tap_close(vdp_port *p)
{
    tap_port *t = (tap_port *)p;
    if (!t)
        return;
    if (p->fd >= 0) {
        /* A TAP we created goes away with its last file descriptor; make
         * sure nobody turned it persistent meanwhile. */
        if (t->created)
            ioctl(p->fd, TUNSETPERSIST, 0);
        close(p->fd);
    }
    p->fd = -1;
    if (t->bufs)
        munmap(t->bufs, t->bufs_len);
    t->bufs = NULL;
    free(t);
}

static const vdp_port_ops tap_ops = {
    .rx_burst = tap_rx_burst,
    .rx_release = tap_rx_release,
    .tx = tap_tx,
    .tx_flush = tap_tx_flush,
    .close = tap_close,
};

int vdp_tap_is(const vdp_port *p)
{
    return p && p->ops == &tap_ops;
}

int vdp_tap_created(const vdp_port *p)
{
    return vdp_tap_is(p) && ((const tap_port *)p)->created;
}

#define FAIL(...) do { snprintf(err, errlen, __VA_ARGS__); goto fail; } while (0)

vdp_port *vdp_tap_open(const char *name, int create, char *err, size_t errlen)
{
    int e;
    tap_port *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    vdp_port *p = &t->head.port;
    p->fd = -1;
    p->ops = &tap_ops;
    p->impl = t;
    if (!name || !*name || strlen(name) >= IFNAMSIZ) {
        errno = EINVAL;
        FAIL("bad TAP name");
    }
    strcpy(t->head.ifname, name);

    int exists = if_nametoindex(name) != 0;
    if (!exists && !create) {
        errno = ENODEV;
        FAIL("%s: no such TAP device", name);
    }
    p->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (p->fd < 0)
        FAIL("/dev/net/tun: %s", strerror(errno));
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(p->fd, TUNSETIFF, &ifr) < 0) {
        if (exists && (errno == EINVAL || errno == EBUSY))
            FAIL("%s: exists and is not a free TAP device: %s", name, strerror(errno));
        FAIL("%s: TUNSETIFF: %s", name, strerror(errno));
    }
    t->created = !exists;
    int hs = (int)VNET_LEN;
    if (ioctl(p->fd, TUNSETVNETHDRSZ, &hs) < 0)
        FAIL("%s: TUNSETVNETHDRSZ: %s", name, strerror(errno));
    /* What we accept from the host: partial checksums, TCP and UDP GSO.
     * Older kernels lack UDP segmentation offload; retry without. */
    unsigned off = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    if (ioctl(p->fd, TUNSETOFFLOAD, off | TUN_F_USO4 | TUN_F_USO6) < 0 &&
        ioctl(p->fd, TUNSETOFFLOAD, off) < 0)
        FAIL("%s: TUNSETOFFLOAD: %s", name, strerror(errno));

    t->bufs_len = (size_t)TAP_BURST * TAP_BUF_SIZE;
    t->bufs = mmap(NULL, t->bufs_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (t->bufs == MAP_FAILED) {
        t->bufs = NULL;
        FAIL("%s: buffers: %s", name, strerror(errno));
    }
    if (vdp_netdev_set_up(name, 1) < 0)
        FAIL("%s: set up: %s", name, strerror(errno));
    int ifindex = vdp_netdev_ifindex(name);
    int mtu = vdp_netdev_mtu(name);
    if (ifindex < 0 || mtu < 0 || vdp_netdev_hwaddr(name, p->hw_addr) < 0)
        FAIL("%s: %s", name, strerror(errno));
    p->ifindex = ifindex;
    p->mtu = (uint32_t)mtu;
    p->link_up = 1;
    return p;

fail:
    e = errno;
    tap_close(p);
    errno = e;
    return NULL;
}
