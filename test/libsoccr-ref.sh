#!/usr/bin/env bash
# libsoccr-ref.sh builds CRIU's own libsoccr, the reference implementation
# of the C ABI that libgosoccr.so provides, for benchmarks that run both
# side by side (test/bench-vs-libsoccr.sh). It prints the path of the
# built libsoccr.so on its last line of standard output.
#
# What it does, all of it inside the cache, nothing installed on the system:
#   - downloads CRIU 4.2.1's source tarball from Debian's archive into
#     $CACHE (once) and checks its sha256; a tarball that does not match is
#     removed and the script fails;
#   - extracts criu-4.2.1/soccr/ alone into $DIR/src;
#   - writes $DIR/include: CRIU's soccr.h, as a C program written against
#     libsoccr includes it, and a generated common/config.h, the one header
#     of CRIU's tree that soccr.h needs (CONFIG_HAS_TCP_REPAIR and
#     CONFIG_HAS_TCP_REPAIR_WINDOW, probed here against the C library as
#     CRIU's build probes them);
#   - soccr.c links libnet (it injects a FIN for half-closed states): the
#     system's libnet, when its development files are installed, else
#     Debian's libnet1 and libnet1-dev, fetched with `apt-get download` and
#     unpacked with `dpkg -x` into $DIR/libnet;
#   - builds $DIR/libsoccr.so with gcc -O2 -fPIC -shared, with an rpath to
#     that libnet.
# A second run finds $DIR/libsoccr.so and its stamp and only prints the
# path. Link a program against it with
#   -I$DIR/include ... -L$DIR -lsoccr -Wl,-rpath,$DIR
#
# $CACHE is $GOSOCCR_CACHE, or /var/cache/gosoccr; $DIR is
# $CACHE/libsoccr-4.2.1. Progress goes to standard error; it exits non-zero
# with a message when anything fails.
#
# Environment:
#   GOSOCCR_CACHE          the cache folder (default /var/cache/gosoccr)
#   GOSOCCR_DEBIAN_MIRROR  the Debian archive URI (default http://deb.debian.org/debian)
#   CC                     the compiler (default gcc)
#
# Usage: so=$(test/libsoccr-ref.sh | tail -n1)
set -euo pipefail

