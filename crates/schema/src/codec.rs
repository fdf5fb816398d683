//! Avro single-object encoding with the schemas compiled in.
//!
//! Every message is `C3 01`, the writer schema's 8-byte little-endian CRC-64-AVRO (Rabin)
//! fingerprint of its Parsing Canonical Form, then the Avro binary body. Every version of every
//! schema in `schemas/` is compiled in; a message is decoded with the writer schema its
//! fingerprint names and resolved to the newest version of the same record, so old and new
//! writers both decode. No registry is needed; a deployment with one can map registry ids to
//! the same fingerprints (see the README).
//!
//! Its length is the encoding's: the single-object framing, the schema set compiled in and
//! resolution between versions are one mechanism, and splitting them would scatter it.

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

use apache_avro::rabin::Rabin;
use apache_avro::schema::Schema;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The two marker bytes that start a single-object-encoded message.
pub const MAGIC: [u8; 2] = [0xC3, 0x01];

/// Defines the record types of the contract, one row each: the variant (also the Avro record
/// name), its direction, and its schema files under `schemas/`, oldest first. `RecordType`,
/// `RecordType::ALL`, `RecordType::name` and the compiled-in schema set come from this table.
macro_rules! record_types {
    ($($(#[$doc:meta])* $name:ident: [$($file:literal),+]),+ $(,)?) => {
        /// Every record type in the contract.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum RecordType {
            $($(#[$doc])* $name),+
        }

        impl RecordType {
            /// Every record type.
            pub const ALL: [RecordType; [$(stringify!($name)),+].len()] =
                [$(RecordType::$name),+];

            /// The Avro record name (a test checks it against every schema): how answers, the
            /// audit trail and metric labels name the record type.
            pub fn name(self) -> &'static str {
                match self {
                    $(RecordType::$name => stringify!($name)),+
                }
            }
        }

        /// Every version of every schema, oldest first. To change a schema, add a new version
        /// here and in `schemas/`, never edit a published one (the tests check the
        /// fingerprints).
        const SCHEMA_FILES: &[(RecordType, &[(&str, &str)])] = &[
            $((RecordType::$name, &[$(($file, include_str!(concat!("../../../schemas/", $file)))),+])),+
        ];
    };
}

record_types! {
    /// A release movement (in).
    PrisonRelease: ["prison_release.v1.avsc"],
    /// A release withdrawn (in).
    ReleaseWithdrawn: ["release_withdrawn.v1.avsc"],
    /// An admission to custody (in).
    CustodyAdmission: ["custody_admission.v1.avsc"],
    /// A death (in).
    PersonDied: ["person_died.v1.avsc"],
    /// Two identifiers of one person (in).
    IdentityLinked: ["identity_linked.v1.avsc"],
    /// Two records merged (in).
    IdentityMerged: ["identity_merged.v1.avsc"],
    /// A merge undone (in).
    IdentityUnmerged: ["identity_unmerged.v1.avsc"],
    /// A referral recording the need (in).
    Referral: ["referral.v1.avsc"],
    /// A treatment episode start (in).
    TreatmentStart: ["treatment_start.v1.avsc"],
    /// A treatment episode end (in).
    TreatmentDischarge: ["treatment_discharge.v1.avsc"],
    /// A person allocated to a probation service (in).
    ProbationAllocated: ["probation_allocated.v1.avsc"],
    /// A change to a case (out).
    CaseEvent: ["case_event.v1.avsc"],
    /// A caseworker flag (out).
    EngagementFlag: ["engagement_flag.v1.avsc"],
    /// A cohort cell's figures (out).
    ContinuityPerformance: [
        "continuity_performance.v1.avsc",
        "continuity_performance.v2.avsc",
        "continuity_performance.v3.avsc"
    ],
    /// A message that could not be applied (out).
    DeadLetter: ["dead_letter.v1.avsc"],
    /// What a caseworker did about a case (out, from the worklist).
    CaseworkerAction: ["caseworker_action.v1.avsc"],
}

/// The most any one string, byte array or array length in a message may claim. Untrusted
/// bytes can claim any length; without this bound a 20-byte message could make the decoder
/// reserve gigabytes. 1 MiB is Kafka's default maximum message size.
pub const MAX_ALLOCATION_BYTES: usize = 1024 * 1024;

/// A 64-bit schema fingerprint as it appears on the wire (little-endian Rabin).
pub type Fingerprint = [u8; 8];

/// One compiled-in schema version.
#[derive(Debug)]
pub struct SchemaVersion {
    /// The record type.
    pub record: RecordType,
    /// 1, 2, ...
    pub version: u32,
    /// The file under `schemas/`.
    pub file: &'static str,
    /// The parsed schema.
    pub schema: Schema,
    /// The same schema with every named reference replaced by the type it names, with the
    /// same binary form: schema-aware encoding then needs no table of names.
    pub encoding: Schema,
    /// Its fingerprint: CRC-64-AVRO of its Parsing Canonical Form ([`crate::canonical`]),
    /// what this build writes and what any Avro implementation computes.
    pub fingerprint: Fingerprint,
    /// The fingerprint builds before 2026-12 wrote (of apache-avro's canonical form, which
    /// keeps logical types); still read until every message written with it has expired
    /// from the topics (see docs/wire-format.md).
    pub legacy_fingerprint: Fingerprint,
    /// The single-object header this build writes and its decoder expects.
    header: Vec<u8>,
    /// A decoder with the schema's names resolved once, not per message.
    decoder: Decoder,
}

/// `apache_avro`'s single-object reader, which resolves the schema's names when built.
struct Decoder(apache_avro::GenericSingleObjectReader);

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decoder")
    }
}

