/*  bf_db — libpq helpers every service shares: connect with retry and
    backoff, checked execution with SQLSTATE classification, transactions,
    and a buffered COPY writer for bulk loads.

    Results: every function that runs SQL returns BF_DB_OK (0), BF_DB_RETRY
    (a retryable failure: serialization failure, deadlock, connection loss,
    admin shutdown — do the whole transaction again), or BF_DB_FAIL (permanent:
    constraint violation, syntax, permission ...). The failure is logged with
    its SQLSTATE and the caller's `what`; the last SQLSTATE and message are
    kept on the thread for callers that report them (bf_db_last_*).  */

#ifndef BF_DB_H_INCLUDED
#define BF_DB_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_DB_OK    0
#define BF_DB_FAIL  (-1)
#define BF_DB_RETRY (-2)

/*  Connects with conninfo (a libpq string or URI; "" = PG* environment),
    retrying with exponential backoff (100 ms doubling to 5 s) until
    timeout_ms has passed. Sets application_name to app when the conninfo
    does not. Returns the connection, or NULL after logging why.  */
PGconn *bf_db_connect (const char *conninfo, const char *app, int timeout_ms);

/*  True for SQLSTATEs worth retrying the transaction for: class 08
    (connection), 40001 (serialization), 40P01 (deadlock), 57P01..57P03
    (shutdown / cannot connect now), 53300 (too many connections).  */
bool bf_db_sqlstate_retryable (const char *sqlstate);

/*  Inspects res (does not clear it): BF_DB_OK when its status is expect,
    else logs and returns BF_DB_RETRY / BF_DB_FAIL. res may be NULL (out of
    memory or lost connection: retryable).  */
int bf_db_check (PGconn *conn, const PGresult *res, ExecStatusType expect, const char *what);

/*  Runs a statement without parameters that returns no rows.  */
int bf_db_exec (PGconn *conn, const char *sql, const char *what);

/*  Runs a parameterised statement (text parameters, NULL = SQL NULL) and
    returns its result when its status is expect, else NULL (logged; the
    classification is in bf_db_last_status). The caller PQclear()s it.  */
PGresult *bf_db_query (PGconn *conn, const char *sql, int nparams, const char *const *params,
                       ExecStatusType expect, const char *what);
/*  Same, with a statement prepared by bf_db_prepare.  */
PGresult *bf_db_query_prepared (PGconn *conn, const char *name, int nparams,
                                const char *const *params, ExecStatusType expect, const char *what);
int bf_db_prepare (PGconn *conn, const char *name, const char *sql, int nparams);

/*  A named statement, for tables of them prepared on every new connection.  */
typedef struct {
    const char *name;
    const char *sql;
    int nparams;
} bf_db_statement_t;

/*  Prepares count statements; stops at the first failure (logged) and
    returns its status.  */
int bf_db_prepare_all (PGconn *conn, const bf_db_statement_t *statements, size_t count);

/*  An int8 column of a binary-format result (8 bytes, big-endian) into
 *value. false when the value is NULL or not 8 bytes.  */
bool bf_db_get_int8 (const PGresult *res, int row, int col, uint64_t *value);

int bf_db_begin (PGconn *conn);
int bf_db_commit (PGconn *conn);
/*  Rolls back if a transaction is open; harmless otherwise.  */
void bf_db_rollback (PGconn *conn);

/*  Status, SQLSTATE and message of the last failing call on this thread.
    The message is libpq's, on one line (its lines joined by " | "). The
    line bf_db logs for a failure carries the SQLSTATE as the field
    "sqlstate" too (bf_log_field).  */
int bf_db_last_status (void);
const char *bf_db_last_sqlstate (void);
const char *bf_db_last_message (void);

/*  --- COPY ... FROM STDIN (text format) --------------------------------- */

typedef struct bf_copy_t bf_copy_t;

/*  Starts a COPY. sql is a complete "COPY table (cols) FROM STDIN" statement.
    NULL (logged) when the server refuses it.  */
bf_copy_t *bf_copy_begin (PGconn *conn, const char *sql);

/*  Field writers append to the current row, escaping as COPY text needs.  */
void bf_copy_str (bf_copy_t *self, const char *value); /* NULL -> \N */
void bf_copy_strn (bf_copy_t *self, const char *value, size_t len);
void bf_copy_int (bf_copy_t *self, int64_t value);
void bf_copy_null (bf_copy_t *self);
void bf_copy_bytea (bf_copy_t *self, const uint8_t *data, size_t len); /* NULL -> \N */
/*  Ends the row; flushes to the server when the buffer passes 256 KiB.
    Returns BF_DB_OK or a failure (the COPY is then dead: call _end).  */
int bf_copy_row_end (bf_copy_t *self);
int64_t bf_copy_rows (const bf_copy_t *self);

/*  Finishes the COPY and destroys the writer: BF_DB_OK when the server
    accepted every row. With abort_reason non-NULL the COPY is cancelled
    instead (the transaction is then aborted) and BF_DB_FAIL returned.  */
int bf_copy_end (bf_copy_t **self_p, const char *abort_reason);

#endif
