/*  bf_smtp — a non-blocking SMTP client for bf_sender's email provider:
    a pool of plain-TCP sessions to one server (smtp://host:port[/ehlo]),
    all waited on through one epoll descriptor, so thousands of messages
    can wait for their final reply at once without blocking each other.

    Why not libcurl: libcurl 7.88 waits for the reply to the end of the
    message (after the final ".") in a blocking loop inside
    curl_multi_perform, so one slow server reply freezes every transfer of
    the multi handle. TLS (smtps://, STARTTLS) is not handled here: those
    configurations keep going through libcurl.

    A session: connect -> 220 greeting -> EHLO (HELO when EHLO is refused)
    -> AUTH PLAIN or LOGIN when a username is configured and the server
    offers AUTH -> for each message: MAIL FROM, RCPT TO, DATA, the body
    (dot-stuffed, CRLF line ends), "." and the final reply. A session is
    reused for the next message; after a failed message it sends RSET
    first. A multi-line reply is read to its last line ("ddd " or "ddd")
    before it is acted on, whatever the order of the EHLO keywords.

    Timeouts are per phase, as RFC 5321 4.5.3.2 recommends: each one runs
    from the command (or the connect) to its reply; the data block timeout
    runs from each write of the body that made progress; the end-of-data
    timeout from the last byte of the message to the final reply. A message
    that times out or loses its connection while waiting for that final
    reply is reported with possibly_delivered set: the server may have
    accepted it, and a resend may give the recipient a second copy.

    AUTH is only sent when the configuration allows it over this plain
    (unencrypted) connection: bf_smtp_new refuses credentials without
    allow_plain_auth. A session that breaks fails its message and is dropped; the
    next message opens a new one. A message on a reused (pooled) session
    that breaks, or is answered 421 (closing) at any step, before its final
    "." went out is sent again once, in the same submit, on a fresh session:
    the server restarted or closed an idle connection under us, and it has
    not taken the message. The other idle sessions, as old, are dropped
    with it. After the final "." nothing is resent (possibly delivered). A
    421 or a break on a fresh session is reported: that is the server now.

    Threading: one thread, like bf_sender.  */

#ifndef BF_SMTP_H_INCLUDED
#define BF_SMTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bf_smtp_t bf_smtp_t;

typedef struct {
    const char *url;                 /* smtp://host[:port][/ehlo-domain] */
    const char *username, *password; /* AUTH when username is not NULL */
    bool allow_plain_auth;           /* credentials may cross this plain connection */
    int max_sessions;                /* > 0 */
    int queue_ms;                    /* most time a message waits for a session; > 0 */
    int connect_ms;                  /* TCP connect; > 0 */
    /*  RFC 5321 4.5.3.2 timeouts; 0 takes the RFC's value (in brackets).  */
    int greeting_ms; /* the 220 greeting [5 min] */
    int command_ms;  /* EHLO, HELO, AUTH, MAIL, RCPT, RSET replies [5 min] */
    int data_ms;     /* the 354 reply to DATA [2 min] */
    int block_ms;    /* each write of the message body [3 min] */
    int end_ms;      /* the reply to the final "." [10 min] */
} bf_smtp_config_t;

#define BF_SMTP_GREETING_MS 300000
#define BF_SMTP_COMMAND_MS  300000
#define BF_SMTP_DATA_MS     120000
#define BF_SMTP_BLOCK_MS    180000
#define BF_SMTP_END_MS      600000

/*  Why a message did not go through.  */
typedef enum {
    BF_SMTP_OK,         /* final reply 2xx */
    BF_SMTP_REPLY,      /* the server refused: code/line tell what */
    BF_SMTP_CONNECT,    /* could not connect (or resolve the host) */
    BF_SMTP_TIMEOUT,    /* a phase timeout (or queue_ms) passed: see timeout_ms */
    BF_SMTP_BROKEN,     /* connection lost or a reply we cannot parse */
    BF_SMTP_UNEXPECTED, /* a reply code that makes no sense at that step */
} bf_smtp_error_t;

/*  The longest reply line bf_smtp reads (RFC 5321 4.5.3.1.5 allows 512
    bytes); a longer one breaks the session ("reply line too long").  */
#define BF_SMTP_LINE_MAX 4096

typedef struct {
    bf_smtp_error_t error;
    int code;                        /* the last reply code of this message; 0 = none */
    bool in_setup;                   /* failed during greeting / EHLO / HELO / AUTH */
    bool possibly_delivered;         /* the whole message was sent, then TIMEOUT or
                                        BROKEN before the final reply */
    int timeout_ms;                  /* BF_SMTP_TIMEOUT: the timeout that fired */
    char line[BF_SMTP_LINE_MAX + 1]; /* the reply line of the failing step (raw,
                                unscrubbed, whole: a cut copy could split a
                                contact so that masking no longer sees it) or a
                                short description when no reply applies */
} bf_smtp_result_t;

/*  Called by bf_smtp_perform for every finished message. result is valid
    during the call only. The callback may call bf_smtp_submit, never
    bf_smtp_destroy.  */
typedef void (*bf_smtp_done_fn) (void *context, void *cookie, const bf_smtp_result_t *result);

/*  True when url is one this client serves: smtp:// with a host, an
    optional numeric port and an optional plain path (no userinfo, query or
    percent escapes).  */
bool bf_smtp_url_ok (const char *url);

/*  Creates a client (strings copied). No connection is made yet. The host
    is resolved here; when that fails it is tried again on each connect.
    Returns NULL (reason in err) on bad config (credentials without
    allow_plain_auth included) or out of memory.  */
bf_smtp_t *bf_smtp_new (const bf_smtp_config_t *config, char *err, size_t errsize);

/*  Sends QUIT to idle sessions (best effort, never waits), closes every
    session and drops messages in flight without reporting them. Sets
    *self_p to NULL; safe on NULL.  */
void bf_smtp_destroy (bf_smtp_t **self_p);

/*  Queues one message for rcpt. message is the RFC 5322 text (CRLF line
    ends); it is copied, dot-stuffed and terminated. cookie comes back in
    the done callback. Returns 0 (the message will be reported by a later
    bf_smtp_perform, even if it fails at once) or -1 on out of memory.  */
int bf_smtp_submit (bf_smtp_t *self, const char *mail_from, const char *rcpt, const char *message,
                    size_t len, void *cookie);

/*  Does all the I/O that is ready without waiting, enforces timeouts, and
    reports finished messages through done. Returns how many finished.  */
int bf_smtp_perform (bf_smtp_t *self, bf_smtp_done_fn done, void *context);

/*  Closes every idle session (QUIT best effort, never waits): after the
    server failed as a whole, the next message (a breaker's probe, the
    drain after recovery) starts on a fresh connection rather than on one
    from before the failure. Sessions carrying a message are left alone.
    Returns how many were closed.  */
int bf_smtp_drop_idle (bf_smtp_t *self);

/*  The epoll descriptor: readable when bf_smtp_perform has work.  */
int bf_smtp_fd (const bf_smtp_t *self);

/*  Milliseconds until the next deadline (0 = results or expiries are
    waiting now), or -1 when nothing is in flight.  */
int bf_smtp_timeout_ms (bf_smtp_t *self);

/*  Messages submitted and not yet reported; open sessions.  */
int bf_smtp_inflight (const bf_smtp_t *self);
int bf_smtp_sessions (const bf_smtp_t *self);

#endif
