/*  bf_bucket — one token bucket (bf_bucket.h): one implementation for
    control's per-key limit and the console's per-session limit.  */

#include "bf_bucket.h"

void
bf_bucket_init (bf_bucket_t *self, int rate, int burst, int64_t now_ms)
{
    self->rate = rate > 0 ? rate : 1;
    self->burst = burst > 0 ? burst : 1;
    self->tokens = self->burst;
    self->refilled_ms = now_ms;
}

bool
bf_bucket_take (bf_bucket_t *self, int64_t now_ms)
{
    /*  A clock step backwards adds nothing; refill restarts from now.  */
    if (now_ms > self->refilled_ms)
        self->tokens += (double)(now_ms - self->refilled_ms) * self->rate / 1000.0;
    if (self->tokens > self->burst)
        self->tokens = self->burst;
    self->refilled_ms = now_ms;
    if (self->tokens < 1.0)
        return false;
    self->tokens -= 1.0;
    return true;
}

int
bf_bucket_wait_ms (const bf_bucket_t *self)
{
    double missing = 1.0 - self->tokens;
    /*  Rounded up (without libm).  */
    int ms = missing > 0 ? (int)(missing * 1000.0 / self->rate) + 1 : 0;
    return ms < 1 ? 1 : ms;
}
