/*  bf_sender — notify's send engine: one libcurl multi handle that keeps
    many deliveries in flight at once to the three providers of
    docs/provider-api.md (email over SMTP; SMS/LMS and push over the HTTP
    JSON API), with a concurrency cap, a token-bucket rate limit and a
    circuit breaker per provider (design.md "notify"; G4, G5, G8).

    Threading: a sender belongs to one thread (a dispatcher actor). Only
    bf_sender_wakeup may be called from another thread.

    The loop a dispatcher runs:

        while (work) {
            while (have a due request r for provider p && bf_sender_ready (s, p))
                if (bf_sender_submit (s, &r) == 0) -> r is in flight
            bf_sender_poll (s, wait, on_done, ctx);   // wait: see bf_sender_wait_ms
        }

    Every submit that returned 0 is reported exactly once through the done
    callback of a later bf_sender_poll (unless the sender is destroyed
    first). Idempotency: an HTTP request carries Idempotency-Key = delivery
    id; an email carries Message-ID <delivery-id@billflow>; both are the same
    on every attempt, so a provider (or a mail client) sees one message
    however often a delivery is retried.

    Outcome mapping (the dispatcher acts only on bf_outcome_t):
    HTTP   200/201/202 with {"message_id": "..."}  DELIVERED (message id kept)
           2xx without a string message_id, or a body that is not one JSON
           object (or over 64 KiB)                 TRANSIENT ("garbage")
           409                                     DUPLICATE (message id kept if any)
           400, 404, 422                           PERMANENT (reason from the body,
                                                   sanitised, contacts masked)
           429                                     THROTTLED (retry_after_ms from
                                                   Retry-After, seconds or HTTP-date,
                                                   capped at 1 h; 1000 when absent
                                                   or unparsable)
           5xx, timeout, connection error, any other status  TRANSIENT
    SMTP   250 after DATA                          DELIVERED
           4xx anywhere                            TRANSIENT
           5xx on MAIL FROM, RCPT TO, DATA, or after the message   PERMANENT
           5xx or failure while setting the session up (greeting, EHLO,
           STARTTLS, AUTH): TRANSIENT — those say nothing about this message,
           and failing every email permanently on a relay misconfiguration
           would turn the whole month into SMS fallbacks; instead they count
           for the breaker.
           connection failure, timeout before the whole message was
           sent                                    TRANSIENT
           timeout or connection loss after the whole message was sent,
           waiting for the reply to the final "."  UNKNOWN (possibly
                                                   delivered; counts as
                                                   transient for the breaker)
    status_code holds the HTTP status or the last SMTP reply code (0 when
    none arrived).

    Scope of a failure (result.provider_wide, for bf_outage): provider-wide
    are the failures that say nothing about the message — no connection,
    a reset or a timeout before the message was sent, HTTP 5xx and 429,
    an SMTP session that failed while being set up, an SMTP 421 (service
    not available) at any step. About the message, and never the
    outage's: a 2xx without a message id, any other HTTP status, an SMTP
    4xx to MAIL FROM, RCPT TO or DATA (a mailbox busy or full, greylisting),
    an SMTP reply that makes no sense at its step.

    Outage (result.outage, bf_outage_attributed): the provider's last
    success before this result (result.provider_last_success_ms: a
    DELIVERED, DUPLICATE or PERMANENT reply, the provider answered) came
    before the attempt started, and the failure is provider-wide; or the
    breaker is not closed. Such a failure also makes the provider back off
    (bf_admission_back_off: notify.backoff_base_ms doubling per failed
    round, at most the lesser of notify.backoff_max_ms and the breaker's
    open time; a success ends it), since its notice goes back to its place
    in the claim order and would otherwise be sent again at once.

    Circuit breaker (per provider): a window of the last 100 outcomes no
    older than 60 s. When it holds >= breaker_min_samples outcomes and
    TRANSIENT ones (timeouts and garbage included; PERMANENT, DUPLICATE and
    DELIVERED count as healthy; THROTTLED is not counted) make up
    >= breaker_error_pct %, the breaker opens for breaker_open_ms. Then it is
    half-open: exactly one probe may go out. A probe that ends TRANSIENT
    reopens it; THROTTLED leaves it half-open (the throttle pause applies);
    anything else closes it with an empty window. Results of requests started
    before the last close are not counted. Changes are logged (open at WARN,
    half-open and closed at INFO) and counted (bf_sender_breaker). The
    dispatcher does not count an outage's failure (above) against the
    notice's retry budget (services/notify/README.md "Retries and provider
    outages").

    Rate limit (per provider): a token bucket refilled at rate_per_s with a
    burst of a tenth of a second's worth (at least 1), starting full; so any
    one-second window carries at most 1.1 x rate_per_s requests and 100
    requests at 50/s take about 1.9 s. A provider that answers 429 with a
    positive Retry-After is paused (bf_sender_ready false) until then.

    Logging: contacts never reach a log unmasked (bf_mask_email,
    bf_mask_phone, push tokens as their first 6 characters + "…"); reasons
    and SMTP replies copied from providers are scrubbed the same way.  */

