/*  bf_control_metrics — registration and updates of control's metrics.  */

#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bf_control_metrics.h"
#include "bf_db.h"
#include "bf_log.h"
#include "bf_metrics.h"
#include "bf_verbs.h"

/*  A down instance leaves the figure after this long.  */
#define S_DOWN_KEEP_MS (10 * 60 * 1000)
/*  Instances remembered at most (a service key may invent instance ids).  */
#define S_MAX_INSTANCES 1024
/*  At most one warning per this interval for a failed refresh.  */
#define S_WARN_EVERY_MS 60000
/*  Label values from the database are clipped to this many bytes.  */
#define S_LABEL_MAX 32

static const char *s_services[] = { "settle", "notify" };
#define S_SERVICES 2
static const char *s_chunk_states[] = { "PENDING", "CLAIMED", "DONE" };
#define S_CHUNK_STATES 3

/*  The cluster-wide snapshot: one statement, one row per figure, kind
    first. d: deliveries (channel, state, n) over every period, from the
    counters the delivery triggers keep; c: chunks of the newest run by
    state; o: seconds since the oldest unfinished run was created (0:
    none); h: held notices whose release time has passed (index
    delivery_held holds HELD rows only).  */
static const char s_sql_snapshot[]
    = "SELECT 'd', channel, state, sum (n)::float8 FROM delivery_count_shown"
      " GROUP BY channel, state"
      " UNION ALL"
      " SELECT 'c', state, '', count(*)::float8 FROM settlement_chunk"
      "  WHERE run_id = (SELECT max (run_id) FROM settlement_run) GROUP BY state"
      " UNION ALL"
      " SELECT 'o', '', '', coalesce (extract (epoch FROM now () - min (created_at)), 0)::float8"
      "  FROM settlement_run WHERE state NOT IN ('COMPLETED', 'FAILED')"
      " UNION ALL"
      " SELECT 'h', '', '', count(*)::float8 FROM delivery"
      "  WHERE state = 'HELD' AND not_before < now ()"
      "  AND NOT EXISTS (SELECT 1 FROM dispatch_claim k WHERE k.delivery_id = delivery.id)";

typedef struct {
    char service[16];
    bool up;
    int64_t down_at; /* zclock_mono */
} s_instance_t;

typedef struct {
    char channel[S_LABEL_MAX + 1], state[S_LABEL_MAX + 1];
    bf_series_t *series;
} s_delivery_t;

static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static bf_metric_t *s_commands, *s_queries, *s_malformed, *s_deliveries_f, *s_chunks_f, *s_oldest_f,
    *s_overdue_f;
static bf_series_t *s_repeated, *s_refused, *s_instances[S_SERVICES][2], *s_chunks[S_CHUNK_STATES],
    *s_oldest, *s_overdue;

/*  Control actor only from here on.  */
static s_delivery_t s_deliveries[BF_METRICS_MAX_SERIES];
static size_t s_ndeliveries;
static zhashx_t *s_known; /* instance -> s_instance_t */
static bool s_shown;
static int64_t s_refresh_at, s_warned_at;

static void
s_init (void)
{
    s_commands = bf_metrics_counter (
        "billflow_control_commands_total",
        "Commands by verb and outcome (stored, rejected, rate_limited, unavailable, done, failed,"
        " gave_up).",
        "verb,outcome");
    s_repeated = bf_metric_series (bf_metrics_counter (
        "billflow_control_commands_repeated_total",
        "Commands whose id was already stored, answered from the store.", NULL));
    s_queries
        = bf_metrics_counter ("billflow_control_queries_total", "Queries taken, by verb.", "verb");
    s_refused = bf_metric_series (bf_metrics_counter (
        "billflow_control_curve_refused_total",
        "CURVE connections refused: the key is not in the allowed list.", NULL));
    s_malformed = bf_metrics_counter ("billflow_control_malformed_frames_total",
                                      "Frames dropped as malformed, by reason.", "reason");
    bf_metric_t *instances = bf_metrics_gauge (
        "billflow_control_instances",
        "Service instances this control sees up, and those silent for three heartbeats (down).",
        "service,state");
    for (int i = 0; i < S_SERVICES; i++) {
        s_instances[i][0] = bf_metric_series (instances, s_services[i], "up");
        s_instances[i][1] = bf_metric_series (instances, s_services[i], "down");
    }
    s_deliveries_f = bf_metrics_gauge (
        "billflow_deliveries",
        "Deliveries (notices) by state and channel over every period; active control only.",
        "state,channel");
    s_chunks_f = bf_metrics_gauge (
        "billflow_run_chunks", "Chunks of the newest run by state; active control only.", "state");
    for (int i = 0; i < S_CHUNK_STATES; i++)
        s_chunks[i] = bf_metric_series (s_chunks_f, s_chunk_states[i]);
    s_oldest_f = bf_metrics_gauge (
        "billflow_run_oldest_unfinished_age_seconds",
        "Age of the oldest run not COMPLETED or FAILED, 0 when none; active control only.", NULL);
    s_oldest = bf_metric_series (s_oldest_f);
    s_overdue_f = bf_metrics_gauge (
        "billflow_notices_held_overdue",
        "Held notices (quiet hours) past their release time; active control only.", NULL);
    s_overdue = bf_metric_series (s_overdue_f);
    bf_metric_set_shown (s_deliveries_f, false);
    bf_metric_set_shown (s_chunks_f, false);
    bf_metric_set_shown (s_oldest_f, false);
    bf_metric_set_shown (s_overdue_f, false);
}

