/*  bf_sender — the send engine: one CURLM, a pool of reused easy handles,
    and per-provider admission (concurrency, token bucket, 429 pause,
    circuit breaker). The contract and outcome mapping are in bf_sender.h.

    Why one multi handle for all providers: its connection cache is shared,
    so an easy handle taken from the free list reuses whatever idle
    connection (HTTP/1.1 keep-alive or an SMTP session) the host has, and a
    single curl_multi_poll waits on every socket at once. Admission is ours,
    not libcurl's: a transfer is only added when its provider is ready, so
    libcurl never queues one internally (CURLMOPT_MAX_HOST_CONNECTIONS is
    the sum of the concurrencies, which matters only when two providers
    share a host:port), and CURLOPT_TIMEOUT_MS measures the provider alone.

    Each in-flight send owns a slot: the easy handle, the sender's copy of
    the request, the bytes it uploads (JSON body or whole RFC 5322 message)
    and what came back (body capped at 64 KiB, Retry-After, last SMTP
    reply line). Slots are never freed before the sender; a finished slot
    goes back to the free list and its easy handle is curl_easy_reset.
    Requests whose data cannot be sent never get a transfer: their slot
    waits on the "local" list and the next poll reports them.

    Email over plain smtp:// does not go through libcurl but through
    bf_smtp, our own non-blocking client: libcurl 7.88 waits for the reply
    to the end of a message in a blocking loop inside curl_multi_perform,
    which froze every transfer for the server's latency on each email.
    bf_smtp's epoll descriptor is one extra fd for curl_multi_poll, so one
    wait still covers everything. smtps:// and STARTTLS stay on libcurl
    (with its blocking end-of-message wait): the fast path is for relays on
    the local network or loopback.  */

#include "bf_sender.h"
#include "bf_text.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include <sodium.h>

#include "bf_log.h"
#include "bf_smtp.h"

#define S_BODY_CAP            (64 * 1024)
#define S_WINDOW_SIZE         100
#define S_WINDOW_MS           60000
#define S_RETRY_AFTER_MAX_S   3600
#define S_RETRY_AFTER_DFLT_MS 1000
#define S_REASON_MAX          200
#define S_JSON_DEPTH_MAX      32
#define S_CONCURRENCY_MAX     100000
#define S_NOFILE_CAP          1048576

#define S_DEFAULT_CONCURRENCY 64
#define S_DEFAULT_TIMEOUT_MS  10000
#define S_DEFAULT_CONNECT_MS  5000
#define S_DEFAULT_ERROR_PCT   50
#define S_DEFAULT_MIN_SAMPLES 20
#define S_DEFAULT_OPEN_MS     30000

typedef struct {
    char *data;
    size_t len, cap;
} s_buf_t;

typedef enum { S_CLOSED, S_OPEN, S_HALF_OPEN } s_breaker_t;

typedef struct {
    int64_t at_ms;
    bool error;
} s_sample_t;

typedef struct {
    bool configured;
    char *url;         /* HTTP: base + "/v1/messages"; email: the smtp URL */
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    int concurrency;
    int rate; /* per second, 0 = unlimited */
    int inflight;
    double tokens, burst;
    int64_t refill_ms;
    int64_t paused_until_ms;
    s_breaker_t state;
    int64_t open_until_ms;
    bool probe_out;
    uint64_t epoch; /* bumped on close: older transfers are not counted */
    s_sample_t window[S_WINDOW_SIZE];
    int window_next, window_count;
} s_provider_t;

typedef struct s_slot_t s_slot_t;
struct s_slot_t {
    s_slot_t *next;     /* free list or local list */
    s_slot_t *all_next; /* every slot, for destroy */
    CURL *easy;
    bool active; /* added to the multi */
    bool native; /* handed to bf_smtp */
    bool probe;
    bf_provider_t provider;
    uint64_t epoch;
    bf_send_request_t request; /* strings owned */
    bf_send_result_t result;
    s_buf_t upload;
    size_t upload_pos;
    bool upload_started;
    s_buf_t reply;
    bool reply_truncated;
    bool has_retry_after;
    char retry_after[64];
    char last_line[256]; /* last SMTP reply line */
    struct curl_slist *headers, *rcpt;
    char errbuf[CURL_ERROR_SIZE];
    int64_t started_mono;
};

struct _bf_sender_t {
    CURLM *multi;
    bf_smtp_t *smtp; /* plain smtp:// email; NULL = email through libcurl */
    s_provider_t providers[BF_PROVIDER_COUNT];
    char *smtp_from;      /* From: header as configured */
    char *smtp_mail_from; /* the address alone, for MAIL FROM */
    char *smtp_username, *smtp_password;
    bool smtp_starttls, smtp_allow_plain_auth;
    int timeout_ms, connect_ms;
    int timeouts[BF_PROVIDER_COUNT]; /* per provider: config's, else timeout_ms */
    int breaker_pct, breaker_min, breaker_open_ms;
    s_slot_t *free_slots;
    s_slot_t *all_slots;
    s_slot_t *local_head, *local_tail;
};

static const char *s_provider_names[BF_PROVIDER_COUNT] = { "email", "sms", "push" };
static const char *s_channel_names[] = { "EMAIL", "SMS", "LMS", "PUSH" };

//  --------------------------------------------------------------------------
//  Small helpers: clocks, buffers, UTF-8

