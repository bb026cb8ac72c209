/*  bf_query — control's queries (see bf_query.h).

    Each query is one SQL statement that builds its document with
    json_build_object / json_agg, so PostgreSQL does the escaping and every
    figure of a document comes from one snapshot. The text then goes through
    jansson: the failures list adds its masked contacts there, and every
    document leaves compact.

    Statements run unprepared (PQexecParams): optional filters are written
    as "$1::text IS NULL OR col = $1", which only a plan made for the actual
    values turns into index conditions, and the unnamed statement is always
    planned for them.  */

#include <jansson.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_behalf.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_log.h"
#include "bf_query.h"
#include "bf_rates.h"
#include "bf_report.h"
#include "bf_tplquery.h"
#include "bf_text.h"
#include "bf_verbs.h"

#define S_LIMIT_DEFAULT 20
#define S_LIMIT_MAX     500

/*  A timestamptz as RFC 3339 UTC with milliseconds; NULL stays NULL.  */
#define S_TS(x) "to_char ((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

//  --------------------------------------------------------------------------
//  Arguments

/*  Argument keys, as bits of a verb's accepted set.  */
enum {
    S_PERIOD = 1 << 0,
    S_RUN_ID = 1 << 1,
    S_LIMIT = 1 << 2,
    S_CHANNEL = 1 << 3,
    S_STATE = 1 << 4,
    S_TARGET = 1 << 5,
    S_COMMAND_ID = 1 << 6,
    S_ACTOR = 1 << 7,
    S_SUBSCRIBER_ID = 1 << 8,
    S_BILL_ID = 1 << 9,
    S_EMAIL = 1 << 10,
    S_PHONE = 1 << 11,
    S_WAIT = 1 << 12,
    S_VERB = 1 << 13,
    S_SINCE = 1 << 14,
    S_UNTIL = 1 << 15,
    S_BEFORE_ID = 1 << 16,      /* audit.list: an audit row's id */
    S_BEFORE_COMMAND = 1 << 17, /* commands.list: a command id, named before_id */
    S_OUTCOME = 1 << 18,        /* audit.list: an outcome, named state */
};

static const struct {
    const char *name;
    unsigned bit;
} s_keys[] = {
    { "period", S_PERIOD },
    { "run_id", S_RUN_ID },
    { "limit", S_LIMIT },
    { "channel", S_CHANNEL },
    { "state", S_STATE },
    { "target", S_TARGET },
    { "command_id", S_COMMAND_ID },
    { "actor", S_ACTOR },
    { "subscriber_id", S_SUBSCRIBER_ID },
    { "bill_id", S_BILL_ID },
    { "email", S_EMAIL },
    { "phone", S_PHONE },
    { "wait", S_WAIT },
    { "verb", S_VERB },
    { "since", S_SINCE },
    { "until", S_UNTIL },
    { "before_id", S_BEFORE_ID },
    { "before_id", S_BEFORE_COMMAND },
    { "state", S_OUTCOME },
};
#define S_KEYS (sizeof s_keys / sizeof s_keys[0])

/*  Validated arguments; NULL = not given. Strings point into the command
    or into the buffers here.  */
typedef struct {
    unsigned given;
    const char *period;
    const char *run_id;
    const char *channel;
    const char *state;
    const char *target;
    const char *command_id;
    const char *actor;
    const char *subscriber_id;
    const char *bill_id;
    const char *email; /* as given: bf_pii_hash normalises it */
    const char *phone; /* the digits of bf_pii_phone_normal */
    const char *verb;
    const char *since; /* since_buf, as UTC */
    const char *until; /* until_buf, as UTC */
    const char *before_id;
    int64_t since_us, until_us;
    char period_buf[8];
    char run_id_buf[24];
    char subscriber_id_buf[24];
    char bill_id_buf[24];
    char phone_buf[16];
    char since_buf[28];
    char until_buf[28];
    char before_id_buf[24];
    char limit[8];
    bool wait; /* wait=1, the default (run.report) */
} s_args_t;

/*  value for an error message: at most 40 characters, printable ASCII
    only, so nothing an attacker sends is echoed raw.  */
static const char *
s_shown (const char *value, char *out, size_t outsize)
{
    size_t n = 0, i = 0;
    for (; value[i] && n + 4 < outsize && i < 40; i++)
        out[n++] = value[i] >= 0x20 && value[i] < 0x7f ? value[i] : '?';
    if (value[i] && n + 4 < outsize) {
        memcpy (out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

/*  A decimal integer in 1..max, digits only.  */
static bool
s_positive (const char *text, int64_t max, int64_t *value)
{
    if (!text[0] || strlen (text) > 19)
        return false;
    int64_t v = 0;
    for (const char *p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v < 1 || v > max)
        return false;
    *value = v;
    return true;
}

static bool
s_one_of (const char *value, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp (value, *set))
            return true;
    return false;
}

/*  1..max characters, each a letter, a digit or one of extra.  */
static bool
s_name_ok (const char *value, size_t max, const char *extra)
{
    size_t len = strlen (value);
    if (len < 1 || len > max)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || strchr (extra, c)))
            return false;
    }
    return true;
}

/*  An email address to look up: 3..254 bytes of printable ASCII or
    well-formed UTF-8 beyond it, no space or control character, one '@'
    with something either side. Only its keyed hash leaves control.  */
static bool
s_email_ok (const char *value)
{
    size_t len = strlen (value);
    if (len < 3 || len > 254 || !bf_text_utf8_valid (value, len))
        return false;
    const char *at = strchr (value, '@');
    if (!at || at == value || !at[1] || strchr (at + 1, '@'))
        return false;
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return false;
    return true;
}

static int
s_bad_value (const char *key, const char *value, const char *expected, char *err, size_t errsize)
{
    char shown[48];
    bf_err_set (err, errsize, "%s: expected %s, got \"%s\"", key, expected,
                s_shown (value, shown, sizeof shown));
    return BF_QUERY_BAD;
}

/*  Validates cmd's arguments against the keys verb accepts (a mask of
    S_*). Returns BF_QUERY_OK or BF_QUERY_BAD with err naming the argument.  */
