/*  Integration: what subscribers read (issue 10), end to end, on the real
    billdata, settle, notify and mock provider binaries.

    A generated month (multi-channel subscribers, plan changes inside the
    month, add-ons, discounts, charges, arrears) is imported only after
    notify has started, so a notify that cached plan names at start would
    show stale ones. The mock provider injects transient failures, so many
    notices are retried, and it refuses (422) a used Idempotency-Key with a
    changed body, as real providers do. The mock records every message it
    accepted; for each one — email text part, email HTML part, LMS, SMS
    short form, push — the test reads what a subscriber reads and compares
    it with `billdata export-bills`, the source of truth: the total, the due
    date, and, where the template shows lines, every line with its label and
    amount, in order and exactly once, adding up to the total.
    Also: a retry resends the first attempt's bytes (defect 5), and the
    migration's backfill labels old lines as settle labels new ones.

    The parsers below follow the wording of the templates (db/005_templates.sql
    and the SMS version this test adds); they never call the rendering code.  */

#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <setjmp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "bf_curve.h"
#include "bf_label.h"
#include "bf_testdb.h"

#define S_SUBSCRIBERS 400
#define S_PERIOD      "2026-10"
#define S_MAX_CHILDREN 8
#define S_MAX_LINES    64

static pid_t s_children[S_MAX_CHILDREN];

static void
s_track (pid_t pid)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (!s_children[i]) {
            s_children[i] = pid;
            return;
        }
}

static void
s_untrack (pid_t pid)
{
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] == pid)
            s_children[i] = 0;
}

/*  Ends every process the test started and did not stop.  */
static int
s_teardown (void **state)
{
    (void)state;
    for (int i = 0; i < S_MAX_CHILDREN; i++)
        if (s_children[i] > 0) {
            kill (s_children[i], SIGKILL);
            waitpid (s_children[i], NULL, 0);
            s_children[i] = 0;
        }
    return 0;
}

/*  Starts binary with extra environment (NULL-terminated), output to log.  */
static pid_t
s_spawn (const char *binary, const char *const *env, const char *log)
{
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        for (size_t i = 0; env && env[i]; i++)
            putenv ((char *)env[i]);
        int fd = open (log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2 (fd, 1);
            dup2 (fd, 2);
        }
        execl (binary, binary, (char *)NULL);
        _exit (127);
    }
    s_track (pid);
    return pid;
}

static int
s_stop (pid_t pid)
{
    kill (pid, SIGTERM);
    int status = 0;
    waitpid (pid, &status, 0);
    s_untrack (pid);
    return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
}

/*  --- the source of truth: billdata export-bills ------------------------- */

typedef struct {
    char *label;
    int64_t amount;
} s_line_t;

typedef struct {
    bool present;
    int64_t total;
    char due[11]; /* YYYY-MM-DD */
    s_line_t lines[S_MAX_LINES];
    size_t nlines;
} s_bill_t;

/*  Next RFC 4180 record of *p into fields (in place: quotes undone, fields
    NUL-terminated). Returns the number of fields, 0 at the end.  */
static int
s_csv_record (char **p, char **fields, int max)
{
    char *in = *p;
    if (!*in)
        return 0;
    int n = 0;
    for (;;) {
        char *out = in, *start = in;
        if (*in == '"') {
            in++;
            for (;;) {
                if (*in == '"' && in[1] == '"') {
                    *out++ = '"';
                    in += 2;
                } else if (*in == '"') {
                    in++;
                    break;
                } else if (!*in)
                    break;
                else
                    *out++ = *in++;
            }
        } else
            while (*in && *in != ',' && *in != '\n' && *in != '\r')
                *out++ = *in++;
        char end = *in;
        *out = 0;
        if (n < max)
            fields[n++] = start;
        if (end == ',') {
            in++;
            continue;
        }
        /*  *out = 0 may have overwritten the delimiter: go by end.  */
        if (end == '\r' && in[1] == '\n')
            in += 2;
        else if (end == '\r' || end == '\n')
            in++;
        break;
    }
    *p = in;
    return n;
}

/*  Reads DIR/bills.csv and DIR/bill_lines.csv into bills[subscriber_id].  */
static void
s_read_export (const char *dir, s_bill_t *bills, int nbills, char **keep)
{
    char path[1024];
    snprintf (path, sizeof path, "%s/bills.csv", dir);
    char *text = bf_test_slurp (path), *p = text, *f[8];
    assert_non_null (text);
    assert_int_equal (s_csv_record (&p, f, 8), 5);
    assert_string_equal (f[2], "total");
    while (s_csv_record (&p, f, 8) == 5) {
        long id = atol (f[0]);
        assert_true (id >= 1 && id <= nbills);
        bills[id].present = true;
        bills[id].total = atoll (f[2]);
        snprintf (bills[id].due, sizeof bills[id].due, "%s", f[3]);
    }
    free (text);
    snprintf (path, sizeof path, "%s/bill_lines.csv", dir);
    text = bf_test_slurp (path);
    assert_non_null (text);
    p = text;
    assert_int_equal (s_csv_record (&p, f, 8), 6);
    assert_string_equal (f[5], "label");
    int n;
    while ((n = s_csv_record (&p, f, 8)) == 6) {
        long id = atol (f[0]);
        assert_true (id >= 1 && id <= nbills && bills[id].present);
        s_bill_t *b = &bills[id];
        /*  The export is ordered by line_no: line k is row k.  */
        assert_int_equal (atol (f[2]), (long)b->nlines + 1);
        assert_true (b->nlines < S_MAX_LINES);
        b->lines[b->nlines].label = f[5];
        b->lines[b->nlines].amount = atoll (f[4]);
        b->nlines++;
    }
    assert_int_equal (n, 0);
    *keep = text; /* the labels point into it */
}

