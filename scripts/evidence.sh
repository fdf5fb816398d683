#!/usr/bin/env bash
# Regenerate docs/evidence.md: the long versions of the guarantees' checks (the test suite
# keeps short ones), each run on the local stack, its figures copied with the command that
# produced them. About 55 minutes on two cores: the 30-minute soak runs in the background
# meanwhile (its load is a trickle: ten times England's peak hour), so every other step runs
# beside a live pipeline.
#   scripts/evidence.sh            every step
#   scripts/evidence.sh fuzz hold  only the named steps (the others' rows are their last run's)
# EVIDENCE_FUZZ_SECONDS (default 60) is each fuzz target's budget; EVIDENCE_MATCHER_EVENTS
# (default 300000) the events replayed through 1, 2 and 3 matcher instances;
# EVIDENCE_SOAK_MINUTES (default 30) the soak's length. Each step's whole output is kept in
# target/evidence/<step>.log. Exits non-zero if any step failed; the document is written either
# way and says which. EVIDENCE_REUSE=1 runs nothing and writes the document again from the logs
# (and exit statuses) of the last run. The rows `hold`, `pages` and `hostile` are read from the
# whole suite's run (`scan`).
source "$(dirname "$0")/lib.sh"

fuzz_seconds="${EVIDENCE_FUZZ_SECONDS:-60}"
matcher_events="${EVIDENCE_MATCHER_EVENTS:-300000}"
soak_minutes="${EVIDENCE_SOAK_MINUTES:-30}"
out="$ROOT/target/evidence"
mkdir -p "$out"
cd "$ROOT"
wanted=("$@")
failed=0
rows=()

# The document as it stands: a step not run in this clone (no log under target/evidence)
# keeps its row from there, so running some steps does not blank the others.
previous="$(cat "$ROOT/docs/evidence.md" 2>/dev/null || true)"

