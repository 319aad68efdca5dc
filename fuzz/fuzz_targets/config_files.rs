//! Fuzz target `config_files`: see `warpnet_fuzz::checks::config_files`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warpnet_fuzz::checks::config_files(data));
