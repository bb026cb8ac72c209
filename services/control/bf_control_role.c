/*  bf_control_role — publishes the control actor's role.  */

#include <string.h>

#include "bf_control_role.h"
#include "bf_health.h"
#include "bf_metrics.h"

void
bf_control_role_poll (zactor_t *control)
{
    static int64_t next_at;
    static bf_series_t *leader;
    if (!control || zclock_mono () < next_at)
        return;
    next_at = zclock_mono () + 1000;
    if (!leader)
        leader = bf_metric_series (bf_metrics_gauge (
            "billflow_control_leader", "1 while this control instance is the active one.", NULL));
    zstr_send (control, "STATUS");
    char *role = zstr_recv (control);
    if (!role)
        return;
    bool active = !strcmp (role, "active");
    bf_gauge_set (leader, active ? 1 : 0);
    bf_health_info_set ("role", active ? "leader" : "standby");
    zstr_free (&role);
}
