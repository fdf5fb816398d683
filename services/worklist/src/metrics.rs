//! The worklist's metrics on `/metrics`: page views and refusals by page, webhook attempts by
//! outcome, deliveries waiting and withheld, and whether webhooks are held for the matcher's
//! lag. Labels are page names and outcome codes only, never an
//! organisation or a person. Every labelled series exists from the start at zero, so rules
//! over `increase()` see the first event.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// Pages counted.
pub const PAGES: &[&str] = &["worklist", "case", "export", "area", "webhooks"];

/// Webhook attempt outcomes.
pub const WEBHOOK_OUTCOMES: &[&str] = &["delivered", "failed", "given_up", "gone"];

/// The worklist's metrics.
#[derive(Clone)]
pub struct Metrics {
    /// The registry `/metrics` serves.
    pub registry: Registry,
    views: IntCounterVec,
    denials: IntCounterVec,
    webhooks: IntCounterVec,
    /// Webhook deliveries not yet delivered or given up.
    pub webhooks_pending: IntGauge,
    /// Webhook deliveries never sent because their flag settled first.
    pub webhooks_withheld: IntCounter,
    /// 1 while webhooks are held for the matcher's lag.
    pub webhooks_held: IntGauge,
    /// The matcher's lag as the worklist last measured it.
    pub matcher_lag: IntGauge,
}

impl Metrics {
    /// Registered and zeroed.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter =
            |name: &str, help: &str, label: &str| -> Result<IntCounterVec, prometheus::Error> {
                let c = IntCounterVec::new(Opts::new(name, help), &[label])?;
                registry.register(Box::new(c.clone()))?;
                Ok(c)
            };
        let views = counter(
            "continuity_worklist_page_views_total",
            "Pages with personal data shown, by page.",
            "page",
        )?;
        let denials = counter(
            "continuity_worklist_access_denied_total",
            "Requests refused (another organisation's case, a role without access), by page.",
            "page",
        )?;
        let webhooks = counter(
            "continuity_worklist_webhook_attempts_total",
            "Webhook delivery attempts, by outcome.",
            "outcome",
        )?;
        let webhooks_pending = IntGauge::new(
            "continuity_worklist_webhook_deliveries_pending",
            "Webhook deliveries waiting to be delivered (or retried).",
        )?;
        registry.register(Box::new(webhooks_pending.clone()))?;
        let webhooks_withheld = IntCounter::new(
            "continuity_worklist_webhook_deliveries_withheld_total",
            "Webhook deliveries never sent because the flag settled before its raised delivery \
             was first attempted (typically while the matcher read a backlog): the raised and \
             the settling message, per endpoint.",
        )?;
        registry.register(Box::new(webhooks_withheld.clone()))?;
        let webhooks_held = IntGauge::new(
            "continuity_worklist_webhooks_held",
            "1 while webhook deliveries are held because the matcher is behind \
             (webhook_hold_lag), or its lag has not yet been measured.",
        )?;
        registry.register(Box::new(webhooks_held.clone()))?;
        let matcher_lag = IntGauge::new(
            "continuity_worklist_matcher_lag",
            "Source messages the matcher has not applied, as the worklist last measured them.",
        )?;
        registry.register(Box::new(matcher_lag.clone()))?;
        for page in PAGES {
            views.with_label_values(&[page]);
            denials.with_label_values(&[page]);
        }
        for outcome in WEBHOOK_OUTCOMES {
            webhooks.with_label_values(&[outcome]);
        }
        Ok(Metrics {
            registry,
            views,
            denials,
            webhooks,
            webhooks_pending,
            webhooks_withheld,
            webhooks_held,
            matcher_lag,
        })
    }

    /// A page with personal data was shown.
    pub fn viewed(&self, page: &'static str) {
        self.views.with_label_values(&[page]).inc();
    }

    /// A request was refused.
    pub fn denied(&self, page: &'static str) {
        self.denials.with_label_values(&[page]).inc();
    }

    /// A webhook attempt ended with `outcome`.
    pub fn webhook(&self, outcome: &'static str) {
        self.webhooks.with_label_values(&[outcome]).inc();
    }
}
