/*  notify — the message service (docs/design.md "notify").

    The ingest actor turns settle's events into deliveries (one per bill,
    channel and purpose); dispatcher actors send them through the providers
    and record every attempt; the control link applies dispatch.pause,
    dispatch.resume and deliveries.retry.
    SIGTERM/SIGINT stop it: dispatchers finish what is in flight (bounded)
    and record it, hand back what they claimed and did not send, and end
    their leases, so that anything still in flight is taken over at once.  */

#include <czmq.h>
#include <stdio.h>

#include "bf_config.h"
#include "bf_dispatch.h"
#include "bf_ingest.h"
#include "bf_notify_metrics.h"
#include "bf_link.h"
#include "bf_log.h"
#include "bf_notify_cmd.h"
#include "bf_sender_config.h"
#include "bf_service.h"

#define MAX_DISPATCHERS 64
#define PURPOSE         "BILL_ISSUED"

static const char *s_usage
    = "usage: notify [--config FILE] [--db CONNINFO] [--dispatchers N]\n"
      "\n"
      "  --dispatchers N  dispatcher actors (default notify.dispatchers; 0 = one per core)\n"
      "  --config FILE    config file (default $BILLFLOW_CONFIG); docs/configuration.md\n"
      "  --db CONNINFO    libpq connection string (overrides db.conninfo)\n";

/*  The process: its actors' arguments and the actors.  */
typedef struct {
    bf_ingest_args_t iargs;
    bf_dispatch_args_t dargs;
    bf_link_args_t largs;
    int n; /* dispatchers */
    zactor_t *ingest;
    zactor_t *dispatchers[MAX_DISPATCHERS];
    zactor_t *link;
} s_notify_t;

/*  Every actor's arguments from the settings, checked before anything
    starts. Returns 0 or the exit status after printing the reason.  */
static int
s_configure (s_notify_t *self, bf_service_t *service)
{
    char err[1024];
    self->n = bf_service_actor_count (service, "notify.dispatchers", MAX_DISPATCHERS);
    if (bf_dispatch_args_from_config (&self->dargs, service->config, self->n, err, sizeof err) != 0)
        return bf_service_config_error (service, "%s", err);
    /*  Credentials over plain smtp:// would cross the network in clear:
        refused at start-up (exit 2), before any notice is claimed, so
        nothing waits on a configuration that can never send.  */
    if (bf_sender_config_check_auth (&self->dargs.sender, err, sizeof err) != 0) {
        bf_service_config_error (service, "%s", err);
        bf_error ("notify: refusing SMTP AUTH over plain smtp:// "
                  "(notify.smtp_allow_plain_auth is false)");
        return BF_SERVICE_EXIT_CONFIG;
    }
    if (self->dargs.clock_offset_ms)
        bf_info ("notify: clock set to %s local (offset %+lld s from the system clock)",
                 bf_config_str (service->config, "notify.clock"),
                 (long long)(self->dargs.clock_offset_ms / 1000));
    self->dargs.purpose = PURPOSE;
    if (bf_ingest_args_from_config (&self->iargs, service->config, err, sizeof err) != 0)
        return bf_service_config_error (service, "%s", err);
    self->iargs.purpose = PURPOSE;
    bf_link_args_from_config (&self->largs, service->config, "notify", service->instance,
                              bf_notify_cmd_verbs, &self->dargs);
    return 0;
}

/*  Ingest, the dispatchers, then the control link (when control.endpoint
    is set). Returns 0, or 2 when one did not start (the reason printed).  */
static int
s_start (s_notify_t *self, bf_service_t *service)
{
    /*  The settings the dispatchers need, checked here so the message names
        them; then any other failed start is noticed (bf_actor_start).  */
    char err[1024];
    if (bf_dispatch_args_check (&self->dargs, err, sizeof err) != 0)
        return bf_service_config_error (service, "%s", err);
    bf_actor_status_t started;
    self->iargs.status = &started;
    self->ingest = bf_service_actor (service, "ingest", bf_ingest_actor, &self->iargs, &started);
    if (!self->ingest)
        return BF_SERVICE_EXIT_CONFIG;
    self->dargs.status = &started;
    for (int i = 0; i < self->n; i++) {
        char id[160], what[32];
        snprintf (id, sizeof id, "%s:d%d", service->instance, i + 1);
        snprintf (what, sizeof what, "dispatcher %d", i + 1);
        self->dargs.dispatcher_id = id;
        self->dispatchers[i]
            = bf_service_actor (service, what, bf_dispatch_actor, &self->dargs, &started);
        if (!self->dispatchers[i])
            return BF_SERVICE_EXIT_CONFIG;
    }
    if (*self->largs.endpoint) {
        self->link = bf_link_start (&self->largs);
        if (!self->link) {
            fprintf (stderr, "notify: cannot start the control link (control.endpoint,"
                             " control.server_key, control.client_key_file): see the log\n");
            return BF_SERVICE_EXIT_CONFIG;
        }
    }
    return 0;
}

static void
s_stop (s_notify_t *self)
{
    zactor_destroy (&self->link);
    zactor_destroy (&self->ingest);
    for (int i = 0; i < self->n; i++)
        zactor_destroy (&self->dispatchers[i]);
}

int
main (int argc, char **argv)
{
    const char *config_path = NULL;
    bf_config_override_t overrides[] = {
        { "db.conninfo", NULL, "--db" },
        { "notify.dispatchers", NULL, "--dispatchers" },
    };
    int rc = bf_service_options (argc, argv, "notify", s_usage, &config_path, overrides, 2);
    if (rc >= 0)
        return rc;
    bf_service_t service = { 0 };
    rc = bf_service_load (&service, "notify", config_path, overrides, 2);
    if (rc != 0)
        return rc;
    s_notify_t self = { 0 };
    rc = s_configure (&self, &service);
    if (rc == 0) {
        bf_notify_metrics_init ();
        rc = bf_service_start (&service);
    }
    if (rc == 0) {
        rc = s_start (&self, &service);
        if (rc != 0)
            bf_error ("notify: start-up stopped: an actor failed to start");
    }
    if (rc == 0) {
        bf_info ("notify %s: ingest, %d dispatchers%s running", service.instance, self.n,
                 self.link ? ", control link" : "");
        bf_service_wait (&service, NULL, NULL);
    }
    zcert_destroy (&self.iargs.cert); //  a started ingest applied it to its sockets
    s_stop (&self);
    bf_service_end (&service);
    return rc;
}
