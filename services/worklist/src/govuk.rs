//! The GOV.UK Design System components the pages use, as typed Rust functions producing the
//! HTML GOV.UK Frontend's own Nunjucks macros produce. No Rust crate renders them and the
//! macros do not run under Rust template engines, so the few used are ported by hand and
//! checked against the `fixtures.json` files the pinned `govuk-frontend` package ships (the
//! tests below, when `scripts/install-frontend.sh` has run). Pages compose them in askama
//! templates.

use std::fmt::Write;

/// HTML-escape text as Nunjucks does (`&`, `<`, `>`, `"`, `'`). Hand-written: five
/// replacements, matching the macros' output byte for byte.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn class_list(base: &str, extra: Option<&str>) -> String {
    match extra {
        Some(extra) if !extra.is_empty() => format!("{base} {}", escape(extra)),
        _ => base.to_owned(),
    }
}

/// A tag (`govukTag`): `text` with optional extra classes (colour modifiers).
pub fn tag(text: &str, classes: Option<&str>) -> String {
    format!(
        "<strong class=\"{}\">\n  {}\n</strong>",
        class_list("govuk-tag", classes),
        escape(text)
    )
}

/// An error message (`govukErrorMessage`) with its visually hidden prefix, for field `id`.
pub fn error_message(id: Option<&str>, text: &str) -> String {
    let id = id
        .map(|id| format!(" id=\"{}\"", escape(id)))
        .unwrap_or_default();
    format!(
        "<p{id} class=\"govuk-error-message\">\n  <span class=\"govuk-visually-hidden\">Error:</span> {}\n</p>",
        escape(text)
    )
}

/// One link of an error summary: the message and the field it is about (`#field`).
pub struct ErrorLink<'a> {
    /// The message.
    pub text: &'a str,
    /// The link target (`#id`), if any.
    pub href: Option<&'a str>,
}

