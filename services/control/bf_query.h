/*  bf_query — control's queries, answered from PostgreSQL (bf_verbs.h lists
    them; docs/control.md documents every result).

    Queries change nothing and are not stored. Each answers in milliseconds
    whatever the size of the run: run and delivery figures come from
    counters (settlement_run's columns, delivery_count maintained by
    triggers in db/006_delivery_count.sql), never from counting rows;
    lists are bounded by a limit (default 20, at most 500) and use indexes.

    Contacts in results are always masked (bf_mask_email / bf_mask_phone of
    the decrypted value; "(unavailable)" when no PII key is configured or the
    value cannot be decrypted; "-" for a push notice, which goes to a device
    token rather than a contact, and when the subscriber has no contact).

    Arguments (bf_verbs.h lists each query's): period YYYY-MM, run_id a
    positive integer, limit an integer 1..500 (default 20), channel EMAIL |
    SMS | PUSH, state and target from command's fixed sets, command_id as
    command's CHECK allows, actor a key name (bf_curve.h), subscriber_id and
    bill_id positive integers, email name@domain (no space or control
    character, valid UTF-8, 3..254 bytes), phone a Korean mobile number
    (bf_pii_phone_normal). A bad value, a
    key the query does not take, a key given twice, and run.show with
    neither or both of period and run_id, run.rates without run_id,
    subscriber.find with other than
    one of its three keys (or by contact without ctx->pii), and bill.show
    with other than bill_id or period + subscriber_id are BF_QUERY_BAD,
    with err naming the argument.

    Result documents (JSON objects; timestamps are RFC 3339 UTC strings or
    null; amounts are integers in won):

    runs.list            {"runs":[RUN...]}
    run.show             {"run":RUN|null, "schedule":{"at","release_at","command_id"}|null,
                          "notices":NOTICES, "events":EVENTS,
                          "rating_errors":[{"subscriber_id":N,"reason":S}...] (first 10),
                          "final":bool}
                         (by period: the period's newest run; notices and rating
                          errors are the period's, the errors those still open, by
                          subscriber id; schedule: the run's release time set by
                          run.schedule, "at" local as given, release_at UTC)
    deliveries.summary   {"period":S|null, "paused":bool, "notices":NOTICES}
    deliveries.failures  {"failures":[{"id","period","bill_id","subscriber_id","channel",
                          "attempts","last_error","contact","final_at","fallback_id"}...]}
                         (newest final_at first; fallback_id: the SMS notice sent in
                          place of a failed email, or null)
    services.list        {"services":[{"service","instance_id","pid","version","verbs":[...],
                          "registered_at","last_heartbeat","age_ms","up","leader",
                          "state":{...}}...]}
                         (control's processes first, then settle's and notify's;
                          leader: control true for the active one, false for the
                          others; settle "relay" for the relay that published the
                          newest events, false for the others; notify null)
    commands.list        {"commands":[{"command_id","client","target","verb","args":{...},
                          "state","result":{...}|null,"error","received_at","forwarded_at",
                          "completed_at"}...]}
    audit.list           {"audit":[{"id","at","actor","command_id","target","verb","args",
                          "outcome","detail"}...]}
    run.rates            a run's bills/s and notices/s over its life (run_id required),
                         specified in bf_rates.h: at most 600 points from the samples the
                         active control writes once a second (bf_ratesampler.h)
    run.report           the period's reconciliation report (period required), specified
                         in bf_report.h: bills, runs, notices, fallbacks, held notices,
                         attempts, the bills without a final notice, "final". The one
                         query that reads rows: an anti-join of the period's bills and
                         notices. control answers it from the newest report it keeps
                         per period when the period has not changed since
                         (bf_report_cache.h); wait=1 (the default) waits for a current
                         report, wait=0 gets the newest one at once, marked "current"
                         and "computing"

    subscriber.find      {"subscribers":[SUBSCRIBER...]}   (by id, at most 100; by email or
                          phone through the keyed hash of the normalised value
                          (bf_pii_hash), never by decrypting)
    subscriber.timeline  {"subscriber":SUBSCRIBER|null, "bills":[BILL...], "more":bool}
                         (newest `limit` bills by period; more: older ones exist)
    bill.show            {"bill":BILL with "lines":[{"line_no","code","label","amount"}...]
                          | null, "subscriber":SUBSCRIBER|null}

    SUBSCRIBER {"subscriber_id","email","phone","push","channels","activated_on",
              "terminated_on"}   (email, phone masked; email null when none; push: a
             device token is on file)
    BILL     {"period","bill_id","subscriber_id","run_id","total","due_date","line_count",
              "issued_at","notices":[{"id","channel","purpose","state","attempts","contact",
              "fallback_of","hold_reason","not_before","last_error","created_at","final_at",
              "attempt_log":[{"attempt_no","sent_as","provider","outcome","status_code",
              "error","started_at","finished_at"}...]}...]}   (notices newest first, each
             with its newest 50 attempts, newest first; contact the subscriber's masked
             email / phone by channel, "-" for push; provider texts masked again)
    RUN      {"run_id","period","state","rerate","chunk_size","chunks_total","chunks_done",
              "subscribers_done","bills","amount_total","rating_errors","command_id",
              "created_at","started_at","finished_at","seconds"}   (seconds: from start to
             finish, or to now while unfinished, to the millisecond; rerate: an earlier run of
             the period completed, so this one re-rates its rating errors)
    NOTICES  {"total":N, "by_state":{"PENDING":N,...}, "by_channel":{"EMAIL":{"DELIVERED":N,
              ...},...}, "fallbacks":N, "held_until":S|null}   (states with 0 are omitted;
             fallbacks: notices that are the SMS fallback of a failed email, counted in
             by_state too; held_until: the earliest release of a HELD notice)
    EVENTS   {"published_seq":N, "ingested_seq":N, "unsequenced":bool}
    final    the run is COMPLETED or FAILED, every event is sequenced and ingested, and no
             notice of the period is PENDING, SENDING or RETRY. HELD notices do not keep
             it open: they are held by a rule the operator sees (notices.held_until; G4).

    services.list reads the service_instance table control keeps (db/007)
    and control_instance (db/014), which every control process writes;
    "up" is a heartbeat within 3 heartbeat intervals (ctx->heartbeat_ms),
    age_ms the time since it. Listed by service, newest heartbeat first, at
    most 500 instances a service. Lists of runs, commands and the audit log
    are newest first.

    Database failures: BF_QUERY_RETRY when bf_db says the failure is
    retryable (connection lost, shutdown, serialization ...) or conn is not
    connected, else BF_QUERY_BAD; err carries the SQLSTATE and message.  */

