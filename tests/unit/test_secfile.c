/*  test_secfile — the one rule for files holding secrets or contacts
    (bf_secfile.h) and each place that applies it: the PII key file (in
    test_pii), secret key files, the allowed-keys file, a config file that
    sets a secret, and files billflow writes (created 0600).  */

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "bf_config.h"
#include "bf_curve.h"
#include "bf_secfile.h"
#include "bf_testutil.h"

/*  A group this process is not in.  */
static gid_t
s_foreign_gid (void)
{
    gid_t groups[256];
    int n = getgroups (256, groups);
    for (gid_t gid = 54321;; gid++) {
        bool mine = gid == getegid ();
        for (int i = 0; i < n; i++)
            mine = mine || groups[i] == gid;
        if (!mine)
            return gid;
    }
}

static void
test_rule (void **state)
{
    (void)state;
    gid_t own = getegid (), foreign = s_foreign_gid ();
    static const mode_t ok_any[] = { 0600, 0400, 0200, 0000 };
    for (size_t i = 0; i < sizeof ok_any / sizeof ok_any[0]; i++) {
        assert_true (bf_secfile_mode_ok (S_IFREG | ok_any[i], own));
        assert_true (bf_secfile_mode_ok (S_IFREG | ok_any[i], foreign));
    }
    /*  Group-read: only with the process's own group (fsGroup).  */
    assert_true (bf_secfile_mode_ok (S_IFREG | 0640, own));
    assert_true (bf_secfile_mode_ok (S_IFREG | 0440, own));
    assert_false (bf_secfile_mode_ok (S_IFREG | 0640, foreign));
    assert_false (bf_secfile_mode_ok (S_IFREG | 0440, foreign));
    static const mode_t never[] = { 0644, 0604, 0660, 0620, 0610, 0650, 0601, 0602, 0666, 0777,
                                    0444 };
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (bf_secfile_mode_ok (S_IFREG | never[i], own))
            fail_msg ("mode %04o accepted", (unsigned)never[i]);
}

static void
s_write (const char *path, const char *text, mode_t mode)
{
    FILE *file = fopen (path, "w");
    assert_non_null (file);
    fputs (text, file);
    fclose (file);
    assert_int_equal (chmod (path, mode), 0);
}

static void
test_places (void **state)
{
    (void)state;
    char *dir = bf_testutil_tmpdir ("test_secfile");
    char path[512], err[512];

    /*  The allowed-keys file: 0644 refused (it was not checked), 0600 read.  */
    zcert_t *cert = zcert_new ();
    char line[256];
    snprintf (line, sizeof line, "ops  viewer  %s\n", zcert_public_txt (cert));
    zcert_destroy (&cert);
    snprintf (path, sizeof path, "%s/allowed_keys", dir);
    s_write (path, line, 0644);
    assert_null (bf_keyring_load (path, err, sizeof err));
    assert_non_null (strstr (err, "allowed-keys file"));
    assert_non_null (strstr (err, "0644"));
    assert_int_equal (chmod (path, 0600), 0);
    bf_keyring_t *ring = bf_keyring_load (path, err, sizeof err);
    assert_non_null (ring);
    bf_keyring_destroy (&ring);

    /*  A config file that sets a secret is held to the rule; one without
        a secret is not.  */
    snprintf (path, sizeof path, "%s/secret.conf", dir);
    s_write (path, "[notify]\nsms_token = \"abc\"\n", 0644);
    bf_config_t *config = bf_config_load (path, err, sizeof err);
    assert_null (config);
    assert_non_null (strstr (err, "notify.sms_token"));
    assert_non_null (strstr (err, "0644"));
    assert_int_equal (chmod (path, 0640), 0);
    config = bf_config_load (path, err, sizeof err);
    assert_non_null (config);
    bf_config_destroy (&config);
    snprintf (path, sizeof path, "%s/password.conf", dir);
    s_write (path, "[db]\nconninfo = \"dbname=x password=y\"\n", 0604);
    assert_null (bf_config_load (path, err, sizeof err));
    assert_non_null (strstr (err, "db.conninfo"));
    snprintf (path, sizeof path, "%s/plain.conf", dir);
    s_write (path, "[notify]\nbatch = 10\n", 0644);
    config = bf_config_load (path, err, sizeof err);
    assert_non_null (config);
    bf_config_destroy (&config);

    /*  Written files are 0600 whatever the umask, also over an old 0644.  */
    mode_t old = umask (0);
    snprintf (path, sizeof path, "%s/contacts.csv", dir);
    s_write (path, "old\n", 0644);
    FILE *file = bf_secfile_create (path, err, sizeof err);
    umask (old);
    assert_non_null (file);
    fclose (file);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 07777, 0600);
    assert_int_equal (st.st_size, 0);

    bf_testutil_rmdir (&dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_rule),
        cmocka_unit_test (test_places),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
