/*  mp_record — --record FILE: every accepted message, exactly as a subscriber gets it.

    One JSON object a line, appended and flushed at once, in the order of acceptance (format in
    README.md). Strings are JSON-escaped; bytes of 0x80 and above are written as they are. The
    file holds contacts in clear: it is for tests only. Thread-safe (one lock around each
    line).  */

#ifndef MP_RECORD_H_INCLUDED
#define MP_RECORD_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mp_json.h"

/*  Opens path for appending. Returns 0, or -1 (logged). Call before any thread records.  */
int mp_record_open (const char *path);

/*  True when a record file is open.  */
bool mp_record_on (void);

/*  One accepted HTTP message: {"channel", "id", "key", "to", "title", "body"}. Does nothing
    without a record file.  */
void mp_record_http (int channel, uint64_t id, const char *key, const mp_json_fields_t *f);

/*  One accepted email: {"channel": "email", "id", "message_id", "rcpt": [...], "data"}, rcpt
    being rcpt_len bytes of NUL-terminated addresses and data the whole message after
    dot-unstuffing (NULL reads as empty). Does nothing without a record file.  */
void mp_record_email (uint64_t id, const char *mid, const char *rcpt, size_t rcpt_len,
                      const char *data, size_t len);

#endif
