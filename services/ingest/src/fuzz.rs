//! Malformed input, many times over: 100,000+ mutated JSON events, HMPPS messages and CSV
//! extracts, generated deterministically from valid seeds, go through the same parsing and
//! admission as a request. None may panic; every row must be answered; no error text may
//! quote a value that was sent.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use std::collections::BTreeMap;

use crate::api::{self, EventKind};
use crate::fuzzing::{Harness, MARKER};

const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\n",
    b"null",
    b"true",
    b"-1e999",
    b"\\",
    b"\"\\u0000\"",
    b"99999999999999999999999",
    b"\"2024-02-30\"",
    b"\"A1234BC\"",
    b"\xff\xfe",
    b"T",
    b"Z",
    b"+25:00",
    b"[Europe/London]",
    b"\"PLANTED7X\"",
    b"PLANTED7X",
    b"\r\n",
    b";",
    b"\"\"",
    b"0",
    b"-",
    b"{\"a\":",
    b"\"Message\":",
    b"\"eventType\":",
    b"\xe2\x80\x8b",
];

fn mutate(rng: &mut ChaCha8Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..rng.random_range(1..6) {
        let at = if out.is_empty() {
            0
        } else {
            rng.random_range(0..out.len())
        };
        match rng.random_range(0..6) {
            0 if !out.is_empty() => out[at] = rng.random(),
            1 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                out.splice(at..at, t.iter().copied());
            }
            2 if !out.is_empty() => {
                let end = (at + rng.random_range(1..40)).min(out.len());
                out.drain(at..end);
            }
            3 => out.truncate(at),
            4 if !out.is_empty() => {
                let end = (at + rng.random_range(1..60)).min(out.len());
                let copy: Vec<u8> = out[at..end].to_vec();
                let to = rng.random_range(0..=out.len());
                out.splice(to..to, copy);
            }
            _ => {
                let n = rng.random_range(1..5000);
                out.splice(at..at, std::iter::repeat_n(b'A', n));
            }
        }
    }
    out
}

/// Replace one value somewhere in a JSON document with something of the wrong kind.
fn mutate_value(rng: &mut ChaCha8Rng, v: &mut Value) {
    let weird = [
        Value::Null,
        Value::Bool(true),
        Value::from(-1),
        Value::from(1e300),
        Value::from(MARKER),
        Value::from(""),
        Value::from("2024-13-45"),
        Value::Array(vec![Value::from(MARKER)]),
        serde_json::json!({ "x": MARKER }),
    ];
    match v {
        Value::Object(map) if !map.is_empty() && rng.random_bool(0.7) => {
            let i = rng.random_range(0..map.len());
            if let Some(child) = map.values_mut().nth(i) {
                return mutate_value(rng, child);
            }
        }
        Value::Array(items) if !items.is_empty() && rng.random_bool(0.7) => {
            let i = rng.random_range(0..items.len());
            return mutate_value(rng, &mut items[i]);
        }
        _ => {}
    }
    *v = weird[rng.random_range(0..weird.len())].clone();
}

fn json_seeds() -> Vec<(EventKind, Vec<u8>)> {
    let events = continuity_synthetic::generate(&continuity_synthetic::Config {
        seed: 9,
        people: 60,
        start: chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        days: 200,
        local_authorities: 3,
        prisons: 3,
    });
    let mut seeds: BTreeMap<&str, (EventKind, Vec<u8>)> = BTreeMap::new();
    for e in &events {
        let (kind, json) = api::to_json(&continuity_schema::source_record(e)).unwrap();
        seeds
            .entry(kind.path())
            .or_insert_with(|| (kind, json.to_string().into_bytes()));
    }
    seeds.into_values().collect()
}

