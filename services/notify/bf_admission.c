/*  bf_admission — token bucket, 429 pause and circuit breaker for one
    provider, on the caller's clock (see bf_admission.h).

    The bucket holds a fractional number of tokens and is refilled lazily,
    from the time of its last refill to now, whenever readiness is asked.
    The breaker's window is a ring of the last BF_ADMISSION_WINDOW
    outcomes with their times; only those of the last
    BF_ADMISSION_WINDOW_MS count. Time arithmetic saturates, so clock
    values near the ends of int64_t neither wrap nor trap.  */

#include "bf_admission.h"

#include <stdlib.h>

#include "bf_backoff.h"
#include "bf_log.h"

typedef struct {
    int64_t at_ms;
    bool failed;
} s_sample_t;

struct _bf_admission_t {
    const char *name;
    int rate;
    int pct, min_samples, open_ms;
    double tokens, burst;
    int64_t refill_ms;
    int64_t paused_until_ms, pause_ms; /* pause_ms: the pause's length when set */
    int backoff_level;                 /* back-offs since the last healthy result */
    int64_t backoff_set_ms;            /* when the last back-off was set */
    bf_breaker_state_t state;
    int64_t open_until_ms;
    bool probe_out;
    uint64_t epoch; /* bumped on close: older sends are not counted */
    bf_breaker_counts_t counts;
    s_sample_t window[BF_ADMISSION_WINDOW];
    int window_next, window_count;
};

