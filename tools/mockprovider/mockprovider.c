/*  mockprovider — a stand-in for the delivery providers notify talks to.

    It speaks exactly the two protocols of docs/provider-api.md: the HTTP JSON API
    (POST /v1/messages, served by libmicrohttpd) for SMS, LMS and push, and SMTP (our own
    server: one thread, epoll, non-blocking sockets) for email. Each channel can be made slow
    (its replies are delayed without blocking any other connection) and flaky (a share of
    messages, drawn from a seeded PRNG, fails); HTTP can also throttle or answer garbage.

    It remembers every Idempotency-Key it accepted, so an HTTP resend is refused as a duplicate
    (409). Like a real mail server, SMTP delivers a resent Message-ID again and counts it as a
    duplicate delivery (refusing it is the --smtp-dedup option). It counts the messages each
    recipient received per channel, so a test can check G4 — at most one notice per bill and
    channel — from GET /v1/report.

    Threads: main (waits for SIGTERM/SIGINT), the libmicrohttpd pool (HTTP handlers), one delay
    thread that resumes suspended HTTP connections when their reply is due, and the SMTP
    thread. What they share is the store: sharded hash maps under mutexes and atomic counters.
    Outside input never reaches an assert; it gets an error reply and, with --verbose, a log
    line.  */

#include <arpa/inet.h>
#include <errno.h>
#include <iconv.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#define S_SHARDS                 64          /* lock stripes per map */
#define S_MAX_BODY               (64 * 1024) /* HTTP request body */
#define S_MAX_KEY                256         /* Idempotency-Key, Message-ID */
#define S_MAX_TO                 320         /* a recipient: phone, device token, address */
#define S_OVER_ONE_CAP           100         /* entries listed in recipients_over_one */
#define S_LOG_EVERY              10000       /* one progress line per this many messages */
#define S_SMTP_LINE_MAX          2048        /* command line, AUTH response included */
#define S_SMTP_HEADER_MAX        (64 * 1024) /* header bytes kept to find Message-ID */
#define S_SMTP_MAX_RCPT          100
#define S_SMTP_IDLE_MS           300000      /* an idle session is closed after 5 minutes */
#define S_SMTP_OUT_MAX           (64 * 1024) /* replies a client does not read before we drop it */
#define S_HTTP_IDLE_S            120
#define S_HTTP_CONNECTION_MEMORY (16 * 1024) /* per connection: headers and read buffer */

enum { S_EMAIL, S_SMS, S_LMS, S_PUSH, S_CHANNELS };
enum { S_ACCEPTED, S_DUPLICATE, S_FAILED, S_REJECTED, S_THROTTLED, S_GARBAGE, S_OUTCOMES };

static const char *const s_channel_name[S_CHANNELS] = { "email", "sms", "lms", "push" };
static const char *const s_outcome_name[S_OUTCOMES]
    = { "accepted", "duplicates", "failed", "rejected", "throttled", "garbage" };

/*  Command-line settings; written by main before any thread starts, read-only after.  */
typedef struct {
    int http_port;
    int smtp_port;
    const char *bind;
    const char *token;
    const char *smtp_user;
    const char *smtp_password;
    unsigned latency_ms[S_CHANNELS];
    double fail_pct[S_CHANNELS];
    bool fail_permanent;
    bool latency_at_data;  /* email latency delays the 354 to DATA, not the final reply */
    bool smtp_dedup;       /* refuse a Message-ID accepted before (real servers do not) */
    double email_slow_pct; /* share of emails whose final reply waits email_slow_ms */
    unsigned email_slow_ms;
    double throttle_pct;
    double garbage_pct;
    double lost_reply_pct; /* HTTP: accepted, but the client gets 502 (the reply was lost) */
    const char **reject;
    size_t reject_count;
    uint64_t seed;
    size_t max_message_size;
    unsigned http_threads;
    unsigned max_connections;
    bool verbose;
    const char *record_path; /* --record: every accepted message, one JSON line each */
    bool key_reuse_ok;       /* --key-reuse accept: a changed body under a used key gets 409 */
} s_config_t;

static s_config_t s_cfg = {
    .http_port = -1,
    .smtp_port = -1,
    .bind = "127.0.0.1",
    .latency_ms = { 1000, 0, 0, 0 },
    .fail_pct = { 1.0, 0, 0, 0 },
    .seed = 1,
    .max_message_size = 1024 * 1024,
};

/* ------------------------------------------------------------------------------------------ */
/*  Small helpers                                                                             */

static int64_t
s_now_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t
s_now_ms (void)
{
    return s_now_ns () / 1000000;
}

static void s_log (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

/*  One line on stderr; stdout carries only the ports, "ready" and the final report.  */
static void
s_log (const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    fprintf (stderr, "mockprovider: %s\n", line);
}

/*  Writes a masked copy of a recipient (first three and last two characters kept) into out,
    for logs: recipients are personal data (G9) even in a mock.  */
static const char *
s_mask (const char *text, size_t len, char *out, size_t size)
{
    if (size < 16)
        return "";
    if (len <= 6) {
        snprintf (out, size, "***");
        return out;
    }
    snprintf (out, size, "%.3s***%.2s", text, text + len - 2);
    return out;
}

/*  A growable byte buffer; on allocation failure it stops growing and remembers it.  */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
    bool oom;
} s_buf_t;

static bool
s_buf_reserve (s_buf_t *self, size_t extra)
{
    if (self->oom)
        return false;
    if (self->len + extra + 1 <= self->cap)
        return true;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < self->len + extra + 1)
        cap *= 2;
    char *data = realloc (self->data, cap);
    if (!data) {
        self->oom = true;
        return false;
    }
    self->data = data;
    self->cap = cap;
    return true;
}

static void
s_buf_add (s_buf_t *self, const char *text, size_t len)
{
    if (!s_buf_reserve (self, len))
        return;
    memcpy (self->data + self->len, text, len);
    self->len += len;
    self->data[self->len] = '\0';
}

static void
s_buf_str (s_buf_t *self, const char *text)
{
    s_buf_add (self, text, strlen (text));
}

