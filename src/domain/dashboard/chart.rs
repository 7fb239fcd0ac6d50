//! Charts drawn on the server as SVG (readable without JavaScript: each bucket's values are in a `<title>`
//! shown on hover), and how figures are written. Every text that reaches the SVG goes through [`esc`].

use std::fmt::Write;

/// Escapes text for XML/HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A figure as people read it: counts with thousands separators, rates with `%`, durations in minutes
/// and seconds; "–" when unknown.
pub fn format_metric(metric: &str, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "–".into();
    };
    match metric {
        "bounce_rate" | "percentage" => format!("{}%", v.round() as i64),
        "visit_duration" | "time_on_page" => {
            let s = v.round() as i64;
            if s >= 3600 {
                format!("{}h {}m", s / 3600, s % 3600 / 60)
            } else if s >= 60 {
                format!("{}m {}s", s / 60, s % 60)
            } else {
                format!("{s}s")
            }
        }
        "views_per_visit" => format!("{:.2}", v),
        _ => thousands(v.round() as i64),
    }
}

fn thousands(n: i64) -> String {
    let digits = n.abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A bucket label as a chart shows it (`2026-10-05` -> `5 Oct`; hours -> `14:00`; months -> `Oct 2026`).
pub fn short_label(label: &str, bucket: &str) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = label
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
    let day = label.get(8..10).and_then(|d| d.parse::<u32>().ok());
    match (bucket, month, day) {
        ("hour", _, _) => label.get(11..16).unwrap_or(label).to_string(),
        ("month", Some(m), _) => format!("{m} {}", label.get(0..4).unwrap_or("")),
        (_, Some(m), Some(d)) => format!("{d} {m}"),
        _ => label.to_string(),
    }
}

/// A small line of values (the list of sites), scaled to its own maximum.
pub fn sparkline(values: &[f64], label: &str) -> String {
    let (w, h) = (120.0, 32.0);
    let max = values.iter().cloned().fold(0.0, f64::max).max(1.0);
    let step = w / (values.len().max(2) - 1) as f64;
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            format!(
                "{:.1},{:.1}",
                i as f64 * step,
                h - 2.0 - v / max * (h - 4.0)
            )
        })
        .collect();
    format!(
        "<svg class=\"spark\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\"><title>{}</title><polyline points=\"{}\"/></svg>",
        esc(label),
        esc(label),
        points.join(" ")
    )
}

/// The top of the chart's scale: four gridline steps of a round size (whole numbers for counts) that
/// reach `max`.
fn nice_ceiling(max: f64, whole: bool) -> f64 {
    if max <= 0.0 {
        return 4.0;
    }
    let raw = max / 4.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        let step = m * magnitude;
        if whole && (step - step.round()).abs() > 1e-9 {
            continue;
        }
        if step * 4.0 >= max {
            return step * 4.0;
        }
    }
    40.0 * magnitude
}

/// One series of the time chart.
pub struct Series<'a> {
    pub labels: &'a [String],
    /// None: a bucket still to come (not drawn).
    pub values: &'a [Option<f64>],
}

