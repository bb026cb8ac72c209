/*  bf_report — run.report (see bf_report.h).

    One statement builds the whole document with json_build_object, like
    the other queries (bf_query.c), so every figure comes from one snapshot
    and PostgreSQL does the escaping. Fixed sets (states, channels,
    outcomes, reasons) are listed in full with zeros, so the document has
    the same shape for every period.  */

#include <jansson.h>
#include <stdbool.h>
#include <string.h>

#include "bf_config.h"
#include "bf_db.h"
#include "bf_log.h"
#include "bf_report.h"

#define S_STR(x)  #x
#define S_XSTR(x) S_STR (x)

/*  A timestamptz as RFC 3339 UTC with milliseconds; NULL stays NULL.  */
#define S_TS(x) "to_char ((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*  sum (col) of the counters c WHERE cond, 0 when there are none.  */
#define S_SUM(col, cond) "(SELECT coalesce (sum (" col "), 0) FROM c WHERE " cond ")"

#define S_OPEN "('PENDING', 'SENDING', 'RETRY')"

/*  The period's version: its change counters summed over the shards
    (db/013_report_change.sql). In the report's statement it is the
    version of the report's own snapshot.  */
#define S_VERSION "SELECT coalesce (sum (changes), 0)::bigint FROM report_change WHERE period = $1"

/* clang-format off */
/*  CTEs:
    r    the period's runs, with rerate (an earlier run completed);
    c    delivery_count_shown summed over shards, by channel and state (a
         claimed delivery counts as SENDING, db/016_dispatch_claim.sql);
    bt   the bill partition's own count and sum;
    u1   the unnotified bills without a claim on them: the anti-join of
         bf_report.h's rule. A bill
         is notified by a notice of it that is DELIVERED or HELD (one
         anti-join, read index-only from delivery_notified), or that is
         the fallback of a FAILED email of the period and ended FAILED or
         CANCELLED (a second anti-join, from delivery_fallback_ended; the
         email by primary key, or by delivery_failed for the period's
         failed emails: the planner picks). Two NOT EXISTS rather than one
         over an OR: the same bills, but the OR reads every notice's row;
    hc   the period's claims, with the bill of each claimed HELD notice (a
         claimed notice shows as SENDING: it does not notify its bill);
    u2   the bills whose notifying notices are all claimed HELD ones (u1
         holds none of them: it leaves out every bill with a HELD
         notice); each a few probes by (period, bill_id), never a pass;
    u    u1 and u2;
    ur   u with each bill's reason, from its notices (delivery_bill again),
         a claimed one as SENDING;
    h    earliest and latest release of the HELD notices not claimed
         (delivery_held);
    hr   those HELD notices by hold_reason (delivery_held);
    a    attempts of the period's notices, by channel and outcome, from
         the counters attempt_count (db/013_report_change.sql);
    pd   the period's notices with a possibly delivered attempt (outcome
         UNKNOWN: the whole email went out, the final reply never came),
         by their state as shown: possible duplicates (the attempts from the
         partial index delivery_attempt_unknown, db/012_report.sql; the
         notices by primary key: = ANY of an array is an index scan, where
         a semi-join would be a hash join over the whole period with
         nested loops off);
    st, ch, oc, rs   the fixed sets, in the order the document lists them.  */
