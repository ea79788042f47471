//! Hospital fixtures shared by the DICOM, PACS and outbox tests: finished
//! exams with their zone clips, a real Orthanc on free loopback ports, and
//! a small HL7 MLLP receiver.

use pleura::exam::{
    Command, ExamIdentity, Journal, Patient, Protocol, ZoneClip, ZoneClips, ZoneScore,
};
use pleura::spec::AeAddress;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A scheduled patient's identity.
pub fn scheduled(id: &str, accession: &str, study_uid: &str) -> ExamIdentity {
    ExamIdentity::scheduled(
        Patient {
            name: "DOE^JANE".into(),
            id: id.into(),
            birth_date: Some("19700101".into()),
            sex: Some("F".into()),
        },
        accession.into(),
        study_uid.into(),
    )
}

/// A clip of `frames` gray frames of `width`×`height` with a moving bar.
pub fn clip(frames: usize, width: usize, height: usize) -> ZoneClip {
    let mut pixels = vec![20u8; frames * width * height];
    for f in 0..frames {
        for y in 0..height {
            pixels[f * width * height + y * width + (f * 3) % width] = 230;
        }
    }
    ZoneClip {
        width,
        height,
        frame_time: Duration::from_millis(40),
        pixels,
    }
}

/// A zone of a finished exam: its score, findings, and the clip saved for
/// it (none: the clip was lost).
pub struct Zone {
    pub score: u8,
    pub findings: Option<[f32; 4]>,
    pub clip: Option<ZoneClip>,
}

/// A finished exam of `protocol` for `identity` in `dir/exam.jsonl`: the
/// zones recorded in order from the first, each with its clip saved.
pub fn finished_exam(
    dir: &Path,
    protocol: Protocol,
    identity: ExamIdentity,
    zones: Vec<Zone>,
) -> PathBuf {
    let path = dir.join("exam.jsonl");
    let mut journal = Journal::open(&path).unwrap();
    let root = identity.uid_root.clone();
    journal.start(protocol, identity).unwrap();
    let clips = ZoneClips::beside(&path);
    for (index, zone) in zones.into_iter().enumerate() {
        if index > 0 {
            journal.command(Command::NextZone, protocol, None).unwrap();
        }
        let result = ZoneScore {
            score: zone.score,
            confidence: 0.81,
            manual: true,
            findings: zone.findings,
        };
        journal
            .command(Command::Record, protocol, Some(result))
            .unwrap();
        if let Some(clip) = zone.clip {
            clips.save(&root, index, &clip).unwrap();
        }
    }
    journal.command(Command::Finish, protocol, None).unwrap();
    path
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// An Orthanc server (Debian's), stopped when dropped.
pub struct Orthanc {
    child: Child,
    http: u16,
    pub dicom: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Orthanc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Orthanc {
    /// Starts Orthanc as AE `ORTHANC` on free ports.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// Starts Orthanc as AE `ORTHANC` with its DICOM port on `dicom`: no
    /// authentication, loopback only, every store allowed.
    pub fn start_on(dicom: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let http = free_port();
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

    /// Its DICOM address.
    pub fn peer(&self) -> AeAddress {
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

    /// A REST GET's JSON answer.
    pub fn get(&self, path: &str) -> serde_json::Value {
        self.try_get(path)
            .unwrap_or_else(|| panic!("Orthanc GET {path} failed"))
    }

    /// How many instances it stores.
    pub fn instances(&self) -> usize {
        self.get("/instances").as_array().map_or(0, Vec::len)
    }
}

/// An HL7 MLLP receiver on a free loopback port, as an interface engine
/// would be: it reads each framed message, keeps it, and answers with an
/// ACK whose code (`AA`, `AE`, `AR`) comes from `answers`, one per message
/// (the last one repeats).
pub struct Hl7Receiver {
    pub port: u16,
    pub messages: Arc<Mutex<Vec<String>>>,
}

impl Hl7Receiver {
    pub fn start(answers: &[&'static str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        let answers = answers.to_vec();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Ok(frame) = pleura::hospital::mllp::read_frame(&mut stream) else {
                    continue;
                };
                let message = String::from_utf8_lossy(&frame).into_owned();
                let control = message
                    .split('\r')
                    .next()
                    .and_then(|msh| msh.split('|').nth(9))
                    .unwrap_or("")
                    .to_string();
                let mut kept = kept.lock().unwrap();
                kept.push(message);
                let code = answers[(kept.len() - 1).min(answers.len() - 1)];
                let reason = if code == "AA" {
                    ""
                } else {
                    "unknown patient in the record"
                };
                let ack = format!(
                    "MSH|^~\\&|ENGINE|HOSPITAL|PLEURA|UNIT|20261202120000||ACK^R01^ACK|A{}|P|2.5\rMSA|{code}|{control}|{reason}\r",
                    kept.len()
                );
                let _ = stream.write_all(&pleura::hospital::mllp::frame(&ack));
            }
        });
        Self { port, messages }
    }

    /// The messages it got.
    pub fn messages(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }
}

/// A board profile like the development PC's, with its data folder (and
/// so its outbox) and slots in `dir`: (the profiles' folder, the profile).
pub fn board_in(dir: &Path) -> (PathBuf, pleura::board::BoardProfile) {
    let boards = dir.join("boards");
    std::fs::create_dir_all(&boards).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("boards/x86_64-dev.toml");
    let text = std::fs::read_to_string(shipped)
        .unwrap()
        .replace(
            "target/pleura-data",
            &dir.join("data").display().to_string(),
        )
        .replace(
            "target/pleura-slots",
            &dir.join("slots").display().to_string(),
        );
    std::fs::write(boards.join("x86_64-dev.toml"), text).unwrap();
    let board = pleura::board::BoardProfile::named(&boards, "x86_64-dev").unwrap();
    (boards, board)
}
