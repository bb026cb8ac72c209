/*  bf_actor — a zactor start that notices a failed start (see bf_actor.h).  */

#include <string.h>

#include "bf_actor.h"
#include "bf_log.h"

void
bf_actor_fail (zsock_t *pipe, bf_actor_status_t *status, const char *reason)
{
    if (status) {
        snprintf (status->reason, sizeof status->reason, "%s",
                  reason && *reason ? reason : "the actor could not start");
        status->failed = true;
    }
    /*  The write above happens before the signal; zactor_new returns
        only after reading it, so the caller sees the record.  */
    zsock_signal (pipe, 1);
}

zactor_t *
bf_actor_start (zactor_fn *actor, void *args, bf_actor_status_t *status, char *err,
                size_t errsize)
{
    memset (status, 0, sizeof *status);
    zactor_t *self = zactor_new (actor, args);
    if (!self) {
        bf_err_set (err, errsize, "cannot start a thread");
        return NULL;
    }
    if (status->failed) {
        bf_err_set (err, errsize, "%s", status->reason);
        zactor_destroy (&self);
        return NULL;
    }
    return self;
}
