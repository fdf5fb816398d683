//! Person identifiers used by prisons, probation, police and health services.
//!
//! Each identifier is a newtype whose only constructor, `parse`, validates the format and any
//! check character, so a value of the type is always valid. Parsing trims surrounding
//! whitespace and upper-cases letters; nothing else is guessed. Errors never echo the rejected
//! value: identifiers are personal data and errors travel to other organisations.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why an identifier was rejected. The message names the identifier kind and the rule broken,
/// never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentifierError {
    /// The value does not have the identifier's shape.
    #[error("{kind} must look like {expected}")]
    Format {
        /// The identifier kind, e.g. "NOMS number".
        kind: IdentifierKind,
        /// The expected shape, for the sender to correct their data.
        expected: &'static str,
    },
    /// The shape is right but the check character does not match.
    #[error("{kind} has a wrong check character: the value is mistyped or invented")]
    CheckCharacter {
        /// The identifier kind.
        kind: IdentifierKind,
    },
}

/// The kinds of identifier the pipeline accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IdentifierKind {
    /// Prison (NOMS) number, e.g. `A1234BC`.
    Noms,
    /// Probation case reference number, e.g. `X123456`.
    Crn,
    /// Police National Computer id, e.g. `2012/0443456Z`.
    Pnc,
    /// Criminal Records Office number, e.g. `123456/08T`.
    Cro,
    /// NHS number, 10 digits with a modulus-11 check digit.
    Nhs,
}

impl IdentifierKind {
    /// Stable lower-case name, used in keyed hashes, schemas and error fields.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Noms => "noms",
            IdentifierKind::Crn => "crn",
            IdentifierKind::Pnc => "pnc",
            IdentifierKind::Cro => "cro",
            IdentifierKind::Nhs => "nhs",
        }
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentifierKind::Noms => "NOMS number",
            IdentifierKind::Crn => "CRN",
            IdentifierKind::Pnc => "PNC id",
            IdentifierKind::Cro => "CRO number",
            IdentifierKind::Nhs => "NHS number",
        })
    }
}

fn normalised(raw: &str) -> String {
    raw.trim().to_ascii_uppercase()
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn all_letters(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_uppercase())
}

/// The check letters of PNC and CRO numbers, indexed by `number mod 23`.
const MOD23_LETTERS: &[u8; 23] = b"ZABCDEFGHJKLMNPQRTUVWXY";

fn mod23_letter(digits: &str) -> Option<u8> {
    let n: u64 = digits.parse().ok()?;
    Some(MOD23_LETTERS[(n % 23) as usize])
}

macro_rules! identifier_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        crate::text::text_newtype!($name, IdentifierError);

        /// Debug output hides the value so identifiers never reach logs by accident.
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(..)", stringify!($name))
            }
        }

        impl From<$name> for Identifier {
            fn from(value: $name) -> Self {
                Identifier { kind: $kind, value: value.0 }
            }
        }
    };
}

identifier_type!(
    /// A prison (NOMS) number: one letter, four digits, two letters (`A1234BC`).
    NomsNumber,
    IdentifierKind::Noms
);
identifier_type!(
    /// A probation case reference number: one letter, six digits (`X123456`).
    Crn,
    IdentifierKind::Crn
);
identifier_type!(
    /// A PNC id, canonical short form `YY/NNNNNNNC` (the check covers only the year's last two
    /// digits, so the short form is what identifies the record).
    PncId,
    IdentifierKind::Pnc
);
identifier_type!(
    /// A CRO number: `NNNNNN/YYC` or `SFYY/NNNNNNC`.
    CroNumber,
    IdentifierKind::Cro
);
identifier_type!(
    /// An NHS number: ten digits, canonical form without spaces.
    NhsNumber,
    IdentifierKind::Nhs
);

impl NomsNumber {
    /// Parse `^[A-Z][0-9]{4}[A-Z]{2}$` (case-insensitive, surrounding whitespace ignored).
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let s = normalised(raw);
        let ok = s.len() == 7
            && s.is_ascii()
            && all_letters(&s[0..1])
            && all_digits(&s[1..5])
            && all_letters(&s[5..7]);
        if ok {
            Ok(Self(s))
        } else {
            Err(IdentifierError::Format {
                kind: IdentifierKind::Noms,
                expected: "one letter, four digits, two letters (A1234BC)",
            })
        }
    }
}

