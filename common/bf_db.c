/*  bf_db — libpq helpers: connect with backoff, checked execution with
    SQLSTATE classification, transactions, and a buffered COPY writer.  */

#include <czmq.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bf_backoff.h"
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

/*  --- reconnecting: one gate per process --------------------------------

    Every connection a process makes goes through bf_db_connect, and all of
    them share this state: while the database is unavailable, at most one
    attempt is made per backoff delay in the whole process (decorrelated
    jitter between db.reconnect_min_ms and db.reconnect_max_ms), however
    many actors want a connection. The outage is logged as one ERROR line,
    a summary at most every db.unavailable_log_s, and one line when the
    database is back.  */

static struct {
    pthread_mutex_t lock;
    int floor_ms, ceiling_ms, report_ms;
    int64_t next_ms;     /* mono: no attempt before this */
    int64_t delay_ms;    /* the last backoff delay */
    int64_t down_since;  /* mono ms the outage began; 0: available */
    int64_t attempts;    /* attempts in this outage */
    int64_t reported_ms; /* mono ms of the last outage line */
    uint64_t rng;
    char key[512]; /* the conninfo the outage is about; "": not known yet */
} s_gate = { PTHREAD_MUTEX_INITIALIZER, 100, 5000, 10000, 0, 0, 0, 0, 0, 0, "" };

/*  Whether conninfo is the database of the current outage (caller holds
    the lock). A process has one database (db.conninfo); a second one (a
    test's) is neither gated by nor part of another's outage.  */
static bool
s_gate_covers (const char *conninfo)
{
    return s_gate.down_since
           && (s_gate.key[0] == '\0' || strcmp (s_gate.key, conninfo ? conninfo : "") == 0);
}

void
bf_db_configure (int reconnect_min_ms, int reconnect_max_ms, int unavailable_log_s)
{
    pthread_mutex_lock (&s_gate.lock);
    s_gate.floor_ms = reconnect_min_ms > 0 ? reconnect_min_ms : 1;
    s_gate.ceiling_ms = reconnect_max_ms > s_gate.floor_ms ? reconnect_max_ms : s_gate.floor_ms;
    s_gate.report_ms = unavailable_log_s > 0 ? unavailable_log_s * 1000 : 1000;
    pthread_mutex_unlock (&s_gate.lock);
}

/*  Metrics (docs/observability.md), registered on first use.  */
static bf_series_t *s_connects_ok, *s_connects_failed, *s_errors_retryable, *s_errors_permanent;
static pthread_once_t s_metrics_once = PTHREAD_ONCE_INIT;

static double
s_unavailable_seconds (void *arg)
{
    (void)arg;
    pthread_mutex_lock (&s_gate.lock);
    int64_t since = s_gate.down_since;
    pthread_mutex_unlock (&s_gate.lock);
    return since ? (double)(zclock_mono () - since) / 1000.0 : 0.0;
}

