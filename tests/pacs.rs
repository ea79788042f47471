//! An exam on its way to the hospital, against real servers on loopback:
//! Debian's Orthanc as the PACS (checked through its REST API) and an HL7
//! MLLP receiver. The faults a field hospital's link brings: a PACS that is
//! down and comes up later, a send killed midway, an association refused,
//! an HL7 NAK; each time the job is kept, retried with backoff, and
//! delivered exactly once.

mod common;

#[path = "common/hospital.rs"]
#[allow(dead_code)]
mod fixtures;

use common::{pleura, succeed};
use fixtures::{Hl7Receiver, Orthanc, Zone, board_in, clip, free_port, scheduled};
use pleura::board::BoardProfile;
use pleura::hospital::Station;
use pleura::hospital::net::{self, Link};
use pleura::hospital::outbox::{Destination, JobState, Outbox, Sender};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A finished BLUE exam of a scheduled patient with two zones and their
/// clips of `frames` frames of 320×240: four objects in all.
fn finished_exam(dir: &Path, frames: usize) -> PathBuf {
    exam_of_zones(dir, 2, frames)
}

/// A finished 12-zone exam with `zones` zones recorded, each with a clip of
/// `frames` frames of 320×240: `zones + 2` objects.
fn exam_of_zones(dir: &Path, zones: u8, frames: usize) -> PathBuf {
    let protocol = if zones <= 2 {
        pleura::exam::Protocol::Blue6
    } else {
        pleura::exam::Protocol::Zones12
    };
    let zones = (0..zones)
        .map(|score| Zone {
            score: score % 4,
            findings: None,
            clip: Some(clip(frames, 320, 240)),
        })
        .collect();
    let identity = scheduled("MRN-777", "ACC-7", "1.2.826.0.1.3680043.10.543.7");
    fixtures::finished_exam(dir, protocol, identity, zones)
}

fn send(boards: &Path, journal: &Path, to: &[&str]) -> std::process::Output {
    pleura()
        .arg("--boards")
        .arg(boards)
        .args(["--board", "x86_64-dev", "send"])
        .arg(journal)
        .args(to)
        .output()
        .unwrap()
}

