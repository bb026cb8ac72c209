/*  mp_map — a sharded hash map from byte strings to 64-bit values.

    The store's maps (accepted keys, Message-IDs, recipients) are written by every HTTP worker
    and the SMTP thread at once, so each map is 64 shards with a mutex each. Entries are never
    removed one by one, only all together (mp_map_clear), so they live in per-shard arenas: no
    malloc per key, and 1,000,000 keys cost about 60 MB. Every function is thread-safe.  */

#ifndef MP_MAP_H_INCLUDED
#define MP_MAP_H_INCLUDED

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MP_MAP_SHARDS 64 /* lock stripes per map */

typedef struct mp_map_entry mp_map_entry_t;
typedef struct mp_map_chunk mp_map_chunk_t;

/*  The layout is public only so that a map can be a static; use the functions.  */
typedef struct {
    pthread_mutex_t lock;
    mp_map_entry_t **buckets;
    size_t mask; /* bucket count - 1; 0 before the first insert */
    size_t count;
    mp_map_chunk_t *chunks;
} mp_map_shard_t;

typedef struct {
    mp_map_shard_t shard[MP_MAP_SHARDS];
} mp_map_t;

/*  Called by mp_map_each for one entry, under that entry's shard lock: it must not call back
    into the same map.  */
typedef void (mp_map_visit_fn) (const char *key, size_t len, uint64_t value, void *arg);

/*  A 64-bit hash of len bytes (FNV-1a, then mixed). The HTTP side also uses it to remember a
    request body.  */
uint64_t mp_map_hash (const char *key, size_t len);

/*  Makes an empty map. Call once before any other function.  */
void mp_map_init (mp_map_t *self);

/*  Looks key up. Returns true and sets *value when present.  */
bool mp_map_get (mp_map_t *self, const char *key, size_t len, uint64_t *value);

/*  Inserts key → value unless the key is there. Returns 1 when inserted, 0 when it was present
    (*found set to its value), -1 when memory ran out. This is the one atomic point that makes
    two concurrent sends with the same key yield one acceptance.  */
int mp_map_put_new (mp_map_t *self, const char *key, size_t len, uint64_t value, uint64_t *found);

/*  Adds one to key's count (a new key starts at 1). Returns the new count, 0 when memory ran
    out.  */
uint64_t mp_map_bump (mp_map_t *self, const char *key, size_t len);

/*  Removes every entry and frees the memory behind them.  */
void mp_map_clear (mp_map_t *self);

/*  Calls visit for every entry, one shard at a time under that shard's lock.  */
void mp_map_each (mp_map_t *self, mp_map_visit_fn *visit, void *arg);

/*  The number of entries.  */
uint64_t mp_map_count (mp_map_t *self);

#endif
