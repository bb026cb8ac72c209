/*  bf_compose — request validation, the JSON body and the MIME email (see
    bf_compose.h).  */

#include "bf_compose.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *s_channel_names[] = { "EMAIL", "SMS", "LMS", "PUSH" };

//  --------------------------------------------------------------------------
//  Validation: what can never be sent is reported, not retried

bool
bf_compose_has_ctl (const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return true;
    return false;
}

static const char *
s_invalid_email (const bf_send_request_t *request)
{
    const char *to = request->to;
    size_t len = strlen (to);
    const char *at = strchr (to, '@');
    if (len > 254)
        return "email address too long";
    for (const unsigned char *p = (const unsigned char *)to; *p; p++)
        if (*p <= 0x20 || *p == 0x7F || strchr ("<>(),;:\"\\[]", *p))
            return "email address has forbidden characters";
    if (!at || at == to || !at[1] || strchr (at + 1, '@'))
        return "malformed email address";
    if (!request->text && !request->html)
        return "no text or html body";
    return NULL;
}

const char *
bf_compose_invalid (const bf_send_request_t *request)
{
    const char *to = request->to;
    if (!to || !*to)
        return "no recipient";
    if (request->kind == BF_SEND_EMAIL)
        return s_invalid_email (request);
    if (bf_compose_has_ctl (to))
        return "recipient has control characters";
    if (request->kind == BF_SEND_PUSH) {
        if (strlen (to) > 4096 || strchr (to, ' '))
            return "malformed push token";
    } else {
        size_t digits = 0;
        for (const char *p = to; *p; p++)
            if (*p >= '0' && *p <= '9')
                digits++;
            else if (!strchr ("+-() ", *p))
                return "malformed phone number";
        if (digits < 3 || strlen (to) > 32)
            return "malformed phone number";
    }
    if (!request->text || !*request->text)
        return "no body text";
    return NULL;
}

