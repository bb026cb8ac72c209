/*  fuzz_provider_reply — fuzz target for the provider-reply reader that
    bf_sender applies to every HTTP provider reply (bf_reply_parse,
    services/notify/bf_reply.c). Input: the reply body as it is.

    Contract, with jansson run separately as the reference: a body of at
    most BF_REPLY_BODY_MAX bytes without NUL bytes (jansson takes one as
    the end) that jansson accepts as one object without duplicate keys,
    nested at most BF_REPLY_DEPTH_MAX deep, is accepted, with the same
    top-level "message_id" (when it is a string without NUL that fits)
    and the same reason (the first top-level string member among
    "reason", "error", "message", "detail"). Every body accepted is one
    jansson accepts as such an object (integers beyond 64 bits read as
    reals). The outputs are always NUL-terminated valid UTF-8 within
    their buffers; a rejected body leaves both empty.  */

#include <jansson.h>
#include <stdint.h>
#include <string.h>

#include "bf_reply.h"
#include "bf_text.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static size_t
s_depth (json_t *value)
{
    size_t deepest = 0;
    if (json_is_object (value)) {
        const char *key;
        json_t *member;
        json_object_foreach (value, key, member) {
            size_t d = s_depth (member);
            if (d > deepest)
                deepest = d;
        }
        return deepest + 1;
    }
    if (json_is_array (value)) {
        size_t index;
        json_t *member;
        json_array_foreach (value, index, member) {
            size_t d = s_depth (member);
            if (d > deepest)
                deepest = d;
        }
        return deepest + 1;
    }
    return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    //  An exactly-sized copy, so reading one byte past len is caught.
    char *body = malloc (size ? size : 1);
    bf_fuzz_require (body != NULL);
    if (size)
        memcpy (body, data, size);

    char message_id[128], reason[401];
    memset (message_id, 'x', sizeof message_id);
    memset (reason, 'x', sizeof reason);
    int rc = bf_reply_parse (body, size, message_id, sizeof message_id, reason, sizeof reason);
    bf_fuzz_require (rc == 0 || rc == -1);
    bf_fuzz_require (memchr (message_id, 0, sizeof message_id) != NULL);
    bf_fuzz_require (memchr (reason, 0, sizeof reason) != NULL);
    bf_fuzz_require (bf_text_utf8_valid (message_id, strlen (message_id))
                     && bf_text_utf8_valid (reason, strlen (reason)));
    if (rc != 0)
        bf_fuzz_require (message_id[0] == '\0' && reason[0] == '\0');

    //  jansson stops at a NUL byte outside a string (and may then accept
    //  what came before): no reference for such bodies; ours refuses them.
    json_error_t error;
    bool comparable = size <= BF_REPLY_BODY_MAX && !memchr (body, 0, size);
    json_t *reference = comparable ? json_loadb (body, size, JSON_REJECT_DUPLICATES, &error) : NULL;
    if (reference && json_is_object (reference) && s_depth (reference) <= BF_REPLY_DEPTH_MAX) {
        bf_fuzz_require (rc == 0);
        json_t *id = json_object_get (reference, "message_id");
        if (json_is_string (id) && json_string_length (id) < sizeof message_id
            && strlen (json_string_value (id)) == json_string_length (id))
            bf_fuzz_require (strcmp (message_id, json_string_value (id)) == 0);
        const char *key;
        json_t *member;
        json_object_foreach (reference, key, member) {
            if (!json_is_string (member)
                || (strcmp (key, "reason") && strcmp (key, "error") && strcmp (key, "message")
                    && strcmp (key, "detail")))
                continue;
            if (json_string_length (member) < sizeof reason)
                bf_fuzz_require (strcmp (reason, json_string_value (member)) == 0);
            break;
        }
    }
    if (rc == 0) {
        json_t *again
            = json_loadb (body, size, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &error);
        bf_fuzz_require (comparable && json_is_object (again)
                         && s_depth (again) <= BF_REPLY_DEPTH_MAX);
        json_decref (again);
    }
    json_decref (reference);
    free (body);
    return 0;
}
