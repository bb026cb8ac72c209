/*  =========================================================================
    bf_log - levelled logging as plain text or JSON lines; every message
    passes through bf_mask_text (common/bf_mask.h) before it is written.

    Every line is formatted into one buffer and written with a single
    write(2) while the log mutex is held, so lines from concurrent threads
    never interleave. A message longer than S_MSG_MAX bytes is cut at a
    UTF-8 character boundary and ends with S_TRUNCATED; it is masked
    before the cut, which leaves out a contact it would split (so is a
    field value cut by its formatting buffer).

    Plain lines escape control characters (\n, \r, \t, \xHH) so one call is
    always one line; JSON lines escape per RFC 8259 (control characters as
    \u00XX) and replace bytes that are not valid UTF-8 by U+FFFD, so every
    line is a valid JSON object.

    Context fields live in thread-local tables (one per thread, so no
    locking): s_ctx for the work a thread is doing, s_next for the next
    line only. Values are masked and cut when set; they are escaped when a
    line is written, since the format may change in between.
    =========================================================================
*/

#include "bf_log.h"
#include "bf_text.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>

#include <czmq.h>
#include <time.h>
#include <unistd.h>

#define S_MSG_MAX     8192
#define S_SERVICE_MAX 64
#define S_TRUNCATED   " [truncated]"
#define S_KEY_MAX     24   /* a field's key, with its NUL */
#define S_VALUE_RAW   1024 /* a field's formatted value before masking and cutting */
#define S_ELLIPSIS    "\xe2\x80\xa6"
//  Worst case: every message and value byte becomes a 6-byte \u00XX
//  escape (a plain quoted value: 4-byte \xHH), plus the escaped service
//  name, the keys and punctuation, and the fixed fields.
#define S_FIELD_LINE_MAX (BF_LOG_VALUE_MAX * 6 + S_KEY_MAX + 8)
#define S_LINE_MAX                                                                                 \
    (S_MSG_MAX * 6 + S_SERVICE_MAX * 6 + 2 * BF_LOG_FIELDS_MAX * S_FIELD_LINE_MAX + 256)

static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static atomic_int s_level = BF_LOG_INFO;
static atomic_int s_fd = 2;
static atomic_bool s_json = false;
static char s_service[S_SERVICE_MAX] = "billflow"; //  guarded by s_mutex
static char s_line[S_LINE_MAX];                    //  guarded by s_mutex

//  One field: value_len bytes of value (masked, cut; may hold any byte).

typedef struct {
    char key[S_KEY_MAX];
    char value[BF_LOG_VALUE_MAX];
    size_t value_len;
    bool number; //  a JSON number, else a JSON string
} s_field_t;

typedef struct {
    s_field_t field[BF_LOG_FIELDS_MAX];
    int count;
} s_fields_t;

static _Thread_local s_fields_t s_ctx;  //  the thread's context
static _Thread_local s_fields_t s_next; //  fields of the thread's next line

//  Every line is written through a bf_text_out_t over s_line: a line that
//  would not fit is cut, never overrun.

static void
s_put (bf_text_out_t *buf, const char *bytes, size_t len)
{
    bf_text_out_add (buf, bytes, len);
}

static void
s_puts (bf_text_out_t *buf, const char *text)
{
    bf_text_out_str (buf, text);
}

//  Appends text with the escaping of the chosen format (see banner).

