/*  bf_backoff — the retry delays every actor uses, as pure functions of
    the attempt and a random number the caller draws, so they are
    unit-tested without a clock (tests/unit/test_backoff.c).

    Two shapes:
      bf_backoff_ms           exponential with a ±20 % spread: a notice's
                              next send (notify.backoff_*), where the delay
                              should stay near its nominal value;
      bf_backoff_decorrelated exponential with decorrelated jitter between a
                              floor and a ceiling: reconnecting to the
                              database (db.reconnect_*), where many
                              processes that lost the same server must not
                              come back in step.  */

#ifndef BF_BACKOFF_H_INCLUDED
#define BF_BACKOFF_H_INCLUDED

#include <stdint.h>

/*  Delay before attempt n+1 after n failed ones: base * 2^(n-1), at most
    max, times a factor in [0.8, 1.2) drawn from jitter (0..65535; higher
    bits are ignored). attempts < 1 counts as 1.  */
int64_t bf_backoff_ms (int attempts, int base_ms, int max_ms, unsigned jitter);

/*  The next delay after previous_ms ("decorrelated jitter"): uniform in
    [floor_ms, 3 * previous_ms], then clamped to [floor_ms, ceiling_ms];
    previous_ms below floor_ms counts as floor_ms, so the first delay of an
    outage is drawn from [floor, 3 * floor]. random is any 64-bit number
    (the caller's generator). A ceiling below the floor acts as the floor.
    The delays grow by about 1.5 times per attempt on average, never sit
    above the ceiling, and differ between processes that started in step.  */
int64_t bf_backoff_decorrelated (int64_t previous_ms, int floor_ms, int ceiling_ms,
                                 uint64_t random);

/*  splitmix64 step: advances *state and returns a well-mixed 64-bit
    number, for the random argument above. Not for secrets.  */
uint64_t bf_backoff_random (uint64_t *state);

#endif
