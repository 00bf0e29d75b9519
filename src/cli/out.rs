//! Human output: tables that fit 80 columns, and colour only on a terminal.
//!
//! A table's columns are as wide as their widest cell; when a row would pass
//! [`WIDTH`], the widest column is cut (ending in `…`) until it fits; columns
//! marked [`Table::keep`] (ids people copy) are never cut. Colour follows the
//! usual rules: stdout is a terminal, `NO_COLOR` unset, `TERM` not `dumb`.

use std::io::IsTerminal;

/// The width human output keeps within.
pub const WIDTH: usize = 80;

pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    indent: usize,
    /// Columns never cut (ids people copy).
    keep: Vec<usize>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            indent: 0,
            keep: Vec::new(),
        }
    }

    /// Every line starts with `n` spaces (a table under a heading).
    pub fn indent(mut self, n: usize) -> Self {
        self.indent = n;
        self
    }

    /// Column `i` is never cut, even when the table then passes [`WIDTH`].
    pub fn keep(mut self, i: usize) -> Self {
        self.keep.push(i);
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The lines, without colour; the header first.
    pub fn lines(&self) -> Vec<String> {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        // Two spaces between columns; the last one needs no padding.
        let total = |w: &[usize]| self.indent + w.iter().sum::<usize>() + 2 * (w.len() - 1);
        while total(&widths) > WIDTH {
            let (widest, w) = widths
                .iter()
                .enumerate()
                .filter(|(i, _)| !self.keep.contains(i))
                .max_by_key(|(_, w)| **w)
                .map(|(i, w)| (i, *w))
                .unwrap_or((0, 0));
            if w <= 6 {
                break;
            }
            widths[widest] = w - 1;
        }
        let render = |cells: &[String]| {
            let mut line = " ".repeat(self.indent);
            for (i, width) in widths.iter().enumerate() {
                let cell = cells.get(i).map_or("", String::as_str);
                let cut = cut(cell, *width);
                if i + 1 == columns {
                    line.push_str(&cut);
                } else {
                    line.push_str(&format!("{cut:<width$}  "));
                }
            }
            line.trim_end().to_string()
        };
        let mut lines = vec![render(&self.headers)];
        lines.extend(self.rows.iter().map(|r| render(r)));
        lines
    }

    /// Prints the table, its header dimmed on a terminal.
    pub fn print(&self) {
        let lines = self.lines();
        for (i, line) in lines.iter().enumerate() {
            if i == 0 {
                println!("{}", paint(line, Style::Dim));
            } else {
                println!("{line}");
            }
        }
    }
}

/// `s` in at most `width` characters, ending in `…` when cut.
pub fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[derive(Clone, Copy)]
pub enum Style {
    Bold,
    Dim,
    Green,
    Yellow,
    Red,
}

/// Whether stdout takes colour.
pub fn colour() -> bool {
    std::io::stdout().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        && std::env::var("TERM").map_or(true, |t| t != "dumb")
}

pub fn paint(text: &str, style: Style) -> String {
    if !colour() {
        return text.to_string();
    }
    let code = match style {
        Style::Bold => "1",
        Style::Dim => "2",
        Style::Green => "32",
        Style::Yellow => "33",
        Style::Red => "31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A task state's colour: running green, ending yellow, failed red.
pub fn state_style(state: &str) -> Style {
    match state {
        "TASK_RUNNING" | "TASK_FINISHED" => Style::Green,
        "TASK_FAILED" | "TASK_ERROR" | "TASK_LOST" | "TASK_DROPPED" | "TASK_GONE" => Style::Red,
        _ => Style::Yellow,
    }
}

/// Prints JSON for `--json`, pretty.
pub fn json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A number of MB as people read it: `512M`, `7.6G`.
pub fn mb(mb: f64) -> String {
    if mb >= 1024.0 {
        format!("{:.1}G", mb / 1024.0)
    } else {
        format!("{mb:.0}M")
    }
}

/// CPUs without trailing zeros: `0.1`, `2`.
pub fn cpus(c: f64) -> String {
    let s = format!("{c:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_cells_are_cut_to_fit() {
        let mut t = Table::new(&["ID", "NAME", "STATE"]);
        t.row(vec!["1".into(), "x".repeat(200), "TASK_RUNNING".into()]);
        t.row(vec!["2".into(), "short".into(), "TASK_FAILED".into()]);
        let lines = t.lines();
        assert!(
            lines.iter().all(|l| l.chars().count() <= WIDTH),
            "{lines:#?}"
        );
        assert!(lines[1].contains('…') && lines[1].ends_with("TASK_RUNNING"));
        assert_eq!(lines[2], format!("2   {:<62}  TASK_FAILED", "short"));
    }

    #[test]
    fn numbers_read_short() {
        assert_eq!(mb(512.0), "512M");
        assert_eq!(mb(7782.4), "7.6G");
        assert_eq!(cpus(0.10), "0.1");
        assert_eq!(cpus(2.0), "2");
    }
}