/*  --- what a subscriber reads --------------------------------------------- */

typedef struct {
    int64_t total;
    char due[32]; /* as shown: the date, "M월 D일" or "M/D" by channel */
    bool has_lines;
    s_line_t lines[S_MAX_LINES];
    size_t nlines;
    char failure[256];
} s_shown_t;

/*  "111,200" or "-13,459" up to end → won. false when it is not a number.  */
static bool
s_won (const char *text, const char *end, int64_t *out)
{
    bool negative = text < end && *text == '-';
    const char *c = text + negative;
    int64_t v = 0;
    int digits = 0;
    for (; c < end; c++) {
        if (*c == ',')
            continue;
        if (*c < '0' || *c > '9')
            return false;
        v = v * 10 + (*c - '0');
        digits++;
    }
    *out = negative ? -v : v;
    return digits > 0;
}

/*  The amount written after marker, up to stop ("원", "<"): the first one
    after from. false when not found.  */
static bool
s_amount_after (const char *from, const char *marker, const char *stop, int64_t *out)
{
    const char *at = strstr (from, marker);
    if (!at)
        return false;
    at += strlen (marker);
    const char *end = strstr (at, stop);
    return end && s_won (at, end, out);
}

/*  Copies the text between marker and stop (after from) into out.  */
static bool
s_text_after (const char *from, const char *marker, const char *stop, char *out, size_t size)
{
    const char *at = strstr (from, marker);
    if (!at)
        return false;
    at += strlen (marker);
    const char *end = strstr (at, stop);
    if (!end || (size_t)(end - at) >= size)
        return false;
    memcpy (out, at, (size_t)(end - at));
    out[end - at] = 0;
    return true;
}

static bool
s_add_line (s_shown_t *shown, const char *label, size_t label_len, const char *amount,
            const char *amount_end)
{
    if (shown->nlines == S_MAX_LINES)
        return false;
    s_line_t *l = &shown->lines[shown->nlines];
    l->label = strndup (label, label_len);
    if (!s_won (amount, amount_end, &l->amount))
        return false;
    shown->nlines++;
    return true;
}

/*  The email's text part (see the EMAIL body of db/005_templates.sql).  */
static bool
s_parse_email_text (const char *text, s_shown_t *shown)
{
    if (!s_amount_after (text, "■ 청구 요약\n  청구금액: ", "원", &shown->total)
        || !s_text_after (text, "  납부기한: ", "\n", shown->due, sizeof shown->due))
        return false;
    /*  "11월 25일(2026-11-25)": the date is in the parentheses.  */
    char *open = strchr (shown->due, '(');
    if (!open || !strchr (open, ')'))
        return false;
    memmove (shown->due, open + 1, strlen (open + 1) + 1);
    *strchr (shown->due, ')') = 0;
    const char *at = strstr (text, "■ 청구 내역\n");
    if (!at)
        return false;
    at += strlen ("■ 청구 내역\n");
    shown->has_lines = true;
    while (strncmp (at, "  ----", 6) != 0) {
        const char *eol = strchr (at, '\n');
        if (!eol)
            return false;
        if (strncmp (at, "  이번 달 청구 내역이 없습니다.", eol - at) != 0) {
            /*  "  LABEL: AMOUNT원": the last ": " of the line.  */
            const char *sep = NULL;
            for (const char *c = at; c + 1 < eol; c++)
                if (c[0] == ':' && c[1] == ' ')
                    sep = c;
            if (!sep || strncmp (at, "  ", 2) != 0 || eol - at < 4
                || memcmp (eol - 3, "원", 3) != 0
                || !s_add_line (shown, at + 2, (size_t)(sep - at - 2), sep + 2, eol - 3))
                return false;
        }
        at = eol + 1;
    }
    int64_t sum_total;
    return s_amount_after (at, "청구금액 합계: ", "원", &sum_total) && sum_total == shown->total;
}

static char *
s_html_unescape (const char *text, size_t len)
{
    static const struct {
        const char *entity, *ch;
    } map[] = { { "&amp;", "&" }, { "&lt;", "<" }, { "&gt;", ">" }, { "&quot;", "\"" },
                { "&#39;", "'" } };
    char *out = malloc (len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        bool done = false;
        for (size_t k = 0; k < sizeof map / sizeof map[0] && !done; k++) {
            size_t el = strlen (map[k].entity);
            if (i + el <= len && memcmp (text + i, map[k].entity, el) == 0) {
                out[n++] = map[k].ch[0];
                i += el;
                done = true;
            }
        }
        if (!done)
            out[n++] = text[i++];
    }
    out[n] = 0;
    return out;
}

/*  The email's HTML part: total in the summary box, the date in
    "납부기한 ...(DATE)", one <tr> of two <td> per line in <tbody>, the total
    again in <tfoot>.  */
