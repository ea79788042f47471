//! DICOM network services as a client (SCU), over dicom-ul: C-ECHO to check
//! that a PACS answers, C-STORE to send an exam's objects to it.
//!
//! Each object is offered in the transfer syntax it is stored in (Explicit
//! VR Little Endian), with Implicit VR Little Endian, which every SCP must
//! take, as the fallback the association may pick. Every C-STORE status
//! the PACS answers is sorted ([`StoreStatus`]): success and warnings are
//! stored; a refusal for lack of resources, a busy or an unknown status is
//! worth retrying later; an object the PACS says it cannot take as it is
//! (a wrong SOP class, a data set that does not match it) is not.

use super::DicomInstance;
use crate::spec::AeAddress;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_ul::ClientAssociation;
use dicom_ul::association::CloseSocket;
use dicom_ul::association::client::ClientAssociationOptions;
use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Why talking to a DICOM peer failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No association: the peer cannot be reached, or it rejected or
    /// aborted the association.
    #[error("{peer}: no association: {reason}")]
    Association {
        /// The peer.
        peer: String,
        /// What dicom-ul said.
        reason: String,
    },
    /// The peer accepted none of the presentation contexts an object needs.
    #[error("{peer}: takes no {sop_class} in Explicit or Implicit VR Little Endian")]
    NoContext {
        /// The peer.
        peer: String,
        /// The SOP class refused.
        sop_class: String,
    },
    /// The exchange broke off or the peer answered what no SCP answers.
    #[error("{peer}: {reason}")]
    Protocol {
        /// The peer.
        peer: String,
        /// What went wrong.
        reason: String,
    },
}

/// What a C-STORE's status means for the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreStatus {
    /// Stored (0000).
    Stored,
    /// Stored, with a warning: coerced, elements discarded, or a data set
    /// that does not quite match its SOP class (0001, 0107, 0116, Bxxx).
    StoredWithWarning(u16),
    /// Not stored, but worth trying again later: out of resources (A7xx),
    /// cancelled (FE00), or a status no standard names.
    Retry(u16),
    /// Not stored, and sending it again as it is will not help: refused
    /// (0122 SOP class not supported, 0124 not authorized, A9xx data set
    /// does not match the SOP class, Cxxx cannot understand).
    Refused(u16),
}

impl StoreStatus {
    /// Sorts a C-STORE response status (PS3.4 GG.4, PS3.7 C).
    pub fn of(status: u16) -> Self {
        match status {
            0x0000 => StoreStatus::Stored,
            0x0001 | 0x0107 | 0x0116 | 0xB000..=0xBFFF => StoreStatus::StoredWithWarning(status),
            0x0122 | 0x0124 | 0xA900..=0xA9FF | 0xC000..=0xCFFF => StoreStatus::Refused(status),
            _ => StoreStatus::Retry(status),
        }
    }

    /// Whether the PACS has the object.
    pub fn stored(self) -> bool {
        matches!(
            self,
            StoreStatus::Stored | StoreStatus::StoredWithWarning(_)
        )
    }
}

impl std::fmt::Display for StoreStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            StoreStatus::Stored => write!(f, "stored"),
            StoreStatus::StoredWithWarning(s) => write!(f, "stored with warning {s:04X}H"),
            StoreStatus::Retry(s) => write!(f, "not stored, status {s:04X}H (will retry)"),
            StoreStatus::Refused(s) => write!(f, "refused, status {s:04X}H"),
        }
    }
}

