#!/usr/bin/env bash
# install-criu.sh makes a CRIU >= 4.2 ready to run without touching the
# system's installation, and prints the path of a command that runs it on
# its last line of standard output.
#
# Why: Debian 12's criu 3.17 fails `criu check` on recent kernels, and
# Debian 13's 4.1.1 cannot dump TCP sockets on Linux 6.16+ (see "CRIU on this
# kernel" in DESIGN.md). Debian testing's criu 4.2.1 works.
#
# What it does:
#   - when the system's criu is >= 4.2 and `criu check` passes, it prints the
#     path of that criu and does nothing else;
#   - else, when $CACHE/bin/criu exists and its `criu check` passes, it prints
#     that path (a fast no-op: no network);
#   - else it downloads Debian testing's criu and the closure of its
#     dependencies with a private apt configuration (its own sources list,
#     package lists and cache under $CACHE/apt; the system's dpkg status is
#     not read and nothing is installed), unpacks each package with `dpkg -x`
#     into $CACHE/criu-VERSION/root, and writes $CACHE/bin/criu, a script that
#     runs the unpacked criu through the unpacked dynamic loader with
#     --library-path set to the unpacked libraries. Nothing else on the
#     system uses those libraries: the programs criu runs (ip, iptables,
#     action scripts) run with the system's own.
#
# $CACHE is $GOSOCCR_CACHE, or /var/cache/gosoccr. The forky archive is
# checked with the system's debian-archive-keyring. Progress goes to standard
# error; it exits non-zero with a message when anything fails.
#
# Environment:
#   GOSOCCR_CACHE          the cache folder (default /var/cache/gosoccr)
#   GOSOCCR_CRIU_SUITE     the Debian suite to take criu from (default forky)
#   GOSOCCR_DEBIAN_MIRROR  the Debian archive URI (default: the one the
#                          system's sources name for Debian's main archive)
#   GOSOCCR_CRIU_NO_SYSTEM=1  ignore the system's criu even when it is good
#   GOSOCCR_CRIU_QUIET=1   say nothing when there is nothing to install
#
# Usage: test/install-criu.sh           (as root, or with a writable cache)
#        criu=$(test/install-criu.sh | tail -n1)
set -euo pipefail

CACHE=${GOSOCCR_CACHE:-/var/cache/gosoccr}
SUITE=${GOSOCCR_CRIU_SUITE:-forky}
MIN_MAJOR=4 MIN_MINOR=2
WRAPPER=$CACHE/bin/criu
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

