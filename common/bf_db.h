/*  bf_db — libpq helpers every service shares: connect through one
    process-wide reconnect gate (backoff with jitter, bounded logging),
    checked execution with SQLSTATE classification, transactions, and a
    buffered COPY writer for bulk loads.

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

/*  Connects with conninfo (a libpq string or URI; "" = PG* environment).
    Sets application_name to app when the conninfo does not. Every call in
    the process shares one reconnect gate: while the database is
    unavailable, attempts are spaced by a backoff with decorrelated jitter
    between db.reconnect_min_ms and db.reconnect_max_ms (bf_db_configure),
    however many threads ask. Waits for the next slot while timeout_ms
    allows and tries again; with timeout_ms 0 it makes at most one attempt
    and none before the slot (ask again at bf_db_connect_due). Logging: the
    first failure of an outage at ERROR, then "database unavailable for N s,
    M attempts" at most every db.unavailable_log_s, and "database back
    after N s, M attempts" when a connection succeeds again. The gate is
    about one database, the process's (db.conninfo): a connect with another
    conninfo while it is closed (a test's second database) is neither held
    nor counted in its outage. Every connection gets the process's TCP
    keepalives and timeouts on both ends (bf_db_configure_keepalive, below).
    Returns the connection, or NULL (bf_db_last_status BF_DB_RETRY, SQLSTATE 08001).  */
PGconn *bf_db_connect (const char *conninfo, const char *app, int timeout_ms);

/*  Sets the reconnect gate's floor and ceiling (ms) and the interval of
    its summary lines (s) for the whole process; bf_service_load calls it
    with db.reconnect_min_ms, db.reconnect_max_ms, db.unavailable_log_s.
    Defaults before a call: 100, 5000, 10. Any thread.  */
void bf_db_configure (int reconnect_min_ms, int reconnect_max_ms, int unavailable_log_s);

/*  --- dead peers: TCP keepalives and timeouts ---------------------------

    A link that goes silent (a partition, a firewall dropping packets, a
    host that died) gives neither end an error: without timeouts a
    statement waits for TCP's retransmissions (about 15 minutes) or its
    keepalives (2 hours by default), and the server keeps the session, its
    transaction and its locks as long. So every connection bf_db_connect
    makes carries the process's values on both ends:
    - this process's socket: libpq's keepalives=1, keepalives_idle,
      keepalives_interval, keepalives_count and tcp_user_timeout, so that
      a statement waiting for an answer fails (08006, a lost connection)
      about idle_s + interval_s × count after the link went silent, and
      data left unacknowledged fails after user_timeout_ms;
    - the server's end: the session's tcp_keepalives_idle, _interval,
      _count and tcp_user_timeout (SET after connecting), so the server
      ends the session, and rolls back its transaction, as soon.
    Over a Unix socket libpq and the server ignore them (no link to lose).
    A conninfo that sets keepalives* or tcp_user_timeout itself wins on the
    client side. Leaders tighten both ends further (bf_dbfence.h).  */
typedef struct {
    int idle_s;          /* silence before the first keepalive probe */
    int interval_s;      /* between probes */
    int count;           /* probes unanswered before the connection is dropped */
    int user_timeout_ms; /* data unacknowledged this long: dropped; 0: the OS's */
} bf_db_keepalive_t;

/*  The process's values for every later connection; bf_service_load
    calls it with db.keepalives_idle_s, db.keepalives_interval_s,
    db.keepalives_count, db.tcp_user_timeout_ms. Defaults before a call:
    10, 5, 4, 30000 (a dead peer noticed within about 30 s). Values below
    1 (user_timeout below 0) are taken as 1 (0). Any thread.  */
void bf_db_configure_keepalive (const bf_db_keepalive_t *keepalive);

/*  The process's current values.  */
bf_db_keepalive_t bf_db_keepalive (void);

/*  Sets an open connection's timeouts: client on this process's socket
    (setsockopt; skipped over a Unix socket), server on the session (SET;
    ignored by the server over a Unix socket). Either may be NULL (left as
    it is). Call outside a transaction. Returns 0, or -1 (logged) when a
    setting could not be applied; the connection is usable either way
    unless it broke (PQstatus).  */
