//! Fuzz target `frame`: see `warpnet_fuzz::checks::frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warpnet_fuzz::checks::frame(data));