/// `schema` with every `Ref` replaced by the named type it refers to. Our schemas are not
/// recursive; a recursive one is refused rather than expanded forever.
fn inline_refs(
    schema: &Schema,
    names: &HashMap<apache_avro::schema::Name, Schema>,
    depth: usize,
) -> Result<Schema, String> {
    use apache_avro::schema::{ArraySchema, MapSchema, UnionSchema};
    if depth > 32 {
        return Err("schema nests too deeply (recursive type?)".into());
    }
    let inline = |s: &Schema| inline_refs(s, names, depth + 1);
    Ok(match schema {
        Schema::Ref { name } => inline(
            names
                .get(name)
                .ok_or_else(|| format!("unresolved type {name}"))?,
        )?,
        Schema::Record(r) => {
            let mut r = r.clone();
            for field in &mut r.fields {
                field.schema = inline(&field.schema)?;
            }
            Schema::Record(r)
        }
        Schema::Union(u) => Schema::Union(
            UnionSchema::new(u.variants().iter().map(inline).collect::<Result<_, _>>()?)
                .map_err(|e| e.to_string())?,
        ),
        Schema::Array(a) => Schema::Array(ArraySchema {
            items: Box::new(inline(&a.items)?),
            attributes: a.attributes.clone(),
        }),
        Schema::Map(m) => Schema::Map(MapSchema {
            types: Box::new(inline(&m.types)?),
            attributes: m.attributes.clone(),
        }),
        other => other.clone(),
    })
}

/// All compiled-in schemas, by fingerprint and by record type.
#[derive(Debug)]
pub struct Registry {
    versions: Vec<SchemaVersion>,
    by_fingerprint: HashMap<Fingerprint, usize>,
    latest: HashMap<RecordType, usize>,
}

/// Why a message could not be encoded or decoded. Messages name the problem, never a value.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Shorter than the 10-byte header or without the marker bytes.
    #[error("not an Avro single-object message: expected marker C3 01 and an 8-byte fingerprint")]
    NotSingleObject,
    /// No compiled-in schema has this fingerprint.
    #[error("unknown writer schema fingerprint {0}: the writer uses a schema this build does not know; upgrade the reader")]
    UnknownSchema(String),
    /// The fingerprint names a different record type from the one expected.
    #[error("expected a {expected:?} message, got {actual:?}")]
    WrongRecord {
        /// What the caller asked for.
        expected: RecordType,
        /// What the message holds.
        actual: RecordType,
    },
    /// The body does not decode with the writer schema, or does not resolve to the reader's.
    #[error("{record:?} body does not decode: {detail}")]
    Body {
        /// The record type.
        record: RecordType,
        /// What Avro reported.
        detail: String,
    },
    /// Bytes left after the record: a corrupt or mislabelled message.
    #[error("{0:?} message has trailing bytes after the record")]
    TrailingBytes(RecordType),
    /// A value could not be encoded with the schema (a bug in the caller).
    #[error("{record:?} value does not fit its schema: {detail}")]
    Encode {
        /// The record type.
        record: RecordType,
        /// What Avro reported.
        detail: String,
    },
}

