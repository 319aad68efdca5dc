//! The status page, `GET /`: one HTML file with its own script and SVG chart, embedded in the
//! binary (nodes often run without internet: nothing is loaded from elsewhere). It reads the
//! JSON API (`/v1/cluster`, `/v1/members`, `/v1/evidence`, `/v1/history`) once a second.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The page, from `crates/warpnet-node/assets/status.html`.
pub const STATUS_HTML: &str = include_str!("../../assets/status.html");

/// What the page may load: its own inline script and styles, and answers from this node.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

pub(super) async fn status_page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STATUS_HTML,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page loads nothing from elsewhere (no CDN: nodes run without internet) and reads
    /// only endpoints this node serves.
    #[test]
    fn the_status_page_loads_nothing_from_elsewhere() {
        // The SVG namespace is a name, not something loaded; the icon is empty and inline.
        let page = STATUS_HTML
            .replace("'http://www.w3.org/2000/svg'", "")
            .replace(r#"<link rel="icon" href="data:,">"#, "");
        for needle in ["http://", "https://", "//cdn", "<link", "src=", "@import", "url("] {
            assert!(!page.contains(needle), "status.html contains {needle:?}");
        }
        let routed: Vec<&str> = super::super::endpoints().iter().map(|e| e.path).collect();
        for path in ["/v1/cluster", "/v1/members", "/v1/evidence", "/v1/history"] {
            assert!(STATUS_HTML.contains(&format!("'{path}'")), "the page does not read {path}");
            assert!(routed.contains(&path), "the page reads {path}, which is not routed");
        }
    }
}
