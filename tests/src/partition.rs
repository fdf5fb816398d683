//! A network partition between the services and a server, on loopback: a TCP proxy the
//! services connect through, which the test can cut and heal. While cut, no byte crosses in
//! either direction and new connections are held unanswered, as when a network drops packets
//! (not as when a server is down, which refuses at once): a query on an open connection waits,
//! and so does a new connection. Healed, what was held is delivered, as TCP's retransmission
//! does after a short partition.
//!
//! Written here because it is a few lines over tokio; the tools that do this (toxiproxy, tc
//! netem) are a separate daemon or need a network namespace of their own.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy: services connect to [`Partition::port`]; it forwards to the target.
pub struct Partition {
    /// The port services connect to.
    pub port: u16,
    cut: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Partition {
    /// Forward connections to `target`, healed.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, watching) = watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let watching = watching.clone();
                tokio::spawn(async move {
                    healed(&watching).await;
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (a_read, a_write) = inbound.into_split();
                    let (b_read, b_write) = outbound.into_split();
                    tokio::join!(
                        pump(a_read, b_write, watching.clone()),
                        pump(b_read, a_write, watching)
                    );
                });
            }
        });
        Partition { port, cut, task }
    }

    /// From now, nothing crosses.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// From now, everything crosses again, what was held first.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Wait until the partition is healed.
async fn healed(cut: &watch::Receiver<bool>) {
    let mut cut = cut.clone();
    let _ = cut.wait_for(|c| !*c).await;
}

/// Copy one direction, holding each chunk while the partition is cut.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        healed(&cut).await;
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        healed(&cut).await;
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
