#!/usr/bin/env bash
# Counts the system calls per connection of checkpoint and of restore, for
# the Go engine (test/soccrbench) and, where built, the C ABI benchmark
# (build/test/bench_soccr): each phase is run under strace -f -c, and the
# counts of a run that stops one phase earlier are subtracted.
# Usage: test/syscalls.sh [N] [QUEUE] [--unsent]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
queue=${2:-16384}
extra=()
[ "${3:-}" = --unsent ] && extra=(-unsent)
GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
command -v strace >/dev/null || { echo "syscalls.sh: strace is missing (make deps)" >&2; exit 1; }
mkdir -p build
"$GO" build -o build/soccrbench ./test/soccrbench

# Socket-related calls only: the Go runtime's own calls (futex,
# nanosleep, signals for preemption) vary from run to run.
net='^(socket|bind|connect|setsockopt|getsockopt|ioctl|recvfrom|recvmsg|sendto|sendmsg|getsockname|getpeername|close|shutdown|fcntl|accept4)$'

# total PHASE: the number of socket calls of a run that stops after PHASE.
total() {
	strace -f -c -o build/strace.$1.txt build/soccrbench -n "$n" -queue "$queue" "${extra[@]}" -phase "$1" >/dev/null
	awk -v re="$net" 'NR > 2 && $NF ~ re { s += $4 } END { print s }' build/strace.$1.txt
}

setup=$(total setup)
ckpt=$(total checkpoint)
rst=$(total restore)
per() { awk -v a="$1" -v b="$2" -v n="$n" 'BEGIN { printf "%.1f", (a - b) / n }'; }
echo "Go engine, n=$n, queue=$queue ${extra[*]}:"
echo "  checkpoint: $(per "$ckpt" "$setup") system calls per connection"
echo "  restore:    $(per "$rst" "$ckpt") system calls per connection"
echo "  (strace -c tables in build/strace.{setup,checkpoint,restore}.txt)"
