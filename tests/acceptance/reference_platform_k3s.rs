//! examples/k3s-ha-platform applied for real, in one apply: the cluster of 3 servers and 4
//! agents on the node rig, and everything on it through the cluster's `connection`.
//!
//! What cannot run here, and its STAND-INS (named so in the test's name):
//! - k3s itself: the k3s stand-in (`harness::k3s_standin`) on seven rig hosts, installed by
//!   the provider over real SSH; its servers run a real etcd and kube-apiserver, so the
//!   stacks, namespaces and secrets land in a real API server of the cluster just made.
//! - Flux's controllers: `flux_standin::FluxStandIn` pointed at that API server once it
//!   answers. It reports HelmReleases Ready, creates their target namespaces, and applies
//!   the CRDs a chart would bring (cert-manager's stand-in CRDs, Velero's real ones) before
//!   it does, since the new cluster starts without them.
//! - Flux's `install.yaml`: a stand-in document on loopback holding the tests' Flux CRDs
//!   (`fixtures/flux-crds.yaml`) and `fixtures/examples/flux-install-standin.yaml`, so the
//!   gitops stack installs the CRDs into the new cluster as the real document does.
//! - Velero: the Velero stand-in (`harness::velero_standin`) watching `velero` of the new
//!   cluster, which checks the backup location against SeaweedFS (`harness::s3`) with the
//!   keys the location's Secret holds and reports it Available.
//! - Cloudflare: the Cloudflare stand-in (`harness::cloudflare_standin`), given to the
//!   provider's `dns` block as `cloudflare_api_url`; cert-manager only names it.
//!
//! It needs its own cluster, DNS and bucket, so it runs beside the other example tests.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::cloudflare_standin::CloudflareStandIn;
use crate::harness::flux_standin::{self, FluxStandIn};
use crate::harness::hosts::{Host, Hosts};
use crate::harness::http::HttpClient;
use crate::harness::k3s_config::V1;
use crate::harness::k3s_standin::K3sStandin;
use crate::harness::manifests_server::{sha256_hex, ManifestsServer};
use crate::harness::s3::s3;
use crate::harness::secrets::{base64, require, Sops};
use crate::harness::velero_standin::{self, velero_path, VeleroStandIn};
use crate::harness::{fixture, newest_terraform, unique_name, Workdir};
use crate::reference_platforms::install_example;
use crate::stack::hcl;

const SERVERS: [&str; 3] = ["master-1", "master-2", "master-3"];
const AGENTS: [&str; 4] = ["worker-1", "worker-2", "worker-3", "worker-4"];
const DOMAIN: &str = "helix.acc.test";
const OWNER: &str = "platform.terraform.io/owner";

/// The controller stand-ins of the new cluster, started by a thread as soon as its first
/// server answers with the admin certificate (the cluster does not exist when the apply
/// begins); stopped when dropped.
struct ClusterStandIns {
    started: Arc<Mutex<Option<(FluxStandIn, VeleroStandIn)>>>,
}

