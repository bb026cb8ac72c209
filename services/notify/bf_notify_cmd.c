/*  bf_notify_cmd — dispatch.pause / dispatch.resume / deliveries.retry
    (status is control's deliveries.summary query).  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_cmdargs.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_notify_cmd.h"

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

const bf_link_verb_t bf_notify_cmd_verbs[] = {
    { "dispatch.pause", false, s_pause },
    { "dispatch.resume", false, s_resume },
    { "deliveries.retry", false, s_retry },
    { NULL, false, NULL },
};
