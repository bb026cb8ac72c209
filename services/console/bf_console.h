/*  bf_console — the console's HTTP server: the web UI's files and the JSON
    API of the HTTP contract (services/console/README.md), on
    libmicrohttpd.

    Threading. One libmicrohttpd thread (epoll) serves every connection
    and never waits: files, sessions and the overview snapshot are
    answered from memory; a login (argon2id) goes to the login threads and
    a query or command to the control threads (bf_workq.h), each with its
    own client of control; the connection is suspended meanwhile and
    resumed with the answer. A slow client holds only its own connection
    (connection and per-address limits, an idle timeout, a body cap,
    libmicrohttpd's per-connection memory for headers), and a full work
    queue is answered 503 at once.

    Sessions and logins: bf_session.h, bf_throttle.h, bf_users.h.  */

#ifndef BF_CONSOLE_H_INCLUDED
#define BF_CONSOLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf_client.h"
#include "bf_config.h"
#include "bf_proxy.h"

typedef struct {
    const char *listen;     /* "HOST:PORT" */
    const char *users_file; /* required */
    const char *tls_cert;   /* PEM files; "" or NULL: plain HTTP */
    const char *tls_key;
    bool cookie_secure;      /* Secure cookies without tls_cert */
    bf_client_args_t client; /* control: endpoints, server key, the console's key */
    int report_timeout_ms;   /* a slow query's (bf_verb_t.slow), asked once */
    int control_threads;     /* clients of control */
    int login_threads;       /* password checks */
    size_t queue_max;        /* jobs waiting at most, per kind */
    int64_t session_idle_ms, session_absolute_ms;
    size_t max_sessions;
    int session_rate, session_burst; /* each session's queries and commands */
    int login_limit, login_limit_address;
    int64_t login_window_ms;
    int max_connections, per_ip_connections, timeout_s;
    size_t max_body;
    int poll_ms;
    size_t max_streams;
    bf_proxies_t proxies; /* console.trusted_proxies: X-Forwarded-For believed from these */
} bf_console_args_t;

/*  Fills args from config (strings point into config). Returns 0, or -1
    with the reason in err (a missing required setting, a key file
    without control.server_key, a bad address).  */
int bf_console_args_from_config (bf_console_args_t *args, const bf_config_t *config, char *err,
                                 size_t errsize);

typedef struct bf_console_t bf_console_t;

/*  Loads the users file (and the TLS files), binds args->listen, starts
    the workers, the overview poller and the server. NULL with the reason
    in err.  */
bf_console_t *bf_console_new (const bf_console_args_t *args, char *err, size_t errsize);

/*  The bound port (useful with port 0).  */
int bf_console_port (const bf_console_t *self);

/*  Ends the event streams, answers every waiting request (503), stops
    the server and the workers, frees. Safe on NULL and twice.  */
void bf_console_destroy (bf_console_t **self_p);

#endif
