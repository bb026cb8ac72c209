/*  Integration: the console (services/console) on the real stack — control,
    settle, notify and the mock provider — through HTTP, as a browser
    would use it:
    - the pages and their security headers; log in, query, start a run by
      POST and see it finish; a resubmitted command_id runs once and says
      "replayed";
    - a viewer's forged command: 403, and control audits console/NAME;
      a POST without the CSRF token: 403; logout ends the session;
    - the overview snapshot and its event streams: one poll a second
      however many streams are open;
    - hostile input (oversized and chunked bodies, invalid UTF-8 in the
      query string and the body, hostile keys, huge headers) answered
      with the right status, and 200 open connections, slowloris clients
      and a stream that never reads while another client is still answered
      quickly;
    - repeated wrong passwords: 429, per name and per address; behind the
      trusted proxy, per X-Forwarded-For client (ignored from others);
    - /readyz: ready while control answers (no PostgreSQL check), 503
      naming control while it is gone;
    - HTTPS served directly with console.tls_cert (a certificate made here
      with GnuTLS), the cookie then Secure;
    - every button of the run and notices pages in the shape its page
      sends it (stop, resume, pause and resume dispatch, retry selected,
      schedule and cancel): answered, stored and applied once, its effect
      seen, a replay marked, a viewer's refused and audited, no CSRF 403;
      and hostile arguments for them answered 400 with a log line;
    - and every response body of the test is scanned for the dataset's
      emails and phone numbers: none may appear in clear.  */

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "bf_pii.h"
#include "bf_testdb.h"
#include "bf_testjson.h"
#include "bf_testproc.h"
#include "bf_teststack.h"

#define PERIOD      "2026-10"
#define SUBSCRIBERS 200
#define KIM_PW      "kim's long password"
#define LEE_PW      "lee's long password"
#define PARK_PW     "park's long password"

static bf_stack_t s_stack;
static bf_proc_t s_console;
static int s_port, s_http_port;

/*  The dataset's clear contacts, and how many response bodies were
    scanned for them.  */
static char **s_contacts;
static size_t s_ncontacts;
static size_t s_scanned;
static char s_email[256], s_phone[64]; /* subscriber 1's */

typedef struct {
    char cookie[96]; /* "bf_session=HEX" */
    char csrf[80];
} s_session_t;

static s_session_t s_kim, s_lee;

//  --------------------------------------------------------------------------
//  Contacts

static void
s_add_contact (const char *text)
{
    if (!*text)
        return;
    s_contacts = realloc (s_contacts, (s_ncontacts + 1) * sizeof *s_contacts);
    s_contacts[s_ncontacts++] = strdup (text);
}

/*  Every subscriber's clear email and phone (and the phone's digits), opened
    here with the test's PII key.  */
static void
s_load_contacts (void)
{
    char err[256];
    bf_pii_t *pii = bf_pii_new (BF_TEST_PII_KEY, err, sizeof err);
    assert_non_null (pii);
    PGresult *res = PQexec (s_stack.conn, "SELECT id, email_enc, phone_enc FROM subscriber"
                                          " ORDER BY id");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    for (int row = 0; row < PQntuples (res); row++) {
        uint64_t id = strtoull (PQgetvalue (res, row, 0), NULL, 10);
        for (int col = 1; col <= 2; col++) {
            if (PQgetisnull (res, row, col))
                continue;
            size_t len = 0;
            unsigned char *sealed
                = PQunescapeBytea ((const unsigned char *)PQgetvalue (res, row, col), &len);
            char plain[256];
            const char *field = col == 1 ? "email" : "phone";
            assert_true (bf_pii_open (pii, field, id, sealed, len, plain, sizeof plain) > 0);
            PQfreemem (sealed);
            s_add_contact (plain);
            if (col == 2) {
                char digits[64];
                size_t n = 0;
                for (const char *p = plain; *p && n + 1 < sizeof digits; p++)
                    if (*p >= '0' && *p <= '9')
                        digits[n++] = *p;
                digits[n] = 0;
                if (strcmp (digits, plain))
                    s_add_contact (digits);
            }
            if (row == 0)
                snprintf (col == 1 ? s_email : s_phone, col == 1 ? sizeof s_email : sizeof s_phone,
                          "%s", plain);
        }
    }
    PQclear (res);
    bf_pii_destroy (&pii);
    assert_true (s_ncontacts >= SUBSCRIBERS);
    assert_true (*s_email && *s_phone);
}

/*  Fails the test when text holds a clear contact of the dataset.  */
static void
s_scan (const char *what, const char *text, size_t len)
{
    (void)len;
    for (size_t i = 0; i < s_ncontacts; i++)
        if (strstr (text, s_contacts[i]))
            fail_msg ("%s: a contact in clear (%s) in: %.300s", what, s_contacts[i], text);
    s_scanned++;
}

//  --------------------------------------------------------------------------
//  HTTP

typedef struct {
    long status;
    char *body;
    size_t len;
    char headers[8192];
    size_t hlen;
    int64_t ms; /* how long it took */
} s_resp_t;

static size_t
s_collect (char *data, size_t size, size_t n, void *arg)
{
    s_resp_t *resp = arg;
    size_t bytes = size * n;
    resp->body = realloc (resp->body, resp->len + bytes + 1);
    memcpy (resp->body + resp->len, data, bytes);
    resp->len += bytes;
    resp->body[resp->len] = 0;
    return bytes;
}

static size_t
s_header (char *data, size_t size, size_t n, void *arg)
{
    s_resp_t *resp = arg;
    size_t bytes = size * n;
    if (resp->hlen + bytes < sizeof resp->headers) {
        memcpy (resp->headers + resp->hlen, data, bytes);
        resp->hlen += bytes;
        resp->headers[resp->hlen] = 0;
    }
    return bytes;
}

typedef struct {
    const char *method; /* NULL: GET, or POST when body is set */
    const char *body;
    size_t body_len;            /* 0: strlen (body) */
    const s_session_t *session; /* cookie and, with csrf, the header */
    bool csrf;                  /* send session->csrf */
    const char *csrf_value;     /* send this X-CSRF-Token instead */
    const char *source;         /* local address to connect from */
    const char *extra;          /* one more header line */
    long timeout_ms;            /* 0: 30 s */
    int port;                   /* 0: the console's */
} s_req_t;

/*  One request; the body is scanned for contacts. The caller frees
    resp->body.  */
static long
s_http (const char *path, const s_req_t *req, s_resp_t *resp)
{
    memset (resp, 0, sizeof *resp);
    resp->body = calloc (1, 1);
    CURL *curl = curl_easy_init ();
    char url[2048];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", req && req->port ? req->port : s_port,
              path);
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, req && req->timeout_ms ? req->timeout_ms : 30000L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    struct curl_slist *headers = NULL;
    char line[600];
    if (req && req->session && req->session->cookie[0]) {
        snprintf (line, sizeof line, "Cookie: %s", req->session->cookie);
        headers = curl_slist_append (headers, line);
    }
    const char *csrf = req ? (req->csrf_value             ? req->csrf_value
                              : req->csrf && req->session ? req->session->csrf
                                                          : NULL)
                           : NULL;
    if (csrf) {
        snprintf (line, sizeof line, "X-CSRF-Token: %s", csrf);
        headers = curl_slist_append (headers, line);
    }
    if (req && req->extra)
        headers = curl_slist_append (headers, req->extra);
    if (req && req->body) {
        headers = curl_slist_append (headers, "Content-Type: application/json");
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE,
                          (long)(req->body_len ? req->body_len : strlen (req->body)));
    }
    if (req && req->method)
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, req->method);
    if (req && req->source)
        curl_easy_setopt (curl, CURLOPT_INTERFACE, req->source);
    headers = curl_slist_append (headers, "Expect:");
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    int64_t start = bf_stack_now_ms ();
    CURLcode rc = curl_easy_perform (curl);
    resp->ms = bf_stack_now_ms () - start;
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (rc != CURLE_OK && rc != CURLE_OPERATION_TIMEDOUT)
        resp->status = -1;
    curl_slist_free_all (headers);
    curl_easy_cleanup (curl);
    s_scan (path, resp->body, resp->len);
    s_scan (path, resp->headers, resp->hlen);
    return resp->status;
}

/*  The end of a process's log, for a failure's message.  */
static void
s_log_tail (const char *name, const char *path)
{
    char *text = bf_test_slurp (path);
    if (text) {
        size_t len = strlen (text);
        print_error ("--- end of %s ---\n%s\n", name, text + (len > 4000 ? len - 4000 : 0));
        free (text);
    }
}

/*  GET or POST path and asserts the status; returns the parsed body (NULL
    when it is not JSON).  */
static json_t *
s_expect (const char *path, const s_req_t *req, long want)
{
    s_resp_t resp;
    long status = s_http (path, req, &resp);
    if (status != want) {
        s_log_tail ("the console's log", s_console.log);
        s_log_tail ("control's log", s_stack.control[0].log);
        fail_msg ("%s: status %ld, want %ld: %.500s", path, status, want, resp.body);
    }
    json_t *doc = json_loads (resp.body, JSON_DECODE_ANY, NULL);
    free (resp.body);
    return doc;
}

/*  Asserts an error answer: status and part of {"error"}.  */
static void
s_expect_error (const char *path, const s_req_t *req, long want, const char *part)
{
    json_t *doc = s_expect (path, req, want);
    const char *error = json_string_value (json_object_get (doc, "error"));
    if (!error || !strstr (error, part))
        fail_msg ("%s: error '%s' lacks '%s'", path, error ? error : "(none)", part);
    json_decref (doc);
}

static bool
s_has_header (const s_resp_t *resp, const char *line)
{
    return strcasestr (resp->headers, line) != NULL;
}

/*  Logs name in (200) at the console on port (0: the suite's), keeping
    the cookie and the CSRF token.  */
static void
s_login_at (int port, const char *name, const char *password, s_session_t *session)
{
    char body[256];
    snprintf (body, sizeof body, "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
    s_req_t req = { .body = body, .port = port };
    s_resp_t resp;
    assert_int_equal (s_http ("/api/login", &req, &resp), 200);
    const char *cookie = strcasestr (resp.headers, "Set-Cookie: bf_session=");
    assert_non_null (cookie);
    cookie += strlen ("Set-Cookie: ");
    size_t n = strcspn (cookie, ";\r\n");
    assert_true (n < sizeof session->cookie);
    memcpy (session->cookie, cookie, n);
    session->cookie[n] = 0;
    assert_non_null (strstr (cookie, "; HttpOnly"));
    assert_non_null (strstr (cookie, "; SameSite=Strict"));
    json_t *doc = json_loads (resp.body, 0, NULL);
    assert_non_null (doc);
    assert_string_equal (bf_json_str (doc, "name"), name);
    snprintf (session->csrf, sizeof session->csrf, "%s", bf_json_str (doc, "csrf"));
    assert_int_equal (strlen (session->csrf), 64);
    json_decref (doc);
    free (resp.body);
}

static void
s_login (const char *name, const char *password, s_session_t *session)
{
    s_login_at (0, name, password, session);
}

/*  A command body.  */
static char *
s_command (const char *id, const char *args)
{
    static char body[1024];
    snprintf (body, sizeof body, "{\"command_id\":\"%s\",\"args\":%s}", id, args);
    return body;
}

static int64_t
s_scalar (const char *sql)
{
    int64_t v = bf_testdb_scalar (s_stack.conn, sql);
    if (v < 0)
        fail_msg ("no value: %s", sql);
    return v;
}

static void
s_exec (const char *sql)
{
    const char *state = bf_testdb_exec (s_stack.conn, sql);
    if (strcmp (state, "00000"))
        fail_msg ("SQLSTATE %s: %s", state, sql);
}

/*  A raw connection to the console from source (NULL: any); -1 when
    refused.  */
static int
s_connect (const char *source, int port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons ((uint16_t)port) };
    if (source) {
        struct sockaddr_in local = { .sin_family = AF_INET };
        inet_pton (AF_INET, source, &local.sin_addr);
        bind (fd, (struct sockaddr *)&local, sizeof local);
    }
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect (fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close (fd);
        return -1;
    }
    return fd;
}

