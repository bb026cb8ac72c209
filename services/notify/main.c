/*  notify — the message service (docs/design.md "notify").

    The ingest actor turns settle's events into deliveries (one per bill,
    channel and purpose); dispatcher actors send them through the providers
    and record every attempt; the control link applies dispatch.pause,
    dispatch.resume and deliveries.retry.
    SIGTERM/SIGINT stop it: dispatchers finish what is in flight (bounded)
    and record it; anything else returns through its lease.  */

#include <czmq.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_config.h"
#include "bf_curve.h"
#include "bf_date.h"
#include "bf_dispatch.h"
#include "bf_pii.h"
#include "bf_sender.h"
#include "bf_ingest.h"
#include "bf_notify_metrics.h"
#include "bf_link.h"
#include "bf_log.h"
#include "bf_notify_cmd.h"
#include "bf_observe.h"
#include "bf_quiet.h"

#define MAX_DISPATCHERS 64
#define PURPOSE         "BILL_ISSUED"

static const char *s_usage
    = "usage: notify [--config FILE] [--db CONNINFO] [--dispatchers N]\n"
      "\n"
      "  --dispatchers N  dispatcher actors (default notify.dispatchers; 0 = one per core)\n"
      "  --config FILE    config file (default $BILLFLOW_CONFIG); docs/configuration.md\n"
      "  --db CONNINFO    libpq connection string (overrides db.conninfo)\n";

#define s_usage_error(...) bf_usage_error ("notify", s_usage, __VA_ARGS__)

/*  notify.clock "YYYY-MM-DDTHH:MM" (local) into an offset from the system
    clock; "" -> 0. Returns 0 or -1.  */
static int
s_clock_offset (const char *text, int utc_offset_min, int64_t *offset_ms)
{
    *offset_ms = 0;
    if (!*text)
        return 0;
    char date[11];
    int minutes;
    if (strlen (text) != 16 || text[10] != 'T')
        return -1;
    memcpy (date, text, 10);
    date[10] = 0;
    bf_day_t day;
    if (bf_date_parse (date, &day) != 0 || bf_time_parse (text + 11, &minutes) != 0)
        return -1;
    int64_t start = ((int64_t)day * 1440 + minutes - utc_offset_min) * 60000LL;
    *offset_ms = start - zclock_time ();
    return 0;
}

/*  Loads the PII key and builds (then drops) a sender from the settings,
    as every dispatcher will: a failure is a configuration error naming the
    setting. Returns 0, or 2 after printing the reason.  */
static int
s_check_senders (const bf_dispatch_args_t *dargs)
{
    char err[512];
    bf_pii_t *pii = bf_pii_load (dargs->pii_key_file, dargs->pii_key_hex, err, sizeof err);
    if (!pii) {
        fprintf (stderr, "notify: configuration: %s: %s\n",
                 dargs->pii_key_file && *dargs->pii_key_file ? "pii.key_file" : "pii.key", err);
        return 2;
    }
    bf_pii_destroy (&pii);
    bf_sender_t *sender = bf_sender_new (&dargs->sender, err, sizeof err);
    if (!sender) {
        /*  The sender names its settings without the section ("smtp_url
            must start with ..."): they are notify's.  */
        bool named = strchr (err, '_') && strchr (err, '_') < strchr (err, ' ');
        fprintf (stderr, "notify: configuration: %s%s\n", named ? "notify." : "", err);
        return 2;
    }
    bf_sender_destroy (&sender);
    return 0;
}

/*  notify's key pair for reading settle's event stream (served over CURVE
    only), checked with settle's public key. Returns the key pair, or NULL
    with a reason naming the setting in err.  */
