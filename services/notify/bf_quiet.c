/*  bf_quiet — quiet-hour arithmetic (see bf_quiet.h).  */

#include <stddef.h>

#include "bf_date.h"
#include "bf_quiet.h"

#define S_DAY_MS    (24LL * 60 * 60 * 1000)
#define S_MINUTE_MS (60LL * 1000)

bool
bf_quiet_inside (bf_quiet_window_t w, int minute)
{
    if (w.start == w.end)
        return false;
    if (w.start < w.end)
        return minute >= w.start && minute < w.end;
    return minute >= w.start || minute < w.end; /* crosses midnight */
}

/*  Local minute of the day of epoch ms t.  */
static int
s_minute (int64_t t, int utc_offset_min)
{
    int64_t local = t + (int64_t)utc_offset_min * S_MINUTE_MS;
    int64_t in_day = ((local % S_DAY_MS) + S_DAY_MS) % S_DAY_MS;
    return (int)(in_day / S_MINUTE_MS);
}

int64_t
bf_quiet_release_ms (int64_t now_ms, int utc_offset_min, const bf_quiet_window_t *windows,
                     int nwindows)
{
    int64_t t = now_ms;
    bool held = false;
    /*  Walk forward to each covering window's end; windows may chain (the
        system's ends where the subscriber's begins). Two days of minutes
        bound the walk even for windows that together cover the whole day.  */
    for (int steps = 0; steps < 2 * 1440; steps++) {
        int minute = s_minute (t, utc_offset_min);
        int64_t next = 0;
        for (int i = 0; i < nwindows; i++) {
            if (!bf_quiet_inside (windows[i], minute))
                continue;
            int until = windows[i].end - minute;
            if (until <= 0)
                until += 1440;
            /*  Start of the minute, plus the minutes left in the window.  */
            int64_t minute_start
                = t
                  - ((t + (int64_t)utc_offset_min * S_MINUTE_MS) % S_MINUTE_MS + S_MINUTE_MS)
                        % S_MINUTE_MS;
            int64_t end = minute_start + until * S_MINUTE_MS;
            if (end > next)
                next = end;
        }
        if (!next)
            return held ? t : 0;
        held = true;
        t = next;
    }
    return t; /* covered around the clock: the caller sees a far release */
}

int
bf_quiet_parse (const char *start, const char *end, bf_quiet_window_t *window)
{
    bool has_start = start && *start, has_end = end && *end;
    window->start = window->end = 0;
    if (!has_start && !has_end)
        return 0;
    if (!has_start || !has_end)
        return -1;
    if (bf_time_parse (start, &window->start) != 0 || bf_time_parse (end, &window->end) != 0)
        return -1;
    return 0;
}
