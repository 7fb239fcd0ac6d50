//! User agents reduced to browser, operating system and device class; bots recognised and dropped. The raw
//! user agent string is never stored.

/// Browser, OS and device class of a visitor, or None for a bot.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub browser: String,
    pub os: String,
    pub device: &'static str,
}

/// Substrings (lower case) of automated clients that woothee does not already call crawlers.
const BOT_MARKERS: &[&str] = &[
    "bot",
    "spider",
    "crawl",
    "slurp",
    "headless",
    "phantomjs",
    "selenium",
    "puppeteer",
    "playwright",
    "lighthouse",
    "pingdom",
    "uptime",
    "monitor",
    "curl/",
    "wget/",
    "python-",
    "python/",
    "go-http-client",
    "java/",
    "okhttp",
    "axios/",
    "node-fetch",
    "httpclient",
    "libwww",
    "scrapy",
    "facebookexternalhit",
    "preview",
    "prerender",
    "ahrefs",
    "semrush",
    "mj12",
    "bytespider",
    "gptbot",
    "claudebot",
];

fn is_bot(ua: &str) -> bool {
    let lower = ua.to_ascii_lowercase();
    BOT_MARKERS.iter().any(|m| lower.contains(m))
}

/// Device class by screen width, as Plausible reports it; used when the script sent a width.
pub fn device_by_width(width: u32) -> &'static str {
    match width {
        0..576 => "Mobile",
        576..992 => "Tablet",
        992..1440 => "Laptop",
        _ => "Desktop",
    }
}

/// Longest user agent taken as a browser's; longer ones are treated as automated (real ones are a few
/// hundred bytes). It also bounds the memory of the cache below: at most 4096 entries of this size.
pub const MAX_USER_AGENT: usize = 1024;

/// Classifies a user agent, remembering recent answers: visitors' user agents repeat a lot and parsing
/// one runs dozens of regular expressions. The cache holds parsed results only, in memory.
pub fn classify(ua: &str) -> Option<Client> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    const CAPACITY: usize = 4096;
    if ua.len() > MAX_USER_AGENT {
        return None;
    }
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Client>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(hit) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(ua) {
        return hit.clone();
    }
    let parsed = parse(ua);
    let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
    if map.len() >= CAPACITY {
        map.clear();
    }
    map.insert(ua.to_string(), parsed.clone());
    parsed
}

fn parse(ua: &str) -> Option<Client> {
    let ua = ua.trim();
    if ua.is_empty() || is_bot(ua) {
        return None;
    }
    let parsed = woothee::parser::Parser::new().parse(ua);
    let (browser, os, category) = match &parsed {
        Some(r) => (r.name, r.os, r.category),
        None => ("UNKNOWN", "UNKNOWN", "UNKNOWN"),
    };
    if category == "crawler" {
        return None;
    }
    let lower = ua.to_ascii_lowercase();
    let device = if lower.contains("ipad")
        || lower.contains("tablet")
        || (lower.contains("android") && !lower.contains("mobile"))
    {
        "Tablet"
    } else {
        match category {
            "smartphone" | "mobilephone" => "Mobile",
            "pc" => "Desktop",
            _ => "Other",
        }
    };
    let known = |s: &str| {
        if s == "UNKNOWN" || s.is_empty() {
            "Unknown".to_string()
        } else {
            s.to_string()
        }
    };
    Some(Client {
        browser: known(browser),
        os: known(os),
        device,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_WIN: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

    #[test]
    fn browsers() {
        let c = classify(CHROME_WIN).unwrap();
        assert_eq!(c.browser, "Chrome");
        assert_eq!(c.device, "Desktop");
        assert!(c.os.starts_with("Windows"), "{}", c.os);
        let s = classify(SAFARI_IPHONE).unwrap();
        assert_eq!(s.browser, "Safari");
        assert_eq!(s.device, "Mobile");
        assert_eq!(s.os, "iPhone");
    }

    #[test]
    fn bots_dropped() {
        let padded = format!("{CHROME_WIN} {}", "x".repeat(MAX_USER_AGENT));
        assert!(classify(&padded).is_none(), "an overlong user agent");
        assert!(
            classify("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)")
                .is_none()
        );
        assert!(classify("curl/8.5.0").is_none());
        assert!(classify("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36").is_none());
        assert!(classify("").is_none());
    }

    #[test]
    fn widths() {
        assert_eq!(device_by_width(375), "Mobile");
        assert_eq!(device_by_width(800), "Tablet");
        assert_eq!(device_by_width(1280), "Laptop");
        assert_eq!(device_by_width(1920), "Desktop");
    }
}
