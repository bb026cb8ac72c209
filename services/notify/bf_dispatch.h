/*  bf_dispatch — notify's dispatcher actor (design.md "notify"; G4, G5, G9).

    Loop: while dispatch is not paused, claim due deliveries (a row of
    dispatch_claim each, db/016: the delivery row is written once, when its
    attempt ends; a dead dispatcher's claims are taken over by a live one
    one lease after its last renewal), hold those inside quiet hours (state HELD until
    the window ends; released in bill order), render the rest from the active
    template of their channel, decrypt the contact (only here), and hand them
    to the sender (libcurl multi: thousands in flight). Every finished attempt
    is recorded (time, provider, outcome, error) together with the delivery's
    new state, in batched transactions: DELIVERED; FAILED for a permanent
    error or when attempts run out — an email that fails for good falls back
    to SMS; RETRY with exponential backoff and jitter (or the provider's
    Retry-After) otherwise. An email possibly delivered (UNKNOWN: sent,
    no final reply) is resent once after unknown_retry_ms and never falls
    back to SMS (docs/notify.md). Each request carries the delivery id as
    its idempotency key, so an HTTP resend after a crash is accepted once.
    The dispatcher renews its lease (its one row of dispatcher) every
    lease_ms / 3, so a slow reply does not let another dispatcher resend,
    and holds a session lock on its connection: a dispatcher whose session
    ended takeover_grace_ms ago (a crash) is taken over without waiting out
    its lease (docs/notify.md "Claims and takeover"). Its connection is
    fenced (bf_dbfence, lease_ms / 2): cut from PostgreSQL, it notices
    before the server ends its session, and sends nothing it claimed once
    its connection is gone.

    Pipe: the zactor contract; "STATS" -> claimed, delivered, retried,
    failed, held, in flight (decimal strings).
    Fault points: dispatch.after_send (sent, not recorded),
    dispatch.before_record_commit.  */

#ifndef BF_DISPATCH_H_INCLUDED
#define BF_DISPATCH_H_INCLUDED

#include <czmq.h>
#include <stdint.h>

#include "bf_quiet.h"
#include "bf_sender.h"

#include "bf_actor.h"
#include "bf_config.h"

typedef struct {
    const char *conninfo;
    const char *dispatcher_id; /* unique: "host:pid:d1" */
    const char *pii_key_file;  /* as in configuration: the file wins */
    const char *pii_key_hex;
    const char *purpose;       /* "BILL_ISSUED" */
    bf_sender_config_t sender; /* strings must live until zactor_new returns */
    int batch, lease_ms, poll_ms;
    int takeover_grace_ms; /* a dead session's claims are taken after this */
    int max_attempts, backoff_base_ms, backoff_max_ms;
    int unknown_retry_ms;     /* possibly delivered email: resend after; 0 = never */
    int64_t outage_window_ms; /* an outage's failure of a notice this old ends it
                                 (notify.outage_window_ms) */
    bf_quiet_window_t system_quiet;
    int utc_offset_min;
    int64_t clock_offset_ms;   /* injectable clock: now = system time + offset */
    bf_actor_status_t *status; /* a failed start is recorded here (bf_actor.h); may be NULL */
} bf_dispatch_args_t;

void bf_dispatch_actor (zsock_t *pipe, void *args);

/*  Fills *args from notify's settings (docs/configuration.md): the
    database, the PII key, the sender (bf_sender_args_from_config) with
    each of dispatchers dispatchers taking its share of the process's
    concurrency and rate, batching, leases, backoff, the system's quiet
    hours and the clock (notify.clock). dispatcher_id, purpose and status
    are the caller's. Strings point into config. Returns 0, or -1 with the
    reason (naming the setting) in err.  */
int bf_dispatch_args_from_config (bf_dispatch_args_t *args, const bf_config_t *config,
                                  int dispatchers, char *err, size_t errsize);

/*  Loads the PII key and builds (then drops) a sender from args, as every
    dispatcher will, so that a bad setting stops start-up with a message
    that names it. Returns 0, or -1 with the reason in err.  */
int bf_dispatch_args_check (const bf_dispatch_args_t *args, char *err, size_t errsize);

/*  Backoff before attempt n+1 after n failed ones: base * 2^(n-1), at most
    max, times a jitter factor in [0.8, 1.2) drawn from jitter (0..65535).  */
int64_t bf_dispatch_backoff_ms (int attempts, int base_ms, int max_ms, unsigned jitter);

/*  A finished send, as the retry rule sees it (times in ms since the
    epoch, on the dispatcher's clock).  */
typedef struct {
    bf_outcome_t outcome;
    bool outage; /* the provider's outage, not the notice's (bf_send_result_t.outage) */
    int counted; /* attempts against the budget, this one included */
    int max_attempts;
    bool email;               /* an email: falls back to SMS when it fails for good */
    bool possibly_delivered;  /* an earlier attempt ended UNKNOWN */
    int64_t due_ms;           /* the delivery's not_before before its claim */
    int64_t age_ms;           /* the notice's age: since created_at, on the wall clock (not
                                 notify.clock, which tests and demos move) */
    int64_t outage_window_ms; /* notify.outage_window_ms */
    int64_t now_ms;
    int backoff_base_ms, backoff_max_ms;
    unsigned jitter;      /* 0..65535, for bf_dispatch_backoff_ms */
    int retry_after_ms;   /* THROTTLED */
    int unknown_retry_ms; /* notify.email_unknown_retry_ms; 0 = never resent */
} bf_dispatch_failure_t;

typedef struct {
    const char *state;     /* "DELIVERED" | "RETRY" | "FAILED" (static) */
    int64_t not_before_ms; /* when it is due again (now_ms when final) */
    bool outage;           /* the attempt is not counted against the budget */
    bool expired;          /* an outage's failure past outage_window_ms: FAILED */
    bool fallback;         /* an email failed for good: insert its SMS fallback */
} bf_dispatch_next_t;

/*  The retry rule (services/notify/README.md "Retries and provider
    outages"): DELIVERED and DUPLICATE are delivered; PERMANENT fails (an
    email falls back to SMS unless it may have arrived); UNKNOWN is resent
    once after unknown_retry_ms while attempts are left, else fails
    without a fallback; an outage's failure (outage: bf_outage_attributed,
    TRANSIENT or THROTTLED) is RETRY, not counted, due again at due_ms
    (now_ms when that is later) — unless the notice is outage_window_ms
    old (age_ms): then it is FAILED (expired; an email falls
    back to SMS unless it may have arrived); any other TRANSIENT or
    THROTTLED retries after bf_dispatch_backoff_ms (counted) — at least
    retry_after_ms for THROTTLED — until counted reaches max_attempts,
    then fails (with the fallback of an email).  */
bf_dispatch_next_t bf_dispatch_next (const bf_dispatch_failure_t *failure);

#endif
