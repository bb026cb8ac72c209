/*  bf_template — bill notice templates, checks of template rows and masked
    previews.

    Rendering is a recursive walk over the template text, with no parse
    tree and no allocation. The walk always visits every tag, also inside
    sections it does not print (a false condition, a list with no lines), so
    rendering checks the whole template exactly as bf_template_check does:
    a broken template fails every time, never only for some bills. A
    {{#lines}} body is walked once per line. EUC-KR counting and fitting
    live in bf_euckr.c, the SMS / LMS decision in bf_sms.c.  */

#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bf_date.h"
#include "bf_euckr.h"
#include "bf_label.h"
#include "bf_log.h"
#include "bf_template.h"
#include "bf_text.h"
#include "bf_won.h"

#define S_MAX_DEPTH 8   /* sections nested in sections */
#define S_NAME_MAX  32  /* variable name, with NUL */
#define S_VALUE_MAX 192 /* a formatted value or composed label, with NUL */

//  ---------------------------------------------------------------------------
//  Line labels

const char *
bf_template_line_label (const char *code, bf_template_lookup_fn *lookup, void *arg, char *buf,
                        size_t bufsize)
{
    //  The one rule of common/bf_label.c; lookup only supplies the name.
    const char *name = NULL;
    if (code && !bf_label_fixed (code) && lookup) {
        if (strncmp (code, "PLAN:", 5) == 0 && code[5])
            name = lookup (arg, "PLAN", code + 5);
        else if (strncmp (code, "ADDON:", 6) == 0 && code[6])
            name = lookup (arg, "ADDON", code + 6);
    }
    return bf_label_line (code, name, buf, bufsize);
}

//  ---------------------------------------------------------------------------
//  Template walk

typedef enum {
    S_VAR_NONE = -1,
    S_VAR_NAME,
    S_VAR_PERIOD,
    S_VAR_PERIOD_LABEL,
    S_VAR_MONTH_LABEL,
    S_VAR_TOTAL,
    S_VAR_DUE_DATE,
    S_VAR_DUE_LABEL,
    S_VAR_DUE_SHORT,
    S_VAR_BILL_ID,
    S_VAR_LINE_COUNT,
    S_VAR_LINES,
    S_VAR_LABEL,
    S_VAR_CODE,
    S_VAR_AMOUNT,
} s_var_t;

typedef enum {
    S_SCOPE_TOP,  /* anywhere */
    S_SCOPE_LIST, /* lines: only as a section */
    S_SCOPE_LINE, /* only inside {{#lines}} */
} s_scope_t;

static const struct {
    const char *name;
    s_scope_t scope;
} s_vars[] = {
    [S_VAR_NAME] = { "name", S_SCOPE_TOP },
    [S_VAR_PERIOD] = { "period", S_SCOPE_TOP },
    [S_VAR_PERIOD_LABEL] = { "period_label", S_SCOPE_TOP },
    [S_VAR_MONTH_LABEL] = { "month_label", S_SCOPE_TOP },
    [S_VAR_TOTAL] = { "total", S_SCOPE_TOP },
    [S_VAR_DUE_DATE] = { "due_date", S_SCOPE_TOP },
    [S_VAR_DUE_LABEL] = { "due_label", S_SCOPE_TOP },
    [S_VAR_DUE_SHORT] = { "due_short", S_SCOPE_TOP },
    [S_VAR_BILL_ID] = { "bill_id", S_SCOPE_TOP },
    [S_VAR_LINE_COUNT] = { "line_count", S_SCOPE_TOP },
    [S_VAR_LINES] = { "lines", S_SCOPE_LIST },
    [S_VAR_LABEL] = { "label", S_SCOPE_LINE },
    [S_VAR_CODE] = { "code", S_SCOPE_LINE },
    [S_VAR_AMOUNT] = { "amount", S_SCOPE_LINE },
};

#define S_VAR_COUNT (sizeof s_vars / sizeof s_vars[0])

static const char *
s_var_name (s_var_t var)
{
    return var >= 0 && (size_t)var < S_VAR_COUNT ? s_vars[var].name : "";
}

static s_scope_t
s_var_scope (s_var_t var)
{
    return var >= 0 && (size_t)var < S_VAR_COUNT ? s_vars[var].scope : S_SCOPE_TOP;
}

