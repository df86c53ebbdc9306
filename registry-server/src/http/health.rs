use super::AppState;
use super::error::ApiResult;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// Liveness: the process answers.
pub async fn ping() -> Json<Value> {
    Json(json!({}))
}

/// Readiness: storage can be used and users can log in as configured.
pub async fn ready(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    state.registry.check_storage().await?;
    state.auth.check()?;
    Ok(Json(json!({"ready": true})))
}