static bool
s_parse_email_html (const char *html, s_shown_t *shown)
{
    const char *box = strstr (html, "font-size:26px");
    if (!box || !s_amount_after (box, ">", "원</div>", &shown->total))
        return false;
    const char *due = strstr (html, "납부기한 ");
    if (!due || !s_text_after (due, "(", ")", shown->due, sizeof shown->due))
        return false;
    const char *body = strstr (html, "<tbody>"), *body_end = strstr (html, "</tbody>");
    if (!body || !body_end)
        return false;
    shown->has_lines = true;
    const char *at = body;
    while ((at = strstr (at, "<tr><td")) && at < body_end) {
        const char *label = strchr (at + 7, '>');
        const char *label_end = label ? strstr (label, "</td>") : NULL;
        if (!label_end)
            return false;
        if (strstr (label, "colspan") && strstr (label, "colspan") < label_end) {
            at = label_end;
            continue; /* "이번 달 청구 내역이 없습니다." */
        }
        const char *amount = strstr (label_end, "<td");
        amount = amount ? strchr (amount, '>') : NULL;
        const char *amount_end = amount ? strstr (amount, "</td>") : NULL;
        if (!amount_end || shown->nlines == S_MAX_LINES)
            return false;
        s_line_t *l = &shown->lines[shown->nlines];
        l->label = s_html_unescape (label + 1, (size_t)(label_end - label - 1));
        if (!s_won (amount + 1, amount_end, &l->amount))
            return false;
        shown->nlines++;
        at = amount_end;
    }
    /*  <tfoot>: "청구금액 합계</th><th ...>TOTAL</th>".  */
    const char *foot = strstr (html, "<tfoot>");
    foot = foot ? strstr (foot, "청구금액 합계</th>") : NULL;
    foot = foot ? strstr (foot + strlen ("청구금액 합계</th>"), "<th") : NULL;
    int64_t foot_total;
    return foot && s_amount_after (foot, ">", "</th>", &foot_total)
           && foot_total == shown->total;
}

/*  An LMS (or an SMS carrying the whole body): "청구금액: X원",
    "납부기한: M월 D일", and "LABEL AMOUNT원" lines after "[청구 내역]" up
    to the blank line.  */
static bool
s_parse_lms (const char *body, s_shown_t *shown)
{
    if (!s_amount_after (body, "\n청구금액: ", "원", &shown->total)
        || !s_text_after (body, "\n납부기한: ", "\n", shown->due, sizeof shown->due))
        return false;
    const char *at = strstr (body, "\n[청구 내역]\n");
    if (!at)
        return false;
    at += strlen ("\n[청구 내역]\n");
    shown->has_lines = true;
    while (*at && *at != '\n') {
        const char *eol = strchr (at, '\n');
        if (!eol)
            return false;
        if (strncmp (at, "청구 내역 없음", (size_t)(eol - at)) != 0) {
            const char *sep = NULL;
            for (const char *c = at; c < eol; c++)
                if (*c == ' ')
                    sep = c;
            if (!sep || eol - at < 4 || memcmp (eol - 3, "원", 3) != 0
                || !s_add_line (shown, at, (size_t)(sep - at), sep + 1, eol - 3))
                return false;
        }
        at = eol + 1;
    }
    return *at == '\n';
}

/*  The SMS short form: "[빌플로우] M월 요금 X원, 납기 M/D". Total and due
    date only: the form shows no lines.  */
static bool
s_parse_sms_short (const char *body, s_shown_t *shown)
{
    const char *due = strstr (body, "원, 납기 ");
    if (!s_amount_after (body, " 요금 ", "원", &shown->total) || !due)
        return false;
    snprintf (shown->due, sizeof shown->due, "%s", due + strlen ("원, 납기 "));
    return true;
}

/*  Push: "... 청구금액은 X원입니다. 납부기한은 M월 D일입니다."  */
static bool
s_parse_push (const char *body, s_shown_t *shown)
{
    return s_amount_after (body, "청구금액은 ", "원입니다.", &shown->total)
           && s_text_after (body, "납부기한은 ", "입니다.", shown->due, sizeof shown->due);
}

/*  The decoded text of an email's MIME part of type ctype, CRLF → LF
    (malloc'd), or NULL.  */
static char *
s_mime_part (const char *data, const char *ctype)
{
    const char *at = strstr (data, ctype);
    if (!at || !(at = strstr (at, "\r\n\r\n")))
        return NULL;
    at += 4;
    const char *end = strstr (at, "\r\n--");
    size_t len = end ? (size_t)(end - at) : strlen (at);
    unsigned char *bin = malloc (len + 1);
    size_t binlen = 0;
    if (sodium_base642bin (bin, len, at, len, "\r\n", &binlen, NULL,
                           sodium_base64_VARIANT_ORIGINAL)
        != 0) {
        free (bin);
        return NULL;
    }
    char *out = malloc (binlen + 1);
    size_t n = 0;
    for (size_t i = 0; i < binlen; i++)
        if (!(bin[i] == '\r' && i + 1 < binlen && bin[i + 1] == '\n'))
            out[n++] = (char)bin[i];
    out[n] = 0;
    free (bin);
    return out;
}

static void
s_shown_free (s_shown_t *shown)
{
    for (size_t i = 0; i < shown->nlines; i++)
        free (shown->lines[i].label);
    memset (shown, 0, sizeof *shown);
}

/*  Compares what one message shows with the exported bill. Returns NULL
    or a description of the first difference (static buffer).  */
static const char *
s_compare (const s_shown_t *shown, const s_bill_t *bill, const char *due_form)
{
    static char why[512];
    if (shown->total != bill->total) {
        snprintf (why, sizeof why, "total %lld, the bill says %lld", (long long)shown->total,
                  (long long)bill->total);
        return why;
    }
    int year, month, day;
    sscanf (bill->due, "%d-%d-%d", &year, &month, &day);
    char due[32];
    if (!strcmp (due_form, "date"))
        snprintf (due, sizeof due, "%s", bill->due);
    else if (!strcmp (due_form, "label"))
        snprintf (due, sizeof due, "%d월 %d일", month, day);
    else
        snprintf (due, sizeof due, "%d/%d", month, day);
    if (strcmp (shown->due, due) != 0) {
        snprintf (why, sizeof why, "due date '%s', the bill says '%s'", shown->due, due);
        return why;
    }
    if (!shown->has_lines)
        return NULL;
    if (shown->nlines != bill->nlines) {
        snprintf (why, sizeof why, "%zu lines shown, the bill has %zu (first shown: '%s')",
                  shown->nlines, bill->nlines, shown->nlines ? shown->lines[0].label : "");
        return why;
    }
    int64_t sum = 0;
    for (size_t i = 0; i < bill->nlines; i++) {
        if (strcmp (shown->lines[i].label, bill->lines[i].label) != 0
            || shown->lines[i].amount != bill->lines[i].amount) {
            snprintf (why, sizeof why, "line %zu shows '%s' %lld, the bill has '%s' %lld", i + 1,
                      shown->lines[i].label, (long long)shown->lines[i].amount,
                      bill->lines[i].label, (long long)bill->lines[i].amount);
            return why;
        }
        sum += shown->lines[i].amount;
    }
    if (sum != shown->total) {
        snprintf (why, sizeof why, "the lines shown add up to %lld, the total is %lld",
                  (long long)sum, (long long)shown->total);
        return why;
    }
    return NULL;
}

