/*  mockprovider — a stand-in for the delivery providers notify talks to.

    It speaks exactly the two protocols of docs/provider-api.md: the HTTP JSON API
    (POST /v1/messages, served by libmicrohttpd) for SMS, LMS and push, and SMTP (our own
    server: one thread, epoll, non-blocking sockets) for email. Each channel can be made slow
    (its replies are delayed without blocking any other connection) and flaky (a share of
    messages, drawn from a seeded PRNG, fails); HTTP can also throttle or answer garbage.

    It remembers every Idempotency-Key it accepted, so an HTTP resend is refused as a duplicate
    (409). Like a real mail server, SMTP delivers a resent Message-ID again and counts it as a
    duplicate delivery (refusing it is the --smtp-dedup option). It counts the messages each
    recipient received per channel, so a test can check G4 — at most one notice per bill and
    channel — from GET /v1/report.

    Threads: main (waits for SIGTERM/SIGINT), the libmicrohttpd pool (HTTP handlers), one delay
    thread that resumes suspended HTTP connections when their reply is due, and the SMTP
    thread. What they share is the store: sharded hash maps under mutexes and atomic counters.
    Outside input never reaches an assert; it gets an error reply and, with --verbose, a log
    line.

    This file only wires the modules together and waits; README.md maps the files.  */

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "mp_buf.h"
#include "mp_config.h"
#include "mp_delay.h"
#include "mp_euckr.h"
#include "mp_http.h"
#include "mp_log.h"
#include "mp_rand.h"
#include "mp_record.h"
#include "mp_report.h"
#include "mp_smtp.h"
#include "mp_store.h"

/*  Raises the soft descriptor limit to the hard one. Returns the limit now in force.  */
static rlim_t
s_raise_nofile (void)
{
    struct rlimit lim;
    if (getrlimit (RLIMIT_NOFILE, &lim) != 0)
        return 1024;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit (RLIMIT_NOFILE, &lim) != 0)
            getrlimit (RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

/*  Only main takes SIGTERM/SIGINT (sigwait); every thread started later inherits this mask.  */
static void
s_block_signals (sigset_t *signals)
{
    sigemptyset (signals);
    sigaddset (signals, SIGTERM);
    sigaddset (signals, SIGINT);
    pthread_sigmask (SIG_BLOCK, signals, NULL);
    signal (SIGPIPE, SIG_IGN);
}

/*  Starts the delay thread, the SMTP listener, the HTTP daemon and the SMTP thread, and
    prints the ports. Returns 0, or -1 (logged).  */
static int
s_start (const mp_config_t *cfg, rlim_t nofile)
{
    if (mp_delay_start () != 0)
        return -1;
    int smtp_port = mp_smtp_open (cfg);
    if (smtp_port < 0)
        return -1;
    int http_port = mp_http_start (cfg);
    if (http_port < 0)
        return -1;
    if (mp_smtp_start () != 0)
        return -1;
    mp_log ("listening: http=%s:%d smtp=%s:%d, %u HTTP threads, %u HTTP connections, "
            "descriptors %llu",
            cfg->bind, http_port, cfg->bind, smtp_port, cfg->http_threads, cfg->max_connections,
            (unsigned long long)nofile);
    printf ("http=%d smtp=%d\nready\n", http_port, smtp_port);
    fflush (stdout);
    return 0;
}

/*  Delayed replies go out now: libmicrohttpd must not be stopped with connections still
    suspended. Then the SMTP thread sends its delayed replies and ends, then HTTP stops.  */
static void
s_stop (void)
{
    mp_delay_stop ();
    mp_smtp_stop ();
    mp_http_stop ();
}

static void
s_print_report (void)
{
    mp_buf_t report = { 0 };
    mp_report_json (&report);
    if (report.data)
        fputs (report.data, stdout);
    fflush (stdout);
    free (report.data);
}

int
main (int argc, char **argv)
{
    mp_config_t cfg;
    int rc = mp_config_parse (&cfg, argc, argv);
    if (rc == 1) {
        mp_config_usage (stdout);
        return 0;
    }
    if (rc != 0)
        return rc;
    rlim_t nofile = s_raise_nofile ();
    mp_config_limits (&cfg, nofile);
    if (cfg.record_path && mp_record_open (cfg.record_path) != 0)
        return 1;
    mp_euckr_init ();
    mp_store_init ();
    mp_rand_init (cfg.seed);
    sigset_t signals;
    s_block_signals (&signals);
    if (s_start (&cfg, nofile) != 0)
        return 1;

    int sig = 0;
    while (sigwait (&signals, &sig) != 0)
        ;
    mp_log ("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    s_stop ();
    s_print_report ();
    mp_store_reset ();
    return 0;
}
