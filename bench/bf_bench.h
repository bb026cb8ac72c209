/*  bf_bench — what the benchmark programs share: a clock and percentiles
    of latency samples (query_bench, console_bench).  */

#ifndef BF_BENCH_H_INCLUDED
#define BF_BENCH_H_INCLUDED

/*  Milliseconds of CLOCK_MONOTONIC.  */
double bf_bench_now_ms (void);

/*  Sorts times (n of them) ascending.  */
void bf_bench_sort (double *times, int n);

/*  The p99 of sorted times (n >= 1), by nearest rank.  */
double bf_bench_p99 (const double *sorted, int n);

#endif
