//! The running binary against clients that misbehave on the wire: bodies trickled or never sent, many
//! connections from one network, malformed requests meant to flood the operator's log.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// Reads until the server closes the connection (or `limit` passes); returns what it sent and whether it
/// closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), true),
        }
    }
    (String::from_utf8_lossy(&got).into_owned(), false)
}

/// A connection to `to` from a chosen loopback address (127.0.0.0/8 is all the machine's own).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from: SocketAddr = format!("{from}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

#[test]
fn trickled_or_missing_bodies_and_headers_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    // Headers complete, body promised and never finished.
    let mut body = TcpStream::connect(server.addr).unwrap();
    body.write_all(
        b"POST /api/event HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{\"site\":",
    )
    .unwrap();
    // Headers never finished.
    let mut head = TcpStream::connect(server.addr).unwrap();
    head.write_all(b"POST /api/event HTTP/1.1\r\nHost: loc")
        .unwrap();
    let (answer, closed) = read_until_closed(&mut body, Duration::from_secs(20));
    assert!(closed, "a stalled body keeps its connection: {answer:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    let (answer, closed) = read_until_closed(&mut head, Duration::from_secs(20));
    assert!(closed, "stalled headers keep their connection: {answer:?}");
    assert_eq!(server.get("/healthz").0, 200);
}

#[test]
fn one_network_cannot_take_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let cap = assent::http::connections::PER_NETWORK;
    // Idle connections from 127.0.0.0/24 up to the cap (opened well within the header timeout).
    let held: Vec<TcpStream> = (0..cap)
        .map(|_| connect_from("127.0.0.1", server.addr))
        .collect();
    // The server has accepted them all when a request on the last one is answered.
    let mut last = connect_from("127.0.0.2", server.addr);
    let (_, closed) = read_until_closed(&mut last, Duration::from_secs(5));
    assert!(closed, "a connection over the cap is shut at once");
    // Another network is served meanwhile.
    let mut other = connect_from("127.0.1.1", server.addr);
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (answer, _) = read_until_closed(&mut other, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    drop(held);
    // Once they are gone, the network gets connections again.
    wait_for(10, || (server.get("/healthz").0 == 200).then_some(()));
}

#[test]
fn malformed_requests_are_summarised_not_logged_one_by_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let garbage: [&[u8]; 4] = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"GET /\x01\x02 HTTP/1.1\r\n\r\n",
        b"POST /api/event HTTP/1.1\r\nContent-Length: nope\r\n\r\n",
    ];
    for i in 0..40 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.write_all(garbage[i % garbage.len()]).unwrap();
        let (answer, _) = read_until_closed(&mut s, Duration::from_secs(10));
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer:?}");
    }
    assert_eq!(server.get("/healthz").0, 200);
    let log = server.stderr_text();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "error lines: {errors:?}");
    let summaries = log
        .lines()
        .filter(|l| l.contains("malformed requests"))
        .count();
    assert!(summaries <= 1, "{log}");
}

/// Sends `request` on a new connection and returns what the server answered before it closed (or ten
/// seconds passed).
fn exchange(server: &Server, request: &[u8]) -> String {
    let mut s = TcpStream::connect(server.addr).unwrap();
    // The server may answer and close before reading everything sent: a failed write is an answer too.
    let _ = s.write_all(request);
    read_until_closed(&mut s, Duration::from_secs(10)).0
}

fn status_of(answer: &str) -> u16 {
    answer
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"))
}

