//! Which files the server may open: only those that really lie inside the
//! store root.
//!
//! A request names a path relative to the store. It is refused outright if
//! any segment is `.` or `..` or empty (once the router has percent-decoded
//! it, so `%2e%2e` is caught too) or if it is absolute. What is left is
//! joined to the root and canonicalised, which resolves every symlink, and
//! the result must still lie under the canonical root. That second check is
//! what stops a symlink inside the store from pointing out of it, while the
//! store's own `latest` links, which point at runs inside it, still work.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Why a path of a request cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PathRejection {
    /// Not a plain relative path: absolute, or with `.`, `..` or empty
    /// segments.
    #[error("{0:?} is not a plain path inside the store")]
    NotPlain(String),
    /// The path exists, but resolving its symlinks leads out of the store.
    #[error("{0:?} leads outside the store")]
    Outside(String),
    /// Nothing is there.
    #[error("{0:?} is not in the store")]
    NotFound(String),
    /// Something is there, but it could not be resolved.
    #[error("cannot open {path:?}: {source}")]
    Unreadable {
        /// The requested path.
        path: String,
        /// What the file system said.
        source: io::Error,
    },
}

/// The store root the server browses, canonicalised once at startup so
/// containment can be checked by comparing path prefixes.
#[derive(Debug, Clone)]
pub struct StoreRoot {
    canonical: PathBuf,
}

impl StoreRoot {
    /// Opens the store at `path`: it must exist and be a directory.
    pub fn open(path: &Path) -> Result<StoreRoot> {
        let canonical = path.canonicalize().with_context(|| {
            format!(
                "the store {} does not exist or cannot be read (run `faultline test` first, or pass --store)",
                path.display()
            )
        })?;
        if !canonical.is_dir() {
            anyhow::bail!("the store {} is not a directory", path.display());
        }
        Ok(StoreRoot { canonical })
    }

    /// The root, canonical (absolute, without symlinks).
    pub fn path(&self) -> &Path {
        &self.canonical
    }

    /// Resolves `relative` (segments separated by `/`, already
    /// percent-decoded; one trailing `/` allowed) to a canonical path inside
    /// the store.
    pub fn resolve(&self, relative: &str) -> Result<PathBuf, PathRejection> {
        let segments = plain_segments(relative)
            .ok_or_else(|| PathRejection::NotPlain(relative.to_string()))?;
        let mut joined = self.canonical.clone();
        joined.extend(segments);
        let resolved = joined
            .canonicalize()
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => {
                    PathRejection::NotFound(relative.to_string())
                }
                _ => PathRejection::Unreadable {
                    path: relative.to_string(),
                    source,
                },
            })?;
        if !resolved.starts_with(&self.canonical) {
            return Err(PathRejection::Outside(relative.to_string()));
        }
        Ok(resolved)
    }

    /// The names leading from the root to `canonical` (a path from
    /// [`StoreRoot::resolve`]), or `None` if it is not under the root or a
    /// name is not UTF-8.
    pub fn names_under(&self, canonical: &Path) -> Option<Vec<String>> {
        canonical
            .strip_prefix(&self.canonical)
            .ok()?
            .components()
            .map(|c| c.as_os_str().to_str().map(str::to_string))
            .collect()
    }
}

/// The segments of `relative`, or `None` unless every one is a plain name.
fn plain_segments(relative: &str) -> Option<Vec<&str>> {
    let trimmed = relative.strip_suffix('/').unwrap_or(relative);
    if trimmed.is_empty() || trimmed.contains('\0') {
        return None;
    }
    let segments: Vec<&str> = trimmed.split('/').collect();
    segments
        .iter()
        .all(|s| !matches!(*s, "" | "." | ".."))
        .then_some(segments)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    /// A store holding one run (with the `latest` links `faultline test`
    /// makes) beside a secret file outside it.
    fn store_with_secret_beside() -> (tempfile::TempDir, StoreRoot) {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("secret.txt"), "outside").unwrap();
        let root = tmp.path().join("store");
        let run = root.join("t/20261123T112835Z-7");
        fs::create_dir_all(&run).unwrap();
        fs::write(run.join("results.json"), "{}").unwrap();
        symlink("20261123T112835Z-7", root.join("t/latest")).unwrap();
        symlink("t/20261123T112835Z-7", root.join("latest")).unwrap();
        let store = StoreRoot::open(&root).unwrap();
        (tmp, store)
    }

    #[test]
    fn plain_paths_inside_resolve() {
        let (_tmp, store) = store_with_secret_beside();
        let path = store.resolve("t/20261123T112835Z-7/results.json").unwrap();
        assert!(path.starts_with(store.path()));
        assert!(path.is_file());
        assert!(store.resolve("t/20261123T112835Z-7/").unwrap().is_dir());
    }

    #[test]
    fn latest_links_that_stay_inside_are_followed() {
        let (_tmp, store) = store_with_secret_beside();
        let via_root = store.resolve("latest/results.json").unwrap();
        let via_test = store.resolve("t/latest/results.json").unwrap();
        assert_eq!(via_root, via_test);
        assert_eq!(
            store.names_under(&via_root).unwrap(),
            ["t", "20261123T112835Z-7", "results.json"]
        );
    }

    #[test]
    fn dot_dot_segments_are_refused_even_when_they_stay_inside() {
        let (_tmp, store) = store_with_secret_beside();
        for path in [
            "../secret.txt",
            "t/../../secret.txt",
            "t/../t/latest/results.json",
            "./latest",
            "t//latest",
            "",
        ] {
            assert!(
                matches!(store.resolve(path), Err(PathRejection::NotPlain(_))),
                "{path:?} was not refused"
            );
        }
    }

    #[test]
    fn absolute_paths_are_refused() {
        let (tmp, store) = store_with_secret_beside();
        let secret = tmp.path().join("secret.txt");
        let err = store.resolve(secret.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, PathRejection::NotPlain(_)), "{err}");
        assert!(matches!(
            store.resolve("/etc/passwd"),
            Err(PathRejection::NotPlain(_))
        ));
    }

    #[test]
    fn symlinks_escaping_the_store_are_refused() {
        let (tmp, store) = store_with_secret_beside();
        symlink(tmp.path().join("secret.txt"), store.path().join("t/leak")).unwrap();
        symlink(tmp.path(), store.path().join("up")).unwrap();
        for path in ["t/leak", "up/secret.txt"] {
            let err = store.resolve(path).unwrap_err();
            assert!(matches!(err, PathRejection::Outside(_)), "{path}: {err}");
        }
    }

    #[test]
    fn missing_files_are_not_found() {
        let (_tmp, store) = store_with_secret_beside();
        for path in ["t/nope", "t/20261123T112835Z-7/results.json/x"] {
            assert!(
                matches!(store.resolve(path), Err(PathRejection::NotFound(_))),
                "{path}"
            );
        }
    }

    #[test]
    fn a_store_that_does_not_exist_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = StoreRoot::open(&tmp.path().join("nowhere")).unwrap_err();
        assert!(format!("{err:#}").contains("does not exist"), "{err:#}");
        let file = tmp.path().join("file");
        fs::write(&file, "x").unwrap();
        let err = StoreRoot::open(&file).unwrap_err();
        assert!(format!("{err:#}").contains("not a directory"), "{err:#}");
    }
}
