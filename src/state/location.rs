//! Where state lives: the `state/` directory (the default), or a workspace in a PostgreSQL
//! database named by `--state postgres://…` or `CWA_STATE_URL`.

use std::path::{Path, PathBuf};

use super::StateError;

/// The workspace a PostgreSQL URL names when neither `?workspace=` nor `--workspace` does.
pub const DEFAULT_WORKSPACE: &str = "default";

/// A parsed `--state` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Dir(PathBuf),
    Postgres(PgTarget),
}

/// One workspace in one database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PgTarget {
    /// The URL the driver connects with (`workspace` removed from its query).
    pub url: String,
    pub workspace: String,
}

impl PgTarget {
    /// The URL with any password removed, and the workspace: what cwa prints and names in
    /// errors (a password never reaches output, files or logs).
    pub fn shown(&self) -> String {
        format!("{} (workspace {})", redact(&self.url), self.workspace)
    }
}

/// Whether a `--state` value names a database rather than a directory.
pub fn is_url(value: &str) -> bool {
    let lower = value.to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Parses `--state` (a directory or a URL) with `--workspace`, which wins over the URL's
/// `?workspace=`. A workspace given for a directory is refused: a directory holds one state.
pub fn parse(value: &Path, workspace: Option<&str>) -> Result<Location, StateError> {
    let text = value.to_string_lossy();
    if !is_url(&text) {
        if let Some(ws) = workspace {
            return Err(StateError::BadLocation {
                given: text.into_owned(),
                detail: format!("--workspace {ws} names a workspace, but {} is a state directory, which holds one state", value.display()),
            });
        }
        return Ok(Location::Dir(value.to_path_buf()));
    }
    let (base, query) = text.split_once('?').unwrap_or((&text, ""));
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| StateError::BadLocation {
            given: redact(&text),
            detail: format!("its query is not key=value pairs: {e}"),
        })?;
    let mut from_url = None;
    let rest: Vec<&(String, String)> = pairs
        .iter()
        .filter(|(k, v)| {
            let is_ws = k == "workspace";
            if is_ws {
                from_url = Some(v.clone());
            }
            !is_ws
        })
        .collect();
    let workspace = workspace
        .map(str::to_string)
        .or(from_url)
        .unwrap_or_else(|| DEFAULT_WORKSPACE.to_string());
    check_workspace(&workspace).map_err(|detail| StateError::BadLocation {
        given: redact(&text),
        detail,
    })?;
    let query = serde_urlencoded::to_string(rest).unwrap_or_default();
    let url = if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    };
    url.parse::<tokio_postgres::Config>()
        .map_err(|e| StateError::BadLocation {
            given: redact(&text),
            detail: format!("not a PostgreSQL connection URL: {e}"),
        })?;
    Ok(Location::Postgres(PgTarget { url, workspace }))
}

/// A workspace name is a short identifier, so it reads the same in a URL, a shell and a row.
fn check_workspace(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "workspace {name:?} is not a name of 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// The URL without a password, in the authority (`user:secret@`) or the query
/// (`password=`).
pub fn redact(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let mut out = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let authority = match authority.rsplit_once('@') {
                Some((user, host)) => {
                    let user = user.split(':').next().unwrap_or_default();
                    format!("{user}@{host}")
                }
                None => authority.to_string(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => base.to_string(),
    };
    if let Some(q) = query {
        let kept: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=(redacted)"),
                _ => pair.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_is_a_directory_and_takes_no_workspace() {
        assert_eq!(
            parse(Path::new("state"), None).unwrap(),
            Location::Dir("state".into())
        );
        assert!(parse(Path::new("state"), Some("ci")).is_err());
    }

    #[test]
    fn workspace_comes_from_the_flag_then_the_url_then_the_default() {
        let url = Path::new("postgres://cwa:s3cret@db.example/cwa?workspace=prod&sslmode=require");
        let Location::Postgres(t) = parse(url, None).unwrap() else {
            panic!("a url")
        };
        assert_eq!(t.workspace, "prod");
        assert_eq!(
            t.url,
            "postgres://cwa:s3cret@db.example/cwa?sslmode=require"
        );
        let Location::Postgres(t) = parse(url, Some("staging")).unwrap() else {
            panic!("a url")
        };
        assert_eq!(t.workspace, "staging");
        let Location::Postgres(t) = parse(Path::new("postgresql://h/db"), None).unwrap() else {
            panic!("a url")
        };
        assert_eq!(t.workspace, DEFAULT_WORKSPACE);
        assert!(parse(Path::new("postgres://h/db?workspace=a%20b"), None).is_err());
    }

    #[test]
    fn shown_urls_never_hold_the_password() {
        for url in [
            "postgres://cwa:s3cret@db.example:5432/cwa",
            "postgres://db.example/cwa?user=cwa&password=s3cret",
            "postgresql://cwa:s3cret@%2Ftmp%2Fsock/cwa?workspace=x",
        ] {
            let Location::Postgres(t) = parse(Path::new(url), None).unwrap() else {
                panic!("a url")
            };
            assert!(!t.shown().contains("s3cret"), "{}", t.shown());
            assert!(!redact(url).contains("s3cret"), "{url}");
        }
    }
}
