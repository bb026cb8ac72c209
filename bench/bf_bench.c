/*  bf_bench — the benchmark programs' clock and percentiles (bf_bench.h).  */

#include <stdlib.h>
#include <time.h>

#include "bf_bench.h"

double
bf_bench_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
s_cmp (const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

void
bf_bench_sort (double *times, int n)
{
    qsort (times, (size_t)n, sizeof *times, s_cmp);
}

double
bf_bench_p99 (const double *sorted, int n)
{
    return sorted[(int)((n - 1) * 0.99 + 0.5)];
}