/// How long to wait for a peer to connect or answer.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// How a unit reaches its DICOM peers: plain TCP, or TLS with these
/// settings (DICOM's secure transport, PS3.15 B.1).
#[derive(Debug, Clone, Default)]
pub struct Link {
    /// TLS, when the peers take it: the trusted roots and this unit's
    /// certificate, if the peers ask for one.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why the TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("DICOM TLS {path}: {reason}")]
pub struct TlsError {
    /// The PEM file.
    pub path: std::path::PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl Link {
    /// How `board`'s unit reaches its peers: TLS when its `[hospital]`
    /// table or the flags name trusted roots (`ca`), presenting the unit's
    /// certificate and key when both are named; plain TCP otherwise.
    pub fn for_board(
        board: &crate::board::BoardProfile,
        ca: Option<&std::path::Path>,
        certificate: Option<&std::path::Path>,
        key: Option<&std::path::Path>,
    ) -> Result<Self, TlsError> {
        let hospital = &board.hospital;
        let ca = ca.or(hospital.tls_ca.as_deref());
        let certificate = certificate.or(hospital.tls_certificate.as_deref());
        let key = key.or(hospital.tls_key.as_deref());
        match ca {
            None => Ok(Self::default()),
            Some(ca) => Self::tls(ca, certificate.zip(key)),
        }
    }

    /// TLS that trusts the certificates of `roots` (PEM), and presents
    /// this unit's certificate chain and key (PEM) when `identity` is
    /// given, for peers that ask for one.
    pub fn tls(
        roots: &std::path::Path,
        identity: Option<(&std::path::Path, &std::path::Path)>,
    ) -> Result<Self, TlsError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |path: &std::path::Path, reason: String| TlsError {
            path: path.to_path_buf(),
            reason,
        };
        let certificates = |path: &std::path::Path| {
            CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| bad(path, e.to_string()))
                .and_then(|certs| {
                    if certs.is_empty() {
                        Err(bad(path, "holds no PEM certificate".into()))
                    } else {
                        Ok(certs)
                    }
                })
        };
        let mut store = rustls::RootCertStore::empty();
        for certificate in certificates(roots)? {
            store
                .add(certificate)
                .map_err(|e| bad(roots, e.to_string()))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(roots, e.to_string()))?
            .with_root_certificates(store);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => {
                let key_der =
                    PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, e.to_string()))?;
                builder
                    .with_client_auth_cert(certificates(chain)?, key_der)
                    .map_err(|e| bad(chain, e.to_string()))?
            }
        };
        Ok(Self {
            tls: Some(Arc::new(config)),
        })
    }
}

/// An association, plain or over TLS, as the DIMSE exchanges use it.
pub(crate) trait Dimse {
    /// The presentation contexts the peer accepted.
    fn contexts(&self) -> Vec<dicom_ul::pdu::PresentationContextNegotiated>;
    /// Sends one PDU.
    fn send(&mut self, pdu: &Pdu) -> Result<(), dicom_ul::association::Error>;
    /// Sends a data set on `context`, split into PDUs the peer takes.
    fn send_data(&mut self, context: u8, data: &[u8]) -> std::io::Result<()>;
    /// Waits for the next PDU.
    fn receive(&mut self) -> Result<Pdu, dicom_ul::association::Error>;
    /// Releases the association.
    fn release(self: Box<Self>);
    /// Aborts the association.
    fn abort(self: Box<Self>);
}

impl<S> Dimse for ClientAssociation<S>
where
    S: CloseSocket + std::io::Read + std::io::Write,
{
    fn contexts(&self) -> Vec<dicom_ul::pdu::PresentationContextNegotiated> {
        self.presentation_contexts().to_vec()
    }

    fn send(&mut self, pdu: &Pdu) -> Result<(), dicom_ul::association::Error> {
        ClientAssociation::send(self, pdu)
    }

    fn send_data(&mut self, context: u8, data: &[u8]) -> std::io::Result<()> {
        let mut writer = self.send_pdata(context);
        writer.write_all(data)?;
        writer.flush()
    }

    fn receive(&mut self) -> Result<Pdu, dicom_ul::association::Error> {
        ClientAssociation::receive(self)
    }

    fn release(self: Box<Self>) {
        let _ = ClientAssociation::release(*self);
    }

    fn abort(self: Box<Self>) {
        let _ = ClientAssociation::abort(*self);
    }
}

/// An association with `peer` as `station_ae` over `link`, proposing
/// `sop_classes`.
pub(crate) fn associate(
    station_ae: &str,
    peer: &AeAddress,
    sop_classes: &[&str],
    timeout: Duration,
    link: &Link,
) -> Result<Box<dyn Dimse>, NetError> {
    let mut options = ClientAssociationOptions::new()
        .calling_ae_title(station_ae.to_string())
        .called_ae_title(peer.ae_title.clone())
        .connection_timeout(timeout)
        .read_timeout(timeout)
        .write_timeout(timeout);
    for class in sop_classes {
        options = options.with_presentation_context(
            class.to_string(),
            vec![
                uids::EXPLICIT_VR_LITTLE_ENDIAN.to_string(),
                uids::IMPLICIT_VR_LITTLE_ENDIAN.to_string(),
            ],
        );
    }
    let address = format!("{}@{}:{}", peer.ae_title, peer.host, peer.port);
    let failed = |e: dicom_ul::association::Error| NetError::Association {
        peer: peer.to_string(),
        reason: e.to_string(),
    };
    Ok(match &link.tls {
        None => Box::new(options.establish_with(&address).map_err(failed)?),
        Some(config) => Box::new(
            options
                .tls_config(config.clone())
                .server_name(&peer.host)
                .establish_with_tls(&address)
                .map_err(failed)?,
        ),
    })
}

