//! `bench`: a load generator for the registry. It pre-generates keys and signed claims, drives
//! them over keep-alive connections spread across the given nodes, and reports acknowledged
//! claims per second, latency percentiles and errors by kind. `--spawn N` runs it against a
//! fresh local cluster that it starts and tears down itself.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use hyper::Method;
use serde_json::Value;
use warpnet_client::http::{self, Connection};
use warpnet_state::{Claim, UserId};
use warpnet_types::crypto::signer_from_seed;
use warpnet_types::{NetworkId, SchemeId, Signer};

use crate::dev::{self, DevArgs};

#[derive(Args)]
pub struct BenchArgs {
    /// A node's API URL; repeat for several (clients are spread across them). Default:
    /// http://127.0.0.1:7000, or the spawned cluster's nodes.
    #[arg(long = "node")]
    nodes: Vec<String>,
    /// Start a fresh local cluster of N nodes (as `dev` does), load it, then stop and delete it.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    spawn: Option<u16>,
    /// API port of the spawned cluster's node 0 (its p2p ports start at this + 100).
    #[arg(long, default_value_t = 7400)]
    spawn_port: u16,
    /// The spawned cluster's consensus: `hotstuff` or `raft`.
    #[arg(long, value_enum, default_value_t = crate::node::Consensus::Hotstuff)]
    consensus: crate::node::Consensus,
    /// Which of the nodes the clients send to: all of them (`any`, clients spread in turn),
    /// or only the Raft leader, or only one Raft follower (Raft mode: where a client sits
    /// decides how many messages a claim takes, so a comparison names it).
    #[arg(long, value_enum, default_value_t = Target::Any)]
    target: Target,
    /// Concurrent clients, each with its own keep-alive connection and key.
    #[arg(long, default_value_t = 256)]
    clients: usize,
    /// How long to measure (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// How long to load before measuring.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    warmup: Duration,
    /// Target claims per second over all clients (open loop; latency counts from the scheduled
    /// send time). Default: each client sends its next claim as soon as it has an answer.
    #[arg(long)]
    rate: Option<f64>,
    /// Fraction of claims that claim an ID another client also claims (answered `taken`).
    #[arg(long, default_value_t = 0.05)]
    duplicates: f64,
    /// Claims to pre-generate per second of the run when no --rate is given.
    #[arg(long, default_value_t = 6_000)]
    pool_per_second: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The run's ID prefix (8 hex digits): claims are of `b<prefix>_<n>`. Default: random,
    /// printed, so a later `--lookups` run can read the same IDs.
    #[arg(long, value_parser = parse_prefix)]
    prefix: Option<u32>,
    /// Look IDs up instead of claiming them: GET /v1/users/b<prefix>_<n> for random n below
    /// --lookup-range (found and not found both count as answered).
    #[arg(long, requires = "prefix")]
    lookups: bool,
    /// How many IDs of the prefix the lookups draw from.
    #[arg(long, default_value_t = 1_000_000)]
    lookup_range: u64,
}

/// Where the clients send their claims (`--target`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Target {
    Any,
    Leader,
    Follower,
}

