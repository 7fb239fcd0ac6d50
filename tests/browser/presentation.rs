//! Gating, keyboard use, languages and right-to-left, Consent Mode, contrast, and the docs screenshots.

use super::*;

#[test]
fn gated_scripts_and_iframes_wait_for_their_category() {
    let Some((env, b)) = setup(
        "gated_scripts_and_iframes_wait_for_their_category",
        Options::default(),
    ) else {
        return;
    };
    env.web.put_response(
        "/slow.js",
        harness::Response {
            delay: std::time::Duration::from_millis(300),
            ..harness::Response::new(200, "text/javascript", "window.ran.push('src');")
        },
    );
    env.web.put("/frame.html", "text/html", "<p>embedded</p>");
    let url = env.page(
        "/g",
        "en",
        "<script>window.ran=[];</script>\
         <script type=\"text/plain\" data-assent-category=\"marketing\">window.ran.push('inline1');</script>\
         <script type=\"text/plain\" data-assent-category=\"marketing\" src=\"/slow.js\"></script>\
         <script type=\"text/plain\" data-assent-category=\"analytics\">window.ran.push('analytics');</script>\
         <script type=\"text/plain\" data-assent-category=\"marketing\">window.ran.push('inline2');</script>\
         <iframe id=\"video\" data-assent-category=\"marketing\" data-src=\"/frame.html\" width=\"400\" height=\"200\"></iframe>",
    );
    b.goto(&url);
    b.wait("document.querySelector('.assent-ph')", &[]);
    assert_eq!(b.eval("window.ran"), json!([]));
    assert_eq!(
        b.eval("document.getElementById('video').getAttribute('src')"),
        Value::Null
    );
    assert_eq!(
        b.eval("document.querySelector('.assent-ph button').textContent"),
        "Allow Marketing"
    );
    b.click(".assent-ph button");
    b.wait("window.ran.length==3", &[]);
    assert_eq!(b.eval("window.ran"), json!(["inline1", "src", "inline2"]));
    let id = consent_id(&b);
    assert_eq!(
        b.eval("assent.consent().choices"),
        json!({"necessary": true, "analytics": false, "marketing": true, "preferences": false})
    );
    assert_eq!(env.wait_consents(&id, 1)[0]["action"], "custom");
    b.wait("document.getElementById('video').contentDocument&&document.getElementById('video').contentDocument.body&&document.getElementById('video').contentDocument.body.textContent=='embedded'", &[]);
    assert_eq!(b.eval("document.querySelectorAll('.assent-ph').length"), 0);
    assert!(!banner_visible(&b));
    // on the next page the granted ones run at once, the others stay inert
    b.goto(&url);
    b.wait("window.ran.length==3", &[]);
    assert_eq!(b.eval("window.ran"), json!(["inline1", "src", "inline2"]));
    assert_eq!(
        b.eval("document.getElementById('video').getAttribute('src')"),
        "/frame.html"
    );
}

#[test]
fn keyboard_only_through_both_layers() {
    let Some((env, b)) = setup("keyboard_only_through_both_layers", Options::default()) else {
        return;
    };
    let url = env.page("/k", "en", "<p><a href=\"#top\">first page link</a></p>");
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    // the banner comes first in the tab order: its privacy policy link, then the buttons
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "A|Privacy policy");
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-btn|Accept all");
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-btn|Reject all");
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-btn|Customise");
    // visible focus indicator
    let outline = b.eval("getComputedStyle(document.activeElement).outlineStyle+' '+getComputedStyle(document.activeElement).outlineWidth");
    assert_eq!(outline, "solid 3px");
    b.keys(&[keys::ENTER]);
    b.wait(
        "document.querySelector('[role=dialog][aria-modal=true]')",
        &[],
    );
    let label = b.eval(
        "document.getElementById(document.querySelector('[role=dialog]').getAttribute('aria-labelledby')).textContent",
    );
    assert_eq!(label, "Your preferences");
    assert_eq!(
        b.eval("document.activeElement.getAttribute('role')"),
        "dialog"
    );
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-x|×");
    b.keys(&[keys::TAB]);
    assert_eq!(b.focused(), "assent-c-analytics|");
    b.keys(&[keys::SPACE]);
    assert_eq!(b.eval("document.activeElement.checked"), true);
    // Escape closes without a choice: the banner is back, focus on the opener
    b.keys(&[keys::ESCAPE]);
    b.wait("!document.querySelector('[role=dialog]')", &[]);
    assert!(banner_visible(&b));
    assert_eq!(b.focused(), "assent-btn|Customise");
    assert_eq!(b.eval("document.cookie"), "");
    assert_eq!(b.eval("window.__net.length"), 0);
    // again, and the focus stays trapped inside the dialog
    b.keys(&[keys::ENTER]);
    b.wait("document.querySelector('[role=dialog]')", &[]);
    let order = [
        "assent-x|×",
        "assent-c-analytics|",
        "assent-c-marketing|",
        "assent-c-preferences|",
        "assent-btn|Accept all",
        "assent-btn|Reject all",
        "assent-btn|Save choices",
        "assent-x|×",
    ];
    for want in order {
        b.keys(&[keys::TAB]);
        assert_eq!(b.focused(), want);
    }
    b.shift_tab();
    assert_eq!(b.focused(), "assent-btn|Save choices");
    for _ in 0..5 {
        b.shift_tab();
    }
    assert_eq!(b.focused(), "assent-c-analytics|");
    b.keys(&[keys::SPACE, keys::TAB, keys::TAB, keys::SPACE]);
    assert_eq!(b.focused(), "assent-c-preferences|");
    b.keys(&[keys::TAB, keys::TAB, keys::TAB, keys::ENTER]);
    let id = consent_id(&b);
    assert_eq!(
        b.eval("assent.consent().choices"),
        json!({"necessary": true, "analytics": true, "marketing": false, "preferences": true})
    );
    assert_eq!(env.wait_consents(&id, 1)[0]["action"], "custom");
    b.wait(
        "!document.querySelector('[role=dialog]')&&!document.querySelector('.assent-ban')",
        &[],
    );
    // the floating button reopens the preferences by keyboard too
    b.js("document.querySelector('.assent-fab').focus();", &[]);
    b.keys(&[keys::ENTER]);
    b.wait("document.querySelector('[role=dialog]')", &[]);
    assert_eq!(
        b.eval("document.getElementById('assent-c-preferences').checked"),
        true
    );
    b.keys(&[keys::ESCAPE]);
    b.wait("!document.querySelector('[role=dialog]')", &[]);
    assert_eq!(b.eval("document.activeElement.className"), "assent-fab");
    assert!(!banner_visible(&b));
}

