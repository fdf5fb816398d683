//! Disclosure control for figures leaving the system: counts 1 to 4 are suppressed
//! (primary), then further cells (secondary) so that no suppressed count can be worked out
//! from its row or column total.
//!
//! A table is seen with its margins as an extended grid: each row ends with its total, the
//! last row holds the column totals and the grand total. Every row and column of that grid is
//! a line whose entries add up; a line with exactly one suppressed entry gives it away. The
//! rule enforced is therefore: **every line has no suppressed entry or at least two**.
//! Several tables of one shape (e.g. engaged and not engaged) share one mask, so a cell hidden
//! in one is hidden in all and rates derived from them are hidden too. Zero is published: it is
//! not small in the sense of identifying a person. This protects against recovery from a single
//! line; it does not solve the full linear-programming attack across many lines, which the
//! published tables here (one breakdown and its totals) do not need.

use serde::{Deserialize, Serialize};

/// The largest count that is suppressed.
pub const SMALLEST_PUBLISHED: u64 = 5;

/// A rectangular table of counts without margins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountTable {
    rows: usize,
    cols: usize,
    cells: Vec<u64>,
}

impl CountTable {
    /// A table of `rows` × `cols` from row-major cells; `None` if the sizes disagree.
    pub fn new(rows: usize, cols: usize, cells: Vec<u64>) -> Option<Self> {
        (rows * cols == cells.len()).then_some(Self { rows, cols, cells })
    }

    /// Rows and columns.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// An entry of the extended grid: cells, row totals (column `cols`), column totals (row
    /// `rows`) and the grand total.
    pub fn entry(&self, row: usize, col: usize) -> u64 {
        let rows = if row == self.rows {
            0..self.rows
        } else {
            row..row + 1
        };
        let cols = if col == self.cols {
            0..self.cols
        } else {
            col..col + 1
        };
        rows.flat_map(|r| cols.clone().map(move |c| (r, c)))
            .map(|(r, c)| self.cells[r * self.cols + c])
            .sum()
    }
}

/// Which entries of the extended grid (`(rows + 1) × (cols + 1)`) are suppressed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suppression {
    rows: usize,
    cols: usize,
    mask: Vec<bool>,
}

impl Suppression {
    /// Whether the entry is suppressed (row `rows` and column `cols` are the margins).
    pub fn is_suppressed(&self, row: usize, col: usize) -> bool {
        self.mask[row * (self.cols + 1) + col]
    }

    /// The entry as published: `None` where suppressed.
    pub fn publish(&self, table: &CountTable, row: usize, col: usize) -> Option<u64> {
        (!self.is_suppressed(row, col)).then(|| table.entry(row, col))
    }

    /// The lines of the extended grid, as lists of (row, col).
    pub fn lines(&self) -> Vec<Vec<(usize, usize)>> {
        let (r, c) = (self.rows, self.cols);
        let rows = (0..=r).map(|i| (0..=c).map(|j| (i, j)).collect());
        let cols = (0..=c).map(|j| (0..=r).map(|i| (i, j)).collect());
        rows.chain(cols).collect()
    }
}

fn is_small(n: u64) -> bool {
    (1..SMALLEST_PUBLISHED).contains(&n)
}

/// Suppress small counts in tables of one shape, and enough others that none can be recovered
/// from a row or column total. Returns `None` if the tables differ in shape or none is given.
pub fn suppress(tables: &[&CountTable]) -> Option<Suppression> {
    suppress_given(tables, |_, _| None)
}

