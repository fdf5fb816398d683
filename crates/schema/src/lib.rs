//! The Avro contract between the pipeline, its sources and its consumers.
//!
//! `schemas/*.avsc` are compiled in ([`codec`]); messages use Avro single-object encoding and
//! are resolved by writer fingerprint ([`codec::Registry`]); [`wire`] holds the Rust form of
//! each record and [`convert`] validates source records into domain events, naming every field
//! at fault. One codec for every service: nothing else encodes or decodes messages.

#![warn(missing_docs)]

pub mod canonical;
pub mod codec;
pub mod convert;
pub mod wire;

pub use codec::{AvroRecord, CodecError, Fingerprint, RecordType, Registry};
pub use convert::{
    action_message, case_event_message, date_from_days, days_from_date, dead_letter_message,
    decode_source_event, encode_source_event, flag_event_message, performance_message,
    source_record, validate_source_record, DecodeError, FieldError, Figure, InvalidRecord,
    MessageOrigin, PerformanceMessage, CONTENT_SCHEME,
};
pub use wire::SourceRecord;
