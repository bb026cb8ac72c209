/*  bf_console — the console's HTTP server (bf_console.h).

    A request's life: the first call of s_handle matches the route and
    refuses what can be refused from the headers (404, 405, 413 by
    Content-Length); the next calls collect the body up to the cap; the
    last one answers from memory or hands a job to a worker and suspends
    the connection. The worker fills the request's answer and resumes the
    connection; libmicrohttpd then calls s_handle once more, which queues
    the answer.  */

#include <czmq.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bf_assets.h"
#include "bf_console.h"
#include "bf_console_metrics.h"
#include "bf_curve.h"
#include "bf_health.h"
#include "bf_http.h"
#include "bf_log.h"
#include "bf_login.h"
#include "bf_overview.h"
#include "bf_route.h"
#include "bf_secfile.h"
#include "bf_text.h"
#include "bf_uuid.h"
#include "bf_workq.h"

#define S_COOKIE      "bf_session"
#define S_CSRF_HEADER "X-CSRF-Token"
#define S_CSP                                                                                      \
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self';"               \
    " connect-src 'self'; frame-ancestors 'none'"
#define S_JSON         "application/json; charset=utf-8"
#define S_MEMORY_LIMIT (32 * 1024) /* per connection: request line and headers */
#define S_TLS_FILE_MAX (256 * 1024)
#define S_DRAIN_FACTOR 4 /* a body past the cap is read (and dropped) up to 4 caps */
#define S_XFF_KEPT     4096 /* the tail of X-Forwarded-For read (bf_proxy walks 32 hops) */

struct bf_console_t {
    bf_console_args_t args;
    struct MHD_Daemon *daemon;
    int port;
    bool tls;
    char *tls_cert, *tls_key; /* PEM text, kept while the daemon runs */
    bf_login_t *login;
    bf_overview_t *overview;
    bf_workq_t *control, *logins;
    atomic_bool stopping;
};

typedef enum { S_NEW, S_BODY, S_WAITING, S_DONE } s_state_t;

/*  One request, from its first call to its answer (con_cls).  */
typedef struct {
    bf_console_t *owner;
    struct MHD_Connection *connection;
    bf_route_t route;
    int route_status;
    s_state_t state;
    bool answered; /* a response is queued: later calls only drop the body */
    char *body;
    size_t body_len, body_size;
    size_t received; /* body bytes received, kept or not */
    bool too_big;
    char address[INET6_ADDRSTRLEN];
    /*  The job's input.  */
    bf_session_t session;
    char name[65], password[1025];
    char command_id[BF_ROUTE_ID_MAX + 1];
    bf_route_args_t args;
    char arg_error[200];
    /*  The answer.  */
    unsigned int status;
    char *answer; /* malloc'd */
    const char *type;
    char cookie[160];
    int retry_after_s;
} s_request_t;

static const char *
s_route_word (const s_request_t *req)
{
    static const char *const words[]
        = { "index", "static", "login", "logout", "me", "query", "command", "overview", "events" };
    return req->route_status ? "other" : words[req->route.kind];
}

