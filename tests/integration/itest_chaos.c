/*  itest_chaos — a whole billing cycle while a seeded driver kills -9
    settle, notify, control and the active relay at random moments and
    restarts them, restarts PostgreSQL once, and crashes it once (SIGKILL
    of one service's backend: crash recovery) (G1-G7 together).

    Afterwards: the bills and their lines equal a clean run's (a checksum of
    all of them against `settle --once` on a second database generated from
    the same seed), every bill's event reached notify (each bill has its
    deliveries), the mock provider accepted exactly one message per (bill,
    channel) (its accepted count equals the delivered notices, and no
    recipient got two), and no delivery is left unfinished.

    Size and seed: BF_CHAOS_SUBSCRIBERS (default 3000, the CI size),
    BF_CHAOS_SEED (default: from the clock). Both and every fault are
    printed ("# chaos ...") so a failure can be replayed with the same
    seed. bench/chaos.sh runs it at 100,000 and 1,000,000 subscribers.  */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bf_client.h"
#include "bf_testcycle.h"
#include "bf_testdb.h"
#include "bf_testfault.h"
#include "bf_teststack.h"

#define PERIOD "2026-10"

static bf_stack_t s_stack;
static uint64_t s_rng;

static uint64_t
s_random (void)
{
    return bf_cycle_random (&s_rng);
}

static int
s_between (int low, int high)
{
    return low + (int)(s_random () % (uint64_t)(high - low + 1));
}

static int64_t s_started;

#define s_log(...) bf_cycle_log ("chaos", s_started, __VA_ARGS__)

/*  The run is complete and every notice final (or held by a rule);
    PostgreSQL restarts under the driver, so the check reconnects.  */
static bool
s_done (void)
{
    return bf_cycle_done (&s_stack, PERIOD);
}

/*  The settle process holding the relay, or -1.  */
static int
s_relay_holder (void)
{
    char id[64] = "";
    if (bf_testdb_text (s_stack.conn, "SELECT coalesce (relay_id, '') FROM relay_state", id,
                        sizeof id)
        != 0)
        return -1;
    if (!strcmp (id, "settle-1"))
        return 0;
    if (!strcmp (id, "settle-2"))
        return 1;
    return -1;
}

static void
s_restart_pg (void)
{
    char command[1024];
    snprintf (command, sizeof command, "\"$BF_SOURCE_ROOT/scripts/pgtmp\" restart '%s'",
              getenv ("PGHOST"));
    assert_int_equal (system (command), 0);
}

/*  One fault: kill -9 a component (or restart PostgreSQL), wait, restart.  */
static void
s_fault (int n, bool pg_done)
{
    bf_stack_t *s = &s_stack;
    int kind = s_between (0, pg_done ? 3 : 4);
    bf_proc_t *victim = NULL;
    const char *what = NULL;
    switch (kind) {
        case 0:
            victim = &s->settle[s_between (0, 1)];
            what = victim == &s->settle[0] ? "settle-1" : "settle-2";
            break;
        case 1:
            victim = &s->notify;
            what = "notify";
            break;
        case 2:
            victim = &s->control[0];
            what = "control";
            break;
        case 3: {
            int holder = s_relay_holder ();
            victim = &s->settle[holder < 0 ? 0 : holder];
            what = holder == 1 ? "settle-2 (active relay)" : "settle-1 (active relay)";
            break;
        }
        default:
            break;
    }
    int pause = s_between (0, 1500);
    if (!victim) {
        s_log ("fault %d: restart PostgreSQL", n);
        s_restart_pg ();
        return;
    }
    if (victim->pid <= 0) {
        s_log ("fault %d: %s is not running; start it", n, what);
        bf_proc_start (victim);
        return;
    }
    s_log ("fault %d: kill -9 %s (pid %d); restart after %d ms", n, what, (int)victim->pid, pause);
    bf_proc_kill (victim);
    usleep ((useconds_t)pause * 1000);
    bf_proc_start (victim);
}

/*  The database crash: SIGKILL of one backend of a service (one picked at
    random, the next when it has none), so PostgreSQL ends every session
    and runs crash recovery under the whole stack.  */
static void
s_crash_pg (int n)
{
    static const char *apps[] = { "settle-worker", "settle-relay", "notify-dispatch",
                                  "notify-ingest", "billflow-control" };
    int first = s_between (0, 4);
    for (int i = 0; i < 5; i++) {
        const char *app = apps[(first + i) % 5];
        int pid = bf_fault_kill_backend (&s_stack, app, NULL, 1000);
        if (pid > 0) {
            s_log ("fault %d: SIGKILL of PostgreSQL backend %d (%s): crash recovery", n, pid, app);
            return;
        }
    }
    fail_msg ("no backend of a service to kill");
}

