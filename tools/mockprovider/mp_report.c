/*  mp_report — the store's counts as the report JSON and the recipients CSV.  */

#include "mp_report.h"

#include <inttypes.h>
#include <string.h>

#include "mp_store.h"

#define S_OVER_ONE_CAP 100 /* entries listed in recipients_over_one */

static const char *const s_outcome_name[MP_OUTCOMES]
    = { "accepted", "duplicates", "failed", "rejected", "throttled", "garbage" };

typedef struct {
    mp_buf_t *buf;
    size_t listed;
    uint64_t total;
} s_over_one_t;

static void
s_visit_over_one (const char *recipient, size_t len, uint64_t accepted, void *arg)
{
    s_over_one_t *self = arg;
    if (accepted < 2)
        return;
    self->total++;
    if (self->listed >= S_OVER_ONE_CAP)
        return;
    mp_buf_str (self->buf, self->listed ? ", {\"recipient\": " : "{\"recipient\": ");
    mp_buf_json (self->buf, recipient, len);
    mp_buf_printf (self->buf, ", \"accepted\": %" PRIu64 "}", accepted);
    self->listed++;
}

void
mp_report_json (mp_buf_t *buf)
{
    mp_buf_str (buf, "{");
    for (int ch = 0; ch < MP_CHANNELS; ch++) {
        mp_buf_printf (buf, "%s\"%s\": {", ch ? ",\n " : "", mp_store_channel_name (ch));
        for (int o = 0; o < MP_OUTCOMES; o++)
            mp_buf_printf (buf, "\"%s\": %" PRIu64 ", ", s_outcome_name[o],
                           mp_store_outcomes (ch, o));
        mp_buf_printf (buf, "\"recipients\": %" PRIu64 ", \"recipients_over_one\": [",
                       mp_store_recipients (ch));
        s_over_one_t over = { .buf = buf };
        mp_store_each_recipient (ch, s_visit_over_one, &over);
        mp_buf_printf (buf, "], \"recipients_over_one_total\": %" PRIu64, over.total);
        if (ch == MP_EMAIL)
            mp_buf_printf (buf, ", \"duplicate_deliveries\": %" PRIu64, mp_store_redeliveries ());
        mp_buf_str (buf, "}");
    }
    mp_buf_printf (buf, ",\n \"invalid_requests\": %" PRIu64 ", \"key_reused\": %" PRIu64 "}\n",
                   mp_store_invalid_requests (), mp_store_key_reuses ());
}

/*  Appends text as one CSV field, quoted when RFC 4180 needs it.  */
static void
s_csv_field (mp_buf_t *buf, const char *text, size_t len)
{
    if (!memchr (text, ',', len) && !memchr (text, '"', len) && !memchr (text, '\n', len)
        && !memchr (text, '\r', len)) {
        mp_buf_add (buf, text, len);
        return;
    }
    mp_buf_add (buf, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '"')
            mp_buf_add (buf, "\"", 1);
        mp_buf_add (buf, &text[i], 1);
    }
    mp_buf_add (buf, "\"", 1);
}

typedef struct {
    mp_buf_t *buf;
    const char *channel;
} s_csv_t;

static void
s_visit_csv (const char *recipient, size_t len, uint64_t accepted, void *arg)
{
    s_csv_t *self = arg;
    mp_buf_str (self->buf, self->channel);
    mp_buf_add (self->buf, ",", 1);
    s_csv_field (self->buf, recipient, len);
    mp_buf_printf (self->buf, ",%" PRIu64 "\n", accepted);
}

void
mp_report_csv (mp_buf_t *buf)
{
    mp_buf_str (buf, "channel,recipient,accepted\n");
    for (int ch = 0; ch < MP_CHANNELS; ch++) {
        s_csv_t csv = { .buf = buf, .channel = mp_store_channel_name (ch) };
        mp_store_each_recipient (ch, s_visit_csv, &csv);
    }
}
