//! Background tasks a service runs beside its main work, supervised: none can end unnoticed.
//! A task that returns or panics while the service runs is reported by
//! [`Supervisor::next_exit`] (the service then stops, saying which task and how); at shutdown
//! [`Supervisor::join`] waits for every task for a bounded time and names any that panicked or
//! did not finish.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::{Id, JoinSet};

/// A set of named background tasks.
#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<()>,
    names: HashMap<Id, &'static str>,
}

impl Supervisor {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Run `task` in the background under `name`.
    pub fn spawn(&mut self, name: &'static str, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.tasks.spawn(task);
        self.names.insert(handle.id(), name);
    }

    /// Wait until a task ends, and describe how: for a service, any task ending before it was
    /// asked to stop is a failure. Pending forever when there are no tasks.
    pub async fn next_exit(&mut self) -> anyhow::Error {
        match self.tasks.join_next_with_id().await {
            Some(Ok((id, ()))) => {
                anyhow::anyhow!("the {} task stopped before the service did", self.name(id))
            }
            Some(Err(e)) => {
                let name = self.name(e.id());
                if e.is_panic() {
                    anyhow::anyhow!("the {name} task panicked (logged above)")
                } else {
                    anyhow::anyhow!("the {name} task was cancelled")
                }
            }
            None => std::future::pending().await,
        }
    }

    /// Wait for every task to finish (each must have been asked to stop), for at most
    /// `timeout`. Tasks still running then are aborted. Errors name the tasks that panicked
    /// or did not finish in time.
    pub async fn join(mut self, timeout: Duration) -> anyhow::Result<()> {
        let mut failed = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(None) => break,
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(e))) => failed.push(format!("{} panicked", self.name(e.id()))),
                Err(_) => {
                    let names: Vec<&str> = self.names.values().copied().collect();
                    tracing::error!(tasks = ?names, "tasks did not stop in time; aborting them");
                    self.tasks.abort_all();
                    failed.push(format!("did not stop within {timeout:?}"));
                    break;
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(anyhow::anyhow!("background tasks: {}", failed.join("; ")))
        }
    }

    fn name(&mut self, id: Id) -> &'static str {
        self.names.remove(&id).unwrap_or("unnamed")
    }
}

/// Run `pass` now and then every `period` until `stop` turns true; a pass in progress is not
/// interrupted. The loop every periodic task of a service shares.
pub async fn periodically<F, Fut>(period: Duration, stop: watch::Receiver<bool>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    repeatedly(stop, || {
        let pass = pass();
        async move {
            pass.await;
            period
        }
    })
    .await
}

/// [`periodically`] for a task that says after each pass how long to wait before the next
/// (the deadline clock, which sleeps until the next due instant).
pub async fn repeatedly<F, Fut>(mut stop: watch::Receiver<bool>, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Duration>,
{
    loop {
        if *stop.borrow() {
            return;
        }
        let wait = pass().await;
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_or_returns_early_is_reported_by_name() {
        let mut tasks = Supervisor::new();
        tasks.spawn("forever", std::future::pending());
        tasks.spawn("faulty", async { panic!("boom") });
        let failure = tasks.next_exit().await.to_string();
        assert!(
            failure.contains("faulty") && failure.contains("panicked"),
            "{failure}"
        );
        tasks.spawn("brief", async {});
        let failure = tasks.next_exit().await.to_string();
        assert!(
            failure.contains("brief") && failure.contains("stopped"),
            "{failure}"
        );
        // The one never asked to stop does not finish in time.
        let joined = tasks.join(Duration::from_millis(50)).await;
        assert!(joined.unwrap_err().to_string().contains("did not stop"));
    }

    #[tokio::test]
    async fn periodically_runs_until_stopped() {
        let (stop_tx, stop) = watch::channel(false);
        let mut runs = 0;
        periodically(Duration::from_millis(1), stop, || {
            runs += 1;
            if runs == 3 {
                let _ = stop_tx.send(true);
            }
            async {}
        })
        .await;
        assert_eq!(runs, 3);
    }
}
