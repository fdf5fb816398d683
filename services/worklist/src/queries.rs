//! Every read of the worklist, scoped in its SQL: a person-level query takes a [`Scope`] and
//! the user name, and its `where` clause keeps only the organisation's cases and drops the
//! cases the user is restricted from. Nothing here trusts a handler to filter afterwards; a case
//! outside the scope is simply not found. Column names and orderings come from the enums here,
//! never from input; every value is a bind parameter.

use chrono::{DateTime, NaiveDate, Utc};
use continuity_domain::ActionKind;
use sqlx::PgPool;
use uuid::Uuid;

use crate::user::Scope;

/// The worklist's tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    /// An overdue flag is raised: no engagement by day 21.
    Overdue,
    /// An at-risk warning is raised and the case is not yet overdue.
    AtRisk,
    /// Released in the last 7 days.
    Released,
    /// A flag was resolved or withdrawn in the last 14 days.
    Resolved,
}

/// Days a resolved flag stays on the "Resolved recently" tab.
pub const RESOLVED_DAYS: i64 = 14;

/// Not snoozed by the organisation ($1) past today ($3): one hashed set of the snoozed.
const NOT_SNOOZED: &str = "c.case_id not in (select s.case_id from case_actions s
    where s.organisation = $1 and s.kind = 'SNOOZED' and s.snoozed_until > $3::date)";

impl Tab {
    /// Every tab, in order.
    pub const ALL: [Tab; 4] = [Tab::Overdue, Tab::AtRisk, Tab::Released, Tab::Resolved];

    /// The tab's code in URLs.
    pub fn code(self) -> &'static str {
        match self {
            Tab::Overdue => "overdue",
            Tab::AtRisk => "at-risk",
            Tab::Released => "released",
            Tab::Resolved => "resolved",
        }
    }

    /// The tab with this code.
    pub fn from_code(code: &str) -> Option<Tab> {
        Tab::ALL.into_iter().find(|t| t.code() == code)
    }

    /// The tab's title.
    pub fn label(self) -> &'static str {
        match self {
            Tab::Overdue => "Overdue",
            Tab::AtRisk => "At risk",
            Tab::Released => "Released this week",
            Tab::Resolved => "Resolved recently",
        }
    }

    /// Its condition on `c` ($1 organisation, $3 today, $4 now), on the columns the matcher
    /// keeps for the worklist (`raised_flag`, `flag_settled_at`).
    fn condition(self) -> String {
        match self {
            Tab::Overdue => format!("c.raised_flag = 'OVERDUE' and {NOT_SNOOZED}"),
            Tab::AtRisk => format!("c.raised_flag = 'AT_RISK' and {NOT_SNOOZED}"),
            Tab::Released => "c.release_date > $3::date - 7 and c.release_date <= $3::date and c.outcome <> 'WITHDRAWN'".into(),
            Tab::Resolved => format!(
                "c.flag_settled_at >= $4::timestamptz - interval '{RESOLVED_DAYS} days'"
            ),
        }
    }
}

/// How the list is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// By release date (the default, oldest first: the longest without engagement).
    Release,
    /// By the person's reference.
    Reference,
    /// By area.
    Area,
    /// By the last action's time (none first).
    LastAction,
}

impl Sort {
    /// Every ordering.
    pub const ALL: [Sort; 4] = [Sort::Reference, Sort::Release, Sort::Area, Sort::LastAction];

    /// The ordering's code in URLs.
    pub fn code(self) -> &'static str {
        match self {
            Sort::Release => "release",
            Sort::Reference => "reference",
            Sort::Area => "area",
            Sort::LastAction => "action",
        }
    }

    /// The ordering with this code.
    pub fn from_code(code: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|s| s.code() == code)
    }

    fn expression(self) -> &'static str {
        match self {
            Sort::Release => "c.release_date",
            Sort::Reference => "coalesce(c.crn, c.noms_number)",
            Sort::Area => "c.local_authority",
            Sort::LastAction => {
                "(select max(a.recorded_at) from case_actions a where a.case_id = c.case_id)"
            }
        }
    }
}

