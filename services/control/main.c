/*  control — the operations server (docs/control.md).

    Starts the control actor (bf_control.h): it competes with any other
    control process for the active role, and while active takes commands
    and queries from billctl and registrations, heartbeats and answers from
    settle and notify. SIGTERM/SIGINT stop it; a standby takes over.  */

#include <czmq.h>
#include <stdio.h>

#include "bf_config.h"
#include "bf_control.h"
#include "bf_control_metrics.h"
#include "bf_control_role.h"
#include "bf_curve.h"
#include "bf_log.h"
#include "bf_pii.h"
#include "bf_service.h"

static const char *s_usage
    = "usage: control [--config FILE] [--db CONNINFO] [--bind ENDPOINT]\n"
      "\n"
      "  --bind ENDPOINT  where to listen while active (default control.bind)\n"
      "  --config FILE    config file (default $BILLFLOW_CONFIG); docs/configuration.md\n"
      "  --db CONNINFO    libpq connection string (overrides db.conninfo)\n"
      "\n"
      "control needs control.key_file (its key pair, from `billctl keygen`) and\n"
      "control.allowed_keys (the keys it accepts); docs/control.md.\n"
      "Exit status: 0 stopped by a signal, 2 bad usage or configuration or failed to start.\n";

/*  control's key pair and allowed list: both required, and both usable
    (the actor would only log it). Returns 0 or the exit status after
    printing the reason.  */
static int
s_check_keys (const bf_service_t *service)
{
    const char *key_file = bf_config_str (service->config, "control.key_file");
    const char *allowed = bf_config_str (service->config, "control.allowed_keys");
    if (!*key_file || !*allowed)
        return bf_service_config_error (service,
                                        "control.key_file and control.allowed_keys are both"
                                        " required (control accepts CURVE clients only; see"
                                        " docs/control.md)");
    char err[512];
    zcert_t *cert = bf_curve_load_secret (key_file, err, sizeof err);
    bf_keyring_t *keyring = cert ? bf_keyring_load (allowed, err, sizeof err) : NULL;
    zcert_destroy (&cert);
    if (!keyring)
        return bf_service_config_error (service, "%s", err);
    bf_keyring_destroy (&keyring);
    return 0;
}

/*  The PII key is optional: without it, failed notices show no contact.
    Returns 0 with *pii set (or NULL), or the exit status after printing
    the reason.  */
static int
s_load_pii (const bf_service_t *service, bf_pii_t **pii)
{
    const char *pii_file = bf_config_str (service->config, "pii.key_file");
    const char *pii_hex = bf_config_str (service->config, "pii.key");
    *pii = NULL;
    if (!*pii_file && !*pii_hex)
        return 0;
    char err[512];
    *pii = bf_pii_load (pii_file, pii_hex, err, sizeof err);
    return *pii ? 0 : bf_service_config_error (service, "PII key: %s", err);
}

/*  Starts the control actor and asks it whether it started (zactor_new
    does not report a failed start): the actor, or NULL when it ended.  */
static zactor_t *
s_start_control (const bf_control_args_t *args)
{
    zactor_t *actor = zactor_new (bf_control_actor, (void *)args);
    if (actor) {
        zsock_set_rcvtimeo (zactor_sock (actor), 10000);
        zstr_send (actor, "STATUS");
        zmsg_t *msg = zmsg_recv (actor);
        if (!msg || zmsg_signal (msg) >= 0)
            actor = NULL; /* it ended; the process exits */
        zmsg_destroy (&msg);
    }
    return actor;
}

static void
s_tick (void *actor)
{
    bf_control_role_poll (actor);
}

int
main (int argc, char **argv)
{
    const char *config_path = NULL;
    bf_config_override_t overrides[] = {
        { "db.conninfo", NULL, "--db" },
        { "control.bind", NULL, "--bind" },
    };
    int rc = bf_service_options (argc, argv, "control", s_usage, &config_path, overrides, 2);
    if (rc >= 0)
        return rc;
    bf_service_t service = { 0 };
    rc = bf_service_load (&service, "control", config_path, overrides, 2);
    bf_pii_t *pii = NULL;
    if (rc == 0)
        rc = s_check_keys (&service);
    if (rc == 0)
        rc = s_load_pii (&service, &pii);
    if (rc == 0)
        rc = bf_service_start (&service);
    if (rc == 0)
        bf_control_metrics_init ();
    zactor_t *actor = NULL;
    if (rc == 0) {
        bf_control_args_t args;
        bf_control_args_from_config (&args, service.config, service.instance, pii);
        actor = s_start_control (&args);
        if (!actor) {
            /*  A half-started control must not look up: exit 2 like any
                configuration error (the reason is logged above).  */
            bf_error ("control %s: failed to start (see above)", service.instance);
            fprintf (stderr, "control: start-up stopped: control failed to start (see the log)\n");
            rc = BF_SERVICE_EXIT_CONFIG;
        }
    }
    if (rc == 0)
        bf_service_wait (&service, s_tick, actor);
    zactor_destroy (&actor);
    bf_pii_destroy (&pii);
    bf_service_end (&service);
    return rc;
}
