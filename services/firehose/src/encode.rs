//! An object's bytes: the buffer's records one after another (each followed by the
//! delimiter AppendDelimiterToRecord asks for), then compressed as the destination
//! says: GZIP, Snappy (the framing format), or HADOOP_SNAPPY (Hadoop's block format:
//! per block of input, its length, then each compressed piece with its length, all
//! big-endian u32).

use std::io::Write as _;

use bytes::Bytes;

use crate::shapes::Compression;

/// Hadoop's SnappyCodec compresses input in blocks of this many bytes.
const HADOOP_SNAPPY_BLOCK: usize = 256 * 1024;

/// The records joined, each followed by `delimiter`.
pub fn join(records: &[Bytes], delimiter: Option<&[u8]>) -> Vec<u8> {
    let extra = delimiter.map_or(0, <[u8]>::len);
    let mut out = Vec::with_capacity(records.iter().map(|r| r.len() + extra).sum());
    for r in records {
        out.extend_from_slice(r);
        if let Some(d) = delimiter {
            out.extend_from_slice(d);
        }
    }
    out
}

/// The records as lines: each followed by a newline unless it ends with one.
pub fn lines(records: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.iter().map(|r| r.len() + 1).sum());
    for r in records {
        out.extend_from_slice(r);
        if !r.ends_with(b"\n") {
            out.push(b'\n');
        }
    }
    out
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::fast(),
    );
    encoder.write_all(data).expect("writing to memory");
    encoder.finish().expect("writing to memory")
}

fn snappy_framed(data: &[u8]) -> Vec<u8> {
    let mut encoder = snap::write::FrameEncoder::new(Vec::with_capacity(data.len() / 2));
    encoder.write_all(data).expect("writing to memory");
    encoder.into_inner().expect("writing to memory")
}

fn hadoop_snappy(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2);
    let mut encoder = snap::raw::Encoder::new();
    for block in data.chunks(HADOOP_SNAPPY_BLOCK) {
        let compressed = encoder
            .compress_vec(block)
            .expect("a block within snappy's limit");
        out.extend_from_slice(&(block.len() as u32).to_be_bytes());
        out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    out
}

/// The object's body.
pub fn compress(data: Vec<u8>, compression: Compression) -> Vec<u8> {
    match compression {
        Compression::Uncompressed => data,
        Compression::Gzip => gzip(&data),
        Compression::Snappy => snappy_framed(&data),
        Compression::HadoopSnappy => hadoop_snappy(&data),
        Compression::Zip => crate::zip::single_entry(&data, "data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn sample() -> Vec<u8> {
        join(
            &[
                Bytes::from_static(b"{\"a\":1}"),
                Bytes::from_static(b"{\"a\":2}"),
            ],
            Some(b"\n"),
        )
    }

    #[test]
    fn records_are_joined_with_the_delimiter() {
        assert_eq!(sample(), b"{\"a\":1}\n{\"a\":2}\n");
        assert_eq!(
            join(&[Bytes::from_static(b"x"), Bytes::from_static(b"y")], None),
            b"xy"
        );
    }

    #[test]
    fn gzip_reads_back() {
        let body = compress(sample(), Compression::Gzip);
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, sample());
    }

    #[test]
    fn snappy_reads_back() {
        let body = compress(sample(), Compression::Snappy);
        let mut out = Vec::new();
        snap::read::FrameDecoder::new(&body[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, sample());
    }

    #[test]
    fn hadoop_snappy_blocks_read_back() {
        let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
        let body = compress(data.clone(), Compression::HadoopSnappy);
        let mut out = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let raw = u32::from_be_bytes(body[at..at + 4].try_into().unwrap()) as usize;
            let len = u32::from_be_bytes(body[at + 4..at + 8].try_into().unwrap()) as usize;
            let block = snap::raw::Decoder::new()
                .decompress_vec(&body[at + 8..at + 8 + len])
                .unwrap();
            assert_eq!(block.len(), raw);
            out.extend(block);
            at += 8 + len;
        }
        assert_eq!(out, data);
    }
}