static zcert_t *
s_stream_cert (bf_config_t *config, char *err, size_t errsize)
{
    const char *server_key = bf_config_str (config, "notify.settle_server_key");
    const char *key_file = bf_config_str (config, "notify.key_file");
    const char *key_setting = "notify.key_file";
    if (!*key_file) {
        key_file = bf_config_str (config, "control.client_key_file");
        key_setting = "control.client_key_file";
    }
    if (!*server_key) {
        bf_err_set (err, errsize,
                    "notify.settle_server_key is required: settle serves its event stream over"
                    " CURVE only (docs/notify.md)");
        return NULL;
    }
    if (!bf_curve_key_parse (server_key, NULL)) {
        bf_err_set (err, errsize, "notify.settle_server_key is not 40 Z85 characters");
        return NULL;
    }
    if (!*key_file) {
        bf_err_set (err, errsize,
                    "notify.key_file (or control.client_key_file) is required to read settle's"
                    " event stream (docs/notify.md)");
        return NULL;
    }
    char why[512];
    zcert_t *cert = bf_curve_load_secret (key_file, why, sizeof why);
    if (!cert)
        bf_err_set (err, errsize, "%s: %s", key_setting, why);
    return cert;
}

int
main (int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "db", required_argument, NULL, 'd' },
        { "dispatchers", required_argument, NULL, 'n' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL, *db = NULL, *dispatchers = NULL;
    int c;
    while ((c = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
            case 'c':
                config_path = optarg;
                break;
            case 'd':
                db = optarg;
                break;
            case 'n':
                dispatchers = optarg;
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

    char err[512];
    const bf_config_override_t overrides[] = {
        { "db.conninfo", db, "--db" },
        { "notify.dispatchers", dispatchers, "--dispatchers" },
    };
    bf_config_t *config = bf_config_load (config_path, err, sizeof err);
    if (config && bf_config_override (config, overrides, 2, err, sizeof err) != 0)
        bf_config_destroy (&config);
    if (!config) {
        fprintf (stderr, "notify: configuration: %s\n", err);
        return 2;
    }
    bf_config_log_init (config, "notify");

    /*  Settings that need more than the table's checks.  */
    bf_quiet_window_t quiet;
    int utc_offset = (int)bf_config_int (config, "notify.utc_offset_min");
    int64_t clock_offset;
    if (bf_quiet_parse (bf_config_str (config, "notify.quiet_start"),
                        bf_config_str (config, "notify.quiet_end"), &quiet)
        != 0) {
        fprintf (stderr, "notify: configuration: notify.quiet_start and notify.quiet_end must be "
                         "HH:MM, both or neither\n");
        bf_config_destroy (&config);
        return 2;
    }
    if (s_clock_offset (bf_config_str (config, "notify.clock"), utc_offset, &clock_offset) != 0) {
        fprintf (stderr, "notify: configuration: notify.clock must be YYYY-MM-DDTHH:MM (local) "
                         "or empty\n");
        bf_config_destroy (&config);
        return 2;
    }
    /*  Credentials over plain smtp:// would cross the network in clear:
        refused at start-up (exit 2), before any notice is claimed, so
        nothing waits on a configuration that can never send.  */
    const char *smtp_url = bf_config_str (config, "notify.smtp_url");
    if (*bf_config_str (config, "notify.smtp_username") && strncmp (smtp_url, "smtp://", 7) == 0
        && !bf_config_bool (config, "notify.smtp_starttls")
        && !bf_config_bool (config, "notify.smtp_allow_plain_auth")) {
        fprintf (stderr, "notify: configuration: notify.smtp_username is set but "
                         "notify.smtp_url is plain smtp:// without notify.smtp_starttls: AUTH "
                         "would send the password in clear. Use smtps:// or STARTTLS, or set "
                         "notify.smtp_allow_plain_auth=true for a relay on this host\n");
        bf_error ("notify: refusing SMTP AUTH over plain smtp:// "
                  "(notify.smtp_allow_plain_auth is false)");
        bf_config_destroy (&config);
        return 2;
    }
    if (clock_offset)
        bf_info ("notify: clock set to %s local (offset %+lld s from the system clock)",
                 bf_config_str (config, "notify.clock"), (long long)(clock_offset / 1000));

    char instance[128];
    bf_config_instance (config, instance, sizeof instance);
    int n = (int)bf_config_int (config, "notify.dispatchers");
    if (n == 0) {
        long cores = sysconf (_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)(cores < MAX_DISPATCHERS ? cores : MAX_DISPATCHERS) : 1;
    }
    const char *conninfo = bf_config_str (config, "db.conninfo");
    zcert_t *stream_cert = s_stream_cert (config, err, sizeof err);
    if (!stream_cert || bf_observe_start (config, "notify", err, sizeof err) != 0) {
        fprintf (stderr, "notify: configuration: %s\n", err);
        zcert_destroy (&stream_cert);
        bf_config_destroy (&config);
        return 2;
    }
    bf_notify_metrics_init ();
    zsys_init ();

    bf_ingest_args_t iargs = {
        .conninfo = conninfo,
        .pub_endpoints = bf_config_str (config, "notify.settle_pub_endpoints"),
        .replay_endpoints = bf_config_str (config, "notify.settle_replay_endpoints"),
        .consumer = bf_config_str (config, "notify.consumer"),
        .purpose = PURPOSE,
        .replay_credit = (int)bf_config_int (config, "notify.replay_credit"),
        .batch = (int)bf_config_int (config, "notify.ingest_batch"),
        .heartbeat_timeout_ms = (int)bf_config_int (config, "notify.ingest_silence_ms"),
        .cert = stream_cert,
        .server_key = bf_config_str (config, "notify.settle_server_key"),
    };

    bf_dispatch_args_t dargs = {
        .conninfo = conninfo,
        .pii_key_file = bf_config_str (config, "pii.key_file"),
        .pii_key_hex = bf_config_str (config, "pii.key"),
        .purpose = PURPOSE,
        .sender = {
            .smtp_url = bf_config_str (config, "notify.smtp_url"),
            .smtp_from = bf_config_str (config, "notify.smtp_from"),
            .smtp_username = bf_config_str (config, "notify.smtp_username"),
            .smtp_password = bf_config_str (config, "notify.smtp_password"),
            .smtp_starttls = bf_config_bool (config, "notify.smtp_starttls"),
            .smtp_allow_plain_auth = bf_config_bool (config, "notify.smtp_allow_plain_auth"),
            .smtp_greeting_ms = (int)bf_config_int (config, "notify.smtp_greeting_timeout_ms"),
            .smtp_command_ms = (int)bf_config_int (config, "notify.smtp_command_timeout_ms"),
            .smtp_data_ms = (int)bf_config_int (config, "notify.smtp_data_timeout_ms"),
            .smtp_block_ms = (int)bf_config_int (config, "notify.smtp_block_timeout_ms"),
            .smtp_end_ms = (int)bf_config_int (config, "notify.smtp_end_timeout_ms"),
            .sms_url = bf_config_str (config, "notify.sms_url"),
            .sms_token = bf_config_str (config, "notify.sms_token"),
            .push_url = bf_config_str (config, "notify.push_url"),
            .push_token = bf_config_str (config, "notify.push_token"),
            .concurrency = { (int) bf_config_int (config, "notify.email_concurrency"),
                             (int) bf_config_int (config, "notify.sms_concurrency"),
                             (int) bf_config_int (config, "notify.push_concurrency") },
            .rate_per_s = { (int) bf_config_int (config, "notify.email_rate"),
                            (int) bf_config_int (config, "notify.sms_rate"),
                            (int) bf_config_int (config, "notify.push_rate") },
            .timeout_ms = (int)bf_config_int (config, "notify.provider_timeout_ms"),
            .provider_timeout_ms = { (int)bf_config_int (config, "notify.email_timeout_ms"),
                                     (int)bf_config_int (config, "notify.sms_timeout_ms"),
                                     (int)bf_config_int (config, "notify.push_timeout_ms") },
            .breaker_error_pct = (int) bf_config_int (config, "notify.breaker_error_pct"),
            .breaker_min_samples = (int) bf_config_int (config, "notify.breaker_min_samples"),
            .breaker_open_ms = (int) bf_config_int (config, "notify.breaker_open_ms"),
        },
        .batch = (int) bf_config_int (config, "notify.batch"),
        .lease_ms = (int) bf_config_int (config, "notify.lease_ms"),
        .poll_ms = (int) bf_config_int (config, "notify.poll_ms"),
        .max_attempts = (int) bf_config_int (config, "notify.max_attempts"),
        .backoff_base_ms = (int) bf_config_int (config, "notify.backoff_base_ms"),
        .backoff_max_ms = (int) bf_config_int (config, "notify.backoff_max_ms"),
        .unknown_retry_ms = (int) bf_config_int (config, "notify.email_unknown_retry_ms"),
        .system_quiet = quiet,
        .utc_offset_min = utc_offset,
        .clock_offset_ms = clock_offset,
    };
    /*  Each dispatcher's in-flight limits are its share of the process's.  */
    for (int p = 0; p < BF_PROVIDER_COUNT; p++) {
        int share = dargs.sender.concurrency[p] / n;
        dargs.sender.concurrency[p] = share > 0 ? share : 1;
        if (dargs.sender.rate_per_s[p] > 0) {
            int rate = dargs.sender.rate_per_s[p] / n;
            dargs.sender.rate_per_s[p] = rate > 0 ? rate : 1;
        }
    }
    /*  The settings the dispatchers need, checked here so the message names
        them; then any other failed start is noticed (bf_actor_start).  */
    int rc = s_check_senders (&dargs);
    bf_actor_status_t started;
    char why[600];
    zactor_t *ingest = NULL;
    if (rc == 0) {
        iargs.status = &started;
        ingest = bf_actor_start (bf_ingest_actor, &iargs, &started, why, sizeof why);
        if (!ingest) {
            fprintf (stderr, "notify: cannot start ingest: %s\n", why);
            rc = 2;
        }
    }
    zcert_destroy (&stream_cert); //  a started ingest applied it to its sockets
    zactor_t *dispatchers_actors[MAX_DISPATCHERS] = { NULL };
    bool ok = rc == 0;
    dargs.status = &started;
    for (int i = 0; i < n && ok; i++) {
        char id[160];
        snprintf (id, sizeof id, "%s:d%d", instance, i + 1);
        dargs.dispatcher_id = id;
        dispatchers_actors[i]
            = bf_actor_start (bf_dispatch_actor, &dargs, &started, why, sizeof why);
        ok = dispatchers_actors[i] != NULL;
        if (!ok) {
            fprintf (stderr, "notify: cannot start dispatcher %d: %s\n", i + 1, why);
            rc = 2;
        }
    }
    zactor_t *link = NULL;
    const char *control = bf_config_str (config, "control.endpoint");
    if (ok && *control) {
        bf_link_args_t largs
            = { .conninfo = conninfo,
                .endpoint = control,
                .service = "notify",
                .instance = instance,
                .heartbeat_ms = (int)bf_config_int (config, "control.heartbeat_ms"),
                .verbs = bf_notify_cmd_verbs,
                .context = NULL,
                .server_key = bf_config_str (config, "control.server_key"),
                .key_file = bf_config_str (config, "control.client_key_file") };
        link = bf_link_start (&largs);
        ok = link != NULL;
        if (!ok) {
            fprintf (stderr, "notify: cannot start the control link (control.endpoint,"
                             " control.server_key, control.client_key_file): see the log\n");
            rc = 2;
        }
    }
    if (!ok) {
        bf_error ("notify: start-up stopped: an actor failed to start");
    } else {
        bf_info ("notify %s: ingest, %d dispatchers%s running", instance, n,
                 link ? ", control link" : "");
        bf_observe_ready (true);
        while (!zsys_interrupted)
            zclock_sleep (100);
        bf_info ("notify %s: stopping", instance);
    }
    zactor_destroy (&link);
    zactor_destroy (&ingest);
    for (int i = 0; i < n; i++)
        zactor_destroy (&dispatchers_actors[i]);
    bf_observe_stop ();
    bf_config_destroy (&config);
    return rc;
}
