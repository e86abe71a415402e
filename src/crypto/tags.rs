//! Values the browser holds for the server (the pre-session cookie's form
//! token, the cookie between the two sign-in steps): an HMAC of the value
//! under the ring's index keys, prefixed with a purpose of its own so a tag
//! made for one use is never taken for another. A tag is checked against
//! every key of the ring, so tags made before a rotation keep working
//! while their key is in the ring.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq as _;

use super::KeyRing;

impl KeyRing {
    /// The tags of `body` for `purpose` (base64url), one per key of the
    /// ring, the active key's first.
    #[must_use]
    pub fn tags(&self, purpose: &str, body: &[u8]) -> Vec<String> {
        let input = [purpose.as_bytes(), b"\0", body].concat();
        self.index_hashes(&input)
            .into_iter()
            .map(|(_, mac)| URL_SAFE_NO_PAD.encode(mac))
            .collect()
    }

    /// The tag of `body` for `purpose` under the active key.
    #[must_use]
    pub fn tag(&self, purpose: &str, body: &[u8]) -> String {
        self.tags(purpose, body).swap_remove(0)
    }

    /// Whether `sent` is a tag of `body` for `purpose` under a key of the
    /// ring (compared in constant time).
    #[must_use]
    pub fn tag_matches(&self, purpose: &str, body: &[u8], sent: &str) -> bool {
        self.tags(purpose, body)
            .iter()
            .any(|t| bool::from(t.as_bytes().ct_eq(sent.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use crate::crypto::{KeyRing, generate_entry};

    fn ring(entries: &[&str]) -> KeyRing {
        KeyRing::parse(&entries.join(",")).unwrap()
    }

    #[test]
    fn a_tag_is_taken_only_for_its_purpose_and_body_and_across_a_rotation() {
        let (old, new) = (generate_entry("k1").unwrap(), generate_entry("k2").unwrap());
        let before = ring(&[&old]);
        let tag = before.tag("tokenvault/test/v1", b"value");
        assert!(before.tag_matches("tokenvault/test/v1", b"value", &tag));
        assert!(!before.tag_matches("tokenvault/other/v1", b"value", &tag));
        assert!(!before.tag_matches("tokenvault/test/v1", b"valu", &tag));
        assert!(!before.tag_matches("tokenvault/test/v1", b"value", &tag[1..]));
        // After a rotation (new key active, old one kept) the old tag holds;
        // once the old key has left the ring it does not.
        let rotated = ring(&[&new, &old]);
        assert!(rotated.tag_matches("tokenvault/test/v1", b"value", &tag));
        assert_ne!(rotated.tag("tokenvault/test/v1", b"value"), tag);
        assert!(!ring(&[&new]).tag_matches("tokenvault/test/v1", b"value", &tag));
    }
}