/*  --- the stack ------------------------------------------------------------ */

/*  Starts the mock provider; reads its ports.  */
static pid_t
s_mock_start (const char *dir, const char *flags, int *http_port, int *smtp_port)
{
    char command[2048], path[512];
    snprintf (path, sizeof path, "%s/mock.out", dir);
    snprintf (command, sizeof command,
              "exec '%s' --http-port 0 --smtp-port 0 %s > '%s' 2> '%s/mock.err'",
              getenv ("BF_MOCKPROVIDER"), flags, path, dir);
    pid_t pid = fork ();
    assert_true (pid >= 0);
    if (pid == 0) {
        execl ("/bin/sh", "sh", "-c", command, (char *)NULL);
        _exit (127);
    }
    s_track (pid);
    for (int i = 0; i < 100; i++) {
        char *out = bf_test_slurp (path);
        if (out && sscanf (out, "http=%d smtp=%d", http_port, smtp_port) == 2
            && strstr (out, "ready")) {
            free (out);
            return pid;
        }
        free (out);
        usleep (100000);
    }
    fail_msg ("the mock provider did not start");
    return -1;
}

/*  A number in the mock's report, as printed to its stdout when it stops
    (the same JSON as GET /v1/report).  */
static long
s_report_value (const char *report, const char *key)
{
    char needle[64];
    snprintf (needle, sizeof needle, "\"%s\":", key);
    const char *at = strstr (report, needle);
    assert_non_null (at);
    return strtol (at + strlen (needle), NULL, 10);
}

/*  Starts notify on the stack (its clock on a weekday morning, retries
    after backoff_ms .. backoff_max_ms) and waits until it runs.  */
static pid_t
s_notify_start (const char *db, const char *dir, int smtp_port, int http_port, int backoff_ms,
                int backoff_max_ms)
{
    static char env[20][256];
    int nenv = 0;
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_DB_CONNINFO=%s", db);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_PII_KEY=%s", BF_TEST_PII_KEY);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_SETTLE_PUB_ENDPOINTS=ipc://%s/pub",
              dir);
    snprintf (env[nenv++], sizeof env[0],
              "BILLFLOW_NOTIFY_SETTLE_REPLAY_ENDPOINTS=ipc://%s/replay", dir);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_SMTP_URL=smtp://127.0.0.1:%d",
              smtp_port);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_SMS_URL=http://127.0.0.1:%d",
              http_port);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_PUSH_URL=http://127.0.0.1:%d",
              http_port);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_BACKOFF_BASE_MS=%d", backoff_ms);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_BACKOFF_MAX_MS=%d", backoff_max_ms);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_MAX_ATTEMPTS=20");
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_BREAKER_ERROR_PCT=100");
    /*  A breaker that never opens (no dispatcher sees 100 outcomes): a
        provider failing every send here is a test of retries, and failures
        behind an open breaker are an outage's, due again at once
        (services/notify/README.md "Retries and provider outages").  */
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_BREAKER_MIN_SAMPLES=100");
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_POLL_MS=50");
    /*  One dispatcher, with room for every SMS and push notice of a test in
        flight at once: a provider that fails everything is an outage, and
        an outage's failure goes back to its place, where a second
        dispatcher whose provider is not backing off would take it at
        once.  */
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_DISPATCHERS=1");
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_SMS_CONCURRENCY=1000");
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_PUSH_CONCURRENCY=1000");
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_CLOCK=2026-11-02T10:00");
    char settle_pub[BF_CURVE_KEY_TXT];
    assert_int_equal (bf_test_stream_keys (dir, settle_pub), 0);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_SETTLE_SERVER_KEY=%s", settle_pub);
    snprintf (env[nenv++], sizeof env[0], "BILLFLOW_NOTIFY_KEY_FILE=%s/notify.key_secret", dir);
    const char *notify_env[21];
    for (int i = 0; i < nenv; i++)
        notify_env[i] = env[i];
    notify_env[nenv] = NULL;
    char log[512];
    snprintf (log, sizeof log, "%s/notify.log", dir);
    pid_t notify = s_spawn (getenv ("BF_NOTIFY"), notify_env, log);
    for (int i = 0; i < 100; i++) {
        char *text = bf_test_slurp (log);
        bool up = text && strstr (text, "dispatchers");
        free (text);
        if (up)
            break;
        usleep (100000);
    }
    return notify;
}

/*  Settles the month once (settle --once), then starts the settle service
    whose replay serves the events to notify. Returns its pid.  */
