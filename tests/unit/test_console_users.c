/*  test_console_users — the console's users file and passwords
    (services/console/bf_users.c): hashing and verifying (a wrong password,
    a malformed hash), parsing (hostile lines, duplicates, bad roles, long
    names, invalid UTF-8), and adding a person (refusals, atomic rewrite,
    file mode).  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "bf_adduser.h"
#include "bf_testutil.h"
#include "bf_users.h"

/*  One good hash, made once (argon2id is slow on purpose).  */
static char s_hash[crypto_pwhash_STRBYTES];
#define S_PASSWORD "correct horse battery"

static int
s_setup (void **state)
{
    char err[256];
    if (bf_users_hash (S_PASSWORD, s_hash, err, sizeof err) != 0)
        return -1;
    return bf_testutil_quiet_setup (state);
}

static void
test_hash_verify (void **state)
{
    (void)state;
    assert_int_equal (strncmp (s_hash, "$argon2id$", 10), 0);
    assert_true (bf_users_verify (s_hash, S_PASSWORD));
    assert_false (bf_users_verify (s_hash, "correct horse battery "));
    assert_false (bf_users_verify (s_hash, ""));
    assert_false (bf_users_verify (s_hash, NULL));
    assert_false (bf_users_verify (NULL, S_PASSWORD));
    /*  Malformed hashes: cut, another algorithm, garbage, empty.  */
    char cut[crypto_pwhash_STRBYTES];
    snprintf (cut, sizeof cut, "%.40s", s_hash);
    assert_false (bf_users_verify (cut, S_PASSWORD));
    char other[crypto_pwhash_STRBYTES];
    snprintf (other, sizeof other, "$argon2i$%s", s_hash + 10);
    assert_false (bf_users_verify (other, S_PASSWORD));
    assert_false (bf_users_verify ("$argon2id$v=19$m=65536,t=2,p=1$garbage", S_PASSWORD));
    assert_false (bf_users_verify ("", S_PASSWORD));
    /*  Over the longest password accepted: false without hashing it.  */
    char *huge = malloc (BF_USERS_PASSWORD_MAX + 2);
    memset (huge, 'a', BF_USERS_PASSWORD_MAX + 1);
    huge[BF_USERS_PASSWORD_MAX + 1] = 0;
    assert_false (bf_users_verify (s_hash, huge));
    free (huge);
}

/*  Parses text; asserts it is refused with part in the reason.  */
static void
s_refused (const char *text, size_t len, const char *part)
{
    char err[512] = "";
    bf_users_t *users = bf_users_parse (text, len, "users", err, sizeof err);
    if (users)
        fail_msg ("accepted: %.*s", (int)len, text);
    if (!strstr (err, part))
        fail_msg ("reason '%s' lacks '%s'", err, part);
    /*  The reason never quotes a hash.  */
    assert_null (strstr (err, "$argon2id$"));
}

static void
test_parse_good (void **state)
{
    (void)state;
    char text[2048];
    snprintf (text, sizeof text,
              "# the console's users\n\nkim:operator:%s\nlee.s-1_x:viewer:%s\r\n"
              "last:viewer:%s",
              s_hash, s_hash, s_hash);
    char err[256];
    bf_users_t *users = bf_users_parse (text, strlen (text), "users", err, sizeof err);
    assert_non_null (users);
    assert_int_equal (bf_users_count (users), 3);
    const bf_user_t *kim = bf_users_find (users, "kim");
    assert_non_null (kim);
    assert_string_equal (kim->role, "operator");
    assert_string_equal (kim->hash, s_hash);
    assert_string_equal (bf_users_find (users, "lee.s-1_x")->role, "viewer");
    assert_non_null (bf_users_find (users, "last"));
    assert_null (bf_users_find (users, "Kim"));
    assert_null (bf_users_find (users, "ki"));
    assert_null (bf_users_find (users, NULL));
    bf_users_destroy (&users);
    assert_null (users);
    users = bf_users_parse ("", 0, "users", err, sizeof err);
    assert_non_null (users);
    assert_int_equal (bf_users_count (users), 0);
    bf_users_destroy (&users);
}

