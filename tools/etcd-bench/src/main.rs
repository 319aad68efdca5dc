//! `etcd-bench`: drives an etcd cluster the way `warpnet-consensus bench` drives ours, for the
//! side-by-side comparison in `scripts/bench-vs-etcd.py`.
//!
//! Each client owns one gRPC connection (clients spread round-robin over the endpoints) and
//! runs a closed loop: one claim, its answer, the next claim. A claim is one transaction,
//! `If(CreateRevision(key) == 0) Then(Put(key, owner)) Else(Get(key))`: put-if-absent, the
//! answer saying whether this client got the ID (`claimed`) or who has it (`taken`). As in
//! our bench, a share of the claims (`--duplicates`, 5 %) repeat the previous claim's ID with
//! another client, throughput counts every answer in the window and latency is over `claimed`
//! answers only. Results go to stdout and, with `--json`, in the same shape as our bench's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};

#[derive(Parser)]
struct Args {
    /// etcd client URLs (host:port), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    endpoints: Vec<String>,
    /// Concurrent clients, each with its own connection.
    #[arg(long, default_value_t = 256)]
    clients: usize,
    /// Seconds to measure.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds to load before measuring.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Fraction of claims that repeat the previous claim's ID (answered `taken`).
    #[arg(long, default_value_t = 0.05)]
    duplicates: f64,
    /// Key prefix of this run (keys are `u/<prefix>_<n>`); default: derived from the clock.
    #[arg(long)]
    prefix: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Instead of the benchmark: register N IDs as fast as possible (the registry-growth
    /// curve's fill), with `--clients` clients and txns of `--fill-batch` puts.
    #[arg(long)]
    fill: Option<u64>,
    #[arg(long, default_value_t = 128)]
    fill_batch: u64,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// The ID of the `i`-th claim: every `1/duplicates`-th claim repeats the one before.
fn id_of(i: u64, duplicates: f64) -> u64 {
    let dup = i > 0
        && duplicates > 0.0
        && (i as f64 * duplicates).floor() != ((i + 1) as f64 * duplicates).floor();
    if dup {
        i - 1
    } else {
        i
    }
}

async fn connect(endpoint: &str) -> anyhow::Result<Client> {
    Client::connect([endpoint], None).await.with_context(|| format!("connecting to {endpoint}"))
}

async fn fill(a: &Args, prefix: &str, total: u64) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        let mut kv = connect(&a.endpoints[c % a.endpoints.len()]).await?.kv_client();
        let (next, prefix, batch) = (next.clone(), prefix.to_owned(), a.fill_batch);
        tasks.push(tokio::spawn(async move {
            loop {
                let from = next.fetch_add(batch, Ordering::Relaxed);
                if from >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let ops: Vec<TxnOp> = (from..(from + batch).min(total))
                    .map(|n| TxnOp::put(format!("u/{prefix}_{n:x}"), vec![7u8; 32], None))
                    .collect();
                kv.txn(Txn::new().and_then(ops)).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    println!("filled {total} IDs in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    if a.clients == 0 || a.endpoints.is_empty() {
        bail!("need at least one client and one endpoint");
    }
    let prefix = a.prefix.clone().unwrap_or_else(|| {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        format!("e{:x}", t as u64)
    });
    if let Some(total) = a.fill {
        return fill(&a, &prefix, total).await;
    }
    let mut conns = Vec::with_capacity(a.clients);
    for c in 0..a.clients {
        conns.push(connect(&a.endpoints[c % a.endpoints.len()]).await?.kv_client());
    }
    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let measure_to = measure_from + Duration::from_secs_f64(a.duration);
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let acked = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (c, mut kv) in conns.into_iter().enumerate() {
        let (stop, next, acked, prefix) =
            (stop.clone(), next.clone(), acked.clone(), prefix.clone());
        let duplicates = a.duplicates;
        // Each client's own value: its "owner key".
        let owner = format!("{c:064x}").into_bytes();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut tally = Tally::default();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let key = format!("u/{prefix}_{:x}", id_of(i, duplicates));
                let txn = Txn::new()
                    .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                    .and_then([TxnOp::put(key.clone(), owner.clone(), None)])
                    .or_else([TxnOp::get(key, None)]);
                let sent = Instant::now();
                let answer = kv.txn(txn).await;
                let latency = sent.elapsed();
                let kind = match answer {
                    Ok(r) if r.succeeded() => Ok("claimed"),
                    Ok(_) => Ok("taken"),
                    Err(e) => Err(e.to_string().chars().take(60).collect::<String>()),
                };
                if kind.is_ok() {
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                if sent >= measure_from && sent < measure_to {
                    match kind {
                        Ok(outcome) => {
                            if outcome == "claimed" {
                                tally.latencies_us.push(latency.as_micros() as u64);
                            }
                            *tally.outcomes.entry(outcome.to_owned()).or_default() += 1;
                        }
                        Err(e) => *tally.errors.entry(e).or_default() += 1,
                    }
                }
            }
            tally
        }));
    }
    let mut last = 0;
    let mut tick =
        tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
    while Instant::now() < measure_to {
        tick.tick().await;
        let now = acked.load(Ordering::Relaxed);
        let phase = if Instant::now() < measure_from { "warm-up" } else { "measuring" };
        eprintln!(
            "{:>5.1} s {phase}: {} acknowledged/s",
            start.elapsed().as_secs_f64(),
            now - last
        );
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    let mut lat = Vec::new();
    let (mut outcomes, mut errors) =
        (BTreeMap::<String, u64>::new(), BTreeMap::<String, u64>::new());
    for t in tasks {
        let t = t.await?;
        lat.extend(t.latencies_us);
        for (k, v) in t.outcomes {
            *outcomes.entry(k).or_default() += v;
        }
        for (k, v) in t.errors {
            *errors.entry(k).or_default() += v;
        }
    }
    lat.sort_unstable();
    let ok: u64 = outcomes.values().sum();
    let throughput = ok as f64 / a.duration;
    let pct = |p| percentile(&lat, p);
    let max = lat.last().map_or(0.0, |m| *m as f64 / 1000.0);
    println!(
        "etcd-bench: {} endpoint(s), {} clients, {:.1} s measured after {:.1} s warm-up, closed loop, duplicates {:.0} %",
        a.endpoints.len(),
        a.clients,
        a.duration,
        a.warmup,
        a.duplicates * 100.0
    );
    println!("throughput: {throughput:.1} claims/s ({ok} in {:.1} s): {outcomes:?}", a.duration);
    println!(
        "latency ms (`claimed` answers): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
        pct(50.0),
        pct(90.0),
        pct(99.0),
        pct(99.9),
        max
    );
    println!(
        "errors: {}",
        if errors.is_empty() { "none".to_owned() } else { format!("{errors:?}") }
    );
    if let Some(path) = &a.json {
        let v = serde_json::json!({
            "system": "etcd",
            "prefix": prefix,
            "nodes": a.endpoints,
            "clients": a.clients,
            "duration_s": a.duration,
            "warmup_s": a.warmup,
            "duplicates": a.duplicates,
            "throughput": throughput,
            "acknowledged": ok,
            "outcomes": outcomes,
            "latency_ms": {"p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "p99_9": pct(99.9), "max": max},
            "errors": errors,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
