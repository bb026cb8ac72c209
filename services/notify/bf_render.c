/*  bf_render — templates in memory; one message per call.  */

#include <stdlib.h>
#include <string.h>

#include "bf_log.h"
#include "bf_render.h"
#include "bf_sms.h"
#include "bf_template.h"

#define S_OUT_MAX (256 * 1024)

typedef struct {
    bool usable;
    int version;
    char *subject, *body, *body_html, *short_body;
} s_template_t;

struct bf_render_t {
    s_template_t templates[3];   /* EMAIL, SMS, PUSH */
    char *subject, *text, *html; /* render buffers, S_OUT_MAX each */
    bf_template_line_t *view_lines;
    size_t view_cap;
};

static void
s_template_clear (s_template_t *t)
{
    free (t->subject);
    free (t->body);
    free (t->body_html);
    free (t->short_body);
    memset (t, 0, sizeof *t);
}

bf_render_t *
bf_render_new (void)
{
    bf_render_t *self = calloc (1, sizeof *self);
    if (!self)
        return NULL;
    self->subject = malloc (S_OUT_MAX);
    self->text = malloc (S_OUT_MAX);
    self->html = malloc (S_OUT_MAX);
    if (!self->subject || !self->text || !self->html)
        bf_render_destroy (&self);
    return self;
}

void
bf_render_destroy (bf_render_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    bf_render_t *self = *self_p;
    for (int c = 0; c < 3; c++)
        s_template_clear (&self->templates[c]);
    free (self->subject);
    free (self->text);
    free (self->html);
    free (self->view_lines);
    free (self);
    *self_p = NULL;
}

static char *
s_dup (const PGresult *res, int row, int col)
{
    return strdup (PQgetvalue (res, row, col));
}

int
bf_render_load (bf_render_t *self, const PGresult *templates)
{
    static const char *channels[] = { "EMAIL", "SMS", "PUSH" };
    int usable = 0;
    for (int c = 0; c < 3; c++) {
        s_template_clear (&self->templates[c]);
        for (int r = 0; r < PQntuples (templates); r++) {
            if (strcmp (PQgetvalue (templates, r, BF_RENDER_TPL_CHANNEL), channels[c]) != 0)
                continue;
            s_template_t *t = &self->templates[c];
            t->version = atoi (PQgetvalue (templates, r, BF_RENDER_TPL_VERSION));
            t->subject = s_dup (templates, r, BF_RENDER_TPL_SUBJECT);
            t->body = s_dup (templates, r, BF_RENDER_TPL_BODY);
            t->body_html = s_dup (templates, r, BF_RENDER_TPL_BODY_HTML);
            t->short_body = s_dup (templates, r, BF_RENDER_TPL_SHORT_BODY);
            bf_template_set_t set
                = { channels[c], t->subject, t->body, t->body_html, t->short_body };
            char err[256];
            if (!t->subject || !t->body || !t->body_html || !t->short_body
                || bf_template_check_set (&set, err, sizeof err) != 0) {
                bf_error ("render: the active %s template (version %d) is not usable: %s; "
                          "its notices wait until it is fixed",
                          channels[c], t->version, t->subject ? err : "out of memory");
                continue;
            }
            t->usable = true;
            usable++;
        }
    }
    if (usable == 0)
        bf_error ("render: no channel has a usable active template");
    return usable > 0 ? 0 : -1;
}

int
bf_render_version (const bf_render_t *self, int channel)
{
    if (channel < 0 || channel > 2 || !self->templates[channel].usable)
        return 0;
    return self->templates[channel].version;
}

bool
bf_render_needs_lines (const bf_render_t *self)
{
    for (int c = 0; c < 3; c++) {
        const s_template_t *t = &self->templates[c];
        if (t->usable
            && (strstr (t->body, "lines") || strstr (t->body_html, "lines")
                || strstr (t->subject, "lines")))
            return true;
    }
    return false;
}

/*  Orders a bill's key (period, subscriber) against row r of lines.  */
static int
s_bill_cmp (const PGresult *lines, int r, const char *period, int64_t subscriber)
{
    int c = strcmp (PQgetvalue (lines, r, BF_RENDER_LINE_PERIOD), period);
    if (c)
        return c < 0 ? -1 : 1;
    int64_t s = strtoll (PQgetvalue (lines, r, BF_RENDER_LINE_SUBSCRIBER_ID), NULL, 10);
    return s < subscriber ? -1 : s > subscriber ? 1 : 0;
}

