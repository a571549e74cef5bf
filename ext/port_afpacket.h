/* port_afpacket.h - the AF_PACKET port provider (a vdp_port over a Linux
 * network interface: veth, NIC), plus the small netdev helpers (index, MTU,
 * MAC, admin up) that the TAP provider shares.
 *
 * Called by ext/ports.pxi (AfPacketPort) to open/close ports and by engine.c
 * through the vdp_port ops vtable for the burst I/O.
 *
 * RX: TPACKET_V3 ring with PACKET_VNET_HDR, so each frame comes with its
 * offload state (partial checksum, GSO super-frame) and VLAN tags the kernel
 * took out of the frame are put back.  TX (PACKET_QDISC_BYPASS,
 * PACKET_VNET_HDR): a TPACKET_V2 ring kicked once per burst, or (option) a
 * copy buffer sent with one sendmmsg per burst; frames too
 * large for either (GSO super-frames) go out with one sendmsg each, after
 * the queued ones, so per-port order holds. */
#ifndef VDP_PORT_AFPACKET_H
#define VDP_PORT_AFPACKET_H

#include <stddef.h>
#include <stdint.h>
#include "vdp_types.h"

/* Both providers' port structs start with this, so code that holds a
 * vdp_port of either kind can find the interface name. */
typedef struct vdp_ifport {
    vdp_port port;
    char     ifname[16];      /* IFNAMSIZ */
} vdp_ifport;

/* How frames go out (vdp_afp_opts.tx_mode). */
#define VDP_AFP_TX_AUTO 0     /* the default: the ring */
#define VDP_AFP_TX_RING 1     /* TPACKET_V2 TX ring, one send() per burst */
#define VDP_AFP_TX_MMSG 2     /* copy buffer + one sendmmsg() per burst */

/* Tunables; zero fields take the defaults (see port_afpacket.c). */
typedef struct vdp_afp_opts {
    uint32_t rx_block_size;   /* bytes, page multiple; >= largest frame */
    uint32_t rx_block_nr;
    uint32_t rx_block_tov_ms; /* retire a partly filled block after this */
    uint32_t tx_frame_nr;     /* TX ring slots / sendmmsg batch */
    int      tx_mode;         /* VDP_AFP_TX_* */
    int      no_vnet;         /* 1: no PACKET_VNET_HDR (measurement only) */
    int      no_qdisc_bypass; /* 1: TX through the qdisc layer */
} vdp_afp_opts;

/* Open a port on interface `ifname`.  Returns NULL on failure with errno
 * set and a message in err.  The port's ofport is 0 until attached. */
vdp_port *vdp_afp_open(const char *ifname, const vdp_afp_opts *opts,
                       char *err, size_t errlen);
/* True when p was made by vdp_afp_open. */
int vdp_afp_is(const vdp_port *p);
/* The TX mode the port ended up with (VDP_AFP_TX_RING or _MMSG). */
int vdp_afp_tx_mode(const vdp_port *p);
/* Interface name of an AF_PACKET or TAP port. */
static inline const char *vdp_port_ifname(const vdp_port *p)
{
    return ((const vdp_ifport *)p)->ifname;
}
/* Set the interface administratively up or down (SIOCSIFFLAGS) and record
 * it in p->link_up.  0 or -1 with errno. */
int vdp_port_set_link_up(vdp_port *p, int up);
/* Fold the kernel's drop counter (PACKET_STATISTICS, which resets on read)
 * into p->stats.rx_dropped.  Call from the thread that runs the port. */
void vdp_afp_update_stats(vdp_port *p);

/* ---- netdev helpers (AF_PACKET and TAP) -------------------------------- */
/* Each returns 0 / the value, or -1 with errno set. */
int vdp_netdev_ifindex(const char *ifname);
int vdp_netdev_mtu(const char *ifname);
int vdp_netdev_hwaddr(const char *ifname, uint8_t mac[6]);
int vdp_netdev_set_up(const char *ifname, int up);
int vdp_netdev_is_up(const char *ifname);

/* Turn a vdp_pkt's offload state into a virtio_net_hdr (10 bytes, native
 * little-endian as AF_PACKET and TAP use it).  Fills csum_start/offset from
 * the parsed offsets when the source left them zero. */
struct virtio_net_hdr;
void vdp_pkt_to_vnet(const vdp_pkt *pkt, struct virtio_net_hdr *vh);
/* The reverse, for frames read with a virtio_net_hdr in front. */
void vdp_vnet_to_pkt(const struct virtio_net_hdr *vh, vdp_pkt *pkt);

#endif