/// A request head larger than the server reads, too many headers, CR or LF inside a value (an attempt to
/// write a header of one's own into what is echoed back), bytes that are not UTF-8 in values and in the
/// path: each gets a 4xx on its own connection, no answer header carries what was smuggled in, and the
/// server goes on serving with nothing in its log but the summary of malformed requests.
#[test]
fn oversized_smuggled_and_non_utf8_headers_get_a_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[("ASSENT_RATE_LIMIT", "0")]);
    let big = "a".repeat(200 * 1024);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let body = r#"{"site":"demo","revision":1,"action":"accept_all"}"#;
    let post = |extra: &str| {
        format!(
            "POST /api/consent HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    let with_bytes = |extra: &[u8]| {
        let mut r = format!(
            "POST /api/consent HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(extra);
        r.extend_from_slice(b"\r\n");
        r.extend_from_slice(body.as_bytes());
        r
    };
    // (what, request, statuses allowed)
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("a 200 KiB header", format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").into_bytes(), &[431]),
        ("a 200 KiB path", format!("GET /{big} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes(), &[431]),
        ("200 headers", format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many}\r\n").into_bytes(), &[431]),
        ("CR LF in Origin", post("Origin: http://localhost:3000\r\nSet-Cookie: pwned=1\r\n"), &[200]),
        ("bare CR in Origin", post("Origin: http://localhost:3000\rSet-Cookie: pwned=1\r\n"), &[400]),
        ("bare LF in Origin", post("Origin: http://localhost:3000\nSet-Cookie: pwned=1\r\n"), &[200]),
        ("NUL in Origin", post("Origin: http://localhost:3000\0Set-Cookie: pwned=1\r\n"), &[400]),
        ("non-UTF-8 Origin", with_bytes(b"Origin: http://localhost:3000\xff\xfe\r\n"), &[403]),
        ("non-UTF-8 header name", with_bytes(b"X-\xff: 1\r\n"), &[400]),
        ("non-UTF-8 in the path", b"GET /api/consent/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), &[400]),
        ("percent-encoded non-UTF-8 in the path", b"GET /api/consent/%ff%fe%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), &[400]),
        ("non-UTF-8 in a query", b"GET /api/v1/stats/aggregate?site_id=%ff%fe&period=%c3%28 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\r\nConnection: close\r\n\r\n".to_vec(), &[401]),
    ];
    for (what, request, allowed) in cases {
        let answer = exchange(&server, &request);
        let status = status_of(&answer);
        assert!(allowed.contains(&status), "{what}: {answer:?}");
        let head = answer
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        assert!(
            !head.contains("pwned"),
            "{what}: smuggled header echoed: {answer:?}"
        );
        assert!(!head.contains("set-cookie"), "{what}: {answer:?}");
        // A line break ends a header on the wire: what follows is a header of the request, never part of
        // the Origin, and the only origin echoed is the page's own.
        for line in head
            .lines()
            .filter(|l| l.starts_with("access-control-allow-origin:"))
        {
            assert_eq!(
                line, "access-control-allow-origin: http://localhost:3000",
                "{what}"
            );
        }
    }
    assert_eq!(server.get("/healthz").0, 200);
    let log = server.stderr_text();
    assert!(!log.contains("panicked"), "{log}");
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "error lines: {errors:?}");
}

/// Static routes serve what is built into the binary, never a file named by the path: `..` in every
/// spelling (raw, percent-encoded, doubly encoded, with backslashes, a NUL) gets a 4xx and nothing of the
/// database, the settings or the system.
#[test]
fn path_traversal_on_static_routes_reads_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[("ASSENT_RATE_LIMIT", "0")]);
    std::fs::write(dir.path().join("secret.txt"), "TOP-SECRET-FILE").unwrap();
    let paths = [
        "/s/../assent.db",
        "/s/demo/../../assent.db",
        "/s/../../../../etc/passwd",
        "/s/..%2f..%2fassent.db/assent.js",
        "/s/%2e%2e/assent.js",
        "/s/%2e%2e%2fsecret.txt/assent.js",
        "/s/%252e%252e%252fsecret.txt/assent.js",
        "/s/..%5c..%5cassent.db/assent.js",
        "/s/demo/..%2f..%2fsecret.txt",
        "/s/demo%00/assent.js",
        "/s/demo/assent.js%00.txt",
        "/s/demo/privacy/../../../secret.txt",
        "/s/assent.css/../../secret.txt",
        "/s/..%2fassent.css",
        "/assets/../secret.txt",
        "/assets/..%2fsecret.txt",
        "/assets/dashboard.css/../../assent.db",
        "/assets/%2e%2e/%2e%2e/etc/passwd",
        "//etc/passwd",
        "/secret.txt",
        "/assent.db",
        "/../secret.txt",
        "/api/consent/..%2f..%2fassent.db",
        "/sites/..%2f..%2fassent.db/export.zip",
    ];
    for path in paths {
        let answer = exchange(
            &server,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        let status = status_of(&answer);
        // 303: a dashboard route sends a stranger to the login page, which reveals nothing either.
        assert!(
            matches!(status, 400 | 404 | 405 | 303),
            "{path}: {answer:?}"
        );
        for leak in ["SQLite format", "TOP-SECRET-FILE", "root:x:", "data_dir"] {
            assert!(!answer.contains(leak), "{path} leaked {leak:?}");
        }
    }
    assert_eq!(server.get("/healthz").0, 200);
}
