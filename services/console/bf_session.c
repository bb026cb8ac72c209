/*  bf_session — the console's sessions (bf_session.h).

    The table is a plain array of at most max entries: logins are rare,
    and a lookup compares a 32-byte hash per live session, which is cheap
    next to an HTTP request for the few hundred sessions an operations
    team has.  */

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_session.h"
#include "bf_bucket.h"

/*  At most one warning per session this often (docs/console.md "Limits").  */
#define S_WARN_EVERY_MS 10000

typedef struct {
    bool used;
    uint8_t key[32]; /* BLAKE2b of the token */
    bf_session_t session;
    int64_t opened_ms, last_ms;
    bf_bucket_t bucket;        /* its /api/query and /api/command requests */
    uint64_t refused_unlogged; /* refused since the last warning */
    int64_t warned_ms;         /* when the last warning was due (0: never) */
} s_entry_t;

struct bf_sessions_t {
    pthread_mutex_t mutex;
    s_entry_t *entries;
    size_t max;
    int64_t idle_ms, absolute_ms;
    int rate, burst; /* each session's bucket (bf_sessions_set_rate) */
};

bf_sessions_t *
bf_sessions_new (size_t max, int64_t idle_ms, int64_t absolute_ms)
{
    if (sodium_init () < 0)
        return NULL;
    bf_sessions_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->max = max ? max : 1;
    self->entries = calloc (self->max, sizeof *self->entries);
    if (!self->entries) {
        free (self);
        return NULL;
    }
    self->idle_ms = idle_ms;
    self->absolute_ms = absolute_ms;
    self->rate = BF_SESSION_RATE;
    self->burst = BF_SESSION_BURST;
    pthread_mutex_init (&self->mutex, NULL);
    return self;
}

void
bf_sessions_destroy (bf_sessions_t **self_p)
{
    if (self_p && *self_p) {
        bf_sessions_t *self = *self_p;
        pthread_mutex_destroy (&self->mutex);
        sodium_memzero (self->entries, self->max * sizeof *self->entries);
        free (self->entries);
        free (self);
        *self_p = NULL;
    }
}

/*  The table key of a hex token: 0, or -1 when it is not 64 lower-case
    hex characters.  */
