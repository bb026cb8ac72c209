/*  itest_partition — whole billing cycles while the network between the
    services and PostgreSQL, settle, control and the providers is cut and
    healed, and while PostgreSQL's disk is full (issue 16).

    tests/partition/run.sh builds the network (a namespace per node, a veth
    pair per pair of nodes that talk, addresses 10.77.0.N) and starts
    PostgreSQL in it; this program runs in the driver's namespace
    (PREFIX-ops, BF_NETNS=PREFIX) and starts the mock provider, control,
    settle and notify each in its own namespace (ip netns exec). Every
    scenario is a fresh stack and database, one fault, and at the end the
    chaos test's checks (bf_testcycle.h): the bills' checksum equals a clean
    run's, every bill notified, every notice final, one message per
    delivered notice at the mock provider (strict, as by default).

    Scenarios (arguments; each prints its time and its recovery time):
      notify-db      notify cut from PostgreSQL (link down) for
                     BF_PARTITION_CUT_S (30) seconds during dispatch
      notify-db-drop every packet between notify and PostgreSQL dropped
                     (silent) while a dispatcher waits in a statement, for
                     BF_PARTITION_DROP_S (50) s: notify notices within the
                     keepalives' bound, PostgreSQL ends its sessions, and
                     notify reconnects after the heal
      relay-db       the settle process holding the relay cut from
                     PostgreSQL: the other relay takes over; the published
                     ranges of both cover 1..last_seq once, without a gap
      control-db     the active control cut from PostgreSQL: it steps down
                     before the standby becomes active (their logs), the
                     standby answers commands, the cut one stays standby
      notify-settle  notify cut from both settle processes (PUB and replay)
                     for 10 s while settle publishes
      provider-loss  30 % loss and 200 ms delay on notify's link towards
                     the providers for BF_PARTITION_LOSS_S (20) seconds;
                     without the netem qdisc the delay is bf_delayproxy's
      chaos          the chaos test's kills with one random partition among
                     them (itest_chaos runs without namespaces, under ASan)
      full-disk      PostgreSQL's data directory (WAL included) on a small
                     tmpfs (BF_DISK_DIR) filled by a pad file for 15 s during
                     the run, then given space again
      full-wal       the same disk full while PostgreSQL needs a new WAL
                     segment (pg_switch_wal): PostgreSQL stops; after the
                     space returns it is started again (BF_PG_DIR), as an
                     operator would, and the services carry on
      clean          no fault: the same stack's run for comparison
    Size: BF_PARTITION_SUBSCRIBERS (default 800); notify's send rate per
    channel BF_PARTITION_RATE (default 40; 0: the service's default).  */

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "bf_client.h"
#include "bf_testcycle.h"
#include "bf_testdb.h"
#include "bf_teststack.h"

#define PERIOD "2026-10"
#define SEED   20261

static const char *s_prefix;
static int s_subscribers = 800;
static char s_reference[96];
static int64_t s_started;
/*  When the scenario's run was started and when it was done.  */
static int64_t s_run_at, s_done_at;
/*  provider-loss without netem: notify reaches the mock provider through
    bf_delayproxy (tests/partition/bf_delayproxy.c), which adds the delay.  */
static bool s_via_proxy;
static bf_proc_t s_proxy;
static char s_proxy_http[16];

#define s_log(...) bf_cycle_log ("partition", s_started, __VA_ARGS__)

static int
s_sh (const char *format, ...)
{
    char *command = NULL;
    va_list args;
    va_start (args, format);
    int length = vasprintf (&command, format, args);
    va_end (args);
    assert_true (length > 0);
    int rc = system (command);
    if (rc != 0)
        s_log ("command failed (%d): %s", rc, command);
    free (command);
    return rc;
}

/*  --- the network --------------------------------------------------------- */

/*  Node addresses, as tests/partition/run.sh gives them.  */
#define S_PG   "10.77.0.1"
#define S_CTL1 "10.77.0.11"
#define S_CTL2 "10.77.0.12"
#define S_SET1 "10.77.0.21"
#define S_SET2 "10.77.0.22"
#define S_NTF  "10.77.0.31"
#define S_MOCK "10.77.0.41"

static const char *
s_node_address (const char *node)
{
    const char *names[] = { "pg", "ctl1", "ctl2", "set1", "set2", "ntf", "mock" };
    const char *addresses[] = { S_PG, S_CTL1, S_CTL2, S_SET1, S_SET2, S_NTF, S_MOCK };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp (names[i], node))
            return addresses[i];
    fail_msg ("no node %s", node);
    return NULL;
}

/*  Drops (add) or stops dropping what node a receives from node b.  */
static void
s_drop_from (const char *a, const char *b, bool add)
{
    assert_int_equal (s_sh ("ip netns exec %s-%s iptables -%c INPUT -i to-%s -j DROP", s_prefix, a,
                            add ? 'I' : 'D', b),
                      0);
}

/*  Both ways: what a receives from b and what b receives from a.  */
static void
s_drop_both (const char *a, const char *b, bool add)
{
    s_drop_from (a, b, add);
    s_drop_from (b, a, add);
}

/*  The link set down and not healed yet (at most one at a time).  */
static const char *s_down_a, *s_down_b;

/*  Cuts the link between nodes a and b: a's end set down (a's routes over
    it go, b sees silence), or, with blackhole, every packet dropped on
    arrival both ways (iptables in both namespaces), so that neither side
    hears anything and neither gets an error: a silent partition.  */
static void
s_cut (const char *a, const char *b, bool blackhole)
{
    s_log ("cut %s <-> %s (%s)", a, b, blackhole ? "all packets dropped" : "link down");
    if (blackhole) {
        s_drop_both (a, b, true);
        return;
    }
    s_down_a = a;
    s_down_b = b;
    assert_int_equal (s_sh ("ip -n %s-%s link set to-%s down", s_prefix, a, b), 0);
}

/*  Heals what s_cut did; a link set up again gets its route back.  */
static void
s_heal (const char *a, const char *b, bool blackhole)
{
    if (blackhole)
        s_drop_both (a, b, false);
    else {
        assert_int_equal (s_sh ("ip -n %s-%s link set to-%s up", s_prefix, a, b), 0);
        /*  Setting a link down took a's route to b's node address: put it
            back over the peer's end of the link (the other host of its
            /30).  */
        char command[256], address[64] = "";
        snprintf (command, sizeof command, "ip -n %s-%s -o -4 addr show dev to-%s", s_prefix, a, b);
        FILE *pipe = popen (command, "r");
        assert_non_null (pipe);
        int k = 0, host = 0;
        while (fscanf (pipe, "%63s", address) == 1)
            if (sscanf (address, "10.77.%d.%d/30", &k, &host) == 2)
                break;
        pclose (pipe);
        assert_true (k > 0 && (host == 1 || host == 2));
        assert_int_equal (s_sh ("ip -n %s-%s route replace %s/32 via 10.77.%d.%d dev to-%s",
                                s_prefix, a, s_node_address (b), k, 3 - host, b),
                          0);
        s_down_a = s_down_b = NULL;
    }
    s_log ("healed %s <-> %s", a, b);
}

