/*  bf_report_cache: a kept report answers only the version it was computed
    at; one computation per period, callers coalesced; waiters answered by a
    report at least as new as what they saw, or carried to the next
    computation; failures answer everyone; the least recently asked idle
    period makes room, a cache of busy periods is full.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "bf_report_cache.h"

/*  A waiter: its name, and what it was answered.  */
typedef struct {
    const char *name;
    int answered;
    char json[512];
    char error[128];
    bool retry;
} s_waiter_t;

static int s_freed;

static void
s_free (void *item)
{
    (void)item;
    s_freed++;
}

static void
s_answer (void *item, const char *json, const char *error, bool retry, void *arg)
{
    (void)arg;
    s_waiter_t *w = item;
    w->answered++;
    snprintf (w->json, sizeof w->json, "%s", json ? json : "");
    snprintf (w->error, sizeof w->error, "%s", json ? "" : error);
    w->retry = retry;
}

static json_t *
s_doc (int64_t version, const char *as_of)
{
    return json_pack ("{s:s, s:I, s:s, s:i}", "period", "2026-10", "version", (json_int_t)version,
                      "as_of", as_of, "unnotified", 3);
}

/*  The boolean field of an answer.  */
static bool
s_flag (const char *json, const char *field)
{
    json_t *doc = json_loads (json, 0, NULL);
    assert_non_null (doc);
    json_t *v = json_object_get (doc, field);
    assert_true (json_is_boolean (v));
    bool b = json_is_true (v);
    json_decref (doc);
    return b;
}

static bool
s_has (const char *json, const char *needle)
{
    return strstr (json, needle) != NULL;
}

static void
test_first_request_waits_then_answers_from_memory (void **state)
{
    (void)state;
    bf_report_cache_t *c = bf_report_cache_new (4, s_free);
    bool start;
    char *json;
    /*  Nothing kept: a caller that does not wait gets no figures, not
        current, computing; a computation starts.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 5, false, &start, &json),
                      BF_REPORT_CACHE_ANSWER);
    assert_true (start);
    assert_false (s_flag (json, "current"));
    assert_true (s_flag (json, "computing"));
    assert_true (s_has (json, "\"as_of\":null"));
    assert_false (s_has (json, "version"));
    free (json);
    /*  One that waits is queued, and joins the running computation.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 5, true, &start, &json),
                      BF_REPORT_CACHE_QUEUE);
    assert_false (start);
    assert_null (json);
    s_waiter_t a = { "a" }, b = { "b" };
    bf_report_cache_queue (c, "2026-10", 5, &a);
    /*  A second caller joins the running computation.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 5, true, &start, &json),
                      BF_REPORT_CACHE_QUEUE);
    assert_false (start);
    bf_report_cache_queue (c, "2026-10", 5, &b);
    assert_int_equal (bf_report_cache_waiting (c), 2);

    assert_false (
        bf_report_cache_done (c, "2026-10", s_doc (5, "T1"), NULL, false, s_answer, NULL));
    assert_int_equal (a.answered, 1);
    assert_int_equal (b.answered, 1);
    assert_true (s_flag (a.json, "current"));
    assert_false (s_flag (a.json, "computing"));
    assert_true (s_has (a.json, "\"as_of\":\"T1\""));
    assert_int_equal (bf_report_cache_waiting (c), 0);

    /*  The same version: from memory, current, nothing started.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 5, true, &start, &json),
                      BF_REPORT_CACHE_ANSWER);
    assert_false (start);
    assert_true (s_flag (json, "current"));
    assert_true (s_has (json, "\"as_of\":\"T1\""));
    free (json);
    bf_report_cache_destroy (&c);
    assert_null (c);
}

static void
test_changed_period_stale_or_wait (void **state)
{
    (void)state;
    bf_report_cache_t *c = bf_report_cache_new (4, s_free);
    bool start;
    char *json;
    s_waiter_t first = { "first" };
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 5, true, &start, &json),
                      BF_REPORT_CACHE_QUEUE);
    bf_report_cache_queue (c, "2026-10", 5, &first);
    bf_report_cache_done (c, "2026-10", s_doc (5, "T1"), NULL, false, s_answer, NULL);

    /*  Version 6: a caller that does not wait gets the kept report, not
        current, computing; the computation starts once.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 6, false, &start, &json),
                      BF_REPORT_CACHE_ANSWER);
    assert_true (start);
    assert_false (s_flag (json, "current"));
    assert_true (s_flag (json, "computing"));
    assert_true (s_has (json, "\"as_of\":\"T1\""));
    free (json);
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 6, false, &start, &json),
                      BF_REPORT_CACHE_ANSWER);
    assert_false (start);
    free (json);

    /*  A caller that waits, having seen version 7 (a change after the
        computation started): the report of version 6 does not answer it;
        another computation is due.  */
    s_waiter_t late = { "late" };
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 7, true, &start, &json),
                      BF_REPORT_CACHE_QUEUE);
    assert_false (start);
    bf_report_cache_queue (c, "2026-10", 7, &late);
    assert_true (bf_report_cache_done (c, "2026-10", s_doc (6, "T2"), NULL, false, s_answer, NULL));
    assert_int_equal (late.answered, 0);
    /*  Meanwhile the kept report is version 6's, and computing again.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 7, false, &start, &json),
                      BF_REPORT_CACHE_ANSWER);
    assert_false (start);
    assert_true (s_has (json, "\"as_of\":\"T2\""));
    assert_true (s_flag (json, "computing"));
    free (json);
    /*  A report newer than what it saw answers it.  */
    assert_false (
        bf_report_cache_done (c, "2026-10", s_doc (9, "T3"), NULL, false, s_answer, NULL));
    assert_int_equal (late.answered, 1);
    assert_true (s_has (late.json, "\"version\":9"));
    assert_true (s_flag (late.json, "current"));
    bf_report_cache_destroy (&c);
}

