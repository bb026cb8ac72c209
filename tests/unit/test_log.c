/*  =========================================================================
    test_log - bf_log: masking, line formats, JSON escaping, level filtering,
    truncation, whole lines under concurrent logging, context fields (per
    thread, escaped, masked, cut) and multi-line messages made one line.

    Output is captured by pointing bf_log_set_fd at a temporary file and
    reading it back (bf_testutil_log_capture); JSON lines are checked with
    a small strict parser.
    =========================================================================
*/

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf_log.h"
#include "bf_testutil.h"
#include "bf_text.h"

//  ---------------------------------------------------------------------------
//  Capture helpers

static size_t
s_count_lines (const char *text)
{
    size_t lines = 0;
    for (const char *p = text; *p; p++)
        if (*p == '\n')
            lines++;
    return lines;
}

//  ---------------------------------------------------------------------------
//  A strict parser for the flat JSON objects bf_log writes: string or
//  integer values only. Fails on anything RFC 8259 does not allow there.

typedef struct {
    char key[16];
    char *text; //  decoded string value, or NULL for a number
    size_t text_len;
    long number;
} s_field_t;

//  Parses a JSON string at *p; returns a malloc'd decoded copy or NULL.

static char *
s_json_string (const char **p, size_t *out_len)
{
    const char *s = *p;
    if (*s != '"')
        return NULL;
    s++;
    const char *start = s;
    while (*s && *s != '"') {
        if (*s == '\\' && s[1])
            s++;
        s++;
    }
    if (*s != '"')
        return NULL;
    if (!bf_text_utf8_valid (start, (size_t)(s - start)))
        return NULL;
    static const char simple[] = "\"\"\\\\//b\bf\fn\nr\rt\t"; /* escape, byte */
    bf_text_buf_t out = { 0 };
    bool ok = bf_text_buf_add (&out, "", 0) == 0;
    for (const char *q = start; ok && q < s; q++) {
        unsigned char c = (unsigned char)*q;
        if (c < 0x20)
            ok = false; //  raw control characters are not JSON
        else if (c != '\\')
            ok = bf_text_buf_add (&out, q, 1) == 0;
        else if (q[1] == 'u') {
            char hex[5] = { 0 };
            memcpy (hex, q + 2, 4);
            char *end;
            unsigned long cp = strtoul (hex, &end, 16);
            ok = end == hex + 4 && !(cp >= 0xD800 && cp <= 0xDFFF)
                 && bf_text_buf_utf8 (&out, (uint32_t)cp) == 0;
            q += 5;
        } else {
            const char *e = q[1] ? strchr (simple, q[1]) : NULL;
            ok = e && (e - simple) % 2 == 0 && bf_text_buf_add (&out, e + 1, 1) == 0;
            q++;
        }
    }
    if (!ok) {
        bf_text_buf_free (&out);
        return NULL;
    }
    *out_len = out.len;
    *p = s + 1;
    return out.data;
}

//  Parses one line "{...}" into fields; returns the count, or -1.

static int
s_json_parse (const char *line, s_field_t *fields, int max)
{
    const char *p = line;
    int count = 0;
    if (*p++ != '{')
        return -1;
    while (count < max) {
        size_t key_len;
        char *key = s_json_string (&p, &key_len);
        if (!key || key_len >= sizeof fields[0].key || *p++ != ':') {
            free (key);
            return -1;
        }
        strcpy (fields[count].key, key);
        free (key);
        if (*p == '"') {
            fields[count].text = s_json_string (&p, &fields[count].text_len);
            if (!fields[count].text)
                return -1;
        } else {
            char *end;
            fields[count].text = NULL;
            fields[count].number = strtol (p, &end, 10);
            if (end == p)
                return -1;
            p = end;
        }
        count++;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '}' && p[1] == 0)
            return count;
        return -1;
    }
    return -1;
}

static void
s_fields_free (s_field_t *fields, int count)
{
    for (int i = 0; i < count; i++)
        free (fields[i].text);
}

//  Logs one message in JSON, parses the single line and returns the
//  decoded msg (caller frees); asserts the other fields.

static char *
s_json_roundtrip (const char *service, const char *message, size_t *msg_len)
{
    bf_log_init (service, BF_LOG_DEBUG, true);
    bf_testutil_log_capture ();
    bf_info ("%s", message);
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 1);
    size_t len = strlen (text);
    assert_true (len > 0 && text[len - 1] == '\n');
    text[len - 1] = 0;

    s_field_t fields[8];
    int count = s_json_parse (text, fields, 8);
    if (count != 5)
        fail_msg ("not the expected JSON object: %s", text);
    assert_string_equal (fields[0].key, "ts");
    assert_non_null (fields[0].text);
    assert_int_equal (strlen (fields[0].text), 24);
    assert_string_equal (fields[1].key, "level");
    assert_string_equal (fields[1].text, "info");
    assert_string_equal (fields[2].key, "service");
    assert_string_equal (fields[2].text, service);
    assert_string_equal (fields[3].key, "pid");
    assert_null (fields[3].text);
    assert_int_equal (fields[3].number, (long)getpid ());
    assert_string_equal (fields[4].key, "msg");
    assert_non_null (fields[4].text);
    char *msg = fields[4].text;
    *msg_len = fields[4].text_len;
    fields[4].text = NULL;
    s_fields_free (fields, count);
    free (text);
    return msg;
}

