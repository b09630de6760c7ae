//! The raw archive: every response a connector was handed, with the request it answered, kept
//! per run so that `sluice replay` can re-parse it without touching the network, and so that
//! connector tests can use it as a fixture (the SDK's `testing::Archive` reads the same format).
//!
//! Layout: `<dir>/<connection>/<archive run>/<stream>.jsonl` (or `.jsonl.gz`), one file per
//! stream per `sluice run`. Each file is JSON lines: a [`Header`] first (format name and
//! version, the stream, the run context and the state the sync started from, the connector's
//! config), then one [`Exchange`] per response. A gzip file is a sequence of gzip members, one
//! per appended page, so it can be appended to and read like any other gzip file.
//!
//! Durability: an exchange is appended and `fsync`ed *before* its response is handed to the
//! connector, hence before the checkpoint that covers its records is committed. A committed
//! page is therefore always in the archive; a crash can at most leave a torn last line (ignored
//! by the reader) or one exchange whose page was never committed.
//!
//! What is never archived: the credential. Requests are kept as the connector asked for them
//! (the host applies the credential only afterwards), and responses as the connector saw them
//! (the transport has already dropped any header echoing the credential). The connection's
//! `[auth]` section is never written; its `[config]` (which the connector sees anyway) is.
//!
//! This module does no networking and knows nothing of wasm.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::http::HttpResponse;
use crate::protocol::{ConnectorRequest, RunContext, SyncMode};

/// The `format` of every archive header.
pub const FORMAT: &str = "sluice-archive";
/// The version of the archive format this host writes and the newest it reads.
pub const VERSION: u32 = 1;

/// How archive files are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// `<stream>.jsonl.gz`: one gzip member per page (the default: compact).
    #[default]
    Gzip,
    /// `<stream>.jsonl`: plain JSON lines, handy as a test fixture.
    None,
}

impl Compression {
    fn extension(self) -> &'static str {
        match self {
            Compression::Gzip => "jsonl.gz",
            Compression::None => "jsonl",
        }
    }
}

/// Where and how a live run archives its responses ([`crate::sync::RunOptions::archive`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveTarget {
    /// The archive root; each run writes `<dir>/<connection>/<archive run id>/`.
    pub dir: PathBuf,
    /// Compression of the files.
    pub compression: Compression,
}

impl ArchiveTarget {
    /// The directory of one run of `connection`.
    pub fn run_dir(&self, connection: &str, run_id: &str) -> PathBuf {
        self.dir.join(file_name(connection)).join(file_name(run_id))
    }
}

/// Why archiving or reading an archive failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be read or written.
    #[error("archive `{}`: {error}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// A line is not what the format says.
    #[error("archive `{}` line {line}: {detail}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
    /// No archive of the stream in the run directory.
    #[error("no archive of stream `{stream}` in `{}`", dir.display())]
    NoStream {
        /// The stream.
        stream: String,
        /// The run directory searched.
        dir: PathBuf,
    },
    /// No run found where one was expected.
    #[error(
        "no archived run in `{}`; pass the `--archive` directory used with `sluice run`, or one of its `<connection>/<run>` directories",
        dir.display()
    )]
    NoRun {
        /// The directory searched.
        dir: PathBuf,
    },
    /// Replay: the connector asked for a request the archive does not have at that position.
    #[error(
        "replay of stream `{stream}` diverges at request {position}: the archive has {expected} but the connector asked for {asked}; a newer connector may legitimately ask differently, in which case record a new archive with `sluice run --archive`"
    )]
    Diverged {
        /// The stream.
        stream: String,
        /// 1-based position of the request in the stream's archive.
        position: usize,
        /// The archived request (described).
        expected: String,
        /// The request the connector asked for (described).
        asked: String,
    },
    /// Replay: the connector finished before asking for every archived request.
    #[error(
        "replay of stream `{stream}` finished after {asked} of the {archived} archived requests, so it cannot have written the records of the live run; a newer connector may legitimately stop earlier, in which case record a new archive with `sluice run --archive`"
    )]
    Unfinished {
        /// The stream.
        stream: String,
        /// Requests the connector asked for.
        asked: usize,
        /// Requests in the archive.
        archived: usize,
    },
    /// Replay: the connector asked for more requests than the archive holds.
    #[error(
        "replay of stream `{stream}` ran past the archive: it holds {archived} responses but the connector asked for another, {asked}; a newer connector may legitimately ask for more, in which case record a new archive with `sluice run --archive`"
    )]
    Exhausted {
        /// The stream.
        stream: String,
        /// Responses in the archive.
        archived: usize,
        /// The request the connector asked for (described).
        asked: String,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |error| Error::Io {
        path: path.to_owned(),
        error,
    }
}

