/*  mp_mail — one email between DATA and its final ".": the data, and its outcome.

    Dot-stuffing is undone (only CRLF ends a line, as in libcurl's stuffing), the size is
    counted against --max-message-size, the header is kept until the blank line to find the
    Message-ID, and at the final "." the outcome is decided (size, Message-ID, dedup, injected
    failure), counted, recorded and answered (after the email latency). Runs on the SMTP
    thread.  */

#ifndef MP_MAIL_H_INCLUDED
#define MP_MAIL_H_INCLUDED

#include <stddef.h>

#include "mp_smtp.h"

/*  Starts taking a message: the session is in DATA mode from now on.  */
void mp_mail_begin (mp_smtp_session_t *s);

/*  Consumes message data from p[0..n) and stops after CRLF.CRLF, which ends the message (the
    session is back in command mode then). Returns the bytes used.  */
size_t mp_mail_consume (mp_smtp_session_t *s, const char *p, size_t n);

#endif
