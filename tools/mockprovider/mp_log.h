/*  mp_log — the mock's lines on stderr.

    stdout carries only the ports, "ready" and the final report; everything else (progress,
    errors, --verbose lines) goes here, one line per call. Thread-safe.  */

#ifndef MP_LOG_H_INCLUDED
#define MP_LOG_H_INCLUDED

#include <stddef.h>

/*  Writes "mockprovider: " and format's expansion (cut at 1 KiB) as one line on stderr.  */
void mp_log (const char *format, ...) __attribute__ ((format (printf, 1, 2)));

/*  Writes a masked copy of a recipient (first three and last two characters kept) into out,
    for logs: recipients are personal data (G9) even in a mock. Returns out, or "" when size
    is under 16.  */
const char *mp_log_mask (const char *text, size_t len, char *out, size_t size);

#endif
