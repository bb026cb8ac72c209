/*  bf_won — amounts of won as people read them: thousands separated by
    commas, no currency sign (notices add "원", tables show the number).
    Pure functions, thread-safe.  */

#ifndef BF_WON_H_INCLUDED
#define BF_WON_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

/*  Won with thousands separators: 111200 -> "111,200", -13459 -> "-13,459",
    INT64_MIN included. Returns the length, or -1 when out is too small
    (out "" then, when outsize > 0); 27 bytes always do.  */
#define BF_WON_MAX 27
int bf_won_format (int64_t amount, char *out, size_t outsize);

#endif