typedef struct {
    const char *tmpl;
    const bf_template_view_t *view; /* NULL when only checking */
    bool html;
    bf_text_out_t out; /* need: bytes the result needs so far */
    char *err;
    size_t errsize;
    //  Bill-level values, formatted once per render.
    char period_label[32];
    char month_label[16];
    char total[32];
    char due_label[32];
    char due_short[16];
    char bill_id[32];
    char line_count[32];
} s_walk_t;

static int s_walk_fail (s_walk_t *self, size_t offset, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  Reports an error at offset of the template, as "line N: reason".  */
static int
s_walk_fail (s_walk_t *self, size_t offset, const char *format, ...)
{
    int line = 1;
    for (size_t i = 0; i < offset && self->tmpl[i]; i++)
        if (self->tmpl[i] == '\n')
            line++;
    char reason[256];
    va_list args;
    va_start (args, format);
    vsnprintf (reason, sizeof reason, format, args);
    va_end (args);
    return bf_err_set (self->err, self->errsize, "line %d: %s", line, reason);
}

static void
s_put (s_walk_t *self, const char *text, size_t n)
{
    bf_text_out_add (&self->out, text, n);
}

/*  Appends a substituted value: control characters become spaces, bytes
    that are not UTF-8 become '?', and in HTML the five markup characters
    become entities.  */
static void
s_put_value (s_walk_t *self, const char *value)
{
    size_t len = strlen (value);
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = bf_text_utf8_decode (value + i, len - i, &cp);
        if (n == 0) {
            s_put (self, "?", 1);
            i++;
            continue;
        }
        const char *entity = NULL;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            entity = " ";
        else if (self->html) {
            switch (cp) {
                case '&':
                    entity = "&amp;";
                    break;
                case '<':
                    entity = "&lt;";
                    break;
                case '>':
                    entity = "&gt;";
                    break;
                case '"':
                    entity = "&quot;";
                    break;
                case '\'':
                    entity = "&#39;";
                    break;
                default:
                    break;
            }
        }
        if (entity)
            s_put (self, entity, strlen (entity));
        else
            s_put (self, value + i, n);
        i += n;
    }
}

/*  Value of a variable for the current line (NULL outside lines). Uses buf
    for values composed on the fly.  */
static const char *
s_value (s_walk_t *self, s_var_t var, const bf_template_line_t *line, char *buf, size_t bufsize)
{
    const bf_template_view_t *view = self->view;
    switch (var) {
        case S_VAR_NAME:
            return view->name ? view->name : "";
        case S_VAR_PERIOD:
            return view->period;
        case S_VAR_PERIOD_LABEL:
            return self->period_label;
        case S_VAR_MONTH_LABEL:
            return self->month_label;
        case S_VAR_TOTAL:
            return self->total;
        case S_VAR_DUE_DATE:
            return view->due_date;
        case S_VAR_DUE_LABEL:
            return self->due_label;
        case S_VAR_DUE_SHORT:
            return self->due_short;
        case S_VAR_BILL_ID:
            return self->bill_id;
        case S_VAR_LINE_COUNT:
            return self->line_count;
        case S_VAR_LABEL:
            //  The label settle stored with the line, when the caller has it.
            if (line->label && *line->label)
                return line->label;
            return bf_template_line_label (line->code, view->lookup, view->lookup_arg, buf,
                                           bufsize);
        case S_VAR_CODE:
            return line->code;
        case S_VAR_AMOUNT:
            bf_won_format (line->amount, buf, bufsize);
            return buf;
        case S_VAR_LINES:
        case S_VAR_NONE:
            break;
    }
    return "";
}

/*  Parses the tag whose "{{" is at offset at: sets *sigil ('#', '^', '/' or
    0), *var and *end (offset after "}}"). Returns 0 or -1 (reported).  */
