/*  bf_notify_cmd — dispatch.pause / dispatch.resume / deliveries.retry,
    template.publish, run.schedule / run.unschedule (status is control's
    deliveries.summary, templates.list and run.show queries).  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_cmdargs.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_dispatch.h"
#include "bf_log.h"
#include "bf_notify_cmd.h"
#include "bf_template.h"

/*  How far from now a scheduled release may be (s_release_window).  */
#define S_RELEASE_PAST_MS  (24LL * 3600 * 1000)
#define S_RELEASE_AHEAD_MS (366LL * 24 * 3600 * 1000)

static bf_link_status_t
s_failure (void)
{
    return bf_db_last_status () == BF_DB_RETRY ? BF_LINK_RETRY : BF_LINK_FAILED;
}

static bf_link_status_t
s_switch (PGconn *conn, const Billflow__Command *cmd, bool pause, char *result, size_t resultsize,
          char *error, size_t errorsize)
{
    static const char *const allowed[] = { NULL };
    if (bf_cmdargs_check (cmd, allowed, error, errorsize) != 0)
        return BF_LINK_FAILED;
    const char *params[] = { pause ? "true" : "false", cmd->command_id };
    PGresult *res = bf_db_query (conn,
                                 "UPDATE dispatch_state SET paused = $1::boolean, changed_by = $2,"
                                 " updated_at = now () WHERE paused <> $1::boolean",
                                 2, params, PGRES_COMMAND_OK, "switching dispatch");
    if (!res) {
        snprintf (error, errorsize, "%s", bf_db_last_message ());
        return s_failure ();
    }
    bool changed = strcmp (PQcmdTuples (res), "0") != 0;
    PQclear (res);
    snprintf (result, resultsize, "{\"outcome\":\"%s\",\"paused\":%s}",
              changed ? "changed" : "unchanged", pause ? "true" : "false");
    return BF_LINK_OK;
}

static bf_link_status_t
s_pause (void *context, PGconn *conn, const Billflow__Command *cmd, char *result, size_t resultsize,
         char *error, size_t errorsize)
{
    (void)context;
    return s_switch (conn, cmd, true, result, resultsize, error, errorsize);
}

static bf_link_status_t
s_resume (void *context, PGconn *conn, const Billflow__Command *cmd, char *result,
          size_t resultsize, char *error, size_t errorsize)
{
    (void)context;
    return s_switch (conn, cmd, false, result, resultsize, error, errorsize);
}

/*  ids (parsed) as a PostgreSQL array literal "{1,2,3}" into out.  */
static void
s_array_literal (const int64_t *ids, size_t count, char *out, size_t outsize)
{
    size_t len = 0;
    out[len++] = '{';
    for (size_t i = 0; i < count && len < outsize; i++)
        len += (size_t)snprintf (out + len, outsize - len, "%s%lld", i ? "," : "",
                                 (long long)ids[i]);
    if (len + 2 <= outsize) {
        out[len++] = '}';
        out[len] = 0;
    }
}

