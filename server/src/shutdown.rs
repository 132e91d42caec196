//! Turning Ctrl-C and SIGTERM into one future, so the binaries can start a graceful shutdown.

use std::future::Future;

/// Listens for Ctrl-C and SIGTERM from now on, and completes when either arrives.
///
/// The handlers are installed when this is called, not when the future is first polled: a
/// signal that comes after the server has said it is listening, but before it waits for
/// signals, must not meet the default action (which ends the process at once).
pub fn listen() -> impl Future<Output = ()> + Send {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let terminate = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (terminate, interrupt) {
                (Ok(mut terminate), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = terminate.recv() => {}
                        _ = interrupt.recv() => {}
                    }
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!("cannot listen for SIGTERM and Ctrl-C: {e}");
                    std::future::pending::<()>().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!("cannot listen for Ctrl-C: {e}");
            std::future::pending::<()>().await;
        }
    }
}
