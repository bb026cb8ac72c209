/*  mp_json — a strict parser for the flat message object of POST /v1/messages.

    The mock's own reading of the provider API's JSON (it shares no code with billflow): one
    object whose values are strings or null; escapes decoded, \uXXXX and surrogate pairs
    included; lone surrogates, \u0000, invalid UTF-8, duplicate keys and anything after the
    object refused. Unknown keys are ignored. Pure; thread-safe.  */

#ifndef MP_JSON_H_INCLUDED
#define MP_JSON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    bool present;
    bool is_null;
    const char *str; /* decoded UTF-8, NUL-terminated; NULL when absent or null */
    size_t len;
} mp_json_field_t;

/*  The four fields the provider API knows.  */
typedef struct {
    mp_json_field_t channel;
    mp_json_field_t to;
    mp_json_field_t title;
    mp_json_field_t body;
} mp_json_fields_t;

/*  Why and where (byte offset) a body was refused.  */
typedef struct {
    const char *why; /* a static string */
    size_t at;
} mp_json_error_t;

/*  Parses body (len bytes) into fields. scratch must hold len + 1 bytes; the decoded strings
    point into it. Returns 0, or -1 with error set (fields then hold what was parsed before the
    error).  */
int mp_json_parse (const char *body, size_t len, char *scratch, mp_json_fields_t *fields,
                   mp_json_error_t *error);

#endif