//  a + b for b >= 0, saturated at INT64_MAX.
static int64_t
s_add (int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

//  a - b, saturated at both ends.
static int64_t
s_sub (int64_t a, int64_t b)
{
    if (b < 0 && a > INT64_MAX + b)
        return INT64_MAX;
    if (b > 0 && a < INT64_MIN + b)
        return INT64_MIN;
    return a - b;
}

bf_admission_t *
bf_admission_new (const bf_admission_config_t *config, int64_t now_ms)
{
    if (!config || config->rate_per_s < 0 || config->breaker_pct < 1 || config->breaker_pct > 100
        || config->breaker_min < 1 || config->breaker_min > BF_ADMISSION_WINDOW
        || config->breaker_open_ms <= 0)
        return NULL;
    bf_admission_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->name = config->name ? config->name : "?";
    self->rate = config->rate_per_s;
    self->pct = config->breaker_pct;
    self->min_samples = config->breaker_min;
    self->open_ms = config->breaker_open_ms;
    self->burst = self->rate / 10 > 1 ? self->rate / 10 : 1;
    self->tokens = self->burst;
    self->refill_ms = now_ms;
    self->state = BF_BREAKER_CLOSED;
    return self;
}

void
bf_admission_destroy (bf_admission_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    free (*self_p);
    *self_p = NULL;
}

//  Refills the bucket for the time since the last refill. A clock that went
//  back adds nothing and restarts the count from now.
static void
s_refill (bf_admission_t *self, int64_t now)
{
    if (self->rate <= 0)
        return;
    if (now > self->refill_ms) {
        self->tokens += ((double)now - (double)self->refill_ms) * self->rate / 1000.0;
        if (self->tokens > self->burst)
            self->tokens = self->burst;
    }
    self->refill_ms = now;
}

//  A clock that went back would stretch a pause or an opening: cut each to
//  the length it was set for, counted from now.
static void
s_reanchor (bf_admission_t *self, int64_t now)
{
    if (s_sub (self->paused_until_ms, now) > self->pause_ms)
        self->paused_until_ms = s_add (now, self->pause_ms);
    if (self->state == BF_BREAKER_OPEN && s_sub (self->open_until_ms, now) > self->open_ms)
        self->open_until_ms = s_add (now, self->open_ms);
}

static void
s_tick (bf_admission_t *self, int64_t now)
{
    s_reanchor (self, now);
    if (self->state == BF_BREAKER_OPEN && now >= self->open_until_ms) {
        self->state = BF_BREAKER_HALF_OPEN;
        self->probe_out = false;
        self->counts.half_opened++;
        bf_info ("sender: %s breaker half-open: one probe allowed", self->name);
    }
}

bool
bf_admission_ready (bf_admission_t *self, int64_t now_ms)
{
    if (!self)
        return false;
    s_tick (self, now_ms);
    if (now_ms < self->paused_until_ms || self->state == BF_BREAKER_OPEN
        || (self->state == BF_BREAKER_HALF_OPEN && self->probe_out))
        return false;
    s_refill (self, now_ms);
    return self->rate <= 0 || self->tokens >= 1.0;
}

int64_t
bf_admission_wait_ms (bf_admission_t *self, int64_t now_ms)
{
    if (!self)
        return -1;
    if (bf_admission_ready (self, now_ms))
        return 0;
    if (self->state == BF_BREAKER_HALF_OPEN && self->probe_out)
        return -1;
    int64_t wait = 0;
    if (self->paused_until_ms > now_ms)
        wait = s_sub (self->paused_until_ms, now_ms);
    if (self->state == BF_BREAKER_OPEN && s_sub (self->open_until_ms, now_ms) > wait)
        wait = s_sub (self->open_until_ms, now_ms);
    if (self->rate > 0 && self->tokens < 1.0) {
        s_refill (self, now_ms);
        int64_t refill = (int64_t)((1.0 - self->tokens) * 1000.0 / self->rate) + 1;
        if (refill > wait)
            wait = refill;
    }
    return wait < 1 ? 1 : wait;
}

bf_admit_ticket_t
bf_admission_take (bf_admission_t *self)
{
    bf_admit_ticket_t ticket = { false, 0 };
    if (!self)
        return ticket;
    ticket.epoch = self->epoch;
    if (self->rate > 0)
        self->tokens -= 1.0;
    if (self->state == BF_BREAKER_HALF_OPEN) {
        ticket.probe = true;
        self->probe_out = true;
    }
    return ticket;
}

static void
s_open (bf_admission_t *self, int64_t now)
{
    self->state = BF_BREAKER_OPEN;
    self->open_until_ms = s_add (now, self->open_ms);
    self->counts.opened++;
}

static void
s_probe_done (bf_admission_t *self, bf_admit_result_t result, int64_t now)
{
    self->probe_out = false;
    if (result == BF_ADMIT_FAILED) {
        s_open (self, now);
        bf_warn ("sender: %s breaker reopened: probe failed; next probe in %d ms", self->name,
                 self->open_ms);
    } else if (result != BF_ADMIT_THROTTLED) {
        self->state = BF_BREAKER_CLOSED;
        self->window_count = self->window_next = 0;
        self->epoch++;
        self->counts.closed++;
        bf_info ("sender: %s breaker closed: probe succeeded", self->name);
    }
}

void
bf_admission_record (bf_admission_t *self, bf_admit_ticket_t ticket, bf_admit_result_t result,
                     int64_t now_ms)
{
    if (!self)
        return;
    if (result == BF_ADMIT_HEALTHY)
        self->backoff_level = 0;
    if (ticket.probe) {
        s_probe_done (self, result, now_ms);
        return;
    }
    if (ticket.epoch != self->epoch || result == BF_ADMIT_THROTTLED)
        return;
    self->window[self->window_next] = (s_sample_t){ now_ms, result == BF_ADMIT_FAILED };
    self->window_next = (self->window_next + 1) % BF_ADMISSION_WINDOW;
    if (self->window_count < BF_ADMISSION_WINDOW)
        self->window_count++;
    if (self->state != BF_BREAKER_CLOSED)
        return;
    int samples = 0, failed = 0;
    for (int i = 0; i < self->window_count; i++) {
        /*  Samples stamped after now (a clock that went back) count as recent.  */
        if (s_sub (now_ms, self->window[i].at_ms) <= BF_ADMISSION_WINDOW_MS) {
            samples++;
            failed += self->window[i].failed;
        }
    }
    if (samples >= self->min_samples && failed * 100 >= self->pct * samples) {
        s_open (self, now_ms);
        bf_warn ("sender: %s breaker opened: %d of the last %d outcomes transient; "
                 "probing again in %d ms",
                 self->name, failed, samples, self->open_ms);
    }
}

bool
bf_admission_pause (bf_admission_t *self, int retry_after_ms, int64_t now_ms)
{
    if (!self || retry_after_ms <= 0)
        return false;
    s_reanchor (self, now_ms);
    int64_t until = s_add (now_ms, retry_after_ms);
    if (until <= self->paused_until_ms)
        return false;
    self->paused_until_ms = until;
    self->pause_ms = retry_after_ms;
    return true;
}

int64_t
bf_admission_back_off (bf_admission_t *self, int64_t started_ms, int64_t now_ms, int base_ms,
                       int max_ms, unsigned jitter)
{
    if (!self || base_ms <= 0)
        return 0;
    if (self->backoff_level > 0 && started_ms <= self->backoff_set_ms)
        return 0;
    if (self->backoff_level < 30)
        self->backoff_level++;
    int64_t wait = bf_backoff_ms (self->backoff_level, base_ms, max_ms, jitter);
    if (wait > max_ms)
        wait = max_ms; /* the jitter's 1.2 included: never longer than max */
    self->backoff_set_ms = now_ms;
    bf_admission_pause (self, wait > INT32_MAX ? INT32_MAX : (int)wait, now_ms);
    return wait;
}

bf_breaker_state_t
bf_admission_breaker (const bf_admission_t *self, int64_t now_ms)
{
    if (!self)
        return BF_BREAKER_CLOSED;
    if (self->state == BF_BREAKER_OPEN)
        return now_ms >= self->open_until_ms ? BF_BREAKER_HALF_OPEN : BF_BREAKER_OPEN;
    return self->state;
}

bf_breaker_counts_t
bf_admission_breaker_counts (const bf_admission_t *self)
{
    bf_breaker_counts_t none = { 0, 0, 0 };
    return self ? self->counts : none;
}

const char *
bf_admission_breaker_name (bf_breaker_state_t state)
{
    return state == BF_BREAKER_OPEN        ? "open"
           : state == BF_BREAKER_HALF_OPEN ? "half-open"
                                           : "closed";
}