/*  Sends request on a new connection and reads the answer until the
    server closes or timeout_ms pass: the answer's text (malloc'd).  */
static char *
s_raw (const char *request, size_t len, int timeout_ms)
{
    int fd = s_connect (NULL, s_port);
    assert_true (fd >= 0);
    size_t sent = 0;
    while (sent < len) {
        ssize_t n = send (fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server closed: it answered early */
        sent += (size_t)n;
    }
    char *answer = calloc (1, 65536);
    size_t got = 0;
    int64_t until = bf_stack_now_ms () + timeout_ms;
    while (got + 1 < 65536 && bf_stack_now_ms () < until) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll (&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv (fd, answer + got, 65535 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close (fd);
    s_scan ("raw", answer, got);
    return answer;
}

/*  The value of a sample on the console's /metrics.  */
static double
s_metric_at (int http_port, const char *name)
{
    s_req_t req = { .port = http_port };
    s_resp_t resp;
    assert_int_equal (s_http ("/metrics", &req, &resp), 200);
    char pattern[128];
    snprintf (pattern, sizeof pattern, "\n%s ", name);
    const char *at = strstr (resp.body, pattern);
    if (!at)
        fail_msg ("/metrics has no %s", name);
    double value = strtod (at + strlen (pattern), NULL);
    free (resp.body);
    return value;
}

static double
s_metric (const char *name)
{
    return s_metric_at (s_http_port, name);
}

//  --------------------------------------------------------------------------
//  Set-up

static void
s_adduser (const char *users, const char *name, const char *role, const char *password)
{
    char command[2048];
    snprintf (command, sizeof command,
              "printf '%%s\\n' \"%s\" | \"$BF_CONSOLE\" adduser %s --role %s --users '%s'"
              " > /dev/null",
              password, name, role, users);
    assert_int_equal (system (command), 0);
}

static int
s_setup (void **state)
{
    (void)state;
    curl_global_init (CURL_GLOBAL_DEFAULT);
    bf_stack_t *s = &s_stack;
    bf_stack_init (s);
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (s->db, &out,
                                          "generate --subscribers %d --period " PERIOD " --seed 15",
                                          SUBSCRIBERS),
                      0);
    free (out);
    s_load_contacts ();
    bf_stack_mock_start (s, "");
    bf_proc_start (&s->control[0]);
    assert_int_equal (bf_stack_wait_active (s, 0, 20000), 0);
    bf_proc_start (&s->settle[0]);
    bf_proc_start (&s->notify);
    assert_int_equal (bf_stack_wait_registered (s, "settle", 20000), 0);
    assert_int_equal (bf_stack_wait_registered (s, "notify", 20000), 0);

    char users[600], log[600], key[600];
    snprintf (users, sizeof users, "%s/console-users", s->dir);
    s_adduser (users, "kim", "operator", KIM_PW);
    s_adduser (users, "lee", "viewer", LEE_PW);
    s_adduser (users, "park", "viewer", PARK_PW);
    snprintf (log, sizeof log, "%s/console.log", s->dir);
    bf_stack_key_path (s, "console", key, sizeof key);
    bf_proc_init (&s_console, getenv ("BF_CONSOLE"), log);
    /*  Ports the kernel picks, read back from the log (bf_proc_log_port).  */
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_LISTEN=127.0.0.1:0");
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_HTTP=127.0.0.1:0");
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_USERS_FILE=%s", users);
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_KEY_FILE=%s", key);
    bf_proc_env (&s_console, "BILLFLOW_CONTROL_ENDPOINT=%s", s->endpoints);
    bf_proc_env (&s_console, "BILLFLOW_CONTROL_SERVER_KEY=%s", s->control_key);
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_LOGIN_LIMIT=5");
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_LOGIN_LIMIT_ADDRESS=12");
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_PER_IP_CONNECTIONS=64");
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_CONNECTION_TIMEOUT_S=5");
    /*  The tests ask as fast as they can from one session; the per-session
        rate is test_session_rate_limit's, on a console of its own.  */
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_SESSION_RATE=100000");
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_SESSION_BURST=100000");
    /*  127.0.0.5 plays the ingress controller.  */
    bf_proc_env (&s_console, "BILLFLOW_CONSOLE_TRUSTED_PROXIES=127.0.0.5/32");
    bf_proc_env (&s_console, "BILLFLOW_LOG_LEVEL=debug");
    bf_proc_start (&s_console);
    s_port = bf_proc_log_port (&s_console, "console: serving HTTP", 0, 20000);
    s_http_port = bf_proc_log_port (&s_console, "http: serving /metrics", 0, 20000);
    assert_true (s_port > 0 && s_http_port > 0);
    return 0;
}

static int
s_teardown (void **state)
{
    (void)state;
    /*  A clean stop: every connection and stream ended, exit 0.  */
    int rc = bf_proc_stop (&s_console, 10000);
    bf_stack_destroy (&s_stack);
    for (size_t i = 0; i < s_ncontacts; i++)
        free (s_contacts[i]);
    free (s_contacts);
    curl_global_cleanup ();
    return rc == 0 ? 0 : -1;
}

//  --------------------------------------------------------------------------
//  Tests

static void
test_pages_and_headers (void **state)
{
    (void)state;
    s_resp_t resp;
    assert_int_equal (s_http ("/", NULL, &resp), 200);
    assert_non_null (strstr (resp.body, "/static/app.js"));
    assert_true (s_has_header (&resp, "Content-Type: text/html; charset=utf-8"));
    assert_true (s_has_header (&resp, "Cache-Control: no-store"));
    assert_true (s_has_header (&resp, "X-Content-Type-Options: nosniff"));
    assert_true (s_has_header (&resp, "Referrer-Policy: no-referrer"));
    assert_true (s_has_header (&resp, "X-Frame-Options: DENY"));
    assert_true (s_has_header (&resp, "Content-Security-Policy: default-src 'self'; img-src 'self'"
                                      " data:; style-src 'self'; script-src 'self'; connect-src"
                                      " 'self'; frame-ancestors 'none'"));
    free (resp.body);
    assert_int_equal (s_http ("/static/app.js", NULL, &resp), 200);
    assert_true (s_has_header (&resp, "Content-Type: text/javascript"));
    assert_false (s_has_header (&resp, "no-store"));
    assert_true (s_has_header (&resp, "X-Content-Type-Options: nosniff"));
    free (resp.body);
    assert_int_equal (s_http ("/static/chart.esm.js", NULL, &resp), 200);
    assert_true (resp.len > 100000);
    free (resp.body);
    assert_int_equal (s_http ("/static/chunks/helpers.segment.js", NULL, &resp), 200);
    free (resp.body);
    assert_int_equal (s_http ("/static/nothing.js", NULL, &resp), 404);
    free (resp.body);
    assert_int_equal (s_http ("/static/../meson.build", NULL, &resp), 404);
    free (resp.body);
    assert_int_equal (s_http ("/static/%2e%2e/meson.build", NULL, &resp), 404);
    free (resp.body);
    assert_int_equal (s_http ("/etc/passwd", NULL, &resp), 404);
    free (resp.body);
    s_expect_error ("/api/me", NULL, 401, "not logged in");
    s_expect_error ("/api/overview", NULL, 401, "not logged in");
    s_expect_error ("/api/query/runs.list", NULL, 401, "not logged in");
    s_req_t post = { .body = s_command ("anon-1", "{\"period\":\"" PERIOD "\"}") };
    s_expect_error ("/api/command/run.start", &post, 401, "not logged in");
    s_req_t forged
        = { .session = &(s_session_t){ .cookie = "bf_session=00", .csrf = "00" }, .csrf = true };
    s_expect_error ("/api/me", &forged, 401, "not logged in");
}

static void
test_login_and_query (void **state)
{
    (void)state;
    s_req_t wrong = { .body = "{\"name\":\"kim\",\"password\":\"not her password\"}" };
    s_expect_error ("/api/login", &wrong, 401, "wrong name or password");
    s_req_t nobody = { .body = "{\"name\":\"nobody\",\"password\":\"whatever it is\"}" };
    s_expect_error ("/api/login", &nobody, 401, "wrong name or password");
    s_login ("kim", KIM_PW, &s_kim);
    s_req_t me = { .session = &s_kim };
    json_t *doc = s_expect ("/api/me", &me, 200);
    assert_string_equal (bf_json_str (doc, "name"), "kim");
    assert_string_equal (bf_json_str (doc, "role"), "operator");
    assert_string_equal (bf_json_str (doc, "csrf"), s_kim.csrf);
    assert_true (bf_json_int (doc, "idle_expires_ms") > 0);
    assert_true (bf_json_int (doc, "absolute_expires_ms") >= bf_json_int (doc, "idle_expires_ms"));
    json_decref (doc);
    doc = s_expect ("/api/query/runs.list?limit=3", &me, 200);
    assert_true (json_is_array (bf_json_at (doc, "runs")));
    json_decref (doc);
    doc = s_expect ("/api/query/services.list", &me, 200);
    char *text = json_dumps (doc, 0);
    assert_non_null (strstr (text, "settle"));
    assert_non_null (strstr (text, "notify"));
    free (text);
    json_decref (doc);
    doc = s_expect ("/api/query/control.status", &me, 200);
    json_decref (doc);
    /*  control's refusals of arguments: 400 with control's reason.  */
    s_expect_error ("/api/query/run.show?period=2026-13", &me, 400, "period");
    s_expect_error ("/api/query/nothing.list", &me, 404, "not found");
    s_expect_error ("/api/query/run.start", &me, 404, "not found");
    s_expect_error ("/api/command/runs.list",
                    &(s_req_t){ .session = &s_kim, .csrf = true, .body = s_command ("x", "{}") },
                    404, "not found");
    /*  A CSRF token is not a session.  */
    s_session_t swapped_session = { .cookie = "" };
    snprintf (swapped_session.cookie, sizeof swapped_session.cookie, "bf_session=%s", s_kim.csrf);
    s_req_t swapped = { .session = &swapped_session };
    s_expect_error ("/api/me", &swapped, 401, "not logged in");
}

/*  Waits until run.show says the run completed and every notice is done.  */
static void
s_wait_final (void)
{
    s_req_t me = { .session = &s_kim };
    int64_t until = bf_stack_now_ms () + 120000;
    bool final = false;
    while (!final && bf_stack_now_ms () < until) {
        json_t *doc = s_expect ("/api/query/run.show?period=" PERIOD, &me, 200);
        final = json_is_true (bf_json_at (doc, "final"));
        json_decref (doc);
        if (!final)
            usleep (300000);
    }
    assert_true (final);
}

static void
test_run_by_post (void **state)
{
    (void)state;
    s_req_t post = { .session = &s_kim,
                     .csrf = true,
                     .body = s_command ("console-start-1", "{\"period\":\"" PERIOD "\"}") };
    json_t *doc = s_expect ("/api/command/run.start", &post, 200);
    const char *status = bf_json_str (doc, "status");
    if (strcmp (status, "OK") && strcmp (status, "ACCEPTED"))
        fail_msg ("run.start: %s %s", status, bf_json_str (doc, "error"));
    assert_false (json_is_true (bf_json_at (doc, "replayed")));
    json_decref (doc);
    s_wait_final ();
    assert_int_equal (s_scalar ("SELECT count (*) FROM settlement_run WHERE period = '" PERIOD
                                "' AND state = 'COMPLETED'"),
                      1);
    /*  The same command_id again (a double click, a reload): answered from
        control's store, once.  */
    post.body = s_command ("console-start-1", "{\"period\":\"" PERIOD "\"}");
    doc = s_expect ("/api/command/run.start", &post, 200);
    assert_string_equal (bf_json_str (doc, "status"), "OK");
    assert_true (json_is_true (bf_json_at (doc, "replayed")));
    json_decref (doc);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id ="
                                " 'console-start-1'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM settlement_run WHERE period = '" PERIOD "'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id ="
                                " 'console-start-1' AND client = 'console/kim'"),
                      1);
    assert_true (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console/kim'"
                           " AND verb = 'run.start'")
                 >= 1);
    /*  Her trail, by actor, through the console.  */
    s_req_t me = { .session = &s_kim };
    doc = s_expect ("/api/query/audit.list?actor=console/kim", &me, 200);
    char *text = json_dumps (doc, 0);
    assert_non_null (strstr (text, "console-start-1"));
    free (text);
    json_decref (doc);
}

