#!/usr/bin/env bash
# Capacity: what one whole billing cycle costs, measured. Runs bench/e2e.sh
# SUBSCRIBERS (the whole stack from scripts/stack on a durable throwaway
# PostgreSQL, the mock provider with its default conditions) and, through its
# E2E_PROBE hook, measures from `billctl run start` to every notice final:
#
#   - PostgreSQL's CPU-seconds: utime+stime of every server process, from
#     /proc: the postmaster's own, its reaped children's (cutime+cstime: the
#     backends and workers that exited during the cycle) and its live
#     children's, before and after (the difference is exact for processes
#     that come and go, with no sampling), split by the application_name
#     of the live backends (settle-worker, notify-dispatch, ...) and
#     PostgreSQL's own workers (walwriter, checkpointer, autovacuum, ...);
#   - settle's, notify's, control's (and the mock provider's) CPU-seconds
#     and peak RSS (VmHWM) from /proc;
#   - WAL bytes (pg_wal_lsn_diff of pg_current_wal_lsn), pg_stat_wal's
#     records, full-page images, writes and syncs; transactions and rows
#     (pg_stat_database); the database's size before and after and the
#     growth of the largest tables; data pages written (pg_stat_bgwriter);
#   - bytes written (and read) by the server processes (/proc/PID/io, the
#     postmaster's counts include its reaped children), during the cycle and
#     by a CHECKPOINT right after it (the cycle's writes PostgreSQL deferred);
#   - wall time, bills, notices, send attempts; the load average (every 5 s)
#     and the whole machine's busy CPU-seconds, to judge how shared it was.
#
#   bash bench/capacity.sh [SUBSCRIBERS]        (default 1000000)
#
# Prints bench/e2e.sh's output, then the measurements and the same figures
# per 1,000,000 subscribers. A CHECKPOINT before `run start` keeps the data
# generation's deferred writes out of the cycle. docs/capacity.md turns the
# figures into a sizing guide. Run as root (as scripts/stack is) so that
# /proc/PID/io of the postgres user's processes can be read.
# Internal: `bench/capacity.sh --probe begin|end DIR` is the hook itself.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != --probe ]; then
  n=${1:-1000000}
  [[ $n =~ ^[1-9][0-9]{0,8}$ ]] || { echo "capacity: bad SUBSCRIBERS '$n' (a positive whole number)" >&2; exit 2; }
  out=$(mktemp)
  trap 'rm -f "$out"' EXIT
  CAPACITY_OUT=$out CAPACITY_SUBSCRIBERS=$n E2E_PROBE="bash bench/capacity.sh --probe" bash bench/e2e.sh "$n"
  echo
  cat "$out"
  exit 0
fi

