#!/usr/bin/env bash
# bench-vs-libsoccr.sh measures libgosoccr.so side by side with CRIU's own
# libsoccr (built by test/libsoccr-ref.sh), through the same C benchmark
# (test/c/bench_soccr.c) built twice: build/test/bench_soccr against
# build/libgosoccr.so and include/soccr.h, build/test/bench_soccr_ref against
# CRIU's libsoccr.so and CRIU's soccr.h. Before measuring it checks that the
# two headers give the same struct layouts and constants.
#
# Two cases: n=1000 connections with 16 KiB unread each way, and n=9000
# with 4 KiB each way. Each case runs both binaries ROUNDS times, alternately
# (ours first in odd rounds, CRIU's first in even ones), each run in a network
# namespace of its own (unshare -n). Then each binary runs once more per
# phase under strace -f -c (bench_soccr -p setup|checkpoint|restore), and
# the difference between phases, divided by n, is the number of system
# calls per connection of checkpoint and of restore: the socket-related
# calls (as test/syscalls.sh counts them), and all calls (for libgosoccr.so
# they include the Go runtime's own: futex, nanosleep, signals).
#
# It prints a markdown table on standard output: per-connection checkpoint
# and restore time (median of the rounds, and their range), the ratio
# ours/libsoccr of the medians, peak RSS (ru_maxrss, median) and the system
# calls. The benchmark's own output of every run is kept in
# build/bench-vs-libsoccr/.
#
# Usage: test/bench-vs-libsoccr.sh [ROUNDS]     (as root; ROUNDS default 5)
# Environment: GOSOCCR_BENCH_STRACE=0 skips the system-call counts.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
rounds=${1:-5}
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [ROUNDS]" >&2; exit 2; }
out=build/bench-vs-libsoccr
CC=${CC:-gcc}
CFLAGS=(-Wall -Werror -O2)
cases=("1000 16384" "9000 4096")
bulk_n=9000 # the case also run with the bulk calls

say() { printf 'bench-vs-libsoccr: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

[[ $(id -u) == 0 ]] || die "needs root (TCP repair mode, network namespaces)"
strace=${GOSOCCR_BENCH_STRACE:-1}
if [[ $strace == 1 ]] && ! command -v strace >/dev/null; then
	die "strace is missing (make deps)"
fi

# 1. Both libraries, both binaries.
say "make build"
make -s build >&2 || die "make build failed"
so=$(test/libsoccr-ref.sh | tail -n1) || die "test/libsoccr-ref.sh failed"
ref=$(dirname "$so")
mkdir -p build/test "$out"
"$CC" "${CFLAGS[@]}" -Iinclude -o build/test/bench_soccr test/c/bench_soccr.c \
	-Lbuild -lgosoccr -Wl,-rpath,"$root/build" || die "build of bench_soccr failed"
"$CC" "${CFLAGS[@]}" -I"$ref/include" -o build/test/bench_soccr_ref test/c/bench_soccr.c \
	-L"$ref" -lsoccr -Wl,-rpath,"$ref" || die "build of bench_soccr_ref failed"

# 2. The same ABI: layouts and constants printed through either header.
cat >"$out/layout.c" <<'EOF'
#include <stddef.h>
#include <stdio.h>
#include "soccr.h"
#define F(f) printf("sk_data.%s %zu %zu\n", #f, offsetof(struct libsoccr_sk_data, f), \
		    sizeof(((struct libsoccr_sk_data *)0)->f))
int main(void)
{
	F(state); F(inq_len); F(inq_seq); F(outq_len); F(outq_seq); F(unsq_len);
	F(opt_mask); F(mss_clamp); F(snd_wscale); F(rcv_wscale); F(timestamp);
	F(flags); F(snd_wl1); F(snd_wnd); F(max_window); F(rcv_wnd); F(rcv_wup);
	printf("sizeof sk_data %zu, addr %zu, repair_opt %zu, repair_window %zu\n",
	       sizeof(struct libsoccr_sk_data), sizeof(union libsoccr_addr),
	       sizeof(struct tcp_repair_opt), sizeof(struct tcp_repair_window));
	printf("MEM_EXCL %d FLAGS_WINDOW %d LOG %d %d MARK %#x QUEUES %d %d %d %d\n",
	       SOCCR_MEM_EXCL, SOCCR_FLAGS_WINDOW, SOCCR_LOG_ERR, SOCCR_LOG_DBG, SOCCR_MARK,
	       TCP_NO_QUEUE, TCP_RECV_QUEUE, TCP_SEND_QUEUE, TCP_QUEUES_NR);
	return 0;
}
EOF
"$CC" -Iinclude -o "$out/layout" "$out/layout.c" && "$out/layout" >"$out/layout.ours" ||
	die "layout check: build with include/soccr.h failed"
