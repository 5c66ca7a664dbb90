//! The decoder on arbitrary bytes: it must never panic or read out of
//! bounds, whatever the link type. The first byte picks the link type.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netsmith::sniff::decode::{LinkType, decode};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, frame)) = data.split_first() else {
        return;
    };
    let link = match pick % 3 {
        0 => LinkType::Ethernet,
        1 => LinkType::RawIp,
        _ => LinkType::LinuxSll,
    };
    let packet = decode(link, frame);
    // Formatting walks every decoded field too.
    let _ = format!("{packet:?}");
});
