/*  itest_stream — settle's event stream on the real settle binary (issue
    11, defect 8; docs/guarantees.md "Event stream and replay").

    - Only a listed service key bound to notify reads it: a client without
      CURVE, an unknown key, listed operator and viewer keys, settle's own
      key and a service key bound to nothing get nothing from PUB (not even
      a heartbeat) and no answer from replay, while notify's key gets both.
    - A flood does not delay a legitimate fetch: 20,000 one-frame requests
      and malformed ones from clients that never read (one of them leaves
      midway), plus valid requests past the per-peer bound, delay notify's
      fetch by at most 100 ms over the same fetch unflooded.
    - Malformed requests cost no database query (PostgreSQL's own record:
      pg_stat_activity.query_start of replay's session does not move) and
      their warnings are limited, the rest counted in summary lines.
    - settle and notify refuse to start (exit 2, naming the setting) without
      their keys or the list.  */

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bf_curve.h"
#include "bf_log.h"
#include "bf_testdb.h"
#include "bf_teststack.h"
#include "bf_wire.h"

#define PERIOD      "2026-10"
#define SUBSCRIBERS 300
#define FLOOD       20000

static bf_stack_t s_stack;
static uint64_t s_events; /* events in the outbox: seq 1..s_events */

static int
s_setup (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    bf_stack_init (s);
    char *out = NULL;
    if (bf_testdb_billdata (s->db, &out, "generate --subscribers %d --period %s --seed 17",
                            SUBSCRIBERS, PERIOD)
        != 0)
        return -1;
    free (out);
    if (bf_testdb_settle_once (s->db, PERIOD) != 0)
        return -1;
    s_events = (uint64_t)bf_testdb_scalar (s->conn, "SELECT last_seq FROM relay_state");
    if (s_events < 10)
        return -1;
    //  The service: relay (PUB, heartbeats every 100 ms) and replay.
    bf_proc_env (&s->settle[0], "BILLFLOW_SETTLE_HEARTBEAT_MS=100");
    bf_proc_env (&s->settle[0], "BILLFLOW_LOG_LEVEL=info");
    bf_proc_start (&s->settle[0]);
    if (!bf_proc_wait_log (&s->settle[0], "replay: answering on", 0, 15000)
        || !bf_proc_wait_log (&s->settle[0], "publishing on", 0, 15000))
        return -1;
    return 0;
}

static int
s_teardown (void **state)
{
    (void)state;
    bf_stack_destroy (&s_stack);
    return 0;
}

/*  A socket of type with the named key as CURVE client of settle (NULL:
    no CURVE), connected to endpoint.  */
static zsock_t *
s_client (int type, const char *key_name, const char *endpoint)
{
    zsock_t *sock = zsock_new (type);
    assert_non_null (sock);
    zsock_set_linger (sock, 0);
    if (key_name) {
        char path[600], err[256];
        bf_stack_key_path (&s_stack, key_name, path, sizeof path);
        zcert_t *cert = bf_curve_load_secret (path, err, sizeof err);
        if (!cert)
            fail_msg ("%s", err);
        assert_int_equal (bf_curve_client (sock, cert, s_stack.settle_key, err, sizeof err), 0);
        zcert_destroy (&cert);
    }
    if (type == ZMQ_SUB)
        zsock_set_subscribe (sock, "");
    assert_int_equal (zsock_connect (sock, "%s", endpoint), 0);
    return sock;
}

static zsock_t *
s_replay_client (const char *key_name)
{
    char endpoint[600];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/replay-1", s_stack.dir);
    return s_client (ZMQ_DEALER, key_name, endpoint);
}

static zsock_t *
s_pub_client (const char *key_name)
{
    char endpoint[600];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/pub", s_stack.dir);
    return s_client (ZMQ_SUB, key_name, endpoint);
}

static zmsg_t *
s_fetch_msg (const char *request_id, uint64_t from, uint32_t count)
{
    Billflow__ReplayFetch fetch = BILLFLOW__REPLAY_FETCH__INIT;
    fetch.schema_version = BF_SCHEMA_VERSION;
    fetch.request_id = (char *)request_id;
    fetch.from_seq = from;
    fetch.count = count;
    zmsg_t *msg = bf_wire_encode (BF_MSG_RPL_FETCH, 0, &fetch.base);
    assert_non_null (msg);
    return msg;
}

