/*  settle — the settlement service (docs/design.md "settle").

    Service mode: worker actors rate chunks of whatever run is RUNNING, the
    relay publishes committed outbox rows (one active relay across every
    settle process), the replay actor answers catch-up requests, and the
    control link takes commands (run.start, run.stop, run.resume) when
    control.endpoint is set. SIGTERM/SIGINT stop it:
    workers finish the chunk in hand, nothing committed is lost.

    Headless: `settle --once --period YYYY-MM` starts (or resumes) the run of
    the period, settles it with this process's workers (other settle
    processes may help), waits until its events are sequenced by a relay,
    prints a summary and exits: 0 completed; 3 completed but subscribers
    failed rating; 1 the run did not complete (stopped, or the database
    failed); 2 bad command line or configuration.  */

#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bf_config.h"
#include "bf_curve.h"
#include "bf_date.h"
#include "bf_db.h"
#include "bf_link.h"
#include "bf_log.h"
#include "bf_relay.h"
#include "bf_replay.h"
#include "bf_run.h"
#include "bf_settle_cmd.h"
#include "bf_service.h"
#include "bf_settle_metrics.h"
#include "bf_worker.h"

#define EXIT_INCOMPLETE 1
#define EXIT_RATING     3
#define MAX_WORKERS     64

static const char *s_usage
    = "usage: settle [--config FILE] [--db CONNINFO] [--workers N]\n"
      "       settle [--config FILE] [--db CONNINFO] [--workers N] --once --period YYYY-MM\n"
      "\n"
      "  (no --once)      run as a service: workers, relay, replay, control link\n"
      "  --once           settle one period and exit (see exit codes)\n"
      "  --period P       the period for --once\n"
      "  --workers N      worker actors (default settle.workers; 0 = one per core)\n"
      "  --config FILE    config file (default $BILLFLOW_CONFIG); docs/configuration.md\n"
      "  --db CONNINFO    libpq connection string (overrides db.conninfo)\n"
      "\n"
      "exit codes (--once): 0 completed, 1 did not complete, 2 usage or configuration error,\n"
      "                     3 completed but some subscribers failed rating\n"
      "\n"
      "settle serves its event stream (PUB, replay) over CURVE only: it needs settle.key_file\n"
      "(or control.client_key_file) and settle.allowed_keys (or control.allowed_keys).\n";

typedef struct {
    bf_service_t service; /* its config and instance */
    bf_config_t *config;  /* service.config, once loaded */
    int nworkers;
    zactor_t *workers[MAX_WORKERS];
    zactor_t *relay;
    zactor_t *replay;
    zactor_t *link;
    bf_settle_cmd_t cmd; /* the control link's context, for its whole life */
    zcert_t *cert;       /* settle.key_file: PUB and replay serve CURVE with it */
    zactor_t *zap;       /* lets in settle.allowed_keys' service keys only */
} s_settle_t;

#define s_usage_error(...) bf_usage_error ("settle", s_usage, __VA_ARGS__)

static void
s_start_workers (s_settle_t *self)
{
    for (int i = 0; i < self->nworkers; i++) {
        char id[160];
        snprintf (id, sizeof id, "%s:w%d", self->service.instance, i + 1);
        bf_worker_args_t args;
        bf_worker_args_from_config (&args, self->config);
        args.worker_id = id;
        self->workers[i] = zactor_new (bf_worker_actor, &args);
    }
}

static void
s_start_relay (s_settle_t *self)
{
    bf_relay_args_t args;
    bf_relay_args_from_config (&args, self->config);
    args.relay_id = self->service.instance;
    args.cert = self->cert;
    bf_actor_status_t started;
    args.status = &started;
    self->relay = bf_service_actor (&self->service, "the relay", bf_relay_actor, &args, &started);
}

static void
s_start_replay (s_settle_t *self)
{
    bf_replay_args_t args;
    bf_replay_args_from_config (&args, self->config);
    args.cert = self->cert;
    bf_actor_status_t started;
    args.status = &started;
    self->replay = bf_service_actor (&self->service, "replay", bf_replay_actor, &args, &started);
}

/*  The control link, when control.endpoint is set. Returns false when it
    is wanted and did not start.  */
