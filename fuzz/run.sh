#!/bin/sh
# Runs each fuzz target given (all six by default) for SECONDS of wall time (default 720) on one core,
# from the seeds in fuzz/seeds/ and the corpus kept in fuzz/corpus/ (not committed), with the target's
# dictionary. A crash ends that target's run and is kept in fuzz/artifacts/TARGET/ with the log; one
# summary line per target is printed: wall and CPU seconds, executions, corpus size, findings.
# Usage, from the repository root (needs `cargo install cargo-fuzz` and a nightly toolchain):
#   fuzz/run.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")"
secs=${1:-720}
[ $# -gt 0 ] && shift
targets=${*:-consent_request event_request site_toml site_form enrich_url client_headers}
cargo +nightly fuzz build -O
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-gnu/release"
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t" "seeds/$t"
    case $t in
        consent_request|event_request) opts="-dict=dicts/json.dict" ;;
        site_toml) opts="-dict=dicts/toml.dict -max_len=65536" ;;
        site_form) opts="-dict=dicts/toml.dict -max_len=16384" ;;
        *) opts="" ;;
    esac
    log="artifacts/$t/run.log"
    start=$(date +%s)
    /usr/bin/time -f "cpu %U" -o "artifacts/$t/time" "$bin/$t" "corpus/$t" "seeds/$t" $opts \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="artifacts/$t/" \
        -print_final_stats=1 >"$log" 2>&1 || true
    wall=$(( $(date +%s) - start ))
    cpu=$(sed -n 's/^cpu //p' "artifacts/$t/time" | tail -1)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    found=$(ls "artifacts/$t" | grep -E '^(crash|leak|timeout|oom|slow-unit)-' || true)
    echo "$t: ${wall}s wall, ${cpu:-?}s CPU, ${execs:-?} execs, corpus $(ls "corpus/$t" | wc -l), findings: ${found:-none}"
done
