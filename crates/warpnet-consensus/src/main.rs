//! `warpnet-consensus`: the single binary. A node (`node init`, `node run`), the genesis
//! committee (`committee create`), a local cluster in one command (`dev`), `cluster status`,
//! the registry's client commands (`user keygen | claim | lookup`), the load generator
//! (`bench`), and the deterministic simulator (`sim`).

#![forbid(unsafe_code)]

mod bench;
mod cluster;
mod dev;
mod dev_members;
mod member;
mod node;
mod pidfile;
mod routing;
mod sim;
mod sim_raft;
mod user;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "warpnet-consensus",
    version,
    about = "WarpNet Consensus: BFT consensus for WarpNet bootstrap nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a node's key and config, or run a node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Assemble the genesis committee file from the members' public information.
    #[command(subcommand)]
    Committee(node::CommitteeCommand),
    /// Run a local cluster of N nodes on 127.0.0.1, each as its own process.
    Dev(dev::DevArgs),
    /// Ask a node about the committee and its progress.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// The committee's members and its changes: list, pending, endorse a candidate, remove.
    #[command(subcommand)]
    Member(member::MemberCommand),
    /// Own user IDs: create a key, claim an ID, look one up.
    #[command(subcommand)]
    User(user::UserCommand),
    /// Load a cluster with signed claims; report throughput, latency percentiles and errors.
    Bench(bench::BenchArgs),
    /// Run the deterministic simulator over many seeds (faults, Byzantine replicas, invariants).
    Sim(sim::SimArgs),
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).try_init();
}

fn main() -> std::process::ExitCode {
    // One clear line (with its causes) for an error, never a stack trace.
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sim(args) => sim::run(args),
        Command::Node(c) => {
            init_logs();
            runtime()?.block_on(node::run(c))
        }
        Command::Committee(c) => node::committee(c),
        Command::Dev(args) => {
            init_logs();
            runtime()?.block_on(dev::run(args))
        }
        Command::Cluster(c) => runtime()?.block_on(cluster::run(c)),
        Command::Member(c) => runtime()?.block_on(member::run(c)),
        Command::User(c) => runtime()?.block_on(user::run(c)),
        Command::Bench(args) => runtime()?.block_on(bench::run(args)),
    }
}
