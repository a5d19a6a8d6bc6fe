#!/usr/bin/env python3
"""Turns bench/run.sh's raw measurements into the markdown report.

    report.py HEADER.md META.tsv RAW.tsv

META.tsv, one line per workload case:
    workload  case  images  bytes  blobs  manifests  title
(workload 5: 1, the directory's GNU tar stream size, its file count, 0)
RAW.tsv, one line per measured run:
    workload  case  tool  round  seconds  peak_rss_kib  ok|FAIL  [output_bytes  phases
    cpu_s  registry_cpu_s]
(output_bytes and phases for workload 5: the compressed layer's size, and
the skopeo route's "compress X s + wrap Y s + push Z s"; cpu_s the user +
system seconds of the tool's processes, registry_cpu_s those of the
destination registry during the run)

Medians over the runs that succeeded; "ocisync vs X" is X's median time
over that of ocisync's reference tool (a throughput ratio: 2.00x means
ocisync moved the workload twice as fast), and for the limit, ocisync's
throughput as a share of the limit's. The reference is `ocisync sync` where
it ran, else `ocisync copy` (the first of OCISYNC with a successful run).
Workload 5 has its own table: each row's time over that of compression
alone with the same compressor. Targets from issue #6 are reported, never
asserted.
"""

import re

import statistics
import sys

TOOLS = {
    "ocisync-sync": "ocisync sync, one process",
    "base-sync": "ocisync sync, one process, the baseline binary ($OCISYNC_BIN_BASE)",
    "ocisync-seq": "ocisync copy, one image after another",
    "ocisync-par": "ocisync copy ×N, `xargs -P {par}`",
    "skopeo-sync": "skopeo sync --all",
    "skopeo-copy": "skopeo copy --all, one image after another",
    "skopeo-copy-par": "skopeo copy --all ×N, `xargs -P {par}`",
    "limit": "limit: minimal client, {workers} workers",
    "limit-relay": "relay limit: minimal client, GET from the source into each PUT, {workers} workers",
    "ocisync-oci-sync": "ocisync sync --src oci, one process",
    "ocisync-oci-seq": "ocisync copy oci:, one image after another",
    "skopeo-copy-oci": "skopeo copy --all oci:, one image after another",
    "ocisync-bp-gzip": "ocisync build-push --compression gzip",
    "pigz": "compression alone: tar into pigz -6",
    "skopeo-pigz": "skopeo route: tar into pigz -6, layout, skopeo copy",
    "ocisync-bp-zstd": "ocisync build-push --compression zstd",
    "base-bp-gzip": "ocisync build-push --compression gzip, the baseline binary ($OCISYNC_BIN_BASE)",
    "base-bp-zstd": "ocisync build-push --compression zstd, the baseline binary ($OCISYNC_BIN_BASE)",
    "zstd": "compression alone: tar into zstd -3 -T0",
}
# In order of preference for the reference column.
OCISYNC = ("ocisync-sync", "ocisync-oci-sync", "ocisync-seq", "ocisync-oci-seq", "ocisync-par")
# Workload 5: each tool's compression-alone reference. (Labels hold no "|":
# they are markdown table cells.)
ALONE = {"ocisync-bp-gzip": "pigz", "pigz": "pigz", "skopeo-pigz": "pigz",
         "ocisync-bp-zstd": "zstd", "zstd": "zstd",
         "base-bp-gzip": "pigz", "base-bp-zstd": "zstd"}
MIB = 1024 * 1024

TITLES = {
    "1": "Workload 1: mirror, large blobs",
    "2": "Workload 2: mirror, small blobs",
    "3": "Workload 3: bulk push from an OCI layout",
    "4": "Workload 4: one large blob",
    "5": "Workload 5: build-push",
    "6": "Workload 6: scaling",
}


def fmt_s(x):
    return f"{x:.3f}" if x < 10 else f"{x:.2f}" if x < 100 else f"{x:.1f}"


