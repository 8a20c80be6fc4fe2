use super::*;

fn state(records: &[&str], ttl: Option<i64>) -> Value {
    let mut state = Value::null_object(&DnsRecordResource::new(Arc::default()).schema().implied_type());
    state.set_attr("zone", Value::from("home.example.com"));
    state.set_attr("name", Value::from("grafana"));
    state.set_attr("type", Value::from("AAAA"));
    state.set_attr("records", Value::Set(records.iter().map(|r| Value::from(*r)).collect()));
    if let Some(ttl) = ttl {
        state.set_attr("ttl", Value::number(ttl));
    }
    state
}

#[test]
fn a_read_keeps_the_spelling_the_user_wrote() {
    let prior = state(&["2001:DB8:0::1", "2001:db8::2"], Some(300));
    let id = address_of(&prior).unwrap();
    let live = Rrset::new(300, vec!["2001:db8::2".into(), "2001:db8::1".into()]);
    let next = record_state(prior.clone(), &id, &live);
    assert_eq!(next.get_attr("records"), prior.get_attr("records"));
    assert_eq!(next.get_attr("id").and_then(Value::as_str), Some("home.example.com/grafana/AAAA"));
    assert_eq!(next.get_attr("fqdn").and_then(Value::as_str), Some("grafana.home.example.com."));
}

#[test]
fn a_read_shows_drift_in_records_and_ttl() {
    let prior = state(&["2001:db8::1"], Some(300));
    let id = address_of(&prior).unwrap();
    let live = Rrset::new(60, vec!["2001:db8::9".into()]);
    let next = record_state(prior, &id, &live);
    assert_eq!(next.get_attr("records"), Some(&Value::Set(vec![Value::from("2001:db8::9")])));
    assert_eq!(next.get_attr("ttl").and_then(Value::as_i64), Some(60));
}

#[test]
fn adopted_sets_are_released_unless_told_to_delete() {
    let mut s = state(&["2001:db8::1"], None);
    assert_eq!(ownership::on_destroy(&s), OnDestroy::Delete);
    s.set_attr("adopted", Value::Bool(true));
    assert_eq!(ownership::on_destroy(&s), OnDestroy::Release);
    s.set_attr("on_destroy", Value::from("delete"));
    assert_eq!(ownership::on_destroy(&s), OnDestroy::Delete);
    assert_eq!(held(&s, &address_of(&s).unwrap()).unwrap().ttl, config::DEFAULT_TTL);
}
