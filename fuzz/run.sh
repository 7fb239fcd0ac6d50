#!/bin/sh
# Runs each fuzz target given (all five by default) for SECONDS (default 720) on one core, from the seeds
# in fuzz/seeds/ and the corpus kept in fuzz/corpus/ (not committed), with the target's dictionary.
# Crashes land in fuzz/artifacts/TARGET/; a summary line per target is printed at the end.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]   (from the repository root; needs cargo-fuzz and nightly)
set -eu
cd "$(dirname "$0")"
secs=${1:-720}
[ $# -gt 0 ] && shift
targets=${*:-consent_request event_request site_toml enrich_url client_headers}
cargo +nightly fuzz build -O >/dev/null
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release"
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    case $t in
        consent_request|event_request) dict="-dict=dicts/json.dict" ;;
        site_toml) dict="-dict=dicts/toml.dict -max_len=65536" ;;
        *) dict="" ;;
    esac
    log="artifacts/$t/run.log"
    # A crash ends the run of that target and is kept; the others still run.
    "$bin/$t" "corpus/$t" "seeds/$t" $dict -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1 || true
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    found=$(ls "artifacts/$t" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    echo "$t: ${secs}s, ${execs:-?} execs (${rate:-?}/s), corpus $(ls "corpus/$t" | wc -l), findings: ${found:-none}"
done
