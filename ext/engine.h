/* engine.h - the burst loop that moves frames from every attached port
 * through the pipeline and out again.
 *
 * Called by ext/ports.pxi: engine_start runs vdp_engine_run in a Python
 * thread with the GIL released; engine_poll (tests, poll_once) runs one
 * vdp_engine_poll pass.  Both may run at once on one dp: every port access
 * happens with dp->lock held, so passes serialize per burst. */
#ifndef VDP_ENGINE_H
#define VDP_ENGINE_H

#include "vdp_dp.h"

/* How long vdp_engine_run keeps polling the rings without sleeping after
 * the last frame, and how long one poll() sleeps at most (also the bound
 * on how long a stop request waits). */
#define VDP_ENGINE_SPIN_NS   50000
#define VDP_ENGINE_SLEEP_MS  10

/* One pass: poll() the ports' fds (ports without an fd, like DummyPort,
 * are always tried) for up to timeout_ms, then one rx burst from each ready
 * port through vdp_dp_process_burst, then tx_flush on every port.  Returns
 * the frames received, or -1 if poll() failed (errno set). */
int vdp_engine_poll(vdp_dp *dp, int timeout_ms);

/* tx_flush every attached port (takes dp->lock).  For the control plane
 * after it queued frames itself (packet-out): AF_PACKET ports hold frames
 * until a flush, and an idle engine flushes only every VDP_ENGINE_SLEEP_MS. */
void vdp_engine_flush(vdp_dp *dp);

/* Passes until *stop becomes non-zero.  While traffic flows it skips poll()
 * and reads the rings directly; after VDP_ENGINE_SPIN_NS without a frame it
 * sleeps in poll(). */
void vdp_engine_run(vdp_dp *dp, volatile int *stop);

#endif
