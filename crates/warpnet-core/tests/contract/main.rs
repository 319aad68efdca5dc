//! The core's contract, rule by rule, as scenarios: one test binary, one module per rule family.
//!
//! Each test is named after the rule it proves (the names used in `lib.rs` and in the code
//! comments). Tests drive real [`warpnet_core::Core`]s with an Ed25519 committee (four members
//! unless a test needs more: `f = 1`, `q = 3`) and compare whole steps exactly. Leaders are
//! never hard-coded: the rotation is a per-cycle permutation, so every test asks
//! `config.leader`. Every step of every test is checked by the fixtures: the core's invariants
//! (`Core::validate`), the step's deadline and the numbering of writes.
//!
//! | module | rules |
//! |---|---|
//! | `step` | the step contract itself: writes, `Persisted`, `Tick`, deadlines, `submit` |
//! | `safety` | S1, S2, S4 and persist-before-release |
//! | `restart` | S3, S4 and PM0 across restarts |
//! | `commit` | C1, on the tree and in a network of cores (`net`) |
//! | `proposals` | P1–P7, sender and epoch checks |
//! | `pacemaker` | PM1, PM3–PM7 |
//! | `quorum_evidence` | Q1, E1 |
//! | `sync` | Y1–Y3 |
//! | `mempool` | M1, M2 |
//! | `review` | findings of the core's safety review, pinned (Q1, P2, P6, PM0, E1, Y1) |

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fixtures;
mod net;

mod commit;
mod mempool;
mod pacemaker;
mod proposals;
mod quorum_evidence;
mod restart;
mod review;
mod safety;
mod step;
mod sync;
