//! Where variants are made: at most `workers` at once (one per core by default) on tokio's
//! blocking threads, never on the async workers that serve connections, with at most `queue`
//! more waiting for a turn. A job beyond that is refused at once (*busy*) rather than queued
//! without bound, and one that has not started by its deadline is dropped unstarted.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Pool {
    /// One permit per job running.
    running: Arc<Semaphore>,
    /// One permit per job running or waiting.
    admitted: Arc<Semaphore>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    #[error("too many variants are being made at once; try again later")]
    Busy,
    #[error("the variant waited for a free thread past its deadline")]
    Deadline,
    #[error("making the variant failed unexpectedly")]
    Failed,
}

impl Pool {
    pub fn new(workers: usize, queue: usize) -> Pool {
        let workers = workers.max(1);
        Pool {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + queue)),
        }
    }

    /// A place among the jobs running or waiting, or *busy* at once: taken before anything
    /// is read for the job, so that a full pool also bounds what jobs hold while they wait.
    pub fn admit(&self) -> Result<Admitted, PoolError> {
        let admitted = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| PoolError::Busy)?;
        Ok(Admitted {
            admitted,
            running: self.running.clone(),
        })
    }

    /// Runs `work` on a pool thread and returns what it returns.
    #[cfg(test)]
    pub async fn run<T: Send + 'static>(
        &self,
        deadline: Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        self.admit()?.run(deadline, work).await
    }
}

/// A job admitted to the pool, not yet running.
pub struct Admitted {
    admitted: OwnedSemaphorePermit,
    running: Arc<Semaphore>,
}

impl Admitted {
    /// Waits for a free thread (until `deadline`), runs `work` there and returns what it
    /// returns.
    pub async fn run<T: Send + 'static>(
        self,
        deadline: Instant,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let running = tokio::time::timeout_at(deadline.into(), self.running.acquire_owned())
            .await
            .map_err(|_| PoolError::Deadline)?
            .map_err(|_| PoolError::Failed)?;
        let admitted = self.admitted;
        tokio::task::spawn_blocking(move || {
            // Held until the work is done, even when whoever waits for it has gone.
            let _permits = (admitted, running);
            work()
        })
        .await
        .map_err(|_| PoolError::Failed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn jobs_beyond_the_workers_and_the_queue_are_refused_at_once() {
        let pool = Arc::new(Pool::new(1, 1));
        let far = Instant::now() + Duration::from_secs(60);
        let (release, held) = mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(far, move || {
                    let _ = started.send(());
                    held.recv().is_ok()
                })
                .await
            }
        });
        assert_eq!(running.await, Ok(()));
        // The worker is taken: one more waits in the queue, the next is refused.
        let second = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(far, || 2).await }
        });
        while pool.admitted.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(pool.run(far, || 3).await, Err(PoolError::Busy));
        assert_eq!(release.send(()), Ok(()));
        assert_eq!(first.await.ok(), Some(Ok(true)));
        assert_eq!(second.await.ok(), Some(Ok(2)));
        assert_eq!(pool.run(far, || 4).await, Ok(4));
    }

    #[tokio::test]
    async fn a_job_that_cannot_start_before_its_deadline_is_dropped() {
        let pool = Arc::new(Pool::new(1, 4));
        let (release, held) = mpsc::channel::<()>();
        let far = Instant::now() + Duration::from_secs(60);
        let blocker = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(far, move || held.recv().is_ok()).await }
        });
        while pool.running.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(pool.run(soon, || 1).await, Err(PoolError::Deadline));
        assert_eq!(release.send(()), Ok(()));
        assert_eq!(blocker.await.ok(), Some(Ok(true)));
    }
}
