//! Group commit: many concurrent writers hand their rows to one task, which writes every row
//! that queued up while its previous transaction ran in one transaction, then tells each
//! writer its own result. Each writer still waits for its own commit, so durability is
//! unchanged; under load many writes share one fsync instead of queueing for one each
//! (SQLite has a single writer; its busy-wait between competing connections is slow).
//! PERF-RELIABILITY.md section 1.2 measured this design at 7 348 durable requests/s here.

use std::future::Future;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};

type Reply<R> = oneshot::Sender<Result<R, String>>;

pub struct GroupCommit<T, R> {
    queue: mpsc::Sender<(T, Reply<R>)>,
}

impl<T: Send + 'static, R: Send + 'static> GroupCommit<T, R> {
    /// Starts `writers` writer tasks (1 for SQLite, whose writes are serial anyway; a few for
    /// PostgreSQL, so one batch's round trips overlap the next batch's). `commit` writes a
    /// batch (at most `max` rows) in one transaction and returns one result per row, in order.
    pub fn start<F, Fut>(max: usize, writers: usize, commit: F) -> Self
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<R, String>>> + Send,
    {
        let (queue, rx) = mpsc::channel::<(T, Reply<R>)>(4 * max);
        let rx = Arc::new(Mutex::new(rx));
        let commit = Arc::new(commit);
        for _ in 0..writers.max(1) {
            let (rx, commit) = (rx.clone(), commit.clone());
            tokio::spawn(async move {
                loop {
                    // Take whatever has queued up (waiting for at least one row), then let the
                    // next writer take the rows that arrive meanwhile.
                    let (items, replies) = {
                        let mut rx = rx.lock().await;
                        let Some((item, reply)) = rx.recv().await else { return };
                        let mut items = vec![item];
                        let mut replies = vec![reply];
                        while items.len() < max {
                            match rx.try_recv() {
                                Ok((item, reply)) => {
                                    items.push(item);
                                    replies.push(reply);
                                }
                                Err(_) => break,
                            }
                        }
                        (items, replies)
                    };
                    write_batch(&*commit, items, replies).await;
                }
            });
        }
        Self { queue }
    }

    /// Writes one row; returns once it is committed (or why it could not be).
    pub async fn write(&self, item: T) -> Result<R, String> {
        let (tx, rx) = oneshot::channel();
        self.queue.send((item, tx)).await.map_err(|_| "the writer task has stopped".to_string())?;
        rx.await.map_err(|_| "the writer task has stopped".to_string())?
    }
}

async fn write_batch<T, R, F, Fut>(commit: &F, items: Vec<T>, replies: Vec<Reply<R>>)
where
    F: Fn(Vec<T>) -> Fut,
    Fut: Future<Output = Vec<Result<R, String>>>,
{
    let n = items.len();
    let mut results = commit(items).await.into_iter();
    for reply in replies {
        let r = results.next().unwrap_or_else(|| Err(format!("the batch of {n} returned too few results")));
        // The writer may have given up waiting (its request was cancelled); the row is
        // committed either way.
        let _ = reply.send(r);
    }
}
