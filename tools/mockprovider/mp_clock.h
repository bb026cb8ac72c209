/*  mp_clock — the monotonic clock the mock's timers run on.

    CLOCK_MONOTONIC, the clock the delay thread's condition variable waits on: wall-clock
    steps never shorten or stretch a delayed reply. Thread-safe.  */

#ifndef MP_CLOCK_H_INCLUDED
#define MP_CLOCK_H_INCLUDED

#include <stdint.h>

/*  Nanoseconds since an arbitrary start.  */
int64_t mp_clock_ns (void);

/*  Milliseconds since the same start.  */
int64_t mp_clock_ms (void);

#endif
