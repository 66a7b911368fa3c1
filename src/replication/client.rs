//! Outbound path, first hop: a walsender client over TCP, in TLS as the hub URL's sslmode says
//! (SSLRequest, then rustls with the settings every hub connection uses; startup, auth, simple
//! queries, CopyBoth streaming, standby status updates). tokio-postgres cannot stream
//! replication, so the framing is ours; postgres-protocol supplies the message builders and
//! SCRAM.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::hub::{Hub, SslMode};

/// The connection's byte stream: plain TCP or TLS over it.
trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// Errors of the replication connection.
#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    /// The connection broke or the server went away: reconnect with backoff.
    #[error("replication connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused something (slot in use, missing publication...): retry after a delay.
    #[error("server error {code}: {message}")]
    Server { code: String, message: String },
    /// We could not understand the server: a bug; retry with backoff, and report it.
    #[error("replication protocol: {0}")]
    Protocol(String),
    /// Never retried without operator action.
    #[error("replication authentication: {0}")]
    Auth(String),
    #[error("hub: {}", crate::hub::chain(.0))]
    Hub(#[from] tokio_postgres::Error),
    /// A hub session could not be opened (see [`crate::hub::HubError`] for what to retry).
    #[error("{0}")]
    Session(#[from] crate::hub::HubError),
    /// TLS could not be set up as sslmode asks: never retried away; the operator fixes the URL
    /// or the server.
    #[error("replication connection: {0}")]
    Tls(String),
    /// Another process leads this slot: stand by and try again in a second.
    #[error("another ferry process reads this slot")]
    NotLeader,
}

/// One message of the replication stream.
#[derive(Debug)]
pub enum StreamMessage {
    /// `w`: WAL data carrying one pgoutput message.
    XLogData { start: u64, end: u64, data: Bytes },
    /// `k`: the server's WAL end; `reply` asks for a status update now.
    Keepalive { wal_end: u64, reply: bool },
}

pub struct ReplicationClient {
    stream: Box<dyn ByteStream>,
    read: BytesMut,
    write: BytesMut,
}

/// Microseconds since 2000-01-01, the protocol's clock.
fn pg_clock() -> i64 {
    const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
    chrono::Utc::now().timestamp_micros() - PG_EPOCH_OFFSET_US
}

fn server_error(mut body: Bytes) -> ReplicationError {
    let (mut code, mut message) = (String::new(), String::new());
    while body.has_remaining() {
        let field = body.get_u8();
        if field == 0 {
            break;
        }
        let end = body.iter().position(|b| *b == 0).unwrap_or(body.len());
        let value = String::from_utf8_lossy(&body[..end]).to_string();
        body.advance((end + 1).min(body.len()));
        match field {
            b'C' => code = value,
            b'M' => message = value,
            _ => {}
        }
    }
    ReplicationError::Server { code, message }
}

/// SSLRequest, then the TLS handshake (unless sslmode is disable; with prefer, a server that
/// declines TLS gets the plain stream).
async fn start_tls(
    mut tcp: TcpStream,
    hub: &Hub,
    host: &str,
) -> Result<Box<dyn ByteStream>, ReplicationError> {
    let mode = hub.tls.mode;
    if mode == SslMode::Disable {
        return Ok(Box::new(tcp));
    }
    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    tcp.write_all(&request).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    match answer[0] {
        b'S' => {}
        b'N' if mode == SslMode::Prefer => return Ok(Box::new(tcp)),
        b'N' => {
            return Err(ReplicationError::Tls(
                hub.tls
                    .explain("server does not support TLS", host)
                    .unwrap_or_default(),
            ))
        }
        other => {
            return Err(ReplicationError::Protocol(format!(
                "unexpected answer {other} to SSLRequest"
            )))
        }
    }
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| ReplicationError::Tls(format!("host {host} is not a TLS server name: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(hub.tls_config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| {
            let text = crate::hub::chain(&e);
            ReplicationError::Tls(match hub.tls.explain(&text, host) {
                Some(why) => format!("{why} ({text})"),
                None => format!("TLS handshake: {text}"),
            })
        })?;
    Ok(Box::new(tls))
}

impl ReplicationClient {
    /// Opens a `replication=database` connection to the hub, in TLS as its sslmode says, and
    /// authenticates (trust, cleartext, md5, SCRAM-SHA-256).
    pub async fn connect(hub: &Hub, application_name: &str) -> Result<Self, ReplicationError> {
        let config = &hub.config;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_string();
        let db = config.get_dbname().unwrap_or(&user).to_string();
        let password = config.get_password().map(|p| p.to_vec());
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let stream = start_tls(tcp, hub, &host).await?;
        let mut c = ReplicationClient {
            stream,
            read: BytesMut::with_capacity(1 << 16),
            write: BytesMut::new(),
        };
        frontend::startup_message(
            [
                ("user", user.as_str()),
                ("database", db.as_str()),
                ("replication", "database"),
                ("application_name", application_name),
                ("options", "-c TimeZone=UTC"),
            ],
            &mut c.write,
        )
        .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
        c.flush().await?;
        c.authenticate(&user, password.as_deref()).await?;
        Ok(c)
    }

    async fn authenticate(
        &mut self,
        user: &str,
        password: Option<&[u8]>,
    ) -> Result<(), ReplicationError> {
        let mut scram: Option<ScramSha256> = None;
        loop {
            let (tag, mut body) = self.read_frame().await?;
            match tag {
                b'R' => {
                    let code = body.get_i32();
                    let need = || {
                        password.ok_or_else(|| {
                            ReplicationError::Auth(
                                "the server wants a password and the URL has none".into(),
                            )
                        })
                    };
                    match code {
                        0 => {}
                        3 => {
                            frontend::password_message(need()?, &mut self.write)
                                .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
                            self.flush().await?;
                        }
                        5 => {
                            let salt = [body[0], body[1], body[2], body[3]];
                            let hash = postgres_protocol::authentication::md5_hash(
                                user.as_bytes(),
                                need()?,
                                salt,
                            );
                            frontend::password_message(hash.as_bytes(), &mut self.write)
                                .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
                            self.flush().await?;
                        }
                        10 => {
                            let s = ScramSha256::new(need()?, ChannelBinding::unsupported());
                            frontend::sasl_initial_response(
                                "SCRAM-SHA-256",
                                s.message(),
                                &mut self.write,
                            )
                            .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
                            self.flush().await?;
                            scram = Some(s);
                        }
                        11 => {
                            let s = scram.as_mut().ok_or_else(|| {
                                ReplicationError::Protocol("SASL continue before start".into())
                            })?;
                            s.update(&body)
                                .map_err(|e| ReplicationError::Auth(e.to_string()))?;
                            frontend::sasl_response(s.message(), &mut self.write)
                                .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
                            self.flush().await?;
                        }
                        12 => {
                            let mut s = scram.take().ok_or_else(|| {
                                ReplicationError::Protocol("SASL final before start".into())
                            })?;
                            s.finish(&body)
                                .map_err(|e| ReplicationError::Auth(e.to_string()))?;
                        }
                        other => {
                            return Err(ReplicationError::Auth(format!(
                                "unsupported authentication method {other}"
                            )))
                        }
                    }
                }
                b'E' => return Err(server_error(body)),
                b'Z' => return Ok(()),
                _ => {} // ParameterStatus, BackendKeyData, notices
            }
        }
    }

    async fn flush(&mut self) -> Result<(), ReplicationError> {
        self.stream.write_all(&self.write).await?;
        self.stream.flush().await?;
        self.write.clear();
        Ok(())
    }

    /// True when a whole frame is already buffered (reading it will not wait on the socket).
    pub fn has_buffered_frame(&self) -> bool {
        self.read.len() >= 5 && {
            let len = u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]])
                as usize;
            self.read.len() > len
        }
    }

    async fn read_frame(&mut self) -> Result<(u8, Bytes), ReplicationError> {
        loop {
            if self.read.len() >= 5 {
                let len =
                    u32::from_be_bytes([self.read[1], self.read[2], self.read[3], self.read[4]])
                        as usize;
                if len < 4 {
                    return Err(ReplicationError::Protocol(format!(
                        "bad frame length {len}"
                    )));
                }
                if self.read.len() > len {
                    let tag = self.read[0];
                    let mut frame = self.read.split_to(1 + len);
                    frame.advance(5);
                    return Ok((tag, frame.freeze()));
                }
                self.read.reserve(1 + len - self.read.len());
            }
            if self.stream.read_buf(&mut self.read).await? == 0 {
                return Err(ReplicationError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the server closed the replication connection",
                )));
            }
        }
    }

    /// Runs one simple query; returns its rows as text.
    pub async fn simple_query(
        &mut self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, ReplicationError> {
        frontend::query(sql, &mut self.write)
            .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
        self.flush().await?;
        let mut rows = vec![];
        let mut error = None;
        loop {
            let (tag, mut body) = self.read_frame().await?;
            match tag {
                b'D' => {
                    let n = body.get_i16();
                    let mut row = Vec::with_capacity(n as usize);
                    for _ in 0..n {
                        let len = body.get_i32();
                        if len < 0 {
                            row.push(None);
                        } else {
                            row.push(Some(
                                String::from_utf8_lossy(&body[..len as usize]).to_string(),
                            ));
                            body.advance(len as usize);
                        }
                    }
                    rows.push(row);
                }
                b'E' => error = Some(server_error(body)),
                b'Z' => return error.map_or(Ok(rows), Err),
                _ => {}
            }
        }
    }

    /// Sends START_REPLICATION and waits for the CopyBoth response.
    pub async fn start_replication(&mut self, command: &str) -> Result<(), ReplicationError> {
        frontend::query(command, &mut self.write)
            .map_err(|e| ReplicationError::Protocol(e.to_string()))?;
        self.flush().await?;
        loop {
            let (tag, body) = self.read_frame().await?;
            match tag {
                b'W' => return Ok(()),
                b'E' => return Err(server_error(body)),
                _ => {}
            }
        }
    }

    /// The next stream message.
    pub async fn next(&mut self) -> Result<StreamMessage, ReplicationError> {
        loop {
            let (tag, mut body) = self.read_frame().await?;
            match tag {
                b'd' => match body.first() {
                    Some(b'w') if body.len() >= 25 => {
                        body.advance(1);
                        let start = body.get_u64();
                        let end = body.get_u64();
                        body.advance(8);
                        return Ok(StreamMessage::XLogData {
                            start,
                            end,
                            data: body,
                        });
                    }
                    Some(b'k') if body.len() >= 18 => {
                        body.advance(1);
                        let wal_end = body.get_u64();
                        body.advance(8);
                        return Ok(StreamMessage::Keepalive {
                            wal_end,
                            reply: body.get_u8() == 1,
                        });
                    }
                    _ => {
                        return Err(ReplicationError::Protocol(
                            "unknown CopyData message".into(),
                        ))
                    }
                },
                b'E' => return Err(server_error(body)),
                b'c' => {
                    return Err(ReplicationError::Io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the server ended the stream",
                    )))
                }
                _ => {}
            }
        }
    }

    /// Standby status update: everything up to `lsn` is durably handled.
    pub async fn send_status(&mut self, lsn: u64, reply: bool) -> Result<(), ReplicationError> {
        self.write.put_u8(b'd');
        self.write.put_i32(4 + 1 + 8 * 4 + 1);
        self.write.put_u8(b'r');
        self.write.put_u64(lsn);
        self.write.put_u64(lsn);
        self.write.put_u64(lsn);
        self.write.put_i64(pg_clock());
        self.write.put_u8(reply as u8);
        self.flush().await
    }
}

/// u64 → `16/B374D848`.
pub fn format_lsn(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}
