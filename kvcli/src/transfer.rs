//! `import` and `export`: datasets in and out of the store, streaming.
//!
//! The codecs are kvcore's ([`kvcore::dataset`]): JSON (one object), JSON Lines and
//! CSV, chosen by the file's extension unless a format is named. Neither direction
//! holds the dataset in memory: an import reads record by record and writes them
//! through the journal in batches of [`BATCH`] (`set_many`, so one journal commit per
//! batch), and an export walks the store a page at a time.
//!
//! A progress bar is drawn on stderr when the caller asks for one — kvcli does when
//! stderr is a terminal — and never otherwise, so scripts and pipes see clean output.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use kvcore::dataset::{self, Format, Writer};
use kvcore::{Expiry, JsonText, PersistentStore, Store};

use crate::Error;
use crate::exec::PAGE;

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
    reader: Box<dyn Read>,
    len: Option<u64>,
    name: String,
    format: Format,
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
                reader: Box::new(io::stdin().lock()),
                len: None,
                name: "(standard input)".into(),
                format,
            });
        }
        let io_err = |source| Error::Io {
            path: file.to_path_buf(),
            source,
        };
        let f = File::open(file).map_err(io_err)?;
        let len = f.metadata().map_err(io_err)?.len();
        Ok(Source {
            reader: Box::new(f),
            len: Some(len),
            name,
            format,
        })
    }
}

/// Reads `source` into `store`, overwriting keys it already has and giving every
/// imported key no TTL. Returns how many records were imported.
///
/// A bad record stops the import with [`Error::Import`], naming the file and line;
/// the records before it are imported.
pub fn import(
    store: &PersistentStore<JsonText>,
    source: Source,
    progress: bool,
) -> Result<u64, Error> {
    let Source {
        reader,
        len,
        name,
        format,
    } = source;
    let bar = bar(
        progress,
        len,
        "{spinner} importing [{bar:30}] {bytes}/{total_bytes} {msg} (eta {eta})",
        "{spinner} importing {bytes} {msg}",
    );
    let reader = Counted {
        inner: reader,
        bar: bar.clone(),
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut imported = 0u64;
    let read = dataset::read(reader, format, &name, |key, value, _line| {
        batch.push((key, value));
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            imported += store.set_many(full, Expiry::Never)? as u64;
            bar.set_message(format!("{imported} records"));
        }
        Ok(())
    });
    // The records read before a bad one are imported too, as the error message says.
    let rest = if batch.is_empty() {
        Ok(0)
    } else {
        store.set_many(batch, Expiry::Never)
    };
    bar.finish_and_clear();
    let source = match (read, rest) {
        (Ok(_), Ok(n)) => return Ok(imported + n as u64),
        (Err(e), Ok(n)) => {
            imported += n as u64;
            e
        }
        (_, Err(e)) => e,
    };
    Err(Error::Import { source, imported })
}

/// Writes every record of `store` to `file` in its format (`-`: to `out`, JSON Lines
/// unless a format is named). Returns how many records were written. TTLs are not
/// part of any dataset format and are not exported.
pub fn export(
    store: &PersistentStore<JsonText>,
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
    store: &PersistentStore<JsonText>,
    writer: kvcore::Result<Writer<W>>,
    bar: &ProgressBar,
) -> kvcore::Result<(u64, W)> {
    let mut writer = writer?;
    let mut count = 0u64;
    let mut cursor = None;
    loop {
        let page = store.scan(None, cursor.as_deref(), PAGE)?;
        for (key, value) in &page.items {
            writer.write(key, value)?;
        }
        count += page.items.len() as u64;
        bar.inc(page.items.len() as u64);
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
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
struct Counted {
    inner: Box<dyn Read>,
    bar: ProgressBar,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
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
