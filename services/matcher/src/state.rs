//! A case as stored in `cases.state`: JSON (without the person) compressed with LZ4 behind a
//! one-byte format tag. About 60% of the JSON's size, so more of the table stays in memory
//! and each update writes less WAL. States written before compression are plain JSON (first
//! byte `{`) and still read.

use continuity_domain::Case;

/// Format tag: LZ4 block of the JSON, its length first (4 bytes, little-endian).
const LZ4_JSON: u8 = 1;

/// Largest state accepted on reading: far above any real case, a guard against a corrupt
/// length making the reader allocate gigabytes.
const MAX_JSON: usize = 1 << 20;

/// Why a stored state could not be read. Says where the problem is, never what the state holds.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The first byte is no known format.
    #[error("state has unknown format tag {0}")]
    Format(u8),
    /// The state is empty.
    #[error("state is empty")]
    Empty,
    /// The compressed form is damaged or claims an impossible length.
    #[error("state does not decompress: {0}")]
    Decompress(String),
    /// The JSON does not describe a case.
    #[error("state does not parse: {category:?} at line {line}, column {column}")]
    Json {
        /// What kind of problem.
        category: serde_json::error::Category,
        /// Line.
        line: usize,
        /// Column.
        column: usize,
    },
}

/// The stored form of `case`. Serialising it fails only on a defect (a map with keys JSON
/// cannot hold); the batch then fails rather than storing a state that cannot be read back.
pub fn encode(case: &Case) -> Result<Vec<u8>, serde_json::Error> {
    let json = serde_json::to_vec(case)?;
    let mut out = Vec::with_capacity(json.len() / 2 + 8);
    out.push(LZ4_JSON);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&lz4_flex::block::compress(&json));
    Ok(out)
}

