/*  bf_testutil — helpers shared by the unit tests (bf_testutil.h).  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bf_log.h"
#include "bf_testutil.h"

int
bf_testutil_quiet_setup (void **state)
{
    static int log_fd = 2;
    if (getenv ("BF_TEST_VERBOSE") == NULL) {
        int fd = open ("/dev/null", O_WRONLY | O_CLOEXEC);
        if (fd >= 0)
            log_fd = fd;
    }
    bf_log_set_fd (log_fd);
    *state = &log_fd;
    return 0;
}

int
bf_testutil_quiet_teardown (void **state)
{
    int fd = *(int *)*state;
    bf_log_set_fd (2);
    if (fd != 2)
        close (fd);
    return 0;
}

int
bf_testutil_dead_port (int *port)
{
    int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true (fd >= 0);
    struct sockaddr_in addr;
    memset (&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl (INADDR_LOOPBACK);
    addr.sin_port = 0;
    assert_int_equal (bind (fd, (struct sockaddr *)&addr, sizeof addr), 0);
    socklen_t len = sizeof addr;
    assert_int_equal (getsockname (fd, (struct sockaddr *)&addr, &len), 0);
    *port = ntohs (addr.sin_port);
    return fd;
}

char *
bf_testutil_tmpdir (const char *name)
{
    char template[256];
    snprintf (template, sizeof template, "/tmp/bf_%s_XXXXXX", name);
    char *path = strdup (template);
    assert_non_null (path);
    assert_non_null (mkdtemp (path));
    return path;
}

void
bf_testutil_rmdir (char **path_p)
{
    if (!path_p || !*path_p)
        return;
    DIR *dir = opendir (*path_p);
    if (dir) {
        struct dirent *entry;
        while ((entry = readdir (dir))) {
            if (!strcmp (entry->d_name, ".") || !strcmp (entry->d_name, ".."))
                continue;
            char file[512];
            snprintf (file, sizeof file, "%s/%s", *path_p, entry->d_name);
            unlink (file);
        }
        closedir (dir);
    }
    rmdir (*path_p);
    free (*path_p);
    *path_p = NULL;
}
