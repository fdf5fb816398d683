//! The adapters on real payloads: every HMPPS sample in `tests/fixtures/hmpps` (copied
//! verbatim from public HMPPS repositories) becomes the right source event or is ignored for
//! its documented reason; every movement code and reason the domain names ends in the right
//! case outcome; the JSON and CSV forms name the field at fault.

use chrono::{NaiveDate, TimeZone, Utc};
use continuity_domain::events::{AdmissionKind, ReleaseReason, SourceEvent};
use continuity_domain::{assess, ExclusionReason, Outcome, Rules};
use continuity_ingest::api::EventKind;
use continuity_ingest::hmpps::adapt;
use continuity_ingest::ndtms;
use continuity_ingest::rows::{derived_id, Parsed};
use continuity_schema::validate_source_record;
use continuity_schema::wire::{Envelope, SourceRecord};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/hmpps");

fn sample(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{FIXTURES}/{path}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
}

fn event(parsed: Parsed) -> SourceEvent {
    let Parsed::Records(mut records) = parsed else {
        panic!("expected a record, got {parsed:?}");
    };
    assert_eq!(records.len(), 1);
    let mut record = records.remove(0);
    let id = derived_id(&record);
    record.envelope_mut().event_id = id;
    validate_source_record(&record, today()).unwrap()
}