static int64_t
s_clock_ms (clockid_t clock)
{
    struct timespec ts;
    clock_gettime (clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t
s_mono_ms (void)
{
    return s_clock_ms (CLOCK_MONOTONIC);
}

static int64_t
s_wall_ms (void)
{
    return s_clock_ms (CLOCK_REALTIME);
}

static int
s_buf_reserve (s_buf_t *buf, size_t more)
{
    if (buf->len + more + 1 <= buf->cap)
        return 0;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + more + 1)
        cap *= 2;
    char *data = realloc (buf->data, cap);
    if (!data)
        return -1;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

static int
s_buf_add (s_buf_t *buf, const void *data, size_t len)
{
    if (s_buf_reserve (buf, len))
        return -1;
    memcpy (buf->data + buf->len, data, len);
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

static int
s_buf_str (s_buf_t *buf, const char *text)
{
    return s_buf_add (buf, text, strlen (text));
}

static int s_buf_fmt (s_buf_t *buf, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_buf_fmt (s_buf_t *buf, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int need = vsnprintf (NULL, 0, format, args);
    va_end (args);
    if (need < 0 || s_buf_reserve (buf, (size_t)need))
        return -1;
    va_start (args, format);
    vsnprintf (buf->data + buf->len, (size_t)need + 1, format, args);
    va_end (args);
    buf->len += (size_t)need;
    return 0;
}

static void
s_buf_free (s_buf_t *buf)
{
    free (buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

static void
s_utf8_put (s_buf_t *buf, uint32_t cp, int *rc)
{
    unsigned char out[4];
    size_t len;
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        len = 1;
    } else if (cp < 0x800) {
        out[0] = (unsigned char)(0xC0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 2;
    } else if (cp < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 3;
    } else {
        out[0] = (unsigned char)(0xF0 | (cp >> 18));
        out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (unsigned char)(0x80 | (cp & 0x3F));
        len = 4;
    }
    if (s_buf_add (buf, out, len))
        *rc = -1;
}

//  Copies text into out (outsize > 0), cut at a UTF-8 boundary.
static void
s_copy_cut (char *out, size_t outsize, const char *text, size_t len)
{
    size_t used = 0;
    while (used < len) {
        size_t step = bf_text_utf8_len ((const char *)text + used, len - used);
        if (step == 0)
            step = 1;
        if (used + step > outsize - 1)
            break;
        used += step;
    }
    memcpy (out, text, used);
    out[used] = '\0';
}

//  Copies an identifier from a provider with control characters as '?'.
static void
s_sanitize (char *out, size_t outsize, const char *text)
{
    size_t len = strlen (text);
    s_copy_cut (out, outsize, text, len);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            *p = '?';
}

static char *
s_strdup_opt (const char *text, int *rc)
{
    if (!text)
        return NULL;
    char *copy = strdup (text);
    if (!copy)
        *rc = -1;
    return copy;
}

static bool
s_has_ctl (const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++)
        if (*p < 0x20 || *p == 0x7F)
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Masking and scrubbing: nothing a provider echoes may leak a contact

static char *
s_mask_contact (bf_send_kind_t kind, const char *to, char *out, size_t outsize)
{
    if (kind == BF_SEND_EMAIL)
        return bf_mask_email (to, out, outsize);
    if (kind == BF_SEND_PUSH)
        return bf_mask_token (to, out, outsize);
    return bf_mask_phone (to, out, outsize);
}

//  Provider text (a reason, an SMTP reply) made fit for a log and the
//  attempt table: control characters and invalid UTF-8 become spaces / '?',
//  whitespace runs collapse, anything that looks like an email address, a
//  phone number, a push token or the request's contact is masked, and the
//  result is cut (at a UTF-8 boundary) to fit out.
static void
s_scrub (const char *text, size_t len, const char *contact, char *out, size_t outsize)
{
    s_buf_t clean = { 0 };
    int rc = 0;
    const unsigned char *p = (const unsigned char *)text;
    for (size_t i = 0; i < len && rc == 0;) {
        size_t step = bf_text_utf8_len ((const char *)p + i, len - i);
        if (step == 0) {
            rc = s_buf_add (&clean, "?", 1);
            i++;
        } else if (step == 1 && (p[i] < 0x20 || p[i] == 0x7F || p[i] == ' ')) {
            if (clean.len > 0 && clean.data[clean.len - 1] != ' ')
                rc = s_buf_add (&clean, " ", 1);
            i++;
        } else {
            rc = s_buf_add (&clean, p + i, step);
            i += step;
        }
    }
    while (rc == 0 && clean.len > 0 && clean.data[clean.len - 1] == ' ')
        clean.data[--clean.len] = '\0';
    /*  Masked by the one masking module (bf_mask.h); then cut at a
        character boundary (a mask never half-written).  */
    if (rc == 0 && clean.data)
        bf_mask_text (clean.data, clean.len, contact, BF_MASK_TOKENS, out, outsize);
    else
        snprintf (out, outsize, "%s", rc ? "(unavailable)" : "");
    s_buf_free (&clean);
}

//  --------------------------------------------------------------------------
//  A minimal strict JSON reader: the reply must be one object; nested values
//  are checked and skipped; top-level string members are handed to a sink.

typedef struct {
    const char *p, *end;
    int depth;
    char message_id[128];
    bool has_message_id;
    char reason[S_REASON_MAX * 2];
    bool has_reason;
} s_json_t;

static void
s_json_ws (s_json_t *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int
s_json_hex4 (s_json_t *j, uint32_t *value)
{
    if (j->end - j->p < 4)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *j->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *value = v;
    return 0;
}

//  Parses a string at j->p (which is '"'); when out is not NULL, appends
//  the unescaped UTF-8 to it.
static int
s_json_string (s_json_t *j, s_buf_t *out)
{
    int rc = 0;
    j->p++;
    while (j->p < j->end) {
        unsigned char c = (unsigned char)*j->p;
        if (c == '"') {
            j->p++;
            return rc;
        }
        if (c < 0x20)
            return -1;
        if (c != '\\') {
            size_t step = bf_text_utf8_len ((const char *)j->p, (size_t)(j->end - j->p));
            if (step == 0)
                return -1;
            if (out && s_buf_add (out, j->p, step))
                rc = -1;
            j->p += step;
            continue;
        }
        j->p++;
        if (j->p >= j->end)
            return -1;
        char e = *j->p++;
        const char *simple = NULL;
        switch (e) {
            case '"':
                simple = "\"";
                break;
            case '\\':
                simple = "\\";
                break;
            case '/':
                simple = "/";
                break;
            case 'b':
                simple = "\b";
                break;
            case 'f':
                simple = "\f";
                break;
            case 'n':
                simple = "\n";
                break;
            case 'r':
                simple = "\r";
                break;
            case 't':
                simple = "\t";
                break;
            case 'u':
                break;
            default:
                return -1;
        }
        if (simple) {
            if (out && s_buf_add (out, simple, 1))
                rc = -1;
            continue;
        }
        uint32_t cp;
        if (s_json_hex4 (j, &cp))
            return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low;
            if (j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u') {
                j->p += 2;
                if (s_json_hex4 (j, &low))
                    return -1;
                if (low >= 0xDC00 && low <= 0xDFFF)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                else
                    cp = 0xFFFD;
            } else
                cp = 0xFFFD;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF)
            cp = 0xFFFD;
        if (out)
            s_utf8_put (out, cp, &rc);
    }
    return -1;
}

static int
s_json_number (s_json_t *j)
{
    const char *start = j->p;
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p >= j->end)
        return -1;
    if (*j->p == '0')
        j->p++;
    else if (*j->p >= '1' && *j->p <= '9')
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
    else
        return -1;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        const char *digits = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
        if (j->p == digits)
            return -1;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        const char *digits = j->p;
        while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
            j->p++;
        if (j->p == digits)
            return -1;
    }
    return j->p > start ? 0 : -1;
}

static int s_json_value (s_json_t *j, s_buf_t *string_out, bool *is_string);

static int
s_json_container (s_json_t *j, bool top)
{
    char open = *j->p, close = open == '{' ? '}' : ']';
    if (++j->depth > S_JSON_DEPTH_MAX)
        return -1;
    j->p++;
    s_json_ws (j);
    if (j->p < j->end && *j->p == close) {
        j->p++;
        j->depth--;
        return 0;
    }
    while (true) {
        s_buf_t key = { 0 };
        bool member_of_interest = false;
        if (open == '{') {
            s_json_ws (j);
            if (j->p >= j->end || *j->p != '"' || s_json_string (j, top ? &key : NULL)) {
                s_buf_free (&key);
                return -1;
            }
            s_json_ws (j);
            if (j->p >= j->end || *j->p != ':') {
                s_buf_free (&key);
                return -1;
            }
            j->p++;
            member_of_interest = top && key.data;
        }
        s_buf_t value = { 0 };
        bool is_string = false;
        int rc = s_json_value (j, member_of_interest ? &value : NULL, &is_string);
        if (rc == 0 && member_of_interest && is_string) {
            const char *text = value.data ? value.data : "";
            if (strcmp (key.data, "message_id") == 0) {
                s_copy_cut (j->message_id, sizeof j->message_id, text, value.len);
                j->has_message_id = true;
            } else if (!j->has_reason
                       && (strcmp (key.data, "reason") == 0 || strcmp (key.data, "error") == 0
                           || strcmp (key.data, "message") == 0
                           || strcmp (key.data, "detail") == 0)) {
                s_copy_cut (j->reason, sizeof j->reason, text, value.len);
                j->has_reason = true;
            }
        }
        s_buf_free (&key);
        s_buf_free (&value);
        if (rc)
            return -1;
        s_json_ws (j);
        if (j->p >= j->end)
            return -1;
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p == close) {
            j->p++;
            j->depth--;
            return 0;
        }
        return -1;
    }
}

static int
s_json_value (s_json_t *j, s_buf_t *string_out, bool *is_string)
{
    s_json_ws (j);
    if (j->p >= j->end)
        return -1;
    *is_string = false;
    char c = *j->p;
    if (c == '"') {
        *is_string = true;
        return s_json_string (j, string_out);
    }
    if (c == '{' || c == '[')
        return s_json_container (j, false);
    if (c == '-' || (c >= '0' && c <= '9'))
        return s_json_number (j);
    static const char *literals[] = { "true", "false", "null" };
    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen (literals[i]);
        if ((size_t)(j->end - j->p) >= len && memcmp (j->p, literals[i], len) == 0) {
            j->p += len;
            return 0;
        }
    }
    return -1;
}

//  Parses a reply body that must be exactly one JSON object. Returns 0 or -1.
static int
s_json_parse_reply (const char *body, size_t len, s_json_t *j)
{
    memset (j, 0, sizeof *j);
    j->p = body;
    j->end = body + len;
    s_json_ws (j);
    if (j->p >= j->end || *j->p != '{')
        return -1;
    if (s_json_container (j, true))
        return -1;
    s_json_ws (j);
    return j->p == j->end ? 0 : -1;
}

//  --------------------------------------------------------------------------
//  Request encodings: the JSON body and the RFC 5322 message

//  Appends text as a JSON string: quotes, backslashes and control characters
//  escaped, valid UTF-8 as is, invalid bytes as U+FFFD.
static int
s_json_quote (s_buf_t *buf, const char *text)
{
    int rc = s_buf_add (buf, "\"", 1);
    const unsigned char *p = (const unsigned char *)text;
    size_t len = strlen (text);
    for (size_t i = 0; i < len && rc == 0;) {
        unsigned char c = p[i];
        if (c == '"')
            rc = s_buf_str (buf, "\\\"");
        else if (c == '\\')
            rc = s_buf_str (buf, "\\\\");
        else if (c == '\n')
            rc = s_buf_str (buf, "\\n");
        else if (c == '\r')
            rc = s_buf_str (buf, "\\r");
        else if (c == '\t')
            rc = s_buf_str (buf, "\\t");
        else if (c < 0x20 || c == 0x7F)
            rc = s_buf_fmt (buf, "\\u%04x", c);
        else {
            size_t step = bf_text_utf8_len ((const char *)p + i, len - i);
            if (step == 0) {
                rc = s_buf_str (buf, "\\ufffd");
                i++;
            } else {
                rc = s_buf_add (buf, p + i, step);
                i += step;
            }
            continue;
        }
        i++;
    }
    return rc ? -1 : s_buf_add (buf, "\"", 1);
}

static int
s_build_json (s_buf_t *buf, const bf_send_request_t *request)
{
    int rc = s_buf_fmt (buf, "{\"channel\":\"%s\",\"to\":", s_channel_names[request->kind]);
    rc = rc ? rc : s_json_quote (buf, request->to);
    rc = rc ? rc : s_buf_str (buf, ",\"title\":");
    if (request->title && request->kind != BF_SEND_SMS)
        rc = rc ? rc : s_json_quote (buf, request->title);
    else
        rc = rc ? rc : s_buf_str (buf, "null");
    rc = rc ? rc : s_buf_str (buf, ",\"body\":");
    rc = rc ? rc : s_json_quote (buf, request->text);
    return rc ? rc : s_buf_str (buf, "}");
}

//  Base64 of data; with wrap, a CRLF after every 76 characters and at the
//  end. libsodium encodes; 57-byte chunks (a multiple of 3) make 76-char
//  lines whose concatenation is the base64 of the whole.
static int
s_base64 (s_buf_t *buf, const unsigned char *data, size_t len, bool wrap)
{
    for (size_t at = 0; at < len; at += 57) {
        size_t take = len - at < 57 ? len - at : 57;
        char line[sodium_base64_ENCODED_LEN (57, sodium_base64_VARIANT_ORIGINAL)];
        sodium_bin2base64 (line, sizeof line, data + at, take, sodium_base64_VARIANT_ORIGINAL);
        if (s_buf_add (buf, line, strlen (line)) || (wrap && s_buf_add (buf, "\r\n", 2)))
            return -1;
    }
    return 0;
}

//  A MIME body part's content in canonical form (CRLF line breaks), base64.
static int
s_base64_text (s_buf_t *buf, const char *text)
{
    s_buf_t canon = { 0 };
    int rc = 0;
    for (const char *p = text; *p && rc == 0; p++) {
        if (*p == '\n' && (p == text || p[-1] != '\r'))
            rc = s_buf_add (&canon, "\r\n", 2);
        else
            rc = s_buf_add (&canon, p, 1);
    }
    if (rc == 0)
        rc = s_base64 (buf, (const unsigned char *)(canon.data ? canon.data : ""), canon.len, true);
    s_buf_free (&canon);
    return rc;
}

//  Subject as RFC 2047 encoded-words ("=?UTF-8?B?...?="), each from at most
//  39 bytes cut at character boundaries, folded onto continuation lines so
//  no line exceeds 78 characters. Control characters become spaces.
static int
s_subject (s_buf_t *buf, const char *title)
{
    s_buf_t clean = { 0 };
    int rc = 0;
    for (const unsigned char *p = (const unsigned char *)title; *p && rc == 0; p++)
        rc = s_buf_add (&clean, (*p < 0x20 || *p == 0x7F) ? " " : (const char *)p, 1);
    rc = rc ? rc : s_buf_str (buf, "Subject:");
    size_t at = 0;
    bool first = true;
    while (rc == 0 && (at < clean.len || first)) {
        size_t take = 0;
        while (at + take < clean.len) {
            size_t step
                = bf_text_utf8_len ((const char *)clean.data + at + take, clean.len - at - take);
            if (step == 0)
                step = 1;
            if (take + step > 39)
                break;
            take += step;
        }
        rc = s_buf_str (buf, first ? " =?UTF-8?B?" : "\r\n =?UTF-8?B?");
        rc = rc ? rc
                : s_base64 (buf, (unsigned char *)(clean.data ? clean.data + at : ""), take, false);
        rc = rc ? rc : s_buf_str (buf, "?=");
        at += take;
        first = false;
    }
    s_buf_free (&clean);
    return rc ? rc : s_buf_str (buf, "\r\n");
}

static int
s_build_email (bf_sender_t *self, s_buf_t *buf, const bf_send_request_t *request)
{
    static const char *days[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char *months[]
        = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
    time_t now = request->date_s > 0 ? (time_t)request->date_s : time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    int64_t id = request->delivery_id;
    int rc = s_buf_fmt (buf, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
                        tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                        tm.tm_sec);
    rc = rc ? rc : s_buf_fmt (buf, "From: %s\r\nTo: %s\r\n", self->smtp_from, request->to);
    rc = rc ? rc : s_subject (buf, request->title ? request->title : "");
    rc = rc ? rc
            : s_buf_fmt (buf,
                         "Message-ID: <%" PRId64 "@billflow>\r\n"
                         "MIME-Version: 1.0\r\n"
                         "Auto-Submitted: auto-generated\r\n",
                         id);
    bool text = request->text != NULL, html = request->html != NULL;
    if (text && html) {
        rc = rc ? rc
                : s_buf_fmt (buf,
                             "Content-Type: multipart/alternative; boundary=\"=_bf_%" PRId64
                             "\"\r\n\r\n"
                             "--=_bf_%" PRId64 "\r\n",
                             id, id);
    }
    if (text) {
        rc = rc ? rc
                : s_buf_str (buf, "Content-Type: text/plain; charset=UTF-8\r\n"
                                  "Content-Transfer-Encoding: base64\r\n\r\n");
        rc = rc ? rc : s_base64_text (buf, request->text);
    }
    if (text && html)
        rc = rc ? rc : s_buf_fmt (buf, "--=_bf_%" PRId64 "\r\n", id);
    if (html) {
        rc = rc ? rc
                : s_buf_str (buf, "Content-Type: text/html; charset=UTF-8\r\n"
                                  "Content-Transfer-Encoding: base64\r\n\r\n");
        rc = rc ? rc : s_base64_text (buf, request->html);
    }
    if (text && html)
        rc = rc ? rc : s_buf_fmt (buf, "--=_bf_%" PRId64 "--\r\n", id);
    return rc;
}

//  --------------------------------------------------------------------------
//  Request validation: what can never be sent is reported, not retried

static const char *
s_invalid_reason (const bf_send_request_t *request)
{
    const char *to = request->to;
    if (!to || !*to)
        return "no recipient";
    if (request->kind == BF_SEND_EMAIL) {
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
    if (s_has_ctl (to))
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

//  --------------------------------------------------------------------------
//  Admission: token bucket, 429 pause, circuit breaker

static void
s_refill (s_provider_t *p, int64_t now)
{
    if (p->rate <= 0)
        return;
    if (now > p->refill_ms) {
        p->tokens += (double)(now - p->refill_ms) * p->rate / 1000.0;
        if (p->tokens > p->burst)
            p->tokens = p->burst;
        p->refill_ms = now;
    }
}

static void
s_breaker_tick (s_provider_t *p, bf_provider_t which, int64_t now)
{
    if (p->state == S_OPEN && now >= p->open_until_ms) {
        p->state = S_HALF_OPEN;
        p->probe_out = false;
        bf_info ("sender: %s breaker half-open: one probe allowed", s_provider_names[which]);
    }
}

static bool
s_ready (bf_sender_t *self, bf_provider_t which, int64_t now)
{
    s_provider_t *p = &self->providers[which];
    if (!p->configured)
        return false;
    s_breaker_tick (p, which, now);
    if (p->inflight >= p->concurrency || now < p->paused_until_ms || p->state == S_OPEN
        || (p->state == S_HALF_OPEN && p->probe_out))
        return false;
    s_refill (p, now);
    return p->rate <= 0 || p->tokens >= 1.0;
}

static void
s_breaker_record (bf_sender_t *self, s_slot_t *slot, bf_outcome_t outcome, int64_t now)
{
    bf_provider_t which = slot->provider;
    s_provider_t *p = &self->providers[which];
    const char *name = s_provider_names[which];
    if (slot->probe) {
        p->probe_out = false;
        if (outcome == BF_OUTCOME_TRANSIENT || outcome == BF_OUTCOME_UNKNOWN) {
            p->state = S_OPEN;
            p->open_until_ms = now + self->breaker_open_ms;
            bf_warn ("sender: %s breaker reopened: probe failed; next probe in %d ms", name,
                     self->breaker_open_ms);
        } else if (outcome != BF_OUTCOME_THROTTLED) {
            p->state = S_CLOSED;
            p->window_count = p->window_next = 0;
            p->epoch++;
            bf_info ("sender: %s breaker closed: probe succeeded", name);
        }
        return;
    }
    if (slot->epoch != p->epoch || outcome == BF_OUTCOME_THROTTLED)
        return;
    p->window[p->window_next]
        = (s_sample_t){ now, outcome == BF_OUTCOME_TRANSIENT || outcome == BF_OUTCOME_UNKNOWN };
    p->window_next = (p->window_next + 1) % S_WINDOW_SIZE;
    if (p->window_count < S_WINDOW_SIZE)
        p->window_count++;
    if (p->state != S_CLOSED)
        return;
    int samples = 0, errors = 0;
    for (int i = 0; i < p->window_count; i++) {
        if (p->window[i].at_ms >= now - S_WINDOW_MS) {
            samples++;
            errors += p->window[i].error;
        }
    }
    if (samples >= self->breaker_min && errors * 100 >= self->breaker_pct * samples) {
        p->state = S_OPEN;
        p->open_until_ms = now + self->breaker_open_ms;
        bf_warn ("sender: %s breaker opened: %d of the last %d outcomes transient; "
                 "probing again in %d ms",
                 name, errors, samples, self->breaker_open_ms);
    }
}

//  --------------------------------------------------------------------------
//  Slots

static void
s_slot_clear (s_slot_t *slot)
{
    free ((char *)slot->request.to);
    free ((char *)slot->request.title);
    free ((char *)slot->request.text);
    free ((char *)slot->request.html);
    memset (&slot->request, 0, sizeof slot->request);
    curl_slist_free_all (slot->headers);
    curl_slist_free_all (slot->rcpt);
    slot->headers = slot->rcpt = NULL;
    slot->upload.len = slot->reply.len = 0;
    slot->upload_pos = 0;
    slot->upload_started = slot->reply_truncated = slot->has_retry_after = false;
    slot->probe = slot->active = slot->native = false;
    slot->retry_after[0] = slot->last_line[0] = slot->errbuf[0] = '\0';
    memset (&slot->result, 0, sizeof slot->result);
}

//  A clean slot holding a copy of request, or NULL on out of memory.
static s_slot_t *
s_slot_take (bf_sender_t *self, const bf_send_request_t *request)
{
    s_slot_t *slot = self->free_slots;
    if (slot)
        self->free_slots = slot->next;
    else {
        slot = calloc (1, sizeof *slot);
        if (!slot)
            return NULL;
        slot->all_next = self->all_slots;
        self->all_slots = slot;
    }
    slot->next = NULL;
    int rc = 0;
    slot->request = *request;
    slot->request.to = s_strdup_opt (request->to, &rc);
    slot->request.title = s_strdup_opt (request->title, &rc);
    slot->request.text = s_strdup_opt (request->text, &rc);
    slot->request.html = s_strdup_opt (request->html, &rc);
    slot->provider = bf_sender_provider_of (request->kind);
    if (rc) {
        s_slot_clear (slot);
        slot->next = self->free_slots;
        self->free_slots = slot;
        return NULL;
    }
    return slot;
}

static void
s_slot_release (bf_sender_t *self, s_slot_t *slot)
{
    s_slot_clear (slot);
    slot->next = self->free_slots;
    self->free_slots = slot;
}

//  --------------------------------------------------------------------------
//  libcurl callbacks

static size_t
s_on_read (char *buffer, size_t size, size_t nitems, void *userp)
{
    s_slot_t *slot = (s_slot_t *)userp;
    slot->upload_started = true;
    size_t room = size * nitems, left = slot->upload.len - slot->upload_pos;
    size_t take = left < room ? left : room;
    memcpy (buffer, slot->upload.data + slot->upload_pos, take);
    slot->upload_pos += take;
    return take;
}

static size_t
s_on_write (char *data, size_t size, size_t nmemb, void *userp)
{
    s_slot_t *slot = (s_slot_t *)userp;
    size_t len = size * nmemb, room = S_BODY_CAP - slot->reply.len;
    size_t take = len < room ? len : room;
    if (take < len)
        slot->reply_truncated = true;
    if (take && s_buf_add (&slot->reply, data, take))
        return 0; /* out of memory: aborts the transfer (TRANSIENT) */
    return len;
}

static void
s_trim_copy (char *out, size_t outsize, const char *data, size_t len)
{
    while (len > 0 && (data[0] == ' ' || data[0] == '\t')) {
        data++;
        len--;
    }
    while (len > 0
           && (data[len - 1] == '\r' || data[len - 1] == '\n' || data[len - 1] == ' '
               || data[len - 1] == '\t'))
        len--;
    if (len > outsize - 1)
        len = outsize - 1;
    memcpy (out, data, len);
    out[len] = '\0';
}

//  HTTP: every header line (a new status line starts a new block).
//  SMTP: every server reply line.
static size_t
s_on_header (char *data, size_t size, size_t nitems, void *userp)
{
    s_slot_t *slot = (s_slot_t *)userp;
    size_t len = size * nitems;
    if (slot->provider == BF_PROVIDER_EMAIL)
        s_trim_copy (slot->last_line, sizeof slot->last_line, data, len);
    else if (len >= 5 && memcmp (data, "HTTP/", 5) == 0) {
        slot->has_retry_after = false;
        slot->retry_after[0] = '\0';
    } else if (len > 12 && strncasecmp (data, "Retry-After:", 12) == 0) {
        s_trim_copy (slot->retry_after, sizeof slot->retry_after, data + 12, len - 12);
        slot->has_retry_after = true;
    }
    return len;
}

//  --------------------------------------------------------------------------
//  Building transfers

static int
s_setup_common (bf_sender_t *self, s_slot_t *slot)
{
    CURL *easy = slot->easy;
    CURLcode rc = CURLE_OK;
#define S_SET(option, value)                                                                       \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt (easy, option, value);                                           \
    } while (0)
    S_SET (CURLOPT_PRIVATE, (void *)slot);
    S_SET (CURLOPT_NOSIGNAL, 1L);
    S_SET (CURLOPT_TIMEOUT_MS, (long)self->timeouts[bf_sender_provider_of (slot->request.kind)]);
    S_SET (CURLOPT_CONNECTTIMEOUT_MS, (long)self->connect_ms);
    S_SET (CURLOPT_ERRORBUFFER, slot->errbuf);
    S_SET (CURLOPT_TCP_KEEPALIVE, 1L);
    S_SET (CURLOPT_HEADERFUNCTION, s_on_header);
    S_SET (CURLOPT_HEADERDATA, (void *)slot);
    S_SET (CURLOPT_URL, self->providers[slot->provider].url);
    if (slot->provider == BF_PROVIDER_EMAIL) {
        S_SET (CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        S_SET (CURLOPT_MAIL_FROM, self->smtp_mail_from);
        S_SET (CURLOPT_MAIL_RCPT, slot->rcpt);
        S_SET (CURLOPT_UPLOAD, 1L);
        S_SET (CURLOPT_READFUNCTION, s_on_read);
        S_SET (CURLOPT_READDATA, (void *)slot);
        S_SET (CURLOPT_INFILESIZE_LARGE, (curl_off_t)slot->upload.len);
        if (self->smtp_starttls)
            S_SET (CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
        if (self->smtp_username)
            S_SET (CURLOPT_USERNAME, self->smtp_username);
        if (self->smtp_password)
            S_SET (CURLOPT_PASSWORD, self->smtp_password);
    } else {
        S_SET (CURLOPT_PROTOCOLS_STR, "http,https");
        S_SET (CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        S_SET (CURLOPT_USERAGENT, "billflow-notify");
        S_SET (CURLOPT_HTTPHEADER, slot->headers);
        S_SET (CURLOPT_POSTFIELDS, slot->upload.data);
        S_SET (CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)slot->upload.len);
        S_SET (CURLOPT_WRITEFUNCTION, s_on_write);
        S_SET (CURLOPT_WRITEDATA, (void *)slot);
    }
#undef S_SET
    return rc == CURLE_OK ? 0 : -1;
}

static struct curl_slist *
s_slist_add (struct curl_slist *list, const char *text, int *rc)
{
    if (*rc)
        return list;
    struct curl_slist *grown = curl_slist_append (list, text);
    if (!grown) {
        *rc = -1;
        return list;
    }
    return grown;
}

//  Prepares slot's transfer; returns 0 or -1 (out of memory, libcurl error).
static int
s_prepare (bf_sender_t *self, s_slot_t *slot)
{
    if (slot->easy)
        curl_easy_reset (slot->easy);
    else if (!(slot->easy = curl_easy_init ()))
        return -1;
    const bf_send_request_t *request = &slot->request;
    int rc = 0;
    if (slot->provider == BF_PROVIDER_EMAIL) {
        rc = s_build_email (self, &slot->upload, request);
        slot->rcpt = s_slist_add (NULL, request->to, &rc);
    } else {
        char key[64];
        snprintf (key, sizeof key, "Idempotency-Key: %" PRId64, request->delivery_id);
        rc = s_build_json (&slot->upload, request);
        slot->headers = s_slist_add (slot->headers, "Content-Type: application/json", &rc);
        slot->headers = s_slist_add (slot->headers, "Accept: application/json", &rc);
        slot->headers = s_slist_add (slot->headers, key, &rc);
        slot->headers = s_slist_add (slot->headers, "Expect:", &rc);
        const char *auth = self->providers[slot->provider].auth_header;
        if (auth)
            slot->headers = s_slist_add (slot->headers, auth, &rc);
    }
    return rc ? -1 : s_setup_common (self, slot);
}

//  --------------------------------------------------------------------------
//  Outcome mapping (bf_sender.h has the table)

//  Retry-After as ms: delta seconds or an HTTP-date; 1000 when unusable.
static int
s_retry_after_ms (const s_slot_t *slot)
{
    const char *value = slot->retry_after;
    if (!slot->has_retry_after || !*value)
        return S_RETRY_AFTER_DFLT_MS;
    if (value[strspn (value, "0123456789")] == '\0') {
        if (strlen (value) > 9)
            return S_RETRY_AFTER_MAX_S * 1000;
        long seconds = strtol (value, NULL, 10);
        return (int)(seconds > S_RETRY_AFTER_MAX_S ? S_RETRY_AFTER_MAX_S : seconds) * 1000;
    }
    time_t when = curl_getdate (value, NULL);
    if (when == -1)
        return S_RETRY_AFTER_DFLT_MS;
    int64_t delta = (int64_t)when * 1000 - s_wall_ms ();
    if (delta < 0)
        return 0;
    return delta > S_RETRY_AFTER_MAX_S * 1000 ? S_RETRY_AFTER_MAX_S * 1000 : (int)delta;
}

static void
s_transfer_error (bf_sender_t *self, s_slot_t *slot, CURLcode code, bf_send_result_t *result)
{
    char reason[200];
    const char *text = slot->errbuf[0] ? slot->errbuf : curl_easy_strerror (code);
    s_scrub (text, strlen (text), slot->request.to, reason, sizeof reason);
    if (code == CURLE_OPERATION_TIMEDOUT)
        snprintf (result->error, sizeof result->error, "timeout after %d ms: %s",
                  self->timeouts[bf_sender_provider_of (slot->request.kind)], reason);
    else if (code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST)
        snprintf (result->error, sizeof result->error, "connection failed: %s", reason);
    else
        snprintf (result->error, sizeof result->error, "transfer failed: %s", reason);
}

static void
s_map_http (bf_sender_t *self, s_slot_t *slot, CURLcode code, long status, bf_send_result_t *result)
{
    result->status_code = (int)status;
    if (code != CURLE_OK) {
        result->outcome = BF_OUTCOME_TRANSIENT;
        s_transfer_error (self, slot, code, result);
        return;
    }
    s_json_t json;
    bool parsed = !slot->reply_truncated && slot->reply.len > 0
                  && s_json_parse_reply (slot->reply.data, slot->reply.len, &json) == 0;
    char reason[S_REASON_MAX + 1] = "";
    if (parsed && json.has_reason)
        s_scrub (json.reason, strlen (json.reason), slot->request.to, reason, sizeof reason);
    else if (!parsed && slot->reply.len > 0)
        s_scrub (slot->reply.data, slot->reply.len < 400 ? slot->reply.len : 400, slot->request.to,
                 reason, sizeof reason);
    if (parsed && json.has_message_id)
        s_sanitize (result->provider_message_id, sizeof result->provider_message_id,
                    json.message_id);

    if (status == 200 || status == 201 || status == 202) {
        if (parsed && result->provider_message_id[0]) {
            result->outcome = BF_OUTCOME_DELIVERED;
            return;
        }
        result->outcome = BF_OUTCOME_TRANSIENT;
        result->provider_message_id[0] = '\0';
        snprintf (result->error, sizeof result->error, "HTTP %ld: %s", status,
                  slot->reply_truncated ? "reply body over 64 KiB"
                  : !parsed             ? "unparsable reply body"
                                        : "reply without message_id");
        return;
    }
    if (status == 409) {
        result->outcome = BF_OUTCOME_DUPLICATE;
        return;
    }
    result->provider_message_id[0] = '\0';
    if (status == 400 || status == 404 || status == 422)
        result->outcome = BF_OUTCOME_PERMANENT;
    else if (status == 429) {
        result->outcome = BF_OUTCOME_THROTTLED;
        result->retry_after_ms = s_retry_after_ms (slot);
    } else
        result->outcome = BF_OUTCOME_TRANSIENT;
    snprintf (result->error, sizeof result->error, "HTTP %ld%s%s", status, reason[0] ? ": " : "",
              reason);
}

static void
s_map_smtp (bf_sender_t *self, s_slot_t *slot, CURLcode code, long reply, bf_send_result_t *result)
{
    result->status_code = (int)reply;
    if (code == CURLE_OK) {
        result->outcome = BF_OUTCOME_DELIVERED;
        return;
    }
    char line[200] = "";
    s_scrub (slot->last_line, strlen (slot->last_line), slot->request.to, line, sizeof line);
    if (reply >= 400 && reply < 500)
        result->outcome = BF_OUTCOME_TRANSIENT;
    else if (reply >= 500 && reply < 600
             && (code == CURLE_SEND_ERROR
                 || (code == CURLE_WEIRD_SERVER_REPLY && slot->upload_started)))
        result->outcome = BF_OUTCOME_PERMANENT;
    else {
        result->outcome = BF_OUTCOME_TRANSIENT;
        if (reply < 400 || reply >= 600) {
            //  No reply after libcurl took the whole message: possibly
            //  delivered (libcurl does not tell which step timed out; a
            //  body it read to the end is as far as we can see).
            if (slot->upload_started && slot->upload_pos >= slot->upload.len
                && (code == CURLE_OPERATION_TIMEDOUT || code == CURLE_RECV_ERROR
                    || code == CURLE_GOT_NOTHING))
                result->outcome = BF_OUTCOME_UNKNOWN;
            s_transfer_error (self, slot, code, result);
            return;
        }
    }
    snprintf (result->error, sizeof result->error, "SMTP %ld: %s", reply,
              line[0] ? line : curl_easy_strerror (code));
}

//  bf_smtp's result, mapped like libcurl's (bf_sender.h has the table);
//  the error text is the reply line of the step that failed.
static void
s_map_native (bf_sender_t *self, s_slot_t *slot, const bf_smtp_result_t *smtp,
              bf_send_result_t *result)
{
    (void)self;
    result->status_code = smtp->code;
    if (smtp->error == BF_SMTP_OK) {
        result->outcome = BF_OUTCOME_DELIVERED;
        return;
    }
    result->outcome = smtp->possibly_delivered ? BF_OUTCOME_UNKNOWN : BF_OUTCOME_TRANSIENT;
    char line[200] = "";
    s_scrub (smtp->line, strlen (smtp->line), slot->request.to, line, sizeof line);
    switch (smtp->error) {
        case BF_SMTP_REPLY:
            if (smtp->code >= 500 && smtp->code < 600 && !smtp->in_setup)
                result->outcome = BF_OUTCOME_PERMANENT;
            snprintf (result->error, sizeof result->error, "SMTP %d: %s", smtp->code, line);
            break;
        case BF_SMTP_CONNECT:
            snprintf (result->error, sizeof result->error, "connection failed: %s", line);
            break;
        case BF_SMTP_TIMEOUT:
            snprintf (result->error, sizeof result->error, "timeout after %d ms: %s",
                      smtp->timeout_ms, line);
            break;
        case BF_SMTP_UNEXPECTED:
            snprintf (result->error, sizeof result->error, "transfer failed: unexpected reply: %s",
                      line);
            break;
        default:
            snprintf (result->error, sizeof result->error, "transfer failed: %s", line);
            break;
    }
}

//  --------------------------------------------------------------------------
//  Public API

static pthread_once_t s_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s_curl_init_rc;

static void
s_curl_global_init (void)
{
    s_curl_init_rc = curl_global_init (CURL_GLOBAL_DEFAULT);
}

static void
s_raise_nofile (void)
{
    struct rlimit limit;
    if (getrlimit (RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max)
        return;
    rlim_t want = limit.rlim_max;
    if (want == RLIM_INFINITY || want > S_NOFILE_CAP)
        want = S_NOFILE_CAP;
    if (want <= limit.rlim_cur)
        return;
    rlim_t was = limit.rlim_cur;
    limit.rlim_cur = want;
    if (setrlimit (RLIMIT_NOFILE, &limit) != 0)
        bf_warn ("sender: could not raise the open-file limit from %lu", (unsigned long)was);
}

static bool
s_http_url_ok (const char *url)
{
    return strncmp (url, "http://", 7) == 0 || strncmp (url, "https://", 8) == 0;
}

static int
s_config_error (char *err, size_t errsize, const char *text)
{
    if (err && errsize)
        snprintf (err, errsize, "%s", text);
    return -1;
}

static int
s_configure (bf_sender_t *self, const bf_sender_config_t *config, char *err, size_t errsize)
{
    int rc = 0;
    const char *urls[BF_PROVIDER_COUNT] = { config->smtp_url, config->sms_url, config->push_url };
    const char *tokens[BF_PROVIDER_COUNT] = { NULL, config->sms_token, config->push_token };
    bool any = false;
    for (int i = 0; i < BF_PROVIDER_COUNT; i++) {
        s_provider_t *p = &self->providers[i];
        const char *url = urls[i];
        if (config->concurrency[i] > S_CONCURRENCY_MAX || config->concurrency[i] < 0)
            return s_config_error (err, errsize, "concurrency must be 0..100000");
        if (config->rate_per_s[i] < 0)
            return s_config_error (err, errsize, "rate_per_s must be >= 0");
        p->concurrency
            = config->concurrency[i] > 0 ? config->concurrency[i] : S_DEFAULT_CONCURRENCY;
        p->rate = config->rate_per_s[i];
        p->burst = p->rate / 10 > 1 ? p->rate / 10 : 1;
        p->tokens = p->burst;
        p->refill_ms = s_mono_ms ();
        if (!url || !*url)
            continue;
        if (s_has_ctl (url))
            return s_config_error (err, errsize, "provider URL has control characters");
        if (i == BF_PROVIDER_EMAIL) {
            if (strncmp (url, "smtp://", 7) != 0 && strncmp (url, "smtps://", 8) != 0)
                return s_config_error (err, errsize,
                                       "smtp_url must start with smtp:// or smtps://");
            p->url = s_strdup_opt (url, &rc);
        } else {
            if (!s_http_url_ok (url))
                return s_config_error (err, errsize,
                                       "sms_url / push_url must start with http:// or https://");
            size_t len = strlen (url);
            while (len > 0 && url[len - 1] == '/')
                len--;
            s_buf_t full = { 0 };
            if (s_buf_add (&full, url, len) || s_buf_str (&full, "/v1/messages"))
                rc = -1;
            p->url = full.data;
            const char *token = tokens[i];
            if (token && *token) {
                if (s_has_ctl (token))
                    return s_config_error (err, errsize, "provider token has control characters");
                s_buf_t header = { 0 };
                if (s_buf_fmt (&header, "Authorization: Bearer %s", token))
                    rc = -1;
                p->auth_header = header.data;
            }
        }
        if (rc)
            return s_config_error (err, errsize, "out of memory");
        p->configured = true;
        any = true;
    }
    if (!any)
        return s_config_error (err, errsize, "no provider URL configured");
    if (self->providers[BF_PROVIDER_EMAIL].configured) {
        const char *from = config->smtp_from;
        if (!from || !strchr (from, '@') || s_has_ctl (from))
            return s_config_error (err, errsize, "smtp_from must be an email address");
        for (const unsigned char *c = (const unsigned char *)from; *c; c++)
            if (*c >= 0x80)
                return s_config_error (err, errsize, "smtp_from must be ASCII");
        self->smtp_from = s_strdup_opt (from, &rc);
        const char *open = strchr (from, '<'), *close = open ? strchr (open, '>') : NULL;
        if (open && (!close || close == open + 1))
            return s_config_error (err, errsize, "smtp_from has no address inside <>");
        if (open)
            self->smtp_mail_from = strndup (open + 1, (size_t)(close - open - 1));
        else
            self->smtp_mail_from = strdup (from);
        if (!self->smtp_mail_from)
            rc = -1;
        if ((config->smtp_username && s_has_ctl (config->smtp_username))
            || (config->smtp_password && s_has_ctl (config->smtp_password)))
            return s_config_error (err, errsize, "smtp credentials have control characters");
        //  An empty user name is "no AUTH" (the configuration's default).
        bool auth = config->smtp_username && config->smtp_username[0];
        self->smtp_username = auth ? s_strdup_opt (config->smtp_username, &rc) : NULL;
        self->smtp_password = auth ? s_strdup_opt (config->smtp_password, &rc) : NULL;
        self->smtp_starttls = config->smtp_starttls;
        self->smtp_allow_plain_auth = config->smtp_allow_plain_auth;
        if (auth && !self->smtp_starttls && strncmp (config->smtp_url, "smtp://", 7) == 0
            && !self->smtp_allow_plain_auth)
            return s_config_error (err, errsize,
                                   "SMTP AUTH over plain smtp:// without STARTTLS refused: "
                                   "the password would cross the network in clear (allow it "
                                   "only for a relay on this host: smtp_allow_plain_auth)");
    }
    if (config->breaker_error_pct > 100)
        return s_config_error (err, errsize, "breaker_error_pct must be 0..100");
    if (config->breaker_min_samples > S_WINDOW_SIZE)
        return s_config_error (err, errsize, "breaker_min_samples must be 0..100 (the window)");
    self->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : S_DEFAULT_TIMEOUT_MS;
    self->connect_ms
        = self->timeout_ms < S_DEFAULT_CONNECT_MS ? self->timeout_ms : S_DEFAULT_CONNECT_MS;
    for (int p = 0; p < BF_PROVIDER_COUNT; p++)
        self->timeouts[p] = config->provider_timeout_ms[p] > 0 ? config->provider_timeout_ms[p]
                                                               : self->timeout_ms;
    self->breaker_pct
        = config->breaker_error_pct > 0 ? config->breaker_error_pct : S_DEFAULT_ERROR_PCT;
    self->breaker_min
        = config->breaker_min_samples > 0 ? config->breaker_min_samples : S_DEFAULT_MIN_SAMPLES;
    self->breaker_open_ms
        = config->breaker_open_ms > 0 ? config->breaker_open_ms : S_DEFAULT_OPEN_MS;
    return rc ? s_config_error (err, errsize, "out of memory") : 0;
}

bf_sender_t *
bf_sender_new (const bf_sender_config_t *config, char *err, size_t errsize)
{
    if (err && errsize)
        err[0] = '\0';
    if (!config) {
        s_config_error (err, errsize, "no config");
        return NULL;
    }
    pthread_once (&s_curl_once, s_curl_global_init);
    if (s_curl_init_rc != CURLE_OK) {
        s_config_error (err, errsize, "curl_global_init failed");
        return NULL;
    }
    bf_sender_t *self = calloc (1, sizeof *self);
    if (!self) {
        s_config_error (err, errsize, "out of memory");
        return NULL;
    }
    if (s_configure (self, config, err, errsize)) {
        bf_sender_destroy (&self);
        return NULL;
    }
    self->multi = curl_multi_init ();
    if (!self->multi) {
        s_config_error (err, errsize, "curl_multi_init failed");
        bf_sender_destroy (&self);
        return NULL;
    }
    long connections = 0;
    for (int i = 0; i < BF_PROVIDER_COUNT; i++)
        if (self->providers[i].configured)
            connections += self->providers[i].concurrency;
    if (curl_multi_setopt (self->multi, CURLMOPT_MAX_HOST_CONNECTIONS, connections) != CURLM_OK
        || curl_multi_setopt (self->multi, CURLMOPT_MAXCONNECTS, connections) != CURLM_OK) {
        s_config_error (err, errsize, "curl_multi_setopt failed");
        bf_sender_destroy (&self);
        return NULL;
    }
    s_provider_t *email = &self->providers[BF_PROVIDER_EMAIL];
    if (email->configured && !self->smtp_starttls && bf_smtp_url_ok (email->url)) {
        bf_smtp_config_t smtp = { .url = email->url,
                                  .username = self->smtp_username,
                                  .password = self->smtp_password,
                                  .allow_plain_auth = self->smtp_allow_plain_auth,
                                  .max_sessions = email->concurrency,
                                  .queue_ms = self->timeouts[BF_PROVIDER_EMAIL],
                                  .connect_ms = self->connect_ms,
                                  .greeting_ms = config->smtp_greeting_ms,
                                  .command_ms = config->smtp_command_ms,
                                  .data_ms = config->smtp_data_ms,
                                  .block_ms = config->smtp_block_ms,
                                  .end_ms = config->smtp_end_ms };
        self->smtp = bf_smtp_new (&smtp, err, errsize);
        if (!self->smtp) {
            bf_sender_destroy (&self);
            return NULL;
        }
    }
    s_raise_nofile ();
    for (int i = 0; i < BF_PROVIDER_COUNT; i++) {
        s_provider_t *p = &self->providers[i];
        if (p->configured)
            bf_info ("sender: %s provider: concurrency %d, rate %d/s, timeout %d ms",
                     s_provider_names[i], p->concurrency, p->rate, self->timeout_ms);
    }
    return self;
}

void
bf_sender_destroy (bf_sender_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bf_sender_t *self = *self_p;
    bf_smtp_destroy (&self->smtp); /* before the slots: it holds pointers to them */
    s_slot_t *slot = self->all_slots;
    while (slot) {
        s_slot_t *next = slot->all_next;
        if (slot->active && self->multi)
            curl_multi_remove_handle (self->multi, slot->easy);
        s_slot_clear (slot);
        if (slot->easy)
            curl_easy_cleanup (slot->easy);
        s_buf_free (&slot->upload);
        s_buf_free (&slot->reply);
        free (slot);
        slot = next;
    }
    if (self->multi)
        curl_multi_cleanup (self->multi);
    for (int i = 0; i < BF_PROVIDER_COUNT; i++) {
        free (self->providers[i].url);
        free (self->providers[i].auth_header);
    }
    free (self->smtp_from);
    free (self->smtp_mail_from);
    free (self->smtp_username);
    if (self->smtp_password)
        memset (self->smtp_password, 0, strlen (self->smtp_password));
    free (self->smtp_password);
    free (self);
    *self_p = NULL;
}

bool
bf_sender_ready (bf_sender_t *self, bf_provider_t provider)
{
    if (!self || (unsigned)provider >= BF_PROVIDER_COUNT)
        return false;
    return s_ready (self, provider, s_mono_ms ());
}

int
bf_sender_wait_ms (bf_sender_t *self, bf_provider_t provider)
{
    if (!self || (unsigned)provider >= BF_PROVIDER_COUNT)
        return -1;
    int64_t now = s_mono_ms ();
    if (s_ready (self, provider, now))
        return 0;
    s_provider_t *p = &self->providers[provider];
    if (!p->configured || p->inflight >= p->concurrency
        || (p->state == S_HALF_OPEN && p->probe_out))
        return -1;
    int64_t wait = 0;
    if (p->paused_until_ms > now)
        wait = p->paused_until_ms - now;
    if (p->state == S_OPEN && p->open_until_ms - now > wait)
        wait = p->open_until_ms - now;
    if (p->rate > 0 && p->tokens < 1.0) {
        int64_t refill = (int64_t)((1.0 - p->tokens) * 1000.0 / p->rate) + 1;
        if (refill > wait)
            wait = refill;
    }
    return wait < 1 ? 1 : (int)wait;
}

int
bf_sender_submit (bf_sender_t *self, const bf_send_request_t *request)
{
    if (!self || !request || (unsigned)request->kind > BF_SEND_PUSH || request->delivery_id <= 0) {
        bf_error ("sender: submit refused: %s", !self || !request ? "NULL argument"
                                                : request->delivery_id <= 0
                                                    ? "delivery_id must be > 0"
                                                    : "unknown kind");
        return -1;
    }
    bf_provider_t which = bf_sender_provider_of (request->kind);
    s_provider_t *p = &self->providers[which];
    if (!p->configured)
        return -1;
    const char *invalid = s_invalid_reason (request);
    int64_t now = s_mono_ms ();
    if (!invalid && !s_ready (self, which, now))
        return -1;
    s_slot_t *slot = s_slot_take (self, request);
    if (!slot) {
        bf_error ("sender: out of memory for delivery %" PRId64, request->delivery_id);
        return -1;
    }
    slot->result.provider_name = s_provider_names[which];
    slot->result.started_ms = s_wall_ms ();
    slot->started_mono = now;
    if (invalid) {
        char masked[BF_MASK_MAX];
        slot->result.outcome = BF_OUTCOME_PERMANENT;
        slot->result.finished_ms = slot->result.started_ms;
        snprintf (slot->result.error, sizeof slot->result.error, "invalid request: %s", invalid);
        bf_warn ("sender: delivery %" PRId64 " to %s not sent: %s", request->delivery_id,
                 s_mask_contact (request->kind, request->to, masked, sizeof masked), invalid);
        if (self->local_tail)
            self->local_tail->next = slot;
        else
            self->local_head = slot;
        self->local_tail = slot;
        return 0;
    }
    if (which == BF_PROVIDER_EMAIL && self->smtp) {
        if (s_build_email (self, &slot->upload, &slot->request)
            || bf_smtp_submit (self->smtp, self->smtp_mail_from, slot->request.to,
                               slot->upload.data, slot->upload.len, slot)) {
            bf_error ("sender: could not start delivery %" PRId64 " (out of memory)",
                      request->delivery_id);
            s_slot_release (self, slot);
            return -1;
        }
        slot->native = true;
    } else if (s_prepare (self, slot)
               || curl_multi_add_handle (self->multi, slot->easy) != CURLM_OK) {
        bf_error ("sender: could not start delivery %" PRId64 " (out of memory or libcurl error)",
                  request->delivery_id);
        s_slot_release (self, slot);
        return -1;
    } else
        slot->active = true;
    slot->epoch = p->epoch;
    p->inflight++;
    if (p->rate > 0)
        p->tokens -= 1.0;
    if (p->state == S_HALF_OPEN) {
        slot->probe = true;
        p->probe_out = true;
    }
    return 0;
}

//  Updates the provider for a finished send whose outcome is mapped.
static void
s_account (bf_sender_t *self, s_slot_t *slot)
{
    bf_send_result_t *result = &slot->result;
    result->finished_ms = s_wall_ms ();
    /*  Every error leaves the sender through here, whichever path wrote
        it: mask it once more as a whole (idempotent on masked text), so no
        contact reaches delivery.last_error or delivery_attempt.error.  */
    char safe[sizeof result->error];
    bf_mask_text (result->error, strlen (result->error), slot->request.to, BF_MASK_TOKENS, safe,
                  sizeof safe);
    memcpy (result->error, safe, sizeof safe);
    int64_t now = s_mono_ms ();
    s_provider_t *p = &self->providers[slot->provider];
    p->inflight--;
    if (result->outcome == BF_OUTCOME_THROTTLED && result->retry_after_ms > 0
        && now + result->retry_after_ms > p->paused_until_ms) {
        p->paused_until_ms = now + result->retry_after_ms;
        bf_info ("sender: %s provider throttled (429); paused for %d ms",
                 s_provider_names[slot->provider], result->retry_after_ms);
    }
    s_breaker_record (self, slot, result->outcome, now);
    if (bf_log_enabled (BF_LOG_DEBUG)) {
        char masked[BF_MASK_MAX];
        bf_debug (
            "sender: delivery %" PRId64 " attempt %d to %s via %s: %s (%d) in %" PRId64 " ms%s%s",
            slot->request.delivery_id, slot->request.attempt,
            s_mask_contact (slot->request.kind, slot->request.to, masked, sizeof masked),
            result->provider_name, bf_sender_outcome_name (result->outcome), result->status_code,
            now - slot->started_mono, result->error[0] ? ": " : "", result->error);
    }
}

//  Fills slot->result for a finished libcurl transfer and updates the provider.
static void
s_finish (bf_sender_t *self, s_slot_t *slot, CURLcode code)
{
    long status = 0;
    curl_easy_getinfo (slot->easy, CURLINFO_RESPONSE_CODE, &status);
    if (slot->provider == BF_PROVIDER_EMAIL)
        s_map_smtp (self, slot, code, status, &slot->result);
    else
        s_map_http (self, slot, code, status, &slot->result);
    s_account (self, slot);
}

typedef struct {
    bf_sender_t *self;
    bf_send_done_fn done;
    void *context;
} s_native_ctx_t;

//  bf_smtp's done callback: maps, accounts and reports one email.
static void
s_on_native_done (void *context, void *cookie, const bf_smtp_result_t *smtp)
{
    s_native_ctx_t *ctx = (s_native_ctx_t *)context;
    s_slot_t *slot = (s_slot_t *)cookie;
    s_map_native (ctx->self, slot, smtp, &slot->result);
    s_account (ctx->self, slot);
    if (ctx->done)
        ctx->done (ctx->context, &slot->request, &slot->result);
    s_slot_release (ctx->self, slot);
}

static int
s_collect_native (bf_sender_t *self, bf_send_done_fn done, void *context)
{
    if (!self->smtp)
        return 0;
    s_native_ctx_t ctx = { self, done, context };
    return bf_smtp_perform (self->smtp, s_on_native_done, &ctx);
}

static int
s_report_locals (bf_sender_t *self, bf_send_done_fn done, void *context)
{
    int count = 0;
    s_slot_t *slot = self->local_head;
    self->local_head = self->local_tail = NULL;
    while (slot) {
        s_slot_t *next = slot->next;
        if (done)
            done (context, &slot->request, &slot->result);
        s_slot_release (self, slot);
        count++;
        slot = next;
    }
    return count;
}

static int
s_collect (bf_sender_t *self, bf_send_done_fn done, void *context)
{
    int count = 0, queued;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read (self->multi, &queued))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        s_slot_t *slot = NULL;
        curl_easy_getinfo (easy, CURLINFO_PRIVATE, (char **)&slot);
        curl_multi_remove_handle (self->multi, easy);
        if (!slot)
            continue; /* cannot happen: every handle we add carries its slot */
        slot->active = false;
        s_finish (self, slot, code);
        if (done)
            done (context, &slot->request, &slot->result);
        s_slot_release (self, slot);
        count++;
    }
    return count;
}

int
bf_sender_poll (bf_sender_t *self, int timeout_ms, bf_send_done_fn done, void *context)
{
    if (!self)
        return -1;
    int count = s_report_locals (self, done, context);
    int running = 0;
    if (curl_multi_perform (self->multi, &running) != CURLM_OK)
        return -1;
    count += s_collect (self, done, context);
    count += s_collect_native (self, done, context);
    if (count > 0 || timeout_ms <= 0)
        return count;
    struct curl_waitfd extra = { .fd = bf_smtp_fd (self->smtp), .events = CURL_WAIT_POLLIN };
    if (self->smtp) {
        int smtp_wait = bf_smtp_timeout_ms (self->smtp);
        if (smtp_wait >= 0 && smtp_wait < timeout_ms)
            timeout_ms = smtp_wait;
    }
    if (curl_multi_poll (self->multi, self->smtp ? &extra : NULL, self->smtp ? 1 : 0, timeout_ms,
                         NULL)
        != CURLM_OK)
        return -1;
    if (curl_multi_perform (self->multi, &running) != CURLM_OK)
        return -1;
    count = s_collect (self, done, context);
    return count + s_collect_native (self, done, context);
}

void
bf_sender_wakeup (bf_sender_t *self)
{
    if (self && self->multi)
        curl_multi_wakeup (self->multi);
}

int
bf_sender_inflight (const bf_sender_t *self, bf_provider_t provider)
{
    if (!self || (unsigned)provider >= BF_PROVIDER_COUNT)
        return 0;
    return self->providers[provider].inflight;
}

bool
bf_sender_configured (const bf_sender_t *self, bf_provider_t provider)
{
    return self && (unsigned)provider < BF_PROVIDER_COUNT && self->providers[provider].configured;
}

const char *
bf_sender_breaker_state (const bf_sender_t *self, bf_provider_t provider)
{
    if (!self || (unsigned)provider >= BF_PROVIDER_COUNT)
        return "closed";
    const s_provider_t *p = &self->providers[provider];
    if (p->state == S_OPEN)
        return s_mono_ms () >= p->open_until_ms ? "half-open" : "open";
    return p->state == S_HALF_OPEN ? "half-open" : "closed";
}

bf_provider_t
bf_sender_provider_of (bf_send_kind_t kind)
{
    return kind == BF_SEND_EMAIL  ? BF_PROVIDER_EMAIL
           : kind == BF_SEND_PUSH ? BF_PROVIDER_PUSH
                                  : BF_PROVIDER_SMS;
}

const char *
bf_sender_provider_name (bf_provider_t provider)
{
    return (unsigned)provider < BF_PROVIDER_COUNT ? s_provider_names[provider] : "unknown";
}

const char *
bf_sender_outcome_name (bf_outcome_t outcome)
{
    switch (outcome) {
        case BF_OUTCOME_DELIVERED:
            return "delivered";
        case BF_OUTCOME_DUPLICATE:
            return "duplicate";
        case BF_OUTCOME_TRANSIENT:
            return "transient";
        case BF_OUTCOME_PERMANENT:
            return "permanent";
        case BF_OUTCOME_UNKNOWN:
            return "unknown";
        case BF_OUTCOME_THROTTLED:
            return "throttled";
    }
    return "unknown";
}

int
bf_sender_parse_reply (const char *body, size_t len, char *message_id, size_t idsize, char *reason,
                       size_t reasonsize)
{
    s_json_t json;
    int rc = body ? s_json_parse_reply (body, len, &json) : -1;
    if (message_id && idsize) {
        message_id[0] = '\0';
        if (rc == 0 && json.has_message_id)
            s_copy_cut (message_id, idsize, json.message_id, strlen (json.message_id));
    }
    if (reason && reasonsize) {
        reason[0] = '\0';
        if (rc == 0 && json.has_reason)
            s_copy_cut (reason, reasonsize, json.reason, strlen (json.reason));
    }
    return rc;
}