/*  The headers every answer carries.  */
static void
s_headers (struct MHD_Response *response, bool cacheable)
{
    MHD_add_response_header (response, MHD_HTTP_HEADER_CACHE_CONTROL,
                             cacheable ? "max-age=300" : "no-store");
    MHD_add_response_header (response, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (response, "Referrer-Policy", "no-referrer");
    MHD_add_response_header (response, "X-Frame-Options", "DENY");
    MHD_add_response_header (response, "Content-Security-Policy", S_CSP);
}

/*  Queues body (owned: freed by libmicrohttpd) with the status.  */
static enum MHD_Result
s_send (s_request_t *req, unsigned int status, const char *type, char *body, size_t len, bool owned,
        bool cacheable)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (
        len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!response) {
        if (owned)
            free (body);
        return MHD_NO;
    }
    s_headers (response, cacheable);
    if (type)
        MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (req->cookie[0])
        MHD_add_response_header (response, MHD_HTTP_HEADER_SET_COOKIE, req->cookie);
    if (req->retry_after_s > 0) {
        char value[16];
        snprintf (value, sizeof value, "%d", req->retry_after_s);
        MHD_add_response_header (response, MHD_HTTP_HEADER_RETRY_AFTER, value);
    }
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, MHD_HTTP_HEADER_ALLOW,
                                 req->route.kind == BF_ROUTE_LOGIN
                                         || req->route.kind == BF_ROUTE_LOGOUT
                                         || req->route.kind == BF_ROUTE_COMMAND
                                     ? "POST"
                                 : req->route.kind == BF_ROUTE_QUERY ? "GET, HEAD, POST"
                                                                     : "GET, HEAD");
    bf_console_metrics_request (s_route_word (req), status);
    req->answered = true;
    enum MHD_Result rc = MHD_queue_response (req->connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_json (s_request_t *req, unsigned int status, char *text)
{
    if (!text)
        return s_send (req, MHD_HTTP_INTERNAL_SERVER_ERROR, S_JSON,
                       (char *)"{\"error\":\"out of memory\"}", 25, false, false);
    return s_send (req, status, S_JSON, text, strlen (text), true, false);
}

static enum MHD_Result
s_error (s_request_t *req, unsigned int status, const char *message)
{
    if (!req->route.api && status == MHD_HTTP_NOT_FOUND)
        return s_send (req, status, "text/plain; charset=utf-8", (char *)"not found\n", 10, false,
                       false);
    return s_json (req, status, bf_route_error_json (message));
}

/*  Sets the answer of a job (worker thread) and resumes the connection.  */
static void
s_finish (s_request_t *req, unsigned int status, char *answer)
{
    req->status = status;
    req->answer = answer;
    req->state = S_DONE;
    MHD_resume_connection (req->connection);
}

//  ---------------------------------------------------------------------
//  Jobs (worker threads)

static void
s_login_job (void *job, void *context)
{
    (void)context;
    s_request_t *req = job;
    bf_console_t *self = req->owner;
    if (atomic_load (&self->stopping)) {
        explicit_bzero (req->password, sizeof req->password);
        req->retry_after_s = 5;
        s_finish (req, MHD_HTTP_SERVICE_UNAVAILABLE, bf_route_error_json ("console stopping"));
        return;
    }
    char token[BF_SESSION_TOKEN_HEX];
    bf_session_t session;
    int rc = bf_login_check (self->login, req->name, req->password, req->address, zclock_time (),
                             token, &session);
    explicit_bzero (req->password, sizeof req->password);
    if (rc == BF_LOGIN_OK) {
        bool secure = self->tls || self->args.cookie_secure;
        snprintf (req->cookie, sizeof req->cookie,
                  S_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s", token,
                  secure ? "; Secure" : "");
        sodium_memzero (token, sizeof token);
        bf_console_metrics_login ("ok");
        json_t *root = json_pack ("{s:s, s:s, s:s}", "name", session.name, "role", session.role,
                                  "csrf", session.csrf);
        s_finish (req, MHD_HTTP_OK, root ? json_dumps (root, JSON_COMPACT) : NULL);
        json_decref (root);
        return;
    }
    if (rc == BF_LOGIN_LIMITED) {
        int64_t wait = bf_login_wait_ms (self->login, req->name, req->address, zclock_time ());
        req->retry_after_s = (int)(wait / 1000) + 1;
        bf_console_metrics_login ("limited");
        s_finish (req, MHD_HTTP_TOO_MANY_REQUESTS,
                  bf_route_error_json ("too many failed logins; try again later"));
        return;
    }
    bf_console_metrics_login (rc == BF_LOGIN_WRONG ? "wrong" : "bad_request");
    s_finish (req, rc == BF_LOGIN_WRONG ? MHD_HTTP_UNAUTHORIZED : MHD_HTTP_INTERNAL_SERVER_ERROR,
              bf_route_error_json (rc == BF_LOGIN_WRONG ? "wrong name or password"
                                                        : "cannot open a session"));
}

/*  The answer to a query or command control answered.  */
static void
s_answered (s_request_t *req, const Billflow__CommandReply *reply)
{
    const bf_verb_t *verb = req->route.verb;
    if (req->route.kind == BF_ROUTE_QUERY) {
        int status = bf_route_query_status (reply, verb, req->session.role);
        /*  control's "busy" names its wait (retry_after_ms): the browser
            gets it, in whole seconds, as Retry-After.  */
        if (status == 503)
            req->retry_after_s
                = reply->retry_after_ms ? (int)((reply->retry_after_ms + 999) / 1000) : 2;
        if (status == 200)
            s_finish (req, 200, strdup (reply->result && *reply->result ? reply->result : "null"));
        else
            s_finish (req, (unsigned)status, bf_route_error_json (reply->error));
        return;
    }
    bool refused = bf_route_refused (reply, verb, req->session.role);
    char *text = bf_route_command_json (reply);
    bf_info ("console: %s (%s) sent %s %s: %s%s", req->session.name, req->session.role, verb->verb,
             req->command_id,
             refused           ? "refused"
             : reply->replayed ? "replayed "
                               : "",
             refused ? "" : bf_client_status_name (reply->status));
    s_finish (req, refused ? MHD_HTTP_FORBIDDEN : MHD_HTTP_OK, text);
}

static void
s_control_job (void *job, void *context)
{
    s_request_t *req = job;
    bf_client_t *client = context;
    bf_console_t *self = req->owner;
    req->retry_after_s = 5;
    if (atomic_load (&self->stopping) || !client) {
        s_finish (req, MHD_HTTP_SERVICE_UNAVAILABLE,
                  bf_route_error_json (client ? "console stopping" : "control unreachable"));
        return;
    }
    const char *keys[BF_ROUTE_ARGS_MAX], *values[BF_ROUTE_ARGS_MAX];
    bf_route_arg_arrays (&req->args, keys, values);
    Billflow__CommandReply *reply = NULL;
    char err[256];
    /*  A slow query is asked once, with a long timeout: each resend would
        queue another report behind it.  */
    bool slow = req->route.verb->slow;
    if (slow)
        bf_client_timeout (client, self->args.report_timeout_ms, 0);
    int rc = bf_client_behalf (client, req->session.name, req->session.role) == 0
                 ? bf_client_request (client, req->command_id, req->route.verb->target,
                                      req->route.verb->verb, req->args.count, keys, values, &reply,
                                      NULL, err, sizeof err)
                 : BF_CLIENT_ERROR;
    if (slow)
        bf_client_timeout (client, self->args.client.timeout_ms, self->args.client.retries);
    if (rc == BF_CLIENT_ANSWERED) {
        req->retry_after_s = 0;
        s_answered (req, reply);
    } else {
        bf_warn ("console: %s %s for %s: control did not answer (%s)", req->route.verb->verb,
                 req->command_id, req->session.name, rc == BF_CLIENT_ERROR ? err : "no answer");
        s_finish (req, MHD_HTTP_SERVICE_UNAVAILABLE, bf_route_error_json ("control unreachable"));
    }
    if (reply)
        billflow__command_reply__free_unpacked (reply, NULL);
}

static void *
s_client_new (void *arg)
{
    const bf_client_args_t *args = arg;
    char err[256];
    bf_client_t *client = bf_client_new (args, err, sizeof err);
    if (!client)
        bf_error ("console: cannot make a client of control: %s", err);
    return client;
}

static void
s_client_destroy (void *context)
{
    bf_client_t *client = context;
    bf_client_destroy (&client);
}

/*  Hands req to queue and suspends its connection; a full queue is 503.  */
static enum MHD_Result
s_submit (s_request_t *req, bf_workq_t *queue, bf_workq_fn *fn)
{
    req->state = S_WAITING;
    MHD_suspend_connection (req->connection);
    if (bf_workq_submit (queue, fn, req) == 0)
        return MHD_YES;
    MHD_resume_connection (req->connection);
    req->state = S_NEW;
    bf_console_metrics_queue_full ();
    req->retry_after_s = 2;
    return s_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "the console is busy; try again");
}

