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
    let mut journal = Journal::open(&path).unwrap().scored_by("lusnet-test.gguf");
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
    _dir: Option<tempfile::TempDir>,
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
        Self::start_with(dicom, &[])
    }

    /// Starts Orthanc with its worklist plugin serving `worklist`: each
    /// entry a `.wl` file made with dcmtk's `dump2dcm` from a text dump.
    pub fn start_with(dicom: u16, worklist: &[String]) -> Self {
        Self::start_configured(dicom, worklist, serde_json::json!({}))
    }

    /// Starts Orthanc taking DICOM only over TLS, with `certificates`'
    /// `server.crt`/`server.key`, trusting `ca.crt` and requiring a client
    /// certificate ([`test_certificates`]).
    pub fn start_tls(certificates: &Path) -> Self {
        Self::start_configured(
            free_port(),
            &[],
            serde_json::json!({
                "DicomTlsEnabled": true,
                "DicomTlsCertificate": certificates.join("server.crt"),
                "DicomTlsPrivateKey": certificates.join("server.key"),
                "DicomTlsTrustedCertificates": certificates.join("ca.crt"),
                "DicomTlsRemoteCertificateRequired": true,
            }),
        )
    }

    fn start_configured(dicom: u16, worklist: &[String], extra: serde_json::Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let worklists = dir.path().join("worklists");
        std::fs::create_dir_all(&worklists).unwrap();
        for (n, dump) in worklist.iter().enumerate() {
            let text = worklists.join(format!("entry{n}.txt"));
            std::fs::write(&text, dump).unwrap();
            let status = std::process::Command::new("dump2dcm")
                .arg("--write-xfer-little")
                .arg(&text)
                .arg(worklists.join(format!("entry{n}.wl")))
                .status()
                .expect("dump2dcm runs: install Debian's dcmtk (scripts/setup does)");
            assert!(status.success(), "dump2dcm failed on\n{dump}");
        }
        // A port that was free may be taken by the time Orthanc binds it
        // (tests run in parallel): Orthanc then exits, and is started again
        // on another HTTP port.
        let mut dir = Some(dir);
        for _ in 0..3 {
            let http = free_port();
            let home = dir.as_ref().unwrap().path().to_path_buf();
            let config = home.join("orthanc.json");
            let storage = home.join("db");
            let mut settings = serde_json::json!({
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
                    "DicomAlwaysAllowFindWorklist": true,
                    "Plugins": ["/usr/share/orthanc/plugins/libModalityWorklists.so"],
                    "Worklists": { "Enable": true, "Database": home.join("worklists") },
            });
            for (key, value) in extra.as_object().unwrap() {
                settings[key] = value.clone();
            }
            std::fs::write(&config, settings.to_string()).unwrap();
            let log = home.join("orthanc.log");
            // Debian puts it in /usr/sbin, which a user's PATH may lack.
            let program = ["/usr/sbin/Orthanc", "Orthanc"]
                .into_iter()
                .find(|p| Path::new(p).is_file())
                .unwrap_or("Orthanc");
            let child = std::process::Command::new(program)
                .arg(format!("--logfile={}", log.display()))
                .arg(&config)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("Orthanc starts: install Debian's orthanc (scripts/setup does)");
            let mut orthanc = Self {
                child,
                http,
                dicom,
                _dir: dir.take(),
            };
            // Under emulation the host is busy; Orthanc itself runs natively.
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                if orthanc.try_get("/system").is_some() {
                    return orthanc;
                }
                if let Ok(Some(_)) = orthanc.child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let log = std::fs::read_to_string(&log).unwrap_or_default();
                    panic!("Orthanc did not answer in 60 s; its log:\n{log}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            eprintln!("Orthanc exited at start, trying again; its log:\n{log}");
            // Keep the folder for the next try (its worklists).
            dir = orthanc._dir.take();
        }
        panic!("Orthanc did not start in 3 tries");
    }

    /// Its DICOM address.
    pub fn peer(&self) -> AeAddress {
        format!("ORTHANC@127.0.0.1:{}", self.dicom).parse().unwrap()
    }

    /// A REST GET's body, when it answers 200.
    fn get_body(&self, path: &str) -> Option<Vec<u8>> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.http)).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).ok()?;
        let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&response[..split]);
        // "HTTP/1.x 200 OK"
        (head.split_whitespace().nth(1) == Some("200")).then(|| response[split + 4..].to_vec())
    }

    fn try_get(&self, path: &str) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.get_body(path)?).ok()
    }

    /// The stored instances of `sop_class`, each as its DICOM file.
    pub fn files_of_class(&self, sop_class: &str) -> Vec<Vec<u8>> {
        let ids = self.get("/instances");
        ids.as_array()
            .unwrap()
            .iter()
            .filter_map(|id| {
                let id = id.as_str().unwrap();
                let tags = self.get(&format!("/instances/{id}/simplified-tags"));
                (tags["SOPClassUID"] == sop_class)
                    .then(|| self.get_body(&format!("/instances/{id}/file")).unwrap())
            })
            .collect()
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

/// A test certificate authority (`ca.crt`) and, signed by it, a
/// certificate for 127.0.0.1 good for server and client (`server.crt`,
/// `server.key`), made with openssl in `dir`.
pub fn test_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?} failed");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=Pleura test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.crt",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

