//! Every fuzz target's seeds and every crash the fuzzer ever found, replayed in the normal
//! suite: `fuzz/corpus/<target>/` (the seeds) and `fuzz/regressions/<target>/` (each crash,
//! minimized, added when it was fixed). The checks are the fuzz targets' own
//! (`fuzz/src/checks.rs`, included here), so a fixed crash stays fixed without nightly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../fuzz/src/checks.rs"]
mod checks;
#[path = "../../../fuzz/src/seeds.rs"]
mod seeds;

use std::path::PathBuf;

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Runs `target`'s check on every stored input; returns how many there were.
fn replay(target: &str) -> usize {
    let mut n = 0;
    for folder in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(folder).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            eprintln!("{}", path.display());
            checks::run(target, &data);
            n += 1;
        }
    }
    n
}

#[test]
fn every_target_has_seeds_and_they_and_past_crashes_pass_their_checks() {
    for target in checks::TARGETS {
        let n = replay(target);
        assert!(n > 0, "fuzz/corpus/{target} has no seeds");
    }
}

/// The consensus seeds reach deep: three proposals in order commit the first block, and a
/// proposal whose ancestors are missing, followed by the sync response that brings them, does
/// too (Y1-Y4).
#[test]
fn the_consensus_seeds_commit_in_order_and_through_sync() {
    for name in ["chain", "sync"] {
        let data = std::fs::read(fuzz_dir().join("corpus/consensus").join(name)).unwrap();
        assert_eq!(checks::consensus_commits(&data), 1, "{name}");
    }
}

/// The seeds are what `seeds::seeds` generates (regenerate with
/// `cargo nextest run -p warpnet-consensus --test fuzz_corpus --run-ignored only`).
#[test]
fn the_stored_seeds_are_current() {
    for (target, name, data) in seeds::seeds() {
        let path = fuzz_dir().join("corpus").join(target).join(&name);
        let stored = std::fs::read(&path).unwrap_or_default();
        assert!(stored == data, "{} is stale: regenerate the seeds", path.display());
    }
}

#[test]
#[ignore = "writes fuzz/corpus: run by hand when the seeds change"]
fn write_seed_corpora() {
    for (target, name, data) in seeds::seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), data).unwrap();
    }
}
