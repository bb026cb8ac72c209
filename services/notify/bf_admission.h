/*  bf_admission — whether one provider may take one more send, by time
    alone: a token bucket (rate limit), a pause after a 429 or after a
    failure that found the provider down (the provider's back-off), and a
    circuit breaker. bf_sender keeps one per configured provider and adds the
    concurrency cap; the rules are those of bf_sender.h ("Circuit
    breaker", "Rate limit").

    The clock is the caller's: every function that depends on time takes
    now_ms (a monotonic clock in milliseconds) and none reads a clock, so
    tests drive it by hand. A clock that goes backwards adds no tokens
    (the bucket counts on from the new time), and a pause or an opening
    that would then last longer than the length it was set for is cut to
    that length from the new time; samples stamped "in the future" count
    as recent. A huge step forward refills the bucket to its burst, ends
    every pause and opening, and ages every sample out of the window.

    Logging: breaker changes are logged (open at WARN, half-open and
    closed at INFO) as "sender: NAME breaker ...". Not thread-safe: one
    admission, one thread (the sender's).  */

#ifndef BF_ADMISSION_H_INCLUDED
#define BF_ADMISSION_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

/*  The breaker's window: the last 100 outcomes no older than 60 s.  */
#define BF_ADMISSION_WINDOW    100
#define BF_ADMISSION_WINDOW_MS 60000

typedef struct {
    const char *name;    /* for log lines; static, not copied ("sms") */
    int rate_per_s;      /* tokens a second; 0 = unlimited */
    int breaker_pct;     /* 1..100: transient share that opens the breaker */
    int breaker_min;     /* 1..BF_ADMISSION_WINDOW samples before it may open */
    int breaker_open_ms; /* > 0: how long it stays open before a probe */
} bf_admission_config_t;

typedef enum { BF_BREAKER_CLOSED, BF_BREAKER_OPEN, BF_BREAKER_HALF_OPEN } bf_breaker_state_t;

/*  How a finished send counts for the breaker.  */
typedef enum {
    BF_ADMIT_HEALTHY,  /* delivered, duplicate, permanent: the provider answered */
    BF_ADMIT_FAILED,   /* transient or unknown: timeouts and garbage included */
    BF_ADMIT_THROTTLED /* 429: not counted (the pause applies) */
} bf_admit_result_t;

/*  What bf_admission_take hands out and bf_admission_record takes back:
    whether the send was the half-open breaker's probe, and the breaker's
    epoch when it started (results of sends started before the last close
    are not counted).  */
typedef struct {
    bool probe;
    uint64_t epoch;
} bf_admit_ticket_t;

/*  How often a breaker changed state since its admission was made: opened
    (a reopening after a failed probe included), turned half-open, closed.  */
typedef struct {
    uint64_t opened, half_opened, closed;
} bf_breaker_counts_t;

typedef struct _bf_admission_t bf_admission_t;

/*  Creates an admission with a full bucket (burst: a tenth of a second's
    worth of tokens, at least 1), no pause and the breaker closed. Returns
    NULL on a config outside the ranges above or out of memory.  */
bf_admission_t *bf_admission_new (const bf_admission_config_t *config, int64_t now_ms);

/*  Frees the admission and sets *self_p to NULL. Safe on NULL.  */
void bf_admission_destroy (bf_admission_t **self_p);

/*  True when a send may start at now_ms: not paused, breaker closed or
    half-open with no probe out, and a token in the bucket. Moves an open
    breaker whose time is up to half-open (logged), and refills the
    bucket.  */
bool bf_admission_ready (bf_admission_t *self, int64_t now_ms);

/*  Milliseconds until bf_admission_ready may turn true by time alone: 0
    when it is true now; -1 when only a result can change it (the
    half-open breaker's probe is out); else >= 1, the longest of the
    pause, the breaker's opening and the wait for a token.  */
int64_t bf_admission_wait_ms (bf_admission_t *self, int64_t now_ms);

/*  Takes a token for a send that starts now (call only after
    bf_admission_ready said true); a send taken while the breaker is
    half-open is its probe. Returns the ticket for bf_admission_record.  */
bf_admit_ticket_t bf_admission_take (bf_admission_t *self);

/*  Counts a finished send. A HEALTHY one ends the provider's back-off
    sequence (bf_admission_back_off). A probe that FAILED reopens the
    breaker, a THROTTLED one leaves it half-open, any other closes it with
    an empty window. Other results enter the window (THROTTLED and those from an
    older epoch excepted); a closed breaker opens when the window's
    samples of the last 60 s are at least breaker_min and FAILED ones make
    up at least breaker_pct of them.  */
void bf_admission_record (bf_admission_t *self, bf_admit_ticket_t ticket, bf_admit_result_t result,
                          int64_t now_ms);

/*  A 429 with Retry-After: no send until now_ms + retry_after_ms (a later
    pause already in force stays). Returns true when the pause was set or
    lengthened, false when retry_after_ms <= 0 or the pause in force
    already reaches further.  */
bool bf_admission_pause (bf_admission_t *self, int retry_after_ms, int64_t now_ms);

/*  A send that started at started_ms failed and found the provider down
    (bf_outage_attributed; its notice goes back to its place, so something
    must hold the provider back, breaker or not): no send until now_ms +
    bf_backoff_ms (level, base_ms, max_ms, jitter) but at most max_ms, a later pause already
    in force staying. The level is the number of such back-offs since the
    provider's last healthy result; it grows only for a send that started
    after the previous back-off was set (the sends in flight when the
    provider went down fail together and make one step; a send started in
    the same millisecond counts as in flight), and a HEALTHY
    result (bf_admission_record) resets it. Returns the pause set, in ms;
    0 when the send started before the back-off in force (nothing
    changes) or base_ms <= 0.  */
int64_t bf_admission_back_off (bf_admission_t *self, int64_t started_ms, int64_t now_ms,
                               int base_ms, int max_ms, unsigned jitter);

/*  The breaker's state at now_ms without changing it (an open breaker
    whose time is up reads half-open). Read-only: for status and
    metrics.  */
bf_breaker_state_t bf_admission_breaker (const bf_admission_t *self, int64_t now_ms);

/*  The breaker's changes so far (each one is also one log line). A move
    to half-open is counted when bf_admission_ready or
    bf_admission_wait_ms makes it, not when bf_admission_breaker reads it.
    Zeros for NULL.  */
bf_breaker_counts_t bf_admission_breaker_counts (const bf_admission_t *self);

/*  "closed" | "open" | "half-open".  */
const char *bf_admission_breaker_name (bf_breaker_state_t state);

#endif