/// The case stored as `state`.
pub fn decode(state: &[u8]) -> Result<Case, StateError> {
    let json = match state.split_first() {
        None => return Err(StateError::Empty),
        Some((b'{', _)) => std::borrow::Cow::Borrowed(state),
        Some((&LZ4_JSON, rest)) => {
            let (len, block) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| StateError::Decompress("no length".into()))?;
            let len = u32::from_le_bytes(*len) as usize;
            if len > MAX_JSON {
                return Err(StateError::Decompress(format!("claims {len} bytes")));
            }
            std::borrow::Cow::Owned(
                lz4_flex::block::decompress(block, len)
                    .map_err(|e| StateError::Decompress(e.to_string()))?,
            )
        }
        Some((&other, _)) => return Err(StateError::Format(other)),
    };
    serde_json::from_slice(&json).map_err(|e| StateError::Json {
        category: e.classify(),
        line: e.line(),
        column: e.column(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use continuity_domain::{assess, Rules};

    /// A case from the domain's own rules over generated events, with as many flags as any.
    fn a_case() -> Case {
        let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let now = Utc.with_ymd_and_hms(2025, 4, 1, 12, 0, 0).unwrap();
        let events = continuity_synthetic::generate(&continuity_synthetic::Config {
            seed: 7,
            people: 40,
            start,
            days: 30,
            ..continuity_synthetic::Config::default()
        });
        let mut cases = assess(events.iter(), &Rules::default(), now).cases;
        cases.sort_by_key(|c| std::cmp::Reverse(c.flags.len()));
        let mut case = cases.into_iter().next().expect("the generator makes cases");
        assert!(!case.flags.is_empty(), "a case with flags");
        // Neither the person nor their references are in the stored state (they are columns).
        case.person = None;
        case.references = Default::default();
        case
    }

    #[test]
    fn a_case_survives_the_round_trip_smaller_than_its_json() {
        let case = a_case();
        let stored = encode(&case).unwrap();
        let json = serde_json::to_vec(&case).unwrap();
        // Measured: 566 bytes for 952 of JSON.
        assert!(
            stored.len() * 10 < json.len() * 7,
            "{} vs {}",
            stored.len(),
            json.len()
        );
        assert_eq!(decode(&stored).unwrap(), case);
    }

    #[test]
    fn states_stored_as_plain_json_still_read() {
        let case = a_case();
        assert_eq!(decode(&serde_json::to_vec(&case).unwrap()).unwrap(), case);
    }

    /// A state as builds before the codes wrote it: variant names in lower case (`excluded`,
    /// `under18`, `at_risk`, `in_window`, `definite`).
    #[test]
    fn states_written_before_the_codes_still_read() {
        let old = r#"{"case_id":"0b9a4c2e-7f3d-5a1b-9c8d-2e4f6a8b0c1d","release_id":"R1",
            "release_date":"2026-11-02","last_window_day":"2026-11-23",
            "overdue_at":"2026-11-24T00:00:00Z","prison":"MDI","local_authority":"E10000025",
            "provider":"OXPROV","known_at":"2026-11-02T12:00:00Z",
            "outcome":{"status":"excluded","reason":"under18"},
            "engagement":{"date":"2026-11-05","timeliness":"in_window",
                "recorded_at":"2026-11-05T09:00:00Z","provider":"OXPROV","strength":"definite"},
            "flags":[{"flag_id":"0b9a4c2e-7f3d-5a1b-9c8d-2e4f6a8b0c1e","kind":{"kind":"at_risk","day":7},
                "due_at":"2026-11-09T00:00:00Z","raised_at":"2026-11-09T00:00:00Z",
                "state":"RESOLVED_EXCLUDED","settled_at":"2026-11-10T00:00:00Z"},
                {"flag_id":"0b9a4c2e-7f3d-5a1b-9c8d-2e4f6a8b0c1f","kind":{"kind":"overdue"},
                "due_at":"2026-11-24T00:00:00Z","raised_at":"2026-11-24T00:00:00Z",
                "state":"RAISED","settled_at":null,"notified":false}]}"#;
        let case = decode(old.as_bytes()).unwrap();
        assert_eq!(
            case.outcome,
            continuity_domain::Outcome::Excluded(continuity_domain::ExclusionReason::Under18)
        );
        let engagement = case.engagement.as_ref().unwrap();
        assert_eq!(
            engagement.timeliness,
            continuity_domain::Timeliness::InWindow
        );
        assert_eq!(
            engagement.strength,
            continuity_domain::MatchStrength::Definite
        );
        assert_eq!(case.flags[0].kind, continuity_domain::FlagKind::AtRisk(7));
        assert!(case.flags[0].notified, "stored before the field: sent");
        assert_eq!(case.flags[1].kind, continuity_domain::FlagKind::Overdue);
        // Written again, it is spelled by the codes.
        let json = String::from_utf8(serde_json::to_vec(&case).unwrap()).unwrap();
        for code in [
            r#""EXCLUDED""#,
            r#""under_18""#,
            r#""AT_RISK""#,
            r#""IN_WINDOW""#,
        ] {
            assert!(json.contains(code), "{code} in {json}");
        }
        assert_eq!(decode(&encode(&case).unwrap()).unwrap(), case);
    }

    #[test]
    fn damaged_states_are_errors_not_panics() {
        let stored = encode(&a_case()).unwrap();
        assert!(matches!(decode(&[]), Err(StateError::Empty)));
        assert!(matches!(decode(&[7, 1, 2]), Err(StateError::Format(7))));
        assert!(matches!(
            decode(&stored[..3]),
            Err(StateError::Decompress(_))
        ));
        let mut huge = stored.clone();
        huge[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(StateError::Decompress(_))));
        let mut truncated = stored.clone();
        truncated.truncate(stored.len() - 4);
        assert!(decode(&truncated).is_err());
        assert!(matches!(
            decode(b"{\"case_id\": 1}"),
            Err(StateError::Json { .. })
        ));
    }
}