/// The node among `nodes` that is the Raft leader (`Target::Leader`) or a follower, once
/// one of them reports a leader; refused for a HotStuff cluster (its leader changes every
/// round).
async fn pick(nodes: &[String], target: Target) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut roles = Vec::new();
        for n in nodes {
            let (status, body) = http::get(&format!("{n}/v1/cluster")).await?;
            if status != 200 {
                bail!("{n} answered {status} to /v1/cluster");
            }
            let v: Value = serde_json::from_str(&body)?;
            if v["consensus"] != "raft" {
                bail!("--target leader|follower needs a Raft cluster: {n} runs {}", v["consensus"]);
            }
            roles.push(v["raft"]["role"].as_str().unwrap_or("").to_owned());
        }
        if roles.iter().any(|r| r == "leader") {
            let want = if target == Target::Leader { "leader" } else { "follower" };
            if let Some(i) = roles.iter().position(|r| r == want) {
                return Ok(nodes[i].clone());
            }
            bail!("--target follower: no follower among the {} node(s) given", nodes.len());
        }
        if Instant::now() > deadline {
            bail!("no node reported a Raft leader within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The API limits of a spawned cluster's nodes (scripts/bench-vs-etcd.py --growth applies the same).
const BENCH_LIMITS: &str = "api_connections_max = 65536\napi_client_connections_max = 65536\napi_client_requests_per_second = 10000000\napi_client_burst = 10000000\n";

fn parse_prefix(s: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 16).map_err(|_| format!("bad prefix {s:?}: use up to 8 hex digits"))
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = match s.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = n.parse().map_err(|_| format!("bad duration {s:?}: use e.g. 30s, 500ms, 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("bad duration unit in {s:?}: use ms, s or m")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("bad duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// What one client measured inside the window.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    outcomes: BTreeMap<String, u64>,
    errors: BTreeMap<String, u64>,
}

/// One prepared request.
enum Req {
    /// A pre-signed claim's JSON body.
    Claim(Vec<u8>),
    /// A lookup's path.
    Lookup(String),
}

struct Plan {
    /// Prepared requests, per client.
    bodies: Vec<Vec<Req>>,
}

fn random_prefix() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mixed = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(std::process::id());
    (mixed ^ (mixed >> 32)) as u32
}

/// What one client sends, in order (claims pre-signed; lookups made as they are sent).
type Source = Box<dyn Iterator<Item = Req> + Send>;

/// Endless lookups of IDs `b<run>_<n>`, n pseudo-random below `range`, one stream per client.
fn lookup_source(client: usize, run: u32, range: u64) -> Source {
    let mut x = (u64::from(run) << 20 | client as u64) | 1;
    Box::new(std::iter::from_fn(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = x % range.max(1);
        Some(Req::Lookup(format!("/v1/users/b{run:08x}_{n:x}")))
    }))
}

/// Signs the claims: one key per client, unique IDs, and every `1/duplicates`-th claim on the
/// previous claim's ID (held by another client, so the two race).
fn plan(network: &NetworkId, clients: usize, total: usize, duplicates: f64, run: u32) -> Plan {
    let keys: Vec<Box<dyn Signer>> = (0..clients)
        .map(|c| signer_from_seed(SchemeId::Ed25519, (u64::from(run) << 20) + c as u64))
        .collect();
    let ids: Vec<String> = (0..total)
        .map(|i| {
            let dup = i > 0
                && duplicates > 0.0
                && (i as f64 * duplicates).floor() != ((i + 1) as f64 * duplicates).floor();
            let j = if dup { i - 1 } else { i };
            format!("b{run:08x}_{j:x}")
        })
        .collect();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = total.div_ceil(threads).max(1);
    let mut signed: Vec<(usize, Vec<u8>)> = Vec::with_capacity(total);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..total)
            .step_by(chunk)
            .map(|start| {
                let (keys, ids) = (&keys, &ids);
                s.spawn(move || {
                    (start..(start + chunk).min(total))
                        .map(|i| {
                            let c = i % clients;
                            let id = UserId::parse(&ids[i]).expect("generated IDs are valid");
                            let request_id = format!("bench-{run:08x}-{i}");
                            let claim = Claim::sign(network, id, keys[c].as_ref(), &request_id)
                                .expect("generated request ids are valid");
                            let body = serde_json::json!({
                                "user_id": claim.user_id.as_str(),
                                "owner_key": claim.owner_key.to_hex(),
                                "signature": hex::encode(claim.signature.0),
                                "request_id": request_id,
                            });
                            (c, serde_json::to_vec(&body).unwrap_or_default())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            signed.extend(h.join().unwrap_or_default());
        }
    });
    let mut bodies: Vec<Vec<Req>> = (0..clients).map(|_| Vec::new()).collect();
    for (c, body) in signed {
        bodies[c].push(Req::Claim(body));
    }
    Plan { bodies }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Waits until every node has a recent certificate and sees every other member connected.
async fn wait_ready(nodes: &[String]) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut ready = true;
        for n in nodes {
            let ok = match http::get(&format!("{n}/v1/cluster")).await {
                Ok((200, body)) => serde_json::from_str::<Value>(&body).is_ok_and(|v| {
                    v["committed_height"].as_u64().unwrap_or(0) > 0
                        && v["members"]
                            .as_array()
                            .is_some_and(|m| m.iter().all(|m| m["connected"] == Value::Bool(true)))
                }),
                _ => false,
            };
            ready &= ok;
        }
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the cluster did not become ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn run(a: BenchArgs) -> anyhow::Result<()> {
    if a.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if !(0.0..=0.5).contains(&a.duplicates) {
        bail!("--duplicates must be between 0 and 0.5");
    }
    if a.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of claims per second");
    }
    // A spawned cluster lives exactly as long as this run.
    let mut spawned = Vec::new();
    let spawn_dir = std::env::temp_dir().join(format!("warpnet-bench-{}", std::process::id()));
    let mut nodes = a.nodes.clone();
    if let Some(n) = a.spawn {
        let args = DevArgs {
            action: None,
            nodes: Some(n),
            consensus: a.consensus,
            dir: spawn_dir.clone(),
            api_port: a.spawn_port,
            p2p_port: a.spawn_port.checked_add(100).context("--spawn-port too high")?,
        };
        let _ = std::fs::remove_dir_all(&spawn_dir);
        dev::prepare(&args)?;
        // All of bench is one client (one IP address): lift the per-client limits, which
        // would otherwise cap what is measured.
        for i in 0..n {
            let path = spawn_dir.join(format!("node-{i}")).join("node.toml");
            let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
            std::io::Write::write_all(&mut f, BENCH_LIMITS.as_bytes())?;
        }
        let exe = std::env::current_exe().context("finding this executable")?;
        for i in 0..n {
            spawned.push(dev::spawn_node(&exe, &spawn_dir, i)?);
        }
        nodes = (0..n).map(|i| format!("http://127.0.0.1:{}", a.spawn_port + i)).collect();
        eprintln!("spawned {n} nodes in {}", spawn_dir.display());
    }
    if nodes.is_empty() {
        nodes.push("http://127.0.0.1:7000".into());
    }
    let nodes: Vec<String> = nodes.iter().map(|n| n.trim_end_matches('/').to_owned()).collect();
    let result = drive(&a, &nodes).await;
    for child in &spawned {
        if let Some(pid) = child.id() {
            dev::terminate(pid).await;
        }
    }
    for mut child in spawned {
        let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    }
    if a.spawn.is_some() {
        let _ = std::fs::remove_dir_all(&spawn_dir);
    }
    result
}

async fn drive(a: &BenchArgs, nodes: &[String]) -> anyhow::Result<()> {
    wait_ready(nodes).await?;
    let picked;
    let nodes = match a.target {
        Target::Any => nodes,
        target => {
            picked = [pick(nodes, target).await?];
            eprintln!("--target {target:?}: every client sends to {}", picked[0]);
            &picked[..]
        }
    };
    let (status, body) = http::get(&format!("{}/v1/cluster", nodes[0])).await?;
    if status != 200 {
        bail!("{} answered {status} to /v1/cluster", nodes[0]);
    }
    let cluster: Value = serde_json::from_str(&body)?;
    let network = NetworkId::new(cluster["network"].as_str().unwrap_or(""))
        .map_err(|e| anyhow::anyhow!("the node's network id: {e}"))?;
    let committee = cluster["total_nodes"].as_u64().unwrap_or(0);
    let run_secs = (a.warmup + a.duration).as_secs_f64();
    let total = match a.rate {
        Some(r) => (r * run_secs * 1.05) as usize + a.clients,
        None => (a.pool_per_second as f64 * run_secs) as usize + a.clients,
    };
    let run = a.prefix.unwrap_or_else(random_prefix);
    let sources: Vec<Source> = if a.lookups {
        eprintln!("looking up IDs b{run:08x}_<n>, n below {}", a.lookup_range);
        (0..a.clients).map(|c| lookup_source(c, run, a.lookup_range)).collect()
    } else {
        // A prefix already claimed would be answered from recorded results without consensus:
        // the figures would measure that shortcut, not claims.
        let probe = format!("{}/v1/users/b{run:08x}_0", nodes[0]);
        if matches!(http::get(&probe).await, Ok((200, _))) {
            bail!("IDs of prefix {run:08x} are already claimed on this cluster: pick another --prefix (or none)");
        }
        eprintln!("signing {total} claims of IDs b{run:08x}_<n> for {} clients…", a.clients);
        let signing = Instant::now();
        let network2 = network.clone();
        let (clients, duplicates) = (a.clients, a.duplicates);
        let plan =
            tokio::task::spawn_blocking(move || plan(&network2, clients, total, duplicates, run))
                .await
                .context("signing claims")?;
        eprintln!("signed in {:.1} s", signing.elapsed().as_secs_f64());
        plan.bodies.into_iter().map(|b| Box::new(b.into_iter()) as Source).collect()
    };
    eprintln!("loading for {:?} after a {:?} warm-up (prefix {run:08x})", a.duration, a.warmup);

    let start = Instant::now() + Duration::from_millis(200);
    let measure_from = start + a.warmup;
    let measure_to = measure_from + a.duration;
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let exhausted = Arc::new(AtomicU64::new(0));
    let tallies = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    let lookups = a.lookups;
    for (c, mut bodies) in sources.into_iter().enumerate() {
        let node = nodes[c % nodes.len()].clone();
        let (stop, acked, failed, exhausted, tallies) =
            (stop.clone(), acked.clone(), failed.clone(), exhausted.clone(), tallies.clone());
        let rate = a.rate;
        let clients = a.clients;
        tasks.push(tokio::spawn(async move {
            let authority = node.trim_start_matches("http://").to_owned();
            let mut conn: Option<Connection> = None;
            let mut tally = Tally::default();
            // Open loop: this client's k-th send is due at start + (k * clients + c) / rate.
            let interval = rate.map(|r| Duration::from_secs_f64(clients as f64 / r));
            let offset = rate.map_or(Duration::ZERO, |r| Duration::from_secs_f64(c as f64 / r));
            tokio::time::sleep_until((start + offset).into()).await;
            let mut k = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let Some(body) = bodies.next() else {
                    exhausted.fetch_add(1, Ordering::Relaxed);
                    break;
                };
                let due = match interval {
                    Some(i) => {
                        let due = start + offset + i * k;
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None => Instant::now(),
                };
                k += 1;
                if conn.is_none() {
                    conn = Connection::open(&authority).await.ok();
                }
                let answer = match (conn.as_mut(), body) {
                    (Some(cn), Req::Claim(body)) => {
                        cn.request(Method::POST, "/v1/claims", Some(body)).await.ok()
                    }
                    (Some(cn), Req::Lookup(path)) => {
                        cn.request(Method::GET, &path, None).await.ok()
                    }
                    (None, _) => None,
                };
                let latency = due.elapsed();
                let kind = match &answer {
                    Some((200 | 409, b)) => Ok(serde_json::from_str::<Value>(b)
                        .ok()
                        .and_then(|v| v["status"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "found".into())),
                    Some((404, b)) if b.contains("not_found") => Ok("not_found".to_owned()),
                    Some((s, b)) => Err(serde_json::from_str::<Value>(b)
                        .ok()
                        .and_then(|v| v["error"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| format!("http_{s}"))),
                    None => {
                        conn = None;
                        Err("connection".to_owned())
                    }
                };
                match &kind {
                    Ok(_) => acked.fetch_add(1, Ordering::Relaxed),
                    Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                };
                if due >= measure_from && due < measure_to {
                    match kind {
                        Ok(outcome) => {
                            // Latency of claims that went through consensus only:
                            // `already_yours`/`taken` may be answered from committed state.
                            if lookups || outcome == "claimed" {
                                tally.latencies_us.push(latency.as_micros() as u64);
                            }
                            *tally.outcomes.entry(outcome).or_default() += 1;
                        }
                        Err(e) => *tally.errors.entry(e).or_default() += 1,
                    }
                }
            }
            if let Ok(mut t) = tallies.lock() {
                t.push(tally);
            }
        }));
    }
    // A progress line per second, until the window closes.
    let mut last = 0;
    let mut tick =
        tokio::time::interval_at((start + Duration::from_secs(1)).into(), Duration::from_secs(1));
    while Instant::now() < measure_to {
        tick.tick().await;
        let now = acked.load(Ordering::Relaxed);
        let phase = if Instant::now() < measure_from { "warm-up" } else { "measuring" };
        eprintln!(
            "{:>5.1} s {phase}: {} acknowledged/s, {now} in all, {} errors",
            start.elapsed().as_secs_f64(),
            now - last,
            failed.load(Ordering::Relaxed)
        );
        last = now;
        if exhausted.load(Ordering::Relaxed) as usize == a.clients {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let tallies = std::mem::take(&mut *tallies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let mut lat: Vec<u64> = Vec::new();
    let (mut outcomes, mut errors) = (BTreeMap::new(), BTreeMap::new());
    for t in tallies {
        lat.extend(t.latencies_us);
        for (k, v) in t.outcomes {
            *outcomes.entry(k).or_insert(0u64) += v;
        }
        for (k, v) in t.errors {
            *errors.entry(k).or_insert(0u64) += v;
        }
    }
    lat.sort_unstable();
    let secs = a.duration.as_secs_f64();
    let ok: u64 = outcomes.values().sum();
    let throughput = ok as f64 / secs;
    let pct = |p| percentile(&lat, p);
    let max = lat.last().map_or(0.0, |m| *m as f64 / 1000.0);
    let exhausted = exhausted.load(Ordering::Relaxed);
    println!(
        "bench ({}, prefix {run:08x}): {} node(s) of a {committee}-member committee, {} clients, {:?} measured after {:?} warm-up, {}, duplicates {:.0} %",
        if a.lookups { "lookups" } else { "claims" },
        nodes.len(),
        a.clients,
        a.duration,
        a.warmup,
        a.rate.map_or("closed loop".into(), |r| format!("target {r} claims/s")),
        a.duplicates * 100.0
    );
    let unit = if a.lookups { "answered lookups" } else { "acknowledged claims" };
    println!("throughput: {throughput:.1} {unit}/s ({ok} in {secs:.1} s): {outcomes:?}");
    let of = if a.lookups { "lookups" } else { "`claimed` answers" };
    println!(
        "latency ms ({of}): p50 {:.2}  p90 {:.2}  p99 {:.2}  p99.9 {:.2}  max {:.2}",
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
    if exhausted > 0 {
        println!("note: {exhausted} clients ran out of pre-signed claims; raise --pool-per-second");
    }
    if errors.keys().any(|k| k.contains("rate_limited") || k.contains("too_many_connections")) {
        println!("note: the nodes limit each client (all of bench is one client, its IP address); raise the api_client_* keys in their node.toml to measure them");
    }
    if let Some(path) = &a.json {
        let v = serde_json::json!({
            "mode": if a.lookups { "lookups" } else { "claims" },
            "prefix": format!("{run:08x}"),
            "nodes": nodes,
            "committee": committee,
            "clients": a.clients,
            "duration_s": secs,
            "warmup_s": a.warmup.as_secs_f64(),
            "rate": a.rate,
            "duplicates": a.duplicates,
            "throughput": throughput,
            "acknowledged": ok,
            "outcomes": outcomes,
            "latency_ms": {"p50": pct(50.0), "p90": pct(90.0), "p99": pct(99.0), "p99_9": pct(99.9), "max": max},
            "errors": errors,
            "clients_exhausted": exhausted,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&v)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_refuse_garbage() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("3h").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn the_plan_signs_valid_claims_with_the_asked_share_of_duplicates() {
        let network = NetworkId::new("dev").unwrap();
        let plan = plan(&network, 4, 200, 0.05, 7);
        let all: Vec<Value> = plan
            .bodies
            .iter()
            .flatten()
            .map(|r| match r {
                Req::Claim(b) => serde_json::from_slice(b).unwrap(),
                Req::Lookup(_) => unreachable!("a claims plan"),
            })
            .collect();
        assert_eq!(all.len(), 200);
        let ids: std::collections::HashSet<&str> =
            all.iter().map(|v| v["user_id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 190, "5 % of the claims repeat an ID");
        for v in all.iter().take(10) {
            let key = warpnet_types::PublicKey(
                hex::decode(v["owner_key"].as_str().unwrap()).unwrap().try_into().unwrap(),
            );
            let signature = warpnet_types::Signature(
                hex::decode(v["signature"].as_str().unwrap()).unwrap().try_into().unwrap(),
            );
            let claim = Claim {
                user_id: UserId::parse(v["user_id"].as_str().unwrap()).unwrap(),
                owner_key: key,
                signature,
                request_id: v["request_id"].as_str().unwrap().into(),
            };
            assert_eq!(claim.verify(&network), Ok(()));
        }
    }
}
