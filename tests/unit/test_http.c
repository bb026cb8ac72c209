/*  bf_http and bf_health on loopback: status codes and methods, health
    and readiness bodies, and abusive clients (slowloris, a thousand
    connections, huge headers) that must not stop a legitimate scrape.

    The legitimate client connects from 127.0.0.2 (any 127/8 address is
    loopback on Linux) so that the per-address limit that stops the
    abusive client at 127.0.0.1 does not apply to it, as a Prometheus
    server on another host would not share a client's address.  */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bf_health.h"
#include "bf_http.h"
#include "bf_metrics.h"
#include "bf_testutil.h"

static int64_t
s_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep (&ts, NULL);
}

/*  A TCP connection to 127.0.0.1:port from source address src; -1 on
    failure. Blocking, with a 10 s receive timeout.  */
static int
s_connect (const char *src, int port, bool nonblocking)
{
    int fd = socket (AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = { .sin_family = AF_INET };
    if (src) {
        inet_pton (AF_INET, src, &addr.sin_addr);
        if (bind (fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
            close (fd);
            return -1;
        }
    }
    struct timeval tv = { 10, 0 };
    setsockopt (fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    addr.sin_port = htons ((uint16_t)port);
    inet_pton (AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect (fd, (struct sockaddr *)&addr, sizeof addr) != 0 && errno != EINPROGRESS) {
        close (fd);
        return -1;
    }
    return fd;
}

/*  Sends request whole, reads the response until the server closes (or
    10 s pass) into out; returns the status code, 0 when no status line
    arrived (refused, reset or closed).  */
static int
s_exchange (const char *src, int port, const char *request, char *out, size_t outsize)
{
    out[0] = 0;
    int fd = s_connect (src, port, false);
    if (fd < 0)
        return 0;
    size_t len = strlen (request), sent = 0;
    while (sent < len) {
        ssize_t n = send (fd, request + sent, len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    size_t got = 0;
    while (got + 1 < outsize) {
        ssize_t n = recv (fd, out + got, outsize - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = 0;
    close (fd);
    int status = 0;
    if (sscanf (out, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    return status;
}

static int
s_get (int port, const char *method, const char *path, char *out, size_t outsize)
{
    char request[256];
    snprintf (request, sizeof request, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
              method, path);
    return s_exchange ("127.0.0.2", port, request, out, outsize);
}

static bf_http_t *
s_start (int64_t stale_ms)
{
    char err[256];
    bf_http_args_t args = { .address = "127.0.0.1:0", .program = "test", .stale_ms = stale_ms };
    bf_http_t *http = bf_http_start (&args, err, sizeof err);
    if (!http)
        fail_msg ("bf_http_start: %s", err);
    assert_true (bf_http_port (http) > 0);
    return http;
}

static void
test_addresses (void **state)
{
    (void)state;
    char err[256];
    assert_true (bf_http_is_off ("off"));
    assert_true (bf_http_is_off (""));
    assert_false (bf_http_is_off ("127.0.0.1:9101"));
    assert_int_equal (bf_http_check_address ("127.0.0.1:9101", err, sizeof err), 0);
    assert_int_equal (bf_http_check_address ("0.0.0.0:0", err, sizeof err), 0);
    assert_int_equal (bf_http_check_address ("[::1]:9101", err, sizeof err), 0);
    assert_int_equal (bf_http_check_address ("off", err, sizeof err), 0);
    const char *bad[] = { "localhost:9101", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
                          "127.0.0.1:-1", "127.0.0.1:9x", ":9101", "[::1:9101", "1.2.3:80" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        assert_int_equal (bf_http_check_address (bad[i], err, sizeof err), -1);
        assert_true (*err);
    }
    /*  A port already in use is a clear error, not a crash.  */
    bf_http_t *a = s_start (1000);
    char address[64];
    snprintf (address, sizeof address, "127.0.0.1:%d", bf_http_port (a));
    bf_http_args_t args = { .address = address, .program = "test" };
    assert_null (bf_http_start (&args, err, sizeof err));
    assert_non_null (strstr (err, "cannot listen"));
    bf_http_stop (&a);
    bf_http_stop (&a);
}

static void
test_paths_and_methods (void **state)
{
    (void)state;
    bf_metrics_init ();
    bf_http_t *http = s_start (60000);
    int port = bf_http_port (http);
    static char body[1 << 16];
    assert_int_equal (s_get (port, "GET", "/metrics", body, sizeof body), 200);
    assert_non_null (strstr (body, "Content-Type: text/plain; version=0.0.4"));
    assert_non_null (strstr (body, "\r\n\r\n# HELP "));
    assert_non_null (strstr (body, "\nbillflow_build_info{version=\""));
    assert_non_null (strstr (body, "billflow_http_requests_total{path=\"/metrics\"} 1\n"));
    assert_int_equal (s_get (port, "HEAD", "/metrics", body, sizeof body), 200);
    assert_null (strstr (body, "# HELP")); /* no body on HEAD */
    assert_int_equal (s_get (port, "GET", "/", body, sizeof body), 404);
    assert_int_equal (s_get (port, "GET", "/metrics/x", body, sizeof body), 404);
    assert_int_equal (s_get (port, "GET", "/../etc/passwd", body, sizeof body), 404);
    const char *methods[] = { "POST", "PUT", "DELETE", "PATCH", "OPTIONS" };
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal (s_get (port, methods[i], "/metrics", body, sizeof body), 405);
        assert_non_null (strstr (body, "Allow: GET, HEAD\r\n"));
    }
    /*  A POST with a body is refused before the body matters.  */
    assert_int_equal (s_exchange ("127.0.0.2", port,
                                  "POST /readyz HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                  "Connection: close\r\n\r\nhello",
                                  body, sizeof body),
                      405);
    assert_int_equal (s_get (port, "GET", "/metrics", body, sizeof body), 200);
    assert_non_null (strstr (body, "billflow_http_requests_total{path=\"other\"} 3\n"));
    bf_http_stop (&http);
}

static atomic_int s_phase;

/*  An actor that beats, then stays busy until s_phase reaches 1, goes
    idle until 2, then ends.  */
static void *
s_actor (void *arg)
{
    (void)arg;
    bf_health_beat ("stuckling");
    while (atomic_load (&s_phase) < 1)
        s_sleep_ms (1);
    bf_health_idle ("stuckling");
    while (atomic_load (&s_phase) < 2)
        s_sleep_ms (1);
    return NULL;
}

static void
test_healthz_names_a_stuck_actor (void **state)
{
    (void)state;
    bf_health_reset ();
    bf_http_t *http = s_start (20); /* busy for more than 20 ms = stuck */
    int port = bf_http_port (http);
    static char body[8192];
    assert_int_equal (s_get (port, "GET", "/healthz", body, sizeof body), 200);
    assert_non_null (strstr (body, "test live\nok: 0 actors turning\n"));
    atomic_store (&s_phase, 0);
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_actor, NULL), 0);
    s_sleep_ms (100);
    assert_int_equal (s_get (port, "GET", "/healthz", body, sizeof body), 503);
    assert_non_null (strstr (body, "test NOT LIVE\nstuck: stuckling#1 busy for "));
    /*  Waiting for work is not being stuck, however long it lasts.  */
    atomic_store (&s_phase, 1);
    s_sleep_ms (100);
    assert_int_equal (s_get (port, "GET", "/healthz", body, sizeof body), 200);
    assert_non_null (strstr (body, "ok: 1 actor turning\n"));
    /*  A thread that ended leaves no entry behind, and is counted as
        ended (the "actors" readiness check reads it).  */
    uint64_t ended = bf_health_actors_ended (NULL, 0);
    atomic_store (&s_phase, 2);
    pthread_join (thread, NULL);
    char last[48];
    assert_int_equal (bf_health_actors_ended (last, sizeof last), ended + 1);
    assert_string_equal (last, "stuckling#1");
    assert_int_equal (s_get (port, "GET", "/healthz", body, sizeof body), 200);
    assert_non_null (strstr (body, "ok: 0 actors turning\n"));
    bf_http_stop (&http);
}

static void
test_readyz_lists_every_check (void **state)
{
    (void)state;
    bf_health_reset ();
    static atomic_bool config = true, sockets = false;
    bf_health_ready_add ("config loaded", bf_health_flag_check, &config);
    bf_health_ready_add ("postgresql", bf_health_ready_db, NULL);
    bf_health_ready_add ("sockets bound", bf_health_flag_check, &sockets);
    bf_health_info_set ("role", "standby");
    bf_http_t *http = s_start (60000);
    int port = bf_http_port (http);
    static char body[8192];
    assert_int_equal (s_get (port, "GET", "/readyz", body, sizeof body), 503);
    assert_non_null (strstr (body, "test NOT READY\nconfig loaded: ok (yes)\n"
                                   "postgresql: FAIL (not yet connected)\n"
                                   "sockets bound: FAIL (no)\nrole: standby\n"));
    atomic_store (&sockets, true);
    bf_health_db_seen (true);
    bf_health_info_set ("role", "leader");
    assert_int_equal (s_get (port, "GET", "/readyz", body, sizeof body), 200);
    assert_non_null (strstr (body, "test ready\nconfig loaded: ok (yes)\npostgresql: ok (up, "));
    assert_non_null (strstr (body, "\nrole: leader\n"));
    bf_health_db_seen (false);
    assert_int_equal (s_get (port, "GET", "/readyz", body, sizeof body), 503);
    assert_non_null (strstr (body, "postgresql: FAIL (down for "));
    bf_health_db_seen (true);
    assert_int_equal (s_get (port, "GET", "/readyz", body, sizeof body), 200);
    bf_health_info_set ("role", NULL);
    assert_int_equal (s_get (port, "GET", "/readyz", body, sizeof body), 200);
    assert_null (strstr (body, "role:"));
    /*  A removed check no longer runs (the console removes its "control"
        check before freeing what it reads).  */
    atomic_store (&sockets, false);
    assert_int_equal (s_get (port, "GET", "/readyz", body, sizeof body), 503);
    bf_health_ready_remove ("sockets bound");
    assert_int_equal (s_get (port, "GET", "/readyz", body, sizeof body), 200);
    assert_null (strstr (body, "sockets bound"));
    assert_non_null (strstr (body, "config loaded: ok (yes)\npostgresql: ok (up, "));
    bf_http_stop (&http);
    bf_health_reset ();
}

static void
test_huge_headers_are_refused (void **state)
{
    (void)state;
    bf_http_t *http = s_start (60000);
    size_t size = 64 * 1024;
    char *request = malloc (size + 256);
    assert_non_null (request);
    int n = snprintf (request, 256, "GET /metrics HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset (request + n, 'a', size);
    strcpy (request + n + size, "\r\nConnection: close\r\n\r\n");
    static char body[1 << 16];
    int status = s_exchange ("127.0.0.2", bf_http_port (http), request, body, sizeof body);
    /*  431 (or the connection closed without an answer); never served.  */
    assert_true (status == 431 || status == 0);
    assert_null (strstr (body, "billflow_"));
    /*  And the server still serves the next client.  */
    assert_int_equal (s_get (bf_http_port (http), "GET", "/metrics", body, sizeof body), 200);
    free (request);
    bf_http_stop (&http);
}

typedef struct {
    int port;
    atomic_bool stop;
    int held; /* connections it kept dribbling */
} slowloris_t;

/*  Opens 20 connections from 127.0.0.1 and sends each a header byte
    every 50 ms, never finishing a request.  */
static void *
s_slowloris (void *arg)
{
    slowloris_t *self = arg;
    int fds[20];
    for (int i = 0; i < 20; i++)
        fds[i] = s_connect ("127.0.0.1", self->port, false);
    const char *text = "GET /metrics HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    size_t at = 0;
    while (!atomic_load (&self->stop)) {
        for (int i = 0; i < 20; i++)
            if (fds[i] >= 0 && send (fds[i], text + at % strlen (text), 1, MSG_NOSIGNAL) != 1) {
                close (fds[i]);
                fds[i] = -1;
            }
        at++;
        s_sleep_ms (50);
    }
    for (int i = 0; i < 20; i++)
        if (fds[i] >= 0) {
            self->held++;
            close (fds[i]);
        }
    return NULL;
}

static void
test_abusive_clients_do_not_stop_a_scrape (void **state)
{
    (void)state;
    bf_http_t *http = s_start (60000);
    int port = bf_http_port (http);
    slowloris_t loris = { .port = port };
    pthread_t thread;
    assert_int_equal (pthread_create (&thread, NULL, s_slowloris, &loris), 0);
    s_sleep_ms (200);
    /*  A thousand connection attempts from one address, held open.  */
    enum { FLOOD = 1000 };
    static int flood[FLOOD];
    int opened = 0;
    for (int i = 0; i < FLOOD; i++) {
        flood[i] = s_connect ("127.0.0.1", port, true);
        opened += flood[i] >= 0;
    }
    assert_true (opened > 100); /* the flood really happened */
    /*  Meanwhile, scrapes from another address answer, and promptly.  */
    static char body[1 << 16];
    for (int i = 0; i < 5; i++) {
        int64_t start = s_now_ms ();
        assert_int_equal (s_get (port, "GET", "/metrics", body, sizeof body), 200);
        assert_non_null (strstr (body, "billflow_build_info"));
        int64_t took = s_now_ms () - start;
        if (took > 2000)
            fail_msg ("a scrape took %lld ms under abuse", (long long)took);
    }
    assert_int_equal (s_get (port, "GET", "/healthz", body, sizeof body), 200);
    atomic_store (&loris.stop, true);
    pthread_join (thread, NULL);
    for (int i = 0; i < FLOOD; i++)
        if (flood[i] >= 0)
            close (flood[i]);
    bf_http_stop (&http);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_addresses),
        cmocka_unit_test (test_paths_and_methods),
        cmocka_unit_test (test_healthz_names_a_stuck_actor),
        cmocka_unit_test (test_readyz_lists_every_check),
        cmocka_unit_test (test_huge_headers_are_refused),
        cmocka_unit_test (test_abusive_clients_do_not_stop_a_scrape),
    };
    return cmocka_run_group_tests (tests, bf_testutil_quiet_setup, bf_testutil_quiet_teardown);
}