//  ---------------------------------------------------------------------
//  Routes (libmicrohttpd's thread)

static enum MHD_Result
s_static (s_request_t *req)
{
    const bf_asset_t *asset
        = bf_assets_find (req->route.kind == BF_ROUTE_INDEX ? "index.html" : req->route.name);
    if (!asset)
        return s_error (req, MHD_HTTP_NOT_FOUND, "not found");
    return s_send (req, MHD_HTTP_OK, bf_assets_type (asset->name), (char *)asset->data, asset->size,
                   false, req->route.kind == BF_ROUTE_STATIC);
}

static enum MHD_Result
s_login (s_request_t *req)
{
    bf_console_t *self = req->owner;
    char err[200];
    if (bf_route_login_body (req->body ? req->body : "", req->body_len, req->name, req->password,
                             err, sizeof err)
        != 0) {
        bf_warn ("console: bad login request from %s: %s", req->address, err);
        bf_console_metrics_login ("bad_request");
        return s_error (req, MHD_HTTP_BAD_REQUEST, err);
    }
    int64_t wait = bf_login_wait_ms (self->login, req->name, req->address, zclock_time ());
    if (wait > 0) {
        explicit_bzero (req->password, sizeof req->password);
        bf_warn ("console: login refused (rate limit) for %s from %s",
                 bf_curve_name_valid (req->name) ? req->name : "an invalid name", req->address);
        bf_console_metrics_login ("limited");
        req->retry_after_s = (int)(wait / 1000) + 1;
        return s_error (req, MHD_HTTP_TOO_MANY_REQUESTS, "too many failed logins; try again later");
    }
    return s_submit (req, self->logins, s_login_job);
}

/*  The session of the request's cookie into req->session: true when it
    is live.  */
static bool
s_session (s_request_t *req)
{
    const char *token = MHD_lookup_connection_value (req->connection, MHD_COOKIE_KIND, S_COOKIE);
    return token
           && bf_sessions_touch (bf_login_sessions (req->owner->login), token, zclock_time (),
                                 &req->session);
}

