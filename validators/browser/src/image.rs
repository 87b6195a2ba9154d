//! RGBA images and their PNG files.
//!
//! Decoding turns every PNG colour type and depth into 8-bit RGBA the way pngjs (which
//! pixelmatch's command line uses) does, so that a comparison sees the same bytes pixelmatch
//! would: palettes and `tRNS` expanded, grey copied to red, green and blue, 16-bit samples
//! scaled with rounding. Encoding is deterministic (fixed filter and compression), so one
//! rendering always gives the same file.

use std::path::Path;

/// An image as rows of RGBA bytes, top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub width: u32,
    pub height: u32,
    /// `width * height * 4` bytes.
    pub rgba: Vec<u8>,
}

/// Why an image could not be read or written, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{path}: {detail}")]
    Read { path: String, detail: String },
    #[error("{path}: cannot be written ({detail})")]
    Write { path: String, detail: String },
}

impl Image {
    /// Reads a PNG file.
    pub fn read(path: &Path) -> Result<Image, ImageError> {
        let bytes = std::fs::read(path).map_err(|e| ImageError::Read {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        Image::decode(&bytes).map_err(|detail| ImageError::Read {
            path: path.display().to_string(),
            detail: format!("not a readable PNG ({detail})"),
        })
    }

    /// Decodes PNG bytes.
    pub fn decode(bytes: &[u8]) -> Result<Image, String> {
        let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        // Palettes, tRNS and sub-byte depths become 8-bit channels; 16-bit stays, and is
        // scaled below as pngjs scales it.
        decoder.set_transformations(png::Transformations::EXPAND);
        let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
        let size = reader
            .output_buffer_size()
            .ok_or("the image is too large to decode")?;
        let mut buffer = vec![0; size];
        let frame = reader.next_frame(&mut buffer).map_err(|e| e.to_string())?;
        buffer.truncate(frame.buffer_size());
        let samples: Vec<u8> = match frame.bit_depth {
            png::BitDepth::Sixteen => buffer
                .chunks_exact(2)
                .map(|pair| {
                    let value = u32::from(u16::from_be_bytes([pair[0], pair[1]]));
                    // Math.round(value * 255 / 65535), as in pngjs.
                    ((value * 255 * 2 + 65535) / (65535 * 2)) as u8
                })
                .collect(),
            _ => buffer,
        };
        let pixels = (frame.width as usize) * (frame.height as usize);
        let mut rgba = Vec::with_capacity(pixels * 4);
        match frame.color_type {
            png::ColorType::Rgba => rgba = samples,
            png::ColorType::Rgb => {
                for p in samples.chunks_exact(3) {
                    rgba.extend_from_slice(&[p[0], p[1], p[2], 255]);
                }
            }
            png::ColorType::GrayscaleAlpha => {
                for p in samples.chunks_exact(2) {
                    rgba.extend_from_slice(&[p[0], p[0], p[0], p[1]]);
                }
            }
            png::ColorType::Grayscale => {
                for &g in &samples {
                    rgba.extend_from_slice(&[g, g, g, 255]);
                }
            }
            png::ColorType::Indexed => return Err("an unexpanded palette".into()),
        }
        if rgba.len() != pixels * 4 {
            return Err("the pixel data is shorter than the image".into());
        }
        Ok(Image {
            width: frame.width,
            height: frame.height,
            rgba,
        })
    }

    /// Encodes as an 8-bit RGBA PNG, the same bytes for the same pixels.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, self.width, self.height);
            encoder.set_color(png::ColorType::Rgba);
            encoder.set_depth(png::BitDepth::Eight);
            encoder.set_compression(png::Compression::Balanced);
            encoder.set_filter(png::Filter::Adaptive);
            let mut writer = encoder
                .write_header()
                .expect("writing a PNG header into memory cannot fail");
            writer
                .write_image_data(&self.rgba)
                .expect("the pixel data has the image's size");
        }
        bytes
    }

    /// Writes the image as a PNG file, creating its directory.
    pub fn write(&self, path: &Path) -> Result<(), ImageError> {
        let fail = |e: std::io::Error| ImageError::Write {
            path: path.display().to_string(),
            detail: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(fail)?;
        }
        std::fs::write(path, self.encode()).map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_survives_encoding_and_encodes_the_same_twice() {
        let image = Image {
            width: 3,
            height: 2,
            rgba: (0..24).map(|i| (i * 10) as u8).collect(),
        };
        let bytes = image.encode();
        assert_eq!(bytes, image.encode());
        assert_eq!(Image::decode(&bytes).expect("decodes"), image);
    }

    #[test]
    fn grey_and_sixteen_bit_images_become_rgba_as_pngjs_makes_them() {
        let mut bytes = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut bytes, 2, 1);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Sixteen);
            let mut writer = encoder.write_header().expect("header");
            // 0x8080 = 32896 → 32896 * 255 / 65535 = 128.0 → 128; 0x0080 = 128 → 0.498 → 0.
            writer
                .write_image_data(&[0x80, 0x80, 0x00, 0x80])
                .expect("data");
        }
        let image = Image::decode(&bytes).expect("decodes");
        assert_eq!(image.rgba, [128, 128, 128, 255, 0, 0, 0, 255]);
    }

    #[test]
    fn a_file_that_is_not_a_png_names_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.png");
        std::fs::write(&path, "text").expect("write");
        let err = Image::read(&path).expect_err("not a png");
        assert!(
            err.to_string().contains("x.png: not a readable PNG"),
            "{err}"
        );
    }
}
