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
    ts, level, service, pid, msg, then the context fields below). Safe to
    call again to change settings.  */
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

/*  Context fields (docs/observability.md, "Logs"): key/value pairs that
    every line of the calling thread carries until cleared, for the work
    the thread is doing (each actor is one thread): run_id, chunk,
    command_id, delivery_id, ... In JSON each is a key of the line's object
    (after msg); in plain format they follow the message as
    "  [key=value key=value]", a value quoted ("...") when it is empty or
    holds a space, '"', '=' or ']'.

    Keys are programmer-chosen constants: 1..23 characters of [a-z0-9_]
    starting with a letter, and none of ts, level, service, pid, msg
    (asserted). A thread holds at most BF_LOG_FIELDS_MAX context fields
    (asserted). Setting a key again replaces its value in place.
    A value is formatted, masked like the message (bf_mask_text: contacts
    never reach a log) and cut on a UTF-8 character boundary to at most
    BF_LOG_VALUE_MAX - 1 bytes, a cut value ending in "…". Control
    characters and malformed UTF-8 in it are escaped when a line is
    written, as in the message. Per thread: no locking, and a thread
    never sees another's fields.  */
#define BF_LOG_FIELDS_MAX 12
#define BF_LOG_VALUE_MAX  256

typedef enum {
    BF_LOG_CONTEXT = 0,   /* the thread's context, until unset or cleared */
    BF_LOG_NEXT_LINE = 1, /* the next line the thread logs only */
} bf_log_scope_t;

/*  Sets field key of scope to the formatted text (a JSON string), or to
    an integer (a JSON number). Fields of the next line are written after
    the context and win over a context field of the same key; they go with
    that line whether or not its level is enabled or a limiter drops it.  */
void bf_log_set (bf_log_scope_t scope, const char *key, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
void bf_log_set_int (bf_log_scope_t scope, const char *key, int64_t value);

#define bf_log_ctx_set(...)          bf_log_set (BF_LOG_CONTEXT, __VA_ARGS__)
#define bf_log_ctx_int(key, value)   bf_log_set_int (BF_LOG_CONTEXT, (key), (value))
#define bf_log_field(...)            bf_log_set (BF_LOG_NEXT_LINE, __VA_ARGS__)
#define bf_log_field_int(key, value) bf_log_set_int (BF_LOG_NEXT_LINE, (key), (value))

/*  Removes context field key, when set.  */
void bf_log_ctx_unset (const char *key);

/*  Removes every context field of the calling thread.  */
void bf_log_ctx_clear (void);

/*  Copies text (NULL reads as "") into out (outsize > 0, always
    NUL-terminated) as one readable line: each line break, with the blank
    space around it, becomes " | "; blank space at either end goes. For
    libpq's multi-line messages ("ERROR:  ...\nDETAIL:  ...", "...
    failed: ...\n\tIs the server running ...?\n"), which a plain log
    line would otherwise show with escaped \n and \t. A copy that does
    not fit is cut on a UTF-8 character boundary. Returns out.  */
char *bf_log_oneline (char *out, size_t outsize, const char *text);

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
