//! Record types and record values in one canonical text form, so that two spellings of the
//! same record compare equal: names lower-cased with a trailing dot, addresses in their
//! shortest form, TXT as its joined text, MX/SRV/CAA with single spaces and CAA values quoted.
//!
//! Parsing accepts what people write (a name without its trailing dot, a TXT value with or
//! without quotes, split into chunks or not); [`canonical`] turns it into the one form the
//! backends read back and compare against.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The record types `platform_dns_record` manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
    Txt,
    Mx,
    Srv,
    Caa,
    Ns,
    Ptr,
}

impl RecordType {
    pub const ALL: [RecordType; 9] = [
        RecordType::A,
        RecordType::Aaaa,
        RecordType::Cname,
        RecordType::Txt,
        RecordType::Mx,
        RecordType::Srv,
        RecordType::Caa,
        RecordType::Ns,
        RecordType::Ptr,
    ];

    /// Parses a type as written, in any case.
    pub fn parse(text: &str) -> Option<RecordType> {
        RecordType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(text))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
            RecordType::Txt => "TXT",
            RecordType::Mx => "MX",
            RecordType::Srv => "SRV",
            RecordType::Caa => "CAA",
            RecordType::Ns => "NS",
            RecordType::Ptr => "PTR",
        }
    }

    /// The type's number on the wire (RFC 1035, 3596, 2782, 8659).
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Ns => 2,
            RecordType::Cname => 5,
            RecordType::Ptr => 12,
            RecordType::Mx => 15,
            RecordType::Txt => 16,
            RecordType::Aaaa => 28,
            RecordType::Srv => 33,
            RecordType::Caa => 257,
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The canonical form of one record value of type `rtype`, or why it does not parse.
pub fn canonical(rtype: RecordType, text: &str) -> Result<String, String> {
    let text = text.trim();
    match rtype {
        RecordType::A => text
            .parse::<Ipv4Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{text:?} is not an IPv4 address")),
        RecordType::Aaaa => text
            .parse::<Ipv6Addr>()
            .map(|a| a.to_string())
            .map_err(|_| format!("{text:?} is not an IPv6 address")),
        RecordType::Cname | RecordType::Ns | RecordType::Ptr => absolute_name(text),
        RecordType::Txt => txt_text(text),
        RecordType::Mx => {
            let fields = fields(text, 2, "MX", "<preference> <mail server>")?;
            let preference = number::<u16>(fields[0], "MX preference")?;
            Ok(format!("{preference} {}", absolute_name(fields[1])?))
        }
        RecordType::Srv => {
            let fields = fields(text, 4, "SRV", "<priority> <weight> <port> <target>")?;
            let priority = number::<u16>(fields[0], "SRV priority")?;
            let weight = number::<u16>(fields[1], "SRV weight")?;
            let port = number::<u16>(fields[2], "SRV port")?;
            Ok(format!("{priority} {weight} {port} {}", absolute_name(fields[3])?))
        }
        RecordType::Caa => {
            let caa = Caa::parse(text)?;
            Ok(caa.to_string())
        }
    }
}

/// `text` split on whitespace into exactly `n` fields.
fn fields<'a>(text: &'a str, n: usize, what: &str, shape: &str) -> Result<Vec<&'a str>, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != n {
        return Err(format!("{text:?} is not a {what} value: expected \"{shape}\""));
    }
    Ok(fields)
}

fn number<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    text.parse::<T>().map_err(|_| format!("{what} {text:?} is not a number in range"))
}

/// A domain name as an absolute, lower-case name with its trailing dot. A name written
/// without the dot is taken as absolute too (`mail.example.com` is `mail.example.com.`).
pub fn absolute_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    if name == "." {
        return Ok(".".to_string());
    }
    let bare = name.strip_suffix('.').unwrap_or(name);
    if bare.is_empty() {
        return Err("a name may not be empty".to_string());
    }
    if bare.len() > 253 {
        return Err(format!("{name:?} is longer than 253 characters"));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!("{name:?} has a label longer than 63 characters"));
        }
        if let Some(c) = label.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '*')) {
            return Err(format!("{name:?} contains {c:?}; names may hold letters, digits, '-', '_' and '*'"));
        }
    }
    Ok(format!("{}.", bare.to_ascii_lowercase()))
}

