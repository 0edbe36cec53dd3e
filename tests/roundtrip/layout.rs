//! The shape of a rendered zone file, checked line by line without BIND:
//! the header, then exactly one line per record in the template's columns,
//! so that no value can have injected a directive, a comment, a line or a
//! column.

use zoneagent::validate::ValidatedZone;

/// Checks `text`, rendered from `zone` with `$TTL default_ttl`.
pub fn check(text: &str, zone: &ValidatedZone, default_ttl: u32) -> Result<(), String> {
    if let Some(b) = text
        .bytes()
        .find(|b| !matches!(b, b'\t' | b'\n' | 0x20..=0x7e))
    {
        return Err(format!(
            "byte {b:#04x} outside printable ASCII, tab and newline"
        ));
    }
    let body = text
        .strip_suffix('\n')
        .ok_or("the file does not end with a newline")?;
    let lines: Vec<&str> = body.split('\n').collect();
    let want = 5 + zone.record_count();
    if lines.len() != want {
        return Err(format!(
            "{} lines, expected 2 comments, $ORIGIN, $TTL, SOA and {} records",
            lines.len(),
            zone.record_count()
        ));
    }
    for (i, line) in lines.iter().enumerate() {
        let wrong = |why: &str| Err(format!("line {}: {why}: {line:?}", i + 1));
        match i {
            0 | 1 if !line.starts_with(';') => return wrong("expected a comment"),
            2 if *line != format!("$ORIGIN {}.", zone.origin.as_str()) => {
                return wrong("expected $ORIGIN");
            }
            3 if *line != format!("$TTL {default_ttl}") => return wrong("expected $TTL"),
            0..=3 => {}
            _ => {
                if let Err(e) = record_line(line, i == 4) {
                    return wrong(&e);
                }
            }
        }
    }
    Ok(())
}

/// `owner<TAB>ttl<TAB>IN<TAB>TYPE<TAB>rdata`, the rdata a run of tokens of
/// the number the type calls for.
fn record_line(line: &str, soa: bool) -> Result<(), String> {
    let cols: Vec<&str> = line.split('\t').collect();
    let [owner, ttl, class, rtype, rdata] = cols.as_slice() else {
        return Err(format!("{} tab-separated columns, expected 5", cols.len()));
    };
    let owner_ok = *owner == "@"
        || (!owner.is_empty()
            && owner.split('.').all(|l| {
                !l.is_empty()
                    && (l == "*"
                        || l.bytes().all(|b| {
                            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                        }))
            }));
    if !owner_ok {
        return Err("the owner is not `@` or a relative name".to_owned());
    }
    if ttl.is_empty() || !ttl.bytes().all(|b| b.is_ascii_digit()) || ttl.parse::<u32>().is_err() {
        return Err("the TTL is not a number".to_owned());
    }
    if *class != "IN" {
        return Err("the class is not IN".to_owned());
    }
    let tokens = tokens(rdata)?;
    let quoted = tokens.iter().filter(|t| t.starts_with('"')).count();
    let n = tokens.len();
    let ok = match *rtype {
        "SOA" => soa && n == 7 && quoted == 0,
        "A" | "AAAA" | "CNAME" | "NS" => n == 1 && quoted == 0,
        "MX" => n == 2 && quoted == 0,
        "SRV" => n == 4 && quoted == 0,
        "TXT" => n >= 1 && quoted == n,
        "CAA" => n == 3 && quoted == 1 && tokens[2].starts_with('"'),
        _ => return Err(format!("unknown type {rtype}")),
    };
    if !ok || (soa != (*rtype == "SOA")) {
        return Err(format!("{n} rdata tokens ({quoted} quoted) for {rtype}"));
    }
    Ok(())
}

/// Splits rdata on single spaces into bare words (letters, digits, `.`,
/// `:`, `-`, `_`) and quoted strings whose escapes are all `\"`, `\\` or
/// `\DDD`.
fn tokens(rdata: &str) -> Result<Vec<&str>, String> {
    let b = rdata.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i] == b'"' {
            i += 1;
            loop {
                match b.get(i) {
                    None => return Err("an unterminated quoted string".to_owned()),
                    Some(b'"') => break,
                    Some(b'\\') => match b.get(i + 1) {
                        Some(b'"' | b'\\') => i += 2,
                        Some(b'0'..=b'2')
                            if b.get(i + 2..i + 4)
                                .is_some_and(|d| d.iter().all(u8::is_ascii_digit)) =>
                        {
                            let n: u32 = rdata[i + 1..i + 4].parse().unwrap_or(999);
                            if n > 255 {
                                return Err(format!("escape \\{n}"));
                            }
                            i += 4;
                        }
                        _ => return Err("a backslash escape other than \\\" \\\\ \\DDD".to_owned()),
                    },
                    Some(_) => i += 1,
                }
            }
            i += 1;
        } else {
            while i < b.len() && b[i] != b' ' {
                if !(b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b':' | b'-' | b'_')) {
                    return Err(format!("{:?} outside quotes", char::from(b[i])));
                }
                i += 1;
            }
        }
        out.push(&rdata[start..i]);
        match b.get(i) {
            None => {}
            Some(b' ') if i + 1 < b.len() => i += 1,
            Some(_) => return Err("tokens not separated by one space".to_owned()),
        }
    }
    if out.is_empty() {
        return Err("empty rdata".to_owned());
    }
    Ok(out)
}
