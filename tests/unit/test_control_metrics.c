/*  bf_control_metrics: bounded labels (unknown verbs are "other", outcomes
    lower case), instances up and down per service, and the cluster-wide
    families hidden until an active control has read a snapshot.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_control_metrics.h"
#include "bf_metrics.h"
#include "bf_testutil.h"

/*  True when the exposition holds the line "series value" or, with value
    NULL, the HELP line of family series (shown, not hidden).  */
static bool
s_rendered (const char *series, const char *value)
{
    char needle[256];
    if (value)
        snprintf (needle, sizeof needle, "\n%s %s\n", series, value);
    else
        snprintf (needle, sizeof needle, "# HELP %s ", series);
    char *text = bf_metrics_render (NULL);
    assert_non_null (text);
    bool found = strstr (text, needle) != NULL;
    free (text);
    return found;
}

#define s_has(series, value) s_rendered (series, value)
#define s_shows(family)      s_rendered (family, NULL)

static void
test_commands_and_frames (void **state)
{
    (void)state;
    bf_control_metrics_init ();
    assert_true (s_has ("billflow_control_commands_repeated_total", "0"));
    assert_true (s_has ("billflow_control_curve_refused_total", "0"));
    bf_control_metrics_command ("run.start", "stored");
    bf_control_metrics_command ("run.start", "stored");
    bf_control_metrics_command ("run.start", "DONE");
    bf_control_metrics_command ("no such verb\n", "rejected");
    bf_control_metrics_command (NULL, "rejected"); /* nothing */
    assert_true (
        s_has ("billflow_control_commands_total{verb=\"run.start\",outcome=\"stored\"}", "2"));
    assert_true (
        s_has ("billflow_control_commands_total{verb=\"run.start\",outcome=\"done\"}", "1"));
    assert_true (
        s_has ("billflow_control_commands_total{verb=\"other\",outcome=\"rejected\"}", "1"));
    bf_control_metrics_query ("runs.list");
    bf_control_metrics_query ("whatever");
    assert_true (s_has ("billflow_control_queries_total{verb=\"runs.list\"}", "1"));
    assert_true (s_has ("billflow_control_queries_total{verb=\"other\"}", "1"));
    bf_control_metrics_repeated ();
    bf_control_metrics_curve_refused ();
    bf_control_metrics_malformed ("frames");
    assert_true (s_has ("billflow_control_commands_repeated_total", "1"));
    assert_true (s_has ("billflow_control_curve_refused_total", "1"));
    assert_true (s_has ("billflow_control_malformed_frames_total{reason=\"frames\"}", "1"));
}

static void
test_instances (void **state)
{
    (void)state;
    bf_control_metrics_instance ("settle", "s1", true);
    bf_control_metrics_instance ("settle", "s2", true);
    bf_control_metrics_instance ("notify", "n1", true);
    bf_control_metrics_instance ("bogus", "x1", true); /* not a service: not counted */
    bf_control_metrics_instance ("settle", "s1", false);
    assert_true (s_has ("billflow_control_instances{service=\"settle\",state=\"up\"}", "1"));
    assert_true (s_has ("billflow_control_instances{service=\"settle\",state=\"down\"}", "1"));
    assert_true (s_has ("billflow_control_instances{service=\"notify\",state=\"up\"}", "1"));
    /*  Back up: no longer down.  */
    bf_control_metrics_instance ("settle", "s1", true);
    assert_true (s_has ("billflow_control_instances{service=\"settle\",state=\"up\"}", "2"));
    assert_true (s_has ("billflow_control_instances{service=\"settle\",state=\"down\"}", "0"));
    /*  Stepping down forgets them all.  */
    bf_control_metrics_instances_clear ();
    assert_true (s_has ("billflow_control_instances{service=\"settle\",state=\"up\"}", "0"));
    assert_true (s_has ("billflow_control_instances{service=\"notify\",state=\"up\"}", "0"));
}

static void
test_cluster_families_hidden_without_a_snapshot (void **state)
{
    (void)state;
    bf_control_metrics_init ();
    const char *families[]
        = { "billflow_deliveries", "billflow_run_chunks",
            "billflow_run_oldest_unfinished_age_seconds", "billflow_notices_held_overdue" };
    for (size_t i = 0; i < 4; i++)
        assert_false (s_shows (families[i]));
    /*  Active but no database yet: still nothing to show.  */
    bf_control_metrics_tick (NULL, true, 100);
    bf_control_metrics_tick (NULL, false, 100);
    for (size_t i = 0; i < 4; i++)
        assert_false (s_shows (families[i]));
    assert_true (s_shows ("billflow_control_commands_total"));
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_commands_and_frames),
        cmocka_unit_test (test_instances),
        cmocka_unit_test (test_cluster_families_hidden_without_a_snapshot),
    };
    return cmocka_run_group_tests (tests, bf_testutil_quiet_setup, bf_testutil_quiet_teardown);
}
