//! `GET /-/v1/search?text=&size=&from=` over local packages.

use super::AppState;
use super::error::ApiResult;
use super::identity::Caller;
use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

const MAX_SIZE: usize = 250;

#[derive(Debug, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    text: String,
    size: Option<usize>,
    from: Option<usize>,
}

pub async fn search(
    State(state): State<AppState>,
    Caller(who): Caller,
    Query(params): Query<SearchParams>,
) -> ApiResult<Json<Value>> {
    let size = params.size.unwrap_or(20).clamp(1, MAX_SIZE);
    let (objects, total) = state
        .registry
        .search(&params.text, params.from.unwrap_or(0), size, &who)
        .await?;
    Ok(Json(json!({
        "objects": objects,
        "total": total,
        "time": chrono::Utc::now().to_rfc2822(),
    })))
}
