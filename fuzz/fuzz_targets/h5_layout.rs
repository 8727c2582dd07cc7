#![no_main]
// The target's logic is infoutil::fuzz::h5_layout, shared with the suite's smoke test.
libfuzzer_sys::fuzz_target!(|data: &[u8]| infoutil::fuzz::h5_layout(data));