static void
test_chaos_cycle (void **state)
{
    (void)state;
    bf_stack_t *s = &s_stack;
    const char *size_text = getenv ("BF_CHAOS_SUBSCRIBERS");
    const char *seed_text = getenv ("BF_CHAOS_SEED");
    int subscribers = size_text ? atoi (size_text) : 3000;
    uint64_t seed = seed_text ? strtoull (seed_text, NULL, 10) : (uint64_t)time (NULL);
    s_rng = seed;
    s_started = bf_stack_now_ms ();
    s_log ("seed %llu, %d subscribers (replay: BF_CHAOS_SEED=%llu BF_CHAOS_SUBSCRIBERS=%d)",
           (unsigned long long)seed, subscribers, (unsigned long long)seed, subscribers);

    char reference[96];
    assert_int_equal (
        bf_cycle_reference (subscribers, seed % 1000000, PERIOD, reference, sizeof reference), 0);
    s_log ("clean run's checksum %s", reference);

    bf_stack_init (s);
    /*  The database crash below must not lose acknowledged commits
        (scripts/pgtmp --fast turns synchronous_commit off).  */
    assert_int_equal (bf_fault_durable_commits (s), 0);
    bf_cycle_generate (s, subscribers, PERIOD, seed % 1000000);
    char flags[256];
    snprintf (flags, sizeof flags, "--email-latency-ms 50 --seed %llu",
              (unsigned long long)(seed % 100000));
    bf_stack_mock_start (s, flags);
    /*  The run starts through control, as operators start it.  */
    bf_client_t *client = bf_fault_start_cycle (s, "chaos-start", PERIOD);
    assert_non_null (client);
    Billflow__CommandReply *reply = NULL;
    char err[256];
    const char *keys[] = { "period" }, *values[] = { PERIOD };
    s_log ("run started");

    /*  Faults until the cycle is done (at least 6, a PostgreSQL restart
        and a PostgreSQL crash once each), then let it finish.  */
    bool pg_done = false, crashed = false;
    int faults = 0;
    int crash_at = s_between (0, 4); /* the database crash: one of faults 1..6, not 4 */
    if (crash_at == 3)
        crash_at = 5;
    int64_t deadline = bf_stack_now_ms () + 60000 + (int64_t)subscribers * 6;
    bool seen_done = false;
    while (bf_stack_now_ms () < deadline && (faults < 6 || !s_done ())) {
        usleep ((useconds_t)s_between (300, 2500) * 1000);
        if (!seen_done && s_done ()) {
            s_log ("cycle done");
            seen_done = true;
        }
        if (faults >= 12)
            continue;
        bool pg = !pg_done && faults == 3;
        if (pg) {
            s_log ("fault %d: restart PostgreSQL", faults + 1);
            s_restart_pg ();
            pg_done = true;
        } else if (faults == crash_at) {
            s_crash_pg (faults + 1);
            crashed = true;
        } else
            s_fault (faults + 1, true);
        faults++;
        /*  G6 under faults: the start command repeated answers the stored
            outcome and starts nothing.  */
        if (s_between (0, 2) == 0) {
            int rc = bf_client_request (client, "chaos-start", "settle", "run.start", 1, keys,
                                        values, &reply, NULL, err, sizeof err);
            if (rc == BF_CLIENT_ANSWERED) {
                s_log ("start command repeated: status %d, replayed %d, retryable %d",
                       reply->status, reply->replayed, reply->retryable);
                /*  Right after the crash control may not reach the
                    database: a retryable FAILED, which stored nothing.  */
                if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED
                    || !reply->retryable) {
                    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
                    assert_true (reply->replayed);
                }
                billflow__command_reply__free_unpacked (reply, NULL);
            } else
                s_log ("start command repeated: no answer yet (%s)", err);
        }
    }
    /*  Everything running again for the end.  */
    for (int i = 0; i < 2; i++)
        if (s->settle[i].pid <= 0)
            bf_proc_start (&s->settle[i]);
    if (s->notify.pid <= 0)
        bf_proc_start (&s->notify);
    while (bf_stack_now_ms () < deadline && !s_done ())
        usleep (200000);
    s_log ("%d faults; cycle %s", faults, s_done () ? "done" : "NOT done by the deadline");
    assert_true (pg_done);
    assert_true (crashed);
    assert_true (s_done ());

    /*  G1/G7, G3, G4, G9: the end checks of every cycle under faults.  */
    bf_cycle_verify (s, PERIOD, reference, "chaos");
    bf_client_destroy (&client);
    bf_stack_destroy (s);
}

int
main (void)
{
    zsys_init ();
    zsys_set_linger (0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_chaos_cycle),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