static int
s_parse_tag (s_walk_t *self, size_t at, char *sigil, s_var_t *var, size_t *end)
{
    const char *start = self->tmpl + at + 2;
    const char *close = strstr (start, "}}");
    if (!close)
        return s_walk_fail (self, at, "tag \"{{\" is never closed with \"}}\"");
    *end = (size_t)(close - self->tmpl) + 2;

    const char *p = start;
    const char *q = close;
    while (p < q && *p == ' ')
        p++;
    while (q > p && q[-1] == ' ')
        q--;
    *sigil = 0;
    if (p < q && (*p == '#' || *p == '^' || *p == '/')) {
        *sigil = *p++;
        while (p < q && *p == ' ')
            p++;
    }
    size_t len = (size_t)(q - p);
    bool ok = len > 0 && len < S_NAME_MAX && *p >= 'a' && *p <= 'z';
    for (size_t i = 0; ok && i < len; i++)
        ok = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_';
    /*  At most 40 bytes of the tag, never ending inside a character.  */
    int shown = (int)bf_text_utf8_prefix (start, (size_t)(close - start), 40);
    if (!ok)
        return s_walk_fail (self, at, "malformed tag \"{{%.*s}}\"", shown, start);
    *var = S_VAR_NONE;
    for (size_t i = 0; i < S_VAR_COUNT; i++)
        if (strlen (s_vars[i].name) == len && memcmp (s_vars[i].name, p, len) == 0)
            *var = (s_var_t)i;
    if (*var == S_VAR_NONE)
        return s_walk_fail (self, at, "unknown variable \"%.*s\"", (int)len, p);
    return 0;
}

/*  Walks the template from *pos, printing when emit, until the "{{/...}}"
    that closes the section opened by open_var at open_at, or the end of the
    text at the top level (open_var S_VAR_NONE). in_lines: line variables
    are in scope; line is the current line (NULL when not printing).
    Returns 0 with *pos after the closing tag, or -1 (reported).  */
static int
s_walk (s_walk_t *self, size_t *pos, s_var_t open_var, size_t open_at, bool in_lines,
        const bf_template_line_t *line, bool emit, int depth)
{
    size_t i = *pos;
    while (true) {
        const char *tag = strstr (self->tmpl + i, "{{");
        size_t at = tag ? (size_t)(tag - self->tmpl) : i + strlen (self->tmpl + i);
        if (emit)
            s_put (self, self->tmpl + i, at - i);
        if (!tag) {
            if (open_var != S_VAR_NONE)
                return s_walk_fail (self, open_at, "section \"%s\" is never closed",
                                    s_var_name (open_var));
            *pos = at;
            return 0;
        }
        char sigil = 0;
        s_var_t var = S_VAR_NONE;
        size_t end = 0;
        if (s_parse_tag (self, at, &sigil, &var, &end) != 0)
            return -1;
        const char *name = s_var_name (var);

        if (sigil == '/') {
            if (open_var == S_VAR_NONE)
                return s_walk_fail (self, at, "\"{{/%s}}\" closes no open section", name);
            if (var != open_var)
                return s_walk_fail (self, at, "\"{{/%s}}\" closes section \"%s\"", name,
                                    s_var_name (open_var));
            *pos = end;
            return 0;
        }
        if (s_var_scope (var) == S_SCOPE_LINE && !in_lines)
            return s_walk_fail (self, at, "\"%s\" is only known inside {{#lines}}", name);
        if (sigil == 0 && var == S_VAR_LINES)
            return s_walk_fail (self, at, "\"lines\" is a section: {{#lines}}...{{/lines}}");
        if (sigil == 0) {
            if (emit) {
                char buf[S_VALUE_MAX];
                s_put_value (self, s_value (self, var, line, buf, sizeof buf));
            }
            i = end;
            continue;
        }

        //  A section: {{#lines}} repeats per line; {{#x}} prints when x is
        //  not empty, {{^x}} when it is (for lines: when there are none).
        if (depth + 1 > S_MAX_DEPTH)
            return s_walk_fail (self, at, "sections nested more than %d deep", S_MAX_DEPTH);
        size_t body = end;
        if (var == S_VAR_LINES && sigil == '#') {
            if (in_lines)
                return s_walk_fail (self, at, "{{#lines}} inside {{#lines}}");
            size_t count = emit ? self->view->line_count : 0;
            for (size_t k = 0; k < count; k++) {
                body = end;
                if (s_walk (self, &body, var, at, true, &self->view->lines[k], true, depth + 1))
                    return -1;
            }
            if (count == 0 && s_walk (self, &body, var, at, true, NULL, false, depth + 1))
                return -1;
        } else {
            bool empty = true;
            if (emit && var == S_VAR_LINES)
                empty = self->view->line_count == 0;
            else if (emit) {
                char buf[S_VALUE_MAX];
                empty = *s_value (self, var, line, buf, sizeof buf) == 0;
            }
            bool show = emit && (sigil == '#' ? !empty : empty);
            if (s_walk (self, &body, var, at, in_lines, line, show, depth + 1))
                return -1;
        }
        i = body;
    }
}