static pid_t
s_settle (const char *db, const char *dir)
{
    char settle_pub[BF_CURVE_KEY_TXT];
    assert_int_equal (bf_test_stream_keys (dir, settle_pub), 0);
    char command[2048];
    snprintf (command, sizeof command,
              "BILLFLOW_DB_CONNINFO='%s' BILLFLOW_SETTLE_PUB_ENDPOINT='ipc://%s/pub'"
              " BILLFLOW_SETTLE_KEY_FILE='%s/settle.key_secret'"
              " BILLFLOW_SETTLE_ALLOWED_KEYS='%s/stream_allowed_keys'"
              " \"$BF_SETTLE\" --once --period " S_PERIOD " > '%s/settle-once.log' 2>&1",
              db, dir, dir, dir, dir);
    assert_int_equal (system (command), 0);
    static char settle_env[5][700];
    snprintf (settle_env[0], sizeof settle_env[0], "BILLFLOW_DB_CONNINFO=%s", db);
    snprintf (settle_env[1], sizeof settle_env[1], "BILLFLOW_SETTLE_PUB_ENDPOINT=ipc://%s/pub",
              dir);
    snprintf (settle_env[2], sizeof settle_env[2],
              "BILLFLOW_SETTLE_REPLAY_ENDPOINT=ipc://%s/replay", dir);
    snprintf (settle_env[3], sizeof settle_env[3], "BILLFLOW_SETTLE_KEY_FILE=%s/settle.key_secret",
              dir);
    snprintf (settle_env[4], sizeof settle_env[4],
              "BILLFLOW_SETTLE_ALLOWED_KEYS=%s/stream_allowed_keys", dir);
    const char *senv[] = { settle_env[0], settle_env[1], settle_env[2], settle_env[3],
                           settle_env[4], NULL };
    char log[512];
    snprintf (log, sizeof log, "%s/settle.log", dir);
    return s_spawn (getenv ("BF_SETTLE"), senv, log);
}

/*  Waits until every bill's notices exist and are final or held by the
    subscriber's own quiet hours.  */
static void
s_wait_final (PGconn *conn, int seconds)
{
    int64_t open = -1, expected = -1, have = -1;
    for (int i = 0; i < seconds * 10; i++) {
        expected = bf_testdb_scalar (conn, "SELECT count(*) FROM bill b"
                                           " JOIN subscriber s ON s.id = b.subscriber_id,"
                                           " unnest (s.channels) c");
        have = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE fallback_of IS NULL");
        open = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                       " WHERE state NOT IN ('DELIVERED', 'FAILED', 'HELD')");
        if (expected > 0 && have == expected && open == 0)
            return;
        usleep (100000);
    }
    fail_msg ("deliveries not final: %lld of %lld created, %lld open", (long long)have,
              (long long)expected, (long long)open);
}

