# Sourced (not run on its own) by bench/notify.sh, and by any benchmark whose
# database holds a finished notify run: the FLOOR of notify's durable writes
# (issue 17) and the CPU and WAL probes used to compare notify with it.
# Expects PGHOST/PGPORT/PGUSER/PGDATABASE of a throwaway cluster on this
# machine (scripts/pgtmp, scripts/stack) and nothing else writing to it.
#
# The floor: PostgreSQL alone writes the rows a cycle's notices leave behind,
# in their final state, into the same tables with the same indexes,
# constraints and triggers: delivery (whose delivery_count statement
# triggers write the counters), delivery_attempt, and delivery_content (the
# content kept for attempts that may be repeated). The rows are dumped from
# the finished run, the three tables emptied (TRUNCATE; the
# counters go with it), a CHECKPOINT taken, and the rows COPYed back in
# transactions of FLOOR_BATCH deliveries (default 5000) with their attempts
# and contents: one COPY per table per transaction, no other statement.
#
#   notify_floor_dump DIR          dump the rows (untimed)
#   notify_floor DIR [LABEL]       the timed floor; prints it (wall time,
#                                  rows/s, wall and backend CPU per table, the
#                                  counter triggers' time, CPU, WAL) and writes
#                                  DIR/floor.result (floor_ms, CPU, WAL)
#   notify_floor_variants DIR      the floor again with one thing taken away
#                                  each time (each secondary index, each
#                                  unique constraint, the foreign keys, the
#                                  counter triggers) and in other batch sizes;
#                                  ends with the tables loaded as they were.
#   nf_proc_cpu_ms PID             a process's user+system CPU in ms
#   nf_pg_cpu_ms                   the whole cluster's CPU in ms so far
#                                  (postmaster, live children, reaped ones)
#   nf_lsn                         the current WAL position
#   nf_wal_bytes LSN0 LSN1         bytes of WAL between two positions

nf_ticks=$(getconf CLK_TCK)
# The three tables at once: TRUNCATE delivery CASCADE alone would miss the
# other two while their foreign keys are dropped. The counters go with them.
nf_truncate="TRUNCATE delivery, delivery_attempt, delivery_content CASCADE"

# utime + stime of a process, ms (0 when it is gone). The command name in
# /proc/PID/stat may hold spaces: fields are counted after its ')'.
nf_proc_cpu_ms() {
  awk -v t="$nf_ticks" '{ sub(/^.*\) /, ""); printf "%d\n", ($12 + $13) * 1000 / t }' \
      "/proc/$1/stat" 2>/dev/null || echo 0
}

# CPU used by the whole cluster since it started, ms: the postmaster's own
# and its reaped children's (autovacuum workers, ended sessions), plus every
# live child's (backends, WAL writer, checkpointer). A difference of two
# readings is what PostgreSQL spent in between, whoever asked for it.
nf_pg_cpu_ms() {
  local data pm kids
  data=$(psql -X -At -c "SHOW data_directory")
  pm=$(head -n 1 "$data/postmaster.pid")
  kids=$(ps -o pid= --ppid "$pm" | tr -s ' \n' ' ')
  # A child may end between the listing and the reading: cat skips it.
  # shellcheck disable=SC2046,SC2086
  { cd /proc || exit; cat "$pm/stat" $(printf "%s/stat " $kids) 2>/dev/null; true; } \
    | awk -v t="$nf_ticks" -v pm="$pm" '
        { pid = $1; sub(/^.*\) /, ""); s += $12 + $13; if (pid == pm) s += $14 + $15 }
        END { printf "%d\n", s * 1000 / t }'
}

nf_lsn() { psql -X -At -c "SELECT pg_current_wal_lsn ()"; }
nf_wal_bytes() { psql -X -At -c "SELECT pg_wal_lsn_diff ('$2', '$1')::bigint"; }

# Runs SQL commands (each argument one -c), without TRUNCATE's cascade notices.
nf_sql() {
  local a=(-c "SET client_min_messages = warning") c
  for c in "$@"; do [ -z "$c" ] || a+=(-c "$c"); done
  psql -X -q -v ON_ERROR_STOP=1 "${a[@]}"
}

