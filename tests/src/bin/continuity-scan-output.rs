//! Scans what the test suite wrote (every service's log lines, which the in-process services
//! and the services' processes write to the test binaries' output, the tests' own output, and
//! every error body a service answered a test with, which the tests' HTTP clients keep in the
//! file `CONTINUITY_ERROR_BODIES` names) for personal identifiers:
//! NOMS numbers, CRNs, NHS numbers with a valid check digit, attributors in their canonical
//! form, and the value `PLANTED7X` the ingest tests plant. `scripts/test.sh` runs it over the
//! suite's output and fails when it finds any.
//!
//! Matched by shape rather than by a list, so identifiers the generator made are found as well
//! as the fixtures'. The format example in the NOMS field's error names nobody and is skipped
//! (`EXAMPLES`).
//!
//!   continuity-scan-output FILE...

use std::process::ExitCode;

use continuity_e2e::IdentifierScan;

fn main() -> ExitCode {
    let scan = IdentifierScan::new();
    let mut lines = 0usize;
    let mut found = 0usize;
    for path in std::env::args().skip(1) {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{path}: cannot be read: {e}");
                return ExitCode::from(2);
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        for (n, line) in text.lines().enumerate() {
            lines += 1;
            for (kind, context) in scan.find(line) {
                found += 1;
                eprintln!("{path}:{}: a {kind}: …{context}…", n + 1);
            }
        }
        println!("{path}: {} lines", text.lines().count());
    }
    println!("{lines} lines scanned, {found} identifiers found");
    if found == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
