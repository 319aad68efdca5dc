//! Fuzz target `consensus`: see `warpnet_fuzz::checks::consensus`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warpnet_fuzz::checks::consensus(data));
