/*  bf_health — actor beats, readiness checks and info lines.

    Actor entries live in a fixed table; a thread finds its entry through
    a thread-local index, and a pthread key destructor frees the entry
    when the thread ends (CZMQ actors are pthreads). Times are
    CLOCK_MONOTONIC milliseconds.  */

#include <czmq.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bf_health.h"

typedef struct {
    _Atomic int used;      /* 0 free, 1 taken */
    _Atomic int busy;      /* 1 while the actor works, 0 while it waits */
    _Atomic int64_t since; /* when busy (or idle) began */
    char name[48];
} s_actor_t;

typedef struct {
    char name[48];
    bf_ready_fn fn;
    void *arg;
} s_check_t;

typedef struct {
    char key[32];
    char value[96];
} s_info_t;

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static s_actor_t s_actors[BF_HEALTH_MAX_ACTORS];
static s_check_t s_checks[BF_HEALTH_MAX_CHECKS];
static size_t s_nchecks;
static s_info_t s_infos[8];
static _Thread_local int s_slot = -1;
static pthread_key_t s_key;
static pthread_once_t s_key_once = PTHREAD_ONCE_INIT;

/*  PostgreSQL as last seen: state 0 unknown, 1 up, 2 down.  */
static _Atomic int s_db_state;
static _Atomic int64_t s_db_since; /* when the state began */
static _Atomic int64_t s_db_seen;  /* last time it was seen up (1 s grain) */

/*  Actor threads that ended, and the name of the last one.  */
static _Atomic uint64_t s_ended;
static char s_last_ended[48];
/*  Its own lock: readiness checks read it while s_lock is held.  */
static pthread_mutex_t s_ended_lock = PTHREAD_MUTEX_INITIALIZER;

static void
s_thread_gone (void *value)
{
    int slot = (int)(intptr_t)value - 1;
    if (slot >= 0 && slot < BF_HEALTH_MAX_ACTORS) {
        pthread_mutex_lock (&s_ended_lock);
        snprintf (s_last_ended, sizeof s_last_ended, "%s", s_actors[slot].name);
        atomic_fetch_add (&s_ended, 1);
        pthread_mutex_unlock (&s_ended_lock);
        atomic_store (&s_actors[slot].used, 0);
    }
}

uint64_t
bf_health_actors_ended (char *last, size_t lastsize)
{
    pthread_mutex_lock (&s_ended_lock);
    uint64_t ended = atomic_load (&s_ended);
    if (last && lastsize)
        snprintf (last, lastsize, "%s", s_last_ended);
    pthread_mutex_unlock (&s_ended_lock);
    return ended;
}

static void
s_make_key (void)
{
    pthread_key_create (&s_key, s_thread_gone);
}

/*  This thread's slot, registering it on first use; -1 when full.  */
static int
s_my_slot (const char *actor)
{
    if (s_slot >= 0)
        return s_slot;
    pthread_once (&s_key_once, s_make_key);
    pthread_mutex_lock (&s_lock);
    int number = 1;
    for (int i = 0; i < BF_HEALTH_MAX_ACTORS; i++) {
        const char *hash = strrchr (s_actors[i].name, '#');
        if (atomic_load (&s_actors[i].used) && hash
            && (size_t)(hash - s_actors[i].name) == strlen (actor)
            && !strncmp (s_actors[i].name, actor, strlen (actor)) && atoi (hash + 1) >= number)
            number = atoi (hash + 1) + 1;
    }
    for (int i = 0; i < BF_HEALTH_MAX_ACTORS; i++) {
        if (!atomic_load (&s_actors[i].used)) {
            snprintf (s_actors[i].name, sizeof s_actors[i].name, "%.40s#%d", actor, number);
            atomic_store (&s_actors[i].busy, 1);
            atomic_store (&s_actors[i].since, zclock_mono ());
            atomic_store (&s_actors[i].used, 1);
            s_slot = i;
            pthread_setspecific (s_key, (void *)(intptr_t)(i + 1));
            break;
        }
    }
    pthread_mutex_unlock (&s_lock);
    return s_slot;
}

static void
s_mark (const char *actor, int busy)
{
    int slot = s_my_slot (actor);
    if (slot < 0)
        return;
    atomic_store_explicit (&s_actors[slot].since, zclock_mono (), memory_order_relaxed);
    atomic_store_explicit (&s_actors[slot].busy, busy, memory_order_relaxed);
}

void
bf_health_beat (const char *actor)
{
    s_mark (actor, 1);
}

void
bf_health_idle (const char *actor)
{
    s_mark (actor, 0);
}

void *
bf_health_zpoller_wait (const char *actor, zpoller_t *poller, int timeout)
{
    bf_health_idle (actor);
    void *which = zpoller_wait (poller, timeout);
    bf_health_beat (actor);
    return which;
}

/*  Appends to out at *used, never past outsize.  */
static void
s_append (char *out, size_t outsize, size_t *used, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));
static void
s_append (char *out, size_t outsize, size_t *used, const char *format, ...)
{
    if (*used >= outsize)
        return;
    va_list args;
    va_start (args, format);
    int n = vsnprintf (out + *used, outsize - *used, format, args);
    va_end (args);
    if (n > 0)
        *used = *used + (size_t)n < outsize ? *used + (size_t)n : outsize - 1;
}

