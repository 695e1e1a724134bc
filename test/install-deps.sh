#!/usr/bin/env bash
# install-deps.sh installs what building and testing gosoccr needs on a
# Debian 12 machine, and only what is missing: the C toolchain, make,
# iproute2 (ip), util-linux (unshare), strace (benchmarks), nftables (the
# tests' network lock), pkg-config, and
# the Go modules of go.mod. It is silent when everything is present.
#
# Go itself (>= 1.26, as go.mod says) is not packaged by Debian 12: it must
# already be in PATH or at /usr/local/go/bin/go (or given as GO=...).
#
# Usage: test/install-deps.sh        (as root when a package is missing)
set -euo pipefail

cd "$(dirname "$0")/.."

say() { printf 'install-deps: %s\n' "$*" >&2; }

# need PACKAGE TEST...: PACKAGE is missing when the test command fails.
missing=()
need() {
	local pkg=$1
	shift
	if ! "$@" >/dev/null 2>&1; then
		missing+=("$pkg")
	fi
}
have() { command -v "$1"; }
file() { test -e "$1"; }

need gcc have gcc
need libc6-dev file /usr/include/stdio.h
need make have make
need iproute2 have ip
need util-linux have unshare
need strace have strace
# Tests isolate a connection during checkpoint with an nftables rule.
need nftables have nft
# The header is also compiled against musl's, which lack TCP repair types.
need musl-tools have musl-gcc
# crit, to decode the images the plugin writes: Debian 12's criu package.
# Its criu (3.17) fails on recent kernels and is not used: install-criu.sh
# provides the criu that runs.
need criu have crit
need pkg-config have pkg-config
# go mod download needs the CA bundle when the module cache is empty.
need ca-certificates file /etc/ssl/certs/ca-certificates.crt

if ((${#missing[@]})); then
	if [[ $(id -u) != 0 ]]; then
		say "missing: ${missing[*]}; run as root, or: apt-get install ${missing[*]}"
		exit 1
	fi
	say "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# apt's output is shown only when it fails.
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	if ! { apt-get update -q && apt-get install -q -y --no-install-recommends "${missing[@]}"; } \
		</dev/null >"$log" 2>&1; then
		cat "$log" >&2
		say "apt-get failed"
		exit 1
	fi
fi

GO=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
if [[ ! -x $GO ]]; then
	say "Go not found in PATH nor at /usr/local/go/bin/go: install Go >= 1.26 (Debian 12 packages only 1.19)"
	exit 1
fi
# Quiet when the module cache already holds everything.
"$GO" mod download