#ifndef BF_SENDER_H_INCLUDED
#define BF_SENDER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf_admission.h"

typedef enum { BF_SEND_EMAIL, BF_SEND_SMS, BF_SEND_LMS, BF_SEND_PUSH } bf_send_kind_t;

/*  SMS and LMS go to the SMS provider.  */
typedef enum {
    BF_PROVIDER_EMAIL,
    BF_PROVIDER_SMS,
    BF_PROVIDER_PUSH,
    BF_PROVIDER_COUNT
} bf_provider_t;

typedef enum {
    BF_OUTCOME_DELIVERED,
    BF_OUTCOME_DUPLICATE, /* 409: accepted before; counts as delivered */
    BF_OUTCOME_TRANSIENT, /* retry with backoff */
    BF_OUTCOME_PERMANENT, /* no retry (email: fall back to SMS) */
    BF_OUTCOME_THROTTLED, /* retry after retry_after_ms */
    BF_OUTCOME_UNKNOWN,   /* email possibly delivered: the whole message was
                             sent, then a timeout or a lost connection before
                             the server's final reply. Not a failure to retry
                             soon: a resend may be a second copy. */
} bf_outcome_t;

/*  One send. Strings are copied on submit. to: email address, phone
    number or push token. title: email subject, LMS/push title (ignored for
    SMS, whose JSON title is always null). text: plain body (required for
    SMS/LMS/push; for email at least one of text and html). attempt: 1 for
    the first try (logged only). cookie: the caller's, handed back.  */
typedef struct {
    int64_t delivery_id; /* > 0; the idempotency key */
    bf_send_kind_t kind;
    const char *to;
    const char *title;
    const char *text;
    const char *html;
    int attempt;
    void *cookie;
    /*  Email: the Date header's time (seconds since the epoch), fixed when
        the message is first rendered so that every attempt sends the same
        bytes; 0 = the time of sending.  */
    int64_t date_s;
} bf_send_request_t;

typedef struct {
    bf_outcome_t outcome;
    int status_code;                 /* HTTP status / SMTP reply code; 0 = none */
    char error[256];                 /* "" when delivered; never holds a contact */
    char provider_message_id[128];   /* HTTP providers' message_id; "" otherwise */
    int retry_after_ms;              /* THROTTLED only */
    int64_t started_ms, finished_ms; /* wall clock, ms since the epoch */
    const char *provider_name;       /* "email" | "sms" | "push" (static) */
    bool provider_wide;              /* a failure of the provider-wide kind (above) */
    /*  The provider's last success before this result (finished_ms of a
        DELIVERED, DUPLICATE or PERMANENT result; wall clock); 0 = none.  */
    int64_t provider_last_success_ms;
    bool outage; /* the provider's outage, not the notice's failure (above) */
} bf_send_result_t;

/*  Called by bf_sender_poll for each finished send. request is the
    sender's copy (valid during the call only; cookie is the caller's).
    The callback may call bf_sender_submit, never bf_sender_destroy.  */
typedef void (*bf_send_done_fn) (void *context, const bf_send_request_t *request,
                                 const bf_send_result_t *result);

/*  A provider whose URL is NULL is not configured (never ready).
    Defaults for values <= 0: concurrency 64, rate unlimited, timeout
    10000 ms, breaker 50 % of at least 20 samples, open 30000 ms.
    smtp_from may be "Name <addr>" (ASCII); smtp_url is smtp:// or smtps://
    (a path names the EHLO domain), sms_url / push_url are http(s) base URLs
    (".../v1/messages" is appended).  */
typedef struct {
    const char *smtp_url, *smtp_from, *smtp_username, *smtp_password;
    bool smtp_starttls; /* require TLS (CURLUSESSL_ALL) */
    /*  AUTH over plain smtp:// without STARTTLS is refused (bf_sender_new
        fails) unless this is set: for a relay on this host.  */
    bool smtp_allow_plain_auth;
    /*  Plain smtp:// (bf_smtp) phase timeouts, RFC 5321 4.5.3.2; 0 = the
        RFC's value (bf_smtp.h). smtps:// and STARTTLS (libcurl) use the
        email timeout for the whole message.  */
    int smtp_greeting_ms, smtp_command_ms, smtp_data_ms, smtp_block_ms, smtp_end_ms;
    const char *sms_url, *sms_token, *push_url, *push_token;
    int concurrency[BF_PROVIDER_COUNT];         /* max in flight */
    int rate_per_s[BF_PROVIDER_COUNT];          /* 0 = unlimited */
    int timeout_ms;                             /* whole transfer */
    int provider_timeout_ms[BF_PROVIDER_COUNT]; /* per provider; 0 = timeout_ms */
    int breaker_error_pct, breaker_min_samples, breaker_open_ms;
    /*  The provider's back-off after an outage's failure (above): first
        pause and longest (capped by breaker_open_ms); 0 = none.  */
    int backoff_base_ms, backoff_max_ms;
} bf_sender_config_t;

