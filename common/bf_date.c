/*  bf_date — civil dates, billing periods and clock times, in integers.

    Day numbers use the usual shifted-year arithmetic: counting years from
    March puts the leap day at the end of the year, so the day of the year
    follows from the month by one linear formula, and whole 400-year cycles
    (146097 days) handle the Gregorian century rules for any year.

    Formatters never overflow their fixed-size output: a value that does
    not fit the format (a year outside 0..9999, a month outside 1..12,
    minutes outside 0..1439) is written with '?' in place of every digit.  */

#include <assert.h>
#include <stddef.h>
#include <string.h>

#include "bf_date.h"

#define S_DAYS_PER_ERA 146097 /* days in 400 Gregorian years */
#define S_EPOCH_SHIFT  719468 /* days from 0000-03-01 to 1970-01-01 */

static long long
s_floor_div (long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/*  Day number of year-month-day. month must be 1..12; day is added as is,
    so day 0 is the last day of the previous month.  */
bf_day_t
bf_day_from_ymd (int year, int month, int day)
{
    assert (month >= 1 && month <= 12);
    long long y = (long long)year - (month <= 2); /* March-based year */
    long long era = s_floor_div (y, 400);
    long long year_of_era = y - era * 400;               /* 0..399 */
    int march_month = month > 2 ? month - 3 : month + 9; /* Mar = 0 .. Feb = 11 */
    long long day_of_year = (153 * march_month + 2) / 5 + day - 1;
    long long day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return (bf_day_t)(era * S_DAYS_PER_ERA + day_of_era - S_EPOCH_SHIFT);
}

/*  Inverse of bf_day_from_ymd for any day number.  */
void
bf_day_to_ymd (bf_day_t day, int *year, int *month, int *mday)
{
    assert (year && month && mday);
    long long z = (long long)day + S_EPOCH_SHIFT;
    long long era = s_floor_div (z, S_DAYS_PER_ERA);
    long long day_of_era = z - era * S_DAYS_PER_ERA; /* 0..146096 */
    long long year_of_era
        = (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / (S_DAYS_PER_ERA - 1))
          / 365; /* 0..399 */
    long long day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    long long march_month = (5 * day_of_year + 2) / 153; /* 0..11 */
    *mday = (int)(day_of_year - (153 * march_month + 2) / 5 + 1);
    *month = (int)(march_month < 10 ? march_month + 3 : march_month - 9);
    *year = (int)(year_of_era + era * 400 + (*month <= 2));
}

bool
bf_is_leap_year (int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

/*  28..31, or 0 when month is not 1..12.  */
int
bf_days_in_month (int year, int month)
{
    static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    if (month < 1 || month > 12)
        return 0;
    if (month == 2 && bf_is_leap_year (year))
        return 29;
    return days[month - 1];
}

/*  Reads exactly width ASCII digits at text. Returns the value or -1.  */
static int
s_digits (const char *text, int width)
{
    int value = 0;
    for (int i = 0; i < width; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

/*  "YYYY-MM" prefix of text: year 1900..9999, month 1..12.  */
static int
s_parse_year_month (const char *text, int *year, int *month)
{
    int y = s_digits (text, 4);
    if (y < 1900 || text[4] != '-')
        return -1;
    int m = s_digits (text + 5, 2);
    if (m < 1 || m > 12)
        return -1;
    *year = y;
    *month = m;
    return 0;
}

/*  Returns 0 and sets *day, or -1 unless text is exactly a real date
    "YYYY-MM-DD" with 1900 <= YYYY <= 9999.  */
int
bf_date_parse (const char *text, bf_day_t *day)
{
    assert (day);
    int year, month;
    if (!text || s_parse_year_month (text, &year, &month) || text[7] != '-')
        return -1;
    int mday = s_digits (text + 8, 2);
    if (mday < 1 || mday > bf_days_in_month (year, month) || text[10] != '\0')
        return -1;
    *day = bf_day_from_ymd (year, month, mday);
    return 0;
}

/*  Writes value as width digits ('?'s when it is outside min..max).  */
static void
s_put_digits (char *out, int width, int value, int min, int max)
{
    bool fits = value >= min && value <= max;
    for (int i = width - 1; i >= 0; i--) {
        out[i] = fits ? (char)('0' + value % 10) : '?';
        value /= 10;
    }
}

char *
bf_date_format (bf_day_t day, char out[11])
{
    assert (out);
    int year, month, mday;
    bf_day_to_ymd (day, &year, &month, &mday);
    if (year < 0 || year > 9999)
        month = mday = -1;
    s_put_digits (out, 4, year, 0, 9999);
    out[4] = '-';
    s_put_digits (out + 5, 2, month, 1, 12);
    out[7] = '-';
    s_put_digits (out + 8, 2, mday, 1, 31);
    out[10] = '\0';
    return out;
}

/*  Returns 0 and sets *period, or -1 unless text is exactly "YYYY-MM"
    with 1900 <= YYYY <= 9999.  */
int
bf_period_parse (const char *text, bf_period_t *period)
{
    assert (period);
    int year, month;
    if (!text || s_parse_year_month (text, &year, &month) || text[7] != '\0')
        return -1;
    period->year = year;
    period->month = month;
    return 0;
}

/*  Writes "YYYY-MM" (8 bytes with NUL) and returns out.  */
char *
bf_period_format (bf_period_t period, char out[8])
{
    assert (out);
    bool fits = period.year >= 0 && period.year <= 9999;
    s_put_digits (out, 4, period.year, 0, 9999);
    out[4] = '-';
    s_put_digits (out + 5, 2, fits ? period.month : -1, 1, 12);
    out[7] = '\0';
    return out;
}

bf_day_t
bf_period_first_day (bf_period_t period)
{
    return bf_day_from_ymd (period.year, period.month, 1);
}

bf_day_t
bf_period_end_day (bf_period_t period)
{
    return bf_period_first_day (bf_period_next (period));
}

int
bf_period_days (bf_period_t period)
{
    return bf_days_in_month (period.year, period.month);
}

/*  The following month: December rolls over to January of the next year.  */
bf_period_t
bf_period_next (bf_period_t period)
{
    assert (period.month >= 1 && period.month <= 12);
    if (period.month == 12)
        return (bf_period_t){ period.year + 1, 1 };
    return (bf_period_t){ period.year, period.month + 1 };
}

/*  Length of [max (from, lo), min (to, hi)), 0 when empty. An open end on
    both ranges would be unbounded; the result saturates at INT32_MAX.  */
int
bf_days_overlap (bf_day_t from, bf_day_t to, bf_day_t lo, bf_day_t hi)
{
    long long start = from > lo ? from : lo;
    long long stop = to < hi ? to : hi;
    if (stop <= start)
        return 0;
    long long days = stop - start;
    return days > INT32_MAX ? INT32_MAX : (int)days;
}

/*  Returns 0 and sets *minutes (0..1439), or -1 unless text is exactly
    "HH:MM" with HH 00..23 and MM 00..59.  */
int
bf_time_parse (const char *text, int *minutes)
{
    assert (minutes);
    if (!text)
        return -1;
    int hours = s_digits (text, 2);
    if (hours < 0 || hours > 23 || text[2] != ':')
        return -1;
    int mins = s_digits (text + 3, 2);
    if (mins < 0 || mins > 59 || text[5] != '\0')
        return -1;
    *minutes = hours * 60 + mins;
    return 0;
}

/*  Writes "HH:MM" (6 bytes with NUL) and returns out.  */
char *
bf_time_format (int minutes, char out[6])
{
    assert (out);
    bool fits = minutes >= 0 && minutes < 24 * 60;
    s_put_digits (out, 2, fits ? minutes / 60 : -1, 0, 23);
    out[2] = ':';
    s_put_digits (out + 3, 2, fits ? minutes % 60 : -1, 0, 59);
    out[5] = '\0';
    return out;
}

/*  A timestamp as the queries take it (since=, until=): "YYYY-MM-DD"
    (midnight UTC), or RFC 3339 "YYYY-MM-DDTHH:MM:SS[.f{1,6}](Z|+HH:MM|-HH:MM)"
    with an upper-case T and Z. Everything else is refused, leap seconds
    included, so a filter means exactly one instant.  */
int
bf_timestamp_parse (const char *text, int64_t *micros)
{
    assert (micros);
    char date[11];
    bf_day_t day;
    if (!text || strlen (text) < 10)
        return -1;
    memcpy (date, text, 10);
    date[10] = '\0';
    if (bf_date_parse (date, &day) != 0)
        return -1;
    if (text[10] == '\0') {
        *micros = (int64_t)day * 86400 * 1000000;
        return 0;
    }
    const char *p = text + 10;
    int hours = s_digits (p + 1, 2);
    if (p[0] != 'T' || hours < 0 || hours > 23 || p[3] != ':')
        return -1;
    int mins = s_digits (p + 4, 2);
    if (mins < 0 || mins > 59 || p[6] != ':')
        return -1;
    int secs = s_digits (p + 7, 2);
    if (secs < 0 || secs > 59)
        return -1;
    p += 9;
    int64_t fraction = 0;
    if (*p == '.') {
        int n = 0;
        for (p++; *p >= '0' && *p <= '9' && n < 6; p++, n++)
            fraction = fraction * 10 + (*p - '0');
        if (n == 0 || (*p >= '0' && *p <= '9'))
            return -1;
        for (; n < 6; n++)
            fraction *= 10;
    }
    int offset = 0;
    if (*p == 'Z' && p[1] == '\0')
        offset = 0;
    else if ((*p == '+' || *p == '-') && strlen (p) == 6 && p[3] == ':') {
        int oh = s_digits (p + 1, 2), om = s_digits (p + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        offset = (*p == '+' ? 1 : -1) * (oh * 60 + om);
    } else
        return -1;
    int64_t seconds = (int64_t)day * 86400 + hours * 3600 + mins * 60 + secs - offset * 60;
    *micros = seconds * 1000000 + fraction;
    return 0;
}

/*  Writes micros as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (28 bytes with NUL).  */
char *
bf_timestamp_format (int64_t micros, char out[28])
{
    assert (out);
    int64_t seconds = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
    int64_t fraction = micros - seconds * 1000000;
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rest = seconds - days * 86400;
    bf_date_format ((bf_day_t)days, out);
    out[10] = 'T';
    s_put_digits (out + 11, 2, (int)(rest / 3600), 0, 23);
    out[13] = ':';
    s_put_digits (out + 14, 2, (int)(rest / 60 % 60), 0, 59);
    out[16] = ':';
    s_put_digits (out + 17, 2, (int)(rest % 60), 0, 59);
    out[19] = '.';
    s_put_digits (out + 20, 6, (int)fraction, 0, 999999);
    out[26] = 'Z';
    out[27] = '\0';
    return out;
}