/// Sends a DIMSE command (and its data set, if any) on context `context`.
pub(crate) fn send_message(
    association: &mut dyn Dimse,
    context: u8,
    command: &InMemDicomObject,
    data: Option<&[u8]>,
    peer: &AeAddress,
) -> Result<(), NetError> {
    let protocol = |reason: String| NetError::Protocol {
        peer: peer.to_string(),
        reason,
    };
    let mut command_bytes = Vec::with_capacity(256);
    command
        .write_dataset_with_ts(
            &mut command_bytes,
            &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
        )
        .map_err(|e| protocol(format!("cannot encode a command: {e}")))?;
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context,
                value_type: PDataValueType::Command,
                is_last: true,
                data: command_bytes,
            }],
        })
        .map_err(|e| protocol(format!("sending a command: {e}")))?;
    if let Some(data) = data {
        association
            .send_data(context, data)
            .map_err(|e| protocol(format!("sending a data set: {e}")))?;
    }
    Ok(())
}

/// The transfer syntax `uid` negotiated with `peer`.
pub(crate) fn transfer_syntax(
    uid: &str,
    peer: &AeAddress,
) -> Result<&'static dicom_encoding::TransferSyntax, NetError> {
    use dicom_encoding::TransferSyntaxIndex;
    dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(uid.trim_end_matches('\0'))
        .ok_or_else(|| NetError::Protocol {
            peer: peer.to_string(),
            reason: format!("negotiated an unknown transfer syntax {uid}"),
        })
}

/// The most bytes of one response data set read (a worklist entry is a
/// few kilobytes).
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Waits for a DIMSE response: its status, and its data set (read in
/// `syntax`) when one follows.
pub(crate) fn response(
    association: &mut dyn Dimse,
    peer: &AeAddress,
    syntax: &dicom_encoding::TransferSyntax,
) -> Result<(u16, Option<InMemDicomObject>), NetError> {
    let protocol = |reason: String| NetError::Protocol {
        peer: peer.to_string(),
        reason,
    };
    let mut command: Option<InMemDicomObject> = None;
    let mut data: Vec<u8> = Vec::new();
    loop {
        let values = match association
            .receive()
            .map_err(|e| protocol(format!("no answer: {e}")))?
        {
            Pdu::PData { data } => data,
            Pdu::AbortRQ { source } => {
                return Err(protocol(format!("the peer aborted ({source:?})")));
            }
            other => return Err(protocol(format!("an unexpected {other:?}"))),
        };
        for value in values {
            match value.value_type {
                PDataValueType::Command => {
                    let read = InMemDicomObject::read_dataset_with_ts(
                        &value.data[..],
                        &dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN
                            .erased(),
                    )
                    .map_err(|e| protocol(format!("an answer that does not parse: {e}")))?;
                    command = Some(read);
                }
                PDataValueType::Data => {
                    data.extend_from_slice(&value.data);
                    if data.len() > MAX_RESPONSE_BYTES {
                        return Err(protocol(format!(
                            "an answer over {MAX_RESPONSE_BYTES} bytes"
                        )));
                    }
                    if value.is_last {
                        let read = InMemDicomObject::read_dataset_with_ts(&data[..], syntax)
                            .map_err(|e| protocol(format!("an answer that does not parse: {e}")))?;
                        let command =
                            command.ok_or_else(|| protocol("data before a command".into()))?;
                        return Ok((status_of(&command, peer)?, Some(read)));
                    }
                }
            }
        }
        if let Some(command) = &command {
            let has_data = command
                .element(tags::COMMAND_DATA_SET_TYPE)
                .ok()
                .and_then(|e| e.to_int::<u16>().ok())
                .is_some_and(|kind| kind != 0x0101);
            if !has_data {
                return Ok((status_of(command, peer)?, None));
            }
        }
    }
}

fn status_of(command: &InMemDicomObject, peer: &AeAddress) -> Result<u16, NetError> {
    command
        .element(tags::STATUS)
        .ok()
        .and_then(|e| e.to_int::<u16>().ok())
        .ok_or_else(|| NetError::Protocol {
            peer: peer.to_string(),
            reason: "an answer without a status".into(),
        })
}

/// A request's command set: C-ECHO-RQ (`0030H`), C-STORE-RQ (`0001H`,
/// with the instance) or C-FIND-RQ (`0020H`); `has_data` when a data set
/// follows.
pub(crate) fn command(
    field: u16,
    message_id: u16,
    sop_class: &str,
    instance: Option<&str>,
    has_data: bool,
) -> InMemDicomObject {
    let mut elements = vec![
        DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(sop_class),
        ),
        DataElement::new(tags::COMMAND_FIELD, VR::US, PrimitiveValue::from(field)),
        DataElement::new(tags::MESSAGE_ID, VR::US, PrimitiveValue::from(message_id)),
        DataElement::new(
            tags::COMMAND_DATA_SET_TYPE,
            VR::US,
            // 0101H: no data set follows; 0000H: one does.
            PrimitiveValue::from(if has_data { 0x0000u16 } else { 0x0101 }),
        ),
    ];
    if field != 0x0030 {
        elements.push(DataElement::new(
            tags::PRIORITY,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    }
    if let Some(instance) = instance {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(instance),
        ));
    }
    InMemDicomObject::command_from_element_iter(elements)
}

