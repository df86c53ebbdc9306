//! The home page (every package the viewer may read, newest first, paginated), the search
//! results page (Enter in the search box) and the suggestions the search box shows as one types
//! (JSON). Lists come from the registry's listing and its search, which apply the access rules.

use super::chrome::Chrome;
use super::model::{self, Summary};
use super::respond::{self, failure};
use super::viewer::Viewer;
use crate::http::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{Value, json};

pub const PAGE_SIZE: usize = 20;
const SUGGESTIONS: usize = 8;
/// Deeper pages than this are not offered (a page is a slice of a full list).
const MAX_PAGE: usize = 10_000;

/// A list line as the templates show it.
pub struct Line {
    pub s: Summary,
    pub ago: String,
}

fn lines(entries: &[Value]) -> Vec<Line> {
    let now = Utc::now();
    entries
        .iter()
        .filter_map(Summary::from_search_result)
        .map(|s| Line {
            ago: s.date.as_deref().map(|d| model::ago(d, now)).unwrap_or_default(),
            s,
        })
        .collect()
}

/// Previous and next page links of a list.
pub struct Pager {
    pub page: usize,
    pub pages: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

fn pager(page: usize, total: usize, link: impl Fn(usize) -> String) -> Pager {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    Pager {
        page,
        pages,
        prev: (page > 1).then(|| link(page - 1)),
        next: (page < pages).then(|| link(page + 1)),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<usize>,
    #[serde(default)]
    q: String,
}

impl ListQuery {
    fn page(&self) -> usize {
        self.page.unwrap_or(1).clamp(1, MAX_PAGE)
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct Home<'a> {
    chrome: &'a Chrome,
    lines: Vec<Line>,
    total: usize,
    pager: Pager,
}

pub async fn home(State(state): State<AppState>, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let chrome = Chrome::new(&state, &viewer, "").await;
    let page = q.page();
    match state
        .registry
        .list((page - 1) * PAGE_SIZE, PAGE_SIZE, &viewer.who)
        .await
    {
        Ok((entries, total)) => {
            let root = &chrome.root;
            let home = Home {
                chrome: &chrome,
                lines: lines(&entries),
                total,
                pager: pager(page, total, |p| format!("{root}?page={p}")),
            };
            respond::page(StatusCode::OK, &home)
        }
        Err(e) => failure(&chrome, e),
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct Results<'a> {
    chrome: &'a Chrome,
    query: &'a str,
    lines: Vec<Line>,
    total: usize,
    pager: Pager,
}

pub async fn search(State(state): State<AppState>, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let text = q.q.trim();
    let chrome = Chrome::new(&state, &viewer, text).await;
    let page = q.page();
    let found = if text.is_empty() {
        Ok((Vec::new(), 0))
    } else {
        state
            .registry
            .search(text, (page - 1) * PAGE_SIZE, PAGE_SIZE, &viewer.who)
            .await
    };
    match found {
        Ok((entries, total)) => {
            let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
            let root = &chrome.root;
            let results = Results {
                chrome: &chrome,
                query: text,
                lines: lines(&entries),
                total,
                pager: pager(page, total, |p| format!("{root}-/ui/search?q={encoded}&page={p}")),
            };
            respond::page(StatusCode::OK, &results)
        }
        Err(e) => failure(&chrome, e),
    }
}

/// `GET /-/ui/suggest?q=`: the first matches, for the search box.
pub async fn suggest(State(state): State<AppState>, viewer: Viewer, Query(q): Query<ListQuery>) -> Response {
    let text = q.q.trim();
    if text.is_empty() {
        return Json(json!({"results": []})).into_response();
    }
    match state.registry.search(text, 0, SUGGESTIONS, &viewer.who).await {
        Ok((entries, _)) => {
            let results: Vec<Value> = entries
                .iter()
                .filter_map(Summary::from_search_result)
                .map(|s| {
                    json!({
                        "name": s.name,
                        "version": s.version,
                        "description": s.description,
                        "url": format!("{}-/ui/package/{}", viewer.root, s.name),
                    })
                })
                .collect();
            let mut res = Json(json!({ "results": results })).into_response();
            let h = res.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            h.insert(header::VARY, HeaderValue::from_static("Cookie"));
            res
        }
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_a_list() {
        let p = pager(1, 45, |p| format!("?page={p}"));
        assert_eq!((p.pages, p.prev, p.next.as_deref()), (3, None, Some("?page=2")));
        let p = pager(3, 45, |p| format!("?page={p}"));
        assert_eq!((p.prev.as_deref(), p.next), (Some("?page=2"), None));
        assert_eq!(pager(1, 0, |_| String::new()).pages, 1);
    }
}
