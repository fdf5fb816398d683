//! Sending the sample as its sources would: through ingest's HTTP API, each organisation with
//! its own token. [`write_sources`] makes a token per organisation of the sample (ingest's
//! configuration keeps only their hashes); [`send`] posts every event as NDJSON batches of
//! its kind, the invalid record as a single event, and the real HMPPS payloads as HMPPS
//! delivers them, and counts what ingest accepted, ignored and rejected.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use continuity_domain::events::SourceEvent;
use continuity_ingest::api::to_json;
use continuity_ingest::sources::{new_token, token_hash, Role};
use continuity_schema::{source_record, SourceRecord};
use serde_json::Value;

/// Rows per request.
const BATCH: usize = 1000;

/// The role of each organisation in the sample and the generated data.
pub fn role_of(organisation: &str) -> Role {
    match organisation {
        "hmpps-prisons" => Role::Hmpps,
        "probation" => Role::Probation,
        "hmp-healthcare" | "prison-healthcare" => Role::Prison,
        _ => Role::TreatmentProvider,
    }
}

/// The organisation the HMPPS payloads are sent as.
pub const HMPPS_ORGANISATION: &str = "hmpps-prisons";

/// Write `sources.toml` (for ingest: names, roles, token hashes) and `tokens` (for this
/// command: `organisation token` per line, readable by its owner only) into `dir`, with a new
/// random token for each organisation.
pub fn write_sources<'a>(
    organisations: impl IntoIterator<Item = &'a str>,
    dir: &Path,
) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut sources =
        String::from("# Written by `continuity sources`: the sample's organisations.\n");
    let mut tokens = String::new();
    let mut n = 0;
    for org in organisations {
        let token = new_token();
        let _ = write!(
            sources,
            "\n[[sources]]\nname = \"{org}\"\norganisation = \"{org}\"\nrole = \"{}\"\ntoken_sha256 = \"{}\"\n",
            role_of(org).name(),
            token_hash(&token)
        );
        let _ = writeln!(tokens, "{org} {token}");
        n += 1;
    }
    std::fs::write(dir.join("sources.toml"), sources)?;
    let path = dir.join("tokens");
    std::fs::write(&path, tokens)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(n)
}

/// Read the tokens written by [`write_sources`].
pub fn read_tokens(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read {} (run `continuity sources` first)",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(o, t)| (o.to_owned(), t.trim().to_owned()))
        .collect())
}

/// What ingest made of everything sent.
#[derive(Debug, Default)]
pub struct Sent {
    /// Requests made.
    pub requests: usize,
    /// Events written to the broker.
    pub events: usize,
    /// Rows ignored (HMPPS events the pipeline does not use).
    pub ignored: usize,
    /// Rows refused, with ingest's words.
    pub refused: Vec<String>,
}

struct Client {
    base: String,
    tokens: BTreeMap<String, String>,
    agent: ureq::Agent,
    sent: Sent,
}