/*  True when the request's session may send one more query or command
    (console.session_rate): else it is answered 429 with Retry-After and
    never reaches a worker or control, so one session's flood leaves the
    console key's budget at control and the worker queues to the other
    operators. Warns at most once per session per 10 s, with the user's
    name (never the token) and how many were refused.  */
static bool
s_session_rate_ok (s_request_t *req)
{
    const char *token = MHD_lookup_connection_value (req->connection, MHD_COOKIE_KIND, S_COOKIE);
    int wait_ms = 0;
    uint64_t refused = 0;
    if (!token
        || bf_sessions_take (bf_login_sessions (req->owner->login), token, zclock_time (), &wait_ms,
                             &refused))
        return true;
    if (refused)
        bf_warn ("console: session of %s from %s is over its rate (%d/s, burst %d): %llu"
                 " request(s) refused since the last warning",
                 req->session.name, req->address, req->owner->args.session_rate,
                 req->owner->args.session_burst, (unsigned long long)refused);
    bf_console_metrics_session_limited ();
    req->retry_after_s = (wait_ms + 999) / 1000;
    return false;
}

static bool
s_csrf_ok (s_request_t *req)
{
    const char *csrf
        = MHD_lookup_connection_value (req->connection, MHD_HEADER_KIND, S_CSRF_HEADER);
    return bf_session_csrf_ok (&req->session, csrf);
}

static enum MHD_Result
s_me (s_request_t *req)
{
    json_t *root = json_pack ("{s:s, s:s, s:s, s:I, s:I}", "name", req->session.name, "role",
                              req->session.role, "csrf", req->session.csrf, "idle_expires_ms",
                              (json_int_t)req->session.idle_expires_ms, "absolute_expires_ms",
                              (json_int_t)req->session.absolute_expires_ms);
    char *text = root ? json_dumps (root, JSON_COMPACT) : NULL;
    json_decref (root);
    return s_json (req, MHD_HTTP_OK, text);
}

static enum MHD_Result
s_logout (s_request_t *req)
{
    const char *token = MHD_lookup_connection_value (req->connection, MHD_COOKIE_KIND, S_COOKIE);
    bf_sessions_close (bf_login_sessions (req->owner->login), token);
    bool secure = req->owner->tls || req->owner->args.cookie_secure;
    snprintf (req->cookie, sizeof req->cookie,
              S_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
              secure ? "; Secure" : "");
    bf_info ("console: %s logged out", req->session.name);
    return s_send (req, MHD_HTTP_NO_CONTENT, NULL, (char *)"", 0, false, false);
}

static enum MHD_Result
s_arg (void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size, const char *value,
       size_t value_size)
{
    (void)kind;
    s_request_t *req = cls;
    if (req->arg_error[0])
        return MHD_NO;
    if (bf_route_arg_add (&req->args, key, key_size, value, value_size, req->arg_error,
                          sizeof req->arg_error)
        != 0)
        return MHD_NO;
    return MHD_YES;
}

/*  A query: its arguments from the query string (GET), or from the body
    (POST, {"args": {...}}: an email or a phone stays out of URLs and so
    out of access logs); a POST with a query string is refused. The
    reasons logged and answered quote no value.  */
static enum MHD_Result
s_query (s_request_t *req)
{
    memset (&req->args, 0, sizeof req->args);
    MHD_get_connection_values_n (req->connection, MHD_GET_ARGUMENT_KIND, s_arg, req);
    if (req->route.post && !req->arg_error[0]) {
        if (req->args.count > 0)
            snprintf (req->arg_error, sizeof req->arg_error,
                      "a POSTed query takes its arguments in the body only");
        else
            bf_route_query_body (req->body ? req->body : "", req->body_len, &req->args,
                                 req->arg_error, sizeof req->arg_error);
    }
    if (req->arg_error[0]) {
        bf_warn ("console: bad query %s from %s (%s): %s", req->route.verb->verb, req->address,
                 req->session.name, req->arg_error);
        return s_error (req, MHD_HTTP_BAD_REQUEST, req->arg_error);
    }
    bf_uuid_v4 (req->command_id);
    return s_submit (req, req->owner->control, s_control_job);
}

static enum MHD_Result
s_command (s_request_t *req)
{
    char err[200];
    /*  The arguments' forms are checked here only for a person who may send
        the verb: a viewer's command goes to control whatever its
        arguments, so that the refusal is audited.  */
    if (bf_route_command_body (req->body ? req->body : "", req->body_len, req->command_id,
                               &req->args, err, sizeof err)
            != 0
        || (bf_verb_allowed (req->route.verb, req->session.role)
            && bf_route_command_args_check (&req->args, zclock_time (), err, sizeof err) != 0)) {
        bf_warn ("console: bad %s request from %s (%s): %s", req->route.verb->verb, req->address,
                 req->session.name, err);
        return s_error (req, MHD_HTTP_BAD_REQUEST, err);
    }
    return s_submit (req, req->owner->control, s_control_job);
}

