import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { Transform } from 'node:stream'

/** The sha256 of a file (hex), streamed in 1 MiB chunks so memory stays flat in the file's size. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** The sha256 (hex) of a string or bytes. */
export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A pass-through stream that hashes and counts what flows through it; read `sha256()` and `bytes` once it ended. */
export interface HashingStream {
  readonly stream: Transform
  readonly bytes: number
  sha256(): string
}

/** Creates a HashingStream to put in a pipeline, so a file is checksummed as it is written, never read back. */
export function createHashingStream(): HashingStream {
  const hash = createHash('sha256')
  let bytes = 0
  let digest: string | undefined
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk)
      bytes += chunk.length
      done(null, chunk)
    },
  })
  return {
    stream,
    get bytes() {
      return bytes
    },
    sha256: () => {
      digest ??= hash.digest('hex')
      return digest
    },
  }
}

/** A line of a `sha256sum`-format checksum file: `<hex>  <name>\n` (`sha256sum -c` checks it). */
export function sha256sumLine(hex: string, name: string): string {
  return `${hex}  ${name}\n`
}