static void
test_every_message_matches_the_bill (void **state)
{
    (void)state;
    assert_true (sodium_init () >= 0);
    char *db = bf_testdb_create (true);
    char *dir = bf_test_mkdtemp ();
    PGconn *conn = bf_testdb_connect (db);
    char *out = NULL;

    /*  The month as CSV files; loaded only after notify is up.  */
    assert_int_equal (bf_testdb_billdata (db, &out,
                                          "generate --subscribers %d --period " S_PERIOD
                                          " --seed 21 --out '%s/csv'",
                                          S_SUBSCRIBERS, dir),
                      0);
    free (out);

    /*  An SMS wording whose body is long enough that bills with many lines
        exceed the LMS limit and go as the short form, while the others go
        as LMS: both forms in one run.  */
    assert_string_equal (
        bf_testdb_exec (conn,
                        "INSERT INTO template (channel, purpose, version, subject, body,"
                        " body_html, short_body, active)"
                        " SELECT channel, purpose, 2, subject,"
                        "  body || E'\\n\\n' || repeat ('빌플로우 요금 안내 ', 84), body_html,"
                        "  short_body, false FROM template"
                        " WHERE channel = 'SMS' AND purpose = 'BILL_ISSUED' AND version = 1"),
        "00000");
    assert_string_equal (bf_testdb_exec (conn, "UPDATE template SET active = (version = 2)"
                                               " WHERE channel = 'SMS'"),
                         "00000");

    int http_port = 0, smtp_port = 0;
    char flags[1024], record[512];
    snprintf (record, sizeof record, "%s/accepted.jsonl", dir);
    snprintf (flags, sizeof flags,
              "--email-latency-ms 10 --email-fail-pct 15 --sms-fail-pct 15 --lms-fail-pct 15"
              " --push-fail-pct 15 --throttle-pct 3 --seed 7 --record '%s'",
              record);
    pid_t mock = s_mock_start (dir, flags, &http_port, &smtp_port);

    /*  notify first, on a database without plans: what it could cache of
        the catalogue at start is nothing.  */
    pid_t notify = s_notify_start (db, dir, smtp_port, http_port, 100, 400);

    /*  The catalogue and the month arrive now, then the month is settled.  */
    assert_int_equal (bf_testdb_billdata (db, &out, "import '%s/csv'", dir), 0);
    free (out);
    pid_t settle = s_settle (db, dir);

    /*  Every bill's notices final (or held by the subscriber's own quiet
        hours), within the time a name cache would still be stale.  */
    s_wait_final (conn, 45);
    assert_int_equal (s_stop (notify), 0);
    assert_int_equal (s_stop (settle), 0);

    /*  Nothing failed: a retry that changed its body would have been
        refused with 422 and the notice marked FAILED.  */
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE state = 'FAILED'"),
                      0);
    int64_t retried = bf_testdb_scalar (conn, "SELECT count(DISTINCT delivery_id)"
                                              " FROM delivery_attempt WHERE attempt_no > 1");
    assert_true (retried > 10); /* the byte-identical resend was exercised */
    /*  A DELIVERED notice shows no error of an earlier attempt (defect 6);
        checked last, after the content.  */
    int64_t stale_errors = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                                   " WHERE state = 'DELIVERED'"
                                                   " AND last_error IS NOT NULL");
    /*  ... and names the template version its content came from.  */
    int64_t unversioned
        = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery d WHERE state = 'DELIVERED'"
                                  " AND template_version IS DISTINCT FROM (SELECT version"
                                  " FROM template t WHERE t.channel = d.channel"
                                  " AND t.purpose = d.purpose AND t.active)");

    /*  The source of truth.  */
    char export_dir[512];
    snprintf (export_dir, sizeof export_dir, "%s/export", dir);
    assert_int_equal (mkdir (export_dir, 0700), 0);
    assert_int_equal (bf_testdb_billdata (db, &out, "export-bills --period " S_PERIOD " '%s'",
                                          export_dir),
                      0);
    free (out);
    s_bill_t *bills = calloc (S_SUBSCRIBERS + 1, sizeof *bills);
    char *labels = NULL;
    s_read_export (export_dir, bills, S_SUBSCRIBERS, &labels);

    /*  Delivery id → subscriber (the Idempotency-Key and the Message-ID
        name the delivery).  */
    int64_t max_id = bf_testdb_scalar (conn, "SELECT max(id) FROM delivery");
    assert_true (max_id > 0);
    int64_t *subscriber_of = calloc ((size_t)max_id + 1, sizeof *subscriber_of);
    int *seen = calloc ((size_t)max_id + 1, sizeof *seen);
    PGresult *res = PQexec (conn, "SELECT id, subscriber_id FROM delivery WHERE period = '"
                                  S_PERIOD "' AND state = 'DELIVERED'");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    int delivered = PQntuples (res);
    for (int r = 0; r < delivered; r++)
        subscriber_of[atoll (PQgetvalue (res, r, 0))] = atoll (PQgetvalue (res, r, 1));
    PQclear (res);

    /*  Every accepted message, read as the subscriber reads it.  */
    assert_int_equal (s_stop (mock), 0);
    char *accepted = bf_test_slurp (record);
    assert_non_null (accepted);
    int counts[5] = { 0 }; /* email text+html, LMS, SMS short form, SMS whole, push */
    int messages = 0, problems = 0;
    for (char *line = accepted, *next; line && *line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        json_error_t jerr;
        json_t *m = json_loads (line, 0, &jerr);
        if (!m)
            fail_msg ("record line is not JSON: %s", jerr.text);
        messages++;
        const char *channel = json_string_value (json_object_get (m, "channel"));
        int64_t delivery = 0;
        if (!strcmp (channel, "email"))
            delivery = atoll (json_string_value (json_object_get (m, "message_id")) + 1);
        else
            delivery = atoll (json_string_value (json_object_get (m, "key")));
        assert_true (delivery > 0 && delivery <= max_id);
        int64_t sub = subscriber_of[delivery];
        if (sub <= 0 || sub > S_SUBSCRIBERS || !bills[sub].present) {
            char sql[256], state_text[512] = "";
            snprintf (sql, sizeof sql,
                      "SELECT concat_ws (' ', state, period, attempts, last_error, hold_reason)"
                      " FROM delivery WHERE id = %lld",
                      (long long)delivery);
            bf_testdb_text (conn, sql, state_text, sizeof state_text);
            fail_msg ("accepted message of delivery %lld (subscriber %lld) is not DELIVERED"
                      " with a bill: %s",
                      (long long)delivery, (long long)sub, state_text);
        }
        if (++seen[delivery] != 1)
            fail_msg ("delivery %lld was accepted %d times", (long long)delivery, seen[delivery]);
        const s_bill_t *bill = &bills[sub];

        struct {
            const char *what;
            s_shown_t shown;
            bool parsed;
            const char *due_form;
        } parts[2];
        int nparts = 0;
        memset (parts, 0, sizeof parts);
        if (!strcmp (channel, "email")) {
            const char *data = json_string_value (json_object_get (m, "data"));
            char *text = s_mime_part (data, "Content-Type: text/plain");
            char *html = s_mime_part (data, "Content-Type: text/html");
            parts[0].what = "email text";
            parts[0].parsed = text && s_parse_email_text (text, &parts[0].shown);
            parts[0].due_form = "date";
            parts[1].what = "email HTML";
            parts[1].parsed = html && s_parse_email_html (html, &parts[1].shown);
            parts[1].due_form = "date";
            nparts = 2;
            counts[0]++;
            free (text);
            free (html);
        } else {
            const char *body = json_string_value (json_object_get (m, "body"));
            if (!strcmp (channel, "lms") || strstr (body, "[청구 내역]")) {
                parts[0].what = !strcmp (channel, "lms") ? "LMS" : "SMS";
                parts[0].parsed = s_parse_lms (body, &parts[0].shown);
                parts[0].due_form = "label";
                counts[!strcmp (channel, "lms") ? 1 : 3]++;
            } else if (!strcmp (channel, "sms")) {
                parts[0].what = "SMS short form";
                parts[0].parsed = s_parse_sms_short (body, &parts[0].shown);
                parts[0].due_form = "short";
                counts[2]++;
            } else {
                parts[0].what = "push";
                parts[0].parsed = s_parse_push (body, &parts[0].shown);
                parts[0].due_form = "label";
                counts[4]++;
            }
            nparts = 1;
        }
        for (int k = 0; k < nparts; k++) {
            const char *why = parts[k].parsed
                                  ? s_compare (&parts[k].shown, bill, parts[k].due_form)
                                  : "cannot be read as the template lays it out";
            if (why && problems++ < 10)
                print_message ("# %s of delivery %lld (subscriber %lld): %s\n", parts[k].what,
                               (long long)delivery, (long long)sub, why);
            s_shown_free (&parts[k].shown);
        }
        json_decref (m);
    }
    print_message ("# %d messages: %d emails (text and HTML), %d LMS, %d SMS short forms,"
                   " %d SMS, %d push; %lld notices retried\n",
                   messages, counts[0], counts[1], counts[2], counts[3], counts[4],
                   (long long)retried);
    if (problems)
        fail_msg ("%d message part(s) differ from the exported bills", problems);
    /*  Every delivered notice is exactly one accepted message, and every
        kind of message was seen.  */
    assert_int_equal (messages, delivered);
    for (int k = 0; k < 5; k++)
        if (k != 3)
            assert_true (counts[k] > 0);

    /*  The mock refused no changed body under a used key.  */
    char mock_out[512];
    snprintf (mock_out, sizeof mock_out, "%s/mock.out", dir);
    char *report = bf_test_slurp (mock_out);
    assert_non_null (report);
    assert_int_equal (s_report_value (report, "key_reused"), 0);
    free (report);
    assert_int_equal (stale_errors, 0);
    assert_int_equal (unversioned, 0);

    free (accepted);
    free (labels);
    free (bills);
    free (subscriber_of);
    free (seen);
    PQfinish (conn);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

