/*  bf_ratesampler — the active control's samples of each run's bills and
    final notices, once a second, for run.rates (bf_rates.h; db/014_rates.sql).

    bf_ratesampler_sample writes, in one INSERT, a row of run_rate_sample
    for every run that is RUNNING or STOPPING, or is its period's newest run
    while the period has notices PENDING, SENDING or RETRY, and one closing
    row, when its figures changed since its newest row, for a run that
    ended in the last hour or is its period's newest run and was sampled in
    the last ten minutes. A run's first row is preceded by its
   start: bills 0 and, for the period's first run, notices 0 (for a later run of the period, the
    period's final notices when it is first sampled; notices that ended in
    its first second are then not counted). A row more than gap_ms after
    the one before (or the run's start) is marked gap. It reads
    settlement_run and delivery_count only (one row per run, a few hundred
    counter rows per period), so settle and notify never wait on it.

    bf_ratesampler_prune deletes the samples of runs that finished more
    than days ago (control.rates_retention_days).

    Both run on conn, the active control's connection, from its thread, as
    unprepared statements (each runs once a second or less; planning them
    costs well under a millisecond). Each returns the rows it wrote or
    deleted, or -1 when the statement failed (logged by bf_db).  */

#ifndef BF_RATESAMPLER_H_INCLUDED
#define BF_RATESAMPLER_H_INCLUDED

#include <libpq-fe.h>
#include <stdint.h>

/*  How often the active control samples, and after how long without a
    sample a run's next row is a gap.  */
#define BF_RATESAMPLER_INTERVAL_MS 1000
#define BF_RATESAMPLER_GAP_MS      (3 * BF_RATESAMPLER_INTERVAL_MS)

int64_t bf_ratesampler_sample (PGconn *conn, int gap_ms);
int64_t bf_ratesampler_prune (PGconn *conn, int days);

#endif
