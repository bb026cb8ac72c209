/*  bf_testfault — database faults for a bf_teststack stack (itest_chaos,
    itest_dbcrash); the checks a cycle under faults ends with, and its
    driver's log lines, are bf_testcycle's.

    The faults act on the throwaway cluster of scripts/pgtmp, whose
    directory is $PGHOST: SIGKILL of one backend (PostgreSQL then crashes
    every session and runs crash recovery), SIGKILL of the postmaster and
    every backend (pgtmp kill) and a start (pgtmp restart).  */

#ifndef BF_TESTFAULT_H_INCLUDED
#define BF_TESTFAULT_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf_client.h"
#include "bf_teststack.h"

/*  Turns synchronous_commit on for every later session of the stack's
    database. scripts/pgtmp --fast turns it off for the cluster, and then
    a crash loses the last commits a service was told had succeeded (a
    delivered notice would be sent again): a crash test needs what
    production has. Returns 0 or -1.  */
int bf_fault_durable_commits (bf_stack_t *s);

/*  Waits (up to timeout_ms, polling every millisecond or so) for a backend
    of the stack's database whose application_name is app, that is
    running a statement starting with query_prefix ("": any statement;
    NULL: running or idle), and SIGKILLs it. Returns its pid, or -1 when
    none showed up.  */
int bf_fault_kill_backend (bf_stack_t *s, const char *app, const char *query_prefix,
                           int timeout_ms);

/*  SIGKILL of the postmaster and every backend (scripts/pgtmp kill), and
    the start that follows (scripts/pgtmp restart: crash recovery).
    Return 0 or -1.  */
int bf_fault_pg_kill_all (void);
int bf_fault_pg_start (void);

/*  Waits until the stack's database answers again. Returns the ms it
    took, or -1 after timeout_ms.  */
int64_t bf_fault_wait_db (bf_stack_t *s, int timeout_ms);

/*  The value of a series in the /metrics of 127.0.0.1:port, e.g.
    "billflow_db_connects_total{outcome=\"failed\"}"; -1 when the endpoint
    or the series is missing.  */
int64_t bf_fault_metric (int port, const char *series);

/*  Starts the services (bf_cycle_start_services with one control; cmocka
    asserts that they came up), then the run of period through control, as
    operators start it: command command_id from the key ops-a. Returns the
    client (the caller destroys it), or NULL when the start was not
    accepted (the reason on stderr).  */
bf_client_t *bf_fault_start_cycle (bf_stack_t *s, const char *command_id, const char *period);

/*  Lines of file at or after byte offset from that contain text.  */
int bf_fault_count_lines (const char *file, long from, const char *text);

/*  The first such line into out (without its newline). false: none.  */
bool bf_fault_first_line (const char *file, long from, const char *text, char *out, size_t outsize);

#endif