static void
s_put_escaped (bf_text_out_t *buf, const char *text, size_t len, bool json)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c == '"' && json) {
            s_puts (buf, "\\\"");
            i++;
        } else if (c == '\\' && json) {
            s_puts (buf, "\\\\");
            i++;
        } else if (c < 0x20 || c == 0x7F) {
            if (json) {
                char esc[7] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0 };
                s_put (buf, esc, 6);
            } else if (c == '\n')
                s_puts (buf, "\\n");
            else if (c == '\r')
                s_puts (buf, "\\r");
            else if (c == '\t')
                s_puts (buf, "\\t");
            else {
                char esc[5] = { '\\', 'x', hex[c >> 4], hex[c & 15], 0 };
                s_put (buf, esc, 4);
            }
            i++;
        } else {
            size_t n = bf_text_utf8_len ((const char *)p + i, len - i);
            if (n > 0) {
                s_put (buf, text + i, n);
                i += n;
            } else {
                if (json)
                    s_puts (buf, "\\ufffd");
                else {
                    char esc[5] = { '\\', 'x', hex[c >> 4], hex[c & 15], 0 };
                    s_put (buf, esc, 4);
                }
                i++;
            }
        }
    }
}

//  ---------------------------------------------------------------------------
//  Fields

static bool
s_key_valid (const char *key)
{
    static const char *reserved[] = { "ts", "level", "service", "pid", "msg" };
    if (!key || *key < 'a' || *key > 'z')
        return false;
    size_t len = strspn (key, "abcdefghijklmnopqrstuvwxyz0123456789_");
    if (key[len] != 0 || len >= S_KEY_MAX)
        return false;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcmp (key, reserved[i]) == 0)
            return false;
    return true;
}

static s_field_t *
s_fields_find (s_fields_t *set, const char *key)
{
    for (int i = 0; i < set->count; i++)
        if (strcmp (set->field[i].key, key) == 0)
            return &set->field[i];
    return NULL;
}

//  Masks the len bytes at text into safe (safesize bytes); with cut (the
//  text was cut at len by a fixed buffer) what reaches the last few bytes
//  is left out, since it may be part of a longer address or number: a
//  contact cut in two would no longer be masked. Returns the length.

#define S_CUT_MARGIN 12 /* look-ahead the masking needs past a cut (phone separators) */

static size_t
s_mask_cut (const char *text, size_t len, bool cut, char *safe, size_t safesize)
{
    size_t limit = cut && len > S_CUT_MARGIN ? len - S_CUT_MARGIN : len;
    return bf_mask_text_within (text, len, limit, NULL, 0, safe, safesize);
}

//  Sets key to the len bytes at value, already masked (or a number); cut
//  to fit, with an ellipsis when it was cut (or was already: cut).

static void
s_fields_put (s_fields_t *set, const char *key, bool number, const char *value, size_t value_len,
              bool cut)
{
    bool valid = s_key_valid (key);
    assert (valid); //  keys are constants of the code
    if (!valid)
        return;
    s_field_t *field = s_fields_find (set, key);
    if (!field) {
        assert (set->count < BF_LOG_FIELDS_MAX);
        if (set->count >= BF_LOG_FIELDS_MAX)
            return;
        field = &set->field[set->count++];
        snprintf (field->key, sizeof field->key, "%s", key);
    }
    field->number = number;
    if (cut || value_len > sizeof field->value - 1) {
        value_len = bf_text_utf8_prefix (value, value_len, sizeof field->value - sizeof S_ELLIPSIS);
        memcpy (field->value, value, value_len);
        memcpy (field->value + value_len, S_ELLIPSIS, sizeof S_ELLIPSIS - 1);
        value_len += sizeof S_ELLIPSIS - 1;
    } else
        memcpy (field->value, value, value_len);
    field->value[value_len] = 0;
    field->value_len = value_len;
}

static void
s_fields_vset (s_fields_t *set, const char *key, const char *format, va_list args)
{
    char raw[S_VALUE_RAW];
    int rc = format ? vsnprintf (raw, sizeof raw, format, args) : -1;
    size_t len;
    bool cut = false;
    if (rc < 0)
        len = (size_t)snprintf (raw, sizeof raw, "(unformattable)");
    else {
        cut = (size_t)rc >= sizeof raw;
        len = cut ? sizeof raw - 1 : (size_t)rc;
    }
    char safe[S_VALUE_RAW + 64];
    size_t safe_len = s_mask_cut (raw, len, cut, safe, sizeof safe);
    s_fields_put (set, key, false, safe, safe_len, cut);
}