/*  The number a shell command prints, or -1 when it prints none.  */
static double
s_command_number (const char *command)
{
    FILE *pipe = popen (command, "r");
    double value = -1;
    if (pipe) {
        if (fscanf (pipe, "%lf", &value) != 1)
            value = -1;
        pclose (pipe);
    }
    return value;
}

/*  A metric's value from a service's /metrics (the sum of its series), or
    -1 when it cannot be read.  */
static double
s_metric (const char *node, const char *name)
{
    char command[512];
    snprintf (command, sizeof command,
              "ip netns exec %s-%s curl -sf --max-time 5 http://127.0.0.1:9100/metrics"
              " | awk '$1 == \"%s\" || index($1, \"%s{\") == 1 {s += $2; n++}"
              " END {if (n) print s; else print -1}'",
              s_prefix, node, name, name);
    return s_command_number (command);
}

/*  --- the stack in the namespaces ------------------------------------------ */

/*  An integer setting of the test from the environment.  */
static int
s_env_int (const char *name, int fallback)
{
    const char *text = getenv (name);
    return text && *text ? atoi (text) : fallback;
}

static char s_shells[6][256];

static void
s_wrap (bf_stack_t *s, bf_proc_t *p, int slot, const char *node, const char *binary_var)
{
    snprintf (s_shells[slot], sizeof s_shells[slot], "exec ip netns exec %s-%s \"$%s\"", s_prefix,
              node, binary_var);
    p->shell = s_shells[slot];
    bf_proc_env (p, "BILLFLOW_DB_CONNINFO=host=" S_PG " port=%s user=postgres %s",
                 getenv ("PGPORT"), s->db);
    bf_proc_env (p, "BILLFLOW_CONTROL_ENDPOINT=%s", s->endpoints);
}

/*  Points every process of s at its namespace and the network's addresses;
    two_controls lists both controls (control-1 and control-2).  */
static void
s_stack_in_namespaces (bf_stack_t *s, bool two_controls)
{
    if (two_controls)
        bf_stack_both_controls (s);
    snprintf (s->endpoints, sizeof s->endpoints, "tcp://" S_CTL1 ":7100,tcp://" S_CTL2 ":7100");
    const char *controls[] = { "ctl1", "ctl2" }, *settles[] = { "set1", "set2" };
    const char *control_ip[] = { S_CTL1, S_CTL2 }, *settle_ip[] = { S_SET1, S_SET2 };
    for (int i = 0; i < 2; i++) {
        bf_proc_t *p = &s->control[i];
        s_wrap (s, p, i, controls[i], "BF_CONTROL");
        bf_proc_env (p, "BILLFLOW_CONTROL_BIND=tcp://%s:7100", control_ip[i]);
        bf_proc_env (p, "BILLFLOW_CONTROL_HTTP=0.0.0.0:9100");
        p = &s->settle[i];
        s_wrap (s, p, 2 + i, settles[i], "BF_SETTLE");
        bf_proc_env (p, "BILLFLOW_SETTLE_PUB_ENDPOINT=tcp://%s:7101", settle_ip[i]);
        bf_proc_env (p, "BILLFLOW_SETTLE_REPLAY_ENDPOINT=tcp://%s:7102", settle_ip[i]);
        bf_proc_env (p, "BILLFLOW_SETTLE_HTTP=0.0.0.0:9100");
        /*  The relay's published ranges ("published seq A..B") are debug.  */
        bf_proc_env (p, "BILLFLOW_LOG_LEVEL=debug");
        /*  Small chunks and relay batches: many transactions, so that a
            fault finds the run in the middle of rating and publishing.  */
        bf_proc_env (p, "BILLFLOW_SETTLE_CHUNK_SIZE=50");
        bf_proc_env (p, "BILLFLOW_SETTLE_RELAY_BATCH=25");
    }
    bf_proc_t *p = &s->notify;
    s_wrap (s, p, 4, "ntf", "BF_NOTIFY");
    bf_proc_env (p, "BILLFLOW_NOTIFY_SETTLE_PUB_ENDPOINTS=tcp://" S_SET1 ":7101,tcp://" S_SET2
                    ":7101");
    bf_proc_env (p, "BILLFLOW_NOTIFY_SETTLE_REPLAY_ENDPOINTS=tcp://" S_SET1 ":7102,tcp://" S_SET2
                    ":7102");
    bf_proc_env (p, "BILLFLOW_NOTIFY_HTTP=0.0.0.0:9100");
    /*  40 sends a second per channel: dispatch lasts about 12 s at the
        default size, so that the faults find it under way.  */
    int rate = s_env_int ("BF_PARTITION_RATE", 40);
    if (rate > 0) {
        bf_proc_env (p, "BILLFLOW_NOTIFY_EMAIL_RATE=%d", rate);
        bf_proc_env (p, "BILLFLOW_NOTIFY_SMS_RATE=%d", rate);
        bf_proc_env (p, "BILLFLOW_NOTIFY_PUSH_RATE=%d", rate);
    }
    snprintf (s->mock_host, sizeof s->mock_host, S_MOCK);
    snprintf (s->mock_wrap, sizeof s->mock_wrap, "ip netns exec %s-mock", s_prefix);
}

/*  Sends the run's start command (always the same command_id) through
    control; answered OK, and with repeated: the stored outcome.  */
static void
s_start_run (bf_client_t *client, bool repeated)
{
    Billflow__CommandReply *reply = NULL;
    char err[256];
    const char *keys[] = { "period" }, *values[] = { PERIOD };
    int rc = bf_client_request (client, "partition-start", "settle", "run.start", 1, keys, values,
                                &reply, NULL, err, sizeof err);
    if (rc != BF_CLIENT_ANSWERED)
        fail_msg ("run.start: no answer: %s", err);
    assert_int_equal (reply->status, BILLFLOW__COMMAND_REPLY__STATUS__STATUS_OK);
    assert_int_equal (reply->replayed, repeated);
    billflow__command_reply__free_unpacked (reply, NULL);
}

/*  Starts bf_delayproxy in the mock provider's namespace, in front of the
    mock's SMTP and HTTP ports, its delay off, and points notify at it.  */
