/*  bd_generate — deterministic synthetic data for a Korean mobile operator.

    Same (subscribers, period, seed) -> byte-identical rows, on any machine:
    integer-only pseudo-random numbers (splitmix64 / xoshiro256**) seeded per
    subscriber, so each table can be produced independently and memory stays
    flat. Distributions are documented in docs/data-generation.md.  */

#ifndef BD_GENERATE_H_INCLUDED
#define BD_GENERATE_H_INCLUDED

#include <stdint.h>

#include "bd_tables.h"
#include "bf_date.h"

typedef struct {
    int64_t subscribers; /* ids 1..subscribers */
    bf_period_t period;  /* the month the usage, charges and arrears are for */
    uint64_t seed;
} bd_gen_opts_t;

/*  Emits every table, in bd_table_t order, into sink. Returns 0, or -1 when
    the sink failed (its error is logged by the sink).  */
int bd_generate (const bd_gen_opts_t *opts, bd_sink_t *sink);

#endif