//  ---------------------------------------------------------------------------
//  Tests

//  Must run first: the state before any bf_log_init.
static void
test_defaults_before_init (void **state)
{
    (void)state;
    assert_true (bf_log_enabled (BF_LOG_INFO));
    assert_false (bf_log_enabled (BF_LOG_DEBUG));
    bf_testutil_log_capture ();
    bf_debug ("hidden");
    bf_info ("shown %d", 1);
    char *text = bf_testutil_log_captured ();
    char expected[64];
    snprintf (expected, sizeof expected, " INFO  billflow[%ld]: shown 1\n", (long)getpid ());
    assert_int_equal (s_count_lines (text), 1);
    assert_non_null (strstr (text, expected));
    assert_null (strchr (text, '{'));
    free (text);
}

static void
test_level_parse (void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        bf_log_level_t level;
    } cases[] = {
        { "debug", 0, BF_LOG_DEBUG },
        { "info", 0, BF_LOG_INFO },
        { "warn", 0, BF_LOG_WARN },
        { "error", 0, BF_LOG_ERROR },
        { "DEBUG", 0, BF_LOG_DEBUG },
        { "Warn", 0, BF_LOG_WARN },
        { "", -1, 0 },
        { "warning", -1, 0 },
        { "inf", -1, 0 },
        { " info", -1, 0 },
        { "info ", -1, 0 },
        { "fatal", -1, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_log_level_t level = (bf_log_level_t)99;
        int rc = bf_log_level_parse (cases[i].text, &level);
        if (rc != cases[i].rc)
            fail_msg ("'%s': rc %d", cases[i].text, rc);
        if (rc == 0)
            assert_int_equal (level, cases[i].level);
        else
            assert_int_equal (level, 99);
    }
    bf_log_level_t level = BF_LOG_WARN;
    assert_int_equal (bf_log_level_parse (NULL, &level), -1);
    assert_int_equal (level, BF_LOG_WARN);
}

static void
test_level_filter (void **state)
{
    (void)state;
    bf_log_init ("filter", BF_LOG_WARN, false);
    assert_false (bf_log_enabled (BF_LOG_DEBUG));
    assert_false (bf_log_enabled (BF_LOG_INFO));
    assert_true (bf_log_enabled (BF_LOG_WARN));
    assert_true (bf_log_enabled (BF_LOG_ERROR));
    bf_testutil_log_capture ();
    bf_debug ("d");
    bf_info ("i");
    bf_warn ("w");
    bf_error ("e");
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 2);
    assert_null (strstr (text, ": d\n"));
    assert_null (strstr (text, ": i\n"));
    assert_non_null (strstr (text, " WARN  filter["));
    assert_non_null (strstr (text, "]: w\n"));
    assert_non_null (strstr (text, " ERROR filter["));
    assert_non_null (strstr (text, "]: e\n"));
    free (text);

    bf_log_init ("filter", BF_LOG_ERROR, false);
    bf_testutil_log_capture ();
    bf_warn ("w");
    text = bf_testutil_log_captured ();
    assert_string_equal (text, "");
    free (text);

    bf_log_init ("filter", BF_LOG_DEBUG, false);
    bf_testutil_log_capture ();
    bf_debug ("d");
    text = bf_testutil_log_captured ();
    assert_non_null (strstr (text, " DEBUG filter["));
    free (text);
}

/*  bf_log_limited: a burst per window, the rest counted and summed up in
    one line when the window ends (moved back by hand, not slept).  */
static void
test_limited (void **state)
{
    (void)state;
    bf_log_init ("limit", BF_LOG_INFO, false);
    bf_log_limit_t limit = BF_LOG_LIMIT_INIT ("replay", "rejected requests", 3, 10000);
    bf_testutil_log_capture ();
    for (int i = 0; i < 10; i++)
        bf_log_limited (&limit, BF_LOG_WARN, "rejected %d", i);
    assert_true (bf_log_limit_tick (&limit) > 0); //  7 wait for their summary
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 3);
    assert_non_null (strstr (text, "]: rejected 2\n"));
    assert_null (strstr (text, "rejected 3"));
    free (text);

    limit.window_start -= limit.window_ms; //  the window ends
    bf_testutil_log_capture ();
    assert_int_equal (bf_log_limit_tick (&limit), -1);
    bf_log_limited (&limit, BF_LOG_WARN, "rejected %d", 10);
    text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 2);
    assert_non_null (strstr (
        text, "]: replay: 7 more rejected requests not logged (suppressed) in the last 10 s\n"));
    assert_non_null (strstr (text, "]: rejected 10\n"));
    free (text);
    assert_int_equal (bf_log_limit_tick (&limit), -1); //  nothing suppressed: no summary due
}