static double
s_outage_attempts (void *arg)
{
    (void)arg;
    pthread_mutex_lock (&s_gate.lock);
    int64_t attempts = s_gate.down_since ? s_gate.attempts : 0;
    pthread_mutex_unlock (&s_gate.lock);
    return (double)attempts;
}

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
    bf_gauge_set_fn (
        bf_metric_series (bf_metrics_gauge ("billflow_db_unavailable_seconds",
                                            "Seconds the database has been unavailable to this "
                                            "process (0 while it answers).",
                                            NULL)),
        s_unavailable_seconds, NULL);
    bf_gauge_set_fn (bf_metric_series (bf_metrics_gauge (
                         "billflow_db_outage_attempts",
                         "Connection attempts in the current database outage (0 while it answers).",
                         NULL)),
                     s_outage_attempts, NULL);
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
s_sleep_ms (int64_t ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
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

/*  Opens an outage at now (caller holds the lock): the first attempt
    may go at once.  */
static void
s_outage_open (int64_t now)
{
    s_gate.down_since = now;
    s_gate.reported_ms = now;
    s_gate.attempts = 0;
    s_gate.delay_ms = 0;
    if (s_gate.rng == 0)
        s_gate.rng = (uint64_t)now ^ ((uint64_t)getpid () << 32) ^ (uint64_t)(uintptr_t)&now;
}

/*  An attempt failed (caller holds the lock): the next slot is one
    backoff delay away; the first failure is logged at ERROR, then a
    summary at most every report_ms.  */
static void
s_attempt_failed (int64_t now)
{
    bool first = s_gate.down_since == 0;
    if (first)
        s_outage_open (now);
    bool first_failure = s_gate.attempts == 0;
    s_gate.attempts++;
    s_gate.delay_ms = bf_backoff_decorrelated (s_gate.delay_ms, s_gate.floor_ms, s_gate.ceiling_ms,
                                               bf_backoff_random (&s_gate.rng));
    if (s_gate.next_ms < now + s_gate.delay_ms)
        s_gate.next_ms = now + s_gate.delay_ms;
    /*  Fields are set only for a line that is written: one set for a line
        not written would stick to the thread's next line.  */
    bool logged = first_failure || now - s_gate.reported_ms >= s_gate.report_ms;
    if (logged)
        bf_log_field ("sqlstate", "%s", s_last_sqlstate);
    if (first_failure && first)
        bf_error ("database: cannot connect (%s); retrying with backoff (%d..%d ms)",
                  s_last_message, s_gate.floor_ms, s_gate.ceiling_ms);
    else if (first_failure) /* the loss was the ERROR line */
        bf_warn ("database: cannot reconnect (%s); retrying with backoff (%d..%d ms)",
                 s_last_message, s_gate.floor_ms, s_gate.ceiling_ms);
    else if (now - s_gate.reported_ms >= s_gate.report_ms) {
        s_gate.reported_ms = now;
        bf_warn ("database unavailable for %lld s, %lld attempts (last: %s)",
                 (long long)((now - s_gate.down_since + 500) / 1000), (long long)s_gate.attempts,
                 s_last_message);
    }
}

/*  An attempt succeeded (caller holds the lock): the outage, if any, is
    over.  */
static void
s_attempt_ok (int64_t now)
{
    if (s_gate.down_since) {
        s_gate.attempts++;
        int64_t ms = now - s_gate.down_since;
        bf_info ("database back after %lld.%lld s, %lld attempts", (long long)(ms / 1000),
                 (long long)(ms % 1000 / 100), (long long)s_gate.attempts);
    }
    s_gate.down_since = 0;
    s_gate.attempts = 0;
    s_gate.delay_ms = 0;
    s_gate.next_ms = 0;
    s_gate.key[0] = '\0';
}

/*  A working connection was lost: the outage begins now, so its length
    counts from the loss; the first reconnect may go at once.  */
static void
s_connection_lost (void)
{
    pthread_mutex_lock (&s_gate.lock);
    if (s_gate.down_since == 0) {
        int64_t now = zclock_mono ();
        s_outage_open (now);
        bf_error ("database: connection lost (%s); reconnecting with backoff (%d..%d ms)",
                  s_last_message, s_gate.floor_ms, s_gate.ceiling_ms);
    }
    pthread_mutex_unlock (&s_gate.lock);
}

int64_t
bf_db_connect_due (void)
{
    pthread_mutex_lock (&s_gate.lock);
    int64_t due = s_gate.next_ms;
    pthread_mutex_unlock (&s_gate.lock);
    return due;
}

int
bf_db_retry_wait_ms (int min_ms)
{
    int64_t wait = bf_db_connect_due () - zclock_mono ();
    if (wait < min_ms)
        wait = min_ms;
    return wait > INT32_MAX ? INT32_MAX : (int)wait;
}

bool
bf_db_available (void)
{
    pthread_mutex_lock (&s_gate.lock);
    bool up = s_gate.down_since == 0;
    pthread_mutex_unlock (&s_gate.lock);
    return up;
}

/*  --- dead peers: TCP keepalives and timeouts ------------------------------ */

/*  The process's values (bf_db.h); under s_gate.lock.  */
static bf_db_keepalive_t s_keepalive = { 10, 5, 4, 30000 };

void
bf_db_configure_keepalive (const bf_db_keepalive_t *keepalive)
{
    pthread_mutex_lock (&s_gate.lock);
    s_keepalive.idle_s = keepalive->idle_s > 0 ? keepalive->idle_s : 1;
    s_keepalive.interval_s = keepalive->interval_s > 0 ? keepalive->interval_s : 1;
    s_keepalive.count = keepalive->count > 0 ? keepalive->count : 1;
    s_keepalive.user_timeout_ms = keepalive->user_timeout_ms > 0 ? keepalive->user_timeout_ms : 0;
    pthread_mutex_unlock (&s_gate.lock);
}

bf_db_keepalive_t
bf_db_keepalive (void)
{
    pthread_mutex_lock (&s_gate.lock);
    bf_db_keepalive_t keepalive = s_keepalive;
    pthread_mutex_unlock (&s_gate.lock);
    return keepalive;
}

/*  This process's end, on an open connection's socket; nothing to do over
    a Unix socket. Returns 0 or -1 (logged).  */
static int
s_keepalive_client (PGconn *conn, const bf_db_keepalive_t *k)
{
    int fd = PQsocket (conn);
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    if (fd < 0 || getsockname (fd, (struct sockaddr *)&addr, &len) != 0) {
        bf_error ("database: cannot set the socket's TCP timeouts: no socket");
        return -1;
    }
    if (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)
        return 0;
    int on = 1;
    unsigned int timeout = (unsigned int)k->user_timeout_ms;
    if (setsockopt (fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_KEEPIDLE, &k->idle_s, sizeof k->idle_s) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_KEEPINTVL, &k->interval_s, sizeof k->interval_s) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_KEEPCNT, &k->count, sizeof k->count) != 0
        || setsockopt (fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout) != 0) {
        bf_error ("database: cannot set the socket's TCP timeouts: %s", strerror (errno));
        return -1;
    }
    return 0;
}

