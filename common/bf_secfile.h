/*  bf_secfile — the one rule for files that hold secrets or contacts:
    CURVE secret key files, the PII key file, control's allowed-keys file,
    a config file that sets a secret, and what billdata writes (subscriber
    contacts).

    A file is accepted when it is a regular file and
    - others have no access at all (no o+r, o+w, o+x);
    - the group may not write or execute it;
    - the group may read it only when the file's group is the process's
      effective group or one of its supplementary groups.
    So 0600 and 0400 always pass, and 0640 / 0440 pass where the group is
    the process's own: a Kubernetes secret mounted with defaultMode 0440
    under the pod's fsGroup (root:fsGroup, the process a member of
    fsGroup) works; 0644 (the default mode of a secret volume), 0660, 0604
    and a group that is someone else's are refused. The owner is not
    checked: a mounted secret belongs to root, and the file could not be
    read if access were the owner's alone.

    Files billflow writes with secrets or contacts are created 0600
    (bf_secfile_create), whatever the umask.  */

#ifndef BF_SECFILE_H_INCLUDED
#define BF_SECFILE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/*  Whether a file of mode and group gid may hold secrets under the rule
    (the process's groups are the caller's).  */
bool bf_secfile_mode_ok (mode_t mode, gid_t gid);

/*  Checks the open file fd (checked, not its name, so nothing can swap
    it between check and read). what names the file in the reason ("PII
    key file"), path is shown. Returns 0, or -1 with a reason that says
    what to do in err.  */
int bf_secfile_check (int fd, const char *what, const char *path, char *err, size_t errsize);

/*  Opens path for writing ("w"), created 0600 or truncated and set to
    0600. Returns the stream, or NULL with a reason in err.  */
FILE *bf_secfile_create (const char *path, char *err, size_t errsize);

#endif
