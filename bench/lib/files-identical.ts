/** Byte-for-byte comparison of two files, read in chunks so size does not matter. */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';

const CHUNK = 1 << 20;

/** null when the files are identical, otherwise where they first differ. */
export function firstDifference(pathA: string, pathB: string): string | null {
  const a = openSync(pathA, 'r');
  const b = openSync(pathB, 'r');
  try {
    const sizeA = fstatSync(a).size;
    const sizeB = fstatSync(b).size;
    const bufA = Buffer.alloc(CHUNK);
    const bufB = Buffer.alloc(CHUNK);
    for (let pos = 0; pos < Math.min(sizeA, sizeB); pos += CHUNK) {
      const n = readSync(a, bufA, 0, CHUNK, pos);
      readSync(b, bufB, 0, CHUNK, pos);
      if (bufA.compare(bufB, 0, n, 0, n) !== 0) {
        let i = 0;
        while (bufA[i] === bufB[i]) i++;
        return `byte ${pos + i} differs`;
      }
    }
    return sizeA === sizeB ? null : `sizes differ: ${sizeA} vs ${sizeB} bytes`;
  } finally {
    closeSync(a);
    closeSync(b);
  }
}
