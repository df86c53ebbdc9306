use super::AppState;
use super::error::{ApiError, ApiResult};
use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// Marks the requests a shutting-down server answers (set by `serve::drain`): readiness fails
/// so that balancers take the server out of rotation while it still serves.
#[derive(Debug, Clone, Copy)]
pub struct ShuttingDown;

/// Liveness: the process answers.
pub async fn ping() -> Json<Value> {
    Json(json!({}))
}

/// Readiness: not shutting down, storage can be used and users can log in as configured.
pub async fn ready(State(state): State<AppState>, stopping: Option<Extension<ShuttingDown>>) -> ApiResult<Json<Value>> {
    if stopping.is_some() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the registry is shutting down",
        ));
    }
    state.registry.check_storage().await?;
    state.auth.check()?;
    Ok(Json(json!({"ready": true})))
}
