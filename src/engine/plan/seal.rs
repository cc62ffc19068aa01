//! A plan file's seal: the SHA-256 of the plan's canonical JSON (sorted
//! keys, no spaces, the digest itself left empty), written with the file
//! and checked when it is read; and the first difference between two plans,
//! which `repair --plan` reports when the file is not the plan the database
//! needs now.

use sha2::{Digest, Sha256};

use super::{Plan, short_fingerprint};
use crate::{Error, Result};

impl Plan {
    /// The plan as pretty JSON (the plan file), with its digest.
    pub fn to_json(&self) -> String {
        let mut sealed = self.clone();
        sealed.digest = self.compute_digest();
        serde_json::to_string_pretty(&sealed).unwrap_or_default()
    }

    /// SHA-256 (hex) of the canonical JSON (sorted keys, no spaces) of the
    /// plan with an empty digest: what the digest must be.
    pub fn compute_digest(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.canonical().to_string().as_bytes());
        format!("{:x}", hasher.finalize())
    }

    /// The plan as a JSON value without its digest (keys sorted).
    fn canonical(&self) -> serde_json::Value {
        let mut unsealed = self.clone();
        unsealed.digest = String::new();
        serde_json::to_value(&unsealed).unwrap_or_default()
    }

    /// Reads a plan file; refuses one whose content does not match its digest.
    pub fn from_json(text: &str, source: &std::path::Path) -> Result<Plan> {
        let plan: Plan = serde_json::from_str(text).map_err(|e| {
            Error::Invalid(format!(
                "{}: not a phantom-sync plan file: {e} (hint: write one with `phantom-sync plan --out FILE` or `phantom-sync rehearse`)",
                source.display()
            ))
        })?;
        let problem = if plan.digest.is_empty() {
            Some("it has no digest".to_string())
        } else if plan.digest != plan.compute_digest() {
            Some(format!(
                "digest {} recorded, {} computed",
                short_fingerprint(&plan.digest),
                short_fingerprint(&plan.compute_digest())
            ))
        } else {
            None
        };
        match problem {
            Some(problem) => Err(Error::PlanEdited {
                file: source.to_path_buf(),
                problem,
            }),
            None => Ok(plan),
        }
    }

    /// The first place where `self` (a plan file) and `live` (the plan made
    /// now) differ, digests aside: (JSON path, this value, live value).
    pub fn first_difference(&self, live: &Plan) -> Option<(String, String, String)> {
        first_difference("plan", &self.canonical(), &live.canonical())
    }
}

/// Walks two JSON values in step; the first path where they differ.
fn first_difference(
    path: &str,
    a: &serde_json::Value,
    b: &serde_json::Value,
) -> Option<(String, String, String)> {
    use serde_json::Value;
    let shown = |v: &Value| {
        let text = v.to_string();
        if text.chars().count() > 120 {
            format!("{}…", text.chars().take(120).collect::<String>())
        } else {
            text
        }
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (va, vb) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                first_difference(&format!("{path}.{k}"), va, vb)
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            let common = x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (va, vb))| first_difference(&format!("{path}[{i}]"), va, vb));
            common.or_else(|| {
                (x.len() != y.len()).then(|| {
                    (
                        format!("{path} (length)"),
                        format!("{} entries", x.len()),
                        format!("{} entries", y.len()),
                    )
                })
            })
        }
        _ if a == b => None,
        _ => Some((path.to_string(), shown(a), shown(b))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::{PlanOptions, backup_steps};

    fn sample() -> Plan {
        Plan {
            fingerprint: "f".repeat(64),
            digest: String::new(),
            options: PlanOptions::default(),
            data_at_risk: Vec::new(),
            steps: backup_steps(),
            refusals: Vec::new(),
            warnings: Vec::new(),
            tolerated: Default::default(),
        }
    }

    #[test]
    fn plan_files_carry_a_digest_of_everything_and_edits_are_refused() {
        let file = std::path::Path::new("plan.json");
        let plan = sample();
        let text = plan.to_json();
        let read = Plan::from_json(&text, file).unwrap();
        assert_eq!(read.first_difference(&plan), None);

        // Steps emptied, digest left as it was: refused as edited.
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["steps"] = serde_json::json!([]);
        let err = Plan::from_json(&value.to_string(), file).unwrap_err();
        assert!(matches!(err, Error::PlanEdited { .. }), "{err}");
        assert!(
            err.to_string().contains("does not match its digest"),
            "{err}"
        );

        // Without a digest: refused too.
        value["digest"] = serde_json::json!("");
        assert!(Plan::from_json(&value.to_string(), file).is_err());

        // The first difference names the path.
        let mut edited = plan.clone();
        edited.steps.remove(2);
        let (path, file_has, live) = edited.first_difference(&plan).unwrap();
        assert_eq!(path, "plan.steps (length)");
        assert_eq!(
            (file_has.as_str(), live.as_str()),
            ("2 entries", "3 entries")
        );
        let mut edited = plan.clone();
        edited.steps[0].title = "x".into();
        assert_eq!(
            edited.first_difference(&plan).map(|d| d.0),
            Some("plan.steps[0].title".to_string())
        );
    }
}
