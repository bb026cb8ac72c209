/*  mp_http — the HTTP side: libmicrohttpd, its routes and the delayed replies.  */

#include "mp_http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_buf.h"
#include "mp_clock.h"
#include "mp_delay.h"
#include "mp_log.h"
#include "mp_message.h"
#include "mp_outage.h"
#include "mp_rand.h"
#include "mp_report.h"
#include "mp_store.h"

#define S_HTTP_IDLE_S            120
#define S_HTTP_CONNECTION_MEMORY (16 * 1024) /* per connection: headers and read buffer */

enum {
    S_ROUTE_NONE,
    S_ROUTE_MESSAGES,
    S_ROUTE_REPORT,
    S_ROUTE_CSV,
    S_ROUTE_RESET,
    S_ROUTE_OUTAGE,
    S_ROUTE_METHOD
};

/*  One HTTP request, from its headers to the completion callback (which frees it).  */
typedef struct {
    mp_delay_item_t delay; /* its place in a delay queue; holds the connection */
    int route;
    char *body;
    size_t len;
    size_t cap;
    bool too_large;
    bool reply_ready; /* a delayed reply waits in reply */
    mp_message_reply_t reply;
} s_request_t;

static const mp_config_t *s_cfg;
static struct MHD_Daemon *s_daemon;

static enum MHD_Result
s_respond (struct MHD_Connection *connection, unsigned status, const char *content_type, void *body,
           size_t len, enum MHD_ResponseMemoryMode mode, const char *extra_header,
           const char *extra_value)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (len, body, mode);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (extra_header)
        MHD_add_response_header (response, extra_header, extra_value);
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_respond_reply (struct MHD_Connection *connection, s_request_t *req)
{
    const char *type = req->reply.kind == MP_MESSAGE_GARBAGE ? "text/html" : "application/json";
    const char *header = NULL, *value = NULL;
    if (req->reply.kind == MP_MESSAGE_THROTTLE) {
        header = MHD_HTTP_HEADER_RETRY_AFTER;
        value = "1";
    } else if (req->reply.kind == MP_MESSAGE_UNAUTHORIZED) {
        header = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        value = "Bearer";
    }
    return s_respond (connection, req->reply.status, type, req->reply.text, req->reply.len,
                      MHD_RESPMEM_MUST_COPY, header, value);
}

static enum MHD_Result
s_respond_buf (struct MHD_Connection *connection, mp_buf_t *buf, const char *content_type)
{
    if (buf->oom || !buf->data) {
        free (buf->data);
        static char oom[] = "{\"error\": \"out of memory\"}";
        return s_respond (connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", oom,
                          strlen (oom), MHD_RESPMEM_PERSISTENT, NULL, NULL);
    }
    /*  The response takes the buffer and frees it.  */
    return s_respond (connection, MHD_HTTP_OK, content_type, buf->data, buf->len,
                      MHD_RESPMEM_MUST_FREE, NULL, NULL);
}

static int
s_route (const char *url, const char *method)
{
    bool get = strcmp (method, MHD_HTTP_METHOD_GET) == 0;
    bool post = strcmp (method, MHD_HTTP_METHOD_POST) == 0;
    if (strcmp (url, "/v1/messages") == 0)
        return post ? S_ROUTE_MESSAGES : S_ROUTE_METHOD;
    if (strcmp (url, "/v1/report") == 0)
        return get ? S_ROUTE_REPORT : S_ROUTE_METHOD;
    if (strcmp (url, "/v1/report/recipients") == 0)
        return get ? S_ROUTE_CSV : S_ROUTE_METHOD;
    if (strcmp (url, "/v1/reset") == 0)
        return post ? S_ROUTE_RESET : S_ROUTE_METHOD;
    if (strcmp (url, "/v1/outage") == 0)
        return post ? S_ROUTE_OUTAGE : S_ROUTE_METHOD;
    return S_ROUTE_NONE;
}

/*  POST /v1/messages, complete: decides the reply and sends it now or after the channel's
    latency.  */
static enum MHD_Result
s_messages (struct MHD_Connection *connection, s_request_t *req)
{
    mp_message_t msg = {
        .content_type
        = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
        .authorization
        = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        .key = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Idempotency-Key"),
        .body = req->body,
        .len = req->len,
        .too_large = req->too_large,
    };
    int channel = mp_message_handle (s_cfg, &msg, &req->reply);
    unsigned ms = channel >= 0 ? s_cfg->latency_ms[channel] : 0;
    if (ms > 0) {
        req->reply_ready = true;
        if (mp_delay_push (&req->delay, channel, ms))
            return MHD_YES;
    }
    return s_respond_reply (connection, req);
}

/*  A duration argument of POST /v1/outage: absent is 0; otherwise decimal milliseconds up to
    one day. Returns 0, or -1 when it is not that.  */
static int
s_duration_arg (struct MHD_Connection *connection, const char *name, unsigned *ms)
{
    const char *text = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, name);
    *ms = 0;
    if (!text)
        return 0;
    char *end = NULL;
    errno = 0;
    unsigned long value = strtoul (text, &end, 10);
    if (!*text || *end || errno || text[0] == '-' || value > 86400000UL)
        return -1;
    *ms = (unsigned)value;
    return 0;
}