/*  The queries that carry subscribers' data answer masked contacts, also
    when asked by a clear email or phone (every body is scanned). A
    contact goes in a POSTed query's body, never in a URL: the POST
    answers as the GET does, needs the CSRF token, and takes no query
    string.  */
static void
test_subscriber_queries_masked (void **state)
{
    (void)state;
    s_req_t me = { .session = &s_kim };
    char path[512], *escaped, body[512];
    long from = bf_proc_log_size (&s_console);
    snprintf (body, sizeof body, "{\"args\":{\"email\":\"%s\"}}", s_email);
    s_req_t find = { .session = &s_kim, .csrf = true, .body = body };
    json_t *found = s_expect ("/api/query/subscriber.find", &find, 200);
    assert_int_equal (json_array_size (bf_json_at (found, "subscribers")), 1);
    int64_t by_email = bf_json_int (json_array_get (bf_json_at (found, "subscribers"), 0),
                                    "subscriber_id");
    json_decref (found);
    snprintf (body, sizeof body, "{\"args\":{\"phone\":\"%s\"}}", s_phone);
    found = s_expect ("/api/query/subscriber.find", &find, 200);
    assert_int_equal (json_array_size (bf_json_at (found, "subscribers")), 1);
    assert_int_equal (bf_json_int (json_array_get (bf_json_at (found, "subscribers"), 0),
                                   "subscriber_id"),
                      by_email);
    json_decref (found);
    /*  Without the CSRF token: 403; with a query string too, or a body
        that is not {"args": {...}}: 400, the reason quoting no value.  */
    s_expect_error ("/api/query/subscriber.find",
                    &(s_req_t){ .session = &s_kim, .body = body }, 403,
                    "missing or wrong CSRF token");
    s_expect_error ("/api/query/subscriber.find?limit=1", &find, 400, "in the body only");
    snprintf (body, sizeof body, "{\"args\":{\"phone\":\"%s\"},\"%s\":1}", s_phone, s_email);
    s_expect_error ("/api/query/subscriber.find", &find, 400, "unexpected member");
    snprintf (body, sizeof body, "{\"args\":{\"phone\":\"%s\" \"x\":1}}", s_phone);
    s_expect_error ("/api/query/subscriber.find", &find, 400, "not JSON");
    snprintf (body, sizeof body, "{\"args\":{\"phone\":%s}}", s_email);
    s_expect_error ("/api/query/subscriber.find", &find, 400, "not JSON");
    /*  Any query may be POSTed; control's refusals are the GET's.  */
    s_req_t post = { .session = &s_kim, .csrf = true, .body = "{\"args\":{\"period\":\"2026-13\"}}" };
    s_expect_error ("/api/query/run.show", &post, 400, "period");
    post.body = "{}";
    json_decref (s_expect ("/api/query/services.list", &post, 200));
    /*  The console's log holds neither contact, clear or URL-escaped.  */
    bf_proc_wait_log (&s_console, "bad query subscriber.find", from, 2000);
    char *log = bf_test_slurp (s_console.log);
    assert_non_null (log);
    CURL *curl = curl_easy_init ();
    const char *contacts[] = { s_email, s_phone };
    for (size_t i = 0; i < 2; i++) {
        escaped = curl_easy_escape (curl, contacts[i], 0);
        if (strstr (log + from, contacts[i]) || strstr (log + from, escaped))
            fail_msg ("the console's log holds a contact");
        curl_free (escaped);
    }
    free (log);
    escaped = curl_easy_escape (curl, s_email, 0);
    snprintf (path, sizeof path, "/api/query/subscriber.find?email=%s", escaped);
    curl_free (escaped);
    json_t *doc = s_expect (path, &me, 200);
    assert_int_equal (json_array_size (bf_json_at (doc, "subscribers")), 1);
    int64_t id = bf_json_int (json_array_get (bf_json_at (doc, "subscribers"), 0), "subscriber_id");
    json_decref (doc);
    escaped = curl_easy_escape (curl, s_phone, 0);
    snprintf (path, sizeof path, "/api/query/subscriber.find?phone=%s", escaped);
    curl_free (escaped);
    curl_easy_cleanup (curl);
    doc = s_expect (path, &me, 200);
    assert_int_equal (json_array_size (bf_json_at (doc, "subscribers")), 1);
    json_decref (doc);
    snprintf (path, sizeof path, "/api/query/subscriber.timeline?subscriber_id=%lld",
              (long long)id);
    doc = s_expect (path, &me, 200);
    char *text = json_dumps (doc, 0);
    const char *bill = strstr (text, "\"bill_id\": ");
    assert_non_null (bill);
    long long bill_id = atoll (bill + strlen ("\"bill_id\": "));
    free (text);
    json_decref (doc);
    snprintf (path, sizeof path, "/api/query/bill.show?bill_id=%lld", bill_id);
    json_decref (s_expect (path, &me, 200));
    json_decref (s_expect ("/api/query/deliveries.failures?period=" PERIOD, &me, 200));
    json_decref (s_expect ("/api/query/deliveries.summary?period=" PERIOD, &me, 200));
    /*  A slow query (control's reporter): asked once, answered. The
        statistics first, as autovacuum would have them: on a period just
        loaded, without them, run.report's plan takes minutes even for 200
        subscribers (control's report SQL, not the console).  */
    s_exec ("ANALYZE");
    json_t *report = s_expect ("/api/query/run.report?period=" PERIOD, &me, 200);
    /*  As the Run page asks it (wait=0): the report control kept from the
        request above, the period unchanged since: current, not
        computing, the same snapshot.  */
    json_t *kept = s_expect ("/api/query/run.report?period=" PERIOD "&wait=0", &me, 200);
    assert_true (json_is_true (json_object_get (kept, "current")));
    assert_true (json_is_false (json_object_get (kept, "computing")));
    assert_string_equal (json_string_value (json_object_get (kept, "as_of")),
                         json_string_value (json_object_get (report, "as_of")));
    json_decref (kept);
    json_decref (report);
    json_decref (s_expect ("/api/query/templates.list", &me, 200));
    json_decref (s_expect ("/api/query/commands.list?limit=20", &me, 200));
    snprintf (path, sizeof path, "/api/query/template.preview?channel=EMAIL&version=1&bill_id=%lld",
              bill_id);
    s_resp_t resp;
    long status = s_http (path, &me, &resp);
    assert_true (status == 200 || status == 400);
    free (resp.body);
}

static void
test_viewer_refused (void **state)
{
    (void)state;
    s_login ("lee", LEE_PW, &s_lee);
    s_req_t me = { .session = &s_lee };
    json_t *doc = s_expect ("/api/me", &me, 200);
    assert_string_equal (bf_json_str (doc, "role"), "viewer");
    json_decref (doc);
    json_decref (s_expect ("/api/query/runs.list", &me, 200));
    /*  A forged command with her own session and CSRF token: control refuses
        it and audits console/lee.  */
    s_req_t post = { .session = &s_lee,
                     .csrf = true,
                     .body = s_command ("lee-forged-1", "{\"period\":\"" PERIOD "\"}") };
    doc = s_expect ("/api/command/run.stop", &post, 403);
    assert_string_equal (bf_json_str (doc, "status"), "REJECTED");
    assert_non_null (strstr (bf_json_str (doc, "error"), "may not"));
    json_decref (doc);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE actor = 'console/lee'"
                                " AND verb = 'run.stop' AND outcome = 'refused'"
                                " AND command_id = 'lee-forged-1'"),
                      1);
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id = 'lee-forged-1'"),
                      0);
}

static void
test_csrf (void **state)
{
    (void)state;
    const char *body = s_command ("csrf-1", "{}");
    s_req_t none = { .session = &s_kim, .body = body };
    s_expect_error ("/api/command/dispatch.pause", &none, 403, "missing or wrong CSRF token");
    s_req_t wrong
        = { .session = &s_kim,
            .body = body,
            .csrf_value = "0000000000000000000000000000000000000000000000000000000000000000" };
    s_expect_error ("/api/command/dispatch.pause", &wrong, 403, "missing or wrong CSRF token");
    s_req_t other = { .session = &s_kim, .body = body, .csrf_value = s_lee.csrf };
    s_expect_error ("/api/command/dispatch.pause", &other, 403, "missing or wrong CSRF token");
    s_req_t logout = { .session = &s_kim, .body = "" };
    s_expect_error ("/api/logout", &logout, 403, "missing or wrong CSRF token");
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id = 'csrf-1'"), 0);
    assert_int_equal (s_scalar ("SELECT count (*) FROM audit_log WHERE command_id = 'csrf-1'"), 0);
    /*  Still logged in.  */
    json_decref (s_expect ("/api/me", &(s_req_t){ .session = &s_kim }, 200));
}

/*  The "data: " lines of an event stream read for ms: how many events.  */
static int
s_events (const char *text, json_t **last)
{
    int events = 0;
    for (const char *p = text; (p = strstr (p, "event: overview\ndata: ")); p++) {
        events++;
        const char *data = p + strlen ("event: overview\ndata: ");
        size_t n = strcspn (data, "\n");
        if (last && data[n] == '\n') {
            json_decref (*last);
            *last = json_loadb (data, n, 0, NULL);
        }
    }
    return events;
}

typedef struct {
    s_resp_t resp;
    long ms;
} s_stream_arg_t;

static void *
s_stream (void *arg)
{
    s_stream_arg_t *a = arg;
    s_req_t req = { .session = &s_kim, .timeout_ms = a->ms };
    s_http ("/api/events", &req, &a->resp);
    return NULL;
}

