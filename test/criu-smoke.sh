#!/usr/bin/env bash
# criu-smoke.sh checks that the CRIU test/install-criu.sh provides dumps and
# restores, in a fresh network namespace (unshare -n, lo up):
#   1. a small process tree (a shell loop that counts into a file): dump,
#      wait until it is gone, restore detached, and see it count on;
#   2. a process holding an established TCP connection over loopback (a perl
#      echo server; the client is this script, through bash's /dev/tcp):
#      one line echoed, then a line left unread in the server's receive
#      queue, `criu dump --tcp-established`, `criu restore
#      --tcp-established -d`, and the queued line and a new one echoed on
#      the same connection.
# Every criu call runs under `timeout 60` with a -v4 log in its images
# folder; on failure the log's errors and tail are printed.
#
# Network lock: $GOSOCCR_CRIU_NETWORK_LOCK, else nftables (CRIU's default,
# iptables, runs iptables-restore, which Debian 12 does not install by
# default; the nftables lock runs in criu itself, through libnftables).
#
# Needs root. Without it, it skips (exit 77), or fails when
# GOSOCCR_REQUIRE_ROOT=1. Usage: test/criu-smoke.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [[ $(id -u) != 0 ]]; then
	if [[ ${GOSOCCR_REQUIRE_ROOT:-} == 1 ]]; then
		echo "FAIL criu-smoke: needs root"
		exit 1
	fi
	echo "SKIP criu-smoke: needs root"
	exit 77
fi

if [[ ${1:-} != --in-netns ]]; then
	criu=$("$here/install-criu.sh" | tail -n 1)
	[[ -n $criu && -x $criu ]] || {
		echo "FAIL criu-smoke: test/install-criu.sh gave no criu"
		exit 1
	}
	export GOSOCCR_SMOKE_CRIU=$criu
	exec unshare -n bash "$0" --in-netns
fi

CRIU=$GOSOCCR_SMOKE_CRIU
LOCK=${GOSOCCR_CRIU_NETWORK_LOCK:-nftables}
work=$(mktemp -d /tmp/criu-smoke.XXXXXX)
failed=0

cleanup() {
	local f
	for f in "$work"/*.pid; do
		[[ -s $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null
	done
	if ((failed)); then
		echo "criu-smoke: images and logs kept in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

fail() {
	failed=1
	echo "FAIL criu-smoke: $*"
	exit 1
}

ms() { echo $((${EPOCHREALTIME/./} / 1000)); }

# spawn CMD...: runs CMD in a new session, with stdin, stdout and stderr on
# /dev/null and no other file open, as an orphan (not this shell's child),
# so that CRIU sees a tree of its own. CMD writes its pid to a file.
spawn() {
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			if ((fd > 2)); then eval "exec $fd>&-"; fi
		done
		setsid "$@" </dev/null >/dev/null 2>&1 &
	)
}

# waitfor SECONDS TEST...: polls TEST every 0.1 s.
waitfor() {
	local n=$(($1 * 10))
	shift
	while ((n-- > 0)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
nonempty() { [[ -s $1 ]]; }
gone() { ! kill -0 "$1" 2>/dev/null; }

# criu NAME DIR ARGS...: runs criu ARGS with -D DIR and a log DIR/NAME.log.
criu() {
	local name=$1 dir=$2 t0 rc=0
	shift 2
	t0=$(ms)
	timeout 60 "$CRIU" "$@" -D "$dir" -o "$name.log" -v4 >"$dir/$name.out" 2>&1 || rc=$?
	if ((rc)); then
		echo "criu $name failed (exit $rc$( ((rc == 124)) && echo ', timed out')): criu $*"
		echo "--- its output:"
		cat "$dir/$name.out"
		if [[ -f $dir/$name.log ]]; then
			echo "--- errors and warnings in $dir/$name.log:"
			grep -E 'Error|Warn' "$dir/$name.log" | head -n 40 || true
			echo "--- the end of $dir/$name.log:"
			tail -n 40 "$dir/$name.log"
		fi
		fail "criu $name"
	fi
	echo "  criu $* ($(($(ms) - t0)) ms)"
}

ip link set lo up
echo "criu-smoke: criu $("$CRIU" --version | sed -n 's/^Version: *//p') ($CRIU), network lock $LOCK, in $work"

# 1. A process tree.
img=$work/loop
mkdir "$img"
spawn sh -c 'echo $$ >"$1"; i=0; while :; do i=$((i + 1)); echo $i >"$2.new"; mv "$2.new" "$2"; sleep 0.05; done' \
	sh "$work/loop.pid" "$work/count"
waitfor 5 nonempty "$work/count" || fail "the loop did not start"
pid=$(cat "$work/loop.pid")
criu dump "$img" dump -t "$pid"
waitfor 10 gone "$pid" || fail "process $pid still runs after the dump"
before=$(cat "$work/count")
criu restore "$img" restore -d
kill -0 "$pid" 2>/dev/null || fail "process $pid is not there after the restore"
counting() { (($(cat "$work/count") > before + 2)); }
waitfor 5 counting || fail "the restored loop does not count (stuck at $(cat "$work/count"))"
echo "ok 1 - a process tree: dumped at $before, counts on after the restore ($(cat "$work/count"))"
kill -KILL "$pid"
rm -f "$work/loop.pid"

# 2. An established TCP connection.
img=$work/tcp
mkdir "$img"
port=5555
spawn perl -MIO::Socket::INET -e '
	my ($port, $pidfile) = @ARGV;
	my $l = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $port,
		Listen => 1, ReuseAddr => 1) or die "listen: $!";
	open(my $f, ">", $pidfile) or die; print $f $$; close $f;
	my $c = $l->accept or die "accept: $!";
	close $l;
	$c->autoflush(1);
	while (my $line = <$c>) {
		if ($line =~ /^sleep (\d+)/) { sleep $1; next }
		print $c "echo: $line";
	}' "$port" "$work/tcp.pid"
waitfor 5 nonempty "$work/tcp.pid" || fail "the echo server did not start"
pid=$(cat "$work/tcp.pid")
exec {sock}<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to 127.0.0.1:$port"
# exchange SEND WANT: sends a line, or none when SEND is empty, and reads one.
exchange() {
	local line=
	[[ -z $1 ]] || echo "$1" >&"$sock"
	read -r -t 10 line <&"$sock" || true
	[[ $line == "$2" ]] || fail "sent '$1', wanted '$2', got '$line'"
}
exchange before "echo: before"
# The server sleeps; "queued" waits in its receive queue through the dump.
echo "sleep 3" >&"$sock"
sleep 0.2
echo queued >&"$sock"
criu dump "$img" dump -t "$pid" --tcp-established --network-lock "$LOCK"
waitfor 10 gone "$pid" || fail "process $pid still runs after the dump"
criu restore "$img" restore -d --tcp-established
kill -0 "$pid" 2>/dev/null || fail "process $pid is not there after the restore"
exchange "" "echo: queued"
exchange after "echo: after"
echo "ok 2 - an established TCP connection: the queued line and a new one echoed after the restore"
exec {sock}>&-
echo "PASS criu-smoke"