def fmt_rate(x):
    """MiB/s: small rates (a loaded machine, tiny workloads) keep three decimals, never 0.0."""
    return f"{x:.3f}" if x < 1 else f"{x:.1f}"


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
        f = line.rstrip("\n").split("\t")
        w, case, tool, rnd, secs, rss, status = f[:7]
        outb, phases, cpu, regcpu = (f[7:] + ["", "", "", ""])[:4]
        runs.setdefault((w, case), {}).setdefault(tool, []).append(
            dict(round=int(rnd), seconds=float(secs) if secs else None,
                 rss=int(rss) if rss else None, ok=status == "ok",
                 out=int(outb) if outb else None, phases=phases,
                 cpu=float(cpu) if cpu else None, regcpu=float(regcpu) if regcpu else None))

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
        if w == "5":
            notes = build_table(out, failed, w, cases, meta, runs, params)
            out.append("")
            out += notes
            if notes:
                out.append("")
            continue
        out.append("| workload | case | tool | runs ok | median s | min–max s | MiB/s | ms/image "
                   "| peak RSS MiB | ocisync vs this |")
        out.append("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        notes = []
        for case in cases:
            m = meta[(w, case)]
            tools = runs.get((w, case), {})
            med = medians(tools)
            ref = next((t for t in OCISYNC if t in med), None)
            for tool, rs in tools.items():
                good, label, okcol = row_start(w, case, tool, rs, params, failed, out)
                if not good:
                    continue
                secs = [r["seconds"] for r in good]
                t = med[tool]
                rss = max(r["rss"] for r in good if r["rss"] is not None) / 1024
                if ref is None or tool == ref:
                    vs = "—"
                elif tool.startswith("limit"):
                    vs = f"{t / med[ref]:.0%} of limit"
                else:
                    vs = f"{t / med[ref]:.2f}x"
                out.append(f"| {w} | {case} | {label} | {okcol} | {fmt_s(t)} | "
                           f"{fmt_s(min(secs))}–{fmt_s(max(secs))} | {fmt_rate(m['bytes'] / t / MIB)} | "
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


def row_start(w, case, tool, rs, params, failed, out):
    """A tool's successful runs, its label and its "runs ok" cell; a tool
    whose runs all failed gets its FAILED row here (and no successful runs);
    failed runs are listed in failed."""
    good = [r for r in rs if r["ok"] and r["seconds"] is not None]
    nfail = len(rs) - len(good)
    label = TOOLS.get(tool, tool).format(**params)
    okcol = f"{len(good)}/{len(rs)}" + (f" ({nfail} FAILED)" if nfail else "")
    if nfail:
        failed.append(f"workload {w} {case} {tool}: {nfail} of {len(rs)} runs")
    if not good:
        out.append(f"| {w} | {case} | {label} | {okcol} | FAILED | | | | | |")
    return good, label, okcol


def medians(tools):
    """Each tool's median time over its successful runs."""
    med = {}
    for tool, rs in tools.items():
        good = [r["seconds"] for r in rs if r["ok"] and r["seconds"] is not None]
        if good:
            med[tool] = statistics.median(good)
    return med


def build_table(out, failed, w, cases, meta, runs, params):
    """Workload 5's table (appended to out) and its notes (returned)."""
    out.append("| workload | case | tool | runs ok | median s | min–max s | tar MiB/s | output MiB "
               "| peak RSS MiB | CPU s | cores busy | registry CPU s | time / compression alone |")
    out.append("| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    notes = []
    for case in cases:
        m = meta[(w, case)]
        tools = runs.get((w, case), {})
        med = medians(tools)
        outs = {}
        for tool, rs in tools.items():
            good, label, okcol = row_start(w, case, tool, rs, params, failed, out)
            if not good:
                continue
            secs = [r["seconds"] for r in good]
            t = med[tool]
            rss = max(r["rss"] for r in good if r["rss"] is not None) / 1024
            sizes = [r["out"] for r in good if r["out"] is not None]
            outs[tool] = statistics.median(sizes) if sizes else None
            ref = ALONE.get(tool)
            if tool == ref:
                vs = "—"
            elif ref in med:
                vs = f"{t / med[ref]:.2f}x"
            else:
                vs = ""
            size = "" if outs[tool] is None else f"{outs[tool] / MIB:.1f}"
            # Medians of each run's CPU seconds and of its CPU / wall (cores kept busy).
            cpus = [r["cpu"] for r in good if r["cpu"] is not None]
            busy = [r["cpu"] / r["seconds"] for r in good if r["cpu"] is not None and r["seconds"]]
            regs = [r["regcpu"] for r in good if r["regcpu"] is not None]
            cpu = f"{statistics.median(cpus):.2f}" if cpus else ""
            busy = f"{statistics.median(busy):.2f}" if busy else ""
            reg = f"{statistics.median(regs):.2f}" if regs else ""
            out.append(f"| {w} | {case} | {label} | {okcol} | {fmt_s(t)} | "
                       f"{fmt_s(min(secs))}–{fmt_s(max(secs))} | {fmt_rate(m['bytes'] / t / MIB)} | "
                       f"{size} | {rss:.1f} | {cpu} | {busy} | {reg} | {vs} |")
        for tool, alone in (("ocisync-bp-gzip", "pigz"), ("ocisync-bp-zstd", "zstd")):
            if tool in med and alone in med:
                r = med[tool] / med[alone]
                notes.append(f"- {case}: {tool} / compression alone ({alone}): {r:.2f}x the time "
                             f"(target ≤ 1.2x: {'met' if r <= 1.2 else '**not met**'})")
            if tool in outs and alone in outs and outs[tool] and outs[alone]:
                notes.append(f"- {case}: {tool}'s layer is {outs[tool] / outs[alone]:.3f}x the size of {alone}'s")
        for tool, base in (("ocisync-bp-gzip", "base-bp-gzip"), ("ocisync-bp-zstd", "base-bp-zstd")):
            if tool in med and base in med:
                notes.append(f"- {case}: {tool} / {base} (the baseline binary): "
                             f"{med[tool] / med[base]:.2f}x the time")
        if "ocisync-bp-gzip" in med and "skopeo-pigz" in med:
            notes.append(f"- {case}: ocisync-bp-gzip / skopeo-pigz: "
                         f"{med['skopeo-pigz'] / med['ocisync-bp-gzip']:.2f}x throughput")
        phases = [r["phases"] for r in tools.get("skopeo-pigz", []) if r["ok"] and r["phases"]]
        if phases:
            # The median of each phase over the rounds.
            parts = [[float(x) for x in re.findall(r"([0-9.]+) s", p)] for p in phases]
            names = re.findall(r"([a-z]+) [0-9.]+ s", phases[0])
            if all(len(p) == len(names) for p in parts):
                meds = [statistics.median(col) for col in zip(*parts)]
                notes.append(f"- {case}: skopeo-pigz's phases (medians): "
                             + " + ".join(f"{n} {v:.2f} s" for n, v in zip(names, meds)))
    return notes


def targets(w, case, med, ref, tools):
    """Lines comparing ocisync with the peers and the issue's targets."""
    if ref is None:
        return []
    lines = []

    def verdict(ok):
        return "met" if ok else "**not met**"

    for peer in ("skopeo-sync", "skopeo-copy", "skopeo-copy-par", "skopeo-copy-oci"):
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
    if "limit-relay" in med:
        lines.append(f"- {case}: {ref} / relay limit (the source's GETs included): "
                     f"{med['limit-relay'] / med[ref]:.0%}")
    if w == "4":
        rs = [r["rss"] for r in tools[ref] if r["ok"] and r["rss"] is not None]
        if rs:
            peak = max(rs) / 1024
            lines.append(f"- {case}: ocisync peak RSS {peak:.1f} MiB (target < 64 MiB: {verdict(peak < 64)})")
    return lines


if __name__ == "__main__":
    sys.exit(main())