/*  Sends a fetch of [from, from + count) and reads its answer to the end.
    Returns the events received (checked in order), or -1 when no answer
    came within timeout_ms; *ms is the time to the answer's end.  */
static int64_t
s_fetch (zsock_t *dealer, const char *request_id, uint64_t from, uint32_t count,
         int timeout_ms, int64_t *ms)
{
    int64_t start = bf_stack_now_ms ();
    zmsg_t *msg = s_fetch_msg (request_id, from, count);
    assert_int_equal (zmsg_send (&msg, dealer), 0);
    uint64_t next = from, end = from + count;
    int64_t events = 0;
    while (next < end) {
        int64_t left = start + timeout_ms - bf_stack_now_ms ();
        if (left <= 0)
            return -1;
        zsock_set_rcvtimeo (dealer, (int)left);
        zmsg_t *reply = zmsg_recv (dealer);
        if (!reply)
            return -1;
        const uint8_t *frames[BF_WIRE_FRAMES];
        size_t sizes[BF_WIRE_FRAMES];
        assert_int_equal (zmsg_size (reply), BF_WIRE_FRAMES);
        zframe_t *frame = zmsg_first (reply);
        for (int i = 0; i < BF_WIRE_FRAMES; i++, frame = zmsg_next (reply)) {
            frames[i] = zframe_data (frame);
            sizes[i] = zframe_size (frame);
        }
        bf_wire_msg_t m = BF_WIRE_MSG_INIT;
        char err[256];
        assert_int_equal (bf_wire_decode (frames, sizes, BF_WIRE_FRAMES, BF_WIRE_MAX_PAYLOAD, &m,
                                          err, sizeof err),
                          BF_WIRE_OK);
        zmsg_destroy (&reply);
        Billflow__ReplayBatch *batch = bf_wire_replay_batch (&m);
        assert_non_null (batch);
        if (strcmp (batch->request_id, request_id) != 0) {
            bf_wire_msg_reset (&m);
            continue; //  an answer to an earlier request that timed out
        }
        if (batch->status != BILLFLOW__REPLAY_BATCH__STATUS__STATUS_OK)
            fail_msg ("%s: status %d: %s", request_id, batch->status, batch->error);
        for (size_t i = 0; i < batch->n_events; i++) {
            assert_int_equal (batch->events[i]->seq, next);
            next++;
            events++;
        }
        if (batch->last_published_seq + 1 < end)
            end = batch->last_published_seq + 1;
        bf_wire_msg_reset (&m);
    }
    *ms = bf_stack_now_ms () - start;
    return events;
}

/*  True when sock receives any message within ms.  */
static bool
s_hears (zsock_t *sock, int ms)
{
    zsock_set_rcvtimeo (sock, ms);
    zmsg_t *msg = zmsg_recv (sock);
    bool heard = msg != NULL;
    zmsg_destroy (&msg);
    return heard;
}

