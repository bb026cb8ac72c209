/*  bf_control_metrics — control's metrics (docs/observability.md): one call
    per event, so that the control actor needs one line at each place.

    Per process: commands by verb and outcome, repeated command ids,
    queries by verb, CURVE connections refused, malformed frames by
    reason, and the service instances this control sees up and down.

    Cluster-wide, exported by the active control only (a standby's
    families are hidden, so that Prometheus never sums one figure over
    several controls): deliveries by state and channel (the delivery_count
    counters), chunks of the newest run by state, the age of the oldest
    unfinished run, and held notices past their release time. The control
    actor reads them in one statement every interval (bf_control_metrics_
    tick); a scrape reads the last snapshot, never PostgreSQL.

    Labels stay bounded: a verb control does not know is "other"; reasons
    are bf_wire's rc names; states and channels are the database's CHECKed
    values; instances are counted per service, never named.

    Thread: the control actor calls everything but init (bf_metrics
    atomics make the values readable from the scraping thread).  */

#ifndef BF_CONTROL_METRICS_H_INCLUDED
#define BF_CONTROL_METRICS_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>

/*  Registers every control metric now, so that a scrape shows them at 0
    before the first event (safe to call again). The cluster-wide families
    start hidden.  */
void bf_control_metrics_init (void);

/*  A command (or a refused query) reached an outcome: "stored",
    "rejected", "rate_limited", "unavailable" (not stored: the database),
    "done", "failed" (the service's answer; case is ignored) or "gave_up".
    verb NULL does nothing.  */
void bf_control_metrics_command (const char *verb, const char *outcome);

/*  A command id that was already stored was answered from the store.  */
void bf_control_metrics_repeated (void);

/*  A query was taken (answered now or handed to the reporter).  */
void bf_control_metrics_query (const char *verb);

/*  The ZAP handler refused a CURVE connection.  */
void bf_control_metrics_curve_refused (void);

/*  A frame was dropped as malformed; reason is bf_wire_rc_name's.  */
void bf_control_metrics_malformed (const char *reason);

/*  Instance of service was seen up (registration or first heartbeat) or
    went down (silent for three heartbeat intervals). A down instance stays
    counted down until it is up again, or for S_DOWN_KEEP_MS (services send
    no goodbye: one stopped on purpose is down for that long).  */
void bf_control_metrics_instance (const char *service, const char *instance, bool up);

/*  This control stepped down: it forgets every instance.  */
void bf_control_metrics_instances_clear (void);

/*  Once per turn of the control actor's loop. While active, refreshes the
    cluster-wide snapshot from conn when interval_ms has passed since the
    last refresh (at once after becoming active) and shows those families
    once it has figures; while standby, hides them. Also retires down
    instances kept long enough.  */
void bf_control_metrics_tick (PGconn *conn, bool active, int interval_ms);

#endif
