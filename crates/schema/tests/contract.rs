//! The Avro contract: every schema parses and documents every field, published versions never
//! change (fingerprint lock), every version reads and is read by its neighbours, every record
//! round-trips, invalid records name their fields, and no input panics the decoder.

use std::collections::BTreeSet;

use apache_avro::schema::Schema;
use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::types::Value;
use chrono::{NaiveDate, TimeZone, Utc};
use continuity_domain::events::*;
use continuity_domain::*;
use continuity_schema::codec::fingerprint_hex;
use continuity_schema::wire;
use continuity_schema::*;
use proptest::prelude::*;
use serde_json::Value as Json;
use uuid::Uuid;

const LOCK: &str = include_str!("../../../schemas/fingerprints.lock");

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
}

fn schema_json(file: &str) -> Json {
    let path = format!("{}/../../schemas/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Walk a schema's JSON and check every record field has a doc and every enum a default.
fn check_documented(node: &Json, path: &str, problems: &mut Vec<String>) {
    match node {
        Json::Object(map) => {
            if map.get("type") == Some(&Json::String("enum".into())) {
                let default = map.get("default").and_then(|d| d.as_str());
                let symbols: Vec<&str> = map["symbols"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect();
                if !default.is_some_and(|d| symbols.contains(&d)) {
                    problems.push(format!("{path}: enum without a valid default"));
                }
            }
            if let Some(Json::Array(fields)) = map.get("fields") {
                for f in fields {
                    let name = f["name"].as_str().unwrap();
                    if f.get("doc")
                        .and_then(|d| d.as_str())
                        .is_none_or(str::is_empty)
                    {
                        problems.push(format!("{path}.{name}: no doc"));
                    }
                    check_documented(&f["type"], &format!("{path}.{name}"), problems);
                }
            }
            if let Some(items) = map.get("items") {
                check_documented(items, path, problems);
            }
        }
        Json::Array(branches) => branches
            .iter()
            .for_each(|b| check_documented(b, path, problems)),
        _ => {}
    }
}

#[test]
fn every_schema_parses_is_documented_and_carries_the_envelope() {
    let registry = Registry::get();
    let mut problems = Vec::new();
    for v in registry.versions() {
        let json = schema_json(v.file);
        check_documented(&json, v.file, &mut problems);
        let names: Vec<&str> = json["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            &names[..4],
            ["event_id", "occurred_at", "source", "schema_version"],
            "{}",
            v.file
        );
        assert_eq!(
            json["name"].as_str(),
            Some(v.record.name()),
            "{}: RecordType::name is the record's Avro name",
            v.file
        );
        assert_eq!(json["fields"][0]["type"]["logicalType"], "uuid");
        assert_eq!(json["fields"][1]["type"]["logicalType"], "timestamp-micros");
        assert!(json.get("doc").is_some(), "{}: record doc", v.file);
    }
    assert!(problems.is_empty(), "{problems:#?}");
    // Every record type has a schema.
    for record in continuity_schema::RecordType::ALL {
        assert_eq!(registry.latest(record).record, record);
    }
    // Every schema file is compiled in.
    let dir = format!("{}/../../schemas", env!("CARGO_MANIFEST_DIR"));
    let files: BTreeSet<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".avsc"))
        .collect();
    let compiled: BTreeSet<String> = registry
        .versions()
        .iter()
        .map(|v| v.file.to_owned())
        .collect();
    assert_eq!(files, compiled);
}

#[test]
fn published_schemas_never_change() {
    // schemas/fingerprints.lock lists every published version. A line never changes: to
    // evolve a record, add a new version file and append its line.
    let actual: Vec<String> = Registry::get()
        .versions()
        .iter()
        .map(|v| {
            format!(
                "{} {} {}",
                v.file,
                fingerprint_hex(&v.fingerprint),
                fingerprint_hex(&v.legacy_fingerprint)
            )
        })
        .collect();
    let locked: Vec<&str> = LOCK
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    for line in &locked {
        assert!(
            actual.iter().any(|a| a == line),
            "published schema changed or removed: {line}\n\
             A published version must never be edited; add a new version instead."
        );
    }
    let missing: Vec<&String> = actual
        .iter()
        .filter(|l| !locked.contains(&l.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "new schema versions not in schemas/fingerprints.lock; append:\n{}",
        missing
            .iter()
            .map(|l| l.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn each_version_reads_and_is_read_by_the_previous() {
    let versions = Registry::get().versions();
    for pair in versions.windows(2) {
        let (old, new) = (&pair[0], &pair[1]);
        if old.record != new.record {
            continue;
        }
        SchemaCompatibility::can_read(&old.schema, &new.schema).unwrap_or_else(|e| {
            panic!(
                "{} cannot read data written with {}: {e}",
                new.file, old.file
            )
        });
        SchemaCompatibility::can_read(&new.schema, &old.schema).unwrap_or_else(|e| {
            panic!(
                "{} readers cannot read data written with {}: {e}",
                old.file, new.file
            )
        });
    }
}

#[test]
fn compatibility_check_catches_a_breaking_change() {
    // The check above must fail for the changes it exists to catch.
    let v1 = &Registry::get().latest(RecordType::ReleaseWithdrawn).schema;
    let mut json = schema_json("release_withdrawn.v1.avsc");
    // A new field without a default: data written before it cannot be read.
    json["fields"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "withdrawn_by", "type": "string", "doc": "who"}));
    let breaking = Schema::parse(&json).unwrap();
    assert!(SchemaCompatibility::can_read(v1, &breaking).is_err());
    // With a default it is compatible both ways.
    let last = json["fields"].as_array_mut().unwrap().last_mut().unwrap();
    last["default"] = Json::String("unknown".into());
    let compatible = Schema::parse(&json).unwrap();
    assert!(SchemaCompatibility::can_read(v1, &compatible).is_ok());
    assert!(SchemaCompatibility::can_read(&compatible, v1).is_ok());
}

#[test]
fn a_new_enum_symbol_reads_as_the_default_in_old_readers() {
    let v1 = &Registry::get()
        .latest(RecordType::TreatmentDischarge)
        .schema;
    let mut json = schema_json("treatment_discharge.v1.avsc");
    let reason = json["fields"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|f| f["name"] == "reason")
        .unwrap();
    reason["type"]["symbols"]
        .as_array_mut()
        .unwrap()
        .push(Json::String("MOVED_AWAY".into()));
    let v2 = Schema::parse(&json).unwrap();
    let value = Value::Record(vec![
        ("event_id".into(), Value::Uuid(Uuid::nil())),
        ("occurred_at".into(), Value::TimestampMicros(0)),
        ("source".into(), "p".into()),
        ("schema_version".into(), Value::Int(2)),
        ("episode_id".into(), "E1".into()),
        ("provider".into(), "P".into()),
        ("discharged_on".into(), Value::Date(0)),
        ("reason".into(), Value::Enum(6, "MOVED_AWAY".into())),
    ]);
    let body = apache_avro::writer::datum::GenericDatumWriter::builder(&v2)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap();
    let read = apache_avro::reader::datum::GenericDatumReader::builder(&v2)
        .reader_schema(v1)
        .build()
        .unwrap()
        .read_value(&mut &body[..])
        .unwrap();
    let Value::Record(fields) = read else {
        panic!("not a record")
    };
    assert_eq!(fields[7].1, Value::Enum(5, "OTHER".into()));
}

fn meta(n: u128) -> EventMeta {
    EventMeta {
        event_id: EventId(Uuid::from_u128(n)),
        occurred_at: Utc.with_ymd_and_hms(2026, 11, 2, 14, 3, 7).unwrap(),
        source: OrganisationCode::parse("hmpps-prisons").unwrap(),
    }
}

fn person() -> PersonRef {
    PersonRef {
        identifiers: vec![
            Identifier::parse(IdentifierKind::Noms, "A1234BC").unwrap(),
            Identifier::parse(IdentifierKind::Crn, "X123456").unwrap(),
            Identifier::parse(IdentifierKind::Pnc, "2012/0443456Z").unwrap(),
            Identifier::parse(IdentifierKind::Cro, "123456/08T").unwrap(),
            Identifier::parse(IdentifierKind::Nhs, "9434765919").unwrap(),
        ],
        attributor: Some(
            Attributor::new(
                "J",
                "S",
                NaiveDate::from_ymd_opt(1985, 4, 1).unwrap(),
                Sex::Female,
                today(),
            )
            .unwrap(),
        ),
    }
}

fn one_of_each() -> Vec<SourceEvent> {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    let need = TreatmentNeed {
        local_authority: LocalAuthorityCode::parse("E10000025").unwrap(),
        provider: Some(ProviderCode::parse("OXPROV").unwrap()),
    };
    let noms = |s| Identifier::parse(IdentifierKind::Noms, s).unwrap();
    let change = |n| IdentityChange {
        meta: meta(n),
        kept: noms("A1234BC"),
        other: noms("Z9999ZZ"),
    };
    vec![
        SourceEvent::Release(PrisonRelease {
            meta: meta(1),
            release_id: "MDI-A1234BC-2026-11-02".into(),
            person: person(),
            release_date: d(2026, 11, 2),
            planned: false,
            reason: ReleaseReason::Released,
            movement_code: Some("CR".into()),
            prison: Some(PrisonCode::parse("MDI").unwrap()),
            need: Some(need.clone()),
        }),
        SourceEvent::ReleaseWithdrawn(ReleaseWithdrawn {
            meta: meta(2),
            release_id: "R".into(),
            reason: WithdrawalReason::Cancelled,
        }),
        SourceEvent::CustodyAdmission(CustodyAdmission {
            meta: meta(3),
            person: person(),
            admitted_on: d(2026, 11, 9),
            kind: AdmissionKind::Recall,
        }),
        SourceEvent::PersonDied(PersonDied {
            meta: meta(4),
            person: person(),
            died_on: d(2026, 11, 9),
        }),
        SourceEvent::IdentityLinked(change(5)),
        SourceEvent::IdentityMerged(change(6)),
        SourceEvent::IdentityUnmerged(change(7)),
        SourceEvent::Referral(Referral {
            meta: meta(8),
            referral_id: "REF-1".into(),
            person: person(),
            referred_on: d(2026, 10, 20),
            origin: ReferralOrigin::Probation,
            expected_release: Some(d(2026, 11, 2)),
            need,
        }),
        SourceEvent::TreatmentStart(TreatmentStart {
            meta: meta(9),
            episode_id: "EP-1".into(),
            provider: ProviderCode::parse("OXPROV").unwrap(),
            local_authority: LocalAuthorityCode::parse("E10000025").unwrap(),
            person: PersonRef {
                identifiers: vec![],
                attributor: person().attributor,
            },
            triage_date: Some(d(2026, 11, 5)),
            intervention_start: None,
        }),
        SourceEvent::TreatmentDischarge(TreatmentDischarge {
            meta: meta(10),
            episode_id: "EP-1".into(),
            provider: ProviderCode::parse("OXPROV").unwrap(),
            discharged_on: d(2027, 1, 5),
        }),
        SourceEvent::ProbationAllocated(ProbationAllocation {
            meta: meta(11),
            person: PersonRef {
                identifiers: vec![Identifier::parse(IdentifierKind::Crn, "X777519").unwrap()],
                attributor: None,
            },
            allocation_id: Some("6abd8aa1-7552-4f7c-bcec-be1eae8c4bf3".into()),
            probation_service: continuity_domain::OrganisationCode::parse("probation-kss").unwrap(),
        }),
    ]
}

#[test]
fn every_source_event_round_trips() {
    for event in one_of_each() {
        let bytes = encode_source_event(&event).unwrap();
        assert_eq!(&bytes[..2], &[0xC3, 0x01]);
        let back = decode_source_event(&bytes, today()).unwrap();
        assert_eq!(back, event, "{}", event.kind());
    }
}

/// One record of each output type.
fn outputs() -> (
    wire::CaseEvent,
    wire::EngagementFlag,
    wire::ContinuityPerformance,
    wire::DeadLetter,
) {
    let env = wire::Envelope {
        event_id: Uuid::from_u128(7),
        occurred_at: 1_700_000_000_000_000,
        source: "continuity".into(),
        schema_version: 1,
    };
    let case = wire::CaseEvent {
        envelope: env.clone(),
        case_id: Uuid::from_u128(1),
        change: wire::CaseChange::Overdue,
        release_date: 20_000,
        last_window_day: 20_021,
        local_authority: "E10000025".into(),
        prison: Some("MDI".into()),
        provider: None,
        outcome: wire::Outcome::NotEngaged,
        exclusion_reason: Some(wire::ExclusionReason::Under18),
        engagement_date: None,
        timeliness: Some(wire::Timeliness::ReportedLate),
    };
    let flag = wire::EngagementFlag {
        envelope: env.clone(),
        flag_id: Uuid::from_u128(2),
        case_id: Uuid::from_u128(1),
        kind: wire::FlagKind::AtRisk,
        at_risk_day: Some(7),
        state: wire::FlagState::Raised,
        due_at: 1,
        raised_at: 2,
        settled_at: None,
        release_date: 20_000,
        local_authority: "E10000025".into(),
        provider: Some("OXPROV".into()),
        notify: true,
    };
    let perf = wire::ContinuityPerformance {
        envelope: env.clone(),
        cohort_id: Uuid::from_u128(3),
        period: "2026-W47".into(),
        period_kind: wire::PeriodKind::Rolling12Months,
        period_start: 20_000,
        period_end: 20_006,
        breakdown: wire::Breakdown::LocalAuthority,
        area_code: "E10000025".into(),
        audience: wire::Audience::Published,
        finalised: Some(40),
        engaged: Some(30),
        rate: Some(0.75),
        lower: Some(0.6),
        upper: Some(0.86),
        open: None,
        excluded: [("died".to_string(), 6i64)].into_iter().collect(),
        gap_to_ambition: Some(0.0),
        status: wire::FigureStatus::Revision,
        revision: 1,
        suppressed: true,
        change: Some(-2.5),
    };
    let dead = wire::DeadLetter {
        envelope: env,
        original_topic: "continuity.releases".into(),
        partition: 3,
        offset: 12_345,
        key: Some(vec![1, 2, 3]),
        payload: vec![0xC3, 0x01, 0xFF],
        error_kind: wire::ErrorKind::UnknownSchema,
        reason: "unknown writer schema".into(),
    };
    (case, flag, perf, dead)
}

#[test]
fn every_output_record_round_trips() {
    let (case, flag, perf, dead) = outputs();
    assert_eq!(
        wire::CaseEvent::from_message(&case.to_message().unwrap()).unwrap(),
        case
    );
    assert_eq!(
        wire::EngagementFlag::from_message(&flag.to_message().unwrap()).unwrap(),
        flag
    );
    assert_eq!(
        wire::ContinuityPerformance::from_message(&perf.to_message().unwrap()).unwrap(),
        perf
    );
    assert_eq!(
        wire::DeadLetter::from_message(&dead.to_message().unwrap()).unwrap(),
        dead
    );
    // Output records are not source events.
    assert!(matches!(
        decode_source_event(&case.to_message().unwrap(), today()),
        Err(DecodeError::NotASourceEvent(RecordType::CaseEvent))
    ));
}

#[test]
fn messages_with_the_legacy_fingerprint_still_decode() {
    let registry = Registry::get();
    for event in one_of_each() {
        let mut bytes = encode_source_event(&event).unwrap();
        let writer = registry.writer_of(&bytes).unwrap();
        assert_ne!(writer.fingerprint, writer.legacy_fingerprint);
        bytes[2..10].copy_from_slice(&writer.legacy_fingerprint);
        assert_eq!(decode_source_event(&bytes, today()).unwrap(), event);
    }
}

/// Every record type's message as this build writes it.
fn one_message_of_each_type() -> Vec<Vec<u8>> {
    let (case, flag, perf, dead) = outputs();
    let mut messages: Vec<Vec<u8>> = one_of_each()
        .iter()
        .map(|e| encode_source_event(e).unwrap())
        .collect();
    messages.push(case.to_message().unwrap());
    messages.push(flag.to_message().unwrap());
    messages.push(perf.to_message().unwrap());
    messages.push(dead.to_message().unwrap());
    let action = continuity_domain::Action {
        kind: continuity_domain::ActionKind::AppointmentBooked,
        appointment_on: Some(chrono::NaiveDate::from_ymd_opt(2026, 12, 3).unwrap()),
        snoozed_until: None,
        reason: Some("not published".into()),
        note: None,
    };
    messages.push(
        continuity_schema::action_message(
            Uuid::from_u128(7),
            Uuid::from_u128(8),
            &action,
            chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap(),
            "probation-kss",
        )
        .unwrap(),
    );
    messages
}

/// A message of every record type written here is read by fastavro, which finds the writer
/// schema by its own fingerprint computation, and the same record written by fastavro is read
/// here: the bytes are equal both ways. The Python comes from `scripts/install-python.sh`
/// (`CONTINUITY_PYTHON`, set by `scripts/test.sh`).
#[test]
fn messages_interoperate_with_fastavro() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("CONTINUITY_PYTHON").unwrap_or_else(|_| "python3".into());
    let dir = std::env::temp_dir().join(format!("avro-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let messages = one_message_of_each_type();
    let types: BTreeSet<RecordType> = messages
        .iter()
        .map(|m| Registry::get().writer_of(m).unwrap().record)
        .collect();
    assert_eq!(types.len(), RecordType::ALL.len());
    for (i, m) in messages.iter().enumerate() {
        std::fs::write(dir.join(format!("{i:02}.rust")), m).unwrap();
    }
    let out = std::process::Command::new(&python)
        .arg(root.join("scripts/avro/interop.py"))
        .arg(root.join("schemas"))
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}; run scripts/test.sh, which installs it"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fastavro could not read our messages: {stderr}"
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        messages.len()
    );
    for (i, m) in messages.iter().enumerate() {
        let theirs = std::fs::read(dir.join(format!("{i:02}.python"))).unwrap();
        assert_eq!(&theirs, m, "message {i}: fastavro wrote other bytes");
    }
    // Read back by this build: what fastavro wrote decodes to the records sent.
    for (event, i) in one_of_each().into_iter().zip(0..) {
        let theirs = std::fs::read(dir.join(format!("{i:02}.python"))).unwrap();
        assert_eq!(decode_source_event(&theirs, today()).unwrap(), event);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn invalid_records_name_every_field_at_fault_without_values() {
    let mut w = wire::Referral {
        envelope: wire::Envelope {
            event_id: Uuid::from_u128(1),
            occurred_at: 0,
            source: "probation".into(),
            schema_version: 1,
        },
        referral_id: " ".into(),
        person: wire::PersonIdentifiers {
            noms: Some("Q9999Q".into()),
            nhs: Some("9434765918".into()),
            ..Default::default()
        },
        attributor: None,
        referred_on: 20_000,
        origin: wire::ReferralOrigin::Unknown,
        expected_release: None,
        need: wire::TreatmentNeed {
            local_authority: "Oxfordshire".into(),
            provider: None,
            substances: vec![],
        },
    };
    let err = decode_source_event(&w.to_message().unwrap(), today()).unwrap_err();
    let DecodeError::Invalid(invalid) = err else {
        panic!("{err}")
    };
    let fields: Vec<&str> = invalid.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(
        fields,
        [
            "referral_id",
            "person.noms",
            "person.nhs",
            "origin",
            "need.local_authority"
        ]
    );
    let text = invalid.to_string();
    assert!(
        text.contains("person.nhs: NHS number has a wrong check character"),
        "{text}"
    );
    for secret in ["Q9999Q", "9434765918", "Oxfordshire"] {
        assert!(!text.contains(secret), "{text}");
    }
    // Fixed, it is accepted.
    w.referral_id = "REF-1".into();
    w.person = wire::PersonIdentifiers {
        noms: Some("A1234BC".into()),
        ..Default::default()
    };
    w.origin = wire::ReferralOrigin::Prison;
    w.need.local_authority = "E10000025".into();
    assert!(decode_source_event(&w.to_message().unwrap(), today()).is_ok());
}

#[test]
fn header_errors_are_specific() {
    let good = encode_source_event(&one_of_each()[0]).unwrap();
    assert!(matches!(
        decode_source_event(b"{\"json\":1}", today()),
        Err(DecodeError::Codec(CodecError::NotSingleObject))
    ));
    let mut unknown = good.clone();
    unknown[2] ^= 0xFF;
    let err = decode_source_event(&unknown, today()).unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown writer schema fingerprint"),
        "{err}"
    );
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        decode_source_event(&trailing, today()),
        Err(DecodeError::Codec(CodecError::TrailingBytes(
            RecordType::PrisonRelease
        )))
    ));
    assert!(decode_source_event(&good[..good.len() - 3], today()).is_err());
}

#[test]
fn huge_claimed_lengths_are_refused_not_allocated() {
    // A PrisonRelease header, the event id, a timestamp, then a `source` string claiming
    // 100 MiB: under apache-avro's default limit (512 MiB), over ours (1 MiB). It must be
    // refused before allocating, not allocated and then found short.
    let header = &encode_source_event(&one_of_each()[0]).unwrap()[..10];
    let zigzag = |n: i64| {
        let mut v = ((n << 1) ^ (n >> 63)) as u64;
        let mut out = Vec::new();
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return out;
            }
            out.push(b | 0x80);
        }
    };
    let mut message = header.to_vec();
    message.extend(zigzag(36));
    message.extend(Uuid::nil().hyphenated().to_string().as_bytes());
    message.extend(zigzag(0));
    message.extend(zigzag(100 << 20));
    let err = decode_source_event(&message, today()).unwrap_err();
    assert!(
        matches!(err, DecodeError::Codec(CodecError::Body { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("MemoryAllocation"), "{err}");
}

#[test]
fn body_errors_name_the_failure_never_a_value() {
    // A valid prefix, then bytes that do not decode: the error names the kind of failure
    // and never quotes what it read.
    let mut bytes = encode_source_event(&one_of_each()[0]).unwrap();
    let secret = b"A1234BC";
    let at = bytes.windows(7).position(|w| w == secret).unwrap();
    bytes.truncate(at + 7);
    bytes.push(0x7f); // a union index that does not exist
    let err = decode_source_event(&bytes, today())
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not decode"), "{err}");
    assert!(!err.contains("A1234BC"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes: an error or an event, never a panic.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_source_event(&bytes, today());
    }

    /// Valid headers with corrupted bodies: the dangerous case, since the schema is found.
    #[test]
    fn corrupted_bodies_never_panic(
        which in 0usize..10,
        flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<proptest::sample::Index>(),
    ) {
        let mut bytes = encode_source_event(&one_of_each()[which]).unwrap();
        for (i, b) in flips {
            let at = 10 + i.index(bytes.len() - 10);
            bytes[at] = b;
        }
        let keep = 10 + cut.index(bytes.len() - 9);
        bytes.truncate(keep);
        let _ = decode_source_event(&bytes, today());
    }
}

/// A performance cell's cohort id keys consumers' series; its spelling is frozen. Pinned, with
/// the content hash of one set of figures (a new spelling of it needs a new `CONTENT_SCHEME`).
#[test]
fn performance_cohort_ids_and_content_are_pinned() {
    use continuity_domain::{Breakdown, CohortPeriod, FigureStatus, Published};
    let figure = continuity_schema::Figure {
        period: CohortPeriod::IsoWeek {
            year: 2026,
            week: 47,
        },
        breakdown: Breakdown::LocalAuthority,
        area: "E10000025",
        published: true,
        counts: Published {
            engaged: Some(12),
            finalised: Some(20),
        },
        tally: None,
        status: FigureStatus::Final,
        revision: 0,
        previous: None,
    };
    let now = chrono::Utc::now();
    let m = continuity_schema::performance_message(&figure, now, "continuity-reporter").unwrap();
    assert_eq!(
        m.cohort_id.to_string(),
        "a237aef7-711e-5e16-9d12-d3835069fd73"
    );
    assert_eq!(
        m.content.to_string(),
        "f7d9e59a-ecf9-5730-81a0-2ecc0822ad0c"
    );
}

/// Every input the coverage-guided Avro fuzzer kept (`tests/fuzz/corpus/avro`) and its seeds,
/// decoded on the stable toolchain as the fuzz target decodes them: none panics, and the
/// seeds, one valid message per source record, still decode.
#[test]
fn the_avro_fuzzers_corpus_decodes_or_is_refused() {
    let fuzz = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fuzz");
    let mut decoded = 0;
    let mut replayed = 0;
    for dir in ["corpus/avro", "seeds/avro"] {
        let Ok(entries) = std::fs::read_dir(format!("{fuzz}/{dir}")) else {
            continue;
        };
        for entry in entries {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            if decode_source_event(&data, today()).is_ok() {
                decoded += 1;
            }
            let _ = wire::CaseEvent::from_message(&data);
            let _ = wire::EngagementFlag::from_message(&data);
            let _ = wire::ContinuityPerformance::from_message(&data);
            let _ = wire::DeadLetter::from_message(&data);
            let _ = wire::CaseworkerAction::from_message(&data);
            replayed += 1;
        }
    }
    assert!(replayed >= 8, "{replayed} inputs replayed");
    assert!(decoded >= 8, "{decoded} of the seeds decoded");
}