typedef struct _bf_sender_t bf_sender_t;

/*  Creates a sender (config strings are copied). Raises RLIMIT_NOFILE to
    its hard limit. Returns NULL with a reason in err on bad config or
    failure.  */
bf_sender_t *bf_sender_new (const bf_sender_config_t *config, char *err, size_t errsize);

/*  Aborts transfers still in flight (their results are not reported),
    frees everything, sets *self_p to NULL. Safe on NULL.  */
void bf_sender_destroy (bf_sender_t **self_p);

/*  True when a submit to provider would start now: configured, below its
    concurrency, a rate token available, not paused by a 429, breaker closed
    or half-open with no probe out.  */
bool bf_sender_ready (bf_sender_t *self, bf_provider_t provider);

/*  Milliseconds until provider may become ready by time alone: 0 = ready
    now; > 0 = rate token, 429 pause or open breaker; -1 = only a
    finishing transfer can make it ready (concurrency full, probe out) or
    the provider is not configured. A good poll timeout is this value
    (bounded) when the dispatcher has work waiting for this provider.  */
int bf_sender_wait_ms (bf_sender_t *self, bf_provider_t provider);

/*  Starts a send. Returns 0 when accepted: it will be reported by a later
    poll. A request whose data cannot be sent (an email address with control
    characters or no '@', an empty number, a missing body) is also accepted
    but reported, without contacting anyone or taking a rate token, as
    PERMANENT with error "invalid request: ...". Returns -1, keeping
    nothing, when the provider is not ready, on out of memory, or on a
    programming error (NULL, unknown kind, delivery_id <= 0; logged): the
    caller keeps the request for later.  */
int bf_sender_submit (bf_sender_t *self, const bf_send_request_t *request);

/*  Drives the transfers: waits up to timeout_ms (curl_multi_poll; returns
    early when a transfer finishes or on bf_sender_wakeup), then calls
    done (context, request, result) for every finished send (done may be
    NULL). Does not wait when results are already pending. Returns how many
    finished, or -1 on an internal libcurl error.  */
int bf_sender_poll (bf_sender_t *self, int timeout_ms, bf_send_done_fn done, void *context);

/*  Makes a bf_sender_poll blocked in another thread return. Thread-safe.  */
void bf_sender_wakeup (bf_sender_t *self);

int bf_sender_inflight (const bf_sender_t *self, bf_provider_t provider);
bool bf_sender_configured (const bf_sender_t *self, bf_provider_t provider);

/*  "closed" | "open" | "half-open".  */
const char *bf_sender_breaker_state (const bf_sender_t *self, bf_provider_t provider);

/*  The provider's breaker state now (bf_admission_breaker) and, when
    counts is not NULL, its changes so far (bf_admission_breaker_counts).
    Closed and zeros for a provider that is not configured.  */
bf_breaker_state_t bf_sender_breaker (const bf_sender_t *self, bf_provider_t provider,
                                      bf_breaker_counts_t *counts);

/*  The provider a kind goes to; names for logs and the attempt table.  */
bf_provider_t bf_sender_provider_of (bf_send_kind_t kind);
const char *bf_sender_provider_name (bf_provider_t provider); /* "email" | "sms" | "push" */
const char *bf_sender_outcome_name (bf_outcome_t outcome);    /* "delivered", "duplicate",
                                                                 "transient", "permanent",
                                                                 "throttled", "unknown" */

/*  The provider-reply reader that bf_sender applies to every HTTP reply
    (bf_reply_parse; bf_reply.h has the strictness rules and limits): body
    (len bytes, need not be NUL-terminated) must be exactly one JSON
    object. Copies its top-level string "message_id" and its first
    top-level string "reason", "error", "message" or "detail" (UTF-8, cut
    at a character boundary to fit) into message_id / reason, "" when
    absent. Returns 0, or -1 when the body is
    not one well-formed object (both outputs "").  */
int bf_sender_parse_reply (const char *body, size_t len, char *message_id, size_t idsize,
                           char *reason, size_t reasonsize);

#endif
