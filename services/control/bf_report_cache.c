/*  bf_report_cache — control's newest run.report per period (see
    bf_report_cache.h). A few periods at most (months asked about), so a
    plain array searched in order.  */

#include <stdlib.h>
#include <string.h>

#include "bf_log.h"
#include "bf_report_cache.h"

typedef struct {
    void *waiter;
    int64_t version; /* the version the caller saw */
} s_waiter_t;

typedef struct {
    char period[8]; /* "" = free slot */
    json_t *doc;    /* newest report, or NULL */
    int64_t version;
    bool computing;
    uint64_t used; /* tick of the last request, for eviction */
    s_waiter_t *waiters;
    size_t nwaiters, capacity;
} s_entry_t;

struct bf_report_cache_t {
    s_entry_t *entries;
    size_t max;
    uint64_t tick;
    bf_report_cache_free_fn *free_fn;
};

bf_report_cache_t *
bf_report_cache_new (size_t max_periods, bf_report_cache_free_fn *free_fn)
{
    bf_report_cache_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max_periods ? max_periods : 1;
    self->entries = calloc (self->max, sizeof *self->entries);
    if (!self->entries) {
        free (self);
        return NULL;
    }
    self->free_fn = free_fn;
    return self;
}

static void
s_entry_clear (bf_report_cache_t *self, s_entry_t *entry)
{
    for (size_t i = 0; i < entry->nwaiters; i++)
        if (self->free_fn)
            self->free_fn (entry->waiters[i].waiter);
    free (entry->waiters);
    json_decref (entry->doc);
    memset (entry, 0, sizeof *entry);
}

void
bf_report_cache_destroy (bf_report_cache_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bf_report_cache_t *self = *self_p;
    for (size_t i = 0; i < self->max; i++)
        s_entry_clear (self, &self->entries[i]);
    free (self->entries);
    free (self);
    *self_p = NULL;
}

static s_entry_t *
s_find (bf_report_cache_t *self, const char *period)
{
    for (size_t i = 0; i < self->max; i++)
        if (self->entries[i].period[0] && !strcmp (self->entries[i].period, period))
            return &self->entries[i];
    return NULL;
}

/*  period's entry, made in a free slot or in the least recently asked idle
    one; NULL when every slot is busy (computing or with waiters).  */
static s_entry_t *
s_entry (bf_report_cache_t *self, const char *period)
{
    s_entry_t *entry = s_find (self, period);
    if (entry)
        return entry;
    s_entry_t *victim = NULL;
    for (size_t i = 0; i < self->max; i++) {
        s_entry_t *e = &self->entries[i];
        if (!e->period[0]) {
            victim = e;
            break;
        }
        if (!e->computing && !e->nwaiters && (!victim || e->used < victim->used))
            victim = e;
    }
    if (!victim)
        return NULL;
    if (victim->period[0])
        bf_debug ("report cache: %s's report dropped for %s's", victim->period, period);
    s_entry_clear (self, victim);
    snprintf (victim->period, sizeof victim->period, "%s", period);
    return victim;
}

/*  The kept report as an answer, marked current and computing.  */
static char *
s_answer (s_entry_t *entry, bool current)
{
    json_object_set_new (entry->doc, "current", json_boolean (current));
    json_object_set_new (entry->doc, "computing", json_boolean (entry->computing));
    return json_dumps (entry->doc, JSON_COMPACT | JSON_REAL_PRECISION (15));
}

/*  The answer when no report is kept yet: the period, no figures.  */
static char *
s_pending (const char *period)
{
    json_t *doc = json_pack ("{s:s, s:n, s:b, s:b}", "period", period, "as_of", "current", 0,
                             "computing", 1);
    char *json = doc ? json_dumps (doc, JSON_COMPACT) : NULL;
    json_decref (doc);
    return json;
}

bf_report_cache_rc_t
bf_report_cache_ask (bf_report_cache_t *self, const char *period, int64_t version, bool wait,
                     bool *start, char **json)
{
    *start = false;
    *json = NULL;
    s_entry_t *entry = s_entry (self, period);
    if (!entry)
        return BF_REPORT_CACHE_FULL;
    entry->used = ++self->tick;
    if (entry->doc && entry->version == version) {
        *json = s_answer (entry, true);
        return *json ? BF_REPORT_CACHE_ANSWER : BF_REPORT_CACHE_FULL;
    }
    *start = !entry->computing;
    entry->computing = true;
    if (wait)
        return BF_REPORT_CACHE_QUEUE;
    *json = entry->doc ? s_answer (entry, false) : s_pending (period);
    return *json ? BF_REPORT_CACHE_ANSWER : BF_REPORT_CACHE_FULL;
}

void
bf_report_cache_queue (bf_report_cache_t *self, const char *period, int64_t version, void *waiter)
{
    s_entry_t *entry = s_find (self, period);
    if (entry && entry->nwaiters == entry->capacity) {
        size_t capacity = entry->capacity ? 2 * entry->capacity : 4;
        s_waiter_t *more = realloc (entry->waiters, capacity * sizeof *more);
        if (more)
            entry->waiters = more, entry->capacity = capacity;
    }
    if (!entry || entry->nwaiters == entry->capacity) {
        bf_error ("report cache: cannot queue a request for %s (out of memory)", period);
        if (self->free_fn)
            self->free_fn (waiter);
        return;
    }
    entry->waiters[entry->nwaiters++] = (s_waiter_t){ waiter, version };
}

bool
bf_report_cache_done (bf_report_cache_t *self, const char *period, json_t *doc, const char *error,
                      bool retry, bf_report_cache_answer_fn *answer_fn, void *arg)
{
    s_entry_t *entry = s_find (self, period);
    json_int_t version = 0;
    bool readable = doc && json_is_integer (json_object_get (doc, "version"));
    if (readable)
        version = json_integer_value (json_object_get (doc, "version"));
    else if (doc) {
        bf_error ("report cache: %s's report has no version", period);
        error = "run.report: the report has no version", retry = false;
    }
    if (!entry) { /* unknown period: nobody waits for it */
        json_decref (doc);
        return false;
    }
    entry->computing = false;
    if (readable) {
        json_decref (entry->doc);
        entry->doc = doc;
        entry->version = version;
    } else
        json_decref (doc);
    //  Answered waiters leave; the others close up, in order, and need
    //  another computation (the answers say so: "computing").
    size_t remain = 0;
    for (size_t i = 0; readable && i < entry->nwaiters; i++)
        remain += version < entry->waiters[i].version;
    entry->computing = remain > 0;
    size_t kept = 0;
    char *json = NULL;
    for (size_t i = 0; i < entry->nwaiters; i++) {
        s_waiter_t w = entry->waiters[i];
        if (readable && version < w.version) {
            entry->waiters[kept++] = w;
            continue;
        }
        if (readable && !json)
            json = s_answer (entry, true);
        if (readable && !json)
            answer_fn (w.waiter, NULL, "out of memory", true, arg);
        else
            answer_fn (w.waiter, readable ? json : NULL, error ? error : "run.report failed", retry,
                       arg);
    }
    free (json);
    entry->nwaiters = kept;
    return kept > 0;
}

size_t
bf_report_cache_size (const bf_report_cache_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->max; i++)
        n += self->entries[i].period[0] != 0;
    return n;
}

size_t
bf_report_cache_waiting (const bf_report_cache_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->max; i++)
        n += self->entries[i].nwaiters;
    return n;
}