/// An upload received at 09:00 UTC on 24 November 2026.
fn upload(extracted_at: Option<chrono::DateTime<Utc>>) -> ndtms::Upload {
    ndtms::Upload {
        extracted_at,
        received_at: Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap(),
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

#[track_caller]
fn release(path: &str) -> continuity_domain::events::PrisonRelease {
    match event(adapt(&sample(path), "HMPPS", Some("probation-hmpps"))) {
        SourceEvent::Release(r) => r,
        other => panic!("{path}: expected a release, got {other:?}"),
    }
}

#[track_caller]
fn admission(path: &str) -> continuity_domain::events::CustodyAdmission {
    match event(adapt(&sample(path), "HMPPS", Some("probation-hmpps"))) {
        SourceEvent::CustodyAdmission(a) => a,
        other => panic!("{path}: expected an admission, got {other:?}"),
    }
}

#[test]
fn releases_from_every_sample() {
    let pis = "probation-integration-services/prison-offender-events.prisoner.released__";
    for (file, noms, on, code, prison) in [
        (
            "prisoner-released.json",
            "A0001AA",
            date(2022, 5, 4),
            "NCS",
            Some("WSI"),
        ),
        (
            "prisoner-released-hdc.json",
            "A0023AA",
            date(2025, 3, 31),
            "HD",
            Some("WSI"),
        ),
        // A death in custody arrives as a release with code DEC and no personReference.
        (
            "prisoner-died.json",
            "A0378AY",
            date(2023, 2, 24),
            "DEC",
            Some("WSI"),
        ),
        // Released to hospital, with a null prisonId.
        (
            "prisoner-received-hospital-released.json",
            "A0005AA",
            date(2023, 8, 4),
            "HO",
            None,
        ),
    ] {
        let r = release(&format!("{pis}{file}"));
        assert_eq!(r.person.identifiers[0].value(), noms, "{file}");
        assert_eq!(r.release_date, on, "{file}");
        assert_eq!(r.movement_code.as_deref(), Some(code), "{file}");
        assert_eq!(r.prison.as_ref().map(|p| p.as_str()), prison, "{file}");
        assert_eq!(r.reason, ReleaseReason::Released, "{file}");
        assert!(!r.planned && r.need.is_none(), "{file}");
        assert_eq!(r.meta.source.as_str(), "HMPPS");
    }
    // `Z` time at 15:43 in December: the London date is the same day.
    let r = release("resettlement-passport/release-event.json");
    assert_eq!(
        (r.release_date, r.prison.unwrap().as_str()),
        (date(2024, 12, 11), "MDI")
    );
}

#[test]
fn admissions_from_every_sample() {
    let pis = "probation-integration-services/prison-offender-events.prisoner.received__";
    for (path, noms, kind) in [
        // Movement code N, probableCause RECALL.
        (
            format!("{pis}bare__prisoner-received.json"),
            "A0001AA",
            AdmissionKind::Recall,
        ),
        // Recall code 24.
        (
            format!("{pis}prisoner-received-recalled.json"),
            "A0006AA",
            AdmissionKind::Recall,
        ),
        // No personReference: the NOMS number from additionalInformation.
        (
            format!("{pis}prisoner-received.json"),
            "A0002AA",
            AdmissionKind::Recall,
        ),
        (
            "resettlement-passport/recall-event.json".into(),
            "A4092EA",
            AdmissionKind::Recall,
        ),
        // An intake: an admission, not a recall.
        (
            "resettlement-passport/intake-event.json".into(),
            "A4092EA",
            AdmissionKind::Admission,
        ),
    ] {
        let a = admission(&path);
        assert_eq!(a.person.identifiers[0].value(), noms, "{path}");
        assert_eq!(a.kind, kind, "{path}");
    }
    assert_eq!(
        admission("resettlement-passport/intake-event.json").admitted_on,
        date(2024, 6, 24)
    );
}

#[test]
fn merges_from_the_sample() {
    let e = event(adapt(
        &sample("probation-integration-services/prison-offender-events.prisoner.merged__bare__prisoner-merged.json"),
        "HMPPS",
        None,
    ));
    let SourceEvent::IdentityMerged(m) = e else {
        panic!("expected a merge, got {e:?}");
    };
    assert_eq!((m.kept.value(), m.other.value()), ("B0007BB", "A0007AA"));
}

#[test]
fn events_the_pipeline_does_not_use_are_ignored_with_the_reason() {
    for path in [
        "probation-integration-services/create-and-vary-a-licence.licence.activated__bare__licence-activated-L453621.json",
        "probation-integration-services/intervention.referral.ended__referral-prematurely-ended.json",
        "probation-integration-services/intervention.session-appointment.session-feedback-submitted__session-appointment-feedback-submitted.json",
        // `version` is the string "2" here.
        "probation-integration-services/tier.calculation.complete__tier-calculation.json",
        "other/probation-case.engagement.created__raw-sqs-from-dev__court-case-service.json",
    ] {
        match adapt(&sample(path), "HMPPS", Some("probation-hmpps")) {
            Parsed::Ignored(reason) => assert!(reason.contains("is not used"), "{path}: {reason}"),
            other => panic!("{path}: expected ignored, got {other:?}"),
        }
    }
}

#[test]
fn every_sample_file_is_accounted_for() {
    // Each sample is either turned into an event or ignored, never rejected.
    let mut n = 0;
    for dir in [
        "probation-integration-services",
        "resettlement-passport",
        "other",
    ] {
        for entry in std::fs::read_dir(format!("{FIXTURES}/{dir}")).unwrap() {
            let path = entry.unwrap().path();
            let value: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let parsed = adapt(&value, "HMPPS", Some("probation-hmpps"));
            assert!(
                !matches!(parsed, Parsed::Rejected(_)),
                "{}: {parsed:?}",
                path.display()
            );
            n += 1;
        }
    }
    assert_eq!(n, 16);
}

/// The NCS release sample with its reason and movement code replaced.
fn released_with(reason: &str, code: &str) -> Value {
    let mut v = sample(
        "probation-integration-services/prison-offender-events.prisoner.released__prisoner-released.json",
    );
    let mut inner: Value = serde_json::from_str(v["Message"].as_str().unwrap()).unwrap();
    inner["additionalInformation"]["reason"] = reason.into();
    inner["additionalInformation"]["nomisMovementReasonCode"] = code.into();
    v["Message"] = inner.to_string().into();
    v
}

fn referral_for_a0001aa() -> SourceEvent {
    let json = br#"{
        "referral_id": "REF-1", "person": {"noms": "A0001AA"}, "referred_on": "2022-04-20",
        "origin": "PRISON", "expected_release": "2022-05-04",
        "need": {"local_authority": "E10000025", "provider": "PRV001", "substances": ["OPIATES"]}
    }"#;
    let record = EventKind::Referrals
        .parse(json, envelope("hmp-healthcare"))
        .unwrap();
    let mut record = record;
    record.envelope_mut().event_id = derived_id(&record);
    validate_source_record(&record, today()).unwrap()
}

fn envelope(source: &str) -> Envelope {
    Envelope {
        event_id: uuid::Uuid::nil(),
        occurred_at: Utc
            .with_ymd_and_hms(2022, 4, 20, 12, 0, 0)
            .unwrap()
            .timestamp_micros(),
        source: source.into(),
        schema_version: 1,
    }
}

#[test]
fn every_movement_code_ends_in_the_right_outcome() {
    let rules = Rules::default();
    let now = Utc.with_ymd_and_hms(2022, 7, 1, 12, 0, 0).unwrap();
    let referral = referral_for_a0001aa();
    for (code, expected) in [
        ("NCS", Some(Outcome::NotEngaged)),
        ("CR", Some(Outcome::NotEngaged)),
        ("HD", Some(Outcome::NotEngaged)),
        ("DEC", Some(Outcome::Excluded(ExclusionReason::Died))),
        (
            "HO",
            Some(Outcome::Excluded(ExclusionReason::ReleasedToHospital)),
        ),
        (
            "HQ",
            Some(Outcome::Excluded(ExclusionReason::ReleasedToHospital)),
        ),
        (
            "HP",
            Some(Outcome::Excluded(ExclusionReason::ReleasedToHospital)),
        ),
        ("DD", Some(Outcome::Excluded(ExclusionReason::Deported))),
        ("DE", Some(Outcome::Excluded(ExclusionReason::Deported))),
        ("DL", Some(Outcome::Excluded(ExclusionReason::Deported))),
        ("UAL", None),
        ("UAL_ECL", None),
    ] {
        let release = event(adapt(
            &released_with("RELEASED", code),
            "HMPPS",
            Some("probation-hmpps"),
        ));
        let a = assess([&release, &referral], &rules, now);
        assert_eq!(
            a.cases.first().map(|c| c.outcome),
            expected,
            "movement code {code}"
        );
    }
    for reason in [
        "TRANSFERRED",
        "TEMPORARY_ABSENCE_RELEASE",
        "SENT_TO_COURT",
        "UNKNOWN",
    ] {
        assert!(
            matches!(
                adapt(
                    &released_with(reason, "NCS"),
                    "HMPPS",
                    Some("probation-hmpps")
                ),
                Parsed::Ignored(_)
            ),
            "{reason}"
        );
    }
}

#[test]
fn every_recall_code_is_a_recall() {
    let mut v = sample("resettlement-passport/recall-event.json");
    let mut inner: Value = serde_json::from_str(v["Message"].as_str().unwrap()).unwrap();
    for code in ["24", "Y", "PD", "ELR", "B", "ETRLR", "L"] {
        inner["additionalInformation"]["nomisMovementReasonCode"] = code.into();
        v["Message"] = inner.to_string().into();
        let SourceEvent::CustodyAdmission(a) = event(adapt(&v, "HMPPS", Some("probation-hmpps")))
        else {
            panic!("{code}");
        };
        assert_eq!(a.kind, AdmissionKind::Recall, "{code}");
    }
    for reason in [
        "TRANSFERRED",
        "RETURN_FROM_COURT",
        "TEMPORARY_ABSENCE_RETURN",
    ] {
        inner["additionalInformation"]["reason"] = reason.into();
        v["Message"] = inner.to_string().into();
        assert!(
            matches!(
                adapt(&v, "HMPPS", Some("probation-hmpps")),
                Parsed::Ignored(_)
            ),
            "{reason}"
        );
    }
}

#[test]
fn every_timestamp_form_and_a_string_version() {
    let mut v = sample(
        "probation-integration-services/prison-offender-events.prisoner.merged__bare__prisoner-merged.json",
    );
    v["version"] = "1".into();
    for (at, on) in [
        ("2024-10-14T15:09:54+01:00", date(2024, 10, 14)),
        ("2024-10-14T23:30:00.123456Z", date(2024, 10, 15)),
        ("2024-10-14T23:30:00.1234567Z", date(2024, 10, 15)),
        ("2024-10-14T23:30:00.123456789Z", date(2024, 10, 15)),
        ("2024-06-07T00:00:00+01:00[Europe/London]", date(2024, 6, 7)),
        ("Fri Jun 14 09:06:52 BST 2024", date(2024, 6, 14)),
    ] {
        v["occurredAt"] = at.into();
        let e = event(adapt(&v, "HMPPS", Some("probation-hmpps")));
        assert_eq!(
            continuity_domain::london_date(e.meta().occurred_at),
            on,
            "{at}"
        );
    }
    v["occurredAt"] = "14/10/2024 15:09".into();
    let Parsed::Rejected(errors) = adapt(&v, "HMPPS", Some("probation-hmpps")) else {
        panic!("a bad timestamp must be rejected");
    };
    assert_eq!(errors[0].field, "occurredAt");
}

#[test]
fn the_same_hmpps_event_twice_has_one_id() {
    let v = sample("resettlement-passport/release-event.json");
    let (a, b) = (
        event(adapt(&v, "HMPPS", Some("probation-hmpps"))),
        event(adapt(&v, "HMPPS", Some("probation-hmpps"))),
    );
    assert_eq!(a.id(), b.id());
    let other = event(adapt(
        &released_with("RELEASED", "CR"),
        "HMPPS",
        Some("probation-hmpps"),
    ));
    assert_ne!(a.id(), other.id());
}

#[test]
fn json_errors_name_the_field_and_not_the_value() {
    let cases: [(&[u8], &str, &str); 7] = [
        (br#"{"referral_id": "R", "person": ["A1234BC"], "referred_on": "2024-01-01", "origin": "PRISON", "need": {"local_authority": "E10000025"}}"#, "person", "expected struct Person"),
        (br#"{"referral_id": "R", "referred_on": "2024-01-01", "origin": "PRISON", "need": ["E10000025"]}"#, "need", "expected struct Need"),
        (br#"{"referral_id": "R", "referred_on": "2024-13-01", "origin": "PRISON", "need": {"local_authority": "E10000025"}}"#, "referred_on", "must be a date"),
        (br#"{"referral_id": "R", "referred_on": "2024-01-01", "origin": "PRISONER", "need": {"local_authority": "E10000025"}}"#, "origin", "not an allowed value: expected one of `PRISON`"),
        (br#"{"referral_id": "R", "referred_on": "2024-01-01", "origin": "PRISON", "need": {"local_authority": "E10000025", "postcode": "OX1 1AA"}}"#, "need.postcode", "is not a field here"),
        (br#"{"referral_id": "R", "referred_on": "2024-01-01", "origin": "PRISON"}"#, "(body)", "missing field `need`"),
        (br#"{"referral_id": 7, "referred_on": "2024-01-01", "origin": "PRISON", "need": {"local_authority": "E10000025"}}"#, "referral_id", "expected a string"),
    ];
    for (json, field, problem) in cases {
        let e = EventKind::Referrals
            .parse(json, envelope("hmp-healthcare"))
            .unwrap_err();
        assert_eq!(e.field, field, "{e:?}");
        assert!(e.problem.contains(problem), "{e:?}");
        assert!(
            !e.problem.contains("OX1") && !e.problem.contains("PRISONER"),
            "{e:?}"
        );
    }
    // Valid JSON, invalid content: validation names every field.
    let record = EventKind::Referrals
        .parse(
            br#"{"referral_id": "R", "person": {"noms": "A12BC"}, "referred_on": "2024-01-01", "origin": "PRISON", "need": {"local_authority": "X1"}}"#,
            envelope("hmp-healthcare"),
        )
        .unwrap();
    let errors = validate_source_record(&record, today()).unwrap_err().errors;
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["person.noms", "need.local_authority"]);
    assert!(errors.iter().all(|e| !e.problem.contains("A12BC")));
}

#[test]
fn json_round_trips_every_kind() {
    let events = continuity_synthetic::generate(&continuity_synthetic::Config {
        seed: 3,
        people: 200,
        start: date(2025, 1, 1),
        days: 200,
        local_authorities: 5,
        prisons: 5,
    });
    let mut kinds = std::collections::BTreeSet::new();
    for e in &events {
        let record = continuity_schema::source_record(e);
        let (kind, json) = continuity_ingest::api::to_json(&record).unwrap();
        kinds.insert(kind.path());
        let back = kind
            .parse(
                json.to_string().as_bytes(),
                Envelope {
                    event_id: uuid::Uuid::nil(),
                    occurred_at: 0,
                    source: e.meta().source.to_string(),
                    schema_version: 1,
                },
            )
            .unwrap();
        assert_eq!(back, record, "{}", kind.path());
    }
    assert!(kinds.len() >= 6, "{kinds:?}");

    // A date the JSON form cannot hold is an error, never another date.
    let mut release = events
        .iter()
        .map(continuity_schema::source_record)
        .find(|r| matches!(r, SourceRecord::PrisonRelease(_)))
        .unwrap();
    if let SourceRecord::PrisonRelease(w) = &mut release {
        w.release_date = i32::MAX;
    }
    let e = continuity_ingest::api::to_json(&release).unwrap_err();
    assert!(e.to_string().contains("a date is outside"), "{e}");
}

#[test]
fn csv_rows_answer_each_with_the_file_s_column_names() {
    let csv = "\
EPISODE_ID,LA,FINITIAL,SINITIAL,DOB,SEX,TRIAGED,MODST,DISD,DISRSN,PNOMS
EP-1,E10000025,J,S,01/04/1990,M,03/06/2024,10/06/2024,,,A1234BC
EP-2,E10000025,J,S,1990-04-01,F,,,20 Jul 2024,Completed,
EP-3,E10000025,J,S,31/02/1990,M,03/06/2024,,,,
EP-4,E10000025,,,,,,,,,
EP-5,E10000025,J,S,01/04/1990,M,03/06/2024,,05/08/2024,DROPPED OUT,
";
    let extract = ndtms::parse(
        csv.as_bytes(),
        &ndtms::Columns::default(),
        "PRV001",
        upload(None),
    )
    .unwrap();
    let rows: Vec<(u64, &Parsed)> = extract.rows.iter().map(|(n, p)| (*n, p)).collect();
    assert_eq!(rows.len(), 5);
    assert!(
        matches!(rows[0], (2, Parsed::Records(r)) if r.len() == 1 && matches!(r[0], SourceRecord::TreatmentStart(_)))
    );
    assert!(
        matches!(rows[1], (3, Parsed::Records(r)) if matches!(r[..], [SourceRecord::TreatmentDischarge(_)]))
    );
    match rows[2] {
        (4, Parsed::Rejected(e)) => assert_eq!(e[0].field, "DOB"),
        other => panic!("{other:?}"),
    }
    match rows[3] {
        (5, Parsed::Rejected(e)) => assert_eq!(e[0].field, "TRIAGED"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(rows[4], (6, Parsed::Records(r)) if r.len() == 2));
    // A mapping for another system's headers.
    let columns = ndtms::Columns {
        episode_id: vec!["Client Episode".into()],
        local_authority: vec!["Local Authority Code".into()],
        triage_date: vec!["Triage".into()],
        ..ndtms::Columns::default()
    };
    let extract = ndtms::parse(
        b"client episode , Local Authority Code,Triage\nX9,E10000025,2024-06-03\n",
        &columns,
        "PRV001",
        upload(None),
    )
    .unwrap();
    assert!(matches!(&extract.rows[0].1, Parsed::Records(r) if r.len() == 1));
    // Without the required columns, the whole file is refused, naming what was looked for.
    let e = ndtms::parse(
        b"A,B\n1,2\n",
        &ndtms::Columns::default(),
        "PRV001",
        upload(None),
    )
    .err()
    .unwrap();
    assert!(e.problem.contains("EPISODE_ID"), "{e:?}");
}

/// The records of one extract row as domain events.
fn row_events(parsed: &Parsed) -> Vec<SourceEvent> {
    let Parsed::Records(records) = parsed else {
        panic!("expected records, got {parsed:?}");
    };
    records
        .iter()
        .map(|r| {
            let mut record = r.clone();
            record.envelope_mut().event_id = derived_id(&record);
            validate_source_record(&record, today()).unwrap()
        })
        .collect()
}

#[test]
fn csv_rows_are_recorded_when_the_extract_says_and_the_answer_says_which() {
    use ndtms::RecordedFrom;
    let received = Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap();
    let extracted = Utc.with_ymd_and_hms(2026, 11, 20, 18, 30, 0).unwrap();
    let csv = "\
EPISODE_ID,LA,PNOMS,TRIAGED,LAST_MODIFIED
EP-1,E10000025,A1234BC,03/11/2026,05/11/2026
EP-2,E10000025,A1234BD,03/11/2026,2026-11-06T14:10:00Z
EP-3,E10000025,A1234BE,03/11/2026,
EP-4,E10000025,A1234BF,03/11/2026,someday
EP-5,E10000025,A1234BG,03/11/2026,2027-01-01
";
    let extract = ndtms::parse(
        csv.as_bytes(),
        &ndtms::Columns::default(),
        "PRV001",
        upload(Some(extracted)),
    )
    .unwrap();
    let at = |line: u64| extract.recorded.get(&line).cloned();
    // A date: 00:00 Europe/London that day (GMT in November).
    let first = at(2).unwrap();
    assert_eq!(first.from, RecordedFrom::Column);
    assert_eq!(first.column.as_deref(), Some("LAST_MODIFIED"));
    assert_eq!(
        first.at,
        Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap()
    );
    assert_eq!(
        at(3).unwrap().at,
        Utc.with_ymd_and_hms(2026, 11, 6, 14, 10, 0).unwrap()
    );
    // No value in the column: the extract's own time.
    assert_eq!(at(4).unwrap().from, RecordedFrom::Extract);
    assert_eq!(at(4).unwrap().at, extracted);
    // Not a time: the row is refused naming the column, and has no recorded time.
    match &extract.rows[3] {
        (5, Parsed::Rejected(e)) => assert_eq!(e[0].field, "LAST_MODIFIED"),
        other => panic!("{other:?}"),
    }
    assert_eq!(at(5), None);
    // After the receipt: recorded at the receipt.
    assert_eq!(at(6).unwrap().at, received);
    // The events carry it.
    let events = row_events(&extract.rows[0].1);
    assert_eq!(
        events[0].meta().occurred_at,
        Utc.with_ymd_and_hms(2026, 11, 5, 0, 0, 0).unwrap()
    );
    // Neither a column nor extracted_at: the receipt.
    let plain = ndtms::parse(
        b"EPISODE_ID,LA,PNOMS,TRIAGED\nEP-1,E10000025,A1234BC,03/11/2026\n",
        &ndtms::Columns::default(),
        "PRV001",
        upload(None),
    )
    .unwrap();
    assert_eq!(plain.recorded[&2].from, RecordedFrom::Receipt);
    assert_eq!(plain.recorded[&2].at, received);
}

/// An extract first sent on day 10 of a case's window, and the same extract replayed months
/// later with the date it was made: the engagement is "in the window" both times, not
/// "reported late" on the replay, and has the same id.
#[test]
fn a_replayed_extract_gives_the_timeliness_it_gave_live() {
    use continuity_domain::Timeliness;
    let release = date(2026, 11, 2);
    let csv = b"EPISODE_ID,LA,PNOMS,TRIAGED\nEP-1,E10000025,A1234BC,09/11/2026\n";
    let sent = Utc.with_ymd_and_hms(2026, 11, 12, 16, 0, 0).unwrap();
    let replayed = Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap();
    let parse = |upload| {
        let extract = ndtms::parse(csv, &ndtms::Columns::default(), "PRV001", upload).unwrap();
        row_events(&extract.rows[0].1)
    };
    let live = parse(ndtms::Upload {
        extracted_at: None,
        received_at: sent,
    });
    let replay = parse(ndtms::Upload {
        extracted_at: Some(sent),
        received_at: replayed,
    });
    assert_eq!(live[0].id(), replay[0].id(), "the same event either way");
    let json_event = |kind: EventKind, json: String| {
        let mut record = kind.parse(json.as_bytes(), envelope("PRV001")).unwrap();
        record.envelope_mut().event_id = derived_id(&record);
        validate_source_record(&record, today()).unwrap()
    };
    let release_and_referral = [
        json_event(
            EventKind::Releases,
            format!(
                r#"{{"release_id": "REL-1", "person": {{"noms": "A1234BC"}}, "release_date": "{release}",
                    "reason": "RELEASED", "movement_code": "CR", "prison": "MDI"}}"#
            ),
        ),
        json_event(
            EventKind::Referrals,
            r#"{"referral_id": "REF-1", "person": {"noms": "A1234BC"}, "referred_on": "2026-10-20",
                "origin": "PRISON", "need": {"local_authority": "E10000025", "provider": "PRV001"}}"#
                .to_owned(),
        ),
    ];
    let timeliness = |starts: Vec<SourceEvent>| {
        let mut events: Vec<SourceEvent> = release_and_referral.to_vec();
        events.extend(starts);
        let assessed = assess(&events, &Rules::default(), replayed);
        assessed.cases[0].engagement.as_ref().unwrap().timeliness
    };
    assert_eq!(timeliness(live), Timeliness::InWindow);
    assert_eq!(timeliness(replay), Timeliness::InWindow);
    // Without the extract's date, the replay would mark it reported late.
    let undated = parse(ndtms::Upload {
        extracted_at: None,
        received_at: replayed,
    });
    assert_eq!(timeliness(undated), Timeliness::ReportedLate);
}

/// The JSON forms ingest reads validate against the request schemas its OpenAPI document
/// publishes (generated from the Avro schemas by `scripts/openapi/kinds.py`), so a client
/// generated from the document sends what ingest accepts. The Python comes from
/// `scripts/install-python.sh` (`CONTINUITY_PYTHON`, set by `scripts/test.sh`).
#[test]
fn json_forms_match_the_published_request_schemas() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("CONTINUITY_PYTHON").unwrap_or_else(|_| "python3".into());
    let events = continuity_synthetic::generate(&continuity_synthetic::Config {
        seed: 5,
        people: 300,
        start: date(2025, 1, 1),
        days: 300,
        local_authorities: 5,
        prisons: 5,
    });
    let mut forms: std::collections::BTreeMap<&str, Vec<Value>> = Default::default();
    for e in &events {
        let (kind, json) =
            continuity_ingest::api::to_json(&continuity_schema::source_record(e)).unwrap();
        forms.entry(kind.path()).or_default().push(json);
    }
    assert!(forms.len() >= 6, "{:?}", forms.keys());
    let dir = std::env::temp_dir().join(format!("json-forms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (kind, values) in &forms {
        std::fs::write(
            dir.join(format!("{kind}.json")),
            serde_json::to_vec(values).unwrap(),
        )
        .unwrap();
    }
    let out = std::process::Command::new(&python)
        .arg(root.join("scripts/openapi/check_forms.py"))
        .arg(root.join("services/ingest/openapi.yaml"))
        .arg(&dir)
        .output()
        .unwrap_or_else(|e| panic!("{python}: {e}; run scripts/test.sh, which installs it"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let checked: usize = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(checked, forms.values().map(Vec::len).sum::<usize>());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_community_manager_allocation_names_the_configured_probation_service() {
    // The published example of person.community.manager.allocated.
    let v = serde_json::json!({
        "eventType": "person.community.manager.allocated",
        "version": 1,
        "occurredAt": "2024-06-11T15:41:03.930816186+01:00",
        "description": "Person allocated event",
        "detailUrl": "https://hmpps-workload-dev.hmpps.service.justice.gov.uk/allocation/person/6abd8aa1-7552-4f7c-bcec-be1eae8c4bf3",
        "additionalInformation": {"allocationId": "6abd8aa1-7552-4f7c-bcec-be1eae8c4bf3"},
        "personReference": {"identifiers": [{"type": "CRN", "value": "X777519"}]}
    });
    let SourceEvent::ProbationAllocated(a) = event(adapt(&v, "HMPPS", Some("probation-kss")))
    else {
        panic!("not an allocation");
    };
    assert_eq!(a.probation_service.as_str(), "probation-kss");
    assert_eq!(a.person.identifiers[0].value(), "X777519");
    assert_eq!(
        a.allocation_id.as_deref(),
        Some("6abd8aa1-7552-4f7c-bcec-be1eae8c4bf3")
    );
    // Without the setting the event is ignored, saying what to set.
    match adapt(&v, "HMPPS", None) {
        Parsed::Ignored(reason) => assert!(reason.contains("allocation_probation_service")),
        other => panic!("{other:?}"),
    }
    let mut no_crn = v.clone();
    no_crn["personReference"]["identifiers"] = serde_json::json!([]);
    let Parsed::Rejected(problems) = adapt(&no_crn, "HMPPS", Some("probation-kss")) else {
        panic!("accepted without a CRN");
    };
    assert_eq!(problems[0].field, "personReference.identifiers");
}