/// The first line of a stream's archive file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version ([`VERSION`] when written by this host).
    pub version: u32,
    /// Connection name.
    pub connection: String,
    /// Connector name.
    pub connector: String,
    /// Stream name.
    pub stream: String,
    /// Mode of the sync.
    pub mode: SyncMode,
    /// How the sync started: `fresh`, `incremental` or `resumed`.
    pub start: String,
    /// The connector state (JSON text) the sync started from.
    pub state: Option<String>,
    /// The run context the connector was given.
    pub context: RunContext,
    /// The connector's config (`[config]` of the connection file; never `[auth]`).
    pub config: serde_json::Value,
}

/// A body: text when it is UTF-8, base64 otherwise.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Body {
    /// The body as text, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body in standard base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
}

impl Body {
    fn new(bytes: Option<&[u8]>) -> Self {
        match bytes {
            None => Body::default(),
            Some(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => Body {
                    body: Some(text.to_owned()),
                    body_base64: None,
                },
                Err(_) => Body {
                    body: None,
                    body_base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
                },
            },
        }
    }

    fn bytes(&self) -> Result<Option<Vec<u8>>, String> {
        match (&self.body, &self.body_base64) {
            (Some(text), None) => Ok(Some(text.clone().into_bytes())),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map(Some)
                .map_err(|error| format!("`body_base64` is not base64: {error}")),
            (None, None) => Ok(None),
            (Some(_), Some(_)) => Err("both `body` and `body_base64` are set".to_owned()),
        }
    }
}

/// A request as the connector asked for it (before the host applied any credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedRequest {
    /// HTTP method.
    pub method: String,
    /// URL as the connector wrote it.
    pub url: String,
    /// Query pairs the connector added.
    #[serde(default)]
    pub query: Vec<(String, String)>,
    /// Headers the connector set.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body, if any.
    #[serde(flatten)]
    pub body: Body,
    /// Whether the connector asked for the credential (its value is never archived).
    #[serde(default)]
    pub authenticate: bool,
    /// Whether the connector marked the request safe to repeat.
    #[serde(default)]
    pub idempotent: bool,
}

impl ArchivedRequest {
    /// The archived form of `request`.
    pub fn new(request: &ConnectorRequest) -> Self {
        Self {
            method: request.method.clone(),
            url: request.url.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body: Body::new(request.body.as_deref()),
            authenticate: request.authenticate,
            idempotent: request.idempotent,
        }
    }

    /// The request as the connector asked for it.
    pub fn to_request(&self) -> Result<ConnectorRequest, String> {
        Ok(ConnectorRequest {
            method: self.method.clone(),
            url: self.url.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            body: self.body.bytes()?,
            authenticate: self.authenticate,
            idempotent: self.idempotent,
        })
    }

    /// `GET https://host/path?query` plus whatever else differs from `other`, for messages.
    fn describe_against(&self, other: &ArchivedRequest) -> String {
        let mut text = format!("`{} {}", self.method, self.url);
        for (index, (name, value)) in self.query.iter().enumerate() {
            let separator = if index == 0 && !self.url.contains('?') {
                '?'
            } else {
                '&'
            };
            text.push(separator);
            text.push_str(name);
            text.push('=');
            text.push_str(value);
        }
        text.push('`');
        if self.headers != other.headers {
            text.push_str(&format!(" with headers {:?}", self.headers));
        }
        if self.body != other.body {
            match (&self.body.body, &self.body.body_base64) {
                (Some(body), _) => text.push_str(&format!(" with body {body:?}")),
                (None, Some(_)) => text.push_str(" with a binary body"),
                (None, None) => text.push_str(" without a body"),
            }
        }
        if self.authenticate != other.authenticate {
            text.push_str(if self.authenticate {
                " (authenticated)"
            } else {
                " (not authenticated)"
            });
        }
        if self.idempotent != other.idempotent {
            text.push_str(if self.idempotent {
                " (idempotent)"
            } else {
                " (not idempotent)"
            });
        }
        text
    }
}

