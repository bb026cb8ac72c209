/*  mp_esmtp — the ESMTP dialogue of one session: commands, AUTH and the transaction.

    EHLO/HELO, MAIL FROM (with SIZE=), RCPT TO (up to 100), DATA (mp_mail takes the message),
    RSET, NOOP, QUIT, VRFY, HELP and AUTH PLAIN/LOGIN, with or without an initial response;
    STARTTLS gets 502. Replies go out through mp_smtp. Runs on the SMTP thread.  */

#ifndef MP_ESMTP_H_INCLUDED
#define MP_ESMTP_H_INCLUDED

#include "mp_smtp.h"

/*  Answers one input line (CRLF stripped, NUL-terminated, writable) outside DATA: a command,
    or the next step of an AUTH exchange.  */
void mp_esmtp_command (mp_smtp_session_t *s, char *line);

/*  Ends the mail transaction: sender and recipients forgotten.  */
void mp_esmtp_reset (mp_smtp_session_t *s);

#endif
