/*  bf_testutil — what more than one unit test needs: a quiet log for a
    cmocka group, a loopback port where nothing listens, and scratch
    directories. Every failure is a cmocka failure of the calling test.  */

#ifndef BF_TESTUTIL_H_INCLUDED
#define BF_TESTUTIL_H_INCLUDED

/*  cmocka group setup and teardown. Tests that provoke refusals on
    purpose would fill the output with log lines: they go to /dev/null
    (the group state holds that fd) unless BF_TEST_VERBOSE is set, and
    back to stderr at teardown.  */
int bf_testutil_quiet_setup (void **state);
int bf_testutil_quiet_teardown (void **state);

/*  Reserves a loopback port where nothing listens: a TCP socket bound to
    a port the kernel picks, never listening. Connects to it are refused,
    nobody else can bind it while the socket is open (so a test running in
    parallel cannot answer there), and no connect can meet itself on it.
    Returns the socket (close it when done) and the port in *port.  */
int bf_testutil_dead_port (int *port);

/*  A fresh directory /tmp/bf_<name>_XXXXXX (malloc'd path); remove it
    with bf_testutil_rmdir.  */
char *bf_testutil_tmpdir (const char *name);

/*  Removes the directory and the files in it (no subdirectories), frees
    the path and sets *path_p to NULL; safe on NULL.  */
void bf_testutil_rmdir (char **path_p);

#endif
