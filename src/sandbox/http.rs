//! The request and response values the emulators work on. Handlers are pure functions of
//! (state, [`ApiRequest`]) so the same code serves live traffic and replays the mutation journal.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// One HTTP request as an emulator sees it: path without the query, decoded query pairs,
/// raw body, and the instant it is handled (recorded, so a replay reproduces timestamps).
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: &'a [(String, String)],
    pub content_type: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
    pub now: DateTime<Utc>,
    /// `http://127.0.0.1:PORT`, for the absolute links some APIs return.
    pub base_url: &'a str,
}

impl ApiRequest<'_> {
    /// Non-empty path segments, so `/v2/phone_numbers/` and `/v2/phone_numbers` route alike.
    pub fn segments(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }

    /// The first value of a query key.
    pub fn query_value(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON; an empty body reads as an empty object.
    pub fn json_body(&self) -> Result<Value, String> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_slice(self.body).map_err(|e| e.to_string())
    }

    /// The body as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form_body(&self) -> Result<Vec<(String, String)>, String> {
        serde_urlencoded::from_bytes(self.body).map_err(|e| e.to_string())
    }

    /// Whether this request can change provider state (anything but GET/HEAD).
    pub fn is_write(&self) -> bool {
        !matches!(self.method, "GET" | "HEAD")
    }
}

/// Decodes a raw query string into ordered pairs (`page%5Bsize%5D=5` -> `page[size]`, `5`).
pub fn parse_query(raw: Option<&str>) -> Vec<(String, String)> {
    raw.and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
}

/// One emulator answer, with what the request log needs to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The object the request read or wrote, when there is one.
    pub resource_id: Option<String>,
    /// Whether the request was a write (whatever its outcome).
    pub write: bool,
}

impl ApiResponse {
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: serde_json::to_vec(body).unwrap_or_default(),
            resource_id: None,
            write: false,
        }
    }

    pub fn empty(status: u16) -> Self {
        Self {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Vec::new(),
            resource_id: None,
            write: false,
        }
    }

    pub fn with_resource(mut self, id: Option<impl Into<String>>) -> Self {
        if self.resource_id.is_none() {
            self.resource_id = id.map(Into::into);
        }
        self
    }

    pub fn with_write(mut self, write: bool) -> Self {
        self.write = write;
        self
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A slice of a list: the items of one page and the numbers a pager needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: usize,
}

/// Cuts `items` into the page starting at `offset`.
pub fn page_of<T>(items: Vec<T>, offset: usize, size: usize) -> Page<T> {
    let total = items.len();
    let items = items.into_iter().skip(offset).take(size).collect();
    Page { items, total }
}
