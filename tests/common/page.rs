//! A page as the in-process dashboard tests see it: status, headers and body, with the session cookie, the
//! redirect and the form's CSRF token read from it.

use actix_web::dev::{Service, ServiceResponse};
use actix_web::test::{self, TestRequest};

/// What a page answered: status, headers (lower-case names, values as text, bytes that are not UTF-8
/// replaced) and body.
pub struct Got {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The body's size as sent.
    pub bytes: usize,
}

impl Got {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Where a redirect leads.
    pub fn location(&self) -> Option<&str> {
        self.header("location")
    }

    pub fn cookies(&self) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The value a `Set-Cookie` gives a cookie.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies()
            .iter()
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap_or("").to_string())
    }

    /// The value of the first hidden `csrf` field of the page.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.body));
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_string()
    }
}

/// Sends a request to the in-process app and reads the whole answer.
pub async fn send<S, B>(svc: &S, req: TestRequest) -> Got
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(svc, req.to_request()).await;
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .map(|(k, v)| {
            let value = String::from_utf8_lossy(v.as_bytes()).into_owned();
            (k.as_str().to_string(), value)
        })
        .collect();
    let raw = test::read_body(res).await;
    Got {
        status,
        headers,
        body: String::from_utf8_lossy(&raw).into_owned(),
        bytes: raw.len(),
    }
}