static enum MHD_Result
s_events (s_request_t *req)
{
    const char *token = MHD_lookup_connection_value (req->connection, MHD_COOKIE_KIND, S_COOKIE);
    struct MHD_Response *response
        = bf_overview_stream (req->owner->overview, req->connection, token);
    if (!response) {
        req->retry_after_s = 5;
        return s_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "too many event streams open");
    }
    s_headers (response, false);
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    bf_console_metrics_request ("events", MHD_HTTP_OK);
    req->answered = true;
    enum MHD_Result rc = MHD_queue_response (req->connection, MHD_HTTP_OK, response);
    MHD_destroy_response (response);
    return rc;
}

/*  Every /api/ route after login: a live session, and for POST the CSRF
    token.  */
static enum MHD_Result
s_api (s_request_t *req)
{
    if (!s_session (req))
        return s_error (req, MHD_HTTP_UNAUTHORIZED, "not logged in");
    bool post = req->route.kind == BF_ROUTE_LOGOUT || req->route.kind == BF_ROUTE_COMMAND
                || (req->route.kind == BF_ROUTE_QUERY && req->route.post);
    if (post && !s_csrf_ok (req)) {
        bf_warn ("console: %s from %s (%s) without the right CSRF token", s_route_word (req),
                 req->address, req->session.name);
        return s_error (req, MHD_HTTP_FORBIDDEN, "missing or wrong CSRF token");
    }
    if ((req->route.kind == BF_ROUTE_QUERY || req->route.kind == BF_ROUTE_COMMAND)
        && !s_session_rate_ok (req))
        return s_error (req, MHD_HTTP_TOO_MANY_REQUESTS,
                        "too many requests from this session; try again later");
    switch (req->route.kind) {
        case BF_ROUTE_LOGOUT:
            return s_logout (req);
        case BF_ROUTE_ME:
            return s_me (req);
        case BF_ROUTE_QUERY:
            return s_query (req);
        case BF_ROUTE_COMMAND:
            return s_command (req);
        case BF_ROUTE_OVERVIEW: {
            size_t len = 0;
            char *text = bf_overview_snapshot (req->owner->overview, &len);
            return text ? s_send (req, MHD_HTTP_OK, S_JSON, text, len, true, false)
                        : s_json (req, MHD_HTTP_OK, NULL);
        }
        case BF_ROUTE_EVENTS:
            return s_events (req);
        default:
            return s_error (req, MHD_HTTP_NOT_FOUND, "not found");
    }
}

