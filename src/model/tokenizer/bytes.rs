//! Byte-level spellings: GPT-2's printable stand-in for each byte, and bytes shown as text.

/// GPT-2's `bytes_to_unicode`: each byte's printable stand-in character.
pub(super) fn byte_alphabet() -> [char; 256] {
    let mut table = ['\0'; 256];
    let printable = |b: u32| {
        (u32::from('!')..=u32::from('~')).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut next = 256u32;
    for b in 0..256u32 {
        let code = if printable(b) {
            b
        } else {
            next += 1;
            next - 1
        };
        table[b as usize] = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
    }
    table
}

/// A byte-level token's bytes (characters outside the alphabet are kept as their UTF-8).
pub(super) fn byte_level_bytes(token: &str) -> Vec<u8> {
    let table = byte_alphabet();
    let mut out = Vec::with_capacity(token.len());
    for c in token.chars() {
        match table.iter().position(|&t| t == c) {
            Some(b) => out.push(b as u8),
            None => out.extend_from_slice(c.to_string().as_bytes()),
        }
    }
    out
}

/// Bytes as text, with invalid UTF-8 written as `\xNN`.
pub(super) fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn byte_alphabet_matches_gpt2() {
        let table = byte_alphabet();
        assert_eq!(table[b'a' as usize], 'a');
        assert_eq!(table[b' ' as usize], 'Ġ');
        assert_eq!(table[b'\n' as usize], 'Ċ');
        assert_eq!(table[0], 'Ā');
        assert_eq!(table[0xAD], 'Ń');
        assert_eq!(table.iter().collect::<HashSet<_>>().len(), 256);
    }
}