void
bf_log_set (bf_log_scope_t scope, const char *key, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_fields_vset (scope == BF_LOG_NEXT_LINE ? &s_next : &s_ctx, key, format, args);
    va_end (args);
}

void
bf_log_set_int (bf_log_scope_t scope, const char *key, int64_t value)
{
    char text[24];
    int len = snprintf (text, sizeof text, "%lld", (long long)value);
    s_fields_put (scope == BF_LOG_NEXT_LINE ? &s_next : &s_ctx, key, true, text, (size_t)len,
                  false);
}

void
bf_log_ctx_unset (const char *key)
{
    s_field_t *field = key ? s_fields_find (&s_ctx, key) : NULL;
    if (!field)
        return;
    s_field_t *last = &s_ctx.field[s_ctx.count - 1];
    //  Keep the order the fields were set in.
    memmove (field, field + 1, (size_t)(last - field) * sizeof *field);
    s_ctx.count--;
}

void
bf_log_ctx_clear (void)
{
    s_ctx.count = 0;
}

//  A plain value goes in quotes when it would not read as one word.

static void
s_put_plain_value (bf_text_out_t *buf, const char *value, size_t len)
{
    bool quote = len == 0;
    for (size_t i = 0; i < len && !quote; i++)
        quote = value[i] == ' ' || value[i] == '"' || value[i] == '=' || value[i] == ']';
    if (!quote) {
        s_put_escaped (buf, value, len, false);
        return;
    }
    s_puts (buf, "\"");
    size_t start = 0;
    for (size_t i = 0; i <= len; i++)
        if (i == len || value[i] == '"' || value[i] == '\\') {
            s_put_escaped (buf, value + start, i - start, false);
            if (i < len)
                s_puts (buf, value[i] == '"' ? "\\\"" : "\\\\");
            start = i + 1;
        }
    s_puts (buf, "\"");
}

//  Appends the fields of the line: the thread's context, then the ones
//  for this line only (which win over a context field of the same key).

static void
s_put_fields (bf_text_out_t *buf, const s_fields_t *next, bool json)
{
    bool first = true;
    for (int set = 0; set < 2; set++) {
        const s_fields_t *fields = set == 0 ? &s_ctx : next;
        for (int i = 0; fields && i < fields->count; i++) {
            const s_field_t *field = &fields->field[i];
            if (set == 0 && next && s_fields_find ((s_fields_t *)next, field->key))
                continue;
            if (json) {
                s_puts (buf, ",\"");
                s_puts (buf, field->key);
                s_puts (buf, "\":");
                if (field->number)
                    s_put (buf, field->value, field->value_len);
                else {
                    s_puts (buf, "\"");
                    s_put_escaped (buf, field->value, field->value_len, true);
                    s_puts (buf, "\"");
                }
            } else {
                s_puts (buf, first ? "  [" : " ");
                s_puts (buf, field->key);
                s_puts (buf, "=");
                s_put_plain_value (buf, field->value, field->value_len);
            }
            first = false;
        }
    }
    if (!json && !first)
        s_puts (buf, "]");
}

char *
bf_log_oneline (char *out, size_t outsize, const char *text)
{
    assert (out && outsize > 0);
    bf_text_out_t buf = BF_TEXT_OUT (out, outsize);
    const char *p = text ? text : "";
    size_t left = strlen (p);
    bool pending_break = false; //  a line break seen, " | " not yet written
    while (left > 0) {
        char c = *p;
        if (c == '\n' || c == '\r'
            || ((c == ' ' || c == '\t') && (buf.len == 0 || pending_break))) {
            pending_break = pending_break || c == '\n' || c == '\r';
            p++, left--;
            continue;
        }
        if (c == ' ' || c == '\t') {
            //  Blank space before a line break or the end goes.
            size_t blank = strspn (p, " \t");
            if (blank == left || p[blank] == '\n' || p[blank] == '\r') {
                p += blank, left -= blank;
                continue;
            }
        }
        size_t n = bf_text_utf8_len (p, left);
        if (n == 0)
            n = 1;
        size_t need = n + (pending_break && buf.len > 0 ? 3 : 0);
        if (buf.len + need > buf.size - 1)
            break;
        if (pending_break && buf.len > 0)
            s_puts (&buf, " | ");
        pending_break = false;
        if (c == '\t')
            s_puts (&buf, " ");
        else
            s_put (&buf, p, n);
        p += n, left -= n;
    }
    out[buf.len] = 0;
    return out;
}

