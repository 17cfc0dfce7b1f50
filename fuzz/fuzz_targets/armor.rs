//! `sealed_session::fuzzing::armor` under libFuzzer (see fuzz/README.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealed_session::fuzzing::armor(data);
});
