#!/usr/bin/env bash
# Faults made by the kernel rather than a proxy, inside the test's own network
# namespace (netns.sh): a source connection reset by iptables once 2 MB of a
# blob have gone out (the download resumes with Range), the destination port
# refusing connections with TCP resets for a while (requests are retried), and
# a slow link shaped by tc tbf. Each copy must complete with the source's
# digests and leave a destination that names no missing blob.
. "$(dirname "$0")/netns.sh"
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fault.sh"

[ "$OCISYNC_IN_NETNS" = 1 ] || fail "this test changes iptables rules and qdiscs: it needs its own network namespace (root and unshare -n)"

registry_start src
registry_start dst

want=$(mkimage --out "$TMP/img" --platforms linux/amd64 --layers 3 --layer-size 6000000 --seed netns)
push_image "$TMP/img" "$SRC_ADDR/lib/net:v1"

# --- a source connection reset once 2 MB of response have gone out ------------
# The rule matches the client's own packets (its ACKs to the source port) once
# the connection carried 2 MB of response, so the RST goes to ocisync; a
# watcher removes it after it fired once, so the resumed GET can finish.
iptables -A OUTPUT -p tcp --dport "$SRC_PORT" -m connbytes --connbytes 2000000: \
  --connbytes-dir reply --connbytes-mode bytes -j REJECT --reject-with tcp-reset
(
  for _ in $(seq 1 600); do
    n=$(iptables -L OUTPUT -v -x -n | awk 'NR > 2 { print $1; exit }')
    if [ -n "$n" ] && [ "$n" -gt 0 ]; then
      echo "$n" >"$TMP/cut.fired"
      iptables -D OUTPUT -p tcp --dport "$SRC_PORT" -m connbytes --connbytes 2000000: \
        --connbytes-dir reply --connbytes-mode bytes -j REJECT --reject-with tcp-reset
      exit 0
    fi
    sleep 0.02
  done
) &
watcher=$!
run_ocisync copy --debug --retry-delay 0.2 --timeout 10 --jobs 1 "docker://$SRC_ADDR/lib/net:v1" "docker://$DST_ADDR/net/cut:v1"
wait "$watcher" || true
expect_success "a source connection reset after 2 MB"
[ -s "$TMP/cut.fired" ] || fail "the iptables reset never fired"
pass "iptables reset a source connection ($(cat "$TMP/cut.fired") packets rejected)"
assert_contains "$OCISYNC_STDERR" "resuming the download at byte" "the download resumed with Range"
assert_eq "$(skopeo_digest "$DST_ADDR/net/cut:v1")" "$want" "reset: destination digest equals source"
assert_dest_consistent "$DST_ADDR" net/cut v1 "reset"

# --- the destination refuses connections (TCP resets) for 1.5 s ---------------
iptables -A INPUT -p tcp --dport "$DST_PORT" -j REJECT --reject-with tcp-reset
(sleep 1.5; iptables -D INPUT -p tcp --dport "$DST_PORT" -j REJECT --reject-with tcp-reset) &
opener=$!
run_ocisync copy --debug --retry-delay 0.3 "docker://$SRC_ADDR/lib/net:v1" "docker://$DST_ADDR/net/refused:v1"
wait "$opener" || true
expect_success "the destination refusing connections for 1.5 s"
assert_contains "$OCISYNC_STDERR" "retry 1 of" "requests were retried while the port refused"
assert_eq "$(skopeo_digest "$DST_ADDR/net/refused:v1")" "$want" "refused: destination digest equals source"
assert_dest_consistent "$DST_ADDR" net/refused v1 "refused"

# --- a slow link ------------------------------------------------------------------
# The burst must hold one loopback packet (64 KiB MTU), or tbf drops it forever.
tc qdisc add dev lo root tbf rate 80mbit burst 256kb latency 100ms
start=$(date +%s%N)
run_ocisync copy --timeout 20 "docker://$SRC_ADDR/lib/net:v1" "docker://$DST_ADDR/net/slow:v1"
ms=$((($(date +%s%N) - start) / 1000000))
tc qdisc del dev lo root
expect_success "a copy over an 80 Mbit/s link"
# 18 MB each way through one shaped interface cannot take less than ~1.8 s.
[ "$ms" -ge 1500 ] || fail "the shaped copy took only $ms ms: the qdisc did not apply"
pass "the shaped copy took $ms ms"
assert_eq "$(skopeo_digest "$DST_ADDR/net/slow:v1")" "$want" "slow link: destination digest equals source"
assert_dest_consistent "$DST_ADDR" net/slow v1 "slow link"

done_ok
