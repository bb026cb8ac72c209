/*  bf_rates — run.rates: a run's bills per second and notices per second
    over its whole life, from the samples the active control writes once a
    second (bf_ratesampler.h, db/014_rates.sql).

    Document:
      {"run_id":N, "run":{"period","state","bills","started_at","finished_at"}|null,
       "points":[{"t","seconds","bills","notices","bills_per_s","notices_per_s"}...]}
    (run null and no points when there is no such run; no points before the
    run's first sample). t is the end of a
    point's interval in seconds since the run's first sample (its start), seconds the
    interval's length, bills and notices what changed in it (notices: the period's final
    notices, DELIVERED, FAILED or CANCELLED), the rates those divided by seconds. An
    interval with a gap in it (no active control for more than three seconds, e.g. a
    failover) has null rates: what changed over it is known, how it was spread is not.
    The sum of bills over the points is the run's bills at its newest sample; the sum of
    notices the period's final notices since the run started (for a later run of a
    period: since it was first sampled).

    At most BF_RATES_POINTS points whatever the run's length: the counters
    are cumulative, so a point is the difference of two samples, the
    newest one at or before each of BF_RATES_POINTS + 1 evenly spaced
    instants between the first and the newest sample. PostgreSQL picks
    those samples by index (run_rate_sample's primary key, one probe per
    instant), so the query reads about 600 rows for a run of any length;
    bf_rates_points makes the points of them.  */

#ifndef BF_RATES_H_INCLUDED
#define BF_RATES_H_INCLUDED

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_RATES_POINTS 600

/*  One sample: t seconds (any origin), the cumulative counters, and
    whether the interval that ends at it holds a gap.  */
typedef struct {
    double t;
    int64_t bills, notices;
    bool gap;
} bf_rates_sample_t;

/*  One point of the series (see above); t from the first sample.  */
typedef struct {
    double t, seconds;
    int64_t bills, notices;
    bool gap; /* rates unknown */
} bf_rates_point_t;

/*  The points of n samples in time order, at most max_points (>= 1) of
    them, into out (room for max_points). For each of max_points + 1
    instants evenly spaced from the first sample to the last, the newest
    sample at or before it; one point between each two consecutive picks
    that differ, a gap when any sample after the first of the two, up to
    the second, is one. Samples out of time order end the series there.
    Returns the number of points (0 for fewer than two samples).  */
size_t bf_rates_points (const bf_rates_sample_t *samples, size_t n, size_t max_points,
                        bf_rates_point_t *out);

/*  run.rates for run_id (a positive decimal integer, validated by the
    caller) on conn, into *doc (the caller json_decrefs it). Returns
    BF_QUERY_OK, or bf_query.h's failures with err.  */
int bf_rates_query (PGconn *conn, const char *run_id, json_t **doc, char *err, size_t errsize);

#endif
