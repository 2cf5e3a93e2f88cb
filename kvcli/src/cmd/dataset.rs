//! `import` and `export`: datasets in and out (the streaming is [`crate::transfer`]'s).

use std::io::Write;
use std::path::{Path, PathBuf};

use kvcore::dataset::Format;

use super::{Command, Spec};
use crate::Error;
use crate::command::parse_format;
use crate::exec::{Outcome, Session, line};
use crate::transfer;

/// `import FILE [--format F]`
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// The file to read; `-` is standard input.
    pub file: PathBuf,
    /// The format named with `--format`; otherwise chosen by the file's extension.
    pub format: Option<Format>,
}

/// The spec of [`Import`].
pub const IMPORT: Spec = Spec {
    name: "import",
    aliases: &[],
    args: "FILE [--format F]",
    about: "load records from FILE (- is stdin, one-shot only)",
    status: "",
    writes: true,
    needs_dir: true,
    takes_format: true,
    synonyms: &[("load", "import")],
    parse: |args| {
        let (file, format) = parse_transfer(args).ok_or_else(|| IMPORT.usage())??;
        Ok(Command::Import(Import { file, format }))
    },
};

impl Import {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        // The file is opened (and its format settled) before the store, so that a
        // refused import creates no data directory.
        if self.file == Path::new("-") && !session.stdin_free {
            return Err(Error::Usage(
                "import - reads standard input, which only a one-shot command can \
                 spare: run `kvcli DIR import - < FILE`"
                    .into(),
            ));
        }
        let source = transfer::Source::open(&self.file, self.format.or(session.default_format))?;
        let store = session.open()?;
        let n = transfer::import(&store, source, &session.limits, session.progress)?;
        line(out, &format!("imported {n} records"))?;
        Ok(Outcome::Done)
    }
}

/// `export FILE [--format F]`
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The file to write; `-` is standard output.
    pub file: PathBuf,
    /// The format named with `--format`; otherwise chosen by the file's extension.
    pub format: Option<Format>,
}

/// The spec of [`Export`].
pub const EXPORT: Spec = Spec {
    name: "export",
    aliases: &[],
    args: "FILE [--format F]",
    about: "write every record to FILE (- is stdout, JSON Lines by default)",
    status: "",
    writes: false,
    needs_dir: true,
    takes_format: true,
    synonyms: &[("dump", "export")],
    parse: |args| {
        let (file, format) = parse_transfer(args).ok_or_else(|| EXPORT.usage())??;
        Ok(Command::Export(Export { file, format }))
    },
};

impl Export {
    pub(crate) fn run(&self, session: &mut Session, out: &mut dyn Write) -> Result<Outcome, Error> {
        let format = self.format.or(session.default_format);
        transfer::resolve_format(&self.file, format)?;
        let store = session.open()?;
        if self.file == Path::new("-") {
            transfer::export(&store, &self.file, format, false, out)?;
        } else {
            let n = transfer::export(&store, &self.file, format, session.progress, out)?;
            line(out, &format!("exported {n} records"))?;
        }
        Ok(Outcome::Done)
    }
}

/// `FILE [--format F]` (the flag may come first, and as `--format=F`). `None` when
/// the arguments do not have that shape.
fn parse_transfer(args: &[&str]) -> Option<Result<(PathBuf, Option<Format>), Error>> {
    let mut file = None;
    let mut format = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = if *arg == "--format" {
            Some(*args.next()?)
        } else {
            arg.strip_prefix("--format=")
        };
        match value {
            Some(_) if format.is_some() => return None,
            Some(name) => match parse_format(name) {
                Ok(f) => format = Some(f),
                Err(e) => return Some(Err(Error::Usage(e))),
            },
            None if file.is_some() => return None,
            None => file = Some(PathBuf::from(arg)),
        }
    }
    Some(Ok((file?, format)))
}
