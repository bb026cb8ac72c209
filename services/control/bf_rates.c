/*  bf_rates — run.rates, a run's rates over its life (bf_rates.h).  */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_db.h"
#include "bf_log.h"
#include "bf_query.h"
#include "bf_rates.h"
#include "bf_text.h"

/*  A timestamptz as RFC 3339 UTC with milliseconds (as bf_query.c).  */
#define S_TS(x) "to_char ((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*  $1 run_id, $2 BF_RATES_POINTS. b: the first and newest sample (two
    probes of the primary key); k: the newest sample at or before each of
    $2 + 1 instants between them (one probe each; a sample may come more
    than once, bf_rates_points skips the repeats), each as [seconds since
    the first sample, bills, notices, whether a gap lies since the pick
    before (a probe of run_rate_sample_gap)]. No DISTINCT and no sort
    beyond the instants' own order: this runs for every chart.  */
/* clang-format off */
static const char s_sql_rates[]
    = "WITH b AS (SELECT (SELECT at FROM run_rate_sample WHERE run_id = $1::bigint"
      "                   ORDER BY run_id, at LIMIT 1) AS t0,"
      "                  (SELECT at FROM run_rate_sample WHERE run_id = $1::bigint"
      "                   ORDER BY run_id DESC, at DESC LIMIT 1) AS t1),"
      " k AS (SELECT i, s.at, s.bills, s.notices FROM b"
      "   CROSS JOIN generate_series (0, $2::int) i"
      "   CROSS JOIN LATERAL (SELECT at, bills, notices FROM run_rate_sample x"
      "     WHERE x.run_id = $1::bigint AND x.at <= CASE WHEN i = $2::int THEN b.t1"
      "           ELSE b.t0 + (b.t1 - b.t0) * i / $2::int END"
      "     ORDER BY x.run_id DESC, x.at DESC LIMIT 1) s"
      "   WHERE b.t0 IS NOT NULL),"
      " g AS (SELECT k.*, lag (k.at) OVER (ORDER BY k.i) AS prev FROM k)"
      " SELECT json_build_object ('run_id', $1::bigint,"
      "  'run', (SELECT json_build_object ('period', r.period, 'state', r.state,"
      "     'bills', r.bills, 'started_at', " S_TS ("r.started_at") ","
      "     'finished_at', " S_TS ("r.finished_at") ")"
      "     FROM settlement_run r WHERE r.run_id = $1::bigint),"
      "  'samples', coalesce ((SELECT json_agg (json_build_array ("
      "     round (extract (epoch FROM g.at - b.t0), 3), g.bills, g.notices,"
      "     g.prev IS NOT NULL AND g.at > g.prev AND EXISTS (SELECT 1 FROM run_rate_sample y"
      "       WHERE y.run_id = $1::bigint AND y.gap AND y.at > g.prev AND y.at <= g.at))"
      "     ORDER BY g.i) FROM g, b), '[]'))";
/* clang-format on */

size_t
bf_rates_points (const bf_rates_sample_t *samples, size_t n, size_t max_points,
                 bf_rates_point_t *out)
{
    if (!samples || n < 2 || max_points < 1 || !out)
        return 0;
    /*  Only the leading part in time order counts.  */
    size_t len = 1;
    while (len < n && samples[len].t >= samples[len - 1].t)
        len++;
    const double t0 = samples[0].t, t1 = samples[len - 1].t;
    size_t count = 0, from = 0, at = 0;
    for (size_t i = 1; i <= max_points && count < max_points; i++) {
        double instant = i == max_points ? t1 : t0 + (t1 - t0) * (double)i / (double)max_points;
        while (at + 1 < len && samples[at + 1].t <= instant)
            at++;
        if (at == from || samples[at].t <= samples[from].t)
            continue;
        bf_rates_point_t *p = &out[count++];
        p->t = samples[at].t - t0;
        p->seconds = samples[at].t - samples[from].t;
        p->bills = samples[at].bills - samples[from].bills;
        p->notices = samples[at].notices - samples[from].notices;
        p->gap = false;
        for (size_t k = from + 1; k <= at; k++)
            p->gap = p->gap || samples[k].gap;
        from = at;
    }
    return count;
}

/*  value to the millisecond, as a JSON real.  */
static json_t *
s_real (double value)
{
    return json_real (round (value * 1000.0) / 1000.0);
}

/*  The samples of doc (SQL's "samples") as points under "points".  */
static int
s_points (json_t *doc, char *err, size_t errsize)
{
    json_t *rows = json_object_get (doc, "samples");
    size_t n = json_array_size (rows);
    bf_rates_sample_t *samples = calloc (n ? n : 1, sizeof *samples);
    bf_rates_point_t *points = calloc (BF_RATES_POINTS, sizeof *points);
    json_t *list = json_array ();
    int rc = samples && points && list ? BF_QUERY_OK : BF_QUERY_BAD;
    for (size_t i = 0; rc == BF_QUERY_OK && i < n; i++) {
        json_t *row = json_array_get (rows, i);
        if (json_array_size (row) != 4 || !json_is_number (json_array_get (row, 0))
            || !json_is_integer (json_array_get (row, 1))
            || !json_is_integer (json_array_get (row, 2))
            || !json_is_boolean (json_array_get (row, 3))) {
            rc = BF_QUERY_BAD;
            break;
        }
        samples[i] = (bf_rates_sample_t){ json_number_value (json_array_get (row, 0)),
                                          json_integer_value (json_array_get (row, 1)),
                                          json_integer_value (json_array_get (row, 2)),
                                          json_is_true (json_array_get (row, 3)) };
    }
    size_t count = rc == BF_QUERY_OK ? bf_rates_points (samples, n, BF_RATES_POINTS, points) : 0;
    for (size_t i = 0; rc == BF_QUERY_OK && i < count; i++) {
        const bf_rates_point_t *p = &points[i];
        json_t *point = json_pack (
            "{s:o, s:o, s:I, s:I, s:o, s:o}", "t", s_real (p->t), "seconds", s_real (p->seconds),
            "bills", (json_int_t)p->bills, "notices", (json_int_t)p->notices, "bills_per_s",
            p->gap ? json_null () : s_real ((double)p->bills / p->seconds), "notices_per_s",
            p->gap ? json_null () : s_real ((double)p->notices / p->seconds));
        if (!point || json_array_append_new (list, point) != 0)
            rc = BF_QUERY_BAD;
    }
    free (samples);
    free (points);
    if (rc != BF_QUERY_OK) {
        json_decref (list);
        bf_error ("query: run.rates: unreadable samples");
        return bf_err_set (err, errsize, "run.rates: unreadable samples"), BF_QUERY_BAD;
    }
    json_object_del (doc, "samples");
    json_object_set_new (doc, "points", list);
    return BF_QUERY_OK;
}

int
bf_rates_query (PGconn *conn, const char *run_id, json_t **doc, char *err, size_t errsize)
{
    char points[16];
    snprintf (points, sizeof points, "%d", BF_RATES_POINTS);
    const char *params[] = { run_id, points };
    int rc = bf_query_document (conn, s_sql_rates, 2, params, "run.rates", doc, err, errsize);
    if (rc != BF_QUERY_OK)
        return rc;
    rc = s_points (*doc, err, errsize);
    if (rc != BF_QUERY_OK) {
        json_decref (*doc);
        *doc = NULL;
    }
    return rc;
}