static void
s_proxy_start (bf_stack_t *s)
{
    char log[600], out[600];
    snprintf (log, sizeof log, "%s/delayproxy.err", s->dir);
    snprintf (out, sizeof out, "%s/delayproxy.out", s->dir);
    bf_proc_init (&s_proxy, "/bin/sh", log);
    static char command[1024];
    snprintf (command, sizeof command,
              "exec ip netns exec %s-mock \"$BF_DELAYPROXY\" " S_MOCK " 200 %d %d > '%s'", s_prefix,
              s->smtp_port, s->http_port, out);
    s_proxy.shell = command;
    bf_proc_start (&s_proxy);
    int smtp = 0, http = 0;
    for (int i = 0; i < 200 && !http; i++) {
        char *text = bf_test_slurp (out);
        int target[2], port[2];
        if (text && strstr (text, "ready")
            && sscanf (text, "%d %d %d %d", &target[0], &port[0], &target[1], &port[1]) == 4) {
            smtp = port[0];
            http = port[1];
        }
        free (text);
        if (!http)
            usleep (50000);
    }
    assert_true (smtp > 0 && http > 0);
    bf_proc_t *p = &s->notify;
    bf_proc_env (p, "BILLFLOW_NOTIFY_SMTP_URL=smtp://" S_MOCK ":%d", smtp);
    bf_proc_env (p, "BILLFLOW_NOTIFY_SMS_URL=http://" S_MOCK ":%d", http);
    bf_proc_env (p, "BILLFLOW_NOTIFY_PUSH_URL=http://" S_MOCK ":%d", http);
    snprintf (s_proxy_http, sizeof s_proxy_http, "%d", http);
    s_log ("notify -> bf_delayproxy (smtp %d, http %d) -> the mock provider", smtp, http);
}

/*  In a sanitizer build (build-asan), that every service in the
    namespaces runs the sanitizer build too: GCC's ASan runtime is mapped
    into it. Their reports fail this program (bf_testproc.c).  */
static void
s_services_sanitized (bf_stack_t *s, bool two_controls)
{
    if (!bf_proc_sanitized ())
        return;
    bf_proc_t *procs[] = { &s->control[0], &s->settle[0], &s->settle[1], &s->notify,
                           two_controls ? &s->control[1] : NULL };
    const char *names[] = { "control-1", "settle-1", "settle-2", "notify", "control-2" };
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        if (!procs[i])
            continue;
        if (!bf_proc_maps (procs[i], "libasan"))
            fail_msg ("%s (pid %d, %s) does not run the sanitizer build: no libasan in its"
                      " /proc/PID/maps",
                      names[i], (int)procs[i]->pid,
                      procs[i]->binary ? procs[i]->binary : "unknown binary");
        s_log ("%s (pid %d) runs the sanitizer build: libasan in its /proc/PID/maps", names[i],
               (int)procs[i]->pid);
    }
}

/*  A fresh stack with the data generated, every process started, and the
    run started through control.  */
/*  SQL run before the scenario's run is started (s_scenario_t).  */
static const char *s_before_start;

static bf_client_t *
s_cycle_start (bf_stack_t *s, bool two_controls, const char *mock_flags)
{
    bf_stack_init (s);
    s_stack_in_namespaces (s, two_controls);
    bf_cycle_generate (s, s_subscribers, PERIOD, SEED);
    bf_stack_mock_start (s, mock_flags);
    if (s_via_proxy)
        s_proxy_start (s);
    bf_cycle_start_services (s, two_controls);
    s_services_sanitized (s, two_controls);
    bf_client_t *client = bf_stack_client (s, "ops-a", 2000, 30);
    assert_non_null (client);
    if (s_before_start) {
        PGconn *conn = bf_testdb_connect (s->db);
        assert_non_null (conn);
        assert_string_equal (bf_testdb_exec (conn, s_before_start), "00000");
        PQfinish (conn);
    }
    s_start_run (client, false);
    s_run_at = bf_stack_now_ms ();
    s_log ("stack up in the namespaces, run of " PERIOD " started (%d subscribers)", s_subscribers);
    return client;
}

static int64_t
s_delivered (bf_stack_t *s)
{
    return bf_cycle_scalar (s, "SELECT count (*) FROM delivery WHERE state = 'DELIVERED'");
}

/*  Every process of the stack still runs (none died of the fault).  */
static void
s_assert_running (bf_stack_t *s)
{
    bf_proc_t *procs[] = { &s->settle[0], &s->settle[1], &s->notify, &s->control[0] };
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        assert_true (procs[i]->pid > 0);
        assert_int_equal (waitpid (procs[i]->pid, NULL, WNOHANG), 0);
    }
}

/*  Lets seconds pass, checking every second that every process runs.  */
static void
s_hold (bf_stack_t *s, int seconds)
{
    for (int i = 0; i < seconds; i++) {
        sleep (1);
        s_assert_running (s);
    }
}

/*  Waits until sql's value rises above was: the work resumed. Returns the
    ms it took (asserts it did within timeout_ms).  */
static int64_t
s_resumed (bf_stack_t *s, const char *what, const char *sql, int64_t was, int64_t since,
           int timeout_ms)
{
    int64_t value = bf_stack_wait_scalar (s, sql, was + 1, timeout_ms);
    int64_t took = bf_stack_now_ms () - since;
    s_log ("%s: %s %.1f s after the fault ended", what, value > was ? "resumed" : "NOT resumed",
           took / 1000.0);
    assert_true (value > was);
    return took;
}

/*  Waits for the cycle to finish; returns the ms it took from since.  */
static int64_t
s_wait_done (bf_stack_t *s, int64_t since, int timeout_ms)
{
    /*  Full size (bench/partition.sh): 10 ms more per subscriber.  */
    int64_t until = bf_stack_now_ms () + timeout_ms + (int64_t)s_subscribers * 10;
    while (!bf_cycle_done (s, PERIOD) && bf_stack_now_ms () < until)
        usleep (200000);
    bool done = bf_cycle_done (s, PERIOD);
    s_done_at = bf_stack_now_ms ();
    int64_t took = s_done_at - since;
    s_log ("cycle %s %.1f s after the fault ended", done ? "done" : "NOT done", took / 1000.0);
    assert_true (done);
    return took;
}

static void
s_cycle_end (bf_stack_t *s, bf_client_t **client, const char *tag, int64_t began)
{
    bf_cycle_verify (s, PERIOD, s_reference, tag);
    bf_client_destroy (client);
    bf_stack_destroy (s);
    if (s_via_proxy)
        bf_proc_stop (&s_proxy, 5000);
    s_log ("scenario %s passed in %.1f s; run %.1f s from run.start to every notice final", tag,
           (bf_stack_now_ms () - began) / 1000.0, (s_done_at - s_run_at) / 1000.0);
}

/*  The time of the first line of log at or after byte from that holds
    text, in ms since the epoch (the line's UTC timestamp), or -1.  */
