//! Overload: when the writer cannot keep up, requests past its queue are answered 503 with `Retry-After` at
//! once instead of waiting, `/healthz` and the script keep answering, and every request answered 202 is
//! stored. Slow clients holding hundreds of connections do not stop others from being served.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::test::{self as atest, TestRequest};
use common::*;
use futures_util::future::join_all;
use serde_json::json;

/// The writer is held up (another connection keeps the write lock) while more requests arrive than its
/// queue holds: those over are refused at once with 503 + Retry-After, the rest are stored once the lock
/// goes, and nothing answered 202 is missing.
#[actix_web::test]
async fn a_full_queue_is_answered_503_at_once_and_nothing_acknowledged_is_lost() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let id = consent(&svc, "demo", "accept_all", json!({})).await;
    app.state.store.flush().await.unwrap();

    let refused = Arc::new(AtomicUsize::new(0));
    let hold = engine::WriterHold::start(&app.state.settings.location());
    let seen = refused.clone();
    let holder = std::thread::spawn(move || {
        // Held until the first request has been turned away (or 60 s, then the test fails below).
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.load(Ordering::SeqCst) == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        hold.release();
    });

    const REQUESTS: u64 = 11_000;
    let calls = (0..REQUESTS).map(|n| {
        let svc = &svc;
        let refused = refused.clone();
        let id = id.clone();
        async move {
            let mut body = event_body("demo", &id, "tick", "http://localhost/");
            body["props"] = json!({ "n": n });
            let res = atest::call_service(svc, post_json("/api/event", &body).to_request()).await;
            let status = res.status().as_u16();
            let retry = res.headers().contains_key("retry-after");
            if status == 503 {
                refused.fetch_add(1, Ordering::SeqCst);
            }
            (n, status, retry)
        }
    });
    let answers = join_all(calls).await;
    holder.join().unwrap();

    let mut stored_ok = Vec::new();
    let mut turned_away = 0;
    for (n, status, retry) in &answers {
        match status {
            202 => stored_ok.push(*n),
            503 => {
                assert!(retry, "a 503 says when to retry");
                turned_away += 1;
            }
            other => panic!("event {n}: status {other}"),
        }
    }
    assert!(
        turned_away > 0,
        "more requests than the queue holds: some refused"
    );
    assert!(
        stored_ok.len() > 8000,
        "the queue's worth was stored: {}",
        stored_ok.len()
    );
    let location = app.state.settings.location();
    let stored = assent::storage::sql::off_runtime(|| engine::stored_numbers(&location));
    let lost = stored_ok.iter().filter(|n| !stored.contains(n)).count();
    assert_eq!(lost, 0, "every 202 is in the database");

    // The server recovered: the next event is stored.
    let (status, _) = call(
        &svc,
        post_json(
            "/api/event",
            &event_body("demo", &id, "pageview", "http://localhost/"),
        ),
    )
    .await;
    assert_eq!(status, 202);
}

/// While the writer is held up and its queue full, `/healthz` and the script still answer.
#[actix_web::test]
async fn healthz_and_the_script_answer_while_the_writer_is_held_up() {
    let app = TestApp::with_env(&[("ASSENT_RATE_LIMIT", "0")]);
    let svc = service(&app).await;
    let hold = engine::WriterHold::start(&app.state.settings.location());
    let (status, _) = call(&svc, TestRequest::get().uri("/healthz")).await;
    assert_eq!(status, 200);
    let res = atest::call_service(
        &svc,
        TestRequest::get().uri("/s/demo/assent.js").to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    hold.release();
}

/// A connection from `from` (any 127.0.0.0/8 address is the machine's own).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&format!("{from}:0").parse::<SocketAddr>().unwrap().into())
        .unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// 500 connections from four networks that never finish their headers or their body do not stop a fifth
/// network's visitor: consent and events are answered at once; the slow ones are cut off by the timeouts.
#[test]
fn five_hundred_slow_clients_do_not_stop_others() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[], &[]);
    let mut slow: Vec<TcpStream> = Vec::new();
    for i in 0..500u32 {
        let from = format!("127.0.{}.{}", 10 + i % 4, 1 + i / 4);
        let mut stream = connect_from(&from, server.addr);
        let partial: &[u8] = if i % 2 == 0 {
            b"POST /api/event HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"site\":"
        } else {
            b"POST /api/event HTTP/1.1\r\nHost: loc"
        };
        stream.write_all(partial).unwrap();
        slow.push(stream);
    }
    let started = Instant::now();
    let (status, body) = server.post(
        "/api/consent",
        &json!({"site": "demo", "revision": 1, "action": "accept_all"}),
        &[],
    );
    assert_eq!(status, 200, "{body}");
    let id = body["consent_id"].as_str().unwrap().to_string();
    for _ in 0..20 {
        let (status, body) = server.post(
            "/api/event",
            &event_body("demo", &id, "pageview", "http://localhost/"),
            &[("user-agent", UA)],
        );
        assert_eq!(status, 202, "{body}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "served before the slow clients' timeouts: {:?}",
        started.elapsed()
    );
    // The slow connections are closed by the server (408 or a plain close), not left open.
    for stream in &mut slow {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buf = [0u8; 256];
        let mut closed = false;
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                closed = true;
                break;
            }
        }
        assert!(closed, "a slow connection was cut off");
    }
}
