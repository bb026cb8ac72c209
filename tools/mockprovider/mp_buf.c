/*  mp_buf — growable byte buffers for replies, reports and session data.  */

#include "mp_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool
s_reserve (mp_buf_t *self, size_t extra)
{
    if (self->oom)
        return false;
    if (self->len + extra + 1 <= self->cap)
        return true;
    size_t cap = self->cap ? self->cap : 256;
    while (cap < self->len + extra + 1)
        cap *= 2;
    char *data = realloc (self->data, cap);
    if (!data) {
        self->oom = true;
        return false;
    }
    self->data = data;
    self->cap = cap;
    return true;
}

void
mp_buf_add (mp_buf_t *self, const char *text, size_t len)
{
    if (!s_reserve (self, len))
        return;
    memcpy (self->data + self->len, text, len);
    self->len += len;
    self->data[self->len] = '\0';
}

void
mp_buf_str (mp_buf_t *self, const char *text)
{
    mp_buf_add (self, text, strlen (text));
}

void
mp_buf_printf (mp_buf_t *self, const char *format, ...)
{
    char line[512];
    va_list args;
    va_start (args, format);
    int n = vsnprintf (line, sizeof line, format, args);
    va_end (args);
    if (n > 0)
        mp_buf_add (self, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void
mp_buf_json (mp_buf_t *self, const char *text, size_t len)
{
    mp_buf_add (self, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char)c };
            mp_buf_add (self, esc, 2);
        } else if (c < 0x20)
            mp_buf_printf (self, "\\u%04x", c);
        else
            mp_buf_add (self, (const char *)&text[i], 1);
    }
    mp_buf_add (self, "\"", 1);
}

int
mp_buf_bytes_add (char **data, size_t *len, size_t *cap, const char *bytes, size_t n, size_t limit)
{
    if (*len + n > limit)
        return -1;
    if (*len + n > *cap) {
        size_t size = *cap ? *cap : 512;
        while (size < *len + n)
            size *= 2;
        char *grown = realloc (*data, size);
        if (!grown)
            return -1;
        *data = grown;
        *cap = size;
    }
    memcpy (*data + *len, bytes, n);
    *len += n;
    return 0;
}
