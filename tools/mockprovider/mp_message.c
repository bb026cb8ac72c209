/*  mp_message — the provider's answer to one POST /v1/messages.  */

#include "mp_message.h"

#include <inttypes.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mp_buf.h"
#include "mp_euckr.h"
#include "mp_json.h"
#include "mp_log.h"
#include "mp_map.h"
#include "mp_rand.h"
#include "mp_record.h"
#include "mp_store.h"

static void s_reply (mp_message_reply_t *reply, unsigned status, int kind, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

/*  Sets the reply; the body is format's expansion.  */
static void
s_reply (mp_message_reply_t *reply, unsigned status, int kind, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    int n = vsnprintf (reply->text, sizeof reply->text, format, args);
    va_end (args);
    reply->status = status;
    reply->kind = kind;
    reply->len = n < 0 ? 0 : (size_t)n < sizeof reply->text ? (size_t)n : sizeof reply->text - 1;
}

/*  Sets a {"error": why} reply.  */
static void
s_reply_error (mp_message_reply_t *reply, unsigned status, const char *why)
{
    mp_buf_t buf = { 0 };
    mp_buf_str (&buf, "{\"error\": ");
    mp_buf_json (&buf, why, strlen (why));
    mp_buf_str (&buf, "}");
    s_reply (reply, status, MP_MESSAGE_JSON, "%s",
             buf.oom ? "{\"error\": \"out of memory\"}" : buf.data);
    free (buf.data);
}

/*  Parses the body into f. Returns the channel it names, or -1 with the reply set and the
    request counted as invalid.  */
static int
s_parse (const mp_message_t *msg, char *scratch, mp_json_fields_t *f, mp_message_reply_t *reply)
{
    char why[256];
    mp_json_error_t error;
    if (mp_json_parse (msg->body ? msg->body : "", msg->len, scratch, f, &error) != 0) {
        snprintf (why, sizeof why, "malformed JSON: %s at byte %zu", error.why, error.at);
        s_reply_error (reply, MHD_HTTP_BAD_REQUEST, why);
        mp_store_add_invalid ();
        return -1;
    }
    if (!f->channel.str) {
        s_reply_error (reply, MHD_HTTP_BAD_REQUEST, "channel is required");
        mp_store_add_invalid ();
        return -1;
    }
    if (strcmp (f->channel.str, "SMS") == 0)
        return MP_SMS;
    if (strcmp (f->channel.str, "LMS") == 0)
        return MP_LMS;
    if (strcmp (f->channel.str, "PUSH") == 0)
        return MP_PUSH;
    s_reply_error (reply, MHD_HTTP_BAD_REQUEST, "unknown channel (SMS, LMS or PUSH)");
    mp_store_add_invalid ();
    return -1;
}

/*  The headers: Content-Type, the bearer token, the Idempotency-Key. Returns true when the
    request is refused (reply set, counted).  */
static bool
s_refuse_headers (const mp_config_t *cfg, const mp_message_t *msg, int channel,
                  mp_message_reply_t *reply)
{
    const char *ctype = msg->content_type;
    if (!ctype || strncasecmp (ctype, "application/json", 16) != 0
        || (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' ')) {
        s_reply_error (reply, MHD_HTTP_BAD_REQUEST, "Content-Type must be application/json");
        mp_store_add_outcome (channel, MP_REJECTED);
        return true;
    }
    if (cfg->token) {
        const char *auth = msg->authorization;
        if (!auth || strncasecmp (auth, "Bearer ", 7) != 0 || strcmp (auth + 7, cfg->token) != 0) {
            s_reply_error (reply, MHD_HTTP_UNAUTHORIZED, "missing or wrong bearer token");
            reply->kind = MP_MESSAGE_UNAUTHORIZED;
            mp_store_add_outcome (channel, MP_REJECTED);
            return true;
        }
    }
    size_t key_len = msg->key ? strlen (msg->key) : 0;
    if (key_len == 0 || key_len > MP_MAX_KEY) {
        char why[256];
        snprintf (why, sizeof why, "Idempotency-Key is required (1 to %d bytes)", MP_MAX_KEY);
        s_reply_error (reply, MHD_HTTP_BAD_REQUEST, why);
        mp_store_add_outcome (channel, MP_REJECTED);
        return true;
    }
    return false;
}

/*  A key accepted before: 409 with the original id for a resend, 422 for another body.
    Returns true when the key was known (reply set, counted).  */
static bool
s_known_key (const mp_config_t *cfg, const mp_message_t *msg, int channel, uint64_t body_hash,
             mp_message_reply_t *reply)
{
    size_t key_len = strlen (msg->key);
    uint64_t id;
    if (!mp_store_find (MP_STORE_KEY_IDS, msg->key, key_len, &id))
        return false;
    /*  The common idempotency convention: a key names one request. A resend must be that
        request byte for byte; the same key with another body is the client's error.  */
    uint64_t first_hash;
    if (!cfg->key_reuse_ok && mp_store_find (MP_STORE_KEY_BODIES, msg->key, key_len, &first_hash)
        && first_hash != body_hash) {
        s_reply_error (reply, MHD_HTTP_UNPROCESSABLE_CONTENT,
                       "Idempotency-Key was used with a different request body");
        mp_store_add_outcome (channel, MP_REJECTED);
        mp_store_add_key_reuse ();
        mp_log ("http %s: Idempotency-Key reused with a different body (422)",
                mp_store_channel_name (channel));
        return true;
    }
    s_reply (reply, MHD_HTTP_CONFLICT, MP_MESSAGE_JSON, "{\"message_id\": \"m-%" PRIu64 "\"}", id);
    mp_store_add_outcome (channel, MP_DUPLICATE);
    return true;
}

/*  The content the channel cannot carry, or NULL. why (why_size bytes) holds an EUC-KR
    reason.  */
static const char *
s_content_problem (const mp_json_fields_t *f, int channel, char *why, size_t why_size)
{
    if (f->to.len == 0)
        return "to is empty";
    if (f->to.len > MP_MAX_TO)
        return "to is too long";
    if (f->body.len == 0)
        return "body is empty";
    if (channel == MP_PUSH && (!f->title.str || f->title.len == 0))
        return "PUSH needs a title";
    if (channel == MP_SMS
        && !mp_euckr_fits ("body", f->body.str, f->body.len, 90, "SMS", why, why_size))
        return why;
    if (channel == MP_LMS && f->title.str
        && !mp_euckr_fits ("title", f->title.str, f->title.len, 40, "LMS", why, why_size))
        return why;
    if (channel == MP_LMS
        && !mp_euckr_fits ("body", f->body.str, f->body.len, 2000, "LMS", why, why_size))
        return why;
    return NULL;
}

/*  Field errors: missing or mistyped → 400, content the channel cannot carry → 422, a
    --reject-recipient → 404. Returns true when the message is refused (reply set, counted).  */
static bool
s_refuse_fields (const mp_config_t *cfg, const mp_json_fields_t *f, int channel,
                 mp_message_reply_t *reply)
{
    if (!f->to.str || !f->body.str || (f->title.present && !f->title.is_null && !f->title.str)) {
        s_reply_error (reply, MHD_HTTP_BAD_REQUEST, "to and body must be strings");
        mp_store_add_outcome (channel, MP_REJECTED);
        return true;
    }
    char why[256];
    const char *problem = s_content_problem (f, channel, why, sizeof why);
    if (problem) {
        s_reply_error (reply, MHD_HTTP_UNPROCESSABLE_CONTENT, problem);
        mp_store_add_outcome (channel, MP_REJECTED);
        return true;
    }
    if (mp_config_rejects (cfg, f->to.str)) {
        s_reply_error (reply, MHD_HTTP_NOT_FOUND, "unknown recipient");
        mp_store_add_outcome (channel, MP_REJECTED);
        return true;
    }
    return false;
}

/*  The injected outcomes that do not accept: a failure, a throttle, garbage. Returns true
    when draw picked one (reply set, counted).  */
static bool
s_inject (const mp_config_t *cfg, int channel, double draw, mp_message_reply_t *reply)
{
    double fail = cfg->fail_pct[channel];
    if (draw < fail) {
        if (cfg->fail_permanent) {
            s_reply_error (reply, MHD_HTTP_UNPROCESSABLE_CONTENT, "permanent failure (injected)");
            mp_store_add_outcome (channel, MP_REJECTED);
        } else {
            s_reply_error (reply, MHD_HTTP_SERVICE_UNAVAILABLE, "temporary failure (injected)");
            mp_store_add_outcome (channel, MP_FAILED);
        }
        return true;
    }
    if (draw < fail + cfg->throttle_pct) {
        s_reply_error (reply, MHD_HTTP_TOO_MANY_REQUESTS, "throttled (injected)");
        reply->kind = MP_MESSAGE_THROTTLE;
        mp_store_add_outcome (channel, MP_THROTTLED);
        return true;
    }
    if (draw < fail + cfg->throttle_pct + cfg->garbage_pct) {
        s_reply (reply, MHD_HTTP_OK, MP_MESSAGE_GARBAGE, "<html><body>502 upstream hiccup</body>");
        mp_store_add_outcome (channel, MP_GARBAGE);
        return true;
    }
    return false;
}

/*  Accepts the message under its key (unless the same key won a race a moment ago), counts
    the recipient and records it.  */
static void
s_accept (const mp_config_t *cfg, const mp_message_t *msg, const mp_json_fields_t *f, int channel,
          double draw, uint64_t body_hash, mp_message_reply_t *reply)
{
    size_t key_len = strlen (msg->key);
    uint64_t found = 0;
    uint64_t id = mp_store_next_id ();
    int rc = mp_store_add (MP_STORE_KEY_IDS, msg->key, key_len, id, &found);
    if (rc == 0) { /* the same key won a race a moment ago */
        s_reply (reply, MHD_HTTP_CONFLICT, MP_MESSAGE_JSON, "{\"message_id\": \"m-%" PRIu64 "\"}",
                 found);
        mp_store_add_outcome (channel, MP_DUPLICATE);
        return;
    }
    if (rc < 0 || mp_store_recipient_add (channel, f->to.str, f->to.len) == 0) {
        s_reply_error (reply, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        mp_store_add_outcome (channel, MP_FAILED);
        return;
    }
    /*  Out of memory here only weakens the reuse check for this key.  */
    mp_store_add (MP_STORE_KEY_BODIES, msg->key, key_len, body_hash, &found);
    mp_record_http (channel, id, msg->key, f);
    /*  --lost-reply-pct: the message is accepted (a resend of the key is a duplicate), but the
        client is told otherwise, as when a gateway loses the reply.  */
    if (draw < cfg->fail_pct[channel] + cfg->throttle_pct + cfg->garbage_pct + cfg->lost_reply_pct)
        s_reply_error (reply, MHD_HTTP_BAD_GATEWAY,
                       "reply lost (injected; the message was accepted)");
    else
        s_reply (reply, MHD_HTTP_ACCEPTED, MP_MESSAGE_JSON, "{\"message_id\": \"m-%" PRIu64 "\"}",
                 id);
    mp_store_add_outcome (channel, MP_ACCEPTED);
}

/*  The checks in their order, for a request that names a known channel.  */
static void
s_decide (const mp_config_t *cfg, const mp_message_t *msg, const mp_json_fields_t *f, int channel,
          mp_message_reply_t *reply)
{
    if (s_refuse_headers (cfg, msg, channel, reply))
        return;
    uint64_t body_hash = mp_map_hash (msg->body ? msg->body : "", msg->len);
    if (s_known_key (cfg, msg, channel, body_hash, reply))
        return;
    if (s_refuse_fields (cfg, f, channel, reply))
        return;
    double draw = mp_rand_pct ();
    if (s_inject (cfg, channel, draw, reply))
        return;
    s_accept (cfg, msg, f, channel, draw, body_hash, reply);
}

int
mp_message_handle (const mp_config_t *cfg, const mp_message_t *msg, mp_message_reply_t *reply)
{
    if (msg->too_large) {
        char why[256];
        snprintf (why, sizeof why, "body exceeds %d bytes", MP_MESSAGE_MAX_BODY);
        s_reply_error (reply, MHD_HTTP_BAD_REQUEST, why);
        mp_store_add_invalid ();
        return -1;
    }
    char *scratch = malloc (msg->len + 1);
    if (!scratch) {
        s_reply_error (reply, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        return -1;
    }
    mp_json_fields_t f;
    int channel = s_parse (msg, scratch, &f, reply);
    if (channel >= 0)
        s_decide (cfg, msg, &f, channel, reply);
    if (cfg->verbose) {
        char masked[64];
        mp_log ("http %s to=%s -> %u %.*s", channel >= 0 ? mp_store_channel_name (channel) : "-",
                f.to.str ? mp_log_mask (f.to.str, f.to.len, masked, sizeof masked) : "-",
                reply->status, (int)reply->len, reply->text);
    }
    free (scratch);
    return channel;
}
