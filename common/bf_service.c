/*  bf_service — a service main's start-up and wait block (see bf_service.h).  */

#include <assert.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "bf_log.h"
#include "bf_db.h"
#include "bf_observe.h"
#include "bf_service.h"
#include "bf_zmq.h"

/*  Room for the options a service main takes.  */
#define S_MAX_OPTIONS 8

int
bf_service_options (int argc, char **argv, const char *program, const char *usage,
                    const char **config_path, bf_config_override_t *overrides, size_t count)
{
    assert (count + 3 <= S_MAX_OPTIONS);
    struct option options[S_MAX_OPTIONS] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
    };
    for (size_t i = 0; i < count; i++) {
        assert (overrides[i].option && !strncmp (overrides[i].option, "--", 2));
        options[2 + i]
            = (struct option){ overrides[i].option + 2, required_argument, NULL, 256 + (int)i };
    }
    int c;
    while ((c = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        if (c == 'c')
            *config_path = optarg;
        else if (c == 'h') {
            fputs (usage, stdout);
            return 0;
        } else if (c >= 256 && c < 256 + (int)count)
            overrides[c - 256].value = optarg;
        else
            return bf_usage_error (program, usage, "unknown option");
    }
    if (optind != argc)
        return bf_usage_error (program, usage, "unexpected argument '%s'", argv[optind]);
    return -1;
}

int
bf_service_load (bf_service_t *self, const char *program, const char *path,
                 const bf_config_override_t *overrides, size_t count)
{
    char err[512];
    self->program = program;
    self->config = bf_config_load (path, err, sizeof err);
    if (self->config && bf_config_override (self->config, overrides, count, err, sizeof err) != 0)
        bf_config_destroy (&self->config);
    if (!self->config)
        return bf_service_config_error (self, "%s", err);
    bf_config_log_init (self->config, program);
    bf_db_configure ((int)bf_config_int (self->config, "db.reconnect_min_ms"),
                     (int)bf_config_int (self->config, "db.reconnect_max_ms"),
                     (int)bf_config_int (self->config, "db.unavailable_log_s"));
    bf_db_keepalive_t keepalive = {
        (int)bf_config_int (self->config, "db.keepalives_idle_s"),
        (int)bf_config_int (self->config, "db.keepalives_interval_s"),
        (int)bf_config_int (self->config, "db.keepalives_count"),
        (int)bf_config_int (self->config, "db.tcp_user_timeout_ms"),
    };
    bf_db_configure_keepalive (&keepalive);
    bf_zmq_configure ((int)bf_config_int (self->config, "zmq.heartbeat_ivl_ms"),
                      (int)bf_config_int (self->config, "zmq.heartbeat_timeout_ms"));
    bf_config_instance (self->config, self->instance, sizeof self->instance);
    return 0;
}

int
bf_service_config_error (const bf_service_t *self, const char *format, ...)
{
    char reason[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    fprintf (stderr, "%s: configuration: %s\n", self->program, reason);
    return BF_SERVICE_EXIT_CONFIG;
}

int
bf_service_start (bf_service_t *self)
{
    char err[512];
    if (bf_observe_start (self->config, self->program, !self->no_database, err, sizeof err) != 0)
        return bf_service_config_error (self, "%s", err);
    zsys_init ();
    return 0;
}

zactor_t *
bf_service_actor (const bf_service_t *self, const char *what, zactor_fn *actor, void *args,
                  bf_actor_status_t *status)
{
    char why[600];
    zactor_t *started = bf_actor_start (actor, args, status, why, sizeof why);
    if (!started)
        fprintf (stderr, "%s: cannot start %s: %s\n", self->program, what, why);
    return started;
}

int
bf_service_actor_count (const bf_service_t *self, const char *key, int max)
{
    int n = (int)bf_config_int (self->config, key);
    if (n == 0) {
        long cores = sysconf (_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)(cores < max ? cores : max) : 1;
    }
    return n;
}

void
bf_service_wait (const bf_service_t *self, void (*tick) (void *context), void *context)
{
    bf_observe_ready (true);
    while (!zsys_interrupted) {
        if (tick)
            tick (context);
        zclock_sleep (100);
    }
    bf_info ("%s %s: stopping", self->program, self->instance);
}

void
bf_service_end (bf_service_t *self)
{
    bf_observe_stop ();
    bf_config_destroy (&self->config);
}
