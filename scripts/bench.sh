#!/usr/bin/env bash
# bench.sh measures scstd against tgtd with `qemu-img bench` over iscsi://.
#
# Both targets serve a fileio LUN on a sparse file of the same size on the
# same file system ($BENCH_DIR, default /dev/shm: RAM, so the numbers measure
# the targets and not the disk). Each case is first run briefly to calibrate
# the request count so that the measured run lasts about $BENCH_SECONDS
# (default 6). tgtd is measured only when it is installed; both daemons are
# started by this script on 127.0.0.1 and stopped by PID when it exits.
#
# Environment: SCSTD_BIN (default bin/scstd), BENCH_DIR, BENCH_SECONDS,
# BENCH_SIZE_MIB (default 1024), SCSTD_PORT and TGTD_PORT (default: free
# ports picked at random).
set -euo pipefail
cd "$(dirname "$0")/.."

scstd_bin=${SCSTD_BIN:-bin/scstd}
bench_dir=${BENCH_DIR:-/dev/shm}
seconds=${BENCH_SECONDS:-6}
size_mib=${BENCH_SIZE_MIB:-1024}

# free_port prints a loopback TCP port that nothing listens on now.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 10000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}
scstd_port=${SCSTD_PORT:-$(free_port)}
tgtd_port=${TGTD_PORT:-$(free_port)}
while [ "$tgtd_port" = "$scstd_port" ]; do tgtd_port=$(free_port); done
iqn_scstd=iqn.2026-11.org.example:bench
iqn_tgtd=iqn.2026-11.org.example:bench-tgtd

work=$(mktemp -d "$bench_dir/scstd-bench.XXXXXX")
scstd_pid=""
tgtd_pid=""

