//! The NDTMS attributor: first-name initial, surname initial, date of birth and sex. It is how
//! community treatment records, which carry no criminal-justice identifier, are matched to a
//! person. Names are reduced to initials at once and never kept.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// Sex as NDTMS records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Sex {
    /// Male (NDTMS code 1).
    Male,
    /// Female (NDTMS code 2).
    Female,
    /// Indeterminate or other (NDTMS code 9 in some extracts).
    Other,
    /// Not known or not stated.
    NotKnown,
}

impl Sex {
    /// Parse the usual codings: `M`/`MALE`/`1`, `F`/`FEMALE`/`2`, `I`/`X`/`OTHER`/`9`,
    /// `U`/`N`/`NOT KNOWN`/`0`.
    pub fn parse(raw: &str) -> Result<Self, AttributorError> {
        match raw.trim().to_ascii_uppercase().as_str() {
            "M" | "MALE" | "1" => Ok(Sex::Male),
            "F" | "FEMALE" | "2" => Ok(Sex::Female),
            "I" | "X" | "OTHER" | "INDETERMINATE" | "9" => Ok(Sex::Other),
            "U" | "N" | "NK" | "NOT KNOWN" | "UNKNOWN" | "0" => Ok(Sex::NotKnown),
            _ => Err(AttributorError::Sex),
        }
    }

    /// One-letter code used in keyed hashes and schemas.
    pub fn code(self) -> char {
        match self {
            Sex::Male => 'M',
            Sex::Female => 'F',
            Sex::Other => 'X',
            Sex::NotKnown => 'U',
        }
    }
}

/// Why an attributor could not be built. Never contains the rejected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttributorError {
    /// No letter could be found in the first name or its initial.
    #[error("first name initial must contain a letter")]
    FirstInitial,
    /// No letter could be found in the surname or its initial.
    #[error("surname initial must contain a letter")]
    SurnameInitial,
    /// The sex code is not one of the accepted codings.
    #[error("sex must be one of M, F, X or U (or NDTMS 1, 2, 9, 0)")]
    Sex,
    /// The date of birth is in the future or implausibly old.
    #[error("date of birth must be a past date after 1900-01-01")]
    DateOfBirth,
}

/// A person's attributor. Built from names (or initials), date of birth and sex; holds only
/// the normalised initials.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attributor {
    first_initial: char,
    surname_initial: char,
    date_of_birth: NaiveDate,
    sex: Sex,
}

/// The initial of a name: the first letter after removing accents, case and punctuation. For
/// "  Ó'Brien-Smith" it is `O`; for "de la Cruz" it is `D`.
pub fn initial(name: &str) -> Option<char> {
    name.nfkd()
        .find(|c| c.is_ascii_alphabetic())
        .map(|c| c.to_ascii_uppercase())
}

impl Attributor {
    /// Build an attributor. `first_name` and `surname` may be full names or initials.
    /// `today` is the date the record is checked on (no clock is read here).
    pub fn new(
        first_name: &str,
        surname: &str,
        date_of_birth: NaiveDate,
        sex: Sex,
        today: NaiveDate,
    ) -> Result<Self, AttributorError> {
        let first_initial = initial(first_name).ok_or(AttributorError::FirstInitial)?;
        let surname_initial = initial(surname).ok_or(AttributorError::SurnameInitial)?;
        let earliest = NaiveDate::from_ymd_opt(1900, 1, 1).ok_or(AttributorError::DateOfBirth)?;
        if date_of_birth < earliest || date_of_birth > today {
            return Err(AttributorError::DateOfBirth);
        }
        Ok(Self {
            first_initial,
            surname_initial,
            date_of_birth,
            sex,
        })
    }

    /// The date of birth.
    pub fn date_of_birth(&self) -> NaiveDate {
        self.date_of_birth
    }

    /// The sex.
    pub fn sex(&self) -> Sex {
        self.sex
    }

    /// The first-name initial.
    pub fn first_initial(&self) -> char {
        self.first_initial
    }

    /// The surname initial.
    pub fn surname_initial(&self) -> char {
        self.surname_initial
    }

    /// Age in whole years on `date`.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        date.years_since(self.date_of_birth).unwrap_or(0)
    }

    /// Canonical text `FS|YYYY-MM-DD|X` used only as keyed-hash input.
    pub fn canonical(&self) -> String {
        format!(
            "{}{}|{}|{}",
            self.first_initial,
            self.surname_initial,
            self.date_of_birth,
            self.sex.code()
        )
    }
}

/// Debug output hides the date of birth.
impl fmt::Debug for Attributor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Attributor(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn initials_are_normalised() {
        assert_eq!(initial("  Ó'Brien-Smith"), Some('O'));
        assert_eq!(initial("smith-jones"), Some('S'));
        assert_eq!(initial("de la Cruz"), Some('D'));
        assert_eq!(initial("Émile"), Some('E'));
        assert_eq!(initial("Ünal"), Some('U'));
        assert_eq!(initial("  '-  "), None);
    }

    #[test]
    fn same_person_written_differently_gives_one_attributor() {
        let today = d(2026, 11, 24);
        let a = Attributor::new("José", "Smith-Jones", d(1990, 2, 28), Sex::Male, today).unwrap();
        let b = Attributor::new(
            "j",
            " smith",
            d(1990, 2, 28),
            Sex::parse("1").unwrap(),
            today,
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.canonical(), "JS|1990-02-28|M");
    }

    #[test]
    fn rejects_bad_parts() {
        let today = d(2026, 11, 24);
        assert_eq!(
            Attributor::new("", "S", d(1990, 1, 1), Sex::Male, today),
            Err(AttributorError::FirstInitial)
        );
        assert_eq!(
            Attributor::new("A", "S", d(2027, 1, 1), Sex::Male, today),
            Err(AttributorError::DateOfBirth)
        );
        assert_eq!(Sex::parse("Q"), Err(AttributorError::Sex));
        assert!(format!(
            "{:?}",
            Attributor::new("A", "S", d(1990, 1, 1), Sex::Male, today)
        )
        .contains("Attributor(..)"));
    }

    #[test]
    fn age_on_birthday_boundaries() {
        let today = d(2026, 11, 24);
        let a = Attributor::new("A", "B", d(2008, 3, 1), Sex::Female, today).unwrap();
        assert_eq!(a.age_on(d(2026, 2, 28)), 17);
        assert_eq!(a.age_on(d(2026, 3, 1)), 18);
    }
}