/*  The server's end: the session's settings (the server ignores them over
    a Unix socket). Returns 0 or -1 (logged).  */
static int
s_keepalive_server (PGconn *conn, const bf_db_keepalive_t *k)
{
    char sql[256];
    snprintf (sql, sizeof sql,
              "SET tcp_keepalives_idle = %d; SET tcp_keepalives_interval = %d;"
              " SET tcp_keepalives_count = %d; SET tcp_user_timeout = %d",
              k->idle_s, k->interval_s, k->count, k->user_timeout_ms);
    PGresult *res = PQexec (conn, sql);
    int rc = PQresultStatus (res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc != 0) {
        char message[512];
        bf_log_oneline (message, sizeof message,
                        res ? PQresultErrorMessage (res) : PQerrorMessage (conn));
        bf_error ("database: cannot set the session's TCP timeouts: %s", message);
    }
    PQclear (res);
    return rc;
}

int
bf_db_keepalive_apply (PGconn *conn, const bf_db_keepalive_t *client,
                       const bf_db_keepalive_t *server)
{
    if (!conn || PQstatus (conn) != CONNECTION_OK)
        return -1;
    int rc = client ? s_keepalive_client (conn, client) : 0;
    if (server && s_keepalive_server (conn, server) != 0)
        rc = -1;
    return rc;
}

/*  One attempt; counted and logged through the gate. The connection
    carries the process's keepalives and timeouts on both ends.  */