/// An error summary (`govukErrorSummary`) titled "There is a problem".
pub fn error_summary(title: &str, errors: &[ErrorLink<'_>]) -> String {
    let mut list = String::new();
    for e in errors {
        match e.href {
            Some(href) => write!(
                list,
                "\n        <li>\n          <a href=\"{}\">{}</a>\n        </li>",
                escape(href),
                escape(e.text)
            ),
            None => write!(
                list,
                "\n        <li>\n          {}\n        </li>",
                escape(e.text)
            ),
        }
        .ok();
    }
    format!(
        "<div class=\"govuk-error-summary\" data-module=\"govuk-error-summary\">\n  <div role=\"alert\">\n    <h2 class=\"govuk-error-summary__title\">\n      {}\n    </h2>\n    <div class=\"govuk-error-summary__body\">\n      <ul class=\"govuk-list govuk-error-summary__list\">{list}\n      </ul>\n    </div>\n  </div>\n</div>",
        escape(title)
    )
}

/// A warning text (`govukWarningText`) with the icon and its hidden "Warning" label.
pub fn warning_text(text: &str) -> String {
    format!(
        "<div class=\"govuk-warning-text\">\n  <span class=\"govuk-warning-text__icon\" aria-hidden=\"true\">!</span>\n  <strong class=\"govuk-warning-text__text\">\n    <span class=\"govuk-visually-hidden\">Warning</span>\n    {}\n  </strong>\n</div>",
        escape(text)
    )
}

/// An inset text (`govukInsetText`).
pub fn inset_text(text: &str) -> String {
    format!(
        "<div class=\"govuk-inset-text\">\n  {}\n</div>",
        escape(text)
    )
}

/// A back link (`govukBackLink`) to `href`.
pub fn back_link(href: &str, text: &str) -> String {
    format!(
        "<a href=\"{}\" class=\"govuk-back-link\">{}</a>",
        escape(href),
        escape(text)
    )
}

/// The skip link (`govukSkipLink`) to `#main-content`.
pub fn skip_link(href: &str, text: &str) -> String {
    format!(
        "<a href=\"{}\" class=\"govuk-skip-link\" data-module=\"govuk-skip-link\">{}</a>",
        escape(href),
        escape(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixtures of `component`, from the installed package
    /// (`CONTINUITY_GOVUK_FIXTURES`, set by `scripts/test.sh`); `None` when absent outside it.
    fn fixtures(component: &str) -> Option<Vec<serde_json::Value>> {
        let dir = match std::env::var("CONTINUITY_GOVUK_FIXTURES") {
            Ok(dir) => dir,
            Err(_) if std::env::var("CONTINUITY_REQUIRE_FIXTURES").is_err() => return None,
            Err(_) => panic!("CONTINUITY_GOVUK_FIXTURES is not set: run scripts/test.sh"),
        };
        let text = std::fs::read_to_string(format!("{dir}/{component}.json"))
            .unwrap_or_else(|e| panic!("{dir}/{component}.json: {e}"));
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        Some(json["fixtures"].as_array().unwrap().clone())
    }

    /// Whitespace between tags and runs of spaces do not change rendering; compare without.
    fn normalise(html: &str) -> String {
        let collapsed = html.split_whitespace().collect::<Vec<_>>().join(" ");
        collapsed.replace("> <", "><")
    }

    fn fixture<'a>(all: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
        all.iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no fixture {name}"))
    }

    fn check(all: &[serde_json::Value], name: &str, ours: String) {
        let f = fixture(all, name);
        assert_eq!(
            normalise(&ours),
            normalise(f["html"].as_str().unwrap()),
            "fixture {name}"
        );
    }

    #[test]
    fn components_match_the_fixtures_of_the_pinned_govuk_frontend() {
        let Some(tags) = fixtures("tag") else { return };
        let opt = |f: &serde_json::Value, k: &str| f["options"][k].as_str().map(str::to_owned);
        for name in ["default", "grey", "red", "html as text"] {
            if let Some(f) = tags.iter().find(|f| f["name"] == name) {
                let text = opt(f, "text").unwrap_or_default();
                check(&tags, name, tag(&text, opt(f, "classes").as_deref()));
            }
        }
        let errors = fixtures("error-message").unwrap();
        let f = fixture(&errors, "default");
        check(
            &errors,
            "default",
            error_message(None, &opt(f, "text").unwrap()),
        );
        let f = fixture(&errors, "id");
        check(
            &errors,
            "id",
            error_message(opt(f, "id").as_deref(), &opt(f, "text").unwrap()),
        );
        let summaries = fixtures("error-summary").unwrap();
        let f = fixture(&summaries, "default");
        let list: Vec<(String, Option<String>)> = f["options"]["errorList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let field = |k: &str| e[k].as_str().map(str::to_owned);
                (field("text").unwrap(), field("href"))
            })
            .collect();
        let links: Vec<ErrorLink> = list
            .iter()
            .map(|(text, href)| ErrorLink {
                text,
                href: href.as_deref(),
            })
            .collect();
        check(
            &summaries,
            "default",
            error_summary(&opt(f, "titleText").unwrap(), &links),
        );
        let warnings = fixtures("warning-text").unwrap();
        let f = fixture(&warnings, "default");
        check(&warnings, "default", warning_text(&opt(f, "text").unwrap()));
        let insets = fixtures("inset-text").unwrap();
        let f = fixture(&insets, "default");
        check(&insets, "default", inset_text(&opt(f, "text").unwrap()));
        let backs = fixtures("back-link").unwrap();
        check(&backs, "default", back_link("#", "Back"));
        let skips = fixtures("skip-link").unwrap();
        let f = fixture(&skips, "default");
        check(
            &skips,
            "default",
            skip_link(&opt(f, "href").unwrap(), &opt(f, "text").unwrap()),
        );
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            tag("<b>&'\"", None),
            "<strong class=\"govuk-tag\">\n  &lt;b&gt;&amp;&#39;&quot;\n</strong>"
        );
    }
}
