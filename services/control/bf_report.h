/*  bf_report — run.report, the monthly reconciliation report of a period:
    what was billed, what each run did, where every notice ended, and which
    bills have no final notice yet (G4). docs/control.md, "Reconciliation
    report", is the operator's description.

    The document (a JSON object; timestamps RFC 3339 UTC strings or null,
    amounts integers in won, every count an integer):

    {"period":S,
     "version":N,           the period's version in the report's snapshot:
                            the sum of its change counters (report_change,
                            db/013_report_change.sql), which every statement
                            writing a notice, an attempt, a bill or a run of
                            the period increases; equal versions, equal
                            reports
     "as_of":S,             when the report's snapshot was taken
     "current":bool,        added by control (bf_report_cache.h): the
                            period's version had not changed when this
                            answer was sent; false: the report is the
                            newest control has, a newer one is computing
     "computing":bool,      added by control: a newer report is computing
     "final":bool,          the newest run is COMPLETED, unnotified.count is
                            0 and no notice is PENDING, SENDING or RETRY
                            (HELD notices do not stop it: they are visibly
                            held, see "held")
     "run_state":S|null,    state of the period's newest run (null: no run)
     "bills":{"count","amount_total",          from the runs' counters
              "table_count","table_amount_total", the bill table's own
              "consistent":bool},              the two agree
                (count, amount_total: summed over every run of the period — the
                 completed run and its re-rate runs — since each bill is
                 written by one run, in the transaction that adds it to that
                 run's counters)
     "runs":[{"run_id","state","rerate","bills","amount_total","rating_errors",
              "started_at","finished_at","seconds"}...]   oldest first
     "notices":{"total","finished","unfinished",
                "by_state":{STATE:N...},                  all 7 states
                "by_channel":{"EMAIL":{STATE:N...},"SMS":{...},"PUSH":{...}}}
                (finished: DELIVERED + FAILED + CANCELLED; unfinished:
                 PENDING + SENDING + RETRY + HELD; states in the order
                 DELIVERED FAILED CANCELLED PENDING SENDING RETRY HELD)
     "fallbacks":{"failed_emails","created","delivered","failed","cancelled",
                  "unfinished"}
                (created: SMS notices made in place of a failed email; the
                 others split those by state; failed_emails: EMAIL notices
                 FAILED, with or without a fallback)
     "held":{"count","from":S|null,"until":S|null,
             "reasons":[{"reason":S|null,"count":N}...]}   (from/until: the
             earliest and latest not_before of the HELD notices; reasons
             by count, most first)
     "attempts":{"total","by_channel":{"EMAIL":{OUTCOME:N...},...},
                 "by_outcome":{OUTCOME:N...}}    (delivery_attempt rows of
             the period's notices, by the notice's channel; outcomes
             DELIVERED DUPLICATE TRANSIENT PERMANENT THROTTLED)
     "unnotified":{"count",
                   "by_reason":{"no delivery":N,"in progress":N,
                                "failed without fallback":N},
                   "bills":[{"bill_id","subscriber_id","reason"}...]}
                (the first BF_REPORT_UNNOTIFIED_MAX by bill id)}

    An unnotified bill is a bill of the period none of whose notices is
      - DELIVERED, or
      - HELD, or
      - the SMS fallback of a FAILED email, itself final (FAILED or
        CANCELLED; a DELIVERED one is the first case): "failed after its
        fallback".
    Its reason: "in progress" when one of its notices is PENDING, SENDING
    or RETRY; else "failed without fallback" when one is FAILED; else "no
    delivery" (no notice at all, or only CANCELLED ones).

    Cost: unlike the other queries this one reads rows: one anti-join of the
    period's bills against their notices (index delivery_bill), one
    aggregate of the bill partition and the HELD notices (index
    delivery_held). Counts of notices and fallbacks come from
    delivery_count, attempts from attempt_count, run figures from
    settlement_run. Everything is one statement, so the figures share one
    snapshot. About a second at 1,000,000 subscribers: control computes it
    in its reporter actor and keeps the newest report of each period with
    its version (bf_report_cache.h), so that an unchanged period is
    answered from memory.  */

#ifndef BF_REPORT_H_INCLUDED
#define BF_REPORT_H_INCLUDED

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "bf_query.h"

/*  Most unnotified bills the report lists.  */
#define BF_REPORT_UNNOTIFIED_MAX 100

/*  Builds the report of period (a valid "YYYY-MM"; NULL is BF_QUERY_BAD:
    run.report needs it) on conn. Returns BF_QUERY_OK with *doc a new
    reference the caller owns, or BF_QUERY_BAD / BF_QUERY_RETRY (as
    bf_query) with err set and *doc NULL.  */
int bf_report (PGconn *conn, const char *period, json_t **doc, char *err, size_t errsize);

/*  The current version of period (see "version" above): one index read
    of at most 16 rows. Returns BF_QUERY_OK with *version set, or
    BF_QUERY_BAD / BF_QUERY_RETRY with err set.  */
int bf_report_version (PGconn *conn, const char *period, int64_t *version, char *err,
                       size_t errsize);

#endif