static void
test_plain_format (void **state)
{
    (void)state;
    bf_log_init ("settle", BF_LOG_INFO, false);
    bf_testutil_log_capture ();
    bf_info ("run %s chunk %d", "2026-11", 7);
    char *text = bf_testutil_log_captured ();
    //  2026-11-21T13:55:02.123Z INFO  settle[1234]: message
    const char *shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    assert_true (strlen (text) > strlen (shape));
    for (size_t i = 0; shape[i]; i++)
        if (shape[i] == 'd') {
            if (text[i] < '0' || text[i] > '9')
                fail_msg ("timestamp char %zu in: %s", i, text);
        } else
            assert_int_equal (text[i], shape[i]);
    int month = atoi (text + 5), day = atoi (text + 8), hour = atoi (text + 11);
    assert_true (month >= 1 && month <= 12);
    assert_true (day >= 1 && day <= 31);
    assert_true (hour >= 0 && hour <= 23);
    char expected[96];
    snprintf (expected, sizeof expected, " INFO  settle[%ld]: run 2026-11 chunk 7\n",
              (long)getpid ());
    assert_string_equal (text + strlen (shape), expected);
    free (text);
}

static void
test_plain_escapes_control (void **state)
{
    (void)state;
    bf_log_init ("svc", BF_LOG_INFO, false);
    bf_testutil_log_capture ();
    bf_info ("a\nFAKE ERROR line\r\tb\x01"
             "c\xff"
             "d 한글");
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 1);
    assert_non_null (strstr (text, "]: a\\nFAKE ERROR line\\r\\tb\\x01c\\xffd 한글\n"));
    free (text);
}

static void
test_json_escaping (void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *decoded; //  expected msg after JSON decoding
    } cases[] = {
        { "plain text", "plain text" },
        { "", "" },
        { "say \"hi\"", "say \"hi\"" },
        { "back\\slash \\\" mix", "back\\slash \\\" mix" },
        { "line1\nline2\r\n", "line1\nline2\r\n" },
        { "tab\there", "tab\there" },
        { "ctl \x01\x02\x1f end", "ctl \x01\x02\x1f end" },
        { "del \x7f", "del \x7f" },
        { "한국어 홍길동 ✓ 𝄞", "한국어 홍길동 ✓ 𝄞" },
        { "bad \xff byte", "bad \xef\xbf\xbd byte" },
        { "cut \xed\x95", "cut \xef\xbf\xbd\xef\xbf\xbd" },
        { "overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd" },
        { "surrogate \xed\xa0\x80", "surrogate \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "{\"json\":\"inside\"}", "{\"json\":\"inside\"}" },
        { "/slash/ and </script>", "/slash/ and </script>" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *msg = s_json_roundtrip ("settle", cases[i].in, &len);
        if (len != strlen (cases[i].decoded) || memcmp (msg, cases[i].decoded, len) != 0)
            fail_msg ("case %zu: got '%s'", i, msg);
        free (msg);
    }
    //  The service name is escaped too.
    size_t len;
    char *msg = s_json_roundtrip ("we\"ird\\svc", "x", &len);
    assert_string_equal (msg, "x");
    free (msg);
}

static void
test_json_control_as_u00xx (void **state)
{
    (void)state;
    bf_log_init ("svc", BF_LOG_INFO, true);
    bf_testutil_log_capture ();
    bf_info ("a\nb\x01");
    char *text = bf_testutil_log_captured ();
    assert_non_null (strstr (text, "\"msg\":\"a\\u000ab\\u0001\"}\n"));
    free (text);
}

static void
test_embedded_nul (void **state)
{
    (void)state;
    bf_log_init ("svc", BF_LOG_INFO, true);
    bf_testutil_log_capture ();
    bf_info ("a%cb", 0);
    char *text = bf_testutil_log_captured ();
    assert_non_null (strstr (text, "\"msg\":\"a\\u0000b\"}\n"));
    free (text);
}

static void
test_truncation (void **state)
{
    (void)state;
    size_t big = 20000;
    char *message = (char *)malloc (big + 1);
    assert_non_null (message);
    memset (message, 'x', big);
    message[big] = 0;

    bf_log_init ("svc", BF_LOG_INFO, false);
    bf_testutil_log_capture ();
    bf_info ("%s", message);
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 1);
    size_t len = strlen (text);
    assert_true (len < 8192 + 100);
    assert_true (len > 8000);
    assert_string_equal (text + len - strlen (" [truncated]\n"), " [truncated]\n");
    free (text);

    //  Multi-byte text is cut at a character boundary: no U+FFFD appears.
    for (size_t i = 0; i + 3 <= big; i += 3)
        memcpy (message + i, "한", 3);
    message[big - big % 3] = 0;
    for (int shift = 0; shift < 3; shift++) {
        size_t msg_len;
        char *msg = s_json_roundtrip ("svc", message + shift, &msg_len);
        //  Up to 8191 bytes; each stray front byte grows to a 3-byte U+FFFD.
        assert_true (msg_len < 8192 + 4);
        assert_true (msg_len > 8000);
        //  A shifted start leaves (3 - shift) % 3 stray bytes at the front.
        assert_null (strstr (msg + 6, "\xef\xbf\xbd"));
        assert_string_equal (msg + msg_len - strlen (" [truncated]"), " [truncated]");
        free (msg);
    }
    free (message);
}

static void
test_errno_preserved (void **state)
{
    (void)state;
    bf_log_init ("svc", BF_LOG_INFO, false);
    bf_testutil_log_capture ();
    errno = ENOENT;
    bf_info ("x");
    assert_int_equal (errno, ENOENT);
    free (bf_testutil_log_captured ());
}

#define S_THREADS 6
#define S_LINES   400

