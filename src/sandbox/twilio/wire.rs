//! Twilio's wire conventions: error bodies, dates, PascalCase form bodies, `PageSize`/`Page`
//! paging and the v1 list envelope with absolute `meta` URLs.

use super::*;

/// A Twilio error answer: `{code, message, more_info, status}`.
pub(super) fn error(status: u16, code: u32, message: &str) -> ApiResponse {
    ApiResponse::json(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

pub(super) fn not_found(path: &str) -> ApiResponse {
    error(
        404,
        20404,
        &format!("The requested resource {path} was not found"),
    )
}

pub(super) fn missing(parameter: &str) -> ApiResponse {
    error(
        400,
        20001,
        &format!("Missing required parameter {parameter} in the post body"),
    )
}

/// The 401 of a request without the account's Basic credentials.
pub fn unauthorized() -> ApiResponse {
    error(401, 20003, "Authenticate")
}

/// The 429 of Twilio's rate limiter.
pub fn too_many_requests() -> ApiResponse {
    error(429, 20429, "Too Many Requests")
}

/// A Twilio-shaped 5xx for injected faults.
pub fn server_error(status: u16) -> ApiResponse {
    let message = if status == 503 {
        "Service Unavailable"
    } else {
        "Internal Server Error"
    };
    error(status, 20500, message)
}

pub(super) fn rfc2822(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

pub(super) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Form fields of a write, by PascalCase key.
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn required(&self, key: &str) -> Result<&str, ApiResponse> {
        self.get(key).ok_or_else(|| missing(key))
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, ApiResponse> {
        match self.get(key).map(str::to_ascii_lowercase).as_deref() {
            None => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(error(400, 21200, &format!("{key} must be true or false"))),
        }
    }

    pub(super) fn number(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<Option<u32>, ApiResponse> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| range.contains(n))
                .map(Some)
                .ok_or_else(|| {
                    error(
                        400,
                        21200,
                        &format!(
                            "{key} must be an integer from {} to {}",
                            range.start(),
                            range.end()
                        ),
                    )
                }),
        }
    }

    pub(super) fn one_of(
        &self,
        key: &str,
        allowed: &[&str],
    ) -> Result<Option<String>, ApiResponse> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) => Ok(Some(v.to_string())),
            Some(v) => Err(error(
                400,
                21200,
                &format!("{v} is not a valid value for {key}"),
            )),
        }
    }
}

/// `PageSize` and `Page` of a list request.
pub(super) struct Paging {
    pub(super) size: usize,
    pub(super) page: usize,
}

impl Paging {
    pub(super) fn from_request(req: &ApiRequest) -> Result<Self, ApiResponse> {
        let size = match req.query_value("PageSize").map(str::parse::<usize>) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Some(_) => {
                return Err(error(
                    400,
                    20001,
                    "PageSize must be an integer from 1 to 1000",
                ))
            }
        };
        let page = match req.query_value("Page").map(str::parse::<usize>) {
            None => 0,
            Some(Ok(n)) => n,
            Some(Err(_)) => return Err(error(400, 20001, "Page must be a non-negative integer")),
        };
        Ok(Self { size, page })
    }

    /// The query string of page `page`, with the list's filters kept.
    pub(super) fn query(
        &self,
        filters: &[(String, String)],
        page: usize,
        token: Option<String>,
    ) -> String {
        let mut pairs: Vec<(String, String)> = filters.to_vec();
        pairs.push(("PageSize".into(), self.size.to_string()));
        pairs.push(("Page".into(), page.to_string()));
        if let Some(token) = token {
            pairs.push(("PageToken".into(), token));
        }
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

pub(super) fn form_of(req: &ApiRequest) -> Result<Form, ApiResponse> {
    req.form_body().map(Form).map_err(|e| {
        error(
            400,
            20001,
            &format!("The request body is not form-encoded: {e}"),
        )
    })
}

/// A v1 list page: `{<key>: [...], meta: {page, page_size, first_page_url, previous_page_url,
/// url, next_page_url, key}}` with absolute URLs.
pub(super) fn v1_list(req: &ApiRequest, path: &str, key: &str, items: Vec<Value>) -> ApiResponse {
    let paging = match Paging::from_request(req) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let page = page_of(items, paging.page * paging.size, paging.size);
    let link = |n: usize, token: Option<String>| {
        format!("{}{path}?{}", req.base_url, paging.query(&[], n, token))
    };
    let shown = paging.page * paging.size + page.items.len();
    let token = |item: Option<&Value>, prefix: &str| {
        item.and_then(|i| i.get("sid"))
            .and_then(Value::as_str)
            .map(|s| format!("{prefix}{s}"))
    };
    let next = (shown < page.total).then(|| link(paging.page + 1, token(page.items.last(), "PA")));
    let previous =
        (paging.page > 0).then(|| link(paging.page - 1, token(page.items.first(), "PB")));
    let mut body = serde_json::Map::new();
    body.insert(key.to_string(), Value::Array(page.items));
    body.insert(
        "meta".into(),
        json!({
            "page": paging.page,
            "page_size": paging.size,
            "first_page_url": link(0, None),
            "previous_page_url": previous,
            "url": link(paging.page, None),
            "next_page_url": next,
            "key": key,
        }),
    );
    ApiResponse::json(200, &Value::Object(body))
}

/// Twilio's answer to a request strict mode refuses (400 / 20001 naming the parameter, 404 /
/// 20404 for a route no contract declares), or a 500 for an answer that broke its own schema.
pub fn contract_violation(
    status: u16,
    violation: &crate::sandbox::contract::Violation,
) -> ApiResponse {
    let code = match status {
        404 => 20404,
        500 => 20500,
        _ => 20001,
    };
    error(status, code, &violation.to_string())
}
