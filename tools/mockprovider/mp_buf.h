/*  mp_buf — growable byte buffers for replies, reports and session data.

    mp_buf_t builds text (the report, the CSV, JSON error replies): on allocation failure it
    stops growing and remembers it in oom, so a builder checks once at the end.
    mp_buf_bytes_add grows a bare (data, len, cap) triple with a size limit, for request bodies
    and SMTP session buffers. Not thread-safe: one owner per buffer.  */

#ifndef MP_BUF_H_INCLUDED
#define MP_BUF_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated once anything was added; the owner frees it */
    size_t len;
    size_t cap;
    bool oom; /* an allocation failed: what follows was dropped */
} mp_buf_t;

/*  Appends len bytes of text.  */
void mp_buf_add (mp_buf_t *self, const char *text, size_t len);

/*  Appends a C string.  */
void mp_buf_str (mp_buf_t *self, const char *text);

/*  Appends format's expansion, cut at 511 bytes.  */
void mp_buf_printf (mp_buf_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

/*  Appends text as a JSON string literal, quotes included: '"' and '\' escaped, control
    characters as \u00XX, everything else (UTF-8 included) as it is.  */
void mp_buf_json (mp_buf_t *self, const char *text, size_t len);

/*  Appends n bytes to the raw growable array *data. Returns 0, or -1 when memory ran out or
    the array would exceed limit (then it is unchanged).  */
int mp_buf_bytes_add (char **data, size_t *len, size_t *cap, const char *bytes, size_t n,
                      size_t limit);

#endif