static PGconn *
s_attempt (const char *conninfo, const char *app)
{
    bf_db_keepalive_t k = bf_db_keepalive ();
    char idle[16], interval[16], count[16], timeout[16];
    snprintf (idle, sizeof idle, "%d", k.idle_s);
    snprintf (interval, sizeof interval, "%d", k.interval_s);
    snprintf (count, sizeof count, "%d", k.count);
    snprintf (timeout, sizeof timeout, "%d", k.user_timeout_ms);
    /*  Later entries override earlier ones, so settings inside conninfo
        (expanded from "dbname", last) win over these defaults.  */
    const char *keys[] = {
        "application_name",
        "connect_timeout",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "dbname",
        NULL,
    };
    const char *values[] = {
        app ? app : "billflow",   "10", "1", idle, interval, count, timeout,
        conninfo ? conninfo : "", NULL,
    };
    /*  expand_dbname lets conninfo be a "key=value" string or a URI.  */
    PGconn *conn = PQconnectdbParams (keys, values, 1);
    bool ok = conn && PQstatus (conn) == CONNECTION_OK;
    /*  A session whose settings failed is kept (logged) unless the failure
        was the connection's: then it is a failed attempt like any.  */
    if (ok && s_keepalive_server (conn, &k) != 0)
        ok = PQstatus (conn) == CONNECTION_OK;
    s_observe (ok ? &s_connects_ok : &s_connects_failed, ok);
    pthread_mutex_lock (&s_gate.lock);
    int64_t now = zclock_mono ();
    bool ours = !s_gate.down_since || s_gate_covers (conninfo);
    if (ok) {
        s_last_status = BF_DB_OK;
        if (ours)
            s_attempt_ok (now);
    } else {
        s_set_message (conn ? PQerrorMessage (conn) : "out of memory");
        snprintf (s_last_sqlstate, sizeof s_last_sqlstate, "08001");
        s_last_status = BF_DB_RETRY;
        if (ours) {
            snprintf (s_gate.key, sizeof s_gate.key, "%s", conninfo ? conninfo : "");
            s_attempt_failed (now);
        } else {
            bf_log_field ("sqlstate", "%s", s_last_sqlstate);
            bf_warn ("database: cannot connect (%s)", s_last_message);
        }
    }
    pthread_mutex_unlock (&s_gate.lock);
    if (!ok)
        PQfinish (conn);
    return ok ? conn : NULL;
}

PGconn *
bf_db_connect (const char *conninfo, const char *app, int timeout_ms)
{
    int64_t deadline = zclock_mono () + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        pthread_mutex_lock (&s_gate.lock);
        int64_t now = zclock_mono ();
        bool gated = s_gate_covers (conninfo);
        int64_t wait = gated ? s_gate.next_ms - now : 0;
        if (wait <= 0 && gated) {
            /*  This caller takes the slot; the others wait for the next
                one (a failure may push it further).  */
            int64_t hold = s_gate.delay_ms > s_gate.floor_ms ? s_gate.delay_ms : s_gate.floor_ms;
            s_gate.next_ms = now + hold;
        }
        pthread_mutex_unlock (&s_gate.lock);
        if (wait <= 0) {
            PGconn *conn = s_attempt (conninfo, app);
            if (conn)
                return conn;
            continue; /* the next slot, if the deadline allows it */
        }
        if (now + wait > deadline) {
            if (timeout_ms > 0) {
                bf_log_field ("sqlstate", "%s", s_last_sqlstate);
                bf_error ("database: cannot connect within %d ms: %s", timeout_ms,
                          s_last_message);
            } else if (s_last_status != BF_DB_RETRY) {
                /*  Not this caller's turn: it asks again at bf_db_connect_due.  */
                snprintf (s_last_sqlstate, sizeof s_last_sqlstate, "08001");
                snprintf (s_last_message, sizeof s_last_message, "database unavailable");
            }
            s_last_status = BF_DB_RETRY;
            return NULL;
        }
        s_sleep_ms (wait);
    }
}