fn sender(board: &BoardProfile) -> Sender {
    let mut sender = Sender::for_board(board, Station::for_board(board, None, &board.model));
    sender.timeout = Duration::from_secs(5);
    sender
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn an_exam_is_stored_on_orthanc_once_even_when_sent_twice() {
    let orthanc = Orthanc::start();
    net::echo("PLEURA", &orthanc.peer(), net::TIMEOUT, &Link::default()).expect("C-ECHO");
    let dir = tempfile::tempdir().unwrap();
    let (boards, _) = board_in(dir.path());
    let journal = finished_exam(dir.path(), 4);
    for _ in 0..2 {
        let sent = succeed(
            pleura()
                .arg("--boards")
                .arg(&boards)
                .args(["--board", "x86_64-dev", "send"])
                .arg(&journal)
                .arg("--pacs")
                .arg(orthanc.peer().to_string()),
        );
        let stdout = String::from_utf8_lossy(&sent.stdout);
        assert_eq!(
            stdout.matches(" stored (pacs:ORTHANC@").count(),
            4,
            "{stdout}"
        );
    }
    assert_eq!(
        orthanc.instances(),
        4,
        "two clips, the summary and the report, once"
    );
    for id in orthanc.get("/instances").as_array().unwrap() {
        let tags = orthanc.get(&format!(
            "/instances/{}/simplified-tags",
            id.as_str().unwrap()
        ));
        assert_eq!(tags["PatientID"], "MRN-777", "{tags}");
        assert_eq!(tags["AccessionNumber"], "ACC-7", "{tags}");
        assert_eq!(tags["StudyInstanceUID"], "1.2.826.0.1.3680043.10.543.7");
    }
    assert_eq!(orthanc.get("/studies").as_array().map(Vec::len), Some(1));
}

#[test]
fn a_pacs_that_is_down_keeps_the_exam_queued_until_it_comes_up() {
    let dir = tempfile::tempdir().unwrap();
    let (boards, board) = board_in(dir.path());
    let journal = finished_exam(dir.path(), 4);
    let port = free_port();
    let peer = format!("ORTHANC@127.0.0.1:{port}");
    let error = net::echo(
        "PLEURA",
        &peer.parse().unwrap(),
        Duration::from_secs(5),
        &Link::default(),
    )
    .unwrap_err();
    assert!(error.to_string().contains(&peer), "{error}");

    let output = send(&boards, &journal, &["--pacs", &peer]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("stays in the outbox") && stderr.contains("tries again with backoff"),
        "{stderr}"
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&peer) && stdout.contains("no association"),
        "{stdout}"
    );

    let outbox = Outbox::for_board(&board);
    let jobs = outbox.jobs().unwrap();
    assert_eq!(jobs.len(), 1);
    let job = jobs[0].1.as_ref().unwrap();
    assert_eq!(job.state(), JobState::Failed);
    assert_eq!(job.attempts, 1);
    assert!(
        (5..=7).contains(&(job.next_try_at - job.queued_at)),
        "backoff: {job:?}"
    );
    let listed =
        succeed(
            pleura()
                .arg("--boards")
                .arg(&boards)
                .args(["--board", "x86_64-dev", "outbox"]),
        );
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("ACC-7") && listed.contains("failed 1 times"),
        "{listed}"
    );

    // Not due yet: nothing is tried.
    let before_due = job.next_try_at - 1;
    assert!(
        outbox
            .deliver_due(&sender(&board), before_due, None)
            .is_empty()
    );
    let orthanc = Orthanc::start_on(port);
    let deliveries = outbox.deliver_due(&sender(&board), now() + 600, None);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].error, None, "{:?}", deliveries[0].results);
    assert_eq!(orthanc.instances(), 4);
    let job = outbox.jobs().unwrap().remove(0).1.unwrap();
    assert_eq!((job.state(), job.attempts), (JobState::Sent, 2));
    assert!(
        outbox
            .deliver_due(&sender(&board), now() + 6000, None)
            .is_empty()
    );
    assert_eq!(orthanc.instances(), 4, "nothing sent twice");
}

#[test]
fn a_send_killed_midway_resumes_and_stores_every_object_once() {
    let orthanc = Orthanc::start();
    let dir = tempfile::tempdir().unwrap();
    let (boards, board) = board_in(dir.path());
    // Twelve clips and the summary and report, 14 objects, through a link
    // that holds each answer of the PACS for a quarter second: the send is
    // killed between objects.
    let journal = exam_of_zones(dir.path(), 12, 4);
    let relay = fixtures::slow_relay(orthanc.dicom, Duration::from_millis(250));
    let mut child = pleura()
        .arg("--boards")
        .arg(&boards)
        .args(["--board", "x86_64-dev", "send"])
        .arg(&journal)
        .arg("--pacs")
        .arg(format!("ORTHANC@127.0.0.1:{relay}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let outbox = Outbox::for_board(&board);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let delivered = outbox
            .jobs()
            .unwrap()
            .first()
            .and_then(|(_, job)| job.as_ref().ok().map(|j| j.delivered.len()))
            .unwrap_or(0);
        if delivered >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the send never stored an object");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the send ended too soon"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let job = outbox.jobs().unwrap().remove(0).1.unwrap();
    assert!(job.sent_at.is_none() && job.delivered.len() < 14, "{job:?}");
    let before = job.delivered.len();

    // The restarted sender sends what was not noted as stored. The object
    // in flight when the send was killed may reach the PACS a second time,
    // as the same instance: the PACS keeps one.
    let deliveries = outbox.deliver_due(&sender(&board), now(), None);
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].error, None);
    assert_eq!(
        deliveries[0].results.len(),
        14 - before,
        "only what the killed send had not stored is sent again"
    );
    assert_eq!(orthanc.instances(), 14);
    let job = outbox.jobs().unwrap().remove(0).1.unwrap();
    let mut uids = job.delivered.clone();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 14, "each object noted once: {job:?}");
}

