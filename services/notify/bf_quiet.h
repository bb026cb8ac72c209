/*  bf_quiet — quiet hours: when may a notice go out?

    A window is [start, end) in local minutes of the day (0..1439); when end
    <= start it crosses midnight (21:00-08:00). A notice is held while the
    local time is inside any of the windows that apply to it (the system's
    and the subscriber's own); it may go at the first moment outside all of
    them. Times are Unix epoch milliseconds; local time is UTC plus a fixed
    offset (Asia/Seoul has no daylight saving). Pure functions.  */

#ifndef BF_QUIET_H_INCLUDED
#define BF_QUIET_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    int start, end; /* minutes of the local day; start == end: no window */
} bf_quiet_window_t;

/*  True when minute (0..1439) is inside window.  */
bool bf_quiet_inside (bf_quiet_window_t window, int minute);

/*  0 when now_ms is outside every window; otherwise the first epoch ms
    (a whole local minute) at which it is outside all of them.  */
int64_t bf_quiet_release_ms (int64_t now_ms, int utc_offset_min, const bf_quiet_window_t *windows,
                             int nwindows);

/*  "HH:MM" pair into a window; both NULL/empty: no window (start = end = 0).
    Returns 0, or -1 when only one is given or either is malformed.  */
int bf_quiet_parse (const char *start, const char *end, bf_quiet_window_t *window);

#endif
