/*  bf_metrics: the text exposition writer checked by a strict parser of
    format 0.0.4 written here (every line's syntax, TYPE before samples,
    histogram buckets cumulative with +Inf equal to _count), escaping,
    name rules, and exact sums under concurrent updates.  */

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_metrics.h"
#include "bf_testutil.h"

/*  --- a strict parser of the text format -------------------------------- */

#define MAX_SAMPLES 4096

typedef struct {
    char name[128];
    char labels[512]; /* unescaped, as k=v pairs joined by '\x1f' in order */
    double value;
} sample_t;

typedef struct {
    sample_t samples[MAX_SAMPLES];
    int nsamples;
    char types[256][128]; /* family names with a TYPE, in order */
    char type_of[256][16];
    int ntypes;
    char error[256];
} parsed_t;

static bool
s_fail (parsed_t *p, int line, const char *why)
{
    snprintf (p->error, sizeof p->error, "line %d: %s", line, why);
    return false;
}

static const char *
s_name (const char *at, char *out, size_t outsize, bool metric)
{
    size_t n = 0;
    if (!(isalpha ((unsigned char)*at) || *at == '_' || (metric && *at == ':')))
        return NULL;
    while (isalnum ((unsigned char)at[n]) || at[n] == '_' || (metric && at[n] == ':')) {
        if (n + 1 >= outsize)
            return NULL;
        out[n] = at[n];
        n++;
    }
    out[n] = 0;
    return at + n;
}

/*  A sample value: a Go ParseFloat-compatible number, +Inf, -Inf, NaN.  */
static bool
s_value (const char *text, double *value)
{
    if (!strcmp (text, "+Inf")) {
        *value = INFINITY;
        return true;
    }
    if (!strcmp (text, "-Inf")) {
        *value = -INFINITY;
        return true;
    }
    if (!strcmp (text, "NaN")) {
        *value = NAN;
        return true;
    }
    for (const char *c = text; *c; c++)
        if (!isdigit ((unsigned char)*c) && !strchr ("+-.eE", *c))
            return false;
    char *end;
    *value = strtod (text, &end);
    return *text && !*end;
}

static const char *
s_type_of (parsed_t *p, const char *family)
{
    for (int i = 0; i < p->ntypes; i++)
        if (!strcmp (p->types[i], family))
            return p->type_of[i];
    return NULL;
}

/*  The family a sample name belongs to, given the TYPE lines so far.  */
static const char *
s_family_of (parsed_t *p, const char *name, char *family, size_t size)
{
    snprintf (family, size, "%s", name);
    const char *type = s_type_of (p, family);
    if (type)
        return strcmp (type, "histogram") ? type : NULL; /* bare name of a histogram: invalid */
    static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
    for (int i = 0; i < 3; i++) {
        size_t n = strlen (name), m = strlen (suffixes[i]);
        if (n > m && !strcmp (name + n - m, suffixes[i])) {
            snprintf (family, size, "%.*s", (int)(n - m), name);
            type = s_type_of (p, family);
            if (type && !strcmp (type, "histogram"))
                return type;
        }
    }
    return NULL;
}

