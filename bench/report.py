#!/usr/bin/env python3
"""Turns bench/run.sh's raw measurements into the markdown report.

    report.py HEADER.md META.tsv RAW.tsv

META.tsv, one line per workload case:
    workload  case  images  bytes  blobs  manifests  title
RAW.tsv, one line per measured run:
    workload  case  tool  round  seconds  peak_rss_kib  ok|FAIL

Medians over the runs that succeeded; "ocisync vs X" is X's median time
over that of ocisync's reference tool (a throughput ratio: 2.00x means
ocisync moved the workload twice as fast), and for the limit, ocisync's
throughput as a share of the limit's. The reference is `ocisync sync` where
it ran, else `ocisync copy` (the first of OCISYNC with a successful run).
Targets from issue #6 are reported, never asserted.
"""

import statistics
import sys

TOOLS = {
    "ocisync-sync": "ocisync sync, one process",
    "ocisync-seq": "ocisync copy, one image after another",
    "ocisync-par": "ocisync copy ×N, `xargs -P {par}`",
    "skopeo-sync": "skopeo sync --all",
    "skopeo-copy": "skopeo copy --all, one image after another",
    "skopeo-copy-par": "skopeo copy --all ×N, `xargs -P {par}`",
    "limit": "limit: minimal client, {workers} workers",
}
# In order of preference for the reference column.
OCISYNC = ("ocisync-sync", "ocisync-seq", "ocisync-par")
MIB = 1024 * 1024

TITLES = {
    "1": "Workload 1: mirror, large blobs",
    "2": "Workload 2: mirror, small blobs",
    "4": "Workload 4: one large blob",
    "6": "Workload 6: scaling",
}


def fmt_s(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}" if x < 100 else f"{x:.1f}"


def main():
    header_path, meta_path, raw_path = sys.argv[1:4]
    params = dict(kv.split("=", 1) for kv in sys.argv[4:])
    meta = {}
    order = []
    for line in open(meta_path):
        w, case, images, nbytes, blobs, mans, title = line.rstrip("\n").split("\t")
        meta[(w, case)] = dict(images=int(images), bytes=int(nbytes), blobs=int(blobs),
                               manifests=int(mans), title=title)
        order.append((w, case))
    runs = {}
    for line in open(raw_path):
        w, case, tool, rnd, secs, rss, status = line.rstrip("\n").split("\t")
        runs.setdefault((w, case), {}).setdefault(tool, []).append(
            dict(round=int(rnd), seconds=float(secs) if secs else None,
                 rss=int(rss) if rss else None, ok=status == "ok"))

    out = [open(header_path).read().rstrip("\n"), ""]
    failed = []
    by_w = {}
    for w, case in order:
        by_w.setdefault(w, []).append(case)
    for w, cases in by_w.items():
        out.append(f"## {TITLES.get(w, 'Workload ' + w)}")
        out.append("")
        for case in cases:
            out.append(f"- {case}: {meta[(w, case)]['title']}")
        out.append("")
        out.append("| workload | case | tool | runs ok | median s | min–max s | MiB/s | ms/image "
                   "| peak RSS MiB | ocisync vs this |")
        out.append("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        notes = []
        for case in cases:
            m = meta[(w, case)]
            tools = runs.get((w, case), {})
            med = {}
            for tool, rs in tools.items():
                good = [r["seconds"] for r in rs if r["ok"] and r["seconds"] is not None]
                if good:
                    med[tool] = statistics.median(good)
            ref = next((t for t in OCISYNC if t in med), None)
            for tool, rs in tools.items():
                good = [r for r in rs if r["ok"] and r["seconds"] is not None]
                nfail = len(rs) - len(good)
                label = TOOLS.get(tool, tool).format(**params)
                okcol = f"{len(good)}/{len(rs)}" + (f" ({nfail} FAILED)" if nfail else "")
                if nfail:
                    failed.append(f"workload {w} {case} {tool}: {nfail} of {len(rs)} runs")
                if not good:
                    out.append(f"| {w} | {case} | {label} | {okcol} | FAILED | | | | | |")
                    continue
                secs = [r["seconds"] for r in good]
                t = med[tool]
                rss = max(r["rss"] for r in good if r["rss"] is not None) / 1024
                if ref is None or tool == ref:
                    vs = "—"
                elif tool == "limit":
                    vs = f"{t / med[ref]:.0%} of limit"
                else:
                    vs = f"{t / med[ref]:.2f}x"
                out.append(f"| {w} | {case} | {label} | {okcol} | {fmt_s(t)} | "
                           f"{fmt_s(min(secs))}–{fmt_s(max(secs))} | {m['bytes'] / t / MIB:.1f} | "
                           f"{t * 1000 / m['images']:.1f} | {rss:.1f} | {vs} |")
            notes += targets(w, case, med, ref, tools)
        out.append("")
        out += notes
        if notes:
            out.append("")
    if failed:
        out.append("## Failed runs")
        out.append("")
        out += [f"- {f}" for f in failed]
        out.append("")
    text = "\n".join(out).rstrip("\n") + "\n"
    sys.stdout.write(text)
    return 1 if failed else 0


def targets(w, case, med, ref, tools):
    """Lines comparing ocisync with the peers and the issue's targets."""
    if ref is None:
        return []
    lines = []

    def verdict(ok):
        return "met" if ok else "**not met**"

    for peer in ("skopeo-sync", "skopeo-copy", "skopeo-copy-par"):
        if peer in med:
            ratio = med[peer] / med[ref]
            goal = f" (target ≥ 2x: {verdict(ratio >= 2)})" if w in ("1", "2", "3") else ""
            lines.append(f"- {case}: {ref} / {peer}: {ratio:.2f}x throughput{goal}")
    for other in OCISYNC:
        if other != ref and other in med:
            lines.append(f"- {case}: {ref} / {other}: {med[other] / med[ref]:.2f}x throughput")
    if "limit" in med:
        share = med["limit"] / med[ref]
        goal = f" (target ≥ 90%: {verdict(share >= 0.9)})" if w in ("1", "2", "3") else ""
        lines.append(f"- {case}: {ref} / limit: {share:.0%}{goal}")
    if w == "4":
        rs = [r["rss"] for r in tools[ref] if r["ok"] and r["rss"] is not None]
        if rs:
            peak = max(rs) / 1024
            lines.append(f"- {case}: ocisync peak RSS {peak:.1f} MiB (target < 64 MiB: {verdict(peak < 64)})")
    return lines


if __name__ == "__main__":
    sys.exit(main())
