//! The connection that `LISTEN`s for other servers' edits. It is not one of the pool's: it
//! stays open for the server's life, and a notice is a wake-up only (the change log says what
//! changed), so notices that arrive while one is being handled are folded into one.

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, NoTls};
use tracing::debug;

use super::{CHANNEL, CallError, Database, PgError};

/// A listening connection; dropping it closes the connection.
pub struct Listener {
    /// Kept for the connection's sake: it closes when its last client goes.
    _client: tokio_postgres::Client,
    wakeups: mpsc::Receiver<()>,
}

impl Listener {
    /// Waits for the next notice; `false` once the connection is lost.
    pub async fn changed(&mut self) -> bool {
        self.wakeups.recv().await.is_some()
    }
}

impl Database {
    /// Opens a connection of its own and listens on it.
    pub async fn listen(&self) -> Result<Listener, PgError> {
        self.call("listen", async {
            let (client, wakeups) = self.own_connection().await?;
            client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
            Ok::<_, CallError>(Listener {
                _client: client,
                wakeups,
            })
        })
        .await
    }

    /// A connection outside the pool, closed when its client is dropped (which also ends a
    /// transaction left open on it), and the notices it receives.
    pub(super) async fn own_connection(
        &self,
    ) -> Result<(tokio_postgres::Client, mpsc::Receiver<()>), tokio_postgres::Error> {
        let (client, mut connection) = self.config.connect(NoTls).await?;
        // One pending wake-up is enough: whoever takes it reads every change since.
        let (wake, wakeups) = mpsc::channel(1);
        tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => {
                        let _ = wake.try_send(());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        debug!("a connection of its own ended: {e}");
                        break;
                    }
                }
            }
        });
        Ok((client, wakeups))
    }
}