static bool
s_parse_line (parsed_t *p, int lineno, const char *line)
{
    char name[128];
    if (!strncmp (line, "# HELP ", 7)) {
        const char *rest = s_name (line + 7, name, sizeof name, true);
        if (!rest || *rest != ' ')
            return s_fail (p, lineno, "HELP: bad name");
        for (const char *c = rest + 1; *c; c++)
            if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
                return s_fail (p, lineno, "HELP: bad escape");
            else if (*c == '\\')
                c++;
        return true;
    }
    if (!strncmp (line, "# TYPE ", 7)) {
        const char *rest = s_name (line + 7, name, sizeof name, true);
        if (!rest || *rest != ' ')
            return s_fail (p, lineno, "TYPE: bad name");
        rest++;
        if (strcmp (rest, "counter") && strcmp (rest, "gauge") && strcmp (rest, "histogram")
            && strcmp (rest, "summary") && strcmp (rest, "untyped"))
            return s_fail (p, lineno, "TYPE: unknown type");
        if (s_type_of (p, name))
            return s_fail (p, lineno, "TYPE: family given twice");
        snprintf (p->types[p->ntypes], sizeof p->types[0], "%s", name);
        snprintf (p->type_of[p->ntypes++], sizeof p->type_of[0], "%s", rest);
        return true;
    }
    if (line[0] == '#')
        return s_fail (p, lineno, "a comment that is neither HELP nor TYPE");
    if (p->nsamples == MAX_SAMPLES)
        return s_fail (p, lineno, "too many samples for the test parser");
    sample_t *s = &p->samples[p->nsamples];
    memset (s, 0, sizeof *s);
    const char *at = s_name (line, s->name, sizeof s->name, true);
    if (!at)
        return s_fail (p, lineno, "sample: bad metric name");
    char family[128];
    if (!s_family_of (p, s->name, family, sizeof family))
        return s_fail (p, lineno, "sample before its TYPE line, or a bad suffix");
    size_t used = 0;
    if (*at == '{') {
        at++;
        while (*at != '}') {
            char label[64];
            at = s_name (at, label, sizeof label, false);
            if (!at || *at != '=' || at[1] != '"')
                return s_fail (p, lineno, "sample: bad label");
            at += 2;
            used += (size_t)snprintf (s->labels + used, sizeof s->labels - used, "%s%s=",
                                      used ? "\x1f" : "", label);
            while (*at != '"') {
                char c = *at;
                if (!c || c == '\n')
                    return s_fail (p, lineno, "sample: unterminated label value");
                if (c == '\\') {
                    at++;
                    c = *at == 'n' ? '\n' : *at;
                    if (*at != '\\' && *at != '"' && *at != 'n')
                        return s_fail (p, lineno, "sample: bad escape in label value");
                }
                if (used + 1 < sizeof s->labels)
                    s->labels[used++] = c;
                at++;
            }
            at++;
            if (*at == ',')
                at++;
            else if (*at != '}')
                return s_fail (p, lineno, "sample: expected , or }");
        }
        at++;
    }
    if (*at != ' ')
        return s_fail (p, lineno, "sample: expected one space before the value");
    at++;
    char value[64];
    const char *space = strchr (at, ' ');
    if (space) /* an optional timestamp: an integer */
        for (const char *c = space + 1; *c; c++)
            if (!isdigit ((unsigned char)*c) && !(c == space + 1 && *c == '-'))
                return s_fail (p, lineno, "sample: bad timestamp");
    snprintf (value, sizeof value, "%.*s", (int)(space ? space - at : (ptrdiff_t)strlen (at)), at);
    if (!s_value (value, &s->value))
        return s_fail (p, lineno, "sample: bad value");
    p->nsamples++;
    return true;
}

/*  Parses text whole: every line must be valid and end with '\n'.  */
static bool
s_parse (parsed_t *p, const char *text)
{
    memset (p, 0, sizeof *p);
    int lineno = 0;
    const char *at = text;
    while (*at) {
        const char *nl = strchr (at, '\n');
        lineno++;
        if (!nl)
            return s_fail (p, lineno, "last line without a newline");
        char line[1024];
        if ((size_t)(nl - at) >= sizeof line)
            return s_fail (p, lineno, "line too long for the test parser");
        memcpy (line, at, (size_t)(nl - at));
        line[nl - at] = 0;
        if (!*line)
            return s_fail (p, lineno, "empty line");
        if (!s_parse_line (p, lineno, line))
            return false;
        at = nl + 1;
    }
    return true;
}

/*  The value of the sample name{labels}, labels as "k=v\x1fk=v"; NAN
    when absent.  */
static double
s_get (const parsed_t *p, const char *name, const char *labels)
{
    for (int i = 0; i < p->nsamples; i++)
        if (!strcmp (p->samples[i].name, name) && !strcmp (p->samples[i].labels, labels))
            return p->samples[i].value;
    return NAN;
}

