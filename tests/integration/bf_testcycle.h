/*  bf_testcycle — the end checks of a whole billing cycle under faults:
    the bills against a clean run's checksum, every bill notified, every
    notice final, exactly one message per delivered notice at the mock
    provider, no contact in clear in the service logs; and the seeded
    driver's helpers. Shared by the chaos test (itest_chaos), the database
    crash test (itest_dbcrash: its parts) and the partition and full-disk
    tests (tests/partition). The faults themselves are bf_testfault's.  */

#ifndef BF_TESTCYCLE_H_INCLUDED
#define BF_TESTCYCLE_H_INCLUDED

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf_teststack.h"

/*  Prints one driver line "# TAG +S.Ss: ..." (seconds since started, a
    bf_stack_now_ms value) and flushes.  */
void bf_cycle_log (const char *tag, int64_t started, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  splitmix64 over *state (bf_backoff_random): a seeded driver's only
    source of randomness.  */
uint64_t bf_cycle_random (uint64_t *state);

/*  Generates the month's data into the stack's database: billdata
    generate with subscribers, period and seed (cmocka asserts).  */
void bf_cycle_generate (bf_stack_t *s, int subscribers, const char *period, uint64_t seed);

/*  Starts control 1 (and waits until it is active), control 2 too with
    two_controls, both settle processes and notify, and waits until settle
    and notify have registered (cmocka asserts).  */
void bf_cycle_start_services (bf_stack_t *s, bool two_controls);

/*  A checksum of every bill and line of period over the columns a run
    decides (not ids, runs or times): the count and the sum of a 64-bit
    hash of each row, into out. Returns 0, or -1 when the query failed.  */
int bf_cycle_checksum (PGconn *conn, const char *period, char *out, size_t outsize);

/*  The checksum of a clean run: the same generator (subscribers, seed) on
    a database of its own, settled by `settle --once`. Returns 0, or -1
    (no assert: callable outside a test, e.g. in a group setup).  */
int bf_cycle_reference (int subscribers, uint64_t seed, const char *period, char *out,
                        size_t outsize);

/*  A scalar from the stack's database, reconnecting s->conn first when
    PostgreSQL went away under it, and once more when the session died
    under the query; -1 when it cannot be read now.  */
int64_t bf_cycle_scalar (bf_stack_t *s, const char *sql);

/*  The run of period is COMPLETED, every bill has its deliveries and no
    notice is left unfinished (or held); false too while the database
    cannot be read.  */
bool bf_cycle_done (bf_stack_t *s, const char *period);

/*  The mock provider's report as JSON (cmocka asserts that it came and
    parses); the caller json_decrefs it.  */
json_t *bf_cycle_mock_report (bf_stack_t *s);

/*  The notices of channel ("EMAIL", "SMS", "PUSH") that are DELIVERED;
    -1 when the database cannot be read now.  */
int64_t bf_cycle_delivered (bf_stack_t *s, const char *channel);

/*  The end checks (cmocka asserts), each result printed as "# TAG: ...":
    the checksum equals reference, no notice open, a failed email has its
    SMS, one run, the provider's accepted counts equal the delivered
    notices (email: second copies only within the possibly delivered
    window), no recipient twice, no contact in clear in the logs.  */
void bf_cycle_verify (bf_stack_t *s, const char *period, const char *reference, const char *tag);

#endif
