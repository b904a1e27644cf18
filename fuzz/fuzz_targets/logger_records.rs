//! The encoder fuzz test's interpreter under libFuzzer: each input is a sequence of log
//! operations; every record must read back as the model predicts (see
//! `crates/logxide/tests/encode_fuzz.rs`, which runs the same code on stable from seeds).
#![no_main]

#[path = "../../crates/logxide/tests/encode_fuzz.rs"]
#[allow(dead_code)]
mod encode_fuzz;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = encode_fuzz::run_input(data) {
        panic!("{e}");
    }
});