static void
test_failure_answers_every_waiter (void **state)
{
    (void)state;
    bf_report_cache_t *c = bf_report_cache_new (4, s_free);
    bool start;
    char *json;
    s_waiter_t a = { "a" }, b = { "b" };
    bf_report_cache_ask (c, "2026-10", 1, true, &start, &json);
    bf_report_cache_queue (c, "2026-10", 1, &a);
    bf_report_cache_ask (c, "2026-10", 2, true, &start, &json);
    bf_report_cache_queue (c, "2026-10", 2, &b);
    assert_false (
        bf_report_cache_done (c, "2026-10", NULL, "database unavailable", true, s_answer, NULL));
    assert_int_equal (a.answered, 1);
    assert_int_equal (b.answered, 1);
    assert_string_equal (a.error, "database unavailable");
    assert_true (b.retry);
    /*  Nothing kept: the next caller starts a computation again.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 2, true, &start, &json),
                      BF_REPORT_CACHE_QUEUE);
    assert_true (start);
    /*  A document without a version is refused, not kept.  */
    s_waiter_t d = { "d" };
    bf_report_cache_queue (c, "2026-10", 2, &d);
    json_t *bad = json_pack ("{s:s}", "period", "2026-10");
    assert_false (bf_report_cache_done (c, "2026-10", bad, NULL, false, s_answer, NULL));
    assert_int_equal (d.answered, 1);
    assert_non_null (strstr (d.error, "no version"));
    assert_false (d.retry);
    bf_report_cache_destroy (&c);
}

static void
test_room_and_full (void **state)
{
    (void)state;
    s_freed = 0;
    bf_report_cache_t *c = bf_report_cache_new (2, s_free);
    bool start;
    char *json;
    s_waiter_t w[4] = { { "0" }, { "1" }, { "2" }, { "3" } };
    const char *periods[] = { "2026-08", "2026-09" };
    for (int i = 0; i < 2; i++) {
        bf_report_cache_ask (c, periods[i], 1, true, &start, &json);
        bf_report_cache_queue (c, periods[i], 1, &w[i]);
        bf_report_cache_done (c, periods[i], s_doc (1, "T"), NULL, false, s_answer, NULL);
    }
    assert_int_equal (bf_report_cache_size (c), 2);
    /*  2026-08 asked again: 2026-09 is the least recently asked.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-08", 1, true, &start, &json),
                      BF_REPORT_CACHE_ANSWER);
    free (json);
    assert_int_equal (bf_report_cache_ask (c, "2026-10", 1, true, &start, &json),
                      BF_REPORT_CACHE_QUEUE);
    bf_report_cache_queue (c, "2026-10", 1, &w[2]);
    assert_int_equal (bf_report_cache_size (c), 2);
    assert_int_equal (bf_report_cache_ask (c, "2026-08", 1, false, &start, &json),
                      BF_REPORT_CACHE_ANSWER);
    free (json);
    /*  2026-09 is gone: asking for it evicts 2026-08 (idle), not 2026-10
        (computing).  */
    assert_int_equal (bf_report_cache_ask (c, "2026-09", 1, true, &start, &json),
                      BF_REPORT_CACHE_QUEUE);
    assert_true (start);
    bf_report_cache_queue (c, "2026-09", 1, &w[3]);
    /*  Both slots busy: full.  */
    assert_int_equal (bf_report_cache_ask (c, "2026-07", 1, false, &start, &json),
                      BF_REPORT_CACHE_FULL);
    assert_false (start);
    /*  A result for a period no longer kept is dropped.  */
    assert_false (bf_report_cache_done (c, "2026-07", s_doc (1, "T"), NULL, false, s_answer, NULL));
    /*  Destroying frees the waiters never answered.  */
    bf_report_cache_destroy (&c);
    assert_int_equal (s_freed, 2);
    assert_int_equal (w[2].answered + w[3].answered, 0);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_first_request_waits_then_answers_from_memory),
        cmocka_unit_test (test_changed_period_stale_or_wait),
        cmocka_unit_test (test_failure_answers_every_waiter),
        cmocka_unit_test (test_room_and_full),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
