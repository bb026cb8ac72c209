/*  mp_delay — HTTP replies that are due later (the channels' latency).

    A handler that must answer later suspends its libmicrohttpd connection here instead of
    sleeping; one delay thread resumes each connection when its reply is due, and libmicrohttpd
    then calls the handler again to send it. So thousands of delayed requests can be in flight
    and no worker waits. One FIFO per channel: a channel's latency is fixed, so each queue is in
    due order. Thread-safe.  */

#ifndef MP_DELAY_H_INCLUDED
#define MP_DELAY_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

struct MHD_Connection;

/*  A place in the queue, kept inside the caller's request.  */
typedef struct mp_delay_item {
    struct mp_delay_item *next;
    struct MHD_Connection *connection; /* suspended while queued */
    int64_t due_ns;                    /* mp_clock_ns time */
} mp_delay_item_t;

/*  Starts the delay thread. Returns 0, or -1 (logged).  */
int mp_delay_start (void);

/*  Suspends item's connection and resumes it ms from now (channel picks the queue). Returns
    false when shutting down: the caller replies at once.  */
bool mp_delay_push (mp_delay_item_t *item, int channel, unsigned ms);

/*  Resumes every queued connection now, refuses further pushes and joins the thread. The
    libmicrohttpd daemon must not be stopped before: it must not hold suspended connections.  */
void mp_delay_stop (void);

#endif