#[test]
fn a_refused_association_is_an_error_and_the_job_waits_longer_each_time() {
    let orthanc = Orthanc::start();
    let dir = tempfile::tempdir().unwrap();
    let (_, board) = board_in(dir.path());
    let journal = finished_exam(dir.path(), 4);
    let mut wrong = orthanc.peer();
    wrong.ae_title = "NOT-ORTHANC".into();
    let error = net::echo("PLEURA", &wrong, net::TIMEOUT, &Link::default()).unwrap_err();
    assert!(
        matches!(error, net::NetError::Association { .. }),
        "{error}"
    );

    let outbox = Outbox::for_board(&board);
    let exam = pleura::exam::Journal::read(&journal).unwrap().unwrap();
    outbox
        .queue(&journal, &exam, &[Destination::Pacs(wrong)], now())
        .unwrap();
    let mut waits = Vec::new();
    let mut clock = now();
    for _ in 0..3 {
        let delivery = outbox.deliver_due(&sender(&board), clock, None).remove(0);
        let error = delivery.error.expect("refused");
        assert!(error.contains("NOT-ORTHANC@127.0.0.1"), "{error}");
        waits.push(delivery.job.next_try_at - clock);
        clock = delivery.job.next_try_at;
    }
    assert_eq!(waits, [5, 10, 20]);
    assert_eq!(orthanc.instances(), 0);
    assert_eq!(outbox.jobs().unwrap().len(), 1, "the job is kept");
}

#[test]
fn an_hl7_error_or_reject_is_reported_with_its_reason_and_the_message_is_sent_again_unchanged() {
    let receiver = Hl7Receiver::start(&["AE", "AR", "AA"]);
    let dir = tempfile::tempdir().unwrap();
    let (boards, board) = board_in(dir.path());
    let journal = finished_exam(dir.path(), 4);
    let output = send(
        &boards,
        &journal,
        &["--hl7", &format!("127.0.0.1:{}", receiver.port)],
    );
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("answered AE") && stdout.contains("unknown patient in the record"),
        "{stdout}"
    );
    let outbox = Outbox::for_board(&board);
    let rejected = outbox.deliver_due(&sender(&board), now() + 600, None);
    let error = rejected[0].error.as_deref().unwrap_or("");
    assert!(error.contains("answered AR"), "{error}");
    let deliveries = outbox.deliver_due(&sender(&board), now() + 6000, None);
    assert_eq!(deliveries[0].error, None);
    let messages = receiver.messages();
    assert_eq!(messages.len(), 3);
    assert!(
        messages.iter().all(|m| *m == messages[0]),
        "the same message, the same MSH-10, each time"
    );
    let segments: Vec<&str> = messages[0].split('\r').filter(|s| !s.is_empty()).collect();
    assert!(segments[0].starts_with("MSH|^~\\&|PLEURA|PLEURA|"));
    assert!(segments[1].starts_with("PID|1||MRN-777^^^^MR||DOE^JANE"));
    assert_eq!(segments.iter().filter(|s| s.starts_with("OBX|")).count(), 3);
}