/// Who a case is assigned to, as a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assigned {
    /// Anyone or no one.
    Anyone,
    /// The signed-in user.
    Me,
    /// No one.
    Unassigned,
}

impl Assigned {
    /// The filter's code in URLs.
    pub fn code(self) -> &'static str {
        match self {
            Assigned::Anyone => "anyone",
            Assigned::Me => "me",
            Assigned::Unassigned => "unassigned",
        }
    }
}

/// The worklist's filters, ordering and page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filters {
    /// The tab.
    pub tab: Tab,
    /// Only this local authority.
    pub area: Option<String>,
    /// Only this releasing prison.
    pub prison: Option<String>,
    /// By assignment.
    pub assigned: Assigned,
    /// The ordering.
    pub sort: Sort,
    /// Descending instead of ascending.
    pub descending: bool,
    /// The page, from 1.
    pub page: u32,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            tab: Tab::Overdue,
            area: None,
            prison: None,
            assigned: Assigned::Anyone,
            sort: Sort::Release,
            descending: false,
            page: 1,
        }
    }
}

/// One row of the worklist.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Row {
    /// The case.
    pub case_id: Uuid,
    /// CRN.
    pub crn: Option<String>,
    /// NOMS number.
    pub noms_number: Option<String>,
    /// NHS number.
    pub nhs_number: Option<String>,
    /// Day 0.
    pub release_date: NaiveDate,
    /// Releasing prison.
    pub prison: Option<String>,
    /// Local authority the person went to.
    pub local_authority: String,
    /// Treatment provider referred to.
    pub provider: Option<String>,
    /// The case's outcome code.
    pub outcome: String,
    /// The most pressing raised flag's kind code.
    pub raised_flag: Option<String>,
    /// The last action's kind code.
    pub last_action: Option<String>,
    /// When.
    pub last_action_at: Option<DateTime<Utc>>,
    /// Who in the organisation is working it.
    pub assigned_to: Option<String>,
    /// Rows matching the filters, on every row.
    pub total: i64,
}

const ROW_COLUMNS: &str = "c.case_id, c.crn, c.noms_number, c.nhs_number, c.release_date, c.prison,
    c.local_authority, c.provider, c.outcome, c.raised_flag, last.kind as last_action,
    last.recorded_at as last_action_at, asg.assigned_to";

/// The scope's cases matching the filters, ordered, with their count; then what the list
/// shows, joined for the rows kept by `tail` (a limit, or nothing for every row).
/// $1 organisation, $2 user name, $3 today, $4 now, $5 area, $6 prison, $7 assigned.
fn list_sql(scope: &Scope, filters: &Filters, tail: &str) -> String {
    let dir = if filters.descending { "desc" } else { "asc" };
    let nulls = if filters.descending {
        "nulls last"
    } else {
        "nulls first"
    };
    format!(
        "with kept as (
            select c.case_id, {sort} as sort_key, count(*) over () as total
            from cases c
            left join case_assignments asg on asg.case_id = c.case_id and asg.organisation = $1
            where {visible}
              and {condition}
              and ($5::text is null or c.local_authority = $5)
              and ($6::text is null or c.prison = $6)
              and (case $7::text when 'me' then asg.assigned_to is not distinct from $2
                                 when 'unassigned' then asg.assigned_to is null else true end)
            order by sort_key {dir} {nulls}, c.case_id
            {tail})
         select {ROW_COLUMNS}, kept.total
         from kept join cases c on c.case_id = kept.case_id
         left join case_assignments asg on asg.case_id = c.case_id and asg.organisation = $1
         left join lateral (select a.kind, a.recorded_at from case_actions a
                            where a.case_id = c.case_id order by a.recorded_at desc limit 1) last on true
         order by kept.sort_key {dir} {nulls}, c.case_id",
        sort = filters.sort.expression(),
        visible = scope.visible(),
        condition = filters.tab.condition(),
    )
}

/// One page of the worklist.
pub async fn page(
    pool: &PgPool,
    scope: &Scope,
    user_name: &str,
    filters: &Filters,
    page_size: u32,
    now: DateTime<Utc>,
) -> Result<Vec<Row>, sqlx::Error> {
    let offset = i64::from(filters.page.saturating_sub(1)) * i64::from(page_size);
    let sql = list_sql(
        scope,
        filters,
        &format!("limit {page_size} offset {offset}"),
    );
    bind_list(sqlx::query_as(&sql), scope, user_name, filters, now)
        .fetch_all(pool)
        .await
}

