//! The hub, embedded: a private PostgreSQL cluster (system binaries) under ferry's data
//! directory, `wal_level=logical`, loopback only, sized for bulk sync (256 MB of shared buffers,
//! checkpoints at most every 4 GB of WAL or 15 minutes). Used when no `FERRY_DATABASE_URL` is given,
//! and by the test harness.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why the embedded server could not be started. Never retried automatically.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("PostgreSQL server programs (initdb, pg_ctl) were not found: install the Debian `postgresql` package (apt-get install -y postgresql) or put them on PATH")]
    NoBinaries,
    #[error("{0}")]
    Io(String),
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
}

/// A running private cluster. Stopped on `stop()` or drop.
pub struct EmbeddedPg {
    /// Where the cluster's files are: the chosen data directory, or (as root, when the
    /// `postgres` user cannot reach it) a directory under [`RELOCATED_ROOT`].
    pub dir: PathBuf,
    /// The chosen data directory, when the cluster lives elsewhere (see `dir`).
    pub relocated_from: Option<PathBuf>,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
    stopped: AtomicBool,
    /// True when this handle started the server (false when it adopted a running one).
    owned: bool,
}

pub const SUPERUSER: &str = "postgres";

/// Where, as root, a cluster goes when the `postgres` user cannot reach the chosen directory
/// (a clone in root's 0700 home): one directory per chosen directory, named after it.
pub const RELOCATED_ROOT: &str = "/var/lib/ferry";

/// The file in the chosen directory that names where its cluster went.
const LOCATION_FILE: &str = "pg-location";