/*  Histogram rules over all series of family: le increasing, counts
    cumulative, +Inf last and equal to _count.  */
static void
s_check_histogram (const parsed_t *p, const char *family)
{
    char bucket[160], count[160];
    snprintf (bucket, sizeof bucket, "%s_bucket", family);
    snprintf (count, sizeof count, "%s_count", family);
    int series = 0;
    for (int i = 0; i < p->nsamples; i++) {
        if (strcmp (p->samples[i].name, count))
            continue;
        series++;
        const char *labels = p->samples[i].labels;
        double last_le = -INFINITY, last_count = 0, inf = NAN;
        int buckets = 0;
        for (int k = 0; k < p->nsamples; k++) {
            const sample_t *b = &p->samples[k];
            if (strcmp (b->name, bucket))
                continue;
            const char *le = strstr (b->labels, "le=");
            assert_non_null (le);
            size_t prefix = (size_t)(le - b->labels);
            size_t want = strlen (labels);
            /*  Same series: the labels before le are the _count's.  */
            if (!(prefix == (want ? want + 1 : 0) && !strncmp (b->labels, labels, want)))
                continue;
            double bound;
            assert_true (s_value (le + 3, &bound));
            assert_true (bound > last_le);
            assert_true (b->value >= last_count);
            last_le = bound;
            last_count = b->value;
            buckets++;
            if (isinf (bound))
                inf = b->value;
        }
        assert_true (buckets >= 2);
        assert_true (isinf (last_le)); /* +Inf is the last bucket */
        assert_true (inf == p->samples[i].value);
    }
    assert_true (series > 0);
}

/*  --- tests --------------------------------------------------------------- */

static char *
s_render (parsed_t *p)
{
    size_t len = 0;
    char *text = bf_metrics_render (&len);
    assert_non_null (text);
    assert_int_equal (len, strlen (text));
    if (!s_parse (p, text))
        fail_msg ("exposition does not parse: %s\n%s", p->error, text);
    return text;
}

static void
test_parser_rejects_bad_lines (void **state)
{
    (void)state;
    /*  The parser must be able to fail, or the parse-back proves nothing.  */
    static parsed_t p;
    assert_true (s_parse (&p, "# TYPE billflow_x_total counter\nbillflow_x_total{a=\"b\"} 1\n"));
    assert_false (s_parse (&p, "billflow_x_total 1\n"));                    /* no TYPE */
    assert_false (s_parse (&p, "# TYPE a counter\na{b=\"c\\q\"} 1\n"));      /* bad escape */
    assert_false (s_parse (&p, "# TYPE a counter\na{b=\"c\"} one\n"));       /* bad value */
    assert_false (s_parse (&p, "# TYPE a counter\na{b=\"c\"}  1\n"));        /* two spaces */
    assert_false (s_parse (&p, "# TYPE a counter\na{b=\"c\n\"} 1\n"));       /* raw newline */
    assert_false (s_parse (&p, "# TYPE a counter\na 1"));                    /* no final \n */
    assert_false (s_parse (&p, "# TYPE a histogram\na 1\n"));                /* bare histogram */
    assert_false (s_parse (&p, "# TYPE a counter\n# TYPE a gauge\n"));       /* twice */
    assert_false (s_parse (&p, "# TYPE 1a counter\n"));                      /* bad name */
}

