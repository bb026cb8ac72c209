/*  bf_service — the start-up and wait block every service's main.c shares
    (settle, notify, control), so that a main only wires its actors.

    A main runs, in this order:
        bf_service_options the command line (--config, --help, options
                           that set a setting)
        bf_service_load    configuration (file, environment, command-line
                           overrides), logging, the instance name
        ...its own checks and actor arguments (*_args_from_config)...
        bf_service_start   the observability endpoint (bf_observe.h), then
                           CZMQ (zsys_init: SIGINT/SIGTERM set
                           zsys_interrupted; actors poll with nonstop set,
                           so only main reacts)
        bf_service_actor   each actor, its failed start noticed
        bf_service_wait    ready, then until a signal
        bf_service_end     the endpoint stopped, the configuration freed
    A configuration error is printed as "PROGRAM: configuration: REASON"
    and is exit status 2 (BF_SERVICE_EXIT_CONFIG), as every main documents.
    One service per process; main's thread only.  */

#ifndef BF_SERVICE_H_INCLUDED
#define BF_SERVICE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#include "bf_actor.h"
#include "bf_config.h"

/*  Exit status of a bad command line or configuration, and of a start-up
    stopped because an actor did not start.  */
#define BF_SERVICE_EXIT_CONFIG 2

typedef struct {
    const char *program; /* "notify": messages, logs, the <program>.http setting */
    bf_config_t *config; /* owned; NULL before bf_service_load and after bf_service_end */
    char instance[128];  /* service.instance, or "hostname:pid" */
    bool no_database;    /* set before bf_service_start: /readyz checks no PostgreSQL */
} bf_service_t;

/*  Parses the command line of program: --config FILE into *config_path,
    --help (prints usage on stdout), and for each of the count overrides
    the option it names ("--db"), which takes an argument that becomes its
    value. Returns -1 to go on, or the exit status: 0 after --help, 2
    after printing a usage error with usage.  */
int bf_service_options (int argc, char **argv, const char *program, const char *usage,
                        const char **config_path, bf_config_override_t *overrides, size_t count);

/*  Loads the configuration (path, or $BILLFLOW_CONFIG when NULL; then the
    environment; then the count overrides), starts logging for program,
    hands the database's reconnect gate and TCP timeouts to bf_db
    (db.reconnect_*, db.keepalives_*, db.tcp_user_timeout_ms) and the
    ZeroMQ heartbeats to bf_zmq (zmq.*), and names the instance. Returns 0, or BF_SERVICE_EXIT_CONFIG after printing
    the reason (self->config is then NULL).  */
int bf_service_load (bf_service_t *self, const char *program, const char *path,
                     const bf_config_override_t *overrides, size_t count);

/*  Prints "PROGRAM: configuration: REASON" on stderr. Returns
    BF_SERVICE_EXIT_CONFIG, for `return bf_service_config_error (...)`.  */
int bf_service_config_error (const bf_service_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  Starts the observability endpoint (<program>.http; its "postgresql"
    readiness check unless self->no_database), then CZMQ's signal
    handling. Returns 0, or BF_SERVICE_EXIT_CONFIG after printing the
    reason (a bad address, a port in use).  */
int bf_service_start (bf_service_t *self);

/*  bf_actor_start (actor, args, status): the running actor, or NULL after
    printing "PROGRAM: cannot start WHAT: REASON" on stderr. status must be
    the one args points to.  */
zactor_t *bf_service_actor (const bf_service_t *self, const char *what, zactor_fn *actor,
                            void *args, bf_actor_status_t *status);

/*  How many actors a count setting asks for: the value, or one per core
    (at most max, at least 1) when it is 0.  */
int bf_service_actor_count (const bf_service_t *self, const char *key, int max);

/*  Marks the actors ready (/readyz), then waits until SIGINT or SIGTERM,
    calling tick (context) about every 100 ms when it is not NULL (for what
    main must read from an actor's pipe); then logs "PROGRAM INSTANCE:
    stopping".  */
void bf_service_wait (const bf_service_t *self, void (*tick) (void *context), void *context);

/*  Stops the observability endpoint and frees the configuration. Safe
    after a failed bf_service_load and twice.  */
void bf_service_end (bf_service_t *self);

#endif
