//! Minifies the browser script and styles in `web/` into `$OUT_DIR`.
//!
//! Deliberately conservative and parser-free, so it stays obviously correct:
//! - JavaScript is processed line by line: whole-line comments are dropped,
//!   indentation and blank lines go, and a line is joined to the previous one
//!   only where that cannot change the meaning (after `{ ; , (`, or before
//!   `} ) ]`); every other line break is kept, so automatic semicolon
//!   insertion behaves exactly as in the source. The rules the source must
//!   follow are at the top of `web/assent.js`; a code line containing `//`
//!   fails the build instead of being guessed at.
//! - CSS loses comments and collapsible white space.
//!
//! Outputs `assent.min.js`, `rights.min.js` (the dialog's "Your data" part,
//! loaded when it opens) and `assent.min.css`, and exports their paths to the
//! package's own targets as `ASSENT_MIN_JS` / `ASSENT_MIN_RIGHTS_JS` /
//! `ASSENT_MIN_CSS`.

use std::{env, fs, path::Path};

const CONFIG_TOKEN: &str = "__ASSENT_CONFIG__";
const RIGHTS_TOKEN: &str = "__ASSENT_RIGHTS__";

fn main() {
    println!("cargo:rerun-if-changed=web");
    let out_dir = env::var("OUT_DIR").expect("OUT_DIR is set by cargo");
    let js = fs::read_to_string("web/assent.js").expect("read web/assent.js");
    let css = fs::read_to_string("web/assent.css").expect("read web/assent.css");
    let js = minify_js(&js).unwrap_or_else(|e| panic!("web/assent.js: {e}"));
    assert_eq!(
        js.matches(CONFIG_TOKEN).count(),
        1,
        "web/assent.js must contain {CONFIG_TOKEN} exactly once"
    );
    let css = minify_css(&css);
    let rights = fs::read_to_string("web/rights.js").expect("read web/rights.js");
    let rights = minify_js(&rights).unwrap_or_else(|e| panic!("web/rights.js: {e}"));
    assert_eq!(
        rights.matches(RIGHTS_TOKEN).count(),
        1,
        "web/rights.js must contain {RIGHTS_TOKEN} exactly once"
    );
    let rights_path = Path::new(&out_dir).join("rights.min.js");
    fs::write(&rights_path, rights).expect("write rights.min.js");
    println!(
        "cargo:rustc-env=ASSENT_MIN_RIGHTS_JS={}",
        rights_path.display()
    );
    let js_path = Path::new(&out_dir).join("assent.min.js");
    let css_path = Path::new(&out_dir).join("assent.min.css");
    fs::write(&js_path, js).expect("write assent.min.js");
    fs::write(&css_path, css).expect("write assent.min.css");
    println!("cargo:rustc-env=ASSENT_MIN_JS={}", js_path.display());
    println!("cargo:rustc-env=ASSENT_MIN_CSS={}", css_path.display());
}

fn minify_js(src: &str) -> Result<String, String> {
    let mut out = String::with_capacity(src.len());
    let mut in_comment = false;
    for (n, raw) in src.lines().enumerate() {
        let line = raw.trim();
        if in_comment {
            if line.ends_with("*/") {
                in_comment = false;
            } else if line.contains("*/") {
                return Err(format!("line {}: code after the end of a comment", n + 1));
            }
            continue;
        }
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        if line.starts_with("/*") {
            if line.len() >= 4 && line.ends_with("*/") {
                continue;
            }
            if line.contains("*/") {
                return Err(format!("line {}: code after the end of a comment", n + 1));
            }
            in_comment = true;
            continue;
        }
        if line.contains("//") || line.contains("/*") {
            return Err(format!(
                "line {}: `//` or `/*` inside a code line (see the source rules at the top)",
                n + 1
            ));
        }
        let join = out.is_empty()
            || out.ends_with(['{', ';', ',', '('])
            || line.starts_with(['}', ')', ']']);
        if !join {
            out.push('\n');
        }
        out.push_str(line);
    }
    if in_comment {
        return Err("unterminated comment".into());
    }
    out.push('\n');
    Ok(out)
}

fn minify_css(src: &str) -> String {
    // Drop comments.
    let mut text = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        match rest[start + 2..].find("*/") {
            Some(end) => rest = &rest[start + 2 + end + 2..],
            None => {
                rest = "";
                break;
            }
        }
    }
    text.push_str(rest);
    // Collapse white space, then remove it where the grammar makes it
    // meaningless: around `{ } ; , >` and after `:` (never before `:`, which
    // would turn `a :hover` into `a:hover`).
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(collapsed.len());
    let chars: Vec<char> = collapsed.chars().collect();
    let tight = |c: char| matches!(c, '{' | '}' | ';' | ',' | '>');
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = if i > 0 { chars[i - 1] } else { ' ' };
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            if tight(prev) || tight(next) || prev == ':' {
                continue;
            }
        }
        out.push(c);
    }
    out.replace(";}", "}")
}
