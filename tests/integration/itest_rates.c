/*  Integration: run.rates and services.list's leader on the real stack
    (two controls, two settle processes, notify, the mock provider).
    - a small cycle with a failover in the middle (5 s without a control):
      run.rates' points add up (rate × interval, and the changes) to the
      run's bills and the period's final notices, at most 600 points, and
      the failover is a gap (null rates), not invented data;
    - services.list marks exactly one control instance leader, the active
      one, before and after the failover; settle's relay holder is "relay";
      notify has no leader (null);
    - run.rates' arguments are checked, and a run that does not exist is
      answered with run null;
    - samples of runs that ended longer ago than the retention are deleted
      by the next active control.  */

#include <jansson.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "bf_testcycle.h"
#include "bf_testdb.h"
#include "bf_teststack.h"

#define PERIOD      "2026-10"
#define SUBSCRIBERS 3000

static bf_stack_t s_stack;

/*  The result of query verb (args: one key and value, or none) as JSON;
    NULL with the reason in err when it was not answered OK.  */
static json_t *
s_ask (bf_client_t *client, const char *verb, const char *key, const char *value, char *err,
       size_t errsize)
{
    static int n;
    char id[32];
    snprintf (id, sizeof id, "rates-%d", ++n);
    const char *keys[] = { key }, *values[] = { value };
    Billflow__CommandReply *reply = NULL;
    int rc = bf_client_request (client, id, "control", verb, key ? 1 : 0, keys, values, &reply,
                                NULL, err, errsize);
    json_t *doc = NULL;
    if (rc == BF_CLIENT_ANSWERED && reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK)
        doc = json_loads (reply->result, 0, NULL);
    else if (rc == BF_CLIENT_ANSWERED)
        snprintf (err, errsize, "%s", reply->error ? reply->error : "?");
    if (reply)
        billflow__command_reply__free_unpacked (reply, NULL);
    return doc;
}

static json_t *
s_query (bf_client_t *client, const char *verb, const char *key, const char *value)
{
    char err[512] = "";
    json_t *doc = s_ask (client, verb, key, value, err, sizeof err);
    if (!doc)
        fail_msg ("%s: %s", verb, err);
    return doc;
}

/*  services.list's control rows: how many there are, how many are up,
    and the instance of the one leader (more than one: "several").  */
static void
s_controls (bf_client_t *client, int *rows, int *leaders, char *leader, size_t size)
{
    json_t *doc = s_query (client, "services.list", NULL, NULL), *item;
    size_t i;
    *rows = *leaders = 0;
    snprintf (leader, size, "-");
    json_array_foreach (json_object_get (doc, "services"), i, item)
    {
        const char *service = json_string_value (json_object_get (item, "service"));
        json_t *lead = json_object_get (item, "leader");
        if (!strcmp (service, "control")) {
            (*rows)++;
            assert_true (json_is_boolean (lead));
            if (json_is_true (lead)) {
                (*leaders)++;
                snprintf (leader, size, "%s",
                          json_string_value (json_object_get (item, "instance_id")));
            }
        } else if (!strcmp (service, "notify"))
            assert_true (json_is_null (lead));
        else
            assert_true (json_is_false (lead)
                         || (json_is_string (lead) && !strcmp (json_string_value (lead), "relay")));
    }
    json_decref (doc);
}

/*  Waits until services.list shows both controls with exactly one leader,
    named want.  */
static void
s_expect_leader (bf_client_t *client, const char *want)
{
    int rows = 0, leaders = 0;
    char leader[64] = "";
    for (int i = 0; i < 100; i++) {
        s_controls (client, &rows, &leaders, leader, sizeof leader);
        if (rows == 2 && leaders == 1 && !strcmp (leader, want))
            break;
        usleep (100000);
    }
    printf ("# services.list: %d control rows, %d leader (%s)\n", rows, leaders, leader);
    assert_int_equal (rows, 2);
    assert_int_equal (leaders, 1);
    assert_string_equal (leader, want);
}

