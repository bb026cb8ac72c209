/*  bf_backoff — retry delays: exponential with a spread, and decorrelated
    jitter between a floor and a ceiling (bf_backoff.h).  */

#include "bf_backoff.h"

int64_t
bf_backoff_ms (int attempts, int base_ms, int max_ms, unsigned jitter)
{
    int64_t delay = base_ms;
    for (int i = 1; i < attempts && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    /*  Factor in [0.8, 1.2): spreads a burst of retries over time.  */
    return delay * (800 + (int64_t)(jitter % 65536) * 400 / 65536) / 1000;
}

int64_t
bf_backoff_decorrelated (int64_t previous_ms, int floor_ms, int ceiling_ms, uint64_t random)
{
    int64_t floor = floor_ms > 0 ? floor_ms : 1;
    int64_t ceiling = ceiling_ms > floor ? ceiling_ms : floor;
    int64_t previous = previous_ms < floor ? floor : previous_ms > ceiling ? ceiling : previous_ms;
    int64_t high = previous * 3;
    int64_t delay = floor + (int64_t)(random % (uint64_t)(high - floor + 1));
    return delay > ceiling ? ceiling : delay;
}

uint64_t
bf_backoff_random (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
