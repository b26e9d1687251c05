//! Rows written in ClickHouse's `TabSeparated` format, for the tables a writer fills by the
//! million (events, retry keys). ClickHouse parses it about a third faster than `JSONEachRow`
//! (200,000 events on 18.16: 0.58 s against 0.89 s), and the writer shares its two cores with
//! the server. Every version reads it alike, and it is text: the chdb front passes it through.
//!
//! Escaping: a field is a string with `\` `\t` `\n` `\r` `\0` escaped; an array is written as a
//! literal (`['a','b']`, `[1,nan]`) whose strings are quoted and escaped so that no tab or line
//! break is left in the field.

use std::fmt::Write as _;

use crate::http::float_literal;

/// One insert's body: rows of fields, each row ended by [`Tsv::end_row`].
#[derive(Default)]
pub struct Tsv {
    text: String,
    in_row: bool,
}

/// A row that writes its own fields, in the order of the column list its insert names.
pub trait TsvRow {
    fn write(&self, tsv: &mut Tsv);
}

impl Tsv {
    pub fn with_capacity(bytes: usize) -> Self {
        Tsv { text: String::with_capacity(bytes), in_row: false }
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.text.into_bytes()
    }

    fn next_field(&mut self) {
        if self.in_row {
            self.text.push('\t');
        }
        self.in_row = true;
    }

    pub fn end_row(&mut self) {
        self.text.push('\n');
        self.in_row = false;
    }

    pub fn string(&mut self, s: &str) {
        self.next_field();
        escape_into(&mut self.text, s, false);
    }

    /// An integer (or anything whose `Display` ClickHouse reads as the column's type).
    pub fn number(&mut self, n: impl std::fmt::Display) {
        self.next_field();
        let _ = write!(self.text, "{n}");
    }

    pub fn strings(&mut self, items: &[String]) {
        self.next_field();
        self.text.push('[');
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.text.push('\'');
            escape_into(&mut self.text, s, true);
            self.text.push('\'');
        }
        self.text.push(']');
    }

    /// Float64s: `nan` and `inf` as ClickHouse reads them.
    pub fn floats(&mut self, items: &[f64]) {
        self.list(items.iter().map(|n| float_literal(*n)));
    }

    pub fn small_numbers(&mut self, items: &[u8]) {
        self.list(items.iter());
    }

    fn list<T: std::fmt::Display>(&mut self, items: impl Iterator<Item = T>) {
        self.next_field();
        self.text.push('[');
        for (i, n) in items.enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{n}");
        }
        self.text.push(']');
    }
}

/// Append `s` escaped: always the characters that would end a field or a row; inside a quoted
/// array element also the quote.
fn escape_into(out: &mut String, s: &str, quoted: bool) {
    let needs = |c: char| matches!(c, '\\' | '\t' | '\n' | '\r' | '\0') || (quoted && c == '\'');
    let mut rest = s;
    while let Some(at) = rest.find(needs) {
        out.push_str(&rest[..at]);
        let c = rest[at..].chars().next().unwrap_or('\0');
        out.push_str(match c {
            '\\' => "\\\\",
            '\t' => "\\t",
            '\n' => "\\n",
            '\r' => "\\r",
            '\'' => "\\'",
            _ => "\\0",
        });
        rest = &rest[at + c.len_utf8()..];
    }
    out.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_arrays_escape_what_would_end_them() {
        let mut tsv = Tsv::default();
        tsv.number(7u32);
        tsv.string("a\tb\nc\\d'e\r\0✓");
        tsv.strings(&["it's".to_string(), "x\ty".to_string(), String::new()]);
        tsv.floats(&[1.5, f64::NAN, f64::INFINITY, -0.25]);
        tsv.small_numbers(&[0, 3]);
        tsv.end_row();
        tsv.strings(&[]);
        tsv.end_row();
        let text = String::from_utf8(tsv.into_bytes()).expect("utf-8");
        assert_eq!(text, "7\ta\\tb\\nc\\\\d'e\\r\\0✓\t['it\\'s','x\\ty','']\t[1.5,nan,inf,-0.25]\t[0,3]\n[]\n");
    }
}
