/*  bf_metrics — the process's metrics registry and its Prometheus text
    exposition (format 0.0.4), for GET /metrics (bf_http.h).

    A family is a metric name with its type, help text and label names;
    a series is one combination of label values of a family. Families and
    series are created once (at start-up, or lazily on first use) and live
    for the whole process; callers keep the series pointer and update it
    from any thread:

        static bf_series_t *s_bills;     // once, e.g. under pthread_once
        s_bills = bf_metric_series (bf_metrics_counter ("billflow_bills_written_total",
                                                        "Bills written.", NULL));
        bf_counter_add (s_bills, n);     // any thread, lock-free

    Thread safety: registration, series creation and rendering take one
    registry mutex; counter, gauge and histogram updates are C11 atomics
    with relaxed ordering (no lock, no allocation). Every update function
    accepts NULL and does nothing, so a registration that was refused
    (logged) never stops the service.

    Names: every family name starts with `billflow_` and matches
    [a-zA-Z_:][a-zA-Z0-9_:]*; counters end in `_total`. Label names match
    [a-zA-Z_][a-zA-Z0-9_]*, do not start with `__`, and a histogram may not
    use `le`. Violations are programmer errors: refused with a log line,
    the family is then NULL. Labels must be low-cardinality (channel,
    provider, outcome, verb, state): never a subscriber, bill or delivery.
    A family holds at most BF_METRICS_MAX_SERIES series; further label
    combinations are refused (logged once) and their updates dropped.

    Scrapes are cheap: rendering reads the atomics under the registry
    mutex and formats text, nothing else — except gauge callbacks
    (bf_gauge_set_fn), which run on the scraping thread while the mutex is
    held. A callback must therefore be quick and non-blocking: read a value
    an actor keeps up to date, never query PostgreSQL.  */

#ifndef BF_METRICS_H_INCLUDED
#define BF_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BF_METRICS_MAX_LABELS  4
#define BF_METRICS_MAX_SERIES  64
#define BF_METRICS_MAX_BUCKETS 32

typedef struct bf_metric_t bf_metric_t; /* a family */
typedef struct bf_series_t bf_series_t; /* one label combination */

/*  Registers a family, or returns the one already registered under name
    when its type, label names (and bounds) are the same; NULL (logged)
    for a bad name, a clash, or a full registry. label_names is a
    comma-separated list ("channel,outcome") or NULL/"" for none. help is
    one line of text.  */
bf_metric_t *bf_metrics_counter (const char *name, const char *help, const char *label_names);
bf_metric_t *bf_metrics_gauge (const char *name, const char *help, const char *label_names);
/*  bounds: strictly increasing finite upper bounds (at most
    BF_METRICS_MAX_BUCKETS); the +Inf bucket is implicit.  */
bf_metric_t *bf_metrics_histogram (const char *name, const char *help, const char *label_names,
                                   const double *bounds, size_t nbounds);

/*  The series of family for the given label values, one const char * per
    label name, in order; created on first use. A value may be any UTF-8
    text (escaped on output). NULL when family is NULL or full. Takes the
    registry mutex: call it at set-up and keep the pointer, not per
    update.  */
bf_series_t *bf_metric_series (bf_metric_t *family, ...);

/*  Shows (the default) or hides a whole family: a hidden family is left
    out of bf_metrics_render (no HELP, TYPE or samples) while its series
    keep their values. For figures only one process of a program may
    export, such as the active control's cluster-wide gauges. Any thread;
    NULL does nothing.  */
void bf_metric_set_shown (bf_metric_t *family, bool shown);

/*  Counter: adds n (monotonic; a counter never goes down).  */
void bf_counter_add (bf_series_t *series, uint64_t n);
static inline void
bf_counter_inc (bf_series_t *series)
{
    bf_counter_add (series, 1);
}

/*  Gauge: sets, or adds a (possibly negative) delta.  */
void bf_gauge_set (bf_series_t *series, double value);
void bf_gauge_add (bf_series_t *series, double delta);
/*  Gauge whose value fn(arg) computes at every scrape (see the header
    note: quick, non-blocking, thread-safe). Replaces any set value.  */
void bf_gauge_set_fn (bf_series_t *series, double (*fn) (void *arg), void *arg);

/*  Histogram: records one observation (NaN is ignored).  */
void bf_histogram_observe (bf_series_t *series, double value);

/*  Current value of a counter or gauge series (0 for NULL), for tests and
    for actors that report their own figures.  */
double bf_series_value (const bf_series_t *series);

/*  The whole registry in the text exposition format 0.0.4: for each
    family in registration order `# HELP`, `# TYPE`, then its samples;
    histograms as cumulative `_bucket{le=...}` lines ending with
    le="+Inf" (always equal to `_count`), then `_sum` and `_count`.
    Returns a malloc'd NUL-terminated string (its length in *len when len
    is non-NULL), or NULL when out of memory.  */
char *bf_metrics_render (size_t *len);

/*  Registers the built-in families once per process (safe to call
    again): billflow_build_info{version,revision} = 1 and
    billflow_process_start_time_seconds (the time of the first call).  */
void bf_metrics_init (void);

/*  The version and revision compiled in (meson project version; git
    revision at build time, or "unknown").  */
const char *bf_metrics_version (void);
const char *bf_metrics_revision (void);

/*  Writes value into out as the exposition format writes sample values:
    integers without exponent, "+Inf", "-Inf", "NaN", else the shortest
    form that reads back to the same double. Returns out.  */
char *bf_metrics_format_double (double value, char *out, size_t outsize);

#endif
