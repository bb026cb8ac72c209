/*  bf_tplquery — templates.list, template.show, template.preview (see
    bf_tplquery.h).  */

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_db.h"
#include "bf_log.h"
#include "bf_mask.h"
#include "bf_render.h"
#include "bf_template.h"
#include "bf_text.h"
#include "bf_tplquery.h"

/*  A timestamptz as RFC 3339 UTC with milliseconds (as bf_query.c).  */
#define S_TS(x) "to_char ((" x ") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*  The largest version number accepted.  */
#define S_VERSION_MAX 1000000000LL

typedef enum { S_LIST, S_SHOW, S_PREVIEW } s_verb_t;

static const char *const s_keys[]
    = { "channel", "version", "bill_id", "subject", "body", "body_html", "short_body" };
#define S_NKEYS (sizeof s_keys / sizeof s_keys[0])

/*  The keys each verb takes, as bits of s_keys.  */
static const struct {
    const char *verb;
    s_verb_t id;
    unsigned keys;
} s_verbs[] = {
    { "templates.list", S_LIST, 1u << 0 },
    { "template.show", S_SHOW, 1u << 0 | 1u << 1 },
    { "template.preview", S_PREVIEW, 0x7fu },
};

typedef struct {
    const char *value[S_NKEYS]; /* by s_keys; NULL: not given */
    char version[24], bill_id[24];
} s_args_t;

enum { S_CHANNEL, S_VERSION, S_BILL_ID, S_SUBJECT, S_BODY, S_BODY_HTML, S_SHORT_BODY };

bool
bf_tplquery_handles (const char *verb)
{
    for (size_t i = 0; verb && i < sizeof s_verbs / sizeof s_verbs[0]; i++)
        if (!strcmp (verb, s_verbs[i].verb))
            return true;
    return false;
}

/*  value, printable and cut, for an error message.  */
static const char *
s_shown (const char *value, char *out, size_t outsize)
{
    return bf_text_clip (out, outsize, value, 40);
}

/*  A decimal integer in 1..max into out ("07" and "+7" are not).  */
static bool
s_positive (const char *text, long long max, char *out, size_t outsize)
{
    size_t len = strlen (text);
    if (len < 1 || len > 18 || text[0] == '0')
        return false;
    for (size_t i = 0; i < len; i++)
        if (text[i] < '0' || text[i] > '9')
            return false;
    long long v = strtoll (text, NULL, 10);
    if (v < 1 || v > max)
        return false;
    snprintf (out, outsize, "%lld", v);
    return true;
}

static int
s_args_parse (const Billflow__Command *cmd, unsigned accepted, s_args_t *args, char *err,
              size_t errsize)
{
    memset (args, 0, sizeof *args);
    char shown[64];
    for (size_t i = 0; i < cmd->n_args; i++) {
        const char *key = cmd->args[i] && cmd->args[i]->key ? cmd->args[i]->key : "";
        const char *value = cmd->args[i] && cmd->args[i]->value ? cmd->args[i]->value : "";
        size_t k = 0;
        while (k < S_NKEYS && strcmp (key, s_keys[k]))
            k++;
        if (k == S_NKEYS || !(accepted & (1u << k)))
            return bf_err_set (err, errsize, "unknown argument \"%s\" for %s",
                               s_shown (key, shown, sizeof shown), cmd->verb),
                   BF_QUERY_BAD;
        if (args->value[k])
            return bf_err_set (err, errsize, "%s: given more than once", key), BF_QUERY_BAD;
        args->value[k] = value;
        if (k == S_CHANNEL && strcmp (value, "EMAIL") && strcmp (value, "SMS")
            && strcmp (value, "PUSH"))
            return bf_err_set (err, errsize, "channel: expected EMAIL, SMS or PUSH, got \"%s\"",
                               s_shown (value, shown, sizeof shown)),
                   BF_QUERY_BAD;
        if (k == S_VERSION
            && !s_positive (value, S_VERSION_MAX, args->version, sizeof args->version))
            return bf_err_set (err, errsize, "version: expected a positive integer, got \"%s\"",
                               s_shown (value, shown, sizeof shown)),
                   BF_QUERY_BAD;
        if (k == S_BILL_ID
            && !s_positive (value, 999999999999999999LL, args->bill_id, sizeof args->bill_id))
            return bf_err_set (err, errsize, "bill_id: expected a positive integer, got \"%s\"",
                               s_shown (value, shown, sizeof shown)),
                   BF_QUERY_BAD;
        if (k == S_VERSION)
            args->value[k] = args->version;
        if (k == S_BILL_ID)
            args->value[k] = args->bill_id;
    }
    return BF_QUERY_OK;
}

