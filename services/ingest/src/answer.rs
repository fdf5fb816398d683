//! The answer to a request whose rows were decided: a single event answered on its own (202,
//! or its refusal), a batch with every row accepted or ignored 202, with some refused 207, with
//! none accepted a 422 problem listing the rows.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::problem::Refused;
use crate::rows::RowResult;

/// The answer to `results` (row number and result); `single` when the body was one event.
pub(crate) fn answer_rows(results: &[(u64, RowResult)], single: bool) -> Response {
    if let (true, [(_, result)]) = (single, results) {
        return match result {
            RowResult::Accepted { .. } | RowResult::Ignored { .. } => {
                json_response(StatusCode::ACCEPTED, &json!(result))
            }
            RowResult::Rejected { errors } => Refused::InvalidEvent(errors.clone()).into_response(),
            RowResult::Forbidden { detail } => Refused::NotAllowed(detail.clone()).into_response(),
        };
    }
    let n = |f: fn(&RowResult) -> bool| results.iter().filter(|(_, r)| f(r)).count();
    let accepted = n(|r| matches!(r, RowResult::Accepted { .. }));
    let ignored = n(|r| matches!(r, RowResult::Ignored { .. }));
    let refused = results.len() - accepted - ignored;
    let rows: Vec<Value> = results
        .iter()
        .map(|(row, r)| {
            let mut v = json!(r);
            v["row"] = json!(row);
            v
        })
        .collect();
    if refused > 0 && accepted == 0 {
        return Refused::NoRowAccepted {
            ignored,
            refused,
            rows,
        }
        .into_response();
    }
    let status = if refused == 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::MULTI_STATUS
    };
    json_response(
        status,
        &json!({
            "accepted": accepted,
            "ignored": ignored,
            "rejected": refused,
            "rows": rows,
        }),
    )
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
