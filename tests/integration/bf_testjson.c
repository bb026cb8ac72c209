/*  bf_testjson — dotted-path access to JSON documents for tests.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bf_testjson.h"

json_t *
bf_json_at (json_t *doc, const char *path)
{
    char buf[256];
    snprintf (buf, sizeof buf, "%s", path);
    json_t *node = doc;
    for (char *save = NULL, *part = strtok_r (buf, ".", &save); part && node;
         part = strtok_r (NULL, ".", &save))
        node = json_is_array (node) ? json_array_get (node, strtoul (part, NULL, 10))
                                    : json_object_get (node, part);
    return node;
}

int64_t
bf_json_int (json_t *doc, const char *path)
{
    json_t *node = bf_json_at (doc, path);
    if (!json_is_integer (node))
        fail_msg ("%s is not an integer", path);
    return json_integer_value (node);
}

const char *
bf_json_str (json_t *doc, const char *path)
{
    json_t *node = bf_json_at (doc, path);
    if (!json_is_string (node))
        fail_msg ("%s is not a string", path);
    return json_string_value (node);
}

bool
bf_json_bool (json_t *doc, const char *path)
{
    json_t *node = bf_json_at (doc, path);
    if (!json_is_boolean (node))
        fail_msg ("%s is not a boolean", path);
    return json_is_true (node);
}
