//! A test server for pages that need one (`serve = "python3 -m http.server {port}"`): started
//! on a free loopback port before the first page, polled until it answers `ready`, stopped
//! after the last page.
//!
//! It runs in the validator's own process group, so when the coordinator kills the validator
//! (a timeout, say) the server dies with it. Waiting for it has no limit of its own: a server
//! that never answers is the validator hanging, which the coordinator's timeout ends.

use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

/// How often readiness is asked.
const POLL: Duration = Duration::from_millis(100);

/// A running server.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl Server {
    /// Starts `command` (with `{port}` replaced) in `dir` and waits until `GET ready` answers.
    pub async fn start(
        command: &str,
        ready: &str,
        dir: &std::path::Path,
    ) -> Result<Server, String> {
        let port = free_port().await?;
        let line = command.replace("{port}", &port.to_string());
        // `exec` makes a simple command the process itself, so stopping it stops the server.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {line}"))
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("the server command `{line}` cannot be started: {e}"))?;
        let base = format!("http://127.0.0.1:{port}");
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Err(format!(
                    "the server command `{line}` exited ({status}) before answering {base}{ready}"
                ));
            }
            if answers(port, ready).await {
                return Ok(Server { child, base });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A port nobody listens on now.
async fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("no free loopback port for the server: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

/// Whether an HTTP request for `path` gets any HTTP answer.
async fn answers(port: u16, path: &str) -> bool {
    let attempt = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 5];
        stream.read_exact(&mut head).await.ok()?;
        (&head == b"HTTP/").then_some(())
    };
    tokio::time::timeout(Duration::from_secs(2), attempt)
        .await
        .ok()
        .flatten()
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_server_that_exits_at_once_is_an_error_naming_its_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Server::start("false {port}", "/", dir.path())
            .await
            .expect_err("exits");
        assert!(err.contains("`false "), "{err}");
        assert!(err.contains("exited"), "{err}");
    }

    #[tokio::test]
    async fn a_python_server_is_ready_and_stops() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("index.html"), "hi").expect("write");
        let server = Server::start(
            "python3 -m http.server --bind 127.0.0.1 {port}",
            "/",
            dir.path(),
        )
        .await
        .expect("starts");
        let port: u16 = server
            .base
            .rsplit(':')
            .next()
            .expect("port")
            .parse()
            .expect("number");
        assert!(answers(port, "/").await);
        server.stop().await;
        assert!(!answers(port, "/").await);
    }
}
