/*  bf_run — settlement runs: start, stop, resume and status of a period.

    A run covers one period. Starting it splits the subscribers into chunks of
    chunk_size consecutive ids (boundaries taken from the ids that exist, so
    sparse id spaces still give even chunks); workers then claim and settle
    the chunks (bf_worker). Every function here runs inside the caller's
    transaction (the command link records the command in the same one) and
    takes the period's advisory lock, so concurrent starts of one period
    serialise.

    Re-running a period (G1): while a run of the period is unfinished, start
    returns it; once one has completed, start does nothing unless subscribers
    of the period are in rating_error, and then creates a run over just the
    chunks that hold them ("re-rate").  */

#ifndef BF_RUN_H_INCLUDED
#define BF_RUN_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BF_RUN_STARTED = 1, /* a new run was created */
    BF_RUN_EXISTS,      /* an unfinished run of the period exists; returned as is */
    BF_RUN_SETTLED,     /* completed, nothing to re-rate: nothing done */
    BF_RUN_CHANGED,     /* stop / resume changed the run's state */
    BF_RUN_UNCHANGED,   /* stop / resume: already in that state */
} bf_run_outcome_t;

typedef struct {
    int64_t run_id;
    char period[8];
    char state[16];
    bool rerate; /* run over rating errors only */
    int chunks_total, chunks_done;
    int64_t subscribers_done, bills, amount_total, rating_errors;
    double seconds; /* started to finished (or to now) */
} bf_run_info_t;

/*  Starts (or finds) the run of period. Returns a bf_run_outcome_t and sets
    *run_id, or -1 with a reason in err: a malformed period is a permanent
    error (BF_DB_FAIL in bf_db_last_status), a database failure keeps its
    class.  */
int bf_run_start (PGconn *conn, const char *period, int chunk_size, const char *command_id,
                  int64_t *run_id, char *err, size_t errsize);

/*  RUNNING -> STOPPING (workers finish the chunks they hold, claim no more;
    the run becomes STOPPED when none is held). Resume: STOPPING/STOPPED ->
    RUNNING. Returns BF_RUN_CHANGED / BF_RUN_UNCHANGED, or -1 with err (no
    unfinished run of that period, or it is in a state that cannot change).  */
int bf_run_stop (PGconn *conn, const char *period, int64_t *run_id, char *err, size_t errsize);
int bf_run_resume (PGconn *conn, const char *period, int64_t *run_id, char *err, size_t errsize);

/*  Moves STOPPING runs whose workers have all let go to STOPPED. Called by
    idle workers; cheap.  */
int bf_run_settle_stops (PGconn *conn);

/*  The latest run of period (run_id 0) or run run_id. Returns 0, 1 when
    there is none, -1 on error.  */
int bf_run_info (PGconn *conn, const char *period, int64_t run_id, bf_run_info_t *info);

/*  info as a JSON object into out (for command results). Returns out.  */
char *bf_run_info_json (const bf_run_info_t *info, char *out, size_t outsize);

#endif
