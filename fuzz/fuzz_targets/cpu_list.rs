//! fuse-uring's parser of the kernel's CPU lists (`/sys/devices/system/cpu/possible`, from
//! which the queue ids come): any text is either refused or gives a sorted, de-duplicated
//! list of at most 65536 CPUs, each of which the text names.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match fuse_uring::parse_cpu_list(text) {
        Ok(cpus) => {
            assert!(!cpus.is_empty() && cpus.len() <= 1 << 16, "{text:?}");
            assert!(
                cpus.windows(2).all(|w| w[0] < w[1]),
                "not sorted and unique"
            );
            // Every CPU lies in one of the text's ranges.
            let ranges: Vec<(u32, u32)> = text
                .trim()
                .split(',')
                .map(|p| match p.split_once('-') {
                    Some((a, b)) => (a.parse().expect("parsed"), b.parse().expect("parsed")),
                    None => (p.parse().expect("parsed"), p.parse().expect("parsed")),
                })
                .collect();
            for c in [cpus[0], cpus[cpus.len() / 2], cpus[cpus.len() - 1]] {
                assert!(
                    ranges.iter().any(|&(a, b)| a <= c && c <= b),
                    "{c} in {text:?}"
                );
            }
        }
        Err(e) => assert!(e.to_string().contains("malformed CPU list")),
    }
});