/// FNV-1a of a path: a short, stable name for a relocated cluster's directory.
fn path_hash(p: &Path) -> u64 {
    p.to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Finds the directory holding `pg_ctl` and `initdb`: PATH first, then Debian's layout.
pub fn find_bin_dir() -> Result<PathBuf, EmbeddedError> {
    if let Ok(path) = std::env::var("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("pg_ctl").is_file() && dir.join("initdb").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| EmbeddedError::NoBinaries)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, b)| b)
        .ok_or(EmbeddedError::NoBinaries)
}

fn free_port() -> Result<u16, EmbeddedError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| EmbeddedError::Io(format!("no free port: {e}")))?;
    Ok(l.local_addr()
        .map_err(|e| EmbeddedError::Io(e.to_string()))?
        .port())
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

impl EmbeddedPg {
    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, what: &str, mut cmd: Command) -> Result<String, EmbeddedError> {
        let out = cmd.output().map_err(|e| EmbeddedError::Command {
            what: what.into(),
            detail: e.to_string(),
        })?;
        if !out.status.success() {
            let mut detail = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if detail.is_empty() {
                detail = String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            return Err(EmbeddedError::Command {
                what: what.into(),
                detail,
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    }

    fn pgdata(&self) -> PathBuf {
        self.dir.join("pg")
    }

    /// Initialises the cluster on first use, then starts it (or adopts one left running by a
    /// previous ferry process that was killed) and waits until it accepts connections.
    pub fn start(dir: &Path) -> Result<EmbeddedPg, EmbeddedError> {
        let bin = find_bin_dir()?;
        std::fs::create_dir_all(dir)
            .map_err(|e| EmbeddedError::Io(format!("cannot create {}: {e}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(|e| EmbeddedError::Io(format!("{}: {e}", dir.display())))?;
        let mut relocated_from = None;
        let dir = if is_root() {
            match std::fs::read_to_string(dir.join(LOCATION_FILE)) {
                // placed elsewhere by an earlier start
                Ok(place) => {
                    relocated_from = Some(dir.clone());
                    PathBuf::from(place.trim())
                }
                Err(_) if !postgres_reaches(&dir)? => {
                    let place = Path::new(RELOCATED_ROOT).join(format!(
                        "{}-{:016x}",
                        dir.file_name()
                            .map(|n| n.to_string_lossy().trim_start_matches('.').to_string())
                            .filter(|n| !n.is_empty())
                            .unwrap_or_else(|| "data".into()),
                        path_hash(&dir)
                    ));
                    std::fs::create_dir_all(&place).map_err(|e| {
                        EmbeddedError::Io(format!("cannot create {}: {e}", place.display()))
                    })?;
                    std::fs::write(dir.join(LOCATION_FILE), place.display().to_string())
                        .map_err(|e| EmbeddedError::Io(format!("{}: {e}", dir.display())))?;
                    relocated_from = Some(dir.clone());
                    place
                }
                Err(_) => dir,
            }
        } else {
            dir
        };
        let mut pg = EmbeddedPg {
            dir,
            relocated_from,
            bin,
            port: 0,
            as_postgres: is_root(),
            stopped: AtomicBool::new(false),
            owned: true,
        };
        let pgdata = pg.pgdata();
        if pg.as_postgres {
            pg.prepare_for_postgres_user()?;
        }
        if !pgdata.join("PG_VERSION").exists() {
            pg.initdb()?;
        }
        if let Some(port) = pg.running_port() {
            pg.port = port;
            pg.owned = false;
            return Ok(pg);
        }
        let configured = pg.configured_port();
        pg.port = match configured {
            Some(p) if port_free(p) => p,
            _ => free_port()?,
        };
        let mut cmd = pg.command("pg_ctl");
        cmd.arg("start")
            .arg("-w")
            .arg("-t")
            .arg("60")
            .arg("-D")
            .arg(&pgdata)
            .arg("-l")
            .arg(pg.dir.join("postgres.log"));
        cmd.arg("-o").arg(format!("-p {}", pg.port));
        pg.run("pg_ctl start", cmd).map_err(|e| match e {
            EmbeddedError::Command { what, detail } => EmbeddedError::Command {
                what,
                detail: format!("{detail} (see {})", pg.dir.join("postgres.log").display()),
            },
            other => other,
        })?;
        Ok(pg)
    }

    /// Where the cluster lives, said once at start: the chosen directory, or where it went.
    pub fn banner(&self) -> String {
        match &self.relocated_from {
            Some(chosen) => format!(
                "its data is in {} (the postgres user cannot reach {}; {} there names the place)",
                self.dir.display(),
                chosen.display(),
                LOCATION_FILE
            ),
            None => format!("its data is in {}", self.dir.display()),
        }
    }

    fn prepare_for_postgres_user(&self) -> Result<(), EmbeddedError> {
        // the server refuses to run as root: it runs as `postgres`, who must own the data dir
        // and be able to reach it
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&self.dir)
            .status()
            .map_err(|e| EmbeddedError::Io(format!("chown: {e}")))?;
        if !status.success() {
            return Err(EmbeddedError::Io(format!(
                "cannot give {} to the postgres user (is the Debian postgresql package installed?)",
                self.dir.display()
            )));
        }
        let reach = Command::new("runuser")
            .args(["-u", "postgres", "--", "test", "-w"])
            .arg(&self.dir)
            .status()
            .map_err(|e| EmbeddedError::Io(format!("runuser: {e}")))?;
        if !reach.success() {
            return Err(EmbeddedError::Io(format!(
                "the postgres user cannot reach {} (a parent directory is private): choose a data directory under /var/lib or /tmp with --data-dir",
                self.dir.display()
            )));
        }
        Ok(())
    }

    fn initdb(&self) -> Result<(), EmbeddedError> {
        let pgdata = self.pgdata();
        let mut cmd = self.command("initdb");
        cmd.arg("-D").arg(&pgdata).args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-instructions",
        ]);
        self.run("initdb", cmd)?;
        let port = free_port()?;
        let conf = format!(
            "\n# ferry embedded hub\nport = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             wal_level = logical\nmax_wal_senders = 40\nmax_replication_slots = 40\nmax_connections = 200\n\
             max_slot_wal_keep_size = '4GB'\nwal_sender_timeout = '60s'\n\
             shared_buffers = '256MB'\nmax_wal_size = '4GB'\ncheckpoint_timeout = '15min'\n"
        );
        let path = pgdata.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&path)
            .map_err(|e| EmbeddedError::Io(format!("{}: {e}", path.display())))?;
        text.push_str(&conf);
        // written as root when root: keep the owner
        std::fs::write(&path, text)
            .map_err(|e| EmbeddedError::Io(format!("{}: {e}", path.display())))?;
        Ok(())
    }

    fn configured_port(&self) -> Option<u16> {
        let text = std::fs::read_to_string(self.pgdata().join("postgresql.conf")).ok()?;
        text.lines()
            .rev()
            .filter_map(|l| l.trim().strip_prefix("port = "))
            .find_map(|v| v.trim().parse().ok())
    }

    /// The port of a server already running on this data directory, if any.
    fn running_port(&self) -> Option<u16> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("status").arg("-D").arg(self.pgdata());
        self.run("pg_ctl status", cmd).ok()?;
        let pid = std::fs::read_to_string(self.pgdata().join("postmaster.pid")).ok()?;
        pid.lines().nth(3)?.trim().parse().ok()
    }

    /// `postgres://postgres@127.0.0.1:PORT/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates a database unless it exists.
    pub async fn ensure_database(&self, db: &str) -> Result<(), EmbeddedError> {
        let (client, conn) = tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
            .await
            .map_err(|e| EmbeddedError::Io(format!("cannot reach the embedded server: {e}")))?;
        tokio::spawn(conn);
        let exists = client
            .query_opt("select 1 from pg_database where datname = $1", &[&db])
            .await
            .map_err(|e| EmbeddedError::Io(e.to_string()))?
            .is_some();
        if !exists {
            let sql = format!(
                "create database {}",
                postgres_protocol::escape::escape_identifier(db)
            );
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| EmbeddedError::Io(format!("{sql}: {e}")))?;
        }
        Ok(())
    }

    /// Fast shutdown; idempotent. A server adopted from an earlier run is stopped too.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut cmd = self.command("pg_ctl");
        cmd.arg("stop")
            .arg("-m")
            .arg("fast")
            .arg("-w")
            .arg("-D")
            .arg(self.pgdata());
        let _ = self.run("pg_ctl stop", cmd);
    }

    /// Whether this handle started the server itself.
    pub fn owned(&self) -> bool {
        self.owned
    }
}

impl Drop for EmbeddedPg {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the `postgres` user can reach (traverse to and list) `dir`.
fn postgres_reaches(dir: &Path) -> Result<bool, EmbeddedError> {
    Ok(Command::new("runuser")
        .args(["-u", "postgres", "--", "test", "-x"])
        .arg(dir)
        .status()
        .map_err(|e| EmbeddedError::Io(format!("runuser: {e}")))?
        .success())
}