static void
test_overview_and_events (void **state)
{
    (void)state;
    s_req_t me = { .session = &s_kim };
    json_t *doc = s_expect ("/api/overview", &me, 200);
    assert_true (bf_json_int (doc, "at_ms") > 0);
    assert_true (json_is_null (bf_json_at (doc, "error")));
    assert_true (json_is_array (bf_json_at (doc, "services.services"))
                 || json_is_object (bf_json_at (doc, "services")));
    assert_string_equal (bf_json_str (json_array_get (bf_json_at (doc, "runs.runs"), 0), "period"),
                         PERIOD);
    assert_true (json_is_object (bf_json_at (doc, "deliveries")));
    assert_true (json_is_array (bf_json_at (doc, "held")));
    json_decref (doc);

    /*  One stream for 2.5 s: the snapshot at once, then one a second.  */
    s_stream_arg_t one = { .ms = 2500 };
    s_stream (&one);
    assert_true (s_has_header (&one.resp, "Content-Type: text/event-stream"));
    assert_true (s_has_header (&one.resp, "Cache-Control: no-store"));
    json_t *last = NULL;
    int events = s_events (one.resp.body, &last);
    if (events < 2)
        fail_msg ("%d events in 2.5 s: %s", events, one.resp.body);
    assert_non_null (last);
    assert_true (bf_json_int (last, "polls") > 0);
    json_decref (last);
    free (one.resp.body);

    /*  50 browsers' streams for 4 s cost control the same one poll a
        second.  */
    double before = s_metric ("billflow_console_polls_total");
    int64_t start = bf_stack_now_ms ();
    enum { STREAMS = 50 };
    static s_stream_arg_t args[STREAMS];
    pthread_t threads[STREAMS];
    for (int i = 0; i < STREAMS; i++) {
        args[i] = (s_stream_arg_t){ .ms = 4000 };
        pthread_create (&threads[i], NULL, s_stream, &args[i]);
    }
    usleep (2000000);
    double open = s_metric ("billflow_console_streams");
    for (int i = 0; i < STREAMS; i++)
        pthread_join (threads[i], NULL);
    double polls = s_metric ("billflow_console_polls_total") - before;
    double seconds = (double)(bf_stack_now_ms () - start) / 1000.0;
    print_message ("# %d streams open (%.0f seen): %.0f polls in %.1f s\n", STREAMS, open, polls,
                   seconds);
    assert_true (open >= STREAMS);
    assert_true (polls >= seconds - 2 && polls <= seconds + 2);
    for (int i = 0; i < STREAMS; i++) {
        assert_true (s_events (args[i].resp.body, NULL) >= 3);
        free (args[i].resp.body);
    }
}