# Whether step NAME runs this time.
runs() {
  [[ -z "${EVIDENCE_REUSE:-}" ]] || return 1
  [[ ${#wanted[@]} -eq 0 || " ${wanted[*]} " =~ " $1 " ]]
}

# run NAME COMMAND...: run COMMAND if step NAME runs, keeping its output and exit status.
run() {
  local name=$1 started; shift
  runs "$name" || return 0
  log "evidence: $name: $*"
  started=$(date +%s)
  if "$@" >"$out/$name.log" 2>&1; then status="passed"; else status="**failed** (exit $?)"; fi
  echo "$status in $(( $(date +%s) - started )) s at $(git rev-parse --short HEAD)" >"$out/$name.status"
}

# row FROM WHAT PATTERN SHOWN: a row for what step FROM's output shows, the lines matching
# PATTERN (an extended regex), with the command SHOWN. A step never run in this clone keeps the
# row the document has for WHAT.
row() {
  local from=$1 what=$2 pattern=$3 shown=$4 status result kept
  if [[ ! -f "$out/$from.status" ]]; then
    kept="$(grep -F -- "| $what | " <<<"$previous" | head -n 1 || true)"
    if [[ -n "$kept" ]]; then
      rows+=("$kept")
      return 0
    fi
  fi
  status=$(cat "$out/$from.status" 2>/dev/null || echo "not run")
  [[ $status != \*\*failed* ]] || failed=1
  # -o: a service's log line can be interleaved with the figure's line in the same file.
  result=$(grep -aoE "$pattern" "$out/$from.log" 2>/dev/null | sed -E 's/\x1b\[[0-9;]*m//g; s/\t/ · /g; s/\|/\\|/g' \
    | awk 'NF { $1 = $1; printf "%s%s", sep, $0; sep = "<br>" }' || true)
  rows+=("| $what | $status<br>${result:-(no figure printed)} | \`$shown\` |")
}

# step NAME WHAT PATTERN COMMAND...: run, then its row.
step() {
  local name=$1 what=$2 pattern=$3; shift 3
  run "$name" "$@"
  row "$name" "$what" "$pattern" "$*"
}

# Up once before anything runs beside anything else.
runs soak && "$ROOT/scripts/stack.sh" up
soak=(scripts/soak.sh --minutes "$soak_minutes" --png docs/soak.png --csv docs/soak.csv)
soaking=""
if runs soak; then
  run soak "${soak[@]}" &
  soaking=$!
fi

step overdue "Overdue flag latency: due instant to the flag on \`continuity.flags\` and on the worklist, 100,800 open cases, 4,800 due at one instant (target p99 < 1 s). Resolution latency: a treatment start's \`202\` to its flag's resolution on the topic, 1,000 starts a second through ingest (target p99 < 1 s). Worklist pages on 300,000 cases" \
  "(due instant|national database|worklist page|treatment start)[^{]*" \
  scripts/bench-worklist.sh --days 21 --per-day 4800 --steps 3 --seconds 10
step history "Ten years of England's history (31,050 people a year) replayed into the matcher, paced by its lag (\`continuity::replay\`, at most 2,000 messages waiting), while the overdue and resolution latencies above are measured again (targets p99 < 1 s)" \
  "(due instant|treatment start|history replayed)[^{]*" \
  scripts/bench-worklist.sh --cases 2000 --open 100 --users 2 --seconds 1 --days 21 --per-day 4800 --steps 3 --history-years 10
for instances in 1 2 3; do
  step "matcher-$instances" "Matcher throughput with $instances instance(s) on the same partitions, $matcher_events events, and batches retried" \
    "^(matcher end to end|batch retries|apply latency|time in apply|CPU per event|threads ready to run|matchers. sessions).*" \
    env BENCH_INSTANCES="$instances" scripts/bench-matcher.sh "$matcher_events"
done
step sigkill "SIGKILL of the matcher at 10 random points, and the broker killed and restarted under a running matcher: cases, outcomes and notified flags equal the rules applied to the whole stream, no flag or case event published twice; a survivor takes over a killed instance's partitions" \
  "events applied (after each SIGKILL|when the broker was killed)[^{]*|[0-9]+ flag messages[^{]*|takeover after SIGKILL[^{]*|^test (sigkill|the_survivor|the_broker)[a-z_]* \.\.\. [a-zA-Z]+|^test result.*" \
  env CONTINUITY_CRASH_KILLS=10 scripts/test.sh -p continuity-matcher --test crash -- --nocapture
step faults "The whole pipeline under faults, each service its own process, a source sending ~20,000 events through ingest and resending what got no answer: ingest and the reporter each killed with SIGKILL at 10 random points; PostgreSQL restarted, then cut off by a network partition for 60 s; the broker's disk and the database's disk full (a tmpfs of their own). Each ends as an uninterrupted run (cases, outcomes, flags, nothing published twice; the reporter's pages, recorded figures and distinct messages)" \
  "ingest killed after[^{]*|reporter killed[^{]*|[0-9]+ performance messages[^{]*|PostgreSQL restarted after[^{]*|(Broker|Database)'s disk full after[^{]*|^source: [^{]*|^test [a-z_]+ \.\.\. [a-zA-Z]+|^test result.*|NOT RUN[^{]*" \
  env CONTINUITY_FAULT_KILLS=10 CONTINUITY_REQUIRE_EVERY_FAULT=1 scripts/test.sh -p continuity-e2e --test faults -- --nocapture
# The whole suite once; the rows after it are read from its output.
step scan "Personal identifiers (NOMS, CRN, NHS number, attributor, planted value) in the whole suite's output (every service's log lines, in process or not) and in every error body a service answered a test with" \
  "^[^ ]*(test-output|error-bodies)\.log: [0-9]+ lines|[0-9]+ lines scanned, [0-9]+ identifiers found|^test result: FAILED.*" \
  scripts/test.sh
row scan "Notifications held while the matcher reads a backlog: a flag raised and settled meanwhile is withheld and counted, one still raised is delivered after" \
  "^test a_flag_settled[a-z_]* \.\.\. [a-zA-Z]+" \
  "scripts/test.sh (tests/tests/worklist.rs)"
row scan "Hostile HTTP input to ingest: oversized, 40,000-deep and invalid UTF-8 bodies, 50 slow clients cut off at the head deadline while others are served, header floods answered 431, credential guessing (rate limited and counted), SQL and template metacharacters carried verbatim, Schemathesis" \
  "^test (requests_without|sql_and_template|slow_clients|json_nested|invalid_utf|schemathesis|batches_answer|sources_are)[a-z_0-9]* \.\.\. [a-zA-Z]+" \
  "scripts/test.sh (tests/tests/ingest.rs)"
row scan "SQL, template and format metacharacters in a caseworker's note: stored as typed, shown back escaped, never executed" \
  "^test actions_are_recorded[a-z_]* \.\.\. [a-zA-Z]+" \
  "scripts/test.sh (tests/tests/worklist.rs)"
step clock "A host clock moved an hour forward and back, and one moved and left: the services' time runs on by the monotonic clock until the host clock agrees again, or for the 15-minute hold, so no flag is raised early or held late (the guard, with readings passed in; the host clock is not moved here)" \
  "^test clock::tests::[a-z_]+ \.\.\. [a-zA-Z]+|^test result.*" \
  cargo test -p continuity-runtime --lib clock
step fuzz "Coverage-guided fuzzing for a fixed budget per target (target · runs · seconds · coverage edges · corpus files · crashes)" \
  "^(events|hmpps|extract|avro)	.*" \
  scripts/fuzz.sh "$fuzz_seconds"

if [[ -n "$soaking" ]]; then
  log "evidence: waiting for the soak"
  wait "$soaking" || true
fi
row soak "Soak: ingest, the matcher, the reporter and the worklist (release builds, each its own process, system clock) for $soak_minutes minutes at ten times England's peak hour (derived from the generator), one event a request through ingest, beside the other steps: resident memory of each process, the matcher's lag, the outbox's oldest message, error log lines ([plot](soak.png), [samples](soak.csv))" \
  "^(national year|sent|each event|matcher lag|RSS|log)[^{]*" \
  "${soak[*]}"

{
  cat <<EOF
# Evidence

Written by \`scripts/evidence.sh\` on $(date -u +%Y-%m-%d) on $(nproc) cores ($(uname -sr));
edit the script, not this file. Each row's command ran on the local stack
(\`scripts/stack.sh\`), at the commit its result names; its whole output is in
\`target/evidence/\`. Latencies in milliseconds unless marked. Figures vary between runs on a
shared machine by about a third; compare rows of one run with each other.

| Check | Result | Command |
|---|---|---|
EOF
  printf '%s\n' "${rows[@]}"
  cat <<'EOF'

## Not yet measured

These checks of issue 22 are not built; nothing above stands in for them.

- The host clock itself moved under the running system: the guard is tested with readings
  passed in. Moving this machine's clock would move every other process's (the broker's and
  PostgreSQL's too). Tried: Debian's libfaketime preloaded into the matcher alone
  (`libfaketimeMT.so.1`, its offset in a file, the monotonic clock left alone). With an offset
  of an hour the matcher logged `the host clock jumped` (3,599 s) and stayed ready; but a due
  instant is a London midnight, hours from whenever the test runs, and with an offset of
  hours set from the start the matcher's Kafka clients never read a message (its threads
  wait on the realtime clock), so the end-to-end test is not built.
EOF
} >"$ROOT/docs/evidence.md"
log "wrote docs/evidence.md"
exit "$failed"
