/*  bf_control_role — control's role on the observability endpoint: the
    gauge billflow_control_leader (1 while this instance is the active
    control, 0 while standby) and the /readyz line "role: leader" or
    "role: standby". A standby is ready: readiness does not depend on the
    role (docs/observability.md).  */

#ifndef BF_CONTROL_ROLE_H_INCLUDED
#define BF_CONTROL_ROLE_H_INCLUDED

#include <czmq.h>

/*  Asks the control actor for its role (STATUS on its pipe) at most once
    a second and publishes the answer. Call from main's loop, the only
    other user of the actor's pipe; the pipe's receive timeout bounds the
    wait (an answer that comes late is read at the next call).  */
void bf_control_role_poll (zactor_t *control);

#endif
