//! The write side of a stream's sync, pipelined with the read side.
//!
//! The sync loop checks each page the guest returned (the trust boundary: each line one
//! bounded JSON object; then the stream's schema policy) and hands it to a [`Committer`] task,
//! then goes on to send the next request and run the guest on its response while the committer
//! applies the seen index, writes the records and commits. So the network and the guest work
//! while the disk syncs, instead of one after the other.
//!
//! The order that makes resume exact is unchanged, because the committer alone writes: pages
//! are written in order, and the output is made durable before the checkpoint that covers it
//! is staged in the store. The checkpoint's flush to disk then runs while the next page is
//! written and synced; the flush before is awaited before the next checkpoint is staged. A
//! request the loop sent early is only a read: if the process dies before its page is
//! committed, the next run starts from the last checkpoint on disk and sends it again. (Only
//! for the JSON-lines file, which a resume cuts back to the checkpoint; messages on stdout
//! cannot be taken back, so there the loop waits for each page's checkpoint to be on disk.)
//!
//! A commit happens every [`CheckpointSettings::every_pages`] pages, once
//! [`CheckpointSettings::every_ms`] have passed (also while the loop waits for a slow
//! response), before the connector's back-off wait, and at the end of the stream.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument as _;

use super::Error;
use crate::checkpoint::{Checkpoint, CheckpointStore, SinkPosition, StreamKey};
use crate::config::CheckpointSettings;
use crate::connector::now_ms;
use crate::dedup::SeenFilter;
use crate::protocol::{Next, RunContext, SyncMode};
use crate::schema::CheckedPage;
use crate::sink::{self, JsonlSink};

/// One page for the committer: its checked records, the state after them, and what comes next.
pub(super) struct PageWork {
    /// The records, checked against the protocol and the schema policy.
    pub checked: CheckedPage,
    /// The checkpoint state after this page (already validated by the loop).
    pub state: Option<String>,
    /// What the connector wants next; `Next::Done` ends the stream.
    pub next: Next,
}

/// What became of one page.
#[derive(Debug, Clone, Copy)]
pub(super) struct PageDone {
    /// Records written to the output (after the schema policy and the seen index).
    pub written: u64,
    /// Records sent to the dead-letter file.
    pub dead_letters: u64,
    /// Records in the output of this and earlier syncs, as of this page.
    pub records_total: u64,
}

/// What the committer hands back when the stream is over.
pub(super) struct Finished {
    /// The committed output position.
    pub position: SinkPosition,
    /// Records the seen index dropped.
    pub duplicates_skipped: u64,
}

/// The writer's side of a stream's sync, as handed to [`Committer::spawn`].
pub(super) struct Writer {
    /// The checkpoint store.
    pub store: CheckpointStore,
    /// The stream's key in the store.
    pub key: StreamKey,
    /// The stream's mode and run context, recorded in every checkpoint.
    pub mode: SyncMode,
    /// The run context recorded in every checkpoint.
    pub context: RunContext,
    /// The state as of the last commit.
    pub state: Option<String>,
    /// The committed output position.
    pub position: SinkPosition,
    /// The output and the dead-letter file; `None` only while a blocking thread has them.
    pub files: Option<Files>,
    /// The seen index, for incremental streams with a primary key.
    pub seen: Option<SeenFilter>,
    /// How often to commit.
    pub every: CheckpointSettings,
    /// Whether a page may be answered before its checkpoint is on disk: true for output that
    /// a resume cuts back to the last commit ([`sink::Format::writes_file`]).
    pub answer_before_flush: bool,
}

/// The flush of the last staged checkpoint, running while the next page is written, and the
/// pages whose answer waits for it.
struct Flushing {
    task: tokio::task::JoinHandle<Result<(), crate::checkpoint::Error>>,
    waiting: Vec<(oneshot::Sender<Result<PageDone, Error>>, PageDone)>,
}

/// A page handed over and the answer to wait for.
struct Work {
    page: PageWork,
    done: oneshot::Sender<Result<PageDone, Error>>,
}

/// A running committer task.
pub(super) struct Committer {
    /// `None` once the stream is over or the task has ended.
    pages: Option<mpsc::Sender<Work>>,
    /// `None` once joined.
    task: Option<tokio::task::JoinHandle<Result<Finished, Error>>>,
}

/// The answer to one handed-over page.
pub(super) type Pending = oneshot::Receiver<Result<PageDone, Error>>;

impl Committer {
    /// Starts the committer task for `writer`.
    pub fn spawn(writer: Writer) -> Self {
        let (pages, receiver) = mpsc::channel(1);
        let task = tokio::spawn(writer.run(receiver).in_current_span());
        Self {
            pages: Some(pages),
            task: Some(task),
        }
    }

