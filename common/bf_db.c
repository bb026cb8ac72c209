/*  bf_db — libpq helpers: connect with backoff, checked execution with
    SQLSTATE classification, transactions, and a buffered COPY writer.  */

#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf_db.h"
#include "bf_text.h"
#include "bf_health.h"
#include "bf_log.h"
#include "bf_metrics.h"

/*  Last failure on this thread, for callers that report it.  */
static _Thread_local int s_last_status = BF_DB_OK;
static _Thread_local char s_last_sqlstate[6];
static _Thread_local char s_last_message[512];

int
bf_db_last_status (void)
{
    return s_last_status;
}

const char *
bf_db_last_sqlstate (void)
{
    return s_last_sqlstate;
}

const char *
bf_db_last_message (void)
{
    return s_last_message;
}

/*  Metrics (docs/observability.md), registered on first use.  */
static bf_series_t *s_connects_ok, *s_connects_failed, *s_errors_retryable, *s_errors_permanent;
static pthread_once_t s_metrics_once = PTHREAD_ONCE_INIT;

static void
s_metrics_init (void)
{
    bf_metric_t *connects
        = bf_metrics_counter ("billflow_db_connects_total",
                              "PostgreSQL connection attempts by outcome (ok, failed).", "outcome");
    s_connects_ok = bf_metric_series (connects, "ok");
    s_connects_failed = bf_metric_series (connects, "failed");
    bf_metric_t *errors = bf_metrics_counter (
        "billflow_db_errors_total", "Failed PostgreSQL statements by kind (retryable, permanent).",
        "kind");
    s_errors_retryable = bf_metric_series (errors, "retryable");
    s_errors_permanent = bf_metric_series (errors, "permanent");
}

/*  Counts an outcome and tells readiness whether PostgreSQL answers.  */
static void
s_observe (bf_series_t **series, bool up)
{
    pthread_once (&s_metrics_once, s_metrics_init);
    bf_counter_inc (*series);
    bf_health_db_seen (up);
}

static void
s_sleep_ms (int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep (&ts, &ts) != 0)
        ;
}

/*  Copies a libpq message as one line: its lines ("ERROR: ...",
    "DETAIL: ...", "\tIs the server running ...") joined by " | ", so a
    plain log line and an error reply show it readably.  */
static void
s_set_message (const char *text)
{
    bf_log_oneline (s_last_message, sizeof s_last_message, text);
}

PGconn *
bf_db_connect (const char *conninfo, const char *app, int timeout_ms)
{
    /*  Later entries override earlier ones, so settings inside conninfo
        (expanded from "dbname", last) win over these defaults.  */
    const char *keys[] = { "application_name", "connect_timeout", "dbname", NULL };
    const char *values[] = { app ? app : "billflow", "10", conninfo ? conninfo : "", NULL };
    int64_t deadline = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0);
    int backoff = 100;
    for (int attempt = 1;; attempt++) {
        /*  expand_dbname lets conninfo be a "key=value" string or a URI.  */
        PGconn *conn = PQconnectdbParams (keys, values, 1);
        bool ok = conn && PQstatus (conn) == CONNECTION_OK;
        s_observe (ok ? &s_connects_ok : &s_connects_failed, ok);
        if (ok)
            return conn;
        s_set_message (conn ? PQerrorMessage (conn) : "out of memory");
        snprintf (s_last_sqlstate, sizeof s_last_sqlstate, "08001");
        s_last_status = BF_DB_RETRY;
        PQfinish (conn);
        int64_t left = deadline - zclock_mono ();
        bf_log_field ("sqlstate", "%s", s_last_sqlstate);
        if (left <= 0) {
            bf_error ("database: cannot connect after %d attempt%s: %s", attempt,
                      attempt == 1 ? "" : "s", s_last_message);
            return NULL;
        }
        bf_warn ("database: connect attempt %d failed (%s); retrying in %d ms", attempt,
                 s_last_message, backoff);
        s_sleep_ms (backoff < left ? backoff : (int)left);
        backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
    }
}

bool
bf_db_sqlstate_retryable (const char *sqlstate)
{
    if (!sqlstate || strlen (sqlstate) != 5)
        return false;
    return strncmp (sqlstate, "08", 2) == 0    /* connection exception */
           || strcmp (sqlstate, "40001") == 0  /* serialization_failure */
           || strcmp (sqlstate, "40P01") == 0  /* deadlock_detected */
           || strcmp (sqlstate, "57P01") == 0  /* admin_shutdown */
           || strcmp (sqlstate, "57P02") == 0  /* crash_shutdown */
           || strcmp (sqlstate, "57P03") == 0  /* cannot_connect_now */
           || strcmp (sqlstate, "53300") == 0; /* too_many_connections */
}

