//! Comparing rendered files with `generated/`, and writing them.
//!
//! specgen only ever changes files that carry its header. A file without it (say, what a build of
//! the generated crate leaves behind, or a file the user put there) is never reported, changed or
//! deleted. Writes go through a temporary file and a rename, so a file is either old or new.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::render::{File, is_generated};

/// How one rendered file relates to what is on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Unchanged,
    Missing,
    Stale,
    /// A file is there that specgen did not write; specgen will not overwrite it.
    Foreign,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub files: Vec<(File, Status)>,
    /// Files that carry specgen's header but that no spec produces now.
    pub orphans: Vec<PathBuf>,
}

impl Plan {
    pub fn stale(&self) -> impl Iterator<Item = (&File, &Status)> {
        self.files
            .iter()
            .filter(|(_, s)| matches!(s, Status::Missing | Status::Stale))
            .map(|(f, s)| (f, s))
    }

    pub fn foreign(&self) -> impl Iterator<Item = &File> {
        self.files.iter().filter(|(_, s)| *s == Status::Foreign).map(|(f, _)| f)
    }
}

/// Compares rendered files with the output directory. `scan` lists the directories (relative
/// to `out`) in which files with the header but no spec behind them count as orphans.
pub fn plan(out: &Path, files: Vec<File>, scan: &[PathBuf], scan_top: bool) -> io::Result<Plan> {
    let mut plan = Plan::default();
    let mut produced = BTreeSet::new();
    for file in files {
        let status = status(out, &file)?;
        produced.insert(file.path.clone());
        plan.files.push((file, status));
    }
    let mut candidates = Vec::new();
    for dir in scan {
        walk(&out.join(dir), &mut candidates)?;
    }
    // A check of every spec scans the whole folder: a spec that was removed leaves orphans in
    // a folder no current spec names.
    if scan_top {
        walk(out, &mut candidates)?;
    }
    for path in candidates {
        let rel = path.strip_prefix(out).unwrap_or(&path).to_path_buf();
        if produced.contains(&rel) || !owned(&path)? {
            continue;
        }
        plan.orphans.push(rel);
    }
    plan.orphans.sort();
    plan.orphans.dedup();
    Ok(plan)
}

fn status(out: &Path, file: &File) -> io::Result<Status> {
    let path = out.join(&file.path);
    match fs::read(&path) {
        Ok(existing) if existing == file.bytes => Ok(Status::Unchanged),
        Ok(_) if owned(&path)? => Ok(Status::Stale),
        Ok(_) => Ok(Status::Foreign),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if path.is_dir() {
                Ok(Status::Foreign)
            } else {
                Ok(Status::Missing)
            }
        }
        Err(e) if path.is_dir() => {
            let _ = e;
            Ok(Status::Foreign)
        }
        Err(e) => Err(e),
    }
}

/// Whether specgen wrote this file: it carries the header, or it is a `Cargo.lock` beside a
/// `Cargo.toml` that does (Cargo allows no foreign lines in its lock file).
pub fn owned(path: &Path) -> io::Result<bool> {
    if path.file_name().is_some_and(|n| n == "Cargo.lock") {
        return match path.parent() {
            Some(dir) => owned(&dir.join("Cargo.toml")),
            None => Ok(false),
        };
    }
    match fs::read(path) {
        Ok(bytes) => Ok(is_generated(&bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let kind = entry.file_type()?;
        // Build output of the generated crate is the consumer's, never specgen's.
        if kind.is_dir() && entry.file_name() != "target" {
            walk(&entry.path(), found)?;
        } else if kind.is_file() {
            found.push(entry.path());
        }
    }
    Ok(())
}

/// Writes the missing and stale files and removes orphans. Refuses, before touching anything,
/// when a file in the way was not written by specgen.
pub fn apply(out: &Path, plan: &Plan) -> Result<Vec<PathBuf>, ApplyError> {
    if let Some(file) = plan.foreign().next() {
        return Err(ApplyError::Foreign(out.join(&file.path)));
    }
    for (file, status) in &plan.files {
        if matches!(status, Status::Missing | Status::Stale) {
            refuse_symlinked_dirs(out, &file.path)?;
        }
    }
    let mut written = Vec::new();
    for (file, status) in &plan.files {
        match status {
            Status::Unchanged => tracing::debug!(path = %file.path.display(), "unchanged"),
            Status::Missing | Status::Stale => {
                write_atomic(&out.join(&file.path), &file.bytes)
                    .map_err(|e| ApplyError::Io(out.join(&file.path), e))?;
                tracing::debug!(path = %file.path.display(), "written");
                written.push(file.path.clone());
            }
            Status::Foreign => unreachable!("refused above"),
        }
    }
    for orphan in &plan.orphans {
        let path = out.join(orphan);
        // Checked again right before deleting: the header is what makes a file ours.
        if owned(&path).map_err(|e| ApplyError::Io(path.clone(), e))? {
            fs::remove_file(&path).map_err(|e| ApplyError::Io(path.clone(), e))?;
            tracing::debug!(path = %orphan.display(), "orphan removed");
        }
    }
    Ok(written)
}

/// Refuses to write through a symlinked folder inside the output directory: the write would land
/// outside it, in files specgen never wrote.
fn refuse_symlinked_dirs(out: &Path, rel: &Path) -> Result<(), ApplyError> {
    let mut dir = out.to_path_buf();
    for part in rel.parent().into_iter().flat_map(Path::components) {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => return Err(ApplyError::Symlink(dir)),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(ApplyError::Io(dir, e)),
        }
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("refusing to write through {0}: it is a symbolic link out of the output folder")]
    Symlink(PathBuf),
    #[error("refusing to overwrite {0}: specgen did not write it (it has no specgen header)")]
    Foreign(PathBuf),
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, io::Error),
}

fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.specgen-tmp"));
    fs::write(&tmp, bytes)?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}
