#!/usr/bin/env bash
# bench/run.sh --quick, the benchmark harness's smoke test: every workload
# it can run today (1, 2, 4, 6) gets a table with one row per tool, every
# tool's run succeeded and was checked at the destination (runs ok 1/1, no
# FAILED, numbers in every column), and workloads 3 and 5 are reported as
# TODOs. No timing is asserted: the numbers of a quick run mean little.
. "$(dirname "$0")/lib.sh"

[ -n "${OCISYNC_BIN:-}" ] || fail "OCISYNC_BIN is not set"
report="$TMP/bench.md"
log "+ bench/run.sh --quick --out $report"
start=$(date +%s)
# The harness sources lib.sh too: its registries, temp dir and cleanup are
# its own. Images are generated into our $TMP (small in quick mode).
if ! OCISYNC_BENCH_CACHE="$TMP/cache" timeout -k 5 400 \
  bash "$OCISYNC_SOURCE_DIR/bench/run.sh" --quick --out "$report" >"$TMP/bench.out" 2>&1; then
  tail -n 40 "$TMP/bench.out" >&2
  fail "bench/run.sh --quick failed"
fi
pass "bench/run.sh --quick exited 0 after $(($(date +%s) - start)) s"
[ -s "$report" ] || fail "no report at $report"
grep -qF "$(head -n 1 "$report")" "$TMP/bench.out" || fail "run.sh did not print the report"
pass "report written and printed"

# Each case of each workload has exactly one row per tool, whose runs all
# succeeded and whose numeric columns are filled.
python3 - "$report" <<'PY' || fail "report rows incomplete (see above)"
import re, sys
want = {
    "1": (["2 images"], ["ocisync sync, one", "ocisync copy, one", "skopeo sync --all", "skopeo copy --all, one", "limit:"]),
    "2": (["5 images"], ["ocisync sync, one", "ocisync copy, one", "skopeo sync --all", "skopeo copy --all, one", "limit:"]),
    "4": (["32 MiB"], ["ocisync copy, one", "skopeo copy --all, one", "limit:"]),
    "6": (["N=5", "N=20"], ["ocisync sync, one", "ocisync copy ×N", "skopeo sync --all", "skopeo copy --all ×N", "limit:"]),
}
rows = [[c.strip() for c in l.strip().strip("|").split("|")]
        for l in open(sys.argv[1]) if re.match(r"^\| [0-9] \|", l)]
num = re.compile(r"^[0-9]+(\.[0-9]+)?$")
bad = []
for w, (cases, tools) in want.items():
    for case in cases:
        for tool in tools:
            hit = [r for r in rows if r[0] == w and r[1] == case and r[2].startswith(tool)]
            if len(hit) != 1:
                bad.append(f"workload {w} {case}: {len(hit)} rows for '{tool}'")
                continue
            r = hit[0]
            if len(r) != 10 or r[3] != "1/1":
                bad.append(f"workload {w} {case} {tool}: runs ok '{r[3] if len(r) > 3 else r}'")
                continue
            rng = r[5].split("–")
            for name, v in [("median s", r[4]), ("MiB/s", r[6]), ("ms/image", r[7]),
                            ("peak RSS", r[8])] + [("min–max", x) for x in rng]:
                if not num.match(v) or float(v) <= 0:
                    bad.append(f"workload {w} {case} {tool}: {name} is '{v}'")
            if tool != tools[0] and not r[9]:
                bad.append(f"workload {w} {case} {tool}: no ratio to ocisync")
extra = [r for r in rows if r[0] not in want]
if extra:
    bad.append(f"rows for workloads not run: {extra}")
if bad:
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
print(f"{len(rows)} rows checked")
PY
pass "a row for every workload, case and tool, each 1/1 with numbers"
assert_contains "$report" "Workload 3 (bulk push from an OCI layout): TODO" "workload 3 reported as TODO"
assert_contains "$report" "Workload 5 (build-push): TODO" "workload 5 reported as TODO"
if grep -q FAILED "$report"; then
  fail "the report names a failed run: $(grep FAILED "$report" | head -n 3)"
fi
pass "no failed run in the report"
assert_contains "$report" "ocisync peak RSS" "workload 4 reports ocisync's peak RSS"
done_ok
