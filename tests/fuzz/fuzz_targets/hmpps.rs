//! Coverage-guided fuzzing of ingest's `hmpps` parser through the shared harness
//! (`continuity_ingest::fuzzing`): any panic, or an answer quoting a planted value, is a crash.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut harness = continuity_ingest::fuzzing::Harness::new().expect("the harness starts");
    harness.target("hmpps", data);
});
