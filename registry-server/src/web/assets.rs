//! The UI's stylesheet, scripts and icon, written for this project and embedded in the binary,
//! plus the configured logo (read once at start). Each is served under a name carrying a hash of
//! its content, so browsers may keep it for a year: a new build or logo is a new name.

use crate::http::encoding;
use crate::registry::Encoding;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::sync::Arc;

const CSS: &str = include_str!("assets/app.css");
const THEME_JS: &str = include_str!("assets/theme.js");
const APP_JS: &str = include_str!("assets/app.js");
const FAVICON: &str = include_str!("assets/favicon.svg");

/// A file's content type and its extension in URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kind {
    pub content_type: &'static str,
    pub extension: &'static str,
}

pub const SVG: Kind = Kind {
    content_type: "image/svg+xml",
    extension: "svg",
};

struct Asset {
    file: String,
    kind: Kind,
    body: Bytes,
    gzip: Option<Bytes>,
}

impl Asset {
    fn new(stem: &str, kind: Kind, body: Bytes) -> Asset {
        let hash = hex::encode(&Sha256::digest(&body)[..6]);
        let gzip = (kind.content_type.starts_with("text/") || kind == SVG).then(|| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(&body).expect("writing to a Vec cannot fail");
            Bytes::from(e.finish().expect("writing to a Vec cannot fail"))
        });
        Asset {
            file: format!("{stem}.{hash}.{}", kind.extension),
            kind,
            body,
            gzip,
        }
    }

    fn response(&self, headers: &HeaderMap) -> Response {
        let accept = headers.get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok());
        let (body, gzipped) = match (&self.gzip, encoding::negotiate(accept)) {
            (Some(gz), Encoding::Gzip | Encoding::Brotli) => (gz.clone(), true),
            _ => (self.body.clone(), false),
        };
        let mut res = body.into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.kind.content_type));
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        // An SVG opened on its own is a document of our origin: it may draw, never run anything.
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; sandbox"),
        );
        if gzipped {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        res
    }
}

pub struct Assets {
    css: Asset,
    theme_js: Asset,
    app_js: Asset,
    favicon: Asset,
    logo: Option<Asset>,
}

const CSS_KIND: Kind = Kind {
    content_type: "text/css; charset=utf-8",
    extension: "css",
};
const JS_KIND: Kind = Kind {
    content_type: "text/javascript; charset=utf-8",
    extension: "js",
};

impl Assets {
    pub fn new(logo: Option<(Bytes, Kind)>) -> Assets {
        let text = |s: &'static str| Bytes::from_static(s.as_bytes());
        Assets {
            css: Asset::new("app", CSS_KIND, text(CSS)),
            theme_js: Asset::new("theme", JS_KIND, text(THEME_JS)),
            app_js: Asset::new("app", JS_KIND, text(APP_JS)),
            favicon: Asset::new("favicon", SVG, text(FAVICON)),
            logo: logo.map(|(bytes, kind)| Asset::new("logo", kind, bytes)),
        }
    }

    fn all(&self) -> impl Iterator<Item = &Asset> {
        [&self.css, &self.theme_js, &self.app_js, &self.favicon]
            .into_iter()
            .chain(self.logo.as_ref())
    }

    pub fn css_file(&self) -> &str {
        &self.css.file
    }
    pub fn theme_js_file(&self) -> &str {
        &self.theme_js.file
    }
    pub fn app_js_file(&self) -> &str {
        &self.app_js.file
    }
    pub fn favicon_file(&self) -> &str {
        &self.favicon.file
    }
    pub fn logo_file(&self) -> Option<&str> {
        self.logo.as_ref().map(|l| l.file.as_str())
    }
}

/// `GET /-/ui/assets/<name>.<hash>.<ext>`; another hash (an older build's) is a 404.
pub async fn serve(State(web): State<Arc<super::Web>>, Path(file): Path<String>, headers: HeaderMap) -> Response {
    match web.assets.all().find(|a| a.file == file) {
        Some(a) => a.response(&headers),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_content() {
        let a = Assets::new(None);
        assert!(a.css_file().starts_with("app.") && a.css_file().ends_with(".css"));
        assert_ne!(a.app_js_file(), a.theme_js_file());
        let logo = |b: &'static [u8]| Assets::new(Some((Bytes::from_static(b), SVG)));
        assert_ne!(logo(b"<svg/>").logo_file(), logo(b"<svg></svg>").logo_file());
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, "gzip".parse().unwrap());
        let res = a.css.response(&h);
        assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
        assert!(
            res.headers()[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    }
}
