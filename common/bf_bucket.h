/*  bf_bucket — one token bucket: rate tokens a second, at most burst at
    once. Control keeps one per CURVE key (docs/control.md "Limits"), the
    console one per session (docs/console.md "Limits"); both take the
    clock as an argument, so the rules are pure and testable.

    A clock that goes backwards (now_ms before the last refill) adds
    nothing and restarts the refill from now_ms: the bucket never gains
    tokens from a clock step. Not thread-safe: the owner locks.  */

#ifndef BF_BUCKET_H_INCLUDED
#define BF_BUCKET_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    double tokens;
    int64_t refilled_ms; /* the clock at the last refill */
    int rate, burst;     /* tokens a second (at least 1), at most burst (at least 1) */
} bf_bucket_t;

/*  A full bucket of rate/burst (each raised to at least 1) at now_ms.  */
void bf_bucket_init (bf_bucket_t *self, int rate, int burst, int64_t now_ms);

/*  Refills for the time since the last call, then takes one token: true
    when there was one (the request may go on).  */
bool bf_bucket_take (bf_bucket_t *self, int64_t now_ms);

/*  Milliseconds until a token is there again (rounded up, at least 1);
    meaningful after bf_bucket_take returned false.  */
int bf_bucket_wait_ms (const bf_bucket_t *self);

#endif
