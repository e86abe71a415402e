//! The key ring and the ciphertext format, byte by byte.

use std::os::unix::fs::PermissionsExt as _;

use super::*;
use proptest::prelude::*;

const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const K2: &str = "k2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";

fn ring() -> KeyRing {
    KeyRing::parse(&format!("{K1},{K2}")).unwrap()
}

fn binding() -> Binding {
    Binding::app_secret(TenantId(Uuid::from_u128(1)), AppUuid(Uuid::from_u128(2)))
}

#[test]
fn round_trip_under_active_key() {
    let ring = ring();
    let ct = ring.encrypt(b"my appsecret", &binding()).unwrap();
    assert_eq!(key_id_of(&ct).unwrap(), "k1");
    assert_eq!(ct[0], FORMAT_VERSION);
    assert_eq!(
        ct.len(),
        2 + 2 + NONCE_LEN + b"my appsecret".len() + TAG_LEN
    );
    assert_eq!(&**ring.decrypt(&ct, &binding()).unwrap(), b"my appsecret");
    // Random nonces: the same plaintext never gives the same ciphertext.
    assert_ne!(ct, ring.encrypt(b"my appsecret", &binding()).unwrap());
}

#[test]
fn older_keys_still_decrypt() {
    let ring = ring();
    let ct = ring.encrypt_under("k2", b"x", &binding()).unwrap();
    let rotated = ring.with_active("k2").unwrap();
    assert_eq!(rotated.active_id(), "k2");
    assert_eq!(&**ring.decrypt(&ct, &binding()).unwrap(), b"x");
    assert_eq!(&**rotated.decrypt(&ct, &binding()).unwrap(), b"x");
}

#[test]
fn every_flipped_bit_fails() {
    let ring = ring();
    let ct = ring.encrypt(b"wx-secret-0123456789", &binding()).unwrap();
    for byte in 0..ct.len() {
        for bit in 0..8 {
            let mut bad = ct.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                ring.decrypt(&bad, &binding()).is_err(),
                "flipping bit {bit} of byte {byte} went unnoticed"
            );
        }
    }
}

#[test]
fn truncated_ciphertext_fails() {
    let ring = ring();
    let ct = ring.encrypt(b"secret", &binding()).unwrap();
    for len in 0..ct.len() {
        assert!(
            ring.decrypt(&ct[..len], &binding()).is_err(),
            "length {len}"
        );
    }
    assert_eq!(ring.decrypt(&[], &binding()), Err(CryptoError::Truncated));
    assert_eq!(
        ring.decrypt(&ct[..10], &binding()),
        Err(CryptoError::Truncated)
    );
    let mut v2 = ct.clone();
    v2[0] = 2;
    assert_eq!(
        ring.decrypt(&v2, &binding()),
        Err(CryptoError::UnsupportedVersion(2))
    );
}

#[test]
fn ciphertext_bound_to_tenant_row_and_field() {
    let ring = ring();
    let (tenant, app) = (TenantId(Uuid::from_u128(1)), AppUuid(Uuid::from_u128(2)));
    let ct = ring
        .encrypt(b"secret", &Binding::app_secret(tenant, app))
        .unwrap();
    for other in [
        Binding::app_secret(TenantId(Uuid::from_u128(9)), app),
        Binding::app_secret(tenant, AppUuid(Uuid::from_u128(9))),
        Binding::secondary_app_secret(tenant, app),
        Binding::access_token(tenant, app),
        Binding::key_check(),
    ] {
        assert_eq!(ring.decrypt(&ct, &other), Err(CryptoError::Tampered));
    }
}

#[test]
fn unknown_key_id_is_named() {
    let ct = ring().encrypt_under("k2", b"s", &binding()).unwrap();
    let only_k1 = KeyRing::parse(K1).unwrap();
    let err = only_k1.decrypt(&ct, &binding()).unwrap_err();
    assert_eq!(err, CryptoError::UnknownKeyId("k2".into()));
    assert!(err.to_string().contains("'k2'"), "{err}");
}

#[test]
fn same_key_under_another_id_does_not_decrypt() {
    // The id is authenticated: relabelling a key does not open old rows.
    let ct = KeyRing::parse(K1)
        .unwrap()
        .encrypt(b"s", &binding())
        .unwrap();
    let relabelled = KeyRing::parse(&K1.replace("k1:", "k9:")).unwrap();
    let mut moved = ct.clone();
    moved[3] = b'9';
    assert_eq!(
        relabelled.decrypt(&moved, &binding()),
        Err(CryptoError::Tampered)
    );
}