static const char s_sql_report[] =
    "WITH r AS (SELECT x.*, EXISTS (SELECT 1 FROM settlement_run o WHERE o.period = x.period"
    "                               AND o.run_id < x.run_id AND o.state = 'COMPLETED') AS rerate"
    "           FROM settlement_run x WHERE x.period = $1),"
    " c AS (SELECT channel, state, sum (n)::bigint AS n, sum (fallbacks)::bigint AS f"
    "       FROM delivery_count_shown WHERE period = $1 GROUP BY channel, state),"
    " bt AS (SELECT count (*)::bigint AS n, coalesce (sum (total), 0)::bigint AS amount"
    "        FROM bill WHERE period = $1),"
    " u1 AS MATERIALIZED (SELECT b.period, b.bill_id, b.subscriber_id FROM bill b"
    "       WHERE b.period = $1 AND NOT EXISTS (SELECT 1 FROM delivery d"
    "         WHERE d.period = b.period AND d.bill_id = b.bill_id"
    "         AND d.state IN ('DELIVERED', 'HELD'))"
    "       AND NOT EXISTS (SELECT 1 FROM delivery d"
    "         WHERE d.period = b.period AND d.bill_id = b.bill_id"
    "         AND d.state IN ('FAILED', 'CANCELLED') AND d.fallback_of IS NOT NULL"
    "         AND EXISTS (SELECT 1 FROM delivery e WHERE e.id = d.fallback_of"
    "                     AND e.period = d.period AND e.state = 'FAILED'"
    "                     AND e.channel = 'EMAIL'))),"
    " hc AS MATERIALIZED (SELECT k.delivery_id, (SELECT d.bill_id FROM delivery d"
    "         WHERE d.id = k.delivery_id AND d.state = 'HELD') AS bill_id"
    "       FROM dispatch_claim k WHERE k.period = $1),"
    " u2 AS (SELECT $1::text AS period, h.bill_id, (SELECT b.subscriber_id FROM bill b"
    "         WHERE b.period = $1 AND b.bill_id = h.bill_id) AS subscriber_id"
    "       FROM (SELECT DISTINCT bill_id FROM hc WHERE bill_id IS NOT NULL) h"
    "       WHERE (SELECT count (*) FROM delivery d WHERE d.period = $1 AND d.bill_id = h.bill_id"
    "         AND (d.state = 'DELIVERED' OR (d.state = 'HELD'"
    "              AND d.id NOT IN (SELECT delivery_id FROM hc)))) = 0"
    "       AND (SELECT count (*) FROM delivery d WHERE d.period = $1 AND d.bill_id = h.bill_id"
    "         AND d.state IN ('FAILED', 'CANCELLED') AND d.fallback_of IS NOT NULL"
    "         AND EXISTS (SELECT 1 FROM delivery e WHERE e.id = d.fallback_of"
    "                     AND e.period = d.period AND e.state = 'FAILED'"
    "                     AND e.channel = 'EMAIL')) = 0),"
    " u AS MATERIALIZED (SELECT * FROM u1 UNION ALL SELECT * FROM u2),"
    " ur AS (SELECT u.bill_id, u.subscriber_id, x.reason FROM u CROSS JOIN LATERAL"
    "        (SELECT CASE WHEN bool_or (delivery_shown_state (d.id, d.state) IN " S_OPEN ")"
    "                     THEN 'in progress'"
    "                     WHEN bool_or (d.state = 'FAILED') THEN 'failed without fallback'"
    "                     ELSE 'no delivery' END AS reason"
    "         FROM delivery d WHERE d.period = u.period AND d.bill_id = u.bill_id) x),"
    " h AS (SELECT min (not_before) AS first, max (not_before) AS last FROM delivery"
    "       WHERE period = $1 AND state = 'HELD' AND id NOT IN (SELECT delivery_id FROM hc)),"
    " hr AS (SELECT hold_reason AS reason, count (*)::bigint AS n FROM delivery"
    "        WHERE period = $1 AND state = 'HELD' AND id NOT IN (SELECT delivery_id FROM hc)"
    "        GROUP BY hold_reason),"
    " a AS (SELECT channel, outcome, sum (n)::bigint AS n FROM attempt_count"
    "       WHERE period = $1 GROUP BY channel, outcome),"
    " pd AS (SELECT delivery_shown_state (d.id, d.state) AS state, count (*)::bigint AS n"
    "        FROM delivery d"
    "        WHERE d.period = $1 AND d.id = ANY (ARRAY (SELECT delivery_id FROM delivery_attempt"
    "                                                   WHERE outcome = 'UNKNOWN'))"
    "        GROUP BY 1),"
    " st AS (SELECT * FROM unnest (ARRAY['DELIVERED', 'FAILED', 'CANCELLED', 'PENDING',"
    "        'SENDING', 'RETRY', 'HELD']) WITH ORDINALITY AS s (state, o)),"
    " ch AS (SELECT * FROM unnest (ARRAY['EMAIL', 'SMS', 'PUSH']) WITH ORDINALITY AS s (channel, o)),"
    " oc AS (SELECT * FROM unnest (ARRAY['DELIVERED', 'DUPLICATE', 'TRANSIENT', 'PERMANENT',"
    "        'THROTTLED', 'UNKNOWN']) WITH ORDINALITY AS s (outcome, o)),"
    " rs AS (SELECT * FROM unnest (ARRAY['no delivery', 'in progress',"
    "        'failed without fallback']) WITH ORDINALITY AS s (reason, o)),"
    " k AS (SELECT (SELECT state FROM r ORDER BY run_id DESC LIMIT 1) AS run_state,"
    "              (SELECT coalesce (sum (bills), 0)::bigint FROM r) AS bills,"
    "              (SELECT coalesce (sum (amount_total), 0)::bigint FROM r) AS amount,"
    "              (SELECT count (*) FROM ur) AS unnotified,"
    "              " S_SUM ("n", "state IN " S_OPEN) " AS in_flight)"
    " SELECT json_build_object ("
    "  'period', $1::text,"
    "  'version', (" S_VERSION "),"
    "  'as_of', " S_TS ("statement_timestamp ()") ","
    "  'final', (SELECT coalesce (run_state = 'COMPLETED', false) AND unnotified = 0 AND in_flight = 0"
    "            FROM k),"
    "  'run_state', (SELECT run_state FROM k),"
    "  'bills', (SELECT json_build_object ('count', k.bills, 'amount_total', k.amount,"
    "     'table_count', bt.n, 'table_amount_total', bt.amount,"
    "     'consistent', k.bills = bt.n AND k.amount = bt.amount) FROM k, bt),"
    "  'runs', coalesce ((SELECT json_agg (json_build_object ('run_id', run_id, 'state', state,"
    "     'rerate', rerate, 'bills', bills, 'amount_total', amount_total,"
    "     'rating_errors', rating_errors, 'started_at', " S_TS ("started_at") ","
    "     'finished_at', " S_TS ("finished_at") ","
    "     'seconds', round (extract (epoch FROM coalesce (finished_at, now ()) - started_at), 3))"
    "     ORDER BY run_id) FROM r), '[]'),"
    "  'notices', json_build_object ("
    "     'total', " S_SUM ("n", "true") ","
    "     'finished', " S_SUM ("n", "state IN ('DELIVERED', 'FAILED', 'CANCELLED')") ","
    "     'unfinished', " S_SUM ("n", "state IN ('PENDING', 'SENDING', 'RETRY', 'HELD')") ","
    "     'by_state', (SELECT json_object_agg (st.state, (SELECT coalesce (sum (n), 0) FROM c"
    "        WHERE c.state = st.state) ORDER BY st.o) FROM st),"
    "     'by_channel', (SELECT json_object_agg (ch.channel, (SELECT json_object_agg (st.state,"
    "        (SELECT coalesce (sum (n), 0) FROM c WHERE c.channel = ch.channel"
    "         AND c.state = st.state) ORDER BY st.o) FROM st) ORDER BY ch.o) FROM ch)),"
    "  'fallbacks', json_build_object ("
    "     'failed_emails', " S_SUM ("n", "channel = 'EMAIL' AND state = 'FAILED'") ","
    "     'created', " S_SUM ("f", "true") ","
    "     'delivered', " S_SUM ("f", "state = 'DELIVERED'") ","
    "     'failed', " S_SUM ("f", "state = 'FAILED'") ","
    "     'cancelled', " S_SUM ("f", "state = 'CANCELLED'") ","
    "     'unfinished', " S_SUM ("f", "state IN ('PENDING', 'SENDING', 'RETRY', 'HELD')") "),"
    "  'held', json_build_object ("
    "     'count', " S_SUM ("n", "state = 'HELD'") ","
    "     'from', " S_TS ("(SELECT first FROM h)") ","
    "     'until', " S_TS ("(SELECT last FROM h)") ","
    "     'reasons', coalesce ((SELECT json_agg (json_build_object ('reason', reason, 'count', n)"
    "        ORDER BY n DESC, reason NULLS LAST) FROM hr), '[]')),"
    "  'attempts', json_build_object ("
    "     'total', (SELECT coalesce (sum (n), 0) FROM a),"
    "     'by_channel', (SELECT json_object_agg (ch.channel, (SELECT json_object_agg (oc.outcome,"
    "        (SELECT coalesce (sum (n), 0) FROM a WHERE a.channel = ch.channel"
    "         AND a.outcome = oc.outcome) ORDER BY oc.o) FROM oc) ORDER BY ch.o) FROM ch),"
    "     'by_outcome', (SELECT json_object_agg (oc.outcome, (SELECT coalesce (sum (n), 0) FROM a"
    "        WHERE a.outcome = oc.outcome) ORDER BY oc.o) FROM oc)),"
    "  'possible_duplicates', json_build_object ("
    "     'notices', (SELECT coalesce (sum (n), 0) FROM pd),"
    "     'delivered', (SELECT coalesce (sum (n), 0) FROM pd WHERE state = 'DELIVERED'),"
    "     'awaiting_resend', (SELECT coalesce (sum (n), 0) FROM pd"
    "        WHERE state IN ('PENDING', 'SENDING', 'RETRY', 'HELD')),"
    "     'not_resent', (SELECT coalesce (sum (n), 0) FROM pd"
    "        WHERE state IN ('FAILED', 'CANCELLED'))),"
    "  'unnotified', json_build_object ("
    "     'count', (SELECT unnotified FROM k),"
    "     'by_reason', (SELECT json_object_agg (rs.reason, (SELECT count (*) FROM ur"
    "        WHERE ur.reason = rs.reason) ORDER BY rs.o) FROM rs),"
    "     'bills', coalesce ((SELECT json_agg (json_build_object ('bill_id', bill_id,"
    "        'subscriber_id', subscriber_id, 'reason', reason) ORDER BY bill_id)"
    "        FROM (SELECT * FROM ur ORDER BY bill_id"
    "              LIMIT " S_XSTR (BF_REPORT_UNNOTIFIED_MAX) ") l), '[]')))";
