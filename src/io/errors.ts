// The io/ errors' common base. Its own module, free of node: imports, so that
// the declarations of image.ts (which browsers get) need no @types/node.

/** An error about one file: the message starts with its path, `file` holds it. */
export class FileError extends Error {
  readonly file: string;
  constructor(file: string, message: string, options?: { cause?: unknown }) {
    super(`${file}: ${message}`, options);
    this.file = file;
  }
}

/** An image that cannot be read or used as it is (the decoders, io/image.ts; the preprocessing's limits, data/preprocess.ts). */
export class ImageError extends FileError { override name = 'ImageError'; }
