//! The engine a test's store runs on: the embedded SQLite file unless `ASSENT_TEST_ENGINE=postgres`, in
//! which case `ASSENT_TEST_POSTGRES` names a PostgreSQL server (an admin URL, as `.ci/run` provides) and
//! each store is a fresh database of its own there, dropped with it.

use assent::storage::engine::{Location, Owned};
use assent::storage::postgres::ScratchDatabase;

/// Whether the suite runs on PostgreSQL. Asking for it without a server is a setup error, not a skip: a
/// run meant to cover PostgreSQL must not pass without touching it.
pub fn postgres_selected() -> bool {
    match std::env::var("ASSENT_TEST_ENGINE").as_deref() {
        Ok("postgres") => {
            assert!(
                assent::storage::postgres::test_server().is_some(),
                "ASSENT_TEST_ENGINE=postgres needs ASSENT_TEST_POSTGRES=postgres://USER@HOST:PORT/postgres"
            );
            true
        }
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("ASSENT_TEST_ENGINE={other:?}: expected sqlite or postgres"),
    }
}

/// A scratch PostgreSQL database when the suite runs on PostgreSQL.
pub fn scratch_database() -> Option<ScratchDatabase> {
    postgres_selected().then(|| {
        let server = assent::storage::postgres::test_server().expect("checked above");
        ScratchDatabase::create(&server).expect("create a scratch database")
    })
}

/// The environment that points a server or command at the scratch database, if any.
pub fn engine_env(pg: &Option<ScratchDatabase>) -> Vec<(&'static str, String)> {
    pg.iter()
        .map(|db| ("ASSENT_DATABASE_URL", db.url.clone()))
        .collect()
}

/// A connection of the store's own engine, for tests that look at rows.
pub fn open(location: &Location) -> Owned {
    location.open().expect("open the store")
}

/// Every byte the store holds that a test may search: on SQLite the database file and its write-ahead
/// log; on PostgreSQL every cell of every table (text as UTF-8, numbers in decimal, bytes as they are).
pub fn store_bytes(dir: &std::path::Path, pg: &Option<ScratchDatabase>) -> Vec<u8> {
    let Some(db) = pg else {
        return super::db_bytes(dir);
    };
    use assent::storage::sql::Value;
    let mut owned = open(&Location::Postgres(db.url.clone()));
    let mut conn = owned.conn();
    let tables: Vec<String> = conn
        .rows(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
            &[],
            |r| r.get(0),
        )
        .expect("tables");
    let mut out = Vec::new();
    for t in tables {
        conn.for_each(&format!("SELECT * FROM {t}"), &[], |r| {
            for i in 0..r.len() {
                match r.get::<Value>(i)? {
                    Value::Null => {}
                    Value::Int(n) => out.extend_from_slice(n.to_string().as_bytes()),
                    Value::Real(x) => out.extend_from_slice(x.to_string().as_bytes()),
                    Value::Text(s) => out.extend_from_slice(s.as_bytes()),
                    Value::Blob(b) => out.extend_from_slice(&b),
                }
                out.push(0);
            }
            Ok(())
        })
        .expect("dump");
    }
    out
}

/// The numbers the load tests put in their events' properties (`{"n": N}`), as stored.
pub fn stored_numbers(location: &Location) -> std::collections::HashSet<u64> {
    let props: Vec<String> = open(location)
        .conn()
        .rows("SELECT props FROM events", &[], |r| r.get(0))
        .expect("events");
    props
        .iter()
        .map(|p| {
            let v: serde_json::Value = serde_json::from_str(p).expect("stored JSON");
            v["n"].as_u64().expect("a number")
        })
        .collect()
}

/// The writer held up from outside the server until [`WriterHold::release`]: on SQLite another connection
/// holds the write lock (`BEGIN IMMEDIATE`); on PostgreSQL one holds `meta` locked, which every writer's
/// transaction reads right after taking its turn. The connection lives on a thread of its own (the
/// PostgreSQL client cannot be used on the test's runtime).
pub struct WriterHold {
    release: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl WriterHold {
    pub fn start(location: &Location) -> WriterHold {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let location = location.clone();
        let thread = std::thread::spawn(move || {
            let mut owned = open(&location);
            let mut conn = owned.conn();
            conn.begin().expect("begin");
            if conn.engine() == assent::storage::sql::Engine::Postgres {
                conn.batch("LOCK TABLE meta IN ACCESS EXCLUSIVE MODE")
                    .expect("lock meta");
            }
            ready_tx.send(()).expect("ready");
            let _ = release_rx.recv();
            conn.commit().expect("commit");
        });
        ready_rx.recv().expect("the writer held up");
        WriterHold { release, thread }
    }

    /// Lets the writer go on, once the holding transaction has ended.
    pub fn release(self) {
        let _ = self.release.send(());
        self.thread.join().expect("the holding thread");
    }
}