impl Client {
    fn post(
        &mut self,
        org: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<()> {
        let token = self
            .tokens
            .get(org)
            .with_context(|| format!("no token for {org}"))?;
        let url = format!("{}{path}", self.base);
        for attempt in 0.. {
            let response = self
                .agent
                .post(&url)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", content_type)
                .send(body)
                .with_context(|| format!("ingest at {} does not answer", self.base))?;
            let status = response.status().as_u16();
            let retry = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let text = response.into_body().read_to_string()?;
            self.sent.requests += 1;
            match (status, retry) {
                (429 | 503, Some(wait)) if attempt < 10 => {
                    std::thread::sleep(Duration::from_secs(wait.min(10)));
                    continue;
                }
                (202 | 207 | 422 | 403, _) => {
                    self.count(org, path, &text);
                    return Ok(());
                }
                _ => anyhow::bail!("ingest answered {status} to {org} on {path}: {text}"),
            }
        }
        Ok(())
    }

    /// Count a single answer or a batch's rows.
    fn count(&mut self, org: &str, path: &str, text: &str) {
        let answer: Value = serde_json::from_str(text).unwrap_or_default();
        let rows: Vec<Value> = match answer.get("rows").and_then(Value::as_array) {
            Some(rows) => rows.clone(),
            None => vec![answer],
        };
        for row in rows {
            match row.get("status").and_then(Value::as_str) {
                Some("accepted") => {
                    self.sent.events += row["events"].as_array().map_or(0, Vec::len);
                }
                Some("ignored") => self.sent.ignored += 1,
                _ => {
                    let errors = row
                        .get("errors")
                        .and_then(Value::as_array)
                        .map(|es| {
                            es.iter()
                                .map(|e| {
                                    format!(
                                        "{}: {}",
                                        e["field"].as_str().unwrap_or("?"),
                                        e["problem"].as_str().unwrap_or("?")
                                    )
                                })
                                .collect::<Vec<_>>()
                                .join("; ")
                        })
                        .or_else(|| row.get("detail").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or_default();
                    self.sent.refused.push(format!("{org} {path}: {errors}"));
                }
            }
        }
    }
}

/// The content type of a batch.
pub const NDJSON: &str = "application/x-ndjson";

/// One request's worth of events as their source sends them: NDJSON rows of one kind from one
/// organisation.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The sending organisation (its token authenticates the request).
    pub organisation: String,
    /// The endpoint, `/v1/events/<kind>`.
    pub path: String,
    /// The rows, one JSON form per line.
    pub body: String,
    /// Rows in the body.
    pub rows: usize,
}

/// `events` as their sources send them: grouped by organisation and kind, at most `size` rows
/// a request, in the order of the groups.
pub fn batches(events: &[SourceEvent], size: usize) -> anyhow::Result<Vec<Batch>> {
    let mut groups: BTreeMap<(String, &'static str), Vec<String>> = BTreeMap::new();
    for event in events {
        let (kind, json) = to_json(&source_record(event))?;
        groups
            .entry((event.meta().source.to_string(), kind.path()))
            .or_default()
            .push(json.to_string());
    }
    let mut out = Vec::new();
    for ((organisation, kind), lines) in groups {
        for chunk in lines.chunks(size.max(1)) {
            out.push(Batch {
                organisation: organisation.clone(),
                path: format!("/v1/events/{kind}"),
                body: chunk.join("\n"),
                rows: chunk.len(),
            });
        }
    }
    Ok(out)
}

/// Send the events (NDJSON batches per organisation and kind), the invalid records (one by
/// one), and every HMPPS payload under `hmpps_dir` to ingest at `base` (`http://host:port`).
pub fn send(
    base: &str,
    tokens: BTreeMap<String, String>,
    events: &[SourceEvent],
    invalid: &[Vec<u8>],
    hmpps_dir: &Path,
) -> anyhow::Result<Sent> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut client = Client {
        base: base.trim_end_matches('/').to_owned(),
        tokens,
        agent,
        sent: Sent::default(),
    };
    for batch in batches(events, BATCH)? {
        client.post(
            &batch.organisation,
            &batch.path,
            NDJSON,
            batch.body.as_bytes(),
        )?;
    }
    for message in invalid {
        if let Ok(Some(mut record)) = SourceRecord::from_message(message) {
            let org = record.envelope_mut().source.clone();
            let (kind, json) = to_json(&record)?;
            client.post(
                &org,
                &format!("/v1/events/{}", kind.path()),
                "application/json",
                json.to_string().as_bytes(),
            )?;
        }
    }
    let mut files: Vec<_> = walk(hmpps_dir)?;
    files.sort();
    for file in files {
        let body = std::fs::read(&file)?;
        client.post(
            HMPPS_ORGANISATION,
            "/v1/hmpps/events",
            "application/json",
            &body,
        )?;
    }
    Ok(client.sent)
}

fn walk(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            out.extend(walk(&path)?);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
    Ok(out)
}
