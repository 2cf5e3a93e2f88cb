//! Piped mode: one command per line of standard input, as a script.
//!
//! Every line runs, whatever happened on the lines before it. A line that fails is
//! reported on the error stream as `line N: error: ...`, and one whose key is missing
//! as `line N: not found: KEY`; the script's status is [`Status::Failed`] if any line
//! failed and [`Status::Done`] otherwise — a missing key is an answer, not a failure.
//! Blank lines and lines starting with `#` are skipped; `quit` ends the script early.

use std::io::{BufRead, BufWriter, Write};

use crate::cmd::Command;
use crate::exec::{Outcome, Session};
use crate::{Error, Status};

/// Runs every line of `input` in `session`, writing results to `out` and reports to
/// `err`.
///
/// ```
/// use kvcli::{Session, Status, script};
/// use kvcore::persist::Fsync;
///
/// let dir = tempfile::tempdir()?;
/// let mut session = Session::new(dir.path(), Fsync::No);
/// let (mut out, mut err) = (Vec::new(), Vec::new());
/// let input = "set a 1\nincr a x\nget a\nget b\n";
/// let status = script::run(&mut session, input.as_bytes(), &mut out, &mut err);
/// assert_eq!(status, Status::Failed);
/// assert_eq!(String::from_utf8(out)?, "1\n");
/// let err = String::from_utf8(err)?;
/// assert!(err.starts_with("line 2: error: BY must be"), "{err}");
/// assert!(err.ends_with("line 4: not found: b\n"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn run(
    session: &mut Session,
    input: impl BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Status {
    let mut failed = false;
    // Results are buffered for speed and flushed after every line, so they stay in
    // step with the reports on the error stream.
    let mut out = BufWriter::new(out);
    for (i, line) in input.split(b'\n').enumerate() {
        let n = i + 1;
        let result = match line {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => run_line(session, text.trim_end_matches('\r'), &mut out),
                Err(_) => Err(Error::Usage("the line is not valid UTF-8".into())),
            },
            Err(e) => {
                let _ = writeln!(err, "line {n}: error: reading standard input: {e}");
                failed = true;
                break;
            }
        };
        let flushed = out.flush().map_err(Error::Output);
        match result.and_then(|outcome| flushed.map(|()| outcome)) {
            Ok(Outcome::Done) | Ok(Outcome::NotFound(None)) => {}
            Ok(Outcome::NotFound(Some(key))) => {
                let _ = writeln!(err, "line {n}: not found: {key}");
            }
            Ok(Outcome::Quit) => break,
            Err(e) if e.is_broken_pipe() => break,
            Err(e) => {
                failed = true;
                let _ = writeln!(err, "line {n}: error: {e}");
            }
        }
    }
    if let Err(e) = session.close() {
        let _ = writeln!(err, "error: {e}");
        failed = true;
    }
    if failed { Status::Failed } else { Status::Done }
}

fn run_line(session: &mut Session, line: &str, out: &mut dyn Write) -> Result<Outcome, Error> {
    match Command::parse_line(line)? {
        Some(cmd) => session.execute(&cmd, out),
        None => Ok(Outcome::Done),
    }
}
