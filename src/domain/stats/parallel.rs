//! A dashboard's set of queries answered on several sources at once, one per core: the rows each
//! period needs (the rows path) are loaded first, the periods spread over the workers, then each query
//! goes to whichever worker is free. A 12-month dashboard spends its time counting distinct visitor
//! numbers query by query, and a page-filtered one reading two periods' rows: both split well.
//!
//! The storage gives every worker a connection on the same snapshot of the database, so the answers
//! are those one connection would have given, panel for panel.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::engine::{self, Answer, Cached, Source};
use super::facts::{Facts, FactsRequest};
use super::query::Query;
use crate::error::Result;

/// Answers `queries` in order, using every source in `workers` (at least one) on a thread of its own.
pub fn run_batch<S: Source + Send>(workers: &mut [S], queries: &[Query]) -> Vec<Result<Answer>> {
    let Some(first) = workers.first() else {
        return Vec::new();
    };
    if workers.len() == 1 || queries.len() < 2 {
        return engine::run_batch(first, queries);
    }
    let all: Vec<&Query> = queries.iter().collect();
    let planned = engine::plan(&all);
    let loaded = load(workers, &planned);

    let next = AtomicUsize::new(0);
    let mut answers: Vec<Option<Result<Answer>>> = queries.iter().map(|_| None).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter_mut()
            .map(|source| {
                let (next, planned, loaded) = (&next, &planned, &loaded);
                scope.spawn(move || {
                    let cached = Cached::preloaded(&*source, planned.clone(), loaded.clone());
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(q) = queries.get(i) else { break };
                        done.push((i, engine::answer(&cached, q)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            let done = handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            for (i, answer) in done {
                answers[i] = Some(answer);
            }
        }
    });
    answers
        .into_iter()
        .map(|a| {
            // Every index below queries.len() was taken by exactly one worker, and every worker
            // was joined (a panicking one re-raised its panic above).
            a.expect("each query answered by one worker")
        })
        .collect()
}

/// Loads the planned rows, the requests dealt to the workers in turn. A request that fails is left
/// out: the query that needs it asks its worker again and gets the error as its answer.
fn load<S: Source + Send>(
    workers: &mut [S],
    planned: &[FactsRequest],
) -> Vec<(FactsRequest, Arc<Facts>)> {
    if planned.is_empty() {
        return Vec::new();
    }
    let n = workers.len();
    std::thread::scope(|scope| {
        let handles: Vec<_> = workers
            .iter_mut()
            .enumerate()
            .take(planned.len())
            .map(|(w, source)| {
                scope.spawn(move || {
                    planned
                        .iter()
                        .skip(w)
                        .step_by(n)
                        .filter_map(|req| source.facts(req).ok().map(|f| (req.clone(), f)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
