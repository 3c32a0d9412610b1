//! [`DatabaseProxy`]: a database server that stops and comes back, played by a TCP proxy.

use std::time::{Duration, Instant};

/// A TCP proxy on a loopback port in front of a database server (PostgreSQL): stopping it plays
/// a database that stops (every connection cut, nothing listening on its port), starting it
/// again a database that comes back on the same port. Used by the journal's tests of a stopped
/// database and by the settle soak's database cuts (`cargo xtask soak --mode settle --database
/// postgres --database-cuts N`).
pub struct DatabaseProxy {
    port: u16,
    upstream: String,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl DatabaseProxy {
    /// A proxy to the server of `url` (`scheme://user:password@host:port/database`), listening.
    /// Panics on a URL without a host: a test fixture's setup.
    pub async fn start(url: &str) -> DatabaseProxy {
        let parsed = url::Url::parse(url).expect("the database URL");
        let upstream = format!(
            "{}:{}",
            parsed.host_str().expect("the database URL's host"),
            parsed.port().unwrap_or(5432)
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("a bound port").port();
        let mut proxy = DatabaseProxy {
            port,
            upstream,
            task: None,
        };
        proxy.serve(listener);
        proxy
    }

    /// `url` with the proxy's address instead of the server's (user, password and database
    /// kept).
    pub fn url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("the database URL");
        url.set_host(Some("127.0.0.1")).expect("a URL with a host");
        url.set_port(Some(self.port)).expect("a URL with a port");
        url.to_string()
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database stops: nothing listens on the port, and every connection is cut.
    pub async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            // Gone once the runtime dropped it: the listener and every connection closed.
            let _ = task.await;
        }
    }

    /// The database is back, on the same port.
    pub async fn restart(&mut self) {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match socket.bind(([127, 0, 0, 1], self.port).into()) {
                Ok(()) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("rebind port {}: {e}", self.port),
            }
        }
        let listener = socket.listen(64).expect("listen");
        self.serve(listener);
    }

    /// Every connection cut, nothing listening for `down` (connections refused), then the port
    /// listening again: a server that restarted.
    pub async fn cut(&mut self, down: Duration) {
        self.stop().await;
        tokio::time::sleep(down).await;
        self.restart().await;
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let upstream = self.upstream.clone();
        self.task = Some(tokio::spawn(async move {
            // Every connection's copy runs in this set: aborting the task drops them all.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { continue };
                        let upstream = upstream.clone();
                        connections.spawn(async move {
                            if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                    Some(_) = connections.join_next(), if !connections.is_empty() => {}
                }
            }
        }));
    }
}

impl Drop for DatabaseProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
