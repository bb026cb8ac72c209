/*  itest_dbcrash — PostgreSQL crashes under a whole billing cycle (issue 16).

    Three faults, one per test, each on a fresh stack (control, two settle,
    notify with four dispatchers, the mock provider):
      - SIGKILL of the settle worker's backend while it runs a COPY;
      - SIGKILL of a notify dispatcher's backend while it runs a statement;
      - SIGKILL of the postmaster and every backend, then a start.
    A killed backend makes PostgreSQL end every session and run crash
    recovery, refusing connections meanwhile ("the database system is in
    recovery mode", 57P03). The stack's database commits synchronously, as
    in production: with scripts/pgtmp --fast's synchronous_commit = off a
    crash loses commits already acknowledged, and notices recorded as sent
    go out again (hundreds of second emails in a first run of this test).

    Each run must end as a clean one does: the bills' checksum equals a
    clean `settle --once` of the same data, every notice is final, the
    mock provider (which delivers a resent Message-ID again and counts it)
    accepted exactly one message per delivered notice and no recipient got
    two. Each process's failed connection attempts during the outage
    (billflow_db_connects_total{outcome="failed"} on its /metrics) stay
    under S_ATTEMPTS_MAX; each logs every outage as one ERROR line ("database:
    connection lost" or "cannot connect"), no other ERROR of the kind
    until it says "database back after", once, and ends with the database
    back; no database failure is logged as permanent. In the postmaster
    test (db.unavailable_log_s 1) the processes log the outage's summary,
    "database unavailable for N s, M attempts", at least once.

    Size: BF_DBCRASH_SUBSCRIBERS (default 2000, the CI size);
    bench/dbcrash.sh runs it at 100,000.  */

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bf_client.h"
#include "bf_testcycle.h"
#include "bf_testdb.h"
#include "bf_testfault.h"
#include "bf_teststack.h"

#define PERIOD "2026-10"
#define S_SEED 1616
/*  Failed connection attempts one process may make in one outage. With
    the default backoff (100 ms floor, 5 s ceiling, decorrelated jitter) an
    outage of T s takes about 10 attempts plus one per 3 s beyond the
    first few; a process reconnecting without a shared backoff made
    hundreds per second.  */
#define S_ATTEMPTS_MAX 40

enum { S_SETTLE1, S_SETTLE2, S_NOTIFY, S_CONTROL, S_PROCS };
static const char *s_names[S_PROCS] = { "settle-1", "settle-2", "notify", "control" };

static char s_reference[96];
static int s_subscribers;
static int64_t s_started;

#define s_log(...) bf_cycle_log ("dbcrash", s_started, __VA_ARGS__)

static int
s_group_setup (void **state)
{
    (void)state;
    const char *size = getenv ("BF_DBCRASH_SUBSCRIBERS");
    s_subscribers = size ? atoi (size) : 2000;
    s_started = bf_stack_now_ms ();
    if (bf_cycle_reference (s_subscribers, S_SEED, PERIOD, s_reference, sizeof s_reference) != 0)
        return -1;
    s_log ("%d subscribers; clean run's checksum %s", s_subscribers, s_reference);
    return 0;
}

typedef struct {
    bf_stack_t stack;
    int port[S_PROCS];       /* each process's /metrics */
    int64_t failed[S_PROCS]; /* failed connects before the fault */
    long log_at[S_PROCS];    /* log sizes before the fault */
    bf_client_t *client;
} s_run_t;

static bf_proc_t *
s_proc (s_run_t *run, int i)
{
    bf_stack_t *s = &run->stack;
    return i == S_SETTLE1   ? &s->settle[0]
           : i == S_SETTLE2 ? &s->settle[1]
           : i == S_NOTIFY  ? &s->notify
                            : &s->control[0];
}

/*  The stack, the data, every service started (unavailable_log_s > 0:
    their db.unavailable_log_s) and the run started through control.  */
