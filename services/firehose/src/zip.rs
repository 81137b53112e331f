//! A ZIP archive of one deflated entry (Firehose's ZIP compression), laid out as the
//! PKWARE application note describes: a local file header, the data, one central
//! directory header and the end-of-central-directory record. A buffer is at most
//! 128 MiB, so the 32-bit sizes of the classic format always suffice.

use std::io::Write as _;

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
/// Version 2.0: deflate.
const VERSION: u16 = 20;
const DEFLATED: u16 = 8;
/// 1980-01-01 00:00 in MS-DOS date and time.
const DOS_TIME: u16 = 0;
const DOS_DATE: u16 = (1 << 5) | 1;

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// `data` as the one entry `name` of a ZIP archive.
pub fn single_entry(data: &[u8], name: &str) -> Vec<u8> {
    let mut deflater = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(data.len() / 3),
        flate2::Compression::fast(),
    );
    deflater.write_all(data).expect("writing to memory");
    let deflated = deflater.finish().expect("writing to memory");
    let crc = CRC32.checksum(data);
    let sizes = (deflated.len() as u32, data.len() as u32);
    let mut out = Vec::with_capacity(deflated.len() + 2 * name.len() + 128);
    let header = |out: &mut Vec<u8>| {
        put16(out, 0); // flags
        put16(out, DEFLATED);
        put16(out, DOS_TIME);
        put16(out, DOS_DATE);
        put32(out, crc);
        put32(out, sizes.0);
        put32(out, sizes.1);
        put16(out, name.len() as u16);
        put16(out, 0); // extra field length
    };
    put32(&mut out, 0x0403_4b50);
    put16(&mut out, VERSION);
    header(&mut out);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&deflated);
    let central_at = out.len() as u32;
    put32(&mut out, 0x0201_4b50);
    put16(&mut out, VERSION); // made by
    put16(&mut out, VERSION); // needed
    header(&mut out);
    put16(&mut out, 0); // comment length
    put16(&mut out, 0); // disk number
    put16(&mut out, 0); // internal attributes
    put32(&mut out, 0); // external attributes
    put32(&mut out, 0); // local header offset
    out.extend_from_slice(name.as_bytes());
    let central_len = out.len() as u32 - central_at;
    put32(&mut out, 0x0605_4b50);
    put16(&mut out, 0); // this disk
    put16(&mut out, 0); // the central directory's disk
    put16(&mut out, 1); // entries on this disk
    put16(&mut out, 1); // entries
    put32(&mut out, central_len);
    put32(&mut out, central_at);
    put16(&mut out, 0); // comment length
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    #[test]
    fn the_entry_inflates_to_the_data_and_the_records_agree() {
        let data = b"{\"a\":1}\n".repeat(1000);
        let zip = single_entry(&data, "data");
        assert_eq!(&zip[..4], &[0x50, 0x4b, 0x03, 0x04]);
        let name_len = u16::from_le_bytes([zip[26], zip[27]]) as usize;
        let compressed = u32::from_le_bytes(zip[18..22].try_into().unwrap()) as usize;
        let start = 30 + name_len;
        let mut out = Vec::new();
        flate2::read::DeflateDecoder::new(&zip[start..start + compressed])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        assert_eq!(
            u32::from_le_bytes(zip[14..18].try_into().unwrap()),
            CRC32.checksum(&data)
        );
        let end = zip.len() - 22;
        assert_eq!(&zip[end..end + 4], &[0x50, 0x4b, 0x05, 0x06]);
    }
}