    /// Hands `page` over; await the returned [`Pending`] with [`Committer::wait`].
    pub async fn submit(&mut self, page: PageWork) -> Result<Pending, Error> {
        let (done, pending) = oneshot::channel();
        let sent = match &self.pages {
            Some(pages) => pages.send(Work { page, done }).await.is_ok(),
            None => false,
        };
        if sent {
            Ok(pending)
        } else {
            Err(self.ended_early().await)
        }
    }

    /// What became of a handed-over page.
    pub async fn wait(&mut self, pending: Pending) -> Result<PageDone, Error> {
        match pending.await {
            Ok(done) => done,
            Err(_) => Err(self.ended_early().await),
        }
    }

    /// Commits whatever is written but not committed, and ends the task.
    pub async fn finish(mut self) -> Result<Finished, Error> {
        self.pages = None;
        self.join().await
    }

    /// The error that ended the task before the stream was over.
    async fn ended_early(&mut self) -> Error {
        self.pages = None;
        match self.join().await {
            Err(error) => error,
            Ok(_) => Error::Internal("the committer ended before the stream did".to_owned()),
        }
    }

    async fn join(&mut self) -> Result<Finished, Error> {
        let Some(task) = self.task.take() else {
            return Err(Error::Internal(
                "the committer already ended with an error".to_owned(),
            ));
        };
        task.await.unwrap_or_else(|join| {
            Err(Error::Internal(format!(
                "the committer task failed: {join}"
            )))
        })
    }
}

impl Writer {
    async fn run(mut self, mut pages: mpsc::Receiver<Work>) -> Result<Finished, Error> {
        let mut uncommitted = 0u64;
        let mut pending: Option<Next> = None;
        let mut last_commit = Instant::now();
        let mut flushing: Option<Flushing> = None;
        loop {
            let wait = (uncommitted > 0 && self.every.every_ms > 0).then(|| {
                (last_commit + Duration::from_millis(self.every.every_ms))
                    .saturating_duration_since(Instant::now())
            });
            let work = match wait {
                Some(wait) => match tokio::time::timeout(wait, pages.recv()).await {
                    Ok(work) => work,
                    Err(_) => {
                        // Time is up while the loop waits for its next page.
                        self.commit(pending.as_ref(), &mut flushing).await?;
                        uncommitted = 0;
                        last_commit = Instant::now();
                        continue;
                    }
                },
                None => pages.recv().await,
            };
            let Some(Work { page, done }) = work else {
                // The stream is over (or stopping): commit what is written.
                if uncommitted > 0 {
                    self.commit(pending.as_ref(), &mut flushing).await?;
                }
                settle_flush(&mut flushing).await?;
                return Ok(self.finished());
            };
            uncommitted += 1;
            let due = uncommitted >= self.every.every_pages
                || page.next == Next::Done
                || matches!(page.next, Next::BackOff { .. })
                || (self.every.every_ms > 0
                    && last_commit.elapsed() >= Duration::from_millis(self.every.every_ms));
            let (page_done, next) = match self.write(page, due).await {
                Ok(written) => written,
                Err(error) => {
                    // The loop learns why from the task; the page's checkpoint is not written.
                    drop(done);
                    return Err(error);
                }
            };
            let fetch_next = matches!(next, Next::Fetch(_));
            pending = (next != Next::Done).then_some(next);
            if due {
                self.checkpoint(pending.as_ref(), &mut flushing).await?;
                uncommitted = 0;
                last_commit = Instant::now();
                // Before a back-off, the end, or the next message on stdout, the page's
                // checkpoint is on disk; otherwise its flush runs on while the next page is
                // fetched and written.
                if !(self.answer_before_flush && fetch_next)
                    && let Some(flush) = flushing.as_mut()
                {
                    flush.waiting.push((done, page_done));
                    settle_flush(&mut flushing).await?;
                    continue;
                }
            }
            // The loop may have given up waiting (an error of its own): nothing to tell then.
            let _ = done.send(Ok(page_done));
        }
    }

    /// Writes one page, and makes the output durable too when `sync` (one trip to a blocking
    /// thread for both); returns what became of the page and its `next`.
    async fn write(&mut self, page: PageWork, sync: bool) -> Result<(PageDone, Next), Error> {
        let checked = page.checked;
        let (lines, written) = match self.seen.as_mut() {
            Some(seen) => seen.filter(&self.store, &self.key, &checked.kept)?,
            None => (checked.kept, checked.kept_count),
        };
        if page.state.is_some() {
            self.state = page.state;
        }
        let dead_letters = checked.dead_letters;
        let state = sync.then(|| self.state.clone());
        let synced = self
            .on_files(move |files| {
                files.append_dead_letters(&dead_letters)?;
                files.sink.write(&lines)?;
                state.map(|state| files.sync(state.as_deref())).transpose()
            })
            .await??;
        if let Some(synced) = synced {
            self.synced(synced);
        }
        self.position.records += written;
        Ok((
            PageDone {
                written,
                dead_letters: checked.dead_count,
                records_total: self.position.records,
            },
            page.next,
        ))
    }

