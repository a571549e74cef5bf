/*
 * ringfwd: the ceiling reference for bench/pps.py.
 *
 * A minimal AF_PACKET forwarder with no classifier: every frame received on
 * the ingress interface is copied to an egress interface.  It shows what the
 * kernel path (veth -> packet socket ring -> veth) allows on this machine, so
 * the harness can express vdp's and Open vSwitch's rates as a fraction of it.
 *
 *   ringfwd -i IN -o OUT [-o OUT2 ...] [-b BURST] [-m]
 *
 * RX: one TPACKET_V3 ring on IN (block-based, so one wakeup hands over many
 * frames).  TX: one TPACKET_V2 ring per OUT with PACKET_QDISC_BYPASS; frames
 * are queued in the ring and flushed with one send() per BURST frames and at
 * the end of every RX block.  With several OUTs a frame goes to
 * hash(IPv4 addresses, L4 ports) % n_out, the way a select group spreads.
 *
 * -m: transmit with sendmmsg() instead of the TX ring (same batching).  On a
 * veth that crosses into another namespace the kernel must copy a TX-ring
 * frame's pages (they are user memory), while sendmmsg copies 64 bytes into a
 * small linear skb, so -m is the cheaper of the two there.
 *
 * Run by bench/pps.py (compiled into /tmp with gcc -O2), pinned to the
 * switch core.  SIGINT/SIGTERM stop it; it then prints one line of counters
 * on stdout: "ringfwd rx=N tx=N txfull=N kdrops=N" (kdrops: frames the
 * kernel could not place in the RX ring).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define MAX_OUT 8

/* RX ring geometry: 64 blocks of 256 KiB; a block retires after 1 ms even
 * when not full, which bounds latency at low rates. */
#define RX_BLOCK_SIZE (1u << 18)
#define RX_BLOCK_NR 64u
#define RX_FRAME_SIZE 2048u
#define RX_TOV_MS 1u

/* TX ring geometry: 4096 frames of 2 KiB (frames never exceed the MTU). */
#define TX_FRAME_SIZE 2048u
#define TX_FRAME_NR 4096u
#define TX_BLOCK_SIZE (1u << 16)

#define MMSG_MAX 256u   /* frames per sendmmsg batch (-m) */

struct txring {
    int fd;
    uint8_t *map;     /* TX ring (NULL with -m) */
    unsigned head;    /* next frame to fill */
    unsigned pending; /* frames queued since the last flush */
    /* -m: a batch of copied frames for sendmmsg */
    uint8_t *buf;
    struct iovec *iov;
    struct mmsghdr *msg;
};

static int use_mmsg;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static int bind_to(int fd, const char *ifname)
{
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = (int)if_nametoindex(ifname);
    if (sll.sll_ifindex == 0) {
        fprintf(stderr, "ringfwd: no interface %s\n", ifname);
        exit(1);
    }
    return bind(fd, (struct sockaddr *)&sll, sizeof(sll));
}

static uint8_t *open_rx(const char *ifname, int *fdp)
{
    int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: no traffic until bind */
    if (fd < 0)
        die("socket rx");
    int v = TPACKET_V3;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0)
        die("PACKET_VERSION v3");
    struct tpacket_req3 req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = RX_BLOCK_SIZE;
    req.tp_block_nr = RX_BLOCK_NR;
    req.tp_frame_size = RX_FRAME_SIZE;
    req.tp_frame_nr = (RX_BLOCK_SIZE / RX_FRAME_SIZE) * RX_BLOCK_NR;
    req.tp_retire_blk_tov = RX_TOV_MS;
    if (setsockopt(fd, SOL_PACKET, PACKET_RX_RING, &req, sizeof(req)) < 0)
        die("PACKET_RX_RING");
    uint8_t *map = mmap(NULL, (size_t)RX_BLOCK_SIZE * RX_BLOCK_NR,
                        PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED)
        die("mmap rx");
    /* Only frames arriving from the wire; ignore what the host sends out. */
    v = 1;
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &v, sizeof(v));
    if (bind_to(fd, ifname) < 0)
        die("bind rx");
    *fdp = fd;
    return map;
}

