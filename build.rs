//! Builds the browser script and styles in `web/` into `$OUT_DIR`.
//!
//! JavaScript: each script is a list of readable source files joined in a
//! fixed order inside one function, `(function () { ... })();`, so that their
//! top-level names are shared with each other and hidden from the page. The
//! whole is parsed and checked (syntax, redeclared names, names that are
//! neither declared nor an expected browser global), then compressed and
//! mangled by the oxc minifier (a real parser: comments, formatting and long
//! names cost nothing in what visitors download). Syntax is kept at ES2017,
//! the level of the DOM methods the script relies on.
//!
//! The server replaces a placeholder token in each output with a JSON object
//! (`src/http/script.rs`). The token is an unresolved global to the minifier,
//! so it is never renamed; the build checks that it is still there exactly
//! once, and in a place where an object literal is an expression.
//!
//! CSS loses comments and collapsible white space.
//!
//! Outputs `assent.min.js`, `rights.min.js` (the dialog's "Your data" part,
//! loaded when it opens) and `assent.min.css`, and exports their paths to the
//! package's own targets as `ASSENT_MIN_JS` / `ASSENT_MIN_RIGHTS_JS` /
//! `ASSENT_MIN_CSS`.

use std::{env, fs, path::Path};

use oxc_allocator::Allocator;
use oxc_codegen::{Codegen, CodegenOptions};
use oxc_compat::EngineTargets;
use oxc_diagnostics::OxcDiagnostic;
use oxc_minifier::{CompressOptions, MangleOptions, Minifier, MinifierOptions};
use oxc_parser::Parser;
use oxc_semantic::SemanticBuilder;
use oxc_span::SourceType;

/// The banner script, `/s/{site}/assent.js`, in the order its parts are joined.
const ASSENT_PARTS: &[&str] = &[
    "web/assent/settings.js",
    "web/shared/elements.js",
    "web/assent/choice.js",
    "web/assent/gating.js",
    "web/assent/dialog.js",
    "web/assent/tracker.js",
    "web/assent/start.js",
];
const CONFIG_TOKEN: &str = "__ASSENT_CONFIG__";

/// The dialog's "Your data" part, `/s/{site}/assent.js?rights=LANG`.
const RIGHTS_PARTS: &[&str] = &["web/shared/elements.js", "web/rights.js"];
const RIGHTS_TOKEN: &str = "__ASSENT_RIGHTS__";

/// The language level of the output: what the browsers that have the DOM
/// methods the script uses (`append`, `replaceWith`, `closest`) all parse.
const TARGET: &str = "es2017";

/// The globals the scripts may use. A name outside this list that no part
/// declares is a typo (or a new dependency on the browser): the build fails.
const GLOBALS: &[&str] = &[
    "Array",
    "CustomEvent",
    "Date",
    "JSON",
    "Math",
    "Object",
    "Promise",
    "RegExp",
    "String",
    "URL",
    "addEventListener",
    // Not a global: a function's own arguments, which the checker lists with them.
    "arguments",
    "decodeURIComponent",
    "document",
    "encodeURIComponent",
    "fetch",
    "history",
    "location",
    "navigator",
    "screen",
    "setTimeout",
    "window",
];

/// What no script may contain: markup parsed from strings, or code from strings.
const FORBIDDEN: &[&str] = &[
    "innerHTML",
    "outerHTML",
    "insertAdjacentHTML",
    "document.write",
    "eval(",
    "Function(",
];