/*  --- classification -------------------------------------------------------

    The SQLSTATEs worth doing the transaction again for. Everything else is
    permanent: doing it again gives the same answer.  */
static const struct {
    const char *prefix; /* a whole code, or a class of two characters */
    const char *why;
} s_retryable[] = {
    { "08", "connection exception (every 08xxx)" },
    { "40001", "serialization_failure" },
    { "40P01", "deadlock_detected" },
    { "53000", "insufficient_resources" },
    { "53100", "disk_full: resumes when space returns" },
    { "53200", "out_of_memory" },
    { "53300", "too_many_connections" },
    { "55P03", "lock_not_available (lock_timeout, NOWAIT)" },
    { "57P01", "admin_shutdown" },
    { "57P02", "crash_shutdown" },
    { "57P03", "cannot_connect_now (starting up, in recovery)" },
    { "57P05", "idle_session_timeout" },
};

bool
bf_db_sqlstate_retryable (const char *sqlstate)
{
    if (!sqlstate || strlen (sqlstate) != 5)
        return false;
    for (size_t i = 0; i < sizeof s_retryable / sizeof s_retryable[0]; i++)
        if (strncmp (sqlstate, s_retryable[i].prefix, strlen (s_retryable[i].prefix)) == 0)
            return true;
    return false;
}

bool
bf_db_sqlstate_lost (const char *sqlstate)
{
    return sqlstate
           && (strncmp (sqlstate, "08", 2) == 0 || strcmp (sqlstate, "57P01") == 0
               || strcmp (sqlstate, "57P02") == 0 || strcmp (sqlstate, "57P03") == 0
               || strcmp (sqlstate, "57P05") == 0);
}

int
bf_db_classify_state (const char *server_sqlstate, bool error_result, bool connection_ok,
                      char sqlstate[6])
{
    const char *state = server_sqlstate;
    if (!state || strlen (state) != 5) {
        if (!connection_ok)
            state = "08006"; /* connection_failure: the server sent no SQLSTATE */
        else if (error_result)
            state = "08000"; /* libpq's own error (no SQLSTATE): the link, not the SQL */
        else
            state = "XX000"; /* an unexpected kind of result: a bug of ours */
    }
    snprintf (sqlstate, 6, "%s", state);
    return !connection_ok || bf_db_sqlstate_retryable (sqlstate) ? BF_DB_RETRY : BF_DB_FAIL;
}

int
bf_db_classify (const PGconn *conn, const PGresult *res, char sqlstate[6])
{
    ExecStatusType status = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    bool error = status == PGRES_FATAL_ERROR || status == PGRES_NONFATAL_ERROR
                 || status == PGRES_BAD_RESPONSE;
    const char *state = res && error ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
    return bf_db_classify_state (state, error, conn && PQstatus (conn) == CONNECTION_OK, sqlstate);
}

bool
bf_db_lost (const PGconn *conn)
{
    return conn == NULL || PQstatus (conn) != CONNECTION_OK
           || (s_last_status == BF_DB_RETRY && bf_db_sqlstate_lost (s_last_sqlstate));
}

/*  --- repeated statement failures: one episode per SQLSTATE --------------

    A retryable failure that is not a lost connection (disk full 53100,
    out of memory 53200, too many connections 53300, the transaction
    conflicts) comes back on every retry for as long as its cause lasts: a
    full disk of 15 s gave 120 lines at CI size. So each such SQLSTATE has
    an episode, shared by every thread of the process, logged as the
    reconnect gate logs an outage: the first failure in full ("database:
    WHAT failed (SQLSTATE S, retryable): ..."; ERROR, WARN for the
    conflicts 40001, 40P01 and 55P03 that a retry usually resolves at
    once), the failures after it only counted, with a summary at most
    every db.unavailable_log_s ("database: SQLSTATE S for N s, M failed
    statements (last: ...)"), and one line when it is over: the first
    statement that succeeds once none has failed with S for
    db.unavailable_log_s ("database: statements succeed again after
    SQLSTATE S for N s, M failed statements"). A failure after such a
    quiet interval that no success ended begins a new episode. Lost
    connections go through the gate above; permanent failures are logged
    every time (each is a bug or bad data of its own).  */

