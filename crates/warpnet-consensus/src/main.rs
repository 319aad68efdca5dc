//! `warpnet-consensus`: the single binary. Today it runs the deterministic simulator; the node,
//! the local cluster (`dev`), client commands and `bench` join it in later issues.

#![forbid(unsafe_code)]

mod sim;

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
    /// Run the deterministic simulator over many seeds (faults, Byzantine replicas, invariants).
    Sim(sim::SimArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => sim::run(args),
    }
}
