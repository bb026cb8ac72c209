/*  bf_metrics — registry of families and series, atomic updates, and the
    Prometheus text exposition writer (format 0.0.4).

    Storage: a fixed array of families; each family a fixed array of
    series pointers. Nothing is ever freed (process lifetime), so a series
    pointer stays valid in any thread. Counters are atomic uint64; gauges
    and sums are doubles kept as their bit pattern in an atomic uint64
    (compare-and-swap to add). Histogram buckets are stored per bucket
    (not cumulative) and cumulated while rendering; `_count` is written as
    the sum of the buckets, so `le="+Inf"` equals `_count` in every scrape
    even while observations race it.  */

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf_log.h"
#include "bf_metrics.h"
#include "bf_text.h"
#include "bf_version.h"

#define MAX_FAMILIES 256
#define PREFIX       "billflow_"

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_type_t;

struct bf_series_t {
    const bf_metric_t *family;
    char *values[BF_METRICS_MAX_LABELS];
    _Atomic uint64_t count;                          /* counter value */
    _Atomic uint64_t bits;                           /* gauge value / histogram sum */
    _Atomic uint64_t buckets[BF_METRICS_MAX_BUCKETS + 1]; /* last: above every bound */
    double (*_Atomic fn) (void *arg);
    void *_Atomic fn_arg;
};

struct bf_metric_t {
    s_type_t type;
    char *name, *help;
    char *labels[BF_METRICS_MAX_LABELS];
    size_t nlabels;
    double bounds[BF_METRICS_MAX_BUCKETS];
    size_t nbounds;
    bf_series_t *series[BF_METRICS_MAX_SERIES];
    size_t nseries;
    bool full_logged;
    atomic_bool hidden; /* bf_metric_set_shown: left out of renders while set */
};

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static bf_metric_t *s_families[MAX_FAMILIES];
static size_t s_nfamilies;

static uint64_t
s_bits (double value)
{
    uint64_t bits;
    memcpy (&bits, &value, sizeof bits);
    return bits;
}

static double
s_double (uint64_t bits)
{
    double value;
    memcpy (&value, &bits, sizeof value);
    return value;
}

static bool
s_valid_name (const char *name, bool metric)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++) {
        bool ok = isalpha ((unsigned char)*p) || *p == '_' || (metric && *p == ':')
                  || (p > name && isdigit ((unsigned char)*p));
        if (!ok || (unsigned char)*p >= 0x80)
            return false;
    }
    return true;
}

static bool
s_ends_with (const char *text, const char *suffix)
{
    size_t n = strlen (text), m = strlen (suffix);
    return n >= m && !strcmp (text + n - m, suffix);
}

/*  Splits "a,b" into names; false (logged) on a bad list.  */
static bool
s_parse_labels (const char *name, const char *list, s_type_t type, char **out, size_t *count)
{
    *count = 0;
    if (!list || !*list)
        return true;
    const char *p = list;
    while (true) {
        const char *end = strchr (p, ',');
        size_t len = end ? (size_t)(end - p) : strlen (p);
        char label[64];
        if (len == 0 || len >= sizeof label || *count == BF_METRICS_MAX_LABELS) {
            bf_error ("metrics: %s: bad or too many label names '%s'", name, list);
            return false;
        }
        memcpy (label, p, len);
        label[len] = 0;
        if (!s_valid_name (label, false) || !strncmp (label, "__", 2)
            || (type == S_HISTOGRAM && !strcmp (label, "le"))) {
            bf_error ("metrics: %s: '%s' is not a valid label name", name, label);
            return false;
        }
        out[(*count)++] = strdup (label);
        if (!end)
            return true;
        p = end + 1;
    }
}

static bool
s_same_shape (const bf_metric_t *f, s_type_t type, char **labels, size_t nlabels,
              const double *bounds, size_t nbounds)
{
    if (f->type != type || f->nlabels != nlabels || f->nbounds != nbounds)
        return false;
    for (size_t i = 0; i < nlabels; i++)
        if (strcmp (f->labels[i], labels[i]))
            return false;
    for (size_t i = 0; i < nbounds; i++)
        if (f->bounds[i] != bounds[i])
            return false;
    return true;
}