static void *
s_logger (void *arg)
{
    int id = (int)(intptr_t)arg;
    char filler[300];
    memset (filler, 'a' + id, sizeof filler - 1);
    filler[sizeof filler - 1] = 0;
    for (int i = 0; i < S_LINES; i++)
        bf_info ("thread %d line %d %s", id, i, filler);
    return NULL;
}

static void
test_threads_whole_lines (void **state)
{
    (void)state;
    bf_log_init ("threads", BF_LOG_INFO, true);
    bf_testutil_log_capture ();
    pthread_t threads[S_THREADS];
    for (int t = 0; t < S_THREADS; t++)
        assert_int_equal (pthread_create (&threads[t], NULL, s_logger, (void *)(intptr_t)t), 0);
    for (int t = 0; t < S_THREADS; t++)
        pthread_join (threads[t], NULL);
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), S_THREADS * S_LINES);

    int next[S_THREADS] = { 0 };
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        s_field_t fields[8];
        int count = s_json_parse (line, fields, 8);
        assert_int_equal (count, 5);
        int id, n;
        assert_int_equal (sscanf (fields[4].text, "thread %d line %d", &id, &n), 2);
        assert_true (id >= 0 && id < S_THREADS);
        assert_int_equal (n, next[id]); //  each thread's lines in order
        next[id]++;
        const char *filler = strrchr (fields[4].text, ' ') + 1;
        assert_int_equal (strlen (filler), 299);
        assert_int_equal (strspn (filler, (char[]){ (char)('a' + id), 0 }), 299);
        s_fields_free (fields, count);
    }
    for (int t = 0; t < S_THREADS; t++)
        assert_int_equal (next[t], S_LINES);
    free (text);
}

//  ---------------------------------------------------------------------------
//  Context fields

//  Logs one info line in JSON and parses it into fields (at most max);
//  returns the count. The caller frees with s_fields_free.

static int
s_json_fields (const char *message, s_field_t *fields, int max)
{
    bf_log_init ("svc", BF_LOG_DEBUG, true);
    bf_testutil_log_capture ();
    bf_info ("%s", message);
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 1);
    text[strlen (text) - 1] = 0;
    int count = s_json_parse (text, fields, max);
    if (count < 5)
        fail_msg ("not a JSON log line: %s", text);
    assert_string_equal (fields[4].key, "msg");
    free (text);
    return count;
}

