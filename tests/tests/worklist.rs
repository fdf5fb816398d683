//! The caseworkers' worklist end to end: events through Kafka and the matcher into cases with
//! their owners; the development issuer and the worklist served on loopback; users signed in
//! through the real authorisation-code flow; every page, export and write checked for what it
//! shows and what it refuses, and the audit trail for what it records.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{Duration, NaiveDate};
use continuity::produce;
use continuity_domain::events::*;
use continuity_domain::*;
use continuity_e2e::*;
use continuity_runtime::{Connections, DatabaseSettings, ManualClock};
use continuity_stream::Topic;
use continuity_worklist::dev_issuer::{DevIssuer, IssuerSettings};
use uuid::Uuid;

/// One person's case: their identifiers and the organisations responsible.
#[derive(Clone, Copy)]
struct Person {
    crn: &'static str,
    noms: &'static str,
    nhs: &'static str,
    probation: &'static str,
    provider: &'static str,
    release: NaiveDate,
}

/// Overdue for the sample's probation service and PRV000; overdue for the other probation
/// service and PRV001; at risk (day 10) for the sample's probation service and PRV000.
const PEOPLE: [Person; 3] = [
    Person {
        crn: "X100001",
        noms: "A1001AA",
        nhs: "9434765919",
        probation: "probation",
        provider: "PRV000",
        release: d(2026, 10, 27),
    },
    Person {
        crn: "X200002",
        noms: "B2002BB",
        nhs: "4010232137",
        probation: "probation-other",
        provider: "PRV001",
        release: d(2026, 10, 27),
    },
    Person {
        crn: "X300003",
        noms: "C3003CC",
        nhs: "9876543210",
        probation: "probation",
        provider: "PRV000",
        release: d(2026, 11, 14),
    },
];

const fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, day) {
        Some(date) => date,
        None => panic!("not a date"),
    }
}

fn id(kind: IdentifierKind, v: &str) -> Identifier {
    Identifier::parse(kind, v).unwrap()
}

fn meta(n: &mut u128, at: chrono::DateTime<chrono::Utc>, source: &str) -> EventMeta {
    *n += 1;
    EventMeta {
        event_id: EventId(Uuid::from_u128(0xabc0_0000 + *n)),
        occurred_at: at,
        source: OrganisationCode::parse(source).unwrap(),
    }
}

fn events() -> Vec<SourceEvent> {
    events_of(&PEOPLE)
}

