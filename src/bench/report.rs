//! Driving a run (warmup, duration, progress) and reporting it: a readable
//! summary, `--json` (one object), `--json-stream` (one object per interval).

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::workloads::Measured;
use super::{Common, Run, histogram};
use crate::error::Result;

/// How long workers may take to notice the end of the run.
const WIND_DOWN: Duration = Duration::from_secs(10);

/// The finished report.
pub struct Outcome {
    /// What the command prints: the summary, or `json` on one line.
    pub text: String,
    /// Every figure, as `--json` prints them.
    pub json: Value,
    /// Requests that failed, of every kind.
    pub failed: u64,
    /// "3 timeout, 1 mismatch" (empty when no error).
    pub error_summary: String,
}

/// Runs warmup, then the measured period (or until `-n` requests are done),
/// printing progress; then stops the workers and builds the report.
pub async fn drive(
    run: &Arc<Run>,
    common: &Common,
    mut workers: JoinSet<Measured>,
    label: &str,
    quiet: bool,
) -> Result<Outcome> {
    if !common.warmup.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(common.warmup) => {}
            () = run.stop.cancelled() => {}
        }
        run.measuring.store(true, Ordering::Relaxed);
    }
    let start = Instant::now();
    let deadline = if common.count.is_some() {
        None
    } else {
        Some(start + common.duration)
    };
    let progress = !quiet && !common.json && std::io::stderr().is_terminal();
    let mut last = (start, 0u64, 0u64, 0u64);
    let mut tick = tokio::time::interval_at(start + common.interval, common.interval);
    let mut measured = Vec::new();
    loop {
        tokio::select! {
            () = crate::duration::sleep_until(deadline) => break,
            () = run.stop.cancelled() => break,
            // Workers that end on their own (every connection refused, say).
            done = workers.join_next() => match done {
                Some(Ok(m)) => measured.push(m),
                Some(Err(_)) => {}
                None => break,
            },
            _ = tick.tick() => {
                let now = Instant::now();
                let (ops, sent, recv) = counters(run);
                let secs = now.duration_since(last.0).as_secs_f64();
                let rate = (ops - last.1) as f64 / secs;
                let mbps = ((sent - last.2) + (recv - last.3)) as f64 / secs / 1e6;
                if common.json_stream {
                    let obj = json!({
                        "type": "interval",
                        "elapsed_s": round3(now.duration_since(start).as_secs_f64()),
                        "ops_per_s": round3(rate),
                        "mb_per_s": round3(mbps),
                        "errors": errors_json(run),
                    });
                    crate::stdio::print(&format!("{obj}\n"));
                } else if progress {
                    eprint!(
                        "\r{label}: {:>5.1}s  {:>10.0} req/s  {:>9.1} MB/s  errors {}   ",
                        now.duration_since(start).as_secs_f64(),
                        rate,
                        mbps,
                        run.error_counts().values().sum::<u64>()
                    );
                }
                last = (now, ops, sent, recv);
            }
        }
    }
    let elapsed = start.elapsed();
    run.stop.cancel();
    if progress {
        eprintln!();
    }
    let _ = tokio::time::timeout(WIND_DOWN, async {
        while let Some(done) = workers.join_next().await {
            if let Ok(m) = done {
                measured.push(m);
            }
        }
    })
    .await;
    workers.abort_all();
    Ok(build(run, common, &measured, elapsed, label))
}

fn counters(run: &Run) -> (u64, u64, u64) {
    (
        run.ops.load(Ordering::Relaxed),
        run.bytes_sent.load(Ordering::Relaxed),
        run.bytes_received.load(Ordering::Relaxed),
    )
}

fn errors_json(run: &Run) -> Value {
    let map: serde_json::Map<String, Value> = run
        .error_counts()
        .into_iter()
        .map(|(k, n)| (k.name().to_string(), json!(n)))
        .collect();
    Value::Object(map)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn merge(hists: impl Iterator<Item = Histogram<u64>>) -> Histogram<u64> {
    let mut all = histogram();
    for h in hists {
        let _ = all.add(&h);
    }
    all
}

/// Percentiles of a histogram in milliseconds, as JSON.
fn percentiles(h: &Histogram<u64>) -> Value {
    let ms = |us: u64| round3(us as f64 / 1000.0);
    json!({
        "count": h.len(),
        "p50_ms": ms(h.value_at_quantile(0.5)),
        "p90_ms": ms(h.value_at_quantile(0.9)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "p99_9_ms": ms(h.value_at_quantile(0.999)),
        "max_ms": ms(h.max()),
    })
}

fn build(
    run: &Run,
    common: &Common,
    measured: &[Measured],
    elapsed: Duration,
    label: &str,
) -> Outcome {
    let latency = merge(measured.iter().map(|m| m.latency.clone()));
    let connect = merge(measured.iter().filter_map(|m| m.connect.clone()));
    let first_byte = merge(measured.iter().filter_map(|m| m.first_byte.clone()));
    let (ops, sent, recv) = counters(run);
    let secs = elapsed.as_secs_f64().max(1e-9);
    let errors = run.error_counts();
    let error_summary = errors
        .iter()
        .map(|(k, n)| format!("{n} {}", k.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut obj = json!({
        "type": "result",
        "workload": label,
        "target": common.target,
        "duration_s": round3(secs),
        "requests": ops,
        "requests_per_s": round3(ops as f64 / secs),
        "bytes_sent": sent,
        "bytes_received": recv,
        "mb_per_s_sent": round3(sent as f64 / secs / 1e6),
        "mb_per_s_received": round3(recv as f64 / secs / 1e6),
        "errors": errors_json(run),
        "latency": percentiles(&latency),
    });
    if !connect.is_empty() {
        obj["connect_time"] = percentiles(&connect);
        obj["time_to_first_byte"] = percentiles(&first_byte);
    }
    let text = if common.json || common.json_stream {
        format!("{obj}\n")
    } else {
        let mut t = String::new();
        let _ = writeln!(t, "{label} against {} for {:.2}s", common.target, secs);
        if ops > 0 {
            let _ = writeln!(t, "  requests     {ops} ({:.0}/s)", ops as f64 / secs);
        }
        let _ = writeln!(
            t,
            "  throughput   {:.1} MB/s sent, {:.1} MB/s received",
            sent as f64 / secs / 1e6,
            recv as f64 / secs / 1e6
        );
        let mut line = |name: &str, h: &Histogram<u64>| {
            if !h.is_empty() {
                let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
                let _ = writeln!(
                    t,
                    "  {name:<12} p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  p99.9 {:.3} ms  max {:.3} ms",
                    ms(0.5),
                    ms(0.9),
                    ms(0.99),
                    ms(0.999),
                    h.max() as f64 / 1000.0
                );
            }
        };
        line("latency", &latency);
        line("connect", &connect);
        line("first byte", &first_byte);
        let _ = writeln!(
            t,
            "  errors       {}",
            if error_summary.is_empty() {
                "none"
            } else {
                error_summary.as_str()
            }
        );
        t
    };
    Outcome {
        text,
        json: obj,
        failed: errors.values().sum(),
        error_summary,
    }
}