fn main() {
    println!("cargo:rerun-if-changed=web");
    let out_dir = env::var("OUT_DIR").expect("OUT_DIR is set by cargo");
    let out = |name: &str| Path::new(&out_dir).join(name);

    let js = build_script(ASSENT_PARTS, CONFIG_TOKEN);
    let rights = build_script(RIGHTS_PARTS, RIGHTS_TOKEN);
    let css = fs::read_to_string("web/assent.css").expect("read web/assent.css");
    let css = minify_css(&css);

    for (name, text, var) in [
        ("assent.min.js", js, "ASSENT_MIN_JS"),
        ("rights.min.js", rights, "ASSENT_MIN_RIGHTS_JS"),
        ("assent.min.css", css, "ASSENT_MIN_CSS"),
    ] {
        let path = out(name);
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

/// Joins `parts`, checks and minifies them, and checks the result keeps `token`.
fn build_script(parts: &[&str], token: &str) -> String {
    let (source, starts) = join_parts(parts);
    let minified = minify_js(&source, &|offset| locate(&source, &starts, offset))
        .unwrap_or_else(|message| panic!("{message}"));
    check_output(&minified, token);
    minified
}

/// The parts inside one function, and where each part starts in the result.
fn join_parts<'a>(parts: &[&'a str]) -> (String, Vec<(usize, &'a str)>) {
    let mut source = String::from("(function () {\n");
    let mut starts = Vec::with_capacity(parts.len());
    for &part in parts {
        let text = fs::read_to_string(part).unwrap_or_else(|e| panic!("read {part}: {e}"));
        starts.push((source.len(), part));
        source.push_str(&text);
        // A part that ends in a line comment must not swallow the next.
        source.push('\n');
    }
    source.push_str("})();\n");
    (source, starts)
}

/// `offset` in the joined source as `file:line:column` of the part it is in.
fn locate(source: &str, starts: &[(usize, &str)], offset: usize) -> String {
    let Some(&(start, part)) = starts.iter().rev().find(|(start, _)| *start <= offset) else {
        return "the wrapper added by build.rs".into();
    };
    let before = &source[start..offset.min(source.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{part}:{line}:{column}")
}

/// Parses, checks and minifies the joined source; an error names the file and
/// line it is about (`locate` maps an offset in `source` to one).
fn minify_js(source: &str, locate: &dyn Fn(usize) -> String) -> Result<String, String> {
    let report = |error: &OxcDiagnostic| {
        let offset = error
            .labels
            .as_ref()
            .and_then(|l| l.first())
            .map_or(0, |l| l.offset());
        format!("{}: {}", locate(offset), error.message)
    };
    let allocator = Allocator::default();
    let parsed = Parser::new(&allocator, source, SourceType::cjs()).parse();
    if let Some(error) = parsed.errors.first() {
        return Err(report(error));
    }
    let mut program = parsed.program;
    {
        // What the parser lets through but a browser refuses (a name declared twice
        // with let or const, typically by two parts) and names nobody declares.
        let checked = SemanticBuilder::new()
            .with_check_syntax_error(true)
            .build(&program);
        if let Some(error) = checked.errors.first() {
            return Err(report(error));
        }
        let mut unknown: Vec<&str> = checked
            .semantic
            .scoping()
            .root_unresolved_references()
            .keys()
            .copied()
            .filter(|name| !GLOBALS.contains(name) && !name.starts_with("__ASSENT_"))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(format!(
                "declared by no part and not an expected browser global (GLOBALS in build.rs): {}",
                unknown.join(", ")
            ));
        }
    }
    let target = EngineTargets::from_target(TARGET).map_err(|e| format!("target {TARGET}: {e}"))?;
    let options = MinifierOptions {
        // Local names only: the program's one statement is the wrapper's call, and
        // what the page sees (window.assent and its methods) are properties, which
        // are never renamed.
        mangle: Some(MangleOptions::default()),
        compress: Some(CompressOptions {
            target,
            ..CompressOptions::smallest()
        }),
    };
    let minified = Minifier::new(options).minify(&allocator, &mut program);
    let code = Codegen::new()
        .with_options(CodegenOptions::minify())
        .with_scoping(minified.scoping)
        .build(&program)
        .code;
    Ok(code + "\n")
}

/// The placeholder is there once, where a JSON object can stand as an
/// expression (after `=`, `(` or `,`: not at the start of a statement, where
/// `{` would open a block), and nothing forbidden made it into the output.
fn check_output(js: &str, token: &str) {
    let found: Vec<usize> = js.match_indices(token).map(|(i, _)| i).collect();
    assert_eq!(
        found.len(),
        1,
        "{token} must appear exactly once in the minified script"
    );
    let before = js[..found[0]].trim_end().chars().last();
    assert!(
        matches!(before, Some('=' | '(' | ',')),
        "{token} must stay in expression position (after `=`, `(` or `,`), found after {before:?}"
    );
    for bad in FORBIDDEN {
        assert!(!js.contains(bad), "the minified script contains `{bad}`");
    }
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