impl Crn {
    /// Parse `^[A-Z][0-9]{6}$`.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let s = normalised(raw);
        let ok = s.len() == 7 && s.is_ascii() && all_letters(&s[0..1]) && all_digits(&s[1..7]);
        if ok {
            Ok(Self(s))
        } else {
            Err(IdentifierError::Format {
                kind: IdentifierKind::Crn,
                expected: "one letter and six digits (X123456)",
            })
        }
    }
}

impl PncId {
    /// Parse `YYYY/NNNNNNNC` or `YY/NNNNNNNC`; a serial shorter than seven digits is
    /// zero-padded, as police systems print it both ways. The check letter is
    /// `ZABCDEFGHJKLMNPQRTUVWXY[(YY ++ serial) mod 23]`.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        const FORMAT: IdentifierError = IdentifierError::Format {
            kind: IdentifierKind::Pnc,
            expected: "YYYY/NNNNNNNC or YY/NNNNNNNC (2012/0443456Z)",
        };
        let s = normalised(raw);
        let (year, rest) = s.split_once('/').ok_or(FORMAT)?;
        if !s.is_ascii() || !all_digits(year) || !(year.len() == 2 || year.len() == 4) {
            return Err(FORMAT);
        }
        if rest.len() < 2 || rest.len() > 8 {
            return Err(FORMAT);
        }
        let (serial, check) = rest.split_at(rest.len() - 1);
        if !all_digits(serial) || !all_letters(check) {
            return Err(FORMAT);
        }
        let yy = &year[year.len() - 2..];
        let serial = format!("{serial:0>7}");
        let expected = mod23_letter(&format!("{yy}{serial}")).ok_or(FORMAT)?;
        if check.as_bytes()[0] != expected {
            return Err(IdentifierError::CheckCharacter {
                kind: IdentifierKind::Pnc,
            });
        }
        Ok(Self(format!("{yy}/{serial}{check}")))
    }
}

impl CroNumber {
    /// Parse `NNNNNN/YYC` or `SFYY/NNNNNNC`; in both the check letter is the mod-23 letter of
    /// `YY ++ six-digit serial`.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        const FORMAT: IdentifierError = IdentifierError::Format {
            kind: IdentifierKind::Cro,
            expected: "NNNNNN/YYC or SFYY/NNNNNNC (123456/08T)",
        };
        let s = normalised(raw);
        if !s.is_ascii() {
            return Err(FORMAT);
        }
        let (left, right) = s.split_once('/').ok_or(FORMAT)?;
        let (yy, serial, check) = if let Some(year) = left.strip_prefix("SF") {
            if right.len() != 7 {
                return Err(FORMAT);
            }
            (year, &right[..6], &right[6..])
        } else {
            if right.len() != 3 {
                return Err(FORMAT);
            }
            (&right[..2], left, &right[2..])
        };
        if yy.len() != 2 || !all_digits(yy) || serial.len() != 6 || !all_digits(serial) {
            return Err(FORMAT);
        }
        if !all_letters(check) {
            return Err(FORMAT);
        }
        let expected = mod23_letter(&format!("{yy}{serial}")).ok_or(FORMAT)?;
        if check.as_bytes()[0] != expected {
            return Err(IdentifierError::CheckCharacter {
                kind: IdentifierKind::Cro,
            });
        }
        Ok(Self(s))
    }
}

impl NhsNumber {
    /// Parse ten digits (spaces and hyphens between groups allowed) with the modulus-11 check:
    /// weights 10..2 on the first nine digits, check = 11 - (sum mod 11), 11 means 0 and 10
    /// means the number cannot exist.
    pub fn parse(raw: &str) -> Result<Self, IdentifierError> {
        let digits: String = raw
            .trim()
            .chars()
            .filter(|c| *c != ' ' && *c != '-')
            .collect();
        if digits.len() != 10 || !all_digits(&digits) {
            return Err(IdentifierError::Format {
                kind: IdentifierKind::Nhs,
                expected: "ten digits (943 476 5919)",
            });
        }
        let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = d[..9].iter().zip((2..=10).rev()).map(|(x, w)| x * w).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => {
                return Err(IdentifierError::CheckCharacter {
                    kind: IdentifierKind::Nhs,
                })
            }
            c => c,
        };
        if d[9] != check {
            return Err(IdentifierError::CheckCharacter {
                kind: IdentifierKind::Nhs,
            });
        }
        Ok(Self(digits))
    }
}

/// Any validated identifier, tagged with its kind. Only built from the validated newtypes or
/// [`Identifier::parse`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier {
    kind: IdentifierKind,
    value: String,
}

