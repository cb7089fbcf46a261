#!/usr/bin/env bash
# System calls per request of each side of the scale benchmark, counted by the kernel.
#
#   bash peers/syscalls.sh [CLIENTS] [TRANSPORT] [SIDES]
#   (defaults: 10000 inproc "blocking may hub hubs tmq")
#
# Needs perf and the right to read the kernel's syscall tracepoints (root, or
# kernel.perf_event_paranoid at -1 with tracefs readable); it builds with cargo first, so run
# it as the user who owns the workspace's target directory rather than under sudo.
#
# Each side runs as the scale example's child twice, with 10 and with 30 requests per client,
# under `perf stat` on the kernel's syscall tracepoints; the difference of the two counts,
# divided by the 20 extra requests of every client, is what a request costs once the run is
# set up (connecting, spawning and exiting cancel out, up to a few hundredths). Printed as a
# markdown table. Over tcp, libzmq's I/O thread also calls sendto/recvfrom: those count in
# "all" only.
set -euo pipefail
cd "$(dirname "$0")/.."

clients=${1:-10000}
transport=${2:-inproc}
sides=${3:-blocking may hub hubs tmq}
few=10
many=30
events=raw_syscalls:sys_enter,syscalls:sys_enter_poll,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_futex,context-switches

cargo build --release -q -p zmqloop-peers --example scale
scale=${CARGO_TARGET_DIR:-target}/release/examples/scale

# count SIDE REQS: "total poll epoll_wait read write futex switches" for one child run. Exits
# the script if perf or the child fails, or if perf did not count all seven events.
count() {
    local out counts
    out=$(mktemp)
    if ! perf stat -x, -o "$out" -e "$events" -- "$scale" --child --side "$1" \
        --clients "$clients" --reqs "$2" --transport "$transport" >/dev/null; then
        echo "syscalls.sh: the $1 run with $2 requests failed (see above)" >&2
        rm -f "$out"
        exit 1
    fi
    counts=$(awk -F, '$3 ~ /sys_enter|context-switches/ { printf "%s ", $1 }' "$out")
    rm -f "$out"
    if [ "$(wc -w <<<"$counts")" -ne 7 ] || grep -q '[^0-9 ]' <<<"$counts"; then
        echo "syscalls.sh: perf did not count all seven events for $1: '$counts'" >&2
        exit 1
    fi
    echo "$counts"
}

echo "System calls per request, $clients clients over $transport ($few and $many requests each):"
echo
echo "| side | all | poll | epoll_wait | read | write | futex | context switches |"
echo "|---|---|---|---|---|---|---|---|"
for side in $sides; do
    counts_few=$(count "$side" "$few")
    counts_many=$(count "$side" "$many")
    read -r -a a <<<"$counts_few"
    read -r -a b <<<"$counts_many"
    extra=$((clients * (many - few)))
    row="| $side"
    for i in 0 1 2 3 4 5 6; do
        row+=" | $(awk -v a="${a[$i]}" -v b="${b[$i]}" -v n="$extra" 'BEGIN { d = (b - a) / n; if (d < 0.005 && d > -0.005) d = 0; printf "%.2f", d }')"
    done
    echo "$row |"
done