"$CC" -I"$ref/include" -o "$out/layout_ref" "$out/layout.c" && "$out/layout_ref" >"$out/layout.ref" ||
	die "layout check: build with CRIU's soccr.h failed"
diff -u "$out/layout.ref" "$out/layout.ours" >&2 || die "include/soccr.h and CRIU's soccr.h differ in layout or constants"
say "ABI: struct layouts and constants of include/soccr.h match CRIU's soccr.h"

# 3. File descriptors: 9000 connections hold 18000 sockets.
want=20000
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $want ]]; then
	ulimit -Hn "$want" 2>/dev/null || true
	hard=$(ulimit -Hn)
fi
ulimit -n "$hard"
for c in "${cases[@]}"; do
	read -r n q <<<"$c"
	[[ $hard == unlimited || $hard -ge $((2 * n + 100)) ]] ||
		die "RLIMIT_NOFILE hard limit $hard is too low for n=$n (needs $((2 * n + 100)))"
done

bins=(bench_soccr bench_soccr_ref)
name() { [[ $1 == bench_soccr ]] && echo gosoccr || echo "libsoccr (CRIU 4.2.1)"; }

# run BIN N Q ROUND: one timed run; its output in $out. BIN bench_soccr_bulk
# is bench_soccr -b (gosoccr_checkpoint_close_all and gosoccr_restore_all).
run() {
	local f=$out/$1.n$2.q$3.r$4.txt bin=$1 flags=()
	if [[ $bin == bench_soccr_bulk ]]; then bin=bench_soccr flags=(-b); fi
	if ! timeout 600 unshare -n "build/test/$bin" "${flags[@]}" -n "$2" -q "$3" >"$f" 2>&1; then
		cat "$f" >&2
		die "build/test/$1 -n $2 -q $3 failed"
	fi
	grep -q '^verified: ' "$f" || die "$f: no verified line"
}

# summ FILES... PATTERN: median, min and max of the number after PATTERN.
summ() {
	local re=${*: -1}
	sed -n "s/^$re \\([0-9.]*\\).*/\\1/p" "${@:1:$#-1}" | sort -g | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "? ? ?"; exit }
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			print m, v[1], v[NR]
		}'
}

# calls BIN N Q PHASE: "socket all": system calls of a run stopping after PHASE.
net='^(socket|bind|connect|setsockopt|getsockopt|ioctl|recvfrom|recvmsg|sendto|sendmsg|getsockname|getpeername|close|shutdown|fcntl|accept4)$'
calls() {
	local f=$out/strace.$1.n$2.q$3.$4.txt
	timeout 1200 unshare -n strace -f -c -o "$f" "build/test/$1" -n "$2" -q "$3" -p "$4" >/dev/null 2>&1 ||
		die "strace of build/test/$1 -n $2 -q $3 -p $4 failed (table in $f)"
	awk -v re="$net" '
		NR > 2 && $1 !~ /^-/ && $NF != "total" { all += $4; if ($NF ~ re) s += $4 }
		END { print s + 0, all + 0 }' "$f"
}