# ---------------------------------------------------------------------------
# The probe: `--probe begin DIR` saves the counters in DIR/capacity.begin.json
# and starts the load sampler; `--probe end DIR` reads them again and writes
# the report to $CAPACITY_OUT (stdout when unset).
[ $# -eq 3 ] || { echo "capacity: usage: bench/capacity.sh --probe begin|end DIR" >&2; exit 2; }
dir=$3
[ -f "$dir/env" ] || { echo "capacity: $dir is not a stack directory (no env file)" >&2; exit 1; }
for v in $(compgen -v BILLFLOW_ || true); do unset "$v"; done
# shellcheck disable=SC1091
. "$dir/env"     # PGHOST, PGPORT, PGUSER, PGDATABASE of the stack's PostgreSQL
exec python3 - "$2" "$dir" <<'PY'
import json, os, signal, subprocess, sys, time

phase, d = sys.argv[1], sys.argv[2]
TICK = os.sysconf('SC_CLK_TCK')
SERVICES = ['settle', 'notify', 'control', 'mock']

def psql(sql):
    r = subprocess.run(['psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-F', '\t', '-c', sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit('capacity: psql failed: %s' % r.stderr.strip())
    return [line.split('\t') for line in r.stdout.splitlines() if line]

def stat(pid):
    """(ppid, utime+stime, cutime+cstime) in ticks, or None when gone."""
    try:
        s = open('/proc/%d/stat' % pid).read()
    except OSError:
        return None
    f = s[s.rindex(')') + 2:].split()        # f[0] is field 3 (state)
    return int(f[1]), int(f[11]) + int(f[12]), int(f[13]) + int(f[14])

def io(pid):
    """{'read_bytes':..,'write_bytes':..} of /proc/PID/io, or None."""
    try:
        return {k: int(v) for k, v in (l.split(': ') for l in open('/proc/%d/io' % pid).read().splitlines())}
    except (OSError, ValueError):
        return None

def postgres():
    pm = int(open(os.path.join(d, 'pg', 'data', 'postmaster.pid')).readline())
    own = stat(pm)
    if own is None:
        sys.exit('capacity: the postmaster (pid %d) is not running' % pm)
    cpu, live, rd, wr, io_ok, per, wper = own[1] + own[2], 0, 0, 0, True, {}, {}
    pio = io(pm)
    if pio is None:
        io_ok = False
    else:
        rd, wr = pio['read_bytes'], pio['write_bytes']
    for e in os.listdir('/proc'):
        if not e.isdigit():
            continue
        s = stat(int(e))
        if s is None or s[0] != pm:
            continue
        live += 1
        cpu += s[1] + s[2]     # s[2]: its own reaped children (none for backends)
        per[e] = (s[1] + s[2]) / TICK
        cio = io(int(e))
        if cio is None:
            io_ok = False
        elif io_ok:
            rd += cio['read_bytes']; wr += cio['write_bytes']
            wper[e] = cio['write_bytes']
    return {'cpu': cpu / TICK, 'processes': live + 1, 'per': per, 'wper': wper,
            'read': rd if io_ok else None, 'write': wr if io_ok else None}

def service(name):
    try:
        pid = int(open(os.path.join(d, name + '.pid')).read())
    except (OSError, ValueError):
        return None
    s = stat(pid)
    if s is None:
        return None
    hwm = 0
    for line in open('/proc/%d/status' % pid):
        if line.startswith('VmHWM:'):
            hwm = int(line.split()[1]) * 1024
    return {'pid': pid, 'cpu': s[1] / TICK, 'hwm': hwm}

def machine():
    f = open('/proc/stat').readline().split()[1:]
    v = [int(x) for x in f]
    return (sum(v[:8]) - v[3] - v[4]) / TICK          # all but idle and iowait

def db():
    (lsn, size, xact, ins, upd, dele), = psql(
        "SELECT pg_current_wal_lsn(), pg_database_size(current_database()), xact_commit,"
        " tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = current_database()")
    (records, fpi, walb, writes, syncs), = psql(
        "SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync FROM pg_stat_wal")
    tables = {r[0]: int(r[1]) for r in psql(
        "SELECT coalesce(i.inhparent::regclass::text, c.relname), sum(pg_total_relation_size(c.oid))"
        " FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid"
        " WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace GROUP BY 1")}
    (bufs,), = psql("SELECT buffers_checkpoint + buffers_clean + buffers_backend FROM pg_stat_bgwriter")
    names = {r[0]: r[1] for r in psql(
        "SELECT pid, coalesce(nullif(application_name, ''), backend_type) FROM pg_stat_activity")}
    return {'bufs': int(bufs), 'names': names, 'lsn': lsn, 'size': int(size), 'xact': int(xact), 'ins': int(ins), 'upd': int(upd),
            'del': int(dele), 'wal_records': int(records), 'wal_fpi': int(fpi), 'wal_bytes': int(walb),
            'wal_write': int(writes), 'wal_sync': int(syncs), 'tables': tables}

def snapshot():
    return {'t': time.time(), 'pg': postgres(), 'svc': {n: service(n) for n in SERVICES},
            'machine': machine(), 'load': open('/proc/loadavg').read().split()[0], 'db': db()}

begin_file = os.path.join(d, 'capacity.begin.json')
load_file = os.path.join(d, 'capacity.load')

def services_up():
    """True when control shows settle and notify up (the stack's check)."""
    r = subprocess.run([os.path.join(d, 'billctl'), '--json', '--timeout', '2000', '--retries', '0',
                        'services'], capture_output=True, text=True)
    if r.returncode != 0:
        return False
    try:
        doc = json.loads(r.stdout)
    except ValueError:
        return False
    up = set()
    def walk(x):          # the instances, wherever billctl's document holds them
        if isinstance(x, dict):
            if 'service' in x and x.get('up') is True:
                up.add(x['service'])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(doc)
    return {'settle', 'notify'} <= up

if phase == 'begin':
    psql('CHECKPOINT')        # the data generation's deferred writes are not the cycle's
    # A checkpoint of a million subscribers' data can stall heartbeats on a
    # loaded machine: start only when control sees settle and notify up again.
    deadline = time.time() + 120
    while not services_up():
        if time.time() > deadline:
            sys.exit('capacity: settle and notify not both up at control 120 s after the CHECKPOINT')
        time.sleep(1)
    snap = snapshot()
    # The load sampler ends by itself when the stack directory goes away.
    sampler = subprocess.Popen(
        ['bash', '-c', 'while [ -d "$1" ]; do cut -d" " -f1 /proc/loadavg >>"$2" || exit 0; sleep 5; done',
         'capacity-load', d, load_file],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    snap['sampler'] = sampler.pid
    json.dump(snap, open(begin_file, 'w'))
    sys.exit(0)
if phase != 'end':
    sys.exit('capacity: --probe begin|end, not %r' % phase)

b = json.load(open(begin_file))
e = snapshot()
try:
    os.kill(b['sampler'], signal.SIGTERM)
except OSError:
    pass
psql('CHECKPOINT')
after_ckpt = postgres()
(bills,), = psql("SELECT count(*) FROM bill")
(notices, delivered), = psql("SELECT count(*), count(*) FILTER (WHERE state = 'DELIVERED') FROM delivery")
(attempts,), = psql("SELECT count(*) FROM delivery_attempt")
bills, notices, delivered, attempts = int(bills), int(notices), int(delivered), int(attempts)
try:
    loads = [float(x) for x in open(load_file).read().split()]
except OSError:
    loads = []

n = int(os.environ.get('CAPACITY_SUBSCRIBERS', '0')) or bills
k = 1e6 / n
wall = e['t'] - b['t']
bd, ed = b['db'], e['db']
wal = int(psql("SELECT pg_wal_lsn_diff('%s', '%s')" % (ed['lsn'], bd['lsn']))[0][0])
out = []
def p(s=''):
    out.append(s)
def row(what, v, unit='', per=True, fmt='{:,.1f}'):
    if v is None:
        p('  %-58s %16s' % (what, 'n/a'))
        return
    a = fmt.format(v) + unit
    p('  %-58s %16s %18s' % (what, a, (fmt.format(v * k) + unit) if per else ''))
MB = 1 << 20

p('capacity: %s subscribers, %s bills, %s notices (%s delivered), %s send attempts'
  % tuple(format(x, ',') for x in (n, bills, notices, delivered, attempts)))
p('  from `run start` to every notice final: %.1f s wall' % wall)
p('  load average: %s at the start, %s at the end; every 5 s during the cycle: min %.1f, mean %.1f, max %.1f (%d samples)'
  % (b['load'], e['load'], min(loads or [0]), sum(loads) / max(len(loads), 1), max(loads or [0]), len(loads)))
busy = e['machine'] - b['machine']
p('  whole machine: %.0f CPU-s busy of %.0f available (%d cores x wall), other users\' work included'
  % (busy, os.cpu_count() * wall, os.cpu_count()))
p()
p('  %-58s %16s %18s' % ('', 'measured', 'per 1M subscribers'))
row('wall time (s)', wall)
row('PostgreSQL CPU-s (all server processes)', e['pg']['cpu'] - b['pg']['cpu'])
def by_whom(key, total, rest, prefix, scale):
    """Splits a server total by the live processes' application_name
    (backend_type for PostgreSQL's own workers); what is left over belongs
    to processes that exited during the cycle."""
    by, known = {}, 0
    for pid, v in e['pg'][key].items():
        who = ed['names'].get(pid, 'other (not in pg_stat_activity)')
        v -= b['pg'][key].get(pid, 0)
        by[who] = by.get(who, 0) + v
        known += v
    by[rest] = total - known
    for who, v in sorted(by.items(), key=lambda x: -x[1]):
        if v / scale >= 0.05:
            row(prefix + who, v / scale)
by_whom('per', e['pg']['cpu'] - b['pg']['cpu'], 'exited during the cycle (autovacuum, short sessions)', '  ', 1)
for name in SERVICES:
    sb, se = b['svc'].get(name), e['svc'].get(name)
    label = name + (' (the mock provider: a test double)' if name == 'mock' else '')
    if not sb or not se or sb['pid'] != se['pid']:
        row(label + ' CPU-s (restarted or not running)', None)
        continue
    row(label + ' CPU-s', se['cpu'] - sb['cpu'])
    if name != 'mock':
        row(name + ' peak RSS, VmHWM (MB, not scaled)', se['hwm'] / MB, per=False)
p('  PostgreSQL server processes at the end: %d (postmaster, workers, backends)' % e['pg']['processes'])
row('WAL written, pg_wal_lsn_diff (MB)', wal / MB)
row('  WAL records (pg_stat_wal)', ed['wal_records'] - bd['wal_records'], fmt='{:,.0f}')
row('  full-page images', ed['wal_fpi'] - bd['wal_fpi'], fmt='{:,.0f}')
row('  WAL writes', ed['wal_write'] - bd['wal_write'], fmt='{:,.0f}')
row('  WAL syncs (fsyncs)', ed['wal_sync'] - bd['wal_sync'], fmt='{:,.0f}')
row('transactions committed (pg_stat_database)', ed['xact'] - bd['xact'], fmt='{:,.0f}')
row('rows inserted', ed['ins'] - bd['ins'], fmt='{:,.0f}')
row('rows updated', ed['upd'] - bd['upd'], fmt='{:,.0f}')
row('rows deleted', ed['del'] - bd['del'], fmt='{:,.0f}')
p('  database size: %.0f MB before, %.0f MB after' % (bd['size'] / MB, ed['size'] / MB))
row('database growth (MB)', (ed['size'] - bd['size']) / MB)
row('data pages written, pg_stat_bgwriter buffers x 8 kB (MB)', (ed['bufs'] - bd['bufs']) * 8192 / MB)
if e['pg']['write'] is None or b['pg']['write'] is None:
    row('bytes written by the server processes (no /proc/PID/io)', None)
else:
    row('written by the server processes during the cycle (MB)', (e['pg']['write'] - b['pg']['write']) / MB)
    by_whom('wper', e['pg']['write'] - b['pg']['write'], 'exited during the cycle, or the postmaster',
            '    by ', MB)
    row('  plus the CHECKPOINT right after it (MB)', (after_ckpt['write'] - e['pg']['write']) / MB)
    row('read by the server processes during the cycle (MB)', (e['pg']['read'] - b['pg']['read']) / MB)
p('  growth of the largest tables, indexes and TOAST included (MB):')
grow = sorted(((ed['tables'].get(t, 0) - bd['tables'].get(t, 0), t) for t in ed['tables']), reverse=True)
for g, t in grow[:8]:
    if g > 0:
        row('    ' + t, g / MB)
text = '\n'.join(out) + '\n'
dest = os.environ.get('CAPACITY_OUT')
if dest:
    open(dest, 'w').write(text)
else:
    sys.stdout.write(text)
PY