# Dumps delivery, delivery_attempt and delivery_content, each row prefixed
# with its delivery's rank in id order (0-based), so that any batch size can
# be cut from the same files: a delivery and its attempts and content always
# land in the same transaction, and a fallback (a later id) never before the
# email it falls back from.
notify_floor_dump() {
  local dir=$1
  psql -X -q -v ON_ERROR_STOP=1 <<SQL
CREATE TEMP TABLE nf_rank AS SELECT id, row_number () OVER (ORDER BY id) - 1 AS r FROM delivery;
CREATE UNIQUE INDEX ON nf_rank (id);
ANALYZE nf_rank;
\copy (SELECT k.r, d.* FROM delivery d JOIN nf_rank k USING (id) ORDER BY d.id) TO '$dir/nf_delivery.copy'
\copy (SELECT k.r, a.* FROM delivery_attempt a JOIN nf_rank k ON k.id = a.delivery_id ORDER BY a.id) TO '$dir/nf_attempt.copy'
\copy (SELECT k.r, c.* FROM delivery_content c JOIN nf_rank k ON k.id = c.delivery_id ORDER BY c.delivery_id) TO '$dir/nf_content.copy'
SQL
  psql -X -At -F ' ' -c "SELECT (SELECT count(*) FROM delivery), (SELECT count(*) FROM delivery_attempt),
                                (SELECT count(*) FROM delivery_content)" >"$dir/nf_rows"
}

# Cuts the dump into transactions of BATCH deliveries (0: one transaction
# for everything) and writes the psql script that loads them, timed per
# statement and marked per table (@deliveries, @attempts, @content, @commit).
nf_script() {   # DIR BATCH
  local dir=$1 batch=$2 t
  rm -rf "$dir/nf_b"; mkdir "$dir/nf_b"
  for t in delivery attempt content; do
    # Appended (>>): attempts in id order are not in delivery order, so a
    # batch's file is opened again and again, and must not be emptied.
    awk -F '\t' -v b="$batch" -v out="$dir/nf_b/$t." '
        { f = out (b > 0 ? int($1 / b) : 0)
          if (f != last) { if (last != "") close(last); last = f }
          print substr($0, length($1) + 2) >> f }' "$dir/nf_$t.copy"
  done
  # After each statement the backend's CPU so far (its /proc/self/stat,
  # marked @probe so that the probe's own time is not the table's): on a
  # loaded machine CPU per table says more than wall time per table.
  local probe="\\echo @probe
SELECT 'cpu ' || pg_read_file ('/proc/self/stat');"
  {
    printf '%s\n' '\timing on'
    echo "SET track_functions = 'pl';"
    echo "$probe"
    local k=0
    while [ -f "$dir/nf_b/delivery.$k" ]; do
      printf '%s\n' '\echo @commit'
      echo 'BEGIN;'
      printf '%s\n' '\echo @deliveries'
      echo "\\copy delivery FROM '$dir/nf_b/delivery.$k'"
      echo "$probe"
      if [ -f "$dir/nf_b/attempt.$k" ]; then
        printf '%s\n' '\echo @attempts'
        echo "\\copy delivery_attempt FROM '$dir/nf_b/attempt.$k'"
        echo "$probe"
      fi
      if [ -f "$dir/nf_b/content.$k" ]; then
        printf '%s\n' '\echo @content'
        echo "\\copy delivery_content FROM '$dir/nf_b/content.$k'"
        echo "$probe"
      fi
      printf '%s\n' '\echo @commit'
      echo 'COMMIT;'
      echo "$probe"
      k=$((k + 1))
    done
    printf '%s\n' '\timing off'
    printf '%s\n' '\echo @end'
    # The function statistics are flushed before the next query is read.
    echo "SELECT pg_stat_force_next_flush () IS NULL AS flushed \\gset"
    echo "SELECT 'trigger_ms ' || coalesce (sum (total_time), 0)::bigint FROM pg_stat_user_functions"
    echo "  WHERE funcname IN ('delivery_count_insert', 'delivery_count_update');"
    # This session's backend did all of the floor's work: its own CPU.
    echo "SELECT 'backend_stat ' || pg_read_file ('/proc/self/stat');"
  } >"$dir/nf_load.sql"
  echo "$k" >"$dir/nf_batches"
}

# Total time of the counter triggers (track_functions), ms, so far.
nf_trigger_ms() {
  psql -X -At -c "SELECT coalesce (sum (total_time), 0)::bigint FROM pg_stat_user_functions
                   WHERE funcname IN ('delivery_count_insert', 'delivery_count_update')"
}