static int
s_args_parse (const Billflow__Command *cmd, unsigned accepted, s_args_t *args, char *err,
              size_t errsize)
{
    static const char *const channels[] = { "EMAIL", "SMS", "PUSH", NULL };
    static const char *const states[]
        = { "RECEIVED", "FORWARDED", "DONE", "FAILED", "REJECTED", NULL };
    static const char *const targets[] = { "settle", "notify", "control", NULL };
    static const char *const outcomes[]
        = { "received", "done", "failed", "refused", "rejected", "repeated", NULL };

    memset (args, 0, sizeof *args);
    snprintf (args->limit, sizeof args->limit, "%d", S_LIMIT_DEFAULT);
    args->wait = true;
    for (size_t i = 0; i < cmd->n_args; i++) {
        const Billflow__Argument *arg = cmd->args[i];
        const char *key = arg && arg->key ? arg->key : "";
        const char *value = arg && arg->value ? arg->value : "";
        unsigned bit = 0;
        /*  A name can stand for two keys (state, before_id): the one
            this verb accepts.  */
        for (size_t k = 0; k < S_KEYS; k++)
            if (!strcmp (key, s_keys[k].name) && (!bit || (accepted & s_keys[k].bit)))
                bit = s_keys[k].bit;
        if (!(accepted & bit)) {
            char shown[48], keys[128] = "";
            for (size_t k = 0; k < S_KEYS; k++)
                if ((accepted & s_keys[k].bit) && !strstr (keys, s_keys[k].name))
                    snprintf (keys + strlen (keys), sizeof keys - strlen (keys), "%s%s",
                              keys[0] ? ", " : "", s_keys[k].name);
            return bf_err_set (err, errsize, "unknown argument \"%s\" for %s (%s%s)",
                               s_shown (key, shown, sizeof shown), cmd->verb,
                               keys[0] ? "accepted: " : "it takes no arguments", keys),
                   BF_QUERY_BAD;
        }
        if (args->given & bit)
            return bf_err_set (err, errsize, "%s: given more than once", key), BF_QUERY_BAD;
        args->given |= bit;

        int64_t n;
        bf_period_t period;
        switch (bit) {
            case S_PERIOD:
                if (bf_period_parse (value, &period) != 0)
                    return s_bad_value (key, value, "a period YYYY-MM", err, errsize);
                args->period = bf_period_format (period, args->period_buf);
                break;
            case S_RUN_ID:
                if (!s_positive (value, INT64_MAX, &n))
                    return s_bad_value (key, value, "a positive integer", err, errsize);
                snprintf (args->run_id_buf, sizeof args->run_id_buf, "%lld", (long long)n);
                args->run_id = args->run_id_buf;
                break;
            case S_LIMIT:
                if (!s_positive (value, S_LIMIT_MAX, &n))
                    return s_bad_value (key, value, "an integer from 1 to 500", err, errsize);
                snprintf (args->limit, sizeof args->limit, "%lld", (long long)n);
                break;
            case S_CHANNEL:
                if (!s_one_of (value, channels))
                    return s_bad_value (key, value, "EMAIL, SMS or PUSH", err, errsize);
                args->channel = value;
                break;
            case S_STATE:
                if (!s_one_of (value, states))
                    return s_bad_value (key, value, "RECEIVED, FORWARDED, DONE, FAILED or REJECTED",
                                        err, errsize);
                args->state = value;
                break;
            case S_TARGET:
                if (!s_one_of (value, targets))
                    return s_bad_value (key, value, "settle, notify or control", err, errsize);
                args->target = value;
                break;
            case S_COMMAND_ID:
                /*  As the command table's CHECK has it.  */
                if (!s_name_ok (value, 128, "._:-"))
                    return s_bad_value (key, value, "1-128 of A-Z a-z 0-9 . _ : -", err, errsize);
                args->command_id = value;
                break;
            case S_ACTOR:
                /*  A key name (bf_curve.h), "unknown", or "console/NAME"
                    (bf_behalf.h).  */
                if (!bf_behalf_actor_valid (value))
                    return s_bad_value (key, value,
                                        "a key name (1-64 of A-Z a-z 0-9 . _ -) or console/NAME",
                                        err, errsize);
                args->actor = value;
                break;
            case S_SUBSCRIBER_ID:
            case S_BILL_ID: {
                char *buf = bit == S_BILL_ID ? args->bill_id_buf : args->subscriber_id_buf;
                if (!s_positive (value, INT64_MAX, &n))
                    return s_bad_value (key, value, "a positive integer", err, errsize);
                snprintf (buf, sizeof args->bill_id_buf, "%lld", (long long)n);
                *(bit == S_BILL_ID ? &args->bill_id : &args->subscriber_id) = buf;
                break;
            }
            case S_EMAIL:
                if (!s_email_ok (value))
                    return s_bad_value (key, value, "an email address (name@domain, no spaces)",
                                        err, errsize);
                args->email = value;
                break;
            case S_OUTCOME:
                if (!s_one_of (value, outcomes))
                    return s_bad_value (key, value,
                                        "received, done, failed, refused, rejected or repeated",
                                        err, errsize);
                args->state = value;
                break;
            case S_VERB:
                /*  Only verbs of the catalogue: anything else matches no
                    command, and is a typo more often than not.  */
                if (!bf_verb_find (value))
                    return s_bad_value (key, value, "a verb of the catalogue (billctl --help)", err,
                                        errsize);
                args->verb = value;
                break;
            case S_SINCE:
            case S_UNTIL: {
                bool since = bit == S_SINCE;
                int64_t us;
                if (bf_timestamp_parse (value, &us) != 0)
                    return s_bad_value (
                        key, value, "YYYY-MM-DD or an RFC 3339 time (2026-12-01T09:00:00+09:00)",
                        err, errsize);
                *(since ? &args->since_us : &args->until_us) = us;
                *(since ? &args->since : &args->until)
                    = bf_timestamp_format (us, since ? args->since_buf : args->until_buf);
                break;
            }
            case S_BEFORE_ID:
                if (!s_positive (value, INT64_MAX, &n))
                    return s_bad_value (key, value, "a positive integer (an audit row's id)", err,
                                        errsize);
                snprintf (args->before_id_buf, sizeof args->before_id_buf, "%lld", (long long)n);
                args->before_id = args->before_id_buf;
                break;
            case S_BEFORE_COMMAND:
                if (!s_name_ok (value, 128, "._:-"))
                    return s_bad_value (key, value, "a command id (1-128 of A-Z a-z 0-9 . _ : -)",
                                        err, errsize);
                args->before_id = value;
                break;
            case S_WAIT:
                if (strcmp (value, "0") && strcmp (value, "1"))
                    return s_bad_value (key, value, "0 or 1", err, errsize);
                args->wait = !strcmp (value, "1");
                break;
            case S_PHONE:
                if (bf_pii_phone_normal (value, args->phone_buf, sizeof args->phone_buf) < 0)
                    return s_bad_value (key, value,
                                        "a Korean mobile number (010-1234-5678 or +82 10-1234-5678)",
                                        err, errsize);
                args->phone = args->phone_buf;
                break;
            default:
                break;
        }
    }
    if (args->since && args->until && args->since_us >= args->until_us)
        return bf_err_set (err, errsize, "since: must be before until (since=%s, until=%s)",
                           args->since, args->until),
               BF_QUERY_BAD;
    return BF_QUERY_OK;
}

//  --------------------------------------------------------------------------
//  Running a statement

/*  A failed statement's answer: RETRY when the failure is a passing one.  */
static int
s_db_failed (char *err, size_t errsize)
{
    if (bf_db_last_status () == BF_DB_RETRY) {
        bf_err_set (err, errsize, "database unavailable (SQLSTATE %s): %s", bf_db_last_sqlstate (),
                    bf_db_last_message ());
        return BF_QUERY_RETRY;
    }
    bf_err_set (err, errsize, "database error (SQLSTATE %s): %s", bf_db_last_sqlstate (),
                bf_db_last_message ());
    return BF_QUERY_BAD;
}

