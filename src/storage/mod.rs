//! Storage: the boundary between Assent and its database. Everything above this module talks to
//! [`Store`]; everything SQL lives below it. Writes go through the single writer thread (group commit,
//! answered after commit); reads run on a pool of read-only connections on the blocking thread pool, never
//! on the async runtime. A second engine would implement the same methods.

pub mod consents;
pub mod db;
pub mod events;
pub mod retention;
pub mod sites;
pub mod users;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::domain::consent::{ConsentCache, ConsentId, ConsentRecord};
use crate::domain::event::NewEvent;
use crate::error::{Error, Result};
use retention::PurgeReport;
use writer::{ErasureReport, Job, Op, Outcome, Writer};

/// What `GET /api/visitor/{id}` shows.
pub struct VisitorExport {
    pub consents: Vec<ConsentRecord>,
    pub visits: Vec<events::VisitExport>,
    pub events: Vec<events::EventExport>,
}

/// Jobs that may wait for the writer; past this, callers wait (back-pressure) instead of queueing more.
const QUEUE_DEPTH: usize = 8192;

/// Read-only connections, opened on demand and reused.
struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match conn {
            Some(c) => c,
            None => db::open_reader(&self.path)?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
        out
    }
}

#[derive(Clone)]
pub struct Store {
    jobs: mpsc::Sender<Job>,
    readers: Arc<ReadPool>,
}

/// Joins the writer thread once it has committed everything queued.
pub struct WriterGuard {
    store: Store,
    thread: Option<JoinHandle<()>>,
}

impl WriterGuard {
    /// Commits what is queued and stops the writer.
    pub async fn shutdown(mut self) {
        let _ = self
            .store
            .jobs
            .send(Job {
                op: Op::Shutdown,
                reply: None,
            })
            .await;
        if let Some(t) = self.thread.take() {
            let _ = actix_web::web::block(move || t.join()).await;
        }
    }
}

/// Opens (creating and migrating) the database at `path`.
pub fn open_db(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Internal(format!("cannot create {}: {e}", dir.display())))?;
    }
    let mut conn = db::open(path)?;
    db::migrate(&mut conn)?;
    Ok(conn)
}

impl Store {
    /// Opens the database, loads the consent cache from it and starts the writer thread.
    pub fn start(path: &Path, cache: Arc<ConsentCache>) -> Result<(Store, WriterGuard)> {
        let conn = open_db(path)?;
        let writer = Writer::new(conn, cache, crate::now())?;
        let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("assent-writer".into())
            .spawn(move || writer.run(rx))
            .map_err(|e| Error::Internal(format!("cannot start the writer thread: {e}")))?;
        let store = Store {
            jobs: tx,
            readers: Arc::new(ReadPool {
                path: path.to_path_buf(),
                idle: Mutex::new(Vec::new()),
            }),
        };
        Ok((
            store.clone(),
            WriterGuard {
                store,
                thread: Some(thread),
            },
        ))
    }

    async fn write(&self, op: Op) -> Result<Outcome> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                op,
                reply: Some(reply),
            })
            .await
            .map_err(|_| Error::Unavailable("the server is shutting down".into()))?;
        answer
            .await
            .map_err(|_| Error::Unavailable("the writer stopped before committing".into()))?
    }

    /// Runs a read on a pooled connection, off the async runtime.
    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let readers = self.readers.clone();
        actix_web::web::block(move || readers.with(f))
            .await
            .map_err(|e| Error::Internal(format!("blocking read failed: {e}")))?
    }

    pub async fn append_consent(&self, rec: ConsentRecord) -> Result<()> {
        self.write(Op::Consent(rec)).await.map(|_| ())
    }

    /// Stores an event; Ok(false) when it was dropped (engaged time without an open visit).
    pub async fn record_event(&self, e: NewEvent) -> Result<bool> {
        match self.write(Op::Event(Box::new(e))).await? {
            Outcome::Stored(s) => Ok(s),
            other => Err(Error::Internal(format!(
                "unexpected writer outcome {other:?}"
            ))),
        }
    }

    /// Everything stored about a consent id: its consent history, and the visits and events of its
    /// visitor keys, with open visits' rows brought up to date first.
    pub async fn visitor_export(&self, id: ConsentId) -> Result<VisitorExport> {
        self.flush().await?;
        self.read(move |c| {
            let mut out = VisitorExport {
                consents: consents::history(c, id)?,
                visits: Vec::new(),
                events: Vec::new(),
            };
            for (site, key) in consents::visitor_keys(c, id)? {
                out.visits.extend(events::visits_of(c, &site, key)?);
                out.events.extend(events::events_of(c, &site, key)?);
            }
            Ok(out)
        })
        .await
    }

    /// Erases every row derived from a consent id (privacy invariant 5).
    pub async fn erase(&self, id: ConsentId) -> Result<ErasureReport> {
        match self.write(Op::Erase(id)).await? {
            Outcome::Erased(r) => Ok(r),
            other => Err(Error::Internal(format!(
                "unexpected writer outcome {other:?}"
            ))),
        }
    }

    /// Writes the aggregates of open visits to their rows (they lag by a few seconds otherwise).
    pub async fn flush(&self) -> Result<()> {
        self.write(Op::Flush).await.map(|_| ())
    }

    /// Deletes personal data older than `cutoff` and refreshes the in-memory state that depended on it.
    pub async fn purge(&self, cutoff: i64, now: i64) -> Result<PurgeReport> {
        match self.write(Op::Purge { cutoff, now }).await? {
            Outcome::Purged(r) => Ok(r),
            other => Err(Error::Internal(format!(
                "unexpected writer outcome {other:?}"
            ))),
        }
    }
}
