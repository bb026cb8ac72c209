/*  bf_testdb — support for the integration suite: a fresh database per test
    inside the throwaway cluster that scripts/pgtmp started (the PG*
    environment points at it), and a runner for the real billdata binary.  */

#ifndef BF_TESTDB_H_INCLUDED
#define BF_TESTDB_H_INCLUDED

#include <czmq.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  A fixed PII key for tests (never used outside them).  */
#define BF_TEST_PII_KEY "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

/*  Creates database bftest_<pid>_<n>; with migrate, applies the schema.
    Returns its conninfo (free with bf_testdb_drop), or NULL.  */
char *bf_testdb_create (bool migrate);
void bf_testdb_drop (char **conninfo_p);
PGconn *bf_testdb_connect (const char *conninfo);

/*  First column of the first row of sql as an integer (-1 on error).  */
int64_t bf_testdb_scalar (PGconn *conn, const char *sql);
/*  Polls sql (every 50 ms) until its value reaches want or timeout_ms
    passes; returns the last value.  */
int64_t bf_testdb_wait_scalar (PGconn *conn, const char *sql, int64_t want, int timeout_ms);
/*  Same as text into out; returns 0 or -1.  */
int bf_testdb_text (PGconn *conn, const char *sql, char *out, size_t outsize);
/*  Runs sql; returns the SQLSTATE ("00000" on success) in a static buffer.  */
const char *bf_testdb_exec (PGconn *conn, const char *sql);

/*  Runs `$BF_BILLDATA ARGS` (a shell word list) against conninfo with the test
    PII key; stdout and stderr go to *output (malloc'd, caller frees).
    Returns the exit status, or -1 when it could not run.  */
int bf_testdb_billdata (const char *conninfo, char **output, const char *args_format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  Runs `$BF_SETTLE --once --period PERIOD` against conninfo with the test
    PII key (its relay publishing on a free loopback port; output dropped).
    Returns the exit status, or -1 when it could not run.  */
int bf_testdb_settle_once (const char *conninfo, const char *period);

/*  For tests that run settle themselves: makes a settle key pair and an
    empty allowed list in dir (nobody reads the stream) and sets
    BILLFLOW_SETTLE_KEY_FILE and BILLFLOW_SETTLE_ALLOWED_KEYS in this
    process's environment, so every settle it starts serves its event
    stream over CURVE. Returns 0 or -1.  */
int bf_test_settle_keys_env (const char *dir);

/*  The event stream's keys for a test that runs settle and notify by hand:
    the first call for dir makes dir/settle.key_secret and
    dir/notify.key_secret and writes dir/stream_allowed_keys, which lets in
    the notify key (bound to notify) only; later calls find them. Writes
    settle's public key (Z85, BF_CURVE_KEY_TXT bytes) to settle_pub. settle
    takes BILLFLOW_SETTLE_KEY_FILE=dir/settle.key_secret and
    BILLFLOW_SETTLE_ALLOWED_KEYS=dir/stream_allowed_keys; notify takes
    BILLFLOW_NOTIFY_SETTLE_SERVER_KEY=settle_pub and
    BILLFLOW_NOTIFY_KEY_FILE=dir/notify.key_secret. Returns 0 or -1.  */
int bf_test_stream_keys (const char *dir, char *settle_pub);

/*  A fresh temporary directory (malloc'd path); bf_test_rmdir removes it.  */
char *bf_test_mkdtemp (void);
void bf_test_rmdir (char **path_p);

/*  A fresh ZeroMQ endpoint for a test to bind: an ipc socket in a
    directory of this program's own (made at the first call, removed at
    exit). Unlike a TCP port picked ahead, no other process can take it
    before the bind.  */
void bf_test_ipc_endpoint (char *out, size_t outsize);
/*  Whole file into a malloc'd NUL-terminated buffer, or NULL.  */
char *bf_test_slurp (const char *path);
int bf_test_write (const char *path, const char *text);

/*  --- A stand-in for control: a ROUTER that services connect to. ---

    The ROUTER lives in a background actor that answers every [SVC.HB] with
    control's own [SVC.HB] (service "control"), as control does, so a
    service's link keeps hearing control while a test is busy elsewhere.
    Everything else reaches the test through the calls below.  */

typedef struct {
    zactor_t *actor; /* owns the ROUTER */
    zframe_t *peer;  /* the service that registered (last SVC.REG seen) */
    char service[32];
    int port;
} bf_test_control_t;

/*  Binds on 127.0.0.1 (a free port into self->port). Returns 0 or -1.  */
int bf_test_control_bind (bf_test_control_t *self);

/*  The same as a CURVE server with the key pair cert (bf_curve_server):
    start a ZAP handler (bf_zap_actor) first.  */
int bf_test_control_bind_curve (bf_test_control_t *self, zcert_t *cert);

/*  Answer heartbeats (the default) or stop answering them, to play a
    control that hangs.  */
void bf_test_control_answer_heartbeats (bf_test_control_t *self, bool answer);

/*  Waits up to timeout_ms for [SVC.REG] from service; remembers its
    identity. Returns 0, or -1 (timeout or another service).  */
int bf_test_control_registered (bf_test_control_t *self, const char *service, int timeout_ms);

/*  Sends a command to the registered service — after storing it in
    `command` of conninfo first when store is set, as control does — and
    returns its reply (owned by in), or NULL after 10 s. Should the service
    register again meanwhile (its link reconnected), the command goes again
    to the new peer (the command_id makes that safe). key/value: one
    argument, or NULL.  */
struct Billflow__CommandReply;
struct Billflow__CommandReply *bf_test_control_command (bf_test_control_t *self,
                                                        const char *conninfo, void *in,
                                                        const char *id, const char *target,
                                                        const char *verb, const char *key,
                                                        const char *value, bool store);

/*  Sends raw frames to the service (for garbage tests): count strings.  */
void bf_test_control_send_raw (bf_test_control_t *self, const char *const *frames, int count);

void bf_test_control_close (bf_test_control_t *self);

#endif
