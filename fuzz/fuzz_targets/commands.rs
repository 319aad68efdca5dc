//! Fuzz target `commands`: see `warpnet_fuzz::checks::commands`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warpnet_fuzz::checks::commands(data));
