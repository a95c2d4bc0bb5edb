//! A response body's `Content-Encoding`, undone as it streams, the same way in both modes.
//!
//! Both HTTP clients are built without their own decoding: awc took `gzip, gzip` for one
//! layer and ureq passed `deflate` through, so still-encoded bytes were saved as images.
//! Here every layer is undone, outermost first, or the body is refused with the coding
//! named; nothing that is still encoded reaches a sink. Memory stays bounded whatever the
//! ratio: each layer hands on its output in pieces of its buffer's size.
//!
//! Pure: no actix, no HTTP client; bytes in, bytes out through `std::io::Write`.

use std::io::{self, Write};

/// What both clients send as `Accept-Encoding`: exactly the codings [`Decoder`] undoes.
pub const ACCEPT_ENCODING: &str = "gzip, deflate, br";

/// More layers than this is not a real server: refused rather than given a decoder (and
/// its buffers) each.
pub const MAX_LAYERS: usize = 4;

/// Each layer's output buffer: what one layer holds before passing it down.
const LAYER_BUFFER: usize = 32 * 1024;

/// Why a body cannot be decoded at all (known before any byte is read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error("unsupported content encoding: {0}")]
    Coding(String),
    #[error("unsupported content encoding: more than {MAX_LAYERS} layers")]
    TooManyLayers,
}

/// A coding we can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    /// HTTP's `deflate` is the zlib format (RFC 9110 8.4.1.2).
    Deflate,
    Brotli,
}

/// The codings of a `Content-Encoding` value (all its header lines joined by commas),
/// in the order they were applied. `identity` and empty entries are no coding.
pub fn codings(content_encoding: Option<&str>) -> Result<Vec<Coding>, Unsupported> {
    let mut out = Vec::new();
    for token in content_encoding.unwrap_or_default().split(',') {
        let token = token.trim();
        let coding = match token.to_ascii_lowercase().as_str() {
            "" | "identity" => continue,
            "gzip" | "x-gzip" => Coding::Gzip,
            "deflate" => Coding::Deflate,
            "br" => Coding::Brotli,
            _ => return Err(Unsupported::Coding(token.chars().take(40).collect())),
        };
        if out.len() == MAX_LAYERS {
            return Err(Unsupported::TooManyLayers);
        }
        out.push(coding);
    }
    Ok(out)
}

/// Whether a body with this `Content-Encoding` arrives as it will be saved, so its
/// Content-Length counts the saved bytes.
pub fn is_plain(content_encoding: Option<&str>) -> bool {
    codings(content_encoding).is_ok_and(|c| c.is_empty())
}

/// One stage of the chain: writes decoded bytes to the stage below it, and on `end`
/// checks its stream was complete and ends the stages below.
trait Stage: Write {
    fn end(&mut self) -> io::Result<()>;
}

/// The bottom of the chain: the caller's sink.
struct Bottom<W: Write>(W);

impl<W: Write> Write for Bottom<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> Stage for Bottom<W> {
    fn end(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

type Below<'a> = Box<dyn Stage + 'a>;

struct Gzip<'a>(flate2::write::GzDecoder<Below<'a>>);
struct Deflate<'a>(flate2::write::ZlibDecoder<Below<'a>>);
struct Brotli<'a>(brotli_decompressor::DecompressorWriter<Below<'a>>);

/// `Write` for a decoding stage: delegate, and call a write that consumes nothing (the
/// stream has ended and more bytes follow) corrupt, not a short write.
macro_rules! stage {
    ($t:ident, $finish:ident) => {
        impl Write for $t<'_> {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                // The sink's own errors arrive as `Other` and pass through as they are;
                // anything else is the decoder's complaint about the stream.
                match self.0.write(buf) {
                    Ok(0) if !buf.is_empty() => Err(corrupt("data after the end of the stream")),
                    Ok(n) => Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::Other => Err(e),
                    Err(e) => Err(corrupt(&e.to_string())),
                }
            }

            fn flush(&mut self) -> io::Result<()> {
                self.0.flush()
            }
        }

        impl Stage for $t<'_> {
            fn end(&mut self) -> io::Result<()> {
                self.0.$finish().map_err(|e| match e.kind() {
                    io::ErrorKind::Other => e,
                    _ => corrupt("the stream is cut short or damaged"),
                })?;
                self.0.get_mut().end()
            }
        }
    };
}

stage!(Gzip, try_finish);
stage!(Deflate, try_finish);
stage!(Brotli, close);

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt content encoding: {what}"))
}

/// Undoes a body's codings into a sink, chunk by chunk.
pub struct Decoder<'a> {
    top: Below<'a>,
}

impl<'a> Decoder<'a> {
    /// A decoder for a body sent with `content_encoding`, writing plain bytes to `sink`.
    pub fn new(content_encoding: Option<&str>, sink: impl Write + 'a) -> Result<Self, Unsupported> {
        let mut top: Below<'a> = Box::new(Bottom(sink));
        // The first coding listed was applied first, so it is undone last: it sits
        // lowest, right above the sink.
        for coding in codings(content_encoding)? {
            top = match coding {
                Coding::Gzip => Box::new(Gzip(flate2::write::GzDecoder::new(top))),
                Coding::Deflate => Box::new(Deflate(flate2::write::ZlibDecoder::new(top))),
                Coding::Brotli => {
                    Box::new(Brotli(brotli_decompressor::DecompressorWriter::new(top, LAYER_BUFFER)))
                }
            };
        }
        Ok(Self { top })
    }