/*  The last call: the body is complete.  */
static enum MHD_Result
s_dispatch (s_request_t *req)
{
    if (req->route_status == 404)
        return s_error (req, MHD_HTTP_NOT_FOUND, "not found");
    if (req->route_status == 405)
        return s_error (req, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
    if (req->route_status)
        return s_error (req, MHD_HTTP_URI_TOO_LONG, "the path is too long");
    char err[200];
    if (req->too_big
        || bf_route_body_check (req->body ? req->body : "", req->body_len,
                                req->owner->args.max_body, err, sizeof err)
               != 0) {
        bool big = req->too_big || req->body_len > req->owner->args.max_body;
        bf_warn ("console: %s from %s refused: %s", s_route_word (req), req->address,
                 big ? "the body is too large" : err);
        return s_error (req, big ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_BAD_REQUEST,
                        big ? "the body is too large" : err);
    }
    switch (req->route.kind) {
        case BF_ROUTE_INDEX:
        case BF_ROUTE_STATIC:
            return s_static (req);
        case BF_ROUTE_LOGIN:
            return s_login (req);
        default:
            return s_api (req);
    }
}

/*  Every X-Forwarded-For line joined with ",", its last S_XFF_KEPT
    bytes kept (the walk reads the right end only).  */
typedef struct {
    char text[S_XFF_KEPT + 1];
    size_t len;
} s_xff_t;

static enum MHD_Result
s_xff_line (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    s_xff_t *xff = cls;
    if (!key || !value || strcasecmp (key, "X-Forwarded-For"))
        return MHD_YES;
    size_t add = strlen (value);
    const char *from = value;
    if (add >= S_XFF_KEPT) {
        from = value + add - S_XFF_KEPT;
        add = S_XFF_KEPT;
        xff->len = 0;
    }
    size_t need = xff->len + (xff->len ? 1 : 0) + add;
    if (need > S_XFF_KEPT) {
        size_t drop = need - S_XFF_KEPT;
        memmove (xff->text, xff->text + drop, xff->len - drop);
        xff->len -= drop;
    }
    if (xff->len)
        xff->text[xff->len++] = ',';
    memcpy (xff->text + xff->len, from, add);
    xff->len += add;
    xff->text[xff->len] = 0;
    return MHD_YES;
}

/*  The client's address: the peer's, or behind a trusted proxy the one
    X-Forwarded-For names (bf_proxy.h). It is what the failed-login
    limit counts and what the log lines name.  */
static void
s_address (s_request_t *req)
{
    const union MHD_ConnectionInfo *info
        = MHD_get_connection_info (req->connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    snprintf (req->address, sizeof req->address, "unknown");
    if (!info || !info->client_addr)
        return;
    char peer[INET6_ADDRSTRLEN] = "unknown";
    const struct sockaddr *sa = info->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop (AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, peer, sizeof peer);
    else if (sa->sa_family == AF_INET6)
        inet_ntop (AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, peer, sizeof peer);
    const bf_proxies_t *proxies = &req->owner->args.proxies;
    if (proxies->count == 0 || !bf_proxies_trusted (proxies, peer)) {
        snprintf (req->address, sizeof req->address, "%s", peer);
        return;
    }
    s_xff_t *xff = calloc (1, sizeof *xff);
    if (xff)
        MHD_get_connection_values (req->connection, MHD_HEADER_KIND, s_xff_line, xff);
    bf_proxies_client (proxies, peer, xff && xff->len ? xff->text : NULL, req->address,
                       sizeof req->address);
    free (xff);
}

/*  The first call: the route, and a body announced too large.  */
static enum MHD_Result
s_begin (bf_console_t *self, struct MHD_Connection *connection, const char *url, const char *method,
         void **con_cls)
{
    s_request_t *req = calloc (1, sizeof *req);
    if (!req)
        return MHD_NO;
    req->owner = self;
    req->connection = connection;
    req->route_status = bf_route_match (method, url, &req->route);
    s_address (req);
    *con_cls = req;
    req->state = S_BODY;
    const char *length
        = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (length && strtoull (length, NULL, 10) > self->args.max_body) {
        req->too_big = true;
        return s_dispatch (req);
    }
    return MHD_YES;
}

/*  A piece of the body: kept up to the cap, the rest dropped.  */
static void
s_body (s_request_t *req, const char *data, size_t size)
{
    size_t max = req->owner->args.max_body;
    if (req->too_big || req->body_len + size > max) {
        req->too_big = true;
        return;
    }
    if (req->body_len + size + 1 > req->body_size) {
        size_t grown = req->body_size ? req->body_size * 2 : 1024;
        while (grown < req->body_len + size + 1)
            grown *= 2;
        char *body = realloc (req->body, grown);
        if (!body) {
            req->too_big = true;
            return;
        }
        req->body = body;
        req->body_size = grown;
    }
    memcpy (req->body + req->body_len, data, size);
    req->body_len += size;
    req->body[req->body_len] = 0;
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void)version;
    bf_console_t *self = cls;
    s_request_t *req = *con_cls;
    if (!req)
        return s_begin (self, connection, url, method, con_cls);
    if (req->answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->state == S_DONE) {
        req->state = S_NEW;
        char *answer = req->answer;
        req->answer = NULL;
        return s_json (req, req->status, answer);
    }
    if (*upload_data_size) {
        req->received += *upload_data_size;
        s_body (req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        /*  libmicrohttpd takes an answer only before the body or after
            all of it: a body past the cap (chunked: its length was not
            announced) is dropped as it comes and answered 413 at its end;
            one that goes on past S_DRAIN_FACTOR times the cap is cut off
            (the connection is closed).  */
        if (req->received > S_DRAIN_FACTOR * req->owner->args.max_body) {
            bf_warn ("console: %s from %s: a body of over %zu bytes cut off", s_route_word (req),
                     req->address, S_DRAIN_FACTOR * req->owner->args.max_body);
            return MHD_NO;
        }
        return MHD_YES;
    }
    if (req->state == S_WAITING)
        return MHD_YES;
    return s_dispatch (req);
}

static void
s_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)connection;
    (void)toe;
    s_request_t *req = *con_cls;
    if (req) {
        if (req->body) {
            explicit_bzero (req->body, req->body_len);
            free (req->body);
        }
        explicit_bzero (req->password, sizeof req->password);
        free (req->answer);
        free (req);
        *con_cls = NULL;
    }
}

//  ---------------------------------------------------------------------
//  Set-up

