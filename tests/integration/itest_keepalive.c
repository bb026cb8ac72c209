/*  itest_keepalive — every connection notices a dead peer in bounded time
    (issue 16): the TCP keepalives and timeouts bf_db gives every database
    connection, on both ends, and the ZMTP heartbeats bf_zmq gives every
    ZeroMQ socket between services.

    Database (the throwaway cluster of scripts/pgtmp, reached over TCP on
    127.0.0.1 and over its Unix socket): a bf_db_connect connection carries
    the configured values on its socket (getsockopt) and in its session
    (pg_settings); a conninfo's own keepalives_idle wins on the client; a
    Unix-socket connection works (the settings are ignored there); a fence
    (bf_dbfence.h) tightens both ends to its own values.

    ZeroMQ: a peer that stops answering (a process stopped with SIGSTOP:
    its kernel still acknowledges TCP, so only the ZMTP heartbeat can tell)
    is noticed within interval + timeout, by a connecting DEALER and by a
    bound ROUTER (their monitor's DISCONNECTED). The peer is this program
    run again with --peer (exec'd, so it shares no ZeroMQ context).  */

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>

#include "bf_db.h"
#include "bf_dbfence.h"
#include "bf_testdb.h"
#include "bf_zmq.h"

/*  --- the database ----------------------------------------------------- */

/*  A bf_db connection to the pgtmp cluster over TCP (its 127.0.0.1
    listener), with extra appended to the conninfo.  */
static PGconn *
s_connect_tcp (const char *extra)
{
    const char *port = getenv ("PGPORT"), *user = getenv ("PGUSER");
    const char *db = getenv ("PGDATABASE");
    assert_non_null (port);
    char conninfo[512];
    snprintf (conninfo, sizeof conninfo, "host=127.0.0.1 port=%s user=%s dbname=%s %s", port,
              user ? user : "postgres", db ? db : "postgres", extra);
    PGconn *conn = bf_db_connect (conninfo, "itest-keepalive", 10000);
    assert_non_null (conn);
    return conn;
}

static int
s_sockopt (PGconn *conn, int level, int name)
{
    int value = -1;
    socklen_t len = sizeof value;
    assert_int_equal (getsockopt (PQsocket (conn), level, name, &value, &len), 0);
    return value;
}

/*  The session's raw value of a setting (ms or s, no unit).  */
static int64_t
s_setting (PGconn *conn, const char *name)
{
    char sql[128];
    snprintf (sql, sizeof sql, "SELECT setting::bigint FROM pg_settings WHERE name = '%s'", name);
    return bf_testdb_scalar (conn, sql);
}

static void
s_assert_client (PGconn *conn, int idle, int interval, int count, int timeout_ms)
{
    assert_int_equal (s_sockopt (conn, SOL_SOCKET, SO_KEEPALIVE), 1);
    assert_int_equal (s_sockopt (conn, IPPROTO_TCP, TCP_KEEPIDLE), idle);
    assert_int_equal (s_sockopt (conn, IPPROTO_TCP, TCP_KEEPINTVL), interval);
    assert_int_equal (s_sockopt (conn, IPPROTO_TCP, TCP_KEEPCNT), count);
    assert_int_equal (s_sockopt (conn, IPPROTO_TCP, TCP_USER_TIMEOUT), timeout_ms);
}

static void
s_assert_server (PGconn *conn, int idle, int interval, int count, int timeout_ms)
{
    assert_int_equal (s_setting (conn, "tcp_keepalives_idle"), idle);
    assert_int_equal (s_setting (conn, "tcp_keepalives_interval"), interval);
    assert_int_equal (s_setting (conn, "tcp_keepalives_count"), count);
    assert_int_equal (s_setting (conn, "tcp_user_timeout"), timeout_ms);
}

/*  Every connection carries the configured values on both ends.  */
static void
test_db_connection_has_keepalives (void **state)
{
    (void)state;
    bf_db_configure_keepalive (&(bf_db_keepalive_t){ 7, 3, 5, 21000 });
    PGconn *conn = s_connect_tcp ("");
    s_assert_client (conn, 7, 3, 5, 21000);
    s_assert_server (conn, 7, 3, 5, 21000);
    PQfinish (conn);

    /*  The defaults, as bf_service_load sets them from the config's.  */
    bf_db_configure_keepalive (&(bf_db_keepalive_t){ 10, 5, 4, 30000 });
    conn = s_connect_tcp ("");
    s_assert_client (conn, 10, 5, 4, 30000);
    s_assert_server (conn, 10, 5, 4, 30000);
    PQfinish (conn);
}