static int64_t
s_log_time (const bf_proc_t *p, const char *text, long from)
{
    char *all = bf_test_slurp (p->log);
    if (!all)
        return -1;
    int64_t when = -1;
    const char *hit = (long)strlen (all) > from ? strstr (all + from, text) : NULL;
    if (hit) {
        const char *line = hit;
        while (line > all && line[-1] != '\n')
            line--;
        struct tm tm = { 0 };
        int ms = 0;
        if (sscanf (line, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms)
            == 7) {
            tm.tm_year -= 1900;
            tm.tm_mon -= 1;
            when = (int64_t)timegm (&tm) * 1000 + ms;
        }
    }
    free (all);
    return when;
}

/*  --- scenarios ------------------------------------------------------------- */

/*  notify cut from PostgreSQL during dispatch, then healed.  */
static void
s_notify_db (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    int cut_s = s_env_int ("BF_PARTITION_CUT_S", 30);
    assert_true (bf_stack_wait_scalar (
                     s, "SELECT count (*) FROM delivery WHERE state = 'DELIVERED'", 20, 60000)
                 >= 20);
    int64_t before = s_delivered (s);
    /*  The fault must find notices still to send.  */
    int64_t open = bf_cycle_scalar (s, "SELECT count (*) FROM delivery WHERE state NOT IN"
                                       " ('DELIVERED', 'FAILED', 'CANCELLED', 'HELD')");
    s_log ("%lld notices delivered, %lld still open", (long long)before, (long long)open);
    assert_true (open > 0);
    s_cut ("ntf", "pg", false);
    s_hold (s, cut_s);
    int64_t during = s_delivered (s);
    s_log ("notify alive through the %d s cut; %lld notices delivered before it, %lld at its end",
           cut_s, (long long)before, (long long)during);
    s_heal ("ntf", "pg", false);
    int64_t healed = bf_stack_now_ms ();
    s_resumed (s, "dispatch", "SELECT count (*) FROM delivery WHERE state = 'DELIVERED'", during,
               healed, 60000);
    int64_t took = s_wait_done (s, healed, 120000);
    s_log ("notify-db: done %.1f s after the heal", took / 1000.0);
}

/*  How long notify may take to notice a silent link to PostgreSQL with the
    default db.keepalives_* (idle 10 s, 4 probes 5 s apart, tcp_user_timeout
    30 s: about 30 s, one probe interval more at worst), with room for a
    loaded machine; and to resume after the heal: an attempt in flight
    (connect_timeout 10 s), the reconnect backoff's ceiling
    (db.reconnect_max_ms, 5 s) and a claim cycle.  */
#define S_DROP_DETECT_MS 42000
#define S_DROP_RESUME_MS 30000

/*  Sessions PostgreSQL still holds for notify's address.  */
static int64_t
s_notify_sessions (bf_stack_t *s)
{
    return bf_cycle_scalar (s, "SELECT count (*) FROM pg_stat_activity"
                               " WHERE client_addr = '" S_NTF "'");
}

/*  Every packet between notify and PostgreSQL silently dropped (iptables,
    both ways) while a dispatcher waits in a statement, for longer than the
    keepalives take: notify notices (the statement fails as a lost
    connection, logged), PostgreSQL ends notify's sessions (rolling back
    the cut transaction), and after the heal notify reconnects and goes
    on.  */
static void
s_notify_db_drop (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    int drop_s = s_env_int ("BF_PARTITION_DROP_S", 50);
    assert_true (drop_s * 1000 > S_DROP_DETECT_MS);
    assert_true (bf_stack_wait_scalar (
                     s, "SELECT count (*) FROM delivery WHERE state = 'DELIVERED'", 20, 60000)
                 >= 20);
    assert_true (!bf_cycle_done (s, PERIOD));
    long from = bf_proc_log_size (&s->notify);
    /*  In the middle of a statement: the driver holds a lock that the
        dispatchers' next record of their attempts waits for, and lets it
        go once the link is cut, so the statement's answer is lost.  */
    PGconn *lock = bf_testdb_connect (s->db);
    assert_non_null (lock);
    assert_string_equal (bf_testdb_exec (lock, "BEGIN"), "00000");
    assert_string_equal (bf_testdb_exec (lock, "LOCK TABLE delivery_attempt IN EXCLUSIVE MODE"),
                         "00000");
    assert_true (bf_stack_wait_scalar (s,
                                       "SELECT count (*) FROM pg_stat_activity"
                                       " WHERE application_name = 'notify-dispatch'"
                                       " AND wait_event_type = 'Lock'",
                                       1, 30000)
                 >= 1);
    struct timespec wall;
    clock_gettime (CLOCK_REALTIME, &wall);
    int64_t cut_at = bf_stack_now_ms (),
            cut_wall = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    s_cut ("ntf", "pg", true);
    assert_string_equal (bf_testdb_exec (lock, "COMMIT"), "00000");
    PQfinish (lock);
    int64_t during = s_delivered (s);
    /*  notify notices: the statement in flight fails as a lost
        connection, and the loss is logged.  */
    bool noticed = bf_proc_wait_log (&s->notify, "database: connection lost", from,
                                     S_DROP_DETECT_MS - (int)(bf_stack_now_ms () - cut_at));
    int64_t lost_at = s_log_time (&s->notify, "database: connection lost", from);
    s_log ("notify %s the silent link %.1f s after the cut (bound %.0f s)",
           noticed ? "noticed" : "did NOT notice",
           (noticed ? lost_at - cut_wall : bf_stack_now_ms () - cut_at) / 1000.0,
           S_DROP_DETECT_MS / 1000.0);
    assert_true (noticed);
    assert_true (lost_at > 0);
    assert_true (
        bf_proc_wait_log (&s->notify, "recording attempts failed (SQLSTATE 08", from, 1000));
    /*  PostgreSQL ends notify's sessions as soon (tcp_keepalives_*,
        tcp_user_timeout set on each).  */
    int64_t sessions = s_notify_sessions (s);
    while (sessions > 0 && bf_stack_now_ms () - cut_at < S_DROP_DETECT_MS) {
        usleep (200000);
        sessions = s_notify_sessions (s);
    }
    s_log ("PostgreSQL holds %lld sessions of notify %.1f s after the cut", (long long)sessions,
           (bf_stack_now_ms () - cut_at) / 1000.0);
    assert_int_equal (sessions, 0);
    s_hold (s, (int)((cut_at + drop_s * 1000 - bf_stack_now_ms ()) / 1000));
    assert_int_equal (s_delivered (s), during);
    s_heal ("ntf", "pg", true);
    int64_t healed = bf_stack_now_ms ();
    s_resumed (s, "dispatch", "SELECT count (*) FROM delivery WHERE state = 'DELIVERED'", during,
               healed, S_DROP_RESUME_MS);
    assert_true (bf_proc_wait_log (&s->notify, "database back after", from, 1000));
    int64_t took = s_wait_done (s, healed, 120000);
    s_log ("notify-db-drop: noticed %.1f s after the cut; done %.1f s after the heal",
           (lost_at - cut_wall) / 1000.0, took / 1000.0);
}