/// What went wrong, in words chosen here: several apache-avro messages quote the value they
/// read, and a message body is personal data that reaches logs and the dead-letter topic.
fn avro_error_kind(e: &apache_avro::Error) -> String {
    use apache_avro::error::Details;
    match e.details() {
        Details::MemoryAllocation { desired, maximum } => {
            let desired = desired.map_or_else(|| "unknown".into(), |d| d.to_string());
            format!("a length of {desired} bytes exceeds the limit of {maximum} (MemoryAllocation)")
        }
        Details::ReadVariableIntegerBytes(_)
        | Details::ReadBytes(_)
        | Details::ReadString(_)
        | Details::ReadDouble(_)
        | Details::ReadFloat(_)
        | Details::ReadBoolean(_) => "the message ends before the record does".into(),
        Details::GetUnionVariant {
            index,
            num_variants,
        } => {
            format!("union branch {index} does not exist (the union has {num_variants})")
        }
        Details::GetEnumValue { index, nsymbols } => {
            format!("enum index {index} does not exist (the enum has {nsymbols})")
        }
        Details::BoolValue(_) => "a boolean is neither 0 nor 1".into(),
        Details::ConvertToUtf8(_) => "a string is not valid UTF-8".into(),
        Details::IntegerOverflow | Details::ZagI32(..) => "an integer is out of range".into(),
        _ => "a value does not match the schema".into(),
    }
}

