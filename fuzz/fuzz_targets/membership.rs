//! Fuzz target `membership`: see `warpnet_fuzz::checks::membership`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warpnet_fuzz::checks::membership(data));
