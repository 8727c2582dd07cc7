//! Digests as the files and errors spell them.

/// Lower-case hexadecimal of a digest (teacher and data SHA-256, checkpoint fingerprints).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