/// Each person's probation referral, CRN-NOMS link and release.
fn events_of(people: &[Person]) -> Vec<SourceEvent> {
    let mut n = 0;
    let mut out = Vec::new();
    for p in people {
        let crn = id(IdentifierKind::Crn, p.crn);
        let noms = id(IdentifierKind::Noms, p.noms);
        let nhs = id(IdentifierKind::Nhs, p.nhs);
        let referred = p.release - Duration::days(10);
        out.push(SourceEvent::Referral(Referral {
            meta: meta(&mut n, start_of_london_day(referred), p.probation),
            referral_id: format!("REF-{}", p.crn),
            person: PersonRef {
                identifiers: vec![crn.clone(), nhs],
                attributor: None,
            },
            referred_on: referred,
            origin: ReferralOrigin::Probation,
            expected_release: Some(p.release),
            need: TreatmentNeed {
                local_authority: LocalAuthorityCode::parse("E06000001").unwrap(),
                provider: Some(ProviderCode::parse(p.provider).unwrap()),
            },
        }));
        out.push(SourceEvent::IdentityLinked(IdentityChange {
            meta: meta(&mut n, start_of_london_day(referred), p.probation),
            kept: crn,
            other: noms.clone(),
        }));
        out.push(SourceEvent::Release(PrisonRelease {
            meta: meta(&mut n, start_of_london_day(p.release), "hmpps-prisons"),
            release_id: format!("MDI-{}-{}", p.noms, p.release),
            person: PersonRef {
                identifiers: vec![noms],
                attributor: None,
            },
            release_date: p.release,
            planned: false,
            reason: ReleaseReason::Released,
            movement_code: Some("CR".into()),
            prison: Some(PrisonCode::parse("MDI").unwrap()),
            need: None,
        }));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flag_due_long_before_the_pipeline_knew_of_it_stays_off_the_worklist() {
    let env = env().await;
    let clock = ManualClock::new(now());
    // Released 120 days ago, first heard of now (a replay of history): overdue since day 22,
    // far beyond the 14-day horizon. Beside it, one overdue since yesterday.
    let long_ago = Person {
        release: now().date_naive() - Duration::days(120),
        ..PEOPLE[0]
    };
    let recent = Person {
        release: now().date_naive() - Duration::days(22),
        ..PEOPLE[1]
    };
    let evs = events_of(&[long_ago, recent]);
    let producer = env.kafka.producer().unwrap();
    produce(&producer, &env.kafka, &messages(&evs))
        .await
        .unwrap();
    let matcher = start(&env, "m1", &clock);
    until_all_applied(&env.pool, &evs, 60).await;
    let column = |p: &Person| {
        let case = case_of(p);
        let pool = env.pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(
                "select raised_flag from cases where case_id = $1",
            )
            .bind(case)
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(column(&recent).await.as_deref(), Some("OVERDUE"));
    assert_eq!(
        column(&long_ago).await,
        None,
        "a flag nobody was told of is not on the worklist"
    );
    let told: Vec<Uuid> = sqlx::query_scalar("select distinct case_id from flags")
        .fetch_all(&env.pool)
        .await
        .unwrap();
    assert_eq!(told, vec![case_of(&recent)]);
    matcher.stop().await;
    env.cleanup().await;
}

/// The case id of a person's case.
fn case_of(p: &Person) -> Uuid {
    CaseId::for_release(&format!("MDI-{}-{}", p.noms, p.release)).0
}

struct Servers {
    env: Env,
    /// The secrets of the endpoints registered before the worklist started.
    secrets: Vec<String>,
    matcher: Running,
    worklist: u16,
    issuer: u16,
    clock: ManualClock,
}

/// The database and topics, the matcher with the people's cases applied, the development
/// issuer and the worklist.
async fn servers() -> Servers {
    servers_with(|_| {}, &[]).await
}

/// As [`servers`], with the worklist's settings changed by `tweak` and, before it starts, the
/// endpoints in `webhooks` registered (organisation, URL), their secrets returned.
async fn servers_with(
    tweak: impl FnOnce(&mut continuity_worklist::Settings),
    webhooks: &[(&str, &str)],
) -> Servers {
    let env = env().await;
    let clock = ManualClock::new(now());
    let producer = env.kafka.producer().unwrap();
    let evs = events();
    produce(&producer, &env.kafka, &messages(&evs))
        .await
        .unwrap();
    let matcher = start(&env, "m1", &clock);
    until_all_applied(&env.pool, &evs, 60).await;
    eventually(60, "the overdue and at-risk flags", || async {
        let n: i64 = sqlx::query_scalar("select count(*) from flags where state = 'RAISED'")
            .fetch_one(&env.pool)
            .await
            .unwrap();
        n >= 3
    })
    .await;

    let issuer_port = free_port();
    let worklist_port = free_port();
    let issuer = Arc::new(
        DevIssuer::new(IssuerSettings {
            http_addr: ([127, 0, 0, 1], issuer_port).into(),
            issuer_url: format!("http://localhost:{issuer_port}"),
            client_id: "continuity-worklist".into(),
            redirect_uri: format!("http://localhost:{worklist_port}/sign-in/callback"),
        })
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", issuer_port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, issuer.router()).await });

    let mut settings = continuity_worklist::Settings {
        connections: Connections {
            database: DatabaseSettings::new(env.db_url.clone(), 8),
            kafka: env.kafka.clone(),
        },
        http_addr: ([127, 0, 0, 1], worklist_port).into(),
        public_url: format!("http://localhost:{worklist_port}"),
        issuer_url: format!("http://localhost:{issuer_port}"),
        assets_dir: std::env::var("CONTINUITY_ASSETS_DIR")
            .expect("CONTINUITY_ASSETS_DIR (scripts/test.sh sets it)")
            .into(),
        clock: continuity_runtime::ClockSettings {
            fixed_now: Some(now()),
        },
        ..Default::default()
    };
    tweak(&mut settings);
    continuity_worklist::migrate(&settings).await.unwrap();
    let mut secrets = Vec::new();
    for (organisation, url) in webhooks {
        let (_, secret) =
            continuity_worklist::webhooks::register(&env.pool, organisation, url, "test")
                .await
                .unwrap();
        secrets.push(secret);
    }
    let app = Arc::new(continuity_worklist::Worklist::new(settings).unwrap());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", worklist_port))
        .await
        .unwrap();
    tokio::spawn(continuity_worklist::serve(
        app,
        listener,
        std::future::pending(),
    ));
    eventually(30, "the worklist answers", || async {
        get_status(worklist_port, "/healthz").await == 200
    })
    .await;
    Servers {
        env,
        secrets,
        matcher,
        worklist: worklist_port,
        issuer: issuer_port,
        clock,
    }
}

/// A browser without JavaScript: keeps the session cookie, follows nothing by itself.
struct Client {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Answer {
    status: u16,
    location: Option<String>,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Client {
    fn new(port: u16) -> Self {
        Client {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: format!("http://localhost:{port}"),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Answer {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let r = req.send().await.unwrap();
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap();
            if let Some(pair) = v.split(';').next() {
                if pair.starts_with(continuity_worklist::session::COOKIE) {
                    self.cookie = Some(pair.to_owned());
                }
            }
        }
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        let headers = r.headers().clone();
        let body = r.text().await.unwrap();
        record_error_body(status, &body);
        Answer {
            status,
            location,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Answer {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(url)).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Answer {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(url).form(form)).await
    }

    /// Sign in as `user` through the issuer's page, as a browser does.
    async fn sign_in(&mut self, issuer: u16, user: &str) -> Answer {
        let start = self.get("/sign-in?return_to=/worklist").await;
        assert_eq!(start.status, 303);
        let authorize = start.location.unwrap();
        assert!(authorize.starts_with(&format!("http://localhost:{issuer}/oauth/authorize?")));
        assert!(
            authorize.contains("code_challenge_method=S256"),
            "{authorize}"
        );
        let query = authorize.split_once('?').unwrap().1.to_owned();
        let mut form: Vec<(String, String)> = url_pairs(&query);
        form.push(("user_name".into(), user.into()));
        let chosen = self
            .http
            .post(format!("http://localhost:{issuer}/oauth/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(chosen.status().as_u16(), 303);
        let callback = chosen.headers()["location"].to_str().unwrap().to_owned();
        let path = callback.strip_prefix(&self.base).unwrap().to_owned();
        self.get(&path).await
    }

    /// The CSRF token of the last page's forms.
    fn csrf(page: &Answer) -> String {
        let at = page.body.find("name=\"_csrf\" value=\"").expect("a form");
        let rest = &page.body[at + 20..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

async fn audit_count(pool: &sqlx::PgPool, what: &str) -> i64 {
    sqlx::query_scalar("select count(*) from worklist_audit where what = $1")
        .bind(what)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn signed_in(s: &Servers, user: &str) -> Client {
    let mut c = Client::new(s.worklist);
    let landed = c.sign_in(s.issuer, user).await;
    assert_eq!(landed.status, 303, "{}", landed.body);
    assert_eq!(landed.location.as_deref(), Some("/worklist"));
    c
}

#[tokio::test]
async fn each_organisation_sees_its_own_cases_by_its_own_reference_and_nothing_else() {
    let s = servers().await;
    let [mine, theirs, at_risk] = &PEOPLE;

    // Probation: the sample's probation service sees its cases by CRN, never the other's.
    let mut pp = signed_in(&s, "PRACTITIONER").await;
    let list = pp.get("/worklist").await;
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains(&format!("CRN {}", mine.crn)),
        "{}",
        list.body
    );
    assert!(!list.body.contains(theirs.crn) && !list.body.contains(theirs.noms));
    assert!(
        !list.body.contains(at_risk.crn),
        "at risk is on its own tab"
    );
    assert!(list.body.contains("Overdue (1)") && list.body.contains("At risk (1)"));
    let risk = pp.get("/worklist?tab=at-risk").await;
    assert!(risk.body.contains(&format!("CRN {}", at_risk.crn)));
    assert!(
        !mine.nhs.is_empty() && !list.body.contains(mine.nhs),
        "probation is not shown NHS numbers"
    );

    // The case page says why, in words, and shows the timeline.
    let page = pp.get(&format!("/cases/{}", case_of(mine))).await;
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .contains("Overdue: no treatment start has been recorded by day 21"));
    assert!(page
        .body
        .contains("Released on 27 October 2026 from Moorland (HMP &#38; YOI) (MDI)"));
    assert!(page
        .body
        .contains("No treatment start has arrived from the provider."));
    assert!(page
        .body
        .contains("Referred to community treatment by probation"));
    assert!(page.body.contains("Flag raised – Overdue"));

    // Another organisation's case is not found, and the refusal is audited.
    let denied_before = audit_count(&s.env.pool, "ACCESS_DENIED").await;
    let other = pp.get(&format!("/cases/{}", case_of(theirs))).await;
    assert_eq!(other.status, 404);
    assert!(!other.body.contains(theirs.crn));
    assert_eq!(
        audit_count(&s.env.pool, "ACCESS_DENIED").await,
        denied_before + 1
    );

    // Providers: NOMS and NHS number, their own provider's cases only.
    let mut kw = signed_in(&s, "KEYWORKER_OTHER").await;
    let list = kw.get("/worklist").await;
    assert!(
        list.body.contains(&format!("NOMS {}", theirs.noms)),
        "{}",
        list.body
    );
    assert!(list.body.contains(theirs.nhs));
    assert!(!list.body.contains(mine.noms) && !list.body.contains(mine.crn));

    // Every page view with personal data is audited: who, what, subject, correlation id.
    let views: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select user_name, what, subject_id from worklist_audit
         where what in ('PAGE_VIEW_WORKLIST', 'PAGE_VIEW_CASE') order by id",
    )
    .fetch_all(&s.env.pool)
    .await
    .unwrap();
    assert!(views.contains(&(
        "PRACTITIONER".into(),
        "PAGE_VIEW_CASE".into(),
        Some(case_of(mine).to_string())
    )));
    assert_eq!(
        views.iter().filter(|v| v.1 == "PAGE_VIEW_WORKLIST").count(),
        3
    );

    // A restricted case ("limited access") is invisible to the excluded user only.
    sqlx::query("insert into case_restrictions (case_id, user_name) values ($1, 'PRACTITIONER')")
        .bind(case_of(mine))
        .execute(&s.env.pool)
        .await
        .unwrap();
    let list = pp.get("/worklist").await;
    assert!(!list.body.contains(mine.crn), "restricted from the list");
    assert!(list.body.contains("Overdue (0)"), "and from the counts");
    assert_eq!(
        pp.get(&format!("/cases/{}", case_of(mine))).await.status,
        404
    );
    let export = pp.get("/worklist/export.csv?tab=overdue").await;
    assert!(!export.body.contains(mine.crn));
    let mut kw = signed_in(&s, "KEYWORKER").await;
    assert_eq!(
        kw.get(&format!("/cases/{}", case_of(mine))).await.status,
        200,
        "others in scope still see it"
    );
    s.matcher.stop().await;
    s.env.cleanup().await;
}

#[tokio::test]
async fn every_role_is_denied_every_other_organisations_case_and_each_denial_is_audited() {
    let s = servers().await;
    // (user, the people whose cases they may see)
    let users: [(&str, &[usize]); 6] = [
        ("PRACTITIONER", &[0, 2]),
        ("PRACTITIONER_OTHER", &[1]),
        ("KEYWORKER", &[0, 2]),
        ("KEYWORKER_OTHER", &[1]),
        ("COMMISSIONER", &[]),
        ("OPERATOR", &[]),
    ];
    for (user, own) in users {
        let mut c = signed_in(&s, user).await;
        let mut home = c.get("/").await;
        if let Some(to) = home.location.clone() {
            home = c.get(&to).await;
        }
        let csrf = Client::csrf(&home);
        let person_level = !own.is_empty();
        let list = c.get("/worklist?tab=released").await;
        let export = c.get("/worklist/export.csv?tab=overdue").await;
        if !person_level {
            assert_eq!(list.status, 403, "{user}: the worklist");
            assert_eq!(export.status, 403, "{user}: the export");
        }
        for (i, p) in PEOPLE.iter().enumerate() {
            if own.contains(&i) {
                continue;
            }
            let case = case_of(p);
            let before = audit_count(&s.env.pool, "ACCESS_DENIED").await;
            let page = c.get(&format!("/cases/{case}")).await;
            let action = c
                .post(
                    &format!("/cases/{case}/actions"),
                    &[("_csrf", &csrf), ("kind", "CONTACTED")],
                )
                .await;
            let assign = c
                .post(&format!("/cases/{case}/assign"), &[("_csrf", &csrf)])
                .await;
            let acknowledge = c
                .post(
                    "/worklist/acknowledge",
                    &[("_csrf", &csrf), ("case_id", &case.to_string())],
                )
                .await;
            let want = if person_level { 404 } else { 403 };
            for (what, a) in [
                ("page", &page),
                ("action", &action),
                ("assign", &assign),
                ("acknowledge", &acknowledge),
            ] {
                assert_eq!(a.status, want, "{user} {what} of person {i}");
                for secret in [p.crn, p.noms, p.nhs] {
                    assert!(!a.body.contains(secret), "{user} {what}: {secret} shown");
                }
            }
            assert_eq!(
                audit_count(&s.env.pool, "ACCESS_DENIED").await,
                before + 4,
                "{user}: every denial audited"
            );
            if person_level {
                for secret in [p.crn, p.noms, p.nhs] {
                    assert!(!list.body.contains(secret), "{user} list shows {secret}");
                    assert!(
                        !export.body.contains(secret),
                        "{user} export shows {secret}"
                    );
                }
            }
        }
    }
    let written: i64 = sqlx::query_scalar("select count(*) from case_actions")
        .fetch_one(&s.env.pool)
        .await
        .unwrap();
    assert_eq!(written, 0, "no refused write left a row");
    let assigned: i64 = sqlx::query_scalar("select count(*) from case_assignments")
        .fetch_one(&s.env.pool)
        .await
        .unwrap();
    assert_eq!(assigned, 0);

    // A commissioner sees their area's counts only; an account without a role is refused.
    let mut cm = signed_in(&s, "COMMISSIONER").await;
    let area = cm.get("/").await;
    assert!(
        area.body.contains("data-testid=\"count-overdue\">2<"),
        "{}",
        area.body
    );
    for p in &PEOPLE {
        assert!(!area.body.contains(p.crn) && !area.body.contains(p.noms));
    }
    // And the partnership view: the area's own figures by quarter, without disclosure
    // control, equal to the cases stored for it.
    assert!(area.body.contains("id=\"partnership\""));
    let shown: u64 = area
        .body
        .split("data-testid=\"quarter-finalised\">")
        .skip(1)
        .filter_map(|s| s.split('<').next()?.parse::<u64>().ok())
        .sum();
    let today = continuity_domain::london_date(now());
    let mut first = continuity_domain::CohortPeriod::quarter(today);
    for _ in 0..7 {
        first = first.previous();
    }
    let stored: i64 = sqlx::query_scalar(
        "select count(*) from cases where local_authority = 'E06000001'
         and outcome in ('ENGAGED', 'NOT_ENGAGED') and release_date between $1 and $2",
    )
    .bind(first.date_range().0)
    .bind(today)
    .fetch_one(&s.env.pool)
    .await
    .unwrap();
    assert_eq!(shown, stored as u64);
    let mut nobody = Client::new(s.worklist);
    let refused = nobody.sign_in(s.issuer, "NO_ROLE").await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("has no role in this service"));
    assert_eq!(nobody.get("/worklist").await.status, 303, "not signed in");
    s.matcher.stop().await;
    s.env.cleanup().await;
}

#[tokio::test]
async fn actions_are_recorded_published_without_personal_data_and_shown_on_the_timeline() {
    let s = servers().await;
    let [mine, _, at_risk] = &PEOPLE;
    let mut pp = signed_in(&s, "PRACTITIONER").await;
    let case = case_of(mine);
    let page = pp.get(&format!("/cases/{case}")).await;
    let csrf = Client::csrf(&page);

    // Without the CSRF token nothing is written.
    let forged = pp
        .post(&format!("/cases/{case}/actions"), &[("kind", "CONTACTED")])
        .await;
    assert_eq!(forged.status, 403);

    // A snooze without its date and reason: both named, and what was typed is kept.
    let invalid = pp
        .post(
            &format!("/cases/{case}/actions"),
            &[
                ("_csrf", &csrf),
                ("kind", "SNOOZED"),
                ("note", "left a voicemail <b>"),
            ],
        )
        .await;
    assert_eq!(invalid.status, 422);
    assert!(invalid.body.contains("There is a problem"));
    assert!(invalid.body.contains(
        "href=\"#snoozed_until-day\">Enter the date the case should come back to the list</a>"
    ));
    assert!(invalid
        .body
        .contains("href=\"#reason\">Enter why you are snoozing the case</a>"));
    assert!(
        invalid
            .body
            .contains(">left a voicemail &#60;b&#62;</textarea>"),
        "the note is kept, escaped"
    );
    let bad_date = pp
        .post(
            &format!("/cases/{case}/actions"),
            &[
                ("_csrf", &csrf),
                ("kind", "APPOINTMENT_BOOKED"),
                ("appointment_on-day", "31"),
                ("appointment_on-month", "2"),
                ("appointment_on-year", "2027"),
            ],
        )
        .await;
    assert_eq!(bad_date.status, 422);
    assert!(bad_date
        .body
        .contains("Appointment date must be a real date"));
    assert!(bad_date.body.contains("value=\"31\""));

    // A valid appointment: recorded, on the timeline, and on continuity.actions.
    // The note carries SQL, template and format metacharacters: stored as typed and shown
    // back escaped, never executed.
    let reason_text =
        "Spoke to X100001 at the hostel '); drop table cases; -- <script>{{7*7}}</script> ${7*7} %s";
    let done = pp
        .post(
            &format!("/cases/{case}/actions"),
            &[
                ("_csrf", &csrf),
                ("kind", "APPOINTMENT_BOOKED"),
                ("appointment_on-day", "1"),
                ("appointment_on-month", "12"),
                ("appointment_on-year", "2026"),
                ("note", reason_text),
            ],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let page = pp.get(&format!("/cases/{case}")).await;
    assert!(
        page.body.contains("Recorded: Appointment booked"),
        "the success banner"
    );
    assert!(page.body.contains("Appointment on 1 December 2026."));
    assert!(page.body.contains("by PRACTITIONER (probation)"));
    assert!(
        page.body.contains(
            "Spoke to X100001 at the hostel &#39;); drop table cases; -- \
             &#60;script&#62;{{7*7}}&#60;/script&#62; ${7*7} %s"
        ),
        "the note shown escaped, verbatim: {}",
        page.body
    );
    assert!(!page.body.contains("<script>{{7*7}}") && !page.body.contains(">49<"));
    let stored: String = sqlx::query_scalar("select note from case_actions where case_id = $1")
        .bind(case)
        .fetch_one(&s.env.pool)
        .await
        .unwrap();
    assert_eq!(stored, reason_text, "stored as typed");
    eventually(60, "the action on continuity.actions", || async {
        !read_topic(&s.env.kafka, Topic::Actions).await.is_empty()
    })
    .await;
    let messages = read_topic(&s.env.kafka, Topic::Actions).await;
    assert_eq!(messages.len(), 1);
    let action =
        <continuity_schema::wire::CaseworkerAction as continuity_schema::AvroRecord>::from_message(
            &messages[0],
        )
        .unwrap();
    assert_eq!(action.case_id, case);
    assert_eq!(
        action.kind,
        continuity_schema::wire::ActionKind::AppointmentBooked
    );
    assert_eq!(action.envelope.source, "probation");
    let bytes = String::from_utf8_lossy(&messages[0]).into_owned();
    for secret in [mine.crn, mine.noms, mine.nhs, "hostel", "PRACTITIONER"] {
        assert!(!bytes.contains(secret), "the topic carries {secret}");
    }
    // The measure is untouched.
    let outcome: String = sqlx::query_scalar("select outcome from cases where case_id = $1")
        .bind(case)
        .fetch_one(&s.env.pool)
        .await
        .unwrap();
    assert_eq!(outcome, "NOT_ENGAGED");

    // Assign to me, then "assigned to me" filters to it; acknowledge several at once.
    let list = pp.get("/worklist").await;
    let csrf = Client::csrf(&list);
    let assigned = pp
        .post(
            &format!("/cases/{case}/assign"),
            &[("_csrf", &csrf), ("return_to", "/worklist?tab=overdue")],
        )
        .await;
    assert_eq!(assigned.location.as_deref(), Some("/worklist?tab=overdue"));
    let mine_only = pp.get("/worklist?tab=overdue&assigned=me").await;
    assert!(mine_only.body.contains(mine.crn) && mine_only.body.contains("Case assigned to you"));
    // Acknowledging several asks first, writing nothing; confirmed, it records each.
    let (first, second) = (case.to_string(), case_of(at_risk).to_string());
    let selected = [
        ("_csrf", csrf.as_str()),
        ("case_id", first.as_str()),
        ("case_id", second.as_str()),
        ("return_to", "/worklist"),
    ];
    let asked = pp.post("/worklist/acknowledge", &selected).await;
    assert_eq!(asked.status, 200);
    assert!(
        asked.body.contains("Yes, acknowledge 2 cases"),
        "{}",
        asked.body
    );
    let acknowledged = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from case_actions where kind = 'ACKNOWLEDGED'",
        )
        .fetch_one(&s.env.pool)
        .await
        .unwrap()
    };
    assert_eq!(acknowledged().await, 0, "nothing before the confirmation");
    let mut confirmed = selected.to_vec();
    confirmed.push(("confirm", "yes"));
    let ack = pp.post("/worklist/acknowledge", &confirmed).await;
    assert_eq!(ack.status, 303);
    let after = pp.get("/worklist").await;
    assert!(after.body.contains("2 cases acknowledged"));
    let kinds: BTreeMap<String, i64> =
        sqlx::query_as::<_, (String, i64)>("select kind, count(*) from case_actions group by kind")
            .fetch_all(&s.env.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();
    assert_eq!(
        kinds,
        BTreeMap::from([("ACKNOWLEDGED".into(), 2), ("APPOINTMENT_BOOKED".into(), 1)])
    );

    // A snooze takes the case off the overdue tab until its date; "not our case" is queued.
    let snoozed = pp
        .post(
            &format!("/cases/{case}/actions"),
            &[
                ("_csrf", &csrf),
                ("kind", "SNOOZED"),
                ("snoozed_until-day", "1"),
                ("snoozed_until-month", "12"),
                ("snoozed_until-year", "2026"),
                ("reason", "In hospital this week"),
            ],
        )
        .await;
    assert_eq!(snoozed.status, 303, "{}", snoozed.body);
    let overdue = pp.get("/worklist?tab=overdue").await;
    assert!(
        !overdue.body.contains(mine.crn),
        "snoozed cases leave the list"
    );
    let disputed = pp
        .post(
            &format!("/cases/{}/actions", case_of(at_risk)),
            &[
                ("_csrf", &csrf),
                ("kind", "NOT_OUR_CASE"),
                ("reason", "Moved to Wales"),
            ],
        )
        .await;
    assert_eq!(disputed.status, 303);
    let queued: i64 =
        sqlx::query_scalar("select count(*) from case_disputes where reviewed_at is null")
            .fetch_one(&s.env.pool)
            .await
            .unwrap();
    assert_eq!(queued, 1);
    s.matcher.stop().await;
    s.env.cleanup().await;
}

#[tokio::test]
async fn the_export_holds_every_row_of_the_view_and_is_audited_with_its_count() {
    let s = servers().await;
    let mut pp = signed_in(&s, "PRACTITIONER").await;
    let csv = pp.get("/worklist/export.csv?tab=released").await;
    assert_eq!(csv.status, 200);
    assert_eq!(
        csv.headers["content-type"].to_str().unwrap(),
        "text/csv; charset=utf-8"
    );
    // Released in the last 7 days: nobody here (the releases are older); the overdue view
    // holds one and the export of the at-risk view the other.
    assert_eq!(csv.body.lines().count(), 1, "{}", csv.body);
    let all: Vec<String> = [
        pp.get("/worklist/export.csv?tab=overdue").await.body,
        pp.get("/worklist/export.csv?tab=at-risk").await.body,
    ]
    .into_iter()
    .collect();
    assert!(all[0].starts_with("case_id,person_reference,release_date,day,flag"));
    assert!(all[0].contains("CRN X100001") && all[1].contains("CRN X300003"));
    let rows: Vec<i64> = sqlx::query_scalar(
        "select (details->>'rows')::bigint from worklist_audit where what = 'EXPORT_WORKLIST' order by id",
    )
    .fetch_all(&s.env.pool)
    .await
    .unwrap();
    assert_eq!(rows, [0, 1, 1]);
    s.matcher.stop().await;
    s.env.cleanup().await;
}

#[tokio::test]
async fn pages_are_not_cached_framed_or_scripted_inline_and_sessions_end_at_sign_out() {
    let s = servers().await;
    let mut c = Client::new(s.worklist);
    let start = c.get("/sign-in").await;
    let cookie = start.headers["set-cookie"].to_str().unwrap().to_owned();
    for attr in [
        "__Host-continuity=",
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "cookie lacks {attr}: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "__Host- cookies have no Domain");
    let landed = c.sign_in(s.issuer, "KEYWORKER").await;
    assert_eq!(landed.status, 303);
    let page = c.get("/worklist").await;
    let h = |n: &str| page.headers[n].to_str().unwrap().to_owned();
    assert_eq!(h("cache-control"), "no-store");
    assert_eq!(h("x-frame-options"), "DENY");
    assert_eq!(h("x-content-type-options"), "nosniff");
    let csp = h("content-security-policy");
    assert!(csp.contains("script-src 'self' 'sha256-") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(Uuid::parse_str(&h("x-correlation-id")).is_ok());
    let asset = c.get("/assets/govuk-frontend.min.css").await;
    assert_eq!(asset.status, 200);
    assert!(asset.headers["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("public"));

    // Sign-in callbacks that did not start here are refused.
    let mut stranger = Client::new(s.worklist);
    let forged = stranger.get("/sign-in/callback?code=abc&state=xyz").await;
    assert_eq!(forged.status, 400);
    assert_eq!(stranger.get("/worklist").await.status, 303);

    // Signing out ends the session: the old cookie no longer opens the worklist.
    let csrf = Client::csrf(&page);
    let old = c.cookie.clone();
    let out = c.post("/sign-out", &[("_csrf", &csrf)]).await;
    assert_eq!(out.status, 200);
    c.cookie = old;
    assert_eq!(c.get("/worklist").await.status, 303);
    let signins = audit_count(&s.env.pool, "SIGN_IN").await;
    let signouts = audit_count(&s.env.pool, "SIGN_OUT").await;
    assert_eq!((signins, signouts), (1, 1));
    let _ = &s.clock;
    s.matcher.stop().await;
    s.env.cleanup().await;
}

#[tokio::test]
async fn a_practitioner_works_the_list_in_a_browser_with_the_keyboard_and_every_page_passes_axe() {
    let s = servers().await;
    // Ingest, for the treatment start the browser test sends as provider PRV000.
    let ingest_port = free_port();
    let token = "browser-test-provider-token";
    let settings = continuity_ingest::Settings {
        connections: Connections {
            database: DatabaseSettings::new(s.env.db_url.clone(), 4),
            kafka: s.env.kafka.clone(),
        },
        hash_secret: continuity_runtime::HashSecret::new(SECRET).unwrap(),
        http_addr: ([127, 0, 0, 1], ingest_port).into(),
        sources: vec![continuity_ingest::sources::SourceConfig {
            name: "provider-0".into(),
            organisation: "PRV000".into(),
            role: continuity_ingest::sources::Role::TreatmentProvider,
            token_sha256: continuity_ingest::sources::token_hash(token),
            requests_per_second: None,
        }],
        clock: continuity_runtime::ClockSettings {
            fixed_now: Some(now()),
        },
        ..Default::default()
    };
    let ingest = Arc::new(
        continuity_ingest::Ingest::new(&settings, settings.clock.clock())
            .await
            .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .unwrap();
    tokio::spawn(continuity_ingest::serve(
        ingest,
        listener,
        std::future::pending(),
    ));

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shots = root.join("target/browser-screenshots");
    let modules = std::env::var("CONTINUITY_BROWSER_MODULES")
        .expect("CONTINUITY_BROWSER_MODULES (scripts/test.sh sets it)");
    let [mine, theirs, at_risk] = &PEOPLE;
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/worklist.mjs"))
        .env("CONTINUITY_BROWSER_MODULES", modules)
        .env("WORKLIST_URL", format!("http://localhost:{}", s.worklist))
        .env("INGEST_URL", format!("http://127.0.0.1:{ingest_port}"))
        .env("INGEST_TOKEN", token)
        .env("SCREENSHOTS", &shots)
        .env("OWN_CRN", mine.crn)
        .env("OTHER_CRN", theirs.crn)
        .env("AT_RISK_CRN", at_risk.crn)
        .env("AT_RISK_NOMS", at_risk.noms)
        .output()
        .await
        .expect("node runs (scripts/test.sh installs what it needs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser checks passed"));
    for shot in [
        "worklist-overdue",
        "case",
        "case-with-errors",
        "area",
        "operator",
    ] {
        assert!(shots.join(format!("{shot}.png")).is_file(), "{shot}.png");
    }
    // The treatment start resolved the flag in the database as well as on the page.
    let raised: i64 =
        sqlx::query_scalar("select count(*) from flags where case_id = $1 and state = 'RAISED'")
            .bind(case_of(at_risk))
            .fetch_one(&s.env.pool)
            .await
            .unwrap();
    assert_eq!(raised, 0);
    s.matcher.stop().await;
    s.env.cleanup().await;
}

/// What the test receiver saw: each request's headers and body.
#[derive(Default)]
struct Received {
    requests: Vec<(String, i64, String, bool)>,
}

#[tokio::test]
async fn flags_reach_registered_endpoints_signed_once_each_whatever_the_receiver_does_first() {
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::IntoResponse;
    use std::sync::Mutex;
    // A receiver that refuses its first three requests (503, Retry-After: 3 s), then accepts;
    // and one that is gone (410).
    let received: Arc<Mutex<Received>> = Arc::default();
    let flaky = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let flaky_url = format!(
        "http://127.0.0.1:{}/hook",
        flaky.local_addr().unwrap().port()
    );
    let gone_url = format!(
        "http://127.0.0.1:{}/hook",
        gone.local_addr().unwrap().port()
    );
    let s = servers_with(
        |w| w.webhook_retry_seconds = vec![1; 7],
        &[("probation", &flaky_url), ("probation", &gone_url)],
    )
    .await;
    let secret = s.secrets[0].clone();
    {
        let received = received.clone();
        let verifier = Arc::new(standardwebhooks::Webhook::new(&secret).unwrap());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let verified = verifier.verify(body.as_bytes(), &headers).is_ok();
                let id = headers["webhook-id"].to_str().unwrap().to_owned();
                let ts: i64 = headers["webhook-timestamp"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let refuse = {
                    let mut r = received.lock().unwrap();
                    r.requests.push((id, ts, body, verified));
                    r.requests.len() <= 3
                };
                async move {
                    if refuse {
                        (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "3")]).into_response()
                    } else {
                        StatusCode::NO_CONTENT.into_response()
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(flaky, app).await });
    }
    let gone_hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    {
        let hits = gone_hits.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move || {
                hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                async { StatusCode::GONE }
            }),
        );
        tokio::spawn(async move { axum::serve(gone, app).await });
    }

    // The two raised flags on the probation service's cases, then the at-risk one resolved.
    let [mine, theirs, at_risk] = &PEOPLE;
    let start = SourceEvent::TreatmentStart(TreatmentStart {
        meta: EventMeta {
            event_id: EventId(Uuid::from_u128(0xfeed)),
            occurred_at: now(),
            source: OrganisationCode::parse("PRV000").unwrap(),
        },
        episode_id: "EP-1".into(),
        provider: ProviderCode::parse("PRV000").unwrap(),
        local_authority: LocalAuthorityCode::parse("E06000001").unwrap(),
        person: PersonRef {
            identifiers: vec![id(IdentifierKind::Noms, at_risk.noms)],
            attributor: None,
        },
        triage_date: Some(d(2026, 11, 20)),
        intervention_start: None,
    });
    // The start is sent once both raised deliveries were attempted: a flag that settles
    // before then is withheld (see the next test).
    let port = flaky_url.rsplit_once(':').unwrap().1.to_owned();
    eventually(60, "both raised flags attempted", || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from webhook_deliveries d join webhook_endpoints e using (endpoint_id)
             where e.url like '%' || $1 and d.attempts > 0",
        )
        .bind(&port)
        .fetch_one(&s.env.pool)
        .await
        .unwrap()
            == 2
    })
    .await;
    let producer = s.env.kafka.producer().unwrap();
    produce(&producer, &s.env.kafka, &messages(&[start]))
        .await
        .unwrap();

    let delivered = || async {
        sqlx::query_scalar::<_, i64>(
            "select count(*) from webhook_deliveries d join webhook_endpoints e using (endpoint_id)
             where e.url like '%' || $1 and d.delivered_at is not null",
        )
        .bind(flaky_url.rsplit_once(':').unwrap().1.to_owned())
        .fetch_one(&s.env.pool)
        .await
        .unwrap()
    };
    eventually(
        120,
        "three deliveries to the recovered receiver",
        || async { delivered().await == 3 },
    )
    .await;

    let r = received.lock().unwrap().requests.clone();
    assert!(
        r.iter().all(|(_, _, _, ok)| *ok),
        "every signature verifies"
    );
    let mut by_id: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (id, ts, body, _) in &r {
        by_id
            .entry(id.clone())
            .or_default()
            .push((*ts, body.clone()));
    }
    assert_eq!(by_id.len(), 3, "three messages: {by_id:?}");
    assert_eq!(r.len(), 6, "three refused attempts, then each message once");
    let mut types = Vec::new();
    for (id, attempts) in &by_id {
        assert!(id.starts_with("msg_"));
        assert!(
            attempts.windows(2).all(|w| w[0].1 == w[1].1),
            "{id}: the same body on every attempt"
        );
        for w in attempts.windows(2) {
            assert!(w[1].0 - w[0].0 >= 3, "{id}: Retry-After (3 s) honoured");
        }
        let body: serde_json::Value = serde_json::from_str(&attempts[0].1).unwrap();
        types.push(body["type"].as_str().unwrap().to_owned());
        let case = body["data"]["case_id"].as_str().unwrap();
        assert!(body["data"]["link"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/cases/{case}")));
        for secret in [
            mine.crn,
            mine.noms,
            mine.nhs,
            at_risk.crn,
            at_risk.noms,
            at_risk.nhs,
            theirs.crn,
        ] {
            assert!(
                !attempts[0].1.contains(secret),
                "the payload carries {secret}"
            );
        }
    }
    types.sort();
    assert_eq!(types, ["flag.raised", "flag.raised", "flag.resolved"]);

    // The gone endpoint answered 410 to the pass that first reached it and was disabled: no
    // delivery to it is tried twice (the flaky one's retries took seconds meanwhile).
    let (reason, tried, most): (Option<String>, i64, i32) = sqlx::query_as(
        "select e.disabled_reason,
                (select count(*) from webhook_attempts a where a.endpoint_id = e.endpoint_id),
                (select coalesce(max(d.attempts), 0) from webhook_deliveries d where d.endpoint_id = e.endpoint_id)
         from webhook_endpoints e where e.url = $1",
    )
    .bind(&gone_url)
    .fetch_one(&s.env.pool)
    .await
    .unwrap();
    assert_eq!(reason.as_deref(), Some("GONE"));
    assert_eq!(most, 1, "no retry after 410");
    assert!((1..=3).contains(&tried));
    assert_eq!(
        gone_hits.load(std::sync::atomic::Ordering::SeqCst) as i64,
        tried
    );

    // The organisation sees its delivery log; another sees none of it and cannot disable it.
    let mut pp = signed_in(&s, "PRACTITIONER").await;
    let page = pp.get("/webhooks").await;
    assert_eq!(page.status, 200);
    for id in by_id.keys() {
        assert!(page.body.contains(id.as_str()), "the log shows {id}");
    }
    assert!(page.body.contains("503: not accepted; will be tried again"));
    assert!(page.body.contains("the receiver answered 410 Gone"));
    let mut other = signed_in(&s, "PRACTITIONER_OTHER").await;
    let theirs_page = other.get("/webhooks").await;
    assert!(!theirs_page.body.contains(&flaky_url) && !theirs_page.body.contains("msg_"));
    let csrf = Client::csrf(&theirs_page);
    let endpoint: Uuid =
        sqlx::query_scalar("select endpoint_id from webhook_endpoints where url = $1")
            .bind(&flaky_url)
            .fetch_one(&s.env.pool)
            .await
            .unwrap();
    let refused = other
        .post(
            &format!("/webhooks/{endpoint}/disable"),
            &[("_csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, 404);
    let bad = other
        .post(
            "/webhooks",
            &[("_csrf", &csrf), ("url", "http://hooks.example.org/")],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("must start with https://"));
    assert!(
        bad.body.contains("value=\"http://hooks.example.org/\""),
        "what was typed is kept"
    );
    s.matcher.stop().await;
    s.env.cleanup().await;
}

/// A flag raised and resolved while the matcher reads a backlog pages nobody: webhooks are
/// held while the matcher is more than `webhook_hold_lag` source messages behind; a flag that
/// settles before its raised delivery was attempted is withheld, and counted; one still raised
/// when the backlog is read is delivered then.
#[tokio::test]
async fn a_flag_settled_while_the_matcher_reads_a_backlog_pages_nobody() {
    use continuity_schema::{wire, AvroRecord};
    use std::sync::Mutex;
    let received: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        receiver.local_addr().unwrap().port()
    );
    {
        let received = received.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                received
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap());
                async { axum::http::StatusCode::NO_CONTENT }
            }),
        );
        tokio::spawn(async move { axum::serve(receiver, app).await });
    }
    let mut s = servers_with(
        |w| {
            w.webhook_hold_lag = 5;
            w.webhook_interval_ms = 100;
        },
        &[("probation", &url)],
    )
    .await;
    let metric = |name: &'static str| {
        let port = s.worklist;
        async move {
            get_body(port, "/metrics")
                .await
                .lines()
                .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
                .unwrap_or(-1.0)
        }
    };
    eventually(60, "the lag measured, webhooks not held", || async {
        metric("continuity_worklist_webhooks_held ").await == 0.0
    })
    .await;

    // The matcher stops; ten source messages wait for it.
    s.matcher.stop().await;
    let producer = s.env.kafka.producer().unwrap();
    let releases = s.env.kafka.topic(Topic::Releases);
    let backlog: Vec<Vec<u8>> = (0..10)
        .map(|i| format!("backlog {i}").into_bytes())
        .collect();
    continuity_stream::send_all(
        &producer,
        backlog
            .iter()
            .map(|m| continuity_stream::Outgoing::new(&releases, None, m)),
    )
    .await
    .unwrap();
    eventually(60, "webhooks held for the lag", || async {
        metric("continuity_worklist_matcher_lag ").await >= 10.0
            && metric("continuity_worklist_webhooks_held ").await == 1.0
    })
    .await;

    // While held: one flag raised and resolved, another raised.
    let [mine, _, at_risk] = &PEOPLE;
    let (settled, still_raised) = (Uuid::new_v4(), Uuid::new_v4());
    let flag = |flag_id: Uuid, case_id: Uuid, state: wire::FlagState| wire::EngagementFlag {
        envelope: wire::Envelope {
            event_id: Uuid::new_v4(),
            occurred_at: now().timestamp_micros(),
            source: "continuity-matcher".into(),
            schema_version: 1,
        },
        flag_id,
        case_id,
        kind: wire::FlagKind::AtRisk,
        at_risk_day: Some(7),
        state,
        due_at: now().timestamp_micros(),
        raised_at: now().timestamp_micros(),
        settled_at: None,
        release_date: 20_000,
        local_authority: "E06000001".into(),
        provider: None,
        notify: true,
    };
    let flags = [
        flag(settled, case_of(at_risk), wire::FlagState::Raised),
        flag(settled, case_of(at_risk), wire::FlagState::ResolvedEngaged),
        flag(still_raised, case_of(mine), wire::FlagState::Raised),
    ];
    let topic = s.env.kafka.topic(Topic::Flags);
    let encoded: Vec<(Vec<u8>, Vec<u8>)> = flags
        .iter()
        .map(|f| (f.case_id.as_bytes().to_vec(), f.to_message().unwrap()))
        .collect();
    continuity_stream::send_all(
        &producer,
        encoded
            .iter()
            .map(|(k, m)| continuity_stream::Outgoing::new(&topic, Some(k), m)),
    )
    .await
    .unwrap();
    let rows = |flag_id: Uuid| {
        let pool = s.env.pool.clone();
        async move {
            sqlx::query_as::<_, (String, bool, bool)>(
                "select event_type, withheld, delivered_at is not null from webhook_deliveries
                 where flag_id = $1 order by event_type",
            )
            .bind(flag_id)
            .fetch_all(&pool)
            .await
            .unwrap()
        }
    };
    eventually(60, "the three flag messages queued", || async {
        rows(settled).await.len() == 2 && rows(still_raised).await.len() == 1
    })
    .await;
    assert_eq!(
        rows(settled).await,
        [
            ("flag.raised".to_owned(), true, false),
            ("flag.resolved".to_owned(), true, false)
        ],
        "both withheld"
    );
    assert_eq!(
        rows(still_raised).await,
        [("flag.raised".to_owned(), false, false)],
        "held, not sent"
    );
    assert_eq!(
        metric("continuity_worklist_webhook_deliveries_withheld_total ").await,
        2.0
    );

    // The matcher reads the backlog (dead-lettering it); the raised flag goes out, the
    // settled one never does.
    s.matcher = start(&s.env, "m2", &s.clock);
    eventually(120, "the still-raised flag delivered", || async {
        rows(still_raised).await == [("flag.raised".to_owned(), false, true)]
    })
    .await;
    assert_eq!(metric("continuity_worklist_webhooks_held ").await, 0.0);
    let got = received.lock().unwrap().clone();
    let to_flag = |id: Uuid| {
        got.iter()
            .filter(|b| b["data"]["flag_id"] == id.to_string())
            .count()
    };
    assert_eq!(to_flag(still_raised), 1);
    assert_eq!(to_flag(settled), 0, "the settled flag paged nobody");
}