/// A response as the connector saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers, lowercase names, credential echoes already removed by the transport.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Body (decompressed).
    #[serde(flatten)]
    pub body: Body,
    /// The URL that answered, after redirects, without the credential's query parameter.
    #[serde(default)]
    pub url: String,
}

impl ArchivedResponse {
    /// The archived form of `response`.
    pub fn new(response: &HttpResponse) -> Self {
        Self {
            status: response.status,
            headers: response.headers.clone(),
            body: Body::new(Some(&response.body)),
            url: response.url.clone(),
        }
    }

    /// The response to hand to the connector again.
    pub fn to_response(&self) -> Result<HttpResponse, String> {
        Ok(HttpResponse {
            status: self.status,
            headers: self.headers.clone(),
            body: self.body.bytes()?.unwrap_or_default(),
            url: self.url.clone(),
        })
    }
}

/// One line after the header: a request and the response it got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// The request as the connector asked for it.
    pub request: ArchivedRequest,
    /// The response as the connector saw it.
    pub response: ArchivedResponse,
}

/// A file-name-safe form of a name chosen by an operator or a connector: only ASCII letters,
/// digits, `-`, `_` and `.` survive, and it never is `.` or `..`.
fn file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if safe.is_empty() || safe.chars().all(|c| c == '.') {
        safe.replace('.', "_") + "_"
    } else {
        safe
    }
}

/// Appends one stream's exchanges to its archive file, created on the first one.
#[derive(Debug)]
pub struct Recorder {
    run_dir: PathBuf,
    compression: Compression,
    file: Option<(File, PathBuf)>,
}

impl Recorder {
    /// A recorder writing into `run_dir` (created when the first exchange is recorded).
    pub fn new(run_dir: PathBuf, compression: Compression) -> Self {
        Self {
            run_dir,
            compression,
            file: None,
        }
    }

    /// Appends `exchange`, preceded by `header()` if the file does not exist yet, and flushes
    /// it to disk before returning.
    pub fn record(
        &mut self,
        header: impl FnOnce() -> Header,
        exchange: &Exchange,
    ) -> Result<(), Error> {
        let mut lines = Vec::new();
        if self.file.is_none() {
            let header = header();
            let path = self.run_dir.join(format!(
                "{}.{}",
                file_name(&header.stream),
                self.compression.extension()
            ));
            std::fs::create_dir_all(&self.run_dir).map_err(io_error(&self.run_dir))?;
            let file = OpenOptions::new()
                .create_new(true)
                .append(true)
                .open(&path)
                .map_err(io_error(&path))?;
            // The new directory entry must survive a crash too.
            File::open(&self.run_dir)
                .and_then(|dir| dir.sync_all())
                .map_err(io_error(&self.run_dir))?;
            push_line(&mut lines, &header);
            self.file = Some((file, path));
        }
        push_line(&mut lines, exchange);
        let Some((file, path)) = &mut self.file else {
            unreachable!("the file was opened above");
        };
        let bytes = match self.compression {
            Compression::None => lines,
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder
                    .write_all(&lines)
                    .and_then(|()| encoder.finish())
                    .map_err(io_error(path))?
            }
        };
        file.write_all(&bytes)
            .and_then(|()| file.sync_data())
            .map_err(io_error(path))
    }
}

fn push_line(buffer: &mut Vec<u8>, value: &impl Serialize) {
    // Serialising these plain structs cannot fail (string keys, no non-finite floats).
    if serde_json::to_writer(&mut *buffer, value).is_ok() {
        buffer.push(b'\n');
    }
}