/* clang-format off */
#define S_PUBLISHED                                                                              \
    " 'created_at', " S_TS ("t.created_at") ", 'published_by', t.published_by,"                 \
    " 'client', (SELECT c.client FROM command c WHERE c.command_id = t.published_by)"

static const char s_sql_list[] =
    "SELECT json_build_object ('templates', coalesce (json_agg (json_build_object ("
    "  'channel', t.channel, 'purpose', t.purpose, 'version', t.version, 'active', t.active,"
    "  'subject', t.subject," S_PUBLISHED ")"
    "  ORDER BY array_position (ARRAY['EMAIL', 'SMS', 'PUSH'], t.channel), t.purpose,"
    "  t.version DESC), '[]'))"
    " FROM template t WHERE $1::text IS NULL OR t.channel = $1";

static const char s_sql_show[] =
    "SELECT coalesce ((SELECT json_build_object ("
    "  'channel', t.channel, 'purpose', t.purpose, 'version', t.version, 'active', t.active,"
    "  'subject', t.subject, 'body', t.body, 'body_html', t.body_html,"
    "  'short_body', t.short_body," S_PUBLISHED ")"
    " FROM template t WHERE t.channel = $1 AND t.purpose = 'BILL_ISSUED'"
    " AND t.version = $2::int), json_build_object ('missing', true))";

/*  The columns of bf_render_template_column_t, in order.  */
static const char s_sql_stored[] =
    "SELECT channel, version, coalesce (subject, ''), body, coalesce (body_html, ''),"
    " coalesce (short_body, '') FROM template"
    " WHERE channel = $1 AND purpose = 'BILL_ISSUED' AND version = $2::int";
static const char s_sql_draft[] =
    "SELECT $1::text, 0, coalesce ($2::text, ''), $3::text, coalesce ($4::text, ''),"
    " coalesce ($5::text, '')";

/*  The columns of bf_render_ctx_column_t (the dispatcher's d_context), in
    order, for the bill: there is no delivery, so no id, no quiet hours and
    no kept content.  */
static const char s_sql_context[] =
    "SELECT 0, s.name, s.email_enc, s.phone_enc, s.push_token_enc, NULL, NULL,"
    " b.total, b.due_date, b.line_count, b.period, b.bill_id, b.subscriber_id, 1,"
    " NULL, NULL, NULL, NULL, NULL"
    " FROM bill b JOIN subscriber s ON s.id = b.subscriber_id"
    " WHERE b.bill_id = $1::bigint ORDER BY b.period DESC LIMIT 1";

/*  The columns of bf_render_line_column_t (d_lines), in order.  */
static const char s_sql_lines[] =
    "SELECT period, subscriber_id, code, amount, label FROM bill_line"
    " WHERE period = $1 AND subscriber_id = $2::bigint ORDER BY line_no";
/* clang-format on */

/*  text with every email address and phone number masked, as a new JSON
    string (JSON null for NULL).  */
static json_t *
s_masked (const char *text)
{
    if (!text)
        return json_null ();
    size_t len = strlen (text), size = 2 * len + 64;
    char *out = malloc (size);
    json_t *value = out ? json_string (bf_mask_text (text, len, NULL, 0, out, size)) : NULL;
    free (out);
    return value ? value : json_string ("(unavailable)");
}

static const char *
s_kind_name (bf_send_kind_t kind)
{
    return kind == BF_SEND_EMAIL ? "EMAIL"
           : kind == BF_SEND_SMS ? "SMS"
           : kind == BF_SEND_LMS ? "LMS"
                                 : "PUSH";
}

/*  Renders the template rows tpl for the bill in ctxres with lines into
 *doc (see bf_tplquery.h).  */
