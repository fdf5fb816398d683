//! Codes for organisations and places: local authorities (ONS GSS codes), prisons (NOMIS
//! agency ids), treatment providers and source organisations. Each is a validated newtype.
//! These are not personal data and may appear in logs and metric labels.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a code was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} must be {expected}")]
pub struct CodeError {
    /// What was being parsed, e.g. "local authority code".
    pub what: &'static str,
    /// The expected shape.
    pub expected: &'static str,
}

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        crate::text::text_newtype!($name, CodeError);

        impl TryFrom<String> for $name {
            type Error = CodeError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
}

code_type!(
    /// An ONS GSS local authority code such as Oxfordshire's `E10000025`: a country letter
    /// (E, W, S, N) and eight digits.
    LocalAuthorityCode
);
code_type!(
    /// A prison's NOMIS agency id, e.g. `MDI` (Moorland): two to six letters or digits.
    PrisonCode
);
code_type!(
    /// A community treatment provider's code (NDTMS agency code or contract id): one to 32
    /// letters, digits, `-` or `_`.
    ProviderCode
);
code_type!(
    /// The code of an organisation that sends events (a prison, probation region, provider or
    /// healthcare service): one to 32 letters, digits, `-`, `_` or `.`.
    OrganisationCode
);

fn simple_code(
    raw: &str,
    len: std::ops::RangeInclusive<usize>,
    extra: &[u8],
    what: &'static str,
    expected: &'static str,
) -> Result<String, CodeError> {
    let s = raw.trim();
    let ok = len.contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(CodeError { what, expected })
    }
}

impl LocalAuthorityCode {
    /// Parse `^[ENSW][0-9]{8}$` (upper-cased).
    pub fn parse(raw: &str) -> Result<Self, CodeError> {
        let s = raw.trim().to_ascii_uppercase();
        let ok = s.len() == 9
            && matches!(s.as_bytes()[0], b'E' | b'N' | b'S' | b'W')
            && s.bytes().skip(1).all(|b| b.is_ascii_digit());
        if ok {
            Ok(Self(s))
        } else {
            Err(CodeError {
                what: "local authority code",
                expected: "an ONS GSS code: E, W, S or N and eight digits (E10000025)",
            })
        }
    }

    /// True for English local authorities (codes beginning `E`).
    pub fn is_in_england(&self) -> bool {
        is_english_area(&self.0)
    }
}

impl PrisonCode {
    /// Parse two to six letters or digits (upper-cased).
    pub fn parse(raw: &str) -> Result<Self, CodeError> {
        simple_code(
            &raw.trim().to_ascii_uppercase(),
            2..=6,
            &[],
            "prison code",
            "a NOMIS agency id of 2 to 6 letters or digits (MDI)",
        )
        .map(Self)
    }
}

impl ProviderCode {
    /// Parse one to 32 letters, digits, `-` or `_`.
    pub fn parse(raw: &str) -> Result<Self, CodeError> {
        simple_code(
            raw,
            1..=32,
            b"-_",
            "provider code",
            "1 to 32 letters, digits, '-' or '_'",
        )
        .map(Self)
    }
}

impl OrganisationCode {
    /// Parse one to 32 letters, digits, `-`, `_` or `.`.
    pub fn parse(raw: &str) -> Result<Self, CodeError> {
        simple_code(
            raw,
            1..=32,
            b"-_.",
            "organisation code",
            "1 to 32 letters, digits, '-', '_' or '.'",
        )
        .map(Self)
    }
}

/// Whether an ONS GSS area code is in England: its first letter names the country (`E`
/// England, `W` Wales, `S` Scotland, `N` Northern Ireland).
pub fn is_english_area(gss: &str) -> bool {
    gss.starts_with('E')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_authorities() {
        let oxon = LocalAuthorityCode::parse("e10000025").unwrap();
        assert_eq!(oxon.as_str(), "E10000025");
        assert!(oxon.is_in_england());
        assert!(!LocalAuthorityCode::parse("W06000015")
            .unwrap()
            .is_in_england());
        for bad in ["E1000002", "X10000025", "E1000002A", ""] {
            assert!(LocalAuthorityCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn other_codes() {
        assert_eq!(PrisonCode::parse("mdi").unwrap().as_str(), "MDI");
        assert!(PrisonCode::parse("M").is_err());
        assert!(PrisonCode::parse("MD I").is_err());
        assert!(ProviderCode::parse("TURNING-POINT_01").is_ok());
        assert!(ProviderCode::parse("a b").is_err());
        assert!(OrganisationCode::parse("hmpps.prisons").is_ok());
        assert!(OrganisationCode::parse("").is_err());
    }
}
