/*  bf_throttle — failed logins per key (bf_throttle.h). A plain array:
    only failed logins touch it.  */

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_throttle.h"

typedef struct {
    bool used;
    char key[BF_THROTTLE_KEY_MAX + 1];
    int failures;
    int64_t first_ms;
} s_entry_t;

struct bf_throttle_t {
    pthread_mutex_t mutex;
    s_entry_t *entries;
    size_t max;
    int limit;
    int64_t window_ms;
};

bf_throttle_t *
bf_throttle_new (size_t max, int limit, int64_t window_ms)
{
    bf_throttle_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max ? max : 1;
    self->entries = calloc (self->max, sizeof *self->entries);
    if (!self->entries) {
        free (self);
        return NULL;
    }
    self->limit = limit > 0 ? limit : 1;
    self->window_ms = window_ms;
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

void
bf_throttle_destroy (bf_throttle_t **self_p)
{
    if (self_p && *self_p) {
        bf_throttle_t *self = *self_p;
        pthread_mutex_destroy (&self->mutex);
        free (self->entries);
        free (self);
        *self_p = NULL;
    }
}

static s_entry_t *
s_find (bf_throttle_t *self, const char *key)
{
    char cut[BF_THROTTLE_KEY_MAX + 1];
    snprintf (cut, sizeof cut, "%s", key);
    for (size_t i = 0; i < self->max; i++)
        if (self->entries[i].used && !strcmp (self->entries[i].key, cut))
            return &self->entries[i];
    return NULL;
}

/*  Drops key's entry when its window has ended.  */
static s_entry_t *
s_live (bf_throttle_t *self, s_entry_t *entry, int64_t now_ms)
{
    if (entry && now_ms >= entry->first_ms + self->window_ms) {
        entry->used = false;
        return NULL;
    }
    return entry;
}

int64_t
bf_throttle_wait_ms (bf_throttle_t *self, const char *key, int64_t now_ms)
{
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = s_live (self, s_find (self, key), now_ms);
    int64_t wait
        = entry && entry->failures >= self->limit ? entry->first_ms + self->window_ms - now_ms : 0;
    pthread_mutex_unlock (&self->mutex);
    return wait;
}

int
bf_throttle_fail (bf_throttle_t *self, const char *key, int64_t now_ms)
{
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = s_live (self, s_find (self, key), now_ms);
    if (!entry) {
        s_entry_t *oldest = NULL;
        for (size_t i = 0; i < self->max && !entry; i++) {
            s_entry_t *e = &self->entries[i];
            if (!e->used || !s_live (self, e, now_ms))
                entry = e;
            else if (!oldest || e->first_ms < oldest->first_ms)
                oldest = e;
        }
        if (!entry)
            entry = oldest;
        if (!entry) { /* max is at least 1: never */
            pthread_mutex_unlock (&self->mutex);
            return 0;
        }
        memset (entry, 0, sizeof *entry);
        entry->used = true;
        snprintf (entry->key, sizeof entry->key, "%s", key);
        entry->first_ms = now_ms;
    }
    int failures = ++entry->failures;
    pthread_mutex_unlock (&self->mutex);
    return failures;
}

void
bf_throttle_clear (bf_throttle_t *self, const char *key)
{
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = s_find (self, key);
    if (entry)
        entry->used = false;
    pthread_mutex_unlock (&self->mutex);
}