static void
test_only_service_keys_read_the_stream (void **state)
{
    (void)state;
    //  Not allowed: no CURVE, a key not in the list, listed keys whose role
    //  may not read events, and service keys not bound to notify (settle's
    //  own, and one bound to nothing).
    const char *refused[] = { NULL, "intruder", "viewer", "ops-a", "settle", "spare" };
    enum { N = sizeof refused / sizeof refused[0] };
    zsock_t *subs[N], *dealers[N];
    long from = bf_proc_log_size (&s_stack.settle[0]);
    for (int i = 0; i < N; i++) {
        subs[i] = s_pub_client (refused[i]);
        dealers[i] = s_replay_client (refused[i]);
        zmsg_t *msg = s_fetch_msg ("r-refused", 1, 100);
        //  A DEALER queues the request until a connection is up; it never is.
        zsock_set_sndtimeo (dealers[i], 0);
        zmsg_send (&msg, dealers[i]);
        zmsg_destroy (&msg);
    }
    //  notify's key reads both.
    zsock_t *sub = s_pub_client ("notify");
    zsock_t *dealer = s_replay_client ("notify");
    assert_true (s_hears (sub, 5000)); //  a relay heartbeat at least
    int64_t ms;
    assert_int_equal (s_fetch (dealer, "r-notify", 1, 10, 5000, &ms), 10);
    //  Meanwhile (and for 1.5 s more, 15 heartbeats) the others got nothing.
    for (int i = 0; i < N; i++) {
        if (s_hears (subs[i], i == 0 ? 1500 : 10))
            fail_msg ("PUB: client %s read the stream", refused[i] ? refused[i] : "without CURVE");
        if (s_hears (dealers[i], 10))
            fail_msg ("replay: client %s got an answer", refused[i] ? refused[i] : "without CURVE");
    }
    //  The handler says why (a client without CURVE fails the handshake
    //  before the handler is asked).
    assert_true (bf_proc_wait_log (&s_stack.settle[0], "key not in the allowed list", from, 2000));
    assert_true (
        bf_proc_wait_log (&s_stack.settle[0], "the key's role may not connect here", from, 2000));
    assert_true (bf_proc_wait_log (&s_stack.settle[0],
                                   "the key is not bound to a service that may connect here", from,
                                   2000));
    for (int i = 0; i < N; i++) {
        zsock_destroy (&subs[i]);
        zsock_destroy (&dealers[i]);
    }
    zsock_destroy (&sub);
    zsock_destroy (&dealer);
}

/*  query_start of replay's database session, as PostgreSQL records it.  */
static char *
s_replay_query_start (void)
{
    PGresult *res = PQexec (s_stack.conn, "SELECT query_start::text FROM pg_stat_activity"
                                          " WHERE application_name = 'settle-replay'");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal (PQntuples (res), 1);
    char *text = strdup (PQgetvalue (res, 0, 0));
    PQclear (res);
    return text;
}

/*  Counts lines of settle's log from byte from holding needle; the numbers
    in front of " more rejected requests not logged" are summed into
    *suppressed.  */
static int
s_log_lines (long from, const char *needle, uint64_t *suppressed)
{
    char *text = bf_test_slurp (s_stack.settle[0].log);
    assert_non_null (text);
    int lines = 0;
    *suppressed = 0;
    for (char *line = text + from, *end; line && *line; line = end ? end + 1 : NULL) {
        end = strchr (line, '\n');
        if (end)
            *end = 0;
        if (strstr (line, needle))
            lines++;
        const char *at = strstr (line, " more rejected requests not logged");
        if (at) {
            while (at > line && at[-1] >= '0' && at[-1] <= '9')
                at--;
            *suppressed += strtoull (at, NULL, 10);
        }
    }
    free (text);
    return lines;
}

/*  A client that sends and never reads: its replies fill its pipe.  */
static zsock_t *
s_flooder (void)
{
    //  notify's own key on another connection: a client that may read
    //  the stream, misbehaving (fairness is per connection, not per key).
    zsock_t *sock = s_replay_client ("notify");
    zsock_set_sndhwm (sock, 0);                 //  queue the whole flood
    zsock_set_rcvhwm (sock, 1);
    return sock;
}

static void
s_send_frames (zsock_t *sock, int n, const char *type, zmsg_t *proto)
{
    for (int i = 0; i < n; i++) {
        zmsg_t *msg = proto ? zmsg_dup (proto) : zmsg_new ();
        if (!proto)
            zmsg_addstr (msg, type);
        assert_int_equal (zmsg_send (&msg, sock), 0);
    }
}