static void
test_parse_hostile (void **state)
{
    (void)state;
    char text[4096];
    snprintf (text, sizeof text, "kim:operator:%s\nkim:viewer:%s\n", s_hash, s_hash);
    s_refused (text, strlen (text), "users:2: user 'kim' is listed twice");
    snprintf (text, sizeof text, "kim:admin:%s\n", s_hash);
    s_refused (text, strlen (text), "users:1: the role is not operator or viewer");
    snprintf (text, sizeof text, "kim:Operator:%s\n", s_hash);
    s_refused (text, strlen (text), "role");
    snprintf (text, sizeof text, "kim::%s\n", s_hash);
    s_refused (text, strlen (text), "role");
    s_refused ("kim:operator\n", 13, "not NAME:ROLE:HASH");
    s_refused ("kim\n", 4, "not NAME:ROLE:HASH");
    s_refused ("kim:operator:plaintext\n", 23, "not an argon2id hash");
    s_refused ("kim:operator:$argon2i$v=19$m=4096,t=3,p=1$c2FsdA$aGFzaA\n", 56, "argon2id");
    /*  Names: empty, 65 characters, a space, a slash, a colon in the name.  */
    snprintf (text, sizeof text, ":operator:%s\n", s_hash);
    s_refused (text, strlen (text), "the name is not");
    char name[66];
    memset (name, 'a', 65);
    name[65] = 0;
    snprintf (text, sizeof text, "%s:operator:%s\n", name, s_hash);
    s_refused (text, strlen (text), "the name is not");
    snprintf (text, sizeof text, "ki m:operator:%s\n", s_hash);
    s_refused (text, strlen (text), "printable ASCII");
    snprintf (text, sizeof text, "ki/m:operator:%s\n", s_hash);
    s_refused (text, strlen (text), "the name is not");
    /*  Invalid UTF-8, valid UTF-8 outside ASCII, a control character, NUL.  */
    snprintf (text, sizeof text, "k\xffim:operator:%s\n", s_hash);
    s_refused (text, strlen (text), "printable ASCII");
    snprintf (text, sizeof text, "김:operator:%s\n", s_hash);
    s_refused (text, strlen (text), "printable ASCII");
    snprintf (text, sizeof text, "kim:operator:%s\x01\n", s_hash);
    s_refused (text, strlen (text), "printable ASCII");
    snprintf (text, sizeof text, "kim:operator:%s\n", s_hash);
    text[2] = 0;
    s_refused (text, strlen (text + 3) + 3, "NUL");
    /*  A line over the limit, an overlong hash.  */
    char *long_line = malloc (BF_USERS_LINE_MAX + 64);
    memset (long_line, 'a', BF_USERS_LINE_MAX + 10);
    long_line[BF_USERS_LINE_MAX + 10] = '\n';
    s_refused (long_line, BF_USERS_LINE_MAX + 11, "longer than");
    snprintf (text, sizeof text, "kim:operator:$argon2id$%0200d\n", 1);
    s_refused (text, strlen (text), "argon2id");
    free (long_line);
    /*  The line number of the first bad line, after good ones.  */
    snprintf (text, sizeof text, "# c\nkim:operator:%s\n\nlee:viewer\n", s_hash);
    s_refused (text, strlen (text), "users:4:");
}