static void
s_start (s_run_t *run, int unavailable_log_s)
{
    memset (run, 0, sizeof *run);
    bf_stack_t *s = &run->stack;
    bf_stack_init (s);
    assert_int_equal (bf_fault_durable_commits (s), 0);
    bf_cycle_generate (s, s_subscribers, PERIOD, S_SEED);
    bf_stack_mock_start (s, "--email-latency-ms 20 --seed 7");
    const char *setting[S_PROCS] = { "BILLFLOW_SETTLE_HTTP", "BILLFLOW_SETTLE_HTTP",
                                     "BILLFLOW_NOTIFY_HTTP", "BILLFLOW_CONTROL_HTTP" };
    for (int i = 0; i < S_PROCS; i++) {
        run->port[i] = bf_proc_free_port ();
        bf_proc_env (s_proc (run, i), "%s=127.0.0.1:%d", setting[i], run->port[i]);
        bf_proc_env (s_proc (run, i), "BILLFLOW_LOG_LEVEL=info");
        if (unavailable_log_s > 0)
            bf_proc_env (s_proc (run, i), "BILLFLOW_DB_UNAVAILABLE_LOG_S=%d", unavailable_log_s);
    }
    bf_proc_env (&s->notify, "BILLFLOW_NOTIFY_DISPATCHERS=4");
    /*  The production lease (the stack's 5 s is for takeover tests): an
        outage longer than the lease lets a dispatcher take over claims
        whose sends went out while the database was away, and email has no
        idempotency (docs/guarantees.md, "Faults").  */
    bf_proc_env (&s->notify, "BILLFLOW_NOTIFY_LEASE_MS=60000");
    /*  A longer chunk lease than the stack's 3 s: at full size on a
        loaded machine a chunk can take longer than that, and two workers
        then take it from each other without end.  */
    bf_proc_env (&s->settle[0], "BILLFLOW_SETTLE_LEASE_MS=10000");
    bf_proc_env (&s->settle[1], "BILLFLOW_SETTLE_LEASE_MS=10000");
    run->client = bf_fault_start_cycle (s, "dbcrash-start", PERIOD);
    assert_non_null (run->client);
    s_log ("run started");
}

/*  Just before the fault: each process's failed connects and log size.  */
static void
s_before_fault (s_run_t *run)
{
    for (int i = 0; i < S_PROCS; i++) {
        run->failed[i]
            = bf_fault_metric (run->port[i], "billflow_db_connects_total{outcome=\"failed\"}");
        run->log_at[i] = bf_proc_log_size (s_proc (run, i));
        assert_true (run->failed[i] >= 0);
    }
}

/*  The reconnect gate's lines in one process's log from byte from
    (common/bf_db.c): each outage opens with one ERROR line ("database:
    connection lost" or "database: cannot connect") and closes with one
    "database back after" line; "database unavailable for" lines are its
    summaries.  */
typedef struct {
    int outages;    /* ERROR lines that opened an outage */
    int backs;      /* "back" lines that closed one */
    int extra;      /* a second ERROR line in one outage, a "back" line in none */
    int summaries;  /* "database unavailable for" lines */
    bool still_out; /* the log ends in an outage */
} s_outage_log_t;

static s_outage_log_t
s_outage_log (const char *file, long from)
{
    s_outage_log_t out = { 0 };
    char *text = bf_test_slurp (file);
    if (!text)
        return out;
    char *line = strlen (text) > (size_t)from ? text + from : text + strlen (text);
    while (*line) {
        char *end = strchr (line, '\n');
        if (end)
            *end = '\0';
        bool error = strstr (line, " ERROR ") != NULL;
        if (error
            && (strstr (line, "database: connection lost")
                || strstr (line, "database: cannot connect"))) {
            if (out.still_out)
                out.extra++;
            else
                out.outages++;
            out.still_out = true;
        } else if (strstr (line, "database back after")) {
            if (out.still_out)
                out.backs++;
            else
                out.extra++;
            out.still_out = false;
        } else if (strstr (line, "database unavailable for"))
            out.summaries++;
        if (!end)
            break;
        line = end + 1;
    }
    free (text);
    return out;
}

static int64_t
s_channel_count (json_t *report, const char *channel, const char *field)
{
    return json_integer_value (json_object_get (json_object_get (report, channel), field));
}

/*  After the fault: the cycle completes as a clean one, nothing twice at
    the provider, bounded reconnects, each outage logged as one ERROR line
    and one "back" line, no permanent database failure; with summaries,
    at least one "database unavailable for" line among the processes.  */