#ifndef BF_QUERY_H_INCLUDED
#define BF_QUERY_H_INCLUDED

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "bf_pii.h"
#include "billflow.pb-c.h"

typedef struct {
    const bf_pii_t *pii; /* NULL: contacts shown as "(unavailable)" */
    int heartbeat_ms;    /* services' heartbeat interval */
} bf_query_ctx_t;

typedef enum {
    BF_QUERY_OK = 0,
    BF_QUERY_BAD = -1,   /* bad arguments: err says which (answered FAILED) */
    BF_QUERY_RETRY = -2, /* database unavailable: err says so (FAILED, retryable) */
} bf_query_rc_t;

/*  Answers the query cmd->verb (one of bf_verbs.h's control queries except
    control.status, which control builds itself) on conn. On BF_QUERY_OK
    *json is a malloc'd JSON document the caller frees.  */
int bf_query (PGconn *conn, const bf_query_ctx_t *ctx, const Billflow__Command *cmd, char **json,
              char *err, size_t errsize);

/*  run.report's arguments (period=YYYY-MM, required; wait=0|1, default 1)
    from cmd into period and *wait, for control's report cache. Returns
    BF_QUERY_OK, or BF_QUERY_BAD with err set (logged).  */
int bf_query_report_args (const Billflow__Command *cmd, char period[8], bool *wait, char *err,
                          size_t errsize);

/*  For query modules of their own (bf_tplquery.h). bf_query_document runs
    sql, which returns one row holding one JSON document, into *doc;
    bf_query_db_failed turns the last bf_db failure into BF_QUERY_RETRY or
    BF_QUERY_BAD with err; bf_query_contact writes the masked contact of
    channel from the sealed value in column col of row (the rules above).  */
int bf_query_document (PGconn *conn, const char *sql, int nparams, const char *const *params,
                       const char *what, json_t **doc, char *err, size_t errsize);
int bf_query_db_failed (char *err, size_t errsize);
void bf_query_contact (const bf_query_ctx_t *ctx, const PGresult *res, int row, int col,
                       const char *channel, int64_t subject, char *out, size_t outsize);

#endif