static void open_tx(const char *ifname, struct txring *t)
{
    /* protocol 0: this socket never receives, so the kernel does not clone
     * every frame on the egress interface into it. */
    int fd = socket(AF_PACKET, SOCK_RAW, 0);
    if (fd < 0)
        die("socket tx");
    int v = TPACKET_V2;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof(v)) < 0)
        die("PACKET_VERSION v2");
    v = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &v, sizeof(v)) < 0)
        die("PACKET_QDISC_BYPASS");
    if (use_mmsg) {
        t->map = NULL;
        t->buf = malloc((size_t)MMSG_MAX * TX_FRAME_SIZE);
        t->iov = calloc(MMSG_MAX, sizeof(*t->iov));
        t->msg = calloc(MMSG_MAX, sizeof(*t->msg));
        if (!t->buf || !t->iov || !t->msg)
            die("malloc");
        for (unsigned i = 0; i < MMSG_MAX; i++) {
            t->iov[i].iov_base = t->buf + (size_t)i * TX_FRAME_SIZE;
            t->msg[i].msg_hdr.msg_iov = &t->iov[i];
            t->msg[i].msg_hdr.msg_iovlen = 1;
        }
        goto bind_it;
    }
    struct tpacket_req req;
    memset(&req, 0, sizeof(req));
    req.tp_block_size = TX_BLOCK_SIZE;
    req.tp_frame_size = TX_FRAME_SIZE;
    req.tp_frame_nr = TX_FRAME_NR;
    req.tp_block_nr = TX_FRAME_NR / (TX_BLOCK_SIZE / TX_FRAME_SIZE);
    if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0)
        die("PACKET_TX_RING");
    t->map = mmap(NULL, (size_t)TX_FRAME_SIZE * TX_FRAME_NR,
                  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (t->map == MAP_FAILED)
        die("mmap tx");
bind_it:;
    struct sockaddr_ll sll;
    memset(&sll, 0, sizeof(sll));
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = 0;
    sll.sll_ifindex = (int)if_nametoindex(ifname);
    if (sll.sll_ifindex == 0) {
        fprintf(stderr, "ringfwd: no interface %s\n", ifname);
        exit(1);
    }
    if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
        die("bind tx");
    t->fd = fd;
    t->head = 0;
    t->pending = 0;
}