int
bf_db_check (PGconn *conn, const PGresult *res, ExecStatusType expect, const char *what)
{
    if (res && PQresultStatus (res) == expect) {
        s_last_status = BF_DB_OK;
        bf_health_db_seen (true);
        return BF_DB_OK;
    }
    const char *state = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
    if (!state && (!conn || PQstatus (conn) != CONNECTION_OK))
        state = "08006"; /* connection failure: no SQLSTATE arrives */
    snprintf (s_last_sqlstate, sizeof s_last_sqlstate, "%s", state ? state : "XX000");
    if (res && PQresultStatus (res) != PGRES_FATAL_ERROR
        && PQresultStatus (res) != PGRES_NONFATAL_ERROR)
        snprintf (s_last_message, sizeof s_last_message, "unexpected result status %s",
                  PQresStatus (PQresultStatus (res)));
    else
        s_set_message (res    ? PQresultErrorMessage (res)
                       : conn ? PQerrorMessage (conn)
                              : "no connection");
    s_last_status = bf_db_sqlstate_retryable (s_last_sqlstate) ? BF_DB_RETRY : BF_DB_FAIL;
    /*  Readiness: down only when the server itself is gone or going.  */
    s_observe (s_last_status == BF_DB_RETRY ? &s_errors_retryable : &s_errors_permanent,
               strncmp (s_last_sqlstate, "08", 2) && strncmp (s_last_sqlstate, "57P", 3));
    bf_log_field ("sqlstate", "%s", s_last_sqlstate);
    bf_log (s_last_status == BF_DB_RETRY ? BF_LOG_WARN : BF_LOG_ERROR,
            "database: %s failed (SQLSTATE %s, %s): %s", what ? what : "statement", s_last_sqlstate,
            s_last_status == BF_DB_RETRY ? "retryable" : "permanent", s_last_message);
    return s_last_status;
}

int
bf_db_exec (PGconn *conn, const char *sql, const char *what)
{
    PGresult *res = PQexec (conn, sql);
    int rc = bf_db_check (conn, res, PGRES_COMMAND_OK, what);
    PQclear (res);
    return rc;
}

PGresult *
bf_db_query (PGconn *conn, const char *sql, int nparams, const char *const *params,
             ExecStatusType expect, const char *what)
{
    PGresult *res = PQexecParams (conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (bf_db_check (conn, res, expect, what) != BF_DB_OK) {
        PQclear (res);
        return NULL;
    }
    return res;
}

PGresult *
bf_db_query_prepared (PGconn *conn, const char *name, int nparams, const char *const *params,
                      ExecStatusType expect, const char *what)
{
    PGresult *res = PQexecPrepared (conn, name, nparams, params, NULL, NULL, 0);
    if (bf_db_check (conn, res, expect, what) != BF_DB_OK) {
        PQclear (res);
        return NULL;
    }
    return res;
}

int
bf_db_prepare (PGconn *conn, const char *name, const char *sql, int nparams)
{
    PGresult *res = PQprepare (conn, name, sql, nparams, NULL);
    int rc = bf_db_check (conn, res, PGRES_COMMAND_OK, name);
    PQclear (res);
    return rc;
}

int
bf_db_prepare_all (PGconn *conn, const bf_db_statement_t *statements, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        int rc = bf_db_prepare (conn, statements[i].name, statements[i].sql, statements[i].nparams);
        if (rc != BF_DB_OK)
            return rc;
    }
    return BF_DB_OK;
}

bool
bf_db_get_int8 (const PGresult *res, int row, int col, uint64_t *value)
{
    if (PQgetisnull (res, row, col) || PQgetlength (res, row, col) != 8)
        return false;
    const uint8_t *bytes = (const uint8_t *)PQgetvalue (res, row, col);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | bytes[i];
    *value = v;
    return true;
}

int
bf_db_begin (PGconn *conn)
{
    return bf_db_exec (conn, "BEGIN", "BEGIN");
}

int
bf_db_commit (PGconn *conn)
{
    return bf_db_exec (conn, "COMMIT", "COMMIT");
}

void
bf_db_rollback (PGconn *conn)
{
    if (conn && PQtransactionStatus (conn) != PQTRANS_IDLE
        && PQtransactionStatus (conn) != PQTRANS_UNKNOWN) {
        PGresult *res = PQexec (conn, "ROLLBACK");
        PQclear (res);
    }
}

/*  --- COPY writer ---------------------------------------------------------- */

#define S_COPY_FLUSH (256 * 1024)

struct bf_copy_t {
    PGconn *conn;
    bf_text_buf_t buf; /* rows not yet sent */
    bool row_open;     /* a field was written on the current row */
    bool failed;
    int64_t rows;
};

bf_copy_t *
bf_copy_begin (PGconn *conn, const char *sql)
{
    PGresult *res = PQexec (conn, sql);
    int rc = bf_db_check (conn, res, PGRES_COPY_IN, "COPY");
    PQclear (res);
    if (rc != BF_DB_OK)
        return NULL;
    bf_copy_t *self = calloc (1, sizeof *self);
    if (!self || bf_text_buf_reserve (&self->buf, S_COPY_FLUSH + 64 * 1024)) {
        free (self);
        PQputCopyEnd (conn, "out of memory");
        PQclear (PQgetResult (conn));
        bf_error ("database: COPY: out of memory");
        return NULL;
    }
    self->conn = conn;
    return self;
}

/*  Room for more bytes; out of memory mid-row marks the COPY failed
    (_end cancels it).  */
