//! Fuzz target `hello`: see `warpnet_fuzz::checks::hello`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warpnet_fuzz::checks::hello(data));
