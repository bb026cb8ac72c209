/*  bf_fault — named crash points for the fault-injection tests.

    When the environment variable BF_FAULT (deliberately outside the
    BILLFLOW_ settings namespace: it is not configuration) is "NAME" or "NAME:N", the
    N-th time (default 1st) the process reaches bf_fault ("NAME") it kills
    itself with SIGKILL, exactly like `kill -9` at that instruction. With the
    variable unset (production) a fault point is one branch on a cached flag.
    Names used: listed in docs/settle.md and docs/notify.md.  */

#ifndef BF_FAULT_H_INCLUDED
#define BF_FAULT_H_INCLUDED

/*  Crashes the process here when BF_FAULT names this point.  */
void bf_fault (const char *name);

#endif
