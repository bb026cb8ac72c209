/*  mp_rand — the seeded draws that decide injected failures.

    The n-th draw depends only on the seed and n (splitmix64 of both), so a run can be
    repeated; which message gets which draw depends on arrival order. Lock-free and
    thread-safe.  */

#ifndef MP_RAND_H_INCLUDED
#define MP_RAND_H_INCLUDED

#include <stdint.h>

/*  Sets the seed (--seed) and starts at the first draw. Call before any thread draws.  */
void mp_rand_init (uint64_t seed);

/*  The next draw: uniform in [0, 100).  */
double mp_rand_pct (void);

/*  Goes back to the first draw (POST /v1/reset), so a test can replay a sequence.  */
void mp_rand_rewind (void);

#endif