static void
test_hostile_input (void **state)
{
    (void)state;
    s_req_t me = { .session = &s_kim };
    /*  Query strings.  */
    s_expect_error ("/api/query/runs.list?period=%FF", &me, 400, "not valid UTF-8");
    s_expect_error ("/api/query/runs.list?period=%C3", &me, 400, "not valid UTF-8");
    s_expect_error ("/api/query/runs.list?period=a%00b", &me, 400, "control character");
    s_expect_error ("/api/query/runs.list?Period=2026-10", &me, 400, "argument names");
    s_expect_error ("/api/query/runs.list?per-iod=2026-10", &me, 400, "argument names");
    s_expect_error ("/api/query/runs.list?%FF=1", &me, 400, "argument names");
    s_expect_error ("/api/query/runs.list?period=2026-10&period=2026-11", &me, 400, "twice");
    s_expect_error ("/api/query/runs.list?period", &me, 400, "no value");
    char path[2048] = "/api/query/runs.list?limit=";
    memset (path + strlen (path), '1', 300);
    s_expect_error (path, &me, 400, "longer than");
    snprintf (path, sizeof path, "/api/query/runs.list?");
    for (char c = 'a'; c <= 'q'; c++)
        snprintf (path + strlen (path), sizeof path - strlen (path), "%c=1&", c);
    s_expect_error (path, &me, 400, "more than 16");
    /*  Bodies.  */
    s_req_t bad = { .session = &s_kim, .csrf = true };
    bad.body = "{\"command_id\":\"bad-1\",\"args\":{\"period\":\"\xff\"}}";
    s_expect_error ("/api/command/run.start", &bad, 400, "not valid UTF-8");
    bad.body = "{\"command_id\":\"bad-1\",\"args\":{\"Period\":\"2026-10\"}}";
    s_expect_error ("/api/command/run.start", &bad, 400, "argument names");
    bad.body = "{\"command_id\":\"bad 1\"}";
    s_expect_error ("/api/command/run.start", &bad, 400, "command_id");
    bad.body = "[1,2,3]";
    s_expect_error ("/api/command/run.start", &bad, 400, "JSON object");
    bad.body = "{\"command_id\":";
    s_expect_error ("/api/command/run.start", &bad, 400, "not JSON");
    s_req_t login = { .body = "{\"name\":\"kim\",\"password\":\"\xc3\x28\"}" };
    s_expect_error ("/api/login", &login, 400, "not valid UTF-8");
    login.body = "{\"name\":\"kim\"}";
    s_expect_error ("/api/login", &login, 400, "password");
    assert_int_equal (s_scalar ("SELECT count (*) FROM command WHERE command_id LIKE 'bad%'"), 0);
    /*  An oversized body, announced and chunked.  */
    size_t big = 100 * 1024;
    char *huge = malloc (big + 1);
    memset (huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = 0;
    s_req_t oversized = { .session = &s_kim, .csrf = true, .body = huge };
    s_expect_error ("/api/command/run.start", &oversized, 413, "too large");
    s_req_t oversized_login = { .body = huge };
    s_expect_error ("/api/login", &oversized_login, 413, "too large");
    free (huge);
    char head[512];
    snprintf (head, sizeof head,
              "POST /api/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              "Transfer-Encoding: chunked\r\n\r\n");
    size_t chunk = 8192, chunks = 16, len = strlen (head);
    char *request = malloc (len + chunks * (chunk + 16) + 8);
    memcpy (request, head, len);
    for (size_t i = 0; i < chunks; i++) {
        len += (size_t)sprintf (request + len, "%zx\r\n", chunk);
        memset (request + len, 'a', chunk);
        len += chunk;
        memcpy (request + len, "\r\n", 2);
        len += 2;
    }
    memcpy (request + len, "0\r\n\r\n", 5);
    len += 5;
    char *answer = s_raw (request, len, 5000);
    free (request);
    if (!strstr (answer, "413"))
        fail_msg ("chunked oversized body: %.200s", answer);
    free (answer);
    /*  Headers past the per-connection memory: refused, not grown.  */
    char *cookie = malloc (48 * 1024);
    snprintf (cookie, 32, "Cookie: x=");
    memset (cookie + 10, 'x', 48 * 1024 - 11);
    cookie[48 * 1024 - 1] = 0;
    s_req_t fat = { .extra = cookie };
    s_resp_t resp;
    long status = s_http ("/api/me", &fat, &resp);
    free (resp.body);
    free (cookie);
    if (status != 431 && status != 413 && status != -1)
        fail_msg ("huge headers: status %ld", status);
    /*  Methods.  */
    s_expect_error ("/api/me", &(s_req_t){ .session = &s_kim, .method = "DELETE" }, 405,
                    "method not allowed");
    s_expect_error ("/api/login", &(s_req_t){ .method = "GET" }, 405, "method not allowed");
    /*  And the console still answers.  */
    json_decref (s_expect ("/api/me", &me, 200));
    assert_true (bf_proc_wait_log (&s_console, "the body is not valid UTF-8", 0, 1000));
}

typedef struct {
    int fds[256];
    int count;
} s_flood_t;

static void
test_flood_and_slow_clients (void **state)
{
    (void)state;
    /*  200 connections from 127.0.0.1 that send nothing or dribble a
        header: the per-address limit takes 64, the rest are closed at
        once.  */
    s_flood_t flood = { .count = 0 };
    for (int i = 0; i < 200; i++) {
        int fd = s_connect ("127.0.0.1", s_port);
        if (fd >= 0)
            flood.fds[flood.count++] = fd;
    }
    for (int i = 0; i < flood.count; i += 2)
        send (flood.fds[i], "GET / HTTP/1.1\r\nHo", 18, MSG_NOSIGNAL);
    /*  Slowloris from the good client's address too (a few connections
        under its limit), and an event stream that never reads.  */
    int slow[4];
    for (int i = 0; i < 4; i++) {
        slow[i] = s_connect ("127.0.0.2", s_port);
        assert_true (slow[i] >= 0);
        send (slow[i], "GET /api/me HTTP/1.1\r\n", 22, MSG_NOSIGNAL);
    }
    int stuck = s_connect ("127.0.0.2", s_port);
    int small = 1024;
    setsockopt (stuck, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    char request[512];
    snprintf (request, sizeof request, "GET /api/events HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n",
              s_kim.cookie);
    send (stuck, request, strlen (request), MSG_NOSIGNAL);
    double polls = s_metric ("billflow_console_polls_total");
    /*  Meanwhile a client at 127.0.0.2 is answered quickly, every time.  */
    s_req_t me = { .session = &s_kim, .source = "127.0.0.2" };
    int64_t worst = 0;
    for (int i = 0; i < 20; i++) {
        s_resp_t resp;
        long status = s_http (i % 2 ? "/api/me" : "/api/query/runs.list?limit=1", &me, &resp);
        free (resp.body);
        if (status != 200)
            fail_msg ("request %d during the flood: status %ld", i, status);
        if (resp.ms > worst)
            worst = resp.ms;
        for (int j = 0; j < 4; j++)
            send (slow[j], "X", 1, MSG_NOSIGNAL);
        usleep (100000);
    }
    print_message ("# slowest answer during the flood: %lld ms (%d connections opened)\n",
                   (long long)worst, flood.count);
    assert_true (worst < 1000);
    /*  The poller went on while the stream did not read.  */
    assert_true (s_metric ("billflow_console_polls_total") >= polls + 1);
    /*  The per-address limit: at most 64 of the flood stay open.  */
    int open = 0;
    for (int i = 0; i < flood.count; i++) {
        struct pollfd p = { .fd = flood.fds[i], .events = POLLIN };
        char byte;
        if (poll (&p, 1, 0) == 0 || recv (flood.fds[i], &byte, 1, MSG_DONTWAIT) > 0)
            open++;
    }
    print_message ("# %d of %d flooding connections still open\n", open, flood.count);
    assert_true (open <= 64);
    for (int i = 0; i < flood.count; i++)
        close (flood.fds[i]);
    for (int i = 0; i < 4; i++)
        close (slow[i]);
    close (stuck);
    /*  The silent ones are closed by the connection timeout (5 s here);
        127.0.0.1 is served again.  */
    usleep (500000);
    json_decref (s_expect ("/api/me", &(s_req_t){ .session = &s_kim }, 200));
}

static void
test_logout (void **state)
{
    (void)state;
    /*  An event stream open across the logout ends with the session.  */
    s_stream_arg_t stream = { .ms = 6000 };
    pthread_t thread;
    pthread_create (&thread, NULL, s_stream, &stream);
    usleep (1500000);
    s_req_t logout = { .session = &s_kim, .csrf = true, .body = "" };
    s_resp_t resp;
    assert_int_equal (s_http ("/api/logout", &logout, &resp), 204);
    pthread_join (thread, NULL);
    print_message ("# a stream open at logout ended after %lld ms\n", (long long)stream.resp.ms);
    assert_true (s_events (stream.resp.body, NULL) >= 1);
    assert_true (stream.resp.ms < 4000);
    free (stream.resp.body);
    assert_true (s_has_header (&resp, "Set-Cookie: bf_session=; Path=/; Max-Age=0"));
    free (resp.body);
    s_expect_error ("/api/me", &(s_req_t){ .session = &s_kim }, 401, "not logged in");
    s_req_t post = { .session = &s_kim, .csrf = true, .body = s_command ("after-logout", "{}") };
    s_expect_error ("/api/command/dispatch.pause", &post, 401, "not logged in");
    s_expect_error ("/api/logout", &logout, 401, "not logged in");
    /*  Lee's session is hers: still there.  */
    json_decref (s_expect ("/api/me", &(s_req_t){ .session = &s_lee }, 200));
}

static void
test_login_rate_limit (void **state)
{
    (void)state;
    long from = bf_proc_log_size (&s_console);
    s_req_t wrong = { .body = "{\"name\":\"park\",\"password\":\"guess-number-x\"}" };
    for (int i = 0; i < 5; i++)
        s_expect_error ("/api/login", &wrong, 401, "wrong name or password");
    s_resp_t resp;
    assert_int_equal (s_http ("/api/login", &wrong, &resp), 429);
    assert_true (s_has_header (&resp, "Retry-After: "));
    free (resp.body);
    /*  Even the right password waits for the window.  */
    char body[128];
    snprintf (body, sizeof body, "{\"name\":\"park\",\"password\":\"%s\"}", PARK_PW);
    s_req_t right = { .body = body };
    s_expect_error ("/api/login", &right, 429, "too many failed logins");
    /*  Logged, without the password.  */
    assert_true (bf_proc_wait_log (&s_console, "failed login for park from 127.0.0.1", from, 1000));
    char *log = bf_test_slurp (s_console.log);
    assert_null (strstr (log, "guess-number-x"));
    assert_null (strstr (log, PARK_PW));
    assert_null (strstr (log, KIM_PW));
    free (log);
    /*  Per address: 12 failures from 127.0.0.3 under any names, then even
        a name that never failed is refused from there (and not from
        elsewhere).  */
    for (int i = 0; i < 12; i++) {
        snprintf (body, sizeof body, "{\"name\":\"nobody-%d\",\"password\":\"wrong-pass\"}", i);
        s_req_t req = { .body = body, .source = "127.0.0.3" };
        s_expect_error ("/api/login", &req, 401, "wrong name or password");
    }
    snprintf (body, sizeof body, "{\"name\":\"lee\",\"password\":\"%s\"}", LEE_PW);
    s_req_t from_3 = { .body = body, .source = "127.0.0.3" };
    s_expect_error ("/api/login", &from_3, 429, "too many failed logins");
    s_session_t again;
    s_login ("lee", LEE_PW, &again);
}

/*  Behind the trusted proxy (127.0.0.5) each browser is its own address,
    taken from X-Forwarded-For: the per-address limit and the logs name
    it. From anyone else the header is ignored.  */
static void
test_forwarded_for (void **state)
{
    (void)state;
    long from = bf_proc_log_size (&s_console);
    s_req_t spoofed = { .body = "{\"name\":\"nobody-xff-1\",\"password\":\"wrong-pass\"}",
                        .source = "127.0.0.6", .extra = "X-Forwarded-For: 203.0.113.50" };
    s_expect_error ("/api/login", &spoofed, 401, "wrong name or password");
    assert_true (bf_proc_wait_log (&s_console, "failed login for nobody-xff-1 from 127.0.0.6", from,
                                   2000));
    s_req_t proxied = { .body = "{\"name\":\"nobody-xff-2\",\"password\":\"wrong-pass\"}",
                        .source = "127.0.0.5",
                        .extra = "X-Forwarded-For: 192.0.2.1, 198.51.100.7" };
    s_expect_error ("/api/login", &proxied, 401, "wrong name or password");
    assert_true (bf_proc_wait_log (&s_console, "failed login for nobody-xff-2 from 198.51.100.7",
                                   from, 2000));
    /*  Garbage from the proxy: the proxy's own address.  */
    proxied.body = "{\"name\":\"nobody-xff-3\",\"password\":\"wrong-pass\"}";
    proxied.extra = "X-Forwarded-For: <script>";
    s_expect_error ("/api/login", &proxied, 401, "wrong name or password");
    assert_true (bf_proc_wait_log (&s_console, "failed login for nobody-xff-3 from 127.0.0.5", from,
                                   2000));
    /*  12 failures of one browser behind the proxy: that browser is
        refused, another one behind the same proxy is not.  */
    char body[128];
    for (int i = 0; i < 12; i++) {
        snprintf (body, sizeof body, "{\"name\":\"nobody-xff-%d\",\"password\":\"wrong-pass\"}",
                  10 + i);
        s_req_t req = { .body = body, .source = "127.0.0.5",
                        .extra = "X-Forwarded-For: 198.51.100.8" };
        s_expect_error ("/api/login", &req, 401, "wrong name or password");
    }
    snprintf (body, sizeof body, "{\"name\":\"lee\",\"password\":\"%s\"}", LEE_PW);
    s_req_t limited = { .body = body, .source = "127.0.0.5",
                        .extra = "X-Forwarded-For: 198.51.100.8" };
    s_expect_error ("/api/login", &limited, 429, "too many failed logins");
    assert_true (bf_proc_wait_log (&s_console, "refused (rate limit) for lee from 198.51.100.8",
                                   from, 2000));
    s_req_t other = { .body = body, .source = "127.0.0.5",
                      .extra = "X-Forwarded-For: 198.51.100.9" };
    json_decref (s_expect ("/api/login", &other, 200));
    assert_true (bf_proc_wait_log (&s_console, "lee (viewer) logged in from 198.51.100.9", from,
                                   2000));
}

/*  A person added while the console runs logs in at once (the users file
    is read again when it changes); a broken file keeps the last good
    list.  */
static void
test_adduser_while_running (void **state)
{
    (void)state;
    char users[600];
    snprintf (users, sizeof users, "%s/console-users", s_stack.dir);
    s_adduser (users, "choi", "operator", "choi's long password");
    s_session_t choi;
    s_login ("choi", "choi's long password", &choi);
    json_t *doc = s_expect ("/api/me", &(s_req_t){ .session = &choi }, 200);
    assert_string_equal (bf_json_str (doc, "role"), "operator");
    json_decref (doc);
    /*  A duplicate is refused by adduser, with the reason.  */
    char command[1024];
    snprintf (command, sizeof command,
              "printf '%%s\\n' 'another long password' | \"$BF_CONSOLE\" adduser choi --role viewer"
              " --users '%s' 2>&1 | grep -q 'already'",
              users);
    assert_int_equal (system (command), 0);
    /*  A line appended by hand that does not parse: logged, and the last
        good list stays.  */
    long from = bf_proc_log_size (&s_console);
    FILE *f = fopen (users, "a");
    fputs ("broken line\n", f);
    fclose (f);
    s_session_t again;
    s_login ("choi", "choi's long password", &again);
    assert_true (bf_proc_wait_log (&s_console, "the last good list stays", from, 2000));
}

/*  Writes data to path with mode.  */
static void
s_write_file (const char *path, const gnutls_datum_t *data, mode_t mode)
{
    FILE *f = fopen (path, "w");
    assert_non_null (f);
    assert_int_equal (fwrite (data->data, 1, data->size, f), data->size);
    fclose (f);
    chmod (path, mode);
}

/*  A self-signed certificate for localhost and its key (0600), made with
    GnuTLS, the library libmicrohttpd serves TLS with.  */
static void
s_make_cert (const char *cert_path, const char *key_path)
{
    gnutls_x509_privkey_t key;
    gnutls_x509_crt_t crt;
    gnutls_datum_t pem;
    assert_int_equal (gnutls_global_init (), 0);
    assert_int_equal (gnutls_x509_privkey_init (&key), 0);
    assert_int_equal (
        gnutls_x509_privkey_generate (key, GNUTLS_PK_ECDSA,
                                      GNUTLS_CURVE_TO_BITS (GNUTLS_ECC_CURVE_SECP256R1), 0),
        0);
    assert_int_equal (gnutls_x509_crt_init (&crt), 0);
    gnutls_x509_crt_set_version (crt, 3);
    unsigned char serial[8] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x01 };
    gnutls_x509_crt_set_serial (crt, serial, sizeof serial);
    time_t now = time (NULL);
    gnutls_x509_crt_set_activation_time (crt, now - 3600);
    gnutls_x509_crt_set_expiration_time (crt, now + 3600);
    gnutls_x509_crt_set_dn_by_oid (crt, GNUTLS_OID_X520_COMMON_NAME, 0, "localhost", 9);
    gnutls_x509_crt_set_subject_alt_name (crt, GNUTLS_SAN_DNSNAME, "localhost", 9, GNUTLS_FSAN_SET);
    gnutls_x509_crt_set_basic_constraints (crt, 1, -1);
    gnutls_x509_crt_set_key_usage (crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_CERT_SIGN);
    assert_int_equal (gnutls_x509_crt_set_key (crt, key), 0);
    assert_int_equal (gnutls_x509_crt_sign2 (crt, crt, key, GNUTLS_DIG_SHA256, 0), 0);
    assert_int_equal (gnutls_x509_crt_export2 (crt, GNUTLS_X509_FMT_PEM, &pem), 0);
    s_write_file (cert_path, &pem, 0644);
    gnutls_free (pem.data);
    assert_int_equal (gnutls_x509_privkey_export2 (key, GNUTLS_X509_FMT_PEM, &pem), 0);
    s_write_file (key_path, &pem, 0600);
    gnutls_free (pem.data);
    gnutls_x509_crt_deinit (crt);
    gnutls_x509_privkey_deinit (key);
    gnutls_global_deinit ();
}

/*  One HTTPS request to localhost:port, the certificate checked against
    cert; the status (0: no answer), the headers into headers.  */
static long
s_https (int port, const char *cert, const char *path, const char *body, char *headers,
         size_t hsize)
{
    s_resp_t resp;
    memset (&resp, 0, sizeof resp);
    resp.body = calloc (1, 1);
    CURL *curl = curl_easy_init ();
    char url[256], resolve[64];
    snprintf (url, sizeof url, "https://localhost:%d%s", port, path);
    snprintf (resolve, sizeof resolve, "localhost:%d:127.0.0.1", port);
    struct curl_slist *hosts = curl_slist_append (NULL, resolve);
    struct curl_slist *fields = curl_slist_append (NULL, "Content-Type: application/json");
    curl_easy_setopt (curl, CURLOPT_URL, url);
    curl_easy_setopt (curl, CURLOPT_RESOLVE, hosts);
    curl_easy_setopt (curl, CURLOPT_CAINFO, cert);
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &resp);
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, fields);
    if (body)
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform (curl);
    long status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
    else
        print_message ("# https %s: %s\n", path, curl_easy_strerror (rc));
    curl_slist_free_all (hosts);
    curl_slist_free_all (fields);
    curl_easy_cleanup (curl);
    s_scan (path, resp.body, resp.len);
    snprintf (headers, hsize, "%s", resp.headers);
    free (resp.body);
    return status;
}

/*  With console.tls_cert and console.tls_key the console serves HTTPS
    itself and its cookie is Secure; plain HTTP is not answered there; a
    key file others may read stops it (exit 2).  */
