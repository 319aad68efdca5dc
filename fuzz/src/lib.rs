//! WarpNet Consensus fuzz targets (`cargo fuzz`; not a workspace member). Each target runs one
//! check of `checks.rs`, which the normal test suite also runs on every seed (`seeds.rs`) and
//! past crash.

#![forbid(unsafe_code)]

pub mod checks;
pub mod seeds;
