/*  bf_testjson — reading JSON documents in tests by dotted path
    ("notices.by_state.HELD", "runs.0"; keys may hold spaces). The typed
    getters fail the running cmocka test when the member is missing or of
    another type.  */

#ifndef BF_TESTJSON_H_INCLUDED
#define BF_TESTJSON_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

json_t *bf_json_at (json_t *doc, const char *path);
int64_t bf_json_int (json_t *doc, const char *path);
const char *bf_json_str (json_t *doc, const char *path);
bool bf_json_bool (json_t *doc, const char *path);

#endif
