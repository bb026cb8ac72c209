/*  bf_adduser — `console adduser NAME --role operator|viewer [--users FILE]
    [--config FILE]`: adds a person to the users file (bf_users_add).

    The password is read without echo from the terminal, twice, when
    standard input is a terminal; otherwise one line of standard input is
    the password (scripts and tests). The users file is --users, else
    console.users_file of the configuration.  */

#ifndef BF_ADDUSER_H_INCLUDED
#define BF_ADDUSER_H_INCLUDED

#include <stddef.h>
#include <stdio.h>

/*  Runs the command (argv[0] is "adduser"). Returns the exit status: 0
    added, 1 refused or failed (the reason on stderr), 2 bad usage.  */
int bf_adduser_main (int argc, char **argv);

/*  Reads one line (without its newline) of at most size - 1 bytes from
    in into out; with echo off when in is a terminal. Returns 0, or -1 at
    end of input, on a read error or when the line is longer.  */
int bf_adduser_read_password (FILE *in, char *out, size_t size);

#endif
