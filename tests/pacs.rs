//! An exam stored on a real PACS: Debian's Orthanc, started on free
//! loopback ports with a temporary configuration (no authentication,
//! every store allowed), checked through its REST API. Also: the PACS
//! that is down, named in the error.

mod common;

use common::{pleura, succeed};
use pleura::exam::{
    Command, ExamIdentity, Journal, Patient, Protocol, ZoneClip, ZoneClips, ZoneScore,
};
use pleura::hospital::net;
use pleura::spec::AeAddress;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// An Orthanc server, stopped when dropped.
struct Orthanc {
    child: Child,
    http: u16,
    dicom: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Orthanc {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (http, dicom) = (free_port(), free_port());
        let config = dir.path().join("orthanc.json");
        let storage = dir.path().join("db");
        std::fs::write(
            &config,
            serde_json::json!({
                "Name": "PleuraTest",
                "StorageDirectory": storage,
                "IndexDirectory": storage,
                "HttpPort": http,
                "DicomPort": dicom,
                "DicomAet": "ORTHANC",
                "RemoteAccessAllowed": false,
                "AuthenticationEnabled": false,
                "DicomAlwaysAllowStore": true,
                "DicomAlwaysAllowEcho": true,
                "DicomCheckCalledAet": true,
                "Plugins": [],
            })
            .to_string(),
        )
        .unwrap();
        let child = std::process::Command::new("Orthanc")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Orthanc starts: install Debian's orthanc (scripts/setup does)");
        let orthanc = Self {
            child,
            http,
            dicom,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while orthanc.try_get("/system").is_none() {
            assert!(Instant::now() < deadline, "Orthanc did not answer in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        orthanc
    }

    fn peer(&self) -> AeAddress {
        format!("ORTHANC@127.0.0.1:{}", self.dicom).parse().unwrap()
    }

    fn try_get(&self, path: &str) -> Option<serde_json::Value> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.http)).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        // "HTTP/1.x 200 OK"
        (head.split_whitespace().nth(1) == Some("200"))
            .then(|| serde_json::from_str(body).ok())
            .flatten()
    }

    fn get(&self, path: &str) -> serde_json::Value {
        self.try_get(path)
            .unwrap_or_else(|| panic!("Orthanc GET {path} failed"))
    }
}

/// A finished BLUE exam of a scheduled patient with two zones and their
/// clips.
fn finished_exam(dir: &Path) -> PathBuf {
    let path = dir.join("exam.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    let identity = ExamIdentity::scheduled(
        Patient {
            name: "DOE^JANE".into(),
            id: "MRN-777".into(),
            birth_date: None,
            sex: None,
        },
        "ACC-7".into(),
        "1.2.826.0.1.3680043.10.543.7".into(),
    );
    journal.start(Protocol::Blue6, identity).unwrap();
    let root = journal.exam().unwrap().identity.clone().unwrap().uid_root;
    let clips = ZoneClips::beside(&path);
    for (zone, score) in [(0, 1u8), (1, 2)] {
        let result = ZoneScore {
            score,
            confidence: 0.7,
            manual: true,
            findings: None,
        };
        journal
            .command(Command::Record, Protocol::Blue6, Some(result))
            .unwrap();
        let clip = ZoneClip {
            width: 32,
            height: 24,
            frame_time: Duration::from_millis(40),
            pixels: vec![90; 4 * 32 * 24],
        };
        clips.save(&root, zone, &clip).unwrap();
        journal
            .command(Command::NextZone, Protocol::Blue6, None)
            .unwrap();
    }
    journal
        .command(Command::Finish, Protocol::Blue6, None)
        .unwrap();
    path
}

#[test]
fn an_exam_is_stored_on_orthanc_once_even_when_sent_twice() {
    let orthanc = Orthanc::start();
    net::echo("PLEURA", &orthanc.peer(), net::TIMEOUT).expect("C-ECHO");
    let dir = tempfile::tempdir().unwrap();
    let journal = finished_exam(dir.path());
    for _ in 0..2 {
        let sent = succeed(
            pleura()
                .arg("send")
                .arg(&journal)
                .arg("--pacs")
                .arg(orthanc.peer().to_string()),
        );
        let stdout = String::from_utf8_lossy(&sent.stdout);
        assert_eq!(stdout.matches(" stored on ORTHANC@").count(), 4, "{stdout}");
    }
    let instances = orthanc.get("/instances");
    assert_eq!(
        instances.as_array().map(Vec::len),
        Some(4),
        "two clips, the summary and the report, once: {instances}"
    );
    for id in instances.as_array().unwrap() {
        let tags = orthanc.get(&format!(
            "/instances/{}/simplified-tags",
            id.as_str().unwrap()
        ));
        assert_eq!(tags["PatientID"], "MRN-777", "{tags}");
        assert_eq!(tags["AccessionNumber"], "ACC-7", "{tags}");
        assert_eq!(tags["StudyInstanceUID"], "1.2.826.0.1.3680043.10.543.7");
    }
    let studies = orthanc.get("/studies");
    assert_eq!(studies.as_array().map(Vec::len), Some(1), "{studies}");
}

#[test]
fn a_pacs_that_is_down_is_named_and_nothing_is_claimed_sent() {
    let port = free_port();
    let peer: AeAddress = format!("PACS@127.0.0.1:{port}").parse().unwrap();
    let error = net::echo("PLEURA", &peer, Duration::from_secs(5)).unwrap_err();
    assert!(
        error
            .to_string()
            .contains(&format!("PACS@127.0.0.1:{port}")),
        "{error}"
    );
    let dir = tempfile::tempdir().unwrap();
    let journal = finished_exam(dir.path());
    let output = pleura()
        .arg("send")
        .arg(&journal)
        .arg("--pacs")
        .arg(peer.to_string())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("PACS@127.0.0.1:{port}")) && stderr.contains("no association"),
        "{stderr}"
    );
}

#[test]
fn a_pacs_that_rejects_the_called_ae_title_is_an_association_error() {
    let orthanc = Orthanc::start();
    let mut peer = orthanc.peer();
    peer.ae_title = "NOT-ORTHANC".into();
    let error = net::echo("PLEURA", &peer, net::TIMEOUT).unwrap_err();
    assert!(
        matches!(error, net::NetError::Association { .. }),
        "{error}"
    );
}