    /// Feeds the next piece of the body as it came off the wire. An error from the sink
    /// comes back as it was (see `io::Error::get_ref`); a damaged stream as `InvalidData`.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.top.write_all(chunk)
    }

    /// The body has ended: every layer must have ended with it.
    pub fn finish(mut self) -> io::Result<()> {
        self.top.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    /// A valid brotli stream holding `bytes` (one uncompressed meta-block, RFC 7932 9.2),
    /// so the test needs no brotli encoder.
    fn brotli(bytes: &[u8]) -> Vec<u8> {
        assert!(!bytes.is_empty() && bytes.len() <= 65536);
        // Bits from the lowest: WBITS=16 (bit 0 clear), ISLAST=0 (bit 1), MNIBBLES=4
        // (bits 2-3 clear), MLEN-1 (bits 4-19), ISUNCOMPRESSED=1 (bit 20); padded to
        // three bytes; the bytes; then an empty last meta-block.
        let mlen = (bytes.len() - 1) as u64;
        let bits: u64 = (mlen << 4) | (1 << 20);
        let mut out: Vec<u8> = (0..3).map(|i| (bits >> (8 * i)) as u8).collect();
        out.extend_from_slice(bytes);
        out.push(0x03); // ISLAST=1, ISLASTEMPTY=1
        out
    }

    fn decode(encoding: &str, body: &[u8], piece: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut decoder = Decoder::new(Some(encoding), &mut out).map_err(io::Error::other)?;
        for chunk in body.chunks(piece) {
            decoder.write(chunk)?;
        }
        decoder.finish()?;
        Ok(out)
    }

    fn sample() -> Vec<u8> {
        (0..50_000u32).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn the_codings_of_a_header() {
        use Coding::*;
        assert_eq!(codings(None), Ok(vec![]));
        assert_eq!(codings(Some("")), Ok(vec![]));
        assert_eq!(codings(Some(" identity ")), Ok(vec![]));
        assert_eq!(codings(Some("gzip, GZIP")), Ok(vec![Gzip, Gzip]));
        assert_eq!(codings(Some("deflate,br,x-gzip")), Ok(vec![Deflate, Brotli, Gzip]));
        assert_eq!(codings(Some("gzip, zstd")), Err(Unsupported::Coding("zstd".into())));
        assert_eq!(codings(Some("gzip,gzip,gzip,gzip,gzip")), Err(Unsupported::TooManyLayers));
        assert!(is_plain(Some("identity")) && is_plain(None) && !is_plain(Some("gzip")));
        assert!(!is_plain(Some("compress")), "an unknown coding is not plain");
    }

    #[test]
    fn every_layer_is_undone_in_any_chunking() {
        let plain = sample();
        for piece in [1, 7, 1024, 100_000] {
            assert_eq!(decode("", &plain, piece).unwrap(), plain);
            assert_eq!(decode("gzip", &gzip(&plain), piece).unwrap(), plain);
            assert_eq!(decode("deflate", &deflate(&plain), piece).unwrap(), plain);
            assert_eq!(decode("gzip, gzip", &gzip(&gzip(&plain)), piece).unwrap(), plain);
            assert_eq!(decode("deflate, gzip", &gzip(&deflate(&plain)), piece).unwrap(), plain);
            assert_eq!(decode("br", &brotli(&plain), piece).unwrap(), plain);
            assert_eq!(decode("gzip, br", &brotli(&gzip(&plain)), piece).unwrap(), plain);
        }
    }

    #[test]
    fn damage_and_missing_layers_are_errors_not_data() {
        let plain = sample();
        let twice = gzip(&gzip(&plain));
        let cut = &twice[..twice.len() - 20];
        let e = decode("gzip, gzip", cut, 1024).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let e = decode("gzip", b"not gzip at all, just text", 1024).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let mut extra = gzip(&plain);
        extra.extend_from_slice(b"trailing");
        assert!(decode("gzip", &extra, 1024).is_err(), "bytes after the stream");
        let br = brotli(&plain);
        assert!(decode("br", &br[..br.len() - 1], 1024).is_err(), "brotli cut short");
    }

    #[test]
    fn a_bomb_is_handed_on_in_pieces() {
        // 64 MiB of zeros, twice gzipped: a few KiB on the wire.
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..64 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = gzip(&e.finish().unwrap());
        assert!(bomb.len() < 200_000, "{}", bomb.len());
        /// Stops at a limit, as the image and page sinks do, remembering its largest write.
        struct Capped {
            seen: usize,
            largest: usize,
        }
        impl Write for Capped {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.seen += buf.len();
                self.largest = self.largest.max(buf.len());
                if self.seen > 4 << 20 {
                    return Err(io::Error::other("too large"));
                }
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut sink = Capped { seen: 0, largest: 0 };
        let mut decoder = Decoder::new(Some("gzip, gzip"), &mut sink).unwrap();
        let e = decoder.write(&bomb).unwrap_err();
        assert_eq!(e.to_string(), "too large", "the sink's own error comes back");
        drop(decoder);
        assert!(sink.largest <= LAYER_BUFFER, "largest piece {}", sink.largest);
    }
}