fn hmpps_seeds() -> Vec<Vec<u8>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/hmpps");
    let mut seeds = Vec::new();
    for sub in [
        "probation-integration-services",
        "resettlement-passport",
        "other",
    ] {
        for entry in std::fs::read_dir(format!("{dir}/{sub}")).unwrap() {
            seeds.push(std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
    seeds
}

const CSV_SEED: &str = "\
EPISODE_ID,LA,FINITIAL,SINITIAL,DOB,SEX,TRIAGED,MODST,DISD,DISRSN,PNOMS
EP-1,E10000025,J,S,01/04/1990,M,03/06/2024,10/06/2024,,,A1234BC
EP-2,E10000025,J,S,1990-04-01,F,,,20 Jul 2024,Completed,
\"EP,3\",E10000025,J,S,01/04/1990,M,03/06/2024,,05/08/2024,DROPPED OUT,
";

#[test]
fn a_hundred_thousand_malformed_inputs_are_all_answered() {
    let mut rng = ChaCha8Rng::seed_from_u64(20261124);
    let mut h = Harness::new().unwrap();
    let json = json_seeds();
    assert!(json.len() >= 6);
    let hmpps = hmpps_seeds();
    let mut inputs = 0;
    // JSON events: byte mutations, and wrong values in well-formed documents.
    for i in 0..40_000 {
        let (kind, seed) = &json[i % json.len()];
        let body = if i % 2 == 0 {
            mutate(&mut rng, seed)
        } else {
            let mut v: Value = serde_json::from_slice(seed).unwrap();
            mutate_value(&mut rng, &mut v);
            v.to_string().into_bytes()
        };
        h.events(*kind, i % 5 == 0, &body);
        inputs += 1;
    }
    // HMPPS messages, wrapped and bare, mutated outside and inside the `Message` string.
    for i in 0..35_000 {
        let seed = &hmpps[i % hmpps.len()];
        let body = match i % 3 {
            0 => mutate(&mut rng, seed),
            1 => {
                let mut v: Value = serde_json::from_slice(seed).unwrap();
                mutate_value(&mut rng, &mut v);
                v.to_string().into_bytes()
            }
            _ => {
                let mut v: Value = serde_json::from_slice(seed).unwrap();
                if let Some(Value::String(inner)) = v.get("Message").cloned() {
                    let mutated = mutate(&mut rng, inner.as_bytes());
                    v["Message"] = Value::from(String::from_utf8_lossy(&mutated).into_owned());
                } else {
                    mutate_value(&mut rng, &mut v);
                }
                v.to_string().into_bytes()
            }
        };
        h.hmpps(i % 7 == 0, &body);
        inputs += 1;
    }
    // Treatment extracts.
    for _ in 0..30_000 {
        let body = mutate(&mut rng, CSV_SEED.as_bytes());
        h.extract(&body);
        inputs += 1;
    }
    assert!(inputs >= 100_000);
    assert!(
        h.answered >= inputs,
        "{} answers for {inputs} inputs",
        h.answered
    );
    // Some mutations leave a valid record; most do not.
    assert!(
        h.accepted > 0 && h.accepted < h.answered / 2,
        "{} accepted",
        h.accepted
    );
}

/// Arbitrary JSON documents, nested up to four levels, with keys from the real field names.
fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let keys = prop::sample::select(vec![
        "eventType",
        "Message",
        "occurredAt",
        "additionalInformation",
        "personReference",
        "identifiers",
        "type",
        "value",
        "nomsNumber",
        "reason",
        "nomisMovementReasonCode",
        "prisonId",
        "episode_id",
        "provider",
        "person",
        "noms",
        "triage_date",
        "need",
        "local_authority",
        "attributor",
        "date_of_birth",
        "MessageAttributes",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,30}".prop_map(Value::from),
        prop::sample::select(vec![
            "RELEASED",
            "ADMISSION",
            "DEC",
            "A1234BC",
            "2024-06-07T00:00:00+01:00[Europe/London]",
            "prison-offender-events.prisoner.released",
            "E10000025",
            "01/02/2024",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_json_is_answered_by_every_adapter(doc in arbitrary_json(), wrap in proptest::prelude::any::<bool>()) {
        let mut h = Harness::new().unwrap();
        let doc = if wrap {
            serde_json::json!({"Type": "Notification", "Message": doc.to_string()})
        } else {
            doc
        };
        let body = doc.to_string().into_bytes();
        h.hmpps(false, &body);
        for kind in EventKind::ALL {
            h.events(kind, false, &body);
        }
    }

    #[test]
    fn arbitrary_text_is_answered_as_csv_dates_and_instants(text in "(?s).{0,400}") {
        let mut h = Harness::new().unwrap();
        h.extract(text.as_bytes());
        let _ = crate::time::parse_date(&text);
        let _ = crate::time::parse_instant(&text);
        let with_header = format!("EPISODE_ID,LA,DOB,FINITIAL,SINITIAL,SEX,TRIAGED\n{text}");
        h.extract(with_header.as_bytes());
    }
}

/// Every input the coverage-guided fuzzers kept (`tests/fuzz/corpus`) and every seed they
/// start from, replayed through the same harness on the stable toolchain, so a crash the
/// fuzzer once found stays fixed.
#[test]
fn the_fuzzers_corpus_is_answered() {
    let fuzz = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fuzz");
    let mut h = Harness::new().unwrap();
    let mut replayed = 0;
    for target in ["events", "hmpps", "extract"] {
        for dir in [
            format!("{fuzz}/corpus/{target}"),
            format!("{fuzz}/seeds/{target}"),
        ] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let data = std::fs::read(entry.unwrap().path()).unwrap();
                assert!(h.target(target, &data));
                replayed += 1;
            }
        }
    }
    for data in hmpps_seeds() {
        assert!(h.target("hmpps", &data));
        replayed += 1;
    }
    assert!(replayed >= 17, "{replayed} inputs replayed");
    assert!(h.accepted > 0, "no seed was accepted");
}