/*  Runs sql, which returns one row with one JSON document, and parses it.  */
static int
s_document (PGconn *conn, const char *sql, int nparams, const char *const *params, const char *what,
            json_t **doc, char *err, size_t errsize)
{
    PGresult *res = bf_db_query (conn, sql, nparams, params, PGRES_TUPLES_OK, what);
    if (!res)
        return s_db_failed (err, errsize);
    if (PQntuples (res) != 1 || PQgetisnull (res, 0, 0)) {
        PQclear (res);
        bf_error ("query: %s returned no document", what);
        return bf_err_set (err, errsize, "%s returned no document", what), BF_QUERY_BAD;
    }
    json_error_t jerr;
    *doc = json_loads (PQgetvalue (res, 0, 0), 0, &jerr);
    PQclear (res);
    if (!*doc) {
        bf_error ("query: %s: unreadable document: %s", what, jerr.text);
        return bf_err_set (err, errsize, "%s: unreadable document", what), BF_QUERY_BAD;
    }
    return BF_QUERY_OK;
}

//  --------------------------------------------------------------------------
//  Documents

/* clang-format off */
/*  RUN of the settlement_run row r.  */
#define S_RUN                                                                                    \
    "json_build_object ('run_id', r.run_id, 'period', r.period, 'state', r.state,"               \
    " 'rerate', EXISTS (SELECT 1 FROM settlement_run o WHERE o.period = r.period"                \
    "                   AND o.run_id < r.run_id AND o.state = 'COMPLETED'),"                     \
    " 'chunk_size', r.chunk_size, 'chunks_total', r.chunks_total,"                               \
    " 'chunks_done', r.chunks_done, 'subscribers_done', r.subscribers_done, 'bills', r.bills,"   \
    " 'amount_total', r.amount_total, 'rating_errors', r.rating_errors,"                         \
    " 'command_id', r.command_id, 'created_at', " S_TS ("r.created_at") ","                      \
    " 'started_at', " S_TS ("r.started_at") ", 'finished_at', " S_TS ("r.finished_at") ","      \
    " 'seconds', round (extract (epoch FROM coalesce (r.finished_at, now ()) - r.started_at),"   \
    " 3))"

/*  CTEs for NOTICES: c = the counters of the deliveries WHERE cond selects
    (by period), summed over shards; held = the earliest release of each
    period that has held notices (one entry of delivery_held each).  */
#define S_COUNTERS(cond)                                                                         \
    " c AS (SELECT channel, state, sum (n)::bigint AS n, sum (fallbacks)::bigint AS f,"          \
    "  array_position (ARRAY['PENDING', 'SENDING', 'RETRY', 'HELD', 'DELIVERED', 'FAILED',"      \
    "                        'CANCELLED'], state) AS so,"                                        \
    "  array_position (ARRAY['EMAIL', 'SMS', 'PUSH'], channel) AS co"                            \
    "  FROM delivery_count_shown WHERE " cond " GROUP BY channel, state),"                       \
    " held AS (SELECT (SELECT d.not_before FROM delivery d WHERE d.state = 'HELD'"               \
    "                  AND d.period = p.period AND NOT EXISTS (SELECT 1 FROM dispatch_claim k"   \
    "                  WHERE k.delivery_id = d.id) ORDER BY d.not_before LIMIT 1) AS not_before" \
    "  FROM (SELECT period FROM delivery_count_shown WHERE " cond " AND state = 'HELD'"          \
    "        GROUP BY period HAVING sum (n) > 0) p)"

#define S_NOTICES                                                                                \
    "json_build_object ('total', (SELECT coalesce (sum (n), 0) FROM c),"                         \
    " 'by_state', (SELECT coalesce (json_object_agg (state, n ORDER BY so), '{}')"               \
    "   FROM (SELECT state, sum (n) AS n, min (so) AS so FROM c GROUP BY state"                  \
    "         HAVING sum (n) <> 0) s),"                                                          \
    " 'by_channel', (SELECT coalesce (json_object_agg (channel, states ORDER BY co), '{}')"      \
    "   FROM (SELECT channel, min (co) AS co, json_object_agg (state, n ORDER BY so) AS states"  \
    "         FROM c WHERE n <> 0 GROUP BY channel) s),"                                         \
    " 'fallbacks', (SELECT coalesce (sum (f), 0) FROM c),"                                       \
    " 'held_until', " S_TS ("(SELECT min (not_before) FROM held)") ")"

static const char s_sql_runs_list[] =
    "SELECT json_build_object ('runs', coalesce (json_agg (" S_RUN
    " ORDER BY r.run_id DESC), '[]'))"
    " FROM (SELECT * FROM settlement_run WHERE $1::text IS NULL OR period = $1"
    "       ORDER BY run_id DESC LIMIT $2::int) r";

static const char s_sql_run_show[] =
    "WITH r AS (SELECT * FROM settlement_run"
    "           WHERE ($1::bigint IS NULL OR run_id = $1) AND ($2::text IS NULL OR period = $2)"
    "           ORDER BY run_id DESC LIMIT 1),"
    " p AS (SELECT coalesce ((SELECT period FROM r), $2::text) AS period),"
    S_COUNTERS ("period = (SELECT period FROM p)") ","
    " ev AS (SELECT coalesce ((SELECT last_seq FROM relay_state), 0) AS published,"
    "               coalesce ((SELECT max (last_seq) FROM notify_cursor), 0) AS ingested,"
    "               EXISTS (SELECT 1 FROM outbox WHERE seq IS NULL) AS unsequenced)"
    " SELECT json_build_object ("
    "  'run', (SELECT " S_RUN " FROM r),"
    "  'schedule', (SELECT json_build_object ('at', s.at_local,"
    "     'release_at', " S_TS ("s.release_at") ", 'command_id', s.command_id)"
    "     FROM run_schedule s WHERE s.run_id = (SELECT run_id FROM r)),"
    "  'notices', " S_NOTICES ","
    "  'events', (SELECT json_build_object ('published_seq', published,"
    "             'ingested_seq', ingested, 'unsequenced', unsequenced) FROM ev),"
    "  'rating_errors', coalesce ((SELECT json_agg (json_build_object ("
    "     'subscriber_id', e.subscriber_id, 'reason', e.reason) ORDER BY e.subscriber_id)"
    "     FROM (SELECT subscriber_id, reason FROM rating_error"
    "           WHERE period = (SELECT period FROM r) ORDER BY subscriber_id LIMIT 10) e),"
    "     '[]'),"
    "  'final', coalesce ((SELECT state IN ('COMPLETED', 'FAILED') FROM r), false)"
    "     AND (SELECT NOT unsequenced AND ingested >= published FROM ev)"
    "     AND (SELECT coalesce (sum (n), 0) FROM c"
    "          WHERE state IN ('PENDING', 'SENDING', 'RETRY')) = 0)";