static bool
s_start_link (s_settle_t *self)
{
    /*  The link uses its context for its whole life: it lives in self.  */
    bf_link_args_t args;
    bf_link_args_from_config (&args, self->config, "settle", self->service.instance,
                              bf_settle_cmd_verbs, &self->cmd);
    if (!*args.endpoint)
        return true;
    self->cmd.chunk_size = (int)bf_config_int (self->config, "settle.chunk_size");
    self->link = bf_link_start (&args);
    return self->link != NULL;
}

/*  Stops actors in order: no new commands, workers finish their chunk, then
    the relay publishes what they committed, then replay.  */
static void
s_stop_all (s_settle_t *self)
{
    zactor_destroy (&self->link);
    for (int i = 0; i < self->nworkers; i++)
        zactor_destroy (&self->workers[i]);
    zactor_destroy (&self->relay);
    zactor_destroy (&self->replay);
}

/*  The event stream (PUB and replay) carries every bill: it is served over
    CURVE only, to the keys of settle.allowed_keys with role service. Loads
    the key pair, checks the list and starts the ZAP handler. Returns 0, or
    -1 with a reason naming the setting in err.  */
static int
s_stream_security (s_settle_t *self, char *err, size_t errsize)
{
    const char *key_file = bf_config_str (self->config, "settle.key_file");
    const char *key_setting = "settle.key_file";
    if (!*key_file) {
        key_file = bf_config_str (self->config, "control.client_key_file");
        key_setting = "control.client_key_file";
    }
    const char *allowed = bf_config_str (self->config, "settle.allowed_keys");
    const char *list_setting = "settle.allowed_keys";
    if (!*allowed) {
        allowed = bf_config_str (self->config, "control.allowed_keys");
        list_setting = "control.allowed_keys";
    }
    if (!*key_file)
        return bf_err_set (err, errsize,
                           "settle.key_file (or control.client_key_file) is required: the event"
                           " stream (PUB and replay) is served over CURVE only (docs/settle.md)");
    if (!*allowed)
        return bf_err_set (err, errsize,
                           "settle.allowed_keys (or control.allowed_keys) is required: it lists"
                           " the keys that may read the event stream (docs/settle.md)");
    char why[512];
    self->cert = bf_curve_load_secret (key_file, why, sizeof why);
    if (!self->cert)
        return bf_err_set (err, errsize, "%s: %s", key_setting, why);
    bf_keyring_t *keyring = bf_keyring_load (allowed, why, sizeof why);
    if (!keyring)
        return bf_err_set (err, errsize, "%s: %s", list_setting, why);
    bf_keyring_destroy (&keyring);
    bf_zap_args_t zargs = { .allowed_keys = allowed, .roles = "service", .services = "notify" };
    self->zap = zactor_new (bf_zap_actor, &zargs);
    //  zactor_new does not report a failed start: an actor that ended
    //  answers STATS with its end signal instead of four fields.
    bool alive = false;
    if (self->zap) {
        zsock_set_rcvtimeo (zactor_sock (self->zap), 5000);
        zstr_send (self->zap, "STATS");
        zmsg_t *msg = zmsg_recv (self->zap);
        alive = msg && zmsg_size (msg) == 4;
        zmsg_destroy (&msg);
        zsock_set_rcvtimeo (zactor_sock (self->zap), -1);
    }
    if (!alive) {
        zactor_destroy (&self->zap);
        return bf_err_set (err, errsize, "%s: the key handler did not start (see above)",
                           list_setting);
    }
    return 0;
}

/*  Reads and drops what the ZAP handler reports (refused keys are logged
    by the handler itself), so its pipe never fills.  */
static void
s_drain_zap (s_settle_t *self)
{
    if (!self->zap)
        return;
    zmsg_t *msg;
    while ((zsock_events (zactor_sock (self->zap)) & ZMQ_POLLIN)
           && (msg = zmsg_recv (self->zap)))
        zmsg_destroy (&msg);
}

static void
s_tick (void *self)
{
    s_drain_zap (self);
}