static void
test_names_are_enforced (void **state)
{
    (void)state;
    assert_null (bf_metrics_counter ("bills_total", "no prefix", NULL));
    assert_null (bf_metrics_counter ("billflow_bills", "counter without _total", NULL));
    assert_null (bf_metrics_gauge ("billflow_open_total", "gauge with _total", NULL));
    assert_null (bf_metrics_gauge ("billflow_bad-name", "dash", NULL));
    assert_null (bf_metrics_gauge ("billflow_g1", "bad label", "1x"));
    assert_null (bf_metrics_gauge ("billflow_g2", "reserved label", "__x"));
    assert_null (bf_metrics_histogram ("billflow_h1_seconds", "le label", "le",
                                       (double[]){ 1 }, 1));
    assert_null (bf_metrics_histogram ("billflow_h2_seconds", "bounds not increasing", NULL,
                                       (double[]){ 2, 1 }, 2));
    assert_null (bf_metrics_gauge ("billflow_g3", "too many labels", "a,b,c,d,e"));
    /*  Same name and shape: the same family; another shape: refused.  */
    bf_metric_t *a = bf_metrics_counter ("billflow_same_total", "x", "channel");
    assert_non_null (a);
    assert_ptr_equal (bf_metrics_counter ("billflow_same_total", "x", "channel"), a);
    assert_null (bf_metrics_counter ("billflow_same_total", "x", "provider"));
    assert_null (bf_metrics_gauge ("billflow_same_total", "x", "channel"));
    /*  Updates through NULL do nothing.  */
    bf_counter_inc (NULL);
    bf_gauge_set (NULL, 1);
    bf_histogram_observe (NULL, 1);
    assert_null (bf_metric_series (NULL));
}

static void
test_label_values_are_escaped (void **state)
{
    (void)state;
    bf_metric_t *f = bf_metrics_gauge ("billflow_escape_test", "Help with \\ and\nnewline.",
                                       "provider,channel");
    const char *nasty = "a\\b\"c\nd";
    bf_gauge_set (bf_metric_series (f, nasty, "email"), 2.5);
    static parsed_t p;
    char *text = s_render (&p);
    assert_non_null (strstr (text, "billflow_escape_test{provider=\"a\\\\b\\\"c\\nd\","
                                   "channel=\"email\"} 2.5\n"));
    assert_non_null (strstr (text, "# HELP billflow_escape_test Help with \\\\ and\\nnewline.\n"));
    /*  The parser unescapes back to the original value.  */
    char labels[128];
    snprintf (labels, sizeof labels, "provider=%s\x1f" "channel=email", nasty);
    assert_true (s_get (&p, "billflow_escape_test", labels) == 2.5);
    free (text);
}

static void
test_histogram_buckets_are_cumulative (void **state)
{
    (void)state;
    const double bounds[] = { 0.1, 0.5, 1, 5 };
    bf_metric_t *f
        = bf_metrics_histogram ("billflow_test_duration_seconds", "Test durations.", "channel",
                                bounds, 4);
    bf_series_t *sms = bf_metric_series (f, "sms");
    bf_series_t *push = bf_metric_series (f, "push");
    const double values[] = { 0.05, 0.1, 0.3, 0.7, 0.9, 3, 100, 1e9 };
    double sum = 0;
    for (size_t i = 0; i < 8; i++) {
        bf_histogram_observe (sms, values[i]);
        sum += values[i];
    }
    bf_histogram_observe (sms, NAN); /* ignored */
    bf_histogram_observe (push, 0.2);
    static parsed_t p;
    char *text = s_render (&p);
    const char *b = "billflow_test_duration_seconds_bucket";
    /*  le is inclusive: 0.1 falls in the 0.1 bucket.  */
    assert_true (s_get (&p, b, "channel=sms\x1fle=0.1") == 2);
    assert_true (s_get (&p, b, "channel=sms\x1fle=0.5") == 3);
    assert_true (s_get (&p, b, "channel=sms\x1fle=1") == 5);
    assert_true (s_get (&p, b, "channel=sms\x1fle=5") == 6);
    assert_true (s_get (&p, b, "channel=sms\x1fle=+Inf") == 8);
    assert_true (s_get (&p, "billflow_test_duration_seconds_count", "channel=sms") == 8);
    assert_true (fabs (s_get (&p, "billflow_test_duration_seconds_sum", "channel=sms") - sum)
                 < 1e-6 * sum);
    assert_true (s_get (&p, b, "channel=push\x1fle=0.1") == 0);
    assert_true (s_get (&p, b, "channel=push\x1fle=0.5") == 1);
    assert_true (s_get (&p, b, "channel=push\x1fle=+Inf") == 1);
    s_check_histogram (&p, "billflow_test_duration_seconds");
    free (text);
}

