//! Public reference data, compiled in (`data/`, provenance in its README): the English
//! upper-tier local authorities with their names and regions (ONS codes in force from May
//! 2025), and the prisons of England and Wales with their NOMIS codes and names. Used wherever
//! a person reads an area or a prison: the reporter's report and the worklist's pages. Codes
//! not in the lists have no name; callers show the code.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::OnceLock;

/// `utla_code,utla_name,region_code,region_name`: the 153 upper-tier local authorities.
pub const UTLA_REGIONS: &str = include_str!("../data/england-upper-tier-local-authorities.csv");

/// `prison_code,prison_name,country`: the prisons of England and Wales.
pub const PRISONS: &str = include_str!("../data/prisons-england-wales.csv");

/// Names by code.
#[derive(Debug, Default)]
pub struct Names {
    areas: HashMap<String, String>,
    regions: HashMap<String, String>,
    prisons: HashMap<String, String>,
    area_codes: Vec<String>,
    english_prisons: Vec<String>,
}

/// Columns `code` and `name` of a CSV with a header row, as code to name. The shipped files
/// are checked by this crate's tests, so a row that does not read is left out rather than
/// failing a service at start.
fn pairs(text: &str, code: usize, name: usize) -> HashMap<String, String> {
    rows(text)
        .filter_map(|r| Some((r.get(code)?.to_owned(), r.get(name)?.to_owned())))
        .collect()
}

fn rows(text: &str) -> impl Iterator<Item = csv::StringRecord> + '_ {
    csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes())
        .into_records()
        .filter_map(Result::ok)
}

impl Names {
    /// The shipped names, parsed once.
    pub fn shipped() -> &'static Names {
        static NAMES: OnceLock<Names> = OnceLock::new();
        NAMES.get_or_init(|| Names {
            areas: pairs(UTLA_REGIONS, 0, 1),
            regions: pairs(UTLA_REGIONS, 2, 3),
            prisons: pairs(PRISONS, 0, 1),
            area_codes: rows(UTLA_REGIONS)
                .filter_map(|r| Some(r.get(0)?.to_owned()))
                .collect(),
            english_prisons: rows(PRISONS)
                .filter(|r| r.get(2) == Some("England"))
                .filter_map(|r| Some(r.get(0)?.to_owned()))
                .collect(),
        })
    }

    /// The upper-tier local authorities' codes, in the shipped file's order.
    pub fn area_codes(&self) -> &[String] {
        &self.area_codes
    }

    /// The codes of the prisons in England, in the shipped file's order.
    pub fn english_prisons(&self) -> &[String] {
        &self.english_prisons
    }

    /// The local authority's name (`E06000001` is Hartlepool).
    pub fn area(&self, code: &str) -> Option<&str> {
        self.areas.get(code).map(String::as_str)
    }

    /// The region's name (`E12000008` is South East).
    pub fn region(&self, code: &str) -> Option<&str> {
        self.regions.get(code).map(String::as_str)
    }

    /// The prison's name (`MDI` is Moorland (HMP & YOI)).
    pub fn prison(&self, code: &str) -> Option<&str> {
        self.prisons.get(code).map(String::as_str)
    }

    /// `Name (CODE)`, or the code alone when it has no name.
    pub fn area_with_code(&self, code: &str) -> String {
        self.area(code)
            .map_or_else(|| code.to_owned(), |n| format!("{n} ({code})"))
    }

    /// `Name (CODE)`, or the code alone when it has no name.
    pub fn prison_with_code(&self, code: &str) -> String {
        self.prison(code)
            .map_or_else(|| code.to_owned(), |n| format!("{n} ({code})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_row_reads() {
        let names = Names::shipped();
        assert_eq!(names.areas.len(), 153);
        assert_eq!(names.prisons.len(), PRISONS.lines().count() - 1);
        assert_eq!(names.area("E06000001"), Some("Hartlepool"));
        assert_eq!(names.area("E10000025"), Some("Oxfordshire"));
        assert_eq!(names.regions.len(), 9);
        assert_eq!(names.region("E12000008"), Some("South East"));
        assert_eq!(names.prison_with_code("MDI"), "Moorland (HMP & YOI) (MDI)");
        assert_eq!(names.prison_with_code("P011"), "P011");
    }
}
