/*  bf_testcycle — the end checks of a whole billing cycle under faults,
    shared by the chaos test (itest_chaos) and the partition and full-disk
    tests (tests/partition): the bills against a clean run's checksum, every
    bill notified, every notice final, exactly one message per delivered
    notice at the mock provider, no contact in clear in the service logs.  */

#ifndef BF_TESTCYCLE_H_INCLUDED
#define BF_TESTCYCLE_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf_teststack.h"

/*  Prints one driver line "# TAG +S.Ss: ..." (seconds since started, a
    bf_stack_now_ms value) and flushes.  */
void bf_cycle_log (const char *tag, int64_t started, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  splitmix64 over *state: a seeded driver's only source of randomness.  */
uint64_t bf_cycle_random (uint64_t *state);

/*  Starts control 1 (and waits until it is active), control 2 too with
    two_controls, both settle processes and notify, and waits until settle
    and notify have registered (cmocka asserts).  */
void bf_cycle_start_services (bf_stack_t *s, bool two_controls);

/*  A checksum of every bill and line of period over the columns a run
    decides (count:sum of row hashes) into out.  */
void bf_cycle_checksum (PGconn *conn, const char *period, char *out, size_t outsize);

/*  The checksum of a clean run: the same generator on a second database,
    settled by `settle --once`.  */
void bf_cycle_reference (int subscribers, uint64_t seed, const char *period, char *out,
                         size_t outsize);

/*  A scalar on the stack's connection, reconnecting first when it broke.  */
int64_t bf_cycle_scalar (bf_stack_t *s, const char *sql);

/*  The run of period is complete and every notice final (or held).  */
bool bf_cycle_done (bf_stack_t *s, const char *period);

/*  The end checks (cmocka asserts), each result printed as "# TAG: ...":
    the checksum equals reference, no notice open, a failed email has its
    SMS, one run, the provider's accepted counts equal the delivered
    notices (email: second copies only within the possibly delivered
    window), no recipient twice, no contact in clear in the logs.  */
void bf_cycle_verify (bf_stack_t *s, const char *period, const char *reference, const char *tag);

#endif
