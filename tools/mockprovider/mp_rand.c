/*  mp_rand — the seeded draws that decide injected failures.  */

#include "mp_rand.h"

#include <stdatomic.h>

static uint64_t s_seed;
static _Atomic uint64_t s_draws; /* position in the sequence */

void
mp_rand_init (uint64_t seed)
{
    s_seed = seed;
    atomic_store (&s_draws, 0);
}

double
mp_rand_pct (void)
{
    uint64_t n = atomic_fetch_add_explicit (&s_draws, 1, memory_order_relaxed);
    uint64_t z = s_seed + (n + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (100.0 / 9007199254740992.0);
}

void
mp_rand_rewind (void)
{
    atomic_store (&s_draws, 0);
}