# 4. The timed runs (those of an earlier call go first: the medians are of
# this call's rounds only).
rm -f "$out"/*.r[0-9]*.txt
for c in "${cases[@]}"; do
	read -r n q <<<"$c"
	say "n=$n, $q bytes each way: $rounds rounds of both"
	for ((r = 1; r <= rounds; r++)); do
		if ((r % 2)); then order=("${bins[@]}"); else order=("${bins[1]}" "${bins[0]}"); fi
		for b in "${order[@]}"; do
			run "$b" "$n" "$q" "$r"
		done
		# The bulk calls, for the case the issue sets their target on.
		if ((n == bulk_n)); then run bench_soccr_bulk "$n" "$q" "$r"; fi
	done
done

# 5. The system calls per connection and phase.
declare -A sys
if [[ $strace == 1 ]]; then
	for c in "${cases[@]}"; do
		read -r n q <<<"$c"
		say "n=$n, $q bytes each way: strace -f -c of each phase"
		for b in "${bins[@]}"; do
			v0=$(calls "$b" "$n" "$q" setup) || exit 1
			v1=$(calls "$b" "$n" "$q" checkpoint) || exit 1
			v2=$(calls "$b" "$n" "$q" restore) || exit 1
			read -r s0 a0 <<<"$v0"
			read -r s1 a1 <<<"$v1"
			read -r s2 a2 <<<"$v2"
			sys[$b.$n.ckpt]=$(awk -v s="$((s1 - s0))" -v a="$((a1 - a0))" -v n="$n" 'BEGIN { printf "%.1f (all %.1f)", s / n, a / n }')
			sys[$b.$n.rest]=$(awk -v s="$((s2 - s1))" -v a="$((a2 - a1))" -v n="$n" 'BEGIN { printf "%.1f (all %.1f)", s / n, a / n }')
		done
	done
fi

# 6. The table.
fmt() { awk -v m="$1" -v lo="$2" -v hi="$3" 'BEGIN { printf "%.1f (%.1f–%.1f)", m, lo, hi }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f×", a / b; else print "?" }'; }
echo "| case | library | checkpoint µs/conn, median (range) | restore µs/conn, median (range) | peak RSS KiB, median | checkpoint syscalls/conn | restore syscalls/conn |"
echo "|---|---|---|---|---|---|---|"
declare -A med
for c in "${cases[@]}"; do
	read -r n q <<<"$c"
	for b in "${bins[@]}"; do
		files=("$out/$b.n$n.q$q".r*.txt)
		read -r cm clo chi < <(summ "${files[@]}" 'checkpoint: [0-9]* connections,')
		read -r rm rlo rhi < <(summ "${files[@]}" 'restore: [0-9]* connections,')
		read -r pm _ _ < <(summ "${files[@]}" 'peak RSS:')
		med[$b.c]=$cm med[$b.r]=$rm med[$b.p]=$pm
		echo "| n=$n, $((q / 1024)) KiB each way | $(name "$b") | $(fmt "$cm" "$clo" "$chi") | $(fmt "$rm" "$rlo" "$rhi") | $pm | ${sys[$b.$n.ckpt]:-–} | ${sys[$b.$n.rest]:-–} |"
	done
	echo "| | ours/libsoccr | $(ratio "${med[bench_soccr.c]}" "${med[bench_soccr_ref.c]}") | $(ratio "${med[bench_soccr.r]}" "${med[bench_soccr_ref.r]}") | $(ratio "${med[bench_soccr.p]}" "${med[bench_soccr_ref.p]}") | | |"
	if ((n == bulk_n)); then
		files=("$out/bench_soccr_bulk.n$n.q$q".r*.txt)
		read -r cm clo chi < <(summ "${files[@]}" 'checkpoint: [0-9]* connections,')
		read -r rm rlo rhi < <(summ "${files[@]}" 'restore: [0-9]* connections,')
		read -r pm _ _ < <(summ "${files[@]}" 'peak RSS:')
		echo "| | gosoccr bulk (gosoccr_checkpoint_close_all, gosoccr_restore_all; $(nproc) cores) | $(fmt "$cm" "$clo" "$chi") | $(fmt "$rm" "$rlo" "$rhi") | $pm | | |"
		total=$(awk -v a="$cm" -v b="$rm" 'BEGIN { print a + b }')
		reft=$(awk -v a="${med[bench_soccr_ref.c]}" -v b="${med[bench_soccr_ref.r]}" 'BEGIN { print a + b }')
		echo "| | bulk/libsoccr, checkpoint + restore | $(ratio "$total" "$reft") ($total vs $reft µs/conn) | | | | |"
	fi
done
echo
echo "Rounds: $rounds per case, alternating, each \`unshare -n build/test/BIN -n N -q BYTES\`; syscalls: \`strace -f -c\` of \`-p setup|checkpoint|restore\`, phase minus the phase before, over n; socket-related calls, and all calls in parentheses. Runs in $out/."
