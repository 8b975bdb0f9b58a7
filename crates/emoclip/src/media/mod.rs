//! Media input: video decoding (ffmpeg-next), frame sampling, image preprocessing, person boxes → subject masks.
