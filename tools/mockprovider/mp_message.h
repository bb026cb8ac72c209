/*  mp_message — the provider's answer to one POST /v1/messages.

    Everything docs/provider-api.md and README.md say about a message sent over HTTP: the
    checks in their order, idempotency by key (a resend gets 409, the same key with another
    body 422), the content limits, the injected failures, throttles, garbage and lost replies,
    and the outcome counted in the store. It knows nothing of libmicrohttpd: mp_http hands it
    the headers and the body and sends the reply it makes. Thread-safe.  */

#ifndef MP_MESSAGE_H_INCLUDED
#define MP_MESSAGE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "mp_config.h"

#define MP_MESSAGE_MAX_BODY (64 * 1024) /* a longer request body is refused (400) */

/*  What the reply carries besides its status and text.  */
enum {
    MP_MESSAGE_JSON,        /* application/json */
    MP_MESSAGE_THROTTLE,    /* application/json and Retry-After: 1 */
    MP_MESSAGE_GARBAGE,     /* text/html */
    MP_MESSAGE_UNAUTHORIZED /* application/json and WWW-Authenticate: Bearer */
};

/*  One request, as it came. The strings are the caller's; a header that was not sent is NULL.  */
typedef struct {
    const char *content_type;
    const char *authorization;
    const char *key; /* Idempotency-Key */
    const char *body;
    size_t len;
    bool too_large; /* the body exceeded MP_MESSAGE_MAX_BODY and was not kept */
} mp_message_t;

typedef struct {
    unsigned status;
    int kind; /* MP_MESSAGE_JSON, ... */
    size_t len;
    char text[640]; /* the body; NUL-terminated */
} mp_message_reply_t;

/*  Decides the reply to msg under cfg's rules, counts its outcome in the store and, when it
    is accepted, writes it to --record. Returns the channel, or -1 when the request names no
    known channel (no latency applies then).  */
int mp_message_handle (const mp_config_t *cfg, const mp_message_t *msg, mp_message_reply_t *reply);

#endif