static const char s_sql_deliveries_summary[] =
    "WITH" S_COUNTERS ("($1::text IS NULL OR period = $1)")
    " SELECT json_build_object ('period', $1::text,"
    "  'paused', coalesce ((SELECT paused FROM dispatch_state), false),"
    "  'notices', " S_NOTICES ")";

/*  At most `limit` entries of delivery_failed for each (period, channel)
    whose counters say it has failures, then the newest of those; each with
    its sealed contact for the channel.  */
static const char s_sql_deliveries_failures[] =
    "SELECT json_build_object ('id', d.id, 'period', d.period, 'bill_id', d.bill_id,"
    "  'subscriber_id', d.subscriber_id, 'channel', d.channel, 'attempts', d.attempts,"
    "  'last_error', d.last_error, 'contact', NULL,"
    "  'final_at', " S_TS ("d.final_at") ","
    "  'fallback_id', (SELECT f.id FROM delivery f WHERE f.bill_id = d.bill_id"
    "                  AND f.channel = 'SMS' AND f.purpose = d.purpose"
    "                  AND f.fallback_of = d.id)),"
    " d.channel, d.subscriber_id,"
    " CASE d.channel WHEN 'EMAIL' THEN s.email_enc WHEN 'SMS' THEN s.phone_enc END"
    " FROM (SELECT period, channel FROM delivery_count"
    "       WHERE state = 'FAILED' AND ($1::text IS NULL OR period = $1)"
    "       AND ($2::text IS NULL OR channel = $2)"
    "       GROUP BY period, channel HAVING sum (n) > 0) k"
    " CROSS JOIN LATERAL (SELECT * FROM delivery x WHERE x.state = 'FAILED'"
    "       AND x.period = k.period AND x.channel = k.channel"
    "       ORDER BY x.final_at DESC, x.id DESC LIMIT $3::int) d"
    " LEFT JOIN subscriber s ON s.id = d.subscriber_id"
    " ORDER BY d.final_at DESC, d.id DESC LIMIT $3::int";

/*  One row per process that ever registered: the newest 500 of each
    service (index service_instance_service), and every control process
    (control_instance, db/014). leader: the active control (the instance
    control_leader names); for settle "relay" on the instance relay_state
    names, the relay that published the newest events; null for notify,
    whose instances have no leader.  */
static const char s_sql_services_list[] =
    "SELECT json_build_object ('services', coalesce (json_agg (json_build_object ("
    "  'service', i.service, 'instance_id', i.instance_id, 'pid', i.pid,"
    "  'version', i.version, 'verbs', to_json (i.verbs),"
    "  'registered_at', " S_TS ("i.registered_at") ","
    "  'last_heartbeat', " S_TS ("i.last_heartbeat") ","
    "  'age_ms', i.age_ms, 'up', i.age_ms <= $1::bigint, 'leader', i.leader, 'state', i.state)"
    "  ORDER BY array_position (ARRAY['control', 'settle', 'notify'], i.service),"
    "  i.last_heartbeat DESC, i.instance_id), '[]'))"
    " FROM (SELECT s.*, greatest (0, (extract (epoch FROM now () - s.last_heartbeat)"
    "         * 1000)::bigint) AS age_ms"
    "       FROM (SELECT c.instance_id, 'control'::text AS service, c.pid, c.version,"
    "               '{}'::text[] AS verbs, c.started_at AS registered_at, c.last_heartbeat,"
    "               json_build_object ('bind', c.bind) AS state,"
    "               to_json (c.instance_id IS NOT DISTINCT FROM"
    "                        (SELECT instance_id FROM control_leader)) AS leader"
    "             FROM control_instance c"
    "             UNION ALL"
    "             SELECT x.instance_id, x.service, x.pid, x.version, x.verbs, x.registered_at,"
    "               x.last_heartbeat, x.state::json,"
    "               CASE WHEN v.service = 'notify' THEN 'null'::json"
    "                    WHEN x.instance_id IS NOT DISTINCT FROM"
    "                         (SELECT relay_id FROM relay_state) THEN to_json ('relay'::text)"
    "                    ELSE to_json (false) END"
    "             FROM unnest (ARRAY['settle', 'notify']) v (service)"
    "             CROSS JOIN LATERAL (SELECT * FROM service_instance y WHERE y.service = v.service"
    "                   ORDER BY y.last_heartbeat DESC LIMIT 500) x) s) i";

/*  commands.list and audit.list: every filter optional, combined with AND;
    newest first by (time, key), and before_id = the key of the last row
    of a page gives the next page: a row comparison against that row's
    time and key, which the (time, key) indexes of db/015_audit_filters.sql
    answer as a range.  */
static const char s_sql_commands_list[] =
    "SELECT json_build_object ('commands', coalesce (json_agg (json_build_object ("
    "  'command_id', c.command_id, 'client', c.client, 'target', c.target, 'verb', c.verb,"
    "  'args', c.args, 'state', c.state, 'result', c.result, 'error', c.error,"
    "  'received_at', " S_TS ("c.received_at") ","
    "  'forwarded_at', " S_TS ("c.forwarded_at") ","
    "  'completed_at', " S_TS ("c.completed_at") ")"
    "  ORDER BY c.received_at DESC, c.command_id DESC), '[]'))"
    " FROM (SELECT * FROM command WHERE ($1::text IS NULL OR command_id = $1)"
    "       AND ($2::text IS NULL OR state = $2) AND ($3::text IS NULL OR target = $3)"
    "       AND ($5::text IS NULL OR client = $5) AND ($6::text IS NULL OR verb = $6)"
    "       AND ($7::timestamptz IS NULL OR received_at >= $7)"
    "       AND ($8::timestamptz IS NULL OR received_at < $8)"
    "       AND ($9::text IS NULL OR (received_at, command_id) <"
    "            ((SELECT b.received_at FROM command b WHERE b.command_id = $9), $9))"
    "       ORDER BY received_at DESC, command_id DESC LIMIT $4::int) c";

static const char s_sql_audit_list[] =
    "SELECT json_build_object ('audit', coalesce (json_agg (json_build_object ("
    "  'id', a.id, 'at', " S_TS ("a.at") ", 'actor', a.actor,"
    "  'command_id', a.command_id, 'target', a.target, 'verb', a.verb, 'args', a.args,"
    "  'outcome', a.outcome, 'detail', a.detail) ORDER BY a.at DESC, a.id DESC), '[]'))"
    " FROM (SELECT * FROM audit_log WHERE ($1::text IS NULL OR actor = $1)"
    "       AND ($2::text IS NULL OR command_id = $2) AND ($4::text IS NULL OR verb = $4)"
    "       AND ($5::text IS NULL OR outcome = $5)"
    "       AND ($6::timestamptz IS NULL OR at >= $6) AND ($7::timestamptz IS NULL OR at < $7)"
    "       AND ($8::bigint IS NULL OR (at, id) <"
    "            ((SELECT b.at FROM audit_log b WHERE b.id = $8), $8))"
    "       ORDER BY at DESC, id DESC LIMIT $3::int) a";