static void
test_add (void **state)
{
    (void)state;
    char *dir = bf_testutil_tmpdir ("console_users");
    char path[512], err[512];
    snprintf (path, sizeof path, "%s/users", dir);
    /*  A new file, then a second person.  */
    assert_int_equal (
        bf_users_add (path, "kim", "operator", "kim's long password", err, sizeof err), 0);
    assert_int_equal (bf_users_add (path, "lee", "viewer", "lee's long password", err, sizeof err),
                      0);
    struct stat st;
    assert_int_equal (stat (path, &st), 0);
    assert_int_equal (st.st_mode & 0777, 0600);
    bf_users_t *users = bf_users_load (path, err, sizeof err);
    assert_non_null (users);
    assert_int_equal (bf_users_count (users), 2);
    assert_true (bf_users_verify (bf_users_find (users, "kim")->hash, "kim's long password"));
    assert_false (bf_users_verify (bf_users_find (users, "lee")->hash, "kim's long password"));
    assert_string_equal (bf_users_find (users, "lee")->role, "viewer");
    bf_users_destroy (&users);
    /*  Refusals leave the file as it was.  */
    assert_int_equal (bf_users_add (path, "kim", "viewer", "another password", err, sizeof err),
                      -1);
    assert_non_null (strstr (err, "already"));
    assert_int_equal (
        bf_users_add (path, "bad name", "viewer", "another password", err, sizeof err), -1);
    assert_int_equal (bf_users_add (path, "park", "admin", "another password", err, sizeof err),
                      -1);
    assert_int_equal (bf_users_add (path, "park", "viewer", "short", err, sizeof err), -1);
    assert_non_null (strstr (err, "bytes long"));
    assert_int_equal (bf_users_add (path, "park", "viewer", "not \xff valid utf8", err, sizeof err),
                      -1);
    users = bf_users_load (path, err, sizeof err);
    assert_int_equal (bf_users_count (users), 2);
    bf_users_destroy (&users);
    /*  A file others may read is refused (the mode rule of secret files).  */
    chmod (path, 0644);
    assert_null (bf_users_load (path, err, sizeof err));
    assert_int_equal (bf_users_add (path, "park", "viewer", "another password", err, sizeof err),
                      -1);
    chmod (path, 0600);
    /*  A broken file is not added to.  */
    FILE *f = fopen (path, "a");
    fputs ("broken line\n", f);
    fclose (f);
    assert_int_equal (bf_users_add (path, "park", "viewer", "another password", err, sizeof err),
                      -1);
    assert_non_null (strstr (err, ":3:"));
    bf_testutil_rmdir (&dir);
}

/*  adduser's password from a stream that is not a terminal: one line.  */
static void
test_read_password (void **state)
{
    (void)state;
    char out[16];
    FILE *in = tmpfile ();
    fputs ("first secret\nsecond\n", in);
    rewind (in);
    assert_int_equal (bf_adduser_read_password (in, out, sizeof out), 0);
    assert_string_equal (out, "first secret");
    assert_int_equal (bf_adduser_read_password (in, out, sizeof out), 0);
    assert_string_equal (out, "second");
    assert_int_equal (bf_adduser_read_password (in, out, sizeof out), -1);
    fclose (in);
    /*  The last line without its newline, a CRLF line, a line too long.  */
    in = tmpfile ();
    fputs ("windows\r\nno newline", in);
    rewind (in);
    assert_int_equal (bf_adduser_read_password (in, out, sizeof out), 0);
    assert_string_equal (out, "windows");
    assert_int_equal (bf_adduser_read_password (in, out, sizeof out), 0);
    assert_string_equal (out, "no newline");
    fclose (in);
    in = tmpfile ();
    fputs ("a line much longer than the buffer\n", in);
    rewind (in);
    assert_int_equal (bf_adduser_read_password (in, out, sizeof out), -1);
    assert_string_equal (out, "");
    fclose (in);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_hash_verify),   cmocka_unit_test (test_parse_good),
        cmocka_unit_test (test_parse_hostile), cmocka_unit_test (test_add),
        cmocka_unit_test (test_read_password),
    };
    return cmocka_run_group_tests (tests, s_setup, bf_testutil_quiet_teardown);
}