static const s_field_t *
s_find (const s_field_t *fields, int count, const char *key)
{
    for (int i = 0; i < count; i++)
        if (strcmp (fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

static void
test_fields_json (void **state)
{
    (void)state;
    bf_log_ctx_int ("run_id", 42);
    bf_log_ctx_set ("period", "%s", "2026-11");
    bf_log_ctx_int ("chunk", -7);
    bf_log_ctx_set ("verb", "%s", "we\"ird\\verb/</script>");
    bf_log_ctx_int ("chunk", 7); //  replaced in place
    bf_log_field ("sqlstate", "%s", "40001");
    bf_log_field ("period", "%s", "2026-12"); //  wins over the context's, this line only
    s_field_t fields[16];
    int count = s_json_fields ("chunk settled", fields, 16);
    assert_int_equal (count, 5 + 5);
    assert_string_equal (fields[4].text, "chunk settled");
    //  After msg: the context in the order set, then the line's own.
    assert_string_equal (fields[5].key, "run_id");
    assert_null (fields[5].text);
    assert_int_equal (fields[5].number, 42);
    assert_string_equal (fields[6].key, "chunk");
    assert_null (fields[6].text);
    assert_int_equal (fields[6].number, 7);
    assert_string_equal (fields[7].key, "verb");
    assert_string_equal (fields[7].text, "we\"ird\\verb/</script>");
    assert_string_equal (fields[8].key, "sqlstate");
    assert_string_equal (fields[8].text, "40001");
    assert_string_equal (fields[9].key, "period");
    assert_string_equal (fields[9].text, "2026-12");
    s_fields_free (fields, count);

    //  The line's own fields are gone; the context stays.
    count = s_json_fields ("next", fields, 16);
    assert_int_equal (count, 5 + 4);
    assert_null (s_find (fields, count, "sqlstate"));
    assert_string_equal (s_find (fields, count, "period")->text, "2026-11");
    s_fields_free (fields, count);

    //  unset keeps the others in order; clear leaves nothing behind.
    bf_log_ctx_unset ("run_id");
    bf_log_ctx_unset ("not_set");
    count = s_json_fields ("after unset", fields, 16);
    assert_int_equal (count, 5 + 3);
    assert_string_equal (fields[5].key, "period");
    assert_string_equal (fields[6].key, "chunk");
    assert_string_equal (fields[7].key, "verb");
    s_fields_free (fields, count);
    bf_log_ctx_clear ();
    count = s_json_fields ("after clear", fields, 16);
    assert_int_equal (count, 5);
    s_fields_free (fields, count);
}

static void
test_fields_escaping (void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *decoded;
    } cases[] = {
        { "", "" },
        { "a\nFAKE\r\t\x01\x1f\x7f", "a\nFAKE\r\t\x01\x1f\x7f" },
        { "bad \xff byte", "bad \xef\xbf\xbd byte" },
        { "cut \xed\x95", "cut \xef\xbf\xbd\xef\xbf\xbd" },
        { "overlong \xc0\xaf", "overlong \xef\xbf\xbd\xef\xbf\xbd" },
        { "키 이름 ✓", "키 이름 ✓" },
        { "{\"k\":\"v\"}", "{\"k\":\"v\"}" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bf_log_ctx_set ("actor", "%s", cases[i].in);
        s_field_t fields[8];
        int count = s_json_fields ("x", fields, 8);
        assert_int_equal (count, 6);
        assert_string_equal (fields[5].key, "actor");
        if (fields[5].text_len != strlen (cases[i].decoded)
            || memcmp (fields[5].text, cases[i].decoded, fields[5].text_len) != 0)
            fail_msg ("case %zu: got '%s'", i, fields[5].text);
        s_fields_free (fields, count);
    }
    //  An embedded NUL survives as \u0000 rather than ending the value.
    bf_log_ctx_set ("actor", "a%cb", 0);
    s_field_t fields[8];
    int count = s_json_fields ("x", fields, 8);
    assert_int_equal (fields[5].text_len, 3);
    assert_memory_equal (fields[5].text, "a\0b", 3);
    s_fields_free (fields, count);

    //  Plain: escaped as the message is, quoted when not one word.
    bf_log_ctx_clear ();
    bf_log_ctx_int ("run_id", 3);
    bf_log_ctx_set ("actor", "%s", "ops key \"a\\b\"");
    bf_log_ctx_set ("verb", "%s", "x\ny=1]");
    bf_log_ctx_set ("channel", "%s", "");
    bf_log_ctx_set ("provider", "%s", "sms\xff");
    bf_log_init ("svc", BF_LOG_INFO, false);
    bf_testutil_log_capture ();
    bf_info ("m");
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 1);
    assert_non_null (strstr (text, "]: m  [run_id=3 actor=\"ops key \\\"a\\\\b\\\"\""
                                   " verb=\"x\\ny=1]\" channel=\"\" provider=sms\\xff]\n"));
    free (text);
    bf_log_ctx_clear ();
}

static void
test_fields_masked (void **state)
{
    (void)state;
    bf_log_ctx_set ("actor", "%s", "hong.gildong@example.com");
    bf_log_field ("provider", "reply for %s: %s", "010-1234-5678", "bounced");
    s_field_t fields[8];
    int count = s_json_fields ("x", fields, 8);
    assert_int_equal (count, 7);
    assert_string_equal (s_find (fields, count, "actor")->text, "h***@example.com");
    assert_string_equal (s_find (fields, count, "provider")->text,
                         "reply for 010-****-5678: bounced");
    s_fields_free (fields, count);
    bf_log_ctx_clear ();

    //  Plain too.
    bf_log_init ("svc", BF_LOG_INFO, false);
    bf_log_field ("actor", "%s", "+82 10 1234 5678");
    bf_testutil_log_capture ();
    bf_info ("m");
    char *text = bf_testutil_log_captured ();
    assert_null (strstr (text, "1234"));
    assert_non_null (strstr (text, "5678"));
    free (text);
}

static void
test_field_long_value (void **state)
{
    (void)state;
    //  2,000 bytes of three-byte characters, shifted so the cut may fall
    //  anywhere inside one.
    char value[2100];
    for (int shift = 0; shift < 3; shift++) {
        size_t len = 0;
        memset (value, 'a', (size_t)shift);
        len = (size_t)shift;
        while (len + 3 < 2000) {
            memcpy (value + len, "한", 3);
            len += 3;
        }
        value[len] = 0;
        bf_log_ctx_set ("verb", "%s", value);
        s_field_t fields[8];
        int count = s_json_fields ("x", fields, 8);
        assert_int_equal (count, 6);
        const char *text = fields[5].text;
        size_t text_len = fields[5].text_len;
        assert_true (text_len <= BF_LOG_VALUE_MAX - 1);
        assert_true (text_len > BF_LOG_VALUE_MAX - 8);
        assert_true (bf_text_utf8_valid (text, text_len));
        assert_null (strstr (text, "\xef\xbf\xbd")); //  no character was split
        assert_string_equal (text + text_len - 3, "\xe2\x80\xa6");
        assert_memory_equal (text, value, text_len - 3);
        s_fields_free (fields, count);
    }
    bf_log_ctx_clear ();
}

//  Each thread sets its own context, logs, and checks nothing else.

#define S_CTX_THREADS 4
#define S_CTX_LINES   200

static void *
s_ctx_logger (void *arg)
{
    int id = (int)(intptr_t)arg;
    bf_log_ctx_int ("run_id", 100 + id);
    bf_log_ctx_set ("actor", "key-%d", id);
    for (int i = 0; i < S_CTX_LINES; i++) {
        bf_log_ctx_int ("chunk", i);
        if (i % 2)
            bf_log_field_int ("delivery_id", id * 1000 + i);
        bf_info ("thread %d line %d", id, i);
    }
    bf_log_ctx_clear ();
    bf_info ("thread %d done", id);
    return NULL;
}

static void
test_ctx_threads (void **state)
{
    (void)state;
    bf_log_ctx_set ("verb", "%s", "main-only");
    bf_log_init ("threads", BF_LOG_INFO, true);
    bf_testutil_log_capture ();
    pthread_t threads[S_CTX_THREADS];
    for (int t = 0; t < S_CTX_THREADS; t++)
        assert_int_equal (pthread_create (&threads[t], NULL, s_ctx_logger, (void *)(intptr_t)t), 0);
    for (int t = 0; t < S_CTX_THREADS; t++)
        pthread_join (threads[t], NULL);
    bf_info ("main");
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), S_CTX_THREADS * (S_CTX_LINES + 1) + 1);
    int lines = 0, done = 0;
    char *save = NULL;
    for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save)) {
        s_field_t fields[16];
        int count = s_json_parse (line, fields, 16);
        assert_true (count >= 5);
        int id, n;
        const s_field_t *verb = s_find (fields, count, "verb");
        if (strcmp (fields[4].text, "main") == 0) {
            assert_int_equal (count, 6);
            assert_string_equal (verb->text, "main-only");
        } else if (sscanf (fields[4].text, "thread %d done", &id) == 1
                   && strstr (fields[4].text, "done")) {
            assert_int_equal (count, 5); //  cleared: nothing behind
            done++;
        } else {
            assert_int_equal (sscanf (fields[4].text, "thread %d line %d", &id, &n), 2);
            assert_null (verb);
            char actor[16];
            snprintf (actor, sizeof actor, "key-%d", id);
            assert_int_equal (s_find (fields, count, "run_id")->number, 100 + id);
            assert_string_equal (s_find (fields, count, "actor")->text, actor);
            assert_int_equal (s_find (fields, count, "chunk")->number, n);
            const s_field_t *delivery = s_find (fields, count, "delivery_id");
            if (n % 2) {
                assert_non_null (delivery);
                assert_int_equal (delivery->number, id * 1000 + n);
            } else
                assert_null (delivery);
            assert_int_equal (count, 5 + 3 + n % 2);
            lines++;
        }
        s_fields_free (fields, count);
    }
    assert_int_equal (lines, S_CTX_THREADS * S_CTX_LINES);
    assert_int_equal (done, S_CTX_THREADS);
    free (text);
    bf_log_ctx_clear ();
}