static bf_metric_t *
s_register (s_type_t type, const char *name, const char *help, const char *label_names,
            const double *bounds, size_t nbounds)
{
    if (!s_valid_name (name, true) || strncmp (name, PREFIX, strlen (PREFIX))) {
        bf_error ("metrics: '%s' is not a valid name (billflow_ prefix, [a-zA-Z0-9_:])",
                  name ? name : "(null)");
        return NULL;
    }
    if (type == S_COUNTER && !s_ends_with (name, "_total")) {
        bf_error ("metrics: counter '%s' must end in _total", name);
        return NULL;
    }
    if (type != S_COUNTER && s_ends_with (name, "_total")) {
        bf_error ("metrics: '%s' ends in _total but is not a counter", name);
        return NULL;
    }
    if (type == S_HISTOGRAM) {
        bool ok = nbounds > 0 && nbounds <= BF_METRICS_MAX_BUCKETS && bounds;
        for (size_t i = 0; ok && i < nbounds; i++)
            ok = isfinite (bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]);
        if (!ok) {
            bf_error ("metrics: histogram '%s': bounds must be 1..%d finite, increasing values",
                      name, BF_METRICS_MAX_BUCKETS);
            return NULL;
        }
    } else
        nbounds = 0;
    char *labels[BF_METRICS_MAX_LABELS] = { NULL };
    size_t nlabels = 0;
    bf_metric_t *result = NULL;
    if (!s_parse_labels (name, label_names, type, labels, &nlabels))
        goto cleanup;

    pthread_mutex_lock (&s_lock);
    for (size_t i = 0; i < s_nfamilies; i++) {
        if (strcmp (s_families[i]->name, name))
            continue;
        if (s_same_shape (s_families[i], type, labels, nlabels, bounds, nbounds))
            result = s_families[i];
        else
            bf_error ("metrics: '%s' is already registered with another type or labels", name);
        pthread_mutex_unlock (&s_lock);
        goto cleanup;
    }
    bf_metric_t *f = s_nfamilies < MAX_FAMILIES ? calloc (1, sizeof *f) : NULL;
    if (f) {
        f->type = type;
        f->name = strdup (name);
        f->help = strdup (help ? help : "");
        if (!f->name || !f->help) {
            free (f->name);
            free (f->help);
            free (f);
            f = NULL;
        }
    }
    if (f) {
        memcpy (f->labels, labels, sizeof labels);
        memset (labels, 0, sizeof labels); /* owned by f now */
        f->nlabels = nlabels;
        if (nbounds)
            memcpy (f->bounds, bounds, nbounds * sizeof *bounds);
        f->nbounds = nbounds;
        s_families[s_nfamilies++] = f;
        result = f;
    } else
        bf_error ("metrics: cannot register '%s' (registry full or out of memory)", name);
    pthread_mutex_unlock (&s_lock);
cleanup:
    for (size_t i = 0; i < BF_METRICS_MAX_LABELS; i++)
        free (labels[i]);
    return result;
}

bf_metric_t *
bf_metrics_counter (const char *name, const char *help, const char *label_names)
{
    return s_register (S_COUNTER, name, help, label_names, NULL, 0);
}

bf_metric_t *
bf_metrics_gauge (const char *name, const char *help, const char *label_names)
{
    return s_register (S_GAUGE, name, help, label_names, NULL, 0);
}

bf_metric_t *
bf_metrics_histogram (const char *name, const char *help, const char *label_names,
                      const double *bounds, size_t nbounds)
{
    return s_register (S_HISTOGRAM, name, help, label_names, bounds, nbounds);
}

bf_series_t *
bf_metric_series (bf_metric_t *family, ...)
{
    if (!family)
        return NULL;
    const char *values[BF_METRICS_MAX_LABELS] = { NULL };
    va_list args;
    va_start (args, family);
    for (size_t i = 0; i < family->nlabels; i++) {
        values[i] = va_arg (args, const char *);
        if (!values[i])
            values[i] = "";
    }
    va_end (args);

    pthread_mutex_lock (&s_lock);
    bf_series_t *found = NULL;
    for (size_t s = 0; s < family->nseries && !found; s++) {
        bool same = true;
        for (size_t i = 0; i < family->nlabels && same; i++)
            same = !strcmp (family->series[s]->values[i], values[i]);
        if (same)
            found = family->series[s];
    }
    if (!found && family->nseries < BF_METRICS_MAX_SERIES) {
        bf_series_t *s = calloc (1, sizeof *s);
        bool ok = s != NULL;
        for (size_t i = 0; ok && i < family->nlabels; i++)
            ok = (s->values[i] = strdup (values[i])) != NULL;
        if (ok) {
            s->family = family;
            atomic_init (&s->bits, s_bits (0.0));
            family->series[family->nseries++] = s;
            found = s;
        } else if (s) {
            for (size_t i = 0; i < family->nlabels; i++)
                free (s->values[i]);
            free (s);
        }
    } else if (!found && !family->full_logged) {
        family->full_logged = true;
        bf_error ("metrics: %s has %d series already; further label values are dropped",
                  family->name, BF_METRICS_MAX_SERIES);
    }
    pthread_mutex_unlock (&s_lock);
    return found;
}