/*  Rejects text that is not valid UTF-8, naming the line.  */
static int
s_check_utf8 (s_walk_t *self)
{
    const unsigned char *p = (const unsigned char *)self->tmpl;
    size_t len = strlen (self->tmpl);
    for (size_t i = 0; i < len;) {
        size_t n = bf_text_utf8_len (self->tmpl + i, len - i);
        if (n == 0)
            return s_walk_fail (self, i, "not valid UTF-8 (byte 0x%02x)", p[i]);
        i += n;
    }
    return 0;
}

int
bf_template_check (const char *tmpl, char *err, size_t errsize)
{
    if (!tmpl)
        return bf_err_set (err, errsize, "no template");
    s_walk_t self = { .tmpl = tmpl, .out = BF_TEXT_OUT (NULL, 0), .err = err, .errsize = errsize };
    if (s_check_utf8 (&self) != 0)
        return -1;
    size_t pos = 0;
    return s_walk (&self, &pos, S_VAR_NONE, 0, false, NULL, false, 0);
}

/*  Formats the bill-level values; -1 (reported) when the view is invalid.  */
static int
s_prepare (s_walk_t *self)
{
    const bf_template_view_t *view = self->view;
    bf_period_t period;
    if (!view->period || bf_period_parse (view->period, &period) != 0)
        return bf_err_set (self->err, self->errsize, "view: period \"%s\" is not YYYY-MM",
                           view->period ? view->period : "(null)");
    bf_day_t due;
    if (!view->due_date || bf_date_parse (view->due_date, &due) != 0)
        return bf_err_set (self->err, self->errsize, "view: due date \"%s\" is not YYYY-MM-DD",
                           view->due_date ? view->due_date : "(null)");
    if (view->line_count > 0 && !view->lines)
        return bf_err_set (self->err, self->errsize, "view: %zu lines but no line array",
                           view->line_count);
    for (size_t i = 0; i < view->line_count; i++)
        if (!view->lines[i].code || !*view->lines[i].code)
            return bf_err_set (self->err, self->errsize, "view: line %zu has no code", i + 1);
    int year, month, mday;
    bf_day_to_ymd (due, &year, &month, &mday);
    snprintf (self->period_label, sizeof self->period_label, "%d년 %d월", period.year,
              period.month);
    snprintf (self->month_label, sizeof self->month_label, "%d월", period.month);
    snprintf (self->due_label, sizeof self->due_label, "%d월 %d일", month, mday);
    snprintf (self->due_short, sizeof self->due_short, "%d/%d", month, mday);
    bf_won_format (view->total, self->total, sizeof self->total);
    snprintf (self->bill_id, sizeof self->bill_id, "%" PRId64, view->bill_id);
    snprintf (self->line_count, sizeof self->line_count, "%zu", view->line_count);
    return 0;
}

int
bf_template_render (const char *tmpl, const bf_template_view_t *view, bool html, char *out,
                    size_t outsize, char *err, size_t errsize)
{
    if (!out || outsize == 0)
        return bf_err_set (err, errsize, "no output buffer");
    out[0] = 0;
    if (!tmpl)
        return bf_err_set (err, errsize, "no template");
    if (!view)
        return bf_err_set (err, errsize, "no bill view");
    s_walk_t self = {
        .tmpl = tmpl,
        .view = view,
        .html = html,
        .out = BF_TEXT_OUT (out, outsize),
        .err = err,
        .errsize = errsize,
    };
    if (s_prepare (&self) != 0 || s_check_utf8 (&self) != 0)
        return -1;
    size_t pos = 0;
    if (s_walk (&self, &pos, S_VAR_NONE, 0, false, NULL, true, 0) != 0) {
        out[0] = 0;
        return -1;
    }
    if (!bf_text_out_fits (&self.out) || self.out.len > INT_MAX) {
        out[0] = 0;
        return bf_err_set (err, errsize, "rendered text needs %zu bytes, the buffer holds %zu",
                           self.out.need + 1, outsize);
    }
    return (int)self.out.len;
}

