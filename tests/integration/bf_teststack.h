/*  bf_teststack — a whole local billflow stack for integration tests, on
    the real binaries (bf_testproc): a test database with the schema, CURVE
    keys and the allowed-keys list, up to two control processes, up to two
    settle processes, notify and the mock provider, each configured through
    BILLFLOW_* settings and restartable.

    Keys made by bf_stack_init: control, settle, notify (service), ops-a,
    ops-b (operator), viewer (viewer), console (console: acts on behalf of
    people, bf_behalf.h) — listed — and intruder (not listed).  */

#ifndef BF_TESTSTACK_H_INCLUDED
#define BF_TESTSTACK_H_INCLUDED

#include <libpq-fe.h>
#include <stddef.h>

#include "bf_client.h"
#include "bf_curve.h"
#include "bf_testproc.h"

typedef struct {
    char *db;  /* conninfo of the stack's database */
    char *dir; /* keys, logs, ipc endpoints */
    PGconn *conn;
    char control_key[BF_CURVE_KEY_TXT];
    char endpoints[128]; /* the control endpoints services and clients use */
    int http_port, smtp_port;
    bf_proc_t control[2];
    bf_proc_t settle[2];
    bf_proc_t notify;
    bf_proc_t mock;
    char settle_key[BF_CURVE_KEY_TXT]; /* settle's public key: its event stream's server key */
    char mock_host[32];  /* the mock provider's address (127.0.0.1) */
    char mock_wrap[128]; /* a command that runs it, e.g. "ip netns exec NS" (empty) */
} bf_stack_t;

/*  Creates the database (migrated), the directory, the keys and the list;
    prepares control 1 and 2, settle 1 and 2 and notify (not started).
    endpoints lists control 1 only; bf_stack_both_controls lists both.  */
void bf_stack_init (bf_stack_t *s);
void bf_stack_both_controls (bf_stack_t *s);

/*  Kills everything, drops the database, removes the directory.  */
void bf_stack_destroy (bf_stack_t *s);

/*  cmocka group or test fixtures around bf_stack_init and
    bf_stack_destroy, for cmocka_unit_test_prestate_setup_teardown (test,
    bf_stack_setup, bf_stack_teardown, &stack): *state is the bf_stack_t.
    The teardown runs when the test fails too, so nothing is left behind.  */
int bf_stack_setup (void **state);
int bf_stack_teardown (void **state);

/*  (Re)prepares control i with an optional fault point (BF_FAULT).  */
void bf_stack_control_init (bf_stack_t *s, int i, const char *fault);

/*  Starts the mock provider with extra flags and points notify at it.  */
void bf_stack_mock_start (bf_stack_t *s, const char *flags);

/*  The mock provider's GET /v1/report (malloc'd JSON), or NULL.  */
char *bf_stack_mock_report (bf_stack_t *s);

/*  Path of a key's secret file into out.  */
void bf_stack_key_path (const bf_stack_t *s, const char *name, char *out, size_t outsize);

/*  A client of control with the named key (NULL: no CURVE).  */
bf_client_t *bf_stack_client (const bf_stack_t *s, const char *key_name, int timeout_ms,
                              int retries);

/*  Waits until control i logs that it is active.  Returns 0 or -1.  */
int bf_stack_wait_active (const bf_stack_t *s, int i, int timeout_ms);

/*  Waits until an instance of service has heartbeated in the last 500 ms.  */
int bf_stack_wait_registered (const bf_stack_t *s, const char *service, int timeout_ms);

/*  Waits until the scalar sql is at least want; returns the last value.  */
int64_t bf_stack_wait_scalar (const bf_stack_t *s, const char *sql, int64_t want, int timeout_ms);

int64_t bf_stack_now_ms (void);

#endif