void
bf_counter_add (bf_series_t *series, uint64_t n)
{
    if (series && series->family->type == S_COUNTER)
        atomic_fetch_add_explicit (&series->count, n, memory_order_relaxed);
}

void
bf_gauge_set (bf_series_t *series, double value)
{
    if (series && series->family->type == S_GAUGE)
        atomic_store_explicit (&series->bits, s_bits (value), memory_order_relaxed);
}

static void
s_add_double (_Atomic uint64_t *bits, double delta)
{
    uint64_t old = atomic_load_explicit (bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit (bits, &old, s_bits (s_double (old) + delta),
                                                   memory_order_relaxed, memory_order_relaxed))
        ;
}

void
bf_gauge_add (bf_series_t *series, double delta)
{
    if (series && series->family->type == S_GAUGE)
        s_add_double (&series->bits, delta);
}

void
bf_gauge_set_fn (bf_series_t *series, double (*fn) (void *arg), void *arg)
{
    if (!series || series->family->type != S_GAUGE)
        return;
    /*  Under the lock, so a scrape never sees fn with the previous arg.  */
    pthread_mutex_lock (&s_lock);
    atomic_store (&series->fn_arg, arg);
    atomic_store (&series->fn, fn);
    pthread_mutex_unlock (&s_lock);
}

void
bf_histogram_observe (bf_series_t *series, double value)
{
    if (!series || series->family->type != S_HISTOGRAM || isnan (value))
        return;
    const bf_metric_t *f = series->family;
    size_t b = 0;
    while (b < f->nbounds && value > f->bounds[b])
        b++;
    atomic_fetch_add_explicit (&series->buckets[b], 1, memory_order_relaxed);
    s_add_double (&series->bits, value);
}

double
bf_series_value (const bf_series_t *series)
{
    if (!series)
        return 0;
    if (series->family->type == S_COUNTER)
        return (double)atomic_load_explicit (&series->count, memory_order_relaxed);
    if (series->family->type == S_GAUGE) {
        double (*fn) (void *) = atomic_load (&series->fn);
        if (fn)
            return fn (atomic_load (&series->fn_arg));
    }
    return s_double (atomic_load_explicit (&series->bits, memory_order_relaxed));
}

char *
bf_metrics_format_double (double value, char *out, size_t outsize)
{
    if (isnan (value))
        snprintf (out, outsize, "NaN");
    else if (isinf (value))
        snprintf (out, outsize, value > 0 ? "+Inf" : "-Inf");
    else if (value == floor (value) && fabs (value) < 1e15)
        snprintf (out, outsize, "%.0f", value);
    else {
        /*  Shortest of %.15g .. %.17g that reads back exactly.  */
        for (int precision = 15; precision <= 17; precision++) {
            snprintf (out, outsize, "%.*g", precision, value);
            if (strtod (out, NULL) == value)
                break;
        }
    }
    return out;
}

/*  --- rendering ---------------------------------------------------------- */

typedef struct {
    bf_text_buf_t text;
    bool failed; /* out of memory: the render returns NULL */
} s_buf_t;

static void
s_put (s_buf_t *b, const char *text, size_t len)
{
    if (!b->failed && bf_text_buf_add (&b->text, text, len))
        b->failed = true;
}

static void
s_puts (s_buf_t *b, const char *text)
{
    s_put (b, text, strlen (text));
}

/*  Label values escape backslash, double quote and newline; HELP text
    escapes backslash and newline only (the format's rules).  */
static void
s_put_escaped (s_buf_t *b, const char *text, bool quote)
{
    for (const char *p = text; *p; p++) {
        if (*p == '\\')
            s_puts (b, "\\\\");
        else if (*p == '\n')
            s_puts (b, "\\n");
        else if (*p == '"' && quote)
            s_puts (b, "\\\"");
        else
            s_put (b, p, 1);
    }
}