static void
test_flood_does_not_delay_a_fetch (void **state)
{
    (void)state;
    zsock_t *notify = s_replay_client ("notify");
    //  Unflooded: the same fetch three times, the slowest is the baseline.
    int64_t baseline = 0, ms;
    uint32_t count = (uint32_t)(s_events < 200 ? s_events : 200);
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf (id, sizeof id, "r-base-%d", i);
        assert_int_equal (s_fetch (notify, id, 1, count, 5000, &ms), count);
        if (ms > baseline)
            baseline = ms;
    }
    fprintf (stderr, "# unflooded fetch of %u events: %" PRId64 " ms\n", count, baseline);

    //  Phase 1: only malformed requests. They must cost no query.
    char *before = s_replay_query_start ();
    long from = bf_proc_log_size (&s_stack.settle[0]);
    zsock_t *flood1 = s_flooder ();
    zmsg_t *from0 = s_fetch_msg ("r-from0", 0, 10);
    zmsg_t *wrong = s_fetch_msg ("r-wrong", 1, 10);
    zframe_reset (zmsg_first (wrong), "RPL.NOPE", 8);
    s_send_frames (flood1, FLOOD, "x", NULL);
    s_send_frames (flood1, 1000, NULL, from0);
    s_send_frames (flood1, 1000, NULL, wrong);
    const uint64_t malformed = FLOOD + 2000;
    //  Time enough for the old replay to reach them (it answered each
    //  after a query); the new one is done in a fraction of it.
    usleep (1500 * 1000);
    char *after = s_replay_query_start ();
    if (strcmp (before, after) != 0)
        fail_msg ("replay queried the database for malformed requests (query_start %s -> %s)",
                  before, after);
    free (before);
    free (after);

    //  Phase 2: while a second client floods (one-frame requests, and valid
    //  requests past the per-peer bound) and the first one leaves,
    //  notify's fetches are answered as fast as unflooded, +100 ms.
    zsock_t *flood2 = s_flooder ();
    zmsg_t *valid = s_fetch_msg ("r-flood", 1, 100000);
    s_send_frames (flood2, 200, NULL, valid);
    s_send_frames (flood2, FLOOD, "y", NULL);
    zsock_destroy (&flood1);
    int64_t worst = 0;
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf (id, sizeof id, "r-flooded-%d", i);
        int64_t got = s_fetch (notify, id, 1, count, 5000, &ms);
        if (got != count)
            fail_msg ("fetch %d under the flood: no answer within 5 s", i);
        if (ms > worst)
            worst = ms;
        usleep (50 * 1000);
    }
    fprintf (stderr, "# fetch under the flood: worst %" PRId64 " ms (unflooded %" PRId64 " ms)\n",
             worst, baseline);
    if (worst > baseline + 100)
        fail_msg ("a flood delayed the fetch by %" PRId64 " ms (limit 100 ms)", worst - baseline);

    //  Every malformed request was counted, few were logged one by one.
    uint64_t suppressed = 0;
    int logged = 0;
    int64_t until = bf_stack_now_ms () + 25000;
    do {
        logged = s_log_lines (from, "rejected: malformed request", &suppressed);
        if ((uint64_t)logged + suppressed >= malformed)
            break;
        usleep (200 * 1000);
    } while (bf_stack_now_ms () < until);
    fprintf (stderr, "# warnings: %d lines, %" PRIu64 " suppressed\n", logged, suppressed);
    if (logged > 20)
        fail_msg ("%d warning lines for a flood of malformed requests (limit 20)", logged);
    //  The summaries also count what else was limited (the busy answers of
    //  phase 2), so at least every malformed one.
    if ((uint64_t)logged + suppressed < malformed)
        fail_msg ("only %" PRIu64 " of %" PRIu64 " rejected requests accounted for",
                  (uint64_t)logged + suppressed, malformed);

    //  Still serving.
    assert_int_equal (s_fetch (notify, "r-after", 1, count, 5000, &ms), count);
    zmsg_destroy (&from0);
    zmsg_destroy (&wrong);
    zmsg_destroy (&valid);
    zsock_destroy (&flood2);
    zsock_destroy (&notify);
}

/*  Runs binary (settle or notify) with env; its exit code, output in log.  */
static int
s_run (const char *binary_var, const char *env, const char *args, const char *log)
{
    char command[4096];
    snprintf (command, sizeof command,
              "%s BILLFLOW_DB_CONNINFO='%s' BILLFLOW_PII_KEY=%s \"$%s\" %s > '%s' 2>&1", env,
              s_stack.db, BF_TEST_PII_KEY, binary_var, args, log);
    int status = system (command);
    return WIFEXITED (status) ? WEXITSTATUS (status) : -1;
}