static void s_buf_printf (s_buf_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_buf_printf (s_buf_t *self, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    if (n > 0)
        s_buf_add (self, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/*  Appends text as a JSON string literal, quotes included.  */
static void
s_buf_json (s_buf_t *self, const char *text, size_t len)
{
    s_buf_add (self, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            s_buf_add (self, esc, 2);
        } else if (c < 0x20)
            s_buf_printf (self, "\\u%04x", c);
        else
            s_buf_add (self, (const char *)&text[i], 1);
    }
    s_buf_add (self, "\"", 1);
}

/*  Appends text as one CSV field, quoted when RFC 4180 needs it.  */
static void
s_buf_csv (s_buf_t *self, const char *text, size_t len)
{
    if (!memchr (text, ',', len) && !memchr (text, '"', len) && !memchr (text, '\n', len)
        && !memchr (text, '\r', len)) {
        s_buf_add (self, text, len);
        return;
    }
    s_buf_add (self, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"')
            s_buf_add (self, "\"", 1);
        s_buf_add (self, &text[i], 1);
    }
    s_buf_add (self, "\"", 1);
}

/*  Appends n bytes to a raw growable array. Returns 0, or -1 when memory ran out or the
    array would exceed limit.  */
static int
s_bytes_add (char **data, size_t *len, size_t *cap, const char *bytes, size_t n, size_t limit)
{
    if (*len + n > limit)
        return -1;
    if (*len + n > *cap) {
        size_t size = *cap ? *cap : 512;
        while (size < *len + n)
            size *= 2;
        char *grown = realloc (*data, size);
        if (!grown)
            return -1;
        *data = grown;
        *cap = size;
    }
    memcpy (*data + *len, bytes, n);
    *len += n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/*  The store: sharded maps of keys that were accepted and of recipients                      */

/*  Entries are never removed one by one, only all together on reset, so they live in per-shard
    arenas: no malloc per key, and 1,000,000 keys cost about 60 MB.  */
typedef struct s_entry {
    struct s_entry *next;
    uint64_t hash;
    uint64_t value; /* message number for key maps, accepted count for recipient maps */
    uint32_t len;
    char key[]; /* NUL-terminated */
} s_entry_t;

typedef struct s_chunk {
    struct s_chunk *next;
    size_t used;
    size_t size;
    char data[];
} s_chunk_t;

typedef struct {
    pthread_mutex_t lock;
    s_entry_t **buckets;
    size_t mask; /* bucket count - 1; 0 before the first insert */
    size_t count;
    s_chunk_t *chunks;
} s_shard_t;

typedef struct {
    s_shard_t shard[S_SHARDS];
} s_map_t;

typedef void (s_visit_fn) (const s_entry_t *entry, void *arg);

static uint64_t
s_hash (const char *key, size_t len)
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

static void
s_map_init (s_map_t *self)
{
    memset (self, 0, sizeof *self);
    for (int i = 0; i < S_SHARDS; i++)
        pthread_mutex_init (&self->shard[i].lock, NULL);
}

/*  Caller holds the shard lock.  */
static s_entry_t *
s_shard_find (s_shard_t *shard, uint64_t hash, const char *key, size_t len)
{
    if (!shard->buckets)
        return NULL;
    for (s_entry_t *e = shard->buckets[hash & shard->mask]; e; e = e->next)
        if (e->hash == hash && e->len == len && memcmp (e->key, key, len) == 0)
            return e;
    return NULL;
}

/*  Adds a new entry (the caller checked it is absent). Caller holds the shard lock.
    Returns the entry, or NULL when memory ran out.  */
static s_entry_t *
s_shard_add (s_shard_t *shard, uint64_t hash, const char *key, size_t len, uint64_t value)
{
    if (!shard->buckets || shard->count + 1 > shard->mask + 1) {
        size_t nbuckets = shard->buckets ? (shard->mask + 1) * 2 : 256;
        s_entry_t **buckets = calloc (nbuckets, sizeof *buckets);
        if (!buckets)
            return NULL;
        if (shard->buckets) {
            for (size_t i = 0; i <= shard->mask; i++) {
                s_entry_t *e = shard->buckets[i];
                while (e) {
                    s_entry_t *next = e->next;
                    e->next = buckets[e->hash & (nbuckets - 1)];
                    buckets[e->hash & (nbuckets - 1)] = e;
                    e = next;
                }
            }
            free (shard->buckets);
        }
        shard->buckets = buckets;
        shard->mask = nbuckets - 1;
    }
    size_t need = (sizeof (s_entry_t) + len + 1 + 7) & ~(size_t)7;
    s_chunk_t *chunk = shard->chunks;
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
    s_entry_t *e = (s_entry_t *)(chunk->data + chunk->used);
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

static s_shard_t *
s_map_shard (s_map_t *self, uint64_t hash)
{
    return &self->shard[hash >> 58];
}

/*  Looks key up. Returns true and sets *value when present.  */
static bool
s_map_get (s_map_t *self, const char *key, size_t len, uint64_t *value)
{
    uint64_t hash = s_hash (key, len);
    s_shard_t *shard = s_map_shard (self, hash);
    pthread_mutex_lock (&shard->lock);
    s_entry_t *e = s_shard_find (shard, hash, key, len);
    if (e)
        *value = e->value;
    pthread_mutex_unlock (&shard->lock);
    return e != NULL;
}

/*  Inserts key → value unless the key is there. Returns 1 when inserted, 0 when it was present
    (*found set to its value), -1 when memory ran out. This is the one atomic point that makes
    two concurrent sends with the same key yield one acceptance.  */
static int
s_map_put_new (s_map_t *self, const char *key, size_t len, uint64_t value, uint64_t *found)
{
    uint64_t hash = s_hash (key, len);
    s_shard_t *shard = s_map_shard (self, hash);
    int rc = 1;
    pthread_mutex_lock (&shard->lock);
    s_entry_t *e = s_shard_find (shard, hash, key, len);
    if (e) {
        *found = e->value;
        rc = 0;
    } else if (!s_shard_add (shard, hash, key, len, value))
        rc = -1;
    pthread_mutex_unlock (&shard->lock);
    return rc;
}

/*  Adds one to key's count (a new key starts at 1). Returns the new count, 0 when memory ran
    out.  */
static uint64_t
s_map_bump (s_map_t *self, const char *key, size_t len)
{
    uint64_t hash = s_hash (key, len);
    s_shard_t *shard = s_map_shard (self, hash);
    uint64_t count = 0;
    pthread_mutex_lock (&shard->lock);
    s_entry_t *e = s_shard_find (shard, hash, key, len);
    if (e)
        count = ++e->value;
    else if (s_shard_add (shard, hash, key, len, 1))
        count = 1;
    pthread_mutex_unlock (&shard->lock);
    return count;
}

static void
s_map_clear (s_map_t *self)
{
    for (int i = 0; i < S_SHARDS; i++) {
        s_shard_t *shard = &self->shard[i];
        pthread_mutex_lock (&shard->lock);
        free (shard->buckets);
        shard->buckets = NULL;
        shard->mask = 0;
        shard->count = 0;
        while (shard->chunks) {
            s_chunk_t *next = shard->chunks->next;
            free (shard->chunks);
            shard->chunks = next;
        }
        pthread_mutex_unlock (&shard->lock);
    }
}

/*  Calls visit for every entry, one shard at a time under that shard's lock.  */
static void
s_map_each (s_map_t *self, s_visit_fn *visit, void *arg)
{
    for (int i = 0; i < S_SHARDS; i++) {
        s_shard_t *shard = &self->shard[i];
        pthread_mutex_lock (&shard->lock);
        if (shard->buckets)
            for (size_t b = 0; b <= shard->mask; b++)
                for (s_entry_t *e = shard->buckets[b]; e; e = e->next)
                    visit (e, arg);
        pthread_mutex_unlock (&shard->lock);
    }
}

static uint64_t
s_map_count (s_map_t *self)
{
    uint64_t count = 0;
    for (int i = 0; i < S_SHARDS; i++) {
        pthread_mutex_lock (&self->shard[i].lock);
        count += self->shard[i].count;
        pthread_mutex_unlock (&self->shard[i].lock);
    }
    return count;
}

static s_map_t s_http_keys;              /* accepted Idempotency-Key → message number */
static s_map_t s_http_bodies;            /* accepted Idempotency-Key → hash of its body */
static s_map_t s_smtp_ids;               /* accepted Message-ID → message number */
static s_map_t s_recipients[S_CHANNELS]; /* recipient → accepted messages */
static _Atomic uint64_t s_count[S_CHANNELS][S_OUTCOMES];
static _Atomic uint64_t s_invalid_requests; /* HTTP requests that named no known channel */
/*  Emails accepted again under a Message-ID accepted before (no --smtp-dedup): each one is a
    second copy in a mailbox.  */
static _Atomic uint64_t s_email_redelivered;
static _Atomic uint64_t s_key_reused;  /* HTTP: a used Idempotency-Key with a different body */
static _Atomic uint64_t s_messages;    /* every outcome, for the progress line */
static _Atomic uint64_t s_next_id = 1; /* message numbers: m-1, m-2, ... never reused */
static _Atomic uint64_t s_draws;       /* PRNG position */

static void
s_progress (void)
{
    uint64_t total = atomic_fetch_add_explicit (&s_messages, 1, memory_order_relaxed) + 1;
    if (total % S_LOG_EVERY != 0)
        return;
    char line[512];
    size_t off = 0;
    for (int ch = 0; ch < S_CHANNELS; ch++) {
        uint64_t n[S_OUTCOMES];
        for (int o = 0; o < S_OUTCOMES; o++)
            n[o] = atomic_load_explicit (&s_count[ch][o], memory_order_relaxed);
        off += (size_t)snprintf (
            line + off, sizeof line - off, " %s %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64,
            s_channel_name[ch], n[S_ACCEPTED], n[S_DUPLICATE], n[S_FAILED], n[S_REJECTED]);
        if (off >= sizeof line)
            break;
    }
    s_log ("%" PRIu64 " messages (accepted/duplicates/failed/rejected):%s", total, line);
}

static void
s_record (int channel, int outcome)
{
    atomic_fetch_add_explicit (&s_count[channel][outcome], 1, memory_order_relaxed);
    s_progress ();
}

static void
s_record_invalid (void)
{
    atomic_fetch_add_explicit (&s_invalid_requests, 1, memory_order_relaxed);
    s_progress ();
}

/*  Clears keys, recipients and counters, and rewinds the PRNG so a test can replay a sequence.
    Message numbers keep counting so an id is never handed out twice.  */
static void
s_store_reset (void)
{
    s_map_clear (&s_http_keys);
    s_map_clear (&s_http_bodies);
    s_map_clear (&s_smtp_ids);
    for (int ch = 0; ch < S_CHANNELS; ch++) {
        s_map_clear (&s_recipients[ch]);
        for (int o = 0; o < S_OUTCOMES; o++)
            atomic_store (&s_count[ch][o], 0);
    }
    atomic_store (&s_invalid_requests, 0);
    atomic_store (&s_email_redelivered, 0);
    atomic_store (&s_key_reused, 0);
    atomic_store (&s_messages, 0);
    atomic_store (&s_draws, 0);
}

/*  A uniform draw in [0, 100): splitmix64 of (seed, position), so the sequence of draws is fixed
    by --seed and lock-free across threads. Which message gets which draw depends on arrival
    order.  */
static double
s_draw_pct (void)
{
    uint64_t n = atomic_fetch_add_explicit (&s_draws, 1, memory_order_relaxed);
    uint64_t z = s_cfg.seed + (n + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (100.0 / 9007199254740992.0);
}

static bool
s_is_rejected (const char *recipient)
{
    for (size_t i = 0; i < s_cfg.reject_count; i++)
        if (strcasecmp (s_cfg.reject[i], recipient) == 0)
            return true;
    return false;
}

/* ------------------------------------------------------------------------------------------ */
/*  Report                                                                                    */

typedef struct {
    s_buf_t *buf;
    size_t listed;
    uint64_t total;
} s_over_one_t;

static void
s_visit_over_one (const s_entry_t *entry, void *arg)
{
    s_over_one_t *self = arg;
    if (entry->value < 2)
        return;
    self->total++;
    if (self->listed >= S_OVER_ONE_CAP)
        return;
    s_buf_str (self->buf, self->listed ? ", {\"recipient\": " : "{\"recipient\": ");
    s_buf_json (self->buf, entry->key, entry->len);
    s_buf_printf (self->buf, ", \"accepted\": %" PRIu64 "}", entry->value);
    self->listed++;
}

/*  Builds the report JSON into buf (one channel per line).  */
static void
s_report (s_buf_t *buf)
{
    s_buf_str (buf, "{");
    for (int ch = 0; ch < S_CHANNELS; ch++) {
        s_buf_printf (buf, "%s\"%s\": {", ch ? ",\n " : "", s_channel_name[ch]);
        for (int o = 0; o < S_OUTCOMES; o++)
            s_buf_printf (buf, "\"%s\": %" PRIu64 ", ", s_outcome_name[o],
                          atomic_load (&s_count[ch][o]));
        s_buf_printf (buf, "\"recipients\": %" PRIu64 ", \"recipients_over_one\": [",
                      s_map_count (&s_recipients[ch]));
        s_over_one_t over = { .buf = buf };
        s_map_each (&s_recipients[ch], s_visit_over_one, &over);
        s_buf_printf (buf, "], \"recipients_over_one_total\": %" PRIu64, over.total);
        if (ch == S_EMAIL)
            s_buf_printf (buf, ", \"duplicate_deliveries\": %" PRIu64,
                          atomic_load (&s_email_redelivered));
        s_buf_str (buf, "}");
    }
    s_buf_printf (buf, ",\n \"invalid_requests\": %" PRIu64 ", \"key_reused\": %" PRIu64 "}\n",
                  atomic_load (&s_invalid_requests), atomic_load (&s_key_reused));
}

typedef struct {
    s_buf_t *buf;
    const char *channel;
} s_csv_t;

static void
s_visit_csv (const s_entry_t *entry, void *arg)
{
    s_csv_t *self = arg;
    s_buf_str (self->buf, self->channel);
    s_buf_add (self->buf, ",", 1);
    s_buf_csv (self->buf, entry->key, entry->len);
    s_buf_printf (self->buf, ",%" PRIu64 "\n", entry->value);
}

/*  Builds the CSV of every accepted recipient: channel,recipient,accepted.  */
static void
s_report_csv (s_buf_t *buf)
{
    s_buf_str (buf, "channel,recipient,accepted\n");
    for (int ch = 0; ch < S_CHANNELS; ch++) {
        s_csv_t csv = { .buf = buf, .channel = s_channel_name[ch] };
        s_map_each (&s_recipients[ch], s_visit_csv, &csv);
    }
}

/* ------------------------------------------------------------------------------------------ */
/*  JSON: a strict parser for the flat message object                                        */

typedef struct {
    bool present;
    bool is_null;
    const char *str; /* decoded UTF-8, NUL-terminated; NULL when absent or null */
    size_t len;
} s_field_t;

typedef struct {
    s_field_t channel;
    s_field_t to;
    s_field_t title;
    s_field_t body;
} s_fields_t;

typedef struct {
    const char *start;
    const char *p;
    const char *end;
    char *out; /* decoded strings are appended here */
    const char *error;
    size_t error_at;
} s_json_t;

static int
s_json_fail (s_json_t *self, const char *why)
{
    if (!self->error) {
        self->error = why;
        self->error_at = (size_t)(self->p - self->start);
    }
    return -1;
}

static void
s_json_ws (s_json_t *self)
{
    while (self->p < self->end
           && (*self->p == ' ' || *self->p == '\t' || *self->p == '\n' || *self->p == '\r'))
        self->p++;
}

/*  Length of the well-formed UTF-8 sequence at p (at most n bytes), 0 when it is not one
    (overlong forms, surrogates and code points above U+10FFFF are not).  */
static size_t
s_utf8_len (const unsigned char *p, size_t n)
{
    if (n == 0)
        return 0;
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
#define S_CONT(i) ((i) < n && (p[i] & 0xc0) == 0x80)
    if (c >= 0xc2 && c <= 0xdf)
        return S_CONT (1) ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || !S_CONT (1) || !S_CONT (2))
            return 0;
        if (c == 0xe0 && p[1] < 0xa0)
            return 0;
        if (c == 0xed && p[1] > 0x9f)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || !S_CONT (1) || !S_CONT (2) || !S_CONT (3))
            return 0;
        if (c == 0xf0 && p[1] < 0x90)
            return 0;
        if (c == 0xf4 && p[1] > 0x8f)
            return 0;
        return 4;
    }
#undef S_CONT
    return 0;
}

/*  Decodes the code point of the (valid) UTF-8 sequence at p.  */
static uint32_t
s_utf8_decode (const unsigned char *p, size_t n)
{
    size_t len = s_utf8_len (p, n);
    if (len == 1)
        return p[0];
    if (len == 2)
        return ((uint32_t)(p[0] & 0x1f) << 6) | (p[1] & 0x3f);
    if (len == 3)
        return ((uint32_t)(p[0] & 0x0f) << 12) | ((uint32_t)(p[1] & 0x3f) << 6) | (p[2] & 0x3f);
    if (len == 4)
        return ((uint32_t)(p[0] & 0x07) << 18) | ((uint32_t)(p[1] & 0x3f) << 12)
               | ((uint32_t)(p[2] & 0x3f) << 6) | (p[3] & 0x3f);
    return 0xfffd;
}

static size_t
s_utf8_put (char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/*  Reads the four hex digits after "\u". Returns 0, or -1.  */
static int
s_json_hex4 (s_json_t *self, uint32_t *out)
{
    if (self->end - self->p < 4)
        return s_json_fail (self, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = self->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return s_json_fail (self, "bad hex digit in \\u escape");
    }
    self->p += 4;
    *out = v;
    return 0;
}

/*  Parses the string literal at self->p into self->out (decoded, NUL-terminated).
    Returns 0 with *str and *len set, or -1. The output never outgrows the input: every escape
    is longer than what it decodes to, and the two quotes pay for the NUL.  */
static int
s_json_string (s_json_t *self, const char **str, size_t *len)
{
    if (self->p >= self->end || *self->p != '"')
        return s_json_fail (self, "expected a string");
    self->p++;
    char *begin = self->out;
    char *o = self->out;
    for (;;) {
        if (self->p >= self->end)
            return s_json_fail (self, "unterminated string");
        unsigned char c = (unsigned char)*self->p;
        if (c == '"') {
            self->p++;
            break;
        }
        if (c < 0x20)
            return s_json_fail (self, "control character in string");
        if (c == '\\') {
            self->p++;
            if (self->p >= self->end)
                return s_json_fail (self, "unterminated string");
            char esc = *self->p++;
            switch (esc) {
                case '"':
                case '\\':
                case '/':
                    *o++ = esc;
                    break;
                case 'b':
                    *o++ = '\b';
                    break;
                case 'f':
                    *o++ = '\f';
                    break;
                case 'n':
                    *o++ = '\n';
                    break;
                case 'r':
                    *o++ = '\r';
                    break;
                case 't':
                    *o++ = '\t';
                    break;
                case 'u': {
                    uint32_t cp;
                    if (s_json_hex4 (self, &cp) != 0)
                        return -1;
                    if (cp >= 0xdc00 && cp <= 0xdfff)
                        return s_json_fail (self, "lone low surrogate in \\u escape");
                    if (cp >= 0xd800 && cp <= 0xdbff) {
                        uint32_t low;
                        if (self->end - self->p < 2 || self->p[0] != '\\' || self->p[1] != 'u')
                            return s_json_fail (self, "high surrogate without its low half");
                        self->p += 2;
                        if (s_json_hex4 (self, &low) != 0)
                            return -1;
                        if (low < 0xdc00 || low > 0xdfff)
                            return s_json_fail (self, "high surrogate without its low half");
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
                    }
                    if (cp == 0)
                        return s_json_fail (self, "\\u0000 is not allowed");
                    o += s_utf8_put (o, cp);
                    break;
                }
                default:
                    self->p--;
                    return s_json_fail (self, "unknown escape");
            }
            continue;
        }
        if (c < 0x80) {
            *o++ = (char)c;
            self->p++;
            continue;
        }
        size_t n = s_utf8_len ((const unsigned char *)self->p, (size_t)(self->end - self->p));
        if (n == 0)
            return s_json_fail (self, "invalid UTF-8 in string");
        memcpy (o, self->p, n);
        o += n;
        self->p += n;
    }
    *o++ = '\0';
    *str = begin;
    *len = (size_t)(o - begin) - 1;
    self->out = o;
    return 0;
}

/*  Parses body (len bytes) as one flat JSON object whose values are strings or null, filling
    the four known fields; other keys are allowed and ignored. scratch must hold len + 1 bytes;
    the decoded strings point into it. Returns 0, or -1 with json->error and json->error_at.  */
static int
s_json_parse (const char *body, size_t len, char *scratch, s_fields_t *fields, s_json_t *json)
{
    memset (fields, 0, sizeof *fields);
    *json = (s_json_t){ .start = body, .p = body, .end = body + len, .out = scratch };
    s_json_t *self = json;
    s_json_ws (self);
    if (self->p >= self->end || *self->p != '{')
        return s_json_fail (self, "expected an object");
    self->p++;
    s_json_ws (self);
    if (self->p < self->end && *self->p == '}')
        self->p++;
    else
        for (;;) {
            const char *key;
            size_t key_len;
            if (s_json_string (self, &key, &key_len) != 0)
                return -1;
            s_json_ws (self);
            if (self->p >= self->end || *self->p != ':')
                return s_json_fail (self, "expected ':'");
            self->p++;
            s_json_ws (self);
            s_field_t *field = NULL;
            if (key_len == 7 && memcmp (key, "channel", 7) == 0)
                field = &fields->channel;
            else if (key_len == 2 && memcmp (key, "to", 2) == 0)
                field = &fields->to;
            else if (key_len == 5 && memcmp (key, "title", 5) == 0)
                field = &fields->title;
            else if (key_len == 4 && memcmp (key, "body", 4) == 0)
                field = &fields->body;
            if (field && field->present)
                return s_json_fail (self, "duplicate key");
            s_field_t value = { .present = true };
            if (self->p < self->end && *self->p == '"') {
                if (s_json_string (self, &value.str, &value.len) != 0)
                    return -1;
            } else if (self->end - self->p >= 4 && memcmp (self->p, "null", 4) == 0) {
                self->p += 4;
                value.is_null = true;
            } else
                return s_json_fail (self, "values must be strings or null");
            if (field)
                *field = value;
            s_json_ws (self);
            if (self->p < self->end && *self->p == ',') {
                self->p++;
                s_json_ws (self);
                continue;
            }
            if (self->p < self->end && *self->p == '}') {
                self->p++;
                break;
            }
            return s_json_fail (self, "expected ',' or '}'");
        }
    s_json_ws (self);
    if (self->p != self->end)
        return s_json_fail (self, "data after the object");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/*  EUC-KR                                                                                    */

/*  One converter per thread (iconv_t is not thread-safe), closed when the thread ends.  */
static pthread_key_t s_iconv_key;

static void
s_iconv_close (void *cd)
{
    iconv_close ((iconv_t)cd);
}

/*  Returns the length in EUC-KR of the UTF-8 text, -1 when a character has no EUC-KR form
    (*bad = its byte offset), or -2 when iconv is unusable.  */
static long
s_euckr_len (const char *text, size_t len, size_t *bad)
{
    size_t i = 0;
    while (i < len && !(text[i] & 0x80))
        i++;
    if (i == len)
        return (long)len; /* ASCII: one byte each */
    iconv_t cd = (iconv_t)pthread_getspecific (s_iconv_key);
    if (!cd) {
        cd = iconv_open ("EUC-KR", "UTF-8");
        if (cd == (iconv_t)-1)
            return -2;
        if (pthread_setspecific (s_iconv_key, cd) != 0) {
            iconv_close (cd);
            return -2;
        }
    }
    iconv (cd, NULL, NULL, NULL, NULL);
    char *in = (char *)text;
    size_t in_left = len;
    long total = 0;
    while (in_left > 0) {
        char out[1024];
        char *o = out;
        size_t o_left = sizeof out;
        size_t rc = iconv (cd, &in, &in_left, &o, &o_left);
        total += (long)(sizeof out - o_left);
        if (rc == (size_t)-1 && errno != E2BIG) {
            *bad = (size_t)(in - text);
            return -1;
        }
    }
    return total;
}

/*  Checks that field fits limit bytes of EUC-KR. Returns true, or false with why set.  */
static bool
s_euckr_fits (const char *name, const s_field_t *field, long limit, const char *channel, char *why,
              size_t why_size)
{
    size_t bad = 0;
    long n = s_euckr_len (field->str, field->len, &bad);
    if (n == -2) {
        snprintf (why, why_size, "EUC-KR converter unavailable");
        return false;
    }
    if (n < 0) {
        uint32_t cp = s_utf8_decode ((const unsigned char *)field->str + bad, field->len - bad);
        snprintf (why, why_size, "%s: character U+%04" PRIX32 " at byte %zu has no EUC-KR form",
                  name, cp, bad);
        return false;
    }
    if (n > limit) {
        snprintf (why, why_size, "%s is %ld bytes in EUC-KR; %s allows %ld", name, n, channel,
                  limit);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/*  HTTP                                                                                      */

enum { S_ROUTE_NONE, S_ROUTE_MESSAGES, S_ROUTE_REPORT, S_ROUTE_CSV, S_ROUTE_RESET, S_ROUTE_METHOD };
enum { S_KIND_JSON, S_KIND_THROTTLE, S_KIND_GARBAGE, S_KIND_UNAUTHORIZED };

/*  One HTTP request, from its headers to the completion callback (which frees it).  */
typedef struct s_request {
    struct s_request *next; /* in a delay queue */
    struct MHD_Connection *connection;
    int64_t due_ns;
    int route;
    char *body;
    size_t len;
    size_t cap;
    bool too_large;
    bool reply_ready; /* a delayed reply waits in status/kind/reply */
    unsigned status;
    int kind;
    size_t reply_len;
    char reply[640];
} s_request_t;

/*  Replies due later, one FIFO per channel (a channel's latency is fixed, so each queue is in
    due order). The delay thread resumes the connections; the handler then sends the reply.  */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    s_request_t *head[S_CHANNELS];
    s_request_t *tail[S_CHANNELS];
    bool stop;
} s_delay;

static void s_reply (s_request_t *req, unsigned status, int kind, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

/*  Sets the reply of req; the body is format's expansion.  */
static void
s_reply (s_request_t *req, unsigned status, int kind, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int n = vsnprintf (req->reply, sizeof req->reply, format, args);
    va_end (args);
    req->status = status;
    req->kind = kind;
    req->reply_len = n < 0 ? 0 : (size_t)n < sizeof req->reply ? (size_t)n : sizeof req->reply - 1;
}

/*  Sets a {"error": why} reply.  */
static void
s_reply_error (s_request_t *req, unsigned status, const char *why)
{
    s_buf_t buf = { 0 };
    s_buf_str (&buf, "{\"error\": ");
    s_buf_json (&buf, why, strlen (why));
    s_buf_str (&buf, "}");
    s_reply (req, status, S_KIND_JSON, "%s", buf.oom ? "{\"error\": \"out of memory\"}" : buf.data);
    free (buf.data);
}

static enum MHD_Result
s_respond (struct MHD_Connection *connection, unsigned status, const char *content_type, void *body,
           size_t len, enum MHD_ResponseMemoryMode mode, const char *extra_header,
           const char *extra_value)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (len, body, mode);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (extra_header)
        MHD_add_response_header (response, extra_header, extra_value);
    enum MHD_Result rc = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return rc;
}

static enum MHD_Result
s_respond_reply (struct MHD_Connection *connection, s_request_t *req)
{
    const char *type = req->kind == S_KIND_GARBAGE ? "text/html" : "application/json";
    const char *header = NULL, *value = NULL;
    if (req->kind == S_KIND_THROTTLE) {
        header = MHD_HTTP_HEADER_RETRY_AFTER;
        value = "1";
    } else if (req->kind == S_KIND_UNAUTHORIZED) {
        header = MHD_HTTP_HEADER_WWW_AUTHENTICATE;
        value = "Bearer";
    }
    return s_respond (connection, req->status, type, req->reply, req->reply_len,
                      MHD_RESPMEM_MUST_COPY, header, value);
}

/* ------------------------------------------------------------------------------------------ */
/*  --record: what was accepted, exactly as a subscriber gets it                              */

static FILE *s_record_file;
static pthread_mutex_t s_record_lock = PTHREAD_MUTEX_INITIALIZER;

/*  Writes text[0..len) as a JSON string. Bytes of 0x80 and above go through as they are
    (HTTP content was checked to be UTF-8; an email's raw data is 7-bit in practice).  */
static void
s_record_str (FILE *f, const char *text, size_t len)
{
    fputc ('"', f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\')
            fprintf (f, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            fprintf (f, "\\u%04x", c);
        else
            fputc (c, f);
    }
    fputc ('"', f);
}

/*  One accepted HTTP message: {"channel", "id", "key", "to", "title", "body"}.  */
static void
s_record_http (int channel, uint64_t id, const char *key, const s_fields_t *f)
{
    if (!s_record_file)
        return;
    pthread_mutex_lock (&s_record_lock);
    fprintf (s_record_file, "{\"channel\": \"%s\", \"id\": \"m-%" PRIu64 "\", \"key\": ",
             s_channel_name[channel], id);
    s_record_str (s_record_file, key, strlen (key));
    fputs (", \"to\": ", s_record_file);
    s_record_str (s_record_file, f->to.str, f->to.len);
    fputs (", \"title\": ", s_record_file);
    if (f->title.str)
        s_record_str (s_record_file, f->title.str, f->title.len);
    else
        fputs ("null", s_record_file);
    fputs (", \"body\": ", s_record_file);
    s_record_str (s_record_file, f->body.str, f->body.len);
    fputs ("}\n", s_record_file);
    fflush (s_record_file);
    pthread_mutex_unlock (&s_record_lock);
}

/*  One accepted email: {"channel": "email", "id", "message_id", "rcpt": [...], "data"}, data
    being the whole message after dot-unstuffing (headers and MIME body as sent).  */
static void
s_record_email (uint64_t id, const char *mid, const char *rcpt, size_t rcpt_len,
                const char *data, size_t len)
{
    if (!s_record_file)
        return;
    pthread_mutex_lock (&s_record_lock);
    fprintf (s_record_file, "{\"channel\": \"email\", \"id\": \"m-%" PRIu64 "\", \"message_id\": ",
             id);
    s_record_str (s_record_file, mid, strlen (mid));
    fputs (", \"rcpt\": [", s_record_file);
    for (size_t off = 0; off < rcpt_len; off += strlen (rcpt + off) + 1) {
        if (off)
            fputs (", ", s_record_file);
        s_record_str (s_record_file, rcpt + off, strlen (rcpt + off));
    }
    fputs ("], \"data\": ", s_record_file);
    s_record_str (s_record_file, data ? data : "", data ? len : 0);
    fputs ("}\n", s_record_file);
    fflush (s_record_file);
    pthread_mutex_unlock (&s_record_lock);
}

/*  Decides the reply to one POST /v1/messages and records its outcome. Returns the channel,
    or -1 when the request names no known channel (no latency applies then).  */
static int
s_http_message (s_request_t *req, struct MHD_Connection *connection)
{
    char why[256];
    if (req->too_large) {
        snprintf (why, sizeof why, "body exceeds %d bytes", S_MAX_BODY);
        s_reply_error (req, MHD_HTTP_BAD_REQUEST, why);
        s_record_invalid ();
        return -1;
    }
    char *scratch = malloc (req->len + 1);
    if (!scratch) {
        s_reply_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return -1;
    }
    s_fields_t f;
    s_json_t json;
    int channel = -1;
    if (s_json_parse (req->body ? req->body : "", req->len, scratch, &f, &json) != 0) {
        snprintf (why, sizeof why, "malformed JSON: %s at byte %zu", json.error, json.error_at);
        s_reply_error (req, MHD_HTTP_BAD_REQUEST, why);
        s_record_invalid ();
        goto cleanup;
    }
    if (!f.channel.str) {
        s_reply_error (req, MHD_HTTP_BAD_REQUEST, "channel is required");
        s_record_invalid ();
        goto cleanup;
    }
    if (strcmp (f.channel.str, "SMS") == 0)
        channel = S_SMS;
    else if (strcmp (f.channel.str, "LMS") == 0)
        channel = S_LMS;
    else if (strcmp (f.channel.str, "PUSH") == 0)
        channel = S_PUSH;
    else {
        s_reply_error (req, MHD_HTTP_BAD_REQUEST, "unknown channel (SMS, LMS or PUSH)");
        s_record_invalid ();
        goto cleanup;
    }

    const char *ctype
        = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ctype || strncasecmp (ctype, "application/json", 16) != 0
        || (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' ')) {
        s_reply_error (req, MHD_HTTP_BAD_REQUEST, "Content-Type must be application/json");
        s_record (channel, S_REJECTED);
        goto cleanup;
    }
    if (s_cfg.token) {
        const char *auth = MHD_lookup_connection_value (connection, MHD_HEADER_KIND,
                                                        MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth || strncasecmp (auth, "Bearer ", 7) != 0 || strcmp (auth + 7, s_cfg.token) != 0) {
            s_reply_error (req, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
            req->kind = S_KIND_UNAUTHORIZED;
            s_record (channel, S_REJECTED);
            goto cleanup;
        }
    }
    const char *key = MHD_lookup_connection_value (connection, MHD_HEADER_KIND, "Idempotency-Key");
    size_t key_len = key ? strlen (key) : 0;
    if (key_len == 0 || key_len > S_MAX_KEY) {
        snprintf (why, sizeof why, "Idempotency-Key is required (1 to %d bytes)", S_MAX_KEY);
        s_reply_error (req, MHD_HTTP_BAD_REQUEST, why);
        s_record (channel, S_REJECTED);
        goto cleanup;
    }
    uint64_t id;
    uint64_t body_hash = s_hash (req->body ? req->body : "", req->len);
    if (s_map_get (&s_http_keys, key, key_len, &id)) {
        /*  The common idempotency convention: a key names one request. A resend must be that
            request byte for byte; the same key with another body is the client's error.  */
        uint64_t first_hash;
        if (!s_cfg.key_reuse_ok && s_map_get (&s_http_bodies, key, key_len, &first_hash)
            && first_hash != body_hash) {
            s_reply_error (req, MHD_HTTP_UNPROCESSABLE_CONTENT,
                           "Idempotency-Key was used with a different request body");
            s_record (channel, S_REJECTED);
            atomic_fetch_add (&s_key_reused, 1);
            s_log ("http %s: Idempotency-Key reused with a different body (422)",
                   s_channel_name[channel]);
            goto cleanup;
        }
        s_reply (req, MHD_HTTP_CONFLICT, S_KIND_JSON, "{\"message_id\": \"m-%" PRIu64 "\"}", id);
        s_record (channel, S_DUPLICATE);
        goto cleanup;
    }

    /*  Field errors: missing or mistyped → 400, content the channel cannot carry → 422.  */
    if (!f.to.str || !f.body.str || (f.title.present && !f.title.is_null && !f.title.str)) {
        s_reply_error (req, MHD_HTTP_BAD_REQUEST, "to and body must be strings");
        s_record (channel, S_REJECTED);
        goto cleanup;
    }
    const char *problem = NULL;
    if (f.to.len == 0)
        problem = "to is empty";
    else if (f.to.len > S_MAX_TO)
        problem = "to is too long";
    else if (f.body.len == 0)
        problem = "body is empty";
    else if (channel == S_PUSH && (!f.title.str || f.title.len == 0))
        problem = "PUSH needs a title";
    else if (channel == S_SMS && !s_euckr_fits ("body", &f.body, 90, "SMS", why, sizeof why))
        problem = why;
    else if (channel == S_LMS && f.title.str
             && !s_euckr_fits ("title", &f.title, 40, "LMS", why, sizeof why))
        problem = why;
    else if (channel == S_LMS && !s_euckr_fits ("body", &f.body, 2000, "LMS", why, sizeof why))
        problem = why;
    if (problem) {
        s_reply_error (req, MHD_HTTP_UNPROCESSABLE_CONTENT, problem);
        s_record (channel, S_REJECTED);
        goto cleanup;
    }
    if (s_is_rejected (f.to.str)) {
        s_reply_error (req, MHD_HTTP_NOT_FOUND, "unknown recipient");
        s_record (channel, S_REJECTED);
        goto cleanup;
    }

    double draw = s_draw_pct ();
    double fail = s_cfg.fail_pct[channel];
    if (draw < fail) {
        if (s_cfg.fail_permanent) {
            s_reply_error (req, MHD_HTTP_UNPROCESSABLE_CONTENT, "permanent failure (injected)");
            s_record (channel, S_REJECTED);
        } else {
            s_reply_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "temporary failure (injected)");
            s_record (channel, S_FAILED);
        }
        goto cleanup;
    }
    if (draw < fail + s_cfg.throttle_pct) {
        s_reply_error (req, MHD_HTTP_TOO_MANY_REQUESTS, "throttled (injected)");
        req->kind = S_KIND_THROTTLE;
        s_record (channel, S_THROTTLED);
        goto cleanup;
    }
    if (draw < fail + s_cfg.throttle_pct + s_cfg.garbage_pct) {
        s_reply (req, MHD_HTTP_OK, S_KIND_GARBAGE, "<html><body>502 upstream hiccup</body>");
        s_record (channel, S_GARBAGE);
        goto cleanup;
    }

    uint64_t found = 0;
    id = atomic_fetch_add (&s_next_id, 1);
    int rc = s_map_put_new (&s_http_keys, key, key_len, id, &found);
    if (rc == 0) { /* the same key won a race a moment ago */
        s_reply (req, MHD_HTTP_CONFLICT, S_KIND_JSON, "{\"message_id\": \"m-%" PRIu64 "\"}", found);
        s_record (channel, S_DUPLICATE);
    } else if (rc < 0 || s_map_bump (&s_recipients[channel], f.to.str, f.to.len) == 0) {
        s_reply_error (req, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        s_record (channel, S_FAILED);
    } else {
        /*  Out of memory here only weakens the reuse check for this key.  */
        s_map_put_new (&s_http_bodies, key, key_len, body_hash, &found);
        s_record_http (channel, id, key, &f);
        /*  --lost-reply-pct: the message is accepted (a resend of the key is a duplicate),
            but the client is told otherwise, as when a gateway loses the reply.  */
        if (draw < fail + s_cfg.throttle_pct + s_cfg.garbage_pct + s_cfg.lost_reply_pct)
            s_reply_error (req, MHD_HTTP_BAD_GATEWAY, "reply lost (injected; the message was accepted)");
        else
            s_reply (req, MHD_HTTP_ACCEPTED, S_KIND_JSON, "{\"message_id\": \"m-%" PRIu64 "\"}",
                     id);
        s_record (channel, S_ACCEPTED);
    }

cleanup:
    if (s_cfg.verbose) {
        char masked[64];
        s_log ("http %s to=%s -> %u %.*s", channel >= 0 ? s_channel_name[channel] : "-",
               f.to.str ? s_mask (f.to.str, f.to.len, masked, sizeof masked) : "-", req->status,
               (int)req->reply_len, req->reply);
    }
    free (scratch);
    return channel;
}

/*  Suspends req's connection until ms from now. Returns false when shutting down: the caller
    replies at once. Suspending under our lock, before the request is queued, guarantees the
    delay thread never resumes a connection that is not suspended yet.  */
static bool
s_delay_push (s_request_t *req, int channel, unsigned ms)
{
    pthread_mutex_lock (&s_delay.lock);
    if (s_delay.stop) {
        pthread_mutex_unlock (&s_delay.lock);
        return false;
    }
    MHD_suspend_connection (req->connection);
    req->due_ns = s_now_ns () + (int64_t)ms * 1000000;
    req->next = NULL;
    if (s_delay.tail[channel])
        s_delay.tail[channel]->next = req;
    else {
        s_delay.head[channel] = req;
        pthread_cond_signal (&s_delay.wake);
    }
    s_delay.tail[channel] = req;
    pthread_mutex_unlock (&s_delay.lock);
    return true;
}

/*  The delay thread: resumes connections whose reply is due; on stop resumes all of them.  */
static void *
s_delay_run (void *arg)
{
    (void)arg;
    pthread_mutex_lock (&s_delay.lock);
    for (;;) {
        int64_t now = s_now_ns ();
        int64_t next = INT64_MAX;
        s_request_t *due = NULL, **tail = &due;
        for (int ch = 0; ch < S_CHANNELS; ch++) {
            s_request_t *r;
            while ((r = s_delay.head[ch]) && (s_delay.stop || r->due_ns <= now)) {
                s_delay.head[ch] = r->next;
                if (!r->next)
                    s_delay.tail[ch] = NULL;
                r->next = NULL;
                *tail = r;
                tail = &r->next;
            }
            if (r && r->due_ns < next)
                next = r->due_ns;
        }
        if (due) {
            pthread_mutex_unlock (&s_delay.lock);
            while (due) {
                /*  Once resumed the request may complete and be freed at any moment.  */
                s_request_t *r = due;
                due = r->next;
                MHD_resume_connection (r->connection);
            }
            pthread_mutex_lock (&s_delay.lock);
            continue;
        }
        if (s_delay.stop)
            break;
        if (next == INT64_MAX)
            pthread_cond_wait (&s_delay.wake, &s_delay.lock);
        else {
            struct timespec ts = { .tv_sec = next / 1000000000, .tv_nsec = next % 1000000000 };
            pthread_cond_timedwait (&s_delay.wake, &s_delay.lock, &ts);
        }
    }
    pthread_mutex_unlock (&s_delay.lock);
    return NULL;
}

static int
s_route (const char *url, const char *method)
{
    bool get = strcmp (method, MHD_HTTP_METHOD_GET) == 0;
    bool post = strcmp (method, MHD_HTTP_METHOD_POST) == 0;
    if (strcmp (url, "/v1/messages") == 0)
        return post ? S_ROUTE_MESSAGES : S_ROUTE_METHOD;
    if (strcmp (url, "/v1/report") == 0)
        return get ? S_ROUTE_REPORT : S_ROUTE_METHOD;
    if (strcmp (url, "/v1/report/recipients") == 0)
        return get ? S_ROUTE_CSV : S_ROUTE_METHOD;
    if (strcmp (url, "/v1/reset") == 0)
        return post ? S_ROUTE_RESET : S_ROUTE_METHOD;
    return S_ROUTE_NONE;
}

static enum MHD_Result
s_respond_buf (struct MHD_Connection *connection, s_buf_t *buf, const char *content_type)
{
    if (buf->oom || !buf->data) {
        free (buf->data);
        static char oom[] = "{\"error\": \"out of memory\"}";
        return s_respond (connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json", oom,
                          strlen (oom), MHD_RESPMEM_PERSISTENT, NULL, NULL);
    }
    /*  The response takes the buffer and frees it.  */
    return s_respond (connection, MHD_HTTP_OK, content_type, buf->data, buf->len,
                      MHD_RESPMEM_MUST_FREE, NULL, NULL);
}

/*  libmicrohttpd's access handler: called once after the headers, once per body chunk, then
    with no data when the request is complete — and once more after a resume.  */
static enum MHD_Result
s_http_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
               const char *version, const char *upload_data, size_t *upload_data_size,
               void **con_cls)
{
    (void)cls;
    (void)version;
    s_request_t *req = *con_cls;
    if (!req) {
        req = calloc (1, sizeof *req);
        if (!req)
            return MHD_NO;
        req->connection = connection;
        req->route = s_route (url, method);
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        if (req->route == S_ROUTE_MESSAGES && !req->too_large
            && s_bytes_add (&req->body, &req->len, &req->cap, upload_data, n, S_MAX_BODY) != 0)
            req->too_large = true;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->reply_ready)
        return s_respond_reply (connection, req);

    static char not_found[] = "{\"error\": \"no such endpoint\"}";
    static char bad_method[] = "{\"error\": \"method not allowed\"}";
    static char reset_done[] = "{\"reset\": true}\n";
    s_buf_t buf = { 0 };
    switch (req->route) {
        case S_ROUTE_MESSAGES: {
            int channel = s_http_message (req, connection);
            unsigned ms = channel >= 0 ? s_cfg.latency_ms[channel] : 0;
            if (ms > 0) {
                req->reply_ready = true;
                if (s_delay_push (req, channel, ms))
                    return MHD_YES;
            }
            return s_respond_reply (connection, req);
        }
        case S_ROUTE_REPORT:
            s_report (&buf);
            return s_respond_buf (connection, &buf, "application/json");
        case S_ROUTE_CSV:
            s_report_csv (&buf);
            return s_respond_buf (connection, &buf, "text/csv");
        case S_ROUTE_RESET:
            s_store_reset ();
            s_log ("reset");
            return s_respond (connection, MHD_HTTP_OK, "application/json", reset_done,
                              strlen (reset_done), MHD_RESPMEM_PERSISTENT, NULL, NULL);
        case S_ROUTE_METHOD:
            return s_respond (connection, MHD_HTTP_METHOD_NOT_ALLOWED, "application/json",
                              bad_method, strlen (bad_method), MHD_RESPMEM_PERSISTENT, NULL, NULL);
        default:
            return s_respond (connection, MHD_HTTP_NOT_FOUND, "application/json", not_found,
                              strlen (not_found), MHD_RESPMEM_PERSISTENT, NULL, NULL);
    }
}

static void
s_http_completed (void *cls, struct MHD_Connection *connection, void **con_cls,
                  enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)connection;
    (void)code;
    s_request_t *req = *con_cls;
    if (req) {
        free (req->body);
        free (req);
        *con_cls = NULL;
    }
}

/* ------------------------------------------------------------------------------------------ */
/*  SMTP                                                                                      */

enum { S_MODE_COMMAND, S_MODE_DATA, S_MODE_AUTH_PLAIN, S_MODE_AUTH_USER, S_MODE_AUTH_PASS };
enum { S_D_BOL, S_D_MID, S_D_CR, S_D_DOT, S_D_DOTCR };

/*  One SMTP connection. Lives on the SMTP thread only.  */
typedef struct s_session {
    struct s_session *prev, *next;   /* all open sessions; next also links the dead list */
    struct s_session *wprev, *wnext; /* sessions waiting for a delayed reply, due order */
    int fd;                          /* -1 once closed */
    int mode;
    bool greeted;   /* HELO/EHLO seen */
    bool authed;    /* AUTH succeeded */
    bool in_mail;   /* MAIL FROM accepted, transaction open */
    bool waiting;   /* a reply is delayed; input is not processed meanwhile */
    bool closing;   /* close once the output is flushed */
    int64_t due_ms; /* when the delayed reply goes out */
    int64_t active_ms;
    char *in; /* input not processed yet */
    size_t in_len, in_cap;
    char *out; /* replies the socket did not take yet */
    size_t out_len, out_off, out_cap;
    char *rcpt; /* accepted RCPT addresses, each NUL-terminated */
    size_t rcpt_len, rcpt_cap;
    unsigned nrcpt;
    int dstate; /* DATA: position relative to line starts and the final dot */
    uint64_t size;
    char *hdr; /* the message's first bytes, to find Message-ID */
    size_t hdr_len, hdr_cap;
    char *msg; /* --record: the whole message (up to the size limit) */
    size_t msg_len, msg_cap;
    bool hdr_done;
    char user[256]; /* AUTH LOGIN: the user name given */
    char reply[256];
    size_t reply_len;
} s_session_t;

static struct {
    int epfd;
    int listen_fd;
    int wake_fd;
    s_session_t *all;
    s_session_t *wait_head, *wait_tail;
    s_session_t *dead; /* closed in this round; freed once no event can refer to them */
    size_t sessions;
    int64_t accept_paused_until; /* 0 while accepting */
    int64_t next_idle_scan;
    bool stop;
    pthread_t thread;
    char rbuf[64 * 1024];
} s_smtp = { .epfd = -1, .listen_fd = -1, .wake_fd = -1 };

static int s_tag_listen, s_tag_wake; /* epoll data for the two non-session descriptors */

static void
s_session_close (s_session_t *s)
{
    if (s->fd < 0)
        return;
    close (s->fd);
    s->fd = -1;
    if (s->waiting) {
        if (s->wprev)
            s->wprev->wnext = s->wnext;
        else
            s_smtp.wait_head = s->wnext;
        if (s->wnext)
            s->wnext->wprev = s->wprev;
        else
            s_smtp.wait_tail = s->wprev;
        s->waiting = false;
    }
    if (s->prev)
        s->prev->next = s->next;
    else
        s_smtp.all = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = NULL;
    s->next = s_smtp.dead;
    s_smtp.dead = s;
    s_smtp.sessions--;
}

static void
s_session_free_dead (void)
{
    while (s_smtp.dead) {
        s_session_t *s = s_smtp.dead;
        s_smtp.dead = s->next;
        free (s->in);
        free (s->out);
        free (s->rcpt);
        free (s->hdr);
        free (s->msg);
        free (s);
    }
}

/*  Sends what the socket takes now and keeps the rest for EPOLLOUT.  */
static void
s_send (s_session_t *s, const char *data, size_t len)
{
    if (s->fd < 0)
        return;
    if (s->out_off == s->out_len) {
        s->out_off = s->out_len = 0;
        while (len > 0) {
            ssize_t w = send (s->fd, data, len, MSG_NOSIGNAL);
            if (w > 0) {
                data += w;
                len -= (size_t)w;
                continue;
            }
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                break;
            s_session_close (s);
            return;
        }
        if (len == 0)
            return;
    }
    if (s_bytes_add (&s->out, &s->out_len, &s->out_cap, data, len, S_SMTP_OUT_MAX) != 0)
        s_session_close (s); /* the client does not read its replies */
}

static void s_sendf (s_session_t *s, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_sendf (s_session_t *s, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    if (n > 0)
        s_send (s, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void
s_flush (s_session_t *s)
{
    while (s->fd >= 0 && s->out_off < s->out_len) {
        ssize_t w = send (s->fd, s->out + s->out_off, s->out_len - s->out_off, MSG_NOSIGNAL);
        if (w > 0)
            s->out_off += (size_t)w;
        else if (w < 0 && errno == EINTR)
            continue;
        else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        else
            s_session_close (s);
    }
    if (s->fd >= 0 && s->closing)
        s_session_close (s);
}

/*  Ends the session after the replies sent so far.  */
static void
s_finish (s_session_t *s)
{
    s->closing = true;
    if (s->out_off == s->out_len)
        s_session_close (s);
}

static void
s_transaction_reset (s_session_t *s)
{
    s->in_mail = false;
    s->rcpt_len = 0;
    s->nrcpt = 0;
}

/*  Decodes base64 text into out (size bytes). Returns the decoded length or -1.  */
static long
s_base64_decode (const char *text, size_t len, char *out, size_t size)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=') {
            pad++;
            continue;
        } else
            return -1;
        if (pad)
            return -1; /* data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= size)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)n;
}

static void
s_auth_check (s_session_t *s, const char *user, const char *password)
{
    s->mode = S_MODE_COMMAND;
    if (strcmp (user, s_cfg.smtp_user) == 0 && strcmp (password, s_cfg.smtp_password) == 0) {
        s->authed = true;
        s_sendf (s, "235 2.7.0 Authentication successful\r\n");
    } else
        s_sendf (s, "535 5.7.8 Authentication credentials invalid\r\n");
}

/*  AUTH PLAIN response: base64 of "authzid NUL user NUL password".  */
static void
s_auth_plain (s_session_t *s, const char *b64)
{
    char raw[1024];
    long n = s_base64_decode (b64, strlen (b64), raw, sizeof raw - 1);
    s->mode = S_MODE_COMMAND;
    if (n < 0) {
        s_sendf (s, "501 5.5.2 Cannot decode the AUTH response\r\n");
        return;
    }
    raw[n] = '\0';
    const char *user = memchr (raw, '\0', (size_t)n);
    const char *password = user ? memchr (user + 1, '\0', (size_t)(raw + n - user - 1)) : NULL;
    if (!user || !password) {
        s_sendf (s, "501 5.5.2 Malformed AUTH PLAIN response\r\n");
        return;
    }
    s_auth_check (s, user + 1, password + 1);
}

/*  Decodes one base64 AUTH LOGIN line into out. Returns false (reply sent) on a bad line.  */
static bool
s_auth_line (s_session_t *s, const char *b64, char *out, size_t size)
{
    long n = s_base64_decode (b64, strlen (b64), out, size - 1);
    if (n < 0 || memchr (out, '\0', (size_t)n)) {
        s->mode = S_MODE_COMMAND;
        s_sendf (s, "501 5.5.2 Cannot decode the AUTH response\r\n");
        return false;
    }
    out[n] = '\0';
    return true;
}

/*  Extracts the address of "FROM:<addr> params" / "TO:<addr>": returns a pointer to it inside
    arg (NUL-terminated there) and sets *params, or NULL when malformed.  */
static char *
s_path (char *arg, const char *prefix, char **params)
{
    size_t plen = strlen (prefix);
    if (strncasecmp (arg, prefix, plen) != 0)
        return NULL;
    char *p = arg + plen;
    while (*p == ' ')
        p++;
    char *addr, *end;
    if (*p == '<') {
        addr = p + 1;
        end = strchr (addr, '>');
        if (!end)
            return NULL;
    } else {
        addr = p;
        end = addr + strcspn (addr, " ");
    }
    *params = *end ? end + 1 : end;
    *end = '\0';
    return strlen (addr) > S_MAX_TO ? NULL : addr;
}

static void
s_ehlo (s_session_t *s, bool extended)
{
    s_transaction_reset (s);
    s->greeted = true;
    if (!extended) {
        s_sendf (s, "250 mockprovider\r\n");
        return;
    }
    /*  RFC 5321 puts the keywords in no order; AUTH goes last, where a client that does not
        read a reply to its final line would miss it.  */
    s_sendf (s,
             "250-mockprovider\r\n250-SIZE %zu\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
             "250-ENHANCEDSTATUSCODES\r\n%s",
             s_cfg.max_message_size, s_cfg.smtp_user ? "250-HELP\r\n" : "");
    s_sendf (s, "%s", s_cfg.smtp_user ? "250 AUTH PLAIN LOGIN\r\n" : "250 HELP\r\n");
}

static void
s_cmd_mail (s_session_t *s, char *arg)
{
    if (!s->greeted) {
        s_sendf (s, "503 5.5.1 Say EHLO first\r\n");
        return;
    }
    if (s_cfg.smtp_user && !s->authed) {
        s_sendf (s, "530 5.7.0 Authentication required\r\n");
        return;
    }
    if (s->in_mail) {
        s_sendf (s, "503 5.5.1 Sender already given\r\n");
        return;
    }
    char *params;
    if (!s_path (arg, "FROM:", &params)) {
        s_sendf (s, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
        return;
    }
    for (char *p = params; *p;) {
        while (*p == ' ')
            p++;
        if (strncasecmp (p, "SIZE=", 5) == 0
            && strtoull (p + 5, NULL, 10) > (unsigned long long)s_cfg.max_message_size) {
            s_sendf (s, "552 5.3.4 Message size exceeds fixed limit of %zu bytes\r\n",
                     s_cfg.max_message_size);
            s_record (S_EMAIL, S_REJECTED);
            return;
        }
        p += strcspn (p, " ");
    }
    s_transaction_reset (s);
    s->in_mail = true;
    s_sendf (s, "250 2.1.0 Sender ok\r\n");
}

static void
s_cmd_rcpt (s_session_t *s, char *arg)
{
    if (!s->in_mail) {
        s_sendf (s, "503 5.5.1 Need MAIL first\r\n");
        return;
    }
    char *params;
    char *addr = s_path (arg, "TO:", &params);
    if (!addr || !*addr) {
        s_sendf (s, "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
        return;
    }
    if (s->nrcpt >= S_SMTP_MAX_RCPT) {
        s_sendf (s, "452 4.5.3 Too many recipients\r\n");
        return;
    }
    if (s_is_rejected (addr) || (s_cfg.fail_permanent && s_draw_pct () < s_cfg.fail_pct[S_EMAIL])) {
        s_sendf (s, "550 5.1.1 No such user here\r\n");
        s_record (S_EMAIL, S_REJECTED);
        if (s_cfg.verbose) {
            char masked[64];
            s_log ("smtp rcpt=%s -> 550", s_mask (addr, strlen (addr), masked, sizeof masked));
        }
        return;
    }
    if (s_bytes_add (&s->rcpt, &s->rcpt_len, &s->rcpt_cap, addr, strlen (addr) + 1, SIZE_MAX)
        != 0) {
        s_sendf (s, "452 4.3.1 Out of memory\r\n");
        return;
    }
    s->nrcpt++;
    s_sendf (s, "250 2.1.5 Recipient ok\r\n");
}

/*  Sends reply now, or — when delay is set and email latency configured — after the latency
    (ms when not 0): the session stops processing input until then, other sessions carry on.  */
static void
s_reply_later (s_session_t *s, const char *reply, size_t len, bool delay, unsigned slow_ms)
{
    unsigned ms = slow_ms ? slow_ms : s_cfg.latency_ms[S_EMAIL];
    if (!delay || ms == 0 || s_smtp.stop) {
        s_send (s, reply, len);
        return;
    }
    if (len > sizeof s->reply)
        len = sizeof s->reply;
    memcpy (s->reply, reply, len);
    s->reply_len = len;
    s->waiting = true;
    s->due_ms = s_now_ms () + ms;
    /*  The list stays in due order: walk back from the tail (one latency: appended at once;
        --email-slow-ms replies are due later than the ones after them).  */
    s_session_t *after = s_smtp.wait_tail;
    while (after && after->due_ms > s->due_ms)
        after = after->wprev;
    s->wprev = after;
    s->wnext = after ? after->wnext : s_smtp.wait_head;
    if (s->wnext)
        s->wnext->wprev = s;
    else
        s_smtp.wait_tail = s;
    if (after)
        after->wnext = s;
    else
        s_smtp.wait_head = s;
}

/*  Finds the Message-ID header in the captured head of the message (unfolding continuation
    lines). Returns its trimmed value in out, or false when there is none.  */
static bool
s_message_id (const char *hdr, size_t len, char *out, size_t size)
{
    const char *p = hdr, *end = hdr + len;
    while (p < end) {
        const char *eol = memchr (p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if (line_end == p || (line_end - p == 1 && *p == '\r'))
            return false; /* the blank line: end of the header */
        if (line_end - p > 11 && strncasecmp (p, "Message-ID:", 11) == 0) {
            size_t n = 0;
            const char *v = p + 11;
            for (;;) {
                for (; v < line_end; v++) {
                    if (*v == '\r')
                        continue;
                    if (n + 1 >= size)
                        return false;
                    out[n++] = *v;
                }
                /*  A continuation line starts with white space.  */
                if (!eol || eol + 1 >= end || (eol[1] != ' ' && eol[1] != '\t'))
                    break;
                v = eol + 1;
                eol = memchr (v, '\n', (size_t)(end - v));
                line_end = eol ? eol : end;
            }
            out[n] = '\0';
            size_t a = 0;
            while (out[a] == ' ' || out[a] == '\t')
                a++;
            while (n > a && (out[n - 1] == ' ' || out[n - 1] == '\t'))
                n--;
            memmove (out, out + a, n - a);
            out[n - a] = '\0';
            return n > a;
        }
        p = eol ? eol + 1 : end;
    }
    return false;
}

/*  The final "." arrived: decide the outcome, record it, reply (after the latency).  */
static void
s_data_end (s_session_t *s)
{
    char mid[S_MAX_KEY + 1];
    char reply[256];
    int outcome;
    uint64_t id = 0;
    s->mode = S_MODE_COMMAND;
    if (s->size > s_cfg.max_message_size) {
        snprintf (reply, sizeof reply, "552 5.3.4 Message exceeds %zu bytes\r\n",
                  s_cfg.max_message_size);
        outcome = S_REJECTED;
    } else if (!s_message_id (s->hdr, s->hdr_len, mid, sizeof mid)) {
        snprintf (reply, sizeof reply,
                  "554 5.6.0 Message-ID header required (at most %d bytes)\r\n", S_MAX_KEY);
        outcome = S_REJECTED;
    } else if (s_cfg.smtp_dedup && s_map_get (&s_smtp_ids, mid, strlen (mid), &id)) {
        snprintf (reply, sizeof reply,
                  "250 2.0.0 Ok: already have this message as m-%" PRIu64 "\r\n", id);
        outcome = S_DUPLICATE;
    } else if (!s_cfg.fail_permanent && s_draw_pct () < s_cfg.fail_pct[S_EMAIL]) {
        snprintf (reply, sizeof reply, "451 4.3.0 Temporary failure (injected), try again\r\n");
        outcome = S_FAILED;
    } else {
        uint64_t found = 0;
        id = atomic_fetch_add (&s_next_id, 1);
        int rc = s_map_put_new (&s_smtp_ids, mid, strlen (mid), id, &found);
        /*  Without --smtp-dedup a known Message-ID is delivered again, like any mail server
            does: a second copy, counted as a duplicate delivery.  */
        if (rc == 0) {
            atomic_fetch_add (&s_email_redelivered, 1);
            rc = 1;
        }
        outcome = S_ACCEPTED;
        for (size_t off = 0; rc > 0 && off < s->rcpt_len; off += strlen (s->rcpt + off) + 1)
            if (s_map_bump (&s_recipients[S_EMAIL], s->rcpt + off, strlen (s->rcpt + off)) == 0)
                rc = -1;
        if (rc < 0) {
            snprintf (reply, sizeof reply, "451 4.3.1 Out of memory\r\n");
            outcome = S_FAILED;
        } else {
            s_record_email (id, mid, s->rcpt, s->rcpt_len, s->msg, s->msg_len);
            snprintf (reply, sizeof reply, "250 2.0.0 Ok: queued as m-%" PRIu64 "\r\n", id);
        }
    }
    s_record (S_EMAIL, outcome);
    if (s_cfg.verbose) {
        char masked[64];
        size_t first = s->rcpt_len ? strlen (s->rcpt) : 0;
        s_log ("smtp email to=%s rcpts=%u size=%" PRIu64 " -> %.*s",
               first ? s_mask (s->rcpt, first, masked, sizeof masked) : "-", s->nrcpt, s->size,
               (int)strcspn (reply, "\r"), reply);
    }
    s_transaction_reset (s);
    /*  A slow server: the message is taken (recorded above), the final reply is late.  */
    unsigned slow = s_cfg.email_slow_pct > 0 && s_draw_pct () < s_cfg.email_slow_pct
                        ? s_cfg.email_slow_ms
                        : 0;
    s_reply_later (s, reply, strlen (reply), !s_cfg.latency_at_data || slow, slow);
}

/*  Message bytes after dot-unstuffing: counted, and the head kept until the blank line.  */
static void
s_emit (s_session_t *s, const char *bytes, size_t n)
{
    s->size += n;
    if (s_record_file && s->size <= s_cfg.max_message_size)
        s_bytes_add (&s->msg, &s->msg_len, &s->msg_cap, bytes, n, s_cfg.max_message_size);
    if (s->hdr_done)
        return;
    size_t room = S_SMTP_HEADER_MAX - s->hdr_len;
    if (n > room) {
        n = room;
        s->hdr_done = true;
    }
    if (s_bytes_add (&s->hdr, &s->hdr_len, &s->hdr_cap, bytes, n, S_SMTP_HEADER_MAX) != 0)
        s->hdr_done = true;
    else if (s->hdr_len >= 2 && s->hdr[s->hdr_len - 1] == '\n'
             && (s->hdr_len == 2
                 || (s->hdr_len >= 4 && memcmp (s->hdr + s->hdr_len - 4, "\r\n\r\n", 4) == 0)))
        s->hdr_done = true;
}

/*  Consumes message data from p[0..n): undoes dot-stuffing and stops after CRLF.CRLF (which
    ends the message). Returns the bytes used. Only CRLF ends a line, as in libcurl's
    dot-stuffing.  */
static size_t
s_data_consume (s_session_t *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (s->dstate) {
            case S_D_BOL:
                if (p[i] == '.') {
                    s->dstate = S_D_DOT;
                    i++;
                } else
                    s->dstate = S_D_MID;
                break;
            case S_D_MID: {
                const char *cr = memchr (p + i, '\r', n - i);
                size_t stop = cr ? (size_t)(cr - p) : n;
                if (stop > i)
                    s_emit (s, p + i, stop - i);
                i = stop;
                if (cr) {
                    s->dstate = S_D_CR;
                    i++;
                }
                break;
            }
            case S_D_CR:
                if (p[i] == '\n') {
                    s_emit (s, "\r\n", 2);
                    s->dstate = S_D_BOL;
                    i++;
                } else {
                    s_emit (s, "\r", 1);
                    s->dstate = S_D_MID;
                }
                break;
            case S_D_DOT: /* a leading dot: stuffing, or the start of the end mark */
                if (p[i] == '\r') {
                    s->dstate = S_D_DOTCR;
                    i++;
                } else
                    s->dstate = S_D_MID;
                break;
            case S_D_DOTCR:
                if (p[i] == '\n') {
                    s_data_end (s);
                    return i + 1;
                }
                s_emit (s, "\r", 1);
                s->dstate = S_D_MID;
                break;
        }
    }
    return n;
}

static void
s_cmd_data (s_session_t *s)
{
    if (!s->in_mail) {
        s_sendf (s, "503 5.5.1 Need MAIL first\r\n");
        return;
    }
    if (s->nrcpt == 0) {
        s_sendf (s, "554 5.5.1 No valid recipients\r\n");
        return;
    }
    s->mode = S_MODE_DATA;
    s->dstate = S_D_BOL;
    s->size = 0;
    s->hdr_len = 0;
    s->msg_len = 0;
    s->hdr_done = false;
    static const char go[] = "354 2.0.0 End data with <CR><LF>.<CR><LF>\r\n";
    s_reply_later (s, go, strlen (go), s_cfg.latency_at_data, 0);
}

static void
s_cmd_auth (s_session_t *s, char *arg)
{
    if (!s_cfg.smtp_user) {
        s_sendf (s, "502 5.5.1 AUTH not available\r\n");
        return;
    }
    if (!s->greeted || s->authed || s->in_mail) {
        s_sendf (s, "503 5.5.1 Bad sequence of commands\r\n");
        return;
    }
    char *initial = arg + strcspn (arg, " ");
    if (*initial)
        *initial++ = '\0';
    while (*initial == ' ')
        initial++;
    if (strcasecmp (arg, "PLAIN") == 0) {
        if (*initial && strcmp (initial, "=") != 0)
            s_auth_plain (s, initial);
        else {
            s->mode = S_MODE_AUTH_PLAIN;
            s_sendf (s, "334 \r\n");
        }
    } else if (strcasecmp (arg, "LOGIN") == 0) {
        if (*initial) {
            if (!s_auth_line (s, initial, s->user, sizeof s->user))
                return;
            s->mode = S_MODE_AUTH_PASS;
            s_sendf (s, "334 UGFzc3dvcmQ6\r\n");
        } else {
            s->mode = S_MODE_AUTH_USER;
            s_sendf (s, "334 VXNlcm5hbWU6\r\n");
        }
    } else
        s_sendf (s, "504 5.5.4 Unrecognized authentication mechanism\r\n");
}

/*  One command line (CRLF stripped, NUL-terminated, writable).  */
static void
s_command (s_session_t *s, char *line)
{
    if (s->mode != S_MODE_COMMAND) { /* an AUTH exchange is under way */
        if (strcmp (line, "*") == 0) {
            s->mode = S_MODE_COMMAND;
            s_sendf (s, "501 5.7.0 Authentication cancelled\r\n");
        } else if (s->mode == S_MODE_AUTH_PLAIN)
            s_auth_plain (s, line);
        else if (s->mode == S_MODE_AUTH_USER) {
            if (s_auth_line (s, line, s->user, sizeof s->user)) {
                s->mode = S_MODE_AUTH_PASS;
                s_sendf (s, "334 UGFzc3dvcmQ6\r\n");
            }
        } else {
            char password[256];
            if (s_auth_line (s, line, password, sizeof password))
                s_auth_check (s, s->user, password);
        }
        return;
    }
    char *arg = line + strcspn (line, " ");
    if (*arg)
        *arg++ = '\0';
    while (*arg == ' ')
        arg++;
    if (strcasecmp (line, "EHLO") == 0 || strcasecmp (line, "HELO") == 0) {
        if (!*arg)
            s_sendf (s, "501 5.5.4 Syntax: %s hostname\r\n", line);
        else
            s_ehlo (s, strcasecmp (line, "EHLO") == 0);
    } else if (strcasecmp (line, "MAIL") == 0)
        s_cmd_mail (s, arg);
    else if (strcasecmp (line, "RCPT") == 0)
        s_cmd_rcpt (s, arg);
    else if (strcasecmp (line, "DATA") == 0)
        s_cmd_data (s);
    else if (strcasecmp (line, "RSET") == 0) {
        s_transaction_reset (s);
        s_sendf (s, "250 2.0.0 Ok\r\n");
    } else if (strcasecmp (line, "NOOP") == 0)
        s_sendf (s, "250 2.0.0 Ok\r\n");
    else if (strcasecmp (line, "QUIT") == 0) {
        s_sendf (s, "221 2.0.0 Bye\r\n");
        s_finish (s);
    } else if (strcasecmp (line, "AUTH") == 0)
        s_cmd_auth (s, arg);
    else if (strcasecmp (line, "VRFY") == 0)
        s_sendf (s, "252 2.5.0 Cannot VRFY user\r\n");
    else if (strcasecmp (line, "HELP") == 0)
        s_sendf (s, "214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT AUTH\r\n");
    else if (strcasecmp (line, "STARTTLS") == 0)
        s_sendf (s, "502 5.5.1 STARTTLS not supported\r\n");
    else
        s_sendf (s, "500 5.5.2 Command not recognized\r\n");
}

/*  Runs the protocol over p[0..n). Returns the bytes used; stops early while a reply is
    delayed, when the session closes, or at an incomplete command line.  */
static size_t
s_process (s_session_t *s, const char *p, size_t n)
{
    size_t off = 0;
    while (off < n && !s->waiting && !s->closing && s->fd >= 0) {
        if (s->mode == S_MODE_DATA) {
            off += s_data_consume (s, p + off, n - off);
            continue;
        }
        const char *nl = memchr (p + off, '\n', n - off);
        if (!nl) {
            if (n - off > S_SMTP_LINE_MAX) {
                s_sendf (s, "500 5.5.2 Line too long\r\n");
                s_finish (s);
                return n;
            }
            break;
        }
        size_t len = (size_t)(nl - (p + off));
        if (len > 0 && p[off + len - 1] == '\r')
            len--;
        if (len > S_SMTP_LINE_MAX)
            s_sendf (s, "500 5.5.2 Line too long\r\n");
        else {
            char line[S_SMTP_LINE_MAX + 1];
            memcpy (line, p + off, len);
            line[len] = '\0';
            if (memchr (line, '\0', len))
                s_sendf (s, "500 5.5.2 NUL in command\r\n");
            else
                s_command (s, line);
        }
        off = (size_t)(nl - p) + 1;
    }
    return off;
}

/*  Processes newly read bytes (n may be 0: only the carried ones), keeping what is left.  */
static void
s_feed (s_session_t *s, const char *p, size_t n)
{
    if (s->in_len == 0) {
        size_t used = s_process (s, p, n);
        if (used < n && s->fd >= 0 && !s->closing
            && s_bytes_add (&s->in, &s->in_len, &s->in_cap, p + used, n - used, SIZE_MAX) != 0)
            s_session_close (s);
        return;
    }
    if (n > 0 && s_bytes_add (&s->in, &s->in_len, &s->in_cap, p, n, SIZE_MAX) != 0) {
        s_session_close (s);
        return;
    }
    size_t used = s_process (s, s->in, s->in_len);
    if (s->fd < 0)
        return;
    memmove (s->in, s->in + used, s->in_len - used);
    s->in_len -= used;
}

/*  Processes carried input, then reads until the socket is drained (edge-triggered) or the
    session must wait for a delayed reply (then the rest stays in the kernel's buffer).  */
static void
s_pump (s_session_t *s)
{
    if (s->in_len > 0)
        s_feed (s, NULL, 0);
    while (s->fd >= 0 && !s->waiting && !s->closing) {
        ssize_t n = recv (s->fd, s_smtp.rbuf, sizeof s_smtp.rbuf, 0);
        if (n > 0) {
            s->active_ms = s_now_ms ();
            s_feed (s, s_smtp.rbuf, (size_t)n);
        } else if (n == 0)
            s_session_close (s);
        else if (errno == EINTR)
            continue;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        else
            s_session_close (s);
    }
}

static void
s_accept (void)
{
    for (;;) {
        int fd = accept4 (s_smtp.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /*  Out of descriptors: stop accepting for a moment instead of spinning.  */
                static int64_t logged_ms;
                int64_t now = s_now_ms ();
                if (now - logged_ms >= 10000) {
                    s_log ("smtp: accept: %s (%zu sessions); pausing accepts", strerror (errno),
                           s_smtp.sessions);
                    logged_ms = now;
                }
                epoll_ctl (s_smtp.epfd, EPOLL_CTL_DEL, s_smtp.listen_fd, NULL);
                s_smtp.accept_paused_until = now + 100;
            }
            return;
        }
        int one = 1;
        setsockopt (fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s_session_t *s = calloc (1, sizeof *s);
        if (!s) {
            close (fd);
            continue;
        }
        s->fd = fd;
        s->active_ms = s_now_ms ();
        struct epoll_event ev
            = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s };
        if (epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close (fd);
            free (s);
            continue;
        }
        s->next = s_smtp.all;
        if (s_smtp.all)
            s_smtp.all->prev = s;
        s_smtp.all = s;
        s_smtp.sessions++;
        s_sendf (s, "220 mockprovider ESMTP ready\r\n");
    }
}

/*  Sends the delayed replies that are due and lets those sessions go on.  */
static void
s_fire_timers (int64_t now)
{
    s_session_t *s;
    while ((s = s_smtp.wait_head) && (s->due_ms <= now || s_smtp.stop)) {
        s_smtp.wait_head = s->wnext;
        if (s->wnext)
            s->wnext->wprev = NULL;
        else
            s_smtp.wait_tail = NULL;
        s->wnext = s->wprev = NULL;
        s->waiting = false;
        s_send (s, s->reply, s->reply_len);
        s->active_ms = now;
        s_pump (s);
    }
}

static void
s_idle_scan (int64_t now)
{
    s_session_t *s = s_smtp.all;
    while (s) {
        s_session_t *next = s->next;
        if (!s->waiting && now - s->active_ms > S_SMTP_IDLE_MS) {
            s_sendf (s, "421 4.4.2 Idle for too long, closing\r\n");
            s_session_close (s);
        }
        s = next;
    }
}

static void *
s_smtp_run (void *arg)
{
    (void)arg;
    struct epoll_event events[512];
    s_smtp.next_idle_scan = s_now_ms () + 1000;
    while (!s_smtp.stop) {
        int64_t now = s_now_ms ();
        int64_t wake = s_smtp.next_idle_scan;
        if (s_smtp.wait_head && s_smtp.wait_head->due_ms < wake)
            wake = s_smtp.wait_head->due_ms;
        if (s_smtp.accept_paused_until && s_smtp.accept_paused_until < wake)
            wake = s_smtp.accept_paused_until;
        int timeout = wake > now ? (int)(wake - now) : 0;
        int n = epoll_wait (s_smtp.epfd, events, 512, timeout);
        if (n < 0 && errno != EINTR) {
            s_log ("smtp: epoll_wait: %s", strerror (errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *tag = events[i].data.ptr;
            if (tag == &s_tag_listen)
                s_accept ();
            else if (tag == &s_tag_wake)
                s_smtp.stop = true;
            else {
                s_session_t *s = tag;
                if (s->fd < 0)
                    continue; /* closed earlier in this batch */
                if (events[i].events & EPOLLOUT)
                    s_flush (s);
                if (s->fd >= 0 && (events[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                    s_pump (s);
                if (s->fd >= 0 && (events[i].events & (EPOLLHUP | EPOLLERR)))
                    s_session_close (s);
            }
        }
        now = s_now_ms ();
        s_fire_timers (now);
        if (s_smtp.accept_paused_until && now >= s_smtp.accept_paused_until) {
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s_tag_listen };
            epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, s_smtp.listen_fd, &ev);
            s_smtp.accept_paused_until = 0;
        }
        if (now >= s_smtp.next_idle_scan) {
            s_idle_scan (now);
            s_smtp.next_idle_scan = now + 1000;
        }
        s_session_free_dead ();
    }
    s_fire_timers (s_now_ms ()); /* stop is set: every delayed reply goes out now */
    while (s_smtp.all)
        s_session_close (s_smtp.all);
    s_session_free_dead ();
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/*  Startup, command line, shutdown                                                           */

/*  Fills addr for the --bind address and port. Returns 0, or -1 when it is no IP literal.  */
static int
s_sockaddr (const char *host, int port, struct sockaddr_storage *addr, socklen_t *len)
{
    memset (addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
    if (inet_pton (AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons ((uint16_t)port);
        *len = sizeof *v4;
        return 0;
    }
    if (inet_pton (AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons ((uint16_t)port);
        *len = sizeof *v6;
        return 0;
    }
    return -1;
}

/*  Opens the SMTP listener and its epoll set. Returns the bound port, or -1 (logged).  */
static int
s_smtp_open (void)
{
    struct sockaddr_storage addr;
    socklen_t len;
    s_sockaddr (s_cfg.bind, s_cfg.smtp_port, &addr, &len);
    int fd = socket (addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        s_log ("smtp: socket: %s", strerror (errno));
        return -1;
    }
    int one = 1;
    setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind (fd, (struct sockaddr *)&addr, len) != 0 || listen (fd, 4096) != 0) {
        s_log ("smtp: cannot listen on %s port %d: %s", s_cfg.bind, s_cfg.smtp_port,
               strerror (errno));
        close (fd);
        return -1;
    }
    len = sizeof addr;
    getsockname (fd, (struct sockaddr *)&addr, &len);
    int port = ntohs (addr.ss_family == AF_INET ? ((struct sockaddr_in *)&addr)->sin_port
                                                : ((struct sockaddr_in6 *)&addr)->sin6_port);
    s_smtp.listen_fd = fd;
    s_smtp.epfd = epoll_create1 (EPOLL_CLOEXEC);
    s_smtp.wake_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s_tag_listen };
    struct epoll_event wake = { .events = EPOLLIN, .data.ptr = &s_tag_wake };
    if (s_smtp.epfd < 0 || s_smtp.wake_fd < 0
        || epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, fd, &ev) != 0
        || epoll_ctl (s_smtp.epfd, EPOLL_CTL_ADD, s_smtp.wake_fd, &wake) != 0) {
        s_log ("smtp: epoll: %s", strerror (errno));
        return -1;
    }
    return port;
}

static void
s_usage (FILE *out)
{
    fprintf (
        out,
        "usage: mockprovider --http-port P --smtp-port Q [options]\n"
        "  --http-port P, --smtp-port Q   ports to listen on; 0 picks a free one\n"
        "  --bind ADDR                    IP address to listen on (127.0.0.1)\n"
        "  --token T                      require 'Authorization: Bearer T' on HTTP\n"
        "  --smtp-user U --smtp-password P  require SMTP AUTH (PLAIN or LOGIN)\n"
        "  --CH-latency-ms N              delay replies to CH's messages by N ms\n"
        "  --CH-fail-pct X                X%% of CH's messages fail (0-100)\n"
        "                                 CH: email (1000 ms, 1%%), sms, lms, push (0, 0)\n"
        "  --email-latency-at end|data    delay the reply after the final '.' (end) or\n"
        "                                 the 354 reply to DATA (data; see README)\n"
        "  --smtp-dedup on|off            on: refuse a Message-ID accepted before (off:\n"
        "                                 deliver it again, like a real server)\n"
        "  --email-slow-pct X --email-slow-ms N  X%% of emails get the reply to the\n"
        "                                 final '.' after N ms (taken at once)\n"
        "  --fail-mode transient|permanent  failures are HTTP 503 / SMTP 451 (transient),\n"
        "                                 or HTTP 422 / SMTP 550 at RCPT (permanent)\n"
        "  --throttle-pct X               X%% of HTTP messages get 429, Retry-After: 1\n"
        "  --garbage-pct X                X%% of HTTP messages get 200 with a non-JSON body\n"
        "  --lost-reply-pct X             X%% of HTTP messages are accepted but answered 502\n"
        "  --reject-recipient ADDR        always refuse ADDR (SMTP 550, HTTP 404); repeatable\n"
        "  --seed N                       PRNG seed for failures (1)\n"
        "  --max-message-size BYTES       SMTP size limit (1048576)\n"
        "  --http-threads N               HTTP worker threads (number of CPUs)\n"
        "  --max-connections N            HTTP connection limit (from RLIMIT_NOFILE)\n"
        "  --verbose                      log every message (recipients masked)\n"
        "  --record FILE                  append every accepted message to FILE, one JSON\n"
        "                                 object a line (see README)\n"
        "  --key-reuse reject|accept      a used Idempotency-Key with a different body gets\n"
        "                                 422 (reject, the default) or 409 (accept)\n"
        "  --help                         this text\n");
}

/*  Prints "mockprovider: why" and the usage on stderr. Returns 2, the exit code.  */
static int
s_bad_usage (const char *why)
{
    fprintf (stderr, "mockprovider: %s\n", why);
    s_usage (stderr);
    return 2;
}

static bool
s_parse_u64 (const char *text, uint64_t max, uint64_t *out)
{
    if (!text || !*text || *text == '-' || *text == '+')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull (text, &end, 10);
    if (errno || *end || v > max)
        return false;
    *out = v;
    return true;
}

static bool
s_parse_pct (const char *text, double *out)
{
    if (!text || !*text)
        return false;
    char *end;
    errno = 0;
    double v = strtod (text, &end);
    if (errno || *end || !(v >= 0.0 && v <= 100.0))
        return false;
    *out = v;
    return true;
}

/*  Parses argv into s_cfg. Returns 0, 1 for --help, or 2 (usage printed) on a bad flag.  */
static int
s_parse_args (int argc, char **argv)
{
    static const char *reject[256];
    char why[200];
    s_cfg.reject = reject;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
            return 1;
        if (strcmp (arg, "--verbose") == 0) {
            s_cfg.verbose = true;
            continue;
        }
        if (strncmp (arg, "--", 2) != 0) {
            snprintf (why, sizeof why, "unexpected argument '%s'", arg);
            return s_bad_usage (why);
        }
        char name[64];
        const char *value;
        const char *eq = strchr (arg, '=');
        if (eq) {
            snprintf (name, sizeof name, "%.*s", (int)(eq - arg), arg);
            value = eq + 1;
        } else {
            snprintf (name, sizeof name, "%s", arg);
            if (i + 1 >= argc) {
                snprintf (why, sizeof why, "%s needs a value", arg);
                return s_bad_usage (why);
            }
            value = argv[++i];
        }
        uint64_t u = 0;
        bool ok = true;
        bool known = false;
        for (int ch = 0; ch < S_CHANNELS && !known; ch++) {
            char flag[64];
            snprintf (flag, sizeof flag, "--%s-latency-ms", s_channel_name[ch]);
            if (strcmp (name, flag) == 0) {
                known = true;
                ok = s_parse_u64 (value, 3600000, &u);
                s_cfg.latency_ms[ch] = (unsigned)u;
            }
            snprintf (flag, sizeof flag, "--%s-fail-pct", s_channel_name[ch]);
            if (strcmp (name, flag) == 0) {
                known = true;
                ok = s_parse_pct (value, &s_cfg.fail_pct[ch]);
            }
        }
        if (known)
            ;
        else if (strcmp (name, "--http-port") == 0 || strcmp (name, "--smtp-port") == 0) {
            ok = s_parse_u64 (value, 65535, &u);
            *(name[2] == 'h' ? &s_cfg.http_port : &s_cfg.smtp_port) = (int)u;
        } else if (strcmp (name, "--bind") == 0) {
            struct sockaddr_storage addr;
            socklen_t len;
            s_cfg.bind = value;
            ok = s_sockaddr (value, 0, &addr, &len) == 0;
        } else if (strcmp (name, "--token") == 0)
            ok = *(s_cfg.token = value) != '\0';
        else if (strcmp (name, "--smtp-user") == 0)
            ok = *(s_cfg.smtp_user = value) != '\0';
        else if (strcmp (name, "--smtp-password") == 0)
            s_cfg.smtp_password = value;
        else if (strcmp (name, "--fail-mode") == 0) {
            ok = strcmp (value, "transient") == 0 || strcmp (value, "permanent") == 0;
            s_cfg.fail_permanent = strcmp (value, "permanent") == 0;
        } else if (strcmp (name, "--record") == 0)
            ok = *(s_cfg.record_path = value) != '\0';
        else if (strcmp (name, "--key-reuse") == 0) {
            ok = strcmp (value, "reject") == 0 || strcmp (value, "accept") == 0;
            s_cfg.key_reuse_ok = strcmp (value, "accept") == 0;
        } else if (strcmp (name, "--email-latency-at") == 0) {
            ok = strcmp (value, "end") == 0 || strcmp (value, "data") == 0;
            s_cfg.latency_at_data = strcmp (value, "data") == 0;
        } else if (strcmp (name, "--smtp-dedup") == 0) {
            ok = strcmp (value, "on") == 0 || strcmp (value, "off") == 0;
            s_cfg.smtp_dedup = strcmp (value, "on") == 0;
        } else if (strcmp (name, "--email-slow-pct") == 0)
            ok = s_parse_pct (value, &s_cfg.email_slow_pct);
        else if (strcmp (name, "--email-slow-ms") == 0) {
            ok = s_parse_u64 (value, 3600000, &u);
            s_cfg.email_slow_ms = (unsigned)u;
        } else if (strcmp (name, "--throttle-pct") == 0)
            ok = s_parse_pct (value, &s_cfg.throttle_pct);
        else if (strcmp (name, "--garbage-pct") == 0)
            ok = s_parse_pct (value, &s_cfg.garbage_pct);
        else if (strcmp (name, "--lost-reply-pct") == 0)
            ok = s_parse_pct (value, &s_cfg.lost_reply_pct);
        else if (strcmp (name, "--reject-recipient") == 0) {
            ok = *value && s_cfg.reject_count < sizeof reject / sizeof reject[0];
            if (ok)
                reject[s_cfg.reject_count++] = value;
        } else if (strcmp (name, "--seed") == 0)
            ok = s_parse_u64 (value, UINT64_MAX, &s_cfg.seed);
        else if (strcmp (name, "--max-message-size") == 0) {
            ok = s_parse_u64 (value, (uint64_t)1 << 40, &u) && u > 0;
            s_cfg.max_message_size = (size_t)u;
        } else if (strcmp (name, "--http-threads") == 0) {
            ok = s_parse_u64 (value, 64, &u) && u > 0;
            s_cfg.http_threads = (unsigned)u;
        } else if (strcmp (name, "--max-connections") == 0) {
            ok = s_parse_u64 (value, 1000000, &u) && u > 0;
            s_cfg.max_connections = (unsigned)u;
        } else {
            snprintf (why, sizeof why, "unknown flag %s", name);
            return s_bad_usage (why);
        }
        if (!ok) {
            snprintf (why, sizeof why, "bad value for %s: '%s'", name, value);
            return s_bad_usage (why);
        }
    }
    if (s_cfg.http_port < 0 || s_cfg.smtp_port < 0)
        return s_bad_usage ("--http-port and --smtp-port are required");
    if (!s_cfg.smtp_user != !s_cfg.smtp_password)
        return s_bad_usage ("--smtp-user and --smtp-password go together");
    for (int ch = S_SMS; ch < S_CHANNELS; ch++)
        if (s_cfg.fail_pct[ch] + s_cfg.throttle_pct + s_cfg.garbage_pct + s_cfg.lost_reply_pct
            > 100.0) {
            snprintf (why, sizeof why,
                      "fail, throttle, garbage and lost-reply percentages of %s exceed 100",
                      s_channel_name[ch]);
            return s_bad_usage (why);
        }
    return 0;
}

/*  Raises the soft descriptor limit to the hard one. Returns the limit now in force.  */
static rlim_t
s_raise_nofile (void)
{
    struct rlimit lim;
    if (getrlimit (RLIMIT_NOFILE, &lim) != 0)
        return 1024;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &lim) != 0)
            getrlimit (RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

int
main (int argc, char **argv)
{
    int rc = s_parse_args (argc, argv);
    if (rc == 1) {
        s_usage (stdout);
        return 0;
    }
    if (rc != 0)
        return rc;

    rlim_t nofile = s_raise_nofile ();
    if (s_cfg.http_threads == 0) {
        long cpus = sysconf (_SC_NPROCESSORS_ONLN);
        s_cfg.http_threads = cpus < 1 ? 1 : cpus > 16 ? 16 : (unsigned)cpus;
    }
    if (s_cfg.max_connections == 0) {
        /*  Half the descriptors for HTTP, the rest for SMTP sessions and ourselves.  */
        rlim_t half = nofile > 256 ? (nofile - 128) / 2 : 64;
        s_cfg.max_connections = half > 1000000 ? 1000000 : (unsigned)half;
    }

    if (s_cfg.record_path) {
        s_record_file = fopen (s_cfg.record_path, "a");
        if (!s_record_file) {
            s_log ("cannot open --record file %s: %s", s_cfg.record_path, strerror (errno));
            return 1;
        }
    }
    pthread_key_create (&s_iconv_key, s_iconv_close);
    s_map_init (&s_http_keys);
    s_map_init (&s_http_bodies);
    s_map_init (&s_smtp_ids);
    for (int ch = 0; ch < S_CHANNELS; ch++)
        s_map_init (&s_recipients[ch]);

    /*  Only main takes SIGTERM/SIGINT (sigwait); every thread inherits this mask.  */
    sigset_t signals;
    sigemptyset (&signals);
    sigaddset (&signals, SIGTERM);
    sigaddset (&signals, SIGINT);
    pthread_sigmask (SIG_BLOCK, &signals, NULL);
    signal (SIGPIPE, SIG_IGN);

    pthread_condattr_t cattr;
    pthread_condattr_init (&cattr);
    pthread_condattr_setclock (&cattr, CLOCK_MONOTONIC);
    pthread_cond_init (&s_delay.wake, &cattr);
    pthread_mutex_init (&s_delay.lock, NULL);
    pthread_t delay_thread;
    if (pthread_create (&delay_thread, NULL, s_delay_run, NULL) != 0) {
        s_log ("cannot start the delay thread");
        return 1;
    }

    int smtp_port = s_smtp_open ();
    if (smtp_port < 0)
        return 1;

    struct sockaddr_storage addr;
    socklen_t addr_len;
    s_sockaddr (s_cfg.bind, s_cfg.http_port, &addr, &addr_len);
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO
                     | MHD_USE_ERROR_LOG;
    if (addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_Daemon *daemon = MHD_start_daemon (
        flags, (uint16_t)s_cfg.http_port, NULL, NULL, s_http_handle, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE, s_cfg.http_threads,
        MHD_OPTION_CONNECTION_LIMIT, s_cfg.max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)S_HTTP_CONNECTION_MEMORY, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)S_HTTP_IDLE_S,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u, MHD_OPTION_NOTIFY_COMPLETED, s_http_completed, NULL,
        MHD_OPTION_END);
    if (!daemon) {
        s_log ("http: cannot listen on %s port %d", s_cfg.bind, s_cfg.http_port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon, MHD_DAEMON_INFO_BIND_PORT);
    int http_port = info ? info->port : s_cfg.http_port;

    if (pthread_create (&s_smtp.thread, NULL, s_smtp_run, NULL) != 0) {
        s_log ("cannot start the SMTP thread");
        return 1;
    }
    s_log ("listening: http=%s:%d smtp=%s:%d, %u HTTP threads, %u HTTP connections, "
           "descriptors %llu",
           s_cfg.bind, http_port, s_cfg.bind, smtp_port, s_cfg.http_threads, s_cfg.max_connections,
           (unsigned long long)nofile);
    printf ("http=%d smtp=%d\nready\n", http_port, smtp_port);
    fflush (stdout);

    int sig = 0;
    while (sigwait (&signals, &sig) != 0)
        ;
    s_log ("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");

    /*  Delayed replies go out now; libmicrohttpd must not be stopped with connections still
        suspended, and after stop is set under the lock no handler suspends one again.  */
    pthread_mutex_lock (&s_delay.lock);
    s_delay.stop = true;
    pthread_cond_signal (&s_delay.wake);
    pthread_mutex_unlock (&s_delay.lock);
    pthread_join (delay_thread, NULL);

    uint64_t one = 1;
    if (write (s_smtp.wake_fd, &one, sizeof one) != sizeof one)
        s_log ("smtp: cannot wake the SMTP thread");
    pthread_join (s_smtp.thread, NULL);
    MHD_stop_daemon (daemon);

    s_buf_t report = { 0 };
    s_report (&report);
    if (report.data)
        fputs (report.data, stdout);
    fflush (stdout);
    free (report.data);
    s_store_reset ();
    return 0;
}
