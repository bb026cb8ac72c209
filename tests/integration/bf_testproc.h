/*  bf_testproc — the integration suite's process harness: start the real
    billflow binaries with their settings, wait until they are ready, kill
    (-9) or stop (SIGTERM) and restart them, and never leave one behind.

    A process is started with extra environment (BILLFLOW_* settings), its
    stdout and stderr appended to a log file. Every child started here is
    remembered; bf_proc_kill_all (called from test teardown) SIGKILLs and
    reaps whatever is still running, and an atexit handler does the same.  */

#ifndef BF_TESTPROC_H_INCLUDED
#define BF_TESTPROC_H_INCLUDED

#include <stdbool.h>
#include <sys/types.h>

#define BF_PROC_MAX_ENV 48

typedef struct {
    const char *binary;             /* path of the executable */
    const char *argv1;              /* one optional argument, or NULL */
    const char *shell;              /* instead: a /bin/sh command line (exec it) */
    char log[512];                  /* where its output goes */
    char env[BF_PROC_MAX_ENV][640]; /* "NAME=value" */
    int nenv;
    pid_t pid; /* 0 when not running */
} bf_proc_t;

/*  Sets up p for binary (e.g. getenv ("BF_CONTROL")) logging to log.  */
void bf_proc_init (bf_proc_t *p, const char *binary, const char *log);

/*  Adds one "NAME=value" entry (printf format).  */
void bf_proc_env (bf_proc_t *p, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

/*  Starts it (again). Returns the pid.  */
pid_t bf_proc_start (bf_proc_t *p);

/*  SIGKILL (kill -9) and reap. Returns the wait status.  */
int bf_proc_kill (bf_proc_t *p);

/*  SIGTERM, wait up to timeout_ms, then SIGKILL. Returns the exit code
    (128 + signal when killed by one).  */
int bf_proc_stop (bf_proc_t *p, int timeout_ms);

/*  Waits up to timeout_ms for p to exit by itself (for example at a fault
    point). Returns the exit code (128 + signal), or -1 on timeout.  */
int bf_proc_wait (bf_proc_t *p, int timeout_ms);

/*  Waits up to timeout_ms for text to appear in p's log at or after byte
    offset from (bf_proc_log_size before the action). Returns true when it
    did.  */
bool bf_proc_wait_log (const bf_proc_t *p, const char *text, long from, int timeout_ms);
long bf_proc_log_size (const bf_proc_t *p);

/*  Waits up to timeout_ms for a whole line of p's log, at or after byte
    offset from, that contains text and names "(port N)": how a program
    told to bind port 0 reports the port the kernel gave it (bf_http's
    "http: serving /metrics", the console's "console: serving HTTP").
    Returns N, or -1 on timeout. Start programs on port 0 and read the port
    back with this rather than picking one ahead (bf_proc_free_port): a
    port picked ahead may be taken before the program binds it.  */
int bf_proc_log_port (const bf_proc_t *p, const char *text, long from, int timeout_ms);

/*  Kills every child still running (teardown).  */
void bf_proc_kill_all (void);

/*  In a sanitizer build: prints the children's sanitizer reports not
    printed yet and returns how many report files this test program's
    children wrote so far (any fails the program at exit). 0 otherwise.  */
int bf_proc_sanitizer_reports (void);

/*  Whether this test program is a sanitizer build (its children are).  */
bool bf_proc_sanitized (void);

/*  Whether p's running process maps a file whose path holds text
    (/proc/PID/maps): "libasan" says it runs the AddressSanitizer build
    (GCC's runtime is a shared library).  */
bool bf_proc_maps (const bf_proc_t *p, const char *text);
/*  A TCP port on 127.0.0.1 that was free a moment ago: only for a port
    nothing should listen on, or one a test must keep across restarts; for
    a program's own listener see bf_proc_log_port.  */
int bf_proc_free_port (void);

#endif