# Empties the three tables (the counters go with them), checkpoints, loads
# the script timed, and writes DIR/nf_last: ms, cluster CPU ms, backend CPU
# ms, WAL bytes, counter-trigger ms, and ms per table.
nf_load() {   # DIR
  local dir=$1 c0 c1 l0 l1 f0 t0 t1
  nf_sql "$nf_truncate" "CHECKPOINT"
  f0=$(nf_trigger_ms); c0=$(nf_pg_cpu_ms); l0=$(nf_lsn); t0=$(date +%s%3N)
  psql -X -q -At -v ON_ERROR_STOP=1 -f "$dir/nf_load.sql" >"$dir/nf_times" \
    || { echo "notify floor: loading the rows failed" >&2; return 1; }
  t1=$(date +%s%3N); l1=$(nf_lsn); c1=$(nf_pg_cpu_ms)
  awk -v ms=$((t1 - t0)) -v cpu=$((c1 - c0)) -v wal="$(nf_wal_bytes "$l0" "$l1")" \
      -v f0="$f0" -v ticks="$nf_ticks" '
      /^@probe/ { t = "probe"; next }
      /^@/ { k = t = substr($0, 2); next }
      /^Time: / { ms_of[t] += $2; next }
      /^cpu / { sub(/^.*\) /, ""); now = ($12 + $13) * 1000 / ticks
                if (seen) cpu_of[k] += now - prev; prev = now; seen = 1; next }
      /^trigger_ms / { trig = $2 - f0 }
      /^backend_stat / { sub(/^.*\) /, ""); be = ($12 + $13) * 1000 / ticks }
      END { printf "%d %d %d %d %d %.0f %.0f %.0f %.0f %.0f %.0f %.0f %.0f\n", ms, cpu, be, wal, trig,
                   ms_of["deliveries"], ms_of["attempts"], ms_of["content"], ms_of["commit"],
                   cpu_of["deliveries"], cpu_of["attempts"], cpu_of["content"], cpu_of["commit"] }' \
      "$dir/nf_times" >"$dir/nf_last"
}

notify_floor() {   # DIR [LABEL]
  local dir=$1 batch=${FLOOR_BATCH:-5000} d a c ms cpu be wal trig md ma mc mk
  [ -f "$dir/nf_delivery.copy" ] || notify_floor_dump "$dir"
  read -r d a c <"$dir/nf_rows"
  nf_script "$dir" "$batch"
  echo "== floor: the same rows written by PostgreSQL alone ${2:+($2) }— COPY in $(cat "$dir/nf_batches") transaction(s)" \
       "of $batch deliveries with their attempts and contents"
  nf_load "$dir" || return 1
  read -r ms cpu be wal trig md ma mc mk cd ca cc ck <"$dir/nf_last"
  awk -v ms="$ms" -v d="$d" -v a="$a" -v c="$c" -v cpu="$cpu" -v be="$be" -v wal="$wal" \
      -v trig="$trig" -v md="$md" -v ma="$ma" -v mc="$mc" -v mk="$mk" \
      -v cd="$cd" -v ca="$ca" -v cc="$cc" -v ck="$ck" 'BEGIN {
      printf "  rows: %d deliveries (final state), %d attempts, %d contents; counters by the delivery_count triggers\n", d, a, c
      printf "floor: %.1f s (%.0f rows/s, %.0f deliveries/s)\n", ms / 1000, (d + a + c) * 1000 / ms, d * 1000 / ms
      printf "  by table, wall: deliveries %.1f s (of which the counter trigger %.1f s), attempts %.1f s, contents %.1f s, begin/commit %.1f s\n",
             md / 1000, trig / 1000, ma / 1000, mc / 1000, mk / 1000
      printf "  by table, backend CPU: deliveries %.1f s, attempts %.1f s, contents %.1f s, begin/commit %.1f s\n",
             cd / 1000, ca / 1000, cc / 1000, ck / 1000
      printf "  CPU: floor backend %.1f s (%.0f ms per 1,000 deliveries); whole cluster %.1f s (%.0f ms per 1,000)\n",
             be / 1000, be * 1000 / d, cpu / 1000, cpu * 1000 / d
      printf "  WAL: %.1f MB, %.0f bytes per delivery\n", wal / 1048576, wal / d }'
  printf 'floor_ms=%s\nfloor_be_cpu_ms=%s\nfloor_pg_cpu_ms=%s\nfloor_wal=%s\nfloor_deliveries=%s\n' \
         "$ms" "$be" "$cpu" "$wal" "$d" >"$dir/floor.result"
}

# One variant: CHANGE (SQL) applied, the floor loaded, UNDO (SQL) applied
# after the tables are emptied again. Prints one line against BASE_MS.
nf_variant() {   # DIR NAME BASE_MS CHANGE UNDO
  local dir=$1 name=$2 base=$3 base_be ms cpu be wal trig md ma mc mk cd ca _
  base_be=$(sed -n 's/^floor_be_cpu_ms=//p' "$dir/floor.result")
  nf_sql "$nf_truncate" "$4" || return 1
  nf_load "$dir" || return 1
  nf_sql "$nf_truncate" "$5" || return 1
  read -r ms cpu be wal trig md ma mc mk cd ca _ <"$dir/nf_last"
  awk -v n="$name" -v ms="$ms" -v b="$base" -v be="$be" -v bb="$base_be" -v wal="$wal" -v cd="$cd" \
      -v ca="$ca" -v d="$(cut -d ' ' -f 1 "$dir/nf_rows")" 'BEGIN {
      printf "  %-56s %6.1f s %+6.1f %% | backend CPU %5.1f s %+6.1f %% (deliveries %5.1f s, attempts %5.1f s) | WAL %4.0f B/delivery\n",
             n, ms / 1000, (ms - b) * 100 / b, be / 1000, (be - bb) * 100 / bb, cd / 1000, ca / 1000, wal / d }'
}