void
bf_control_metrics_init (void)
{
    pthread_once (&s_once, s_init);
}

/*  A verb as a label: the catalogue's spelling, or "other".  */
static const char *
s_verb (const char *verb)
{
    const bf_verb_t *known = bf_verb_find (verb);
    return known ? known->verb : "other";
}

void
bf_control_metrics_command (const char *verb, const char *outcome)
{
    pthread_once (&s_once, s_init);
    if (!verb || !outcome)
        return;
    char lower[16];
    size_t i = 0;
    for (; outcome[i] && i + 1 < sizeof lower; i++)
        lower[i]
            = (char)(outcome[i] >= 'A' && outcome[i] <= 'Z' ? outcome[i] - 'A' + 'a' : outcome[i]);
    lower[i] = 0;
    /*  Rare events: looking the series up each time (the registry mutex)
        is cheaper than keeping a table of verbs by outcomes here.  */
    bf_counter_inc (bf_metric_series (s_commands, s_verb (verb), lower));
}

void
bf_control_metrics_repeated (void)
{
    pthread_once (&s_once, s_init);
    bf_counter_inc (s_repeated);
}

void
bf_control_metrics_query (const char *verb)
{
    pthread_once (&s_once, s_init);
    bf_counter_inc (bf_metric_series (s_queries, s_verb (verb)));
}

void
bf_control_metrics_curve_refused (void)
{
    pthread_once (&s_once, s_init);
    bf_counter_inc (s_refused);
}

void
bf_control_metrics_malformed (const char *reason)
{
    pthread_once (&s_once, s_init);
    bf_counter_inc (bf_metric_series (s_malformed, reason ? reason : "unknown"));
}

/*  --- instances ------------------------------------------------------- */

static int
s_service_index (const char *service)
{
    for (int i = 0; i < S_SERVICES; i++)
        if (service && !strcmp (service, s_services[i]))
            return i;
    return -1;
}

static void
s_count_instances (void)
{
    int counts[S_SERVICES][2] = { { 0, 0 }, { 0, 0 } };
    if (s_known)
        for (s_instance_t *it = zhashx_first (s_known); it; it = zhashx_next (s_known)) {
            int i = s_service_index (it->service);
            if (i >= 0)
                counts[i][it->up ? 0 : 1]++;
        }
    for (int i = 0; i < S_SERVICES; i++)
        for (int j = 0; j < 2; j++)
            bf_gauge_set (s_instances[i][j], counts[i][j]);
}

static void
s_free_item (void **item)
{
    free (*item);
    *item = NULL;
}

void
bf_control_metrics_instance (const char *service, const char *instance, bool up)
{
    pthread_once (&s_once, s_init);
    if (s_service_index (service) < 0 || !instance)
        return;
    if (!s_known) {
        s_known = zhashx_new ();
        if (!s_known)
            return;
        zhashx_set_destructor (s_known, s_free_item);
    }
    s_instance_t *it = zhashx_lookup (s_known, instance);
    if (!it) {
        if (zhashx_size (s_known) >= S_MAX_INSTANCES) {
            bf_warn ("control: metrics: more than %d instances; %s %s not counted", S_MAX_INSTANCES,
                     service, instance);
            return;
        }
        it = calloc (1, sizeof *it);
        if (!it)
            return;
        zhashx_insert (s_known, instance, it);
    }
    snprintf (it->service, sizeof it->service, "%s", service);
    it->up = up;
    it->down_at = up ? 0 : zclock_mono ();
    s_count_instances ();
}

void
bf_control_metrics_instances_clear (void)
{
    pthread_once (&s_once, s_init);
    if (s_known)
        zhashx_purge (s_known);
    s_count_instances ();
}