/*  Defect 5: a retry sends exactly the bytes of the first attempt. The
    provider accepts every SMS, LMS and push but its reply is lost (502), so
    each is retried under the same Idempotency-Key; between the attempts
    every subscriber's name changes, which a re-render would show. The mock
    refuses a used key with a changed body (422, as real providers do):
    every retry must get 409 (the same body), and every notice end
    DELIVERED with the content of its first attempt.  */
static void
test_a_retry_sends_the_same_bytes (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    char *dir = bf_test_mkdtemp ();
    PGconn *conn = bf_testdb_connect (db);
    char *out = NULL;
    assert_int_equal (bf_testdb_billdata (db, &out,
                                          "generate --subscribers 80 --period " S_PERIOD
                                          " --seed 5"),
                      0);
    free (out);
    int http_port = 0, smtp_port = 0;
    char flags[1024], record[512];
    snprintf (record, sizeof record, "%s/accepted.jsonl", dir);
    snprintf (flags, sizeof flags,
              "--email-latency-ms 5 --email-fail-pct 0 --lost-reply-pct 100 --record '%s'",
              record);
    pid_t mock = s_mock_start (dir, flags, &http_port, &smtp_port);
    /*  Every reply is lost: to notify the SMS and push providers are down
        (no success at all), so each failure is an outage's — back to its
        place while the provider backs off (notify.backoff_base_ms, 2.4 s
        or more), not pushed back on its own. For every notice to be tried
        once before any is tried again, they all go out in one round:
        dispatch starts paused and resumes once every notice exists.  */
    assert_string_equal (bf_testdb_exec (conn, "UPDATE dispatch_state SET paused = true"), "00000");
    pid_t settle = s_settle (db, dir);
    pid_t notify = s_notify_start (db, dir, smtp_port, http_port, 3000, 3000);
    /*  s_settle settled the month: every bill is there.  */
    int64_t http = bf_testdb_scalar (conn, "SELECT count(*) FROM bill b"
                                           " JOIN subscriber s ON s.id = b.subscriber_id,"
                                           " unnest (s.channels) c WHERE c <> 'EMAIL'");
    assert_true (http > 0);
    for (int i = 0; i < 600
                    && bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                               " WHERE channel <> 'EMAIL'")
                           < http;
         i++)
        usleep (50000);
    assert_string_equal (bf_testdb_exec (conn, "UPDATE dispatch_state SET paused = false"),
                         "00000");

    /*  Every SMS and push notice tried once and waiting for its retry
        (which comes 2.4 s or more later), or held by quiet hours.  */
    int64_t waiting = -1;
    for (int i = 0; i < 300; i++) {
        waiting = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                          " WHERE channel <> 'EMAIL' AND state IN ('RETRY', 'HELD')");
        if (http > 0 && waiting == http)
            break;
        usleep (50000);
    }
    assert_true (http > 0);
    if (waiting != http) {
        char rows[2048];
        bf_testdb_text (conn,
                        "SELECT string_agg (a.delivery_id || '#' || a.attempt_no || ' '"
                        " || a.outcome || ' ' || a.started_at::time || '-' || a.finished_at::time,"
                        " '; ' ORDER BY a.started_at) FROM (SELECT * FROM delivery_attempt"
                        " WHERE provider <> 'email' ORDER BY started_at LIMIT 12) a",
                        rows, sizeof rows);
        fprintf (stderr, "# not every SMS and push notice waiting at once; first attempts: %s\n",
                 rows);
    }
    assert_int_equal (waiting, http);
    assert_string_equal (bf_testdb_exec (conn, "UPDATE subscriber SET name = name || '님'"
                                               " WHERE name IS NOT NULL"),
                         "00000");
    s_wait_final (conn, 60);
    assert_int_equal (s_stop (notify), 0);
    assert_int_equal (s_stop (settle), 0);
    assert_int_equal (s_stop (mock), 0);

    int64_t retried = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery_attempt a"
                                              " JOIN delivery d ON d.id = a.delivery_id"
                                              " WHERE d.channel <> 'EMAIL' AND a.attempt_no = 2"
                                              " AND a.outcome = 'DUPLICATE'");
    int64_t failed = bf_testdb_scalar (conn, "SELECT count(*) FROM delivery WHERE state = 'FAILED'");
    char mock_out[512];
    snprintf (mock_out, sizeof mock_out, "%s/mock.out", dir);
    char *report = bf_test_slurp (mock_out);
    assert_non_null (report);
    long reused = s_report_value (report, "key_reused");
    free (report);
    print_message ("# %lld SMS/push notices: %lld resent and taken as duplicates, %lld failed,"
                   " %ld refused as a changed body\n",
                   (long long)http, (long long)retried, (long long)failed, reused);
    assert_int_equal (reused, 0);
    assert_int_equal (failed, 0);
    assert_true (retried > 0);
    assert_int_equal (bf_testdb_scalar (conn, "SELECT count(*) FROM delivery"
                                              " WHERE channel <> 'EMAIL' AND state = 'DELIVERED'"),
                      retried);
    /*  What was kept is what the subscriber got: the first attempt's body,
        with the name as it was then.  */
    char *accepted = bf_test_slurp (record);
    assert_non_null (accepted);
    PGresult *res = PQexec (conn, "SELECT d.id, c.body FROM delivery d"
                                  " JOIN delivery_content c ON c.delivery_id = d.id"
                                  " WHERE d.channel <> 'EMAIL'");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal (PQntuples (res), retried);
    for (char *line = accepted, *next; line && *line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        json_t *m = json_loads (line, 0, NULL);
        assert_non_null (m);
        const char *key = json_string_value (json_object_get (m, "key"));
        for (int r = 0; key && r < PQntuples (res); r++)
            if (!strcmp (PQgetvalue (res, r, 0), key))
                assert_string_equal (PQgetvalue (res, r, 1),
                                     json_string_value (json_object_get (m, "body")));
        json_decref (m);
    }
    PQclear (res);
    free (accepted);
    PQfinish (conn);
    bf_test_rmdir (&dir);
    bf_testdb_drop (&db);
}

