/*  mp_http — the HTTP side: libmicrohttpd, its routes and the delayed replies.

    POST /v1/messages (mp_message decides the reply; a channel's latency delays it through
    mp_delay), GET /v1/report, GET /v1/report/recipients and POST /v1/reset. libmicrohttpd runs
    its own thread pool on epoll; the handlers never sleep.  */

#ifndef MP_HTTP_H_INCLUDED
#define MP_HTTP_H_INCLUDED

#include "mp_config.h"

/*  Starts the daemon on cfg's --bind address and --http-port, with cfg's threads and
    connection limit; mp_delay must be running. cfg must outlive the daemon. Returns the bound
    port, or -1 (logged).  */
int mp_http_start (const mp_config_t *cfg);

/*  Stops the daemon (after mp_delay_stop). Does nothing when it was not started.  */
void mp_http_stop (void);

#endif
