//! Clients for the systems the provider manages. Nothing here knows about Terraform:
//! these modules speak Kubernetes (and DNS, SOPS, sealing, HTTP downloads) and report plain errors.

pub mod deadline;
pub mod dns;
pub mod http;
pub mod keyed;
pub mod kube;
pub mod s3;
pub mod sealing;
pub mod sops;
pub mod ssh;

/// An error with its causes, for messages (`a: b: c`), skipping causes already quoted.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