bool
bf_health_live (int64_t stale_ms, char *out, size_t outsize)
{
    if (outsize == 0)
        return false;
    out[0] = 0;
    size_t used = 0;
    int64_t now = zclock_mono ();
    int actors = 0, stuck = 0;
    pthread_mutex_lock (&s_lock);
    for (int i = 0; i < BF_HEALTH_MAX_ACTORS; i++) {
        if (!atomic_load (&s_actors[i].used))
            continue;
        actors++;
        int64_t age = now - atomic_load_explicit (&s_actors[i].since, memory_order_relaxed);
        if (atomic_load_explicit (&s_actors[i].busy, memory_order_relaxed) && age > stale_ms) {
            stuck++;
            s_append (out, outsize, &used, "stuck: %s busy for %.1f s (limit %.1f s)\n",
                      s_actors[i].name, age / 1000.0, stale_ms / 1000.0);
        }
    }
    pthread_mutex_unlock (&s_lock);
    if (!stuck)
        s_append (out, outsize, &used, "ok: %d actor%s turning\n", actors, actors == 1 ? "" : "s");
    return stuck == 0;
}

int
bf_health_ready_add (const char *name, bf_ready_fn fn, void *arg)
{
    int rc = -1;
    pthread_mutex_lock (&s_lock);
    if (s_nchecks < BF_HEALTH_MAX_CHECKS && fn) {
        snprintf (s_checks[s_nchecks].name, sizeof s_checks[s_nchecks].name, "%s", name);
        s_checks[s_nchecks].fn = fn;
        s_checks[s_nchecks].arg = arg;
        s_nchecks++;
        rc = 0;
    }
    pthread_mutex_unlock (&s_lock);
    return rc;
}

void
bf_health_ready_remove (const char *name)
{
    pthread_mutex_lock (&s_lock);
    size_t kept = 0;
    for (size_t i = 0; i < s_nchecks; i++)
        if (strcmp (s_checks[i].name, name))
            s_checks[kept++] = s_checks[i];
    memset (s_checks + kept, 0, (s_nchecks - kept) * sizeof s_checks[0]);
    s_nchecks = kept;
    pthread_mutex_unlock (&s_lock);
}

bool
bf_health_ready (char *out, size_t outsize)
{
    if (outsize == 0)
        return false;
    out[0] = 0;
    size_t used = 0;
    bool all = true;
    pthread_mutex_lock (&s_lock);
    for (size_t i = 0; i < s_nchecks; i++) {
        char reason[160] = "";
        bool ok = s_checks[i].fn (s_checks[i].arg, reason, sizeof reason);
        all = all && ok;
        s_append (out, outsize, &used, "%s: %s%s%s%s\n", s_checks[i].name, ok ? "ok" : "FAIL",
                  *reason ? " (" : "", reason, *reason ? ")" : "");
    }
    for (size_t i = 0; i < sizeof s_infos / sizeof s_infos[0]; i++)
        if (*s_infos[i].key)
            s_append (out, outsize, &used, "%s: %s\n", s_infos[i].key, s_infos[i].value);
    pthread_mutex_unlock (&s_lock);
    return all;
}

void
bf_health_info_set (const char *key, const char *value)
{
    pthread_mutex_lock (&s_lock);
    s_info_t *slot = NULL;
    for (size_t i = 0; i < sizeof s_infos / sizeof s_infos[0] && !slot; i++)
        if (!strcmp (s_infos[i].key, key))
            slot = &s_infos[i];
    for (size_t i = 0; i < sizeof s_infos / sizeof s_infos[0] && !slot && value; i++)
        if (!*s_infos[i].key)
            slot = &s_infos[i];
    if (slot && value) {
        snprintf (slot->key, sizeof slot->key, "%s", key);
        snprintf (slot->value, sizeof slot->value, "%s", value);
    } else if (slot)
        memset (slot, 0, sizeof *slot);
    pthread_mutex_unlock (&s_lock);
}

bool
bf_health_flag_check (void *arg, char *reason, size_t reasonsize)
{
    bool ok = arg && atomic_load ((atomic_bool *)arg);
    snprintf (reason, reasonsize, "%s", ok ? "yes" : "no");
    return ok;
}

void
bf_health_db_seen (bool up)
{
    /*  Called on every statement: store only on a change (or once a
        second for the "seen" time), so threads do not fight over the
        cache line.  */
    int state = up ? 1 : 2;
    int64_t now = zclock_mono ();
    if (atomic_load_explicit (&s_db_state, memory_order_relaxed) != state) {
        atomic_store (&s_db_since, now);
        if (up)
            atomic_store (&s_db_seen, now);
        atomic_store (&s_db_state, state);
    }
    if (up && now - atomic_load_explicit (&s_db_seen, memory_order_relaxed) >= 1000)
        atomic_store_explicit (&s_db_seen, now, memory_order_relaxed);
}

bool
bf_health_ready_db (void *arg, char *reason, size_t reasonsize)
{
    (void)arg;
    int state = atomic_load (&s_db_state);
    int64_t now = zclock_mono ();
    if (state == 1)
        snprintf (reason, reasonsize, "up, seen %.0f s ago",
                  (now - atomic_load (&s_db_seen)) / 1000.0);
    else if (state == 2)
        snprintf (reason, reasonsize, "down for %.1f s", (now - atomic_load (&s_db_since)) / 1000.0);
    else
        snprintf (reason, reasonsize, "not yet connected");
    return state == 1;
}

void
bf_health_reset (void)
{
    pthread_mutex_lock (&s_lock);
    for (int i = 0; i < BF_HEALTH_MAX_ACTORS; i++)
        atomic_store (&s_actors[i].used, 0);
    memset (s_checks, 0, sizeof s_checks);
    s_nchecks = 0;
    memset (s_infos, 0, sizeof s_infos);
    pthread_mutex_unlock (&s_lock);
    atomic_store (&s_db_state, 0);
    s_slot = -1;
}
