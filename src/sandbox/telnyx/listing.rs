//! Lists: sorting and `page[number]`/`page[size]` paging with Telnyx's `meta`.

use super::*;

/// Sorts by `sort` (`field` ascending, `-field` descending), ids breaking ties.
pub(super) fn sort_objects(
    items: &mut [&Value],
    sort: Option<&str>,
    default: &str,
    key_of: impl Fn(&Value, &str) -> String,
) {
    let sort = sort.filter(|s| !s.is_empty()).unwrap_or(default);
    let (descending, field) = match sort.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, sort),
    };
    let field = match field {
        "connection_name"
        | "phone_number"
        | "active"
        | "purchased_at"
        | "created_at"
        | "usage_payment_method"
        | "name" => field,
        _ => "created_at",
    };
    items.sort_by_cached_key(|v| (key_of(v, field), numeric_id(v)));
    if descending {
        items.reverse();
    }
}

/// A field's value as a sortable string.
pub(super) fn sort_key(object: &Value, field: &str) -> String {
    match object.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

pub(super) fn numeric_id(object: &Value) -> (usize, String) {
    let id = str_field(object, "id").unwrap_or_default();
    (id.len(), id.to_string())
}

/// `page[number]` and `page[size]` of a list request.
pub(super) struct Paging {
    number: usize,
    size: usize,
}

impl Paging {
    pub(super) fn from_request(req: &ApiRequest) -> Result<Self, ApiResponse> {
        let number = match req.query_value("page[number]").map(str::parse::<usize>) {
            None => 1,
            Some(Ok(n)) if n >= 1 => n,
            Some(_) => {
                return Err(bad_parameter(
                    "page[number]",
                    "page[number] must be an integer of at least 1.",
                ))
            }
        };
        let size = match req.query_value("page[size]").map(str::parse::<usize>) {
            None => DEFAULT_PAGE_SIZE,
            Some(Ok(n)) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            Some(_) => {
                return Err(bad_parameter(
                    "page[size]",
                    "page[size] must be between 1 and 250.",
                ))
            }
        };
        Ok(Self { number, size })
    }

    pub(super) fn respond(
        &self,
        items: Vec<&Value>,
        render: impl Fn(&Value) -> Value,
    ) -> ApiResponse {
        let page = page_of(items, (self.number - 1) * self.size, self.size);
        let total_pages = page.total.div_ceil(self.size);
        let data: Vec<Value> = page.items.into_iter().map(render).collect();
        ApiResponse::json(
            200,
            &json!({
                "data": data,
                "meta": {
                    "page_number": self.number,
                    "page_size": self.size,
                    "total_pages": total_pages,
                    "total_results": page.total,
                }
            }),
        )
    }
}