/// The text of a TXT record: either plain text, or one or more quoted strings as zone files
/// write them (`"v=DKIM1; k=rsa; " "p=MIIB..."`), which are joined.
fn txt_text(text: &str) -> Result<String, String> {
    if !text.starts_with('"') {
        return Ok(text.to_string());
    }
    let chunks = quoted_strings(text)?;
    Ok(chunks.concat())
}

/// Splits a sequence of quoted strings (with `\"`, `\\` and `\DDD` escapes) into their texts.
pub fn quoted_strings(text: &str) -> Result<Vec<String>, String> {
    let mut chunks = Vec::new();
    let mut chars = text.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some('"') => {}
            Some(c) => return Err(format!("{text:?}: expected a quoted string, found {c:?}")),
        }
        let mut bytes = Vec::new();
        loop {
            match chars.next() {
                None => return Err(format!("{text:?}: a quoted string is not closed")),
                Some('"') => break,
                Some('\\') => {
                    let Some(next) = chars.next() else { return Err(format!("{text:?} ends in a lone backslash")) };
                    if next.is_ascii_digit() {
                        let mut digits = String::from(next);
                        for _ in 0..2 {
                            match chars.next() {
                                Some(d) if d.is_ascii_digit() => digits.push(d),
                                _ => return Err(format!("{text:?}: \\DDD escapes need three digits")),
                            }
                        }
                        let byte = digits.parse::<u16>().ok().filter(|b| *b <= 255).ok_or_else(|| format!("{text:?}: \\{digits} is not a byte"))?;
                        bytes.push(byte as u8);
                    } else {
                        let mut buf = [0; 4];
                        bytes.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                    }
                }
                Some(c) => {
                    let mut buf = [0; 4];
                    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        chunks.push(String::from_utf8(bytes).map_err(|_| format!("{text:?} is not UTF-8 text"))?);
    }
    if chunks.is_empty() {
        return Err(format!("{text:?} holds no quoted string"));
    }
    Ok(chunks)
}

/// A string quoted for zone files and DNS APIs: `"` and `\` escaped, other bytes as they are.
pub fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The TXT text cut into the strings of at most 255 bytes that go on the wire, never
/// inside a UTF-8 character. Empty text is one empty string.
pub fn txt_chunks(text: &str) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut rest = text;
    while rest.len() > 255 {
        let mut cut = 255;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (chunk, tail) = rest.split_at(cut);
        chunks.push(chunk);
        rest = tail;
    }
    chunks.push(rest);
    chunks
}

/// TXT text as zone files and PowerDNS write it: its chunks, each quoted.
pub fn txt_presentation(text: &str) -> String {
    txt_chunks(text).into_iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// A CAA value: flags, tag, value (RFC 8659).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caa {
    pub flags: u8,
    pub tag: String,
    pub value: String,
}

impl Caa {
    /// Parses `0 issue "letsencrypt.org"` (the value may be unquoted when it has no spaces).
    pub fn parse(text: &str) -> Result<Caa, String> {
        let shape = || format!("{text:?} is not a CAA value: expected `<flags> <tag> \"<value>\"`, e.g. `0 issue \"letsencrypt.org\"`");
        let text = text.trim();
        let (flags, rest) = text.split_once(char::is_whitespace).ok_or_else(shape)?;
        let (tag, value) = rest.trim_start().split_once(char::is_whitespace).ok_or_else(shape)?;
        let flags = number::<u8>(flags, "CAA flags")?;
        let tag = tag.to_ascii_lowercase();
        if tag.is_empty() || tag.len() > 15 || !tag.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(format!("CAA tag {tag:?} must be 1 to 15 letters or digits, e.g. issue, issuewild or iodef"));
        }
        let value = value.trim();
        let value = if value.starts_with('"') {
            let strings = quoted_strings(value)?;
            if strings.len() != 1 {
                return Err(format!("{text:?}: a CAA value is one quoted string"));
            }
            strings.into_iter().next().unwrap_or_default()
        } else if value.contains(char::is_whitespace) {
            return Err(shape());
        } else {
            value.to_string()
        };
        Ok(Caa { flags, tag, value })
    }
}

impl fmt::Display for Caa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.flags, self.tag, quote(&self.value))
    }
}