static int
s_service (s_settle_t *self)
{
    s_start_workers (self);
    s_start_relay (self);
    s_start_replay (self);
    bool linked = s_start_link (self);
    if (!self->relay || !self->replay || !linked) {
        /*  A half-started service must not look up: stop, exit 2.  */
        bf_error ("settle: start-up stopped: an actor failed to start (see above)");
        s_stop_all (self);
        return BF_SERVICE_EXIT_CONFIG;
    }
    bf_info ("settle %s: %d workers, relay, replay%s running", self->service.instance,
             self->nworkers, self->link ? ", control link" : "");
    bf_service_wait (&self->service, s_tick, self);
    s_stop_all (self);
    return 0;
}

/*  Waits until every outbox row has its sequence (some relay did it).  */
static bool
s_wait_sequenced (PGconn *conn, int timeout_ms)
{
    double deadline = (zclock_usecs () / 1e6) + timeout_ms / 1000.0;
    while (!zsys_interrupted) {
        PGresult *res = bf_db_query (conn, "SELECT EXISTS (SELECT 1 FROM outbox WHERE seq IS NULL)",
                                     0, NULL, PGRES_TUPLES_OK, "checking the outbox");
        if (!res)
            return false;
        bool pending = PQgetvalue (res, 0, 0)[0] == 't';
        PQclear (res);
        if (!pending)
            return true;
        if ((zclock_usecs () / 1e6) > deadline)
            return false;
        zclock_sleep (100);
    }
    return false;
}

static void
s_print_summary (const bf_run_info_t *info, const char *outcome)
{
    struct rusage ru;
    getrusage (RUSAGE_SELF, &ru);
    printf ("settle: period %s run %lld %s%s: %lld bills, total %lld won, %lld rating error%s,"
            " %lld subscribers in %.1f s (%.0f/s), peak RSS %ld MB\n",
            info->period, (long long)info->run_id, info->state, info->rerate ? " (re-rate)" : "",
            (long long)info->bills, (long long)info->amount_total, (long long)info->rating_errors,
            info->rating_errors == 1 ? "" : "s", (long long)info->subscribers_done, info->seconds,
            info->seconds > 0 ? (double)info->subscribers_done / info->seconds : 0,
            ru.ru_maxrss / 1024);
    if (outcome)
        printf ("settle: %s\n", outcome);
}

static int
s_once (s_settle_t *self, const char *period)
{
    PGconn *conn = bf_db_connect (bf_config_str (self->config, "db.conninfo"), "settle",
                                  (int)bf_config_int (self->config, "db.connect_timeout_ms"));
    if (!conn)
        return EXIT_INCOMPLETE;
    char err[512];
    int64_t run_id = 0;
    int outcome = -1;
    if (bf_db_begin (conn) == BF_DB_OK) {
        char command_id[64];
        snprintf (command_id, sizeof command_id, "settle-once:%s", period);
        outcome
            = bf_run_start (conn, period, (int)bf_config_int (self->config, "settle.chunk_size"),
                            NULL, &run_id, err, sizeof err);
        if (outcome < 0 || bf_db_commit (conn) != BF_DB_OK) {
            bf_db_rollback (conn);
            if (outcome >= 0)
                snprintf (err, sizeof err, "%s", bf_db_last_message ());
            outcome = -1;
        }
    } else
        snprintf (err, sizeof err, "%s", bf_db_last_message ());
    if (outcome < 0) {
        fprintf (stderr, "settle: cannot start the run of %s: %s\n", period, err);
        PQfinish (conn);
        return EXIT_INCOMPLETE;
    }
    bf_run_info_t info;
    if (outcome == BF_RUN_SETTLED) {
        /*  Nothing to rate; but a process that died after committing bills
            may have left events unsequenced: drain them before saying done.  */
        s_start_relay (self);
        bool drained = s_wait_sequenced (conn, 120000);
        s_stop_all (self);
        bf_run_info (conn, period, 0, &info);
        s_print_summary (&info, drained ? "already settled; nothing to do"
                                        : "already settled, but not every event was sequenced "
                                          "by a relay in time");
        PQfinish (conn);
        return drained ? 0 : EXIT_INCOMPLETE;
    }
    if (outcome == BF_RUN_EXISTS) {
        /*  An unfinished run: take it up again where its chunks stand.  */
        int64_t id;
        char ignore[256];
        if (bf_db_begin (conn) == BF_DB_OK) {
            if (bf_run_resume (conn, period, &id, ignore, sizeof ignore) < 0
                || bf_db_commit (conn) != BF_DB_OK)
                bf_db_rollback (conn);
        }
        bf_info ("settle: continuing run %lld of %s", (long long)run_id, period);
    }
    s_start_workers (self);
    s_start_relay (self);
    int rc = EXIT_INCOMPLETE;
    while (!zsys_interrupted) {
        zclock_sleep (200);
        s_drain_zap (self);
        if (!conn || bf_run_info (conn, NULL, run_id, &info) != 0) {
            /*  Reconnect through the process's gate (bf_db.h), not in a
                loop of our own.  */
            if (!conn || bf_db_lost (conn)) {
                PQfinish (conn);
                conn = bf_db_connect (bf_config_str (self->config, "db.conninfo"), "settle", 0);
            }
            continue;
        }
        if (!strcmp (info.state, "COMPLETED")) {
            rc = 0;
            break;
        }
        if (!strcmp (info.state, "STOPPED") || !strcmp (info.state, "FAILED"))
            break;
    }
    const char *note = NULL;
    if (rc == 0 && !s_wait_sequenced (conn, 120000)) {
        note = "bills committed, but not every event was sequenced by a relay in time";
        rc = EXIT_INCOMPLETE;
    }
    s_stop_all (self);
    if (conn && bf_run_info (conn, NULL, run_id, &info) == 0) {
        s_print_summary (&info, note);
        if (rc == 0 && info.rating_errors > 0) {
            printf ("settle: %lld subscriber%s failed rating: see rating_error; fix the data and "
                    "run the period again to re-rate them\n",
                    (long long)info.rating_errors, info.rating_errors == 1 ? "" : "s");
            rc = EXIT_RATING;
        }
    }
    PQfinish (conn);
    return rc;
}