//  A line's own fields go with it even when its level is off or the
//  limiter drops it, and a limiter's summary does not take them.

static void
test_field_next_only (void **state)
{
    (void)state;
    bf_log_init ("svc", BF_LOG_INFO, true);
    bf_testutil_log_capture ();
    bf_log_field ("sqlstate", "%s", "08006");
    bf_debug ("filtered out");
    bf_info ("plain");
    bf_log_limit_t limit = BF_LOG_LIMIT_INIT ("p", "lines", 1, 10000);
    bf_log_limited (&limit, BF_LOG_WARN, "first");
    bf_log_field ("sqlstate", "%s", "22021");
    bf_log_limited (&limit, BF_LOG_WARN, "suppressed");
    bf_info ("after suppressed");
    limit.window_start -= limit.window_ms;
    bf_log_field ("sqlstate", "%s", "40P01");
    bf_log_limited (&limit, BF_LOG_WARN, "after the summary");
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 5);
    assert_null (strstr (text, "08006"));
    assert_null (strstr (text, "22021"));
    assert_non_null (strstr (text, "\"msg\":\"plain\"}\n"));
    assert_non_null (strstr (text, "\"msg\":\"after suppressed\"}\n"));
    assert_non_null (strstr (text, "suppressed) in the last 10 s\"}\n"));
    assert_non_null (strstr (text, "\"msg\":\"after the summary\",\"sqlstate\":\"40P01\"}\n"));
    free (text);
}

//  libpq's multi-line messages in a plain line: one readable line.

static void
test_plain_multiline (void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "ERROR:  duplicate key value violates unique constraint \"bill_pkey\"\n"
          "DETAIL:  Key (period, bill_id)=(2026-11, 7) already exists.\n",
          "ERROR:  duplicate key value violates unique constraint \"bill_pkey\" | "
          "DETAIL:  Key (period, bill_id)=(2026-11, 7) already exists." },
        { "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused\n"
          "\tIs the server running on that host and accepting TCP/IP connections?\n",
          "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused | "
          "Is the server running on that host and accepting TCP/IP connections?" },
        { "  one line  \n\n", "one line" },
        { "a \r\n\r\n  \t b\tc", "a | b c" },
        { "", "" },
        { "\n\t \n", "" },
    };
    char out[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal (bf_log_oneline (out, sizeof out, cases[i].in), cases[i].out);
    assert_string_equal (bf_log_oneline (out, sizeof out, NULL), "");
    //  Cut on a character boundary, never with a dangling " | ".
    assert_string_equal (bf_log_oneline (out, 7, "한국\n어"), "한국");
    assert_string_equal (bf_log_oneline (out, 8, "한국어"), "한국");
    assert_string_equal (bf_log_oneline (out, 7, "ab\ncd"), "ab | c");
    assert_string_equal (bf_log_oneline (out, 6, "ab\ncd"), "ab");
    assert_string_equal (bf_log_oneline (out, 1, "abc"), "");

    bf_log_init ("settle", BF_LOG_INFO, false);
    bf_testutil_log_capture ();
    bf_error ("database: storing failed (SQLSTATE 23505, permanent): %s",
              bf_log_oneline (out, sizeof out, cases[0].in));
    bf_log_field ("sqlstate", "%s", "08001");
    bf_warn ("database: connect failed: %s", bf_log_oneline (out, sizeof out, cases[1].in));
    char *text = bf_testutil_log_captured ();
    assert_int_equal (s_count_lines (text), 2);
    assert_null (strstr (text, "\\n"));
    assert_null (strstr (text, "\\t"));
    assert_non_null (strstr (text, "already exists.\n"));
    assert_non_null (strstr (text, "Connection refused | Is the server running on that host and"
                                   " accepting TCP/IP connections?  [sqlstate=08001]\n"));
    free (text);
}