static bf_link_status_t
s_retry (void *context, PGconn *conn, const Billflow__Command *cmd, char *result, size_t resultsize,
         char *error, size_t errorsize)
{
    (void)context;
    static const char *const allowed[] = { "run_id", "ids", NULL };
    if (bf_cmdargs_check (cmd, allowed, error, errorsize) != 0)
        return BF_LINK_FAILED;
    const char *run = bf_link_arg (cmd, "run_id"), *ids = bf_link_arg (cmd, "ids");
    PGresult *res;
    if (run && !ids) {
        int64_t id;
        if (bf_cmdargs_id ("run_id", run, &id, error, errorsize) != 0)
            return BF_LINK_FAILED;
        char canonical[24];
        snprintf (canonical, sizeof canonical, "%lld", (long long)id);
        const char *params[] = { canonical };
        res = bf_db_query (conn,
                           "UPDATE delivery d SET state = 'PENDING', attempt_base = d.attempts,"
                           " not_before = now (), final_at = NULL, hold_reason = NULL, last_error = NULL,"
                           " updated_at = now () FROM bill b"
                           " WHERE d.state = 'FAILED' AND b.period = d.period"
                           " AND b.bill_id = d.bill_id AND b.run_id = $1::bigint",
                           1, params, PGRES_COMMAND_OK, "retrying a run's deliveries");
    } else if (ids && !run) {
        /*  BF_CMDARGS_MAX_IDS ids of at most 19 digits and a comma each.  */
        int64_t parsed[BF_CMDARGS_MAX_IDS];
        char list[BF_CMDARGS_MAX_IDS * 21 + 3];
        size_t count;
        if (bf_cmdargs_id_list ("ids", ids, parsed, BF_CMDARGS_MAX_IDS, &count, error,
                                errorsize)
            != 0)
            return BF_LINK_FAILED;
        s_array_literal (parsed, count, list, sizeof list);
        const char *params[] = { list };
        res = bf_db_query (conn,
                           "UPDATE delivery SET state = 'PENDING', attempt_base = attempts,"
                           " not_before = now (), final_at = NULL, hold_reason = NULL, last_error = NULL,"
                           " updated_at = now ()"
                           " WHERE state = 'FAILED' AND id = ANY ($1::bigint[])",
                           1, params, PGRES_COMMAND_OK, "retrying deliveries");
    } else {
        snprintf (error, errorsize, "deliveries.retry needs run_id=N or ids=1,2,3 (one of them)");
        return BF_LINK_FAILED;
    }
    if (!res) {
        snprintf (error, errorsize, "%s", bf_db_last_message ());
        return s_failure ();
    }
    snprintf (result, resultsize, "{\"outcome\":\"retrying\",\"deliveries\":%s}",
              PQcmdTuples (res));
    PQclear (res);
    return BF_LINK_OK;
}

/*  Runs sql in the command's transaction: BF_LINK_OK with the result in
    out (when out is NULL the result is cleared), or the failure with error
    set.  */
static bf_link_status_t
s_exec (PGconn *conn, const char *sql, int nparams, const char *const *params,
        ExecStatusType expect, const char *what, PGresult **out, char *error, size_t errorsize)
{
    PGresult *res = bf_db_query (conn, sql, nparams, params, expect, what);
    if (!res) {
        snprintf (error, errorsize, "%s", bf_db_last_message ());
        return s_failure ();
    }
    if (out)
        *out = res;
    else
        PQclear (res);
    return BF_LINK_OK;
}

/*  An optional argument: NULL when absent or empty.  */
static const char *
s_optional (const Billflow__Command *cmd, const char *key)
{
    const char *value = bf_link_arg (cmd, key);
    return value && *value ? value : NULL;
}