/*  db/008_content.sql labels the lines settled before it with the rule of
    common/bf_label.c, spelled out in SQL: its backfill statement, run on a
    line of every code (fixed, plan and add-on with and without a catalogue
    row, unknown, malformed), must give exactly bf_label_line's label.  */
static void
test_backfill_labels_as_settle_does (void **state)
{
    (void)state;
    char *db = bf_testdb_create (true);
    PGconn *conn = bf_testdb_connect (db);
    static const char *codes[]
        = { "OVERAGE_DATA", "OVERAGE_VOICE", "OVERAGE_SMS", "DISC_CONTRACT", "DISC_FAMILY",
            "DISC_LOYALTY", "DISC_WELFARE", "CHARGE:DEVICE_INSTALLMENT", "CHARGE:MICRO_PAYMENT",
            "CHARGE:CONTENT", "CHARGE:ADJUSTMENT", "CREDIT_CARRY", "VAT", "ARREARS", "ROUNDING",
            "PLAN:LTE_43", "PLAN:GONE", "ADDON:VC", "ADDON:GONE", "PLAN:", "ADDON:", "CHARGE:GIFT",
            "vat", "SOMETHING_NEW" };
    size_t n = sizeof codes / sizeof codes[0];
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO plan (code, name, monthly_fee,"
                                               " data_rate_mwon, voice_rate_mwon, sms_rate_mwon)"
                                               " VALUES ('LTE_43', 'LTE 데이터 43', 43000, 1, 1, 1)"),
                         "00000");
    assert_string_equal (bf_testdb_exec (conn, "INSERT INTO addon (code, name, monthly_fee)"
                                               " VALUES ('VC', 'V컬러링', 3300)"),
                         "00000");
    assert_string_equal (bf_testdb_exec (conn, "SELECT bf_ensure_period ('" S_PERIOD "')"),
                         "00000");
    for (size_t i = 0; i < n; i++) {
        char sql[512];
        snprintf (sql, sizeof sql,
                  "INSERT INTO bill_line (period, subscriber_id, line_no, code, amount, label)"
                  " VALUES ('" S_PERIOD "', 1, %zu, '%s', 1, 'before')",
                  i + 1, codes[i]);
        assert_string_equal (bf_testdb_exec (conn, sql), "00000");
    }
    /*  The migration's own statement, as the file has it.  */
    char path[1024];
    snprintf (path, sizeof path, "%s/db/008_content.sql", getenv ("BF_SOURCE_ROOT"));
    char *migration = bf_test_slurp (path);
    assert_non_null (migration);
    char *start = strstr (migration, "UPDATE bill_line l SET label = CASE");
    assert_non_null (start);
    char *end = strstr (start, "ELSE l.code END;");
    assert_non_null (end);
    end[strlen ("ELSE l.code END")] = 0;
    assert_string_equal (bf_testdb_exec (conn, start), "00000");
    free (migration);

    PGresult *res = PQexec (conn, "SELECT code, label FROM bill_line ORDER BY line_no");
    assert_int_equal (PQresultStatus (res), PGRES_TUPLES_OK);
    assert_int_equal (PQntuples (res), (int)n);
    for (int r = 0; r < PQntuples (res); r++) {
        const char *code = PQgetvalue (res, r, 0);
        const char *name = !strcmp (code, "PLAN:LTE_43") ? "LTE 데이터 43"
                           : !strcmp (code, "ADDON:VC")  ? "V컬러링"
                                                         : NULL;
        char buf[128];
        const char *want = bf_label_line (code, name, buf, sizeof buf);
        if (strcmp (PQgetvalue (res, r, 1), want) != 0)
            fail_msg ("%s: the migration labels it '%s', settle '%s'", code,
                      PQgetvalue (res, r, 1), want);
    }
    PQclear (res);
    PQfinish (conn);
    bf_testdb_drop (&db);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown (test_every_message_matches_the_bill, s_teardown),
        cmocka_unit_test_teardown (test_a_retry_sends_the_same_bytes, s_teardown),
        cmocka_unit_test (test_backfill_labels_as_settle_does),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