say() { printf 'install-criu: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# version_ok CRIU: the criu command prints a version >= MIN_MAJOR.MIN_MINOR.
version_ok() {
	local v major minor
	v=$("$@" --version 2>/dev/null | sed -n 's/^Version: *//p') || return 1
	[[ $v =~ ^([0-9]+)\.([0-9]+) ]] || return 1
	major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
	((major > MIN_MAJOR || (major == MIN_MAJOR && minor >= MIN_MINOR)))
}

# check_ok CRIU: `criu check` passes (it needs root).
check_ok() { "$@" check >/dev/null 2>&1; }

# 1. The system's criu, when it is good enough.
if [[ ${GOSOCCR_CRIU_NO_SYSTEM:-} != 1 ]] && sys=$(command -v criu) &&
	[[ $sys != "$WRAPPER" ]] && version_ok "$sys"; then
	if check_ok "$sys"; then
		[[ ${GOSOCCR_CRIU_QUIET:-} == 1 ]] ||
			say "using the system's criu $("$sys" --version | sed -n 's/^Version: *//p') ($sys)"
		echo "$sys"
		exit 0
	fi
	[[ ${GOSOCCR_CRIU_QUIET:-} == 1 ]] ||
		say "the system's criu ($sys) fails 'criu check'; using a private one"
fi

# 2. The cached one, when it is complete and works.
if [[ -x $WRAPPER ]] && version_ok "$WRAPPER" && check_ok "$WRAPPER"; then
	echo "$WRAPPER"
	exit 0
fi

# 3. Install it.
[[ $(id -u) == 0 ]] || die "not root: 'criu check' and 'criu dump' need root; run as root"
for c in apt-get apt-cache dpkg flock; do
	command -v "$c" >/dev/null || die "$c is missing (this script is for Debian)"
done
[[ $(dpkg --print-architecture) == amd64 ]] ||
	die "only amd64 is handled (the loader path below is x86-64's)"
[[ -r $KEYRING ]] || die "$KEYRING is missing: apt-get install debian-archive-keyring"

mkdir -p "$CACHE/bin" "$CACHE/apt" || die "cannot create $CACHE (set GOSOCCR_CACHE)"
# One installer at a time; the second one finds the work done.
exec 9>"$CACHE/.install-criu.lock"
flock 9
if [[ -x $WRAPPER ]] && version_ok "$WRAPPER" && check_ok "$WRAPPER"; then
	echo "$WRAPPER"
	exit 0
fi

# The mirror: the URI of the system's sources that serves Debian's main
# archive (a suite without "-security"), else deb.debian.org.
mirror() {
	local f uri
	if [[ -n ${GOSOCCR_DEBIAN_MIRROR:-} ]]; then
		echo "$GOSOCCR_DEBIAN_MIRROR"
		return
	fi
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -r $f ]] || continue
		# deb822 stanzas: print the first URI of a stanza whose Suites name
		# a Debian release that is not the security archive.
		uri=$(awk '
			/^[ \t]*$/ { if (u != "" && ok) { print u; exit } u = ""; ok = 0; next }
			tolower($1) == "uris:" { u = $2 }
			tolower($1) == "suites:" { for (i = 2; i <= NF; i++) if ($i !~ /security/) ok = 1 }
			END { if (u != "" && ok) print u }' "$f" | head -n1)
		if [[ $uri == */debian || $uri == */debian/ ]]; then
			echo "${uri%/}"
			return
		fi
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -r $f ]] || continue
		uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i !~ /=/) { print $i; exit } }' "$f" |
			grep -E '/debian/?$' | head -n1) || true
		if [[ -n $uri ]]; then
			echo "${uri%/}"
			return
		fi
	done
	echo http://deb.debian.org/debian
}
MIRROR=$(mirror)

# The private apt configuration: its own sources list, lists and cache, no
# dpkg status (the closure is computed as if nothing were installed), none
# of the system's update hooks, and no AppStream metadata.
A=$CACHE/apt
mkdir -p "$A/lists/partial" "$A/cache/archives/partial" "$A/etc/sources.list.d" "$A/etc/preferences.d"
echo "deb [signed-by=$KEYRING] $MIRROR $SUITE main" >"$A/etc/sources.list"
cat >"$A/etc/apt.conf" <<EOF
Dir::Etc::SourceList "$A/etc/sources.list";
Dir::Etc::SourceParts "$A/etc/sources.list.d";
Dir::Etc::Preferences "$A/etc/preferences";
Dir::Etc::PreferencesParts "$A/etc/preferences.d";
Dir::State::Lists "$A/lists";
Dir::State::status "/dev/null";
Dir::Cache "$A/cache";
Debug::NoLocking "true";
APT::Sandbox::User "root";
APT::Get::List-Cleanup "true";
Acquire::Languages "none";
#clear APT::Update::Post-Invoke;
#clear APT::Update::Post-Invoke-Success;
#clear DPkg::Post-Invoke;
EOF
for t in DEP-11 DEP-11-icons-small DEP-11-icons DEP-11-icons-hidpi DEP-11-icons-large DEP-11-icons-large-hidpi; do
	echo "Acquire::IndexTargets::deb::$t::DefaultEnabled \"false\";" >>"$A/etc/apt.conf"