/*  A conninfo's own client setting wins over the process's.  */
static void
test_db_conninfo_wins (void **state)
{
    (void)state;
    bf_db_configure_keepalive (&(bf_db_keepalive_t){ 7, 3, 5, 21000 });
    PGconn *conn = s_connect_tcp ("keepalives_idle=42");
    assert_int_equal (s_sockopt (conn, IPPROTO_TCP, TCP_KEEPIDLE), 42);
    assert_int_equal (s_sockopt (conn, IPPROTO_TCP, TCP_KEEPINTVL), 3);
    PQfinish (conn);
}

/*  Over the Unix socket the settings are ignored, and nothing breaks.  */
static void
test_db_unix_socket (void **state)
{
    (void)state;
    bf_db_configure_keepalive (&(bf_db_keepalive_t){ 7, 3, 5, 21000 });
    const char *host = getenv ("PGHOST");
    assert_true (host && host[0] == '/');
    PGconn *conn = bf_db_connect ("", "itest-keepalive", 10000);
    assert_non_null (conn);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT 40 + 2"), 42);
    /*  The server reads them as zero there (PostgreSQL's documentation).  */
    assert_int_equal (s_setting (conn, "tcp_keepalives_idle"), 0);
    assert_int_equal (bf_db_fence (conn, 3000), 0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT 40 + 2"), 42);
    PQfinish (conn);
}

/*  A leader's fence tightens both ends beyond the process's values.  */
static void
test_db_fence_tightens (void **state)
{
    (void)state;
    bf_db_configure_keepalive (&(bf_db_keepalive_t){ 10, 5, 4, 30000 });
    PGconn *conn = s_connect_tcp ("");
    assert_int_equal (bf_db_fence (conn, 3000), 0);
    /*  Client: guard/2 idle, 1 s probes, guard; server: guard idle, one
        probe more, 2 × guard + 1 s (bf_dbfence.h).  */
    s_assert_client (conn, 2, 1, 2, 3000);
    s_assert_server (conn, 3, 1, 4, 7000);
    assert_int_equal (bf_db_fence_server_ms (3000), 7000);
    PQfinish (conn);
}

/*  --- ZeroMQ --------------------------------------------------------- */

#define S_IVL_MS     300
#define S_TIMEOUT_MS 1200
/*  interval + timeout, and room for a loaded machine.  */
#define S_BOUND_MS (S_IVL_MS + S_TIMEOUT_MS + 1500)

/*  The peer: `--peer router` binds a ROUTER on loopback, prints its
    endpoint and echoes; `--peer dealer ENDPOINT` connects, says hello and
    reads. No heartbeats of its own: it only answers the other's PINGs.  */
static int
s_peer_main (int argc, char **argv)
{
    zsys_init ();
    if (argc >= 3 && !strcmp (argv[2], "router")) {
        zsock_t *router = zsock_new_router ("tcp://127.0.0.1:*");
        if (!router)
            return 1;
        printf ("%s\n", zsock_endpoint (router));
        fflush (stdout);
        for (zmsg_t *msg; (msg = zmsg_recv (router));)
            zmsg_send (&msg, router);
        return 0;
    }
    if (argc >= 4 && !strcmp (argv[2], "dealer")) {
        zsock_t *dealer = zsock_new_dealer (argv[3]);
        if (!dealer)
            return 1;
        zstr_send (dealer, "hello");
        for (zmsg_t *msg; (msg = zmsg_recv (dealer));)
            zmsg_destroy (&msg);
        return 0;
    }
    return 2;
}

/*  Starts this program as a peer; its stdout (the router's endpoint) into
    out when out is not NULL. Returns its pid.  */
static pid_t
s_peer_start (const char *mode, const char *endpoint, char *out, size_t outsize)
{
    int fds[2];
    assert_int_equal (pipe (fds), 0);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        dup2 (fds[1], STDOUT_FILENO);
        close (fds[0]);
        close (fds[1]);
        execl ("/proc/self/exe", "itest_keepalive", "--peer", mode, endpoint, (char *)NULL);
        _exit (127);
    }
    close (fds[1]);
    if (out) {
        FILE *in = fdopen (fds[0], "r");
        assert_non_null (in);
        assert_non_null (fgets (out, (int)outsize, in));
        out[strcspn (out, "\n")] = '\0';
        fclose (in);
    } else
        close (fds[0]);
    return pid;
}

