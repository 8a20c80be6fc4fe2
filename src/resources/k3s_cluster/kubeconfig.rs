//! The admin kubeconfig k3s writes (`/etc/rancher/k3s/k3s.yaml`, server
//! `https://127.0.0.1:6443`), turned into what users connect with: the same document with
//! the server set to `api_endpoint` (parsed and rewritten, never string-replaced) and the
//! `connection` map every Kubernetes resource's `cluster` attribute takes.

use std::collections::BTreeMap;

use base64::Engine;
use serde_yaml::Value as Yaml;

/// What a k3s kubeconfig holds, decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub ca_pem: String,
    pub client_certificate_pem: String,
    pub client_key_pem: String,
}

fn decode(value: Option<&Yaml>, what: &str) -> Result<String, String> {
    let text = value.and_then(Yaml::as_str).ok_or_else(|| format!("it has no {what}"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|_| format!("its {what} is not base64"))?;
    String::from_utf8(bytes).map_err(|_| format!("its {what} is not PEM text"))
}

/// Reads the first cluster and user of `text`.
pub fn credentials(text: &str) -> Result<Credentials, String> {
    let doc: Yaml = serde_yaml::from_str(text).map_err(|e| format!("it is not YAML: {e}"))?;
    let cluster = doc.get("clusters").and_then(|c| c.get(0)).and_then(|c| c.get("cluster"));
    let user = doc.get("users").and_then(|u| u.get(0)).and_then(|u| u.get("user"));
    Ok(Credentials {
        ca_pem: decode(cluster.and_then(|c| c.get("certificate-authority-data")), "certificate-authority-data")?,
        client_certificate_pem: decode(user.and_then(|u| u.get("client-certificate-data")), "client-certificate-data")?,
        client_key_pem: decode(user.and_then(|u| u.get("client-key-data")), "client-key-data")?,
    })
}

/// `text` with every cluster's `server` set to `server` and names set to `name`.
pub fn rewrite(text: &str, server: &str, name: &str) -> Result<String, String> {
    let mut doc: Yaml = serde_yaml::from_str(text).map_err(|e| format!("it is not YAML: {e}"))?;
    let set_names = |list: Option<&mut Yaml>, key: &str| {
        if let Some(Yaml::Sequence(items)) = list {
            for item in items {
                if let Some(map) = item.as_mapping_mut() {
                    map.insert(Yaml::String("name".into()), Yaml::String(name.to_string()));
                    if key == "cluster" {
                        if let Some(cluster) = map.get_mut("cluster").and_then(Yaml::as_mapping_mut) {
                            cluster.insert(Yaml::String("server".into()), Yaml::String(server.to_string()));
                        }
                    }
                    if key == "context" {
                        if let Some(context) = map.get_mut("context").and_then(Yaml::as_mapping_mut) {
                            context.insert(Yaml::String("cluster".into()), Yaml::String(name.to_string()));
                            context.insert(Yaml::String("user".into()), Yaml::String(name.to_string()));
                        }
                    }
                }
            }
        }
    };
    let map = doc.as_mapping_mut().ok_or("it is not a kubeconfig document")?;
    if map.get("clusters").and_then(Yaml::as_sequence).is_none_or(Vec::is_empty) {
        return Err("it has no clusters".into());
    }
    set_names(map.get_mut("clusters"), "cluster");
    set_names(map.get_mut("users"), "user");
    set_names(map.get_mut("contexts"), "context");
    map.insert(Yaml::String("current-context".into()), Yaml::String(name.to_string()));
    serde_yaml::to_string(&doc).map_err(|e| e.to_string())
}

/// The `connection` map: the keys of the `cluster` attribute.
pub fn connection(server: &str, credentials: &Credentials) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("host".to_string(), server.to_string()),
        ("cluster_ca_certificate".to_string(), credentials.ca_pem.clone()),
        ("client_certificate".to_string(), credentials.client_certificate_pem.clone()),
        ("client_key".to_string(), credentials.client_key_pem.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn sample() -> String {
        format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://127.0.0.1:6443\n  name: default\n\
             contexts:\n- context:\n    cluster: default\n    user: default\n  name: default\ncurrent-context: default\nkind: Config\n\
             preferences: {{}}\nusers:\n- name: default\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\n",
            b64("CA PEM"),
            b64("CERT PEM"),
            b64("KEY PEM")
        )
    }

    #[test]
    fn reads_credentials_and_rewrites_the_server() {
        let creds = credentials(&sample()).unwrap();
        assert_eq!(creds.ca_pem, "CA PEM");
        assert_eq!(creds.client_key_pem, "KEY PEM");
        let rewritten = rewrite(&sample(), "https://k3s.example.com:6443", "home").unwrap();
        let doc: Yaml = serde_yaml::from_str(&rewritten).unwrap();
        assert_eq!(doc["clusters"][0]["cluster"]["server"].as_str(), Some("https://k3s.example.com:6443"));
        assert_eq!(doc["contexts"][0]["context"]["cluster"].as_str(), Some("home"));
        assert_eq!(doc["current-context"].as_str(), Some("home"));
        assert!(credentials(&rewritten).unwrap() == creds);
        let map = connection("https://k3s.example.com:6443", &creds);
        assert_eq!(map["host"], "https://k3s.example.com:6443");
    }

    #[test]
    fn refuses_what_is_not_a_kubeconfig() {
        assert!(credentials("just text").is_err());
        assert!(rewrite("clusters: []\n", "https://x:6443", "n").is_err());
    }
}