/// The time chart: the period's line, the comparison's dashed beside it, gridlines with their values,
/// a few bucket labels, and per bucket a hover target whose `<title>` gives both values.
pub fn timeseries(
    metric: &str,
    metric_label: &str,
    bucket: &str,
    now: &Series,
    before: Option<&Series>,
) -> String {
    let (w, h) = (800.0, 260.0);
    let (left, right, top, bottom) = (56.0, 12.0, 12.0, 30.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let n = now.values.len().max(1);
    let all = now
        .values
        .iter()
        .chain(before.map(|b| b.values).unwrap_or(&[]))
        .flatten()
        .cloned();
    let ceiling = nice_ceiling(all.fold(0.0, f64::max), metric != "views_per_visit");
    let step = pw / (n.max(2) - 1) as f64;
    let x = |i: usize| left + if n == 1 { pw / 2.0 } else { i as f64 * step };
    let y = |v: f64| top + ph - v / ceiling * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{} over time\" preserveAspectRatio=\"none\">",
        esc(metric_label)
    );
    for k in 0..=4 {
        let v = ceiling * k as f64 / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 6.0,
            yy + 4.0,
            esc(&format_metric(metric, Some(v)))
        );
    }
    let shown = 7usize;
    let every = n.div_ceil(shown).max(1);
    for (i, l) in now.labels.iter().enumerate() {
        if i % every == 0 {
            // The ends are anchored inwards, so that no label is cut off.
            let anchor = match i {
                0 if n > 1 => "start",
                _ if i + 1 == n && n > 1 => "end",
                _ => "middle",
            };
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
                x(i),
                h - 8.0,
                esc(&short_label(l, bucket))
            );
        }
    }
    let line = |values: &[Option<f64>], class: &str| {
        let mut out = String::new();
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, out: &mut String| {
            if !run.is_empty() {
                let _ = write!(
                    out,
                    "<polyline class=\"{class}\" points=\"{}\"/>",
                    run.join(" ")
                );
                run.clear();
            }
        };
        for (i, v) in values.iter().enumerate().take(n) {
            match v {
                Some(v) => run.push(format!("{:.1},{:.1}", x(i), y(*v))),
                None => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
        out
    };
    if let Some(b) = before {
        s.push_str(&line(b.values, "line-before"));
    }
    s.push_str(&line(now.values, "line-now"));
    for (i, l) in now.labels.iter().enumerate() {
        let mut title = format!(
            "{}: {} {}",
            short_label(l, bucket),
            format_metric(metric, now.values.get(i).copied().flatten()),
            metric_label
        );
        if let Some(b) = before {
            let then = b
                .labels
                .get(i)
                .map(|l| short_label(l, bucket))
                .unwrap_or_default();
            let _ = write!(
                title,
                " (then, {then}: {})",
                format_metric(metric, b.values.get(i).copied().flatten())
            );
        }
        let x0 = if n == 1 {
            left
        } else {
            (x(i) - step / 2.0).max(left)
        };
        let width = if n == 1 { pw } else { step.min(w - right - x0) };
        let _ = write!(
            s,
            "<g class=\"hit\"><rect class=\"slot\" x=\"{x0:.1}\" y=\"{top}\" width=\"{width:.1}\" height=\"{ph}\"/>"
        );
        if let Some(v) = now.values.get(i).copied().flatten() {
            let _ = write!(s, "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\"/>", x(i), y(v));
        }
        let _ = write!(s, "<title>{}</title></g>", esc(&title));
    }
    s.push_str("</svg>");
    s
}

/// Decisions per day as stacked bars, one colour class per kind (`k0`..`k4`), each day's counts in its
/// `<title>`, and a marker line where a policy revision was first seen.
pub fn stacked_days(
    days: &[(String, [u64; 5])],
    names: &[&str; 5],
    markers: &[(usize, String)],
) -> String {
    let (w, h) = (800.0, 200.0);
    let (left, right, top, bottom) = (56.0, 12.0, 12.0, 30.0);
    let (pw, ph) = (w - left - right, h - top - bottom);
    let n = days.len().max(1);
    let max = days
        .iter()
        .map(|(_, c)| c.iter().sum::<u64>())
        .max()
        .unwrap_or(0) as f64;
    let ceiling = nice_ceiling(max, true);
    let slot = pw / n as f64;
    let bar = (slot * 0.7).max(1.0);
    let y = |v: f64| top + ph - v / ceiling * ph;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"chart stacked\" viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"Consent decisions per day\">"
    );
    for k in 0..=4 {
        let v = ceiling * k as f64 / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{left}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/><text class=\"axis\" x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            w - right,
            left - 6.0,
            yy + 4.0,
            esc(&format_metric("visitors", Some(v)))
        );
    }
    let every = n.div_ceil(7).max(1);
    for (i, (label, counts)) in days.iter().enumerate() {
        let x0 = left + i as f64 * slot + (slot - bar) / 2.0;
        let mut base = 0.0;
        let mut title = short_label(label, "day");
        let _ = write!(
            s,
            "<g class=\"hit\"><rect class=\"slot\" x=\"{:.1}\" y=\"{top}\" width=\"{slot:.1}\" height=\"{ph}\"/>",
            left + i as f64 * slot
        );
        for (k, c) in counts.iter().enumerate() {
            if *c > 0 {
                let (y1, y0) = (y(base + *c as f64), y(base));
                let _ = write!(
                    s,
                    "<rect class=\"k{k}\" x=\"{x0:.1}\" y=\"{y1:.1}\" width=\"{bar:.1}\" height=\"{:.1}\"/>",
                    (y0 - y1).max(0.5)
                );
                base += *c as f64;
            }
            let _ = write!(title, ", {}: {c}", names[k]);
        }
        let _ = write!(s, "<title>{}</title></g>", esc(&title));
        if i % every == 0 {
            let _ = write!(
                s,
                "<text class=\"axis\" x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                left + (i as f64 + 0.5) * slot,
                h - 8.0,
                esc(&short_label(label, "day"))
            );
        }
    }
    for (i, label) in markers {
        let x = left + *i as f64 * slot;
        let _ = write!(
            s,
            "<g class=\"marker\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top}\" y2=\"{}\"/><text x=\"{:.1}\" y=\"{}\">{}</text><title>{}</title></g>",
            top + ph,
            x + 3.0,
            top + 10.0,
            esc(label),
            esc(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// A share bar for a breakdown row: `part` of `whole`, drawn as SVG (no inline style, which the
/// Content-Security-Policy forbids).
pub fn share_bar(part: f64, whole: f64) -> String {
    let pct = if whole > 0.0 {
        (part / whole * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    format!(
        "<svg class=\"bar\" aria-hidden=\"true\" preserveAspectRatio=\"none\" viewBox=\"0 0 100 10\"><rect width=\"{pct:.1}\" height=\"10\"/></svg>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(format_metric("visitors", Some(1234567.0)), "1,234,567");
        assert_eq!(format_metric("bounce_rate", Some(33.4)), "33%");
        assert_eq!(format_metric("visit_duration", Some(210.0)), "3m 30s");
        assert_eq!(format_metric("views_per_visit", Some(1.6)), "1.60");
        assert_eq!(format_metric("visits", None), "–");
        assert_eq!(short_label("2026-10-05", "day"), "5 Oct");
        assert_eq!(short_label("2026-10-05 14:00:00", "hour"), "14:00");
        assert_eq!(short_label("2026-10-01", "month"), "Oct 2026");
        assert_eq!(
            esc("<a href='x'>&\""),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;"
        );
    }

    #[test]
    fn charts_escape_and_break_at_future_buckets() {
        let labels = vec!["<b>".to_string(), "2026-10-06".into(), "2026-10-07".into()];
        let values = [Some(1.0), Some(3.0), None];
        let svg = timeseries(
            "visitors",
            "Visitors",
            "day",
            &Series {
                labels: &labels,
                values: &values,
            },
            None,
        );
        assert!(!svg.contains("<b>") && svg.contains("&lt;b&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<title>").count(), 3);
        assert!(sparkline(&[0.0, 2.0], "x\"y").contains("x&quot;y"));
        assert!(share_bar(1.0, 4.0).contains("width=\"25.0\""));
        assert_eq!(nice_ceiling(23.0, true), 24.0);
        let days = vec![("2026-10-05".to_string(), [2, 0, 1, 0, 0])];
        let svg = stacked_days(
            &days,
            &["a", "b", "c", "d", "<e>"],
            &[(0, "revision 2".into())],
        );
        assert_eq!(svg.matches("<rect class=\"k").count(), 2);
        assert!(svg.contains("5 Oct, a: 2, b: 0, c: 1, d: 0, &lt;e&gt;: 0"));
        assert!(svg.contains("revision 2"));
        assert_eq!(nice_ceiling(3.0, true), 4.0);
        assert_eq!(nice_ceiling(1.7, false), 2.0);
        assert_eq!(nice_ceiling(1234.0, true), 1600.0);
    }
}