/*  The relay ranges "published seq A..B" of both settle logs: none may
    overlap (an event published twice). A hole is a batch a relay
    sequenced and committed but never published (cut between its COMMIT
    and the answer): notify fetches it from replay. Returns the events in
    holes.  */
static int64_t
s_assert_ranges_once (bf_stack_t *s, int64_t last)
{
    char command[1400];
    snprintf (command, sizeof command,
              "cat '%s' '%s' | sed -n 's/.*published seq \\([0-9]*\\)\\.\\.\\([0-9]*\\).*/\\1 "
              "\\2/p'"
              " | sort -n",
              s->settle[0].log, s->settle[1].log);
    FILE *pipe = popen (command, "r");
    assert_non_null (pipe);
    long long a, b, next = 1, ranges = 0, twice = 0, holes = 0;
    while (fscanf (pipe, "%lld %lld", &a, &b) == 2) {
        ranges++;
        if (a < next) {
            s_log ("relay ranges: %lld..%lld published twice (%lld was next)", a, b, next);
            twice++;
        } else if (a > next) {
            s_log ("relay ranges: %lld..%lld sequenced, never published: replay's", next, a - 1);
            holes += a - next;
        }
        next = b + 1 > next ? b + 1 : next;
    }
    pclose (pipe);
    if (next - 1 < last)
        holes += last - (next - 1);
    s_log ("relay ranges: %lld batches up to %lld of %lld; %lld events published twice, %lld"
           " never published",
           ranges, next - 1, (long long)last, twice, holes);
    assert_int_equal (twice, 0);
    return holes;
}

static int
s_relay_holder (bf_stack_t *s)
{
    char id[64] = "";
    if (bf_testdb_text (s->conn, "SELECT coalesce (relay_id, '') FROM relay_state", id, sizeof id)
        != 0)
        return -1;
    return !strcmp (id, "settle-1") ? 0 : !strcmp (id, "settle-2") ? 1 : -1;
}

/*  The active relay's settle cut from PostgreSQL: the other relay leads
    after the cut one stood down, and no event is published twice or
    skipped.  */
static void
s_relay_db (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    assert_true (bf_stack_wait_scalar (s, "SELECT last_seq FROM relay_state", 1, 60000) >= 1);
    int holder = s_relay_holder (s);
    /*  The fault must find the run still rating (more events to come).  */
    assert_int_equal (bf_cycle_scalar (s, "SELECT count (*) FROM settlement_run"
                                          " WHERE state = 'COMPLETED'"),
                      0);
    assert_true (holder >= 0);
    const char *nodes[] = { "set1", "set2" };
    bf_proc_t *cut = &s->settle[holder], *other = &s->settle[1 - holder];
    long cut_from = bf_proc_log_size (cut), other_from = bf_proc_log_size (other);
    s_log ("relay held by settle-%d at seq %lld", holder + 1,
           (long long)bf_cycle_scalar (s, "SELECT last_seq FROM relay_state"));
    int64_t cut_at = bf_stack_now_ms ();
    s_cut (nodes[holder], "pg", true);
    assert_true (bf_proc_wait_log (other, "leader, publishing", other_from, 30000));
    int64_t took_over = bf_stack_now_ms () - cut_at;
    assert_true (bf_proc_wait_log (cut, "standing down as leader", cut_from, 30000));
    int64_t down_at = s_log_time (cut, "standing down as leader", cut_from);
    int64_t lead_at = s_log_time (other, "leader, publishing", other_from);
    s_log ("settle-%d stood down at %lld, settle-%d leads from %lld (%lld ms later); takeover"
           " %.1f s after the cut",
           holder + 1, (long long)down_at, 2 - holder, (long long)lead_at,
           (long long)(lead_at - down_at), took_over / 1000.0);
    assert_true (down_at > 0 && lead_at > 0);
    assert_true (down_at < lead_at);
    s_hold (s, 3);
    s_heal (nodes[holder], "pg", true);
    int64_t took = s_wait_done (s, bf_stack_now_ms (), 120000);
    s_log ("relay-db: takeover %.1f s after the cut; done %.1f s after the heal",
           took_over / 1000.0, took / 1000.0);
    int64_t holes
        = s_assert_ranges_once (s, bf_cycle_scalar (s, "SELECT last_seq FROM relay_state"));
    /*  What no relay published, notify fetched from replay.  */
    double repaired = s_metric ("ntf", "billflow_notify_gaps_repaired_total");
    s_log ("notify repaired %.0f events by replay", repaired);
    assert_true (repaired >= (double)holes);
    /*  notify took every event once.  */
    assert_int_equal ((int64_t)s_metric ("ntf", "billflow_notify_events_ingested_total"),
                      bf_cycle_scalar (s, "SELECT last_seq FROM relay_state"));
}

/*  The active control cut from PostgreSQL: it stops acting before the
    standby can take the lock; the new active control serves commands.  */
static void
s_control_db (bf_stack_t *s, bf_client_t *client)
{
    long from1 = bf_proc_log_size (&s->control[0]), from2 = bf_proc_log_size (&s->control[1]);
    int64_t cut_at = bf_stack_now_ms ();
    s_cut ("ctl1", "pg", true);
    assert_true (bf_proc_wait_log (&s->control[1], "active, listening", from2, 30000));
    int64_t took_over = bf_stack_now_ms () - cut_at;
    assert_true (bf_proc_wait_log (&s->control[0], "no longer active", from1, 30000));
    int64_t down_at = s_log_time (&s->control[0], "no longer active", from1);
    int64_t active_at = s_log_time (&s->control[1], "active, listening", from2);
    s_log ("control-1 stepped down at %lld, control-2 active from %lld (%lld ms later);"
           " takeover %.1f s after the cut",
           (long long)down_at, (long long)active_at, (long long)(active_at - down_at),
           took_over / 1000.0);
    assert_true (down_at > 0 && active_at > 0);
    assert_true (down_at < active_at);
    /*  The new active control answers: the start repeated is the stored
        outcome (G6), found in PostgreSQL by control-2.  */
    s_start_run (client, true);
    /*  Their metrics say the same: one leader. The gauge follows the
        role once a second (bf_control_role_poll), so it may still show
        the moment before the takeover: read until it settles, 5 s at most.  */
    double leader1 = -1, leader2 = -1;
    for (int i = 0; i < 25 && !(leader1 == 0 && leader2 == 1); i++) {
        if (i > 0)
            usleep (200 * 1000);
        leader1 = s_metric ("ctl1", "billflow_control_leader");
        leader2 = s_metric ("ctl2", "billflow_control_leader");
    }
    s_log ("billflow_control_leader during the cut: control-1 %.0f, control-2 %.0f", leader1,
           leader2);
    assert_true (leader1 == 0 && leader2 == 1);
    s_heal ("ctl1", "pg", true);
    int64_t took = s_wait_done (s, bf_stack_now_ms (), 120000);
    /*  After the heal control-1 competes again and stays standby.  */
    long after = bf_proc_log_size (&s->control[0]);
    sleep (2);
    assert_false (bf_proc_wait_log (&s->control[0], "active, listening", after, 100));
    assert_true (s_metric ("ctl1", "billflow_control_leader") == 0);
    char leader[64] = "";
    assert_int_equal (
        bf_testdb_text (s->conn, "SELECT instance_id FROM control_leader", leader, sizeof leader),
        0);
    s_log ("control-db: takeover %.1f s after the cut, done %.1f s after the heal; leader %s",
           took_over / 1000.0, took / 1000.0, leader);
    assert_string_equal (leader, "control-2");
}

