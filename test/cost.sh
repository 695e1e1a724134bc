#!/usr/bin/env bash
# cost.sh says how the cost of checkpoint and restore grows: it runs
# BenchmarkCost (soccr/cost_bench_test.go) over its whole grid, n = 100,
# 1,000, 9,000 connections × 0, 4 KiB, 64 KiB, 4 MiB queued, one by one
# (single) and with CheckpointAll/RestoreAll (bulk), COUNT times each, and
# keeps the median of every figure. It writes
#   build/cost/bench.log  the benchmark's output
#   build/cost/cost.csv   one row per cell; a cell this machine cannot hold
#                         has its reason in the last column, "n/a (...)"
#   build/cost/cost.md    the tables: rows n, columns queue sizes
#   build/cost/cost.png   the plot (test/plot-cost.sh)
# Usage: test/cost.sh [COUNT]     (as root; COUNT 7 by default)
set -euo pipefail
cd "$(dirname "$0")/.."

count=${1:-7}
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
out=build/cost
mkdir -p "$out"

say() { printf 'cost: %s\n' "$*" >&2; }

say "BenchmarkCost, whole grid, $count runs of each cell (-benchtime=1x -count=$count)"
t0=$(date +%s)
# The terminal shows the result lines and the reasons of skips.
set +e
GOSOCCR_COST=1 "$GO" test -run '^$' -bench '^BenchmarkCost$' -benchtime=1x -count="$count" \
	-timeout 60m -v ./soccr 2>&1 | tee "$out/bench.log" |
	grep --line-buffered -E '^(Benchmark\S+-[0-9]+\s|--- (SKIP|FAIL)|\s+cost_bench_test\.go:|FAIL|panic|ok )'
status=${PIPESTATUS[0]}
set -e
if [ "$status" != 0 ]; then
	say "go test failed, see $out/bench.log"
	exit 1
fi
secs=$(($(date +%s) - t0))
say "grid done in ${secs} s"
if ! grep -qE '^BenchmarkCost/\S+-[0-9]+\s+[0-9]+\s' "$out/bench.log"; then
	say "no cell ran: $(grep -m 1 -oE '(skipped|n/a).*' "$out/bench.log" || echo "see $out/bench.log")"
	exit 1
fi

