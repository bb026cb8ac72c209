/*  bf_zmq — ZMTP heartbeats on every ZeroMQ TCP socket between services
    (see bf_zmq.h).  */

#include "bf_zmq.h"

#include <stdatomic.h>

/*  The process's values; set once at start-up, read by every actor.  */
static atomic_int s_ivl_ms = 5000;
static atomic_int s_timeout_ms = 25000;

void
bf_zmq_configure (int heartbeat_ivl_ms, int heartbeat_timeout_ms)
{
    atomic_store (&s_ivl_ms, heartbeat_ivl_ms > 0 ? heartbeat_ivl_ms : 0);
    atomic_store (&s_timeout_ms, heartbeat_timeout_ms > 0 ? heartbeat_timeout_ms : 1);
}

void
bf_zmq_heartbeat (zsock_t *sock)
{
    int ivl = atomic_load (&s_ivl_ms), timeout = atomic_load (&s_timeout_ms);
    if (ivl <= 0)
        return;
    zsock_set_heartbeat_ivl (sock, ivl);
    zsock_set_heartbeat_timeout (sock, timeout);
    /*  The TTL travels in deciseconds, at most 6553.5 s.  */
    zsock_set_heartbeat_ttl (sock, timeout < 6553500 ? timeout : 6553500);
}
