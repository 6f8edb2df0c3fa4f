//! TensorBoard scalar events, in the event-file format `tensorboard --logdir` reads.
//!
//! An event file is a sequence of records: `u64` length (little-endian), the masked CRC-32C
//! of those 8 bytes, the payload, the masked CRC-32C of the payload. Each payload is an `Event`
//! protocol buffer; the first one carries `file_version: "brain.Event:2"`, the others a
//! `Summary` with one `simple_value` per tag. The protocol buffers are encoded by hand here
//! (five fields), so no protobuf dependency is needed.

/// Scalar events of one run, encoded as an event file.
#[derive(Clone, Debug)]
pub struct EventFile {
    bytes: Vec<u8>,
}

impl EventFile {
    /// A new file whose first event (the version record) is stamped `wall_time` (seconds since
    /// the Unix epoch).
    pub fn new(wall_time: f64) -> Self {
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time);
        put_bytes(&mut event, 3, b"brain.Event:2");
        let mut file = Self { bytes: Vec::new() };
        file.record(&event);
        file
    }

    /// Appends one event holding `value` under `tag` at `step`.
    pub fn scalar(&mut self, tag: &str, step: i64, value: f32, wall_time: f64) {
        let mut value_msg = Vec::new();
        put_bytes(&mut value_msg, 1, tag.as_bytes());
        put_float(&mut value_msg, 2, value);
        let mut summary = Vec::new();
        put_bytes(&mut summary, 1, &value_msg);
        let mut event = Vec::new();
        put_double(&mut event, 1, wall_time);
        put_varint_field(&mut event, 2, step as u64);
        put_bytes(&mut event, 5, &summary);
        self.record(&event);
    }

    /// The file's bytes so far.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    fn record(&mut self, payload: &[u8]) {
        let len = (payload.len() as u64).to_le_bytes();
        self.bytes.extend_from_slice(&len);
        self.bytes.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
        self.bytes.extend_from_slice(payload);
        self.bytes.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    }
}

/// The conventional file name: `events.out.tfevents.<seconds>.<host>`.
pub fn file_name(wall_time: f64, host: &str) -> String {
    format!("events.out.tfevents.{}.{host}", wall_time as u64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    put_varint(out, u64::from(field) << 3);
    put_varint(out, v);
}

fn put_double(out: &mut Vec<u8>, field: u32, v: f64) {
    put_varint(out, (u64::from(field) << 3) | 1);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_float(out: &mut Vec<u8>, field: u32, v: f32) {
    put_varint(out, (u64::from(field) << 3) | 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
    put_varint(out, (u64::from(field) << 3) | 2);
    put_varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: event files are small.
pub fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}

/// The record format's masked CRC: rotate right by 15 and add a constant.
fn masked_crc32c(data: &[u8]) -> u32 {
    crc32c(data).rotate_right(15).wrapping_add(0xa282_ead8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_matches_its_check_values() {
        // The standard check value of CRC-32C, and RFC 3720's 32 zero bytes.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    }

    /// Splits an event file back into payloads, checking every length and CRC.
    fn records(mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), masked_crc32c(&bytes[..8]));
            let payload = &bytes[12..12 + len];
            assert_eq!(u32::from_le_bytes(bytes[12 + len..16 + len].try_into().unwrap()), masked_crc32c(payload));
            out.push(payload.to_vec());
            bytes = &bytes[16 + len..];
        }
        out
    }

    #[test]
    fn records_frame_the_events_as_protocol_buffers() {
        let mut f = EventFile::new(1.5);
        f.scalar("valid/accuracy", 3, 0.875, 2.0);
        let r = records(f.bytes());
        assert_eq!(r.len(), 2);
        // Event { wall_time: 1.5, file_version: "brain.Event:2" }
        let mut first = vec![0x09];
        first.extend_from_slice(&1.5f64.to_le_bytes());
        first.extend_from_slice(&[0x1a, 13]);
        first.extend_from_slice(b"brain.Event:2");
        assert_eq!(r[0], first);
        // Event { wall_time: 2.0, step: 3, summary { value { tag, simple_value: 0.875 } } }
        let mut value = vec![0x0a, 14];
        value.extend_from_slice(b"valid/accuracy");
        value.push(0x15);
        value.extend_from_slice(&0.875f32.to_le_bytes());
        let mut second = vec![0x09];
        second.extend_from_slice(&2.0f64.to_le_bytes());
        second.extend_from_slice(&[0x10, 3, 0x2a, value.len() as u8 + 2, 0x0a, value.len() as u8]);
        second.extend_from_slice(&value);
        assert_eq!(r[1], second);
        assert_eq!(file_name(1_795_432_663.7, "vm"), "events.out.tfevents.1795432663.vm");
    }

    #[test]
    fn varints_use_seven_bits_per_byte() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
    }
}