# bench.log to cost.csv: the median of each metric over the runs of a cell.
# With -v, a skipped cell's reason ("n/a (...)") comes just before its
# "--- SKIP:" line.
awk -v OFS=, '
function median(s,    a, k, i, j, t) {
	k = split(s, a, " ")
	for (i = 2; i <= k; i++)
		for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) {
			t = a[j]; a[j] = a[j-1]; a[j-1] = t
		}
	return k % 2 ? a[(k+1)/2] : (a[k/2] + a[k/2+1]) / 2
}
function cell(name,    c) {
	sub(/^BenchmarkCost\//, "", name)
	sub(/-[0-9]+$/, "", name)
	if (!(name in seen)) { seen[name] = 1; order[++cells] = name }
	return name
}
/^BenchmarkCost\/.*-[0-9]+[ \t]+[0-9]+[ \t]/ {
	c = cell($1)
	runs[c]++
	for (i = 3; i < NF; i += 2) v[c, $(i+1)] = v[c, $(i+1)] " " $i
	next
}
/^[ \t]+cost_bench_test\.go:[0-9]+: n\/a \(/ { sub(/^[^:]*:[0-9]+: /, ""); why = $0; next }
/^--- SKIP: BenchmarkCost\// { c = cell($3); if (!(c in na)) na[c] = why; next }
END {
	print "n,queue,mode,ways,runs,ckpt_us_per_conn,restore_us_per_conn,total_ms,ckpt_ms,restore_ms,peak_rss_mib,queued_mib,note"
	for (i = 1; i <= cells; i++) {
		c = order[i]
		split(c, p, "/"); sub(/n=/, "", p[1]); sub(/queue=/, "", p[2])
		n = p[1]; q = p[2]; mode = p[3]
		if (!runs[c]) { print n, q, mode, "", 0, "", "", "", "", "", "", "", "\"" na[c] "\""; continue }
		ck = median(v[c, "ckpt-µs/conn"]); rs = median(v[c, "restore-µs/conn"])
		note = median(v[c, "ways"]) == 1 ? "\"one way\"" : ""
		printf "%s,%s,%s,%d,%d,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%s\n", n, q, mode,
			median(v[c, "ways"]), runs[c], ck, rs, median(v[c, "total-ms"]), ck * n / 1000, rs * n / 1000,
			median(v[c, "peak-RSS-MiB"]), median(v[c, "queued-MiB"]), note
	}
}' "$out/bench.log" >"$out/cost.csv"

# cost.csv to cost.md.
read -r mlow mpress mhigh </proc/sys/net/ipv4/tcp_mem
page=$(getconf PAGESIZE)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
	echo "# How the cost of checkpoint and restore grows"
	echo
	echo "BenchmarkCost (soccr/cost_bench_test.go), written by test/cost.sh on $(date -u +%Y-%m-%d):"
	echo "n loopback connections, each with the queue's bytes unread in the client's receive"
	echo "queue and in the server's (\"two ways\"), checkpointed and restored one by one"
	echo "(single: Pause, SaveWith, Release, close; Restore) or with soccr.CheckpointAll and"
	echo "soccr.RestoreAll (bulk, over GOMAXPROCS threads). Median of $count runs of each cell."
	echo "Linux $(uname -r), $(nproc) cores ($cpu), $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, $("$GO" env GOVERSION);"
	echo "net.ipv4.tcp_mem = $mlow $mpress $mhigh pages ($((mlow * page >> 20)) / $((mpress * page >> 20)) / $((mhigh * page >> 20)) MiB). Grid run time: ${secs} s."
	awk -F, -v page="$page" -v mlow="$mlow" '
	function q2s(q) { return q >= 1048576 ? q / 1048576 " MiB" : q >= 1024 ? q / 1024 " KiB" : q }
	function note(r,    i) { for (i = 0; i < 12; i++) r = substr(r, index(r, ",") + 1); gsub(/"/, "", r); return r }
	NR == 1 { next }
	{
		if (!($1 in hn)) { hn[$1] = 1; ns[++nn] = $1 }
		if (!($2 in hq)) { hq[$2] = 1; qs[++nq] = $2 }
		k = $1 SUBSEP $2 SUBSEP $3
		why[k] = note($0); ways[k] = $4
		ck[k] = $6; rs[k] = $7; tot[k] = $8; rss[k] = $11; held[k] = $12
	}
	function num(x) { return x >= 100 ? sprintf("%.0f", x) : x >= 10 ? sprintf("%.1f", x) : x > 0 ? sprintf("%.2f", x) : "0" }
	function head(title,    j) {
		printf "\n## %s\n\n| n |", title
		for (j = 1; j <= nq; j++) printf " queue %s |", q2s(qs[j])
		printf "\n|---:|"
		for (j = 1; j <= nq; j++) printf "---:|"
		printf "\n"
	}
	# table prints one table; what: "us" (ckpt / restore per conn), "total", "rss".
	function table(title, what, mode,    i, j, k, s) {
		head(title)
		for (i = 1; i <= nn; i++) {
			printf "| %s |", ns[i]
			for (j = 1; j <= nq; j++) {
				k = ns[i] SUBSEP qs[j] SUBSEP mode
				if (ways[k] == "") s = why[k]
				else if (what == "us") s = num(ck[k]) " / " num(rs[k])
				else if (what == "total") s = num(tot[k])
				else s = num(rss[k]) " / " num(held[k])
				if (ways[k] == 1) { s = s " ¹"; one = 1 }
				printf " %s |", s
			}
			printf "\n"
		}
	}
	END {
		table("Checkpoint / restore, µs per connection: single", "us", "single")
		table("Checkpoint / restore, µs per connection: bulk", "us", "bulk")
		table("Checkpoint + restore of all n connections, ms: single", "total", "single")
		table("Checkpoint + restore of all n connections, ms: bulk", "total", "bulk")
		table("Peak RSS / bytes the saved states hold, MiB: single", "rss", "single")
		table("Peak RSS / bytes the saved states hold, MiB: bulk", "rss", "bulk")
		# Linear growth: the total time from one n to the next, next to
		# the ratio of the n.
		printf "\n## Growth of the total time from one n to the next (linear: as n grows)\n\n| mode, n |"
		for (j = 1; j <= nq; j++) printf " queue %s |", q2s(qs[j])
		printf "\n|---|"
		for (j = 1; j <= nq; j++) printf "---:|"
		printf "\n"
		for (m = 1; m <= 2; m++) {
			mode = m == 1 ? "single" : "bulk"
			for (i = 2; i <= nn; i++) {
				printf "| %s, %s → %s (×%g) |", mode, ns[i-1], ns[i], ns[i] / ns[i-1]
				for (j = 1; j <= nq; j++) {
					a = ns[i-1] SUBSEP qs[j] SUBSEP mode; b = ns[i] SUBSEP qs[j] SUBSEP mode
					printf " %s |", (ways[a] == "" || ways[b] == "" || tot[a] == 0) ? "n/a" : sprintf("×%.1f", tot[b] / tot[a])
				}
				printf "\n"
			}
		}
		if (one)
			printf "\n¹ Queue one way only, in the client'"'"'s receive queue: two ways would take more TCP memory than net.ipv4.tcp_mem lets TCP use unregulated (%d MiB). The checkpoint saves the same bytes either way: the client'"'"'s own bytes are acknowledged, so its send queue is empty.\n", mlow * page / 1048576
		printf "\nn/a: the cell was skipped, for the reason given (see costPlan in soccr/cost_bench_test.go).\n"
	}' "$out/cost.csv"
} >"$out/cost.md"
say "wrote $out/cost.csv and $out/cost.md"

test/plot-cost.sh "$out/cost.csv" "$out/cost.png"