/// Checks that `peer` answers a C-ECHO from `station_ae`.
pub fn echo(
    station_ae: &str,
    peer: &AeAddress,
    timeout: Duration,
    link: &Link,
) -> Result<(), NetError> {
    let mut association = associate(station_ae, peer, &[uids::VERIFICATION], timeout, link)?;
    let context = association
        .contexts()
        .first()
        .map(|pc| pc.id)
        .ok_or_else(|| NetError::NoContext {
            peer: peer.to_string(),
            sop_class: uids::VERIFICATION.into(),
        })?;
    send_message(
        association.as_mut(),
        context,
        &command(0x0030, 1, uids::VERIFICATION, None, false),
        None,
        peer,
    )?;
    let implicit = dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN.erased();
    let (status, _) = response(association.as_mut(), peer, &implicit)?;
    association.release();
    if status == 0 {
        Ok(())
    } else {
        Err(NetError::Protocol {
            peer: peer.to_string(),
            reason: format!("C-ECHO answered status {status:04X}H"),
        })
    }
}

/// Sends `instances` to `peer` from `station_ae` on one association; the
/// status of each, in order. An association that cannot be made fails all.
pub fn store(
    station_ae: &str,
    peer: &AeAddress,
    instances: &[&DicomInstance],
    timeout: Duration,
    link: &Link,
) -> Result<Vec<Result<StoreStatus, NetError>>, NetError> {
    let mut classes: Vec<&str> = instances.iter().map(|i| i.sop_class.as_str()).collect();
    classes.sort_unstable();
    classes.dedup();
    let mut association = associate(station_ae, peer, &classes, timeout, link)?;
    let mut results = Vec::with_capacity(instances.len());
    for (message_id, instance) in (1u16..).zip(instances) {
        let result = store_one(association.as_mut(), peer, instance, message_id);
        let broken = matches!(result, Err(NetError::Protocol { .. }));
        results.push(result);
        if broken {
            // The association is gone: the rest wait for the next try.
            for _ in results.len()..instances.len() {
                results.push(Err(NetError::Protocol {
                    peer: peer.to_string(),
                    reason: "not sent: the association broke off".into(),
                }));
            }
            association.abort();
            return Ok(results);
        }
    }
    association.release();
    Ok(results)
}

fn store_one(
    association: &mut dyn Dimse,
    peer: &AeAddress,
    instance: &DicomInstance,
    message_id: u16,
) -> Result<StoreStatus, NetError> {
    let contexts = association.contexts();
    let context = contexts
        .iter()
        .filter(|pc| pc.abstract_syntax == instance.sop_class)
        .min_by_key(|pc| pc.transfer_syntax != uids::EXPLICIT_VR_LITTLE_ENDIAN)
        .cloned()
        .ok_or_else(|| NetError::NoContext {
            peer: peer.to_string(),
            sop_class: instance.sop_class.clone(),
        })?;
    let data = instance
        .data_set(&context.transfer_syntax)
        .map_err(|e| NetError::Protocol {
            peer: peer.to_string(),
            reason: e.to_string(),
        })?;
    send_message(
        association,
        context.id,
        &command(
            0x0001,
            message_id,
            &instance.sop_class,
            Some(&instance.sop_instance),
            true,
        ),
        Some(&data),
        peer,
    )?;
    let syntax = transfer_syntax(&context.transfer_syntax, peer)?;
    response(association, peer, syntax).map(|(status, _)| StoreStatus::of(status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_status_is_sorted() {
        assert!(StoreStatus::of(0x0000).stored());
        assert!(StoreStatus::of(0xB007).stored());
        assert_eq!(StoreStatus::of(0xA700), StoreStatus::Retry(0xA700));
        assert_eq!(StoreStatus::of(0xA900), StoreStatus::Refused(0xA900));
        assert_eq!(StoreStatus::of(0xC123), StoreStatus::Refused(0xC123));
        assert_eq!(StoreStatus::of(0x0122), StoreStatus::Refused(0x0122));
        assert_eq!(StoreStatus::of(0xFE00), StoreStatus::Retry(0xFE00));
        assert_eq!(StoreStatus::of(0x1234), StoreStatus::Retry(0x1234));
    }
}