cleanup() {
	if [ -n "$scstd_pid" ]; then
		kill -TERM "$scstd_pid" 2>/dev/null || true
		wait_gone "$scstd_pid" 15 || kill -KILL "$scstd_pid" 2>/dev/null || true
	fi
	if [ -n "$tgtd_pid" ]; then
		# tgtd ignores SIGTERM; it exits on "delete system" once it has
		# no targets left.
		tgtadm -C "$tgtd_port" --lld iscsi --op delete --mode target --tid 1 --force >/dev/null 2>&1 || true
		tgtadm -C "$tgtd_port" --op delete --mode system >/dev/null 2>&1 || true
		wait_gone "$tgtd_pid" 10 || kill -KILL "$tgtd_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# wait_gone PID SECONDS: wait until PID has exited; false on timeout.
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# wait_port PORT PID NAME: wait until 127.0.0.1:PORT accepts, while PID lives.
wait_port() {
	local i
	for ((i = 0; i < 300; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		if ! kill -0 "$2" 2>/dev/null; then
			echo "bench: $3 exited before listening on 127.0.0.1:$1" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "bench: $3 did not listen on 127.0.0.1:$1 within 30s" >&2
	return 1
}

start_scstd() {
	if [ ! -x "$scstd_bin" ]; then
		echo "bench: $scstd_bin not found (make build)" >&2
		return 1
	fi
	cat >"$work/scstd.hcl" <<EOF
iscsi { portals = ["127.0.0.1:$scstd_port"] }
handler "vdisk_fileio" {
  device "bench0" {
    filename = "$work/scstd.img"
    size     = "${size_mib}MiB"
  }
}
target "$iqn_scstd" {
  queued_commands = 64
  lun "0" { device = "bench0" }
}
EOF
	truncate -s "${size_mib}M" "$work/scstd.img"
	"$scstd_bin" run -config "$work/scstd.hcl" -admin-socket "$work/scstd.sock" 2>"$work/scstd.log" &
	scstd_pid=$!
	wait_port "$scstd_port" "$scstd_pid" scstd || { tail -20 "$work/scstd.log" >&2; return 1; }
}

start_tgtd() {
	truncate -s "${size_mib}M" "$work/tgtd.img"
	tgtd -f --iscsi "portal=127.0.0.1:$tgtd_port" --control-port "$tgtd_port" >"$work/tgtd.log" 2>&1 &
	tgtd_pid=$!
	wait_port "$tgtd_port" "$tgtd_pid" tgtd || { tail -20 "$work/tgtd.log" >&2; return 1; }
	# The portal opens before the control socket does.
	local i
	for ((i = 0; i < 100; i++)); do
		tgtadm -C "$tgtd_port" --op show --mode sys >/dev/null 2>&1 && break
		sleep 0.1
	done
	# (set -e does not apply inside a function called from `if`.)
	tgtadm -C "$tgtd_port" --lld iscsi --op new --mode target --tid 1 -T "$iqn_tgtd" &&
		tgtadm -C "$tgtd_port" --lld iscsi --op new --mode logicalunit --tid 1 --lun 1 -b "$work/tgtd.img" &&
		tgtadm -C "$tgtd_port" --lld iscsi --op bind --mode target --tid 1 -I ALL
}

# run_bench URL SIZE DEPTH COUNT [-w]: prints the seconds the run took.
run_bench() {
	local url=$1 size=$2 depth=$3 count=$4 out
	shift 4
	out=$(qemu-img bench -f raw -t none -i threads -s "$size" -d "$depth" -c "$count" "$@" "$url" 2>&1) || {
		echo "bench: qemu-img bench failed: $out" >&2
		return 1
	}
	sed -n 's/^Run completed in \([0-9.]*\) seconds.*/\1/p' <<<"$out"
}

# measure URL SIZE DEPTH [-w]: calibrates, runs, prints "IOPS MiB/s".
measure() {
	local url=$1 size=$2 depth=$3 probe t count
	shift 3
	probe=$((size >= 1048576 ? 200 : 20000))
	t=$(run_bench "$url" "$size" "$depth" "$probe" "$@") || return 1
	count=$(awk -v p="$probe" -v t="$t" -v s="$seconds" -v d="$depth" \
		'BEGIN { if (t < 0.001) t = 0.001; c = int(p * s / t); if (c < d * 4) c = d * 4; print c }')
	t=$(run_bench "$url" "$size" "$depth" "$count" "$@") || return 1
	awk -v c="$count" -v t="$t" -v s="$size" 'BEGIN { printf "%.0f %.1f\n", c / t, c * s / t / 1048576 }'
}

cases=(
	"4KiB-QD32-read 4096 32"
	"4KiB-QD32-write 4096 32 -w"
	"1MiB-QD8-read 1048576 8"
	"1MiB-QD8-write 1048576 8 -w"
)

have_scstd=0
have_tgtd=0
if start_scstd; then
	have_scstd=1
else
	echo "bench: scstd not measured" >&2
fi
if command -v tgtd >/dev/null && command -v tgtadm >/dev/null; then
	if start_tgtd; then
		have_tgtd=1
	else
		echo "bench: tgtd not measured" >&2
	fi
else
	echo "bench: tgtd not installed; measuring scstd alone" >&2
fi

echo "backing files: ${size_mib} MiB sparse, on $(df --output=fstype "$bench_dir" | tail -1) ($bench_dir); ~${seconds}s per run; qemu-img bench -f raw -t none -i threads"
printf '%-18s %10s %10s %10s %10s %8s\n' case scstd-IOPS scstd-MiB/s tgtd-IOPS tgtd-MiB/s ratio
for c in "${cases[@]}"; do
	read -r name size depth flags <<<"$c"
	s_iops=- s_mib=- t_iops=- t_mib=- ratio=-
	if [ "$have_scstd" = 1 ]; then
		read -r s_iops s_mib < <(measure "iscsi://127.0.0.1:$scstd_port/$iqn_scstd/0" "$size" "$depth" $flags || echo "- -")
	fi
	if [ "$have_tgtd" = 1 ]; then
		read -r t_iops t_mib < <(measure "iscsi://127.0.0.1:$tgtd_port/$iqn_tgtd/1" "$size" "$depth" $flags || echo "- -")
	fi
	if [ "$s_iops" != - ] && [ "$t_iops" != - ]; then
		ratio=$(awk -v a="$s_iops" -v b="$t_iops" 'BEGIN { printf "%.2f", a / b }')
	fi
	printf '%-18s %10s %10s %10s %10s %8s\n' "$name" "$s_iops" "$s_mib" "$t_iops" "$t_mib" "$ratio"
done
echo "ratio = scstd IOPS / tgtd IOPS"

if go test -list '^Benchmark' ./reconcile/ 2>/dev/null | grep -q '^Benchmark'; then
	echo
	go test -run '^$' -bench . ./reconcile/
fi
