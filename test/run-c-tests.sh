#!/bin/sh
# run-c-tests.sh: build the C tests of the libsoccr ABI against
# build/libgosoccr.so and run them, one line per test, then "N passed, M failed".
#
#   test/run-c-tests.sh            build and run the tests
#   test/run-c-tests.sh bench [N] [PHASE]
#                                  build and run test/c/bench_soccr.c
#
# Privileged tests create their own network namespace. Without root they
# skip with a reason; with GOSOCCR_REQUIRE_ROOT=1 a skip is a failure.
# Needs build/libgosoccr.so (go build -buildmode=c-shared ... ./plugin).
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
lib="$root/build"
out="$root/build/test"
src="$root/test/c"
CC=${CC:-gcc}
CFLAGS="-Wall -Werror -O2 -I$root/include"
LDFLAGS="-L$lib -lgosoccr -Wl,-rpath,$lib"

if [ ! -f "$lib/libgosoccr.so" ]; then
	echo "run-c-tests: $lib/libgosoccr.so missing: build it first" >&2
	exit 2
fi
mkdir -p "$out"

if [ "${1:-}" = bench ]; then
	shift
	$CC $CFLAGS -o "$out/bench_soccr" "$src/bench_soccr.c" $LDFLAGS || exit 1
	exec "$out/bench_soccr" "$@"
fi

passed=0 failed=0 skipped=0
log="$out/last.log"

# result NAME STATUS: STATUS 0 pass, 77 skip, else fail. The test's output
# is in $log; a failure prints it.
result() {
	if [ "$2" -eq 0 ]; then
		echo "PASS $1"
		passed=$((passed + 1))
	elif [ "$2" -eq 77 ]; then
		echo "SKIP $1: $(sed -n 's/^SKIP: //p' "$log" | head -n 1)"
		skipped=$((skipped + 1))
	else
		echo "FAIL $1 (status $2)"
		sed 's/^/    /' "$log"
		failed=$((failed + 1))
	fi
}

# compile NAME CC ARGS...: a build that must succeed.
compile() {
	name=$1
	shift
	"$@" >"$log" 2>&1
	result "$name" $?
}

# run NAME PROG ARGS...
run() {
	name=$1
	shift
	timeout 180 "$@" >"$log" 2>&1
	result "$name" $?
}

# Compile-time ABI checks, several header setups.
abi="$src/test_abi.c"
compile abi/build-glibc $CC $CFLAGS -o "$out/test_abi" "$abi" $LDFLAGS
[ -x "$out/test_abi" ] && run abi/link-and-run "$out/test_abi"
compile abi/glibc-strict-c11 $CC $CFLAGS -std=c11 -o "$out/test_abi_c11" "$abi" $LDFLAGS
compile abi/no-repair-decls-in-libc $CC $CFLAGS -std=c11 -I"$src/fakeinc" -o "$out/test_abi_fake" "$abi" $LDFLAGS
compile abi/caller-config-has $CC $CFLAGS -DCONFIG_HAS_TCP_REPAIR -DCONFIG_HAS_TCP_REPAIR_WINDOW \
	-o "$out/test_abi_config" "$abi" $LDFLAGS
# The caller's CONFIG_HAS_TCP_REPAIR must be honoured even where it is
# wrong: soccr.h then declares no tcp_repair_opt, and this must not build.
if $CC $CFLAGS -std=c11 -I"$src/fakeinc" -DCONFIG_HAS_TCP_REPAIR -fsyntax-only "$abi" >"$log" 2>&1; then
	echo "soccr.h declared struct tcp_repair_opt although the caller defined CONFIG_HAS_TCP_REPAIR" >"$log"
	result abi/caller-config-has-honoured 1
elif grep -q 'tcp_repair_opt' "$log"; then
	result abi/caller-config-has-honoured 0
else
	result abi/caller-config-has-honoured 1
fi
if command -v musl-gcc >/dev/null 2>&1; then
	compile abi/musl musl-gcc $CFLAGS -c -o "$out/test_abi_musl.o" "$abi"
	compile abi/musl-gnu-source musl-gcc $CFLAGS -D_GNU_SOURCE -c -o "$out/test_abi_musl_gnu.o" "$abi"
elif [ "${GOSOCCR_REQUIRE_ROOT:-}" = 1 ]; then
	echo "FAIL abi/musl: musl-gcc not installed (make deps installs musl-tools)"
	failed=$((failed + 1))
else
	echo "SKIP abi/musl: musl-gcc not installed (Debian: musl-tools)"
	skipped=$((skipped + 1))
fi
if command -v g++ >/dev/null 2>&1; then
	compile abi/c++ g++ -x c++ $CFLAGS -c -o "$out/test_abi_cxx.o" "$abi"
fi

# Behaviour: each program or case in a network namespace of its own.
for t in misuse roundtrip bulk; do
	if ! $CC $CFLAGS -o "$out/test_$t" "$src/test_$t.c" $LDFLAGS >"$log" 2>&1; then
		result "$t/build" 1
		continue
	fi
done
[ -x "$out/test_misuse" ] && run misuse "$out/test_misuse"
if [ -x "$out/test_roundtrip" ]; then
	for c in $("$out/test_roundtrip" list); do
		run "roundtrip/$c" "$out/test_roundtrip" "$c"
	done
fi
# The bulk entry points and the network lock (gosoccr_checkpoint_all,
# gosoccr_restore_all, gosoccr_lock...).
if [ -x "$out/test_bulk" ]; then
	for c in $("$out/test_bulk" list); do
		run "bulk/$c" "$out/test_bulk" "$c"
	done
fi

# The socket entry points for tools (gosoccr_dump_sk, gosoccr_restore_sk).
if $CC $CFLAGS -o "$out/hooks_sk" "$src/hooks_sk.c" $LDFLAGS >"$log" 2>&1; then
	run hooks/sk "$out/hooks_sk"
else
	result hooks/sk-build 1
fi

# The CRIU plugin (build/criu/gosoccr.so), loaded as CRIU loads it. The
# harness is not linked with the library: the plugin loads it on dump, and
# must not on restore. -rdynamic exports the harness's criu_get_image_dir
# and print_on_level to the plugin.
plugin="$lib/criu/gosoccr.so"
if [ ! -f "$plugin" ]; then
	echo "missing $plugin: make build" >"$log"
	result plugin/build 1
elif ! $CC $CFLAGS -rdynamic -o "$out/plugin_harness" "$src/plugin_harness.c" -ldl >"$log" 2>&1; then
	result plugin/harness-build 1
else
	for c in $("$out/plugin_harness" "$plugin" list); do
		run "$c" "$out/plugin_harness" "$plugin" "$c"
		sed -n 's/^timing: /    timing: /p' "$log"
	done
fi

[ "$skipped" -gt 0 ] && echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