static void
test_rates_over_a_cycle_with_failover (void **state)
{
    bf_stack_t *s = *state;
    bf_stack_both_controls (s);
    bf_cycle_generate (s, SUBSCRIBERS, PERIOD, 42);
    bf_stack_mock_start (s, "--email-latency-ms 20 --seed 7");
    bf_cycle_start_services (s, true);
    bf_client_t *client = bf_stack_client (s, "ops-a", 2000, 30);
    assert_non_null (client);
    s_expect_leader (client, "control-1");

    const char *keys[] = { "period" }, *values[] = { PERIOD };
    Billflow__CommandReply *reply = NULL;
    char err[256];
    assert_int_equal (bf_client_request (client, "rates-start", "settle", "run.start", 1, keys,
                                         values, &reply, NULL, err, sizeof err),
                      BF_CLIENT_ANSWERED);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    billflow__command_reply__free_unpacked (reply, NULL);
    int64_t run_id = bf_testdb_scalar (s->conn, "SELECT max (run_id) FROM settlement_run");
    assert_true (run_id > 0);

    /*  A failover with a hole: once the run has samples, the standby and
        then the active control die, and the standby comes back 5 s later
        (a standby that was running would take over within about a second,
        the lock going with the dead process's session: no gap then).  */
    assert_true (bf_stack_wait_scalar (s,
                                       "SELECT count (*) FROM run_rate_sample"
                                       " WHERE bills > 0 AND notices > 0",
                                       1, 60000)
                 >= 1);
    bf_proc_kill (&s->control[1]);
    bf_proc_kill (&s->control[0]);
    usleep (5000000);
    bf_proc_start (&s->control[1]);
    assert_int_equal (bf_stack_wait_active (s, 1, 30000), 0);
    int64_t started = bf_stack_now_ms ();
    while (!bf_cycle_done (s, PERIOD) && bf_stack_now_ms () - started < 240000)
        usleep (200000);
    assert_true (bf_cycle_done (s, PERIOD));
    s_expect_leader (client, "control-2");

    /*  The closing sample: the newest row holds the run's final figures.  */
    char want_sql[512];
    snprintf (want_sql, sizeof want_sql,
              "SELECT count (*) FROM run_rate_sample s, settlement_run r"
              " WHERE s.run_id = r.run_id AND r.run_id = %lld AND s.bills = r.bills"
              " AND s.notices = (SELECT count (*) FROM delivery WHERE period = '" PERIOD "'"
              "  AND state IN ('DELIVERED', 'FAILED', 'CANCELLED'))",
              (long long)run_id);
    assert_true (bf_stack_wait_scalar (s, want_sql, 1, 10000) >= 1);
    int64_t bills = bf_testdb_scalar (s->conn, "SELECT bills FROM settlement_run"
                                               " WHERE period = '" PERIOD "'");
    int64_t notices
        = bf_testdb_scalar (s->conn, "SELECT count (*) FROM delivery WHERE period = '" PERIOD
                                     "' AND state IN ('DELIVERED', 'FAILED', 'CANCELLED')");
    assert_true (bills > 0 && notices > 0);

    char id[24];
    snprintf (id, sizeof id, "%lld", (long long)run_id);
    json_t *doc = s_query (client, "run.rates", "run_id", id);
    json_t *points = json_object_get (doc, "points"), *p;
    size_t n = json_array_size (points), i;
    assert_true (n >= 2 && n <= 600); /* at least the settlement before the hole, and the hole */
    assert_string_equal (
        json_string_value (json_object_get (json_object_get (doc, "run"), "period")), PERIOD);
    int64_t sum_bills = 0, sum_notices = 0, gaps = 0;
    double rate_bills = 0, rate_notices = 0, gap_bills = 0, gap_notices = 0, last_t = 0;
    json_array_foreach (points, i, p)
    {
        double seconds = json_number_value (json_object_get (p, "seconds"));
        double t = json_number_value (json_object_get (p, "t"));
        assert_true (seconds > 0);
        assert_true (t > last_t);
        last_t = t;
        int64_t b = json_integer_value (json_object_get (p, "bills"));
        int64_t m = json_integer_value (json_object_get (p, "notices"));
        sum_bills += b;
        sum_notices += m;
        json_t *bps = json_object_get (p, "bills_per_s"),
               *nps = json_object_get (p, "notices_per_s");
        if (json_is_null (bps)) {
            assert_true (json_is_null (nps));
            gaps++;
            gap_bills += (double)b;
            gap_notices += (double)m;
            assert_true (seconds > 3.0); /* a gap is longer than three sampling intervals */
        } else {
            rate_bills += json_number_value (bps) * seconds;
            rate_notices += json_number_value (nps) * seconds;
        }
    }
    printf ("# run.rates: %zu points, %lld gap(s) over %.1f s; bills %lld (run %lld),"
            " notices %lld (period %lld); rate x interval: bills %.1f + %.0f in gaps,"
            " notices %.1f + %.0f in gaps\n",
            n, (long long)gaps, last_t, (long long)sum_bills, (long long)bills,
            (long long)sum_notices, (long long)notices, rate_bills, gap_bills, rate_notices,
            gap_notices);
    /*  The changes add up exactly; rate × interval within the rounding of
        the rates (3 decimals, so at most 0.0005 × seconds a point).  */
    assert_int_equal (sum_bills, bills);
    assert_int_equal (sum_notices, notices);
    assert_true (fabs (rate_bills + gap_bills - (double)bills) <= 0.0005 * last_t + 1e-6);
    assert_true (fabs (rate_notices + gap_notices - (double)notices) <= 0.0005 * last_t + 1e-6);
    /*  The failover left a gap: no control sampled for several seconds;
        what came before it was sampled with rates.  */
    assert_true (gaps >= 1);
    assert_true (rate_bills + rate_notices >= 1.0);
    json_decref (doc);

    /*  The relay that published the run's events leads settle.  */
    doc = s_query (client, "services.list", NULL, NULL);
    int relays = 0;
    json_array_foreach (json_object_get (doc, "services"), i, p)
    {
        if (json_is_string (json_object_get (p, "leader")))
            relays++;
    }
    json_decref (doc);
    assert_int_equal (relays, 1);

    /*  Arguments, and a run that does not exist.  */
    assert_null (s_ask (client, "run.rates", NULL, NULL, err, sizeof err));
    assert_non_null (strstr (err, "run.rates needs run_id"));
    assert_null (s_ask (client, "run.rates", "run_id", "x1", err, sizeof err));
    assert_non_null (strstr (err, "run_id: expected a positive integer"));
    doc = s_query (client, "run.rates", "run_id", "999999");
    assert_true (json_is_null (json_object_get (doc, "run")));
    assert_int_equal (json_array_size (json_object_get (doc, "points")), 0);
    json_decref (doc);

    /*  Retention: a run that ended long ago loses its samples when the next
        control becomes active (it prunes then, and hourly).  */
    char sql[256];
    snprintf (sql, sizeof sql,
              "UPDATE settlement_run SET finished_at = now () - interval '500 days'"
              " WHERE run_id = %lld",
              (long long)run_id);
    assert_string_equal (bf_testdb_exec (s->conn, sql), "00000");
    bf_proc_start (&s->control[0]);
    bf_proc_kill (&s->control[1]);
    assert_int_equal (bf_stack_wait_active (s, 0, 30000), 0);
    snprintf (sql, sizeof sql,
              "SELECT (count (*) = 0)::int FROM run_rate_sample WHERE run_id = %lld",
              (long long)run_id);
    assert_int_equal (bf_stack_wait_scalar (s, sql, 1, 10000), 1);
    bf_client_destroy (&client);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown (test_rates_over_a_cycle_with_failover,
                                                  bf_stack_setup, bf_stack_teardown, &s_stack),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
