// Byte limits on inputs, apart from the code that reads them so that the
// browser build can use them without the Node decoders (io/image.ts).

/** Image files over this are refused before they are read (a 40-megapixel photo is tens of MiB). */
export const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;

/**
 * Images with more pixels than this are refused: by the decoders, from the
 * header before any pixel memory is allocated (40 MP is 160 MB of RGBA, more
 * than any camera photo a classifier needs), and by the preprocessing, for
 * the resized image it would make before its crop (an extreme aspect ratio
 * under a shorter-side resize).
 */
export const DEFAULT_MAX_PIXELS = 40_000_000;