/// As [`suppress`], with some entries of the extended grid decided elsewhere: where `given`
/// answers `Some(hidden)` the entry is published or withheld as said and never chosen as a
/// partner. For a table whose margins are published by another table (the local authorities of
/// a region, whose column totals are the region's own figures), the margins are given.
pub fn suppress_given(
    tables: &[&CountTable],
    given: impl Fn(usize, usize) -> Option<bool>,
) -> Option<Suppression> {
    let (rows, cols) = tables.first()?.shape();
    if tables.iter().any(|t| t.shape() != (rows, cols)) {
        return None;
    }
    let width = cols + 1;
    let mut s = Suppression {
        rows,
        cols,
        mask: vec![false; (rows + 1) * width],
    };
    for i in 0..=rows {
        for j in 0..=cols {
            s.mask[i * width + j] =
                given(i, j).unwrap_or_else(|| tables.iter().any(|t| is_small(t.entry(i, j))));
        }
    }
    let lines = s.lines();
    loop {
        let mut changed = false;
        for line in &lines {
            let masked = line.iter().filter(|(i, j)| s.is_suppressed(*i, *j)).count();
            if masked != 1 {
                continue;
            }
            // Hide the least informative other entry: an inner cell before a total, a non-zero
            // count before a zero, the smallest first.
            let pick = line
                .iter()
                .filter(|(i, j)| !s.is_suppressed(*i, *j) && given(*i, *j).is_none())
                .min_by_key(|(i, j)| {
                    let total: u64 = tables.iter().map(|t| t.entry(*i, *j)).sum();
                    (*i == rows || *j == cols, total == 0, total, *i, *j)
                });
            if let Some((i, j)) = pick {
                s.mask[i * width + j] = true;
                changed = true;
            }
        }
        if !changed {
            return Some(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn small_cell_gets_a_partner_in_its_row_and_column() {
        // 2 x 2: one cell of 3 must bring down its row and column partners and the cell
        // diagonal to them, or the margins would give it away.
        let t = CountTable::new(2, 2, vec![3, 20, 30, 40]).unwrap();
        let s = suppress(&[&t]).unwrap();
        assert!(s.is_suppressed(0, 0));
        assert!(s.is_suppressed(0, 1) && s.is_suppressed(1, 0) && s.is_suppressed(1, 1));
        assert!(!s.is_suppressed(2, 2));
        assert_eq!(s.publish(&t, 2, 2), Some(93));
    }

    #[test]
    fn nothing_small_nothing_hidden() {
        let t = CountTable::new(2, 3, vec![0, 5, 9, 12, 0, 7]).unwrap();
        let s = suppress(&[&t]).unwrap();
        assert!(s
            .lines()
            .iter()
            .flatten()
            .all(|(i, j)| !s.is_suppressed(*i, *j)));
    }

    #[test]
    fn shared_mask_across_tables() {
        let engaged = CountTable::new(1, 3, vec![10, 2, 30]).unwrap();
        let not_engaged = CountTable::new(1, 3, vec![1, 10, 10]).unwrap();
        let s = suppress(&[&engaged, &not_engaged]).unwrap();
        assert!(s.is_suppressed(0, 0) && s.is_suppressed(0, 1));
        assert!(suppress(&[&engaged, &CountTable::new(3, 1, vec![1, 2, 3]).unwrap()]).is_none());
    }

    fn table() -> impl Strategy<Value = CountTable> {
        (1usize..6, 1usize..6).prop_flat_map(|(r, c)| {
            proptest::collection::vec(prop_oneof![0u64..6, 0u64..40], r * c)
                .prop_map(move |cells| CountTable::new(r, c, cells).unwrap())
        })
    }

    proptest! {
        #[test]
        fn no_suppressed_entry_is_recoverable_from_a_line(t in table()) {
            let s = suppress(&[&t]).unwrap();
            let (r, c) = t.shape();
            for i in 0..=r {
                for j in 0..=c {
                    if is_small(t.entry(i, j)) {
                        prop_assert!(s.is_suppressed(i, j));
                    }
                }
            }
            for line in s.lines() {
                let hidden: Vec<_> = line.iter().filter(|(i, j)| s.is_suppressed(*i, *j)).collect();
                prop_assert!(hidden.len() != 1, "line {:?} hides exactly one entry", line);
                // What a reader can recover: the sum of the hidden entries, never one of them
                // alone, because at least two share the line.
                let published: u64 = line.iter().filter_map(|(i, j)| s.publish(&t, *i, *j)).sum();
                let _ = published;
            }
        }
    }
}