static void
s_finish (s_run_t *run, int64_t fault_at, bool summaries)
{
    bf_stack_t *s = &run->stack;
    int64_t back = bf_fault_wait_db (s, 120000);
    assert_true (back >= 0);
    s_log ("database answers the test again after %lld ms", (long long)back);
    int64_t deadline = bf_stack_now_ms () + 120000 + (int64_t)s_subscribers * 6;
    while (bf_stack_now_ms () < deadline && !bf_cycle_done (s, PERIOD))
        usleep (200000);
    bool done = bf_cycle_done (s, PERIOD);
    s_log ("cycle %s %.1f s after the fault", done ? "done" : "NOT done",
           (double)(bf_stack_now_ms () - fault_at) / 1000.0);
    assert_true (done);

    char result[96];
    assert_int_equal (bf_cycle_checksum (s->conn, PERIOD, result, sizeof result), 0);
    s_log ("checksum %s (clean run %s)", result, s_reference);
    assert_string_equal (result, s_reference);

    json_t *report = bf_cycle_mock_report (s);
    int64_t email = bf_cycle_delivered (s, "EMAIL");
    int64_t sms = bf_cycle_delivered (s, "SMS");
    int64_t push = bf_cycle_delivered (s, "PUSH");
    int64_t copies = s_channel_count (report, "email", "duplicate_deliveries");
    s_log ("notify: %d flushes found leases taken over",
           bf_fault_count_lines (s->notify.log, run->log_at[S_NOTIFY], "their lease had"));
    char by_attempts[512] = "";
    bf_testdb_text (s->conn,
                    "SELECT coalesce (string_agg (k || ': ' || n, '; '), 'none') FROM (SELECT"
                    " d.attempts || ' ' || coalesce ((SELECT string_agg (a.outcome, ',' ORDER BY"
                    " a.attempt_no) FROM delivery_attempt a WHERE a.delivery_id = d.id), '-') AS k,"
                    " count (*) AS n FROM delivery d WHERE d.channel = 'EMAIL' GROUP BY 1) t",
                    by_attempts, sizeof by_attempts);
    s_log ("email deliveries by attempts: %s", by_attempts);
    s_log ("delivered email %lld sms %lld push %lld; provider accepted %lld / %lld / %lld;"
           " email second copies %lld",
           (long long)email, (long long)sms, (long long)push,
           (long long)s_channel_count (report, "email", "accepted"),
           (long long)(s_channel_count (report, "sms", "accepted")
                       + s_channel_count (report, "lms", "accepted")),
           (long long)s_channel_count (report, "push", "accepted"), (long long)copies);
    assert_true (email + sms + push > 0);
    assert_int_equal (copies, 0);
    assert_int_equal (s_channel_count (report, "email", "accepted"), email);
    assert_int_equal (s_channel_count (report, "sms", "accepted")
                          + s_channel_count (report, "lms", "accepted"),
                      sms);
    assert_int_equal (s_channel_count (report, "push", "accepted"), push);
    const char *channels[] = { "email", "sms", "lms", "push" };
    for (size_t i = 0; i < 4; i++)
        assert_int_equal (s_channel_count (report, channels[i], "recipients_over_one_total"), 0);
    json_decref (report);

    /*  A process the cycle no longer needed may still be waiting out its
        backoff (at most db.reconnect_max_ms, 5 s), and a connection that
        sat idle through the crash (settle's standby relay, say) finds it
        broken only when next used, a second outage in its log after the
        first "back": each process gets 15 s in all to say it is back from
        every outage it logged.  */
    int64_t back_by = zclock_mono () + 15000;
    for (int i = 0; i < S_PROCS; i++) {
        bf_proc_wait_log (s_proc (run, i), "database back after", run->log_at[i], 15000);
        while (s_outage_log (s_proc (run, i)->log, run->log_at[i]).still_out
               && zclock_mono () < back_by)
            zclock_sleep (100);
    }
    /*  Every process's figures first, then the checks.  */
    int64_t attempts[S_PROCS];
    int backs[S_PROCS], permanent[S_PROCS];
    s_outage_log_t gate[S_PROCS];
    int summary_lines = 0;
    for (int i = 0; i < S_PROCS; i++) {
        int64_t failed
            = bf_fault_metric (run->port[i], "billflow_db_connects_total{outcome=\"failed\"}");
        const char *log = s_proc (run, i)->log;
        char line[512];
        attempts[i] = failed < 0 ? -1 : failed - run->failed[i];
        backs[i] = bf_fault_count_lines (log, run->log_at[i], "database back after");
        permanent[i] = bf_fault_count_lines (log, run->log_at[i], ", permanent)");
        gate[i] = s_outage_log (log, run->log_at[i]);
        summary_lines += gate[i].summaries;
        s_log ("%s: %lld failed connection attempts in the outage, %d \"back\" lines,"
               " %d permanent failures; %d outage(s) logged, %d closed, %d summaries,"
               " %d lines beyond one ERROR and one \"back\" per outage%s",
               s_names[i], (long long)attempts[i], backs[i], permanent[i], gate[i].outages,
               gate[i].backs, gate[i].summaries, gate[i].extra,
               gate[i].still_out ? ", still out" : "");
        if (gate[i].still_out || gate[i].extra) {
            /*  The gate's lines since the fault, to see what stayed out.  */
            char cmd[1024];
            snprintf (cmd, sizeof cmd,
                      "tail -c +%ld '%s' | grep -E 'database: (connection lost|cannot connect)"
                      "|database back after|database unavailable for' | tail -8"
                      " | sed 's/^/# %s gate: /'",
                      run->log_at[i] + 1, log, s_names[i]);
            fflush (stdout);
            if (system (cmd) != 0)
                s_log ("%s: could not list its gate's lines", s_names[i]);
        }
        if (gate[i].summaries
            && bf_fault_first_line (log, run->log_at[i], "database unavailable for", line,
                                    sizeof line))
            s_log ("%s: %s", s_names[i], strstr (line, "database unavailable for"));
        if (backs[i]
            && bf_fault_first_line (log, run->log_at[i], "database back after", line, sizeof line))
            s_log ("%s: %s", s_names[i], strstr (line, "database back after"));
        if (permanent[i]
            && bf_fault_first_line (log, run->log_at[i], ", permanent)", line, sizeof line))
            s_log ("%s: %s", s_names[i], line);
    }
    for (int i = 0; i < S_PROCS; i++) {
        assert_in_range (attempts[i], 0, S_ATTEMPTS_MAX);
        assert_int_equal (permanent[i], 0);
        assert_true (backs[i] >= 1);
        /*  One ERROR line and one "back" line per outage, nothing more.  */
        assert_true (gate[i].outages >= 1);
        assert_int_equal (gate[i].extra, 0);
        assert_int_equal (gate[i].backs, gate[i].outages);
        assert_false (gate[i].still_out);
    }
    s_log ("\"database unavailable for\" lines: %d", summary_lines);
    if (summaries)
        assert_true (summary_lines >= 1);
    bf_client_destroy (&run->client);
    bf_stack_destroy (s);
}

