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
#include "bf_pii.h"
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

/*  A Secret as the kubelet mounts it under fsGroup: each key a link
    KEY -> ..data/KEY, ..data a link to a timestamped directory, the files
    0440 root:fsGroup. The rule applies to the file behind the links: 0440
    with the process's own group is read; another group's, world-readable
    or group-writable is refused, through the links too.  */
static void
test_kubernetes_mount (void **state)
{
    (void)state;
    char *dir = bf_testutil_tmpdir ("test_secfile_k8s");
    char data[400], link[512], path[512], err[512];
    snprintf (data, sizeof data, "%s/..2026_12_06_00_00_00.123456789", dir);
    assert_int_equal (mkdir (data, 0755), 0);
    snprintf (link, sizeof link, "%s/..data", dir);
    assert_int_equal (symlink ("..2026_12_06_00_00_00.123456789", link), 0);

    //  The PII key and a CURVE secret key, 0440 with the process's group.
    snprintf (path, sizeof path, "%s/pii.key", data);
    s_write (path, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0440);
    snprintf (link, sizeof link, "%s/pii.key", dir);
    assert_int_equal (symlink ("..data/pii.key", link), 0);
    zcert_t *cert = zcert_new ();
    snprintf (path, sizeof path, "%s/control.key", data);
    assert_int_equal (zcert_save (cert, path), 0);
    zcert_destroy (&cert);
    snprintf (path, sizeof path, "%s/control.key_secret", data);
    assert_int_equal (chmod (path, 0440), 0);
    snprintf (link, sizeof link, "%s/control.key_secret", dir);
    assert_int_equal (symlink ("..data/control.key_secret", link), 0);

    char pii_link[512], key_link[512], pii_file[512];
    snprintf (pii_link, sizeof pii_link, "%s/pii.key", dir);
    snprintf (key_link, sizeof key_link, "%s/control.key_secret", dir);
    snprintf (pii_file, sizeof pii_file, "%s/pii.key", data);
    assert_int_equal (chown (pii_file, (uid_t)-1, getegid ()), 0);
    assert_int_equal (chown (path, (uid_t)-1, getegid ()), 0);
    bf_pii_t *pii = bf_pii_load (pii_link, NULL, err, sizeof err);
    if (!pii)
        fail_msg ("0440 with the process's group refused: %s", err);
    bf_pii_destroy (&pii);
    cert = bf_curve_load_secret (key_link, err, sizeof err);
    if (!cert)
        fail_msg ("0440 secret key with the process's group refused: %s", err);
    zcert_destroy (&cert);

    //  World-readable, or group-writable: refused through the links.
    assert_int_equal (chmod (pii_file, 0444), 0);
    assert_null (bf_pii_load (pii_link, NULL, err, sizeof err));
    assert_non_null (strstr (err, "0444"));
    assert_int_equal (chmod (pii_file, 0460), 0);
    assert_null (bf_pii_load (pii_link, NULL, err, sizeof err));
    assert_non_null (strstr (err, "0460"));
    assert_int_equal (chmod (path, 0640 | 0020), 0);
    assert_null (bf_curve_load_secret (key_link, err, sizeof err));
    assert_non_null (strstr (err, "0660"));

    //  0440 with a group the process is not in: refused, naming the group.
    //  (Changing a file's group to a foreign one needs root; a test run as
    //  another user checks the rule itself in test_rule.)
    assert_int_equal (chmod (pii_file, 0440), 0);
    gid_t foreign = s_foreign_gid ();
    if (chown (pii_file, (uid_t)-1, foreign) == 0) {
        assert_null (bf_pii_load (pii_link, NULL, err, sizeof err));
        char group[32];
        snprintf (group, sizeof group, "group %u", (unsigned)foreign);
        assert_non_null (strstr (err, group));
        assert_non_null (strstr (err, "not this process's group"));
    }
    //  The timestamped directory first (bf_testutil_rmdir removes files).
    static const char *const files[] = { "pii.key", "control.key", "control.key_secret" };
    for (size_t i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/%s", data, files[i]);
        unlink (path);
    }
    rmdir (data);
    bf_testutil_rmdir (&dir);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_rule),
        cmocka_unit_test (test_places),
        cmocka_unit_test (test_kubernetes_mount),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
