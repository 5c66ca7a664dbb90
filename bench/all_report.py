"""Helper of bench/all.sh: reads bench/results/{pipe,serve,scan}.json,
prints one table of every comparison, and writes bench/results/all.json
(the three files, plus a summary array).

    python3 bench/all_report.py [RESULTS_DIR]

Run alone, it re-prints the table from the results already there. From
all.sh, the environment adds ALL_ELAPSED ("pipe=61.2 serve=372.0 ...",
seconds) and ALL_STALE (the scripts that wrote no new results).
"""

import datetime
import json
import os
import sys

from report_common import duration

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
SOURCES = ("pipe", "serve", "scan")

# serve.sh's workloads: title, unit, which way is better
SERVE = {
    "echo": ("echo round trips: 50 connections, 64-byte requests", "req/s", "higher"),
    # each load again from the second generator, bench/plainload
    "echo-plain": ("echo round trips, plainload: 50 connections, 64-byte requests", "req/s", "higher"),
    "stream": ("echo stream: 1 connection, bulk both ways, checked", "MB/s", "higher"),
    "stream-plain": ("echo stream, plainload: 1 connection, 1 MiB writes, checked", "MB/s", "higher"),
    "connect": ("connection rate: connect, read daytime, close; 10 clients", "conn/s", "higher"),
    "connect-plain": ("connection rate, plainload: connect, read daytime, close; 10 threads",
                      "conn/s", "higher"),
    "udp": ("UDP echo: 16 clients, 1 datagram of 64 B in flight each", "req/s", "higher"),
}
SCAN = {
    "loopback": "full-port scan (1-65535), loopback: closed ports answer with a RST",
    "firewalled": "full-port scan (1-65535), firewalled host: 65,530 ports never answer",
}