    /// Makes the output durable, then commits the checkpoint that covers it.
    async fn commit(
        &mut self,
        pending: Option<&Next>,
        flushing: &mut Option<Flushing>,
    ) -> Result<(), Error> {
        let state = self.state.clone();
        let synced = self
            .on_files(move |files| files.sync(state.as_deref()))
            .await??;
        self.synced(synced);
        self.checkpoint(pending, flushing).await
    }

    /// Records the offsets the output files were synced to.
    fn synced(&mut self, (offset_bytes, dead_letter_bytes): (u64, Option<u64>)) {
        self.position.offset_bytes = offset_bytes;
        if let Some(bytes) = dead_letter_bytes {
            self.position.dead_letter_bytes = bytes;
        }
    }

    /// Commits the checkpoint of everything synced so far, with the seen entries of the pages
    /// since the last commit: waits for the previous checkpoint's flush, stages this one (the
    /// seen index reads it at once) and starts its flush, which the next page overlaps.
    async fn checkpoint(
        &mut self,
        pending: Option<&Next>,
        flushing: &mut Option<Flushing>,
    ) -> Result<(), Error> {
        settle_flush(flushing).await?;
        let checkpoint = Checkpoint {
            mode: self.mode,
            state: self.state.clone(),
            pending: pending.cloned(),
            context: self.context.clone(),
            output: self.position.clone(),
            committed_at_ms: now_ms(),
        };
        let seen = self
            .seen
            .as_mut()
            .map(SeenFilter::take_pending)
            .unwrap_or_default();
        self.store
            .stage_page(&self.key, &checkpoint, &seen, false)?;
        let (store, key) = (self.store.clone(), self.key.clone());
        *flushing = Some(Flushing {
            task: tokio::spawn(async move { store.flush(&key).await }.in_current_span()),
            waiting: Vec::new(),
        });
        tracing::debug!(
            records = self.position.records,
            "Checkpoint staged; flushing."
        );
        Ok(())
    }

    /// Runs `work` on the files on a blocking thread (file writes and syncs block).
    async fn on_files<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut Files) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let mut files = self.files.take().ok_or_else(|| {
            Error::Internal("the stream's output was lost in an earlier failure".to_owned())
        })?;
        let (files, result) = tokio::task::spawn_blocking(move || {
            let result = work(&mut files);
            (files, result)
        })
        .await
        .map_err(|join| Error::Internal(format!("the output task failed: {join}")))?;
        self.files = Some(files);
        Ok(result)
    }

    fn finished(self) -> Finished {
        Finished {
            position: self.position,
            duplicates_skipped: self.seen.as_ref().map_or(0, SeenFilter::skipped),
        }
    }
}

/// A stream's output files, moved to a blocking thread and back for each write.
pub(super) struct Files {
    /// The output.
    pub sink: sink::Output,
    /// The dead-letter file, opened at the first dead letter (or when there are committed
    /// ones to cut back to).
    pub dead_letters: Option<JsonlSink>,
    /// Where the dead-letter file goes.
    pub dead_letter_path: PathBuf,
}

impl Files {
    /// Appends dead-letter lines (not yet durable), opening the file at the first.
    fn append_dead_letters(&mut self, lines: &str) -> Result<(), sink::Error> {
        if lines.is_empty() {
            return Ok(());
        }
        let dead_letters = match self.dead_letters.as_mut() {
            Some(sink) => sink,
            None => self
                .dead_letters
                .insert(JsonlSink::open(&self.dead_letter_path, 0)?),
        };
        dead_letters.append(lines)
    }

    /// Makes the output and the dead-letter file durable; returns their committed offsets.
    fn sync(&mut self, state: Option<&str>) -> Result<(u64, Option<u64>), sink::Error> {
        let dead_letter_bytes = self
            .dead_letters
            .as_mut()
            .map(JsonlSink::sync)
            .transpose()?;
        Ok((self.sink.commit(state)?, dead_letter_bytes))
    }
}

/// Waits for the checkpoint flush in flight, if any, then answers the pages that waited for it.
async fn settle_flush(flushing: &mut Option<Flushing>) -> Result<(), Error> {
    let Some(Flushing { task, waiting }) = flushing.take() else {
        return Ok(());
    };
    task.await
        .map_err(|join| Error::Internal(format!("the checkpoint flush failed: {join}")))??;
    for (done, page) in waiting {
        let _ = done.send(Ok(page));
    }
    Ok(())
}
