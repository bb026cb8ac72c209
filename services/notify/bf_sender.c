/*  bf_sender — the send engine: one CURLM, a pool of reused easy handles,
    the concurrency cap per provider, the libcurl callbacks and the
    mapping of what came back to an outcome. The contract and outcome
    mapping are in bf_sender.h. The rest has a file of its own: the bytes
    that go out and whether a request can go out at all (bf_compose), the
    reading of an HTTP provider's reply body (bf_reply), the token bucket,
    429 pause and circuit breaker (bf_admission, on the clock this file
    reads), and the plain-SMTP client (bf_smtp).

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

#include <czmq.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include "bf_admission.h"
#include "bf_backoff.h"
#include "bf_compose.h"
#include "bf_log.h"
#include "bf_mask.h"
#include "bf_outage.h"
#include "bf_reply.h"
#include "bf_smtp.h"
#include "bf_text.h"

#define S_RETRY_AFTER_MAX_S   3600
#define S_RETRY_AFTER_DFLT_MS 1000
#define S_CONCURRENCY_MAX     100000
#define S_NOFILE_CAP          1048576

#define S_DEFAULT_CONCURRENCY 64
#define S_DEFAULT_TIMEOUT_MS  10000
#define S_DEFAULT_CONNECT_MS  5000
#define S_DEFAULT_ERROR_PCT   50
#define S_DEFAULT_MIN_SAMPLES 20
#define S_DEFAULT_OPEN_MS     30000

typedef struct {
    bool configured;
    char *url;         /* HTTP: base + "/v1/messages"; email: the smtp URL */
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    int concurrency;
    int rate; /* per second, 0 = unlimited (for the log line) */
    int inflight;
    bf_admission_t *admission; /* rate, 429 pause, breaker; NULL when not configured */
    int64_t last_success_ms;   /* wall clock of its last healthy result; 0 = none yet */
    bool fresh;                /* HTTP: new transfers open fresh connections (after a
                                  provider-wide failure, until the next healthy result) */
} s_provider_t;

typedef struct s_slot_t s_slot_t;
struct s_slot_t {
    s_slot_t *next;     /* free list or local list */
    s_slot_t *all_next; /* every slot, for destroy */
    CURL *easy;
    bool active; /* added to the multi */
    bool native; /* handed to bf_smtp */
    bf_provider_t provider;
    bf_admit_ticket_t ticket;  /* from the provider's admission */
    bf_send_request_t request; /* strings owned */
    bf_send_result_t result;
    bf_text_buf_t upload;
    size_t upload_pos;
    bool upload_started;
    bf_text_buf_t reply;
    bool reply_truncated;
    bool has_retry_after;
    char retry_after[64];
    char last_line[256]; /* last SMTP reply line, one line and masked */
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
    int backoff_base_ms, backoff_max_ms; /* the provider's back-off after an outage's failure */
    uint64_t jitter_state;               /* for the back-off's jitter (bf_backoff_random) */
    s_slot_t *free_slots;
    s_slot_t *all_slots;
    s_slot_t *local_head, *local_tail;
};

static const char *s_provider_names[BF_PROVIDER_COUNT] = { "email", "sms", "push" };

//  --------------------------------------------------------------------------
//  Small helpers: copies (clocks are CZMQ's zclock_mono and zclock_time)

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

//  --------------------------------------------------------------------------
//  Masking: nothing a provider echoes may leak a contact

static char *
s_mask_contact (bf_send_kind_t kind, const char *to, char *out, size_t outsize)
{
    if (kind == BF_SEND_EMAIL)
        return bf_mask_email (to, out, outsize);
    if (kind == BF_SEND_PUSH)
        return bf_mask_token (to, out, outsize);
    return bf_mask_phone (to, out, outsize);
}