//  ---------------------------------------------------------------------------

void
bf_log_init (const char *service, bf_log_level_t level, bool json)
{
    if ((int)level < (int)BF_LOG_DEBUG)
        level = BF_LOG_DEBUG;
    if ((int)level > (int)BF_LOG_ERROR)
        level = BF_LOG_ERROR;
    pthread_mutex_lock (&s_mutex);
    if (service && *service)
        snprintf (s_service, sizeof s_service, "%s", service);
    pthread_mutex_unlock (&s_mutex);
    atomic_store (&s_level, (int)level);
    atomic_store (&s_json, json);
}

int
bf_log_level_parse (const char *text, bf_log_level_t *level)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    if (!text)
        return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp (text, names[i]) == 0) {
            if (level)
                *level = (bf_log_level_t)i;
            return 0;
        }
    return -1;
}

void
bf_log_set_fd (int fd)
{
    atomic_store (&s_fd, fd);
}

bool
bf_log_enabled (bf_log_level_t level)
{
    return (int)level >= atomic_load (&s_level);
}

static void s_write_line (bf_log_level_t level, const s_fields_t *next, const char *format,
                          va_list args);

void
bf_log (bf_log_level_t level, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    bf_logv (level, format, args);
    va_end (args);
}

void
bf_logv (bf_log_level_t level, const char *format, va_list args)
{
    s_write_line (level, &s_next, format, args);
    s_next.count = 0; //  used or not, they were for this line
}

//  Writes one line with the thread's context and, when next is not NULL,
//  those fields too.