impl ClusterStandIns {
    fn start_when_up(k3s: &'static K3sStandin, server: &Host) -> ClusterStandIns {
        let started = Arc::new(Mutex::new(None));
        let slot = started.clone();
        let server = server.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(900);
            while Instant::now() < deadline {
                if let Ok(api) = k3s.admin_client(&server) {
                    if api.get("/api/v1/namespaces/default").is_ok_and(|r| r.ok()) {
                        eprintln!("acceptance: the k3s stand-in's API answers: starting the Flux and Velero stand-ins");
                        let flux = FluxStandIn::start_on(api.clone());
                        let velero = VeleroStandIn::start_on(api, "velero", velero_standin::Options::default());
                        *slot.lock().unwrap() = Some((flux, velero));
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        ClusterStandIns { started }
    }

    fn is_running(&self) -> bool {
        self.started.lock().unwrap().is_some()
    }
}

impl Drop for ClusterStandIns {
    fn drop(&mut self) {
        self.started.lock().unwrap().take();
    }
}

/// GET from the new cluster: the object, `None` on 404.
#[track_caller]
fn get(api: &HttpClient, path: &str) -> Option<Value> {
    let resp = api.get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"));
    match resp.status {
        404 => None,
        s if (200..300).contains(&s) => Some(resp.json()),
        s => panic!("GET {path}: HTTP {s}: {}", resp.body),
    }
}

#[track_caller]
fn live(api: &HttpClient, path: &str) -> Value {
    get(api, path).unwrap_or_else(|| panic!("{path} does not exist in the k3s stand-in's cluster"))
}

#[test]
fn k3s_ha_platform_applies_on_the_k3s_standin_with_standins_plans_empty_and_destroys_clean() {
    let started = Instant::now();
    let hosts = Hosts::start(SERVERS.len() + AGENTS.len());
    let k3s = K3sStandin::prepare();
    let sops = require(Sops::find());
    let cloudflare = CloudflareStandIn::start("cf-token-standin");
    cloudflare.add_zone(DOMAIN);
    let bucket = unique_name("helix-velero");
    s3().create_bucket(&bucket);
    let manifests = ManifestsServer::start();
    let install = format!("{}\n---\n{}", fixture("flux-crds.yaml"), fixture("examples/flux-install-standin.yaml"));
    let install_url = manifests.put("flux/install.yaml", &install);

    let tf = newest_terraform();
    let (mut work, key) = sops.keyed_workdir(Workdir::without_cluster(&tf));
    install_example(&work, "k3s-ha-platform");
    let app_secrets = "DATABASE_PASSWORD: db-s3cret-standin\nJWT_SECRET: jwt-s3cret-standin\n";
    let app_secrets_file = work.root().join("helix-secrets.sops.yaml");
    sops.encrypt(&[&key], "yaml", app_secrets.as_bytes(), &app_secrets_file, &[]);

    let address = |i: usize| hosts.host(i).address().to_string();
    let nodes = |names: &[&str], first: usize| -> String {
        let entries: Vec<String> =
            names.iter().enumerate().map(|(i, name)| format!("  {name} = {}\n", hcl(&address(first + i)))).collect();
        format!("{{\n{}}}", entries.concat())
    };
    let path = |p: &Path| hcl(p.to_str().unwrap());
    work.write_file(
        "test.auto.tfvars",
        &format!(
            "servers = {}\nagents = {}\napi_endpoint = {}\nk3s_install_script_url = {}\nssh_user = \"root\"\n\
             ssh_private_key_path = {}\nknown_hosts_file = {}\ndomain = {}\ncloudflare_api_url = {}\n\
             ingress_addresses = [{}, {}]\nacme_email = \"ops@example.com\"\nacme_server = \"https://127.0.0.1:1/directory\"\n\
             flux_install_url = {}\nflux_install_sha256 = {}\nage_key_file = {}\napp_secrets_file = {}\n\
             backup_s3_url = {}\nbackup_bucket = {}\n",
            nodes(&SERVERS, 0),
            nodes(&AGENTS, SERVERS.len()),
            hcl(&format!("https://{}:6443", address(0))),
            hcl(k3s.install_script_url()),
            path(hosts.private_key_path()),
            path(hosts.known_hosts_path()),
            hcl(DOMAIN),
            hcl(&cloudflare.base_url()),
            hcl(&address(3)),
            hcl(&address(4)),
            hcl(&install_url),
            hcl(&sha256_hex(&install)),
            path(&key.path),
            path(&app_secrets_file),
            hcl(&s3().endpoint()),
            hcl(&bucket),
        ),
    );
    for (name, value) in [
        ("cloudflare_api_token", cloudflare.token()),
        ("grafana_admin_password", "grafana-s3cret-standin"),
        ("backup_access_key_id", s3().access_key()),
        ("backup_secret_access_key", s3().secret_key()),
    ] {
        work.set_env(&format!("TF_VAR_{name}"), value);
    }

    let standins = ClusterStandIns::start_when_up(k3s, hosts.host(0));
    let applying = Instant::now();
    let out = work.apply();
    out.assert_success();
    eprintln!("acceptance: k3s-ha-platform applied in {:.1?}", applying.elapsed());
    assert!(standins.is_running());
    let api = k3s.admin_client(hosts.host(0)).expect("the admin client of the new cluster");

    // The cluster: three servers and four agents, each on its host, all Ready.
    let nodes_out = &work.output_json()["nodes"]["value"];
    for (names, role, first) in [(&SERVERS[..], "server", 0), (&AGENTS[..], "agent", SERVERS.len())] {
        for (i, name) in names.iter().enumerate() {
            let node = &nodes_out[*name];
            assert_eq!(node["role"], role, "{name}: {nodes_out}");
            assert_eq!(node["version"], V1, "{name}: {nodes_out}");
            assert_eq!(node["ready"], true, "{name}: {nodes_out}");
            assert_eq!(node["host"], address(first + i), "{name}: {nodes_out}");
        }
    }
    let node_list = live(&api, "/api/v1/nodes");
    assert_eq!(node_list["items"].as_array().map(Vec::len), Some(7), "{node_list}");

    // Flux, installed by the gitops stack from the pinned document, CRDs included.
    assert!(manifests.hits("flux/install.yaml") > 0);
    let flux_namespace = live(&api, "/api/v1/namespaces/flux-system");
    assert_eq!(flux_namespace["metadata"]["labels"]["platform.terraform.io/stack"], "gitops");
    live(&api, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/helmreleases.helm.toolkit.fluxcd.io");

    // Every component of the document is a Ready HelmRelease, in the order its stack says.
    let releases = live(&api, &format!("{}/namespaces/flux-system/helmreleases", flux_standin::HELM_RELEASES));
    let releases = releases["items"].as_array().cloned().unwrap_or_default();
    let release = |name: &str| -> &Value {
        releases.iter().find(|r| r["metadata"]["name"] == name).unwrap_or_else(|| {
            panic!("no HelmRelease {name}: {:?}", releases.iter().map(|r| &r["metadata"]["name"]).collect::<Vec<_>>())
        })
    };
    for r in &releases {
        assert!(flux_standin::is_ready(r), "HelmRelease {} not Ready: {}", r["metadata"]["name"], r["status"]);
    }
    for name in [
        "helix-system-cilium",
        "helix-system-metrics-server",
        "helix-system-reloader",
        "helix-system-system-upgrade-controller",
        "helix-data-openebs",
        "helix-data-mysql",
        "helix-data-redis",
        "helix-data-rabbitmq",
        "helix-data-kafka-operator",
        "helix-mesh-istio-base",
        "helix-mesh-falco",
        "helix-mesh-trivy-operator",
        "helix-mesh-chaos-mesh",
        "helix-network-cloudflared",
        "helix-network-external-dns",
        "helix-network-mimir",
        "ingress-controllers-ingress-nginx",
        "certificates-controllers-cert-manager",
        "backups-controllers-velero",
        "observability-kube-prometheus-stack",
        "observability-loki",
        "observability-promtail",
        "observability-tempo",
    ] {
        release(name);
    }
    assert_eq!(
        release("helix-mesh-istiod")["spec"]["dependsOn"],
        json!([{"name": "helix-mesh-istio-base", "namespace": "flux-system"}])
    );
    assert_eq!(release("helix-data-mysql")["spec"]["targetNamespace"], "data-plane");
    assert_eq!(release("helix-network-k8s-gateway")["spec"]["values"]["domain"], DOMAIN);
    assert_eq!(release("helix-system-cilium")["spec"]["values"]["cni"]["chainingMode"], "generic-veth");
    let grafana = &release("observability-kube-prometheus-stack")["spec"]["values"]["grafana"];
    assert_eq!(grafana["ingress"]["hosts"], json!([format!("grafana.{DOMAIN}")]), "{grafana}");
    // Grafana's password reaches the chart through a Secret, not the release.
    assert!(!releases.iter().any(|r| r.to_string().contains("grafana-s3cret-standin")), "a release holds the password");
    let values = live(&api, "/api/v1/namespaces/flux-system/secrets/observability.kube-prometheus-stack.helm-values");
    assert_eq!(values["data"]["grafana.adminPassword"], base64(b"grafana-s3cret-standin"));

    // The environments, each with the application's secrets decrypted from the SOPS file
    // inside the provider: in the cluster, never in the state.
    for environment in ["production", "staging", "testing"] {
        let namespace = live(&api, &format!("/api/v1/namespaces/{environment}"));
        assert!(namespace["metadata"]["annotations"][OWNER].is_string(), "{environment} has no owner id");
        let secret = live(&api, &format!("/api/v1/namespaces/{environment}/secrets/helix-secrets"));
        assert_eq!(secret["data"]["DATABASE_PASSWORD"], base64(b"db-s3cret-standin"), "{environment}");
        assert_eq!(secret["data"]["JWT_SECRET"], base64(b"jwt-s3cret-standin"), "{environment}");
    }
    let state = work.run(&["state", "pull"]).stdout;
    for secret in ["db-s3cret-standin", "jwt-s3cret-standin"] {
        assert!(!state.contains(secret) && !state.contains(&base64(secret.as_bytes())), "{secret} is in the state");
    }

    // cert-manager's DNS-01 issuer with the Cloudflare token beside it.
    let token = live(&api, "/api/v1/namespaces/cert-manager/secrets/certificates-cloudflare");
    assert_eq!(token["data"]["api-token"], base64(cloudflare.token().as_bytes()));
    let issuer = live(&api, "/apis/cert-manager.io/v1/clusterissuers/letsencrypt");
    let solver = &issuer["spec"]["acme"]["solvers"][0];
    assert_eq!(solver["dns01"]["cloudflare"]["apiTokenSecretRef"]["name"], "certificates-cloudflare");
    assert_eq!(solver["selector"]["dnsZones"], json!([DOMAIN]));

    // Velero's location, checked by the Velero stand-in against the bucket, and the schedule.
    let location = live(&api, &velero_path("velero", "backupstoragelocations", "default"));
    assert_eq!(location["status"]["phase"], "Available", "{}", location["status"]);
    assert_eq!(location["spec"]["objectStorage"]["bucket"], bucket);
    let schedule = live(&api, &velero_path("velero", "schedules", "nightly"));
    assert_eq!(schedule["spec"]["schedule"], "0 3 * * *");
    assert_eq!(schedule["spec"]["template"]["includedNamespaces"], json!(["production", "data-plane"]));

    // The public names, on Cloudflare.
    for name in [DOMAIN.to_string(), format!("grafana.{DOMAIN}"), format!("staging.{DOMAIN}")] {
        let mut contents: Vec<String> = cloudflare
            .records(DOMAIN, &name, "A")
            .iter()
            .filter_map(|r| r["content"].as_str().map(str::to_string))
            .collect();
        contents.sort();
        let mut expected = vec![address(3), address(4)];
        expected.sort();
        assert_eq!(contents, expected, "A records of {name}");
    }

    work.assert_plan_empty();

    // Destroy: the stacks, secrets, location and records first, then the cluster's nodes.
    work.destroy().assert_success();
    let state = work.run(&["state", "list"]);
    assert!(state.stdout.trim().is_empty(), "state after destroy:\n{}", state.stdout);
    let left: Vec<Value> = cloudflare.all_records(DOMAIN).into_iter().filter(|r| r["type"] == "A").collect();
    assert!(left.is_empty(), "records left on Cloudflare: {left:?}");
    for i in 0..hosts.len() {
        let host = hosts.host(i);
        assert_eq!(k3s.events_named(host, "uninstall").len(), 1, "{} not uninstalled", host.name());
        assert!(!host.root_dir().join("usr/local/bin/k3s").exists(), "k3s left on {}", host.name());
    }
    // The bucket is the user's: the location is gone, the bucket kept (a list of a missing
    // bucket panics).
    s3().list(&bucket, "");
    drop(standins);
    eprintln!("acceptance: k3s-ha-platform applied, checked and destroyed in {:.1?}", started.elapsed());
}
