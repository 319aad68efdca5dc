//! Fuzz target `user_id`: see `warpnet_fuzz::checks::user_id`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warpnet_fuzz::checks::user_id(data));
