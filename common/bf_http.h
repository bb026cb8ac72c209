/*  bf_http — the observability endpoint of a billflow program, on
    libmicrohttpd: GET /metrics (bf_metrics_render), /healthz (liveness,
    bf_health_live) and /readyz (readiness, bf_health_ready).

    Safety. The server runs in libmicrohttpd's own polling thread (epoll
    on Linux), never on an actor's thread, and every request is answered
    from memory (atomics and flags the actors keep): nothing on it blocks
    on PostgreSQL or on an actor. A slow or abusive client cannot stall
    it: one thread multiplexes every connection, so a client that dribbles
    its headers holds only its own connection; connections are capped in
    total (64) and per client address (8); a connection silent for 10 s is
    closed; each connection gets 16 KiB of memory, so a request whose
    headers do not fit is refused (431) instead of growing a buffer.

    Only GET and HEAD are served (anything else: 405 with `Allow: GET,
    HEAD`); any other path is 404. Nothing served carries a contact.  */

#ifndef BF_HTTP_H_INCLUDED
#define BF_HTTP_H_INCLUDED

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bf_http_t bf_http_t;

typedef struct {
    const char *address;  /* "HOST:PORT", "[IPv6]:PORT" (numeric host; port 0 = any) */
    const char *program;  /* "settle": named in the health bodies */
    int64_t stale_ms;     /* an actor busy longer than this makes /healthz 503 */
    int max_connections;  /* 0 = 64 */
    int per_ip;           /* 0 = 8 */
    int timeout_s;        /* 0 = 10 */
    size_t memory_limit;  /* per connection; 0 = 16 KiB */
} bf_http_args_t;

/*  True when text is "off" (or empty): the program serves no HTTP.  */
bool bf_http_is_off (const char *address);

/*  Checks an address setting without binding: 0, or -1 with the reason
    in err.  */
int bf_http_check_address (const char *address, char *err, size_t errsize);

/*  Binds a listening TCP socket to address ("HOST:PORT", "[IPv6]:PORT",
    numeric host; port 0 = any), for a libmicrohttpd daemon of its caller
    (bf_http_start, the console). Returns the socket (the bound port in
    *port and AF_INET or AF_INET6 in *family when not NULL), or -1 with
    the reason in err.  */
int bf_http_listen (const char *address, int *port, int *family, char *err, size_t errsize);

/*  Binds and starts serving. NULL with the reason in err (and a log
    line) when the address is bad or cannot be bound.  */
bf_http_t *bf_http_start (const bf_http_args_t *args, char *err, size_t errsize);

/*  libmicrohttpd's logger for a billflow daemon (MHD_OPTION_EXTERNAL_LOGGER):
    its messages are about clients (refused connections, parse errors), so
    they go to the debug level, and an abusive client cannot flood the
    log.  */
void bf_http_mhd_log (void *cls, const char *format, va_list args);

/*  The bound port (useful with port 0).  */
int bf_http_port (const bf_http_t *self);

/*  Stops serving and frees; safe on NULL and twice.  */
void bf_http_stop (bf_http_t **self_p);

#endif