static void
test_tls (void **state)
{
    (void)state;
    char cert[600], key[600], headers[8192];
    snprintf (cert, sizeof cert, "%s/tls.crt", s_stack.dir);
    snprintf (key, sizeof key, "%s/tls.key", s_stack.dir);
    s_make_cert (cert, key);
    static bf_proc_t tls;
    tls = s_console;
    tls.pid = 0;
    snprintf (tls.log, sizeof tls.log, "%.400s/console-tls.log", s_stack.dir);
    //  The kernel's port, read back from the log (docs/harness.md "Ports").
    bf_proc_env (&tls, "BILLFLOW_CONSOLE_LISTEN=127.0.0.1:0");
    bf_proc_env (&tls, "BILLFLOW_CONSOLE_HTTP=off");
    bf_proc_env (&tls, "BILLFLOW_CONSOLE_TLS_CERT=%s", cert);
    bf_proc_env (&tls, "BILLFLOW_CONSOLE_TLS_KEY=%s", key);
    /*  Its own users file: the shared one was broken on purpose above.  */
    char users[600];
    snprintf (users, sizeof users, "%s/console-users-tls", s_stack.dir);
    s_adduser (users, "lee", "viewer", LEE_PW);
    bf_proc_env (&tls, "BILLFLOW_CONSOLE_USERS_FILE=%s", users);
    bf_proc_start (&tls);
    int port = bf_proc_log_port (&tls, "console: serving HTTPS", 0, 20000);
    if (port <= 0) {
        s_log_tail ("the TLS console's log", tls.log);
        fail_msg ("the TLS console did not start");
    }
    assert_int_equal (s_https (port, cert, "/", NULL, headers, sizeof headers), 200);
    assert_non_null (strcasestr (headers, "Content-Security-Policy: "));
    char body[128];
    snprintf (body, sizeof body, "{\"name\":\"lee\",\"password\":\"%s\"}", LEE_PW);
    assert_int_equal (s_https (port, cert, "/api/login", body, headers, sizeof headers), 200);
    const char *cookie = strcasestr (headers, "Set-Cookie: bf_session=");
    assert_non_null (cookie);
    assert_non_null (strstr (cookie, "; Secure"));
    /*  Plain HTTP on the TLS port gets no page.  */
    s_resp_t resp;
    s_req_t plain = { .port = port, .timeout_ms = 3000 };
    assert_int_not_equal (s_http ("/", &plain, &resp), 200);
    free (resp.body);
    assert_int_equal (bf_proc_stop (&tls, 10000), 0);
    /*  A key file others may read: refused at start-up.  */
    chmod (key, 0644);
    bf_proc_start (&tls);
    assert_int_equal (bf_proc_wait (&tls, 20000), 2);
    assert_true (bf_proc_wait_log (&tls, "TLS key file", 0, 1000));
}

/*  GETs /readyz of the console's observability port until its status is
    want (or timeout_ms pass): the status, the body in body.  */
static long
s_wait_readyz (long want, int timeout_ms, char *body, size_t bodysize)
{
    int64_t until = bf_stack_now_ms () + timeout_ms;
    long status;
    for (;;) {
        s_resp_t resp;
        status = s_http ("/readyz", &(s_req_t){ .port = s_http_port }, &resp);
        snprintf (body, bodysize, "%s", resp.body);
        free (resp.body);
        if (status == want || bf_stack_now_ms () >= until)
            return status;
        usleep (200000);
    }
}

/*  The console has no database: /readyz checks no PostgreSQL, but that
    control answers the overview poller; with control gone it turns 503
    naming control, and 200 again once control is back.  */
static void
test_readyz_follows_control (void **state)
{
    (void)state;
    char body[2048];
    assert_int_equal (s_wait_readyz (200, 5000, body, sizeof body), 200);
    assert_non_null (strstr (body, "\ncontrol: ok (control answered "));
    assert_null (strstr (body, "postgresql"));
    assert_int_equal (bf_proc_stop (&s_stack.control[0], 10000), 0);
    long status = s_wait_readyz (503, 20000, body, sizeof body);
    if (status != 503)
        fail_msg ("control stopped: /readyz %ld: %s", status, body);
    assert_non_null (strstr (body, "control: FAIL (control last answered "));
    bf_proc_start (&s_stack.control[0]);
    assert_int_equal (bf_stack_wait_active (&s_stack, 0, 20000), 0);
    status = s_wait_readyz (200, 20000, body, sizeof body);
    if (status != 200)
        fail_msg ("control back: /readyz %ld: %s", status, body);
}

/*  The scan ran over every response of this test.  */
static void
test_no_contact_in_clear (void **state)
{
    (void)state;
    print_message ("# %zu responses scanned for %zu clear contacts\n", s_scanned, s_ncontacts);
    assert_true (s_scanned >= 150);
    char *log = bf_test_slurp (s_console.log);
    assert_non_null (log);
    s_scan ("the console's log", log, strlen (log));
    /*  Nor as a query string would carry it.  */
    CURL *curl = curl_easy_init ();
    for (size_t i = 0; i < s_ncontacts; i++) {
        char *escaped = curl_easy_escape (curl, s_contacts[i], 0);
        if (strstr (log, escaped))
            fail_msg ("the console's log holds a URL-escaped contact (%s)", escaped);
        curl_free (escaped);
    }
    curl_easy_cleanup (curl);
    free (log);
}

//  --------------------------------------------------------------------------
//  The buttons: every command a page sends, in the shape the page sends it

#define BTN_PERIOD "2026-08" /* a run made here, kept RUNNING by a claimed chunk */

static s_session_t s_btn_kim, s_btn_lee;

/*  Kim (operator) and Lee (viewer) logged in afresh: earlier tests log
    Kim out.  */
static void
s_btn_sessions (void)
{
    if (!s_btn_kim.cookie[0])
        s_login ("kim", KIM_PW, &s_btn_kim);
    if (!s_btn_lee.cookie[0])
        s_login ("lee", LEE_PW, &s_btn_lee);
}

/*  The body dialog.js sends through api.js command(): {"command_id", "args"},
    args NULL for a command without arguments (JSON.stringify drops an
    undefined args). malloc'd.  */
static char *
s_btn_body (const char *id, const char *args)
{
    size_t size = strlen (id) + (args ? strlen (args) : 0) + 64;
    char *body = malloc (size);
    if (args)
        snprintf (body, size, "{\"command_id\":\"%s\",\"args\":%s}", id, args);
    else
        snprintf (body, size, "{\"command_id\":\"%s\"}", id);
    return body;
}

/*  POSTs verb as who (with the CSRF token when csrf) and asserts the HTTP
    status: the answer.  */
static json_t *
s_btn_post (const s_session_t *who, bool csrf, const char *verb, const char *id, const char *args,
            long want)
{
    char path[128];
    snprintf (path, sizeof path, "/api/command/%s", verb);
    char *body = s_btn_body (id, args);
    json_t *doc = s_expect (path, &(s_req_t){ .session = who, .csrf = csrf, .body = body }, want);
    free (body);
    return doc;
}

/*  GETs a query through the console as Kim: 200 and its document.  */
static json_t *
s_btn_query (const char *path)
{
    return s_expect (path, &(s_req_t){ .session = &s_btn_kim }, 200);
}

/*  Rows of command_id's audit trail (audit.list through the console) by
    actor with outcome.  */
static int
s_btn_audited (const char *id, const char *actor, const char *outcome)
{
    char path[256];
    snprintf (path, sizeof path, "/api/query/audit.list?command_id=%s&limit=50", id);
    json_t *doc = s_btn_query (path);
    json_t *rows = bf_json_at (doc, "audit");
    assert_true (json_is_array (rows));
    int n = 0;
    size_t i;
    json_t *row;
    json_array_foreach (rows, i, row)
    {
        n += !strcmp (bf_json_str (row, "actor"), actor)
             && !strcmp (bf_json_str (row, "outcome"), outcome);
    }
    json_decref (doc);
    return n;
}

/*  The stored commands of id (commands.list through the console): how
    many; the first's state into state once it is no longer open (waits
    up to 20 s for that).  */
static size_t
s_btn_stored (const char *id, char *state, size_t statesize)
{
    char path[256];
    snprintf (path, sizeof path, "/api/query/commands.list?command_id=%s", id);
    int64_t until = bf_stack_now_ms () + 20000;
    for (;;) {
        json_t *doc = s_btn_query (path);
        size_t n = json_array_size (bf_json_at (doc, "commands"));
        snprintf (state, statesize, "%s", n ? bf_json_str (doc, "commands.0.state") : "");
        if (n == 1 && strcmp (state, "DONE") && strcmp (state, "FAILED")
            && bf_stack_now_ms () < until) {
            json_decref (doc);
            usleep (200000);
            continue;
        }
        if (n == 1) {
            assert_string_equal (bf_json_str (doc, "commands.0.client"), "console/kim");
        }
        json_decref (doc);
        return n;
    }
}

static int64_t
s_btn_applied (const char *id)
{
    char sql[256];
    snprintf (sql, sizeof sql, "SELECT count (*) FROM applied_command WHERE command_id = '%s'", id);
    return s_scalar (sql);
}

/*  Kim presses the button: verb with args as the page builds them.
    Answered OK (not replayed); stored once as console/kim and DONE, applied
    once, audited received and done. The same command id again (the
    dialog's "send again", a double click) is answered OK and replayed,
    audited "repeated", and applied no second time. Returns the first
    answer's result (the caller's to free).  */
static json_t *
s_btn_press (const char *verb, const char *id, const char *args)
{
    json_t *doc = s_btn_post (&s_btn_kim, true, verb, id, args, 200);
    const char *status = bf_json_str (doc, "status");
    if (strcmp (status, "OK") && strcmp (status, "ACCEPTED"))
        fail_msg ("%s %s: %s %s", verb, id, status, bf_json_str (doc, "error"));
    assert_false (json_is_true (bf_json_at (doc, "replayed")));
    json_t *result = json_incref (bf_json_at (doc, "result"));
    json_decref (doc);
    char state[32];
    assert_int_equal (s_btn_stored (id, state, sizeof state), 1);
    assert_string_equal (state, "DONE");
    assert_int_equal (s_btn_applied (id), 1);
    if (!result || json_is_null (result)) {
        /*  ACCEPTED: the result is the stored command's.  */
        char path[256];
        snprintf (path, sizeof path, "/api/query/commands.list?command_id=%s", id);
        json_t *list = s_btn_query (path);
        json_decref (result);
        result = json_incref (bf_json_at (list, "commands.0.result"));
        json_decref (list);
    }
    doc = s_btn_post (&s_btn_kim, true, verb, id, args, 200);
    assert_string_equal (bf_json_str (doc, "status"), "OK");
    assert_true (json_is_true (bf_json_at (doc, "replayed")));
    json_decref (doc);
    assert_int_equal (s_btn_stored (id, state, sizeof state), 1);
    assert_int_equal (s_btn_applied (id), 1);
    assert_int_equal (s_btn_audited (id, "console/kim", "received"), 1);
    assert_int_equal (s_btn_audited (id, "console/kim", "done"), 1);
    assert_int_equal (s_btn_audited (id, "console/kim", "repeated"), 1);
    assert_non_null (result);
    return result;
}

/*  The same button pressed by Lee (a viewer, with her own CSRF token): 403,
    control's refusal audited as console/lee, nothing stored; and by Kim
    without the CSRF token: 403 before control, nothing stored or audited.  */
static void
s_btn_refused (const char *verb, const char *args)
{
    char id[128];
    snprintf (id, sizeof id, "btn-lee-%s", verb);
    json_t *doc = s_btn_post (&s_btn_lee, true, verb, id, args, 403);
    assert_string_equal (bf_json_str (doc, "status"), "REJECTED");
    assert_non_null (strstr (bf_json_str (doc, "error"), "may not"));
    json_decref (doc);
    char state[32];
    assert_int_equal (s_btn_stored (id, state, sizeof state), 0);
    assert_int_equal (s_btn_audited (id, "console/lee", "refused"), 1);
    snprintf (id, sizeof id, "btn-nocsrf-%s", verb);
    doc = s_btn_post (&s_btn_kim, false, verb, id, args, 403);
    assert_non_null (strstr (bf_json_str (doc, "error"), "missing or wrong CSRF token"));
    json_decref (doc);
    assert_int_equal (s_btn_stored (id, state, sizeof state), 0);
    char sql[256];
    snprintf (sql, sizeof sql, "SELECT count (*) FROM audit_log WHERE command_id = '%s'", id);
    assert_int_equal (s_scalar (sql), 0);
}