/*  notify cut from both settle processes (PUB and replay) while settle
    publishes; the events come through after the heal.  */
static void
s_notify_settle (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    s_cut ("ntf", "set1", true);
    s_cut ("ntf", "set2", true);
    s_hold (s, 10);
    s_log ("during the cut: relay at seq %lld, notify ingested %.0f",
           (long long)bf_cycle_scalar (s, "SELECT last_seq FROM relay_state"),
           s_metric ("ntf", "billflow_notify_events_ingested_total"));
    int64_t created = bf_cycle_scalar (s, "SELECT count (*) FROM delivery");
    s_heal ("ntf", "set1", true);
    s_heal ("ntf", "set2", true);
    s_resumed (s, "ingest", "SELECT count (*) FROM delivery", created, bf_stack_now_ms (), 60000);
    int64_t took = s_wait_done (s, bf_stack_now_ms (), 120000);
    int64_t last = bf_cycle_scalar (s, "SELECT last_seq FROM relay_state");
    double ingested = s_metric ("ntf", "billflow_notify_events_ingested_total");
    s_log ("notify-settle: done %.1f s after the heal; %lld events, notify ingested %.0f, gaps"
           " repaired by replay %.0f",
           took / 1000.0, (long long)last, ingested,
           s_metric ("ntf", "billflow_notify_gaps_repaired_total"));
    assert_int_equal ((int64_t)ingested, last);
}

/*  The time of one HTTP request from notify's namespace to the mock
    provider through bf_delayproxy, in seconds (-1: it failed).  */
static double
s_probe_proxy (void)
{
    char command[512];
    snprintf (command, sizeof command,
              "ip netns exec %s-ntf curl -s -o /dev/null --max-time 30 -w '%%{time_total}'"
              " http://" S_MOCK ":%s/v1/report",
              s_prefix, s_proxy_http);
    return s_command_number (command);
}

/*  30 % loss and 200 ms delay on notify's link towards the providers.  */
static void
s_provider_loss (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    int loss_s = s_env_int ("BF_PARTITION_LOSS_S", 20);
    /*  netem on notify's end, towards the providers. Where the kernel has
        no netem (sch_netem), the loss is dropped by iptables where the
        packets arrive, and the delay is bf_delayproxy's: 200 ms on each
        chunk each way, which notify's connections pass through from the
        start (test_scenario); the test measures it.  */
    bool netem
        = !s_via_proxy
          && s_sh ("tc -n %s-ntf qdisc add dev to-mock root netem loss 30%% delay 200ms", s_prefix)
                 == 0;
    double clean = -1, delayed = -1;
    if (!netem) {
        assert_true (s_via_proxy);
        clean = s_probe_proxy ();
        assert_int_equal (kill (s_proxy.pid, SIGUSR1), 0);
        delayed = s_probe_proxy ();
        assert_int_equal (s_sh ("ip netns exec %s-mock iptables -I INPUT -i to-ntf -m statistic"
                                " --mode random --probability 0.3 -j DROP",
                                s_prefix),
                          0);
    }
    s_log ("notify -> providers: 30 %% loss and 200 ms delay (%s) for %d s",
           netem ? "netem" : "iptables loss, bf_delayproxy delay", loss_s);
    if (!netem) {
        s_log ("a request through bf_delayproxy: %.3f s without the delay, %.3f s with it", clean,
               delayed);
        /*  200 ms on the request and 200 ms on the answer (the proxy's
            clock is in whole ms: a ms or two less).  */
        assert_true (clean >= 0 && delayed >= 0.39);
    }
    int64_t attempts = bf_cycle_scalar (s, "SELECT count (*) FROM delivery_attempt");
    s_hold (s, loss_s);
    int64_t under = bf_cycle_scalar (s, "SELECT count (*) FROM delivery_attempt") - attempts;
    if (netem)
        assert_int_equal (s_sh ("tc -n %s-ntf qdisc del dev to-mock root", s_prefix), 0);
    else {
        assert_int_equal (s_sh ("ip netns exec %s-mock iptables -D INPUT -i to-ntf -m statistic"
                                " --mode random --probability 0.3 -j DROP",
                                s_prefix),
                          0);
        assert_int_equal (kill (s_proxy.pid, SIGUSR2), 0);
    }
    s_log ("%lld send attempts under the loss", (long long)under);
    assert_true (under > 0);
    int64_t took = s_wait_done (s, bf_stack_now_ms (), 180000);
    s_log ("provider-loss: done %.1f s after the link was clean again; unknown outcomes %lld",
           took / 1000.0,
           (long long)bf_cycle_scalar (
               s, "SELECT count (*) FROM delivery_attempt WHERE outcome = 'UNKNOWN'"));
}

/*  No fault: the same stack's run, for the time a faulty one is compared
    with (bench/partition.sh).  */
static void
s_clean (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    int64_t took = s_wait_done (s, s_run_at, 180000);
    s_log ("clean: done %.1f s after run.start", took / 1000.0);
}

/*  The chaos test with a partition among its faults: kill -9 of settle,
    notify, control or the active relay, restarted after a random pause,
    and once a random cut (notify or the relay's settle from PostgreSQL,
    notify from settle, control from PostgreSQL) held for 2-6 s. Seeded:
    BF_CHAOS_SEED (default: the clock), printed for a replay.  */
static uint64_t s_rng;

static int
s_between (int low, int high)
{
    return low + (int)(bf_cycle_random (&s_rng) % (uint64_t)(high - low + 1));
}