static void
test_backend_killed_during_copy (void **state)
{
    (void)state;
    s_run_t run;
    s_start (&run, 0);
    s_before_fault (&run);
    int pid = bf_fault_kill_backend (&run.stack, "settle-worker", "COPY", 60000);
    int64_t fault_at = bf_stack_now_ms ();
    s_log ("SIGKILL of settle-worker's backend %d during its COPY", pid);
    assert_true (pid > 0);
    s_finish (&run, fault_at, false);
}

static void
test_backend_killed_during_dispatch (void **state)
{
    (void)state;
    s_run_t run;
    s_start (&run, 0);
    /*  Dispatch under way: some notices delivered, most still to go.  */
    bf_stack_wait_scalar (&run.stack, "SELECT count (*) FROM delivery WHERE state = 'DELIVERED'",
                          s_subscribers / 10, 120000);
    s_before_fault (&run);
    int pid = bf_fault_kill_backend (&run.stack, "notify-dispatch", "", 30000);
    int64_t fault_at = bf_stack_now_ms ();
    s_log ("SIGKILL of a notify-dispatch backend (%d) during dispatch", pid);
    assert_true (pid > 0);
    s_finish (&run, fault_at, false);
}

static void
test_postmaster_killed (void **state)
{
    (void)state;
    s_run_t run;
    /*  A summary every second: the outage (3 s down, then crash
        recovery) outlasts it.  */
    s_start (&run, 1);
    bf_stack_wait_scalar (&run.stack, "SELECT count (*) FROM delivery WHERE state = 'DELIVERED'",
                          s_subscribers / 20, 120000);
    s_before_fault (&run);
    assert_int_equal (bf_fault_pg_kill_all (), 0);
    int64_t fault_at = bf_stack_now_ms ();
    s_log ("SIGKILL of the postmaster and every backend; start in 3 s");
    sleep (3);
    assert_int_equal (bf_fault_pg_start (), 0);
    s_log ("PostgreSQL started (crash recovery)");
    s_finish (&run, fault_at, true);
}

int
main (void)
{
    zsys_init ();
    zsys_set_linger (0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_backend_killed_during_copy),
        cmocka_unit_test (test_backend_killed_during_dispatch),
        cmocka_unit_test (test_postmaster_killed),
    };
    return cmocka_run_group_tests (tests, s_group_setup, NULL);
}