/*  BTN_PERIOD's run state through run.show, waiting up to 20 s for want.  */
static void
s_btn_wait_run (const char *want)
{
    int64_t until = bf_stack_now_ms () + 20000;
    char got[32] = "";
    while (strcmp (got, want) && bf_stack_now_ms () < until) {
        json_t *doc = s_btn_query ("/api/query/run.show?period=" BTN_PERIOD);
        snprintf (got, sizeof got, "%s", bf_json_str (doc, "run.state"));
        json_decref (doc);
        if (strcmp (got, want))
            usleep (200000);
    }
    if (strcmp (got, want))
        fail_msg ("run of " BTN_PERIOD ": %s, want %s", got, want);
}

/*  run.js's Stop and Resume ({period}): a run that a worker holds (a chunk
    claimed here, its lease an hour long) is STOPPING after Stop, STOPPED
    once the chunk is let go, RUNNING after Resume.  */
static void
test_buttons_stop_resume (void **state)
{
    (void)state;
    s_btn_sessions ();
    int64_t run_id = s_scalar ("WITH r AS (INSERT INTO settlement_run (period, state, chunk_size,"
                               " chunks_total, started_at, command_id) VALUES ('" BTN_PERIOD
                               "', 'RUNNING', 5000, 1, now (), 'btn-held')"
                               " RETURNING run_id) SELECT run_id FROM r");
    char sql[512];
    snprintf (sql, sizeof sql,
              "INSERT INTO settlement_chunk (run_id, chunk_no, id_from, id_to, state, lease_owner,"
              " lease_until) VALUES (%lld, 0, 0, 1, 'CLAIMED', 'btn-holder',"
              " now () + interval '1 hour')",
              (long long)run_id);
    s_exec (sql);
    s_btn_wait_run ("RUNNING");
    const char *args = "{\"period\":\"" BTN_PERIOD "\"}";
    s_btn_refused ("run.stop", args);
    s_btn_refused ("run.resume", args);
    s_btn_wait_run ("RUNNING");

    json_t *result = s_btn_press ("run.stop", "btn-stop-1", args);
    assert_string_equal (bf_json_str (result, "outcome"), "changed");
    json_decref (result);
    /*  The chunk in hand is still claimed: STOPPING, and it stays so.  */
    s_btn_wait_run ("STOPPING");
    usleep (1000000);
    s_btn_wait_run ("STOPPING");
    /*  The worker lets go of it (done with nothing rated): STOPPED.  */
    snprintf (sql, sizeof sql,
              "UPDATE settlement_chunk SET state = 'DONE', lease_owner = NULL, lease_until = NULL"
              " WHERE run_id = %lld",
              (long long)run_id);
    s_exec (sql);
    s_btn_wait_run ("STOPPED");

    result = s_btn_press ("run.resume", "btn-resume-1", args);
    assert_string_equal (bf_json_str (result, "outcome"), "changed");
    json_decref (result);
    s_btn_wait_run ("RUNNING");
    /*  Stop's command id once more, after Resume: a replay, not a stop.  */
    json_t *doc = s_btn_post (&s_btn_kim, true, "run.stop", "btn-stop-1", args, 200);
    assert_true (json_is_true (bf_json_at (doc, "replayed")));
    json_decref (doc);
    usleep (500000);
    s_btn_wait_run ("RUNNING");
    assert_int_equal (s_btn_applied ("btn-stop-1"), 1);
    /*  Gone again, so that the period's run is the newest as before.  */
    snprintf (sql, sizeof sql, "DELETE FROM settlement_run WHERE run_id = %lld", (long long)run_id);
    s_exec (sql);
}

/*  Dispatch paused as the overview and the notices page show it (its
    deliveries.summary, and the overview snapshot within 5 s).  */
static void
s_btn_paused (bool want)
{
    json_t *doc = s_btn_query ("/api/query/deliveries.summary?period=" PERIOD);
    assert_int_equal (bf_json_bool (doc, "paused"), want);
    json_decref (doc);
    assert_int_equal (s_scalar ("SELECT paused::int FROM dispatch_state"), want);
    int64_t until = bf_stack_now_ms () + 5000;
    bool got = !want;
    while (got != want && bf_stack_now_ms () < until) {
        doc = s_btn_query ("/api/overview");
        json_t *paused = bf_json_at (doc, "deliveries.paused");
        got = json_is_true (paused);
        json_decref (doc);
        if (got != want)
            usleep (200000);
    }
    assert_int_equal (got, want);
}

/*  A notice's state.  */
static void
s_btn_notice (int64_t id, char *state, size_t statesize)
{
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT state FROM delivery WHERE id = %lld", (long long)id);
    bf_testdb_text (s_stack.conn, sql, state, statesize);
}

/*  notices.js's Pause and Resume dispatch (no arguments) and Retry selected
    ({ids: "a,c"}, sorted, joined by commas): with dispatch paused, the two
    selected failed notices are PENDING again and the third stays FAILED;
    resumed, the two go out.  */
static void
test_buttons_dispatch_and_retry_selected (void **state)
{
    (void)state;
    s_btn_sessions ();
    s_btn_paused (false);
    s_btn_refused ("dispatch.pause", NULL);
    s_btn_refused ("dispatch.resume", NULL);
    s_btn_refused ("deliveries.retry", "{\"ids\":\"1,2\"}");
    s_btn_paused (false);

    long notify_from = bf_proc_log_size (&s_stack.notify);
    json_t *result = s_btn_press ("dispatch.pause", "btn-pause-1", NULL);
    assert_true (bf_json_bool (result, "paused"));
    json_decref (result);
    s_btn_paused (true);
    /*  The switch is stored at once; the dispatcher reads it within a
        second (docs/notify.md): until it has, it may still claim.  */
    assert_true (bf_proc_wait_log (&s_stack.notify, ": paused", notify_from, 5000));

    /*  Three delivered notices failed (as a provider's refusal leaves them).  */
    int64_t ids[3];
    for (int i = 0; i < 3; i++) {
        char sql[256];
        snprintf (sql, sizeof sql,
                  "SELECT id FROM delivery WHERE state = 'DELIVERED' ORDER BY id OFFSET %d LIMIT 1",
                  i);
        ids[i] = s_scalar (sql);
    }
    char sql[512];
    snprintf (sql, sizeof sql,
              "UPDATE delivery SET state = 'FAILED', last_error = 'btn: refused by the provider',"
              " updated_at = now () WHERE id IN (%lld, %lld, %lld)",
              (long long)ids[0], (long long)ids[1], (long long)ids[2]);
    s_exec (sql);
    json_t *doc = s_btn_query ("/api/query/deliveries.failures?period=" PERIOD "&limit=500");
    assert_true (json_array_size (bf_json_at (doc, "failures")) >= 3);
    json_decref (doc);

    char args[128];
    snprintf (args, sizeof args, "{\"ids\":\"%lld,%lld\"}", (long long)ids[0], (long long)ids[2]);
    result = s_btn_press ("deliveries.retry", "btn-retry-selected-1", args);
    assert_string_equal (bf_json_str (result, "outcome"), "retrying");
    assert_int_equal (bf_json_int (result, "deliveries"), 2);
    json_decref (result);
    char st[32];
    s_btn_notice (ids[0], st, sizeof st);
    assert_string_equal (st, "PENDING");
    s_btn_notice (ids[2], st, sizeof st);
    assert_string_equal (st, "PENDING");
    s_btn_notice (ids[1], st, sizeof st);
    assert_string_equal (st, "FAILED");
    /*  Paused: they wait.  */
    usleep (1500000);
    s_btn_notice (ids[0], st, sizeof st);
    assert_string_equal (st, "PENDING");

    result = s_btn_press ("dispatch.resume", "btn-resume-dispatch-1", NULL);
    assert_false (bf_json_bool (result, "paused"));
    json_decref (result);
    s_btn_paused (false);
    /*  They went out: an attempt since the retry each.  */
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM delivery WHERE id IN (%lld, %lld)"
              " AND attempts > attempt_base",
              (long long)ids[0], (long long)ids[2]);
    int64_t until = bf_stack_now_ms () + 30000;
    while (s_scalar (sql) != 2 && bf_stack_now_ms () < until)
        usleep (200000);
    assert_int_equal (s_scalar (sql), 2);
    s_btn_notice (ids[1], st, sizeof st);
    assert_string_equal (st, "FAILED");
    snprintf (sql, sizeof sql,
              "SELECT count (*) FROM delivery WHERE id = %lld AND last_error ="
              " 'btn: refused by the provider'",
              (long long)ids[1]);
    assert_int_equal (s_scalar (sql), 1);
    /*  The third as it was.  */
    snprintf (sql, sizeof sql,
              "UPDATE delivery SET state = 'DELIVERED', last_error = NULL WHERE id = %lld",
              (long long)ids[1]);
    s_exec (sql);
}

/*  "YYYY-MM-DDTHH:MM" hours from now (UTC), as a datetime-local input
    gives it.  */
static void
s_btn_at (int hours, char out[17])
{
    time_t t = time (NULL) + (time_t)hours * 3600;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (out, 17, "%Y-%m-%dT%H:%M", &tm);
}

/*  run.js's Schedule ({period, at}) and Cancel schedule ({period}): the
    schedule shows on run.show with its time and command id, and is gone
    after the cancel.  */
static void
test_buttons_schedule (void **state)
{
    (void)state;
    s_btn_sessions ();
    char at[17], args[128];
    s_btn_at (48, at);
    snprintf (args, sizeof args, "{\"period\":\"" PERIOD "\",\"at\":\"%s\"}", at);
    const char *period_only = "{\"period\":\"" PERIOD "\"}";
    s_btn_refused ("run.schedule", args);
    s_btn_refused ("run.unschedule", period_only);
    json_t *doc = s_btn_query ("/api/query/run.show?period=" PERIOD);
    assert_true (json_is_null (bf_json_at (doc, "schedule")));
    json_decref (doc);

    json_t *result = s_btn_press ("run.schedule", "btn-schedule-1", args);
    assert_string_equal (bf_json_str (result, "outcome"), "scheduled");
    assert_string_equal (bf_json_str (result, "at"), at);
    json_decref (result);
    doc = s_btn_query ("/api/query/run.show?period=" PERIOD);
    assert_string_equal (bf_json_str (doc, "schedule.at"), at);
    assert_string_equal (bf_json_str (doc, "schedule.command_id"), "btn-schedule-1");
    json_decref (doc);

    result = s_btn_press ("run.unschedule", "btn-unschedule-1", period_only);
    assert_string_equal (bf_json_str (result, "outcome"), "unscheduled");
    json_decref (result);
    doc = s_btn_query ("/api/query/run.show?period=" PERIOD);
    assert_true (json_is_null (bf_json_at (doc, "schedule")));
    json_decref (doc);
    assert_int_equal (s_scalar ("SELECT count (*) FROM run_schedule"), 0);
}

/*  Hostile arguments for these buttons, as Kim: each a 400 naming the
    argument (no value quoted), a log line, nothing stored; the console
    still answers. Far past and future times the console refuses coarsely
    with its own clock; notify's exact window (its clock, which the stack
    sets to 2026-11-02, and its UTC offset) is tests/unit/test_cmdargs.c's.  */
