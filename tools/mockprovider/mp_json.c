/*  mp_json — a strict parser for the flat message object of POST /v1/messages.  */

#include "mp_json.h"

#include <stdint.h>
#include <string.h>

#include "mp_utf8.h"

typedef struct {
    const char *start;
    const char *p;
    const char *end;
    char *out; /* decoded strings are appended here */
    const char *error;
    size_t error_at;
} s_json_t;

static int
s_json_fail (s_json_t *self, const char *why)
{
    if (!self->error) {
        self->error = why;
        self->error_at = (size_t)(self->p - self->start);
    }
    return -1;
}

static void
s_json_ws (s_json_t *self)
{
    while (self->p < self->end
           && (*self->p == ' ' || *self->p == '\t' || *self->p == '\n' || *self->p == '\r'))
        self->p++;
}

/*  Reads the four hex digits after "\u". Returns 0, or -1.  */
static int
s_json_hex4 (s_json_t *self, uint32_t *out)
{
    if (self->end - self->p < 4)
        return s_json_fail (self, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = self->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return s_json_fail (self, "bad hex digit in \\u escape");
    }
    self->p += 4;
    *out = v;
    return 0;
}

/*  Decodes the \uXXXX escape after its "\u" (a surrogate pair takes both halves) into *o.
    Returns 0, or -1.  */
static int
s_json_unicode (s_json_t *self, char **o)
{
    uint32_t cp;
    if (s_json_hex4 (self, &cp) != 0)
        return -1;
    if (cp >= 0xdc00 && cp <= 0xdfff)
        return s_json_fail (self, "lone low surrogate in \\u escape");
    if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t low;
        if (self->end - self->p < 2 || self->p[0] != '\\' || self->p[1] != 'u')
            return s_json_fail (self, "high surrogate without its low half");
        self->p += 2;
        if (s_json_hex4 (self, &low) != 0)
            return -1;
        if (low < 0xdc00 || low > 0xdfff)
            return s_json_fail (self, "high surrogate without its low half");
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    if (cp == 0)
        return s_json_fail (self, "\\u0000 is not allowed");
    *o += mp_utf8_put (*o, cp);
    return 0;
}

/*  Decodes the escape after a backslash (self->p is past it) into *o. Returns 0, or -1.  */
static int
s_json_escape (s_json_t *self, char **o)
{
    if (self->p >= self->end)
        return s_json_fail (self, "unterminated string");
    char esc = *self->p++;
    switch (esc) {
        case '"':
        case '\\':
        case '/':
            *(*o)++ = esc;
            return 0;
        case 'b':
            *(*o)++ = '\b';
            return 0;
        case 'f':
            *(*o)++ = '\f';
            return 0;
        case 'n':
            *(*o)++ = '\n';
            return 0;
        case 'r':
            *(*o)++ = '\r';
            return 0;
        case 't':
            *(*o)++ = '\t';
            return 0;
        case 'u':
            return s_json_unicode (self, o);
        default:
            self->p--;
            return s_json_fail (self, "unknown escape");
    }
}

/*  Parses the string literal at self->p into self->out (decoded, NUL-terminated).
    Returns 0 with *str and *len set, or -1. The output never outgrows the input: every escape
    is longer than what it decodes to, and the two quotes pay for the NUL.  */
static int
s_json_string (s_json_t *self, const char **str, size_t *len)
{
    if (self->p >= self->end || *self->p != '"')
        return s_json_fail (self, "expected a string");
    self->p++;
    char *begin = self->out;
    char *o = self->out;
    for (;;) {
        if (self->p >= self->end)
            return s_json_fail (self, "unterminated string");
        unsigned char c = (unsigned char)*self->p;
        if (c == '"') {
            self->p++;
            break;
        }
        if (c < 0x20)
            return s_json_fail (self, "control character in string");
        if (c == '\\') {
            self->p++;
            if (s_json_escape (self, &o) != 0)
                return -1;
            continue;
        }
        if (c < 0x80) {
            *o++ = (char)c;
            self->p++;
            continue;
        }
        size_t n = mp_utf8_len ((const unsigned char *)self->p, (size_t)(self->end - self->p));
        if (n == 0)
            return s_json_fail (self, "invalid UTF-8 in string");
        memcpy (o, self->p, n);
        o += n;
        self->p += n;
    }
    *o++ = '\0';
    *str = begin;
    *len = (size_t)(o - begin) - 1;
    self->out = o;
    return 0;
}

/*  The field a key names, NULL for a key the provider API does not know.  */
static mp_json_field_t *
s_json_field (mp_json_fields_t *fields, const char *key, size_t key_len)
{
    if (key_len == 7 && memcmp (key, "channel", 7) == 0)
        return &fields->channel;
    if (key_len == 2 && memcmp (key, "to", 2) == 0)
        return &fields->to;
    if (key_len == 5 && memcmp (key, "title", 5) == 0)
        return &fields->title;
    if (key_len == 4 && memcmp (key, "body", 4) == 0)
        return &fields->body;
    return NULL;
}

/*  Parses one "key": value member into fields. Returns 0, or -1.  */
static int
s_json_member (s_json_t *self, mp_json_fields_t *fields)
{
    const char *key;
    size_t key_len;
    if (s_json_string (self, &key, &key_len) != 0)
        return -1;
    s_json_ws (self);
    if (self->p >= self->end || *self->p != ':')
        return s_json_fail (self, "expected ':'");
    self->p++;
    s_json_ws (self);
    mp_json_field_t *field = s_json_field (fields, key, key_len);
    if (field && field->present)
        return s_json_fail (self, "duplicate key");
    mp_json_field_t value = { .present = true };
    if (self->p < self->end && *self->p == '"') {
        if (s_json_string (self, &value.str, &value.len) != 0)
            return -1;
    } else if (self->end - self->p >= 4 && memcmp (self->p, "null", 4) == 0) {
        self->p += 4;
        value.is_null = true;
    } else
        return s_json_fail (self, "values must be strings or null");
    if (field)
        *field = value;
    return 0;
}

/*  Parses the object at self->p into fields. Returns 0, or -1.  */
static int
s_json_object (s_json_t *self, mp_json_fields_t *fields)
{
    s_json_ws (self);
    if (self->p >= self->end || *self->p != '{')
        return s_json_fail (self, "expected an object");
    self->p++;
    s_json_ws (self);
    if (self->p < self->end && *self->p == '}') {
        self->p++;
        return 0;
    }
    for (;;) {
        if (s_json_member (self, fields) != 0)
            return -1;
        s_json_ws (self);
        if (self->p < self->end && *self->p == ',') {
            self->p++;
            s_json_ws (self);
            continue;
        }
        if (self->p < self->end && *self->p == '}') {
            self->p++;
            return 0;
        }
        return s_json_fail (self, "expected ',' or '}'");
    }
}

int
mp_json_parse (const char *body, size_t len, char *scratch, mp_json_fields_t *fields,
               mp_json_error_t *error)
{
    memset (fields, 0, sizeof *fields);
    s_json_t self = { .start = body, .p = body, .end = body + len, .out = scratch };
    int rc = s_json_object (&self, fields);
    if (rc == 0) {
        s_json_ws (&self);
        if (self.p != self.end)
            rc = s_json_fail (&self, "data after the object");
    }
    *error = (mp_json_error_t){ .why = self.error, .at = self.error_at };
    return rc;
}