//  Provider text (an SMTP reply, a libcurl error) made fit for a log and
//  the attempt table: one clean line, contacts masked (bf_mask.h), cut at
//  a character boundary to fit out.
static void
s_scrub (const char *text, const char *contact, char *out, size_t outsize)
{
    bf_mask_text (text, strlen (text), contact, BF_MASK_ONE_LINE | BF_MASK_TOKENS, out, outsize);
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
    bf_text_buf_reset (&slot->upload);
    bf_text_buf_reset (&slot->reply);
    slot->upload_pos = 0;
    slot->upload_started = slot->reply_truncated = slot->has_retry_after = false;
    slot->active = slot->native = false;
    slot->ticket = (bf_admit_ticket_t){ false, 0 };
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
//  Admission: the concurrency cap here, the rest in bf_admission

//  True when a send to which may start at now. The admission is asked
//  first, so an open breaker whose time is up turns half-open even while
//  the concurrency is full.
static bool
s_ready (bf_sender_t *self, bf_provider_t which, int64_t now)
{
    s_provider_t *p = &self->providers[which];
    if (!p->configured)
        return false;
    bool admitted = bf_admission_ready (p->admission, now);
    return admitted && p->inflight < p->concurrency;
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
    size_t len = size * nmemb, room = BF_REPLY_BODY_MAX - slot->reply.len;
    size_t take = len < room ? len : room;
    if (take < len)
        slot->reply_truncated = true;
    if (take && bf_text_buf_add (&slot->reply, data, take))
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
        //  Masked as it is kept: a raw copy cut to its size could split a
        //  contact so that masking it later would not see one.
        bf_mask_text (data, len, slot->request.to, BF_MASK_ONE_LINE | BF_MASK_TOKENS,
                      slot->last_line, sizeof slot->last_line);
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
    S_SET (CURLOPT_FRESH_CONNECT, self->providers[slot->provider].fresh ? 1L : 0L);
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
        rc = bf_compose_email (&slot->upload, request, self->smtp_from);
        slot->rcpt = s_slist_add (NULL, request->to, &rc);
    } else {
        char key[64];
        snprintf (key, sizeof key, "Idempotency-Key: %" PRId64, request->delivery_id);
        rc = bf_compose_json (&slot->upload, request);
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
    //  A date past year 292 million would overflow the milliseconds.
    if ((int64_t)when > INT64_MAX / 1000 - S_RETRY_AFTER_MAX_S)
        return S_RETRY_AFTER_MAX_S * 1000;
    int64_t delta = (int64_t)when * 1000 - zclock_time ();
    if (delta < 0)
        return 0;
    return delta > S_RETRY_AFTER_MAX_S * 1000 ? S_RETRY_AFTER_MAX_S * 1000 : (int)delta;
}

static void
s_transfer_error (bf_sender_t *self, s_slot_t *slot, CURLcode code, bf_send_result_t *result)
{
    char reason[200];
    const char *text = slot->errbuf[0] ? slot->errbuf : curl_easy_strerror (code);
    s_scrub (text, slot->request.to, reason, sizeof reason);
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
        result->provider_wide = true; /* no reply: connection, reset, timeout */
        s_transfer_error (self, slot, code, result);
        return;
    }
    bf_reply_t reply;
    bf_reply_read (&reply, slot->reply.data, slot->reply.len, slot->reply_truncated,
                   slot->request.to);
    bool parsed = reply.parsed;
    const char *reason = reply.reason;
    if (parsed)
        memcpy (result->provider_message_id, reply.message_id, sizeof reply.message_id);

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
        result->provider_wide = true;
    } else {
        result->outcome = BF_OUTCOME_TRANSIENT;
        result->provider_wide = status >= 500 && status < 600;
    }
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
    s_scrub (slot->last_line, slot->request.to, line, sizeof line);
    if (reply >= 400 && reply < 500) {
        result->outcome = BF_OUTCOME_TRANSIENT;
        /*  libcurl does not say which step a 4xx answered: only 421
            (service not available) is surely the server's.  */
        result->provider_wide = reply == 421;
    } else if (reply >= 500 && reply < 600
               && (code == CURLE_SEND_ERROR
                   || (code == CURLE_WEIRD_SERVER_REPLY && slot->upload_started)))
        result->outcome = BF_OUTCOME_PERMANENT;
    else {
        /*  A 5xx while setting the session up, or no reply at all.  */
        result->outcome = BF_OUTCOME_TRANSIENT;
        result->provider_wide = true;
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
    /*  The server's, not this message's: no session (connect, timeout, a
        lost connection), a failed set-up, or 421 at any step.  */
    result->provider_wide
        = smtp->error == BF_SMTP_CONNECT || smtp->error == BF_SMTP_TIMEOUT
          || smtp->error == BF_SMTP_BROKEN
          || (smtp->error == BF_SMTP_REPLY && (smtp->in_setup || smtp->code == 421));
    char line[200] = "";
    s_scrub (smtp->line, slot->request.to, line, sizeof line);
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

//  Limits and URL of one provider; a provider without URL stays
//  unconfigured. Returns NULL or why the config is refused.
static const char *
s_configure_provider (bf_sender_t *self, bf_provider_t which, const bf_sender_config_t *config)
{
    const char *urls[BF_PROVIDER_COUNT] = { config->smtp_url, config->sms_url, config->push_url };
    const char *tokens[BF_PROVIDER_COUNT] = { NULL, config->sms_token, config->push_token };
    s_provider_t *p = &self->providers[which];
    const char *url = urls[which], *token = tokens[which];
    if (config->concurrency[which] > S_CONCURRENCY_MAX || config->concurrency[which] < 0)
        return "concurrency must be 0..100000";
    if (config->rate_per_s[which] < 0)
        return "rate_per_s must be >= 0";
    p->concurrency
        = config->concurrency[which] > 0 ? config->concurrency[which] : S_DEFAULT_CONCURRENCY;
    p->rate = config->rate_per_s[which];
    if (!url || !*url)
        return NULL;
    if (bf_compose_has_ctl (url))
        return "provider URL has control characters";
    int rc = 0;
    if (which == BF_PROVIDER_EMAIL) {
        if (strncmp (url, "smtp://", 7) != 0 && strncmp (url, "smtps://", 8) != 0)
            return "smtp_url must start with smtp:// or smtps://";
        p->url = s_strdup_opt (url, &rc);
    } else {
        if (!s_http_url_ok (url))
            return "sms_url / push_url must start with http:// or https://";
        size_t len = strlen (url);
        while (len > 0 && url[len - 1] == '/')
            len--;
        bf_text_buf_t full = { 0 };
        if (bf_text_buf_add (&full, url, len) || bf_text_buf_str (&full, "/v1/messages"))
            rc = -1;
        p->url = full.data;
        if (token && *token) {
            if (bf_compose_has_ctl (token))
                return "provider token has control characters";
            bf_text_buf_t header = { 0 };
            if (bf_text_buf_fmt (&header, "Authorization: Bearer %s", token))
                rc = -1;
            p->auth_header = header.data;
        }
    }
    if (rc)
        return "out of memory";
    p->configured = true;
    return NULL;
}

//  The email provider's From, credentials and TLS. Returns NULL or why.
static const char *
s_configure_email (bf_sender_t *self, const bf_sender_config_t *config)
{
    const char *why = NULL;
    if (bf_compose_mail_from (config->smtp_from, &self->smtp_mail_from, &why))
        return why;
    int rc = 0;
    self->smtp_from = s_strdup_opt (config->smtp_from, &rc);
    if ((config->smtp_username && bf_compose_has_ctl (config->smtp_username))
        || (config->smtp_password && bf_compose_has_ctl (config->smtp_password)))
        return "smtp credentials have control characters";
    //  An empty user name is "no AUTH" (the configuration's default).
    bool auth = config->smtp_username && config->smtp_username[0];
    self->smtp_username = auth ? s_strdup_opt (config->smtp_username, &rc) : NULL;
    self->smtp_password = auth ? s_strdup_opt (config->smtp_password, &rc) : NULL;
    self->smtp_starttls = config->smtp_starttls;
    self->smtp_allow_plain_auth = config->smtp_allow_plain_auth;
    if (auth && !self->smtp_starttls && strncmp (config->smtp_url, "smtp://", 7) == 0
        && !self->smtp_allow_plain_auth)
        return "SMTP AUTH over plain smtp:// without STARTTLS refused: "
               "the password would cross the network in clear (allow it "
               "only for a relay on this host: smtp_allow_plain_auth)";
    return rc ? "out of memory" : NULL;
}

//  Timeouts and the breaker; then each configured provider's admission.
//  Returns NULL or why.
static const char *
s_configure_limits (bf_sender_t *self, const bf_sender_config_t *config)
{
    if (config->breaker_error_pct > 100)
        return "breaker_error_pct must be 0..100";
    if (config->breaker_min_samples > BF_ADMISSION_WINDOW)
        return "breaker_min_samples must be 0..100 (the window)";
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
    /*  Never longer than the breaker waits for its probe: a provider that
        is back must not be kept waiting longer than an open breaker
        would.  */
    self->backoff_base_ms = config->backoff_base_ms > 0 ? config->backoff_base_ms : 0;
    self->backoff_max_ms
        = config->backoff_max_ms > 0 ? config->backoff_max_ms : self->backoff_base_ms;
    if (self->backoff_max_ms > self->breaker_open_ms)
        self->backoff_max_ms = self->breaker_open_ms;
    if (self->backoff_base_ms > self->backoff_max_ms)
        self->backoff_base_ms = self->backoff_max_ms;
    self->jitter_state = (uint64_t)zclock_time () ^ (uint64_t)(uintptr_t)self;
    int64_t now = zclock_mono ();
    for (int i = 0; i < BF_PROVIDER_COUNT; i++) {
        s_provider_t *p = &self->providers[i];
        if (!p->configured)
            continue;
        bf_admission_config_t admission = { .name = s_provider_names[i],
                                            .rate_per_s = p->rate,
                                            .breaker_pct = self->breaker_pct,
                                            .breaker_min = self->breaker_min,
                                            .breaker_open_ms = self->breaker_open_ms };
        p->admission = bf_admission_new (&admission, now);
        if (!p->admission)
            return "out of memory";
    }
    return NULL;
}

static int
s_configure (bf_sender_t *self, const bf_sender_config_t *config, char *err, size_t errsize)
{
    const char *why = NULL;
    bool any = false;
    for (int i = 0; i < BF_PROVIDER_COUNT && !why; i++) {
        why = s_configure_provider (self, (bf_provider_t)i, config);
        any = any || self->providers[i].configured;
    }
    if (!why && !any)
        why = "no provider URL configured";
    if (!why && self->providers[BF_PROVIDER_EMAIL].configured)
        why = s_configure_email (self, config);
    if (!why)
        why = s_configure_limits (self, config);
    return why ? s_config_error (err, errsize, why) : 0;
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
        bf_text_buf_free (&slot->upload);
        bf_text_buf_free (&slot->reply);
        free (slot);
        slot = next;
    }
    if (self->multi)
        curl_multi_cleanup (self->multi);
    for (int i = 0; i < BF_PROVIDER_COUNT; i++) {
        free (self->providers[i].url);
        free (self->providers[i].auth_header);
        bf_admission_destroy (&self->providers[i].admission);
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
    return s_ready (self, provider, zclock_mono ());
}

int
bf_sender_wait_ms (bf_sender_t *self, bf_provider_t provider)
{
    if (!self || (unsigned)provider >= BF_PROVIDER_COUNT)
        return -1;
    int64_t now = zclock_mono ();
    if (s_ready (self, provider, now))
        return 0;
    s_provider_t *p = &self->providers[provider];
    if (!p->configured || p->inflight >= p->concurrency)
        return -1;
    int64_t wait = bf_admission_wait_ms (p->admission, now);
    return wait > INT_MAX ? INT_MAX : (int)wait;
}

//  Reports request, which can never be sent, at the next poll: PERMANENT
//  "invalid request: why", without contacting anyone.
static void
s_refuse (bf_sender_t *self, s_slot_t *slot, const char *why)
{
    const bf_send_request_t *request = &slot->request;
    char masked[BF_MASK_MAX];
    slot->result.outcome = BF_OUTCOME_PERMANENT;
    slot->result.finished_ms = slot->result.started_ms;
    snprintf (slot->result.error, sizeof slot->result.error, "invalid request: %s", why);
    bf_warn ("sender: delivery %" PRId64 " to %s not sent: %s", request->delivery_id,
             s_mask_contact (request->kind, request->to, masked, sizeof masked), why);
    if (self->local_tail)
        self->local_tail->next = slot;
    else
        self->local_head = slot;
    self->local_tail = slot;
}

//  Hands slot's transfer to bf_smtp or libcurl. Returns 0, or -1 (logged).
static int
s_start (bf_sender_t *self, s_slot_t *slot)
{
    const bf_send_request_t *request = &slot->request;
    if (slot->provider == BF_PROVIDER_EMAIL && self->smtp) {
        if (bf_compose_email (&slot->upload, request, self->smtp_from)
            || bf_smtp_submit (self->smtp, self->smtp_mail_from, request->to, slot->upload.data,
                               slot->upload.len, slot)) {
            bf_error ("sender: could not start delivery %" PRId64 " (out of memory)",
                      request->delivery_id);
            return -1;
        }
        slot->native = true;
        return 0;
    }
    if (s_prepare (self, slot) || curl_multi_add_handle (self->multi, slot->easy) != CURLM_OK) {
        bf_error ("sender: could not start delivery %" PRId64 " (out of memory or libcurl error)",
                  request->delivery_id);
        return -1;
    }
    slot->active = true;
    return 0;
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
    const char *invalid = bf_compose_invalid (request);
    int64_t now = zclock_mono ();
    if (!invalid && !s_ready (self, which, now))
        return -1;
    s_slot_t *slot = s_slot_take (self, request);
    if (!slot) {
        bf_error ("sender: out of memory for delivery %" PRId64, request->delivery_id);
        return -1;
    }
    slot->result.provider_name = s_provider_names[which];
    slot->result.started_ms = zclock_time ();
    slot->started_mono = now;
    if (invalid) {
        s_refuse (self, slot, invalid);
        return 0;
    }
    if (s_start (self, slot)) {
        s_slot_release (self, slot);
        return -1;
    }
    p->inflight++;
    slot->ticket = bf_admission_take (p->admission);
    return 0;
}

//  How an outcome counts for the breaker (bf_sender.h, "Circuit breaker").
static bf_admit_result_t
s_admit_result (bf_outcome_t outcome)
{
    if (outcome == BF_OUTCOME_TRANSIENT || outcome == BF_OUTCOME_UNKNOWN)
        return BF_ADMIT_FAILED;
    return outcome == BF_OUTCOME_THROTTLED ? BF_ADMIT_THROTTLED : BF_ADMIT_HEALTHY;
}

//  Whose slot's finished send is (bf_outage.h): the provider's last
//  success as it stood, the outage flag, and the provider's back-off when
//  it is an outage's failure and the breaker is not already holding the
//  provider back. A healthy result becomes the provider's last success.
static void
s_attribute (bf_sender_t *self, s_slot_t *slot, s_provider_t *p, int64_t now)
{
    bf_send_result_t *result = &slot->result;
    result->provider_last_success_ms = p->last_success_ms;
    if (s_admit_result (result->outcome) == BF_ADMIT_HEALTHY) {
        result->provider_wide = false;
        if (result->finished_ms > p->last_success_ms)
            p->last_success_ms = result->finished_ms;
        return;
    }
    bf_breaker_state_t breaker = bf_admission_breaker (p->admission, now);
    bf_outage_facts_t facts = { result->outcome, result->provider_wide, result->started_ms,
                                p->last_success_ms, breaker };
    result->outage = bf_outage_attributed (&facts);
    if (!result->outage || breaker != BF_BREAKER_CLOSED)
        return;
    int64_t wait = bf_admission_back_off (p->admission, slot->started_mono, now,
                                          self->backoff_base_ms, self->backoff_max_ms,
                                          (unsigned)bf_backoff_random (&self->jitter_state));
    if (wait > 0)
        bf_info ("sender: %s provider down (no success since the failed send started: %s);"
                 " backing off %" PRId64 " ms",
                 s_provider_names[slot->provider], result->error, wait);
}

//  After a provider-wide failure the connections kept open to the
//  provider are from before it: a server that restarted answers 421 on
//  them (SMTP) or has closed them. The breaker's probe and the drain after
//  recovery must start on fresh ones, or each stale one fails a probe and
//  reopens the breaker. bf_smtp's idle sessions are closed; libcurl's
//  cache has no per-host flush, so HTTP transfers ask for a fresh
//  connection until the provider's next healthy result.
static void
s_forget_connections (bf_sender_t *self, bf_provider_t which, s_provider_t *p,
                      const bf_send_result_t *result)
{
    if (s_admit_result (result->outcome) == BF_ADMIT_HEALTHY) {
        p->fresh = false;
        return;
    }
    if (!result->provider_wide)
        return;
    if (which == BF_PROVIDER_EMAIL && self->smtp) {
        int dropped = bf_smtp_drop_idle (self->smtp);
        if (dropped > 0)
            bf_debug ("sender: %s provider failed as a whole; closed %d idle sessions",
                      s_provider_names[which], dropped);
    } else
        p->fresh = true;
}

//  Updates the provider for a finished send whose outcome is mapped.
static void
s_account (bf_sender_t *self, s_slot_t *slot)
{
    bf_send_result_t *result = &slot->result;
    result->finished_ms = zclock_time ();
    /*  Every error leaves the sender through here, whichever path wrote
        it: mask it once more as a whole (idempotent on masked text), so no
        contact reaches delivery.last_error or delivery_attempt.error.  */
    if (result->error[0]) {
        char safe[sizeof result->error];
        size_t len = bf_mask_text_n (result->error, strlen (result->error), slot->request.to,
                                     BF_MASK_TOKENS, safe, sizeof safe);
        memcpy (result->error, safe, len + 1);
    }
    int64_t now = zclock_mono ();
    s_provider_t *p = &self->providers[slot->provider];
    p->inflight--;
    if (result->outcome == BF_OUTCOME_THROTTLED
        && bf_admission_pause (p->admission, result->retry_after_ms, now))
        bf_info ("sender: %s provider throttled (429); paused for %d ms",
                 s_provider_names[slot->provider], result->retry_after_ms);
    bf_admission_record (p->admission, slot->ticket, s_admit_result (result->outcome), now);
    s_attribute (self, slot, p, now);
    s_forget_connections (self, slot->provider, p, result);
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
    const bf_admission_t *admission = self->providers[provider].admission;
    return bf_admission_breaker_name (bf_admission_breaker (admission, zclock_mono ()));
}

bf_breaker_state_t
bf_sender_breaker (const bf_sender_t *self, bf_provider_t provider, bf_breaker_counts_t *counts)
{
    const bf_admission_t *admission = self && (unsigned)provider < BF_PROVIDER_COUNT
                                          ? self->providers[provider].admission
                                          : NULL;
    if (counts)
        *counts = bf_admission_breaker_counts (admission);
    return bf_admission_breaker (admission, zclock_mono ());
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
    return bf_reply_parse (body, len, message_id, idsize, reason, reasonsize);
}
