/*  bf_actor — starting a zactor and learning whether it really started.

    zactor_new waits for the actor's zsock_signal but throws its status
    byte away, so an actor that could not start (a bad key file, a
    provider URL it refuses, no memory) looked started: notify said
    "running", registered with control and showed up in `billctl
    services` with no working sender. The contract here: an actor whose
    args carry a bf_actor_status_t * reports a failed start with
    bf_actor_fail (which records the reason, then signals the pipe with 1)
    and then waits for $TERM as every actor does; bf_actor_start notices
    the record, ends the actor and hands the reason to the caller, whose
    start-up then stops (exit 2, in each service main.c).  */

#ifndef BF_ACTOR_H_INCLUDED
#define BF_ACTOR_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    bool failed;
    char reason[512];
} bf_actor_status_t;

/*  Called by the actor, on its thread, before any other signal: records
    reason (status may be NULL: then only the signal tells) and signals
    the pipe with status 1.  */
void bf_actor_fail (zsock_t *pipe, bf_actor_status_t *status, const char *reason);

/*  zactor_new (actor, args) where args points (somewhere) to status.
    Returns the running actor, or NULL with the reason in err: the thread
    could not be made, or the actor reported a failed start (it is then
    destroyed here).  */
zactor_t *bf_actor_start (zactor_fn *actor, void *args, bf_actor_status_t *status, char *err,
                          size_t errsize);

#endif