/*  SUBSCRIBER of the subscriber row s; its contacts are filled in from the
    sealed columns (s_subscriber_contacts).  */
#define S_SUBSCRIBER                                                                             \
    "json_build_object ('subscriber_id', s.id, 'email', NULL, 'phone', NULL,"                    \
    " 'push', s.push_token_enc IS NOT NULL, 'channels', to_json (s.channels),"                   \
    " 'activated_on', s.activated_on, 'terminated_on', s.terminated_on)"

/*  The sealed contacts that follow a document: id, email, phone.  */
#define S_SEALED(s) " (SELECT id FROM " s "), (SELECT email_enc FROM " s ")," \
                    " (SELECT phone_enc FROM " s ")"

/*  NOTICES of the bill row b: every delivery (index delivery_bill), newest
    first, each with its newest 50 attempts (delivery_attempt's unique
    key). "contact" is filled in by s_notice_contacts.  */
#define S_BILL_NOTICES                                                                           \
    "(SELECT coalesce (json_agg (json_build_object ('id', d.id, 'channel', d.channel,"           \
    "   'purpose', d.purpose, 'state', delivery_shown_state (d.id, d.state),"                    \
    "   'attempts', d.attempts, 'contact', NULL,"                                                \
    "   'fallback_of', d.fallback_of, 'hold_reason', d.hold_reason,"                             \
    "   'not_before', " S_TS ("d.not_before") ", 'last_error', d.last_error,"                    \
    "   'created_at', " S_TS ("d.created_at") ", 'final_at', " S_TS ("d.final_at") ","           \
    "   'attempt_log', (SELECT coalesce (json_agg (json_build_object ("                          \
    "      'attempt_no', a.attempt_no, 'sent_as', a.sent_as, 'provider', a.provider,"            \
    "      'outcome', a.outcome, 'status_code', a.status_code, 'error', a.error,"                \
    "      'started_at', " S_TS ("a.started_at") ", 'finished_at', " S_TS ("a.finished_at") ")" \
    "      ORDER BY a.attempt_no DESC), '[]')"                                                   \
    "    FROM (SELECT * FROM delivery_attempt x WHERE x.delivery_id = d.id"                      \
    "          ORDER BY x.attempt_no DESC LIMIT 50) a))"                                         \
    "  ORDER BY d.id DESC), '[]')"                                                               \
    " FROM delivery d WHERE d.period = b.period AND d.bill_id = b.bill_id)"

/*  BILL of the bill row b, with extra fields (", 'k', v" or "").  */
#define S_BILL(extra)                                                                            \
    "json_build_object ('period', b.period, 'bill_id', b.bill_id,"                               \
    " 'subscriber_id', b.subscriber_id, 'run_id', b.run_id, 'total', b.total,"                   \
    " 'due_date', b.due_date, 'line_count', b.line_count,"                                       \
    " 'issued_at', " S_TS ("b.issued_at") extra ", 'notices', " S_BILL_NOTICES ")"

/*  At most 100 subscribers, by id (primary key) or by the keyed hash of a
    contact (hash indexes subscriber_email_hash, subscriber_phone_hash).  */
static const char s_sql_subscriber_find[] =
    "SELECT " S_SUBSCRIBER ", s.id, s.email_enc, s.phone_enc FROM subscriber s"
    " WHERE ($1::bigint IS NULL OR s.id = $1) AND ($2::bytea IS NULL OR s.email_hash = $2)"
    " AND ($3::bytea IS NULL OR s.phone_hash = $3) ORDER BY s.id LIMIT 100";

/*  The subscriber's newest `limit` bills (index bill_subscriber), each
    with its notices; "more" when there are older ones.  */
static const char s_sql_subscriber_timeline[] =
    "WITH s AS (SELECT * FROM subscriber WHERE id = $1::bigint),"
    " b AS (SELECT * FROM bill WHERE subscriber_id = $1::bigint"
    "       ORDER BY period DESC LIMIT $2::int + 1)"
    " SELECT json_build_object ('subscriber', (SELECT " S_SUBSCRIBER " FROM s),"
    "  'bills', coalesce ((SELECT json_agg (" S_BILL ("") " ORDER BY b.period DESC)"
    "    FROM (SELECT * FROM b ORDER BY period DESC LIMIT $2::int) b), '[]'),"
    "  'more', (SELECT count(*) FROM b) > $2::int)," S_SEALED ("s");

/*  One bill by id (index bill_bill_id) or by period and subscriber
    (primary key), its lines in statement order (bill_line's key).  */
static const char s_sql_bill_show[] =
    "WITH b AS (SELECT * FROM bill WHERE ($1::bigint IS NULL OR bill_id = $1)"
    "           AND ($2::text IS NULL OR period = $2)"
    "           AND ($3::bigint IS NULL OR subscriber_id = $3) ORDER BY period DESC LIMIT 1),"
    " s AS (SELECT * FROM subscriber WHERE id = (SELECT subscriber_id FROM b))"
    " SELECT json_build_object ('bill', (SELECT " S_BILL (", 'lines', (SELECT coalesce (json_agg ("
    "   json_build_object ('line_no', l.line_no, 'code', l.code, 'label', l.label,"
    "   'amount', l.amount) ORDER BY l.line_no), '[]') FROM bill_line l"
    "   WHERE l.period = b.period AND l.subscriber_id = b.subscriber_id)") " FROM b),"
    "  'subscriber', (SELECT " S_SUBSCRIBER " FROM s))," S_SEALED ("s");

/* clang-format on */

static int
s_runs_list (PGconn *conn, const s_args_t *args, json_t **doc, char *err, size_t errsize)
{
    const char *params[] = { args->period, args->limit };
    return s_document (conn, s_sql_runs_list, 2, params, "runs.list", doc, err, errsize);
}

static int
s_run_show (PGconn *conn, const s_args_t *args, json_t **doc, char *err, size_t errsize)
{
    if (!args->period && !args->run_id)
        return bf_err_set (err, errsize, "run.show needs period=YYYY-MM or run_id=N"), BF_QUERY_BAD;
    if (args->period && args->run_id)
        return bf_err_set (err, errsize, "run.show takes period or run_id, not both"), BF_QUERY_BAD;
    const char *params[] = { args->run_id, args->period };
    return s_document (conn, s_sql_run_show, 2, params, "run.show", doc, err, errsize);
}

static int
s_deliveries_summary (PGconn *conn, const s_args_t *args, json_t **doc, char *err, size_t errsize)
{
    const char *params[] = { args->period };
    return s_document (conn, s_sql_deliveries_summary, 1, params, "deliveries.summary", doc, err,
                       errsize);
}

/*  The masked contact of a failed delivery: the sealed value in column col
    of row (NULL when the subscriber has none), opened for the channel.  */
