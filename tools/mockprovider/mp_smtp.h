/*  mp_smtp — the SMTP server: one thread, epoll, non-blocking sockets.

    It owns the sessions: accepts them, reads their input and splits it into command lines
    (mp_esmtp answers them) or message data (mp_mail takes it), writes their replies, holds a
    reply back while the email latency runs (other sessions carry on), closes idle sessions
    and, when out of descriptors, stops accepting for 100 ms instead of spinning.

    Everything here runs on the SMTP thread, except mp_smtp_open, mp_smtp_start and
    mp_smtp_stop, which main calls.  */

#ifndef MP_SMTP_H_INCLUDED
#define MP_SMTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp_config.h"

/*  What the next input line is: a command, message data, or a step of an AUTH exchange.  */
enum { MP_SMTP_COMMAND, MP_SMTP_DATA, MP_SMTP_AUTH_PLAIN, MP_SMTP_AUTH_USER, MP_SMTP_AUTH_PASS };

/*  One SMTP connection. The server's fields come first, then the dialogue's (mp_esmtp), then
    the message's (mp_mail).  */
typedef struct mp_smtp_session {
    /*  The server's: links, socket, buffers, the delayed reply.  */
    struct mp_smtp_session *prev, *next;   /* all open sessions; next also links the dead list */
    struct mp_smtp_session *wprev, *wnext; /* sessions waiting for a delayed reply, due order */
    const mp_config_t *cfg;
    int fd;         /* -1 once closed */
    bool waiting;   /* a reply is delayed; input is not processed meanwhile */
    bool closing;   /* close once the output is flushed */
    bool shutting;  /* an outage began: the message in progress ends, then 421 and close */
    int64_t due_ms; /* when the delayed reply goes out */
    int64_t active_ms;
    char *in; /* input not processed yet */
    size_t in_len, in_cap;
    char *out; /* replies the socket did not take yet */
    size_t out_len, out_off, out_cap;
    char reply[256]; /* the delayed reply */
    size_t reply_len;
    /*  The dialogue's.  */
    int mode;     /* MP_SMTP_COMMAND, ... */
    bool greeted; /* HELO/EHLO seen */
    bool authed;  /* AUTH succeeded */
    bool in_mail; /* MAIL FROM accepted, transaction open */
    char *rcpt;   /* accepted RCPT addresses, each NUL-terminated */
    size_t rcpt_len, rcpt_cap;
    unsigned nrcpt;
    char user[256]; /* AUTH LOGIN: the user name given */
    /*  The message's, during DATA.  */
    int dstate; /* position relative to line starts and the final dot */
    uint64_t size;
    char *hdr; /* the message's first bytes, to find Message-ID */
    size_t hdr_len, hdr_cap;
    char *msg; /* --record: the whole message (up to the size limit) */
    size_t msg_len, msg_cap;
    bool hdr_done;
} mp_smtp_session_t;

/*  Opens the listener on cfg's --bind address and --smtp-port, and the epoll set. cfg must
    outlive the server. Returns the bound port, or -1 (logged).  */
int mp_smtp_open (const mp_config_t *cfg);

/*  Starts the SMTP thread. Returns 0, or -1 (logged).  */
int mp_smtp_start (void);

/*  Makes the thread send every delayed reply at once, close every session and end; joins it.  */
void mp_smtp_stop (void);

/*  Sends data now, keeping what the socket does not take for later. A client that leaves
    64 KiB of replies unread is dropped.  */
void mp_smtp_send (mp_smtp_session_t *s, const char *data, size_t len);

/*  mp_smtp_send of format's expansion (cut at 511 bytes).  */
void mp_smtp_sendf (mp_smtp_session_t *s, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  Ends the session after the replies sent so far.  */
void mp_smtp_finish (mp_smtp_session_t *s);

/*  Sends reply now, or — when delay is set and email latency configured — after the latency
    (slow_ms instead when not 0): the session stops processing input until then, other sessions
    carry on. While stopping, it is sent at once.  */
void mp_smtp_reply_later (mp_smtp_session_t *s, const char *reply, size_t len, bool delay,
                          unsigned slow_ms);

#endif
