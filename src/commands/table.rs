//! Column-aligned text tables, the one way the commands print rows for a
//! terminal (`plan`, `oath list`, `keyring list`).
//!
//! Every cell goes through [`printable`](super::printable): cells come from
//! files, the card and the keyring, and a control character in one must not
//! move the cursor or hide a line. Columns are as wide as their widest cell
//! (in characters), two spaces apart; the last column is not padded, and no
//! line ends in spaces.
//!
//! ```ignore
//! let mut table = Table::new(["SECTION", "STATE"]).indent("  ");
//! table.row(["prod", "fresh"]);
//! out.write_all(table.render().as_bytes())?;
//! ```

/// A header and rows of cells; rows shorter than the header leave the
/// remaining columns empty.
pub(crate) struct Table {
    indent: &'static str,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new<const N: usize>(header: [&str; N]) -> Table {
        Table {
            indent: "",
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Starts every line with `indent` (a table under a heading line).
    pub(crate) fn indent(mut self, indent: &'static str) -> Table {
        self.indent = indent;
        self
    }

    pub(crate) fn row<S: AsRef<str>>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| crate::text::printable(c.as_ref()).into_owned())
                .collect(),
        );
    }

    /// The table, one line per row after the header, each ending in `\n`.
    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::from(self.indent);
            for (cell, width) in row.iter().zip(&widths) {
                line.push_str(&format!("{cell:<width$}  "));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_cell_and_lines_end_without_spaces() {
        let mut table = Table::new(["NAME", "STATE", "NOTE"]);
        table.row(["a-long-section", "fresh", ""]);
        table.row(["b", "refresh", "due"]);
        table.row(["ü", "x"]);
        assert_eq!(
            table.render(),
            "NAME            STATE    NOTE\n\
             a-long-section  fresh\n\
             b               refresh  due\n\
             ü               x\n"
        );
    }

    #[test]
    fn an_indented_table_escapes_control_characters() {
        let mut table = Table::new(["SECTION", "ID"]).indent("  ");
        table.row(["evil\u{1b}[2J\nline", "AKIA…"]);
        assert_eq!(
            table.render(),
            "  SECTION              ID\n  evil\\u{1b}[2J\\nline  AKIA…\n"
        );
    }

    #[test]
    fn a_table_without_rows_is_its_header() {
        assert_eq!(Table::new(["A", "B"]).render(), "A  B\n");
    }
}
