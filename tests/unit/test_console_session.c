/*  test_console_session — the console's sessions (services/console/
    bf_session.c) and failed-login limits (bf_throttle.c), with the clock
    passed in: tokens, idle and absolute expiry, the bound on sessions,
    logout, and the CSRF check.  */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "bf_session.h"
#include "bf_throttle.h"

#define IDLE     (30 * 60 * 1000)
#define ABSOLUTE (12 * 3600 * 1000)
#define T0       1000000

static void
test_open_and_touch (void **state)
{
    (void)state;
    bf_sessions_t *sessions = bf_sessions_new (10, IDLE, ABSOLUTE);
    char token[BF_SESSION_TOKEN_HEX], other[BF_SESSION_TOKEN_HEX];
    bf_session_t opened, seen;
    assert_int_equal (bf_sessions_open (sessions, "kim", "operator", T0, token, &opened), 0);
    assert_int_equal (strlen (token), 64);
    assert_string_equal (opened.name, "kim");
    assert_string_equal (opened.role, "operator");
    assert_int_equal (strlen (opened.csrf), 64);
    assert_int_equal (opened.idle_expires_ms, T0 + IDLE);
    assert_int_equal (opened.absolute_expires_ms, T0 + ABSOLUTE);
    assert_true (bf_sessions_touch (sessions, token, T0 + 1000, &seen));
    assert_string_equal (seen.csrf, opened.csrf);
    assert_int_equal (seen.idle_expires_ms, T0 + 1000 + IDLE);
    /*  Two sessions never share a token or a CSRF token.  */
    assert_int_equal (bf_sessions_open (sessions, "kim", "operator", T0, other, &seen), 0);
    assert_string_not_equal (token, other);
    assert_string_not_equal (seen.csrf, opened.csrf);
    assert_int_equal (bf_sessions_count (sessions), 2);
    bf_sessions_destroy (&sessions);
    assert_null (sessions);
    bf_sessions_destroy (&sessions);
}

static void
test_hostile_tokens (void **state)
{
    (void)state;
    bf_sessions_t *sessions = bf_sessions_new (4, IDLE, ABSOLUTE);
    char token[BF_SESSION_TOKEN_HEX];
    bf_session_t seen;
    assert_int_equal (bf_sessions_open (sessions, "kim", "viewer", T0, token, NULL), 0);
    /*  One character changed, upper case, short, long, not hex, empty, NULL.  */
    char changed[BF_SESSION_TOKEN_HEX];
    memcpy (changed, token, sizeof changed);
    changed[10] = changed[10] == 'a' ? 'b' : 'a';
    assert_false (bf_sessions_touch (sessions, changed, T0, &seen));
    char upper[BF_SESSION_TOKEN_HEX];
    for (size_t i = 0; i < sizeof upper; i++)
        upper[i] = (char)(token[i] >= 'a' && token[i] <= 'f' ? token[i] - 32 : token[i]);
    if (strcmp (upper, token))
        assert_false (bf_sessions_touch (sessions, upper, T0, &seen));
    char longer[BF_SESSION_TOKEN_HEX + 2];
    snprintf (longer, sizeof longer, "%s0", token);
    assert_false (bf_sessions_touch (sessions, longer, T0, &seen));
    token[63] = 0;
    assert_false (bf_sessions_touch (sessions, token, T0, &seen));
    assert_false (bf_sessions_touch (sessions, "zz", T0, &seen));
    assert_false (bf_sessions_touch (sessions, "", T0, &seen));
    assert_false (bf_sessions_touch (sessions, NULL, T0, &seen));
    assert_false (bf_sessions_close (sessions, "not a token"));
    bf_sessions_destroy (&sessions);
}

