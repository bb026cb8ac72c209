/*  =========================================================================
    bf_log - levelled logging as plain text or JSON lines; every message
    passes through bf_mask_text (common/bf_mask.h) before it is written.

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

#include <czmq.h>
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
        size_t cut = bf_text_utf8_prefix (msg, sizeof msg - 1, sizeof msg - sizeof S_TRUNCATED);
        memcpy (msg + cut, S_TRUNCATED, sizeof S_TRUNCATED);
        msg_len = cut + sizeof S_TRUNCATED - 1;
    }

    /*  G9's last line of defence: whatever a caller forgot to mask (a
        provider's reason echoing a number, say) is masked here.  */
    char safe[S_MSG_MAX + 64];
    size_t safe_len = bf_mask_text_n (msg, msg_len, NULL, 0, safe, sizeof safe);
    msg_len = bf_text_utf8_prefix (safe, safe_len, sizeof msg - 1);
    memcpy (msg, safe, msg_len);
    msg[msg_len] = 0;

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
        buf.size = sizeof s_line;
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

int
bf_log_limit_tick (bf_log_limit_t *limit)
{
    int64_t now = zclock_mono ();
    int64_t ends = limit->window_start + limit->window_ms;
    if (now < ends)
        return limit->suppressed ? (int)(ends - now) : -1;
    if (limit->suppressed)
        bf_warn ("%s: %llu more %s not logged (suppressed) in the last %d s", limit->prefix,
                 (unsigned long long)limit->suppressed, limit->noun,
                 (limit->window_ms + 999) / 1000);
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
        return;
    }
    limit->written++;
    va_list args;
    va_start (args, format);
    bf_logv (level, format, args);
    va_end (args);
}