/*  name{labels[,le="..."]} value\n  */
static void
s_sample (s_buf_t *b, const bf_metric_t *f, const bf_series_t *s, const char *suffix,
          const char *le, const char *value)
{
    s_puts (b, f->name);
    s_puts (b, suffix);
    if (f->nlabels || le) {
        s_puts (b, "{");
        for (size_t i = 0; i < f->nlabels; i++) {
            s_puts (b, i ? ",": "");
            s_puts (b, f->labels[i]);
            s_puts (b, "=\"");
            s_put_escaped (b, s->values[i], true);
            s_puts (b, "\"");
        }
        if (le) {
            s_puts (b, f->nlabels ? ",le=\"" : "le=\"");
            s_puts (b, le);
            s_puts (b, "\"");
        }
        s_puts (b, "}");
    }
    s_puts (b, " ");
    s_puts (b, value);
    s_puts (b, "\n");
}

static void
s_render_family (s_buf_t *b, const bf_metric_t *f)
{
    static const char *const type_names[] = { "counter", "gauge", "histogram" };
    s_puts (b, "# HELP ");
    s_puts (b, f->name);
    s_puts (b, " ");
    s_put_escaped (b, f->help, false);
    s_puts (b, "\n# TYPE ");
    s_puts (b, f->name);
    s_puts (b, " ");
    s_puts (b, type_names[f->type]);
    s_puts (b, "\n");
    char value[64], le[64];
    for (size_t i = 0; i < f->nseries; i++) {
        const bf_series_t *s = f->series[i];
        if (f->type == S_COUNTER) {
            snprintf (value, sizeof value, "%llu",
                      (unsigned long long)atomic_load_explicit (&s->count, memory_order_relaxed));
            s_sample (b, f, s, "", NULL, value);
        } else if (f->type == S_GAUGE)
            s_sample (b, f, s, "", NULL,
                      bf_metrics_format_double (bf_series_value (s), value, sizeof value));
        else {
            uint64_t cumulative = 0;
            for (size_t k = 0; k <= f->nbounds; k++) {
                cumulative += atomic_load_explicit (&s->buckets[k], memory_order_relaxed);
                snprintf (value, sizeof value, "%llu", (unsigned long long)cumulative);
                if (k < f->nbounds)
                    bf_metrics_format_double (f->bounds[k], le, sizeof le);
                else
                    snprintf (le, sizeof le, "+Inf");
                s_sample (b, f, s, "_bucket", le, value);
            }
            s_sample (b, f, s, "_sum", NULL,
                      bf_metrics_format_double (
                          s_double (atomic_load_explicit (&s->bits, memory_order_relaxed)), value,
                          sizeof value));
            snprintf (value, sizeof value, "%llu", (unsigned long long)cumulative);
            s_sample (b, f, s, "_count", NULL, value);
        }
    }
}

char *
bf_metrics_render (size_t *len)
{
    s_buf_t b = { 0 };
    s_put (&b, "", 0); /* an empty registry renders as "" */
    pthread_mutex_lock (&s_lock);
    for (size_t i = 0; i < s_nfamilies; i++)
        if (!atomic_load_explicit (&s_families[i]->hidden, memory_order_relaxed))
            s_render_family (&b, s_families[i]);
    pthread_mutex_unlock (&s_lock);
    if (b.failed) {
        bf_text_buf_free (&b.text);
        return NULL;
    }
    if (len)
        *len = b.text.len;
    return b.text.data;
}

void
bf_metric_set_shown (bf_metric_t *family, bool shown)
{
    if (family)
        atomic_store_explicit (&family->hidden, !shown, memory_order_relaxed);
}

/*  --- built-ins ----------------------------------------------------------- */

const char *
bf_metrics_version (void)
{
    return BF_VERSION;
}

const char *
bf_metrics_revision (void)
{
    return *BF_REVISION ? BF_REVISION : "unknown";
}

static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;

static void
s_init (void)
{
    bf_gauge_set (bf_metric_series (bf_metrics_gauge ("billflow_build_info",
                                                      "Always 1; the labels name the build.",
                                                      "version,revision"),
                                    bf_metrics_version (), bf_metrics_revision ()),
                  1);
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    bf_gauge_set (bf_metric_series (bf_metrics_gauge ("billflow_process_start_time_seconds",
                                                      "Start time of the process since the Unix "
                                                      "epoch, in seconds.",
                                                      NULL)),
                  (double)now.tv_sec + now.tv_nsec / 1e9);
}

void
bf_metrics_init (void)
{
    pthread_once (&s_init_once, s_init);
}
