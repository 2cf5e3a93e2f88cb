//! `import` and `export`: datasets in and out of the store, streaming.
//!
//! The codecs are kvcore's ([`kvcore::dataset`]): JSON (one object), JSON Lines and
//! CSV, chosen by the file's extension unless a format is named. Neither direction
//! holds the dataset in memory: an import reads record by record, first to check
//! every record and then to write them through the journal in batches of [`BATCH`]
//! (`set_many`, so one journal commit per batch), and an export walks the store a
//! page at a time.
//!
//! A progress bar is drawn on stderr when the caller asks for one — kvcli does when
//! stderr is a terminal — and never otherwise, so scripts and pipes see clean output.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use kvcore::dataset::{self, Format, Writer};
use kvcore::limits::Limits;
use kvcore::{Bytes, Expiry, JsonText, PersistentStore, Store};

use crate::Error;

/// Keys fetched per page when listing or exporting.
pub(crate) const PAGE: usize = 10_000;

/// Records written to the store per `set_many`.
pub const BATCH: usize = 10_000;

/// The format of `file`: the one named, else its extension's; `-` (a standard stream)
/// defaults to JSON Lines.
pub fn resolve_format(file: &Path, named: Option<Format>) -> Result<Format, Error> {
    if let Some(format) = named {
        return Ok(format);
    }
    if file == Path::new("-") {
        return Ok(Format::JsonLines);
    }
    Format::from_path(file).ok_or_else(|| {
        Error::Usage(format!(
            "cannot tell the format of {} from its extension (.json, .jsonl, .ndjson, .csv): \
             name it with --format json, jsonl or csv",
            file.display()
        ))
    })
}

/// A dataset to import, opened (so that a missing file is reported before the store
/// is opened), with its format known.
pub struct Source {
    input: Input,
    name: String,
    format: Format,
}

