/*  bf_control — election, the command store and forwarder, the service
    registry, and queries (bf_control.h).  */

#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_bucket.h"
#include "bf_behalf.h"
#include "bf_control.h"
#include "bf_control_metrics.h"
#include "bf_curve.h"
#include "bf_db.h"
#include "bf_dbfence.h"
#include "bf_fault.h"
#include "bf_health.h"
#include "bf_log.h"
#include "bf_query.h"
#include "bf_report.h"
#include "bf_report_cache.h"
#include "bf_ratesampler.h"
#include "bf_text.h"
#include "bf_uuid.h"
#include "bf_verbs.h"
#include "bf_wire.h"
#include "bf_zmq.h"

/*  The fence of the election connection (bf_dbfence.h): a partition is
    noticed within this many election intervals, and the server frees the
    lock only after about twice that.  */
#define S_FENCE_FACTOR 3

/*  Session advisory lock held by the active control (distinct from the
    relay's and the migrator's keys).  */
#define S_LOCK_KEY "27697189231550857"

/*  Largest message part the ROUTER takes: bigger ones cost the sender its
    connection (it was 4 MiB); anything over BF_WIRE_MAX_PAYLOAD is counted
    and dropped; a command or query over max_request_bytes is rejected
    with an answer and an audit row.  */
#define S_MAX_MSG (BF_WIRE_MAX_PAYLOAD + 4096)

/*  Defaults of the hardening settings (bf_control_args_t).  */
#define S_CLIENT_RATE       50
#define S_CLIENT_BURST      100
#define S_CONSOLE_RATE      1000
#define S_CONSOLE_BURST     2000
#define S_COMMAND_ATTEMPTS  5
#define S_MAX_REQUEST_BYTES 16384

/*  Callers of run.report queued for the reporter's next report: at most
    this many in all, and per key; more are answered "busy".  */
#define S_REPORTS_QUEUED  16
#define S_REPORTS_PER_KEY 2

/*  Periods whose newest run.report control keeps (bf_report_cache.h).  */
#define S_REPORT_PERIODS 24

/*  Outside text in an audit row or a log line: at most this many bytes
    per field.  */
#define S_AUDIT_FIELD_MAX  64
#define S_AUDIT_DETAIL_MAX 400

/*  A heartbeat's status document larger than this is not stored.  */
#define S_STATE_MAX 8192

/*  A refused registration or a rate-limited key is logged at most once
    per this interval per key, and audited at most once per second.  */
#define S_KEY_WARN_EVERY_MS  10000
#define S_KEY_AUDIT_EVERY_MS 1000

/*  Pause before forwarding again a command whose service answered
    "retryable".  */
#define S_RETRY_PAUSE_MS 1000

/*  At most one warning per this interval for dropped frames.  */
#define S_WARN_EVERY_MS 10000

enum { S_SETTLE, S_NOTIFY, S_TARGETS };
static const char *s_target_names[S_TARGETS] = { "settle", "notify" };

typedef struct {
    char instance[128];
    char service[16];
    char key_name[65];
    zframe_t *identity;
    int64_t last_seen; /* zclock_mono */
} s_service_t;

typedef struct {
    zframe_t *identity;
    bool original; /* the submission that stored the command */
} s_waiter_t;

/*  What control keeps per key name (the allowed list bounds how many):
    its token bucket, its queued reports, and when it was last warned
    about and audited.  */
typedef struct {
    bf_bucket_t bucket; /* zclock_mono; client_ or console_ rate (s_key_limits) */
    int reports;      /* run.report callers queued for the reporter */
    uint64_t limited, limited_unaudited, limited_unlogged;
    int64_t warned, audited;
} s_key_t;

/*  Who sent a frame: the ZAP handler's metadata of its connection.  */
typedef struct {
    char actor[65];
    char role[16];
    char service[16];  /* a service key's binding; "" when unbound */
    char pattern[128]; /* and its instance glob; "" for any */
} s_peer_t;

typedef struct {
    char command_id[129]; /* "" when nothing is in flight */
    char instance[128];
    int64_t deadline;
} s_inflight_t;

typedef struct {
    zsock_t *pipe;
    zactor_t *zap;
    zactor_t *reporter; /* runs the slow queries (run.report) */
    zsock_t *router;
    zpoller_t *poller;
    zcert_t *cert;
    PGconn *conn;
    bool active;
    int64_t active_mono; /* when this process became active (zclock_mono) */
    char since[40];
    bf_control_args_t args;
    char conninfo[1024], bind[256], instance[128], allowed_keys[1024];
    bf_query_ctx_t query_ctx;
    zhashx_t *services; /* instance -> s_service_t */
    zhashx_t *waiters;  /* command_id -> zlistx_t of s_waiter_t */
    s_inflight_t inflight[S_TARGETS];
    bool pending[S_TARGETS]; /* open commands may exist */
    int64_t retry_at[S_TARGETS];
    int64_t next_election;
    int64_t next_beat;   /* control_instance row due (zclock_mono) */
    int64_t next_sample; /* rate sample due, while active */
    int64_t next_prune;  /* old rate samples to delete, while active */
    bf_wire_stats_t wire;
    int64_t last_drop_warning;
    uint64_t dropped_since_warning, not_allowed;
    uint64_t commands, repeated, rejected, forwarded, completed, queries, refused;
    uint64_t limited, busy, gave_up, services_refused, foreign_replies;
    uint64_t behalf_refused; /* requests refused for their on_behalf_ fields */
    zhashx_t *keys;    /* key name -> s_key_t */
    bf_report_cache_t *report_cache; /* newest run.report per period, queued callers */
    uint32_t prepared; /* bit per s_sql_t prepared on conn */
} s_control_t;

/*  --- statements ------------------------------------------------------ */

/*  Every statement control runs on its connection (queries: bf_query.c),
    prepared on that connection when first used (s_sql): a database whose
    schema is not migrated yet fails the statements that need it, as
    before, and works once it is.  */
typedef enum {
    S_SQL_AUDIT,
    S_SQL_GIVE_UP,
    S_SQL_ATTEMPT_FAILED,
    S_SQL_TAKE_NEXT,
    S_SQL_COUNT_OPEN,
    S_SQL_STORE_COMMAND,
    S_SQL_STORED_COMMAND,
    S_SQL_STORE_OUTCOME,
    S_SQL_REGISTER,
    S_SQL_HEARTBEAT,
    S_SQL_UNLOCK,
    S_SQL_RECORD_LEADER,
    S_SQL_PING,
    S_SQL_TRY_LOCK,
    S_SQL_CONTROL_BEAT,
    S_SQL_COUNT
} s_sql_t;
_Static_assert(S_SQL_COUNT <= 32, "s_control_t.prepared has a bit per statement");

static const bf_db_statement_t s_statements[S_SQL_COUNT] = {
    //  The one place that writes audit_log (s_audit).
    [S_SQL_AUDIT] = { "control_audit",
                      "INSERT INTO audit_log (actor, command_id, target, verb, args, outcome,"
                      " detail) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)",
                      7 },
    [S_SQL_GIVE_UP] = { "control_give_up",
                        "UPDATE command SET state = 'FAILED', error = $2, result = NULL,"
                        " completed_at = now () WHERE command_id = $1"
                        " AND state IN ('RECEIVED', 'FORWARDED')"
                        " RETURNING client, target, verb, args::text",
                        2 },
    [S_SQL_ATTEMPT_FAILED] = { "control_attempt_failed",
                               "UPDATE command SET error = $2 WHERE command_id = $1"
                               " AND state IN ('RECEIVED', 'FORWARDED') RETURNING forwards",
                               2 },
    //  The oldest open command of target $1 that is due: one that failed
    //  an attempt waits $3 ms times its forwards.
    [S_SQL_TAKE_NEXT]
    = { "control_take_next",
        "UPDATE command SET state = 'FORWARDED', forwarded_at = now (), forwards = forwards + 1,"
        " instance_id = $2 WHERE command_id = (SELECT command_id FROM command"
        "  WHERE target = $1 AND state IN ('RECEIVED', 'FORWARDED')"
        "  AND (forwarded_at IS NULL OR forwarded_at"
        "   <= now () - make_interval (secs => $3::integer * forwards / 1000.0))"
        "  ORDER BY received_at, command_id LIMIT 1)"
        " RETURNING command_id, verb, args::text, client, forwards, coalesce (error, '')",
        3 },
    [S_SQL_COUNT_OPEN] = { "control_count_open",
                           "SELECT count (*) FROM command WHERE target = $1"
                           " AND state IN ('RECEIVED', 'FORWARDED')",
                           1 },
    [S_SQL_STORE_COMMAND] = { "control_store_command",
                              "INSERT INTO command (command_id, client, target, verb, args)"
                              " VALUES ($1, $2, $3, $4, $5::jsonb)"
                              " ON CONFLICT (command_id) DO NOTHING",
                              5 },
    [S_SQL_STORED_COMMAND] = { "control_stored_command",
                               "SELECT state, coalesce (result::text, ''), coalesce (error, ''),"
                               " target, verb FROM command WHERE command_id = $1",
                               1 },
    [S_SQL_STORE_OUTCOME] = { "control_store_outcome",
                              "UPDATE command SET state = $2, result = $3::jsonb, error = $4,"
                              " completed_at = now () WHERE command_id = $1"
                              " AND state IN ('RECEIVED', 'FORWARDED')"
                              " RETURNING client, target, verb, args::text,"
                              " coalesce (result::text, ''), coalesce (error, '')",
                              4 },
    [S_SQL_REGISTER]
    = { "control_register",
        "INSERT INTO service_instance (instance_id, service, key_name, pid, version, verbs)"
        " VALUES ($1, $2, $3, $4::integer, $5,"
        "  ARRAY (SELECT json_array_elements_text ($6::json)))"
        " ON CONFLICT (instance_id) DO UPDATE SET service = excluded.service,"
        " key_name = excluded.key_name, pid = excluded.pid, version = excluded.version,"
        " verbs = excluded.verbs, registered_at = now (), last_heartbeat = now ()",
        6 },
    [S_SQL_HEARTBEAT] = { "control_heartbeat",
                          "INSERT INTO service_instance (instance_id, service, key_name, state)"
                          " VALUES ($1, $2, $3, $4::jsonb)"
                          " ON CONFLICT (instance_id) DO UPDATE SET last_heartbeat = now (),"
                          " state = excluded.state, key_name = excluded.key_name",
                          4 },
    [S_SQL_UNLOCK] = { "control_unlock", "SELECT pg_advisory_unlock (" S_LOCK_KEY ")", 0 },
    [S_SQL_RECORD_LEADER] = { "control_record_leader",
                              "UPDATE control_leader SET instance_id = $1, bind = $2,"
                              " since = now (), updated_at = now ()"
                              " RETURNING to_char (since AT TIME ZONE 'UTC',"
                              " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
                              2 },
    [S_SQL_PING] = { "control_ping", "SELECT 1", 0 },
    [S_SQL_TRY_LOCK] = { "control_try_lock", "SELECT pg_try_advisory_lock (" S_LOCK_KEY ")", 0 },
    //  This process's row of control_instance, active or standby (services.list).
    [S_SQL_CONTROL_BEAT] = { "control_beat",
                             "INSERT INTO control_instance (instance_id, pid, bind)"
                             " VALUES ($1, $2::integer, $3)"
                             " ON CONFLICT (instance_id) DO UPDATE SET pid = excluded.pid,"
                             " bind = excluded.bind, last_heartbeat = now (),"
                             " started_at = CASE WHEN control_instance.pid"
                             "  IS DISTINCT FROM excluded.pid THEN now ()"
                             "  ELSE control_instance.started_at END",
                             3 },
};

