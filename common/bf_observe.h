/*  bf_observe — what a program's main does to serve its observability
    endpoint (bf_http.h), in one call each, so that the mains stay short.

    bf_observe_start reads `<program>.http` and `http.stuck_ms`; when the
    address is not off it registers the built-in metrics (bf_metrics_init),
    the readiness checks "config" (loaded: true once started), "postgresql"
    (bf_health_ready_db: as last seen by the actors; only for a program
    with a database) and "actors" (started,
    their sockets bound or connected: false until bf_observe_ready, and
    false again once any actor thread ends, taking its sockets with it), and
    starts the HTTP server. Process-wide: one endpoint per process.  */

#ifndef BF_OBSERVE_H_INCLUDED
#define BF_OBSERVE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "bf_config.h"

/*  0 (also when the setting is off), or -1 with the reason in err (a bad
    address, a port in use): a configuration error for the caller. A
    program without a database (database false: the console) has no
    "postgresql" check; it adds what its readiness means itself.  */
int bf_observe_start (const bf_config_t *config, const char *program, bool database, char *err,
                      size_t errsize);

/*  The program's actors started and bound (or lost them: false). From
    a true call on, an actor thread that ends (bf_health_actors_ended)
    turns the check false, naming it.  */
void bf_observe_ready (bool ready);

/*  The bound port, 0 when not serving.  */
int bf_observe_port (void);

/*  Stops the endpoint; safe when it never started.  */
void bf_observe_stop (void);

#endif