static void
s_contact (const bf_query_ctx_t *ctx, const PGresult *res, int row, int col, const char *channel,
           int64_t subject, char *out, size_t outsize)
{
    const char *field = !strcmp (channel, "EMAIL") ? "email"
                        : !strcmp (channel, "SMS") ? "phone"
                                                   : NULL;
    if (!field) {
        /*  A push notice goes to a device token, not to a contact.  */
        snprintf (out, outsize, "-");
        return;
    }
    if (!ctx || !ctx->pii) {
        snprintf (out, outsize, "(unavailable)");
        return;
    }
    if (PQgetisnull (res, row, col)) {
        snprintf (out, outsize, "-");
        return;
    }
    size_t len = 0;
    unsigned char *sealed
        = PQunescapeBytea ((const unsigned char *)PQgetvalue (res, row, col), &len);
    char plain[512];
    long n = sealed ? bf_pii_open (ctx->pii, field, (uint64_t)subject, sealed, len, plain,
                                   sizeof plain)
                    : -1;
    PQfreemem (sealed);
    if (n < 0)
        snprintf (out, outsize, "(unavailable)");
    else if (!strcmp (field, "email"))
        bf_mask_email (plain, out, outsize);
    else
        bf_mask_phone (plain, out, outsize);
    sodium_memzero (plain, sizeof plain);
}

/*  A provider's text (an error) in object's field key, masked again here,
    so rows stored before a masking rule existed never show a contact.  */
static void
s_mask_field (json_t *object, const char *key)
{
    json_t *text = json_object_get (object, key);
    if (!json_is_string (text))
        return;
    size_t len = json_string_length (text);
    char *safe = malloc (2 * len + 64);
    if (!safe
        || json_object_set_new (object, key,
                                json_string (bf_mask_text (json_string_value (text), len, NULL, 0,
                                                           safe, 2 * len + 64)))
               != 0)
        json_object_set_new (object, key, json_string ("(unavailable)"));
    free (safe);
}

static int
s_deliveries_failures (PGconn *conn, const bf_query_ctx_t *ctx, const s_args_t *args, json_t **doc,
                       char *err, size_t errsize)
{
    const char *params[] = { args->period, args->channel, args->limit };
    PGresult *res = bf_db_query (conn, s_sql_deliveries_failures, 3, params, PGRES_TUPLES_OK,
                                 "deliveries.failures");
    if (!res)
        return s_db_failed (err, errsize);
    json_t *list = json_array ();
    *doc = json_pack ("{s:o}", "failures", list);
    if (!list || !*doc) {
        PQclear (res);
        json_decref (*doc);
        *doc = NULL;
        return bf_err_set (err, errsize, "out of memory"), BF_QUERY_BAD;
    }
    for (int row = 0; row < PQntuples (res); row++) {
        json_error_t jerr;
        json_t *item = json_loads (PQgetvalue (res, row, 0), 0, &jerr);
        char contact[BF_MASK_MAX];
        s_contact (ctx, res, row, 3, PQgetvalue (res, row, 1),
                   strtoll (PQgetvalue (res, row, 2), NULL, 10), contact, sizeof contact);
        s_mask_field (item, "last_error");
        if (!item || json_object_set_new (item, "contact", json_string (contact)) != 0
            || json_array_append_new (list, item) != 0) {
            bf_error ("query: deliveries.failures: unreadable row: %s", item ? "" : jerr.text);
            json_decref (item);
            PQclear (res);
            json_decref (*doc);
            *doc = NULL;
            return bf_err_set (err, errsize, "deliveries.failures: unreadable row"), BF_QUERY_BAD;
        }
    }
    PQclear (res);
    return BF_QUERY_OK;
}

static int
s_services_list (PGconn *conn, const bf_query_ctx_t *ctx, json_t **doc, char *err, size_t errsize)
{
    char window[24];
    snprintf (window, sizeof window, "%lld",
              3LL * (ctx && ctx->heartbeat_ms > 0 ? ctx->heartbeat_ms : 1000));
    const char *params[] = { window };
    return s_document (conn, s_sql_services_list, 1, params, "services.list", doc, err, errsize);
}

static int
s_commands_list (PGconn *conn, const s_args_t *args, json_t **doc, char *err, size_t errsize)
{
    const char *params[]
        = { args->command_id, args->state, args->target, args->limit,    args->actor,
            args->verb,       args->since, args->until,  args->before_id };
    return s_document (conn, s_sql_commands_list, 9, params, "commands.list", doc, err, errsize);
}

static int
s_audit_list (PGconn *conn, const s_args_t *args, json_t **doc, char *err, size_t errsize)
{
    const char *params[] = { args->actor, args->command_id, args->limit, args->verb,
                             args->state, args->since,      args->until, args->before_id };
    return s_document (conn, s_sql_audit_list, 8, params, "audit.list", doc, err, errsize);
}

//  --------------------------------------------------------------------------
//  Subscribers and bills

