-- 018 a dispatcher is also alive while its PostgreSQL session is
-- (docs/notify.md "Claims and takeover", issue 17).
--
-- db/016 let a dispatcher's claims go one lease (notify.lease_ms, 60 s)
-- after its last renewal: the whole cost of a crashed notify. Each
-- dispatcher now also holds a session advisory lock keyed by its backend's
-- process id, (1650878052, pid), and records the pid in its row. The
-- server frees the lock the moment the session ends: at once when the
-- process dies (its socket is closed by the kernel), and after the
-- session's server-side keepalive bound (about one lease, bf_dbfence) when
-- the link is cut silently. A dispatcher whose lock has been free for
-- notify.takeover_grace_ms (time for a dispatcher whose connection merely
-- broke to reconnect and take a new one), or whose lease ran out, is dead:
-- its claims are taken over.
ALTER TABLE dispatcher ADD COLUMN session_pid int;

-- Whether the dispatcher session of backend session_pid still holds its
-- lock. A NULL pid (a row written before 018) is never alive by its
-- session: the lease alone decides. The argument is named in full inside
-- the query: pg_locks has a column pid of its own.
CREATE FUNCTION dispatcher_session_alive (session_pid int) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT dispatcher_session_alive.session_pid IS NOT NULL AND EXISTS (
        SELECT 1 FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
           AND l.classid = 1650878052::oid
           AND l.objid = dispatcher_session_alive.session_pid::oid)
$$;
