/*  bf_reply — the provider-reply reader (see bf_reply.h).

    jansson does the parsing (JSON_REJECT_DUPLICATES; without
    JSON_ALLOW_NUL it refuses \u0000; it validates UTF-8 and refuses lone
    surrogates and trailing bytes). What it does not check is done here:
    the size limit, a raw NUL byte (jansson's reader would stop there and
    may accept what came before), and the depth limit (jansson's own is
    2048). JSON_DECODE_INT_AS_REAL keeps integers beyond 64 bits from
    being an error: a provider's big numeric field is no reason to
    discard its reply.  */

#include "bf_reply.h"

#include <jansson.h>
#include <string.h>

#include "bf_mask.h"
#include "bf_text.h"

//  How much of an unparsable body stands for the reason.
#define S_GARBAGE_REASON_BYTES 400

static const char *s_reason_keys[] = { "reason", "error", "message", "detail" };

//  True when no container in value is nested deeper than BF_REPLY_DEPTH_MAX
//  (value itself at depth).
static bool
s_depth_ok (json_t *value, int depth)
{
    if (!json_is_object (value) && !json_is_array (value))
        return true;
    if (depth > BF_REPLY_DEPTH_MAX)
        return false;
    if (json_is_object (value)) {
        const char *key;
        json_t *member;
        json_object_foreach (value, key, member)
        {
            if (!s_depth_ok (member, depth + 1))
                return false;
        }
        return true;
    }
    size_t index;
    json_t *member;
    json_array_foreach (value, index, member)
    {
        if (!s_depth_ok (member, depth + 1))
            return false;
    }
    return true;
}

//  Copies len bytes of UTF-8 into out (outsize > 0), cut at a character
//  boundary to fit.
static void
s_copy_cut (char *out, size_t outsize, const char *text, size_t len)
{
    size_t used = bf_text_utf8_prefix (text, len, outsize - 1);
    memcpy (out, text, used);
    out[used] = '\0';
}

static bool
s_is_reason_key (const char *key)
{
    for (size_t i = 0; i < sizeof s_reason_keys / sizeof s_reason_keys[0]; i++)
        if (strcmp (key, s_reason_keys[i]) == 0)
            return true;
    return false;
}

//  The body as one object within the limits, or NULL.
static json_t *
s_load (const char *body, size_t len)
{
    if (!body || len == 0 || len > BF_REPLY_BODY_MAX || memchr (body, '\0', len))
        return NULL;
    json_error_t error;
    json_t *root = json_loadb (body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &error);
    if (!json_is_object (root) || !s_depth_ok (root, 1)) {
        json_decref (root);
        return NULL;
    }
    return root;
}

//  Finds the message id and the reason (pointers into root, with their
//  lengths; NULL when absent) of a loaded body.
static void
s_find (json_t *root, const char **id, size_t *id_len, const char **reason, size_t *reason_len)
{
    *id = *reason = NULL;
    *id_len = *reason_len = 0;
    const char *key;
    json_t *value;
    json_object_foreach (root, key, value)
    {
        if (!json_is_string (value))
            continue;
        if (strcmp (key, "message_id") == 0) {
            *id = json_string_value (value);
            *id_len = json_string_length (value);
        } else if (!*reason && s_is_reason_key (key)) {
            *reason = json_string_value (value);
            *reason_len = json_string_length (value);
        }
    }
}

int
bf_reply_parse (const char *body, size_t len, char *message_id, size_t idsize, char *reason,
                size_t reasonsize)
{
    if (message_id && idsize)
        message_id[0] = '\0';
    if (reason && reasonsize)
        reason[0] = '\0';
    json_t *root = s_load (body, len);
    if (!root)
        return -1;
    const char *id_text, *reason_text;
    size_t id_len, reason_len;
    s_find (root, &id_text, &id_len, &reason_text, &reason_len);
    if (id_text && message_id && idsize)
        s_copy_cut (message_id, idsize, id_text, id_len);
    if (reason_text && reason && reasonsize)
        s_copy_cut (reason, reasonsize, reason_text, reason_len);
    json_decref (root);
    return 0;
}

void
bf_reply_read (bf_reply_t *self, const char *body, size_t len, bool truncated, const char *contact)
{
    memset (self, 0, sizeof *self);
    const unsigned flags = BF_MASK_ONE_LINE | BF_MASK_TOKENS;
    json_t *root = truncated ? NULL : s_load (body, len);
    self->parsed = root != NULL;
    if (root) {
        const char *id_text, *reason_text;
        size_t id_len, reason_len;
        s_find (root, &id_text, &id_len, &reason_text, &reason_len);
        //  The whole reason is masked, then cut: a contact is never cut
        //  first and so shown in part.
        if (reason_text)
            bf_mask_text (reason_text, reason_len, contact, flags, self->reason,
                          sizeof self->reason);
        if (id_text)
            s_copy_cut (self->message_id, sizeof self->message_id, id_text, id_len);
        for (char *p = self->message_id; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7F)
                *p = '?';
        json_decref (root);
    } else if (len > 0)
        bf_mask_text_within (body, len, S_GARBAGE_REASON_BYTES, contact, flags, self->reason,
                             sizeof self->reason);
}