/// Every row of the filtered worklist, in order (the export; never truncated).
pub async fn all(
    pool: &PgPool,
    scope: &Scope,
    user_name: &str,
    filters: &Filters,
    now: DateTime<Utc>,
) -> Result<Vec<Row>, sqlx::Error> {
    let sql = list_sql(scope, filters, "");
    bind_list(sqlx::query_as(&sql), scope, user_name, filters, now)
        .fetch_all(pool)
        .await
}

type ListQuery<'q> = sqlx::query::QueryAs<'q, sqlx::Postgres, Row, sqlx::postgres::PgArguments>;

fn bind_list<'q>(
    q: ListQuery<'q>,
    scope: &'q Scope,
    user_name: &'q str,
    filters: &'q Filters,
    now: DateTime<Utc>,
) -> ListQuery<'q> {
    q.bind(scope.organisation())
        .bind(user_name)
        .bind(continuity_domain::london_date(now))
        .bind(now)
        .bind(filters.area.as_deref())
        .bind(filters.prison.as_deref())
        .bind(filters.assigned.code())
}

/// How many cases each tab holds, in [`Tab::ALL`] order.
pub async fn tab_counts(
    pool: &PgPool,
    scope: &Scope,
    user_name: &str,
    now: DateTime<Utc>,
) -> Result<Vec<(Tab, i64)>, sqlx::Error> {
    let counts: Vec<String> = Tab::ALL
        .iter()
        .map(|t| format!("count(*) filter (where {})", t.condition()))
        .collect();
    let sql = format!(
        "select {} from cases c
         where {}
           and (c.raised_flag is not null or c.release_date > $3::date - 7
                or c.flag_settled_at >= $4::timestamptz - interval '{RESOLVED_DAYS} days')",
        counts.join(", "),
        scope.visible()
    );
    let row: (i64, i64, i64, i64) = sqlx::query_as(&sql)
        .bind(scope.organisation())
        .bind(user_name)
        .bind(continuity_domain::london_date(now))
        .bind(now)
        .fetch_one(pool)
        .await?;
    Ok(Tab::ALL
        .into_iter()
        .zip([row.0, row.1, row.2, row.3])
        .collect())
}

/// The areas and prisons of the scope's open cases, for the filters.
pub async fn filter_options(
    pool: &PgPool,
    scope: &Scope,
    user_name: &str,
) -> Result<(Vec<String>, Vec<String>), sqlx::Error> {
    let sql = format!(
        "select distinct c.local_authority, c.prison from cases c
         where {} and (c.raised_flag is not null or c.outcome = 'OPEN')",
        scope.visible()
    );
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(&sql)
        .bind(scope.organisation())
        .bind(user_name)
        .fetch_all(pool)
        .await?;
    let mut areas: Vec<String> = rows.iter().map(|(a, _)| a.clone()).collect();
    let mut prisons: Vec<String> = rows.iter().filter_map(|(_, p)| p.clone()).collect();
    areas.sort();
    areas.dedup();
    prisons.sort();
    prisons.dedup();
    Ok((areas, prisons))
}

/// One case as its page shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Detail {
    /// The case.
    pub case_id: Uuid,
    /// The matcher's component (its events).
    pub component: i64,
    /// The person's key (smallest identifier).
    pub person_identifier: Option<String>,
    /// CRN.
    pub crn: Option<String>,
    /// NOMS number.
    pub noms_number: Option<String>,
    /// NHS number.
    pub nhs_number: Option<String>,
    /// Day 0.
    pub release_date: NaiveDate,
    /// Releasing prison.
    pub prison: Option<String>,
    /// Local authority.
    pub local_authority: String,
    /// Treatment provider.
    pub provider: Option<String>,
    /// Probation service.
    pub probation_service: Option<String>,
    /// Outcome code.
    pub outcome: String,
    /// Exclusion reason code.
    pub exclusion_reason: Option<String>,
    /// The engagement's date.
    pub engagement_date: Option<NaiveDate>,
    /// The engagement's timeliness code.
    pub timeliness: Option<String>,
    /// Who in the organisation is working it.
    pub assigned_to: Option<String>,
    /// The most pressing raised flag's kind code.
    pub raised_flag: Option<String>,
}