/// Where an import's records come from.
enum Input {
    /// A regular file: read once to check it, and again to import it.
    File(File),
    /// Standard input, a pipe or a device: read once, and kept in a temporary file
    /// for the second pass.
    Stream(Box<dyn Read>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("name", &self.name)
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Source {
    /// Opens `file` (`-`: standard input) in the format named, else its extension's.
    pub fn open(file: &Path, format: Option<Format>) -> Result<Source, Error> {
        let format = resolve_format(file, format)?;
        let name = file.display().to_string();
        if file == Path::new("-") {
            return Ok(Source {
                input: Input::Stream(Box::new(io::stdin().lock())),
                name: "(standard input)".into(),
                format,
            });
        }
        let io_err = |source| Error::Io {
            path: file.to_path_buf(),
            source,
        };
        let f = File::open(file).map_err(io_err)?;
        let input = if f.metadata().map_err(io_err)?.is_file() {
            Input::File(f)
        } else {
            Input::Stream(Box::new(f))
        };
        Ok(Source {
            input,
            name,
            format,
        })
    }
}

/// Reads `source` into `store`, overwriting keys it already has and giving every
/// imported key no TTL. Returns how many records were imported.
///
/// All or nothing, as kvserver's `--load`: a first pass reads the whole dataset and
/// checks every record against `limits`, writing nothing; only then does a second
/// pass write, in batches of [`BATCH`]. A bad record is [`Error::Import`] with
/// nothing imported, naming the file and line. A stream (standard input, a pipe) is
/// copied to a temporary file during the first pass, to be read again.
pub fn import(
    store: &PersistentStore<Bytes>,
    source: Source,
    limits: &Limits,
    progress: bool,
) -> Result<u64, Error> {
    let Source {
        input,
        name,
        format,
    } = source;
    let refused = |source| Error::Import {
        source,
        imported: 0,
    };
    let spool_err = |source| Error::Io {
        path: std::env::temp_dir(),
        source,
    };
    let check = |key: &str, value: &JsonText, line| {
        limits
            .check_pair(key, value)
            .map_err(|e| kvcore::Error::dataset(&name, line, e.to_string()))
    };

    // The first pass: check every record, keeping a stream for the second.
    let mut file = match input {
        Input::File(mut file) => {
            let len = file.metadata().ok().map(|m| m.len());
            let bar = bar(progress, len, CHECK_BAR, CHECK_SPINNER);
            let counted = Counted {
                inner: &mut file,
                bar: bar.clone(),
            };
            let checked = dataset::read(counted, format, &name, |k, v, line| check(&k, &v, line));
            bar.finish_and_clear();
            checked.map_err(refused)?;
            file.seek(SeekFrom::Start(0)).map_err(|source| Error::Io {
                path: PathBuf::from(&name),
                source,
            })?;
            file
        }
        Input::Stream(reader) => {
            let mut spool = tempfile::tempfile().map_err(spool_err)?;
            let bar = bar(progress, None, CHECK_BAR, CHECK_SPINNER);
            let mut tee = Tee {
                inner: Counted {
                    inner: reader,
                    bar: bar.clone(),
                },
                copy: BufWriter::new(&mut spool),
                failed: None,
            };
            let checked = dataset::read(&mut tee, format, &name, |k, v, line| check(&k, &v, line));
            bar.finish_and_clear();
            if let Some(e) = tee.failed.take() {
                return Err(spool_err(e));
            }
            checked.map_err(refused)?;
            // Anything the codec left unread is copied too, so that the second pass
            // sees the same input.
            io::copy(&mut tee, &mut io::sink()).map_err(|source| Error::Io {
                path: PathBuf::from(&name),
                source,
            })?;
            if let Some(e) = tee.failed.take() {
                return Err(spool_err(e));
            }
            tee.copy.flush().map_err(spool_err)?;
            drop(tee);
            spool.seek(SeekFrom::Start(0)).map_err(spool_err)?;
            spool
        }
    };

    // The second pass: write.
    let len = file.metadata().ok().map(|m| m.len());
    let bar = bar(progress, len, IMPORT_BAR, IMPORT_SPINNER);
    let reader = Counted {
        inner: &mut file,
        bar: bar.clone(),
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut imported = 0u64;
    let read = dataset::read(reader, format, &name, |key, value, line| {
        check(&key, &value, line)?;
        batch.push((key, Bytes::from(value)));
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            imported += store.set_many(full, Expiry::Never)? as u64;
            bar.set_message(format!("{imported} records"));
        }
        Ok(())
    });
    bar.finish_and_clear();
    // The file checked out, so an error now is a failed write (or a file changed
    // between the passes): what was written stays, and the error says how much.
    read.map_err(|source| Error::Import { source, imported })?;
    if !batch.is_empty() {
        imported += store
            .set_many(batch, Expiry::Never)
            .map_err(|source| Error::Import { source, imported })? as u64;
    }
    Ok(imported)
}

const CHECK_BAR: &str = "{spinner} checking [{bar:30}] {bytes}/{total_bytes} (eta {eta})";
const CHECK_SPINNER: &str = "{spinner} checking {bytes}";
const IMPORT_BAR: &str = "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {msg} (eta {eta})";
const IMPORT_SPINNER: &str = "{spinner} importing {bytes} {msg}";

/// Writes every record of `store` to `file` in its format (`-`: to `out`, JSON Lines
/// unless a format is named). Returns how many records were written. TTLs are not
/// part of any dataset format and are not exported.
pub fn export(
    store: &PersistentStore<Bytes>,
    file: &Path,
    format: Option<Format>,
    progress: bool,
    out: &mut dyn Write,
) -> Result<u64, Error> {
    let format = resolve_format(file, format)?;
    let bar = bar(
        progress,
        Some(store.len() as u64),
        "{spinner} exporting [{bar:30}] {pos}/{len} records (eta {eta})",
        "{spinner} exporting {pos} records",
    );
    if file == Path::new("-") {
        let written = write_records(store, Writer::new(out, format), &bar);
        bar.finish_and_clear();
        return written.map(|(n, _)| n).map_err(|e| match e {
            kvcore::Error::Io { source, .. } => Error::Output(source),
            other => other.into(),
        });
    }
    let io_err = |source| Error::Io {
        path: file.to_path_buf(),
        source,
    };
    let created = File::create(file).map_err(io_err)?;
    let written = write_records(store, Writer::new(created, format), &bar);
    bar.finish_and_clear();
    let (n, created) = written.map_err(|e| match e {
        kvcore::Error::Io { source, .. } => io_err(source),
        other => other.into(),
    })?;
    created.sync_all().map_err(io_err)?;
    Ok(n)
}

fn write_records<W: Write>(
    store: &PersistentStore<Bytes>,
    writer: kvcore::Result<Writer<W>>,
    bar: &ProgressBar,
) -> kvcore::Result<(u64, W)> {
    let mut writer = writer?;
    let mut count = 0u64;
    for page in kvcore::Pages::new(store, None, PAGE) {
        let page = page?;
        for (key, value) in &page.items {
            writer.write(key, &value.to_json_text())?;
        }
        count += page.items.len() as u64;
        bar.inc(page.items.len() as u64);
    }
    Ok((count, writer.finish()?))
}

/// A progress bar on stderr, or a hidden one when `show` is false. `len` known: a bar
/// in `template`; unknown: a spinner in `spinner`.
fn bar(show: bool, len: Option<u64>, template: &str, spinner: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(len) => (ProgressBar::new(len), template),
        None => (ProgressBar::new_spinner(), spinner),
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar
}

/// A reader that advances a progress bar by the bytes it reads.
struct Counted<R> {
    inner: R,
    bar: ProgressBar,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}

/// A reader that copies what it reads to `copy`. A failed copy is kept in `failed`
/// and stops the reading, so that the reader's own error is not mistaken for it.
struct Tee<R, W> {
    inner: R,
    copy: W,
    failed: Option<io::Error>,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.failed.is_some() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if let Err(e) = self.copy.write_all(&buf[..n]) {
            self.failed = Some(e);
            return Ok(0);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_by_name_then_extension() {
        assert_eq!(
            resolve_format(Path::new("a.csv"), Some(Format::Json)).unwrap(),
            Format::Json
        );
        assert_eq!(
            resolve_format(Path::new("a.NDJSON"), None).unwrap(),
            Format::JsonLines
        );
        assert_eq!(
            resolve_format(Path::new("-"), None).unwrap(),
            Format::JsonLines
        );
        let err = resolve_format(Path::new("a.txt"), None).unwrap_err();
        assert!(err.to_string().contains("--format"), "{err}");
    }
}