#[test]
fn a_french_page_gets_french_texts() {
    let Some((env, b)) = setup("a_french_page_gets_french_texts", Options::default()) else {
        return;
    };
    let url = env.page("/fr", "fr-FR", "");
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    assert_eq!(
        b.eval("document.getElementById('assent-t').textContent"),
        "Votre vie privée"
    );
    assert_eq!(
        b.eval("[].map.call(document.querySelectorAll('.assent-ban button'),function(x){return x.textContent;})"),
        json!(["Tout accepter", "Tout refuser", "Personnaliser"])
    );
    assert_eq!(b.eval("document.querySelector('.assent').lang"), "fr");
    b.click(".assent-ban button:nth-of-type(3)");
    b.wait("document.querySelector('[role=dialog]')", &[]);
    assert_eq!(
        b.eval("document.querySelector('label[for=assent-c-analytics]').textContent"),
        "Mesure d’audience"
    );
    b.click(".assent-x");
    b.click(".assent-ban button:nth-of-type(2)");
    let id = consent_id(&b);
    assert_eq!(
        env.wait_consents(&id, 1)[0]["language"]
            .as_str()
            .unwrap_or("fr"),
        "fr"
    );
}

#[test]
fn a_site_defined_arabic_language_renders_right_to_left() {
    let Some((env, b)) = setup(
        "a_site_defined_arabic_language_renders_right_to_left",
        Options::default(),
    ) else {
        return;
    };
    let mut ar = payload::texts("en");
    ar["dir"] = json!("rtl");
    ar["title"] = json!("خصوصيتك");
    ar["accept_all"] = json!("قبول الكل");
    ar["reject_all"] = json!("رفض الكل");
    ar["customise"] = json!("تخصيص");
    env.update_site(false, move |t| add_language(t, "ar", &ar));
    env.wait_script("خصوصيتك");
    let url = env.page("/ar", "ar", "");
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    assert_eq!(b.eval("document.querySelector('.assent').dir"), "rtl");
    assert_eq!(
        b.eval("document.getElementById('assent-t').textContent"),
        "خصوصيتك"
    );
    // right to left: the first button is on the right
    let order = b.eval(
        "(function(b){return b[0].getBoundingClientRect().left>b[2].getBoundingClientRect().left;})(document.querySelectorAll('.assent-ban button'))",
    );
    assert_eq!(order, true);
}

#[test]
fn google_consent_mode_signals() {
    let Some((env, b)) = setup("google_consent_mode_signals", Options::default()) else {
        return;
    };
    env.update_site(false, |t| {
        set_option(t, "google_consent_mode", toml::Value::Boolean(true))
    });
    env.wait_script("\"google_consent_mode\":true");
    let url = env.page("/gcm", "en", "");
    b.goto(&url);
    b.wait("window.dataLayer&&window.dataLayer.length", &[]);
    let first = b.eval("[].slice.call(dataLayer[0])");
    assert_eq!(
        first,
        json!(["consent", "default", {"analytics_storage": "denied", "ad_storage": "denied", "ad_user_data": "denied", "ad_personalization": "denied"}])
    );
    b.click(".assent-ban button");
    b.wait(
        "dataLayer.some(function(a){return a[1]=='update'&&a[2].analytics_storage=='granted'&&a[2].ad_storage=='granted';})",
        &[],
    );
}