/*  Runs statement on self->conn with params, preparing it first when this
    connection has not yet. Returns its result when its status is expect
    (the caller PQclear()s it), else NULL, logged with what (bf_db.h).  */
static PGresult *
s_sql (s_control_t *self, s_sql_t statement, const char *const *params, ExecStatusType expect,
       const char *what)
{
    const bf_db_statement_t *sql = &s_statements[statement];
    if (!(self->prepared & (1u << statement))) {
        PGresult *res = PQprepare (self->conn, sql->name, sql->sql, sql->nparams, NULL);
        int rc = bf_db_check (self->conn, res, PGRES_COMMAND_OK, what);
        PQclear (res);
        if (rc != BF_DB_OK)
            return NULL;
        self->prepared |= 1u << statement;
    }
    return bf_db_query_prepared (self->conn, sql->name, sql->nparams, params, expect, what);
}

/*  --- small helpers --------------------------------------------------- */

static int
s_target_index (const char *target)
{
    for (int t = 0; t < S_TARGETS; t++)
        if (target && !strcmp (target, s_target_names[t]))
            return t;
    return -1;
}

static bool
s_command_id_valid (const char *id)
{
    size_t len = strlen (id);
    if (len == 0 || len > 128)
        return false;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
              || *p == '.' || *p == '_' || *p == ':' || *p == '-'))
            return false;
    return true;
}

/*  A bounded, printable copy of outside text for a log line or an audit
    row (bf_text_clip); *capped is set when text was longer than max.  */
static const char *
s_clip (char *out, size_t outsize, const char *text, size_t max, bool *capped)
{
    if (capped && text && strlen (text) > max)
        *capped = true;
    return bf_text_clip (out, outsize, text, max);
}

static s_key_t *
s_key (s_control_t *self, const char *name)
{
    s_key_t *key = zhashx_lookup (self->keys, name);
    if (!key) {
        key = calloc (1, sizeof *key);
        if (!key)
            return NULL;
        bf_bucket_init (&key->bucket, self->args.client_rate, self->args.client_burst,
                        zclock_mono ());
        zhashx_insert (self->keys, name, key);
    }
    return key;
}

/*  A key with the console role speaks for every operator of its console
    at once, so it gets console_rate/console_burst; any other key
    client_rate/client_burst (docs/control.md "Limits").  */
static void
s_key_limits (const s_control_t *self, s_key_t *key, const char *role)
{
    bool console = role && !strcmp (role, "console");
    key->bucket.rate = console ? self->args.console_rate : self->args.client_rate;
    key->bucket.burst = console ? self->args.console_burst : self->args.client_burst;
}

static void
s_service_destroy (void **item)
{
    s_service_t *svc = *item;
    if (svc) {
        zframe_destroy (&svc->identity);
        free (svc);
        *item = NULL;
    }
}

static void
s_waiter_destroy (void **item)
{
    s_waiter_t *waiter = *item;
    if (waiter) {
        zframe_destroy (&waiter->identity);
        free (waiter);
        *item = NULL;
    }
}

static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

static void
s_waiters_destroy (void **item)
{
    zlistx_destroy ((zlistx_t **)item);
}

/*  Command arguments as a JSON object text (malloc'd), or NULL with a
    reason when a key is empty or repeated.  */
