//! A strict reader of Prometheus's text exposition formats, classic (0.0.4) and OpenMetrics 1.0, for the
//! metrics tests: it panics naming the first line that a scraper would refuse or misread (a sample outside
//! its declared family, a malformed label, a duplicate series, a histogram whose buckets do not add up).

use std::collections::HashSet;

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

#[derive(Debug)]
pub struct Family {
    pub name: String,
    pub kind: String,
    pub samples: Vec<Sample>,
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(s: &str) -> bool {
    is_name(s) && !s.contains(':')
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

type Labels = Vec<(String, String)>;

/// `{a="x",b="y"}` with `\\`, `\"` and `\n` escapes; returns the labels and the rest of the line.
fn parse_labels(s: &str) -> Result<(Labels, &str), String> {
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((Vec::new(), s));
    };
    let mut labels = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let (name, r) = rest.split_once("=\"").ok_or("label without =\"")?;
        if !is_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => return Err(format!("bad escape {other:?}")),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => return Err("unterminated label value".into()),
            }
        };
        labels.push((name.to_string(), value));
        rest = &r[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The suffixes a sample of a family of `kind` may add to its name.
fn suffixes(kind: &str, openmetrics: bool) -> &'static [&'static str] {
    match (kind, openmetrics) {
        ("counter", true) => &["_total", "_created"],
        ("counter", false) | ("gauge", _) | ("untyped", _) | ("unknown", _) => &[""],
        ("histogram", true) => &["_bucket", "_sum", "_count", "_created"],
        ("histogram", false) => &["_bucket", "_sum", "_count"],
        _ => &[],
    }
}

/// Reads an exposition, checking every line. Panics with the line that is wrong.
pub fn parse(text: &str, openmetrics: bool) -> Vec<Family> {
    assert!(
        text.ends_with('\n'),
        "the exposition must end with a newline"
    );
    let mut families: Vec<Family> = Vec::new();
    let mut declared: HashSet<String> = HashSet::new();
    let mut series: HashSet<String> = HashSet::new();
    let mut eof = false;
    for (n, line) in text.lines().enumerate() {
        let fail = |why: &str| -> ! { panic!("line {}: {why}: {line:?}", n + 1) };
        if eof {
            fail("text after # EOF");
        }
        if line.is_empty() {
            if openmetrics {
                fail("empty line");
            }
            continue;
        }
        if line == "# EOF" {
            if !openmetrics {
                fail("# EOF in the classic format");
            }
            eof = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let (keyword, name, rest) = (parts.next(), parts.next(), parts.next());
            let Some(name) = name.filter(|n| is_name(n)) else {
                fail("comment without a metric name");
            };
            match keyword {
                Some("HELP") => {}
                Some("TYPE") => {
                    let kind = rest.unwrap_or("");
                    if suffixes(kind, openmetrics).is_empty() {
                        fail("unknown type");
                    }
                    if !declared.insert(name.to_string()) {
                        fail("family declared twice");
                    }
                    families.push(Family {
                        name: name.to_string(),
                        kind: kind.to_string(),
                        samples: Vec::new(),
                    });
                }
                Some("UNIT") if openmetrics => {
                    let unit = rest.unwrap_or("");
                    if unit.is_empty() || !name.ends_with(&format!("_{unit}")) {
                        fail("a unit must end the family's name");
                    }
                }
                _ if openmetrics => fail("unknown comment"),
                _ => {}
            }
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or_else(|| fail("no value"));
        let name = &line[..name_end];
        if !is_name(name) {
            fail("bad metric name");
        }
        let (labels, rest) = parse_labels(&line[name_end..]).unwrap_or_else(|e| fail(&e));
        let value = rest
            .strip_prefix(' ')
            .and_then(parse_value)
            .unwrap_or_else(|| fail("bad value"));
        let Some(family) = families.last_mut() else {
            fail("sample before any # TYPE");
        };
        let belongs = suffixes(&family.kind, openmetrics)
            .iter()
            .any(|s| name == format!("{}{s}", family.name));
        if !belongs {
            fail(&format!("sample outside its family {}", family.name));
        }
        let key = format!("{name}{labels:?}");
        if !series.insert(key) {
            fail("duplicate series");
        }
        family.samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    if openmetrics {
        assert!(eof, "an OpenMetrics exposition ends with # EOF");
    }
    for f in families.iter().filter(|f| f.kind == "histogram") {
        let buckets: Vec<&Sample> = f
            .samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .collect();
        let count = f
            .samples
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .unwrap_or_else(|| panic!("{}: no _count", f.name));
        assert!(
            buckets.windows(2).all(|w| w[0].value <= w[1].value),
            "{}: buckets are cumulative",
            f.name
        );
        let last = buckets
            .last()
            .unwrap_or_else(|| panic!("{}: no bucket", f.name));
        assert_eq!(label(last, "le"), Some("+Inf"), "{}: +Inf ends", f.name);
        assert_eq!(last.value, count.value, "{}: +Inf bucket = count", f.name);
    }
    families
}

pub fn label<'a>(s: &'a Sample, name: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The value of the sample `name` whose labels include `labels`, if there is one.
pub fn value(families: &[Family], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    families
        .iter()
        .flat_map(|f| &f.samples)
        .find(|s| s.name == name && labels.iter().all(|(k, v)| label(s, k) == Some(*v)))
        .map(|s| s.value)
}