static void
test_buttons_hostile_arguments (void **state)
{
    (void)state;
    s_btn_sessions ();
    /*  10,000 ids (48,894 bytes: within the body limit, over the value's).  */
    size_t size = 10000 * 6 + 64;
    char *many = malloc (size);
    size_t len = (size_t)snprintf (many, size, "{\"ids\":\"");
    for (int i = 1; i <= 10000; i++)
        len += (size_t)snprintf (many + len, size - len, i > 1 ? ",%d" : "%d", i);
    snprintf (many + len, size - len, "\"}");
    static const struct {
        const char *verb, *args, *part;
    } bad[] = {
        { "deliveries.retry", NULL,
          "the value of ids is longer than 256 bytes" }, /* the 10,000 ids */
        { "deliveries.retry", "{\"ids\":\"1,a\"}", "ids must be" },
        { "deliveries.retry", "{\"ids\":\"abc\"}", "ids must be" },
        { "deliveries.retry", "{\"ids\":\"5,5\"}", "ids must be" },
        { "deliveries.retry", "{\"ids\":\"-5\"}", "ids must be" },
        { "deliveries.retry", "{\"ids\":-5}", "ids must be" },
        { "deliveries.retry", "{\"ids\":\"99999999999999999999\"}", "ids must be" },
        { "deliveries.retry", "{\"ids\":\"1, 2\"}", "ids must be" },
        { "deliveries.retry", "{\"ids\":\"\"}", "ids must be" },
        { "deliveries.retry", "{\"ids\":\"\\u00ff\"}", "ids must be" },
        { "deliveries.retry", "{\"ids\":\"1\\u00002\"}", "the body is not JSON" }, /* a NUL */
        { "deliveries.retry", "{\"ids\":\"1\\u00012\"}",
          "the value of ids holds a control character" },
        { "deliveries.retry", "{\"run_id\":\"1e3\"}", "run_id must be" },
        { "deliveries.retry", "{\"ids\":\"1\xff\"}", "not valid UTF-8" },
        { "run.schedule", "{\"period\":\"" PERIOD "\",\"at\":\"tomorrow\"}", "at must be" },
        { "run.schedule", "{\"period\":\"" PERIOD "\",\"at\":\"2026-02-30T10:00\"}", "at must be" },
        { "run.schedule", "{\"period\":\"" PERIOD "\",\"at\":\"2026-12-08T24:00\"}", "at must be" },
        { "run.schedule", "{\"period\":\"" PERIOD "\",\"at\":\"1970-01-01T00:00\"}",
          "at is too far from now" },
        { "run.schedule", "{\"period\":\"" PERIOD "\",\"at\":\"9999-12-31T23:59\"}",
          "at is too far from now" },
        { "run.schedule", "{\"period\":\"2026-13\",\"at\":\"2026-12-08T10:00\"}",
          "period must be" },
        { "run.unschedule", "{\"period\":\"26-10\"}", "period must be" },
        { "run.stop", "{\"period\":\"2026-00\"}", "period must be" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char id[64];
        snprintf (id, sizeof id, "btn-bad-%zu", i);
        long from = bf_proc_log_size (&s_console);
        json_t *doc = s_btn_post (&s_btn_kim, true, bad[i].verb, id,
                                  bad[i].args ? bad[i].args : many + 0, 400);
        const char *error = json_string_value (json_object_get (doc, "error"));
        if (!error || !strstr (error, bad[i].part))
            fail_msg ("%s %s: error '%s' lacks '%s'", bad[i].verb, id, error ? error : "(none)",
                      bad[i].part);
        json_decref (doc);
        /*  A body that is not UTF-8 is refused before its route is read.  */
        char line[128];
        if (!strcmp (bad[i].part, "not valid UTF-8"))
            snprintf (line, sizeof line, "from 127.0.0.1 refused: the body is not valid UTF-8");
        else
            snprintf (line, sizeof line, "console: bad %s request from 127.0.0.1 (kim): %s",
                      bad[i].verb, bad[i].part);
        if (!bf_proc_wait_log (&s_console, line, from, 2000))
            fail_msg ("%s %s: no log line", bad[i].verb, id);
        char stored[32];
        assert_int_equal (s_btn_stored (id, stored, sizeof stored), 0);
        /*  And still answering.  */
        json_decref (s_btn_query ("/api/query/runs.list?limit=1"));
    }
    free (many);
    assert_int_equal (s_scalar ("SELECT count (*) FROM run_schedule"), 0);
    /*  Huge but well-formed ids are ids: no such notice, nothing retried.  */
    json_t *result = s_btn_press ("deliveries.retry", "btn-retry-huge",
                                  "{\"ids\":\"9223372036854775807,9223372036854775806\"}");
    assert_int_equal (bf_json_int (result, "deliveries"), 0);
    json_decref (result);
    assert_int_equal (s_scalar ("SELECT count (*) FROM run_schedule"), 0);
}

/*  One session's flood of queries (a viewer's script) meets its own
    console.session_rate, on a console of its own with a small rate
    (2 a second, burst 20, so that the flood is refused whatever the
    machine's speed): 429 with Retry-After once its burst is spent, never
    reaching control, while another session's requests during the flood
    all answer 200; after the wait it is served again. One warning names
    the user and the number refused, never the token;
    billflow_console_session_limited_total counts the refusals.  */
#define S_SFLOOD 100
#define S_SRATE 2
#define S_SBURST 20

typedef struct {
    const s_session_t *session;
    int port;
    long status[S_SFLOOD];
    int retry_after[S_SFLOOD]; /* seconds; -1: no header */
    char first_error[200];
    volatile int done;
} s_sflood_t;

static void *
s_sflood (void *arg)
{
    s_sflood_t *flood = arg;
    s_req_t req = { .session = flood->session, .port = flood->port };
    for (int i = 0; i < S_SFLOOD; i++) {
        s_resp_t resp;
        flood->status[i] = s_http ("/api/query/runs.list?limit=1", &req, &resp);
        const char *at = strcasestr (resp.headers, "\nRetry-After: ");
        flood->retry_after[i] = at ? atoi (at + strlen ("\nRetry-After: ")) : -1;
        if (flood->status[i] == 429 && !flood->first_error[0])
            snprintf (flood->first_error, sizeof flood->first_error, "%s", resp.body);
        free (resp.body);
        flood->done = i + 1;
    }
    return NULL;
}

static void
test_session_rate_limit (void **state)
{
    (void)state;
    static bf_proc_t limited;
    limited = s_console;
    limited.pid = 0;
    snprintf (limited.log, sizeof limited.log, "%.400s/console-limited.log", s_stack.dir);
    bf_proc_env (&limited, "BILLFLOW_CONSOLE_SESSION_RATE=%d", S_SRATE);
    bf_proc_env (&limited, "BILLFLOW_CONSOLE_SESSION_BURST=%d", S_SBURST);
    /*  Its own users file: the shared one was broken on purpose above.  */
    char users[600];
    snprintf (users, sizeof users, "%s/console-users-limited", s_stack.dir);
    s_adduser (users, "lee", "viewer", LEE_PW);
    s_adduser (users, "kim", "operator", KIM_PW);
    bf_proc_env (&limited, "BILLFLOW_CONSOLE_USERS_FILE=%s", users);
    bf_proc_start (&limited);
    int port = bf_proc_log_port (&limited, "console: serving HTTP", 0, 20000);
    int http_port = bf_proc_log_port (&limited, "http: serving /metrics", 0, 20000);
    if (port <= 0 || http_port <= 0) {
        s_log_tail ("the second console's log", limited.log);
        fail_msg ("the second console did not start");
    }
    s_session_t a, b;
    s_login_at (port, "lee", LEE_PW, &a);
    s_login_at (port, "kim", KIM_PW, &b);
    double limited_before = s_metric_at (http_port, "billflow_console_session_limited_total");
    double suite_before = s_metric ("billflow_console_session_limited_total");
    s_sflood_t flood = { .session = &a, .port = port };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_sflood, &flood), 0);
    /*  B, at an operator's pace (within its own burst), while A floods
        and while A's bucket is still empty afterwards.  */
    s_req_t me = { .session = &b, .port = port };
    int b_asked = 0;
    while (b_asked < S_SBURST / 2) {
        json_decref (s_expect ("/api/query/runs.list?limit=1", &me, 200));
        b_asked++;
        usleep (20000);
    }
    pthread_join (thread, NULL);
    assert_true (b_asked > 0);
    int served = 0, refused = 0, first_refused = -1, retry_after = 0;
    for (int i = 0; i < S_SFLOOD; i++) {
        if (flood.status[i] == 200)
            served++;
        else if (flood.status[i] == 429) {
            if (first_refused < 0)
                first_refused = i;
            refused++;
            if (flood.retry_after[i] < 1)
                fail_msg ("429 #%d without a Retry-After of at least 1 s", i);
            retry_after = flood.retry_after[i];
        } else
            fail_msg ("flood #%d: status %ld", i, flood.status[i]);
    }
    print_message ("flood: %d served, %d refused (first at #%d); B asked %d times\n", served,
                   refused, first_refused, b_asked);
    if (refused == 0)
        fail_msg ("a session's flood of %d queries was never refused", S_SFLOOD);
    /*  The whole burst first; never much more than the burst and the
        refill over the flood's time.  */
    assert_true (first_refused >= S_SBURST);
    assert_true (served < S_SFLOOD);
    assert_non_null (strstr (flood.first_error, "\"error\""));
    assert_non_null (strstr (flood.first_error, "too many requests"));
    assert_true (bf_proc_wait_log (&limited, "console: session of lee from 127.0.0.1 is over", 0,
                                   2000));
    char *log = bf_test_slurp (limited.log);
    assert_non_null (log);
    assert_null (strstr (log, a.cookie + strlen ("bf_session=")));
    free (log);
    assert_true (s_metric_at (http_port, "billflow_console_session_limited_total")
                     - limited_before
                 >= (double)refused);
    /*  The suite's console, with its own sessions, counted none.  */
    assert_true (s_metric ("billflow_console_session_limited_total") == suite_before);
    /*  After the wait it asked for, A is served again.  */
    sleep ((unsigned)retry_after);
    json_decref (s_expect ("/api/query/runs.list?limit=1", &(s_req_t){ .session = &a, .port = port },
                           200));
    assert_int_equal (bf_proc_stop (&limited, 10000), 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_pages_and_headers),
        cmocka_unit_test (test_login_and_query),
        cmocka_unit_test (test_run_by_post),
        cmocka_unit_test (test_subscriber_queries_masked),
        cmocka_unit_test (test_viewer_refused),
        cmocka_unit_test (test_csrf),
        cmocka_unit_test (test_overview_and_events),
        cmocka_unit_test (test_hostile_input),
        cmocka_unit_test (test_flood_and_slow_clients),
        cmocka_unit_test (test_logout),
        cmocka_unit_test (test_login_rate_limit),
        cmocka_unit_test (test_forwarded_for),
        cmocka_unit_test (test_adduser_while_running),
        cmocka_unit_test (test_tls),
        cmocka_unit_test (test_readyz_follows_control),
        cmocka_unit_test (test_no_contact_in_clear),
        cmocka_unit_test (test_buttons_stop_resume),
        cmocka_unit_test (test_buttons_dispatch_and_retry_selected),
        cmocka_unit_test (test_buttons_schedule),
        cmocka_unit_test (test_buttons_hostile_arguments),
        cmocka_unit_test (test_session_rate_limit),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