static void
s_write_line (bf_log_level_t level, const s_fields_t *next, const char *format, va_list args)
{
    static const char *plain_names[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
    static const char *json_names[] = { "debug", "info", "warn", "error" };
    if (!bf_log_enabled (level))
        return;
    int index = (int)level < 0 ? 0 : (int)level > 3 ? 3 : (int)level;
    int saved_errno = errno; //  callers may log and then look at errno

    //  The message, masked, then cut at a character boundary when too
    //  long: masked before the cut, so a contact at the cut is masked
    //  whole or left out, never shown in part.
    char msg[S_MSG_MAX];
    size_t msg_len;
    bool cut = false;
    int rc = format ? vsnprintf (msg, sizeof msg, format, args) : -1;
    if (rc < 0)
        msg_len = (size_t)snprintf (msg, sizeof msg, "(unformattable log message)");
    else {
        cut = (size_t)rc >= sizeof msg;
        msg_len = cut ? sizeof msg - 1 : (size_t)rc;
    }

    /*  G9's last line of defence: whatever a caller forgot to mask (a
        provider's reason echoing a number, say) is masked here.  */
    char safe[S_MSG_MAX + 64];
    size_t safe_len = s_mask_cut (msg, msg_len, cut, safe, sizeof safe);
    if (cut || safe_len > sizeof msg - 1) {
        msg_len = bf_text_utf8_prefix (safe, safe_len, sizeof msg - sizeof S_TRUNCATED);
        memcpy (msg, safe, msg_len);
        memcpy (msg + msg_len, S_TRUNCATED, sizeof S_TRUNCATED);
        msg_len += sizeof S_TRUNCATED - 1;
    } else {
        memcpy (msg, safe, safe_len);
        msg[safe_len] = 0;
        msg_len = safe_len;
    }

    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    char ts[96];
    snprintf (ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
              tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
              (int)(now.tv_nsec / 1000000));
    char pid[24];
    snprintf (pid, sizeof pid, "%ld", (long)getpid ());
    bool json = atomic_load (&s_json);

    pthread_mutex_lock (&s_mutex);
    //  Keep room for the closing bytes so a full buffer still ends a line.
    bf_text_out_t buf = BF_TEXT_OUT (s_line, sizeof s_line - 4);
    if (json) {
        s_puts (&buf, "{\"ts\":\"");
        s_puts (&buf, ts);
        s_puts (&buf, "\",\"level\":\"");
        s_puts (&buf, json_names[index]);
        s_puts (&buf, "\",\"service\":\"");
        s_put_escaped (&buf, s_service, strlen (s_service), true);
        s_puts (&buf, "\",\"pid\":");
        s_puts (&buf, pid);
        s_puts (&buf, ",\"msg\":\"");
        s_put_escaped (&buf, msg, msg_len, true);
        s_puts (&buf, "\"");
        s_put_fields (&buf, next, true);
        buf.size = sizeof s_line;
        s_puts (&buf, "}\n");
    } else {
        s_puts (&buf, ts);
        s_puts (&buf, " ");
        s_puts (&buf, plain_names[index]);
        s_puts (&buf, " ");
        s_put_escaped (&buf, s_service, strlen (s_service), false);
        s_puts (&buf, "[");
        s_puts (&buf, pid);
        s_puts (&buf, "]: ");
        s_put_escaped (&buf, msg, msg_len, false);
        s_put_fields (&buf, next, false);
        buf.size = sizeof s_line;
        s_puts (&buf, "\n");
    }
    int fd = atomic_load (&s_fd);
    size_t done = 0;
    while (done < buf.len) {
        ssize_t n = write (fd, buf.data + done, buf.len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; //  nowhere else to report a failing log
        done += (size_t)n;
    }
    pthread_mutex_unlock (&s_mutex);
    errno = saved_errno;
}

int
bf_err_set (char *err, size_t errsize, const char *format, ...)
{
    if (err && errsize > 0) {
        va_list args;
        va_start (args, format);
        vsnprintf (err, errsize, format, args);
        va_end (args);
    }
    return -1;
}

int
bf_usage_error (const char *program, const char *usage, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    fprintf (stderr, "%s: ", program);
    vfprintf (stderr, format, args);
    va_end (args);
    fprintf (stderr, "\n\n%s", usage);
    return 2;
}

//  The summary is no caller's line: fields set for the next line stay.

static void s_summary_line (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

static void
s_summary_line (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_write_line (BF_LOG_WARN, NULL, format, args);
    va_end (args);
}

static void
s_summary (bf_log_limit_t *limit)
{
    s_summary_line ("%s: %llu more %s not logged (suppressed) in the last %d s", limit->prefix,
                    (unsigned long long)limit->suppressed, limit->noun,
                    (limit->window_ms + 999) / 1000);
}

int
bf_log_limit_tick (bf_log_limit_t *limit)
{
    int64_t now = zclock_mono ();
    int64_t ends = limit->window_start + limit->window_ms;
    if (now < ends)
        return limit->suppressed ? (int)(ends - now) : -1;
    if (limit->suppressed)
        s_summary (limit);
    limit->window_start = now;
    limit->written = 0;
    limit->suppressed = 0;
    return -1;
}

void
bf_log_limited (bf_log_limit_t *limit, bf_log_level_t level, const char *format, ...)
{
    bf_log_limit_tick (limit);
    if (limit->written >= limit->burst) {
        limit->suppressed++;
        s_next.count = 0; //  this line's fields go with it
        return;
    }
    limit->written++;
    va_list args;
    va_start (args, format);
    bf_logv (level, format, args);
    va_end (args);
}
