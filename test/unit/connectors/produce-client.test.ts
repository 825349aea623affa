import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BrokerConnection } from '../../../connectors/kafka-sink/produce-client.js';

// A produce request's frame is a view of a pooled writer's buffer (no copy per request): the writer may
// only be reused once the socket took the frame's bytes. A local TCP server stands in for the broker's
// socket (it never answers: only the bytes that arrive matter here).

let server: Server | null = null;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets.length = 0;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

/** A server that collects every byte it receives. */
async function byteSink(): Promise<{ port: number; received: () => Buffer }> {
  const chunks: Buffer[] = [];
  server = createServer((socket) => {
    sockets.push(socket);
    socket.on('data', (d: Buffer) => chunks.push(d));
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return { port: address.port, received: () => Buffer.concat(chunks) };
}

/** Writes a frame of `size` bytes of `fill` (a size prefix and a correlation id first) into `w`. */
function frameOf(w: ReturnType<BrokerConnection['takeFrameWriter']>, correlationId: number, size: number, fill: number): Buffer {
  w.reset();
  w.int32(size - 4);
  w.int32(correlationId);
  w.ensure(size - 8);
  w.buf.fill(fill, w.pos, w.pos + size - 8);
  w.pos += size - 8;
  return w.toBuffer();
}

describe('BrokerConnection frame writers', () => {
  it('hands a frame writer out again only after the socket took its frame, and every frame arrives intact', async () => {
    const sink = await byteSink();
    const conn = new BrokerConnection({ nodeId: 1, host: '127.0.0.1', port: sink.port }, 60_000);
    await conn.connect();
    try {
      const size = 4 * 1024 * 1024; // larger than a socket's send buffer: the write completes later
      const w1 = conn.takeFrameWriter();
      const frame1 = frameOf(w1, 1, size, 0x11);
      // The frame is the writer's own bytes (no copy).
      expect(frame1.buffer).toBe(w1.buf.buffer);
      conn.request(1, frame1, w1).catch(() => undefined);
      // Still being written: the next request gets another writer.
      const w2 = conn.takeFrameWriter();
      expect(w2).not.toBe(w1);
      const frame2 = frameOf(w2, 2, size, 0x22);
      conn.request(2, frame2, w2).catch(() => undefined);
      // Once written, w1 comes back: it is reused and overwritten while frame 1's bytes are on their way.
      let again = conn.takeFrameWriter();
      const deadline = Date.now() + 10_000;
      while (again !== w1 && again !== w2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
        again = conn.takeFrameWriter();
      }
      expect([w1, w2]).toContain(again);
      frameOf(again, 3, 64, 0x33);
      while (sink.received().length < 2 * size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const got = sink.received();
      expect(got.length).toBe(2 * size);
      expect(got.readInt32BE(4)).toBe(1);
      expect(got.subarray(8, size).every((b) => b === 0x11)).toBe(true);
      expect(got.readInt32BE(size + 4)).toBe(2);
      expect(got.subarray(size + 8).every((b) => b === 0x22)).toBe(true);
    } finally {
      conn.close();
    }
  });
});