static void
s_random_partition (bf_stack_t *s, int n)
{
    const char *cuts[][2]
        = { { "ntf", "pg" }, { NULL, "pg" }, { "ntf", "set1" }, { "ctl1", "pg" } };
    int kind = s_between (0, 3);
    const char *a = cuts[kind][0], *b = cuts[kind][1];
    if (!a)
        a = s_relay_holder (s) == 1 ? "set2" : "set1";
    int hold = s_between (2000, 6000);
    s_log ("fault %d: partition %s <-> %s for %d ms", n, a, b, hold);
    s_cut (a, b, true);
    if (kind == 2)
        s_cut ("ntf", "set2", true);
    usleep ((useconds_t)hold * 1000);
    s_heal (a, b, true);
    if (kind == 2)
        s_heal ("ntf", "set2", true);
}

static void
s_random_kill (bf_stack_t *s, int n)
{
    bf_proc_t *victims[] = { &s->settle[0], &s->settle[1], &s->notify, &s->control[0] };
    const char *names[] = { "settle-1", "settle-2", "notify", "control-1" };
    int k = s_between (0, 4);
    if (k == 4) //  the active relay
        k = s_relay_holder (s) == 1 ? 1 : 0;
    int pause = s_between (0, 1500);
    s_log ("fault %d: kill -9 %s (pid %d); restart after %d ms", n, names[k], (int)victims[k]->pid,
           pause);
    bf_proc_kill (victims[k]);
    usleep ((useconds_t)pause * 1000);
    bf_proc_start (victims[k]);
}

static void
s_chaos (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    const char *seed_text = getenv ("BF_CHAOS_SEED");
    s_rng = seed_text ? strtoull (seed_text, NULL, 10) : (uint64_t)time (NULL);
    s_log ("chaos seed %llu (replay: BF_CHAOS_SEED=%llu)", (unsigned long long)s_rng,
           (unsigned long long)s_rng);
    int partition_at = s_between (1, 4);
    for (int n = 1; n <= 6; n++) {
        usleep ((useconds_t)s_between (300, 1500) * 1000);
        if (n == partition_at) {
            s_log ("%s", bf_cycle_done (s, PERIOD) ? "cycle already done" : "cycle under way");
            s_random_partition (s, n);
        } else
            s_random_kill (s, n);
    }
    int64_t took = s_wait_done (s, bf_stack_now_ms (), 180000);
    s_log ("chaos: done %.1f s after the last fault", took / 1000.0);
}

/*  The failed statements settle and notify counted.  */
static double
s_db_errors (void)
{
    const char *nodes[] = { "set1", "set2", "ntf" };
    double sum = 0;
    for (size_t i = 0; i < 3; i++) {
        double value = s_metric (nodes[i], "billflow_db_errors_total");
        /*  Absent until the first error: 0.  */
        if (value < 0)
            value = 0;
        sum += value;
    }
    return sum;
}

/*  PostgreSQL's disk full for a while during the run.  */
static void
s_full_disk (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    const char *disk = getenv ("BF_DISK_DIR");
    assert_non_null (disk);
    assert_true (bf_stack_wait_scalar (s, "SELECT count (*) FROM bill", 1, 60000) >= 1);
    char started[64] = "", restarted[64] = "";
    assert_int_equal (bf_testdb_text (s->conn, "SELECT pg_postmaster_start_time ()::text", started,
                                      sizeof started),
                      0);
    /*  The fault must find work left: notices to send.  */
    assert_true (!bf_cycle_done (s, PERIOD));
    double errors_before = s_db_errors ();
    /*  Fill the disk to its last block.  */
    s_sh ("dd if=/dev/zero of='%s/pad' bs=1M 2>/dev/null; sync", disk);
    struct statvfs fs;
    assert_int_equal (statvfs (disk, &fs), 0);
    s_log ("disk full: %llu bytes free", (unsigned long long)fs.f_bavail * fs.f_frsize);
    int64_t full_at = bf_stack_now_ms ();
    s_hold (s, 15);
    double errors_full = s_db_errors ();
    s_log ("database errors counted by settle and notify: %.0f before, %.0f while full",
           errors_before, errors_full);
    /*  The services report it: counted (billflow_db_errors_total) and
        logged with the SQLSTATE.  */
    assert_true (errors_full > errors_before);
    s_sh ("cd '%s' && grep -h -o 'SQLSTATE [0-9A-Z]*, [a-z]*' settle-*.log notify.log"
          " | sort | uniq -c | sed 's/^/# partition: full disk, logged: /'",
          s->dir);
    int64_t attempts = bf_cycle_scalar (s, "SELECT count (*) FROM delivery_attempt");
    assert_int_equal (s_sh ("rm -f '%s/pad'", disk), 0);
    s_resumed (s, "dispatch", "SELECT count (*) FROM delivery_attempt", attempts,
               bf_stack_now_ms (), 60000);
    s_log ("space given back after %.1f s", (bf_stack_now_ms () - full_at) / 1000.0);
    int64_t took = s_wait_done (s, bf_stack_now_ms (), 180000);
    assert_int_equal (bf_testdb_text (s->conn, "SELECT pg_postmaster_start_time ()::text",
                                      restarted, sizeof restarted),
                      0);
    s_log ("full-disk: done %.1f s after space returned; PostgreSQL %s", took / 1000.0,
           strcmp (started, restarted) ? "restarted itself (crash recovery)" : "kept running");
}

/*  The disk full when PostgreSQL needs a new WAL segment: the pad fills
    the disk, then WAL segments are switched until PostgreSQL cannot make
    the next one. Afterwards the pad goes; should PostgreSQL have stopped,
    it is started again, as an operator would.  */
