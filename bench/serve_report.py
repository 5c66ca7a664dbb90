"""Helper of bench/serve.sh: reads one generator result, and writes the
report (tables on stdout, bench/results/serve.json).

    serve_report.py parse WORKLOAD PEER RESULT.json EXIT_CODE STDERR_LINE
    serve_report.py report WORKDIR OUT.json     (settings in the environment)
"""

import json
import os
import statistics
import sys

from report_common import num


def load_result(path):
    """The JSON object a generator printed (netsmith bench or iperf3 -J)."""
    try:
        with open(path) as f:
            text = f.read()
        return json.loads(text[text.index("{"):])
    except (OSError, ValueError):
        return None


def parse(workload, peer, path, rc, err):
    """Prints: ok value requests sent_mbps recv_mbps p50_ms p99_ms errors
    error, tab-separated ("-" for none). ok is false for a run with no
    result, a stream that stalled or did not come back whole, or a run
    without a single reply."""

    def out(ok, value=0, req=0, sent=0, recv=0, p50="nan", p99="nan", errors="-", error="-"):
        print("\t".join(str(x) for x in (ok, value, req, sent, recv, p50, p99, errors, error)))

    d = load_result(path)
    if d is None:
        why = f"generator exited {rc} without a result" if rc != "0" else "no result"
        return out("false", error=f"{why}: {err}" if err else why)
    if peer.startswith("iperf3"):
        if "error" in d:
            return out("false", error="iperf3: " + d["error"])
        end = d["end"]
        sent = end["sum_received"]["bits_per_second"] / 8e6
        recv = end.get("sum_received_bidir_reverse", end["sum_received"])["bits_per_second"] / 8e6
        return out("true", round(recv, 3), 0, round(sent, 3), round(recv, 3))
    errors = d.get("errors", {})
    desc = ",".join(f"{k}:{v}" for k, v in sorted(errors.items())) or "-"
    lat = d.get("latency", {})
    fields = dict(
        req=d.get("requests", 0),
        sent=d["mb_per_s_sent"],
        recv=d["mb_per_s_received"],
        p50=lat.get("p50_ms", "nan"),
        p99=lat.get("p99_ms", "nan"),
        errors=desc,
    )
    if workload.startswith("stream"):
        value = d["mb_per_s_received"]
        if errors or d["bytes_received"] == 0:
            got, sent = d["bytes_received"], d["bytes_sent"]
            return out("false", value, **fields,
                       error=f"deadlock/failed: {got} of {sent} bytes echoed, then errors {desc}")
        return out("true", value, **fields)
    value = d["requests_per_s"]
    if value == 0:
        return out("false", value, **fields, error=f"no replies, errors {desc}")
    return out("true", value, **fields)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


RUN_COLS = (
    "workload peer rep attempt ok disturbed value requests sent_mbps recv_mbps p50_ms p99_ms "
    "errors server_cpu_s gen_user_s gen_sys_s other_cpu_s seconds raw error"
).split()
IDLE_COLS = "peer rep ok connections rss_before_kb rss_held_kb vmhwm_kb open_s server_cpu_s error".split()


def read_runs(work):
    runs = []
    for line in open(f"{work}/runs.tsv"):
        r = dict(zip(RUN_COLS, line.rstrip("\n").split("\t")))
        raw = r.pop("raw")
        r["rep"], r["attempt"] = int(r["rep"]), int(r["attempt"])
        r["ok"], r["disturbed"] = r["ok"] == "true", r["disturbed"] == "true"
        for k in RUN_COLS[6:18]:
            if k != "errors":
                r[k] = num(r[k])
        r["requests"] = None if r["requests"] is None else int(r["requests"])
        r["errors"] = None if r["errors"] == "-" else r["errors"]
        r["error"] = None if r["error"] == "-" else r["error"]
        base = raw[: -len(".json")]
        for key, suffix in (("server_cmd", ".srv.cmd"), ("generator_cmd", ".gen.cmd")):
            try:
                with open(base + suffix) as f:
                    r[key] = f.read().strip()
            except OSError:
                r[key] = None
        r["generator_json"] = load_result(raw)
        runs.append(r)
    return runs


def read_idle(work):
    idle = []
    if not os.path.exists(f"{work}/idle.tsv"):
        return idle
    for line in open(f"{work}/idle.tsv"):
        r = dict(zip(IDLE_COLS, line.rstrip("\n").split("\t")))
        r["rep"], r["ok"], r["connections"] = int(r["rep"]), r["ok"] == "true", int(r["connections"])
        for k in IDLE_COLS[4:9]:
            r[k] = num(r[k])
        r["error"] = None if r["error"] == "-" else r["error"]
        idle.append(r)
    return idle


