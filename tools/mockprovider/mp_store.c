/*  mp_store — what the mock remembers: accepted keys and Message-IDs, recipients, counters.  */

#include "mp_store.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>

#include "mp_log.h"

#define S_LOG_EVERY 10000 /* one progress line per this many messages */

static const char *const s_channel_name[MP_CHANNELS] = { "email", "sms", "lms", "push" };

static mp_map_t s_http_keys;               /* accepted Idempotency-Key → message number */
static mp_map_t s_http_bodies;             /* accepted Idempotency-Key → hash of its body */
static mp_map_t s_smtp_ids;                /* accepted Message-ID → message number */
static mp_map_t s_recipients[MP_CHANNELS]; /* recipient → accepted messages */
static _Atomic uint64_t s_count[MP_CHANNELS][MP_OUTCOMES];
static _Atomic uint64_t s_invalid_requests; /* HTTP requests that named no known channel */
/*  Emails accepted again under a Message-ID accepted before (no --smtp-dedup): each one is a
    second copy in a mailbox.  */
static _Atomic uint64_t s_email_redelivered;
static _Atomic uint64_t s_key_reused;  /* HTTP: a used Idempotency-Key with a different body */
static _Atomic uint64_t s_messages;    /* every outcome, for the progress line */
static _Atomic uint64_t s_next_id = 1; /* message numbers: m-1, m-2, ... never reused */

const char *
mp_store_channel_name (int channel)
{
    return s_channel_name[channel];
}

void
mp_store_init (void)
{
    mp_map_init (&s_http_keys);
    mp_map_init (&s_http_bodies);
    mp_map_init (&s_smtp_ids);
    for (int ch = 0; ch < MP_CHANNELS; ch++)
        mp_map_init (&s_recipients[ch]);
}

void
mp_store_reset (void)
{
    mp_map_clear (&s_http_keys);
    mp_map_clear (&s_http_bodies);
    mp_map_clear (&s_smtp_ids);
    for (int ch = 0; ch < MP_CHANNELS; ch++) {
        mp_map_clear (&s_recipients[ch]);
        for (int o = 0; o < MP_OUTCOMES; o++)
            atomic_store (&s_count[ch][o], 0);
    }
    atomic_store (&s_invalid_requests, 0);
    atomic_store (&s_email_redelivered, 0);
    atomic_store (&s_key_reused, 0);
    atomic_store (&s_messages, 0);
}

static void
s_progress (void)
{
    uint64_t total = atomic_fetch_add_explicit (&s_messages, 1, memory_order_relaxed) + 1;
    if (total % S_LOG_EVERY != 0)
        return;
    char line[512];
    size_t off = 0;
    for (int ch = 0; ch < MP_CHANNELS; ch++) {
        uint64_t n[MP_OUTCOMES];
        for (int o = 0; o < MP_OUTCOMES; o++)
            n[o] = atomic_load_explicit (&s_count[ch][o], memory_order_relaxed);
        off += (size_t)snprintf (
            line + off, sizeof line - off, " %s %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
            s_channel_name[ch], n[MP_ACCEPTED], n[MP_DUPLICATE], n[MP_FAILED], n[MP_REJECTED]);
        if (off >= sizeof line)
            break;
    }
    mp_log ("%" PRIu64 " messages (accepted/duplicates/failed/rejected):%s", total, line);
}

void
mp_store_add_outcome (int channel, int outcome)
{
    atomic_fetch_add_explicit (&s_count[channel][outcome], 1, memory_order_relaxed);
    s_progress ();
}

void
mp_store_add_invalid (void)
{
    atomic_fetch_add_explicit (&s_invalid_requests, 1, memory_order_relaxed);
    s_progress ();
}

void
mp_store_add_key_reuse (void)
{
    atomic_fetch_add (&s_key_reused, 1);
}

void
mp_store_add_redelivery (void)
{
    atomic_fetch_add (&s_email_redelivered, 1);
}

uint64_t
mp_store_next_id (void)
{
    return atomic_fetch_add (&s_next_id, 1);
}

static mp_map_t *
s_map (int map)
{
    return map == MP_STORE_KEY_IDS      ? &s_http_keys
           : map == MP_STORE_KEY_BODIES ? &s_http_bodies
                                        : &s_smtp_ids;
}

bool
mp_store_find (int map, const char *key, size_t len, uint64_t *value)
{
    return mp_map_get (s_map (map), key, len, value);
}

int
mp_store_add (int map, const char *key, size_t len, uint64_t value, uint64_t *found)
{
    return mp_map_put_new (s_map (map), key, len, value, found);
}

uint64_t
mp_store_recipient_add (int channel, const char *recipient, size_t len)
{
    return mp_map_bump (&s_recipients[channel], recipient, len);
}

uint64_t
mp_store_outcomes (int channel, int outcome)
{
    return atomic_load (&s_count[channel][outcome]);
}

uint64_t
mp_store_invalid_requests (void)
{
    return atomic_load (&s_invalid_requests);
}

uint64_t
mp_store_key_reuses (void)
{
    return atomic_load (&s_key_reused);
}

uint64_t
mp_store_redeliveries (void)
{
    return atomic_load (&s_email_redelivered);
}

uint64_t
mp_store_recipients (int channel)
{
    return mp_map_count (&s_recipients[channel]);
}

void
mp_store_each_recipient (int channel, mp_map_visit_fn *visit, void *arg)
{
    mp_map_each (&s_recipients[channel], visit, arg);
}
