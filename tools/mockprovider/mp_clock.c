/*  mp_clock — the monotonic clock the mock's timers run on.  */

#include "mp_clock.h"

#include <time.h>

int64_t
mp_clock_ns (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
mp_clock_ms (void)
{
    return mp_clock_ns () / 1000000;
}
