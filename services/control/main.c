/*  control — the operations server (docs/control.md).

    Starts the control actor (bf_control.h): it competes with any other
    control process for the active role, and while active takes commands
    and queries from billctl and registrations, heartbeats and answers from
    settle and notify. SIGTERM/SIGINT stop it; a standby takes over.  */

#include <czmq.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_config.h"
#include "bf_control.h"
#include "bf_control_metrics.h"
#include "bf_control_role.h"
#include "bf_curve.h"
#include "bf_log.h"
#include "bf_observe.h"
#include "bf_pii.h"

static const char *s_usage
    = "usage: control [--config FILE] [--db CONNINFO] [--bind ENDPOINT]\n"
      "\n"
      "  --bind ENDPOINT  where to listen while active (default control.bind)\n"
      "  --config FILE    config file (default $BILLFLOW_CONFIG); docs/configuration.md\n"
      "  --db CONNINFO    libpq connection string (overrides db.conninfo)\n"
      "\n"
      "control needs control.key_file (its key pair, from `billctl keygen`) and\n"
      "control.allowed_keys (the keys it accepts); docs/control.md.\n"
      "Exit status: 0 stopped by a signal, 1 failed to start, 2 bad usage or configuration.\n";

#define s_usage_error(...) bf_usage_error ("control", s_usage, __VA_ARGS__)

int
main (int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "db", required_argument, NULL, 'd' },
        { "bind", required_argument, NULL, 'b' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config_path = NULL, *db = NULL, *bind = NULL;
    int c;
    while ((c = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
            case 'c':
                config_path = optarg;
                break;
            case 'd':
                db = optarg;
                break;
            case 'b':
                bind = optarg;
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
        { "control.bind", bind, "--bind" },
    };
    bf_config_t *config = bf_config_load (config_path, err, sizeof err);
    if (config && bf_config_override (config, overrides, 2, err, sizeof err) != 0)
        bf_config_destroy (&config);
    if (!config) {
        fprintf (stderr, "control: configuration: %s\n", err);
        return 2;
    }
    bf_config_log_init (config, "control");

    const char *key_file = bf_config_str (config, "control.key_file");
    const char *allowed = bf_config_str (config, "control.allowed_keys");
    if (!*key_file || !*allowed) {
        fprintf (stderr, "control: configuration: control.key_file and control.allowed_keys are"
                         " both required (control accepts CURVE clients only; see"
                         " docs/control.md)\n");
        bf_config_destroy (&config);
        return 2;
    }
    /*  Refuse to start on a key pair or list that cannot be used (the
        actor would only log it).  */
    zcert_t *cert = bf_curve_load_secret (key_file, err, sizeof err);
    bf_keyring_t *keyring = cert ? bf_keyring_load (allowed, err, sizeof err) : NULL;
    zcert_destroy (&cert);
    if (!keyring) {
        fprintf (stderr, "control: configuration: %s\n", err);
        bf_config_destroy (&config);
        return 2;
    }
    bf_keyring_destroy (&keyring);
    /*  The PII key is optional: without it, failed notices show no contact.  */
    bf_pii_t *pii = NULL;
    const char *pii_file = bf_config_str (config, "pii.key_file");
    const char *pii_hex = bf_config_str (config, "pii.key");
    if (*pii_file || *pii_hex) {
        pii = bf_pii_load (pii_file, pii_hex, err, sizeof err);
        if (!pii) {
            fprintf (stderr, "control: configuration: PII key: %s\n", err);
            bf_config_destroy (&config);
            return 2;
        }
    }
    char instance[128];
    bf_config_instance (config, instance, sizeof instance);
    if (bf_observe_start (config, "control", err, sizeof err) != 0) {
        fprintf (stderr, "control: configuration: %s\n", err);
        bf_pii_destroy (&pii);
        bf_config_destroy (&config);
        return 2;
    }
    zsys_init ();
    bf_control_metrics_init ();
    bf_control_args_t args = {
        .conninfo = bf_config_str (config, "db.conninfo"),
        .bind = bf_config_str (config, "control.bind"),
        .key_file = key_file,
        .allowed_keys = allowed,
        .instance = instance,
        .heartbeat_ms = (int)bf_config_int (config, "control.heartbeat_ms"),
        .command_timeout_ms = (int)bf_config_int (config, "control.command_timeout_ms"),
        .election_ms = (int)bf_config_int (config, "control.election_ms"),
        .pii = pii,
        .client_rate = (int)bf_config_int (config, "control.client_rate"),
        .client_burst = (int)bf_config_int (config, "control.client_burst"),
        .command_attempts = (int)bf_config_int (config, "control.command_attempts"),
        .max_request_bytes = (int)bf_config_int (config, "control.max_request_bytes"),
        .metrics_ms = (int)bf_config_int (config, "control.metrics_ms"),
    };
    zactor_t *actor = zactor_new (bf_control_actor, &args);
    /*  zactor_new does not report a failed start: ask the actor.  */
    if (actor) {
        zsock_set_rcvtimeo (zactor_sock (actor), 10000);
        zstr_send (actor, "STATUS");
        zmsg_t *msg = zmsg_recv (actor);
        if (!msg || zmsg_signal (msg) >= 0)
            actor = NULL; /* it ended; the process exits */
        zmsg_destroy (&msg);
    }
    int rc = 0;
    if (!actor) {
        /*  A half-started control must not look up: exit 2 like any
            configuration error (the reason is logged above).  */
        bf_error ("control %s: failed to start (see above)", instance);
        fprintf (stderr, "control: start-up stopped: control failed to start (see the log)\n");
        rc = 2;
    } else {
        bf_observe_ready (true);
        while (!zsys_interrupted) {
            bf_control_role_poll (actor);
            zclock_sleep (100);
        }
        bf_info ("control %s: stopping", instance);
    }
    zactor_destroy (&actor);
    bf_observe_stop ();
    bf_pii_destroy (&pii);
    bf_config_destroy (&config);
    return rc;
}
