/*  bf_report_cache — control's newest run.report per period, and who is
    waiting for the next one.

    A report costs about a second at 1,000,000 subscribers (bf_report.h);
    a period that has not changed since does not need another. Each
    report carries its snapshot's "version" (db/013_report_change.sql),
    which grows with every committed change of what the report reads, so a
    kept report whose version equals the period's current version is
    exactly the report a new computation would return.

    For each request control reads the current version (milliseconds) and
    asks the cache:
      - kept report with that version: answered at once, "current": true;
      - otherwise a computation is due (at most one per period at a time:
        requests meanwhile join it) and
          - a caller that waits (wait=1, billctl's default) is queued
            until a report at least as new as the version it saw arrives;
          - a caller that does not wait (wait=0, the console) gets the kept
            report at once with "current": false, "computing": true; when
            no report is kept yet, only {"period", "as_of": null,
            "current": false, "computing": true}.
    When the computation ends, bf_report_cache_done answers the queued
    callers whose version the new report reaches, and says whether another
    computation is needed for the rest (callers that arrived after it
    started, having seen a newer version).

    Pure bookkeeping: no database, no sockets; the caller computes (control's
    reporter actor) and answers. At most max_periods periods are kept; the
    least recently asked one without a computation or callers makes room.  */

#ifndef BF_REPORT_CACHE_H_INCLUDED
#define BF_REPORT_CACHE_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct bf_report_cache_t bf_report_cache_t;

/*  Frees a caller's waiter (bf_report_cache_destroy's, for callers never
    answered).  */
typedef void (bf_report_cache_free_fn) (void *waiter);

/*  Answers one waiter: json is the report (a string the callee copies) or
    NULL with error set and retry telling whether the failure is
    temporary. The callee frees waiter.  */
typedef void (bf_report_cache_answer_fn) (void *waiter, const char *json, const char *error,
                                          bool retry, void *arg);

bf_report_cache_t *bf_report_cache_new (size_t max_periods, bf_report_cache_free_fn *free_fn);
void bf_report_cache_destroy (bf_report_cache_t **self_p);

typedef enum {
    BF_REPORT_CACHE_ANSWER, /* *json is the answer (malloc'd, the caller frees) */
    BF_REPORT_CACHE_QUEUE,  /* the caller must wait: bf_report_cache_queue */
    BF_REPORT_CACHE_FULL,   /* max_periods periods all busy: answer "busy" */
} bf_report_cache_rc_t;

/*  A request for period whose current version is version. *start is set
    when the caller must start a computation of period now (none was
    running); it is marked running whatever the return.  */
bf_report_cache_rc_t bf_report_cache_ask (bf_report_cache_t *self, const char *period,
                                          int64_t version, bool wait, bool *start, char **json);

/*  Queues waiter (after BF_REPORT_CACHE_QUEUE for the same period and
    version) until a report of at least version arrives.  */
void bf_report_cache_queue (bf_report_cache_t *self, const char *period, int64_t version,
                            void *waiter);

/*  The computation of period ended: doc (a report with "version"; the
    cache takes the reference) or NULL with error and retry. Answers the
    waiters it can through answer_fn; returns true when another computation
    must start (waiters remain; the period is marked running again). A
    failure answers every waiter and returns false.  */
bool bf_report_cache_done (bf_report_cache_t *self, const char *period, json_t *doc,
                           const char *error, bool retry, bf_report_cache_answer_fn *answer_fn,
                           void *arg);

/*  Periods kept (with or without a report), and callers queued.  */
size_t bf_report_cache_size (const bf_report_cache_t *self);
size_t bf_report_cache_waiting (const bf_report_cache_t *self);

#endif
