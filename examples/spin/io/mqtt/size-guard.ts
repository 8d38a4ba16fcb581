// MQTT packets bounded in size before aedes sees them. aedes parses with no
// limit: an anonymous client's one 200 MB PUBLISH took the app from 120 to
// 748 MB, and six such clients to 2.4 GB. This reads each packet's fixed
// header (type, then the remaining length in 1-4 bytes of 7 bits), lets the
// bytes through unchanged, and ends the connection at a packet over the limit.
import { Duplex, Transform, type TransformCallback } from 'node:stream';

/** The largest MQTT packet a client may send (SPIN's commands and RPC requests are a few KiB). */
export const MAX_MQTT_PACKET = 256 * 1024;

export class MqttSizeGuard extends Transform {
  /** Bytes of the current packet's body still to pass; -1 while reading a fixed header. */
  private body = -1;
  /** Remaining-length bytes read so far, and the value they make. */
  private lenBytes = 0;
  private len = 0;
  private inHeader = false;

  constructor(private readonly max = MAX_MQTT_PACKET) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.body > 0) {
        const take = Math.min(this.body, chunk.length - i);
        this.body -= take;
        i += take;
        continue;
      }
      if (!this.inHeader) {
        // The type-and-flags byte.
        this.inHeader = true;
        this.lenBytes = 0;
        this.len = 0;
        i++;
        continue;
      }
      const b = chunk[i++];
      this.len += (b & 0x7f) * 128 ** this.lenBytes;
      this.lenBytes++;
      if (b & 0x80) {
        if (this.lenBytes === 4) {
          done(new Error('malformed MQTT remaining length'));
          return;
        }
        continue;
      }
      if (this.len > this.max) {
        done(new Error(`MQTT packet of ${this.len} bytes is over the ${this.max}-byte limit`));
        return;
      }
      this.inHeader = false;
      this.body = this.len;
    }
    done(null, chunk);
  }
}

/** `stream` as aedes should read it: through a size guard; writes go straight to it. */
export function guarded(stream: Duplex, max = MAX_MQTT_PACKET): Duplex {
  const guard = new MqttSizeGuard(max);
  const readable = stream.pipe(guard);
  guard.on('error', () => stream.destroy());
  const d = Duplex.from({ readable, writable: stream });
  stream.on('close', () => d.destroy());
  return d;
}
