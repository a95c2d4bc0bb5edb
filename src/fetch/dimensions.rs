//! The size filters that go by pixels (`MIN_WIDTH`, `MIN_HEIGHT`, `MAX_ASPECT`), judged
//! from an image's first bytes as they stream in: the header states the dimensions, so a
//! thumbnail is known after a few hundred bytes and need not be downloaded whole. Reads
//! headers with `imagesize` (no decoding). Pure: the image sink feeds it.

/// Header bytes looked at before giving up: past them an image whose dimensions are still
/// unknown (a JPEG with a huge EXIF block first) passes, rather than being held in memory.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// Which dimensions are wanted; all `None` is no filter at all.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DimensionFilter {
    /// Narrower images are skipped (`MIN_WIDTH`, pixels).
    pub min_width: Option<u32>,
    /// Lower images are skipped (`MIN_HEIGHT`, pixels).
    pub min_height: Option<u32>,
    /// Images longer than this on one side against the other are skipped (`MAX_ASPECT`,
    /// the larger of w/h and h/w, at least 1): banners and separators.
    pub max_aspect: Option<f64>,
}

impl DimensionFilter {
    /// Whether any limit is set: without one, no header is read at all.
    pub fn is_on(&self) -> bool {
        self.min_width.is_some() || self.min_height.is_some() || self.max_aspect.is_some()
    }

    /// Why a `width` × `height` image is not wanted, naming the setting; `None` when it is.
    pub fn refusal(&self, width: u32, height: u32) -> Option<String> {
        let size = format!("{width}x{height}");
        if let Some(min) = self.min_width
            && width < min
        {
            return Some(format!("{size} is narrower than MIN_WIDTH ({min} px)"));
        }
        if let Some(min) = self.min_height
            && height < min
        {
            return Some(format!("{size} is lower than MIN_HEIGHT ({min} px)"));
        }
        if let Some(max) = self.max_aspect {
            let (long, short) = (width.max(height) as f64, width.min(height) as f64);
            // A side of zero pixels is as elongated as it gets.
            let aspect = if short == 0.0 { f64::INFINITY } else { long / short };
            if aspect > max {
                return Some(format!("{size} is more elongated than MAX_ASPECT ({max})"));
            }
        }
        None
    }
}

/// What the first bytes of one image have told so far.
#[derive(Debug, PartialEq)]
pub enum Judgement {
    /// The header is not complete yet: more bytes may tell.
    Unknown,
    /// Wanted, or no way to tell: nothing more to look at.
    Pass,
    /// Not wanted, and why.
    Refuse(String),
}

/// One image's first bytes, gathered until its header tells its dimensions. Every
/// stored image is probed (the manifest's `width`, `height`); with no filter set, every
/// image passes.
#[derive(Debug)]
pub struct HeaderProbe {
    filter: DimensionFilter,
    /// The bytes so far, at most [`MAX_HEADER_BYTES`]; empty while the header is read
    /// from the first chunk itself, which is most images: no copy then.
    head: Vec<u8>,
    /// Width and height, once the header told them.
    size: Option<(u32, u32)>,
}

impl HeaderProbe {
    pub fn new(filter: DimensionFilter) -> Self {
        Self { filter, head: Vec::new(), size: None }
    }