static void flush(struct txring *t)
{
    if (!t->pending)
        return;
    if (use_mmsg) {
        /* A full socket buffer or a refusing peer drops the rest of the
         * batch: a forwarder never waits. */
        unsigned done = 0;
        while (done < t->pending) {
            int r = sendmmsg(t->fd, t->msg + done, t->pending - done, MSG_DONTWAIT);
            if (r <= 0) {
                if (r < 0 && errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
                    die("sendmmsg");
                break;
            }
            done += (unsigned)r;
        }
        t->pending = 0;
        return;
    }
    /* One system call sends every frame marked SEND_REQUEST.  EAGAIN/ENOBUFS
     * leave frames queued; they go with the next flush. */
    if (send(t->fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != EAGAIN &&
        errno != ENOBUFS && errno != EINTR)
        die("send tx ring");
    t->pending = 0;
}

/* Copy one frame into a TX ring slot; returns 0 when the ring is full. */
static int queue_tx(struct txring *t, const uint8_t *data, unsigned len)
{
    if (len > TX_FRAME_SIZE - TPACKET2_HDRLEN)
        return 0;
    if (use_mmsg) {
        if (t->pending == MMSG_MAX)
            flush(t);
        memcpy(t->iov[t->pending].iov_base, data, len);
        t->iov[t->pending].iov_len = len;
        t->pending++;
        return 1;
    }
    struct tpacket2_hdr *h = (struct tpacket2_hdr *)(t->map + (size_t)t->head * TX_FRAME_SIZE);
    if (h->tp_status != TP_STATUS_AVAILABLE) {
        /* Ring full (or the kernel still owns the slot): push what is queued
         * and look once more before giving up on this frame. */
        t->pending = 1;
        flush(t);
        if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE)
            return 0;
    }
    uint8_t *dst = (uint8_t *)h + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
    memcpy(dst, data, len);
    h->tp_len = len;
    __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
    t->head = (t->head + 1) % TX_FRAME_NR;
    t->pending++;
    return 1;
}

/* Spread flows like a select group: FNV-1a over IPv4 src/dst and L4 ports. */
static unsigned pick_out(const uint8_t *f, unsigned len, unsigned n_out)
{
    if (n_out == 1 || len < 38 || f[12] != 0x08 || f[13] != 0x00)
        return 0;
    uint32_t h = 2166136261u;
    for (unsigned i = 26; i < 38; i++)
        h = (h ^ f[i]) * 16777619u;
    /* FNV's low bits depend only on the low bits of the input bytes; mix
     * the high bits down before taking the remainder. */
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    return h % n_out;
}

int main(int argc, char **argv)
{
    const char *in = NULL;
    const char *outs[MAX_OUT];
    unsigned n_out = 0, burst = 256;
    int opt;
    while ((opt = getopt(argc, argv, "i:o:b:m")) != -1) {
        switch (opt) {
        case 'i':
            in = optarg;
            break;
        case 'o':
            if (n_out == MAX_OUT) {
                fprintf(stderr, "ringfwd: at most %d -o\n", MAX_OUT);
                return 2;
            }
            outs[n_out++] = optarg;
            break;
        case 'b':
            burst = (unsigned)atoi(optarg);
            if (burst == 0 || burst > MMSG_MAX)
                burst = 256;
            break;
        case 'm':
            use_mmsg = 1;
            break;
        default:
            fprintf(stderr, "usage: ringfwd -i IN -o OUT [-o OUT ...] [-b BURST] [-m]\n");
            return 2;
        }
    }
    if (!in || n_out == 0) {
        fprintf(stderr, "usage: ringfwd -i IN -o OUT [-o OUT ...] [-b BURST] [-m]\n");
        return 2;
    }

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    struct txring tx[MAX_OUT];
    for (unsigned i = 0; i < n_out; i++)
        open_tx(outs[i], &tx[i]);
    int rxfd;
    uint8_t *rx = open_rx(in, &rxfd);

    uint64_t n_rx = 0, n_tx = 0, n_full = 0;
    unsigned blk = 0;
    printf("ringfwd ready\n");
    fflush(stdout);

    while (!stop_flag) {
        struct tpacket_block_desc *bd =
            (struct tpacket_block_desc *)(rx + (size_t)blk * RX_BLOCK_SIZE);
        if (!(__atomic_load_n(&bd->hdr.bh1.block_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
            struct pollfd p = {.fd = rxfd, .events = POLLIN | POLLERR};
            if (poll(&p, 1, 100) > 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL))) {
                /* The interface went away (its namespace was deleted): stop
                 * rather than spin on a socket that reports errors forever. */
                if (if_nametoindex(in) == 0) {
                    fprintf(stderr, "ringfwd: %s is gone\n", in);
                    break;
                }
                int err;
                socklen_t el = sizeof(err);
                getsockopt(rxfd, SOL_SOCKET, SO_ERROR, &err, &el); /* clears it */
            }
            continue;
        }
        unsigned n = bd->hdr.bh1.num_pkts;
        struct tpacket3_hdr *ph =
            (struct tpacket3_hdr *)((uint8_t *)bd + bd->hdr.bh1.offset_to_first_pkt);
        for (unsigned k = 0; k < n; k++) {
            const uint8_t *f = (const uint8_t *)ph + ph->tp_mac;
            unsigned len = ph->tp_snaplen;
            unsigned o = pick_out(f, len, n_out);
            if (queue_tx(&tx[o], f, len)) {
                n_tx++;
                if (tx[o].pending >= burst)
                    flush(&tx[o]);
            } else {
                n_full++;
            }
            ph = (struct tpacket3_hdr *)((uint8_t *)ph + ph->tp_next_offset);
        }
        n_rx += n;
        for (unsigned i = 0; i < n_out; i++)
            flush(&tx[i]);
        /* Hand the block back to the kernel. */
        __atomic_store_n(&bd->hdr.bh1.block_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
        blk = (blk + 1) % RX_BLOCK_NR;
    }

    struct tpacket_stats_v3 st;
    socklen_t sl = sizeof(st);
    memset(&st, 0, sizeof(st));
    getsockopt(rxfd, SOL_PACKET, PACKET_STATISTICS, &st, &sl);
    printf("ringfwd rx=%llu tx=%llu txfull=%llu kdrops=%u\n",
           (unsigned long long)n_rx, (unsigned long long)n_tx,
           (unsigned long long)n_full, st.tp_drops);
    fflush(stdout);
    return 0;
}