//  ---------------------------------------------------------------------------
//  Masking

static void
test_mask_email (void **state)
{
    (void)state;
    char long_local[600], long_domain[600];
    memset (long_local, 'q', 500);
    snprintf (long_local + 500, 100, "@example.com");
    memset (long_domain, 'd', 300);
    long_domain[0] = 'a';
    long_domain[1] = '@';
    snprintf (long_domain + 300, 100, ".com");

    static const char *const masked = "***";
    const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "hong.gildong@example.com", "h***@example.com" },
        { "a@b", "a***@b" },
        { "A.B+tag@Sub.Example.co.kr", "A***@Sub.Example.co.kr" },
        { "  hong@example.com\n", "h***@example.com" },
        { "홍길동@example.com", "홍***@example.com" },
        { "hong@예시.한국", "h***@예시.한국" },
        { long_local, "q***@example.com" },
        { "", masked },
        { "@", masked },
        { "a@", masked },
        { "@b", masked },
        { "a@@b", masked },
        { "a@b@c", masked },
        { "no-at-sign", masked },
        { "   ", masked },
        { "hong gildong@example.com", masked },
        { "hong@exa mple.com", masked },
        { "hong@example.com\nFAKE", masked },
        { "h\x01ong@example.com", masked },
        { "\xffhong@example.com", masked },
        { "hong@example\xff.com", masked },
        { "\xed\x95@example.com", masked },
        { "hong@example.com\x7f", masked },
        { long_domain, masked }, //  does not fit BF_MASK_MAX
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[BF_MASK_MAX];
        memset (out, '#', sizeof out);
        char *rc = bf_mask_email (cases[i].in, out, sizeof out);
        assert_ptr_equal (rc, out);
        if (strcmp (out, cases[i].out) != 0)
            fail_msg ("email case %zu: expected '%s', got '%s'", i, cases[i].out, out);
    }
    char out[BF_MASK_MAX] = "junk";
    assert_string_equal (bf_mask_email (NULL, out, sizeof out), "");
}

static void
test_mask_phone (void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *out;
    } cases[] = {
        { "010-1234-5678", "010-****-5678" },
        { "01012345678", "010-****-5678" },
        { "010-123-4567", "010-****-4567" },
        { "0101234567", "010-****-4567" },
        { " 011-9876-5432 ", "011-****-5432" },
        { "", "***" },
        { "-", "***" },
        { "010-1234-567", "***" },
        { "010-12345-678", "***" },
        { "0101234567890", "***" },
        { "010123456", "***" },
        { "010-1234-56789", "***" },
        { "010--1234-5678", "***" },
        { "-010-1234-5678", "***" },
        { "010-1234-5678-", "***" },
        { "010-12345678", "***" },
        { "01-01234-5678", "***" },
        { "01-1234-5678", "***" },
        { "0101-123-4567", "***" },
        { "0101-1234-567", "***" },
        { "010 1234 5678", "***" },
        { "010-1234-567a", "***" },
        { "O10-1234-5678", "***" },
        { "phone: 010-1234-5678", "***" },
        { "+82-10-1234-5678", "***" },
        { "11012345678", "***" },
        { "010-1234-5678\n010", "***" },
        { "０１０-1234-5678", "***" },
        { "010\xff"
          "12345678",
          "***" },
        { "99999999999999999999999999999999999999999999", "***" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[BF_MASK_MAX];
        memset (out, '#', sizeof out);
        char *rc = bf_mask_phone (cases[i].in, out, sizeof out);
        assert_ptr_equal (rc, out);
        if (strcmp (out, cases[i].out) != 0)
            fail_msg ("phone case %zu '%s': expected '%s', got '%s'", i, cases[i].in, cases[i].out,
                      out);
    }
    char out[BF_MASK_MAX] = "junk";
    assert_string_equal (bf_mask_phone (NULL, out, sizeof out), "");
}

static void
test_mask_small_buffers (void **state)
{
    (void)state;
    char out[16];
    memset (out, '#', sizeof out);
    bf_mask_email ("hong@example.com", out, 0);
    assert_int_equal (out[0], '#'); //  nothing written
    bf_mask_email ("hong@example.com", out, 1);
    assert_string_equal (out, "");
    bf_mask_email ("hong@example.com", out, 3);
    assert_string_equal (out, "**");
    bf_mask_email ("hong@example.com", out, 16); //  needs 17
    assert_string_equal (out, "***");
    char fits[17];
    assert_string_equal (bf_mask_email ("hong@example.com", fits, sizeof fits), "h***@example.com");
    bf_mask_phone ("010-1234-5678", out, 13); //  needs 14
    assert_string_equal (out, "***");
    bf_mask_phone ("010-1234-5678", out, 14);
    assert_string_equal (out, "010-****-5678");
    bf_mask_phone ("010-1234-5678", out, 2);
    assert_string_equal (out, "*");
    assert_null (bf_mask_phone ("010-1234-5678", NULL, 10));
}

