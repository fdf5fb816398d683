//! The pages: the home page (by role), the worklist with its tabs, filters, sort, pages,
//! assignment, acknowledgement and CSV export, and the case page with its "why" panel,
//! timeline and action form. Each handler checks the session, reads through [`crate::queries`]
//! (scoped in SQL), audits the read before sending it, and renders an askama template.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::NaiveDate;
use continuity_domain::{ActionForm, ActionKind, FieldProblem};
use tower_sessions::Session;
use uuid::Uuid;

use crate::audit::{self, Entry, What};
use crate::govuk;
use crate::queries::{self, Assigned, Filters, Row, Sort, Tab};
use crate::record::{self, WriteError};
use crate::security::{CorrelationId, JS_ENABLED_SCRIPT};
use crate::session::{self, Fields};
use crate::timeline::{self, long_date, long_time, names};
use crate::user::{Role, Scope, User};
use crate::Worklist;

/// What every page's layout (`templates/layout.html`) calls: the GOV.UK template's inline
/// script (allowed by its hash) and the skip link.
pub(crate) trait Layout {
    /// The `js-enabled` line.
    fn js_enabled(&self) -> &'static str {
        JS_ENABLED_SCRIPT
    }

    /// The skip link to the main content.
    fn skip_link(&self) -> String {
        govuk::skip_link("#main-content", "Skip to main content")
    }
}

/// What the layout shows of the signed-in user.
pub struct Chrome {
    /// Display name.
    pub name: String,
    /// Role, in words.
    pub role: &'static str,
    /// Organisation code.
    pub organisation: String,
    /// The CSRF token for the sign-out form.
    pub csrf: String,
    /// A message from the last action.
    pub flash: Option<String>,
}

/// A page of a heading, paragraphs and a link.
#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    /// The signed-in user, if any.
    pub chrome: Option<Chrome>,
    /// The heading.
    pub heading: String,
    /// The text.
    pub paragraphs: Vec<String>,
    /// A link (href, text).
    pub link: Option<(String, String)>,
}

impl Layout for Message {}

pub(crate) fn render(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page did not render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown.\n",
            )
                .into_response()
        }
    }
}

/// A message page with `status`.
pub fn message_page(status: StatusCode, page: Message) -> Response {
    render(status, page)
}

/// Write an audit entry, or the answer when it cannot be written (nothing is shown then).
pub(crate) async fn audited(app: &Worklist, entry: Entry<'_>) -> Result<(), Response> {
    audit::record(&app.pool, entry).await.map_err(database)
}

/// The answer when the database (or the audit trail) cannot be used.
pub fn unavailable() -> Response {
    message_page(
        StatusCode::SERVICE_UNAVAILABLE,
        Message {
            chrome: None,
            heading: "Sorry, the service is unavailable".into(),
            paragraphs: vec!["Try again in a few minutes.".into()],
            link: None,
        },
    )
}

pub(crate) fn database(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "database error");
    unavailable()
}

/// The signed-in user and what the layout needs, or the response to send instead.
pub(crate) async fn signed_in(session: &Session, uri: &Uri) -> Result<(User, Chrome), Response> {
    let here = uri.path_and_query().map_or("/", |p| p.as_str());
    // Token expiry is wall-clock time, whatever clock the pages evaluate cases at.
    let user = session::signed_in(session, here, chrono::Utc::now().timestamp()).await?;
    let chrome = Chrome {
        name: user.name.clone(),
        role: user.role.label(),
        organisation: user.organisation.to_string(),
        csrf: session::csrf_token(session).await?,
        flash: session::take_flash(session).await?,
    };
    Ok((user, chrome))
}

