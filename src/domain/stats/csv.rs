//! A result as CSV, for `Accept: text/csv` and the dashboard's exports. Values that came from websites
//! are written so that a spreadsheet shows them as text: a cell starting with `= + - @` (or a tab or
//! carriage return) gets a leading apostrophe, and every cell is quoted as RFC 4180 says.

use super::dims::Dimension;
use super::query::Metric;
use super::results::Value;

/// One cell, neutralised and quoted (for every CSV Assent writes).
pub fn cell(text: &str) -> String {
    let guarded = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) || guarded != text {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// The header row (dimension names, then metric names) and one line per row.
pub fn table(
    dimensions: &[Dimension],
    metrics: &[Metric],
    rows: &[(Vec<String>, Vec<Value>)],
) -> String {
    let mut out = String::new();
    let header: Vec<String> = dimensions
        .iter()
        .map(|d| cell(&d.name()))
        .chain(metrics.iter().map(|m| m.name().to_string()))
        .collect();
    out.push_str(&header.join(","));
    out.push_str("\r\n");
    for (dims, values) in rows {
        let line: Vec<String> = dims
            .iter()
            .map(|d| cell(d))
            .chain(values.iter().map(|v| v.to_text()))
            .collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A header line and rows of text cells, each through [`cell`].
pub fn rows(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| cell(h)).collect();
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for row in rows {
        let line: Vec<String> = row.iter().map(|c| cell(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_text_and_commas_quoted() {
        let rows = vec![
            (vec!["=HYPERLINK(\"x\")".to_string()], vec![Value::Int(3)]),
            (vec!["/a,b".to_string()], vec![Value::Null]),
            (vec!["-1".to_string()], vec![Value::Float(2.5)]),
        ];
        let csv = table(&[Dimension::Page], &[Metric::Visitors], &rows);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "event:page,visitors");
        assert_eq!(lines[1], "\"'=HYPERLINK(\"\"x\"\")\",3");
        assert_eq!(lines[2], "\"/a,b\",");
        assert_eq!(lines[3], "\"'-1\",2.5");
    }
}