done
apt() { "$1" -c "$A/etc/apt.conf" "${@:2}"; }

log=$A/last.log
say "fetching the package list of Debian $SUITE from $MIRROR (private apt state in $A)"
if ! apt apt-get -q update >"$log" 2>&1 || grep -q -E '^E: |^W: .*(GPG|[Ss]ignature|NO_PUBKEY|not signed)' "$log"; then
	cat "$log" >&2
	die "apt-get update of $SUITE failed (a signature error means the system's debian-archive-keyring does not cover $SUITE)"
fi

VERSION=$(apt apt-cache show criu 2>/dev/null | sed -n 's/^Version: *//p' | head -n1)
[[ -n $VERSION ]] || die "no criu package in Debian $SUITE"
UPSTREAM=${VERSION#*:}
UPSTREAM=${UPSTREAM%-*}
[[ $UPSTREAM =~ ^([0-9]+)\.([0-9]+) ]] &&
	((BASH_REMATCH[1] > MIN_MAJOR || (BASH_REMATCH[1] == MIN_MAJOR && BASH_REMATCH[2] >= MIN_MINOR))) ||
	die "Debian $SUITE has criu $VERSION, older than $MIN_MAJOR.$MIN_MINOR"

# The closure of criu's dependencies, real packages only (apt-cache prints
# virtual ones as <name>).
mapfile -t pkgs < <(apt apt-cache depends --recurse --no-recommends --no-suggests \
	--no-conflicts --no-breaks --no-replaces --no-enhances criu |
	grep -v -e '^ ' -e '^<' | sort -u)
((${#pkgs[@]})) || die "apt-cache depends found nothing for criu"

DIR=$CACHE/criu-$UPSTREAM
say "downloading criu $VERSION and ${#pkgs[@]} packages of its closure into $DIR/debs"
rm -rf "$DIR/debs" "$DIR/root.new"
mkdir -p "$DIR/debs" "$DIR/root.new"
if ! (cd "$DIR/debs" && apt apt-get -q download "${pkgs[@]}") >"$log" 2>&1; then
	cat "$log" >&2
	die "apt-get download failed"
fi

say "unpacking them into $DIR/root"
for deb in "$DIR"/debs/*.deb; do
	dpkg -x "$deb" "$DIR/root.new" || die "dpkg -x $deb failed"
done
# The manifest: which package versions make up this root.
(cd "$DIR/debs" && ls *.deb) >"$DIR/root.new/.gosoccr-packages"
rm -rf "$DIR/root"
mv "$DIR/root.new" "$DIR/root"
rm -rf "$DIR/debs"

R=$DIR/root
LIBDIR=$R/usr/lib/x86_64-linux-gnu
LOADER=$LIBDIR/ld-linux-x86-64.so.2
[[ -x $LOADER ]] || die "the unpacked root has no $LOADER"
[[ -x $R/usr/sbin/criu ]] || die "the unpacked root has no usr/sbin/criu"

# --library-path applies to criu alone: unlike LD_LIBRARY_PATH it is not
# inherited by what criu runs (the system's ip or iptables, with the
# system's older libc).
cat >"$WRAPPER.new" <<EOF
#!/bin/sh
# Written by gosoccr's test/install-criu.sh: runs Debian $SUITE's criu
# $VERSION, unpacked under $R, through its own dynamic loader and libraries.
exec '$LOADER' --library-path '$LIBDIR' --argv0 criu -- '$R/usr/sbin/criu' "\$@"
EOF
chmod 755 "$WRAPPER.new"
mv "$WRAPPER.new" "$WRAPPER"

version_ok "$WRAPPER" || die "$WRAPPER --version does not print a version >= $MIN_MAJOR.$MIN_MINOR"
if ! "$WRAPPER" check >"$log" 2>&1; then
	cat "$log" >&2
	die "'$WRAPPER check' fails"
fi
say "installed criu $VERSION: $WRAPPER"
echo "$WRAPPER"
