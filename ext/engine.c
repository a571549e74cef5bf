/* engine.c - the burst loop: ports -> pipeline -> ports.
 *
 * Called from ext/ports.pxi (engine thread via vdp_engine_run, one pass via
 * vdp_engine_poll), always with the GIL released.
 *
 * A pass: snapshot the attached ports (under dp->lock), poll() their fds
 * without the lock, then under the lock: one burst per ready port (rx_burst,
 * vdp_dp_process_burst, rx_release) and a tx_flush of every port, so each
 * port's TX ring is kicked once per pass whatever number of frames the
 * bursts sent it.  Everything that touches a port happens under the lock,
 * and ports are looked up again after poll(): the control plane may detach
 * (and close) a port while we sleep.
 *
 * Buffers are per thread and allocated once (static __thread), so a pass
 * does no allocation; the pipeline's own scratch buffers do the rest. */
#include <errno.h>
#include <poll.h>
#include <time.h>
#include <sys/socket.h>
#include "engine.h"

/* A port whose fd reports an error with nothing to read (its interface was
 * deleted, a TAP detached) would make poll() return at once forever: such a
 * port sits out of the poll set for this long, then is tried again. */
#define ENG_MUTE_NS 100000000ull

#define ENG_MAX (VDP_MAX_PORTS + 1)     /* 1..VDP_MAX_PORTS-1, plus LOCAL */

typedef struct engine_ctx {
    vdp_pkt       pkts[VDP_BURST];
    struct pollfd pfd[ENG_MAX];         /* ports with an fd */
    uint32_t      pfd_port[ENG_MAX];    /* their OpenFlow numbers */
    vdp_port     *pfd_ptr[ENG_MAX];     /* and the port seen at snapshot time */
    uint32_t      nofd_port[ENG_MAX];   /* ports without an fd (DummyPort) */
    int           npfd, nnofd;
    uint64_t      mute_until[ENG_MAX];  /* by slot (see slot()) */
} engine_ctx;

static __thread engine_ctx ctx;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline uint32_t slot(uint32_t ofport)
{
    return ofport < VDP_MAX_PORTS ? ofport : VDP_MAX_PORTS;   /* LOCAL last */
}

/* Lock held.  One burst from p through the pipeline: frames, or -1 when
 * the port reported a fatal error. */
static int burst(vdp_dp *dp, vdp_port *p, uint64_t now)
{
    int n = p->ops->rx_burst(p, ctx.pkts, VDP_BURST);
    if (n > 0) {
        for (int i = 0; i < n; i++)
            ctx.pkts[i].in_port = p->ofport;
        vdp_dp_process_burst(dp, ctx.pkts, n, now);
    }
    if (p->ops->rx_release)
        p->ops->rx_release(p);          /* also after 0: blocks may be spent */
    return n;
}

/* Lock held.  Record the attached ports (muted ones left out). */
static void snapshot(vdp_dp *dp, uint64_t now)
{
    uint32_t max = vdp_dp_max_port(dp);
    ctx.npfd = ctx.nnofd = 0;
    if (max >= VDP_MAX_PORTS)
        max = VDP_MAX_PORTS - 1;
    for (uint32_t i = 1; i <= max + 1; i++) {
        uint32_t no = i <= max ? i : VDP_OFPP_LOCAL;
        vdp_port *p = vdp_dp_port(dp, no);
        if (!p)
            continue;
        if (p->fd >= 0) {
            if (ctx.mute_until[slot(no)] > now)
                continue;
            ctx.pfd[ctx.npfd].fd = p->fd;
            ctx.pfd[ctx.npfd].events = POLLIN;
            ctx.pfd[ctx.npfd].revents = 0;
            ctx.pfd_port[ctx.npfd] = no;
            ctx.pfd_ptr[ctx.npfd] = p;
            ctx.npfd++;
        } else {
            ctx.nofd_port[ctx.nnofd++] = no;
        }
    }
}

/* Lock held.  tx_flush every attached port. */
static void flush_all(vdp_dp *dp)
{
    uint32_t max = vdp_dp_max_port(dp);
    if (max >= VDP_MAX_PORTS)
        max = VDP_MAX_PORTS - 1;
    for (uint32_t i = 1; i <= max + 1; i++) {
        vdp_port *p = vdp_dp_port(dp, i <= max ? i : VDP_OFPP_LOCAL);
        if (p && p->ops->tx_flush)
            p->ops->tx_flush(p);
    }
}

/* One pass.  use_poll = 0: skip poll() and try every port (busy mode). */
static int pass(vdp_dp *dp, int timeout_ms, int use_poll)
{
    int total = 0;
    uint64_t now = now_ns();

    vdp_dp_lock(dp);
    snapshot(dp, now);
    for (int i = 0; i < ctx.nnofd; i++) {
        vdp_port *p = vdp_dp_port(dp, ctx.nofd_port[i]);
        int n = p ? burst(dp, p, now) : 0;
        if (n > 0)
            total += n;
    }
    vdp_dp_unlock(dp);

    if (use_poll) {
        /* With no fd to wait on (only DummyPorts, or all muted) this just
         * sleeps: an idle engine must not spin. */
        int r = poll(ctx.pfd, (nfds_t)ctx.npfd, total ? 0 : timeout_ms);
        if (r < 0) {
            if (errno != EINTR)
                return -1;
            for (int i = 0; i < ctx.npfd; i++)
                ctx.pfd[i].revents = 0;
        }
        now = now_ns();
    }
    /* Go on even after a timeout: the flush below also sends what the
     * control plane queued meanwhile (packet-out). */

    vdp_dp_lock(dp);
    for (int i = 0; i < ctx.npfd; i++) {
        short rev = ctx.pfd[i].revents;
        if (use_poll && !rev)
            continue;
        vdp_port *p = vdp_dp_port(dp, ctx.pfd_port[i]);
        if (p != ctx.pfd_ptr[i] || p->fd < 0)
            continue;                   /* detached or replaced meanwhile */
        int n = (!use_poll || (rev & (POLLIN | POLLERR))) ? burst(dp, p, now) : 0;
        if (n > 0) {
            total += n;
        } else if (n < 0 || (use_poll && (rev & (POLLERR | POLLHUP | POLLNVAL)))) {
            /* Error and nothing to read.  Reading SO_ERROR clears a
             * socket's pending error (ENETDOWN after a link flap). */
            int e;
            socklen_t el = sizeof e;
            getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &e, &el);
            ctx.mute_until[slot(ctx.pfd_port[i])] = now + ENG_MUTE_NS;
        }
    }
    flush_all(dp);
    vdp_dp_unlock(dp);
    return total;
}

void vdp_engine_flush(vdp_dp *dp)
{
    vdp_dp_lock(dp);
    flush_all(dp);
    vdp_dp_unlock(dp);
}

int vdp_engine_poll(vdp_dp *dp, int timeout_ms)
{
    return pass(dp, timeout_ms, 1);
}

void vdp_engine_run(vdp_dp *dp, volatile int *stop)
{
    uint64_t last_work = now_ns();
    while (!*stop) {
        /* Busy while frames came recently: reading a ring's block status
         * costs nothing next to a poll() system call. */
        int busy = now_ns() - last_work < VDP_ENGINE_SPIN_NS;
        int n = pass(dp, VDP_ENGINE_SLEEP_MS, !busy);
        if (n > 0)
            last_work = now_ns();
    }
}