#[test]
fn the_worklist_lists_todays_ultrasound_exams_for_this_station_only() {
    let today = pleura::hospital::worklist::today();
    let entries = [
        fixtures::worklist_entry("ROE^RICHARD", "MRN-1", "ACC-1", "1.2.3.1", "PLEURA", &today),
        fixtures::worklist_entry("POE^PAT", "MRN-2", "ACC-2", "1.2.3.2", "PLEURA", &today),
        fixtures::worklist_entry("OTHER^STATION", "MRN-3", "ACC-3", "1.2.3.3", "CT-1", &today),
        fixtures::worklist_entry(
            "NOT^TODAY",
            "MRN-4",
            "ACC-4",
            "1.2.3.4",
            "PLEURA",
            "20200101",
        ),
    ];
    let orthanc = Orthanc::start_with(free_port(), &entries);
    let mut found = pleura::hospital::worklist::query(
        "PLEURA",
        &orthanc.peer(),
        &today,
        net::TIMEOUT,
        &Link::default(),
    )
    .expect("C-FIND");
    found.sort_by(|a, b| a.accession.cmp(&b.accession));
    let summary: Vec<(&str, &str, &str)> = found
        .iter()
        .map(|s| {
            (
                s.patient.name.as_str(),
                s.accession.as_str(),
                s.study_uid.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("ROE^RICHARD", "ACC-1", "1.2.3.1"),
            ("POE^PAT", "ACC-2", "1.2.3.2")
        ]
    );
    assert_eq!(found[0].patient.birth_date.as_deref(), Some("19800214"));
    assert_eq!(found[0].patient.sex.as_deref(), Some("M"));
    assert_eq!(found[0].description, "Lung ultrasound, 12 zones");
}

#[test]
fn a_pacs_that_answers_a_failure_status_keeps_the_job_with_the_status_named() {
    // Out of resources (A700H): the PACS's disk is full.
    let full = fixtures::failing_store_scp(0xA700);
    let dir = tempfile::tempdir().unwrap();
    let (boards, board) = board_in(dir.path());
    let journal = finished_exam(dir.path(), 4);
    let output = send(&boards, &journal, &["--pacs", &full.to_string()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert_eq!(
        stdout
            .matches("not stored, status A700H (will retry) (pacs:")
            .count(),
        4,
        "each object's status: {stdout}"
    );
    let job = Outbox::for_board(&board)
        .jobs()
        .unwrap()
        .remove(0)
        .1
        .unwrap();
    assert_eq!(job.state(), JobState::Failed);
    assert!(job.delivered.is_empty());
    assert!(
        job.last_error.as_deref().unwrap_or("").contains("A700H"),
        "{job:?}"
    );
    assert!(
        (5..=6).contains(&(job.next_try_at - job.queued_at)),
        "retried with backoff: {job:?}"
    );
}

#[test]
fn dicom_over_tls_reaches_an_orthanc_that_takes_only_tls_and_a_plain_association_does_not() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::test_certificates(dir.path());
    let orthanc = Orthanc::start_tls(dir.path());
    let (ca, cert, key) = (
        dir.path().join("ca.crt"),
        dir.path().join("server.crt"),
        dir.path().join("server.key"),
    );
    let tls = Link::tls(&ca, Some((&cert, &key))).expect("TLS settings");
    net::echo("PLEURA", &orthanc.peer(), net::TIMEOUT, &tls).expect("C-ECHO over TLS");
    let plain = net::echo(
        "PLEURA",
        &orthanc.peer(),
        Duration::from_secs(5),
        &Link::default(),
    );
    assert!(plain.is_err(), "a plain association to a TLS port");
    let no_client_certificate = Link::tls(&ca, None).unwrap();
    assert!(
        net::echo(
            "PLEURA",
            &orthanc.peer(),
            Duration::from_secs(5),
            &no_client_certificate
        )
        .is_err(),
        "Orthanc requires this unit's certificate"
    );

    let (boards, _) = board_in(dir.path());
    let journal = finished_exam(dir.path(), 4);
    let to = orthanc.peer().to_string();
    let sent = send(
        &boards,
        &journal,
        &[
            "--pacs",
            &to,
            "--tls-ca",
            &ca.to_string_lossy(),
            "--tls-certificate",
            &cert.to_string_lossy(),
            "--tls-key",
            &key.to_string_lossy(),
        ],
    );
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert_eq!(orthanc.instances(), 4);

    let bad = dir.path().join("not-a-certificate.pem");
    std::fs::write(&bad, "hello").unwrap();
    let error = Link::tls(&bad, None).unwrap_err().to_string();
    assert!(
        error.contains("not-a-certificate.pem") && error.contains("no PEM certificate"),
        "{error}"
    );
}
