/*  bf_log — levelled logging to stderr as plain text or JSON lines. It
    includes bf_mask.h, the one home of the masking every place a contact
    could reach a log must use (bf_log has no masker of its own).

    Thread-safe after bf_log_init: each line is written with one write(2).
    Personal data never goes to a log unmasked: pass contacts through
    bf_mask_email / bf_mask_phone first. */

#ifndef BF_LOG_H_INCLUDED
#define BF_LOG_H_INCLUDED

#include <stdarg.h>
#include <stdint.h>
#include <stdbool.h>
#include <stddef.h>

#include "bf_mask.h" /* bf_mask_email, bf_mask_phone, bf_mask_text */

typedef enum {
    BF_LOG_DEBUG = 0,
    BF_LOG_INFO = 1,
    BF_LOG_WARN = 2,
    BF_LOG_ERROR = 3,
} bf_log_level_t;

/*  Sets the component name shown on each line ("settle", "billdata"), the
    minimum level, and the format (json = one JSON object per line with
    ts, level, service, pid, msg). Safe to call again to change settings.  */
void bf_log_init (const char *service, bf_log_level_t level, bool json);

/*  Parses "debug", "info", "warn" or "error" (case-insensitive).
    Returns 0 and sets *level, or -1 when the text is none of those.  */
int bf_log_level_parse (const char *text, bf_log_level_t *level);

/*  Redirects output to fd (default 2). For tests that read what was logged. */
void bf_log_set_fd (int fd);

/*  True when a line at level would be written: lets callers skip costly
    formatting.  */
bool bf_log_enabled (bf_log_level_t level);

/*  Writes one line when level is enabled. Control characters in the message
    are escaped (so one call is one line), a message over 8 KiB is cut with
    " [truncated]", and errno is preserved.  */
void bf_log (bf_log_level_t level, const char *format, ...) __attribute__ ((format (printf, 2, 3)));
void bf_logv (bf_log_level_t level, const char *format, va_list args);

#define bf_debug(...) bf_log (BF_LOG_DEBUG, __VA_ARGS__)
#define bf_info(...)  bf_log (BF_LOG_INFO, __VA_ARGS__)
#define bf_warn(...)  bf_log (BF_LOG_WARN, __VA_ARGS__)
#define bf_error(...) bf_log (BF_LOG_ERROR, __VA_ARGS__)

/*  A limit on one kind of warning that outside input can cause (rejected
    frames, rejected requests): at most burst lines per window_ms are
    written; the rest are counted, and when the window that held them ends
    one line says how many: "PREFIX: N more NOUN not logged (suppressed) in
    the last S s". One per actor (not thread-safe); zero-initialise with
    BF_LOG_LIMIT_INIT.  */
typedef struct {
    const char *prefix; /* "replay" */
    const char *noun;   /* "rejected requests" */
    int burst;
    int window_ms;
    int64_t window_start; /* monotonic ms */
    int written;
    uint64_t suppressed;
} bf_log_limit_t;

#define BF_LOG_LIMIT_INIT(prefix, noun, burst, window_ms)                                          \
    ((bf_log_limit_t){ (prefix), (noun), (burst), (window_ms), 0, 0, 0 })

/*  Writes one line at level, unless the limit's burst was reached in this
    window: then it only counts it.  */
void bf_log_limited (bf_log_limit_t *limit, bf_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  Ends the window when it has passed, writing the summary line of what it
    suppressed. Returns the milliseconds until the current window ends when
    it holds suppressed lines (call again then, so the summary is not
    late), or -1 when nothing waits.  */
int bf_log_limit_tick (bf_log_limit_t *limit);

/*  Formats a reason into err (when err is non-NULL and errsize > 0) and
    returns -1, so `return bf_err_set (err, errsize, "...", ...)` reports a
    failure in one line.  */
int bf_err_set (char *err, size_t errsize, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

/*  For command-line programs: prints "PROGRAM: message", a blank line and
    usage to stderr, and returns 2 (the exit code of a usage error).  */
int bf_usage_error (const char *program, const char *usage, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

#endif