# The secondary indexes of the three tables (no constraint owns them), as
# name|definition lines.
nf_indexes() {
  psql -X -At -c "SELECT i.indexrelid::regclass, pg_get_indexdef (i.indexrelid) FROM pg_index i
                   WHERE i.indrelid IN ('delivery'::regclass, 'delivery_attempt'::regclass,
                                        'delivery_content'::regclass)
                     AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
                   ORDER BY 1"
}

# The constraints of TYPE (u: unique, f: foreign key) the three tables
# declare, as table|name|definition lines (a key to a partitioned table
# also has one child per partition: conparentid leaves those out).
nf_constraints() {   # TYPE
  psql -X -At -c "SELECT conrelid::regclass, conname, pg_get_constraintdef (oid) FROM pg_constraint
                   WHERE contype = '$1' AND conparentid = 0
                     AND conrelid IN ('delivery'::regclass, 'delivery_attempt'::regclass,
                                      'delivery_content'::regclass)
                   ORDER BY 1, 2"
}

notify_floor_variants() {   # DIR (after notify_floor)
  local dir=$1 batch=${FLOOR_BATCH:-5000} base name def tbl con
  base=$(sed -n 's/^floor_ms=//p' "$dir/floor.result")
  echo "== floor variants: one thing taken away at a time (same rows, batches of $batch; % against the floor's wall time and backend CPU)"
  # Secondary indexes: the indexes of the tables that no constraint owns.
  while IFS='|' read -r name def; do
    nf_variant "$dir" "without index $name" "$base" "DROP INDEX $name" "$def" || return 1
  done < <(nf_indexes)
  # Unique constraints (G3/G5 need them: notify's ON CONFLICT names them),
  # measured for what they cost, not as candidates for removal.
  while IFS='|' read -r tbl con def; do
    nf_variant "$dir" "without unique $con" "$base" "ALTER TABLE $tbl DROP CONSTRAINT $con" \
               "ALTER TABLE $tbl ADD CONSTRAINT $con $def" || return 1
  done < <(nf_constraints u)
  # Every foreign key of the three tables, at once.
  local drops="" adds=""
  while IFS='|' read -r tbl con def; do
    drops+="ALTER TABLE $tbl DROP CONSTRAINT $con; "
    adds+="ALTER TABLE $tbl ADD CONSTRAINT $con $def; "
  done < <(nf_constraints f)
  nf_variant "$dir" "without the foreign keys" "$base" "$drops" "$adds" || return 1
  nf_variant "$dir" "without the counter triggers" "$base" \
             "ALTER TABLE delivery DISABLE TRIGGER delivery_count_insert" \
             "ALTER TABLE delivery ENABLE TRIGGER delivery_count_insert" || return 1
  # Everything but the primary keys.
  local all_drop="$drops" all_add=""
  while IFS='|' read -r name def; do
    all_drop+="DROP INDEX $name; "; all_add+="$def; "
  done < <(nf_indexes)
  while IFS='|' read -r tbl con def; do
    all_drop+="ALTER TABLE $tbl DROP CONSTRAINT $con; "; all_add+="ALTER TABLE $tbl ADD CONSTRAINT $con $def; "
  done < <(nf_constraints u)
  nf_variant "$dir" "primary keys only (no trigger, FK, index)" "$base" \
             "$all_drop ALTER TABLE delivery DISABLE TRIGGER delivery_count_insert" \
             "$all_add $adds ALTER TABLE delivery ENABLE TRIGGER delivery_count_insert" || return 1
  # Batch sizes: notify's flush (500 rows) and one transaction for all.
  for b in 500 0; do
    nf_script "$dir" "$b"
    nf_variant "$dir" "batches of $([ "$b" = 0 ] && echo "all (one transaction)" || echo "$b")" \
               "$base" "" "" || return 1
  done
  # The floor once more, as measured first: the spread between the two is
  # the noise of this machine; it also leaves the tables as they were.
  nf_script "$dir" "$batch"
  nf_load "$dir" || return 1
  read -r ms _ be _ <"$dir/nf_last"
  awk -v ms="$ms" -v b="$base" -v be="$be" -v bb="$(sed -n 's/^floor_be_cpu_ms=//p' "$dir/floor.result")" 'BEGIN {
      printf "  %-58s %6.1f s %+6.1f %% | backend CPU %5.1f s %+6.1f %%\n", "the floor again, as first (the noise)",
             ms / 1000, (ms - b) * 100 / b, be / 1000, (be - bb) * 100 / bb }'
}