static void
test_idle_expiry (void **state)
{
    (void)state;
    bf_sessions_t *sessions = bf_sessions_new (4, IDLE, ABSOLUTE);
    char token[BF_SESSION_TOKEN_HEX];
    bf_session_t seen;
    assert_int_equal (bf_sessions_open (sessions, "kim", "operator", T0, token, NULL), 0);
    /*  Used just before the idle expiry: it lives on from there.  */
    assert_true (bf_sessions_touch (sessions, token, T0 + IDLE - 1, &seen));
    assert_true (bf_sessions_touch (sessions, token, T0 + 2 * IDLE - 2, &seen));
    /*  Asking whether it is live does not keep it alive.  */
    assert_true (bf_sessions_live (sessions, token, T0 + 3 * IDLE - 3));
    assert_false (bf_sessions_live (sessions, token, T0 + 3 * IDLE - 2));
    assert_false (bf_sessions_live (sessions, "nope", T0));
    /*  Not used for IDLE: gone, and it stays gone.  */
    assert_false (bf_sessions_touch (sessions, token, T0 + 3 * IDLE - 2, &seen));
    assert_false (bf_sessions_touch (sessions, token, T0 + 3 * IDLE - 1, &seen));
    assert_int_equal (bf_sessions_count (sessions), 0);
    bf_sessions_destroy (&sessions);
}

static void
test_absolute_expiry (void **state)
{
    (void)state;
    bf_sessions_t *sessions = bf_sessions_new (4, IDLE, ABSOLUTE);
    char token[BF_SESSION_TOKEN_HEX];
    bf_session_t seen;
    assert_int_equal (bf_sessions_open (sessions, "kim", "operator", T0, token, NULL), 0);
    int64_t now = T0;
    /*  Used every ten minutes, it still ends ABSOLUTE after the login.  */
    while (now + 600000 < T0 + ABSOLUTE) {
        now += 600000;
        assert_true (bf_sessions_touch (sessions, token, now, &seen));
        assert_true (seen.idle_expires_ms <= T0 + ABSOLUTE);
        assert_int_equal (seen.absolute_expires_ms, T0 + ABSOLUTE);
    }
    assert_false (bf_sessions_touch (sessions, token, T0 + ABSOLUTE, &seen));
    bf_sessions_destroy (&sessions);
}

static void
test_logout (void **state)
{
    (void)state;
    bf_sessions_t *sessions = bf_sessions_new (4, IDLE, ABSOLUTE);
    char a[BF_SESSION_TOKEN_HEX], b[BF_SESSION_TOKEN_HEX];
    bf_session_t seen;
    assert_int_equal (bf_sessions_open (sessions, "kim", "operator", T0, a, NULL), 0);
    assert_int_equal (bf_sessions_open (sessions, "lee", "viewer", T0, b, NULL), 0);
    assert_true (bf_sessions_live (sessions, a, T0 + 1));
    assert_true (bf_sessions_close (sessions, a));
    assert_false (bf_sessions_live (sessions, a, T0 + 1));
    assert_false (bf_sessions_close (sessions, a));
    assert_false (bf_sessions_touch (sessions, a, T0 + 1, &seen));
    assert_true (bf_sessions_touch (sessions, b, T0 + 1, &seen));
    assert_string_equal (seen.name, "lee");
    bf_sessions_destroy (&sessions);
}

static void
test_bound (void **state)
{
    (void)state;
    bf_sessions_t *sessions = bf_sessions_new (3, IDLE, ABSOLUTE);
    char token[4][BF_SESSION_TOKEN_HEX];
    bf_session_t seen;
    for (int i = 0; i < 3; i++)
        assert_int_equal (bf_sessions_open (sessions, "kim", "operator", T0 + i, token[i], NULL),
                          0);
    /*  token[0] is used again: token[1] is now the least recently used.  */
    assert_true (bf_sessions_touch (sessions, token[0], T0 + 10, &seen));
    assert_int_equal (bf_sessions_open (sessions, "lee", "viewer", T0 + 11, token[3], NULL), 0);
    assert_int_equal (bf_sessions_count (sessions), 3);
    assert_false (bf_sessions_touch (sessions, token[1], T0 + 12, &seen));
    assert_true (bf_sessions_touch (sessions, token[0], T0 + 12, &seen));
    assert_true (bf_sessions_touch (sessions, token[2], T0 + 12, &seen));
    assert_true (bf_sessions_touch (sessions, token[3], T0 + 12, &seen));
    bf_sessions_destroy (&sessions);
}