static bf_link_status_t
s_publish (void *context, PGconn *conn, const Billflow__Command *cmd, char *result,
           size_t resultsize, char *error, size_t errorsize)
{
    (void)context;
    static const char *const allowed[]
        = { "channel", "subject", "body", "body_html", "short_body", NULL };
    if (bf_cmdargs_check (cmd, allowed, error, errorsize) != 0)
        return BF_LINK_FAILED;
    bf_template_set_t set = {
        .channel = bf_link_arg (cmd, "channel"),
        .subject = s_optional (cmd, "subject"),
        .body = s_optional (cmd, "body"),
        .body_html = s_optional (cmd, "body_html"),
        .short_body = s_optional (cmd, "short_body"),
    };
    if (!set.channel
        || (strcmp (set.channel, "EMAIL") && strcmp (set.channel, "SMS")
            && strcmp (set.channel, "PUSH"))) {
        snprintf (error, errorsize, "template.publish needs channel=EMAIL, SMS or PUSH");
        return BF_LINK_FAILED;
    }
    char why[512];
    if (bf_template_check_set (&set, why, sizeof why) != 0) {
        bf_warn ("notify: template.publish %s refused for %s: %s", cmd->command_id, set.channel,
                 why);
        snprintf (error, errorsize, "template refused: %s", why);
        return BF_LINK_FAILED;
    }
    /*  Parts a channel does not use are not stored (an SMS has no HTML).  */
    if (strcmp (set.channel, "EMAIL"))
        set.body_html = NULL;
    if (strcmp (set.channel, "SMS"))
        set.short_body = NULL;
    /*  Serialised per channel by locking its active row; the unique index
        template_one_active holds if two publishes race anyway.  */
    const char *params[]
        = { set.channel, set.subject, set.body, set.body_html, set.short_body, cmd->command_id };
    PGresult *res = NULL;
    bf_link_status_t st
        = s_exec (conn,
                  "WITH old AS (UPDATE template SET active = false"
                  "             WHERE channel = $1 AND purpose = 'BILL_ISSUED' AND active"
                  "             RETURNING version),"
                  " next AS (SELECT coalesce (max (version), 0) + 1 AS version FROM template"
                  "          WHERE channel = $1 AND purpose = 'BILL_ISSUED')"
                  " SELECT n.version, (SELECT version FROM old) FROM next n",
                  1, params, PGRES_TUPLES_OK, "deactivating a template", &res, error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    char version[16], previous[16];
    snprintf (version, sizeof version, "%s", PQgetvalue (res, 0, 0));
    snprintf (previous, sizeof previous, "%s",
              PQgetisnull (res, 0, 1) ? "null" : PQgetvalue (res, 0, 1));
    PQclear (res);
    const char *iparams[] = { set.channel,   version,        set.subject,    set.body,
                              set.body_html, set.short_body, cmd->command_id };
    st = s_exec (conn,
                 "INSERT INTO template (channel, purpose, version, subject, body, body_html,"
                 " short_body, active, published_by)"
                 " VALUES ($1, 'BILL_ISSUED', $2::int, $3, $4, $5, $6, true, $7)",
                 7, iparams, PGRES_COMMAND_OK, "publishing a template", NULL, error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    bf_info ("notify: template.publish %s: %s version %s is active (was %s)", cmd->command_id,
             set.channel, version, previous);
    snprintf (result, resultsize,
              "{\"outcome\":\"published\",\"channel\":\"%s\",\"version\":%s,\"previous\":%s}",
              set.channel, version, previous);
    return BF_LINK_OK;
}

static bf_link_status_t s_lock_deliveries (PGconn *conn, char *error, size_t errorsize);

/*  The run a run.schedule / run.unschedule names (period: its newest run)
    into run_id and period, with the deliveries locked (s_lock_deliveries).
    Returns BF_LINK_OK, or FAILED / RETRY with error.  */
static bf_link_status_t
s_schedule_run (PGconn *conn, const Billflow__Command *cmd, char *run_id, size_t run_idsize,
                char *period, size_t periodsize, char *error, size_t errorsize)
{
    const char *by_period = bf_link_arg (cmd, "period"), *by_id = bf_link_arg (cmd, "run_id");
    char canonical[24] = "";
    char period_buf[8] = "";
    if (!by_period == !by_id) {
        snprintf (error, errorsize, "%s needs period=YYYY-MM or run_id=N (one of them)", cmd->verb);
        return BF_LINK_FAILED;
    }
    if (by_id) {
        int64_t id;
        if (bf_cmdargs_id ("run_id", by_id, &id, error, errorsize) != 0)
            return BF_LINK_FAILED;
        snprintf (canonical, sizeof canonical, "%lld", (long long)id);
    } else {
        bf_period_t p;
        if (bf_cmdargs_period ("period", by_period, &p, error, errorsize) != 0)
            return BF_LINK_FAILED;
        bf_period_format (p, period_buf);
    }
    const char *params[] = { by_id ? canonical : NULL, by_period ? period_buf : NULL };
    PGresult *res = NULL;
    bf_link_status_t st
        = s_exec (conn,
                  "SELECT run_id, period FROM settlement_run"
                  " WHERE ($1::bigint IS NULL OR run_id = $1)"
                  " AND ($2::text IS NULL OR period = $2)"
                  " ORDER BY run_id DESC LIMIT 1",
                  2, params, PGRES_TUPLES_OK, "finding the run", &res, error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    if (PQntuples (res) != 1) {
        PQclear (res);
        if (by_id)
            snprintf (error, errorsize, "no run %s", canonical);
        else
            snprintf (error, errorsize, "no run for %s", period_buf);
        return BF_LINK_FAILED;
    }
    snprintf (run_id, run_idsize, "%s", PQgetvalue (res, 0, 0));
    snprintf (period, periodsize, "%s", PQgetvalue (res, 0, 1));
    PQclear (res);
    return s_lock_deliveries (conn, error, errorsize);
}

/*  Waits for the ingest transactions in flight and keeps new ones out until
    this command commits (SHARE conflicts with their INSERT), so a notice
    ingested meanwhile is either seen by this command's UPDATE or created
    seeing its run_schedule change. Held for milliseconds; the dispatchers'
    updates wait as long.  */
static bf_link_status_t
s_lock_deliveries (PGconn *conn, char *error, size_t errorsize)
{
    return s_exec (conn, "LOCK TABLE delivery IN SHARE MODE", 0, NULL, PGRES_COMMAND_OK,
                   "locking deliveries", NULL, error, errorsize);
}

/*  at "YYYY-MM-DDTHH:MM" local (utc_offset_min east of UTC) into ms since
    the epoch. Returns 0, or -1 with error naming the argument.  */
static int
s_local_time (const char *at, int utc_offset_min, int64_t *ms, char *error, size_t errorsize)
{
    int64_t minutes;
    if (bf_cmdargs_local_time ("at", at, &minutes, error, errorsize) != 0)
        return -1;
    *ms = (minutes - utc_offset_min) * 60000LL;
    return 0;
}

/*  A release more than a day before now (notify's clock) or more than a
    year after it is a typing mistake, not a plan: a year in the past
    would send at once what the operator meant to hold, one years ahead
    would hold the notices for good. Returns 0, or -1 with error.  */
static int
s_release_window (const char *at, int64_t release_ms, int64_t now_ms, char *error,
                  size_t errorsize)
{
    if (release_ms < now_ms - S_RELEASE_PAST_MS)
        return bf_err_set (error, errorsize,
                           "at: %.16s local is more than a day in the past (run.unschedule sends"
                           " the notices now)",
                           at);
    if (release_ms > now_ms + S_RELEASE_AHEAD_MS)
        return bf_err_set (error, errorsize, "at: %.16s local is more than 366 days ahead", at);
    return 0;
}

static bf_link_status_t
s_schedule (void *context, PGconn *conn, const Billflow__Command *cmd, char *result,
            size_t resultsize, char *error, size_t errorsize)
{
    static const char *const allowed[] = { "period", "run_id", "at", NULL };
    if (bf_cmdargs_check (cmd, allowed, error, errorsize) != 0)
        return BF_LINK_FAILED;
    const bf_dispatch_args_t *dargs = context;
    int offset = dargs ? dargs->utc_offset_min : 0;
    int64_t release_ms = 0;
    const char *at = bf_link_arg (cmd, "at");
    if (s_local_time (at, offset, &release_ms, error, errorsize) != 0)
        return BF_LINK_FAILED;
    if (s_release_window (at, release_ms, zclock_time () + (dargs ? dargs->clock_offset_ms : 0),
                          error, errorsize)
        != 0)
        return BF_LINK_FAILED;
    char run_id[24], period[16];
    bf_link_status_t st = s_schedule_run (conn, cmd, run_id, sizeof run_id, period, sizeof period,
                                          error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    char release[24];
    snprintf (release, sizeof release, "%lld", (long long)release_ms);
    const char *params[] = { run_id, period, release, cmd->command_id, at };
    PGresult *res = NULL;
    st = s_exec (
        conn,
        "INSERT INTO run_schedule (run_id, period, release_at, at_local, command_id)"
        " VALUES ($1::bigint, $2, to_timestamp ($3::bigint / 1000.0), $5, $4)"
        " ON CONFLICT (run_id) DO UPDATE SET release_at = excluded.release_at,"
        " at_local = excluded.at_local, command_id = excluded.command_id, updated_at = now ()",
        5, params, PGRES_COMMAND_OK, "scheduling a run", NULL, error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    /*  The run's notices that have not gone out wait for the release as
        HELD notices: the claim takes a HELD notice only once it is due, so
        it needs no check of its own, and run.show shows them held with
        their reason. A claimed notice (SENDING) is left alone, as it was
        when a claim wrote the state; a claim made after this statement's
        snapshot wins the same way: the dispatcher records its outcome. A
        notice held for quiet hours or waiting for a retry keeps the later
        of its time and the release; one held by an earlier schedule takes
        the new time. The dispatcher applies quiet hours again when it
        claims them (docs/notify.md "Scheduled release").  */
    const char *hparams[] = { run_id, period, release, at };
    st = s_exec (
        conn,
        "UPDATE delivery d SET state = 'HELD', updated_at = now (),"
        " not_before = CASE WHEN d.state = 'PENDING' OR d.hold_reason LIKE 'scheduled release%'"
        "                   THEN to_timestamp ($3::bigint / 1000.0)"
        "                   ELSE greatest (d.not_before, to_timestamp ($3::bigint / 1000.0)) END,"
        " hold_reason = CASE WHEN d.state = 'PENDING' OR d.hold_reason LIKE 'scheduled release%'"
        "                    OR d.not_before <= to_timestamp ($3::bigint / 1000.0)"
        "                    THEN 'scheduled release (' || $4::text || ' local)'"
        "                    ELSE d.hold_reason END"
        " FROM bill b WHERE b.period = $2 AND b.run_id = $1::bigint"
        " AND d.period = b.period AND d.bill_id = b.bill_id"
        " AND d.state IN ('PENDING', 'RETRY', 'HELD')"
        " AND NOT EXISTS (SELECT 1 FROM dispatch_claim k WHERE k.delivery_id = d.id)",
        4, hparams, PGRES_COMMAND_OK, "holding a run's notices", &res, error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    char held[24];
    snprintf (held, sizeof held, "%s", PQcmdTuples (res));
    PQclear (res);
    bf_info ("notify: run.schedule %s: run %s (%s) releases its notices at %s local (%s held)",
             cmd->command_id, run_id, period, at, held);
    snprintf (result, resultsize,
              "{\"outcome\":\"scheduled\",\"run_id\":%s,\"period\":\"%s\",\"at\":\"%s\","
              "\"utc_offset_min\":%d,\"held\":%s}",
              run_id, period, at, offset, held);
    return BF_LINK_OK;
}

static bf_link_status_t
s_unschedule (void *context, PGconn *conn, const Billflow__Command *cmd, char *result,
              size_t resultsize, char *error, size_t errorsize)
{
    (void)context;
    static const char *const allowed[] = { "period", "run_id", NULL };
    if (bf_cmdargs_check (cmd, allowed, error, errorsize) != 0)
        return BF_LINK_FAILED;
    char run_id[24], period[16];
    bf_link_status_t st = s_schedule_run (conn, cmd, run_id, sizeof run_id, period, sizeof period,
                                          error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    const char *params[] = { run_id, period };
    PGresult *res = NULL;
    st = s_exec (conn, "DELETE FROM run_schedule WHERE run_id = $1::bigint", 1, params,
                 PGRES_COMMAND_OK, "unscheduling a run", &res, error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    bool removed = strcmp (PQcmdTuples (res), "0") != 0;
    PQclear (res);
    /*  The notices the schedule held are due at once (PENDING is claimed
        whatever the clock); quiet hours apply when they are claimed.  */
    st = s_exec (conn,
                 "UPDATE delivery d SET state = 'PENDING', not_before = now (),"
                 " hold_reason = NULL, updated_at = now ()"
                 " FROM bill b WHERE b.period = $2 AND b.run_id = $1::bigint"
                 " AND d.period = b.period AND d.bill_id = b.bill_id"
                 " AND d.state = 'HELD' AND d.hold_reason LIKE 'scheduled release%'"
                 " AND NOT EXISTS (SELECT 1 FROM dispatch_claim k WHERE k.delivery_id = d.id)",
                 2, params, PGRES_COMMAND_OK, "releasing a run's notices", NULL, error, errorsize);
    if (st != BF_LINK_OK)
        return st;
    bf_info ("notify: run.unschedule %s: run %s (%s) %s", cmd->command_id, run_id, period,
             removed ? "released" : "had no release time");
    snprintf (result, resultsize, "{\"outcome\":\"%s\",\"run_id\":%s,\"period\":\"%s\"}",
              removed ? "unscheduled" : "unchanged", run_id, period);
    return BF_LINK_OK;
}

const bf_link_verb_t bf_notify_cmd_verbs[] = {
    { "dispatch.pause", false, s_pause },
    { "dispatch.resume", false, s_resume },
    { "deliveries.retry", false, s_retry },
    { "template.publish", false, s_publish },
    { "run.schedule", false, s_schedule },
    { "run.unschedule", false, s_unschedule },
    { NULL, false, NULL },
};