/// Refuse a request the user's role or organisation does not allow, and audit the refusal.
/// Another organisation's case answers 404, as a case that does not exist does.
pub(crate) async fn deny(
    app: &Worklist,
    user: &User,
    chrome: Chrome,
    correlation: CorrelationId,
    subject: Option<(&'static str, String)>,
    status: StatusCode,
) -> Response {
    let (subject_type, subject_id) = subject.map_or((None, None), |(t, id)| (Some(t), Some(id)));
    app.metrics.denied(match subject_type {
        Some("case") => "case",
        Some("area") => "area",
        Some("webhooks") => "webhooks",
        _ => "worklist",
    });
    let denied = Entry {
        user: Some(user),
        what: What::AccessDenied,
        subject_type,
        subject_id,
        correlation,
        details: serde_json::json!({ "status": status.as_u16() }),
    };
    if let Err(e) = audit::record(&app.pool, denied).await {
        return database(e);
    }
    let (heading, text) = if status == StatusCode::NOT_FOUND {
        (
            "Page not found",
            "There is no case here that your organisation can see. Check the link, or go back to your worklist.",
        )
    } else {
        (
            "You cannot see this page",
            "Your role does not give access to people's details. Your home page shows what you can see.",
        )
    };
    message_page(
        status,
        Message {
            chrome: Some(chrome),
            heading: heading.into(),
            paragraphs: vec![text.into()],
            link: Some(("/".into(), "Go to your home page".into())),
        },
    )
}

#[derive(Template)]
#[template(path = "area.html")]
struct AreaPage {
    chrome: Option<Chrome>,
    area: String,
    counts: queries::AreaCounts,
    quarters: Vec<queries::QuarterFigures>,
}

impl Layout for AreaPage {}

/// `GET /`: the worklist for caseworkers, the area's counts for commissioners, a page without
/// personal data for operators.
pub(crate) async fn home(
    State(app): State<Arc<Worklist>>,
    Extension(correlation): Extension<CorrelationId>,
    session: Session,
    uri: Uri,
) -> Result<Response, Response> {
    let (user, chrome) = signed_in(&session, &uri).await?;
    match user.role {
        Role::ProbationPractitioner | Role::TreatmentKeyworker => {
            Ok(Redirect::to("/worklist").into_response())
        }
        Role::Commissioner => {
            let Some(area) = user.area() else {
                return Err(deny(&app, &user, chrome, correlation, None, StatusCode::FORBIDDEN).await);
            };
            let counts = queries::area_counts(&app.pool, area.as_str(), app.clock.now()).await.map_err(database)?;
            let today = continuity_domain::london_date(app.clock.now());
            let quarters = queries::area_quarters(&app.pool, area.as_str(), today).await.map_err(database)?;
            app.metrics.viewed("area");
            audited(&app, Entry {
                    user: Some(&user),
                    what: What::ViewArea,
                    subject_type: Some("area"),
                    subject_id: Some(area.to_string()),
                    correlation,
                    details: serde_json::json!({}),
                })
    .await?;
            Ok(render(
                StatusCode::OK,
                AreaPage {
                    chrome: Some(chrome),
                    area: area.to_string(),
                    counts,
                    quarters,
                },
            ))
        }
        Role::Operator => Ok(message_page(
            StatusCode::OK,
            Message {
                chrome: Some(chrome),
                heading: "Operators".into(),
                paragraphs: vec![
                    "Operators see no personal data here. The service's health is on its /metrics endpoint and the Prometheus dashboards; the runbooks say what to do about each alert.".into(),
                ],
                link: Some(("/readyz".into(), "Readiness".into())),
            },
        )),
    }
}

/// The worklist's query string.
fn filters_from(q: &HashMap<String, String>) -> Filters {
    let text = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    Filters {
        tab: text("tab").and_then(Tab::from_code).unwrap_or(Tab::Overdue),
        area: text("area").map(str::to_owned),
        prison: text("prison").map(str::to_owned),
        assigned: match text("assigned") {
            Some("me") => Assigned::Me,
            Some("unassigned") => Assigned::Unassigned,
            _ => Assigned::Anyone,
        },
        sort: text("sort")
            .and_then(Sort::from_code)
            .unwrap_or(Sort::Release),
        descending: text("dir") == Some("desc"),
        page: text("page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1),
    }
}

/// The query string for `filters` (the page, sort and tab as given).
fn query_of(f: &Filters) -> String {
    let mut pairs = vec![("tab", f.tab.code().to_owned())];
    if let Some(a) = &f.area {
        pairs.push(("area", a.clone()));
    }
    if let Some(p) = &f.prison {
        pairs.push(("prison", p.clone()));
    }
    if f.assigned != Assigned::Anyone {
        pairs.push(("assigned", f.assigned.code().to_owned()));
    }
    if f.sort != Sort::Release {
        pairs.push(("sort", f.sort.code().to_owned()));
    }
    if f.descending {
        pairs.push(("dir", "desc".to_owned()));
    }
    if f.page > 1 {
        pairs.push(("page", f.page.to_string()));
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", session::url_escape(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// How a row names the person to the user's organisation: CRN for probation, NOMS number (and
/// NHS number) for providers.
fn reference(scope: &Scope, crn: Option<&str>, noms: Option<&str>) -> String {
    let chosen = match scope {
        Scope::Probation(_) => crn
            .map(|c| format!("CRN {c}"))
            .or(noms.map(|n| format!("NOMS {n}"))),
        Scope::Provider(_) => noms
            .map(|n| format!("NOMS {n}"))
            .or(crn.map(|c| format!("CRN {c}"))),
    };
    chosen.unwrap_or_else(|| "No reference".to_owned())
}

fn day_text(release: NaiveDate, today: NaiveDate) -> String {
    let day = (today - release).num_days();
    if day < 0 {
        format!("Releases in {} days", -day)
    } else if day <= 21 {
        format!("Day {day} of 21")
    } else {
        format!("Day {day} (21 passed)")
    }
}

/// The tag for a row: its raised flag, else how the case ended.
fn flag_tag(raised: Option<&str>, outcome: &str) -> String {
    match (raised, outcome) {
        (Some("OVERDUE"), _) => govuk::tag("Overdue", Some("govuk-tag--red")),
        (Some(_), _) => govuk::tag("At risk", Some("govuk-tag--yellow")),
        (None, "ENGAGED") => govuk::tag("Engaged", Some("govuk-tag--green")),
        (None, "EXCLUDED") => govuk::tag("Left the measure", Some("govuk-tag--grey")),
        (None, "WITHDRAWN") => govuk::tag("Withdrawn", Some("govuk-tag--grey")),
        (None, "NOT_ENGAGED") => govuk::tag("Not engaged", Some("govuk-tag--grey")),
        _ => String::new(),
    }
}

struct RowView {
    case_id: Uuid,
    reference: String,
    nhs: Option<String>,
    release_date: String,
    day: String,
    flag: String,
    prison: String,
    area: String,
    referral: String,
    last_action: String,
    assigned_to: String,
}

fn row_view(scope: &Scope, r: &Row, today: NaiveDate) -> RowView {
    RowView {
        case_id: r.case_id,
        reference: reference(scope, r.crn.as_deref(), r.noms_number.as_deref()),
        nhs: match scope {
            Scope::Provider(_) => r.nhs_number.clone(),
            Scope::Probation(_) => None,
        },
        release_date: long_date(r.release_date),
        day: day_text(r.release_date, today),
        flag: flag_tag(r.raised_flag.as_deref(), &r.outcome),
        prison: r
            .prison
            .as_deref()
            .map_or_else(|| "Not known".into(), |p| names().prison_with_code(p)),
        area: names().area_with_code(&r.local_authority),
        referral: r
            .provider
            .clone()
            .unwrap_or_else(|| "No provider named".into()),
        last_action: match (&r.last_action, r.last_action_at) {
            (Some(kind), Some(at)) => format!(
                "{}, {}",
                ActionKind::from_code(kind).map_or("Other", ActionKind::label),
                long_time(at)
            ),
            _ => "None".into(),
        },
        assigned_to: r.assigned_to.clone().unwrap_or_else(|| "Unassigned".into()),
    }
}

struct TabLink {
    code: &'static str,
    label: &'static str,
    count: i64,
    href: String,
    current: bool,
}

struct Header {
    label: &'static str,
    href: Option<String>,
    aria_sort: Option<&'static str>,
}

struct PageLink {
    number: u32,
    href: String,
    current: bool,
}

#[derive(Template)]
#[template(path = "worklist.html")]
struct WorklistPage {
    chrome: Option<Chrome>,
    csrf: String,
    here: String,
    organisation_role: String,
    tab_label: &'static str,
    tab_code: &'static str,
    tabs: Vec<TabLink>,
    areas: Vec<(String, String, bool)>,
    prisons: Vec<(String, String, bool)>,
    assigned_options: Vec<(&'static str, &'static str, bool)>,
    export_href: String,
    headers: Vec<Header>,
    rows: Vec<RowView>,
    total: i64,
    page: u32,
    pages: u32,
    previous_href: Option<String>,
    next_href: Option<String>,
    page_links: Vec<PageLink>,
}

impl Layout for WorklistPage {}

/// A signed-in probation practitioner or treatment keyworker with their organisation's scope,
/// as a handler's argument. A request from anyone else is refused (403, audited, with the
/// subject the path names); one not signed in is sent to sign in.
pub(crate) struct Caseworker {
    /// Who.
    pub user: User,
    /// What the layout shows.
    pub chrome: Chrome,
    /// The cases they may see.
    pub scope: Scope,
    /// The request.
    pub correlation: CorrelationId,
    /// Their session (for forms' CSRF tokens and messages).
    pub session: Session,
}

/// What a path is about, for the audit of a refusal: `/cases/{id}...`, `/webhooks/{id}...`,
/// else the worklist.
fn subject_of(path: &str) -> (&'static str, String) {
    let mut parts = path.trim_start_matches('/').split('/');
    match (parts.next(), parts.next()) {
        (Some("cases"), Some(id)) => ("case", id.to_owned()),
        (Some("webhooks"), id) => ("webhooks", id.unwrap_or("").to_owned()),
        _ => ("worklist", String::new()),
    }
}

impl axum::extract::FromRequestParts<Arc<Worklist>> for Caseworker {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Arc<Worklist>,
    ) -> Result<Self, Response> {
        let session = Session::from_request_parts(parts, app)
            .await
            .map_err(IntoResponse::into_response)?;
        let correlation = parts
            .extensions
            .get::<CorrelationId>()
            .copied()
            .unwrap_or(CorrelationId(Uuid::now_v7()));
        let (user, chrome) = signed_in(&session, &parts.uri).await?;
        match user.scope() {
            Some(scope) => Ok(Caseworker {
                user,
                chrome,
                scope,
                correlation,
                session,
            }),
            None => {
                let subject = subject_of(parts.uri.path());
                Err(deny(
                    app,
                    &user,
                    chrome,
                    correlation,
                    Some(subject),
                    StatusCode::FORBIDDEN,
                )
                .await)
            }
        }
    }
}

/// `GET /worklist`.
pub(crate) async fn worklist(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome,
        scope,
        correlation,
        session: _,
    } = cw;
    let now = app.clock.now();
    let today = continuity_domain::london_date(now);
    let filters = filters_from(&q);
    let size = app.settings.page_size;
    let (rows, counts, (areas, prisons)) = match tokio::try_join!(
        queries::page(&app.pool, &scope, &user.user_name, &filters, size, now),
        queries::tab_counts(&app.pool, &scope, &user.user_name, now),
        queries::filter_options(&app.pool, &scope, &user.user_name),
    ) {
        Ok(r) => r,
        Err(e) => return Err(database(e)),
    };
    let total = rows.first().map_or(0, |r| r.total);
    app.metrics.viewed("worklist");
    audited(
        &app,
        Entry {
            user: Some(&user),
            what: What::ViewWorklist,
            subject_type: Some("worklist"),
            subject_id: Some(scope.organisation().to_owned()),
            correlation,
            details: serde_json::json!({
                "tab": filters.tab.code(),
                "query": query_of(&filters),
                "rows_shown": rows.len(),
                "total": total,
            }),
        },
    )
    .await?;
    let pages = ((total.max(0) as u64).div_ceil(u64::from(size))).max(1) as u32;
    let with = |f: Filters| format!("/worklist?{}", query_of(&f));
    let tabs = counts
        .iter()
        .map(|(t, n)| TabLink {
            code: t.code(),
            label: t.label(),
            count: *n,
            href: with(Filters {
                tab: *t,
                page: 1,
                ..filters.clone()
            }),
            current: *t == filters.tab,
        })
        .collect();
    let header = |label: &'static str, sort: Option<Sort>| {
        let Some(sort) = sort else {
            return Header {
                label,
                href: None,
                aria_sort: None,
            };
        };
        let current = filters.sort == sort;
        Header {
            label,
            href: Some(with(Filters {
                sort,
                descending: current && !filters.descending,
                page: 1,
                ..filters.clone()
            })),
            aria_sort: Some(match (current, filters.descending) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            }),
        }
    };
    let headers = vec![
        header("Person", Some(Sort::Reference)),
        header("Released", Some(Sort::Release)),
        header("Day", None),
        header("Releasing prison", None),
        header("Area", Some(Sort::Area)),
        header("Referred to", None),
        header("Last action", Some(Sort::LastAction)),
        header("Assigned to", None),
    ];
    let page_links = (1..=pages)
        .filter(|p| *p == 1 || *p == pages || p.abs_diff(filters.page) <= 2)
        .map(|number| PageLink {
            number,
            href: with(Filters {
                page: number,
                ..filters.clone()
            }),
            current: number == filters.page,
        })
        .collect();
    let page = WorklistPage {
        csrf: chrome.csrf.clone(),
        chrome: Some(chrome),
        here: with(filters.clone()),
        organisation_role: match &scope {
            Scope::Probation(o) => format!("held by probation service {o}"),
            Scope::Provider(o) => format!("referred to {o}"),
        },
        tab_label: filters.tab.label(),
        tab_code: filters.tab.code(),
        tabs,
        areas: areas
            .into_iter()
            .map(|a| {
                let selected = filters.area.as_deref() == Some(a.as_str());
                (names().area_with_code(&a), a, selected)
            })
            .collect(),
        prisons: prisons
            .into_iter()
            .map(|p| {
                let selected = filters.prison.as_deref() == Some(p.as_str());
                (names().prison_with_code(&p), p, selected)
            })
            .collect(),
        assigned_options: [
            (Assigned::Anyone, "Anyone or no one"),
            (Assigned::Me, "Me"),
            (Assigned::Unassigned, "No one"),
        ]
        .into_iter()
        .map(|(a, label)| (a.code(), label, a == filters.assigned))
        .collect(),
        export_href: format!(
            "/worklist/export.csv?{}",
            query_of(&Filters {
                page: 1,
                ..filters.clone()
            })
        ),
        headers,
        rows: rows.iter().map(|r| row_view(&scope, r, today)).collect(),
        total,
        page: filters.page,
        pages,
        previous_href: (filters.page > 1).then(|| {
            with(Filters {
                page: filters.page - 1,
                ..filters.clone()
            })
        }),
        next_href: (filters.page < pages).then(|| {
            with(Filters {
                page: filters.page + 1,
                ..filters.clone()
            })
        }),
        page_links,
    };
    Ok(render(StatusCode::OK, page))
}

