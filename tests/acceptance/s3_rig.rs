//! Self-test of the backup tests' S3 rig (`harness::s3`): SeaweedFS stores, lists and returns
//! objects through the harness's own SigV4 client, refuses requests signed with a wrong
//! secret or an unknown access key, and holds a real restic repository.

use crate::harness::s3::s3;
use crate::harness::unique_name;

#[test]
fn s3_rig_put_list_get_and_refuse_wrong_key() {
    let s3 = s3();
    assert!(s3.endpoint().starts_with("http://127.0.0.1:"), "endpoint {}", s3.endpoint());
    assert_eq!(s3.region(), "us-east-1");
    let bucket = unique_name("rig-objects");
    s3.create_bucket(&bucket);
    s3.create_bucket(&bucket); // idempotent

    let objects: [(&str, &[u8]); 3] = [
        ("backups/one.json", b"{\"n\":1}"),
        ("backups/nested/two.tar.gz", &[0u8, 159, 146, 150, 255]),
        ("backups/with space+plus.txt", b"three"),
    ];
    for (key, body) in objects {
        s3.put(&bucket, key, body);
    }
    s3.put(&bucket, "elsewhere/four.txt", b"not under the prefix");

    let mut listed = s3.list(&bucket, "backups/");
    listed.sort();
    let mut expected: Vec<String> = objects.iter().map(|(k, _)| k.to_string()).collect();
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(s3.list(&bucket, "").len(), 4);
    assert!(s3.list(&bucket, "nothing/").is_empty());

    assert_eq!(s3.get(&bucket, "backups/nested/two.tar.gz").as_deref(), Some(&[0u8, 159, 146, 150, 255][..]));
    assert_eq!(s3.get(&bucket, "backups/with space+plus.txt").as_deref(), Some(&b"three"[..]));
    assert_eq!(s3.get(&bucket, "backups/missing"), None);

    // A wrong secret for the real access key, and an access key the server does not know:
    // refused for a read and for a write, and the write leaves nothing behind.
    let wrong_secret = format!("{}x", &s3.secret_key()[1..]);
    let list_query = [("list-type", "2"), ("prefix", "backups/")];
    for (access_key, secret_key, code) in [
        (s3.access_key(), wrong_secret.as_str(), "SignatureDoesNotMatch"),
        ("TFACCUNKNOWNKEY00000", s3.secret_key(), "InvalidAccessKeyId"),
    ] {
        let resp = s3.request_as(access_key, secret_key, "GET", &format!("/{bucket}"), &list_query, b"");
        assert_eq!(resp.status, 403, "a list signed with a wrong key was not refused: {}", resp.text());
        assert_eq!(resp.error_code().as_deref(), Some(code), "{}", resp.text());

        let resp = s3.request_as(access_key, secret_key, "PUT", &format!("/{bucket}/backups/intruder"), &[], b"x");
        assert_eq!(resp.status, 403, "a put signed with a wrong key was not refused: {}", resp.text());
        assert_eq!(resp.error_code().as_deref(), Some(code), "{}", resp.text());
    }
    assert_eq!(s3.get(&bucket, "backups/intruder"), None);

    s3.delete(&bucket, "elsewhere/four.txt");
    assert_eq!(s3.get(&bucket, "elsewhere/four.txt"), None);
    s3.assert_alive();
}

#[test]
fn s3_rig_restic_backup_and_snapshots() {
    let s3 = s3();
    let bucket = unique_name("rig-restic");
    s3.create_bucket(&bucket);
    let password = "correct horse battery staple";

    s3.restic(&bucket, "cluster-a/pvc-data", password, &["init"]).assert_success();
    assert!(s3.get(&bucket, "cluster-a/pvc-data/config").is_some(), "restic init wrote no config object");

    let src = tempfile::tempdir().expect("temp dir");
    std::fs::write(src.path().join("payload.txt"), "volume contents\n").expect("write payload");
    let src_path = src.path().to_str().expect("UTF-8 temp path");
    s3.restic(&bucket, "cluster-a/pvc-data", password, &["backup", "--host", "tf-acc", src_path]).assert_success();

    let snapshots =
        s3.restic(&bucket, "cluster-a/pvc-data", password, &["snapshots", "--json"]).assert_success().json();
    let snapshots = snapshots.as_array().expect("snapshots --json prints an array");
    assert_eq!(snapshots.len(), 1, "{snapshots:?}");
    assert_eq!(snapshots[0]["hostname"], "tf-acc");
    assert_eq!(snapshots[0]["paths"], serde_json::json!([src_path]));

    // What restic stored is really in the bucket, and comes back.
    let keys = s3.list(&bucket, "cluster-a/pvc-data/");
    for dir in ["keys/", "snapshots/", "data/", "index/"] {
        assert!(
            keys.iter().any(|k| k.starts_with(&format!("cluster-a/pvc-data/{dir}"))),
            "no object under {dir} in {keys:?}"
        );
    }
    let file = format!("{src_path}/payload.txt");
    let dumped =
        s3.restic(&bucket, "cluster-a/pvc-data", password, &["dump", "latest", &file]).assert_success().stdout.clone();
    assert_eq!(dumped, "volume contents\n");

    s3.restic(&bucket, "cluster-a/pvc-data", "not the password", &["snapshots", "--json"])
        .assert_failure_contains("wrong password");
    s3.assert_alive();
}