static void
test_csrf (void **state)
{
    (void)state;
    bf_sessions_t *sessions = bf_sessions_new (2, IDLE, ABSOLUTE);
    char token[BF_SESSION_TOKEN_HEX];
    bf_session_t session, other;
    assert_int_equal (bf_sessions_open (sessions, "kim", "operator", T0, token, &session), 0);
    assert_int_equal (bf_sessions_open (sessions, "kim", "operator", T0, token, &other), 0);
    assert_true (bf_session_csrf_ok (&session, session.csrf));
    assert_false (bf_session_csrf_ok (&session, other.csrf));
    assert_false (bf_session_csrf_ok (&session, NULL));
    assert_false (bf_session_csrf_ok (&session, ""));
    char shorter[BF_SESSION_TOKEN_HEX], longer[BF_SESSION_TOKEN_HEX + 1];
    snprintf (shorter, sizeof shorter, "%.63s", session.csrf);
    snprintf (longer, sizeof longer, "%sa", session.csrf);
    assert_false (bf_session_csrf_ok (&session, shorter));
    assert_false (bf_session_csrf_ok (&session, longer));
    /*  A session with no CSRF token (a zeroed one) accepts nothing.  */
    bf_session_t empty;
    memset (&empty, 0, sizeof empty);
    assert_false (bf_session_csrf_ok (&empty, ""));
    bf_sessions_destroy (&sessions);
}

static void
test_throttle (void **state)
{
    (void)state;
    bf_throttle_t *throttle = bf_throttle_new (8, 3, 60000);
    assert_int_equal (bf_throttle_wait_ms (throttle, "kim", T0), 0);
    assert_int_equal (bf_throttle_fail (throttle, "kim", T0), 1);
    assert_int_equal (bf_throttle_fail (throttle, "kim", T0 + 1000), 2);
    assert_int_equal (bf_throttle_wait_ms (throttle, "kim", T0 + 1000), 0);
    assert_int_equal (bf_throttle_fail (throttle, "kim", T0 + 2000), 3);
    /*  Blocked until the window (from the first failure) ends.  */
    assert_int_equal (bf_throttle_wait_ms (throttle, "kim", T0 + 2000), 58000);
    assert_int_equal (bf_throttle_wait_ms (throttle, "lee", T0 + 2000), 0);
    assert_int_equal (bf_throttle_wait_ms (throttle, "kim", T0 + 60000), 0);
    assert_int_equal (bf_throttle_fail (throttle, "kim", T0 + 60000), 1);
    /*  A success clears the key.  */
    bf_throttle_fail (throttle, "kim", T0 + 60001);
    bf_throttle_fail (throttle, "kim", T0 + 60002);
    assert_true (bf_throttle_wait_ms (throttle, "kim", T0 + 60003) > 0);
    bf_throttle_clear (throttle, "kim");
    assert_int_equal (bf_throttle_wait_ms (throttle, "kim", T0 + 60003), 0);
    bf_throttle_destroy (&throttle);
    assert_null (throttle);
}

static void
test_throttle_full (void **state)
{
    (void)state;
    bf_throttle_t *throttle = bf_throttle_new (2, 1, 60000);
    bf_throttle_fail (throttle, "a", T0);
    bf_throttle_fail (throttle, "b", T0 + 1);
    assert_true (bf_throttle_wait_ms (throttle, "a", T0 + 2) > 0);
    /*  A third key takes the place of the one whose window started first.  */
    bf_throttle_fail (throttle, "c", T0 + 2);
    assert_int_equal (bf_throttle_wait_ms (throttle, "a", T0 + 3), 0);
    assert_true (bf_throttle_wait_ms (throttle, "b", T0 + 3) > 0);
    assert_true (bf_throttle_wait_ms (throttle, "c", T0 + 3) > 0);
    /*  Long keys are cut, not refused.  */
    char key[300];
    memset (key, 'x', sizeof key - 1);
    key[sizeof key - 1] = 0;
    bf_throttle_fail (throttle, key, T0 + 4);
    assert_true (bf_throttle_wait_ms (throttle, key, T0 + 5) > 0);
    bf_throttle_destroy (&throttle);
}

int
main (void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test (test_open_and_touch), cmocka_unit_test (test_hostile_tokens),
        cmocka_unit_test (test_idle_expiry),    cmocka_unit_test (test_absolute_expiry),
        cmocka_unit_test (test_logout),         cmocka_unit_test (test_bound),
        cmocka_unit_test (test_csrf),           cmocka_unit_test (test_throttle),
        cmocka_unit_test (test_throttle_full),
    };
    return cmocka_run_group_tests (tests, NULL, NULL);
}