/// The fingerprint of apache-avro's canonical form, which older builds wrote.
fn legacy_fingerprint_of(schema: &Schema) -> Fingerprint {
    let bytes = schema.fingerprint::<Rabin>().bytes;
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

/// The single-object header of a schema: the marker, then the fingerprint.
fn header(fingerprint: &Fingerprint) -> Vec<u8> {
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(fingerprint);
    header
}

/// Hex form of a fingerprint, as the lock file and errors print it.
pub fn fingerprint_hex(fp: &Fingerprint) -> String {
    fp.iter().map(|b| format!("{b:02x}")).collect()
}

impl Registry {
    /// The compiled-in registry. Parsing happens once; the schemas are part of the binary and
    /// are checked by the tests, so a parse failure here is a build defect.
    pub fn get() -> &'static Registry {
        static REGISTRY: OnceLock<Registry> = OnceLock::new();
        REGISTRY.get_or_init(|| {
            // Set before anything is decoded: apache-avro reads this limit once.
            apache_avro::util::max_allocation_bytes(MAX_ALLOCATION_BYTES);
            Registry::build().unwrap_or_else(|e| panic!("compiled-in Avro schema is invalid: {e}"))
        })
    }

    fn build() -> Result<Registry, String> {
        let mut reg = Registry {
            versions: Vec::new(),
            by_fingerprint: HashMap::new(),
            latest: HashMap::new(),
        };
        for (record, files) in SCHEMA_FILES {
            for (n, (file, text)) in files.iter().enumerate() {
                let schema = Schema::parse_str(text).map_err(|e| format!("{file}: {e}"))?;
                let fingerprint =
                    crate::canonical::fingerprint(text).map_err(|e| format!("{file}: {e}"))?;
                let legacy_fingerprint = legacy_fingerprint_of(&schema);
                let names: HashMap<_, Schema> =
                    apache_avro::schema::ResolvedSchema::try_from(&schema)
                        .map_err(|e| format!("{file}: {e}"))?
                        .get_names()
                        .iter()
                        .map(|(n, s)| (n.clone(), (*s).clone()))
                        .collect();
                let encoding =
                    inline_refs(&schema, &names, 0).map_err(|e| format!("{file}: {e}"))?;
                let decoder = apache_avro::GenericSingleObjectReader::builder()
                    .schema(schema.clone())
                    .header(header(&fingerprint))
                    .build()
                    .map_err(|e| format!("{file}: {e}"))?;
                let index = reg.versions.len();
                for fp in [fingerprint, legacy_fingerprint] {
                    if reg
                        .by_fingerprint
                        .insert(fp, index)
                        .is_some_and(|i| i != index)
                    {
                        return Err(format!("{file}: same fingerprint as another schema"));
                    }
                }
                reg.latest.insert(*record, index);
                reg.versions.push(SchemaVersion {
                    record: *record,
                    version: n as u32 + 1,
                    file,
                    schema,
                    encoding,
                    fingerprint,
                    legacy_fingerprint,
                    header: header(&fingerprint),
                    decoder: Decoder(decoder),
                });
            }
        }
        Ok(reg)
    }

    /// Every compiled-in schema version.
    pub fn versions(&self) -> &[SchemaVersion] {
        &self.versions
    }

    /// The newest version of a record type: what this build writes and reads into.
    pub fn latest(&self, record: RecordType) -> &SchemaVersion {
        // Every RecordType has an entry in SCHEMA_FILES (checked by a test).
        &self.versions[self.latest[&record]]
    }

    /// The record type and writer schema of a message, from its header alone.
    pub fn writer_of(&self, message: &[u8]) -> Result<&SchemaVersion, CodecError> {
        if message.len() < 10 || message[..2] != MAGIC {
            return Err(CodecError::NotSingleObject);
        }
        let mut fp = [0u8; 8];
        fp.copy_from_slice(&message[2..10]);
        let index = self
            .by_fingerprint
            .get(&fp)
            .ok_or_else(|| CodecError::UnknownSchema(fingerprint_hex(&fp)))?;
        Ok(&self.versions[*index])
    }

    /// Decode a message into `T`, the wire form of the newest schema of `expected`. A message
    /// written with that schema deserialises straight from its bytes; one written with an
    /// older version is read into a generic value, resolved to the newest, then converted.
    fn decode<T: DeserializeOwned>(
        &self,
        message: &[u8],
        expected: RecordType,
    ) -> Result<T, CodecError> {
        let writer = self.writer_of(message)?;
        let record = writer.record;
        if record != expected {
            return Err(CodecError::WrongRecord {
                expected,
                actual: record,
            });
        }
        let reader = self.latest(record);
        let body_error = |e: apache_avro::Error| CodecError::Body {
            record,
            detail: avro_error_kind(&e),
        };
        // The decoder expects the header with the canonical fingerprint; a message written
        // with the legacy one (checked by `writer_of`) is read as if it had that header.
        let mut body = &message[writer.header.len()..];
        let mut rest = writer.header.as_slice().chain(&mut body);
        let decoded = if reader.fingerprint == writer.fingerprint {
            writer.decoder.0.read_deser(&mut rest).map_err(body_error)?
        } else {
            let value = writer.decoder.0.read_value(&mut rest).map_err(body_error)?;
            let value = value.resolve(&reader.schema).map_err(body_error)?;
            apache_avro::from_value(&value).map_err(body_error)?
        };
        if !body.is_empty() {
            return Err(CodecError::TrailingBytes(record));
        }
        Ok(decoded)
    }
}

/// A Rust type that is the wire form of one record type.
pub trait AvroRecord: Serialize + DeserializeOwned {
    /// Which record type.
    const RECORD: RecordType;

    /// Encode as a single-object message with the newest schema of its record type,
    /// serialising straight to bytes against the schema (no intermediate `Value`).
    fn to_message(&self) -> Result<Vec<u8>, CodecError> {
        let v = Registry::get().latest(Self::RECORD);
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&v.header);
        // The error names the kind of failure only: its message can quote the value.
        // `encoding` names nothing: every reference is inlined.
        apache_avro::write_avro_datum_ref(&v.encoding, &HashMap::new(), self, &mut out).map_err(
            |e| CodecError::Encode {
                record: Self::RECORD,
                detail: avro_error_kind(&e),
            },
        )?;
        Ok(out)
    }

    /// Decode a single-object message that must hold this record type.
    fn from_message(message: &[u8]) -> Result<Self, CodecError> {
        Registry::get().decode(message, Self::RECORD)
    }
}