typedef struct {
    bf_series_t *counter, *gauge, *histogram;
    int rounds;
} worker_t;

static void *
s_worker (void *arg)
{
    worker_t *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        bf_counter_inc (w->counter);
        bf_gauge_add (w->gauge, 1);
        bf_histogram_observe (w->histogram, (double)(i % 4));
    }
    return NULL;
}

/*  A scraper racing the workers: every render parses and keeps +Inf ==
    _count.  */
static void *
s_scraper (void *arg)
{
    volatile int *stop = arg;
    static parsed_t p;
    int scrapes = 0;
    while (!*stop || scrapes == 0) {
        char *text = bf_metrics_render (NULL);
        if (!s_parse (&p, text)) {
            free (text);
            return (void *)1;
        }
        double inf = s_get (&p, "billflow_race_seconds_bucket", "le=+Inf");
        double count = s_get (&p, "billflow_race_seconds_count", "");
        free (text);
        if (!(inf == count || (isnan (inf) && isnan (count))))
            return (void *)2;
        scrapes++;
    }
    return NULL;
}

static void
test_concurrent_updates_sum_exactly (void **state)
{
    (void)state;
    enum { THREADS = 4, ROUNDS = 200000 };
    const double bounds[] = { 0.5, 1.5, 2.5 };
    worker_t w = {
        .counter = bf_metric_series (bf_metrics_counter ("billflow_race_total", "Race.", NULL)),
        .gauge = bf_metric_series (bf_metrics_gauge ("billflow_race_level", "Race.", NULL)),
        .histogram = bf_metric_series (
            bf_metrics_histogram ("billflow_race_seconds", "Race.", NULL, bounds, 3)),
        .rounds = ROUNDS,
    };
    assert_non_null (w.counter);
    assert_non_null (w.gauge);
    assert_non_null (w.histogram);
    pthread_t threads[THREADS], scraper;
    volatile int stop = 0;
    assert_int_equal (pthread_create (&scraper, NULL, s_scraper, (void *)&stop), 0);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal (pthread_create (&threads[i], NULL, s_worker, &w), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join (threads[i], NULL);
    stop = 1;
    void *scraped;
    pthread_join (scraper, &scraped);
    assert_null (scraped);

    static parsed_t p;
    char *text = s_render (&p);
    const double total = (double)THREADS * ROUNDS;
    assert_true (s_get (&p, "billflow_race_total", "") == total);
    assert_true (s_get (&p, "billflow_race_level", "") == total);
    assert_true (s_get (&p, "billflow_race_seconds_count", "") == total);
    assert_true (s_get (&p, "billflow_race_seconds_bucket", "le=0.5") == total / 4);
    assert_true (s_get (&p, "billflow_race_seconds_bucket", "le=1.5") == total / 2);
    /*  0+1+2+3 per 4 rounds: every value is exact in a double.  */
    assert_true (s_get (&p, "billflow_race_seconds_sum", "") == total / 4 * 6);
    free (text);
}

static double
s_callback (void *arg)
{
    return *(double *)arg;
}

static void
test_builtins_and_whole_output_parse (void **state)
{
    (void)state;
    bf_metrics_init ();
    bf_metrics_init (); /* twice is once */
    static double level = 7.25;
    bf_gauge_set_fn (bf_metric_series (bf_metrics_gauge ("billflow_callback_level", "Cb.", NULL)),
                     s_callback, &level);
    bf_metric_t *many = bf_metrics_counter ("billflow_many_total", "Series cap.", "outcome");
    for (int i = 0; i < BF_METRICS_MAX_SERIES; i++) {
        char v[16];
        snprintf (v, sizeof v, "v%d", i);
        assert_non_null (bf_metric_series (many, v));
    }
    assert_null (bf_metric_series (many, "one-too-many"));
    assert_non_null (bf_metric_series (many, "v0")); /* existing ones still found */

    static parsed_t p;
    char *text = s_render (&p);
    char labels[160];
    snprintf (labels, sizeof labels, "version=%s\x1frevision=%s", bf_metrics_version (),
              bf_metrics_revision ());
    assert_true (s_get (&p, "billflow_build_info", labels) == 1);
    assert_true (*bf_metrics_revision ());
    double start = s_get (&p, "billflow_process_start_time_seconds", "");
    assert_true (start > 1.6e9);
    assert_true (s_get (&p, "billflow_callback_level", "") == 7.25);
    level = 8;
    free (text);
    text = s_render (&p);
    assert_true (s_get (&p, "billflow_callback_level", "") == 8);
    /*  The TYPE of every family agrees with its name rules.  */
    for (int i = 0; i < p.ntypes; i++) {
        assert_int_equal (strncmp (p.types[i], "billflow_", 9), 0);
        size_t n = strlen (p.types[i]);
        bool total = n > 6 && !strcmp (p.types[i] + n - 6, "_total");
        assert_true (total == !strcmp (p.type_of[i], "counter"));
        if (!strcmp (p.type_of[i], "histogram"))
            s_check_histogram (&p, p.types[i]);
    }
    free (text);
}

static void
test_hidden_family_is_left_out (void **state)
{
    (void)state;
    bf_metric_t *f = bf_metrics_gauge ("billflow_hidden_test", "Shown by one process only.", "state");
    bf_series_t *s = bf_metric_series (f, "up");
    bf_gauge_set (s, 7);
    static parsed_t p;
    char *text = s_render (&p);
    assert_non_null (strstr (text, "\nbillflow_hidden_test{state=\"up\"} 7\n"));
    free (text);
    bf_metric_set_shown (f, false);
    text = s_render (&p);
    assert_null (strstr (text, "billflow_hidden_test"));
    free (text);
    /*  Its value is kept while hidden.  */
    bf_gauge_add (s, 1);
    bf_metric_set_shown (f, true);
    text = s_render (&p);
    assert_non_null (strstr (text, "# TYPE billflow_hidden_test gauge\n"));
    assert_true (s_get (&p, "billflow_hidden_test", "state=up") == 8);
    free (text);
    bf_metric_set_shown (NULL, false); /* does nothing */
}

static void
test_format_double (void **state)
{
    (void)state;
    char out[64];
    assert_string_equal (bf_metrics_format_double (0, out, sizeof out), "0");
    assert_string_equal (bf_metrics_format_double (-3, out, sizeof out), "-3");
    assert_string_equal (bf_metrics_format_double (0.005, out, sizeof out), "0.005");
    assert_string_equal (bf_metrics_format_double (0.1, out, sizeof out), "0.1");
    assert_string_equal (bf_metrics_format_double (INFINITY, out, sizeof out), "+Inf");
    assert_string_equal (bf_metrics_format_double (-INFINITY, out, sizeof out), "-Inf");
    assert_string_equal (bf_metrics_format_double (NAN, out, sizeof out), "NaN");
    double third = 1.0 / 3;
    assert_true (strtod (bf_metrics_format_double (third, out, sizeof out), NULL) == third);
    assert_true (strtod (bf_metrics_format_double (1e300, out, sizeof out), NULL) == 1e300);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_parser_rejects_bad_lines),
        cmocka_unit_test (test_names_are_enforced),
        cmocka_unit_test (test_label_values_are_escaped),
        cmocka_unit_test (test_histogram_buckets_are_cumulative),
        cmocka_unit_test (test_concurrent_updates_sum_exactly),
        cmocka_unit_test (test_builtins_and_whole_output_parse),
        cmocka_unit_test (test_hidden_family_is_left_out),
        cmocka_unit_test (test_format_double),
    };
    return cmocka_run_group_tests (tests, bf_testutil_quiet_setup, bf_testutil_quiet_teardown);
}
