/*  mp_mail — one email between DATA and its final ".": the data, and its outcome.  */

#include "mp_mail.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mp_buf.h"
#include "mp_esmtp.h"
#include "mp_log.h"
#include "mp_rand.h"
#include "mp_record.h"
#include "mp_store.h"

#define S_SMTP_HEADER_MAX (64 * 1024) /* header bytes kept to find Message-ID */

/*  Where DATA is relative to line starts and the final dot.  */
enum { S_D_BOL, S_D_MID, S_D_CR, S_D_DOT, S_D_DOTCR };

void
mp_mail_begin (mp_smtp_session_t *s)
{
    s->mode = MP_SMTP_DATA;
    s->dstate = S_D_BOL;
    s->size = 0;
    s->hdr_len = 0;
    s->msg_len = 0;
    s->hdr_done = false;
}

/*  Finds the Message-ID header in the captured head of the message (unfolding continuation
    lines). Returns its trimmed value in out, or false when there is none.  */
static bool
s_message_id (const char *hdr, size_t len, char *out, size_t size)
{
    const char *p = hdr, *end = hdr + len;
    while (p < end) {
        const char *eol = memchr (p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        if (line_end == p || (line_end - p == 1 && *p == '\r'))
            return false; /* the blank line: end of the header */
        if (line_end - p > 11 && strncasecmp (p, "Message-ID:", 11) == 0) {
            size_t n = 0;
            const char *v = p + 11;
            for (;;) {
                for (; v < line_end; v++) {
                    if (*v == '\r')
                        continue;
                    if (n + 1 >= size)
                        return false;
                    out[n++] = *v;
                }
                /*  A continuation line starts with white space.  */
                if (!eol || eol + 1 >= end || (eol[1] != ' ' && eol[1] != '\t'))
                    break;
                v = eol + 1;
                eol = memchr (v, '\n', (size_t)(end - v));
                line_end = eol ? eol : end;
            }
            out[n] = '\0';
            size_t a = 0;
            while (out[a] == ' ' || out[a] == '\t')
                a++;
            while (n > a && (out[n - 1] == ' ' || out[n - 1] == '\t'))
                n--;
            memmove (out, out + a, n - a);
            out[n - a] = '\0';
            return n > a;
        }
        p = eol ? eol + 1 : end;
    }
    return false;
}

/*  Accepts the message under its Message-ID (mid) and counts its recipients. Without
    --smtp-dedup a known Message-ID is delivered again, like any mail server does: a second
    copy, counted as a duplicate delivery. Returns the outcome, reply set.  */
static int
s_accept (mp_smtp_session_t *s, const char *mid, char *reply, size_t size)
{
    uint64_t found = 0;
    uint64_t id = mp_store_next_id ();
    int rc = mp_store_add (MP_STORE_MESSAGE_IDS, mid, strlen (mid), id, &found);
    if (rc == 0) {
        mp_store_add_redelivery ();
        rc = 1;
    }
    for (size_t off = 0; rc > 0 && off < s->rcpt_len; off += strlen (s->rcpt + off) + 1)
        if (mp_store_recipient_add (MP_EMAIL, s->rcpt + off, strlen (s->rcpt + off)) == 0)
            rc = -1;
    if (rc < 0) {
        snprintf (reply, size, "451 4.3.1 Out of memory\r\n");
        return MP_FAILED;
    }
    mp_record_email (id, mid, s->rcpt, s->rcpt_len, s->msg, s->msg_len);
    snprintf (reply, size, "250 2.0.0 Ok: queued as m-%" PRIu64 "\r\n", id);
    return MP_ACCEPTED;
}

/*  Decides the outcome of the message just ended. Returns it, with the reply set.  */
static int
s_decide (mp_smtp_session_t *s, char *reply, size_t size)
{
    const mp_config_t *cfg = s->cfg;
    char mid[MP_MAX_KEY + 1];
    uint64_t id = 0;
    if (s->size > cfg->max_message_size) {
        snprintf (reply, size, "552 5.3.4 Message exceeds %zu bytes\r\n", cfg->max_message_size);
        return MP_REJECTED;
    }
    if (!s_message_id (s->hdr, s->hdr_len, mid, sizeof mid)) {
        snprintf (reply, size, "554 5.6.0 Message-ID header required (at most %d bytes)\r\n",
                  MP_MAX_KEY);
        return MP_REJECTED;
    }
    if (cfg->smtp_dedup && mp_store_find (MP_STORE_MESSAGE_IDS, mid, strlen (mid), &id)) {
        snprintf (reply, size, "250 2.0.0 Ok: already have this message as m-%" PRIu64 "\r\n", id);
        return MP_DUPLICATE;
    }
    if (!cfg->fail_permanent && mp_rand_pct () < cfg->fail_pct[MP_EMAIL]) {
        snprintf (reply, size, "451 4.3.0 Temporary failure (injected), try again\r\n");
        return MP_FAILED;
    }
    return s_accept (s, mid, reply, size);
}

/*  The final "." arrived: decide the outcome, count it, reply (after the latency).  */
static void
s_data_end (mp_smtp_session_t *s)
{
    const mp_config_t *cfg = s->cfg;
    char reply[256];
    s->mode = MP_SMTP_COMMAND;
    int outcome = s_decide (s, reply, sizeof reply);
    mp_store_add_outcome (MP_EMAIL, outcome);
    if (cfg->verbose) {
        char masked[64];
        size_t first = s->rcpt_len ? strlen (s->rcpt) : 0;
        mp_log ("smtp email to=%s rcpts=%u size=%" PRIu64 " -> %.*s",
                first ? mp_log_mask (s->rcpt, first, masked, sizeof masked) : "-", s->nrcpt,
                s->size, (int)strcspn (reply, "\r"), reply);
    }
    mp_esmtp_reset (s);
    /*  A slow server: the message is taken (recorded above), the final reply is late.  */
    unsigned slow
        = cfg->email_slow_pct > 0 && mp_rand_pct () < cfg->email_slow_pct ? cfg->email_slow_ms : 0;
    mp_smtp_reply_later (s, reply, strlen (reply), !cfg->latency_at_data || slow, slow);
}

/*  Message bytes after dot-unstuffing: counted, and the head kept until the blank line.  */
static void
s_emit (mp_smtp_session_t *s, const char *bytes, size_t n)
{
    s->size += n;
    if (mp_record_on () && s->size <= s->cfg->max_message_size)
        mp_buf_bytes_add (&s->msg, &s->msg_len, &s->msg_cap, bytes, n, s->cfg->max_message_size);
    if (s->hdr_done)
        return;
    size_t room = S_SMTP_HEADER_MAX - s->hdr_len;
    if (n > room) {
        n = room;
        s->hdr_done = true;
    }
    if (mp_buf_bytes_add (&s->hdr, &s->hdr_len, &s->hdr_cap, bytes, n, S_SMTP_HEADER_MAX) != 0)
        s->hdr_done = true;
    else if (s->hdr_len >= 2 && s->hdr[s->hdr_len - 1] == '\n'
             && (s->hdr_len == 2
                 || (s->hdr_len >= 4 && memcmp (s->hdr + s->hdr_len - 4, "\r\n\r\n", 4) == 0)))
        s->hdr_done = true;
}

size_t
mp_mail_consume (mp_smtp_session_t *s, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (s->dstate) {
            case S_D_BOL:
                if (p[i] == '.') {
                    s->dstate = S_D_DOT;
                    i++;
                } else
                    s->dstate = S_D_MID;
                break;
            case S_D_MID: {
                const char *cr = memchr (p + i, '\r', n - i);
                size_t stop = cr ? (size_t)(cr - p) : n;
                if (stop > i)
                    s_emit (s, p + i, stop - i);
                i = stop;
                if (cr) {
                    s->dstate = S_D_CR;
                    i++;
                }
                break;
            }
            case S_D_CR:
                if (p[i] == '\n') {
                    s_emit (s, "\r\n", 2);
                    s->dstate = S_D_BOL;
                    i++;
                } else {
                    s_emit (s, "\r", 1);
                    s->dstate = S_D_MID;
                }
                break;
            case S_D_DOT: /* a leading dot: stuffing, or the start of the end mark */
                if (p[i] == '\r') {
                    s->dstate = S_D_DOTCR;
                    i++;
                } else
                    s->dstate = S_D_MID;
                break;
            case S_D_DOTCR:
                if (p[i] == '\n') {
                    s_data_end (s);
                    return i + 1;
                }
                s_emit (s, "\r", 1);
                s->dstate = S_D_MID;
                break;
        }
    }
    return n;
}
