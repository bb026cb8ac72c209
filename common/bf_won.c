/*  bf_won — amounts of won as people read them (see bf_won.h).  */

#include <stdint.h>

#include "bf_won.h"

int
bf_won_format (int64_t amount, char *out, size_t outsize)
{
    //  Digits are produced backwards; the magnitude is taken unsigned so
    //  INT64_MIN has one.
    uint64_t magnitude = amount < 0 ? (uint64_t)0 - (uint64_t)amount : (uint64_t)amount;
    char reversed[32];
    size_t n = 0;
    int digits = 0;
    do {
        if (digits > 0 && digits % 3 == 0)
            reversed[n++] = ',';
        reversed[n++] = (char)('0' + magnitude % 10);
        magnitude /= 10;
        digits++;
    } while (magnitude > 0);
    if (amount < 0)
        reversed[n++] = '-';
    if (!out || n + 1 > outsize) {
        if (out && outsize > 0)
            out[0] = 0;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = reversed[n - 1 - i];
    out[n] = 0;
    return (int)n;
}