//  Random bytes never crash the maskers, and whatever comes out is either
//  "***" or the documented shape, built only from the input's own parts.

static uint32_t s_seed = 12345;

static uint32_t
s_rand (void)
{
    s_seed = s_seed * 1103515245u + 12345u;
    return s_seed >> 8;
}

static void
test_mask_random_bytes (void **state)
{
    (void)state;
    static const char alphabet[] = "@@@-.0123456789ab \x01\xff\xed\x95\x9c\xea";
    for (int round = 0; round < 20000; round++) {
        char in[40];
        size_t len = s_rand () % (sizeof in - 1);
        for (size_t i = 0; i < len; i++)
            in[i] = round % 2 ? (char)(s_rand () & 0xFF)
                              : alphabet[s_rand () % (sizeof alphabet - 1)];
        in[len] = 0;
        char out[BF_MASK_MAX];
        bf_mask_email (in, out, sizeof out);
        assert_true (strlen (out) < sizeof out);
        if (strcmp (out, "***") != 0) {
            const char *stars = strstr (out, "***@");
            assert_non_null (stars);
            assert_true (stars > out && stars - out <= 4);
            const char *at = strchr (in, '@');
            assert_non_null (at);
            assert_null (strchr (at + 1, '@'));
            assert_int_equal (memcmp (out, in + strspn (in, " \t\n\r\v\f"), (size_t)(stars - out)),
                              0);
            assert_non_null (strstr (in, stars + 3)); //  "@domain" is the input's
        }
        bf_mask_phone (in, out, sizeof out);
        if (strcmp (out, "***") != 0) {
            assert_int_equal (strlen (out), 13);
            assert_int_equal (memcmp (out + 3, "-****-", 6), 0);
            assert_true (out[0] == '0');
        }
    }
}

/*  A message or field value over its size is masked before it is cut:
    a contact the cut falls into is left out, never shown in part (cut
    after "010-1234" it would no longer read as a number and go out in
    clear; cut after "hong.gildong@" no longer as an address).  */
static void
test_cut_never_splits_a_contact (void **state)
{
    (void)state;
    const char *contacts[] = { "010-1234-5678", "hong.gildong@example.com" };
    bf_log_init ("cut", BF_LOG_INFO, false);
    static char text[9000];
    for (size_t c = 0; c < 2; c++) {
        size_t clen = strlen (contacts[c]);
        /*  The message: 8191 bytes are formatted, the cut falls anywhere
            in the contact.  */
        for (size_t at = 8191 - clen - 14; at < 8191; at++) {
            memset (text, 'x', sizeof text - 1);
            text[sizeof text - 1] = 0;
            text[at - 1] = ' ';
            memcpy (text + at, contacts[c], clen);
            text[at + clen] = ' ';
            bf_testutil_log_capture ();
            bf_info ("%s", text);
            char *out = bf_testutil_log_captured ();
            assert_non_null (strstr (out, " [truncated]\n"));
            assert_null (strstr (out, "1234"));
            assert_null (strstr (out, "hong"));
            free (out);
        }
        /*  A field value: 1023 bytes are formatted.  */
        for (size_t at = 1023 - clen - 14; at < 1023; at++) {
            memset (text, 'x', 2000);
            text[2000] = 0;
            text[at - 1] = ' ';
            memcpy (text + at, contacts[c], clen);
            bf_testutil_log_capture ();
            bf_log_field ("note", "%s", text);
            bf_info ("m");
            char *out = bf_testutil_log_captured ();
            assert_non_null (strstr (out, "\xE2\x80\xA6"));
            assert_null (strstr (out, "1234"));
            assert_null (strstr (out, "hong"));
            free (out);
        }
    }
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_defaults_before_init),
        cmocka_unit_test (test_level_parse),
        cmocka_unit_test (test_level_filter),
        cmocka_unit_test (test_plain_format),
        cmocka_unit_test (test_plain_escapes_control),
        cmocka_unit_test (test_json_escaping),
        cmocka_unit_test (test_json_control_as_u00xx),
        cmocka_unit_test (test_embedded_nul),
        cmocka_unit_test (test_truncation),
        cmocka_unit_test (test_errno_preserved),
        cmocka_unit_test (test_threads_whole_lines),
        cmocka_unit_test (test_mask_email),
        cmocka_unit_test (test_limited),
        cmocka_unit_test (test_mask_phone),
        cmocka_unit_test (test_mask_small_buffers),
        cmocka_unit_test (test_mask_random_bytes),
        cmocka_unit_test (test_fields_json),
        cmocka_unit_test (test_fields_escaping),
        cmocka_unit_test (test_fields_masked),
        cmocka_unit_test (test_field_long_value),
        cmocka_unit_test (test_ctx_threads),
        cmocka_unit_test (test_field_next_only),
        cmocka_unit_test (test_plain_multiline),
        cmocka_unit_test (test_cut_never_splits_a_contact),
    };
    return cmocka_run_group_tests_name ("bf_log", tests, NULL, NULL);
}
