/*  mp_report — the store's counts as the report JSON and the recipients CSV.

    The JSON is what GET /v1/report returns and what goes to stdout at exit; the CSV is GET
    /v1/report/recipients. Both formats are in README.md. Thread-safe (the store is).  */

#ifndef MP_REPORT_H_INCLUDED
#define MP_REPORT_H_INCLUDED

#include "mp_buf.h"

/*  Appends the report JSON to buf: one channel a line, then invalid_requests and key_reused,
    and a newline.  */
void mp_report_json (mp_buf_t *buf);

/*  Appends the CSV of every accepted recipient (channel,recipient,accepted) to buf.  */
void mp_report_csv (mp_buf_t *buf);

#endif
