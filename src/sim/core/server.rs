//! Simulator core: the HTTP server's life — binding (port 0 allowed) to a loopback base URL,
//! serving an axum router, and the shutdown signal every background task of a simulator
//! watches.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Stops a simulator's server and tasks; clones share it.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::new()
    }
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    /// Asks everything watching to stop.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`Shutdown::trigger`] was called (at once if it already was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|stopped| *stopped).await;
    }
}

/// A bound listener and the base URL clients use to reach it.
pub struct Bound {
    listener: TcpListener,
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT` (loopback when bound to an unspecified address).
    pub base_url: String,
}

/// Binds `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> std::io::Result<Bound> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let host = if local.ip().is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        local.ip()
    };
    let base_url = format!("http://{}", SocketAddr::new(host, local.port()));
    Ok(Bound {
        listener,
        addr: local,
        base_url,
    })
}

impl Bound {
    /// Serves `app` on the current runtime until `shutdown` triggers (in-flight requests
    /// finish). `name` labels the log line if the server stops on an error.
    pub fn serve(self, app: Router, shutdown: Shutdown, name: &'static str) {
        tokio::spawn(async move {
            let stop = async move { shutdown.wait().await };
            if let Err(e) = axum::serve(self.listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!(sim = name, error = %e, "simulator server stopped");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_until_shutdown() {
        let bound = bind("0.0.0.0:0".parse().expect("addr"))
            .await
            .expect("bind");
        assert!(bound.base_url.starts_with("http://127.0.0.1:"));
        let base = bound.base_url.clone();
        let stop = Shutdown::new();
        let app = Router::new().route("/ping", axum::routing::get(|| async { "pong" }));
        bound.serve(app, stop.clone(), "test");
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let body = http
            .get(format!("{base}/ping"))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("body");
        assert_eq!(body, "pong");
        assert!(!stop.is_triggered());
        stop.trigger();
        stop.wait().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            // once the listener is closed, new connections are refused
            if http.get(format!("{base}/ping")).send().await.is_err() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "server still answers");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