#define S_EPISODES 8

typedef struct {
    char sqlstate[6]; /* "": a free slot */
    int64_t since;    /* mono ms of the first failure */
    int64_t last;     /* mono ms of the latest failure */
    int64_t reported; /* mono ms of the latest line */
    int64_t failures;
} s_episode_t;

static struct {
    pthread_mutex_t lock;
    atomic_int open; /* slots in use: the success path looks only when > 0 */
    s_episode_t slot[S_EPISODES];
} s_episodes = { .lock = PTHREAD_MUTEX_INITIALIZER };

static int64_t
s_report_ms (void)
{
    pthread_mutex_lock (&s_gate.lock);
    int64_t ms = s_gate.report_ms;
    pthread_mutex_unlock (&s_gate.lock);
    return ms;
}

/*  The transaction conflicts: a retry at once usually succeeds.  */
static bool
s_conflict (const char *sqlstate)
{
    return strcmp (sqlstate, "40001") == 0 || strcmp (sqlstate, "40P01") == 0
           || strcmp (sqlstate, "55P03") == 0;
}

/*  The failure's full line (the first of an episode, or any failure that
    has none).  */
static void
s_failure_line (bf_log_level_t level, const char *what, const char *sqlstate, int status,
                const char *message)
{
    bf_log_field ("sqlstate", "%s", sqlstate);
    bf_log (level, "database: %s failed (SQLSTATE %s, %s): %s", what ? what : "statement", sqlstate,
            status == BF_DB_RETRY ? "retryable" : "permanent", message);
}

void
bf_db_note_failure (const char *what, const char *sqlstate, int status, const char *message,
                    int64_t now_ms)
{
    if (status != BF_DB_RETRY || !sqlstate || strlen (sqlstate) != 5
        || bf_db_sqlstate_lost (sqlstate)) {
        s_failure_line (status == BF_DB_RETRY ? BF_LOG_WARN : BF_LOG_ERROR, what,
                        sqlstate ? sqlstate : "", status, message);
        return;
    }
    int64_t report_ms = s_report_ms ();
    pthread_mutex_lock (&s_episodes.lock);
    s_episode_t *episode = NULL, *free_slot = NULL;
    for (int i = 0; i < S_EPISODES && !episode; i++) {
        if (strcmp (s_episodes.slot[i].sqlstate, sqlstate) == 0)
            episode = &s_episodes.slot[i];
        else if (!free_slot && s_episodes.slot[i].sqlstate[0] == '\0')
            free_slot = &s_episodes.slot[i];
    }
    /*  An episode quiet for a whole interval ended unobserved: the slot
        takes a new one, below.  */
    if (episode && now_ms - episode->last < report_ms) {
        episode->failures++;
        episode->last = now_ms;
        if (now_ms - episode->reported >= report_ms) {
            episode->reported = now_ms;
            bf_log_field ("sqlstate", "%s", sqlstate);
            bf_warn ("database: SQLSTATE %s for %lld s, %lld failed statements (last: %s: %s)",
                     sqlstate, (long long)((now_ms - episode->since + 500) / 1000),
                     (long long)episode->failures, what ? what : "statement", message);
        }
        pthread_mutex_unlock (&s_episodes.lock);
        return;
    }
    /*  A new episode, in the slot of the one that ended or a free one;
        with every slot taken (eight SQLSTATEs at once) each failure is
        logged in full.  */
    s_episode_t *fresh = episode ? episode : free_slot;
    if (fresh) {
        if (!episode)
            atomic_fetch_add (&s_episodes.open, 1);
        *fresh
            = (s_episode_t){ .since = now_ms, .last = now_ms, .reported = now_ms, .failures = 1 };
        snprintf (fresh->sqlstate, sizeof fresh->sqlstate, "%s", sqlstate);
    }
    s_failure_line (s_conflict (sqlstate) ? BF_LOG_WARN : BF_LOG_ERROR, what, sqlstate, status,
                    message);
    pthread_mutex_unlock (&s_episodes.lock);
}