/// Text contrast of the banner and the dialog in both themes (WCAG AA 4.5:1).
#[test]
fn text_contrast_in_both_themes() {
    for dark in [false, true] {
        let opts = Options {
            dark,
            ..Options::default()
        };
        let Some((env, b)) = setup("text_contrast_in_both_themes", opts) else {
            return;
        };
        let url = env.page("/c", "en", "");
        b.goto(&url);
        b.wait("document.querySelector('.assent-ban')", &[]);
        b.click(".assent-ban button:nth-of-type(3)");
        b.wait("document.querySelector('[role=dialog]')", &[]);
        b.js("document.querySelector('[role=dialog]').hidden=false;document.querySelector('.assent-ban').hidden=false;", &[]);
        let worst = b.eval(CONTRAST_JS);
        let ratio = worst[0].as_f64().unwrap();
        assert!(ratio >= 4.5, "dark={dark}: lowest text contrast {worst}");
    }
}

const CONTRAST_JS: &str = r#"(function(){
function rgb(s){var m=s.match(/[\d.]+/g).map(Number);return m.length>3&&m[3]===0?null:m;}
function lum(c){return [0,1,2].map(function(i){var v=c[i]/255;return v<=0.03928?v/12.92:Math.pow((v+0.055)/1.055,2.4);}).reduce(function(a,v,i){return a+v*[0.2126,0.7152,0.0722][i];},0);}
function bg(e){for(;e;e=e.parentElement){var c=rgb(getComputedStyle(e).backgroundColor);if(c)return c;}return [255,255,255];}
var worst=[99,''];
document.querySelectorAll('.assent h2,.assent p,.assent li,.assent label,.assent span,.assent button,.assent a').forEach(function(e){
if(!e.textContent.trim()||!e.getClientRects().length)return;
var f=lum(rgb(getComputedStyle(e).color)),b=lum(bg(e)),r=(Math.max(f,b)+0.05)/(Math.min(f,b)+0.05);
if(r<worst[0])worst=[r,e.tagName+' '+e.className+' '+e.textContent.slice(0,30)];});
return worst;})()"#;

/// Regenerates docs/*.png when ASSENT_SCREENSHOTS=1.
#[test]
fn screenshots_for_the_docs() {
    if std::env::var("ASSENT_SCREENSHOTS").map_or(true, |v| v != "1") {
        println!("screenshots_for_the_docs: set ASSENT_SCREENSHOTS=1 to regenerate docs/*.png");
        return;
    }
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
    for (dark, theme) in [(false, "light"), (true, "dark")] {
        let opts = Options {
            dark,
            width: 1100,
            height: 880,
            ..Options::default()
        };
        let Some((env, b)) = setup("screenshots_for_the_docs", opts) else {
            return;
        };
        let url = env.page(
            "/demo",
            "en",
            "<p>Welcome to the demo shop. This page embeds the Assent banner with one script tag.</p>\
             <p><button data-assent-open>Cookie settings</button></p>",
        );
        b.goto(&url);
        b.wait("document.querySelector('.assent-ban')", &[]);
        b.screenshot(&docs.join(format!("banner-{theme}.png")));
        b.click(".assent-ban button:nth-of-type(3)");
        b.wait("document.querySelector('[role=dialog]')", &[]);
        b.js("document.activeElement.blur();", &[]);
        b.screenshot(&docs.join(format!("preferences-{theme}.png")));
    }
}

#[test]
fn works_under_a_strict_content_security_policy() {
    let Some((env, b)) = setup(
        "works_under_a_strict_content_security_policy",
        Options::default(),
    ) else {
        return;
    };
    // The policy docs/banner.md documents: no 'unsafe-inline', no 'unsafe-eval'; the gated inline
    // script carries the page's nonce.
    let api = &env.api;
    let csp = format!(
        "default-src 'self'; script-src {api} 'nonce-t3st'; style-src {api}; connect-src {api}; img-src 'self'"
    );
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\
         <title>CSP</title><script src=\"{api}/s/demo/assent.js\" defer></script></head>\
         <body><h1>Strict CSP</h1>\
         <script nonce=\"t3st\">window.ran=[];document.addEventListener('securitypolicyviolation',function(e){{window.ran.push('violation '+e.violatedDirective+' '+e.blockedURI);}});</script>\
         <script type=\"text/plain\" data-assent-category=\"marketing\" nonce=\"t3st\">window.ran.push('gated');</script>\
         </body></html>"
    );
    env.web.put("/csp", "text/html; charset=utf-8", &html);
    let url = format!("{}/csp", env.web.origin("localhost"));
    b.goto(&url);
    b.wait("document.querySelector('.assent-ban')", &[]);
    // The stylesheet applied: the banner overlays the page.
    b.wait(
        "getComputedStyle(document.querySelector('.assent-ban')).position=='fixed'",
        &[],
    );
    b.click(".assent-ban .assent-btn");
    let id = consent_id(&b);
    env.wait_event(&id, "pageview under CSP", |e| is_pageview(e, "/csp"));
    b.wait("window.ran.indexOf('gated')>=0", &[]);
    assert_eq!(b.eval("window.ran"), json!(["gated"]), "no CSP violation");
}