/// `GET /worklist/export.csv`: the whole filtered list (every page), audited with its count.
pub(crate) async fn export(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome: _chrome,
        scope,
        correlation,
        session: _,
    } = cw;
    let now = app.clock.now();
    let today = continuity_domain::london_date(now);
    let filters = filters_from(&q);
    let rows = queries::all(&app.pool, &scope, &user.user_name, &filters, now)
        .await
        .map_err(database)?;
    let mut csv = csv::Writer::from_writer(Vec::new());
    let provider = matches!(scope, Scope::Provider(_));
    let mut head = vec!["case_id", "person_reference"];
    if provider {
        head.push("nhs_number");
    }
    head.extend([
        "release_date",
        "day",
        "flag",
        "releasing_prison",
        "area",
        "referred_to",
        "last_action",
        "assigned_to",
    ]);
    let mut ok = csv.write_record(&head).is_ok();
    for r in &rows {
        let v = row_view(&scope, r, today);
        let flag = r.raised_flag.clone().unwrap_or_else(|| r.outcome.clone());
        let mut record = vec![r.case_id.to_string(), v.reference];
        if provider {
            record.push(r.nhs_number.clone().unwrap_or_default());
        }
        record.extend([
            r.release_date.to_string(),
            v.day,
            flag,
            v.prison,
            v.area,
            v.referral,
            v.last_action,
            v.assigned_to,
        ]);
        ok &= csv.write_record(&record).is_ok();
    }
    let body = match (ok, csv.into_inner()) {
        (true, Ok(body)) => body,
        _ => {
            return Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "The export could not be written.\n",
            )
                .into_response())
        }
    };
    app.metrics.viewed("export");
    audited(
        &app,
        Entry {
            user: Some(&user),
            what: What::ExportWorklist,
            subject_type: Some("worklist"),
            subject_id: Some(scope.organisation().to_owned()),
            correlation,
            details: serde_json::json!({
                "tab": filters.tab.code(),
                "query": query_of(&filters),
                "rows": rows.len(),
            }),
        },
    )
    .await?;
    let name = format!("worklist-{}-{}.csv", filters.tab.code(), today);
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