int
bf_compose_mail_from (const char *from, char **address, const char **why)
{
    *address = NULL;
    *why = NULL;
    if (!from || !strchr (from, '@') || bf_compose_has_ctl (from))
        *why = "smtp_from must be an email address";
    for (const unsigned char *c = (const unsigned char *)(from ? from : ""); !*why && *c; c++)
        if (*c >= 0x80)
            *why = "smtp_from must be ASCII";
    const char *open = *why ? NULL : strchr (from, '<');
    const char *close = open ? strchr (open, '>') : NULL;
    if (open && (!close || close == open + 1))
        *why = "smtp_from has no address inside <>";
    if (*why)
        return -1;
    *address = open ? strndup (open + 1, (size_t)(close - open - 1)) : strdup (from);
    if (!*address) {
        *why = "out of memory";
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The JSON body

int
bf_compose_json_string (bf_text_buf_t *buf, const char *text)
{
    int rc = bf_text_buf_add (buf, "\"", 1);
    const unsigned char *p = (const unsigned char *)text;
    size_t len = strlen (text);
    size_t run = 0; //  start of the bytes that go out as they are
    for (size_t i = 0; i < len && rc == 0;) {
        unsigned char c = p[i];
        if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
            i++;
            continue;
        }
        size_t step = c >= 0x80 ? bf_text_utf8_len ((const char *)p + i, len - i) : 0;
        if (step > 0) {
            i += step;
            continue;
        }
        //  c needs an escape (or is not UTF-8): the run before it goes first.
        rc = bf_text_buf_add (buf, p + run, i - run);
        if (rc)
            break;
        if (c == '"')
            rc = bf_text_buf_str (buf, "\\\"");
        else if (c == '\\')
            rc = bf_text_buf_str (buf, "\\\\");
        else if (c == '\n')
            rc = bf_text_buf_str (buf, "\\n");
        else if (c == '\r')
            rc = bf_text_buf_str (buf, "\\r");
        else if (c == '\t')
            rc = bf_text_buf_str (buf, "\\t");
        else if (c < 0x20 || c == 0x7F)
            rc = bf_text_buf_fmt (buf, "\\u%04x", c);
        else
            rc = bf_text_buf_str (buf, "\\ufffd");
        run = ++i;
    }
    rc = rc ? rc : bf_text_buf_add (buf, p + run, len - run);
    return rc ? -1 : bf_text_buf_add (buf, "\"", 1);
}

int
bf_compose_json (bf_text_buf_t *buf, const bf_send_request_t *request)
{
    int rc = bf_text_buf_fmt (buf, "{\"channel\":\"%s\",\"to\":", s_channel_names[request->kind]);
    rc = rc ? rc : bf_compose_json_string (buf, request->to);
    rc = rc ? rc : bf_text_buf_str (buf, ",\"title\":");
    if (request->title && request->kind != BF_SEND_SMS)
        rc = rc ? rc : bf_compose_json_string (buf, request->title);
    else
        rc = rc ? rc : bf_text_buf_str (buf, "null");
    rc = rc ? rc : bf_text_buf_str (buf, ",\"body\":");
    rc = rc ? rc : bf_compose_json_string (buf, request->text);
    return rc ? rc : bf_text_buf_str (buf, "}");
}

//  --------------------------------------------------------------------------
//  The email

//  A MIME body part's content in canonical form (CRLF line breaks), base64.
static int
s_base64_text (bf_text_buf_t *buf, const char *text)
{
    bf_text_buf_t canon = { 0 };
    int rc = 0;
    const char *run = text; //  bytes copied as they are, up to a bare LF
    for (const char *p = text; *p && rc == 0; p++)
        if (*p == '\n' && (p == text || p[-1] != '\r')) {
            rc = bf_text_buf_add (&canon, run, (size_t)(p - run));
            rc = rc ? rc : bf_text_buf_add (&canon, "\r\n", 2);
            run = p + 1;
        }
    //  No bare LF at all: the text is canonical already.
    if (rc == 0 && run == text)
        rc = bf_text_buf_base64 (buf, text, strlen (text), true);
    else if (rc == 0) {
        rc = bf_text_buf_add (&canon, run, strlen (run));
        rc = rc ? rc : bf_text_buf_base64 (buf, canon.data, canon.len, true);
    }
    bf_text_buf_free (&canon);
    return rc;
}

//  One body part: its headers and its content, base64.
static int
s_part (bf_text_buf_t *buf, const char *subtype, const char *content)
{
    int rc = bf_text_buf_fmt (buf,
                              "Content-Type: text/%s; charset=UTF-8\r\n"
                              "Content-Transfer-Encoding: base64\r\n\r\n",
                              subtype);
    return rc ? rc : s_base64_text (buf, content);
}

int
bf_compose_subject (bf_text_buf_t *buf, const char *title)
{
    bf_text_buf_t clean = { 0 };
    int rc = 0;
    rc = bf_text_buf_str (&clean, title);
    for (size_t i = 0; rc == 0 && i < clean.len; i++)
        if ((unsigned char)clean.data[i] < 0x20 || clean.data[i] == 0x7F)
            clean.data[i] = ' ';
    rc = rc ? rc : bf_text_buf_str (buf, "Subject:");
    size_t at = 0;
    bool first = true;
    //  An empty title is an empty Subject: an encoded word holds at least
    //  one character (RFC 2047 section 2, encoded-text = 1*...).
    while (rc == 0 && at < clean.len) {
        size_t take = 0;
        while (at + take < clean.len) {
            size_t step = bf_text_utf8_len (clean.data + at + take, clean.len - at - take);
            if (step == 0)
                step = 1;
            if (take + step > 39)
                break;
            take += step;
        }
        rc = bf_text_buf_str (buf, first ? " =?UTF-8?B?" : "\r\n =?UTF-8?B?");
        rc = rc ? rc : bf_text_buf_base64 (buf, clean.data ? clean.data + at : "", take, false);
        rc = rc ? rc : bf_text_buf_str (buf, "?=");
        at += take;
        first = false;
    }
    bf_text_buf_free (&clean);
    return rc ? rc : bf_text_buf_str (buf, "\r\n");
}

//  Date, From, To, Subject and the fixed headers.
static int
s_email_headers (bf_text_buf_t *buf, const bf_send_request_t *request, const char *from)
{
    static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *months[]
        = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t now = request->date_s > 0 ? (time_t)request->date_s : time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    int rc = bf_text_buf_fmt (buf, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n",
                              days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900,
                              tm.tm_hour, tm.tm_min, tm.tm_sec);
    rc = rc ? rc : bf_text_buf_fmt (buf, "From: %s\r\nTo: %s\r\n", from, request->to);
    rc = rc ? rc : bf_compose_subject (buf, request->title ? request->title : "");
    return rc ? rc
              : bf_text_buf_fmt (buf,
                                 "Message-ID: <%" PRId64 "@billflow>\r\n"
                                 "MIME-Version: 1.0\r\n"
                                 "Auto-Submitted: auto-generated\r\n",
                                 request->delivery_id);
}

int
bf_compose_email (bf_text_buf_t *buf, const bf_send_request_t *request, const char *from)
{
    int64_t id = request->delivery_id;
    int rc = s_email_headers (buf, request, from);
    bool text = request->text != NULL, html = request->html != NULL;
    if (text && html) {
        rc = rc ? rc
                : bf_text_buf_fmt (buf,
                                   "Content-Type: multipart/alternative; boundary=\"=_bf_%" PRId64
                                   "\"\r\n\r\n"
                                   "--=_bf_%" PRId64 "\r\n",
                                   id, id);
    }
    if (text)
        rc = rc ? rc : s_part (buf, "plain", request->text);
    if (text && html)
        rc = rc ? rc : bf_text_buf_fmt (buf, "--=_bf_%" PRId64 "\r\n", id);
    if (html)
        rc = rc ? rc : s_part (buf, "html", request->html);
    if (text && html)
        rc = rc ? rc : bf_text_buf_fmt (buf, "--=_bf_%" PRId64 "--\r\n", id);
    return rc;
}
