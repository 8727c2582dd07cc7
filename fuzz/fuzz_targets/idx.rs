#![no_main]
// The target's logic is infoutil::fuzz::idx, shared with the suite's smoke test.
libfuzzer_sys::fuzz_target!(|data: &[u8]| infoutil::fuzz::idx(data));
