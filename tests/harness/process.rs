//! A real `ferry run` process for the crash tests: spawned with a config file and the hub's
//! URL, killed (SIGKILL) by the test or when dropped, so a failing test leaves nothing behind.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A TCP port nobody listens on right now (for ferry's webhook listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The running ferry process; killed when dropped.
pub struct Ferry(Child);

impl Ferry {
    /// Starts `ferry --config <config> run` against the hub at `url`, with `env` (the
    /// connections' secrets). Logs follow `FERRY_LOG` (off by default).
    pub fn spawn(config: &Path, url: &str, env: &[(&str, &str)]) -> Ferry {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
        cmd.arg("--config")
            .arg(config)
            .arg("run")
            .env("FERRY_DATABASE_URL", url)
            .env(
                "FERRY_LOG",
                std::env::var("FERRY_LOG").unwrap_or_else(|_| "off".into()),
            )
            .stdout(Stdio::null())
            .stderr(if std::env::var("FERRY_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (k, v) in env {
            cmd.env(k, v);
        }
        Ferry(cmd.spawn().expect("ferry starts"))
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().unwrap();
    }
}

impl Drop for Ferry {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A fresh scratch directory for one test's config file.
pub fn scratch_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "ferry-{tag}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
