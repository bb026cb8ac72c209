/*  bf_template — renders a bill notice from a template, checks template
    rows, and previews a notice with its contacts masked.

    A pure module: no database, no network, no allocation of its own. The
    dispatcher loads
    a template row (db/003_notify.sql, table template), checks it once with
    bf_template_check_set, fills a bf_template_view_t from the bill and its lines,
    and renders each part with bf_template_render. For the SMS channel,
    bf_sms_compose (bf_sms.h) decides between SMS, LMS and the template's
    short form.
    The template language, the variables and the line labels are described
    in docs/templates.md.

    Every function is thread-safe (no shared state).  */

#ifndef BF_TEMPLATE_H_INCLUDED
#define BF_TEMPLATE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  ---------------------------------------------------------------------------
//  The bill a notice is about

/*  Display name of a plan or add-on code, or NULL when unknown. kind is
    "PLAN" or "ADDON"; code is the part after the colon ("LTE_43"). The
    returned string must stay valid until the render call returns.  */
typedef const char *(bf_template_lookup_fn)(void *arg, const char *kind, const char *code);

typedef struct {
    const char *code;  /* "PLAN:LTE_43", "VAT", ... as in bill_line.code */
    int64_t amount;    /* won, signed */
    const char *label; /* bill_line.label, shown as is; NULL: labelled from
                          code and the view's lookup (bf_template_line_label) */
} bf_template_line_t;

/*  What the caller fills for one render; nothing is copied or kept.  */
typedef struct {
    const char *name;     /* subscriber's name, UTF-8; NULL or "" = none */
    const char *period;   /* "YYYY-MM" */
    int64_t total;        /* won */
    const char *due_date; /* "YYYY-MM-DD" */
    int64_t bill_id;
    const bf_template_line_t *lines; /* in bill order; may be NULL when line_count is 0 */
    size_t line_count;
    bf_template_lookup_fn *lookup; /* may be NULL: codes are shown then */
    void *lookup_arg;
} bf_template_view_t;

//  ---------------------------------------------------------------------------
//  Templates

/*  Checks a template's syntax: every tag well formed, every variable known
    where it is used, sections balanced and not nested too deeply, the text
    valid UTF-8. Returns 0, or -1 with a reason naming the line into err.  */
int bf_template_check (const char *tmpl, char *err, size_t errsize);

/*  One template row. channel is "EMAIL", "SMS" or "PUSH".  */
typedef struct {
    const char *channel;
    const char *subject; /* email subject / LMS title / push title */
    const char *body;
    const char *body_html;
    const char *short_body;
} bf_template_set_t;

/*  Checks every part of a row with bf_template_check, and that the parts the
    channel needs are there: EMAIL needs subject, body and body_html; SMS
    needs subject, body and short_body, all encodable in EUC-KR; PUSH needs
    subject and body. Returns 0, or -1 with a reason naming the part.  */
int bf_template_check_set (const bf_template_set_t *set, char *err, size_t errsize);

/*  Renders tmpl for view into out as a NUL-terminated UTF-8 string. html
    true HTML-escapes every substituted value (the email HTML part); false
    substitutes raw text. Control characters in values become spaces and
    invalid UTF-8 bytes become '?', in both modes.
    Returns the number of bytes written (without the NUL), or -1 with a
    reason in err when the template is broken, the view is invalid (no
    period, bad dates, a line without code) or the result does not fit
    outsize; out is then "" (never a truncated notice).  */
int bf_template_render (const char *tmpl, const bf_template_view_t *view, bool html, char *out,
                        size_t outsize, char *err, size_t errsize);

/*  Korean label of a bill line code by the rule of common/bf_label.h ("VAT"
    -> "부가가치세"; "PLAN:LTE_43" -> the plan's name from lookup, else
    "요금제 (LTE_43)"; an unknown code -> the code itself). The dispatcher
    does not use it: it shows bill_line.label, which settle wrote. Returns
    a static string, lookup's string, or buf (used for composed labels;
    the code itself when buf is too small).  */
const char *bf_template_line_label (const char *code, bf_template_lookup_fn *lookup, void *arg,
                                    char *buf, size_t bufsize);

//  ---------------------------------------------------------------------------
//  Previews for logs and the CLI (G9): never a contact in clear

/*  Writes a preview of a rendered notice:
        채널: EMAIL
        받는 사람: h***@example.com
        제목: [빌플로우] 2026년 10월 이용요금 안내
        (blank line, then the body)
    to is masked by channel (bf_mask_email for EMAIL, bf_mask_phone for SMS
    and LMS, "***" for a push token or anything else), and every email
    address or mobile number found in title and body is masked too. title
    may be NULL. Returns the length, or -1 when out is too small (out "").  */
int bf_template_preview (const char *channel, const char *to, const char *title, const char *body,
                         char *out, size_t outsize);

#endif