static int
s_render (const bf_query_ctx_t *ctx, const s_args_t *args, const PGresult *tpl,
          const PGresult *ctxres, const PGresult *lines, json_t **doc, char *err, size_t errsize)
{
    const char *channel = args->value[S_CHANNEL];
    int index = !strcmp (channel, "EMAIL") ? 0 : !strcmp (channel, "SMS") ? 1 : 2;
    int64_t subscriber = strtoll (PQgetvalue (ctxres, 0, BF_RENDER_CTX_SUBSCRIBER_ID), NULL, 10);
    char to[BF_MASK_MAX];
    bf_query_contact (ctx, ctxres, 0,
                      index == 0 ? BF_RENDER_CTX_EMAIL_ENC : BF_RENDER_CTX_PHONE_ENC, channel,
                      subscriber, to, sizeof to);
    if (index == 2)
        snprintf (to, sizeof to, "***");

    bf_render_t *render = bf_render_new ();
    bf_send_request_t request;
    memset (&request, 0, sizeof request);
    int rc = BF_QUERY_BAD;
    char *preview = NULL;
    if (!render) {
        bf_err_set (err, errsize, "out of memory");
        goto done;
    }
    /*  tpl holds the one row of this channel: loading fails when it is unusable.  */
    if (bf_render_load (render, tpl) != 0) {
        bf_err_set (err, errsize, "the %s template is not usable (see control's log)", channel);
        goto done;
    }
    char why[512];
    if (bf_render_message (render, index, ctxres, 0, lines, to, &request, why, sizeof why) != 0) {
        bf_err_set (err, errsize, "cannot render the %s template for bill %s: %s", channel,
                    args->value[S_BILL_ID], why);
        goto done;
    }
    size_t size = strlen (request.text) + (request.title ? strlen (request.title) : 0) + 1024;
    preview = malloc (size);
    if (!preview
        || bf_template_preview (s_kind_name (request.kind), to, request.title, request.text,
                                preview, size)
               < 0) {
        bf_err_set (err, errsize, "out of memory");
        goto done;
    }
    const char *draft_version = args->value[S_VERSION];
    *doc = json_pack (
        "{s:s, s:o, s:b, s:I, s:s, s:I, s:s, s:s, s:o, s:o, s:o, s:i, s:s}", "channel", channel,
        "version", draft_version ? json_integer (strtoll (draft_version, NULL, 10)) : json_null (),
        "draft", !draft_version, "bill_id", (json_int_t)strtoll (args->value[S_BILL_ID], NULL, 10),
        "period", PQgetvalue (ctxres, 0, BF_RENDER_CTX_PERIOD), "subscriber_id",
        (json_int_t)subscriber, "to", to, "sent_as", s_kind_name (request.kind), "subject",
        s_masked (request.title), "body", s_masked (request.text), "body_html",
        s_masked (request.html), "lines", lines ? PQntuples (lines) : 0, "preview", preview);
    rc = *doc ? BF_QUERY_OK : (bf_err_set (err, errsize, "out of memory"), BF_QUERY_BAD);
done:
    free (preview);
    free ((char *)request.to);
    free ((char *)request.title);
    free ((char *)request.text);
    free ((char *)request.html);
    bf_render_destroy (&render);
    return rc;
}

