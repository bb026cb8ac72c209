/*  bf_run — settlement runs of a period (see bf_run.h).  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_date.h"
#include "bf_db.h"
#include "bf_log.h"
#include "bf_run.h"
#include "bf_settle_metrics.h"

/*  Validates period and takes the period's transaction-level lock.  */
static int
s_lock_period (PGconn *conn, const char *period, char *err, size_t errsize)
{
    bf_period_t p;
    if (!period || bf_period_parse (period, &p) != 0) {
        snprintf (err, errsize, "'%s' is not a period (YYYY-MM)", period ? period : "");
        return -1;
    }
    const char *params[] = { period };
    PGresult *res = bf_db_query (conn, "SELECT pg_advisory_xact_lock (hashtext ('bf_run:' || $1))",
                                 1, params, PGRES_TUPLES_OK, "locking the period");
    if (!res) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    PQclear (res);
    return 0;
}

/*  Latest run of the period: run_id and state, or run_id 0.  */
static int
s_latest (PGconn *conn, const char *period, int64_t *run_id, char *state, size_t statesize,
          char *err, size_t errsize)
{
    const char *params[] = { period };
    PGresult *res = bf_db_query (conn,
                                 "SELECT run_id, state FROM settlement_run WHERE period = $1"
                                 " ORDER BY run_id DESC LIMIT 1",
                                 1, params, PGRES_TUPLES_OK, "reading runs");
    if (!res) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    *run_id = 0;
    state[0] = 0;
    if (PQntuples (res) == 1) {
        *run_id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
        snprintf (state, statesize, "%s", PQgetvalue (res, 0, 1));
    }
    PQclear (res);
    return 0;
}

static bool
s_unfinished (const char *state)
{
    return !strcmp (state, "RUNNING") || !strcmp (state, "STOPPING") || !strcmp (state, "STOPPED");
}

/*  Chunks: every chunk_size-th id of the source set starts a chunk; a chunk
    ends where the next starts (the last one after the largest id). The
    source is every subscriber, or (re-rate) those in rating_error.  */
static const char *s_chunks_sql
    = "WITH src AS (SELECT id FROM subscriber WHERE NOT $4"
      "             UNION ALL"
      "             SELECT subscriber_id FROM rating_error WHERE $4 AND period = $2),"
      " starts AS (SELECT id FROM (SELECT id, row_number () OVER (ORDER BY id) - 1 AS rn FROM src) "
      "s"
      "            WHERE rn % $3 = 0),"
      " chunks AS (SELECT row_number () OVER (ORDER BY id) - 1 AS chunk_no, id AS id_from,"
      "                   coalesce (lead (id) OVER (ORDER BY id), (SELECT max (id) + 1 FROM src))"
      "                   AS id_to FROM starts)"
      " INSERT INTO settlement_chunk (run_id, chunk_no, id_from, id_to)"
      " SELECT $1, chunk_no, id_from, id_to FROM chunks";