/*  Forgets instances down for longer than S_DOWN_KEEP_MS.  */
static void
s_retire_instances (void)
{
    if (!s_known)
        return;
    int64_t now = zclock_mono ();
    zlistx_t *old = zlistx_new ();
    if (!old)
        return;
    for (s_instance_t *it = zhashx_first (s_known); it; it = zhashx_next (s_known))
        if (!it->up && now - it->down_at >= S_DOWN_KEEP_MS)
            zlistx_add_end (old, strdup ((const char *)zhashx_cursor (s_known)));
    for (char *key = zlistx_first (old); key; key = zlistx_next (old)) {
        if (key)
            zhashx_delete (s_known, key);
        free (key);
    }
    if (zlistx_size (old))
        s_count_instances ();
    zlistx_destroy (&old);
}

/*  --- the cluster-wide snapshot ---------------------------------------- */

static void
s_show (bool shown)
{
    if (shown == s_shown)
        return;
    s_shown = shown;
    bf_metric_set_shown (s_deliveries_f, shown);
    bf_metric_set_shown (s_chunks_f, shown);
    bf_metric_set_shown (s_oldest_f, shown);
    bf_metric_set_shown (s_overdue_f, shown);
}

/*  The series of (channel, state), remembered; NULL when the family is
    full.  */
static s_delivery_t *
s_delivery (const char *channel, const char *state)
{
    for (size_t i = 0; i < s_ndeliveries; i++)
        if (!strcmp (s_deliveries[i].channel, channel) && !strcmp (s_deliveries[i].state, state))
            return &s_deliveries[i];
    if (s_ndeliveries == BF_METRICS_MAX_SERIES)
        return NULL;
    s_delivery_t *d = &s_deliveries[s_ndeliveries];
    snprintf (d->channel, sizeof d->channel, "%s", channel);
    snprintf (d->state, sizeof d->state, "%s", state);
    d->series = bf_metric_series (s_deliveries_f, d->state, d->channel);
    if (!d->series)
        return NULL;
    s_ndeliveries++;
    return d;
}

/*  Reads the snapshot. Returns 0, or -1 (warned at most once a minute)
    when the statement failed: the last figures stay.  */
static int
s_refresh (PGconn *conn)
{
    PGresult *res = bf_db_query (conn, s_sql_snapshot, 0, NULL, PGRES_TUPLES_OK,
                                 "reading the cluster-wide metrics");
    if (!res) {
        int64_t now = zclock_mono ();
        if (!s_warned_at || now - s_warned_at >= S_WARN_EVERY_MS) {
            bf_warn ("control: metrics: cannot read the cluster-wide figures: %s",
                     bf_db_last_message ());
            s_warned_at = now;
        }
        return -1;
    }
    /*  Every figure is computed first, then each series is set once: a
        scrape never sees a half-made snapshot of one series.  */
    double deliveries[BF_METRICS_MAX_SERIES] = { 0 };
    bool seen[BF_METRICS_MAX_SERIES] = { false };
    double chunks[S_CHUNK_STATES] = { 0 }, oldest = 0, overdue = 0;
    for (int row = 0; row < PQntuples (res); row++) {
        const char *kind = PQgetvalue (res, row, 0);
        char a[S_LABEL_MAX + 1], b[S_LABEL_MAX + 1];
        snprintf (a, sizeof a, "%s", PQgetvalue (res, row, 1));
        snprintf (b, sizeof b, "%s", PQgetvalue (res, row, 2));
        double value = PQgetisnull (res, row, 3) ? 0 : strtod (PQgetvalue (res, row, 3), NULL);
        if (*kind == 'd') {
            s_delivery_t *d = s_delivery (a, b);
            if (d) {
                deliveries[d - s_deliveries] += value;
                seen[d - s_deliveries] = true;
            }
        } else if (*kind == 'c') {
            for (int i = 0; i < S_CHUNK_STATES; i++)
                if (!strcmp (a, s_chunk_states[i]))
                    chunks[i] = value;
        } else if (*kind == 'o')
            oldest = value;
        else if (*kind == 'h')
            overdue = value;
    }
    PQclear (res);
    /*  A pair that is gone (counters emptied) reads 0.  */
    for (size_t i = 0; i < s_ndeliveries; i++)
        bf_gauge_set (s_deliveries[i].series, seen[i] ? deliveries[i] : 0);
    for (int i = 0; i < S_CHUNK_STATES; i++)
        bf_gauge_set (s_chunks[i], chunks[i]);
    bf_gauge_set (s_oldest, oldest);
    bf_gauge_set (s_overdue, overdue);
    return 0;
}

void
bf_control_metrics_tick (PGconn *conn, bool active, int interval_ms)
{
    pthread_once (&s_once, s_init);
    s_retire_instances ();
    if (!active) {
        s_show (false);
        s_refresh_at = 0; /* at once when active again */
        return;
    }
    int64_t now = zclock_mono ();
    if (!conn || (s_refresh_at && now < s_refresh_at))
        return;
    s_refresh_at = now + (interval_ms > 0 ? interval_ms : 5000);
    if (s_refresh (conn) == 0)
        s_show (true);
}
