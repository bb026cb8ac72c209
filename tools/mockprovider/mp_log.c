/*  mp_log — the mock's lines on stderr.  */

#include "mp_log.h"

#include <stdarg.h>
#include <stdio.h>

void
mp_log (const char *format, ...)
{
    char line[1024];
    va_list args;
    va_start (args, format);
    vsnprintf (line, sizeof line, format, args);
    va_end (args);
    fprintf (stderr, "mockprovider: %s\n", line);
}

const char *
mp_log_mask (const char *text, size_t len, char *out, size_t size)
{
    if (size < 16)
        return "";
    if (len <= 6) {
        snprintf (out, size, "***");
        return out;
    }
    snprintf (out, size, "%.3s***%.2s", text, text + len - 2);
    return out;
}