    /// Takes the next piece of the body and says what is known now.
    pub fn feed(&mut self, chunk: &[u8]) -> Judgement {
        let read = if self.head.is_empty() {
            // The first chunk holds the whole header of nearly every image: read it in
            // place, and copy only when it falls short.
            imagesize::blob_size(chunk).inspect_err(|_| {
                self.head.extend_from_slice(&chunk[..MAX_HEADER_BYTES.min(chunk.len())]);
            })
        } else {
            let take = (MAX_HEADER_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
            imagesize::blob_size(&self.head)
        };
        match read {
            Ok(size) => {
                let (width, height) = (clamp(size.width), clamp(size.height));
                self.size = Some((width, height));
                self.head = Vec::new();
                match self.filter.refusal(width, height) {
                    Some(why) => Judgement::Refuse(why),
                    None => Judgement::Pass,
                }
            }
            Err(_) if self.head.len() >= MAX_HEADER_BYTES => Judgement::Pass,
            Err(_) => Judgement::Unknown,
        }
    }

    /// Width and height, when the header told them.
    pub fn size(&self) -> Option<(u32, u32)> {
        self.size
    }
}

fn clamp(pixels: usize) -> u32 {
    u32::try_from(pixels).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG's signature and IHDR: all the header `imagesize` needs.
    fn png_header(width: u32, height: u32) -> Vec<u8> {
        let mut bytes = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        bytes.extend_from_slice(&width.to_be_bytes());
        bytes.extend_from_slice(&height.to_be_bytes());
        bytes.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
        bytes
    }

    fn filter(min_width: Option<u32>, min_height: Option<u32>, max_aspect: Option<f64>) -> DimensionFilter {
        DimensionFilter { min_width, min_height, max_aspect }
    }

    #[test]
    fn each_limit_refuses_naming_itself_and_the_dimensions() {
        let f = filter(Some(100), Some(50), Some(3.0));
        assert_eq!(f.refusal(100, 50), None, "the limits themselves are wanted");
        assert_eq!(f.refusal(150, 50), None, "an aspect of exactly 3 is wanted");
        assert_eq!(f.refusal(99, 60).as_deref(), Some("99x60 is narrower than MIN_WIDTH (100 px)"));
        assert_eq!(f.refusal(200, 49).as_deref(), Some("200x49 is lower than MIN_HEIGHT (50 px)"));
        assert_eq!(f.refusal(301, 100).as_deref(), Some("301x100 is more elongated than MAX_ASPECT (3)"));
        assert!(filter(None, None, Some(2.5)).refusal(100, 251).is_some(), "tall as well as wide");
        assert!(filter(None, None, Some(2.5)).refusal(0, 0).is_some());
        assert_eq!(DimensionFilter::default().refusal(1, 1000), None);
        assert!(!DimensionFilter::default().is_on());
        assert!(filter(None, Some(1), None).is_on());
    }

    #[test]
    fn the_header_is_judged_as_soon_as_it_is_whole() {
        let header = png_header(40, 30);
        let mut probe = HeaderProbe::new(filter(Some(64), None, None));
        assert_eq!(probe.feed(&header[..10]), Judgement::Unknown);
        assert_eq!(
            probe.feed(&header[10..]),
            Judgement::Refuse("40x30 is narrower than MIN_WIDTH (64 px)".into())
        );
        let mut probe = HeaderProbe::new(filter(Some(64), None, None));
        assert_eq!(probe.feed(&png_header(64, 30)), Judgement::Pass);
        assert_eq!(probe.size(), Some((64, 30)));
    }

    #[test]
    fn with_no_filter_the_size_is_read_and_every_image_passes() {
        let header = png_header(4000, 3);
        let mut probe = HeaderProbe::new(DimensionFilter::default());
        assert_eq!(probe.feed(&header), Judgement::Pass);
        assert_eq!(probe.size(), Some((4000, 3)));
        assert!(probe.head.is_empty(), "read in place, not copied");
        let mut probe = HeaderProbe::new(DimensionFilter::default());
        assert_eq!(probe.feed(&header[..5]), Judgement::Unknown);
        assert_eq!(probe.size(), None);
        assert_eq!(probe.feed(&header[5..]), Judgement::Pass);
        assert_eq!(probe.size(), Some((4000, 3)));
    }

    #[test]
    fn an_image_whose_header_never_tells_passes_after_the_cap() {
        let mut probe = HeaderProbe::new(filter(Some(64), None, None));
        let noise = vec![0u8; 1000];
        for _ in 0..MAX_HEADER_BYTES / noise.len() {
            assert_eq!(probe.feed(&noise), Judgement::Unknown);
        }
        assert_eq!(probe.feed(&noise), Judgement::Pass);
        assert_eq!(probe.head.len(), MAX_HEADER_BYTES, "held no more than the cap");
        assert_eq!(probe.size(), None);
    }
}
