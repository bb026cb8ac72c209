/*  bf_reply — an HTTP provider's reply body turned into what notify keeps
    of it: the provider's message id and, for a refusal, a reason fit for
    a log and the attempt table (docs/provider-api.md: a JSON object,
    {"message_id": "..."} on success, a reason on failure). The status
    code's meaning is bf_sender's (its outcome mapping); this module only
    reads the body.

    The body is read with jansson, strictly: it must be exactly one JSON
    object (RFC 8259), at most BF_REPLY_BODY_MAX bytes, nested at most
    BF_REPLY_DEPTH_MAX deep (the object itself is depth 1), well-formed
    UTF-8, with no NUL byte (raw or as \u0000), no lone surrogate escape,
    no duplicate key at any depth, nothing but white space after it, and
    no number beyond a double's range. Anything else is "not one
    well-formed object" — a garbage reply, which a 2xx status makes
    transient.

    What is read: the top-level member "message_id" when it is a string,
    and the first top-level member (in the order of the body) among
    "reason", "error", "message" and "detail" that is a string. Members of
    other types, nested members and other keys are ignored. Pure
    functions; thread-safe.  */

#ifndef BF_REPLY_H_INCLUDED
#define BF_REPLY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define BF_REPLY_BODY_MAX  (64 * 1024)
#define BF_REPLY_DEPTH_MAX 32
/*  What bf_reply_parse keeps of a reason before it is cleaned (bytes,
    NUL included), and of a cleaned reason (bf_reply_t.reason).  */
#define BF_REPLY_RAW_REASON_MAX 400
#define BF_REPLY_REASON_MAX     201

/*  Reads body (len bytes, need not be NUL-terminated). Copies the message
    id and the reason (as described above, UTF-8, cut at a character
    boundary to fit) into message_id / reason, "" when absent; either
    output may be NULL (its size then ignored). Returns 0, or -1 when the
    body is not one well-formed object within the limits (both outputs
    ""). This is the reader the fuzz target provider_reply checks.  */
int bf_reply_parse (const char *body, size_t len, char *message_id, size_t idsize, char *reason,
                    size_t reasonsize);

/*  A reply as notify keeps it.  */
typedef struct {
    bool parsed;                      /* the body is one well-formed object */
    char message_id[128];             /* "" when absent; control characters as '?' */
    char reason[BF_REPLY_REASON_MAX]; /* "" when none; one clean line, masked */
} bf_reply_t;

/*  Reads a reply body for bf_sender. truncated: more than len bytes came
    (the body was cut), so it is not parsed. When parsed, reason is the
    body's reason (all of it, not bf_reply_parse's cut copy); when not,
    the first 400 bytes of the body stand for it (an HTML error page, a
    proxy's text; bf_mask_text_within, so a contact across byte 400 is
    left out, not shown in part). Either way it is made one line and
    masked (BF_MASK_ONE_LINE and BF_MASK_TOKENS: contacts, push tokens and
    the request's own contact, which may be NULL), then cut to fit.  */
void bf_reply_read (bf_reply_t *self, const char *body, size_t len, bool truncated,
                    const char *contact);

#endif
