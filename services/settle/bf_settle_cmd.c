/*  bf_settle_cmd — run.start / run.stop / run.resume (status is control's
    run.show query).  */

#include <stdio.h>
#include <string.h>

#include "bf_cmdargs.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_run.h"
#include "bf_settle_cmd.h"

static const char *
s_outcome_name (int outcome)
{
    switch (outcome) {
        case BF_RUN_STARTED:
            return "started";
        case BF_RUN_EXISTS:
            return "already_running";
        case BF_RUN_SETTLED:
            return "already_settled";
        case BF_RUN_CHANGED:
            return "changed";
        case BF_RUN_UNCHANGED:
            return "unchanged";
        default:
            return "unknown";
    }
}

/*  A failure is permanent unless the database said otherwise.  */
static bf_link_status_t
s_failure (void)
{
    return bf_db_last_status () == BF_DB_RETRY ? BF_LINK_RETRY : BF_LINK_FAILED;
}

static bf_link_status_t
s_result (PGconn *conn, int outcome, int64_t run_id, char *result, size_t resultsize)
{
    bf_run_info_t info;
    char run[1024] = "null";
    int rc = bf_run_info (conn, NULL, run_id, &info);
    if (rc < 0)
        return s_failure ();
    if (rc == 0)
        bf_run_info_json (&info, run, sizeof run);
    snprintf (result, resultsize, "{\"outcome\":\"%s\",\"run\":%s}", s_outcome_name (outcome), run);
    return BF_LINK_OK;
}

/*  Runs op on the period argument.  */
static bf_link_status_t
s_period_op (PGconn *conn, const Billflow__Command *cmd, int kind, int chunk_size, char *result,
             size_t resultsize, char *error, size_t errorsize)
{
    static const char *const allowed[] = { "period", NULL };
    if (bf_cmdargs_check (cmd, allowed, error, errorsize) != 0)
        return BF_LINK_FAILED;
    const char *period = bf_link_arg (cmd, "period");
    if (!period) {
        snprintf (error, errorsize, "%s needs the argument period=YYYY-MM", cmd->verb);
        return BF_LINK_FAILED;
    }
    bf_period_t p;
    if (bf_cmdargs_period ("period", period, &p, error, errorsize) != 0)
        return BF_LINK_FAILED;
    int64_t run_id = 0;
    int outcome;
    if (kind == 0)
        outcome
            = bf_run_start (conn, period, chunk_size, cmd->command_id, &run_id, error, errorsize);
    else if (kind == 1)
        outcome = bf_run_stop (conn, period, &run_id, error, errorsize);
    else
        outcome = bf_run_resume (conn, period, &run_id, error, errorsize);
    if (outcome < 0)
        return s_failure ();
    return s_result (conn, outcome, run_id, result, resultsize);
}

static bf_link_status_t
s_start (void *context, PGconn *conn, const Billflow__Command *cmd, char *result, size_t resultsize,
         char *error, size_t errorsize)
{
    const bf_settle_cmd_t *self = context;
    return s_period_op (conn, cmd, 0, self->chunk_size, result, resultsize, error, errorsize);
}

static bf_link_status_t
s_stop (void *context, PGconn *conn, const Billflow__Command *cmd, char *result, size_t resultsize,
        char *error, size_t errorsize)
{
    (void)context;
    return s_period_op (conn, cmd, 1, 0, result, resultsize, error, errorsize);
}

static bf_link_status_t
s_resume (void *context, PGconn *conn, const Billflow__Command *cmd, char *result,
          size_t resultsize, char *error, size_t errorsize)
{
    (void)context;
    return s_period_op (conn, cmd, 2, 0, result, resultsize, error, errorsize);
}

const bf_link_verb_t bf_settle_cmd_verbs[] = {
    { "run.start", false, s_start },
    { "run.stop", false, s_stop },
    { "run.resume", false, s_resume },
    { NULL, false, NULL },
};
