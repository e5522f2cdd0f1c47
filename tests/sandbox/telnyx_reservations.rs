//! The Telnyx emulator's number reservations (issue 23) over real HTTP, in strict mode (every
//! request and answer held to tests/contracts/telnyx.json): create, get, list by number,
//! extend, expiry; a held number is sold to no other customer and left out of a search that
//! excludes held numbers.

use crate::common::sandbox::{send, TestSandbox};
use reqwest::Method;
use serde_json::{json, Value};

async fn first_in(sb: &TestSandbox, query: &[(&str, &str)]) -> String {
    let (status, body) = send(
        sb.telnyx(Method::GET, "/available_phone_numbers")
            .query(query),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["data"][0]["phone_number"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn control(sb: &TestSandbox, route: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(sb.url(&format!("/sandbox/telnyx/{route}")))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    crate::common::sandbox::json_of(response).await
}

fn expiry(reservation: &Value) -> chrono::DateTime<chrono::Utc> {
    let at = reservation["phone_numbers"][0]["expired_at"]
        .as_str()
        .unwrap();
    chrono::DateTime::parse_from_rfc3339(at).unwrap().into()
}

#[tokio::test]
async fn a_reservation_holds_a_searched_number_for_thirty_minutes_and_can_be_extended() {
    let sb = TestSandbox::start("empty").await;
    let query = [
        ("filter[national_destination_code]", "734"),
        ("filter[reservable]", "true"),
        ("filter[limit]", "1"),
    ];
    let number = first_in(&sb, &query).await;
    let (status, created) = send(
        sb.telnyx(Method::POST, "/number_reservations")
            .json(&json!({
                "phone_numbers": [{"phone_number": number}],
                "customer_reference": "cwa-add:grace",
            })),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let r = &created["data"];
    assert_eq!(r["status"], "success");
    assert_eq!(r["record_type"], "number_reservation");
    assert_eq!(r["phone_numbers"][0]["phone_number"], json!(number));
    let minutes = (expiry(r) - chrono::Utc::now()).num_minutes();
    assert!((28..=30).contains(&minutes), "{minutes}");
    let id = r["id"].as_str().unwrap();

    let (status, got) = send(sb.telnyx(Method::GET, &format!("/number_reservations/{id}"))).await;
    assert_eq!((status, &got["data"]["id"]), (200, &json!(id)));
    let (status, listed) = send(
        sb.telnyx(Method::GET, "/number_reservations")
            .query(&[("filter[phone_numbers.phone_number]", number.as_str())]),
    )
    .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    let (_, none) = send(
        sb.telnyx(Method::GET, "/number_reservations")
            .query(&[("filter[phone_numbers.phone_number]", "+17345550000")]),
    )
    .await;
    assert_eq!(none["data"], json!([]));

    // Held: in a plain search (it is this account's), out of one that excludes held numbers,
    // never reserved twice, never sold to another customer.
    let again = first_in(&sb, &query).await;
    assert_eq!(again, number);
    let mut excluding = query.to_vec();
    excluding.push(("filter[exclude_held_numbers]", "true"));
    assert_ne!(first_in(&sb, &excluding).await, number);
    let (status, twice) = send(
        sb.telnyx(Method::POST, "/number_reservations")
            .json(&json!({
                "phone_numbers": [{"phone_number": number}],
            })),
    )
    .await;
    assert_eq!(status, 422, "{twice}");
    let (status, _) = control(&sb, "sell_elsewhere", json!({"phone_number": number})).await;
    assert_eq!(status, 409);

    let (status, extended) = send(sb.telnyx(
        Method::POST,
        &format!("/number_reservations/{id}/actions/extend"),
    ))
    .await;
    assert_eq!(status, 200, "{extended}");
    assert!(expiry(&extended["data"]) >= expiry(r));

    // Lapsed: no longer extendable, and another customer may buy it; then it is gone.
    assert_eq!(control(&sb, "lapse", json!({"id": id})).await.0, 200);
    let (status, _) = send(sb.telnyx(
        Method::POST,
        &format!("/number_reservations/{id}/actions/extend"),
    ))
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        control(&sb, "sell_elsewhere", json!({"phone_number": number}))
            .await
            .0,
        200
    );
    let (status, order) = send(sb.telnyx(Method::POST, "/number_orders").json(&json!({
        "phone_numbers": [{"phone_number": number}],
    })))
    .await;
    assert_eq!(status, 422, "sold elsewhere: {order}");
}

#[tokio::test]
async fn only_searched_available_numbers_can_be_reserved() {
    let sb = TestSandbox::start("empty").await;
    let (status, body) = send(
        sb.telnyx(Method::POST, "/number_reservations")
            .json(&json!({
                "phone_numbers": [{"phone_number": "+17346000000"}],
            })),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = send(
        sb.telnyx(Method::POST, "/number_reservations")
            .json(&json!({"phone_numbers": [{"phone_number": "+17346000000"}], "bogus": 1})),
    )
    .await;
    assert_eq!(status, 422, "strict mode refuses an undeclared key: {body}");
    let (status, _) = send(sb.telnyx(Method::GET, "/number_reservations/nope")).await;
    assert_eq!(status, 404);
}