int
bf_run_start (PGconn *conn, const char *period, int chunk_size, const char *command_id,
              int64_t *run_id, char *err, size_t errsize)
{
    char state[16];
    if (s_lock_period (conn, period, err, errsize) != 0
        || s_latest (conn, period, run_id, state, sizeof state, err, errsize) != 0)
        return -1;
    if (*run_id && s_unfinished (state))
        return BF_RUN_EXISTS;

    const char *params[] = { period };
    PGresult *res = bf_db_query (conn,
                                 "SELECT EXISTS (SELECT 1 FROM settlement_run WHERE period = $1"
                                 "               AND state = 'COMPLETED'),"
                                 "       EXISTS (SELECT 1 FROM rating_error WHERE period = $1)",
                                 1, params, PGRES_TUPLES_OK, "reading the period's state");
    if (!res) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    bool completed = PQgetvalue (res, 0, 0)[0] == 't';
    bool errors = PQgetvalue (res, 0, 1)[0] == 't';
    PQclear (res);
    if (completed && !errors)
        return BF_RUN_SETTLED;
    bool rerate = completed && errors;

    res = bf_db_query (conn, "SELECT bf_ensure_period ($1)", 1, params, PGRES_TUPLES_OK,
                       "creating the period's partitions");
    if (!res) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    PQclear (res);

    char size[16];
    snprintf (size, sizeof size, "%d", chunk_size);
    const char *run_params[] = { period, size, command_id };
    res = bf_db_query (conn,
                       "INSERT INTO settlement_run (period, state, chunk_size, command_id,"
                       " started_at) VALUES ($1, 'RUNNING', $2, $3, now ()) RETURNING run_id",
                       3, run_params, PGRES_TUPLES_OK, "creating the run");
    if (!res) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    *run_id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long)*run_id);
    PQclear (res);

    const char *chunk_params[] = { id, period, size, rerate ? "true" : "false" };
    res = bf_db_query (conn, s_chunks_sql, 4, chunk_params, PGRES_COMMAND_OK, "creating chunks");
    if (!res) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    const char *count = PQcmdTuples (res);
    const char *total_params[] = { id, count };
    PGresult *upd = bf_db_query (conn,
                                 "UPDATE settlement_run SET chunks_total = $2,"
                                 " state = CASE WHEN $2::int = 0 THEN 'COMPLETED' ELSE state END,"
                                 " finished_at = CASE WHEN $2::int = 0 THEN now () END"
                                 " WHERE run_id = $1",
                                 2, total_params, PGRES_COMMAND_OK, "counting chunks");
    bf_info ("run %s of %s started%s: %s chunks of %d subscribers", id, period,
             rerate ? " (re-rating subscribers with rating errors)" : "", count, chunk_size);
    PQclear (res);
    if (!upd) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    PQclear (upd);
    bf_settle_metrics_run_started ();
    return BF_RUN_STARTED;
}

/*  Shared by stop and resume: moves the unfinished run from one of `from`
    states to `to`.  */
static int
s_transition (PGconn *conn, const char *period, const char *sql, const char *target,
              int64_t *run_id, char *err, size_t errsize)
{
    char state[16];
    if (s_lock_period (conn, period, err, errsize) != 0
        || s_latest (conn, period, run_id, state, sizeof state, err, errsize) != 0)
        return -1;
    if (!*run_id || !s_unfinished (state)) {
        snprintf (err, errsize, "period %s has no unfinished run%s%s", period,
                  *run_id ? "; its latest run is " : "", *run_id ? state : "");
        return -1;
    }
    if (!strcmp (state, target))
        return BF_RUN_UNCHANGED;
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long)*run_id);
    const char *params[] = { id };
    PGresult *res = bf_db_query (conn, sql, 1, params, PGRES_COMMAND_OK, "changing run state");
    if (!res) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    bool changed = strcmp (PQcmdTuples (res), "0") != 0;
    PQclear (res);
    if (changed)
        bf_info ("run %s of %s: %s -> %s", id, period, state, target);
    return changed ? BF_RUN_CHANGED : BF_RUN_UNCHANGED;
}

int
bf_run_stop (PGconn *conn, const char *period, int64_t *run_id, char *err, size_t errsize)
{
    int rc = s_transition (conn, period,
                           "UPDATE settlement_run SET state = 'STOPPING', updated_at = now ()"
                           " WHERE run_id = $1 AND state = 'RUNNING'",
                           "STOPPING", run_id, err, errsize);
    if (rc == BF_RUN_UNCHANGED) {
        /*  A STOPPED run asked to stop again is not a change either.  */
        return rc;
    }
    if (rc == BF_RUN_CHANGED && bf_run_settle_stops (conn) < 0) {
        bf_err_set (err, errsize, "%s", bf_db_last_message ());
        return -1;
    }
    return rc;
}

