//! The pieces of a page: chunks reused and fresh, released rows' pieces
//! kept, and the page they make read back by a CRC-checking gzip reader.

use super::*;
use crate::api::{AgentStatus, InstanceStatus};
use crate::snapshot::RegionData;
use std::io::Read;
use std::sync::Arc;

fn region(ids: impl Iterator<Item = u32>, heartbeat: i64) -> RegionState {
    let ids: Vec<u32> = ids.collect();
    let agents = ids
        .iter()
        .map(|i| AgentStatus {
            instance_id: format!("i-{i:06}").into(),
            up: i % 7 != 0,
            version: Some("2.2.3.344".into()),
            os_type: Some("Linux".into()),
            session_manager: Some(true),
            active_tasks: Some(0),
            invocations: Some(u64::from(*i)),
            last_invoked: None,
            last_heartbeat: Some(heartbeat),
        })
        .collect();
    let instances = ids
        .iter()
        .map(|i| InstanceStatus {
            instance_id: format!("i-{i:06}").into(),
            status: "Running".into(),
        })
        .collect();
    RegionState {
        data: Some(Arc::new(RegionData {
            agents,
            instances,
            plugins: Vec::new(),
            collected_at: heartbeat + 30,
        })),
        up: true,
        last_success: Some(heartbeat + 30),
        ..RegionState::default()
    }
}

/// The page as one gzip member, read by a decoder that checks the
/// CRC-32 and the length of the trailer.
fn gunzip(page: &super::super::Page, own: &[u8]) -> Vec<u8> {
    let gz = page.member(own).expect("member");
    let mut dec = flate2::bufread::GzDecoder::new(&gz[..]);
    let mut out = Vec::new();
    dec.read_to_end(&mut out).expect("one valid gzip member");
    assert!(dec.into_inner().is_empty(), "nothing after the member");
    out
}

/// A region's pieces as the collector renders them (no tag labels, every
/// state series), from `previous` where the text is the same.
fn pieces_of(
    key: &RegionKey,
    state: &RegionState,
    previous: Option<&RegionPieces>,
    d: &mut Deflater,
) -> RegionPieces {
    let tags: Arc<[String]> = Arc::new([]);
    render_region(key, state, &tags, StateSets::All, previous, d).expect("render_region")
}

#[test]
fn a_page_of_reused_and_fresh_pieces_is_one_valid_member_equal_to_a_fresh_render() {
    let (a, b) = (RegionKey::new("", "a"), RegionKey::new("", "b"));
    let mut d = Deflater::new();
    let first_a = pieces_of(&a, &region(0..3000, 1000), None, &mut d);
    // The next walk of a: one instance more at the start, the heartbeats
    // moved on (those families change whole; the others mostly not).
    let next = region(std::iter::once(0).chain(1..3001).map(|i| i + 5), 1060);
    let second_a = pieces_of(&a, &next, Some(&first_a), &mut d);
    assert!(second_a.reused > 0 && second_a.fresh > 0, "{second_a:?}");
    let region_b = region(0..10, 900);
    let pieces_b = pieces_of(&b, &region_b, None, &mut d);
    let snap = FleetSnapshot {
        cycles: 3,
        interval: 60.0,
        ..FleetSnapshot::default()
    };
    let page = assemble([&second_a, &pieces_b].into_iter(), &snap, StateSets::All).expect("page");
    let own = b"# TYPE own_total counter\nown_total 7\n";
    let got = gunzip(&page, own);
    // The same page rendered from nothing, at once.
    let mut whole = snap.clone();
    whole.regions.insert(a.clone(), next);
    whole.regions.insert(b.clone(), region_b);
    let fresh = super::super::render(&whole, StateSets::All).expect("render");
    let want = [&fresh.plain().expect("plain")[..], own].concat();
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );
    assert_eq!(page.plain_len + own.len(), got.len());
    let chunks = second_a.fresh + second_a.reused + pieces_b.fresh;
    assert!(chunks > 20, "many chunks: {chunks}");
    assert!(page.parts.len() < chunks, "small chunks are joined");
}

#[test]
fn chunks_keep_their_bytes_when_an_instance_comes_before_them() {
    let key = RegionKey::new("", "a");
    let mut d = Deflater::new();
    let first = pieces_of(&key, &region(10..20_010, 1000), None, &mut d);
    // Same heartbeats; one instance in front of all the others.
    let second = pieces_of(
        &key,
        &region((0..1).chain(10..20_010), 1000),
        Some(&first),
        &mut d,
    );
    let total = second.reused + second.fresh;
    assert!(
        second.reused * 10 >= total * 8,
        "most chunks reused: {} of {total}",
        second.reused
    );
    // Nothing changed at all: nothing is compressed again.
    let third = pieces_of(
        &key,
        &region((0..1).chain(10..20_010), 1000),
        Some(&second),
        &mut d,
    );
    assert_eq!(third.fresh, 0, "{third:?}");
}

#[test]
fn released_rows_keep_their_pieces_and_the_page_stays_the_same() {
    use crate::api::{InstanceInfo, Tags};
    use crate::snapshot::Source;
    let key = RegionKey::new("", "a");
    let mut with_info = region(0..500, 1000);
    with_info.info = Some(Arc::new(
        (0..500)
            .map(|i| InstanceInfo {
                instance_id: format!("i-{i:06}").into(),
                name: Some(format!("web-{i}").into()),
                zone_id: Some("cn-a-1".into()),
                instance_type: Some("ecs.g7.large".into()),
                os_type: Some("linux".into()),
                tags: Tags::default(),
            })
            .collect(),
    ));
    let mut d = Deflater::new();
    let first = pieces_of(&key, &with_info, None, &mut d);
    // The rows let go after that render; the region walked again since.
    let mut released = region(0..500, 1060);
    released.rendered.insert(Source::Info);
    let second = pieces_of(&key, &released, Some(&first), &mut d);
    let snap = FleetSnapshot::default();
    let page = assemble(std::iter::once(&second), &snap, StateSets::All).expect("page");
    let got = String::from_utf8(gunzip(&page, b"")).expect("utf8");
    let mut whole = snap.clone();
    let mut fresh_state = region(0..500, 1060);
    fresh_state.info = with_info.info.clone();
    whole.regions.insert(key.clone(), fresh_state);
    let want = super::super::render(&whole, StateSets::All).expect("render");
    assert_eq!(
        got,
        String::from_utf8(want.plain().expect("plain")).expect("utf8")
    );
    assert!(
        got.contains("instance_name=\"web-499\""),
        "info series kept"
    );
    // Without the mark, the same state renders no info series.
    released.rendered = Default::default();
    let third = pieces_of(&key, &released, Some(&second), &mut d);
    let page = assemble(std::iter::once(&third), &snap, StateSets::All).expect("page");
    let got = String::from_utf8(gunzip(&page, b"")).expect("utf8");
    assert!(!got.contains("instance_info"), "{got}");
}

#[test]
fn an_optional_family_is_declared_only_with_series() {
    let snap = FleetSnapshot::default();
    let page = assemble(std::iter::empty(), &snap, StateSets::All).expect("page");
    let text = String::from_utf8(gunzip(&page, b"")).expect("utf8");
    assert!(text.contains("# TYPE aliyun_cloud_assistant_agent_up gauge\n"));
    assert!(!text.contains("instance_info"), "{text}");
}
