//! Coverage-guided fuzzing of the Avro single-object decoder: every message a consumer reads
//! from a topic is decoded as a source event (with validation, as the matcher does) and as
//! each output record; any panic or unbounded allocation is a crash.

#![no_main]

use chrono::NaiveDate;
use continuity_schema::wire::{
    CaseEvent, CaseworkerAction, ContinuityPerformance, DeadLetter, EngagementFlag,
};
use continuity_schema::AvroRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let today = NaiveDate::from_ymd_opt(2026, 11, 24).expect("a valid date");
    let _ = continuity_schema::decode_source_event(data, today);
    let _ = CaseEvent::from_message(data);
    let _ = EngagementFlag::from_message(data);
    let _ = ContinuityPerformance::from_message(data);
    let _ = DeadLetter::from_message(data);
    let _ = CaseworkerAction::from_message(data);
});