static void
s_expect_refusal (const char *binary_var, const char *env, const char *setting)
{
    char log[600];
    snprintf (log, sizeof log, "%s/refusal.log", s_stack.dir);
    //  --once publishes too: settle refuses it the same way.
    const char *args = strstr (env, "--once") ? "--once --period 2026-11" : "";
    int rc = s_run (binary_var, strstr (env, "--once") ? "" : env, args, log);
    char *text = bf_test_slurp (log);
    if (rc != 2 || !text || !strstr (text, setting))
        fail_msg ("%s with %s: exit %d, output '%s' (expected 2 naming %s)", binary_var, env, rc,
                  text ? text : "", setting);
    free (text);
}

static void
test_refuses_to_start_without_keys (void **state)
{
    (void)state;
    char env[2048], key[600];
    bf_stack_key_path (&s_stack, "settle", key, sizeof key);
    s_expect_refusal ("BF_SETTLE", "", "settle.key_file");
    snprintf (env, sizeof env, "BILLFLOW_SETTLE_KEY_FILE='%s'", key);
    s_expect_refusal ("BF_SETTLE", env, "settle.allowed_keys");
    snprintf (env, sizeof env,
              "BILLFLOW_SETTLE_KEY_FILE='%s' BILLFLOW_SETTLE_ALLOWED_KEYS='%s/no-such-list'", key,
              s_stack.dir);
    s_expect_refusal ("BF_SETTLE", env, "settle.allowed_keys");
    //  --once publishes too.
    s_expect_refusal ("BF_SETTLE", "--once", "settle.key_file");

    bf_stack_key_path (&s_stack, "notify", key, sizeof key);
    s_expect_refusal ("BF_NOTIFY", "", "notify.settle_server_key");
    snprintf (env, sizeof env, "BILLFLOW_NOTIFY_SETTLE_SERVER_KEY='%s'", s_stack.settle_key);
    s_expect_refusal ("BF_NOTIFY", env, "notify.key_file");
    snprintf (env, sizeof env,
              "BILLFLOW_NOTIFY_SETTLE_SERVER_KEY='not-a-key' BILLFLOW_NOTIFY_KEY_FILE='%s'", key);
    s_expect_refusal ("BF_NOTIFY", env, "notify.settle_server_key");
}

/*  Replay's database session ends under it (an administrator's
    pg_terminate_backend, a crash), and the request that finds it lost is
    the last one for a while: replay reconnects by itself, paced by the
    process's reconnect gate, so the process logs "database back" and is
    not left "database unavailable" until some later request happens to
    need the database.  */
static void
test_replay_reconnects_when_idle (void **state)
{
    (void)state;
    long from = bf_proc_log_size (&s_stack.settle[0]);
    assert_int_equal (bf_testdb_scalar (s_stack.conn,
                                        "SELECT count (pg_terminate_backend (pid)) FROM"
                                        " pg_stat_activity WHERE application_name = 'settle-replay'"),
                      1);
    zsock_t *dealer = s_replay_client ("notify");
    zmsg_t *msg = s_fetch_msg ("r-lost", 1, 5);
    assert_int_equal (zmsg_send (&msg, dealer), 0);
    (void)s_hears (dealer, 5000); /* its answer, whatever it is */
    zsock_destroy (&dealer);
    assert_true (bf_proc_wait_log (&s_stack.settle[0], "database: connection lost", from, 5000));
    /*  No request from here on.  */
    if (!bf_proc_wait_log (&s_stack.settle[0], "database back after", from, 15000))
        fail_msg ("replay did not reconnect by itself within 15 s of losing its session");
    assert_true (bf_proc_wait_log (&s_stack.settle[0], "replay: connected to the database", from,
                                   1000));
    assert_int_equal (bf_testdb_scalar (s_stack.conn,
                                        "SELECT count (*) FROM pg_stat_activity"
                                        " WHERE application_name = 'settle-replay'"),
                      1);
}

int
main (void)
{
    bf_log_init ("itest_stream", getenv ("BF_TEST_VERBOSE") ? BF_LOG_DEBUG : BF_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_only_service_keys_read_the_stream),
        cmocka_unit_test (test_flood_does_not_delay_a_fetch),
        cmocka_unit_test (test_replay_reconnects_when_idle),
        cmocka_unit_test (test_refuses_to_start_without_keys),
    };
    return cmocka_run_group_tests (tests, s_setup, s_teardown);
}