/// A worklist entry as a dcmtk text dump: an ultrasound step scheduled on
/// `station` on `date` (`YYYYMMDD`) for the patient.
pub fn worklist_entry(
    name: &str,
    id: &str,
    accession: &str,
    study_uid: &str,
    station: &str,
    date: &str,
) -> String {
    format!(
        "(0008,0005) CS [ISO_IR 192]\n\
         (0008,0050) SH [{accession}]\n\
         (0010,0010) PN [{name}]\n\
         (0010,0020) LO [{id}]\n\
         (0010,0030) DA [19800214]\n\
         (0010,0040) CS [M]\n\
         (0020,000d) UI [{study_uid}]\n\
         (0032,1060) LO [Lung ultrasound, 12 zones]\n\
         (0040,0100) SQ (Sequence with explicit length #=1)\n\
         (fffe,e000) na (Item with explicit length #=5)\n\
         (0008,0060) CS [US]\n\
         (0040,0001) AE [{station}]\n\
         (0040,0002) DA [{date}]\n\
         (0040,0003) TM [093000]\n\
         (0040,0007) LO [Lung ultrasound]\n\
         (fffe,e00d) na (ItemDelimitationItem for re-encoding)\n\
         (fffe,e0dd) na (SequenceDelimitationItem for re-encoding)\n\
         (0040,1001) SH [RP1]\n"
    )
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

/// A storage SCP that answers every C-STORE with `status` (no real PACS can
/// be made to answer a failure on demand: Orthanc's filters answer
/// success and drop the instance). Built on dicom-ul's server side, on a
/// free loopback port, as AE `FULL`; serves associations until the test
/// ends.
pub fn failing_store_scp(status: u16) -> AeAddress {
    use dicom_ul::association::server::ServerAssociationOptions;
    use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let options = ServerAssociationOptions::new()
            .accept_any()
            .ae_title("FULL")
            .promiscuous(true)
            .with_transfer_syntax("1.2.840.10008.1.2.1")
            .with_transfer_syntax("1.2.840.10008.1.2");
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Ok(mut association) = options.establish(stream) else {
                continue;
            };
            let mut message_id = 0u16;
            while let Ok(pdu) = association.receive() {
                let Pdu::PData { data } = pdu else { break };
                for value in data {
                    if value.value_type == PDataValueType::Command {
                        let command = dicom_object::InMemDicomObject::read_dataset_with_ts(
                            &value.data[..],
                            &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN
                                .erased(),
                        )
                        .unwrap();
                        message_id = command
                            .element(dicom_dictionary_std::tags::MESSAGE_ID)
                            .unwrap()
                            .to_int()
                            .unwrap();
                    }
                    if value.value_type == PDataValueType::Data && value.is_last {
                        let answer = dicom_object::InMemDicomObject::command_from_element_iter([
                            dicom_core::DataElement::new(
                                dicom_dictionary_std::tags::COMMAND_FIELD,
                                dicom_core::VR::US,
                                dicom_core::PrimitiveValue::from(0x8001u16),
                            ),
                            dicom_core::DataElement::new(
                                dicom_dictionary_std::tags::MESSAGE_ID_BEING_RESPONDED_TO,
                                dicom_core::VR::US,
                                dicom_core::PrimitiveValue::from(message_id),
                            ),
                            dicom_core::DataElement::new(
                                dicom_dictionary_std::tags::COMMAND_DATA_SET_TYPE,
                                dicom_core::VR::US,
                                dicom_core::PrimitiveValue::from(0x0101u16),
                            ),
                            dicom_core::DataElement::new(
                                dicom_dictionary_std::tags::STATUS,
                                dicom_core::VR::US,
                                dicom_core::PrimitiveValue::from(status),
                            ),
                        ]);
                        let mut bytes = Vec::new();
                        answer
                            .write_dataset_with_ts(
                                &mut bytes,
                                &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN
                                    .erased(),
                            )
                            .unwrap();
                        let _ = association.send(&Pdu::PData {
                            data: vec![PDataValue {
                                presentation_context_id: value.presentation_context_id,
                                value_type: PDataValueType::Command,
                                is_last: true,
                                data: bytes,
                            }],
                        });
                    }
                }
            }
        }
    });
    format!("FULL@127.0.0.1:{port}").parse().unwrap()
}

/// A TCP relay on a free loopback port to `port`, which holds every chunk
/// the server sends back for `delay`: a slow link to a real PACS, so that a
/// send can be cut between objects at a time of the test's choosing.
pub fn slow_relay(port: u16, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { continue };
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
                continue;
            };
            let (mut client_in, mut server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_in, &mut server_out);
                let _ = server_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut server_in, mut client_out) = (server, client);
            std::thread::spawn(move || {
                let mut buffer = [0u8; 64 * 1024];
                while let Ok(n) = server_in.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    std::thread::sleep(delay);
                    if client_out.write_all(&buffer[..n]).is_err() {
                        break;
                    }
                }
                let _ = client_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    relay
}
