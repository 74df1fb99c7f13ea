import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { openCaptureWriter, parseCaptureBuffer, readCapture } from '../../src/io/capture-file.js';
import { CaptureSinkStage } from '../../src/io/file-stages.js';
import type { Packet } from '../../src/packet.js';
import { memorySink } from './capture-bytes.js';

function pkt(data: Buffer, ts: bigint, extra: Partial<Packet> = {}): Packet {
  return { data, ts, link: 1, origLen: data.length, ifIndex: 0, ...extra };
}

describe('CaptureSinkStage', () => {
  it('writes each packet it can, passes it on, and counts the ones the file cannot hold', async () => {
    const sink = memorySink();
    const stage = new CaptureSinkStage(await openCaptureWriter(sink.stream, { format: 'pcap', link: 1 }));
    const emitted: Packet[] = [];
    const input = [
      pkt(Buffer.alloc(10, 1), 1n),
      pkt(Buffer.alloc(10, 2), 2n, { link: 101 }),
      pkt(Buffer.alloc(10, 3), -5n),
      pkt(Buffer.alloc(10, 4), 4n),
    ];
    for (const p of input) stage.process(p, (out) => emitted.push(out));
    stage.flush((out) => emitted.push(out));
    await stage.close();
    expect(emitted).toEqual([input[0], input[3]]);
    expect(stage.name).toBe('pcap-sink');
    expect(stage.stats()).toEqual({
      packetsIn: 4,
      packetsOut: 2,
      dropped: { 'link-type': 1, unwritable: 1 },
      packetsWritten: 2,
      bytesWritten: 24 + 2 * 26,
    });
    expect([...parseCaptureBuffer(sink.bytes(), { copy: true })]).toEqual([input[0], input[3]]);
  });

  it('copies the bytes, so a source may reuse its buffer for the next packet', async () => {
    const sink = memorySink();
    const stage = new CaptureSinkStage(await openCaptureWriter(sink.stream, { format: 'pcapng' }));
    const reused = Buffer.alloc(8);
    for (let i = 0; i < 3; i++) {
      reused.fill(i);
      stage.process(pkt(reused, BigInt(i), { link: i === 2 ? 101 : 1 }), () => {});
    }
    await stage.close();
    expect([...parseCaptureBuffer(sink.bytes())].map((p) => [p.data[7], p.link, p.ifIndex])).toEqual([
      [0, 1, 0],
      [1, 1, 0],
      [2, 101, 1],
    ]);
  });

  it('lets a file-to-file loop wait for a slow sink, keeping its queue bounded', async () => {
    const input = memorySink();
    const source = await openCaptureWriter(input.stream, { format: 'pcap', link: 1 });
    for (let i = 0; i < 300; i++) source.write(pkt(Buffer.alloc(300, i & 0xff), BigInt(i) * 1000n));
    await source.close();

    const slow = memorySink({ highWaterMark: 2048, delayMs: 1 });
    const stage = new CaptureSinkStage(
      await openCaptureWriter(slow.stream, { format: 'pcap', link: 1, batchBytes: 1024 }),
    );
    let waits = 0;
    for await (const p of readCapture(Readable.from([input.bytes()]))) {
      stage.process(p, () => {});
      if (stage.needsDrain) {
        waits++;
        await stage.drain();
      }
    }
    await stage.close();
    expect(waits).toBeGreaterThan(0);
    expect(slow.maxPending).toBeLessThanOrEqual(2048 + 1024);
    expect(slow.bytes()).toEqual(input.bytes());
  });
});