/*  A query refused for its arguments: err says why, and a log line too.  */
static int s_refused (char *err, size_t errsize, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_refused (char *err, size_t errsize, const char *format, ...)
{
    char why[256];
    va_list ap;
    va_start (ap, format);
    vsnprintf (why, sizeof why, format, ap);
    va_end (ap);
    bf_warn ("query: refused: %s", why);
    bf_err_set (err, errsize, "%s", why);
    return BF_QUERY_BAD;
}

/*  Masked contacts of the subscriber whose id, sealed email and sealed
    phone are columns col, col + 1, col + 2 of res's row: into email and
    phone (BF_MASK_MAX bytes; "-" for none), and onto sub when it is an
    object ("email" null when the subscriber has none).  */
static void
s_subscriber_contacts (const bf_query_ctx_t *ctx, const PGresult *res, int row, int col,
                       json_t *sub, char *email, char *phone)
{
    snprintf (email, BF_MASK_MAX, "-");
    snprintf (phone, BF_MASK_MAX, "-");
    if (PQgetisnull (res, row, col))
        return;
    int64_t id = strtoll (PQgetvalue (res, row, col), NULL, 10);
    s_contact (ctx, res, row, col + 1, "EMAIL", id, email, BF_MASK_MAX);
    s_contact (ctx, res, row, col + 2, "SMS", id, phone, BF_MASK_MAX);
    if (!json_is_object (sub))
        return;
    json_object_set_new (sub, "email", PQgetisnull (res, row, col + 1) ? json_null ()
                                                                        : json_string (email));
    json_object_set_new (sub, "phone", json_string (phone));
}

/*  Every notice of bill: its contact (the subscriber's, masked, by
    channel) and its provider texts masked again.  */
static void
s_notice_contacts (json_t *bill, const char *email, const char *phone)
{
    size_t i, j;
    json_t *notice, *attempt;
    json_array_foreach (json_object_get (bill, "notices"), i, notice)
    {
        const char *channel = json_string_value (json_object_get (notice, "channel"));
        const char *contact = !channel                   ? "-"
                              : !strcmp (channel, "EMAIL") ? email
                              : !strcmp (channel, "SMS")   ? phone
                                                           : "-";
        json_object_set_new (notice, "contact", json_string (contact));
        s_mask_field (notice, "last_error");
        json_array_foreach (json_object_get (notice, "attempt_log"), j, attempt)
        {
            s_mask_field (attempt, "error");
        }
    }
}

/*  The document in column 0 of res's one row, with the subscriber's
    contacts (columns 1..3) filled into doc's "subscriber" and into the
    notices of every bill in doc's "bills" list or its "bill".  */
static int
s_subscriber_document (const bf_query_ctx_t *ctx, PGresult *res, const char *what, json_t **doc,
                       char *err, size_t errsize)
{
    if (PQntuples (res) != 1 || PQgetisnull (res, 0, 0)) {
        PQclear (res);
        bf_error ("query: %s returned no document", what);
        return bf_err_set (err, errsize, "%s returned no document", what), BF_QUERY_BAD;
    }
    json_error_t jerr;
    *doc = json_loads (PQgetvalue (res, 0, 0), 0, &jerr);
    if (!*doc) {
        PQclear (res);
        bf_error ("query: %s: unreadable document: %s", what, jerr.text);
        return bf_err_set (err, errsize, "%s: unreadable document", what), BF_QUERY_BAD;
    }
    char email[BF_MASK_MAX], phone[BF_MASK_MAX];
    s_subscriber_contacts (ctx, res, 0, 1, json_object_get (*doc, "subscriber"), email, phone);
    PQclear (res);
    size_t i;
    json_t *bill;
    json_array_foreach (json_object_get (*doc, "bills"), i, bill)
    {
        s_notice_contacts (bill, email, phone);
    }
    if (json_is_object (json_object_get (*doc, "bill")))
        s_notice_contacts (json_object_get (*doc, "bill"), email, phone);
    sodium_memzero (email, sizeof email);
    sodium_memzero (phone, sizeof phone);
    return BF_QUERY_OK;
}

/*  "\\x" and the hex of value's keyed hash as field, for a bytea
    parameter (out: 2 + 64 + 1 bytes).  */
static void
s_hash_param (const bf_pii_t *pii, const char *field, const char *value, char *out,
              size_t outsize)
{
    uint8_t hash[BF_PII_HASH_LEN];
    bf_pii_hash (pii, field, value, hash);
    memcpy (out, "\\x", 2);
    sodium_bin2hex (out + 2, outsize - 2, hash, sizeof hash);
}

static int
s_subscriber_find (PGconn *conn, const bf_query_ctx_t *ctx, const s_args_t *args, json_t **doc,
                   char *err, size_t errsize)
{
    int given = !!args->subscriber_id + !!args->email + !!args->phone;
    if (given != 1)
        return s_refused (err, errsize, "subscriber.find takes %s of subscriber_id=N,"
                                        " email=ADDRESS and phone=NUMBER",
                          given ? "only one" : "one");
    /*  A contact is looked up by its keyed hash only, never by
        decrypting: without the key there is nothing to look up with.  */
    if ((args->email || args->phone) && (!ctx || !ctx->pii))
        return s_refused (err, errsize, "subscriber.find by %s needs control's PII key"
                                        " (pii.key_file), which is not configured",
                          args->email ? "email" : "phone");
    char email_hash[2 + 2 * BF_PII_HASH_LEN + 1], phone_hash[sizeof email_hash];
    if (args->email)
        s_hash_param (ctx->pii, "email", args->email, email_hash, sizeof email_hash);
    if (args->phone)
        s_hash_param (ctx->pii, "phone", args->phone, phone_hash, sizeof phone_hash);
    const char *params[] = { args->subscriber_id, args->email ? email_hash : NULL,
                             args->phone ? phone_hash : NULL };
    PGresult *res = bf_db_query (conn, s_sql_subscriber_find, 3, params, PGRES_TUPLES_OK,
                                 "subscriber.find");
    if (!res)
        return s_db_failed (err, errsize);
    json_t *list = json_array ();
    *doc = json_pack ("{s:o}", "subscribers", list);
    int rc = list && *doc ? BF_QUERY_OK : BF_QUERY_BAD;
    for (int row = 0; rc == BF_QUERY_OK && row < PQntuples (res); row++) {
        json_t *sub = json_loads (PQgetvalue (res, row, 0), 0, NULL);
        char email[BF_MASK_MAX], phone[BF_MASK_MAX];
        s_subscriber_contacts (ctx, res, row, 1, sub, email, phone);
        if (!sub || json_array_append_new (list, sub) != 0)
            rc = BF_QUERY_BAD;
    }
    PQclear (res);
    if (rc != BF_QUERY_OK) {
        bf_error ("query: subscriber.find: unreadable row");
        json_decref (*doc);
        *doc = NULL;
        return bf_err_set (err, errsize, "subscriber.find: unreadable row"), BF_QUERY_BAD;
    }
    return BF_QUERY_OK;
}

static int
s_subscriber_timeline (PGconn *conn, const bf_query_ctx_t *ctx, const s_args_t *args,
                       json_t **doc, char *err, size_t errsize)
{
    if (!args->subscriber_id)
        return s_refused (err, errsize, "subscriber.timeline needs subscriber_id=N");
    const char *params[] = { args->subscriber_id, args->limit };
    PGresult *res = bf_db_query (conn, s_sql_subscriber_timeline, 2, params, PGRES_TUPLES_OK,
                                 "subscriber.timeline");
    if (!res)
        return s_db_failed (err, errsize);
    return s_subscriber_document (ctx, res, "subscriber.timeline", doc, err, errsize);
}

static int
s_bill_show (PGconn *conn, const bf_query_ctx_t *ctx, const s_args_t *args, json_t **doc,
             char *err, size_t errsize)
{
    bool by_id = args->bill_id && !args->period && !args->subscriber_id;
    bool by_period = !args->bill_id && args->period && args->subscriber_id;
    if (!by_id && !by_period)
        return s_refused (err, errsize, "bill.show takes bill_id=N, or period=YYYY-MM and"
                                        " subscriber_id=N");
    const char *params[] = { args->bill_id, args->period, args->subscriber_id };
    PGresult *res = bf_db_query (conn, s_sql_bill_show, 3, params, PGRES_TUPLES_OK, "bill.show");
    if (!res)
        return s_db_failed (err, errsize);
    return s_subscriber_document (ctx, res, "bill.show", doc, err, errsize);
}

//  --------------------------------------------------------------------------

typedef enum {
    S_RUNS_LIST,
    S_RUN_SHOW,
    S_DELIVERIES_SUMMARY,
    S_DELIVERIES_FAILURES,
    S_SERVICES_LIST,
    S_COMMANDS_LIST,
    S_AUDIT_LIST,
    S_RUN_REPORT,
    S_SUBSCRIBER_FIND,
    S_SUBSCRIBER_TIMELINE,
    S_BILL_SHOW,
    S_RUN_RATES,
    S_TEMPLATES, /* bf_tplquery.c, which parses its own arguments */
} s_query_t;

static const struct {
    const char *verb;
    s_query_t query;
    unsigned keys;
    unsigned required; /* of keys, those it cannot do without */
} s_queries[] = {
    { "runs.list", S_RUNS_LIST, S_PERIOD | S_LIMIT },
    { "run.show", S_RUN_SHOW, S_PERIOD | S_RUN_ID },
    { "deliveries.summary", S_DELIVERIES_SUMMARY, S_PERIOD },
    { "deliveries.failures", S_DELIVERIES_FAILURES, S_PERIOD | S_CHANNEL | S_LIMIT },
    { "services.list", S_SERVICES_LIST, 0 },
    { "commands.list", S_COMMANDS_LIST,
      S_COMMAND_ID | S_STATE | S_TARGET | S_LIMIT | S_ACTOR | S_VERB | S_SINCE | S_UNTIL
          | S_BEFORE_COMMAND },
    { "audit.list", S_AUDIT_LIST,
      S_ACTOR | S_COMMAND_ID | S_LIMIT | S_VERB | S_OUTCOME | S_SINCE | S_UNTIL | S_BEFORE_ID },
    { "run.report", S_RUN_REPORT, S_PERIOD | S_WAIT }, /* bf_report.c */
    { "subscriber.find", S_SUBSCRIBER_FIND, S_SUBSCRIBER_ID | S_EMAIL | S_PHONE },
    { "subscriber.timeline", S_SUBSCRIBER_TIMELINE, S_SUBSCRIBER_ID | S_LIMIT },
    { "bill.show", S_BILL_SHOW, S_BILL_ID | S_PERIOD | S_SUBSCRIBER_ID },
    { "run.rates", S_RUN_RATES, S_RUN_ID, S_RUN_ID }, /* bf_rates.c */
};

int
bf_query (PGconn *conn, const bf_query_ctx_t *ctx, const Billflow__Command *cmd, char **json,
          char *err, size_t errsize)
{
    if (json)
        *json = NULL;
    if (!cmd || !json)
        return bf_err_set (err, errsize, "no query"), BF_QUERY_BAD;
    const char *verb = cmd->verb ? cmd->verb : "";
    size_t q = 0;
    while (q < sizeof s_queries / sizeof s_queries[0] && strcmp (verb, s_queries[q].verb))
        q++;
    bool template = q == sizeof s_queries / sizeof s_queries[0] && bf_tplquery_handles (verb);
    if (q == sizeof s_queries / sizeof s_queries[0] && !template) {
        char shown[48];
        return bf_err_set (err, errsize, "unknown query \"%s\"",
                           s_shown (verb, shown, sizeof shown)),
               BF_QUERY_BAD;
    }
    s_args_t args;
    int rc = template ? BF_QUERY_OK : s_args_parse (cmd, s_queries[q].keys, &args, err, errsize);
    if (rc == BF_QUERY_OK && !template
        && (args.given & s_queries[q].required) != s_queries[q].required) {
        for (size_t k = 0; k < S_KEYS; k++)
            if ((s_queries[q].required & s_keys[k].bit) && !(args.given & s_keys[k].bit)) {
                bf_err_set (err, errsize, "%s needs %s", verb, s_keys[k].name);
                break;
            }
        rc = BF_QUERY_BAD;
    }
    if (rc != BF_QUERY_OK) {
        bf_warn ("query: %s refused: %s", verb, err);
        return rc;
    }
    if (!conn || PQstatus (conn) != CONNECTION_OK)
        return bf_err_set (err, errsize, "database unavailable: no connection"), BF_QUERY_RETRY;

    json_t *doc = NULL;
    switch (template ? S_TEMPLATES : s_queries[q].query) {
        case S_TEMPLATES:
            rc = bf_tplquery (conn, ctx, cmd, &doc, err, errsize);
            break;
        case S_RUNS_LIST:
            rc = s_runs_list (conn, &args, &doc, err, errsize);
            break;
        case S_RUN_SHOW:
            rc = s_run_show (conn, &args, &doc, err, errsize);
            break;
        case S_DELIVERIES_SUMMARY:
            rc = s_deliveries_summary (conn, &args, &doc, err, errsize);
            break;
        case S_DELIVERIES_FAILURES:
            rc = s_deliveries_failures (conn, ctx, &args, &doc, err, errsize);
            break;
        case S_SERVICES_LIST:
            rc = s_services_list (conn, ctx, &doc, err, errsize);
            break;
        case S_COMMANDS_LIST:
            rc = s_commands_list (conn, &args, &doc, err, errsize);
            break;
        case S_AUDIT_LIST:
            rc = s_audit_list (conn, &args, &doc, err, errsize);
            break;
        case S_RUN_REPORT:
            rc = bf_report (conn, args.period, &doc, err, errsize);
            break;
        case S_SUBSCRIBER_FIND:
            rc = s_subscriber_find (conn, ctx, &args, &doc, err, errsize);
            break;
        case S_SUBSCRIBER_TIMELINE:
            rc = s_subscriber_timeline (conn, ctx, &args, &doc, err, errsize);
            break;
        case S_BILL_SHOW:
            rc = s_bill_show (conn, ctx, &args, &doc, err, errsize);
            break;
        case S_RUN_RATES:
            rc = bf_rates_query (conn, args.run_id, &doc, err, errsize);
            break;
    }
    if (rc != BF_QUERY_OK)
        return rc;
    *json = json_dumps (doc, JSON_COMPACT | JSON_REAL_PRECISION (15));
    json_decref (doc);
    if (!*json)
        return bf_err_set (err, errsize, "out of memory"), BF_QUERY_BAD;
    return BF_QUERY_OK;
}

int
bf_query_report_args (const Billflow__Command *cmd, char period[8], bool *wait, char *err,
                      size_t errsize)
{
    s_args_t args;
    int rc = s_args_parse (cmd, S_PERIOD | S_WAIT, &args, err, errsize);
    if (rc == BF_QUERY_OK && !args.period)
        rc = (bf_err_set (err, errsize, "run.report needs period=YYYY-MM"), BF_QUERY_BAD);
    if (rc != BF_QUERY_OK) {
        bf_warn ("query: run.report refused: %s", err);
        return rc;
    }
    snprintf (period, 8, "%s", args.period);
    *wait = args.wait;
    return BF_QUERY_OK;
}

//  --------------------------------------------------------------------------
//  For the other query modules (bf_tplquery.c)

int
bf_query_document (PGconn *conn, const char *sql, int nparams, const char *const *params,
                   const char *what, json_t **doc, char *err, size_t errsize)
{
    return s_document (conn, sql, nparams, params, what, doc, err, errsize);
}

int
bf_query_db_failed (char *err, size_t errsize)
{
    return s_db_failed (err, errsize);
}

void
bf_query_contact (const bf_query_ctx_t *ctx, const PGresult *res, int row, int col,
                  const char *channel, int64_t subject, char *out, size_t outsize)
{
    s_contact (ctx, res, row, col, channel, subject, out, outsize);
}