fn back_to(fields: &Fields) -> String {
    fields
        .get("return_to")
        .and_then(session::safe_return_path)
        .filter(|p| p.starts_with("/worklist"))
        .unwrap_or("/worklist")
        .to_owned()
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    chrome: Option<Chrome>,
    csrf: String,
    count: usize,
    noun: &'static str,
    ids: Vec<Uuid>,
    back: String,
}

impl Layout for ConfirmPage {}

/// `POST /worklist/acknowledge`: an "acknowledged" action on each selected case.
pub(crate) async fn acknowledge(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
    Form(fields): Form<Fields>,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome,
        scope,
        correlation,
        session,
    } = cw;
    session::check_csrf(&session, &fields).await?;
    let back = back_to(&fields);
    let ids: Vec<Uuid> = fields
        .all("case_id")
        .filter_map(|v| Uuid::parse_str(v).ok())
        .collect();
    if ids.is_empty() {
        session::flash(&session, "Select at least one case to acknowledge").await?;
        return Ok(Redirect::to(&back).into_response());
    }
    if fields.get("confirm") != Some("yes") {
        // Ask first, as for any change to several cases at once; a case outside the scope is
        // refused here already.
        let visible = queries::visible_ids(&app.pool, &scope, &user.user_name, &ids)
            .await
            .map_err(database)?;
        if visible.len() != ids.len() {
            return Err(deny(
                &app,
                &user,
                chrome,
                correlation,
                Some(("case", String::new())),
                StatusCode::NOT_FOUND,
            )
            .await);
        }
        let page = ConfirmPage {
            csrf: chrome.csrf.clone(),
            chrome: Some(chrome),
            count: ids.len(),
            noun: if ids.len() == 1 { "case" } else { "cases" },
            ids,
            back,
        };
        return Ok(render(StatusCode::OK, page));
    }
    let action = continuity_domain::Action {
        kind: ActionKind::Acknowledged,
        appointment_on: None,
        snoozed_until: None,
        reason: None,
        note: None,
    };
    match record::record_actions(
        &app.pool,
        &app.settings.connections.kafka,
        record::By {
            user: &user,
            scope: &scope,
            correlation,
        },
        &ids,
        &action,
        app.clock.now(),
    )
    .await
    {
        Ok(done) => {
            let n = done.len();
            let text = format!("{n} {} acknowledged", if n == 1 { "case" } else { "cases" });
            session::flash(&session, &text).await?;
            Ok(Redirect::to(&back).into_response())
        }
        Err(WriteError::NotFound) => Err(deny(
            &app,
            &user,
            chrome,
            correlation,
            Some(("case", String::new())),
            StatusCode::NOT_FOUND,
        )
        .await),
        Err(e) => Err(database(e)),
    }
}