def summarize(workload, peer, runs, skipped):
    rs = [r for r in runs if r["workload"] == workload and r["peer"] == peer]
    good = [r for r in rs if r["ok"]]
    s = {
        "peer": peer,
        "runs": len(rs),
        "good_runs": len(good),
        "skipped": skipped,
        "failures": sorted({r["error"] for r in rs if not r["ok"]}),
    }
    if not good:
        return s
    vals = [r["value"] for r in good]
    s.update(
        median=med(vals),
        min=min(vals),
        max=max(vals),
        p50_ms=med([r["p50_ms"] for r in good]),
        p99_ms=med([r["p99_ms"] for r in good]),
        server_cpu_s=med([r["server_cpu_s"] for r in good]),
        gen_cpu_s=med([(r["gen_user_s"] or 0) + (r["gen_sys_s"] or 0) for r in good]),
        other_cpu_s=med([r["other_cpu_s"] for r in good]),
        errors=sorted({r["errors"] for r in good if r["errors"]}),
    )
    if workload.startswith("stream"):
        # seconds of server CPU per GB echoed back
        s["server_cpu_s_per_gb"] = med(
            [r["server_cpu_s"] / (r["value"] * r["seconds"] / 1e3)
             for r in good if r["value"] and r["server_cpu_s"] is not None]
        )
    else:
        s["server_cpu_us_per_req"] = med(
            [r["server_cpu_s"] * 1e6 / r["requests"]
             for r in good if r["requests"] and r["server_cpu_s"] is not None]
        )
    return s


def summarize_idle(peer, idle, skipped, goal):
    rs = [r for r in idle if r["peer"] == peer]
    good = [r for r in rs if r["ok"]]
    s = {
        "peer": peer,
        "runs": len(rs),
        "good_runs": len(good),
        "skipped": skipped,
        "failures": sorted({r["error"] for r in rs if not r["ok"]}),
    }
    if good:
        hwm = [r["vmhwm_kb"] * 1024 / 1e6 for r in good]
        s.update(
            vmhwm_mb_median=med(hwm),
            vmhwm_mb_min=min(hwm),
            vmhwm_mb_max=max(hwm),
            rss_before_mb=med([r["rss_before_kb"] * 1024 / 1e6 for r in good]),
            rss_held_mb=med([r["rss_held_kb"] * 1024 / 1e6 for r in good]),
            kb_per_conn=med(
                [(r["rss_held_kb"] - r["rss_before_kb"]) * 1.024 / r["connections"] for r in good]
            ),
            open_s=med([r["open_s"] for r in good]),
            server_cpu_s=med([r["server_cpu_s"] for r in good]),
            under_goal=med(hwm) < goal,
        )
    return s


TITLES = {
    "echo": ("echo: bench echo -c 50 -s 64 (50 connections, 64-byte round trips)", "req/s"),
    "stream": ("stream: bench stream -P 1 (1 connection, bulk both ways, echo checked)", "MB/s"),
    "connect": ("connect: bench connect -c 10 against daytime (connect, read to EOF, close)", "conn/s"),
    "udp": ("udp: bench udp -c 16 -s 64 (16 clients, 1 datagram in flight each)", "req/s"),
    "echo-plain": ("echo-plain: plainload echo -c 50 -s 64 (the second generator: a writer and a "
                   "reader thread per connection)", "req/s"),
    "stream-plain": ("stream-plain: plainload stream (1 connection, 1 MiB writes, every byte "
                     "checked)", "MB/s"),
    "connect-plain": ("connect-plain: plainload connect -c 10 against daytime", "conn/s"),
}


def print_table(workload, rows, ceiling):
    title, unit = TITLES[workload]
    base = next((s.get("median") for s in rows if s["peer"] == "netsmith"), None)
    print(f"\n{title}")
    head = f"{'peer':<13} {unit + ' (median)':>15} {'min-max':>17} {'vs netsmith':>11}"
    if workload.startswith("stream"):
        head += f" {'of iperf3':>9} {'srv CPU s/GB':>12}"
    else:
        head += f" {'p50 ms':>7} {'p99 ms':>7} {'srv CPU us/req':>14}"
    print(head + f" {'srv CPU s':>9} {'gen CPU s':>9}  errors")
    for s in rows:
        p = s["peer"]
        if s["skipped"]:
            print(f"{p:<13} SKIPPED: {s['skipped']}")
            continue
        if not s["good_runs"]:
            why = s["failures"][0] if s["failures"] else "no run"
            print(f"{p:<13} {'' if why.startswith('deadlock') else 'FAILED: '}{why[:120]}")
            continue
        m = s["median"]
        line = f"{p:<13} {fmt(m, ',.0f'):>15} {fmt(s['min'], ',.0f') + '-' + fmt(s['max'], ',.0f'):>17}"
        line += f" {fmt(m / base if base else None, '.2f'):>11}"
        if workload.startswith("stream"):
            frac = None
            if p == "iperf3":
                frac = 1.0
            elif ceiling and p != "iperf3-bidir":
                frac = m / ceiling
            line += f" {fmt(frac, '.2f'):>9} {fmt(s.get('server_cpu_s_per_gb'), '.2f'):>12}"
        else:
            line += (f" {fmt(s['p50_ms'], '.3f'):>7} {fmt(s['p99_ms'], '.3f'):>7}"
                     f" {fmt(s.get('server_cpu_us_per_req'), '.1f'):>14}")
        line += f" {fmt(s['server_cpu_s'], '.2f'):>9} {fmt(s['gen_cpu_s'], '.2f'):>9}"
        notes = list(s["errors"])
        if s["good_runs"] < s["runs"]:
            notes.append(f"{s['runs'] - s['good_runs']} of {s['runs']} runs failed: {s['failures'][0][:70]}")
        print(line + "  " + ("; ".join(notes) if notes else "-"))