def load(results, name):
    try:
        with open(os.path.join(results, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def fmt(x, unit="", like=None):
    """A figure with as many digits as it deserves (or as `like` does)."""
    if x is None:
        return "-"
    y = abs(x if like is None else like)
    if y >= 100:
        return f"{x:,.0f}"
    if y >= 10 or unit == "MB":
        return f"{x:.1f}"
    return f"{x:.2f}"


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def short(s, n=100):
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 1] + "…"


def entry(workload, tool, unit, better, median=None, lo=None, hi=None, runs=None, good=None, **extra):
    e = {"workload": workload, "tool": tool, "unit": unit, "better": better, "median": median,
         "min": lo, "max": hi, "runs": runs, "good_runs": good, "ratio_to_netsmith": None}
    e.update(extra)
    return e


def from_pipe(doc, ceiling):
    """The pipe workload: one entry per tool."""
    out = []
    runs = doc.get("runs", [])
    for s in doc.get("summary", []):
        t = s["tool"]
        rs = [r for r in runs if r["tool"] == t]
        bad = [r for r in rs if not r["ok"]]
        note = f"{len(bad)} of {len(rs)} runs failed: {bad[0]['error']}" if bad else ""
        good = s["good_runs"]
        e = entry("pipe", t, "MB/s", "higher", s["mbps_median"] if good else None,
                  s["mbps_min"] if good else None, s["mbps_max"] if good else None, len(rs), good,
                  fraction_of_ceiling=ratio(s["mbps_median"], ceiling) if good else None, note=note)
        if not good:
            e["note"] = "FAILED: " + (bad[0]["error"] if bad else "no run")
        out.append(e)
    return out


def from_serve(doc, ceiling):
    out = []
    summary = doc.get("summary", {})
    for w, (_, unit, better) in SERVE.items():
        for s in summary.get(w, []):
            p, notes = s["peer"], []
            if s.get("skipped"):
                out.append(entry(w, p, unit, better, runs=0, good=0, skipped=s["skipped"],
                                 note="SKIPPED: " + s["skipped"]))
                continue
            if s["good_runs"] < s["runs"]:
                why = s["failures"][0] if s["failures"] else "?"
                notes.append(f"{s['runs'] - s['good_runs']} of {s['runs']} runs failed: {why}")
            if s.get("errors"):
                notes.append("errors " + ", ".join(s["errors"]))
            e = entry(w, p, unit, better, s.get("median"), s.get("min"), s.get("max"), s["runs"], s["good_runs"])
            if w.startswith("stream"):
                e["fraction_of_ceiling"] = 1.0 if p == "iperf3" else ratio(s.get("median"), ceiling)
                if p == "iperf3":
                    notes.insert(0, "the ceiling: iperf3 one way (-c, single stream)")
                elif p == "iperf3-bidir":
                    notes.insert(0, "iperf3 --bidir, MB/s each way")
            e["note"] = "; ".join(notes)
            out.append(e)
    goal = doc.get("idle_goal_mb")
    for s in doc.get("idle_summary", []):
        p = s["peer"]
        if s.get("skipped"):
            out.append(entry("idle", p, "MB", "lower", runs=0, good=0, skipped=s["skipped"],
                             note="SKIPPED: " + s["skipped"]))
            continue
        if not s["good_runs"]:
            out.append(entry("idle", p, "MB", "lower", runs=s["runs"], good=0,
                             note="FAILED: " + (s["failures"] or ["no run"])[0]))
            continue
        note = f"{s['kb_per_conn']:.1f} KB/conn; goal under {goal:g} MB " + ("met" if s["under_goal"] else "MISSED")
        out.append(entry("idle", p, "MB", "lower", s["vmhwm_mb_median"], s["vmhwm_mb_min"], s["vmhwm_mb_max"],
                         s["runs"], s["good_runs"], note=note))
    return out


def size(n):
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def minutes(s):
    s = round(s)
    return f"{s // 60} min {s % 60} s" if s >= 60 else f"{s} s"


def from_scan(doc):
    out = []
    for s in doc.get("summary", []):
        w, t = "scan-" + s["setup"], s["tool"]
        if s.get("finished"):
            notes = ["exact" if s["exact"] else f"WRONG in {s['wrong_runs']} of {s['finished']}: " + "; ".join(s["wrong"])]
            if s.get("failed"):
                notes.append(f"{s['failed']} failed: {s['error']}")
            out.append(entry(w, t, "s", "lower", s["wall_median"], s["wall_min"], s["wall_max"], s["runs"],
                             s["finished"], exact=s["exact"], wrong=s["wrong"], wrong_runs=s["wrong_runs"],
                             note="; ".join(notes)))
        elif "stopped_after" in s:
            d = s.get("ports_done")
            if d is None:
                how = "progress unknown"
            elif t.startswith("nmap"):
                how = f"{d / 655.35:.0f} % done"
            else:
                how = f"at port {d:,}"
            src = "nmap's own ETC" if t.startswith("nmap") else "extrapolated"
            out.append(entry(w, t, "s", "lower", runs=s["runs"], good=0, exact=None,
                             stopped_after_s=s["stopped_after"], estimate_s=s.get("estimate_s"),
                             note=f"stopped after {s['stopped_after']:g} s, {how}" + (
                                 f"; whole scan ~{duration(s['estimate_s'])} ({src})" if s.get("estimate_s") else "")))
        else:
            out.append(entry(w, t, "s", "lower", runs=s["runs"], good=0, exact=None,
                             note="FAILED: " + str(s.get("error"))))
    return out


def main():
    results = sys.argv[1] if len(sys.argv) > 1 else os.path.join(BENCH, "results")
    docs = {name: load(results, name) for name in SOURCES}
    if not any(docs.values()):
        sys.exit(f"no results in {results}: run bench/all.sh (or pipe.sh, serve.sh, scan.sh)")
    stale = set(os.environ.get("ALL_STALE", "").split())
    elapsed = dict(kv.split("=", 1) for kv in os.environ.get("ALL_ELAPSED", "").split())
    elapsed = {k: float(v) for k, v in elapsed.items()}
    out_path = os.path.join(results, "all.json")
    sources = {n: {"file": os.path.relpath(os.path.join(results, n + ".json"), ROOT),
                   "date": d and d.get("date"), "stale": n in stale} for n, d in docs.items()}
    alone = not elapsed
    if alone:
        # run alone: keep the times of the last all.sh if it read these same results
        old = load(results, "all")
        if old and all(old.get("sources", {}).get(n, {}).get("date") == s["date"] for n, s in sources.items()):
            elapsed = old.get("elapsed_s") or {}

    serve, pipe, scan = docs["serve"], docs["pipe"], docs["scan"]
    ceiling = None
    if serve:
        ceiling = next((s.get("median") for s in serve.get("summary", {}).get("stream", [])
                        if s["peer"] == "iperf3" and s.get("good_runs")), None)

    groups = []  # (workload, title, unit, better, entries)
    if pipe:
        es = from_pipe(pipe, ceiling)
        groups.append(("pipe", f"connect | listen pipe: {size(pipe['bytes'])} through one connection, one way",
                       "MB/s", "higher", es))
    if serve:
        es = from_serve(serve, ceiling)
        for w, (title, unit, better) in SERVE.items():
            ws = [e for e in es if e["workload"] == w]
            if ws:
                groups.append((w, title, unit, better, ws))
        ws = [e for e in es if e["workload"] == "idle"]
        if ws:
            conns = serve.get("idle_connections", 0)
            groups.append(("idle", f"idle: {conns:,} echo connections held; the server's peak RSS", "MB",
                           "lower", ws))
    if scan:
        es = from_scan(scan)
        for setup, title in SCAN.items():
            ws = [e for e in es if e["workload"] == "scan-" + setup]
            if ws:
                groups.append(("scan-" + setup, title, "s", "lower", ws))

    summary = []
    for w, _, _, _, es in groups:
        base = next((e["median"] for e in es if e["tool"] == "netsmith"), None)
        for e in es:
            e["ratio_to_netsmith"] = ratio(e["median"], base)
            if not w.startswith("stream") and w != "pipe":
                e.pop("fraction_of_ceiling", None)
            if e["workload"].startswith("scan") and e.get("stopped_after_s") and base:
                e["ratio_to_netsmith_at_least"] = round(e["stopped_after_s"] / base, 2)
            summary.append(e)

    # ---------------------------------------------------------------- table
    lines = []
    head = []
    for n in SOURCES:
        d = docs[n]
        if not d:
            head.append(f"{n}: no results")
            continue
        what = f"{d['reps']} run{'s' if d['reps'] != 1 else ''}"
        if n == "pipe":
            what += f" of {size(d['bytes'])}"
        elif n == "serve":
            what += f" of {d['duration_s']:g} s"
        elif n == "scan":
            what += f", slow tools stopped at {d['slow_limit_s']:g} s"
        head.append(f"{n} {d['date']} ({what}){' OLD: not rerun' if n in stale else ''}")
    m = next((d["machine"] for d in docs.values() if d), {})
    lines.append(f"machine: {m.get('cpus')} CPUs, {m.get('cpu')}, Linux {m.get('kernel')}")
    lines.append("results: " + "; ".join(head))
    lines.append("")
    cols = f"  {'tool':<13} {'median':>9} {'min-max':>17} {'vs netsmith':>11} {'of iperf3':>9}  notes"
    lines.append(cols)
    for w, title, unit, better, es in groups:
        unit_s = "MB/s each way" if w.startswith("stream") else ("peak RSS MB" if w == "idle" else
                                                       ("wall s" if unit == "s" else unit))
        lines.append(f"{title} [{unit_s}, {better} is better]")
        for e in es:
            frac = e.get("fraction_of_ceiling")
            frac_s = "-" if frac is None else f"{frac:.2f}"
            if e["median"] is not None:
                spread = f"{fmt(e['min'], unit, e['median'])}-{fmt(e['max'], unit, e['median'])}"
                r = "-" if e["ratio_to_netsmith"] is None else f"{e['ratio_to_netsmith']:.2f}"
                lines.append(f"  {e['tool']:<13} {fmt(e['median'], unit):>9} {spread:>17} {r:>11} {frac_s:>9}"
                             f"  {short(e['note']) or '-'}")
            elif e.get("stopped_after_s"):
                at_least = e.get("ratio_to_netsmith_at_least")
                r = f">{int(at_least)}" if at_least else "-"  # a bound: rounded down
                lines.append(f"  {e['tool']:<13} {'>' + format(e['stopped_after_s'], 'g'):>9} {'(stopped)':>17}"
                             f" {r:>11} {'-':>9}  {short(e['note'])}")
            else:
                lines.append(f"  {e['tool']:<13} {'-':>9} {'-':>17} {'-':>11} {'-':>9}  {short(e['note'])}")
    lines.append("")
    lines.append("median of the good runs, with their min-max. vs netsmith = tool / netsmith: netsmith did")
    lines.append("  better where it is below 1 on a 'higher is better' row, and above 1 on a 'lower' one")
    if ceiling:
        lines.append(f"of iperf3 = fraction of iperf3's single-stream one-way loopback throughput,"
                     f" {ceiling:,.0f} MB/s (serve.json's")
        lines.append("  stream run); the echo stream's MB/s go each way, so the loopback carries twice that")
    else:
        lines.append("of iperf3: no iperf3 figure in serve.json (iperf3 missing, or the stream workload not run)")
    lines.append("MB = 10^6 bytes; full tables (CPU, latency, memory): bench/README.md describes each script")
    lines.append("raw: " + ", ".join(s["file"] for s in sources.values()) + " -> "
                 + os.path.relpath(out_path, ROOT))
    if alone and elapsed.get("total"):
        # all.sh prints its own times; alone, say those of the run that made these results
        lines.append(f"elapsed in the all.sh run that wrote these: {minutes(elapsed['total'])} ("
                     + ", ".join(f"{n}.sh {minutes(elapsed[n])}" for n in SOURCES if n in elapsed) + ")")
    print("\n".join(lines))

    doc = {
        "benchmark": "all",
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": elapsed or None,
        "sources": sources,
        "ceiling": {"tool": "iperf3", "what": "single-stream one-way loopback throughput", "mbps": ceiling},
        "summary": summary,
        "pipe": pipe,
        "serve": serve,
        "scan": scan,
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