/*  The command line: the config file, the overrides (db.conninfo,
    settle.workers), --once and its period.  */
typedef struct {
    const char *config_path;
    bf_config_override_t overrides[2];
    bool once;
    const char *period;
} s_options_t;

/*  Returns -1 to go on, else the exit status.  */
static int
s_parse_options (int argc, char **argv, s_options_t *opts)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "db", required_argument, NULL, 'd' },
        { "workers", required_argument, NULL, 'w' },
        { "once", no_argument, NULL, 'o' },
        { "period", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c;
    while ((c = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
            case 'c':
                opts->config_path = optarg;
                break;
            case 'd':
                opts->overrides[0].value = optarg;
                break;
            case 'w':
                opts->overrides[1].value = optarg;
                break;
            case 'o':
                opts->once = true;
                break;
            case 'p':
                opts->period = optarg;
                break;
            case 'h':
                fputs (s_usage, stdout);
                return 0;
            default:
                return s_usage_error ("unknown option");
        }
    }
    if (optind != argc)
        return s_usage_error ("unexpected argument '%s'", argv[optind]);
    if (opts->once != (opts->period != NULL))
        return s_usage_error ("--once and --period go together");
    bf_period_t parsed;
    if (opts->period && bf_period_parse (opts->period, &parsed) != 0)
        return s_usage_error ("'%s' is not a period (YYYY-MM)", opts->period);
    return -1;
}

int
main (int argc, char **argv)
{
    s_options_t opts = { .overrides = { { "db.conninfo", NULL, "--db" },
                                        { "settle.workers", NULL, "--workers" } } };
    int rc = s_parse_options (argc, argv, &opts);
    if (rc >= 0)
        return rc;
    s_settle_t self = { 0 };
    rc = bf_service_load (&self.service, "settle", opts.config_path, opts.overrides, 2);
    if (rc != 0)
        return rc;
    self.config = self.service.config;
    self.nworkers = bf_service_actor_count (&self.service, "settle.workers", MAX_WORKERS);
    rc = bf_service_start (&self.service);
    if (rc == 0) {
        bf_settle_metrics_init ();
        char err[512];
        if (s_stream_security (&self, err, sizeof err) != 0)
            rc = bf_service_config_error (&self.service, "%s", err);
    }
    if (rc == 0)
        rc = opts.once ? s_once (&self, opts.period) : s_service (&self);
    zactor_destroy (&self.zap);
    zcert_destroy (&self.cert);
    bf_service_end (&self.service);
    return rc;
}