static void
s_peer_end (pid_t pid)
{
    kill (pid, SIGKILL);
    waitpid (pid, NULL, 0);
}

/*  A monitor of sock's DISCONNECTED events.  */
static zactor_t *
s_monitor (zsock_t *sock)
{
    zactor_t *monitor = zactor_new (zmonitor, sock);
    assert_non_null (monitor);
    zstr_sendx (monitor, "LISTEN", "DISCONNECTED", NULL);
    zstr_send (monitor, "START");
    zsock_wait (monitor);
    return monitor;
}

/*  ms until the monitor reports DISCONNECTED, or -1 within wait_ms.  */
static int64_t
s_disconnected_after (zactor_t *monitor, int wait_ms)
{
    int64_t began = zclock_mono ();
    zsock_set_rcvtimeo (monitor, wait_ms);
    zmsg_t *event = zmsg_recv (monitor);
    if (!event)
        return -1;
    char *name = zmsg_popstr (event);
    bool disconnected = name && !strcmp (name, "DISCONNECTED");
    free (name);
    zmsg_destroy (&event);
    return disconnected ? zclock_mono () - began : -1;
}

/*  A connecting DEALER notices a peer that stopped answering.  */
static void
test_zmq_dealer_notices_silent_peer (void **state)
{
    (void)state;
    bf_zmq_configure (S_IVL_MS, S_TIMEOUT_MS);
    char endpoint[256];
    pid_t peer = s_peer_start ("router", NULL, endpoint, sizeof endpoint);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert_non_null (dealer);
    bf_zmq_heartbeat (dealer);
    zactor_t *monitor = s_monitor (dealer);
    assert_int_equal (zsock_connect (dealer, "%s", endpoint), 0);
    zsock_set_rcvtimeo (dealer, 5000);
    zstr_send (dealer, "ping");
    char *echo = zstr_recv (dealer);
    assert_string_equal (echo, "ping");
    free (echo);
    /*  Heard for several intervals while it answers.  */
    assert_int_equal (s_disconnected_after (monitor, 3 * S_IVL_MS), -1);
    kill (peer, SIGSTOP);
    int64_t took = s_disconnected_after (monitor, 10000);
    printf ("# DEALER: silent peer noticed after %lld ms (bound %d)\n", (long long)took,
            S_BOUND_MS);
    s_peer_end (peer);
    zactor_destroy (&monitor);
    zsock_destroy (&dealer);
    assert_true (took >= 0 && took <= S_BOUND_MS);
}

/*  A bound ROUTER drops a peer that stopped answering.  */
static void
test_zmq_router_drops_silent_peer (void **state)
{
    (void)state;
    bf_zmq_configure (S_IVL_MS, S_TIMEOUT_MS);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert_non_null (router);
    bf_zmq_heartbeat (router);
    zactor_t *monitor = s_monitor (router);
    assert_true (zsock_bind (router, "tcp://127.0.0.1:*") > 0);
    char endpoint[256];
    snprintf (endpoint, sizeof endpoint, "%s", zsock_endpoint (router));
    pid_t peer = s_peer_start ("dealer", endpoint, NULL, 0);
    zsock_set_rcvtimeo (router, 5000);
    zmsg_t *hello = zmsg_recv (router);
    assert_non_null (hello);
    zmsg_destroy (&hello);
    assert_int_equal (s_disconnected_after (monitor, 3 * S_IVL_MS), -1);
    kill (peer, SIGSTOP);
    int64_t took = s_disconnected_after (monitor, 10000);
    printf ("# ROUTER: silent peer dropped after %lld ms (bound %d)\n", (long long)took,
            S_BOUND_MS);
    s_peer_end (peer);
    zactor_destroy (&monitor);
    zsock_destroy (&router);
    assert_true (took >= 0 && took <= S_BOUND_MS);
}

int
main (int argc, char **argv)
{
    if (argc >= 2 && !strcmp (argv[1], "--peer"))
        return s_peer_main (argc, argv);
    zsys_init ();
    zsys_set_linger (0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_db_connection_has_keepalives),
        cmocka_unit_test (test_db_conninfo_wins),
        cmocka_unit_test (test_db_unix_socket),
        cmocka_unit_test (test_db_fence_tightens),
        cmocka_unit_test (test_zmq_dealer_notices_silent_peer),
        cmocka_unit_test (test_zmq_router_drops_silent_peer),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
