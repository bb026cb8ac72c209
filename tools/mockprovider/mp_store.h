/*  mp_store — what the mock remembers: accepted keys and Message-IDs, recipients, counters.

    The channels and outcomes every other module speaks of are defined here, with the limits of
    what the store keeps. HTTP workers and the SMTP thread share the store: its maps are
    sharded under mutexes (mp_map) and its counters are atomics, so every function is
    thread-safe. Message numbers (m-1, m-2, ...) are never handed out twice, not even across
    mp_store_reset.  */

#ifndef MP_STORE_H_INCLUDED
#define MP_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp_map.h"

#define MP_MAX_KEY 256 /* Idempotency-Key, Message-ID */
#define MP_MAX_TO  320 /* a recipient: phone, device token, address */

enum { MP_EMAIL, MP_SMS, MP_LMS, MP_PUSH, MP_CHANNELS };
enum { MP_ACCEPTED, MP_DUPLICATE, MP_FAILED, MP_REJECTED, MP_THROTTLED, MP_GARBAGE, MP_OUTCOMES };

/*  "email", "sms", "lms" or "push": the channel's name in the report, the record and flags.  */
const char *mp_store_channel_name (int channel);

/*  Makes the store empty. Call once, before any thread uses it.  */
void mp_store_init (void);

/*  Clears keys, Message-IDs, recipients and counters (the PRNG is mp_rand's). Message numbers
    keep counting so an id is never handed out twice.  */
void mp_store_reset (void);

/*  Counts one message of channel with outcome; every 10,000 messages a progress line goes to
    stderr.  */
void mp_store_add_outcome (int channel, int outcome);

/*  Counts one HTTP request that named no known channel.  */
void mp_store_add_invalid (void);

/*  Counts one HTTP request refused because its key was accepted with a different body.  */
void mp_store_add_key_reuse (void);

/*  Counts one email delivered again under a Message-ID accepted before.  */
void mp_store_add_redelivery (void);

/*  The next message number.  */
uint64_t mp_store_next_id (void);

/*  The store's maps of what was accepted.  */
enum {
    MP_STORE_KEY_IDS,    /* Idempotency-Key → message number */
    MP_STORE_KEY_BODIES, /* Idempotency-Key → hash of the body accepted under it */
    MP_STORE_MESSAGE_IDS /* Message-ID → message number */
};

/*  Looks key up in map. Returns true and sets *value when present.  */
bool mp_store_find (int map, const char *key, size_t len, uint64_t *value);

/*  Adds key → value to map unless the key is there. Returns 1 when added, 0 when it was there
    (*found set to its value), -1 when memory ran out. Two concurrent adds of one key: exactly
    one gets 1.  */
int mp_store_add (int map, const char *key, size_t len, uint64_t value, uint64_t *found);

/*  Counts one accepted message for recipient on channel. Returns its new count, 0 when memory
    ran out.  */
uint64_t mp_store_recipient_add (int channel, const char *recipient, size_t len);

/*  The counters, for the report.  */
uint64_t mp_store_outcomes (int channel, int outcome);
uint64_t mp_store_invalid_requests (void);
uint64_t mp_store_key_reuses (void);
uint64_t mp_store_redeliveries (void);

/*  The number of distinct recipients with an accepted message on channel.  */
uint64_t mp_store_recipients (int channel);

/*  Calls visit (recipient, its length, its accepted count, arg) for every recipient of
    channel.  */
void mp_store_each_recipient (int channel, mp_map_visit_fn *visit, void *arg);

#endif