static int
s_preview (PGconn *conn, const bf_query_ctx_t *ctx, const s_args_t *args, json_t **doc, char *err,
           size_t errsize)
{
    const char *const *v = args->value;
    if (!v[S_CHANNEL] || !v[S_BILL_ID])
        return bf_err_set (err, errsize, "template.preview needs channel and bill_id"),
               BF_QUERY_BAD;
    bool draft = v[S_BODY] || v[S_SUBJECT] || v[S_BODY_HTML] || v[S_SHORT_BODY];
    if (draft == (v[S_VERSION] != NULL))
        return bf_err_set (err, errsize,
                           "template.preview takes version=N or a draft (body=..., with subject,"
                           " body_html, short_body as the channel needs), not %s",
                           draft ? "both" : "neither"),
               BF_QUERY_BAD;
    if (draft) {
        bf_template_set_t set
            = { v[S_CHANNEL], v[S_SUBJECT], v[S_BODY], v[S_BODY_HTML], v[S_SHORT_BODY] };
        char why[512];
        if (bf_template_check_set (&set, why, sizeof why) != 0)
            return bf_err_set (err, errsize, "template refused: %s", why), BF_QUERY_BAD;
    }
    PGresult *tpl = NULL, *ctxres = NULL, *lines = NULL;
    int rc = BF_QUERY_BAD;
    if (draft) {
        const char *params[]
            = { v[S_CHANNEL], v[S_SUBJECT], v[S_BODY], v[S_BODY_HTML], v[S_SHORT_BODY] };
        tpl = bf_db_query (conn, s_sql_draft, 5, params, PGRES_TUPLES_OK, "template.preview");
    } else {
        const char *params[] = { v[S_CHANNEL], v[S_VERSION] };
        tpl = bf_db_query (conn, s_sql_stored, 2, params, PGRES_TUPLES_OK, "template.preview");
    }
    if (!tpl) {
        rc = bf_query_db_failed (err, errsize);
        goto done;
    }
    if (PQntuples (tpl) != 1) {
        bf_err_set (err, errsize, "no %s template version %s", v[S_CHANNEL], v[S_VERSION]);
        goto done;
    }
    const char *bparams[] = { v[S_BILL_ID] };
    ctxres = bf_db_query (conn, s_sql_context, 1, bparams, PGRES_TUPLES_OK, "template.preview");
    if (!ctxres) {
        rc = bf_query_db_failed (err, errsize);
        goto done;
    }
    if (PQntuples (ctxres) != 1) {
        bf_err_set (err, errsize, "no bill %s", v[S_BILL_ID]);
        goto done;
    }
    const char *lparams[] = { PQgetvalue (ctxres, 0, BF_RENDER_CTX_PERIOD),
                              PQgetvalue (ctxres, 0, BF_RENDER_CTX_SUBSCRIBER_ID) };
    lines = bf_db_query (conn, s_sql_lines, 2, lparams, PGRES_TUPLES_OK, "template.preview");
    if (!lines) {
        rc = bf_query_db_failed (err, errsize);
        goto done;
    }
    rc = s_render (ctx, args, tpl, ctxres, lines, doc, err, errsize);
done:
    PQclear (tpl);
    PQclear (ctxres);
    PQclear (lines);
    return rc;
}

int
bf_tplquery (PGconn *conn, const bf_query_ctx_t *ctx, const Billflow__Command *cmd, json_t **doc,
             char *err, size_t errsize)
{
    *doc = NULL;
    size_t q = 0;
    while (q < sizeof s_verbs / sizeof s_verbs[0] && strcmp (cmd->verb, s_verbs[q].verb))
        q++;
    if (q == sizeof s_verbs / sizeof s_verbs[0])
        return bf_err_set (err, errsize, "not a template query"), BF_QUERY_BAD;
    s_args_t args;
    int rc = s_args_parse (cmd, s_verbs[q].keys, &args, err, errsize);
    if (rc != BF_QUERY_OK)
        return rc;
    if (!conn || PQstatus (conn) != CONNECTION_OK)
        return bf_err_set (err, errsize, "database unavailable: no connection"), BF_QUERY_RETRY;
    const char *const *v = args.value;
    if (s_verbs[q].id == S_PREVIEW)
        return s_preview (conn, ctx, &args, doc, err, errsize);
    if (s_verbs[q].id == S_LIST) {
        const char *params[] = { v[S_CHANNEL] };
        return bf_query_document (conn, s_sql_list, 1, params, "templates.list", doc, err,
                                  errsize);
    }
    if (!v[S_CHANNEL] || !v[S_VERSION])
        return bf_err_set (err, errsize, "template.show needs channel and version"), BF_QUERY_BAD;
    const char *params[] = { v[S_CHANNEL], v[S_VERSION] };
    rc = bf_query_document (conn, s_sql_show, 2, params, "template.show", doc, err, errsize);
    if (rc == BF_QUERY_OK && json_object_get (*doc, "missing")) {
        json_decref (*doc);
        *doc = NULL;
        return bf_err_set (err, errsize, "no %s template version %s", v[S_CHANNEL], v[S_VERSION]),
               BF_QUERY_BAD;
    }
    return rc;
}