static int
s_key (const char *token, uint8_t key[32])
{
    uint8_t raw[32];
    size_t got = 0;
    if (!token || strlen (token) != 64)
        return -1;
    for (const char *p = token; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return -1;
    if (sodium_hex2bin (raw, sizeof raw, token, 64, NULL, &got, NULL) != 0 || got != 32)
        return -1;
    crypto_generichash (key, 32, raw, sizeof raw, NULL, 0);
    sodium_memzero (raw, sizeof raw);
    return 0;
}

static bool
s_expired (const s_entry_t *entry, int64_t now_ms)
{
    return now_ms >= entry->session.idle_expires_ms || now_ms >= entry->session.absolute_expires_ms;
}

static s_entry_t *
s_find (bf_sessions_t *self, const uint8_t key[32])
{
    for (size_t i = 0; i < self->max; i++)
        if (self->entries[i].used && sodium_memcmp (self->entries[i].key, key, 32) == 0)
            return &self->entries[i];
    return NULL;
}

/*  A free entry: an unused one, else an expired one, else the least
    recently used one.  */
static s_entry_t *
s_free_entry (bf_sessions_t *self, int64_t now_ms)
{
    s_entry_t *oldest = NULL;
    for (size_t i = 0; i < self->max; i++) {
        s_entry_t *entry = &self->entries[i];
        if (!entry->used || s_expired (entry, now_ms))
            return entry;
        if (!oldest || entry->last_ms < oldest->last_ms)
            oldest = entry;
    }
    return oldest;
}

static void
s_expiry (const bf_sessions_t *self, s_entry_t *entry)
{
    entry->session.idle_expires_ms = entry->last_ms + self->idle_ms;
    entry->session.absolute_expires_ms = entry->opened_ms + self->absolute_ms;
    if (entry->session.idle_expires_ms > entry->session.absolute_expires_ms)
        entry->session.idle_expires_ms = entry->session.absolute_expires_ms;
}

int
bf_sessions_open (bf_sessions_t *self, const char *name, const char *role, int64_t now_ms,
                  char token[BF_SESSION_TOKEN_HEX], bf_session_t *out)
{
    uint8_t raw[32], csrf[32], key[32];
    randombytes_buf (raw, sizeof raw);
    randombytes_buf (csrf, sizeof csrf);
    sodium_bin2hex (token, BF_SESSION_TOKEN_HEX, raw, sizeof raw);
    sodium_memzero (raw, sizeof raw);
    if (s_key (token, key) != 0)
        return -1;
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = s_free_entry (self, now_ms);
    if (!entry) { /* max is at least 1: never */
        pthread_mutex_unlock (&self->mutex);
        return -1;
    }
    memset (entry, 0, sizeof *entry);
    entry->used = true;
    memcpy (entry->key, key, sizeof key);
    snprintf (entry->session.name, sizeof entry->session.name, "%s", name);
    snprintf (entry->session.role, sizeof entry->session.role, "%s", role);
    sodium_bin2hex (entry->session.csrf, sizeof entry->session.csrf, csrf, sizeof csrf);
    entry->opened_ms = entry->last_ms = now_ms;
    bf_bucket_init (&entry->bucket, self->rate, self->burst, now_ms);
    s_expiry (self, entry);
    if (out)
        *out = entry->session;
    pthread_mutex_unlock (&self->mutex);
    sodium_memzero (csrf, sizeof csrf);
    return 0;
}

bool
bf_sessions_touch (bf_sessions_t *self, const char *token, int64_t now_ms, bf_session_t *out)
{
    uint8_t key[32];
    if (s_key (token, key) != 0)
        return false;
    bool live = false;
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = s_find (self, key);
    if (entry && s_expired (entry, now_ms))
        memset (entry, 0, sizeof *entry);
    else if (entry) {
        entry->last_ms = now_ms;
        s_expiry (self, entry);
        if (out)
            *out = entry->session;
        live = true;
    }
    pthread_mutex_unlock (&self->mutex);
    return live;
}

void
bf_sessions_set_rate (bf_sessions_t *self, int rate, int burst)
{
    pthread_mutex_lock (&self->mutex);
    self->rate = rate > 0 ? rate : 1;
    self->burst = burst > 0 ? burst : 1;
    pthread_mutex_unlock (&self->mutex);
}

bool
bf_sessions_take (bf_sessions_t *self, const char *token, int64_t now_ms, int *wait_ms,
                  uint64_t *warn_refused)
{
    *wait_ms = 0;
    *warn_refused = 0;
    uint8_t key[32];
    if (s_key (token, key) != 0)
        return true; /* no session: s_api answers 401 before asking */
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = s_find (self, key);
    bool taken = !entry || bf_bucket_take (&entry->bucket, now_ms);
    if (!taken) {
        *wait_ms = bf_bucket_wait_ms (&entry->bucket);
        entry->refused_unlogged++;
        if (!entry->warned_ms || now_ms - entry->warned_ms >= S_WARN_EVERY_MS
            || now_ms < entry->warned_ms) {
            *warn_refused = entry->refused_unlogged;
            entry->refused_unlogged = 0;
            entry->warned_ms = now_ms ? now_ms : 1;
        }
    }
    pthread_mutex_unlock (&self->mutex);
    return taken;
}

bool
bf_sessions_live (bf_sessions_t *self, const char *token, int64_t now_ms)
{
    uint8_t key[32];
    if (s_key (token, key) != 0)
        return false;
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = s_find (self, key);
    bool live = entry && !s_expired (entry, now_ms);
    pthread_mutex_unlock (&self->mutex);
    return live;
}

bool
bf_session_csrf_ok (const bf_session_t *session, const char *csrf)
{
    size_t len = strlen (session->csrf);
    if (!csrf || len == 0 || strnlen (csrf, len + 1) != len)
        return false;
    return sodium_memcmp (session->csrf, csrf, len) == 0;
}

bool
bf_sessions_close (bf_sessions_t *self, const char *token)
{
    uint8_t key[32];
    if (s_key (token, key) != 0)
        return false;
    pthread_mutex_lock (&self->mutex);
    s_entry_t *entry = s_find (self, key);
    if (entry)
        sodium_memzero (entry, sizeof *entry);
    pthread_mutex_unlock (&self->mutex);
    return entry != NULL;
}

size_t
bf_sessions_count (bf_sessions_t *self)
{
    size_t count = 0;
    pthread_mutex_lock (&self->mutex);
    for (size_t i = 0; i < self->max; i++)
        count += self->entries[i].used;
    pthread_mutex_unlock (&self->mutex);
    return count;
}