int
bf_console_args_from_config (bf_console_args_t *args, const bf_config_t *config, char *err,
                             size_t errsize)
{
    memset (args, 0, sizeof *args);
    args->listen = bf_config_str (config, "console.listen");
    args->users_file = bf_config_str (config, "console.users_file");
    args->tls_cert = bf_config_str (config, "console.tls_cert");
    args->tls_key = bf_config_str (config, "console.tls_key");
    args->cookie_secure = bf_config_bool (config, "console.cookie_secure");
    args->client.endpoints = bf_config_str (config, "control.endpoint");
    args->client.server_key = bf_config_str (config, "control.server_key");
    args->client.key_file = bf_config_str (config, "console.key_file");
    args->client.timeout_ms = (int)bf_config_int (config, "console.request_timeout_ms");
    args->client.retries = (int)bf_config_int (config, "console.request_retries");
    args->client.wait_ms = (int)bf_config_int (config, "console.command_wait_ms");
    args->report_timeout_ms = (int)bf_config_int (config, "console.report_timeout_ms");
    args->control_threads = (int)bf_config_int (config, "console.control_threads");
    args->login_threads = (int)bf_config_int (config, "console.login_threads");
    args->queue_max = (size_t)bf_config_int (config, "console.queue_max");
    args->session_idle_ms = bf_config_int (config, "console.session_idle_s") * 1000;
    args->session_absolute_ms = bf_config_int (config, "console.session_absolute_s") * 1000;
    args->max_sessions = (size_t)bf_config_int (config, "console.max_sessions");
    args->session_rate = (int)bf_config_int (config, "console.session_rate");
    args->session_burst = (int)bf_config_int (config, "console.session_burst");
    args->login_limit = (int)bf_config_int (config, "console.login_limit");
    args->login_limit_address = (int)bf_config_int (config, "console.login_limit_address");
    args->login_window_ms = bf_config_int (config, "console.login_window_s") * 1000;
    args->max_connections = (int)bf_config_int (config, "console.max_connections");
    args->per_ip_connections = (int)bf_config_int (config, "console.per_ip_connections");
    args->timeout_s = (int)bf_config_int (config, "console.connection_timeout_s");
    args->max_body = (size_t)bf_config_int (config, "console.max_body_bytes");
    args->poll_ms = (int)bf_config_int (config, "console.poll_ms");
    args->max_streams = (size_t)bf_config_int (config, "console.max_streams");
    if (bf_proxies_parse (&args->proxies, bf_config_str (config, "console.trusted_proxies"), err,
                          errsize)
        != 0)
        return -1;
    if (!*args->users_file)
        return bf_err_set (err, errsize,
                           "console.users_file is required (make it with `console adduser`)");
    if (!*args->client.endpoints)
        return bf_err_set (err, errsize, "control.endpoint is required: the console asks control");
    if (!*args->client.server_key || !*args->client.key_file)
        return bf_err_set (err, errsize,
                           "console.key_file and control.server_key are both required: the"
                           " console is a CURVE client of control (docs/control.md)");
    if (!*args->tls_cert != !*args->tls_key)
        return bf_err_set (err, errsize, "console.tls_cert and console.tls_key go together");
    if (bf_http_check_address (args->listen, err, errsize) != 0 || bf_http_is_off (args->listen))
        return bf_err_set (err, errsize, "console.listen must be HOST:PORT (numeric host)");
    return 0;
}

/*  Reads a PEM file (at most S_TLS_FILE_MAX); a key file's mode is
    checked as a secret's. NULL with the reason in err.  */
static char *
s_read_pem (const char *path, const char *what, bool secret, char *err, size_t errsize)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        bf_err_set (err, errsize, "cannot open %s %s: %s", what, path, strerror (errno));
        return NULL;
    }
    char *text = NULL;
    if (!secret || bf_secfile_check (fd, what, path, err, errsize) == 0) {
        text = calloc (1, S_TLS_FILE_MAX + 1);
        ssize_t n = text ? read (fd, text, S_TLS_FILE_MAX + 1) : -1;
        if (n <= 0 || n > S_TLS_FILE_MAX) {
            bf_err_set (err, errsize, "%s %s: empty, unreadable or larger than %d bytes", what,
                        path, S_TLS_FILE_MAX);
            free (text);
            text = NULL;
        }
    }
    close (fd);
    return text;
}

