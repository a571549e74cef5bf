/* port_tap.h - the TAP port provider: a vdp_port over a Linux TAP device,
 * so the host's own stack (or a VM/container on the TAP) is a switch port.
 *
 * Called by ext/ports.pxi (TapPort) to open/close and by engine.c through the
 * vdp_port ops vtable.  The device is opened with IFF_VNET_HDR and
 * TUNSETOFFLOAD (checksum + TSO/USO), so the host hands us partial-checksum
 * and GSO frames with their virtio_net_hdr, and we hand them back the same
 * way: nothing is checksummed or segmented in user space. */
#ifndef VDP_PORT_TAP_H
#define VDP_PORT_TAP_H

#include <stddef.h>
#include "vdp_types.h"

/* Open TAP `name`.  If it does not exist and create is set, create it
 * (non-persistent: it disappears when the port is closed); if it exists,
 * attach to it (and leave it in place on close).  The link is set up.
 * Returns NULL with errno set and a message in err on failure. */
vdp_port *vdp_tap_open(const char *name, int create, char *err, size_t errlen);
/* True when p was made by vdp_tap_open. */
int vdp_tap_is(const vdp_port *p);
/* True when vdp_tap_open created the device (close() removes it). */
int vdp_tap_created(const vdp_port *p);

#endif
