/*  =========================================================================
    bf_log - levelled logging as plain text or JSON lines, and the masking
    helpers for contacts.

    Every line is formatted into one buffer and written with a single
    write(2) while the log mutex is held, so lines from concurrent threads
    never interleave. A message longer than S_MSG_MAX bytes is cut at a
    UTF-8 character boundary and ends with S_TRUNCATED.

    Plain lines escape control characters (\n, \r, \t, \xHH) so one call is
    always one line; JSON lines escape per RFC 8259 (control characters as
    \u00XX) and replace bytes that are not valid UTF-8 by U+FFFD, so every
    line is a valid JSON object.
    =========================================================================
*/

#include "bf_log.h"
#include "bf_text.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define S_MSG_MAX     8192
#define S_SERVICE_MAX 64
#define S_TRUNCATED   " [truncated]"
//  Worst case: every message byte becomes a 6-byte \u00XX escape, plus the
//  escaped service name and the fixed fields.
#define S_LINE_MAX (S_MSG_MAX * 6 + S_SERVICE_MAX * 6 + 256)

static pthread_mutex_t s_mutex = PTHREAD_MUTEX_INITIALIZER;
static atomic_int s_level = BF_LOG_INFO;
static atomic_int s_fd = 2;
static atomic_bool s_json = false;
static char s_service[S_SERVICE_MAX] = "billflow"; //  guarded by s_mutex
static char s_line[S_LINE_MAX];                    //  guarded by s_mutex

//  Text appender that never overruns; len stops growing when full.

typedef struct {
    char *data;
    size_t len;
    size_t cap;
} s_buf_t;

static void
s_put (s_buf_t *buf, const char *bytes, size_t len)
{
    if (len > buf->cap - buf->len)
        len = buf->cap - buf->len;
    memcpy (buf->data + buf->len, bytes, len);
    buf->len += len;
}

static void
s_puts (s_buf_t *buf, const char *text)
{
    s_put (buf, text, strlen (text));
}

//  Appends text with the escaping of the chosen format (see banner).

static void
s_put_escaped (s_buf_t *buf, const char *text, size_t len, bool json)
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
    static const char *plain_names[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
    static const char *json_names[] = { "debug", "info", "warn", "error" };
    if (!bf_log_enabled (level))
        return;
    int index = (int)level < 0 ? 0 : (int)level > 3 ? 3 : (int)level;
    int saved_errno = errno; //  callers may log and then look at errno

    //  The message, cut at a character boundary when too long.
    char msg[S_MSG_MAX];
    size_t msg_len;
    int rc = format ? vsnprintf (msg, sizeof msg, format, args) : -1;
    if (rc < 0)
        msg_len = (size_t)snprintf (msg, sizeof msg, "(unformattable log message)");
    else if ((size_t)rc < sizeof msg)
        msg_len = (size_t)rc;
    else {
        size_t cut = sizeof msg - sizeof S_TRUNCATED;
        while (cut > 0 && ((unsigned char)msg[cut] & 0xC0) == 0x80)
            cut--;
        memcpy (msg + cut, S_TRUNCATED, sizeof S_TRUNCATED);
        msg_len = cut + sizeof S_TRUNCATED - 1;
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
    s_buf_t buf = { s_line, 0, sizeof s_line - 4 };
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
        buf.cap = sizeof s_line;
        s_puts (&buf, "\"}\n");
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
        buf.cap = sizeof s_line;
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

//  ---------------------------------------------------------------------------
//  Masking. Both functions decide first whether the whole input has the
//  expected shape and only then copy the few characters they show, so a
//  malformed value is never partly echoed.

static void
s_mask_set (char *out, size_t outsize, const char *text)
{
    if (out && outsize > 0)
        snprintf (out, outsize, "%s", text);
}

static bool
s_is_space (unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

//  Trims ASCII white space: returns start, sets *len.

static const char *
s_trim (const char *text, size_t *len)
{
    size_t n = strlen (text);
    while (n > 0 && s_is_space ((unsigned char)*text)) {
        text++;
        n--;
    }
    while (n > 0 && s_is_space ((unsigned char)text[n - 1]))
        n--;
    *len = n;
    return text;
}

char *
bf_mask_email (const char *email, char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return out;
    if (!email) {
        out[0] = 0;
        return out;
    }
    size_t len;
    const char *text = s_trim (email, &len);
    const unsigned char *p = (const unsigned char *)text;

    //  Exactly one '@', valid UTF-8, no control characters or spaces inside.
    size_t at = len;
    size_t ats = 0;
    for (size_t i = 0; i < len;) {
        if (p[i] <= 0x20 || p[i] == 0x7F) {
            s_mask_set (out, outsize, "***");
            return out;
        }
        if (p[i] == '@') {
            ats++;
            at = i;
        }
        size_t n = bf_text_utf8_len ((const char *)p + i, len - i);
        if (n == 0) {
            s_mask_set (out, outsize, "***");
            return out;
        }
        i += n;
    }
    if (ats != 1 || at == 0 || at == len - 1) {
        s_mask_set (out, outsize, "***");
        return out;
    }
    //  First character of the local part (one UTF-8 sequence) + "***@" + domain.
    size_t first = bf_text_utf8_len ((const char *)p, at);
    size_t domain_len = len - at - 1;
    size_t need = first + 4 + domain_len + 1;
    if (first == 0 || need > outsize) {
        s_mask_set (out, outsize, "***");
        return out;
    }
    memcpy (out, text, first);
    memcpy (out + first, "***@", 4);
    memcpy (out + first + 4, text + at + 1, domain_len);
    out[need - 1] = 0;
    return out;
}

char *
bf_mask_phone (const char *phone, char *out, size_t outsize)
{
    if (!out || outsize == 0)
        return out;
    if (!phone) {
        out[0] = 0;
        return out;
    }
    size_t len;
    const char *text = s_trim (phone, &len);

    //  Accepted: 10 or 11 digits starting with 0, either bare or grouped
    //  3-3-4 / 3-4-4 with dashes. Anything else is "***".
    char digits[12];
    size_t ndigits = 0;
    size_t group[3] = { 0, 0, 0 };
    size_t groups = 1;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c >= '0' && c <= '9') {
            if (ndigits == 11) {
                s_mask_set (out, outsize, "***");
                return out;
            }
            digits[ndigits++] = c;
            group[groups - 1]++;
        } else if (c == '-' && groups < 3 && group[groups - 1] > 0)
            groups++;
        else {
            s_mask_set (out, outsize, "***");
            return out;
        }
    }
    bool shape_ok;
    if (groups == 1)
        shape_ok = ndigits == 10 || ndigits == 11;
    else
        shape_ok
            = groups == 3 && group[0] == 3 && (group[1] == 3 || group[1] == 4) && group[2] == 4;
    if (!shape_ok || digits[0] != '0') {
        s_mask_set (out, outsize, "***");
        return out;
    }
    char masked[16];
    snprintf (masked, sizeof masked, "%.3s-****-%.4s", digits, digits + ndigits - 4);
    if (strlen (masked) + 1 > outsize)
        s_mask_set (out, outsize, "***");
    else
        s_mask_set (out, outsize, masked);
    return out;
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
