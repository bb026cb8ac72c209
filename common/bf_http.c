/*  bf_http — /metrics, /healthz and /readyz on libmicrohttpd.

    We bind the listening socket ourselves (for exact error messages) and
    hand it to libmicrohttpd, which serves it from one internal polling
    thread. Handlers answer from memory only.  */

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bf_health.h"
#include "bf_http.h"
#include "bf_log.h"
#include "bf_metrics.h"

struct bf_http_t {
    struct MHD_Daemon *daemon;
    int port;
    int64_t stale_ms;
    char program[32];
    bf_series_t *requests[4]; /* metrics, healthz, readyz, other */
};

bool
bf_http_is_off (const char *address)
{
    return !address || !*address || !strcmp (address, "off");
}

/*  Parses "HOST:PORT" / "[V6]:PORT" (numeric host) into addr.  */
static int
s_parse (const char *text, struct sockaddr_storage *addr, socklen_t *addrlen, char *err,
         size_t errsize)
{
    char host[64];
    const char *colon;
    memset (addr, 0, sizeof *addr);
    if (!text || !*text)
        return bf_err_set (err, errsize, "empty address");
    if (text[0] == '[') {
        const char *close = strchr (text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            return bf_err_set (err, errsize, "'%s' is not [IPv6]:PORT", text);
        memcpy (host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = 0;
        colon = close + 1;
    } else {
        colon = strrchr (text, ':');
        if (!colon || (size_t)(colon - text) >= sizeof host || colon == text)
            return bf_err_set (err, errsize, "'%s' is not HOST:PORT (or off)", text);
        memcpy (host, text, (size_t)(colon - text));
        host[colon - text] = 0;
    }
    char *end;
    errno = 0;
    long port = strtol (colon + 1, &end, 10);
    if (colon[1] == 0 || *end || errno || port < 0 || port > 65535 || colon[1] == '-'
        || colon[1] == '+')
        return bf_err_set (err, errsize, "'%s': port must be 0..65535", text);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton (AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons ((uint16_t)port);
        *addrlen = sizeof *v4;
    } else if (inet_pton (AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons ((uint16_t)port);
        *addrlen = sizeof *v6;
    } else
        return bf_err_set (err, errsize, "'%s': host must be a numeric IPv4 or IPv6 address",
                           text);
    return 0;
}

int
bf_http_check_address (const char *address, char *err, size_t errsize)
{
    if (bf_http_is_off (address))
        return 0;
    struct sockaddr_storage addr;
    socklen_t len = 0;
    return s_parse (address, &addr, &len, err, errsize);
}

static enum MHD_Result
s_reply (struct MHD_Connection *connection, unsigned int status, const char *type, char *body,
         size_t len, bool owned)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!response) {
        if (owned)
            free (body);
        return MHD_NO;
    }
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_text (struct MHD_Connection *connection, unsigned int status, const char *text)
{
    return s_reply (connection, status, "text/plain; charset=utf-8", (char *)text, strlen (text),
                    false);
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    bf_http_t *self = cls;
    int which = !strcmp (url, "/metrics")   ? 0
                : !strcmp (url, "/healthz") ? 1
                : !strcmp (url, "/readyz")  ? 2
                                            : 3;
    bf_counter_inc (self->requests[which]);
    if (strcmp (method, MHD_HTTP_METHOD_GET) && strcmp (method, MHD_HTTP_METHOD_HEAD))
        return s_text (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
    if (which == 0) {
        size_t len;
        char *text = bf_metrics_render (&len);
        if (!text)
            return s_text (connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
        return s_reply (connection, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text,
                        len, true);
    }
    if (which == 1 || which == 2) {
        char lines[4096], body[4200];
        bool ok = which == 1 ? bf_health_live (self->stale_ms, lines, sizeof lines)
                             : bf_health_ready (lines, sizeof lines);
        snprintf (body, sizeof body, "%s %s\n%s", self->program,
                  which == 1 ? (ok ? "live" : "NOT LIVE") : (ok ? "ready" : "NOT READY"), lines);
        return s_text (connection, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, body);
    }
    return s_text (connection, MHD_HTTP_NOT_FOUND, "not found: try /metrics, /healthz, /readyz\n");
}

/*  libmicrohttpd's own messages (refused connections, parse errors) are
    about clients, not about us: debug level, so an abusive client cannot
    flood the log.  */
void
bf_http_mhd_log (void *cls, const char *format, va_list args)
{
    (void)cls;
    if (bf_log_enabled (BF_LOG_DEBUG)) {
        char text[512];
        vsnprintf (text, sizeof text, format, args);
        bf_debug ("http: %s", text);
    }
}

int
bf_http_listen (const char *address, int *port, int *family, char *err, size_t errsize)
{
    struct sockaddr_storage addr;
    socklen_t addrlen = 0;
    if (s_parse (address, &addr, &addrlen, err, errsize) != 0)
        return -1;
    int fd = socket (addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0
        || bind (fd, (struct sockaddr *)&addr, addrlen) != 0 || listen (fd, 128) != 0) {
        bf_err_set (err, errsize, "cannot listen on %s: %s", address, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    struct sockaddr_storage bound;
    socklen_t boundlen = sizeof bound;
    getsockname (fd, (struct sockaddr *)&bound, &boundlen);
    if (port)
        *port = ntohs (bound.ss_family == AF_INET ? ((struct sockaddr_in *)&bound)->sin_port
                                                  : ((struct sockaddr_in6 *)&bound)->sin6_port);
    if (family)
        *family = addr.ss_family;
    return fd;
}

bf_http_t *
bf_http_start (const bf_http_args_t *args, char *err, size_t errsize)
{
    int port = 0, af = AF_INET;
    int fd = bf_http_listen (args->address, &port, &af, err, errsize);
    if (fd < 0) {
        bf_error ("http: %s", err);
        return NULL;
    }
    bf_http_t *self = calloc (1, sizeof *self);
    if (!self) {
        close (fd);
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    self->port = port;
    self->stale_ms = args->stale_ms > 0 ? args->stale_ms : 60000;
    snprintf (self->program, sizeof self->program, "%s", args->program ? args->program : "");
    bf_metrics_init ();
    bf_metric_t *family = bf_metrics_counter ("billflow_http_requests_total",
                                              "Requests to the observability endpoint by path.",
                                              "path");
    static const char *const paths[] = { "/metrics", "/healthz", "/readyz", "other" };
    for (int i = 0; i < 4; i++)
        self->requests[i] = bf_metric_series (family, paths[i]);

    unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (af == AF_INET6)
        flags |= MHD_USE_IPv6;
    self->daemon = MHD_start_daemon (
        flags, 0, NULL, NULL, s_handle, self, MHD_OPTION_EXTERNAL_LOGGER, bf_http_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)(args->max_connections > 0 ? args->max_connections : 64),
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)(args->per_ip > 0 ? args->per_ip : 8),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)(args->timeout_s > 0 ? args->timeout_s : 10),
        MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)(args->memory_limit > 0 ? args->memory_limit : 16 * 1024),
        MHD_OPTION_END);
    if (!self->daemon) {
        close (fd);
        free (self);
        bf_err_set (err, errsize, "cannot start the HTTP server on %s", args->address);
        bf_error ("http: %s", err);
        return NULL;
    }
    bf_info ("http: serving /metrics, /healthz, /readyz on %s (port %d)", args->address,
             self->port);
    return self;
}

int
bf_http_port (const bf_http_t *self)
{
    return self ? self->port : 0;
}

void
bf_http_stop (bf_http_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bf_http_t *self = *self_p;
    /*  Stopping closes the listening socket we handed over.  */
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}
