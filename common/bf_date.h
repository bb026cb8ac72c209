/*  bf_date — civil dates, billing periods and clock times, in integers.

    A date is a day number: days since 1970-01-01 in the proleptic Gregorian
    calendar, so intervals are plain subtraction. Billing dates are
    Asia/Seoul calendar dates; nothing here looks at a time zone. Parsers are
    strict (exact width, real calendar dates) and return -1 on anything else.  */

#ifndef BF_DATE_H_INCLUDED
#define BF_DATE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef int32_t bf_day_t;

/*  Marks an open end ("to NULL") in a half-open [from, to) range.  */
#define BF_DAY_OPEN INT32_MAX

typedef struct {
    int year;  /* 1900..9999 */
    int month; /* 1..12 */
} bf_period_t;

bf_day_t bf_day_from_ymd (int year, int month, int day);
void bf_day_to_ymd (bf_day_t day, int *year, int *month, int *mday);
bool bf_is_leap_year (int year);
int bf_days_in_month (int year, int month);

/*  "YYYY-MM-DD" with 1900 <= YYYY <= 9999. */
int bf_date_parse (const char *text, bf_day_t *day);
/*  Writes "YYYY-MM-DD" (11 bytes with NUL) and returns out.  */
char *bf_date_format (bf_day_t day, char out[11]);

/*  "YYYY-MM".  */
int bf_period_parse (const char *text, bf_period_t *period);
char *bf_period_format (bf_period_t period, char out[8]);
bf_day_t bf_period_first_day (bf_period_t period);
/*  First day of the following month: the period is [first_day, end_day).  */
bf_day_t bf_period_end_day (bf_period_t period);
int bf_period_days (bf_period_t period);
bf_period_t bf_period_next (bf_period_t period);

/*  Days of [from, to) inside [lo, hi); to may be BF_DAY_OPEN. Never negative. */
int bf_days_overlap (bf_day_t from, bf_day_t to, bf_day_t lo, bf_day_t hi);

/*  "HH:MM", 00:00..23:59, into minutes since midnight.  */
int bf_time_parse (const char *text, int *minutes);
char *bf_time_format (int minutes, char out[6]);

/*  Parses "YYYY-MM-DD" (midnight UTC) or an RFC 3339 timestamp
    ("YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM|-HH:MM)") into microseconds
    since 1970-01-01T00:00:00Z. Strict: returns -1 on anything else.  */
int bf_timestamp_parse (const char *text, int64_t *micros);
/*  Writes micros as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (28 bytes with NUL).  */
char *bf_timestamp_format (int64_t micros, char out[28]);

#endif