static void
s_full_wal (bf_stack_t *s, bf_client_t *client)
{
    (void)client;
    const char *disk = getenv ("BF_DISK_DIR"), *pg = getenv ("BF_PG_DIR");
    assert_non_null (disk);
    assert_non_null (pg);
    assert_true (bf_stack_wait_scalar (s, "SELECT count (*) FROM bill", 1, 60000) >= 1);
    assert_true (!bf_cycle_done (s, PERIOD));
    s_sh ("dd if=/dev/zero of='%s/pad' bs=1M 2>/dev/null; sync", disk);
    /*  A switch goes through while PostgreSQL has a recycled segment to
        take (at full size it has many): switch until it needs a new one,
        at most 64 times.  */
    int switches = 0;
    for (; switches < 64; switches++) {
        PGresult *res = PQexec (s->conn, "SELECT pg_switch_wal ()");
        bool ok = PQresultStatus (res) == PGRES_TUPLES_OK;
        if (!ok)
            s_log ("pg_switch_wal after %d switches: %s", switches, PQerrorMessage (s->conn));
        PQclear (res);
        if (!ok)
            break;
        usleep (250000);
    }
    if (switches == 64)
        s_log ("pg_switch_wal: 64 switches went through");
    s_hold (s, 15);
    s_sh ("grep -h -o 'SQLSTATE [0-9A-Z]*, [a-z]*' '%s'/settle-*.log '%s'/notify.log"
          " | sort | uniq -c | sed 's/^/# partition: WAL full, logged: /'",
          s->dir, s->dir);
    s_sh ("{ grep -h -m 2 'PANIC\\|could not write' '%s/server.log'; tail -n 3 '%s/server.log'; }"
          " | sed 's/^/# partition: WAL full, PostgreSQL logged: /'",
          pg, pg);
    int64_t attempts = bf_cycle_scalar (s, "SELECT count (*) FROM delivery_attempt");
    assert_int_equal (s_sh ("rm -f '%s/pad'", disk), 0);
    int64_t back = bf_stack_now_ms ();
    PQreset (s->conn);
    if (PQstatus (s->conn) != CONNECTION_OK) {
        s_log ("PostgreSQL is down (%s): start it again", PQerrorMessage (s->conn));
        assert_int_equal (s_sh ("ip netns exec %s-pg bash \"$BF_SOURCE_ROOT/scripts/pgtmp\""
                                " restart '%s'",
                                s_prefix, pg),
                          0);
        PQreset (s->conn);
    } else
        s_log ("PostgreSQL answers without a restart");
    assert_int_equal (PQstatus (s->conn), CONNECTION_OK);
    s_resumed (s, "dispatch", "SELECT count (*) FROM delivery_attempt", attempts, back, 60000);
    int64_t took = s_wait_done (s, back, 180000);
    s_log ("full-wal: done %.1f s after space returned", took / 1000.0);
}

/*  --- the scenarios' frame ------------------------------------------------- */

typedef struct {
    const char *name;
    bool two_controls;
    void (*fault) (bf_stack_t *s, bf_client_t *client); //  the fault and its checks
    const char *before_start;                           //  SQL run before the run starts, or NULL
} s_scenario_t;

/*  relay-db must find the run still rating and publishing when it cuts
    the relay: 800 subscribers are rated in well under a second on an idle
    machine, so each chunk's bills are held a quarter of a second in this
    scenario's database (16 chunks, two settle processes: about 2 s of
    rating). The bills themselves are unchanged.  */
#define S_SLOW_CHUNKS                                                                              \
    "CREATE FUNCTION partition_slow_chunk () RETURNS trigger LANGUAGE plpgsql AS"                  \
    " $$ BEGIN PERFORM pg_sleep (0.25); RETURN NULL; END $$;"                                      \
    " CREATE TRIGGER partition_slow_chunk AFTER INSERT ON bill"                                    \
    " FOR EACH STATEMENT EXECUTE FUNCTION partition_slow_chunk ()"

static const s_scenario_t s_scenarios[] = {
    { "notify-db", false, s_notify_db },
    { "notify-db-drop", false, s_notify_db_drop },
    { "relay-db", false, s_relay_db, S_SLOW_CHUNKS },
    { "control-db", true, s_control_db },
    { "notify-settle", false, s_notify_settle },
    { "provider-loss", false, s_provider_loss },
    { "chaos", false, s_chaos },
    { "full-disk", false, s_full_disk },
    { "full-wal", false, s_full_wal },
    { "clean", false, s_clean },
};

/*  The scenario running: a failed one leaves it to the teardown.  */
static bf_stack_t s_stack;
static bf_client_t *s_client;
static bool s_running;

/*  A fresh stack, the run started, the scenario's fault, the end checks.  */
static void
test_scenario (void **state)
{
    const s_scenario_t *scenario = *state;
    int64_t began = bf_stack_now_ms ();
    s_running = true;
    /*  Without netem the delay needs the proxy in notify's path from the
        start.  */
    s_via_proxy = scenario->fault == s_provider_loss
                  && s_sh ("tc -n %s-ntf qdisc add dev to-mock root netem delay 1ms"
                           " 2>/dev/null && tc -n %s-ntf qdisc del dev to-mock root",
                           s_prefix, s_prefix)
                         != 0;
    s_before_start = scenario->before_start;
    s_client = s_cycle_start (&s_stack, scenario->two_controls, "--email-latency-ms 50");
    s_before_start = NULL;
    scenario->fault (&s_stack, s_client);
    s_running = false;
    s_cycle_end (&s_stack, &s_client, scenario->name, began);
}

/*  After a failed scenario: every process stopped, the stack removed and
    the network whole again, so that the next scenario starts clean.  */
static int
s_teardown (void **state)
{
    (void)state;
    if (!s_running)
        return 0;
    s_running = false;
    bf_client_destroy (&s_client);
    bf_stack_destroy (&s_stack);
    if (s_via_proxy)
        bf_proc_stop (&s_proxy, 5000);
    const char *nodes[] = { "pg", "ctl1", "ctl2", "set1", "set2", "ntf", "mock" };
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++)
        s_sh ("ip netns exec %s-%s iptables -F INPUT", s_prefix, nodes[i]);
    s_sh ("tc -n %s-ntf qdisc del dev to-mock root 2>/dev/null || true", s_prefix);
    if (s_down_a)
        s_heal (s_down_a, s_down_b, false);
    s_log ("after the failure: stack removed, network healed");
    return 0;
}

int
main (int argc, char **argv)
{
    zsys_init ();
    zsys_set_linger (0);
    s_started = bf_stack_now_ms ();
    s_prefix = getenv ("BF_NETNS");
    if (!s_prefix || !*s_prefix) {
        fprintf (stderr, "itest_partition: BF_NETNS is not set: run it through"
                         " tests/partition/run.sh\n");
        return 1;
    }
    s_subscribers = s_env_int ("BF_PARTITION_SUBSCRIBERS", 800);
    struct CMUnitTest tests[sizeof s_scenarios / sizeof s_scenarios[0]];
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        size_t j = 0;
        while (j < sizeof s_scenarios / sizeof s_scenarios[0]
               && strcmp (s_scenarios[j].name, argv[i]))
            j++;
        if (j == sizeof s_scenarios / sizeof s_scenarios[0]
            || n == sizeof tests / sizeof tests[0]) {
            fprintf (stderr, "itest_partition: unknown scenario '%s'\n", argv[i]);
            return 2;
        }
        tests[n++] = (struct CMUnitTest){ s_scenarios[j].name, test_scenario, NULL, s_teardown,
                                          (void *)&s_scenarios[j] };
    }
    if (n == 0) {
        fprintf (stderr, "itest_partition: name the scenarios to run\n");
        return 2;
    }
    if (bf_cycle_reference (s_subscribers, SEED, PERIOD, s_reference, sizeof s_reference) != 0) {
        fprintf (stderr, "itest_partition: no clean run to compare with\n");
        return 1;
    }
    s_log ("clean run's checksum %s (%d subscribers)", s_reference, s_subscribers);
    return _cmocka_run_group_tests ("partition", tests, n, NULL, NULL);
}