/* clang-format on */

static const char s_sql_version[] = S_VERSION;

int
bf_report_version (PGconn *conn, const char *period, int64_t *version, char *err, size_t errsize)
{
    *version = 0;
    const char *params[] = { period };
    PGresult *res
        = bf_db_query (conn, s_sql_version, 1, params, PGRES_TUPLES_OK, "run.report version");
    if (!res)
        return bf_query_db_failed (err, errsize);
    int rc = BF_QUERY_OK;
    if (PQntuples (res) != 1 || bf_config_parse_int (PQgetvalue (res, 0, 0), version) != 0) {
        bf_error ("query: run.report version: unreadable answer");
        rc = BF_QUERY_BAD, bf_err_set (err, errsize, "run.report: unreadable version");
    }
    PQclear (res);
    return rc;
}

int
bf_report (PGconn *conn, const char *period, json_t **doc, char *err, size_t errsize)
{
    *doc = NULL;
    if (!period)
        return bf_err_set (err, errsize, "run.report needs period=YYYY-MM"), BF_QUERY_BAD;
    const char *params[] = { period };
    /*  The report reads whole periods: hash joins are linear whatever the
        statistics say. Right after a run, before autovacuum has analysed
        the new rows, the planner would otherwise pick nested loops over
        sequential scans (minutes at 100,000 bills instead of a second).
        And no JIT: disabling nested loops adds disable_cost (1e10) to the
        plan's cost, far above jit_above_cost, so PostgreSQL compiled the
        statement's ~360 expressions with LLVM inlining and optimisation
        on every call: 9 of the 10 s the report took at 100,000
        subscribers (docs/benchmarks.md "run.report"). The statement
        aggregates a few hundred thousand rows at most; interpreted
        expressions cost milliseconds there.  */
    PGresult *res = NULL;
    if (bf_db_begin (conn) == BF_DB_OK
        && bf_db_exec (conn, "SET LOCAL enable_nestloop = off", "run.report planning") == BF_DB_OK
        && bf_db_exec (conn, "SET LOCAL jit = off", "run.report planning") == BF_DB_OK)
        res = bf_db_query (conn, s_sql_report, 1, params, PGRES_TUPLES_OK, "run.report");
    if (res)
        bf_db_commit (conn);
    else if (PQtransactionStatus (conn) != PQTRANS_IDLE)
        bf_db_rollback (conn);
    if (!res)
        return bf_query_db_failed (err, errsize);
    if (PQntuples (res) != 1 || PQgetisnull (res, 0, 0)) {
        PQclear (res);
        bf_error ("query: run.report returned no document");
        return bf_err_set (err, errsize, "run.report returned no document"), BF_QUERY_BAD;
    }
    json_error_t jerr;
    *doc = json_loads (PQgetvalue (res, 0, 0), 0, &jerr);
    PQclear (res);
    if (!*doc) {
        bf_error ("query: run.report: unreadable document: %s", jerr.text);
        return bf_err_set (err, errsize, "run.report: unreadable document"), BF_QUERY_BAD;
    }
    return BF_QUERY_OK;
}
