//! Aligned text columns for `--output table`.

/// Rows of cells, rendered with each column as wide as its widest cell.
#[derive(Debug, Default)]
pub(crate) struct Table {
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
}

/// Space between columns.
const GAP: &str = "  ";

impl Table {
    /// A table whose first line names the columns.
    pub(crate) fn new(header: &[&str]) -> Table {
        Table { header: Some(header.iter().map(|h| h.to_string()).collect()), rows: Vec::new() }
    }

    /// A table without a header line (field/value listings).
    pub(crate) fn plain() -> Table {
        Table::default()
    }

    /// Adds a row; missing cells render empty, extra cells are kept.
    pub(crate) fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Table {
        self.rows.push(cells.into_iter().map(Into::into).collect());
        self
    }

    /// The text, one line per row, each ending in a newline; no trailing
    /// spaces, so the output diffs and greps cleanly.
    pub(crate) fn render(&self) -> String {
        let lines: Vec<&Vec<String>> = self.header.iter().chain(&self.rows).collect();
        let columns = lines.iter().map(|l| l.len()).max().unwrap_or(0);
        let mut widths = vec![0; columns];
        for line in &lines {
            for (w, cell) in widths.iter_mut().zip(line.iter()) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (i, w) in widths.iter().enumerate() {
                let cell = line.get(i).map_or("", String::as_str);
                if i > 0 {
                    text.push_str(GAP);
                }
                text.push_str(cell);
                text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut t = Table::new(&["ID", "NAME", "STATE"]);
        t.row(["p1", "prod-1", "alive"]).row(["p22222", "-", "suspect"]);
        assert_eq!(t.render(), "ID      NAME    STATE\np1      prod-1  alive\np22222  -       suspect\n");
    }

    #[test]
    fn ragged_rows_and_wide_characters_render() {
        let mut t = Table::plain();
        t.row(["a", "é"]).row(["long key"]).row(["b", "x", "extra"]);
        assert_eq!(t.render(), "a         é\nlong key\nb         x  extra\n");
        assert_eq!(Table::new(&["A"]).render(), "A\n");
        assert_eq!(Table::plain().render(), "");
    }
}