/// An MX or SRV target, or a CNAME/NS/PTR name, split from its numeric fields.
pub fn split_numbers(rtype: RecordType, canonical: &str) -> (Vec<u16>, &str) {
    let n = match rtype {
        RecordType::Mx => 1,
        RecordType::Srv => 3,
        _ => 0,
    };
    let mut parts = canonical.splitn(n + 1, ' ');
    let numbers = (0..n).filter_map(|_| parts.next().and_then(|p| p.parse().ok())).collect();
    (numbers, parts.next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_in_any_case() {
        assert_eq!(RecordType::parse("aaaa"), Some(RecordType::Aaaa));
        assert_eq!(RecordType::parse("Caa"), Some(RecordType::Caa));
        assert_eq!(RecordType::parse("SOA"), None);
        for t in RecordType::ALL {
            assert_eq!(RecordType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn addresses_take_their_shortest_form() {
        assert_eq!(canonical(RecordType::Aaaa, "2001:0DB8:0000::0001").unwrap(), "2001:db8::1");
        assert_eq!(canonical(RecordType::A, " 10.0.0.1 ").unwrap(), "10.0.0.1");
        assert!(canonical(RecordType::A, "10.0.0.256").unwrap_err().contains("IPv4"));
        assert!(canonical(RecordType::A, "::1").is_err());
        assert!(canonical(RecordType::Aaaa, "10.0.0.1").unwrap_err().contains("IPv6"));
    }

    #[test]
    fn names_are_absolute_and_lower_case() {
        assert_eq!(canonical(RecordType::Cname, "Ingress.Example.COM").unwrap(), "ingress.example.com.");
        assert_eq!(canonical(RecordType::Cname, "ingress.example.com.").unwrap(), "ingress.example.com.");
        assert!(canonical(RecordType::Ns, "a..b").is_err());
        assert!(canonical(RecordType::Ptr, "a b").is_err());
    }

    #[test]
    fn mx_srv_and_caa_fields_are_spaced_once() {
        assert_eq!(canonical(RecordType::Mx, "10   Mail.example.com").unwrap(), "10 mail.example.com.");
        assert!(canonical(RecordType::Mx, "mail.example.com").unwrap_err().contains("MX"));
        assert!(canonical(RecordType::Mx, "70000 mail.example.com").unwrap_err().contains("preference"));
        assert_eq!(canonical(RecordType::Srv, "0 5  5060 sip.example.com").unwrap(), "0 5 5060 sip.example.com.");
        assert!(canonical(RecordType::Srv, "0 5 sip.example.com").is_err());
        assert_eq!(canonical(RecordType::Caa, "0 ISSUE letsencrypt.org").unwrap(), "0 issue \"letsencrypt.org\"");
        assert_eq!(canonical(RecordType::Caa, "128  iodef \"mailto:a@b.c\"").unwrap(), "128 iodef \"mailto:a@b.c\"");
        assert!(canonical(RecordType::Caa, "0 issue").is_err());
        assert!(canonical(RecordType::Caa, "300 issue \"x\"").is_err());
    }

    #[test]
    fn txt_quoted_or_not_is_one_text() {
        assert_eq!(canonical(RecordType::Txt, "v=spf1 -all").unwrap(), "v=spf1 -all");
        assert_eq!(canonical(RecordType::Txt, "\"v=spf1 -all\"").unwrap(), "v=spf1 -all");
        assert_eq!(canonical(RecordType::Txt, "\"v=DKIM1; \" \"p=abc\"").unwrap(), "v=DKIM1; p=abc");
        assert_eq!(canonical(RecordType::Txt, r#""say \"hi\" \\ \065""#).unwrap(), "say \"hi\" \\ A");
        assert!(canonical(RecordType::Txt, "\"open").is_err());
    }

    #[test]
    fn long_txt_is_cut_into_255_byte_strings() {
        let text = "x".repeat(600);
        let chunks = txt_chunks(&text);
        assert_eq!(chunks.iter().map(|c| c.len()).collect::<Vec<_>>(), vec![255, 255, 90]);
        assert_eq!(txt_chunks(""), vec![""]);
        let wide = "é".repeat(200); // 400 bytes, two per character
        assert!(txt_chunks(&wide).iter().all(|c| c.len() <= 255));
        assert_eq!(txt_chunks(&wide).concat(), wide);
        assert_eq!(canonical(RecordType::Txt, &txt_presentation(&text)).unwrap(), text);
    }
}
