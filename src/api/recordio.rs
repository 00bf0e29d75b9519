//! RecordIO, the framing of Mesos's v1 streaming APIs: each record is its
//! length in decimal ASCII, a newline, then that many bytes. Chunk boundaries
//! mean nothing; a decoder must take bytes as they come.

use bytes::{Buf, Bytes, BytesMut};

use super::error::error_chain;

/// One record: `<len>\n<json>`.
pub fn encode<T: serde::Serialize + ?Sized>(value: &T) -> Bytes {
    let body = serde_json::to_vec(value).expect("an event serializes");
    let mut out = BytesMut::with_capacity(body.len() + 12);
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\n");
    out.extend_from_slice(&body);
    out.freeze()
}

/// Largest record accepted, so a broken peer cannot make us buffer forever.
const MAX_RECORD: usize = 64 * 1024 * 1024;

#[derive(Default)]
pub struct Decoder {
    buf: BytesMut,
}

impl Decoder {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole record, if one has arrived.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, String> {
        let Some(newline) = self.buf.iter().position(|b| *b == b'\n') else {
            if self.buf.len() > 20 {
                return Err("RecordIO: a length longer than 20 digits".into());
            }
            return Ok(None);
        };
        let len: usize = std::str::from_utf8(&self.buf[..newline])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .filter(|l| *l > 0 && *l <= MAX_RECORD)
            .ok_or_else(|| "RecordIO: a record length that is not a positive number".to_string())?;
        if self.buf.len() < newline + 1 + len {
            return Ok(None);
        }
        self.buf.advance(newline + 1);
        Ok(Some(self.buf.split_to(len).freeze()))
    }
}

/// The records of a RecordIO event stream read off an HTTP response, as the
/// agents (real and simulated) read the master's: one at a time, each whole.
pub struct EventStream {
    response: reqwest::Response,
    decoder: Decoder,
}

impl EventStream {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            decoder: Decoder::default(),
        }
    }

    /// The next record; None once the other side has closed the stream; an
    /// error for a broken stream or nothing heard for `silence`. Safe to drop
    /// while it waits (in a `select!`): what arrived is kept for the next call.
    pub async fn next(&mut self, silence: std::time::Duration) -> Result<Option<Bytes>, String> {
        loop {
            if let Some(record) = self.decoder.next_record()? {
                return Ok(Some(record));
            }
            match tokio::time::timeout(silence, self.response.chunk()).await {
                Err(_) => return Err(format!("no event from the master for {silence:?}")),
                Ok(Err(e)) => return Err(error_chain(&e)),
                Ok(Ok(None)) => return Ok(None),
                Ok(Ok(Some(chunk))) => self.decoder.push(&chunk),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_any_chunking() {
        let a = encode(&serde_json::json!({"type": "SUBSCRIBED"}));
        let b = encode(&serde_json::json!({"type": "HEARTBEAT"}));
        let all = [a.as_ref(), b.as_ref()].concat();
        for split in 0..all.len() {
            let mut d = Decoder::default();
            let mut got = Vec::new();
            for chunk in [&all[..split], &all[split..]] {
                d.push(chunk);
                while let Some(r) = d.next_record().unwrap() {
                    got.push(r);
                }
            }
            assert_eq!(got.len(), 2, "split at {split}");
            assert_eq!(&got[1][..], br#"{"type":"HEARTBEAT"}"#);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = Decoder::default();
        d.push(b"abc\n{}");
        assert!(d.next_record().is_err());
    }
}