/// Reads one stream's archive file, exchange by exchange.
pub struct Reader {
    path: PathBuf,
    lines: Box<dyn BufRead + Send + Sync>,
    line: usize,
    exchanges: usize,
    header: Header,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("path", &self.path)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Opens an archive file (`.jsonl.gz` is decompressed) and reads its header.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(io_error(path))?;
        let lines: Box<dyn BufRead + Send + Sync> =
            if path.extension().is_some_and(|ext| ext == "gz") {
                Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(
                    BufReader::new(file),
                )))
            } else {
                Box::new(BufReader::new(file))
            };
        let mut reader = Self {
            path: path.to_owned(),
            lines,
            line: 0,
            exchanges: 0,
            header: Header {
                format: String::new(),
                version: 0,
                connection: String::new(),
                connector: String::new(),
                stream: String::new(),
                mode: SyncMode::FullRefresh,
                start: String::new(),
                state: None,
                context: RunContext {
                    run_id: String::new(),
                    started_at_ms: 0,
                },
                config: serde_json::Value::Null,
            },
        };
        let Some(line) = reader.next_line()? else {
            return Err(reader.format_error("the file has no header line".to_owned()));
        };
        let header: Header = serde_json::from_str(&line)
            .map_err(|error| reader.format_error(format!("not an archive header: {error}")))?;
        if header.format != FORMAT {
            return Err(reader.format_error(format!(
                "format is {:?}, expected {FORMAT:?}",
                header.format
            )));
        }
        if header.version > VERSION {
            return Err(reader.format_error(format!(
                "format version {} is newer than this sluice reads ({VERSION}); upgrade sluice",
                header.version
            )));
        }
        reader.header = header;
        Ok(reader)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Exchanges returned so far.
    pub fn position(&self) -> usize {
        self.exchanges
    }

    /// The next exchange, or `None` at the end. A torn last line (a crash while appending) is
    /// the end.
    pub fn next_exchange(&mut self) -> Result<Option<Exchange>, Error> {
        let Some(line) = self.next_line()? else {
            return Ok(None);
        };
        let exchange = serde_json::from_str(&line)
            .map_err(|error| self.format_error(format!("not an exchange: {error}")))?;
        self.exchanges += 1;
        Ok(Some(exchange))
    }

    /// The response to `asked`, the connector's next request: the next exchange's, if its
    /// request is the same; otherwise an error naming both.
    pub fn answer(&mut self, asked: &ConnectorRequest) -> Result<HttpResponse, Error> {
        let asked = ArchivedRequest::new(asked);
        let stream = self.header.stream.clone();
        let Some(exchange) = self.next_exchange()? else {
            return Err(Error::Exhausted {
                stream,
                archived: self.exchanges,
                asked: asked.describe_against(&asked),
            });
        };
        if exchange.request != asked {
            return Err(Error::Diverged {
                stream,
                position: self.exchanges,
                expected: exchange.request.describe_against(&asked),
                asked: asked.describe_against(&exchange.request),
            });
        }
        exchange
            .response
            .to_response()
            .map_err(|detail| self.format_error(detail))
    }

    /// Checks that every archived exchange was asked for (at the end of a replay).
    pub fn finish(&mut self) -> Result<(), Error> {
        let asked = self.exchanges;
        let mut archived = asked;
        while self.next_exchange()?.is_some() {
            archived += 1;
        }
        if archived == asked {
            Ok(())
        } else {
            Err(Error::Unfinished {
                stream: self.header.stream.clone(),
                asked,
                archived,
            })
        }
    }

    fn next_line(&mut self) -> Result<Option<String>, Error> {
        let mut line = Vec::new();
        match self.lines.read_until(b'\n', &mut line) {
            Ok(0) => return Ok(None),
            Ok(_) => {}
            // A gzip member cut short by a crash: whatever it held was never committed.
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(error) => return Err(io_error(&self.path)(error)),
        }
        if line.last() != Some(&b'\n') {
            // A torn last line.
            return Ok(None);
        }
        line.pop();
        self.line += 1;
        String::from_utf8(line)
            .map(Some)
            .map_err(|_| self.format_error("the line is not UTF-8".to_owned()))
    }

    fn format_error(&self, detail: String) -> Error {
        Error::Format {
            path: self.path.clone(),
            line: self.line,
            detail,
        }
    }
}

