//! Property tests: the response parsers and the signer's encoder never panic
//! on any input, and the encoder round-trips. (The files users write and the
//! API's error bodies: `fuzz.rs`.)

mod common;

use cloud_assistant_exporter::api::{
    activations, cloud_assistant, instance_status, instances, managed_instances, plugins, regions,
    tag_label_name,
};
use cloud_assistant_exporter::client::decode_response;
use cloud_assistant_exporter::clock::{format_iso8601, parse_iso8601};
use cloud_assistant_exporter::signer::{canonical_query, percent_encode};
use cloud_assistant_exporter::simulator::http::parse_form;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Arbitrary JSON, biased towards the keys the parsers look for.
fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("InstanceId".to_string()),
        Just("CloudAssistantStatus".to_string()),
        Just("CloudAssitantStatus".to_string()),
        Just("InstanceCloudAssistantStatusSet".to_string()),
        Just("InstanceCloudAssistantStatus".to_string()),
        Just("InstanceCloudAssitantStatus".to_string()),
        Just("InstanceStatuses".to_string()),
        Just("InstanceStatus".to_string()),
        Just("Status".to_string()),
        Just("TotalCount".to_string()),
        Just("NextToken".to_string()),
        Just("LastHeartbeatTime".to_string()),
        Just("ActiveTaskCount".to_string()),
        Just("InstancePluginStatusSet".to_string()),
        Just("InstancePluginStatus".to_string()),
        Just("PluginStatusSet".to_string()),
        Just("PluginStatus".to_string()),
        Just("PluginName".to_string()),
        Just("Regions".to_string()),
        Just("Region".to_string()),
        Just("RegionId".to_string()),
        Just("Instances".to_string()),
        Just("Instance".to_string()),
        Just("Tags".to_string()),
        Just("Tag".to_string()),
        Just("TagKey".to_string()),
        Just("TagValue".to_string()),
        Just("Connected".to_string()),
        Just("InvocationCount".to_string()),
        Just("RegistrationTime".to_string()),
        Just("ActivationList".to_string()),
        Just("ActivationId".to_string()),
        Just("InstanceCount".to_string()),
        Just("Disabled".to_string()),
        Just("CreationTime".to_string()),
        Just("TimeToLiveInHours".to_string()),
        "[A-Za-z]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null)),
        ".{0,24}".prop_map(Value::String),
        Just(json!("2021-01-20T09:00Z")),
        Just(json!("True")),
        Just(json!("17")),
    ];
    leaf.prop_recursive(4, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((keys.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// [`inventory_parsers`] of a JSON tree.
fn inventory_parsers_json(v: &Value) {
    inventory_parsers(&serde_json::to_vec(v).expect("JSON"))
}

/// The three inventory parsers; any error is a message, never a panic.
fn inventory_parsers(v: &[u8]) {
    let _ = instances::parse_page(v);
    let _ = managed_instances::parse_page(v);
    if let Ok(codes) = activations::parse_page(v) {
        for c in codes {
            let _ = c.expires_at();
        }
    }
}

proptest! {
    #![proptest_config(common::proptest_config(512))]

    #[test]
    fn parsers_never_panic(v in json_value()) {
        let body = serde_json::to_vec(&v).expect("JSON");
        let _ = cloud_assistant::parse_page(&body);
        let _ = instance_status::parse_page(&body);
        let _ = plugins::parse_page(&body);
        let _ = regions::parse(&body);
        inventory_parsers(&body);
        // Wrapped in each set name, so the item parsers see the values too.
        for outer in ["InstanceCloudAssistantStatusSet", "InstanceStatuses", "InstancePluginStatusSet", "Regions", "Instances", "ActivationList"] {
            let wrapped = serde_json::to_vec(&json!({ outer: v.clone() })).expect("JSON");
            let _ = cloud_assistant::parse_page(&wrapped);
            let _ = instance_status::parse_page(&wrapped);
            let _ = plugins::parse_page(&wrapped);
            let _ = regions::parse(&wrapped);
            inventory_parsers(&wrapped);
        }
    }

    #[test]
    fn inventory_items_with_garbage_fields_never_panic(item in json_value(), tags in json_value()) {
        // A well-formed page around garbage items and garbage tags.
        for id in ["InstanceId", "ActivationId"] {
            let mut item = item.clone();
            if let Value::Object(m) = &mut item {
                m.insert(id.into(), json!("x-1"));
                m.insert("Connected".into(), json!(true));
                m.insert("Tags".into(), tags.clone());
            }
            for list in ["Instances", "ActivationList"] {
                inventory_parsers_json(&json!({ list: [item.clone()] }));
                inventory_parsers_json(&json!({ list: { "Instance": [item.clone()] } }));
            }
        }
    }

    #[test]
    fn inventory_parsers_take_any_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(answer) = decode_response("A", "r", 200, &body) {
            inventory_parsers(answer.body());
        }
    }

    #[test]
    fn any_tag_key_becomes_a_valid_label_name(key in any::<String>()) {
        let name = tag_label_name(&key);
        prop_assert!(name.starts_with("tag_"));
        prop_assert!(name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'), "{}", name);
    }

    #[test]
    fn decoding_any_body_never_panics(status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..512)) {
        match decode_response("A", "r", status, &body) {
            Ok(v) => prop_assert!(v.json().is_ok_and(|j| j.is_object()) && (200..300).contains(&status)),
            Err(e) => prop_assert!(e.to_string().starts_with("A in r:")),
        }
    }

    #[test]
    fn parsing_any_time_never_panics(s in ".{0,40}") {
        let _ = parse_iso8601(&s);
    }

    #[test]
    fn times_round_trip(t in -2_000_000_000i64..8_000_000_000) {
        prop_assert_eq!(parse_iso8601(&format_iso8601(t)), Some(t));
    }

    #[test]
    fn encoding_is_unreserved_or_percent_and_round_trips(s in any::<String>()) {
        let e = percent_encode(&s);
        let mut bytes = e.bytes();
        while let Some(b) = bytes.next() {
            if b == b'%' {
                let h = [bytes.next(), bytes.next()];
                prop_assert!(h.iter().all(|c| c.is_some_and(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(&c))));
            } else {
                prop_assert!(b.is_ascii_alphanumeric() || b"-_.~".contains(&b), "{} in {}", b as char, e);
            }
        }
        let q = canonical_query(&[("k".to_string(), s.clone())]);
        prop_assert_eq!(parse_form(&q), vec![("k".to_string(), s)]);
    }
}