/*  POST /v1/outage?channel=email&refuse_ms=N&error_ms=M: the mail server goes down now
    (mp_outage).  */
static enum MHD_Result
s_outage (struct MHD_Connection *connection)
{
    const char *channel
        = MHD_lookup_connection_value (connection, MHD_GET_ARGUMENT_KIND, "channel");
    unsigned refuse_ms, error_ms;
    const char *why = NULL;
    if (!channel || strcmp (channel, "email") != 0)
        why = "channel must be email (only the mail server can be taken down)";
    else if (s_duration_arg (connection, "refuse_ms", &refuse_ms) != 0
             || s_duration_arg (connection, "error_ms", &error_ms) != 0)
        why = "refuse_ms and error_ms must be milliseconds, 0 to 86400000";
    char text[160];
    if (why) {
        mp_log ("outage: refused: %s", why);
        int n = snprintf (text, sizeof text, "{\"error\": \"%s\"}", why);
        return s_respond (connection, MHD_HTTP_BAD_REQUEST, "application/json", text, (size_t)n,
                          MHD_RESPMEM_MUST_COPY, NULL, NULL);
    }
    mp_outage_begin (mp_clock_ms (), refuse_ms, error_ms);
    mp_log ("outage: email down now: refused for %u ms, then 554 for %u ms", refuse_ms, error_ms);
    int n = snprintf (text, sizeof text,
                      "{\"outage\": \"email\", \"refuse_ms\": %u, \"error_ms\": %u}\n", refuse_ms,
                      error_ms);
    return s_respond (connection, MHD_HTTP_OK, "application/json", text, (size_t)n,
                      MHD_RESPMEM_MUST_COPY, NULL, NULL);
}

/*  A complete request on any route.  */
static enum MHD_Result
s_dispatch (struct MHD_Connection *connection, s_request_t *req)
{
    static char not_found[] = "{\"error\": \"no such endpoint\"}";
    static char bad_method[] = "{\"error\": \"method not allowed\"}";
    static char reset_done[] = "{\"reset\": true}\n";
    mp_buf_t buf = { 0 };
    switch (req->route) {
        case S_ROUTE_MESSAGES:
            return s_messages (connection, req);
        case S_ROUTE_REPORT:
            mp_report_json (&buf);
            return s_respond_buf (connection, &buf, "application/json");
        case S_ROUTE_CSV:
            mp_report_csv (&buf);
            return s_respond_buf (connection, &buf, "text/csv");
        case S_ROUTE_RESET:
            mp_store_reset ();
            mp_rand_rewind ();
            mp_log ("reset");
            return s_respond (connection, MHD_HTTP_OK, "application/json", reset_done,
                              strlen (reset_done), MHD_RESPMEM_PERSISTENT, NULL, NULL);
        case S_ROUTE_OUTAGE:
            return s_outage (connection);
        case S_ROUTE_METHOD:
            return s_respond (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                              bad_method, strlen (bad_method), MHD_RESPMEM_PERSISTENT, NULL, NULL);
        default:
            return s_respond (connection, MHD_HTTP_NOT_FOUND, "application/json", not_found,
                              strlen (not_found), MHD_RESPMEM_PERSISTENT, NULL, NULL);
    }
}

/*  libmicrohttpd's access handler: called once after the headers, once per body chunk, then
    with no data when the request is complete — and once more after a resume.  */
static enum MHD_Result
s_http_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
    (void)cls;
    (void)version;
    s_request_t *req = *con_cls;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->delay.connection = connection;
        req->route = s_route (url, method);
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (req->route == S_ROUTE_MESSAGES && !req->too_large
            && mp_buf_bytes_add (&req->body, &req->len, &req->cap, upload_data, n,
                                 MP_MESSAGE_MAX_BODY)
                   != 0)
            req->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->reply_ready)
        return s_respond_reply (connection, req);
    return s_dispatch (connection, req);
}

static void
s_http_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                  enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)connection;
    (void)code;
    s_request_t *req = *con_cls;
    if (req) {
        free (req->body);
        free (req);
        *con_cls = NULL;
    }
}

int
mp_http_start (const mp_config_t *cfg)
{
    s_cfg = cfg;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    mp_config_sockaddr (cfg, cfg->http_port, &addr, &addr_len);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO
                     | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    s_daemon = MHD_start_daemon (
        flags, (uint16_t)cfg->http_port, NULL, NULL, s_http_handle, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, cfg->http_threads,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)S_HTTP_CONNECTION_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S_HTTP_IDLE_S,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_NOTIFY_COMPLETED, s_http_completed, NULL,
        MHD_OPTION_END);
    if (!s_daemon) {
        mp_log ("http: cannot listen on %s port %d", cfg->bind, cfg->http_port);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (s_daemon, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : cfg->http_port;
}

void
mp_http_stop (void)
{
    if (s_daemon)
        MHD_stop_daemon (s_daemon);
    s_daemon = NULL;
}