/// The archive files of a run directory, by name.
fn stream_files(run_dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map_err(io_error(run_dir))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.is_file()
                && path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.ends_with(".jsonl") || name.ends_with(".jsonl.gz"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// The headers of every stream archived in `run_dir`, with the first request of each (`None`
/// if the file holds no exchange).
pub fn read_run(run_dir: &Path) -> Result<Vec<(Header, Option<ArchivedRequest>)>, Error> {
    stream_files(run_dir)?
        .iter()
        .map(|path| {
            let mut reader = Reader::open(path)?;
            let first = reader.next_exchange()?.map(|exchange| exchange.request);
            Ok((reader.header, first))
        })
        .collect()
}

/// Opens the archive of `stream` in `run_dir`.
pub fn open_stream(run_dir: &Path, stream: &str) -> Result<Reader, Error> {
    for path in stream_files(run_dir)? {
        let reader = Reader::open(&path)?;
        if reader.header.stream == stream {
            return Ok(reader);
        }
    }
    Err(Error::NoStream {
        stream: stream.to_owned(),
        dir: run_dir.to_owned(),
    })
}

/// The run directory `dir` designates: `dir` itself if it holds stream archives; otherwise
/// the latest run under it (`<connection>/<run>` or `<run>`). Run ids sort by time.
pub fn find_run(dir: &Path) -> Result<PathBuf, Error> {
    if !stream_files(dir)?.is_empty() {
        return Ok(dir.to_owned());
    }
    let subdirs = |dir: &Path| -> Result<Vec<PathBuf>, Error> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io_error(dir))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        dirs.sort();
        Ok(dirs)
    };
    // `<dir>/<run>`: the latest run with archives.
    for run in subdirs(dir)?.iter().rev() {
        if !stream_files(run)?.is_empty() {
            return Ok(run.clone());
        }
    }
    // `<dir>/<connection>/<run>`, when there is one connection.
    if let [connection] = subdirs(dir)?.as_slice() {
        for run in subdirs(connection)?.iter().rev() {
            if !stream_files(run)?.is_empty() {
                return Ok(run.clone());
            }
        }
    }
    Err(Error::NoRun {
        dir: dir.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(stream: &str) -> Header {
        Header {
            format: FORMAT.to_owned(),
            version: VERSION,
            connection: "shop".to_owned(),
            connector: "rest".to_owned(),
            stream: stream.to_owned(),
            mode: SyncMode::Incremental,
            start: "fresh".to_owned(),
            state: Some("{\"max\":3}".to_owned()),
            context: RunContext {
                run_id: "r1".to_owned(),
                started_at_ms: 42,
            },
            config: serde_json::json!({"base_url": "http://h"}),
        }
    }

    fn request(offset: u32) -> ConnectorRequest {
        ConnectorRequest {
            method: "GET".to_owned(),
            url: "http://h/items".to_owned(),
            query: vec![("offset".to_owned(), offset.to_string())],
            headers: vec![("accept".to_owned(), "application/json".to_owned())],
            body: None,
            authenticate: true,
            idempotent: false,
        }
    }

    fn exchange(offset: u32, body: &[u8]) -> Exchange {
        Exchange {
            request: ArchivedRequest::new(&request(offset)),
            response: ArchivedResponse::new(&HttpResponse {
                status: 200,
                headers: vec![("content-type".to_owned(), "application/json".to_owned())],
                body: body.to_vec(),
                url: format!("http://h/items?offset={offset}"),
            }),
        }
    }

    fn roundtrip(compression: Compression) {
        let dir = tempfile::tempdir().unwrap();
        let target = ArchiveTarget {
            dir: dir.path().to_owned(),
            compression,
        };
        let run_dir = target.run_dir("shop", "run-1");
        let mut recorder = Recorder::new(run_dir.clone(), compression);
        recorder
            .record(|| header("items"), &exchange(0, b"[1]"))
            .unwrap();
        recorder
            .record(
                || unreachable!("header written once"),
                &exchange(1, &[0xff, 0]),
            )
            .unwrap();
        drop(recorder);

        assert_eq!(find_run(dir.path()).unwrap(), run_dir);
        assert_eq!(find_run(&dir.path().join("shop")).unwrap(), run_dir);
        let run = read_run(&run_dir).unwrap();
        assert_eq!(run.len(), 1);
        assert_eq!(run[0].0, header("items"));
        assert_eq!(run[0].1, Some(ArchivedRequest::new(&request(0))));

        let mut reader = open_stream(&run_dir, "items").unwrap();
        assert_eq!(reader.answer(&request(0)).unwrap().body, b"[1]");
        let error = reader.answer(&request(2)).unwrap_err().to_string();
        assert!(
            error.starts_with(
                "replay of stream `items` diverges at request 2: the archive has `GET http://h/items?offset=1` but the connector asked for `GET http://h/items?offset=2`; a newer connector"
            ),
            "{error}"
        );
        let error = reader.answer(&request(3)).unwrap_err().to_string();
        assert!(
            error.contains("ran past the archive: it holds 2 responses"),
            "{error}"
        );
        assert!(reader.finish().is_ok());
        let mut reader = open_stream(&run_dir, "items").unwrap();
        reader.answer(&request(0)).unwrap();
        let error = reader.finish().unwrap_err().to_string();
        assert!(
            error.contains("finished after 1 of the 2 archived requests"),
            "{error}"
        );

        let mut reader = open_stream(&run_dir, "items").unwrap();
        reader.next_exchange().unwrap();
        let binary = reader.next_exchange().unwrap().unwrap();
        assert_eq!(binary.response.body.body, None);
        assert_eq!(binary.response.to_response().unwrap().body, vec![0xff, 0]);
        assert!(matches!(
            open_stream(&run_dir, "other"),
            Err(Error::NoStream { .. })
        ));
    }

    #[test]
    fn gzip_archives_roundtrip() {
        roundtrip(Compression::Gzip);
    }

    #[test]
    fn plain_archives_roundtrip() {
        roundtrip(Compression::None);
    }

    #[test]
    fn a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for compression in [Compression::None, Compression::Gzip] {
            let run_dir = dir.path().join(format!("{compression:?}"));
            let mut recorder = Recorder::new(run_dir.clone(), compression);
            recorder
                .record(|| header("s"), &exchange(0, b"{}"))
                .unwrap();
            recorder
                .record(|| header("s"), &exchange(1, b"{}"))
                .unwrap();
            let path = stream_files(&run_dir).unwrap().remove(0);
            let length = std::fs::metadata(&path).unwrap().len();
            let file = OpenOptions::new().write(true).open(&path).unwrap();
            // Into the last line (and, compressed, into its deflate data, not just the trailer).
            file.set_len(length - 20).unwrap();
            let mut reader = Reader::open(&path).unwrap();
            assert!(reader.next_exchange().unwrap().is_some(), "{compression:?}");
            assert!(reader.next_exchange().unwrap().is_none(), "{compression:?}");
        }
    }

    #[test]
    fn names_cannot_escape_the_archive_directory() {
        assert_eq!(file_name("../etc/passwd"), ".._etc_passwd");
        assert_eq!(file_name(".."), "___");
        assert_eq!(file_name(""), "_");
        assert_eq!(file_name("issues-2024.v1"), "issues-2024.v1");
    }

    #[test]
    fn newer_formats_and_other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut newer = serde_json::to_value(header("s")).unwrap();
        newer["version"] = serde_json::json!(VERSION + 1);
        std::fs::write(&path, format!("{newer}\n")).unwrap();
        let error = Reader::open(&path).unwrap_err().to_string();
        assert!(error.contains("is newer than this sluice reads"), "{error}");
        std::fs::write(&path, "{\"id\": 1}\n").unwrap();
        let error = Reader::open(&path).unwrap_err().to_string();
        assert!(error.contains("line 1: not an archive header"), "{error}");
    }

    /// The SDK's harness reads the same format: its fixture is a valid archive here too.
    #[test]
    fn the_sdk_fixture_is_an_archive() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../guest-sdk/fixtures/countdown.archive.jsonl");
        let mut reader = Reader::open(&path).unwrap();
        assert_eq!(reader.header().stream, "numbers");
        let mut count = 0;
        while reader.next_exchange().unwrap().is_some() {
            count += 1;
        }
        assert_eq!(count, 3);
    }
}