static int
s_start_daemon (bf_console_t *self, char *err, size_t errsize)
{
    int port = 0, family = AF_INET;
    int fd = bf_http_listen (self->args.listen, &port, &family, err, errsize);
    if (fd < 0)
        return -1;
    self->port = port;
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME
                         | MHD_USE_ERROR_LOG;
    if (family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (self->tls)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem tls_options[] = {
        { self->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, self->tls_cert },
        { MHD_OPTION_HTTPS_MEM_KEY, 0, self->tls_key },
        { MHD_OPTION_END, 0, NULL },
    };
    self->daemon = MHD_start_daemon (
        flags, 0, NULL, NULL, s_handle, self, MHD_OPTION_EXTERNAL_LOGGER, bf_http_mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)self->args.max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)self->args.per_ip_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)self->args.timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)S_MEMORY_LIMIT, MHD_OPTION_NOTIFY_COMPLETED, s_completed, self, MHD_OPTION_ARRAY,
        tls_options, MHD_OPTION_END);
    if (!self->daemon) {
        close (fd);
        return bf_err_set (err, errsize, "cannot start the HTTP server on %s%s", self->args.listen,
                           self->tls ? " (is the TLS certificate and key a pair?)" : "");
    }
    return 0;
}

/*  An event stream's session is still live (bf_overview_args_t.live).  */
static bool
s_stream_live (void *context, const char *token)
{
    bf_console_t *self = context;
    return bf_sessions_live (bf_login_sessions (self->login), token, zclock_time ());
}

bf_console_t *
bf_console_new (const bf_console_args_t *args, char *err, size_t errsize)
{
    bf_console_t *self = calloc (1, sizeof *self);
    if (!self) {
        bf_err_set (err, errsize, "out of memory");
        return NULL;
    }
    self->args = *args;
    atomic_init (&self->stopping, false);
    bf_console_metrics_init ();
    self->tls = args->tls_cert && *args->tls_cert;
    if (self->tls) {
        self->tls_cert = s_read_pem (args->tls_cert, "TLS certificate", false, err, errsize);
        self->tls_key = self->tls_cert
                            ? s_read_pem (args->tls_key, "TLS key file", true, err, errsize)
                            : NULL;
        if (!self->tls_key)
            goto failed;
    }
    bf_login_args_t login = {
        .users_file = args->users_file,
        .max_sessions = args->max_sessions,
        .idle_ms = args->session_idle_ms,
        .absolute_ms = args->session_absolute_ms,
        .limit_name = args->login_limit,
        .limit_address = args->login_limit_address,
        .window_ms = args->login_window_ms,
    };
    self->login = bf_login_new (&login, err, errsize);
    if (!self->login)
        goto failed;
    bf_sessions_set_rate (bf_login_sessions (self->login), args->session_rate,
                          args->session_burst);
    bf_overview_args_t overview = {
        .client = args->client,
        .interval_ms = args->poll_ms,
        .ping_ms = 15000,
        .max_streams = args->max_streams,
    };
    overview.client.retries = 0; /* the next round asks again */
    overview.live = s_stream_live;
    overview.live_context = self;
    self->overview = bf_overview_new (&overview, err, errsize);
    if (!self->overview)
        goto failed;
    /*  Ready (/readyz) when control answers the poller: the console has
        no database (main says so), reaching control is what it needs.  */
    bf_health_ready_add ("control", bf_overview_ready, self->overview);
    bf_workq_args_t control = {
        .name = "control",
        .threads = args->control_threads,
        .queue_max = args->queue_max,
        .context_new = s_client_new,
        .context_destroy = s_client_destroy,
        .arg = &self->args.client,
    };
    bf_workq_args_t logins
        = { .name = "login", .threads = args->login_threads, .queue_max = args->queue_max };
    self->control = bf_workq_new (&control);
    self->logins = bf_workq_new (&logins);
    if (!self->control || !self->logins) {
        bf_err_set (err, errsize, "cannot start the console's threads");
        goto failed;
    }
    if (s_start_daemon (self, err, errsize) != 0)
        goto failed;
    bf_info ("console: serving %s on %s (port %d)", self->tls ? "HTTPS" : "HTTP", args->listen,
             self->port);
    return self;
failed:
    bf_console_destroy (&self);
    return NULL;
}

int
bf_console_port (const bf_console_t *self)
{
    return self ? self->port : 0;
}

void
bf_console_destroy (bf_console_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bf_console_t *self = *self_p;
    atomic_store (&self->stopping, true);
    if (self->overview)
        bf_overview_end_streams (self->overview);
    /*  Every queued job runs (answering 503 now) and resumes its
        connection before the daemon stops: libmicrohttpd must not stop
        with a connection suspended.  */
    bf_workq_destroy (&self->control);
    bf_workq_destroy (&self->logins);
    if (self->daemon)
        MHD_stop_daemon (self->daemon);
    if (self->overview)
        bf_health_ready_remove ("control");
    bf_overview_destroy (&self->overview);
    bf_login_destroy (&self->login);
    if (self->tls_key) {
        explicit_bzero (self->tls_key, strlen (self->tls_key));
        free (self->tls_key);
    }
    free (self->tls_cert);
    free (self);
    *self_p = NULL;
}