static char *
s_args_json (const Billflow__Command *cmd, char *err, size_t errsize)
{
    json_t *object = json_object ();
    for (size_t i = 0; i < cmd->n_args; i++) {
        const Billflow__Argument *arg = cmd->args[i];
        if (!arg || !arg->key || !*arg->key || json_object_get (object, arg->key)) {
            bf_err_set (err, errsize, "argument %zu has an empty or repeated key", i + 1);
            json_decref (object);
            return NULL;
        }
        char shown[BF_TEXT_CLIP_SHORT];
        json_t *value = json_string (arg->value ? arg->value : "");
        if (!value) {
            bf_err_set (err, errsize, "the value of argument '%s' is not valid UTF-8",
                        bf_text_clip (shown, sizeof shown, arg->key, 40));
            json_decref (object);
            return NULL;
        }
        /*  json_object_set_new refuses a key that is not UTF-8 (and takes
            the value with it).  */
        if (json_object_set_new (object, arg->key, value) != 0) {
            bf_err_set (err, errsize, "the name of argument %zu ('%s') is not valid UTF-8", i + 1,
                        bf_text_clip (shown, sizeof shown, arg->key, 40));
            json_decref (object);
            return NULL;
        }
    }
    char *text = json_dumps (object, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (object);
    if (!text)
        bf_err_set (err, errsize, "arguments cannot be encoded");
    return text;
}

/*  --- replies to clients ------------------------------------------------ */

static void
s_send_to (s_control_t *self, zframe_t *identity, bf_msg_type_t type, const ProtobufCMessage *msg)
{
    if (!self->router)
        return;
    zmsg_t *out = bf_wire_encode (type, 0, msg);
    if (!out)
        return;
    zframe_t *id = zframe_dup (identity);
    zmsg_prepend (out, &id);
    if (zmsg_send (&out, self->router) != 0) {
        bf_debug ("control: could not send %s to a peer (gone)", bf_msg_type_name (type));
        zmsg_destroy (&out);
    }
}

/*  A CommandReply to identity; retry_after_ms (0: none) is the hint a
    "busy:" answer carries (CommandReply.retry_after_ms).  */
static void
s_answer_hint (s_control_t *self, zframe_t *identity, const char *command_id,
               Billflow__CommandReply__Status status, const char *result, const char *error,
               bool replayed, bool retryable, int retry_after_ms)
{
    Billflow__CommandReply reply;
    bf_wire_reply_init (&reply, command_id, status, result, error, replayed, retryable);
    reply.retry_after_ms = retry_after_ms > 0 ? (uint32_t)retry_after_ms : 0;
    s_send_to (self, identity, BF_MSG_CMD_REPLY, &reply.base);
}

static void
s_answer (s_control_t *self, zframe_t *identity, const char *command_id,
          Billflow__CommandReply__Status status, const char *result, const char *error,
          bool replayed, bool retryable)
{
    s_answer_hint (self, identity, command_id, status, result, error, replayed, retryable, 0);
}

static Billflow__CommandReply__Status
s_status_of_state (const char *state)
{
    if (!strcmp (state, "DONE"))
        return BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK;
    if (!strcmp (state, "FAILED"))
        return BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED;
    if (!strcmp (state, "REJECTED"))
        return BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED;
    return BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED;
}

static void
s_add_waiter (s_control_t *self, const char *command_id, zframe_t *identity, bool original)
{
    zlistx_t *list = zhashx_lookup (self->waiters, command_id);
    if (!list) {
        list = zlistx_new ();
        zlistx_set_destructor (list, s_waiter_destroy);
        zhashx_insert (self->waiters, command_id, list);
    }
    for (s_waiter_t *w = zlistx_first (list); w; w = zlistx_next (list))
        if (zframe_eq (w->identity, identity))
            return;
    s_waiter_t *waiter = calloc (1, sizeof *waiter);
    waiter->identity = zframe_dup (identity);
    waiter->original = original;
    zlistx_add_end (list, waiter);
}

/*  Sends the final outcome to everyone waiting for command_id.  */
static void
s_answer_waiters (s_control_t *self, const char *command_id, const char *state, const char *result,
                  const char *error)
{
    zlistx_t *list = zhashx_lookup (self->waiters, command_id);
    if (!list)
        return;
    for (s_waiter_t *w = zlistx_first (list); w; w = zlistx_next (list))
        s_answer (self, w->identity, command_id, s_status_of_state (state), result, error,
                  !w->original, false);
    zhashx_delete (self->waiters, command_id);
}

/*  --- the audit log --------------------------------------------------- */

/*  Writes one audit row (args: JSON text or NULL; detail may be NULL), in
    the caller's transaction when one is open. The one place that writes
    audit_log. Returns true when the row was written.  */
static bool
s_audit (s_control_t *self, const char *actor, const char *command_id, const char *target,
         const char *verb, const char *args, const char *outcome, const char *detail)
{
    if (!self->conn)
        return false;
    const char *params[] = { actor, command_id, target, verb, args, outcome, detail };
    PGresult *res = s_sql (self, S_SQL_AUDIT, params, PGRES_COMMAND_OK, "writing the audit log");
    bool ok = res != NULL;
    PQclear (res);
    return ok;
}

/*  --- the service registry -------------------------------------------- */

static bool
s_live (const s_control_t *self, const s_service_t *svc)
{
    return zclock_mono () - svc->last_seen <= 3LL * self->args.heartbeat_ms;
}

/*  The live instance of target heard from most recently, or NULL.  */
static s_service_t *
s_live_instance (s_control_t *self, int target)
{
    s_service_t *best = NULL;
    for (s_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        if (!strcmp (svc->service, s_target_names[target]) && s_live (self, svc)
            && (!best || svc->last_seen > best->last_seen))
            best = svc;
    return best;
}

static s_service_t *
s_service_by_identity (s_control_t *self, zframe_t *identity)
{
    for (s_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        if (zframe_eq (svc->identity, identity))
            return svc;
    return NULL;
}

/*  Instances silent for three heartbeat intervals are down: logged once
    and forgotten (service_instance keeps their last heartbeat).  */
static void
s_expire_services (s_control_t *self)
{
    zlistx_t *gone = zlistx_new ();
    for (s_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        if (!s_live (self, svc))
            zlistx_add_end (gone, svc->instance);
    for (const char *instance = zlistx_first (gone); instance; instance = zlistx_next (gone)) {
        s_service_t *svc = zhashx_lookup (self->services, instance);
        bf_warn ("control: %s instance %s is down (no heartbeat for %d ms)", svc->service,
                 svc->instance, 3 * self->args.heartbeat_ms);
        bf_control_metrics_instance (svc->service, svc->instance, false);
        zhashx_delete (self->services, instance);
    }
    zlistx_destroy (&gone);
}

/*  --- forwarding ------------------------------------------------------ */

/*  Builds and sends the stored command to svc.  */
static int
s_send_command (s_control_t *self, s_service_t *svc, const char *command_id, const char *target,
                const char *verb, const char *args_text, const char *client)
{
    json_error_t jerr;
    json_t *args = json_loads (args_text, 0, &jerr);
    if (!json_is_object (args)) {
        bf_error ("control: command %s has unreadable stored arguments", command_id);
        json_decref (args);
        return -1;
    }
    size_t n = json_object_size (args), i = 0;
    Billflow__Argument *items = calloc (n ? n : 1, sizeof *items);
    Billflow__Argument **ptrs = calloc (n ? n : 1, sizeof *ptrs);
    const char *key;
    json_t *value;
    json_object_foreach (args, key, value)
    {
        billflow__argument__init (&items[i]);
        items[i].key = (char *)key;
        items[i].value = (char *)(json_is_string (value) ? json_string_value (value) : "");
        ptrs[i] = &items[i];
        i++;
    }
    Billflow__Command cmd = BILLFLOW__COMMAND__INIT;
    cmd.schema_version = BF_SCHEMA_VERSION;
    cmd.command_id = (char *)command_id;
    cmd.target = (char *)target;
    cmd.verb = (char *)verb;
    cmd.n_args = n;
    cmd.args = ptrs;
    cmd.issued_by = (char *)client;
    cmd.issued_at_ms = zclock_time ();
    s_send_to (self, svc->identity, BF_MSG_CMD, &cmd.base);
    free (ptrs);
    free (items);
    json_decref (args);
    return 0;
}

/*  Ends an open command FAILED with reason (its audit row "failed" in the
    same transaction) and answers everyone waiting for it. Used when a
    command used up its attempts, and when its service's answer cannot be
    stored. Returns 0, or -1 when the database refused (it stays open and
    is tried again).  */
static int
s_give_up (s_control_t *self, const char *command_id, const char *reason)
{
    char error[S_AUDIT_DETAIL_MAX + 8];
    bf_text_clip (error, sizeof error, reason, S_AUDIT_DETAIL_MAX);
    if (!self->conn || bf_db_begin (self->conn) != BF_DB_OK)
        return -1;
    const char *params[] = { command_id, error };
    PGresult *res = s_sql (self, S_SQL_GIVE_UP, params, PGRES_TUPLES_OK, "failing a command");
    bool ok = res != NULL;
    if (ok && PQntuples (res) == 1) {
        ok = s_audit (self, PQgetvalue (res, 0, 0), command_id, PQgetvalue (res, 0, 1),
                      PQgetvalue (res, 0, 2), PQgetvalue (res, 0, 3), "failed", error);
    }
    bool failed_now = ok && PQntuples (res) == 1;
    char verb[64];
    snprintf (verb, sizeof verb, "%s", failed_now ? PQgetvalue (res, 0, 2) : "");
    PQclear (res);
    if (ok)
        ok = bf_db_commit (self->conn) == BF_DB_OK;
    else
        bf_db_rollback (self->conn);
    if (!ok)
        return -1;
    if (failed_now) {
        self->gave_up++;
        self->completed++;
        bf_log_field ("command_id", "%s", command_id);
        bf_control_metrics_command (verb, "gave_up");
        bf_warn ("control: command %s FAILED: %s", command_id, error);
        s_answer_waiters (self, command_id, "FAILED", "", error);
    }
    return 0;
}

/*  Records why an attempt at command_id did not end it (kept in its error
    column while it is open, so the final reason can say it) and gives up
    on it when it has used its attempts. Returns true when it ended.  */
static bool
s_attempt_failed (s_control_t *self, const char *command_id, const char *why)
{
    if (!self->conn)
        return false;
    char shown[S_AUDIT_DETAIL_MAX + 8];
    bf_text_clip (shown, sizeof shown, why, 300);
    const char *params[] = { command_id, shown };
    PGresult *res
        = s_sql (self, S_SQL_ATTEMPT_FAILED, params, PGRES_TUPLES_OK, "noting a failed attempt");
    int forwards = res && PQntuples (res) == 1 ? atoi (PQgetvalue (res, 0, 0)) : 0;
    PQclear (res);
    if (forwards < self->args.command_attempts)
        return false;
    char reason[S_AUDIT_DETAIL_MAX + 64];
    snprintf (reason, sizeof reason, "gave up after %d attempts; the last: %s", forwards, shown);
    return s_give_up (self, command_id, reason) == 0;
}

/*  Forwards target's oldest open command when nothing of target's is in
    flight and an instance is up.  */
static void
s_pump (s_control_t *self, int t)
{
    /*  What follows is about the command forwarded, not the message being
        handled (the pump ends every handler that calls it).  */
    bf_log_ctx_clear ();
    if (!self->active || !self->conn)
        return;
    s_inflight_t *flight = &self->inflight[t];
    int64_t now = zclock_mono ();
    if (*flight->command_id) {
        s_service_t *svc = zhashx_lookup (self->services, flight->instance);
        if (now < flight->deadline && svc && s_live (self, svc))
            return;
        char why[256];
        snprintf (why, sizeof why, "no answer from %s instance %s%s", s_target_names[t],
                  flight->instance, svc && s_live (self, svc) ? " in time" : " (instance down)");
        bf_log_field ("command_id", "%s", flight->command_id);
        bf_warn ("control: command %s: %s; it will be forwarded again", flight->command_id, why);
        char id[sizeof flight->command_id];
        snprintf (id, sizeof id, "%s", flight->command_id);
        *flight->command_id = 0;
        self->pending[t] = true;
        s_attempt_failed (self, id, why);
    }
    if (!self->pending[t] || now < self->retry_at[t])
        return;
    s_service_t *svc = s_live_instance (self, t);
    if (!svc)
        return;
    /*  The oldest open command that is due: one that failed an attempt
        waits S_RETRY_PAUSE_MS times its attempts before the next, and the
        commands behind it go first meanwhile, so one that keeps failing
        never holds up the others.  */
    char pause[16];
    snprintf (pause, sizeof pause, "%d", S_RETRY_PAUSE_MS);
    const char *params[] = { s_target_names[t], svc->instance, pause };
    PGresult *res
        = s_sql (self, S_SQL_TAKE_NEXT, params, PGRES_TUPLES_OK, "taking the next command");
    if (!res) {
        /*  A permanent error (a schema not migrated) is not tried every
            second.  */
        self->retry_at[t]
            = now
              + (bf_db_last_status () == BF_DB_RETRY ? S_RETRY_PAUSE_MS : 10 * S_RETRY_PAUSE_MS);
        return;
    }
    if (PQntuples (res) == 0) {
        PQclear (res);
        /*  Nothing due; look again soon when some wait for their next
            attempt.  */
        const char *open_params[] = { s_target_names[t] };
        PGresult *open = s_sql (self, S_SQL_COUNT_OPEN, open_params, PGRES_TUPLES_OK,
                                "counting open commands");
        bool waiting = open && atoll (PQgetvalue (open, 0, 0)) > 0;
        PQclear (open);
        self->pending[t] = waiting;
        if (waiting)
            self->retry_at[t] = now + S_RETRY_PAUSE_MS / 4;
        return;
    }
    const char *id = PQgetvalue (res, 0, 0);
    if (atoi (PQgetvalue (res, 0, 4)) > self->args.command_attempts) {
        /*  Used up its attempts (before a restart, say): end it.  */
        char reason[S_AUDIT_DETAIL_MAX + 64];
        snprintf (reason, sizeof reason, "gave up after %d attempts%s%s",
                  self->args.command_attempts, *PQgetvalue (res, 0, 5) ? "; the last: " : "",
                  PQgetvalue (res, 0, 5));
        if (s_give_up (self, id, reason) != 0)
            self->retry_at[t] = now + S_RETRY_PAUSE_MS;
        PQclear (res);
        return;
    }
    if (s_send_command (self, svc, id, s_target_names[t], PQgetvalue (res, 0, 1),
                        PQgetvalue (res, 0, 2), PQgetvalue (res, 0, 3))
        == 0) {
        snprintf (flight->command_id, sizeof flight->command_id, "%s", id);
        snprintf (flight->instance, sizeof flight->instance, "%s", svc->instance);
        flight->deadline = now + self->args.command_timeout_ms;
        self->forwarded++;
        bf_log_field ("command_id", "%s", id);
        bf_log_field ("verb", "%s", PQgetvalue (res, 0, 1));
        bf_info ("control: command %s %s forwarded to %s", id, PQgetvalue (res, 0, 1),
                 svc->instance);
    } else
        self->retry_at[t] = now + S_RETRY_PAUSE_MS;
    PQclear (res);
}

static void
s_pump_all (s_control_t *self)
{
    for (int t = 0; t < S_TARGETS; t++)
        s_pump (self, t);
}

/*  --- commands from clients ------------------------------------------- */

/*  Answers REJECTED and writes the audit row. Every field that came from
    the client is made printable and cut on a character boundary (an
    invalid UTF-8 verb once failed the INSERT with SQLSTATE 22021 and left
    no audit row; a 1,000,000-byte target was stored whole); when a field
    was cut, the row's detail says so and how long it was. outcome is
    "rejected" or "refused" (rate limit).  */
static void
s_reject_as (s_control_t *self, zframe_t *identity, const char *actor, const Billflow__Command *cmd,
             const char *reason, const char *outcome)
{
    self->rejected++;
    bf_control_metrics_command (cmd->verb ? cmd->verb : "", outcome);
    const char *id
        = cmd->command_id && s_command_id_valid (cmd->command_id) ? cmd->command_id : NULL;
    bool verb_capped = false, target_capped = false, reason_capped = false;
    char verb[S_AUDIT_FIELD_MAX + 8], target[S_AUDIT_FIELD_MAX + 8];
    char why[S_AUDIT_DETAIL_MAX + 8], detail[S_AUDIT_DETAIL_MAX + 160];
    s_clip (verb, sizeof verb, cmd->verb, S_AUDIT_FIELD_MAX, &verb_capped);
    s_clip (target, sizeof target, cmd->target, S_AUDIT_FIELD_MAX, &target_capped);
    s_clip (why, sizeof why, reason, S_AUDIT_DETAIL_MAX, &reason_capped);
    snprintf (detail, sizeof detail, "%s", why);
    if (verb_capped || target_capped || reason_capped) {
        snprintf (detail + strlen (detail), sizeof detail - strlen (detail), " [capped:");
        if (verb_capped)
            snprintf (detail + strlen (detail), sizeof detail - strlen (detail), " verb %zu bytes",
                      strlen (cmd->verb));
        if (target_capped)
            snprintf (detail + strlen (detail), sizeof detail - strlen (detail),
                      " target %zu bytes", strlen (cmd->target));
        if (reason_capped)
            snprintf (detail + strlen (detail), sizeof detail - strlen (detail),
                      " reason %zu bytes", strlen (reason));
        snprintf (detail + strlen (detail), sizeof detail - strlen (detail), "]");
    }
    bf_warn ("control: %s a command from %s (%s %s): %s", outcome, actor, id ? id : "(bad id)",
             *verb ? verb : "(no verb)", detail);
    s_audit (self, actor, id, *target ? target : NULL, *verb ? verb : NULL, NULL, outcome, detail);
    /*  An invalid id is echoed (so the client can match the answer) unless
        it is huge.  */
    const char *echo = cmd->command_id && strlen (cmd->command_id) <= 256 ? cmd->command_id : "";
    s_answer (self, identity, echo, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_REJECTED, NULL, why,
              false, false);
}

static void
s_reject (s_control_t *self, zframe_t *identity, const char *actor, const Billflow__Command *cmd,
          const char *reason)
{
    s_reject_as (self, identity, actor, cmd, reason, "rejected");
}

static void
s_control_status (s_control_t *self, char **json)
{
    json_t *by = json_object ();
    for (int rc = -1; rc > -BF_WIRE_RC_COUNT; rc--)
        if (self->wire.by_rc[-rc])
            json_object_set_new (by, bf_wire_rc_name (rc),
                                 json_integer ((json_int_t)self->wire.by_rc[-rc]));
    json_t *waiting = json_object ();
    for (int t = 0; t < S_TARGETS; t++)
        json_object_set_new (waiting, s_target_names[t],
                             *self->inflight[t].command_id
                                 ? json_string (self->inflight[t].command_id)
                                 : json_null ());
    char stats[4][24] = { "0", "0", "0", "0" };
    if (self->zap) {
        zstr_send (self->zap, "STATS");
        char *a = NULL, *r = NULL, *l = NULL, *e = NULL;
        if (zstr_recvx (self->zap, &a, &r, &l, &e, NULL) == 4) {
            snprintf (stats[0], sizeof stats[0], "%s", a);
            snprintf (stats[1], sizeof stats[1], "%s", r);
            snprintf (stats[2], sizeof stats[2], "%s", l);
            snprintf (stats[3], sizeof stats[3], "%s", e);
        }
        zstr_free (&a);
        zstr_free (&r);
        zstr_free (&l);
        zstr_free (&e);
    }
    int up = 0;
    for (s_service_t *svc = zhashx_first (self->services); svc; svc = zhashx_next (self->services))
        up += s_live (self, svc);
    json_t *doc = json_pack (
        "{s:s, s:s, s:s, s:s, s:{s:I, s:I, s:I, s:o}, s:{s:I, s:I, s:I, s:I},"
        " s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:i, s:o}",
        "instance", self->instance, "role", self->active ? "active" : "standby", "since",
        self->since, "bind", self->bind, "frames", "decoded", (json_int_t)self->wire.decoded,
        "rejected", (json_int_t)self->wire.rejected, "not_allowed", (json_int_t)self->not_allowed,
        "by_reason", by, "keys", "entries", (json_int_t)atoll (stats[3]), "allowed",
        (json_int_t)atoll (stats[0]), "refused", (json_int_t)atoll (stats[1]), "reloads",
        (json_int_t)atoll (stats[2]), "commands", "received", (json_int_t)self->commands,
        "repeated", (json_int_t)self->repeated, "rejected", (json_int_t)self->rejected, "forwarded",
        (json_int_t)self->forwarded, "completed", (json_int_t)self->completed, "queries",
        (json_int_t)self->queries, "services_up", up, "in_flight", waiting);
    /*  The hardening counters (docs/control.md "Limits").  */
    if (doc)
        json_object_set_new (
            doc, "limits",
            json_pack ("{s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:i, s:i, s:i, s:i}", "rate_limited",
                       (json_int_t)self->limited, "busy", (json_int_t)self->busy, "gave_up",
                       (json_int_t)self->gave_up, "services_refused",
                       (json_int_t)self->services_refused, "foreign_replies",
                       (json_int_t)self->foreign_replies, "reports_queued",
                       (int)bf_report_cache_waiting (self->report_cache), "client_rate",
                       self->args.client_rate, "client_burst", self->args.client_burst,
                       "console_rate", self->args.console_rate, "console_burst",
                       self->args.console_burst, "command_attempts", self->args.command_attempts));
    json_t *limits = doc ? json_object_get (doc, "limits") : NULL;
    if (limits)
        json_object_set_new (limits, "on_behalf_refused",
                             json_integer ((json_int_t)self->behalf_refused));
    *json = doc ? json_dumps (doc, JSON_COMPACT) : strdup ("{}");
    json_decref (doc);
}

/*  --- slow queries ---------------------------------------------------- */

/*  The reporter: an actor with its own database connection that computes
    run.report (about a second at a million bills), so that control goes on
    answering everyone else meanwhile. The main thread keeps the newest
    report per period (bf_report_cache.h) and asks for a computation only
    when the period has changed since.
    In:  [period]
    Out: [period]["OK" | "FAILED" | "RETRY"][document or error]  */
typedef struct {
    char conninfo[1024];
} s_reporter_args_t;

static bool
s_slow_query (const char *verb)
{
    const bf_verb_t *entry = bf_verb_find (verb);
    return entry && entry->slow; /* run.report (bf_verbs.c) */
}

static void
s_reporter_actor (zsock_t *pipe, void *args)
{
    s_reporter_args_t self = *(s_reporter_args_t *)args;
    PGconn *conn = NULL;
    zsock_signal (pipe, 0);
    while (true) {
        char *period = zstr_recv (pipe);
        if (!period || !strcmp (period, "$TERM")) {
            zstr_free (&period);
            break;
        }
        bf_log_ctx_set ("verb", "run.report");
        bf_log_ctx_set ("period", "%s", BF_TEXT_SHOW (period, 16));
        json_t *doc = NULL;
        char *json = NULL, err[512] = "";
        int rc = BF_QUERY_RETRY;
        if (!conn || PQstatus (conn) != CONNECTION_OK) {
            PQfinish (conn);
            conn = bf_db_connect (self.conninfo, "billflow-control-report", 0);
        }
        if (!conn)
            bf_err_set (err, sizeof err, "database unavailable");
        else
            rc = bf_report (conn, period, &doc, err, sizeof err);
        if (rc == BF_QUERY_OK) {
            json = json_dumps (doc, JSON_COMPACT | JSON_REAL_PRECISION (15));
            if (!json)
                rc = BF_QUERY_RETRY, bf_err_set (err, sizeof err, "out of memory");
        }
        json_decref (doc);
        zstr_sendx (pipe, period,
                    rc == BF_QUERY_OK      ? "OK"
                    : rc == BF_QUERY_RETRY ? "RETRY"
                                           : "FAILED",
                    rc == BF_QUERY_OK ? json : err, NULL);
        bf_log_ctx_clear ();
        free (json);
        zstr_free (&period);
    }
    PQfinish (conn);
}

/*  A caller queued for a report (bf_report_cache_queue).  */
typedef struct {
    zframe_t *identity;
    char command_id[129];
    char key_name[65];
} s_report_waiter_t;

static void
s_report_waiter_free (void *item)
{
    s_report_waiter_t *waiter = item;
    if (waiter)
        zframe_destroy (&waiter->identity);
    free (waiter);
}

/*  Answers a queued caller (bf_report_cache_answer_fn) and frees it.  */
static void
s_report_answer (void *item, const char *json, const char *error, bool retry, void *arg)
{
    s_control_t *self = arg;
    s_report_waiter_t *waiter = item;
    s_key_t *key = zhashx_lookup (self->keys, waiter->key_name);
    if (key && key->reports > 0)
        key->reports--;
    s_answer (self, waiter->identity, waiter->command_id,
              json ? BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK
                   : BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED,
              json, json ? NULL : error, false, !json && retry);
    s_report_waiter_free (waiter);
}

/*  Asks the reporter for period's report. The hand-off never blocks (the
    reporter's pipe has a send timeout of 0); a failed one fails the
    period's queued callers, "busy".  */
static void
s_report_start (s_control_t *self, const char *period)
{
    if (self->reporter && zstr_send (self->reporter, period) == 0)
        return;
    bf_warn ("control: run.report %s: the reporter takes no more work", period);
    bf_report_cache_done (self->report_cache, period, NULL,
                          "busy: the reporter is busy with other reports; retry in a few seconds",
                          true, s_report_answer, self);
}

static void
s_on_reporter (s_control_t *self)
{
    char *period = NULL, *status = NULL, *text = NULL;
    if (zstr_recvx (self->reporter, &period, &status, &text, NULL) < 0 || !period || !status
        || !text) {
        bf_error ("control: unreadable message from the reporter");
        zstr_free (&period), zstr_free (&status), zstr_free (&text);
        return;
    }
    json_t *doc = NULL;
    const char *error = !strcmp (status, "OK") ? NULL : text;
    if (!error) {
        json_error_t jerr;
        doc = json_loads (text, 0, &jerr);
        if (!doc) {
            bf_error ("control: run.report %s: unreadable document: %s", period, jerr.text);
            error = "run.report: unreadable document";
        }
    }
    if (bf_report_cache_done (self->report_cache, period, doc, error, !strcmp (status, "RETRY"),
                              s_report_answer, self))
        s_report_start (self, period); /* callers that saw a newer version */
    zstr_free (&period), zstr_free (&status), zstr_free (&text);
}

/*  Answers a query "busy": its key (or everyone) has as many slow queries
    queued as it may.  */
static void
s_busy (s_control_t *self, zframe_t *identity, const Billflow__Command *cmd, const char *why)
{
    self->busy++;
    char error[200];
    snprintf (error, sizeof error, "busy: %s; retry in a few seconds", why);
    bf_debug ("control: %s %s answered busy: %s", cmd->verb, cmd->command_id, why);
    s_answer (self, identity, cmd->command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL,
              error, false, true);
}

/*  Queues the caller of a run.report until the period's next report, or
    answers it "busy" when its key (or everyone) has as many queued as it
    may.  */
static void
s_report_queue (s_control_t *self, zframe_t *identity, const char *key_name,
                const Billflow__Command *cmd, const char *period, int64_t version)
{
    s_key_t *key = s_key (self, key_name);
    if (key && key->reports >= S_REPORTS_PER_KEY) {
        s_busy (self, identity, cmd, "this key already has reports queued");
        return;
    }
    if (bf_report_cache_waiting (self->report_cache) >= S_REPORTS_QUEUED) {
        s_busy (self, identity, cmd, "the reporter is busy with other reports");
        return;
    }
    s_report_waiter_t *waiter = calloc (1, sizeof *waiter);
    if (!waiter) {
        s_busy (self, identity, cmd, "out of memory");
        return;
    }
    waiter->identity = zframe_dup (identity);
    snprintf (waiter->command_id, sizeof waiter->command_id, "%s", cmd->command_id);
    snprintf (waiter->key_name, sizeof waiter->key_name, "%s", key_name ? key_name : "");
    if (key)
        key->reports++;
    bf_report_cache_queue (self->report_cache, period, version, waiter);
}

/*  run.report: from the kept report when the period's version has not
    moved since it was computed; otherwise queued for the reporter (wait=1)
    or answered with the kept report marked not current (wait=0).
    Queued callers are bounded per key and in all.  */
static void
s_report (s_control_t *self, zframe_t *identity, const char *key_name, const Billflow__Command *cmd)
{
    char period[8], err[512] = "";
    bool wait = true;
    int64_t version = 0;
    int rc = bf_query_report_args (cmd, period, &wait, err, sizeof err);
    if (rc == BF_QUERY_OK && !self->conn)
        rc = BF_QUERY_RETRY, bf_err_set (err, sizeof err, "database unavailable");
    else if (rc == BF_QUERY_OK)
        rc = bf_report_version (self->conn, period, &version, err, sizeof err);
    if (rc != BF_QUERY_OK) {
        s_answer (self, identity, cmd->command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED,
                  NULL, err, false, rc == BF_QUERY_RETRY);
        return;
    }
    bool start = false;
    char *json = NULL;
    bf_report_cache_rc_t crc
        = bf_report_cache_ask (self->report_cache, period, version, wait, &start, &json);
    if (crc == BF_REPORT_CACHE_ANSWER) {
        s_answer (self, identity, cmd->command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, json,
                  NULL, false, false);
        free (json);
    } else if (crc == BF_REPORT_CACHE_FULL)
        s_busy (self, identity, cmd, "the reporter is busy with other periods");
    else
        s_report_queue (self, identity, key_name, cmd, period, version);
    /*  Last: a hand-off that fails answers the period's queued callers,
        this one included.  */
    if (start)
        s_report_start (self, period);
}

/*  key_name: the key that sent the query, whose slow queries are counted
    (a console's people share their key's).  */
static void
s_query (s_control_t *self, zframe_t *identity, const char *key_name, const Billflow__Command *cmd)
{
    self->queries++;
    bf_control_metrics_query (cmd->verb);
    char *json = NULL, err[512] = "";
    int rc = BF_QUERY_OK;
    if (s_slow_query (cmd->verb) && self->reporter && self->report_cache) {
        s_report (self, identity, key_name, cmd);
        return;
    }
    if (!strcmp (cmd->verb, "control.status"))
        s_control_status (self, &json);
    else if (!self->conn)
        rc = BF_QUERY_RETRY, bf_err_set (err, sizeof err, "database unavailable");
    else
        rc = bf_query (self->conn, &self->query_ctx, cmd, &json, err, sizeof err);
    if (rc == BF_QUERY_OK)
        s_answer (self, identity, cmd->command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK, json,
                  NULL, false, false);
    else
        s_answer (self, identity, cmd->command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED,
                  NULL, err, false, rc == BF_QUERY_RETRY);
    free (json);
}

/*  ACCEPTED: stored, and either waiting for its service to come up
    ({"waiting_for": target}) or queued for / running in a live instance
    ({"queued_for": target}; the outcome follows).  */
static void
s_acknowledge (s_control_t *self, zframe_t *identity, const char *command_id, int t, bool replayed)
{
    char result[96];
    bool live = s_live_instance (self, t) != NULL;
    /*  Just after taking over, services have not found this process yet:
        say nothing for three heartbeat intervals rather than "down"; the
        outcome (or the client's next try) answers.  */
    if (!live && zclock_mono () < self->active_mono + 3LL * self->args.heartbeat_ms)
        return;
    snprintf (result, sizeof result, "{\"%s\":\"%s\"}", live ? "queued_for" : "waiting_for",
              s_target_names[t]);
    s_answer (self, identity, command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_ACCEPTED, result,
              NULL, replayed, false);
}

/*  The outcome of a command_id that is already stored.  */
static void
s_repeated (s_control_t *self, zframe_t *identity, const char *actor, const char *command_id)
{
    const char *params[] = { command_id };
    PGresult *res
        = s_sql (self, S_SQL_STORED_COMMAND, params, PGRES_TUPLES_OK, "reading a stored command");
    if (!res || PQntuples (res) != 1) {
        PQclear (res);
        s_answer (self, identity, command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL,
                  "retryable: database unavailable", false, true);
        return;
    }
    self->repeated++;
    bf_control_metrics_repeated ();
    const char *state = PQgetvalue (res, 0, 0);
    int t = s_target_index (PQgetvalue (res, 0, 3));
    s_audit (self, actor, command_id, PQgetvalue (res, 0, 3), PQgetvalue (res, 0, 4), NULL,
             "repeated", state);
    if (strcmp (state, "RECEIVED") && strcmp (state, "FORWARDED"))
        s_answer (self, identity, command_id, s_status_of_state (state), PQgetvalue (res, 0, 1),
                  PQgetvalue (res, 0, 2), true, false);
    else {
        s_add_waiter (self, command_id, identity, false);
        if (t >= 0)
            s_acknowledge (self, identity, command_id, t, true);
    }
    PQclear (res);
}

/*  A command or query from the key key_name, acting as who (bf_behalf.h):
    audited and stored as who->actor, allowed by who->role. A person's
    verb their role does not allow is refused (outcome "refused"); a
    key's, rejected, as before.  */
static void
s_command (s_control_t *self, zframe_t *identity, const bf_behalf_t *who, const char *key_name,
           const Billflow__Command *cmd)
{
    const char *actor = who->actor, *role = who->role;
    if (!s_command_id_valid (cmd->command_id)) {
        s_reject (self, identity, actor, cmd, "command_id must be 1-128 of A-Z a-z 0-9 . _ : -");
        return;
    }
    const bf_verb_t *verb = bf_verb_find (cmd->verb);
    char reason[256];
    if (!verb) {
        char shown[BF_TEXT_CLIP_SHORT];
        snprintf (reason, sizeof reason, "unknown verb '%s'",
                  bf_text_clip (shown, sizeof shown, cmd->verb, 40));
        s_reject (self, identity, actor, cmd, reason);
        return;
    }
    if (cmd->target && *cmd->target && strcmp (cmd->target, verb->target) != 0) {
        char shown[BF_TEXT_CLIP_SHORT];
        snprintf (reason, sizeof reason, "%s is a %s verb, not '%s'", verb->verb, verb->target,
                  bf_text_clip (shown, sizeof shown, cmd->target, 20));
        s_reject (self, identity, actor, cmd, reason);
        return;
    }
    if (!bf_verb_allowed (verb, role)) {
        snprintf (reason, sizeof reason, "%s '%s' (%s) may not send %s",
                  who->person ? "person" : "key", actor, role, verb->verb);
        s_reject_as (self, identity, actor, cmd, reason, who->person ? "refused" : "rejected");
        return;
    }
    if (verb->query) {
        s_query (self, identity, key_name, cmd);
        return;
    }
    char *args = s_args_json (cmd, reason, sizeof reason);
    if (!args) {
        s_reject (self, identity, actor, cmd, reason);
        return;
    }
    if (!self->conn) {
        bf_control_metrics_command (cmd->verb, "unavailable");
        s_answer (self, identity, cmd->command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED,
                  NULL, "retryable: database unavailable", false, true);
        free (args);
        return;
    }
    /*  Stored before anything else (G6): the command and its audit row in
        one transaction.  */
    int t = s_target_index (verb->target);
    bool stored = false, ok = bf_db_begin (self->conn) == BF_DB_OK;
    if (ok) {
        const char *params[] = { cmd->command_id, actor, verb->target, verb->verb, args };
        PGresult *res
            = s_sql (self, S_SQL_STORE_COMMAND, params, PGRES_COMMAND_OK, "storing a command");
        ok = res != NULL;
        stored = ok && !strcmp (PQcmdTuples (res), "1");
        PQclear (res);
    }
    if (ok && stored) {
        ok = s_audit (self, actor, cmd->command_id, verb->target, verb->verb, args, "received",
                      NULL);
    }
    if (ok)
        ok = bf_db_commit (self->conn) == BF_DB_OK;
    else if (self->conn)
        bf_db_rollback (self->conn);
    free (args);
    if (!ok) {
        bf_control_metrics_command (cmd->verb, "unavailable");
        bool retryable = bf_db_last_status () == BF_DB_RETRY;
        char error[512];
        snprintf (error, sizeof error, "%sthe command could not be stored: %s",
                  retryable ? "retryable: " : "", bf_db_last_message ());
        s_answer (self, identity, cmd->command_id, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED,
                  NULL, error, false, retryable);
        return;
    }
    if (!stored) {
        s_repeated (self, identity, actor, cmd->command_id);
        return;
    }
    bf_fault ("control.after_store");
    self->commands++;
    bf_control_metrics_command (cmd->verb, "stored");
    bf_info ("control: command %s %s from %s stored", cmd->command_id, verb->verb, actor);
    s_add_waiter (self, cmd->command_id, identity, true);
    self->pending[t] = true;
    if (!s_live_instance (self, t))
        bf_info ("control: command %s waits for %s, which is down", cmd->command_id,
                 s_target_names[t]);
    s_acknowledge (self, identity, cmd->command_id, t, false);
    s_pump (self, t);
}

/*  --- answers from services ------------------------------------------- */

/*  True when reply may answer its command: only the instance a command
    was forwarded to answers it, and only a command of its own service
    (svc->service is what its key is bound to). Anything else is counted
    and logged, and the command stays in flight.  */
static bool
s_reply_expected (s_control_t *self, const s_service_t *svc, const Billflow__CommandReply *reply,
                  int t)
{
    const char *id = reply->command_id;
    if (t >= 0 && id && strcmp (self->inflight[t].command_id, id) == 0
        && strcmp (self->inflight[t].instance, svc->instance) == 0)
        return true;
    self->not_allowed++;
    self->foreign_replies++;
    char shown[BF_TEXT_CLIP_SHORT];
    bf_warn ("control: ignored an answer from %s instance %s (key %s) to command %s, which"
             " is not in flight there",
             svc->service, svc->instance, svc->key_name,
             bf_text_clip (shown, sizeof shown, id, 64));
    return false;
}

/*  Nothing of target t is in flight any more: forward its next command.  */
static void
s_next_command (s_control_t *self, int t)
{
    *self->inflight[t].command_id = 0;
    self->pending[t] = true;
    s_pump (self, t);
}

/*  The service could not apply the command for now: the attempt is
    noted and the command forwarded again.  */
static void
s_reply_retry (s_control_t *self, const s_service_t *svc, const char *id, const char *reply_error,
               int t)
{
    bf_warn ("control: %s could not apply command %s for now (%s); it will be forwarded"
             " again",
             svc->instance, id, reply_error);
    char command_id[sizeof self->inflight[t].command_id];
    snprintf (command_id, sizeof command_id, "%s", id);
    *self->inflight[t].command_id = 0;
    self->pending[t] = true;
    s_attempt_failed (self, command_id, reply_error);
    s_pump (self, t);
}

/*  A reply's result as it is stored (malloc'd; NULL for none): a result
    that is not JSON is kept, as a printable string, rather than lost.  */
static char *
s_reply_result (const s_service_t *svc, const Billflow__CommandReply *reply)
{
    if (!reply->result || !*reply->result)
        return NULL;
    char *result = NULL;
    json_error_t jerr;
    json_t *doc = json_loads (reply->result, 0, &jerr);
    if (doc)
        result = strdup (reply->result);
    else {
        bf_warn ("control: %s answered command %s with a result that is not JSON", svc->instance,
                 reply->command_id);
        char shown[1024];
        json_t *wrapped
            = json_pack ("{s:s}", "unparsed",
                         bf_text_clip (shown, sizeof shown, reply->result, sizeof shown - 1));
        result = wrapped ? json_dumps (wrapped, JSON_COMPACT) : NULL;
        json_decref (wrapped);
    }
    json_decref (doc);
    return result;
}

/*  Stores the outcome of command id (state, result, error: "" for none)
    and its audit row in one transaction. Returns the updated row (no row:
    the command was already final), or NULL when it could not be stored
    (rolled back).  */
static PGresult *
s_store_outcome (s_control_t *self, const char *id, const char *state, const char *result,
                 const char *error)
{
    bool ok = bf_db_begin (self->conn) == BF_DB_OK;
    PGresult *res = NULL;
    if (ok) {
        const char *params[] = { id, state, result, *error ? error : NULL };
        res = s_sql (self, S_SQL_STORE_OUTCOME, params, PGRES_TUPLES_OK,
                     "storing a command's outcome");
        ok = res != NULL;
    }
    if (ok && PQntuples (res) == 1) {
        ok = s_audit (self, PQgetvalue (res, 0, 0), id, PQgetvalue (res, 0, 1),
                      PQgetvalue (res, 0, 2), PQgetvalue (res, 0, 3),
                      !strcmp (state, "DONE") ? "done" : "failed", *error ? error : NULL);
    }
    if (ok)
        ok = bf_db_commit (self->conn) == BF_DB_OK;
    else
        bf_db_rollback (self->conn);
    if (!ok)
        PQclear (res);
    return ok ? res : NULL;
}

/*  An answer that can never be stored (SQLSTATE class 22/23: a result
    PostgreSQL refuses) would be asked for again forever: the command ends
    FAILED, saying so. Otherwise (the database is away) it stays in
    flight, times out and is forwarded again; the service answers with
    what it recorded.  */
static void
s_outcome_not_stored (s_control_t *self, const s_service_t *svc, const char *id, int t)
{
    if (bf_db_last_status () != BF_DB_FAIL || !self->conn || PQstatus (self->conn) != CONNECTION_OK)
        return;
    char reason[256];
    snprintf (reason, sizeof reason, "the answer of %s could not be stored (SQLSTATE %s)",
              svc->instance, bf_db_last_sqlstate ());
    if (s_give_up (self, id, reason) == 0)
        s_next_command (self, t);
}

/*  Answers everyone waiting for command id: with the outcome just stored
    (stored: its row), or, when it was already final (a late duplicate
    answer), with what the store holds.  */
static void
s_answer_outcome (s_control_t *self, const char *id, const PGresult *stored, const char *state,
                  const char *error)
{
    if (PQntuples (stored) == 1) {
        self->completed++;
        bf_control_metrics_command (PQgetvalue (stored, 0, 2), state);
        bf_log_field ("verb", "%s", PQgetvalue (stored, 0, 2));
        bf_info ("control: command %s %s: %s%s%s", id, PQgetvalue (stored, 0, 2), state,
                 *error ? ": " : "", error);
        bf_fault ("control.before_answer");
        s_answer_waiters (self, id, state, PQgetvalue (stored, 0, 4), PQgetvalue (stored, 0, 5));
        return;
    }
    bf_debug ("control: late answer for command %s ignored", id);
    const char *params[] = { id };
    PGresult *res
        = s_sql (self, S_SQL_STORED_COMMAND, params, PGRES_TUPLES_OK, "reading a stored command");
    if (res && PQntuples (res) == 1)
        s_answer_waiters (self, id, PQgetvalue (res, 0, 0), PQgetvalue (res, 0, 1),
                          PQgetvalue (res, 0, 2));
    PQclear (res);
}

/*  A service's answer to the command in flight there: checked, then
    either forwarded again (retryable) or stored with its audit row and
    sent to everyone waiting; then target's next command goes.  */
static void
s_service_reply (s_control_t *self, s_service_t *svc, const Billflow__CommandReply *reply)
{
    const char *id = reply->command_id;
    int t = s_target_index (svc->service);
    if (!s_reply_expected (self, svc, reply, t))
        return;
    bool retry = reply->retryable
                 || (reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED && reply->error
                     && !strncmp (reply->error, "retryable:", 10));
    char reply_error[S_AUDIT_DETAIL_MAX + 8];
    bf_text_clip (reply_error, sizeof reply_error, reply->error, S_AUDIT_DETAIL_MAX);
    if (retry) {
        s_reply_retry (self, svc, id, reply_error, t);
        return;
    }
    const char *state
        = reply->status == BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK ? "DONE" : "FAILED";
    char error[512] = "";
    if (reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK
        && reply->status != BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED)
        snprintf (error, sizeof error, "service answered with status %d", (int)reply->status);
    else
        snprintf (error, sizeof error, "%s", reply_error);
    char *result = s_reply_result (svc, reply);
    PGresult *stored = s_store_outcome (self, id, state, result, error);
    free (result);
    if (!stored) {
        s_outcome_not_stored (self, svc, id, t);
        return;
    }
    s_answer_outcome (self, id, stored, state, error);
    PQclear (stored);
    s_next_command (self, t);
}

/*  --- registration and heartbeats ------------------------------------- */

static bool
s_instance_valid (const char *text)
{
    size_t len = text ? strlen (text) : 0;
    if (len == 0 || len >= 128)
        return false;
    for (const char *p = text; *p; p++)
        if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
            return false;
    return true;
}

static s_service_t *
s_touch_service (s_control_t *self, zframe_t *identity, const char *service, const char *instance,
                 const char *key_name, bool *is_new)
{
    s_service_t *svc = zhashx_lookup (self->services, instance);
    *is_new = svc == NULL;
    if (!svc) {
        svc = calloc (1, sizeof *svc);
        snprintf (svc->instance, sizeof svc->instance, "%s", instance);
        zhashx_insert (self->services, instance, svc);
    }
    snprintf (svc->service, sizeof svc->service, "%s", service);
    snprintf (svc->key_name, sizeof svc->key_name, "%s", key_name);
    if (!svc->identity || !zframe_eq (svc->identity, identity)) {
        zframe_destroy (&svc->identity);
        svc->identity = zframe_dup (identity);
    }
    svc->last_seen = zclock_mono ();
    bf_control_metrics_instance (service, instance, true);
    return svc;
}

/*  True when the key of peer is bound (in the allowed list) to service
    and its instance glob matches instance. Otherwise the frame is refused:
    counted, logged once per key per 10 s, audited (outcome "refused") once
    per key per second.  */
static bool
s_binding_ok (s_control_t *self, const s_peer_t *peer, const char *what, const char *service,
              const char *instance)
{
    char why[256];
    if (!*peer->service)
        snprintf (why, sizeof why,
                  "key %s is not bound to a service in the allowed list (add SERVICE or"
                  " SERVICE:INSTANCE-GLOB after its key)",
                  peer->actor);
    else if (strcmp (peer->service, service) != 0)
        snprintf (why, sizeof why, "key %s is bound to %s, not %s", peer->actor, peer->service,
                  service);
    else if (*peer->pattern && fnmatch (peer->pattern, instance, 0) != 0)
        snprintf (why, sizeof why, "key %s may register %s instances '%s' only", peer->actor,
                  service, peer->pattern);
    else
        return true;
    self->not_allowed++;
    self->services_refused++;
    s_key_t *key = s_key (self, peer->actor);
    int64_t now = zclock_mono ();
    if (key && (!key->warned || now - key->warned >= S_KEY_WARN_EVERY_MS)) {
        bf_warn ("control: refused %s of %s instance %s: %s", what, service, instance, why);
        key->warned = now;
    }
    if (key && (!key->audited || now - key->audited >= S_KEY_AUDIT_EVERY_MS)) {
        char detail[400];
        snprintf (detail, sizeof detail, "%s of %s instance %s: %s", what, service, instance, why);
        s_audit (self, peer->actor, NULL, service, NULL, NULL, "refused", detail);
        key->audited = now;
    }
    return false;
}

static void
s_register (s_control_t *self, zframe_t *identity, const s_peer_t *peer,
            const Billflow__ServiceRegister *reg)
{
    const char *key_name = peer->actor;
    int t = s_target_index (reg->service);
    if (t < 0 || !s_instance_valid (reg->instance_id)) {
        char service[BF_TEXT_CLIP_SHORT], instance[BF_TEXT_CLIP_SHORT];
        bf_warn ("control: refused a registration from key %s: service '%s', instance '%s'",
                 key_name, bf_text_clip (service, sizeof service, reg->service, 20),
                 bf_text_clip (instance, sizeof instance, reg->instance_id, 40));
        self->not_allowed++;
        return;
    }
    if (!s_binding_ok (self, peer, "a registration", reg->service, reg->instance_id))
        return;
    bool is_new;
    s_touch_service (self, identity, reg->service, reg->instance_id, key_name, &is_new);
    /*  A restarted instance lost what it was given.  */
    if (!strcmp (self->inflight[t].instance, reg->instance_id))
        *self->inflight[t].command_id = 0;
    json_t *verbs = json_array ();
    for (size_t i = 0; i < reg->n_verbs; i++) {
        const bf_verb_t *v = bf_verb_find (reg->verbs[i]);
        if (!v || strcmp (v->target, reg->service) != 0) {
            char shown[BF_TEXT_CLIP_SHORT];
            bf_warn ("control: %s registers verb '%s', which control does not know for %s",
                     reg->instance_id, bf_text_clip (shown, sizeof shown, reg->verbs[i], 40),
                     reg->service);
            continue;
        }
        json_array_append_new (verbs, json_string (reg->verbs[i]));
    }
    char *verbs_text = json_dumps (verbs, JSON_COMPACT);
    json_decref (verbs);
    char pid[16], version[S_AUDIT_FIELD_MAX + 8];
    snprintf (pid, sizeof pid, "%u", reg->pid);
    const char *params[]
        = { reg->instance_id,
            reg->service,
            key_name,
            pid,
            bf_text_clip (version, sizeof version, reg->version, S_AUDIT_FIELD_MAX),
            verbs_text ? verbs_text : "[]" };
    if (self->conn) {
        PGresult *res
            = s_sql (self, S_SQL_REGISTER, params, PGRES_COMMAND_OK, "recording a registration");
        PQclear (res);
    }
    free (verbs_text);
    bf_info ("control: %s instance %s registered (key %s, pid %u)", reg->service, reg->instance_id,
             key_name, reg->pid);
    self->pending[t] = true;
    s_pump (self, t);
}

static void
s_heartbeat (s_control_t *self, zframe_t *identity, const s_peer_t *peer,
             const Billflow__ServiceHeartbeat *hb)
{
    const char *key_name = peer->actor;
    int t = s_target_index (hb->service);
    if (t < 0 || !s_instance_valid (hb->instance_id)) {
        self->not_allowed++;
        return;
    }
    if (!s_binding_ok (self, peer, "a heartbeat", hb->service, hb->instance_id))
        return;
    bool is_new;
    s_touch_service (self, identity, hb->service, hb->instance_id, key_name, &is_new);
    if (is_new)
        bf_info ("control: %s instance %s is up (heartbeat; key %s)", hb->service, hb->instance_id,
                 key_name);
    /*  Keep the state only when it is a JSON object.  */
    json_error_t jerr;
    json_t *state
        = hb->state_json && *hb->state_json ? json_loads (hb->state_json, 0, &jerr) : NULL;
    const char *state_text
        = json_is_object (state) && strlen (hb->state_json) <= S_STATE_MAX ? hb->state_json : "{}";
    if (self->conn) {
        const char *params[] = { hb->instance_id, hb->service, key_name, state_text };
        PGresult *res
            = s_sql (self, S_SQL_HEARTBEAT, params, PGRES_COMMAND_OK, "recording a heartbeat");
        PQclear (res);
    }
    json_decref (state);
    /*  Answer, so the service knows control is there.  */
    Billflow__ServiceHeartbeat beat = BILLFLOW__SERVICE_HEARTBEAT__INIT;
    char event_id[37];
    beat.schema_version = BF_SCHEMA_VERSION;
    beat.event_id = bf_uuid_v4 (event_id);
    beat.service = "control";
    beat.instance_id = self->instance;
    beat.sent_at_ms = zclock_time ();
    beat.state_json = "{}";
    s_send_to (self, identity, BF_MSG_SVC_HB, &beat.base);
    if (is_new)
        self->pending[t] = true;
    s_pump (self, t);
}

/*  --- the ROUTER ------------------------------------------------------ */

static void
s_dropped (s_control_t *self, const char *who, const char *why)
{
    self->dropped_since_warning++;
    int64_t now = zclock_mono ();
    if (now - self->last_drop_warning >= S_WARN_EVERY_MS) {
        bf_warn ("control: dropped %llu bad frame(s); latest from %s: %s",
                 (unsigned long long)self->dropped_since_warning, who, why);
        self->dropped_since_warning = 0;
        self->last_drop_warning = now;
    }
}

/*  A frame over its key's rate: a command or query is answered FAILED,
    retryable, with an error that starts "busy:" and says when to retry
    (billctl backs off and asks again); anything else is dropped. Counted
    (control.status "limits"), logged once per key per 10 s with the
    count, and for commands audited (outcome "refused") at most once per
    key per second, with how many were refused since the last row.  */
static void
s_limited (s_control_t *self, zframe_t *identity, s_key_t *key, const char *actor,
           const Billflow__Command *cmd)
{
    self->limited++;
    key->limited++;
    key->limited_unaudited++;
    key->limited_unlogged++;
    int64_t now = zclock_mono ();
    if (!key->warned || now - key->warned >= S_KEY_WARN_EVERY_MS) {
        bf_warn ("control: key %s is over its rate (%d/s, burst %d): %llu frame(s) refused since"
                 " the last warning",
                 actor, key->bucket.rate, key->bucket.burst, (unsigned long long)key->limited_unlogged);
        key->warned = now;
        key->limited_unlogged = 0;
    }
    if (!cmd)
        return;
    bf_control_metrics_command (cmd->verb ? cmd->verb : "", "rate_limited");
    char error[160];
    int wait_ms = bf_bucket_wait_ms (&key->bucket);
    snprintf (error, sizeof error,
              "busy: too many requests from key '%s' (at most %d a second); retry in %d ms", actor,
              key->bucket.rate, wait_ms);
    const bf_verb_t *verb = bf_verb_find (cmd->verb);
    if ((!verb || !verb->query) && (!key->audited || now - key->audited >= S_KEY_AUDIT_EVERY_MS)) {
        char detail[96];
        snprintf (detail, sizeof detail, "rate limited: %llu command(s) refused since the last row",
                  (unsigned long long)key->limited_unaudited);
        bool capped = false;
        char verb_text[S_AUDIT_FIELD_MAX + 8];
        s_clip (verb_text, sizeof verb_text, cmd->verb, S_AUDIT_FIELD_MAX, &capped);
        s_audit (self, actor,
                 cmd->command_id && s_command_id_valid (cmd->command_id) ? cmd->command_id : NULL,
                 verb ? verb->target : NULL, *verb_text ? verb_text : NULL, NULL, "refused",
                 detail);
        key->audited = now;
        key->limited_unaudited = 0;
    }
    s_answer_hint (self, identity,
                   cmd->command_id && s_command_id_valid (cmd->command_id) ? cmd->command_id : "",
                   BILLFLOW__COMMAND_REPLY__STATUS__STATUS_FAILED, NULL, error, false, true,
                   wait_ms);
}

/*  A command or query that passed the rate limit and the size check:
    resolves who it acts as (bf_behalf.h) and hands it on. on_behalf_ fields
    from a key that is not a console key, or malformed ones, are refused:
    counted (control.status -> limits.on_behalf_refused), logged and
    audited under the key's own name, outcome "refused".  */
static void
s_on_command (s_control_t *self, zframe_t *identity, const char *key_name, const char *role,
              const Billflow__Command *cmd)
{
    bf_behalf_t who;
    char why[256];
    if (bf_behalf_resolve (key_name, role, cmd->on_behalf_of, cmd->on_behalf_role, &who, why,
                           sizeof why)
        != 0) {
        self->behalf_refused++;
        s_reject_as (self, identity, key_name, cmd, why, "refused");
    } else if (!strcmp (who.role, "operator") || !strcmp (who.role, "viewer")) {
        if (who.person) {
            bf_log_ctx_set ("actor", "%s", who.actor);
            bf_log_ctx_set ("key", "%s", key_name);
        }
        s_command (self, identity, &who, key_name, cmd);
    } else
        s_reject (self, identity, key_name, cmd, "this key's role may not send commands");
}

static void
s_on_router (s_control_t *self)
{
    zmsg_t *msg = zmsg_recv (self->router);
    if (!msg)
        return;
    zframe_t *identity = zmsg_pop (msg);
    zframe_t *first = zmsg_first (msg);
    const char *name = first ? zframe_meta (first, "User-Id") : NULL;
    const char *role = first ? zframe_meta (first, "X-Role") : NULL;
    const char *bound = first ? zframe_meta (first, BF_CURVE_SERVICE_PROPERTY) : NULL;
    const char *glob = first ? zframe_meta (first, BF_CURVE_INSTANCE_PROPERTY) : NULL;
    s_peer_t peer;
    snprintf (peer.actor, sizeof peer.actor, "%s", name && *name ? name : "unknown");
    snprintf (peer.role, sizeof peer.role, "%s", role ? role : "");
    snprintf (peer.service, sizeof peer.service, "%s", bound ? bound : "");
    snprintf (peer.pattern, sizeof peer.pattern, "%s", glob ? glob : "");
    const char *actor = peer.actor, *role_copy = peer.role;
    bf_log_ctx_set ("actor", "%s", actor);
    zframe_t *last = zmsg_last (msg);
    size_t payload = last ? zframe_size (last) : 0;
    bf_wire_msg_t in = BF_WIRE_MSG_INIT;
    char err[256];
    int rc = identity ? bf_wire_recv (&msg, BF_WIRE_MAX_PAYLOAD, &in, err, sizeof err)
                      : BF_WIRE_EFRAMES;
    zmsg_destroy (&msg);
    bf_wire_stats_count (&self->wire, rc);
    if (rc != BF_WIRE_OK) {
        bf_control_metrics_malformed (identity ? bf_wire_rc_name (rc) : "no_identity");
        s_dropped (self, actor, identity ? err : "no routing identity");
        zframe_destroy (&identity);
        return;
    }
    bool service = !strcmp (role_copy, "service");
    const Billflow__Command *cmd = bf_wire_command (&in);
    const Billflow__CommandReply *reply = bf_wire_command_reply (&in);
    /*  Every line about this message carries what it is; the caller
        clears the context (docs/observability.md, "Logs").  */
    if (cmd || reply)
        bf_log_ctx_set ("command_id", "%s",
                        BF_TEXT_SHOW (cmd ? cmd->command_id : reply->command_id, 128));
    if (cmd)
        bf_log_ctx_set ("verb", "%s", BF_TEXT_SHOW (cmd->verb, 64));
    const Billflow__ServiceRegister *reg = bf_wire_service_register (&in);
    const Billflow__ServiceHeartbeat *hb = bf_wire_service_heartbeat (&in);
    /*  Every key gets client_rate frames a second (client_burst at once),
        a console key console_rate (console_burst): a flood is answered
        "busy" at the cost of a reply, never with database work.  */
    s_key_t *key = s_key (self, actor);
    if (key)
        s_key_limits (self, key, role_copy);
    if (key && !bf_bucket_take (&key->bucket, zclock_mono ())) {
        s_limited (self, identity, key, actor, cmd);
        bf_wire_msg_reset (&in);
        zframe_destroy (&identity);
        return;
    }
    if (cmd && payload > (size_t)self->args.max_request_bytes) {
        char reason[128];
        snprintf (reason, sizeof reason, "request too large: %zu bytes (at most %d)", payload,
                  self->args.max_request_bytes);
        s_reject (self, identity, actor, cmd, reason);
    } else if (cmd)
        s_on_command (self, identity, actor, role_copy, cmd);
    else if (service && reg)
        s_register (self, identity, &peer, reg);
    else if (service && hb)
        s_heartbeat (self, identity, &peer, hb);
    else if (service && reply) {
        s_service_t *svc = s_service_by_identity (self, identity);
        if (svc)
            s_service_reply (self, svc, reply);
        else {
            self->not_allowed++;
            self->foreign_replies++;
            char shown[BF_TEXT_CLIP_SHORT];
            bf_warn ("control: answer to command %s from an instance that is not registered"
                     " (key %s) ignored; the command will be forwarded again",
                     bf_text_clip (shown, sizeof shown, reply->command_id, 64), actor);
        }
    } else {
        self->not_allowed++;
        char why[96];
        snprintf (why, sizeof why, "%s frame not accepted from role '%s'",
                  bf_msg_type_name (in.type), role_copy);
        s_dropped (self, actor, why);
    }
    bf_wire_msg_reset (&in);
    zframe_destroy (&identity);
}

/*  --- election -------------------------------------------------------- */

static void
s_rebuild_poller (s_control_t *self)
{
    zpoller_destroy (&self->poller);
    self->poller = zpoller_new (self->pipe, self->zap, self->reporter, NULL);
    if (self->router)
        zpoller_add (self->poller, self->router);
    zpoller_set_nonstop (self->poller, true);
}

static void
s_step_down (s_control_t *self, const char *why)
{
    if (self->active)
        bf_warn ("control %s: no longer active: %s", self->instance, why);
    self->active = false;
    zsock_destroy (&self->router);
    zhashx_purge (self->services);
    bf_control_metrics_instances_clear ();
    zhashx_purge (self->waiters);
    for (int t = 0; t < S_TARGETS; t++)
        *self->inflight[t].command_id = 0;
    PQfinish (self->conn);
    self->conn = NULL;
    self->prepared = 0;
    s_rebuild_poller (self);
}

static void
s_become_active (s_control_t *self)
{
    self->router = zsock_new (ZMQ_ROUTER);
    if (self->router) {
        bf_curve_server (self->router, self->cert);
        zsock_set_maxmsgsize (self->router, (int)S_MAX_MSG);
        zsock_set_linger (self->router, 0);
        /*  A reply to a client that does not read is dropped when its
            queue is full (EAGAIN), never waited for; a reply to a peer
            that is gone fails loudly (EHOSTUNREACH).  */
        zsock_set_sndtimeo (self->router, 0);
        zsock_set_router_mandatory (self->router, 1);
        /*  A client gone silent is dropped with its queue (bf_zmq.h).  */
        bf_zmq_heartbeat (self->router);
    }
    if (!self->router || zsock_bind (self->router, "%s", self->bind) < 0) {
        bf_error ("control %s: won the election but cannot bind %s: %s; standing by",
                  self->instance, self->bind, zmq_strerror (zmq_errno ()));
        zsock_destroy (&self->router);
        PGresult *res
            = s_sql (self, S_SQL_UNLOCK, NULL, PGRES_TUPLES_OK, "giving up the control lock");
        PQclear (res);
        return;
    }
    self->active = true;
    self->active_mono = zclock_mono ();
    self->next_sample = 0;
    self->next_prune = 0;
    for (int t = 0; t < S_TARGETS; t++) {
        self->pending[t] = true;
        self->retry_at[t] = 0;
    }
    const char *params[] = { self->instance, self->bind };
    PGresult *res = s_sql (self, S_SQL_RECORD_LEADER, params, PGRES_TUPLES_OK,
                           "recording the active control");
    if (res && PQntuples (res) == 1)
        snprintf (self->since, sizeof self->since, "%s", PQgetvalue (res, 0, 0));
    PQclear (res);
    s_rebuild_poller (self);
    bf_info ("control %s: active, listening on %s", self->instance, self->bind);
}

static void
s_election (s_control_t *self)
{
    if (self->active) {
        PGresult *res
            = self->conn ? s_sql (self, S_SQL_PING, NULL, PGRES_TUPLES_OK, "checking the database")
                         : NULL;
        if (!res || PQstatus (self->conn) != CONNECTION_OK)
            s_step_down (self, "lost the database connection (and with it the lock)");
        PQclear (res);
        return;
    }
    if (!self->conn || PQstatus (self->conn) != CONNECTION_OK) {
        PQfinish (self->conn);
        self->conn = bf_db_connect (self->conninfo, "billflow-control", 0);
        self->prepared = 0;
        if (!self->conn)
            return;
        /*  Under a partition this process must give up before the server
            frees the lock for a standby (bf_dbfence.h).  */
        bf_db_fence (self->conn, S_FENCE_FACTOR * self->args.election_ms);
    }
    PGresult *res
        = s_sql (self, S_SQL_TRY_LOCK, NULL, PGRES_TUPLES_OK, "competing for the control lock");
    bool won = res && PQgetvalue (res, 0, 0)[0] == 't';
    PQclear (res);
    if (won)
        s_become_active (self);
}

/*  --- this process's row and the rate samples -------------------------- */

/*  Every heartbeat interval, active or standby: this process's row of
    control_instance, so services.list shows every control and which one
    leads. A failure is logged (bf_db) and tried again next interval.  */
static void
s_beat (s_control_t *self, int64_t now)
{
    if (now < self->next_beat || !self->conn || PQstatus (self->conn) != CONNECTION_OK)
        return;
    self->next_beat = now + (self->args.heartbeat_ms > 0 ? self->args.heartbeat_ms : 1000);
    char pid[16];
    snprintf (pid, sizeof pid, "%d", (int)getpid ());
    const char *params[] = { self->instance, pid, self->bind };
    PQclear (s_sql (self, S_SQL_CONTROL_BEAT, params, PGRES_COMMAND_OK,
                    "recording this control process"));
}

/*  While active: the runs' rate samples once a second, and once an hour
    (and on becoming active) the samples older than the retention.  */
static void
s_sample_rates (s_control_t *self, int64_t now)
{
    if (!self->active || !self->conn || PQstatus (self->conn) != CONNECTION_OK)
        return;
    if (now >= self->next_sample) {
        self->next_sample = now + BF_RATESAMPLER_INTERVAL_MS;
        bf_ratesampler_sample (self->conn, BF_RATESAMPLER_GAP_MS);
    }
    if (now >= self->next_prune) {
        self->next_prune = now + 3600 * 1000;
        bf_ratesampler_prune (self->conn, self->args.rates_retention_days);
    }
}

/*  --- the actor ------------------------------------------------------- */

static void
s_on_zap (s_control_t *self)
{
    zmsg_t *msg = zmsg_recv (self->zap);
    if (!msg)
        return;
    char *kind = zmsg_popstr (msg);
    if (kind && !strcmp (kind, "REFUSED")) {
        char *key = zmsg_popstr (msg), *address = zmsg_popstr (msg), *mechanism = zmsg_popstr (msg);
        char detail[256];
        snprintf (detail, sizeof detail, "key %s from %s (%s) is not in the allowed list",
                  key ? key : "-", address ? address : "?", mechanism ? mechanism : "?");
        self->refused++;
        bf_control_metrics_curve_refused ();
        if (self->active)
            s_audit (self, "unknown", NULL, NULL, NULL, NULL, "refused", detail);
        zstr_free (&key);
        zstr_free (&address);
        zstr_free (&mechanism);
    }
    zstr_free (&kind);
    zmsg_destroy (&msg);
}

/*  True when the ZAP actor answers STATS (an actor that ended answers with
    its exit signal, or not at all).  */
static bool
s_zap_alive (zactor_t *zap)
{
    zsock_set_rcvtimeo (zactor_sock (zap), 5000);
    zstr_send (zap, "STATS");
    zmsg_t *msg = zmsg_recv (zap);
    bool alive = msg && zmsg_signal (msg) < 0 && zmsg_size (msg) == 4;
    zmsg_destroy (&msg);
    zsock_set_rcvtimeo (zactor_sock (zap), -1);
    return alive;
}

static bool
s_on_pipe (s_control_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command)
        return false;
    bool go_on = strcmp (command, "$TERM") != 0;
    if (!strcmp (command, "STATUS"))
        zstr_send (self->pipe, self->active ? "active" : "standby");
    free (command);
    return go_on;
}

void
bf_control_actor (zsock_t *pipe, void *args)
{
    s_control_t *self = calloc (1, sizeof *self);
    self->pipe = pipe;
    self->args = *(const bf_control_args_t *)args;
    snprintf (self->conninfo, sizeof self->conninfo, "%s",
              self->args.conninfo ? self->args.conninfo : "");
    snprintf (self->bind, sizeof self->bind, "%s", self->args.bind);
    snprintf (self->instance, sizeof self->instance, "%s", self->args.instance);
    snprintf (self->allowed_keys, sizeof self->allowed_keys, "%s", self->args.allowed_keys);
    if (self->args.client_rate <= 0)
        self->args.client_rate = S_CLIENT_RATE;
    if (self->args.client_burst <= 0)
        self->args.client_burst = S_CLIENT_BURST;
    if (self->args.console_rate <= 0)
        self->args.console_rate = S_CONSOLE_RATE;
    if (self->args.console_burst <= 0)
        self->args.console_burst = S_CONSOLE_BURST;
    if (self->args.command_attempts <= 0)
        self->args.command_attempts = S_COMMAND_ATTEMPTS;
    if (self->args.max_request_bytes <= 0)
        self->args.max_request_bytes = S_MAX_REQUEST_BYTES;
    self->query_ctx.pii = self->args.pii;
    self->query_ctx.heartbeat_ms = self->args.heartbeat_ms;
    char err[512];
    self->cert = bf_curve_load_secret (self->args.key_file, err, sizeof err);
    if (!self->cert)
        bf_error ("control: key file: %s", err);
    bf_zap_args_t zargs = { .allowed_keys = self->allowed_keys };
    self->zap = self->cert ? zactor_new (bf_zap_actor, &zargs) : NULL;
    /*  zactor_new does not report a failed start. Without a running ZAP
        handler a CURVE server would admit any key, so make sure.  */
    if (self->zap && !s_zap_alive (self->zap)) {
        bf_error ("control: the allowed-keys handler did not start (see above)");
        self->zap = NULL; /* it ended; control does not start */
    }
    if (!self->zap) {
        zcert_destroy (&self->cert);
        free (self);
        zsock_signal (pipe, 1);
        return;
    }
    s_reporter_args_t rargs;
    snprintf (rargs.conninfo, sizeof rargs.conninfo, "%s", self->conninfo);
    self->reporter = zactor_new (s_reporter_actor, &rargs);
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, s_service_destroy);
    self->waiters = zhashx_new ();
    zhashx_set_destructor (self->waiters, s_waiters_destroy);
    self->keys = zhashx_new ();
    zhashx_set_destructor (self->keys, s_free_item);
    self->report_cache = bf_report_cache_new (S_REPORT_PERIODS, s_report_waiter_free);
    /*  A hand-off to the reporter fails at once rather than block the
        main loop (the queue is bounded well below the pipe's HWM).  */
    if (self->reporter)
        zsock_set_sndtimeo (zactor_sock (self->reporter), 0);
    s_rebuild_poller (self);
    zsock_signal (pipe, 0);
    bf_info ("control %s: started; competing to become active", self->instance);

    bool running = true;
    while (running) {
        int64_t now = zclock_mono ();
        if (now >= self->next_election) {
            s_election (self);
            self->next_election = zclock_mono () + self->args.election_ms;
        }
        if (self->active) {
            s_expire_services (self);
            s_pump_all (self);
        }
        s_beat (self, zclock_mono ());
        s_sample_rates (self, zclock_mono ());
        bf_control_metrics_tick (self->conn, self->active, self->args.metrics_ms);
        int64_t wait = self->next_election - zclock_mono ();
        if (wait > 200)
            wait = 200;
        void *which = bf_health_zpoller_wait ("control", self->poller, wait > 0 ? (int)wait : 0);
        if (which == pipe)
            running = s_on_pipe (self);
        else if (which == self->zap)
            s_on_zap (self);
        else if (which == self->reporter)
            s_on_reporter (self);
        else if (self->router && which == self->router) {
            /*  Drain what is queued, a bounded number at a time.  */
            for (int i = 0; i < 256 && self->router && (zsock_events (self->router) & ZMQ_POLLIN);
                 i++) {
                s_on_router (self);
                bf_log_ctx_clear ();
            }
        }
    }
    self->active = false;
    zsock_destroy (&self->router);
    zpoller_destroy (&self->poller);
    zactor_destroy (&self->reporter);
    zactor_destroy (&self->zap);
    zhashx_destroy (&self->services);
    zhashx_destroy (&self->waiters);
    zhashx_destroy (&self->keys);
    bf_report_cache_destroy (&self->report_cache);
    zcert_destroy (&self->cert);
    PQfinish (self->conn);
    free (self);
}

void
bf_control_args_from_config (bf_control_args_t *args, const bf_config_t *config,
                             const char *instance, const bf_pii_t *pii)
{
    memset (args, 0, sizeof *args);
    args->conninfo = bf_config_str (config, "db.conninfo");
    args->bind = bf_config_str (config, "control.bind");
    args->key_file = bf_config_str (config, "control.key_file");
    args->allowed_keys = bf_config_str (config, "control.allowed_keys");
    args->instance = instance;
    args->heartbeat_ms = (int)bf_config_int (config, "control.heartbeat_ms");
    args->command_timeout_ms = (int)bf_config_int (config, "control.command_timeout_ms");
    args->election_ms = (int)bf_config_int (config, "control.election_ms");
    args->pii = pii;
    args->client_rate = (int)bf_config_int (config, "control.client_rate");
    args->client_burst = (int)bf_config_int (config, "control.client_burst");
    args->console_rate = (int)bf_config_int (config, "control.console_rate");
    args->console_burst = (int)bf_config_int (config, "control.console_burst");
    args->command_attempts = (int)bf_config_int (config, "control.command_attempts");
    args->max_request_bytes = (int)bf_config_int (config, "control.max_request_bytes");
    args->metrics_ms = (int)bf_config_int (config, "control.metrics_ms");
    args->rates_retention_days = (int)bf_config_int (config, "control.rates_retention_days");
}