def print_idle(rows, conns, goal):
    print(f"\nidle: {conns:,} idle echo connections held; server memory (goal: peak under {goal:g} MB)")
    print(f"{'peer':<13} {'peak RSS MB':>11} {'min-max':>11} {'RSS before':>10} {'RSS held':>9}"
          f" {'KB/conn':>8} {'open s':>7} {'srv CPU s':>9}  goal")
    for s in rows:
        p = s["peer"]
        if s["skipped"]:
            print(f"{p:<13} SKIPPED: {s['skipped']}")
        elif not s["good_runs"]:
            print(f"{p:<13} FAILED: {(s['failures'] or ['no run'])[0][:120]}")
        else:
            span = f"{s['vmhwm_mb_min']:.1f}-{s['vmhwm_mb_max']:.1f}"
            print(f"{p:<13} {s['vmhwm_mb_median']:>11.1f} {span:>11} {s['rss_before_mb']:>10.1f}"
                  f" {s['rss_held_mb']:>9.1f} {s['kb_per_conn']:>8.2f} {s['open_s']:>7.2f}"
                  f" {fmt(s['server_cpu_s'], '.2f'):>9}  {'met' if s['under_goal'] else 'MISSED'}")


def report(work, out_path):
    env = os.environ
    reps, duration = int(env["REPS"]), float(env["DURATION"])
    goal, conns = float(env["IDLE_GOAL_MB"]), int(env["IDLE_CONNS"])
    order = json.loads(env["ORDER"])
    peers = {}
    for line in open(f"{work}/peers.tsv"):
        p, version, skip = line.rstrip("\n").split("\t")
        peers[p] = {"version": version, "skipped": None if skip == "-" else skip}
    runs, idle = read_runs(work), read_idle(work)

    summary = {
        w: [summarize(w, p, runs, peers[p]["skipped"]) for p in ps] for w, ps in order.items() if w != "idle"
    }
    idle_summary = [summarize_idle(p, idle, peers[p]["skipped"], goal) for p in order.get("idle", [])]
    ceiling = next(
        (s["median"] for s in summary.get("stream", []) if s["peer"] == "iperf3" and s.get("median")), None
    )
    for w, rows in summary.items():
        print_table(w, rows, ceiling)
    if "idle" in order:
        print_idle(idle_summary, conns, goal)
    cpus = os.cpu_count()
    print(f"""
MB = 10^6 bytes, KB = 10^3. Medians over {reps} runs of {duration:g} s; min-max over the good runs.
vs netsmith = peer median / netsmith median (above 1: the peer did better).
stream: MB/s echoed back (each way). of iperf3 = fraction of iperf3's single-stream
  one-way loopback throughput (the ceiling); iperf3-bidir = iperf3 --bidir, MB/s each way.
CPU = user+sys seconds in the run (median): srv = the server and its reaped children
  (/proc/PID/stat), gen = the generator (/usr/bin/time). They share {cpus} CPUs, so
  {cpus * duration:g} CPU s is all there is: a gen CPU near that means the generator is the limit.
idle: server RSS (/proc/PID/status) before, with all held (KB/conn from those two), and
  VmHWM, its peak over its life.
Raw runs: {os.path.relpath(out_path, env['ROOT'])}""")

    doc = {
        "benchmark": "serve",
        "date": env["DATE"],
        "machine": {"kernel": os.uname().release, "cpus": cpus, "cpu": env["CPU_MODEL"]},
        "reps": reps,
        "duration_s": duration,
        "mb": 1000000,
        "generator_threads": env.get("GEN_THREADS") or None,
        "max_other_cpus": float(env["MAX_OTHER"]),
        "attempts": int(env["ATTEMPTS"]),
        "idle_connections": conns,
        "idle_goal_mb": goal,
        "peers": peers,
        "workloads": order,
        "summary": summary,
        "idle_summary": idle_summary,
        "runs": runs,
        "idle_runs": idle,
    }
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    if sys.argv[1] == "parse":
        parse(*sys.argv[2:7])
    elif sys.argv[1] == "report":
        report(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