/// The case, if it is in the scope and the user is not restricted from it.
pub async fn case(
    pool: &PgPool,
    scope: &Scope,
    user_name: &str,
    case_id: Uuid,
) -> Result<Option<Detail>, sqlx::Error> {
    let sql = format!(
        "select c.case_id, c.component, c.person_identifier, c.crn, c.noms_number, c.nhs_number,
                c.release_date, c.prison, c.local_authority, c.provider, c.probation_service,
                c.outcome, c.exclusion_reason, c.engagement_date, c.timeliness, asg.assigned_to,
                c.raised_flag
         from cases c
         left join case_assignments asg on asg.case_id = c.case_id and asg.organisation = $1
         where c.case_id = $3 and {}",
        scope.visible()
    );
    sqlx::query_as(&sql)
        .bind(scope.organisation())
        .bind(user_name)
        .bind(case_id)
        .fetch_optional(pool)
        .await
}

/// The ids among `case_ids` that are in the scope and not restricted from the user.
pub async fn visible_ids(
    pool: &PgPool,
    scope: &Scope,
    user_name: &str,
    case_ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let sql = format!(
        "select c.case_id from cases c
         where c.case_id = any($3) and {}",
        scope.visible()
    );
    sqlx::query_scalar(&sql)
        .bind(scope.organisation())
        .bind(user_name)
        .bind(case_ids)
        .fetch_all(pool)
        .await
}

/// A flag of a case.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlagRow {
    /// Kind code.
    pub kind: String,
    /// At-risk day.
    pub at_risk_day: Option<i32>,
    /// State code.
    pub state: String,
    /// Raised.
    pub raised_at: DateTime<Utc>,
    /// Settled.
    pub settled_at: Option<DateTime<Utc>>,
}

/// The case's flags (call only for a case [`case`] found).
pub async fn flags(pool: &PgPool, case_id: Uuid) -> Result<Vec<FlagRow>, sqlx::Error> {
    sqlx::query_as(
        "select kind, at_risk_day, state, raised_at, settled_at from flags
         where case_id = $1 order by raised_at",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await
}

/// An action on a case.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActionRow {
    /// Kind code.
    pub kind: String,
    /// The recording organisation.
    pub organisation: String,
    /// Who.
    pub recorded_by: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Appointment date.
    pub appointment_on: Option<NaiveDate>,
    /// Snoozed until.
    pub snoozed_until: Option<NaiveDate>,
    /// Reason.
    pub reason: Option<String>,
    /// Note.
    pub note: Option<String>,
}

impl ActionRow {
    /// The kind, as a page names it.
    pub fn label(&self) -> &'static str {
        ActionKind::from_code(&self.kind).map_or("Other", ActionKind::label)
    }
}

/// The actions recorded on the case (call only for a case [`case`] found).
pub async fn actions(pool: &PgPool, case_id: Uuid) -> Result<Vec<ActionRow>, sqlx::Error> {
    sqlx::query_as(
        "select kind, organisation, recorded_by, recorded_at, appointment_on, snoozed_until,
                reason, note
         from case_actions where case_id = $1 order by recorded_at",
    )
    .bind(case_id)
    .fetch_all(pool)
    .await
}

/// The stored source events of a component and those merged into it (call only for a case
/// [`case`] found).
pub async fn component_events(pool: &PgPool, component: i64) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    sqlx::query_scalar(
        "select payload from source_events
         where component = $1 or component in (select id from components where merged_into = $1)",
    )
    .bind(component)
    .fetch_all(pool)
    .await
}

/// Counts for one area, with no person-level data (commissioners).
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct AreaCounts {
    /// Cases still inside their 21 days.
    pub open: i64,
    /// Raised overdue flags.
    pub overdue: i64,
    /// Raised at-risk flags on cases not overdue.
    pub at_risk: i64,
    /// Released in the last 7 days.
    pub released_this_week: i64,
}