//  ---------------------------------------------------------------------------
//  Template rows

/*  Line number and character of the first character of text that EUC-KR
    cannot encode; false when there is none (or text is not UTF-8, which
    bf_template_check reports).  */
static bool
s_first_unencodable (const char *text, int *line, char ch[5])
{
    size_t at, n;
    if (!bf_euckr_unencodable (text, &at, &n))
        return false;
    *line = 1;
    for (size_t i = 0; i < at; i++)
        *line += text[i] == '\n';
    memcpy (ch, text + at, n);
    ch[n] = 0;
    return true;
}

int
bf_template_check_set (const bf_template_set_t *set, char *err, size_t errsize)
{
    if (!set || !set->channel)
        return bf_err_set (err, errsize, "no channel");
    bool email = strcmp (set->channel, "EMAIL") == 0;
    bool sms = strcmp (set->channel, "SMS") == 0;
    bool push = strcmp (set->channel, "PUSH") == 0;
    if (!email && !sms && !push)
        return bf_err_set (err, errsize, "unknown channel \"%s\"", set->channel);
    const struct {
        const char *field;
        const char *text;
        bool required;
    } parts[] = {
        { "subject", set->subject, true },
        { "body", set->body, true },
        { "body_html", set->body_html, email },
        { "short_body", set->short_body, sms },
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        const char *text = parts[i].text;
        if (!text || !*text) {
            if (parts[i].required)
                return bf_err_set (err, errsize, "%s: missing (needed for %s)", parts[i].field,
                                   set->channel);
            continue;
        }
        char reason[256];
        if (bf_template_check (text, reason, sizeof reason) != 0)
            return bf_err_set (err, errsize, "%s: %s", parts[i].field, reason);
        int line;
        char ch[5];
        if (sms && strcmp (parts[i].field, "body_html") != 0
            && s_first_unencodable (text, &line, ch))
            return bf_err_set (err, errsize, "%s: line %d: \"%s\" cannot be sent in EUC-KR",
                               parts[i].field, line, ch);
    }
    return 0;
}

//  ---------------------------------------------------------------------------
//  Previews

/*  Appends text with every email address and phone number in it masked
    (bf_mask_text).  */
static void
s_put_masked (bf_text_out_t *self, const char *text)
{
    size_t len = strlen (text);
    size_t size = 2 * len + 64; /* a mask is at most a few bytes longer than its match */
    char *masked = malloc (size);
    if (!masked) {
        bf_text_out_str (self, "***");
        return;
    }
    bf_text_out_str (self, bf_mask_text (text, len, NULL, 0, masked, size));
    free (masked);
}

int
bf_template_preview (const char *channel, const char *to, const char *title, const char *body,
                     char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return -1;
    out[0] = 0;
    const char *ch = channel ? channel : "";
    char masked[BF_MASK_MAX];
    if (strcmp (ch, "EMAIL") == 0)
        bf_mask_email (to, masked, sizeof masked);
    else if (strcmp (ch, "SMS") == 0 || strcmp (ch, "LMS") == 0)
        bf_mask_phone (to, masked, sizeof masked);
    else
        snprintf (masked, sizeof masked, "***");

    bf_text_out_t buf = BF_TEXT_OUT (out, outsize);
    bf_text_out_str (&buf, "채널: ");
    s_put_masked (&buf, ch);
    bf_text_out_str (&buf, "\n받는 사람: ");
    bf_text_out_str (&buf, masked);
    if (title) {
        bf_text_out_str (&buf, "\n제목: ");
        s_put_masked (&buf, title);
    }
    bf_text_out_str (&buf, "\n\n");
    s_put_masked (&buf, body ? body : "");
    if (!bf_text_out_fits (&buf) || buf.len > INT_MAX) {
        out[0] = 0;
        return -1;
    }
    return (int)buf.len;
}
