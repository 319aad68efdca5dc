//! Fuzz target `http`: see `warpnet_fuzz::checks::http`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warpnet_fuzz::checks::http(data));