/// `POST /cases/{id}/assign`.
pub(crate) async fn assign(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome,
        scope,
        correlation,
        session,
    } = cw;
    session::check_csrf(&session, &fields).await?;
    let Ok(case_id) = Uuid::parse_str(&id) else {
        return Err(deny(
            &app,
            &user,
            chrome,
            correlation,
            Some(("case", id)),
            StatusCode::NOT_FOUND,
        )
        .await);
    };
    match record::assign_to_me(
        &app.pool,
        record::By {
            user: &user,
            scope: &scope,
            correlation,
        },
        case_id,
        app.clock.now(),
    )
    .await
    {
        Ok(()) => {
            session::flash(&session, "Case assigned to you").await?;
            Ok(Redirect::to(&back_to(&fields)).into_response())
        }
        Err(WriteError::NotFound) => Err(deny(
            &app,
            &user,
            chrome,
            correlation,
            Some(("case", id)),
            StatusCode::NOT_FOUND,
        )
        .await),
        Err(e) => Err(database(e)),
    }
}

struct KindOption {
    id: String,
    code: &'static str,
    label: &'static str,
    checked: bool,
}

struct DateField {
    name: &'static str,
    legend: &'static str,
    hint: &'static str,
    parts: Vec<(&'static str, &'static str, String)>,
    error: Option<String>,
}

