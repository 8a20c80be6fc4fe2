//! k3s release names (`v1.29.1+k3s2`) and the upgrade rules between them: no downgrade,
//! no skipped minor, agents never newer than servers.

use std::cmp::Ordering;
use std::fmt;

/// A k3s release: the Kubernetes version plus k3s's own revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K3sVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// Pre-release text such as `rc1`, when present (`v1.30.0-rc1+k3s1`).
    pub pre: Option<String>,
    /// The `k3sN` revision.
    pub revision: u32,
    text: String,
}

impl K3sVersion {
    /// Parses `v1.29.1+k3s2` (the `v` and a pre-release part are allowed, the `+k3sN` is required).
    pub fn parse(text: &str) -> Result<K3sVersion, String> {
        let bad = || format!("{text:?} is not a k3s release such as \"v1.29.1+k3s2\"");
        let body = text.strip_prefix('v').unwrap_or(text);
        let (kube, k3s) = body.split_once('+').ok_or_else(bad)?;
        let revision = k3s.strip_prefix("k3s").and_then(|n| n.parse().ok()).ok_or_else(bad)?;
        let (numbers, pre) = match kube.split_once('-') {
            Some((numbers, pre)) if !pre.is_empty() => (numbers, Some(pre.to_string())),
            Some(_) => return Err(bad()),
            None => (kube, None),
        };
        let parts: Vec<u32> = numbers.split('.').map(|p| p.parse().map_err(|_| bad())).collect::<Result<_, _>>()?;
        let [major, minor, patch] = parts[..] else { return Err(bad()) };
        Ok(K3sVersion { major, minor, patch, pre, revision, text: format!("v{body}") })
    }

    /// `v1.29`: the minor release line.
    pub fn minor_line(&self) -> String {
        format!("v{}.{}", self.major, self.minor)
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn key(&self) -> (u32, u32, u32, bool, &str, u32) {
        // A release sorts after its own pre-releases.
        (self.major, self.minor, self.patch, self.pre.is_none(), self.pre.as_deref().unwrap_or(""), self.revision)
    }
}

impl Ord for K3sVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for K3sVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for K3sVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why going from `from` to `to` is refused, if it is: downgrades and skipped minors.
pub fn upgrade_refusal(from: &K3sVersion, to: &K3sVersion) -> Option<String> {
    if to < from {
        return Some(format!(
            "{from} → {to} is a downgrade, which k3s does not support; restore an etcd snapshot of {from}'s \
             predecessor instead, or set version back to {from}"
        ));
    }
    if to.major != from.major || to.minor > from.minor + 1 {
        let next = format!("v{}.{}", from.major, from.minor + 1);
        return Some(format!(
            "{} → {}: Kubernetes supports one minor version at a time; upgrade to {next} first",
            from.minor_line(),
            to.minor_line()
        ));
    }
    None
}

/// The text `k3s --version` prints first: `k3s version v1.29.1+k3s2 (abcdef12)`.
pub fn from_version_output(output: &str) -> Option<K3sVersion> {
    let line = output.lines().next()?;
    let word = line.split_whitespace().nth(2)?;
    K3sVersion::parse(word).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> K3sVersion {
        K3sVersion::parse(text).unwrap()
    }

    #[test]
    fn parses_and_orders_releases() {
        assert_eq!(v("v1.29.1+k3s2").minor_line(), "v1.29");
        assert_eq!(v("1.29.1+k3s2").as_str(), "v1.29.1+k3s2");
        assert!(v("v1.29.1+k3s2") > v("v1.29.1+k3s1"));
        assert!(v("v1.29.10+k3s1") > v("v1.29.9+k3s3"));
        assert!(v("v1.30.0+k3s1") > v("v1.30.0-rc2+k3s1"));
        for bad in ["1.29", "v1.29.1", "v1.29+k3s1", "v1.29.1+k3sx", "latest", "v1.29.1-+k3s1"] {
            assert!(K3sVersion::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_downgrades_and_skipped_minors() {
        assert!(upgrade_refusal(&v("v1.29.1+k3s2"), &v("v1.29.4+k3s1")).is_none());
        assert!(upgrade_refusal(&v("v1.29.1+k3s2"), &v("v1.30.2+k3s1")).is_none());
        assert!(upgrade_refusal(&v("v1.29.1+k3s2"), &v("v1.29.1+k3s2")).is_none());
        let skipped = upgrade_refusal(&v("v1.29.1+k3s2"), &v("v1.31.0+k3s1")).unwrap();
        assert!(skipped.contains("v1.29 → v1.31") && skipped.contains("upgrade to v1.30 first"), "{skipped}");
        assert!(upgrade_refusal(&v("v1.29.4+k3s1"), &v("v1.29.1+k3s2")).unwrap().contains("downgrade"));
    }

    #[test]
    fn reads_version_output() {
        let out = "k3s version v1.29.1+k3s2 (57482a1c)\ngo version go1.21.6\n";
        assert_eq!(from_version_output(out), Some(v("v1.29.1+k3s2")));
        assert_eq!(from_version_output("sh: k3s: not found"), None);
    }
}
