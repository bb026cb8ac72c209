/*  bf_throttle — failed logins counted per key (a person's name, a client
    address), so that guessing passwords is slow.

    A key that has failed limit times within window_ms of its first
    failure is blocked until that window ends; its count then starts
    again. A successful login clears a key (bf_throttle_clear). The table
    holds at most max keys: when it is full, keys whose window has ended
    are dropped, then the one whose window started first. Pure rules with
    the clock passed in; one mutex makes every call safe from any
    thread.  */

#ifndef BF_THROTTLE_H_INCLUDED
#define BF_THROTTLE_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define BF_THROTTLE_KEY_MAX 80 /* longer keys are cut */

typedef struct bf_throttle_t bf_throttle_t;

bf_throttle_t *bf_throttle_new (size_t max, int limit, int64_t window_ms);
void bf_throttle_destroy (bf_throttle_t **self_p);

/*  How long key must wait before it may try again: 0 when it may now,
    else the milliseconds until its window ends.  */
int64_t bf_throttle_wait_ms (bf_throttle_t *self, const char *key, int64_t now_ms);

/*  Counts a failure of key at now_ms. Returns the failures of its current
    window.  */
int bf_throttle_fail (bf_throttle_t *self, const char *key, int64_t now_ms);

/*  Forgets key's failures.  */
void bf_throttle_clear (bf_throttle_t *self, const char *key);

#endif
