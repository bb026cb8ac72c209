/*  mp_map — a sharded hash map from byte strings to 64-bit values.  */

#include "mp_map.h"

#include <stdlib.h>
#include <string.h>

struct mp_map_entry {
    struct mp_map_entry *next;
    uint64_t hash;
    uint64_t value; /* message number for key maps, accepted count for recipient maps */
    uint32_t len;
    char key[]; /* NUL-terminated */
};

struct mp_map_chunk {
    struct mp_map_chunk *next;
    size_t used;
    size_t size;
    char data[];
};

uint64_t
mp_map_hash (const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ull;
    }
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 32);
}

void
mp_map_init (mp_map_t *self)
{
    memset (self, 0, sizeof *self);
    for (int i = 0; i < MP_MAP_SHARDS; i++)
        pthread_mutex_init (&self->shard[i].lock, NULL);
}

/*  Caller holds the shard lock.  */
static mp_map_entry_t *
s_shard_find (mp_map_shard_t *shard, uint64_t hash, const char *key, size_t len)
{
    if (!shard->buckets)
        return NULL;
    for (mp_map_entry_t *e = shard->buckets[hash & shard->mask]; e; e = e->next)
        if (e->hash == hash && e->len == len && memcmp (e->key, key, len) == 0)
            return e;
    return NULL;
}

/*  Doubles the bucket array (or makes the first one) when the shard is full. Caller holds the
    shard lock. Returns false when memory ran out.  */
static bool
s_shard_grow (mp_map_shard_t *shard)
{
    if (shard->buckets && shard->count + 1 <= shard->mask + 1)
        return true;
    size_t nbuckets = shard->buckets ? (shard->mask + 1) * 2 : 256;
    mp_map_entry_t **buckets = calloc (nbuckets, sizeof *buckets);
    if (!buckets)
        return false;
    if (shard->buckets) {
        for (size_t i = 0; i <= shard->mask; i++) {
            mp_map_entry_t *e = shard->buckets[i];
            while (e) {
                mp_map_entry_t *next = e->next;
                e->next = buckets[e->hash & (nbuckets - 1)];
                buckets[e->hash & (nbuckets - 1)] = e;
                e = next;
            }
        }
        free (shard->buckets);
    }
    shard->buckets = buckets;
    shard->mask = nbuckets - 1;
    return true;
}

/*  Adds a new entry (the caller checked it is absent). Caller holds the shard lock.
    Returns the entry, or NULL when memory ran out.  */
static mp_map_entry_t *
s_shard_add (mp_map_shard_t *shard, uint64_t hash, const char *key, size_t len, uint64_t value)
{
    if (!s_shard_grow (shard))
        return NULL;
    size_t need = (sizeof (mp_map_entry_t) + len + 1 + 7) & ~(size_t)7;
    mp_map_chunk_t *chunk = shard->chunks;
    if (!chunk || chunk->size - chunk->used < need) {
        size_t size = need > 60000 ? need : 60000;
        chunk = malloc (sizeof *chunk + size);
        if (!chunk)
            return NULL;
        chunk->used = 0;
        chunk->size = size;
        chunk->next = shard->chunks;
        shard->chunks = chunk;
    }
    mp_map_entry_t *e = (mp_map_entry_t *)(chunk->data + chunk->used);
    chunk->used += need;
    e->hash = hash;
    e->value = value;
    e->len = (uint32_t)len;
    memcpy (e->key, key, len);
    e->key[len] = '\0';
    e->next = shard->buckets[hash & shard->mask];
    shard->buckets[hash & shard->mask] = e;
    shard->count++;
    return e;
}

static mp_map_shard_t *
s_shard_of (mp_map_t *self, uint64_t hash)
{
    return &self->shard[hash >> 58];
}

bool
mp_map_get (mp_map_t *self, const char *key, size_t len, uint64_t *value)
{
    uint64_t hash = mp_map_hash (key, len);
    mp_map_shard_t *shard = s_shard_of (self, hash);
    pthread_mutex_lock (&shard->lock);
    mp_map_entry_t *e = s_shard_find (shard, hash, key, len);
    if (e)
        *value = e->value;
    pthread_mutex_unlock (&shard->lock);
    return e != NULL;
}

int
mp_map_put_new (mp_map_t *self, const char *key, size_t len, uint64_t value, uint64_t *found)
{
    uint64_t hash = mp_map_hash (key, len);
    mp_map_shard_t *shard = s_shard_of (self, hash);
    int rc = 1;
    pthread_mutex_lock (&shard->lock);
    mp_map_entry_t *e = s_shard_find (shard, hash, key, len);
    if (e) {
        *found = e->value;
        rc = 0;
    } else if (!s_shard_add (shard, hash, key, len, value))
        rc = -1;
    pthread_mutex_unlock (&shard->lock);
    return rc;
}

uint64_t
mp_map_bump (mp_map_t *self, const char *key, size_t len)
{
    uint64_t hash = mp_map_hash (key, len);
    mp_map_shard_t *shard = s_shard_of (self, hash);
    uint64_t count = 0;
    pthread_mutex_lock (&shard->lock);
    mp_map_entry_t *e = s_shard_find (shard, hash, key, len);
    if (e)
        count = ++e->value;
    else if (s_shard_add (shard, hash, key, len, 1))
        count = 1;
    pthread_mutex_unlock (&shard->lock);
    return count;
}

void
mp_map_clear (mp_map_t *self)
{
    for (int i = 0; i < MP_MAP_SHARDS; i++) {
        mp_map_shard_t *shard = &self->shard[i];
        pthread_mutex_lock (&shard->lock);
        free (shard->buckets);
        shard->buckets = NULL;
        shard->mask = 0;
        shard->count = 0;
        while (shard->chunks) {
            mp_map_chunk_t *next = shard->chunks->next;
            free (shard->chunks);
            shard->chunks = next;
        }
        pthread_mutex_unlock (&shard->lock);
    }
}

void
mp_map_each (mp_map_t *self, mp_map_visit_fn *visit, void *arg)
{
    for (int i = 0; i < MP_MAP_SHARDS; i++) {
        mp_map_shard_t *shard = &self->shard[i];
        pthread_mutex_lock (&shard->lock);
        if (shard->buckets)
            for (size_t b = 0; b <= shard->mask; b++)
                for (mp_map_entry_t *e = shard->buckets[b]; e; e = e->next)
                    visit (e->key, e->len, e->value, arg);
        pthread_mutex_unlock (&shard->lock);
    }
}

uint64_t
mp_map_count (mp_map_t *self)
{
    uint64_t count = 0;
    for (int i = 0; i < MP_MAP_SHARDS; i++) {
        pthread_mutex_lock (&self->shard[i].lock);
        count += self->shard[i].count;
        pthread_mutex_unlock (&self->shard[i].lock);
    }
    return count;
}
