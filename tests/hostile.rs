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
