/*  bf_ratesampler — samples of each run's bills and final notices
    (bf_ratesampler.h).  */

#include <stdio.h>
#include <stdlib.h>

#include "bf_db.h"
#include "bf_log.h"
#include "bf_ratesampler.h"

/*  $1: gap_ms. open: the periods with unfinished notices; cand: the runs
    to look at: busy ones, and for their closing row those that ended in
    the last hour, and each period's newest run when it was sampled in the
    last ten minutes (one probe of the primary key per period), so a run
    whose notices end, or that ends while no control is active, gets it
    from the next sample; cur: each one's figures now, whether it is busy,
    and its newest sample. The start row goes in with the first sample; a
    run that is neither busy nor changed since its newest sample gets no
    row.  */
static const char s_sql_sample[]
    = "WITH open AS (SELECT period FROM delivery_count_shown"
      "   WHERE state IN ('PENDING', 'SENDING', 'RETRY') GROUP BY period HAVING sum (n) > 0),"
      " newest AS (SELECT DISTINCT ON (period) run_id, period FROM settlement_run"
      "   ORDER BY period, run_id DESC),"
      " cand AS (SELECT run_id FROM settlement_run WHERE state IN ('RUNNING', 'STOPPING')"
      "     OR finished_at > now () - interval '1 hour'"
      "   UNION SELECT n.run_id FROM newest n WHERE n.period IN (SELECT period FROM open)"
      "     OR EXISTS (SELECT 1 FROM run_rate_sample s WHERE s.run_id = n.run_id"
      "                AND s.at > now () - interval '10 minutes')),"
      " cur AS (SELECT r.run_id, coalesce (r.started_at, r.created_at) AS started_at, r.bills,"
      "   r.state IN ('RUNNING', 'STOPPING')"
      "    OR (r.period IN (SELECT period FROM open) AND NOT EXISTS (SELECT 1 FROM settlement_run"
      "        x WHERE x.period = r.period AND x.run_id > r.run_id)) AS busy,"
      "   EXISTS (SELECT 1 FROM settlement_run e WHERE e.period = r.period"
      "           AND e.run_id < r.run_id) AS earlier_run,"
      "   (SELECT coalesce (sum (d.n), 0)::bigint FROM delivery_count d WHERE d.period = r.period"
      "     AND d.state IN ('DELIVERED', 'FAILED', 'CANCELLED')) AS notices,"
      "   l.at AS last_at, l.bills AS last_bills, l.notices AS last_notices"
      "   FROM cand JOIN settlement_run r USING (run_id)"
      "   LEFT JOIN LATERAL (SELECT at, bills, notices FROM run_rate_sample s"
      "     WHERE s.run_id = r.run_id ORDER BY at DESC LIMIT 1) l ON true)"
      " INSERT INTO run_rate_sample (run_id, at, bills, notices, gap)"
      " SELECT run_id, started_at, 0, CASE WHEN earlier_run THEN notices ELSE 0 END, false"
      "   FROM cur WHERE last_at IS NULL AND started_at < now ()"
      " UNION ALL"
      " SELECT run_id, now (), bills, notices,"
      "   now () - coalesce (last_at, started_at) > make_interval (secs => $1::int / 1000.0)"
      "   FROM cur WHERE busy OR last_at IS NULL"
      "   OR (bills, notices) IS DISTINCT FROM (last_bills, last_notices)"
      " ON CONFLICT (run_id, at) DO NOTHING";

/*  $1: days. Runs that ended (finished_at set) that long ago.  */
static const char s_sql_prune[]
    = "DELETE FROM run_rate_sample WHERE run_id IN (SELECT run_id FROM settlement_run"
      " WHERE finished_at < now () - make_interval (days => $1::int))";

/*  Runs sql with one integer parameter; the rows it affected, or -1.  */
static int64_t
s_run (PGconn *conn, const char *sql, int value, const char *what)
{
    char text[16];
    snprintf (text, sizeof text, "%d", value);
    const char *params[] = { text };
    PGresult *res = bf_db_query (conn, sql, 1, params, PGRES_COMMAND_OK, what);
    if (!res)
        return -1;
    int64_t rows = strtoll (PQcmdTuples (res), NULL, 10);
    PQclear (res);
    return rows;
}

int64_t
bf_ratesampler_sample (PGconn *conn, int gap_ms)
{
    if (!conn)
        return -1;
    return s_run (conn, s_sql_sample, gap_ms, "sampling the runs' rates");
}

int64_t
bf_ratesampler_prune (PGconn *conn, int days)
{
    if (!conn || days < 1)
        return -1;
    int64_t rows = s_run (conn, s_sql_prune, days, "deleting old rate samples");
    if (rows > 0)
        bf_info ("control: deleted %lld rate samples of runs that ended over %d days ago",
                 (long long)rows, days);
    return rows;
}
