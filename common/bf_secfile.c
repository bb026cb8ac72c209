/*  bf_secfile — permissions of files holding secrets or contacts (see
    bf_secfile.h).  */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bf_log.h"
#include "bf_secfile.h"

static bool
s_own_group (gid_t gid)
{
    if (gid == getegid ())
        return true;
    gid_t groups[256];
    int n = getgroups (sizeof groups / sizeof groups[0], groups);
    for (int i = 0; i < n; i++)
        if (groups[i] == gid)
            return true;
    return false;
}

bool
bf_secfile_mode_ok (mode_t mode, gid_t gid)
{
    if (mode & S_IRWXO)
        return false;
    if (mode & (S_IWGRP | S_IXGRP))
        return false;
    return !(mode & S_IRGRP) || s_own_group (gid);
}

int
bf_secfile_check (int fd, const char *what, const char *path, char *err, size_t errsize)
{
    struct stat st;
    if (fstat (fd, &st) != 0)
        return bf_err_set (err, errsize, "%s '%s': %s", what, path, strerror (errno));
    if (!S_ISREG (st.st_mode))
        return bf_err_set (err, errsize, "%s '%s' is not a regular file", what, path);
    if (bf_secfile_mode_ok (st.st_mode, st.st_gid))
        return 0;
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if ((st.st_mode & S_IRGRP) && !(st.st_mode & (S_IRWXO | S_IWGRP | S_IXGRP)))
        return bf_err_set (err, errsize,
                           "%s '%s' is readable by group %u (mode %04o), which is not this"
                           " process's group; make it readable by its owner only (chmod 600),"
                           " or give it a group this process is in",
                           what, path, (unsigned)st.st_gid, mode);
    return bf_err_set (err, errsize,
                       "%s '%s' is accessible by group or others (mode %04o); make it readable"
                       " by its owner only (chmod 600), or by a group this process is in"
                       " (chmod 640 or 440)",
                       what, path, mode);
}

FILE *
bf_secfile_create (const char *path, char *err, size_t errsize)
{
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        bf_err_set (err, errsize, "cannot create '%s': %s", path, strerror (errno));
        return NULL;
    }
    /*  An existing file keeps its mode through O_CREAT: set it.  */
    if (fchmod (fd, 0600) != 0) {
        bf_err_set (err, errsize, "cannot make '%s' private (0600): %s", path, strerror (errno));
        close (fd);
        return NULL;
    }
    FILE *file = fdopen (fd, "w");
    if (!file) {
        bf_err_set (err, errsize, "cannot open '%s': %s", path, strerror (errno));
        close (fd);
    }
    return file;
}