impl Identifier {
    /// Validate `raw` as an identifier of `kind`.
    pub fn parse(kind: IdentifierKind, raw: &str) -> Result<Self, IdentifierError> {
        Ok(match kind {
            IdentifierKind::Noms => NomsNumber::parse(raw)?.into(),
            IdentifierKind::Crn => Crn::parse(raw)?.into(),
            IdentifierKind::Pnc => PncId::parse(raw)?.into(),
            IdentifierKind::Cro => CroNumber::parse(raw)?.into(),
            IdentifierKind::Nhs => NhsNumber::parse(raw)?.into(),
        })
    }

    /// The identifier's kind.
    pub fn kind(&self) -> IdentifierKind {
        self.kind
    }

    /// The canonical value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Debug for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identifier({}, ..)", self.kind.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noms_numbers() {
        assert_eq!(NomsNumber::parse(" a1234bc ").unwrap().as_str(), "A1234BC");
        for bad in ["A1234B", "11234BC", "A12345C", "A1234BCD", "", "Á1234BC"] {
            assert!(NomsNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn crns() {
        assert_eq!(Crn::parse("x123456").unwrap().as_str(), "X123456");
        for bad in ["X12345", "XX23456", "X1234567", "123456X"] {
            assert!(Crn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pnc_check_letters() {
        // Check letters computed independently: "ZABCDEFGHJKLMNPQRTUVWXY"[int(YY+serial) % 23].
        assert_eq!(
            PncId::parse("2012/0443456Z").unwrap().as_str(),
            "12/0443456Z"
        );
        assert_eq!(PncId::parse("99/0123456X").unwrap().as_str(), "99/0123456X");
        assert_eq!(PncId::parse("2001/1Q").unwrap().as_str(), "01/0000001Q");
        assert_eq!(
            PncId::parse("2012/0443456A"),
            Err(IdentifierError::CheckCharacter {
                kind: IdentifierKind::Pnc
            })
        );
        for bad in [
            "20120443456Z",
            "201/0443456Z",
            "2012/04434567Z",
            "2012/Z",
            "2012/044345Z6",
        ] {
            assert!(
                matches!(PncId::parse(bad), Err(IdentifierError::Format { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn cro_check_letters() {
        assert_eq!(
            CroNumber::parse("123456/08T").unwrap().as_str(),
            "123456/08T"
        );
        assert_eq!(
            CroNumber::parse("sf95/012345m").unwrap().as_str(),
            "SF95/012345M"
        );
        assert!(matches!(
            CroNumber::parse("123456/08U"),
            Err(IdentifierError::CheckCharacter { .. })
        ));
        assert!(matches!(
            CroNumber::parse("SF95/012345N"),
            Err(IdentifierError::CheckCharacter { .. })
        ));
        for bad in ["12345/08T", "123456/8T", "123456-08T", "SF9/012345M"] {
            assert!(
                matches!(CroNumber::parse(bad), Err(IdentifierError::Format { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn nhs_numbers() {
        assert_eq!(
            NhsNumber::parse("943 476 5919").unwrap().as_str(),
            "9434765919"
        );
        assert_eq!(
            NhsNumber::parse("401-023-2137").unwrap().as_str(),
            "4010232137"
        );
        // Check digit wrong.
        assert!(matches!(
            NhsNumber::parse("9434765918"),
            Err(IdentifierError::CheckCharacter { .. })
        ));
        // 123456789x: remainder gives check 10, which no NHS number can have.
        assert!(matches!(
            NhsNumber::parse("1234567890"),
            Err(IdentifierError::CheckCharacter { .. })
        ));
        assert!(matches!(
            NhsNumber::parse("943476591"),
            Err(IdentifierError::Format { .. })
        ));
    }

    #[test]
    fn errors_never_contain_the_value() {
        let err = NomsNumber::parse("Z9999ZZZ").unwrap_err().to_string();
        assert!(!err.contains("Z9999ZZZ"));
        let err = NhsNumber::parse("9434765918").unwrap_err().to_string();
        assert!(!err.contains("9434765918"));
        assert!(format!("{:?}", NomsNumber::parse("A1234BC").unwrap()) == "NomsNumber(..)");
    }

    #[test]
    fn identifier_dispatch() {
        let id = Identifier::parse(IdentifierKind::Crn, "x123456").unwrap();
        assert_eq!((id.kind(), id.value()), (IdentifierKind::Crn, "X123456"));
        assert!(Identifier::parse(IdentifierKind::Noms, "X123456").is_err());
    }
}