static void
s_reserve (bf_copy_t *self, size_t more)
{
    if (!self->failed && bf_text_buf_reserve (&self->buf, more))
        self->failed = true;
}

static void
s_separator (bf_copy_t *self)
{
    s_reserve (self, 1);
    if (self->failed)
        return;
    if (self->row_open)
        self->buf.data[self->buf.len++] = '\t';
    self->row_open = true;
}

void
bf_copy_strn (bf_copy_t *self, const char *value, size_t len)
{
    s_separator (self);
    s_reserve (self, len * 2);
    if (self->failed)
        return;
    char *out = self->buf.data + self->buf.len;
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        switch (c) {
            case '\\':
                *out++ = '\\';
                *out++ = '\\';
                break;
            case '\t':
                *out++ = '\\';
                *out++ = 't';
                break;
            case '\n':
                *out++ = '\\';
                *out++ = 'n';
                break;
            case '\r':
                *out++ = '\\';
                *out++ = 'r';
                break;
            default:
                *out++ = c;
        }
    }
    self->buf.len = (size_t)(out - self->buf.data);
}

void
bf_copy_str (bf_copy_t *self, const char *value)
{
    if (value)
        bf_copy_strn (self, value, strlen (value));
    else
        bf_copy_null (self);
}

void
bf_copy_int (bf_copy_t *self, int64_t value)
{
    s_separator (self);
    s_reserve (self, 24);
    if (!self->failed)
        self->buf.len
            += (size_t)snprintf (self->buf.data + self->buf.len, 24, "%lld", (long long)value);
}

void
bf_copy_null (bf_copy_t *self)
{
    s_separator (self);
    s_reserve (self, 2);
    if (!self->failed) {
        self->buf.data[self->buf.len++] = '\\';
        self->buf.data[self->buf.len++] = 'N';
    }
}

void
bf_copy_bytea (bf_copy_t *self, const uint8_t *data, size_t len)
{
    if (!data) {
        bf_copy_null (self);
        return;
    }
    static const char hex[] = "0123456789abcdef";
    s_separator (self);
    /*  bytea hex input "\x..", with the backslash escaped for COPY text.  */
    s_reserve (self, 3 + len * 2);
    if (self->failed)
        return;
    char *out = self->buf.data + self->buf.len;
    *out++ = '\\';
    *out++ = '\\';
    *out++ = 'x';
    for (size_t i = 0; i < len; i++) {
        *out++ = hex[data[i] >> 4];
        *out++ = hex[data[i] & 15];
    }
    self->buf.len = (size_t)(out - self->buf.data);
}

static int
s_flush (bf_copy_t *self)
{
    if (self->buf.len == 0)
        return BF_DB_OK;
    if (PQputCopyData (self->conn, self->buf.data, (int)self->buf.len) != 1) {
        s_set_message (PQerrorMessage (self->conn));
        snprintf (s_last_sqlstate, sizeof s_last_sqlstate, "08006");
        s_last_status = BF_DB_RETRY;
        bf_log_field ("sqlstate", "%s", s_last_sqlstate);
        bf_error ("database: COPY: sending data failed: %s", s_last_message);
        self->failed = true;
        return BF_DB_RETRY;
    }
    self->buf.len = 0;
    return BF_DB_OK;
}

int
bf_copy_row_end (bf_copy_t *self)
{
    if (self->failed)
        return BF_DB_FAIL;
    s_reserve (self, 1);
    if (self->failed)
        return BF_DB_FAIL;
    self->buf.data[self->buf.len++] = '\n';
    self->row_open = false;
    self->rows++;
    if (self->buf.len >= S_COPY_FLUSH)
        return s_flush (self);
    return BF_DB_OK;
}

int64_t
bf_copy_rows (const bf_copy_t *self)
{
    return self->rows;
}

int
bf_copy_end (bf_copy_t **self_p, const char *abort_reason)
{
    if (!self_p || !*self_p)
        return BF_DB_FAIL;
    bf_copy_t *self = *self_p;
    *self_p = NULL;
    int rc = BF_DB_OK;
    if (!abort_reason && !self->failed)
        rc = s_flush (self);
    if (abort_reason || self->failed || rc != BF_DB_OK) {
        PQputCopyEnd (self->conn, abort_reason ? abort_reason : "client failed");
        PGresult *res;
        while ((res = PQgetResult (self->conn)) != NULL)
            PQclear (res);
        rc = rc == BF_DB_OK ? BF_DB_FAIL : rc;
    } else if (PQputCopyEnd (self->conn, NULL) != 1) {
        s_set_message (PQerrorMessage (self->conn));
        bf_error ("database: COPY: finishing failed: %s", s_last_message);
        rc = BF_DB_RETRY;
    } else {
        PGresult *res = PQgetResult (self->conn);
        rc = bf_db_check (self->conn, res, PGRES_COMMAND_OK, "COPY");
        PQclear (res);
        while ((res = PQgetResult (self->conn)) != NULL)
            PQclear (res);
    }
    bf_text_buf_free (&self->buf);
    free (self);
    return rc;
}
