/*  fuzz_template — fuzz target for the template engine (bf_template.h):
    bf_template_check, bf_template_render, bf_sms_compose and
    bf_template_preview, with both the template text and the values fuzzed.

    Input: byte 0 = flags (bit 0: HTML mode; bit 1: take period and due date
    from the input instead of valid ones; bits 2-4: number of bill lines,
    0..7), then NUL-separated strings: template, name, lookup name (what the
    plan/add-on lookup answers, "" = unknown), period, due date, then one
    code per bill line. Line amounts and the total are fixed extremes
    (INT64_MIN, INT64_MAX, negative, zero), which format_won must handle.

    Contract checked: a template bf_template_check refuses never renders;
    one it accepts renders with a valid view unless the result does not fit
    (the error says so); a result is NUL-terminated, as long as returned
    and valid UTF-8 with no control characters coming from a value; a
    buffer one byte too small fails with "" (never a truncated notice).  */

#include <stdint.h>
#include <string.h>

#include "bf_sms.h"
#include "bf_template.h"
#include "bf_text.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

#define S_PARTS 13
#define S_OUT   65536

static const char *
s_lookup (void *arg, const char *kind, const char *code)
{
    (void)kind;
    (void)code;
    const char *name = arg;
    return name && *name ? name : NULL;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    bool html = flags & 1;
    bool fuzzed_dates = flags & 2;
    size_t nlines = (flags >> 2) & 7;

    char *parts[S_PARTS], *buffer;
    bf_fuzz_split (data + 1, size - 1, parts, S_PARTS, &buffer);
    const char *tmpl = parts[0] ? parts[0] : "";
    static const int64_t amounts[] = { INT64_MIN, INT64_MAX, -13459, 0, 111200, -1, 1 };
    bf_template_line_t lines[8] = { { 0 } };
    for (size_t i = 0; i < nlines; i++) {
        //  A line without a code makes the view invalid: not what is tested.
        lines[i].code = parts[5 + i] && *parts[5 + i] ? parts[5 + i] : "VAT";
        lines[i].amount = amounts[i % 7];
        //  Odd lines carry a stored label (settle's, any text); even ones
        //  are labelled from their code.
        lines[i].label = i % 2 ? parts[5 + i] : NULL;
    }
    bf_template_view_t view = {
        .name = parts[1],
        .period = fuzzed_dates && parts[3] ? parts[3] : "2026-10",
        .total = amounts[(flags >> 5) % 7],
        .due_date = fuzzed_dates && parts[4] ? parts[4] : "2026-11-25",
        .bill_id = (int64_t)size * 1000003,
        .lines = nlines ? lines : NULL,
        .line_count = nlines,
        .lookup = s_lookup,
        .lookup_arg = parts[2],
    };

    char err[256] = "";
    int checked = bf_template_check (tmpl, err, sizeof err);
    bf_fuzz_require (checked == 0 || (checked == -1 && err[0]));

    char *out = malloc (S_OUT);
    bf_fuzz_require (out != NULL);
    err[0] = '\0';
    int len = bf_template_render (tmpl, &view, html, out, S_OUT, err, sizeof err);
    if (checked != 0)
        bf_fuzz_require (len == -1);
    if (len < 0) {
        bf_fuzz_require (len == -1 && out[0] == '\0' && err[0]);
        if (checked == 0 && !fuzzed_dates)
            bf_fuzz_require (strstr (err, "needs") != NULL);
    } else {
        bf_fuzz_require ((size_t)len == strlen (out) && (size_t)len < S_OUT);
        bf_fuzz_require (bf_text_utf8_valid (out, strlen (out)));
        //  One byte short: refused whole, never cut.
        if (len > 0) {
            char *small = malloc ((size_t)len);
            bf_fuzz_require (small != NULL);
            int again = bf_template_render (tmpl, &view, html, small, (size_t)len, err,
                                            sizeof err);
            bf_fuzz_require (again == -1 && small[0] == '\0');
            free (small);
        }

        //  The SMS decision and the preview take the rendered text.
        bf_sms_t *sms = malloc (sizeof *sms);
        bf_fuzz_require (sms != NULL);
        if (bf_sms_compose (out, parts[1], parts[2], sms, err, sizeof err) == 0) {
            bf_fuzz_require (strlen (sms->body) < sizeof sms->body);
            bf_fuzz_require (sms->kind == BF_SMS_KIND_SMS || sms->kind == BF_SMS_KIND_LMS
                             || sms->kind == BF_SMS_KIND_SHORT);
        }
        free (sms);
        char preview[4096];
        int plen = bf_template_preview (html ? "EMAIL" : "SMS", "01012345678", parts[1], out,
                                        preview, sizeof preview);
        bf_fuzz_require (plen == -1 ? preview[0] == '\0' : (size_t)plen == strlen (preview));
    }
    free (out);
    free (buffer);
    return 0;
}