void
bf_db_note_success (int64_t now_ms)
{
    if (atomic_load_explicit (&s_episodes.open, memory_order_relaxed) <= 0)
        return;
    int64_t report_ms = s_report_ms ();
    pthread_mutex_lock (&s_episodes.lock);
    for (int i = 0; i < S_EPISODES; i++) {
        s_episode_t *episode = &s_episodes.slot[i];
        if (episode->sqlstate[0] == '\0' || now_ms - episode->last < report_ms)
            continue;
        int64_t ms = episode->last - episode->since;
        bf_log_field ("sqlstate", "%s", episode->sqlstate);
        bf_info ("database: statements succeed again after SQLSTATE %s for %lld.%lld s, %lld"
                 " failed statements",
                 episode->sqlstate, (long long)(ms / 1000), (long long)(ms % 1000 / 100),
                 (long long)episode->failures);
        episode->sqlstate[0] = '\0';
        atomic_fetch_sub (&s_episodes.open, 1);
    }
    pthread_mutex_unlock (&s_episodes.lock);
}

int
bf_db_check (PGconn *conn, const PGresult *res, ExecStatusType expect, const char *what)
{
    if (res && PQresultStatus (res) == expect) {
        s_last_status = BF_DB_OK;
        bf_health_db_seen (true);
        bf_db_note_success (zclock_mono ());
        return BF_DB_OK;
    }
    s_last_status = bf_db_classify (conn, res, s_last_sqlstate);
    ExecStatusType status = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    if (res && status != PGRES_FATAL_ERROR && status != PGRES_NONFATAL_ERROR)
        snprintf (s_last_message, sizeof s_last_message, "unexpected result status %s",
                  PQresStatus (status));
    else
        s_set_message (res && *PQresultErrorMessage (res) ? PQresultErrorMessage (res)
                       : conn                              ? PQerrorMessage (conn)
                                                           : "no connection");
    bool lost = bf_db_lost (conn);
    /*  Readiness: down only when the server itself is gone or going.  */
    s_observe (s_last_status == BF_DB_RETRY ? &s_errors_retryable : &s_errors_permanent, !lost);
    bf_db_note_failure (what, s_last_sqlstate, s_last_status, s_last_message, zclock_mono ());
    if (lost)
        s_connection_lost ();
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
        s_last_status = bf_db_classify (self->conn, NULL, s_last_sqlstate);
        bf_log_field ("sqlstate", "%s", s_last_sqlstate);
        bf_log (s_last_status == BF_DB_RETRY ? BF_LOG_WARN : BF_LOG_ERROR,
                "database: COPY: sending data failed (SQLSTATE %s, %s): %s", s_last_sqlstate,
                s_last_status == BF_DB_RETRY ? "retryable" : "permanent", s_last_message);
        if (bf_db_lost (self->conn))
            s_connection_lost ();
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
        rc = s_last_status = bf_db_classify (self->conn, NULL, s_last_sqlstate);
        bf_log_field ("sqlstate", "%s", s_last_sqlstate);
        bf_log (rc == BF_DB_RETRY ? BF_LOG_WARN : BF_LOG_ERROR,
                "database: COPY: finishing failed (SQLSTATE %s, %s): %s", s_last_sqlstate,
                rc == BF_DB_RETRY ? "retryable" : "permanent", s_last_message);
        if (bf_db_lost (self->conn))
            s_connection_lost ();
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