#[test]
fn parse_errors_name_the_problem() {
    let short = format!("k1:{}", BASE64.encode([7u8; 31]));
    let cases: Vec<(String, Option<&str>, &str)> = vec![
        (String::new(), None, "no master key"),
        (" , \n# comment\n".into(), None, "no master key"),
        ("k1".into(), None, "entry 1 is not of the form"),
        (format!("{K1},Bad_Id:AAAA"), None, "entry 2: a key id"),
        (format!(":{}", &K1[3..]), None, "entry 1: a key id"),
        (
            "k1:not base64!!".into(),
            None,
            "key 'k1' is not valid standard base64",
        ),
        (short, None, "key 'k1' is 31 bytes long"),
        (format!("{K1},{K2},{K1}"), None, "key id 'k1' appears twice"),
        (
            format!("{K1},{K2}"),
            Some("k3"),
            "active key id 'k3' is not in the key ring (ids: k1, k2)",
        ),
    ];
    for (text, active, expected) in cases {
        let err = KeyRing::parse_with_active(&text, active)
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
        assert!(!err.contains("AAECAw"), "key material in error: {err}");
    }
}

#[test]
fn key_file_format_with_comments_and_active() {
    let text = format!("# keys\n{K1}\n\n  {K2}  \n");
    let ring = KeyRing::parse_with_active(&text, Some("k2")).unwrap();
    assert_eq!(ring.active_id(), "k2");
    assert_eq!(ring.ids().collect::<Vec<_>>(), ["k2", "k1"]);
}

#[test]
fn debug_shows_ids_only() {
    let debug = format!("{:?}", ring());
    assert_eq!(debug, r#"KeyRing { active: "k1", ids: ["k1", "k2"] }"#);
}

#[test]
fn generated_entries_parse_and_differ() {
    let a = generate_entry("new").unwrap();
    let b = generate_entry("new").unwrap();
    assert_ne!(*a, *b);
    assert_eq!(KeyRing::parse(&a).unwrap().active_id(), "new");
}

#[test]
fn generated_key_file_is_private_and_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(KEY_FILE_NAME);
    generate_key_file(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(first.contains("BACK THIS FILE UP"));
    generate_key_file(&path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    let ring = read_key_file(&path, KeySource::DataDir(path.clone()), None).unwrap();
    assert!(ring.active_id().starts_with('k'));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_key_file_others_may_read_stops_the_start_with_the_chmod_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(KEY_FILE_NAME);
    generate_key_file(&path).unwrap();
    for mode in [0o644, 0o640, 0o604, 0o620] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = read_key_file(&path, KeySource::DataDir(path.clone()), None).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", path.display())),
            "{text}"
        );
        assert!(text.contains(&format!("{mode:04o}")), "{text}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert!(read_key_file(&path, KeySource::DataDir(path.clone()), None).is_ok());
}

proptest! {
    #[test]
    fn round_trip_any_plaintext(plaintext in prop::collection::vec(any::<u8>(), 0..=4096)) {
        let ring = ring();
        let ct = ring.encrypt(&plaintext, &binding()).unwrap();
        prop_assert_eq!(&**ring.decrypt(&ct, &binding()).unwrap(), plaintext.as_slice());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        prop_assert!(ring().decrypt(&bytes, &binding()).is_err());
    }
}

#[test]
fn edge_lengths_round_trip() {
    let ring = ring();
    for len in [0, 1, 4096] {
        let plaintext = vec![0xA5; len];
        let ct = ring.encrypt(&plaintext, &binding()).unwrap();
        assert_eq!(
            &**ring.decrypt(&ct, &binding()).unwrap(),
            plaintext.as_slice()
        );
    }
}

#[test]
fn index_hashes_are_keyed_per_master_key_active_first() {
    let ring = ring();
    let token = b"83_token-value";
    let hashes = ring.index_hashes(token);
    assert_eq!(hashes.len(), 2);
    assert_eq!(hashes[0].0, ring.active_id());
    assert_ne!(hashes[0].1, hashes[1].1, "one hash per key");
    assert_eq!(ring.index_hashes(token), hashes, "deterministic");
    assert_ne!(ring.index_hashes(b"83_token-valuf")[0].1, hashes[0].1);
    let plain: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(token).into();
    assert!(
        hashes.iter().all(|(_, h)| *h != plain),
        "keyed, not a bare SHA-256"
    );
    let other = ring.with_active("k1").unwrap();
    let swapped = other.index_hashes(token);
    assert_eq!(swapped[0].0, "k1");
    assert!(
        hashes.contains(&swapped[0]),
        "the same key gives the same hash"
    );
}
