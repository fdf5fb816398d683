//! The Kubernetes objects generated from what the code and the alert rules say, kept in the
//! repository so that `kustomize build` needs nothing else: Strimzi `KafkaTopic`s from
//! `continuity_stream::Topic` (names, partitions, configuration), and the `PrometheusRule` from
//! `deploy/prometheus/rules.yml`. A test fails, printing the file as it should be, when either
//! falls out of step. (The rendered overlays are validated against the Kubernetes schemas and
//! scanned by scripts/check-deploy.sh.)

use continuity_stream::Topic;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `path` (relative to the repository) holds `expected`, or the test fails printing it.
fn in_step(path: &str, expected: &str) {
    let actual = std::fs::read_to_string(root().join(path)).unwrap_or_default();
    assert!(
        actual == expected,
        "{path} is out of step with what it is generated from; write this:\n{expected}"
    );
}

#[test]
fn kafka_topics_match_the_code() {
    let mut out = String::from(
        "# Generated from continuity_stream::Topic by tests/tests/deploy.rs (which prints this file\n\
         # when the code changes): the topics, for Strimzi's Topic Operator in the Kafka cluster's\n\
         # namespace. Replication 3 with at least 2 in sync; overlays/dev patches both to 1.\n",
    );
    for topic in Topic::ALL {
        let name = format!("continuity.{}", topic.base_name());
        out.push_str(&format!(
            "---\napiVersion: kafka.strimzi.io/v1\nkind: KafkaTopic\nmetadata:\n  name: {name}\n  \
             labels: {{strimzi.io/cluster: continuity}}\nspec:\n  topicName: {name}\n  \
             partitions: {}\n  replicas: 3\n  config:\n    min.insync.replicas: 2\n",
            topic.partitions()
        ));
        for (key, value) in topic.config() {
            out.push_str(&format!("    {key}: \"{value}\"\n"));
        }
    }
    in_step("k8s/topics/kafka-topics.yaml", &out);
}

#[test]
fn the_prometheus_rule_is_the_alert_rules() {
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/rules.yml")).unwrap();
    let groups = rules
        .lines()
        .skip_while(|l| !l.starts_with("groups:"))
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("  {l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let out = format!(
        "# Generated from deploy/prometheus/rules.yml by tests/tests/deploy.rs (which prints this\n\
         # file when the rules change): the alert rules for the Prometheus Operator.\n\
         apiVersion: monitoring.coreos.com/v1\nkind: PrometheusRule\nmetadata:\n  name: continuity\n  \
         labels: {{app.kubernetes.io/part-of: continuity}}\nspec:\n{groups}\n"
    );
    in_step("k8s/base/prometheus-rule.yaml", &out);
}

/// Where the runbooks are read: the repository's `runbooks/` on its main branch. A deployment
/// that hosts the repository elsewhere changes this and the rules together.
const RUNBOOK_BASE: &str = "https://github.com/continuity-pipeline/continuity/blob/main/";

/// Each alert in `rules.yml` with the value of its `runbook_url` annotation (empty if none).
fn alerts_and_runbooks(rules: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in rules.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            out.push((name.to_owned(), String::new()));
        } else if let (Some(url), Some(last)) = (line.strip_prefix("runbook_url: "), out.last_mut())
        {
            last.1 = url.to_owned();
        }
    }
    out
}

#[test]
fn every_alert_links_a_runbook_that_exists_and_has_a_rule_test() {
    let rules = std::fs::read_to_string(root().join("deploy/prometheus/rules.yml")).unwrap();
    let tests = std::fs::read_to_string(root().join("deploy/prometheus/rules.test.yml")).unwrap();
    let alerts = alerts_and_runbooks(&rules);
    assert!(alerts.len() >= 18, "{alerts:?}");
    for (alert, url) in alerts {
        let path = url
            .strip_prefix(RUNBOOK_BASE)
            .unwrap_or_else(|| panic!("{alert}: runbook_url {url:?} is not under {RUNBOOK_BASE}"));
        assert!(
            path.starts_with("runbooks/") && root().join(path).is_file(),
            "{alert}: runbook_url names {path}, which is not a file in runbooks/"
        );
        let runbook = std::fs::read_to_string(root().join(path)).unwrap();
        assert!(
            runbook.contains(&alert),
            "{alert}: {path} does not mention the alert by name"
        );
        assert!(
            tests.contains(&format!("alertname: {alert}\n")),
            "{alert} has no `promtool test rules` case in rules.test.yml"
        );
    }
}