/// The area's counts.
pub async fn area_counts(
    pool: &PgPool,
    area: &str,
    now: DateTime<Utc>,
) -> Result<AreaCounts, sqlx::Error> {
    sqlx::query_as(
        "select count(*) filter (where c.outcome = 'OPEN') as open,
                count(*) filter (where c.raised_flag = 'OVERDUE') as overdue,
                count(*) filter (where c.raised_flag = 'AT_RISK') as at_risk,
                count(*) filter (where c.release_date > $2::date - 7 and c.release_date <= $2::date
                    and c.outcome <> 'WITHDRAWN') as released_this_week
         from cases c where c.local_authority = $1",
    )
    .bind(area)
    .bind(continuity_domain::london_date(now))
    .fetch_one(pool)
    .await
}

/// One quarter of an area's own figures, without disclosure control: the partnership view,
/// for the commissioners of that area only.
#[derive(Debug, Clone)]
pub struct QuarterFigures {
    /// The quarter, e.g. `Apr–Jun 2026`.
    pub quarter: String,
    /// Finalised cases.
    pub finalised: u64,
    /// Engaged within the window.
    pub engaged: u64,
    /// Still inside their window.
    pub open: u64,
    /// The rate with its 95% interval, when anything is finalised.
    pub rate: Option<continuity_domain::ContinuityRate>,
}

impl QuarterFigures {
    /// The rate as shown, or a dash.
    pub fn rate_text(&self) -> String {
        self.rate
            .map_or_else(|| "–".into(), |r| format!("{:.1}%", r.rate * 100.0))
    }

    /// The interval as shown, or a dash.
    pub fn interval_text(&self) -> String {
        self.rate.map_or_else(
            || "–".into(),
            |r| format!("{:.1}% to {:.1}%", r.lower * 100.0, r.upper * 100.0),
        )
    }
}

/// The area's own figures for the eight quarters of release up to the one containing `today`,
/// oldest first, from the case read model.
pub async fn area_quarters(
    pool: &PgPool,
    area: &str,
    today: NaiveDate,
) -> Result<Vec<QuarterFigures>, sqlx::Error> {
    use continuity_domain::{CohortPeriod, Outcome, Tally};
    let mut quarters = vec![CohortPeriod::quarter(today)];
    while quarters.len() < 8 {
        let before = quarters[quarters.len() - 1].previous();
        quarters.push(before);
    }
    quarters.reverse();
    let (from, _) = quarters[0].date_range();
    let rows: Vec<(NaiveDate, i64, i64, i64)> = sqlx::query_as(
        "select date_trunc('month', release_date)::date,
                count(*) filter (where outcome = $3), count(*) filter (where outcome = $4),
                count(*) filter (where outcome = $5)
         from cases where local_authority = $1 and release_date >= $2 and release_date <= $6
         group by 1",
    )
    .bind(area)
    .bind(from)
    .bind(Outcome::Engaged.code())
    .bind(Outcome::NotEngaged.code())
    .bind(Outcome::Open.code())
    .bind(today)
    .fetch_all(pool)
    .await?;
    let mut tallies: Vec<Tally> = vec![Tally::default(); quarters.len()];
    for (month, engaged, not_engaged, open) in rows {
        let q = CohortPeriod::quarter(month);
        if let Some(i) = quarters.iter().position(|x| *x == q) {
            let n = |x: i64| u64::try_from(x).unwrap_or(0);
            tallies[i].add_count(Outcome::Engaged, n(engaged));
            tallies[i].add_count(Outcome::NotEngaged, n(not_engaged));
            tallies[i].add_count(Outcome::Open, n(open));
        }
    }
    Ok(quarters
        .iter()
        .zip(tallies)
        .map(|(q, t)| {
            let (start, end) = q.date_range();
            QuarterFigures {
                quarter: format!("{}–{}", start.format("%b"), end.format("%b %Y")),
                finalised: t.finalised,
                engaged: t.engaged,
                open: t.open,
                rate: t.rate(),
            }
        })
        .collect())
}
