/*  bf_compose — a send request turned into the bytes that go out, and the
    checks that decide whether it can go out at all: the JSON body of the
    HTTP providers and the RFC 5322 / MIME message of email
    (docs/provider-api.md). No network, no libcurl; pure functions of
    their arguments (and, for an email without a fixed date, the time).

    The bytes are part of the idempotency contract: a provider that sees
    an Idempotency-Key again expects the same body byte for byte (422
    otherwise), and a retried email carries the same message. So the same
    request always composes to the same bytes, and any change to what is
    composed here changes what a retry of an older attempt sends.

    Every appender writes into a bf_text_buf_t and returns 0, or -1 when
    memory ran out (the buffer then holds a partial result: discard it).
    Thread-safe.  */

#ifndef BF_COMPOSE_H_INCLUDED
#define BF_COMPOSE_H_INCLUDED

#include <stdbool.h>

#include "bf_sender.h"
#include "bf_text.h"

/*  Why request can never be sent, or NULL when it can: no recipient; an
    email address over 254 bytes, with spaces, control characters or any
    of <>(),;:"\[] , or without exactly one '@' between a local part and a
    domain; an email with neither text nor html; a phone number with
    anything but digits and "+-() " or with under 3 digits or over 32
    bytes; a push token with a space or over 4096 bytes; control
    characters in a number or token; an SMS/LMS/push without text. The
    reason is a static string ("malformed phone number").  */
const char *bf_compose_invalid (const bf_send_request_t *request);

/*  True when text holds an ASCII control character (C0 or DEL): such text
    cannot go into a header, a URL or an SMTP command.  */
bool bf_compose_has_ctl (const char *text);

/*  Checks an smtp_from setting, "addr@host" or "Name <addr@host>" in
    ASCII, and stores the bare address (for MAIL FROM) in *address
    (malloc'd; the caller frees). Returns 0, or -1 with *why set to a
    static reason (*address NULL).  */
int bf_compose_mail_from (const char *from, char **address, const char **why);

/*  Appends text as a JSON string: '"' and '\' escaped, \n \r \t as such,
    other control characters (C0, DEL) as \u00XX, valid UTF-8 as it is and
    each malformed byte as \ufffd.  */
int bf_compose_json_string (bf_text_buf_t *buf, const char *text);

/*  Appends the HTTP providers' body:
    {"channel":"SMS","to":"...","title":null,"body":"..."} with channel
    SMS, LMS or PUSH; title is null for SMS and when request->title is
    NULL.  */
int bf_compose_json (bf_text_buf_t *buf, const bf_send_request_t *request);

/*  Appends "Subject:" and the title as RFC 2047 encoded-words
    ("=?UTF-8?B?...?="), each from at most 39 bytes cut at character
    boundaries (a malformed byte counts as one character), folded onto
    continuation lines (CRLF, space) so no line exceeds 78 characters, and
    a final CRLF. Control characters become spaces; an empty title gives
    an empty field ("Subject:" CRLF: RFC 2047 has no empty encoded-word).  */
int bf_compose_subject (bf_text_buf_t *buf, const char *title);

/*  Appends the whole RFC 5322 message of an email: Date (request->date_s,
    or now when 0), From (from as configured), To, Subject, Message-ID
    <delivery-id@billflow>, MIME-Version, Auto-Submitted; then a text/plain
    and/or text/html part in UTF-8, base64 in 76-character lines of
    canonical (CRLF) text, inside multipart/alternative with the boundary
    "=_bf_<delivery-id>" when both are there. Call only for a request
    bf_compose_invalid accepts.  */
int bf_compose_email (bf_text_buf_t *buf, const bf_send_request_t *request, const char *from);

#endif
