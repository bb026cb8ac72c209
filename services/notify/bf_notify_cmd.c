/*  bf_notify_cmd — dispatch.pause / dispatch.resume / deliveries.retry
    (status is control's deliveries.summary query).  */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/*  "1,2,3" into a PostgreSQL array literal; false when it holds anything
    but positive integers.  */
static bool
s_id_list (const char *text, char *out, size_t outsize)
{
    size_t len = 0;
    out[len++] = '{';
    const char *p = text;
    bool digit = false;
    for (; *p && len + 2 < outsize; p++) {
        if (*p >= '0' && *p <= '9') {
            out[len++] = *p;
            digit = true;
        } else if (*p == ',' && digit) {
            out[len++] = ',';
            digit = false;
        } else if (*p != ' ')
            return false;
    }
    if (*p || !digit)
        return false;
    out[len++] = '}';
    out[len] = 0;
    return true;
}

static bf_link_status_t
s_retry (void *context, PGconn *conn, const Billflow__Command *cmd, char *result, size_t resultsize,
         char *error, size_t errorsize)
{
    (void)context;
    const char *run = bf_link_arg (cmd, "run_id"), *ids = bf_link_arg (cmd, "ids");
    PGresult *res;
    if (run && !ids) {
        char *end;
        long long id = strtoll (run, &end, 10);
        if (*run == 0 || *end || id <= 0) {
            snprintf (error, errorsize, "run_id must be a positive integer, not '%.40s'", run);
            return BF_LINK_FAILED;
        }
        const char *params[] = { run };
        res = bf_db_query (conn,
                           "UPDATE delivery d SET state = 'PENDING', attempt_base = d.attempts,"
                           " not_before = now (), final_at = NULL, hold_reason = NULL, last_error = NULL,"
                           " updated_at = now () FROM bill b"
                           " WHERE d.state = 'FAILED' AND b.period = d.period"
                           " AND b.bill_id = d.bill_id AND b.run_id = $1::bigint",
                           1, params, PGRES_COMMAND_OK, "retrying a run's deliveries");
    } else if (ids && !run) {
        char list[8192];
        if (!s_id_list (ids, list, sizeof list)) {
            snprintf (error, errorsize, "ids must be delivery ids separated by commas");
            return BF_LINK_FAILED;
        }
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
