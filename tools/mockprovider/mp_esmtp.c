/*  mp_esmtp — the ESMTP dialogue of one session: commands, AUTH and the transaction.  */

#include "mp_esmtp.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mp_buf.h"
#include "mp_log.h"
#include "mp_mail.h"
#include "mp_rand.h"
#include "mp_store.h"

#define S_SMTP_MAX_RCPT 100

void
mp_esmtp_reset (mp_smtp_session_t *s)
{
    s->in_mail = false;
    s->rcpt_len = 0;
    s->nrcpt = 0;
}

/*  Decodes base64 text into out (size bytes). Returns the decoded length or -1.  */
static long
s_base64_decode (const char *text, size_t len, char *out, size_t size)
{
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+')
            v = 62;
        else if (c == '/')
            v = 63;
        else if (c == '=') {
            pad++;
            continue;
        } else
            return -1;
        if (pad)
            return -1; /* data after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n >= size)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)n;
}

static void
s_auth_check (mp_smtp_session_t *s, const char *user, const char *password)
{
    s->mode = MP_SMTP_COMMAND;
    if (strcmp (user, s->cfg->smtp_user) == 0 && strcmp (password, s->cfg->smtp_password) == 0) {
        s->authed = true;
        mp_smtp_sendf (s, "235 2.7.0 Authentication successful\r\n");
    } else
        mp_smtp_sendf (s, "535 5.7.8 Authentication credentials invalid\r\n");
}

/*  AUTH PLAIN response: base64 of "authzid NUL user NUL password".  */
static void
s_auth_plain (mp_smtp_session_t *s, const char *b64)
{
    char raw[1024];
    long n = s_base64_decode (b64, strlen (b64), raw, sizeof raw - 1);
    s->mode = MP_SMTP_COMMAND;
    if (n < 0) {
        mp_smtp_sendf (s, "501 5.5.2 Cannot decode the AUTH response\r\n");
        return;
    }
    raw[n] = '\0';
    const char *user = memchr (raw, '\0', (size_t)n);
    const char *password = user ? memchr (user + 1, '\0', (size_t)(raw + n - user - 1)) : NULL;
    if (!user || !password) {
        mp_smtp_sendf (s, "501 5.5.2 Malformed AUTH PLAIN response\r\n");
        return;
    }
    s_auth_check (s, user + 1, password + 1);
}

/*  Decodes one base64 AUTH LOGIN line into out. Returns false (reply sent) on a bad line.  */
static bool
s_auth_line (mp_smtp_session_t *s, const char *b64, char *out, size_t size)
{
    long n = s_base64_decode (b64, strlen (b64), out, size - 1);
    if (n < 0 || memchr (out, '\0', (size_t)n)) {
        s->mode = MP_SMTP_COMMAND;
        mp_smtp_sendf (s, "501 5.5.2 Cannot decode the AUTH response\r\n");
        return false;
    }
    out[n] = '\0';
    return true;
}

/*  The next line of an AUTH exchange under way: a response, or "*" to cancel.  */
static void
s_auth_continue (mp_smtp_session_t *s, const char *line)
{
    if (strcmp (line, "*") == 0) {
        s->mode = MP_SMTP_COMMAND;
        mp_smtp_sendf (s, "501 5.7.0 Authentication cancelled\r\n");
    } else if (s->mode == MP_SMTP_AUTH_PLAIN)
        s_auth_plain (s, line);
    else if (s->mode == MP_SMTP_AUTH_USER) {
        if (s_auth_line (s, line, s->user, sizeof s->user)) {
            s->mode = MP_SMTP_AUTH_PASS;
            mp_smtp_sendf (s, "334 UGFzc3dvcmQ6\r\n");
        }
    } else {
        char password[256];
        if (s_auth_line (s, line, password, sizeof password))
            s_auth_check (s, s->user, password);
    }
}

/*  Extracts the address of "FROM:<addr> params" / "TO:<addr>": returns a pointer to it inside
    arg (NUL-terminated there) and sets *params, or NULL when malformed.  */
static char *
s_path (char *arg, const char *prefix, char **params)
{
    size_t plen = strlen (prefix);
    if (strncasecmp (arg, prefix, plen) != 0)
        return NULL;
    char *p = arg + plen;
    while (*p == ' ')
        p++;
    char *addr, *end;
    if (*p == '<') {
        addr = p + 1;
        end = strchr (addr, '>');
        if (!end)
            return NULL;
    } else {
        addr = p;
        end = addr + strcspn (addr, " ");
    }
    *params = *end ? end + 1 : end;
    *end = '\0';
    return strlen (addr) > MP_MAX_TO ? NULL : addr;
}

static void
s_ehlo (mp_smtp_session_t *s, bool extended)
{
    mp_esmtp_reset (s);
    s->greeted = true;
    if (!extended) {
        mp_smtp_sendf (s, "250 mockprovider\r\n");
        return;
    }
    /*  RFC 5321 puts the keywords in no order; AUTH goes last, where a client that does not
        read a reply to its final line would miss it.  */
    mp_smtp_sendf (s,
                   "250-mockprovider\r\n250-SIZE %zu\r\n250-8BITMIME\r\n250-PIPELINING\r\n"
                   "250-ENHANCEDSTATUSCODES\r\n%s",
                   s->cfg->max_message_size, s->cfg->smtp_user ? "250-HELP\r\n" : "");
    mp_smtp_sendf (s, "%s", s->cfg->smtp_user ? "250 AUTH PLAIN LOGIN\r\n" : "250 HELP\r\n");
}

static void
s_cmd_mail (mp_smtp_session_t *s, char *arg)
{
    if (s->shutting) {
        mp_smtp_sendf (s, "421 4.3.2 mockprovider: service shutting down\r\n");
        mp_smtp_finish (s);
        return;
    }
    if (!s->greeted) {
        mp_smtp_sendf (s, "503 5.5.1 Say EHLO first\r\n");
        return;
    }
    if (s->cfg->smtp_user && !s->authed) {
        mp_smtp_sendf (s, "530 5.7.0 Authentication required\r\n");
        return;
    }
    if (s->in_mail) {
        mp_smtp_sendf (s, "503 5.5.1 Sender already given\r\n");
        return;
    }
    char *params;
    if (!s_path (arg, "FROM:", &params)) {
        mp_smtp_sendf (s, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
        return;
    }
    for (char *p = params; *p;) {
        while (*p == ' ')
            p++;
        if (strncasecmp (p, "SIZE=", 5) == 0
            && strtoull (p + 5, NULL, 10) > (unsigned long long)s->cfg->max_message_size) {
            mp_smtp_sendf (s, "552 5.3.4 Message size exceeds fixed limit of %zu bytes\r\n",
                           s->cfg->max_message_size);
            mp_store_add_outcome (MP_EMAIL, MP_REJECTED);
            return;
        }
        p += strcspn (p, " ");
    }
    mp_esmtp_reset (s);
    s->in_mail = true;
    mp_smtp_sendf (s, "250 2.1.0 Sender ok\r\n");
}

static void
s_cmd_rcpt (mp_smtp_session_t *s, char *arg)
{
    if (!s->in_mail) {
        mp_smtp_sendf (s, "503 5.5.1 Need MAIL first\r\n");
        return;
    }
    char *params;
    char *addr = s_path (arg, "TO:", &params);
    if (!addr || !*addr) {
        mp_smtp_sendf (s, "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
        return;
    }
    if (s->nrcpt >= S_SMTP_MAX_RCPT) {
        mp_smtp_sendf (s, "452 4.5.3 Too many recipients\r\n");
        return;
    }
    if (mp_config_rejects (s->cfg, addr)
        || (s->cfg->fail_permanent && mp_rand_pct () < s->cfg->fail_pct[MP_EMAIL])) {
        mp_smtp_sendf (s, "550 5.1.1 No such user here\r\n");
        mp_store_add_outcome (MP_EMAIL, MP_REJECTED);
        if (s->cfg->verbose) {
            char masked[64];
            mp_log ("smtp rcpt=%s -> 550",
                    mp_log_mask (addr, strlen (addr), masked, sizeof masked));
        }
        return;
    }
    if (mp_buf_bytes_add (&s->rcpt, &s->rcpt_len, &s->rcpt_cap, addr, strlen (addr) + 1, SIZE_MAX)
        != 0) {
        mp_smtp_sendf (s, "452 4.3.1 Out of memory\r\n");
        return;
    }
    s->nrcpt++;
    mp_smtp_sendf (s, "250 2.1.5 Recipient ok\r\n");
}

static void
s_cmd_data (mp_smtp_session_t *s)
{
    if (!s->in_mail) {
        mp_smtp_sendf (s, "503 5.5.1 Need MAIL first\r\n");
        return;
    }
    if (s->nrcpt == 0) {
        mp_smtp_sendf (s, "554 5.5.1 No valid recipients\r\n");
        return;
    }
    mp_mail_begin (s);
    static const char go[] = "354 2.0.0 End data with <CR><LF>.<CR><LF>\r\n";
    mp_smtp_reply_later (s, go, strlen (go), s->cfg->latency_at_data, 0);
}

static void
s_cmd_auth (mp_smtp_session_t *s, char *arg)
{
    if (!s->cfg->smtp_user) {
        mp_smtp_sendf (s, "502 5.5.1 AUTH not available\r\n");
        return;
    }
    if (!s->greeted || s->authed || s->in_mail) {
        mp_smtp_sendf (s, "503 5.5.1 Bad sequence of commands\r\n");
        return;
    }
    char *initial = arg + strcspn (arg, " ");
    if (*initial)
        *initial++ = '\0';
    while (*initial == ' ')
        initial++;
    if (strcasecmp (arg, "PLAIN") == 0) {
        if (*initial && strcmp (initial, "=") != 0)
            s_auth_plain (s, initial);
        else {
            s->mode = MP_SMTP_AUTH_PLAIN;
            mp_smtp_sendf (s, "334 \r\n");
        }
    } else if (strcasecmp (arg, "LOGIN") == 0) {
        if (*initial) {
            if (!s_auth_line (s, initial, s->user, sizeof s->user))
                return;
            s->mode = MP_SMTP_AUTH_PASS;
            mp_smtp_sendf (s, "334 UGFzc3dvcmQ6\r\n");
        } else {
            s->mode = MP_SMTP_AUTH_USER;
            mp_smtp_sendf (s, "334 VXNlcm5hbWU6\r\n");
        }
    } else
        mp_smtp_sendf (s, "504 5.5.4 Unrecognized authentication mechanism\r\n");
}

void
mp_esmtp_command (mp_smtp_session_t *s, char *line)
{
    if (s->mode != MP_SMTP_COMMAND) { /* an AUTH exchange is under way */
        s_auth_continue (s, line);
        return;
    }
    char *arg = line + strcspn (line, " ");
    if (*arg)
        *arg++ = '\0';
    while (*arg == ' ')
        arg++;
    if (strcasecmp (line, "EHLO") == 0 || strcasecmp (line, "HELO") == 0) {
        if (!*arg)
            mp_smtp_sendf (s, "501 5.5.4 Syntax: %s hostname\r\n", line);
        else
            s_ehlo (s, strcasecmp (line, "EHLO") == 0);
    } else if (strcasecmp (line, "MAIL") == 0)
        s_cmd_mail (s, arg);
    else if (strcasecmp (line, "RCPT") == 0)
        s_cmd_rcpt (s, arg);
    else if (strcasecmp (line, "DATA") == 0)
        s_cmd_data (s);
    else if (strcasecmp (line, "RSET") == 0) {
        mp_esmtp_reset (s);
        mp_smtp_sendf (s, "250 2.0.0 Ok\r\n");
    } else if (strcasecmp (line, "NOOP") == 0)
        mp_smtp_sendf (s, "250 2.0.0 Ok\r\n");
    else if (strcasecmp (line, "QUIT") == 0) {
        mp_smtp_sendf (s, "221 2.0.0 Bye\r\n");
        mp_smtp_finish (s);
    } else if (strcasecmp (line, "AUTH") == 0)
        s_cmd_auth (s, arg);
    else if (strcasecmp (line, "VRFY") == 0)
        mp_smtp_sendf (s, "252 2.5.0 Cannot VRFY user\r\n");
    else if (strcasecmp (line, "HELP") == 0)
        mp_smtp_sendf (s, "214 2.0.0 EHLO HELO MAIL RCPT DATA RSET NOOP QUIT AUTH\r\n");
    else if (strcasecmp (line, "STARTTLS") == 0)
        mp_smtp_sendf (s, "502 5.5.1 STARTTLS not supported\r\n");
    else
        mp_smtp_sendf (s, "500 5.5.2 Command not recognized\r\n");
}