int bf_db_keepalive_apply (PGconn *conn, const bf_db_keepalive_t *client,
                           const bf_db_keepalive_t *server);

/*  Monotonic ms (zclock_mono) before which bf_db_connect makes no attempt
    in this process; 0 or a past time: now. For poll timeouts.  */
int64_t bf_db_connect_due (void);

/*  Milliseconds a caller whose connect returned NULL (or whose new
    session failed its setup) waits before asking again: until
    bf_db_connect_due, and at least min_ms (so a session that connects
    but cannot be set up is not retried in a tight loop).  */
int bf_db_retry_wait_ms (int min_ms);

/*  False while this process counts the database as unavailable (from a
    lost connection or a failed attempt until a connection succeeds).  */
bool bf_db_available (void);

/*  True for SQLSTATEs worth doing the transaction again for: class 08
    (connection), 40001 (serialization), 40P01 (deadlock), 53000, 53100,
    53200, 53300 (resources: disk full, out of memory, too many
    connections), 55P03 (lock not available), 57P01..57P03 and 57P05
    (shutdown, crash, cannot connect now, idle session timeout). The table
    and why each is there: s_retryable in bf_db.c, docs/guarantees.md.  */
bool bf_db_sqlstate_retryable (const char *sqlstate);

/*  True for SQLSTATEs that mean the session is gone: class 08 and 57P01,
    57P02, 57P03, 57P05.  */
bool bf_db_sqlstate_lost (const char *sqlstate);

/*  The one classification of a failed call, used by everything in bf_db and
    by the actors through bf_db_last_*: writes the SQLSTATE into sqlstate
    (6 bytes) and returns BF_DB_RETRY or BF_DB_FAIL. A lost connection is
    retryable wherever it shows up: conn NULL or not CONNECTION_OK (SQLSTATE
    the server's, else 08006), an error result without SQLSTATE or res NULL
    (libpq's own failure: 08000), or a retryable SQLSTATE. A result of an
    unexpected non-error kind is XX000, permanent (a bug of ours). Does not
    log, does not clear res.  */
int bf_db_classify (const PGconn *conn, const PGresult *res, char sqlstate[6]);

/*  The rule of bf_db_classify on its facts, without libpq objects (unit
    tests): server_sqlstate as the server sent it (NULL: none), whether the
    result was an error, whether the connection is still CONNECTION_OK.  */
int bf_db_classify_state (const char *server_sqlstate, bool error_result, bool connection_ok,
                          char sqlstate[6]);

/*  After a failed call on this thread: true when the session is gone and
    the caller must reconnect (conn NULL or broken, or the last failure's
    SQLSTATE is one of bf_db_sqlstate_lost).  */
bool bf_db_lost (const PGconn *conn);

/*  Inspects res (does not clear it): BF_DB_OK when its status is expect,
    else logs (bf_db_note_failure) and returns BF_DB_RETRY / BF_DB_FAIL.
    res may be NULL (out of memory or lost connection: retryable).  */
int bf_db_check (PGconn *conn, const PGresult *res, ExecStatusType expect, const char *what);

/*  The logging of failed statements, bf_db_check's (public for its unit
    test; now_ms is zclock_mono's). A permanent failure or a lost
    connection is logged in full every time. A retryable failure of any
    other SQLSTATE (disk full 53100, ...) belongs to that SQLSTATE's
    episode, one per process: its first failure is logged in full at ERROR
    (WARN for the conflicts 40001, 40P01, 55P03), the later ones are
    counted with "database: SQLSTATE S for N s, M failed statements" at
    most every db.unavailable_log_s, and bf_db_note_success, called on
    every successful statement, ends the episode with "database:
    statements succeed again after SQLSTATE S for N s, M failed
    statements" once none has failed for db.unavailable_log_s. Any thread.  */
void bf_db_note_failure (const char *what, const char *sqlstate, int status, const char *message,
                         int64_t now_ms);
void bf_db_note_success (int64_t now_ms);

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
