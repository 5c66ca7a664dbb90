//! The filter parser on arbitrary text, and a parsed filter on a packet
//! decoded from the rest of the input: errors are values, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsmith::sniff::decode::{LinkType, decode};
use netsmith::sniff::filter;

fuzz_target!(|data: &[u8]| {
    // Text up to the first NUL is the filter; the bytes after, a frame.
    let (text, frame) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    match filter::parse(text) {
        Ok(f) => {
            let _ = f.matches(&decode(LinkType::Ethernet, frame));
        }
        Err(e) => assert!(e.position >= 1 && e.position <= text.chars().count() + 1),
    }
});