struct TextField {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    value: String,
    error: Option<String>,
}

struct TimelineView {
    title: String,
    by: Option<String>,
    when: String,
    datetime: String,
    detail: Option<String>,
}

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage {
    chrome: Option<Chrome>,
    csrf: String,
    case_id: Uuid,
    reference: String,
    released_on: String,
    back_link: String,
    errors: Vec<FieldProblem>,
    error_summary: String,
    warning: Option<String>,
    why: Vec<String>,
    summary: Vec<(&'static str, String)>,
    kind_error: Option<String>,
    kinds: Vec<KindOption>,
    dates: Vec<DateField>,
    texts: Vec<TextField>,
    timeline: Vec<TimelineView>,
}

impl Layout for CasePage {}

/// What the form held, to show again after a validation error.
#[derive(Default)]
struct Entered {
    fields: Fields,
}

impl Entered {
    fn value(&self, name: &str) -> String {
        self.fields.text(name)
    }
}

/// A date from the three fields `name-day`, `name-month`, `name-year`: `Ok(None)` when all
/// are empty, `Err` with the message when they are not a real date.
fn date_field(fields: &Fields, name: &str, what: &str) -> Result<Option<NaiveDate>, String> {
    let part = |p: &str| {
        fields
            .get(&format!("{name}-{p}"))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    let (d, m, y) = (part("day"), part("month"), part("year"));
    if d.is_empty() && m.is_empty() && y.is_empty() {
        return Ok(None);
    }
    let parsed = (|| {
        let y: i32 = y.parse().ok().filter(|y| (1900..=2200).contains(y))?;
        NaiveDate::from_ymd_opt(y, m.parse().ok()?, d.parse().ok()?)
    })();
    parsed
        .map(Some)
        .ok_or_else(|| format!("{what} must be a real date, like 27 3 2026"))
}

/// Show the case page, with the form as `entered` and its `errors`.
#[allow(clippy::too_many_arguments)]
async fn show_case(
    app: &Worklist,
    user: &User,
    chrome: Chrome,
    scope: &Scope,
    case: queries::Detail,
    correlation: CorrelationId,
    entered: Entered,
    errors: Vec<FieldProblem>,
) -> Result<Response, Response> {
    let (flags, actions, payloads) = match tokio::try_join!(
        queries::flags(&app.pool, case.case_id),
        queries::actions(&app.pool, case.case_id),
        queries::component_events(&app.pool, case.component),
    ) {
        Ok(r) => r,
        Err(e) => return Err(database(e)),
    };
    let now = app.clock.now();
    let today = continuity_domain::london_date(now);
    let events: Vec<_> = payloads
        .iter()
        .filter_map(|p| continuity_schema::decode_source_event(p, today).ok())
        .collect();
    app.metrics.viewed("case");
    audited(
        app,
        Entry {
            user: Some(user),
            what: What::ViewCase,
            subject_type: Some("case"),
            subject_id: Some(case.case_id.to_string()),
            correlation,
            details: serde_json::json!({ "errors": errors.len() }),
        },
    )
    .await?;
    let (warning, why) = timeline::why(&case, &app.rules, today);
    let items = timeline::timeline(&case, &events, &flags, &actions);
    let error_for = |field: &str| {
        errors
            .iter()
            .find(|p| p.field == field)
            .map(|p| govuk::error_message(Some(&format!("{field}-error")), &p.message))
    };
    let anchor = |field: &str| match field {
        "kind" => "#kind-CONTACTED".to_owned(),
        "appointment_on" | "snoozed_until" => format!("#{field}-day"),
        other => format!("#{other}"),
    };
    let anchors: Vec<String> = errors.iter().map(|e| anchor(e.field)).collect();
    let links: Vec<govuk::ErrorLink> = errors
        .iter()
        .zip(&anchors)
        .map(|(e, a)| govuk::ErrorLink {
            text: &e.message,
            href: Some(a),
        })
        .collect();
    let chosen = entered.value("kind");
    let mut summary = vec![
        ("Released", long_date(case.release_date)),
        (
            "Releasing prison",
            case.prison
                .as_deref()
                .map_or_else(|| "Not known".into(), |p| names().prison_with_code(p)),
        ),
        ("Area", names().area_with_code(&case.local_authority)),
        (
            "Treatment provider",
            case.provider.clone().unwrap_or_else(|| "None named".into()),
        ),
        (
            "Probation service",
            case.probation_service
                .clone()
                .unwrap_or_else(|| "None recorded".into()),
        ),
        (
            "Assigned to",
            case.assigned_to
                .clone()
                .unwrap_or_else(|| "Unassigned".into()),
        ),
    ];
    match scope {
        Scope::Probation(_) => {
            summary.insert(
                0,
                (
                    "CRN",
                    case.crn.clone().unwrap_or_else(|| "Not known".into()),
                ),
            );
        }
        Scope::Provider(_) => {
            summary.insert(
                0,
                (
                    "NOMS number",
                    case.noms_number
                        .clone()
                        .unwrap_or_else(|| "Not known".into()),
                ),
            );
            summary.insert(
                1,
                (
                    "NHS number",
                    case.nhs_number
                        .clone()
                        .unwrap_or_else(|| "Not known".into()),
                ),
            );
        }
    }
    let date_parts = |name: &str| {
        vec![
            ("day", "Day", entered.value(&format!("{name}-day"))),
            ("month", "Month", entered.value(&format!("{name}-month"))),
            ("year", "Year", entered.value(&format!("{name}-year"))),
        ]
    };
    let page = CasePage {
        csrf: chrome.csrf.clone(),
        chrome: Some(chrome),
        case_id: case.case_id,
        reference: reference(scope, case.crn.as_deref(), case.noms_number.as_deref()),
        released_on: long_date(case.release_date),
        back_link: govuk::back_link("/worklist", "Back to worklist"),
        error_summary: govuk::error_summary("There is a problem", &links),
        warning: warning.map(|w| govuk::warning_text(&w)),
        why,
        summary,
        kind_error: error_for("kind"),
        kinds: ActionKind::ALL
            .iter()
            .filter(|k| **k != ActionKind::Acknowledged)
            .map(|k| KindOption {
                id: format!("kind-{}", k.code()),
                code: k.code(),
                label: k.label(),
                checked: chosen == k.code(),
            })
            .collect(),
        dates: vec![
            DateField {
                name: "appointment_on",
                legend: "Appointment date (if you booked one)",
                hint: "For example, 27 3 2026",
                parts: date_parts("appointment_on"),
                error: error_for("appointment_on"),
            },
            DateField {
                name: "snoozed_until",
                legend: "Snooze until (if you are snoozing the case)",
                hint: "The case leaves the worklist until this date, at most 28 days away",
                parts: date_parts("snoozed_until"),
                error: error_for("snoozed_until"),
            },
        ],
        texts: vec![
            TextField {
                name: "reason",
                label: "Reason",
                hint: "Needed for not our case and for a snooze",
                value: entered.value("reason"),
                error: error_for("reason"),
            },
            TextField {
                name: "note",
                label: "Note (optional)",
                hint: "Anything the team should know",
                value: entered.value("note"),
                error: error_for("note"),
            },
        ],
        timeline: items
            .into_iter()
            .map(|i| TimelineView {
                when: if i.date_only {
                    long_date(continuity_domain::london_date(i.at))
                } else {
                    long_time(i.at)
                },
                datetime: i.at.to_rfc3339(),
                title: i.title,
                by: i.by,
                detail: i.detail,
            })
            .collect(),
        errors,
    };
    let status = if page.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(render(status, page))
}

/// `GET /cases/{id}`.
pub(crate) async fn case(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome,
        scope,
        correlation,
        session: _,
    } = cw;
    let found = match Uuid::parse_str(&id) {
        Ok(case_id) => queries::case(&app.pool, &scope, &user.user_name, case_id)
            .await
            .map_err(database)?,
        Err(_) => None,
    };
    match found {
        Some(case) => {
            show_case(
                &app,
                &user,
                chrome,
                &scope,
                case,
                correlation,
                Entered::default(),
                Vec::new(),
            )
            .await
        }
        None => Err(deny(
            &app,
            &user,
            chrome,
            correlation,
            Some(("case", id)),
            StatusCode::NOT_FOUND,
        )
        .await),
    }
}

/// `POST /cases/{id}/actions`: record an action, or show the form again with what was entered
/// and what to correct.
pub(crate) async fn record_action(
    State(app): State<Arc<Worklist>>,
    cw: Caseworker,
    Path(id): Path<String>,
    Form(fields): Form<Fields>,
) -> Result<Response, Response> {
    let Caseworker {
        user,
        chrome,
        scope,
        correlation,
        session,
    } = cw;
    session::check_csrf(&session, &fields).await?;
    let found = match Uuid::parse_str(&id) {
        Ok(case_id) => queries::case(&app.pool, &scope, &user.user_name, case_id)
            .await
            .map_err(database)?,
        Err(_) => None,
    };
    let Some(case) = found else {
        return Err(deny(
            &app,
            &user,
            chrome,
            correlation,
            Some(("case", id)),
            StatusCode::NOT_FOUND,
        )
        .await);
    };
    let now = app.clock.now();
    let today = continuity_domain::london_date(now);
    let mut problems = Vec::new();
    let mut date = |name: &'static str, what: &str| {
        date_field(&fields, name, what).unwrap_or_else(|message| {
            problems.push(FieldProblem {
                field: name,
                message,
            });
            None
        })
    };
    let appointment_on = date("appointment_on", "Appointment date");
    let snoozed_until = date("snoozed_until", "Snooze until");
    let form = ActionForm {
        kind: fields.text("kind"),
        appointment_on,
        snoozed_until,
        reason: fields.text("reason"),
        note: fields.text("note"),
    };
    let checked = form.check(today);
    let action = match checked {
        Ok(action) if problems.is_empty() => action,
        Ok(_) => {
            return show_case(
                &app,
                &user,
                chrome,
                &scope,
                case,
                correlation,
                Entered { fields },
                problems,
            )
            .await
        }
        Err(mut more) => {
            // Date problems from parsing come first; the rules' own for the same field are
            // dropped (a date that did not parse is also "missing").
            more.retain(|m| !problems.iter().any(|p| p.field == m.field));
            problems.extend(more);
            let order = ["kind", "appointment_on", "snoozed_until", "reason", "note"];
            problems.sort_by_key(|p| order.iter().position(|f| *f == p.field));
            return show_case(
                &app,
                &user,
                chrome,
                &scope,
                case,
                correlation,
                Entered { fields },
                problems,
            )
            .await;
        }
    };
    match record::record_actions(
        &app.pool,
        &app.settings.connections.kafka,
        record::By {
            user: &user,
            scope: &scope,
            correlation,
        },
        &[case.case_id],
        &action,
        now,
    )
    .await
    {
        Ok(_) => {
            let text = format!("Recorded: {}", action.kind.label());
            session::flash(&session, &text).await?;
            Ok(Redirect::to(&format!("/cases/{}", case.case_id)).into_response())
        }
        Err(WriteError::NotFound) => Err(deny(
            &app,
            &user,
            chrome,
            correlation,
            Some(("case", id)),
            StatusCode::NOT_FOUND,
        )
        .await),
        Err(e) => Err(database(e)),
    }
}
