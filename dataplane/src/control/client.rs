//! The client side, for `dataplane ctl` and the tests: one connection, request in, reply out.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::api::{ApiError, Command, Reply, Request, VERSION};

/// A connection to a forwarder's control socket.
#[derive(Debug)]
pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

/// The exchange failed (not the command: that is an [`ApiError`] reply).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Reading or writing the socket.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The server closed without a reply.
    #[error("the forwarder closed the connection without replying")]
    Closed,
    /// The reply is not one of this schema.
    #[error("unreadable reply: {0}")]
    BadReply(String),
}

impl Client {
    /// Connects to the socket at `path`; replies are awaited for at most `timeout` (`None`:
    /// as long as it takes, for a large `apply`).
    ///
    /// # Errors
    /// The connect error (no such file, connection refused: no forwarder there).
    pub fn connect(path: &Path, timeout: Option<Duration>) -> std::io::Result<Client> {
        let writer = UnixStream::connect(path)?;
        writer.set_read_timeout(timeout)?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Client { writer, reader })
    }

    /// Sends `command` and returns the reply: `Ok(Ok(value))`, or `Ok(Err(error))` when the
    /// forwarder refused it.
    ///
    /// # Errors
    /// [`ClientError`] when the exchange itself failed.
    pub fn call(&mut self, command: &Command) -> Result<Result<Value, ApiError>, ClientError> {
        let line = serde_json::to_string(&Request { version: VERSION, command: command.clone() }).expect("requests serialise");
        match self.raw(&line)? {
            Reply::Ok(v) => Ok(Ok(v)),
            Reply::Error(e) => Ok(Err(e)),
        }
    }

    /// Sends one line as it is (a newline is added) and parses the reply line.
    ///
    /// # Errors
    /// [`ClientError`] when the exchange failed or the reply is not of this schema.
    pub fn raw(&mut self, line: &str) -> Result<Reply, ClientError> {
        self.writer.write_all(line.as_bytes())?;
        self.writer.write_all(b"\n")?;
        self.read_reply()
    }

    /// Reads one reply line.
    ///
    /// # Errors
    /// As [`Client::raw`].
    pub fn read_reply(&mut self) -> Result<Reply, ClientError> {
        let mut reply = String::new();
        if self.reader.read_line(&mut reply)? == 0 {
            return Err(ClientError::Closed);
        }
        serde_json::from_str(&reply).map_err(|e| ClientError::BadReply(format!("{e}: {}", reply.trim())))
    }
}
