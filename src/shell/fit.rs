//! Tables laid out for the terminal they are printed on. On a terminal a row is one line: when
//! the table is wider than the terminal, long values are cut short with `…` and the least
//! important columns are left out, instead of wrapping cells over several lines. Each column
//! says how important it is and how far its values may be shortened. Output that is not a
//! terminal (pipes, `--json`) keeps every column and every character. This module only lays
//! out text; what goes in a cell is the caller's business.

use super::output::Style;
use comfy_table::{presets, ContentArrangement, Table};
use unicode_width::UnicodeWidthStr;

/// One column: its heading (lines split on `\n`), how important it is (0 is never left out,
/// higher is left out sooner) and, if its values may be shortened, to how few characters.
#[derive(Debug, Clone)]
pub struct Column {
    pub header: String,
    pub rank: u8,
    pub min: Option<usize>,
}

impl Column {
    pub fn new(header: impl Into<String>, rank: u8) -> Self {
        Column { header: header.into(), rank, min: None }
    }

    /// Values may be cut to `min` characters (the last one `…`) before columns are left out.
    pub fn shrink(mut self, min: usize) -> Self {
        self.min = Some(min.max(2));
        self
    }
}

/// Columns for a plain list of headings: the first is never left out, later ones go first, and
/// a long value may be cut to 12 characters.
pub fn by_position(header: &[&str]) -> Vec<Column> {
    header.iter().enumerate().map(|(i, h)| Column::new(*h, i.min(255) as u8).shrink(12)).collect()
}

/// The width tables are fitted to: `COLUMNS` when set (a person's explicit choice), else the
/// terminal's, else none.
pub fn terminal_width() -> Option<usize> {
    if let Some(c) = std::env::var("COLUMNS").ok().and_then(|s| s.trim().parse::<usize>().ok()).filter(|&c| c > 0) {
        return Some(c);
    }
    // SAFETY: TIOCGWINSZ only writes into the winsize we pass.
    let ws = unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        (libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) == 0).then_some(ws)
    };
    ws.map(|w| w.ws_col as usize).filter(|&c| c > 0)
}

/// The table as text: on a terminal, fitted to its width and drawn with boxes; otherwise
/// aligned plain columns with everything in them.
pub fn render(style: Style, columns: &[Column], rows: Vec<Vec<String>>) -> String {
    render_within(style, columns, rows, terminal_width())
}

/// As `render`, for a given width (`None`: as wide as the content).
pub fn render_within(style: Style, columns: &[Column], rows: Vec<Vec<String>>, width: Option<usize>) -> String {
    let mut t = Table::new();
    let (columns, rows) = match (style, width) {
        (Style::Terminal, Some(w)) => {
            let plan = plan(columns, &rows, w);
            // The plan decides every width; a table still too wide (the columns that never go
            // do not fit) runs past the edge rather than wrapping its rows.
            t.load_preset(presets::UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Disabled);
            let header = plan.iter().map(|&(i, w)| Column { header: cut(&columns[i].header, w), ..columns[i].clone() });
            let header: Vec<Column> = header.collect();
            let rows = rows
                .iter()
                .map(|r| plan.iter().map(|&(i, w)| cut(r.get(i).map_or("", String::as_str), w)).collect())
                .collect();
            (header, rows)
        }
        (Style::Terminal, None) => {
            t.load_preset(presets::UTF8_FULL_CONDENSED);
            (columns.to_vec(), rows)
        }
        (Style::Plain, _) => {
            // One header line, for programs that read the first line as the column names.
            t.load_preset(presets::NOTHING);
            let one_line = |c: &Column| Column { header: c.header.replace('\n', " "), ..c.clone() };
            (columns.iter().map(one_line).collect(), rows)
        }
    };
    t.set_header(columns.iter().map(|c| c.header.as_str()));
    for r in rows {
        t.add_row(r);
    }
    t.lines().map(|l| l.trim_end().to_string()).collect::<Vec<_>>().join("\n")
}

/// The widest line of a cell.
fn width_of(s: &str) -> usize {
    s.lines().map(UnicodeWidthStr::width).max().unwrap_or(0)
}