int
bf_run_resume (PGconn *conn, const char *period, int64_t *run_id, char *err, size_t errsize)
{
    return s_transition (conn, period,
                         "UPDATE settlement_run SET state = 'RUNNING', updated_at = now ()"
                         " WHERE run_id = $1 AND state IN ('STOPPING', 'STOPPED')",
                         "RUNNING", run_id, err, errsize);
}

int
bf_run_settle_stops (PGconn *conn)
{
    PGresult *res = bf_db_query (
        conn,
        "UPDATE settlement_run r SET state = 'STOPPED', updated_at = now ()"
        " WHERE state = 'STOPPING' AND NOT EXISTS (SELECT 1 FROM settlement_chunk c"
        "   WHERE c.run_id = r.run_id AND c.state = 'CLAIMED' AND c.lease_until > now ())",
        0, NULL, PGRES_COMMAND_OK, "settling stopped runs");
    if (!res)
        return -1;
    int n = atoi (PQcmdTuples (res));
    PQclear (res);
    return n;
}

int
bf_run_info (PGconn *conn, const char *period, int64_t run_id, bf_run_info_t *info)
{
    char id[24];
    snprintf (id, sizeof id, "%lld", (long long)run_id);
    const char *params[] = { period ? period : "", id };
    PGresult *res = bf_db_query (
        conn,
        "SELECT run_id, period, state, chunks_total, chunks_done, subscribers_done, bills,"
        " amount_total, rating_errors,"
        " extract (epoch FROM coalesce (finished_at, now ()) - started_at),"
        " chunk_size > 0 AND EXISTS (SELECT 1 FROM settlement_run o WHERE o.period = r.period"
        "   AND o.run_id < r.run_id AND o.state = 'COMPLETED')"
        " FROM settlement_run r WHERE ($2::bigint = 0 AND period = $1) OR run_id = $2::bigint"
        " ORDER BY run_id DESC LIMIT 1",
        2, params, PGRES_TUPLES_OK, "reading a run");
    if (!res)
        return -1;
    int rc = 1;
    if (PQntuples (res) == 1) {
        memset (info, 0, sizeof *info);
        info->run_id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
        snprintf (info->period, sizeof info->period, "%s", PQgetvalue (res, 0, 1));
        snprintf (info->state, sizeof info->state, "%s", PQgetvalue (res, 0, 2));
        info->chunks_total = atoi (PQgetvalue (res, 0, 3));
        info->chunks_done = atoi (PQgetvalue (res, 0, 4));
        info->subscribers_done = strtoll (PQgetvalue (res, 0, 5), NULL, 10);
        info->bills = strtoll (PQgetvalue (res, 0, 6), NULL, 10);
        info->amount_total = strtoll (PQgetvalue (res, 0, 7), NULL, 10);
        info->rating_errors = strtoll (PQgetvalue (res, 0, 8), NULL, 10);
        info->seconds = PQgetisnull (res, 0, 9) ? 0 : atof (PQgetvalue (res, 0, 9));
        info->rerate = PQgetvalue (res, 0, 10)[0] == 't';
        rc = 0;
    }
    PQclear (res);
    return rc;
}

char *
bf_run_info_json (const bf_run_info_t *info, char *out, size_t outsize)
{
    snprintf (out, outsize,
              "{\"run_id\":%lld,\"period\":\"%s\",\"state\":\"%s\",\"rerate\":%s,"
              "\"chunks_total\":%d,\"chunks_done\":%d,\"subscribers_done\":%lld,"
              "\"bills\":%lld,\"amount_total\":%lld,\"rating_errors\":%lld,\"seconds\":%.3f}",
              (long long)info->run_id, info->period, info->state, info->rerate ? "true" : "false",
              info->chunks_total, info->chunks_done, (long long)info->subscribers_done,
              (long long)info->bills, (long long)info->amount_total, (long long)info->rating_errors,
              info->seconds);
    return out;
}
