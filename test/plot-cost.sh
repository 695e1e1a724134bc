#!/usr/bin/env bash
# plot-cost.sh draws the cost.csv of test/cost.sh as a PNG with gnuplot:
# a row for single and one for bulk; in each, the time of checkpoint and of
# restore for all n connections (log-log, next to a line of slope 1: a
# line parallel to it grows linearly), the same per connection (flat:
# linear), and the peak RSS next to the bytes the saved states hold. Cells
# that did not run are listed under the panels with their reason. It
# installs gnuplot-nox (Debian 12, as root) when gnuplot is missing.
# Usage: test/plot-cost.sh [CSV] [PNG]   (build/cost/cost.csv, build/cost/cost.png)
set -euo pipefail
cd "$(dirname "$0")/.."

csv=${1:-build/cost/cost.csv}
png=${2:-build/cost/cost.png}
say() { printf 'plot-cost: %s\n' "$*" >&2; }

# need PACKAGE FILE: install PACKAGE when FILE is missing (as install-deps.sh).
missing=()
need() { [ -e "$2" ] || missing+=("$1"); }
command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
need fonts-dejavu-core /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if ((${#missing[@]})); then
	if [[ $(id -u) != 0 ]]; then
		say "missing: ${missing[*]}; run as root, or: apt-get install ${missing[*]}"
		exit 1
	fi
	say "installing ${missing[*]}"
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	if ! { DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends "${missing[@]}" ||
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -q -y --no-install-recommends "${missing[@]}"; }; } \
		</dev/null >"$log" 2>&1; then
		cat "$log" >&2
		say "apt-get failed"
		exit 1
	fi
fi

dir=$(dirname "$png")/plot
mkdir -p "$dir"
rm -f "$dir"/*.dat

# One data file per mode and queue: n, ckpt ms, restore ms (all n), ckpt
# µs, restore µs (per connection), peak RSS MiB, queued MiB. The notes:
# one line per skipped cell (its reason) and per cell queued one way.
read -r low _ </proc/sys/net/ipv4/tcp_mem
awk -F, -v dir="$dir" -v low=$((low * $(getconf PAGESIZE) >> 20)) '
function q2s(q) { return q >= 1048576 ? q / 1048576 " MiB" : q >= 1024 ? q / 1024 " KiB" : q " B" }
NR == 1 { next }
{
	if (!($2 in hq)) { hq[$2] = 1; print $2 > (dir "/queues") }
	note = $0; for (i = 0; i < 12; i++) note = substr(note, index(note, ",") + 1); gsub(/"/, "", note)
	cell = "n=" $1 ", queue " q2s($2)
	if ($4 == "") {
		if (!((cell, note) in said)) { said[cell, note] = 1; print cell ": " note > (dir "/notes") }
		next
	}
	if ($4 == 1 && !(cell in said1)) {
		said1[cell] = 1
		print cell ": queued one way only, server to client (two ways would be over net.ipv4.tcp_mem low " low " MiB); the checkpoint saves as much as with two ways" > (dir "/notes")
	}
	if (!runs) runs = $5
	print $1, $9, $10, $6, $7, $11, $12 > (dir "/" $3 "-" $2 ".dat")
}
END { print runs > (dir "/runs") }' "$csv"
touch "$dir/notes"

colors=("#1b9e77" "#d95f02" "#7570b3" "#e7298a" "#66a61e" "#e6ab02")
mapfile -t queues <"$dir/queues"
label() { awk -v q="$1" 'BEGIN { print (q >= 1048576 ? q / 1048576 " MiB" : q >= 1024 ? q / 1024 " KiB" : q " B") }'; }

# plotcmd MODE KIND: the plot command of one panel.
plotcmd() {
	local mode=$1 kind=$2 sep="plot" i q f c t
	for i in "${!queues[@]}"; do
		q=${queues[$i]} f="$dir/$mode-${queues[$i]}.dat" c=${colors[$i]} t=$(label "$q")
		[ -s "$f" ] || continue
		case $kind in
		total)
			printf '%s "%s" using 1:2 with linespoints lw 2 pt 7 lc rgb "%s" title "ckpt, %s", \\\n' "$sep" "$f" "$c" "$t"
			printf '  "%s" using 1:3 with linespoints lw 2 dt 2 pt 5 lc rgb "%s" title "restore, %s"' "$f" "$c" "$t" ;;
		perconn)
			printf '%s "%s" using 1:4 with linespoints lw 2 pt 7 lc rgb "%s" title "ckpt, %s", \\\n' "$sep" "$f" "$c" "$t"
			printf '  "%s" using 1:5 with linespoints lw 2 dt 2 pt 5 lc rgb "%s" title "restore, %s"' "$f" "$c" "$t" ;;
		rss)
			printf '%s "%s" using 1:6 with linespoints lw 2 pt 7 lc rgb "%s" title "peak RSS, %s"' "$sep" "$f" "$c" "$t"
			if [ "$q" != 0 ]; then
				printf ', \\\n  "%s" using 1:7 with linespoints lw 1 dt 3 pt 6 lc rgb "%s" title "queued, %s"' "$f" "$c" "$t"
			fi ;;
		esac
		sep=", \\
"
	done
	if [ "$kind" = total ]; then
		# slope 1 through the first queue's checkpoint at the smallest n
		printf ', \\\n  x * %s with lines lw 1 dt 4 lc rgb "#888888" title "slope 1 (linear in n)"' \
			"$(awk 'NR == 1 { print $2 / $1 }' "$dir/$mode-${queues[0]}.dat" 2>/dev/null || echo 0.01)"
	fi
	echo
}

notes=$(awk '{ printf "%s%s", (NR > 1 ? "\\n" : ""), $0 }' "$dir/notes" | sed 's/"/\\"/g')
nnotes=$(wc -l <"$dir/notes")
bottom=$(awk -v k="$nnotes" 'BEGIN { printf "%.3f", 0.07 + 0.022 * k }')

{
	cat <<EOF
set terminal pngcairo noenhanced size 1800,$((1100 + 24 * nnotes)) font "DejaVu Sans,11"
set output "$png"
set datafile separator whitespace
set logscale xy
set xrange [70:13000]
set xtics ("100" 100, "1,000" 1000, "9,000" 9000)
set grid xtics ytics mytics lc rgb "#dddddd"
set key font ",9" spacing 0.9 box opaque
set xlabel "connections n"
set multiplot layout 2,3 title "gosoccr: how the cost of checkpoint (solid) and restore (dashed) grows with n and the queue (BenchmarkCost, median of $(cat "$dir/runs") runs; $(uname -r), $(nproc) cores)" font ",14" margins 0.05,0.99,$bottom,0.93 spacing 0.06,0.09
set label 1 "$notes" at screen 0.05,$(awk -v k="$nnotes" 'BEGIN { printf "%.3f", 0.012 + 0.022 * k }') font ",10"
EOF
	for mode in single bulk; do
		cat <<EOF
set title "$mode: time for all n connections"
set ylabel "ms"
set key bottom right
$(plotcmd "$mode" total)
unset label 1
set title "$mode: per connection (flat = linear growth)"
set ylabel "µs per connection"
set key top right
$(plotcmd "$mode" perconn)
set title "$mode: peak RSS (solid) and queued bytes held (dotted)"
set ylabel "MiB"
set key bottom right
$(plotcmd "$mode" rss)
EOF
	done
	echo "unset multiplot"
} >"$dir/cost.gp"

gnuplot "$dir/cost.gp"
say "wrote $png"