CACHE=${GOSOCCR_CACHE:-/var/cache/gosoccr}
MIRROR=${GOSOCCR_DEBIAN_MIRROR:-http://deb.debian.org/debian}
CC=${CC:-gcc}
VERSION=4.2.1
TARBALL=criu_$VERSION.orig.tar.xz
URL=$MIRROR/pool/main/c/criu/$TARBALL
SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
DIR=$CACHE/libsoccr-$VERSION
SO=$DIR/libsoccr.so
CFLAGS=(-O2 -fPIC -shared -D_GNU_SOURCE)
# The stamp names what the .so was built from: a change here rebuilds it.
STAMP="criu $VERSION sha256 $SHA256; $CC ${CFLAGS[*]}; recipe 1"

say() { printf 'libsoccr-ref: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# built: the .so is there and was built from this tarball and recipe.
built() { [[ -f $SO && -f $DIR/.stamp && $(cat "$DIR/.stamp") == "$STAMP" && -f $DIR/include/soccr.h ]]; }

if built; then
	echo "$SO"
	exit 0
fi

mkdir -p "$DIR" || die "cannot create $DIR (set GOSOCCR_CACHE)"
# One builder at a time; the second one finds the work done.
exec 9>"$DIR/.lock"
flock 9
if built; then
	echo "$SO"
	exit 0
fi
for c in "$CC" tar xz sha256sum; do
	command -v "$c" >/dev/null || die "$c is missing"
done

# 1. The tarball, checked.
tb=$CACHE/$TARBALL
if [[ -f $tb ]] && ! echo "$SHA256  $tb" | sha256sum -c --status; then
	say "$tb does not match its sha256: downloading it again"
	rm -f "$tb"
fi
if [[ ! -f $tb ]]; then
	say "downloading $URL"
	if command -v curl >/dev/null; then
		curl -fsSL --retry 3 -o "$tb.part" "$URL" || die "download of $URL failed"
	elif command -v wget >/dev/null; then
		wget -q -O "$tb.part" "$URL" || die "download of $URL failed"
	else
		die "neither curl nor wget is installed"
	fi
	got=$(sha256sum "$tb.part" | cut -d' ' -f1)
	if [[ $got != "$SHA256" ]]; then
		rm -f "$tb.part"
		die "$URL has sha256 $got, want $SHA256: refusing it"
	fi
	mv "$tb.part" "$tb"
fi

# 2. soccr/ alone.
rm -rf "$DIR/src"
mkdir -p "$DIR/src"
tar -xJf "$tb" -C "$DIR/src" --strip-components=1 "criu-$VERSION/soccr/" ||
	die "cannot extract criu-$VERSION/soccr/ from $tb"
src=$DIR/src/soccr
[[ -f $src/soccr.c && -f $src/soccr.h ]] || die "$tb has no soccr/soccr.c and soccr.h"

# 3. The headers: soccr.h, and the common/config.h it includes, with the
# two macros CRIU's build defines when the C library declares the structs.
rm -rf "$DIR/include"
mkdir -p "$DIR/include/common"
cp "$src/soccr.h" "$DIR/include/soccr.h"
# has DECL: <netinet/tcp.h> declares DECL (the C library has it).
has() {
	printf '#include <netinet/tcp.h>\n%s;\n' "$1" | "$CC" -D_GNU_SOURCE -x c -fsyntax-only - 2>/dev/null
}
{
	echo "/* Written by gosoccr's test/libsoccr-ref.sh: the part of CRIU's generated"
	echo " * config.h that soccr.h reads, probed against this C library. */"
	echo "#ifndef GOSOCCR_REF_CONFIG_H"
	echo "#define GOSOCCR_REF_CONFIG_H"
	if has 'struct tcp_repair_opt o; int q = TCP_NO_QUEUE'; then
		echo "#define CONFIG_HAS_TCP_REPAIR"
	fi
	if has 'struct tcp_repair_window w'; then
		echo "#define CONFIG_HAS_TCP_REPAIR_WINDOW"
	fi
	echo "#endif"
} >"$DIR/include/common/config.h"

# 4. libnet: the system's development files, else Debian's packages unpacked.
libdir=/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
if [[ -f /usr/include/libnet.h && -e $libdir/libnet.so ]]; then
	netinc=/usr/include netlib=$libdir
else
	command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
		die "libnet's development files are missing and this is no Debian (install libnet's -dev package)"
	netroot=$DIR/libnet
	netinc=$netroot/usr/include netlib=$netroot$libdir
	if [[ ! -f $netinc/libnet.h || ! -e $netlib/libnet.so ]]; then
		debs=$DIR/debs
		rm -rf "$debs" "$netroot"
		mkdir -p "$debs"
		chmod 755 "$debs" # apt's _apt user writes there
		say "downloading Debian's libnet1 and libnet1-dev into $netroot"
		if ! (cd "$debs" && apt-get -q download libnet1 libnet1-dev) >"$DIR/apt.log" 2>&1; then
			say "apt-get download failed: updating the package lists once"
			apt-get -q update >>"$DIR/apt.log" 2>&1 || true
			(cd "$debs" && apt-get -q download libnet1 libnet1-dev) >>"$DIR/apt.log" 2>&1 || {
				cat "$DIR/apt.log" >&2
				die "apt-get download libnet1 libnet1-dev failed"
			}
		fi
		for deb in "$debs"/*.deb; do
			dpkg -x "$deb" "$netroot" || die "dpkg -x $deb failed"
		done
		rm -rf "$debs"
	fi
	[[ -f $netinc/libnet.h && -e $netlib/libnet.so ]] || die "no libnet.h or libnet.so under $netroot"
fi

# 5. The library.
say "building $SO from CRIU $VERSION's soccr/soccr.c"
"$CC" "${CFLAGS[@]}" -I"$DIR/include" -I"$netinc" -o "$SO.new" "$src/soccr.c" \
	-L"$netlib" -lnet -Wl,-rpath,"$netlib" -Wl,-soname,libsoccr.so -Wl,-z,defs ||
	die "the build of soccr.c failed"
mv "$SO.new" "$SO"
echo "$STAMP" >"$DIR/.stamp"
echo "$SO"