/// Each line of `s` cut to `w` columns, ending in `…` where something was cut.
fn cut(s: &str, w: usize) -> String {
    let line = |l: &str| {
        if l.width() <= w {
            return l.to_string();
        }
        let mut out = String::new();
        for ch in l.chars() {
            if out.width() + unicode_width::UnicodeWidthChar::width(ch).unwrap_or(0) + 1 > w {
                break;
            }
            out.push(ch);
        }
        out.push('…');
        out
    };
    s.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

/// Which columns to show and how wide, in their order: `(index, width)`. Long values are cut
/// first, least important column first, since a cut value still says most of what it said; if
/// that is not enough, the least important columns are left out; then room left over goes back
/// to what was cut, most important first.
fn plan(columns: &[Column], rows: &[Vec<String>], width: usize) -> Vec<(usize, usize)> {
    let natural: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| rows.iter().map(|r| r.get(i).map_or(0, |s| width_of(s))).fold(width_of(&c.header), usize::max))
        .collect();
    let mut shown: Vec<Option<usize>> = natural.iter().map(|&w| Some(w)).collect();
    // A box border before each column and one at the end, and a space either side of a value.
    let total = |shown: &[Option<usize>]| {
        let kept: Vec<usize> = shown.iter().flatten().copied().collect();
        kept.iter().sum::<usize>() + 3 * kept.len() + 1
    };
    let mut order: Vec<usize> = (0..columns.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(columns[i].rank), std::cmp::Reverse(i)));
    for &i in &order {
        let over = total(&shown).saturating_sub(width);
        if over == 0 {
            break;
        }
        if let Some(min) = columns[i].min {
            shown[i] = Some(natural[i].saturating_sub(over).max(min).min(natural[i]));
        }
    }
    for &i in &order {
        if total(&shown) <= width {
            break;
        }
        if columns[i].rank > 0 {
            shown[i] = None;
        }
    }
    for &i in order.iter().rev() {
        let spare = width.saturating_sub(total(&shown));
        if let Some(w) = shown[i] {
            shown[i] = Some(natural[i].min(w + spare));
        }
    }
    shown.iter().enumerate().filter_map(|(i, w)| w.map(|w| (i, w))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(r: &[&[&str]]) -> Vec<Vec<String>> {
        r.iter().map(|r| r.iter().map(|s| s.to_string()).collect()).collect()
    }

    fn lines(s: &str) -> Vec<&str> {
        s.lines().collect()
    }

    #[test]
    fn a_table_that_fits_is_left_whole() {
        let cols = [Column::new("node", 0), Column::new("role", 1)];
        let out = render_within(Style::Terminal, &cols, rows(&[&["n1", "leader"]]), Some(80));
        assert!(out.contains("│ n1   ┆ leader │"), "{out}");
    }

    #[test]
    fn the_least_important_columns_go_first_and_rows_stay_one_line() {
        let cols = [
            Column::new("node", 0),
            Column::new("address", 9),
            Column::new("role", 1),
            Column::new("uptime", 5),
            Column::new("term", 2),
        ];
        let data = rows(&[&["n1", "127.0.0.1:43632", "follower", "12.5 s", "3"]]);
        // node, role, term: 4+8+4 plus borders = 26; uptime needs 9 more, address 18 more.
        let out = render_within(Style::Terminal, &cols, data.clone(), Some(30));
        let l = lines(&out);
        assert_eq!(l[1], "│ node ┆ role     ┆ term │", "{out}");
        assert_eq!(l.len(), 5, "one line per row, plus header and borders: {out}");
        let out = render_within(Style::Terminal, &cols, data.clone(), Some(40));
        assert_eq!(lines(&out)[1], "│ node ┆ role     ┆ uptime ┆ term │", "{out}");
        let out = render_within(Style::Terminal, &cols, data, Some(200));
        assert!(out.contains("127.0.0.1:43632"), "{out}");
    }

    #[test]
    fn long_values_are_cut_before_columns_are_left_out() {
        let cols = [Column::new("node", 0), Column::new("root", 1).shrink(8), Column::new("keys", 2)];
        let root = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let out = render_within(Style::Terminal, &cols, rows(&[&["n1", root, "12"]]), Some(40));
        for l in lines(&out) {
            assert!(l.width() <= 40, "{l:?} is wider than 40");
        }
        let row = lines(&out)[3];
        assert!(row.contains("9f86d0") && row.contains('…') && row.contains("12"), "{out}");
        // Room freed is given back: the root is cut no more than it must be.
        assert_eq!(row.width(), 40, "{out}");
    }

    #[test]
    fn a_column_that_never_goes_is_kept_however_narrow() {
        let cols = [Column::new("node", 0), Column::new("what", 1)];
        let out = render_within(Style::Terminal, &cols, rows(&[&["n1", "a long description"]]), Some(5));
        assert!(out.contains("n1"), "{out}");
        assert!(!out.contains("description"), "{out}");
    }

    #[test]
    fn plain_output_keeps_everything_on_one_header_line() {
        let cols = [Column::new("node", 0), Column::new("address", 9), Column::new("rtt ms\np50/p99", 9)];
        let out = render_within(Style::Plain, &cols, rows(&[&["n1", "127.0.0.1:43632", "0.21/0.98"]]), Some(10));
        assert_eq!(lines(&out)[0].split_whitespace().collect::<Vec<_>>(), ["node", "address", "rtt", "ms", "p50/p99"]);
        assert!(lines(&out)[1].contains("127.0.0.1:43632  0.21/0.98"), "{out}");
    }

    #[test]
    fn headings_on_two_lines_count_their_wider_line() {
        let cols = [Column::new("node", 0), Column::new("request ms\np50/p99", 1)];
        let out = render_within(Style::Terminal, &cols, rows(&[&["n1", "0.29/0.37"]]), Some(24));
        assert_eq!(lines(&out)[1], "│ node ┆ request ms │", "{out}");
        assert_eq!(lines(&out)[2], "│      ┆ p50/p99    │", "{out}");
    }

    #[test]
    fn cut_marks_what_it_cut() {
        assert_eq!(cut("follower", 8), "follower");
        assert_eq!(cut("candidate", 8), "candida…");
        assert_eq!(cut("leader ★", 8), "leader ★");
    }
}
