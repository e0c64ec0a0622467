// Byte limits on inputs, apart from the code that reads them so that the
// browser build can use them without the Node decoders (io/image.ts).

/** Image files over this are refused before they are read (a 40-megapixel photo is tens of MiB). */
export const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;
