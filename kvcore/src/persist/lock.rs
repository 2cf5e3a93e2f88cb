//! The lock that keeps two processes (and two opens in one process) off one data
//! directory.

use super::*;

/// The exclusive lock on a data directory, released when dropped.
///
/// Across processes: an exclusive `flock` on `DIR/LOCK`, which holds the owner's pid.
/// Within this process: a registry of open directories, since a lock is also held,
/// for a moment, by every child process forked while it is open (until the child
/// execs and its copy closes); an open that finds only such a copy waits it out.
#[derive(Debug)]
pub(super) struct DirLock {
    _file: File,
    dir: PathBuf,
}

/// Directories this process has open, canonicalized.
pub(super) static OPEN_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// How long an open waits for forked children to let go of a lock this process held.
pub(super) const FORK_GRACE: Duration = Duration::from_secs(2);

impl DirLock {
    pub(super) fn acquire(dir: &Path) -> Result<DirLock> {
        let canonical = dir.canonicalize().map_err(io_err(dir))?;
        let ours = std::process::id();
        let mut open = OPEN_DIRS.lock();
        if open.contains(&canonical) {
            return Err(Error::Locked {
                path: dir.to_path_buf(),
                pid: Some(ours),
            });
        }
        let path = dir.join(LOCK);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let mut waited = Duration::ZERO;
        loop {
            match try_lock(&mut file, &path)? {
                None => break,
                // Only a fork of ours holds it; that copy closes when the child execs.
                Some(Holder { pid: Some(pid) }) if pid == ours && waited < FORK_GRACE => {
                    std::thread::sleep(Duration::from_millis(1));
                    waited += Duration::from_millis(1);
                }
                Some(Holder { pid }) => {
                    return Err(Error::Locked {
                        path: dir.to_path_buf(),
                        pid,
                    });
                }
            }
        }
        // Looking for a holder may have read the file: write the pid from the start.
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(ours.to_string().as_bytes()))
            .map_err(io_err(&path))?;
        open.push(canonical.clone());
        Ok(DirLock {
            _file: file,
            dir: canonical,
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        OPEN_DIRS.lock().retain(|d| *d != self.dir);
    }
}

/// Tries the `flock` on `file`: `None` when taken, `Some(holder pid)` when held.
pub(super) fn try_lock(file: &mut File, path: &Path) -> Result<Option<Holder>> {
    match file.try_lock() {
        Ok(()) => Ok(None),
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.seek(SeekFrom::Start(0));
            let _ = file.read_to_string(&mut text);
            Ok(Some(Holder {
                pid: text.trim().parse().ok(),
            }))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Whether a process holds `dir` open, and its id when known: `None` when the
/// directory is free or does not exist. Looking changes nothing in the directory.
pub fn holder(dir: &Path) -> Option<Holder> {
    if let Ok(canonical) = dir.canonicalize()
        && OPEN_DIRS.lock().contains(&canonical)
    {
        return Some(Holder {
            pid: Some(std::process::id()),
        });
    }
    let path = dir.join(LOCK);
    let mut file = File::open(&path).ok()?;
    // Dropping the file releases the lock if this look took it.
    try_lock(&mut file, &path).ok().flatten()
}