/*  The lines of one bill (period, subscriber). Rows are one set per bill,
    ordered by (period, subscriber, line_no) — the dispatcher queries each
    bill once however many of its deliveries a batch holds — so a binary
    search finds the first.  */
static size_t
s_view_lines (bf_render_t *self, const PGresult *lines, const char *period, int64_t subscriber)
{
    if (!lines)
        return 0;
    int lo = 0, hi = PQntuples (lines);
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (s_bill_cmp (lines, mid, period, subscriber) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t n = 0;
    for (int r = lo; r < PQntuples (lines) && s_bill_cmp (lines, r, period, subscriber) == 0; r++) {
        if (n == self->view_cap) {
            size_t cap = self->view_cap ? self->view_cap * 2 : 64;
            bf_template_line_t *grown = realloc (self->view_lines, cap * sizeof *grown);
            if (!grown)
                break;
            self->view_lines = grown;
            self->view_cap = cap;
        }
        self->view_lines[n].code = PQgetvalue (lines, r, BF_RENDER_LINE_CODE);
        self->view_lines[n].amount
            = strtoll (PQgetvalue (lines, r, BF_RENDER_LINE_AMOUNT), NULL, 10);
        self->view_lines[n].label = PQgetvalue (lines, r, BF_RENDER_LINE_LABEL);
        n++;
    }
    return n;
}

int
bf_render_message (bf_render_t *self, int channel, const PGresult *ctx, int row,
                   const PGresult *lines, const char *to, bf_send_request_t *request, char *err,
                   size_t errsize)
{
    const s_template_t *t = &self->templates[channel];
    if (!t->usable) {
        snprintf (err, errsize, "no usable active template for this channel");
        return -1;
    }
    int64_t subscriber = strtoll (PQgetvalue (ctx, row, BF_RENDER_CTX_SUBSCRIBER_ID), NULL, 10);
    bf_template_view_t view = {
        .name = PQgetvalue (ctx, row, BF_RENDER_CTX_NAME),
        .period = PQgetvalue (ctx, row, BF_RENDER_CTX_PERIOD),
        .total = strtoll (PQgetvalue (ctx, row, BF_RENDER_CTX_TOTAL), NULL, 10),
        .due_date = PQgetvalue (ctx, row, BF_RENDER_CTX_DUE_DATE),
        .bill_id = strtoll (PQgetvalue (ctx, row, BF_RENDER_CTX_BILL_ID), NULL, 10),
    };
    view.line_count = s_view_lines (self, lines, view.period, subscriber);
    view.lines = self->view_lines;
    if (bf_template_render (t->subject, &view, false, self->subject, S_OUT_MAX, err, errsize) < 0
        || bf_template_render (t->body, &view, false, self->text, S_OUT_MAX, err, errsize) < 0)
        return -1;
    memset (request, 0, sizeof *request);
    if (channel == 0) {
        if (bf_template_render (t->body_html, &view, true, self->html, S_OUT_MAX, err, errsize) < 0)
            return -1;
        request->kind = BF_SEND_EMAIL;
        request->title = strdup (self->subject);
        request->text = strdup (self->text);
        request->html = strdup (self->html);
    } else if (channel == 1) {
        char *shortform = malloc (S_OUT_MAX);
        bf_sms_t *sms = malloc (sizeof *sms);
        int rc = shortform && sms ? 0 : -1;
        if (rc == 0)
            rc = bf_template_render (t->short_body, &view, false, shortform, S_OUT_MAX, err,
                                     errsize)
                         < 0
                     ? -1
                     : bf_sms_compose (self->text, self->subject, shortform, sms, err, errsize);
        if (rc == 0) {
            request->kind = sms->kind == BF_SMS_KIND_LMS ? BF_SEND_LMS : BF_SEND_SMS;
            request->title = sms->kind == BF_SMS_KIND_LMS ? strdup (sms->title) : NULL;
            request->text = strdup (sms->body);
        }
        free (shortform);
        free (sms);
        if (rc != 0)
            return -1;
    } else {
        request->kind = BF_SEND_PUSH;
        request->title = strdup (self->subject);
        request->text = strdup (self->text);
    }
    request->to = strdup (to);
    if (!request->to || !request->text || (channel != 1 && !request->title)) {
        free ((char *)request->to);
        free ((char *)request->title);
        free ((char *)request->text);
        free ((char *)request->html);
        memset (request, 0, sizeof *request);
        snprintf (err, errsize, "out of memory");
        return -1;
    }
    return 0;
}
