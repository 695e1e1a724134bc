#!/usr/bin/env bash
# summary.sh prints the closing line of `make test`: how many Go tests
# (subtests included), C tests and benchmark smoke runs passed, failed and
# were skipped, from their logs. Exits 1 if any failed.
# Usage: test/summary.sh GO_TEST_LOG C_TEST_LOG BENCH_LOG
set -euo pipefail
go_log=$1 c_log=$2 bench_log=$3
count() { grep -cE "$1" "$2" || true; }
gp=$(count '^\s*--- PASS' "$go_log")
gf=$(count '^\s*--- FAIL' "$go_log")
gs=$(count '^\s*--- SKIP' "$go_log")
read -r cp cf < <(awk '/^[0-9]+ passed, [0-9]+ failed$/ { print $1, $3 }' "$c_log" | tail -n 1)
cs=$(count '^SKIP ' "$c_log")
bp=$(count '^Benchmark.*-[0-9]+\s+[0-9]+' "$bench_log")
bf=$(count '^--- FAIL' "$bench_log")
echo "Go tests: $gp passed, $gf failed, $gs skipped; C tests: ${cp:-0} passed, ${cf:-?} failed, $cs skipped; benchmarks: $bp ran once, $bf failed"
passed=$((gp + ${cp:-0} + bp))
failed=$((gf + ${cf:-1} + bf))
skipped=$((gs + cs))
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
